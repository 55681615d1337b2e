//! Resource limits on Linux: one control group per program under warden's own (cgroup v2
//! where the controllers are delegated to warden, cgroup v1 memory/cpu/pids/blkio where
//! that is what the host has), plus CPU affinity and nice set in the child before `exec`.
//!
//! The child joins its group before it runs anything: the `cgroup.procs` files are opened
//! before the fork (close-on-exec), and the child writes `0` ("me") to each of them in
//! `pre_exec`, which only makes system calls (no allocation after the fork).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::LimitSettings;

/// Which cgroup hierarchy warden can use, found once.
#[derive(Debug)]
enum Host {
    /// cgroup v2: `base` is warden's own group, whose controllers are delegated.
    V2 { base: PathBuf },
    /// cgroup v1: warden's own group in each controller's hierarchy, by controller.
    V1 { dirs: Vec<(&'static str, PathBuf)> },
    /// Neither: why, in words.
    None(String),
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(detect)
}

/// The controllers limits use.
const V2_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "io"];
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "blkio"];

fn detect() -> Host {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut why = Vec::new();
    // v2: the unified hierarchy, where warden's group offers the controllers.
    if let (Some(mount), Some(path)) = (
        mount_of(&mounts, "cgroup2", None),
        own.lines().find_map(|l| l.strip_prefix("0::")),
    ) {
        let base = mount.join(path.trim_start_matches('/'));
        let offered = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        let missing: Vec<&str> = ["memory", "cpu", "pids"]
            .into_iter()
            .filter(|c| !offered.split_whitespace().any(|o| o == *c))
            .collect();
        if missing.is_empty() {
            return Host::V2 { base };
        }
        why.push(format!(
            "cgroup v2 at {} does not delegate {} to warden",
            base.display(),
            missing.join(", ")
        ));
    } else {
        why.push("no cgroup v2 hierarchy".to_string());
    }
    // v1: each controller's own hierarchy.
    let mut dirs = Vec::new();
    for c in V1_CONTROLLERS {
        let line = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            list.split(',').any(|x| x == c).then(|| path.to_string())
        });
        if let (Some(path), Some(mount)) = (line, mount_of(&mounts, "cgroup", Some(c))) {
            dirs.push((c, mount.join(path.trim_start_matches('/'))));
        }
    }
    if dirs.iter().any(|(c, _)| *c == "memory") {
        return Host::V1 { dirs };
    }
    why.push("no cgroup v1 memory hierarchy".to_string());
    Host::None(why.join("; "))
}

/// The mount point of a cgroup file system (`fstype`), with `controller` among its super
/// options for v1.
fn mount_of(mountinfo: &str, fstype: &str, controller: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let (fs, _src, opts) = (r.next()?, r.next()?, r.next().unwrap_or(""));
        if fs != fstype {
            return None;
        }
        if let Some(c) = controller
            && !opts.split(',').any(|o| o == c)
        {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Which mechanism enforces limits on this host, for status: `cgroup v2`, `cgroup v1`,
/// or why none can.
pub fn limits_support() -> Result<&'static str, String> {
    match host() {
        Host::V2 { .. } => Ok("cgroup v2"),
        Host::V1 { .. } => Ok("cgroup v1"),
        Host::None(why) => Err(why.clone()),
    }
}

/// The limits of one spawn: the program's group and the open `cgroup.procs` files the
/// child writes itself into. Keep it until the child exited to ask about OOM kills.
pub struct Limiter {
    /// `cgroup v1`/`cgroup v2` when a group is in use.
    mode: Option<&'static str>,
    /// The directory with the memory controller's files, for OOM counts.
    memory_dir: Option<PathBuf>,
    /// `oom_kill` count before the spawn.
    oom_before: u64,
    /// Open until the spawn is done (close-on-exec in the child).
    procs: Vec<OwnedFd>,
    v2: bool,
    /// The program's group directories (one per v1 controller), removed after its end.
    dirs: Vec<PathBuf>,
}

impl Limiter {
    /// `cgroup v1`/`cgroup v2`, or `None` when no group is used (no group limits).
    pub fn mode(&self) -> Option<&'static str> {
        self.mode
    }

    /// The child runs (or failed to): the `cgroup.procs` files are not needed any more.
    pub fn spawned(&mut self) {
        self.procs.clear();
    }

    /// Removes the program's (empty) groups and, when it was the last, warden's scope
    /// group: call once every process of the program is gone. Failures are harmless (a
    /// group still in use stays, and is reused by the next start).
    pub fn remove(self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }

    /// True when the kernel's OOM killer killed a process of the group since the spawn.
    pub fn out_of_memory(&self) -> bool {
        self.memory_dir
            .as_deref()
            .and_then(|d| oom_kills(d, self.v2))
            .is_some_and(|n| n > self.oom_before)
    }
}

fn oom_kills(dir: &Path, v2: bool) -> Option<u64> {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write {value:?} to {}: {e}", path.display()),
            )
        })
}

