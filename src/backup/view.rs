//! What the service takes and answers (ids, options, views with live progress, an opened
//! archive, a preview of the globs) and the read side: one backup, a program's list, a
//! manifest, an archive to download.

use std::path::PathBuf;

use serde::Serialize;
use utoipa::ToSchema;

use super::archive::{self, Progress};
use super::error::BackupError;
use super::manifest::{MANIFEST_FILE, Manifest};
use super::registry::Activity;
use super::service::BackupService;
use crate::backup::record::{BackupRecord, BackupStatus, RestoreRecord};
use crate::sync::lock;

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

impl BackupService {
    pub(super) fn view(&self, record: BackupRecord) -> BackupView {
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

    pub(super) async fn record_of(&self, id: i64) -> Result<BackupRecord, BackupError> {
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

    pub(super) fn finished_dir(r: &BackupRecord) -> Result<PathBuf, BackupError> {
        match (r.status, &r.path) {
            (BackupStatus::Ok, Some(p)) => Ok(PathBuf::from(p)),
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
}
