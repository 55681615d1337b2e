//! The internal event bus: the typed [`Event`] vocabulary and its fan-out.
//!
//! Architecture invariant: publishing never blocks. The bus is a bounded broadcast
//! channel; a subscriber that falls more than [`CAPACITY`] events behind receives
//! `Lagged(n)` and must resynchronise from the store (durable events) or simply skip
//! (live-only data such as console lines). Durability is not the bus's job: lifecycle
//! events are written to the store by `events::Recorder` before they are published.
//!
//! Resource samples travel apart from events, on a `watch` channel that holds the latest
//! [`SampleTick`]: a tick wakes only the few that follow samples (live views, alert rules
//! on metrics), not every subscriber of events, and a slow follower simply sees the
//! newest tick instead of lagging.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

use crate::program::{ExitInfo, HealthState, State};

/// Events buffered per subscriber before it is told it lagged.
pub const CAPACITY: usize = 8192;

/// Something that happened. Shared as `Arc<Event>` so fan-out never copies payloads.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A program moved between lifecycle states.
    State(StateChange),
    /// A console line from (or to) a program.
    Console(ConsoleLine),
    /// Players online in a game server, sampled by `games` every
    /// `game.players_interval_seconds` (the `players` metric series).
    Players(PlayersSample),
    /// A program's game health changed (liveness checks), published by `games`.
    Health(HealthChange),
    /// Something notable that is not a state change (warden started, a health check
    /// failed, a backup finished…). `alerts` routes notices to channels by `kind` and
    /// `severity`, so a new producer needs no change there.
    Notice(Notice),
    /// A job run started or ended, a trigger of a job was skipped, or a run is taking
    /// longer than predicted (published by `schedule`, stored as an event first).
    Job(JobEvent),
    /// A schedule fired, was skipped or missed, or its task chain ended (published by
    /// `schedule`, stored as an event first).
    Schedule(ScheduleEvent),
    /// Backup activity: a backup's progress and outcome, pruning, verification, restores.
    Backup(BackupActivity),
    /// A program was created, its definition changed, or it was deleted (published by
    /// the supervisor after the change is stored), so views of the program list refresh.
    Program(ProgramChange),
    /// A server install from a template started, made progress, finished or failed
    /// (published by `install`).
    Install(InstallActivity),
}

/// What an install activity event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallActivityKind {
    /// The install started.
    Started,
    /// Download progress (one per SteamCMD progress line or downloaded file).
    Progress,
    /// The files are in place and the program is defined, stopped and ready to start.
    Finished,
    /// The install failed; nothing was left behind.
    Failed,
}

/// One install activity event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstallActivity {
    /// The program being installed.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// The install (`GET /api/install/{id}`).
    pub install_id: u64,
    /// What happened.
    pub kind: InstallActivityKind,
    /// What the installer is doing (`downloading`, `verifying install`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// 0 to 100, for progress events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Bytes done so far.
    pub bytes_done: u64,
    /// Bytes in total (0 when unknown).
    pub bytes_total: u64,
    /// The installed build (SteamCMD build id or Minecraft version), when finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// The failure's code, when failed (`disk_full`, `no_subscription`, `checksum_mismatch`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Readable summary.
    pub message: String,
}

/// What a backup activity event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupActivityKind {
    /// A backup started.
    Started,
    /// Bytes read so far (published at most every 250 ms per backup).
    Progress,
    /// A consistency step ran (its message names it).
    Step,
    /// A backup finished and was verified.
    Finished,
    /// A backup failed.
    Failed,
    /// A backup was cancelled.
    Cancelled,
    /// A backup was deleted by the retention policy.
    Pruned,
    /// A backup was verified (the message says whether it matched its manifest).
    Verified,
    /// A restore started.
    RestoreStarted,
    /// A restore replaced the program's data.
    Restored,
    /// A restore failed; the program's data was left as it was.
    RestoreFailed,
}

/// One backup activity event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupActivity {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// What happened.
    pub kind: BackupActivityKind,
    /// The backup concerned.
    pub backup_id: i64,
    /// The restore concerned, for restore events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_id: Option<i64>,
    /// Bytes of file data read so far.
    pub bytes_done: u64,
    /// Bytes of file data to read in total.
    pub bytes_total: u64,
    /// The file being read, for progress events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_file: Option<String>,
    /// Readable summary.
    pub message: String,
}

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobEventKind {
    /// A run started.
    Started,
    /// A run succeeded.
    Finished,
    /// A run failed (a step failed after its retries, or it was interrupted).
    Failed,
    /// A run was cancelled.
    Cancelled,
    /// A trigger was dropped (overlap policy, lease held elsewhere…).
    Skipped,
    /// A run reached 80 % of its predicted 90th-percentile duration.
    OverrunWarning,
    /// A run passed its predicted 90th-percentile duration.
    Overrun,
}

