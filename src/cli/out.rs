//! The command line's output. `outln!` and friends panic when the write fails, so
//! `warden ctl list | head -1`, a closed terminal or stdout on a full disk would end a
//! command with a panic message. Everything the CLI prints goes through these macros
//! instead: a closed pipe on stdout ends the command quietly (exit 0, as `head` expects
//! from the programs before it); any other failure to write stdout ends it with exit 1
//! and one line on stderr; a failure to write stderr is ignored, because there is nowhere
//! left to report it and the exit code still tells.

use std::fmt;
use std::io::{self, Write};

/// Writes to stdout; see the module comment for what a failure does.
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        stderr(format_args!("warden: cannot write the output: {e}\n"));
        std::process::exit(1);
    }
}

/// Writes to stderr; a failure is ignored (see the module comment).
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `out!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*)) };
}

/// `outln!` that never panics.
macro_rules! outln {
    () => { $crate::cli::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `err!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!($($arg)*)) };
}

/// `errln!` that never panics.
macro_rules! errln {
    () => { $crate::cli::out::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
