//! Alert channels, rules and the delivery outbox.
//!
//! The outbox is the durable queue between the alert engine and the senders: every
//! notification is a row here (one per channel) before anyone tries to deliver it, and the
//! same rows, once finished, are the per-channel delivery log. Definitions are stored as
//! JSON text; `alerts` owns their shape, so this module never parses them.

use rusqlite::{OptionalExtension, params};

use super::definitions::{self, Kind};
use super::{Store, StoreError, now_ms};

/// Outbox row statuses.
pub mod status {
    /// Waiting for (another) delivery attempt.
    pub const PENDING: &str = "pending";
    /// Delivered (the endpoint answered 2xx).
    pub const DELIVERED: &str = "delivered";
    /// Given up: permanent error or too old.
    pub const FAILED: &str = "failed";
    /// Dropped because the outbox was full.
    pub const DROPPED: &str = "dropped";
}

/// Severity rank stored with each row: the order in which rows are dropped when full.
pub const CRITICAL_RANK: u8 = 2;

/// A stored definition (channel or rule).
#[derive(Debug, Clone)]
pub struct DefinitionRow {
    /// Row id (outbox rows refer to channels by it).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The definition as JSON.
    pub spec: String,
}

/// A notification to queue for one channel.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Channel row id.
    pub channel_id: i64,
    /// 0 info, 1 warning, 2 critical.
    pub severity: u8,
    /// Event kind.
    pub event: String,
    /// Program concerned.
    pub program: Option<String>,
    /// The notification as JSON.
    pub notification: String,
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Row id, stable across retries (receivers can use it to deduplicate).
    pub id: i64,
    /// Channel row id.
    pub channel_id: i64,
    /// Unix ms when queued.
    pub created_at: i64,
    /// 0 info, 1 warning, 2 critical.
    pub severity: u8,
    /// Event kind.
    pub event: String,
    /// Program concerned.
    pub program: Option<String>,
    /// The notification as JSON.
    pub notification: String,
    /// See [`status`].
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix ms of the next attempt (pending rows).
    pub next_at: i64,
    /// Unix ms of the last attempt.
    pub last_attempt_at: Option<i64>,
    /// HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Last error, readable.
    pub last_error: Option<String>,
    /// Unix ms when the row left `pending`.
    pub done_at: Option<i64>,
}

/// The result of one attempt, to record on its row.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// New status.
    pub status: &'static str,
    /// Unix ms of the next attempt (meaningful when still pending).
    pub next_at: i64,
    /// HTTP status, when the endpoint answered.
    pub http_status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

/// What queuing did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Enqueued {
    /// Ids of the queued rows, in input order (rows queued as already dropped included).
    pub ids: Vec<i64>,
    /// Rows dropped to stay within the cap: older ones evicted plus new ones refused.
    pub dropped: u64,
    /// Pending rows after queuing (may exceed the cap only by critical rows).
    pub pending: u64,
}

/// Row counts by status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OutboxCounts {
    /// Waiting for delivery.
    pub pending: u64,
    /// Delivered (still in the log).
    pub delivered: u64,
    /// Failed (still in the log).
    pub failed: u64,
    /// Dropped (still in the log).
    pub dropped: u64,
}

const ROW_COLUMNS: &str = "id, channel_id, created_at, severity, event, program, notification, status, attempts, next_at, last_attempt_at, last_status, last_error, done_at";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        channel_id: r.get(1)?,
        created_at: r.get(2)?,
        severity: r.get(3)?,
        event: r.get(4)?,
        program: r.get(5)?,
        notification: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_at: r.get(9)?,
        last_attempt_at: r.get(10)?,
        last_status: r.get(11)?,
        last_error: r.get(12)?,
        done_at: r.get(13)?,
    })
}

/// Which definition table.
#[derive(Debug, Clone, Copy)]
pub enum Definitions {
    /// `alert_channels`.
    Channels,
    /// `alert_rules`.
    Rules,
}

impl Definitions {
    fn kind(self) -> Kind {
        match self {
            Definitions::Channels => definitions::ALERT_CHANNELS,
            Definitions::Rules => definitions::ALERT_RULES,
        }
    }
}

impl Store {
    /// Every channel or rule, by name.
    pub async fn alert_definitions(
        &self,
        which: Definitions,
    ) -> Result<Vec<DefinitionRow>, StoreError> {
        Ok(self
            .named_list(which.kind())
            .await?
            .into_iter()
            .map(|row| DefinitionRow {
                id: row.id,
                name: row.name,
                spec: row.spec.to_string(),
            })
            .collect())
    }

    /// Inserts a definition; `Conflict` if the name is taken. Returns its id.
    pub async fn insert_alert_definition(
        &self,
        which: Definitions,
        name: String,
        spec: String,
    ) -> Result<i64, StoreError> {
        let spec: serde_json::Value = serde_json::from_str(&spec)?;
        self.named_insert(which.kind(), &name, &spec).await
    }

