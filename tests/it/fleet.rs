//! Many machines: `warden fleet add|list|remove` (tokens never shown, plain HTTP to a
//! remote host refused), the hub's Prometheus service discovery, a real Prometheus
//! scraping a hub and two nodes through it with the shipped rules loaded, and the rules
//! checked and unit-tested by `promtool`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// A token-like secret that must never appear in any output.
const SECRET: &str = "wdn_abcdefgh_0123456789SECRETsecret";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Finds a Prometheus tool; the test fails (never skips) when it is missing.
fn tool(name: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("run sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !path.is_empty(),
        "`{name}` is not installed: install the Debian package `prometheus` (scripts/test does)"
    );
    PathBuf::from(path)
}

fn fleet(dir: &Path, args: &[&str], token: Option<&str>) -> (bool, String, String) {
    let mut all = vec!["fleet"];
    all.extend_from_slice(args);
    let (st, out, err) = cli(dir, &all, Some(token.unwrap_or("")));
    (st.success(), out, err)
}

#[tokio::test]
async fn fleet_cli_adds_lists_removes_and_never_shows_tokens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (ok, out, err) = fleet(dir, &["add", "box2", "http://127.0.0.1:9181"], Some(SECRET));
    assert!(ok, "add failed: {out}{err}");
    assert!(
        out.contains("node 'box2' added at http://127.0.0.1:9181/"),
        "{out}"
    );

    // Plain HTTP to a host that is not loopback: refused, saying why and how to allow it.
    let (ok, out, err) = fleet(dir, &["add", "far", "http://10.9.8.7:9180"], Some(SECRET));
    assert!(!ok, "plain http to a remote host was accepted: {out}");
    assert!(
        err.contains("plain HTTP to 10.9.8.7, which is not a loopback address")
            && err.contains("https://")
            && err.contains("--allow-insecure"),
        "{err}"
    );
    let (ok, out, err) = fleet(
        dir,
        &["add", "far", "http://10.9.8.7:9180", "--allow-insecure"],
        Some(SECRET),
    );
    assert!(ok, "--allow-insecure refused: {out}{err}");
    assert!(out.contains("unencrypted"), "{out}");

    // Pinned certificate on an https node; a bad fingerprint and an empty token refused.
    let pin = ["AB"; 32].join(":");
    let (ok, out, err) = fleet(
        dir,
        &[
            "add",
            "tls",
            "https://box3.example:9443",
            "--fingerprint",
            &pin,
        ],
        Some(SECRET),
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = fleet(
        dir,
        &[
            "add",
            "bad",
            "https://box4.example",
            "--fingerprint",
            "12:34",
        ],
        Some(SECRET),
    );
    assert!(!ok && err.contains("is not a SHA-256"), "{err}");
    let (ok, _, err) = fleet(dir, &["add", "empty", "https://box5.example"], None);
    assert!(!ok && err.contains("token is empty"), "{err}");
    let (ok, _, err) = fleet(
        dir,
        &["add", "box2", "https://elsewhere.example"],
        Some(SECRET),
    );
    assert!(!ok && err.contains("already exists"), "{err}");

    let (ok, list, err) = fleet(dir, &["list"], None);
    assert!(ok, "{err}");
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["box2", "far", "tls"], "{list}");
    assert!(list.contains("https://box3.example:9443/") && list.contains("pinned"));
    assert!(list.contains("insecure"), "{list}");

    let (ok, out, err) = fleet(dir, &["remove", "far"], None);
    assert!(ok && out.contains("node 'far' removed"), "{out}{err}");
    let (ok, _, err) = fleet(dir, &["remove", "far"], None);
    assert!(!ok && err.contains("no fleet node named 'far'"), "{err}");
    let (_, list, _) = fleet(dir, &["list"], None);
    assert!(!list.contains("far"), "{list}");

    // At rest the token is sealed: no file of the data directory holds it in clear, and
    // the key is warden's user's alone.
    for e in std::fs::read_dir(dir).expect("read data dir") {
        let path = e.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            let hit = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(!hit, "{} holds the token in clear", path.display());
        }
    }
    let mode = std::fs::metadata(dir.join("fleet.key"))
        .expect("fleet.key")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // The token is in the store for requests to the node, and nowhere in any output.
    let w = Warden::start_in(dir, "").await;
    let (st, sd) = w.get("/api/fleet/prometheus-sd").await;
    assert_eq!(st, StatusCode::OK, "{sd}");
    for text in [out, err, list, sd.to_string()] {
        assert!(!text.contains(SECRET), "token shown: {text}");
    }
}

