//! Resource metrics: per-program (whole process tree) and host sampling, buffered batch
//! writes, background rollup and retention, chart queries that pick their tier, streaming
//! export, all-or-nothing import, and the Prometheus text exposition.
//!
//! Data flow: the sampler thread (`sampler.rs`, reniced) reads the trees of running
//! programs from the supervisor's handles and `/proc` once per interval → publishes the
//! tick on the bus's samples channel (`Bus::samples`), keeps it as the latest values here
//! and collects it (one shared `Arc`, never copied) → once per batch interval it hands
//! the collected ticks to the service task over a bounded queue → the service writes them
//! in one store job, then runs one bounded rollup and prune step. Between batches nothing
//! but the sampler thread wakes. On shutdown the sampler hands over what it collected and
//! the service writes everything before the store closes.
//!
//! Architecture invariant: the sampler never scans the process table; only the
//! on-demand, admin-only process list does.

mod codec;
mod prometheus;
mod sampler;
pub mod tiers;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, HostSample, ProgramSample, SampleTick};
use crate::config::MetricsConfig;
use crate::os::{HostFacts, ProcReader};
use crate::store::metrics::{
    Agg, BucketQuery, Family, HOST, ImportSummary, MINUTE_MS, PROGRAMS, Row, Tier, bucket_start,
};
use crate::store::{Store, StoreError, now_ms};
use crate::supervisor::Supervisor;
pub use codec::Format;
use codec::{Field, HOST_FIELDS, PROGRAM_FIELDS};
use tiers::Tiers;

/// Batches queued between the sampler thread and the service. When full (the store is
/// stuck far behind), the sampler drops the batch and counts its samples as dropped.
const TICK_QUEUE: usize = 16;
/// Longest wait at shutdown for the sampler's last batch (it is sent as soon as the
/// sampler sees the stop, so this only bounds a sampler stuck in a read).
const LAST_BATCH_WAIT: Duration = Duration::from_secs(2);
/// Ticks kept in the write buffer while store writes fail; beyond this the oldest tick is
/// dropped (and counted), so a broken disk cannot grow warden's memory without bound.
const MAX_BUFFERED_TICKS: usize = 3600;
/// Rollup work per step: this many ms of minutes, for every series.
const ROLLUP_SPAN_MS: i64 = 10 * 60_000;
/// Rows deleted per prune step.
const PRUNE_ROWS: u32 = 5000;
/// Rows per export page (one store read, one chunk of the response).
const EXPORT_PAGE: u32 = 5000;
/// Import rows staged per store job.
const IMPORT_CHUNK: usize = 20_000;
/// Longest accepted import line; longer ones are reported, not buffered.
const MAX_LINE: usize = 64 * 1024;
/// Bad import lines reported individually (the rest are only counted).
const MAX_LINE_ERRORS: usize = 100;

/// Latest values, for `/metrics` and "now" views.
#[derive(Default)]
struct Latest {
    /// The last tick (its programs are the ones running then).
    tick: Arc<SampleTick>,
    /// The last host sample (kept across a tick that had none).
    host: Option<HostSample>,
}

/// State shared by the sampler thread, the service task and handlers. Atomics and a std
/// `RwLock` held only to copy in or out, never across `.await`.
pub(crate) struct Shared {
    latest: RwLock<Latest>,
    /// Samples lost because the queue or buffer was full.
    dropped: AtomicU64,
    /// Duration of the last sampling tick, in µs.
    tick_us: AtomicU64,
    /// Current sampling interval in ms (stretched while the host is saturated).
    interval_ms: AtomicU64,
    /// True while the interval is stretched.
    stretched: AtomicBool,
    /// Ticks waiting in the sampler → service queue.
    tick_queue: AtomicU64,
    /// Samples in the write buffer.
    buffered: AtomicU64,
    /// Samples the sampler collected for its next batch.
    pending: AtomicU64,
    /// Duration of the last batch write, in µs (until committed).
    write_us: AtomicU64,
    /// Batch writes that failed.
    write_failures: AtomicU64,
    /// Import ids.
    import_seq: AtomicI64,
}

