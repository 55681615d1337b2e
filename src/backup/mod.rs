//! The backup service: verified, never-half-written snapshots of a program's working
//! directory, with consistency steps, retention, verification and restore.
//!
//! Flow of a backup (`BackupService::run`): a row is written (`running`), then a task
//! takes a slot (`backup.max_concurrent`), makes the data consistent (pre steps such as
//! `save-off`/`save-all`, or stopping the program), has a dedicated low-priority thread
//! write and verify the archive (`archive::create`), then ALWAYS runs the post steps (or
//! starts the program again), records the outcome, and applies the retention policy.
//!
//! Architecture invariant: this module talks to programs only through `ProgramHandle`
//! (`send_input`, `stop`, `start`) and the bus; it never touches a child process. It owns
//! every file under backup destinations and the staging/rollback directories of restores.
//! At most one backup or restore runs per program; a backup in use by a running restore
//! (or verification) is never pruned or deleted.

pub mod archive;
mod error;
pub mod manifest;
mod restore;
pub mod retention;
pub mod settings;
mod steps;
mod walk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::bus::{BackupActivity, BackupActivityKind, Bus, Event};
use crate::config::Config;
use crate::os;
use crate::program::State;
use crate::store::backups::{BackupOutcome, BackupRecord, Mismatch, RestoreRecord};
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::{ProgramHandle, Supervisor};
use crate::sync::lock;
use archive::{Control, CreateSpec, Phase, Progress};
pub use error::BackupError;
use manifest::{MANIFEST_FILE, Manifest};
use settings::BackupSettings;

/// Identifies a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct BackupId(pub i64);

/// How a backup was asked for.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Who or what asked (`manual by alice`, `schedule nightly`), shown in the list.
    pub reason: String,
}

/// How a restore is to be done.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Stop a running program first (and start it again afterwards) instead of refusing.
    pub stop: bool,
}

/// A backup with what is going on with it right now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupView {
    /// The stored record.
    #[serde(flatten)]
    pub record: BackupRecord,
    /// Live progress while the backup runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Live progress while a verification runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifying: Option<Progress>,
}

/// A restore with its live progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestoreView {
    /// The stored record.
    #[serde(flatten)]
    pub record: RestoreRecord,
    /// Live progress while the restore runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// An opened archive for download.
pub struct ArchiveFile {
    /// The open file.
    pub file: tokio::fs::File,
    /// Its size.
    pub size: u64,
    /// Its file name.
    pub name: String,
}

/// What occupies a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// A backup is being set up (its row is being written).
    Reserving,
    /// A backup with this id runs.
    Backup(i64),
    /// A restore with this id runs.
    Restore(i64),
}

struct Busy {
    activity: Activity,
    cancel: CancellationToken,
    progress: watch::Receiver<Progress>,
}

/// Who uses a backup's files right now.
#[derive(Default)]
struct Use {
    /// Running restores and verifications reading it.
    readers: usize,
    /// It is being deleted or pruned.
    deleting: bool,
}

/// Cheap-to-clone handle to the backup service.
#[derive(Clone)]
pub struct BackupService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bus: Bus,
    sup: Supervisor,
    data_dir: PathBuf,
    root: PathBuf,
    zstd_threads: u32,
    /// Lower the priority of worker threads (`backup.low_priority`).
    low_priority: bool,
    /// Bounds backups running at once; waiting ones are at most one per program (a
    /// program runs one backup at a time), so the queue is bounded by the program count.
    slots: Arc<Semaphore>,
    /// Programs with a running backup or restore. std Mutex: held only to look up or
    /// change an entry, never across `.await`.
    busy: Mutex<HashMap<String, Busy>>,
    /// Backups in use (same locking rule).
    uses: Mutex<HashMap<i64, Use>>,
    /// Running verifications by backup id (same locking rule).
    verifying: Mutex<HashMap<i64, watch::Receiver<Progress>>>,
    tasks: TaskTracker,
    /// Cancelled at shutdown; every job's token is a child.
    shutdown: CancellationToken,
}

/// Releases a reader of a backup's files when dropped.
struct ReadGuard {
    svc: BackupService,
    id: i64,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut uses = lock(&self.svc.inner.uses);
        if let Some(u) = uses.get_mut(&self.id) {
            u.readers = u.readers.saturating_sub(1);
            if u.readers == 0 && !u.deleting {
                uses.remove(&self.id);
            }
        }
    }
}

/// Frees a program for the next backup or restore when dropped.
struct BusyGuard {
    svc: BackupService,
    program: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        lock(&self.svc.inner.busy).remove(&self.program);
    }
}

/// What include/exclude globs cover in a program's working directory now.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BackupPreview {
    /// Files covered.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The first covered files, relative to the working directory, in backup order.
    pub sample: Vec<String>,
    /// True when more files are covered than `sample` lists.
    pub truncated: bool,
}

/// Runs `f` on a new thread, with lowered CPU and IO priority when `low` (not on tokio's
/// blocking pool, whose threads are reused: a lowered priority would leak into unrelated
/// work).
async fn on_worker_thread<T: Send + 'static>(
    name: String,
    low: bool,
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if low && let Err(e) = os::lowest_thread_priority() {
                tracing::debug!(error = %e, "cannot lower the backup thread's priority");
            }
            let _ = tx.send(f());
        })
        .map_err(|e| BackupError::Failed(format!("cannot start a backup thread: {e}")))?;
    rx.await
        .map_err(|_| BackupError::Failed("the backup thread stopped unexpectedly".into()))?
}

