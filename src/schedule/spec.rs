//! What schedules and jobs *are*: the user-editable [`ScheduleSpec`] and [`JobSpec`] (the
//! same field names in JSON, TOML and the CLI) and their validation into per-field errors.
//! How they run lives in `chain.rs` and `job.rs`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::plan;
use super::trigger::{Trigger, Zone};
use crate::program::{FieldError, STOP_SIGNALS, valid_name};

fn yes() -> bool {
    true
}

/// A schedule: when (a trigger in a time zone) and what (a chain of tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique slug: lowercase letters, digits, `-` and `_`.
    #[schema(example = "nightly-restart")]
    pub name: String,
    /// What the schedule is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A cron expression with 5 fields (minute precision) or 6 (leading seconds field),
    /// or a simple interval such as `every 6h`, `every 30s`, `every 1h30m`.
    #[schema(example = "0 4 * * *")]
    pub trigger: String,
    /// IANA time zone of the cron expression, e.g. `Europe/Berlin`; the host's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A disabled schedule keeps its definition but never fires by itself.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What to do about fire times missed while warden was not running.
    #[serde(default)]
    pub missed: MissedPolicy,
    /// Conditions checked when the schedule fires; if one fails, the run is skipped.
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    /// The chain of tasks, run in order.
    pub tasks: Vec<TaskSpec>,
}

/// Fire times missed while warden was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Forget them (recorded as an event).
    #[default]
    Skip,
    /// Run the chain once right after warden starts, however many were missed.
    RunOnce,
}

/// Conditions of a schedule, each naming a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Skip the run unless this program is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_if_not_running: Option<String>,
    /// Skip the run unless this game server has no players online (needs the games
    /// integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_when_empty: Option<String>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        self.skip_if_not_running.is_none() && self.only_when_empty.is_none()
    }
}

/// One task of a chain: wait `offset_seconds` after the previous task, then do `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Seconds to wait after the previous task finished (for the first task: after the
    /// schedule fired).
    #[serde(default)]
    pub offset_seconds: u64,
    /// Whether a failure of this task aborts the rest of the chain (the default) or not.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// What to do.
    pub action: TaskKind,
}

/// What a failed task does to its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the chain; the run fails.
    #[default]
    Abort,
    /// Go on with the next task; the run still counts as failed.
    Continue,
}

/// The kinds of task. `rcon`, `broadcast` and `backup` are part of the vocabulary in
/// every build but only accepted when the games / backup integrations are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskKind {
    /// Start a program and wait until it is running.
    Start {
        /// Program name.
        program: String,
    },
    /// Stop a program (its stop sequence) and wait until it is stopped.
    Stop {
        /// Program name.
        program: String,
    },
    /// Restart a program and wait until it is running again.
    Restart {
        /// Program name.
        program: String,
    },
    /// Kill a program's whole process group.
    Kill {
        /// Program name.
        program: String,
    },
    /// Write a line to a program's console (stdin).
    Console {
        /// Program name.
        program: String,
        /// The line, without newline.
        line: String,
    },
    /// Send an RCON command to a game server.
    Rcon {
        /// Program name (a game server with RCON configured).
        program: String,
        /// The command.
        command: String,
    },
    /// Broadcast a message to the players of a game server.
    Broadcast {
        /// Program name (a game server).
        program: String,
        /// The message.
        message: String,
    },
    /// Make a backup.
    Backup {
        /// The program whose data is backed up (with its backup settings).
        program: String,
    },
    /// Update a server installed from a template to its latest build (in its window, backed
    /// up first, rolled back on failure) and wait for the end.
    Update {
        /// Program name (installed from a template).
        program: String,
    },
    /// Run a job.
    Job {
        /// Job name.
        job: String,
        /// Wait for the run to end (and fail the task if the run fails); default true.
        #[serde(default = "yes")]
        wait: bool,
    },
    /// Send an HTTP request; any 2xx answer (or `expect_status`) is success.
    Http {
        /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
        #[serde(default = "default_method")]
        method: String,
        /// `http://` or `https://` URL. Shown masked by the API (it may hold a secret).
        url: String,
        /// Request headers. Values are shown masked by the API.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// Request body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Seconds before the request counts as failed (default 30).
        #[serde(default = "default_http_timeout")]
        timeout_seconds: u64,
        /// The status that counts as success instead of any 2xx.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
    },
}

fn default_method() -> String {
    "GET".into()
}

