//! The `update` section of a program installed from a template: how often to look for a
//! new build, when an update may be applied, and its safety nets (backup first, roll back
//! when the new build does not become ready). The pipeline itself is `install::update`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;

/// When a found update is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyMode {
    /// As soon as no player is online (the default).
    #[default]
    WhenEmpty,
    /// When empty, or after `max_wait` with warnings at `warn` before it.
    WarnThenForce,
    /// Only when someone asks (`POST …/update/apply`, `warden ctl update apply`).
    Manual,
}

/// Update settings of a program (`[programs.NAME.update]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// How often to check for a new build (`6h`); a random tenth is added so servers do
    /// not ask at once. No automatic checks when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval: Option<String>,
    /// When a new build is applied.
    #[serde(default)]
    pub apply: ApplyMode,
    /// `warn_then_force`: longest wait for the server to empty (`2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<String>,
    /// `warn_then_force`: lead times before the forced stop at which players are warned
    /// (`["10m", "1m", "10s"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warn: Vec<String>,
    /// Take a verified backup after the stop, before any file changes (default true).
    #[serde(default = "yes")]
    pub backup_first: bool,
    /// Restore the backup and start the old build when the new one fails (default true).
    #[serde(default = "yes")]
    pub rollback: bool,
    /// Longest wait for the new build to become ready (default `10m`).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: String,
    /// A console line (regular expression) by which the server says an update is
    /// available: when it prints a matching line, warden checks for updates at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_line: Option<String>,
    /// `announce_line`: fewest time between two checks it triggers (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_debounce: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_ready_timeout() -> String {
    "10m".into()
}

impl Default for UpdateSpec {
    fn default() -> UpdateSpec {
        UpdateSpec {
            check_interval: None,
            apply: ApplyMode::default(),
            max_wait: None,
            warn: Vec::new(),
            backup_first: true,
            rollback: true,
            ready_timeout: default_ready_timeout(),
            announce_line: None,
            announce_debounce: None,
        }
    }
}

/// Default fewest time between two checks an `announce_line` triggers.
pub const DEFAULT_ANNOUNCE_DEBOUNCE: Duration = Duration::from_secs(600);

/// Most warnings before a forced update (as for warned stops).
pub const MAX_WARNINGS: usize = 10;

/// Shortest check interval (Steam rate-limits eager clients).
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(60);

fn duration(text: &str) -> Option<Duration> {
    crate::duration::parse(text).ok()
}

impl UpdateSpec {
    /// The check interval, when automatic checks are on.
    pub fn check_every(&self) -> Option<Duration> {
        self.check_interval.as_deref().and_then(duration)
    }

    /// The readiness deadline of a new build.
    pub fn ready_within(&self) -> Duration {
        duration(&self.ready_timeout).unwrap_or(Duration::from_secs(600))
    }

    /// The compiled `announce_line`, when it is set and valid.
    pub fn announce_regex(&self) -> Option<regex::Regex> {
        regex::Regex::new(self.announce_line.as_deref()?).ok()
    }

    /// Fewest time between two checks an `announce_line` triggers.
    pub fn announce_every(&self) -> Duration {
        self.announce_debounce
            .as_deref()
            .and_then(duration)
            .unwrap_or(DEFAULT_ANNOUNCE_DEBOUNCE)
    }

    /// `warn_then_force`'s longest wait.
    pub fn max_wait_time(&self) -> Option<Duration> {
        self.max_wait.as_deref().and_then(duration)
    }

    /// Warning lead times in seconds, longest first.
    pub fn warn_seconds(&self) -> Vec<u64> {
        let mut w: Vec<u64> = self
            .warn
            .iter()
            .filter_map(|t| duration(t))
            .map(|d| d.as_secs())
            .filter(|s| *s > 0)
            .collect();
        w.sort_unstable_by(|a, b| b.cmp(a));
        w.dedup();
        w
    }

