//! A schedule's task chain: tasks run one after another, each after its offset; a failed
//! task aborts the chain or lets it continue, as the task says. Progress is written to the
//! run record after every task, so the history shows how far a chain got.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::job::Triggered;
use super::run::RunState;
use super::service::Scheduler;
use super::spec::{OnFailure, ScheduleSpec, TaskKind};
use crate::program::State;
use crate::schedule::record::RunStatus;
use crate::store::now_ms;
use crate::supervisor::ProgramHandle;
use crate::text_enum::text_enum;

text_enum! {
    /// Where one task of a chain run is.
    pub enum TaskState {
        /// Not reached yet.
        Pending = "pending",
        /// Waiting for its offset.
        Waiting = "waiting",
        /// Running.
        Running = "running",
        /// Done.
        Succeeded = "succeeded",
        /// Failed.
        Failed = "failed",
        /// Not run: an earlier task aborted the chain.
        Skipped = "skipped",
        /// The chain was cancelled.
        Cancelled = "cancelled",
    }
}

/// One task's result in a run record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskResult {
    /// Position in the chain (0-based).
    pub index: usize,
    /// The task's kind.
    pub kind: &'static str,
    /// `pending`, `waiting` (its offset), `running`, `succeeded`, `failed`, `skipped`
    /// (an earlier task aborted the chain) or `cancelled`.
    pub state: TaskState,
    /// Unix ms when it began (after its offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Unix ms when it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Per-task results before anything ran.
pub fn initial(spec: &ScheduleSpec) -> Vec<TaskResult> {
    spec.tasks
        .iter()
        .enumerate()
        .map(|(index, t)| TaskResult {
            index,
            kind: t.action.kind(),
            state: TaskState::Pending,
            started_at: None,
            ended_at: None,
            message: None,
        })
        .collect()
}

/// How a chain ended.
pub struct ChainEnd {
    /// `succeeded`, `failed` or `cancelled`.
    pub state: RunStatus,
    /// The first failure, naming the task.
    pub error: Option<String>,
}

/// Runs the chain of `spec` as schedule run `run_id`.
pub async fn run(
    sched: &Scheduler,
    spec: &ScheduleSpec,
    run_id: i64,
    cancel: &CancellationToken,
) -> ChainEnd {
    let store = &sched.inner.sh.store;
    let mut results = initial(spec);
    let mut failures: Vec<String> = Vec::new();
    let mut aborted = false;
    let mut cancelled = false;
    for (i, task) in spec.tasks.iter().enumerate() {
        if aborted || cancelled {
            results[i].state = if cancelled {
                TaskState::Cancelled
            } else {
                TaskState::Skipped
            };
            continue;
        }
        if task.offset_seconds > 0 {
            results[i].state = TaskState::Waiting;
            save(store, run_id, &results).await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(task.offset_seconds)) => {}
                _ = cancel.cancelled() => {
                    cancelled = true;
                    results[i].state = TaskState::Cancelled;
                    continue;
                }
            }
        }
        results[i].state = TaskState::Running;
        results[i].started_at = Some(now_ms());
        save(store, run_id, &results).await;
        let outcome = tokio::select! {
            r = execute(sched, &spec.name, &task.action) => Some(r),
            _ = cancel.cancelled() => None,
        };
        results[i].ended_at = Some(now_ms());
        match outcome {
            None => {
                cancelled = true;
                results[i].state = TaskState::Cancelled;
            }
            Some(Ok(msg)) => {
                results[i].state = TaskState::Succeeded;
                results[i].message = Some(msg);
            }
            Some(Err(why)) => {
                results[i].state = TaskState::Failed;
                failures.push(format!("task {} ({}): {why}", i + 1, task.action.kind()));
                results[i].message = Some(why);
                if task.on_failure == OnFailure::Abort {
                    aborted = true;
                }
            }
        }
    }
    let state = if !failures.is_empty() {
        RunStatus::Failed
    } else if cancelled {
        RunStatus::Cancelled
    } else {
        RunStatus::Succeeded
    };
    let mut error = (!failures.is_empty()).then(|| failures.join("; "));
    if aborted {
        error = error.map(|e| format!("{e}; the chain was aborted"));
    }
    if let Err(e) = store
        .update_schedule_run(run_id, state, error.clone(), to_json(&results))
        .await
    {
        tracing::error!(schedule = %spec.name, run_id, error = %e, "cannot record the end of a chain");
    }
    ChainEnd { state, error }
}

fn to_json(results: &[TaskResult]) -> serde_json::Value {
    serde_json::to_value(results).unwrap_or(serde_json::Value::Null)
}

async fn save(store: &crate::store::Store, run_id: i64, results: &[TaskResult]) {
    if let Err(e) = store
        .update_schedule_run(run_id, RunStatus::Running, None, to_json(results))
        .await
    {
        tracing::warn!(run_id, error = %e, "cannot record a chain's progress");
    }
}

