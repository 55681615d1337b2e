//! Secret fields of the stored definitions, sealed with [`seal::SECRETS`]: the JSON of
//! programs, alert channels and rules, schedules and jobs (and the Steam account's
//! password) keeps its shape, but the value
//! of every secret field is `sealed1:…` (see `seal.rs`), so a copy of `warden.db` alone
//! reveals none of them. The store seals on write and opens on read; the rest of warden
//! sees plain definitions, as before.
//!
//! Which fields are secret, wherever they occur in a definition:
//! - `password`, `secret`, `token`, `bot_token` (RCON/REST passwords, HMAC keys of
//!   webhooks and hooks, ntfy and Telegram tokens);
//! - `url` of an object whose `kind` is `webhook`, `discord`, `slack` or `http` (channel
//!   URLs carry their token; HTTP tasks' URLs may), `topic` of an `ntfy` channel;
//! - every value of a `headers` object;
//! - the values of an `env` object whose names say they are secret (`RCON_PASSWORD`,
//!   `API_KEY`…, the same rule as the API's masking).
//!
//! Rows written by a warden before this are plain; [`seal_plain_rows`] seals them when
//! the store opens. [`reseal_rows`] is the core of `warden secrets rotate`.
//!
//! [`seal::SECRETS`]: crate::seal::SECRETS

use rusqlite::{Transaction, params};
use serde_json::Value;

use super::StoreError;
use crate::program::secret_env_key;
use crate::seal::Sealer;

/// The tables whose `spec` column holds a definition as JSON, keyed by `name`.
const TABLES: &[&str] = &[
    "programs",
    "alert_channels",
    "alert_rules",
    "schedules",
    "jobs",
    "steam_accounts",
];

