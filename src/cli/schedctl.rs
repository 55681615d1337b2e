//! `warden ctl schedule …` and `warden ctl job …`: the schedule and job endpoints of the
//! API as commands, with readable output or `--json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use serde_json::Value;

use super::ctl::{Client, fmt_ms, print_json};

/// `warden ctl schedule`.
#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// List schedules with their next fire time.
    List,
    /// Show a schedule: trigger, next 5 fire times, tasks, warnings, last run.
    Show {
        /// Schedule name.
        name: String,
    },
    /// Create or update a schedule from a TOML or JSON file (the API's field names).
    Apply {
        /// The file (`.json` is read as JSON, anything else as TOML).
        file: PathBuf,
    },
    /// Delete a schedule.
    Delete {
        /// Schedule name.
        name: String,
    },
    /// Run a schedule's chain now.
    Run {
        /// Schedule name.
        name: String,
    },
    /// Cancel the chain in progress.
    Cancel {
        /// Schedule name.
        name: String,
    },
    /// Show run history, newest first.
    Runs {
        /// Schedule name.
        name: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
}

/// `warden ctl job`.
#[derive(Subcommand)]
pub enum JobCmd {
    /// List jobs with their state and predicted duration.
    List,
    /// Show a job: steps, prediction, run in progress, last run.
    Show {
        /// Job name.
        name: String,
    },
    /// Create or update a job from a TOML or JSON file (the API's field names).
    Apply {
        /// The file (`.json` is read as JSON, anything else as TOML).
        file: PathBuf,
    },
    /// Delete a job and its history.
    Delete {
        /// Job name.
        name: String,
        /// Cancel a run in progress first.
        #[arg(long)]
        force: bool,
    },
    /// Run a job now (its overlap policy applies).
    Run {
        /// Job name.
        name: String,
        /// Wait for the run to end; exit non-zero unless it succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel the run in progress gracefully.
    Cancel {
        /// Job name.
        name: String,
    },
    /// Show run history, newest first.
    Runs {
        /// Job name.
        name: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run with every step attempt and its output tail.
    Inspect {
        /// Job name.
        name: String,
        /// Run id.
        run: i64,
    },
}

/// Reads a spec file: JSON for `.json`, TOML otherwise.
fn read_spec(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let v: Value = if is_json {
        serde_json::from_str(&text)
            .map_err(|e| anyhow!("invalid JSON in {}: {e}", path.display()))?
    } else {
        toml::from_str(&text).map_err(|e| {
            anyhow!(
                "invalid TOML in {}: {}",
                path.display(),
                e.to_string().trim_end()
            )
        })?
    };
    if !v["name"].is_string() {
        bail!("{} has no `name`", path.display());
    }
    Ok(v)
}

/// Creates or updates `spec` under `/api/{kind}`; answers the server's view and the verb.
async fn apply(c: &Client, kind: &str, spec: Value) -> anyhow::Result<(Value, &'static str)> {
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/{kind}/{name}");
    if c.get_opt(&path).await?.is_some() {
        Ok((c.put(&path, spec).await?, "updated"))
    } else {
        Ok((c.post(&format!("/api/{kind}"), spec).await?, "created"))
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn ms_text(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
        Some(ms) => format!("{}h{}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
        None => "-".into(),
    }
}

fn print_warnings(v: &Value) {
    for w in v["warnings"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        outln!("warning: {}", s(w));
    }
}

/// Runs `warden ctl schedule …`.
pub async fn schedule(c: &Client, cmd: ScheduleCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        ScheduleCmd::List => {
            let v = c.get("/api/schedules").await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "{:<24} {:<8} {:<22} {:<26} LAST RUN",
                "NAME",
                "ENABLED",
                "TRIGGER",
                "NEXT"
            );
            for sc in v["schedules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                outln!(
                    "{:<24} {:<8} {:<22} {:<26} {}",
                    s(&sc["name"]),
                    sc["enabled"].as_bool().unwrap_or(false),
                    s(&sc["trigger"]),
                    s(&sc["next_runs"][0]),
                    s(&sc["last_run"]["state"]),
                );
            }
        }
        ScheduleCmd::Show { name } => {
            let v = c.get(&format!("/api/schedules/{name}")).await?;
            if json {
                return print_json(&v);
            }
            print_schedule(&v);
        }
        ScheduleCmd::Apply { file } => {
            let (v, verb) = apply(c, "schedules", read_spec(&file)?).await?;
            if json {
                return print_json(&v);
            }
            outln!("{verb} schedule {}", s(&v["name"]));
            print_schedule(&v);
        }
        ScheduleCmd::Delete { name } => {
            c.delete(&format!("/api/schedules/{name}")).await?;
            outln!("deleted schedule {name}");
        }
        ScheduleCmd::Run { name } => {
            let v = c
                .post(&format!("/api/schedules/{name}/run"), Value::Null)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("schedule {name}: run {} started", v["run_id"]);
        }
        ScheduleCmd::Cancel { name } => {
            let v = c
                .post(&format!("/api/schedules/{name}/cancel"), Value::Null)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("schedule {name}: cancelling run {}", v["run_id"]);
        }
        ScheduleCmd::Runs { name, limit } => {
            let v = c
                .get(&format!("/api/schedules/{name}/runs?limit={limit}"))
                .await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "{:>6} {:<20} {:<12} {:<16} ERROR",
                "RUN",
                "STARTED",
                "STATE",
                "SOURCE"
            );
            for r in v["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                outln!(
                    "{:>6} {:<20} {:<12} {:<16} {}",
                    r["id"],
                    r["started_at"].as_i64().map(fmt_ms).unwrap_or_default(),
                    s(&r["state"]),
                    s(&r["source"]),
                    r["error"].as_str().unwrap_or(""),
                );
            }
        }
    }
    Ok(())
}

