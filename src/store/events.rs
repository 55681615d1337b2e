//! The durable event log: lifecycle transitions and warden's own events, newest first.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_ms};
use crate::history::{Change, EventRecord};
use crate::program::State;

/// A program's stored state changes around a window (see [`Store::state_history`]).
#[derive(Debug, Clone)]
pub struct StoredStates {
    /// When the program was created, unix ms.
    pub created_at: i64,
    /// The state entered by the last change before the window.
    pub before: Option<State>,
    /// Changes within the window, oldest first.
    pub changes: Vec<Change>,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unix ms.
    pub ts: i64,
    /// Program name, if the event concerns one.
    pub program: Option<String>,
    /// Kind.
    pub kind: String,
    /// Readable summary.
    pub message: String,
    /// Structured details.
    pub data: serde_json::Value,
}

impl NewEvent {
    /// An event that happens now.
    pub fn now(
        program: Option<&str>,
        kind: impl Into<String>,
        message: impl Into<String>,
        data: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            ts: now_ms(),
            program: program.map(str::to_string),
            kind: kind.into(),
            message: message.into(),
            data,
        }
    }
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Deletes at most `?2` events older than `?1`, oldest first. Ordered by time so the walk
/// is the `events_by_ts` range of old rows; ordered by id, it was a scan of the whole
/// table whenever nothing was old.
const PRUNE_EVENTS: &str =
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ?1 ORDER BY ts LIMIT ?2)";

impl Store {
    /// Appends an event without waiting for the commit (the writer queue is bounded, so
    /// this waits only when the writer is far behind). It cannot fail its caller: the
    /// writer counts and logs a lost record, and a store already closed (shutdown) is
    /// logged here. An event is worth keeping, never worth failing the work it reports.
    pub async fn record_event(&self, ev: NewEvent) {
        let queued = self
            .write_detached("event", move |t| {
                t.execute(
                    "INSERT INTO events(ts, program, kind, message, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![ev.ts, ev.program, ev.kind, ev.message, ev.data.to_string()],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = queued {
            tracing::error!(error = %e, "cannot store event");
        }
    }

    /// A page of events, newest first: those with `id < before` (all when `None`), at
    /// most `limit`, for one program or for all.
    pub async fn events(
        &self,
        program: Option<String>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.read(move |c| {
            let before = before.unwrap_or(i64::MAX);
            let mut st = c.prepare_cached(
                "SELECT id, ts, program, kind, message, data FROM events
                 WHERE id < ?1 AND (?2 IS NULL OR program = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![before, program, limit], |r| {
                let data: Option<String> = r.get(5)?;
                let ts: i64 = r.get(1)?;
                Ok(EventRecord {
                    id: r.get(0)?,
                    ts,
                    time: rfc3339(ts),
                    program: r.get(2)?,
                    kind: r.get(3)?,
                    message: r.get(4)?,
                    data: data
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// What the store knows about a program's states around `[from, to]`: when it was
    /// created (`None` when no such program is stored), the state entered by its last
    /// change before `from`, and its changes within the window, oldest first. A change
    /// whose states cannot be read (an event written by a future version) is skipped.
    pub async fn state_history(
        &self,
        program: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<StoredStates>, StoreError> {
        let program = program.to_string();
        self.read(move |c| {
            let created: Option<i64> = c
                .query_row(
                    "SELECT created_at FROM programs WHERE name = ?1",
                    params![program],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(created_at) = created else {
                return Ok(None);
            };
            let state = |v: Option<String>| {
                v.and_then(|s| serde_json::from_value::<State>(serde_json::Value::String(s)).ok())
            };
            let before: Option<String> = c
                .query_row(
                    "SELECT json_extract(data, '$.to') FROM events
                     WHERE program = ?1 AND kind = 'state' AND ts < ?2
                     ORDER BY ts DESC, id DESC LIMIT 1",
                    params![program, from],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let mut st = c.prepare_cached(
                "SELECT ts, json_extract(data, '$.from'), json_extract(data, '$.to') FROM events
                 WHERE program = ?1 AND kind = 'state' AND ts >= ?2 AND ts <= ?3
                 ORDER BY ts, id",
            )?;
            let rows = st.query_map(params![program, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            let mut changes = Vec::new();
            for row in rows {
                let (ts, f, t) = row?;
                if let (Some(from), Some(to)) = (state(f), state(t)) {
                    changes.push(Change { ts, from, to });
                }
            }
            Ok(Some(StoredStates {
                created_at,
                before: state(before),
                changes,
            }))
        })
        .await
    }

    /// Deletes events older than `cutoff_ms`, at most `max_rows` per call so a large
    /// backlog is pruned in small steps. Returns how many were deleted.
    pub async fn prune_events(&self, cutoff_ms: i64, max_rows: u32) -> Result<usize, StoreError> {
        self.write(move |t| Ok(t.execute(PRUNE_EVENTS, params![cutoff_ms, max_rows])?))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pruning when nothing is old reads no rows, however many events are stored.
    #[test]
    fn pruning_reads_only_old_events() {
        let c = crate::store::memory_db();
        c.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO events(ts, kind, message) SELECT 1000 + i, 'started', '' FROM n",
        )
        .expect("events");
        let mut st = c.prepare(PRUNE_EVENTS).expect("sql");
        assert_eq!(st.execute(params![1000, 5000]).expect("prune"), 0);
        let steps = st.get_status(rusqlite::StatementStatus::VmStep);
        assert!(steps < 100, "{steps} steps to find no old event");
        assert_eq!(st.execute(params![1011, 5000]).expect("prune"), 10);
    }
}
