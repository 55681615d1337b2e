//! A small fake game server (Minecraft-style console, ticks, RCON, Server List Ping, A2S and a
//! Palworld-style REST API) that warden's demo and integration tests supervise.
//!
//! The entry point is [`run_from_args`]; `warden demo-game ARGS` and the `demo-game` binary
//! both call it. Tests find ephemeral ports in `ports.json` in the save dir.

mod a2s;
mod commands;
mod console;
mod rcon;
mod rest;
mod signals;
mod slp;
mod world;

use std::future::pending;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::time::{MissedTickBehavior, interval, interval_at, sleep};

use crate::commands::Action;
use crate::world::World;

/// How often the harmless status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Minecraft autosaves every 5 minutes unless `save-off`.
const AUTOSAVE_EVERY: Duration = Duration::from_secs(300);

/// A fake game server that behaves like a real one: a slow start, a readiness line, ticks
/// that use some CPU, console commands, and the usual query/admin protocols on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "demo-game", version)]
struct Args {
    /// Server name (MOTD, A2S name, REST servername)
    #[arg(long, default_value = "Demo world")]
    name: String,
    /// Game ticks per second
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    tps: u32,
    /// CPU busy-work per tick, in microseconds
    #[arg(long, default_value_t = 300)]
    work_us: u64,
    /// Delay before the server is ready (listeners bound, "Done" printed)
    #[arg(long, default_value_t = 1500)]
    startup_ms: u64,
    /// Fake players online at start (Steve, Alex, Player3, ...)
    #[arg(long, default_value_t = 2)]
    players: usize,
    /// Player limit
    #[arg(long, default_value_t = 20)]
    max_players: usize,
    /// Where `saved` and `ports.json` are written
    #[arg(long, default_value = ".")]
    save_dir: PathBuf,
    /// Enable Source RCON on this TCP port (0 = any free port)
    #[arg(long)]
    rcon_port: Option<u16>,
    /// RCON password (or from DEMO_RCON_PASSWORD, so it is not on the command line)
    #[arg(
        long,
        env = "DEMO_RCON_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    rcon_password: String,
    /// Enable Minecraft Server List Ping on this TCP port (0 = any free port)
    #[arg(long)]
    slp_port: Option<u16>,
    /// Enable Steam A2S queries on this UDP port (0 = any free port)
    #[arg(long)]
    query_port: Option<u16>,
    /// Enable the Palworld-style REST API on this TCP port (0 = any free port)
    #[arg(long)]
    rest_port: Option<u16>,
    /// REST API password (basic auth, user "admin")
    #[arg(long, default_value = "")]
    rest_password: String,
    /// Crash (exit code 1) this many milliseconds after start
    #[arg(long)]
    crash_after_ms: Option<u64>,
    /// Log and ignore SIGTERM/SIGINT (Ctrl-C/Ctrl-Break on Windows), to test stop escalation
    #[arg(long)]
    ignore_sigterm: bool,
}

/// What the main loop is asked to do by the stdin reader and the listener tasks.
pub(crate) enum Event {
    /// A console line from stdin.
    Command(String),
    /// Stop gracefully: save, exit 0.
    Stop,
    /// Crash: exit 1 with this reason.
    Crash(String),
}

