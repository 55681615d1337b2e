//! Lifecycle end to end: crash detection, restart with backoff, the start limit, requested
//! stops, stop sequences (signal, stdin, kill of the whole process group).

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn crash_restarts_with_backoff_then_gives_up() {
    let w = Warden::start().await;
    let mut spec = sh("crashy", "echo boom-$$; exit 3");
    spec["start_seconds"] = json!(1);
    spec["restart"] = json!({"policy": "on-failure", "backoff_initial_ms": 200, "backoff_max_ms": 1000, "max_failed_starts": 4, "window_seconds": 60});
    w.create(spec).await;
    let started = Instant::now();
    w.post("/api/programs/crashy/start", json!(null)).await;
    let v = w
        .wait_state("crashy", "fatal", Duration::from_secs(20))
        .await;
    let took = started.elapsed();
    assert_eq!(v["last_exit"]["code"], 3);
    // Restarts: immediate, then 200 ms, then 400 ms (±25 % jitter) → at least ~450 ms.
    assert!(
        took >= Duration::from_millis(450),
        "backoff too short: {took:?}"
    );
    // Events are stored a moment after the state changes they describe.
    let events = wait_until(Duration::from_secs(20), "fatal event stored", || async {
        let ev = w.events("crashy").await;
        ev.iter().any(|e| e["data"]["to"] == "fatal").then_some(ev)
    })
    .await;
    let tos: Vec<&str> = events
        .iter()
        .rev()
        .filter_map(|e| e["data"]["to"].as_str())
        .collect();
    assert_eq!(
        tos.iter().filter(|s| **s == "crashed").count(),
        4,
        "{tos:?}"
    );
    assert_eq!(
        tos.iter().filter(|s| **s == "backoff").count(),
        2,
        "{tos:?}"
    );
    assert_eq!(tos.last(), Some(&"fatal"), "{tos:?}");
    // The crash event carries the exit status and the last console lines.
    let crash = events
        .iter()
        .find(|e| e["data"]["to"] == "crashed")
        .expect("crash event");
    assert_eq!(crash["data"]["exit"]["code"], 3);
    let lines = crash["data"]["last_lines"].as_array().expect("last lines");
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().is_some_and(|s| s.starts_with("boom-"))),
        "{crash}"
    );
}

#[tokio::test]
async fn requested_stop_is_never_a_crash_nor_restarted() {
    let w = Warden::start().await;
    let mut spec = sh("svc", "exec sleep 1000");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"policy": "always"});
    w.create(spec).await;
    w.post("/api/programs/svc/start", json!(null)).await;
    let v = w
        .wait_state("svc", "running", Duration::from_secs(10))
        .await;
    let pid = v["pid"].as_u64().expect("pid") as u32;
    let (st, _) = w.post("/api/programs/svc/stop", json!(null)).await;
    assert!(st.is_success());
    let v = w
        .wait_state("svc", "stopped", Duration::from_secs(10))
        .await;
    assert_eq!(v["last_exit"]["signal"], "SIGTERM");
    assert!(!alive(pid));
    // Observe for a while: a requested stop must not lead to a restart, even with `always`.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = w.program("svc").await;
    assert_eq!(v["state"], "stopped");
    let events = w.events("svc").await;
    let tos: Vec<&str> = events
        .iter()
        .filter_map(|e| e["data"]["to"].as_str())
        .collect();
    assert!(!tos.contains(&"crashed"), "{tos:?}");
    assert_eq!(
        tos.iter().filter(|s| **s == "starting").count(),
        1,
        "{tos:?}"
    );
}

