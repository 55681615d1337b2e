//! The safe update of an installed server: the `Updater` service behind
//! `/api/programs/{name}/update…`, `warden ctl update` and the automatic checks.
//!
//! What a program was installed from (template, source, build) is kept in its update
//! record (`program_updates`). A check asks the source for its latest build (SteamCMD's
//! app info; Mojang's manifest or PaperMC's builds for Minecraft; a URL source has none).
//! An update is one task per program, never two at once:
//! stage (SteamCMD into `.NAME.update` beside the server while it runs, under the host's
//! one-SteamCMD lock; or the verified jar downloaded there) → wait for the apply condition (empty server; warnings; forced after
//! `max_wait`) → graceful stop → verified backup → apply (changed files swapped in, the
//! replaced ones kept in `.NAME.update-old` with a journal) → start → readiness within
//! `ready_timeout` → `update_succeeded`. A failure after the stop restores: the journal
//! puts the old files back, the backup restores the data, the old build starts, and
//! `update_rolled_back` goes out as a critical notice.
//!
//! Crash safety: the step is committed to the store before each irreversible step, and
//! the journal is on disk before the first file moves. At start, an update left between
//! the stop and a successful readiness check is rolled back the same way (the program is
//! stopped first, so the new build and the old never run together).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use super::template::{Flavor, Source};
use super::{Failure, Installer, download, steamcmd, vdf};
use crate::backup::record::{BackupStatus, RestoreStatus};
use crate::backup::{BackupService, RestoreOptions};
use crate::bus::{Bus, Event, Notice, NoticeField, Severity, Stream};
use crate::games::{Games, GamesError};
use crate::program::State;
use crate::program::update::{ApplyMode, UpdateSpec};
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::{ProgramHandle, Supervisor};
use crate::text_enum::text_enum;

/// How often the waiting step asks the server who is online.
const PLAYER_POLL: Duration = Duration::from_secs(2);
/// How often the check loop looks for programs due a check.
const CHECK_TICK: Duration = Duration::from_secs(15);
/// Longest wait for a backup's verification.
const VERIFY_WAIT: Duration = Duration::from_secs(600);
/// Journal of an apply, inside `.NAME.update-old`.
const JOURNAL: &str = "journal.json";

/// A step of an update under way (persisted: a restarted warden reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The new build is downloaded beside the running server.
    Staging,
    /// Waiting for the apply condition (nobody online, or the forced stop).
    Waiting,
    /// The server is being stopped with its game's stop steps.
    Stopping,
    /// A backup is taken and verified.
    BackingUp,
    /// The changed files are swapped in.
    Applying,
    /// The new build is being started.
    Starting,
    /// Waiting for the new build to become ready.
    Verifying,
    /// Putting the old build and its data back.
    RollingBack,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Staging => "staging",
            Step::Waiting => "waiting",
            Step::Stopping => "stopping",
            Step::BackingUp => "backing_up",
            Step::Applying => "applying",
            Step::Starting => "starting",
            Step::Verifying => "verifying",
            Step::RollingBack => "rolling_back",
        }
    }
}

/// An update under way, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    /// The build being installed.
    pub target_build: String,
    /// Where it is.
    pub step: Step,
    /// The program was running when the update began (it is started again either way).
    pub was_running: bool,
    /// The backup taken before the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<i64>,
    /// Unix ms.
    pub started_ms: i64,
    /// What it waits for (`1 player online`), while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// `warn_then_force`: unix ms of the forced stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_at_ms: Option<i64>,
}

text_enum! {
    /// What the updater does with a program right now.
    pub enum UpdateState {
        /// Nothing.
        Idle = "idle",
        /// Asking the source for the latest build.
        Checking = "checking",
        /// An update is under way.
        Updating = "updating",
    }
}

text_enum! {
    /// How an update ended.
    pub enum UpdateResult {
        /// The new build runs.
        Succeeded = "succeeded",
        /// The new build failed and the old one was put back.
        RolledBack = "rolled_back",
        /// It failed before anything was changed, or could not be undone.
        Failed = "failed",
    }
}

/// How the last update ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Outcome {
    /// `succeeded`, `rolled_back` or `failed`.
    pub result: UpdateResult,
    /// The build it tried to install.
    pub build: String,
    /// What happened, for people.
    pub message: String,
    /// Why it failed (`steam_guard`, `not_ready`, …), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Unix ms.
    pub ts: i64,
}

/// What is known of an installed server's builds (the stored record).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateRecord {
    /// The template it was installed from.
    pub template: String,
    /// Where its files come from.
    pub source: Source,
    /// The installed build (SteamCMD build id; Minecraft version and build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_build: Option<String>,
    /// The latest build the last check found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_build: Option<String>,
    /// Unix ms of the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_ms: Option<i64>,
    /// Why the last check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_error: Option<String>,
    /// Unix ms of the next automatic check (with jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_ms: Option<i64>,
    /// The update under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// How the last update ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Outcome>,
}

/// `GET /api/programs/{name}/update`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdateStatus {
    /// Program name.
    pub program: String,
    /// False for a program not installed from a template: warden knows no source for
    /// it, so it has no updates (check and apply answer 409).
    pub installed_from_template: bool,
    /// Its template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Where its files come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Installed build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    /// Latest build found by the last check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// True when the last check found a build other than the installed one.
    pub update_available: bool,
    /// `idle`, `checking` or `updating`.
    pub state: UpdateState,
    /// The step of the update under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// The update under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// When an update may be applied, in words (`when nobody is online`, …).
    pub next_window: String,
    /// Unix ms of the last check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_ms: Option<i64>,
    /// Why the last check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_error: Option<String>,
    /// Unix ms of the next automatic check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_check_ms: Option<i64>,
    /// How the last update ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Outcome>,
    /// The program's update settings (defaults when it has none).
    pub settings: UpdateSpec,
}

/// Why an update request is refused.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No such program.
    #[error("no program named '{0}'")]
    NotFound(String),
    /// The program was not installed from a template, or its source cannot update.
    #[error("{0}")]
    NotUpdatable(String),
    /// An update or check of it is under way.
    #[error("{0}")]
    Busy(String),
    /// The check failed.
    #[error("{}", .0.message)]
    Check(Failure),
    /// The store failed.
    #[error("cannot read or write the update record: {0}")]
    Store(String),
}

/// How an apply was asked for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Stop at once, without waiting for players to leave.
    #[serde(default)]
    pub now: bool,
    /// A Steam Guard code for the Steam account's login, when the last try failed with
    /// `steam_guard`.
    #[serde(default)]
    pub guard_code: Option<String>,
}

/// The update service. Cheap to clone.
#[derive(Clone)]
pub struct Updater {
    inner: Arc<Inner>,
}

struct Inner {
    installer: Installer,
    store: Store,
    bus: Bus,
    sup: Supervisor,
    games: Games,
    backups: BackupService,
    /// Programs with a check or an update under way.
    busy: std::sync::Mutex<BTreeSet<String>>,
    /// Live state of each busy program (`checking`, `updating`).
    live: std::sync::Mutex<BTreeMap<String, UpdateState>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// One file replaced or added by an apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Change {
    /// Path relative to the server's folder, `/`-separated.
    path: String,
    /// A file of that name existed (it is moved into the old folder).
    existed: bool,
}

