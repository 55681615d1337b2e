//! Standalone `demo-game` binary: a thin wrapper around [`demo_game::run_from_args`].

fn main() -> std::process::ExitCode {
    // Lossy rather than `env::args()`, which panics on arguments that are not valid Unicode.
    let args = std::env::args_os().skip(1);
    demo_game::run_from_args(args.map(|a| a.to_string_lossy().into_owned()).collect())
}
