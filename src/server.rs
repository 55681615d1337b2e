//! `warden serve`: wires the store, bus, supervisor and API together, runs until a
//! shutdown signal, then shuts everything down in order.
//!
//! Shutdown order: stop accepting requests → record the stop event → stop firing
//! schedules and cancel (or leave) job runs → cancel backups (their post steps still
//! run) → stop (or leave) programs in parallel within the deadline → let alerts queue and
//! deliver what is due → commit everything queued and checkpoint the store. One `CancellationToken` reaches every long-lived task.

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
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    Ok(Store::open(&db_path(data_dir))?)
}

/// Holds the data directory's lock for as long as it lives: two wardens on one data
/// directory would both start the same programs.
pub struct DataDirLock {
    _file: File,
}

fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
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
    let store = open_store(&cfg.data_dir)?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
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
    };
    let started_text = format!("warden {} started", env!("CARGO_PKG_VERSION"));
    ctx.record(None, "warden_started", started_text.clone())
        .await;
    bus.publish(alerts::warden_notice(
        "warden_started",
        Severity::Info,
        started_text,
    ));
    let sup = Supervisor::boot(ctx.clone()).await?;
    games.start(sup.clone());
    let alerts =
        Alerts::start(store.clone(), alert_events, sup.clone(), cfg.alerts.clone()).await?;
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
    // Schedules and jobs; game and backup tasks go through `Services`.
    let sched = Scheduler::start(SchedulerDeps {
        store: store.clone(),
        bus: bus.clone(),
        sup: sup.clone(),
        cfg: cfg.schedule.clone(),
        data_dir: cfg.data_dir.clone(),
        services: Services {
            games: Arc::new(games.clone()),
            backups: Arc::new(backups.clone()),
        },
        shutdown: shutdown.clone(),
    })
    .await?;
    let auth = Auth::new(store.clone(), cfg.api.session_ttl);
    let addr = listener.local_addr()?;
    // The first stdout line names the bound address, so `--listen 127.0.0.1:0` is usable
    // by scripts and tests.
    println!("warden listening on http://{addr}");
    if store.users().await?.is_empty() {
        println!(
            "No users yet. Create the first admin with:\n  warden user add admin --role admin --password-stdin --data-dir {}",
            cfg.data_dir.display()
        );
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
    });
    let pruner = tokio::spawn(prune_events(
        store.clone(),
        cfg.retention.events,
        shutdown.clone(),
    ));
    // The dashboard's pages sit beside the API; it is just another client of it.
    let router = api::router(app).merge(crate::web::router());
    let token = shutdown.clone();
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { token.cancelled().await })
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "HTTP server failed");
    }
    tracing::info!("shutting down");
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
    // Schedules first: their chains act on programs.
    sched.shutdown(stop, cfg.supervisor.shutdown_timeout).await;
    // Then backups: a cancelled backup still runs its post steps (e.g. `save-on`) while
    // its program is alive.
    backups.shutdown(cfg.supervisor.shutdown_timeout).await;
    sup.shutdown(stop, cfg.supervisor.shutdown_timeout).await;
    games.stopped().await;
    alerts.shutdown().await;
    // The metrics task flushed its buffer when shutdown was cancelled; wait for that
    // write before the store closes.
    if let Err(e) = metrics_task.await {
        tracing::error!(error = %e, "metrics task failed");
    }
    pruner.abort();
    store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Prunes events past their retention: hourly, in small steps so the writer is never
/// held for long.
async fn prune_events(store: Store, keep: Duration, shutdown: CancellationToken) {
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
