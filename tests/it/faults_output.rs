//! Faults of warden's own output and storage (issue 14): broken stdout/stderr pipes, log
//! output on a full file system, `/dev/full`, and the data directory on a full file
//! system. Each test drives the real binary and fails if its guarantee breaks: answers
//! keep coming, programs keep being supervised, signals still stop programs and warden
//! exits 0, the log is not flooded, and writes resume without a restart.
//!
//! The full-file-system tests mount small tmpfs file systems, which needs root. In CI
//! (`CI=true`) a refused mount fails the test; elsewhere the test is skipped with a loud
//! message.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// A tmpfs mounted for one test; unmounted (lazily) when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `64k`), or explains why not: a failure in CI, a
    /// loud skip elsewhere (returns `None`).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    path: dir.path().to_path_buf(),
                    _dir: dir,
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        let msg = format!("cannot mount a tmpfs ({why}); this fault test needs root and mount(8)");
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
        None
    }

    /// Fills the file system: a filler file grows until the disk refuses more.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Starts `warden serve` on a known port (its stdout may be unreadable, so the address
/// line cannot be relied on) with the given stdout and stderr; waits until it answers.
async fn launch(
    data_dir: &Path,
    config: &str,
    stdout: Stdio,
    stderr: Stdio,
    env: &[(&str, &str)],
) -> Warden {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let token = make_token(data_dir, "admin");
    let config_path = data_dir.join("test-config.toml");
    std::fs::write(&config_path, format!("{ROOT_OK}{config}")).expect("config");
    let port = free_tcp_port();
    let child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn warden");
    attach_warden(
        child,
        format!("http://127.0.0.1:{port}"),
        data_dir.to_path_buf(),
        token,
    )
    .await
}

/// Sends `signal` to warden, waits for its exit, and returns the exit code.
fn signal_and_wait(child: &mut Child, signal: nix::sys::signal::Signal) -> Option<i32> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("signal warden");
    wait_child(child, Duration::from_secs(60)).code()
}

/// A failed login must still be answered (it logs a warning): 401, or 429 once the
/// login rate limit is reached.
async fn failed_login_gets_401(w: &Warden) {
    let (st, _) = w
        .call_as(
            None,
            reqwest::Method::POST,
            "/api/auth/login",
            Some(json!({"username": "nobody", "password": "wrong-password"})),
        )
        .await;
    assert!(
        st == StatusCode::UNAUTHORIZED || st == StatusCode::TOO_MANY_REQUESTS,
        "a failed login gets its answer, not {st}"
    );
}

/// Starts a long-running program and returns its pid.
async fn running_sleeper(w: &Warden, name: &str) -> u32 {
    w.create(sh(name, "echo up; exec sleep 1000")).await;
    let (st, v) = w
        .post(&format!("/api/programs/{name}/start"), json!(null))
        .await;
    assert!(st.is_success(), "start {name}: {v}");
    let v = w.wait_state(name, "running", Duration::from_secs(20)).await;
    v["pid"].as_u64().expect("pid") as u32
}