    /// Replaces a definition; `NotFound` if there is none.
    pub async fn update_alert_definition(
        &self,
        which: Definitions,
        name: String,
        spec: String,
    ) -> Result<(), StoreError> {
        let spec: serde_json::Value = serde_json::from_str(&spec)?;
        self.named_update(which.kind(), &name, &spec).await
    }

    /// Deletes a definition (a channel's outbox rows go with it); `NotFound` if none.
    pub async fn delete_alert_definition(
        &self,
        which: Definitions,
        name: String,
    ) -> Result<(), StoreError> {
        self.named_delete(which.kind(), &name, true).await
    }

    /// Queues notifications in one transaction, keeping at most `cap` pending rows.
    ///
    /// Drop policy when full: a new row evicts the oldest pending row of the lowest
    /// severity that is below critical and not above its own; when there is none, a new
    /// non-critical row is stored as already `dropped` (so the log shows it), and a new
    /// critical row is queued anyway — critical notifications (crashes) are never dropped,
    /// so only they can push the outbox past its cap.
    pub async fn outbox_enqueue(
        &self,
        items: Vec<NewDelivery>,
        cap: usize,
    ) -> Result<Enqueued, StoreError> {
        self.write(move |t| {
            let now = now_ms();
            let pending: i64 = t.query_row(
                "SELECT count(*) FROM alert_outbox WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?;
            let mut pending = u64::try_from(pending).unwrap_or(0);
            let mut out = Enqueued::default();
            let full_note = format!("dropped: the outbox was full ({cap} undelivered notifications)");
            for item in items {
                let mut state = status::PENDING;
                if pending >= cap as u64 {
                    let victim: Option<i64> = t
                        .query_row(
                            "SELECT id FROM alert_outbox
                             WHERE status = 'pending' AND severity < ?1 AND severity <= ?2
                             ORDER BY severity, id LIMIT 1",
                            params![CRITICAL_RANK, item.severity],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(victim) = victim {
                        t.execute(
                            "UPDATE alert_outbox SET status = 'dropped', done_at = ?2, last_error = ?3
                             WHERE id = ?1",
                            params![victim, now, full_note],
                        )?;
                        out.dropped += 1;
                        pending -= 1;
                    } else if item.severity < CRITICAL_RANK {
                        state = status::DROPPED;
                    }
                }
                let dropped = state == status::DROPPED;
                t.execute(
                    "INSERT INTO alert_outbox(channel_id, created_at, severity, event, program, notification, status, next_at, done_at, last_error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?2, ?8, ?9)",
                    params![
                        item.channel_id,
                        now,
                        item.severity,
                        item.event,
                        item.program,
                        item.notification,
                        state,
                        dropped.then_some(now),
                        dropped.then_some(&full_note),
                    ],
                )?;
                out.ids.push(t.last_insert_rowid());
                if dropped {
                    out.dropped += 1;
                } else {
                    pending += 1;
                }
            }
            out.pending = pending;
            Ok(out)
        })
        .await
    }

    /// The oldest pending row of every channel (due or not): each channel delivers in
    /// order, so only its head is ever attempted.
    pub async fn outbox_heads(&self) -> Result<Vec<DeliveryRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM alert_outbox WHERE id IN
                 (SELECT min(id) FROM alert_outbox WHERE status = 'pending' GROUP BY channel_id)"
            ))?;
            let rows = st.query_map([], delivery_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Records the outcome of an attempt. A row dropped or expired meanwhile keeps its
    /// status unless the attempt delivered it.
    pub async fn outbox_record(&self, id: i64, rec: AttemptRecord) -> Result<(), StoreError> {
        self.write(move |t| {
            let now = now_ms();
            let done = (rec.status != status::PENDING).then_some(now);
            t.execute(
                "UPDATE alert_outbox SET status = ?2, attempts = attempts + 1, next_at = ?3,
                     last_attempt_at = ?4, last_status = ?5, last_error = ?6, done_at = ?7
                 WHERE id = ?1 AND (status = 'pending' OR ?2 = 'delivered')",
                params![
                    id,
                    rec.status,
                    rec.next_at,
                    now,
                    rec.http_status,
                    rec.error,
                    done
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Marks pending rows queued before `cutoff_ms` as failed (too old). Returns how many.
    pub async fn outbox_expire(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.write(move |t| {
            Ok(t.execute(
                "UPDATE alert_outbox SET status = 'failed', done_at = ?2,
                     last_error = coalesce(last_error || '; ', '') || 'gave up: not delivered within alerts.max_age_minutes'
                 WHERE status = 'pending' AND created_at < ?1",
                params![cutoff_ms, now_ms()],
            )?)
        })
        .await
    }

    /// One outbox row.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<DeliveryRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {ROW_COLUMNS} FROM alert_outbox WHERE id = ?1"),
                params![id],
                delivery_row,
            )
            .optional()?)
        })
        .await
    }

    /// A page of a channel's rows, newest first: those with `id < before`, at most `limit`.
    pub async fn outbox_log(
        &self,
        channel_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM alert_outbox WHERE channel_id = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![channel_id, before.unwrap_or(i64::MAX), limit],
                delivery_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Row counts by status.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT status, count(*) FROM alert_outbox GROUP BY status")?;
            let mut counts = OutboxCounts::default();
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (s, n) = row?;
                let n = u64::try_from(n).unwrap_or(0);
                match s.as_str() {
                    status::PENDING => counts.pending = n,
                    status::DELIVERED => counts.delivered = n,
                    status::FAILED => counts.failed = n,
                    _ => counts.dropped += n,
                }
            }
            Ok(counts)
        })
        .await
    }

    /// Deletes finished rows older than `cutoff_ms`, at most `max_rows` per call.
    pub async fn outbox_prune(&self, cutoff_ms: i64, max_rows: u32) -> Result<usize, StoreError> {
        self.write(move |t| {
            Ok(t.execute(
                "DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox
                 WHERE status != 'pending' AND done_at < ?1 ORDER BY done_at LIMIT ?2)",
                params![cutoff_ms, max_rows],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with_channel() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("a.db")).expect("open");
        let id = store
            .insert_alert_definition(Definitions::Channels, "c".into(), "{}".into())
            .await
            .expect("channel");
        (dir, store, id)
    }

    fn item(channel_id: i64, severity: u8, event: &str) -> NewDelivery {
        NewDelivery {
            channel_id,
            severity,
            event: event.into(),
            program: None,
            notification: "{}".into(),
        }
    }

    async fn statuses(store: &Store, channel: i64) -> Vec<(String, String)> {
        let mut rows = store.outbox_log(channel, None, 100).await.expect("log");
        rows.reverse();
        rows.into_iter().map(|r| (r.event, r.status)).collect()
    }

    #[tokio::test]
    async fn full_outbox_drops_oldest_low_severity_and_never_critical() {
        let (_dir, store, ch) = store_with_channel().await;
        let first = store
            .outbox_enqueue(
                vec![
                    item(ch, 1, "warn1"),
                    item(ch, 0, "info1"),
                    item(ch, 2, "crit1"),
                ],
                3,
            )
            .await
            .expect("enqueue");
        assert_eq!(first.dropped, 0);
        assert_eq!(first.pending, 3);
        // Full: a warning evicts the info row (lowest severity first).
        let r = store
            .outbox_enqueue(vec![item(ch, 1, "warn2")], 3)
            .await
            .expect("enqueue");
        assert_eq!(r.dropped, 1);
        // An info row finds nothing at or below its severity: it is refused (kept as dropped).
        let r = store
            .outbox_enqueue(vec![item(ch, 0, "info2")], 3)
            .await
            .expect("enqueue");
        assert_eq!((r.dropped, r.pending), (1, 3));
        // A critical row evicts the oldest warning.
        store
            .outbox_enqueue(vec![item(ch, 2, "crit2")], 3)
            .await
            .expect("enqueue");
        store
            .outbox_enqueue(vec![item(ch, 2, "crit3")], 3)
            .await
            .expect("enqueue");
        // Only criticals left: another critical goes past the cap rather than being dropped.
        let r = store
            .outbox_enqueue(vec![item(ch, 2, "crit4")], 3)
            .await
            .expect("enqueue");
        assert_eq!((r.dropped, r.pending), (0, 4));
        let got = statuses(&store, ch).await;
        let want = [
            ("warn1", "dropped"),
            ("info1", "dropped"),
            ("crit1", "pending"),
            ("warn2", "dropped"),
            ("info2", "dropped"),
            ("crit2", "pending"),
            ("crit3", "pending"),
            ("crit4", "pending"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        let counts = store.outbox_counts().await.expect("counts");
        assert_eq!((counts.pending, counts.dropped), (4, 4));
    }

    #[tokio::test]
    async fn heads_are_the_oldest_pending_row_per_channel() {
        let (_dir, store, a) = store_with_channel().await;
        let b = store
            .insert_alert_definition(Definitions::Channels, "d".into(), "{}".into())
            .await
            .expect("channel");
        let q = store
            .outbox_enqueue(
                vec![item(a, 0, "a1"), item(b, 0, "b1"), item(a, 0, "a2")],
                100,
            )
            .await
            .expect("enqueue");
        let heads = store.outbox_heads().await.expect("heads");
        let mut events: Vec<_> = heads.iter().map(|h| h.event.clone()).collect();
        events.sort();
        assert_eq!(events, ["a1", "b1"]);
        store
            .outbox_record(
                q.ids[0],
                AttemptRecord {
                    status: status::DELIVERED,
                    next_at: 0,
                    http_status: Some(200),
                    error: None,
                },
            )
            .await
            .expect("record");
        let heads = store.outbox_heads().await.expect("heads");
        assert!(heads.iter().any(|h| h.event == "a2"));
        let row = store
            .outbox_row(q.ids[0])
            .await
            .expect("row")
            .expect("exists");
        assert_eq!((row.status.as_str(), row.attempts), ("delivered", 1));
        // Deleting a channel deletes its rows.
        store
            .delete_alert_definition(Definitions::Channels, "c".into())
            .await
            .expect("delete");
        assert!(store.outbox_row(q.ids[0]).await.expect("row").is_none());
    }
}
