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

use crate::config::{Priority, WindowsConfig};
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

/// Puts the child in a new process group led by itself, so that the whole tree it forks
/// can be signalled at once, and so a Ctrl-C at warden's terminal does not reach it.
pub fn prepare_command(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
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
