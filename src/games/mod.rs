//! The games service: warden's knowledge that a program is a game server. It talks to
//! servers (RCON, status queries, the Palworld REST API through `game-proto`), decides
//! readiness and liveness, samples players, broadcasts to players, and supplies the
//! game's graceful stop steps to the supervisor.
//!
//! Architecture invariant: no program actor ever waits on a game server. Checks and
//! samples run in one monitor task per program (`monitor.rs`), stop steps in a task the
//! actor spawns through [`StopHook`], warned stops in their own tasks; all of them talk to
//! programs only through `ProgramHandle`. Passwords live in the program spec and in the
//! protocol clients; they are never logged, never put in events, and the API masks them.

mod clients;
mod monitor;
pub mod stop;
pub mod wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use game_proto::ProtoError;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, Event, HealthChange, Notice, NoticeField, ProgramChangeKind, Severity};
use crate::config::GamesConfig;
use crate::program::HealthState;
use crate::program::game::{Broadcast, GameSpec};
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::stop_hook::{StopHook, StopRequest};
use crate::supervisor::wake_hook::SleepGuard;
use crate::supervisor::{ProgramHandle, Snapshot, SupError, Supervisor};
pub use clients::PlayersInfo;
pub use stop::{StopOptions, StopPlan};

/// Wait before a monitor that panicked runs again, doubled after each further panic up to
/// [`MONITOR_RETRY_MAX`] (a monitor that fails every time must not flood the log).
const MONITOR_RETRY: Duration = Duration::from_secs(1);
const MONITOR_RETRY_MAX: Duration = Duration::from_secs(60);
/// Longest wait for the service's tasks at shutdown.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Longest broadcast message.
pub const MAX_MESSAGE: usize = 1000;

/// Errors of game operations, phrased for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum GamesError {
    /// The program is unknown, or the supervisor refused.
    #[error(transparent)]
    Sup(#[from] SupError),
    /// The program lacks the game settings this needs.
    #[error("{0}")]
    NotConfigured(String),
    /// The request itself is invalid.
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(crate::program::FieldError),
    /// Players are online and the caller asked to act only when empty.
    #[error("{online} player(s) online; not acting because only_when_empty was requested")]
    NotEmpty {
        /// Players online.
        online: u32,
    },
    /// The game server failed, refused or did not answer.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// The games service. Cheap to clone.
#[derive(Clone)]
pub struct Games {
    inner: Arc<Inner>,
}

struct Monitored {
    /// The watched snapshot channel: a recreated program has a new one.
    snapshot: watch::Receiver<Arc<Snapshot>>,
    task: AbortHandle,
}

pub(crate) struct Inner {
    store: Store,
    bus: Bus,
    clients: clients::Clients,
    shutdown: CancellationToken,
    /// Set once by [`Games::start`]; warned stops and the API need it.
    sup: OnceLock<Supervisor>,
    /// Monitor tasks by program. A std mutex, never held across `.await`.
    monitors: Mutex<HashMap<String, Monitored>>,
    /// Pending warned stops by program; a new one replaces the old. Std mutex as above.
    pending: Mutex<HashMap<String, AbortHandle>>,
    /// What the last queries said of each program, to answer for it while it sleeps.
    /// Std mutex as above.
    known: Mutex<HashMap<String, Known>>,
    tasks: TaskTracker,
}

/// What warden last learnt of a game server (see [`Inner::known`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    /// Its name (A2S) or message of the day (Minecraft).
    pub name: Option<String>,
    /// Its player limit.
    pub max_players: Option<u32>,
    /// How long its last start took until it ran, in seconds.
    pub start_seconds: Option<u64>,
}

