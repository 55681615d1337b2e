//! Job objects: one per program, holding every process it starts, so stopping the program
//! stops its whole tree. Jobs are named `Local\warden-job-PID-CREATIONTIME`, which lets a
//! warden restarted after a crash reopen the job of a program it adopts.
//!
//! A job lives as long as a handle to it or a process in it exists. Unless
//! `windows.kill_programs_on_exit` is set, closing warden's handle (warden exiting) leaves
//! the programs running: that is what `on_shutdown = "leave"` and adoption rely on.

use std::collections::BTreeMap;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use windows_sys::Win32::Foundation::{ERROR_ALREADY_EXISTS, GetLastError};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP, JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_AFFINITY, JOB_OBJECT_LIMIT_JOB_MEMORY, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOB_OBJECT_LIMIT_PRIORITY_CLASS, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JobObjectBasicAccountingInformation, JobObjectCpuRateControlInformation,
    JobObjectExtendedLimitInformation, OpenJobObjectW, QueryInformationJobObject,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::SystemServices::{
    JOB_OBJECT_ASSIGN_PROCESS, JOB_OBJECT_QUERY, JOB_OBJECT_SET_ATTRIBUTES, JOB_OBJECT_TERMINATE,
};
use windows_sys::Win32::System::Threading::{
    ABOVE_NORMAL_PRIORITY_CLASS, BELOW_NORMAL_PRIORITY_CLASS, HIGH_PRIORITY_CLASS,
    IDLE_PRIORITY_CLASS, NORMAL_PRIORITY_CLASS,
};

/// Whether new jobs kill their processes when warden's handle closes.
static KILL_ON_CLOSE: AtomicBool = AtomicBool::new(false);

/// Jobs of the programs warden runs or adopted, by the program's pid. An entry is removed
/// when the program's tree has been drained after its exit.
static JOBS: Mutex<BTreeMap<u32, Arc<Job>>> = Mutex::new(BTreeMap::new());

fn jobs() -> MutexGuard<'static, BTreeMap<u32, Arc<Job>>> {
    // The map stays consistent even if a holder panicked: every change is one call.
    JOBS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets whether jobs created from now on kill their programs when warden exits.
pub(super) fn set_kill_on_close(on: bool) {
    KILL_ON_CLOSE.store(on, Ordering::Relaxed);
}

/// A job object handle.
pub(super) struct Job(OwnedHandle);