fn default_http_timeout() -> u64 {
    30
}

/// HTTP methods accepted by the `http` task.
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

impl TaskKind {
    /// The `kind` tag, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskKind::Start { .. } => "start",
            TaskKind::Stop { .. } => "stop",
            TaskKind::Restart { .. } => "restart",
            TaskKind::Kill { .. } => "kill",
            TaskKind::Console { .. } => "console",
            TaskKind::Rcon { .. } => "rcon",
            TaskKind::Broadcast { .. } => "broadcast",
            TaskKind::Backup { .. } => "backup",
            TaskKind::Update { .. } => "update",
            TaskKind::Job { .. } => "job",
            TaskKind::Http { .. } => "http",
        }
    }

    /// The program the task acts on, if any.
    pub fn program(&self) -> Option<&str> {
        match self {
            TaskKind::Start { program }
            | TaskKind::Stop { program }
            | TaskKind::Restart { program }
            | TaskKind::Kill { program }
            | TaskKind::Console { program, .. }
            | TaskKind::Rcon { program, .. }
            | TaskKind::Broadcast { program, .. }
            | TaskKind::Backup { program }
            | TaskKind::Update { program } => Some(program),
            _ => None,
        }
    }
}

/// What a validation can look up: which programs and jobs exist.
pub struct Known<'a> {
    /// Names of existing programs.
    pub programs: &'a HashSet<String>,
    /// Names of existing jobs.
    pub jobs: &'a HashSet<String>,
}

impl ScheduleSpec {
    /// Every problem with this schedule; empty when valid. Also returns the parsed trigger
    /// when it is valid.
    pub fn validate(&self, known: &Known<'_>) -> (Vec<FieldError>, Option<(Trigger, Zone)>) {
        let mut errs = Vec::new();
        let mut err = |e: FieldError| errs.push(e);
        if !valid_name(&self.name) {
            err(FieldError::invalid_name("name", &self.name));
        }
        let zone = match Zone::parse(self.timezone.as_deref()) {
            Ok(z) => Some(z),
            Err(_) => {
                err(FieldError::invalid_timezone(
                    "timezone",
                    self.timezone.as_deref().unwrap_or_default(),
                ));
                None
            }
        };
        let trigger = match Trigger::parse(&self.trigger) {
            Ok(t) => Some(t),
            Err(m) => {
                err(FieldError::invalid_cron("trigger", self.trigger.trim(), &m));
                None
            }
        };
        if self.tasks.is_empty() {
            err(FieldError::required("tasks"));
        }
        if self.tasks.len() > 100 {
            err(FieldError::too_many("tasks", 100));
        }
        let program_known = |p: &str| known.programs.contains(p);
        if let Some(p) = &self.conditions.skip_if_not_running
            && !program_known(p)
        {
            err(FieldError::unknown_program(
                "conditions.skip_if_not_running",
                p,
            ));
        }
        if let Some(p) = &self.conditions.only_when_empty
            && !program_known(p)
        {
            err(FieldError::unknown_program("conditions.only_when_empty", p));
        }
        for (i, task) in self.tasks.iter().enumerate() {
            let at = format!("tasks[{i}]");
            if task.offset_seconds > 7 * 86_400 {
                err(FieldError::too_large(
                    format!("{at}.offset_seconds"),
                    7 * 86_400,
                ));
            }
            if let Some(p) = task.action.program()
                && !program_known(p)
            {
                err(FieldError::unknown_program(
                    format!("{at}.action.program"),
                    p,
                ));
            }
            match &task.action {
                TaskKind::Console { line, .. } if line.len() > 8192 => {
                    err(FieldError::too_long(format!("{at}.action.line"), 8192));
                }
                TaskKind::Console { line, .. } if line.contains('\n') || line.contains('\r') => {
                    err(FieldError::control_chars(format!("{at}.action.line")));
                }
                TaskKind::Job { job, .. } if !known.jobs.contains(job) => {
                    err(FieldError::not_found(format!("{at}.action.job"), job));
                }
                TaskKind::Http {
                    method,
                    url,
                    headers,
                    timeout_seconds,
                    expect_status,
                    ..
                } => {
                    if !HTTP_METHODS.contains(&method.as_str()) {
                        err(FieldError::not_one_of(
                            format!("{at}.action.method"),
                            method,
                            HTTP_METHODS,
                        ));
                    }
                    match reqwest::Url::parse(url) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
                        _ => err(FieldError::invalid_url(format!("{at}.action.url"), url)),
                    }
                    for (k, v) in headers {
                        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                            || reqwest::header::HeaderValue::from_str(v).is_err()
                        {
                            err(FieldError::invalid(
                                format!("{at}.action.headers"),
                                k,
                                "not a valid HTTP header",
                            ));
                        }
                    }
                    if *timeout_seconds == 0 || *timeout_seconds > 3600 {
                        err(FieldError::out_of_range(
                            format!("{at}.action.timeout_seconds"),
                            1,
                            3600,
                        ));
                    }
                    if let Some(s) = expect_status
                        && !(100..=599).contains(s)
                    {
                        err(FieldError::out_of_range(
                            format!("{at}.action.expect_status"),
                            100,
                            599,
                        ));
                    }
                }
                _ => {}
            }
        }
        let parsed = match (trigger, zone) {
            (Some(t), Some(z)) => Some((t, z)),
            _ => None,
        };
        (errs, parsed)
    }

    /// The jobs this schedule's chain runs.
    pub fn jobs(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().filter_map(|t| match &t.action {
            TaskKind::Job { job, .. } => Some(job.as_str()),
            _ => None,
        })
    }
}

