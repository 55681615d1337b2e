//! The per-program monitor: one task per program that follows the program's snapshot and,
//! for the current process, watches for readiness (a console line or a query answering),
//! runs liveness checks and samples players.
//!
//! Architecture invariant: the monitor talks to the program only through its
//! `ProgramHandle` (ready, health, restart) and never blocks the actor: every network wait
//! happens here, bounded by the configured query/RCON timeouts. Reports carry the pid they
//! are about, so a late answer about a process that has gone is ignored by the actor.

use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::bus::{Event, PlayersSample, Stream};
use crate::program::GameHealth;
use crate::program::game::{GameSpec, Readiness};
use crate::program::{HealthState, ProgramSpec, State};
use crate::store::now_ms;
use crate::supervisor::{ProgramHandle, Snapshot};

/// How often a readiness query is retried while a program starts.
const READY_POLL: Duration = Duration::from_secs(1);
/// Console lines searched for the readiness line (lines printed before the monitor
/// subscribed, or skipped because it lagged behind the bus).
const RING_SCAN: usize = 2000;
/// Longest readiness line quoted in the state change reason.
const QUOTE: usize = 120;

/// Follows one program until its actor ends or warden shuts down.
pub(super) async fn run(svc: Arc<Inner>, handle: ProgramHandle, shutdown: CancellationToken) {
    crate::health::injected_fault(&format!("game monitor {}", handle.name()));
    let mut rx = handle.watch();
    let mut m = Monitor::new(svc, handle);
    loop {
        let snap = rx.borrow_and_update().clone();
        m.sync(&snap).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => {
                if changed.is_err() {
                    // The actor ended: the program was deleted (or warden is stopping).
                    m.svc.clients.forget(m.handle.name());
                    crate::sync::lock(&m.svc.known).remove(m.handle.name());
                    return;
                }
            }
            ev = next_line(&mut m.lines) => m.on_console(ev).await,
            _ = tick(&mut m.ready_tick) => m.poll_ready().await,
            _ = tick(&mut m.live_tick) => m.check_liveness().await,
            _ = tick(&mut m.players_tick) => m.sample_players().await,
        }
    }
}

/// The readiness pattern and the bus subscription it is matched against.
struct LineWatch {
    re: Regex,
    rx: broadcast::Receiver<Arc<Event>>,
}

struct Monitor {
    svc: Arc<Inner>,
    handle: ProgramHandle,
    /// The pid, state and spec the current plan was made for; a snapshot that differs in
    /// none of them (such as our own health report) changes nothing.
    seen: Option<(Option<u32>, State, Arc<ProgramSpec>)>,
    game: Option<GameSpec>,
    pid: Option<u32>,
    started_at_ms: i64,
    lines: Option<LineWatch>,
    ready_tick: Option<Interval>,
    live_tick: Option<Interval>,
    players_tick: Option<Interval>,
    /// Health of the current process, as last reported.
    health: GameHealth,
    /// Readiness was already reported for the current process.
    ready_sent: bool,
    /// Since when the running server has had no players (for `idle`).
    empty_since: Option<Instant>,
}

impl Monitor {
    fn new(svc: Arc<Inner>, handle: ProgramHandle) -> Monitor {
        Monitor {
            svc,
            handle,
            seen: None,
            game: None,
            pid: None,
            started_at_ms: 0,
            lines: None,
            ready_tick: None,
            live_tick: None,
            players_tick: None,
            health: GameHealth::default(),
            ready_sent: false,
            empty_since: None,
        }
    }

