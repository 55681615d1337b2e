//! What alerts are made of: the [`Notification`] queued in the outbox, channel and rule
//! definitions with their validation and secret masking, and the mapping from lifecycle
//! transitions to notifications. No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bus::{Notice, NoticeField, Severity, StateChange};
use crate::condition::valid_event;
use crate::program::{ExitInfo, FieldError, State, valid_name};

/// Shown instead of a secret in API answers.
pub const MASK: &str = "***";

/// One notification, as queued in the outbox and rendered per channel at send time. The
/// generic JSON webhook sends exactly these fields (plus `schema` and `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Event kind, e.g. `crashed`, `rule_fired`, `warden_started`, `test`.
    pub event: String,
    /// How urgent it is.
    pub severity: Severity,
    /// Program name, when the notification concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The program's display name (its name when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// One short line, e.g. `Survival world crashed`.
    pub title: String,
    /// A few words more, e.g. `exit code 3`.
    pub message: String,
    /// Labelled details, in display order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<NoticeField>,
    /// Unix ms when it happened.
    pub ts: i64,
    /// How the process ended (crashes and exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// The last console lines before a crash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
    /// The rule that fired or recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// True for "send test" messages.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

fn field(name: &str, value: impl Into<String>) -> NoticeField {
    NoticeField {
        name: name.to_string(),
        value: value.into(),
    }
}

impl Notification {
    /// The notification for a lifecycle transition, if it is one people care about:
    /// `started` (starting → running), `adopted` (stopped → running: found alive after a
    /// warden restart), `stopped`, `crashed`, `restarting` (the decision to restart, now or
    /// after a backoff), `fatal` (gave up). Other transitions (spawned, backoff over) are
    /// steps of these and stay quiet.
    pub fn from_state(c: &StateChange, display_name: &str) -> Option<Notification> {
        let (event, severity, title) = match (c.from, c.to) {
            (State::Starting, State::Running) => {
                ("started", Severity::Info, format!("{display_name} started"))
            }
            (State::Stopped, State::Running) => (
                "adopted",
                Severity::Info,
                format!("{display_name} is still running (adopted after a warden restart)"),
            ),
            (_, State::Stopped) => ("stopped", Severity::Info, format!("{display_name} stopped")),
            (_, State::Crashed) => (
                "crashed",
                Severity::Critical,
                format!("{display_name} crashed"),
            ),
            (_, State::Backoff) | (State::Crashed, State::Starting) => (
                "restarting",
                Severity::Warning,
                format!("{display_name} is restarting"),
            ),
            (_, State::Fatal) => (
                "fatal",
                Severity::Critical,
                format!("{display_name} gave up restarting"),
            ),
            _ => return None,
        };
        let mut fields = Vec::new();
        if let Some(exit) = &c.exit {
            fields.push(field("Exit", exit.description.clone()));
        }
        if let Some(pid) = c.pid {
            fields.push(field("PID", pid.to_string()));
        }
        Some(Notification {
            event: event.to_string(),
            severity,
            program: Some(c.program.clone()),
            display_name: Some(display_name.to_string()),
            title,
            message: c.reason.clone(),
            fields,
            ts: c.ts,
            exit: c.exit.clone(),
            last_lines: c.last_lines.clone(),
            rule: None,
            test: false,
        })
    }

