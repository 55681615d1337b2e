//! The command line against a running server: `warden ctl` tables and JSON, console
//! input and output, users and tokens offline.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

fn ctl(w: &Warden, args: &[&str]) -> (bool, String, String) {
    ctl_at(&w.url, &w.token, args)
}

#[tokio::test]
async fn ctl_drives_a_program_end_to_end() {
    let w = Warden::start().await;
    let mut spec = sh("repl", "while read l; do echo \"you said $l\"; done");
    spec["start_seconds"] = json!(0);
    spec["display_name"] = json!("Echo server");
    w.create(spec).await;

    let (ok, out, err) = ctl(&w, &["start", "repl"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("repl: "), "{out}");
    w.wait_state("repl", "running", Duration::from_secs(10))
        .await;
    let (ok, out, _) = ctl(&w, &["list"]);
    assert!(ok);
    assert!(
        out.lines()
            .next()
            .is_some_and(|h| h.contains("STATE") && h.contains("PID")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("repl") && l.contains("running")),
        "{out}"
    );
    let (ok, out, _) = ctl(&w, &["list", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["programs"][0]["name"], "repl");

    // `send` prints what the program answered (not the echo of the line itself).
    let (ok, out, err) = ctl(&w, &["send", "repl", "--wait", "20", "hello", "world"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "you said hello world", "{err}");
    let (ok, out, err) = ctl(&w, &["send", "repl", "--no-wait", "again"]);
    assert!(ok, "{err}");
    assert_eq!(out, "", "--no-wait prints nothing");
    // `status NAME` is the detailed view, one labelled line per fact.
    let (ok, out, err) = ctl(&w, &["status", "repl"]);
    assert!(ok, "{err}");
    let row = |label: &str| {
        out.lines()
            .find(|l| l.starts_with(label))
            .map(|l| l[label.len()..].trim().to_string())
            .unwrap_or_else(|| panic!("no {label} line in:\n{out}"))
    };
    assert!(row("State").starts_with("running since "), "{out}");
    assert_eq!(row("Display name"), "Echo server");
    assert!(row("PID").parse::<u32>().is_ok(), "{out}");
    assert_eq!(row("Restarts"), "0");
    wait_until(Duration::from_secs(10), "reply in logs", || async {
        let (_, out, _) = ctl(&w, &["logs", "repl", "-n", "10"]);
        (out.contains("you said hello world") && out.contains("you said again")).then_some(())
    })
    .await;
    let (ok, out, _) = ctl(&w, &["events", "repl"]);
    assert!(ok);
    assert!(out.contains("stopped -> starting"), "{out}");

    // Errors are one readable line with the server's message, and a failure exit code.
    let (ok, _, err) = ctl(&w, &["start", "ghost"]);
    assert!(!ok);
    assert!(
        err.contains("no program named 'ghost'") && err.contains("404"),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["ctl", "list"])
        .env("WARDEN_URL", &w.url)
        .env_remove("WARDEN_TOKEN")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API token"));

    let (ok, out, _) = ctl(&w, &["stop", "repl"]);
    assert!(ok, "{out}");
    w.wait_state("repl", "stopped", Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn events_page_newest_first() {
    let w = Warden::start().await;
    let mut spec = sh("ev", "exit 1");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"policy": "never"});
    w.create(spec).await;
    for _ in 0..3 {
        w.post("/api/programs/ev/start", json!(null)).await;
        w.wait_state("ev", "crashed", Duration::from_secs(10)).await;
    }
    let all: Vec<i64> = wait_until(Duration::from_secs(20), "all events stored", || async {
        let ev = w.events("ev").await;
        (ev.len() >= 10).then(|| ev.iter().filter_map(|e| e["id"].as_i64()).collect())
    })
    .await;
    assert!(all.windows(2).all(|p| p[0] > p[1]), "newest first: {all:?}");
    let mut paged = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let (_, v) = w.get(&format!("/api/programs/ev/events?limit=3{q}")).await;
        paged.extend(
            v["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter_map(|e| e["id"].as_i64()),
        );
        match v["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn users_are_managed_offline_and_passwords_never_echo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (st, _, err) = cli(
        dir,
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!st.success());
    assert!(err.contains("at least 8 characters"), "{err}");
    let (st, out, err) = cli(
        dir,
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("bob-secret-pw\n"),
    );
    assert!(st.success(), "{err}");
    assert!(!out.contains("bob-secret-pw") && !err.contains("bob-secret-pw"));
    let (st, out, _) = cli(dir, &["user", "list"], None);
    assert!(st.success());
    assert!(
        out.contains("bob") && out.contains("viewer") && !out.contains("argon2"),
        "{out}"
    );
    let (st, _, err) = cli(
        dir,
        &["user", "add", "bob", "--role", "admin", "--password-stdin"],
        Some("another-pw\n"),
    );
    assert!(!st.success() && err.contains("already exists"), "{err}");
    let (st, _, _) = cli(
        dir,
        &["user", "passwd", "bob", "--password-stdin"],
        Some("new-secret-pw\n"),
    );
    assert!(st.success());
    let (st, _, _) = cli(dir, &["user", "remove", "bob"], None);
    assert!(st.success());
    let (st, out, _) = cli(dir, &["user", "list"], None);
    assert!(st.success() && !out.contains("bob"));
    let token = make_token(dir, "operator");
    let (_, out, _) = cli(dir, &["token", "list"], None);
    assert!(
        out.contains("t-operator") && !out.contains(&token),
        "tokens are never shown again"
    );
}

/// The command line's own output can fail without a panic: a reader that went away
/// (`warden ... | head -1`) ends the command quietly with exit 0, a full disk ends it
/// with exit 1 and one clear line on stderr.
#[cfg(unix)]
#[test]
fn a_broken_or_full_stdout_ends_the_command_without_a_panic() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |stdout: Stdio| {
        Command::new(bin())
            .args(["templates", "--data-dir"])
            .arg(tmp.path())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("run warden templates")
    };

    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = run(Stdio::from(writer));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "closed pipe: {err}");
    assert!(!err.contains("panicked"), "closed pipe: {err}");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = run(Stdio::from(full));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "full disk: {err}");
    assert!(!err.contains("panicked"), "full disk: {err}");
    assert!(err.contains("cannot write the output"), "full disk: {err}");
}

/// `config check` names every problem at once, and a missing file once.
#[test]
fn config_check_lists_every_problem_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.toml");
    let (st, _, err) = cli(
        tmp.path(),
        &["config", "check", &missing.to_string_lossy()],
        None,
    );
    assert!(!st.success());
    assert!(err.contains("missing.toml"), "{err}");
    assert_eq!(
        err.matches("os error 2").count(),
        1,
        "the reason once: {err}"
    );
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"nowhere\"\nlog_level = \"loud\"\n").expect("write");
    let (st, _, err) = cli(
        tmp.path(),
        &["config", "check", &bad.to_string_lossy()],
        None,
    );
    assert!(!st.success());
    assert!(
        err.contains("listen = \"nowhere\"") && err.contains("log_level = \"loud\""),
        "both problems in one run: {err}"
    );
    // --programs: valid as written, and every command resolves on this machine.
    let programs = tmp.path().join("programs.toml");
    std::fs::write(
        &programs,
        "[[program]]\nname = \"ok\"\ncommand = \"sh\"\n\n[[program]]\nname = \"typo\"\ncommand = \"/usr/bin/no-such-server\"\n",
    )
    .expect("write");
    let path = programs.to_string_lossy().into_owned();
    let (st, _, err) = cli(tmp.path(), &["config", "check", "--programs", &path], None);
    assert!(!st.success(), "an unresolvable command passed");
    assert!(
        err.contains("\"typo\"") && err.contains("no-such-server") && !err.contains("\"ok\""),
        "{err}"
    );
    let (st, _, err) = cli(
        tmp.path(),
        &["config", "check", "--programs", "--no-resolve", &path],
        None,
    );
    assert!(st.success(), "--no-resolve checks the file only: {err}");
    std::fs::write(&programs, "[[program]]\nname = \"ok\"\ncommand = \"sh\"\n").expect("write");
    let (st, out, err) = cli(tmp.path(), &["config", "check", "--programs", &path], None);
    assert!(st.success(), "{err}");
    assert!(out.contains("OK (1 program)"), "{out}");
}
