//! What warden keeps of backups and restores — one record per backup attempt (its
//! outcome and last verification) and per restore — as the store returns them and the
//! API shows them. Plain data: it imports nothing of warden but `text_enum`, so the store
//! below and the services and API above share it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::text_enum::text_enum;

text_enum! {
    /// Where a backup attempt is (the `status` column of `backups`).
    pub enum BackupStatus {
        /// Being taken.
        Running = "running",
        /// Finished and verified: its directory holds a complete backup.
        Ok = "ok",
        /// Ended with an error.
        Failed = "failed",
        /// Cancelled by request or by warden's shutdown.
        Cancelled = "cancelled",
        /// warden stopped before it finished.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// Where a restore is (the `status` column of `restores`).
    pub enum RestoreStatus {
        /// Under way.
        Running = "running",
        /// Swapped in.
        Ok = "ok",
        /// Ended with an error; the data was left as it was.
        Failed = "failed",
        /// warden stopped before it finished.
        Interrupted = "interrupted",
    }
}

/// A per-file (or whole-archive) problem found by verification.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct Mismatch {
    /// Path inside the archive, or `(archive)` for the archive as a whole.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// One backup attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupRecord {
    /// Backup id.
    pub id: i64,
    /// Program the backup was taken of.
    pub program: String,
    /// `running`, `ok`, `failed`, `cancelled` or `interrupted` (warden stopped mid-way).
    pub status: BackupStatus,
    /// Who or what asked for it (`manual by alice`, `schedule nightly`…).
    pub reason: String,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// Directory holding the archive and its manifest (finished backups only).
    pub path: Option<String>,
    /// Size of the compressed archive.
    pub archive_bytes: Option<u64>,
    /// Files in the archive.
    pub files: Option<u64>,
    /// Bytes of file data before compression.
    pub data_bytes: Option<u64>,
    /// BLAKE3 of the archive file, hex.
    pub checksum: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Things worth knowing that did not fail the backup (a post step failed, a file
    /// changed while it was read…).
    pub warnings: Vec<String>,
    /// Unix ms of the last verification.
    pub verified_at: Option<i64>,
    /// Outcome of the last verification.
    pub verify_ok: Option<bool>,
    /// Problems found by the last verification.
    pub verify_problems: Vec<Mismatch>,
}

/// One restore.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestoreRecord {
    /// Restore id.
    pub id: i64,
    /// The backup restored.
    pub backup_id: i64,
    /// Program whose data was replaced.
    pub program: String,
    /// `running`, `ok`, `failed` or `interrupted`.
    pub status: RestoreStatus,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// The directory that was replaced.
    pub target: String,
    /// Where the archive was extracted before the swap.
    pub staging: String,
    /// The previous data, kept until discarded.
    pub rollback: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix ms when the rollback copy was deleted.
    pub discarded_at: Option<i64>,
}