fn print_schedule(v: &Value) {
    outln!("name:      {}", s(&v["name"]));
    outln!(
        "trigger:   {} ({})",
        s(&v["trigger"]),
        s(&v["trigger_description"])
    );
    outln!("time zone: {}", s(&v["effective_timezone"]));
    outln!("enabled:   {}", v["enabled"].as_bool().unwrap_or(false));
    outln!("next runs:");
    for t in v["next_runs"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        outln!("  {}", s(t));
    }
    outln!("tasks:");
    for (i, t) in v["tasks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let offset = t["offset_seconds"].as_u64().unwrap_or(0);
        let wait = if offset > 0 {
            format!("after {offset} s: ")
        } else {
            String::new()
        };
        outln!(
            "  {}. {wait}{} (on failure: {})",
            i + 1,
            t["action"],
            s(&t["on_failure"])
        );
    }
    if !v["last_run"].is_null() {
        outln!(
            "last run:  {} {} {}",
            v["last_run"]["id"],
            s(&v["last_run"]["state"]),
            v["last_run"]["error"].as_str().unwrap_or("")
        );
    }
    print_warnings(v);
}

/// Runs `warden ctl job …`.
pub async fn job(c: &Client, cmd: JobCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        JobCmd::List => {
            let v = c.get("/api/jobs").await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "{:<24} {:<10} {:>8} {:>8}  LAST RUN",
                "NAME",
                "STATE",
                "P50",
                "P90"
            );
            for j in v["jobs"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let state = if j["running"].is_null() {
                    "idle".to_string()
                } else {
                    format!("run {}", j["running"]["run_id"])
                };
                outln!(
                    "{:<24} {:<10} {:>8} {:>8}  {}",
                    s(&j["name"]),
                    state,
                    ms_text(&j["prediction"]["p50_ms"]),
                    ms_text(&j["prediction"]["p90_ms"]),
                    s(&j["last_run"]["state"]),
                );
            }
        }
        JobCmd::Show { name } => {
            let v = c.get(&format!("/api/jobs/{name}")).await?;
            if json {
                return print_json(&v);
            }
            print_job(&v);
        }
        JobCmd::Apply { file } => {
            let (v, verb) = apply(c, "jobs", read_spec(&file)?).await?;
            if json {
                return print_json(&v);
            }
            outln!("{verb} job {}", s(&v["name"]));
            print_job(&v);
        }
        JobCmd::Delete { name, force } => {
            c.delete(&format!("/api/jobs/{name}?force={force}")).await?;
            outln!("deleted job {name}");
        }
        JobCmd::Run { name, wait } => {
            let v = c
                .post(&format!("/api/jobs/{name}/run"), Value::Null)
                .await?;
            if json && !wait {
                return print_json(&v);
            }
            let expect = if v["prediction"].is_null() {
                String::new()
            } else {
                format!(
                    "; expected ~{} (p90 {})",
                    ms_text(&v["prediction"]["p50_ms"]),
                    ms_text(&v["prediction"]["p90_ms"])
                )
            };
            match (s(&v["outcome"]), v["run_id"].as_i64()) {
                ("started", Some(id)) => {
                    outln!("job {name}: run {id} started{expect}");
                    if wait {
                        return wait_run(c, &name, id, json).await;
                    }
                }
                (other, _) => outln!("job {name}: {other}{expect}"),
            }
        }
        JobCmd::Cancel { name } => {
            let v = c
                .post(&format!("/api/jobs/{name}/cancel"), Value::Null)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("job {name}: cancelling run {}", v["run_id"]);
        }
        JobCmd::Runs { name, limit } => {
            let v = c
                .get(&format!("/api/jobs/{name}/runs?limit={limit}"))
                .await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "{:>6} {:<20} {:<12} {:>9} {:>7} {:<18} ERROR",
                "RUN",
                "STARTED",
                "STATE",
                "DURATION",
                "RETRIES",
                "SOURCE"
            );
            for r in v["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                outln!(
                    "{:>6} {:<20} {:<12} {:>9} {:>7} {:<18} {}",
                    r["id"],
                    r["started_at"].as_i64().map(fmt_ms).unwrap_or_default(),
                    s(&r["state"]),
                    ms_text(&r["duration_ms"]),
                    r["retries"],
                    s(&r["source"]),
                    r["error"].as_str().unwrap_or(""),
                );
            }
        }
        JobCmd::Inspect { name, run } => {
            let v = c.get(&format!("/api/jobs/{name}/runs/{run}")).await?;
            if json {
                return print_json(&v);
            }
            print_run(&v);
        }
    }
    Ok(())
}

