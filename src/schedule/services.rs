//! The services task kinds need besides programs and jobs: game servers (RCON,
//! broadcast, player counts) and backups. The scheduler calls these small traits and knows
//! nothing else about those services; the implementations for `games::Games` and
//! `backup::BackupService` are below, and `server.rs` builds [`Services`] from them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::backup::record::BackupStatus;

/// A boxed future answering with a result or a readable error.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What schedules need from the games integration.
pub trait GameOps: Send + Sync {
    /// Sends an RCON command to the program's game server; answers its reply.
    fn rcon<'a>(&'a self, program: &'a str, command: &'a str) -> BoxFut<'a, String>;
    /// Broadcasts a message to the players of the program's game server.
    fn broadcast<'a>(&'a self, program: &'a str, message: &'a str) -> BoxFut<'a, ()>;
    /// Players currently online on the program's game server.
    fn players<'a>(&'a self, program: &'a str) -> BoxFut<'a, u32>;
}

/// What schedules need from the backup integration.
pub trait BackupOps: Send + Sync {
    /// Makes a backup of `program` (`reason` says who asked) and waits for it; answers a
    /// short description of the result, or why it failed.
    fn backup<'a>(&'a self, program: &'a str, reason: &'a str) -> BoxFut<'a, String>;
}

/// What schedules need from the update service.
pub trait UpdateOps: Send + Sync {
    /// Updates `program` to its latest build and waits for the end; answers how it ended.
    fn update<'a>(&'a self, program: &'a str) -> BoxFut<'a, String>;
}

/// The services schedules use.
#[derive(Clone)]
pub struct Services {
    /// Game servers.
    pub games: Arc<dyn GameOps>,
    /// Backups.
    pub backups: Arc<dyn BackupOps>,
    /// Updates of installed servers.
    pub updates: Arc<dyn UpdateOps>,
}

impl UpdateOps for crate::install::update::Updater {
    fn update<'a>(&'a self, program: &'a str) -> BoxFut<'a, String> {
        Box::pin(async move { self.apply_to_end(program).await })
    }
}

impl GameOps for crate::games::Games {
    fn rcon<'a>(&'a self, program: &'a str, command: &'a str) -> BoxFut<'a, String> {
        Box::pin(async move {
            crate::games::Games::rcon(self, program, command)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn broadcast<'a>(&'a self, program: &'a str, message: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            crate::games::Games::broadcast(self, program, message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn players<'a>(&'a self, program: &'a str) -> BoxFut<'a, u32> {
        Box::pin(async move {
            crate::games::Games::players(self, program)
                .await
                .map(|p| p.online)
                .map_err(|e| e.to_string())
        })
    }
}

impl BackupOps for crate::backup::BackupService {
    fn backup<'a>(&'a self, program: &'a str, reason: &'a str) -> BoxFut<'a, String> {
        Box::pin(async move {
            let opts = crate::backup::BackupOptions {
                reason: reason.to_string(),
            };
            let r = self
                .run_to_end(program, opts)
                .await
                .map_err(|e| e.to_string())?;
            match r.status {
                BackupStatus::Ok => Ok(format!(
                    "backup {} of '{program}': {} files, {} bytes archived",
                    r.id,
                    r.files.unwrap_or(0),
                    r.archive_bytes.unwrap_or(0)
                )),
                status => Err(format!(
                    "backup {} of '{program}' {status}{}",
                    r.id,
                    r.error.map(|e| format!(": {e}")).unwrap_or_default()
                )),
            }
        })
    }
}
