//! Daemon configuration: the TOML file, its defaults, and validation into typed values.
//!
//! Two stages, as in ripgrep: [`RawConfig`] is what serde reads (every key optional,
//! unknown keys rejected with their line), [`Config`] is the validated result with real
//! types. Every validation problem is collected so the user sees all of them at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

// The `[windows]` settings are types of `os`, which applies them (it sits below config).
pub use crate::os::{Priority, WindowsConfig};

/// Default address of the HTTP API. Loopback only: binding elsewhere must be explicit.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

/// Default data directory (relative to the working directory) of `warden serve`.
pub const DEFAULT_DATA_DIR: &str = "warden-data";

/// What happens to supervised programs when warden itself shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnShutdown {
    /// Stop every program gracefully (in parallel, within `shutdown_timeout_seconds`).
    #[default]
    Stop,
    /// Leave programs running; the next warden start adopts them.
    Leave,
}

/// Log line format for warden's own logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable text (the default on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The file as written by the user. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    allow_root_programs: Option<bool>,
    #[serde(default)]
    supervisor: RawSupervisor,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    games: RawGames,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    files: RawFiles,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    backup: RawBackup,
    #[serde(default)]
    windows: RawWindows,
    #[serde(default)]
    fleet: RawFleet,
    #[serde(default)]
    install: RawInstall,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    name: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstall {
    steamcmd: Option<PathBuf>,
    dir: Option<PathBuf>,
    mojang_url: Option<String>,
    paper_url: Option<String>,
    steamcmd_url: Option<String>,
    steam_user: Option<String>,
    steamcmd_timeout_seconds: Option<u64>,
    steamcmd_attempts: Option<u32>,
    steamcmd_retry_seconds: Option<u64>,
    java: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    on_shutdown: Option<OnShutdown>,
    shutdown_timeout_seconds: Option<u64>,
    console_ring_lines: Option<usize>,
    log_file_max_bytes: Option<u64>,
    log_files_keep: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    request_timeout_seconds: Option<u64>,
    body_limit_bytes: Option<usize>,
    session_hours: Option<u64>,
    login_attempts_per_minute: Option<u32>,
    header_read_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_connections: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    events_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGames {
    query_timeout_seconds: Option<u64>,
    rcon_timeout_seconds: Option<u64>,
    rcon_auth_cool_down_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    senders: Option<u64>,
    request_timeout_seconds: Option<u64>,
    retry_initial_ms: Option<u64>,
    retry_max_seconds: Option<u64>,
    max_age_minutes: Option<u64>,
    outbox_max_pending: Option<u64>,
    breaker_failures: Option<u64>,
    breaker_open_seconds: Option<u64>,
    log_days: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    max_text_bytes: Option<u64>,
    max_upload_bytes: Option<u64>,
    max_page_entries: Option<u64>,
    max_concurrent_transfers: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    sample_interval_ms: Option<u64>,
    batch_interval_ms: Option<u64>,
    nice: Option<i32>,
    saturation_cpu_percent: Option<f64>,
    saturation_stretch: Option<u32>,
    raw_retention_hours: Option<u64>,
    minute_retention_days: Option<u64>,
    hour_retention_days: Option<u64>,
    prometheus_public: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    job_concurrency: Option<usize>,
    lease_seconds: Option<u64>,
    keep_runs: Option<u32>,
    prediction_runs: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    dir: Option<PathBuf>,
    zstd_threads: Option<u32>,
    max_concurrent: Option<u64>,
    low_priority: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindows {
    priority: Option<Priority>,
    kill_programs_on_exit: Option<bool>,
}

/// Validated daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP API binds to.
    pub listen: SocketAddr,
    /// Directory holding the SQLite file, console logs and the lock file.
    pub data_dir: PathBuf,
    /// `tracing` filter directive for warden's own logs (e.g. `info`, `warden=debug`).
    pub log_level: String,
    /// Text or JSON logs.
    pub log_format: LogFormat,
    /// Supervisor settings.
    pub supervisor: SupervisorConfig,
    /// HTTP API settings.
    pub api: ApiConfig,
    /// How long stored history is kept.
    pub retention: RetentionConfig,
    /// Game server integration settings.
    pub games: GamesConfig,
    /// Alert delivery settings.
    pub alerts: AlertsConfig,
    /// Limits of the file browser.
    pub files: FilesConfig,
    /// Resource sampling, its storage tiers and the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Schedules and jobs.
    pub schedule: ScheduleConfig,
    /// Windows-only settings (accepted and ignored elsewhere, so one file serves both).
    pub windows: WindowsConfig,
    /// Backup defaults.
    pub backup: BackupConfig,
    /// This warden's place in a fleet of wardens.
    pub fleet: FleetConfig,
    /// Installing servers from templates.
    pub install: InstallConfig,
}

/// This warden's place in a fleet (the nodes themselves are in the store, managed by
/// `warden fleet add|remove|list`).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The `node` label of this warden's own metrics target in service discovery, and
    /// its name in the fleet overview.
    pub name: String,
    /// Longest wait for one node's answer in the fleet overview.
    pub timeout: Duration,
}

