//! What the scheduler answers the API: a job or schedule with its live status, and the
//! outcome of a trigger or a fire.

use serde::Serialize;
use utoipa::ToSchema;

use super::job::RunningInfo;
use super::policy::Prediction;
use super::spec::{JobSpec, ScheduleSpec};
use crate::schedule::record::{JobRunRecord, ScheduleRunRecord};
use crate::text_enum::text_enum;

/// A job with its status, prediction and last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobInfo {
    /// The definition.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Steps that run at once (the job's `concurrency`, or the default).
    pub effective_concurrency: usize,
    /// Predicted duration of the next run, once a few runs succeeded.
    pub prediction: Option<Prediction>,
    /// The run in progress.
    pub running: Option<RunningInfo>,
    /// The source of a trigger waiting for the current run (policy `queue`/`replace`).
    pub waiting: Option<String>,
    /// The latest run (or skipped trigger).
    pub last_run: Option<JobRunRecord>,
    /// Things worth knowing, e.g. that the job takes longer than a schedule's interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A schedule with its next fire times and last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleInfo {
    /// The definition (secrets of HTTP tasks masked).
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// The trigger in words.
    pub trigger_description: String,
    /// The time zone used (`timezone`, or the host's).
    pub effective_timezone: String,
    /// The next 5 fire times (RFC 3339, in the schedule's time zone); empty when disabled.
    pub next_runs: Vec<String>,
    /// The chain run in progress.
    pub running_run_id: Option<i64>,
    /// The latest run.
    pub last_run: Option<ScheduleRunRecord>,
    /// Things worth knowing, e.g. that a job it runs takes longer than its interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

text_enum! {
    /// What a trigger of a job did.
    pub enum TriggerOutcome {
        /// A run started.
        Started = "started",
        /// It waits for the current run (overlap policy `queue`).
        Queued = "queued",
        /// The current run is cancelled and a new one follows (policy `replace`).
        Replacing = "replacing",
        /// Not run (recorded as a skipped run).
        Skipped = "skipped",
    }
}

/// What a trigger of a job did, for the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResult {
    /// `started`, `queued`, `replacing` or `skipped`.
    pub outcome: TriggerOutcome,
    /// The run started (or recorded as skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// The run being replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<i64>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the run is expected to take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
}

/// Outcome of firing a schedule.
pub enum Fired {
    /// The chain started as this run.
    Started(i64),
    /// It did not run, recorded as this skipped run, for this reason.
    Skipped(i64, String),
}
