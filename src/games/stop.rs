//! Game-aware stopping: the graceful stop steps the supervisor's actor runs through its
//! stop hook (save over RCON or REST, then stop), and warned stops/restarts (tell players
//! at 5 min, 1 min, 10 s, then act), optionally only when nobody is online.

use std::time::Duration;

use game_proto::{PalworldClient, ProtoError, RconSession};
use serde::Serialize;
use utoipa::ToSchema;

use crate::program::game::StopStep;
use crate::store::Store;
use crate::store::events::NewEvent;
use crate::supervisor::stop_hook::StdinWriter;

/// Most warnings in one warned stop.
pub const MAX_WARNINGS: usize = 10;
/// Longest warning lead time, in seconds (one day).
pub const MAX_WARN_SECONDS: u64 = 86_400;

/// Options of a game-aware stop or restart.
#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    /// Restart instead of stop.
    pub restart: bool,
    /// Seconds before the action at which players are warned (any order).
    pub warn: Vec<u64>,
    /// Refuse when players are online.
    pub only_when_empty: bool,
}

/// What a game-aware stop or restart will do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StopPlan {
    /// Program name.
    pub program: String,
    /// `stop` or `restart`.
    pub action: &'static str,
    /// Unix ms at which the stop begins (now when there are no warnings).
    pub at_ms: i64,
    /// Warning lead times in seconds, longest first.
    pub warnings: Vec<u64>,
    /// Players online when the request was checked, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub players: Option<u32>,
}

/// The clients a stop sequence may need.
pub(super) struct StepClients {
    pub rcon: Option<RconSession>,
    pub rest: Option<Result<PalworldClient, ProtoError>>,
    pub stdin: Option<StdinWriter>,
}

/// Runs `steps` in order; the first failure ends the sequence with a readable error.
pub(super) async fn run_steps(
    store: Store,
    program: String,
    steps: Vec<StopStep>,
    clients: StepClients,
) -> Result<(), String> {
    let listed: Vec<String> = steps.iter().map(describe).collect();
    let ev = NewEvent::now(
        Some(&program),
        "stop_steps",
        format!("stopping with the game's steps: {}", listed.join(", ")),
        serde_json::Value::Null,
    );
    store.record_event(ev).await;
    let last = steps.len().saturating_sub(1);
    for (i, step) in steps.iter().enumerate() {
        let result = run_step(step, &clients).await;
        let result = match result {
            // A server that is told to stop may close the connection before answering;
            // for the final step that is success, not failure.
            Err(StepError::Proto(e)) if i == last && e.is_connection_error() => Ok(()),
            other => other,
        };
        if let Err(e) = result {
            return Err(format!("step {} ({}): {e}", i + 1, describe(step)));
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("{0}")]
    Other(String),
}

async fn run_step(step: &StopStep, c: &StepClients) -> Result<(), StepError> {
    let rest = || match &c.rest {
        Some(Ok(client)) => Ok(client.clone()),
        Some(Err(e)) => Err(StepError::Other(e.to_string())),
        None => Err(StepError::Other(
            "the program has no game.rest section".into(),
        )),
    };
    match step {
        StopStep::Rcon(cmd) => {
            let session = c
                .rcon
                .as_ref()
                .ok_or_else(|| StepError::Other("the program has no game.rcon section".into()))?;
            session.exec(cmd).await?;
        }
        StopStep::Stdin(line) => {
            let stdin = c.stdin.as_ref().ok_or_else(|| {
                StepError::Other(
                    "the process was adopted after a restart of warden; its input is not connected"
                        .into(),
                )
            })?;
            stdin.send(line).await.map_err(StepError::Other)?;
        }
        StopStep::RestSave => rest()?.save().await?,
        StopStep::RestShutdown {
            message,
            wait_seconds,
        } => rest()?.shutdown(*wait_seconds, message).await?,
    }
    Ok(())
}

/// A step in words, for events.
fn describe(step: &StopStep) -> String {
    match step {
        StopStep::Rcon(c) => format!("rcon {c:?}"),
        StopStep::Stdin(l) => format!("stdin {l:?}"),
        StopStep::RestSave => "rest save".into(),
        StopStep::RestShutdown { wait_seconds, .. } => {
            format!("rest shutdown after {wait_seconds} s")
        }
    }
}

/// Warning lead times cleaned up: no zeros or duplicates, longest first.
pub fn normalize_warnings(mut warn: Vec<u64>) -> Vec<u64> {
    warn.retain(|w| *w > 0);
    warn.sort_unstable_by(|a, b| b.cmp(a));
    warn.dedup();
    warn
}

/// When each warning is due, as offsets from the request, for warnings sorted longest
/// first: the action happens at the longest lead time.
pub fn warning_offsets(warn: &[u64]) -> Vec<Duration> {
    let total = warn.first().copied().unwrap_or(0);
    warn.iter()
        .map(|w| Duration::from_secs(total - w))
        .collect()
}

/// The message players see `secs` before the action.
pub fn warning_text(restart: bool, secs: u64) -> String {
    let what = if restart { "restarting" } else { "stopping" };
    let when = match secs {
        s if s >= 3600 && s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    };
    format!("Server {what} in {when}")
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_sorted_and_timed_from_the_longest() {
        let w = normalize_warnings(vec![10, 300, 0, 60, 60]);
        assert_eq!(w, vec![300, 60, 10]);
        assert_eq!(
            warning_offsets(&w),
            vec![
                Duration::ZERO,
                Duration::from_secs(240),
                Duration::from_secs(290)
            ]
        );
        assert!(warning_offsets(&[]).is_empty());
    }

    #[test]
    fn warning_texts_read_naturally() {
        assert_eq!(warning_text(true, 300), "Server restarting in 5 minutes");
        assert_eq!(warning_text(false, 60), "Server stopping in 1 minute");
        assert_eq!(warning_text(true, 10), "Server restarting in 10 seconds");
        assert_eq!(warning_text(true, 90), "Server restarting in 90 seconds");
        assert_eq!(warning_text(false, 7200), "Server stopping in 2 hours");
        assert_eq!(warning_text(false, 1), "Server stopping in 1 second");
    }
}
