//! The job actor: one task per job that owns its current run, the one trigger allowed to
//! wait, and any run left over from before a restart of warden. Every input (triggers,
//! cancel, the run's end, the leftover's end, lease renewal) arrives in one `select!`.
//!
//! "No job ever runs twice at once" is enforced three times: here (one actor per job,
//! overlap policy), in the store (a lease row, taken atomically, renewed while a run is in
//! progress) and at the process level (steps recorded with pid + start time; a leftover
//! step still alive after a restart keeps the job busy until it is gone).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::error::SchedError;
use super::policy::{Decision, decide};
use super::run::{self, RunOutcome, RunState};
use super::shared::Shared;
use super::spec::JobSpec;
use crate::bus::JobEventKind;
use crate::os;
use crate::schedule::record::{RunStatus, StepStatus};
use crate::store::now_ms;
use crate::store::schedule::LiveStep;

/// Commands queued per job before senders wait.
const COMMAND_QUEUE: usize = 32;

/// The end of a run, as seen by whoever triggered it.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Run id.
    pub run_id: i64,
    /// Final state.
    pub state: RunState,
    /// What went wrong.
    pub error: Option<String>,
}

/// Resolves to `Some` when the triggered run has ended.
pub type Done = watch::Receiver<Option<RunEnd>>;

/// What a trigger did.
pub enum Triggered {
    /// A run started.
    Started {
        /// Its id.
        run_id: i64,
        /// Its end.
        done: Done,
    },
    /// It waits for the current run to end (policy `queue`).
    Queued {
        /// The end of the run it will become.
        done: Done,
    },
    /// The current run is being cancelled; this one starts after it (policy `replace`).
    Replacing {
        /// The run being replaced.
        replaced: i64,
        /// The end of the run it will become.
        done: Done,
    },
    /// Dropped; recorded as a skipped run.
    Skipped {
        /// The skipped run's id.
        run_id: i64,
        /// Why.
        reason: String,
    },
}

/// A run in progress, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunningInfo {
    /// Run id.
    pub run_id: i64,
    /// Who or what triggered it.
    pub source: String,
    /// Unix ms.
    pub started_at: i64,
    /// True for a run left over from before warden restarted: its steps' processes are
    /// watched until they are gone, and the job does not start again before that.
    pub orphaned: bool,
    /// Processes of a leftover run still alive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// A cancel was requested.
    pub cancelling: bool,
}

/// What a handle sees of a job.
#[derive(Debug)]
pub struct JobSnapshot {
    /// Current definition.
    pub spec: Arc<JobSpec>,
    /// The run in progress.
    pub running: Option<RunningInfo>,
    /// The source of the trigger waiting for the current run to end.
    pub waiting: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, SchedError>>;

enum Cmd {
    Trigger {
        source: String,
        reply: Reply<Triggered>,
    },
    Cancel {
        reply: Reply<i64>,
    },
    Update {
        spec: Arc<JobSpec>,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        stop: bool,
        reply: oneshot::Sender<()>,
    },
}

/// Cloneable handle to one job's actor.
#[derive(Clone)]
pub struct JobHandle {
    tx: mpsc::Sender<Cmd>,
    snapshot: watch::Receiver<Arc<JobSnapshot>>,
}

impl JobHandle {
    /// The current spec and run.
    pub fn snapshot(&self) -> Arc<JobSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// Triggers a run; `source` is `manual:<user>` or `schedule:<name>`.
    pub async fn trigger(&self, source: String) -> Result<Triggered, SchedError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Trigger { source, reply: tx })
            .await
            .map_err(|_| SchedError::ShuttingDown)?;
        rx.await.map_err(|_| SchedError::ShuttingDown)?
    }

    /// Cancels the run in progress gracefully (and drops a waiting trigger); answers the
    /// run's id.
    pub async fn cancel(&self) -> Result<i64, SchedError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Cancel { reply: tx })
            .await
            .map_err(|_| SchedError::ShuttingDown)?;
        rx.await.map_err(|_| SchedError::ShuttingDown)?
    }

    /// Replaces the definition; a run in progress keeps the one it started with.
    pub async fn update(&self, spec: Arc<JobSpec>) -> Result<(), SchedError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Update { spec, reply: tx })
            .await
            .map_err(|_| SchedError::ShuttingDown)?;
        rx.await.map_err(|_| SchedError::ShuttingDown)
    }

    /// Ends the actor: cancelling the run in progress and waiting for it (`stop`), or
    /// leaving its processes running for the next warden to find.
    pub async fn shutdown(&self, stop: bool) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Cmd::Shutdown { stop, reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// A run of ours in progress.
struct Current {
    run_id: i64,
    source: String,
    started_at: i64,
    cancel: CancellationToken,
    task: JoinHandle<RunOutcome>,
    done: watch::Sender<Option<RunEnd>>,
    /// Set when a cancel came from the lease being lost, to say so in the record.
    lease_lost: bool,
}

/// A run left over from before a restart of warden, with steps still alive.
struct Orphan {
    run_id: i64,
    started_at: i64,
    steps: Vec<LiveStep>,
    /// The watcher of its processes; ends when all are gone.
    gone: JoinHandle<()>,
    cancelling: bool,
}

/// A trigger waiting for the current run to end.
struct Waiting {
    source: String,
    done: watch::Sender<Option<RunEnd>>,
}

struct Actor {
    sh: Arc<Shared>,
    spec: Arc<JobSpec>,
    rx: mpsc::Receiver<Cmd>,
    snapshot: watch::Sender<Arc<JobSnapshot>>,
    current: Option<Current>,
    orphan: Option<Orphan>,
    waiting: Option<Waiting>,
    /// True while this warden holds the job's lease.
    leased: bool,
    /// Set by a stopping shutdown: reply once the run has ended, then end the task.
    finishing: Option<oneshot::Sender<()>>,
}

/// Starts the actor of a job. It first looks for runs left over from before a restart.
pub(crate) fn spawn(sh: Arc<Shared>, spec: Arc<JobSpec>) -> JobHandle {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(JobSnapshot {
        spec: spec.clone(),
        running: None,
        waiting: None,
    }));
    let actor = Actor {
        sh: sh.clone(),
        spec,
        rx,
        snapshot: snap_tx,
        current: None,
        orphan: None,
        waiting: None,
        leased: false,
        finishing: None,
    };
    sh.tasks.spawn(actor.run());
    JobHandle {
        tx,
        snapshot: snap_rx,
    }
}

