//! What a program *is*: the user-editable [`ProgramSpec`] (same field names in JSON, TOML
//! and the CLI) and its validation. How a program *runs* lives in `supervisor`.

mod field;
pub mod game;
pub mod hooks;
pub mod power;
mod status;
pub mod update;

use std::collections::BTreeMap;

pub use field::{FieldCode, FieldError};
pub use status::{ExitInfo, GameHealth, HealthState, ProgramStatus, State, StateReason};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A supervised program as the user defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Unique slug used in URLs and the CLI: lowercase letters, digits, `-` and `_`.
    #[schema(example = "survival")]
    pub name: String,
    /// Human-friendly name shown in the dashboard and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Executable to run (a path, or a name looked up in `PATH`).
    #[schema(example = "java")]
    pub command: String,
    /// Arguments passed to the command.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory; warden's own working directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment variables (added to warden's environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Unix user to run as (a name or a numeric uid); its primary group unless `group`
    /// says otherwise. Needs warden to run as root. Not available on Windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unix group to run as (a name or a numeric gid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Let the program run as root when warden runs as root. Without it (and without
    /// `user`), a warden running as root refuses to start the program.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_root: bool,
    /// Start the program when warden starts.
    #[serde(default)]
    pub autostart: bool,
    /// Seconds the program must stay up to count as started (0 = at once). With a game
    /// readiness check, the longest wait for it before it counts as started anyway
    /// (0 = wait for readiness without limit).
    #[serde(default = "default_start_seconds")]
    pub start_seconds: u64,
    /// What to do when the program exits on its own.
    #[serde(default)]
    pub restart: RestartSpec,
    /// How to stop the program.
    #[serde(default)]
    pub stop: StopSpec,
    /// Game server integration: profile, RCON, query, readiness, liveness (see `games`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game: Option<game::GameSpec>,
    /// The folder the file browser shows, relative to `cwd` (default: `cwd` itself).
    /// It can only narrow the view: `..` and absolute paths are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_root: Option<String>,
    /// Programs to start before this one, when they start at all: if one of them is
    /// starting (or autostarts with warden), this program waits until it is running and
    /// ready. Stops go in reverse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Programs that must be running and ready before this one starts (it waits for
    /// them, up to `deps_timeout_seconds`; `start --with-deps` starts them too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// The longest wait for `after`/`requires` before the start is given up.
    #[serde(
        default = "power::default_deps_timeout",
        skip_serializing_if = "power::is_default_deps_timeout"
    )]
    pub deps_timeout_seconds: u64,
    /// Resource limits (memory, CPU, processes, I/O weight, cores, priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<power::Limits>,
    /// Restart the program (gracefully, as a requested restart) when a condition over its
    /// resource samples holds for a while, in the alert rule grammar:
    /// `["memory_bytes > 6GiB for 10m"]`. The `for` part is required; it is also the
    /// shortest time between two such restarts, so a rule cannot restart-loop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["memory_bytes > 6GiB for 10m"]))]
    pub restart_when: Vec<String>,
    /// Sleep when empty: stop a game server after it has had no players for a while and
    /// wake it when someone connects (warden answers on its port meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<power::IdleSpec>,
    /// Commands or HTTP requests run on this program's events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<hooks::HookSpec>,
    /// Custom actions: named commands shown as buttons and run by `warden ctl action`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub actions: BTreeMap<String, hooks::ActionSpec>,
    /// Labels that grants can name ("console on every program tagged `friends`"):
    /// lowercase letters, digits, `-` and `_`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// How a program installed from a template is updated (checks, when to apply,
    /// backup first, rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<update::UpdateSpec>,
}