/// Calls `f` on every secret string field of a definition.
fn each_secret(
    v: &mut Value,
    f: &mut dyn FnMut(&mut String) -> Result<(), String>,
) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            for item in items {
                each_secret(item, f)?;
            }
        }
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
            let url_is_secret = matches!(
                kind.as_deref(),
                Some("webhook" | "discord" | "slack" | "http")
            );
            for (key, val) in map.iter_mut() {
                match (key.as_str(), val) {
                    ("password" | "secret" | "token" | "bot_token", Value::String(s)) => f(s)?,
                    ("url", Value::String(s)) if url_is_secret => f(s)?,
                    ("topic", Value::String(s)) if kind.as_deref() == Some("ntfy") => f(s)?,
                    ("headers", Value::Object(headers)) => {
                        for h in headers.values_mut() {
                            if let Value::String(s) = h {
                                f(s)?;
                            }
                        }
                    }
                    ("env", Value::Object(env)) => {
                        for (name, value) in env.iter_mut() {
                            if secret_env_key(name)
                                && let Value::String(s) = value
                            {
                                f(s)?;
                            }
                        }
                    }
                    (_, other) => each_secret(other, f)?,
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Seals every secret field of `v` that is not sealed yet; true if one was plain.
pub fn seal(v: &mut Value, sealer: &Sealer) -> Result<bool, StoreError> {
    let mut changed = false;
    each_secret(v, &mut |s| {
        if !Sealer::is_sealed(s) {
            *s = sealer.seal(s)?;
            changed = true;
        }
        Ok(())
    })
    .map_err(StoreError::Secret)?;
    Ok(changed)
}

/// Opens every sealed secret field of `v` (plain ones, of an old row, stay as they are).
pub fn unseal(v: &mut Value, sealer: &Sealer) -> Result<(), StoreError> {
    each_secret(v, &mut |s| {
        if Sealer::is_sealed(s) {
            *s = sealer.unseal(s)?;
        }
        Ok(())
    })
    .map_err(StoreError::Secret)
}

/// A definition's JSON text as stored: its secret fields sealed.
pub fn seal_text(json: &str, sealer: &Sealer) -> Result<String, StoreError> {
    let mut v: Value = serde_json::from_str(json)?;
    seal(&mut v, sealer)?;
    Ok(v.to_string())
}

/// A stored definition's JSON text with its secret fields opened.
pub fn unseal_text(json: &str, sealer: &Sealer) -> Result<String, StoreError> {
    let mut v: Value = serde_json::from_str(json)?;
    unseal(&mut v, sealer)?;
    Ok(v.to_string())
}

/// Rewrites every definition row with `f` (given the parsed JSON; returns true when it
/// changed it). Returns how many rows changed.
fn rewrite_rows(
    t: &Transaction<'_>,
    f: &mut dyn FnMut(&mut Value) -> Result<bool, StoreError>,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for table in TABLES {
        let rows: Vec<(String, String)> = {
            let mut st = t.prepare(&format!("SELECT name, spec FROM {table}"))?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (name, json) in rows {
            let mut v: Value = serde_json::from_str(&json)?;
            if f(&mut v)? {
                t.execute(
                    &format!("UPDATE {table} SET spec = ?2 WHERE name = ?1"),
                    params![name, v.to_string()],
                )?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// Seals the plain secret fields of rows written by an older warden. Returns how many
/// rows it sealed.
pub fn seal_plain_rows(t: &Transaction<'_>, sealer: &Sealer) -> Result<usize, StoreError> {
    rewrite_rows(t, &mut |v| seal(v, sealer))
}

/// Re-encrypts every secret field from `old` to `new` (plain ones are sealed too).
/// Returns how many rows it rewrote.
pub fn reseal_rows(t: &Transaction<'_>, old: &Sealer, new: &Sealer) -> Result<usize, StoreError> {
    rewrite_rows(t, &mut |v| {
        let mut any = false;
        each_secret(v, &mut |_| {
            any = true;
            Ok(())
        })
        .map_err(StoreError::Secret)?;
        if any {
            unseal(v, old)?;
            seal(v, new)?;
        }
        Ok(any)
    })
}

/// Whether `sealer` opens the first sealed field stored, if there is one: used to tell
/// which key a database was sealed with after a rotation was interrupted.
pub fn key_opens_rows(t: &Transaction<'_>, sealer: &Sealer) -> Result<Option<bool>, StoreError> {
    for table in TABLES {
        let mut st = t.prepare(&format!("SELECT spec FROM {table}"))?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        for json in rows {
            let mut v: Value = serde_json::from_str(&json?)?;
            let mut first: Option<String> = None;
            each_secret(&mut v, &mut |s| {
                if first.is_none() && Sealer::is_sealed(s) {
                    first = Some(s.clone());
                }
                Ok(())
            })
            .map_err(StoreError::Secret)?;
            if let Some(s) = first {
                return Ok(Some(sealer.unseal(&s).is_ok()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_sealed_and_opened_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Sealer::open_or_create(dir.path(), crate::seal::SECRETS).expect("key");
        let plain = json!({
            "name": "mc",
            "env": {"RCON_PASSWORD": "envpw", "LANG": "C"},
            "game": {"rcon": {"host": "127.0.0.1", "port": 25575, "password": "rconpw"}},
            "hooks": [{"on": ["*"], "url": "https://h.example/x", "secret": "hookkey"}],
            "target": {"kind": "webhook", "url": "https://example.com/hook/tok", "headers": {"Authorization": "Bearer hdr"}},
            "tasks": [{"kind": "http", "url": "https://example.com/ping?key=q"}, {"kind": "start", "program": "mc"}],
            "ntfy": {"kind": "ntfy", "server": "https://ntfy.sh", "topic": "tpc", "token": "ntok"}
        });
        let mut v = plain.clone();
        assert!(seal(&mut v, &s).expect("seal"));
        let text = v.to_string();
        for secret in [
            "envpw",
            "rconpw",
            "hookkey",
            "/hook/tok",
            "hdr",
            "key=q",
            "tpc",
            "ntok",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for kept in [
            "\"C\"",
            "https://h.example/x",
            "https://ntfy.sh",
            "127.0.0.1",
        ] {
            assert!(text.contains(kept), "{kept} sealed: {text}");
        }
        assert!(!seal(&mut v, &s).expect("again"), "sealed once only");
        unseal(&mut v, &s).expect("unseal");
        assert_eq!(v, plain);
    }
}
