//! `warden ctl …` and `warden apply`: a small HTTP client of the API, with readable
//! tables or `--json`. The token comes from `--token` or `WARDEN_TOKEN`.

mod alerts;
mod backup;
mod status;
mod update;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::config::DEFAULT_LISTEN;
use crate::program::ProgramSpec;

mod files;

/// Connection to the server.
#[derive(Args, Clone)]
pub struct Remote {
    /// Base URL of the warden server.
    #[arg(long, env = "WARDEN_URL", global = true, default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
    /// API token (create one with `warden token create NAME --role operator`).
    #[arg(long, env = "WARDEN_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Trust exactly this certificate of an HTTPS warden (SHA-256 in hex, as warden logs
    /// it at start-up), e.g. a self-signed one.
    #[arg(long, env = "WARDEN_FINGERPRINT", global = true)]
    fingerprint: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub(super) json: bool,
}

/// `warden ctl`.
#[derive(Args)]
pub struct CtlArgs {
    #[command(flatten)]
    remote: Remote,
    /// With `list`: every program of the fleet (this warden and its `warden fleet`
    /// nodes), with a NODE column.
    #[arg(long)]
    all: bool,
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(Subcommand)]
enum CtlCmd {
    /// List programs with their status.
    List,
    /// Show one program in detail: state and why, health, players, CPU and memory,
    /// uptime, last exit, next scheduled actions, last backup.
    Status {
        /// Program name.
        name: String,
    },
    /// Start a program and wait until it runs; fails with the reason when it does not.
    Start {
        /// Program name.
        name: String,
        /// Return once the start is requested, without waiting for `running`.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait for `running`, in seconds (default: the program's start period
        /// plus 15 s).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        /// Start the programs it waits for (after, requires) first.
        #[arg(long)]
        with_deps: bool,
    },
    /// Stop a program (its graceful stop sequence).
    Stop {
        /// Program name.
        name: String,
        #[command(flatten)]
        game: GameStopArgs,
        /// Stop the programs that wait for it (after, requires) first.
        #[arg(long)]
        with_deps: bool,
    },
    /// Restart a program.
    Restart {
        /// Program name.
        name: String,
        #[command(flatten)]
        game: GameStopArgs,
    },
    /// Kill a program's whole process group.
    Kill {
        /// Program name.
        name: String,
    },
    /// Delete a program (refused while it runs, unless --force stops it first).
    Delete {
        /// Program name.
        name: String,
        /// Stop a running program first instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Show console output.
    Logs {
        /// Program name.
        name: String,
        /// Lines to show.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
        /// Keep following new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Send a line to a program's console (stdin) and print the lines it answers with.
    Send {
        /// Program name.
        name: String,
        /// Print nothing back: send the line and return at once.
        #[arg(long)]
        no_wait: bool,
        /// How long to collect the answer, in seconds (it ends sooner once the console
        /// has been quiet for half a second after the first line).
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
        /// The line (words are joined with spaces).
        #[arg(required = true, trailing_var_arg = true)]
        line: Vec<String>,
    },
    /// Run an RCON command on a game server and print its reply.
    Rcon {
        /// Program name.
        name: String,
        /// The command (words are joined with spaces).
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Show who is online on a game server.
    Players {
        /// Program name.
        name: String,
    },
    /// Send a message to everyone on a game server.
    Broadcast {
        /// Program name.
        name: String,
        /// The message (words are joined with spaces).
        #[arg(required = true, trailing_var_arg = true)]
        message: Vec<String>,
    },
    /// Schedules: timed task chains.
    #[command(subcommand)]
    Schedule(super::schedctl::ScheduleCmd),
    /// Jobs: batch steps with dependencies.
    #[command(subcommand)]
    Job(super::schedctl::JobCmd),
    /// Backups: create, list, verify, restore, delete, download, settings.
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// Updates of servers installed from a template: status, check, apply.
    #[command(subcommand)]
    Update(update::UpdateCmd),
    /// Store the password of the Steam account SteamCMD logs in with
    /// (`install.steam_user`), sealed; prompted for on a terminal.
    SteamPassword {
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a program's lifecycle events.
    Events {
        /// Program name.
        name: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
    /// Alert channels, rules, test messages and delivery logs.
    #[command(subcommand)]
    Alerts(alerts::AlertsCmd),
    /// List, download and upload a program's files.
    #[command(subcommand)]
    Files(files::FilesCmd),
}

/// Game-aware options of stop and restart.
#[derive(Args)]
struct GameStopArgs {
    /// Warn players this many seconds before, comma-separated (e.g. 300,60,10).
    #[arg(long, value_delimiter = ',')]
    warn: Vec<u64>,
    /// Refuse when players are online.
    #[arg(long)]
    only_when_empty: bool,
}

impl GameStopArgs {
    /// The query string for the stop/restart action ("" when no option is set).
    fn query(&self) -> String {
        let mut q = Vec::new();
        if !self.warn.is_empty() {
            let list: Vec<String> = self.warn.iter().map(u64::to_string).collect();
            q.push(format!("warn={}", list.join(",")));
        }
        if self.only_when_empty {
            q.push("only_when_empty=true".to_string());
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

/// `warden apply FILE`.
#[derive(Args)]
pub struct ApplyArgs {
    /// TOML file with `[[program]]` tables (same fields as the API).
    file: std::path::PathBuf,
    #[command(flatten)]
    remote: Remote,
}

/// Reads and validates a programs file, reporting every problem with its program.
pub fn load_programs_file(path: &Path) -> anyhow::Result<Vec<ProgramSpec>> {
    use crate::program::ProgramsFile;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ProgramsFile = toml::from_str(&text).map_err(|e| {
        anyhow!(
            "invalid programs file {}: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let mut problems = Vec::new();
    for (i, spec) in file.program.iter().enumerate() {
        for p in spec.validate() {
            problems.push(format!(
                "  - program #{} ({:?}): {}: {}",
                i + 1,
                spec.name,
                p.field,
                p.message
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "invalid programs file {}:\n{}",
            path.display(),
            problems.join("\n")
        );
    }
    Ok(file.program)
}

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

impl Client {
    pub(super) fn new(r: &Remote) -> anyhow::Result<Client> {
        let token = r.token.clone().ok_or_else(|| {
            anyhow!("no API token: pass --token or set WARDEN_TOKEN (create one with `warden token create NAME --role operator`)")
        })?;
        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(pin) = &r.fingerprint {
            let pin =
                crate::fleet::parse_fingerprint(pin).map_err(|e| anyhow!("--fingerprint: {e}"))?;
            let tls = crate::fleet::pin::Pinned::new(&pin)
                .client_config()
                .map_err(|e| anyhow!("cannot set up TLS for the pinned certificate: {e}"))?;
            http = http.tls_backend_preconfigured(tls);
        }
        Ok(Client {
            http: http.build()?,
            base: r.url.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        self.send_within(req, Duration::from_secs(40)).await
    }

    /// Sends a request that may take `timeout` to answer (a move lasts as long as its copy).
    async fn send_within(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, &e))?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
        };
        if !status.is_success() {
            let msg = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            let code = value["error"]["code"].as_str().unwrap_or("error");
            bail!("{msg} ({code}, HTTP {})", status.as_u16());
        }
        Ok(value)
    }

    pub(super) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(super) async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub(super) async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub(super) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// GET that answers `None` on 404 instead of failing.
    pub(super) async fn get_opt(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(40))
            .send()
            .await
            .map_err(|e| unreachable(&self.base, &e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.get(path).await.map(Some)
    }
}

/// Formats unix ms as local time.
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

pub(super) fn fmt_uptime(v: &Value) -> String {
    match v.as_u64() {
        Some(s) => crate::duration::format(std::time::Duration::from_secs(s)),
        None => "-".into(),
    }
}

fn print_programs(list: &[Value]) {
    program_table(list, false);
}

/// Programs as a table, with a NODE column first when `node`.
fn program_table(list: &[Value], node: bool) {
    let first = |n: &str| {
        if node {
            format!("{n:<12} ")
        } else {
            String::new()
        }
    };
    outln!(
        "{}{:<20} {:<9} {:>8} {:>9} {:>8}  LAST EXIT",
        first("NODE"),
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS"
    );
    for p in list {
        outln!(
            "{}{:<20} {:<9} {:>8} {:>9} {:>8}  {}",
            first(p["node"].as_str().unwrap_or("")),
            p["name"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["pid"]
                .as_u64()
                .map(|v| v.to_string())
                .unwrap_or("-".into()),
            fmt_uptime(&p["uptime_seconds"]),
            p["restarts"].as_u64().unwrap_or(0),
            p["last_exit"]["description"].as_str().unwrap_or("-"),
        );
    }
}

/// The fleet overview: a NODE column, then a line per node that did not answer.
fn print_fleet(v: &Value) {
    let empty = Vec::new();
    program_table(v["programs"].as_array().unwrap_or(&empty), true);
    for n in v["nodes"].as_array().unwrap_or(&empty) {
        if n["unreachable"].as_bool() != Some(true) {
            continue;
        }
        let seen = n["last_seen_ms"]
            .as_i64()
            .map(fmt_ms)
            .unwrap_or_else(|| "never since the hub started".into());
        outln!(
            "{:<12} unreachable (last seen {seen}): {}",
            n["node"].as_str().unwrap_or(""),
            n["error"].as_str().unwrap_or("")
        );
    }
}

pub(super) fn print_json(v: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_line(v: &Value) {
    let ts = v["ts"].as_i64().map(fmt_ms).unwrap_or_default();
    let stream = v["stream"].as_str().unwrap_or("");
    let marker = if stream == "stdin" { "> " } else { "" };
    outln!("{ts} {marker}{}", v["text"].as_str().unwrap_or(""));
}

/// Runs `warden ctl`.
/// `warden fleet move PROGRAM --to NODE`: asks the running warden to move the program and
/// waits for the move to end (at most six hours: the copy of a large world takes long).
pub async fn fleet_move(remote: &Remote, program: &str, to: &str) -> anyhow::Result<()> {
    let c = Client::new(remote)?;
    errln!("moving {program} to node {to}: stopping it here, backing it up, sending it…");
    let req = c
        .http
        .post(format!("{}/api/fleet/move", c.base))
        .json(&json!({"program": program, "to": to}));
    let v = c.send_within(req, Duration::from_secs(6 * 3600)).await?;
    if remote.json {
        return print_json(&v);
    }
    let size = crate::units::show_bytes(v["archive_bytes"].as_u64().unwrap_or(0) as f64);
    outln!(
        "{program} moved to node {to} ({size}, backup #{} kept here); {}",
        v["backup_id"],
        if v["started"] == true {
            "running there"
        } else {
            "stopped there"
        }
    );
    Ok(())
}

pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let c = Client::new(&args.remote)?;
    let json = args.remote.json;
    if args.all {
        if !matches!(args.cmd, CtlCmd::List) {
            bail!("--all works with `list` only: `warden ctl --all list`");
        }
        let v = c.get("/api/fleet/programs").await?;
        if json {
            return print_json(&v);
        }
        print_fleet(&v);
        return Ok(());
    }
    match args.cmd {
        CtlCmd::List => {
            let v = c.get("/api/programs").await?;
            if json {
                return print_json(&v);
            }
            print_programs(v["programs"].as_array().map(Vec::as_slice).unwrap_or(&[]));
        }
        CtlCmd::Status { name } => {
            if json {
                return print_json(&c.get(&format!("/api/programs/{name}")).await?);
            }
            status::detailed(&c, &name).await?;
        }
        CtlCmd::Schedule(cmd) => super::schedctl::schedule(&c, cmd, json).await?,
        CtlCmd::Job(cmd) => super::schedctl::job(&c, cmd, json).await?,
        CtlCmd::Start {
            name,
            no_wait,
            wait,
            with_deps,
        } => {
            let what = if with_deps {
                "start?with_deps=true"
            } else {
                "start"
            };
            action(&c, &name, what, json).await?;
            if !no_wait {
                wait_running(&c, &name, wait).await?;
            }
        }
        CtlCmd::Stop {
            name,
            game,
            with_deps,
        } => {
            let mut q = game.query();
            if with_deps {
                q.push(if q.is_empty() { '?' } else { '&' });
                q.push_str("with_deps=true");
            }
            action(&c, &name, &format!("stop{q}"), json).await?
        }
        CtlCmd::Restart { name, game } => {
            action(&c, &name, &format!("restart{}", game.query()), json).await?
        }
        CtlCmd::Rcon { name, command } => {
            let v = c
                .post(
                    &format!("/api/programs/{name}/rcon"),
                    serde_json::json!({ "command": command.join(" ") }),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("{}", v["output"].as_str().unwrap_or("").trim_end());
        }
        CtlCmd::Players { name } => {
            let v = c.get(&format!("/api/programs/{name}/players")).await?;
            if json {
                return print_json(&v);
            }
            let names: Vec<&str> = v["names"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            outln!(
                "{} of {} players online{}{}",
                v["online"].as_u64().unwrap_or(0),
                v["max"]
                    .as_u64()
                    .map(|m| m.to_string())
                    .unwrap_or("?".into()),
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            );
        }
        CtlCmd::Broadcast { name, message } => {
            let v = c
                .post(
                    &format!("/api/programs/{name}/broadcast"),
                    serde_json::json!({ "message": message.join(" ") }),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("sent via {}", v["method"].as_str().unwrap_or("?"));
        }
        CtlCmd::Kill { name } => action(&c, &name, "kill", json).await?,
        CtlCmd::Delete { name, force } => {
            c.send(
                c.http
                    .delete(format!("{}/api/programs/{name}?force={force}", c.base)),
            )
            .await?;
            outln!("{name}: deleted");
        }
        CtlCmd::Send {
            name,
            line,
            no_wait,
            wait,
        } => {
            let body = serde_json::json!({ "line": line.join(" ") });
            let path = format!("/api/programs/{name}/console");
            if no_wait {
                c.post(&path, body).await?;
            } else {
                // Follow the console first, so no answer is missed between the two calls.
                let answer = console_stream(&c, &name, 0).await?;
                c.post(&path, body).await?;
                let wait = Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO);
                print_answer(answer, wait, json).await?;
            }
        }
        CtlCmd::Events { name, limit } => {
            let v = c
                .get(&format!("/api/programs/{name}/events?limit={limit}"))
                .await?;
            if json {
                return print_json(&v);
            }
            for e in v["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .rev()
            {
                outln!(
                    "{} {:<16} {}",
                    e["ts"].as_i64().map(fmt_ms).unwrap_or_default(),
                    e["kind"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
        }
        CtlCmd::Alerts(cmd) => return alerts::run(&c, cmd, json).await,
        CtlCmd::Files(cmd) => return files::run(&c, cmd, json).await,
        CtlCmd::Backup(cmd) => backup::run(&c, cmd, json).await?,
        CtlCmd::Update(cmd) => update::run(&c, cmd, json).await?,
        CtlCmd::SteamPassword { password_stdin } => {
            let pw = tokio::task::spawn_blocking(move || {
                super::read_secret(password_stdin, "Steam password")
            })
            .await??;
            c.put("/api/install/steam-account", json!({ "password": pw }))
                .await?;
            outln!("the Steam account's password is stored (sealed)");
        }
        CtlCmd::Logs {
            name,
            lines,
            follow,
        } => {
            if follow {
                return follow_logs(&c, &name, lines, json).await;
            }
            let v = c
                .get(&format!("/api/programs/{name}/console?lines={lines}"))
                .await?;
            if json {
                return print_json(&v);
            }
            for l in v["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                print_line(l);
            }
        }
    }
    Ok(())
}

/// "cannot reach warden", with the likely fix.
pub(super) fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    // reqwest's own text is "error sending request"; the cause is at the end of the chain.
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    if cause.contains("certificate") {
        return anyhow!(
            "cannot reach warden at {base}: its HTTPS certificate is not trusted here ({cause}).\nFor a self-signed certificate pass --fingerprint SHA256 (WARDEN_FINGERPRINT); warden logs the fingerprint when it starts."
        );
    }
    anyhow!(
        "cannot reach warden at {base}: {cause}\nIs it running? Start it with `warden serve`, or point --url (WARDEN_URL) at it."
    )
}

/// Waits until `name` is running; an error with the reason when it crashes, gives up or
/// stops instead, or is still starting after the wait.
async fn wait_running(c: &Client, name: &str, wait: Option<u64>) -> anyhow::Result<()> {
    let path = format!("/api/programs/{name}");
    let first = c.get(&path).await?;
    let secs = wait.unwrap_or_else(|| first["start_seconds"].as_u64().unwrap_or(1) + 15);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut v = first;
    loop {
        let state = v["state"].as_str().unwrap_or("?");
        match state {
            "running" => return Ok(()),
            "crashed" | "fatal" | "stopped" | "backoff" => {
                let why = v["reason"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| {
                        v["last_exit"]["description"]
                            .as_str()
                            .map(|d| format!("exited ({d})"))
                    })
                    .unwrap_or_else(|| format!("it is {state}"));
                bail!(
                    "{name} did not start: {why}\nSee `warden ctl events {name}` and `warden ctl logs {name}`."
                );
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{name} is still {state} after {secs} s; see `warden ctl status {name}`");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        v = c.get(&path).await?;
    }
}

async fn action(c: &Client, name: &str, what: &str, json: bool) -> anyhow::Result<()> {
    let v = c
        .post(&format!("/api/programs/{name}/{what}"), Value::Null)
        .await?;
    if json {
        return print_json(&v);
    }
    if let Some(at) = v["at_ms"].as_i64() {
        // A warned stop: the server answered with the plan.
        outln!(
            "{name}: {} at {} after warning players",
            v["action"].as_str().unwrap_or("stop"),
            fmt_ms(at)
        );
        return Ok(());
    }
    outln!(
        "{name}: {}{}",
        v["state"].as_str().unwrap_or("?"),
        v["pid"]
            .as_u64()
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default()
    );
    Ok(())
}

/// Prints the console lines that follow a sent line: until `wait` has passed, or half a
/// second of quiet after the first line. The echo of the input itself is left out.
async fn print_answer(resp: reqwest::Response, wait: Duration, json: bool) -> anyhow::Result<()> {
    const QUIET: Duration = Duration::from_millis(500);
    let end = tokio::time::Instant::now() + wait;
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut answered = false;
    loop {
        let until = if answered {
            end.min(tokio::time::Instant::now() + QUIET)
        } else {
            end
        };
        let Ok(chunk) = tokio::time::timeout_at(until, stream.next()).await else {
            break;
        };
        let Some(chunk) = chunk else { break };
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if v["stream"] == "stdin" || v["lagged"].is_u64() {
                continue;
            }
            answered = true;
            if json {
                out!("{}", String::from_utf8_lossy(&line));
            } else {
                outln!("{}", v["text"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// Opens the console stream of `name` starting with its last `lines` lines.
async fn console_stream(c: &Client, name: &str, lines: usize) -> anyhow::Result<reqwest::Response> {
    let resp = c
        .http
        .get(format!(
            "{}/api/programs/{name}/console/stream?lines={lines}",
            c.base
        ))
        .bearer_auth(&c.token)
        .send()
        .await
        .map_err(|e| unreachable(&c.base, &e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        bail!(
            "{} (HTTP {})",
            v["error"]["message"].as_str().unwrap_or("request failed"),
            status.as_u16()
        );
    }
    Ok(resp)
}

async fn follow_logs(c: &Client, name: &str, lines: usize, json: bool) -> anyhow::Result<()> {
    let resp = console_stream(c, name, lines).await?;
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if json {
                out!("{}", String::from_utf8_lossy(&line));
            } else if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if let Some(n) = v["lagged"].as_u64() {
                    errln!("({n} lines skipped: this client fell behind)");
                } else {
                    print_line(&v);
                }
            }
        }
    }
    Ok(())
}

/// Runs `warden apply FILE`.
pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let programs = load_programs_file(&args.file)?;
    let c = Client::new(&args.remote)?;
    let v = c
        .post("/api/apply", serde_json::json!({ "programs": programs }))
        .await?;
    if args.remote.json {
        return print_json(&v);
    }
    for (key, verb) in [
        ("created", "created"),
        ("updated", "updated"),
        ("unchanged", "unchanged"),
    ] {
        for n in v[key].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            outln!("{verb:<9} {}", n.as_str().unwrap_or(""));
        }
    }
    Ok(())
}
