//! Errors of the backup service, phrased for the person who asked.

use std::path::{Path, PathBuf};

use crate::backup::record::Mismatch;
use crate::program::FieldError;
use crate::store::StoreError;
use crate::supervisor::SupError;

/// What can go wrong with a backup, verification or restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No such program, backup or restore.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is going on (a backup already runs, the program
    /// runs during a restore…).
    #[error("{0}")]
    Conflict(String),
    /// Settings are invalid.
    #[error("the backup settings are invalid")]
    Invalid(Vec<FieldError>),
    /// Cancelled by a user or by warden shutting down.
    #[error("cancelled")]
    Cancelled,
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The archive does not match its manifest, or holds something it must not.
    #[error("{}", summary(.0))]
    Mismatch(Vec<Mismatch>),
    /// Files kept changing while they were read (and `on_change = "fail"`).
    #[error("files kept changing while they were read: {}", .0.join(", "))]
    Changed(Vec<String>),
    /// Something else failed, in words.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Warden is shutting down.
    #[error("warden is shutting down")]
    ShuttingDown,
}

fn summary(problems: &[Mismatch]) -> String {
    let shown: Vec<String> = problems
        .iter()
        .take(5)
        .map(|m| format!("{}: {}", m.path, m.problem))
        .collect();
    let more = problems.len().saturating_sub(shown.len());
    let mut s = format!(
        "the archive does not match its manifest ({} problem{}): {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        shown.join("; ")
    );
    if more > 0 {
        s.push_str(&format!("; and {more} more"));
    }
    s
}

impl BackupError {
    /// An I/O error with what was being done and where.
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> BackupError {
        BackupError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<SupError> for BackupError {
    fn from(e: SupError) -> BackupError {
        match e {
            SupError::NotFound(_) => BackupError::NotFound(e.to_string()),
            SupError::Conflict(m) | SupError::Unavailable(m) => BackupError::Conflict(m),
            SupError::Exists(_) | SupError::Active { .. } | SupError::NotRunning(_) => {
                BackupError::Conflict(e.to_string())
            }
            SupError::Invalid(d) => BackupError::Invalid(d),
            SupError::Store(s) => BackupError::Store(s),
            SupError::ShuttingDown => BackupError::ShuttingDown,
        }
    }
}
