//! The [`Scheduler`] handle: its registries (job actors, schedule entries), start-up
//! (loading definitions, leftover chains, missed fire times) and shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::SchedError;
use super::job::{self, JobHandle};
use super::policy::default_concurrency;
use super::services::Services;
use super::shared::Shared;
use super::spec::{JobSpec, MissedPolicy, ScheduleSpec};
use super::trigger::{Trigger, Zone};
use crate::bus::{Bus, ScheduleEventKind};
use crate::config::ScheduleConfig;
use crate::os;
use crate::store::Store;
use crate::store::schedule::{DefKind, LeaseOwner};
use crate::supervisor::Supervisor;
use crate::sync::lock;

/// A schedule as the trigger loop holds it.
pub(super) struct Entry {
    pub(super) spec: Arc<ScheduleSpec>,
    pub(super) trigger: Trigger,
    pub(super) zone: Zone,
    /// The next fire time; `None` when disabled or it never fires again.
    pub(super) next: Option<DateTime<Utc>>,
    /// The chain in progress: its run id (once recorded) and cancel token.
    pub(super) running: Option<(Option<i64>, CancellationToken)>,
}

/// The schedules-and-jobs service. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) sh: Arc<Shared>,
    /// Job actors by name. A std RwLock held only to clone out or insert a handle;
    /// changes are serialised by `mutate`.
    pub(super) jobs: RwLock<BTreeMap<String, JobHandle>>,
    /// Schedules by name. A std Mutex, never held across `.await`.
    pub(super) schedules: Mutex<BTreeMap<String, Entry>>,
    /// Serialises create/update/delete so the store and the maps agree.
    pub(super) mutate: tokio::sync::Mutex<()>,
    /// Wakes the trigger loop after a schedule changed.
    pub(super) wake: Notify,
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