/// Starts a node warden named `name` (its `[fleet] name`) and returns it with a viewer
/// token made for the hub.
async fn node(name: &str) -> (Warden, String, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = Warden::start_in(tmp.path(), &format!("[fleet]\nname = \"{name}\"\n")).await;
    let viewer = make_token(&w.data_dir, "viewer");
    (w, viewer, tmp)
}

/// A hub named `hub` that knows nodes `a` and `b`.
/// A fixture: a hub and its two nodes (each with the viewer token the hub uses) and the
/// hub's data directory.
type Fleet3 = (
    Warden,
    [(Warden, String, tempfile::TempDir); 2],
    tempfile::TempDir,
);

async fn fleet_of_three() -> Fleet3 {
    fleet_with(&[], "").await
}

/// A hub named `hub` that knows nodes `a`, `b` and the `extra` (name, URL) ones, with
/// more hub config.
async fn fleet_with(extra: &[(&str, String)], hub_config: &str) -> Fleet3 {
    let a = node("a").await;
    let b = node("b").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    for (n, (w, tok, _)) in [("a", &a), ("b", &b)] {
        let (ok, out, err) = fleet(tmp.path(), &["add", n, &w.url], Some(tok));
        assert!(ok, "{out}{err}");
    }
    for (n, url) in extra {
        let (ok, out, err) = fleet(tmp.path(), &["add", n, url], Some(SECRET));
        assert!(ok, "{out}{err}");
    }
    let config = format!("[fleet]\nname = \"hub\"\n{hub_config}");
    let hub = Warden::start_in(tmp.path(), &config).await;
    (hub, [a, b], tmp)
}

/// Creates program `prog` (a long sleep) on `w` and waits until it runs.
async fn run_idle(w: &Warden, prog: &str) {
    w.create(json!({"name": prog, "command": "sleep", "args": ["600"]}))
        .await;
    let (st, v) = w
        .post(&format!("/api/programs/{prog}/start"), json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    w.wait_state(prog, "running", Duration::from_secs(20)).await;
}

/// `host:port` of a fixture's URL.
fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn service_discovery_lists_the_hub_and_every_node_with_labels() {
    let (hub, [a, b], _tmp) = fleet_of_three().await;
    let (st, sd) = hub.get("/api/fleet/prometheus-sd").await;
    assert_eq!(st, StatusCode::OK, "{sd}");
    let groups = sd.as_array().expect("array of target groups");
    let expected = [("hub", &hub.url), ("a", &a.0.url), ("b", &b.0.url)];
    assert_eq!(groups.len(), expected.len(), "{sd}");
    for (g, (name, url)) in groups.iter().zip(expected) {
        assert_eq!(g["targets"], json!([host_port(url)]), "{sd}");
        assert_eq!(
            g["labels"],
            json!({"node": name, "__scheme__": "http", "__metrics_path__": "/metrics"}),
            "{sd}"
        );
    }
    assert!(!sd.to_string().contains(&a.1) && !sd.to_string().contains(&b.1));

    // Without credentials: 401 in the one error shape; a viewer token is enough.
    let (st, v) = hub
        .call_as(None, Method::GET, "/api/fleet/prometheus-sd", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["code"].is_string(), "{v}");
    let viewer = make_token(&hub.data_dir, "viewer");
    let (st, _) = hub
        .call_as(Some(&viewer), Method::GET, "/api/fleet/prometheus-sd", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    // Declared in the OpenAPI document with its statuses.
    let (_, doc) = hub.get("/api/openapi.json").await;
    let op = &doc["paths"]["/api/fleet/prometheus-sd"]["get"];
    for code in ["200", "401", "403"] {
        assert!(op["responses"][code].is_object(), "{code} missing: {op}");
    }
}

/// A Prometheus server run by a test; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(config: &str) -> Prometheus {
        let bin = tool("prometheus");
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("write config");
        let port = free_tcp_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: http_client(),
            _dir: dir,
        };
        let log_path = p._dir.path().join("prometheus.log");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut p = p;
        loop {
            let r = p.http.get(format!("{}/-/ready", p.url)).send().await;
            if matches!(&r, Ok(r) if r.status() == StatusCode::OK) {
                break;
            }
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("prometheus exited ({st}) before it was ready:\n{}", log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "prometheus not ready within 60 s:\n{}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        p
    }

    /// What Prometheus logged so far (for failure messages).
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), query)
            .expect("prometheus url");
        let r = self.http.get(url).send().await.expect("prometheus request");
        let v: Value = r.json().await.expect("prometheus json");
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    /// (node, program, value) of every series of an instant query.
    async fn query(&self, q: &str) -> Vec<(String, String, f64)> {
        let data = self.api("/api/v1/query", &[("query", q)]).await;
        data["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|s| {
                (
                    s["metric"]["node"].as_str().unwrap_or("").to_string(),
                    s["metric"]["program"].as_str().unwrap_or("").to_string(),
                    s["value"][1]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN),
                )
            })
            .collect()
    }
}

