//! What a program is doing: its lifecycle [`State`], how its last process ended
//! ([`ExitInfo`]), why it failed ([`StateReason`]), its game health, and the whole
//! [`ProgramStatus`] an actor publishes and the API shows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Lifecycle states of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Hash)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not running, by request or after a clean exit.
    Stopped,
    /// Spawned, waiting to stay up for `start_seconds`.
    Starting,
    /// Up and past its start period.
    Running,
    /// Asked to stop; waiting for it to exit.
    Stopping,
    /// Crashed; waiting before the next restart.
    Backoff,
    /// Crashed and will not be restarted (policy `never`).
    Crashed,
    /// Crashed too often; warden gave up until someone starts it again.
    Fatal,
    /// Asked to start; waiting for the programs in `after`/`requires` to be ready.
    Waiting,
    /// Stopped by design because nobody played on it; warden answers on its port and
    /// starts it again when a player connects.
    Sleeping,
}

impl State {
    /// The snake_case name used in the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Crashed => "crashed",
            State::Fatal => "fatal",
            State::Waiting => "waiting",
            State::Sleeping => "sleeping",
        }
    }

    /// True while a process of the program exists (or may exist).
    pub fn is_active(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Stopping)
    }
}

/// Result of a program's liveness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// No check has passed or failed yet for this process (or none is configured).
    #[default]
    Unknown,
    /// The last check passed.
    Healthy,
    /// Checks are failing, but fewer times in a row than the limit.
    Failing,
    /// The configured number of consecutive checks failed.
    Unhealthy,
}

impl HealthState {
    /// The snake_case name used in the API, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Healthy => "healthy",
            HealthState::Failing => "failing",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExitInfo {
    /// Exit code, when it exited normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Signal name (e.g. `SIGKILL`), when a signal ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Readable summary, e.g. `exit code 1` or `killed by SIGKILL`.
    pub description: String,
}

impl ExitInfo {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runtime status of a program.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramStatus {
    /// Lifecycle state.
    pub state: State,
    /// Process id of the running process.
    pub pid: Option<u32>,
    /// Unix ms of the last state change.
    pub since_ms: i64,
    /// Unix ms when the current process was spawned.
    pub started_at_ms: Option<i64>,
    /// Automatic restarts since the last requested start.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ExitInfo>,
    /// True when the process was adopted from a previous warden run.
    pub adopted: bool,
    /// Game health and players of the current process, reported by `games` (absent
    /// without a game section or before the first report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game: Option<GameHealth>,
    /// Why the program is crashed or gave up (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<StateReason>,
    /// What enforces the resource limits of the current process (`cgroup v1`, `cgroup
    /// v2`, `job object`); absent without group limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits_mode: Option<String>,
}

/// Why a program is in a failed state, as stable codes a client translates.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StateReason {
    /// `spawn_failed` (its process could not be started) or `gave_up` (it failed too
    /// often within the restart window).
    pub code: &'static str,
    /// For `spawn_failed`: `command_not_found`, `not_executable`, `cwd_missing`, `limits`
    /// (its resource limits could not be applied) or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    /// The command or directory concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The same in English words.
    pub message: String,
}

/// Game health and players of a program's current process.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
pub struct GameHealth {
    /// Liveness result.
    pub health: HealthState,
    /// Consecutive failed liveness checks.
    pub failures: u32,
    /// Unix ms of the last liveness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_ms: Option<i64>,
    /// Why the last check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Players online at the last sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub players: Option<u32>,
    /// Player limit at the last sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_players: Option<u32>,
}
