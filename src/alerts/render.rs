//! Turns a [`Notification`] into the HTTP request of each channel kind: Discord embeds,
//! Slack blocks, Telegram HTML, ntfy JSON, and the generic JSON webhook (optionally
//! HMAC-signed). Pure functions: no I/O, so payloads are unit-tested byte for byte.
//!
//! Texts are kept short and put the program's display name first, so the lock-screen
//! preview of a phone already says what happened. Every service's length limits are
//! respected by truncating (never by failing).

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::Sha256;

use super::model::{Notification, Target};
use crate::bus::Severity;

/// Version tag of the generic JSON payload.
pub const SCHEMA: &str = "warden.alert.v1";

/// A request ready to send. Its URL may hold secrets: never log it.
pub struct Outgoing {
    /// Where to POST.
    pub url: String,
    /// Headers (besides User-Agent, which the client sets).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Builds the request for `target`. `id` is the outbox row id, stable across retries.
pub fn render(target: &Target, n: &Notification, id: i64) -> Result<Outgoing, String> {
    let json_type = (CONTENT_TYPE, HeaderValue::from_static("application/json"));
    match target {
        Target::Webhook {
            url,
            secret,
            headers,
        } => {
            let body = webhook_body(n, id)?;
            let mut hs = vec![json_type];
            for (k, v) in headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("header name {k:?} is invalid"))?;
                // The value is a secret: do not echo it.
                let value = HeaderValue::from_str(v)
                    .map_err(|_| format!("the value of header {k:?} is invalid"))?;
                hs.push((name, value));
            }
            hs.push((
                HeaderName::from_static("x-warden-delivery"),
                HeaderValue::from(id),
            ));
            if let Ok(v) = HeaderValue::from_str(&n.event) {
                hs.push((HeaderName::from_static("x-warden-event"), v));
            }
            if let Some(key) = secret {
                let sig = format!("sha256={}", hex(&sign(key.as_bytes(), &body)));
                let v = HeaderValue::from_str(&sig).map_err(|e| e.to_string())?;
                hs.push((HeaderName::from_static("x-warden-signature"), v));
            }
            Ok(Outgoing {
                url: url.clone(),
                headers: hs,
                body,
            })
        }
        Target::Discord { url } => Ok(Outgoing {
            url: url.clone(),
            headers: vec![json_type],
            body: to_vec(&discord(n))?,
        }),
        Target::Slack { url } => Ok(Outgoing {
            url: url.clone(),
            headers: vec![json_type],
            body: to_vec(&slack(n))?,
        }),
        Target::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => Ok(Outgoing {
            url: format!(
                "{}/bot{bot_token}/sendMessage",
                api_url.trim_end_matches('/')
            ),
            headers: vec![json_type],
            body: to_vec(&json!({
                "chat_id": chat_id,
                "text": telegram_text(n),
                "parse_mode": "HTML",
                "disable_web_page_preview": true,
            }))?,
        }),
        Target::Ntfy {
            server,
            topic,
            token,
        } => {
            let mut hs = vec![json_type];
            if let Some(t) = token {
                let v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| "the ntfy token is not a valid header value".to_string())?;
                hs.push((reqwest::header::AUTHORIZATION, v));
            }
            Ok(Outgoing {
                url: server.trim_end_matches('/').to_string(),
                headers: hs,
                body: to_vec(&ntfy(n, topic))?,
            })
        }
    }
}

fn to_vec(v: &Value) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| e.to_string())
}

/// The generic JSON body: the notification's fields plus `schema`, `id` and `time`.
fn webhook_body(n: &Notification, id: i64) -> Result<Vec<u8>, String> {
    let mut v = serde_json::to_value(n).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut v {
        map.insert("schema".into(), json!(SCHEMA));
        map.insert("id".into(), json!(id));
        map.insert("time".into(), json!(rfc3339(n.ts)));
    }
    to_vec(&v)
}

/// HMAC-SHA256 of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only make
    // the receiver reject the message, never leak anything.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The last console lines, newest last, within `max` characters (older lines go first).
