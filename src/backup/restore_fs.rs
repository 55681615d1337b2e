//! The file-system side of a restore: where the staging and rollback directories go (next
//! to the target, so the swap is two renames on one file system), carrying over what the
//! backup never covered, the swap itself, and finishing or undoing a swap that a crash
//! interrupted. Blocking functions; the service runs them off the async runtime.

use std::io;
use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::manifest::Manifest;
use super::settings::Filter;
use super::walk::{ItemKind, WalkOptions, walk};
use crate::os;

/// The directories of one restore.
#[derive(Debug, Clone)]
pub struct RestorePaths {
    /// The program's directory, replaced by the swap.
    pub target: PathBuf,
    /// Where the archive is extracted first.
    pub staging: PathBuf,
    /// Where the previous data goes (kept until discarded).
    pub rollback: PathBuf,
}

/// Staging and rollback paths beside `target`, named with `tag` (unique per restore).
pub fn paths(target: &Path, tag: &str) -> Result<RestorePaths, BackupError> {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(BackupError::Failed(format!(
            "cannot restore into {}: it has no parent directory to stage the restore in",
            target.display()
        )));
    };
    let name = name.to_string_lossy();
    Ok(RestorePaths {
        target: target.to_path_buf(),
        staging: parent.join(format!(".{name}.warden-restore-{tag}")),
        rollback: parent.join(format!("{name}.before-restore-{tag}")),
    })
}

/// True if no directory between `root` and `root/rel` is a symlink (so writing there
/// stays inside `root`).
fn no_symlink_between(root: &Path, rel: &str) -> bool {
    let mut cur = root.to_path_buf();
    let mut segs = rel.split('/').peekable();
    while let Some(seg) = segs.next() {
        if segs.peek().is_none() {
            return true;
        }
        cur.push(seg);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return false,
            _ => {}
        }
    }
    true
}

/// Brings what the backup did not cover (entries outside its include/exclude globs, such
/// as a server jar or logs, and everything under `always_keep`, such as backups stored
/// inside the program's directory) from the current target into the staging directory,
/// as hard links where possible (copies otherwise), so the swap replaces only what the
/// backup holds. Returns notes about entries that could not be carried over.
pub fn carry_over(
    paths: &RestorePaths,
    manifest: &Manifest,
    always_keep: &[PathBuf],
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<String>, BackupError> {
    let Ok(root) = paths.target.canonicalize() else {
        return Ok(Vec::new());
    };
    let keep: Vec<PathBuf> = always_keep
        .iter()
        .filter_map(|k| k.canonicalize().ok())
        .collect();
    let filter = Filter::new(&manifest.include, &manifest.exclude).map_err(BackupError::Failed)?;
    let walked = walk(
        &root,
        &filter,
        &WalkOptions {
            everything: true,
            skip: &[],
            cancelled,
        },
    )?;
    let mut notes = walked.skipped;
    let carried = walked
        .items
        .into_iter()
        .filter(|i| !i.in_scope || keep.iter().any(|k| i.abs.starts_with(k)));
    for item in carried {
        let dst = paths.staging.join(&item.rel);
        if std::fs::symlink_metadata(&dst).is_ok() {
            continue;
        }
        if !no_symlink_between(&paths.staging, &item.rel) {
            notes.push(format!(
                "{}: not carried over, a restored symlink is in its path",
                item.rel
            ));
            continue;
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| BackupError::io("cannot create", parent, e))?;
        }
        match item.kind {
            ItemKind::Dir => std::fs::create_dir_all(&dst)
                .map_err(|e| BackupError::io("cannot create", &dst, e))?,
            ItemKind::Symlink { target } => os::symlink(Path::new(&target), &dst)
                .map_err(|e| BackupError::io("cannot create the symlink", &dst, e))?,
            ItemKind::File { .. } => {
                if std::fs::hard_link(&item.abs, &dst).is_err() {
                    std::fs::copy(&item.abs, &dst).map_err(|e| {
                        BackupError::io("cannot copy into the restore", &item.abs, e)
                    })?;
                }
            }
        }
    }
    Ok(notes)
}

