//! warden: supervises, monitors and schedules the long-running programs of one machine.
//!
//! This file is only the entry point: `warden demo-game …` runs the demo game server,
//! everything else is the command line in `warden::cli`. See ARCHITECTURE.md for where
//! everything lives.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("demo-game") {
        return demo_game::run_from_args(args.into_iter().skip(2).collect());
    }
    warden::cli::main()
}
