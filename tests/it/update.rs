//! Safe updates of installed servers against the fake SteamCMD (`fixtures/fake-steamcmd`):
//! the build it publishes is a file the test writes (`FAKE_STEAMCMD_BUILD_FILE`), and a
//! marker file makes the build it installs a broken one that scribbles into the world and
//! never says it is ready (`FAKE_STEAMCMD_BROKEN_FILE`). Covers an update applied while
//! nobody plays, one that waits for a player of the demo game to leave (and tells them),
//! a rollback that leaves the world byte-identical with the old build running, a kill -9
//! of warden in the middle of an update, and one SteamCMD at a time for two programs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::install::steamcmd_wrapper;

/// A user template whose server is the fake's `server.sh` (ready on "server ready").
const TEMPLATE: &str = "name = \"upd-game\"\nversion = 1\ntitle = \"Update test\"\n\
start_seconds = 120\nstop_timeout_seconds = 10\n[source]\nkind = \"steamcmd\"\napp = 4100\n\
[command.linux]\ncommand = \"./server.sh\"\n[game]\nprofile = \"generic\"\n\
readiness_line = \"server ready\"\n[backup]\ninclude = [\"saves\"]\n";

struct Fixture {
    w: Warden,
    tmp: tempfile::TempDir,
    config: String,
}

impl Fixture {
    fn build_file(&self) -> PathBuf {
        self.tmp.path().join("build")
    }
    fn broken_file(&self) -> PathBuf {
        self.tmp.path().join("broken")
    }
    fn log_file(&self) -> PathBuf {
        self.tmp.path().join("steamcmd.log")
    }
    fn publish(&self, build: &str) {
        std::fs::write(self.build_file(), build).expect("write build");
    }
    fn server_dir(&self, name: &str) -> PathBuf {
        self.w.data_dir.join("servers").join(name)
    }
}

/// warden with the fake SteamCMD and the update test template, build 100 published.
async fn fixture() -> Fixture {
    fixture_with(&[], "").await
}

/// [`fixture`] with more environment for the fake and more `[install]` config.
async fn fixture_with(extra_env: &[(&str, &str)], extra_install: &str) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut env = vec![
        (
            "FAKE_STEAMCMD_BUILD_FILE",
            tmp.path().join("build").display().to_string(),
        ),
        (
            "FAKE_STEAMCMD_BROKEN_FILE",
            tmp.path().join("broken").display().to_string(),
        ),
        (
            "FAKE_STEAMCMD_LOG",
            tmp.path().join("steamcmd.log").display().to_string(),
        ),
        ("FAKE_STEAMCMD_STEP", "0.05".to_string()),
    ];
    env.extend(extra_env.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let steamcmd = steamcmd_wrapper(tmp.path(), &env);
    let config = format!(
        "[install]\nsteamcmd = {:?}\n{extra_install}",
        steamcmd.display().to_string()
    );
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("templates")).expect("templates dir");
    std::fs::write(data.join("templates/upd-game.toml"), TEMPLATE).expect("template");
    std::fs::write(tmp.path().join("build"), "100").expect("build");
    let w = Warden::start_in(&data, &config).await;
    Fixture { w, tmp, config }
}

/// Installs `name` from `template` and waits until it is defined.
async fn install(w: &Warden, template: &str, name: &str, values: Value) {
    let (code, v) = w
        .post(
            "/api/install",
            json!({"template": template, "name": name, "values": values}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_u64().expect("install id");
    let done = wait_until(Duration::from_secs(60), "install ended", || async {
        let (_, v) = w.get(&format!("/api/install/{id}")).await;
        matches!(v["state"].as_str(), Some("installed" | "failed")).then_some(v)
    })
    .await;
    assert_eq!(done["state"], "installed", "{done}");
}

/// The program's spec as the API shows it, with `update` (and `extra` keys) set.
async fn set_spec(w: &Warden, name: &str, extra: Value) -> (StatusCode, Value) {
    let view = w.program(name).await;
    let mut spec = json!({});
    for k in [
        "name",
        "command",
        "args",
        "cwd",
        "env",
        "start_seconds",
        "restart",
        "stop",
        "game",
        "tags",
        "update",
    ] {
        if !view[k].is_null() {
            spec[k] = view[k].clone();
        }
    }
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    w.put(&format!("/api/programs/{name}"), spec).await
}

async fn update_status(w: &Warden, name: &str) -> Value {
    let (code, v) = w.get(&format!("/api/programs/{name}/update")).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    v
}

/// Waits until the update of `name` has ended with a result other than `before`'s.
async fn wait_outcome(w: &Warden, name: &str, timeout: Duration) -> Value {
    wait_until(timeout, &format!("update of {name} ended"), || async {
        let v = update_status(w, name).await;
        (v["state"] == "idle" && v["last"].is_object() && v["pipeline"].is_null()).then_some(v)
    })
    .await
}

async fn apply(w: &Warden, name: &str, body: Value) {
    let (code, v) = w
        .post(&format!("/api/programs/{name}/update/apply"), body)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("update_"))
        .map(str::to_string)
        .collect()
}

/// Console lines of the current process that name `build`.
async fn runs_build(w: &Warden, name: &str, build: &str) -> bool {
    w.console(name)
        .await
        .iter()
        .rev()
        .find(|l| l.contains("fake server.sh") || l.contains("broken build"))
        .is_some_and(|l| l.contains(&format!("build {build} ")))
}

fn world(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("saves/world.dat")).expect("world file")
}

