//! The supervisor: one actor task per program, and the registry of their handles.
//!
//! Architecture invariant: only a program's actor touches its child process. Everyone
//! else (API, CLI, schedules) holds a [`ProgramHandle`]: commands go in over a channel,
//! status comes out through a `watch` snapshot, so reading 50 statuses takes no locks
//! and no round-trips. The supervisor knows nothing about HTTP or JSON shapes of the API.

mod actor;
pub mod console;
mod deps;
pub mod lifecycle;
mod limits;
pub mod stop_hook;
pub mod wake_hook;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, ConsoleLine, Event, ProgramChange, ProgramChangeKind, StateChange};
use crate::config::SupervisorConfig;
use crate::os;
use crate::program::{FieldError, GameHealth, ProgramSpec, ProgramStatus, State};
use crate::store::definitions::Save;
use crate::store::events::NewEvent;
use crate::store::programs::RuntimeRow;
use crate::store::{Store, StoreError, now_ms};
use actor::{Actor, Adoption, Boot, Mailbox, MailboxSlot};
use console::{Console, LogSettings};

/// Commands queued per program before senders wait.
const COMMAND_QUEUE: usize = 32;

/// Errors of supervisor operations, phrased for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum SupError {
    /// No such program.
    #[error("no program named '{0}'")]
    NotFound(String),
    /// The request conflicts with the program's current state or an existing program.
    #[error("{0}")]
    Conflict(String),
    /// A program with this name exists already.
    #[error("a program named '{0}' already exists")]
    Exists(String),
    /// The program is running (or starting, stopping…) and the request needs it stopped.
    #[error("program '{name}' is {}; stop it first, or delete with force=true to stop it and then delete it", state.as_str())]
    Active {
        /// The program.
        name: String,
        /// Its state.
        state: State,
    },
    /// The program is not running, and the request needs it running.
    #[error("program '{0}' is not running")]
    NotRunning(String),
    /// The spec is invalid.
    #[error("the program definition is invalid")]
    Invalid(Vec<FieldError>),
    /// The operation cannot be done right now (not running, input not read…).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The program's actor is gone (warden is shutting down).
    #[error("warden is shutting down")]
    ShuttingDown,
}

/// What a handle sees of a program: its spec and status, replaced atomically.
#[derive(Debug)]
pub struct Snapshot {
    /// Current definition.
    pub spec: Arc<ProgramSpec>,
    /// Current status.
    pub status: ProgramStatus,
}

type Reply = oneshot::Sender<Result<(), SupError>>;

/// Messages to a program actor.
pub(crate) enum Command {
    Start(Reply),
    Stop(Reply),
    Restart(Reply),
    Kill(Reply),
    /// Nobody played for a while (why, in words): stop gracefully into `sleeping`.
    Sleep(String, Reply),
    Input(String, Reply),
    Update(Arc<ProgramSpec>, Reply),
    /// The readiness check of process `pid` passed.
    Ready {
        pid: u32,
        reason: String,
        reply: Reply,
    },
    /// Process `pid` failed its liveness checks: restart it as a failure.
    Unhealthy {
        pid: u32,
        reason: String,
        reply: Reply,
    },
    /// New game health of process `pid`.
    GameHealth {
        pid: u32,
        health: GameHealth,
        reply: Reply,
    },
    /// Stop the program (or leave it running) and end the actor.
    Shutdown {
        stop: bool,
        reply: oneshot::Sender<()>,
    },
}

/// Cloneable handle to one program's actor.
#[derive(Clone)]
pub struct ProgramHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    console: Console,
    holds: wake_hook::WakeHolds,
}

