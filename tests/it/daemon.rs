//! warden as a daemon: clean shutdown (programs stopped or left running), unclean kills
//! that leave the database intact, console capture (long lines, input, live stream).

use std::time::Duration;

use crate::common::*;
use serde_json::json;

fn integrity_ok(dir: &std::path::Path) {
    let db = rusqlite::Connection::open(dir.join("warden.db")).expect("open db");
    let res: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(res, "ok");
}

fn sleeper(name: &str) -> serde_json::Value {
    let mut s = sh(name, "exec sleep 1000");
    s["start_seconds"] = json!(0);
    s["autostart"] = json!(true);
    s
}

#[tokio::test]
async fn sigterm_stops_programs_in_parallel_and_exits_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = Warden::start_in(tmp.path(), "").await;
    let mut pids = Vec::new();
    for n in ["a", "b", "c"] {
        w.create(sleeper(n)).await;
        pids.push(
            w.wait_state(n, "running", Duration::from_secs(10)).await["pid"]
                .as_u64()
                .expect("pid") as u32,
        );
    }
    let status = w.terminate();
    assert_eq!(status.code(), Some(0));
    for p in pids {
        assert!(!alive(p), "program {p} left running");
    }
    integrity_ok(tmp.path());
    // Everything was flushed: the stop transitions and warden's own stop are stored.
    let db = rusqlite::Connection::open(tmp.path().join("warden.db")).expect("open");
    let stopped: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'state' AND json_extract(data, '$.to') = 'stopped'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(stopped, 3);
    let stopping: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'warden_stopping'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(stopping, 1);
}

#[tokio::test]
async fn leave_mode_keeps_programs_running_for_the_next_warden() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = "[supervisor]\non_shutdown = \"leave\"\n";
    let mut w = Warden::start_in(tmp.path(), cfg).await;
    w.create(sleeper("keep")).await;
    let pid = w
        .wait_state("keep", "running", Duration::from_secs(10))
        .await["pid"]
        .clone();
    assert_eq!(w.terminate().code(), Some(0));
    let pid_n = pid.as_u64().expect("pid") as u32;
    assert!(alive(pid_n), "left running");
    let w2 = Warden::start_in(tmp.path(), cfg).await;
    let v = w2
        .wait_state("keep", "running", Duration::from_secs(10))
        .await;
    assert_eq!(v["pid"], pid);
    assert_eq!(v["adopted"], true);
    w2.post("/api/programs/keep/stop", json!(null)).await;
    w2.wait_state("keep", "stopped", Duration::from_secs(10))
        .await;
    assert!(!alive(pid_n));
}

#[tokio::test]
async fn a_second_warden_on_the_same_data_dir_is_refused() {
    let w = Warden::start().await;
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&w.data_dir)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another warden is already running"), "{err}");
}

#[tokio::test]
async fn kill_9_during_activity_leaves_a_sound_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = Warden::start_in(tmp.path(), "").await;
    // A crash loop writes events continuously while warden is killed.
    let mut spec = sh("loop", "echo tick; exit 1");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"backoff_initial_ms": 1, "backoff_max_ms": 5, "max_failed_starts": 1000000, "window_seconds": 1});
    w.create(spec).await;
    w.post("/api/programs/loop/start", json!(null)).await;
    wait_until(Duration::from_secs(10), "some crash events", || async {
        (w.events("loop").await.len() > 50).then_some(())
    })
    .await;
    w.kill9();
    integrity_ok(tmp.path());
    // And warden starts again on it.
    let w2 = Warden::start_in(tmp.path(), "").await;
    assert!(!w2.events("loop").await.is_empty());
}