/// Failure classes a retry policy can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The step exited with a non-zero code or was killed by a signal.
    Exit,
    /// The step ran longer than its `timeout_seconds`.
    Timeout,
    /// The step could not be started (command not found, bad working directory…).
    Spawn,
}

impl FailureClass {
    /// The snake_case name stored in step runs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Exit => "exit",
            FailureClass::Timeout => "timeout",
            FailureClass::Spawn => "spawn",
        }
    }
}

/// How the delay grows between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `delay_ms` every time.
    #[default]
    Fixed,
    /// `delay_ms × n` before the n-th retry.
    Linear,
    /// `delay_ms × 2^(n-1)` before the n-th retry.
    Exponential,
}

/// When and how a failed step is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySpec {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// The failure classes that are retried.
    pub on: Vec<FailureClass>,
    /// `fixed`, `linear` or `exponential`.
    pub backoff: BackoffKind,
    /// Base delay.
    pub delay_ms: u64,
    /// Upper bound of the delay.
    pub max_delay_ms: u64,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            max_retries: 0,
            on: vec![
                FailureClass::Exit,
                FailureClass::Timeout,
                FailureClass::Spawn,
            ],
            backoff: BackoffKind::Fixed,
            delay_ms: 1000,
            max_delay_ms: 60_000,
        }
    }
}

/// What happens when a job is triggered while a run of it is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Drop the new trigger (recorded as a skipped run).
    #[default]
    Skip,
    /// Run it after the current run; at most one run waits, later triggers are skipped.
    Queue,
    /// Cancel the current run gracefully, then start the new one.
    Replace,
}

/// A batch job: steps with dependencies between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Unique slug: lowercase letters, digits, `-` and `_`.
    #[schema(example = "nightly-report")]
    pub name: String,
    /// What the job does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The steps; independent ones run in parallel.
    pub steps: Vec<StepSpec>,
    /// Most steps running at once; derived from the host's cores and free memory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// `skip` (default), `queue` or `replace`.
    #[serde(default)]
    pub overlap: OverlapPolicy,
    /// Retry policy of every step that has none of its own.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Signal sent to a step's process group on cancel or timeout.
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    /// Seconds a step gets after the stop signal before its process group is killed.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_seconds: u64,
}

fn default_stop_signal() -> String {
    "SIGTERM".into()
}

fn default_stop_timeout() -> u64 {
    10
}

/// One step of a job: a command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the job; other steps name it in `depends_on`.
    pub name: String,
    /// Executable (a path, or a name looked up in `PATH`).
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory; warden's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Seconds before the step is stopped and counts as timed out; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Steps that must succeed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// This step's own retry policy (instead of the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
}

fn validate_retry(at: &str, r: &RetrySpec, errs: &mut Vec<FieldError>) {
    if r.max_retries > 100 {
        errs.push(FieldError::too_large(format!("{at}.max_retries"), 100));
    }
    if r.max_delay_ms < r.delay_ms {
        errs.push(FieldError::too_small(
            format!("{at}.max_delay_ms"),
            r.delay_ms,
        ));
    }
}

