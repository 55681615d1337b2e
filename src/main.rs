//! warden: supervises, monitors and schedules the long-running programs of one machine.
//!
//! This file is only the command line: parse, set up logging, dispatch. See
//! ARCHITECTURE.md for where everything lives.

mod alerts;
mod api;
mod auth;
mod backup;
mod bus;
mod cli;
mod config;
mod demo;
mod files;
mod games;
mod metrics;
mod os;
mod program;
mod schedule;
mod server;
mod store;
mod supervisor;
mod web;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("demo-game") {
        return demo_game::run_from_args(args.into_iter().skip(2).collect());
    }
    cli::main()
}
