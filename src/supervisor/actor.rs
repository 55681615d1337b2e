//! The program actor: one task per program that owns its child process, stdin, timer and
//! lifecycle. Every input (commands, the child's exit, the timer) arrives in one `select!`
//! and is handled in one place; the actor performs what [`Lifecycle`] decides.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::console::Console;
use super::lifecycle::{Action, Input, Lifecycle};
use super::stop_hook::{StdinWriter, StopRequest};
use super::{Command, Ctx, GameHealth, ProgramStatus, Snapshot, SupError};
use crate::bus::{StateChange, Stream};
use crate::os;
use crate::program::{ExitInfo, ProgramSpec, State};
use crate::store::now_ms;
use crate::store::programs::RuntimeRow;

/// How the actor begins.
pub enum Boot {
    /// Not running; start now if `autostart`.
    Fresh {
        /// Start right away.
        autostart: bool,
    },
    /// A child of a previous warden still runs: take it over.
    Adopt(RuntimeRow),
}

/// The live process of a program.
struct Proc {
    pid: u32,
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
    rx: mpsc::Receiver<Command>,
    snapshot: watch::Sender<Arc<Snapshot>>,
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
}

impl Actor {
    pub(super) fn new(
        spec: Arc<ProgramSpec>,
        ctx: Ctx,
        rx: mpsc::Receiver<Command>,
        snapshot: watch::Sender<Arc<Snapshot>>,
        console: Console,
    ) -> Actor {
        let mut lc = Lifecycle::new(
            spec.restart.clone(),
            spec.start_seconds,
            Duration::from_secs(spec.stop.timeout_seconds),
        );
        lc.set_ready_gate(spec.waits_for_readiness());
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
        }
    }

    pub(super) async fn run(mut self, boot: Boot) {
        match boot {
            Boot::Adopt(row) => self.adopt(row).await,
            Boot::Fresh { autostart: true } => self.apply(Input::Start).await,
            Boot::Fresh { autostart: false } => {}
        }
        self.publish();
        loop {
            let wake = tokio::select! {
                cmd = self.rx.recv() => Wake::Command(cmd),
                res = wait_proc(&mut self.proc) => Wake::Exited(res),
                _ = sleep_until(self.timer) => Wake::Timer,
                res = wait_steps(&mut self.stop_steps) => Wake::StopSteps(res),
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
                self.apply(Input::Start).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Stop(reply) => {
                self.apply(Input::Stop).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Restart(reply) => {
                self.apply(Input::Restart).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Kill(reply) => {
                self.apply(Input::Kill).await;
                self.publish();
                let _ = reply.send(Ok(()));
            }
            Command::Input(line, reply) => {
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
                self.spec = spec;
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
            return Err(SupError::Unavailable(format!(
                "program '{}' is not running",
                self.spec.name
            )));
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
                    Action::Spawn => pending.push(match self.spawn().await {
                        Ok(()) => Input::Spawned,
                        Err(why) => Input::SpawnFailed(why),
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
                }
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let spec = self.spec.clone();
        let mut cmd = tokio::process::Command::new(&spec.command);
        cmd.args(&spec.args)
            .envs(&spec.env)
            .env("WARDEN_PROGRAM", &spec.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        if let Some(cwd) = &spec.cwd {
            if !std::path::Path::new(cwd).is_dir() {
                return Err(format!("working directory {cwd:?} does not exist"));
            }
            cmd.current_dir(cwd);
        }
        os::prepare_command(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "command {:?} not found (check the path or PATH)",
                    spec.command
                )
            } else {
                format!("cannot run {:?}: {e}", spec.command)
            }
        })?;
        let Some(pid) = child.id() else {
            return Err("the process exited before it could be observed".into());
        };
        if let Err(e) = os::attach_child(&child) {
            // On Windows the child is still suspended: it must not linger unseen.
            let _ = child.start_kill();
            return Err(format!("cannot start {:?}: {e}", spec.command));
        }
        let mut readers = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            readers.push(self.console.attach(Stream::Stdout, out));
        }
        if let Some(err) = child.stderr.take() {
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
        let started_at = now_ms();
        self.proc = Some(Proc {
            pid,
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
        let exit = match res {
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

    async fn adopt(&mut self, row: RuntimeRow) {
        let pid = row.pid;
        self.lc = Lifecycle::adopted(
            self.spec.restart.clone(),
            self.spec.start_seconds,
            Duration::from_secs(self.spec.stop.timeout_seconds),
        );
        self.lc.set_ready_gate(self.spec.waits_for_readiness());
        self.proc = Some(Proc {
            pid,
            spawned: Instant::now(),
            kind: ProcKind::Adopted(Box::pin(os::wait_foreign(pid))),
            stdin: None,
            readers: Vec::new(),
        });
        self.started_at_ms = Some(row.started_at);
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
        };
        self.snapshot.send_replace(Arc::new(Snapshot {
            spec: self.spec.clone(),
            status,
        }));
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