    /// The notification for a notice from any producer.
    pub fn from_notice(n: &Notice, display_name: Option<&str>) -> Notification {
        let title = match display_name {
            Some(d) => format!("{d}: {}", n.summary),
            None => capitalise(&n.summary),
        };
        Notification {
            event: n.kind.clone(),
            severity: n.severity,
            program: n.program.clone(),
            display_name: display_name.map(str::to_string),
            title,
            message: n.summary.clone(),
            fields: n.fields.clone(),
            ts: n.ts,
            exit: None,
            last_lines: Vec::new(),
            rule: None,
            test: false,
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Where a channel delivers, with its secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// Generic JSON POST (schema `warden.alert.v1`, see the README).
    Webhook {
        /// The URL (secret: masked in answers).
        url: String,
        /// HMAC-SHA256 key: when set, `X-Warden-Signature: sha256=<hex>` signs the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Extra request headers (values are secret: masked in answers).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// A Discord webhook URL (an embed per notification).
    Discord {
        /// The webhook URL (secret).
        url: String,
    },
    /// A Slack incoming-webhook URL.
    Slack {
        /// The webhook URL (secret).
        url: String,
    },
    /// A Telegram bot message to one chat.
    Telegram {
        /// The bot token from @BotFather (secret).
        bot_token: String,
        /// The chat id (a number, or `@channelname`).
        chat_id: String,
        /// Bot API base URL.
        #[serde(default = "telegram_api")]
        api_url: String,
    },
    /// An ntfy topic (JSON publishing).
    Ntfy {
        /// The ntfy server.
        #[serde(default = "ntfy_server")]
        server: String,
        /// The topic (secret on public servers: anyone who knows it can read it).
        topic: String,
        /// Access token, for protected topics (secret).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
}

fn telegram_api() -> String {
    "https://api.telegram.org".to_string()
}

fn ntfy_server() -> String {
    "https://ntfy.sh".to_string()
}

/// A channel: a target plus which notifications it receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Unique slug: lowercase letters, digits, `-`, `_`.
    #[schema(example = "ops-discord")]
    pub name: String,
    /// Where to deliver.
    pub target: Target,
    /// Disabled channels receive nothing new (already queued notifications still go out).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Event kinds to receive (empty: all), e.g. `["crashed", "fatal", "rule_fired"]`.
    #[serde(default)]
    pub events: Vec<String>,
    /// Severities to receive (empty: all).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Programs to receive notifications about (empty: all, and warden's own).
    #[serde(default)]
    pub programs: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Checks a URL for a channel: absolute http(s).
fn check_url(field: &str, url: &str, errs: &mut Vec<FieldError>) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        // The value itself is a secret: never echo it.
        _ => errs.push(FieldError::secret_url(field)),
    }
}

/// Headers warden sets itself; a channel may not override them.
const RESERVED_HEADERS: &[&str] = &["content-type", "content-length", "host", "user-agent"];

impl ChannelSpec {
    /// Every problem with this definition; empty when valid. Messages never contain
    /// secret values.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if !valid_name(&self.name) {
            errs.push(FieldError::invalid_name("name", &self.name));
        }
        for (i, e) in self.events.iter().enumerate() {
            if !valid_event(e) {
                errs.push(FieldError::invalid(
                    format!("events[{i}]"),
                    e,
                    "give an event kind such as crashed, fatal, rule_fired",
                ));
            }
        }
        for (i, p) in self.programs.iter().enumerate() {
            if !valid_name(p) {
                errs.push(FieldError::invalid_name(format!("programs[{i}]"), p));
            }
        }
        match &self.target {
            Target::Webhook { url, headers, .. } => {
                check_url("target.url", url, &mut errs);
                for (k, v) in headers {
                    let name_ok = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok();
                    let lower = k.to_ascii_lowercase();
                    if !name_ok
                        || RESERVED_HEADERS.contains(&lower.as_str())
                        || lower.starts_with("x-warden-")
                    {
                        errs.push(FieldError::invalid(
                            format!("target.headers.{k}"),
                            k,
                            "give a valid header name other than Content-Type, Content-Length, Host, User-Agent and X-Warden-*",
                        ));
                    }
                    if reqwest::header::HeaderValue::from_str(v).is_err() {
                        errs.push(FieldError::invalid_secret(
                            format!("target.headers.{k}"),
                            "the value must be visible ASCII",
                        ));
                    }
                }
            }
            Target::Discord { url } | Target::Slack { url } => {
                check_url("target.url", url, &mut errs)
            }
            Target::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => {
                if bot_token.is_empty()
                    || !bot_token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
                {
                    errs.push(FieldError::invalid_secret(
                        "target.bot_token",
                        "must be a bot token like 123456:ABC-DEF… (from @BotFather)",
                    ));
                }
                if chat_id.trim().is_empty() {
                    errs.push(FieldError::required("target.chat_id"));
                }
                check_url("target.api_url", api_url, &mut errs);
            }
            Target::Ntfy { server, topic, .. } => {
                check_url("target.server", server, &mut errs);
                if topic.is_empty()
                    || topic.len() > 64
                    || !topic
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    errs.push(FieldError::invalid_name("target.topic", topic));
                }
            }
        }
        errs
    }

    /// Whether this channel receives `n`.
    pub fn accepts(&self, n: &Notification) -> bool {
        self.enabled
            && (self.events.is_empty() || self.events.contains(&n.event))
            && (self.severities.is_empty() || self.severities.contains(&n.severity))
            && (self.programs.is_empty()
                || n.program
                    .as_ref()
                    .is_some_and(|p| self.programs.contains(p)))
    }

    /// A copy safe to show: URLs reduced to scheme and host, secrets replaced by [`MASK`].
    pub fn masked(&self) -> ChannelSpec {
        let target = match &self.target {
            Target::Webhook {
                url,
                secret,
                headers,
            } => Target::Webhook {
                url: mask_url(url),
                secret: secret.as_ref().map(|_| MASK.to_string()),
                headers: headers
                    .keys()
                    .map(|k| (k.clone(), MASK.to_string()))
                    .collect(),
            },
            Target::Discord { url } => Target::Discord { url: mask_url(url) },
            Target::Slack { url } => Target::Slack { url: mask_url(url) },
            Target::Telegram {
                chat_id, api_url, ..
            } => Target::Telegram {
                bot_token: MASK.to_string(),
                chat_id: chat_id.clone(),
                api_url: api_url.clone(),
            },
            Target::Ntfy { server, token, .. } => Target::Ntfy {
                server: server.clone(),
                topic: MASK.to_string(),
                token: token.as_ref().map(|_| MASK.to_string()),
            },
        };
        ChannelSpec {
            target,
            ..self.clone()
        }
    }
}

