//! Deleting backups: by hand (refused while one runs or is read) and by the retention
//! policy after each successful backup (those in use are kept until next time).

use std::path::PathBuf;

use chrono::TimeZone;

use super::error::BackupError;
use super::retention;
use super::service::BackupService;
use super::settings::BackupSettings;
use crate::backup::record::{BackupRecord, BackupStatus};
use crate::bus::BackupActivityKind;

impl BackupService {
    /// Deletes a finished (or failed) backup and its files. Refused while it runs or is in
    /// use by a restore or verification.
    pub async fn delete(&self, id: i64) -> Result<(), BackupError> {
        let rec = self.record_of(id).await?;
        if rec.status == BackupStatus::Running {
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

    /// Deletes the finished backups the program's retention policy no longer keeps,
    /// except those in use. Each deletion is an event.
    pub(super) async fn apply_retention(&self, program: &str, s: &BackupSettings) {
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
        let finished: Vec<&BackupRecord> = rows
            .iter()
            .filter(|r| r.status == BackupStatus::Ok)
            .collect();
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
}