fn mkdir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot create the control group {}: {e}", dir.display()),
        )),
    }
}

fn open_procs(dir: &Path) -> io::Result<OwnedFd> {
    let path = dir.join("cgroup.procs");
    // Close-on-exec (std's default): the child writes to it before exec, then it is gone.
    let f: File = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    Ok(f.into())
}

/// Creates (or reuses) the control group `warden-SCOPE/PROGRAM`, writes `limits` into it
/// (absent ones as "no limit", so a limit removed from the spec is lifted), and arranges
/// for the child of `cmd` to join it, set its CPU affinity and nice value before `exec`.
/// Fails with a message saying what could not be applied and why.
pub fn limit_command(
    cmd: &mut tokio::process::Command,
    scope: &str,
    program: &str,
    limits: &LimitSettings,
) -> io::Result<Limiter> {
    let mut limiter = Limiter {
        mode: None,
        memory_dir: None,
        oom_before: 0,
        procs: Vec::new(),
        v2: false,
        dirs: Vec::new(),
    };
    if limits.needs_group() {
        match host() {
            Host::V2 { base } => v2_group(base, scope, program, limits, &mut limiter)?,
            Host::V1 { dirs } => v1_group(dirs, scope, program, limits, &mut limiter)?,
            Host::None(why) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "limits.memory_max, cpu_max, pids_max and io_weight need control groups, and none can be used here ({why}); run warden with cgroup v2 controllers delegated to it (systemd: Delegate=yes) or remove those limits"
                    ),
                ));
            }
        }
        if let Some(d) = &limiter.memory_dir {
            limiter.oom_before = oom_kills(d, limiter.v2).unwrap_or(0);
        }
    }
    let fds: Vec<i32> = limiter.procs.iter().map(|f| f.as_raw_fd()).collect();
    let mut cpus = None;
    if !limits.cpu_affinity.is_empty() {
        let mut set = nix::sched::CpuSet::new();
        for &c in &limits.cpu_affinity {
            set.set(c).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("limits.cpu_affinity: core {c} cannot be named on this system"),
                )
            })?;
        }
        cpus = Some(set);
    }
    let nice = limits.nice;
    if fds.is_empty() && cpus.is_none() && nice.is_none() {
        return Ok(limiter);
    }
    // SAFETY: the closure runs in the child between fork and exec; it only makes system
    // calls (write, sched_setaffinity, setpriority) on values prepared before the fork,
    // and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                // "0" is the writing process itself, in v1 and v2 alike.
                if nix::libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(set) = &cpus {
                nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
                    .map_err(io::Error::from)?;
            }
            if let Some(n) = nice
                && nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, n) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(limiter)
}

fn v1_group(
    dirs: &[(&'static str, PathBuf)],
    scope: &str,
    program: &str,
    l: &LimitSettings,
    limiter: &mut Limiter,
) -> io::Result<()> {
    let dir_of = |c: &str| dirs.iter().find(|(n, _)| *n == c).map(|(_, d)| d);
    let mut wanted: Vec<&str> = vec!["memory"];
    if l.cpu_max_percent.is_some() || dir_of("cpu").is_some() {
        wanted.push("cpu");
    }
    if l.pids_max.is_some() || dir_of("pids").is_some() {
        wanted.push("pids");
    }
    if l.io_weight.is_some() {
        wanted.push("blkio");
    }
    for c in wanted {
        let Some(base) = dir_of(c) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the cgroup v1 controller {c} is not mounted, so its limit cannot be applied"
                ),
            ));
        };
        let top = base.join(format!("warden-{scope}"));
        mkdir(&top)?;
        let dir = top.join(program);
        mkdir(&dir)?;
        match c {
            "memory" => {
                let v = l.memory_max.map_or("-1".to_string(), |m| m.to_string());
                // memsw (memory + swap) must stay >= the memory limit: the order of the
                // two writes depends on whether the limit goes up or down.
                let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
                if write(&dir, "memory.limit_in_bytes", &v).is_err() && memsw {
                    write(&dir, "memory.memsw.limit_in_bytes", &v)?;
                }
                write(&dir, "memory.limit_in_bytes", &v)?;
                if memsw {
                    // Without swap in the limit, a program could page out past it.
                    write(&dir, "memory.memsw.limit_in_bytes", &v)?;
                }
                limiter.memory_dir = Some(dir.clone());
            }
            "cpu" => {
                let quota = l.cpu_max_percent.map_or("-1".to_string(), |p| {
                    ((p * 1000.0) as u64).max(1000).to_string()
                });
                write(&dir, "cpu.cfs_period_us", "100000")?;
                write(&dir, "cpu.cfs_quota_us", &quota)?;
            }
            "pids" => {
                let v = l.pids_max.map_or("max".to_string(), |n| n.to_string());
                write(&dir, "pids.max", &v)?;
            }
            "blkio" => {
                if let Some(w) = l.io_weight {
                    if !dir.join("blkio.weight").exists() {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "limits.io_weight needs blkio.weight, which this kernel's cgroup v1 does not offer (it needs the BFQ I/O scheduler); remove io_weight",
                        ));
                    }
                    // v1 weights run 10-1000 (default 500); v2's 1-10000 (default 100).
                    let v1 = (u32::from(w) * 5).clamp(10, 1000);
                    write(&dir, "blkio.weight", &v1.to_string())?;
                }
            }
            _ => {}
        }
        limiter.procs.push(open_procs(&dir)?);
        limiter.dirs.push(dir);
    }
    limiter.mode = Some("cgroup v1");
    Ok(())
}

