//! The demo: a program named `demo` that runs warden's built-in fake game server
//! (`warden demo-game`), so a fresh install has something to show.

use std::path::Path;

use crate::program::game::{GameProfile, GameSpec, QueryKind, QuerySpec, RconSpec};
use crate::program::{ProgramSpec, RestartSpec, StopSpec};
use crate::supervisor::{SupError, Supervisor};

/// Name of the demo program.
pub const DEMO: &str = "demo";

/// The environment variable the demo game reads its RCON password from.
const DEMO_RCON_PASSWORD: &str = "DEMO_RCON_PASSWORD";

/// A free TCP port on 127.0.0.1, fixed in the demo's spec at creation (a port taken
/// later makes the demo fail to start, with a clear message in its console).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates (and autostarts) the demo program unless a program of that name exists: a
/// Minecraft-profile game with Server List Ping and RCON, so readiness, players,
/// broadcasts, `ctl rcon` and the save-and-stop work out of the box. The RCON password
/// is random and reaches the game through a secret-named environment variable, which the
/// API masks like the RCON password itself (a command-line argument would be shown).
pub async fn ensure_demo_program(sup: &Supervisor, data_dir: &Path) -> anyhow::Result<()> {
    if sup.get(DEMO).is_ok() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let world = std::path::absolute(data_dir.join("demo-world"))?;
    std::fs::create_dir_all(&world)?;
    let slp_port = free_port()?;
    let rcon_port = free_port()?;
    let rcon_password: String =
        rand::distr::SampleString::sample_string(&rand::distr::Alphanumeric, &mut rand::rng(), 24);
    let spec = ProgramSpec {
        display_name: Some("Demo world".into()),
        args: vec![
            "demo-game".into(),
            "--save-dir".into(),
            world.to_string_lossy().into_owned(),
            "--slp-port".into(),
            slp_port.to_string(),
            "--rcon-port".into(),
            rcon_port.to_string(),
        ],
        cwd: Some(world.to_string_lossy().into_owned()),
        env: [(DEMO_RCON_PASSWORD.to_string(), rcon_password.clone())].into(),
        // The demo is warden's own binary; it runs as whoever runs warden.
        allow_root: true,
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
            rcon: Some(RconSpec {
                host: "127.0.0.1".into(),
                port: rcon_port,
                password: rcon_password.into(),
            }),
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
        Ok(_) | Err(SupError::Conflict(_) | SupError::Exists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