/// Where servers are installed and where their files come from.
#[derive(Debug, Clone)]
pub struct InstallConfig {
    /// The SteamCMD executable (`steamcmd.sh` / `steamcmd.exe`); `None` looks for
    /// `steamcmd` in `PATH`, then bootstraps one into `DATA/steamcmd`.
    pub steamcmd: Option<PathBuf>,
    /// Folder holding one folder per installed server; relative paths are relative to the
    /// data directory. `None` means `DATA/servers`.
    pub dir: Option<PathBuf>,
    /// Base URL of Mojang's launcher metadata (the version manifest).
    pub mojang_url: String,
    /// Base URL of PaperMC's downloads API.
    pub paper_url: String,
    /// Folder URL of Valve's SteamCMD bootstrap archives (`steamcmd_linux.tar.gz`,
    /// `steamcmd.zip`), used when no SteamCMD is configured or in `PATH`.
    pub steamcmd_url: String,
    /// The Steam account SteamCMD logs in with (its password is stored sealed:
    /// `PUT /api/install/steam-account`); anonymous when `None`.
    pub steam_user: Option<String>,
    /// Longest SteamCMD run before it is killed.
    pub steamcmd_timeout: Duration,
    /// SteamCMD runs per install when a failure may pass (rate limit, timeout).
    pub steamcmd_attempts: u32,
    /// Wait before the first retry of SteamCMD; doubles for each next one (at most 2 min).
    pub steamcmd_retry: Duration,
    /// The Java that installed Minecraft servers run with (their command becomes this
    /// path); `None` means `java` from `PATH`. Installs and updates check its version.
    pub java: Option<PathBuf>,
}

impl InstallConfig {
    /// The folder servers are installed under, for a data directory.
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        match &self.dir {
            Some(d) => data_dir.join(d),
            None => data_dir.join("servers"),
        }
    }
}

/// Settings of schedules and jobs.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Steps of one job run at once, unless the job sets `concurrency`; `None` derives it
    /// from the host's cores and free memory.
    pub job_concurrency: Option<usize>,
    /// Lifetime of a job lease; it is renewed every third of it while a run is in progress.
    pub lease: Duration,
    /// Runs kept per job and per schedule (older ones and their output files are deleted).
    pub keep_runs: u32,
    /// Successful runs a duration prediction is based on.
    pub prediction_runs: u32,
}

/// Supervisor settings shared by every program actor.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Stop or leave programs when warden exits.
    pub on_shutdown: OnShutdown,
    /// Deadline for stopping all programs at warden shutdown.
    pub shutdown_timeout: Duration,
    /// Console lines kept in memory per program for the live view.
    pub console_ring_lines: usize,
    /// Size at which a program's console log file is rotated.
    pub log_file_max_bytes: u64,
    /// Rotated console log files kept per program (besides the current one).
    pub log_files_keep: usize,
    /// When warden runs as root, let every program run as root too (as if each said
    /// `allow_root = true`): for a container where root is the only user. Default false.
    /// A top-level key of the config file (`allow_root_programs = true`).
    pub allow_root_programs: bool,
}

/// HTTP API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests that produce no response within this time get a 503.
    pub request_timeout: Duration,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Lifetime of a browser session.
    pub session_ttl: Duration,
    /// Login attempts allowed per client address per minute.
    pub login_attempts_per_minute: u32,
    /// A client must send a complete request head within this time.
    pub header_read_timeout: Duration,
    /// A connection with nothing read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Most HTTP connections open at once, WebSockets included (further capped at half
    /// the open-file limit).
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed:
    /// addresses or networks (`10.0.0.0/8`). From anyone else those headers are ignored.
    pub trusted_proxies: Vec<Network>,
    /// warden's own HTTPS: certificate chain and key files (PEM), re-read when they
    /// change. `None` serves plain HTTP (behind a proxy that does TLS, or on loopback).
    pub tls: Option<crate::api::tls::TlsFiles>,
}

/// An address or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The network's address.
    pub addr: std::net::IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Network {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    /// True when `ip` is inside the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Retention of stored history.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Lifecycle events older than this are pruned.
    pub events: Duration,
}

