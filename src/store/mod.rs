//! The SQLite store: one writer thread that batches transactions, a small pool of read
//! connections, and versioned migrations applied at open.
//!
//! Architecture invariant: nothing outside `store` holds a `rusqlite::Connection`. Async
//! code reaches SQLite only through [`Store::write`] (the writer channel) and
//! [`Store::read`] (a pooled connection on a blocking thread), so no async task ever blocks
//! on disk I/O.

pub mod alerts;
pub mod auth;
pub mod backups;
pub mod events;
pub mod metrics;
pub mod programs;
pub mod schedule;
pub mod setup;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Queue depth of the writer. When full, writers wait (backpressure) rather than drop:
/// everything that reaches the store is meant to be durable.
const WRITE_QUEUE: usize = 4096;
/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Read connections; SQLite in WAL mode lets them run beside the writer.
const READERS: usize = 4;

/// Errors from the store. Messages never contain SQL; callers map them to user-facing text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration could not be applied at open.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Opening the database file failed.
    #[error("cannot open database {path}: {message}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A row that must exist does not.
    #[error("{0}")]
    NotFound(String),
    /// A row conflicts with an existing one.
    #[error("{0}")]
    Conflict(String),
    /// The batch this write belonged to failed to commit.
    #[error("database commit failed: {0}")]
    Commit(String),
    /// The store was closed (warden is shutting down).
    #[error("the store is closed")]
    Closed,
    /// A JSON column could not be encoded or decoded.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

/// A unit of work for the writer: runs inside the batch transaction and returns the
/// reply to send once the batch has committed (so callers only hear "done" when durable).
type Job = Box<dyn FnOnce(&Transaction<'_>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// Cheap-to-clone handle to the database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Sends work to the single writer thread.
    writer: mpsc::Sender<Msg>,
    /// Idle read connections. A std mutex: held only to push/pop, never across `.await`.
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent readers to the number of pooled connections.
    reader_permits: Semaphore,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_init.sql")),
        M::up(include_str!("migrations/0002_metrics.sql")),
        M::up(include_str!("migrations/0003_alerts.sql")),
        M::up(include_str!("migrations/0004_backups.sql")),
        M::up(include_str!("migrations/0005_schedule.sql")),
    ])
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies migrations, and starts
    /// the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut conn = Connection::open(path).map_err(|e| open_err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_err(&e))?;
        // FULL: a committed batch survives power loss too, not only a crash of warden.
        // Writes are batched, so the extra fsync is paid per batch, not per row.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_err(&e))?;
        configure(&conn).map_err(|e| open_err(&e))?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migration(e.to_string()))?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_err(&e))?;
            configure(&r).map_err(|e| open_err(&e))?;
            readers.push(r);
        }

        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let inner = Arc::new(Inner {
            writer: tx,
            readers: Mutex::new(readers),
            reader_permits: Semaphore::new(READERS),
        });
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| open_err(&e))?;
        Ok(Store { inner })
    }

    /// Runs `f` in the writer's next batch transaction and returns its result once the
    /// batch has committed. If `f` fails, only its own changes are rolled back.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |txn| {
            let result = run_in_savepoint(txn, f);
            Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.and(result));
            })
        });
        self.inner
            .writer
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a write without waiting for it to commit. Used for append-only records
    /// (events) where the producer must not wait for disk; the queue is bounded, so this
    /// still waits when the writer is far behind. Failures are logged by the writer.
    pub async fn write_detached<F>(&self, what: &'static str, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let job: Job = Box::new(move |txn| {
            let result = run_in_savepoint(txn, f);
            Box::new(move |commit: Result<(), StoreError>| {
                if let Err(e) = commit.and(result) {
                    tracing::error!(what, error = %e, "detached store write failed");
                }
            })
        });
        self.inner
            .writer
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Runs a read-only query on a pooled connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conn = self
            .inner
            .readers
            .lock()
            .map_err(|_| StoreError::Closed)?
            .pop()
            .ok_or(StoreError::Closed)?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|_| StoreError::Closed)?;
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.push(conn);
        }
        result
    }

    /// Waits until everything queued before this call has committed.
    #[cfg(test)]
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    /// Commits everything queued, checkpoints the WAL and stops the writer. Later writes
    /// fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Jobs waiting for the writer (for warden's own metrics).
    pub fn write_queue_depth(&self) -> usize {
        self.inner.writer.max_capacity() - self.inner.writer.capacity()
    }

    /// Checks that the database answers (for `/health`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

fn run_in_savepoint<T>(
    txn: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    txn.execute_batch("SAVEPOINT job")?;
    match f(txn) {
        Ok(v) => {
            txn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            txn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut close: Option<oneshot::Sender<()>> = None;
    while close.is_none() {
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::Close(reply)) => close = Some(reply),
            None => break,
        }
        // Take whatever else is already queued: batching without added latency.
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Close(reply)) => close = Some(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &mut batch);
        }
    }
    // Refuse further work, then finish what is already queued.
    rx.close();
    while let Ok(Msg::Job(j)) = rx.try_recv() {
        batch.push(j);
    }
    if !batch.is_empty() {
        commit_batch(&mut conn, &mut batch);
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "WAL checkpoint at close failed");
    }
    drop(conn);
    if let Some(reply) = close {
        let _ = reply.send(());
    }
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>) {
    let txn = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(t) => t,
        Err(e) => {
            // The jobs cannot run; dropping them drops their reply senders, which their
            // callers see as an error. Detached writes are lost, so say how many.
            tracing::error!(error = %e, jobs = batch.len(), "cannot begin write transaction");
            batch.clear();
            return;
        }
    };
    let replies: Vec<Reply> = batch.drain(..).map(|job| job(&txn)).collect();
    let commit = txn.commit().map_err(StoreError::from);
    if let Err(e) = &commit {
        tracing::error!(error = %e, "write batch failed to commit");
    }
    for reply in replies {
        let r = match &commit {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::Commit(e.to_string())),
        };
        reply(r);
    }
}

/// Current time as unix milliseconds, the timestamp unit of every table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_read_and_rollback_of_one_job_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("open");
        store
            .write(|t| {
                t.execute(
                    "INSERT INTO audit(ts, actor, action, target) VALUES (1,'a','b','c')",
                    [],
                )?;
                Ok(())
            })
            .await
            .expect("write");
        let failing = store.write(|t| -> Result<(), StoreError> {
            t.execute(
                "INSERT INTO audit(ts, actor, action, target) VALUES (2,'a','b','c')",
                [],
            )?;
            Err(StoreError::Conflict("no".into()))
        });
        assert!(failing.await.is_err());
        let n: i64 = store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?))
            .await
            .expect("read");
        assert_eq!(n, 1, "the failing job's insert must be rolled back alone");
        store.close().await;
        assert!(matches!(store.flush().await, Err(StoreError::Closed)));
    }

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }
}
