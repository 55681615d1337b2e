//! Backup rows: per-program backup settings (as JSON text; their type lives in `backup`),
//! one row per backup attempt with its outcome and last verification, and one row per
//! restore with the paths needed to finish or undo it after a crash.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_ms};
use crate::backup::record::{BackupRecord, BackupStatus, Mismatch, RestoreRecord, RestoreStatus};

/// The outcome of a backup attempt, written once when it ends.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// `ok`, `failed` or `cancelled`.
    pub status: BackupStatus,
    /// Directory of the finished backup.
    pub path: Option<String>,
    /// Compressed size.
    pub archive_bytes: Option<u64>,
    /// Files archived.
    pub files: Option<u64>,
    /// Uncompressed file bytes.
    pub data_bytes: Option<u64>,
    /// BLAKE3 of the archive.
    pub checksum: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Non-fatal notes.
    pub warnings: Vec<String>,
}

const BACKUP_COLS: &str = "id, program, status, reason, started_at, finished_at, path, archive_bytes, files, data_bytes, checksum, error, warnings, verified_at, verify_ok, verify_problems";

fn backup_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackupRecord> {
    let warnings: Option<String> = r.get(12)?;
    let problems: Option<String> = r.get(15)?;
    let as_u64 = |v: Option<i64>| v.map(|n| u64::try_from(n).unwrap_or(0));
    Ok(BackupRecord {
        id: r.get(0)?,
        program: r.get(1)?,
        status: r.get(2)?,
        reason: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        path: r.get(6)?,
        archive_bytes: as_u64(r.get(7)?),
        files: as_u64(r.get(8)?),
        data_bytes: as_u64(r.get(9)?),
        checksum: r.get(10)?,
        error: r.get(11)?,
        warnings: warnings
            .and_then(|w| serde_json::from_str(&w).ok())
            .unwrap_or_default(),
        verified_at: r.get(13)?,
        verify_ok: r.get::<_, Option<i64>>(14)?.map(|v| v != 0),
        verify_problems: problems
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
    })
}

const RESTORE_COLS: &str = "id, backup_id, program, status, started_at, finished_at, target, staging, rollback, error, discarded_at";