/// Game server integration settings.
#[derive(Debug, Clone)]
pub struct GamesConfig {
    /// Bound of one status query or health check.
    pub query_timeout: Duration,
    /// Bound of one RCON command (connect and login included).
    pub rcon_timeout: Duration,
    /// After a wrong RCON password, further commands fail at once for this long instead
    /// of logging in again (servers ban addresses that keep failing).
    pub rcon_auth_cool_down: Duration,
}

/// Alert delivery settings (channels and rules themselves live in the database).
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Sender tasks draining the outbox; each has at most one request in flight.
    pub senders: usize,
    /// Deadline of one delivery request (connect + send + answer).
    pub request_timeout: Duration,
    /// Delay before the first retry; doubles per attempt (with jitter).
    pub retry_initial: Duration,
    /// Upper bound of the retry delay.
    pub retry_max: Duration,
    /// A notification still undelivered this long after it was queued is marked failed.
    pub max_age: Duration,
    /// Undelivered notifications kept at most; beyond it the oldest lowest-severity
    /// non-critical ones are dropped (critical ones never are).
    pub outbox_max_pending: usize,
    /// Consecutive failures of one channel that open its circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker pauses its channel before one probe is let through
    /// (doubling while probes fail, up to ten times this).
    pub breaker_open: Duration,
    /// Finished deliveries (the delivery log) are kept this long.
    pub log_retention: Duration,
    /// At shutdown, how long senders may still deliver what is due (e.g. "warden stopping").
    pub shutdown_grace: Duration,
}

/// Limits of the file browser (`[files]`).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Largest file opened as text in the editor (bigger ones must be downloaded).
    pub max_text_bytes: u64,
    /// Largest upload request body (all files of one upload together).
    pub max_upload_bytes: u64,
    /// Most entries in one page of a directory listing.
    pub max_page_entries: usize,
    /// Uploads and downloads running at once, over all programs.
    pub max_concurrent_transfers: usize,
}

/// Resource sampling settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Time between samples of every program and the host.
    pub sample_interval: Duration,
    /// Time between batched writes of buffered samples to the store.
    pub batch_interval: Duration,
    /// Nice value of the sampler thread (0 = normal priority, up to 19).
    pub nice: i32,
    /// Host CPU % above which the host counts as saturated.
    pub saturation_cpu_percent: f64,
    /// Factor by which the sample interval is stretched while the host is saturated.
    pub saturation_stretch: u32,
    /// How long raw samples are kept.
    pub raw_retention: Duration,
    /// How long 1-minute rollups are kept.
    pub minute_retention: Duration,
    /// How long 1-hour rollups are kept.
    pub hour_retention: Duration,
    /// Serve `GET /metrics` without a token.
    pub prometheus_public: bool,
}

/// Backup settings shared by every program (per-program settings live in the store).
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// Root of the default backup destinations (`DIR/PROGRAM`); relative paths are
    /// relative to the data directory. `None` means `DATA/backups`.
    pub dir: Option<PathBuf>,
    /// zstd worker threads per backup; 0 compresses on the backup thread itself.
    pub zstd_threads: u32,
    /// Backups that may run at the same time; later ones wait for a slot.
    pub max_concurrent: usize,
    /// Run backup, verify and restore threads at the lowest CPU and IO priority, so
    /// games keep their tick rate (at the price of slower backups on a busy machine).
    pub low_priority: bool,
}

impl BackupConfig {
    /// The root of default destinations for a data directory.
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        match &self.dir {
            Some(d) => data_dir.join(d),
            None => data_dir.join("backups"),
        }
    }
}

/// A configuration problem: which file, where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message itself, not as a `source`: printed with its chain, the
        /// reason would appear twice).
        reason: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, which names the line and column.
        message: String,
    },
    /// Values parsed but are not acceptable.
    #[error("invalid config file {path}:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file (or `<defaults>`).
        path: PathBuf,
        /// Every problem found, each naming its key.
        problems: Vec<String>,
    },
}

