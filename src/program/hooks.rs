//! Event hooks and custom actions as the user defines them (per program, or globally in
//! the daemon config). Types and validation only; `crate::hooks` runs them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;
use super::game::Secret;

/// Default hook and action timeout.
fn default_timeout() -> u64 {
    30
}

/// One hook: on some event kinds, run a command or send an HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// Event kinds that trigger it (`started`, `ready`, `stopped`, `crashed`, `fatal`,
    /// `sleeping`, `woken`, `oom_killed`, `backup_finished`, `players_changed`,
    /// `rule_fired`… or any notice kind); `*` for every event.
    pub on: Vec<String>,
    /// A command to run with the event as JSON on stdin and `WARDEN_EVENT_*` variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// An URL to POST the event to as JSON (instead of a command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HMAC-SHA256 key for `url`: `X-Warden-Signature: sha256=<hex>` signs the body, as
    /// for alert webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Seconds before the command is killed or the request abandoned.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// A custom action: a named command shown as a button on the program's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Command to run (in the program's `cwd`, with `WARDEN_PROGRAM` set).
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Shown on the button's tooltip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds before the command is killed.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl HookSpec {
    /// True when this hook runs for events of `kind`.
    pub fn matches(&self, kind: &str) -> bool {
        self.on.iter().any(|k| k == "*" || k == kind)
    }

    /// A copy safe to show: the signing key masked.
    pub fn masked(&self) -> HookSpec {
        let mut h = self.clone();
        if let Some(s) = &mut h.secret {
            s.mask();
        }
        h
    }
}

fn valid_kind(k: &str) -> bool {
    k == "*"
        || (!k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

fn valid_action_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 40
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Adds the problems of `hooks` and `actions` to `errs`; `prefix` is prepended to field
/// names (e.g. `hooks.` in the daemon config).
pub fn validate(
    hooks: &[HookSpec],
    actions: &BTreeMap<String, ActionSpec>,
    prefix: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut err = |e: FieldError| errs.push(e);
    for (i, h) in hooks.iter().enumerate() {
        let f = |name: &str| format!("{prefix}hooks[{i}].{name}");
        if h.on.is_empty() {
            err(FieldError::required(f("on")));
        }
        for k in &h.on {
            if !valid_kind(k) {
                err(FieldError::invalid(
                    f("on"),
                    k,
                    "give an event kind (snake_case, e.g. crashed) or \"*\"",
                ));
            }
        }
        match (&h.command, &h.url) {
            (Some(_), Some(_)) => err(FieldError::conflicts_with(f("command"), "url")),
            (None, None) => err(FieldError::required(f("command"))),
            (Some(c), None) if c.trim().is_empty() || c.contains('\0') => {
                err(FieldError::required(f("command")));
            }
            (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                err(FieldError::invalid_url(f("url"), u));
            }
            _ => {}
        }
        if h.timeout_seconds == 0 || h.timeout_seconds > 3600 {
            err(FieldError::out_of_range(f("timeout_seconds"), 1, 3600));
        }
    }
    for (name, a) in actions {
        let f = |field: &str| format!("{prefix}actions.{name}.{field}");
        if !valid_action_name(name) {
            err(FieldError::invalid_name(format!("{prefix}actions"), name));
        }
        if a.command.trim().is_empty() || a.command.contains('\0') {
            err(FieldError::required(f("command")));
        }
        if a.timeout_seconds == 0 || a.timeout_seconds > 3600 {
            err(FieldError::out_of_range(f("timeout_seconds"), 1, 3600));
        }
    }
}