impl Games {
    /// The service; nothing runs until [`start`](Self::start).
    pub fn new(store: Store, bus: Bus, cfg: GamesConfig, shutdown: CancellationToken) -> Games {
        Games {
            inner: Arc::new(Inner {
                store,
                bus,
                clients: clients::Clients::new(cfg),
                shutdown,
                sup: OnceLock::new(),
                monitors: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                known: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// The hook through which program actors get game stop steps.
    pub fn stop_hook(&self) -> Arc<dyn StopHook> {
        Arc::new(self.clone())
    }

    /// The hook through which program actors guard their ports while asleep.
    pub fn sleep_guard(&self) -> Arc<dyn SleepGuard> {
        Arc::new(self.clone())
    }

    /// Starts monitoring every program (and every program created later) until shutdown.
    pub fn start(&self, sup: Supervisor) {
        let _ = self.inner.sup.set(sup.clone());
        let inner = self.inner.clone();
        let shutdown = self.inner.shutdown.clone();
        // Restarted if it ever panics: the monitors it keeps live in `inner`.
        let looping = move || {
            let inner = inner.clone();
            let sup = sup.clone();
            async move { games_loop(inner, sup).await }
        };
        self.inner
            .tasks
            .spawn(crate::health::supervise("games-loop", shutdown, looping));
    }

    /// Waits for the service's tasks to end (after the shutdown token was cancelled).
    /// A task in the middle of a check notices the token only when the check ends (each
    /// is bounded by the query/RCON timeouts); shutdown does not wait for that longer
    /// than [`STOP_WAIT`]: nothing of theirs needs flushing.
    pub async fn stopped(&self) {
        self.inner.tasks.close();
        let _ = tokio::time::timeout(STOP_WAIT, self.inner.tasks.wait()).await;
    }

    fn sup(&self) -> Result<&Supervisor, GamesError> {
        self.inner
            .sup
            .get()
            .ok_or(GamesError::Sup(SupError::ShuttingDown))
    }

    /// The program's handle and game section.
    fn game_of(&self, name: &str) -> Result<(ProgramHandle, GameSpec), GamesError> {
        let h = self.sup()?.get(name)?;
        let game = h.snapshot().spec.game.clone().ok_or_else(|| {
            GamesError::NotConfigured(format!(
                "program '{name}' has no game section; add one with at least a profile"
            ))
        })?;
        Ok((h, game))
    }

    /// Runs an RCON command and returns its whole reply.
    pub async fn rcon(&self, name: &str, command: &str) -> Result<String, GamesError> {
        if command.trim().is_empty() || command.contains(['\n', '\r', '\0']) {
            return Err(GamesError::Invalid(if command.trim().is_empty() {
                crate::program::FieldError::required("command")
            } else {
                crate::program::FieldError::control_chars("command")
            }));
        }
        let (_, game) = self.game_of(name)?;
        let r = game.rcon.as_ref().ok_or_else(|| {
            GamesError::NotConfigured(format!(
                "program '{name}' has no RCON settings; add game.rcon with port and password"
            ))
        })?;
        Ok(self.inner.clients.rcon(name, r).exec(command).await?)
    }

    /// Asks the server now who is online.
    pub async fn players(&self, name: &str) -> Result<PlayersInfo, GamesError> {
        let (_, game) = self.game_of(name)?;
        let not_configured = || {
            GamesError::NotConfigured(format!(
                "program '{name}' has no query that reports players; add game.query with kind slp, a2s or palworld"
            ))
        };
        let q = game.players_query().ok_or_else(not_configured)?;
        self.inner
            .clients
            .query(name, &game, &q)
            .await?
            .ok_or_else(not_configured)
    }

    /// Sends `message` to the players by the profile's method; returns the method used
    /// (`rcon`, `stdin` or `rest`).
    pub async fn broadcast(&self, name: &str, message: &str) -> Result<&'static str, GamesError> {
        if message.trim().is_empty()
            || message.len() > MAX_MESSAGE
            || message.contains(['\n', '\r', '\0'])
        {
            return Err(GamesError::Invalid(if message.len() > MAX_MESSAGE {
                crate::program::FieldError::too_long("message", MAX_MESSAGE)
            } else if message.contains(['\n', '\r', '\0']) {
                crate::program::FieldError::control_chars("message")
            } else {
                crate::program::FieldError::required("message")
            }));
        }
        let (h, game) = self.game_of(name)?;
        match game.effective_broadcast() {
            Some(Broadcast::Rcon(template)) => {
                let r = game.rcon.as_ref().ok_or_else(|| {
                    GamesError::NotConfigured(format!("program '{name}' has no game.rcon"))
                })?;
                let cmd = template.replace("{message}", message);
                self.inner.clients.rcon(name, r).exec(&cmd).await?;
                Ok("rcon")
            }
            Some(Broadcast::Stdin(template)) => {
                h.send_input(template.replace("{message}", message)).await?;
                Ok("stdin")
            }
            Some(Broadcast::RestAnnounce) => {
                let r = game.rest.as_ref().ok_or_else(|| {
                    GamesError::NotConfigured(format!("program '{name}' has no game.rest"))
                })?;
                self.inner.clients.rest(name, r)?.announce(message).await?;
                Ok("rest")
            }
            Some(Broadcast::Off) | None => Err(GamesError::NotConfigured(format!(
                "program '{name}' has no way to broadcast: its profile has none without RCON; set game.broadcast or game.rcon"
            ))),
        }
    }

    /// Stops or restarts a program the game-aware way: refused when `only_when_empty` and
    /// players are online; with warnings, players are told at each lead time and the stop
    /// begins at the longest one (in a task: this returns at once with the plan). A new
    /// warned stop of the same program replaces a pending one. Schedules reuse this.
    pub async fn stop_gracefully(
        &self,
        name: &str,
        opts: StopOptions,
    ) -> Result<StopPlan, GamesError> {
        let h = self.sup()?.get(name)?;
        let warn = stop::normalize_warnings(opts.warn);
        if warn.len() > stop::MAX_WARNINGS
            || warn.first().is_some_and(|w| *w > stop::MAX_WARN_SECONDS)
        {
            return Err(GamesError::Invalid(if warn.len() > stop::MAX_WARNINGS {
                crate::program::FieldError::too_many("warn", stop::MAX_WARNINGS)
            } else {
                crate::program::FieldError::too_large("warn", stop::MAX_WARN_SECONDS)
            }));
        }
        let active = h.snapshot().status.state.is_active();
        let mut players = None;
        if opts.only_when_empty && active {
            let online = self.players(name).await?.online;
            if online > 0 {
                return Err(GamesError::NotEmpty { online });
            }
            players = Some(online);
        }
        let action = if opts.restart { "restart" } else { "stop" };
        if warn.is_empty() || !active {
            if opts.restart {
                h.restart().await?;
            } else {
                h.stop().await?;
            }
            return Ok(StopPlan {
                program: name.to_string(),
                action,
                at_ms: now_ms(),
                warnings: Vec::new(),
                players,
            });
        }
        let (_, game) = self.game_of(name)?;
        if game.effective_broadcast().is_none() {
            return Err(GamesError::NotConfigured(format!(
                "program '{name}' cannot warn its players: it has no way to broadcast (set game.broadcast or game.rcon)"
            )));
        }
        let total = warn.first().copied().unwrap_or(0);
        let at_ms = now_ms() + i64::try_from(total * 1000).unwrap_or(i64::MAX / 2);
        self.inner
            .record(
                name,
                "warned_stop",
                format!("{action} of '{name}' in {total} s, warning players at {warn:?} s before"),
            )
            .await;
        let games = self.clone();
        let program = name.to_string();
        let restart = opts.restart;
        let shutdown = self.inner.shutdown.clone();
        let plan_warn = warn.clone();
        let task = self.inner.tasks.spawn(async move {
            let run = games.warned_stop(&program, restart, &warn);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = run => {}
            }
        });
        if let Some(old) =
            crate::sync::lock(&self.inner.pending).insert(name.to_string(), task.abort_handle())
        {
            old.abort();
        }
        Ok(StopPlan {
            program: name.to_string(),
            action,
            at_ms,
            warnings: plan_warn,
            players,
        })
    }

    async fn warned_stop(&self, name: &str, restart: bool, warn: &[u64]) {
        let start = tokio::time::Instant::now();
        for (lead, offset) in warn.iter().zip(stop::warning_offsets(warn)) {
            tokio::time::sleep_until(start + offset).await;
            if let Err(e) = self
                .broadcast(name, &stop::warning_text(restart, *lead))
                .await
            {
                // The stop goes ahead even if players could not be told.
                tracing::warn!(program = %name, error = %e, "stop warning failed");
            }
        }
        let total = warn.first().copied().unwrap_or(0);
        tokio::time::sleep_until(start + Duration::from_secs(total)).await;
        crate::sync::lock(&self.inner.pending).remove(name);
        let result = match self.sup().and_then(|s| Ok(s.get(name)?)) {
            Ok(h) if restart => h.restart().await.map_err(GamesError::from),
            Ok(h) => h.stop().await.map_err(GamesError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(program = %name, error = %e, "warned stop failed");
        }
    }
}

impl Inner {
    /// Keeps what a query said of a program, to answer for it while it sleeps.
    fn note_query(&self, program: &str, name: Option<String>, max: Option<u32>) {
        let mut known = crate::sync::lock(&self.known);
        let k = known.entry(program.to_string()).or_default();
        if let Some(n) = name.filter(|n| !n.trim().is_empty()) {
            k.name = Some(n);
        }
        if max.is_some() {
            k.max_players = max;
        }
    }

    /// Keeps how long a program's last start took, in seconds.
    fn note_start(&self, program: &str, seconds: u64) {
        crate::sync::lock(&self.known)
            .entry(program.to_string())
            .or_default()
            .start_seconds = Some(seconds);
    }

    /// Starts a monitor for the program unless one already follows it.
    fn ensure_monitor(self: &Arc<Self>, h: &ProgramHandle) {
        let mut monitors = crate::sync::lock(&self.monitors);
        let rx = h.watch();
        if let Some(m) = monitors.get(h.name())
            && m.snapshot.same_channel(&rx)
            && !m.task.is_finished()
        {
            return;
        }
        let task = self.tasks.spawn(monitored(self.clone(), h.clone()));
        if let Some(old) = monitors.insert(
            h.name().to_string(),
            Monitored {
                snapshot: rx,
                task: task.abort_handle(),
            },
        ) {
            old.task.abort();
        }
    }

    /// Appends a program event to the store.
    async fn record(&self, program: &str, kind: &str, message: String) {
        self.record_with(program, kind, message, serde_json::Value::Null)
            .await;
    }

    async fn record_with(
        &self,
        program: &str,
        kind: &str,
        message: String,
        data: serde_json::Value,
    ) {
        let ev = NewEvent::now(Some(program), kind, message, data);
        self.store.record_event(ev).await;
    }

    /// Publishes a health change; changes that matter to people (becoming unhealthy,
    /// recovering from failures) are also stored as events.
    async fn health_changed(
        &self,
        program: &str,
        from: HealthState,
        to: HealthState,
        failures: u32,
        reason: String,
    ) {
        let change = HealthChange {
            program: program.to_string(),
            ts: now_ms(),
            from,
            to,
            failures,
            reason,
        };
        let notable = to == HealthState::Unhealthy
            || (to == HealthState::Healthy
                && matches!(from, HealthState::Failing | HealthState::Unhealthy));
        if notable {
            let message = format!("{} -> {}: {}", from.as_str(), to.as_str(), change.reason);
            if to == HealthState::Unhealthy {
                tracing::warn!(program = %program, reason = %change.reason, "unhealthy");
            }
            let data = serde_json::to_value(&change).unwrap_or_default();
            self.record_with(program, "health", message, data).await;
            // Alerts route notices by kind, so health alerts need nothing in `alerts`.
            let (kind, severity, summary) = if to == HealthState::Unhealthy {
                (
                    "health_unhealthy",
                    Severity::Warning,
                    "health check failing",
                )
            } else {
                (
                    "health_recovered",
                    Severity::Info,
                    "health check passing again",
                )
            };
            self.bus.publish(Event::Notice(Notice {
                kind: kind.into(),
                severity,
                program: Some(program.to_string()),
                ts: change.ts,
                summary: summary.into(),
                fields: vec![
                    NoticeField {
                        name: "Check".into(),
                        value: change.reason.clone(),
                    },
                    NoticeField {
                        name: "Failures in a row".into(),
                        value: failures.to_string(),
                    },
                ],
            }));
        }
        self.bus.publish(Event::Health(change));
    }
}

impl StopHook for Games {
    fn graceful_stop(&self, req: StopRequest) -> Option<BoxFuture<'static, Result<(), String>>> {
        let game = req.spec.game.as_ref()?;
        let steps = game.effective_stop_steps();
        if steps.is_empty() {
            return None;
        }
        let name = req.spec.name.clone();
        let clients = stop::StepClients {
            rcon: game
                .rcon
                .as_ref()
                .map(|r| self.inner.clients.rcon(&name, r)),
            rest: game
                .rest
                .as_ref()
                .map(|r| self.inner.clients.rest(&name, r)),
            stdin: req.stdin,
        };
        Some(Box::pin(stop::run_steps(
            self.inner.store.clone(),
            name,
            steps,
            clients,
        )))
    }
}

impl SleepGuard for Games {
    fn guard(
        &self,
        spec: Arc<crate::program::ProgramSpec>,
        held: tokio::sync::watch::Receiver<u32>,
    ) -> Option<BoxFuture<'static, Result<String, String>>> {
        let idle = spec.idle.as_ref()?;
        let ports = idle.effective_listen(&spec);
        if ports.is_empty() {
            return None;
        }
        let known = crate::sync::lock(&self.inner.known)
            .get(&spec.name)
            .cloned()
            .unwrap_or_default();
        let plan = wake::Plan {
            ports,
            motd: idle
                .motd
                .clone()
                .unwrap_or_else(|| wake::DEFAULT_MOTD.to_string()),
            server_name: known.name.unwrap_or_else(|| spec.name.clone()),
            max_players: known.max_players.unwrap_or(20),
            wake_seconds: known
                .start_seconds
                .unwrap_or_else(|| spec.start_seconds.clamp(5, 300)),
        };
        Some(Box::pin(wake::guard(plan, held)))
    }
}

/// Runs a program's monitor until it ends. A monitor that panics (a bug, or an answer it
/// did not expect) is reported in `/health` and runs again a second later (then after 2,
/// 4… up to 60 s if it keeps failing), its plan made afresh from the program's snapshot:
/// nothing has to poll the monitors to notice one that died.
async fn monitored(svc: Arc<Inner>, handle: ProgramHandle) {
    let part = format!("game monitor {}", handle.name());
    let mut retry = MONITOR_RETRY;
    loop {
        let run = monitor::run(svc.clone(), handle.clone(), svc.shutdown.clone());
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(()) => return,
            Err(payload) => {
                let cause = format!("panicked: {}", crate::health::panic_text(payload));
                crate::health::failed(&part, &cause);
            }
        }
        tokio::select! {
            _ = svc.shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MONITOR_RETRY_MAX);
        crate::health::restarted(&part);
    }
}

/// Makes sure every program has its monitor.
fn monitor_all(inner: &Arc<Inner>, sup: &Supervisor) {
    for h in sup.list() {
        inner.ensure_monitor(&h);
    }
}

/// The loop that keeps one monitor per program: one for each program at the start, then
/// for each program created, redefined or changing state, until shutdown. It wakes only
/// for those events; nothing is polled while programs sit idle.
async fn games_loop(inner: Arc<Inner>, sup: Supervisor) {
    // Subscribed first: a program created while the monitors start is not missed.
    let mut bus = inner.bus.subscribe();
    monitor_all(&inner, &sup);
    loop {
        let ev = tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            ev = bus.recv() => ev,
        };
        match ev {
            Ok(ev) => {
                let program = match &*ev {
                    Event::State(change) => &change.program,
                    Event::Program(change) if change.change != ProgramChangeKind::Deleted => {
                        &change.program
                    }
                    _ => continue,
                };
                if let Ok(h) = sup.get(program) {
                    inner.ensure_monitor(&h);
                }
            }
            Err(RecvError::Lagged(_)) => monitor_all(&inner, &sup),
            Err(RecvError::Closed) => break,
        }
    }
}