/// Whether `filter` is made of level names and `target=level` directives only. A bare
/// word that is not a level (`loud`) would otherwise be read as a target name and
/// silently turn all logging off.
fn log_level_ok(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    filter.split(',').all(|part| match part.split_once('=') {
        Some((target, l)) => !target.trim().is_empty() && level(l),
        None => level(part),
    })
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            path: path.to_path_buf(),
            reason,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Self::validate(raw, path)
    }

    /// The built-in defaults, used when no config file is given. They always validate
    /// (see the `defaults_are_valid` test); the `Result` only keeps this free of panics.
    pub fn defaults() -> Result<Config, ConfigError> {
        Self::validate(RawConfig::default(), Path::new("<defaults>"))
    }

    fn validate(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let listen = listen(raw.listen, &mut p);
        let log_level = log_level(raw.log_level, &mut p);
        let api = api(&raw.api, &mut p);
        let supervisor = supervisor(&raw.supervisor, raw.allow_root_programs, &mut p);
        let retention = RetentionConfig {
            events: Duration::from_secs(
                p.positive("retention.events_days", raw.retention.events_days, 90) * 86_400,
            ),
        };
        let games = games(&raw.games, &mut p);
        let alerts = alerts(&raw.alerts, &mut p);
        let files = files(&raw.files, &mut p);
        let fleet = fleet(raw.fleet, &mut p);
        let metrics = metrics(&raw.metrics, &mut p);
        let schedule = schedule(&raw.schedule, &mut p);
        let backup = backup(raw.backup, &mut p);
        let install = install(raw.install, &mut p);
        let windows = windows(&raw.windows, supervisor.on_shutdown, &mut p);
        if !p.0.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: p.0,
            });
        }
        Ok(Config {
            listen,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            log_level,
            log_format: raw.log_format.unwrap_or_default(),
            supervisor,
            api,
            retention,
            games,
            alerts,
            files,
            metrics,
            schedule,
            backup,
            windows,
            fleet,
            install,
        })
    }
}

/// Every problem of a config file, so all are reported at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// `v` (or `default` when unset), which must be greater than 0; a 0 is a problem and
    /// answers the default, so validation goes on.
    fn positive(&mut self, key: &str, v: Option<u64>, default: u64) -> u64 {
        let v = v.unwrap_or(default);
        if v == 0 {
            self.push(format!("{key} must be greater than 0"));
            return default;
        }
        v
    }
}

/// `listen`: an address with a port.
fn listen(raw: Option<String>, p: &mut Problems) -> SocketAddr {
    let listen_text = raw.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    match listen_text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            p.push(format!(
                "listen = {listen_text:?} is not an address with a port; write e.g. \"127.0.0.1:9180\" or \"0.0.0.0:9180\""
            ));
            SocketAddr::from(([127, 0, 0, 1], 9180))
        }
    }
}

/// `log_level`: level names and `target=level` directives.
fn log_level(raw: Option<String>, p: &mut Problems) -> String {
    let log_level = raw.unwrap_or_else(|| "info".to_string());
    if !log_level_ok(&log_level) || tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        p.push(format!(
            "log_level = {log_level:?} is not a valid filter; use one of error, warn, info, debug, trace (or directives such as \"info,warden=debug\")"
        ));
    }
    log_level
}

/// `[api]`: trusted proxies, TLS files (read now, so `warden config check` and start-up
/// name a bad file) and the positive limits.
fn api(raw: &RawApi, p: &mut Problems) -> ApiConfig {
    let mut trusted_proxies = Vec::new();
    for proxy in raw.trusted_proxies.clone().unwrap_or_default() {
        match Network::parse(&proxy) {
            Some(n) => trusted_proxies.push(n),
            None => p.push(format!(
                "api.trusted_proxies: {proxy:?} is not an address or network, e.g. 127.0.0.1 or 10.0.0.0/8"
            )),
        }
    }
    let tls = match (raw.tls_cert.clone(), raw.tls_key.clone()) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let files = crate::api::tls::TlsFiles { cert, key };
            if let Err(e) = crate::api::tls::Certs::load(&files) {
                p.push(e);
            }
            Some(files)
        }
        (Some(_), None) => {
            p.push("api.tls_cert is set but api.tls_key is not; HTTPS needs both the certificate and its key file");
            None
        }
        (None, Some(_)) => {
            p.push("api.tls_key is set but api.tls_cert is not; HTTPS needs both the certificate and its key file");
            None
        }
    };
    let request_timeout = p.positive(
        "api.request_timeout_seconds",
        raw.request_timeout_seconds,
        30,
    );
    let body_limit = p.positive(
        "api.body_limit_bytes",
        raw.body_limit_bytes.map(|v| v as u64),
        1024 * 1024,
    );
    let session_hours = p.positive("api.session_hours", raw.session_hours, 24 * 7);
    let login_rate = p.positive(
        "api.login_attempts_per_minute",
        raw.login_attempts_per_minute.map(u64::from),
        10,
    );
    let header_read_timeout = p.positive(
        "api.header_read_timeout_seconds",
        raw.header_read_timeout_seconds,
        10,
    );
    let idle_timeout = p.positive("api.idle_timeout_seconds", raw.idle_timeout_seconds, 60);
    let max_connections = p.positive("api.max_connections", raw.max_connections, 256);
    ApiConfig {
        request_timeout: Duration::from_secs(request_timeout),
        body_limit_bytes: body_limit as usize,
        session_ttl: Duration::from_secs(session_hours * 3600),
        login_attempts_per_minute: u32::try_from(login_rate).unwrap_or(u32::MAX),
        header_read_timeout: Duration::from_secs(header_read_timeout),
        idle_timeout: Duration::from_secs(idle_timeout),
        max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
        trusted_proxies,
        tls,
    }
}

