//! `warden templates` (local: the shipped templates and the data directory's) and
//! `warden new --template T NAME --set k=v` (installs on a running server through
//! `POST /api/install` and follows its progress until it is installed or failed).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use super::ctl::{Client, Remote, print_json};
use crate::install::template::{self, Source};

/// `warden new`.
#[derive(Args)]
pub struct NewArgs {
    #[command(flatten)]
    remote: Remote,
    /// The template (`warden templates` lists them).
    #[arg(long)]
    template: String,
    /// Name of the new program (and of its folder).
    name: String,
    /// A variable's value, e.g. `--set server_name="My server"` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_kv)]
    set: Vec<(String, String)>,
    /// Answer once the install has started instead of following it.
    #[arg(long)]
    no_wait: bool,
    /// A Steam Guard code for the Steam account's login (when the last try failed with
    /// steam_guard).
    #[arg(long, value_name = "CODE")]
    guard_code: Option<String>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Lists the templates found for `data_dir`.
pub fn list(data_dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let (all, problems) = template::load_all(&crate::install::templates_dir(data_dir));
    if json_out {
        let v: Vec<Value> = all
            .iter()
            .map(|t| {
                let t = t.masked();
                json!({
                    "name": t.name, "version": t.version, "title": t.title,
                    "source": t.source, "systems": t.systems(), "variables": t.all_variables(),
                })
            })
            .collect();
        return print_json(&json!({ "templates": v, "problems": problems }));
    }
    let mut out = String::new();
    for t in &all {
        let source = match &t.source {
            Source::Steamcmd { app, .. } => format!("steamcmd app {app}"),
            Source::Minecraft { flavor, .. } => format!("minecraft {flavor:?}").to_lowercase(),
            Source::Url { .. } => "url".to_string(),
        };
        out.push_str(&format!(
            "{:<18} {:<34} {:<22} {}\n",
            t.name,
            t.title,
            source,
            t.systems().join(",")
        ));
        for v in t.masked().all_variables() {
            let default = if v.secret && v.default.is_empty() {
                "(secret)".to_string()
            } else {
                v.default.clone()
            };
            out.push_str(&format!(
                "    {:<16} = {:<20} {}\n",
                v.name, default, v.description
            ));
        }
    }
    out!("{out}");
    for p in problems {
        errln!("warning: {}: {}", p.file, p.message);
    }
    Ok(())
}

/// Runs `warden new`.
pub async fn new(args: NewArgs) -> anyhow::Result<()> {
    let c = Client::new(&args.remote)?;
    let values: BTreeMap<String, String> = args.set.into_iter().collect();
    let mut body = json!({ "template": args.template, "name": args.name, "values": values });
    if let Some(code) = args.guard_code {
        body["guard_code"] = json!(code);
    }
    let started = c.post("/api/install", body).await?;
    let id = started["id"].as_u64().unwrap_or(0);
    if args.no_wait {
        if args.remote.json {
            return print_json(&started);
        }
        outln!("install {id} of '{}' started", args.name);
        return Ok(());
    }
    let mut last_percent = -1.0;
    loop {
        let s = c.get(&format!("/api/install/{id}")).await?;
        match s["state"].as_str().unwrap_or("") {
            "installed" => {
                if args.remote.json {
                    return print_json(&s);
                }
                outln!(
                    "'{}' installed in {} (build {}); start it with `warden ctl start {}`",
                    args.name,
                    s["dir"].as_str().unwrap_or("?"),
                    s["build"].as_str().unwrap_or("-"),
                    args.name
                );
                return Ok(());
            }
            "failed" => bail!(
                "install of '{}' failed: {} ({})",
                args.name,
                s["error"]["message"].as_str().unwrap_or("unknown"),
                s["error"]["code"].as_str().unwrap_or("error")
            ),
            _ => {
                let p = &s["progress"];
                if let Some(pct) = p["percent"].as_f64()
                    && pct != last_percent
                    && !args.remote.json
                {
                    last_percent = pct;
                    errln!(
                        "{} {pct:.1} % ({} / {} bytes)",
                        p["phase"].as_str().unwrap_or(""),
                        p["bytes_done"].as_u64().unwrap_or(0),
                        p["bytes_total"].as_u64().unwrap_or(0)
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
