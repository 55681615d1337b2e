//! `warden ctl alerts …`: alert channels, rules, test messages, delivery logs and status
//! over the HTTP API. Secrets may be given as `-` to read them from standard input, so
//! they stay out of the shell history and the process list.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{Client, fmt_ms, print_json};

/// `warden ctl alerts`.
#[derive(Subcommand)]
pub enum AlertsCmd {
    /// Show the outbox: queued, delivered, failed, dropped, in flight.
    Status,
    /// List channels (URLs and tokens masked).
    Channels,
    /// Manage one channel.
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// List rules.
    Rules,
    /// Manage one rule.
    #[command(subcommand)]
    Rule(RuleCmd),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Webhook,
    Discord,
    Slack,
    Telegram,
    Ntfy,
}

/// `warden ctl alerts channel`.
#[derive(Subcommand)]
pub enum ChannelCmd {
    /// Create a channel (or replace it with --replace).
    Add(Box<ChannelAdd>),
    /// Show a channel (secrets masked).
    Show {
        /// Channel name.
        name: String,
    },
    /// Delete a channel with its queue and delivery log.
    Rm {
        /// Channel name.
        name: String,
    },
    /// Send a test message and report the first attempt.
    Test {
        /// Channel name.
        name: String,
    },
    /// Show a channel's delivery log, oldest first.
    Log {
        /// Channel name.
        name: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
}

/// Options of `channel add`.
#[derive(Args)]
pub struct ChannelAdd {
    /// Channel name (lowercase letters, digits, '-', '_').
    name: String,
    /// Where it delivers.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Webhook URL (webhook, discord, slack); `-` reads it from standard input. (Not
    /// `--url`: that names warden itself and may stand anywhere on the line.)
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// HMAC-SHA256 key for the generic webhook's signature header; `-` reads stdin.
    #[arg(long)]
    secret: Option<String>,
    /// Extra header for the generic webhook, `Name=value` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Telegram bot token; `-` reads it from standard input.
    #[arg(long)]
    bot_token: Option<String>,
    /// Telegram chat id.
    #[arg(long)]
    chat_id: Option<String>,
    /// Telegram Bot API base URL.
    #[arg(long)]
    api_url: Option<String>,
    /// ntfy server (default https://ntfy.sh).
    #[arg(long)]
    server: Option<String>,
    /// ntfy topic; `-` reads it from standard input.
    #[arg(long)]
    topic: Option<String>,
    /// ntfy access token; `-` reads it from standard input.
    #[arg(long)]
    token: Option<String>,
    /// Only these event kinds, comma-separated (e.g. crashed,fatal,rule_fired).
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
    /// Only these severities, comma-separated (info, warning, critical).
    #[arg(long, value_delimiter = ',')]
    severities: Vec<String>,
    /// Only these programs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    programs: Vec<String>,
    /// Create it disabled.
    #[arg(long)]
    disabled: bool,
    /// Replace an existing channel of that name.
    #[arg(long)]
    replace: bool,
}

/// `warden ctl alerts rule`.
#[derive(Subcommand)]
pub enum RuleCmd {
    /// Create a rule (or replace it with --replace).
    Add {
        /// Rule name.
        name: String,
        /// The condition, e.g. "memory_bytes > 6GiB for 2m" or "crashed >= 3 in 10m".
        #[arg(long)]
        when: String,
        /// Only this program (default: every program, each on its own).
        #[arg(long)]
        program: Option<String>,
        /// info, warning or critical.
        #[arg(long)]
        severity: Option<String>,
        /// Do not fire again within this many seconds.
        #[arg(long, default_value_t = 0)]
        cooldown_seconds: u64,
        /// Restart the program when the rule fires.
        #[arg(long)]
        restart: bool,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        /// Replace an existing rule of that name.
        #[arg(long)]
        replace: bool,
    },
    /// Delete a rule.
    Rm {
        /// Rule name.
        name: String,
    },
}

/// `-` means: read the value from the next line of standard input.
fn secret(v: Option<String>, what: &str) -> anyhow::Result<Option<String>> {
    match v.as_deref() {
        Some("-") => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .with_context(|| format!("cannot read the {what} from standard input"))?;
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            if line.is_empty() {
                bail!("the {what} read from standard input is empty");
            }
            Ok(Some(line))
        }
        _ => Ok(v),
    }
}

