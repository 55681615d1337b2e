//! `warden metrics …`: resource history commands against a running server. `import`
//! streams a JSON Lines file to the import endpoint (never loading it whole) and lists
//! the bad lines by number when the server refuses it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::ctl::{Client, Remote};

/// `warden metrics`.
#[derive(Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: MetricsCmd,
}

#[derive(Subcommand)]
enum MetricsCmd {
    /// Import samples (JSON Lines: {"ts": <unix ms or RFC 3339>, "cpu_percent": …, …})
    /// into a program's history. All or nothing: bad lines are listed and nothing is stored.
    Import {
        /// Program name.
        name: String,
        /// The JSON Lines file.
        file: PathBuf,
    },
}

/// Runs `warden metrics`.
pub async fn run(args: MetricsArgs) -> anyhow::Result<()> {
    let c = Client::new(&args.remote)?;
    match args.cmd {
        MetricsCmd::Import { name, file } => import(&c, &name, &file).await,
    }
}

async fn import(c: &Client, name: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
    let resp = c
        .http
        .post(format!("{}/api/programs/{name}/metrics/import", c.base))
        .bearer_auth(&c.token)
        .header("content-type", "application/x-ndjson")
        // Large histories take a while; the server answers once everything is stored.
        .timeout(Duration::from_secs(600))
        .body(body)
        .send()
        .await
        .map_err(|e| super::ctl::unreachable(&c.base, &e))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let mut msg = v["error"]["message"]
            .as_str()
            .unwrap_or("the import failed")
            .to_string();
        for d in v["error"]["details"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            msg.push_str(&format!(
                "\n  {}: {}",
                d["field"].as_str().unwrap_or("?"),
                d["message"].as_str().unwrap_or("")
            ));
        }
        bail!("{msg} (HTTP {})", status.as_u16());
    }
    outln!(
        "imported {} samples into '{name}' ({} to {})",
        v["imported"].as_u64().unwrap_or(0),
        v["from"]
            .as_i64()
            .map(super::ctl::fmt_ms)
            .unwrap_or_else(|| "-".into()),
        v["to"]
            .as_i64()
            .map(super::ctl::fmt_ms)
            .unwrap_or_else(|| "-".into()),
    );
    Ok(())
}
