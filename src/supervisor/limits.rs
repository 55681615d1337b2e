//! Resource limits from the supervisor's side: the spec's `limits` as `os` settings, the
//! name of warden's control-group scope, and the report of an out-of-memory kill (its own
//! event kind `oom_killed` and a critical notice, so alerts route it).

use std::path::Path;

use super::Ctx;
use crate::bus::{Event, Notice, NoticeField, Severity};
use crate::os::LimitSettings;
use crate::program::ExitInfo;
use crate::program::power::Limits;
use crate::store::now_ms;
use crate::units::ByteSize;

/// The spec's limits as the OS layer takes them.
pub(super) fn settings(l: &Limits) -> LimitSettings {
    LimitSettings {
        memory_max: l.memory_max.map(|b| b.0),
        cpu_max_percent: l.cpu_max,
        pids_max: l.pids_max,
        io_weight: l.io_weight,
        cpu_affinity: l.cpu_affinity.clone(),
        nice: l.priority.map(|p| p.nice()),
    }
}

/// A short name for this warden's control groups, stable across restarts and distinct
/// per data directory (two wardens on one host must not share groups).
pub(super) fn scope(logs_dir: &Path) -> String {
    let hash = blake3::hash(logs_dir.to_string_lossy().as_bytes());
    hash.to_hex()[..12].to_string()
}

/// Rewrites `exit` as an out-of-memory kill and reports it.
pub(super) async fn report_oom(ctx: &Ctx, program: &str, limits: &Limits, exit: &mut ExitInfo) {
    let limit = limits
        .memory_max
        .map_or("none".to_string(), |m| ByteSize(m.0).to_string());
    exit.description = if exit.signal.as_deref() == Some("SIGKILL") {
        format!("killed: out of memory, limit {limit}")
    } else {
        format!(
            "{} after a process of it was killed: out of memory, limit {limit}",
            exit.description
        )
    };
    tracing::warn!(program, limit = %limit, "out of memory");
    ctx.record(
        Some(program),
        "oom_killed",
        format!("killed: out of memory (limit {limit})"),
    )
    .await;
    ctx.bus.publish(Event::Notice(Notice {
        kind: "oom_killed".into(),
        severity: Severity::Critical,
        program: Some(program.to_string()),
        ts: now_ms(),
        summary: "killed: out of memory".into(),
        fields: vec![NoticeField {
            name: "Limit".into(),
            value: limit,
        }],
    }));
}
