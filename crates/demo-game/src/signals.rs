//! OS stop requests as one async source: SIGTERM/SIGINT on Unix, Ctrl-C/Ctrl-Break on Windows.

use std::future::pending;

use crate::console;

/// Listens for the signals a supervisor or a terminal uses to ask for a graceful stop.
/// A handler that cannot be installed is reported once and then simply never fires.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(windows)]
    ctrl_break: Option<tokio::signal::windows::CtrlBreak>,
}

fn installed<T>(what: &str, result: std::io::Result<T>) -> Option<T> {
    result
        .map_err(|e| console::warn(&format!("Cannot listen for {what}: {e}")))
        .ok()
}

/// Awaits the next delivery of an optional signal stream; pending forever when absent or closed.
macro_rules! next {
    ($stream:expr) => {
        async {
            match $stream {
                Some(s) => match s.recv().await {
                    Some(()) => (),
                    None => pending().await,
                },
                None => pending().await,
            }
        }
    };
}

impl Signals {
    /// Must be called inside the runtime.
    #[cfg(unix)]
    pub fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            term: installed("SIGTERM", signal(SignalKind::terminate())),
            int: installed("SIGINT", signal(SignalKind::interrupt())),
        }
    }

    /// Must be called inside the runtime.
    #[cfg(windows)]
    pub fn new() -> Signals {
        use tokio::signal::windows::{ctrl_break, ctrl_c};
        Signals {
            ctrl_c: installed("Ctrl-C", ctrl_c()),
            ctrl_break: installed("Ctrl-Break", ctrl_break()),
        }
    }

    /// Resolves with the signal's name each time one arrives.
    #[cfg(unix)]
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            () = next!(&mut self.term) => "SIGTERM",
            () = next!(&mut self.int) => "SIGINT",
        }
    }

    /// Resolves with the signal's name each time one arrives.
    #[cfg(windows)]
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            () = next!(&mut self.ctrl_c) => "Ctrl-C",
            () = next!(&mut self.ctrl_break) => "Ctrl-Break",
        }
    }
}
