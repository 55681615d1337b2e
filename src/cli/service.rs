//! `warden service install|uninstall|start|stop` (and the hidden `run` the service manager
//! starts): warden as a Windows service that starts at boot. The platform work is in
//! `os::service`; on other systems every command explains that it is Windows-only.
//!
//! A service has no useful working directory, so `install` fixes the data directory on
//! the service's command line: `--data-dir` if given, else the config file's `data_dir`
//! if absolute, else `%ProgramData%\warden` (a relative `data_dir` is taken under it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use super::{Place, init_logging_to, load_config, runtime, serve};
use crate::config::{Config, DEFAULT_DATA_DIR};
use crate::os;

/// Daily service log files kept in `DATA\warden-logs`.
const LOG_FILES_KEPT: usize = 14;
/// Extra time the service manager allows beyond `supervisor.shutdown_timeout_seconds`.
const STOP_MARGIN: Duration = Duration::from_secs(30);

#[derive(Subcommand)]
pub enum ServiceCmd {
    /// Register warden as a service starting at boot (from an Administrator prompt).
    /// Uses the global --config and --data-dir; the data directory defaults to
    /// %ProgramData%\warden.
    Install,
    /// Stop and remove the service.
    Uninstall,
    /// Start the installed service.
    Start,
    /// Stop the service (programs are stopped or left as `on_shutdown` says).
    Stop,
    /// The service's entry point, started by the Windows service manager.
    #[command(hide = true)]
    Run,
}

/// Runs a `warden service …` command.
pub fn run(cmd: ServiceCmd, place: &Place) -> anyhow::Result<()> {
    match cmd {
        ServiceCmd::Install => install(place),
        ServiceCmd::Uninstall => {
            let wait = stop_wait(place);
            os::service::uninstall(wait)?;
            outln!("service '{}' removed", os::service::NAME);
            Ok(())
        }
        ServiceCmd::Start => {
            os::service::start(Duration::from_secs(60))?;
            outln!("service '{}' running", os::service::NAME);
            Ok(())
        }
        ServiceCmd::Stop => {
            os::service::stop(stop_wait(place))?;
            outln!("service '{}' stopped", os::service::NAME);
            Ok(())
        }
        ServiceCmd::Run => run_service(place),
    }
}

/// How long a stop may take: the configured shutdown timeout plus a margin.
fn stop_wait(place: &Place) -> Duration {
    let timeout = load_config(place)
        .map(|c| c.supervisor.shutdown_timeout)
        .unwrap_or(Duration::from_secs(60));
    timeout + STOP_MARGIN
}

/// The service's data directory (see the module doc).
fn service_data_dir(place: &Place, cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(d) = &place.data_dir {
        return Ok(std::path::absolute(d)?);
    }
    if cfg.data_dir.is_absolute() {
        return Ok(cfg.data_dir.clone());
    }
    let base = os::service::default_data_dir()?;
    if cfg.data_dir == Path::new(DEFAULT_DATA_DIR) {
        Ok(base)
    } else {
        Ok(base.join(&cfg.data_dir))
    }
}

fn install(place: &Place) -> anyhow::Result<()> {
    // Loading validates the config now rather than at the next boot.
    let cfg = load_config(place)?;
    let data_dir = service_data_dir(place, &cfg)?;
    let exe = std::env::current_exe().context("cannot find warden's own executable")?;
    let mut args: Vec<OsString> = vec!["service".into(), "run".into()];
    if let Some(config) = &place.config {
        args.push("--config".into());
        args.push(std::path::absolute(config)?.into());
    }
    args.push("--data-dir".into());
    args.push(data_dir.clone().into());
    os::service::install(exe, args, cfg.supervisor.shutdown_timeout + STOP_MARGIN)?;
    outln!(
        "service '{}' installed; it starts at boot.\n  data: {}\n  logs: {}\nStart it now with: warden service start",
        os::service::NAME,
        data_dir.display(),
        data_dir.join("warden-logs").display()
    );
    Ok(())
}

/// What the service manager starts: logs go to daily files in `DATA\warden-logs`, and
/// warden serves until the service is stopped.
fn run_service(place: &Place) -> anyhow::Result<()> {
    let prepared = load_config(place).and_then(|mut cfg| {
        cfg.data_dir = service_data_dir(place, &cfg)?;
        Ok(cfg)
    });
    // Where to log even if the config is unusable, so the reason can be read somewhere.
    let log_cfg = match &prepared {
        Ok(cfg) => cfg.clone(),
        Err(_) => {
            let mut cfg = Config::defaults()?;
            cfg.data_dir = os::service::default_data_dir()?;
            cfg
        }
    };
    let logs = log_cfg.data_dir.join("warden-logs");
    // tracing-appender reports a spurious error when the directory is missing.
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("warden")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(&logs)
        .with_context(|| format!("cannot open a log file in {}", logs.display()))?;
    init_logging_to(&log_cfg, appender, false);
    let wait = prepared
        .as_ref()
        .map(|c| c.supervisor.shutdown_timeout)
        .unwrap_or(Duration::from_secs(60))
        + STOP_MARGIN;
    let body: os::service::Body = Box::new(move |token: CancellationToken| {
        let cfg = prepared?;
        // Programs with a relative `cwd` resolve it here rather than in System32.
        std::env::set_current_dir(&cfg.data_dir)
            .or_else(|_| {
                std::fs::create_dir_all(&cfg.data_dir)?;
                std::env::set_current_dir(&cfg.data_dir)
            })
            .with_context(|| format!("cannot use data directory {}", cfg.data_dir.display()))?;
        tracing::info!(data_dir = %cfg.data_dir.display(), "starting as a service");
        runtime()?.block_on(serve(cfg, None, false, token))?;
        Ok(())
    });
    os::service::run(wait, body)?;
    Ok(())
}