/// `[supervisor]` (and the top-level `allow_root_programs`).
fn supervisor(
    raw: &RawSupervisor,
    allow_root_programs: Option<bool>,
    p: &mut Problems,
) -> SupervisorConfig {
    let shutdown_timeout = p.positive(
        "supervisor.shutdown_timeout_seconds",
        raw.shutdown_timeout_seconds,
        60,
    );
    let ring = p.positive(
        "supervisor.console_ring_lines",
        raw.console_ring_lines.map(|v| v as u64),
        2000,
    );
    let log_max = p.positive(
        "supervisor.log_file_max_bytes",
        raw.log_file_max_bytes,
        10 * 1024 * 1024,
    );
    SupervisorConfig {
        on_shutdown: raw.on_shutdown.unwrap_or_default(),
        shutdown_timeout: Duration::from_secs(shutdown_timeout),
        console_ring_lines: ring as usize,
        log_file_max_bytes: log_max,
        log_files_keep: raw.log_files_keep.unwrap_or(5),
        allow_root_programs: allow_root_programs.unwrap_or(false),
    }
}

/// `[games]`: query and RCON timeouts.
fn games(raw: &RawGames, p: &mut Problems) -> GamesConfig {
    let query_timeout = p.positive("games.query_timeout_seconds", raw.query_timeout_seconds, 5);
    let rcon_timeout = p.positive("games.rcon_timeout_seconds", raw.rcon_timeout_seconds, 10);
    let cool_down = p.positive(
        "games.rcon_auth_cool_down_seconds",
        raw.rcon_auth_cool_down_seconds,
        30,
    );
    GamesConfig {
        query_timeout: Duration::from_secs(query_timeout),
        rcon_timeout: Duration::from_secs(rcon_timeout),
        rcon_auth_cool_down: Duration::from_secs(cool_down),
    }
}

/// `[alerts]`: senders (at most 16), delivery timeouts, retries and the breaker.
fn alerts(a: &RawAlerts, p: &mut Problems) -> AlertsConfig {
    let senders = p.positive("alerts.senders", a.senders, 2);
    let alerts = AlertsConfig {
        senders: senders.min(16) as usize,
        request_timeout: Duration::from_secs(p.positive(
            "alerts.request_timeout_seconds",
            a.request_timeout_seconds,
            5,
        )),
        retry_initial: Duration::from_millis(p.positive(
            "alerts.retry_initial_ms",
            a.retry_initial_ms,
            2000,
        )),
        retry_max: Duration::from_secs(p.positive(
            "alerts.retry_max_seconds",
            a.retry_max_seconds,
            300,
        )),
        max_age: Duration::from_secs(
            p.positive("alerts.max_age_minutes", a.max_age_minutes, 360) * 60,
        ),
        outbox_max_pending: p.positive("alerts.outbox_max_pending", a.outbox_max_pending, 10_000)
            as usize,
        breaker_failures: u32::try_from(p.positive(
            "alerts.breaker_failures",
            a.breaker_failures,
            3,
        ))
        .unwrap_or(u32::MAX),
        breaker_open: Duration::from_secs(p.positive(
            "alerts.breaker_open_seconds",
            a.breaker_open_seconds,
            30,
        )),
        log_retention: Duration::from_secs(p.positive("alerts.log_days", a.log_days, 14) * 86_400),
        shutdown_grace: Duration::from_secs(a.shutdown_grace_seconds.unwrap_or(3)),
    };
    if senders > 16 {
        p.push("alerts.senders must be at most 16");
    }
    alerts
}

/// `[files]`. The text editor holds a whole file (and its encoded copy) in memory, and a
/// listing page is built in memory: both are capped so one request cannot take a large
/// share of warden's memory.
fn files(raw: &RawFiles, p: &mut Problems) -> FilesConfig {
    let max_text = p.positive("files.max_text_bytes", raw.max_text_bytes, 5 * 1024 * 1024);
    let max_upload = p.positive(
        "files.max_upload_bytes",
        raw.max_upload_bytes,
        4 * 1024 * 1024 * 1024,
    );
    let max_page = p.positive("files.max_page_entries", raw.max_page_entries, 1000);
    let max_transfers = p.positive(
        "files.max_concurrent_transfers",
        raw.max_concurrent_transfers,
        4,
    );
    if max_text > 64 * 1024 * 1024 {
        p.push("files.max_text_bytes must be at most 67108864 (64 MiB)");
    }
    if max_page > 10_000 {
        p.push("files.max_page_entries must be at most 10000");
    }
    if max_transfers > 1024 {
        p.push("files.max_concurrent_transfers must be at most 1024");
    }
    FilesConfig {
        max_text_bytes: max_text,
        max_upload_bytes: max_upload,
        max_page_entries: usize::try_from(max_page).unwrap_or(10_000),
        max_concurrent_transfers: usize::try_from(max_transfers).unwrap_or(1024),
    }
}

