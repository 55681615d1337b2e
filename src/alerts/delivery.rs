//! Draining the outbox: one dispatcher task and a fixed pool of sender tasks.
//!
//! The dispatcher reads each channel's oldest pending row (channels deliver in order),
//! skips channels that already have a request in flight, are paused by a 429 or have an
//! open circuit breaker, and hands due rows to the senders over a channel as deep as the
//! pool. Senders render, POST with a deadline, record the outcome on the row (after which
//! the row is the delivery log) and report back. So at most `senders` requests are ever in
//! flight, one per channel: a dead endpoint holds at most one sender, and the others keep
//! delivering. Memory does not depend on the outbox size: rows stay on disk until due.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::model::Notification;
use super::render::render;
use super::{Channel, ChannelSet};
use crate::config::AlertsConfig;
use crate::store::alerts::{AttemptRecord, DeliveryRow, status};
use crate::store::{Store, now_ms};

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx.
    Delivered(u16),
    /// Worth retrying: 408, 429, 5xx, no answer, connection failure.
    Retry {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Whether this counts against the endpoint's circuit breaker (a 429 does not:
        /// the endpoint is alive, only busy).
        breaker: bool,
    },
    /// Retrying cannot help: 4xx other than 408/429, an unsendable request.
    Permanent {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// Classifies an HTTP answer.
pub fn classify(status: u16, retry_after: Option<Duration>, body_excerpt: &str) -> Attempt {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let error = if body_excerpt.is_empty() {
        format!("HTTP {status} {reason}")
    } else {
        format!("HTTP {status} {reason}: {body_excerpt}")
    };
    match status {
        200..=299 => Attempt::Delivered(status),
        429 => Attempt::Retry {
            status: Some(status),
            error,
            retry_after,
            breaker: false,
        },
        408 | 500..=599 => Attempt::Retry {
            status: Some(status),
            error,
            retry_after,
            breaker: true,
        },
        _ => Attempt::Permanent {
            status: Some(status),
            error,
        },
    }
}

/// Parses `Retry-After`: seconds (fractions allowed, as Discord sends in bodies) or an
/// HTTP date.
pub fn parse_retry_after(v: &str, now_ms: i64) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v)
        .ok()?
        .timestamp_millis();
    Some(Duration::from_millis(
        u64::try_from(at - now_ms).unwrap_or(0),
    ))
}

/// Delay before retry number `attempts` (1 = the first retry): exponential from
/// `initial`, capped at `max`, with "equal jitter" (`jitter` in `[0, 1)` picks a point in
/// the upper half) so channels that failed together do not retry together.
pub fn retry_delay(attempts: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let d = crate::backoff::exponential(initial, max, attempts);
    crate::backoff::jitter_down(d, 0.5, 1.0 - jitter.clamp(0.0, 1.0))
}

/// What to write on the row after an attempt.
pub fn decide(
    attempt: &Attempt,
    row: &DeliveryRow,
    cfg: &AlertsConfig,
    now_ms: i64,
    jitter: f64,
) -> AttemptRecord {
    let attempts = row.attempts + 1;
    match attempt {
        Attempt::Delivered(code) => AttemptRecord {
            status: status::DELIVERED,
            next_at: now_ms,
            http_status: Some(*code),
            error: None,
        },
        Attempt::Permanent {
            status: code,
            error,
        } => AttemptRecord {
            status: status::FAILED,
            next_at: now_ms,
            http_status: *code,
            error: Some(format!("{error} (permanent: not retried)")),
        },
        Attempt::Retry {
            status: code,
            error,
            retry_after,
            ..
        } => {
            let backoff = retry_delay(attempts, cfg.retry_initial, cfg.retry_max, jitter);
            // Never before the server's Retry-After; never sooner than the first retry
            // delay either, so a server answering `429, Retry-After: 0` is not hammered.
            let wait = retry_after.map_or(backoff, |r| r.max(cfg.retry_initial));
            let next_at =
                now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4));
            let deadline = row
                .created_at
                .saturating_add(i64::try_from(cfg.max_age.as_millis()).unwrap_or(i64::MAX / 4));
            if next_at > deadline {
                AttemptRecord {
                    status: status::FAILED,
                    next_at,
                    http_status: *code,
                    error: Some(format!(
                        "{error} (gave up after {attempts} attempts: alerts.max_age_minutes reached)"
                    )),
                }
            } else {
                AttemptRecord {
                    status: status::PENDING,
                    next_at,
                    http_status: *code,
                    error: Some(error.clone()),
                }
            }
        }
    }
}

