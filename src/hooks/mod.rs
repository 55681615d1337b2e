//! Event hooks: on an event of a program, run the commands or HTTP requests of its
//! `hooks` section, with the event as JSON (stdin or body) and `WARDEN_EVENT_*` variables.
//! Each run's outcome becomes an event of the program (`hook_ran` / `hook_failed`), and a
//! failure a notice, so alerts can route it.
//!
//! Architecture invariant: hooks never block a program's actor. They follow the bus
//! (publishing never waits), runs queue in a bounded channel whose overflow is dropped and
//! counted, and a few runner tasks do the work with timeouts.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Event, Notice, NoticeField, Severity};
use crate::program::State;
use crate::program::hooks::HookSpec;
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::Supervisor;

/// Runs waiting for a runner before new ones are dropped.
const QUEUE: usize = 64;
/// Runs at once.
const RUNNERS: usize = 4;
/// Output kept per run, in bytes.
const OUTPUT_MAX: usize = 4096;

/// One hook to run for one event.
struct Run {
    program: String,
    kind: String,
    hook: HookSpec,
    event: Arc<Value>,
}

/// Counters of the hooks service.
#[derive(Default)]
pub struct HookStats {
    /// Runs dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// Starts the hooks service on `events` (subscribed before the supervisor boots, so
/// autostarts are seen); it ends when `shutdown` is cancelled.
pub fn start(
    sup: Supervisor,
    store: Store,
    bus: Bus,
    mut events: broadcast::Receiver<Arc<Event>>,
    shutdown: CancellationToken,
) -> Arc<HookStats> {
    let stats = Arc::new(HookStats::default());
    let (tx, rx) = mpsc::channel::<Run>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let http = reqwest::Client::new();
    for _ in 0..RUNNERS {
        let (rx, store, bus, http) = (rx.clone(), store.clone(), bus.clone(), http.clone());
        let token = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let run = tokio::select! {
                    _ = token.cancelled() => return,
                    r = async { rx.lock().await.recv().await } => r,
                };
                let Some(run) = run else { return };
                execute(&store, &bus, &http, run).await;
            }
        });
    }
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.recv() => e,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    st.dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        missed = n,
                        "hooks fell behind the event bus; events skipped"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some((program, kinds)) = kinds_of(&ev) else {
                continue;
            };
            let Ok(handle) = sup.get(&program) else {
                continue;
            };
            let spec = handle.snapshot().spec.clone();
            if spec.hooks.is_empty() {
                continue;
            }
            let data = Arc::new(serde_json::to_value(&*ev).unwrap_or(Value::Null));
            for kind in &kinds {
                for hook in spec.hooks.iter().filter(|h| h.matches(kind)) {
                    let run = Run {
                        program: program.clone(),
                        kind: kind.clone(),
                        hook: hook.clone(),
                        event: data.clone(),
                    };
                    if tx.try_send(run).is_err() {
                        let n = st.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            program,
                            kind,
                            dropped_total = n,
                            "hook queue full; run dropped"
                        );
                    }
                }
            }
        }
    });
    stats
}

/// The program and the event kinds hooks may name, for a bus event; `None` for events
/// hooks never see (console lines, samples, and hooks' own outcomes, which would loop).
fn kinds_of(ev: &Event) -> Option<(String, Vec<String>)> {
    match ev {
        Event::State(c) => {
            let mut kinds = vec!["state".to_string()];
            if (c.from, c.to) == (State::Starting, State::Running) {
                // "started" as alerts name it; "ready" for readiness-minded hooks.
                kinds.push("ready".to_string());
            }
            let specific = match (c.from, c.to) {
                (State::Starting, State::Running) => Some("started"),
                (_, State::Starting) => Some("starting"),
                (_, State::Stopped) => Some("stopped"),
                (_, State::Crashed) => Some("crashed"),
                (_, State::Fatal) => Some("fatal"),
                (_, State::Backoff) => Some("restarting"),
                (_, State::Waiting) => Some("waiting"),
                (_, State::Sleeping) => Some("sleeping"),
                _ => None,
            };
            kinds.extend(specific.map(str::to_string));
            Some((c.program.clone(), kinds))
        }
        Event::Notice(n) if !n.kind.starts_with("hook_") => {
            Some((n.program.clone()?, vec![n.kind.clone()]))
        }
        Event::Backup(b) => Some((
            b.program.clone(),
            vec![format!(
                "backup_{}",
                serde_json::to_value(b.kind).ok()?.as_str()?
            )],
        )),
        _ => None,
    }
}