/// Why free text (a display name, a description) is refused, if it is: control
/// characters (NUL, newlines, ANSI escapes) and bidirectional overrides would let a name
/// break log lines or disguise itself in the dashboard.
pub fn unclean_text(s: &str) -> Option<String> {
    let bad = s.chars().find(|c| {
        c.is_control()
            || matches!(
                *c,
                '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    })?;
    Some(format!(
        "must not contain control characters or bidirectional overrides (found U+{:04X})",
        bad as u32
    ))
}

fn default_start_seconds() -> u64 {
    1
}

/// When to restart a program that exited without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    Never,
    /// Restart after a non-zero exit or a signal (the default).
    #[default]
    OnFailure,
    /// Restart after every exit that was not requested. A clean exit (code 0) is then
    /// `exited`, not a crash, and does not count toward `max_failed_starts`; only the
    /// clean-exit guard slows a program that exits cleanly in a tight loop.
    Always,
}

/// Restart policy and backoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestartSpec {
    /// `never`, `on-failure` (default) or `always`.
    pub policy: RestartPolicy,
    /// Delay before the second consecutive restart; doubles for each next one. The first
    /// restart after a crash is immediate.
    pub backoff_initial_ms: u64,
    /// Upper bound of the backoff delay.
    pub backoff_max_ms: u64,
    /// Give up (state `fatal`) after this many failures within `window_seconds`.
    pub max_failed_starts: u32,
    /// The window for `max_failed_starts`; a run longer than this resets the backoff.
    pub window_seconds: u64,
}

impl Default for RestartSpec {
    fn default() -> Self {
        RestartSpec {
            policy: RestartPolicy::OnFailure,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
            max_failed_starts: 5,
            window_seconds: 60,
        }
    }
}

/// The stop sequence: a graceful step, a wait, then killing the whole process group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StopSpec {
    /// Signal sent to the program's process group (ignored when `stdin` is set).
    /// One of SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL.
    pub signal: String,
    /// A line written to the program's stdin instead of a signal (e.g. `stop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Seconds to wait after the graceful step before killing the process group.
    pub timeout_seconds: u64,
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec {
            signal: "SIGTERM".to_string(),
            stdin: None,
            timeout_seconds: 30,
        }
    }
}

/// Signals accepted in `stop.signal`.
pub const STOP_SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL",
];

/// A programs file as `warden apply` reads it and the dashboard exports it: `[[program]]`
/// tables with the API's field names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramsFile {
    /// The programs, in file order.
    #[serde(default)]
    pub program: Vec<ProgramSpec>,
}

/// Checks a program name: 1–63 chars, lowercase ASCII letters, digits, `-`, `_`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

impl ProgramSpec {
    /// A program running `command`, with every other field at its default (as a spec
    /// giving only `name` and `command` would have).
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> ProgramSpec {
        ProgramSpec {
            name: name.into(),
            display_name: None,
            command: command.into(),
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            user: None,
            group: None,
            allow_root: false,
            autostart: false,
            start_seconds: default_start_seconds(),
            restart: RestartSpec::default(),
            stop: StopSpec::default(),
            game: None,
            files_root: None,
            after: Vec::new(),
            requires: Vec::new(),
            deps_timeout_seconds: power::default_deps_timeout(),
            limits: None,
            restart_when: Vec::new(),
            idle: None,
            hooks: Vec::new(),
            actions: BTreeMap::new(),
            tags: Vec::new(),
            update: None,
        }
    }

    /// Where the command resolves, as the supervisor would run it: a path (relative ones
    /// against `cwd`) or a name looked up in `PATH` (the spec's own `PATH` when it sets
    /// one). An error names the field and says what is missing, so a typo fails the save
    /// (`422`) instead of a start. Separate from [`validate`](Self::validate) because it
    /// depends on this machine: a stored program whose command later disappears still
    /// loads, and fails its start with a `spawn_failed` reason.
    pub fn resolve_command(&self) -> Result<std::path::PathBuf, FieldError> {
        let cwd = match &self.cwd {
            Some(c) => std::path::PathBuf::from(c),
            None => std::env::current_dir().unwrap_or_default(),
        };
        if self.cwd.is_some() && !cwd.is_dir() {
            return Err(FieldError::not_found("cwd", &cwd.display().to_string()));
        }
        let path = self
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        which::which_in(&self.command, Some(path), &cwd).map_err(|_| {
            let is_path = self.command.contains('/') || self.command.contains('\\');
            let full = cwd.join(&self.command);
            if is_path && full.exists() {
                FieldError::command_not_executable("command", &full.display().to_string())
            } else if is_path {
                FieldError::command_not_found("command", &full.display().to_string())
            } else {
                FieldError::command_not_found("command", &self.command)
            }
        })
    }

