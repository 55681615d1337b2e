//! Schedule and job rows (specs as JSON), their run history, and job leases.
//!
//! Specs are stored as JSON of whatever serde type the caller passes, so this module does
//! not depend on the schedule service's types; run records are plain rows.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::definitions::{self, Kind};
use super::{Store, StoreError, now_ms};
use crate::schedule::record::{
    JobRunRecord, RunStatus, ScheduleRunRecord, StepRunRecord, StepStatus,
};

/// A stored definition with its bookkeeping.
#[derive(Debug, Clone)]
pub struct DefRow<T> {
    /// The spec.
    pub spec: T,
    /// Unix ms of the last change.
    pub updated_at: i64,
    /// For schedules: the fire time of the last run, if any.
    pub last_fire_at: Option<i64>,
}

/// The end of a step attempt.
#[derive(Debug, Clone)]
pub struct StepEnd {
    /// Final state.
    pub state: StepStatus,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal name.
    pub signal: Option<String>,
    /// Failure class.
    pub failure: Option<&'static str>,
    /// Readable outcome.
    pub message: String,
    /// Last output.
    pub output_tail: Option<String>,
}

/// A step recorded as running, with the identity of its process.
#[derive(Debug, Clone, Copy)]
pub struct LiveStep {
    /// Process id.
    pub pid: u32,
    /// OS start time of the pid.
    pub start_time: u64,
}

/// Who holds (or wants) a lease.
#[derive(Debug, Clone)]
pub struct LeaseOwner {
    /// Random id of this warden instance.
    pub id: String,
    /// Its process id.
    pub pid: u32,
    /// Its OS start time, so a dead owner is recognised even if its pid is reused.
    pub start_time: u64,
}

/// A lease someone else holds.
#[derive(Debug, Clone)]
pub struct LeaseHeld {
    /// Owner id.
    pub owner: String,
    /// Unix ms when it expires unless renewed.
    pub expires_at: i64,
}

fn schedule_run_from(r: &Row<'_>) -> rusqlite::Result<ScheduleRunRecord> {
    let tasks: String = r.get(8)?;
    Ok(ScheduleRunRecord {
        id: r.get(0)?,
        schedule: r.get(1)?,
        source: r.get(2)?,
        scheduled_for: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        state: r.get(6)?,
        error: r.get(7)?,
        tasks: serde_json::from_str(&tasks).unwrap_or(serde_json::Value::Null),
    })
}

const JOB_RUN_COLS: &str = "id, job, source, state, started_at, ended_at, duration_ms, retries, error, predicted_p50_ms, predicted_p90_ms";

fn job_run_from(r: &Row<'_>) -> rusqlite::Result<JobRunRecord> {
    Ok(JobRunRecord {
        id: r.get(0)?,
        job: r.get(1)?,
        source: r.get(2)?,
        state: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        duration_ms: r.get(6)?,
        retries: r.get(7)?,
        error: r.get(8)?,
        predicted_p50_ms: r.get(9)?,
        predicted_p90_ms: r.get(10)?,
    })
}

fn step_run_from(r: &Row<'_>) -> rusqlite::Result<StepRunRecord> {
    Ok(StepRunRecord {
        id: r.get(0)?,
        step: r.get(1)?,
        attempt: r.get(2)?,
        state: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        duration_ms: r.get(6)?,
        pid: r.get(7)?,
        exit_code: r.get(8)?,
        signal: r.get(9)?,
        failure: r.get(10)?,
        message: r.get(11)?,
        output_tail: r.get(12)?,
    })
}

/// Which table a definition lives in.
#[derive(Debug, Clone, Copy)]
pub enum DefKind {
    /// `schedules`.
    Schedule,
    /// `jobs`.
    Job,
}

impl DefKind {
    fn kind(self) -> Kind {
        match self {
            DefKind::Schedule => definitions::SCHEDULES,
            DefKind::Job => definitions::JOBS,
        }
    }
}

