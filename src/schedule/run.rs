//! One run of a job: walks the step graph, runs ready steps in parallel up to the
//! concurrency limit, retries failures per the retry policy, and raises the overrun
//! warning and overrun events against the predicted duration.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{Plan, StepState};
use super::policy::{Prediction, backoff_delay, overrun_marks};
use super::shared::Shared;
use super::spec::JobSpec;
use super::step::{self, Attempt, Outcome};
use crate::bus::JobEventKind;
use crate::schedule::record::RunStatus;

/// Final state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Every step succeeded.
    Succeeded,
    /// A step failed after its retries.
    Failed,
    /// Cancelled by request (or replaced, or warden stopped).
    Cancelled,
    /// Never started (overlap policy, lease held elsewhere).
    Skipped,
}

impl RunState {
    /// The name stored in run rows.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Skipped => "skipped",
        }
    }
}

impl From<RunState> for RunStatus {
    fn from(s: RunState) -> RunStatus {
        match s {
            RunState::Succeeded => RunStatus::Succeeded,
            RunState::Failed => RunStatus::Failed,
            RunState::Cancelled => RunStatus::Cancelled,
            RunState::Skipped => RunStatus::Skipped,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Final state.
    pub state: RunState,
    /// Retries of all steps together.
    pub retries: u32,
    /// What went wrong, naming the step.
    pub error: Option<String>,
}

/// What one step did, over all its attempts.
struct StepResult {
    index: usize,
    outcome: Outcome,
    retries: u32,
}

/// Runs `spec` as run `run_id` until it ends or `cancel` fires.
pub async fn execute(
    sh: Arc<Shared>,
    spec: Arc<JobSpec>,
    run_id: i64,
    cancel: CancellationToken,
    prediction: Option<Prediction>,
) -> RunOutcome {
    let limit = sh.concurrency(&spec);
    let run_dir = step::run_dir(&sh.jobs_dir, &spec.name, run_id);
    let mut plan = Plan::new(&spec.steps);
    let mut set: JoinSet<StepResult> = JoinSet::new();
    let mut retries = 0u32;
    let mut failures: Vec<String> = Vec::new();
    let mut cancelled = false;
    let alarm_sh = sh.clone();
    let alarm_job = spec.name.clone();
    let alarm = overrun_alarm(Instant::now(), prediction, move |kind, elapsed| {
        let sh = alarm_sh.clone();
        let job = alarm_job.clone();
        async move {
            let p90 = prediction.map(|p| p.p90_ms);
            let what = if kind == JobEventKind::Overrun {
                "is running longer than its predicted"
            } else {
                "has reached 80 % of its predicted"
            };
            let message = format!(
                "run {run_id} of job '{job}' {what} duration (p90 {}) after {}",
                crate::duration::format(Duration::from_millis(
                    p90.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
                )),
                crate::duration::format(elapsed)
            );
            let ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
            sh.job_event(&job, run_id, kind, message, Some(ms), p90)
                .await;
        }
    });
    tokio::pin!(alarm);
    loop {
        if !cancelled {
            for i in plan.ready() {
                if plan.running() >= limit {
                    break;
                }
                plan.set(i, StepState::Running);
                set.spawn(run_step(
                    sh.clone(),
                    spec.clone(),
                    i,
                    run_id,
                    run_dir.clone(),
                    cancel.clone(),
                ));
            }
        }
        if set.is_empty() {
            // Nothing runs: either everything ended, or (cancelled) nothing may start.
            break;
        }
        tokio::select! {
            joined = set.join_next() => {
                let Some(joined) = joined else { continue };
                match joined {
                    Ok(r) => {
                        retries += r.retries;
                        let name = &spec.steps[r.index].name;
                        let state = match r.outcome {
                            Outcome::Succeeded => StepState::Succeeded,
                            Outcome::Cancelled => StepState::Skipped,
                            Outcome::Failed(_, why) => {
                                let after = if r.retries > 0 {
                                    format!(" (after {} retries)", r.retries)
                                } else {
                                    String::new()
                                };
                                failures.push(format!("step '{name}' failed: {why}{after}"));
                                StepState::Failed
                            }
                        };
                        plan.set(r.index, state);
                    }
                    Err(e) => {
                        // A step task panicked: its step counts as failed, the rest goes on.
                        tracing::error!(job = %spec.name, run_id, error = %e, "a step task ended abnormally");
                        failures.push("a step ended abnormally; see warden's log".into());
                        cancel.cancel();
                    }
                }
            }
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                plan.skip_pending();
            }
            _ = &mut alarm => {}
        }
    }
    let not_run: Vec<&str> = (0..spec.steps.len())
        .filter(|&i| plan.state(i) == StepState::Pending || plan.state(i) == StepState::Skipped)
        .map(|i| spec.steps[i].name.as_str())
        .collect();
    // A step that failed before a cancel makes the run failed, not cancelled.
    let state = if !failures.is_empty() {
        RunState::Failed
    } else if cancelled {
        RunState::Cancelled
    } else {
        RunState::Succeeded
    };
    let mut error = (!failures.is_empty()).then(|| failures.join("; "));
    if !not_run.is_empty() && state != RunState::Succeeded {
        let note = format!("not run: {}", not_run.join(", "));
        error = Some(match error {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
    }
    RunOutcome {
        state,
        retries,
        error,
    }
}

/// Runs step `i` with its retries.
async fn run_step(
    sh: Arc<Shared>,
    spec: Arc<JobSpec>,
    i: usize,
    run_id: i64,
    run_dir: std::path::PathBuf,
    cancel: CancellationToken,
) -> StepResult {
    let retry = spec.retry_of(i).clone();
    let mut attempt = 0u32;
    loop {
        let outcome = Attempt {
            store: &sh.store,
            job: &spec,
            step: &spec.steps[i],
            run_id,
            attempt,
            run_dir: &run_dir,
            cancel: &cancel,
        }
        .run()
        .await;
        let Outcome::Failed(class, why) = &outcome else {
            return StepResult {
                index: i,
                outcome,
                retries: attempt,
            };
        };
        if attempt >= retry.max_retries || !retry.on.contains(class) || cancel.is_cancelled() {
            return StepResult {
                index: i,
                outcome,
                retries: attempt,
            };
        }
        attempt += 1;
        let delay = backoff_delay(&retry, attempt);
        tracing::info!(job = %spec.name, run_id, step = %spec.steps[i].name, class = class.as_str(), reason = %why, retry = attempt, delay_ms = delay.as_millis() as u64, "retrying step");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => {
                return StepResult { index: i, outcome: Outcome::Cancelled, retries: attempt - 1 };
            }
        }
    }
}

/// Calls `emit` with the overrun warning at 80 % and the overrun at 100 % of the predicted
/// p90 after `start`, then never resolves. Without a prediction it never fires.
async fn overrun_alarm<F, Fut>(start: Instant, prediction: Option<Prediction>, emit: F)
where
    F: Fn(JobEventKind, Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(p) = prediction {
        let (warn, over) = overrun_marks(&p);
        tokio::time::sleep_until(start + warn).await;
        emit(JobEventKind::OverrunWarning, start.elapsed()).await;
        tokio::time::sleep_until(start + over).await;
        emit(JobEventKind::Overrun, start.elapsed()).await;
    }
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn overrun_events_fire_at_80_and_100_percent_of_p90() {
        let seen: Arc<Mutex<Vec<(JobEventKind, u128)>>> = Arc::default();
        let s = seen.clone();
        let p = Prediction {
            samples: 5,
            p50_ms: 5_000,
            p90_ms: 10_000,
        };
        let alarm = overrun_alarm(Instant::now(), Some(p), move |k, d| {
            let s = s.clone();
            async move { s.lock().expect("lock").push((k, d.as_millis())) }
        });
        let handle = tokio::spawn(alarm);
        tokio::time::sleep(Duration::from_millis(7_999)).await;
        assert!(seen.lock().expect("lock").is_empty());
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            *seen.lock().expect("lock"),
            [(JobEventKind::OverrunWarning, 8_000)]
        );
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        assert_eq!(
            seen.lock().expect("lock").last(),
            Some(&(JobEventKind::Overrun, 10_000))
        );
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(seen.lock().expect("lock").len(), 2);
        handle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_prediction_nothing_fires() {
        let alarm = overrun_alarm(Instant::now(), None, |_, _| async {
            panic!("must not fire")
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(86_400), alarm)
                .await
                .is_err()
        );
    }
}
