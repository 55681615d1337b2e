//! Start-up recovery after an unclean stop: backups left `running` become `interrupted`,
//! unfinished `.partial-` directories are removed, interrupted restores are completed or
//! undone.

use std::path::PathBuf;

use super::archive;
use super::error::BackupError;
use super::restore_fs;
use super::service::BackupService;
use super::settings::BackupSettings;
use crate::backup::record::RestoreStatus;

impl BackupService {
    pub(super) async fn recover(&self) -> Result<(), BackupError> {
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
            let paths = restore_fs::RestorePaths {
                target: PathBuf::from(&r.target),
                staging: PathBuf::from(&r.staging),
                rollback: r.rollback.clone().map(PathBuf::from).unwrap_or_default(),
            };
            let recorded = r.rollback.is_some();
            let outcome =
                tokio::task::spawn_blocking(move || restore_fs::recover(&paths, recorded))
                    .await
                    .map_err(|_| BackupError::Failed("cleanup task failed".into()))?;
            let (status, keep, msg) = match outcome {
                Ok(restore_fs::Recovery::Completed) => (
                    RestoreStatus::Ok,
                    true,
                    format!(
                        "restore {} had completed its swap before warden stopped; kept",
                        r.id
                    ),
                ),
                Ok(restore_fs::Recovery::RolledBack) => (
                    RestoreStatus::Interrupted,
                    false,
                    format!(
                        "restore {} was interrupted; the previous data was left in place",
                        r.id
                    ),
                ),
                Err(e) => (
                    RestoreStatus::Interrupted,
                    recorded,
                    format!(
                        "restore {} was interrupted and could not be cleaned up: {e}",
                        r.id
                    ),
                ),
            };
            store
                .finish_restore(
                    r.id,
                    status,
                    (status != RestoreStatus::Ok).then(|| msg.clone()),
                    keep,
                )
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
}

/// Removes the unfinished backups of `program` in `dir`: exactly the entries named
/// `.partial-PROGRAM-ID` (what `archive::partial_dir` creates), nothing else, since a
/// custom destination may hold other things. Returns how many were removed.
pub(super) fn remove_partials(dirs: &[(PathBuf, String)]) -> usize {
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
