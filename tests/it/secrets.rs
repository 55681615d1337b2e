//! Secrets at rest: the data directory is warden's user's alone (0700, files 0600),
//! an existing too-open one is tightened with a log line, and programs keep the umask
//! warden started with.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::alerts::{Receiver, wait_hits};
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

/// One secret of each kind, each a distinct text that must never be in the database files.
const SECRETS: &[&str] = &[
    "envtok-5ecr1",
    "rconpw-5ecr2",
    "hookkey-5ecr3",
    "chanpath-5ecr4",
    "hmackey-5ecr5",
    "header-5ecr6",
    "bottok-5ecr7",
    "ntfytopic-5ecr8",
    "ntfytok-5ecr9",
    "taskpath-5ecr10",
    "taskhdr-5ecr11",
];

/// The secrets of `SECRETS` found in the bytes of the database and its WAL (`strings`).
fn secrets_in_db(data: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for f in ["warden.db", "warden.db-wal"] {
        let bytes = std::fs::read(data.join(f)).unwrap_or_default();
        for s in SECRETS {
            if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                found.push(format!("{s} in {f}"));
            }
        }
    }
    found
}

/// Starts `p` (after removing its last output) and waits for the env secret it writes.
async fn program_gets_its_env_secret(w: &Warden, out: &Path) {
    let _ = std::fs::remove_file(out.join("token.txt"));
    let (st, v) = w.post("/api/programs/p/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let got = wait_until(
        Duration::from_secs(20),
        "the program's env secret",
        || async {
            std::fs::read_to_string(out.join("token.txt"))
                .ok()
                .filter(|s| s.ends_with('\n'))
        },
    )
    .await;
    assert_eq!(got.trim(), "envtok-5ecr1");
}

