//! Daemon configuration: the TOML file, its defaults, and validation into typed values.
//!
//! Two stages, as in ripgrep: [`RawConfig`] is what serde reads (every key optional,
//! unknown keys rejected with their line), [`Config`] is the validated result with real
//! types. Every validation problem is collected so the user sees all of them at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

/// CPU priority class of warden's own process on Windows (programs always start at normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Runs only when the machine is otherwise idle.
    Idle,
    /// Below the game servers it supervises (the default).
    #[default]
    BelowNormal,
    /// Like any other program.
    Normal,
    /// Above normal programs.
    AboveNormal,
    /// Above nearly everything; rarely wise.
    High,
}

/// The file as written by the user. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    supervisor: RawSupervisor,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    windows: RawWindows,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    events_days: Option<u64>,
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
    /// Windows-only settings (accepted and ignored elsewhere, so one file serves both).
    pub windows: WindowsConfig,
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
}

/// Retention of stored history.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Lifecycle events older than this are pruned.
    pub events: Duration,
}

/// Windows-only settings.
#[derive(Debug, Clone)]
pub struct WindowsConfig {
    /// Priority class warden sets for itself at start.
    pub priority: Priority,
    /// Create each program's job object with "kill on job close", so that programs die
    /// with warden even when it crashes. Incompatible with `on_shutdown = "leave"`.
    pub kill_programs_on_exit: bool,
}

/// A configuration problem: which file, where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
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
        let mut problems = Vec::new();
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                problems.push(format!(
                    "listen = {listen_text:?} is not an address with a port; write e.g. \"127.0.0.1:9180\" or \"0.0.0.0:9180\""
                ));
                SocketAddr::from(([127, 0, 0, 1], 9180))
            }
        };
        let log_level = raw.log_level.unwrap_or_else(|| "info".to_string());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            problems.push(format!(
                "log_level = {log_level:?} is not a valid filter; use one of error, warn, info, debug, trace"
            ));
        }
        let mut positive = |key: &str, v: Option<u64>, default: u64| -> u64 {
            let v = v.unwrap_or(default);
            if v == 0 {
                problems.push(format!("{key} must be greater than 0"));
                return default;
            }
            v
        };
        let shutdown_timeout = positive(
            "supervisor.shutdown_timeout_seconds",
            raw.supervisor.shutdown_timeout_seconds,
            60,
        );
        let ring = positive(
            "supervisor.console_ring_lines",
            raw.supervisor.console_ring_lines.map(|v| v as u64),
            2000,
        );
        let log_max = positive(
            "supervisor.log_file_max_bytes",
            raw.supervisor.log_file_max_bytes,
            10 * 1024 * 1024,
        );
        let request_timeout = positive(
            "api.request_timeout_seconds",
            raw.api.request_timeout_seconds,
            30,
        );
        let body_limit = positive(
            "api.body_limit_bytes",
            raw.api.body_limit_bytes.map(|v| v as u64),
            1024 * 1024,
        );
        let session_hours = positive("api.session_hours", raw.api.session_hours, 24 * 7);
        let login_rate = positive(
            "api.login_attempts_per_minute",
            raw.api.login_attempts_per_minute.map(u64::from),
            10,
        );
        let events_days = positive("retention.events_days", raw.retention.events_days, 90);
        let on_shutdown = raw.supervisor.on_shutdown.unwrap_or_default();
        let kill_programs_on_exit = raw.windows.kill_programs_on_exit.unwrap_or(false);
        if kill_programs_on_exit && on_shutdown == OnShutdown::Leave {
            problems.push(
                "windows.kill_programs_on_exit = true contradicts supervisor.on_shutdown = \"leave\"; choose one"
                    .to_string(),
            );
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        Ok(Config {
            listen,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            log_level,
            log_format: raw.log_format.unwrap_or_default(),
            supervisor: SupervisorConfig {
                on_shutdown,
                shutdown_timeout: Duration::from_secs(shutdown_timeout),
                console_ring_lines: ring as usize,
                log_file_max_bytes: log_max,
                log_files_keep: raw.supervisor.log_files_keep.unwrap_or(5),
            },
            api: ApiConfig {
                request_timeout: Duration::from_secs(request_timeout),
                body_limit_bytes: body_limit as usize,
                session_ttl: Duration::from_secs(session_hours * 3600),
                login_attempts_per_minute: u32::try_from(login_rate).unwrap_or(u32::MAX),
            },
            retention: RetentionConfig {
                events: Duration::from_secs(events_days * 86_400),
            },
            windows: WindowsConfig {
                priority: raw.windows.priority.unwrap_or_default(),
                kill_programs_on_exit,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::defaults().expect("defaults validate");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.supervisor.on_shutdown, OnShutdown::Stop);
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
    fn full_file_parses() {
        let c = Config::parse(
            "listen = \"0.0.0.0:1234\"\ndata_dir = \"/tmp/x\"\nlog_format = \"json\"\n[supervisor]\non_shutdown = \"leave\"\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.supervisor.on_shutdown, OnShutdown::Leave);
        assert_eq!(c.log_format, LogFormat::Json);
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
