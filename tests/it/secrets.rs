//! Secrets at rest: the data directory is warden's user's alone (0700, files 0600),
//! an existing too-open one is tightened with a log line, and programs keep the umask
//! warden started with.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

/// Every path under `dir` whose mode is not `0700` (folders) or `0600` (files).
fn too_open(dir: &Path, skip: &[&str], out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let meta = std::fs::symlink_metadata(e.path()).expect("meta");
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            if mode != 0o700 {
                out.push(format!("{} {mode:o}", e.path().display()));
            }
            too_open(&e.path(), skip, out);
        } else if meta.is_file() && mode != 0o600 {
            out.push(format!("{} {mode:o}", e.path().display()));
        }
    }
}

#[tokio::test]
async fn everything_warden_writes_in_its_data_dir_is_private() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A shared parent, so a too-open data dir would matter.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = tmp.path().join("data");
    let w = Warden::start_in(&data, "").await;
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut spec = sh(
        "p",
        "umask > umask.txt; echo hello; echo made > file.txt; sleep 600",
    );
    spec["cwd"] = json!(out);
    w.create(spec).await;
    let (st, v) = w
        .put(
            "/api/programs/p/backup-settings",
            json!({"destination": data.join("backups")}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = w.post("/api/programs/p/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    wait_until(Duration::from_secs(20), "the program's files", || async {
        std::fs::read_to_string(out.join("umask.txt"))
            .ok()
            .filter(|s| !s.is_empty())
    })
    .await;
    let (st, v) = w.post("/api/programs/p/backups", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_i64().expect("id");
    wait_until(Duration::from_secs(30), "backup finished", || async {
        let (_, v) = w.get(&format!("/api/backups/{id}")).await;
        (v["status"] != "running").then_some(())
    })
    .await;
    wait_until(Duration::from_secs(10), "console log file", || async {
        std::fs::read_dir(data.join("logs").join("p"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|_| ())
    })
    .await;
    // The data dir itself and everything in it, except the config the test wrote.
    let mode = std::fs::metadata(&data).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data dir mode {mode:o}");
    let mut bad = Vec::new();
    too_open(&data, &["test-config.toml"], &mut bad);
    assert!(bad.is_empty(), "too open: {bad:?}");
    for f in ["warden.db", "warden.db-wal", "warden.db-shm"] {
        assert!(data.join(f).exists(), "{f} exists");
    }
    // The program's own files are made with the umask warden started with.
    let meta = std::fs::metadata(out.join("file.txt")).expect("meta");
    let umask = std::fs::read_to_string(out.join("umask.txt")).expect("umask");
    assert_ne!(
        umask.trim(),
        "0077",
        "the program got warden's private umask"
    );
    assert_ne!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_too_open_data_dir_is_tightened_with_a_log_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (st, _, err) = cli(&data, &["user", "list"], None);
    assert!(st.success(), "{err}");
    assert!(err.contains("made it 0700"), "no log line: {err}");
    let mode = std::fs::metadata(&data).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let db = std::fs::metadata(data.join("warden.db")).expect("db");
    assert_eq!(db.permissions().mode() & 0o777, 0o600);
}
