//! Per-OS process control: process groups, signals, start-time identity, reaping; and
//! the few file-system details the files service needs (`files.rs`).
//!
//! Architecture invariant: this is the only module with `cfg(unix)` / `cfg(windows)`
//! code. Everything above it speaks in terms of "the program's process group".

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

mod files;
pub use files::*;
