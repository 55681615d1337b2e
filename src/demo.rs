//! The demo: a program named `demo` that runs warden's built-in fake game server
//! (`warden demo-game`), so a fresh install has something to show.

use std::path::Path;

use crate::program::{ProgramSpec, RestartSpec, StopSpec};
use crate::supervisor::{SupError, Supervisor};

/// Name of the demo program.
pub const DEMO: &str = "demo";

/// Creates (and autostarts) the demo program unless a program of that name exists.
pub async fn ensure_demo_program(sup: &Supervisor, data_dir: &Path) -> anyhow::Result<()> {
    if sup.get(DEMO).is_ok() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let world = std::path::absolute(data_dir.join("demo-world"))?;
    std::fs::create_dir_all(&world)?;
    let spec = ProgramSpec {
        name: DEMO.into(),
        display_name: Some("Demo world".into()),
        command: exe.to_string_lossy().into_owned(),
        args: vec![
            "demo-game".into(),
            "--save-dir".into(),
            world.to_string_lossy().into_owned(),
        ],
        cwd: Some(world.to_string_lossy().into_owned()),
        env: Default::default(),
        autostart: true,
        start_seconds: 2,
        restart: RestartSpec::default(),
        stop: StopSpec {
            stdin: Some("stop".into()),
            ..StopSpec::default()
        },
        files_root: None,
    };
    match sup.create(spec).await {
        Ok(_) | Err(SupError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
