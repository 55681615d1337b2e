//! `warden ctl backup …`: take, list, verify, restore, delete and download backups, and
//! show or set a program's backup settings. Long operations are followed until they end
//! (progress on stderr) unless `--no-wait`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::Value;

use super::{Client, fmt_ms, print_json};
use crate::units::show_bytes;

/// `warden ctl backup`.
#[derive(Subcommand)]
pub enum BackupCmd {
    /// Take a backup of a program now.
    Create {
        /// Program name.
        name: String,
        /// Return at once instead of following the backup to its end.
        #[arg(long)]
        no_wait: bool,
    },
    /// List a program's backups.
    List {
        /// Program name.
        name: String,
    },
    /// Show one backup.
    Show {
        /// Backup id.
        id: i64,
    },
    /// Cancel a running backup (its post steps still run).
    Cancel {
        /// Backup id.
        id: i64,
    },
    /// Re-read a backup against its manifest; fails if anything differs.
    Verify {
        /// Backup id.
        id: i64,
    },
    /// Restore a backup into its program's working directory.
    Restore {
        /// Backup id.
        id: i64,
        /// Stop the program first if it runs, and start it again afterwards.
        #[arg(long)]
        stop: bool,
        /// Return at once instead of following the restore to its end.
        #[arg(long)]
        no_wait: bool,
    },
    /// List a program's restores.
    Restores {
        /// Program name.
        name: String,
    },
    /// Delete the copy of the previous data that a restore kept.
    Discard {
        /// Restore id.
        restore_id: i64,
    },
    /// Delete a backup and its files.
    Delete {
        /// Backup id.
        id: i64,
    },
    /// Download a backup's archive (.tar.zst).
    Download {
        /// Backup id.
        id: i64,
        /// Output file (default: the archive's own name in the current directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show a program's backup settings, or replace them from a JSON or TOML file.
    Settings {
        /// Program name.
        name: String,
        /// File with the new settings (`.toml` or `.json`).
        #[arg(long)]
        set: Option<PathBuf>,
    },
}

fn print_backups(list: &[Value]) {
    outln!(
        "{:>5} {:<11} {:<19} {:>10} {:>7} {:<8} REASON",
        "ID",
        "STATUS",
        "STARTED",
        "SIZE",
        "FILES",
        "VERIFIED"
    );
    for b in list {
        let verified = match b["verify_ok"].as_bool() {
            Some(true) => "ok",
            Some(false) => "FAILED",
            None => "-",
        };
        outln!(
            "{:>5} {:<11} {:<19} {:>10} {:>7} {:<8} {}",
            b["id"].as_i64().unwrap_or(0),
            b["status"].as_str().unwrap_or(""),
            b["started_at"].as_i64().map(fmt_ms).unwrap_or_default(),
            b["archive_bytes"]
                .as_u64()
                .map(|n| show_bytes(n as f64))
                .unwrap_or("-".into()),
            b["files"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or("-".into()),
            verified,
            b["reason"].as_str().unwrap_or(""),
        );
        if let Some(e) = b["error"].as_str() {
            outln!("      error: {e}");
        }
        for w in b["warnings"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            outln!("      warning: {}", w.as_str().unwrap_or(""));
        }
    }
}

fn progress_line(p: &Value) -> String {
    let done = p["bytes_done"].as_u64().unwrap_or(0);
    let total = p["bytes_total"].as_u64().unwrap_or(0);
    let pct = (done * 100).checked_div(total).unwrap_or(0);
    format!(
        "{:<10} {:>3}% {} / {}  {}",
        p["phase"].as_str().unwrap_or(""),
        pct,
        show_bytes(done as f64),
        show_bytes(total as f64),
        p["current_file"].as_str().unwrap_or("")
    )
}

/// Shows progress on stderr until `done` says the resource finished; returns it.
async fn follow(
    c: &Client,
    path: &str,
    progress_key: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let mut last_len: usize = 0;
    loop {
        let v = c.get(path).await?;
        if done(&v) {
            if last_len > 0 {
                errln!();
            }
            return Ok(v);
        }
        if !v[progress_key].is_null() {
            let line = progress_line(&v[progress_key]);
            let pad = last_len.saturating_sub(line.chars().count());
            err!("\r{line}{}", " ".repeat(pad));
            let _ = std::io::stderr().flush();
            last_len = line.chars().count();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn read_settings_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let v: toml::Value = toml::from_str(&text).map_err(|e| {
            anyhow!(
                "invalid TOML in {}: {}",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        Ok(serde_json::to_value(v)?)
    } else {
        serde_json::from_str(&text).map_err(|e| anyhow!("invalid JSON in {}: {e}", path.display()))
    }
}

/// Runs `warden ctl backup …`.
pub async fn run(c: &Client, cmd: BackupCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Create { name, no_wait } => {
            let v = c
                .post(&format!("/api/programs/{name}/backups"), Value::Null)
                .await?;
            let id = v["id"]
                .as_i64()
                .ok_or_else(|| anyhow!("unexpected answer: {v}"))?;
            if no_wait {
                return if json {
                    print_json(&v)
                } else {
                    outln!("backup {id} of {name} started");
                    Ok(())
                };
            }
            let v = follow(c, &format!("/api/backups/{id}"), "progress", |v| {
                v["status"] != "running"
            })
            .await?;
            if json {
                print_json(&v)?;
            } else {
                print_backups(std::slice::from_ref(&v));
            }
            if v["status"] != "ok" {
                bail!("backup {id} {}", v["status"].as_str().unwrap_or("failed"));
            }
        }
        BackupCmd::List { name } => {
            let v = c.get(&format!("/api/programs/{name}/backups")).await?;
            if json {
                return print_json(&v);
            }
            print_backups(v["backups"].as_array().map(Vec::as_slice).unwrap_or(&[]));
        }
        BackupCmd::Show { id } => {
            let v = c.get(&format!("/api/backups/{id}")).await?;
            if json {
                return print_json(&v);
            }
            print_backups(std::slice::from_ref(&v));
            if let Some(p) = v.get("progress") {
                outln!("      {}", progress_line(p));
            }
        }
        BackupCmd::Cancel { id } => {
            c.post(&format!("/api/backups/{id}/cancel"), Value::Null)
                .await?;
            let v = follow(c, &format!("/api/backups/{id}"), "progress", |v| {
                v["status"] != "running"
            })
            .await?;
            if json {
                return print_json(&v);
            }
            outln!("backup {id}: {}", v["status"].as_str().unwrap_or("?"));
        }
        BackupCmd::Verify { id } => {
            let before = c.get(&format!("/api/backups/{id}")).await?;
            c.post(&format!("/api/backups/{id}/verify"), Value::Null)
                .await?;
            let v = follow(c, &format!("/api/backups/{id}"), "verifying", |v| {
                v["verifying"].is_null() && v["verified_at"] != before["verified_at"]
            })
            .await?;
            if json {
                print_json(&v)?;
            }
            let problems = v["verify_problems"].as_array().cloned().unwrap_or_default();
            if v["verify_ok"] == true {
                if !json {
                    outln!("backup {id} matches its manifest");
                }
            } else {
                if !json {
                    for p in problems.iter().take(50) {
                        outln!(
                            "{}: {}",
                            p["path"].as_str().unwrap_or(""),
                            p["problem"].as_str().unwrap_or("")
                        );
                    }
                    if problems.len() > 50 {
                        outln!("… and {} more", problems.len() - 50);
                    }
                }
                bail!(
                    "backup {id} does not match its manifest ({} problems)",
                    problems.len()
                );
            }
        }
        BackupCmd::Restore { id, stop, no_wait } => {
            let v = c
                .post(
                    &format!("/api/backups/{id}/restore?stop={stop}"),
                    Value::Null,
                )
                .await?;
            let rid = v["id"]
                .as_i64()
                .ok_or_else(|| anyhow!("unexpected answer: {v}"))?;
            let v = if no_wait {
                v
            } else {
                follow(c, &format!("/api/restores/{rid}"), "progress", |v| {
                    v["status"] != "running"
                })
                .await?
            };
            if json {
                print_json(&v)?;
            } else {
                outln!(
                    "restore {rid} of backup {id}: {}",
                    v["status"].as_str().unwrap_or("?")
                );
                if let Some(e) = v["error"].as_str() {
                    outln!("  error: {e}");
                }
                if let Some(r) = v["rollback"].as_str() {
                    outln!(
                        "  previous data kept in {r} (discard with `warden ctl backup discard {rid}`)"
                    );
                }
            }
            if !no_wait && v["status"] != "ok" {
                bail!("restore {rid} {}", v["status"].as_str().unwrap_or("failed"));
            }
        }
        BackupCmd::Restores { name } => {
            let v = c.get(&format!("/api/programs/{name}/restores")).await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "{:>5} {:>6} {:<11} {:<19} ROLLBACK COPY",
                "ID",
                "BACKUP",
                "STATUS",
                "STARTED"
            );
            for r in v["restores"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let rollback = match (r["rollback"].as_str(), r["discarded_at"].is_null()) {
                    (Some(p), true) => p.to_string(),
                    (Some(_), false) => "(discarded)".into(),
                    _ => "-".into(),
                };
                outln!(
                    "{:>5} {:>6} {:<11} {:<19} {rollback}",
                    r["id"].as_i64().unwrap_or(0),
                    r["backup_id"].as_i64().unwrap_or(0),
                    r["status"].as_str().unwrap_or(""),
                    r["started_at"].as_i64().map(fmt_ms).unwrap_or_default(),
                );
            }
        }
        BackupCmd::Discard { restore_id } => {
            let v = c
                .post(&format!("/api/restores/{restore_id}/discard"), Value::Null)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("rollback copy of restore {restore_id} discarded");
        }
        BackupCmd::Delete { id } => {
            c.send(c.http.delete(format!("{}/api/backups/{id}", c.base)))
                .await?;
            if !json {
                outln!("backup {id} deleted");
            }
        }
        BackupCmd::Download { id, output } => download(c, id, output).await?,
        BackupCmd::Settings { name, set } => {
            let path = format!("/api/programs/{name}/backup-settings");
            let v = match set {
                Some(file) => {
                    let body = read_settings_file(&file)?;
                    c.send(c.http.put(format!("{}{path}", c.base)).json(&body))
                        .await?
                }
                None => c.get(&path).await?,
            };
            print_json(&v)?;
        }
    }
    Ok(())
}

async fn download(c: &Client, id: i64, output: Option<PathBuf>) -> anyhow::Result<()> {
    let resp = c
        .http
        .get(format!("{}/api/backups/{id}/download", c.base))
        .bearer_auth(&c.token)
        .send()
        .await
        .map_err(|e| super::unreachable(&c.base, &e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        bail!(
            "{} (HTTP {})",
            v["error"]["message"].as_str().unwrap_or("request failed"),
            status.as_u16()
        );
    }
    let name = resp
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split("filename=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains('\\') && !n.starts_with('.'))
        .map(str::to_string)
        .unwrap_or_else(|| format!("backup-{id}.tar.zst"));
    let out = output.unwrap_or_else(|| PathBuf::from(&name));
    // Written under a temporary name and renamed at the end, so an interrupted download
    // never leaves a file that looks complete.
    let tmp = out.with_extension("part");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut stream = resp.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, &out)
        .await
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    errln!("{} written ({})", out.display(), show_bytes(n as f64));
    Ok(())
}
