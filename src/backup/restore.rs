//! Restoring a backup (the orchestration): reserve the program and the backup, stop the
//! program if asked, extract and verify into staging and carry over what the backup never
//! covered (on a worker thread), record the rollback path, swap, start again, record the
//! outcome; and the restores' read side and rollback discarding. The file-system half is
//! `restore_fs.rs`.

use std::path::PathBuf;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::archive::{self, Control, Progress};
use super::error::BackupError;
use super::manifest::MANIFEST_FILE;
use super::registry::{Activity, BusyGuard, ReadGuard};
use super::restore_fs;
use super::service::{BackupService, on_worker_thread, source_dir, stop_limit, wait_stopped};
use super::view::{RestoreOptions, RestoreView};
use crate::backup::record::{RestoreRecord, RestoreStatus};
use crate::bus::BackupActivityKind;
use crate::os;
use crate::program::State;
use crate::store::now_ms;
use crate::supervisor::ProgramHandle;
use crate::sync::lock;

/// Everything a restore task needs.
struct RestoreJob {
    handle: ProgramHandle,
    backup_id: i64,
    restore_id: i64,
    dir: PathBuf,
    /// The program's backup destination.
    destination: PathBuf,
    paths: restore_fs::RestorePaths,
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

impl BackupService {
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
        let paths = restore_fs::paths(&target, &restore_tag(now_ms()))?;
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
                RestoreStatus::Ok,
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
                    RestoreStatus::Failed,
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
            if status == RestoreStatus::Ok {
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
                    restore_fs::carry_over(&paths, &manifest, &keep, &|| cancel.is_cancelled())?;
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
        tokio::task::spawn_blocking(move || restore_fs::swap(&paths))
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
        let (Some(path), None, RestoreStatus::Ok) = (&r.rollback, r.discarded_at, r.status) else {
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
}
