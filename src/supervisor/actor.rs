//! The program actor: one task per program that owns its child process, stdin, timer and
//! lifecycle. Every input (commands, the child's exit, the timer) arrives in one `select!`
//! and is handled in one place; the actor performs what [`Lifecycle`] decides.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::console::Console;
use super::deps::{self, Peers};
use super::lifecycle::{Action, Input, Lifecycle};
use super::limits;
use super::stop_hook::{StdinWriter, StopRequest};
use super::{Command, Ctx, Snapshot, SnapshotTx, SupError};
use crate::bus::{StateChange, Stream};
use crate::os;
use crate::program::{ExitInfo, ProgramSpec, State};
use crate::program::{GameHealth, ProgramStatus, StateReason};
use crate::store::now_ms;
use crate::store::programs::{IntentRow, RuntimeRow};

/// How the actor begins: what a previous warden left behind and meant.
#[derive(Default)]
pub struct Boot {
    /// A child of a previous warden still runs: take it over.
    pub adopt: Option<Adoption>,
    /// Children of a previous warden that were being stopped when it ended, or stray
    /// copies: their stop is finished before anything else.
    pub stale: Vec<os::MarkedChild>,
    /// Start when nothing is adopted (autostart, or a start the previous warden did not
    /// finish).
    pub start: bool,
    /// Why a start that is not an autostart happens (recorded as an event).
    pub resume: Option<String>,
    /// What the previous warden meant (its generations go on from here).
    pub intent: IntentRow,
}

impl Boot {
    /// A program with nothing left behind: started now if `autostart`.
    pub fn fresh(autostart: bool) -> Boot {
        Boot {
            start: autostart,
            ..Boot::default()
        }
    }
}

/// A running child of a previous warden to take over.
pub struct Adoption {
    /// Its identity.
    pub row: RuntimeRow,
    /// Its generation (0 for a child of a warden that did not mark its children).
    pub generation: u64,
}

