//! Lifecycle end to end: crash detection, restart with backoff, the start limit, requested
//! stops, stop sequences (signal, stdin, kill of the whole process group).

mod common;

use std::time::{Duration, Instant};

use common::*;
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
    let events = w.events("crashy").await;
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