impl Store {
    /// Every definition of a kind, by name.
    pub async fn defs<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: DefKind,
    ) -> Result<Vec<DefRow<T>>, StoreError> {
        self.named_list(kind.kind())
            .await?
            .into_iter()
            .map(|row| {
                Ok(DefRow {
                    spec: serde_json::from_value(row.spec)?,
                    updated_at: row.updated_at,
                    last_fire_at: row.extra,
                })
            })
            .collect()
    }

    /// Inserts a definition; `Conflict` if the name is taken.
    pub async fn insert_def<T: Serialize>(
        &self,
        kind: DefKind,
        name: &str,
        spec: &T,
    ) -> Result<(), StoreError> {
        self.named_insert(kind.kind(), name, spec).await.map(drop)
    }

    /// Replaces a definition; `NotFound` if there is none.
    pub async fn update_def<T: Serialize>(
        &self,
        kind: DefKind,
        name: &str,
        spec: &T,
    ) -> Result<(), StoreError> {
        self.named_update(kind.kind(), name, spec).await
    }

    /// Deletes a definition with its history (and, for jobs, its lease).
    pub async fn delete_def(&self, kind: DefKind, name: &str) -> Result<(), StoreError> {
        self.named_delete(kind.kind(), name, false).await
    }

    /// Records the fire time of a schedule's latest run.
    pub async fn set_last_fire(&self, schedule: &str, at: i64) -> Result<(), StoreError> {
        let name = schedule.to_string();
        self.write(move |t| {
            t.execute(
                "UPDATE schedules SET last_fire_at = ?2 WHERE name = ?1",
                params![name, at],
            )?;
            Ok(())
        })
        .await
    }

    /// Starts a schedule run record; returns its id.
    pub async fn insert_schedule_run(
        &self,
        schedule: &str,
        source: String,
        scheduled_for: Option<i64>,
        state: RunStatus,
        error: Option<String>,
        tasks: serde_json::Value,
    ) -> Result<i64, StoreError> {
        let schedule = schedule.to_string();
        self.write(move |t| {
            let now = now_ms();
            let ended = (state != RunStatus::Running).then_some(now);
            t.execute(
                "INSERT INTO schedule_runs(schedule, source, scheduled_for, started_at, ended_at, state, error, tasks)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![schedule, source, scheduled_for, now, ended, state, error, tasks.to_string()],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// Updates a schedule run: its task results, and when `state` is final, its end.
    pub async fn update_schedule_run(
        &self,
        id: i64,
        state: RunStatus,
        error: Option<String>,
        tasks: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write(move |t| {
            let ended = (state != RunStatus::Running).then(now_ms);
            t.execute(
                "UPDATE schedule_runs SET state = ?2, error = ?3, tasks = ?4, ended_at = ?5 WHERE id = ?1",
                params![id, state, error, tasks.to_string(), ended],
            )?;
            Ok(())
        })
        .await
    }

    /// Marks schedule runs left `running` by a previous warden as interrupted.
    pub async fn interrupt_schedule_runs(&self) -> Result<usize, StoreError> {
        self.write(|t| {
            Ok(t.execute(
                "UPDATE schedule_runs SET state = 'interrupted', ended_at = ?1,
                 error = 'warden stopped while the chain ran' WHERE state = 'running'",
                params![now_ms()],
            )?)
        })
        .await
    }

    /// A page of a schedule's runs, newest first.
    pub async fn schedule_runs(
        &self,
        schedule: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ScheduleRunRecord>, StoreError> {
        let schedule = schedule.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, schedule, source, scheduled_for, started_at, ended_at, state, error, tasks
                 FROM schedule_runs WHERE schedule = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(
                params![schedule, before.unwrap_or(i64::MAX), limit],
                schedule_run_from,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes all but the newest `keep` runs of a schedule.
    pub async fn prune_schedule_runs(
        &self,
        schedule: &str,
        keep: u32,
    ) -> Result<usize, StoreError> {
        let schedule = schedule.to_string();
        self.write(move |t| {
            Ok(t.execute(
                "DELETE FROM schedule_runs WHERE schedule = ?1 AND state != 'running'
                 AND id < (SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM schedule_runs WHERE schedule = ?1 ORDER BY id DESC LIMIT ?2))",
                params![schedule, keep],
            )?)
        })
        .await
    }

    /// Records the start of a job run (or a skipped trigger, with `state = "skipped"`).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_job_run(
        &self,
        job: &str,
        source: String,
        state: RunStatus,
        error: Option<String>,
        predicted: Option<(i64, i64)>,
        owner: Option<String>,
    ) -> Result<i64, StoreError> {
        let job = job.to_string();
        self.write(move |t| {
            let now = now_ms();
            let (ended, duration) = if state == RunStatus::Running {
                (None, None)
            } else {
                (Some(now), Some(0))
            };
            t.execute(
                "INSERT INTO job_runs(job, source, state, started_at, ended_at, duration_ms, error,
                                      predicted_p50_ms, predicted_p90_ms, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    job,
                    source,
                    state,
                    now,
                    ended,
                    duration,
                    error,
                    predicted.map(|p| p.0),
                    predicted.map(|p| p.1),
                    owner
                ],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// Records the end of a job run.
    pub async fn finish_job_run(
        &self,
        id: i64,
        state: RunStatus,
        retries: u32,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |t| {
            let now = now_ms();
            t.execute(
                "UPDATE job_runs SET state = ?2, ended_at = ?3, duration_ms = ?3 - started_at,
                 retries = ?4, error = ?5 WHERE id = ?1",
                params![id, state, now, retries, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the start of a step attempt; awaited before the step is waited on, so a
    /// crash of warden from then on finds the process by pid and start time.
    pub async fn insert_step_run(
        &self,
        run_id: i64,
        step: &str,
        attempt: u32,
        started_at: i64,
        process: Option<(u32, u64)>,
    ) -> Result<i64, StoreError> {
        let step = step.to_string();
        self.write(move |t| {
            t.execute(
                "INSERT INTO step_runs(run_id, step, attempt, state, started_at, pid, start_time)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6)",
                params![
                    run_id,
                    step,
                    attempt,
                    started_at,
                    process.map(|p| p.0),
                    process.map(|p| p.1 as i64)
                ],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// Records the end of a step attempt.
    pub async fn finish_step_run(&self, id: i64, end: StepEnd) -> Result<(), StoreError> {
        self.write(move |t| {
            let now = now_ms();
            t.execute(
                "UPDATE step_runs SET state = ?2, ended_at = ?3, duration_ms = ?3 - started_at,
                 exit_code = ?4, signal = ?5, failure = ?6, message = ?7, output_tail = ?8 WHERE id = ?1",
                params![
                    id,
                    end.state,
                    now,
                    end.exit_code,
                    end.signal,
                    end.failure,
                    end.message,
                    end.output_tail
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// A page of a job's runs, newest first.
    pub async fn job_runs(
        &self,
        job: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRunRecord>, StoreError> {
        let job = job.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {JOB_RUN_COLS} FROM job_runs WHERE job = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![job, before.unwrap_or(i64::MAX), limit],
                job_run_from,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One run of a job with its step attempts (in start order).
    pub async fn job_run(
        &self,
        job: &str,
        id: i64,
    ) -> Result<Option<(JobRunRecord, Vec<StepRunRecord>)>, StoreError> {
        let job = job.to_string();
        self.read(move |c| {
            let run = c
                .query_row(
                    &format!("SELECT {JOB_RUN_COLS} FROM job_runs WHERE id = ?1 AND job = ?2"),
                    params![id, job],
                    job_run_from,
                )
                .optional()?;
            let Some(run) = run else { return Ok(None) };
            let mut st = c.prepare_cached(
                "SELECT id, step, attempt, state, started_at, ended_at, duration_ms, pid, exit_code,
                        signal, failure, message, output_tail
                 FROM step_runs WHERE run_id = ?1 ORDER BY id",
            )?;
            let steps = st
                .query_map(params![id], step_run_from)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((run, steps)))
        })
        .await
    }

    /// Durations of the last `n` successful runs of a job (for prediction).
    pub async fn recent_durations(&self, job: &str, n: u32) -> Result<Vec<i64>, StoreError> {
        let job = job.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT duration_ms FROM job_runs WHERE job = ?1 AND state = 'succeeded'
                 AND duration_ms IS NOT NULL ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![job, n], |r| r.get::<_, i64>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The last `limit` finished runs of a job that have a duration, oldest first, as
    /// (run id, started at, duration ms, state).
    pub async fn finished_durations(
        &self,
        job: &str,
        limit: u32,
    ) -> Result<Vec<(i64, i64, i64, RunStatus)>, StoreError> {
        let job = job.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, started_at, duration_ms, state FROM job_runs
                 WHERE job = ?1 AND duration_ms IS NOT NULL AND state <> 'running'
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![job, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            let mut out = rows.collect::<Result<Vec<_>, _>>()?;
            out.reverse();
            Ok(out)
        })
        .await
    }

    /// Runs of a job recorded as `running`, with their steps recorded as running.
    pub async fn running_job_runs(
        &self,
        job: &str,
    ) -> Result<Vec<(i64, Vec<LiveStep>)>, StoreError> {
        let job = job.to_string();
        self.read(move |c| {
            let mut runs = c.prepare_cached(
                "SELECT id FROM job_runs WHERE job = ?1 AND state = 'running' ORDER BY id",
            )?;
            let ids = runs
                .query_map(params![job], |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut steps = c.prepare_cached(
                "SELECT pid, start_time FROM step_runs
                 WHERE run_id = ?1 AND state = 'running' AND pid IS NOT NULL",
            )?;
            let mut out = Vec::new();
            for id in ids {
                let live = steps
                    .query_map(params![id], |r| {
                        Ok(LiveStep {
                            pid: r.get(0)?,
                            start_time: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                out.push((id, live));
            }
            Ok(out)
        })
        .await
    }

    /// Ends a run left over from before a restart of warden: its still-`running` steps
    /// become `step_state`, the run `interrupted` with `error`.
    pub async fn interrupt_job_run(
        &self,
        id: i64,
        step_state: StepStatus,
        error: String,
    ) -> Result<(), StoreError> {
        self.write(move |t| {
            let now = now_ms();
            t.execute(
                "UPDATE step_runs SET state = ?2, ended_at = ?3, duration_ms = ?3 - started_at,
                 message = 'exit status unknown: warden restarted while it ran'
                 WHERE run_id = ?1 AND state = 'running'",
                params![id, step_state, now],
            )?;
            t.execute(
                "UPDATE job_runs SET state = 'interrupted', ended_at = ?2, duration_ms = ?2 - started_at,
                 error = ?3 WHERE id = ?1",
                params![id, now, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes all but the newest `keep` runs of a job; returns the ids deleted (their
    /// output files can then be removed).
    pub async fn prune_job_runs(&self, job: &str, keep: u32) -> Result<Vec<i64>, StoreError> {
        let job = job.to_string();
        self.write(move |t| {
            let mut st = t.prepare_cached(
                "SELECT id FROM job_runs WHERE job = ?1 AND state != 'running'
                 AND id < (SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2))",
            )?;
            let ids = st
                .query_map(params![job, keep], |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for id in &ids {
                t.execute("DELETE FROM job_runs WHERE id = ?1", params![id])?;
            }
            Ok(ids)
        })
        .await
    }

    /// Takes the lease of `job` for `owner` if it is free, expired, already `owner`'s, or
    /// held by an owner that `owner_dead` says is gone. Atomic: the check and the take
    /// happen in one write, so two wardens racing for it cannot both win.
    pub async fn acquire_lease(
        &self,
        job: &str,
        owner: LeaseOwner,
        ttl_ms: i64,
        owner_dead: impl Fn(u32, u64) -> bool + Send + 'static,
    ) -> Result<Result<(), LeaseHeld>, StoreError> {
        let job = job.to_string();
        self.write(move |t| {
            let now = now_ms();
            let current = t
                .query_row(
                    "SELECT owner, owner_pid, owner_start_time, expires_at FROM job_leases WHERE job = ?1",
                    params![job],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, u32>(1)?,
                            r.get::<_, i64>(2)? as u64,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()?;
            if let Some((holder, pid, start, expires_at)) = current
                && holder != owner.id
                && expires_at > now
                && !owner_dead(pid, start)
            {
                return Ok(Err(LeaseHeld {
                    owner: holder,
                    expires_at,
                }));
            }
            t.execute(
                "INSERT INTO job_leases(job, owner, owner_pid, owner_start_time, acquired_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(job) DO UPDATE SET owner = ?2, owner_pid = ?3, owner_start_time = ?4,
                     acquired_at = ?5, expires_at = ?6, run_id = NULL",
                params![job, owner.id, owner.pid, owner.start_time as i64, now, now + ttl_ms],
            )?;
            Ok(Ok(()))
        })
        .await
    }

    /// Notes which run holds a lease (for people reading the table).
    pub async fn set_lease_run(
        &self,
        job: &str,
        owner: &str,
        run_id: i64,
    ) -> Result<(), StoreError> {
        let (job, owner) = (job.to_string(), owner.to_string());
        self.write(move |t| {
            t.execute(
                "UPDATE job_leases SET run_id = ?3 WHERE job = ?1 AND owner = ?2",
                params![job, owner, run_id],
            )?;
            Ok(())
        })
        .await
    }

    /// Extends `owner`'s lease of `job`; false when it no longer holds it.
    pub async fn renew_lease(
        &self,
        job: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let (job, owner) = (job.to_string(), owner.to_string());
        self.write(move |t| {
            let n = t.execute(
                "UPDATE job_leases SET expires_at = ?3 WHERE job = ?1 AND owner = ?2",
                params![job, owner, now_ms() + ttl_ms],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Gives up `owner`'s lease of `job` (no-op if it does not hold it).
    pub async fn release_lease(&self, job: &str, owner: &str) -> Result<(), StoreError> {
        let (job, owner) = (job.to_string(), owner.to_string());
        self.write(move |t| {
            t.execute(
                "DELETE FROM job_leases WHERE job = ?1 AND owner = ?2",
                params![job, owner],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str) -> LeaseOwner {
        LeaseOwner {
            id: id.into(),
            pid: 1,
            start_time: 1,
        }
    }

    #[tokio::test]
    async fn a_lease_is_held_by_one_owner_until_released_or_its_owner_dies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("open");
        store
            .insert_def(DefKind::Job, "j", &serde_json::json!({"name": "j"}))
            .await
            .expect("job");
        let alive = |_: u32, _: u64| false;
        let dead = |_: u32, _: u64| true;
        assert!(
            store
                .acquire_lease("j", owner("a"), 60_000, alive)
                .await
                .expect("db")
                .is_ok()
        );
        // Another live owner is refused; the holder may take it again.
        let held = store
            .acquire_lease("j", owner("b"), 60_000, alive)
            .await
            .expect("db");
        assert_eq!(held.expect_err("held").owner, "a");
        assert!(
            store
                .acquire_lease("j", owner("a"), 60_000, alive)
                .await
                .expect("db")
                .is_ok()
        );
        assert!(store.renew_lease("j", "a", 60_000).await.expect("db"));
        assert!(!store.renew_lease("j", "b", 60_000).await.expect("db"));
        // A dead holder's lease is taken over, and the old holder learns it lost it.
        assert!(
            store
                .acquire_lease("j", owner("b"), 60_000, dead)
                .await
                .expect("db")
                .is_ok()
        );
        assert!(!store.renew_lease("j", "a", 60_000).await.expect("db"));
        // Releasing someone else's lease does nothing; an expired lease is free.
        store.release_lease("j", "a").await.expect("db");
        assert!(
            store
                .acquire_lease("j", owner("c"), 60_000, alive)
                .await
                .expect("db")
                .is_err()
        );
        store.release_lease("j", "b").await.expect("db");
        assert!(
            store
                .acquire_lease("j", owner("c"), -1, alive)
                .await
                .expect("db")
                .is_ok()
        );
        assert!(
            store
                .acquire_lease("j", owner("d"), 60_000, alive)
                .await
                .expect("db")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn runs_steps_history_and_pruning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("open");
        store
            .insert_def(DefKind::Job, "j", &serde_json::json!({"name": "j"}))
            .await
            .expect("job");
        let mut ids = Vec::new();
        for _ in 0..4 {
            let id = store
                .insert_job_run(
                    "j",
                    "manual:t".into(),
                    RunStatus::Running,
                    None,
                    Some((5, 9)),
                    None,
                )
                .await
                .expect("run");
            let s = store
                .insert_step_run(id, "a", 0, now_ms(), Some((42, 7)))
                .await
                .expect("step");
            store
                .finish_step_run(
                    s,
                    StepEnd {
                        state: StepStatus::Succeeded,
                        exit_code: Some(0),
                        signal: None,
                        failure: None,
                        message: "exit code 0".into(),
                        output_tail: None,
                    },
                )
                .await
                .expect("finish step");
            store
                .finish_job_run(id, RunStatus::Succeeded, 0, None)
                .await
                .expect("finish");
            ids.push(id);
        }
        assert_eq!(store.recent_durations("j", 10).await.expect("d").len(), 4);
        let (run, steps) = store.job_run("j", ids[0]).await.expect("db").expect("run");
        assert_eq!(run.predicted_p90_ms, Some(9));
        assert_eq!(steps[0].exit_code, Some(0));
        let page = store.job_runs("j", Some(ids[3]), 2).await.expect("page");
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[2], ids[1]]
        );
        let pruned = store.prune_job_runs("j", 2).await.expect("prune");
        assert_eq!(pruned, [ids[0], ids[1]]);
        assert!(store.job_run("j", ids[0]).await.expect("db").is_none());
        // A run left running with a live step is found for recovery.
        let id = store
            .insert_job_run("j", "manual:t".into(), RunStatus::Running, None, None, None)
            .await
            .expect("run");
        store
            .insert_step_run(id, "a", 0, now_ms(), Some((42, 7)))
            .await
            .expect("step");
        let running = store.running_job_runs("j").await.expect("db");
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].1[0].pid, running[0].1[0].start_time), (42, 7));
        store
            .interrupt_job_run(id, StepStatus::Lost, "gone".into())
            .await
            .expect("interrupt");
        assert!(store.running_job_runs("j").await.expect("db").is_empty());
    }
}
