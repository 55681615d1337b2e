//! The sampler thread: once per interval it reads the process tree of every running
//! program (found from the supervisor's handles, then through `/proc` children links —
//! never a scan of every process) and the host, turns cumulative counters into rates,
//! publishes the samples on the bus's samples channel and collects them into a batch
//! that it hands to the metrics service once per batch interval (the service wakes once
//! per batch, not once per tick).
//!
//! It is a plain thread rather than a task because reading `/proc` is blocking I/O, and
//! because its priority is lowered on its own: nice is inherited by processes spawned
//! from a thread, so lowering the whole of warden would also lower every program.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Shared;
use crate::bus::{Bus, DiskUsage, HostSample, ProgramSample, SampleTick};
use crate::os::{self, CpuTimes, NetTotals, ProcReader, ProcStat};
use crate::store::now_ms;
use crate::supervisor::{Snapshot, Supervisor};

/// Most processes counted in one program's tree per tick (a fork bomb must not make one
/// tick unbounded).
const MAX_TREE: usize = 2048;
/// Ticks between re-reads of the mount table (mounts rarely change).
const MOUNTS_EVERY: u32 = 60;

/// Counters of one process at the previous tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prev {
    cpu_ns: u64,
    read_bytes: u64,
    write_bytes: u64,
}

/// What is remembered of a program's tree between ticks.
#[derive(Debug, Default)]
pub(super) struct TreeState {
    /// When the tree was read.
    at: Option<Instant>,
    /// Root identity: a restarted program starts over.
    root: (u32, u64),
    /// Counters per process, sorted by (pid, start time): one or a few processes per tree
    /// in the common case, searched in one small contiguous block rather than a hash map.
    procs: Vec<((u32, u64), Prev)>,
    /// The previous tick's list, kept for its allocation.
    scratch: Vec<((u32, u64), Prev)>,
}

/// A running program as the sampler follows it: what its snapshot said when the
/// programs last changed, and its tree's counters.
struct Tracked {
    name: String,
    pid: u32,
    /// The latest player count the games service reported (sampled at its own, slower
    /// interval): the `players` series.
    players: Option<u32>,
    tree: TreeState,
}

/// The running programs of `snapshots`, each with the tree state it had in `old` (a
/// program no longer running is forgotten; one that restarted starts over in
/// [`fold_tree`], which sees a new root).
fn track(snapshots: &[Arc<Snapshot>], old: Vec<Tracked>) -> Vec<Tracked> {
    let mut trees: HashMap<String, TreeState> = old.into_iter().map(|t| (t.name, t.tree)).collect();
    snapshots
        .iter()
        .filter_map(|snap| {
            let pid = snap.status.pid?;
            let name = snap.spec.name.clone();
            Some(Tracked {
                pid,
                players: snap.status.game.as_ref().and_then(|g| g.players),
                tree: trees.remove(&name).unwrap_or_default(),
                name,
            })
        })
        .collect()
}

/// Rates and gauges of a tree since the previous reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TreeRates {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
}