/// `[metrics]`: sampling, retention, the sampler's priority and the saturation rule.
fn metrics(m: &RawMetrics, p: &mut Problems) -> MetricsConfig {
    let sample_ms = p.positive("metrics.sample_interval_ms", m.sample_interval_ms, 1000);
    let batch_ms = p.positive("metrics.batch_interval_ms", m.batch_interval_ms, 10_000);
    let raw_hours = p.positive("metrics.raw_retention_hours", m.raw_retention_hours, 48);
    let minute_days = p.positive("metrics.minute_retention_days", m.minute_retention_days, 30);
    let hour_days = p.positive("metrics.hour_retention_days", m.hour_retention_days, 365);
    let stretch = p.positive(
        "metrics.saturation_stretch",
        m.saturation_stretch.map(u64::from),
        5,
    );
    if sample_ms < 100 {
        p.push(format!(
            "metrics.sample_interval_ms = {sample_ms} is too short; use at least 100"
        ));
    }
    let nice = m.nice.unwrap_or(10);
    if !(0..=19).contains(&nice) {
        p.push(format!(
            "metrics.nice = {nice} is out of range; use 0 (normal priority) to 19 (lowest)"
        ));
    }
    let saturation = m.saturation_cpu_percent.unwrap_or(90.0);
    if !(saturation > 0.0 && saturation <= 100.0) {
        p.push(format!(
            "metrics.saturation_cpu_percent = {saturation} must be above 0 and at most 100"
        ));
    }
    MetricsConfig {
        sample_interval: Duration::from_millis(sample_ms),
        batch_interval: Duration::from_millis(batch_ms),
        nice,
        saturation_cpu_percent: saturation,
        saturation_stretch: u32::try_from(stretch).unwrap_or(5),
        raw_retention: Duration::from_secs(raw_hours * 3600),
        minute_retention: Duration::from_secs(minute_days * 86_400),
        hour_retention: Duration::from_secs(hour_days * 86_400),
        prometheus_public: m.prometheus_public.unwrap_or(false),
    }
}

/// `[schedule]`: job concurrency, the lease (at least 3 s) and run history.
fn schedule(raw: &RawSchedule, p: &mut Problems) -> ScheduleConfig {
    let job_concurrency = raw
        .job_concurrency
        .map(|v| p.positive("schedule.job_concurrency", Some(v as u64), 1) as usize);
    let lease_seconds = p.positive("schedule.lease_seconds", raw.lease_seconds, 30);
    let keep_runs = p.positive("schedule.keep_runs", raw.keep_runs.map(u64::from), 200);
    let prediction_runs = p.positive(
        "schedule.prediction_runs",
        raw.prediction_runs.map(u64::from),
        20,
    );
    if lease_seconds < 3 {
        p.push("schedule.lease_seconds must be at least 3");
    }
    ScheduleConfig {
        job_concurrency,
        lease: Duration::from_secs(lease_seconds),
        keep_runs: u32::try_from(keep_runs).unwrap_or(u32::MAX),
        prediction_runs: u32::try_from(prediction_runs).unwrap_or(u32::MAX),
    }
}

/// `[backup]`: destination root, zstd threads (0 to 64) and backups at once.
fn backup(raw: RawBackup, p: &mut Problems) -> BackupConfig {
    let backups_at_once = p.positive("backup.max_concurrent", raw.max_concurrent, 1);
    let zstd_threads = raw.zstd_threads.unwrap_or(2);
    if zstd_threads > 64 {
        p.push(format!(
            "backup.zstd_threads = {zstd_threads} is too many; use 0 to 64"
        ));
    }
    BackupConfig {
        dir: raw.dir,
        zstd_threads,
        max_concurrent: usize::try_from(backups_at_once).unwrap_or(1),
        low_priority: raw.low_priority.unwrap_or(true),
    }
}