impl ProgramHandle {
    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the program asleep while the guard lives (a backup or restore of its files
    /// runs): a player connecting meanwhile is answered by the wake guard, and the
    /// program wakes when the last hold ends.
    pub fn hold_wake(&self) -> wake_hook::WakeHold {
        self.holds.hold()
    }

    /// The current spec and status.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Waits until the status satisfies `pred` or `timeout` passes; returns the last snapshot.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&ProgramStatus) -> bool,
    ) -> Arc<Snapshot> {
        let mut rx = self.snapshot.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| pred(&s.status))).await;
        self.snapshot()
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> Vec<ConsoleLine> {
        self.console.ring.tail(n)
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), SupError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SupError::ShuttingDown)?;
        rx.await.map_err(|_| SupError::ShuttingDown)?
    }

    /// Starts the program (no-op if it is already running).
    pub async fn start(&self) -> Result<(), SupError> {
        self.call(Command::Start).await
    }

    /// Stops it gracefully (no-op if it is not running).
    pub async fn stop(&self) -> Result<(), SupError> {
        self.call(Command::Stop).await
    }

    /// Stops, then starts it.
    pub async fn restart(&self) -> Result<(), SupError> {
        self.call(Command::Restart).await
    }

    /// Restarts process `pid` because it failed its liveness checks. Unlike
    /// [`ProgramHandle::restart`] this counts as a failure: it backs off like a crash and,
    /// after `max_failed_starts` within the window, gives up (`fatal`). No-op if `pid` is
    /// no longer the current process.
    pub async fn restart_unhealthy(&self, pid: u32, reason: String) -> Result<(), SupError> {
        self.call(|reply| Command::Unhealthy { pid, reason, reply })
            .await
    }

    /// Puts it to sleep (graceful stop into `sleeping`, its ports guarded until someone
    /// connects); `why` is recorded. No-op unless it is running.
    pub async fn sleep(&self, why: String) -> Result<(), SupError> {
        self.call(|r| Command::Sleep(why, r)).await
    }

    /// Kills its whole process group now.
    pub async fn kill(&self) -> Result<(), SupError> {
        self.call(Command::Kill).await
    }

    /// Writes a line to its stdin.
    pub async fn send_input(&self, line: String) -> Result<(), SupError> {
        self.call(|r| Command::Input(line, r)).await
    }

    /// A receiver of every new snapshot (spec and status); it reports an error once the
    /// program's actor has ended (the program was deleted or warden is shutting down).
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Reports that process `pid` passed its readiness check; ignored unless that process
    /// is still the program's and it is `starting`.
    pub async fn ready(&self, pid: u32, reason: String) -> Result<(), SupError> {
        self.call(|reply| Command::Ready { pid, reason, reply })
            .await
    }

    /// Sets the game health shown in the status of process `pid`; ignored for any other
    /// process (a late report about a process that has gone).
    pub async fn set_game_health(&self, pid: u32, health: GameHealth) -> Result<(), SupError> {
        self.call(|reply| Command::GameHealth { pid, health, reply })
            .await
    }

    async fn shutdown(&self, stop: bool) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Shutdown { stop, reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// Shared context of every actor.
#[derive(Clone)]
pub struct Ctx {
    /// The database.
    pub store: Store,
    /// The event bus.
    pub bus: Bus,
    /// Supervisor settings.
    pub cfg: Arc<SupervisorConfig>,
    /// Root of the per-program console log directories.
    pub logs_dir: PathBuf,
    /// Supplies richer graceful stops (the `games` service), if any.
    pub stop_hook: Option<Arc<dyn stop_hook::StopHook>>,
    /// Guards the ports of sleeping programs (the `games` service), if any.
    pub sleep_guard: Option<Arc<dyn wake_hook::SleepGuard>>,
}

impl Ctx {
    /// Makes a transition durable (queued to the store) and publishes it.
    pub async fn record_state(&self, change: StateChange) {
        let message = format!(
            "{} -> {}: {}",
            change.from.as_str(),
            change.to.as_str(),
            change.reason
        );
        let data = serde_json::to_value(&change).unwrap_or(serde_json::Value::Null);
        tracing::info!(program = %change.program, from = change.from.as_str(), to = change.to.as_str(), reason = %change.reason, "state");
        let ev = NewEvent {
            ts: change.ts,
            program: Some(change.program.clone()),
            kind: "state".into(),
            message,
            data,
        };
        self.store.record_event(ev).await;
        self.bus.publish(Event::State(change));
    }

    /// Records an event that is not a state change (program created, warden started…).
    pub async fn record(&self, program: Option<&str>, kind: &str, message: String) {
        let ev = NewEvent::now(program, kind, message, serde_json::Value::Null);
        self.store.record_event(ev).await;
    }
}

/// What [`Supervisor::apply`] did, by program name.
#[derive(Debug, Default)]
pub struct Applied {
    /// Programs created.
    pub created: Vec<String>,
    /// Programs whose definition changed.
    pub updated: Vec<String>,
    /// Programs already as described.
    pub unchanged: Vec<String>,
}

/// The registry of program actors.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Ctx,
    /// Handles by name. A std RwLock held only to clone out or insert a handle, never
    /// across `.await`; changes to the set are serialised by `mutate`. Shared with the
    /// actors, whose start waits for the programs in `after`/`requires`.
    programs: deps::Peers,
    /// Serialises create/update/delete so the store and the registry agree.
    mutate: tokio::sync::Mutex<()>,
    /// Every actor task, awaited at shutdown.
    tasks: TaskTracker,
    /// Names this data directory in the marker every child carries.
    instance: Arc<str>,
    /// Advanced by every snapshot an actor publishes and every program added or removed
    /// (see [`Supervisor::changes`]).
    changes: Arc<AtomicU64>,
}

