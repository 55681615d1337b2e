//! Unix process control: each program runs as the leader of its own process group,
//! which is signalled and killed as a whole; warden is a child subreaper on Linux so
//! orphaned grandchildren are reparented to it and reaped instead of lingering.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Priority, WindowsConfig};
use crate::program::ExitInfo;

/// The `[windows]` settings have no Unix meaning: a lower niceness for warden would be
/// inherited by every program (which could not undo it), and Unix process groups die with
/// warden only if it kills them. Accepted so one config file serves both platforms; a
/// non-default value is mentioned so nobody expects an effect.
pub fn apply_settings(cfg: &WindowsConfig) -> io::Result<()> {
    if cfg.priority != Priority::default() || cfg.kill_programs_on_exit {
        tracing::info!(
            "the [windows] settings (priority, kill_programs_on_exit) apply only on Windows"
        );
    }
    Ok(())
}

/// The umask warden started with, once [`private_files`] replaced it (`u32::MAX`
/// until then): programs get it back, so their own files are made as before.
static STARTING_UMASK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// A program's stdout and stderr, captured for its console.
pub struct Output;

impl Output {
    /// Sends `cmd`'s stdout and stderr into pipes that warden reads.
    pub async fn capture(cmd: &mut tokio::process::Command) -> io::Result<Output> {
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        Ok(Output)
    }

    /// The readers of the spawned child's stdout and stderr (non-blocking pipes: no
    /// thread is held while the program is silent).
    pub fn readers(self, child: &mut tokio::process::Child) -> [Option<super::OutputReader>; 2] {
        [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as super::OutputReader),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as super::OutputReader),
        ]
    }
}

/// Puts the child in a new process group led by itself, so that the whole tree it forks
/// can be signalled at once, and so a Ctrl-C at warden's terminal does not reach it.
pub fn prepare_command(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
    let umask = STARTING_UMASK.load(std::sync::atomic::Ordering::Relaxed);
    if umask != u32::MAX {
        let mode = nix::sys::stat::Mode::from_bits_truncate(umask as nix::libc::mode_t);
        // SAFETY: umask(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::stat::umask(mode);
                Ok(())
            });
        }
    }
}

/// From now on, files and folders warden creates are its user's alone (umask 077): the
/// database, its journal files, console logs, backups. Children keep the old umask.
pub fn private_files() {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    let _ = STARTING_UMASK.compare_exchange(
        u32::MAX,
        old.bits() as u32,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Creates `dir` (mode 0700) or, when it exists and others may read or enter it,
/// tightens it to 0700; returns the old mode when it had to. Files directly in it that
/// others may read (a database made by an older warden) are made 0600 as well, where
/// warden may change them (a file it cannot change is logged, not fatal).
pub fn secure_dir(dir: &std::path::Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        return Ok(None);
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    let tightened = if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Some(mode)
    } else {
        None
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file()
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) =
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
        {
            // Someone else's file (a config root put there): not ours to change, and no
            // reason to refuse to start; warden's own files are created 0600 anyway.
            tracing::warn!(file = %entry.path().display(), error = %e, "cannot make a file in the data directory private (0600); other users may be able to read it");
        }
    }
    Ok(tightened)
}

/// Unix needs nothing once the child runs: its process group was set before `exec`.
pub fn attach_child(_child: &tokio::process::Child) -> io::Result<()> {
    Ok(())
}

/// Resolves when warden is asked to stop: SIGTERM or SIGINT. If the handlers cannot be
/// installed this is logged and never resolves.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Windows services exist only on Windows: every operation says so (on Linux, run
/// `warden serve` under systemd or another service manager).
pub mod service {
    use std::error::Error;
    use std::ffi::OsString;
    use std::io;
    use std::path::PathBuf;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    /// The name a Windows service would have.
    pub const NAME: &str = "warden";