/// Folds a new reading of a tree into `state` and returns its rates, or `None` on the
/// first reading of a tree (rates need two readings). A process that appeared since the
/// last reading contributes all of its counters: it started within the interval. A
/// process that vanished contributes nothing (its last interval is lost; the kernel
/// offers no cheap way to read it).
pub(super) fn fold_tree(
    state: &mut TreeState,
    now: Instant,
    procs: &[ProcStat],
) -> Option<TreeRates> {
    let root = procs
        .first()
        .map(|p| (p.pid, p.start_time))
        .unwrap_or_default();
    let known = state.at.is_some() && state.root == root;
    let elapsed = state
        .at
        .map(|t| now.saturating_duration_since(t))
        .unwrap_or_default();
    // Reuses last tick's list: nothing allocated per tick once a tree's size settles.
    let mut next = std::mem::take(&mut state.scratch);
    next.clear();
    let (mut cpu, mut rd, mut wr) = (0u64, 0u64, 0u64);
    let mut rates = TreeRates {
        cpu_percent: 0.0,
        memory_bytes: 0,
        virtual_bytes: 0,
        threads: 0,
        open_files: 0,
        disk_read_bps: 0.0,
        disk_write_bps: 0.0,
    };
    for p in procs {
        let key = (p.pid, p.start_time);
        let before = state
            .procs
            .binary_search_by_key(&key, |(k, _)| *k)
            .map(|i| state.procs[i].1)
            .unwrap_or(Prev {
                cpu_ns: 0,
                read_bytes: 0,
                write_bytes: 0,
            });
        cpu += p.cpu_ns.saturating_sub(before.cpu_ns);
        rd += p.read_bytes.saturating_sub(before.read_bytes);
        wr += p.write_bytes.saturating_sub(before.write_bytes);
        rates.memory_bytes += p.rss_bytes;
        rates.virtual_bytes += p.virtual_bytes;
        rates.threads += p.threads;
        rates.open_files += p.open_files;
        next.push((
            key,
            Prev {
                cpu_ns: p.cpu_ns,
                read_bytes: p.read_bytes,
                write_bytes: p.write_bytes,
            },
        ));
    }
    next.sort_unstable_by_key(|(k, _)| *k);
    state.at = Some(now);
    state.root = root;
    state.scratch = std::mem::replace(&mut state.procs, next);
    let secs = elapsed.as_secs_f64();
    if !known || secs <= 0.0 {
        return None;
    }
    rates.cpu_percent = cpu as f64 / 1e9 / secs * 100.0;
    rates.disk_read_bps = rd as f64 / secs;
    rates.disk_write_bps = wr as f64 / secs;
    Some(rates)
}

/// Percent busy between two CPU readings.
pub(super) fn busy_percent(a: CpuTimes, b: CpuTimes) -> f64 {
    let total = b.total.saturating_sub(a.total);
    if total == 0 {
        return 0.0;
    }
    b.busy.saturating_sub(a.busy) as f64 / total as f64 * 100.0
}

/// The interval to wait after a tick: stretched while the host is saturated.
pub(super) fn next_interval(
    base: Duration,
    host_cpu: f64,
    threshold: f64,
    stretch: u32,
) -> Duration {
    if host_cpu > threshold {
        base * stretch.max(1)
    } else {
        base
    }
}

struct HostState {
    at: Instant,
    cpus: Vec<CpuTimes>,
    net: NetTotals,
}

/// Everything the sampler thread owns. Clone: after a panic the thread starts a fresh
/// sampler from the same handles.
#[derive(Clone)]
pub(super) struct Sampler {
    pub sup: Supervisor,
    pub bus: Bus,
    pub shared: Arc<Shared>,
    pub tx: mpsc::Sender<Vec<Arc<SampleTick>>>,
    pub interval: Duration,
    /// How often the collected ticks go to the service.
    pub batch: Duration,
    pub threshold: f64,
    pub stretch: u32,
    pub nice: i32,
}