#[tokio::test]
async fn stop_kills_forked_grandchildren_that_ignore_sigterm() {
    let w = Warden::start().await;
    // The leader forks two children that ignore SIGTERM (the ignore disposition survives
    // exec), prints their pids, and waits.
    let script = r#"p=""; for i in 1 2; do (trap '' TERM; exec sleep 1000) & p="$p $!"; done; echo "kids$p"; wait"#;
    let mut spec = sh("forky", script);
    spec["start_seconds"] = json!(0);
    spec["stop"] = json!({"signal": "SIGTERM", "timeout_seconds": 1});
    w.create(spec).await;
    w.post("/api/programs/forky/start", json!(null)).await;
    let kids: Vec<u32> = wait_until(Duration::from_secs(10), "kids line", || async {
        w.console("forky")
            .await
            .iter()
            .find_map(|l| l.strip_prefix("kids "))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
    })
    .await;
    assert_eq!(kids.len(), 2);
    assert!(kids.iter().all(|p| alive(*p)));
    let t0 = Instant::now();
    w.post("/api/programs/forky/stop", json!(null)).await;
    w.wait_state("forky", "stopped", Duration::from_secs(15))
        .await;
    // The children ignored SIGTERM, so only the kill after the 1 s timeout removed them.
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    for k in &kids {
        assert!(!alive(*k), "grandchild {k} survived the stop");
        // Reaped too (warden is their subreaper): no zombie left behind.
        assert!(
            !std::path::Path::new(&format!("/proc/{k}")).exists(),
            "grandchild {k} left a zombie"
        );
    }
}

#[tokio::test]
async fn stdin_stop_command_stops_the_game_gracefully() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    std::fs::create_dir_all(&world).expect("world dir");
    w.create(json!({
        "name": "mc",
        "command": bin(),
        "args": ["demo-game", "--startup-ms", "100", "--save-dir", world],
        "start_seconds": 0,
        "stop": {"stdin": "stop", "timeout_seconds": 20}
    }))
    .await;
    w.post("/api/programs/mc/start", json!(null)).await;
    wait_until(Duration::from_secs(20), "Done line", || async {
        w.console("mc")
            .await
            .iter()
            .any(|l| l.contains("Done ("))
            .then_some(())
    })
    .await;
    w.post("/api/programs/mc/stop", json!(null)).await;
    let v = w.wait_state("mc", "stopped", Duration::from_secs(20)).await;
    assert_eq!(v["last_exit"]["code"], 0);
    let console = w.console("mc").await;
    assert!(
        console.iter().any(|l| l == "stop"),
        "the stop line is echoed: {console:?}"
    );
    assert!(
        console.iter().any(|l| l.contains("Stopping server")),
        "{console:?}"
    );
    assert!(
        !console.iter().any(|l| l.contains("Received SIG")),
        "no signal was needed: {console:?}"
    );
    assert!(
        world.join("saved").exists(),
        "the game saved before exiting"
    );
}

#[tokio::test]
async fn kill_and_restart_actions() {
    let w = Warden::start().await;
    let mut spec = sh("k", "exec sleep 1000");
    spec["start_seconds"] = json!(0);
    w.create(spec).await;
    w.post("/api/programs/k/start", json!(null)).await;
    let first = w.wait_state("k", "running", Duration::from_secs(10)).await["pid"].clone();
    w.post("/api/programs/k/restart", json!(null)).await;
    let v = w
        .wait_program("k", Duration::from_secs(10), "new pid", |v| {
            v["state"] == "running" && v["pid"] != first
        })
        .await;
    let (st, _) = w.post("/api/programs/k/kill", json!(null)).await;
    assert!(st.is_success());
    let after = w.wait_state("k", "stopped", Duration::from_secs(10)).await;
    assert_eq!(after["last_exit"]["signal"], "SIGKILL");
    assert!(!alive(v["pid"].as_u64().expect("pid") as u32));
}

#[tokio::test]
async fn deleting_a_running_program_is_refused_unless_forced() {
    let w = Warden::start().await;
    let mut spec = sh("d", "exec sleep 1000");
    spec["start_seconds"] = json!(0);
    w.create(spec).await;
    w.post("/api/programs/d/start", json!(null)).await;
    let pid = w.wait_state("d", "running", Duration::from_secs(10)).await["pid"]
        .as_u64()
        .expect("pid") as u32;
    let (st, v) = w
        .call_as(
            Some(&w.token),
            reqwest::Method::DELETE,
            "/api/programs/d",
            None,
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "program_active");
    assert_eq!(v["error"]["params"]["name"], "d", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("force=true"))
    );
    assert!(alive(pid));
    let (st, _) = w
        .call_as(
            Some(&w.token),
            reqwest::Method::DELETE,
            "/api/programs/d?force=true",
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert!(!alive(pid));
    let (st, _) = w.get("/api/programs/d").await;
    assert_eq!(st, 404);
}
