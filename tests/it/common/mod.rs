//! Shared fixture for integration tests: starts the real `warden` binary on an ephemeral
//! port with a temporary data directory, talks to it over real HTTP, and waits for
//! conditions with deadlines (never sleep-and-hope).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Path of the warden binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

/// Runs `warden ctl ARGS` against the warden at `url` with `token`: (success, stdout,
/// stderr).
pub fn ctl_at(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("ctl")
        .args(args)
        .env("WARDEN_URL", url)
        .env("WARDEN_TOKEN", token)
        .env_remove("WARDEN_FINGERPRINT")
        .output()
        .expect("run ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a local warden command (user/token/config…) against `data_dir`; returns stdout.
pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn warden cli");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("wait cli");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tests run as root (in CI and here) and start programs that name no user: the
/// config says that is intended. `run_as` tests leave it out.
pub const ROOT_OK: &str = "allow_root_programs = true\n";

/// Creates an API token with `role` through the CLI.
pub fn make_token(data_dir: &Path, role: &str) -> String {
    let (st, out, err) = cli(
        data_dir,
        &["token", "create", &format!("t-{role}"), "--role", role],
        None,
    );
    assert!(st.success(), "token create failed: {err}");
    out.trim().to_string()
}

/// A running warden.
pub struct Warden {
    /// The server process.
    pub child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// An admin token.
    pub token: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Keeps the temp dir alive when the fixture made it.
    _tmp: Option<tempfile::TempDir>,
}

impl Warden {
    /// Starts warden in a fresh temp data dir with default config.
    pub async fn start() -> Warden {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut w = Warden::start_in(&dir, "").await;
        w._tmp = Some(tmp);
        w
    }

    /// Starts warden on an existing data dir with extra TOML config (may be empty).
    pub async fn start_in(data_dir: &Path, extra_config: &str) -> Warden {
        let config = format!("log_level = \"warn\"\n{ROOT_OK}{extra_config}");
        Warden::launch(data_dir, &config, Stdio::inherit()).await
    }

    /// Starts warden on an existing data dir without `allow_root_programs`: programs that
    /// name no user are refused when the tests run as root.
    #[allow(dead_code)] // only the run-as tests need it
    pub async fn start_strict(data_dir: &Path) -> Warden {
        Warden::launch(data_dir, "log_level = \"warn\"\n", Stdio::inherit()).await
    }

    /// Starts warden on an existing data dir at a given address, e.g. again at the
    /// address a killed warden had, so that whoever knew it finds it there.
    #[allow(dead_code)] // not every test binary restarts a warden in place
    pub async fn start_at(data_dir: &Path, extra_config: &str, listen: &str) -> Warden {
        let config = format!("log_level = \"warn\"\n{ROOT_OK}{extra_config}");
        Warden::launch_on(data_dir, &config, Stdio::inherit(), listen).await
    }

    /// Writes `config`, creates an admin token, spawns `warden serve` on port 0 with its
    /// stderr sent to `stderr`, reads the bound address and waits until it is healthy.
    async fn launch(data_dir: &Path, config: &str, stderr: Stdio) -> Warden {
        Warden::launch_on(data_dir, config, stderr, "127.0.0.1:0").await
    }

    async fn launch_on(data_dir: &Path, config: &str, stderr: Stdio, listen: &str) -> Warden {
        Warden::launch_with(data_dir, config, stderr, listen, &[]).await
    }

    /// `warden serve --demo`, as the README's first command runs it.
    #[allow(dead_code)] // not every test binary runs the demo
    pub async fn start_demo(data_dir: &Path) -> Warden {
        let config = &format!("log_level = \"warn\"\n{ROOT_OK}");
        Warden::launch_with(
            data_dir,
            config,
            Stdio::inherit(),
            "127.0.0.1:0",
            &["--demo"],
        )
        .await
    }

    async fn launch_with(
        data_dir: &Path,
        config: &str,
        stderr: Stdio,
        listen: &str,
        extra_args: &[&str],
    ) -> Warden {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let token = make_token(data_dir, "admin");
        let config_path = data_dir.join("test-config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(bin())
            .args(["serve", "--listen", listen, "--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn warden serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("warden printed its address within 30 s");
        let url = first
            .strip_prefix("warden listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .trim()
            .to_string();
        let w = Warden {
            child,
            data_dir: data_dir.to_path_buf(),
            token,
            // warden's own HTTPS in tests has a self-signed certificate; the TLS tests
            // check the certificate with clients of their own.
            http: if url.starts_with("https://") {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .expect("https client")
            } else {
                http_client()
            },
            url,
            _tmp: None,
        };
        w.wait_healthy().await;
        w
    }

    /// Waits until `/health` answers 200.
    pub async fn wait_healthy(&self) {
        wait_until(Duration::from_secs(20), "warden healthy", || async {
            match self.http.get(format!("{}/health", self.url)).send().await {
                Ok(r) if r.status() == StatusCode::OK => Some(()),
                _ => None,
            }
        })
        .await;
    }

    /// Sends a request with a bearer token; returns status and JSON (Null when empty).
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    /// GET as admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::GET, path, None)
            .await
    }

    /// POST as admin.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::POST, path, Some(body))
            .await
    }

    /// Creates a program as admin; panics unless 201.
    pub async fn create(&self, spec: Value) -> Value {
        let (st, v) = self.post("/api/programs", spec).await;
        assert_eq!(st, StatusCode::CREATED, "create failed: {v}");
        v
    }

    /// Current view of a program.
    pub async fn program(&self, name: &str) -> Value {
        let (st, v) = self.get(&format!("/api/programs/{name}")).await;
        assert_eq!(st, StatusCode::OK, "get {name}: {v}");
        v
    }

    /// Waits until `pred` holds for the program view.
    pub async fn wait_program(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.program(name).await;
            if pred(&v) {
                return v;
            }
            if Instant::now() >= deadline {
                // Say what the program did, so a failure can be understood from the log.
                let console = self.console(name).await;
                let tail = &console[console.len().saturating_sub(20)..];
                let events: Vec<String> = self
                    .events(name)
                    .await
                    .iter()
                    .take(10)
                    .map(|e| format!("{} {}", e["kind"], e["message"]))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\nprogram: {v}\nlast events (newest first): {events:#?}\nlast console lines: {tail:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the program is in `state`.
    pub async fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Value {
        self.wait_program(name, timeout, &format!("{name} {state}"), |v| {
            v["state"] == state
        })
        .await
    }

    /// Events of a program, newest first.
    pub async fn events(&self, name: &str) -> Vec<Value> {
        let (_, v) = self
            .get(&format!("/api/programs/{name}/events?limit=500"))
            .await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// Console lines (text only) of a program.
    pub async fn console(&self, name: &str) -> Vec<String> {
        let (_, v) = self
            .get(&format!("/api/programs/{name}/console?lines=10000"))
            .await;
        v["lines"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| l["text"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for exit (unix).
    #[cfg(unix)]
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        wait_child(&mut self.child, Duration::from_secs(60))
    }

    /// Kills warden with SIGKILL (an unclean exit) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            #[cfg(unix)]
            {
                let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a child process to exit, with a deadline.
pub fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A program spec running `sh -c SCRIPT`.
pub fn sh(name: &str, script: &str) -> Value {
    json!({ "name": name, "command": "sh", "args": ["-c", script] })
}

/// True if a process with this pid exists and is not a zombie (Linux).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Ports handed out to programs under test come from below Linux's ephemeral range
/// (32768-60999): a port from `bind(0)` could be taken again in the meantime by any
/// outgoing connection or listener of a parallel test, and a demo game that cannot bind
/// its port never becomes ready. One counter per test binary keeps them distinct; the
/// process id spreads binaries that run at the same time.
const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

fn next_fixed_port(free: impl Fn(u16) -> bool) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = FIXED_PORTS.end - FIXED_PORTS.start;
    let base = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIXED_PORTS.start + (base.wrapping_add(n) % span);
        if free(port) {
            return port;
        }
    }
    panic!("no free port in {FIXED_PORTS:?}");
}

/// A TCP port on 127.0.0.1 that is free and not handed out before (for programs that need
/// a fixed port in their spec, and for "nobody listens here" checks).
pub fn free_tcp_port() -> u16 {
    next_fixed_port(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A UDP port on 127.0.0.1 that is free and not handed out before.
pub fn free_udp_port() -> u16 {
    next_fixed_port(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// Starts warden in a fresh temp dir at `log_level`, with its own log (stderr) going to
/// the returned file, for tests that inspect what warden logs.
pub async fn start_logged(log_level: &str) -> (Warden, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("warden-stderr.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let config = format!("log_level = \"{log_level}\"\n{ROOT_OK}");
    let mut w = Warden::launch(tmp.path(), &config, Stdio::from(stderr)).await;
    w._tmp = Some(tmp);
    (w, log)
}

/// An HTTP double on a free local port: `routes` is given its base URL
/// (`http://127.0.0.1:PORT`, for documents that link to themselves) and returns the router
/// to serve until the test ends. Returns the base URL.
pub async fn http_double(routes: impl FnOnce(&str) -> axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = routes(&base);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// An HTTP client for tests. warden enables reqwest's rustls without a default crypto
/// provider, so every client needs one installed first (ring, as warden itself does).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No kept-alive connections between requests: a request sent on a connection the
    // server closes for idleness at that very moment fails with "connection closed
    // before message completed", which some tests (short idle timeouts, long pauses
    // under load) would otherwise hit by chance. Browsers retry such requests; tests
    // should not depend on it.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

impl Warden {
    /// PUT as admin.
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::PUT, path, Some(body))
            .await
    }

    /// DELETE as admin.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::DELETE, path, None)
            .await
    }

    /// Every stored event (all programs and warden's own), oldest first.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let path = match before {
                Some(b) => format!("/api/events?limit=500&before={b}"),
                None => "/api/events?limit=500".to_string(),
            };
            let (_, v) = self.get(&path).await;
            out.extend(v["events"].as_array().cloned().unwrap_or_default());
            match v["next_before"].as_i64() {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        out.reverse();
        out
    }
}

/// Lines of a file (empty when it does not exist yet).
pub fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Wraps a server started some other way (e.g. `warden.exe` under Wine) in the fixture, so
/// the same helpers drive it: `url` is the address it printed, `token` an admin token.
/// Waits until it is healthy.
#[allow(dead_code)] // only the Wine stage (tests/wine) attaches to a server it started
pub async fn attach_warden(child: Child, url: String, data_dir: PathBuf, token: String) -> Warden {
    let w = Warden {
        child,
        url,
        data_dir,
        token,
        http: http_client(),
        _tmp: None,
    };
    w.wait_healthy().await;
    w
}