#[tokio::test]
async fn an_update_applies_while_empty_and_a_broken_build_rolls_back_byte_identical() {
    let f = fixture().await;
    let w = &f.w;
    install(w, "upd-game", "upd", json!({})).await;
    let dir = f.server_dir("upd");
    std::fs::create_dir_all(dir.join("saves")).expect("saves");
    let world_bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("saves/world.dat"), &world_bytes).expect("world");

    // Settings are validated with the field named.
    let (code, v) = set_spec(w, "upd", json!({"update": {"ready_timeout": "soon"}})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "update.ready_timeout");
    let (code, v) = set_spec(w, "upd", json!({"update": {"ready_timeout": "4s"}})).await;
    assert_eq!(code, StatusCode::OK, "{v}");

    let s = update_status(w, "upd").await;
    assert_eq!(s["installed"], "100", "{s}");
    assert_eq!(s["template"], "upd-game");
    assert_eq!(s["installed_from_template"], true);
    assert_eq!(s["source"]["app"], 4100);
    assert_eq!(s["settings"]["apply"], "when_empty");
    assert_eq!(s["settings"]["backup_first"], true);

    let (code, v) = w.post("/api/programs/upd/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    w.wait_state("upd", "running", Duration::from_secs(30))
        .await;

    // A check finds the new build; an operator may look but not update.
    f.publish("101");
    let (code, s) = w.post("/api/programs/upd/update/check", json!({})).await;
    assert_eq!(code, StatusCode::OK, "{s}");
    assert_eq!(
        (s["installed"].as_str(), s["available"].as_str()),
        (Some("100"), Some("101")),
        "{s}"
    );
    assert_eq!(s["update_available"], true);
    let operator = make_token(&w.data_dir, "operator");
    let (code, err) = w
        .call_as(
            Some(&operator),
            reqwest::Method::POST,
            "/api/programs/upd/update/apply",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");

    apply(w, "upd", json!({})).await;
    let s = wait_outcome(w, "upd", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "succeeded", "{s}");
    assert_eq!(s["installed"], "101", "{s}");
    assert_eq!(s["update_available"], false);
    w.wait_state("upd", "running", Duration::from_secs(30))
        .await;
    assert!(
        runs_build(w, "upd", "101").await,
        "{:?}",
        w.console("upd").await
    );
    assert_eq!(world(&dir), world_bytes, "the world is untouched");
    let events = w.events("upd").await;
    let mut seen = kinds(&events);
    seen.reverse();
    for k in [
        "update_available",
        "update_staging",
        "update_waiting",
        "update_stopping",
        "update_backing_up",
        "update_applying",
        "update_starting",
        "update_verifying",
        "update_succeeded",
    ] {
        assert!(seen.iter().any(|s| s == k), "{k} missing from {seen:?}");
    }
    let (_, backups) = w.get("/api/programs/upd/backups").await;
    let b = &backups["backups"][0];
    assert_eq!(b["status"], "ok", "{backups}");
    assert_eq!(b["verify_ok"], true, "{backups}");
    assert!(b["reason"].as_str().unwrap_or("").contains("101"), "{b}");
    // Nothing of the update is left beside the server.
    let leftovers: Vec<String> = std::fs::read_dir(w.data_dir.join("servers"))
        .expect("servers")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["upd"], "{leftovers:?}");

    // A broken build: it writes into the world and never becomes ready.
    std::fs::write(f.broken_file(), "").expect("broken");
    f.publish("102");
    let old_pid = w.program("upd").await["pid"].as_u64().expect("pid");
    apply(w, "upd", json!({})).await;
    let s = wait_outcome(w, "upd", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "rolled_back", "{s}");
    assert_eq!(s["last"]["build"], "102", "{s}");
    assert_eq!(s["installed"], "101", "{s}");
    let p = w
        .wait_state("upd", "running", Duration::from_secs(30))
        .await;
    assert_ne!(
        p["pid"].as_u64(),
        Some(old_pid),
        "a new process of the old build"
    );
    assert!(
        runs_build(w, "upd", "101").await,
        "{:?}",
        w.console("upd").await
    );
    assert!(
        w.console("upd")
            .await
            .iter()
            .any(|l| l.contains("broken build of app 4100")),
        "the broken build did run"
    );
    assert_eq!(world(&dir), world_bytes, "the world is byte-identical");
    let script = std::fs::read_to_string(dir.join("server.sh")).expect("server.sh");
    assert!(script.contains("server ready"), "{script}");
    let events = w.events("upd").await;
    let rolled = events
        .iter()
        .find(|e| e["kind"] == "update_rolled_back")
        .expect("update_rolled_back event");
    assert!(
        rolled["message"]
            .as_str()
            .unwrap_or("")
            .contains("did not become ready"),
        "{rolled}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(w.data_dir.join("servers"))
        .expect("servers")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["upd"], "{leftovers:?}");
}

