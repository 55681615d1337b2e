//! Linux resource readings from `/proc`: per-process counters of a supervised process
//! tree (found through `/proc/PID/task/TID/children`, never by scanning every process),
//! host CPU, memory, load, mounts and network, and per-thread priority.
//!
//! Everything here is cheap and allocation-light on purpose: the sampler calls it for
//! every supervised process once a second, beside game servers that must not notice.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::{
    CHILD_MARKER_VAR, CpuTimes, HostFacts, MarkedChild, MemInfo, MountUsage, NetTotals,
    PROGRAM_VAR, ProcStat, ProcessEntry,
};

/// Filesystem types worth reporting: local, persistent storage. Network filesystems are
/// left out on purpose, since `statvfs` on a hung NFS server would block the sampler.
const LOCAL_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "vfat", "exfat",
    "ntfs", "ntfs3", "overlay", "bcachefs",
];

/// Per-process files kept open between ticks (see [`ProcReader::end_tick`]), at most this
/// many: `stat` and `schedstat` of every process read in a tick, plus `io` and
/// `children` of those read in full, so well over 64 processes. Beyond it files are
/// opened per read.
const MAX_OPEN: usize = 256;

/// Largest `/proc` file read (a long mounts table is far below).
const MAX_FILE: u64 = 4 << 20;

/// Ticks after which an idle process's `io`, `fd` count and children are read again even
/// though nothing in its `stat` moved (see [`ProcReader::tree`]): bounds how stale they
/// can get for a process that runs too briefly to move its CPU clock ticks.
const REFRESH_TICKS: u32 = 10;

/// Read buffer for `/proc` files. A read that comes back this much short of a full buffer
/// has reached the end: the kernel's seq_file fills the caller's buffer with whole
/// records until the next one would not fit its own page-sized buffer, and no record of
/// the files read here (a stat line, an io line, a child's pid, a network interface) is
/// this long. So the usual second read that returns 0 is skipped.
const CHUNK: usize = 4096;
const RECORD_MARGIN: usize = 256;

/// Which per-process file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PidFile {
    Stat,
    Sched,
    Io,
    Children,
}

/// Every running (not zombie) process group leader whose environment carries warden's
/// child marker of data directory `instance` (see [`child_marker`]): the programs a
/// previous warden of that data directory started, found without its database. Reads
/// `/proc/PID/stat` of every process and the environment of group leaders only; called
/// once at boot. `None` never happens on Linux (the type serves OSes without a process
/// table warden can read environments from).
pub fn marked_children(instance: &str) -> Option<Vec<MarkedChild>> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Some(out);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((state, pgrp, start_time)) = stat_state_group_start(&stat) else {
            continue;
        };
        // Only the leader of its own group is the program (its descendants inherit the
        // marker but not the leadership); a zombie has exited and is not running.
        if pgrp != pid || matches!(state, "Z" | "X" | "x") {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if let Some((program, generation)) = parse_marker(&env, instance) {
            out.push(MarkedChild {
                pid,
                start_time,
                program,
                generation,
            });
        }
    }
    Some(out)
}

/// State, process group and start time from the text of `/proc/PID/stat`.
fn stat_state_group_start(stat: &str) -> Option<(&str, u32, u64)> {
    // The command name (field 2) may contain spaces or ')': fields start after the last ')'.
    let mut f = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = f.next()?; // field 3
    let _ppid = f.next()?; // field 4
    let pgrp = f.next()?.parse().ok()?; // field 5
    let start = f.nth(22 - 6)?.parse().ok()?; // field 22
    Some((state, pgrp, start))
}

/// The program name and generation of a NUL-separated environment block that carries
/// the marker of `instance`.
fn parse_marker(env: &[u8], instance: &str) -> Option<(String, u64)> {
    let mut program = None;
    let mut generation = None;
    for var in env.split(|b| *b == 0) {
        if let Some(v) = var.strip_prefix(format!("{CHILD_MARKER_VAR}=").as_bytes()) {
            let v = std::str::from_utf8(v).ok()?;
            let (inst, gen_text) = v.split_once(':')?;
            if inst != instance {
                return None;
            }
            generation = gen_text.parse::<u64>().ok();
        } else if let Some(v) = var.strip_prefix(format!("{PROGRAM_VAR}=").as_bytes()) {
            program = std::str::from_utf8(v).ok().map(str::to_string);
        }
    }
    Some((program?, generation?))
}