/// `https://discord.com/api/webhooks/1/secret` → `https://discord.com/***`: enough to
/// recognise the endpoint, nothing that grants access.
pub fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/{MASK}", u.scheme()),
            (Some(h), None) => format!("{}://{h}/{MASK}", u.scheme()),
            _ => MASK.to_string(),
        },
        Err(_) => MASK.to_string(),
    }
}

/// What a rule does when it fires, besides notifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Restart the program (Monit-style).
    Restart,
}

/// A rule as the user defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique slug.
    #[schema(example = "survival-memory")]
    pub name: String,
    /// The program it watches; absent: every program (each on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// `METRIC OP VALUE [for DURATION]` over resource samples, e.g.
    /// `memory_bytes > 6GiB for 2m`, or `EVENT >= N in DURATION` over events, e.g.
    /// `crashed >= 3 in 10m` (a restart loop).
    #[schema(example = "memory_bytes > 6GiB for 2m")]
    pub condition: String,
    /// Severity of its notifications (default: warning; critical for event counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// After firing, do not fire again for this many seconds.
    #[serde(default)]
    pub cooldown_seconds: u64,
    /// Action on fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    /// Disabled rules are not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: State, to: State) -> StateChange {
        StateChange {
            program: "mc".into(),
            ts: 1,
            from,
            to,
            pid: Some(42),
            reason: "crashed (exit code 3)".into(),
            exit: Some(ExitInfo {
                code: Some(3),
                signal: None,
                description: "exit code 3".into(),
            }),
            last_lines: vec!["boom".into()],
        }
    }

    #[test]
    fn lifecycle_transitions_map_to_events() {
        let cases = [
            (State::Starting, State::Running, Some("started")),
            (State::Stopped, State::Running, Some("adopted")),
            (State::Stopping, State::Stopped, Some("stopped")),
            (State::Running, State::Crashed, Some("crashed")),
            (State::Crashed, State::Backoff, Some("restarting")),
            (State::Crashed, State::Starting, Some("restarting")),
            (State::Backoff, State::Starting, None),
            (State::Stopped, State::Starting, None),
            (State::Crashed, State::Fatal, Some("fatal")),
            (State::Running, State::Stopping, None),
        ];
        for (from, to, want) in cases {
            let got = Notification::from_state(&change(from, to), "Survival");
            assert_eq!(
                got.map(|n| n.event),
                want.map(str::to_string),
                "{from:?}->{to:?}"
            );
        }
        let crash = Notification::from_state(&change(State::Running, State::Crashed), "Survival")
            .expect("crash");
        assert_eq!(crash.title, "Survival crashed");
        assert_eq!(crash.severity, Severity::Critical);
        assert_eq!(crash.exit.and_then(|e| e.code), Some(3));
        assert_eq!(crash.last_lines, ["boom"]);
    }

    fn channel(json: &str) -> ChannelSpec {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn channels_parse_validate_and_mask() {
        let c = channel(
            r#"{"name":"hook","target":{"kind":"webhook","url":"https://example.com/hook/s3cret","secret":"k","headers":{"Authorization":"Bearer t"}}}"#,
        );
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let shown = serde_json::to_string(&c.masked()).expect("json");
        assert!(
            !shown.contains("s3cret") && !shown.contains("Bearer"),
            "{shown}"
        );
        assert!(shown.contains("https://example.com/***"), "{shown}");
        let bad = channel(
            r#"{"name":"Bad Name","target":{"kind":"discord","url":"ftp://x/s3cret"},"events":["Crash!"]}"#,
        );
        let errs = bad.validate();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "events[0]", "target.url"]);
        assert!(errs.iter().all(|e| !e.message.contains("s3cret")));
        let unknown = serde_json::from_str::<ChannelSpec>(
            r#"{"name":"x","target":{"kind":"slack","url":"https://h/x","oops":1}}"#,
        );
        assert!(unknown.is_err(), "unknown target fields are rejected");
        let tg = channel(
            r#"{"name":"tg","target":{"kind":"telegram","bot_token":"123:ABC","chat_id":"-100"}}"#,
        );
        assert!(tg.validate().is_empty());
        assert!(
            !serde_json::to_string(&tg.masked())
                .expect("json")
                .contains("123:ABC")
        );
    }

    #[test]
    fn filters_select_events_severities_and_programs() {
        let n =
            Notification::from_state(&change(State::Running, State::Crashed), "S").expect("crash");
        let mut c = channel(r#"{"name":"c","target":{"kind":"slack","url":"https://h/x"}}"#);
        assert!(c.accepts(&n));
        c.events = vec!["fatal".into()];
        assert!(!c.accepts(&n));
        c.events = vec!["crashed".into()];
        c.severities = vec![Severity::Warning];
        assert!(!c.accepts(&n));
        c.severities = vec![Severity::Critical];
        c.programs = vec!["other".into()];
        assert!(!c.accepts(&n));
        c.programs = vec!["mc".into()];
        assert!(c.accepts(&n));
        c.enabled = false;
        assert!(!c.accepts(&n));
    }
}