/// `[install]`: SteamCMD limits and the download sites (http or https only).
fn install(raw: RawInstall, p: &mut Problems) -> InstallConfig {
    let steamcmd_timeout = p.positive(
        "install.steamcmd_timeout_seconds",
        raw.steamcmd_timeout_seconds,
        7200,
    );
    let steamcmd_attempts = u32::try_from(p.positive(
        "install.steamcmd_attempts",
        raw.steamcmd_attempts.map(u64::from),
        3,
    ))
    .unwrap_or(3);
    for (key, url) in [
        ("install.mojang_url", &raw.mojang_url),
        ("install.paper_url", &raw.paper_url),
        ("install.steamcmd_url", &raw.steamcmd_url),
    ] {
        if let Some(u) = url
            && !u.starts_with("http://")
            && !u.starts_with("https://")
        {
            p.push(format!("{key} = {u:?} must start with http:// or https://"));
        }
    }
    InstallConfig {
        steamcmd: raw.steamcmd,
        dir: raw.dir,
        mojang_url: raw
            .mojang_url
            .unwrap_or_else(|| "https://piston-meta.mojang.com".into()),
        paper_url: raw
            .paper_url
            .unwrap_or_else(|| "https://api.papermc.io".into()),
        steamcmd_url: raw
            .steamcmd_url
            .unwrap_or_else(|| "https://steamcdn-a.akamaihd.net/client/installer/".into()),
        steam_user: raw
            .steam_user
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty() && u != "anonymous"),
        steamcmd_timeout: Duration::from_secs(steamcmd_timeout),
        steamcmd_attempts,
        steamcmd_retry: Duration::from_secs(raw.steamcmd_retry_seconds.unwrap_or(10)),
        java: raw.java,
    }
}

/// `[windows]`: killing programs on exit contradicts leaving them running.
fn windows(raw: &RawWindows, on_shutdown: OnShutdown, p: &mut Problems) -> WindowsConfig {
    let kill_programs_on_exit = raw.kill_programs_on_exit.unwrap_or(false);
    if kill_programs_on_exit && on_shutdown == OnShutdown::Leave {
        p.push(
            "windows.kill_programs_on_exit = true contradicts supervisor.on_shutdown = \"leave\"; choose one",
        );
    }
    WindowsConfig {
        priority: raw.priority.unwrap_or_default(),
        kill_programs_on_exit,
    }
}