impl Shared {
    fn new(interval: Duration) -> Shared {
        Shared {
            latest: RwLock::new(Latest::default()),
            dropped: AtomicU64::new(0),
            tick_us: AtomicU64::new(0),
            interval_ms: AtomicU64::new(interval.as_millis() as u64),
            stretched: AtomicBool::new(false),
            tick_queue: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            write_us: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            import_seq: AtomicI64::new(0),
        }
    }

    fn set_latest(&self, tick: &Arc<SampleTick>) {
        let mut l = crate::sync::write(&self.latest);
        if let Some(h) = &tick.host {
            l.host = Some(h.clone());
        }
        l.tick = tick.clone();
    }

    fn record_tick(&self, took: Duration, interval: Duration, stretched: bool) {
        self.tick_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
        self.stretched.store(stretched, Ordering::Relaxed);
    }
}

/// A chart query.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery {
    /// Start, unix ms (inclusive).
    pub from: i64,
    /// End, unix ms (exclusive).
    pub to: i64,
    /// Most points per series.
    pub points: u32,
    /// How values within a point are combined.
    pub agg: Agg,
}

/// A chart answer: one timestamp per point and one array of values per series.
#[derive(Debug)]
pub struct History {
    /// The tier that answered (`raw`, `1m`, `1h`).
    pub tier: &'static str,
    /// Width of each point in ms.
    pub step_ms: i64,
    /// Start of each point, unix ms.
    pub timestamps: Vec<i64>,
    /// Values by series name, aligned with `timestamps` (`None`: not measured).
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

/// One bad import line.
#[derive(Debug, Clone)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Some lines are invalid (the first ones are listed); nothing was stored.
    #[error("{bad} line(s) are invalid; nothing was imported")]
    Invalid {
        /// The first bad lines.
        lines: Vec<LineError>,
        /// How many lines were bad in all.
        bad: u64,
    },
    /// The request body could not be read.
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One row of the process list.
#[derive(Debug, Clone)]
pub struct ProcessView {
    /// Process id.
    pub pid: u32,
    /// Executable name.
    pub name: String,
    /// CPU % of one core over the measuring window.
    pub cpu_percent: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
    /// The supervised program this process is the main process of, if any.
    pub program: Option<String>,
}

/// Sort order of the process list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSort {
    /// Highest CPU first.
    Cpu,
    /// Most resident memory first.
    Memory,
}

/// Handle to the metrics service (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
    store: Store,
    sup: Supervisor,
    tiers: Tiers,
    cfg: MetricsConfig,
}