fn required(v: Option<String>, flag: &str, kind: &str) -> anyhow::Result<String> {
    v.ok_or_else(|| anyhow::anyhow!("--{flag} is required for a {kind} channel"))
}

fn channel_body(a: ChannelAdd) -> anyhow::Result<Value> {
    let target = match a.kind {
        Kind::Webhook => {
            let mut headers = serde_json::Map::new();
            for h in &a.headers {
                let (k, v) = h
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--header {h:?} is not NAME=VALUE"))?;
                headers.insert(k.trim().to_string(), json!(v.trim()));
            }
            let mut t = json!({"kind": "webhook", "url": required(secret(a.webhook_url, "URL")?, "webhook-url", "webhook")?, "headers": headers});
            if let Some(s) = secret(a.secret, "secret")? {
                t["secret"] = json!(s);
            }
            t
        }
        Kind::Discord | Kind::Slack => {
            let kind = if matches!(a.kind, Kind::Discord) {
                "discord"
            } else {
                "slack"
            };
            json!({"kind": kind, "url": required(secret(a.webhook_url, "URL")?, "webhook-url", kind)?})
        }
        Kind::Telegram => {
            let mut t = json!({
                "kind": "telegram",
                "bot_token": required(secret(a.bot_token, "bot token")?, "bot-token", "telegram")?,
                "chat_id": required(a.chat_id, "chat-id", "telegram")?,
            });
            if let Some(u) = a.api_url {
                t["api_url"] = json!(u);
            }
            t
        }
        Kind::Ntfy => {
            let mut t = json!({"kind": "ntfy", "topic": required(secret(a.topic, "topic")?, "topic", "ntfy")?});
            if let Some(s) = a.server {
                t["server"] = json!(s);
            }
            if let Some(tok) = secret(a.token, "token")? {
                t["token"] = json!(tok);
            }
            t
        }
    };
    Ok(json!({
        "name": a.name,
        "target": target,
        "enabled": !a.disabled,
        "events": a.events,
        "severities": a.severities,
        "programs": a.programs,
    }))
}

fn print_delivery(d: &Value) {
    let when = d["last_attempt_ms"]
        .as_i64()
        .or(d["queued_ms"].as_i64())
        .map(fmt_ms)
        .unwrap_or_default();
    let mut status = d["status"].as_str().unwrap_or("?").to_string();
    if let Some(code) = d["last_status"].as_u64() {
        status.push_str(&format!(" ({code})"));
    }
    outln!(
        "{:<6} {when:<19} {:<14} {:<16} {:>3}  {}{}",
        d["id"].as_i64().unwrap_or(0),
        d["event"].as_str().unwrap_or(""),
        status,
        d["attempts"].as_u64().unwrap_or(0),
        d["title"].as_str().unwrap_or(""),
        d["last_error"]
            .as_str()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default(),
    );
}

