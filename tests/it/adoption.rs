//! Duplicate-run prevention across an unclean exit of warden: a child that still runs is
//! adopted (never started twice); a recorded pid that now belongs to another process is not.

use std::time::Duration;

use crate::common::*;
use serde_json::json;

fn counting_program(dir: &std::path::Path) -> serde_json::Value {
    let starts = dir.join("starts.txt");
    let mut spec = sh(
        "game",
        &format!("echo started >> '{}'; exec sleep 1000", starts.display()),
    );
    spec["start_seconds"] = json!(0);
    spec["autostart"] = json!(true);
    spec
}

fn starts(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("starts.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_child_surviving_an_unclean_exit_is_adopted_not_started_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut w = Warden::start_in(&dir, "").await;
    w.create(counting_program(&dir)).await;
    let pid = w
        .wait_state("game", "running", Duration::from_secs(10))
        .await["pid"]
        .clone();
    wait_until(Duration::from_secs(10), "first start recorded", || async {
        (starts(&dir) == 1).then_some(())
    })
    .await;
    w.kill9();
    let pid_n = pid.as_u64().expect("pid") as u32;
    assert!(alive(pid_n), "the child outlives warden's SIGKILL");

    let w2 = Warden::start_in(&dir, "").await;
    let v = w2
        .wait_state("game", "running", Duration::from_secs(10))
        .await;
    assert_eq!(v["pid"], pid, "same process, adopted");
    assert_eq!(v["adopted"], true);
    assert_eq!(starts(&dir), 1, "not started a second time");
    wait_until(Duration::from_secs(20), "adoption event", || async {
        let events = w2.events("game").await;
        events
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("adopted")))
            .then_some(())
    })
    .await;
    // An adopted program can be stopped, and its end is noticed at once.
    w2.post("/api/programs/game/stop", json!(null)).await;
    w2.wait_state("game", "stopped", Duration::from_secs(10))
        .await;
    assert!(!alive(pid_n));
}

#[tokio::test]
async fn a_reused_pid_is_not_adopted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut w = Warden::start_in(&dir, "").await;
    w.create(counting_program(&dir)).await;
    let pid = w
        .wait_state("game", "running", Duration::from_secs(10))
        .await["pid"]
        .as_u64()
        .expect("pid") as u32;
    w.kill9();
    // The program dies while warden is down, and an unrelated process now holds a pid
    // the store will point at (we cannot force the kernel to reuse the very pid, so the
    // record is rewritten to the stranger's pid, keeping the old start time).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn stranger");
    let db = rusqlite::Connection::open(dir.join("warden.db")).expect("open db");
    db.execute(
        "UPDATE program_runtime SET pid = ?1 WHERE name = 'game'",
        [stranger.id()],
    )
    .expect("rewrite runtime row");
    drop(db);

    let w2 = Warden::start_in(&dir, "").await;
    let v = w2
        .wait_state("game", "running", Duration::from_secs(10))
        .await;
    assert_ne!(v["pid"].as_u64(), Some(u64::from(stranger.id())));
    assert_eq!(v["adopted"], false);
    wait_until(Duration::from_secs(10), "started afresh", || async {
        (starts(&dir) == 2).then_some(())
    })
    .await;
    wait_until(Duration::from_secs(20), "stale pid event", || async {
        let events = w2.events("game").await;
        events
            .iter()
            .any(|e| e["kind"] == "stale_pid")
            .then_some(())
    })
    .await;
    assert!(alive(stranger.id()), "the stranger was not touched");
    let _ = stranger.kill();
    let _ = stranger.wait();
}