/// A program's snapshot channel as its actor holds it: publishing also advances the
/// supervisor's change count, after the new snapshot is visible.
#[derive(Clone)]
pub(super) struct SnapshotTx {
    tx: watch::Sender<Arc<Snapshot>>,
    changes: Arc<AtomicU64>,
}

impl SnapshotTx {
    /// Publishes the program's new snapshot.
    fn publish(&self, snapshot: Snapshot) {
        self.tx.send_replace(Arc::new(snapshot));
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// The latest snapshot.
    fn borrow(&self) -> watch::Ref<'_, Arc<Snapshot>> {
        self.tx.borrow()
    }
}

impl Supervisor {
    /// Loads every program from the store and starts its actor: adopting a child still
    /// running from a previous warden (same pid and start time), else autostarting.
    pub async fn boot(ctx: Ctx) -> Result<Supervisor, SupError> {
        if let Err(e) = os::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a child subreaper; killed grandchildren may linger as zombies");
        }
        let sup = Supervisor {
            inner: Arc::new(Inner {
                ctx: ctx.clone(),
                programs: Arc::new(RwLock::new(BTreeMap::new())),
                mutate: tokio::sync::Mutex::new(()),
                tasks: TaskTracker::new(),
                instance: Arc::from(os::instance_id(
                    ctx.logs_dir.parent().unwrap_or(&ctx.logs_dir),
                )),
                changes: Arc::new(AtomicU64::new(0)),
            }),
        };
        let guard = sup.inner.mutate.lock().await;
        // Children of an earlier warden of this data directory, found by their marker
        // (None where the OS cannot list them: then the recorded pid alone decides).
        let marked = os::marked_children(&sup.inner.instance);
        for spec in ctx.store.program_specs().await? {
            let boot = plan_boot(&ctx, &spec, marked.as_deref()).await?;
            sup.spawn_actor(Arc::new(spec), boot);
        }
        drop(guard);
        Ok(sup)
    }

    fn spawn_actor(&self, spec: Arc<ProgramSpec>, boot: Boot) -> ProgramHandle {
        let ctx = &self.inner.ctx;
        let console = Console::start(
            &spec.name,
            ctx.cfg.console_ring_lines,
            LogSettings {
                dir: ctx.logs_dir.join(&spec.name),
                max_bytes: ctx.cfg.log_file_max_bytes,
                keep: ctx.cfg.log_files_keep,
            },
            ctx.bus.clone(),
        );
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mailbox: MailboxSlot = Arc::new(std::sync::Mutex::new(Some(rx)));
        let initial = Arc::new(Snapshot {
            spec: spec.clone(),
            status: ProgramStatus {
                state: State::Stopped,
                pid: None,
                since_ms: now_ms(),
                started_at_ms: None,
                restarts: 0,
                last_exit: None,
                adopted: false,
                game: None,
                reason: None,
                limits_mode: None,
            },
        });
        let (snap_tx, snap_rx) = watch::channel(initial);
        let handle = ProgramHandle {
            name: Arc::from(spec.name.as_str()),
            tx,
            snapshot: snap_rx,
            console: console.clone(),
            holds: wake_hook::WakeHolds::default(),
        };
        crate::sync::write(&self.inner.programs).insert(spec.name.clone(), handle.clone());
        self.inner.changes.fetch_add(1, Ordering::Release);
        let parts = ActorParts {
            ctx: ctx.clone(),
            mailbox,
            snapshot: SnapshotTx {
                tx: snap_tx,
                changes: self.inner.changes.clone(),
            },
            console,
            instance: self.inner.instance.clone(),
            peers: self.inner.programs.clone(),
            holds: handle.holds.clone(),
        };
        self.inner.tasks.spawn(run_actor(parts, boot));
        handle
    }

    /// Every program, by name.
    pub fn list(&self) -> Vec<ProgramHandle> {
        crate::sync::read(&self.inner.programs)
            .values()
            .cloned()
            .collect()
    }

    /// A count that every published snapshot and every program added or removed
    /// advances. A reader that saw the same count before reading [`snapshots`](Self::snapshots)
    /// has nothing new to read (the sampler re-reads them only when it moved).
    pub fn changes(&self) -> u64 {
        self.inner.changes.load(Ordering::Acquire)
    }

    /// Every program's latest snapshot, in name order: for readers of the state alone
    /// (the program list, the sampler's tick), cheaper than cloning every handle.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        crate::sync::read(&self.inner.programs)
            .values()
            .map(ProgramHandle::snapshot)
            .collect()
    }

    /// One program.
    pub fn get(&self, name: &str) -> Result<ProgramHandle, SupError> {
        crate::sync::read(&self.inner.programs)
            .get(name)
            .cloned()
            .ok_or_else(|| SupError::NotFound(name.to_string()))
    }

    /// Validates, stores and starts supervising a new program (started if `autostart`).
    pub async fn create(&self, spec: ProgramSpec) -> Result<ProgramHandle, SupError> {
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(SupError::Invalid(problems));
        }
        let _guard = self.inner.mutate.lock().await;
        self.check_order(std::slice::from_ref(&spec))?;
        self.inner
            .ctx
            .store
            .insert_program(spec.clone())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => SupError::Exists(spec.name.clone()),
                other => SupError::Store(other),
            })?;
        Ok(self.supervise_new(spec).await)
    }

    /// Starts the actor of a newly stored program (started if `autostart`) and says so.
    async fn supervise_new(&self, spec: ProgramSpec) -> ProgramHandle {
        let name = spec.name.clone();
        self.inner
            .ctx
            .record(
                Some(&name),
                "program_created",
                format!("program '{name}' created"),
            )
            .await;
        let autostart = spec.autostart;
        let handle = self.spawn_actor(Arc::new(spec), Boot::fresh(autostart));
        self.changed(name, ProgramChangeKind::Created);
        handle
    }

    /// Replaces a program's definition. A running process keeps running; the new
    /// command line applies at its next start.
    /// Passwords sent back masked (`********`) keep their stored values.
    pub async fn update(&self, mut spec: ProgramSpec) -> Result<(), SupError> {
        let _guard = self.inner.mutate.lock().await;
        let handle = self.get(&spec.name)?;
        spec.keep_secrets(&handle.snapshot().spec);
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(SupError::Invalid(problems));
        }
        self.check_order(std::slice::from_ref(&spec))?;
        self.inner.ctx.store.update_program(spec.clone()).await?;
        self.hand_over(&handle, spec).await
    }

    /// Gives a program's actor its newly stored definition and says so.
    async fn hand_over(&self, handle: &ProgramHandle, spec: ProgramSpec) -> Result<(), SupError> {
        let name = spec.name.clone();
        handle.call(|r| Command::Update(Arc::new(spec), r)).await?;
        self.inner
            .ctx
            .record(
                Some(&name),
                "program_updated",
                format!("program '{name}' updated"),
            )
            .await;
        self.changed(name, ProgramChangeKind::Updated);
        Ok(())
    }

    /// Deletes a program. A running one is refused unless `force`, which stops it first.
    pub async fn delete(&self, name: &str, force: bool) -> Result<(), SupError> {
        let _guard = self.inner.mutate.lock().await;
        let handle = self.get(name)?;
        let state = handle.snapshot().status.state;
        if state.is_active() && !force {
            return Err(SupError::Active {
                name: name.to_string(),
                state,
            });
        }
        handle.shutdown(true).await;
        self.inner.ctx.store.delete_program(name).await?;
        crate::sync::write(&self.inner.programs).remove(name);
        self.inner.changes.fetch_add(1, Ordering::Release);
        self.inner
            .ctx
            .record(
                Some(name),
                "program_deleted",
                format!("program '{name}' deleted"),
            )
            .await;
        self.changed(name.to_string(), ProgramChangeKind::Deleted);
        Ok(())
    }

    /// Creates and updates `specs` as one change, as `warden apply` asks: every spec is
    /// checked first (valid, names unique, command found on this machine, no waiting
    /// cycle with the stored programs), then all new and changed ones are stored in one
    /// transaction, under the lock that create, update and delete take, so no other
    /// change interleaves and a refusal or a store failure changes nothing. Only then
    /// are actors started or told. Passwords sent back masked keep their stored values.
    /// A problem's field names its place in the list (`programs[2].command`).
    pub async fn apply(&self, mut specs: Vec<ProgramSpec>) -> Result<Applied, SupError> {
        let _guard = self.inner.mutate.lock().await;
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, spec) in specs.iter_mut().enumerate() {
            if let Ok(h) = self.get(&spec.name) {
                spec.keep_secrets(&h.snapshot().spec);
            }
            if !seen.insert(spec.name.clone()) {
                problems.push(FieldError::duplicate(
                    format!("programs[{i}].name"),
                    &spec.name,
                ));
            }
            let invalid = spec.validate();
            let unresolved = invalid
                .is_empty()
                .then(|| spec.resolve_command().err())
                .flatten();
            let at = format!("programs[{i}].");
            problems.extend(
                invalid
                    .into_iter()
                    .chain(unresolved)
                    .map(|p| p.prefixed(&at)),
            );
        }
        if !problems.is_empty() {
            return Err(SupError::Invalid(problems));
        }
        self.check_order(&specs)?;
        let mut applied = Applied::default();
        let mut changes = Vec::new();
        for spec in specs {
            match self.get(&spec.name) {
                Ok(h) if *h.snapshot().spec == spec => applied.unchanged.push(spec.name),
                Ok(h) => changes.push((spec, Some(h))),
                Err(_) => changes.push((spec, None)),
            }
        }
        let rows: Vec<(Save, &ProgramSpec)> = changes
            .iter()
            .map(|(spec, h)| {
                let save = if h.is_some() {
                    Save::Existing
                } else {
                    Save::New
                };
                (save, spec)
            })
            .collect();
        self.inner.ctx.store.save_programs(&rows).await?;
        for (spec, handle) in changes {
            let name = spec.name.clone();
            match handle {
                Some(h) => {
                    self.hand_over(&h, spec).await?;
                    applied.updated.push(name);
                }
                None => {
                    self.supervise_new(spec).await;
                    applied.created.push(name);
                }
            }
        }
        Ok(applied)
    }

    /// Refuses (422, naming the cycle) definitions that would make programs wait for
    /// each other forever: `new` replaces the stored programs of the same names.
    pub fn check_order(&self, new: &[ProgramSpec]) -> Result<(), SupError> {
        let mut all: BTreeMap<String, Arc<ProgramSpec>> = self
            .list()
            .into_iter()
            .map(|h| (h.name().to_string(), h.snapshot().spec.clone()))
            .collect();
        for s in new {
            all.insert(s.name.clone(), Arc::new(s.clone()));
        }
        let first: Vec<&str> = new.iter().map(|s| s.name.as_str()).collect();
        match deps::find_cycle(all.values().map(|s| s.as_ref()), &first) {
            Some(cycle) => Err(SupError::Invalid(vec![deps::cycle_error(&cycle)])),
            None => Ok(()),
        }
    }

    /// Starts `name` and, first, every program it waits for (`after`, `requires`,
    /// transitively); each still waits for its own dependencies to be ready.
    pub async fn start_with_deps(&self, name: &str) -> Result<(), SupError> {
        let handle = self.get(name)?;
        for dep in deps::dependencies(&self.inner.programs, name) {
            if let Ok(h) = self.get(&dep) {
                h.start().await?;
            }
        }
        handle.start().await
    }

    /// Stops every program that waits for `name` (dependents first, in reverse start
    /// order), then `name` itself.
    pub async fn stop_with_deps(&self, name: &str) -> Result<(), SupError> {
        let handle = self.get(name)?;
        let specs: Vec<Arc<ProgramSpec>> = self
            .list()
            .iter()
            .map(|h| h.snapshot().spec.clone())
            .collect();
        let dependents = deps::dependents(&specs, name);
        for layer in deps::stop_layers(&specs) {
            let stops = layer
                .iter()
                .filter(|n| dependents.contains(*n))
                .filter_map(|n| self.get(n).ok())
                .map(|h| async move {
                    h.stop().await?;
                    let limit = Duration::from_secs(h.snapshot().spec.stop.timeout_seconds + 5);
                    h.wait_for(limit, |s| !s.state.is_active()).await;
                    Ok::<(), SupError>(())
                });
            for r in futures_util::future::join_all(stops).await {
                r?;
            }
        }
        handle.stop().await
    }

    fn changed(&self, program: String, change: ProgramChangeKind) {
        self.inner.ctx.bus.publish(Event::Program(ProgramChange {
            program,
            ts: now_ms(),
            change,
        }));
    }

    /// Ends every actor: stopping programs in parallel (`stop`) or leaving them running
    /// for the next warden to adopt. Returns once all actors ended or `deadline` passed.
    pub async fn shutdown(&self, stop: bool, deadline: Duration) {
        let handles = self.list();
        // Programs that wait for others stop first (reverse start order), each layer in
        // parallel; programs left running need no order.
        let specs: Vec<Arc<ProgramSpec>> =
            handles.iter().map(|h| h.snapshot().spec.clone()).collect();
        let layers = if stop {
            deps::stop_layers(&specs)
        } else {
            vec![handles.iter().map(|h| h.name().to_string()).collect()]
        };
        let all = async {
            for layer in layers {
                let ends = handles
                    .iter()
                    .filter(|h| layer.iter().any(|n| n == h.name()))
                    .map(|h| h.shutdown(stop));
                futures_util::future::join_all(ends).await;
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("some programs did not stop before the shutdown deadline; killing them");
            for h in &handles {
                let _ = h.kill().await;
            }
        }
        self.inner.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.inner.tasks.wait()).await;
    }
}

