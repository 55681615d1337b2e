//! `warden ctl status NAME`: one program in detail (state and why, health, players,
//! resources, uptime, last exit, what the schedules will do to it next, last backup),
//! gathered from the same endpoints the dashboard reads. Parts the caller may not see
//! (a viewer without schedule rights, say) are left out rather than failing the view.

use serde_json::Value;

use super::{Client, fmt_ms, fmt_uptime};
use crate::units::show_bytes;

/// Prints the detailed view of `name`.
pub(super) async fn detailed(c: &Client, name: &str) -> anyhow::Result<()> {
    let p = c.get(&format!("/api/programs/{name}")).await?;
    let metrics = c
        .get(&format!("/api/programs/{name}/metrics?points=1"))
        .await
        .ok();
    let schedules = c.get("/api/schedules").await.ok();
    let backups = c.get(&format!("/api/programs/{name}/backups")).await.ok();
    for (label, value) in lines(&p, metrics.as_ref(), schedules.as_ref(), backups.as_ref()) {
        outln!("{label:<14} {value}");
    }
    Ok(())
}

/// The view as (label, value) rows; pure, so it is tested without a server.
fn lines(
    p: &Value,
    metrics: Option<&Value>,
    schedules: Option<&Value>,
    backups: Option<&Value>,
) -> Vec<(&'static str, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out = vec![("Name", s(&p["name"]))];
    if let Some(d) = p["display_name"].as_str().filter(|d| !d.is_empty()) {
        out.push(("Display name", d.to_string()));
    }
    let mut state = s(&p["state"]);
    if let Some(since) = p["since_ms"].as_i64() {
        state.push_str(&format!(" since {}", fmt_ms(since)));
    }
    out.push(("State", state));
    if let Some(reason) = p["reason"]["message"].as_str() {
        out.push(("Reason", reason.to_string()));
    }
    if let Some(pid) = p["pid"].as_u64() {
        out.push(("PID", pid.to_string()));
    }
    if p["uptime_seconds"].is_u64() {
        out.push(("Uptime", fmt_uptime(&p["uptime_seconds"])));
    }
    out.push(("Restarts", p["restarts"].as_u64().unwrap_or(0).to_string()));
    out.push((
        "Last exit",
        p["last_exit"]["description"]
            .as_str()
            .unwrap_or("-")
            .to_string(),
    ));
    let game = &p["game_status"];
    if game.is_object() {
        let mut health = s(&game["health"]);
        if let Some(m) = game["message"].as_str() {
            health.push_str(&format!(" ({m})"));
        }
        out.push(("Health", health));
        if let Some(n) = game["players"].as_u64() {
            out.push(("Players", n.to_string()));
        }
    }
    if let Some(cur) = metrics.map(|m| &m["current"]).filter(|c| c.is_object()) {
        out.push((
            "CPU",
            format!("{:.1} %", cur["cpu_percent"].as_f64().unwrap_or(0.0)),
        ));
        out.push((
            "Memory",
            show_bytes(cur["memory_bytes"].as_u64().unwrap_or(0) as f64),
        ));
    }
    if let Some(mode) = p["limits_mode"].as_str() {
        out.push(("Limits by", mode.to_string()));
    }
    let name = p["name"].as_str().unwrap_or("");
    for (label, when) in next_scheduled(name, schedules) {
        out.push(("Next", format!("{when} ({label})")));
    }
    if let Some(b) = last_backup(backups) {
        out.push(("Last backup", b));
    }
    out
}

