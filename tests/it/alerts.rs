//! Alerts end to end: the real binary, real crashing programs, and a real HTTP receiver
//! (axum on 127.0.0.1:0 in this process) that can answer 200, fail, rate-limit or hang.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    RetryAfter(u64),
    /// Never answer.
    Hang,
}

#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub(crate) headers: HashMap<String, String>,
    raw: Vec<u8>,
    pub(crate) body: Value,
    at: Instant,
    wall_ms: i64,
    reply: Reply,
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    default: HashMap<String, Reply>,
    hits: HashMap<String, Vec<Hit>>,
}

pub(crate) struct Receiver {
    pub(crate) base: String,
    s: Arc<Mutex<Script>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let s = Arc::new(Mutex::new(Script::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = Router::new().fallback(receive).with_state(s.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { base, s }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next answers for `path`, then its default.
    fn script(&self, path: &str, replies: &[Reply]) {
        self.s
            .lock()
            .expect("lock")
            .queued
            .insert(path.into(), replies.iter().copied().collect());
    }

    fn set_default(&self, path: &str, r: Reply) {
        self.s.lock().expect("lock").default.insert(path.into(), r);
    }

    pub(crate) fn hits(&self, path: &str) -> Vec<Hit> {
        self.s
            .lock()
            .expect("lock")
            .hits
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

async fn receive(State(s): State<Arc<Mutex<Script>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let raw = to_bytes(req.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let reply = {
        let mut s = s.lock().expect("lock");
        let reply = s
            .queued
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.default.get(&path).copied())
            .unwrap_or(Reply::Status(200));
        let hit = Hit {
            headers,
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw,
            at: Instant::now(),
            wall_ms: chrono::Utc::now().timestamp_millis(),
            reply,
        };
        s.hits.entry(path).or_default().push(hit);
        reply
    };
    match reply {
        Reply::Status(c) => {
            (StatusCode::from_u16(c).unwrap_or(StatusCode::OK), "answer").into_response()
        }
        Reply::RetryAfter(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// A warden with fast retries, in `dir`.
async fn warden(dir: &std::path::Path, extra: &str) -> Warden {
    Warden::start_in(
        dir,
        &format!("[alerts]\nretry_initial_ms = 200\nretry_max_seconds = 2\n{extra}"),
    )
    .await
}

async fn add_channel(w: &Warden, body: Value) {
    let (st, v) = w.post("/api/alerts/channels", body).await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "channel: {v}");
}

/// A program that prints a line and exits with code 3, never restarted.
async fn crashing_program(w: &Warden, name: &str) {
    w.create(json!({
        "name": name,
        "display_name": "Crashy Server",
        "command": "sh",
        "args": ["-c", "echo 'last words before the crash'; sleep 0.2; exit 3"],
        "start_seconds": 0,
        "restart": {"policy": "never"}
    }))
    .await;
    let (st, v) = w
        .post(&format!("/api/programs/{name}/start"), json!(null))
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "start: {v}");
}

async fn deliveries(w: &Warden, channel: &str) -> Vec<Value> {
    let (st, v) = w
        .get(&format!(
            "/api/alerts/channels/{channel}/deliveries?limit=500"
        ))
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "deliveries: {v}");
    v["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits for the receiver to get `n` requests on `path`.
pub(crate) async fn wait_hits(r: &Receiver, path: &str, n: usize, within: Duration) -> Vec<Hit> {
    wait_until(within, &format!("{n} request(s) on {path}"), || async {
        let h = r.hits(path);
        (h.len() >= n).then_some(h)
    })
    .await
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn crash_reaches_generic_webhook_within_2s_signed_and_masked() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden(tmp.path(), "").await;
    add_channel(
        &w,
        json!({
            "name": "hook",
            "target": {"kind": "webhook", "url": r.url("/hook/s3cret-path"), "secret": "sign-key",
                       "headers": {"X-Team": "ops-token-123"}},
            "events": ["crashed"]
        }),
    )
    .await;
    // Secrets never come back.
    let (_, shown) = w.get("/api/alerts/channels/hook").await;
    let text = shown.to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("sign-key") && !text.contains("ops-token"),
        "{text}"
    );
    assert_eq!(
        shown["target"]["url"].as_str(),
        Some(format!("{}/***", r.base).as_str())
    );

    crashing_program(&w, "crashy").await;
    let hits = wait_hits(&r, "/hook/s3cret-path", 1, Duration::from_secs(15)).await;
    let hit = &hits[0];
    let b = &hit.body;
    assert_eq!(b["schema"], "warden.alert.v1");
    assert_eq!(b["event"], "crashed");
    assert_eq!(b["program"], "crashy");
    assert_eq!(b["display_name"], "Crashy Server");
    assert_eq!(b["severity"], "critical");
    assert_eq!(b["exit"]["code"], 3);
    assert!(
        b["last_lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "last words before the crash")),
        "{b}"
    );
    let crash_ts = b["ts"].as_i64().expect("ts");
    let latency = hit.wall_ms - crash_ts;
    assert!(
        latency <= 2000,
        "delivered {latency} ms after the crash (limit 2000)"
    );
    // Signature over the exact body, custom header, delivery id.
    assert_eq!(
        hit.headers.get("x-warden-signature").map(String::as_str),
        Some(format!("sha256={}", hmac_hex(b"sign-key", &hit.raw)).as_str())
    );
    assert_eq!(
        hit.headers.get("x-team").map(String::as_str),
        Some("ops-token-123")
    );
    assert_eq!(
        hit.headers.get("x-warden-delivery").map(String::as_str),
        Some(b["id"].to_string().as_str())
    );
    // Only the crash passed the filter (not "started"), and the log says delivered.
    let log = wait_until(Duration::from_secs(20), "delivery logged", || async {
        let log = deliveries(&w, "hook").await;
        (log.first().is_some_and(|d| d["status"] == "delivered")).then_some(log)
    })
    .await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status"], 200);
    assert_eq!(r.hits("/hook/s3cret-path").len(), 1);
}

#[tokio::test]
async fn discord_payload_is_a_valid_embed() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden(tmp.path(), "").await;
    add_channel(
        &w,
        json!({"name": "discord", "target": {"kind": "discord", "url": r.url("/api/webhooks/1/tok")},
               "events": ["crashed"]}),
    )
    .await;
    crashing_program(&w, "crashy").await;
    let hits = wait_hits(&r, "/api/webhooks/1/tok", 1, Duration::from_secs(15)).await;
    let h = &hits[0];
    assert_eq!(
        h.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let embeds = h.body["embeds"].as_array().expect("embeds array");
    assert_eq!(embeds.len(), 1);
    let e = &embeds[0];
    let title = e["title"].as_str().expect("title");
    assert!(
        title.contains("Crashy Server") && title.len() <= 256,
        "{title}"
    );
    assert_eq!(e["color"], 0xe7_4c_3c, "red for critical");
    let fields = e["fields"].as_array().expect("fields");
    assert!(!fields.is_empty() && fields.len() <= 25);
    for f in fields {
        assert!(f["name"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(f["value"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
    }
    assert!(
        fields.iter().any(|f| f["value"] == "exit code 3"),
        "{fields:?}"
    );
    let ts = e["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
    let description = e["description"].as_str().expect("description");
    assert!(
        description.contains("last words before the crash"),
        "{description}"
    );
    assert_eq!(h.body["allowed_mentions"]["parse"], json!([]));
}

#[tokio::test]
async fn failing_twice_then_ok_delivers_exactly_once_and_4xx_is_permanent() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden(tmp.path(), "").await;
    r.script("/flaky", &[Reply::Status(500), Reply::Status(500)]);
    r.set_default("/gone", Reply::Status(404));
    for (name, path) in [("flaky", "/flaky"), ("gone", "/gone")] {
        add_channel(
            &w,
            json!({"name": name, "target": {"kind": "webhook", "url": r.url(path)}, "events": ["crashed"]}),
        )
        .await;
    }
    crashing_program(&w, "crashy").await;
    let log = wait_until(Duration::from_secs(20), "flaky delivered", || async {
        let log = deliveries(&w, "flaky").await;
        log.first()
            .is_some_and(|d| d["status"] == "delivered")
            .then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempts"], 3);
    let hits = r.hits("/flaky");
    assert_eq!(hits.len(), 3, "two failures, then one success");
    let ids: Vec<&Value> = hits.iter().map(|h| &h.body["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same delivery each time"
    );
    assert_eq!(
        hits.iter()
            .filter(|h| matches!(h.reply, Reply::Status(200)))
            .count(),
        1
    );
    // The 404 channel: one attempt, marked failed, never retried.
    let gone = wait_until(Duration::from_secs(10), "gone failed", || async {
        let log = deliveries(&w, "gone").await;
        log.first()
            .is_some_and(|d| d["status"] == "failed")
            .then_some(log)
    })
    .await;
    assert_eq!(gone[0]["attempts"], 1);
    assert_eq!(gone[0]["last_status"], 404);
    assert!(
        gone[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("permanent") && !e.contains("127.0.0.1")),
        "{gone:?}"
    );
    // Well past the retry delays: still exactly 3 and 1 requests.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.hits("/flaky").len(), 3);
    assert_eq!(r.hits("/gone").len(), 1);
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Without Retry-After the retry would come after ~100-200 ms.
    let w = warden(tmp.path(), "").await;
    r.script("/limited", &[Reply::RetryAfter(2)]);
    add_channel(
        &w,
        json!({"name": "limited", "target": {"kind": "slack", "url": r.url("/limited")}}),
    )
    .await;
    let (st, v) = w
        .call_as(
            Some(&w.token),
            Method::POST,
            "/api/alerts/channels/limited/test?wait=0",
            None,
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let hits = wait_hits(&r, "/limited", 2, Duration::from_secs(15)).await;
    let gap = hits[1].at.duration_since(hits[0].at);
    assert!(
        gap >= Duration::from_millis(1950),
        "retried after {gap:?}, before Retry-After: 2"
    );
    assert!(gap < Duration::from_secs(5), "retried late: {gap:?}");
    assert!(
        hits[1].body["text"]
            .as_str()
            .is_some_and(|t| t.contains("Test message"))
    );
    let log = wait_until(Duration::from_secs(20), "delivered", || async {
        let log = deliveries(&w, "limited").await;
        log.first()
            .is_some_and(|d| d["status"] == "delivered")
            .then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempts"], 2);
}

#[tokio::test]
async fn undelivered_notifications_survive_sigkill() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    r.set_default("/later", Reply::Status(503));
    let mut w = warden(tmp.path(), "").await;
    add_channel(
        &w,
        json!({"name": "later", "target": {"kind": "webhook", "url": r.url("/later")}, "events": ["crashed"]}),
    )
    .await;
    crashing_program(&w, "crashy").await;
    wait_until(Duration::from_secs(15), "a failed attempt", || async {
        let log = deliveries(&w, "later").await;
        log.first()
            .is_some_and(|d| d["status"] == "pending" && d["attempts"].as_u64() >= Some(1))
            .then_some(())
    })
    .await;
    w.kill9();
    let before = r.hits("/later").len();
    r.set_default("/later", Reply::Status(200));
    let w2 = warden(tmp.path(), "").await;
    let hits = wait_until(
        Duration::from_secs(20),
        "delivery after restart",
        || async {
            let h = r.hits("/later");
            h.iter()
                .any(|h| matches!(h.reply, Reply::Status(200)))
                .then_some(h)
        },
    )
    .await;
    assert!(hits.len() > before);
    let ok = hits
        .iter()
        .find(|h| matches!(h.reply, Reply::Status(200)))
        .expect("a 200");
    assert_eq!(ok.body["event"], "crashed");
    assert_eq!(ok.body["program"], "crashy");
    let log = wait_until(Duration::from_secs(20), "logged delivered", || async {
        let log = deliveries(&w2, "later").await;
        log.iter()
            .find(|d| d["event"] == "crashed")
            .filter(|d| d["status"] == "delivered")
            .cloned()
    })
    .await;
    assert!(log["attempts"].as_u64() >= Some(2), "{log}");
}

#[cfg(target_os = "linux")]
fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_endpoint_with_1000_queued_stays_bounded_and_others_deliver() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    r.set_default("/hang", Reply::Hang);
    let w = warden(tmp.path(), "request_timeout_seconds = 2\n").await;
    add_channel(
        &w,
        json!({"name": "dead", "target": {"kind": "webhook", "url": r.url("/hang")}}),
    )
    .await;
    add_channel(
        &w,
        json!({"name": "alive", "target": {"kind": "webhook", "url": r.url("/ok")}, "events": ["crashed"]}),
    )
    .await;
    let pid = w.child.id();
    let queue = |n: usize| {
        let w = &w;
        futures_util::stream::iter(0..n)
            .map(move |_| async move {
                let (st, v) = w
                    .call_as(
                        Some(&w.token),
                        Method::POST,
                        "/api/alerts/channels/dead/test?wait=0",
                        None,
                    )
                    .await;
                assert_eq!(st, reqwest::StatusCode::OK, "{v}");
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
    };
    // Warm up (connections, caches, the first hung request), then measure.
    queue(100).await;
    wait_hits(&r, "/hang", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = proc_status(pid, "VmRSS:");
    let (_, s0) = w.get("/api/alerts/status").await;
    let tasks0 = s0["runtime_tasks"].as_u64().expect("tasks");

    let started = Instant::now();
    queue(900).await;
    // A crash goes to both channels: the live one gets it promptly.
    crashing_program(&w, "crashy").await;
    let ok = wait_hits(&r, "/ok", 1, Duration::from_secs(10)).await;
    assert_eq!(ok[0].body["event"], "crashed");
    assert!(
        ok[0].wall_ms - ok[0].body["ts"].as_i64().expect("ts") < 3000,
        "the live channel was held up by the dead one"
    );
    let (_, s1) = w.get("/api/alerts/status").await;
    assert!(s1["pending"].as_u64() >= Some(1000), "{s1}");
    assert!(s1["in_flight"].as_u64() <= Some(2), "{s1}");
    // Let the dead endpoint time out until its breaker opens (3 failures of 2 s each),
    // then measure again.
    wait_until(
        Duration::from_secs(30),
        "the dead channel's breaker opens",
        || async {
            let (_, dead) = w.get("/api/alerts/channels/dead").await;
            (dead["breaker"]["state"] == "open").then_some(())
        },
    )
    .await;
    let rss1 = proc_status(pid, "VmRSS:");
    let (_, s2) = w.get("/api/alerts/status").await;
    let tasks1 = s2["runtime_tasks"].as_u64().expect("tasks");
    eprintln!(
        "bounded: VmRSS {rss0} -> {rss1} kB, tasks {tasks0} -> {tasks1}, in flight {} of {} senders, pending {}",
        s2["in_flight"], s2["senders"], s2["pending"]
    );
    // What alerts bound is the sender pool (a fixed number of requests in flight) and the
    // tasks: not one per queued message. The OS thread count is not theirs to bound:
    // tokio's blocking pool grows and shrinks with the store's reads under load.
    assert_eq!(s2["senders"].as_u64(), Some(2), "{s2}");
    assert!(s2["in_flight"].as_u64() <= s2["senders"].as_u64(), "{s2}");
    assert!(tasks1 <= tasks0 + 5, "tasks grew: {tasks0} -> {tasks1}");
    assert!(rss1 <= rss0 + 16 * 1024, "memory grew: {rss0} -> {rss1} kB");
    // One request at a time to the dead endpoint, each cut at 2 s, and the breaker pauses
    // it after 3 failures: a bounded number of attempts, not one per queued message.
    let dead_hits = r.hits("/hang").len();
    let limit = (started.elapsed().as_secs() / 2 + 2) as usize;
    assert!(
        dead_hits <= limit,
        "{dead_hits} attempts on the dead endpoint in {:?}",
        started.elapsed()
    );
    // Shutdown is not held up by the dead endpoint: the grace period bounds it.
    let mut w = w;
    let t = Instant::now();
    assert!(w.terminate().success());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        t.elapsed()
    );
}

// Multi-threaded: `terminate` blocks this thread while the receiver must answer.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_stopping_and_started_are_notified() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = warden(tmp.path(), "").await;
    add_channel(
        &w,
        json!({"name": "self", "target": {"kind": "ntfy", "server": r.url("/ntfy"), "topic": "warden"},
               "events": ["warden_started", "warden_stopping"]}),
    )
    .await;
    assert!(w.terminate().success());
    let hits = r.hits("/ntfy");
    assert_eq!(hits.len(), 1, "delivered before exiting");
    assert_eq!(hits[0].body["topic"], "warden");
    assert!(
        hits[0].body["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Warden is stopping")),
        "{:?}",
        hits[0].body
    );
    let _w2 = warden(tmp.path(), "").await;
    let hits = wait_hits(&r, "/ntfy", 2, Duration::from_secs(10)).await;
    assert!(
        hits[1].body["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Warden") && t.ends_with("started")),
        "{:?}",
        hits[1].body
    );
}

// Multi-threaded: the CLI runs as a blocking child process while the receiver, in this
// runtime, must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_channels_and_rules_and_sends_a_test() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden(tmp.path(), "").await;
    let ctl = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["ctl", "--url", &w.url, "--token", &w.token];
        all.extend_from_slice(args);
        cli(tmp.path(), &all, stdin)
    };
    let url = r.url("/cli/secret-part");
    let (st, out, err) = ctl(
        &[
            "alerts",
            "channel",
            "add",
            "ops",
            "--kind",
            "webhook",
            "--webhook-url",
            "-",
            "--events",
            "crashed,fatal,test",
        ],
        Some(&format!("{url}\n")),
    );
    assert!(st.success(), "{out}{err}");
    let (st, out, err) = ctl(&["alerts", "channel", "test", "ops"], None);
    assert!(st.success(), "{out}{err}");
    assert!(out.contains("test message delivered to 'ops'"), "{out}");
    assert_eq!(r.hits("/cli/secret-part").len(), 1);
    let (st, out, _) = ctl(&["alerts", "channels"], None);
    assert!(st.success());
    assert!(out.contains("ops") && !out.contains("secret-part"), "{out}");
    let (st, out, err) = ctl(
        &[
            "alerts",
            "rule",
            "add",
            "loop",
            "--when",
            "crashed >= 3 in 10m",
        ],
        None,
    );
    assert!(st.success(), "{out}{err}");
    let (st, _, err) = ctl(
        &[
            "alerts",
            "rule",
            "add",
            "bad",
            "--when",
            "cpu_percent >>> 3",
        ],
        None,
    );
    assert!(!st.success());
    assert!(err.contains("condition"), "{err}");
    let (st, out, _) = ctl(&["alerts", "rules"], None);
    assert!(st.success() && out.contains("crashed >= 3 in 10m"), "{out}");
    let (st, out, _) = ctl(&["alerts", "channel", "log", "ops"], None);
    assert!(st.success() && out.contains("delivered"), "{out}");
    let (st, out, _) = ctl(&["alerts", "status"], None);
    assert!(st.success() && out.contains("delivered 1"), "{out}");
    // Viewers read but cannot define.
    let viewer = make_token(tmp.path(), "viewer");
    let (st, _) = w
        .call_as(Some(&viewer), Method::GET, "/api/alerts/channels", None)
        .await;
    assert_eq!(st, reqwest::StatusCode::OK);
    let (st, _) = w
        .call_as(
            Some(&viewer),
            Method::POST,
            "/api/alerts/rules",
            Some(json!({"name": "x", "condition": "crashed >= 1 in 1m"})),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn restart_loop_rule_alerts_once() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden(tmp.path(), "").await;
    add_channel(
        &w,
        json!({"name": "rules", "target": {"kind": "webhook", "url": r.url("/rules")},
               "events": ["rule_fired"]}),
    )
    .await;
    let (st, v) = w
        .post(
            "/api/alerts/rules",
            json!({"name": "crash-loop", "condition": "crashed >= 3 in 10m"}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    let mut spec = sh("looper", "exit 1");
    spec["display_name"] = json!("Looping Server");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"policy": "on-failure", "backoff_initial_ms": 0, "backoff_max_ms": 0, "max_failed_starts": 5, "window_seconds": 60});
    w.create(spec).await;
    w.post("/api/programs/looper/start", json!(null)).await;
    w.wait_state("looper", "fatal", Duration::from_secs(30))
        .await;
    let hits = wait_hits(&r, "/rules", 1, Duration::from_secs(10)).await;
    let b = &hits[0].body;
    assert_eq!(b["event"], "rule_fired");
    assert_eq!(b["rule"], "crash-loop");
    assert_eq!(b["severity"], "critical");
    assert!(
        b["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Looping Server:")),
        "{b}"
    );
    // Five crashes, one alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.hits("/rules").len(), 1);
}

/// A resource rule over real samples: a program that burns a core on demand crosses
/// `cpu_percent > 50 for 1s`, the rule fires once however many samples stay above, and
/// says "recovered" once when the load is gone.
#[tokio::test]
async fn resource_rule_fires_once_and_recovers_once() {
    let r = Receiver::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Fast samples; never stretched, whatever else the test machine is doing.
    let w = warden(
        tmp.path(),
        "[metrics]\nsample_interval_ms = 200\nbatch_interval_ms = 1000\nsaturation_cpu_percent = 100\n",
    )
    .await;
    add_channel(
        &w,
        json!({"name": "rules", "target": {"kind": "webhook", "url": r.url("/rules")},
               "events": ["rule_fired", "rule_recovered"]}),
    )
    .await;
    let (st, v) = w
        .post(
            "/api/alerts/rules",
            // A busy loop on a loaded 2-core machine (the suite runs in parallel) may
            // get well under one core for a sample; 10 % still tells burning from idle.
            json!({"name": "hot", "program": "burner", "condition": "cpu_percent > 10 for 1s"}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    // `burn` starts a busy child (counted: the whole process tree is sampled), `idle`
    // stops it.
    let mut spec = sh(
        "burner",
        "while read cmd; do case $cmd in burn) (while :; do :; done) & b=$! ;; idle) kill $b ;; esac; done",
    );
    spec["display_name"] = json!("Busy Server");
    spec["start_seconds"] = json!(0);
    w.create(spec).await;
    w.post("/api/programs/burner/start", json!(null)).await;
    w.wait_state("burner", "running", Duration::from_secs(10))
        .await;

    let console = |line: &'static str| {
        let w = &w;
        async move {
            let (st, v) = w
                .post("/api/programs/burner/console", json!({ "line": line }))
                .await;
            assert!(st.is_success(), "{v}");
        }
    };
    console("burn").await;
    let hits = wait_hits(&r, "/rules", 1, Duration::from_secs(20)).await;
    let b = &hits[0].body;
    assert_eq!(b["event"], "rule_fired", "{b}");
    assert_eq!(b["rule"], "hot", "{b}");
    assert_eq!(b["program"], "burner", "{b}");
    assert!(
        b["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Busy Server:")),
        "{b}"
    );
    // Keep burning for ten more samples' worth: every one is above the threshold, and
    // none may fire again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    console("idle").await;
    let hits = wait_hits(&r, "/rules", 2, Duration::from_secs(20)).await;
    assert_eq!(
        hits[1].body["event"], "rule_recovered",
        "{:?}",
        hits[1].body
    );
    assert_eq!(hits[1].body["rule"], "hot");
    // Idle samples keep arriving: still one of each.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events: Vec<Value> = r
        .hits("/rules")
        .iter()
        .map(|h| h.body["event"].clone())
        .collect();
    assert_eq!(events, [json!("rule_fired"), json!("rule_recovered")]);
}
