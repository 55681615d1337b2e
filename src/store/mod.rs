//! The SQLite store: one writer thread that batches transactions, a small pool of read
//! connections, and versioned migrations applied at open.
//!
//! Architecture invariant: nothing outside `store` holds a `rusqlite::Connection`. Async
//! code reaches SQLite only through [`Store::write`] (the writer channel) and
//! [`Store::read`] (a pooled connection on a blocking thread), so no async task ever blocks
//! on disk I/O.

pub mod access;
pub mod alerts;
pub mod auth;
pub mod backups;
pub mod definitions;
pub mod events;
pub mod fleet;
pub mod metrics;
pub mod programs;
pub mod schedule;
pub mod sealed;
pub mod setup;
pub mod updates;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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
/// Prepared statements the writer keeps.
const WRITER_STATEMENTS: usize = 64;

/// Errors from the store. Messages never contain SQL; callers map them to user-facing text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The disk holding the data directory is full (SQLite's `SQLITE_FULL`). The path is
    /// filled in by [`Store`] before the error leaves it.
    #[error("the disk holding warden's data directory {} is full; free space there", .0.display())]
    DiskFull(PathBuf),
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
    /// A secret field could not be sealed or opened (the key is missing or another one).
    #[error("{0}")]
    Secret(String),
    /// A JSON column could not be encoded or decoded.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            StoreError::DiskFull(PathBuf::new())
        } else {
            StoreError::Sqlite(e)
        }
    }
}

impl StoreError {
    /// Names `dir` in a disk-full error that does not name its directory yet.
    fn located(self, dir: &Path) -> StoreError {
        match self {
            StoreError::DiskFull(p) if p.as_os_str().is_empty() => {
                StoreError::DiskFull(dir.to_path_buf())
            }
            other => other,
        }
    }
}

/// How the writer is doing, for `/health`, `/metrics` and the loss event.
#[derive(Debug, Clone, Default)]
pub struct StoreHealth {
    /// Unix ms of the last batch that committed.
    pub last_commit_ms: Option<i64>,
    /// Unix ms of the first failed batch since the last success; `None` while writes work.
    pub failing_since_ms: Option<i64>,
    /// Why the last batch failed (no SQL, no data).
    pub last_error: Option<String>,
    /// The last failure was a full disk.
    pub disk_full: bool,
    /// Records written without a waiting caller (events, audit) that were lost since
    /// start, e.g. while the disk was full.
    pub writes_lost: u64,
}

/// Shared between the writer thread and the handles. A std mutex: held only to copy or
/// update a few fields, never across `.await` or I/O.
struct WriterHealth {
    state: Mutex<StoreHealth>,
    /// Whether writes fail now, for those who react to a change (`Store::failing`)
    /// instead of polling.
    failing: tokio::sync::watch::Sender<bool>,
    /// Unix ms when a failure was last logged: a disk that flaps between some room and
    /// none is logged at most once a minute. Used by the writer thread only.
    logged_ms: std::sync::atomic::AtomicI64,
    /// A failure was logged since the last "work again" line.
    told: std::sync::atomic::AtomicBool,
}

impl Default for WriterHealth {
    fn default() -> Self {
        WriterHealth {
            state: Mutex::default(),
            failing: tokio::sync::watch::Sender::new(false),
            logged_ms: Default::default(),
            told: Default::default(),
        }
    }
}

impl WriterHealth {
    fn update(&self, f: impl FnOnce(&mut StoreHealth)) {
        let failing = {
            let mut h = crate::sync::lock(&self.state);
            f(&mut h);
            h.failing_since_ms.is_some()
        };
        self.failing
            .send_if_modified(|v| std::mem::replace(v, failing) != failing);
    }

