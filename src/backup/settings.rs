//! Per-program backup settings: what to include, where archives go, how hard to compress,
//! how many to keep, and how the program's data is made consistent while it is read
//! (console steps before and after, or stopping the program). Types and validation only.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::program::FieldError;

/// How a program is backed up. Every field has a default, so `{}` is valid: everything
/// in the program's working directory, into `<backup.dir>/<program>`, zstd level 3, kept
/// forever, no consistency steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// Paths to include, as globs relative to the program's working directory. A matching
    /// directory includes everything under it. `*` stays within one path segment, `**`
    /// crosses segments. Default `["**"]` (everything).
    #[schema(example = json!(["world", "server.properties"]))]
    pub include: Vec<String>,
    /// Paths to leave out, as globs; a matching directory is skipped with all it holds.
    #[schema(example = json!(["logs", "**/*.tmp"]))]
    pub exclude: Vec<String>,
    /// Directory the backups are written to; absolute, or relative to warden's data
    /// directory. Default `<backup.dir>/<program>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// zstd compression level, 1 (fastest) to 19 (smallest). Default 3.
    pub zstd_level: i32,
    /// Read at most this many MiB per second (unset: as fast as the low IO priority allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mib_per_second: Option<u32>,
    /// Which finished backups to keep; unset fields keep everything.
    pub retention: RetentionPolicy,
    /// Steps run in order before the data is read (only while the program runs), e.g.
    /// `save-off` then `save-all` waiting for `Saved the game`. A failing step fails the
    /// backup.
    pub pre: Vec<Step>,
    /// Steps run in order after the data was read — always, even when the backup failed
    /// or was cancelled — e.g. `save-on`.
    pub post: Vec<Step>,
    /// Stop the program for the backup (graceful stop sequence) and start it again
    /// afterwards, for programs without a save command. Excludes `pre`/`post` steps.
    pub stop_during_backup: bool,
    /// How often the whole backup is retried when a file changed while it was read.
    pub change_retries: u32,
    /// After the retries: `warn` keeps the backup and lists the changed files, `fail`
    /// fails it.
    pub on_change: OnChange,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            include: vec!["**".to_string()],
            exclude: Vec::new(),
            destination: None,
            zstd_level: 3,
            max_mib_per_second: None,
            retention: RetentionPolicy::default(),
            pre: Vec::new(),
            post: Vec::new(),
            stop_during_backup: false,
            change_retries: 1,
            on_change: OnChange::Warn,
        }
    }
}

/// What to do with files that kept changing while they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// Keep the backup; the files are marked `changed` in the manifest and listed in the
    /// backup's warnings.
    #[default]
    Warn,
    /// Fail the backup.
    Fail,
}

/// Which finished backups to keep (grandfather-father-son). A backup is kept if any rule
/// keeps it; with no rule set, every backup is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Keep the N newest backups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the N most recent days that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the N most recent ISO weeks that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the N most recent months that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
}

impl RetentionPolicy {
    /// True when no rule is set (keep everything).
    pub fn keeps_all(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
    }
}

/// A consistency step: a console line, optionally followed by waiting for a console line
/// that contains a text (the wait starts listening before the line is sent, so a fast
/// answer is never missed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The line written to the program's standard input.
    #[schema(example = "save-all")]
    pub stdin: String,
    /// Wait until the program prints a line containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Saved the game")]
    pub wait_for: Option<String>,
    /// Seconds to wait for `wait_for` before the step fails (default 30).
    #[serde(default = "default_step_timeout")]
    pub timeout_seconds: u64,
}

fn default_step_timeout() -> u64 {
    30
}

/// Compiled include/exclude globs.
#[derive(Debug, Clone)]
pub struct Filter {
    include: GlobSet,
    exclude: GlobSet,
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    // `*` must not cross `/`, or `*.dat` would match `region/r.0.0.dat` and surprise people.
    GlobBuilder::new(pattern.trim_end_matches('/'))
        .literal_separator(true)
        .build()
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, (usize, globset::Error)> {
    let mut b = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        b.add(glob(p).map_err(|e| (i, e))?);
    }
    b.build().map_err(|e| (0, e))
}