/// Releases a program's busy mark when dropped.
struct BusyGuard {
    inner: Arc<Inner>,
    name: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        crate::sync::lock(&self.inner.busy).remove(&self.name);
        crate::sync::lock(&self.inner.live).remove(&self.name);
    }
}

fn steam_failure(e: steamcmd::SteamError) -> Failure {
    Failure::from(e)
}

impl Updater {
    /// The service; [`start`](Self::start) recovers interrupted updates and runs checks.
    pub fn new(
        installer: Installer,
        store: Store,
        bus: Bus,
        sup: Supervisor,
        games: Games,
        backups: BackupService,
        shutdown: CancellationToken,
    ) -> Updater {
        Updater {
            inner: Arc::new(Inner {
                installer,
                store,
                bus,
                sup,
                games,
                backups,
                busy: std::sync::Mutex::new(BTreeSet::new()),
                live: std::sync::Mutex::new(BTreeMap::new()),
                shutdown,
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Rolls back updates a previous warden left between the stop and the readiness
    /// check, then checks programs on their `check_interval`.
    pub fn start(&self) {
        let me = self.clone();
        self.inner.tasks.spawn(async move {
            me.recover_all().await;
            me.check_loop().await;
        });
        let me = self.clone();
        // Subscribed now, so no line printed after the start is missed.
        let events = self.inner.bus.subscribe();
        self.inner
            .tasks
            .spawn(async move { me.announce_loop(events).await });
    }

    /// Watches programs' console output for their `announce_line`: a match records an
    /// `update_announced` event and runs a check (then an update, unless `manual`), at
    /// most once per `announce_debounce` per program.
    async fn announce_loop(&self, mut events: tokio::sync::broadcast::Receiver<Arc<Event>>) {
        use tokio::sync::broadcast::error::RecvError;
        // Per program: its pattern (None: none set), compiled once per definition.
        let mut patterns: BTreeMap<String, Option<regex::Regex>> = BTreeMap::new();
        let mut last: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        loop {
            let ev = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                ev = events.recv() => ev,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "update announcement watcher lagged");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let line = match &*ev {
                Event::Program(c) => {
                    patterns.remove(&c.program);
                    continue;
                }
                Event::Console(line) if line.stream != Stream::Stdin => line,
                _ => continue,
            };
            let re = patterns
                .entry(line.program.clone())
                .or_insert_with(|| self.settings_of(&line.program).announce_regex());
            let Some(re) = re else {
                continue;
            };
            if !re.is_match(&line.text) {
                continue;
            }
            let every = self.settings_of(&line.program).announce_every();
            let now = tokio::time::Instant::now();
            if last
                .get(&line.program)
                .is_some_and(|at| now.duration_since(*at) < every)
            {
                tracing::debug!(program = %line.program, "update announced again within its debounce; no new check");
                continue;
            }
            last.insert(line.program.clone(), now);
            let me = self.clone();
            let program = line.program.clone();
            let text = line.text.clone();
            let shutdown = self.inner.shutdown.clone();
            self.inner.tasks.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = me.announced(&program, &text, every) => {}
                }
            });
        }
    }