async fn metric(w: &Warden, name: &str) -> f64 {
    let resp = w
        .http
        .get(format!("{}/metrics", w.url))
        .bearer_auth(&w.token)
        .send()
        .await
        .expect("metrics");
    let text = resp.text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

async fn health(w: &Warden) -> (StatusCode, Value) {
    w.call_as(None, reqwest::Method::GET, "/health", None).await
}

/// warden in `dir` with `part` made to panic once (debug builds honour
/// `WARDEN_FAULT_PANIC`, see `injected_fault`).
async fn launch_failing(dir: &Path, part: &str) -> Warden {
    launch(
        dir,
        "log_level = \"warn\"\n",
        Stdio::null(),
        Stdio::null(),
        &[("WARDEN_FAULT_PANIC", part)],
    )
    .await
}

/// Waits until `/health` is 200 again with `part` back up after one restart, and checks
/// that the failure on record is the injected one.
async fn rebuilt(w: &Warden, part: &str) {
    let p = wait_until(Duration::from_secs(20), part, || async {
        let (st, v) = health(w).await;
        let parts = v["components"]["parts"].as_array()?.clone();
        let p = parts.into_iter().find(|p| p["name"] == part)?;
        (st == StatusCode::OK && p["status"] == "ok" && p["restarts"] == 1).then_some(p)
    })
    .await;
    assert!(
        p["last_failure"]
            .as_str()
            .unwrap_or("")
            .contains("injected fault"),
        "{p}"
    );
}

#[tokio::test]
async fn broken_stdout_and_stderr_pipes_neither_stop_answers_nor_ctrl_c() {
    // `warden serve 2>&1 | tee out.log`, then the reader goes away.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let writer2 = writer.try_clone().expect("clone pipe");
    // Debug level: warden logs on every request and state change.
    let mut w = launch(
        tmp.path(),
        "log_level = \"debug\"\n",
        Stdio::from(writer),
        Stdio::from(writer2),
        &[],
    )
    .await;
    let pid = running_sleeper(&w, "game").await;
    drop(reader);
    // Plenty of lines now hit the broken pipe.
    for _ in 0..20 {
        failed_login_gets_401(&w).await;
    }
    let (st, v) = health(&w).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["components"]["log"]["lines_dropped"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    assert!(metric(&w, "warden_log_lines_dropped_total").await > 0.0);
    // Ctrl-C: programs are stopped and warden exits cleanly.
    let code = signal_and_wait(&mut w.child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(
        code,
        Some(0),
        "warden exits 0 after Ctrl-C with its output gone"
    );
    assert!(!alive(pid), "the program was stopped, not orphaned");
}

#[tokio::test]
async fn stdout_and_stderr_on_dev_full_start_serve_and_stop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let full = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        )
    };
    let mut w = launch(tmp.path(), "log_level = \"debug\"\n", full(), full(), &[]).await;
    let pid = running_sleeper(&w, "game").await;
    failed_login_gets_401(&w).await;
    let code = signal_and_wait(&mut w.child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        code,
        Some(0),
        "warden exits 0 with stdout and stderr on /dev/full"
    );
    assert!(!alive(pid), "the program was stopped");
}

#[tokio::test]
async fn log_output_on_a_full_file_system_is_dropped_counted_and_announced() {
    let Some(fs) = Tmpfs::mount("64k") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = fs.path.join("warden.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("clone");
    let mut w = launch(
        tmp.path(),
        "log_level = \"debug\"\n",
        Stdio::from(out),
        Stdio::from(err),
        &[],
    )
    .await;
    let filler = fs.fill();
    let pid = running_sleeper(&w, "game").await;
    for _ in 0..20 {
        failed_login_gets_401(&w).await;
    }
    let dropped = metric(&w, "warden_log_lines_dropped_total").await;
    assert!(dropped > 0.0, "lines that could not be written are counted");
    // Space again: one notice says what was lost.
    std::fs::remove_file(&filler).expect("free space");
    wait_until(
        Duration::from_secs(20),
        "the notice of dropped lines",
        || async {
            failed_login_gets_401(&w).await;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("log line(s) were dropped").then_some(())
        },
    )
    .await;
    let code = signal_and_wait(&mut w.child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0));
    assert!(!alive(pid), "the program was stopped");
}

/// How many bytes warden's own log grew while `f` ran.
fn grew(log: &Path, before: u64) -> u64 {
    std::fs::metadata(log)
        .map(|m| m.len())
        .unwrap_or(0)
        .saturating_sub(before)
}

