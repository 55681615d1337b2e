//! `warden ctl update check|apply|status NAME`: updates of servers installed from a
//! template. `apply` follows the update to its end unless `--no-wait`.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Client, fmt_ms, print_json};

/// `warden ctl update`.
#[derive(Subcommand)]
pub enum UpdateCmd {
    /// Show the installed and available build and any update under way.
    Status {
        /// Program name.
        name: String,
    },
    /// Ask the server's source for its latest build now.
    Check {
        /// Program name.
        name: String,
    },
    /// Update to the latest build: staged, applied in the program's window (when nobody
    /// is online), backed up first and rolled back if the new build does not come up.
    Apply {
        /// Program name.
        name: String,
        /// Stop at once instead of waiting for players to leave.
        #[arg(long)]
        now: bool,
        /// Return at once instead of following the update to its end.
        #[arg(long)]
        no_wait: bool,
        /// A Steam Guard code for the Steam account's login (when the last try failed
        /// with steam_guard).
        #[arg(long, value_name = "CODE")]
        guard_code: Option<String>,
    },
}

fn print_status(v: &Value) {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    outln!("program:    {}", s("program"));
    outln!("template:   {}", s("template"));
    outln!("installed:  {}", s("installed"));
    outln!(
        "available:  {}{}",
        s("available"),
        if v["update_available"].as_bool() == Some(true) {
            "  (update available)"
        } else {
            ""
        }
    );
    let step = v["step"]
        .as_str()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    outln!("state:      {}{step}", s("state"));
    if let Some(w) = v["pipeline"]["waiting_for"].as_str() {
        outln!("waiting:    for {w}");
    }
    outln!("window:     {}", s("next_window"));
    if let Some(t) = v["checked_ms"].as_i64() {
        outln!("checked:    {}", fmt_ms(t));
    }
    if let Some(e) = v["check_error"].as_str() {
        outln!("check error: {e}");
    }
    if let Some(t) = v["next_check_ms"].as_i64() {
        outln!("next check: {}", fmt_ms(t));
    }
    if v["last"].is_object() {
        outln!(
            "last:       {} (build {}) {}: {}",
            v["last"]["result"].as_str().unwrap_or(""),
            v["last"]["build"].as_str().unwrap_or(""),
            v["last"]["ts"].as_i64().map(fmt_ms).unwrap_or_default(),
            v["last"]["message"].as_str().unwrap_or("")
        );
    }
}

/// Runs one `warden ctl update` command.
pub(super) async fn run(c: &Client, cmd: UpdateCmd, json: bool) -> anyhow::Result<()> {
    let show = |v: &Value| -> anyhow::Result<()> {
        if json {
            print_json(v)
        } else {
            print_status(v);
            Ok(())
        }
    };
    match cmd {
        UpdateCmd::Status { name } => show(&c.get(&format!("/api/programs/{name}/update")).await?),
        UpdateCmd::Check { name } => show(
            &c.post(&format!("/api/programs/{name}/update/check"), json!({}))
                .await?,
        ),
        UpdateCmd::Apply {
            name,
            now,
            no_wait,
            guard_code,
        } => {
            let path = format!("/api/programs/{name}/update");
            let mut body = json!({ "now": now });
            if let Some(code) = guard_code {
                body["guard_code"] = json!(code);
            }
            let before = c.post(&format!("{path}/apply"), body).await?;
            let started = before["last"]["ts"].as_i64();
            if no_wait {
                return show(&before);
            }
            let mut last_step = String::new();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let v = c.get(&path).await?;
                let step = v["step"].as_str().unwrap_or("").to_string();
                if !step.is_empty() && step != last_step {
                    errln!("{step}");
                    last_step = step;
                }
                let ended = v["state"] == "idle" && v["last"]["ts"].as_i64() != started;
                let nothing = v["state"] == "idle" && v["update_available"] == false;
                if ended || nothing {
                    show(&v)?;
                    if v["last"]["result"] == "succeeded" || !ended {
                        return Ok(());
                    }
                    anyhow::bail!(
                        "the update did not succeed ({}): {}",
                        v["last"]["code"].as_str().unwrap_or(""),
                        v["last"]["message"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
}