struct Service {
    shared: Arc<Shared>,
    store: Store,
    cfg: MetricsConfig,
    rx: mpsc::Receiver<Vec<Arc<SampleTick>>>,
    buf: VecDeque<Arc<SampleTick>>,
    /// Latest sample time written; minutes before its minute are complete.
    flushed_upto: Option<i64>,
    /// The minute up to which both families' rollups last caught up: until a batch
    /// reaches the next minute, another rollup step would find nothing to do, so none is
    /// asked of the store writer.
    rolled_upto: Option<i64>,
    last_prune: Option<Instant>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Metrics {
    /// Starts the sampler thread and the service task. The task ends after `shutdown` is
    /// cancelled and it has flushed its buffer; await it before closing the store.
    pub fn start(
        cfg: &MetricsConfig,
        store: Store,
        sup: Supervisor,
        bus: Bus,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Metrics, JoinHandle<()>)> {
        let shared = Arc::new(Shared::new(cfg.sample_interval));
        let (tx, rx) = mpsc::channel(TICK_QUEUE);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let sampler = sampler::Sampler {
            sup: sup.clone(),
            bus,
            shared: shared.clone(),
            tx,
            interval: cfg.sample_interval,
            batch: cfg.batch_interval,
            threshold: cfg.saturation_cpu_percent,
            stretch: cfg.saturation_stretch,
            nice: cfg.nice,
        };
        std::thread::Builder::new()
            .name("metrics-sampler".into())
            .spawn(move || supervise_sampler(&sampler, &stop_rx))?;
        let service = Service::new(shared.clone(), store.clone(), cfg.clone(), rx);
        let task = tokio::spawn(service.run(shutdown, stop_tx));
        let tiers = Tiers {
            sample_ms: ms(cfg.sample_interval),
            raw_keep_ms: ms(cfg.raw_retention),
            minute_keep_ms: ms(cfg.minute_retention),
            hour_keep_ms: ms(cfg.hour_retention),
        };
        Ok((
            Metrics {
                shared,
                store,
                sup,
                tiers,
                cfg: cfg.clone(),
            },
            task,
        ))
    }

    /// The latest sample of a program (absent when it is not running or not sampled yet).
    pub fn current(&self, program: &str) -> Option<ProgramSample> {
        crate::sync::read(&self.shared.latest)
            .tick
            .program(program)
            .cloned()
    }

    /// Sampler queue depth, samples waiting in the write buffer, and samples dropped since
    /// start (for `/health`).
    pub fn queue_figures(&self) -> (u64, u64, u64) {
        (
            self.shared.tick_queue.load(Ordering::Relaxed),
            self.buffered(),
            self.shared.dropped.load(Ordering::Relaxed),
        )
    }

    /// Samples taken and not yet written: the sampler's next batch and the service's buffer.
    fn buffered(&self) -> u64 {
        self.shared.buffered.load(Ordering::Relaxed) + self.shared.pending.load(Ordering::Relaxed)
    }

    /// The latest host sample.
    pub fn current_host(&self) -> Option<HostSample> {
        crate::sync::read(&self.shared.latest).host.clone()
    }

    /// Chart data of a program (`Some(name)`) or of the host (`None`).
    pub async fn history(
        &self,
        program: Option<&str>,
        q: HistoryQuery,
    ) -> Result<History, StoreError> {
        let (fam, fields): (&'static Family, &[Field]) = match program {
            Some(_) => (&PROGRAMS, &PROGRAM_FIELDS),
            None => (&HOST, &HOST_FIELDS),
        };
        let (tier, step) = tiers::choose(&self.tiers, now_ms(), q.from, q.to, q.points);
        let rows = self
            .store
            .metric_buckets(
                fam,
                program.map(str::to_string),
                BucketQuery {
                    tier,
                    agg: q.agg,
                    from: q.from,
                    to: q.to,
                    step,
                },
            )
            .await?;
        let mut series: BTreeMap<String, Vec<Option<f64>>> = fields
            .iter()
            .map(|f| (f.name.to_string(), Vec::with_capacity(rows.len())))
            .collect();
        let mut timestamps = Vec::with_capacity(rows.len());
        for (ts, values) in rows {
            timestamps.push(ts);
            for (v, f) in values.iter().zip(fields.iter()) {
                if let Some(s) = series.get_mut(f.name) {
                    s.push(v.map(|v| codec::decode(v, f)));
                }
            }
        }
        Ok(History {
            tier: tier.as_str(),
            step_ms: step,
            timestamps,
            series,
        })
    }

    /// Streams a program's stored samples of one tier in `[from, to)` as CSV or JSON Lines,
    /// one store page at a time: memory stays constant however long the range.
    pub fn export(
        &self,
        program: String,
        tier: Tier,
        from: i64,
        to: i64,
        format: Format,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        let store = self.store.clone();
        let header = (format == Format::Csv).then(codec::csv_header);
        let start = (Some(from - 1), header);
        futures_util::stream::unfold(start, move |(after, header)| {
            let store = store.clone();
            let program = program.clone();
            async move {
                let after = after?;
                let page = match store
                    .metric_page(program, tier, after, to, EXPORT_PAGE)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return Some((Err(e), (None, None))),
                };
                let next = if page.len() < EXPORT_PAGE as usize {
                    None
                } else {
                    page.last().map(|r| r.ts)
                };
                let mut out = header.unwrap_or_default();
                for row in &page {
                    codec::push_export_line(&mut out, row, format);
                }
                Some((Ok(Bytes::from(out)), (next, None)))
            }
        })
        .filter(|chunk| {
            let keep = !matches!(chunk, Ok(b) if b.is_empty());
            async move { keep }
        })
    }