#[tokio::test]
async fn a_full_data_directory_is_a_state_not_a_flood() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let data = fs.path.join("data");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("warden.log");
    let stderr = std::fs::File::create(&log).expect("log");
    let mut w = launch(
        &data,
        "log_level = \"info\"\n",
        Stdio::null(),
        Stdio::from(stderr),
        &[],
    )
    .await;
    // A program that crashes every ~0.3 s, and one that prints 2,000 lines a second.
    let mut crasher = sh("crasher", "echo starting; sleep 0.3; exit 3");
    crasher["restart"] = json!({"backoff_initial_ms": 10, "backoff_max_ms": 50, "max_failed_starts": 1000000, "window_seconds": 1});
    w.create(crasher).await;
    w.post("/api/programs/crasher/start", json!(null)).await;
    let chatty_pid = {
        w.create(sh(
            "chatty",
            "while true; do i=0; while [ $i -lt 100 ]; do echo line $i of a chatty program; i=$((i+1)); done; sleep 0.05; done",
        ))
        .await;
        w.post("/api/programs/chatty/start", json!(null)).await;
        let v = w
            .wait_state("chatty", "running", Duration::from_secs(20))
            .await;
        v["pid"].as_u64().expect("pid") as u32
    };
    let big = "x".repeat(200_000);
    let (st, v) = health(&w).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    eprintln!("/health before the fault: {v}");

    // Fill the data directory's file system; then writes fail sooner or later (SQLite may
    // still have room in its WAL for a few).
    let filler = fs.fill();
    let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let full_at = Instant::now();
    let mut n = 0;
    let refused = wait_until(
        Duration::from_secs(60),
        "an API write refused with 507",
        || {
            n += 1;
            let name = format!("filler{n}");
            let big = big.clone();
            let w = &w;
            async move {
                let mut spec = sh(&name, "exit 0");
                spec["env"] = json!({ "BIG": big });
                let (st, v) = w.post("/api/programs", spec).await;
                match st {
                    StatusCode::CREATED => None,
                    StatusCode::INSUFFICIENT_STORAGE => Some(v),
                    other => panic!("a write on a full disk answered {other}: {v}"),
                }
            }
        },
    )
    .await;
    assert_eq!(
        refused["error"]["code"], "insufficient_storage",
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&data.display().to_string()),
        "the message names the data directory: {message}"
    );
    // /health: degraded, not down; the store says why.
    let (st, v) = health(&w).await;
    eprintln!("/health with the data directory full: {v}");
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["components"]["store"]["disk_full"], true, "{v}");
    assert_eq!(v["components"]["store"]["status"], "failing", "{v}");
    // Supervision goes on: the crasher keeps being restarted while the disk is full.
    // Held full for a while (about 10 s, 30 crashes, 20,000 console lines) so that a
    // flood would show.
    let restarts = w.program("crasher").await["restarts"].as_u64().unwrap_or(0);
    w.wait_program(
        "crasher",
        Duration::from_secs(40),
        "restarts on a full disk",
        |v| v["restarts"].as_u64().unwrap_or(0) >= restarts + 30,
    )
    .await;
    // Events meanwhile cannot be stored: counted.
    let (_, v) = health(&w).await;
    assert!(
        v["components"]["store"]["writes_lost"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    // The log is not flooded: chatty's lines and crasher's events fail all the time,
    // warden's log says so a bounded number of times.
    let full_for = full_at.elapsed();
    let growth = grew(&log, log_before);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let console_reports = text.matches("console log cannot be written").count();
    eprintln!(
        "warden's log grew {growth} bytes in {full_for:?} with the data directory full ({console_reports} console-log reports)"
    );
    assert!(
        growth < 256 * 1024,
        "log flooded: {growth} bytes in {full_for:?}"
    );
    assert!(
        console_reports <= 2,
        "console failures reported once per program per minute: {console_reports}"
    );

    // Free the space: writes work again without a restart.
    std::fs::remove_file(&filler).expect("free space");
    let freed = Instant::now();
    let mut m = 0;
    wait_until(
        Duration::from_secs(30),
        "a write succeeds after space is freed",
        || {
            m += 1;
            let name = format!("after{m}");
            let w = &w;
            async move {
                let (st, _) = w.post("/api/programs", sh(&name, "exit 0")).await;
                (st == StatusCode::CREATED).then_some(())
            }
        },
    )
    .await;
    let recovered = freed.elapsed();
    eprintln!("writes work again {recovered:?} after space was freed");
    // The loss is an event once there is room to store it.
    let event = wait_until(
        Duration::from_secs(30),
        "the store_recovered event",
        || async {
            w.all_events()
                .await
                .into_iter()
                .find(|e| e["kind"] == "store_recovered")
        },
    )
    .await;
    eprintln!("loss event: {}", event["message"]);
    assert!(
        event["message"]
            .as_str()
            .unwrap_or("")
            .contains("could not be stored")
    );
    let (st, v) = wait_until(Duration::from_secs(30), "/health ok again", || async {
        let (st, v) = health(&w).await;
        (v["status"] == "ok").then_some((st, v))
    })
    .await;
    eprintln!("/health after space was freed: {v}");
    assert_eq!(st, StatusCode::OK);
    // Shutdown still stops everything, and the database is sound.
    let code = signal_and_wait(&mut w.child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0));
    assert!(!alive(chatty_pid), "chatty was stopped");
    let conn = rusqlite::Connection::open(data.join("warden.db")).expect("open db");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn a_part_that_dies_is_named_by_health_and_one_that_can_restart_does() {
    // The alert engine cannot be rebuilt (it owns its bus subscription): /health names it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = make_token(tmp.path(), "admin");
    let config = tmp.path().join("c.toml");
    std::fs::write(&config, format!("log_level = \"warn\"\n{ROOT_OK}")).expect("config");
    let port = free_tcp_port();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path())
        .env("WARDEN_FAULT_PANIC", "alert-engine")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let http = http_client();
    let url = format!("http://127.0.0.1:{port}/health");
    let v: Value = wait_until(
        Duration::from_secs(30),
        "/health 503 naming the alert engine",
        || async {
            let r = http.get(&url).send().await.ok()?;
            if r.status() != StatusCode::SERVICE_UNAVAILABLE {
                return None;
            }
            let v: Value = r.json().await.ok()?;
            v["problems"]
                .to_string()
                .contains("alert-engine")
                .then_some(v)
        },
    )
    .await;
    eprintln!("/health with a part down: {v}");
    assert_eq!(v["status"], "failing");
    let _ = token;
    let code = signal_and_wait(&mut child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0));

    // The event pruner can: it is restarted and /health is 200 again, with the failure
    // on record.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = launch_failing(tmp.path(), "event-pruner").await;
    rebuilt(&w, "event-pruner").await;
    let code = signal_and_wait(&mut w.child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0));
}