/// The next fire time of each enabled schedule with a task on `name`, soonest first.
fn next_scheduled(name: &str, schedules: Option<&Value>) -> Vec<(String, String)> {
    let empty = Vec::new();
    let list = schedules
        .and_then(|v| v["schedules"].as_array())
        .unwrap_or(&empty);
    let mut next: Vec<(String, String)> = list
        .iter()
        .filter(|sch| mentions(&sch["tasks"], name))
        .filter_map(|sch| {
            let when = sch["next_runs"].as_array()?.first()?.as_str()?.to_string();
            let what = sch["trigger_description"]
                .as_str()
                .map(|d| format!("schedule {}: {d}", sch["name"].as_str().unwrap_or("")))
                .unwrap_or_default();
            Some((what, when))
        })
        .collect();
    // RFC 3339 in one schedule's zone each; equal zones sort right, which is the common case.
    next.sort_by(|a, b| a.1.cmp(&b.1));
    next
}

/// Whether any `program` field anywhere in `v` names `name`.
fn mentions(v: &Value, name: &str) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| (k == "program" && v == name) || mentions(v, name)),
        Value::Array(a) => a.iter().any(|v| mentions(v, name)),
        _ => false,
    }
}

/// The newest finished backup, in words.
fn last_backup(backups: Option<&Value>) -> Option<String> {
    let b = backups?["backups"]
        .as_array()?
        .iter()
        .filter(|b| b["status"] != "running")
        .max_by_key(|b| b["started_at"].as_i64().unwrap_or(0))?;
    let when = fmt_ms(b["finished_at"].as_i64().or(b["started_at"].as_i64())?);
    let status = b["status"].as_str().unwrap_or("");
    Some(match b["archive_bytes"].as_u64() {
        Some(size) if status == "ok" => format!("{when}, {}", show_bytes(size as f64)),
        _ => format!("{when}, {status}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_view_names_reason_health_resources_schedule_and_backup() {
        let p = json!({
            "name": "mc", "state": "crashed", "since_ms": 0, "restarts": 2,
            "last_exit": {"description": "exited (exit code 3)"},
            "reason": {"message": "command not found: /usr/bin/x"},
            "game_status": {"health": "unhealthy", "message": "no answer", "players": 3},
        });
        let metrics = json!({"current": {"cpu_percent": 12.345, "memory_bytes": 3_221_225_472u64}});
        let schedules = json!({"schedules": [
            {"name": "nightly", "trigger_description": "At 04:00.",
             "next_runs": ["2026-12-07T04:00:00+09:00"],
             "tasks": [{"action": {"kind": "restart", "program": "mc"}}]},
            {"name": "other", "trigger_description": "At 05:00.",
             "next_runs": ["2026-12-07T05:00:00+09:00"],
             "tasks": [{"action": {"kind": "restart", "program": "valheim"}}]},
        ]});
        let backups = json!({"backups": [
            {"status": "ok", "started_at": 1, "finished_at": 2, "archive_bytes": 1_288_490_189u64},
            {"status": "failed", "started_at": 0, "finished_at": 1},
        ]});
        let rows = lines(&p, Some(&metrics), Some(&schedules), Some(&backups));
        let get = |label: &str| -> Vec<String> {
            rows.iter()
                .filter(|(l, _)| *l == label)
                .map(|(_, v)| v.clone())
                .collect()
        };
        assert_eq!(get("Reason"), ["command not found: /usr/bin/x"]);
        assert_eq!(get("Health"), ["unhealthy (no answer)"]);
        assert_eq!(get("Players"), ["3"]);
        assert_eq!(get("CPU"), ["12.3 %"]);
        assert_eq!(get("Memory"), ["3.0 GiB"]);
        assert_eq!(
            get("Next"),
            ["2026-12-07T04:00:00+09:00 (schedule nightly: At 04:00.)"]
        );
        assert!(get("Last backup")[0].ends_with(", 1.2 GiB"), "{rows:?}");
    }

    #[test]
    fn parts_the_caller_cannot_see_are_left_out() {
        let p = json!({"name": "mc", "state": "stopped", "restarts": 0});
        let rows = lines(&p, None, None, None);
        let labels: Vec<&str> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(labels, ["Name", "State", "Restarts", "Last exit"]);
    }
}