fn tail_lines(lines: &[String], max: usize) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut len = 0;
    for l in lines.iter().rev().take(10) {
        let l = l.as_str();
        if len + l.len() + 1 > max {
            break;
        }
        len += l.len() + 1;
        out.push(l);
    }
    out.reverse();
    out.join("\n")
}

fn emoji(s: Severity) -> &'static str {
    match s {
        Severity::Info => "🟢",
        Severity::Warning => "🟠",
        Severity::Critical => "🔴",
    }
}

/// Embed colour per severity (green, orange, red).
pub fn colour(s: Severity) -> u32 {
    match s {
        Severity::Info => 0x2e_cc_71,
        Severity::Warning => 0xe6_7e_22,
        Severity::Critical => 0xe7_4c_3c,
    }
}

fn discord(n: &Notification) -> Value {
    let mut description = cut(&n.message, 1500);
    let lines = tail_lines(&n.last_lines, 1500);
    if !lines.is_empty() {
        // Backticks inside would end the code block early.
        description.push_str(&format!("\n```\n{}\n```", lines.replace("```", "'''")));
    }
    let fields: Vec<Value> = n
        .fields
        .iter()
        .take(10)
        .map(|f| json!({"name": cut(&f.name, 256), "value": cut(&f.value, 1024), "inline": true}))
        .collect();
    json!({
        "username": "warden",
        // Never ping @everyone because a console line said so.
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": cut(&n.title, 256),
            "description": description,
            "color": colour(n.severity),
            "fields": fields,
            "timestamp": rfc3339(n.ts),
            "footer": {"text": format!("warden · {} · {}", n.event, n.severity.as_str())},
        }]
    })
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(n: &Notification) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&format!("{} {}", emoji(n.severity), n.title), 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&slack_escape(&n.message), 2900)}}),
    ];
    if !n.fields.is_empty() {
        let fields: Vec<Value> = n
            .fields
            .iter()
            .take(10)
            .map(|f| json!({"type": "mrkdwn", "text": cut(&format!("*{}*\n{}", slack_escape(&f.name), slack_escape(&f.value)), 1900)}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let lines = tail_lines(&n.last_lines, 2800);
    if !lines.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", slack_escape(&lines))}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("warden · {} · {}", n.event, rfc3339(n.ts))}]}));
    json!({
        // The notification text of phones and of clients without blocks.
        "text": cut(&format!("{} {}: {}", emoji(n.severity), n.title, n.message), 3000),
        "blocks": blocks,
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn telegram_text(n: &Notification) -> String {
    let mut t = format!(
        "{} <b>{}</b>\n{}",
        emoji(n.severity),
        html_escape(&cut(&n.title, 200)),
        html_escape(&cut(&n.message, 1000))
    );
    for f in n.fields.iter().take(10) {
        t.push_str(&format!(
            "\n<b>{}:</b> {}",
            html_escape(&cut(&f.name, 100)),
            html_escape(&cut(&f.value, 300))
        ));
    }
    let lines = tail_lines(&n.last_lines, 1500);
    if !lines.is_empty() {
        t.push_str(&format!("\n<pre>{}</pre>", html_escape(&lines)));
    }
    t
}

fn ntfy(n: &Notification, topic: &str) -> Value {
    let mut message = cut(&n.message, 1000);
    for f in n.fields.iter().take(10) {
        message.push_str(&format!("\n{}: {}", f.name, cut(&f.value, 300)));
    }
    let lines = tail_lines(&n.last_lines, 1500);
    if !lines.is_empty() {
        message.push_str(&format!("\n\n{lines}"));
    }
    let (priority, tag) = match n.severity {
        Severity::Info => (3, "information_source"),
        Severity::Warning => (4, "warning"),
        Severity::Critical => (5, "rotating_light"),
    };
    json!({
        "topic": topic,
        "title": cut(&n.title, 250),
        "message": message,
        "priority": priority,
        "tags": [tag],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bus::NoticeField;
    use crate::program::ExitInfo;

    fn crash() -> Notification {
        Notification {
            event: "crashed".into(),
            severity: Severity::Critical,
            program: Some("mc".into()),
            display_name: Some("Survival <world>".into()),
            title: "Survival <world> crashed".into(),
            message: "crashed (exit code 3)".into(),
            fields: vec![NoticeField {
                name: "Exit".into(),
                value: "exit code 3".into(),
            }],
            ts: 1_700_000_000_000,
            exit: Some(ExitInfo {
                code: Some(3),
                signal: None,
                description: "exit code 3".into(),
            }),
            last_lines: vec!["loading".into(), "java.lang.OutOfMemoryError".into()],
            rule: None,
            test: false,
        }
    }

    fn body(o: &Outgoing) -> Value {
        serde_json::from_slice(&o.body).expect("json body")
    }

    #[test]
    fn webhook_payload_is_documented_schema_and_signed() {
        let t = Target::Webhook {
            url: "http://x/hook".into(),
            secret: Some("k3y".into()),
            headers: BTreeMap::from([("X-Team".to_string(), "ops".to_string())]),
        };
        let o = render(&t, &crash(), 42).expect("render");
        let b = body(&o);
        assert_eq!(b["schema"], SCHEMA);
        assert_eq!(b["id"], 42);
        assert_eq!(b["event"], "crashed");
        assert_eq!(b["program"], "mc");
        assert_eq!(b["exit"]["code"], 3);
        assert_eq!(b["time"], "2023-11-14T22:13:20.000Z");
        let header = |name: &str| {
            o.headers
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .and_then(|(_, v)| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("x-team").as_deref(), Some("ops"));
        assert_eq!(header("x-warden-delivery").as_deref(), Some("42"));
        let want = format!("sha256={}", hex(&sign(b"k3y", &o.body)));
        assert_eq!(header("x-warden-signature"), Some(want));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&sign(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn discord_embed_has_title_colour_fields_and_timestamp() {
        let o = render(
            &Target::Discord {
                url: "https://discord.com/api/webhooks/1/t".into(),
            },
            &crash(),
            1,
        )
        .expect("render");
        let e = &body(&o)["embeds"][0];
        assert_eq!(e["title"], "Survival <world> crashed");
        assert_eq!(e["color"], 0xe7_4c_3c);
        assert_eq!(e["fields"][0]["name"], "Exit");
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20.000Z");
        let d = e["description"].as_str().expect("description");
        assert!(d.contains("OutOfMemoryError"), "{d}");
        let mut long = crash();
        long.title = "x".repeat(1000);
        long.last_lines = vec!["y".repeat(5000)];
        let o = render(
            &Target::Discord {
                url: "https://d/x".into(),
            },
            &long,
            1,
        )
        .expect("render");
        let e = &body(&o)["embeds"][0];
        assert_eq!(e["title"].as_str().map(|s| s.chars().count()), Some(256));
        assert!(e["description"].as_str().is_some_and(|s| s.len() <= 4096));
    }

    #[test]
    fn slack_telegram_and_ntfy_escape_and_carry_the_essentials() {
        let s = body(
            &render(
                &Target::Slack {
                    url: "https://h/x".into(),
                },
                &crash(),
                1,
            )
            .expect("slack"),
        );
        assert!(
            s["text"]
                .as_str()
                .is_some_and(|t| t.contains("Survival <world> crashed"))
        );
        let blocks = s["blocks"].to_string();
        assert!(blocks.contains("exit code 3"), "{blocks}");
        let t = render(
            &Target::Telegram {
                bot_token: "1:A".into(),
                chat_id: "-5".into(),
                api_url: "http://127.0.0.1:1/".into(),
            },
            &crash(),
            1,
        )
        .expect("telegram");
        assert_eq!(t.url, "http://127.0.0.1:1/bot1:A/sendMessage");
        let text = body(&t)["text"].as_str().unwrap_or_default().to_string();
        assert!(
            text.contains("<b>Survival &lt;world&gt; crashed</b>"),
            "{text}"
        );
        let n = body(
            &render(
                &Target::Ntfy {
                    server: "https://ntfy.sh/".into(),
                    topic: "alerts".into(),
                    token: None,
                },
                &crash(),
                1,
            )
            .expect("ntfy"),
        );
        assert_eq!(n["topic"], "alerts");
        assert_eq!(n["priority"], 5);
    }
}