/// The live process of a program.
struct Proc {
    pid: u32,
    /// The spawn generation it carries in its environment.
    generation: u64,
    spawned: Instant,
    kind: ProcKind,
    /// Sends lines to the stdin writer task (absent for adopted processes).
    stdin: Option<mpsc::Sender<String>>,
    /// Console reader tasks; awaited after exit so the last lines are captured.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

enum ProcKind {
    /// Our child: its exit status is known. Boxed: on Windows a `Child` is ~270 bytes.
    Owned(Box<tokio::process::Child>),
    /// Adopted after a restart of warden: not our child, only its end is observable.
    Adopted(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// What woke the actor up.
enum Wake {
    Command(Option<Command>),
    Exited(Result<Option<std::process::ExitStatus>, std::io::Error>),
    Timer,
    /// The stop hook's steps finished (or their task died).
    StopSteps(Result<Result<(), String>, tokio::task::JoinError>),
    /// The wait for `after`/`requires` ended.
    Deps(Result<Result<String, String>, tokio::task::JoinError>),
    /// The guard of the sleeping program's ports ended (someone connected, or it failed).
    Guard(Result<Result<String, String>, tokio::task::JoinError>),
}

/// A program's command queue. When the actor holding it ends — by a panic too — the queue
/// goes back to its slot, so the actor built to resume supervision reads the same queue
/// every [`super::ProgramHandle`] sends to.
pub(super) struct Mailbox {
    rx: Option<mpsc::Receiver<Command>>,
    slot: MailboxSlot,
}

/// Where a [`Mailbox`]'s queue waits between two actors.
pub(super) type MailboxSlot = Arc<std::sync::Mutex<Option<mpsc::Receiver<Command>>>>;

impl Mailbox {
    /// Takes the queue out of `slot` (None when an actor still holds it).
    pub(super) fn take(slot: &MailboxSlot) -> Option<Mailbox> {
        let rx = crate::sync::lock(slot).take()?;
        Some(Mailbox {
            rx: Some(rx),
            slot: slot.clone(),
        })
    }

    async fn recv(&mut self) -> Option<Command> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            *crate::sync::lock(&self.slot) = Some(rx);
        }
    }
}

/// Graceful stop steps running in their own task for process `pid`.
struct StopSteps {
    pid: u32,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

pub(super) struct Actor {
    spec: Arc<ProgramSpec>,
    ctx: Ctx,
    lc: Lifecycle,
    rx: Mailbox,
    snapshot: SnapshotTx,
    console: Console,
    proc: Option<Proc>,
    timer: Option<tokio::time::Instant>,
    last_exit: Option<ExitInfo>,
    since_ms: i64,
    started_at_ms: Option<i64>,
    /// Set by a shutdown command: reply here once stopped, then end the task.
    finishing: Option<oneshot::Sender<()>>,
    /// The task should end now.
    done: bool,
    /// Graceful stop steps in progress (from the stop hook).
    stop_steps: Option<StopSteps>,
    /// Game health of the current process, as last reported.
    game: Option<GameHealth>,
    /// Names this data directory in every child's marker (see `os::CHILD_MARKER_VAR`).
    instance: Arc<str>,
    /// What this actor means the program to do, as last recorded (kept in memory even
    /// when the store cannot take it).
    intent: IntentRow,
    /// Why the program failed (spawn error or giving up), until it is started again.
    reason: Option<StateReason>,
    /// The other programs, for the wait on `after`/`requires`.
    peers: Peers,
    /// The wait for dependencies while `waiting`.
    deps: Option<tokio::task::JoinHandle<Result<String, String>>>,
    /// The resource limits of the current process (its control group), if any.
    limiter: Option<os::Limiter>,
    /// The guard of the ports while `sleeping` (see `wake_hook`).
    guard: Option<GuardTask>,
    /// Holds that defer a wake (backups and restores of the program's files).
    holds: super::wake_hook::WakeHolds,
}

/// The guard task of a sleeping program's ports; aborted when dropped (the program was
/// deleted, or warden ends), so its sockets never outlive the actor.
struct GuardTask(tokio::task::JoinHandle<Result<String, String>>);

impl Drop for GuardTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Actor {
    pub(super) fn new(
        spec: Arc<ProgramSpec>,
        ctx: Ctx,
        rx: Mailbox,
        snapshot: SnapshotTx,
        console: Console,
        instance: Arc<str>,
        peers: Peers,
    ) -> Actor {
        let mut lc = Lifecycle::new(
            spec.restart.clone(),
            spec.start_seconds,
            Duration::from_secs(spec.stop.timeout_seconds),
        );
        lc.set_ready_gate(spec.waits_for_readiness());
        lc.set_deps_gate(has_deps(&spec));
        Actor {
            spec,
            ctx,
            lc,
            rx,
            snapshot,
            console,
            proc: None,
            timer: None,
            last_exit: None,
            since_ms: now_ms(),
            started_at_ms: None,
            finishing: None,
            done: false,
            stop_steps: None,
            game: None,
            instance,
            intent: IntentRow::default(),
            reason: None,
            peers,
            deps: None,
            limiter: None,
            guard: None,
            holds: super::wake_hook::WakeHolds::default(),
        }
    }

    /// The program's wake holds (shared with its handle).
    pub(super) fn set_wake_holds(&mut self, holds: super::wake_hook::WakeHolds) {
        self.holds = holds;
    }