    fn snapshot(&self) -> StoreHealth {
        self.state.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// A unit of work for the writer: runs inside the batch transaction and returns the
/// reply to send once the batch has committed (so callers only hear "done" when durable),
/// and whether the job itself hit a full disk (the batch may still commit without it).
type Job = Box<dyn FnOnce(&Transaction<'_>) -> (Reply, bool) + Send>;
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum Msg {
    Job(Job),
    /// Give the writer connection's unused page cache back (`Store::release_memory`).
    ReleaseMemory,
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
    /// The data directory (the database's folder), named in disk-full errors.
    dir: PathBuf,
    /// The writer's state, updated by the writer thread.
    health: Arc<WriterHealth>,
    /// Seals and opens the secret fields of definitions (`sealed`).
    secrets: crate::seal::Sealer,
}

/// An in-memory database with the current schema, for unit tests of the SQL itself.
#[cfg(test)]
pub(crate) fn memory_db() -> Connection {
    let mut c = Connection::open_in_memory().expect("in-memory database");
    migrations().to_latest(&mut c).expect("schema");
    c
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_init.sql")),
        M::up(include_str!("migrations/0002_metrics.sql")),
        M::up(include_str!("migrations/0003_alerts.sql")),
        M::up(include_str!("migrations/0004_backups.sql")),
        M::up(include_str!("migrations/0005_schedule.sql")),
        M::up(include_str!("migrations/0006_program_intent.sql")),
        M::up(include_str!("migrations/0007_access.sql")),
        M::up(include_str!("migrations/0008_fleet.sql")),
        M::up(include_str!("migrations/0009_auth.sql")),
        M::up(include_str!("migrations/0010_updates.sql")),
        M::up(include_str!("migrations/0011_secrets.sql")),
        M::up(include_str!("migrations/0012_steam_account.sql")),
        M::up(include_str!("migrations/0013_metric_10m.sql")),
        M::up(include_str!("migrations/0014_updates_follow_programs.sql")),
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
        // Room for every statement the writer runs in steady state (sample and event
        // inserts, each rollup tier of both families, their state rows, pruning…): with
        // rusqlite's default of 16 they evicted each other and were parsed again every
        // batch.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let dir = path
            .parent()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
            .unwrap_or_default();
        let secrets = open_secrets(&mut conn, &dir)?;

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
        let health = Arc::new(WriterHealth::default());
        let inner = Arc::new(Inner {
            writer: tx,
            readers: Mutex::new(readers),
            reader_permits: Semaphore::new(READERS),
            dir: dir.clone(),
            health: health.clone(),
            secrets,
        });
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                // However the writer ends other than by `close`, `/health` names it.
                let part = crate::health::watch("store-writer");
                writer_loop(conn, rx, &health, &dir);
                part.finish();
            })
            .map_err(|e| open_err(&e))?;
        Ok(Store { inner })
    }

    /// The key that seals the secret fields of definitions.
    pub(crate) fn secrets(&self) -> &crate::seal::Sealer {
        &self.inner.secrets
    }