/// The directory a program's backups are taken of (its working directory).
fn source_dir(handle: &ProgramHandle) -> Result<PathBuf, BackupError> {
    let snap = handle.snapshot();
    let Some(cwd) = snap.spec.cwd.as_deref() else {
        return Err(BackupError::Conflict(format!(
            "program '{}' has no working directory (cwd); backups copy a program's working directory, so set one",
            handle.name()
        )));
    };
    std::path::absolute(cwd).map_err(|e| BackupError::io("cannot resolve", Path::new(cwd), e))
}

/// Waits until the program has no process (after a stop), within `limit`.
async fn wait_stopped(handle: &ProgramHandle, limit: Duration) -> Result<(), BackupError> {
    let snap = handle.wait_for(limit, |s| !s.state.is_active()).await;
    if snap.status.state.is_active() {
        return Err(BackupError::Failed(format!(
            "program '{}' did not stop within {} s",
            handle.name(),
            limit.as_secs()
        )));
    }
    Ok(())
}

fn stop_limit(handle: &ProgramHandle) -> Duration {
    Duration::from_secs(handle.snapshot().spec.stop.timeout_seconds + 15)
}

impl BackupService {
    /// Creates the service and cleans up after an unclean stop: backups left `running`
    /// become `interrupted`, unfinished `.partial-` directories are removed, interrupted
    /// restores are completed or undone.
    pub async fn start(
        store: Store,
        bus: Bus,
        sup: Supervisor,
        cfg: &Config,
        shutdown: &CancellationToken,
    ) -> Result<BackupService, BackupError> {
        let svc = BackupService {
            inner: Arc::new(Inner {
                store,
                bus,
                sup,
                data_dir: cfg.data_dir.clone(),
                root: cfg.backup.root(&cfg.data_dir),
                zstd_threads: cfg.backup.zstd_threads,
                low_priority: cfg.backup.low_priority,
                slots: Arc::new(Semaphore::new(cfg.backup.max_concurrent.max(1))),
                busy: Mutex::new(HashMap::new()),
                uses: Mutex::new(HashMap::new()),
                verifying: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                shutdown: shutdown.child_token(),
            }),
        };
        svc.recover().await?;
        Ok(svc)
    }

    async fn recover(&self) -> Result<(), BackupError> {
        let store = &self.inner.store;
        for rec in store.interrupt_running_backups().await? {
            self.record(
                &rec.program,
                "backup_interrupted",
                format!(
                    "backup {} was interrupted: warden stopped before it finished",
                    rec.id
                ),
                serde_json::json!({ "backup_id": rec.id }),
            )
            .await;
        }
        // (directory, program) pairs: each program's default directory under the root
        // (also of programs deleted since), and every custom destination.
        let mut dirs: Vec<(PathBuf, String)> = Vec::new();
        for (program, json) in store.all_backup_settings().await? {
            if let Ok(s) = serde_json::from_str::<BackupSettings>(&json) {
                dirs.push((self.destination(&program, &s), program));
            }
        }
        let root = self.inner.root.clone();
        let removed = tokio::task::spawn_blocking(move || {
            if let Ok(rd) = std::fs::read_dir(&root) {
                for e in rd.flatten() {
                    if let Some(name) = e.file_name().to_str() {
                        dirs.push((e.path(), name.to_string()));
                    }
                }
            }
            remove_partials(&dirs)
        })
        .await
        .map_err(|_| BackupError::Failed("cleanup task failed".into()))?;
        if removed > 0 {
            tracing::info!(removed, "removed unfinished backups left by an earlier run");
        }
        for r in store.running_restores().await? {
            let paths = restore::RestorePaths {
                target: PathBuf::from(&r.target),
                staging: PathBuf::from(&r.staging),
                rollback: r.rollback.clone().map(PathBuf::from).unwrap_or_default(),
            };
            let recorded = r.rollback.is_some();
            let outcome = tokio::task::spawn_blocking(move || restore::recover(&paths, recorded))
                .await
                .map_err(|_| BackupError::Failed("cleanup task failed".into()))?;
            let (status, keep, msg) = match outcome {
                Ok(restore::Recovery::Completed) => (
                    "ok",
                    true,
                    format!(
                        "restore {} had completed its swap before warden stopped; kept",
                        r.id
                    ),
                ),
                Ok(restore::Recovery::RolledBack) => (
                    "interrupted",
                    false,
                    format!(
                        "restore {} was interrupted; the previous data was left in place",
                        r.id
                    ),
                ),
                Err(e) => (
                    "interrupted",
                    recorded,
                    format!(
                        "restore {} was interrupted and could not be cleaned up: {e}",
                        r.id
                    ),
                ),
            };
            store
                .finish_restore(r.id, status, (status != "ok").then(|| msg.clone()), keep)
                .await?;
            self.record(
                &r.program,
                "restore_interrupted",
                msg,
                serde_json::json!({ "restore_id": r.id }),
            )
            .await;
        }
        Ok(())
    }

    /// Records a durable event (kind `backup_*`/`restore_*`).
    async fn record(&self, program: &str, kind: &str, message: String, data: serde_json::Value) {
        let ev = NewEvent {
            ts: now_ms(),
            program: Some(program.to_string()),
            kind: kind.to_string(),
            message,
            data,
        };
        if let Err(e) = self.inner.store.append_event(ev).await {
            tracing::error!(error = %e, "cannot store backup event");
        }
    }

