//! The backup service: verified, never-half-written snapshots of a program's working
//! directory, with consistency steps, retention, verification and restore.
//!
//! Flow of a backup (`BackupService::run`): a row is written (`running`), then a task
//! takes a slot (`backup.max_concurrent`), makes the data consistent (pre steps such as
//! `save-off`/`save-all`, or stopping the program), has a dedicated low-priority thread
//! write and verify the archive (`archive::create`), then ALWAYS runs the post steps (or
//! starts the program again), records the outcome, and applies the retention policy.
//!
//! Architecture invariant: this module talks to programs only through `ProgramHandle`
//! (`send_input`, `stop`, `start`) and the bus; it never touches a child process. It owns
//! every file under backup destinations and the staging/rollback directories of restores.
//! At most one backup or restore runs per program; a backup in use by a running restore
//! (or verification) is never pruned or deleted.

pub mod archive;
mod delete;
mod error;
pub mod manifest;
pub mod record;
mod recover;
mod registry;
mod restore;
mod restore_fs;
pub mod retention;
mod run;
mod service;
pub mod settings;
mod steps;
mod verify;
mod view;
mod walk;

pub use error::BackupError;
pub use service::BackupService;
pub use view::{
    ArchiveFile, BackupId, BackupOptions, BackupPreview, BackupView, RestoreOptions, RestoreView,
};