    /// Imports JSON Lines of samples into a program's history: all or nothing. Lines are
    /// staged in chunks as they arrive (memory stays bounded); any bad line aborts the
    /// whole import and is reported by line number.
    pub async fn import<S, E>(&self, program: &str, body: S) -> Result<ImportSummary, ImportError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let id = self.shared.import_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut guard = DiscardOnDrop {
            store: self.store.clone(),
            import: id,
            armed: true,
        };
        let result = self.import_inner(id, body).await;
        let result = match result {
            Ok(()) => self
                .store
                .import_commit(id, program.to_string())
                .await
                .map_err(ImportError::from),
            Err(e) => Err(e),
        };
        // A committed import left no stage behind; anything else is discarded by the guard
        // (also when the client goes away and this future is dropped mid-way).
        guard.armed = result.is_err();
        result
    }

    async fn import_inner<S, E>(&self, id: i64, mut body: S) -> Result<(), ImportError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut pending: Vec<u8> = Vec::new();
        let mut rows: Vec<Row> = Vec::with_capacity(IMPORT_CHUNK);
        let mut errors: Vec<LineError> = Vec::new();
        let mut bad = 0u64;
        let mut line_no = 0u64;
        let mut too_long = false;
        let handle = |line: &[u8],
                      line_no: u64,
                      rows: &mut Vec<Row>,
                      errors: &mut Vec<LineError>,
                      bad: &mut u64| {
            let parsed = std::str::from_utf8(line)
                .map_err(|_| "the line is not valid UTF-8".to_string())
                .and_then(codec::parse_import_line);
            match parsed {
                Ok(Some(row)) if *bad == 0 => rows.push(row),
                Ok(_) => {}
                Err(message) => {
                    *bad += 1;
                    if errors.len() < MAX_LINE_ERRORS {
                        errors.push(LineError {
                            line: line_no,
                            message,
                        });
                    }
                }
            }
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ImportError::Body(e.to_string()))?;
            let mut rest: &[u8] = &chunk;
            while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
                line_no += 1;
                if too_long {
                    too_long = false;
                    pending.clear();
                } else {
                    pending.extend_from_slice(&rest[..pos]);
                    handle(&pending, line_no, &mut rows, &mut errors, &mut bad);
                    pending.clear();
                }
                rest = &rest[pos + 1..];
            }
            if !too_long {
                pending.extend_from_slice(rest);
                if pending.len() > MAX_LINE {
                    // Reported now, skipped up to its end, never buffered whole.
                    too_long = true;
                    pending.clear();
                    bad += 1;
                    if errors.len() < MAX_LINE_ERRORS {
                        errors.push(LineError {
                            line: line_no + 1,
                            message: format!("the line is longer than {MAX_LINE} bytes"),
                        });
                    }
                }
            }
            if bad == 0 && rows.len() >= IMPORT_CHUNK {
                self.store
                    .import_stage(id, std::mem::take(&mut rows))
                    .await?;
            }
        }
        if !too_long && !pending.is_empty() {
            line_no += 1;
            handle(&pending, line_no, &mut rows, &mut errors, &mut bad);
        }
        if bad > 0 {
            return Err(ImportError::Invalid { lines: errors, bad });
        }
        if !rows.is_empty() {
            self.store.import_stage(id, rows).await?;
        }
        Ok(())
    }

    /// Static facts about the host.
    pub async fn system_info(&self) -> HostFacts {
        tokio::task::spawn_blocking(|| ProcReader::new().host_facts())
            .await
            .unwrap_or_default()
    }

    /// The top `limit` processes of the host by CPU or memory, CPU measured over 250 ms.
    /// This scans every process (twice), so it is on demand only.
    pub async fn processes(&self, sort: ProcessSort, limit: usize) -> Vec<ProcessView> {
        let roots: HashMap<u32, String> = self
            .sup
            .snapshots()
            .iter()
            .filter_map(|s| s.status.pid.map(|p| (p, s.spec.name.clone())))
            .collect();
        let window = Duration::from_millis(250);
        let first = tokio::task::spawn_blocking(|| ProcReader::new().all_processes())
            .await
            .unwrap_or_default();
        tokio::time::sleep(window).await;
        let second = tokio::task::spawn_blocking(|| ProcReader::new().all_processes())
            .await
            .unwrap_or_default();
        let before: HashMap<u32, u64> = first.iter().map(|p| (p.pid, p.cpu_ns)).collect();
        let mut out: Vec<ProcessView> = second
            .into_iter()
            .map(|p| {
                let cpu = p
                    .cpu_ns
                    .saturating_sub(before.get(&p.pid).copied().unwrap_or(p.cpu_ns));
                ProcessView {
                    program: roots.get(&p.pid).cloned(),
                    pid: p.pid,
                    name: p.name,
                    cpu_percent: cpu as f64 / window.as_nanos() as f64 * 100.0,
                    memory_bytes: p.rss_bytes,
                }
            })
            .collect();
        match sort {
            ProcessSort::Cpu => out.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent)),
            ProcessSort::Memory => out.sort_by_key(|p| std::cmp::Reverse(p.memory_bytes)),
        }
        out.truncate(limit);
        out
    }

    /// The Prometheus text exposition of current values and warden's own health.
    pub async fn prometheus(&self) -> String {
        self.prometheus_for(|_| true).await
    }

    /// The exposition with only the programs `shown` accepts (what the caller may see).
    pub async fn prometheus_for(&self, shown: impl Fn(&str) -> bool) -> String {
        let rt = tokio::runtime::Handle::current().metrics();
        let own = prometheus::Own {
            tasks: rt.num_alive_tasks(),
            runtime_queue: rt.global_queue_depth(),
            store_queue: self.store.write_queue_depth(),
            tick_queue: self.shared.tick_queue.load(Ordering::Relaxed),
            buffered: self.buffered(),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            write_seconds: self.shared.write_us.load(Ordering::Relaxed) as f64 / 1e6,
            write_failures: self.shared.write_failures.load(Ordering::Relaxed),
            tick_seconds: self.shared.tick_us.load(Ordering::Relaxed) as f64 / 1e6,
            interval_seconds: self.shared.interval_ms.load(Ordering::Relaxed) as f64 / 1e3,
            base_interval_seconds: self.cfg.sample_interval.as_secs_f64(),
            stretched: self.shared.stretched.load(Ordering::Relaxed),
            log_lines_dropped: crate::logging::lines_dropped(),
            store_writes_lost: self.store.health().writes_lost,
        };
        let (programs, host) = {
            let l = crate::sync::read(&self.shared.latest);
            let mut programs: Vec<ProgramSample> = l
                .tick
                .programs
                .iter()
                .filter(|p| shown(&p.program))
                .cloned()
                .collect();
            programs.sort_by(|a, b| a.program.cmp(&b.program));
            (programs, l.host.clone())
        };
        let mut limits: Vec<prometheus::ProgramLimits> = Vec::new();
        let mut states: Vec<prometheus::ProgramStates> = Vec::new();
        for snap in self.sup.snapshots().iter().filter(|s| shown(&s.spec.name)) {
            let name = snap.spec.name.clone();
            if let Some(l) = snap.spec.limits.as_ref() {
                limits.push((
                    name.clone(),
                    l.memory_max.map(|m| m.0),
                    l.cpu_max,
                    l.pids_max,
                ));
            }
            let running = snap.status.state == crate::program::State::Running;
            states.push((name, snap.status.restarts, running));
        }
        tokio::task::spawn_blocking(move || {
            let me = ProcReader::new().process(std::process::id());
            let mut text = prometheus::render(&programs, host.as_ref(), me.as_ref(), &own);
            prometheus::render_limits(&mut text, &limits);
            prometheus::render_states(&mut text, &states);
            text
        })
        .await
        .unwrap_or_default()
    }
}

