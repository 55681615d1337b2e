//! Minecraft-style console logging on stdout: `[HH:MM:SS] [Server thread/INFO]: message`.

use std::io::Write;

/// Log level shown in the bracketed prefix.
#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

/// Prints every line of `msg` at INFO level.
pub fn info(msg: &str) {
    log(Level::Info, msg);
}

/// Prints every line of `msg` at WARN level.
pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

/// Prints every line of `msg` at ERROR level.
pub fn error(msg: &str) {
    log(Level::Error, msg);
}

fn log(level: Level, msg: &str) {
    let level = match level {
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    };
    let time = chrono::Local::now().format("%H:%M:%S");
    // One lock for the whole message so lines from RCON tasks and the main loop never interleave.
    let mut out = std::io::stdout().lock();
    for line in msg.lines() {
        // A closed or full stdout must not take the server down (real servers keep running when
        // their console goes away), so write errors are deliberately ignored, unlike `println!`,
        // which would panic.
        let _ = writeln!(out, "[{time}] [Server thread/{level}]: {line}");
    }
    // Flush per message: the supervisor (and the tests) read readiness and replies line by line.
    let _ = out.flush();
}
