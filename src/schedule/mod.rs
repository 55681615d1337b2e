//! Schedules and jobs: the [`Scheduler`] service.
//!
//! - A *schedule* is a trigger (cron or interval, in a time zone) plus a chain of tasks
//!   with offsets. One trigger loop sleeps until the earliest fire time and fires what is
//!   due; each fire runs its chain in its own task (`chain.rs`).
//! - A *job* is a graph of command steps. Each job has one actor (`job.rs`) that applies
//!   the overlap policy, holds the job's lease and runs one run at a time (`run.rs`,
//!   `step.rs`).
//!
//! Architecture invariant: no job runs without its lease, and nothing here touches a
//! program's process — program tasks go through `ProgramHandle`. The scheduler knows
//! nothing about HTTP; the API calls the methods below.

pub(crate) mod chain;
pub mod job;
mod plan;
pub mod policy;
mod run;
pub mod services;
pub mod spec;
mod step;
pub mod trigger;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::bus::{Bus, Event, JobEvent, JobEventKind, ScheduleEvent, ScheduleEventKind};
use crate::config::ScheduleConfig;
use crate::os;
use crate::program::{FieldError, State};
use crate::store::events::NewEvent;
use crate::store::schedule::{
    DefKind, JobRunRecord, LeaseHeld, LeaseOwner, ScheduleRunRecord, StepRunRecord,
};
use crate::store::{Store, StoreError, now_ms};
use crate::supervisor::Supervisor;
use crate::sync::lock;
use job::{JobHandle, RunningInfo, Triggered};
use policy::{Prediction, default_concurrency, predict};
use services::Services;
use spec::{JobSpec, Known, MissedPolicy, ScheduleSpec};
use trigger::{Trigger, Zone};

/// Errors of scheduler operations, phrased for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// No such schedule, job or run.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (running, referenced, exists…).
    #[error("{0}")]
    Conflict(String),
    /// The definition is invalid.
    #[error("the definition is invalid")]
    Invalid(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// warden is shutting down.
    #[error("warden is shutting down")]
    ShuttingDown,
    /// The scheduler could not start.
    #[error("cannot start the scheduler: {0}")]
    Start(String),
}

/// What every part of the scheduler shares.
pub(crate) struct Shared {
    store: Store,
    bus: Bus,
    sup: Supervisor,
    cfg: ScheduleConfig,
    /// This warden instance as a lease owner.
    owner: LeaseOwner,
    /// Root of the per-run output directories (`DATA/jobs/JOB/RUN/`).
    jobs_dir: PathBuf,
    services: Services,
    /// Client for `http` tasks.
    http: reqwest::Client,
    /// Cancelled at shutdown (a child of warden's token): stops the trigger loop and
    /// chains. Job runs have tokens of their own; their actors decide at shutdown.
    shutdown: CancellationToken,
    /// Actors, chains and the trigger loop, awaited at shutdown.
    tasks: TaskTracker,
    /// Step concurrency when neither the job nor the config sets one.
    default_concurrency: usize,
}