    pub(super) async fn run(mut self, boot: Boot) {
        self.intent = boot.intent;
        self.publish();
        if !boot.stale.is_empty() {
            self.finish_stale(boot.stale).await;
        }
        if let Some(adoption) = boot.adopt {
            self.adopt(adoption).await;
        } else if boot.start {
            if let Some(why) = boot.resume {
                self.ctx.record(Some(&self.spec.name), "resumed", why).await;
            }
            self.apply(Input::Start).await;
        }
        self.publish();
        loop {
            let wake = tokio::select! {
                cmd = self.rx.recv() => Wake::Command(cmd),
                res = wait_proc(&mut self.proc) => Wake::Exited(res),
                _ = sleep_until(self.timer) => Wake::Timer,
                res = wait_steps(&mut self.stop_steps) => Wake::StopSteps(res),
                res = wait_deps(&mut self.deps) => Wake::Deps(res),
                res = wait_guard(&mut self.guard) => Wake::Guard(res),
            };
            match wake {
                Wake::Command(Some(cmd)) => self.command(cmd).await,
                // Every handle is gone: the supervisor itself is gone. Leave the child be.
                Wake::Command(None) => return,
                Wake::Exited(res) => self.exited(res).await,
                Wake::Timer => {
                    self.timer = None;
                    self.apply(Input::Timer).await;
                }
                Wake::StopSteps(res) => self.stop_steps_done(res).await,
                Wake::Deps(res) => {
                    self.deps = None;
                    let input = match res {
                        Ok(Ok(what)) => Input::DepsReady(what),
                        Ok(Err(why)) => Input::DepsFailed(why),
                        Err(e) => {
                            Input::DepsFailed(format!("the wait for dependencies failed: {e}"))
                        }
                    };
                    self.apply(input).await;
                }
                Wake::Guard(res) => {
                    self.guard = None;
                    self.guard_ended(res).await;
                }
            }
            self.publish();
            if self.finishing.is_some() && !self.lc.state().is_active() {
                if let Some(reply) = self.finishing.take() {
                    let _ = reply.send(());
                }
                return;
            }
            if self.done {
                return;
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Start(reply) => {
                self.save_intent(true, false).await;
                self.apply(Input::Start).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Stop(reply) => {
                self.save_intent(false, true).await;
                self.apply(Input::Stop).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Restart(reply) => {
                self.save_intent(true, true).await;
                self.apply(Input::Restart).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Kill(reply) => {
                self.save_intent(false, true).await;
                self.apply(Input::Kill).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Sleep(why, reply) => {
                if self.lc.state() == State::Running {
                    self.ctx
                        .record(
                            Some(&self.spec.name),
                            "sleeping",
                            format!("{why}; asleep until someone connects"),
                        )
                        .await;
                    self.save_intent(true, true).await;
                    self.apply(Input::Sleep(why)).await;
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
            Command::Input(line, reply) => {
                // Debug builds: `WARDEN_FAULT_PANIC="program NAME"` makes this actor panic
                // once, on a console line, to prove its supervision resumes.
                #[cfg(debug_assertions)]
                crate::health::injected_fault(&format!("program {}", self.spec.name));
                let r = self.send_stdin(line).await;
                let _ = reply.send(r);
            }
            Command::Update(spec, reply) => {
                self.lc.reconfigure(
                    spec.restart.clone(),
                    spec.start_seconds,
                    Duration::from_secs(spec.stop.timeout_seconds),
                );
                self.lc.set_ready_gate(spec.waits_for_readiness());
                self.lc.set_deps_gate(has_deps(&spec));
                self.spec = spec;
                if self.lc.state() == State::Sleeping {
                    // Guard the ports (and show the motd) of the new definition.
                    self.release_guard().await;
                    self.start_guard();
                }
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Ready { pid, reason, reply } => {
                if self.current_pid() == Some(pid) {
                    self.apply(Input::Ready(reason)).await;
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
            Command::Unhealthy { pid, reason, reply } => {
                if self.current_pid() == Some(pid) {
                    self.save_intent(true, true).await;
                    self.apply(Input::Unhealthy(reason)).await;
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
            Command::GameHealth { pid, health, reply } => {
                if self.current_pid() == Some(pid) && self.game.as_ref() != Some(&health) {
                    self.game = Some(health);
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown { stop, reply } => {
                // The ports are free when the program is deleted or warden ends.
                self.release_guard().await;
                if stop {
                    self.save_intent(false, true).await;
                }
                if stop || self.lc.state() == State::Backoff {
                    // Stopping from backoff just cancels the pending restart.
                    self.apply(Input::Stop).await;
                }
                if stop && self.lc.state().is_active() {
                    self.finishing = Some(reply);
                } else {
                    // Leave the child running: its runtime row stays, so the next warden
                    // adopts it instead of starting a second copy. Dropping `Proc` never
                    // kills the child (`kill_on_drop(false)`).
                    self.proc = None;
                    self.done = true;
                    let _ = reply.send(());
                }
            }
        }
    }

    async fn send_stdin(&mut self, line: String) -> Result<(), SupError> {
        let Some(p) = &self.proc else {
            return Err(SupError::NotRunning(self.spec.name.clone()));
        };
        let Some(tx) = &p.stdin else {
            return Err(SupError::Unavailable(format!(
                "program '{}' was adopted after a restart of warden; its console input is not connected",
                self.spec.name
            )));
        };
        tx.try_send(line.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SupError::Unavailable(format!(
                "program '{}' is not reading its input; try again later",
                self.spec.name
            )),
            mpsc::error::TrySendError::Closed(_) => {
                SupError::Unavailable(format!("program '{}' closed its input", self.spec.name))
            }
        })?;
        self.console.record(Stream::Stdin, line).await;
        Ok(())
    }

    /// Feeds the lifecycle and performs its actions; actions may produce further inputs
    /// (a spawn answers `Spawned` or `SpawnFailed`), handled in the same call.
    async fn apply(&mut self, first: Input) {
        let mut pending = vec![first];
        while let Some(input) = pending.pop() {
            let out = self.lc.on(input, Instant::now(), rand::random::<f64>());
            for t in out.transitions {
                self.since_ms = now_ms();
                match t.to {
                    State::Starting | State::Stopped => self.reason = None,
                    State::Fatal if self.reason.is_none() => {
                        self.reason = Some(StateReason {
                            code: "gave_up",
                            cause: None,
                            subject: None,
                            message: t.reason.clone(),
                        })
                    }
                    _ => {}
                }
                let last_lines = if t.to == State::Crashed {
                    self.console
                        .ring
                        .tail(20)
                        .into_iter()
                        .filter(|l| l.stream != Stream::Stdin)
                        .map(|l| l.text)
                        .collect()
                } else {
                    Vec::new()
                };
                let change = StateChange {
                    program: self.spec.name.clone(),
                    ts: self.since_ms,
                    from: t.from,
                    to: t.to,
                    pid: self.proc.as_ref().map(|p| p.pid),
                    reason: t.reason,
                    exit: t.exit,
                    last_lines,
                };
                self.ctx.record_state(change).await;
            }
            for action in out.actions {
                match action {
                    Action::Spawn => pending.push(match self.release_guard().await.spawn().await {
                        Ok(()) => Input::Spawned,
                        Err(why) => {
                            let message = why.message.clone();
                            self.reason = Some(why);
                            Input::SpawnFailed(message)
                        }
                    }),
                    Action::GracefulStop => self.graceful_stop().await,
                    Action::KillGroup => {
                        if let Some(p) = &self.proc
                            && let Err(e) = os::kill_group(p.pid)
                        {
                            tracing::warn!(program = %self.spec.name, error = %e, "kill failed");
                        }
                    }
                    Action::Arm(_, after) => {
                        self.timer = Some(tokio::time::Instant::now() + after);
                    }
                    Action::Disarm => self.timer = None,
                    Action::WaitDeps => {
                        if let Some(old) = self.deps.take() {
                            old.abort();
                        }
                        let wait = deps::wait_ready(self.peers.clone(), self.spec.clone());
                        self.deps = Some(tokio::spawn(wait));
                    }
                    Action::CancelDeps => {
                        if let Some(old) = self.deps.take() {
                            old.abort();
                        }
                    }
                }
            }
        }
        // Settled in a state nobody restarts from (gave up, crashed under `never`, a clean
        // exit under `on-failure`): a next warden must not start it either.
        // A sleeping program stays meant to run: a next warden starts it awake.
        let state = self.lc.state();
        if !state.is_active()
            && state != State::Backoff
            && state != State::Sleeping
            && self.intent.want_running
        {
            self.save_intent(false, false).await;
        }
        if state == State::Sleeping {
            self.start_guard();
        } else if self.guard.is_some() {
            self.release_guard().await;
        }
    }

    /// Guards the ports of the sleeping program (once).
    fn start_guard(&mut self) {
        if self.guard.is_some() {
            return;
        }
        let Some(hook) = &self.ctx.sleep_guard else {
            return;
        };
        if let Some(fut) = hook.guard(self.spec.clone(), self.holds.watch()) {
            self.guard = Some(GuardTask(tokio::spawn(fut)));
        }
    }

    /// Ends the guard and waits until its listeners are closed, so the game can bind its
    /// ports. Returns `self` for chaining before a spawn.
    async fn release_guard(&mut self) -> &mut Self {
        if let Some(mut task) = self.guard.take() {
            task.0.abort();
            // An aborted task's future (and its sockets) is dropped before this returns.
            let _ = (&mut task.0).await;
        }
        self
    }

    /// Someone connected to the sleeping program's port, or the guard failed: wake it
    /// either way (a server nobody can reach must not stay asleep).
    async fn guard_ended(&mut self, res: Result<Result<String, String>, tokio::task::JoinError>) {
        if self.lc.state() != State::Sleeping {
            return;
        }
        let who = match res {
            Ok(Ok(who)) => {
                self.ctx
                    .record(Some(&self.spec.name), "woken", format!("woken by {who}"))
                    .await;
                who
            }
            Ok(Err(why)) => {
                let msg =
                    format!("cannot guard its ports while asleep ({why}); starting it instead");
                tracing::warn!(program = %self.spec.name, "{msg}");
                self.ctx
                    .record(Some(&self.spec.name), "wake_guard_failed", msg.clone())
                    .await;
                msg
            }
            Err(e) => {
                let msg = format!("the guard of its ports ended ({e}); starting it instead");
                self.ctx
                    .record(Some(&self.spec.name), "wake_guard_failed", msg.clone())
                    .await;
                msg
            }
        };
        self.save_intent(true, false).await;
        self.apply(Input::Wake(who)).await;
    }

    /// Records what the actor means to do before it does it (awaited: committed before
    /// the spawn or the stop signal), so that a warden killed at any instant leaves enough
    /// for the next one to finish the job. `stopping` marks the current child's generation
    /// as being stopped. A store failure is logged; the intent stays in memory.
    async fn save_intent(&mut self, want_running: bool, stopping: bool) {
        let mut next = self.intent;
        next.want_running = want_running;
        if stopping && let Some(p) = &self.proc {
            next.stop_generation = next.stop_generation.max(p.generation);
        }
        if next == self.intent {
            return;
        }
        self.intent = next;
        if let Err(e) = self.ctx.store.set_intent(&self.spec.name, next).await {
            tracing::error!(program = %self.spec.name, error = %e, "cannot record the program's intent");
        }
    }

    /// Finishes the stop of children a previous warden was stopping when it ended (or
    /// stray copies): the graceful signal again, the stop timeout, then the whole group
    /// is killed. Bounded by the stop timeout plus 5 s per child.
    async fn finish_stale(&mut self, stale: Vec<os::MarkedChild>) {
        for child in stale {
            self.ctx
                .record(
                    Some(&self.spec.name),
                    "stale_child",
                    format!(
                        "pid {} (generation {}) was being stopped or replaced when warden ended; finishing its stop",
                        child.pid, child.generation
                    ),
                )
                .await;
            if let Err(e) = os::signal_group(child.pid, &self.spec.stop.signal) {
                tracing::warn!(program = %self.spec.name, error = %e, "stop signal failed");
            }
            let timeout = Duration::from_secs(self.spec.stop.timeout_seconds);
            let deadline = Instant::now() + timeout;
            let mut killed = false;
            while os::process_running(child.pid, child.start_time) {
                if !killed && Instant::now() >= deadline {
                    let _ = os::kill_group(child.pid);
                    killed = true;
                }
                if Instant::now() >= deadline + Duration::from_secs(5) {
                    tracing::warn!(program = %self.spec.name, pid = child.pid, "a stale child survived SIGKILL for 5 s");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Whatever the leader left in its group goes with it, as after any stop.
            let _ = os::kill_group(child.pid);
        }
    }

    async fn spawn(&mut self) -> Result<(), StateReason> {
        let spec = self.spec.clone();
        // The generation is committed before the spawn: the child carries it, so a next
        // warden tells this child (adopt it) from one that was being stopped (finish that).
        let generation = self.intent.generation + 1;
        self.intent.generation = generation;
        self.intent.want_running = true;
        if let Err(e) = self.ctx.store.set_intent(&spec.name, self.intent).await {
            tracing::error!(program = %spec.name, error = %e, "cannot record the program's intent");
        }
        let failed = |cause: &'static str, subject: &str, message: String| StateReason {
            code: "spawn_failed",
            cause: Some(cause),
            subject: Some(subject.to_string()),
            message,
        };
        // Who it runs as: never root by accident when warden is root.
        let run_as = os::resolve_run_as(spec.user.as_deref(), spec.group.as_deref())
            .map_err(|m| failed("run_as", spec.user.as_deref().unwrap_or(&spec.name), m))?;
        let as_root = match &run_as {
            Some(who) => who.is_root(),
            None => os::running_as_root(),
        };
        if as_root && !spec.allow_root && !self.ctx.cfg.allow_root_programs {
            return Err(failed(
                "runs_as_root",
                &spec.name,
                "warden runs as root and would start this program as root: set user (and group) to an unprivileged account, or allow_root = true if it must run as root".into(),
            ));
        }
        let mut cmd = tokio::process::Command::new(&spec.command);
        if let Some(who) = &run_as {
            os::run_as(&mut cmd, who);
            // The account's own HOME/USER unless the spec sets them.
            for (var, value) in [
                ("HOME", who.home.to_string_lossy().into_owned()),
                ("USER", who.name.clone()),
                ("LOGNAME", who.name.clone()),
            ] {
                if !spec.env.contains_key(var) && !value.is_empty() {
                    cmd.env(var, value);
                }
            }
        }
        cmd.args(&spec.args)
            .envs(&spec.env)
            // Set after the spec's own variables, so they can never be overridden.
            .env(os::PROGRAM_VAR, &spec.name)
            .env(
                os::CHILD_MARKER_VAR,
                format!("{}:{generation}", self.instance),
            )
            .stdin(Stdio::piped())
            .kill_on_drop(false);
        if let Some(cwd) = &spec.cwd {
            if !std::path::Path::new(cwd).is_dir() {
                return Err(failed(
                    "cwd_missing",
                    cwd,
                    format!("working directory {cwd:?} does not exist"),
                ));
            }
            cmd.current_dir(cwd);
        }
        os::prepare_command(&mut cmd);
        let output = os::Output::capture(&mut cmd).await.map_err(|e| {
            failed(
                "other",
                &spec.command,
                format!("cannot capture the output of {}: {e}", spec.command),
            )
        })?;
        let mut limiter = match &spec.limits {
            Some(l) => Some(
                os::limit_command(
                    &mut cmd,
                    &limits::scope(&self.ctx.logs_dir),
                    &spec.name,
                    &limits::settings(l),
                )
                .map_err(|e| {
                    failed(
                        "limits",
                        &spec.name,
                        format!("cannot apply its limits: {e}"),
                    )
                })?,
            ),
            None => None,
        };
        let spawned = cmd.spawn();
        // Closes warden's copies of the child's ends of its pipes (Windows hands them
        // over in the command): the child's exit must be the pipes' end of file.
        drop(cmd);
        if let Some(l) = &mut limiter {
            l.spawned();
        }
        let mut child = spawned.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => failed(
                "command_not_found",
                &spec.command,
                format!(
                    "command not found: {} (check the path or PATH)",
                    spec.command
                ),
            ),
            std::io::ErrorKind::PermissionDenied => failed(
                "not_executable",
                &spec.command,
                format!("command not executable: {} ({e})", spec.command),
            ),
            _ => failed(
                "other",
                &spec.command,
                format!("cannot run {}: {e}", spec.command),
            ),
        })?;
        let Some(pid) = child.id() else {
            return Err(failed(
                "other",
                &spec.command,
                "the process exited before it could be observed".into(),
            ));
        };
        if let Err(e) = os::attach_child(&child) {
            // On Windows the child is still suspended: it must not linger unseen.
            let _ = child.start_kill();
            return Err(failed(
                "other",
                &spec.command,
                format!("cannot start {}: {e}", spec.command),
            ));
        }
        if let Some(l) = &limiter
            && let Err(e) = os::limit_child(&child, l)
        {
            let _ = child.start_kill();
            return Err(failed(
                "limits",
                &spec.name,
                format!("cannot apply its limits: {e}"),
            ));
        }
        self.limiter = limiter;
        // Taken before the console readers exist, so every line of this process is stamped
        // at or after it: the readiness monitor's look back at the console ring keeps only
        // lines since the start, and a line read in the same instant must not fall before.
        let started_at = now_ms();
        let mut readers = Vec::with_capacity(2);
        let [out, err] = output.readers(&mut child);
        if let Some(out) = out {
            readers.push(self.console.attach(Stream::Stdout, out));
        }
        if let Some(err) = err {
            readers.push(self.console.attach(Stream::Stderr, err));
        }
        let stdin = child.stdin.take().map(|mut sink| {
            let (tx, mut rx) = mpsc::channel::<String>(64);
            tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    let data = format!("{line}\n");
                    if sink.write_all(data.as_bytes()).await.is_err() || sink.flush().await.is_err()
                    {
                        break;
                    }
                }
            });
            tx
        });
        self.proc = Some(Proc {
            pid,
            generation,
            spawned: Instant::now(),
            kind: ProcKind::Owned(Box::new(child)),
            stdin,
            readers,
        });
        self.started_at_ms = Some(started_at);
        // Record the identity durably before going on, so a crash of warden from here on
        // leads to adoption, never to a second copy.
        let row = RuntimeRow {
            pid,
            start_time: os::process_start_time(pid).unwrap_or(0),
            started_at,
        };
        if let Err(e) = self.ctx.store.set_runtime(&spec.name, row).await {
            tracing::error!(program = %spec.name, error = %e, "cannot record the child's pid");
        }
        Ok(())
    }

    fn current_pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    /// The graceful step: the stop hook's steps in their own task when the program has
    /// them, else the plain stdin line or signal.
    async fn graceful_stop(&mut self) {
        let Some(p) = &self.proc else { return };
        if let Some(hook) = &self.ctx.stop_hook {
            let req = StopRequest {
                spec: self.spec.clone(),
                stdin: p.stdin.as_ref().map(|tx| StdinWriter {
                    tx: tx.clone(),
                    console: self.console.clone(),
                }),
            };
            if let Some(steps) = hook.graceful_stop(req) {
                if let Some(old) = self.stop_steps.take() {
                    old.task.abort();
                }
                self.stop_steps = Some(StopSteps {
                    pid: p.pid,
                    task: tokio::spawn(steps),
                });
                return;
            }
        }
        self.plain_graceful_stop().await;
    }

    /// The stop hook's steps ended: on failure, fall back to the plain graceful step at
    /// once (the stop timeout keeps running either way).
    async fn stop_steps_done(&mut self, res: Result<Result<(), String>, tokio::task::JoinError>) {
        let Some(steps) = self.stop_steps.take() else {
            return;
        };
        let why = match res {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(e) => format!("the stop steps task failed: {e}"),
        };
        if self.lc.state() != State::Stopping || self.current_pid() != Some(steps.pid) {
            return;
        }
        let fallback = match &self.spec.stop.stdin {
            Some(_) => "the stop.stdin line".to_string(),
            None => self.spec.stop.signal.clone(),
        };
        tracing::warn!(program = %self.spec.name, error = %why, "game stop steps failed");
        self.ctx
            .record(
                Some(&self.spec.name),
                "stop_steps_failed",
                format!("graceful stop steps failed ({why}); falling back to {fallback}"),
            )
            .await;
        self.plain_graceful_stop().await;
    }

    async fn plain_graceful_stop(&mut self) {
        let Some(p) = &self.proc else { return };
        if let (Some(line), Some(tx)) = (&self.spec.stop.stdin, &p.stdin)
            && tx.try_send(line.clone()).is_ok()
        {
            self.console.record(Stream::Stdin, line.clone()).await;
            return;
        }
        if let Err(e) = os::signal_group(p.pid, &self.spec.stop.signal) {
            tracing::warn!(program = %self.spec.name, error = %e, "stop signal failed");
        }
    }

    async fn exited(&mut self, res: Result<Option<std::process::ExitStatus>, std::io::Error>) {
        let Some(proc) = self.proc.take() else { return };
        if let Some(steps) = self.stop_steps.take() {
            steps.task.abort();
        }
        self.game = None;
        let mut exit = match res {
            Ok(Some(status)) => os::describe_exit(status),
            Ok(None) => ExitInfo {
                code: None,
                signal: None,
                description: "exited (adopted process: exit status unknown)".into(),
            },
            Err(e) => ExitInfo {
                code: None,
                signal: None,
                description: format!("lost track of the process: {e}"),
            },
        };
        let limiter = self.limiter.take();
        if let (Some(l), Some(limits)) = (&limiter, &self.spec.limits)
            && l.out_of_memory()
        {
            limits::report_oom(&self.ctx, &self.spec.name, limits, &mut exit).await;
        }
        // Whatever the leader left behind in its group gets the rest of the stop timeout
        // when stopping (or a short grace after a crash), then is killed and reaped.
        let grace = match (self.lc.state(), self.timer) {
            (State::Stopping, Some(deadline)) => {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            }
            (State::Stopping, None) => Duration::ZERO,
            _ => {
                let _ = os::signal_group(proc.pid, "SIGTERM");
                Duration::from_secs(2)
            }
        };
        os::drain_group(proc.pid, grace).await;
        if let Some(l) = limiter {
            l.remove();
        }
        // The pipes are closed now; give the readers a moment to deliver the last lines.
        for r in proc.readers {
            let _ = tokio::time::timeout(Duration::from_millis(500), r).await;
        }
        let name = self.spec.name.clone();
        let store = self.ctx.store.clone();
        let pid = proc.pid;
        // Not awaited: a stale row is harmless (the start time will not match), and the
        // restart path must not wait for a disk sync. Only this pid's row is cleared: the
        // task may run after a restart recorded the next child.
        tokio::spawn(async move {
            if let Err(e) = store.clear_runtime_of(&name, pid).await {
                tracing::warn!(program = %name, error = %e, "cannot clear the runtime row");
            }
        });
        self.started_at_ms = None;
        self.last_exit = Some(exit.clone());
        let ran = proc.spawned.elapsed();
        self.apply(Input::Exited { exit, ran }).await;
    }

    async fn adopt(&mut self, adoption: Adoption) {
        let Adoption { row, generation } = adoption;
        let pid = row.pid;
        self.lc = Lifecycle::adopted(
            self.spec.restart.clone(),
            self.spec.start_seconds,
            Duration::from_secs(self.spec.stop.timeout_seconds),
        );
        self.lc.set_ready_gate(self.spec.waits_for_readiness());
        self.proc = Some(Proc {
            pid,
            generation,
            spawned: Instant::now(),
            kind: ProcKind::Adopted(Box::pin(os::wait_foreign(pid))),
            stdin: None,
            readers: Vec::new(),
        });
        self.started_at_ms = Some(row.started_at);
        // The database follows what was found (the pid may not have been recorded when the
        // previous warden ended).
        if let Err(e) = self.ctx.store.set_runtime(&self.spec.name, row).await {
            tracing::error!(program = %self.spec.name, error = %e, "cannot record the child's pid");
        }
        self.save_intent(true, false).await;
        self.since_ms = now_ms();
        self.ctx
            .record_state(StateChange {
                program: self.spec.name.clone(),
                ts: self.since_ms,
                from: State::Stopped,
                to: State::Running,
                pid: Some(pid),
                reason: format!(
                    "adopted pid {pid}, still running from before warden restarted (not started again)"
                ),
                exit: None,
                last_lines: Vec::new(),
            })
            .await;
    }

    fn publish(&self) {
        let status = ProgramStatus {
            state: self.lc.state(),
            pid: self.proc.as_ref().map(|p| p.pid),
            since_ms: self.since_ms,
            started_at_ms: self.started_at_ms,
            restarts: self.lc.restarts(),
            last_exit: self.last_exit.clone(),
            adopted: matches!(
                self.proc.as_ref().map(|p| &p.kind),
                Some(ProcKind::Adopted(_))
            ),
            game: self.game.clone(),
            reason: self.reason.clone(),
            limits_mode: self
                .limiter
                .as_ref()
                .and_then(|l| l.mode())
                .map(str::to_string),
        };
        self.snapshot.publish(Snapshot {
            spec: self.spec.clone(),
            status,
        });
    }
}

async fn wait_proc(
    proc: &mut Option<Proc>,
) -> Result<Option<std::process::ExitStatus>, std::io::Error> {
    match proc {
        None => std::future::pending().await,
        Some(p) => match &mut p.kind {
            ProcKind::Owned(child) => child.wait().await.map(Some),
            ProcKind::Adopted(fut) => {
                fut.as_mut().await;
                Ok(None)
            }
        },
    }
}

fn has_deps(spec: &ProgramSpec) -> bool {
    !spec.after.is_empty() || !spec.requires.is_empty()
}

async fn wait_deps(
    deps: &mut Option<tokio::task::JoinHandle<Result<String, String>>>,
) -> Result<Result<String, String>, tokio::task::JoinError> {
    match deps {
        None => std::future::pending().await,
        Some(t) => t.await,
    }
}

async fn wait_guard(
    guard: &mut Option<GuardTask>,
) -> Result<Result<String, String>, tokio::task::JoinError> {
    match guard {
        None => std::future::pending().await,
        Some(t) => (&mut t.0).await,
    }
}

async fn wait_steps(
    steps: &mut Option<StopSteps>,
) -> Result<Result<(), String>, tokio::task::JoinError> {
    match steps {
        None => std::future::pending().await,
        Some(s) => (&mut s.task).await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
