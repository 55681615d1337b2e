//! Game integrations end to end, against the demo game server run by the real warden:
//! RCON through the API (multi-packet replies, wrong password), SLP and A2S player counts,
//! readiness on the `Done (` line or a query, liveness restarts, graceful stop over RCON,
//! warned restarts, broadcasts, and passwords that never leave warden.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "Rc0n-s3cret-Zq9";

/// Ports of one demo game server.
struct Ports {
    rcon: u16,
    slp: u16,
    query: u16,
    rest: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            rcon: free_tcp_port(),
            slp: free_tcp_port(),
            query: free_udp_port(),
            rest: free_tcp_port(),
        }
    }
}

/// A program running the demo game with RCON, SLP and A2S on `ports`, ready after 300 ms.
fn demo(name: &str, world: &Path, ports: &Ports, game: Value) -> Value {
    demo_ms(name, world, ports, game, 300)
}

/// As [`demo`], ready after `startup_ms`. The RCON password is read from a file in the
/// world directory, as real servers read theirs from their config, so it is not on the
/// command line (which the API shows).
fn demo_ms(name: &str, world: &Path, ports: &Ports, game: Value, startup_ms: u64) -> Value {
    std::fs::create_dir_all(world).expect("world dir");
    std::fs::write(world.join("rcon-password"), PASSWORD).expect("password file");
    let script = format!(
        r#"exec "$0" demo-game --startup-ms {startup_ms} --save-dir "$1" --rcon-port {} --rcon-password "$(cat "$1/rcon-password")" --slp-port {} --query-port {} --rest-port {} --rest-password "$(cat "$1/rcon-password")""#,
        ports.rcon, ports.slp, ports.query, ports.rest
    );
    json!({
        "name": name,
        "command": "sh",
        "args": ["-c", script, bin(), world],
        "start_seconds": 60,
        "stop": {"signal": "SIGTERM", "timeout_seconds": 20},
        "game": game,
    })
}

fn rcon(ports: &Ports, password: &str) -> Value {
    json!({"port": ports.rcon, "password": password})
}

async fn start_running(w: &Warden, name: &str) -> Value {
    let (st, v) = w
        .post(&format!("/api/programs/{name}/start"), json!(null))
        .await;
    assert!(st.is_success(), "{v}");
    w.wait_state(name, "running", Duration::from_secs(30)).await
}

async fn rcon_call(w: &Warden, name: &str, command: &str) -> (reqwest::StatusCode, Value) {
    w.post(
        &format!("/api/programs/{name}/rcon"),
        json!({ "command": command }),
    )
    .await
}

async fn put(w: &Warden, name: &str, spec: Value) -> (reqwest::StatusCode, Value) {
    w.call_as(
        Some(&w.token),
        Method::PUT,
        &format!("/api/programs/{name}"),
        Some(spec),
    )
    .await
}

/// The stored `-> running` state event (events are stored without waiting for the
/// commit, so it may trail the state by a moment).
async fn running_event(w: &Warden, name: &str) -> Value {
    wait_until(Duration::from_secs(20), "running event", || async {
        w.events(name)
            .await
            .into_iter()
            .find(|e| e["data"]["to"] == "running")
    })
    .await
}

/// Waits until an event of `kind` is stored and returns the newest.
async fn event_of(w: &Warden, name: &str, kind: &str) -> Value {
    wait_until(Duration::from_secs(20), kind, || async {
        w.events(name).await.into_iter().find(|e| e["kind"] == kind)
    })
    .await
}