    fn publish(
        &self,
        program: &str,
        kind: BackupActivityKind,
        backup_id: i64,
        restore_id: Option<i64>,
        message: String,
    ) {
        self.inner.bus.publish(Event::Backup(BackupActivity {
            program: program.to_string(),
            ts: now_ms(),
            kind,
            backup_id,
            restore_id,
            bytes_done: 0,
            bytes_total: 0,
            current_file: None,
            message,
        }));
    }

    /// Where a program's backups go.
    fn destination(&self, program: &str, s: &BackupSettings) -> PathBuf {
        match &s.destination {
            Some(d) => self.inner.data_dir.join(d),
            None => self.inner.root.join(program),
        }
    }

    /// A program's backup settings (the defaults when none were saved).
    pub async fn settings(&self, program: &str) -> Result<BackupSettings, BackupError> {
        self.inner.sup.get(program)?;
        match self.inner.store.backup_settings(program).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                BackupError::Failed(format!(
                    "stored backup settings of '{program}' are unreadable: {e}"
                ))
            }),
            None => Ok(BackupSettings::default()),
        }
    }

    /// What a backup with these globs would cover now, for the settings form's preview:
    /// the same walk a backup makes (its destination skipped), without reading any file.
    pub async fn preview(
        &self,
        program: &str,
        include: Vec<String>,
        exclude: Vec<String>,
        limit: usize,
    ) -> Result<BackupPreview, BackupError> {
        let handle = self.inner.sup.get(program)?;
        let probe = BackupSettings {
            include,
            exclude,
            ..BackupSettings::default()
        };
        let problems = probe.validate();
        if !problems.is_empty() {
            return Err(BackupError::Invalid(problems));
        }
        let source = source_dir(&handle)?;
        let saved = self.settings(program).await?;
        let skip = vec![self.destination(program, &saved)];
        on_worker_thread(format!("preview-{program}"), true, move || {
            let filter = settings::Filter::new(&probe.include, &probe.exclude)
                .map_err(BackupError::Failed)?;
            let walked = walk::walk(
                &source,
                &filter,
                &walk::WalkOptions {
                    everything: false,
                    skip: &skip,
                    cancelled: &|| false,
                },
            )?;
            let mut out = BackupPreview::default();
            for item in walked.items {
                if let walk::ItemKind::File { size } = item.kind {
                    out.files += 1;
                    out.bytes += size;
                    if out.sample.len() < limit {
                        out.sample.push(item.rel);
                    } else {
                        out.truncated = true;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Validates and saves a program's backup settings.
    pub async fn set_settings(&self, program: &str, s: BackupSettings) -> Result<(), BackupError> {
        self.inner.sup.get(program)?;
        let problems = s.validate();
        if !problems.is_empty() {
            return Err(BackupError::Invalid(problems));
        }
        let json = serde_json::to_string(&s).map_err(|e| BackupError::Failed(e.to_string()))?;
        self.inner.store.set_backup_settings(program, json).await?;
        Ok(())
    }

    fn reserve(
        &self,
        program: &str,
        activity: Activity,
    ) -> Result<(BusyGuard, CancellationToken, watch::Sender<Progress>), BackupError> {
        let mut busy = lock(&self.inner.busy);
        if let Some(b) = busy.get(program) {
            return Err(BackupError::Conflict(match b.activity {
                Activity::Reserving => format!("a backup of '{program}' is starting"),
                Activity::Backup(id) => {
                    format!("backup {id} of '{program}' is running; wait for it or cancel it")
                }
                Activity::Restore(id) => {
                    format!("restore {id} of '{program}' is running; wait for it")
                }
            }));
        }
        let cancel = self.inner.shutdown.child_token();
        let (tx, rx) = watch::channel(Progress::default());
        busy.insert(
            program.to_string(),
            Busy {
                activity,
                cancel: cancel.clone(),
                progress: rx,
            },
        );
        Ok((
            BusyGuard {
                svc: self.clone(),
                program: program.to_string(),
            },
            cancel,
            tx,
        ))
    }

    fn set_activity(&self, program: &str, activity: Activity) {
        if let Some(b) = lock(&self.inner.busy).get_mut(program) {
            b.activity = activity;
        }
    }

    /// Marks a backup as read by a restore or verification; refused while it is deleted.
    fn read_backup(&self, id: i64) -> Result<ReadGuard, BackupError> {
        let mut uses = lock(&self.inner.uses);
        let u = uses.entry(id).or_default();
        if u.deleting {
            return Err(BackupError::Conflict(format!(
                "backup {id} is being deleted"
            )));
        }
        u.readers += 1;
        Ok(ReadGuard {
            svc: self.clone(),
            id,
        })
    }

    /// Marks a backup as being deleted; refused while something reads it.
    fn begin_delete(&self, id: i64) -> Result<(), BackupError> {
        let mut uses = lock(&self.inner.uses);
        let u = uses.entry(id).or_default();
        if u.readers > 0 {
            return Err(BackupError::Conflict(format!(
                "backup {id} is in use by a running restore or verification"
            )));
        }
        if u.deleting {
            return Err(BackupError::Conflict(format!(
                "backup {id} is already being deleted"
            )));
        }
        u.deleting = true;
        Ok(())
    }

    fn end_delete(&self, id: i64) {
        lock(&self.inner.uses).remove(&id);
    }

    /// Starts a backup of `program` and returns its id at once; the backup runs in the
    /// background (progress on the bus and in [`BackupService::get`]). This is the entry
    /// point for schedules as well as the API.
    pub async fn run(&self, program: &str, opts: BackupOptions) -> Result<BackupId, BackupError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(BackupError::ShuttingDown);
        }
        let handle = self.inner.sup.get(program)?;
        let settings = self.settings(program).await?;
        let source = source_dir(&handle)?;
        let destination = self.destination(program, &settings);
        let (guard, cancel, progress) = self.reserve(program, Activity::Reserving)?;
        let id = self
            .inner
            .store
            .insert_backup(program, &opts.reason)
            .await?;
        self.set_activity(program, Activity::Backup(id));
        let started_at = now_ms();
        self.record(
            program,
            "backup_started",
            format!("backup {id} started ({})", opts.reason),
            serde_json::json!({ "backup_id": id, "reason": opts.reason }),
        )
        .await;
        self.publish(
            program,
            BackupActivityKind::Started,
            id,
            None,
            format!("backup {id} started"),
        );
        let svc = self.clone();
        self.inner.tasks.spawn(async move {
            let job = Job {
                handle,
                id,
                started_at,
                settings,
                source,
                destination,
                cancel,
                progress,
                busy: Some(guard),
            };
            svc.backup_task(job).await;
        });
        Ok(BackupId(id))
    }

    /// Runs a backup of `program` and waits until it has ended (schedules' `backup`
    /// task). Answers the final record; its `status` says whether it succeeded.
    pub async fn run_to_end(
        &self,
        program: &str,
        opts: BackupOptions,
    ) -> Result<BackupRecord, BackupError> {
        // Subscribed before the run starts, so its end cannot be missed; the periodic
        // re-read covers a lagging receiver.
        let mut events = self.inner.bus.subscribe();
        let BackupId(id) = self.run(program, opts).await?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                ev = events.recv() => match ev {
                    Ok(ev) => match &*ev {
                        Event::Backup(a) if a.backup_id == id && a.restore_id.is_none() => {}
                        _ => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        events = self.inner.bus.subscribe();
                    }
                },
            }
            let record = self.record_of(id).await?;
            if record.status != "running" {
                return Ok(record);
            }
        }
    }

    /// Cancels a running backup. Its post steps still run.
    pub async fn cancel(&self, id: i64) -> Result<(), BackupError> {
        let busy = lock(&self.inner.busy);
        match busy.values().find(|b| b.activity == Activity::Backup(id)) {
            Some(b) => {
                b.cancel.cancel();
                Ok(())
            }
            None => Err(BackupError::Conflict(format!("backup {id} is not running"))),
        }
    }

    async fn backup_task(&self, mut job: Job) {
        let program = job.handle.name().to_string();
        let mut warnings = Vec::new();
        let slot = tokio::select! {
            s = self.inner.slots.clone().acquire_owned() => s.ok(),
            _ = job.cancel.cancelled() => None,
        };
        let result = match slot {
            None => Err(BackupError::Cancelled),
            Some(_slot) => self.consistent_backup(&job, &mut warnings).await,
        };
        let (outcome, finished) = match result {
            Ok(created) => {
                for f in &created.changed {
                    warnings.push(format!(
                        "{f}: changed while it was read on every attempt; it may be inconsistent"
                    ));
                }
                for s in &created.skipped {
                    warnings.push(format!("{s}: not archived"));
                }
                if created.attempts > 1 {
                    warnings.push(format!(
                        "retried: files changed while they were read (attempts: {})",
                        created.attempts
                    ));
                }
                let m = &created.manifest;
                let msg = format!(
                    "backup {} finished: {} files, {} bytes, archive {} bytes",
                    job.id, m.files, m.data_bytes, m.archive.bytes
                );
                self.record(
                    &program,
                    "backup_finished",
                    msg.clone(),
                    serde_json::json!({ "backup_id": job.id, "archive_bytes": m.archive.bytes, "data_bytes": m.data_bytes, "files": m.files, "duration_ms": now_ms() - job.started_at, "warnings": warnings }),
                )
                .await;
                let outcome = BackupOutcome {
                    status: "ok".into(),
                    path: Some(created.dir.to_string_lossy().into_owned()),
                    archive_bytes: Some(m.archive.bytes),
                    files: Some(m.files),
                    data_bytes: Some(m.data_bytes),
                    checksum: Some(m.archive.blake3.clone()),
                    error: None,
                    warnings,
                };
                (outcome, (BackupActivityKind::Finished, msg))
            }
            Err(e) => {
                let (status, kind, text) = match &e {
                    BackupError::Cancelled if self.inner.shutdown.is_cancelled() => (
                        "cancelled",
                        BackupActivityKind::Cancelled,
                        "cancelled: warden is shutting down".to_string(),
                    ),
                    BackupError::Cancelled => (
                        "cancelled",
                        BackupActivityKind::Cancelled,
                        "cancelled".to_string(),
                    ),
                    other => ("failed", BackupActivityKind::Failed, other.to_string()),
                };
                let msg = format!("backup {} {status}: {text}", job.id);
                self.record(
                    &program,
                    if status == "failed" {
                        "backup_failed"
                    } else {
                        "backup_cancelled"
                    },
                    msg.clone(),
                    serde_json::json!({ "backup_id": job.id, "error": text, "warnings": warnings }),
                )
                .await;
                let outcome = BackupOutcome {
                    status: status.into(),
                    error: Some(text),
                    warnings,
                    ..Default::default()
                };
                (outcome, (kind, msg))
            }
        };
        let ok = outcome.status == "ok";
        // Free the program before the outcome becomes visible, so whoever sees this
        // backup finished can start the next one at once.
        drop(job.busy.take());
        if let Err(e) = self.inner.store.finish_backup(job.id, outcome).await {
            tracing::error!(error = %e, backup = job.id, "cannot record the end of a backup");
        }
        // Published once the record says so, so a subscriber that looks finds it.
        self.publish(&program, finished.0, job.id, None, finished.1);
        if ok {
            self.apply_retention(&program, &job.settings).await;
        }
    }

    /// Pre steps (or stop), the archive, then post steps (or start) whatever happened.
    async fn consistent_backup(
        &self,
        job: &Job,
        warnings: &mut Vec<String>,
    ) -> Result<archive::Created, BackupError> {
        let handle = &job.handle;
        // A sleeping server is backed up as a stopped one (no steps, no stop); a player
        // connecting meanwhile is answered by its wake guard, and it wakes when the
        // backup (post steps included) is over.
        let _asleep = handle.hold_wake();
        let program = handle.name().to_string();
        let state = handle.snapshot().status.state;
        let running = matches!(state, State::Starting | State::Running);
        let s = &job.settings;
        let mut stopped_by_us = false;
        let step_note = |svc: &BackupService| {
            let svc = svc.clone();
            let program = program.clone();
            let id = job.id;
            move |m: String| svc.publish(&program, BackupActivityKind::Step, id, None, m)
        };
        let before = if s.stop_during_backup && (state.is_active() || state == State::Backoff) {
            stopped_by_us = true;
            match handle.stop().await {
                Ok(()) => wait_stopped(handle, stop_limit(handle)).await,
                Err(e) => Err(e.into()),
            }
        } else if running && !s.pre.is_empty() {
            steps::run(
                handle,
                &self.inner.bus,
                &s.pre,
                Some(&job.cancel),
                step_note(self),
            )
            .await
        } else {
            Ok(())
        };
        let result = match before {
            Ok(()) => self.write(job).await,
            Err(e) => Err(e),
        };
        job.progress.send_modify(|p| p.phase = Phase::Finishing);
        if stopped_by_us {
            if let Err(e) = handle.start().await {
                warnings.push(format!(
                    "could not start '{program}' again after the backup: {e}"
                ));
            }
        } else if running
            && !s.post.is_empty()
            && let Err(e) =
                steps::run(handle, &self.inner.bus, &s.post, None, step_note(self)).await
        {
            warnings.push(format!("post step failed: {e}"));
        }
        result
    }

    async fn write(&self, job: &Job) -> Result<archive::Created, BackupError> {
        let spec = CreateSpec {
            program: job.handle.name().to_string(),
            backup_id: job.id,
            started_at_ms: job.started_at,
            source: job.source.clone(),
            destination: job.destination.clone(),
            include: job.settings.include.clone(),
            exclude: job.settings.exclude.clone(),
            zstd_level: job.settings.zstd_level,
            zstd_threads: self.inner.zstd_threads,
            change_retries: job.settings.change_retries,
            on_change: job.settings.on_change,
        };
        let cancel = job.cancel.clone();
        let progress = job.progress.clone();
        let bus = self.inner.bus.clone();
        let limit = job.settings.max_mib_per_second.map(|m| u64::from(m) << 20);
        let (program, id) = (spec.program.clone(), job.id);
        on_worker_thread(format!("backup-{id}"), self.inner.low_priority, move || {
            let report = |p: &Progress| {
                progress.send_replace(p.clone());
                bus.publish(Event::Backup(BackupActivity {
                    program: program.clone(),
                    ts: now_ms(),
                    kind: BackupActivityKind::Progress,
                    backup_id: id,
                    restore_id: None,
                    bytes_done: p.bytes_done,
                    bytes_total: p.bytes_total,
                    current_file: p.current_file.clone(),
                    message: format!("{:?}", p.phase).to_lowercase(),
                }));
            };
            let ctl = Control {
                cancel: &cancel,
                report: &report,
                max_bytes_per_second: limit,
            };
            archive::create(&spec, &ctl)
        })
        .await
    }

    /// Deletes the finished backups the program's retention policy no longer keeps,
    /// except those in use. Each deletion is an event.
    async fn apply_retention(&self, program: &str, s: &BackupSettings) {
        if s.retention.keeps_all() {
            return;
        }
        let rows = match self.inner.store.backups(program).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot list backups for retention");
                return;
            }
        };
        let finished: Vec<&BackupRecord> = rows.iter().filter(|r| r.status == "ok").collect();
        let times: Vec<(i64, chrono::DateTime<chrono::Local>)> = finished
            .iter()
            .filter_map(|r| {
                chrono::Local
                    .timestamp_millis_opt(r.started_at)
                    .single()
                    .map(|t| (r.id, t))
            })
            .collect();
        let keep = retention::keep(&times, &s.retention);
        for r in finished.into_iter().filter(|r| !keep.contains(&r.id)) {
            if self.begin_delete(r.id).is_err() {
                // In use by a restore or verification: kept now, reconsidered next time.
                continue;
            }
            let result = self.remove_backup(r).await;
            self.end_delete(r.id);
            match result {
                Ok(()) => {
                    let msg = format!("backup {} pruned by the retention policy", r.id);
                    self.record(
                        program,
                        "backup_pruned",
                        msg.clone(),
                        serde_json::json!({ "backup_id": r.id }),
                    )
                    .await;
                    self.publish(program, BackupActivityKind::Pruned, r.id, None, msg);
                }
                Err(e) => tracing::error!(error = %e, backup = r.id, "cannot prune backup"),
            }
        }
    }

    async fn remove_backup(&self, r: &BackupRecord) -> Result<(), BackupError> {
        if let Some(path) = r.path.clone() {
            let p = PathBuf::from(&path);
            tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(BackupError::io("cannot delete", &p, e)),
            })
            .await
            .map_err(|_| BackupError::Failed("the delete task failed".into()))??;
        }
        self.inner.store.delete_backup(r.id).await?;
        Ok(())
    }

    fn view(&self, record: BackupRecord) -> BackupView {
        let progress = lock(&self.inner.busy)
            .values()
            .find(|b| b.activity == Activity::Backup(record.id))
            .map(|b| b.progress.borrow().clone());
        let verifying = lock(&self.inner.verifying)
            .get(&record.id)
            .map(|rx| rx.borrow().clone());
        BackupView {
            record,
            progress,
            verifying,
        }
    }

    async fn record_of(&self, id: i64) -> Result<BackupRecord, BackupError> {
        self.inner
            .store
            .backup(id)
            .await?
            .ok_or_else(|| BackupError::NotFound(format!("no backup with id {id}")))
    }

    /// One backup with its live progress.
    pub async fn get(&self, id: i64) -> Result<BackupView, BackupError> {
        Ok(self.view(self.record_of(id).await?))
    }

    /// A program's backups, newest first (also those of a deleted program).
    pub async fn list(&self, program: &str) -> Result<Vec<BackupView>, BackupError> {
        let rows = self.inner.store.backups(program).await?;
        Ok(rows.into_iter().map(|r| self.view(r)).collect())
    }

    /// Where a program's backups go and, when it can be read, the size and use of the
    /// filesystem holding it (measured at the nearest existing folder while the
    /// destination is not made yet). The reading runs off the async threads: `statvfs`
    /// on a hung network mount blocks.
    pub async fn destination_space(
        &self,
        program: &str,
    ) -> Result<(PathBuf, Option<os::MountUsage>), BackupError> {
        let settings = self.settings(program).await?;
        let dest = self.destination(program, &settings);
        let probe = dest.clone();
        let usage = tokio::task::spawn_blocking(move || {
            let dir = probe.ancestors().find(|p| p.is_dir())?;
            os::mount_usage(&dir.to_string_lossy(), "")
        })
        .await
        .ok()
        .flatten();
        Ok((dest, usage))
    }

    fn finished_dir(r: &BackupRecord) -> Result<PathBuf, BackupError> {
        match (&r.status[..], &r.path) {
            ("ok", Some(p)) => Ok(PathBuf::from(p)),
            _ => Err(BackupError::Conflict(format!(
                "backup {} is {}; only finished backups can be used",
                r.id, r.status
            ))),
        }
    }

    /// The manifest of a finished backup.
    pub async fn manifest(&self, id: i64) -> Result<Manifest, BackupError> {
        let dir = Self::finished_dir(&self.record_of(id).await?)?;
        tokio::task::spawn_blocking(move || archive::read_manifest(&dir.join(MANIFEST_FILE)))
            .await
            .map_err(|_| BackupError::Failed("the manifest task failed".into()))?
    }

    /// Starts re-reading a backup against its manifest; the result lands in the backup's
    /// record (`verified_at`, `verify_ok`, `verify_problems`).
    pub async fn verify(&self, id: i64) -> Result<BackupView, BackupError> {
        let rec = self.record_of(id).await?;
        let dir = Self::finished_dir(&rec)?;
        let guard = self.read_backup(id)?;
        let (tx, rx) = watch::channel(Progress::default());
        {
            let mut v = lock(&self.inner.verifying);
            if v.contains_key(&id) {
                return Err(BackupError::Conflict(format!(
                    "backup {id} is already being verified"
                )));
            }
            v.insert(id, rx);
        }
        let svc = self.clone();
        let cancel = self.inner.shutdown.child_token();
        let program = rec.program.clone();
        self.inner.tasks.spawn(async move {
            let result =
                on_worker_thread(format!("verify-{id}"), svc.inner.low_priority, move || {
                    let manifest = archive::read_manifest(&dir.join(MANIFEST_FILE))?;
                    let report = |p: &Progress| {
                        tx.send_replace(p.clone());
                    };
                    let ctl = Control {
                        cancel: &cancel,
                        report: &report,
                        max_bytes_per_second: None,
                    };
                    archive::verify(&dir.join(&manifest.archive.file), &manifest, &ctl)
                })
                .await;
            let problems = match result {
                Ok(p) => Some(p),
                Err(BackupError::Cancelled) => None,
                Err(e) => Some(vec![Mismatch {
                    path: "(archive)".into(),
                    problem: e.to_string(),
                }]),
            };
            if let Some(problems) = problems {
                let msg = if problems.is_empty() {
                    format!("backup {id} verified: it matches its manifest")
                } else {
                    format!(
                        "backup {id} verification FAILED: {} problems",
                        problems.len()
                    )
                };
                let n = problems.len();
                // The event first: whoever sees the result in the record finds the event.
                svc.record(
                    &program,
                    "backup_verified",
                    msg.clone(),
                    serde_json::json!({ "backup_id": id, "problems": n }),
                )
                .await;
                if let Err(e) = svc.inner.store.set_backup_verified(id, problems).await {
                    tracing::error!(error = %e, "cannot record a verification");
                }
                svc.publish(&program, BackupActivityKind::Verified, id, None, msg);
            }
            lock(&svc.inner.verifying).remove(&id);
            drop(guard);
        });
        Ok(self.view(rec))
    }

    /// Deletes a finished (or failed) backup and its files. Refused while it runs or is in
    /// use by a restore or verification.
    pub async fn delete(&self, id: i64) -> Result<(), BackupError> {
        let rec = self.record_of(id).await?;
        if rec.status == "running" {
            return Err(BackupError::Conflict(format!(
                "backup {id} is running; cancel it first"
            )));
        }
        self.begin_delete(id)?;
        let result = self.remove_backup(&rec).await;
        self.end_delete(id);
        result?;
        self.record(
            &rec.program,
            "backup_deleted",
            format!("backup {id} deleted"),
            serde_json::json!({ "backup_id": id }),
        )
        .await;
        Ok(())
    }

    /// Opens a finished backup's archive for download.
    pub async fn open_archive(&self, id: i64) -> Result<ArchiveFile, BackupError> {
        let rec = self.record_of(id).await?;
        let dir = Self::finished_dir(&rec)?;
        let manifest = self.manifest(id).await?;
        let path = dir.join(&manifest.archive.file);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| BackupError::io("cannot open", &path, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| BackupError::io("cannot read", &path, e))?
            .len();
        Ok(ArchiveFile {
            file,
            size,
            name: manifest.archive.file,
        })
    }

    /// Starts restoring a backup into its program's working directory: refused (409) while
    /// the program runs unless `opts.stop`. The archive is extracted next to the target,
    /// verified, then swapped in; the previous data is kept as a rollback copy.
    pub async fn restore(&self, id: i64, opts: RestoreOptions) -> Result<RestoreView, BackupError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(BackupError::ShuttingDown);
        }
        let rec = self.record_of(id).await?;
        let dir = Self::finished_dir(&rec)?;
        let handle = self.inner.sup.get(&rec.program)?;
        let target = source_dir(&handle)?;
        let destination = self.destination(&rec.program, &self.settings(&rec.program).await?);
        let state = handle.snapshot().status.state;
        let running = state.is_active() || state == State::Backoff;
        if running && !opts.stop {
            return Err(BackupError::Conflict(format!(
                "program '{}' is {}; stop it first, or restore with stop=true to have warden stop it and start it again afterwards",
                rec.program,
                state.as_str()
            )));
        }
        let (busy, cancel, progress) = self.reserve(&rec.program, Activity::Reserving)?;
        let reader = self.read_backup(id)?;
        let paths = restore::paths(&target, &restore_tag(now_ms()))?;
        let rid = self
            .inner
            .store
            .insert_restore(
                id,
                &rec.program,
                &target.to_string_lossy(),
                &paths.staging.to_string_lossy(),
            )
            .await?;
        self.set_activity(&rec.program, Activity::Restore(rid));
        let msg = format!("restore {rid} of backup {id} started");
        self.record(
            &rec.program,
            "restore_started",
            msg.clone(),
            serde_json::json!({ "restore_id": rid, "backup_id": id }),
        )
        .await;
        self.publish(
            &rec.program,
            BackupActivityKind::RestoreStarted,
            id,
            Some(rid),
            msg,
        );
        let svc = self.clone();
        self.inner.tasks.spawn(async move {
            let job = RestoreJob {
                handle,
                backup_id: id,
                restore_id: rid,
                dir,
                destination,
                paths,
                stop: running,
                cancel,
                progress,
                busy: Some((busy, reader)),
            };
            svc.restore_task(job).await;
        });
        self.restore_view(rid).await
    }

    async fn restore_task(&self, mut job: RestoreJob) {
        let program = job.handle.name().to_string();
        let result = self.restore_steps(&job).await;
        if job.stop
            && let Err(e) = job.handle.start().await
        {
            tracing::warn!(program, error = %e, "cannot start the program again after a restore");
        }
        let (status, kind, msg, keep, error) = match result {
            Ok(had_previous) => (
                "ok",
                BackupActivityKind::Restored,
                if had_previous {
                    format!(
                        "restore {} of backup {} done; the previous data is kept in {} until discarded",
                        job.restore_id,
                        job.backup_id,
                        job.paths.rollback.display()
                    )
                } else {
                    format!(
                        "restore {} of backup {} done",
                        job.restore_id, job.backup_id
                    )
                },
                had_previous,
                None,
            ),
            Err(e) => {
                let staging = job.paths.staging.clone();
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(staging)).await;
                (
                    "failed",
                    BackupActivityKind::RestoreFailed,
                    format!(
                        "restore {} of backup {} failed; the data was left as it was: {e}",
                        job.restore_id, job.backup_id
                    ),
                    false,
                    Some(e.to_string()),
                )
            }
        };
        // Free the program and the backup before the outcome becomes visible.
        drop(job.busy.take());
        if let Err(e) = self
            .inner
            .store
            .finish_restore(job.restore_id, status, error, keep)
            .await
        {
            tracing::error!(error = %e, "cannot record the end of a restore");
        }
        self.record(
            &program,
            if status == "ok" {
                "restore_finished"
            } else {
                "restore_failed"
            },
            msg.clone(),
            serde_json::json!({ "restore_id": job.restore_id, "backup_id": job.backup_id }),
        )
        .await;
        self.publish(&program, kind, job.backup_id, Some(job.restore_id), msg);
    }

    /// Stop, extract + verify + carry over, record the rollback path, swap.
    async fn restore_steps(&self, job: &RestoreJob) -> Result<bool, BackupError> {
        // A sleeping server must not wake on half-swapped files.
        let _asleep = job.handle.hold_wake();
        if job.stop {
            job.handle.stop().await?;
            wait_stopped(&job.handle, stop_limit(&job.handle)).await?;
        }
        let dir = job.dir.clone();
        let paths = job.paths.clone();
        let cancel = job.cancel.clone();
        // Backups kept inside the program's own directory are not part of what is
        // restored, and must survive the swap.
        let keep = vec![job.destination.clone()];
        let progress = job.progress.clone();
        on_worker_thread(
            format!("restore-{}", job.restore_id),
            self.inner.low_priority,
            move || {
                let manifest = archive::read_manifest(&dir.join(MANIFEST_FILE))?;
                match std::fs::remove_dir_all(&paths.staging) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BackupError::io("cannot clear", &paths.staging, e)),
                }
                std::fs::create_dir(&paths.staging)
                    .map_err(|e| BackupError::io("cannot create", &paths.staging, e))?;
                let report = |p: &Progress| {
                    progress.send_replace(p.clone());
                };
                let ctl = Control {
                    cancel: &cancel,
                    report: &report,
                    max_bytes_per_second: None,
                };
                archive::extract(
                    &dir.join(&manifest.archive.file),
                    &manifest,
                    &paths.staging,
                    &ctl,
                )?;
                let notes =
                    restore::carry_over(&paths, &manifest, &keep, &|| cancel.is_cancelled())?;
                for n in notes {
                    tracing::warn!(note = %n, "restore");
                }
                os::sync_dir_path(&paths.staging)
                    .map_err(|e| BackupError::io("cannot sync", &paths.staging, e))
            },
        )
        .await?;
        if job.cancel.is_cancelled() {
            return Err(BackupError::Cancelled);
        }
        self.inner
            .store
            .set_restore_rollback(job.restore_id, &job.paths.rollback.to_string_lossy())
            .await?;
        let paths = job.paths.clone();
        tokio::task::spawn_blocking(move || restore::swap(&paths))
            .await
            .map_err(|_| BackupError::Failed("the swap task failed".into()))?
    }

    async fn restore_view(&self, rid: i64) -> Result<RestoreView, BackupError> {
        let record = self
            .inner
            .store
            .restore_record(rid)
            .await?
            .ok_or_else(|| BackupError::NotFound(format!("no restore with id {rid}")))?;
        let progress = lock(&self.inner.busy)
            .values()
            .find(|b| b.activity == Activity::Restore(rid))
            .map(|b| b.progress.borrow().clone());
        Ok(RestoreView { record, progress })
    }

    /// One restore.
    pub async fn get_restore(&self, rid: i64) -> Result<RestoreView, BackupError> {
        self.restore_view(rid).await
    }

    /// A program's restores, newest first.
    pub async fn restores(&self, program: &str) -> Result<Vec<RestoreRecord>, BackupError> {
        Ok(self.inner.store.restores(program).await?)
    }

    /// Deletes the rollback copy a restore kept.
    pub async fn discard_rollback(&self, rid: i64) -> Result<RestoreView, BackupError> {
        let r = self.restore_view(rid).await?.record;
        let (Some(path), None, "ok") = (&r.rollback, r.discarded_at, r.status.as_str()) else {
            return Err(BackupError::Conflict(format!(
                "restore {rid} has no rollback copy to discard (it is {}, or the copy was already discarded)",
                r.status
            )));
        };
        let p = PathBuf::from(path);
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackupError::io("cannot delete", &p, e)),
        })
        .await
        .map_err(|_| BackupError::Failed("the delete task failed".into()))??;
        self.inner.store.set_restore_discarded(rid).await?;
        self.record(
            &r.program,
            "restore_rollback_discarded",
            format!("rollback copy of restore {rid} discarded"),
            serde_json::json!({ "restore_id": rid }),
        )
        .await;
        self.restore_view(rid).await
    }

    /// Cancels every backup, verification and restore, and waits (within `deadline`) for
    /// them to finish — post steps included, so a game is not left with saving off.
    pub async fn shutdown(&self, deadline: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(deadline, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("backup tasks did not finish before the shutdown deadline");
        }
    }
}

