//! The [`BackupService`] handle: its state, start and shutdown, the events it records and
//! publishes, a program's backup settings and destination, and the helpers every
//! operation uses (worker threads, the source directory, waiting for a stop).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::archive::Progress;
use super::error::BackupError;
use super::registry::{Busy, Use};
use super::settings::{self, BackupSettings};
use super::view::BackupPreview;
use super::walk;
use crate::bus::{BackupActivity, BackupActivityKind, Bus, Event};
use crate::config::Config;
use crate::os;
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::{ProgramHandle, Supervisor};

/// Cheap-to-clone handle to the backup service.
#[derive(Clone)]
pub struct BackupService {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) bus: Bus,
    pub(super) sup: Supervisor,
    pub(super) data_dir: PathBuf,
    pub(super) root: PathBuf,
    pub(super) zstd_threads: u32,
    /// Lower the priority of worker threads (`backup.low_priority`).
    pub(super) low_priority: bool,
    /// Bounds backups running at once; waiting ones are at most one per program (a
    /// program runs one backup at a time), so the queue is bounded by the program count.
    pub(super) slots: Arc<Semaphore>,
    /// Programs with a running backup or restore. std Mutex: held only to look up or
    /// change an entry, never across `.await`.
    pub(super) busy: Mutex<HashMap<String, Busy>>,
    /// Backups in use (same locking rule).
    pub(super) uses: Mutex<HashMap<i64, Use>>,
    /// Running verifications by backup id (same locking rule).
    pub(super) verifying: Mutex<HashMap<i64, watch::Receiver<Progress>>>,
    pub(super) tasks: TaskTracker,
    /// Cancelled at shutdown; every job's token is a child.
    pub(super) shutdown: CancellationToken,
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

    /// Records a durable event (kind `backup_*`/`restore_*`).
    pub(super) async fn record(
        &self,
        program: &str,
        kind: &str,
        message: String,
        data: serde_json::Value,
    ) {
        let ev = NewEvent::now(Some(program), kind, message, data);
        self.inner.store.record_event(ev).await;
    }

    pub(super) fn publish(
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
    pub(super) fn destination(&self, program: &str, s: &BackupSettings) -> PathBuf {
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

/// Runs `f` on a new thread, with lowered CPU and IO priority when `low` (not on tokio's
/// blocking pool, whose threads are reused: a lowered priority would leak into unrelated
/// work).
pub(super) async fn on_worker_thread<T: Send + 'static>(
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
pub(super) fn source_dir(handle: &ProgramHandle) -> Result<PathBuf, BackupError> {
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
pub(super) async fn wait_stopped(
    handle: &ProgramHandle,
    limit: Duration,
) -> Result<(), BackupError> {
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

pub(super) fn stop_limit(handle: &ProgramHandle) -> Duration {
    Duration::from_secs(handle.snapshot().spec.stop.timeout_seconds + 15)
}