/// A game monitor that panics is rebuilt by itself (nothing polls the monitors) and does
/// its work again: `/health` shows the failure and the restart, and readiness on the
/// `Done (` line still moves the program to running, long before the 120 s fallback that
/// applies when no monitor follows the program.
#[tokio::test]
async fn a_panicking_game_monitor_is_rebuilt_and_still_sees_readiness() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = launch_failing(tmp.path(), "game monitor mc").await;
    let world = w.data_dir.join("world");
    // The monitor starts with the program, and panics at once (debug builds only, see
    // `injected_fault`).
    w.create(json!({
        "name": "mc",
        "command": bin(),
        "args": ["demo-game", "--startup-ms", "500", "--save-dir", world],
        "start_seconds": 120,
        "stop": {"stdin": "stop", "timeout_seconds": 20},
        "game": {"profile": "minecraft"},
    }))
    .await;
    rebuilt(&w, "game monitor mc").await;
    let (st, v) = w.post("/api/programs/mc/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("mc", "running", Duration::from_secs(30)).await;
    let ready = wait_until(Duration::from_secs(20), "the running event", || async {
        w.events("mc")
            .await
            .into_iter()
            .find(|e| e["data"]["to"] == "running")
    })
    .await;
    let reason = ready["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("ready: console line"), "{reason}");
}

/// A program's actor that panics is rebuilt: the running child is taken over (same pid,
/// never a second copy), `/health` names the part until it is back, both moments are
/// events, and supervision works again: a kill -9 of the child is restarted.
#[tokio::test]
async fn a_panicking_program_actor_is_rebuilt_and_keeps_supervising() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = launch_failing(tmp.path(), "program sleeper").await;
    let pid = running_sleeper(&w, "sleeper").await;
    // A console line makes the actor panic (debug builds only, see `injected_fault`).
    let (st, v) = w
        .post("/api/programs/sleeper/console", json!({ "line": "hello" }))
        .await;
    assert!(!st.is_success(), "the line dies with the actor: {st} {v}");
    let (st, v) = wait_until(
        Duration::from_secs(10),
        "/health naming the actor",
        || async {
            let (st, v) = health(&w).await;
            v["problems"]
                .to_string()
                .contains("program sleeper")
                .then_some((st, v))
        },
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    rebuilt(&w, "program sleeper").await;
    // The same child, taken over; no second copy was started.
    let v = w
        .wait_state("sleeper", "running", Duration::from_secs(10))
        .await;
    assert_eq!(v["pid"].as_u64(), Some(u64::from(pid)), "{v}");
    let events = w.events("sleeper").await;
    for kind in ["supervision_interrupted", "supervision_resumed"] {
        assert!(
            events.iter().any(|e| e["kind"] == kind),
            "{kind} in {events:?}"
        );
    }
    let starts = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["message"].to_string().contains("-> starting"))
        .count();
    assert_eq!(starts, 1, "started once only: {events:?}");
    // Supervision works: the child killed is noticed and replaced.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the child");
    let v = w
        .wait_program("sleeper", Duration::from_secs(20), "a new child", |v| {
            v["state"] == "running" && v["pid"].as_u64().is_some_and(|p| p != u64::from(pid))
        })
        .await;
    assert!(alive(v["pid"].as_u64().expect("pid") as u32), "{v}");
    // And console input works again with the rebuilt actor.
    let (st, v) = w
        .post("/api/programs/sleeper/console", json!({ "line": "again" }))
        .await;
    assert!(st.is_success(), "{st} {v}");
}