/// Everything a backup task needs.
struct Job {
    handle: ProgramHandle,
    id: i64,
    started_at: i64,
    settings: BackupSettings,
    source: PathBuf,
    destination: PathBuf,
    cancel: CancellationToken,
    progress: watch::Sender<Progress>,
    /// The program's reservation, released just before the outcome is recorded.
    busy: Option<BusyGuard>,
}

/// Everything a restore task needs.
struct RestoreJob {
    handle: ProgramHandle,
    backup_id: i64,
    restore_id: i64,
    dir: PathBuf,
    /// The program's backup destination.
    destination: PathBuf,
    paths: restore::RestorePaths,
    stop: bool,
    cancel: CancellationToken,
    progress: watch::Sender<Progress>,
    /// The program's reservation and the backup's read mark, released just before the
    /// outcome is recorded.
    busy: Option<(BusyGuard, ReadGuard)>,
}

/// Names a restore's staging and rollback directories: its start time, to the millisecond
/// (restores of one program never run at once, so this is unique).
fn restore_tag(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m%dT%H%M%S%3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Removes the unfinished backups of `program` in `dir`: exactly the entries named
/// `.partial-PROGRAM-ID` (what `archive::partial_dir` creates), nothing else, since a
/// custom destination may hold other things. Returns how many were removed.
fn remove_partials(dirs: &[(PathBuf, String)]) -> usize {
    let mut removed = 0;
    for (dir, program) in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let prefix = format!("{}{program}-", archive::PARTIAL_PREFIX);
        for e in rd.flatten() {
            let name = e.file_name();
            let is_partial = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
            if !is_partial {
                continue;
            }
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove an unfinished backup")
                }
            }
        }
    }
    removed
}