/// What a program's actor is built from, kept across a restart of the actor.
struct ActorParts {
    ctx: Ctx,
    mailbox: MailboxSlot,
    snapshot: SnapshotTx,
    console: Console,
    instance: Arc<str>,
    peers: deps::Peers,
    holds: wake_hook::WakeHolds,
}

/// Runs a program's actor as a watched part of warden. If the actor panics, a new one is
/// built on the same command queue, snapshot and console and takes the program over the
/// way a restarted warden would (`plan_boot`: the running child is adopted by its marker
/// or recorded pid, an interrupted start or stop is finished): a bug in one actor never
/// leaves a game unsupervised. Retries wait 1 s, doubling up to 60 s.
async fn run_actor(parts: ActorParts, boot: Boot) {
    let name = parts.snapshot.borrow().spec.name.clone();
    let part = format!("program {name}");
    let watched = crate::health::watch(part.clone());
    let ctx = &parts.ctx;
    let mut boot = Some(boot);
    let mut delay = Duration::from_secs(1);
    loop {
        let spec = parts.snapshot.borrow().spec.clone();
        let boot = match boot.take() {
            Some(b) => b,
            None => {
                let marked = os::marked_children(&parts.instance);
                match plan_boot(ctx, &spec, marked.as_deref()).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(program = %name, error = %e, retry_in_s = delay.as_secs(), "cannot resume supervision yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(60));
                        continue;
                    }
                }
            }
        };
        let Some(mailbox) = Mailbox::take(&parts.mailbox) else {
            tracing::error!(program = %name, "the program's command queue is gone; its supervision cannot resume");
            break;
        };
        let mut actor = Actor::new(
            spec,
            ctx.clone(),
            mailbox,
            parts.snapshot.clone(),
            parts.console.clone(),
            parts.instance.clone(),
            parts.peers.clone(),
        );
        actor.set_wake_holds(parts.holds.clone());
        let cause = match tokio::spawn(actor.run(boot)).await {
            Ok(()) => break,
            Err(e) if e.is_panic() => {
                format!("panicked: {}", crate::health::panic_text(e.into_panic()))
            }
            Err(_) => break,
        };
        crate::health::failed(&part, &cause);
        ctx.record(
            Some(&name),
            "supervision_interrupted",
            format!(
                "warden's supervision of this program failed ({cause}); resuming it in {} s",
                delay.as_secs()
            ),
        )
        .await;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
        crate::health::restarted(&part);
        ctx.record(
            Some(&name),
            "supervision_resumed",
            "warden supervises this program again".to_string(),
        )
        .await;
    }
    watched.finish();
}

