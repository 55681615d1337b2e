//! Verifying a finished backup: re-reading its archive against its manifest on a worker
//! thread, the result recorded in the backup's row and as an event.

use tokio::sync::watch;

use super::archive::{self, Control, Progress};
use super::error::BackupError;
use super::manifest::MANIFEST_FILE;
use super::service::{BackupService, on_worker_thread};
use super::view::BackupView;
use crate::backup::record::Mismatch;
use crate::bus::BackupActivityKind;
use crate::sync::lock;

impl BackupService {
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
}
