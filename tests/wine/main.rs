//! The Windows stage: drives the real cross-built `warden.exe` under Wine from Linux —
//! serve and /health, the API with tokens, a program's whole lifecycle (console capture,
//! stdin input, stop, start, restart, crash → restart), stopping a process tree through
//! its job object, adoption after an unclean exit, Windows paths with drive letters,
//! spaces and backslashes, and the Windows service commands.
//!
//! Needs `WARDEN_WINE_EXE`: the path of `warden.exe` with the test-only
//! `bcryptprimitives.dll` beside it (`.ci/windows` builds both and sets it). Optional:
//! `WARDEN_WINE` (the Wine loader, default `wine`) and `WINEPREFIX`. Without
//! `WARDEN_WINE_EXE` every test prints a loud SKIPPED line naming itself and returns.
//!
//! What Wine 8 cannot emulate is said by name at run time (`WINE LIMITATION (...)`) and
//! listed in README's Windows section; the test then checks what does happen instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
#![cfg(unix)]

#[path = "../it/common/mod.rs"]
#[allow(dead_code)] // the Wine stage uses a few of the shared helpers
mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How to run the Windows build.
struct Wine {
    /// Linux path of `warden.exe` (with `bcryptprimitives.dll` beside it).
    exe: PathBuf,
    /// The Wine loader.
    loader: String,
}

impl Wine {
    /// The Wine setup, or `None` after printing why this test is skipped.
    fn from_env(test: &str) -> Option<Wine> {
        let Some(exe) = std::env::var_os("WARDEN_WINE_EXE") else {
            loud(&format!(
                "SKIPPED wine::{test}: WARDEN_WINE_EXE is not set. \
                 This Windows test runs only in the Wine stage (.ci/windows)."
            ));
            return None;
        };
        Some(Wine {
            exe: PathBuf::from(exe),
            loader: std::env::var("WARDEN_WINE").unwrap_or_else(|_| "wine".into()),
        })
    }