/// Discards an import's staged rows unless disarmed, including when the import future is
/// dropped because the client disconnected.
struct DiscardOnDrop {
    store: Store,
    import: i64,
    armed: bool,
}

impl Drop for DiscardOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, import) = (self.store.clone(), self.import);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.import_abort(import).await {
                    tracing::warn!(error = %e, "cannot discard a failed import's staged rows");
                }
            });
        }
    }
}

impl Service {
    fn new(
        shared: Arc<Shared>,
        store: Store,
        cfg: MetricsConfig,
        rx: mpsc::Receiver<Vec<Arc<SampleTick>>>,
    ) -> Service {
        Service {
            shared,
            store,
            cfg,
            rx,
            buf: VecDeque::new(),
            flushed_upto: None,
            rolled_upto: None,
            last_prune: None,
        }
    }

    async fn run(mut self, shutdown: CancellationToken, stop_sampler: std::sync::mpsc::Sender<()>) {
        let part = crate::health::watch("metrics-writer");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = self.rx.recv() => match batch {
                    Some(b) => {
                        // A failed write is retried with the next batch.
                        self.push(b);
                        self.flush().await;
                        self.maintain().await;
                    }
                    None => break,
                },
            }
        }
        // Stop the sampler, take its last batch (the queue closes when its thread ends),
        // and write everything.
        let _ = stop_sampler.send(());
        drop(stop_sampler);
        let deadline = tokio::time::Instant::now() + LAST_BATCH_WAIT;
        while let Ok(Some(b)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.push(b);
        }
        self.flush().await;
        part.finish();
    }

    fn push(&mut self, batch: Vec<Arc<SampleTick>>) {
        for t in batch {
            if self.buf.len() >= MAX_BUFFERED_TICKS
                && let Some(old) = self.buf.pop_front()
            {
                self.shared
                    .dropped
                    .fetch_add(old.samples(), Ordering::Relaxed);
            }
            self.buf.push_back(t);
        }
        let n: u64 = self.buf.iter().map(|t| t.samples()).sum();
        self.shared.buffered.store(n, Ordering::Relaxed);
    }

    async fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut programs: HashMap<String, Vec<Row>> = HashMap::new();
        let mut host = Vec::new();
        let mut upto = i64::MIN;
        for t in &self.buf {
            for p in &t.programs {
                programs
                    .entry(p.program.clone())
                    .or_default()
                    .push(codec::program_row(p));
                upto = upto.max(p.ts);
            }
            if let Some(h) = &t.host {
                host.push(codec::host_row(h));
                upto = upto.max(h.ts);
            }
        }
        let started = Instant::now();
        match self
            .store
            .insert_samples(programs.into_iter().collect(), host)
            .await
        {
            Ok(()) => {
                self.shared
                    .write_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                self.buf.clear();
                self.shared.buffered.store(0, Ordering::Relaxed);
                self.flushed_upto = Some(upto);
            }
            Err(StoreError::Closed) => {
                tracing::warn!("store closed before buffered samples could be written");
                self.buf.clear();
            }
            Err(e) => {
                // Kept for the next attempt (bounded by MAX_BUFFERED_TICKS).
                self.shared.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot write samples; will retry");
            }
        }
    }

    /// Up to six bounded rollup steps of `fam`; true when it has caught up with `upto`.
    async fn roll_up(&self, fam: &'static Family, upto: i64) -> bool {
        for _ in 0..6 {
            match self.store.rollup_step(fam, upto, ROLLUP_SPAN_MS).await {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics rollup failed");
                    return false;
                }
            }
        }
        false
    }

    /// One bounded round of rollups (each step rolls ≤ 10 minutes of every series) and,
    /// once a minute, of pruning (≤ 5000 rows per step, a few steps per round).
    async fn maintain(&mut self) {
        let Some(upto) = self.flushed_upto else {
            return;
        };
        let minute = bucket_start(upto, MINUTE_MS);
        if self.rolled_upto != Some(minute) {
            let mut caught_up = true;
            for fam in [&PROGRAMS, &HOST] {
                caught_up &= self.roll_up(fam, upto).await;
            }
            self.rolled_upto = caught_up.then_some(minute);
        }
        if self
            .last_prune
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let now = now_ms();
        for fam in [&PROGRAMS, &HOST] {
            for (tier, keep) in [
                (Tier::Raw, self.cfg.raw_retention),
                (Tier::Minute, self.cfg.minute_retention),
                (Tier::TenMinutes, self.cfg.minute_retention),
                (Tier::Hour, self.cfg.hour_retention),
            ] {
                for _ in 0..10 {
                    match self
                        .store
                        .prune_metrics(fam, tier, now - ms(keep), PRUNE_ROWS)
                        .await
                    {
                        Ok(n) if n == PRUNE_ROWS as usize => tokio::task::yield_now().await,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics pruning failed");
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// The sampler thread's body: a panic in a tick (a bug, an unexpected reading) is logged
/// and the sampler starts afresh after a second, from the same handles; only a stop
/// request ends the thread.
fn supervise_sampler(sampler: &sampler::Sampler, stop: &std::sync::mpsc::Receiver<()>) {
    let part = crate::health::watch("sampler");
    loop {
        let run = sampler.clone();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run(stop))) {
            Ok(()) => break,
            Err(payload) => {
                let cause = format!("panicked: {}", crate::health::panic_text(payload));
                crate::health::failed("sampler", &cause);
                match stop.recv_timeout(Duration::from_secs(1)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        crate::health::restarted("sampler");
                    }
                    _ => break,
                }
            }
        }
    }
    part.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::ProgramSample;

    fn sample(ts: i64, cpu: f64) -> ProgramSample {
        ProgramSample {
            program: "p".into(),
            ts,
            cpu_percent: cpu,
            memory_bytes: 1 << 20,
            virtual_bytes: 1 << 21,
            threads: 1,
            open_files: 3,
            disk_read_bps: 0.0,
            disk_write_bps: 0.0,
            players: None,
        }
    }

    /// Batches of 10 s, minute after minute: each minute is rolled up once it is
    /// complete, and the rollup steps left out while a minute fills never leave one out.
    #[tokio::test]
    async fn each_completed_minute_is_rolled_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("m.db")).expect("open");
        let cfg = crate::config::Config::defaults().expect("defaults").metrics;
        let (_tx, rx) = mpsc::channel(1);
        let mut service = Service::new(
            Arc::new(Shared::new(cfg.sample_interval)),
            store.clone(),
            cfg,
            rx,
        );
        // Five minutes ago, on a minute: within the first rollup's reach.
        let now = now_ms();
        let base = bucket_start(now, MINUTE_MS) - 5 * MINUTE_MS;
        for batch in 0..30_i64 {
            let ticks = (0..10)
                .map(|i| {
                    let ts = base + (batch * 10 + i) * 1000;
                    let minute = (ts - base) / MINUTE_MS;
                    Arc::new(SampleTick::new(vec![sample(ts, minute as f64)], None))
                })
                .collect();
            service.push(ticks);
            service.flush().await;
            service.maintain().await;
            let minutes = store
                .metric_buckets(
                    &PROGRAMS,
                    Some("p".into()),
                    BucketQuery {
                        tier: Tier::Minute,
                        agg: Agg::Avg,
                        from: base,
                        to: base + 5 * MINUTE_MS,
                        step: MINUTE_MS,
                    },
                )
                .await
                .expect("minutes");
            // The minutes before the one the last sample is in, each the mean of its own
            // samples (CPU is stored in hundredths).
            let complete = (batch * 10 + 9) * 1000 / MINUTE_MS;
            let avgs: Vec<Option<f64>> = minutes.iter().map(|(_, v)| v[0]).collect();
            let want: Vec<Option<f64>> = (0..complete).map(|m| Some(m as f64 * 100.0)).collect();
            assert_eq!(avgs, want, "after batch {batch}");
        }
        store.close().await;
    }
}