    /// What the service runs once started (see the Windows implementation).
    pub type Body =
        Box<dyn FnOnce(CancellationToken) -> Result<(), Box<dyn Error + Send + Sync>> + Send>;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "`warden service` manages a Windows service and works only on Windows; elsewhere run `warden serve` under your service manager (e.g. a systemd unit)",
        )
    }

    /// A service's default data directory: there is none here.
    pub fn default_data_dir() -> io::Result<PathBuf> {
        Err(unsupported())
    }

    /// Registering a service: Windows only.
    pub fn install(_exe: PathBuf, _args: Vec<OsString>, _preshutdown: Duration) -> io::Result<()> {
        Err(unsupported())
    }

    /// Removing a service: Windows only.
    pub fn uninstall(_timeout: Duration) -> io::Result<()> {
        Err(unsupported())
    }

    /// Starting a service: Windows only.
    pub fn start(_timeout: Duration) -> io::Result<()> {
        Err(unsupported())
    }

    /// Stopping a service: Windows only.
    pub fn stop(_timeout: Duration) -> io::Result<()> {
        Err(unsupported())
    }

    /// Running as a service: Windows only.
    pub fn run(_stop_wait: Duration, _body: Body) -> io::Result<()> {
        Err(unsupported())
    }
}

/// Raises the soft open-file limit to the hard limit (a default of 1,024 is easily
/// reached by clients alone) and returns the limit now in force. Children inherit the
/// raised limit; programs that need a lower one set it themselves.
pub fn raise_open_file_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// Settles the C allocator (glibc) for a long-running daemon, so that what a burst
/// allocates goes back to the OS (measured in bench/README.md):
/// - a fixed mmap threshold of 128 KiB: every larger block (read buffers, zstd's window
///   and job buffers, big responses) is its own mapping, returned the moment it is freed.
///   Left dynamic, glibc raises the threshold after the first such free and serves later
///   big blocks from the heap, where ~20 MB stayed behind after a backup even with trims;
/// - at most 2 arenas: glibc otherwise creates up to 8 per core, each keeping its freed
///   memory.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; it takes no pointers.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the OS (glibc `malloc_trim`): after a burst (a backup, a
/// big download, an import) the allocator otherwise keeps the pages it no longer uses.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own arenas; it takes no pointers of ours.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// warden's private memory (resident anonymous pages, `RssAnon`), in bytes: resident
/// less shared pages of `/proc/self/statm` (shared counts the file-backed and shmem
/// pages), a line of a few numbers where `/proc/self/status` is forty formatted fields.
#[cfg(target_os = "linux")]
pub fn private_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut pages = statm
        .split_ascii_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().ok());
    let (resident, shared) = (pages.next()??, pages.next()??);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    resident.saturating_sub(shared).checked_mul(page)
}

/// A size field (in kB) of `/proc/self/status`, e.g. `RssAnon`, in bytes.
#[cfg(all(target_os = "linux", test))]
pub(super) fn own_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Non-Linux Unix: unknown.
#[cfg(not(target_os = "linux"))]
pub fn private_memory() -> Option<u64> {
    None
}

/// Makes warden the reaper of orphaned descendants (Linux). Without it, grandchildren
/// killed at stop would be reparented to PID 1, which in containers often never reaps.
pub fn become_subreaper() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    Ok(())
}

fn signal_by_name(name: &str) -> Option<Signal> {
    name.parse::<Signal>().ok()
}

/// Sends the named signal (e.g. `SIGTERM`) to every process in the group.
/// A group that no longer exists is not an error.
pub fn signal_group(pgid: u32, signal: &str) -> io::Result<()> {
    let sig = signal_by_name(signal).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown signal {signal}"),
        )
    })?;
    send_group(pgid, Some(sig))
}

/// Kills every process in the group (SIGKILL).
pub fn kill_group(pgid: u32) -> io::Result<()> {
    send_group(pgid, Some(Signal::SIGKILL))
}

