//! What happened and the pictures people look at, as numbers: the event record the store
//! keeps and the API lists, a program's availability over a window (from its stored state
//! changes) and the percentiles of job run durations. Pure functions over what the store
//! returns, so they are tested without a store, a clock or a process.

use serde::Serialize;
use utoipa::ToSchema;

use crate::program::State;

/// One stored event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventRecord {
    /// Monotonic id; use it as the `before` cursor for the next page.
    pub id: i64,
    /// Unix ms.
    pub ts: i64,
    /// RFC 3339 time, for people.
    pub time: String,
    /// Program name; absent for warden's own events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Kind, e.g. `state`, `program_created`, `warden_started`.
    pub kind: String,
    /// Readable summary.
    pub message: String,
    /// Structured details; null for events that carry none.
    #[schema(value_type = Option<Object>)]
    pub data: serde_json::Value,
}

/// How a stretch of time counts on the availability strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// `running`: the only state that counts as up.
    Running,
    /// `stopped` or `sleeping`: down on purpose.
    Stopped,
    /// `crashed` or `backoff`: down by failure, warden restarting it or not.
    Crashed,
    /// `fatal`: warden gave up after too many failed starts.
    GaveUp,
    /// `starting`, `stopping` or `waiting`: between two of the above.
    Changing,
    /// Before the program existed.
    Unknown,
}

impl Availability {
    /// The class of a lifecycle state.
    pub fn of(state: State) -> Availability {
        match state {
            State::Running => Availability::Running,
            State::Stopped | State::Sleeping => Availability::Stopped,
            State::Crashed | State::Backoff => Availability::Crashed,
            State::Fatal => Availability::GaveUp,
            State::Starting | State::Stopping | State::Waiting => Availability::Changing,
        }
    }
}

/// One stretch of the strip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Segment {
    /// Unix ms, inclusive.
    pub from: i64,
    /// Unix ms, exclusive.
    pub to: i64,
    /// What the program was doing.
    pub state: Availability,
}

/// Milliseconds spent in each class within the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    /// Running.
    pub running_ms: i64,
    /// Stopped or sleeping.
    pub stopped_ms: i64,
    /// Crashed or restarting after a crash.
    pub crashed_ms: i64,
    /// Gave up.
    pub gave_up_ms: i64,
    /// Starting, stopping or waiting.
    pub changing_ms: i64,
}

/// A program's availability over a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Strip {
    /// Start of the window, unix ms.
    pub from: i64,
    /// End of the window (now), unix ms.
    pub to: i64,
    /// Consecutive stretches covering the window, oldest first; neighbours differ.
    pub segments: Vec<Segment>,
    /// Time in each class.
    pub totals: Totals,
    /// Running time as a share of the time the program existed in the window, 0–100;
    /// absent when it did not exist in it.
    pub uptime_percent: Option<f64>,
}

/// One stored state change: when, from which state, to which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Unix ms.
    pub ts: i64,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
}

/// What the store knows about a program's states around a window.
#[derive(Debug, Clone)]
pub struct StateHistory {
    /// When the program was created (unix ms); before it the strip is `unknown`.
    pub created_at: i64,
    /// The state entered by the last change before the window, if one is stored.
    pub before: Option<State>,
    /// Changes within the window, oldest first.
    pub changes: Vec<Change>,
    /// The program's state now: the state throughout a window without any stored change.
    pub now: State,
}

