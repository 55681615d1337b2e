//! Program rows (the specs), runtime rows (pid + start time of live children) and intent
//! rows (what warden meant each program to do, written before it acts).

use rusqlite::{OptionalExtension, params};

use super::definitions::{self, Save};
use super::{Store, StoreError};
use crate::program::ProgramSpec;

/// Identity of a child process recorded while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeRow {
    /// Process id.
    pub pid: u32,
    /// OS start time of that pid (see `os::process_start_time`).
    pub start_time: u64,
    /// Unix ms when warden spawned it.
    pub started_at: i64,
}

/// What warden meant a program to do, written (and committed) before it acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntentRow {
    /// A start or restart was requested (or the program runs under its restart policy).
    pub want_running: bool,
    /// The last generation handed to a spawn.
    pub generation: u64,
    /// Children up to this generation were being stopped.
    pub stop_generation: u64,
}

impl Store {
    /// Records what warden means to do with a program; returns once committed.
    pub async fn set_intent(&self, name: &str, row: IntentRow) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            t.execute(
                "INSERT INTO program_intent(name, want_running, generation, stop_generation)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET want_running = ?2, generation = ?3, stop_generation = ?4",
                params![
                    name,
                    row.want_running,
                    i64::try_from(row.generation).unwrap_or(i64::MAX),
                    i64::try_from(row.stop_generation).unwrap_or(i64::MAX)
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The recorded intent of a program (none before its first start).
    pub async fn intent(&self, name: &str) -> Result<Option<IntentRow>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT want_running, generation, stop_generation FROM program_intent WHERE name = ?1",
                params![name],
                |r| {
                    Ok(IntentRow {
                        want_running: r.get(0)?,
                        generation: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        stop_generation: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// All program specs, ordered by name.
    pub async fn program_specs(&self) -> Result<Vec<ProgramSpec>, StoreError> {
        self.named_list(definitions::PROGRAMS)
            .await?
            .into_iter()
            .map(|row| Ok(serde_json::from_value(row.spec)?))
            .collect()
    }

    /// Inserts a new program; `Conflict` if the name is taken.
    pub async fn insert_program(&self, spec: ProgramSpec) -> Result<(), StoreError> {
        self.named_insert(definitions::PROGRAMS, &spec.name, &spec)
            .await
            .map(drop)
    }

    /// Replaces an existing program's spec; `NotFound` if there is none.
    pub async fn update_program(&self, spec: ProgramSpec) -> Result<(), StoreError> {
        self.named_update(definitions::PROGRAMS, &spec.name, &spec)
            .await
    }

    /// Stores new and changed programs in one transaction: all of them, or none.
    pub async fn save_programs(&self, specs: &[(Save, &ProgramSpec)]) -> Result<(), StoreError> {
        let rows: Vec<(Save, &str, &ProgramSpec)> = specs
            .iter()
            .map(|(save, spec)| (*save, spec.name.as_str(), *spec))
            .collect();
        self.named_save_all(definitions::PROGRAMS, &rows).await
    }

    /// Deletes a program (its runtime row goes with it).
    pub async fn delete_program(&self, name: &str) -> Result<(), StoreError> {
        self.named_delete(definitions::PROGRAMS, name, false).await
    }

    /// Records the identity of a freshly spawned child. Awaited before the program is
    /// reported as started, so a crash of warden right after cannot lose it.
    pub async fn set_runtime(&self, name: &str, row: RuntimeRow) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            t.execute(
                "INSERT INTO program_runtime(name, pid, start_time, started_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET pid = ?2, start_time = ?3, started_at = ?4",
                params![name, row.pid, row.start_time as i64, row.started_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets the child of a program (it exited).
    pub async fn clear_runtime(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            t.execute("DELETE FROM program_runtime WHERE name = ?1", params![name])?;
            Ok(())
        })
        .await
    }

    /// Forgets the child `pid` of a program (it exited), unless a newer child was recorded
    /// meanwhile: the clearing is not awaited, so it may land after a restart's
    /// `set_runtime`, and must not erase the new child's identity.
    pub async fn clear_runtime_of(&self, name: &str, pid: u32) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            t.execute(
                "DELETE FROM program_runtime WHERE name = ?1 AND pid = ?2",
                params![name, pid],
            )?;
            Ok(())
        })
        .await
    }

    /// The recorded child of a program, if any.
    pub async fn runtime(&self, name: &str) -> Result<Option<RuntimeRow>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT pid, start_time, started_at FROM program_runtime WHERE name = ?1",
                params![name],
                |r| {
                    Ok(RuntimeRow {
                        pid: r.get(0)?,
                        start_time: r.get::<_, i64>(1)? as u64,
                        started_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }
}
