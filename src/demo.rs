//! The demo: a program named `demo` that runs warden's built-in fake game server
//! (`warden demo-game`), so a fresh install has something to show.

use std::path::Path;

use crate::program::game::{GameProfile, GameSpec, QueryKind, QuerySpec};
use crate::program::{ProgramSpec, RestartSpec, StopSpec};
use crate::supervisor::{SupError, Supervisor};

/// Name of the demo program.
pub const DEMO: &str = "demo";

/// A free TCP port on 127.0.0.1, fixed in the demo's spec at creation (a port taken
/// later makes the demo fail to start, with a clear message in its console).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates (and autostarts) the demo program unless a program of that name exists: a
/// Minecraft-profile game with Server List Ping, so readiness, players, broadcasts and
/// the save-and-stop work out of the box. (No RCON: its password would have to be on the
/// command line, which the API shows.)
pub async fn ensure_demo_program(sup: &Supervisor, data_dir: &Path) -> anyhow::Result<()> {
    if sup.get(DEMO).is_ok() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let world = std::path::absolute(data_dir.join("demo-world"))?;
    std::fs::create_dir_all(&world)?;
    let slp_port = free_port()?;
    let spec = ProgramSpec {
        display_name: Some("Demo world".into()),
        args: vec![
            "demo-game".into(),
            "--save-dir".into(),
            world.to_string_lossy().into_owned(),
            "--slp-port".into(),
            slp_port.to_string(),
        ],
        cwd: Some(world.to_string_lossy().into_owned()),
        env: Default::default(),
        autostart: true,
        // With the readiness check (the `Done (` line), the longest wait for it.
        start_seconds: 60,
        restart: RestartSpec::default(),
        stop: StopSpec {
            stdin: Some("stop".into()),
            ..StopSpec::default()
        },
        game: Some(GameSpec {
            profile: GameProfile::Minecraft,
            rcon: None,
            query: Some(QuerySpec {
                kind: QueryKind::Slp,
                host: "127.0.0.1".into(),
                port: Some(slp_port),
                url: None,
                expect_status: None,
                body_contains: None,
            }),
            rest: None,
            readiness: None,
            liveness: None,
            players_interval_seconds: 30,
            stop_steps: None,
            broadcast: None,
        }),
        ..ProgramSpec::new(DEMO, exe.to_string_lossy())
    };
    match sup.create(spec).await {
        Ok(_) | Err(SupError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