    /// `program` printed its update announcement `text`: records it and checks now.
    async fn announced(&self, program: &str, text: &str, every: Duration) {
        self.event(
            program,
            "update_announced",
            Severity::Info,
            format!(
                "the server announced an update on its console ({text:?}); checking now (again at the earliest in {})",
                crate::duration::format(every)
            ),
            serde_json::json!({"line": text}),
        )
        .await;
        let status = match self.check(program).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(program, error = %e, "the update check an announcement asked for failed or was refused");
                return;
            }
        };
        if status.update_available
            && status.settings.apply != ApplyMode::Manual
            && let Err(e) = self.apply(program, ApplyRequest::default()).await
        {
            tracing::warn!(program, error = %e, "cannot start the announced update");
        }
    }

    /// Waits for the service's tasks (after the shutdown token was cancelled).
    pub async fn stopped(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn load(&self, program: &str) -> Result<Option<UpdateRecord>, UpdateError> {
        load(&self.inner.store, program).await
    }

    async fn save(&self, program: &str, rec: &UpdateRecord) -> Result<(), UpdateError> {
        save(&self.inner.store, program, rec).await
    }

    fn handle(&self, program: &str) -> Result<ProgramHandle, UpdateError> {
        self.inner
            .sup
            .get(program)
            .map_err(|_| UpdateError::NotFound(program.to_string()))
    }

    async fn record_of(&self, program: &str) -> Result<UpdateRecord, UpdateError> {
        self.handle(program)?;
        self.load(program).await?.ok_or_else(|| {
            UpdateError::NotUpdatable(format!(
                "'{program}' was not installed from a template, so warden does not know where its updates come from; install it with `warden new --template`"
            ))
        })
    }

    fn settings_of(&self, program: &str) -> UpdateSpec {
        self.inner
            .sup
            .get(program)
            .ok()
            .and_then(|h| h.snapshot().spec.update.clone())
            .unwrap_or_default()
    }

    /// The update status of `program`.
    pub async fn status(&self, program: &str) -> Result<UpdateStatus, UpdateError> {
        self.handle(program)?;
        let settings = self.settings_of(program);
        let Some(rec) = self.load(program).await? else {
            return Ok(UpdateStatus {
                program: program.to_string(),
                installed_from_template: false,
                template: None,
                source: None,
                installed: None,
                available: None,
                update_available: false,
                state: UpdateState::Idle,
                step: None,
                pipeline: None,
                next_window: "never: not installed from a template".into(),
                checked_ms: None,
                check_error: None,
                next_check_ms: None,
                last: None,
                settings,
            });
        };
        let live = crate::sync::lock(&self.inner.live).get(program).copied();
        let state = match (&rec.pipeline, live) {
            (_, Some(s)) => s,
            (Some(_), None) => UpdateState::Updating,
            (None, None) => UpdateState::Idle,
        };
        let next_window = match (&rec.pipeline, settings.apply) {
            (
                Some(Pipeline {
                    force_at_ms: Some(at),
                    ..
                }),
                _,
            ) => {
                format!("when nobody is online, at the latest at {}", rfc3339(*at))
            }
            (_, ApplyMode::WhenEmpty) => "when nobody is online".to_string(),
            (_, ApplyMode::WarnThenForce) => format!(
                "when nobody is online, or after {} with warnings",
                settings.max_wait.as_deref().unwrap_or("max_wait")
            ),
            (_, ApplyMode::Manual) => "when someone applies it".to_string(),
        };
        Ok(UpdateStatus {
            program: program.to_string(),
            update_available: rec.available_build.is_some()
                && rec.available_build != rec.installed_build,
            installed_from_template: true,
            template: Some(rec.template),
            source: Some(rec.source),
            installed: rec.installed_build,
            available: rec.available_build,
            state,
            step: rec.pipeline.as_ref().map(|p| p.step),
            pipeline: rec.pipeline,
            next_window,
            checked_ms: rec.checked_ms,
            check_error: rec.check_error,
            next_check_ms: rec.next_check_ms,
            last: rec.last,
            settings,
        })
    }

    fn mark_busy(&self, program: &str, what: UpdateState) -> Result<BusyGuard, UpdateError> {
        if !crate::sync::lock(&self.inner.busy).insert(program.to_string()) {
            return Err(UpdateError::Busy(format!(
                "an update or check of '{program}' is under way; see `warden ctl update status {program}`"
            )));
        }
        crate::sync::lock(&self.inner.live).insert(program.to_string(), what);
        Ok(BusyGuard {
            inner: self.inner.clone(),
            name: program.to_string(),
        })
    }

    /// Asks the source for the latest build now and answers the new status.
    pub async fn check(&self, program: &str) -> Result<UpdateStatus, UpdateError> {
        let rec = self.record_of(program).await?;
        if rec.pipeline.is_some() {
            return Err(UpdateError::Busy(format!(
                "an update of '{program}' is under way; see `warden ctl update status {program}`"
            )));
        }
        refuse_fixed_source(program, &rec.source)?;
        let guard = self.mark_busy(program, UpdateState::Checking)?;
        let result = self.check_now(program).await;
        drop(guard);
        result?;
        self.status(program).await
    }

    /// The check itself: latest build, stored with the time of the next check.
    async fn check_now(&self, program: &str) -> Result<UpdateRecord, UpdateError> {
        let mut rec = self.record_of(program).await?;
        let latest = self.latest(&rec.source).await;
        let now = now_ms();
        rec.checked_ms = Some(now);
        rec.next_check_ms = self
            .settings_of(program)
            .check_every()
            .map(|d| now + jittered(d));
        match latest {
            Ok(build) => {
                rec.check_error = None;
                if rec.available_build.as_deref() != Some(build.as_str())
                    && rec.installed_build.as_deref() != Some(build.as_str())
                {
                    self.event(
                        program,
                        "update_available",
                        Severity::Info,
                        format!(
                            "build {build} is available (installed: {})",
                            rec.installed_build.as_deref().unwrap_or("unknown")
                        ),
                        serde_json::json!({"build": build, "installed": rec.installed_build}),
                    )
                    .await;
                }
                rec.available_build = Some(build);
                self.save(program, &rec).await?;
                Ok(rec)
            }
            Err(f) => {
                rec.check_error = Some(f.message.clone());
                self.save(program, &rec).await?;
                self.event(
                    program,
                    "update_check_failed",
                    Severity::Warning,
                    format!("update check failed: {}", f.message),
                    serde_json::json!({"code": f.code}),
                )
                .await;
                Err(UpdateError::Check(f))
            }
        }
    }

    /// The latest build of `source`.
    async fn latest(&self, source: &Source) -> Result<String, Failure> {
        match source {
            Source::Steamcmd {
                app,
                branch,
                platform,
                ..
            } => {
                let inst = &self.inner.installer;
                let exe = inst.steamcmd().await?;
                let _one_at_a_time = inst.inner.steam.lock().await;
                steamcmd::latest_build(
                    &exe,
                    *app,
                    branch.as_deref(),
                    *platform,
                    inst.inner.cfg.steamcmd_timeout,
                )
                .await
                .map_err(steam_failure)
            }
            Source::Minecraft {
                flavor, version, ..
            } => self.minecraft_jar(*flavor, version).await.map(|j| j.build),
            Source::Url { .. } => Err(Failure::new(
                "not_supported",
                "a URL source names one file with a fixed checksum, so it has no newer build",
            )),
        }
    }

    /// Where the newest jar of a Minecraft source is, its checksum and its build
    /// (vanilla: the version, `latest` being the manifest's latest release; Paper:
    /// `VERSION-BUILD`, the newest build of the configured version).
    async fn minecraft_jar(&self, flavor: Flavor, version: &str) -> Result<download::Jar, Failure> {
        let inst = &self.inner.installer.inner;
        match flavor {
            Flavor::Vanilla => {
                download::vanilla_jar(&inst.http, &inst.cfg.mojang_url, version).await
            }
            Flavor::Paper => download::paper_jar(&inst.http, &inst.cfg.paper_url, version).await,
        }
    }

    /// Starts an update of `program` to the latest build (checked first) and answers at
    /// once; the update runs in the background.
    pub async fn apply(
        &self,
        program: &str,
        req: ApplyRequest,
    ) -> Result<UpdateStatus, UpdateError> {
        let rec = self.record_of(program).await?;
        if rec.pipeline.is_some() {
            return Err(UpdateError::Busy(format!(
                "an update of '{program}' is under way; see `warden ctl update status {program}`"
            )));
        }
        refuse_fixed_source(program, &rec.source)?;
        let guard = self.mark_busy(program, UpdateState::Updating)?;
        let me = self.clone();
        let name = program.to_string();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                // An update cut short by the shutdown is recovered at the next start.
                _ = shutdown.cancelled() => {}
                _ = me.run(&name, req) => {}
            }
            drop(guard);
        });
        self.status(program).await
    }

    /// Updates `program` in its window and waits for the end (schedules' `update` task).
    pub async fn apply_to_end(&self, program: &str) -> Result<String, String> {
        let before = self
            .load(program)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|r| r.last.map(|l| l.ts));
        self.apply(program, ApplyRequest::default())
            .await
            .map_err(|e| e.to_string())?;
        while crate::sync::lock(&self.inner.busy).contains(program) {
            if self.inner.shutdown.is_cancelled() {
                return Err("warden is stopping; the update is finished at its next start".into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let rec = self.load(program).await.map_err(|e| e.to_string())?;
        match rec {
            Some(UpdateRecord { last: Some(l), .. }) if Some(l.ts) != before => {
                if l.result == UpdateResult::Succeeded {
                    Ok(l.message)
                } else {
                    Err(l.message)
                }
            }
            Some(UpdateRecord {
                check_error: Some(e),
                ..
            }) => Err(format!("update check failed: {e}")),
            Some(r) => Ok(format!(
                "'{program}' is up to date (build {})",
                r.installed_build.unwrap_or_default()
            )),
            None => Err(format!("'{program}' has no update record")),
        }
    }

    /// Checks programs whose `check_interval` has come, and updates those with a new
    /// build whose `apply` is not `manual`.
    async fn check_loop(&self) {
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_TICK) => {}
            }
            let records = match self.inner.store.update_records().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read update records");
                    continue;
                }
            };
            let now = now_ms();
            for (program, text) in records {
                let Ok(rec) = serde_json::from_str::<UpdateRecord>(&text) else {
                    continue;
                };
                let settings = self.settings_of(&program);
                let Some(every) = settings.check_every() else {
                    continue;
                };
                let due = rec
                    .next_check_ms
                    .or(rec.checked_ms.map(|c| c + jittered(every)))
                    .is_none_or(|at| at <= now);
                if !due || rec.pipeline.is_some() || self.inner.sup.get(&program).is_err() {
                    continue;
                }
                let Ok(guard) = self.mark_busy(&program, UpdateState::Checking) else {
                    continue;
                };
                let checked = self.check_now(&program).await;
                drop(guard);
                if let Ok(rec) = checked
                    && rec.available_build.is_some()
                    && rec.available_build != rec.installed_build
                    && settings.apply != ApplyMode::Manual
                    && let Err(e) = self.apply(&program, ApplyRequest::default()).await
                {
                    tracing::warn!(program, error = %e, "cannot start an update");
                }
            }
        }
    }

    /// Stores and publishes one update event.
    async fn event(
        &self,
        program: &str,
        kind: &str,
        severity: Severity,
        message: String,
        data: serde_json::Value,
    ) {
        let ev = NewEvent::now(Some(program), kind, message.clone(), data);
        let ts = ev.ts;
        self.inner.store.record_event(ev).await;
        self.inner.bus.publish(Event::Notice(Notice {
            kind: kind.to_string(),
            severity,
            program: Some(program.to_string()),
            ts,
            summary: message,
            fields: vec![NoticeField {
                name: "Program".into(),
                value: program.to_string(),
            }],
        }));
    }

    /// Commits the step (before the action it names).
    async fn step(&self, program: &str, rec: &mut UpdateRecord, step: Step) -> Result<(), Failure> {
        if let Some(p) = rec.pipeline.as_mut() {
            p.step = step;
            if step != Step::Waiting {
                p.waiting_for = None;
            }
        }
        self.save(program, rec)
            .await
            .map_err(|e| Failure::new("store_failed", e.to_string()))?;
        let build = rec
            .pipeline
            .as_ref()
            .map(|p| p.target_build.clone())
            .unwrap_or_default();
        let text = match step {
            Step::Staging => format!("downloading build {build} beside the running server"),
            Step::Waiting => format!("build {build} is staged; waiting to apply it"),
            Step::Stopping => format!("stopping the server to apply build {build}"),
            Step::BackingUp => "taking a verified backup before the update".to_string(),
            Step::Applying => format!("swapping in the changed files of build {build}"),
            Step::Starting => format!("starting build {build}"),
            Step::Verifying => format!("waiting for build {build} to become ready"),
            Step::RollingBack => "rolling back to the previous build".to_string(),
        };
        self.event(
            program,
            &format!("update_{}", step.as_str()),
            Severity::Info,
            text,
            serde_json::json!({"build": build, "step": step.as_str()}),
        )
        .await;
        Ok(())
    }

    /// One update, start to end.
    async fn run(&self, program: &str, req: ApplyRequest) {
        let mut rec = match self.check_now(program).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(program, error = %e, "update check failed");
                return;
            }
        };
        let Some(target) = rec.available_build.clone() else {
            return;
        };
        if rec.installed_build.as_deref() == Some(target.as_str()) {
            self.event(
                program,
                "update_none",
                Severity::Info,
                format!("build {target} is installed already; nothing to update"),
                serde_json::json!({"build": target}),
            )
            .await;
            return;
        }
        rec.pipeline = Some(Pipeline {
            target_build: target.clone(),
            step: Step::Staging,
            was_running: false,
            backup_id: None,
            started_ms: now_ms(),
            waiting_for: None,
            force_at_ms: None,
        });
        let result = self.pipeline(program, &mut rec, req).await;
        let paths = match self.paths(program) {
            Ok(p) => p,
            Err(f) => {
                tracing::error!(program, error = %f.message, "cannot find the server's folder");
                return;
            }
        };
        match result {
            Ok(()) => {
                rec.installed_build = Some(target.clone());
                rec.pipeline = None;
                rec.last = Some(Outcome {
                    result: UpdateResult::Succeeded,
                    build: target.clone(),
                    message: format!("build {target} is installed and ready"),
                    code: None,
                    ts: now_ms(),
                });
                // The event first: whoever sees the outcome finds its event.
                self.event(
                    program,
                    "update_succeeded",
                    Severity::Info,
                    format!("updated to build {target}; the server is ready"),
                    serde_json::json!({"build": target}),
                )
                .await;
                if let Err(e) = self.save(program, &rec).await {
                    tracing::error!(program, error = %e, "cannot record the update");
                }
                cleanup(&paths).await;
            }
            Err((f, touched)) => {
                self.fail(program, &mut rec, f, touched, &paths).await;
            }
        }
    }

    /// The steps; on failure says whether anything after the stop had begun.
    async fn pipeline(
        &self,
        program: &str,
        rec: &mut UpdateRecord,
        req: ApplyRequest,
    ) -> Result<(), (Failure, bool)> {
        let now = req.now;
        let early = |f: Failure| (f, false);
        let late = |f: Failure| (f, true);
        let settings = self.settings_of(program);
        let paths = self.paths(program).map_err(early)?;
        self.step(program, rec, Step::Staging)
            .await
            .map_err(early)?;
        let staged = match rec.source.clone() {
            Source::Steamcmd {
                app,
                branch,
                platform,
                validate,
            } => {
                let job = StageJob {
                    app,
                    branch,
                    platform,
                    validate,
                };
                self.stage(job, req.guard_code, &paths).await
            }
            Source::Minecraft {
                flavor,
                version,
                jar,
            } => {
                self.stage_jar(program, flavor, &version, &jar, &paths)
                    .await
            }
            Source::Url { .. } => Err(Failure::new(
                "not_supported",
                "a URL source names one file with a fixed checksum, so it has no newer build",
            )),
        }
        .map_err(early)?;
        if let Some(p) = rec.pipeline.as_mut() {
            p.target_build = staged;
        }
        self.step(program, rec, Step::Waiting)
            .await
            .map_err(early)?;
        if !now {
            self.wait_window(program, rec, &settings)
                .await
                .map_err(early)?;
        }
        let h = self
            .handle(program)
            .map_err(|e| early(Failure::new("gone", e.to_string())))?;
        let was_running = h.snapshot().status.state.is_active();
        if let Some(p) = rec.pipeline.as_mut() {
            p.was_running = was_running;
        }
        self.step(program, rec, Step::Stopping)
            .await
            .map_err(early)?;
        stop_and_wait(&h).await.map_err(late)?;
        if settings.backup_first {
            self.step(program, rec, Step::BackingUp)
                .await
                .map_err(late)?;
            let id = self.verified_backup(program, rec).await.map_err(late)?;
            if let Some(p) = rec.pipeline.as_mut() {
                p.backup_id = Some(id);
            }
        }
        // The journal lists what will change before anything does.
        let p = paths.clone();
        let changes = tokio::task::spawn_blocking(move || plan_changes(&p))
            .await
            .map_err(|e| late(Failure::new("apply_failed", e.to_string())))?
            .map_err(late)?;
        self.step(program, rec, Step::Applying)
            .await
            .map_err(late)?;
        let p = paths.clone();
        tokio::task::spawn_blocking(move || apply_changes(&p, &changes))
            .await
            .map_err(|e| late(Failure::new("apply_failed", e.to_string())))?
            .map_err(late)?;
        self.step(program, rec, Step::Starting)
            .await
            .map_err(late)?;
        h.start()
            .await
            .map_err(|e| late(Failure::new("start_failed", e.to_string())))?;
        self.step(program, rec, Step::Verifying)
            .await
            .map_err(late)?;
        let limit = settings.ready_within();
        let snap = h
            .wait_for(limit, |s| {
                matches!(
                    s.state,
                    State::Running | State::Fatal | State::Stopped | State::Crashed
                )
            })
            .await;
        match snap.status.state {
            State::Running => {
                // A server that was stopped before its update is left stopped, now that
                // its new build has proven it starts.
                if !was_running {
                    stop_and_wait(&h).await.map_err(late)?;
                }
                Ok(())
            }
            other => Err(late(Failure::new(
                "not_ready",
                format!(
                    "the new build did not become ready within {} (it is {})",
                    crate::duration::format(limit),
                    other.as_str()
                ),
            ))),
        }
    }

    /// Folders of `program`'s update.
    fn paths(&self, program: &str) -> Result<UpdatePaths, Failure> {
        let h = self
            .handle(program)
            .map_err(|e| Failure::new("gone", e.to_string()))?;
        let snap = h.snapshot();
        let Some(cwd) = snap.spec.cwd.as_deref() else {
            return Err(Failure::new(
                "no_folder",
                format!("program '{program}' has no working directory (cwd) to update"),
            ));
        };
        let dir = std::path::absolute(cwd).unwrap_or_else(|_| PathBuf::from(cwd));
        UpdatePaths::of(&dir)
    }

    /// SteamCMD into the staging folder (a copy of the server's SteamCMD state, so only
    /// what changed is downloaded); answers the staged build.
    async fn stage(
        &self,
        StageJob {
            app,
            branch,
            platform,
            validate,
        }: StageJob,
        guard_code: Option<String>,
        paths: &UpdatePaths,
    ) -> Result<String, Failure> {
        let p = paths.clone();
        tokio::task::spawn_blocking(move || prepare_staging(&p))
            .await
            .map_err(|e| Failure::new("write_failed", e.to_string()))??;
        let inst = &self.inner.installer;
        let job = steamcmd::SteamJob {
            login: inst.login(guard_code).await?,
            steamcmd: inst.steamcmd().await?,
            app,
            branch,
            platform,
            validate,
            dir: paths.staging.clone(),
            timeout: inst.inner.cfg.steamcmd_timeout,
        };
        let _one_at_a_time = inst.inner.steam.lock().await;
        let mut ignore = |_p: steamcmd::Progress| {};
        steamcmd::run_once(&job, &mut ignore)
            .await
            .map_err(steam_failure)?;
        let manifest = steamcmd::manifest_path(&paths.staging, app);
        let text = tokio::fs::read_to_string(&manifest).await.map_err(|e| {
            Failure::new(
                "steamcmd_failed",
                format!("cannot read {}: {e}", manifest.display()),
            )
        })?;
        vdf::manifest_build_id(&text).map_err(|e| {
            Failure::new(
                "steamcmd_failed",
                format!("{} is not a readable app manifest: {e}", manifest.display()),
            )
        })
    }

    /// The newest verified jar into an empty staging folder (downloaded under a
    /// temporary name there, renamed when its checksum matches; the running server's
    /// jar is untouched); answers its build. The apply then swaps in just the jar.
    async fn stage_jar(
        &self,
        program: &str,
        flavor: Flavor,
        version: &str,
        jar: &str,
        paths: &UpdatePaths,
    ) -> Result<String, Failure> {
        let p = paths.clone();
        tokio::task::spawn_blocking(move || {
            remove_dir(&p.staging);
            std::fs::create_dir_all(&p.staging).map_err(|e| io_failure("create", &p.staging, e))
        })
        .await
        .map_err(|e| Failure::new("write_failed", e.to_string()))??;
        let found = self.minecraft_jar(flavor, version).await?;
        // Before the download and long before the stop: can the server's Java run it?
        let command = self
            .handle(program)
            .map_err(|e| Failure::new("gone", e.to_string()))?
            .snapshot()
            .spec
            .command
            .clone();
        self.inner
            .installer
            .check_java(&command, &found, false)
            .await?;
        download::fetch_verified(
            &self.inner.installer.inner.http,
            &found.url,
            &found.sum,
            &paths.staging,
            jar,
        )
        .await?;
        Ok(found.build)
    }

    /// Waits until the update may be applied: nobody online (warned once while waiting),
    /// or, with `warn_then_force`, the forced stop after `max_wait` with warnings.
    async fn wait_window(
        &self,
        program: &str,
        rec: &mut UpdateRecord,
        settings: &UpdateSpec,
    ) -> Result<(), Failure> {
        let start = now_ms();
        let force_at = match settings.apply {
            ApplyMode::WarnThenForce => settings
                .max_wait_time()
                .map(|d| start + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)),
            _ => None,
        };
        let mut warnings: Vec<u64> = settings.warn_seconds();
        let mut told = false;
        let mut last_waiting: Option<String> = None;
        loop {
            let h = self
                .handle(program)
                .map_err(|e| Failure::new("gone", e.to_string()))?;
            if !h.snapshot().status.state.is_active() {
                return Ok(());
            }
            let online = match self.inner.games.players(program).await {
                Ok(p) => Some(p.online),
                // Without a query warden cannot know who plays: apply at once.
                Err(GamesError::NotConfigured(_)) => return Ok(()),
                Err(e) => {
                    tracing::debug!(program, error = %e, "players unknown while waiting to update");
                    None
                }
            };
            if online == Some(0) {
                return Ok(());
            }
            let now = now_ms();
            if let Some(at) = force_at {
                // Seconds left, rounded up: a warning due now reads its own lead time.
                let left = u64::try_from((at - now).max(0)).unwrap_or(0).div_ceil(1000);
                while warnings.first().is_some_and(|w| *w >= left) {
                    let w = warnings.remove(0);
                    let text = format!(
                        "An update is coming: {}",
                        crate::games::stop::warning_text(true, w.min(left.max(1)))
                    );
                    let _ = self.inner.games.broadcast(program, &text).await;
                    self.event(
                        program,
                        "update_warned",
                        Severity::Info,
                        format!("players told: {text}"),
                        serde_json::json!({"seconds": w}),
                    )
                    .await;
                }
                if now >= at {
                    return Ok(());
                }
            }
            let waiting = match online {
                Some(1) => "1 player online".to_string(),
                Some(n) => format!("{n} players online"),
                None => "the server to answer who is online".to_string(),
            };
            if !told && online.is_some() {
                told = true;
                let text = "A server update is ready: it is applied when everyone has left";
                let _ = self.inner.games.broadcast(program, text).await;
                self.event(
                    program,
                    "update_warned",
                    Severity::Info,
                    format!("waiting for {waiting}; players told: {text}"),
                    serde_json::json!({"players": online}),
                )
                .await;
            }
            if last_waiting.as_deref() != Some(waiting.as_str()) {
                if let Some(p) = rec.pipeline.as_mut() {
                    p.waiting_for = Some(waiting.clone());
                    p.force_at_ms = force_at;
                }
                if let Err(e) = self.save(program, rec).await {
                    tracing::warn!(program, error = %e, "cannot record the wait");
                }
                last_waiting = Some(waiting);
            }
            // Wake for the next warning or the forced stop if it comes before the next poll.
            let mut nap = PLAYER_POLL;
            if let Some(at) = force_at {
                let next = warnings
                    .first()
                    .map_or(at, |w| at - i64::try_from(*w * 1000).unwrap_or(0));
                let until = u64::try_from((next - now_ms()).max(0)).unwrap_or(0);
                nap = nap.min(Duration::from_millis(until));
            }
            tokio::time::sleep(nap).await;
        }
    }

    /// A backup of `program` that has been read back against its manifest.
    async fn verified_backup(&self, program: &str, rec: &mut UpdateRecord) -> Result<i64, Failure> {
        let build = rec
            .pipeline
            .as_ref()
            .map(|p| p.target_build.clone())
            .unwrap_or_default();
        let b = &self.inner.backups;
        let fail = |m: String| Failure::new("backup_failed", m);
        let done = b
            .run_to_end(
                program,
                crate::backup::BackupOptions {
                    reason: format!("before the update to build {build}"),
                },
            )
            .await
            .map_err(|e| fail(format!("the backup before the update failed: {e}")))?;
        if done.status != BackupStatus::Ok {
            return Err(fail(format!(
                "the backup before the update failed: {}",
                done.error.unwrap_or_else(|| done.status.to_string())
            )));
        }
        if let Some(p) = rec.pipeline.as_mut() {
            p.backup_id = Some(done.id);
        }
        b.verify(done.id)
            .await
            .map_err(|e| fail(format!("cannot verify backup {}: {e}", done.id)))?;
        let deadline = tokio::time::Instant::now() + VERIFY_WAIT;
        loop {
            let v = b
                .get(done.id)
                .await
                .map_err(|e| fail(format!("cannot read backup {}: {e}", done.id)))?;
            if v.verifying.is_none() && v.record.verified_at.is_some() {
                return match v.record.verify_ok {
                    Some(true) => Ok(done.id),
                    _ => Err(fail(format!(
                        "backup {} does not match its manifest; the update was not applied",
                        done.id
                    ))),
                };
            }
            if tokio::time::Instant::now() > deadline {
                return Err(fail(format!("backup {} was not verified in time", done.id)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// After a failure: nothing changed (before the stop) → the update is dropped and the
    /// server left as it was; later → rolled back (or stopped, with `rollback = false`).
    async fn fail(
        &self,
        program: &str,
        rec: &mut UpdateRecord,
        f: Failure,
        touched: bool,
        paths: &UpdatePaths,
    ) {
        let build = rec
            .pipeline
            .as_ref()
            .map(|p| p.target_build.clone())
            .unwrap_or_default();
        tracing::warn!(program, code = %f.code, error = %f.message, "update failed");
        if !touched {
            rec.pipeline = None;
            rec.last = Some(Outcome {
                result: UpdateResult::Failed,
                build: build.clone(),
                message: f.message.clone(),
                code: Some(f.code.clone()),
                ts: now_ms(),
            });
            self.event(
                program,
                "update_failed",
                Severity::Warning,
                format!(
                    "the update to build {build} failed before the server was touched: {}",
                    f.message
                ),
                serde_json::json!({"build": build, "code": f.code}),
            )
            .await;
            if let Err(e) = self.save(program, rec).await {
                tracing::error!(program, error = %e, "cannot record the update's failure");
            }
            cleanup(paths).await;
            return;
        }
        if !self.settings_of(program).rollback {
            rec.pipeline = None;
            rec.last = Some(Outcome {
                result: UpdateResult::Failed,
                build: build.clone(),
                message: f.message.clone(),
                code: Some(f.code.clone()),
                ts: now_ms(),
            });
            if let Ok(h) = self.handle(program) {
                let _ = stop_and_wait(&h).await;
            }
            self.event(
                program,
                "update_failed",
                Severity::Critical,
                format!("the update to build {build} failed and rollback is off; the server is stopped: {}", f.message),
                serde_json::json!({"build": build, "code": f.code}),
            )
            .await;
            if let Err(e) = self.save(program, rec).await {
                tracing::error!(program, error = %e, "cannot record the update's failure");
            }
            return;
        }
        self.rollback(program, rec, &f.message).await;
    }

    /// Puts the old build and its data back and starts it (if it ran before).
    async fn rollback(&self, program: &str, rec: &mut UpdateRecord, why: &str) {
        let Some(p) = rec.pipeline.clone() else {
            return;
        };
        let build = p.target_build.clone();
        let reached = p.step;
        if let Err(e) = self.step(program, rec, Step::RollingBack).await {
            tracing::error!(program, error = %e.message, "cannot record the rollback step");
        }
        let mut problems = Vec::new();
        let h = match self.handle(program) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(program, error = %e, "program gone during rollback");
                return;
            }
        };
        if let Err(e) = stop_and_wait(&h).await {
            problems.push(e.message);
        }
        match self.paths(program) {
            Ok(paths) => {
                let pp = paths.clone();
                match tokio::task::spawn_blocking(move || undo_changes(&pp)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(f)) => problems.push(f.message),
                    Err(e) => problems.push(e.to_string()),
                }
                // The new build may have written to the data once it ran.
                if reached >= Step::Starting
                    && let Some(id) = p.backup_id
                    && let Err(m) = self.restore(id).await
                {
                    problems.push(m);
                }
                cleanup(&paths).await;
            }
            Err(f) => problems.push(f.message),
        }
        if p.was_running
            && let Err(e) = h.start().await
        {
            problems.push(format!("cannot start the old build: {e}"));
        }
        rec.pipeline = None;
        let message = if problems.is_empty() {
            format!(
                "the update to build {build} failed ({why}); rolled back to build {}",
                rec.installed_build.as_deref().unwrap_or("before")
            )
        } else {
            format!(
                "the update to build {build} failed ({why}); rolled back with problems: {}",
                problems.join("; ")
            )
        };
        rec.last = Some(Outcome {
            result: UpdateResult::RolledBack,
            build: build.clone(),
            message: message.clone(),
            code: Some("rolled_back".into()),
            ts: now_ms(),
        });
        self.event(
            program,
            "update_rolled_back",
            Severity::Critical,
            message,
            serde_json::json!({"build": build, "installed": rec.installed_build, "problems": problems}),
        )
        .await;
        if let Err(e) = self.save(program, rec).await {
            tracing::error!(program, error = %e, "cannot record the rollback");
        }
    }

    /// Restores backup `id` into its program (stopped) and waits for the end.
    async fn restore(&self, id: i64) -> Result<(), String> {
        let b = &self.inner.backups;
        let view = b
            .restore(id, RestoreOptions { stop: false })
            .await
            .map_err(|e| format!("cannot restore backup {id}: {e}"))?;
        let rid = view.record.id;
        let deadline = tokio::time::Instant::now() + VERIFY_WAIT;
        loop {
            let r = b
                .get_restore(rid)
                .await
                .map_err(|e| format!("cannot read restore {rid}: {e}"))?;
            match r.record.status {
                RestoreStatus::Running => {}
                RestoreStatus::Ok => {
                    // The broken build's data is not worth keeping.
                    if let Err(e) = b.discard_rollback(rid).await {
                        tracing::warn!(error = %e, "cannot discard the restore's rollback copy");
                    }
                    return Ok(());
                }
                other => {
                    return Err(format!(
                        "restore {rid} of backup {id} ended {other}: {}",
                        r.record.error.unwrap_or_default()
                    ));
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "restore {rid} of backup {id} did not finish in time"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// At start: every update a previous warden left under way is ended. Before the stop
    /// nothing changed (the staging folder goes); after it, the update is rolled back.
    async fn recover_all(&self) {
        let records = match self.inner.store.update_records().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read update records; interrupted updates are not recovered");
                return;
            }
        };
        for (program, text) in records {
            let Ok(mut rec) = serde_json::from_str::<UpdateRecord>(&text) else {
                tracing::warn!(program, "unreadable update record");
                continue;
            };
            let Some(p) = rec.pipeline.clone() else {
                continue;
            };
            if self.inner.sup.get(&program).is_err() {
                continue;
            }
            let Ok(guard) = self.mark_busy(&program, UpdateState::Updating) else {
                continue;
            };
            tracing::warn!(
                program,
                step = p.step.as_str(),
                "an update was interrupted; recovering"
            );
            if p.step <= Step::Waiting {
                rec.pipeline = None;
                if let Err(e) = self.save(&program, &rec).await {
                    tracing::error!(program, error = %e, "cannot record the recovery");
                }
                if let Ok(paths) = self.paths(&program) {
                    cleanup(&paths).await;
                }
                self.event(
                    &program,
                    "update_interrupted",
                    Severity::Warning,
                    format!(
                        "the update to build {} was interrupted by warden's restart before the server was touched; it is tried again at the next check or apply",
                        p.target_build
                    ),
                    serde_json::json!({"build": p.target_build}),
                )
                .await;
            } else {
                self.rollback(&program, &mut rec, "warden stopped in the middle of it")
                    .await;
            }
            drop(guard);
        }
    }
}

/// Refuses a check or update of a source that has no newer builds (a URL with a fixed
/// checksum).
fn refuse_fixed_source(program: &str, source: &Source) -> Result<(), UpdateError> {
    match source {
        Source::Url { url, .. } => Err(UpdateError::NotUpdatable(format!(
            "'{program}' was installed from {url}, one file with a fixed checksum, so there is no newer build to look for; to update it, point its template at the new file (url and sha256) and install it again"
        ))),
        Source::Steamcmd { .. } | Source::Minecraft { .. } => Ok(()),
    }
}

/// Records a fresh install's template, source and build.
pub async fn save_installed(
    store: &Store,
    program: &str,
    template: &str,
    source: Source,
    build: Option<String>,
) {
    let rec = UpdateRecord {
        template: template.to_string(),
        source,
        installed_build: build,
        available_build: None,
        checked_ms: None,
        check_error: None,
        next_check_ms: None,
        pipeline: None,
        last: None,
    };
    if let Err(e) = save(store, program, &rec).await {
        tracing::error!(program, error = %e, "cannot record what was installed; updates will not know it");
    }
}

async fn load(store: &Store, program: &str) -> Result<Option<UpdateRecord>, UpdateError> {
    let Some(text) = store
        .update_record(program)
        .await
        .map_err(|e| UpdateError::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        UpdateError::Store(format!(
            "the update record of '{program}' is unreadable: {e}"
        ))
    })
}

async fn save(store: &Store, program: &str, rec: &UpdateRecord) -> Result<(), UpdateError> {
    let text = serde_json::to_string(rec).map_err(|e| UpdateError::Store(e.to_string()))?;
    store
        .put_update_record(program, text, now_ms())
        .await
        .map_err(|e| UpdateError::Store(e.to_string()))
}

/// `d` plus up to a tenth of it, in ms.
fn jittered(d: Duration) -> i64 {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
    let extra = if ms >= 10 {
        rand::random_range(0..ms / 10)
    } else {
        0
    };
    ms + extra
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Stops a program with its game's stop steps and waits until no process is left.
async fn stop_and_wait(h: &ProgramHandle) -> Result<(), Failure> {
    let snap = h.snapshot();
    if !snap.status.state.is_active() && snap.status.state != State::Backoff {
        return Ok(());
    }
    h.stop()
        .await
        .map_err(|e| Failure::new("stop_failed", format!("cannot stop the server: {e}")))?;
    let limit = Duration::from_secs(snap.spec.stop.timeout_seconds.saturating_add(30));
    let snap = h.wait_for(limit, |s| !s.state.is_active()).await;
    if snap.status.state.is_active() {
        return Err(Failure::new(
            "stop_failed",
            format!("the server did not stop within {} s", limit.as_secs()),
        ));
    }
    Ok(())
}

/// What SteamCMD stages: the source's app, branch, platform and validation.
struct StageJob {
    app: u32,
    branch: Option<String>,
    platform: Option<steamcmd::Platform>,
    validate: bool,
}

/// The folders of one program's update, beside its folder.
#[derive(Debug, Clone)]
struct UpdatePaths {
    /// The server's folder.
    dir: PathBuf,
    /// `.NAME.update`: the new build, downloaded while the server runs.
    staging: PathBuf,
    /// `.NAME.update-old`: the replaced files and the journal.
    old: PathBuf,
}

impl UpdatePaths {
    fn of(dir: &Path) -> Result<UpdatePaths, Failure> {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(Failure::new(
                "no_folder",
                format!(
                    "{} has no parent folder to stage an update in",
                    dir.display()
                ),
            ));
        };
        let name = name.to_string_lossy();
        Ok(UpdatePaths {
            dir: dir.to_path_buf(),
            staging: parent.join(format!(".{name}.update")),
            old: parent.join(format!(".{name}.update-old")),
        })
    }
}

fn io_failure(what: &str, p: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        "write_failed",
        format!(
            "cannot {what} {}: {e}; check free space and permissions",
            p.display()
        ),
    )
}

/// A fresh staging folder holding the server's SteamCMD state (`steamapps`) so SteamCMD
/// downloads only what changed.
fn prepare_staging(p: &UpdatePaths) -> Result<(), Failure> {
    remove_dir(&p.staging);
    std::fs::create_dir_all(&p.staging).map_err(|e| io_failure("create", &p.staging, e))?;
    let apps = p.dir.join("steamapps");
    if apps.is_dir() {
        copy_tree(&apps, &p.staging.join("steamapps"))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(to).map_err(|e| io_failure("create", to, e))?;
    let rd = std::fs::read_dir(from).map_err(|e| io_failure("read", from, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_failure("read", from, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| io_failure("read", &entry.path(), e))?;
        let dst = to.join(entry.file_name());
        if ft.is_dir() {
            copy_tree(&entry.path(), &dst)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &dst).map_err(|e| io_failure("copy", &dst, e))?;
        }
    }
    Ok(())
}

fn remove_dir(p: &Path) {
    if let Err(e) = std::fs::remove_dir_all(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove an update folder");
    }
}

async fn cleanup(p: &UpdatePaths) {
    let p = p.clone();
    let _ = tokio::task::spawn_blocking(move || {
        remove_dir(&p.staging);
        remove_dir(&p.old);
    })
    .await;
}

/// Every regular file under `root`, relative, `/`-separated (symlinks are skipped).
fn files_under(root: &Path) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| io_failure("read", &dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| io_failure("read", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry
                .file_type()
                .map_err(|e| io_failure("read", &entry.path(), e))?;
            if ft.is_dir() {
                stack.push((entry.path(), r));
            } else if ft.is_file() {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn join(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, s| p.join(s))
}

fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    if ma.len() != mb.len() || !mb.is_file() {
        return false;
    }
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = match fa.read(&mut ba) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if na == 0 {
            return true;
        }
        if fb.read_exact(&mut bb[..na]).is_err() || ba[..na] != bb[..na] {
            return false;
        }
    }
}

/// Lists the staged files that differ from the server's and writes the journal (synced)
/// into a fresh old folder; nothing in the server's folder has changed yet.
fn plan_changes(p: &UpdatePaths) -> Result<Vec<Change>, Failure> {
    let mut changes = Vec::new();
    for rel in files_under(&p.staging)? {
        let dst = join(&p.dir, &rel);
        if same_content(&join(&p.staging, &rel), &dst) {
            continue;
        }
        changes.push(Change {
            existed: std::fs::symlink_metadata(&dst).is_ok(),
            path: rel,
        });
    }
    remove_dir(&p.old);
    std::fs::create_dir_all(&p.old).map_err(|e| io_failure("create", &p.old, e))?;
    let journal = p.old.join(JOURNAL);
    let text =
        serde_json::to_vec(&changes).map_err(|e| Failure::new("apply_failed", e.to_string()))?;
    write_synced(&journal, &text)?;
    crate::os::sync_dir_path(&p.old).map_err(|e| io_failure("sync", &p.old, e))?;
    Ok(changes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| io_failure("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| io_failure("write", path, e))?;
    f.sync_all().map_err(|e| io_failure("sync", path, e))
}

/// Moves each replaced file into the old folder and copies the staged one in (under a
/// temporary name, synced, then renamed), so a crash leaves every file either old or new.
fn apply_changes(p: &UpdatePaths, changes: &[Change]) -> Result<(), Failure> {
    for c in changes {
        let src = join(&p.staging, &c.path);
        let dst = join(&p.dir, &c.path);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_failure("create", parent, e))?;
        }
        let tmp = dst.with_file_name(format!(
            ".{}.warden-update",
            dst.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::fs::copy(&src, &tmp).map_err(|e| io_failure("copy the new build to", &tmp, e))?;
        crate::os::sync_file_path(&tmp).map_err(|e| io_failure("sync", &tmp, e))?;
        if c.existed {
            let keep = join(&p.old, &format!("files/{}", c.path));
            if let Some(parent) = keep.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_failure("create", parent, e))?;
            }
            if std::fs::symlink_metadata(&keep).is_err() {
                // Hard link first: the old file stays in place until the rename replaces it.
                std::fs::hard_link(&dst, &keep)
                    .or_else(|_| std::fs::copy(&dst, &keep).map(|_| ()))
                    .map_err(|e| io_failure("keep the old file as", &keep, e))?;
                if let Some(parent) = keep.parent() {
                    crate::os::sync_dir_path(parent).map_err(|e| io_failure("sync", parent, e))?;
                }
            }
        }
        std::fs::rename(&tmp, &dst).map_err(|e| io_failure("replace", &dst, e))?;
        if let Some(parent) = dst.parent() {
            crate::os::sync_dir_path(parent).map_err(|e| io_failure("sync", parent, e))?;
        }
    }
    Ok(())
}

/// Undoes an apply from its journal (also one a crash cut short): kept old files go back,
/// added files go. Idempotent. Without a journal nothing was changed.
fn undo_changes(p: &UpdatePaths) -> Result<(), Failure> {
    let journal = p.old.join(JOURNAL);
    let text = match std::fs::read(&journal) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_failure("read", &journal, e)),
    };
    let changes: Vec<Change> = serde_json::from_slice(&text).map_err(|e| {
        Failure::new(
            "rollback_failed",
            format!("{} is unreadable: {e}", journal.display()),
        )
    })?;
    for c in &changes {
        let dst = join(&p.dir, &c.path);
        let tmp = dst.with_file_name(format!(
            ".{}.warden-update",
            dst.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let _ = std::fs::remove_file(&tmp);
        if c.existed {
            let keep = join(&p.old, &format!("files/{}", c.path));
            if std::fs::symlink_metadata(&keep).is_ok() {
                std::fs::rename(&keep, &dst).map_err(|e| io_failure("put back", &dst, e))?;
            }
            // No kept copy: the crash came before this file was touched.
        } else if let Err(e) = std::fs::remove_file(&dst)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_failure("remove the added file", &dst, e));
        }
        if let Some(parent) = dst.parent() {
            let _ = crate::os::sync_dir_path(parent);
        }
    }
    std::fs::remove_file(&journal).map_err(|e| io_failure("remove", &journal, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apply_is_undone_to_the_byte_even_when_cut_short() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("srv");
        std::fs::create_dir_all(dir.join("saves")).expect("mkdir");
        std::fs::write(dir.join("server.sh"), "old").expect("write");
        std::fs::write(dir.join("same.pak"), "same").expect("write");
        std::fs::write(dir.join("saves/world.dat"), "world").expect("write");
        let p = UpdatePaths::of(&dir).expect("paths");
        std::fs::create_dir_all(p.staging.join("lib")).expect("mkdir");
        std::fs::write(p.staging.join("server.sh"), "new").expect("write");
        std::fs::write(p.staging.join("same.pak"), "same").expect("write");
        std::fs::write(p.staging.join("lib/added.so"), "added").expect("write");

        let changes = plan_changes(&p).expect("plan");
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["lib/added.so", "server.sh"]);
        apply_changes(&p, &changes).expect("apply");
        assert_eq!(
            std::fs::read_to_string(dir.join("server.sh")).expect("read"),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("lib/added.so")).expect("read"),
            "added"
        );
        undo_changes(&p).expect("undo");
        assert_eq!(
            std::fs::read_to_string(dir.join("server.sh")).expect("read"),
            "old"
        );
        assert!(!dir.join("lib/added.so").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("saves/world.dat")).expect("read"),
            "world"
        );
        // A second undo (a crash during the first) changes nothing.
        undo_changes(&p).expect("undo again");
        assert_eq!(
            std::fs::read_to_string(dir.join("server.sh")).expect("read"),
            "old"
        );

        // Cut short after the journal, before any file moved: the undo leaves all as is.
        let changes = plan_changes(&p).expect("plan");
        apply_changes(&p, &changes[..1]).expect("apply part");
        undo_changes(&p).expect("undo part");
        assert_eq!(
            std::fs::read_to_string(dir.join("server.sh")).expect("read"),
            "old"
        );
        assert!(!dir.join("lib/added.so").exists());
    }
}
