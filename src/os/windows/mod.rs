//! Windows process control: every program starts suspended in a new process group, is put
//! into a job object of its own (so its whole tree can be stopped), and only then runs.
//! A graceful stop is a console control event (CTRL_BREAK) to its group; a kill
//! terminates the job. Identity is pid + process creation time (`GetProcessTimes`).
//!
//! The "group id" the rest of warden passes around is the program's pid: with
//! `CREATE_NEW_PROCESS_GROUP` the console process group id is the leader's pid, and the job
//! registry (`job.rs`) is keyed by it too.

mod acl;
mod job;
mod pipes;
mod readings;
pub mod service;
mod storage;

pub use pipes::Output;
pub use readings::{ProcReader, available_memory, mount_usage};
pub use storage::{set_file_mode, start_writeback, symlink, sync_filesystem};

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, FILETIME, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Console::{
    AllocConsole, CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent, GetConsoleWindow,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::Threading::{
    ABOVE_NORMAL_PRIORITY_CLASS, BELOW_NORMAL_PRIORITY_CLASS, CREATE_NEW_PROCESS_GROUP,
    CREATE_SUSPENDED, GetCurrentProcess, GetCurrentThread, GetProcessTimes, HIGH_PRIORITY_CLASS,
    IDLE_PRIORITY_CLASS, INFINITE, NORMAL_PRIORITY_CLASS, OpenProcess, OpenThread,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    RegisterWaitForSingleObject, ResumeThread, SetPriorityClass, SetThreadPriority,
    THREAD_MODE_BACKGROUND_BEGIN, THREAD_PRIORITY, THREAD_PRIORITY_BELOW_NORMAL,
    THREAD_PRIORITY_IDLE, THREAD_PRIORITY_LOWEST, THREAD_PRIORITY_NORMAL, THREAD_SUSPEND_RESUME,
    TerminateProcess, UnregisterWaitEx, WT_EXECUTEONLYONCE, WaitForSingleObject,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{SW_HIDE, ShowWindow};

use super::{Priority, WindowsConfig};
use crate::program::ExitInfo;

/// Exit code given to processes when warden terminates their job (a kill). Chosen to be
/// recognisable in `describe_exit`; no program uses it by accident.
const TERMINATED_EXIT_CODE: u32 = 0xDEAD_0009;

/// Applies the `[windows]` settings: warden's own priority class, and whether new job
/// objects kill their programs when warden's handle closes (warden exits or crashes).
pub fn apply_settings(cfg: &WindowsConfig) -> io::Result<()> {
    job::set_kill_on_close(cfg.kill_programs_on_exit);
    let class = match cfg.priority {
        Priority::Idle => IDLE_PRIORITY_CLASS,
        Priority::BelowNormal => BELOW_NORMAL_PRIORITY_CLASS,
        Priority::Normal => NORMAL_PRIORITY_CLASS,
        Priority::AboveNormal => ABOVE_NORMAL_PRIORITY_CLASS,
        Priority::High => HIGH_PRIORITY_CLASS,
    };
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing;
    // SetPriorityClass only reads its arguments.
    if unsafe { SetPriorityClass(GetCurrentProcess(), class) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Windows has no umask; files in the data directory inherit its ACL (see
/// [`secure_dir`]).
pub fn private_files() {}

/// Creates `dir` and gives it a private access list (SYSTEM, Administrators and its
/// owner; see `acl.rs`) that the files warden creates inside inherit. Windows has no
/// mode to compare, so the list is set at every start and no change is reported; a file
/// system without access lists (FAT, some network shares) is logged, not fatal.
pub fn secure_dir(dir: &std::path::Path) -> io::Result<Option<u32>> {
    std::fs::create_dir_all(dir)?;
    if let Err(e) = acl::restrict(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot make the data directory private (its access list is unchanged); other users may be able to read it");
    }
    Ok(None)
}

/// Starts the child in a new console process group (so a CTRL_BREAK can be aimed at it
/// and a Ctrl-C at warden's console does not reach it), suspended, at normal priority.
///
/// The child must be handed to [`attach_child`] right after the spawn: that puts it into
/// its job object and only then lets it run, so nothing it starts can escape the job.
/// Normal priority is explicit because children of a below-normal process would
/// otherwise inherit below-normal.
pub fn prepare_command(cmd: &mut tokio::process::Command) {
    ensure_console();
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED | NORMAL_PRIORITY_CLASS);
}

/// Puts a child spawned with [`prepare_command`] into a new job object and resumes it.
///
/// A job that cannot be created or assigned is logged and the child runs without one
/// (stopping then reaches only the process itself). An error means the child could not be
/// resumed: the caller must kill it, or it would stay suspended forever.
pub fn attach_child(child: &tokio::process::Child) -> io::Result<()> {
    let (Some(pid), Some(handle)) = (child.id(), child.raw_handle()) else {
        return Err(io::Error::other(
            "the child exited before it could be attached",
        ));
    };
    if let Err(e) = job::create_for(pid, handle) {
        tracing::warn!(pid, error = %e, "cannot put the program into a job object; stopping it will not reach the processes it starts");
    }
    resume_threads(pid)
}

/// The limits of one spawn: applied to the program's job object once it exists.
pub struct Limiter {
    settings: super::LimitSettings,
}

impl Limiter {
    /// `job object` when group limits are set.
    pub fn mode(&self) -> Option<&'static str> {
        self.settings.needs_group().then_some("job object")
    }

    /// Nothing to release on Windows.
    pub fn spawned(&mut self) {}

    /// The job goes with its last process and handle.
    pub fn remove(self) {}

    /// A job's memory limit makes allocations fail instead of killing the program, which
    /// then ends on its own: no kill to report.
    pub fn out_of_memory(&self) -> bool {
        false
    }
}

/// Job objects enforce limits on every supported Windows.
pub fn limits_support() -> Result<&'static str, String> {
    Ok("job object")
}

/// Remembers `limits` for [`limit_child`]; the job exists only once the child does.
pub fn limit_command(
    _cmd: &mut tokio::process::Command,
    _scope: &str,
    _program: &str,
    limits: &super::LimitSettings,
) -> io::Result<Limiter> {
    Ok(Limiter {
        settings: limits.clone(),
    })
}

/// Sets the limits on the child's job object (memory, active processes, CPU rate hard
/// cap, affinity, priority class). `io_weight` has no job equivalent and is ignored with
/// a warning. The child has been resumed by then: the limits apply from its first
/// milliseconds, not its first instruction.
pub fn limit_child(child: &tokio::process::Child, limiter: &Limiter) -> io::Result<()> {
    let s = &limiter.settings;
    if !s.needs_group() && s.cpu_affinity.is_empty() && s.nice.is_none() {
        return Ok(());
    }
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child exited before its limits were set"))?;
    let job = job::lookup(pid)
        .ok_or_else(|| io::Error::other("the program has no job object to limit"))?;
    if s.io_weight.is_some() {
        tracing::warn!(pid, "limits.io_weight has no Windows equivalent; ignored");
    }
    job::set_limits(&job, s)
}

/// Resumes every thread of a process started suspended (a new process has exactly one).
/// Toolhelp is the documented way to find it: tokio does not expose the thread handle
/// that `CreateProcess` returned.
fn resume_threads(pid: u32) -> io::Result<()> {
    // SAFETY: plain flags in, a new handle (or INVALID_HANDLE_VALUE) out.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `snap` is a valid handle we own from here on.
    let snap = unsafe { OwnedHandle::from_raw_handle(snap) };
    let mut entry = THREADENTRY32 {
        dwSize: size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    let mut resumed = 0;
    // SAFETY: `entry` is a THREADENTRY32 with dwSize set, as the API requires.
    let mut more = unsafe { Thread32First(snap.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: plain values in, a new handle or null out.
            let t = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if t.is_null() {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `t` is a valid thread handle we own from here on.
            let t = unsafe { OwnedHandle::from_raw_handle(t) };
            // SAFETY: a valid thread handle opened with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(t.as_raw_handle()) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap.as_raw_handle(), &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "found no thread of the new process {pid} to resume"
        )));
    }
    Ok(())
}

/// Gives warden a console if it has none (as a service), hidden. Children inherit it, and
/// console control events only reach processes that share the sender's console. Without
/// one, every console program would also get a console window of its own.
fn ensure_console() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: AllocConsole takes nothing and fails harmlessly (ERROR_ACCESS_DENIED)
        // when the process already has a console; the window handle is only passed on.
        unsafe {
            if AllocConsole() != 0 {
                let w = GetConsoleWindow();
                if !w.is_null() {
                    ShowWindow(w, SW_HIDE);
                }
            }
        }
    });
}