    /// Problems with these settings, fields named `update.…`.
    pub fn validate(&self, errs: &mut Vec<FieldError>) {
        let mut err = |e: FieldError| errs.push(e.prefixed("update."));
        let check = |t: &str| crate::duration::parse(t).ok();
        if let Some(c) = &self.check_interval {
            match check(c) {
                Some(d) if d < MIN_CHECK_INTERVAL => {
                    err(FieldError::too_small("check_interval", "1m"));
                }
                Some(_) => {}
                None => err(FieldError::invalid_duration("check_interval", c)),
            }
        }
        match check(&self.ready_timeout) {
            Some(d) if d.is_zero() || d > Duration::from_secs(86_400) => {
                err(FieldError::out_of_range("ready_timeout", "1s", "1d"));
            }
            Some(_) => {}
            None => err(FieldError::invalid_duration(
                "ready_timeout",
                &self.ready_timeout,
            )),
        }
        let max_wait = match &self.max_wait {
            Some(m) => match check(m) {
                Some(d) if d.is_zero() || d > Duration::from_secs(7 * 86_400) => {
                    err(FieldError::out_of_range("max_wait", "1s", "7d"));
                    None
                }
                Some(d) => Some(d),
                None => {
                    err(FieldError::invalid_duration("max_wait", m));
                    None
                }
            },
            None => None,
        };
        if self.apply == ApplyMode::WarnThenForce && self.max_wait.is_none() {
            err(FieldError::required("max_wait"));
        }
        if let Some(line) = &self.announce_line {
            if line.is_empty() {
                err(FieldError::required("announce_line"));
            } else if let Err(e) = regex::Regex::new(line) {
                err(FieldError::invalid(
                    "announce_line",
                    line,
                    &format!("not a regular expression: {e}"),
                ));
            }
        }
        if let Some(d) = &self.announce_debounce {
            match check(d) {
                Some(v) if v.is_zero() => err(FieldError::too_small("announce_debounce", "1s")),
                Some(_) => {}
                None => err(FieldError::invalid_duration("announce_debounce", d)),
            }
        }
        if self.warn.len() > MAX_WARNINGS {
            err(FieldError::too_many("warn", MAX_WARNINGS));
        }
        for w in &self.warn {
            match check(w) {
                Some(d) if d.is_zero() => err(FieldError::too_small("warn", "1s")),
                Some(d) if max_wait.is_some_and(|m| d > m) => err(FieldError::too_large(
                    "warn",
                    self.max_wait.clone().unwrap_or_default(),
                )),
                Some(_) => {}
                None => err(FieldError::invalid_duration("warn", w)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_bad_values_name_their_field() {
        let d: UpdateSpec = serde_json::from_str("{}").expect("empty");
        assert_eq!(d, UpdateSpec::default());
        assert!(d.backup_first && d.rollback && d.check_every().is_none());
        assert_eq!(d.ready_within(), Duration::from_secs(600));
        let mut errs = Vec::new();
        d.validate(&mut errs);
        assert!(errs.is_empty(), "{errs:?}");

        let bad = UpdateSpec {
            check_interval: Some("5s".into()),
            apply: ApplyMode::WarnThenForce,
            warn: vec!["10m".into(), "soon".into()],
            ready_timeout: "x".into(),
            announce_line: Some("(".into()),
            announce_debounce: Some("0s".into()),
            ..UpdateSpec::default()
        };
        let mut errs = Vec::new();
        bad.validate(&mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "update.check_interval",
                "update.ready_timeout",
                "update.max_wait",
                "update.announce_line",
                "update.announce_debounce",
                "update.warn"
            ]
        );
        assert_eq!(d.announce_every(), DEFAULT_ANNOUNCE_DEBOUNCE);
        assert!(d.announce_regex().is_none());
        let announcing = UpdateSpec {
            announce_line: Some("update .* available".into()),
            announce_debounce: Some("30m".into()),
            ..UpdateSpec::default()
        };
        assert!(
            announcing
                .announce_regex()
                .is_some_and(|r| r.is_match("[INFO] update 1.2 available"))
        );
        assert_eq!(announcing.announce_every(), Duration::from_secs(1800));
        let ok = UpdateSpec {
            apply: ApplyMode::WarnThenForce,
            max_wait: Some("1h".into()),
            warn: vec!["1m".into(), "10m".into()],
            ..UpdateSpec::default()
        };
        assert_eq!(ok.warn_seconds(), vec![600, 60]);
    }
}
