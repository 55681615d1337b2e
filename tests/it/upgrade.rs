//! Upgrades: a database written by an older warden (a checked-in fixture, see
//! `fixtures/README.md`) opens under this build, migrates, and keeps its users, tokens,
//! programs, events, alert definitions, jobs and schedules.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// The API token stored (hashed) in `fixtures/schema-5.db`.
const LEGACY_TOKEN: &str = "wdn_2f97813d0f00_ENayBRDXVKj1Pek1NJsmXkJkv83Zaz6LsLx8xZkG4pY";

#[tokio::test]
async fn a_database_from_schema_5_opens_and_keeps_everything() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/schema-5.db");
    std::fs::copy(&fixture, tmp.path().join("warden.db")).expect("copy fixture");
    let w = Warden::start_in(tmp.path(), "").await;

    // The token made by the old warden still works, with its role.
    let (st, list) = w
        .call_as(Some(LEGACY_TOKEN), Method::GET, "/api/programs", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["programs"]
        .as_array()
        .expect("program list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["nightly", "survival"], "{list}");

    // Definitions came through whole, secrets still masked and still kept.
    let survival = w.program("survival").await;
    assert_eq!(survival["display_name"], "Survival world", "{survival}");
    assert_eq!(survival["state"], "stopped", "{survival}");
    assert_eq!(survival["env"]["RCON_PASSWORD"], "********", "{survival}");
    assert_eq!(
        survival["game"]["rcon"]["password"], "********",
        "{survival}"
    );
    // Programs saved before `allow_root` existed keep running as they did (migration
    // 0011), and their plain secrets were sealed at this start.
    assert_eq!(survival["allow_root"], true, "{survival}");
    {
        let db = rusqlite::Connection::open_with_flags(
            tmp.path().join("warden.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db");
        let spec: String = db
            .query_row(
                "SELECT spec FROM programs WHERE name = 'survival'",
                [],
                |r| r.get(0),
            )
            .expect("row");
        let spec: serde_json::Value = serde_json::from_str(&spec).expect("json");
        for secret in [
            &spec["env"]["RCON_PASSWORD"],
            &spec["game"]["rcon"]["password"],
        ] {
            assert!(
                secret.as_str().is_some_and(|s| s.starts_with("sealed1:")),
                "{spec}"
            );
        }
    }

    // Its history: every state change recorded by the old warden, newest first.
    let states: Vec<String> = w
        .events("survival")
        .await
        .iter()
        .filter(|e| e["kind"] == "state")
        .filter_map(|e| e["data"]["to"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        states,
        ["stopped", "stopping", "running", "starting"],
        "{states:?}"
    );

    let (st, channels) = w.get("/api/alerts/channels").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(channels["channels"][0]["name"], "hook", "{channels}");
    let (_, rules) = w.get("/api/alerts/rules").await;
    assert_eq!(
        rules["rules"][0]["condition"], "crashed >= 3 in 5m",
        "{rules}"
    );
    let (st, job) = w.get("/api/jobs/tidy").await;
    assert_eq!(st, StatusCode::OK, "{job}");
    let (st, sched) = w.get("/api/schedules/weekly").await;
    assert_eq!(st, StatusCode::OK, "{sched}");
    assert_eq!(sched["trigger"], "0 4 * * 1", "{sched}");

    // The old user signs in with the old password.
    let login = w
        .http
        .post(format!("{}/api/auth/login", w.url))
        .json(&json!({"username": "alice", "password": "old-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);

    // And the migrated program still runs.
    let (st, v) = w.post("/api/programs/survival/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    w.wait_state("survival", "running", Duration::from_secs(20))
        .await;
}
