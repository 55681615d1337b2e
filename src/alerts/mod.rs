//! Alerts: rules and channels, and a durable, bounded delivery queue.
//!
//! Data flow: bus events (lifecycle changes, samples, notices) → `engine` (mapping and
//! `rules`) → one outbox row per (notification, matching channel), committed to SQLite
//! before anything is sent → `delivery` (a dispatcher and a fixed pool of senders) →
//! `render` per channel kind → HTTP. Outcomes are written back on the rows, which are the
//! per-channel delivery log.
//!
//! Architecture invariant: the number of tasks, threads and in-memory items does not
//! depend on how many notifications are queued or how slow an endpoint is: the queue
//! lives on disk, requests in flight are at most `alerts.senders` (one per channel).
//! Webhook URLs and tokens are secrets: they are stored as given, never logged, and
//! masked in every answer (`ChannelSpec::masked`).

mod delivery;
mod engine;
pub mod model;
pub(crate) mod render;
mod restart_when;
pub mod rules;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::bus::{Event, Notice, SampleTick, Severity};
use crate::config::AlertsConfig;
use crate::program::FieldError;
use crate::store::alerts::{Definitions, DeliveryRow, NewDelivery};
use crate::store::{Store, StoreError, now_ms};
use crate::supervisor::Supervisor;
pub use delivery::BreakerView;
use delivery::{Live, Pool};
use engine::Stats;
use model::{ChannelSpec, Notification, RuleSpec};
use rules::Rule;

/// Errors of alert operations, phrased for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// No such channel.
    #[error("no alert channel named '{0}'")]
    NoChannel(String),
    /// No such rule.
    #[error("no alert rule named '{0}'")]
    NoRule(String),
    /// The definition is invalid.
    #[error("the definition is invalid")]
    Invalid(Vec<FieldError>),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for alerts: {0}")]
    Client(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A channel with its row id.
#[derive(Debug)]
pub struct Channel {
    /// Row id.
    pub id: i64,
    /// Definition (with secrets).
    pub spec: ChannelSpec,
}

/// Every channel, replaced as a whole on change (readers take a cheap snapshot).
#[derive(Debug, Default)]
pub struct ChannelSet {
    by_id: BTreeMap<i64, Arc<Channel>>,
}

impl ChannelSet {
    /// By row id.
    pub fn get(&self, id: i64) -> Option<Arc<Channel>> {
        self.by_id.get(&id).cloned()
    }

    /// By name.
    pub fn named(&self, name: &str) -> Option<Arc<Channel>> {
        self.by_id.values().find(|c| c.spec.name == name).cloned()
    }

    /// All, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Channel>> {
        self.by_id.values()
    }
}

/// Every rule: definitions (for the API) and the enabled ones compiled (for the engine).
#[derive(Debug, Default)]
pub struct RuleBook {
    specs: Vec<RuleSpec>,
    compiled: Vec<Arc<Rule>>,
}

/// A channel as the API shows it: secrets masked, plus its breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// The definition, secrets masked.
    #[serde(flatten)]
    pub spec: ChannelSpec,
    /// Delivery health of the endpoint.
    pub breaker: BreakerView,
}

/// One delivery (an outbox row) as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Id; also sent as `X-Warden-Delivery` / `id` so receivers can deduplicate.
    pub id: i64,
    /// Unix ms when queued.
    pub queued_ms: i64,
    /// Event kind.
    pub event: String,
    /// Severity.
    pub severity: Severity,
    /// Program concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The notification's title.
    pub title: String,
    /// `pending`, `delivered`, `failed` or `dropped`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix ms of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_ms: Option<i64>,
    /// HTTP status of the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// The last error (never contains the URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Unix ms of the next attempt, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_ms: Option<i64>,
    /// Unix ms when it was delivered, failed or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<i64>,
}

impl DeliveryView {
    fn of(r: DeliveryRow) -> DeliveryView {
        let n: Option<Notification> = serde_json::from_str(&r.notification).ok();
        let severity = match r.severity {
            0 => Severity::Info,
            1 => Severity::Warning,
            _ => Severity::Critical,
        };
        let pending = r.status == crate::store::alerts::status::PENDING;
        DeliveryView {
            id: r.id,
            queued_ms: r.created_at,
            event: r.event,
            severity,
            program: r.program,
            title: n.map(|n| n.title).unwrap_or_default(),
            status: r.status,
            attempts: r.attempts,
            last_attempt_ms: r.last_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            next_attempt_ms: pending.then_some(r.next_at),
            done_ms: r.done_at,
        }
    }
}