impl JobSpec {
    /// Every problem with this job, the step graph included; empty when valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if !valid_name(&self.name) {
            errs.push(FieldError::invalid_name("name", &self.name));
        }
        if self.steps.is_empty() {
            errs.push(FieldError::required("steps"));
        }
        if self.steps.len() > 200 {
            errs.push(FieldError::too_many("steps", 200));
        }
        if self.concurrency == Some(0) {
            errs.push(FieldError::too_small("concurrency", 1));
        }
        if !STOP_SIGNALS.contains(&self.stop_signal.as_str()) {
            errs.push(FieldError::not_one_of(
                "stop_signal",
                &self.stop_signal,
                STOP_SIGNALS,
            ));
        }
        if self.stop_timeout_seconds == 0 || self.stop_timeout_seconds > 3600 {
            errs.push(FieldError::out_of_range("stop_timeout_seconds", 1, 3600));
        }
        validate_retry("retry", &self.retry, &mut errs);
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if !valid_name(&s.name) {
                errs.push(FieldError::invalid_name(format!("{at}.name"), &s.name));
            }
            if s.command.trim().is_empty() {
                errs.push(FieldError::required(format!("{at}.command")));
            }
            if s.command.contains('\0') || s.args.iter().any(|a| a.contains('\0')) {
                errs.push(FieldError::control_chars(format!("{at}.command")));
            }
            for k in s.env.keys() {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    errs.push(FieldError::invalid_name(format!("{at}.env"), k));
                }
            }
            if s.timeout_seconds == Some(0) {
                errs.push(FieldError::too_small(format!("{at}.timeout_seconds"), 1));
            }
            if let Some(r) = &s.retry {
                validate_retry(&format!("{at}.retry"), r, &mut errs);
            }
        }
        errs.extend(plan::validate_graph(&self.steps));
        errs
    }

    /// The retry policy of step `i`.
    pub fn retry_of(&self, i: usize) -> &RetrySpec {
        self.steps
            .get(i)
            .and_then(|s| s.retry.as_ref())
            .unwrap_or(&self.retry)
    }
}

/// Text shown instead of a secret.
pub const MASK: &str = "********";

/// Masks the secrets of a schedule for display: header values, and everything of an HTTP
/// task's URL after its host (webhook URLs carry their token in the path or query).
pub fn masked(spec: &ScheduleSpec) -> ScheduleSpec {
    let mut out = spec.clone();
    for t in &mut out.tasks {
        if let TaskKind::Http { url, headers, .. } = &mut t.action {
            *url = mask_url(url);
            for v in headers.values_mut() {
                *v = MASK.into();
            }
        }
    }
    out
}

fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            // User info is dropped; a bare origin has nothing secret left to hide.
            let bare = u.path() == "/" && u.query().is_none() && u.fragment().is_none();
            let rest = if bare { "/" } else { "/********" };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => MASK.into(),
    }
}

