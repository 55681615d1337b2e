//! What is busy: the program reserved by a running backup or restore (at most one each),
//! and the backups being read (restores, verifications) or deleted, with guards that
//! release them when dropped.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::archive::Progress;
use super::error::BackupError;
use super::service::BackupService;
use crate::sync::lock;

/// What occupies a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    /// A backup is being set up (its row is being written).
    Reserving,
    /// A backup with this id runs.
    Backup(i64),
    /// A restore with this id runs.
    Restore(i64),
}

pub(super) struct Busy {
    pub(super) activity: Activity,
    pub(super) cancel: CancellationToken,
    pub(super) progress: watch::Receiver<Progress>,
}

/// Who uses a backup's files right now.
#[derive(Default)]
pub(super) struct Use {
    /// Running restores and verifications reading it.
    pub(super) readers: usize,
    /// It is being deleted or pruned.
    pub(super) deleting: bool,
}

/// Releases a reader of a backup's files when dropped.
pub(super) struct ReadGuard {
    svc: BackupService,
    id: i64,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut uses = lock(&self.svc.inner.uses);
        if let Some(u) = uses.get_mut(&self.id) {
            u.readers = u.readers.saturating_sub(1);
            if u.readers == 0 && !u.deleting {
                uses.remove(&self.id);
            }
        }
    }
}

/// Frees a program for the next backup or restore when dropped.
pub(super) struct BusyGuard {
    svc: BackupService,
    program: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        lock(&self.svc.inner.busy).remove(&self.program);
    }
}

impl BackupService {
    pub(super) fn reserve(
        &self,
        program: &str,
        activity: Activity,
    ) -> Result<(BusyGuard, CancellationToken, watch::Sender<Progress>), BackupError> {
        let mut busy = lock(&self.inner.busy);
        if let Some(b) = busy.get(program) {
            return Err(BackupError::Conflict(match b.activity {
                Activity::Reserving => format!("a backup of '{program}' is starting"),
                Activity::Backup(id) => {
                    format!("backup {id} of '{program}' is running; wait for it or cancel it")
                }
                Activity::Restore(id) => {
                    format!("restore {id} of '{program}' is running; wait for it")
                }
            }));
        }
        let cancel = self.inner.shutdown.child_token();
        let (tx, rx) = watch::channel(Progress::default());
        busy.insert(
            program.to_string(),
            Busy {
                activity,
                cancel: cancel.clone(),
                progress: rx,
            },
        );
        Ok((
            BusyGuard {
                svc: self.clone(),
                program: program.to_string(),
            },
            cancel,
            tx,
        ))
    }

    pub(super) fn set_activity(&self, program: &str, activity: Activity) {
        if let Some(b) = lock(&self.inner.busy).get_mut(program) {
            b.activity = activity;
        }
    }

    /// Marks a backup as read by a restore or verification; refused while it is deleted.
    pub(super) fn read_backup(&self, id: i64) -> Result<ReadGuard, BackupError> {
        let mut uses = lock(&self.inner.uses);
        let u = uses.entry(id).or_default();
        if u.deleting {
            return Err(BackupError::Conflict(format!(
                "backup {id} is being deleted"
            )));
        }
        u.readers += 1;
        Ok(ReadGuard {
            svc: self.clone(),
            id,
        })
    }

    /// Marks a backup as being deleted; refused while something reads it.
    pub(super) fn begin_delete(&self, id: i64) -> Result<(), BackupError> {
        let mut uses = lock(&self.inner.uses);
        let u = uses.entry(id).or_default();
        if u.readers > 0 {
            return Err(BackupError::Conflict(format!(
                "backup {id} is in use by a running restore or verification"
            )));
        }
        if u.deleting {
            return Err(BackupError::Conflict(format!(
                "backup {id} is already being deleted"
            )));
        }
        u.deleting = true;
        Ok(())
    }

    pub(super) fn end_delete(&self, id: i64) {
        lock(&self.inner.uses).remove(&id);
    }
}