/// Outbox and delivery figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertStatus {
    /// Notifications waiting for delivery.
    pub pending: u64,
    /// Delivered notifications still in the log.
    pub delivered: u64,
    /// Failed notifications still in the log.
    pub failed: u64,
    /// Dropped notifications still in the log.
    pub dropped: u64,
    /// Notifications dropped since warden started (outbox full).
    pub dropped_since_start: u64,
    /// Bus events the engine missed since warden started (it fell behind).
    pub missed_events: u64,
    /// Requests in flight now (at most `senders`).
    pub in_flight: usize,
    /// Size of the sender pool.
    pub senders: usize,
    /// The outbox cap.
    pub outbox_max_pending: usize,
    /// Tasks alive in warden's runtime (all of warden, not only alerts): flat under load.
    pub runtime_tasks: usize,
}

/// The alerts service. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cfg: AlertsConfig,
    channels: watch::Sender<Arc<ChannelSet>>,
    rules: watch::Sender<Arc<RuleBook>>,
    wake: Arc<Notify>,
    results: watch::Sender<u64>,
    live: Arc<Live>,
    stats: Arc<Stats>,
    /// Serialises definition changes so the store and the snapshots agree.
    mutate: tokio::sync::Mutex<()>,
    /// The running tasks, taken at shutdown. A std mutex: held only to take the value.
    running: std::sync::Mutex<Option<Running>>,
}

struct Running {
    engine: tokio::task::JoinHandle<()>,
    engine_stop: CancellationToken,
    pool: Pool,
}

/// A notice from warden itself (started, stopping).
pub fn warden_notice(kind: &str, severity: Severity, summary: String) -> Event {
    Event::Notice(Notice {
        kind: kind.to_string(),
        severity,
        program: None,
        ts: now_ms(),
        summary,
        fields: Vec::new(),
    })
}