/// Puts back secrets an update sent in masked form: an HTTP task whose URL or header value
/// equals the masked form of the stored task at the same position keeps the stored value,
/// so a client can send back what it read without knowing the secrets.
pub fn unmask(new: &mut ScheduleSpec, old: &ScheduleSpec) {
    for (t, o) in new.tasks.iter_mut().zip(&old.tasks) {
        if let (
            TaskKind::Http { url, headers, .. },
            TaskKind::Http {
                url: old_url,
                headers: old_headers,
                ..
            },
        ) = (&mut t.action, &o.action)
        {
            if *url == mask_url(old_url) {
                *url = old_url.clone();
            }
            for (k, v) in headers.iter_mut() {
                if v == MASK
                    && let Some(old_v) = old_headers.get(k)
                {
                    *v = old_v.clone();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known<'a>(programs: &'a HashSet<String>, jobs: &'a HashSet<String>) -> Known<'a> {
        Known { programs, jobs }
    }

    #[test]
    fn a_restart_chain_parses_and_validates() {
        let s: ScheduleSpec = serde_json::from_str(
            r#"{"name":"nightly","trigger":"0 4 * * *","timezone":"Europe/Berlin","tasks":[
                {"action":{"kind":"console","program":"mc","line":"say restart in 5 min"}},
                {"offset_seconds":300,"on_failure":"continue","action":{"kind":"job","job":"save"}},
                {"action":{"kind":"restart","program":"mc"}},
                {"action":{"kind":"http","url":"http://hook.example/x?token=1"}}]}"#,
        )
        .expect("parses");
        let programs = HashSet::from(["mc".to_string()]);
        let jobs = HashSet::from(["save".to_string()]);
        let (errs, parsed) = s.validate(&known(&programs, &jobs));
        assert!(errs.is_empty(), "{errs:?}");
        assert!(parsed.is_some());
        assert!(s.enabled);
        assert_eq!(s.missed, MissedPolicy::Skip);
    }

    #[test]
    fn unknown_fields_are_rejected_in_tasks_too() {
        let bad = r#"{"name":"a","trigger":"every 1h","tasks":[{"action":{"kind":"kill","program":"x","extra":1}}]}"#;
        assert!(serde_json::from_str::<ScheduleSpec>(bad).is_err());
        let bad = r#"{"name":"a","trigger":"every 1h","tasks":[{"action":{"kind":"dance"}}]}"#;
        assert!(serde_json::from_str::<ScheduleSpec>(bad).is_err());
    }

    #[test]
    fn unknown_programs_and_jobs_and_bad_trigger_are_reported_together() {
        let s: ScheduleSpec = serde_json::from_str(
            r#"{"name":"a","trigger":"61 * * * *","timezone":"Mars/Olympus","tasks":[
                {"action":{"kind":"start","program":"nope"}},
                {"action":{"kind":"job","job":"nojob"}}]}"#,
        )
        .expect("parses");
        let none = HashSet::new();
        let (errs, parsed) = s.validate(&known(&none, &none));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "timezone",
                "trigger",
                "tasks[0].action.program",
                "tasks[1].action.job"
            ]
        );
        assert!(parsed.is_none());
    }

    #[test]
    fn secrets_are_masked_and_restored() {
        let s: ScheduleSpec = serde_json::from_str(
            r#"{"name":"a","trigger":"every 1h","tasks":[{"action":{"kind":"http","method":"POST",
                "url":"https://discord.example:8443/api/webhooks/123/secret","headers":{"Authorization":"Bearer x"}}}]}"#,
        )
        .expect("parses");
        let m = masked(&s);
        let TaskKind::Http { url, headers, .. } = &m.tasks[0].action else {
            panic!("http task")
        };
        assert_eq!(url, "https://discord.example:8443/********");
        assert_eq!(headers["Authorization"], MASK);
        let mut back = m.clone();
        unmask(&mut back, &s);
        assert_eq!(back, s);
    }

    /// The TOML block of README.md that starts with `# {file}`.
    fn readme_block(file: &str) -> String {
        let readme = include_str!("../../README.md");
        let start = readme
            .find(&format!("# {file}"))
            .unwrap_or_else(|| panic!("README has no {file} example"));
        let rest = &readme[start..];
        rest[..rest.find("```").expect("end of block")].to_string()
    }

    #[test]
    fn the_readme_examples_parse_and_validate() {
        let s: ScheduleSpec = toml::from_str(&readme_block("nightly.toml")).expect("schedule");
        let programs = HashSet::from(["survival".to_string()]);
        let jobs = HashSet::from(["world-backup".to_string()]);
        let (errs, _) = s.validate(&known(&programs, &jobs));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.tasks[2].on_failure, OnFailure::Continue);
        let j: JobSpec = toml::from_str(&readme_block("report.toml")).expect("job");
        assert!(j.validate().is_empty(), "{:?}", j.validate());
        assert_eq!(j.retry.backoff, BackoffKind::Exponential);
        assert_eq!(j.steps[1].depends_on, ["fetch"]);
    }

    #[test]
    fn job_defaults_and_field_errors() {
        let j: JobSpec =
            serde_json::from_str(r#"{"name":"j","steps":[{"name":"a","command":"true"}]}"#)
                .expect("parses");
        assert!(j.validate().is_empty());
        assert_eq!(j.overlap, OverlapPolicy::Skip);
        assert_eq!(j.retry.max_retries, 0);
        assert_eq!(j.stop_timeout_seconds, 10);
        let j: JobSpec = serde_json::from_str(
            r#"{"name":"j","concurrency":0,"stop_signal":"SIGFOO","retry":{"delay_ms":10,"max_delay_ms":1},
                "steps":[{"name":"A","command":" ","timeout_seconds":0}]}"#,
        )
        .expect("parses");
        let fields: Vec<String> = j.validate().into_iter().map(|e| e.field).collect();
        for f in [
            "concurrency",
            "stop_signal",
            "retry.max_delay_ms",
            "steps[0].name",
            "steps[0].command",
            "steps[0].timeout_seconds",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
        }
    }
}