impl Filter {
    /// Compiles include and exclude globs (already validated, or from a manifest).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, String> {
        let include = glob_set(include).map_err(|(i, e)| format!("include[{i}]: {e}"))?;
        let exclude = glob_set(exclude).map_err(|(i, e)| format!("exclude[{i}]: {e}"))?;
        Ok(Filter { include, exclude })
    }

    /// True if the relative path (with `/` separators) matches an include glob.
    pub fn includes(&self, rel: &str) -> bool {
        self.include.is_match(rel)
    }

    /// True if the relative path matches an exclude glob.
    pub fn excludes(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }
}

fn single_line(field: &str, v: &str, problems: &mut Vec<FieldError>) {
    if v.is_empty() {
        problems.push(FieldError::required(field));
    } else if v.len() > 8192 {
        problems.push(FieldError::too_long(field, 8192));
    } else if v.contains('\n') || v.contains('\r') {
        problems.push(FieldError::control_chars(field));
    }
}

impl BackupSettings {
    /// Every problem with these settings, naming its field.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if self.include.is_empty() {
            problems.push(FieldError::required("include"));
        }
        for (name, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, p) in list.iter().enumerate() {
                if p.starts_with('/') || p.split('/').any(|seg| seg == "..") {
                    problems.push(FieldError::invalid_path(format!("{name}[{i}]"), p));
                } else if let Err(e) = glob(p) {
                    problems.push(FieldError::invalid(
                        format!("{name}[{i}]"),
                        p,
                        &format!("not a valid glob: {e}"),
                    ));
                }
            }
        }
        if let Some(d) = &self.destination
            && d.trim().is_empty()
        {
            problems.push(FieldError::required("destination"));
        }
        if !(1..=19).contains(&self.zstd_level) {
            problems.push(FieldError::out_of_range("zstd_level", 1, 19));
        }
        if self.max_mib_per_second == Some(0) {
            problems.push(FieldError::too_small("max_mib_per_second", 1));
        }
        let r = &self.retention;
        for (name, v) in [
            ("keep_last", r.keep_last),
            ("keep_daily", r.keep_daily),
            ("keep_weekly", r.keep_weekly),
            ("keep_monthly", r.keep_monthly),
        ] {
            if v == Some(0) {
                problems.push(FieldError::too_small(format!("retention.{name}"), 1));
            }
        }
        if self.change_retries > 10 {
            problems.push(FieldError::too_large("change_retries", 10));
        }
        if self.stop_during_backup && !(self.pre.is_empty() && self.post.is_empty()) {
            problems.push(FieldError::conflicts_with("stop_during_backup", "pre/post"));
        }
        for (name, steps) in [("pre", &self.pre), ("post", &self.post)] {
            for (i, s) in steps.iter().enumerate() {
                single_line(&format!("{name}[{i}].stdin"), &s.stdin, &mut problems);
                if let Some(w) = &s.wait_for {
                    single_line(&format!("{name}[{i}].wait_for"), w, &mut problems);
                }
                if !(1..=3600).contains(&s.timeout_seconds) {
                    problems.push(FieldError::out_of_range(
                        format!("{name}[{i}].timeout_seconds"),
                        1,
                        3600,
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_valid_default() {
        let s: BackupSettings = serde_json::from_str("{}").expect("parse");
        assert_eq!(s, BackupSettings::default());
        assert!(s.validate().is_empty());
    }

    #[test]
    fn problems_name_their_fields() {
        let s: BackupSettings = serde_json::from_value(serde_json::json!({
            "include": ["../x", "[bad"],
            "zstd_level": 40,
            "retention": {"keep_last": 0},
            "stop_during_backup": true,
            "pre": [{"stdin": "save\nall", "timeout_seconds": 0}]
        }))
        .expect("parse");
        let fields: Vec<String> = s.validate().into_iter().map(|p| p.field).collect();
        for f in [
            "include[0]",
            "include[1]",
            "zstd_level",
            "retention.keep_last",
            "stop_during_backup",
            "pre[0].stdin",
            "pre[0].timeout_seconds",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<BackupSettings>(r#"{"incluude": []}"#).is_err());
    }

    #[test]
    fn star_stays_within_a_segment() {
        let f = Filter::new(&["*.dat".into()], &["logs/".into()]).expect("filter");
        assert!(f.includes("a.dat"));
        assert!(!f.includes("region/a.dat"));
        assert!(f.excludes("logs"));
        let all = Filter::new(&["**".into()], &[]).expect("filter");
        assert!(all.includes("a/b/c"));
    }
}
