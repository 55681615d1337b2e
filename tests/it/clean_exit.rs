//! `restart.policy = "always"`: a clean exit is `exited`, not a crash; it is restarted,
//! never counts toward `max_failed_starts`, and a tight loop of clean exits is slowed down
//! by the clean-exit guard, whose event says so in plain words.

use std::time::Duration;

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn clean_exits_under_always_restart_without_giving_up() {
    let w = Warden::start().await;
    let mut spec = sh("oneshot", "echo done; exit 0");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({
        "policy": "always",
        "backoff_initial_ms": 100,
        "backoff_max_ms": 400,
        "max_failed_starts": 2,
        "window_seconds": 60
    });
    w.create(spec).await;
    let (st, v) = w.post("/api/programs/oneshot/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    // Far more clean exits than max_failed_starts (2): it must keep being restarted.
    let v = w
        .wait_program(
            "oneshot",
            Duration::from_secs(30),
            "8 restarts after clean exits",
            |v| v["restarts"].as_u64().unwrap_or(0) >= 8,
        )
        .await;
    assert_ne!(v["state"], "fatal", "{v}");
    let events = w.events("oneshot").await;
    let messages: Vec<String> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        messages
            .iter()
            .all(|m| !m.contains("crashed") && !m.contains("gave up")),
        "a clean exit was called a crash: {messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("-> stopped: exited (exit code 0)")),
        "{messages:#?}"
    );
    // The guard spoke up after the 5th clean exit within the window.
    assert!(
        messages
            .iter()
            .any(|m| m.contains("exited cleanly") && m.contains("clean-exit guard")),
        "{messages:#?}"
    );
    let (st, _) = w.post("/api/programs/oneshot/stop", json!(null)).await;
    assert!(st.is_success());
}
