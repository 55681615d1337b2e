//! What every part of the scheduler shares: the store, bus, supervisor, settings, lease
//! identity and task tracker, with the few operations every part needs (lease, prediction,
//! events, pruning of old runs).

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::policy::{Prediction, predict};
use super::services::Services;
use super::spec::JobSpec;
use super::step;
use crate::bus::{Bus, Event, JobEvent, JobEventKind, ScheduleEvent, ScheduleEventKind};
use crate::config::ScheduleConfig;
use crate::os;
use crate::store::events::NewEvent;
use crate::store::schedule::{LeaseHeld, LeaseOwner};
use crate::store::{Store, StoreError, now_ms};
use crate::supervisor::Supervisor;

/// What every part of the scheduler shares.
pub(crate) struct Shared {
    pub(super) store: Store,
    pub(super) bus: Bus,
    pub(super) sup: Supervisor,
    pub(super) cfg: ScheduleConfig,
    /// This warden instance as a lease owner.
    pub(super) owner: LeaseOwner,
    /// Root of the per-run output directories (`DATA/jobs/JOB/RUN/`).
    pub(super) jobs_dir: PathBuf,
    pub(super) services: Services,
    /// Client for `http` tasks.
    pub(super) http: reqwest::Client,
    /// Cancelled at shutdown (a child of warden's token): stops the trigger loop and
    /// chains. Job runs have tokens of their own; their actors decide at shutdown.
    pub(super) shutdown: CancellationToken,
    /// Actors, chains and the trigger loop, awaited at shutdown.
    pub(super) tasks: TaskTracker,
    /// Step concurrency when neither the job nor the config sets one.
    pub(super) default_concurrency: usize,
}

impl Shared {
    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.cfg.lease.as_millis()).unwrap_or(30_000)
    }

    pub(super) async fn acquire_lease(
        &self,
        job: &str,
    ) -> Result<Result<(), LeaseHeld>, StoreError> {
        self.store
            .acquire_lease(job, self.owner.clone(), self.lease_ms(), |pid, start| {
                !os::process_running(pid, start)
            })
            .await
    }

    pub(super) async fn prediction(&self, job: &str) -> Option<Prediction> {
        match self
            .store
            .recent_durations(job, self.cfg.prediction_runs)
            .await
        {
            Ok(d) => predict(&d),
            Err(e) => {
                tracing::warn!(job, error = %e, "cannot read run durations");
                None
            }
        }
    }

    pub(super) fn concurrency(&self, spec: &JobSpec) -> usize {
        spec.concurrency
            .map(|c| c as usize)
            .or(self.cfg.job_concurrency)
            .unwrap_or(self.default_concurrency)
            .max(1)
    }

    /// Stores a job event, then publishes it.
    pub(super) async fn job_event(
        &self,
        job: &str,
        run_id: i64,
        kind: JobEventKind,
        message: String,
        duration_ms: Option<i64>,
        predicted_p90_ms: Option<i64>,
    ) {
        let ev = JobEvent {
            job: job.to_string(),
            run_id,
            ts: now_ms(),
            kind,
            message,
            duration_ms,
            predicted_p90_ms,
        };
        tracing::info!(job, run_id, kind = kind.event_kind(), message = %ev.message, "job");
        self.store_event(ev.ts, kind.event_kind(), &ev.message, &ev)
            .await;
        self.bus.publish(Event::Job(ev));
    }

    /// Stores a schedule event, then publishes it.
    pub(super) async fn schedule_event(
        &self,
        schedule: &str,
        run_id: Option<i64>,
        kind: ScheduleEventKind,
        message: String,
    ) {
        let ev = ScheduleEvent {
            schedule: schedule.to_string(),
            run_id,
            ts: now_ms(),
            kind,
            message,
        };
        tracing::info!(schedule, kind = kind.event_kind(), message = %ev.message, "schedule");
        self.store_event(ev.ts, kind.event_kind(), &ev.message, &ev)
            .await;
        self.bus.publish(Event::Schedule(ev));
    }

    /// Stores a job or schedule event, its whole record as the data, before it is
    /// published.
    async fn store_event(
        &self,
        ts: i64,
        kind: &str,
        message: &str,
        record: &impl serde::Serialize,
    ) {
        let stored = NewEvent {
            ts,
            program: None,
            kind: kind.into(),
            message: message.to_string(),
            data: serde_json::to_value(record).unwrap_or(serde_json::Value::Null),
        };
        self.store.record_event(stored).await;
    }

    /// Deletes runs beyond `keep_runs` and their output directories.
    pub(super) async fn prune(&self, job: &str) {
        match self.store.prune_job_runs(job, self.cfg.keep_runs).await {
            Ok(ids) if !ids.is_empty() => {
                let dirs: Vec<PathBuf> = ids
                    .iter()
                    .map(|id| step::run_dir(&self.jobs_dir, job, *id))
                    .collect();
                let _ = tokio::task::spawn_blocking(move || {
                    for d in dirs {
                        let _ = std::fs::remove_dir_all(d);
                    }
                })
                .await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(job, error = %e, "cannot prune old runs"),
        }
    }
}