/// Windows reparents nothing to warden: the job object already holds the whole tree.
pub fn become_subreaper() -> io::Result<()> {
    Ok(())
}

/// Asks the program to stop, or kills it. `SIGKILL` terminates its job; every other stop
/// signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) becomes CTRL_BREAK_EVENT to
/// its console process group — the only console event that can be aimed at one group.
pub fn signal_group(pgid: u32, signal: &str) -> io::Result<()> {
    match signal {
        "SIGKILL" => kill_group(pgid),
        "SIGTERM" | "SIGINT" | "SIGHUP" | "SIGQUIT" | "SIGUSR1" | "SIGUSR2" | "SIGBREAK" => {
            // A group id whose leader is gone may no longer name a group, and an event
            // that names no group could reach every process on warden's console,
            // warden included: only aim at a live leader.
            if pgid == 0 || !pid_alive(pgid) {
                return Ok(());
            }
            // SAFETY: plain values; the call touches no memory of ours.
            if unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pgid) } == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown signal {other}"),
        )),
    }
}

/// Kills every process of the program: terminates its job, or only the process itself
/// when it has none. A process that no longer exists is not an error.
pub fn kill_group(pgid: u32) -> io::Result<()> {
    if let Some(job) = job::lookup(pgid) {
        return job.terminate(TERMINATED_EXIT_CODE);
    }
    let Ok(h) = open_process(pgid, PROCESS_TERMINATE) else {
        return Ok(());
    };
    // SAFETY: a valid process handle opened with PROCESS_TERMINATE.
    if unsafe { TerminateProcess(h.as_raw_handle(), TERMINATED_EXIT_CODE) } == 0 {
        let e = io::Error::last_os_error();
        // Terminating a process that is already exiting answers "access denied".
        if pid_alive(pgid) {
            return Err(e);
        }
    }
    Ok(())
}