/// A channel's circuit breaker.
#[derive(Debug, Clone, Default)]
pub struct Breaker {
    /// Consecutive failures while closed.
    failures: u32,
    /// When open: requests wait until then; then one probe is let through.
    open_until: Option<Instant>,
    /// How many times in a row it opened (the pause doubles each time).
    opened: u32,
    /// A 429 pauses the channel without counting as a failure.
    paused_until: Option<Instant>,
}

/// Breaker state as the status API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerView {
    /// `closed` (delivering), `open` (paused after failures), `paused` (rate limited).
    pub state: &'static str,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Seconds until the next attempt is allowed, when not closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<u64>,
}

impl Breaker {
    /// Until when this channel must not be attempted.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        [self.open_until, self.paused_until]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }

    /// Feeds an attempt's outcome.
    pub fn record(&mut self, a: &Attempt, now: Instant, threshold: u32, base: Duration) {
        match a {
            Attempt::Delivered(_) | Attempt::Permanent { .. } => *self = Breaker::default(),
            Attempt::Retry {
                retry_after,
                breaker,
                ..
            } => {
                if let Some(r) = retry_after {
                    self.paused_until = Some(now + *r);
                }
                if !breaker {
                    return;
                }
                self.failures += 1;
                // A failed probe after an opening reopens at once, for twice as long.
                if self.failures >= threshold || self.opened > 0 {
                    let pause = base
                        .saturating_mul(1u32 << self.opened.min(10))
                        .min(base.saturating_mul(10));
                    self.open_until = Some(now + pause);
                    self.opened += 1;
                    self.failures = 0;
                }
            }
        }
    }

    /// For the status API.
    pub fn view(&self, now: Instant) -> BreakerView {
        let open = self.open_until.filter(|t| *t > now);
        let paused = self.paused_until.filter(|t| *t > now);
        let (state, until) = match (open, paused) {
            (Some(o), _) => ("open", Some(o)),
            (None, Some(p)) => ("paused", Some(p)),
            (None, None) => ("closed", None),
        };
        BreakerView {
            state,
            consecutive_failures: self.failures,
            retry_in_seconds: until.map(|t| t.duration_since(now).as_secs()),
        }
    }
}

/// Shared with the service: live figures for the status API.
#[derive(Default)]
pub struct Live {
    /// Breakers by channel id. A std mutex: held only to copy or replace an entry.
    pub breakers: Mutex<HashMap<i64, Breaker>>,
    /// Requests in flight.
    pub in_flight: std::sync::atomic::AtomicUsize,
}

struct Job {
    row: DeliveryRow,
    channel: Arc<Channel>,
}

struct Done {
    channel_id: i64,
    attempt: Attempt,
}

/// Handles of the running dispatcher and senders.
pub struct Pool {
    dispatcher: JoinHandle<()>,
    senders: Vec<JoinHandle<()>>,
    /// Ends the dispatcher (after the grace period).
    stop: CancellationToken,
    /// Aborts requests still in flight when the grace period is over.
    hard_stop: CancellationToken,
}

/// Everything the pool needs.
pub struct Deps {
    /// Database.
    pub store: Store,
    /// Settings.
    pub cfg: AlertsConfig,
    /// Current channels.
    pub channels: watch::Receiver<Arc<ChannelSet>>,
    /// Poked when rows are queued.
    pub wake: Arc<Notify>,
    /// Bumped after every recorded attempt (the "send test" endpoint waits on it).
    pub results: watch::Sender<u64>,
    /// Live figures.
    pub live: Arc<Live>,
    /// The HTTP client (shared connection pool, per-request deadline).
    pub http: reqwest::Client,
}

