//! warden's integration tests: one binary, one module per area. Every test starts the real
//! `warden` binary on an ephemeral port with a temporary data directory (`common`), drives
//! it over real HTTP, WebSocket, CLI and browser, and waits for conditions with deadlines.
//!
//! Unix only: the Windows build is driven under Wine by `tests/wine` in the Windows stage.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// a panic in a test is a failed test
// Tests print the figures they measure (`--nocapture`); a failed print fails the test.
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![cfg(unix)]

mod common;

mod access;
mod adoption;
mod alerts;
mod api;
mod backup;
mod clean_exit;
mod cli;
mod daemon;
mod failures;
mod faults_conn;
mod faults_kill;
mod faults_memory;
mod faults_output;
mod files;
mod fleet;
mod games;
mod https;
mod install;
mod lifecycle;
mod metrics;
mod power;
mod restart_adoption;
mod schedule;
mod secrets;
mod tidy;
mod two_factor;
mod update;
mod upgrade;
mod web;
mod web_admin;
mod web_charts;
mod web_errors;
mod web_fleet;
mod web_forms;
mod web_grants;
mod web_history;
mod web_korean;
mod web_phone;
mod web_rules;
mod web_setup;
mod web_toml;
mod ws;