fn v2_group(
    base: &Path,
    scope: &str,
    program: &str,
    l: &LimitSettings,
    limiter: &mut Limiter,
) -> io::Result<()> {
    let top = base.join(format!("warden-{scope}"));
    let fresh = !top.exists();
    mkdir(&top)?;
    if fresh
        || !std::fs::read_to_string(top.join("cgroup.subtree_control"))
            .unwrap_or_default()
            .contains("memory")
    {
        enable_controllers(base)?;
        let list: Vec<String> = V2_CONTROLLERS
            .iter()
            .filter(|c| {
                std::fs::read_to_string(top.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .any(|o| o == **c)
            })
            .map(|c| format!("+{c}"))
            .collect();
        write(&top, "cgroup.subtree_control", &list.join(" "))?;
    }
    let dir = top.join(program);
    mkdir(&dir)?;
    write(
        &dir,
        "memory.max",
        &l.memory_max.map_or("max".into(), |m| m.to_string()),
    )?;
    if l.memory_max.is_some() && dir.join("memory.swap.max").exists() {
        write(&dir, "memory.swap.max", "0")?;
    }
    let cpu = l.cpu_max_percent.map_or("max 100000".into(), |p| {
        format!("{} 100000", ((p * 1000.0) as u64).max(1000))
    });
    write(&dir, "cpu.max", &cpu)?;
    write(
        &dir,
        "pids.max",
        &l.pids_max.map_or("max".into(), |n| n.to_string()),
    )?;
    if let Some(w) = l.io_weight {
        if !dir.join("io.weight").exists() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "limits.io_weight needs the io controller with io.weight (the BFQ I/O scheduler); remove io_weight",
            ));
        }
        write(&dir, "io.weight", &format!("default {w}"))?;
    }
    limiter.procs.push(open_procs(&dir)?);
    limiter.dirs.push(dir.clone());
    limiter.memory_dir = Some(dir);
    limiter.v2 = true;
    limiter.mode = Some("cgroup v2");
    Ok(())
}

/// Enables the controllers for warden's children in its own v2 group. A group with
/// processes cannot hand controllers down ("no internal processes"), so warden first
/// moves itself into a leaf `warden-daemon` beside its programs' groups.
fn enable_controllers(base: &Path) -> io::Result<()> {
    let offered = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let list: Vec<String> = V2_CONTROLLERS
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    let list = list.join(" ");
    if write(base, "cgroup.subtree_control", &list).is_ok() {
        return Ok(());
    }
    let leaf = base.join("warden-daemon");
    mkdir(&leaf)?;
    for pid in std::fs::read_to_string(base.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
    {
        // Every process of warden's group (warden itself, and what shares its group).
        let _ = write(&leaf, "cgroup.procs", pid);
    }
    write(base, "cgroup.subtree_control", &list)
}

/// Linux needs nothing once the child runs: it joined its group before `exec`.
pub fn limit_child(_child: &tokio::process::Child, _limiter: &Limiter) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measures what limits add to a spawn (run by hand as root:
    /// `cargo test --lib spawn_overhead -- --ignored --nocapture`).
    #[tokio::test]
    #[ignore = "a measurement, needs root and control groups"]
    async fn spawn_overhead_of_limits() {
        let limits = LimitSettings {
            memory_max: Some(256 << 20),
            cpu_max_percent: Some(50.0),
            pids_max: Some(64),
            ..LimitSettings::default()
        };
        for round in 0..2 {
            for with in [false, true] {
                let t0 = std::time::Instant::now();
                for _ in 0..50 {
                    let mut cmd = tokio::process::Command::new("true");
                    let mut l = if with {
                        Some(
                            limit_command(&mut cmd, "overhead-test", "p", &limits).expect("limits"),
                        )
                    } else {
                        None
                    };
                    let mut child = cmd.spawn().expect("spawn");
                    if let Some(l) = &mut l {
                        l.spawned();
                    }
                    child.wait().await.expect("wait");
                    if let Some(l) = l {
                        l.remove();
                    }
                }
                let per = t0.elapsed().as_secs_f64() * 1000.0 / 50.0;
                println!("round {round}, limits {with}: {per:.2} ms per spawn+exit");
            }
        }
    }
}