/// Console lines containing `needle`.
async fn count_lines(w: &Warden, name: &str, needle: &str) -> usize {
    w.console(name)
        .await
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test]
async fn rcon_through_the_api_and_passwords_never_leak() {
    let (w, log) = start_logged("debug").await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    w.create(demo(
        "mc",
        &world,
        &ports,
        json!({"profile": "minecraft", "rcon": rcon(&ports, PASSWORD)}),
    ))
    .await;
    start_running(&w, "mc").await;

    // A reply of 10000 bytes arrives in three RCON packets and comes back whole.
    let (st, v) = rcon_call(&w, "mc", "dump 10000").await;
    assert_eq!(st, 200, "{v}");
    let out = v["output"].as_str().expect("output");
    assert_eq!(out.len(), 10_000);
    assert!(
        out.starts_with("abcdefghijklmnopqrstuvwxyz"),
        "{}",
        &out[..40]
    );
    let (st, v) = rcon_call(&w, "mc", "list").await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["output"]
            .as_str()
            .is_some_and(|o| o.contains("players online")),
        "{v}"
    );

    // The password is stored but shown masked; sending the mask back keeps it.
    let view = w.program("mc").await;
    assert_eq!(view["game"]["rcon"]["password"], "********");
    let mut spec = view.clone();
    for k in [
        "state",
        "pid",
        "uptime_seconds",
        "restarts",
        "since_ms",
        "last_exit",
        "adopted",
        "game_status",
    ] {
        spec.as_object_mut().expect("object").remove(k);
    }
    let (st, v) = put(&w, "mc", spec.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = rcon_call(&w, "mc", "list").await;
    assert_eq!(st, 200, "the kept password still works: {v}");

    // `warden ctl rcon` and `ctl players` go through the same endpoints.
    let out = std::process::Command::new(bin())
        .args([
            "ctl", "--url", &w.url, "--token", &w.token, "rcon", "mc", "say", "hi", "there",
        ])
        .output()
        .expect("ctl rcon");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[Server] hi there"
    );

    // A new program may not use the mask as its password.
    let mut masked = demo(
        "other",
        &world,
        &ports,
        json!({"profile": "minecraft", "rcon": rcon(&ports, "********")}),
    );
    masked["autostart"] = json!(false);
    let (st, v) = w.post("/api/programs", masked).await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e["field"] == "game.rcon.password")),
        "{v}"
    );

    // A wrong password: a clear error, and no storm of logins (the next calls fail at
    // once, without touching the server, during the cool-down).
    spec["game"]["rcon"]["password"] = json!("wrong-password");
    let (st, v) = put(&w, "mc", spec).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = rcon_call(&w, "mc", "list").await;
    assert_eq!(st, 502, "{v}");
    assert_eq!(v["error"]["code"], "game_auth_failed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("wrong password")),
        "{v}"
    );
    for _ in 0..5 {
        let started = Instant::now();
        let (st, v) = rcon_call(&w, "mc", "list").await;
        assert_eq!(st, 502, "{v}");
        assert_eq!(v["error"]["code"], "game_auth_failed", "{v}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    wait_until(
        Duration::from_secs(5),
        "the failed login in the console",
        || async { (count_lines(&w, "mc", "RCON authentication failed").await > 0).then_some(()) },
    )
    .await;
    assert_eq!(
        count_lines(&w, "mc", "RCON authentication failed").await,
        1,
        "exactly one login attempt reached the server"
    );

    // Stopping with a wrong RCON password: the steps fail, the signal fallback stops it.
    let (st, _) = w.post("/api/programs/mc/stop", json!(null)).await;
    assert!(st.is_success());
    let v = w.wait_state("mc", "stopped", Duration::from_secs(30)).await;
    assert_eq!(v["last_exit"]["code"], 0, "{v}");
    event_of(&w, "mc", "stop_steps_failed").await;

    // The password appears in no API answer and nowhere in warden's log.
    let (_, list) = w.get("/api/programs").await;
    let (_, evs) = w.get("/api/events?limit=500").await;
    let (_, doc) = w.get("/api/openapi.json").await;
    for body in [list.to_string(), evs.to_string(), doc.to_string()] {
        assert!(!body.contains(PASSWORD), "password leaked: {body}");
    }
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(!logged.is_empty(), "debug logging produced output");
    assert!(!logged.contains(PASSWORD), "password in warden's log");
    assert!(
        !logged.contains("wrong-password"),
        "password in warden's log"
    );
}

