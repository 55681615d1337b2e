//! Consistency steps: console lines sent to a running program before and after a backup,
//! each optionally waiting for an answer line (e.g. `save-all` → `Saved the game`).
//!
//! A wait subscribes to the bus *before* its line is sent, so an answer printed at once
//! cannot slip by unseen.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::error::BackupError;
use super::settings::Step;
use crate::bus::{Bus, Event, Stream};
use crate::store::now_ms;
use crate::supervisor::ProgramHandle;

/// Runs `steps` in order; stops at the first failure. `cancel` (for pre steps) aborts a
/// wait; post steps pass `None` because they must always run to the end.
pub async fn run(
    handle: &ProgramHandle,
    bus: &Bus,
    steps: &[Step],
    cancel: Option<&CancellationToken>,
    mut on_step: impl FnMut(String),
) -> Result<(), BackupError> {
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    for (i, step) in steps.iter().enumerate() {
        let describe = match &step.wait_for {
            Some(w) => format!("step {}: sent '{}', waiting for '{w}'", i + 1, step.stdin),
            None => format!("step {}: sent '{}'", i + 1, step.stdin),
        };
        // Subscribe first: the answer may be printed before send_input even returns.
        let mut rx = bus.subscribe();
        let sent_at = now_ms();
        handle
            .send_input(step.stdin.clone())
            .await
            .map_err(|e| BackupError::Failed(format!("step {} ('{}'): {e}", i + 1, step.stdin)))?;
        on_step(describe);
        let Some(pattern) = &step.wait_for else {
            continue;
        };
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if let Event::Console(line) = &*ev
                            && line.program == handle.name()
                            && line.stream != Stream::Stdin
                            && line.text.contains(pattern.as_str())
                        {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Events were skipped: the answer may be among them, and the
                        // console ring still has it.
                        let found = handle.console_tail(2000).iter().any(|l| {
                            l.ts >= sent_at
                                && l.stream != Stream::Stdin
                                && l.text.contains(pattern.as_str())
                        });
                        if found {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Closed) => return Err(BackupError::ShuttingDown),
                }
            }
        };
        let timeout = Duration::from_secs(step.timeout_seconds);
        tokio::select! {
            _ = cancel.cancelled() => return Err(BackupError::Cancelled),
            r = tokio::time::timeout(timeout, wait) => match r {
                Ok(r) => r?,
                Err(_) => {
                    return Err(BackupError::Failed(format!(
                        "step {} ('{}'): the program did not print '{pattern}' within {} s",
                        i + 1,
                        step.stdin,
                        step.timeout_seconds
                    )));
                }
            },
        }
    }
    Ok(())
}