/// After the leader has exited, waits for the rest of its job to go: gives it `grace`,
/// then terminates the job. Returns true when the job is empty. Bounded: gives up 5 s
/// after the kill. Forgets the job either way.
pub async fn drain_group(pgid: u32, grace: Duration) -> bool {
    let Some(job) = job::lookup(pgid) else {
        // Without a job there is no tree to see; the leader is gone, so that is all.
        return true;
    };
    let started = Instant::now();
    let mut killed = false;
    if grace.is_zero() {
        let _ = job.terminate(TERMINATED_EXIT_CODE);
        killed = true;
    }
    // A short poll, as on Unix: the usual case (nothing left) returns at once.
    let gone = loop {
        match job.active_processes() {
            Ok(0) | Err(_) => break true,
            Ok(_) => {}
        }
        if !killed && started.elapsed() >= grace {
            let _ = job.terminate(TERMINATED_EXIT_CODE);
            killed = true;
        }
        if started.elapsed() >= grace + Duration::from_secs(5) {
            tracing::warn!(pgid, "processes of the job survived termination for 5 s");
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    job::forget(pgid);
    gone
}

fn open_process(pid: u32, access: u32) -> io::Result<OwnedHandle> {
    // SAFETY: plain values in, a new handle or null out.
    let h = unsafe { OpenProcess(access, 0, pid) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a valid process handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Creation time of a process in 100 ns units since 1601 (a FILETIME).
fn creation_time(process: HANDLE) -> Option<u64> {
    let mut times = [FILETIME::default(); 4];
    let [c, e, k, u] = &mut times;
    // SAFETY: `process` is a valid handle; the four out-pointers are FILETIMEs we own.
    let ok = unsafe { GetProcessTimes(process, c, e, k, u) };
    let t = (u64::from(times[0].dwHighDateTime) << 32) | u64::from(times[0].dwLowDateTime);
    (ok != 0 && t != 0).then_some(t)
}

/// The creation time of `pid` (100 ns units since 1601). Together with the pid it
/// identifies a process: a reused pid has another creation time.
pub fn process_start_time(pid: u32) -> Option<u64> {
    if pid == 0 {
        return None;
    }
    let h = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    creation_time(h.as_raw_handle())
}

/// The Windows heap needs no tuning.
pub fn tune_allocator() {}

/// The Windows heap decommits freed memory itself.
pub fn release_free_memory() {}

/// Windows trims the working set of image pages itself when memory is wanted; warden
/// does not force it (the private working set is what Task Manager shows).
pub fn release_startup_code() -> u64 {
    0
}

/// warden's private memory in bytes (`PrivateUsage`).
pub fn private_memory() -> Option<u64> {
    readings::own_private_bytes()
}

/// Windows has no per-process open-handle limit to raise (handles are bounded by memory):
/// there is no limit to report.
pub fn raise_open_file_limit() -> io::Result<u64> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Windows has no open-file limit",
    ))
}

/// Windows offers no reading of another process's environment that is cheap and
/// reliable: children are recognised by their recorded pid and creation time instead.
pub fn marked_children(_instance: &str) -> Option<Vec<super::MarkedChild>> {
    None
}

/// True if a process with this pid exists and has not exited.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match open_process(pid, PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION) {
        // SAFETY: a valid handle opened with SYNCHRONIZE; a zero timeout only polls.
        Ok(h) => (unsafe { WaitForSingleObject(h.as_raw_handle(), 0) }) == WAIT_TIMEOUT,
        // A process we may not open exists; any other failure means no such process.
        Err(e) => e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32),
    }
}