#[tokio::test]
async fn slp_and_a2s_queries_count_players() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    let mut spec = demo(
        "q",
        &world,
        &ports,
        json!({"profile": "minecraft", "query": {"kind": "slp", "port": ports.slp}, "players_interval_seconds": 1}),
    );
    w.create(spec.clone()).await;
    start_running(&w, "q").await;
    let (st, v) = w.get("/api/programs/q/players").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["online"], 2, "{v}");
    assert_eq!(v["max"], 20, "{v}");
    assert_eq!(v["names"], json!(["Steve", "Alex"]), "{v}");
    // The sampled count shows in the program's status.
    w.wait_program("q", Duration::from_secs(10), "players in status", |v| {
        v["game_status"]["players"] == 2 && v["game_status"]["max_players"] == 20
    })
    .await;

    // Switch the query to A2S (the process keeps running) and let a player join.
    spec["game"]["query"] = json!({"kind": "a2s", "port": ports.query});
    let (st, v) = put(&w, "q", spec).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = w
        .post("/api/programs/q/console", json!({"line": "join Bob"}))
        .await;
    assert_eq!(st, 204);
    let v = wait_until(
        Duration::from_secs(10),
        "three players over A2S",
        || async {
            let (st, v) = w.get("/api/programs/q/players").await;
            (st == 200 && v["online"] == 3).then_some(v)
        },
    )
    .await;
    assert_eq!(v["max"], 20, "{v}");
    assert!(
        v["names"]
            .as_array()
            .is_some_and(|n| n.contains(&json!("Bob"))),
        "{v}"
    );
    w.wait_program("q", Duration::from_secs(10), "3 players in status", |v| {
        v["game_status"]["players"] == 3
    })
    .await;

    // `warden ctl players` prints the same.
    let out = std::process::Command::new(bin())
        .args(["ctl", "--url", &w.url, "--token", &w.token, "players", "q"])
        .output()
        .expect("ctl players");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("3 of 20 players online"), "{text}");

    // No players query: a clear 409.
    let mut plain = sh("plain", "exec sleep 1000");
    plain["game"] = json!({"profile": "generic"});
    w.create(plain).await;
    let (st, v) = w.get("/api/programs/plain/players").await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "not_configured");
}

#[tokio::test]
async fn readiness_waits_for_the_done_line_or_a_query() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    // The demo prints `Done (` after 1.5 s; start_seconds (120 s) is only the fallback.
    w.create(json!({
        "name": "mc",
        "command": bin(),
        "args": ["demo-game", "--startup-ms", "1500", "--save-dir", world],
        "start_seconds": 120,
        "stop": {"stdin": "stop", "timeout_seconds": 20},
        "game": {"profile": "minecraft"},
    }))
    .await;
    let t0 = Instant::now();
    let (st, v) = w.post("/api/programs/mc/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    assert_eq!(v["state"], "starting", "{v}");
    let v = w.wait_state("mc", "running", Duration::from_secs(30)).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "running before the Done line: {took:?}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(v["pid"].is_u64());
    let ready = running_event(&w, "mc").await;
    let reason = ready["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("ready: console line"), "{reason}");
    assert!(reason.contains("Done ("), "{reason}");

    // Readiness by query: `running` once the Server List Ping answers.
    let ports = Ports::new();
    w.create(demo_ms(
        "src",
        &w.data_dir.join("world2"),
        &ports,
        json!({"profile": "source", "query": {"kind": "slp", "port": ports.slp}}),
        1500,
    ))
    .await;
    let t0 = Instant::now();
    w.post("/api/programs/src/start", json!(null)).await;
    w.wait_state("src", "running", Duration::from_secs(30))
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    let ready = running_event(&w, "src").await;
    assert_eq!(
        ready["data"]["reason"], "ready: the slp query answered",
        "{ready}"
    );
}

#[tokio::test]
async fn liveness_failures_restart_the_program() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    // The game runs fine, but the checked port has nobody listening: every check fails.
    let dead = free_tcp_port();
    w.create(json!({
        "name": "live",
        "command": bin(),
        "args": ["demo-game", "--startup-ms", "200", "--save-dir", world],
        "start_seconds": 60,
        "stop": {"stdin": "stop", "timeout_seconds": 20},
        "restart": {"policy": "on-failure", "max_failed_starts": 2, "window_seconds": 300},
        "game": {
            "profile": "minecraft",
            "query": {"kind": "tcp", "port": dead},
            "liveness": {"check": "query", "interval_seconds": 1, "failures": 2, "restart": true},
        },
    }))
    .await;
    let first = start_running(&w, "live").await["pid"].clone();
    let v = w
        .wait_program(
            "live",
            Duration::from_secs(30),
            "restarted with a new pid",
            |v| v["state"] == "running" && v["pid"] != first && v["pid"].is_u64(),
        )
        .await;
    assert_eq!(v["restarts"], 1, "a liveness restart counts as a failure");
    let health = event_of(&w, "live", "health").await;
    assert_eq!(health["data"]["to"], "unhealthy", "{health}");
    assert_eq!(health["data"]["failures"], 2, "{health}");
    event_of(&w, "live", "liveness_restart").await;
    // The new process fails again: health is visible in the status…
    w.wait_program(
        "live",
        Duration::from_secs(20),
        "failing health in status",
        |v| {
            matches!(
                v["game_status"]["health"].as_str(),
                Some("failing" | "unhealthy")
            ) && v["game_status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("could not connect"))
        },
    )
    .await;
    // …and the second unhealthy stop within the window reaches the start limit: warden
    // gives up instead of restarting a never-healthy server forever.
    w.wait_state("live", "fatal", Duration::from_secs(30)).await;
    let crash = wait_until(Duration::from_secs(20), "unhealthy stop event", || async {
        w.events("live").await.into_iter().find(|e| {
            e["data"]["to"] == "crashed"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("stopped as unhealthy"))
        })
    })
    .await;
    assert!(
        crash["message"]
            .as_str()
            .is_some_and(|m| m.contains("liveness checks failed")),
        "{crash}"
    );
}

