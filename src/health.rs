//! warden watching its own parts: every long-lived internal task or thread (store writer,
//! sampler, metrics writer, alert engine and senders, schedule loop, games loop, pruner,
//! program actors) holds a [`PartGuard`] while it runs. A part that ends while warden is
//! not shutting down — a panic, an error, a loop that returned — is marked down with its
//! cause and logged; `/health` answers 503 naming it until it is back. Parts that can be
//! rebuilt from cloneable handles run under [`supervise`], which restarts them with a
//! growing delay.
//!
//! Process-wide, like the log counters: the registry is written from plain threads
//! (store writer, sampler) and async tasks alike, and read by `/health`. A std mutex,
//! held only to update or copy a small map, never across `.await`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::text_enum::text_enum;

/// Set when warden begins to shut down: parts ending from then on are not failures.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

static PARTS: Mutex<BTreeMap<String, PartView>> = Mutex::new(BTreeMap::new());

text_enum! {
    /// Whether a part of warden runs.
    pub enum PartStatus {
        /// It runs.
        Ok = "ok",
        /// It ended unexpectedly.
        Down = "down",
    }
}

/// One part as `/health` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartView {
    /// The part, e.g. `store-writer`, `sampler`, `program demo`.
    pub name: String,
    /// `ok` while it runs, `down` after it ended unexpectedly.
    pub status: PartStatus,
    /// Times it was restarted after a failure.
    pub restarts: u32,
    /// Why it last ended unexpectedly, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

fn update(name: &str, f: impl FnOnce(&mut PartView)) {
    {
        let mut parts = crate::sync::lock(&PARTS);
        let part = parts.entry(name.to_string()).or_insert_with(|| PartView {
            name: name.to_string(),
            status: PartStatus::Ok,
            restarts: 0,
            last_failure: None,
        });
        f(part);
    }
}

/// Marks the start of warden's shutdown: parts ending from now on are expected to.
pub fn shutting_down() {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
}

fn is_shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::SeqCst)
}

/// Every known part (running and down), by name.
pub fn parts() -> Vec<PartView> {
    crate::sync::lock(&PARTS).values().cloned().collect()
}

/// Reports that a part failed and is down until [`restarted`] (e.g. a thread that caught
/// a panic and will start its loop afresh).
pub fn failed(name: &str, cause: &str) {
    tracing::error!(part = name, cause, "a part of warden failed");
    update(name, |p| {
        p.status = PartStatus::Down;
        p.last_failure = Some(cause.to_string());
    });
}

/// Reports that a part which [`failed`] runs again.
pub fn restarted(name: &str) {
    tracing::info!(part = name, "a part of warden runs again after a failure");
    update(name, |p| {
        p.status = PartStatus::Ok;
        p.restarts += 1;
    });
}

/// Held by a running part. Dropped without [`PartGuard::finish`] while warden is not
/// shutting down, it marks the part down: this is how a panic or an early return of a
/// task or thread becomes visible.
pub struct PartGuard {
    name: String,
    finished: bool,
}

impl PartGuard {
    /// The part ended on purpose (a program deleted, a loop told to stop).
    pub fn finish(mut self) {
        self.finished = true;
        crate::sync::lock(&PARTS).remove(&self.name);
    }
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        if self.finished || is_shutting_down() {
            return;
        }
        let cause = if std::thread::panicking() {
            "panicked (see the panic logged before this line)"
        } else {
            "ended unexpectedly (a panic is logged before this line if there was one)"
        };
        tracing::error!(part = %self.name, cause, "a part of warden stopped");
        update(&self.name, |p| {
            p.status = PartStatus::Down;
            p.last_failure = Some(cause.to_string());
        });
    }
}

/// Registers a running part; keep the guard for as long as it runs.
pub fn watch(name: impl Into<String>) -> PartGuard {
    let name = name.into();
    update(&name, |p| p.status = PartStatus::Ok);
    PartGuard {
        name,
        finished: false,
    }
}

/// `fut` as a watched part: if it is dropped before it completes (its task panicked or
/// was aborted) while warden is not shutting down, the part is marked down.
pub async fn guarded<F: Future<Output = ()>>(name: impl Into<String>, fut: F) {
    let part = watch(name);
    fut.await;
    part.finish();
}

/// Runs the task that `make` builds and builds it again whenever it ends while `shutdown`
/// is not cancelled (a panic included), after 1 s, doubling up to 60 s. Only for parts
/// whose state lives in the handles `make` clones, so a fresh run loses nothing.
pub fn supervise<F, Fut>(
    name: &'static str,
    shutdown: CancellationToken,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        loop {
            update(name, |p| p.status = PartStatus::Ok);
            let mut task = tokio::spawn(make());
            // At shutdown the part ends by itself (it watches the same token); nothing
            // here waits for it.
            let ended = tokio::select! {
                ended = &mut task => ended,
                _ = shutdown.cancelled() => return,
            };
            if shutdown.is_cancelled() || is_shutting_down() {
                return;
            }
            let cause = match ended {
                Ok(()) => "ended unexpectedly".to_string(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                Err(_) => "was cancelled".to_string(),
            };
            tracing::error!(part = name, cause = %cause, retry_in_s = delay.as_secs(), "a part of warden stopped; restarting it");
            update(name, |p| {
                p.status = PartStatus::Down;
                p.last_failure = Some(cause.clone());
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(60));
            update(name, |p| p.restarts += 1);
            tracing::info!(part = name, "restarting a part of warden");
        }
    })
}

/// The message of a caught panic.
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// In debug builds only, a part named in `WARDEN_FAULT_PANIC` panics once, so tests can
/// prove that a failing part is noticed and restarted. Release builds have no such hook.
pub fn injected_fault(name: &str) {
    #[cfg(debug_assertions)]
    {
        static FIRED: AtomicBool = AtomicBool::new(false);
        if std::env::var("WARDEN_FAULT_PANIC").is_ok_and(|v| v == name)
            && !FIRED.swap(true, Ordering::SeqCst)
        {
            panic!("injected fault in {name} (WARDEN_FAULT_PANIC)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_part_is_marked_down_and_restarted() {
        let shutdown = CancellationToken::new();
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let r = runs.clone();
        let token = shutdown.clone();
        let h = supervise("unit-part", shutdown.clone(), move || {
            let (r, token) = (r.clone(), token.clone());
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom");
                }
                // Like every real part: runs until warden shuts down.
                token.cancelled().await;
            }
        });
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if runs.load(Ordering::SeqCst) >= 2 {
                break;
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let p = parts().into_iter().find(|p| p.name == "unit-part");
        let p = p.expect("registered");
        assert_eq!((p.status, p.restarts), (PartStatus::Ok, 1));
        assert!(p.last_failure.unwrap_or_default().contains("boom"));
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), h).await;
        assert!(
            ended.is_ok(),
            "a supervised part ends when warden shuts down"
        );
    }

    #[test]
    fn a_guard_dropped_without_finish_marks_the_part_down() {
        drop(watch("unit-guard"));
        let p = parts().into_iter().find(|p| p.name == "unit-guard");
        assert_eq!(p.map(|p| p.status), Some(PartStatus::Down));
        watch("unit-guard-2").finish();
        assert!(parts().iter().all(|p| p.name != "unit-guard-2"));
    }
}
