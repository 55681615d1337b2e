//! Per-OS process control and resource readings: process groups, signals, start-time
//! identity, reaping, thread priority, the per-process and host counters that `metrics`
//! samples, and the few file-system details the files service needs (`files.rs`).
//!
//! Architecture invariant: this is the only module with `cfg(unix)` / `cfg(windows)`
//! code. Everything above it speaks in terms of "the program's process group" and of the
//! plain reading types below, which every OS implementation fills.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(target_os = "linux")]
pub use cgroup::*;

#[cfg(all(unix, not(target_os = "linux")))]
compile_error!("resource sampling reads /proc: among Unix systems only Linux is supported");

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

mod files;
pub use files::*;

/// CPU priority class of warden's own process on Windows (programs always start at normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Runs only when the machine is otherwise idle.
    Idle,
    /// Below the game servers it supervises (the default).
    #[default]
    BelowNormal,
    /// Like any other program.
    Normal,
    /// Above normal programs.
    AboveNormal,
    /// Above nearly everything; rarely wise.
    High,
}

/// Windows-only settings.
#[derive(Debug, Clone)]
pub struct WindowsConfig {
    /// Priority class warden sets for itself at start.
    pub priority: Priority,
    /// Create each program's job object with "kill on job close", so that programs die
    /// with warden even when it crashes. Incompatible with `on_shutdown = "leave"`.
    pub kill_programs_on_exit: bool,
}

/// One of a program's output streams, as its console reads it.
pub type OutputReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// The environment variable naming the program a child runs for (also read by programs).
pub const PROGRAM_VAR: &str = "WARDEN_PROGRAM";

/// The environment variable that marks a child of warden: `INSTANCE:GENERATION`, where
/// INSTANCE names the data directory (see [`instance_id`]) and GENERATION counts the
/// program's spawns. A restarted warden finds its children by it without the database.
pub const CHILD_MARKER_VAR: &str = "WARDEN_CHILD";

/// The marker value of data directory `data_dir`: 16 hex digits of a hash of its
/// canonical path, so two wardens with different data directories never claim each
/// other's children.
pub fn instance_id(data_dir: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let hash = blake3::hash(canonical.to_string_lossy().as_bytes());
    hash.to_hex()[..16].to_string()
}

/// A child of an earlier warden found by its marker (see [`CHILD_MARKER_VAR`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedChild {
    /// Process id (the leader of the program's process group).
    pub pid: u32,
    /// OS start time of that pid.
    pub start_time: u64,
    /// The program it runs for.
    pub program: String,
    /// Its generation.
    pub generation: u64,
}
mod health;
pub use health::*;
/// Resource limits of one program as the OS layer applies them (validated above).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitSettings {
    /// Bytes of memory.
    pub memory_max: Option<u64>,
    /// CPU in percent of one core.
    pub cpu_max_percent: Option<f64>,
    /// Processes (and threads) at once.
    pub pids_max: Option<u64>,
    /// Relative I/O weight, 1-10000 (100 = default).
    pub io_weight: Option<u16>,
    /// Cores the program may run on.
    pub cpu_affinity: Vec<usize>,
    /// Unix nice value (Windows: mapped to a priority class).
    pub nice: Option<i32>,
}

impl LimitSettings {
    /// True when a group of processes must be limited (cgroup, job object limits).
    pub fn needs_group(&self) -> bool {
        self.memory_max.is_some()
            || self.cpu_max_percent.is_some()
            || self.pids_max.is_some()
            || self.io_weight.is_some()
    }
}
/// Cumulative counters and current gauges of one process, as read from the OS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// OS start time; with the pid it identifies the process (a reused pid differs).
    pub start_time: u64,
    /// User + system CPU time consumed so far, in nanoseconds.
    pub cpu_ns: u64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors (handles on Windows).
    pub open_files: u64,
    /// Bytes read from storage so far.
    pub read_bytes: u64,
    /// Bytes written to storage so far.
    pub write_bytes: u64,
}

/// Cumulative CPU time of the host or one core, in the OS's own units (ticks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time spent doing anything but idling or waiting for I/O.
    pub busy: u64,
    /// All time.
    pub total: u64,
}

/// Memory and swap of the host, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// Installed memory.
    pub total: u64,
    /// Memory available to programs without swapping.
    pub available: u64,
    /// Swap size.
    pub swap_total: u64,
    /// Unused swap.
    pub swap_free: u64,
}

/// Usage of one mounted local filesystem, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountUsage {
    /// Where it is mounted.
    pub mount: String,
    /// Filesystem type (e.g. `ext4`).
    pub fs_type: String,
    /// Size.
    pub total: u64,
    /// Used.
    pub used: u64,
}

/// Cumulative network bytes over every interface but loopback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetTotals {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// One process of the host, for the on-demand process list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessEntry {
    /// Process id.
    pub pid: u32,
    /// Short executable name (never the command line, which may hold secrets).
    pub name: String,
    /// CPU time so far, in nanoseconds.
    pub cpu_ns: u64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
}

/// Static facts about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// Operating system, e.g. `Debian GNU/Linux 13 (trixie)`.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Installed memory in bytes.
    pub memory_bytes: u64,
    /// Swap size in bytes.
    pub swap_bytes: u64,
    /// Unix ms when the host booted.
    pub boot_time_ms: i64,
}