    /// `wine warden.exe ARGS…` with Wine's own chatter off.
    fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(&self.loader);
        cmd.arg(exe).env("WINEDEBUG", "-all");
        cmd
    }

    /// Runs a short warden command to completion (60 s at most); returns (success,
    /// stdout, stderr). Output goes through files, not pipes: a wineserver started by
    /// this command would inherit the pipes and keep them open long after it ended.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let dir = tempfile::tempdir().expect("tmp");
        let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
        let mut child = self
            .command(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("out file"))
            .stderr(std::fs::File::create(&err_path).expect("err file"))
            .spawn()
            .expect("run wine");
        let status = wait_child(&mut child, Duration::from_secs(60));
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        (status.success(), read(&out_path), read(&err_path))
    }

    /// Creates an API token for `data_dir` (a Windows path).
    fn token(&self, data_dir: &str, role: &str) -> String {
        let (ok, out, err) = self.run(&[
            "token",
            "create",
            &format!("wine-{role}"),
            "--role",
            role,
            "--data-dir",
            data_dir,
        ]);
        assert!(ok, "token create failed: {err}");
        out.trim().to_string()
    }

    /// Starts `warden.exe serve` on a free port with `data_dir` and extra config.
    async fn serve(&self, data_dir: &Path, extra_config: &str) -> Warden {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let token = self.token(&win(data_dir), "admin");
        let config = data_dir.join("wine-config.toml");
        std::fs::write(&config, format!("log_level = \"warn\"\n{extra_config}")).expect("config");
        let mut child = self
            .command(&self.exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(win(&config))
            .arg("--data-dir")
            .arg(win(data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wine warden.exe serve");
        let url = first_line_url(&mut child);
        attach_warden(child, url, data_dir.to_path_buf(), token).await
    }
}

/// Reads the "warden listening on URL" line (Wine is slow to start: 60 s).
fn first_line_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("warden.exe printed its address within 60 s");
    first
        .trim()
        .strip_prefix("warden listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string()
}

/// The Windows path Wine gives a Linux path: drive Z: is `/`.
fn win(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// Copies warden.exe and its test DLL into `dir` (e.g. one with spaces in its name).
fn install_copy(wine: &Wine, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let src = wine.exe.parent().expect("exe dir");
    for f in ["warden.exe", "bcryptprimitives.dll"] {
        std::fs::copy(src.join(f), dir.join(f)).expect("copy");
    }
    dir.join("warden.exe")
}

fn wine_limitation(test: &str, what: &str) {
    loud(&format!("WINE LIMITATION ({test}): {what}"));
}

/// Writes to the real stderr, past the test harness's output capture, so the message is
/// seen even when the test passes.
fn loud(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!! {message} !!!!!\n");
}

/// True while something accepts TCP connections on 127.0.0.1:`port`.
fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Waits for the demo game's ports.json in `save_dir`; returns its RCON port.
async fn rcon_port(save_dir: &Path) -> u16 {
    let file = save_dir.join("ports.json");
    wait_until(Duration::from_secs(60), "ports.json", || async {
        let text = std::fs::read_to_string(&file).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["rcon"].as_u64().and_then(|p| u16::try_from(p).ok())
    })
    .await
}

async fn wait_console(w: &Warden, name: &str, needle: &str) {
    wait_until(
        Duration::from_secs(60),
        &format!("{name} console shows {needle:?}"),
        || async {
            w.console(name)
                .await
                .iter()
                .any(|l| l.contains(needle))
                .then_some(())
        },
    )
    .await;
}

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .rev()
        .filter_map(|e| e["data"]["to"].as_str().map(str::to_string))
        .collect()
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn wine_serve_api_and_graceful_shutdown() {
    let Some(wine) = Wine::from_env("wine_serve_api_and_graceful_shutdown") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = wine.serve(&tmp.path().join("data"), "").await;
    let (st, v) = w.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ok");
    let (st, v) = w.call_as(None, Method::GET, "/api/programs", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let viewer = wine.token(&win(&w.data_dir), "viewer");
    let (st, _) = w
        .call_as(Some(&viewer), Method::GET, "/api/programs", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let spec = json!({"name": "x", "command": "cmd.exe"});
    let (st, v) = w
        .call_as(Some(&viewer), Method::POST, "/api/programs", Some(spec))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Ctrl-C (Wine turns SIGINT into CTRL_C_EVENT) shuts warden down gracefully, stopping
    // its programs by their stop method first.
    let save = w.data_dir.join("shutdown");
    w.create(json!({
        "name": "running",
        "command": win(&wine.exe),
        "args": ["demo-game", "--startup-ms", "200", "--rcon-port", "0", "--save-dir", win(&save)],
        "autostart": true,
        "stop": {"stdin": "stop", "timeout_seconds": 20},
    }))
    .await;
    w.wait_state("running", "running", LONG).await;
    let port = rcon_port(&save).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(w.child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = wait_child(&mut w.child, LONG);
    assert!(status.success(), "warden.exe exited with {status}");
    assert!(!port_open(port), "the program was stopped with warden");
}

#[tokio::test]
async fn wine_program_lifecycle_console_and_windows_paths() {
    let test = "wine_program_lifecycle_console_and_windows_paths";
    let Some(wine) = Wine::from_env(test) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    // A program path and working directory with spaces, given as Windows paths.
    let exe = install_copy(&wine, &tmp.path().join("Program Files").join("demo game"));
    let cwd = tmp.path().join("game world");
    std::fs::create_dir_all(&cwd).expect("cwd");
    let w = wine.serve(&tmp.path().join("data"), "").await;
    w.create(json!({
        "name": "game",
        "command": win(&exe),
        "args": ["demo-game", "--save-dir", "save dir", "--rcon-port", "0", "--startup-ms", "200"],
        "cwd": win(&cwd),
        "start_seconds": 1,
        "restart": {"policy": "on-failure", "backoff_initial_ms": 200},
        "stop": {"stdin": "stop", "timeout_seconds": 20},
    }))
    .await;
    w.post("/api/programs/game/start", json!(null)).await;
    let v = w.wait_state("game", "running", LONG).await;
    let pid1 = v["pid"].as_u64().expect("pid");
    // Console capture, and the relative save dir resolved inside the spaced cwd.
    wait_console(&w, "game", "Done (").await;
    rcon_port(&cwd.join("save dir")).await;
    // Console input reaches the program's stdin.
    let (st, v) = w
        .post("/api/programs/game/console", json!({"line": "list"}))
        .await;
    assert!(st.is_success(), "{st} {v}");
    wait_console(&w, "game", "players online").await;
    // A graceful stop by the stdin line: exit code 0.
    w.post("/api/programs/game/stop", json!(null)).await;
    let v = w.wait_state("game", "stopped", LONG).await;
    assert_eq!(v["last_exit"]["code"], 0, "{v}");
    wait_console(&w, "game", "Stopping server").await;
    // Start again, then restart: a new process each time.
    w.post("/api/programs/game/start", json!(null)).await;
    let v = w.wait_state("game", "running", LONG).await;
    let pid2 = v["pid"].as_u64().expect("pid");
    assert_ne!(pid1, pid2);
    w.post("/api/programs/game/restart", json!(null)).await;
    let v = w
        .wait_program("game", LONG, "restarted", |v| {
            v["state"] == "running" && v["pid"].as_u64().is_some_and(|p| p != pid2)
        })
        .await;
    let pid3 = v["pid"].as_u64().expect("pid");
    // A crash (exit code 1) is restarted by the policy.
    w.post("/api/programs/game/console", json!({"line": "crash"}))
        .await;
    let v = w
        .wait_program("game", LONG, "restarted after the crash", |v| {
            v["state"] == "running" && v["restarts"] == 1
        })
        .await;
    assert_ne!(v["pid"].as_u64(), Some(pid3));
    assert_eq!(v["last_exit"]["code"], 1, "{v}");
    let tos = states(&w.events("game").await);
    assert!(tos.iter().any(|s| s == "crashed"), "{tos:?}");
    w.post("/api/programs/game/stop", json!(null)).await;
    w.wait_state("game", "stopped", LONG).await;
}

#[tokio::test]
async fn wine_many_silent_programs_leave_the_api_answering() {
    // Each running program has two output streams open for as long as it runs. Read the
    // way tokio reads an anonymous pipe on Windows, each held a thread of the blocking pool
    // (16) while the program was silent: eight programs filled it, and every store read,
    // so nearly all of the API, waited behind them until the request timed out.
    let test = "wine_many_silent_programs_leave_the_api_answering";
    let Some(wine) = Wine::from_env(test) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let w = wine.serve(&tmp.path().join("data"), "").await;
    const PROGRAMS: usize = 12;
    for i in 0..PROGRAMS {
        w.create(json!({
            "name": format!("quiet-{i}"),
            "command": "cmd.exe",
            "args": ["/c", "pause"],
            "autostart": true,
        }))
        .await;
    }
    // One more that speaks: its output still arrives line by line.
    w.create(json!({
        "name": "speaks",
        "command": "cmd.exe",
        "args": ["/c", "echo first line& echo second line& pause"],
        "autostart": true,
    }))
    .await;
    for i in 0..PROGRAMS {
        w.wait_state(&format!("quiet-{i}"), "running", LONG).await;
    }
    wait_console(&w, "speaks", "second line").await;
    // Store reads answer at once: the events of a program, and a new token's first use.
    let viewer = wine.token(&win(&w.data_dir), "viewer");
    let started = std::time::Instant::now();
    let (st, v) = w.get("/api/events?program=quiet-0&limit=5").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = w
        .call_as(Some(&viewer), Method::GET, "/api/programs", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["programs"].as_array().map(Vec::len), Some(PROGRAMS + 1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "store reads took {:?} with {PROGRAMS} silent programs",
        started.elapsed()
    );
    // A program's exit still ends its streams: stopping one ends its readers, and it
    // starts again with new ones.
    w.post("/api/programs/quiet-0/stop", json!(null)).await;
    w.wait_state("quiet-0", "stopped", LONG).await;
    w.post("/api/programs/quiet-0/start", json!(null)).await;
    w.wait_state("quiet-0", "running", LONG).await;
}

#[tokio::test]
async fn wine_stop_kills_the_whole_tree_through_the_job() {
    let test = "wine_stop_kills_the_whole_tree_through_the_job";
    let Some(wine) = Wine::from_env(test) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let save = tmp.path().join("tree");
    let w = wine.serve(&tmp.path().join("data"), "").await;
    // cmd.exe is the program; the game it starts is a grandchild, inside the same job.
    // The game ignores the graceful console event, so only the job kill can stop it.
    // (No spaces in these paths: cmd.exe parses its own command line, and std's quoting is
    // not cmd's.)
    let (exe, save_dir) = (win(&wine.exe), win(&save));
    assert!(
        !exe.contains(' ') && !save_dir.contains(' '),
        "{exe} {save_dir}"
    );
    w.create(json!({
        "name": "tree",
        "command": "cmd.exe",
        "args": ["/c", exe, "demo-game", "--ignore-sigterm", "--startup-ms", "200",
                 "--rcon-port", "0", "--save-dir", save_dir],
        "stop": {"signal": "SIGTERM", "timeout_seconds": 3},
    }))
    .await;
    w.post("/api/programs/tree/start", json!(null)).await;
    w.wait_state("tree", "running", LONG).await;
    let port = rcon_port(&save).await;
    assert!(port_open(port), "the grandchild game listens");
    w.post("/api/programs/tree/stop", json!(null)).await;
    let v = w.wait_state("tree", "stopped", LONG).await;
    wine_limitation(
        test,
        "Wine 8 cannot deliver CTRL_BREAK_EVENT (GenerateConsoleCtrlEvent fails), so the \
         graceful console-event step is not exercised; checked instead: the stop timeout \
         ends in terminating the job, grandchildren included",
    );
    let exit = v["last_exit"]["description"].as_str().unwrap_or_default();
    assert!(exit.contains("terminated by warden"), "{v}");
    wait_until(
        Duration::from_secs(20),
        "the grandchild is gone",
        || async { (!port_open(port)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn wine_adopts_a_program_after_an_unclean_exit() {
    let test = "wine_adopts_a_program_after_an_unclean_exit";
    let Some(wine) = Wine::from_env(test) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let save = tmp.path().join("adopted");
    let mut w = wine.serve(&data, "").await;
    w.create(json!({
        "name": "kept",
        "command": win(&wine.exe),
        "args": ["demo-game", "--startup-ms", "200", "--rcon-port", "0", "--save-dir", win(&save)],
        "autostart": true,
        "stop": {"stdin": "stop", "timeout_seconds": 3},
    }))
    .await;
    let v = w.wait_state("kept", "running", LONG).await;
    let pid = v["pid"].as_u64().expect("pid");
    let port = rcon_port(&save).await;
    // An unclean exit: the Wine process of warden is killed outright.
    w.kill9();
    drop(w);
    assert!(port_open(port), "the program outlived warden");
    let w = wine.serve(&data, "").await;
    let v = w.wait_state("kept", "running", LONG).await;
    assert_eq!(v["adopted"], true, "{v}");
    assert_eq!(
        v["pid"].as_u64(),
        Some(pid),
        "same process, not a second copy"
    );
    // Stopping it: its console input is not connected any more, and Wine cannot send
    // console events, so the timeout ends in terminating the job reopened by name.
    w.post("/api/programs/kept/stop", json!(null)).await;
    let v = w.wait_state("kept", "stopped", LONG).await;
    wine_limitation(
        test,
        "an adopted program's graceful stop (CTRL_BREAK) cannot be delivered under Wine 8; \
         checked instead: its job, reopened by name, is terminated after the timeout",
    );
    assert_eq!(v["adopted"], false, "{v}");
    wait_until(
        Duration::from_secs(20),
        "the adopted program is gone",
        || async { (!port_open(port)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn wine_service_install_start_stop_uninstall() {
    let Some(wine) = Wine::from_env("wine_service_install_start_stop_uninstall") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_tcp_port();
    let config = tmp.path().join("service.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{port}\"\n")).expect("config");
    let data = tmp.path().join("service data");
    let cfg = win(&config);
    let dir = win(&data);
    // A leftover from an interrupted run would make install fail.
    let _ = wine.run(&["service", "uninstall"]);
    let (ok, out, err) = wine.run(&["service", "install", "--config", &cfg, "--data-dir", &dir]);
    assert!(ok, "install: {out}{err}");
    assert!(out.contains(&dir), "{out}");
    let (ok, out, err) = wine.run(&["service", "start"]);
    assert!(ok, "start: {out}{err}");
    let http = http_client();
    let url = format!("http://127.0.0.1:{port}");
    wait_until(LONG, "the service answers /health", || async {
        let r = http.get(format!("{url}/health")).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    let token = wine.token(&dir, "admin");
    let r = http
        .get(format!("{url}/api/programs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let (ok, out, err) = wine.run(&["service", "stop", "--config", &cfg]);
    assert!(ok, "stop: {out}{err}");
    assert!(
        http.get(format!("{url}/health")).send().await.is_err(),
        "the service still answers after stop"
    );
    let logs: Vec<_> = std::fs::read_dir(data.join("warden-logs"))
        .expect("service log dir")
        .filter_map(Result::ok)
        .collect();
    let log = std::fs::read_to_string(logs.first().expect("a log file").path()).expect("log");
    assert!(log.contains("starting as a service"), "{log}");
    assert!(log.contains("shutdown complete"), "{log}");
    let (ok, out, err) = wine.run(&["service", "uninstall"]);
    assert!(ok, "uninstall: {out}{err}");
    let (ok, _, err) = wine.run(&["service", "start"]);
    assert!(!ok && err.contains("not installed"), "{err}");
}