/// Performs one task; answers a short success message or why it failed.
async fn execute(sched: &Scheduler, schedule: &str, task: &TaskKind) -> Result<String, String> {
    let sh = &sched.inner.sh;
    let program = |name: &str| sh.sup.get(name).map_err(|e| e.to_string());
    // Asleep by design: nobody is on it, so there is nobody to tell and nothing to save;
    // a console line, RCON command or broadcast is skipped rather than waking or failing.
    let asleep = |name: &str| {
        sh.sup
            .get(name)
            .is_ok_and(|h| h.snapshot().status.state == State::Sleeping)
    };
    match task {
        TaskKind::Console { program: p, .. }
        | TaskKind::Rcon { program: p, .. }
        | TaskKind::Broadcast { program: p, .. }
            if asleep(p) =>
        {
            Ok(format!("program '{p}' is asleep; skipped"))
        }
        TaskKind::Start { program: p } => {
            let h = program(p)?;
            h.start().await.map_err(|e| e.to_string())?;
            let limit = Duration::from_secs(h.snapshot().spec.start_seconds + 60);
            settle(&h, limit, &[State::Starting], State::Running).await
        }
        TaskKind::Restart { program: p } => {
            let h = program(p)?;
            // Asleep by design: it starts fresh when someone wakes it.
            if h.snapshot().status.state == State::Sleeping {
                return Ok(format!("program '{p}' is asleep; left asleep"));
            }
            h.restart().await.map_err(|e| e.to_string())?;
            let spec = h.snapshot().spec.clone();
            let limit = Duration::from_secs(spec.stop.timeout_seconds + spec.start_seconds + 60);
            settle(
                &h,
                limit,
                &[State::Stopping, State::Starting],
                State::Running,
            )
            .await
        }
        TaskKind::Stop { program: p } => {
            let h = program(p)?;
            h.stop().await.map_err(|e| e.to_string())?;
            let limit = Duration::from_secs(h.snapshot().spec.stop.timeout_seconds + 10);
            settle(&h, limit, &[State::Stopping], State::Stopped).await
        }
        TaskKind::Kill { program: p } => {
            let h = program(p)?;
            h.kill().await.map_err(|e| e.to_string())?;
            h.wait_for(Duration::from_secs(10), |s| !s.state.is_active())
                .await;
            Ok(format!(
                "killed; program '{p}' is {}",
                h.snapshot().status.state.as_str()
            ))
        }
        TaskKind::Console { program: p, line } => {
            program(p)?
                .send_input(line.clone())
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("sent to program '{p}'"))
        }
        TaskKind::Rcon {
            program: p,
            command,
        } => sh.services.games.rcon(p, command).await,
        TaskKind::Broadcast {
            program: p,
            message,
        } => {
            sh.services.games.broadcast(p, message).await?;
            Ok(format!("broadcast to the players of '{p}'"))
        }
        TaskKind::Backup { program } => {
            sh.services
                .backups
                .backup(program, &format!("schedule {schedule}"))
                .await
        }
        TaskKind::Update { program } => sh.services.updates.update(program).await,
        TaskKind::Job { job, wait } => {
            let h = sched.job_handle(job).map_err(|e| e.to_string())?;
            let source = format!("schedule:{schedule}");
            let triggered = h.trigger(source).await.map_err(|e| e.to_string())?;
            let (label, mut done) = match triggered {
                Triggered::Skipped { run_id, reason } => {
                    let msg = format!("job '{job}' was skipped (run {run_id}): {reason}");
                    return if *wait { Err(msg) } else { Ok(msg) };
                }
                Triggered::Started { run_id, done } => (format!("run {run_id}"), done),
                Triggered::Queued { done } => ("a queued run".to_string(), done),
                Triggered::Replacing { replaced, done } => {
                    (format!("a run replacing run {replaced}"), done)
                }
            };
            if !*wait {
                return Ok(format!("job '{job}': started {label}"));
            }
            let end = done
                .wait_for(Option::is_some)
                .await
                .map_err(|_| "warden is shutting down".to_string())?
                .clone();
            match end {
                Some(end) if end.state == RunState::Succeeded => {
                    Ok(format!("job '{job}' run {} succeeded", end.run_id))
                }
                Some(end) => Err(format!(
                    "job '{job}' run {} {}{}",
                    end.run_id,
                    end.state.as_str(),
                    end.error.map(|e| format!(": {e}")).unwrap_or_default()
                )),
                None => Err("the job run's end is unknown".into()),
            }
        }
        TaskKind::Http {
            method,
            url,
            headers,
            body,
            timeout_seconds,
            expect_status,
        } => {
            let method = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("{method:?} is not an HTTP method"))?;
            let mut req = sh
                .http
                .request(method, url)
                .timeout(Duration::from_secs(*timeout_seconds));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(b) = body {
                req = req.body(b.clone());
            }
            // The URL may hold a secret: errors are reported without it.
            let resp = req
                .send()
                .await
                .map_err(|e| format!("the request failed: {}", e.without_url()))?;
            let status = resp.status();
            let ok = match expect_status {
                Some(s) => status.as_u16() == *s,
                None => status.is_success(),
            };
            if ok {
                Ok(format!("HTTP {}", status.as_u16()))
            } else {
                Err(format!(
                    "HTTP {}{}",
                    status.as_u16(),
                    expect_status
                        .map(|s| format!(" (expected {s})"))
                        .unwrap_or_default()
                ))
            }
        }
    }
}

/// Waits while the program is in one of `transient` states; succeeds if it then is in
/// `target`.
async fn settle(
    h: &ProgramHandle,
    limit: Duration,
    transient: &[State],
    target: State,
) -> Result<String, String> {
    let snap = h.wait_for(limit, |s| !transient.contains(&s.state)).await;
    let state = snap.status.state;
    if state == target {
        Ok(format!("program '{}' is {}", h.name(), state.as_str()))
    } else {
        Err(format!(
            "program '{}' is {} instead of {} after {} s{}",
            h.name(),
            state.as_str(),
            target.as_str(),
            limit.as_secs(),
            snap.status
                .last_exit
                .as_ref()
                .map(|e| format!(" (last exit: {})", e.description))
                .unwrap_or_default()
        ))
    }
}