fn send_group(pgid: u32, sig: Option<Signal>) -> io::Result<()> {
    let pgid = i32::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match killpg(Pid::from_raw(pgid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

fn group_exists(pgid: u32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    // EPERM means a process exists that we may not signal: still "exists".
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// Reaps every exited child of warden that belongs to the group (orphans that were
/// reparented to us). Only touches that group, so children owned by tokio elsewhere are
/// never stolen.
fn reap_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    loop {
        match waitpid(Pid::from_raw(-pgid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// After the group leader has exited, waits for the rest of its process group to go:
/// gives it `grace`, then kills it, and reaps what was reparented to warden. Returns
/// true when the group is gone. Bounded: gives up 5 s after the kill.
pub async fn drain_group(pgid: u32, grace: Duration) -> bool {
    let started = Instant::now();
    let mut killed = false;
    if grace.is_zero() {
        let _ = kill_group(pgid);
        killed = true;
    }
    // A short poll: the usual case (no leftovers) returns on the first check, and the
    // kernel offers no notification for "process group became empty".
    loop {
        reap_group(pgid);
        if !group_exists(pgid) {
            return true;
        }
        if !killed && started.elapsed() >= grace {
            let _ = kill_group(pgid);
            killed = true;
        }
        if started.elapsed() >= grace + Duration::from_secs(5) {
            tracing::warn!(pgid, "processes of the group survived SIGKILL for 5 s");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`).
/// Together with the pid it identifies a process: a reused pid has another start time.
#[cfg(target_os = "linux")]
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces or ')', so
    // split after the last ')'. Fields then start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Non-Linux Unix (not a supported target): no reliable start time, so warden never
/// adopts a process there and starts programs afresh after a crash of warden.
#[cfg(not(target_os = "linux"))]
pub fn process_start_time(_pid: u32) -> Option<u64> {
    None
}

/// Resolves when the process `pid` (not a child of warden: an adopted one) has exited.
/// Uses a pidfd on Linux (an immediate notification); falls back to checking every
/// 250 ms where pidfds are unavailable.
pub async fn wait_foreign(pid: u32) {
    #[cfg(target_os = "linux")]
    if let Some(fd) = pidfd_open(pid) {
        // SAFETY: `fd` is an OwnedFd we just opened; the AsyncFd owns it from here on, so
        // it stays open and refers to the same pidfd for the AsyncFd's whole lifetime.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        };
        if let Ok(afd) = registered {
            let _ = afd.readable().await;
            return;
        }
    }
    while process_start_time(pid).is_some() && pid_alive(pid) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = i32::try_from(pid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new file descriptor or -1;
    // it touches no memory of ours.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    let fd = i32::try_from(fd).ok()?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// True if a process with this pid exists (zombies included).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Describes how a child ended.
pub fn describe_exit(status: ExitStatus) -> ExitInfo {
    if let Some(code) = status.code() {
        return ExitInfo {
            code: Some(code),
            signal: None,
            description: format!("exit code {code}"),
        };
    }
    let signal = status
        .signal()
        .map(|s| {
            Signal::try_from(s)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {s}"))
        })
        .unwrap_or_else(|| "unknown signal".to_string());
    ExitInfo {
        code: None,
        description: format!("killed by {signal}"),
        signal: Some(signal),
    }
}

/// True while the process `pid` with OS start time `start_time` exists and has not
/// exited: a reused pid (another start time) and a zombie (exited, not yet reaped by its
/// parent — common for orphans of a killed warden) both count as gone.
#[cfg(target_os = "linux")]
pub fn process_running(pid: u32, start_time: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    // Fields after the command name start at field 3 (state); the start time is field 22.
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next();
    let start = fields.nth(22 - 4).and_then(|s| s.parse::<u64>().ok());
    !matches!(state, Some("Z" | "X" | "x")) && start == Some(start_time)
}

/// Non-Linux Unix: without a start time no process can be recognised again.
#[cfg(not(target_os = "linux"))]
pub fn process_running(_pid: u32, _start_time: u64) -> bool {
    false
}

/// Memory available for new work in bytes (`MemAvailable`), when the OS reports it.
#[cfg(target_os = "linux")]
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Non-Linux Unix: unknown.
#[cfg(not(target_os = "linux"))]
pub fn available_memory() -> Option<u64> {
    None
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to disk now,
/// without waiting (Linux `sync_file_range`; a no-op elsewhere). Large archives written
/// this way reach the disk while they are still being produced, so the final fsync has
/// little left to do instead of flushing gigabytes at once. Durability still comes only
/// from a later fsync.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range takes a descriptor we own (borrowed for the call) and
        // integers; it touches no memory of ours. Failure only means no early writeback.
        unsafe {
            nix::libc::sync_file_range(
                file.as_raw_fd(),
                offset,
                len,
                nix::libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Flushes everything written to the file system that holds `path` (Linux `syncfs`;
/// elsewhere a global `sync`). One call instead of an fsync per file after extracting
/// thousands of files.
pub fn sync_filesystem(path: &std::path::Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let dir = std::fs::File::open(path)?;
        nix::unistd::syncfs(&dir).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        nix::unistd::sync();
        Ok(())
    }
}

/// Creates a symbolic link at `link` pointing to `target` (stored verbatim).
pub fn symlink(target: &std::path::Path, link: &std::path::Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Sets the permission bits of a file or directory from an archive's mode.
pub fn set_file_mode(path: &std::path::Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `resident − shared` of `statm` is the `RssAnon` that `status` shows (read a moment
    /// apart, so within a little).
    #[cfg(target_os = "linux")]
    #[test]
    fn private_memory_is_rss_anon() {
        let keep = vec![1u8; 8 << 20];
        let private = private_memory().expect("statm");
        let anon = own_status_bytes("RssAnon").expect("RssAnon");
        assert!(private >= 8 << 20, "{private} B with 8 MiB in use");
        assert!(
            private.abs_diff(anon) < 1 << 20,
            "statm {private} B, status {anon} B"
        );
        drop(keep);
    }

    #[test]
    fn own_start_time_is_stable_and_others_differ() {
        let me = std::process::id();
        let a = process_start_time(me).expect("own start time");
        assert_eq!(Some(a), process_start_time(me));
        assert_eq!(process_start_time(u32::MAX / 2), None);
    }

    #[test]
    fn running_means_same_start_time_and_not_exited() {
        let me = std::process::id();
        let start = process_start_time(me).expect("own start time");
        assert!(process_running(me, start));
        assert!(!process_running(me, start + 1));
        assert!(available_memory().is_some_and(|m| m > 0));
    }

    #[test]
    fn signal_names() {
        assert!(signal_by_name("SIGTERM").is_some());
        assert!(signal_by_name("SIGNOPE").is_none());
    }
}

/// Who a program runs as, resolved from its `user` and `group`.
#[derive(Debug, Clone)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id (the user's primary group unless `group` named another).
    pub gid: u32,
    /// User name, for `USER`/`LOGNAME`.
    pub name: String,
    /// Home folder, for `HOME`.
    pub home: std::path::PathBuf,
}

impl RunAs {
    /// The account is root (uid 0).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// True when warden runs as root (effective uid 0).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Resolves `user` (a name or numeric uid) and `group` (a name or numeric gid) through
/// the system's user database. `None` when neither is set.
pub fn resolve_run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>, String> {
    use nix::unistd::{Gid, Group, Uid, User};
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let lookup = |e: nix::Error| format!("cannot read the user database: {e}");
    let (uid, mut gid, name, home) = match user {
        Some(u) => {
            let found = match u.parse::<u32>() {
                Ok(id) => User::from_uid(Uid::from_raw(id)).map_err(lookup)?,
                Err(_) => User::from_name(u).map_err(lookup)?,
            };
            let found = found.ok_or_else(|| format!("there is no user {u:?} on this system"))?;
            (
                found.uid.as_raw(),
                found.gid.as_raw(),
                found.name,
                found.dir,
            )
        }
        None => {
            let me = nix::unistd::geteuid();
            let found = User::from_uid(me).map_err(lookup)?;
            (
                me.as_raw(),
                nix::unistd::getegid().as_raw(),
                found.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                found.map(|u| u.dir).unwrap_or_default(),
            )
        }
    };
    if let Some(g) = group {
        let found = match g.parse::<u32>() {
            Ok(id) => Group::from_gid(Gid::from_raw(id)).map_err(lookup)?,
            Err(_) => Group::from_name(g).map_err(lookup)?,
        };
        gid = found
            .ok_or_else(|| format!("there is no group {g:?} on this system"))?
            .gid
            .as_raw();
    }
    if uid != nix::unistd::geteuid().as_raw() && !running_as_root() {
        return Err(format!(
            "warden runs as uid {}, which cannot start programs as another user ({name}); run warden as root, or remove user",
            nix::unistd::geteuid()
        ));
    }
    Ok(Some(RunAs {
        uid,
        gid,
        name,
        home,
    }))
}

/// Makes the child run as `who` (set after the fork, before `exec`; extra groups of
/// warden's are dropped).
pub fn run_as(cmd: &mut tokio::process::Command, who: &RunAs) {
    cmd.uid(who.uid).gid(who.gid);
}