impl Shared {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.cfg.lease.as_millis()).unwrap_or(30_000)
    }

    async fn acquire_lease(&self, job: &str) -> Result<Result<(), LeaseHeld>, StoreError> {
        self.store
            .acquire_lease(job, self.owner.clone(), self.lease_ms(), |pid, start| {
                !os::process_running(pid, start)
            })
            .await
    }

    async fn prediction(&self, job: &str) -> Option<Prediction> {
        match self
            .store
            .recent_durations(job, self.cfg.prediction_runs)
            .await
        {
            Ok(d) => predict(&d),
            Err(e) => {
                tracing::warn!(job, error = %e, "cannot read run durations");
                None
            }
        }
    }

    fn concurrency(&self, spec: &JobSpec) -> usize {
        spec.concurrency
            .map(|c| c as usize)
            .or(self.cfg.job_concurrency)
            .unwrap_or(self.default_concurrency)
            .max(1)
    }

    /// Stores a job event, then publishes it.
    async fn job_event(
        &self,
        job: &str,
        run_id: i64,
        kind: JobEventKind,
        message: String,
        duration_ms: Option<i64>,
        predicted_p90_ms: Option<i64>,
    ) {
        let ev = JobEvent {
            job: job.to_string(),
            run_id,
            ts: now_ms(),
            kind,
            message,
            duration_ms,
            predicted_p90_ms,
        };
        tracing::info!(job, run_id, kind = kind.event_kind(), message = %ev.message, "job");
        let stored = NewEvent {
            ts: ev.ts,
            program: None,
            kind: kind.event_kind().into(),
            message: ev.message.clone(),
            data: serde_json::to_value(&ev).unwrap_or(serde_json::Value::Null),
        };
        if let Err(e) = self.store.append_event(stored).await {
            tracing::error!(error = %e, "cannot store event");
        }
        self.bus.publish(Event::Job(ev));
    }

    /// Stores a schedule event, then publishes it.
    async fn schedule_event(
        &self,
        schedule: &str,
        run_id: Option<i64>,
        kind: ScheduleEventKind,
        message: String,
    ) {
        let ev = ScheduleEvent {
            schedule: schedule.to_string(),
            run_id,
            ts: now_ms(),
            kind,
            message,
        };
        tracing::info!(schedule, kind = kind.event_kind(), message = %ev.message, "schedule");
        let stored = NewEvent {
            ts: ev.ts,
            program: None,
            kind: kind.event_kind().into(),
            message: ev.message.clone(),
            data: serde_json::to_value(&ev).unwrap_or(serde_json::Value::Null),
        };
        if let Err(e) = self.store.append_event(stored).await {
            tracing::error!(error = %e, "cannot store event");
        }
        self.bus.publish(Event::Schedule(ev));
    }

    /// Deletes runs beyond `keep_runs` and their output directories.
    async fn prune(&self, job: &str) {
        match self.store.prune_job_runs(job, self.cfg.keep_runs).await {
            Ok(ids) if !ids.is_empty() => {
                let dirs: Vec<PathBuf> = ids
                    .iter()
                    .map(|id| step::run_dir(&self.jobs_dir, job, *id))
                    .collect();
                let _ = tokio::task::spawn_blocking(move || {
                    for d in dirs {
                        let _ = std::fs::remove_dir_all(d);
                    }
                })
                .await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(job, error = %e, "cannot prune old runs"),
        }
    }
}

/// A schedule as the trigger loop holds it.
struct Entry {
    spec: Arc<ScheduleSpec>,
    trigger: Trigger,
    zone: Zone,
    /// The next fire time; `None` when disabled or it never fires again.
    next: Option<DateTime<Utc>>,
    /// The chain in progress: its run id (once recorded) and cancel token.
    running: Option<(Option<i64>, CancellationToken)>,
}

/// A job with its status, prediction and last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobInfo {
    /// The definition.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Steps that run at once (the job's `concurrency`, or the default).
    pub effective_concurrency: usize,
    /// Predicted duration of the next run, once a few runs succeeded.
    pub prediction: Option<Prediction>,
    /// The run in progress.
    pub running: Option<RunningInfo>,
    /// The source of a trigger waiting for the current run (policy `queue`/`replace`).
    pub waiting: Option<String>,
    /// The latest run (or skipped trigger).
    pub last_run: Option<JobRunRecord>,
    /// Things worth knowing, e.g. that the job takes longer than a schedule's interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A schedule with its next fire times and last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleInfo {
    /// The definition (secrets of HTTP tasks masked).
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// The trigger in words.
    pub trigger_description: String,
    /// The time zone used (`timezone`, or the host's).
    pub effective_timezone: String,
    /// The next 5 fire times (RFC 3339, in the schedule's time zone); empty when disabled.
    pub next_runs: Vec<String>,
    /// The chain run in progress.
    pub running_run_id: Option<i64>,
    /// The latest run.
    pub last_run: Option<ScheduleRunRecord>,
    /// Things worth knowing, e.g. that a job it runs takes longer than its interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What a trigger of a job did, for the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResult {
    /// `started`, `queued`, `replacing` or `skipped`.
    pub outcome: &'static str,
    /// The run started (or recorded as skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// The run being replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<i64>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the run is expected to take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
}

/// Outcome of firing a schedule.
pub enum Fired {
    /// The chain started as this run.
    Started(i64),
    /// It did not run, recorded as this skipped run, for this reason.
    Skipped(i64, String),
}

/// The schedules-and-jobs service. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    sh: Arc<Shared>,
    /// Job actors by name. A std RwLock held only to clone out or insert a handle;
    /// changes are serialised by `mutate`.
    jobs: RwLock<BTreeMap<String, JobHandle>>,
    /// Schedules by name. A std Mutex, never held across `.await`.
    schedules: Mutex<BTreeMap<String, Entry>>,
    /// Serialises create/update/delete so the store and the maps agree.
    mutate: tokio::sync::Mutex<()>,
    /// Wakes the trigger loop after a schedule changed.
    wake: Notify,
}