#[tokio::test]
async fn console_captures_splits_long_lines_takes_input_and_streams() {
    let w = Warden::start().await;
    let mut spec = sh(
        "echo",
        "head -c 40000 /dev/zero | tr '\\0' 'x'; echo; echo err-line >&2; while read l; do echo \"got:$l\"; done",
    );
    spec["start_seconds"] = json!(0);
    w.create(spec).await;
    // Start streaming before any output exists, then start the program.
    let resp = w
        .http
        .get(format!(
            "{}/api/programs/echo/console/stream?lines=10",
            w.url
        ))
        .bearer_auth(&w.token)
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    w.post("/api/programs/echo/start", json!(null)).await;
    // stdout and stderr are separate pipes read by separate tasks: wait for both, and for
    // every byte of the long line (a truncation never gets there and times out).
    let lines = wait_until(
        Duration::from_secs(10),
        "the stderr line and all 40000 bytes of the long line",
        || async {
            let (_, v) = w.get("/api/programs/echo/console?lines=100").await;
            let lines = v["lines"].as_array().cloned().unwrap_or_default();
            let total: usize = lines
                .iter()
                .filter_map(|l| l["text"].as_str())
                .filter(|t| t.starts_with('x'))
                .map(str::len)
                .sum();
            let err = lines.iter().any(|l| l["text"] == "err-line");
            (err && total == 40000).then_some(lines)
        },
    )
    .await;
    let xs: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["text"].as_str().is_some_and(|t| t.starts_with('x')))
        .collect();
    assert!(xs.len() >= 3, "split into pieces");
    assert!(
        xs[..xs.len() - 1].iter().all(|l| l["split"] == true),
        "pieces marked"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["text"] == "err-line" && l["stream"] == "stderr")
    );

    let (st, _) = w
        .post("/api/programs/echo/console", json!({"line": "hello there"}))
        .await;
    assert_eq!(st, 204);
    wait_until(Duration::from_secs(10), "echo of input", || async {
        w.console("echo")
            .await
            .iter()
            .any(|l| l == "got:hello there")
            .then_some(())
    })
    .await;
    // The live stream saw the same lines, as JSON lines.
    let mut resp = resp;
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("got:hello there") {
        assert!(
            std::time::Instant::now() < deadline,
            "stream did not deliver: {seen}"
        );
        if let Ok(Ok(Some(c))) =
            tokio::time::timeout(Duration::from_millis(200), resp.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
    }
    assert!(
        seen.contains("\"stream\":\"stdin\""),
        "input is echoed in the stream"
    );
    // Log files on disk hold the same output.
    let log = std::fs::read_to_string(w.data_dir.join("logs/echo/console.log")).expect("log file");
    assert!(log.contains("got:hello there") && log.contains("[line continues]"));
}

/// Stopping warden has ONE deadline shared by its stages: a job step that holds the
/// schedule stage for 3 s leaves the programs only what is left of the 4 s, then they are
/// forced. (With a deadline per stage this took 3 s + 4 s.)
#[tokio::test]
async fn shutdown_stages_share_one_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = Warden::start_in(tmp.path(), "[supervisor]\nshutdown_timeout_seconds = 4\n").await;
    // A program that ignores SIGTERM and would be given 60 s to stop.
    let mut deaf = sh("deaf", "trap '' TERM; echo up; while :; do sleep 0.2; done");
    deaf["start_seconds"] = json!(0);
    deaf["stop"] = json!({"signal": "SIGTERM", "timeout_seconds": 60});
    w.create(deaf).await;
    let (st, v) = w.post("/api/programs/deaf/start", json!(null)).await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let pid = w
        .wait_state("deaf", "running", Duration::from_secs(10))
        .await["pid"]
        .as_u64()
        .expect("pid") as u32;
    // A job run whose step ignores SIGTERM for its 3 s stop timeout.
    let stamp = tmp.path().join("step.pid");
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "slow", "stop_timeout_seconds": 3, "steps": [{"name": "s",
                   "command": "sh", "args": ["-c", format!("trap '' TERM; echo $$ > {}; while :; do sleep 0.2; done", stamp.display())]}]}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    let (st, v) = w.post("/api/jobs/slow/run", json!(null)).await;
    assert_eq!(st, reqwest::StatusCode::ACCEPTED, "{v}");
    let step_pid: u32 = wait_until(Duration::from_secs(10), "the step runs", || async {
        std::fs::read_to_string(&stamp)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
    .await;

    let began = std::time::Instant::now();
    let status = w.terminate();
    let took = began.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_millis(6500),
        "stopping took {took:?}: the stages did not share the 4 s deadline"
    );
    assert!(!alive(pid), "the program was forced at the deadline");
    assert!(!alive(step_pid), "the job step was stopped");
    integrity_ok(tmp.path());
}
