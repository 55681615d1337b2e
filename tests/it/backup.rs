//! Backups end to end against the real binary: byte-identical round trip through restore,
//! kill -9 mid-backup, cancel, verify catching corruption, retention, a malicious archive,
//! and pre/post steps against the demo game server even when the backup fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(120);

/// Deterministic pseudo-random bytes (xorshift), incompressible like game region files.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every entry under `root`: relative path → "dir", "link:TARGET" or the BLAKE3 of the
/// content.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("ls") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().expect("type");
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).expect("readlink");
                out.insert(rel, format!("link:{}", t.display()));
            } else if ft.is_dir() {
                out.insert(rel, "dir".into());
                go(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.insert(rel, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

/// A world with nested and empty directories, empty files, unicode names, a symlink and
/// a file of `big` bytes.
fn make_world(root: &Path, big: usize) {
    for d in ["region/overworld/deep", "empty-dir", "données/日本語"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("level.dat"), noise(4096, 1)).expect("write");
    std::fs::write(root.join("empty.txt"), b"").expect("write");
    std::fs::write(root.join("region/overworld/deep/empty.mca"), b"").expect("write");
    std::fs::write(root.join("données/日本語/ファイル ✓.txt"), "こんにちは").expect("write");
    std::fs::write(root.join("region/overworld/r.0.0.mca"), noise(300_000, 2)).expect("write");
    std::fs::write(root.join("server.properties"), "motd=hello\n".repeat(1000)).expect("write");
    std::fs::write(root.join("region/big.bin"), noise(big, 3)).expect("write");
    std::os::unix::fs::symlink("level.dat", root.join("level.link")).expect("symlink");
}

async fn put_settings(w: &Warden, name: &str, settings: Value) {
    let (st, v) = w
        .call_as(
            Some(&w.token),
            Method::PUT,
            &format!("/api/programs/{name}/backup-settings"),
            Some(settings),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "settings: {v}");
}

async fn start_backup(w: &Warden, name: &str) -> i64 {
    let (st, v) = w
        .post(&format!("/api/programs/{name}/backups"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "create backup: {v}");
    v["id"].as_i64().expect("id")
}

async fn wait_backup(w: &Warden, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_until(LONG, what, || async {
        let (_, v) = w.get(&format!("/api/backups/{id}")).await;
        pred(&v).then_some(v)
    })
    .await
}

async fn wait_finished(w: &Warden, id: i64) -> Value {
    wait_backup(w, id, "backup finished", |v| v["status"] != "running").await
}

async fn wait_restore(w: &Warden, rid: i64) -> Value {
    wait_until(LONG, "restore finished", || async {
        let (_, v) = w.get(&format!("/api/restores/{rid}")).await;
        (v["status"] != "running").then_some(v)
    })
    .await
}

/// Entries of a directory whose names do not start with '.'.
fn visible(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Paths of every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

fn all_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn restore_round_trips_byte_identically() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    make_world(&world, 100 * 1024 * 1024);
    let original = snapshot(&world);
    let mut spec = sh("mc", "exec sleep 600");
    spec["cwd"] = json!(world);
    spec["start_seconds"] = json!(0);
    w.create(spec).await;

    let id = start_backup(&w, "mc").await;
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "ok", "{b}");
    assert_eq!(b["files"], 7, "{b}");
    let dir = PathBuf::from(b["path"].as_str().expect("path"));
    assert!(
        dir.starts_with(&w.data_dir),
        "default destination is under the data dir: {b}"
    );
    let (_, m) = w.get(&format!("/api/backups/{id}/manifest")).await;
    assert_eq!(m["program"], "mc");
    assert!(
        m["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["path"] == "données/日本語/ファイル ✓.txt")
    );

    // Damage the world: change, delete and add files.
    std::fs::write(world.join("level.dat"), b"corrupted").expect("write");
    std::fs::remove_dir_all(world.join("données")).expect("rm");
    std::fs::write(world.join("new-after-backup.txt"), b"x").expect("write");
    let damaged = snapshot(&world);

    // A running program is not restored behind its back.
    w.post("/api/programs/mc/start", json!(null)).await;
    w.wait_state("mc", "running", Duration::from_secs(10)).await;
    let (st, v) = w
        .post(&format!("/api/backups/{id}/restore"), json!(null))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    // With stop=true warden stops it, restores, and starts it again.
    let (st, v) = w
        .post(&format!("/api/backups/{id}/restore?stop=true"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let r = wait_restore(&w, v["id"].as_i64().expect("id")).await;
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(
        snapshot(&world),
        original,
        "restored tree differs from the backed-up one"
    );
    let rollback = PathBuf::from(r["rollback"].as_str().expect("rollback kept"));
    assert_eq!(
        snapshot(&rollback),
        damaged,
        "the rollback copy holds the previous data"
    );
    w.wait_state("mc", "running", Duration::from_secs(10)).await;

    // Discarding the rollback copy deletes it.
    let (st, v) = w
        .post(&format!("/api/restores/{}/discard", r["id"]), json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(!rollback.exists());
    assert!(
        all_entries(tmp.path())
            .iter()
            .all(|n| !n.contains("warden-restore")),
        "staging left behind"
    );
}

#[tokio::test]
async fn kill9_mid_backup_leaves_no_finished_archive_and_next_start_cleans_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let world = tmp.path().join("world");
    make_world(&world, 100 * 1024 * 1024);
    let dest = tmp.path().join("dest");
    let mut w = Warden::start_in(&data, "").await;
    let mut spec = sh("slow", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    put_settings(
        &w,
        "slow",
        json!({"destination": dest, "max_mib_per_second": 20}),
    )
    .await;
    let id = start_backup(&w, "slow").await;
    wait_backup(&w, id, "backup reading", |v| {
        v["progress"]["phase"] == "reading"
            && v["progress"]["bytes_done"].as_u64().unwrap_or(0) > 10 << 20
    })
    .await;
    w.kill9();
    let looks_finished: Vec<String> = files_under(&dest)
        .into_iter()
        .filter(|n| n.ends_with(".tar.zst") || n.ends_with("manifest.json"))
        .collect();
    assert!(looks_finished.is_empty(), "{looks_finished:?}");
    assert!(
        visible(&dest).is_empty(),
        "a finished-looking backup exists: {:?}",
        all_entries(&dest)
    );
    assert!(
        all_entries(&dest)
            .iter()
            .any(|n| n.starts_with(".partial-")),
        "the unfinished backup should still be on disk before the restart: {:?}",
        all_entries(&dest)
    );

    let w = Warden::start_in(&data, "").await;
    assert!(
        all_entries(&dest).is_empty(),
        "leftovers not cleaned: {:?}",
        all_entries(&dest)
    );
    let (_, v) = w.get(&format!("/api/backups/{id}")).await;
    assert_eq!(v["status"], "interrupted", "{v}");
    wait_until(
        Duration::from_secs(10),
        "backup_interrupted event",
        || async {
            let events = w.events("slow").await;
            events
                .iter()
                .any(|e| e["kind"] == "backup_interrupted")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn cancel_mid_backup_leaves_nothing() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    make_world(&world, 64 * 1024 * 1024);
    let dest = tmp.path().join("dest");
    let mut spec = sh("c", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    put_settings(
        &w,
        "c",
        json!({"destination": dest, "max_mib_per_second": 16}),
    )
    .await;
    let id = start_backup(&w, "c").await;
    wait_backup(&w, id, "backup reading", |v| {
        v["progress"]["bytes_done"].as_u64().unwrap_or(0) > 4 << 20
    })
    .await;
    // A second backup of the same program is refused while one runs.
    let (st, _) = w.post("/api/programs/c/backups", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = w
        .post(&format!("/api/backups/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "cancelled", "{b}");
    assert!(all_entries(&dest).is_empty(), "{:?}", all_entries(&dest));
    let (st, _) = w
        .post(&format!("/api/backups/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "cancelling a finished backup");
}

#[tokio::test]
async fn verify_detects_a_corrupted_archive() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    make_world(&world, 2 * 1024 * 1024);
    let mut spec = sh("v", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    let id = start_backup(&w, "v").await;
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "ok", "{b}");

    let (st, _) = w
        .post(&format!("/api/backups/{id}/verify"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let v = wait_backup(&w, id, "verified", |v| {
        v["verify_ok"].is_boolean() && v["verifying"].is_null()
    })
    .await;
    assert_eq!(v["verify_ok"], true, "{v}");

    let (_, m) = w.get(&format!("/api/backups/{id}/manifest")).await;
    let archive = PathBuf::from(b["path"].as_str().expect("path"))
        .join(m["archive"]["file"].as_str().expect("file"));
    let mut bytes = std::fs::read(&archive).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&archive, bytes).expect("write");
    let first = v["verified_at"].as_i64().expect("verified_at");
    let (st, _) = w
        .post(&format!("/api/backups/{id}/verify"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let v = wait_backup(&w, id, "verified again", |v| {
        v["verifying"].is_null() && v["verified_at"].as_i64().unwrap_or(0) > first
    })
    .await;
    assert_eq!(v["verify_ok"], false, "{v}");
    let problems = v["verify_problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["path"] == "(archive)"),
        "{problems:?}"
    );
    let events = w.events("v").await;
    assert!(events.iter().any(|e| e["kind"] == "backup_verified"
        && e["message"].as_str().unwrap_or("").contains("FAILED")));
}

#[tokio::test]
async fn retention_keeps_exactly_the_newest_and_prunes_with_an_event() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    std::fs::create_dir_all(&world).expect("mkdir");
    std::fs::write(world.join("a"), "a").expect("write");
    let mut spec = sh("r", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    put_settings(&w, "r", json!({"retention": {"keep_last": 2}})).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = start_backup(&w, "r").await;
        assert_eq!(wait_finished(&w, id).await["status"], "ok");
        ids.push(id);
    }
    // Pruning follows each finished backup; its events are the signal that it ran.
    wait_until(Duration::from_secs(20), "two backups pruned", || async {
        let events = w.events("r").await;
        let pruned = events
            .iter()
            .filter(|e| e["kind"] == "backup_pruned")
            .count();
        (pruned >= 2).then_some(())
    })
    .await;
    let (_, v) = w.get("/api/programs/r/backups").await;
    let kept: Vec<i64> = v["backups"]
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(kept, vec![ids[3], ids[2]]);
    let dirs = visible(&w.data_dir.join("backups/r"));
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let events = w.events("r").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "backup_pruned")
            .count(),
        2,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_malicious_archive_with_parent_paths_is_refused() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    std::fs::create_dir_all(&world).expect("mkdir");
    std::fs::write(world.join("keep.txt"), "precious").expect("write");
    let mut spec = sh("m", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    let id = start_backup(&w, "m").await;
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "ok", "{b}");

    // Replace the archive with one holding `../evil.txt`, and make the manifest's archive
    // checksum match it, so only the path can cause the refusal.
    let dir = PathBuf::from(b["path"].as_str().expect("path"));
    let manifest_path = dir.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..11].copy_from_slice(b"../evil.txt");
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut raw = Vec::new();
    {
        let mut t = tar::Builder::new(&mut raw);
        t.append(&header, &b"evil"[..]).expect("append");
        t.finish().expect("finish");
    }
    let compressed = zstd::encode_all(&raw[..], 3).expect("zstd");
    let archive = dir.join(manifest["archive"]["file"].as_str().expect("file"));
    std::fs::write(&archive, &compressed).expect("write");
    manifest["archive"]["bytes"] = json!(compressed.len());
    manifest["archive"]["blake3"] = json!(blake3::hash(&compressed).to_hex().to_string());
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("write");

    let (st, v) = w
        .post(&format!("/api/backups/{id}/restore"), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let r = wait_restore(&w, v["id"].as_i64().expect("id")).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("unsafe path"),
        "{r}"
    );
    assert!(!tmp.path().join("evil.txt").exists());
    assert_eq!(
        std::fs::read_to_string(world.join("keep.txt")).expect("read"),
        "precious"
    );
    assert!(
        all_entries(tmp.path())
            .iter()
            .all(|n| !n.contains("warden-restore")),
        "staging left behind"
    );
}

fn demo_spec(name: &str, dir: &Path) -> Value {
    json!({
        "name": name,
        "command": bin(),
        "args": ["demo-game", "--save-dir", dir, "--startup-ms", "200"],
        "cwd": dir,
        "start_seconds": 0,
        "stop": {"stdin": "stop", "timeout_seconds": 10}
    })
}

fn positions(lines: &[String], needles: &[&str], from: usize) -> Vec<usize> {
    let mut at = from;
    let mut out = Vec::new();
    for n in needles {
        let p = lines[at..]
            .iter()
            .position(|l| l.contains(n))
            .unwrap_or_else(|| panic!("'{n}' not found in order after line {at}: {lines:#?}"));
        at += p + 1;
        out.push(at - 1);
    }
    out
}

#[tokio::test]
async fn pre_and_post_steps_run_in_order_even_when_the_backup_fails() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let world = tmp.path().join("world");
    std::fs::create_dir_all(&world).expect("mkdir");
    std::fs::write(world.join("level.dat"), "x").expect("write");
    w.create(demo_spec("game", &world)).await;
    w.post("/api/programs/game/start", json!(null)).await;
    wait_until(Duration::from_secs(20), "demo game ready", || async {
        w.console("game")
            .await
            .iter()
            .any(|l| l.contains("Done ("))
            .then_some(())
    })
    .await;
    // A destination that is a regular file: the backup fails after the pre steps.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write");
    let steps = json!({
        "pre": [
            {"stdin": "save-off", "wait_for": "Automatic saving is now disabled", "timeout_seconds": 10},
            {"stdin": "save-all", "wait_for": "Saved the game", "timeout_seconds": 30}
        ],
        "post": [
            {"stdin": "save-on", "wait_for": "Automatic saving is now enabled", "timeout_seconds": 10}
        ]
    });
    let mut failing = steps.clone();
    failing["destination"] = json!(blocker);
    put_settings(&w, "game", failing).await;
    let id = start_backup(&w, "game").await;
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(
        b["warnings"].as_array().expect("warnings").is_empty(),
        "post steps must succeed: {b}"
    );
    let order = [
        "save-off",
        "Automatic saving is now disabled",
        "save-all",
        "Saved the game",
        "save-on",
        "Automatic saving is now enabled",
    ];
    let lines = w.console("game").await;
    let first = positions(&lines, &order, 0);

    // The same steps around a backup that succeeds.
    put_settings(&w, "game", steps).await;
    let id = start_backup(&w, "game").await;
    let b = wait_finished(&w, id).await;
    assert_eq!(b["status"], "ok", "{b}");
    let lines = w.console("game").await;
    positions(&lines, &order, first[5] + 1);
    let events = w.events("game").await;
    assert!(events.iter().any(|e| e["kind"] == "backup_failed"));
    assert!(events.iter().any(|e| e["kind"] == "backup_finished"));
}

#[tokio::test]
async fn settings_are_validated_and_cli_lists_backups() {
    let w = Warden::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = sh("s", "exec sleep 600");
    spec["cwd"] = json!(tmp.path());
    w.create(spec).await;
    let (st, v) = w
        .call_as(
            Some(&w.token),
            Method::PUT,
            "/api/programs/s/backup-settings",
            Some(json!({"zstd_level": 99, "include": ["../etc"]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"zstd_level") && fields.contains(&"include[0]"),
        "{fields:?}"
    );
    let viewer = make_token(&w.data_dir, "viewer");
    let (st, _) = w
        .call_as(Some(&viewer), Method::POST, "/api/programs/s/backups", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    std::fs::write(tmp.path().join("f"), "f").expect("write");
    let out = std::process::Command::new(bin())
        .args([
            "ctl", "--url", &w.url, "--token", &w.token, "backup", "create", "s",
        ])
        .output()
        .expect("ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(bin())
        .args([
            "ctl", "--url", &w.url, "--token", &w.token, "backup", "list", "s",
        ])
        .output()
        .expect("ctl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" ok "), "{text}");
    let dl = tmp.path().join("dl.tar.zst");
    let (_, v) = w.get("/api/programs/s/backups").await;
    let id = v["backups"][0]["id"].as_i64().expect("id").to_string();
    let out = std::process::Command::new(bin())
        .args([
            "ctl", "--url", &w.url, "--token", &w.token, "backup", "download", &id, "-o",
        ])
        .arg(&dl)
        .output()
        .expect("ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, m) = w.get(&format!("/api/backups/{id}/manifest")).await;
    let bytes = std::fs::read(&dl).expect("read");
    assert_eq!(
        blake3::hash(&bytes).to_hex().to_string(),
        m["archive"]["blake3"].as_str().expect("hash")
    );
}