fn restore_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<RestoreRecord> {
    Ok(RestoreRecord {
        id: r.get(0)?,
        backup_id: r.get(1)?,
        program: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        target: r.get(6)?,
        staging: r.get(7)?,
        rollback: r.get(8)?,
        error: r.get(9)?,
        discarded_at: r.get(10)?,
    })
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Store {
    /// A program's backup settings as JSON text, if any were saved.
    pub async fn backup_settings(&self, program: &str) -> Result<Option<String>, StoreError> {
        let program = program.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT settings FROM backup_settings WHERE program = ?1",
                params![program],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Every program's saved backup settings as `(program, JSON text)`.
    pub async fn all_backup_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT program, settings FROM backup_settings")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Saves a program's backup settings; `NotFound` if the program does not exist.
    pub async fn set_backup_settings(&self, program: &str, json: String) -> Result<(), StoreError> {
        let program = program.to_string();
        self.write(move |t| {
            let exists: Option<i64> = t
                .query_row(
                    "SELECT 1 FROM programs WHERE name = ?1",
                    params![program],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!(
                    "no program named '{program}'"
                )));
            }
            t.execute(
                "INSERT INTO backup_settings(program, settings, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(program) DO UPDATE SET settings = ?2, updated_at = ?3",
                params![program, json, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Creates the row of a starting backup and returns its id (after commit, so a crash
    /// right after still leaves a row that the next start marks `interrupted`).
    pub async fn insert_backup(&self, program: &str, reason: &str) -> Result<i64, StoreError> {
        let (program, reason) = (program.to_string(), reason.to_string());
        self.write(move |t| {
            t.execute(
                "INSERT INTO backups(program, status, reason, started_at) VALUES (?1, 'running', ?2, ?3)",
                params![program, reason, now_ms()],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// Records how a backup ended.
    pub async fn finish_backup(&self, id: i64, o: BackupOutcome) -> Result<(), StoreError> {
        let warnings = serde_json::to_string(&o.warnings)?;
        self.write(move |t| {
            t.execute(
                "UPDATE backups SET status = ?2, finished_at = ?3, path = ?4, archive_bytes = ?5,
                 files = ?6, data_bytes = ?7, checksum = ?8, error = ?9, warnings = ?10 WHERE id = ?1",
                params![
                    id,
                    o.status,
                    now_ms(),
                    o.path,
                    to_i64(o.archive_bytes),
                    to_i64(o.files),
                    to_i64(o.data_bytes),
                    o.checksum,
                    o.error,
                    warnings
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the outcome of a verification.
    pub async fn set_backup_verified(
        &self,
        id: i64,
        problems: Vec<Mismatch>,
    ) -> Result<(), StoreError> {
        let ok = problems.is_empty();
        let json = serde_json::to_string(&problems)?;
        self.write(move |t| {
            t.execute(
                "UPDATE backups SET verified_at = ?2, verify_ok = ?3, verify_problems = ?4 WHERE id = ?1",
                params![id, now_ms(), i64::from(ok), json],
            )?;
            Ok(())
        })
        .await
    }

    /// One backup.
    pub async fn backup(&self, id: i64) -> Result<Option<BackupRecord>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {BACKUP_COLS} FROM backups WHERE id = ?1"),
                params![id],
                backup_from,
            )
            .optional()?)
        })
        .await
    }

    /// A program's backups, newest first.
    pub async fn backups(&self, program: &str) -> Result<Vec<BackupRecord>, StoreError> {
        let program = program.to_string();
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {BACKUP_COLS} FROM backups WHERE program = ?1 ORDER BY id DESC"
            ))?;
            let rows = st.query_map(params![program], backup_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Forgets a backup (its files are deleted by the caller first).
    pub async fn delete_backup(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |t| {
            t.execute("DELETE FROM backups WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    /// Marks every backup still `running` as `interrupted` (called at start, when no
    /// backup can be running) and returns them.
    pub async fn interrupt_running_backups(&self) -> Result<Vec<BackupRecord>, StoreError> {
        self.write(|t| {
            let mut st = t.prepare(&format!(
                "SELECT {BACKUP_COLS} FROM backups WHERE status = 'running'"
            ))?;
            let rows = st
                .query_map([], backup_from)?
                .collect::<Result<Vec<_>, _>>()?;
            t.execute(
                "UPDATE backups SET status = 'interrupted', finished_at = ?1,
                 error = 'warden stopped before the backup finished' WHERE status = 'running'",
                params![now_ms()],
            )?;
            Ok(rows)
        })
        .await
    }

    /// Creates the row of a starting restore and returns its id.
    pub async fn insert_restore(
        &self,
        backup_id: i64,
        program: &str,
        target: &str,
        staging: &str,
    ) -> Result<i64, StoreError> {
        let (program, target, staging) =
            (program.to_string(), target.to_string(), staging.to_string());
        self.write(move |t| {
            t.execute(
                "INSERT INTO restores(backup_id, program, status, started_at, target, staging)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
                params![backup_id, program, now_ms(), target, staging],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// Records where the previous data goes, before it is moved there: after a crash
    /// mid-swap, the next start knows where to find it.
    pub async fn set_restore_rollback(&self, id: i64, rollback: &str) -> Result<(), StoreError> {
        let rollback = rollback.to_string();
        self.write(move |t| {
            t.execute(
                "UPDATE restores SET rollback = ?2 WHERE id = ?1",
                params![id, rollback],
            )?;
            Ok(())
        })
        .await
    }

    /// Records how a restore ended. `rollback` is cleared when the swap never happened.
    pub async fn finish_restore(
        &self,
        id: i64,
        status: RestoreStatus,
        error: Option<String>,
        keep_rollback: bool,
    ) -> Result<(), StoreError> {
        self.write(move |t| {
            t.execute(
                "UPDATE restores SET status = ?2, finished_at = ?3, error = ?4,
                 rollback = CASE WHEN ?5 THEN rollback ELSE NULL END WHERE id = ?1",
                params![id, status, now_ms(), error, keep_rollback],
            )?;
            Ok(())
        })
        .await
    }

    /// Records that a restore's rollback copy was deleted.
    pub async fn set_restore_discarded(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |t| {
            t.execute(
                "UPDATE restores SET discarded_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// One restore.
    pub async fn restore_record(&self, id: i64) -> Result<Option<RestoreRecord>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {RESTORE_COLS} FROM restores WHERE id = ?1"),
                params![id],
                restore_from,
            )
            .optional()?)
        })
        .await
    }

    /// A program's restores, newest first.
    pub async fn restores(&self, program: &str) -> Result<Vec<RestoreRecord>, StoreError> {
        let program = program.to_string();
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {RESTORE_COLS} FROM restores WHERE program = ?1 ORDER BY id DESC"
            ))?;
            let rows = st.query_map(params![program], restore_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Restores still marked `running` (only possible at start, after a crash).
    pub async fn running_restores(&self) -> Result<Vec<RestoreRecord>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RESTORE_COLS} FROM restores WHERE status = 'running'"
            ))?;
            let rows = st.query_map([], restore_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backup_rows_round_trip_and_interrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("open");
        let a = store.insert_backup("p", "manual").await.expect("insert");
        let b = store.insert_backup("p", "manual").await.expect("insert");
        store
            .finish_backup(
                a,
                BackupOutcome {
                    status: BackupStatus::Ok,
                    path: None,
                    archive_bytes: None,
                    files: Some(3),
                    data_bytes: None,
                    checksum: None,
                    error: None,
                    warnings: vec!["w".into()],
                },
            )
            .await
            .expect("finish");
        let interrupted = store.interrupt_running_backups().await.expect("interrupt");
        assert_eq!(interrupted.len(), 1);
        assert_eq!(interrupted[0].id, b);
        let list = store.backups("p").await.expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].status, BackupStatus::Interrupted);
        assert_eq!(list[1].files, Some(3));
        assert_eq!(list[1].warnings, vec!["w".to_string()]);
        store
            .set_backup_verified(
                a,
                vec![Mismatch {
                    path: "x".into(),
                    problem: "y".into(),
                }],
            )
            .await
            .expect("verify");
        let rec = store.backup(a).await.expect("get").expect("exists");
        assert_eq!(rec.verify_ok, Some(false));
        assert_eq!(rec.verify_problems.len(), 1);
        assert!(matches!(
            store.set_backup_settings("nope", "{}".into()).await,
            Err(StoreError::NotFound(_))
        ));
    }
}