/// Runs `warden ctl alerts …`.
pub async fn run(c: &Client, cmd: AlertsCmd, json_out: bool) -> anyhow::Result<()> {
    let v = match cmd {
        AlertsCmd::Status => {
            let v = c.get("/api/alerts/status").await?;
            if !json_out {
                outln!(
                    "pending {}  delivered {}  failed {}  dropped {} ({} since start)  in flight {}/{}",
                    v["pending"],
                    v["delivered"],
                    v["failed"],
                    v["dropped"],
                    v["dropped_since_start"],
                    v["in_flight"],
                    v["senders"]
                );
                return Ok(());
            }
            v
        }
        AlertsCmd::Channels => {
            let v = c.get("/api/alerts/channels").await?;
            if !json_out {
                outln!(
                    "{:<20} {:<9} {:<8} {:<8} FILTER",
                    "NAME",
                    "KIND",
                    "ENABLED",
                    "BREAKER"
                );
                for ch in v["channels"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let list = |k: &str| {
                        ch[k].as_array().filter(|a| !a.is_empty()).map(|a| {
                            format!(
                                "{k}={}",
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            )
                        })
                    };
                    let filter = ["events", "severities", "programs"]
                        .iter()
                        .filter_map(|k| list(k))
                        .collect::<Vec<_>>()
                        .join(" ");
                    outln!(
                        "{:<20} {:<9} {:<8} {:<8} {}",
                        ch["name"].as_str().unwrap_or(""),
                        ch["target"]["kind"].as_str().unwrap_or(""),
                        ch["enabled"].as_bool().unwrap_or(false),
                        ch["breaker"]["state"].as_str().unwrap_or(""),
                        if filter.is_empty() { "all" } else { &filter },
                    );
                }
                return Ok(());
            }
            v
        }
        AlertsCmd::Channel(ChannelCmd::Add(a)) => {
            let (name, replace) = (a.name.clone(), a.replace);
            let body = channel_body(*a)?;
            let v = if replace {
                c.send(
                    c.http
                        .put(format!("{}/api/alerts/channels/{name}", c.base))
                        .json(&body),
                )
                .await?
            } else {
                c.post("/api/alerts/channels", body).await?
            };
            if !json_out {
                outln!(
                    "channel '{name}' saved; try it with: warden ctl alerts channel test {name}"
                );
                return Ok(());
            }
            v
        }
        AlertsCmd::Channel(ChannelCmd::Show { name }) => {
            c.get(&format!("/api/alerts/channels/{name}")).await?
        }
        AlertsCmd::Channel(ChannelCmd::Rm { name }) => {
            c.send(
                c.http
                    .delete(format!("{}/api/alerts/channels/{name}", c.base)),
            )
            .await?;
            outln!("channel '{name}' deleted");
            return Ok(());
        }
        AlertsCmd::Channel(ChannelCmd::Test { name }) => {
            let v = c
                .post(&format!("/api/alerts/channels/{name}/test"), Value::Null)
                .await?;
            if !json_out {
                match v["status"].as_str() {
                    Some("delivered") => outln!("test message delivered to '{name}'"),
                    Some("pending") if v["attempts"].as_u64().unwrap_or(0) > 0 => outln!(
                        "test message not delivered yet: {} (warden keeps retrying)",
                        v["last_error"].as_str().unwrap_or("unknown error")
                    ),
                    Some("pending") => outln!("test message queued; no attempt finished yet"),
                    other => outln!(
                        "test message {}: {}",
                        other.unwrap_or("?"),
                        v["last_error"].as_str().unwrap_or("")
                    ),
                }
                return Ok(());
            }
            v
        }
        AlertsCmd::Channel(ChannelCmd::Log { name, limit }) => {
            let v = c
                .get(&format!(
                    "/api/alerts/channels/{name}/deliveries?limit={limit}"
                ))
                .await?;
            if !json_out {
                outln!(
                    "{:<6} {:<19} {:<14} {:<16} {:>3}  TITLE",
                    "ID",
                    "TIME",
                    "EVENT",
                    "STATUS",
                    "TRY"
                );
                for d in v["deliveries"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .rev()
                {
                    print_delivery(d);
                }
                return Ok(());
            }
            v
        }
        AlertsCmd::Rules => {
            let v = c.get("/api/alerts/rules").await?;
            if !json_out {
                outln!(
                    "{:<20} {:<12} {:<8} CONDITION",
                    "NAME",
                    "PROGRAM",
                    "ENABLED"
                );
                for r in v["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    outln!(
                        "{:<20} {:<12} {:<8} {}{}",
                        r["name"].as_str().unwrap_or(""),
                        r["program"].as_str().unwrap_or("(all)"),
                        r["enabled"].as_bool().unwrap_or(false),
                        r["condition"].as_str().unwrap_or(""),
                        if r["action"] == "restart" {
                            " → restart"
                        } else {
                            ""
                        }
                    );
                }
                return Ok(());
            }
            v
        }
        AlertsCmd::Rule(RuleCmd::Add {
            name,
            when,
            program,
            severity,
            cooldown_seconds,
            restart,
            disabled,
            replace,
        }) => {
            let mut body = json!({
                "name": name,
                "condition": when,
                "cooldown_seconds": cooldown_seconds,
                "enabled": !disabled,
            });
            if let Some(p) = program {
                body["program"] = json!(p);
            }
            if let Some(s) = severity {
                body["severity"] = json!(s);
            }
            if restart {
                body["action"] = json!("restart");
            }
            let v = if replace {
                c.send(
                    c.http
                        .put(format!("{}/api/alerts/rules/{name}", c.base))
                        .json(&body),
                )
                .await?
            } else {
                c.post("/api/alerts/rules", body).await?
            };
            if !json_out {
                outln!("rule '{name}' saved");
                return Ok(());
            }
            v
        }
        AlertsCmd::Rule(RuleCmd::Rm { name }) => {
            c.send(c.http.delete(format!("{}/api/alerts/rules/{name}", c.base)))
                .await?;
            outln!("rule '{name}' deleted");
            return Ok(());
        }
    };
    print_json(&v)
}
