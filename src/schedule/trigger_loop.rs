//! The trigger loop and firing: sleeps until the earliest fire time, checks a schedule's
//! conditions, records its run and starts its chain in a task of its own.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::chain;
use super::error::SchedError;
use super::info::Fired;
use super::service::Scheduler;
use super::spec::ScheduleSpec;
use crate::bus::ScheduleEventKind;
use crate::program::State;
use crate::schedule::record::RunStatus;
use crate::sync::lock;

impl Scheduler {
    /// Sleeps until the earliest fire time, fires what is due, and repeats; wakes early
    /// when a schedule changes. Never sleeps more than a minute, so a jump of the wall
    /// clock is noticed.
    pub(super) async fn trigger_loop(self) {
        let sh = self.inner.sh.clone();
        loop {
            let now = Utc::now();
            let mut due = Vec::new();
            let mut earliest: Option<DateTime<Utc>> = None;
            {
                let mut entries = lock(&self.inner.schedules);
                for (name, e) in entries.iter_mut() {
                    if let Some(at) = e.next
                        && at <= now
                    {
                        due.push((name.clone(), at));
                        e.next = e.trigger.next_after(now, e.zone);
                    }
                    if let Some(n) = e.next {
                        earliest = Some(earliest.map_or(n, |x| x.min(n)));
                    }
                }
            }
            for (name, at) in due {
                if let Err(e) = self.fire(&name, Some(at), "schedule".into()).await {
                    tracing::error!(schedule = %name, error = %e, "cannot fire schedule");
                }
            }
            let wait = earliest
                .and_then(|t| (t - Utc::now()).to_std().ok())
                .unwrap_or(Duration::ZERO);
            let wait = if earliest.is_none() {
                Duration::from_secs(60)
            } else {
                wait.min(Duration::from_secs(60))
            };
            tokio::select! {
                _ = sh.shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fires a schedule: checks that its previous chain ended and its conditions hold,
    /// then runs its chain in a task of its own.
    pub async fn fire(
        &self,
        name: &str,
        scheduled_for: Option<DateTime<Utc>>,
        source: String,
    ) -> Result<Fired, SchedError> {
        let sh = self.inner.sh.clone();
        if sh.shutdown.is_cancelled() {
            return Err(SchedError::ShuttingDown);
        }
        let cancel = sh.shutdown.child_token();
        let (spec, busy) = {
            let mut entries = lock(&self.inner.schedules);
            let e = entries
                .get_mut(name)
                .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
            let busy = e.running.as_ref().map(|r| r.0);
            if busy.is_none() {
                e.running = Some((None, cancel.clone()));
            }
            (e.spec.clone(), busy)
        };
        let at_ms = scheduled_for.map(|t| t.timestamp_millis());
        if let Some(at) = at_ms
            && let Err(e) = sh.store.set_last_fire(name, at).await
        {
            tracing::warn!(schedule = name, error = %e, "cannot record the fire time");
        }
        let skip_reason = match busy {
            Some(run) => Some(format!(
                "the previous run{} is still in progress",
                run.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            None => self.check_conditions(&spec).await,
        };
        if let Some(reason) = skip_reason {
            if busy.is_none() {
                self.clear_running(name, None);
            }
            let run_id = sh
                .store
                .insert_schedule_run(
                    name,
                    source,
                    at_ms,
                    RunStatus::Skipped,
                    Some(reason.clone()),
                    serde_json::json!([]),
                )
                .await?;
            sh.schedule_event(
                name,
                Some(run_id),
                ScheduleEventKind::Skipped,
                format!("schedule '{name}' did not run: {reason}"),
            )
            .await;
            return Ok(Fired::Skipped(run_id, reason));
        }
        let tasks = serde_json::to_value(chain::initial(&spec)).unwrap_or_default();
        let run_id = match sh
            .store
            .insert_schedule_run(name, source.clone(), at_ms, RunStatus::Running, None, tasks)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.clear_running(name, None);
                return Err(e.into());
            }
        };
        if let Some(e) = lock(&self.inner.schedules).get_mut(name)
            && let Some(r) = &mut e.running
        {
            r.0 = Some(run_id);
        }
        sh.schedule_event(
            name,
            Some(run_id),
            ScheduleEventKind::Fired,
            format!("schedule '{name}' fired ({source}); run {run_id} started"),
        )
        .await;
        let this = self.clone();
        let name = name.to_string();
        sh.tasks.spawn(async move {
            let end = chain::run(&this, &spec, run_id, &cancel).await;
            this.clear_running(&name, Some(run_id));
            let (kind, text) = match end.state {
                RunStatus::Succeeded => (ScheduleEventKind::Finished, "finished".to_string()),
                other => (
                    ScheduleEventKind::Failed,
                    format!(
                        "{other}{}",
                        end.error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                ),
            };
            let sh = &this.inner.sh;
            sh.schedule_event(
                &name,
                Some(run_id),
                kind,
                format!("run {run_id} of schedule '{name}' {text}"),
            )
            .await;
            if let Err(e) = sh.store.prune_schedule_runs(&name, sh.cfg.keep_runs).await {
                tracing::warn!(schedule = %name, error = %e, "cannot prune old runs");
            }
        });
        Ok(Fired::Started(run_id))
    }

    fn clear_running(&self, name: &str, run_id: Option<i64>) {
        if let Some(e) = lock(&self.inner.schedules).get_mut(name)
            && e.running.as_ref().is_some_and(|r| r.0 == run_id)
        {
            e.running = None;
        }
    }

    /// The reason a run must be skipped, if a condition fails.
    async fn check_conditions(&self, spec: &ScheduleSpec) -> Option<String> {
        let sh = &self.inner.sh;
        if let Some(p) = &spec.conditions.skip_if_not_running {
            match sh.sup.get(p) {
                Ok(h) => {
                    let state = h.snapshot().status.state;
                    if state != State::Running {
                        return Some(format!(
                            "program '{p}' is {} (condition skip_if_not_running)",
                            state.as_str()
                        ));
                    }
                }
                Err(_) => return Some(format!("program '{p}' no longer exists")),
            }
        }
        if let Some(p) = &spec.conditions.only_when_empty {
            match sh.services.games.players(p).await {
                Ok(0) => {}
                Ok(n) => {
                    return Some(format!(
                        "{n} player(s) online on '{p}' (condition only_when_empty)"
                    ));
                }
                Err(e) => {
                    return Some(format!(
                        "cannot tell whether '{p}' is empty ({e}); condition only_when_empty"
                    ));
                }
            }
        }
        None
    }
}