/// Polls `f` until it gives `Ok`, or panics after `secs` with `what` and the last thing
/// it saw (Prometheus' answers, so a failure says what was missing).
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                std::time::Instant::now() < deadline,
                "timed out after {secs} s waiting for: {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One scrape job per warden (each has its own token), all discovered through the hub
/// and kept by their `node` label — the layout README "Several machines" describes.
fn prometheus_config(hub: &Warden, jobs: &[(&str, &str)]) -> String {
    let rules = repo_file("packaging/prometheus/warden-rules.yml");
    let mut out = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
        rules.display()
    );
    for (node, token) in jobs {
        out.push_str(&format!(
            "  - job_name: warden-{node}\n    authorization:\n      type: Bearer\n      credentials: {token}\n    http_sd_configs:\n      - url: {}/api/fleet/prometheus-sd\n        refresh_interval: 5s\n        authorization:\n          type: Bearer\n          credentials: {}\n    relabel_configs:\n      - source_labels: [node]\n        regex: {node}\n        action: keep\n",
            hub.url, hub.token
        ));
    }
    out
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_fleet_through_the_hub_and_loads_the_rules() {
    let (hub, [a, b], _tmp) = fleet_of_three().await;
    for (w, prog) in [(&a.0, "alpha-game"), (&b.0, "beta-game")] {
        run_idle(w, prog).await;
    }
    let hub_viewer = make_token(&hub.data_dir, "viewer");
    let prom = Prometheus::start(&prometheus_config(
        &hub,
        &[("hub", &hub_viewer), ("a", &a.1), ("b", &b.1)],
    ))
    .await;

    // All three targets discovered through the hub and up.
    let targets = eventually(60, "three warden targets up", || async {
        let data = prom.api("/api/v1/targets", &[]).await;
        let active = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut up: Vec<(String, String)> = active
            .iter()
            .filter(|t| t["health"] == "up")
            .map(|t| {
                (
                    t["labels"]["node"].as_str().unwrap_or("").to_string(),
                    t["labels"]["instance"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        up.sort();
        if up.len() == 3 {
            Ok(up)
        } else {
            Err(format!("{data}\nprometheus log:\n{}", prom.log()))
        }
    })
    .await;
    assert_eq!(
        targets,
        [
            ("a".to_string(), host_port(&a.0.url)),
            ("b".to_string(), host_port(&b.0.url)),
            ("hub".to_string(), host_port(&hub.url)),
        ]
    );

    // A warden metric carries the node label of each node it came from.
    let running = eventually(30, "program series of both nodes", || async {
        let mut r = prom.query("warden_program_running").await;
        r.sort_by(|x, y| x.0.cmp(&y.0));
        if r.len() == 2 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    assert_eq!(
        running,
        [
            ("a".to_string(), "alpha-game".to_string(), 1.0),
            ("b".to_string(), "beta-game".to_string(), 1.0)
        ]
    );
    let tasks = prom.query("count by (node) (warden_tasks)").await;
    let mut nodes: Vec<&str> = tasks.iter().map(|t| t.0.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["a", "b", "hub"]);

    // The shipped rules are loaded and evaluate without error.
    let shipped = std::fs::read_to_string(repo_file("packaging/prometheus/warden-rules.yml"))
        .expect("rules file");
    let expected = shipped.matches("- alert:").count();
    assert!(expected >= 3, "rules file has {expected} rules");
    eventually(30, "every shipped rule evaluated ok", || async {
        let data = prom.api("/api/v1/rules", &[]).await;
        let rules: Vec<Value> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if rules.len() != expected {
            return Err(data.to_string());
        }
        for r in &rules {
            assert_ne!(r["health"], "err", "rule failed: {r}");
        }
        if rules.iter().all(|r| r["health"] == "ok") {
            Ok(())
        } else {
            Err(data.to_string())
        }
    })
    .await;

    // Every query of the shipped Grafana dashboard is valid PromQL to this Prometheus.
    for expr in dashboard_exprs() {
        let q = expr.replace("$node", ".*").replace("$program", ".*");
        prom.api("/api/v1/query", &[("query", &q)]).await;
    }

    // A node that goes away: its target goes down and WardenNodeDown becomes pending for
    // that node only.
    let (mut gone, _, _) = a;
    gone.kill9();
    eventually(30, "WardenNodeDown pending for node a", || async {
        let data = prom.api("/api/v1/alerts", &[]).await;
        let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
        let down: Vec<&str> = alerts
            .iter()
            .filter(|al| al["labels"]["alertname"] == "WardenNodeDown")
            .filter_map(|al| al["labels"]["node"].as_str())
            .collect();
        if down == ["a"] {
            Ok(())
        } else {
            Err(data.to_string())
        }
    })
    .await;
}

/// `warden ctl --all list` against the hub.
fn ctl_all(hub: &Warden) -> String {
    let (st, out, err) = cli(
        &hub.data_dir,
        &[
            "ctl", "--url", &hub.url, "--token", &hub.token, "--all", "list",
        ],
        None,
    );
    assert!(st.success(), "ctl --all list failed: {err}");
    out
}

/// (node, name, state) of every program in the overview.
fn overview_rows(v: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = v["programs"]
        .as_array()
        .expect("programs")
        .iter()
        .map(|p| {
            let f = |k: &str| p[k].as_str().unwrap_or("").to_string();
            (f("node"), f("name"), f("state"))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn the_fleet_overview_lists_every_node_outlives_a_dead_or_hung_one_and_sees_it_return() {
    // A node that accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_url = format!("http://{}/", hung.local_addr().expect("addr"));
    let (hub, [a, b], _tmp) = fleet_with(&[("hung", hung_url)], "timeout_ms = 1000\n").await;
    for (w, prog) in [
        (&hub, "hub-game"),
        (&a.0, "alpha-game"),
        (&b.0, "beta-game"),
    ] {
        run_idle(w, prog).await;
    }

    let started = std::time::Instant::now();
    let (st, v) = hub.get("/api/fleet/programs").await;
    let took = started.elapsed();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        took < Duration::from_secs(3),
        "a hung node held the overview for {took:?}"
    );
    let s = |x: &str| x.to_string();
    assert_eq!(
        overview_rows(&v),
        [
            (s("a"), s("alpha-game"), s("running")),
            (s("b"), s("beta-game"), s("running")),
            (s("hub"), s("hub-game"), s("running")),
        ]
    );
    let nodes = v["nodes"].as_array().expect("nodes");
    let names: Vec<&str> = nodes.iter().filter_map(|n| n["node"].as_str()).collect();
    assert_eq!(names, ["hub", "a", "b", "hung"], "{v}");
    for n in &nodes[..3] {
        assert_eq!(n["unreachable"], false, "{n}");
        assert!(n["last_seen_ms"].as_i64().is_some(), "{n}");
    }
    assert_eq!(nodes[3]["unreachable"], true, "{v}");
    assert!(nodes[3]["last_seen_ms"].is_null(), "{v}");
    assert!(
        nodes[3]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 1000 ms")),
        "{v}"
    );
    let b_seen = nodes[2]["last_seen_ms"].as_i64().expect("b seen");
    for secret in [a.1.as_str(), b.1.as_str(), SECRET] {
        assert!(
            !v.to_string().contains(secret),
            "a node token in the overview"
        );
    }

    let table = ctl_all(&hub);
    let header = table.lines().next().unwrap_or("");
    assert!(
        header.starts_with("NODE") && header.contains("NAME"),
        "{table}"
    );
    for (node, prog) in [("hub", "hub-game"), ("a", "alpha-game"), ("b", "beta-game")] {
        assert!(
            table.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[0] == node && f[1] == prog && f[2] == "running"
            }),
            "no {node}/{prog} row:\n{table}"
        );
    }

    // Node b dies: it is shown unreachable with when it was last seen, the others as
    // before.
    let (mut gone, _b_token, b_dir) = b;
    let b_url = gone.url.clone();
    let killed_at = chrono::Utc::now().timestamp_millis();
    gone.kill9();
    let (st, v) = hub.get("/api/fleet/programs").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        overview_rows(&v),
        [
            (s("a"), s("alpha-game"), s("running")),
            (s("hub"), s("hub-game"), s("running")),
        ]
    );
    let b_now = &v["nodes"][2];
    assert_eq!(b_now["node"], "b", "{v}");
    assert_eq!(b_now["unreachable"], true, "{v}");
    // Last seen: the last overview before it died (`ctl --all list` read one later).
    let b_last = b_now["last_seen_ms"].as_i64().expect("b last seen");
    assert!(b_seen <= b_last && b_last <= killed_at, "{v}");
    assert!(
        b_now["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{v}"
    );
    let table = ctl_all(&hub);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("b ") && l.contains("unreachable (last seen")),
        "{table}"
    );
    assert!(table.contains("alpha-game"), "{table}");

    // b comes back at its address: the hub lists it again by itself, with its program
    // (adopted by the new warden).
    let _b_again =
        Warden::start_at(b_dir.path(), "[fleet]\nname = \"b\"\n", &host_port(&b_url)).await;
    wait_until(Duration::from_secs(30), "node b listed again", || async {
        let (_, v) = hub.get("/api/fleet/programs").await;
        let back = v["nodes"][2]["unreachable"] == false;
        let rows = overview_rows(&v);
        (back && rows.iter().any(|r| r.0 == "b" && r.1 == "beta-game")).then_some(())
    })
    .await;

    // Without credentials: 401 in the one error shape.
    let (st, v) = hub
        .call_as(None, Method::GET, "/api/fleet/programs", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["code"].is_string(), "{v}");
    drop(hung);
}

/// Every PromQL expression of the shipped Grafana dashboard (panels and variables).
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("packaging/grafana/warden-fleet.json"))
        .expect("dashboard file");
    let doc: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    for p in doc["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for v in doc["templating"]["list"].as_array().expect("variables") {
        let q = v["query"]["query"].as_str().expect("variable query");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.rsplit_once(','))
            .map(|(m, _)| m.to_string())
            .expect("label_values(METRIC, LABEL)");
        out.push(inner);
    }
    out
}

/// The `warden_*` names in `text`.
fn warden_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("warden_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn dashboard_and_rules_use_metrics_warden_exports() {
    let exposition =
        std::fs::read_to_string(repo_file("src/metrics/prometheus.rs")).expect("exposition source");
    let rules =
        std::fs::read_to_string(repo_file("packaging/prometheus/warden-rules.yml")).expect("rules");
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let used = warden_metrics(&(exprs.join("\n") + &rules));
    for name in [
        "warden_program_cpu_percent",
        "warden_program_resident_memory_bytes",
        "warden_program_players",
        "warden_program_restarts_total",
    ] {
        assert!(used.contains(name), "dashboard or rules miss {name}");
    }
    for name in &used {
        assert!(
            exposition.contains(&format!("\"{name}\"")),
            "{name} is used by packaging/ but warden does not export it"
        );
    }
}

#[test]
fn shipped_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = tool("promtool");
    let dir = repo_file("packaging/prometheus");
    for args in [
        vec!["check", "rules", "warden-rules.yml"],
        vec!["test", "rules", "warden-rules.test.yml"],
        // The example names token files of a real host; check its syntax only.
        vec!["check", "config", "--syntax-only", "prometheus.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Actions on a node's program taken at the hub: the hub checks the caller's own
/// permission first (a viewer is refused there and nothing reaches the node), the node
/// acts under the hub's operator token, both audit logs record it (the node's naming
/// the person), and the errors say what is wrong: an unknown node, a node that refuses
/// the hub's token, a node that is gone.
#[tokio::test]
async fn actions_on_a_node_program_are_checked_at_the_hub_forwarded_and_audited() {
    let (target, _viewer, _node_dir) = node("box").await;
    let operator = make_token(&target.data_dir, "operator");
    target
        .create(sh("game", "while read l; do echo \"got $l\"; done"))
        .await;
    let (viewer_node, viewer_token, _vdir) = node("weak").await;
    viewer_node.create(sh("game", "exec sleep 600")).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = fleet(tmp.path(), &["add", "box", &target.url], Some(&operator));
    assert!(ok, "{out}{err}");
    let (ok, out, err) = fleet(
        tmp.path(),
        &["add", "weak", &viewer_node.url],
        Some(&viewer_token),
    );
    assert!(ok, "{out}{err}");
    let hub = Warden::start_in(tmp.path(), "[fleet]\nname = \"hub\"\n").await;

    // A hub viewer may look but not act: refused at the hub, the node never asked.
    let hub_viewer = make_token(&hub.data_dir, "viewer");
    let (st, v) = hub
        .call_as(
            Some(&hub_viewer),
            Method::POST,
            "/api/fleet/nodes/box/programs/game/start",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(target.program("game").await["state"], "stopped");

    // The admin starts it through the hub; the node's answer comes back.
    let (st, v) = hub
        .post("/api/fleet/nodes/box/programs/game/start", json!(null))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "game", "{v}");
    target
        .wait_state("game", "running", Duration::from_secs(20))
        .await;
    let (st, v) = hub
        .post(
            "/api/fleet/nodes/box/programs/game/console",
            json!({"line": "hello"}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    wait_until(Duration::from_secs(20), "the line on the node", || async {
        let (_, v) = target.get("/api/programs/game/console?lines=20").await;
        v.to_string().contains("got hello").then_some(())
    })
    .await;

    // Both audit logs: the hub's names the caller and the node/program, the node's the
    // hub's token and, as the hub's word, the person.
    // Audit records are written behind the answer: wait for them.
    let audit = wait_until(Duration::from_secs(20), "the hub's records", || async {
        let (_, audit) = hub.get("/api/audit?action=fleet").await;
        (audit["entries"].as_array().map_or(0, Vec::len) >= 2).then_some(audit)
    })
    .await;
    let hub_rows = audit["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        hub_rows.iter().any(|r| r["action"] == "fleet.program.start"
            && r["target"] == "box/game"
            && r["result"] == "ok"),
        "{audit}"
    );
    let audit = wait_until(Duration::from_secs(20), "the node's record", || async {
        let (_, audit) = target.get("/api/audit?action=program.start").await;
        (audit["entries"].as_array().map_or(0, Vec::len) >= 1).then_some(audit)
    })
    .await;
    let row = audit["entries"][0].clone();
    assert!(
        row["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("token:")),
        "{row}"
    );
    assert!(
        row["detail"]
            .as_str()
            .is_some_and(|d| d.contains("via hub hub")),
        "{row}"
    );

    // The node's own refusals and errors come back as they are.
    let (st, v) = hub
        .post("/api/fleet/nodes/box/programs/nothing/start", json!(null))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    // An unknown node, an unknown action, a name that is not a name.
    let (st, v) = hub
        .post("/api/fleet/nodes/nope/programs/game/start", json!(null))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nope"),
        "{v}"
    );
    let (st, _) = hub
        .post("/api/fleet/nodes/box/programs/game/explode", json!(null))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = hub
        .post(
            "/api/fleet/nodes/box/programs/..%2Fusers/start",
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no program named"),
        "{v}"
    );
    // A node that gave the hub a viewer token: 502 saying which role it needs.
    let (st, v) = hub
        .post("/api/fleet/nodes/weak/programs/game/start", json!(null))
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["error"]["code"], "node_failed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("operator role"),
        "{v}"
    );
    assert_eq!(viewer_node.program("game").await["state"], "stopped");
    // A node that is gone: 502, promptly.
    let mut gone = target;
    gone.kill9();
    let (st, v) = hub
        .post("/api/fleet/nodes/box/programs/game/stop", json!(null))
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot connect"),
        "{v}"
    );
}

#[tokio::test]
async fn a_hub_websocket_relays_a_nodes_console_and_outlives_the_node() {
    let node_dir = tempfile::tempdir().expect("tempdir");
    let node_config = "[fleet]\nname = \"box\"\n";
    let mut target = Warden::start_in(node_dir.path(), node_config).await;
    let operator = make_token(&target.data_dir, "operator");
    target
        .create(sh("game", "while true; do echo tick; sleep 0.3; done"))
        .await;
    let (st, v) = target.post("/api/programs/game/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    target
        .wait_state("game", "running", Duration::from_secs(20))
        .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = fleet(tmp.path(), &["add", "box", &target.url], Some(&operator));
    assert!(ok, "{out}{err}");
    let hub = Warden::start_in(tmp.path(), "[fleet]\nname = \"hub\"\n").await;

    // A hub viewer holds no console permission: refused at the hub.
    let viewer = make_token(&hub.data_dir, "viewer");
    let bearer = |t: &str| format!("Bearer {t}");
    let mut weak = crate::ws::connect(&hub, &[("authorization", &bearer(&viewer))])
        .await
        .expect("connect");
    crate::ws::send(
        &mut weak,
        json!({"op": "subscribe", "topics": ["node:box:console:game"]}),
    )
    .await;
    let refused = crate::ws::next_where(&mut weak, "a refusal", |v| v["type"] == "error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");

    // The admin's subscription reaches the node; console lines come back labelled.
    let mut s = crate::ws::connect(&hub, &[("authorization", &bearer(&hub.token))])
        .await
        .expect("connect");
    crate::ws::send(
        &mut s,
        json!({"op": "subscribe", "topics": ["node:box:console:game", "node:box:console:late", "node:box:programs"]}),
    )
    .await;
    let sub = crate::ws::next_where(&mut s, "subscribed", |v| v["type"] == "subscribed").await;
    assert_eq!(
        sub["topics"],
        json!([
            "node:box:console:game",
            "node:box:console:late",
            "node:box:programs"
        ])
    );
    let up = |v: &Value| v["type"] == "node" && v["node"] == "box" && v["state"] == "connected";
    crate::ws::next_where(&mut s, "the node connected", up).await;
    // The program prints a line every 0.3 s: one arrives once the relay has subscribed.
    let line = |program: &'static str, want: &'static str| {
        move |v: &Value| {
            v["type"] == "console"
                && v["node"] == "box"
                && v["program"] == program
                && v["text"].as_str() == Some(want)
        }
    };
    crate::ws::next_where(&mut s, "the node's console line", line("game", "tick")).await;

    // The node dies: the hub says so, keeps the dashboard's socket, and picks the node up
    // again when it is back on the same address.
    let addr = target.url.trim_start_matches("http://").to_string();
    target.kill9();
    let down = crate::ws::next_where(&mut s, "the node lost", |v| {
        v["type"] == "node" && v["state"] == "unreachable"
    })
    .await;
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    let target = Warden::start_at(node_dir.path(), node_config, &addr).await;
    crate::ws::next_where(&mut s, "the node back", up).await;
    // A program started on the node now: its state change and its lines reach the hub's
    // client over the new connection.
    target
        .create(sh("late", "while true; do echo late-line; sleep 0.3; done"))
        .await;
    let (st, v) = target.post("/api/programs/late/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Its running state (topic `node:box:programs`) and its lines travel separately:
    // take both, in any order.
    let (mut running, mut printed) = (false, false);
    while !(running && printed) {
        let v = crate::ws::next_where(&mut s, "the new program's state and line", |v| {
            v["node"] == "box" && (v["type"] == "state" || v["type"] == "console")
        })
        .await;
        running |= v["type"] == "state" && v["program"] == "late" && v["to"] == "running";
        printed |= line("late", "late-line")(&v);
    }
}

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_move_carries_a_program_and_its_world_to_a_node_and_a_failed_one_leaves_it_running() {
    // The target node takes programs in under an admin token; another one only has the
    // hub's viewer token, so it refuses them.
    let (target, _viewer, _tdir) = node("box").await;
    let admin = make_token(&target.data_dir, "admin");
    let (weak, weak_viewer, _wdir) = node("weak").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    for (n, w, tok) in [("box", &target, &admin), ("weak", &weak, &weak_viewer)] {
        let (ok, out, err) = fleet(tmp.path(), &["add", n, &w.url], Some(tok));
        assert!(ok, "{out}{err}");
    }
    let hub = Warden::start_in(tmp.path(), "[fleet]\nname = \"hub\"\n").await;

    // A world: nested folders, binary data, a script the program runs from its folder.
    let world = tmp.path().join("worlds/survival");
    std::fs::create_dir_all(world.join("region/deep")).expect("dirs");
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(world.join("region/r.0.0.mca"), &blob).expect("write");
    std::fs::write(world.join("region/deep/level.dat"), b"\x00\x01level\xff").expect("write");
    std::fs::write(world.join("server.properties"), "motd=moved\n").expect("write");
    let run = world.join("run.sh");
    std::fs::write(&run, "while true; do echo alive; sleep 1; done\n").expect("write");
    let before = tree(&world);
    let cwd = world.to_string_lossy().into_owned();
    hub.create(json!({
        "name": "survival", "command": "sh", "args": [run.to_string_lossy()],
        "cwd": cwd, "autostart": true, "start_seconds": 0
    }))
    .await;
    let (st, v) = hub.post("/api/programs/survival/start", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    hub.wait_state("survival", "running", Duration::from_secs(20))
        .await;

    // A node that refuses: the move fails, says why, and the program runs here again.
    let (st, v) = hub
        .post(
            "/api/fleet/move",
            json!({"program": "survival", "to": "weak"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["error"]["code"], "move_failed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("403")),
        "{v}"
    );
    hub.wait_state("survival", "running", Duration::from_secs(20))
        .await;
    let (st, _) = weak.get("/api/programs/survival").await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "nothing arrived on the refusing node"
    );
    assert!(
        !weak.data_dir.join("servers/survival").exists(),
        "no folder under its final name"
    );

    // The move, from the CLI, as a person runs it.
    let out = Command::new(bin())
        .args(["fleet", "move", "survival", "--to", "box"])
        .env("WARDEN_URL", &hub.url)
        .env("WARDEN_TOKEN", &hub.token)
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .expect("run warden fleet move");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("moved to node box") && stdout.contains("running there"),
        "{stdout}"
    );

    // There: running, in its own servers folder, every file byte-identical; the path to
    // its script points into the new folder.
    let there = target
        .wait_state("survival", "running", Duration::from_secs(20))
        .await;
    let new_root = target.data_dir.join("servers/survival");
    assert_eq!(there["cwd"], new_root.to_string_lossy().as_ref(), "{there}");
    assert_eq!(
        there["args"],
        json!([new_root.join("run.sh").to_string_lossy()]),
        "{there}"
    );
    assert_eq!(tree(&new_root), before, "the world arrived byte for byte");
    // Here: stopped, not started again by itself, and the story in its events.
    let here = hub.program("survival").await;
    assert_eq!(here["state"], "stopped", "{here}");
    assert_eq!(here["autostart"], false, "{here}");
    let kinds: Vec<String> = hub
        .events("survival")
        .await
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "move_started",
        "move_failed",
        "move_finished",
        "backup_finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing: {kinds:?}");
    }

    // Moving it again: the node has it already (409), and nothing here changes.
    let (st, v) = hub
        .post(
            "/api/fleet/move",
            json!({"program": "survival", "to": "box"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    // Only an administrator moves programs.
    let operator = make_token(&hub.data_dir, "operator");
    let (st, v) = hub
        .call_as(
            Some(&operator),
            Method::POST,
            "/api/fleet/move",
            Some(json!({"program": "survival", "to": "box"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn a_nodes_files_and_backups_are_reached_through_the_hub() {
    let (target, _viewer, _node_dir) = node("box").await;
    let operator = make_token(&target.data_dir, "operator");
    let world = target.data_dir.join("worlds/mc");
    std::fs::create_dir_all(&world).expect("world");
    std::fs::write(
        world.join("server.properties"),
        "motd=far away\nrcon.password=hunter2-secret\n",
    )
    .expect("write");
    let mut game = sh("mc", "exec sleep 600");
    game["cwd"] = json!(world.to_string_lossy());
    target.create(game).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = fleet(tmp.path(), &["add", "box", &target.url], Some(&operator));
    assert!(ok, "{out}{err}");
    let hub = Warden::start_in(tmp.path(), "[fleet]\nname = \"hub\"\n").await;
    let base = "/api/fleet/nodes/box/programs/mc";

    // Files: the listing and a text file, the game's password masked by the node (the
    // hub's operator token may not `define` there).
    let (st, v) = hub.get(&format!("{base}/files?path=")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("server.properties"), "{v}");
    let (st, v) = hub
        .get(&format!("{base}/files/text?path=server.properties"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let text = v["text"].as_str().expect("text");
    assert!(text.contains("motd=far away"), "{text}");
    assert!(
        !text.contains("hunter2-secret"),
        "the password crossed: {text}"
    );
    // A file that is not there: the node's 404 comes back as it is.
    let (st, v) = hub.get(&format!("{base}/files/text?path=nope.txt")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // A backup started at the hub runs on the node and is listed through the hub.
    let (st, v) = hub.post(&format!("{base}/backups"), json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    wait_until(
        Duration::from_secs(30),
        "the node's backup finished",
        || async {
            let (_, v) = hub.get(&format!("{base}/backups")).await;
            let list = v["backups"].as_array().cloned().unwrap_or_default();
            list.iter().any(|b| b["status"] == "ok").then_some(())
        },
    )
    .await;
    let (_, local) = target.get("/api/programs/mc/backups").await;
    assert!(local.to_string().contains("\"ok\""), "{local}");

    // A hub viewer may list backups but not read files or start one.
    let viewer = make_token(&hub.data_dir, "viewer");
    for (method, path) in [
        (Method::GET, format!("{base}/files?path=")),
        (Method::POST, format!("{base}/backups")),
    ] {
        let (st, v) = hub.call_as(Some(&viewer), method, &path, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    let (st, v) = hub
        .call_as(Some(&viewer), Method::GET, &format!("{base}/backups"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}
