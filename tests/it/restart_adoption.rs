//! A program restarted by its restart policy keeps its recorded identity, so a warden
//! killed uncleanly afterwards adopts it instead of starting a second copy. (The row of the
//! crashed process used to be cleared after the restart had recorded the new one.)

use std::time::Duration;

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn a_policy_restart_is_adopted_after_an_unclean_exit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut w = Warden::start_in(&data, "").await;
    // Fails once (creating the marker), then runs for good.
    let mut spec = sh(
        "flaky",
        "if [ ! -f marker ]; then touch marker; exit 1; fi; exec sleep 600",
    );
    spec["cwd"] = json!(work.to_string_lossy());
    spec["autostart"] = json!(true);
    spec["start_seconds"] = json!(1);
    spec["restart"] = json!({"policy": "on-failure", "backoff_initial_ms": 0});
    w.create(spec).await;
    let v = w
        .wait_program(
            "flaky",
            Duration::from_secs(20),
            "running after one restart",
            |v| v["state"] == "running" && v["restarts"] == 1,
        )
        .await;
    let pid = v["pid"].as_u64().expect("pid");
    w.kill9();
    drop(w);
    let w = Warden::start_in(&data, "").await;
    let v = w
        .wait_state("flaky", "running", Duration::from_secs(20))
        .await;
    assert_eq!(v["adopted"], true, "{v}");
    assert_eq!(v["pid"].as_u64(), Some(pid), "{v}");
    w.post("/api/programs/flaky/stop", json!(null)).await;
    w.wait_state("flaky", "stopped", Duration::from_secs(20))
        .await;
}