impl JobEventKind {
    /// The stored event kind, e.g. `job_overrun_warning`.
    pub fn event_kind(self) -> &'static str {
        match self {
            JobEventKind::Started => "job_started",
            JobEventKind::Finished => "job_finished",
            JobEventKind::Failed => "job_failed",
            JobEventKind::Cancelled => "job_cancelled",
            JobEventKind::Skipped => "job_skipped",
            JobEventKind::OverrunWarning => "job_overrun_warning",
            JobEventKind::Overrun => "job_overrun",
        }
    }
}

/// Something that happened to a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobEvent {
    /// Job name.
    pub job: String,
    /// The run concerned (skipped triggers are recorded as runs too).
    pub run_id: i64,
    /// Unix ms.
    pub ts: i64,
    /// What happened.
    pub kind: JobEventKind,
    /// Readable summary.
    pub message: String,
    /// How long the run took or has taken so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The predicted 90th-percentile duration, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_p90_ms: Option<i64>,
}

/// What happened to a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleEventKind {
    /// It fired (or was run by hand) and its chain started.
    Fired,
    /// A fire time passed without running the chain (a condition failed, or the previous
    /// run was still going).
    Skipped,
    /// Fire times passed while warden was not running.
    Missed,
    /// The chain ran to its end without a failure.
    Finished,
    /// A task failed, or the chain was cancelled or interrupted.
    Failed,
}

impl ScheduleEventKind {
    /// The stored event kind, e.g. `schedule_fired`.
    pub fn event_kind(self) -> &'static str {
        match self {
            ScheduleEventKind::Fired => "schedule_fired",
            ScheduleEventKind::Skipped => "schedule_skipped",
            ScheduleEventKind::Missed => "schedule_missed",
            ScheduleEventKind::Finished => "schedule_finished",
            ScheduleEventKind::Failed => "schedule_failed",
        }
    }
}

/// Something that happened to a schedule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleEvent {
    /// Schedule name.
    pub schedule: String,
    /// The run concerned, if one was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Unix ms.
    pub ts: i64,
    /// What happened.
    pub kind: ScheduleEventKind,
    /// Readable summary.
    pub message: String,
}

/// One player-count sample of a game server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlayersSample {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// Players online.
    pub online: u32,
    /// Player limit, when the query reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Names of (some of) the players online, as far as the query reports them.
    pub names: Vec<String>,
}

/// A change of a program's game health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthChange {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// Previous health.
    pub from: HealthState,
    /// New health.
    pub to: HealthState,
    /// Consecutive failed checks.
    pub failures: u32,
    /// Why, in words (the last check's error when failing).
    pub reason: String,
}

/// How urgent a notice or alert is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing (started, stopped, recovered).
    Info,
    /// Needs a look (restarting, a rule fired).
    Warning,
    /// Needs action now (crashed, gave up, restart loop).
    Critical,
}