    /// Every problem with this spec; empty when valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut err = |e: FieldError| errs.push(e);
        if !valid_name(&self.name) {
            err(FieldError::invalid_name("name", &self.name));
        }
        if self.command.trim().is_empty() {
            err(FieldError::required("command"));
        }
        if self.command.contains('\0') || self.args.iter().any(|a| a.contains('\0')) {
            err(FieldError::control_chars("command"));
        }
        if let Some(d) = &self.display_name {
            if d.chars().count() > 200 {
                err(FieldError::too_long("display_name", 200));
            }
            if unclean_text(d).is_some() {
                err(FieldError::control_chars("display_name"));
            }
        }
        for t in &self.tags {
            if !valid_name(t) {
                err(FieldError::invalid_name("tags", t));
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                err(FieldError::invalid_name("env", k));
            }
        }
        if self.start_seconds > 3600 {
            err(FieldError::too_large("start_seconds", 3600));
        }
        let r = &self.restart;
        if r.backoff_max_ms < r.backoff_initial_ms {
            err(FieldError::too_small(
                "restart.backoff_max_ms",
                r.backoff_initial_ms,
            ));
        }
        if r.max_failed_starts == 0 {
            err(FieldError::too_small("restart.max_failed_starts", 1));
        }
        if r.window_seconds == 0 {
            err(FieldError::too_small("restart.window_seconds", 1));
        }
        if !STOP_SIGNALS.contains(&self.stop.signal.as_str()) {
            err(FieldError::not_one_of(
                "stop.signal",
                &self.stop.signal,
                STOP_SIGNALS,
            ));
        }
        if let Some(line) = &self.stop.stdin
            && (line.contains('\n') || line.contains('\0'))
        {
            err(FieldError::control_chars("stop.stdin"));
        }
        if self.stop.timeout_seconds == 0 || self.stop.timeout_seconds > 3600 {
            err(FieldError::out_of_range("stop.timeout_seconds", 1, 3600));
        }
        if let Some(root) = &self.files_root {
            if crate::relpath::RelPath::parse(root).is_err() {
                err(FieldError::invalid_path("files_root", root));
            }
            if self.cwd.is_none() {
                err(FieldError::needs("files_root", "cwd"));
            }
        }
        for (field, value) in [("user", &self.user), ("group", &self.group)] {
            if let Some(v) = value
                && (v.trim().is_empty()
                    || v.len() > 64
                    || unclean_text(v).is_some()
                    || v.contains(' '))
            {
                err(FieldError::invalid_name(field, v));
            }
        }
        if let Some(g) = &self.game {
            g.validate(&mut errs);
        }
        power::validate(self, &mut errs);
        if let Some(u) = &self.update {
            u.validate(&mut errs);
        }
        hooks::validate(&self.hooks, &self.actions, "", &mut errs);
        errs
    }

    /// A copy safe to show through the API: stored passwords replaced by `********`.
    pub fn masked(&self) -> ProgramSpec {
        ProgramSpec {
            game: self.game.as_ref().map(game::GameSpec::masked),
            hooks: self.hooks.iter().map(hooks::HookSpec::masked).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| {
                    let v = if secret_env_key(k) {
                        game::MASK.to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
            ..self.clone()
        }
    }

    /// True when [`ProgramSpec::masked`] would hide something.
    pub fn has_secrets(&self) -> bool {
        self.game.is_some()
            || self.env.keys().any(|k| secret_env_key(k))
            || self.hooks.iter().any(|h| h.secret.is_some())
    }

    /// Where this spec carries `********` (what the API showed), takes the stored
    /// password from `old`, so editing a shown spec never loses or replaces a secret.
    pub fn keep_secrets(&mut self, old: &ProgramSpec) {
        if let Some(g) = &mut self.game {
            g.keep_secrets(old.game.as_ref());
        }
        for (i, h) in self.hooks.iter_mut().enumerate() {
            if let Some(s) = &mut h.secret
                && s.is_mask()
                && let Some(stored) = old.hooks.get(i).and_then(|o| o.secret.clone())
            {
                *s = stored;
            }
        }
        for (k, v) in &mut self.env {
            if v == game::MASK
                && let Some(stored) = old.env.get(k)
            {
                v.clone_from(stored);
            }
        }
    }

    /// True when the program stays `starting` until a readiness check passes.
    pub fn waits_for_readiness(&self) -> bool {
        self.game
            .as_ref()
            .is_some_and(|g| g.effective_readiness().is_some())
    }
}

/// Environment variables whose values the API never shows: names that say they hold a
/// password, token, secret or key (`RCON_PASSWORD`, `DISCORD_TOKEN`, `API_KEY`…).
pub(crate) fn secret_env_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<ProgramSpec, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let s = spec(r#"{"name": "survival", "display_name": "Survival world", "command": "java", "args": ["-Xmx6G", "-jar", "server.jar", "nogui"], "cwd": "/srv/mc", "env": {"K": "v"}, "autostart": true, "start_seconds": 1, "restart": {"policy": "on-failure", "backoff_initial_ms": 0, "backoff_max_ms": 60000, "max_failed_starts": 5, "window_seconds": 60}, "stop": {"signal": "SIGTERM", "stdin": "stop", "timeout_seconds": 30}}"#)
            .expect("parses");
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let s = spec(r#"{"name":"a","command":"x"}"#).expect("parses");
        assert_eq!(s.start_seconds, 1);
        assert_eq!(s.restart.policy, RestartPolicy::OnFailure);
        assert_eq!(s.stop.signal, "SIGTERM");
        assert_eq!(s.stop.timeout_seconds, 30);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(spec(r#"{"name":"a","command":"x","comand":"y"}"#).is_err());
        assert!(spec(r#"{"name":"a","command":"x","restart":{"polcy":"never"}}"#).is_err());
    }

    #[test]
    fn every_problem_names_its_field() {
        let s = spec(r#"{"name":"Bad Name","command":" ","stop":{"signal":"SIGFOO","timeout_seconds":0},"restart":{"backoff_initial_ms":10,"backoff_max_ms":1}}"#)
            .expect("parses");
        let fields: Vec<_> = s.validate().into_iter().map(|e| e.field).collect();
        for f in [
            "name",
            "command",
            "stop.signal",
            "stop.timeout_seconds",
            "restart.backoff_max_ms",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
        }
    }

    #[test]
    fn files_root_must_stay_below_cwd() {
        let ok = spec(r#"{"name":"a","command":"x","cwd":"/srv/mc","files_root":"config"}"#)
            .expect("parses");
        assert!(ok.validate().is_empty(), "{:?}", ok.validate());
        for bad in [
            r#"{"name":"a","command":"x","cwd":"/srv","files_root":"../etc"}"#,
            r#"{"name":"a","command":"x","cwd":"/srv","files_root":"/etc"}"#,
            r#"{"name":"a","command":"x","files_root":"config"}"#,
        ] {
            let s = spec(bad).expect("parses");
            let fields: Vec<_> = s.validate().into_iter().map(|e| e.field).collect();
            assert_eq!(fields, vec!["files_root".to_string()], "{bad}");
        }
        // Absent, the field is not serialised (stored specs stay as they were).
        let plain = spec(r#"{"name":"a","command":"x"}"#).expect("parses");
        assert!(
            !serde_json::to_string(&plain)
                .expect("json")
                .contains("files_root")
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("mc-1_a"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("A"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(64)));
    }
}
