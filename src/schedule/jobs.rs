//! The jobs registry: listing and reading jobs (status, prediction, warnings), creating,
//! replacing and deleting them, triggering and cancelling runs, and their run history.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::error::{SchedError, conflict};
use super::info::{JobInfo, TriggerOutcome, TriggerResult};
use super::job::{self, JobHandle, Triggered};
use super::policy::Prediction;
use super::service::Scheduler;
use super::spec::JobSpec;
use crate::schedule::record::{JobRunRecord, RunStatus, StepRunRecord};
use crate::store::schedule::DefKind;
use crate::sync::lock;

impl Scheduler {
    pub(super) fn job_handle(&self, name: &str) -> Result<JobHandle, SchedError> {
        crate::sync::read(&self.inner.jobs)
            .get(name)
            .cloned()
            .ok_or_else(|| SchedError::NotFound(format!("no job named '{name}'")))
    }

    /// Every job.
    pub async fn jobs(&self) -> Vec<JobInfo> {
        let names: Vec<String> = crate::sync::read(&self.inner.jobs)
            .keys()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(i) = self.job(&n).await {
                out.push(i);
            }
        }
        out
    }

    /// One job with its status and prediction.
    pub async fn job(&self, name: &str) -> Result<JobInfo, SchedError> {
        let snap = self.job_handle(name)?.snapshot();
        let sh = &self.inner.sh;
        let prediction = sh.prediction(name).await;
        let last_run = sh.store.job_runs(name, None, 1).await?.into_iter().next();
        Ok(JobInfo {
            spec: (*snap.spec).clone(),
            effective_concurrency: sh.concurrency(&snap.spec),
            prediction,
            running: snap.running.clone(),
            waiting: snap.waiting.clone(),
            last_run,
            warnings: self.job_warnings(name, prediction),
        })
    }

    /// Warnings for each schedule that runs the job more often than it takes.
    fn job_warnings(&self, job: &str, prediction: Option<Prediction>) -> Vec<String> {
        let Some(p) = prediction else {
            return Vec::new();
        };
        let took = Duration::from_millis(u64::try_from(p.p90_ms).unwrap_or(0));
        let now = Utc::now();
        lock(&self.inner.schedules)
            .values()
            .filter(|e| e.spec.jobs().any(|j| j == job))
            .filter_map(|e| {
                let gap = e.trigger.min_gap(now, e.zone)?;
                (took > gap).then(|| {
                    format!(
                        "job '{job}' takes ~{} (p90 of its last {} runs) but schedule '{}' runs it every {}",
                        crate::duration::format(took),
                        p.samples,
                        e.spec.name,
                        crate::duration::format(gap)
                    )
                })
            })
            .collect()
    }

    /// Creates a job.
    pub async fn create_job(&self, spec: JobSpec) -> Result<JobInfo, SchedError> {
        let errs = spec.validate();
        if !errs.is_empty() {
            return Err(SchedError::Invalid(errs));
        }
        let _guard = self.inner.mutate.lock().await;
        let sh = &self.inner.sh;
        sh.store
            .insert_def(DefKind::Job, &spec.name, &spec)
            .await
            .map_err(conflict)?;
        let name = spec.name.clone();
        let h = job::spawn(sh.clone(), Arc::new(spec));
        crate::sync::write(&self.inner.jobs).insert(name.clone(), h);
        drop(_guard);
        self.job(&name).await
    }

    /// Replaces a job's definition; a run in progress keeps the one it started with.
    pub async fn update_job(&self, spec: JobSpec) -> Result<JobInfo, SchedError> {
        let errs = spec.validate();
        if !errs.is_empty() {
            return Err(SchedError::Invalid(errs));
        }
        let _guard = self.inner.mutate.lock().await;
        let h = self.job_handle(&spec.name)?;
        self.inner
            .sh
            .store
            .update_def(DefKind::Job, &spec.name, &spec)
            .await?;
        let name = spec.name.clone();
        h.update(Arc::new(spec)).await?;
        drop(_guard);
        self.job(&name).await
    }

    /// Deletes a job with its history. Refused while a schedule runs it, or while a run is
    /// in progress unless `force` (which cancels the run gracefully first).
    pub async fn delete_job(&self, name: &str, force: bool) -> Result<(), SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let h = self.job_handle(name)?;
        let users: Vec<String> = lock(&self.inner.schedules)
            .values()
            .filter(|e| e.spec.jobs().any(|j| j == name))
            .map(|e| e.spec.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(SchedError::Conflict(format!(
                "job '{name}' is run by schedule(s) {}; change or delete them first",
                users.join(", ")
            )));
        }
        if let Some(r) = &h.snapshot().running
            && !force
        {
            return Err(SchedError::Conflict(format!(
                "job '{name}' has run {} in progress; cancel it first, or delete with force=true to cancel it and then delete",
                r.run_id
            )));
        }
        h.shutdown(true).await;
        let sh = &self.inner.sh;
        sh.store.delete_def(DefKind::Job, name).await?;
        crate::sync::write(&self.inner.jobs).remove(name);
        let dir = sh.jobs_dir.join(name);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        Ok(())
    }

    /// Triggers a job by hand (the overlap policy applies).
    pub async fn run_job(&self, name: &str, source: String) -> Result<TriggerResult, SchedError> {
        let h = self.job_handle(name)?;
        let prediction = self.inner.sh.prediction(name).await;
        Ok(match h.trigger(source).await? {
            Triggered::Started { run_id, .. } => TriggerResult {
                outcome: TriggerOutcome::Started,
                run_id: Some(run_id),
                replaces: None,
                reason: None,
                prediction,
            },
            Triggered::Queued { .. } => TriggerResult {
                outcome: TriggerOutcome::Queued,
                run_id: None,
                replaces: None,
                reason: None,
                prediction,
            },
            Triggered::Replacing { replaced, .. } => TriggerResult {
                outcome: TriggerOutcome::Replacing,
                run_id: None,
                replaces: Some(replaced),
                reason: None,
                prediction,
            },
            Triggered::Skipped { run_id, reason } => TriggerResult {
                outcome: TriggerOutcome::Skipped,
                run_id: Some(run_id),
                replaces: None,
                reason: Some(reason),
                prediction: None,
            },
        })
    }

    /// Cancels a job's run in progress gracefully; answers its id.
    pub async fn cancel_job(&self, name: &str) -> Result<i64, SchedError> {
        self.job_handle(name)?.cancel().await
    }

    /// A page of a job's runs, newest first.
    pub async fn job_runs(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRunRecord>, SchedError> {
        self.job_handle(name)?;
        Ok(self.inner.sh.store.job_runs(name, before, limit).await?)
    }

    /// The last `limit` finished runs of a job with a duration, oldest first, as
    /// (run id, started at, duration ms, state).
    pub async fn job_durations(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<(i64, i64, i64, RunStatus)>, SchedError> {
        self.job_handle(name)?;
        Ok(self.inner.sh.store.finished_durations(name, limit).await?)
    }

    /// One run of a job with its step attempts.
    pub async fn job_run(
        &self,
        name: &str,
        id: i64,
    ) -> Result<(JobRunRecord, Vec<StepRunRecord>), SchedError> {
        self.job_handle(name)?;
        self.inner
            .sh
            .store
            .job_run(name, id)
            .await?
            .ok_or_else(|| SchedError::NotFound(format!("job '{name}' has no run {id}")))
    }
}