impl Pool {
    /// Starts the dispatcher and `cfg.senders` senders.
    pub fn start(d: Deps) -> Pool {
        let stop = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        // As deep as the pool: the dispatcher never queues more than the senders can
        // take; when it is full, `try_send` fails and the dispatcher waits for a result.
        let (job_tx, job_rx) = mpsc::channel::<Job>(d.cfg.senders);
        // Senders wait when it is full; the dispatcher drains it on every turn.
        let (done_tx, done_rx) = mpsc::channel::<Done>(d.cfg.senders);
        let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
        let senders = (0..d.cfg.senders)
            .map(|n| {
                tokio::spawn(crate::health::guarded(
                    format!("alert-sender {n}"),
                    sender(
                        job_rx.clone(),
                        done_tx.clone(),
                        d.store.clone(),
                        d.cfg.clone(),
                        d.http.clone(),
                        d.results.clone(),
                        hard_stop.clone(),
                    ),
                ))
            })
            .collect();
        let dispatcher = tokio::spawn(crate::health::guarded(
            "alert-dispatcher",
            dispatch(d, job_tx, done_rx, stop.clone()),
        ));
        Pool {
            dispatcher,
            senders,
            stop,
            hard_stop,
        }
    }

    /// Lets the dispatcher deliver what is due for up to the grace period, then aborts
    /// requests in flight (their rows stay pending and go out after the next start).
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.dispatcher.await;
        self.hard_stop.cancel();
        for s in self.senders {
            let _ = s.await;
        }
    }
}

async fn dispatch(
    d: Deps,
    job_tx: mpsc::Sender<Job>,
    mut done_rx: mpsc::Receiver<Done>,
    stop: CancellationToken,
) {
    let mut in_flight: HashSet<i64> = HashSet::new();
    let mut breakers: HashMap<i64, Breaker> = HashMap::new();
    let mut housekeeping = tokio::time::interval(Duration::from_secs(30));
    let mut stop_by: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let now_wall = now_ms();
        let mut wake_at: Option<Instant> = None;
        let mut due_left = false;
        match d.store.outbox_heads().await {
            Ok(mut heads) => {
                heads.sort_by_key(|h| (h.next_at, h.id));
                let channels = d.channels.borrow().clone();
                for head in heads {
                    if in_flight.contains(&head.channel_id) {
                        continue;
                    }
                    let Some(channel) = channels.get(head.channel_id) else {
                        continue;
                    };
                    if let Some(until) = breakers
                        .get(&head.channel_id)
                        .and_then(|b| b.blocked_until(now))
                    {
                        wake_at = Some(wake_at.map_or(until, |w| w.min(until)));
                        continue;
                    }
                    if head.next_at > now_wall {
                        let at = now + Duration::from_millis((head.next_at - now_wall) as u64);
                        wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                        continue;
                    }
                    let channel_id = head.channel_id;
                    match job_tx.try_send(Job { row: head, channel }) {
                        Ok(()) => {
                            in_flight.insert(channel_id);
                        }
                        Err(_) => {
                            // Every sender is busy; a result will wake us.
                            due_left = true;
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the alert outbox");
                wake_at = Some(now + Duration::from_secs(1));
            }
        }
        d.live
            .in_flight
            .store(in_flight.len(), std::sync::atomic::Ordering::Relaxed);
        crate::sync::lock(&d.live.breakers).clone_from(&breakers);
        if let Some(deadline) = stop_by {
            // Shutting down: finish early once nothing is in flight or due now.
            let nothing_due = !due_left && wake_at.is_none_or(|w| w > deadline);
            if (in_flight.is_empty() && nothing_due) || Instant::now() >= deadline {
                return;
            }
        }
        let sleep_to = wake_at.unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            Some(done) = done_rx.recv() => {
                in_flight.remove(&done.channel_id);
                breakers.entry(done.channel_id).or_default().record(
                    &done.attempt,
                    Instant::now(),
                    d.cfg.breaker_failures,
                    d.cfg.breaker_open,
                );
                // Take every other result already there before querying again.
                while let Ok(done) = done_rx.try_recv() {
                    in_flight.remove(&done.channel_id);
                    breakers.entry(done.channel_id).or_default().record(
                        &done.attempt,
                        Instant::now(),
                        d.cfg.breaker_failures,
                        d.cfg.breaker_open,
                    );
                }
            }
            _ = d.wake.notified() => {}
            _ = tokio::time::sleep_until(sleep_to) => {}
            _ = housekeeping.tick() => housekeep(&d.store, &d.cfg).await,
            _ = stop.cancelled(), if stop_by.is_none() => {
                stop_by = Some(Instant::now() + d.cfg.shutdown_grace);
            }
            _ = tokio::time::sleep_until(stop_by.unwrap_or(sleep_to)), if stop_by.is_some() => return,
        }
    }
}

/// Expires rows past the maximum age and prunes the delivery log.
async fn housekeep(store: &Store, cfg: &AlertsConfig) {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
    match store.outbox_expire(now_ms() - ms(cfg.max_age)).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            expired = n,
            "alert notifications were not delivered within alerts.max_age_minutes and were marked failed"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot expire old alert notifications"),
    }
    if let Err(e) = store
        .outbox_prune(now_ms() - ms(cfg.log_retention), 5000)
        .await
    {
        tracing::warn!(error = %e, "cannot prune the alert delivery log");
    }
}