    /// Gives the page caches of idle connections back to the allocator (SQLite keeps up
    /// to ~2 MB per connection after a burst such as an import or a long history read).
    /// Connections in use keep theirs; the writer frees its own between batches. Called by
    /// `memory::trim_loop` after private memory grew, never on a hot path.
    pub fn release_memory(&self) {
        if let Ok(idle) = self.inner.readers.lock() {
            for conn in idle.iter() {
                let _ = conn.release_memory();
            }
        }
        let _ = self.inner.writer.try_send(Msg::ReleaseMemory);
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
            let full = matches!(result, Err(StoreError::DiskFull(_)));
            let reply: Reply = Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.and(result));
            });
            (reply, full)
        });
        self.inner
            .writer
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| e.located(&self.inner.dir))
    }

    /// Inserts or replaces the row of `table` whose `key.0` column is `key.1`, setting
    /// its `value.0` column to `value.1` (settings, the Steam account): one statement for
    /// the key-value tables.
    pub(crate) async fn upsert(
        &self,
        table: &'static str,
        key: (&'static str, String),
        value: (&'static str, String),
    ) -> Result<(), StoreError> {
        let ((key_col, key), (value_col, value)) = (key, value);
        self.write(move |t| {
            t.execute(
                &format!(
                    "INSERT INTO {table}({key_col}, {value_col}) VALUES (?1, ?2)
                     ON CONFLICT({key_col}) DO UPDATE SET {value_col} = excluded.{value_col}"
                ),
                rusqlite::params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    /// Queues a write without waiting for it to commit. Used for append-only records
    /// (events) where the producer must not wait for disk; the queue is bounded, so this
    /// still waits when the writer is far behind. A failure is counted in
    /// [`StoreHealth::writes_lost`]; the writer logs failing batches (once, not per record).
    pub async fn write_detached<F>(&self, what: &'static str, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let health = self.inner.health.clone();
        let job: Job = Box::new(move |txn| {
            let result = run_in_savepoint(txn, f);
            let full = matches!(result, Err(StoreError::DiskFull(_)));
            let reply: Reply = Box::new(move |commit: Result<(), StoreError>| {
                match (commit, result) {
                    (Ok(()), Ok(())) => {}
                    // The batch failed, or the disk is full: the writer has said so
                    // already (once, not per record).
                    (Err(_), _) | (Ok(()), Err(StoreError::DiskFull(_))) => {
                        health.update(|h| h.writes_lost += 1)
                    }
                    // This record alone failed (e.g. a constraint): worth a line.
                    (Ok(()), Err(e)) => {
                        health.update(|h| h.writes_lost += 1);
                        tracing::error!(what, error = %e, "detached store write failed");
                    }
                }
            });
            (reply, full)
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
        let conn = crate::sync::lock(&self.inner.readers)
            .pop()
            .ok_or(StoreError::Closed)?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|_| StoreError::Closed)?;
        crate::sync::lock(&self.inner.readers).push(conn);
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

    /// How the writer is doing (for `/health` and `/metrics`).
    pub fn health(&self) -> StoreHealth {
        self.inner.health.snapshot()
    }

    /// Whether writes fail now; `changed()` wakes when that flips.
    pub fn failing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.health.failing.subscribe()
    }

    /// The data directory (the database's folder), absolute.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
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

/// The pending key of an interrupted `warden secrets rotate`.
fn pending_key_path(dir: &Path) -> PathBuf {
    dir.join(format!("{}.new", crate::seal::SECRETS.file))
}

fn key_from_env() -> bool {
    std::env::var(crate::seal::SECRET_KEY_ENV).is_ok_and(|v| !v.trim().is_empty())
}

/// The key of the definitions' secrets, after finishing an interrupted rotation and
/// sealing the plain secrets an older warden wrote. Runs before the writer starts.
fn open_secrets(conn: &mut Connection, dir: &Path) -> Result<crate::seal::Sealer, StoreError> {
    use crate::seal::{SECRETS, Sealer};
    // Deleted content is overwritten, so a sealed (or removed) secret leaves no plain copy
    // in a free page.
    conn.pragma_update(None, "secure_delete", "ON")?;
    let pending = pending_key_path(dir);
    if !key_from_env() && pending.exists() {
        // A rotation wrote its new key, then stopped: the database says which key is
        // right (the reseal is one transaction).
        let new = Sealer::load_file(&pending, SECRETS).map_err(StoreError::Secret)?;
        let t = conn.transaction()?;
        let opens = sealed::key_opens_rows(&t, &new)?;
        drop(t);
        if opens == Some(true) {
            std::fs::rename(&pending, crate::seal::key_path(dir, SECRETS)).map_err(|e| {
                StoreError::Secret(format!(
                    "cannot finish the interrupted key rotation (rename {}): {e}",
                    pending.display()
                ))
            })?;
            tracing::info!(
                "finished an interrupted `warden secrets rotate`: the new key is in place"
            );
        } else {
            let _ = std::fs::remove_file(&pending);
            tracing::info!(
                "an interrupted `warden secrets rotate` had not resealed anything; kept the old key"
            );
        }
    }
    let sealer = Sealer::for_secrets(dir).map_err(StoreError::Secret)?;
    let t = conn.transaction()?;
    let n = sealed::seal_plain_rows(&t, &sealer)?;
    t.commit()?;
    if n > 0 {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        tracing::info!(
            definitions = n,
            "sealed the plain-text secrets written by an older warden"
        );
    }
    Ok(sealer)
}

/// `warden secrets rotate`: re-encrypts every secret field of the database at `path`
/// under a new key and replaces the key file. The new key is written (and synced) under
/// a temporary name first, the database is resealed in one transaction, then the file is
/// renamed over the old key; [`Store::open`] finishes or undoes a rotation interrupted
/// between those steps, so the database and the key never disagree after a crash.
/// Returns how many definitions were resealed. The caller holds the data directory's lock.
pub fn rotate_secrets(path: &Path) -> Result<usize, StoreError> {
    use crate::seal::{SECRET_KEY_ENV, SECRETS, Sealer};
    if key_from_env() {
        return Err(StoreError::Secret(format!(
            "the key comes from {SECRET_KEY_ENV}, which warden cannot replace; unset it to use the key file, or rotate it yourself"
        )));
    }
    let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = path
        .parent()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        .unwrap_or_default();
    let mut conn = Connection::open(path).map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| open_err(&e))?;
    configure(&conn).map_err(|e| open_err(&e))?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let old = open_secrets(&mut conn, &dir)?;
    let (new, text) = Sealer::generate(SECRETS).map_err(StoreError::Secret)?;
    let pending = pending_key_path(&dir);
    let key_err = |e: std::io::Error| {
        StoreError::Secret(format!(
            "cannot write the new key {}: {e}",
            pending.display()
        ))
    };
    crate::os::write_private(&pending, &text).map_err(key_err)?;
    std::fs::File::open(&pending)
        .and_then(|f| f.sync_all())
        .map_err(key_err)?;
    let t = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = match sealed::reseal_rows(&t, &old, &new) {
        Ok(n) => n,
        Err(e) => {
            drop(t);
            let _ = std::fs::remove_file(&pending);
            return Err(e);
        }
    };
    t.commit()?;
    let key = crate::seal::key_path(&dir, SECRETS);
    std::fs::rename(&pending, &key).map_err(|e| {
        StoreError::Secret(format!(
            "the secrets are resealed but {} could not replace {}: {e}; the next start of warden finishes the rotation",
            pending.display(),
            key.display()
        ))
    })?;
    // The rename is durable once the folder is synced (Unix; Windows has no folder sync).
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(n)
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

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    health: &WriterHealth,
    dir: &Path,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut close: Option<oneshot::Sender<()>> = None;
    while close.is_none() {
        let mut release = false;
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::ReleaseMemory) => release = true,
            Some(Msg::Close(reply)) => close = Some(reply),
            None => break,
        }
        // Take whatever else is already queued: batching without added latency.
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::ReleaseMemory) => release = true,
                Ok(Msg::Close(reply)) => close = Some(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_guarded(&mut conn, &mut batch, health, dir);
        }
        if release {
            // Outside any transaction, so every cached page is clean and can go.
            let _ = conn.release_memory();
        }
    }
    // Refuse further work, then finish what is already queued.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Job(j) = msg {
            batch.push(j);
        }
    }
    if !batch.is_empty() {
        commit_guarded(&mut conn, &mut batch, health, dir);
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "WAL checkpoint at close failed");
    }
    drop(conn);
    if let Some(reply) = close {
        let _ = reply.send(());
    }
}