/// Moves the target aside to the rollback path and the staging directory into its
/// place. If the second rename fails the first is undone, leaving the target as it was.
/// Returns whether there was previous data (a rollback copy now exists).
pub fn swap(paths: &RestorePaths) -> Result<bool, BackupError> {
    let had_target = paths.target.exists();
    if had_target {
        std::fs::rename(&paths.target, &paths.rollback).map_err(|e| {
            BackupError::io("cannot move the current data aside to", &paths.rollback, e)
        })?;
    }
    if let Err(e) = std::fs::rename(&paths.staging, &paths.target) {
        if had_target && let Err(undo) = std::fs::rename(&paths.rollback, &paths.target) {
            tracing::error!(error = %undo, rollback = %paths.rollback.display(), "cannot move the previous data back after a failed restore");
        }
        return Err(BackupError::io(
            "cannot move the restored data to",
            &paths.target,
            e,
        ));
    }
    if let Some(parent) = paths.target.parent()
        && let Err(e) = os::sync_dir_path(parent)
    {
        tracing::warn!(path = %parent.display(), error = %e, "cannot sync after a restore");
    }
    Ok(had_target)
}

/// How an interrupted restore was settled at start.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The swap had completed; the restore succeeded.
    Completed,
    /// The swap never happened or was undone; the target is as before the restore.
    RolledBack,
}

/// Settles a restore that was running when warden stopped: a swap that completed is kept;
/// anything else is undone (previous data moved back) and staging removed.
pub fn recover(paths: &RestorePaths, rollback_recorded: bool) -> io::Result<Recovery> {
    let staging_exists = paths.staging.exists();
    let target_exists = paths.target.exists();
    let rollback_exists = rollback_recorded && paths.rollback.exists();
    if !staging_exists && target_exists && rollback_exists {
        return Ok(Recovery::Completed);
    }
    if !target_exists && rollback_exists {
        std::fs::rename(&paths.rollback, &paths.target)?;
    }
    if staging_exists {
        std::fs::remove_dir_all(&paths.staging)?;
    }
    Ok(Recovery::RolledBack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, RestorePaths) {
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("world");
        std::fs::create_dir_all(&target).expect("mkdir");
        std::fs::write(target.join("old"), "old").expect("write");
        let p = paths(&target, "t1").expect("paths");
        std::fs::create_dir_all(&p.staging).expect("mkdir");
        std::fs::write(p.staging.join("new"), "new").expect("write");
        (d, p)
    }

    #[test]
    fn swap_keeps_the_previous_data_as_rollback() {
        let (_d, p) = setup();
        assert!(swap(&p).expect("swap"));
        assert!(p.target.join("new").exists());
        assert!(p.rollback.join("old").exists());
        assert!(!p.staging.exists());
    }

    #[test]
    fn a_crash_after_the_first_rename_is_undone() {
        let (_d, p) = setup();
        std::fs::rename(&p.target, &p.rollback).expect("first rename");
        assert_eq!(recover(&p, true).expect("recover"), Recovery::RolledBack);
        assert!(p.target.join("old").exists());
        assert!(!p.staging.exists());
    }

    #[test]
    fn a_completed_swap_is_kept() {
        let (_d, p) = setup();
        swap(&p).expect("swap");
        assert_eq!(recover(&p, true).expect("recover"), Recovery::Completed);
        assert!(p.target.join("new").exists());
    }

    #[test]
    fn out_of_scope_files_are_carried_over() {
        let (_d, p) = setup();
        std::fs::create_dir_all(p.target.join("logs")).expect("mkdir");
        std::fs::write(p.target.join("logs/latest.log"), "log").expect("write");
        std::fs::write(p.target.join("server.jar"), "jar").expect("write");
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": 1, "program": "p", "backup_id": 1, "created_at": "", "created_at_ms": 0,
            "warden_version": "", "source": "", "include": ["old", "new", "backups"], "exclude": [],
            "archive": {"file": "", "bytes": 0, "blake3": "", "format": "", "zstd_level": 3},
            "files": 0, "data_bytes": 0, "entries": []
        }))
        .expect("manifest");
        std::fs::create_dir_all(p.target.join("backups/b1")).expect("mkdir");
        std::fs::write(p.target.join("backups/b1/a.tar.zst"), "zst").expect("write");
        let keep = vec![p.target.join("backups")];
        let notes = carry_over(&p, &manifest, &keep, &|| false).expect("carry");
        assert!(notes.is_empty(), "{notes:?}");
        assert!(p.staging.join("backups/b1/a.tar.zst").exists());
        assert!(p.staging.join("logs/latest.log").exists());
        assert!(p.staging.join("server.jar").exists());
        // In scope but not in the backup: not carried over (the restore removes it).
        assert!(!p.staging.join("old").exists());
    }
}
