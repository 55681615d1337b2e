//! The seam through which a service supplies a richer graceful stop than one signal or one
//! stdin line (the `games` service: save over RCON, then `stop`).
//!
//! Architecture invariant: the actor never waits on the network. When the lifecycle asks
//! for a graceful stop, the actor asks the hook for a future, runs it in its own task and
//! keeps only the stop timeout and the kill; the task's result comes back into the actor's
//! `select!`. If the steps fail, the actor falls back to `stop.stdin`/`stop.signal` at once.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::console::Console;
use crate::bus::Stream;
use crate::program::ProgramSpec;

/// Writes lines to one process's stdin, echoing them to its console like typed input.
#[derive(Clone)]
pub struct StdinWriter {
    pub(super) tx: mpsc::Sender<String>,
    pub(super) console: Console,
}

impl StdinWriter {
    /// Queues `line` for the process's stdin; fails when the process does not read its
    /// input or has closed it.
    pub async fn send(&self, line: &str) -> Result<(), String> {
        self.tx.try_send(line.to_string()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                "the program is not reading its input".to_string()
            }
            mpsc::error::TrySendError::Closed(_) => "the program closed its input".to_string(),
        })?;
        self.console.record(Stream::Stdin, line.to_string()).await;
        Ok(())
    }
}

/// What a hook gets to stop one process.
pub struct StopRequest {
    /// The program's definition.
    pub spec: Arc<ProgramSpec>,
    /// Its stdin (absent for adopted processes).
    pub stdin: Option<StdinWriter>,
}

/// Supplies graceful stop steps for programs that have them.
pub trait StopHook: Send + Sync {
    /// The steps for this program as a future that runs in its own task, or `None` to use
    /// the plain `stop` settings. An `Err` (why, in words) makes the actor fall back to
    /// `stop.stdin`/`stop.signal` at once; `Ok` leaves the process the rest of
    /// `stop.timeout_seconds` to exit before it is killed.
    fn graceful_stop(&self, req: StopRequest) -> Option<BoxFuture<'static, Result<(), String>>>;
}