/// Commits one batch and records the outcome. A panic inside a job (a bug) is caught
/// here: it fails that batch, not the writer, which must outlive anything a job does.
/// Failures are logged when they start and then at most once a minute, never per batch:
/// a full disk must not turn into a flood of log lines.
fn commit_guarded(conn: &mut Connection, batch: &mut Vec<Job>, health: &WriterHealth, dir: &Path) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commit_batch(conn, batch, dir)
    }));
    let (result, replies) = match outcome {
        Ok(r) => r,
        Err(_) => {
            // The jobs' reply senders were dropped with the unwinding: callers see an
            // error.
            batch.clear();
            (
                Err(StoreError::Commit("a write job panicked".into())),
                Vec::new(),
            )
        }
    };
    let now = now_ms();
    let before = health.snapshot();
    match result {
        Ok(()) => {
            if let Some(since) = before.failing_since_ms
                && health.told.swap(false, Ordering::Relaxed)
            {
                tracing::info!(
                    failed_for_ms = now - since,
                    records_lost = before.writes_lost,
                    "database writes work again"
                );
            }
            health.update(|h| {
                h.last_commit_ms = Some(now);
                h.failing_since_ms = None;
                h.last_error = None;
                h.disk_full = false;
            });
        }
        Err(e) => {
            let disk_full = matches!(e, StoreError::DiskFull(_));
            let message = e.to_string();
            let changed = before.last_error.as_deref() != Some(message.as_str());
            if changed && now - health.logged_ms.load(Ordering::Relaxed) >= 60_000 {
                health.logged_ms.store(now, Ordering::Relaxed);
                health.told.store(true, Ordering::Relaxed);
                tracing::error!(error = %message, "database writes fail; records are counted as lost until they work again (logged at most once a minute)");
            }
            health.update(|h| {
                h.failing_since_ms.get_or_insert(now);
                h.last_error = Some(message);
                h.disk_full = disk_full;
            });
        }
    }
    // Only now: a caller that hears of a failure finds `/health` saying so already.
    for (reply, r) in replies {
        reply(r);
    }
}

/// Runs and commits one batch. Returns the batch's outcome (a job that hit a full disk
/// makes it a disk-full failure even if the rest committed) and each reply with the
/// result to send it.
#[allow(clippy::type_complexity)]
fn commit_batch(
    conn: &mut Connection,
    batch: &mut Vec<Job>,
    dir: &Path,
) -> (Result<(), StoreError>, Vec<(Reply, Result<(), StoreError>)>) {
    let txn = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(t) => t,
        Err(e) => {
            // The jobs cannot run; dropping them drops their reply senders, which their
            // callers see as an error.
            batch.clear();
            return (Err(StoreError::from(e).located(dir)), Vec::new());
        }
    };
    let ran: Vec<(Reply, bool)> = batch.drain(..).map(|job| job(&txn)).collect();
    let any_full = ran.iter().any(|(_, full)| *full);
    let commit = txn.commit().map_err(|e| StoreError::from(e).located(dir));
    let replies = ran
        .into_iter()
        .map(|(reply, _)| {
            let r = match &commit {
                Ok(()) => Ok(()),
                Err(StoreError::DiskFull(d)) => Err(StoreError::DiskFull(d.clone())),
                Err(e) => Err(StoreError::Commit(e.to_string())),
            };
            (reply, r)
        })
        .collect();
    let outcome = match commit {
        Ok(()) if any_full => Err(StoreError::DiskFull(dir.to_path_buf())),
        other => other,
    };
    (outcome, replies)
}

/// Current time as unix milliseconds, the timestamp unit of every table.
pub use crate::clock::now_ms;

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
