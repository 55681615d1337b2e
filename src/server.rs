//! `warden serve`: wires the store, bus, supervisor and API together, runs until a
//! shutdown signal, then shuts everything down in order.
//!
//! Shutdown order: stop accepting requests → record the stop event → stop firing
//! schedules and cancel (or leave) job runs → cancel backups (their post steps still
//! run) → stop (or leave) programs in parallel → let alerts queue and deliver what is due
//! → commit everything queued and checkpoint the store. The stages up to the programs'
//! stops share ONE deadline (`supervisor.shutdown_timeout_seconds`): what misses it is
//! forced. One `CancellationToken` reaches every long-lived task.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::alerts::{self, Alerts};
use crate::api::{self, App, authn::LoginLimiter};
use crate::auth::Auth;
use crate::bus::{Bus, Severity};
use crate::config::{Config, OnShutdown};
use crate::games::Games;
use crate::schedule::{Scheduler, SchedulerDeps, services::Services};
use crate::store::{Store, now_ms};
use crate::supervisor::{Ctx, Supervisor};

/// The database file inside the data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("warden.db")
}

/// Opens the store of a data directory, creating the directory if needed.
pub fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    // The database holds users, tokens and secrets: nobody else may read it.
    crate::os::private_files();
    let tightened = crate::os::secure_dir(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    if let Some(mode) = tightened {
        tracing::warn!(
            dir = %data_dir.display(),
            "the data directory was readable by other users (mode {mode:o}); made it 0700"
        );
    }
    Ok(Store::open(&db_path(data_dir))?)
}

/// Holds the data directory's lock for as long as it lives: two wardens on one data
/// directory would both start the same programs.
pub struct DataDirLock {
    _file: File,
}

pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let path = data_dir.join("warden.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another warden is already running with data directory {} (it holds {}); stop it first or use another --data-dir",
            data_dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Options for [`serve`] beyond the config file.
pub struct ServeOptions {
    /// Create the demo program if it does not exist.
    pub demo: bool,
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn serve(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    opts: ServeOptions,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // The lock comes before the store is opened: a second warden must not run migrations
    // under a first one that is using the database.
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let store = open_store(&cfg.data_dir)?;
    let bus = Bus::new();
    let games = Games::new(
        store.clone(),
        bus.clone(),
        cfg.games.clone(),
        shutdown.clone(),
    );
    // Alerts follow the bus from here, so warden's start and adoptions at boot alert too.
    let alert_events = bus.subscribe();
    let ctx = Ctx {
        store: store.clone(),
        bus: bus.clone(),
        cfg: Arc::new(cfg.supervisor.clone()),
        logs_dir: cfg.data_dir.join("logs"),
        stop_hook: Some(games.stop_hook()),
        sleep_guard: Some(games.sleep_guard()),
    };
    let started_text = format!("warden {} started", env!("CARGO_PKG_VERSION"));
    ctx.record(None, "warden_started", started_text.clone())
        .await;
    bus.publish(alerts::warden_notice(
        "warden_started",
        Severity::Info,
        started_text,
    ));
    let hook_events = bus.subscribe();
    let sup = Supervisor::boot(ctx.clone()).await?;
    games.start(sup.clone());
    crate::hooks::start(
        sup.clone(),
        store.clone(),
        bus.clone(),
        hook_events,
        shutdown.clone(),
    );
    let alerts = Alerts::start(
        store.clone(),
        alert_events,
        bus.samples(),
        sup.clone(),
        cfg.alerts.clone(),
    )
    .await?;
    if opts.demo {
        crate::demo::ensure_demo_program(&sup, &cfg.data_dir).await?;
    }
    let backups = crate::backup::BackupService::start(
        store.clone(),
        bus.clone(),
        sup.clone(),
        &cfg,
        &shutdown,
    )
    .await?;
    let installer = crate::install::Installer::new(
        cfg.install.clone(),
        &cfg.data_dir,
        sup.clone(),
        backups.clone(),
        bus.clone(),
        store.clone(),
    );
    let updater = crate::install::update::Updater::new(
        installer.clone(),
        store.clone(),
        bus.clone(),
        sup.clone(),
        games.clone(),
        backups.clone(),
        shutdown.clone(),
    );
    updater.start();
    // Schedules and jobs; game, backup and update tasks go through `Services`.
    let sched = Scheduler::start(SchedulerDeps {
        store: store.clone(),
        bus: bus.clone(),
        sup: sup.clone(),
        cfg: cfg.schedule.clone(),
        data_dir: cfg.data_dir.clone(),
        services: Services {
            games: Arc::new(games.clone()),
            backups: Arc::new(backups.clone()),
            updates: Arc::new(updater.clone()),
        },
        shutdown: shutdown.clone(),
    })
    .await?;
    let auth = Auth::new(store.clone(), cfg.api.session_ttl).sealing_in(cfg.data_dir.clone());
    let addr = listener.local_addr()?;
    let tls = match &cfg.api.tls {
        Some(files) => {
            let certs = Arc::new(api::tls::Certs::load(files).map_err(anyhow::Error::msg)?);
            let server = certs.server_config().map_err(anyhow::Error::msg)?;
            tracing::info!(
                cert = %files.cert.display(),
                sha256 = %certs.fingerprint(),
                "serving HTTPS (the certificate is read again when its files change)"
            );
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The first stdout line names the bound address, so `--listen 127.0.0.1:0` is usable
    // by scripts and tests.
    // Written with its error handled: a closed or full stdout must not stop warden.
    crate::logging::stdout_line(&format!("warden listening on {scheme}://{addr}"));
    let setup_code = api::setup::SetupCode::default();
    if store.users().await?.is_empty() {
        let data_dir = std::path::absolute(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
        match setup_code.open(&cfg.data_dir) {
            Ok(code) => crate::logging::stdout_line(&format!(
                "No users yet. Open {scheme}://{addr} and create the first administrator with the setup code {code}\n  (also in {}; it works once)\nor on this machine:\n  warden user add admin --role admin --password-stdin --data-dir {}",
                api::setup::file(&data_dir).display(),
                data_dir.display()
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the setup code file");
                crate::logging::stdout_line(&format!(
                    "No users yet. Create the first admin with:\n  warden user add admin --role admin --password-stdin --data-dir {}",
                    data_dir.display()
                ));
            }
        }
    }
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "warden listening");
    let (metrics, metrics_task) = crate::metrics::Metrics::start(
        &cfg.metrics,
        store.clone(),
        sup.clone(),
        bus.clone(),
        shutdown.clone(),
    )?;
    let app = Arc::new(App {
        sup: sup.clone(),
        games: games.clone(),
        alerts: alerts.clone(),
        sched: sched.clone(),
        store: store.clone(),
        auth,
        bus: bus.clone(),
        login_limiter: LoginLimiter::new(cfg.api.login_attempts_per_minute),
        cfg: cfg.clone(),
        shutdown: shutdown.clone(),
        started,
        files: crate::files::Files::new(cfg.files.clone(), &cfg.data_dir, shutdown.clone()),
        metrics,
        backups: backups.clone(),
        setup_code,
        fleet: crate::fleet::Fleet::new(store.clone(), cfg.data_dir.clone(), cfg.fleet.timeout),
        installer: installer.clone(),
        updater: updater.clone(),
        spec_json: Default::default(),
    });
    let trimmer = tokio::spawn(crate::health::guarded(
        "memory-trimmer",
        crate::memory::trim_loop(store.clone(), shutdown.clone()),
    ));
    let pruner = {
        let (store, keep, token) = (store.clone(), cfg.retention.events, shutdown.clone());
        crate::health::supervise("event-pruner", shutdown.clone(), move || {
            prune_events(store.clone(), keep, token.clone())
        })
    };
    // Says in an event (and an alert) what could not be stored once writes work again.
    let store_watch = {
        let (ctx, bus, token) = (ctx.clone(), bus.clone(), shutdown.clone());
        crate::health::supervise("store-watch", shutdown.clone(), move || {
            watch_store(ctx.clone(), bus.clone(), token.clone())
        })
    };
    // The dashboard's pages sit beside the API; it is just another client of it.
    let router = api::router(app).merge(crate::web::router());
    api::listener::serve(listener, router, http_limits(&cfg), tls, shutdown.clone()).await;
    tracing::info!("shutting down");
    // Parts ending from here on are meant to.
    crate::health::shutting_down();
    let stop = cfg.supervisor.on_shutdown == OnShutdown::Stop;
    let stopping_text = if stop {
        "warden is stopping; stopping programs".to_string()
    } else {
        "warden is stopping; leaving programs running".to_string()
    };
    ctx.record(None, "warden_stopping", stopping_text.clone())
        .await;
    bus.publish(alerts::warden_notice(
        "warden_stopping",
        Severity::Warning,
        stopping_text,
    ));
    // One deadline for every stage, as vector's `shutdown_all(deadline)`: each stage gets
    // what is left of it and whatever misses it is forced (chains and backups cancelled,
    // programs killed), so stopping warden takes `shutdown_timeout` — not the sum of the
    // stages' own waits.
    let deadline = tokio::time::Instant::now() + cfg.supervisor.shutdown_timeout;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    // Schedules first: their chains act on programs; updates likewise (one cut short is
    // rolled back at the next start).
    sched.shutdown(stop, left()).await;
    if tokio::time::timeout(left(), updater.stopped())
        .await
        .is_err()
    {
        tracing::warn!("updates did not end before the shutdown deadline");
    }
    // Then backups: a cancelled backup still runs its post steps (e.g. `save-on`) while
    // its program is alive.
    backups.shutdown(left()).await;
    sup.shutdown(stop, left()).await;
    if tokio::time::timeout(left(), games.stopped()).await.is_err() {
        tracing::warn!("game monitors did not end before the shutdown deadline");
    }
    // Alerts get their own grace (`alerts.shutdown_grace_seconds`) after the programs'
    // stops: what is not delivered then stays queued in the store for the next start.
    alerts.shutdown().await;
    // The metrics task flushed its buffer when shutdown was cancelled; wait for that
    // write before the store closes.
    if let Err(e) = metrics_task.await {
        tracing::error!(error = %e, "metrics task failed");
    }
    pruner.abort();
    store_watch.abort();
    trimmer.abort();
    store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Raises the open-file limit and sizes the HTTP connection cap within it, so that the
/// descriptors for programs, logs and the store can never be taken by clients.
fn http_limits(cfg: &Config) -> api::listener::Limits {
    let limit = match crate::os::raise_open_file_limit() {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::debug!(error = %e, "open-file limit not raised");
            None
        }
    };
    let max_connections = api::listener::effective_cap(cfg.api.max_connections, limit);
    tracing::info!(
        open_file_limit = limit,
        max_connections,
        "HTTP connections are capped"
    );
    api::listener::Limits {
        header_read_timeout: cfg.api.header_read_timeout,
        idle_timeout: cfg.api.idle_timeout,
        max_connections,
    }
}

/// Prunes events past their retention: hourly, in small steps so the writer is never
/// held for long.
async fn prune_events(store: Store, keep: Duration, shutdown: CancellationToken) {
    crate::health::injected_fault("event-pruner");
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let cutoff = now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
        loop {
            match store.prune_events(cutoff, 5000).await {
                Ok(5000) => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "event pruning failed");
                    break;
                }
            }
        }
    }
}

/// Follows the store's health: when writes work again after failing (a full disk), the
/// loss becomes an event and a warning alert, naming how many records were lost and for
/// how long writes failed. Woken only when writes start or stop failing.
async fn watch_store(ctx: Ctx, bus: Bus, shutdown: CancellationToken) {
    let mut failing = ctx.store.failing();
    let mut failing_since: Option<i64> = None;
    let mut lost_before = ctx.store.health().writes_lost;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = failing.changed() => if changed.is_err() { return },
        }
        let h = ctx.store.health();
        match (failing_since, h.failing_since_ms) {
            (None, Some(since)) => failing_since = Some(since),
            (Some(since), None) => {
                failing_since = None;
                let lost = h.writes_lost.saturating_sub(lost_before);
                lost_before = h.writes_lost;
                let secs = (now_ms() - since).max(0) / 1000;
                let text = format!(
                    "database writes work again after failing for {secs} s (data directory {}); {lost} records (events, audit entries) could not be stored meanwhile",
                    ctx.store.dir().display()
                );
                ctx.record(None, "store_recovered", text.clone()).await;
                bus.publish(alerts::warden_notice(
                    "store_recovered",
                    Severity::Warning,
                    text,
                ));
            }
            _ => {}
        }
    }
}