/// Reads `/proc` with reusable path and content buffers. The per-process files of the
/// supervised trees stay open and are re-read from offset 0 (the kernel regenerates them
/// on every read), which saves an open and a close per file and tick; a file of a process
/// that has exited reads as an error and is dropped. Reads never ask for the file size
/// first (`/proc` files report 0 anyway). The host files read every tick stay open too.
pub struct ProcReader {
    path: String,
    buf: String,
    bytes: Vec<u8>,
    /// Open per-process files and whether they were read since the last `end_tick`.
    open: HashMap<(u32, PidFile), (File, bool)>,
    /// The tree walk's work list, kept between ticks.
    stack: Vec<u32>,
    /// Open host files (`/proc/stat`, `/proc/meminfo`, …), by path.
    host: HashMap<&'static str, File>,
    /// What [`ProcReader::tree`] last read of each process, to skip what cannot have
    /// changed; dropped with the process's files at `end_tick`.
    quiet: HashMap<u32, Quiet>,
    /// Nanoseconds per clock tick (`/proc/PID/stat` times are in ticks).
    ns_per_tick: u64,
    /// Bytes per memory page (`rss` is in pages).
    page_size: u64,
}

impl Default for ProcReader {
    fn default() -> Self {
        Self::new()
    }
}

fn sysconf(name: nix::libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf takes an integer name and returns a value or -1; it touches no memory
    // of ours.
    let v = unsafe { nix::libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(fallback)
}

impl ProcReader {
    /// A reader for this host.
    pub fn new() -> ProcReader {
        let ticks = sysconf(nix::libc::_SC_CLK_TCK, 100);
        ProcReader {
            path: String::with_capacity(64),
            buf: String::with_capacity(4096),
            bytes: Vec::with_capacity(4096),
            open: HashMap::new(),
            host: HashMap::new(),
            stack: Vec::new(),
            quiet: HashMap::new(),
            ns_per_tick: 1_000_000_000 / ticks,
            page_size: sysconf(nix::libc::_SC_PAGESIZE, 4096),
        }
    }

    /// Reads a whole file into `self.buf`. Returns false when it cannot be read (the
    /// process is gone, or the file does not exist here).
    fn load(&mut self) -> bool {
        self.buf.clear();
        match File::open(&self.path) {
            // `take` avoids std's size hint (an fstat and an lseek per read).
            Ok(f) => f.take(MAX_FILE).read_to_string(&mut self.buf).is_ok(),
            Err(_) => false,
        }
    }

    /// Reads a host file that is read every tick (kept open, re-read from offset 0) into
    /// `self.buf`. Returns false when it cannot be read.
    fn load_kept(&mut self, path: &'static str) -> bool {
        if let Some(f) = self.host.get(path) {
            if let Some(n) = read_at_start(f, &mut self.bytes) {
                return take_utf8(&self.bytes[..n], &mut self.buf);
            }
            self.host.remove(path);
        }
        self.buf.clear();
        let Ok(f) = File::open(path) else {
            return false;
        };
        let Some(n) = read_at_start(&f, &mut self.bytes) else {
            return false;
        };
        self.host.insert(path, f);
        take_utf8(&self.bytes[..n], &mut self.buf)
    }

    /// Reads a per-process file into `self.buf` through the open-file cache; `self.path`
    /// must name it. Returns false when it cannot be read.
    fn load_pid(&mut self, pid: u32, which: PidFile) -> bool {
        let key = (pid, which);
        if let Some((f, used)) = self.open.get_mut(&key) {
            *used = true;
            if let Some(n) = read_at_start(f, &mut self.bytes) {
                return take_utf8(&self.bytes[..n], &mut self.buf);
            }
            // Gone (or the pid was reused by a new process, whose files are new ones).
            self.open.remove(&key);
            return false;
        }
        let Ok(f) = File::open(&self.path) else {
            return false;
        };
        let Some(n) = read_at_start(&f, &mut self.bytes) else {
            return false;
        };
        if self.open.len() < MAX_OPEN {
            self.open.insert(key, (f, true));
        }
        take_utf8(&self.bytes[..n], &mut self.buf)
    }

    /// Closes the files of processes not read since the previous call (they exited or
    /// left the supervised trees). The sampler calls it once per tick.
    pub fn end_tick(&mut self) {
        self.open.retain(|_, (_, used)| std::mem::take(used));
        self.quiet.retain(|_, q| {
            q.age = q.age.saturating_add(1);
            std::mem::take(&mut q.used)
        });
    }

    fn set_path(&mut self, args: std::fmt::Arguments<'_>) {
        self.path.clear();
        let _ = self.path.write_fmt(args);
    }

    /// Counters of one process, or `None` if it is gone.
    pub fn process(&mut self, pid: u32) -> Option<ProcStat> {
        let (mut st, _) = self.stat(pid)?;
        self.rest(pid, &mut st);
        Some(st)
    }

    /// `/proc/PID/stat` of one process and the fields that move whenever it runs.
    fn stat(&mut self, pid: u32) -> Option<(ProcStat, Activity)> {
        self.set_path(format_args!("/proc/{pid}/stat"));
        if !self.load_pid(pid, PidFile::Stat) {
            return None;
        }
        let (mut st, act) = parse_stat_activity(&self.buf, self.ns_per_tick, self.page_size)?;
        st.pid = pid;
        Some((st, act))
    }

    /// The main thread's run time (ns) and time slices from `/proc/PID/schedstat`, or
    /// `None` when it cannot be read (gone, or a kernel without scheduler statistics).
    fn sched(&mut self, pid: u32) -> Option<(u64, u64)> {
        self.set_path(format_args!("/proc/{pid}/schedstat"));
        if !self.load_pid(pid, PidFile::Sched) {
            return None;
        }
        let mut f = self.buf.split_ascii_whitespace();
        let run = f.next()?.parse().ok()?;
        let slices = f.nth(1)?.parse().ok()?;
        Some((run, slices))
    }

    /// Fills in what `stat` does not hold: disk I/O and open files.
    fn rest(&mut self, pid: u32, st: &mut ProcStat) {
        self.set_path(format_args!("/proc/{pid}/io"));
        // `io` is unreadable for processes of other users; their disk rates read 0.
        if self.load_pid(pid, PidFile::Io) {
            let (r, w) = parse_io(&self.buf);
            st.read_bytes = r;
            st.write_bytes = w;
        }
        // Since Linux 6.2 the size of the `fd` directory is the number of open
        // descriptors: one stat call instead of listing the directory.
        self.set_path(format_args!("/proc/{pid}/fd"));
        st.open_files = match std::fs::metadata(&self.path) {
            Ok(m) if m.len() > 0 => m.len(),
            Ok(_) => std::fs::read_dir(&self.path)
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            Err(_) => 0,
        };
    }

    /// Appends the direct children of `pid` (of every one of its threads) to `out`.
    fn children(&mut self, pid: u32, threads: u64, out: &mut Vec<u32>) {
        if threads <= 1 {
            self.set_path(format_args!("/proc/{pid}/task/{pid}/children"));
            if self.load_pid(pid, PidFile::Children) {
                out.extend(
                    self.buf
                        .split_ascii_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
            return;
        }
        // Any thread may have forked, and each thread lists only its own children.
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            self.set_path(format_args!("/proc/{pid}/task/{tid}/children"));
            if self.load() {
                out.extend(
                    self.buf
                        .split_ascii_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
        }
    }

    /// Reads `root` and all its descendants (at most `max` processes, so a fork bomb
    /// cannot make one tick unbounded) into `out`, which is cleared first.
    ///
    /// Only `stat` is read of a process that has not run since its previous full reading
    /// (same start time, CPU ticks, page faults and thread count): its disk counters, open
    /// files and children cannot have changed without it running, so they are taken from
    /// that reading. Memory is fresh from `stat`. Cheaper still, a single-threaded
    /// process whose `schedstat` run time (nanoseconds, so even a microsecond of work
    /// shows) has not moved is not read at all: its last reading stands. A process that
    /// ran for less than a clock tick looks idle to `stat`, and a sleeping process's
    /// memory can shrink, so every process is read again at least every `REFRESH_TICKS`
    /// ticks: in full, unless its scheduler clock has not moved since its last full
    /// reading (then `stat` for its memory is all that can have changed). Counters are
    /// cumulative, so nothing is lost, only attributed up to that many ticks late.
    pub fn tree(&mut self, root: u32, max: usize, out: &mut Vec<ProcStat>) {
        out.clear();
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        stack.push(root);
        while let Some(pid) = stack.pop() {
            if out.len() >= max {
                break;
            }
            // A single-threaded process whose scheduler clock has not moved has not run:
            // nothing of it can have changed but its memory (reclaim), which
            // `REFRESH_TICKS` bounds. `schedstat` costs a quarter of `stat` to read.
            let last = self.quiet.get(&pid);
            let known = last.and_then(|q| q.sched.filter(|_| q.age < REFRESH_TICKS));
            // Read before `stat` (if the process runs in between, the next tick sees it),
            // and not for a process last seen with several threads.
            let sched = if last.is_none_or(|q| q.last.threads == 1) {
                self.sched(pid)
            } else {
                None
            };
            if known.is_some()
                && known == sched
                && let Some(q) = self.quiet.get_mut(&pid)
            {
                q.used = true;
                stack.extend_from_slice(&q.children);
                out.push(q.last);
                continue;
            }
            let Some((mut st, act)) = self.stat(pid) else {
                self.quiet.remove(&pid);
                continue;
            };
            let sched = sched.filter(|_| st.threads == 1);
            // Not run since its last full reading: the fields of `stat` that move when it
            // runs are the same, and either that reading is recent or (a refresh) the
            // scheduler clock has not moved since it, to the nanosecond. A refresh of such a process
            // needs only the memory that `stat` just gave; it restarts the count.
            if let Some(q) = self.quiet.get_mut(&pid)
                && q.activity == act
                && (q.age < REFRESH_TICKS || (sched.is_some() && q.full_sched == sched))
            {
                if q.age >= REFRESH_TICKS {
                    q.age = 0;
                }
                q.used = true;
                st.read_bytes = q.read_bytes;
                st.write_bytes = q.write_bytes;
                st.open_files = q.open_files;
                q.sched = sched;
                q.last = st;
                stack.extend_from_slice(&q.children);
                out.push(st);
                continue;
            }
            self.rest(pid, &mut st);
            out.push(st);
            let from = stack.len();
            self.children(pid, st.threads, &mut stack);
            let q = self.quiet.entry(pid).or_default();
            q.activity = act;
            q.sched = sched;
            q.full_sched = sched;
            q.last = st;
            q.age = 0;
            q.used = true;
            q.read_bytes = st.read_bytes;
            q.write_bytes = st.write_bytes;
            q.open_files = st.open_files;
            q.children.clear();
            q.children.extend_from_slice(&stack[from..]);
        }
        self.stack = stack;
    }

    /// CPU times of the host (index 0) and of each core (index 1…), into `out`.
    pub fn cpu_times(&mut self, out: &mut Vec<CpuTimes>) {
        out.clear();
        if !self.load_kept("/proc/stat") {
            return;
        }
        for line in self.buf.lines() {
            if !line.starts_with("cpu") {
                break;
            }
            out.push(parse_cpu_line(line));
        }
    }

    /// Memory and swap.
    pub fn mem_info(&mut self) -> Option<MemInfo> {
        if !self.load_kept("/proc/meminfo") {
            return None;
        }
        Some(parse_meminfo(&self.buf))
    }

    /// 1, 5 and 15 minute load averages.
    pub fn load_average(&mut self) -> Option<[f64; 3]> {
        if !self.load_kept("/proc/loadavg") {
            return None;
        }
        let mut it = self
            .buf
            .split_ascii_whitespace()
            .map(|s| s.parse::<f64>().ok());
        Some([it.next()??, it.next()??, it.next()??])
    }

    /// Network bytes over every interface but loopback.
    pub fn net_totals(&mut self) -> Option<NetTotals> {
        if !self.load_kept("/proc/net/dev") {
            return None;
        }
        Some(parse_net_dev(&self.buf))
    }

    /// Local filesystems worth reporting: `(mount point, type)`, one per device.
    pub fn local_mounts(&mut self) -> Vec<(String, String)> {
        self.set_path(format_args!("/proc/self/mounts"));
        if !self.load() {
            return Vec::new();
        }
        parse_mounts(&self.buf)
    }

    /// Every process of the host (the on-demand process list; this one scans).
    pub fn all_processes(&mut self) -> Vec<ProcessEntry> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            self.set_path(format_args!("/proc/{pid}/stat"));
            if !self.load() {
                continue;
            }
            let Some(st) = parse_stat(&self.buf, self.ns_per_tick, self.page_size) else {
                continue;
            };
            let name = self
                .buf
                .find('(')
                .zip(self.buf.rfind(')'))
                .map(|(a, b)| self.buf[a + 1..b].to_string())
                .unwrap_or_default();
            out.push(ProcessEntry {
                pid,
                name,
                cpu_ns: st.cpu_ns,
                rss_bytes: st.rss_bytes,
            });
        }
        out
    }

    /// Static facts about the host.
    pub fn host_facts(&mut self) -> HostFacts {
        let mut read = |path: &str| -> String {
            self.path.clear();
            self.path.push_str(path);
            if self.load() {
                self.buf.clone()
            } else {
                String::new()
            }
        };
        let hostname = read("/proc/sys/kernel/hostname").trim().to_string();
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".to_string());
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let stat = read("/proc/stat");
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        let boot_secs: i64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mem = parse_meminfo(&read("/proc/meminfo"));
        HostFacts {
            hostname,
            os,
            kernel,
            cpu_model,
            cpus,
            memory_bytes: mem.total,
            swap_bytes: mem.swap_total,
            boot_time_ms: boot_secs * 1000,
        }
    }
}

/// Reads all of `f` from offset 0 into the start of `buf` and returns how many bytes it
/// read, or `None` when it cannot be read. A read well short of the free space is the end
/// (see [`CHUNK`]), which saves the second read per file. `buf` keeps its length between
/// calls: it is zero-filled once, when it grows, not on every read.
fn read_at_start(f: &File, buf: &mut Vec<u8>) -> Option<usize> {
    let mut filled = 0;
    loop {
        if buf.len() < filled + CHUNK {
            buf.resize(filled + CHUNK, 0);
        }
        match f.read_at(&mut buf[filled..filled + CHUNK], filled as u64) {
            Ok(0) => return Some(filled),
            Ok(n) => {
                filled += n;
                if n + RECORD_MARGIN <= CHUNK {
                    return Some(filled);
                }
                if filled as u64 > MAX_FILE {
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Moves `bytes` into `buf` as text; false when they are not UTF-8.
fn take_utf8(bytes: &[u8], buf: &mut String) -> bool {
    buf.clear();
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            buf.push_str(text);
            true
        }
        Err(_) => false,
    }
}

/// Usage of one mounted filesystem, or `None` if it cannot be queried.
pub fn mount_usage(mount: &str, fs_type: &str) -> Option<MountUsage> {
    let s = nix::sys::statvfs::statvfs(mount).ok()?;
    let frsize = s.fragment_size();
    let total = s.blocks().saturating_mul(frsize);
    let free = s.blocks_free().saturating_mul(frsize);
    Some(MountUsage {
        mount: mount.to_string(),
        fs_type: fs_type.to_string(),
        total,
        used: total.saturating_sub(free),
    })
}

/// Lets go of the pages of warden's own executable that start-up touched: every
/// read-only mapping of the program file is advised `MADV_PAGEOUT`. Start-up runs code
/// that steady running never does again (migrations, boot, adoption, route building),
/// and the kernel maps a program file in large folios, so after start-up most of a
/// 25 MB executable counts in warden's RSS although an idle warden runs a few hundred KB
/// of it. The pages are clean file pages: nothing is written, and the code that runs
/// later faults back in from the file (page cache) as needed. Returns the bytes of the
/// mappings advised; failures (an old kernel without `MADV_PAGEOUT`) only leave the
/// pages where they were.
pub fn release_startup_code() -> u64 {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Some(exe) = exe.to_str() else {
        return 0;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0u64;
    for (start, len) in maps.lines().filter_map(|l| read_only_mapping_of(l, exe)) {
        let Some(ptr) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process as /proc/self/maps lists
        // it, read-only and backed by the executable: advising it changes no memory
        // content, only whether clean pages stay resident.
        let r =
            unsafe { nix::sys::mman::madvise(ptr, len, nix::sys::mman::MmapAdvise::MADV_PAGEOUT) };
        if r.is_ok() {
            advised += len as u64;
        }
    }
    advised
}

/// The start and length of a `/proc/self/maps` line's mapping when it is a read-only
/// mapping of the file `exe`.
fn read_only_mapping_of(line: &str, exe: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    if !line.ends_with(exe) || perms.as_bytes().get(1) != Some(&b'-') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    Some((start, end.checked_sub(start).filter(|n| *n > 0)?))
}

/// Lowers the priority of the calling thread only (nice `nice`, 0–19). On Linux a
/// thread's nice value is its own, and processes inherit the value of the thread that
/// spawned them: so renicing only warden's sampler thread keeps programs, which are
/// spawned from other threads, at normal priority.
pub fn lower_thread_priority(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { nix::libc::gettid() };
    let tid =
        nix::libc::id_t::try_from(tid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The lowest CPU and IO priority for the calling thread only: nice 19 and the lowest
/// best-effort IO priority. Used by backup workers so a game server sharing the machine
/// keeps its tick rate. Threads the caller spawns later (such as zstd's workers) inherit
/// both.
pub fn lowest_thread_priority() -> io::Result<()> {
    lower_thread_priority(19)?;
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { nix::libc::gettid() };
    // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7)): the
    // lowest best-effort level. Not the idle class, which can starve a backup forever on a
    // busy disk.
    const IOPRIO_WHO_PROCESS: nix::libc::c_int = 1;
    const IOPRIO_CLASS_BE: nix::libc::c_int = 2;
    const IOPRIO_CLASS_SHIFT: nix::libc::c_int = 13;
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7;
    // SAFETY: ioprio_set takes plain integers and touches no memory of ours.
    if unsafe { nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `stat` fields of a process that move whenever it runs: start time (identity),
/// minor and major faults, utime, stime, threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Activity([u64; 6]);

/// What [`ProcReader::tree`] keeps of a process's last full reading.
#[derive(Debug, Default)]
struct Quiet {
    activity: Activity,
    /// The main thread's run time and time slices (`/proc/PID/schedstat`) just before
    /// the last `stat` reading, for single-threaded processes only.
    sched: Option<(u64, u64)>,
    /// `sched` at the last full reading: while it still reads the same, the process has
    /// not run at all since, and nothing but its memory can have changed.
    full_sched: Option<(u64, u64)>,
    /// The last `stat` reading, in full.
    last: ProcStat,
    /// Ticks since the full reading.
    age: u32,
    /// Read since the last `end_tick`.
    used: bool,
    read_bytes: u64,
    write_bytes: u64,
    open_files: u64,
    children: Vec<u32>,
}

/// Parses `/proc/PID/stat` (pid left 0; `io` and fd counts left 0).
fn parse_stat(text: &str, ns_per_tick: u64, page_size: u64) -> Option<ProcStat> {
    parse_stat_activity(text, ns_per_tick, page_size).map(|(st, _)| st)
}

/// Parses `/proc/PID/stat` and the fields that show whether the process ran.
fn parse_stat_activity(
    text: &str,
    ns_per_tick: u64,
    page_size: u64,
) -> Option<(ProcStat, Activity)> {
    // The command name (field 2) is in parentheses and may contain spaces or ')', so
    // split after the last ')'. Fields then start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let mut field = |n: usize| -> Option<u64> { f.nth(n)?.parse().ok() };
    // Field numbers from proc(5), relative to the previous read (nth consumes).
    let minflt = field(10 - 3)?;
    let majflt = field(12 - 11)?;
    let utime = field(14 - 13)?;
    let stime = field(0)?;
    let threads = field(20 - 16)?;
    let start_time = field(22 - 21)?;
    let vsize = field(0)?;
    let rss_pages = field(0)?;
    let activity = Activity([start_time, minflt, majflt, utime, stime, threads]);
    let st = ProcStat {
        pid: 0,
        start_time,
        cpu_ns: (utime + stime).saturating_mul(ns_per_tick),
        rss_bytes: rss_pages.saturating_mul(page_size),
        virtual_bytes: vsize,
        threads,
        open_files: 0,
        read_bytes: 0,
        write_bytes: 0,
    };
    Some((st, activity))
}

fn parse_io(text: &str) -> (u64, u64) {
    let mut r = 0;
    let mut w = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("read_bytes: ") {
            r = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("write_bytes: ") {
            w = v.trim().parse().unwrap_or(0);
        }
    }
    (r, w)
}

fn parse_cpu_line(line: &str) -> CpuTimes {
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    }
}

fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    // The four fields come in the first twenty of some fifty lines: the rest is not
    // parsed once they are all found.
    let mut missing = 4;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let slot = match k {
            "MemTotal" => &mut m.total,
            "MemAvailable" => &mut m.available,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let kb: u64 = v
            .split_ascii_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        *slot = kb * 1024;
        missing -= 1;
        if missing == 0 {
            break;
        }
    }
    m
}

fn parse_net_dev(text: &str) -> NetTotals {
    let mut t = NetTotals::default();
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|s| s.parse().unwrap_or(0))
            .collect();
        t.rx_bytes += v.first().copied().unwrap_or(0);
        t.tx_bytes += v.get(8).copied().unwrap_or(0);
    }
    t
}

fn parse_mounts(text: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(dev), Some(mount), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !LOCAL_FS.contains(&fs) || !seen.insert(dev.to_string()) {
            continue;
        }
        // Mount points escape spaces as \040.
        out.push((mount.replace("\\040", " "), fs.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn per_process_files_are_reused_then_closed_and_exits_are_seen() {
        let mut r = ProcReader::new();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let first = r.process(pid).expect("readable");
        assert!(r.open.contains_key(&(pid, PidFile::Stat)));
        // Read again through the open file: the same process, regenerated content.
        let again = r.process(pid).expect("readable again");
        assert_eq!(first.start_time, again.start_time);
        r.end_tick();
        assert!(r.open.contains_key(&(pid, PidFile::Stat)), "used this tick");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(r.process(pid).is_none(), "an exited process reads as gone");
        assert!(!r.open.contains_key(&(pid, PidFile::Stat)));
        r.process(std::process::id()).expect("self");
        r.end_tick();
        r.end_tick();
        assert!(
            r.open.is_empty(),
            "files not read since the last tick are closed"
        );
    }

    #[test]
    fn an_idle_process_is_read_from_schedstat_and_refreshed_from_stat() {
        let mut r = ProcReader::new();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let mut out = Vec::new();
        // Until `sleep` has started and settled, its stat moves and every tick reads it in
        // full; then a tick that finds it unchanged reuses the full reading (age grows).
        // Settled means its scheduler clock has not moved since that full reading either:
        // a full reading taken while it was still going to sleep (less than a clock tick
        // of work, so `stat` looks the same) is rightly followed by another full one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            r.tree(pid, 10, &mut out);
            r.end_tick();
            if r.quiet
                .get(&pid)
                .is_some_and(|q| q.age >= 2 && q.sched.is_some() && q.sched == q.full_sched)
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sleep never looked idle"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let full = r.process(pid).expect("readable");
        r.tree(pid, 10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].open_files, out[0].read_bytes, out[0].start_time),
            (full.open_files, full.read_bytes, full.start_time),
            "a reused reading equals a full one"
        );
        // `sleep` has one thread: once its scheduler clock stands still, a tick reads
        // only its `schedstat`, not its `stat`.
        assert!(r.quiet.get(&pid).is_some_and(|q| q.sched.is_some()));
        r.end_tick();
        r.tree(pid, 10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start_time, full.start_time);
        assert!(
            r.open
                .get(&(pid, PidFile::Sched))
                .is_some_and(|(_, used)| *used)
                && !r
                    .open
                    .get(&(pid, PidFile::Stat))
                    .is_some_and(|(_, used)| *used),
            "an idle single-threaded process is known from its schedstat alone"
        );
        r.end_tick();
        // Within REFRESH_TICKS more ticks its memory is read again (age back to 0): from
        // `stat` alone, as its scheduler clock proves it did not run; `io` is not read.
        let mut refreshed = false;
        for _ in 0..=REFRESH_TICKS {
            r.tree(pid, 10, &mut out);
            if r.quiet.get(&pid).is_some_and(|q| q.age == 0) {
                refreshed = true;
                break;
            }
            r.end_tick();
        }
        assert!(
            refreshed,
            "an idle process's memory is re-read periodically"
        );
        let used = |r: &ProcReader, f| r.open.get(&(pid, f)).is_some_and(|(_, used)| *used);
        assert!(
            used(&r, PidFile::Stat) && !used(&r, PidFile::Io),
            "the refresh of a process that did not run reads its stat, not its io"
        );
        assert_eq!(out[0].open_files, full.open_files);
        child.kill().expect("kill");
        child.wait().expect("reap");
        r.tree(pid, 10, &mut out);
        assert!(
            out.is_empty(),
            "an exited process is gone, not served from memory"
        );
        r.end_tick();
        assert!(!r.quiet.contains_key(&pid));
    }

    #[test]
    fn lowering_priority_touches_only_this_thread() {
        let before = std::fs::read_to_string("/proc/self/stat").expect("stat");
        std::thread::spawn(|| lowest_thread_priority().expect("lower"))
            .join()
            .expect("join");
        // Field 19 of /proc/self/stat is the main thread's nice value: unchanged.
        assert_eq!(
            nice_of(&before),
            nice_of(&std::fs::read_to_string("/proc/self/stat").expect("stat"))
        );
    }

    fn nice_of(stat: &str) -> Option<String> {
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19 - 3).map(str::to_string)
    }

    #[test]
    fn markers_are_read_back_from_the_environment_of_group_leaders() {
        let env = b"A=1\0WARDEN_PROGRAM=survival\0WARDEN_CHILD=abc:7\0B=2\0";
        assert_eq!(parse_marker(env, "abc"), Some(("survival".into(), 7)));
        assert_eq!(parse_marker(env, "other"), None);
        assert_eq!(parse_marker(b"WARDEN_PROGRAM=x\0", "abc"), None);
        let stat = "42 (a b) c) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(stat_state_group_start(stat), Some(("S", 42, 12345)));
        // A real child in its own group, carrying the marker, is found; once it has
        // exited (a zombie until reaped) it is not.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(PROGRAM_VAR, "t")
            .env(CHILD_MARKER_VAR, "unit-test-instance:3")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        // Until it has exec'd, /proc shows the forked copy of this process's environment:
        // look again until the marker is there (under load that takes a while).
        let pid = child.id();
        let ours = |found: &[MarkedChild]| {
            found
                .iter()
                .any(|m| m.pid == pid && m.generation == 3 && m.program == "t")
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut found = marked_children("unit-test-instance").unwrap_or_default();
        while !ours(&found) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = marked_children("unit-test-instance").unwrap_or_default();
        }
        assert!(ours(&found), "{found:?}");
        let _ = child.kill();
        // Killed, it turns into a zombie (not reaped here), which is no longer found.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut found = marked_children("unit-test-instance").unwrap_or_default();
        while ours(&found) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = marked_children("unit-test-instance").unwrap_or_default();
        }
        assert!(
            !found.iter().any(|m| m.pid == child.id()),
            "zombie: {found:?}"
        );
        let _ = child.wait();
    }

    #[test]
    fn only_read_only_mappings_of_the_executable_are_released() {
        let exe = "/usr/bin/warden";
        let line = |perms: &str, path: &str| {
            format!("55d0c4a00000-55d0c4c00000 {perms} 00000000 fd:01 123  {path}")
        };
        assert_eq!(
            read_only_mapping_of(&line("r-xp", exe), exe),
            Some((0x55d0c4a00000, 0x200000))
        );
        assert!(read_only_mapping_of(&line("r--p", exe), exe).is_some());
        assert_eq!(
            read_only_mapping_of(&line("rw-p", exe), exe),
            None,
            "written data stays"
        );
        assert_eq!(
            read_only_mapping_of(&line("r-xp", "/usr/lib/libc.so.6"), exe),
            None
        );
        assert_eq!(read_only_mapping_of("garbage", exe), None);
    }

    /// On this kernel the advice takes: the executable's resident pages shrink.
    #[test]
    fn start_up_code_pages_leave_the_resident_set() {
        let file_rss = || super::super::unix::own_status_bytes("RssFile").expect("RssFile");
        let before = file_rss();
        let advised = release_startup_code();
        let after = file_rss();
        assert!(advised > 0, "the test binary's own mappings were advised");
        assert!(after < before, "RssFile {before} B → {after} B");
    }

    #[test]
    fn stat_fields() {
        let text = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 7 20 0 3 0 12345 1048576 25 18446744073709551615";
        let st = parse_stat(text, 10_000_000, 4096).expect("parses");
        assert_eq!(st.cpu_ns, 300 * 10_000_000);
        assert_eq!(st.threads, 3);
        assert_eq!(st.start_time, 12345);
        assert_eq!(st.virtual_bytes, 1_048_576);
        assert_eq!(st.rss_bytes, 25 * 4096);
    }

    #[test]
    fn own_tree_and_host() {
        let mut r = ProcReader::new();
        let mut out = Vec::new();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        r.tree(std::process::id(), 1000, &mut out);
        assert!(
            out.iter().any(|p| p.pid == child.id()),
            "child found in tree"
        );
        let me = out
            .iter()
            .find(|p| p.pid == std::process::id())
            .expect("self");
        assert!(me.rss_bytes > 0 && me.threads >= 1 && me.open_files >= 3);
        let _ = child.kill();
        let _ = child.wait();
        let mut cpus = Vec::new();
        r.cpu_times(&mut cpus);
        assert!(cpus.len() >= 2 && cpus[0].total > 0);
        assert!(r.mem_info().expect("meminfo").total > 0);
        assert!(r.load_average().is_some());
        assert!(r.host_facts().cpus >= 1);
    }

    #[test]
    fn mounts_skip_pseudo_and_duplicates() {
        let text = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\n/dev/vda /srv/x ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/vdb /my\\040disk xfs rw 0 0\n";
        assert_eq!(
            parse_mounts(text),
            vec![
                ("/".to_string(), "ext4".to_string()),
                ("/my disk".to_string(), "xfs".to_string())
            ]
        );
    }

    #[test]
    fn net_and_cpu_lines() {
        let net = "h1\nh2\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 500 1 0 0 0 0 0 0 700 1 0 0 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(net),
            NetTotals {
                rx_bytes: 500,
                tx_bytes: 700
            }
        );
        let c = parse_cpu_line("cpu  10 0 5 80 5 0 0 0 0 0");
        assert_eq!(
            c,
            CpuTimes {
                busy: 15,
                total: 100
            }
        );
    }
}