/// The demo game installed as `name` from a template (SLP query, broadcasts on its
/// console), with `update` settings, running with Steve online.
async fn demo_with_a_player(w: &Warden, name: &str, update: Value) {
    let port = free_tcp_port();
    let template = format!(
        "name = \"upd-demo\"\nversion = 1\ntitle = \"Demo\"\nstart_seconds = 60\n\
         stop_timeout_seconds = 20\n[source]\nkind = \"steamcmd\"\napp = 4200\n\
         [command.linux]\ncommand = {:?}\nargs = [\"demo-game\", \"--startup-ms\", \"200\", \
         \"--players\", \"0\", \"--slp-port\", \"{{{{port}}}}\", \"--save-dir\", \"saves\"]\n\
         [[ports]]\nname = \"port\"\nport = 25565\nprotocol = \"tcp\"\n\
         [game]\nprofile = \"minecraft\"\nquery = \"slp\"\nquery_port = \"{{{{port}}}}\"\n\
         [backup]\ninclude = [\"saves\"]\n",
        bin()
    );
    std::fs::write(w.data_dir.join("templates/upd-demo.toml"), template).expect("template");
    install(w, "upd-demo", name, json!({"port": port.to_string()})).await;
    // Broadcasts go to the console: the demo game answers `say` there.
    let mut game = w.program(name).await["game"].clone();
    game["broadcast"] = json!({"stdin": "say {message}"});
    let (code, v) = set_spec(w, name, json!({"update": update, "game": game})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, v) = w
        .post(&format!("/api/programs/{name}/start"), json!({}))
        .await;
    assert!(code.is_success(), "{v}");
    w.wait_state(name, "running", Duration::from_secs(30)).await;
    let (code, v) = w
        .post(
            &format!("/api/programs/{name}/console"),
            json!({"line": "join Steve"}),
        )
        .await;
    assert!(code.is_success(), "{v}");
    wait_until(Duration::from_secs(20), "Steve online", || async {
        let (_, v) = w.get(&format!("/api/programs/{name}/players")).await;
        (v["online"] == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_when_empty_update_waits_for_the_last_player_and_tells_them() {
    let f = fixture().await;
    let w = &f.w;
    demo_with_a_player(w, "demo", json!({"apply": "when_empty"})).await;

    f.publish("200");
    apply(w, "demo", json!({})).await;
    let s = wait_until(Duration::from_secs(60), "waiting for Steve", || async {
        let s = update_status(w, "demo").await;
        (s["pipeline"]["waiting_for"] == "1 player online").then_some(s)
    })
    .await;
    assert_eq!(s["step"], "waiting", "{s}");
    assert_eq!(s["next_window"], "when nobody is online");
    wait_until(Duration::from_secs(20), "players told", || async {
        w.console("demo")
            .await
            .iter()
            .any(|l| l.contains("[Server] A server update is ready"))
            .then_some(())
    })
    .await;
    // Still waiting a few polls later, the server untouched.
    let pid = w.program("demo").await["pid"].as_u64();
    let evs = w.events("demo").await;
    assert!(kinds(&evs).iter().any(|k| k == "update_warned"), "{evs:?}");
    assert!(
        !kinds(&evs).iter().any(|k| k == "update_stopping"),
        "{evs:?}"
    );
    let s = update_status(w, "demo").await;
    assert_eq!(s["step"], "waiting", "{s}");
    assert_eq!(w.program("demo").await["pid"].as_u64(), pid);

    let (code, v) = w
        .post("/api/programs/demo/console", json!({"line": "leave Steve"}))
        .await;
    assert!(code.is_success(), "{v}");
    let s = wait_outcome(w, "demo", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "succeeded", "{s}");
    assert_eq!(s["installed"], "200", "{s}");
    let p = w
        .wait_state("demo", "running", Duration::from_secs(30))
        .await;
    assert_ne!(p["pid"].as_u64(), pid, "restarted for the update");
}

#[tokio::test]
async fn a_kill9_of_warden_mid_update_is_rolled_back_at_the_next_start() {
    let mut f = fixture().await;
    install(&f.w, "upd-game", "k9", json!({})).await;
    let dir = f.server_dir("k9");
    std::fs::create_dir_all(dir.join("saves")).expect("saves");
    let world_bytes = b"the world before the update".to_vec();
    std::fs::write(dir.join("saves/world.dat"), &world_bytes).expect("world");
    let (code, v) = set_spec(&f.w, "k9", json!({"update": {"ready_timeout": "10m"}})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, v) = f.w.post("/api/programs/k9/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    f.w.wait_state("k9", "running", Duration::from_secs(30))
        .await;

    std::fs::write(f.broken_file(), "").expect("broken");
    f.publish("300");
    apply(&f.w, "k9", json!({})).await;
    wait_until(
        Duration::from_secs(60),
        "the new build verifying",
        || async {
            let s = update_status(&f.w, "k9").await;
            (s["step"] == "verifying").then_some(())
        },
    )
    .await;
    let broken_pid = wait_until(Duration::from_secs(30), "broken build running", || async {
        let p = f.w.program("k9").await;
        p["pid"].as_u64()
    })
    .await as u32;
    wait_until(
        Duration::from_secs(20),
        "the world scribbled on",
        || async { (world(&dir) != world_bytes).then_some(()) },
    )
    .await;
    f.w.kill9();
    std::fs::remove_file(f.broken_file()).expect("unbreak");

    let data = f.w.data_dir.clone();
    f.w = Warden::start_in(&data, &f.config).await;
    let w = &f.w;
    let s = wait_outcome(w, "k9", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "rolled_back", "{s}");
    assert_eq!(s["installed"], "100", "{s}");
    assert!(
        s["last"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("warden stopped"),
        "{s}"
    );
    w.wait_state("k9", "running", Duration::from_secs(30)).await;
    assert!(!alive(broken_pid), "the broken build was stopped");
    assert!(
        runs_build(w, "k9", "100").await,
        "{:?}",
        w.console("k9").await
    );
    assert_eq!(world(&dir), world_bytes, "the world is byte-identical");
    let script = std::fs::read_to_string(dir.join("server.sh")).expect("server.sh");
    assert!(script.contains("build 100"), "{script}");
}

#[tokio::test]
async fn two_programs_updating_at_once_share_one_steamcmd() {
    let f = fixture().await;
    let w = &f.w;
    for name in ["one", "two"] {
        install(w, "upd-game", name, json!({})).await;
    }
    let _ = std::fs::remove_file(f.log_file());
    f.publish("400");
    for name in ["one", "two"] {
        apply(w, name, json!({})).await;
    }
    for name in ["one", "two"] {
        let s = wait_outcome(w, name, Duration::from_secs(120)).await;
        assert_eq!(s["last"]["result"], "succeeded", "{s}");
        assert_eq!(s["installed"], "400", "{s}");
    }
    // Every SteamCMD run (checks and downloads) ended before the next began.
    let lines = file_lines(&f.log_file());
    assert!(
        lines.len() >= 8,
        "two checks and two downloads each: {lines:?}"
    );
    let mut open = false;
    for l in &lines {
        if l.starts_with("start ") {
            assert!(!open, "two SteamCMD runs overlapped: {lines:?}");
            open = true;
        } else if l.starts_with("end ") {
            open = false;
        }
    }
    // A second apply while one is under way is refused.
    f.publish("401");
    apply(w, "one", json!({})).await;
    let (code, err) = w.post("/api/programs/one/update/apply", json!({})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "conflict", "{err}");
    wait_outcome(w, "one", Duration::from_secs(120)).await;
}

/// `warden ctl update …` with the test's warden.
fn ctl(w: &Warden, args: &[&str]) -> (bool, String, String) {
    let mut all = vec![
        "ctl",
        "--url",
        w.url.as_str(),
        "--token",
        w.token.as_str(),
        "update",
    ];
    all.extend_from_slice(args);
    let out = std::process::Command::new(bin())
        .args(&all)
        .output()
        .expect("ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_and_a_schedule_task_update_a_server() {
    let f = fixture().await;
    let w = &f.w;
    install(w, "upd-game", "cli", json!({})).await;
    f.publish("500");
    let (ok, out, err) = ctl(w, &["check", "cli"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("installed:  100") && out.contains("available:  500"),
        "{out}"
    );
    assert!(out.contains("(update available)"), "{out}");
    let (ok, out, err) = ctl(w, &["apply", "cli"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("installed:  500"), "{out}");
    assert!(out.contains("last:       succeeded (build 500)"), "{out}");
    // The steps it saw while following (it polls, so not necessarily every one).
    let steps: Vec<&str> = err.lines().collect();
    assert!(!steps.is_empty(), "steps shown: {err}");
    for s in &steps {
        assert!(
            [
                "staging",
                "waiting",
                "stopping",
                "backing_up",
                "applying",
                "starting",
                "verifying"
            ]
            .contains(s),
            "{err}"
        );
    }
    // A program not installed from a template has no updates: its status says so and
    // a check is refused (409) naming why.
    w.create(sh("plain", "sleep 100")).await;
    let (code, v) = w.get("/api/programs/plain/update").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["installed_from_template"], false, "{v}");
    let (code, v) = w.post("/api/programs/plain/update/check", json!({})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("template"),
        "{v}"
    );

    // A schedule's `update` task runs the same pipeline and waits for its end.
    f.publish("501");
    let (code, v) = w
        .post(
            "/api/schedules",
            json!({"name": "nightly-update", "trigger": "0 4 1 1 *", "tasks": [
                {"action": {"kind": "update", "program": "cli"}}]}),
        )
        .await;
    assert!(code.is_success(), "{v}");
    let (code, v) = w
        .post("/api/schedules/nightly-update/run", json!(null))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    let run = wait_until(
        Duration::from_secs(90),
        "the schedule's run ends",
        || async {
            let (_, v) = w.get("/api/schedules/nightly-update/runs?limit=1").await;
            let r = v["runs"][0].clone();
            (!r.is_null() && r["state"] != "running").then_some(r)
        },
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(update_status(w, "cli").await["installed"], "501");
}

#[tokio::test]
async fn warn_then_force_warns_at_its_lead_times_and_updates_despite_a_player() {
    let f = fixture().await;
    let w = &f.w;
    let update = json!({"apply": "warn_then_force", "max_wait": "8s", "warn": ["5s", "2s"]});
    demo_with_a_player(w, "force", update).await;
    let pid = w.program("force").await["pid"].as_u64();
    f.publish("600");
    apply(w, "force", json!({})).await;
    let s = wait_until(Duration::from_secs(60), "a forced stop planned", || async {
        let s = update_status(w, "force").await;
        s["pipeline"]["force_at_ms"].as_i64().map(|_| s)
    })
    .await;
    assert!(
        s["next_window"]
            .as_str()
            .unwrap_or("")
            .starts_with("when nobody is online, at the latest at"),
        "{s}"
    );
    let s = wait_outcome(w, "force", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "succeeded", "{s}");
    assert_eq!(s["installed"], "600", "{s}");
    let p = w
        .wait_state("force", "running", Duration::from_secs(30))
        .await;
    assert_ne!(p["pid"].as_u64(), pid, "restarted for the update");
    let lines = w.console("force").await;
    for lead in ["5 seconds", "2 seconds"] {
        let text = format!("[Server] An update is coming: Server restarting in {lead}");
        assert!(
            lines.iter().any(|l| l.contains(&text)),
            "{text} missing: {lines:?}"
        );
    }
    let evs = w.events("force").await;
    let warned = evs.iter().filter(|e| e["kind"] == "update_warned").count();
    assert!(warned >= 2, "{evs:?}");
}

/// A Minecraft server for the update tests: the `minecraft` source (vanilla, latest
/// release from the manifest), its "jar" a shell script run with `sh` (no Java server here).
const MC_TEMPLATE: &str = "name = \"mc-upd\"\nversion = 1\ntitle = \"Minecraft update test\"\n\
start_seconds = 60\nstop_timeout_seconds = 10\n[source]\nkind = \"minecraft\"\n\
flavor = \"vanilla\"\nversion = \"latest\"\n[command.linux]\ncommand = \"sh\"\n\
args = [\"server.jar\"]\n[game]\nprofile = \"generic\"\nreadiness_line = \"For help\"\n\
[backup]\ninclude = [\"world\"]\n";

/// The versions a Mojang double publishes (the last one is the latest release).
type Published = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A "jar" that says which version it is and becomes ready, or (broken) scribbles into
/// the world and never does.
fn mc_jar(version: &str, broken: bool) -> Vec<u8> {
    if broken {
        format!(
            "echo \"fake minecraft jar {version} (broken)\"\nmkdir -p world\n\
             echo corrupted >> world/level.dat\ntrap 'exit 0' INT TERM\n\
             while :; do sleep 1; done\n"
        )
    } else {
        format!(
            "echo \"fake minecraft jar {version}\"\necho \"Done (0.1s)! For help, type help\"\n\
             trap 'echo stopping; exit 0' INT TERM\nwhile :; do sleep 1; done\n"
        )
    }
    .into_bytes()
}

/// A double of Mojang's launcher metadata whose versions the test publishes while it runs
/// (each jar with its SHA-1), plus `/files/VERSION` for a URL source.
async fn mojang_double(published: Published) -> String {
    use axum::Router;
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode as Code;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let jar_of = |p: &Published, id: &str| {
        p.lock()
            .expect("lock")
            .iter()
            .find(|(v, _)| v == id)
            .map(|(_, j)| j.clone())
    };
    let b = base.clone();
    let manifest = move |State(p): State<Published>| {
        let base = b.clone();
        async move {
            let p = p.lock().expect("lock").clone();
            let latest = p.last().map(|(v, _)| v.clone()).unwrap_or_default();
            let versions: Vec<Value> = p
                .iter()
                .rev()
                .map(|(v, _)| {
                    json!({"id": v, "type": "release",
                        "url": format!("{base}/v1/packages/{v}.json")})
                })
                .collect();
            axum::Json(json!({"latest": {"release": latest}, "versions": versions}))
        }
    };
    let b = base.clone();
    let package = move |State(p): State<Published>, UrlPath(file): UrlPath<String>| {
        let base = b.clone();
        async move {
            let id = file.trim_end_matches(".json").to_string();
            let Some(jar) = jar_of(&p, &id) else {
                return Err(Code::NOT_FOUND);
            };
            use sha1::Digest;
            let sha1: String = sha1::Sha1::digest(&jar)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok(axum::Json(json!({"downloads": {"server": {"sha1": sha1,
                "size": jar.len(), "url": format!("{base}/v1/objects/{id}/server.jar")}}})))
        }
    };
    let object = move |State(p): State<Published>, UrlPath(id): UrlPath<String>| async move {
        jar_of(&p, &id).ok_or(Code::NOT_FOUND)
    };
    let app = Router::new()
        .route("/mc/game/version_manifest_v2.json", get(manifest))
        .route("/v1/packages/{file}", get(package))
        .route("/v1/objects/{id}/server.jar", get(object))
        .route("/files/{id}", get(object))
        .with_state(published);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Names in the servers folder (hidden update folders included).
fn servers_folder(w: &Warden) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(w.data_dir.join("servers"))
        .expect("servers")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The version the current process of `name` said it is.
async fn mc_version(w: &Warden, name: &str) -> Option<String> {
    w.console(name)
        .await
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("fake minecraft jar ").map(str::to_string))
}

#[tokio::test]
async fn a_minecraft_server_updates_to_the_new_release_and_a_broken_jar_rolls_back() {
    let published: Published = Default::default();
    published
        .lock()
        .expect("lock")
        .push(("1.0.0".into(), mc_jar("1.0.0", false)));
    let base = mojang_double(published.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("templates")).expect("templates dir");
    std::fs::write(data.join("templates/mc-upd.toml"), MC_TEMPLATE).expect("template");
    let w = Warden::start_in(&data, &format!("[install]\nmojang_url = {base:?}\n")).await;
    install(&w, "mc-upd", "mc", json!({})).await;
    let dir = w.data_dir.join("servers/mc");
    std::fs::create_dir_all(dir.join("world")).expect("world");
    let world_bytes: Vec<u8> = (0..32 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(dir.join("world/level.dat"), &world_bytes).expect("world");
    let level = || std::fs::read(dir.join("world/level.dat")).expect("level.dat");
    let (code, v) = set_spec(&w, "mc", json!({"update": {"ready_timeout": "4s"}})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let s = update_status(&w, "mc").await;
    assert_eq!(s["installed"], "1.0.0", "{s}");
    assert_eq!(s["source"]["kind"], "minecraft", "{s}");
    let (code, v) = w.post("/api/programs/mc/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    w.wait_state("mc", "running", Duration::from_secs(30)).await;
    assert_eq!(mc_version(&w, "mc").await.as_deref(), Some("1.0.0"));

    // A new release: the check finds it, the update stages the verified jar and runs it.
    let new_jar = mc_jar("1.0.1", false);
    published
        .lock()
        .expect("lock")
        .push(("1.0.1".into(), new_jar.clone()));
    let (code, s) = w.post("/api/programs/mc/update/check", json!({})).await;
    assert_eq!(code, StatusCode::OK, "{s}");
    assert_eq!(
        (s["installed"].as_str(), s["available"].as_str()),
        (Some("1.0.0"), Some("1.0.1")),
        "{s}"
    );
    apply(&w, "mc", json!({})).await;
    let s = wait_outcome(&w, "mc", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "succeeded", "{s}");
    assert_eq!(s["installed"], "1.0.1", "{s}");
    w.wait_state("mc", "running", Duration::from_secs(30)).await;
    assert_eq!(mc_version(&w, "mc").await.as_deref(), Some("1.0.1"));
    assert_eq!(std::fs::read(dir.join("server.jar")).expect("jar"), new_jar);
    assert_eq!(level(), world_bytes, "the world is untouched");
    let seen = kinds(&w.events("mc").await);
    for k in [
        "update_staging",
        "update_backing_up",
        "update_applying",
        "update_succeeded",
    ] {
        assert!(seen.iter().any(|s| s == k), "{k} missing from {seen:?}");
    }
    assert_eq!(servers_folder(&w), ["mc"]);

    // A jar that never becomes ready (and writes into the world): rolled back to the
    // previous jar, the world byte-identical, the old version running again.
    published
        .lock()
        .expect("lock")
        .push(("1.0.2".into(), mc_jar("1.0.2", true)));
    apply(&w, "mc", json!({})).await;
    let s = wait_outcome(&w, "mc", Duration::from_secs(90)).await;
    assert_eq!(s["last"]["result"], "rolled_back", "{s}");
    assert_eq!(s["last"]["build"], "1.0.2", "{s}");
    assert_eq!(s["installed"], "1.0.1", "{s}");
    w.wait_state("mc", "running", Duration::from_secs(30)).await;
    assert!(
        w.console("mc")
            .await
            .iter()
            .any(|l| l == "fake minecraft jar 1.0.2 (broken)"),
        "the broken jar did run"
    );
    assert_eq!(mc_version(&w, "mc").await.as_deref(), Some("1.0.1"));
    assert_eq!(std::fs::read(dir.join("server.jar")).expect("jar"), new_jar);
    assert_eq!(level(), world_bytes, "the world is byte-identical");
    assert_eq!(servers_folder(&w), ["mc"]);

    // A URL source has one file with a fixed checksum: no updates, and 409 says why.
    let jar = mc_jar("1.0.0", false);
    std::fs::write(
        w.data_dir.join("templates/url-game.toml"),
        format!(
            "name = \"url-game\"\nversion = 1\ntitle = \"URL\"\n[source]\nkind = \"url\"\n\
             url = \"{base}/files/1.0.0\"\nsha256 = \"{}\"\nfile = \"server.jar\"\n\
             [command.linux]\ncommand = \"sh\"\nargs = [\"server.jar\"]\n",
            sha256_hex(&jar)
        ),
    )
    .expect("template");
    install(&w, "url-game", "fixed", json!({})).await;
    for path in ["check", "apply"] {
        let (code, v) = w
            .post(&format!("/api/programs/fixed/update/{path}"), json!({}))
            .await;
        assert_eq!(code, StatusCode::CONFLICT, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("fixed checksum"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn an_update_announced_on_the_console_runs_one_check_per_debounce() {
    let f = fixture().await;
    let w = &f.w;
    // The demo game prints `[Server] MESSAGE` for `say MESSAGE`: the server's own line.
    let template = format!(
        "name = \"upd-announce\"\nversion = 1\ntitle = \"Announcer\"\nstart_seconds = 60\n\
         stop_timeout_seconds = 20\n[source]\nkind = \"steamcmd\"\napp = 4300\n\
         [command.linux]\ncommand = {:?}\nargs = [\"demo-game\", \"--startup-ms\", \"100\", \
         \"--players\", \"0\"]\n[game]\nprofile = \"generic\"\nreadiness_line = \"For help\"\n\
         [update]\napply = \"manual\"\nannounce_line = \"A new version .* is available\"\n\
         announce_debounce = \"1h\"\n",
        bin()
    );
    std::fs::write(w.data_dir.join("templates/upd-announce.toml"), template).expect("template");
    for name in ["ann", "ann2"] {
        install(w, "upd-announce", name, json!({})).await;
        let (code, v) = w
            .post(&format!("/api/programs/{name}/start"), json!({}))
            .await;
        assert!(code.is_success(), "{v}");
        w.wait_state(name, "running", Duration::from_secs(30)).await;
    }
    let s = update_status(w, "ann").await;
    assert_eq!(
        s["settings"]["announce_line"], "A new version .* is available",
        "the template's update settings reached the program: {s}"
    );
    assert!(s["checked_ms"].is_null(), "{s}");

    f.publish("900");
    let say = |name: &'static str| async move {
        let (code, v) = w
            .post(
                &format!("/api/programs/{name}/console"),
                json!({"line": "say A new version 9.0 is available"}),
            )
            .await;
        assert!(code.is_success(), "{v}");
    };
    say("ann").await;
    let s = wait_until(Duration::from_secs(30), "the announced check", || async {
        let s = update_status(w, "ann").await;
        (s["available"] == "900").then_some(s)
    })
    .await;
    assert_eq!(s["installed"], "100", "manual: checked, not applied: {s}");
    assert_eq!(s["update_available"], true, "{s}");
    let checked = s["checked_ms"].clone();
    let announced = |evs: &[Value]| -> Vec<Value> {
        evs.iter()
            .filter(|e| e["kind"] == "update_announced")
            .cloned()
            .collect()
    };
    let evs = announced(&w.events("ann").await);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(
        evs[0]["data"]["line"]
            .as_str()
            .unwrap_or("")
            .ends_with("[Server] A new version 9.0 is available"),
        "{evs:?}"
    );

    // Said again within the debounce: no second check. The watcher reads lines in order,
    // so once ann2's later announcement is recorded, ann's second one has been seen.
    say("ann").await;
    wait_until(Duration::from_secs(20), "ann's second line", || async {
        let n = w
            .console("ann")
            .await
            .iter()
            .filter(|l| l.contains("[Server] A new version"))
            .count();
        (n == 2).then_some(())
    })
    .await;
    say("ann2").await;
    wait_until(
        Duration::from_secs(30),
        "ann2's announced check",
        || async { (update_status(w, "ann2").await["available"] == "900").then_some(()) },
    )
    .await;
    assert_eq!(announced(&w.events("ann").await).len(), 1, "debounced");
    assert_eq!(update_status(w, "ann").await["checked_ms"], checked);

    // A pattern that is not a regular expression is refused with its field named.
    let (code, v) = set_spec(
        w,
        "ann",
        json!({"update": {"apply": "manual", "announce_line": "(unclosed"}}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "update.announce_line");
}

#[tokio::test]
async fn a_steam_account_with_steam_guard_logs_in_with_a_supplied_code() {
    let f = fixture_with(
        &[("FAKE_STEAMCMD_ACCOUNT", "alice:correct horse:G7K2P")],
        "steam_user = \"alice\"\n",
    )
    .await;
    let w = &f.w;
    // No password stored yet: the install says how to store it.
    let body = json!({"template": "upd-game", "name": "sg", "values": {}});
    let (code, v) = w.post("/api/install", body.clone()).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    let done = wait_install_end(w, &v).await;
    assert_eq!(done["error"]["code"], "login_failed", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("steam-password"),
        "{done}"
    );

    // The password, stored through the CLI, is sealed in the database.
    let mut child = std::process::Command::new(bin())
        .args([
            "ctl",
            "--url",
            w.url.as_str(),
            "--token",
            w.token.as_str(),
            "steam-password",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ctl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"correct horse\n").expect("write");
    }
    let out = child.wait_with_output().expect("ctl ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = w
        .put("/api/install/steam-account", json!({"password": ""}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let db = std::fs::read(w.data_dir.join("warden.db")).expect("db");
    let wal = std::fs::read(w.data_dir.join("warden.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(13).any(|b| b == b"correct horse"),
            "the password is sealed at rest"
        );
    }

    // Steam Guard: without a code the install fails with a typed error naming the cure;
    // with the code it logs in and installs.
    let (_, v) = w.post("/api/install", body.clone()).await;
    let done = wait_install_end(w, &v).await;
    assert_eq!(done["error"]["code"], "steam_guard", "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--guard-code"),
        "{done}"
    );
    let mut with_code = body.clone();
    with_code["guard_code"] = json!("G7K2P");
    let (_, v) = w.post("/api/install", with_code).await;
    let done = wait_install_end(w, &v).await;
    assert_eq!(done["state"], "installed", "{done}");

    // The password and the code never were on SteamCMD's command line (which every user
    // of the machine can read): they came in a script only warden's user could read,
    // gone once SteamCMD ended.
    let log = std::fs::read_to_string(f.tmp.path().join("steamcmd.log")).expect("log");
    for run in log.lines().filter(|l| l.starts_with("args ")) {
        assert!(!run.contains("horse") && !run.contains("G7K2P"), "{run}");
    }
    let scripts: Vec<&str> = log.lines().filter(|l| l.starts_with("script ")).collect();
    assert!(scripts.len() >= 2, "both logins ran from a script: {log}");
    for line in scripts {
        let (path, mode) = line["script ".len()..]
            .rsplit_once(' ')
            .expect("path and mode");
        assert_eq!(mode, "600", "{line}");
        assert!(!std::path::Path::new(path).exists(), "{path} left behind");
    }

    // An update asks again (a mobile code is needed at every login): the apply fails
    // before touching the server, its outcome says steam_guard, and the CLI's
    // --guard-code carries the code through.
    f.publish("101");
    apply(w, "sg", json!({})).await;
    let s = wait_outcome(w, "sg", Duration::from_secs(60)).await;
    assert_eq!(s["last"]["result"], "failed", "{s}");
    assert_eq!(s["last"]["code"], "steam_guard", "{s}");
    assert_eq!(s["installed"], "100", "{s}");
    let (ok, out, err) = ctl(w, &["apply", "sg", "--guard-code", "WRONG"]);
    assert!(!ok, "{out}");
    assert!(err.contains("steam_guard"), "{err}");
    let (ok, out, err) = ctl(w, &["apply", "sg", "--guard-code", "G7K2P"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("installed:  101"), "{out}");
}

/// Waits for the install answered by `started` (a 202 body) to end.
async fn wait_install_end(w: &Warden, started: &Value) -> Value {
    let id = started["id"].as_u64().expect("install id");
    wait_until(Duration::from_secs(60), "install ended", || async {
        let (_, v) = w.get(&format!("/api/install/{id}")).await;
        matches!(v["state"].as_str(), Some("installed" | "failed")).then_some(v)
    })
    .await
}

#[tokio::test]
async fn an_update_whose_build_needs_a_newer_java_fails_before_the_server_is_touched() {
    let published: Published = Default::default();
    published
        .lock()
        .expect("lock")
        .push(("1.16.5".into(), mc_jar("1.16.5", false)));
    let base = mojang_double(published.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("templates")).expect("templates dir");
    std::fs::write(data.join("templates/mc-upd.toml"), MC_TEMPLATE).expect("template");
    // The template's command is `sh` (not Java), so `install.java` is the Java checked.
    let java = crate::install::fake_java(tmp.path(), "jdk17", "openjdk version \"17\" 2021-09-14");
    let w = Warden::start_in(
        &data,
        &format!(
            "[install]\nmojang_url = {base:?}\njava = {:?}\n",
            java.display().to_string()
        ),
    )
    .await;
    // 1.16.5 needs Java 8 (the double's version JSON has no javaVersion: the table says).
    install(&w, "mc-upd", "mc", json!({})).await;
    let dir = w.data_dir.join("servers/mc");
    let old_jar = std::fs::read(dir.join("server.jar")).expect("jar");
    let (code, v) = w.post("/api/programs/mc/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    let running = w.wait_state("mc", "running", Duration::from_secs(30)).await;
    assert_eq!(mc_version(&w, "mc").await.as_deref(), Some("1.16.5"));

    // 1.21.4 needs Java 21: the update fails at staging, the server keeps running.
    published
        .lock()
        .expect("lock")
        .push(("1.21.4".into(), mc_jar("1.21.4", false)));
    apply(&w, "mc", json!({"now": true})).await;
    let s = wait_outcome(&w, "mc", Duration::from_secs(60)).await;
    assert_eq!(s["last"]["code"], "java_too_old", "{s}");
    assert_eq!(s["installed"], "1.16.5", "{s}");
    let msg = s["last"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("Minecraft 1.21.4 needs Java 21") && msg.contains("is Java 17"),
        "{msg}"
    );
    let seen = kinds(&w.events("mc").await);
    assert!(seen.iter().any(|k| k == "update_failed"), "{seen:?}");
    for k in ["update_stopping", "update_backing_up", "update_applying"] {
        assert!(!seen.iter().any(|s| s == k), "{k} in {seen:?}");
    }
    let now = w.program("mc").await;
    assert_eq!(now["state"], "running", "{now}");
    assert_eq!(
        now["pid"], running["pid"],
        "the same process: never stopped"
    );
    assert_eq!(mc_version(&w, "mc").await.as_deref(), Some("1.16.5"));
    assert_eq!(std::fs::read(dir.join("server.jar")).expect("jar"), old_jar);
    assert_eq!(servers_folder(&w), ["mc"]);
}

/// The program page's update panel asks for the Steam Guard code when the last update
/// stopped at `steam_guard`, and the update sent again with it installs the new build.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_update_panel_asks_for_a_steam_guard_code() {
    use crate::web::{ADMIN_PASSWORD, add_user, finish_clean, login_seeing, open_browser};
    let f = fixture_with(
        &[("FAKE_STEAMCMD_ACCOUNT", "alice:correct horse:G7K2P")],
        "steam_user = \"alice\"\n",
    )
    .await;
    let w = &f.w;
    let (code, v) = w
        .put(
            "/api/install/steam-account",
            json!({"password": "correct horse"}),
        )
        .await;
    assert!(code.is_success(), "{v}");
    let (_, v) = w
        .post(
            "/api/install",
            json!({"template": "upd-game", "name": "sg", "values": {}, "guard_code": "G7K2P"}),
        )
        .await;
    let done = wait_install_end(w, &v).await;
    assert_eq!(done["state"], "installed", "{done}");
    f.publish("101");
    apply(w, "sg", json!({})).await;
    let s = wait_outcome(w, "sg", Duration::from_secs(60)).await;
    assert_eq!(s["last"]["code"], "steam_guard", "{s}");

    add_user(w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "sg").await;
    ui.go(
        "#/p/sg",
        "!!document.querySelector('[data-update-guard] #update-guard')",
    )
    .await;
    ui.type_into("#update-guard", "G7K2P").await;
    ui.click("[data-update-guard] [data-guard-submit]").await;
    ui.wait(
        "(document.querySelector('[data-update] [data-installed]') || {textContent: ''}).textContent.trim() === '101'",
        Duration::from_secs(90),
        "build 101 installed with the code",
    )
    .await;
    let s = update_status(w, "sg").await;
    assert_eq!(s["installed"], "101", "{s}");
    finish_clean(browser, &ui, events).await;
}