    /// Makes the plan for the snapshot: what to watch in this state of this process.
    async fn sync(&mut self, snap: &Snapshot) {
        let st = &snap.status;
        if let Some((pid, state, spec)) = &self.seen
            && *pid == st.pid
            && *state == st.state
            && Arc::ptr_eq(spec, &snap.spec)
        {
            return;
        }
        let was_starting = self
            .seen
            .as_ref()
            .is_some_and(|(pid, state, _)| *pid == st.pid && *state == State::Starting);
        if was_starting
            && st.state == State::Running
            && let Some(at) = st.started_at_ms
        {
            // How long a start takes, told to players who wake the server.
            let secs = u64::try_from((now_ms() - at).max(0) / 1000).unwrap_or(0);
            self.svc.note_start(self.handle.name(), secs.max(1));
        }
        if st.state != State::Running {
            self.empty_since = None;
        }
        self.seen = Some((st.pid, st.state, snap.spec.clone()));
        self.game = snap.spec.game.clone();
        if self.pid != st.pid {
            self.pid = st.pid;
            self.health = GameHealth::default();
            self.ready_sent = false;
        }
        self.started_at_ms = st.started_at_ms.unwrap_or(0);
        self.lines = None;
        self.ready_tick = None;
        self.live_tick = None;
        self.players_tick = None;
        let (Some(game), Some(_)) = (self.game.clone(), st.pid) else {
            return;
        };
        match st.state {
            State::Starting if !self.ready_sent => match game.effective_readiness() {
                Some(Readiness::LogLine(pattern)) => self.watch_lines(&pattern).await,
                Some(Readiness::Query) => self.ready_tick = Some(every(READY_POLL, Duration::ZERO)),
                _ => {}
            },
            State::Running => {
                if let Some(l) = &game.liveness {
                    let t = Duration::from_secs(l.interval_seconds);
                    self.live_tick = Some(every(t, t));
                }
                if game.players_query().is_some() {
                    let t = Duration::from_secs(game.players_interval_seconds);
                    self.players_tick = Some(every(t, Duration::ZERO));
                }
            }
            _ => {}
        }
    }

    async fn watch_lines(&mut self, pattern: &str) {
        let re = match RegexBuilder::new(pattern).size_limit(1 << 20).build() {
            Ok(re) => re,
            Err(e) => {
                // Validation compiles the pattern too, so this means a spec from an older
                // version; the start period decides instead.
                tracing::warn!(program = %self.handle.name(), error = %e, "readiness pattern does not compile");
                return;
            }
        };
        // Subscribe before scanning the ring, so no line falls between the two.
        let rx = self.svc.bus.subscribe();
        self.lines = Some(LineWatch { re, rx });
        self.scan_ring().await;
    }

    /// Looks for the readiness line among the lines the current process already printed.
    async fn scan_ring(&mut self) {
        let Some(w) = &self.lines else { return };
        let hit = self.handle.console_tail(RING_SCAN).into_iter().find(|l| {
            l.stream != Stream::Stdin && l.ts >= self.started_at_ms && w.re.is_match(&l.text)
        });
        if let Some(line) = hit {
            self.report_ready(format!("console line {:?}", clip(&line.text)))
                .await;
        }
    }

    async fn on_console(&mut self, ev: Result<Arc<Event>, RecvError>) {
        match ev {
            Ok(ev) => {
                let Event::Console(line) = &*ev else { return };
                let matched = self.lines.as_ref().is_some_and(|w| {
                    line.program == self.handle.name()
                        && line.stream != Stream::Stdin
                        && w.re.is_match(&line.text)
                });
                if matched {
                    self.report_ready(format!("console line {:?}", clip(&line.text)))
                        .await;
                }
            }
            Err(RecvError::Lagged(_)) => self.scan_ring().await,
            Err(RecvError::Closed) => self.lines = None,
        }
    }

    async fn poll_ready(&mut self) {
        let Some(game) = self.game.clone() else {
            return;
        };
        let Some(q) = game.effective_query() else {
            return;
        };
        match self.svc.clients.query(self.handle.name(), &game, &q).await {
            Ok(_) => {
                let kind = serde_json::to_value(q.kind).unwrap_or_default();
                let kind = kind.as_str().unwrap_or("status");
                self.report_ready(format!("the {kind} query answered"))
                    .await;
            }
            Err(e) => {
                tracing::debug!(program = %self.handle.name(), error = %e, "not ready yet");
            }
        }
    }

    async fn report_ready(&mut self, why: String) {
        let Some(pid) = self.pid else { return };
        self.ready_sent = true;
        self.lines = None;
        self.ready_tick = None;
        if let Err(e) = self.handle.ready(pid, why).await {
            tracing::debug!(program = %self.handle.name(), error = %e, "cannot report readiness");
        }
    }

