//! The Prometheus text exposition (format 0.0.4) of current program and host values and
//! of warden's own health. Written by hand: it is a few dozen lines of text, and every
//! family carries HELP and TYPE so `promtool check metrics` accepts it.

use std::fmt::Write as _;

use crate::bus::{HostSample, ProgramSample};
use crate::os::ProcStat;

/// warden's own figures, gathered by the caller.
pub(super) struct Own {
    pub tasks: usize,
    pub runtime_queue: usize,
    pub store_queue: usize,
    pub tick_queue: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub write_seconds: f64,
    pub write_failures: u64,
    pub tick_seconds: f64,
    pub interval_seconds: f64,
    pub base_interval_seconds: f64,
    pub stretched: bool,
    pub log_lines_dropped: u64,
    pub store_writes_lost: u64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn family<T>(
    out: &mut String,
    name: &str,
    help: &str,
    items: &[T],
    label: &str,
    f: impl Fn(&T) -> Option<(String, f64)>,
) {
    let rows: Vec<(String, f64)> = items.iter().filter_map(&f).collect();
    if rows.is_empty() {
        return;
    }
    head(out, name, "gauge", help);
    for (l, v) in rows {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(&l));
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    head(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: f64) {
    head(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

/// The configured limits of each program, shown beside its usage: (program, memory
/// bytes, CPU percent of one core, processes).
pub(super) type ProgramLimits = (String, Option<u64>, Option<f64>, Option<u64>);

/// Appends the limit families (only programs with that limit appear).
pub(super) fn render_limits(out: &mut String, limits: &[ProgramLimits]) {
    family(
        out,
        "warden_program_memory_limit_bytes",
        "The program's limits.memory_max (compare warden_program_resident_memory_bytes).",
        limits,
        "program",
        |l| l.1.map(|v| (l.0.clone(), v as f64)),
    );
    family(
        out,
        "warden_program_cpu_limit_percent",
        "The program's limits.cpu_max in percent of one core (compare warden_program_cpu_percent).",
        limits,
        "program",
        |l| l.2.map(|v| (l.0.clone(), v)),
    );
    family(
        out,
        "warden_program_pids_limit",
        "The program's limits.pids_max.",
        limits,
        "program",
        |l| l.3.map(|v| (l.0.clone(), v as f64)),
    );
}

/// Each program's supervision figures: (program, automatic restarts since its last
/// requested start, running now).
pub(super) type ProgramStates = (String, u32, bool);

/// Appends the supervision families of every program (running or not).
pub(super) fn render_states(out: &mut String, states: &[ProgramStates]) {
    if states.is_empty() {
        return;
    }
    head(
        out,
        "warden_program_restarts_total",
        "counter",
        "Automatic restarts after a crash or exit; starts again from 0 when someone starts the program (a counter reset).",
    );
    for (name, restarts, _) in states {
        let _ = writeln!(
            out,
            "warden_program_restarts_total{{program=\"{}\"}} {restarts}",
            escape(name)
        );
    }
    family(
        out,
        "warden_program_running",
        "1 when the program is running (past its start period), else 0.",
        states,
        "program",
        |s| Some((s.0.clone(), if s.2 { 1.0 } else { 0.0 })),
    );
}

/// Renders the exposition.
pub(super) fn render(
    programs: &[ProgramSample],
    host: Option<&HostSample>,
    me: Option<&ProcStat>,
    own: &Own,
) -> String {
    let mut out = String::with_capacity(4096 + programs.len() * 600);
    let o = &mut out;
    let p = |f: fn(&ProgramSample) -> f64| move |s: &ProgramSample| Some((s.program.clone(), f(s)));
    family(
        o,
        "warden_program_cpu_percent",
        "CPU use of the program's process tree, in percent of one core.",
        programs,
        "program",
        p(|s| s.cpu_percent),
    );
    family(
        o,
        "warden_program_resident_memory_bytes",
        "Resident memory of the program's process tree.",
        programs,
        "program",
        p(|s| s.memory_bytes as f64),
    );
    family(
        o,
        "warden_program_virtual_memory_bytes",
        "Virtual memory of the program's process tree.",
        programs,
        "program",
        p(|s| s.virtual_bytes as f64),
    );
    family(
        o,
        "warden_program_threads",
        "Threads in the program's process tree.",
        programs,
        "program",
        p(|s| s.threads as f64),
    );
    family(
        o,
        "warden_program_open_files",
        "Open files in the program's process tree.",
        programs,
        "program",
        p(|s| s.open_files as f64),
    );
    family(
        o,
        "warden_program_disk_read_bytes_per_second",
        "Disk bytes read per second by the program's process tree.",
        programs,
        "program",
        p(|s| s.disk_read_bps),
    );
    family(
        o,
        "warden_program_disk_write_bytes_per_second",
        "Disk bytes written per second by the program's process tree.",
        programs,
        "program",
        p(|s| s.disk_write_bps),
    );
    family(
        o,
        "warden_program_players",
        "Players online.",
        programs,
        "program",
        |s: &ProgramSample| s.players.map(|n| (s.program.clone(), f64::from(n))),
    );
    if let Some(h) = host {
        gauge(
            o,
            "warden_host_cpu_percent",
            "CPU use of the host, in percent of all cores.",
            h.cpu_percent,
        );
        let cores: Vec<(usize, f64)> = h.cores.iter().copied().enumerate().collect();
        family(
            o,
            "warden_host_core_cpu_percent",
            "CPU use per core, in percent of that core.",
            &cores,
            "core",
            |(i, v)| Some((i.to_string(), *v)),
        );
        gauge(
            o,
            "warden_host_memory_total_bytes",
            "Installed memory.",
            h.memory_total_bytes as f64,
        );
        gauge(
            o,
            "warden_host_memory_used_bytes",
            "Memory in use (installed minus available).",
            h.memory_used_bytes as f64,
        );
        gauge(
            o,
            "warden_host_swap_total_bytes",
            "Swap size.",
            h.swap_total_bytes as f64,
        );
        gauge(
            o,
            "warden_host_swap_used_bytes",
            "Swap in use.",
            h.swap_used_bytes as f64,
        );
        gauge(
            o,
            "warden_host_load1",
            "Load average over 1 minute.",
            h.load[0],
        );
        gauge(
            o,
            "warden_host_load5",
            "Load average over 5 minutes.",
            h.load[1],
        );
        gauge(
            o,
            "warden_host_load15",
            "Load average over 15 minutes.",
            h.load[2],
        );
        family(
            o,
            "warden_host_filesystem_size_bytes",
            "Size of each local filesystem.",
            &h.disks,
            "mount",
            |d| Some((d.mount.clone(), d.total_bytes as f64)),
        );
        family(
            o,
            "warden_host_filesystem_used_bytes",
            "Used bytes of each local filesystem.",
            &h.disks,
            "mount",
            |d| Some((d.mount.clone(), d.used_bytes as f64)),
        );
        gauge(
            o,
            "warden_host_network_receive_bytes_per_second",
            "Network bytes received per second (all interfaces but loopback).",
            h.net_rx_bps,
        );
        gauge(
            o,
            "warden_host_network_transmit_bytes_per_second",
            "Network bytes sent per second (all interfaces but loopback).",
            h.net_tx_bps,
        );
    }
    if let Some(me) = me {
        counter(
            o,
            "warden_process_cpu_seconds_total",
            "CPU time used by warden itself.",
            me.cpu_ns as f64 / 1e9,
        );
        gauge(
            o,
            "warden_process_resident_memory_bytes",
            "Resident memory of warden itself.",
            me.rss_bytes as f64,
        );
        if let Some(private) = crate::os::private_memory() {
            gauge(
                o,
                "warden_process_private_memory_bytes",
                "Memory of warden itself that no other process shares (Linux: resident anonymous memory; Windows: private bytes).",
                private as f64,
            );
        }
        gauge(
            o,
            "warden_process_threads",
            "Threads of warden itself.",
            me.threads as f64,
        );
        gauge(
            o,
            "warden_process_open_files",
            "Open files of warden itself.",
            me.open_files as f64,
        );
    }
    gauge(
        o,
        "warden_tasks",
        "Live async tasks in warden.",
        own.tasks as f64,
    );
    gauge(
        o,
        "warden_runtime_queue_depth",
        "Tasks waiting in the async runtime's global queue.",
        own.runtime_queue as f64,
    );
    gauge(
        o,
        "warden_store_write_queue_depth",
        "Jobs waiting for the database writer.",
        own.store_queue as f64,
    );
    gauge(
        o,
        "warden_sample_queue_depth",
        "Sampling ticks waiting between the sampler and the metrics writer.",
        own.tick_queue as f64,
    );
    gauge(
        o,
        "warden_samples_buffered",
        "Samples waiting for the next batch write.",
        own.buffered as f64,
    );
    counter(
        o,
        "warden_samples_dropped_total",
        "Samples dropped because a queue or buffer was full.",
        own.dropped as f64,
    );
    gauge(
        o,
        "warden_db_write_latency_seconds",
        "Time the last batch of samples took to commit.",
        own.write_seconds,
    );
    counter(
        o,
        "warden_sample_write_failures_total",
        "Batch writes of samples that failed (retried).",
        own.write_failures as f64,
    );
    gauge(
        o,
        "warden_sample_tick_duration_seconds",
        "Time the last sampling tick took.",
        own.tick_seconds,
    );
    gauge(
        o,
        "warden_sample_interval_seconds",
        "Current sampling interval (stretched while the host is saturated).",
        own.interval_seconds,
    );
    gauge(
        o,
        "warden_sample_interval_base_seconds",
        "Configured sampling interval.",
        own.base_interval_seconds,
    );
    gauge(
        o,
        "warden_sample_interval_stretched",
        "1 while the host is saturated and sampling is slowed down.",
        if own.stretched { 1.0 } else { 0.0 },
    );
    counter(
        o,
        "warden_log_lines_dropped_total",
        "Lines of warden's own log dropped because its output failed or could not keep up.",
        own.log_lines_dropped as f64,
    );
    counter(
        o,
        "warden_store_writes_lost_total",
        "Records (events, audit entries) that could not be stored, e.g. while the disk was full.",
        own.store_writes_lost as f64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_line_has_help_and_type() {
        let s = ProgramSample {
            program: "a\"b".into(),
            ts: 1,
            cpu_percent: 12.5,
            memory_bytes: 10,
            virtual_bytes: 20,
            threads: 1,
            open_files: 3,
            disk_read_bps: 0.0,
            disk_write_bps: 0.0,
            players: None,
        };
        let own = Own {
            tasks: 1,
            runtime_queue: 0,
            store_queue: 0,
            tick_queue: 0,
            buffered: 0,
            dropped: 2,
            write_seconds: 0.001,
            write_failures: 0,
            tick_seconds: 0.0001,
            interval_seconds: 1.0,
            base_interval_seconds: 1.0,
            stretched: false,
            log_lines_dropped: 0,
            store_writes_lost: 0,
        };
        let text = render(&[s], None, None, &own);
        assert!(
            text.contains("warden_program_cpu_percent{program=\"a\\\"b\"} 12.5\n"),
            "{text}"
        );
        assert!(
            !text.contains("warden_program_players"),
            "no players family without values"
        );
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap_or("").to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                assert!(typed.contains(name), "{name} has no TYPE");
            }
        }
    }
}
