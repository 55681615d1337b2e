//! Schedules and jobs: the [`Scheduler`] service.
//!
//! - A *schedule* is a trigger (cron or interval, in a time zone) plus a chain of tasks
//!   with offsets. One trigger loop sleeps until the earliest fire time and fires what is
//!   due; each fire runs its chain in its own task (`chain.rs`).
//! - A *job* is a graph of command steps. Each job has one actor (`job.rs`) that applies
//!   the overlap policy, holds the job's lease and runs one run at a time (`run.rs`,
//!   `step.rs`).
//!
//! Architecture invariant: no job runs without its lease, and nothing here touches a
//! program's process — program tasks go through `ProgramHandle`. The scheduler knows
//! nothing about HTTP; the API calls the methods below.

pub(crate) mod chain;
mod error;
mod info;
pub mod job;
mod jobs;
mod plan;
pub mod policy;
pub mod record;
mod run;
mod schedules;
mod service;
pub mod services;
mod shared;
pub mod spec;
mod step;
pub mod trigger;
mod trigger_loop;

pub use error::SchedError;
pub use info::{Fired, JobInfo, ScheduleInfo, TriggerOutcome, TriggerResult};
pub use schedules::preview_trigger;
pub use service::{Scheduler, SchedulerDeps};