/// The availability strip of `[from, to]`. The state at the window's start is the last
/// change before it, else the state the first change in it left, else the state now (the
/// older changes may have been pruned).
pub fn strip(from: i64, to: i64, h: &StateHistory) -> Strip {
    let to = to.max(from);
    let start = h.created_at.clamp(from, to);
    let initial = h
        .before
        .or_else(|| h.changes.first().map(|c| c.from))
        .unwrap_or(h.now);
    let mut segments: Vec<Segment> = Vec::new();
    let push = |segments: &mut Vec<Segment>, a: i64, b: i64, state: Availability| {
        if b <= a {
            return;
        }
        match segments.last_mut() {
            Some(last) if last.state == state && last.to == a => last.to = b,
            _ => segments.push(Segment {
                from: a,
                to: b,
                state,
            }),
        }
    };
    push(&mut segments, from, start, Availability::Unknown);
    let mut at = start;
    let mut cur = Availability::of(initial);
    for c in &h.changes {
        let ts = c.ts.clamp(at, to);
        push(&mut segments, at, ts, cur);
        at = ts;
        cur = Availability::of(c.to);
    }
    push(&mut segments, at, to, cur);

    let mut totals = Totals::default();
    for s in &segments {
        let d = s.to - s.from;
        match s.state {
            Availability::Running => totals.running_ms += d,
            Availability::Stopped => totals.stopped_ms += d,
            Availability::Crashed => totals.crashed_ms += d,
            Availability::GaveUp => totals.gave_up_ms += d,
            Availability::Changing => totals.changing_ms += d,
            Availability::Unknown => {}
        }
    }
    let known = to - start;
    let uptime_percent = (known > 0).then(|| totals.running_ms as f64 * 100.0 / known as f64);
    Strip {
        from,
        to,
        segments,
        totals,
        uptime_percent,
    }
}

/// The `p`-th percentile (0 < p ≤ 1, nearest rank) of `values`; `None` when empty.
pub fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let k = (p * v.len() as f64).ceil() as usize;
    Some(v[k.clamp(1, v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(ts: i64, from: State, to: State) -> Change {
        Change { ts, from, to }
    }

    #[test]
    fn a_window_is_split_at_every_change_and_the_uptime_counts_running_only() {
        use State::*;
        let h = StateHistory {
            created_at: 0,
            before: Some(Running),
            changes: vec![
                change(1_000, Running, Backoff),
                change(1_100, Backoff, Starting),
                change(1_200, Starting, Running),
                change(2_000, Running, Stopping),
                change(2_000, Stopping, Stopped),
                change(3_000, Stopped, Fatal),
            ],
            now: Fatal,
        };
        let s = strip(500, 4_000, &h);
        let got: Vec<(i64, i64, Availability)> =
            s.segments.iter().map(|g| (g.from, g.to, g.state)).collect();
        assert_eq!(
            got,
            vec![
                (500, 1_000, Availability::Running),
                (1_000, 1_100, Availability::Crashed),
                (1_100, 1_200, Availability::Changing),
                (1_200, 2_000, Availability::Running),
                (2_000, 3_000, Availability::Stopped),
                (3_000, 4_000, Availability::GaveUp),
            ]
        );
        assert_eq!(s.totals.running_ms, 1_300);
        assert_eq!(s.uptime_percent, Some(1_300.0 * 100.0 / 3_500.0));
    }

    #[test]
    fn before_its_creation_a_program_is_unknown_and_not_counted() {
        let h = StateHistory {
            created_at: 2_000,
            before: None,
            changes: vec![change(3_000, State::Stopped, State::Running)],
            now: State::Running,
        };
        let s = strip(0, 4_000, &h);
        assert_eq!(s.segments.len(), 3);
        assert_eq!(s.segments[0].state, Availability::Unknown);
        assert_eq!(s.segments[1].state, Availability::Stopped);
        assert_eq!(s.uptime_percent, Some(50.0));
        // Without any stored change the state now held throughout.
        let quiet = StateHistory {
            created_at: 0,
            before: None,
            changes: vec![],
            now: State::Running,
        };
        let s = strip(10, 20, &quiet);
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.uptime_percent, Some(100.0));
        // Created after the window: nothing known.
        let later = StateHistory {
            created_at: 50,
            ..quiet
        };
        assert_eq!(strip(10, 20, &later).uptime_percent, None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<i64> = (1..=10).map(|i| i * 1000).collect();
        assert_eq!(percentile(&d, 0.5), Some(5_000));
        assert_eq!(percentile(&d, 0.9), Some(9_000));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7));
    }
}