/// Runs one hook and records its outcome.
async fn execute(store: &Store, bus: &Bus, http: &reqwest::Client, run: Run) {
    let timeout = Duration::from_secs(run.hook.timeout_seconds);
    let what = run
        .hook
        .command
        .clone()
        .or_else(|| run.hook.url.clone())
        .unwrap_or_default();
    let result = match (&run.hook.command, &run.hook.url) {
        (Some(cmd), _) => command(&run, cmd, timeout).await,
        (None, Some(url)) => request(http, &run, url, timeout).await,
        (None, None) => Err("neither command nor url".to_string()),
    };
    let (kind, message, output) = match &result {
        Ok(out) => (
            "hook_ran",
            format!("hook {what:?} ran for {}", run.kind),
            out.clone(),
        ),
        Err(why) => (
            "hook_failed",
            format!("hook {what:?} for {} failed: {why}", run.kind),
            String::new(),
        ),
    };
    let ev = NewEvent::now(
        Some(&run.program),
        kind,
        message.clone(),
        json!({"hook": what, "on": run.kind, "output": output}),
    );
    store.record_event(ev).await;
    if let Err(why) = result {
        tracing::warn!(program = %run.program, hook = %what, error = %why, "hook failed");
        bus.publish(Event::Notice(Notice {
            kind: "hook_failed".into(),
            severity: Severity::Warning,
            program: Some(run.program),
            ts: now_ms(),
            summary: "a hook failed".into(),
            fields: vec![
                NoticeField {
                    name: "Hook".into(),
                    value: what,
                },
                NoticeField {
                    name: "Error".into(),
                    value: why,
                },
            ],
        }));
    }
}

fn cut(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(&s[..s.len().min(OUTPUT_MAX)]);
    s.trim_end().to_string()
}

async fn command(run: &Run, cmd: &str, timeout: Duration) -> Result<String, String> {
    let message = run.event["message"]
        .as_str()
        .or_else(|| run.event["reason"].as_str())
        .or_else(|| run.event["summary"].as_str())
        .unwrap_or("");
    let mut c = tokio::process::Command::new(cmd);
    c.args(&run.hook.args)
        .env("WARDEN_PROGRAM", &run.program)
        .env("WARDEN_EVENT_KIND", &run.kind)
        .env("WARDEN_EVENT_PROGRAM", &run.program)
        .env("WARDEN_EVENT_MESSAGE", message)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = serde_json::to_vec(&*run.event).unwrap_or_default();
        // A hook that does not read its stdin must not block: write in the background.
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "did not finish within {} s; killed",
            timeout.as_secs()
        )),
        Ok(Err(e)) => Err(format!("lost track of it: {e}")),
        Ok(Ok(out)) => {
            let mut text = cut(&out.stdout);
            let err = cut(&out.stderr);
            if !err.is_empty() {
                text = if text.is_empty() {
                    err
                } else {
                    format!("{text}\n{err}")
                };
            }
            if out.status.success() {
                Ok(text)
            } else {
                Err(format!(
                    "{}{}",
                    crate::os::describe_exit(out.status).description,
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {text}")
                    }
                ))
            }
        }
    }
}

async fn request(
    http: &reqwest::Client,
    run: &Run,
    url: &str,
    timeout: Duration,
) -> Result<String, String> {
    let body = serde_json::to_vec(&json!({
        "program": run.program,
        "kind": run.kind,
        "event": &*run.event,
    }))
    .map_err(|e| e.to_string())?;
    let mut req = http
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json");
    if let Some(secret) = &run.hook.secret {
        // The same signature as alert webhooks, so one receiver checks both.
        let mac = crate::alerts::render::sign(secret.expose().as_bytes(), &body);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        req = req.header("x-warden-signature", format!("sha256={hex}"));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("HTTP {status}"))
    } else {
        Err(format!("the server answered HTTP {status}"))
    }
}