/// True while the process `pid` with creation time `start_time` exists and has not
/// exited: a reused pid (another creation time) and an exited process whose object is
/// still held open by someone both count as gone. A process warden may not open (another
/// user's) cannot be recognised and counts as gone too.
pub fn process_running(pid: u32, start_time: u64) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(h) = open_process(pid, PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION) else {
        return false;
    };
    creation_time(h.as_raw_handle()) == Some(start_time)
        // SAFETY: a valid handle opened with SYNCHRONIZE; a zero timeout only polls.
        && unsafe { WaitForSingleObject(h.as_raw_handle(), 0) } == WAIT_TIMEOUT
}

/// The Windows thread priority for a Unix nice value: 1–9 below normal, 10–18 lowest,
/// 19 idle (runs only when nothing else wants the CPU), 0 or less normal.
fn thread_priority_for(nice: i32) -> THREAD_PRIORITY {
    match nice {
        ..=0 => THREAD_PRIORITY_NORMAL,
        1..=9 => THREAD_PRIORITY_BELOW_NORMAL,
        10..=18 => THREAD_PRIORITY_LOWEST,
        _ => THREAD_PRIORITY_IDLE,
    }
}

fn set_own_thread_priority(priority: THREAD_PRIORITY) -> io::Result<()> {
    // SAFETY: GetCurrentThread returns a pseudo-handle that needs no closing;
    // SetThreadPriority only reads its arguments.
    if unsafe { SetThreadPriority(GetCurrentThread(), priority) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lowers the priority of the calling thread only, mapping the nice value (0–19) to a
/// thread priority (see `thread_priority_for`). Processes never inherit a thread's
/// priority on Windows (they take their priority class, which `prepare_command` sets to
/// normal), so programs are unaffected.
pub fn lower_thread_priority(nice: i32) -> io::Result<()> {
    set_own_thread_priority(thread_priority_for(nice))
}

/// The lowest CPU and IO priority for the calling thread only: background mode
/// (`THREAD_MODE_BACKGROUND_BEGIN`), which lowers its scheduling, I/O and memory
/// priority. Used by backup workers so a game server sharing the machine keeps its tick
/// rate. Unlike on Linux, threads the caller starts later (such as zstd's workers) do not
/// inherit it and run at normal priority. Where background mode is refused (Wine does not
/// implement it) the thread gets the lowest CPU priority instead, its I/O priority
/// unchanged.
pub fn lowest_thread_priority() -> io::Result<()> {
    set_own_thread_priority(THREAD_MODE_BACKGROUND_BEGIN)
        .or_else(|_| set_own_thread_priority(THREAD_PRIORITY_LOWEST))
}

/// Resolves when the process `pid` (not a child of warden: an adopted one) has exited.
/// Also reopens the program's job object by name, so that stopping an adopted program
/// still stops everything it started. Waits through a registered wait on the thread
/// pool: no thread is blocked per adopted program.
pub async fn wait_foreign(pid: u32) {
    let _ = job::lookup(pid);
    let Ok(process) = open_process(pid, PROCESS_SYNCHRONIZE) else {
        return;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    match RegisteredWait::new(process, tx) {
        Ok(wait) => {
            let _ = rx.await;
            drop(wait);
        }
        Err(e) => {
            tracing::warn!(pid, error = %e, "cannot register a wait; polling instead");
            while pid_alive(pid) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

type WaitSlot = Mutex<Option<tokio::sync::oneshot::Sender<()>>>;

/// A thread-pool wait on a process handle that fires a oneshot once.
struct RegisteredWait {
    wait: HANDLE,
    /// Read by the callback through a raw pointer; outlives the wait (see `Drop`).
    _slot: Arc<WaitSlot>,
    _process: OwnedHandle,
}

// SAFETY: `wait` is a registration handle usable from any thread; the rest is Send.
unsafe impl Send for RegisteredWait {}

impl RegisteredWait {
    fn new(process: OwnedHandle, tx: tokio::sync::oneshot::Sender<()>) -> io::Result<Self> {
        let slot = Arc::new(Mutex::new(Some(tx)));
        let mut wait: HANDLE = std::ptr::null_mut();
        // SAFETY: the callback receives `Arc::as_ptr(&slot)`, which stays valid until
        // `Drop` has unregistered the wait and waited for running callbacks to finish.
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &mut wait,
                process.as_raw_handle(),
                Some(wait_fired),
                Arc::as_ptr(&slot).cast(),
                INFINITE,
                WT_EXECUTEONLYONCE,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RegisteredWait {
            wait,
            _slot: slot,
            _process: process,
        })
    }
}

unsafe extern "system" fn wait_fired(ctx: *mut std::ffi::c_void, _timed_out: bool) {
    // SAFETY: `ctx` is `Arc::as_ptr` of the slot, alive while the wait is registered.
    let slot = unsafe { &*ctx.cast::<WaitSlot>() };
    let tx = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(tx) = tx {
        let _ = tx.send(());
    }
}

impl Drop for RegisteredWait {
    fn drop(&mut self) {
        // INVALID_HANDLE_VALUE: wait for a callback already running to return, so the
        // slot outlives every use of its pointer. Quick: the callback only sends.
        // SAFETY: `wait` came from RegisterWaitForSingleObject and is unregistered once.
        unsafe { UnregisterWaitEx(self.wait, INVALID_HANDLE_VALUE) };
    }
}

/// Describes how a child ended. Windows has no signals: large exit codes are NTSTATUS
/// values (a crash), shown in hex with their meaning where well known.
pub fn describe_exit(status: ExitStatus) -> ExitInfo {
    let code = status.code().unwrap_or(-1);
    ExitInfo {
        code: Some(code),
        signal: None,
        description: describe_code(code as u32),
    }
}

fn describe_code(code: u32) -> String {
    let meaning = match code {
        TERMINATED_EXIT_CODE => return "terminated by warden (job object killed)".to_string(),
        0xC000_0005 => "access violation",
        0xC000_00FD => "stack overflow",
        0xC000_0409 => "fail-fast exception (stack buffer overrun)",
        0xC000_0374 => "heap corruption",
        0xC000_0135 => "a required DLL was not found",
        0xC000_0142 => "DLL initialisation failed",
        0xC000_013A => "stopped by Ctrl-C or Ctrl-Break",
        0xC000_001D => "illegal instruction",
        0xC000_0094 => "integer division by zero",
        0x4001_0004 => "terminated by a debugger or Ctrl-C",
        c if c >= 0x8000_0000 => return format!("exit code 0x{c:08X} (an NTSTATUS crash code)"),
        c => return format!("exit code {c}"),
    };
    format!("exit code 0x{code:08X} ({meaning})")
}

/// Resolves when warden is asked to stop from its console: Ctrl-C, the console window
/// closing, or the system shutting down. Ctrl-Break is received and ignored: it is the
/// event warden sends to stop its programs, and a stray one must not stop warden.
pub async fn shutdown_signal() {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
    let (Ok(mut c), Ok(mut b), Ok(mut close), Ok(mut shut)) =
        (ctrl_c(), ctrl_break(), ctrl_close(), ctrl_shutdown())
    else {
        tracing::error!("cannot install console control handlers");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = c.recv() => return,
            _ = close.recv() => return,
            _ = shut.recv() => return,
            _ = b.recv() => tracing::info!("ignoring Ctrl-Break (use Ctrl-C to stop warden)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use tokio::io::AsyncBufReadExt;
    use windows_sys::Win32::System::Threading::GetPriorityClass;

    use super::*;

    /// Set in the environment of a copy of this test binary that should act as a sleeper.
    const SLEEPER: &str = "WARDEN_TEST_SLEEPER";

    /// Not a test on its own: the body of the sleeper processes the tests spawn (this
    /// test binary, filtered to this function, with `SLEEPER` set). With `SLEEPER=tree`
    /// it first starts a plain child sleeper and prints that child's pid; with
    /// `SLEEPER=busy` it burns CPU instead of sleeping.
    #[test]
    fn sleeper() {
        let Ok(kind) = std::env::var(SLEEPER) else {
            return;
        };
        let grandchild = (kind == "tree").then(|| {
            let exe = std::env::current_exe().expect("own exe");
            let child = std::process::Command::new(exe)
                .args(["--exact", "os::windows::tests::sleeper", "--nocapture"])
                .env(SLEEPER, "leaf")
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn grandchild");
            println!("grandchild {}", child.id());
            child
        });
        println!("sleeping");
        if kind == "busy" {
            // Burns CPU instead, for the resource readings' tests.
            let end = Instant::now() + Duration::from_secs(120);
            let mut x = 0u64;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        } else {
            std::thread::sleep(Duration::from_secs(120));
        }
        if let Some(mut c) = grandchild {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True under Wine (it keeps its settings under `HKLM\Software\Wine`), where a few
    /// calls are stubs: tests then say so by name and check what does happen.
    pub(super) fn under_wine() -> bool {
        use windows_sys::Win32::System::Registry::{
            HKEY, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegOpenKeyExW,
        };
        let path: Vec<u16> = "Software\\Wine\0".encode_utf16().collect();
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and an out-pointer we own; the key is closed below.
        let rc = unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, path.as_ptr(), 0, KEY_READ, &mut key) };
        if rc != 0 {
            return false;
        }
        // SAFETY: `key` was opened above and is closed once.
        unsafe { RegCloseKey(key) };
        true
    }

    /// Spawns a sleeper the way the supervisor spawns programs; returns it and, for a
    /// tree, the pid of its own child. `busy` spins instead of sleeping.
    pub(super) async fn spawn_sleeper(kind: &str) -> (tokio::process::Child, Option<u32>) {
        let exe = std::env::current_exe().expect("own exe");
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(["--exact", "os::windows::tests::sleeper", "--nocapture"])
            .env(SLEEPER, kind)
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        prepare_command(&mut cmd);
        let mut child = cmd.spawn().expect("spawn sleeper");
        attach_child(&child).expect("attach");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut grandchild = None;
        let read = async {
            while let Some(line) = lines.next_line().await.expect("line") {
                if let Some(pid) = line.strip_prefix("grandchild ") {
                    grandchild = pid.trim().parse::<u32>().ok();
                }
                if line.contains("sleeping") {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the sleeper started within 30 s");
        (child, grandchild)
    }

    async fn wait_dead(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "pid {pid} still alive after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn own_start_time_is_stable_and_others_differ() {
        let me = std::process::id();
        let a = process_start_time(me).expect("own start time");
        assert_eq!(Some(a), process_start_time(me));
        assert!(pid_alive(me));
        assert_eq!(process_start_time(0), None);
        assert!(!pid_alive(0));
    }

    #[test]
    fn running_means_same_creation_time_and_not_exited() {
        let me = std::process::id();
        let start = process_start_time(me).expect("own start time");
        assert!(process_running(me, start));
        assert!(!process_running(me, start + 1));
        assert!(!process_running(0, start));
        assert!(available_memory().is_some_and(|m| m > 0));
    }

    #[test]
    fn lowering_priority_touches_only_this_thread() {
        use windows_sys::Win32::System::Threading::GetThreadPriority;
        // SAFETY: pseudo-handle of the calling thread.
        let main_before = unsafe { GetThreadPriority(GetCurrentThread()) };
        let seen = std::thread::spawn(|| {
            lower_thread_priority(10).expect("lower");
            // SAFETY: pseudo-handle of the calling thread.
            let lowered = unsafe { GetThreadPriority(GetCurrentThread()) };
            lowest_thread_priority().expect("background mode");
            lowered
        })
        .join()
        .expect("join");
        assert_eq!(seen, THREAD_PRIORITY_LOWEST);
        // SAFETY: pseudo-handle of the calling thread.
        assert_eq!(
            unsafe { GetThreadPriority(GetCurrentThread()) },
            main_before
        );
        assert_eq!(thread_priority_for(0), THREAD_PRIORITY_NORMAL);
        assert_eq!(thread_priority_for(5), THREAD_PRIORITY_BELOW_NORMAL);
        assert_eq!(thread_priority_for(19), THREAD_PRIORITY_IDLE);
    }

    #[test]
    fn exit_codes_read_well() {
        assert_eq!(describe_code(3), "exit code 3");
        assert!(describe_code(0xC000_0005).contains("access violation"));
        assert!(describe_code(0xC000_0999).contains("0xC0000999"));
        assert!(describe_code(TERMINATED_EXIT_CODE).contains("terminated by warden"));
    }

    #[test]
    fn unknown_signal_is_refused() {
        let e = signal_group(std::process::id(), "SIGNOPE").expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn killing_the_job_stops_the_whole_tree() {
        let (mut child, grandchild) = spawn_sleeper("tree").await;
        let pid = child.id().expect("pid");
        let grandchild = grandchild.expect("the sleeper printed its child's pid");
        assert!(pid_alive(pid) && pid_alive(grandchild));
        kill_group(pid).expect("kill");
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(TERMINATED_EXIT_CODE as i32));
        assert!(
            describe_exit(status)
                .description
                .contains("terminated by warden")
        );
        wait_dead(grandchild).await;
        assert!(drain_group(pid, Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_leftover_is_killed_when_the_leader_exits() {
        let (mut child, grandchild) = spawn_sleeper("tree").await;
        let pid = child.id().expect("pid");
        let grandchild = grandchild.expect("grandchild pid");
        // Only the leader goes; the job still holds the grandchild.
        child.start_kill().expect("kill leader");
        child.wait().await.expect("wait");
        assert!(pid_alive(grandchild));
        let started = Instant::now();
        assert!(drain_group(pid, Duration::from_millis(200)).await);
        assert!(started.elapsed() >= Duration::from_millis(200));
        wait_dead(grandchild).await;
    }

    #[tokio::test]
    async fn a_job_is_reopened_by_name_for_adoption() {
        let (mut child, _) = spawn_sleeper("leaf").await;
        let pid = child.id().expect("pid");
        // As after a restart of warden: nothing of the job in memory.
        job::forget(pid);
        let job = job::lookup(pid).expect("job reopened by its name");
        assert_eq!(job.active_processes().expect("query"), 1);
        // wait_foreign sees the end of a process warden did not spawn (here: did, but
        // only through its pid).
        let waiter = tokio::spawn(wait_foreign(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiter.is_finished(),
            "wait_foreign returned while the process runs"
        );
        kill_group(pid).expect("kill");
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("wait_foreign resolved")
            .expect("join");
        child.wait().await.expect("wait");
        assert!(drain_group(pid, Duration::ZERO).await);
    }

    #[tokio::test]
    async fn warden_below_normal_programs_normal() {
        apply_settings(&WindowsConfig {
            priority: Priority::BelowNormal,
            kill_programs_on_exit: false,
        })
        .expect("apply");
        // SAFETY: pseudo-handle of the current process.
        let mine = unsafe { GetPriorityClass(GetCurrentProcess()) };
        assert_eq!(mine, BELOW_NORMAL_PRIORITY_CLASS);
        let (mut child, _) = spawn_sleeper("leaf").await;
        let handle = child.raw_handle().expect("handle");
        // SAFETY: the child's process handle, valid while `child` is not reaped.
        let theirs = unsafe { GetPriorityClass(handle) };
        kill_group(child.id().expect("pid")).expect("kill");
        child.wait().await.expect("wait");
        apply_settings(&WindowsConfig {
            priority: Priority::Normal,
            kill_programs_on_exit: false,
        })
        .expect("restore");
        assert_eq!(theirs, NORMAL_PRIORITY_CLASS);
    }
}

/// Who a program runs as: Unix only, never made on Windows.
#[derive(Debug, Clone)]
pub struct RunAs {
    /// Unused on Windows.
    pub name: String,
    /// Unused on Windows.
    pub home: std::path::PathBuf,
}

impl RunAs {
    /// Never root on Windows.
    pub fn is_root(&self) -> bool {
        false
    }
}

/// Windows has no root to refuse: programs run as warden's account.
pub fn running_as_root() -> bool {
    false
}

/// Running a program as another account is not available on Windows.
pub fn resolve_run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    Err("user and group (run as another user) are available on Linux and other Unix systems only; on Windows a program runs as warden's service account: remove user and group".into())
}

/// Never called on Windows ([`resolve_run_as`] refuses).
pub fn run_as(_cmd: &mut tokio::process::Command, _who: &RunAs) {}