enum Wake {
    Cmd(Option<Cmd>),
    RunEnded(Result<RunOutcome, tokio::task::JoinError>),
    OrphanGone,
    Renew,
}

impl Actor {
    async fn run(mut self) {
        self.recover().await;
        self.publish();
        let mut renew = tokio::time::interval(self.sh.cfg.lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = tokio::select! {
                cmd = self.rx.recv() => Wake::Cmd(cmd),
                res = wait_current(&mut self.current) => Wake::RunEnded(res),
                _ = wait_orphan(&mut self.orphan) => Wake::OrphanGone,
                _ = renew.tick(), if self.leased => Wake::Renew,
            };
            match wake {
                Wake::Cmd(Some(cmd)) => {
                    if self.command(cmd).await {
                        return;
                    }
                }
                // Every handle is gone: the scheduler itself is gone.
                Wake::Cmd(None) => return,
                Wake::RunEnded(res) => self.run_ended(res).await,
                Wake::OrphanGone => self.orphan_gone().await,
                Wake::Renew => self.renew().await,
            }
            self.publish();
            if self.finishing.is_some() && self.current.is_none() {
                if let Some(reply) = self.finishing.take() {
                    let _ = reply.send(());
                }
                return;
            }
        }
    }

    /// Handles a command; true when the actor must end now.
    async fn command(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Trigger { source, reply } => {
                let r = self.trigger(source).await;
                self.publish();
                let _ = reply.send(r);
            }
            Cmd::Cancel { reply } => {
                let r = self.cancel();
                self.publish();
                let _ = reply.send(r);
            }
            Cmd::Update { spec, reply } => {
                self.spec = spec;
                self.publish();
                let _ = reply.send(());
            }
            Cmd::Shutdown { stop, reply } => {
                self.waiting = None;
                if stop && self.orphan.is_some() {
                    // Stop a leftover run's processes too (its stop runs in a tracked task).
                    let _ = self.cancel();
                }
                match &self.current {
                    Some(c) if stop => {
                        c.cancel.cancel();
                        self.finishing = Some(reply);
                    }
                    // Leave the steps running: their rows stay `running`, so the next
                    // warden watches them instead of starting the job again.
                    _ => {
                        let _ = reply.send(());
                        return true;
                    }
                }
            }
        }
        false
    }

    async fn trigger(&mut self, source: String) -> Result<Triggered, SchedError> {
        if self.finishing.is_some() {
            return Err(SchedError::ShuttingDown);
        }
        let busy = self.current.is_some() || self.orphan.is_some();
        match decide(self.spec.overlap, busy, self.waiting.is_some()) {
            Decision::Start => {
                let (tx, rx) = watch::channel(None);
                match self.start(source, tx).await? {
                    Ok(run_id) => Ok(Triggered::Started { run_id, done: rx }),
                    Err((run_id, reason)) => Ok(Triggered::Skipped { run_id, reason }),
                }
            }
            Decision::Skip(why) => {
                let (run_id, reason) = self.skip(&source, why.to_string()).await?;
                Ok(Triggered::Skipped { run_id, reason })
            }
            Decision::Queue => {
                let (tx, rx) = watch::channel(None);
                self.waiting = Some(Waiting { source, done: tx });
                Ok(Triggered::Queued { done: rx })
            }
            Decision::Replace => {
                let replaced = self.cancel()?;
                let (tx, rx) = watch::channel(None);
                self.waiting = Some(Waiting { source, done: tx });
                Ok(Triggered::Replacing { replaced, done: rx })
            }
        }
    }

    /// Starts a run now, or records why it cannot start (lease held elsewhere, a step of
    /// an earlier run still alive). Outer error: the store failed.
    async fn start(
        &mut self,
        source: String,
        done: watch::Sender<Option<RunEnd>>,
    ) -> Result<Result<i64, (i64, String)>, SchedError> {
        let sh = self.sh.clone();
        let job = self.spec.name.clone();
        // Process level: a step recorded as running that is still alive (from a warden
        // that died) keeps the job busy, whatever the lease says.
        self.recover().await;
        if let Some(o) = &self.orphan {
            let reason = format!(
                "run {} from before warden restarted still has running processes (pid {})",
                o.run_id,
                pid_list(&o.steps)
            );
            let skipped = self.skip(&source, reason).await?;
            let _ = done.send(Some(RunEnd {
                run_id: skipped.0,
                state: RunState::Skipped,
                error: Some(skipped.1.clone()),
            }));
            return Ok(Err(skipped));
        }
        // Store level: the lease.
        if let Err(held) = sh.acquire_lease(&job).await? {
            let until = chrono::DateTime::from_timestamp_millis(held.expires_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            let reason = format!(
                "another warden instance ({}) holds the job's lease until {until}",
                held.owner
            );
            let skipped = self.skip(&source, reason).await?;
            let _ = done.send(Some(RunEnd {
                run_id: skipped.0,
                state: RunState::Skipped,
                error: Some(skipped.1.clone()),
            }));
            return Ok(Err(skipped));
        }
        self.leased = true;
        let prediction = sh.prediction(&job).await;
        let run_id = match sh
            .store
            .insert_job_run(
                &job,
                source.clone(),
                RunStatus::Running,
                None,
                prediction.map(|p| (p.p50_ms, p.p90_ms)),
                Some(sh.owner.id.clone()),
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.release().await;
                return Err(e.into());
            }
        };
        if let Err(e) = sh.store.set_lease_run(&job, &sh.owner.id, run_id).await {
            tracing::warn!(job = %job, error = %e, "cannot note the run on the lease");
        }
        let expect = prediction
            .map(|p| {
                format!(
                    "; expected ~{} (p90 {})",
                    ms_text(p.p50_ms),
                    ms_text(p.p90_ms)
                )
            })
            .unwrap_or_default();
        sh.job_event(
            &job,
            run_id,
            JobEventKind::Started,
            format!("run {run_id} of job '{job}' started ({source}){expect}"),
            None,
            prediction.map(|p| p.p90_ms),
        )
        .await;
        // Not a child of the shutdown token: at shutdown the actor decides whether runs
        // are cancelled (on_shutdown = "stop") or left running for the next warden.
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run::execute(
            sh.clone(),
            self.spec.clone(),
            run_id,
            cancel.clone(),
            prediction,
        ));
        self.current = Some(Current {
            run_id,
            source,
            started_at: now_ms(),
            cancel,
            task,
            done,
            lease_lost: false,
        });
        Ok(Ok(run_id))
    }

    /// Records a skipped trigger as a run and an event; answers its id and the reason.
    async fn skip(&self, source: &str, reason: String) -> Result<(i64, String), SchedError> {
        let job = &self.spec.name;
        let run_id = self
            .sh
            .store
            .insert_job_run(
                job,
                source.to_string(),
                RunStatus::Skipped,
                Some(reason.clone()),
                None,
                None,
            )
            .await?;
        self.sh
            .job_event(
                job,
                run_id,
                JobEventKind::Skipped,
                format!("job '{job}' was not started ({source}): {reason}"),
                None,
                None,
            )
            .await;
        Ok((run_id, reason))
    }

    fn cancel(&mut self) -> Result<i64, SchedError> {
        self.waiting = None;
        if let Some(c) = &self.current {
            c.cancel.cancel();
            return Ok(c.run_id);
        }
        if let Some(o) = &mut self.orphan {
            if !o.cancelling {
                o.cancelling = true;
                let steps = o.steps.clone();
                let signal = self.spec.stop_signal.clone();
                let grace = Duration::from_secs(self.spec.stop_timeout_seconds);
                self.sh.tasks.spawn(stop_leftovers(steps, signal, grace));
            }
            return Ok(o.run_id);
        }
        Err(SchedError::Conflict(format!(
            "job '{}' has no run in progress",
            self.spec.name
        )))
    }

    async fn run_ended(&mut self, res: Result<RunOutcome, tokio::task::JoinError>) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let job = self.spec.name.clone();
        let mut outcome = res.unwrap_or_else(|e| {
            tracing::error!(job = %job, error = %e, "a job run ended abnormally");
            RunOutcome {
                state: RunState::Failed,
                retries: 0,
                error: Some("the run ended abnormally; see warden's log".into()),
            }
        });
        if cur.lease_lost && outcome.state == RunState::Cancelled {
            outcome.error = Some("cancelled: this warden lost the job's lease".into());
        }
        let sh = self.sh.clone();
        if let Err(e) = sh
            .store
            .finish_job_run(
                cur.run_id,
                outcome.state.into(),
                outcome.retries,
                outcome.error.clone(),
            )
            .await
        {
            tracing::error!(job = %job, run_id = cur.run_id, error = %e, "cannot record the end of a run");
        }
        self.release().await;
        let took = now_ms() - cur.started_at;
        let (kind, verb) = match outcome.state {
            RunState::Succeeded => (JobEventKind::Finished, "succeeded"),
            RunState::Cancelled => (JobEventKind::Cancelled, "was cancelled"),
            _ => (JobEventKind::Failed, "failed"),
        };
        let why = outcome
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        sh.job_event(
            &job,
            cur.run_id,
            kind,
            format!(
                "run {} of job '{job}' {verb} after {}{why}",
                cur.run_id,
                ms_text(took)
            ),
            Some(took),
            None,
        )
        .await;
        let _ = cur.done.send(Some(RunEnd {
            run_id: cur.run_id,
            state: outcome.state,
            error: outcome.error,
        }));
        sh.prune(&job).await;
        self.start_waiting().await;
    }

    async fn orphan_gone(&mut self) {
        let Some(o) = self.orphan.take() else { return };
        let job = self.spec.name.clone();
        let error = "warden restarted while the run was in progress; its processes have ended (exit status unknown) and its remaining steps were not run".to_string();
        if let Err(e) = self
            .sh
            .store
            .interrupt_job_run(o.run_id, StepStatus::Lost, error.clone())
            .await
        {
            tracing::error!(job = %job, error = %e, "cannot record the end of a leftover run");
        }
        self.release().await;
        self.sh
            .job_event(
                &job,
                o.run_id,
                JobEventKind::Failed,
                format!("run {} of job '{job}' ended: {error}", o.run_id),
                Some(now_ms() - o.started_at),
                None,
            )
            .await;
        self.start_waiting().await;
    }

    async fn start_waiting(&mut self) {
        if self.finishing.is_some() {
            return;
        }
        if let Some(w) = self.waiting.take()
            && let Err(e) = self.start(w.source, w.done).await
        {
            tracing::error!(job = %self.spec.name, error = %e, "cannot start the waiting run");
        }
    }

    /// Finds runs left `running` by an earlier warden: those with a step still alive
    /// become the orphan (the job stays busy until its processes are gone), the others
    /// are recorded as interrupted.
    async fn recover(&mut self) {
        let job = self.spec.name.clone();
        let runs = match self.sh.store.running_job_runs(&job).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job = %job, error = %e, "cannot look for leftover runs");
                return;
            }
        };
        for (run_id, steps) in runs {
            if self.current.as_ref().is_some_and(|c| c.run_id == run_id)
                || self.orphan.as_ref().is_some_and(|o| o.run_id == run_id)
            {
                continue;
            }
            let live: Vec<LiveStep> = steps
                .into_iter()
                .filter(|s| s.start_time != 0 && os::process_running(s.pid, s.start_time))
                .collect();
            if live.is_empty() || self.orphan.is_some() {
                let error =
                    "warden stopped while the run was in progress; none of its processes survived"
                        .to_string();
                if let Err(e) = self
                    .sh
                    .store
                    .interrupt_job_run(run_id, StepStatus::Interrupted, error.clone())
                    .await
                {
                    tracing::error!(job = %job, error = %e, "cannot record an interrupted run");
                }
                self.sh
                    .job_event(
                        &job,
                        run_id,
                        JobEventKind::Failed,
                        format!("run {run_id} of job '{job}' was interrupted: {error}"),
                        None,
                        None,
                    )
                    .await;
                continue;
            }
            tracing::info!(job = %job, run_id, pids = %pid_list(&live), "a run from before the restart is still running; watching it");
            // Hold the lease for it too, so another warden on this data directory also
            // leaves the job alone. Its previous holder is dead, so this normally succeeds.
            match self.sh.acquire_lease(&job).await {
                Ok(Ok(())) => self.leased = true,
                Ok(Err(held)) => {
                    tracing::warn!(job = %job, owner = %held.owner, "the lease of a leftover run is held by another live warden")
                }
                Err(e) => tracing::error!(job = %job, error = %e, "cannot take the lease"),
            }
            let gone = futures_util::future::join_all(
                live.iter().map(|s| watch_process(s.pid, s.start_time)),
            );
            self.orphan = Some(Orphan {
                run_id,
                started_at: now_ms(),
                steps: live,
                gone: tokio::spawn(async move {
                    gone.await;
                }),
                cancelling: false,
            });
        }
    }

    async fn renew(&mut self) {
        let job = &self.spec.name;
        match self
            .sh
            .store
            .renew_lease(job, &self.sh.owner.id, self.sh.lease_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // Someone took the lease (ours had expired): stop rather than run beside them.
                tracing::error!(job = %job, "lost the job's lease; cancelling the run");
                self.leased = false;
                if let Some(c) = &mut self.current {
                    c.lease_lost = true;
                    c.cancel.cancel();
                }
            }
            Err(e) => tracing::warn!(job = %job, error = %e, "cannot renew the job's lease"),
        }
    }

    async fn release(&mut self) {
        if !self.leased {
            return;
        }
        self.leased = false;
        if let Err(e) = self
            .sh
            .store
            .release_lease(&self.spec.name, &self.sh.owner.id)
            .await
        {
            // It expires by itself; until then this warden's own later runs may retake it.
            tracing::warn!(job = %self.spec.name, error = %e, "cannot release the job's lease");
        }
    }

    fn publish(&self) {
        let running = if let Some(c) = &self.current {
            Some(RunningInfo {
                run_id: c.run_id,
                source: c.source.clone(),
                started_at: c.started_at,
                orphaned: false,
                pids: Vec::new(),
                cancelling: c.cancel.is_cancelled(),
            })
        } else {
            self.orphan.as_ref().map(|o| RunningInfo {
                run_id: o.run_id,
                source: "before restart".into(),
                started_at: o.started_at,
                orphaned: true,
                pids: o.steps.iter().map(|s| s.pid).collect(),
                cancelling: o.cancelling,
            })
        };
        self.snapshot.send_replace(Arc::new(JobSnapshot {
            spec: self.spec.clone(),
            running,
            waiting: self.waiting.as_ref().map(|w| w.source.clone()),
        }));
    }
}