/// What [`Scheduler::start`] needs.
pub struct SchedulerDeps {
    /// The database.
    pub store: Store,
    /// The event bus.
    pub bus: Bus,
    /// Program actors, for program tasks and conditions.
    pub sup: Supervisor,
    /// `[schedule]` settings.
    pub cfg: ScheduleConfig,
    /// The data directory (job output goes to `DATA/jobs/`).
    pub data_dir: PathBuf,
    /// Optional integrations.
    pub services: Services,
    /// Cancelled when warden shuts down.
    pub shutdown: CancellationToken,
}

impl Scheduler {
    /// Loads jobs and schedules, recovers runs left over from before a restart, handles
    /// missed fire times, and starts the trigger loop.
    pub async fn start(deps: SchedulerDeps) -> Result<Scheduler, SchedError> {
        let pid = std::process::id();
        let owner = LeaseOwner {
            id: format!("{pid}-{:08x}", rand::random::<u32>()),
            pid,
            start_time: os::process_start_time(pid).unwrap_or(0),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SchedError::Start(format!("cannot build the HTTP client: {e}")))?;
        let sh = Arc::new(Shared {
            store: deps.store,
            bus: deps.bus,
            sup: deps.sup,
            cfg: deps.cfg,
            owner,
            jobs_dir: deps.data_dir.join("jobs"),
            services: deps.services,
            http,
            shutdown: deps.shutdown.child_token(),
            tasks: TaskTracker::new(),
            default_concurrency: default_concurrency(cores, os::available_memory()),
        });
        let n = sh.store.interrupt_schedule_runs().await?;
        if n > 0 {
            tracing::warn!(
                runs = n,
                "schedule chains were interrupted when warden last stopped"
            );
        }
        let sched = Scheduler {
            inner: Arc::new(Inner {
                sh: sh.clone(),
                jobs: RwLock::new(BTreeMap::new()),
                schedules: Mutex::new(BTreeMap::new()),
                mutate: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
            }),
        };
        for row in sh.store.defs::<JobSpec>(DefKind::Job).await? {
            let name = row.spec.name.clone();
            let h = job::spawn(sh.clone(), Arc::new(row.spec));
            crate::sync::write(&sched.inner.jobs).insert(name, h);
        }
        let now = Utc::now();
        let mut catch_up = Vec::new();
        for row in sh.store.defs::<ScheduleSpec>(DefKind::Schedule).await? {
            let spec = row.spec;
            let (trigger, zone) = match (
                Trigger::parse(&spec.trigger),
                Zone::parse(spec.timezone.as_deref()),
            ) {
                (Ok(t), Ok(z)) => (t, z),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(schedule = %spec.name, error = %e, "stored schedule is invalid; it will not fire until it is fixed");
                    continue;
                }
            };
            if spec.enabled {
                let since = row.last_fire_at.unwrap_or(0).max(row.updated_at);
                let since = DateTime::from_timestamp_millis(since).unwrap_or(now);
                let (count, latest) = trigger.missed(since, now, zone, 100_000);
                if let (true, Some(latest)) = (count > 0, latest) {
                    let what = match spec.missed {
                        MissedPolicy::Skip => "skipped (missed = \"skip\")",
                        MissedPolicy::RunOnce => "running once now (missed = \"run_once\")",
                    };
                    sh.schedule_event(
                        &spec.name,
                        None,
                        ScheduleEventKind::Missed,
                        format!(
                            "schedule '{}' missed {count}{} run(s) while warden was not running (the latest due at {}); {what}",
                            spec.name,
                            if count >= 100_000 { "+" } else { "" },
                            latest.to_rfc3339()
                        ),
                    )
                    .await;
                    sh.store
                        .set_last_fire(&spec.name, latest.timestamp_millis())
                        .await?;
                    if spec.missed == MissedPolicy::RunOnce {
                        catch_up.push((spec.name.clone(), latest));
                    }
                }
            }
            let next = spec
                .enabled
                .then(|| trigger.next_after(now, zone))
                .flatten();
            lock(&sched.inner.schedules).insert(
                spec.name.clone(),
                Entry {
                    spec: Arc::new(spec),
                    trigger,
                    zone,
                    next,
                    running: None,
                },
            );
        }
        // Restarted if it ever panics: its state lives in the shared registry.
        let looping = sched.clone();
        sh.tasks.spawn(crate::health::supervise(
            "schedule-loop",
            sh.shutdown.clone(),
            move || looping.clone().trigger_loop(),
        ));
        for (name, at) in catch_up {
            if let Err(e) = sched.fire(&name, Some(at), "missed".into()).await {
                tracing::error!(schedule = %name, error = %e, "cannot run a missed schedule");
            }
        }
        Ok(sched)
    }

    /// Sleeps until the earliest fire time, fires what is due, and repeats; wakes early
    /// when a schedule changes. Never sleeps more than a minute, so a jump of the wall
    /// clock is noticed.
    async fn trigger_loop(self) {
        let sh = self.inner.sh.clone();
        loop {
            let now = Utc::now();
            let mut due = Vec::new();
            let mut earliest: Option<DateTime<Utc>> = None;
            {
                let mut entries = lock(&self.inner.schedules);
                for (name, e) in entries.iter_mut() {
                    if let Some(at) = e.next
                        && at <= now
                    {
                        due.push((name.clone(), at));
                        e.next = e.trigger.next_after(now, e.zone);
                    }
                    if let Some(n) = e.next {
                        earliest = Some(earliest.map_or(n, |x| x.min(n)));
                    }
                }
            }
            for (name, at) in due {
                if let Err(e) = self.fire(&name, Some(at), "schedule".into()).await {
                    tracing::error!(schedule = %name, error = %e, "cannot fire schedule");
                }
            }
            let wait = earliest
                .and_then(|t| (t - Utc::now()).to_std().ok())
                .unwrap_or(Duration::ZERO);
            let wait = if earliest.is_none() {
                Duration::from_secs(60)
            } else {
                wait.min(Duration::from_secs(60))
            };
            tokio::select! {
                _ = sh.shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fires a schedule: checks that its previous chain ended and its conditions hold,
    /// then runs its chain in a task of its own.
    pub async fn fire(
        &self,
        name: &str,
        scheduled_for: Option<DateTime<Utc>>,
        source: String,
    ) -> Result<Fired, SchedError> {
        let sh = self.inner.sh.clone();
        if sh.shutdown.is_cancelled() {
            return Err(SchedError::ShuttingDown);
        }
        let cancel = sh.shutdown.child_token();
        let (spec, busy) = {
            let mut entries = lock(&self.inner.schedules);
            let e = entries
                .get_mut(name)
                .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
            let busy = e.running.as_ref().map(|r| r.0);
            if busy.is_none() {
                e.running = Some((None, cancel.clone()));
            }
            (e.spec.clone(), busy)
        };
        let at_ms = scheduled_for.map(|t| t.timestamp_millis());
        if let Some(at) = at_ms
            && let Err(e) = sh.store.set_last_fire(name, at).await
        {
            tracing::warn!(schedule = name, error = %e, "cannot record the fire time");
        }
        let skip_reason = match busy {
            Some(run) => Some(format!(
                "the previous run{} is still in progress",
                run.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            None => self.check_conditions(&spec).await,
        };
        if let Some(reason) = skip_reason {
            if busy.is_none() {
                self.clear_running(name, None);
            }
            let run_id = sh
                .store
                .insert_schedule_run(
                    name,
                    source,
                    at_ms,
                    "skipped",
                    Some(reason.clone()),
                    serde_json::json!([]),
                )
                .await?;
            sh.schedule_event(
                name,
                Some(run_id),
                ScheduleEventKind::Skipped,
                format!("schedule '{name}' did not run: {reason}"),
            )
            .await;
            return Ok(Fired::Skipped(run_id, reason));
        }
        let tasks = serde_json::to_value(chain::initial(&spec)).unwrap_or_default();
        let run_id = match sh
            .store
            .insert_schedule_run(name, source.clone(), at_ms, "running", None, tasks)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.clear_running(name, None);
                return Err(e.into());
            }
        };
        if let Some(e) = lock(&self.inner.schedules).get_mut(name)
            && let Some(r) = &mut e.running
        {
            r.0 = Some(run_id);
        }
        sh.schedule_event(
            name,
            Some(run_id),
            ScheduleEventKind::Fired,
            format!("schedule '{name}' fired ({source}); run {run_id} started"),
        )
        .await;
        let this = self.clone();
        let name = name.to_string();
        sh.tasks.spawn(async move {
            let end = chain::run(&this, &spec, run_id, &cancel).await;
            this.clear_running(&name, Some(run_id));
            let (kind, text) = match end.state {
                "succeeded" => (ScheduleEventKind::Finished, "finished".to_string()),
                other => (
                    ScheduleEventKind::Failed,
                    format!(
                        "{other}{}",
                        end.error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                ),
            };
            let sh = &this.inner.sh;
            sh.schedule_event(
                &name,
                Some(run_id),
                kind,
                format!("run {run_id} of schedule '{name}' {text}"),
            )
            .await;
            if let Err(e) = sh.store.prune_schedule_runs(&name, sh.cfg.keep_runs).await {
                tracing::warn!(schedule = %name, error = %e, "cannot prune old runs");
            }
        });
        Ok(Fired::Started(run_id))
    }

    fn clear_running(&self, name: &str, run_id: Option<i64>) {
        if let Some(e) = lock(&self.inner.schedules).get_mut(name)
            && e.running.as_ref().is_some_and(|r| r.0 == run_id)
        {
            e.running = None;
        }
    }

    /// The reason a run must be skipped, if a condition fails.
    async fn check_conditions(&self, spec: &ScheduleSpec) -> Option<String> {
        let sh = &self.inner.sh;
        if let Some(p) = &spec.conditions.skip_if_not_running {
            match sh.sup.get(p) {
                Ok(h) => {
                    let state = h.snapshot().status.state;
                    if state != State::Running {
                        return Some(format!(
                            "program '{p}' is {} (condition skip_if_not_running)",
                            state.as_str()
                        ));
                    }
                }
                Err(_) => return Some(format!("program '{p}' no longer exists")),
            }
        }
        if let Some(p) = &spec.conditions.only_when_empty {
            match sh.services.games.players(p).await {
                Ok(0) => {}
                Ok(n) => {
                    return Some(format!(
                        "{n} player(s) online on '{p}' (condition only_when_empty)"
                    ));
                }
                Err(e) => {
                    return Some(format!(
                        "cannot tell whether '{p}' is empty ({e}); condition only_when_empty"
                    ));
                }
            }
        }
        None
    }

    fn known_names(&self) -> (HashSet<String>, HashSet<String>) {
        let programs = self
            .inner
            .sh
            .sup
            .list()
            .iter()
            .map(|h| h.name().to_string())
            .collect();
        let jobs = crate::sync::read(&self.inner.jobs)
            .keys()
            .cloned()
            .collect();
        (programs, jobs)
    }

    fn validate_schedule(&self, spec: &ScheduleSpec) -> Result<(Trigger, Zone), SchedError> {
        let (programs, jobs) = self.known_names();
        let known = Known {
            programs: &programs,
            jobs: &jobs,
        };
        let (errs, parsed) = spec.validate(&known);
        match parsed {
            Some(p) if errs.is_empty() => Ok(p),
            _ => Err(SchedError::Invalid(errs)),
        }
    }

    // ---- schedules -------------------------------------------------------------

    /// Every schedule.
    pub async fn schedules(&self) -> Vec<ScheduleInfo> {
        let names: Vec<String> = lock(&self.inner.schedules).keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(i) = self.schedule(&n).await {
                out.push(i);
            }
        }
        out
    }

    /// One schedule.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleInfo, SchedError> {
        let (spec, trigger, zone, running) = {
            let entries = lock(&self.inner.schedules);
            let e = entries
                .get(name)
                .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
            (
                e.spec.clone(),
                e.trigger.clone(),
                e.zone,
                e.running.as_ref().and_then(|r| r.0),
            )
        };
        let now = Utc::now();
        let next_runs = if spec.enabled {
            trigger
                .upcoming(now, zone, 5)
                .into_iter()
                .map(|t| in_zone(t, zone))
                .collect()
        } else {
            Vec::new()
        };
        let last_run = self
            .inner
            .sh
            .store
            .schedule_runs(name, None, 1)
            .await?
            .into_iter()
            .next();
        let warnings = self.schedule_warnings(&spec, &trigger, zone).await;
        Ok(ScheduleInfo {
            spec: spec::masked(&spec),
            trigger_description: trigger.describe(),
            effective_timezone: zone_name(zone),
            next_runs,
            running_run_id: running,
            last_run,
            warnings,
        })
    }

    /// "this job takes ~27h but runs every 24h" for each job the chain runs.
    async fn schedule_warnings(
        &self,
        spec: &ScheduleSpec,
        trigger: &Trigger,
        zone: Zone,
    ) -> Vec<String> {
        let Some(gap) = trigger.min_gap(Utc::now(), zone) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for job in spec.jobs() {
            if !seen.insert(job) {
                continue;
            }
            if let Some(p) = self.inner.sh.prediction(job).await {
                let took = Duration::from_millis(u64::try_from(p.p90_ms).unwrap_or(0));
                if took > gap {
                    out.push(format!(
                        "job '{job}' takes ~{} (p90 of its last {} runs) but schedule '{}' runs it every {}",
                        crate::duration::format(took),
                        p.samples,
                        spec.name,
                        crate::duration::format(gap)
                    ));
                }
            }
        }
        out
    }

    /// Creates a schedule.
    pub async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleInfo, SchedError> {
        let (trigger, zone) = self.validate_schedule(&spec)?;
        let _guard = self.inner.mutate.lock().await;
        self.inner
            .sh
            .store
            .insert_def(DefKind::Schedule, &spec.name, &spec)
            .await
            .map_err(conflict)?;
        let name = spec.name.clone();
        self.install(spec, trigger, zone);
        self.schedule(&name).await
    }

    /// Replaces a schedule (secrets sent back masked keep their stored values). A chain in
    /// progress finishes with the definition it started with.
    pub async fn update_schedule(
        &self,
        mut spec: ScheduleSpec,
    ) -> Result<ScheduleInfo, SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let old = lock(&self.inner.schedules)
            .get(&spec.name)
            .map(|e| e.spec.clone())
            .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{}'", spec.name)))?;
        spec::unmask(&mut spec, &old);
        let (trigger, zone) = self.validate_schedule(&spec)?;
        self.inner
            .sh
            .store
            .update_def(DefKind::Schedule, &spec.name, &spec)
            .await?;
        let name = spec.name.clone();
        self.install(spec, trigger, zone);
        self.schedule(&name).await
    }

    fn install(&self, spec: ScheduleSpec, trigger: Trigger, zone: Zone) {
        let next = spec
            .enabled
            .then(|| trigger.next_after(Utc::now(), zone))
            .flatten();
        let mut entries = lock(&self.inner.schedules);
        let running = entries.remove(&spec.name).and_then(|e| e.running);
        entries.insert(
            spec.name.clone(),
            Entry {
                spec: Arc::new(spec),
                trigger,
                zone,
                next,
                running,
            },
        );
        drop(entries);
        self.inner.wake.notify_one();
    }

    /// Deletes a schedule; a chain in progress is cancelled.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let removed = lock(&self.inner.schedules).remove(name);
        let Some(e) = removed else {
            return Err(SchedError::NotFound(format!("no schedule named '{name}'")));
        };
        if let Some((_, cancel)) = e.running {
            cancel.cancel();
        }
        self.inner
            .sh
            .store
            .delete_def(DefKind::Schedule, name)
            .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Cancels the chain in progress; answers its run id.
    pub fn cancel_schedule(&self, name: &str) -> Result<i64, SchedError> {
        let entries = lock(&self.inner.schedules);
        let e = entries
            .get(name)
            .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
        match &e.running {
            Some((Some(run_id), cancel)) => {
                cancel.cancel();
                Ok(*run_id)
            }
            _ => Err(SchedError::Conflict(format!(
                "schedule '{name}' has no run in progress"
            ))),
        }
    }

    /// A page of a schedule's runs, newest first.
    pub async fn schedule_runs(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ScheduleRunRecord>, SchedError> {
        if !lock(&self.inner.schedules).contains_key(name) {
            return Err(SchedError::NotFound(format!("no schedule named '{name}'")));
        }
        Ok(self
            .inner
            .sh
            .store
            .schedule_runs(name, before, limit)
            .await?)
    }

    // ---- jobs ------------------------------------------------------------------

    fn job_handle(&self, name: &str) -> Result<JobHandle, SchedError> {
        crate::sync::read(&self.inner.jobs)
            .get(name)
            .cloned()
            .ok_or_else(|| SchedError::NotFound(format!("no job named '{name}'")))
    }

    /// Every job.
    pub async fn jobs(&self) -> Vec<JobInfo> {
        let names: Vec<String> = crate::sync::read(&self.inner.jobs)
            .keys()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(i) = self.job(&n).await {
                out.push(i);
            }
        }
        out
    }

    /// One job with its status and prediction.
    pub async fn job(&self, name: &str) -> Result<JobInfo, SchedError> {
        let snap = self.job_handle(name)?.snapshot();
        let sh = &self.inner.sh;
        let prediction = sh.prediction(name).await;
        let last_run = sh.store.job_runs(name, None, 1).await?.into_iter().next();
        Ok(JobInfo {
            spec: (*snap.spec).clone(),
            effective_concurrency: sh.concurrency(&snap.spec),
            prediction,
            running: snap.running.clone(),
            waiting: snap.waiting.clone(),
            last_run,
            warnings: self.job_warnings(name, prediction),
        })
    }

    /// Warnings for each schedule that runs the job more often than it takes.
    fn job_warnings(&self, job: &str, prediction: Option<Prediction>) -> Vec<String> {
        let Some(p) = prediction else {
            return Vec::new();
        };
        let took = Duration::from_millis(u64::try_from(p.p90_ms).unwrap_or(0));
        let now = Utc::now();
        lock(&self.inner.schedules)
            .values()
            .filter(|e| e.spec.jobs().any(|j| j == job))
            .filter_map(|e| {
                let gap = e.trigger.min_gap(now, e.zone)?;
                (took > gap).then(|| {
                    format!(
                        "job '{job}' takes ~{} (p90 of its last {} runs) but schedule '{}' runs it every {}",
                        crate::duration::format(took),
                        p.samples,
                        e.spec.name,
                        crate::duration::format(gap)
                    )
                })
            })
            .collect()
    }

    /// Creates a job.
    pub async fn create_job(&self, spec: JobSpec) -> Result<JobInfo, SchedError> {
        let errs = spec.validate();
        if !errs.is_empty() {
            return Err(SchedError::Invalid(errs));
        }
        let _guard = self.inner.mutate.lock().await;
        let sh = &self.inner.sh;
        sh.store
            .insert_def(DefKind::Job, &spec.name, &spec)
            .await
            .map_err(conflict)?;
        let name = spec.name.clone();
        let h = job::spawn(sh.clone(), Arc::new(spec));
        crate::sync::write(&self.inner.jobs).insert(name.clone(), h);
        drop(_guard);
        self.job(&name).await
    }

    /// Replaces a job's definition; a run in progress keeps the one it started with.
    pub async fn update_job(&self, spec: JobSpec) -> Result<JobInfo, SchedError> {
        let errs = spec.validate();
        if !errs.is_empty() {
            return Err(SchedError::Invalid(errs));
        }
        let _guard = self.inner.mutate.lock().await;
        let h = self.job_handle(&spec.name)?;
        self.inner
            .sh
            .store
            .update_def(DefKind::Job, &spec.name, &spec)
            .await?;
        let name = spec.name.clone();
        h.update(Arc::new(spec)).await?;
        drop(_guard);
        self.job(&name).await
    }

    /// Deletes a job with its history. Refused while a schedule runs it, or while a run is
    /// in progress unless `force` (which cancels the run gracefully first).
    pub async fn delete_job(&self, name: &str, force: bool) -> Result<(), SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let h = self.job_handle(name)?;
        let users: Vec<String> = lock(&self.inner.schedules)
            .values()
            .filter(|e| e.spec.jobs().any(|j| j == name))
            .map(|e| e.spec.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(SchedError::Conflict(format!(
                "job '{name}' is run by schedule(s) {}; change or delete them first",
                users.join(", ")
            )));
        }
        if let Some(r) = &h.snapshot().running
            && !force
        {
            return Err(SchedError::Conflict(format!(
                "job '{name}' has run {} in progress; cancel it first, or delete with force=true to cancel it and then delete",
                r.run_id
            )));
        }
        h.shutdown(true).await;
        let sh = &self.inner.sh;
        sh.store.delete_def(DefKind::Job, name).await?;
        crate::sync::write(&self.inner.jobs).remove(name);
        let dir = sh.jobs_dir.join(name);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        Ok(())
    }

    /// Triggers a job by hand (the overlap policy applies).
    pub async fn run_job(&self, name: &str, source: String) -> Result<TriggerResult, SchedError> {
        let h = self.job_handle(name)?;
        let prediction = self.inner.sh.prediction(name).await;
        Ok(match h.trigger(source).await? {
            Triggered::Started { run_id, .. } => TriggerResult {
                outcome: "started",
                run_id: Some(run_id),
                replaces: None,
                reason: None,
                prediction,
            },
            Triggered::Queued { .. } => TriggerResult {
                outcome: "queued",
                run_id: None,
                replaces: None,
                reason: None,
                prediction,
            },
            Triggered::Replacing { replaced, .. } => TriggerResult {
                outcome: "replacing",
                run_id: None,
                replaces: Some(replaced),
                reason: None,
                prediction,
            },
            Triggered::Skipped { run_id, reason } => TriggerResult {
                outcome: "skipped",
                run_id: Some(run_id),
                replaces: None,
                reason: Some(reason),
                prediction: None,
            },
        })
    }

    /// Cancels a job's run in progress gracefully; answers its id.
    pub async fn cancel_job(&self, name: &str) -> Result<i64, SchedError> {
        self.job_handle(name)?.cancel().await
    }

    /// A page of a job's runs, newest first.
    pub async fn job_runs(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRunRecord>, SchedError> {
        self.job_handle(name)?;
        Ok(self.inner.sh.store.job_runs(name, before, limit).await?)
    }

    /// The last `limit` finished runs of a job with a duration, oldest first, as
    /// (run id, started at, duration ms, state).
    pub async fn job_durations(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<(i64, i64, i64, String)>, SchedError> {
        self.job_handle(name)?;
        Ok(self.inner.sh.store.finished_durations(name, limit).await?)
    }

    /// One run of a job with its step attempts.
    pub async fn job_run(
        &self,
        name: &str,
        id: i64,
    ) -> Result<(JobRunRecord, Vec<StepRunRecord>), SchedError> {
        self.job_handle(name)?;
        self.inner
            .sh
            .store
            .job_run(name, id)
            .await?
            .ok_or_else(|| SchedError::NotFound(format!("job '{name}' has no run {id}")))
    }

    /// Stops the scheduler: no more fires, chains cancelled, job runs cancelled
    /// gracefully (`stop`) or left running for the next warden, within `deadline`.
    pub async fn shutdown(&self, stop: bool, deadline: Duration) {
        let sh = &self.inner.sh;
        sh.shutdown.cancel();
        let handles: Vec<JobHandle> = crate::sync::read(&self.inner.jobs)
            .values()
            .cloned()
            .collect();
        let all = futures_util::future::join_all(handles.iter().map(|h| h.shutdown(stop)));
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("some job runs did not end before the shutdown deadline");
        }
        sh.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), sh.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some schedule chains did not end within 10 s of shutdown");
        }
    }
}