impl Alerts {
    /// Loads channels and rules and starts the engine (following `events`, a bus
    /// subscription taken before anything worth alerting was published, and `samples`
    /// while a rule judges them), the dispatcher and the senders. Undelivered
    /// notifications of a previous run go out first.
    pub async fn start(
        store: Store,
        events: broadcast::Receiver<Arc<Event>>,
        samples: watch::Receiver<Arc<SampleTick>>,
        sup: Supervisor,
        cfg: AlertsConfig,
    ) -> Result<Alerts, AlertError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured; following it would also send the
            // payload (and headers) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| AlertError::Client(e.to_string()))?;
        let (channels, channels_rx) = watch::channel(Arc::new(ChannelSet::default()));
        let (rules, rules_rx) = watch::channel(Arc::new(RuleBook::default()));
        let (results, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            store: store.clone(),
            cfg: cfg.clone(),
            channels,
            rules,
            wake: Arc::new(Notify::new()),
            results,
            live: Arc::new(Live::default()),
            stats: Arc::new(Stats::default()),
            mutate: tokio::sync::Mutex::new(()),
            running: std::sync::Mutex::new(None),
        });
        let alerts = Alerts { inner };
        alerts.reload_channels().await?;
        alerts.reload_rules().await?;
        let i = &alerts.inner;
        let engine_stop = CancellationToken::new();
        let engine = tokio::spawn(crate::health::guarded(
            "alert-engine",
            engine::run(
                engine::Deps {
                    store: store.clone(),
                    sup,
                    cfg: cfg.clone(),
                    channels: channels_rx.clone(),
                    rules: rules_rx,
                    wake: i.wake.clone(),
                    stats: i.stats.clone(),
                },
                events,
                samples,
                engine_stop.clone(),
            ),
        ));
        let pool = Pool::start(delivery::Deps {
            store,
            cfg,
            channels: channels_rx,
            wake: i.wake.clone(),
            results: i.results.clone(),
            live: i.live.clone(),
            http,
        });
        {
            let mut r = crate::sync::lock(&i.running);
            *r = Some(Running {
                engine,
                engine_stop,
                pool,
            });
        }
        Ok(alerts)
    }

    /// Stops in order: the engine handles every event already published (so "warden
    /// stopping" and the programs' stops are queued), the senders deliver what is due
    /// within `alerts.shutdown_grace_seconds`, and whatever is left stays queued for the
    /// next start.
    pub async fn shutdown(&self) {
        let running = crate::sync::lock(&self.inner.running).take();
        let Some(r) = running else { return };
        r.engine_stop.cancel();
        let _ = r.engine.await;
        r.pool.shutdown().await;
    }

    async fn reload_channels(&self) -> Result<(), AlertError> {
        let rows = self
            .inner
            .store
            .alert_definitions(Definitions::Channels)
            .await?;
        let mut set = ChannelSet::default();
        for row in rows {
            match serde_json::from_str::<ChannelSpec>(&row.spec) {
                Ok(spec) => {
                    set.by_id
                        .insert(row.id, Arc::new(Channel { id: row.id, spec }));
                }
                Err(e) => {
                    tracing::error!(channel = %row.name, error = %e, "stored alert channel is unreadable; ignored")
                }
            }
        }
        self.inner.channels.send_replace(Arc::new(set));
        Ok(())
    }

    async fn reload_rules(&self) -> Result<(), AlertError> {
        let rows = self
            .inner
            .store
            .alert_definitions(Definitions::Rules)
            .await?;
        let mut book = RuleBook::default();
        for row in rows {
            let spec = match serde_json::from_str::<RuleSpec>(&row.spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(rule = %row.name, error = %e, "stored alert rule is unreadable; ignored");
                    continue;
                }
            };
            match Rule::compile(&spec) {
                Ok(Some(rule)) => book.compiled.push(Arc::new(rule)),
                Ok(None) => {}
                Err(_) => {
                    tracing::error!(rule = %row.name, "stored alert rule is invalid; ignored")
                }
            }
            book.specs.push(spec);
        }
        self.inner.rules.send_replace(Arc::new(book));
        Ok(())
    }

    fn view(&self, c: &Channel) -> ChannelView {
        let now = tokio::time::Instant::now();
        let breaker = crate::sync::lock(&self.inner.live.breakers)
            .get(&c.id)
            .map(|b| b.view(now))
            .unwrap_or_else(|| delivery::Breaker::default().view(now));
        ChannelView {
            spec: c.spec.masked(),
            breaker,
        }
    }

    /// Every channel, secrets masked.
    pub fn channels(&self) -> Vec<ChannelView> {
        let set = self.inner.channels.borrow().clone();
        let mut out: Vec<ChannelView> = set.iter().map(|c| self.view(c)).collect();
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        out
    }

    fn find(&self, name: &str) -> Result<Arc<Channel>, AlertError> {
        self.inner
            .channels
            .borrow()
            .named(name)
            .ok_or_else(|| AlertError::NoChannel(name.to_string()))
    }

    /// One channel, secrets masked.
    pub fn channel(&self, name: &str) -> Result<ChannelView, AlertError> {
        Ok(self.view(self.find(name)?.as_ref()))
    }

    /// Validates and stores a new channel.
    pub async fn create_channel(&self, spec: ChannelSpec) -> Result<ChannelView, AlertError> {
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(AlertError::Invalid(problems));
        }
        let _g = self.inner.mutate.lock().await;
        let json = serde_json::to_string(&spec).map_err(StoreError::from)?;
        self.inner
            .store
            .insert_alert_definition(Definitions::Channels, spec.name.clone(), json)
            .await?;
        self.reload_channels().await?;
        self.channel(&spec.name)
    }

    /// Replaces a channel's definition (its queue and log stay).
    pub async fn update_channel(&self, spec: ChannelSpec) -> Result<ChannelView, AlertError> {
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(AlertError::Invalid(problems));
        }
        let _g = self.inner.mutate.lock().await;
        let json = serde_json::to_string(&spec).map_err(StoreError::from)?;
        self.inner
            .store
            .update_alert_definition(Definitions::Channels, spec.name.clone(), json)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => AlertError::NoChannel(spec.name.clone()),
                other => other.into(),
            })?;
        self.reload_channels().await?;
        self.channel(&spec.name)
    }

    /// Deletes a channel with its queue and log.
    pub async fn delete_channel(&self, name: &str) -> Result<(), AlertError> {
        let _g = self.inner.mutate.lock().await;
        self.inner
            .store
            .delete_alert_definition(Definitions::Channels, name.to_string())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => AlertError::NoChannel(name.to_string()),
                other => other.into(),
            })?;
        self.reload_channels().await
    }

    /// Queues a test message for one channel (whatever its filters and even when
    /// disabled) and waits up to `wait` for the first attempt's outcome.
    pub async fn test_channel(
        &self,
        name: &str,
        wait: Duration,
    ) -> Result<DeliveryView, AlertError> {
        let ch = self.find(name)?;
        let n = Notification {
            event: "test".into(),
            severity: Severity::Info,
            program: None,
            display_name: None,
            title: "Test message from warden".into(),
            message: format!("If you can read this, alert channel '{name}' works."),
            fields: Vec::new(),
            ts: now_ms(),
            exit: None,
            last_lines: Vec::new(),
            rule: None,
            test: true,
        };
        let mut results = self.inner.results.subscribe();
        let item = NewDelivery {
            channel_id: ch.id,
            severity: engine::rank(n.severity),
            event: n.event.clone(),
            program: None,
            notification: serde_json::to_string(&n).map_err(StoreError::from)?,
        };
        let q = self
            .inner
            .store
            .outbox_enqueue(vec![item], self.inner.cfg.outbox_max_pending)
            .await?;
        self.inner.wake.notify_one();
        let id = q.ids.first().copied().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let row = self
                .inner
                .store
                .outbox_row(id)
                .await?
                .ok_or_else(|| AlertError::NoChannel(name.to_string()))?;
            let settled = row.attempts > 0 || row.status != crate::store::alerts::status::PENDING;
            if settled || tokio::time::Instant::now() >= deadline {
                return Ok(DeliveryView::of(row));
            }
            let _ = tokio::time::timeout_at(deadline, results.changed()).await;
        }
    }

    /// A page of a channel's delivery log, newest first.
    pub async fn deliveries(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, AlertError> {
        let ch = self.find(name)?;
        let rows = self.inner.store.outbox_log(ch.id, before, limit).await?;
        Ok(rows.into_iter().map(DeliveryView::of).collect())
    }

    /// Every rule.
    pub fn rules(&self) -> Vec<RuleSpec> {
        self.inner.rules.borrow().specs.clone()
    }

    /// One rule.
    pub fn rule(&self, name: &str) -> Result<RuleSpec, AlertError> {
        self.inner
            .rules
            .borrow()
            .specs
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .ok_or_else(|| AlertError::NoRule(name.to_string()))
    }

    /// Validates and stores a new rule; it applies at once.
    pub async fn create_rule(&self, spec: RuleSpec) -> Result<RuleSpec, AlertError> {
        Rule::compile(&spec).map_err(AlertError::Invalid)?;
        let _g = self.inner.mutate.lock().await;
        let json = serde_json::to_string(&spec).map_err(StoreError::from)?;
        self.inner
            .store
            .insert_alert_definition(Definitions::Rules, spec.name.clone(), json)
            .await?;
        self.reload_rules().await?;
        Ok(spec)
    }

    /// Replaces a rule; an unchanged condition keeps its firing state.
    pub async fn update_rule(&self, spec: RuleSpec) -> Result<RuleSpec, AlertError> {
        Rule::compile(&spec).map_err(AlertError::Invalid)?;
        let _g = self.inner.mutate.lock().await;
        let json = serde_json::to_string(&spec).map_err(StoreError::from)?;
        self.inner
            .store
            .update_alert_definition(Definitions::Rules, spec.name.clone(), json)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => AlertError::NoRule(spec.name.clone()),
                other => other.into(),
            })?;
        self.reload_rules().await?;
        Ok(spec)
    }

    /// Deletes a rule.
    pub async fn delete_rule(&self, name: &str) -> Result<(), AlertError> {
        let _g = self.inner.mutate.lock().await;
        self.inner
            .store
            .delete_alert_definition(Definitions::Rules, name.to_string())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => AlertError::NoRule(name.to_string()),
                other => other.into(),
            })?;
        self.reload_rules().await
    }

    /// Outbox and delivery figures.
    pub async fn status(&self) -> Result<AlertStatus, AlertError> {
        let c = self.inner.store.outbox_counts().await?;
        Ok(AlertStatus {
            pending: c.pending,
            delivered: c.delivered,
            failed: c.failed,
            dropped: c.dropped,
            dropped_since_start: self.inner.stats.dropped.load(Ordering::Relaxed),
            missed_events: self.inner.stats.lagged.load(Ordering::Relaxed),
            in_flight: self.inner.live.in_flight.load(Ordering::Relaxed),
            senders: self.inner.cfg.senders,
            outbox_max_pending: self.inner.cfg.outbox_max_pending,
            runtime_tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, ProgramSample};
    use crate::program::ProgramSpec;
    use crate::supervisor::Ctx;

    fn sample(program: &str, cpu: f64) -> Arc<SampleTick> {
        let one = ProgramSample {
            program: program.into(),
            ts: now_ms(),
            cpu_percent: cpu,
            memory_bytes: 0,
            virtual_bytes: 0,
            threads: 1,
            open_files: 0,
            disk_read_bps: 0.0,
            disk_write_bps: 0.0,
            players: None,
        };
        Arc::new(SampleTick::new(vec![one], None))
    }

    /// Outbox rows of `channel`, oldest first, as (event, title).
    async fn queued(alerts: &Alerts, channel: &str) -> Vec<(String, String)> {
        let mut rows = alerts
            .deliveries(channel, None, 100)
            .await
            .expect("deliveries");
        rows.reverse();
        rows.into_iter().map(|d| (d.event, d.title)).collect()
    }

    async fn wait_for(alerts: &Alerts, channel: &str, n: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = queued(alerts, channel).await;
            if rows.len() >= n || tokio::time::Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Synthetic samples through the real engine (bus → rules → outbox): the resource
    /// rule fires once, recovers once, and its restart action restarts the program. The
    /// end-to-end version with the real sampler is added when `metrics` is merged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_fire_a_rule_once_recover_once_and_restart_the_program() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("store");
        let bus = Bus::new();
        let events = bus.subscribe();
        let cfg = crate::config::Config::defaults().expect("defaults");
        let ctx = Ctx {
            store: store.clone(),
            bus: bus.clone(),
            cfg: Arc::new(cfg.supervisor.clone()),
            logs_dir: dir.path().join("logs"),
            stop_hook: None,
            sleep_guard: None,
        };
        let sup = Supervisor::boot(ctx).await.expect("boot");
        // A long sleeper: `sleep` on Unix; on Windows (no `sleep` there) this test binary
        // acting as one (see `os::windows::tests::sleeper`), stopped by killing its job:
        // the restart action must not wait for a CTRL_BREAK that Wine cannot deliver.
        #[cfg(unix)]
        let program = serde_json::json!({"command": "sleep", "args": ["30"]});
        #[cfg(windows)]
        let program = serde_json::json!({
            "command": std::env::current_exe().expect("own exe"),
            "args": ["--exact", "os::windows::tests::sleeper", "--nocapture"],
            "env": {"WARDEN_TEST_SLEEPER": "leaf"},
            "stop": {"signal": "SIGKILL", "timeout_seconds": 5}
        });
        // The tests may run as root: this program means to.
        let mut spec = serde_json::json!({
            "name": "mc", "display_name": "Survival", "start_seconds": 0, "allow_root": true
        });
        if let (Some(spec), Some(program)) = (spec.as_object_mut(), program.as_object()) {
            spec.extend(program.clone());
        }
        let spec: ProgramSpec = serde_json::from_value(spec).expect("spec");
        let h = sup.create(spec).await.expect("create");
        h.start().await.expect("start");
        let alerts = Alerts::start(
            store.clone(),
            events,
            bus.samples(),
            sup.clone(),
            cfg.alerts.clone(),
        )
        .await
        .expect("alerts");
        // A channel nobody listens on: rows are queued (and fail to deliver), which is
        // what this test looks at.
        let ch: ChannelSpec = serde_json::from_value(serde_json::json!({
            "name": "log", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/x"},
            "events": ["rule_fired", "rule_recovered"]
        }))
        .expect("channel");
        alerts.create_channel(ch).await.expect("channel");
        let rule: RuleSpec = serde_json::from_value(serde_json::json!({
            "name": "hot", "program": "mc", "condition": "cpu_percent > 90 for 1s",
            "action": "restart"
        }))
        .expect("rule");
        alerts.create_rule(rule).await.expect("rule");
        let pid_before = h.snapshot().status.pid;

        // Samples are a latest-value channel, as the sampler's 1 Hz ticks are: each one
        // is published after the engine saw the previous.
        bus.publish_samples(sample("mc", 99.0));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        bus.publish_samples(sample("mc", 99.0));
        let rows = wait_for(&alerts, "log", 1).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, "rule_fired");
        assert_eq!(rows[0].1, "Survival: cpu_percent is 99.0 %");
        // The restart action ran: a new process, and an `alert_action` event.
        let snap = h
            .wait_for(Duration::from_secs(10), |s| {
                s.state == crate::program::State::Running && s.pid.is_some() && s.pid != pid_before
            })
            .await;
        assert_ne!(snap.status.pid, pid_before, "restarted");
        // Still hot after the restart: no second alert. Then it cools: one recovery.
        bus.publish_samples(sample("mc", 97.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.publish_samples(sample("mc", 3.0));
        let rows = wait_for(&alerts, "log", 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rows_later = queued(&alerts, "log").await;
        assert_eq!(rows, rows_later, "nothing more after the recovery");
        let kinds: Vec<&str> = rows.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(kinds, ["rule_fired", "rule_recovered"]);
        assert_eq!(rows[1].1, "Survival: hot recovered");
        let events = store
            .events(Some("mc".into()), None, 50)
            .await
            .expect("events");
        assert!(
            events.iter().any(|e| e.kind == "alert_action"),
            "{events:?}"
        );
        alerts.shutdown().await;
        sup.shutdown(true, Duration::from_secs(10)).await;
        store.close().await;
    }
}
