//! End-to-end tests of the console: readiness line, stdin commands, stop, crash and signals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use common::Server;

#[test]
fn stdin_commands_and_stop() {
    let mut s = Server::start(&[]);
    let done = s.wait_line("Done (");
    assert!(done.contains("[Server thread/INFO]: Done ("), "{done}");
    assert!(done.ends_with("! For help, type \"help\""), "{done}");
    // No listener enabled: ports.json is still written, empty.
    assert_eq!(s.ports(), serde_json::json!({}));

    s.send("list");
    s.wait_line("There are 2 of a max of 20 players online: Steve, Alex");
    s.send("say hello world");
    s.wait_line("[Server] hello world");
    s.send("join Bob");
    s.wait_line("Bob joined the game");
    s.send("leave Steve");
    s.wait_line("Steve left the game");
    s.send("list");
    s.wait_line("There are 2 of a max of 20 players online: Alex, Bob");
    s.send("nonsense");
    s.wait_line("Unknown command. Type \"help\" for help.");
    s.send("save-off");
    s.wait_line("Automatic saving is now disabled");

    assert!(!s.path("saved").exists());
    s.send("save-all");
    s.wait_line("Saved the game");
    let first = std::fs::read_to_string(s.path("saved")).expect("saved written");
    assert!(first.starts_with("save 1 "), "{first}");

    s.send("stop");
    s.wait_line("Stopping server");
    s.wait_line("Saving worlds");
    assert_eq!(s.wait_exit().code(), Some(0));
    let last = std::fs::read_to_string(s.path("saved")).expect("saved written");
    assert!(last.starts_with("save 2 "), "{last}");
}

#[test]
fn crash_command_exits_1() {
    let mut s = Server::start_ready(&[]);
    s.send("crash");
    s.wait_line("Encountered an unexpected exception");
    assert_eq!(s.wait_exit().code(), Some(1));
    assert!(!s.path("saved").exists(), "a crash does not save");
}

#[test]
fn crash_after_ms_exits_1() {
    let mut s = Server::start(&["--crash-after-ms", "300"]);
    s.wait_line("Done (");
    let line = s.wait_line("[Server thread/ERROR]");
    assert!(line.contains("--crash-after-ms 300"), "{line}");
    assert_eq!(s.wait_exit().code(), Some(1));
}

#[test]
fn bad_arguments_exit_2() {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_demo-game"))
        .args(["--tps", "0"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(2));
}

#[cfg(unix)]
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn sigterm_saves_and_exits_0() {
    let mut s = Server::start_ready(&[]);
    signal(s.pid(), "-TERM");
    s.wait_line("Received SIGTERM, shutting down");
    s.wait_line("Saving worlds");
    assert_eq!(s.wait_exit().code(), Some(0));
    assert!(s.path("saved").exists());
}

#[cfg(unix)]
#[test]
fn ignore_sigterm_keeps_running() {
    let mut s = Server::start_ready(&["--ignore-sigterm"]);
    signal(s.pid(), "-TERM");
    s.wait_line("Received SIGTERM, ignoring it (--ignore-sigterm)");
    // Still serving commands afterwards.
    s.send("list");
    s.wait_line("There are 2 of a max of 20 players online");
    assert!(s.running());
    s.send("stop");
    assert_eq!(s.wait_exit().code(), Some(0));
}