async fn sender(
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::Sender<Done>,
    store: Store,
    cfg: AlertsConfig,
    http: reqwest::Client,
    results: watch::Sender<u64>,
    hard_stop: CancellationToken,
) {
    loop {
        let job = {
            let mut rx = jobs.lock().await;
            tokio::select! {
                j = rx.recv() => j,
                _ = hard_stop.cancelled() => None,
            }
        };
        let Some(job) = job else { return };
        let attempt = tokio::select! {
            a = attempt(&http, &job) => a,
            // The row stays pending: delivered after the next start (at least once).
            _ = hard_stop.cancelled() => return,
        };
        let rec = decide(&attempt, &job.row, &cfg, now_ms(), rand::random::<f64>());
        if let Err(e) = store.outbox_record(job.row.id, rec).await {
            tracing::error!(error = %e, "cannot record an alert delivery attempt");
        }
        results.send_modify(|n| *n = n.wrapping_add(1));
        log_attempt(&job, &attempt);
        if done
            .send(Done {
                channel_id: job.row.channel_id,
                attempt,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Logs an attempt by channel name and delivery id, never by URL (it may hold a token).
fn log_attempt(job: &Job, attempt: &Attempt) {
    let (channel, delivery) = (&job.channel.spec.name, job.row.id);
    match attempt {
        Attempt::Delivered(_) => tracing::debug!(%channel, delivery, "alert delivered"),
        Attempt::Retry { error, .. } => {
            tracing::info!(%channel, delivery, %error, "alert delivery failed; will retry")
        }
        Attempt::Permanent { error, .. } => {
            tracing::warn!(%channel, delivery, %error, "alert delivery failed permanently")
        }
    }
}

/// One POST. Errors are described without the URL (it may hold a token).
async fn attempt(http: &reqwest::Client, job: &Job) -> Attempt {
    let n: Notification = match serde_json::from_str(&job.row.notification) {
        Ok(n) => n,
        Err(e) => {
            return Attempt::Permanent {
                status: None,
                error: format!("stored notification is unreadable: {e}"),
            };
        }
    };
    let out = match render(&job.channel.spec.target, &n, job.row.id) {
        Ok(o) => o,
        Err(e) => {
            return Attempt::Permanent {
                status: None,
                error: e,
            };
        }
    };
    let mut req = http.post(&out.url).body(out.body);
    for (k, v) in out.headers {
        req = req.header(k, v);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return transport_error(e),
    };
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms()));
    let excerpt = if (200..300).contains(&code) {
        String::new()
    } else {
        body_excerpt(resp).await
    };
    classify(code, retry_after, &excerpt)
}

/// The first 200 characters of an error answer (e.g. Discord's "Invalid Form Body"),
/// read in chunks so a huge answer is never buffered.
async fn body_excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < 1024 {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

fn transport_error(e: reqwest::Error) -> Attempt {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if timed_out {
        msg = format!("no answer in time ({msg})");
    }
    Attempt::Retry {
        status: None,
        error: msg,
        retry_after: None,
        breaker: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AlertsConfig {
        let mut c = crate::config::Config::defaults().expect("defaults").alerts;
        c.retry_initial = Duration::from_secs(2);
        c.retry_max = Duration::from_secs(300);
        c.max_age = Duration::from_secs(3600);
        c
    }

    fn row(attempts: u32, created_at: i64) -> DeliveryRow {
        DeliveryRow {
            id: 1,
            channel_id: 1,
            created_at,
            severity: 2,
            event: "crashed".into(),
            program: None,
            notification: "{}".into(),
            status: "pending".into(),
            attempts,
            next_at: created_at,
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            done_at: None,
        }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(204, None, ""), Attempt::Delivered(204));
        assert!(matches!(
            classify(500, None, ""),
            Attempt::Retry { breaker: true, .. }
        ));
        assert!(matches!(
            classify(408, None, ""),
            Attempt::Retry { breaker: true, .. }
        ));
        assert!(matches!(
            classify(429, Some(Duration::from_secs(2)), ""),
            Attempt::Retry {
                breaker: false,
                retry_after: Some(_),
                ..
            }
        ));
        for code in [400, 401, 403, 404, 410, 301] {
            assert!(
                matches!(classify(code, None, ""), Attempt::Permanent { .. }),
                "{code}"
            );
        }
        let Attempt::Permanent { error, .. } =
            classify(400, None, "{\"message\": \"Invalid Form Body\"}")
        else {
            panic!("400 is permanent");
        };
        assert_eq!(
            error,
            "HTTP 400 Bad Request: {\"message\": \"Invalid Form Body\"}"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("2", 0), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("0.5", 0),
            Some(Duration::from_millis(500))
        );
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .expect("date")
            .timestamp_millis();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let i = Duration::from_secs(2);
        let m = Duration::from_secs(60);
        assert_eq!(
            retry_delay(1, i, m, 0.999_999).as_secs(),
            1,
            "first retry ≈ 1-2 s"
        );
        assert_eq!(retry_delay(1, i, m, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(3, i, m, 0.0), Duration::from_secs(4));
        assert_eq!(retry_delay(30, i, m, 0.0), Duration::from_secs(30));
        assert!(retry_delay(30, i, m, 1.0) <= m);
    }

    #[test]
    fn decisions_follow_the_policy() {
        let c = cfg();
        let now = 1_000_000;
        let r = decide(&classify(500, None, ""), &row(0, now), &c, now, 0.0);
        assert_eq!(r.status, status::PENDING);
        assert_eq!(r.next_at, now + 1000);
        let r = decide(
            &classify(429, Some(Duration::from_secs(7)), ""),
            &row(0, now),
            &c,
            now,
            0.0,
        );
        assert_eq!(
            (r.status, r.next_at),
            (status::PENDING, now + 7000),
            "Retry-After wins"
        );
        let r = decide(&classify(404, None, ""), &row(0, now), &c, now, 0.0);
        assert_eq!(r.status, status::FAILED);
        assert!(r.error.is_some_and(|e| e.contains("permanent")));
        // Too old to retry again.
        let r = decide(
            &classify(503, None, ""),
            &row(9, now - 3_599_000),
            &c,
            now,
            0.0,
        );
        assert_eq!(r.status, status::FAILED);
        let r = decide(&Attempt::Delivered(200), &row(2, now), &c, now, 0.0);
        assert_eq!((r.status, r.http_status), (status::DELIVERED, Some(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_failures_probes_and_closes_on_success() {
        let base = Duration::from_secs(30);
        let fail = classify(503, None, "");
        let mut b = Breaker::default();
        let now = Instant::now();
        b.record(&fail, now, 3, base);
        b.record(&fail, now, 3, base);
        assert_eq!(b.blocked_until(now), None, "closed below the threshold");
        b.record(&fail, now, 3, base);
        assert_eq!(b.blocked_until(now), Some(now + base));
        assert_eq!(b.view(now).state, "open");
        // The probe after the pause fails: open again, twice as long.
        tokio::time::advance(base).await;
        let later = Instant::now();
        assert_eq!(b.blocked_until(later), None, "half-open: one probe may go");
        b.record(&fail, later, 3, base);
        assert_eq!(b.blocked_until(later), Some(later + base * 2));
        // A success closes it.
        b.record(&Attempt::Delivered(200), later, 3, base);
        assert_eq!(b.blocked_until(later), None);
        assert_eq!(b.view(later).state, "closed");
        // A 429 pauses without counting as a failure.
        b.record(
            &classify(429, Some(Duration::from_secs(5)), ""),
            later,
            1,
            base,
        );
        assert_eq!(b.view(later).state, "paused");
        assert_eq!(b.view(later).consecutive_failures, 0);
    }
}