fn conflict(e: StoreError) -> SchedError {
    match e {
        StoreError::Conflict(m) => SchedError::Conflict(m),
        other => SchedError::Store(other),
    }
}

/// RFC 3339 in the schedule's zone, so "04:00" reads as 04:00.
/// The zone as the API names it: its IANA name, or the host's offset.
fn zone_name(zone: Zone) -> String {
    match zone {
        Zone::Named(tz) => tz.name().to_string(),
        Zone::Local => format!(
            "host local time (UTC{})",
            chrono::Local::now().format("%:z")
        ),
    }
}

/// A trigger tried before it is saved: its effective zone and next `n` fire times (the
/// same computation as a saved schedule's `next_runs`), or the problems with the trigger
/// and the zone, per field.
pub fn preview_trigger(
    trigger: &str,
    timezone: Option<&str>,
    n: usize,
) -> Result<(String, Vec<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let zone = Zone::parse(timezone).map_err(|message| {
        errors.push(FieldError {
            field: "timezone".into(),
            message,
        })
    });
    let trigger = Trigger::parse(trigger).map_err(|message| {
        errors.push(FieldError {
            field: "trigger".into(),
            message,
        })
    });
    match (trigger, zone) {
        (Ok(trigger), Ok(zone)) => Ok((
            zone_name(zone),
            trigger
                .upcoming(Utc::now(), zone, n)
                .into_iter()
                .map(|t| in_zone(t, zone))
                .collect(),
        )),
        _ => Err(errors),
    }
}

fn in_zone(t: DateTime<Utc>, zone: Zone) -> String {
    match zone {
        Zone::Local => t.with_timezone(&chrono::Local).to_rfc3339(),
        Zone::Named(tz) => t.with_timezone(&tz).to_rfc3339(),
    }
}