/// Decides how a program's actor begins after a (possibly unclean) end of the previous
/// warden, from what runs and what was recorded:
/// - a marked child of a generation that was being stopped is stale: its stop is finished;
/// - the newest other marked child is adopted; any older one is a stray copy and stopped;
/// - else a recorded pid still running (a child of a warden that did not mark children,
///   or an OS without marker reading) is adopted;
/// - else the program starts if `autostart`, or if a start or restart was under way.
///
/// A zombie (exited, not yet reaped by its new parent) is never adopted.
async fn plan_boot(
    ctx: &Ctx,
    spec: &ProgramSpec,
    marked: Option<&[os::MarkedChild]>,
) -> Result<Boot, SupError> {
    let name = &spec.name;
    let mut intent = ctx.store.intent(name).await?.unwrap_or_default();
    let row = ctx.store.runtime(name).await?;
    let mut mine: Vec<os::MarkedChild> = marked
        .unwrap_or_default()
        .iter()
        .filter(|m| &m.program == name)
        .cloned()
        .collect();
    mine.sort_by_key(|m| m.generation);
    // Generations go on after every one seen, recorded or running.
    if let Some(last) = mine.last() {
        intent.generation = intent.generation.max(last.generation);
    }
    let (mut stale, mut live): (Vec<_>, Vec<_>) = mine
        .into_iter()
        .partition(|m| m.generation <= intent.stop_generation);
    let current = live.pop();
    stale.append(&mut live);
    let adopt = if let Some(c) = current {
        let started_at = match row {
            Some(r) if r.pid == c.pid && r.start_time == c.start_time => r.started_at,
            _ => now_ms(),
        };
        Some(Adoption {
            row: RuntimeRow {
                pid: c.pid,
                start_time: c.start_time,
                started_at,
            },
            generation: c.generation,
        })
    } else {
        match row {
            Some(r)
                if r.start_time != 0
                    && os::process_running(r.pid, r.start_time)
                    && !stale.iter().any(|m| m.pid == r.pid) =>
            {
                Some(Adoption {
                    row: r,
                    generation: 0,
                })
            }
            Some(r) => {
                if !stale.iter().any(|m| m.pid == r.pid) {
                    ctx.record(
                        Some(name),
                        "stale_pid",
                        format!(
                            "pid {} recorded before warden restarted is gone, has exited or now belongs to another process; not adopted",
                            r.pid
                        ),
                    )
                    .await;
                }
                ctx.store.clear_runtime(name).await?;
                None
            }
            None => None,
        }
    };
    let resume = (adopt.is_none() && intent.want_running && !spec.autostart).then(|| {
        "a start or restart was under way (or the program was running) when warden ended; starting it".to_string()
    });
    Ok(Boot {
        start: spec.autostart || intent.want_running,
        adopt,
        stale,
        resume,
        intent,
    })
}