fn print_job(v: &Value) {
    outln!("name:        {}", s(&v["name"]));
    outln!("overlap:     {}", s(&v["overlap"]));
    outln!("concurrency: {}", v["effective_concurrency"]);
    if v["prediction"].is_null() {
        outln!("prediction:  none yet (needs a few successful runs)");
    } else {
        outln!(
            "prediction:  ~{} (p90 {}) from {} runs",
            ms_text(&v["prediction"]["p50_ms"]),
            ms_text(&v["prediction"]["p90_ms"]),
            v["prediction"]["samples"]
        );
    }
    outln!("steps:");
    for st in v["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let deps: Vec<&str> = st["depends_on"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let after = if deps.is_empty() {
            String::new()
        } else {
            format!(" (after {})", deps.join(", "))
        };
        outln!(
            "  {}{after}: {} {}",
            s(&st["name"]),
            s(&st["command"]),
            st["args"]
        );
    }
    if !v["running"].is_null() {
        outln!(
            "running:     run {} since {}{}",
            v["running"]["run_id"],
            v["running"]["started_at"]
                .as_i64()
                .map(fmt_ms)
                .unwrap_or_default(),
            if v["running"]["orphaned"].as_bool() == Some(true) {
                " (from before warden restarted)"
            } else {
                ""
            }
        );
    }
    if !v["last_run"].is_null() {
        outln!(
            "last run:    {} {} {}",
            v["last_run"]["id"],
            s(&v["last_run"]["state"]),
            v["last_run"]["error"].as_str().unwrap_or("")
        );
    }
    print_warnings(v);
}

fn print_run(v: &Value) {
    let r = &v["run"];
    outln!(
        "run {} of {}: {} ({}), {} retries{}",
        r["id"],
        s(&r["job"]),
        s(&r["state"]),
        ms_text(&r["duration_ms"]),
        r["retries"],
        r["error"]
            .as_str()
            .map(|e| format!("\n  {e}"))
            .unwrap_or_default()
    );
    for st in v["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        outln!(
            "- {} attempt {}: {} ({}) {}",
            s(&st["step"]),
            st["attempt"],
            s(&st["state"]),
            ms_text(&st["duration_ms"]),
            st["message"].as_str().unwrap_or("")
        );
        if let Some(tail) = st["output_tail"].as_str() {
            for line in tail.lines() {
                outln!("    | {line}");
            }
        }
    }
}

/// Polls a run until it ends; fails unless it succeeded.
async fn wait_run(c: &Client, name: &str, id: i64, json: bool) -> anyhow::Result<()> {
    loop {
        let v = c.get(&format!("/api/jobs/{name}/runs/{id}")).await?;
        if s(&v["run"]["state"]) != "running" {
            if json {
                print_json(&v)?;
            } else {
                print_run(&v);
            }
            if s(&v["run"]["state"]) != "succeeded" {
                bail!("run {id} of job {name} did not succeed");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