#[tokio::test]
async fn graceful_stop_over_rcon_saves_the_world() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    let mut spec = demo(
        "mc",
        &world,
        &ports,
        json!({"profile": "minecraft", "rcon": rcon(&ports, PASSWORD)}),
    );
    // If the RCON steps failed, the fallback signal would kill the game without saving.
    spec["stop"] = json!({"signal": "SIGKILL", "timeout_seconds": 20});
    w.create(spec).await;
    start_running(&w, "mc").await;
    assert!(!world.join("saved").exists());
    let (st, v) = w.post("/api/programs/mc/stop", json!(null)).await;
    assert!(st.is_success(), "{v}");
    let v = w.wait_state("mc", "stopped", Duration::from_secs(30)).await;
    assert_eq!(v["last_exit"]["code"], 0, "{v}");
    assert!(
        world.join("saved").exists(),
        "the save-all over RCON wrote the marker"
    );
    let console = w.console("mc").await;
    assert!(
        console.iter().any(|l| l.contains("Saved the game")),
        "{console:?}"
    );
    assert!(
        console.iter().any(|l| l.contains("Stopping server")),
        "{console:?}"
    );
    let steps = event_of(&w, "mc", "stop_steps").await;
    assert!(
        steps["message"]
            .as_str()
            .is_some_and(|m| m.contains("rcon \"save-all\", rcon \"stop\"")),
        "{steps}"
    );
    let events = w.events("mc").await;
    assert!(!events.iter().any(|e| e["kind"] == "stop_steps_failed"));
}

