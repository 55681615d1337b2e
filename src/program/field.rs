//! [`FieldError`]: one problem in a request or definition, as a stable code with its
//! parameters (what the dashboard renders in the user's language) and an English message
//! (for the CLI and curl). Each code has one constructor, which writes the message from the
//! same parameters, so code, params and message cannot disagree.

use std::fmt::Display;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The stable codes of [`FieldError`]: a small vocabulary shared by every validation.
/// The dashboard has an English and a Korean sentence for each (`field.CODE` in
/// `web/lib/i18n.js`; a unit test keeps the two lists in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldCode {
    /// Missing or empty. No params.
    Required,
    /// Text longer than `max` characters (or bytes, for byte-limited fields).
    TooLong,
    /// Text shorter than `min` characters.
    TooShort,
    /// A number below `min`.
    TooSmall,
    /// A number above `max`.
    TooLarge,
    /// A number outside `min`..=`max`.
    OutOfRange,
    /// A list with more than `max` entries.
    TooMany,
    /// `value` is not a valid name (letters, digits, `-`, `_`).
    InvalidName,
    /// `value` is not one of `allowed` (a list).
    NotOneOf,
    /// Line breaks, NUL or other control characters where one clean line is wanted.
    ControlChars,
    /// No program named `name`.
    UnknownProgram,
    /// `value` (a user, channel, template, variable…) does not exist.
    NotFound,
    /// `value` is not a duration such as `30s`.
    InvalidDuration,
    /// `value` is neither a cron expression nor an interval such as `every 6h`.
    InvalidCron,
    /// `value` is not a time zone.
    InvalidTimezone,
    /// `value` appears more than once.
    Duplicate,
    /// A dependency cycle, `path` (`a -> b -> a`).
    Cycle,
    /// The command `value` cannot be found.
    CommandNotFound,
    /// The command `value` exists but cannot be executed.
    CommandNotExecutable,
    /// `value` is not a usable path.
    InvalidPath,
    /// `value` is not a usable URL.
    InvalidUrl,
    /// This field needs `other` to be set too.
    Needs,
    /// This field cannot be combined with `other`.
    ConflictsWith,
    /// The name in the body is not `value`, the name in the URL (renaming is not supported).
    NameMismatch,
    /// Text that cannot be read (TOML, JSON, a form part); `line` and `column` when known.
    Unreadable,
    /// `value` is not valid here (anything the codes above do not say).
    Invalid,
}

impl FieldCode {
    /// Every code, for the catalogue test.
    pub const ALL: &'static [FieldCode] = &[
        FieldCode::Required,
        FieldCode::TooLong,
        FieldCode::TooShort,
        FieldCode::TooSmall,
        FieldCode::TooLarge,
        FieldCode::OutOfRange,
        FieldCode::TooMany,
        FieldCode::InvalidName,
        FieldCode::NotOneOf,
        FieldCode::ControlChars,
        FieldCode::UnknownProgram,
        FieldCode::NotFound,
        FieldCode::InvalidDuration,
        FieldCode::InvalidCron,
        FieldCode::InvalidTimezone,
        FieldCode::Duplicate,
        FieldCode::Cycle,
        FieldCode::CommandNotFound,
        FieldCode::CommandNotExecutable,
        FieldCode::InvalidPath,
        FieldCode::InvalidUrl,
        FieldCode::Needs,
        FieldCode::ConflictsWith,
        FieldCode::NameMismatch,
        FieldCode::Unreadable,
        FieldCode::Invalid,
    ];

    /// The code named `s`, as [`FieldCode::as_str`] writes it.
    pub fn parse(s: &str) -> Option<FieldCode> {
        FieldCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldCode::Required => "required",
            FieldCode::TooLong => "too_long",
            FieldCode::TooShort => "too_short",
            FieldCode::TooSmall => "too_small",
            FieldCode::TooLarge => "too_large",
            FieldCode::OutOfRange => "out_of_range",
            FieldCode::TooMany => "too_many",
            FieldCode::InvalidName => "invalid_name",
            FieldCode::NotOneOf => "not_one_of",
            FieldCode::ControlChars => "control_chars",
            FieldCode::UnknownProgram => "unknown_program",
            FieldCode::NotFound => "not_found",
            FieldCode::InvalidDuration => "invalid_duration",
            FieldCode::InvalidCron => "invalid_cron",
            FieldCode::InvalidTimezone => "invalid_timezone",
            FieldCode::Duplicate => "duplicate",
            FieldCode::Cycle => "cycle",
            FieldCode::CommandNotFound => "command_not_found",
            FieldCode::CommandNotExecutable => "command_not_executable",
            FieldCode::InvalidPath => "invalid_path",
            FieldCode::InvalidUrl => "invalid_url",
            FieldCode::Needs => "needs",
            FieldCode::ConflictsWith => "conflicts_with",
            FieldCode::NameMismatch => "name_mismatch",
            FieldCode::Unreadable => "unreadable",
            FieldCode::Invalid => "invalid",
        }
    }
}