/// `[fleet]`: this warden's name (a program-style name) and the request timeout.
fn fleet(raw: RawFleet, p: &mut Problems) -> FleetConfig {
    let fleet_timeout_ms = p.positive("fleet.timeout_ms", raw.timeout_ms, 3000);
    let name = raw.name.unwrap_or_else(|| "local".to_string());
    if !crate::program::valid_name(&name) {
        p.push(format!(
            "fleet.name = {name:?} is not valid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        ));
    }
    FleetConfig {
        name,
        timeout: Duration::from_millis(fleet_timeout_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_at_once_and_log_level_is_a_level() {
        let err = Config::parse(
            "listen = \"nowhere\"\nlog_level = \"loud\"\n",
            Path::new("w.toml"),
        )
        .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("listen = \"nowhere\""), "{msg}");
        assert!(msg.contains("log_level = \"loud\""), "{msg}");
        for good in ["warn", "INFO", "info,warden=debug", "off"] {
            assert!(log_level_ok(good), "{good}");
        }
        for bad in ["loud", "info,", "=debug", "warden=loud"] {
            assert!(!log_level_ok(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::defaults().expect("defaults validate");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.supervisor.on_shutdown, OnShutdown::Stop);
        assert_eq!(c.alerts.senders, 2);
        assert_eq!(c.alerts.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn alerts_section_is_validated() {
        let err = Config::parse(
            "[alerts]\nsenders = 0\nretry_initial_ms = 0\n",
            Path::new("w.toml"),
        )
        .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("alerts.senders"), "{msg}");
        assert!(msg.contains("alerts.retry_initial_ms"), "{msg}");
        let c = Config::parse(
            "[alerts]\nsenders = 4\nmax_age_minutes = 1\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(c.alerts.senders, 4);
        assert_eq!(c.alerts.max_age, Duration::from_secs(60));
    }

    #[test]
    fn unknown_key_names_its_line() {
        let err = Config::parse(
            "listen = \"127.0.0.1:1\"\nlisten_adress = 3\n",
            Path::new("w.toml"),
        )
        .expect_err("unknown key must fail");
        let msg = err.to_string();
        assert!(msg.contains("w.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("listen_adress"), "{msg}");
    }

    #[test]
    fn all_problems_reported_at_once() {
        let err = Config::parse(
            "listen = \"nope\"\n[api]\nrequest_timeout_seconds = 0\n",
            Path::new("w.toml"),
        )
        .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("listen"), "{msg}");
        assert!(msg.contains("api.request_timeout_seconds"), "{msg}");
    }

    #[test]
    fn games_section_parses_and_validates() {
        let c = Config::parse(
            "[games]\nquery_timeout_seconds = 2\nrcon_auth_cool_down_seconds = 5\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(c.games.query_timeout, Duration::from_secs(2));
        assert_eq!(c.games.rcon_timeout, Duration::from_secs(10));
        assert_eq!(c.games.rcon_auth_cool_down, Duration::from_secs(5));
        let err = Config::parse("[games]\nrcon_timeout_seconds = 0\n", Path::new("w.toml"))
            .expect_err("zero timeout");
        assert!(
            err.to_string().contains("games.rcon_timeout_seconds"),
            "{err}"
        );
    }

    #[test]
    fn full_file_parses() {
        let c = Config::parse(
            "listen = \"0.0.0.0:1234\"\ndata_dir = \"/tmp/x\"\nlog_format = \"json\"\n[supervisor]\non_shutdown = \"leave\"\n[schedule]\njob_concurrency = 3\nlease_seconds = 10\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.supervisor.on_shutdown, OnShutdown::Leave);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.schedule.job_concurrency, Some(3));
        assert_eq!(c.schedule.lease, Duration::from_secs(10));
        assert_eq!(c.schedule.keep_runs, 200);
    }

    #[test]
    fn fleet_name_defaults_to_local_and_is_checked() {
        assert_eq!(Config::defaults().expect("defaults").fleet.name, "local");
        let c = Config::parse("[fleet]\nname = \"box2\"\n", Path::new("t.toml")).expect("ok");
        assert_eq!(c.fleet.name, "box2");
        let e = Config::parse("[fleet]\nname = \"Box 2\"\n", Path::new("t.toml"))
            .expect_err("invalid name");
        assert!(e.to_string().contains("fleet.name"), "{e}");
    }

    #[test]
    fn install_section_parses_and_validates() {
        let c = Config::parse(
            "[install]\nsteamcmd = \"/opt/steamcmd/steamcmd.sh\"\ndir = \"games\"\nmojang_url = \"http://127.0.0.1:1\"\nsteamcmd_attempts = 5\nsteamcmd_retry_seconds = 0\njava = \"/opt/jdk21/bin/java\"\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(
            c.install.steamcmd.as_deref(),
            Some(Path::new("/opt/steamcmd/steamcmd.sh"))
        );
        assert_eq!(c.install.root(Path::new("/d")), PathBuf::from("/d/games"));
        assert_eq!(c.install.mojang_url, "http://127.0.0.1:1");
        assert_eq!(c.install.paper_url, "https://api.papermc.io");
        assert_eq!(
            c.install.steamcmd_url,
            "https://steamcdn-a.akamaihd.net/client/installer/"
        );
        assert_eq!(c.install.steamcmd_attempts, 5);
        assert_eq!(c.install.steamcmd_retry, Duration::ZERO);
        assert_eq!(c.install.steamcmd_timeout, Duration::from_secs(7200));
        assert_eq!(
            c.install.java.as_deref(),
            Some(Path::new("/opt/jdk21/bin/java"))
        );
        let d = Config::defaults().expect("defaults");
        assert_eq!(d.install.java, None);
        assert_eq!(d.install.root(Path::new("/d")), PathBuf::from("/d/servers"));
        let err = Config::parse(
            "[install]\npaper_url = \"ftp://x\"\nsteamcmd_attempts = 0\n",
            Path::new("w.toml"),
        )
        .expect_err("invalid")
        .to_string();
        assert!(err.contains("install.paper_url"), "{err}");
        assert!(err.contains("install.steamcmd_attempts"), "{err}");
    }

    #[test]
    fn windows_section_and_paths() {
        let c = Config::parse(
            "data_dir = 'C:\\Program Files\\warden data'\n[windows]\npriority = \"idle\"\nkill_programs_on_exit = true\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(c.windows.priority, Priority::Idle);
        assert!(c.windows.kill_programs_on_exit);
        assert_eq!(c.data_dir, PathBuf::from(r"C:\Program Files\warden data"));
        let d = Config::defaults().expect("defaults");
        assert_eq!(d.windows.priority, Priority::BelowNormal);
        assert!(!d.windows.kill_programs_on_exit);
        let err = Config::parse(
            "[supervisor]\non_shutdown = \"leave\"\n[windows]\nkill_programs_on_exit = true\n",
            Path::new("w.toml"),
        )
        .expect_err("contradiction");
        assert!(err.to_string().contains("kill_programs_on_exit"), "{err}");
    }
}