#[tokio::test]
async fn warned_restart_broadcast_and_only_when_empty() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    w.create(demo(
        "mc",
        &world,
        &ports,
        json!({"profile": "minecraft", "query": {"kind": "slp", "port": ports.slp}}),
    ))
    .await;
    let first = start_running(&w, "mc").await["pid"].clone();

    // The minecraft profile broadcasts with `say` on stdin when it has no RCON.
    let (st, v) = w
        .post(
            "/api/programs/mc/broadcast",
            json!({"message": "hello all"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["method"], "stdin");
    wait_until(Duration::from_secs(20), "broadcast in console", || async {
        (count_lines(&w, "mc", "[Server] hello all").await > 0).then_some(())
    })
    .await;

    // Two players are online: a restart only-when-empty is refused.
    let (st, v) = w
        .post("/api/programs/mc/restart?only_when_empty=true", json!(null))
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "players_online");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("2 player(s) online")),
        "{v}"
    );

    // A warned restart: 202 with the plan, warnings in game, then the restart.
    let t0 = Instant::now();
    let (st, v) = w
        .post("/api/programs/mc/restart?warn=1,2", json!(null))
        .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["warnings"], json!([2, 1]));
    assert_eq!(v["action"], "restart");
    assert_eq!(
        w.program("mc").await["pid"],
        first,
        "nothing happens at once"
    );
    let v = w
        .wait_program("mc", Duration::from_secs(30), "restarted", |v| {
            v["state"] == "running" && v["pid"] != first && v["pid"].is_u64()
        })
        .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    let console = w.console("mc").await;
    for text in [
        "[Server] Server restarting in 2 seconds",
        "[Server] Server restarting in 1 second",
    ] {
        assert!(
            console.iter().any(|l| l.contains(text)),
            "{text}: {console:?}"
        );
    }

    // Once everyone left, only_when_empty restarts at once.
    for who in ["Steve", "Alex"] {
        w.post(
            "/api/programs/mc/console",
            json!({"line": format!("leave {who}")}),
        )
        .await;
    }
    wait_until(Duration::from_secs(10), "server empty", || async {
        let (_, v) = w.get("/api/programs/mc/players").await;
        (v["online"] == 0).then_some(())
    })
    .await;
    let second = v["pid"].clone();
    let (st, v) = w
        .post("/api/programs/mc/restart?only_when_empty=true", json!(null))
        .await;
    assert_eq!(st, 200, "{v}");
    w.wait_program("mc", Duration::from_secs(30), "restarted again", |v| {
        v["state"] == "running" && v["pid"] != second && v["pid"].is_u64()
    })
    .await;

    // Bad warn lists are rejected with the error shape.
    let (st, v) = w.post("/api/programs/mc/stop?warn=soon", json!(null)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn palworld_profile_works_through_the_rest_api() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    let mut spec = demo(
        "pal",
        &world,
        &ports,
        json!({"profile": "palworld", "rest": {"port": ports.rest, "password": PASSWORD}}),
    );
    // Only the REST steps can save; the fallback signal would not.
    spec["stop"] = json!({"signal": "SIGKILL", "timeout_seconds": 20});
    w.create(spec).await;
    start_running(&w, "pal").await;
    let ready = running_event(&w, "pal").await;
    assert_eq!(
        ready["data"]["reason"],
        "ready: the palworld query answered"
    );

    let (st, v) = w.get("/api/programs/pal/players").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["online"], 2, "{v}");
    assert_eq!(v["names"], json!(["Steve", "Alex"]), "{v}");

    let (st, v) = w
        .post(
            "/api/programs/pal/broadcast",
            json!({"message": "rest hello"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["method"], "rest");
    wait_until(Duration::from_secs(20), "announce in console", || async {
        (count_lines(&w, "pal", "[Server] rest hello").await > 0).then_some(())
    })
    .await;

    assert!(!world.join("saved").exists());
    w.post("/api/programs/pal/stop", json!(null)).await;
    let v = w
        .wait_state("pal", "stopped", Duration::from_secs(30))
        .await;
    assert_eq!(v["last_exit"]["code"], 0, "{v}");
    assert!(world.join("saved").exists());
    let console = w.console("pal").await;
    assert!(
        console
            .iter()
            .any(|l| l.contains("[Server] Server is shutting down")),
        "{console:?}"
    );
    let (_, v) = w.get("/api/programs/pal").await;
    assert_eq!(v["game"]["rest"]["password"], "********");
}

#[tokio::test]
async fn player_counts_become_a_metrics_series() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = Warden::start_in(
        tmp.path(),
        "[metrics]\nsample_interval_ms = 200\nbatch_interval_ms = 200\nsaturation_cpu_percent = 100\n",
    )
    .await;
    let world = w.data_dir.join("world");
    let ports = Ports::new();
    let spec = demo(
        "pm",
        &world,
        &ports,
        json!({"profile": "minecraft", "query": {"kind": "slp", "port": ports.slp}, "players_interval_seconds": 1}),
    );
    w.create(spec).await;
    start_running(&w, "pm").await;
    wait_until(
        Duration::from_secs(20),
        "players in the stored series",
        || async {
            let (st, v) = w.get("/api/programs/pm/metrics?points=100").await;
            (st == 200
                && v["series"]["players"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|p| p.as_f64() == Some(2.0))))
            .then_some(())
        },
    )
    .await;
}

/// `warden serve --demo` as the README's first command runs it, then every `ctl` example
/// the README gives right after, against the demo; its RCON password is never shown.
#[tokio::test]
async fn the_readme_examples_work_against_the_demo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = Warden::start_demo(tmp.path()).await;
    w.wait_state("demo", "running", Duration::from_secs(90))
        .await;
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("ctl")
            .args(args)
            .env("WARDEN_URL", &w.url)
            .env("WARDEN_TOKEN", &w.token)
            .output()
            .expect("run ctl");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "ctl {args:?}: {stderr}");
        stdout
    };
    let list = ctl(&["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("demo") && l.contains("running")),
        "{list}"
    );
    let answer = ctl(&["send", "demo", "--wait", "20", "list"]);
    assert!(answer.contains("players online"), "ctl send: {answer}");
    let players = ctl(&["players", "demo"]);
    assert!(players.contains("Steve"), "ctl players: {players}");
    let rcon = ctl(&["rcon", "demo", "list"]);
    assert!(rcon.contains("Steve"), "ctl rcon: {rcon}");
    ctl(&["broadcast", "demo", "Hello,", "world"]);

    // The password reaches the game, never a reader of the definition.
    let v = w.program("demo").await;
    assert_eq!(v["game"]["rcon"]["password"], "********", "{v}");
    assert_eq!(v["env"]["DEMO_RCON_PASSWORD"], "********", "{v}");
    assert!(
        !v["args"].to_string().contains("password"),
        "no password on the command line: {v}"
    );
}