    async fn check_liveness(&mut self) {
        let (Some(game), Some(pid)) = (self.game.clone(), self.pid) else {
            return;
        };
        let Some(l) = game.liveness.clone() else {
            return;
        };
        let result = self
            .svc
            .clients
            .probe(self.handle.name(), &game, l.check)
            .await;
        let before = self.health.health;
        self.health.checked_ms = Some(now_ms());
        let reason = match result {
            Ok(()) => {
                self.health.failures = 0;
                self.health.message = None;
                self.health.health = HealthState::Healthy;
                "the liveness check passed".to_string()
            }
            Err(e) => {
                self.health.failures = self.health.failures.saturating_add(1);
                self.health.message = Some(e.to_string());
                self.health.health = if self.health.failures >= l.failures {
                    HealthState::Unhealthy
                } else {
                    HealthState::Failing
                };
                format!(
                    "{} failed liveness check(s) in a row: {e}",
                    self.health.failures
                )
            }
        };
        self.push_health(pid).await;
        let after = self.health.health;
        if before == after {
            return;
        }
        let name = self.handle.name().to_string();
        self.svc
            .health_changed(&name, before, after, self.health.failures, reason)
            .await;
        if after == HealthState::Unhealthy && l.restart {
            self.svc
                .record(
                    &name,
                    "liveness_restart",
                    format!(
                        "restarting '{name}': {} liveness checks failed in a row",
                        self.health.failures
                    ),
                )
                .await;
            let why = format!("{} liveness checks failed in a row", self.health.failures);
            if let Err(e) = self.handle.restart_unhealthy(pid, why).await {
                tracing::warn!(program = %name, error = %e, "liveness restart failed");
            }
        }
    }

    async fn sample_players(&mut self) {
        let (Some(game), Some(pid)) = (self.game.clone(), self.pid) else {
            return;
        };
        let Some(q) = game.players_query() else {
            return;
        };
        match self.svc.clients.query(self.handle.name(), &game, &q).await {
            Ok(Some(p)) => {
                self.svc
                    .note_query(self.handle.name(), p.server_name.clone(), p.max);
                self.consider_sleep(p.online).await;
                self.health.players = Some(p.online);
                self.health.max_players = p.max;
                self.svc.bus.publish(Event::Players(PlayersSample {
                    program: self.handle.name().to_string(),
                    ts: now_ms(),
                    online: p.online,
                    max: p.max,
                    names: p.names,
                }));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(program = %self.handle.name(), error = %e, "player sample failed");
                self.health.players = None;
                self.health.max_players = None;
            }
        }
        self.push_health(pid).await;
    }

    /// Puts a server with `idle` to sleep once it has had no players for `empty_seconds`,
    /// outside its `keep_awake` hours.
    async fn consider_sleep(&mut self, online: u32) {
        let snap = self.handle.snapshot();
        let Some(idle) = snap.spec.idle.as_ref() else {
            self.empty_since = None;
            return;
        };
        if online > 0 || snap.status.state != State::Running {
            self.empty_since = None;
            return;
        }
        let since = *self.empty_since.get_or_insert_with(Instant::now);
        let empty = since.elapsed();
        if empty < Duration::from_secs(idle.empty_seconds)
            || idle.keeps_awake_at(crate::clock::local_minute_of_day())
        {
            return;
        }
        self.empty_since = None;
        let why = format!(
            "no players for {}",
            crate::duration::format(Duration::from_secs(empty.as_secs().max(1)))
        );
        if let Err(e) = self.handle.sleep(why).await {
            tracing::warn!(program = %self.handle.name(), error = %e, "cannot put it to sleep");
        }
    }

    async fn push_health(&self, pid: u32) {
        if let Err(e) = self.handle.set_game_health(pid, self.health.clone()).await {
            tracing::debug!(program = %self.handle.name(), error = %e, "cannot report health");
        }
    }
}

/// An interval whose first tick comes after `first`; late ticks are delayed, not bunched.
fn every(period: Duration, first: Duration) -> Interval {
    let mut i = tokio::time::interval_at(Instant::now() + first, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn next_line(lines: &mut Option<LineWatch>) -> Result<Arc<Event>, RecvError> {
    match lines {
        Some(w) => w.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// At most [`QUOTE`] characters of a console line.
fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