/// The webhook channel still delivers (its URL, HMAC key and header opened).
async fn channel_delivers(w: &Warden, r: &Receiver, n: usize) {
    let (st, v) = w
        .post("/api/alerts/channels/hook/test?wait=0", json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let hits = wait_hits(r, "/hook/chanpath-5ecr4", n, Duration::from_secs(20)).await;
    let last = hits.last().expect("hit");
    assert_eq!(
        last.headers.get("x-team").map(String::as_str),
        Some("header-5ecr6")
    );
    assert!(
        last.headers.contains_key("x-warden-signature"),
        "signed with the opened HMAC key"
    );
}

/// `warden serve` on `data` must fail to start; returns its stderr.
fn serve_fails(data: &Path) -> String {
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let status = wait_child(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(!status.success(), "serve started with the wrong key: {err}");
    err
}

#[tokio::test]
async fn secrets_are_sealed_in_the_database_and_survive_a_key_rotation() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut w = Warden::start_in(&data, "").await;

    let mut spec = sh("p", "echo \"$GAME_API_TOKEN\" > token.txt; sleep 600");
    spec["cwd"] = json!(out);
    spec["env"] = json!({"GAME_API_TOKEN": "envtok-5ecr1", "LANG": "C"});
    spec["game"] = json!({"rcon": {"port": free_tcp_port(), "password": "rconpw-5ecr2"}});
    spec["hooks"] =
        json!([{"on": ["crashed"], "url": r.url("/hook/p"), "secret": "hookkey-5ecr3"}]);
    w.create(spec).await;
    for body in [
        json!({"name": "hook", "target": {"kind": "webhook", "url": r.url("/hook/chanpath-5ecr4"),
               "secret": "hmackey-5ecr5", "headers": {"X-Team": "header-5ecr6"}}}),
        json!({"name": "tg", "target": {"kind": "telegram", "bot_token": "bottok-5ecr7",
               "chat_id": "42", "api_url": r.base}}),
        json!({"name": "nt", "target": {"kind": "ntfy", "server": r.base,
               "topic": "ntfytopic-5ecr8", "token": "ntfytok-5ecr9"}}),
    ] {
        let (st, v) = w.post("/api/alerts/channels", body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (st, v) = w
        .post(
            "/api/schedules",
            json!({"name": "ping", "trigger": "0 4 * * *",
                   "tasks": [{"action": {"kind": "http", "url": r.url("/task/taskpath-5ecr10"),
                              "headers": {"Authorization": "Bearer taskhdr-5ecr11"}}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    program_gets_its_env_secret(&w, &out).await;
    channel_delivers(&w, &r, 1).await;
    let found = secrets_in_db(&data);
    assert!(found.is_empty(), "plain secrets while running: {found:?}");
    w.terminate();
    let found = secrets_in_db(&data);
    assert!(found.is_empty(), "plain secrets after stop: {found:?}");

    // Rotation: a new key, the old one no longer opens the database.
    let key = data.join("secrets.key");
    let old_key = std::fs::read_to_string(&key).expect("key file");
    let (st, so, se) = cli(&data, &["secrets", "rotate"], None);
    assert!(st.success(), "{so}{se}");
    assert!(
        so.contains("resealed the secrets of 5 definition(s)"),
        "{so}"
    );
    let new_key = std::fs::read_to_string(&key).expect("key file");
    assert_ne!(old_key, new_key);
    assert!(!data.join("secrets.key.new").exists());
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::write(&key, &old_key).expect("old key back");
    let err = serve_fails(&data);
    assert!(err.contains("cannot decrypt"), "{err}");
    std::fs::write(&key, &new_key).expect("new key back");

    let w = Warden::start_in(&data, "").await;
    program_gets_its_env_secret(&w, &out).await;
    channel_delivers(&w, &r, 2).await;
    let (_, shown) = w.get("/api/programs/p").await;
    assert_eq!(shown["env"]["GAME_API_TOKEN"], "********", "{shown}");
    let found = secrets_in_db(&data);
    assert!(found.is_empty(), "plain secrets after rotation: {found:?}");
}

#[tokio::test]
async fn plain_secrets_of_an_older_warden_are_sealed_at_the_next_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut w = Warden::start_in(&data, "").await;
    w.terminate();
    // Rows as a warden before sealing wrote them: plain JSON.
    {
        let db = rusqlite::Connection::open(data.join("warden.db")).expect("open db");
        let mut spec = sh("p", "echo \"$GAME_API_TOKEN\" > token.txt; sleep 600");
        spec["cwd"] = json!(out);
        spec["env"] = json!({"GAME_API_TOKEN": "envtok-5ecr1"});
        db.execute(
            "INSERT INTO programs(name, spec, created_at, updated_at) VALUES ('p', ?1, 0, 0)",
            [spec.to_string()],
        )
        .expect("old program row");
        let channel = json!({"name": "hook", "target": {"kind": "webhook",
            "url": "http://127.0.0.1:9/hook/chanpath-5ecr4", "secret": "hmackey-5ecr5"}});
        db.execute(
            "INSERT INTO alert_channels(name, spec, created_at, updated_at) VALUES ('hook', ?1, 0, 0)",
            [channel.to_string()],
        )
        .expect("old channel row");
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
    }
    assert!(!secrets_in_db(&data).is_empty(), "the old rows are plain");

    let mut w = Warden::start_in(&data, "").await;
    program_gets_its_env_secret(&w, &out).await;
    let (st, v) = w.get("/api/alerts/channels/hook").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    w.terminate();
    let found = secrets_in_db(&data);
    assert!(found.is_empty(), "still plain after the start: {found:?}");
    let db = rusqlite::Connection::open(data.join("warden.db")).expect("open db");
    let spec: String = db
        .query_row("SELECT spec FROM programs WHERE name = 'p'", [], |r| {
            r.get(0)
        })
        .expect("row");
    assert!(spec.contains("sealed1:"), "{spec}");
}

/// The uid and gid of a user from the system's database (`id`).
fn ids_of(user: &str) -> (String, String) {
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (id("-u"), id("-g"))
}

/// The real uid and gid of a process (`/proc/PID/status`).
fn proc_ids(pid: u64) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    };
    (field("Uid:"), field("Gid:"))
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn programs_run_as_their_user_and_never_as_root_by_accident() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: running as another user needs the tests to run as root");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let w = Warden::start_strict(&tmp.path().join("data")).await;
    let (nobody_uid, nobody_gid) = ids_of("nobody");
    assert!(!nobody_uid.is_empty() && nobody_uid != "0");

    w.create(
        json!({"name": "confined", "command": "sleep", "args": ["600"],
                    "cwd": "/", "user": "nobody"}),
    )
    .await;
    let (st, v) = w.post("/api/programs/confined/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = w
        .wait_state("confined", "running", Duration::from_secs(20))
        .await;
    let pid = v["pid"].as_u64().expect("pid");
    assert_eq!(proc_ids(pid), (nobody_uid.clone(), nobody_gid));

    // Without a user, a warden running as root refuses, saying why.
    w.create(json!({"name": "rooty", "command": "sleep", "args": ["600"]}))
        .await;
    let _ = w.post("/api/programs/rooty/start", json!(null)).await;
    let v = w
        .wait_state("rooty", "fatal", Duration::from_secs(20))
        .await;
    assert_eq!(v["reason"]["cause"], "runs_as_root", "{v}");
    let msg = v["reason"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("allow_root") && msg.contains("user"), "{msg}");

    // allow_root = true says it is meant.
    let (st, v) = w
        .put(
            "/api/programs/rooty",
            json!({"name": "rooty", "command": "sleep", "args": ["600"], "allow_root": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = w.post("/api/programs/rooty/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = w
        .wait_state("rooty", "running", Duration::from_secs(20))
        .await;
    assert_eq!(proc_ids(v["pid"].as_u64().expect("pid")).0, "0");

    // A user that does not exist is a clear failure, not a silent root.
    w.create(json!({"name": "ghost", "command": "sleep", "args": ["600"],
                    "user": "no-such-user-w"}))
        .await;
    let _ = w.post("/api/programs/ghost/start", json!(null)).await;
    let v = w
        .wait_state("ghost", "fatal", Duration::from_secs(20))
        .await;
    assert_eq!(v["reason"]["cause"], "run_as", "{v}");
    assert!(
        v["reason"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no user \"no-such-user-w\"")),
        "{v}"
    );
}