/// Parses `args` (NOT including the program name) and runs the server; returns the process exit code.
pub fn run_from_args(args: Vec<String>) -> ExitCode {
    let args = match Args::try_parse_from(std::iter::once("demo-game".to_string()).chain(args)) {
        Ok(args) => args,
        Err(e) => {
            // --help and --version also land here, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            console::error(&format!("Cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(args));
    // Don't wait for connection tasks to wind down: the process is about to exit.
    runtime.shutdown_background();
    code
}

async fn serve(args: Args) -> ExitCode {
    let started = Instant::now();
    console::info(&format!(
        "Starting minecraft server version {} (demo)",
        world::VERSION_NAME
    ));
    if let Err(e) = std::fs::create_dir_all(&args.save_dir) {
        console::error(&format!("Cannot create save dir {:?}: {e}", args.save_dir));
        return ExitCode::FAILURE;
    }
    // A ports.json left by an earlier run would point tests at dead ports.
    let _ = std::fs::remove_file(args.save_dir.join("ports.json"));
    console::info("Loading properties");
    console::info("Default game type: SURVIVAL");
    console::info(&format!("Preparing level \"world\" ({})", args.name));

    let world = Arc::new(World::new(
        args.name.clone(),
        args.max_players,
        args.tps,
        args.save_dir.clone(),
        args.players,
    ));
    let (events, mut events_rx) = mpsc::unbounded_channel();
    spawn_stdin_reader(events.clone());
    let mut signals = signals::Signals::new();

    let startup = sleep(Duration::from_millis(args.startup_ms));
    let crash_timer = async {
        match args.crash_after_ms {
            Some(ms) => sleep(Duration::from_millis(ms)).await,
            None => pending().await,
        }
    };
    tokio::pin!(startup, crash_timer);
    let mut ready = false;
    let mut ticker = interval(Duration::from_secs(1) / args.tps);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let now = tokio::time::Instant::now();
    let mut status = interval_at(now + STATUS_EVERY, STATUS_EVERY);
    status.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut autosave = interval_at(now + AUTOSAVE_EVERY, AUTOSAVE_EVERY);
    // Skip, so re-enabling autosave after a long `save-off` does not fire a burst of saves.
    autosave.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let work = Duration::from_micros(args.work_us);

    loop {
        tokio::select! {
            () = &mut startup, if !ready => {
                if let Err(e) = start_listeners(&args, &world, &events).await {
                    console::error(&format!("Failed to start: {e}"));
                    return ExitCode::FAILURE;
                }
                console::info(&format!(
                    "Done ({:.3}s)! For help, type \"help\"",
                    started.elapsed().as_secs_f64()
                ));
                ready = true;
            }
            // Console input typed during startup waits here until the server is ready,
            // as on a real server.
            Some(event) = events_rx.recv(), if ready => match event {
                Event::Command(line) => match commands::run(&world, &line).action {
                    Some(Action::Stop) => return shutdown(&world),
                    Some(Action::Crash) => return crash("Manually triggered debug crash"),
                    None => {}
                },
                Event::Stop => return shutdown(&world),
                Event::Crash(reason) => return crash(&reason),
            },
            _ = ticker.tick(), if ready => {
                busy_work(work);
                world.tick();
            }
            _ = status.tick(), if ready => console::info(&format!(
                "Status: {} players online, {} ticks at {} TPS, autosave {}",
                world.players().len(),
                world.ticks(),
                args.tps,
                if world.autosave() { "on" } else { "off" },
            )),
            _ = autosave.tick(), if ready && world.autosave() => match world.save() {
                Ok(_) => console::info("Autosaved the game"),
                Err(e) => console::error(&format!("Autosave failed: {e}")),
            },
            name = signals.recv() => {
                if args.ignore_sigterm {
                    console::warn(&format!("Received {name}, ignoring it (--ignore-sigterm)"));
                } else {
                    console::info(&format!("Received {name}, shutting down"));
                    return shutdown(&world);
                }
            }
            () = &mut crash_timer => {
                let ms = args.crash_after_ms.unwrap_or_default();
                return crash(&format!("Crash requested by --crash-after-ms {ms}"));
            }
        }
    }
}

/// Binds every enabled listener on 127.0.0.1, announces its address, starts its task, and
/// then writes `ports.json` so tests can find ephemeral ports.
async fn start_listeners(
    args: &Args,
    world: &Arc<World>,
    events: &UnboundedSender<Event>,
) -> std::io::Result<()> {
    let mut ports: Vec<(&str, u16)> = Vec::new();
    if let Some(port) = args.rcon_port {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        console::info(&format!("RCON running on {addr}"));
        ports.push(("rcon", addr.port()));
        let password = args.rcon_password.clone();
        tokio::spawn(rcon::serve(
            listener,
            world.clone(),
            password,
            events.clone(),
        ));
    }
    if let Some(port) = args.slp_port {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        console::info(&format!("Server List Ping listening on {addr}"));
        ports.push(("slp", addr.port()));
        tokio::spawn(slp::serve(listener, world.clone()));
    }
    if let Some(port) = args.query_port {
        let socket = UdpSocket::bind(("127.0.0.1", port)).await?;
        let addr = socket.local_addr()?;
        console::info(&format!("Query (A2S) listening on {addr}"));
        ports.push(("query", addr.port()));
        tokio::spawn(a2s::serve(socket, world.clone()));
    }
    if let Some(port) = args.rest_port {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        console::info(&format!("REST API listening on {addr}"));
        ports.push(("rest", addr.port()));
        let password = args.rest_password.clone();
        tokio::spawn(rest::serve(
            listener,
            world.clone(),
            password,
            events.clone(),
        ));
    }
    let entries: Vec<String> = ports.iter().map(|(k, p)| format!("\"{k}\":{p}")).collect();
    let json = format!("{{{}}}\n", entries.join(","));
    world::write_atomic(&args.save_dir, "ports.json", json.as_bytes())
}

/// Reads console lines on a plain thread (stdin has no portable async API) and forwards them.
/// At end of input the thread just ends: real servers keep running when stdin closes.
fn spawn_stdin_reader(events: UnboundedSender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).trim().to_string();
                        if events.send(Event::Command(text)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        console::warn(&format!("Console input unavailable: {e}"));
    }
}

/// Spins the CPU for `work`, standing in for a real tick's simulation.
fn busy_work(work: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0;
    while start.elapsed() < work {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// Graceful stop, shared by `stop`, signals and the REST shutdown: save, then exit 0.
fn shutdown(world: &World) -> ExitCode {
    console::info("Stopping server");
    let saved = world.save();
    console::info("Saving worlds");
    match saved {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            console::error(&format!("Failed to save the world: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Simulated crash: an exception-like line, then exit 1 without saving.
fn crash(reason: &str) -> ExitCode {
    console::error(&format!(
        "Encountered an unexpected exception: java.lang.IllegalStateException: {reason}"
    ));
    ExitCode::FAILURE
}