impl Sampler {
    /// Runs until `stop` is dropped or signalled.
    pub fn run(self, stop: &std::sync::mpsc::Receiver<()>) {
        if self.nice > 0
            && let Err(e) = os::lower_thread_priority(self.nice)
        {
            tracing::warn!(error = %e, nice = self.nice, "cannot lower the sampler's priority");
        }
        let mut reader = ProcReader::new();
        // The running programs, read again from their snapshots only when the
        // supervisor's change count moved: an idle tick touches no program's state.
        let mut tracked: Vec<Tracked> = Vec::new();
        let mut seen_changes: Option<u64> = None;
        let mut buf: Vec<ProcStat> = Vec::new();
        let mut cpus: Vec<CpuTimes> = Vec::new();
        let mut host: Option<HostState> = None;
        let mut mounts: Vec<(String, String)> = Vec::new();
        let mut tick_no: u32 = 0;
        // Ticks not yet handed to the service, and since when they are collected.
        let mut pending: Vec<Arc<SampleTick>> = Vec::new();
        let mut collecting = Instant::now();
        loop {
            crate::health::injected_fault("sampler");
            let started = Instant::now();
            let ts = now_ms();
            // Read before the snapshots: a change published in between moves the count
            // again, and the next tick reads them once more.
            let changes = self.sup.changes();
            if seen_changes != Some(changes) {
                tracked = track(&self.sup.snapshots(), std::mem::take(&mut tracked));
                seen_changes = Some(changes);
            }
            let mut programs = Vec::with_capacity(tracked.len());
            for t in &mut tracked {
                reader.tree(t.pid, MAX_TREE, &mut buf);
                if let Some(r) = fold_tree(&mut t.tree, Instant::now(), &buf) {
                    programs.push(ProgramSample {
                        program: t.name.clone(),
                        ts,
                        cpu_percent: r.cpu_percent,
                        memory_bytes: r.memory_bytes,
                        virtual_bytes: r.virtual_bytes,
                        threads: r.threads,
                        open_files: r.open_files,
                        disk_read_bps: r.disk_read_bps,
                        disk_write_bps: r.disk_write_bps,
                        players: t.players,
                    });
                }
            }
            reader.end_tick();
            if tick_no.is_multiple_of(MOUNTS_EVERY) {
                mounts = reader.local_mounts();
            }
            tick_no = tick_no.wrapping_add(1);
            let host_sample = sample_host(&mut reader, &mut cpus, &mut host, &mounts, ts);
            let host_cpu = host_sample.as_ref().map(|h| h.cpu_percent).unwrap_or(0.0);
            let n = programs.len() as u64 + u64::from(host_sample.is_some());
            if n > 0 {
                // One shared tick: the followers of samples, the latest values and the
                // service's batch, without copying a sample.
                let tick = Arc::new(SampleTick::new(programs, host_sample));
                self.bus.publish_samples(tick.clone());
                self.shared.set_latest(&tick);
                pending.push(tick);
            } else {
                self.shared.set_latest(&Arc::default());
            }
            if collecting.elapsed() >= self.batch {
                self.hand_over(&mut pending);
                collecting = Instant::now();
            }
            self.shared
                .pending
                .store(pending.iter().map(|t| t.samples()).sum(), Ordering::Relaxed);
            let interval = next_interval(self.interval, host_cpu, self.threshold, self.stretch);
            self.shared
                .record_tick(started.elapsed(), interval, interval > self.interval);
            let wait = interval.saturating_sub(started.elapsed());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    // The service writes this last batch before the store closes.
                    self.hand_over(&mut pending);
                    self.shared.pending.store(0, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Hands the collected ticks to the service. A full queue means the service is far
    /// behind (the store is stuck): the samples are dropped and counted rather than
    /// queued without bound.
    fn hand_over(&self, pending: &mut Vec<Arc<SampleTick>>) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        let n: u64 = batch.iter().map(|t| t.samples()).sum();
        if self.tx.try_send(batch).is_err() {
            self.shared.dropped.fetch_add(n, Ordering::Relaxed);
        }
        let depth = self.tx.max_capacity() - self.tx.capacity();
        self.shared
            .tick_queue
            .store(depth as u64, Ordering::Relaxed);
    }
}

fn sample_host(
    reader: &mut ProcReader,
    cpus: &mut Vec<CpuTimes>,
    prev: &mut Option<HostState>,
    mounts: &[(String, String)],
    ts: i64,
) -> Option<HostSample> {
    let now = Instant::now();
    reader.cpu_times(cpus);
    let net = reader.net_totals().unwrap_or_default();
    let mem = reader.mem_info().unwrap_or_default();
    let load = reader.load_average().unwrap_or_default();
    let last = prev.replace(HostState {
        at: now,
        cpus: cpus.clone(),
        net,
    })?;
    let secs = now.saturating_duration_since(last.at).as_secs_f64();
    if secs <= 0.0 || last.cpus.len() != cpus.len() || cpus.is_empty() {
        return None;
    }
    let per: Vec<f64> = last
        .cpus
        .iter()
        .zip(cpus.iter())
        .map(|(a, b)| busy_percent(*a, *b))
        .collect();
    let disks = mounts
        .iter()
        .filter_map(|(m, fs)| os::mount_usage(m, fs))
        .map(|u| DiskUsage {
            mount: u.mount,
            fs_type: u.fs_type,
            total_bytes: u.total,
            used_bytes: u.used,
        })
        .collect();
    Some(HostSample {
        ts,
        cpu_percent: per[0],
        cores: per[1..].to_vec(),
        memory_total_bytes: mem.total,
        memory_used_bytes: mem.total.saturating_sub(mem.available),
        swap_total_bytes: mem.swap_total,
        swap_used_bytes: mem.swap_total.saturating_sub(mem.swap_free),
        load,
        disks,
        net_rx_bps: net.rx_bytes.saturating_sub(last.net.rx_bytes) as f64 / secs,
        net_tx_bps: net.tx_bytes.saturating_sub(last.net.tx_bytes) as f64 / secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, cpu_s: u64, rss: u64) -> ProcStat {
        ProcStat {
            pid,
            start_time: u64::from(pid) * 10,
            cpu_ns: cpu_s * 1_000_000_000,
            rss_bytes: rss,
            threads: 1,
            read_bytes: cpu_s * 100,
            ..ProcStat::default()
        }
    }

    #[test]
    fn tree_rates_sum_children_and_count_newcomers() {
        let mut st = TreeState::default();
        let t0 = Instant::now();
        assert_eq!(fold_tree(&mut st, t0, &[p(1, 10, 100), p(2, 5, 50)]), None);
        // One second later: root used 0.5 s, child 0.5 s, and a grandchild appeared
        // having used 0.25 s so far (rounded to whole seconds here: 0).
        let mut a = p(1, 10, 100);
        a.cpu_ns += 500_000_000;
        let mut b = p(2, 5, 50);
        b.cpu_ns += 500_000_000;
        let mut c = p(3, 0, 25);
        c.cpu_ns = 250_000_000;
        let r = fold_tree(&mut st, t0 + Duration::from_secs(1), &[a, b, c]).expect("rates");
        assert!((r.cpu_percent - 125.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.memory_bytes, 175);
        assert_eq!(r.threads, 3);
        // The child vanished: nothing negative, the rest keeps counting.
        let mut a2 = a;
        a2.cpu_ns += 2_000_000_000;
        let r = fold_tree(&mut st, t0 + Duration::from_secs(3), &[a2]).expect("rates");
        assert!((r.cpu_percent - 100.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn restarted_root_starts_over() {
        let mut st = TreeState::default();
        let t0 = Instant::now();
        fold_tree(&mut st, t0, &[p(1, 10, 1)]);
        assert_eq!(
            fold_tree(&mut st, t0 + Duration::from_secs(1), &[p(7, 99, 1)]),
            None
        );
        assert!(fold_tree(&mut st, t0 + Duration::from_secs(2), &[p(7, 99, 1)]).is_some());
    }

    #[test]
    fn saturation_stretches_the_interval() {
        let base = Duration::from_secs(1);
        assert_eq!(next_interval(base, 50.0, 90.0, 5), base);
        assert_eq!(next_interval(base, 95.0, 90.0, 5), Duration::from_secs(5));
        let a = CpuTimes {
            busy: 10,
            total: 100,
        };
        let b = CpuTimes {
            busy: 60,
            total: 200,
        };
        assert!((busy_percent(a, b) - 50.0).abs() < 1e-9);
    }
}
