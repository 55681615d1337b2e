//! warden as a library: the daemon's modules, so the binary stays a thin command line and
//! tests can call services and the HTTP router in-process (`server::serve` takes an
//! already-bound listener and a shutdown token). See ARCHITECTURE.md for where
//! everything lives.

pub mod access;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod backoff;
pub mod backup;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod condition;
pub mod config;
pub mod demo;
pub mod duration;
pub mod files;
pub mod fleet;
pub mod games;
pub mod health;
pub mod history;
pub mod hooks;
pub mod install;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod os;
pub mod program;
pub mod relpath;
pub mod schedule;
pub mod seal;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod sync;
pub mod text_enum;
pub mod units;
pub mod web;
