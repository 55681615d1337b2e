//! What warden keeps of schedule and job runs — one record per chain run, per job run and
//! per step attempt — as the store returns them and the API shows them. Plain data: it
//! imports nothing of warden but `text_enum`, so the store below and the services and API
//! above share it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::text_enum::text_enum;

text_enum! {
    /// Where a job run or a schedule's chain run is (the `state` column of `job_runs`
    /// and `schedule_runs`).
    pub enum RunStatus {
        /// In progress.
        Running = "running",
        /// Every step (or task) succeeded.
        Succeeded = "succeeded",
        /// A step (or task) failed.
        Failed = "failed",
        /// Cancelled by request, replaced, or warden stopped.
        Cancelled = "cancelled",
        /// Never started (overlap policy, lease held elsewhere, a condition).
        Skipped = "skipped",
        /// warden stopped while it ran.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// Where one step attempt is (the `state` column of `step_runs`).
    pub enum StepStatus {
        /// Its process runs.
        Running = "running",
        /// Exit code 0.
        Succeeded = "succeeded",
        /// It failed (exit, timeout, spawn).
        Failed = "failed",
        /// Cancelled with its run.
        Cancelled = "cancelled",
        /// warden stopped while it ran and none of the run's processes survived.
        Interrupted = "interrupted",
        /// warden restarted while it ran; its process ended unseen (exit status unknown).
        Lost = "lost",
    }
}

/// One run of a schedule's chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleRunRecord {
    /// Run id; use it as the `before` cursor for the next page.
    pub id: i64,
    /// Schedule name.
    pub schedule: String,
    /// `schedule`, `missed` (run once at start) or `manual:<user>`.
    pub source: String,
    /// The fire time the run belongs to (unix ms); absent for manual runs.
    pub scheduled_for: Option<i64>,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms; absent while running.
    pub ended_at: Option<i64>,
    /// `running`, `succeeded`, `failed`, `cancelled`, `skipped` or `interrupted`.
    pub state: RunStatus,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Per-task results, in chain order.
    #[schema(value_type = Vec<crate::schedule::chain::TaskResult>)]
    pub tasks: serde_json::Value,
}

/// One run of a job (or a skipped trigger).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRunRecord {
    /// Run id; use it as the `before` cursor for the next page.
    pub id: i64,
    /// Job name.
    pub job: String,
    /// Who or what triggered it: `manual:<user>` or `schedule:<name>`.
    pub source: String,
    /// `running`, `succeeded`, `failed`, `cancelled`, `skipped` or `interrupted`.
    pub state: RunStatus,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms; absent while running.
    pub ended_at: Option<i64>,
    /// Wall time of the run.
    pub duration_ms: Option<i64>,
    /// Retries of all its steps together.
    pub retries: i64,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Median duration predicted when it started.
    pub predicted_p50_ms: Option<i64>,
    /// 90th percentile predicted when it started.
    pub predicted_p90_ms: Option<i64>,
}

/// One attempt of one step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepRunRecord {
    /// Row id.
    pub id: i64,
    /// Step name.
    pub step: String,
    /// 0 for the first try; equals the number of retries before it.
    pub attempt: i64,
    /// `running`, `succeeded`, `failed`, `cancelled`, `interrupted` or `lost`.
    pub state: StepStatus,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub ended_at: Option<i64>,
    /// Wall time.
    pub duration_ms: Option<i64>,
    /// Process id.
    pub pid: Option<u32>,
    /// Exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// Signal that ended it.
    pub signal: Option<String>,
    /// Failure class: `exit`, `timeout`, `spawn` or `cancelled`.
    pub failure: Option<String>,
    /// Readable outcome, e.g. `exit code 3`.
    pub message: Option<String>,
    /// The last lines of its output (stdout and stderr together).
    pub output_tail: Option<String>,
}
