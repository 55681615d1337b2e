//! The internal event bus: the typed [`Event`] vocabulary and its fan-out.
//!
//! Architecture invariant: publishing never blocks. The bus is a bounded broadcast
//! channel; a subscriber that falls more than [`CAPACITY`] events behind receives
//! `Lagged(n)` and must resynchronise from the store (durable events) or simply skip
//! (live-only data such as console lines). Durability is not the bus's job: lifecycle
//! events are written to the store by `events::Recorder` before they are published.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::program::{ExitInfo, State};

/// Events buffered per subscriber before it is told it lagged.
pub const CAPACITY: usize = 8192;

/// Something that happened. Shared as `Arc<Event>` so fan-out never copies payloads.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A program moved between lifecycle states.
    State(StateChange),
    /// A console line from (or to) a program.
    Console(ConsoleLine),
    /// A resource sample of one program (its whole process tree), taken by `metrics`.
    // Produced by the metrics sampler, which lands separately; the type is fixed here so
    // producers and consumers agree on it.
    #[allow(dead_code)]
    Sample(ProgramSample),
}

/// One resource sample of a program, aggregated over its process tree. Rates are per
/// second over the interval since the previous sample; 100 % CPU is one full core.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramSample {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// CPU use in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_bytes: u64,
    /// Threads in the tree.
    pub threads: u64,
    /// Open files/handles in the tree.
    pub open_files: u64,
    /// Disk bytes read per second.
    pub disk_read_bps: f64,
    /// Disk bytes written per second.
    pub disk_write_bps: f64,
    /// Players online, when a game query is configured (filled by `games`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub players: Option<u32>,
}

/// A lifecycle transition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StateChange {
    /// Program name.
    pub program: String,
    /// Unix ms.
    pub ts: i64,
    /// Previous state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Process id, when one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Why, in words (e.g. `crashed: exit code 1`).
    pub reason: String,
    /// How the process ended, for exits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// The last console lines before a crash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}

/// Which stream a console line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// A line sent to the program's standard input.
    Stdin,
}

impl Stream {
    /// Three-letter tag used in log files.
    pub fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
            Stream::Stdin => "in ",
        }
    }
}

/// One console line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsoleLine {
    /// Program name.
    pub program: String,
    /// Unix ms when warden read the line.
    pub ts: i64,
    /// Source stream.
    pub stream: Stream,
    /// The text, without its newline.
    pub text: String,
    /// True when the line was longer than the limit and continues in the next line.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
}

/// Cheap-to-clone publishing handle.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus with [`CAPACITY`] slots.
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(CAPACITY);
        Bus { tx }
    }

    /// Publishes to every current subscriber; never blocks, never fails (no subscriber is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription starting at the next published event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