impl Job {
    /// Terminates every process in the job with `code`.
    pub(super) fn terminate(&self, code: u32) -> io::Result<()> {
        // SAFETY: a valid job handle with JOB_OBJECT_TERMINATE access.
        if unsafe { TerminateJobObject(self.0.as_raw_handle(), code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The job's handle, valid while `self` lives.
    pub(super) fn raw(&self) -> RawHandle {
        self.0.as_raw_handle()
    }

    /// How many processes of the job are still running.
    pub(super) fn active_processes(&self) -> io::Result<u32> {
        let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
        // SAFETY: `info` is the structure this information class fills, with its size.
        let ok = unsafe {
            QueryInformationJobObject(
                self.0.as_raw_handle(),
                JobObjectBasicAccountingInformation,
                (&raw mut info).cast(),
                size_of_val(&info) as u32,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info.ActiveProcesses)
    }
}

fn job_name(pid: u32, created: u64) -> Vec<u16> {
    std::ffi::OsStr::new(&format!(r"Local\warden-job-{pid}-{created}"))
        .encode_wide()
        .chain(Some(0))
        .collect()
}

/// Creates the job of a new (still suspended) program and puts the process into it.
pub(super) fn create_for(pid: u32, process: RawHandle) -> io::Result<()> {
    let created = super::creation_time(process)
        .ok_or_else(|| io::Error::other("cannot read the process creation time"))?;
    let name = job_name(pid, created);
    // SAFETY: default security, a NUL-terminated UTF-16 name; a new handle or null out.
    let mut h = unsafe { CreateJobObjectW(std::ptr::null(), name.as_ptr()) };
    // SAFETY: reads the calling thread's last error, set by the call just made.
    if !h.is_null() && unsafe { GetLastError() } == ERROR_ALREADY_EXISTS {
        // Someone else made a job of that name: never share it. An unnamed job still
        // contains the tree; only reopening it after a warden restart is lost.
        // SAFETY: `h` is a valid handle we own; it is closed here and not used again.
        drop(unsafe { OwnedHandle::from_raw_handle(h) });
        tracing::warn!(
            pid,
            "a job object with warden's name already exists; using an unnamed one"
        );
        // SAFETY: as above, without a name.
        h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    }
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a valid job handle that nothing else owns.
    let job = Job(unsafe { OwnedHandle::from_raw_handle(h) });
    if KILL_ON_CLOSE.load(Ordering::Relaxed) {
        let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `limits` is the structure this information class reads, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.0.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size_of_val(&limits) as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: both handles are valid; the process handle has the access std requests
    // (PROCESS_ALL_ACCESS for a process it created).
    if unsafe { AssignProcessToJobObject(job.0.as_raw_handle(), process) } == 0 {
        return Err(io::Error::last_os_error());
    }
    jobs().insert(pid, Arc::new(job));
    Ok(())
}

/// The job of the program whose leader has `pid`: the one warden created, or for an
/// adopted program the one a previous warden created (reopened by name while the leader
/// is still alive, since the name needs its creation time).
pub(super) fn lookup(pid: u32) -> Option<Arc<Job>> {
    if let Some(job) = jobs().get(&pid) {
        return Some(job.clone());
    }
    let created = super::process_start_time(pid)?;
    let name = job_name(pid, created);
    let access = JOB_OBJECT_ASSIGN_PROCESS
        | JOB_OBJECT_QUERY
        | JOB_OBJECT_SET_ATTRIBUTES
        | JOB_OBJECT_TERMINATE;
    // SAFETY: a NUL-terminated UTF-16 name; a new handle or null out.
    let h = unsafe { OpenJobObjectW(access, 0, name.as_ptr()) };
    if h.is_null() {
        return None;
    }
    // SAFETY: `h` is a valid job handle that nothing else owns.
    let job = Arc::new(Job(unsafe { OwnedHandle::from_raw_handle(h) }));
    jobs().insert(pid, job.clone());
    Some(job)
}

/// The job of the program whose leader has `pid`, if warden holds one (it created the
/// job, or reopened it when adopting the program). Never opens a job: for readers that
/// must not change which jobs warden holds.
pub(super) fn registered(pid: u32) -> Option<Arc<Job>> {
    jobs().get(&pid).cloned()
}

/// Drops warden's handle to the program's job (after its tree was drained).
pub(super) fn forget(pid: u32) {
    jobs().remove(&pid);
}

/// Sets a program's resource limits on its job: memory of the whole job, active
/// processes, a hard cap on CPU (a share of the whole machine: `cpu_max_percent` of one
/// core divided by the cores), affinity and priority class. Keeps kill-on-close.
pub(super) fn set_limits(job: &Job, s: &super::super::LimitSettings) -> io::Result<()> {
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    let b = &mut limits.BasicLimitInformation;
    if KILL_ON_CLOSE.load(Ordering::Relaxed) {
        b.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    if let Some(m) = s.memory_max {
        b.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        limits.JobMemoryLimit = usize::try_from(m).unwrap_or(usize::MAX);
    }
    let b = &mut limits.BasicLimitInformation;
    if let Some(n) = s.pids_max {
        b.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
        b.ActiveProcessLimit = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if !s.cpu_affinity.is_empty() {
        b.LimitFlags |= JOB_OBJECT_LIMIT_AFFINITY;
        b.Affinity = s
            .cpu_affinity
            .iter()
            .filter(|&&c| c < usize::BITS as usize)
            .fold(0usize, |m, &c| m | (1usize << c));
    }
    if let Some(n) = s.nice {
        b.LimitFlags |= JOB_OBJECT_LIMIT_PRIORITY_CLASS;
        b.PriorityClass = match n {
            n if n >= 15 => IDLE_PRIORITY_CLASS,
            n if n > 0 => BELOW_NORMAL_PRIORITY_CLASS,
            0 => NORMAL_PRIORITY_CLASS,
            n if n > -10 => ABOVE_NORMAL_PRIORITY_CLASS,
            _ => HIGH_PRIORITY_CLASS,
        };
    }
    // SAFETY: `limits` is the structure this information class reads, with its size.
    let ok = unsafe {
        SetInformationJobObject(
            job.raw(),
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            size_of_val(&limits) as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(p) = s.cpu_max_percent {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        // CpuRate: hundredths of a percent of the whole machine, 1..=10000.
        let rate = ((p / cores) * 100.0).clamp(1.0, 10_000.0) as u32;
        let mut info = JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
            ..Default::default()
        };
        info.Anonymous.CpuRate = rate;
        // SAFETY: `info` is the structure this information class reads, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.raw(),
                JobObjectCpuRateControlInformation,
                (&raw const info).cast(),
                size_of_val(&info) as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
