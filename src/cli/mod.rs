//! The command-line interface: argument definitions and the local commands (serve, user,
//! token, config check). Remote commands (`ctl`, `apply`) live in `ctl.rs` and talk to a
//! running server over HTTP with a token.

#[macro_use]
mod out;

mod ctl;
mod install;
mod metrics;
mod schedctl;
mod service;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, Role};
use crate::config::{Config, LogFormat};
use crate::{os, server};

#[derive(Parser)]
#[command(name = "warden", version, about = "Supervise, monitor and schedule the programs of one machine", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    place: Place,
}

/// Where the daemon's config and data live (shared by local commands).
#[derive(Args, Clone)]
struct Place {
    /// Daemon config file (TOML). Without it, built-in defaults are used.
    #[arg(long, global = true, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file's `data_dir`).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (the default when no command is given).
    Serve {
        /// Address to listen on (overrides the config file), e.g. 127.0.0.1:9180.
        #[arg(long)]
        listen: Option<String>,
        /// Create and start a demo game server program named `demo` if it is missing.
        #[arg(long)]
        demo: bool,
    },
    /// Manage users (works whether or not the server runs).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage API tokens (works whether or not the server runs).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Give users and tokens permissions on programs (works whether or not the server
    /// runs).
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Manage the other wardens this one knows as fleet nodes (works whether or not the
    /// server runs).
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// Manage the key that seals secrets in the database (only while the server is
    /// stopped).
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// Control a running server.
    Ctl(ctl::CtlArgs),
    /// Create or update programs from a TOML file on a running server.
    Apply(ctl::ApplyArgs),
    /// List the templates servers can be installed from, with their variables.
    Templates {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a server from a template on a running server and follow it until it is
    /// ready to start.
    New(install::NewArgs),
    /// Validate configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Resource history on a running server (import from an older monitor).
    Metrics(metrics::MetricsArgs),
    /// Install and control warden as a Windows service (Windows only).
    #[command(subcommand)]
    Service(service::ServiceCmd),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user.
    Add {
        /// Login name.
        name: String,
        /// admin, operator, viewer or none (then only grants give permissions).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (otherwise you are prompted on a terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's password (ends their sessions).
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Remove a user.
    Remove {
        /// Login name.
        name: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create an API token; it is printed once.
    Create {
        /// A label, e.g. `backup-script`.
        name: String,
        /// admin, operator, viewer or none (then only grants give permissions).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or public id.
    Revoke {
        /// Id or public id.
        id: String,
    },
}

#[derive(Subcommand)]
enum GrantCmd {
    /// Set what a user or token may do on a scope (replacing what it had there), e.g.
    /// `warden grant set user alice program:valheim control,console`. `files.write` and
    /// `define` let the holder run code as warden's user.
    Set {
        /// `user` or `token`.
        #[arg(value_parser = ["user", "token"])]
        kind: String,
        /// User name, or the token's public id.
        subject: String,
        /// `all`, `program:NAME` (or just NAME) or `tag:TAG`.
        scope: String,
        /// Comma-separated permissions (view, console, control, players, files.read,
        /// files.write, backups, backups.restore, schedules, define) or bundles
        /// (viewer, operator, admin); `none` removes the grant.
        perms: String,
    },
    /// List grants.
    List,
    /// Remove a grant by id.
    Remove {
        /// Grant id (from `warden grant list`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum FleetCmd {
    /// Add a node: another warden, by the base URL of its API. Its API token (make one
    /// on the node with `warden token create NAME --role viewer`) is read from standard
    /// input, or prompted for on a terminal; it is never printed back.
    Add {
        /// Node name (the `node` label), e.g. `box2`.
        name: String,
        /// Base URL of the node's API, e.g. `https://box2.example:9180/`.
        url: String,
        /// SHA-256 fingerprint of the node's TLS certificate to pin (hex, colons allowed).
        #[arg(long)]
        fingerprint: Option<String>,
        /// Allow plain `http://` to a host that is not loopback (the token then crosses
        /// the network unencrypted).
        #[arg(long)]
        allow_insecure: bool,
        /// Read the token from standard input even on a terminal.
        #[arg(long)]
        token_stdin: bool,
    },
    /// List nodes (never their tokens).
    List,
    /// Remove a node.
    Remove {
        /// Node name.
        name: String,
    },
    /// Move a program of the running warden to a node: stopped here, a verified backup
    /// streamed there and restored, started there if it ran here, left stopped here with
    /// autostart off. Needs an admin token here (`WARDEN_URL`/`WARDEN_TOKEN` like `warden
    /// ctl`) and the node added with an admin token of the node.
    Move {
        #[command(flatten)]
        remote: ctl::Remote,
        /// The program.
        program: String,
        /// The node it goes to.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum SecretsCmd {
    /// Re-encrypt every stored secret (program passwords and secret env values, alert
    /// channels' URLs and tokens, HTTP tasks' URLs and headers) under a new key and
    /// replace `secrets.key`. Stop warden first; a crash midway is finished (or undone) at
    /// the next start.
    Rotate,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Check a daemon config file (or a programs file with --programs) without starting.
    Check {
        /// The file.
        file: PathBuf,
        /// The file is a programs file for `warden apply`.
        #[arg(long)]
        programs: bool,
        /// With --programs: check the file only, not whether its commands and folders
        /// exist on this machine (for a file meant for another machine).
        #[arg(long, requires = "programs")]
        no_resolve: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}; use admin, operator, viewer or none"))
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    // reqwest is built with rustls but no default crypto provider (the default pulls a
    // long C build); every HTTP client (alert webhooks, `ctl`) needs ring installed first.
    // An error only means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Cmd::Serve {
        listen: None,
        demo: false,
    });
    let result = match command {
        Cmd::Ctl(args) => runtime().and_then(|rt| rt.block_on(ctl::run(args))),
        Cmd::Apply(args) => runtime().and_then(|rt| rt.block_on(ctl::apply(args))),
        Cmd::New(args) => runtime().and_then(|rt| rt.block_on(install::new(args))),
        Cmd::Config(ConfigCmd::Check {
            file,
            programs,
            no_resolve,
        }) => config_check(&file, programs, !no_resolve),
        Cmd::Metrics(args) => runtime().and_then(|rt| rt.block_on(metrics::run(args))),
        Cmd::Service(cmd) => service::run(cmd, &cli.place),
        other => load_config(&cli.place).and_then(|cfg| {
            init_logging(&cfg);
            let rt = runtime()?;
            match other {
                Cmd::Serve { listen, demo } => {
                    rt.block_on(serve(cfg, listen, demo, CancellationToken::new()))
                }
                Cmd::User(cmd) => rt.block_on(user(cfg, cmd)),
                Cmd::Token(cmd) => rt.block_on(token(cfg, cmd)),
                Cmd::Grant(cmd) => rt.block_on(grant(cfg, cmd)),
                Cmd::Fleet(cmd) => rt.block_on(fleet(cfg, cmd)),
                Cmd::Secrets(SecretsCmd::Rotate) => secrets_rotate(&cfg),
                Cmd::Templates { json } => install::list(&cfg.data_dir, json),
                Cmd::Ctl(_)
                | Cmd::New(_)
                | Cmd::Apply(_)
                | Cmd::Config(_)
                | Cmd::Metrics(_)
                | Cmd::Service(_) => Ok(()),
            }
        }),
    };
    // Whatever is still queued reaches the output if it can, without waiting long.
    crate::logging::flush(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::logging::stderr_line(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn secrets_rotate(cfg: &Config) -> anyhow::Result<()> {
    let db = server::db_path(&cfg.data_dir);
    if !db.exists() {
        anyhow::bail!("there is no database at {}", db.display());
    }
    // A running warden keeps the old key in memory: it must not run meanwhile.
    let _lock = server::lock_data_dir(&cfg.data_dir)?;
    let n = crate::store::rotate_secrets(&db)?;
    outln!(
        "resealed the secrets of {n} definition(s) under a new key in {}",
        crate::seal::key_path(&cfg.data_dir, crate::seal::SECRETS).display()
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        // Two workers are plenty for a supervisor and keep it small beside the games.
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()?)
}

fn load_config(place: &Place) -> anyhow::Result<Config> {
    let mut cfg = match &place.config {
        Some(path) => Config::load(path)?,
        None => Config::defaults()?,
    };
    if let Some(d) = &place.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    init_logging_to(cfg, std::io::stderr(), std::io::stderr().is_terminal());
}

/// Sets up warden's log: every line goes through [`crate::logging`] (never blocks, never
/// panics, drops and counts what cannot be written), and a panic anywhere is logged with
/// its location instead of only printed to a stderr that may be gone.
fn init_logging_to<W>(cfg: &Config, out: W, ansi: bool)
where
    W: std::io::Write + Send + 'static,
{
    let writer = crate::logging::start(out);
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            panic = %info,
            "a part of warden panicked"
        );
    }));
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A failed write must never be reported with `eprintln!` (it panics on a broken
        // stderr); `logging` counts it instead.
        .log_internal_errors(false)
        .with_writer(writer);
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}

/// Runs the daemon until a shutdown signal arrives or `shutdown` is cancelled (by the
/// Windows service manager, when run as a service).
async fn serve(
    mut cfg: Config,
    listen: Option<String>,
    demo: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Err(e) = os::apply_settings(&cfg.windows) {
        tracing::warn!(error = %e, "cannot apply the [windows] settings (priority)");
    }
    if let Some(l) = listen {
        cfg.listen = l.parse().map_err(|_| {
            anyhow::anyhow!("--listen {l:?} is not an address with a port, e.g. 127.0.0.1:9180")
        })?;
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let token = shutdown.clone();
    tokio::spawn(async move {
        // SIGINT/SIGTERM on Unix; Ctrl-C, console close or system shutdown on Windows.
        os::shutdown_signal().await;
        token.cancel();
    });
    server::serve(cfg, listener, shutdown, server::ServeOptions { demo }).await
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    read_secret(from_stdin, "password")
}

/// Reads a secret from standard input (all of it, without the final line break), or
/// prompts for one line on a terminal.
fn read_secret(from_stdin: bool, prompt: &str) -> anyhow::Result<String> {
    let mut pw = String::new();
    if from_stdin || !std::io::stdin().is_terminal() {
        std::io::stdin().read_to_string(&mut pw)?;
    } else {
        err!("{prompt}: ");
        std::io::stdin().read_line(&mut pw)?;
    }
    let pw = pw.trim_end_matches(['\n', '\r']).to_string();
    Ok(pw)
}

async fn user(cfg: Config, cmd: UserCmd) -> anyhow::Result<()> {
    // A user made in a fresh directory is invisible to the warden serving another one:
    // say so instead of quietly creating a second, unrelated database.
    if matches!(cmd, UserCmd::Add { .. }) && !server::db_path(&cfg.data_dir).exists() {
        let dir = std::path::absolute(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
        errln!(
            "warning: {} holds no warden data yet; a new data directory is created there.\n\
             If `warden serve` runs elsewhere, pass the same --data-dir (or WARDEN_DATA_DIR) to both.",
            dir.display()
        );
    }
    let store = server::open_store(&cfg.data_dir)?;
    let auth = Auth::new(store.clone(), cfg.api.session_ttl);
    match cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            auth.add_user(&name, pw, role).await?;
            outln!("user '{name}' added with role {}", role.as_str());
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            auth.set_password(&name, pw).await?;
            outln!("password of '{name}' changed; their sessions were ended");
        }
        UserCmd::List => {
            let users = store.users().await?;
            outln!("{:<24} {:<9} CREATED", "NAME", "ROLE");
            for u in users {
                outln!("{:<24} {:<9} {}", u.name, u.role, ctl::fmt_ms(u.created_at));
            }
        }
        UserCmd::Remove { name } => {
            store.delete_user(&name).await?;
            outln!("user '{name}' removed");
        }
    }
    store.close().await;
    Ok(())
}

async fn grant(cfg: Config, cmd: GrantCmd) -> anyhow::Result<()> {
    use crate::access::Subject;
    use crate::access::{Grant, Perms, Scope};
    let store = server::open_store(&cfg.data_dir)?;
    match cmd {
        GrantCmd::Set {
            kind,
            subject,
            scope,
            perms,
        } => {
            let kind = if kind == "token" {
                Subject::Token
            } else {
                Subject::User
            };
            let scope = Scope::parse_cli(&scope).map_err(anyhow::Error::msg)?;
            let names: Vec<&str> = perms.split(',').filter(|p| *p != "none").collect();
            let perms = Perms::parse(&names).map_err(anyhow::Error::msg)?;
            store
                .set_grant(kind, &subject, Grant { scope, perms })
                .await?;
            let list = perms.to_stored();
            if list.is_empty() {
                outln!("grant of '{subject}' removed");
            } else {
                outln!("'{subject}' now has {list}");
            }
            if perms.names().iter().any(|p| p.runs_code()) {
                outln!("note: files.write and define let '{subject}' run code as warden's user");
            }
        }
        GrantCmd::List => {
            outln!(
                "{:<5} {:<6} {:<20} {:<22} PERMISSIONS",
                "ID",
                "KIND",
                "SUBJECT",
                "SCOPE"
            );
            for g in store.grants().await? {
                let scope = match &g.grant.scope {
                    Scope::All => "all".to_string(),
                    Scope::Program(p) => format!("program:{p}"),
                    Scope::Tag(t) => format!("tag:{t}"),
                };
                let kind = match g.subject_kind {
                    Subject::User => "user",
                    Subject::Token => "token",
                };
                outln!(
                    "{:<5} {:<6} {:<20} {:<22} {}",
                    g.id,
                    kind,
                    g.subject,
                    scope,
                    g.grant.perms.to_stored()
                );
            }
        }
        GrantCmd::Remove { id } => {
            store.delete_grant(id).await?;
            outln!("grant {id} removed");
        }
    }
    store.close().await;
    Ok(())
}

async fn token(cfg: Config, cmd: TokenCmd) -> anyhow::Result<()> {
    let store = server::open_store(&cfg.data_dir)?;
    let auth = Auth::new(store.clone(), cfg.api.session_ttl);
    match cmd {
        TokenCmd::Create { name, role } => {
            let t = auth.create_token(&name, role, Some("cli".into())).await?;
            errln!(
                "token '{name}' ({}) created with role {}. It is shown only now:",
                t.public_id,
                role.as_str()
            );
            outln!("{}", t.token);
        }
        TokenCmd::List => {
            outln!(
                "{:<4} {:<13} {:<20} {:<9} {:<20} STATUS",
                "ID",
                "PUBLIC ID",
                "NAME",
                "ROLE",
                "LAST USED"
            );
            for t in store.tokens().await? {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                outln!(
                    "{:<4} {:<13} {:<20} {:<9} {:<20} {status}",
                    t.id,
                    t.public_id,
                    t.name,
                    t.role,
                    t.last_used_at
                        .map(ctl::fmt_ms)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        TokenCmd::Revoke { id } => {
            let public_id = auth.revoke_token(&id).await?;
            outln!("token {public_id} revoked");
        }
    }
    store.close().await;
    Ok(())
}

async fn fleet(cfg: Config, cmd: FleetCmd) -> anyhow::Result<()> {
    let store = server::open_store(&cfg.data_dir)?;
    let result = fleet_command(&store, &cfg.data_dir, cmd).await;
    store.close().await;
    result
}

async fn fleet_command(
    store: &crate::store::Store,
    data_dir: &std::path::Path,
    cmd: FleetCmd,
) -> anyhow::Result<()> {
    match cmd {
        FleetCmd::Add {
            name,
            url,
            fingerprint,
            allow_insecure,
            token_stdin,
        } => {
            let token = read_secret(token_stdin, "API token of the node")?;
            let new = crate::fleet::NewNode {
                name,
                url,
                token,
                fingerprint,
                allow_insecure,
            };
            let mut node = crate::fleet::validate(new, crate::clock::now_ms())
                .map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))?;
            // Stored sealed under this data directory's key, never as typed.
            let sealer = crate::seal::Sealer::open_or_create(data_dir, crate::seal::FLEET)
                .map_err(anyhow::Error::msg)?;
            node.token = sealer.seal(&node.token).map_err(anyhow::Error::msg)?;
            let (name, url, insecure) = (node.name.clone(), node.url.clone(), node.allow_insecure);
            store.add_fleet_node(node).await?;
            outln!("node '{name}' added at {url}");
            if insecure && url.starts_with("http://") {
                outln!("note: its token and answers cross the network unencrypted");
            }
        }
        FleetCmd::List => {
            outln!("{:<20} {:<40} {:<8} CREATED", "NAME", "URL", "TLS PIN");
            for n in store.fleet_nodes().await? {
                let pin = if n.fingerprint.is_some() {
                    "pinned"
                } else if n.allow_insecure && n.url.starts_with("http://") {
                    "insecure"
                } else {
                    "-"
                };
                outln!(
                    "{:<20} {:<40} {:<8} {}",
                    n.name,
                    n.url,
                    pin,
                    ctl::fmt_ms(n.created_at)
                );
            }
        }
        FleetCmd::Remove { name } => {
            store.remove_fleet_node(&name).await?;
            outln!("node '{name}' removed");
        }
        FleetCmd::Move {
            remote,
            program,
            to,
        } => ctl::fleet_move(&remote, &program, &to).await?,
    }
    Ok(())
}

fn config_check(file: &std::path::Path, programs: bool, resolve: bool) -> anyhow::Result<()> {
    if programs {
        let specs = ctl::load_programs_file(file)?;
        // Valid as written; then each command must resolve on this machine, as a save
        // through the API requires.
        let unresolved: Vec<String> = specs
            .iter()
            .filter(|_| resolve)
            .filter_map(|spec| {
                spec.resolve_command()
                    .err()
                    .map(|e| format!("  - program {:?}: {}: {}", spec.name, e.field, e.message))
            })
            .collect();
        if !unresolved.is_empty() {
            anyhow::bail!(
                "{}: {} of its commands cannot be run on this machine:\n{}",
                file.display(),
                unresolved.len(),
                unresolved.join("\n")
            );
        }
        let n = specs.len();
        outln!(
            "{}: OK ({n} program{})",
            file.display(),
            if n == 1 { "" } else { "s" }
        );
    } else {
        Config::load(file)?;
        outln!("{}: OK", file.display());
    }
    Ok(())
}