async fn wait_current(cur: &mut Option<Current>) -> Result<RunOutcome, tokio::task::JoinError> {
    match cur {
        Some(c) => (&mut c.task).await,
        None => std::future::pending().await,
    }
}

async fn wait_orphan(o: &mut Option<Orphan>) {
    match o {
        Some(o) => {
            let _ = (&mut o.gone).await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves when the process is gone: its exit is seen through a pidfd, and a periodic
/// check also catches a zombie nobody reaps (an orphan of a killed warden) or a reused pid.
async fn watch_process(pid: u32, start_time: u64) {
    let check = async {
        while os::process_running(pid, start_time) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = os::wait_foreign(pid) => {}
        _ = check => {}
    }
}

/// Gracefully stops the process groups of a leftover run: the stop signal, then a kill of
/// whatever is still running after `grace`.
async fn stop_leftovers(steps: Vec<LiveStep>, signal: String, grace: Duration) {
    for s in &steps {
        if os::process_running(s.pid, s.start_time)
            && let Err(e) = os::signal_group(s.pid, &signal)
        {
            tracing::warn!(pid = s.pid, error = %e, "cannot signal a leftover step");
        }
    }
    tokio::time::sleep(grace).await;
    for s in &steps {
        if os::process_running(s.pid, s.start_time) {
            let _ = os::kill_group(s.pid);
        }
    }
}

fn pid_list(steps: &[LiveStep]) -> String {
    steps
        .iter()
        .map(|s| s.pid.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms_text(ms: i64) -> String {
    crate::duration::format(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}