impl Severity {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A notable occurrence for people (see [`Event::Notice`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notice {
    /// What happened, as a stable snake_case slug (e.g. `warden_started`, `health_failed`).
    pub kind: String,
    /// How urgent it is.
    pub severity: Severity,
    /// The program concerned; absent for warden's own notices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Unix ms.
    pub ts: i64,
    /// One short line, e.g. `health check failed`.
    pub summary: String,
    /// Labelled details, in display order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<NoticeField>,
}

/// One labelled detail of a [`Notice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoticeField {
    /// Label, e.g. `Exit`.
    pub name: String,
    /// Value, e.g. `exit code 3`.
    pub value: String,
}

/// What one sampling tick of `metrics` saw: the sample of every running program (its
/// whole process tree) and of the host. Shared, never copied: the same tick is the
/// metrics service's batch, its "latest values" and what [`Bus::samples`] followers see.
#[derive(Debug, Default)]
pub struct SampleTick {
    /// A sample of each running program that had been read at the previous tick too
    /// (rates need two readings).
    pub programs: Vec<ProgramSample>,
    /// The host's sample (absent on the first tick).
    pub host: Option<HostSample>,
    /// The samples as JSON, made once per tick by the first live view that sends them
    /// (every other client sends the same bytes).
    json: OnceLock<TickJson>,
}

/// The JSON of a tick's samples, in the order of [`SampleTick::programs`].
#[derive(Debug)]
pub struct TickJson {
    /// One JSON text per program sample (`None` where it could not be serialised).
    pub programs: Vec<Option<bytes::Bytes>>,
    /// The host sample's JSON.
    pub host: Option<bytes::Bytes>,
}

impl SampleTick {
    /// A tick of these samples.
    pub fn new(programs: Vec<ProgramSample>, host: Option<HostSample>) -> SampleTick {
        SampleTick {
            programs,
            host,
            json: OnceLock::new(),
        }
    }

    /// Samples in the tick (the programs' and the host's).
    pub fn samples(&self) -> u64 {
        self.programs.len() as u64 + u64::from(self.host.is_some())
    }

    /// The tick's samples as JSON, made by `make` on the first call and shared after.
    pub fn json(&self, make: impl FnOnce(&SampleTick) -> TickJson) -> &TickJson {
        self.json.get_or_init(|| make(self))
    }

    /// The sample of `program` in this tick.
    pub fn program(&self, program: &str) -> Option<&ProgramSample> {
        self.programs.iter().find(|p| p.program == program)
    }
}

/// One resource sample of a program, aggregated over its process tree. Rates are per
/// second over the interval since the previous sample; 100 % CPU is one full core.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramSample {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// CPU use in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_bytes: u64,
    /// Threads in the tree.
    pub threads: u64,
    /// Open files/handles in the tree.
    pub open_files: u64,
    /// Disk bytes read per second.
    pub disk_read_bps: f64,
    /// Disk bytes written per second.
    pub disk_write_bps: f64,
    /// Players online, when a game query is configured (filled by `games`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub players: Option<u32>,
}

/// One resource sample of the host. Rates are per second over the interval since the
/// previous sample.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostSample {
    /// Unix ms.
    pub ts: i64,
    /// CPU use in percent of all cores (100 % = every core busy).
    pub cpu_percent: f64,
    /// CPU use per core, in percent of that core.
    pub cores: Vec<f64>,
    /// Installed memory in bytes.
    pub memory_total_bytes: u64,
    /// Memory in use (installed minus available) in bytes.
    pub memory_used_bytes: u64,
    /// Swap size in bytes.
    pub swap_total_bytes: u64,
    /// Swap in use in bytes.
    pub swap_used_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Usage of each local filesystem.
    pub disks: Vec<DiskUsage>,
    /// Network bytes received per second (all interfaces but loopback).
    pub net_rx_bps: f64,
    /// Network bytes sent per second.
    pub net_tx_bps: f64,
}

/// Usage of one mounted filesystem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiskUsage {
    /// Mount point.
    pub mount: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Used bytes.
    pub used_bytes: u64,
}

/// A lifecycle transition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StateChange {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// Previous state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Process id, when one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Why, in words (e.g. `crashed: exit code 1`).
    pub reason: String,
    /// How the process ended, for exits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// The last console lines before a crash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}

/// Which stream a console line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// A line sent to the program's standard input.
    Stdin,
}

impl Stream {
    /// Three-letter tag used in log files.
    pub fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
            Stream::Stdin => "in ",
        }
    }
}

/// One console line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsoleLine {
    /// Program name.
    pub program: String,
    /// Unix ms when warden read the line.
    pub ts: i64,
    /// Source stream.
    pub stream: Stream,
    /// The text, without its newline.
    pub text: String,
    /// True when the line was longer than the limit and continues in the next line.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
}

/// Cheap-to-clone publishing handle.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    samples: watch::Sender<Arc<SampleTick>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus with [`CAPACITY`] slots.
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(CAPACITY);
        let (samples, _) = watch::channel(Arc::default());
        Bus { tx, samples }
    }

    /// Publishes to every current subscriber; never blocks, never fails (no subscriber is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription starting at the next published event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Makes `tick` the latest samples and wakes their followers; never blocks.
    pub fn publish_samples(&self, tick: Arc<SampleTick>) {
        self.samples.send_replace(tick);
    }

    /// Follows the samples from the next tick on (`changed()`, then `borrow_and_update()`).
    pub fn samples(&self) -> watch::Receiver<Arc<SampleTick>> {
        self.samples.subscribe()
    }
}

/// What happened to a program's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgramChangeKind {
    /// It was created.
    Created,
    /// Its definition was replaced.
    Updated,
    /// It was deleted.
    Deleted,
}

/// A change to the set of programs or to one program's definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramChange {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// What happened.
    pub change: ProgramChangeKind,
}