/// One problem in a spec, naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `restart.policy`.
    pub field: String,
    /// Stable code of the problem; clients phrase it from this and `params`.
    pub code: FieldCode,
    /// The values the sentence needs (`max`, `min`, `value`, `allowed`, `name`, `other`,
    /// `path`, `line`, `column`), by code.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// What is wrong and how to fix it, in English.
    pub message: String,
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        code: FieldCode,
        params: &[(&str, Value)],
        message: String,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            code,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            message,
        }
    }

    /// The same problem under another field name (e.g. `programs[2].` + field).
    pub fn at(mut self, field: impl Into<String>) -> FieldError {
        self.field = field.into();
        self
    }

    /// The same problem with `prefix` before its field name.
    pub fn prefixed(mut self, prefix: &str) -> FieldError {
        self.field = format!("{prefix}{}", self.field);
        self
    }

    /// Missing or empty.
    pub fn required(field: impl Into<String>) -> FieldError {
        Self::new(field, FieldCode::Required, &[], "is required".into())
    }

    /// Longer than `max` characters.
    pub fn too_long(field: impl Into<String>, max: usize) -> FieldError {
        Self::new(
            field,
            FieldCode::TooLong,
            &[("max", max.into())],
            format!("must be at most {max} characters"),
        )
    }

    /// Shorter than `min` characters.
    pub fn too_short(field: impl Into<String>, min: usize) -> FieldError {
        Self::new(
            field,
            FieldCode::TooShort,
            &[("min", min.into())],
            format!("must be at least {min} characters"),
        )
    }

    /// Below `min`.
    pub fn too_small(field: impl Into<String>, min: impl Into<Value> + Display) -> FieldError {
        let message = format!("must be at least {min}");
        Self::new(field, FieldCode::TooSmall, &[("min", min.into())], message)
    }

    /// Above `max`.
    pub fn too_large(field: impl Into<String>, max: impl Into<Value> + Display) -> FieldError {
        let message = format!("must be at most {max}");
        Self::new(field, FieldCode::TooLarge, &[("max", max.into())], message)
    }

    /// Outside `min`..=`max`.
    pub fn out_of_range(
        field: impl Into<String>,
        min: impl Into<Value> + Display,
        max: impl Into<Value> + Display,
    ) -> FieldError {
        let message = format!("must be between {min} and {max}");
        Self::new(
            field,
            FieldCode::OutOfRange,
            &[("min", min.into()), ("max", max.into())],
            message,
        )
    }

    /// More than `max` entries.
    pub fn too_many(field: impl Into<String>, max: usize) -> FieldError {
        Self::new(
            field,
            FieldCode::TooMany,
            &[("max", max.into())],
            format!("must have at most {max} entries"),
        )
    }

    /// `value` is not a valid name.
    pub fn invalid_name(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidName,
            &[("value", value.into())],
            format!(
                "{value:?} is not a valid name: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ),
        )
    }

    /// `value` is not one of `allowed`.
    pub fn not_one_of<S: AsRef<str>>(
        field: impl Into<String>,
        value: &str,
        allowed: &[S],
    ) -> FieldError {
        let list: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
        Self::new(
            field,
            FieldCode::NotOneOf,
            &[("value", value.into()), ("allowed", list.clone().into())],
            format!("{value:?} is not supported; use one of {}", list.join(", ")),
        )
    }

    /// Line breaks or other control characters where one clean line is wanted.
    pub fn control_chars(field: impl Into<String>) -> FieldError {
        Self::new(
            field,
            FieldCode::ControlChars,
            &[],
            "must be one line without control characters or bidirectional overrides".into(),
        )
    }

    /// No program named `name`.
    pub fn unknown_program(field: impl Into<String>, name: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::UnknownProgram,
            &[("name", name.into())],
            format!("there is no program named {name:?}"),
        )
    }

    /// `value` does not exist.
    pub fn not_found(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::NotFound,
            &[("value", value.into())],
            format!("{value:?} does not exist"),
        )
    }

    /// `value` is not a duration.
    pub fn invalid_duration(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidDuration,
            &[("value", value.into())],
            format!("{value:?} is not a duration such as 30s, 5m or 1h30m"),
        )
    }

    /// `value` is neither a cron expression nor an interval (`every 6h`); `why` is the
    /// parser's precise English, which names the value.
    pub fn invalid_cron(field: impl Into<String>, value: &str, why: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidCron,
            &[("value", value.into())],
            why.to_string(),
        )
    }

    /// `value` is not a time zone.
    pub fn invalid_timezone(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidTimezone,
            &[("value", value.into())],
            format!(
                "{value:?} is not a known IANA time zone; write e.g. \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
            ),
        )
    }

    /// `value` appears more than once.
    pub fn duplicate(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::Duplicate,
            &[("value", value.into())],
            format!("{value:?} appears more than once"),
        )
    }

    /// A dependency cycle.
    pub fn cycle(field: impl Into<String>, path: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::Cycle,
            &[("path", path.into())],
            format!("these would wait for each other forever: {path}; remove one of the links"),
        )
    }

    /// The command cannot be found.
    pub fn command_not_found(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::CommandNotFound,
            &[("value", value.into())],
            format!("command not found: {value} (give the full path, or fix PATH)"),
        )
    }

    /// The command exists but cannot be executed.
    pub fn command_not_executable(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::CommandNotExecutable,
            &[("value", value.into())],
            format!("command not executable: {value} (check its permissions)"),
        )
    }

    /// `value` is not a usable path.
    pub fn invalid_path(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidPath,
            &[("value", value.into())],
            format!("{value:?} is not a usable path here"),
        )
    }

    /// `value` is not a usable URL.
    pub fn invalid_url(field: impl Into<String>, value: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidUrl,
            &[("value", value.into())],
            format!("{value:?} is not a usable http:// or https:// URL"),
        )
    }

    /// Not a usable URL, for a URL that holds a secret (a webhook's token): the value is
    /// never echoed.
    pub fn secret_url(field: impl Into<String>) -> FieldError {
        Self::new(
            field,
            FieldCode::InvalidUrl,
            &[],
            "must be an absolute http:// or https:// URL".into(),
        )
    }

    /// Not valid, for a value that is a secret (never echoed); `why` (English) is the
    /// message.
    pub fn invalid_secret(field: impl Into<String>, why: &str) -> FieldError {
        Self::new(field, FieldCode::Invalid, &[], why.to_string())
    }

    /// Needs `other` set too.
    pub fn needs(field: impl Into<String>, other: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::Needs,
            &[("other", other.into())],
            format!("needs {other} to be set too"),
        )
    }

    /// Cannot be combined with `other`.
    pub fn conflicts_with(field: impl Into<String>, other: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::ConflictsWith,
            &[("other", other.into())],
            format!("cannot be combined with {other}"),
        )
    }

    /// The name in the body differs from `url_name`, the one in the URL.
    pub fn name_mismatch(field: impl Into<String>, url_name: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::NameMismatch,
            &[("value", url_name.into())],
            format!(
                "must match the name in the URL ('{url_name}'); renaming is not supported — create a new one instead"
            ),
        )
    }

    /// Text that cannot be read; `line` and `column` (1-based) where known; `why` (the
    /// parser's English) goes into the message only.
    pub fn unreadable(
        field: impl Into<String>,
        line: Option<u64>,
        column: Option<u64>,
        why: &str,
    ) -> FieldError {
        let mut params = Vec::new();
        let mut at = String::new();
        if let Some(l) = line {
            params.push(("line", Value::from(l)));
            at = format!("line {l}: ");
            if let Some(c) = column {
                params.push(("column", Value::from(c)));
                at = format!("line {l}, column {c}: ");
            }
        }
        Self::new(field, FieldCode::Unreadable, &params, format!("{at}{why}"))
    }

    /// `value` is not valid here; `why` (English) goes into the message only.
    pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> FieldError {
        Self::new(
            field,
            FieldCode::Invalid,
            &[("value", value.into())],
            format!("{value:?} is not valid here: {why}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the server can produce has an English and a Korean sentence in the
    /// dashboard's catalogue, so a new code cannot ship without its Korean text.
    #[test]
    fn every_code_is_in_the_dashboard_catalogue() {
        let missing = crate::web::untranslated(
            FieldCode::ALL
                .iter()
                .map(|c| format!("field.{}", c.as_str())),
        );
        assert!(missing.is_empty(), "{missing:#?}");
        for code in FieldCode::ALL {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json, code.as_str(), "serde and as_str disagree");
        }
    }

    #[test]
    fn message_and_params_come_from_the_same_values() {
        let e = FieldError::too_long("display_name", 200);
        assert_eq!(e.code, FieldCode::TooLong);
        assert_eq!(e.params["max"], 200);
        assert!(e.message.contains("200"));
        let e = FieldError::not_one_of("stop.signal", "SIGFOO", &["SIGTERM", "SIGINT"]);
        assert_eq!(e.params["allowed"][1], "SIGINT");
        assert!(e.message.contains("SIGTERM, SIGINT"));
    }
}
