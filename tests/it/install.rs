//! Installing servers from templates against doubles of the outside world: the fake
//! SteamCMD in `fixtures/fake-steamcmd` (its real output format, app manifests, failures
//! on request) and a local HTTP double of Mojang's version manifest. Covers progress
//! events, the build id read back, the program left stopped and startable, typed
//! failures that leave nothing behind, one SteamCMD at a time, and jar checksums.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_tungstenite::tokio::connect_async;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// A SteamCMD for warden's config: the fixture run with `env` (e.g. a failure mode).
pub(crate) fn steamcmd_wrapper(dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/fake-steamcmd");
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in env {
        script.push_str(&format!("export {k}='{v}'\n"));
    }
    script.push_str(&format!("exec '{}' \"$@\"\n", fake.display()));
    let path = dir.join("steamcmd");
    std::fs::write(&path, script).expect("write wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// warden in `tmp/data` whose SteamCMD is the fake with `env`.
pub(crate) async fn warden_with_fake(tmp: &Path, env: &[(&str, &str)]) -> Warden {
    let steamcmd = steamcmd_wrapper(tmp, env);
    let config = format!(
        "[install]\nsteamcmd = {:?}\n",
        steamcmd.display().to_string()
    );
    Warden::start_in(&tmp.join("data"), &config).await
}

/// A fake `java` in `dir` that answers `java -version` with `line` on stderr, as Java does.
pub(crate) fn fake_java(dir: &Path, name: &str, line: &str) -> PathBuf {
    let bin = dir.join(name);
    std::fs::create_dir_all(&bin).expect("java dir");
    let path = bin.join("java");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh
if [ \"$1\" = -version ]; then
  echo '{line}' >&2
  \
             echo 'OpenJDK Runtime Environment (build fake)' >&2
  exit 0
fi
exec sh \"$@\"
"
        ),
    )
    .expect("write java");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// `[install]` lines whose Java is a fake Java 21.
fn java21(tmp: &Path) -> String {
    let java = fake_java(tmp, "jdk21", "openjdk version \"21.0.2\" 2024-01-16");
    format!("java = {:?}\n", java.display().to_string())
}

/// Waits until install `id` has ended and gives its status.
async fn wait_install(w: &Warden, id: u64) -> Value {
    wait_until(Duration::from_secs(60), "install ended", || async {
        let (code, v) = w.get(&format!("/api/install/{id}")).await;
        assert_eq!(code, StatusCode::OK, "{v}");
        matches!(v["state"].as_str(), Some("installed" | "failed")).then_some(v)
    })
    .await
}

async fn install(w: &Warden, body: Value) -> u64 {
    let (code, v) = w.post("/api/install", body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    v["id"].as_u64().expect("install id")
}

/// Names in the servers folder (hidden temporary folders included).
fn servers(data: &Path) -> Vec<String> {
    match std::fs::read_dir(data.join("servers")) {
        Ok(rd) => rd
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_template_installs_with_progress_and_leaves_a_startable_program() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = warden_with_fake(tmp.path(), &[("FAKE_STEAMCMD_BUILD", "4242")]).await;

    // The listing: every shipped template, variables included, secrets flagged.
    let (code, list) = w.get("/api/templates").await;
    assert_eq!(code, StatusCode::OK);
    let names: Vec<&str> = list["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for n in [
        "minecraft-vanilla",
        "minecraft-paper",
        "palworld",
        "valheim",
        "ark-se",
        "ark-sa",
        "cs2",
        "rust",
        "terraria",
        "7dtd",
        "project-zomboid",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let valheim = list["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["name"] == "valheim")
        .expect("valheim");
    assert_eq!(valheim["source"]["app"], 896660);
    let password = valheim["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["name"] == "password")
        .expect("password variable");
    assert_eq!(password["secret"], true);
    let (code, _) = w
        .call_as(None, reqwest::Method::GET, "/api/templates", None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // Declared in the OpenAPI document, each operation under its own id.
    let (_, doc) = w.get("/api/openapi.json").await;
    let ids: Vec<&str> = ["/api/templates", "/api/install", "/api/install/{id}"]
        .iter()
        .flat_map(|p| {
            doc["paths"][p]
                .as_object()
                .unwrap_or_else(|| panic!("{p} not documented"))
                .values()
                .filter_map(|op| op["operationId"].as_str())
        })
        .collect();
    assert_eq!(ids, ["list_templates", "start_install", "install_status"]);
    let all_ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for id in &ids {
        assert_eq!(
            all_ids.iter().filter(|x| *x == id).count(),
            1,
            "{id} is unique"
        );
    }

    // Refusals: an operator may not install; bad template, value and name are 422.
    let operator = make_token(&w.data_dir, "operator");
    let body = json!({"template": "valheim", "name": "vh"});
    let (code, err) = w
        .call_as(
            Some(&operator),
            reqwest::Method::POST,
            "/api/install",
            Some(body),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    let (code, err) = w
        .post("/api/install", json!({"template": "nope", "name": "vh"}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["details"][0]["field"], "template");
    let (code, err) = w
        .post(
            "/api/install",
            json!({"template": "valheim", "name": "vh", "values": {"game": "70000"}}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "validation_failed");
    assert_eq!(err["error"]["details"][0]["field"], "values.game");

    // Follow the events from before the install starts.
    let url = format!("{}/api/ws", w.url.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", w.token).parse().expect("header"),
    );
    let (mut ws, _) = connect_async(req).await.expect("websocket");
    ws.send(Message::text(
        json!({"op": "subscribe", "topics": ["events"]}).to_string(),
    ))
    .await
    .expect("subscribe");

    let game = free_udp_port();
    let id = install(
        &w,
        json!({"template": "valheim", "name": "vh", "values": {
            "game": game.to_string(), "query": free_udp_port().to_string(),
            "password": "hunter22", "server_name": "Test Vikings"}}),
    )
    .await;

    let mut progress = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("install events within 60 s")
            .expect("socket open")
            .expect("message");
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
        if v["type"] != "install" || v["install_id"] != id {
            continue;
        }
        match v["kind"].as_str() {
            Some("progress") => progress.push(v),
            Some("finished") => {
                assert_eq!(v["build"], "4242");
                break;
            }
            Some("failed") => panic!("install failed: {v}"),
            _ => {}
        }
    }
    let percents: Vec<f64> = progress
        .iter()
        .filter(|p| p["phase"] == "downloading")
        .map(|p| p["percent"].as_f64().expect("percent"))
        .collect();
    assert_eq!(percents, vec![12.5, 25.0, 50.0, 75.0], "{progress:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["bytes_total"] == 1_000_000 || p["bytes_total"] == 0),
        "{progress:?}"
    );

    let status = wait_install(&w, id).await;
    assert_eq!(status["state"], "installed", "{status}");
    assert_eq!(status["build"], "4242");
    let dir = w.data_dir.join("servers").join("vh");
    assert_eq!(
        status["dir"],
        std::path::absolute(&dir).unwrap().display().to_string()
    );
    assert!(dir.join("steamapps/appmanifest_896660.acf").is_file());
    assert_eq!(servers(&w.data_dir), vec!["vh".to_string()]);

    // The program: stopped, its password masked, its game profile set.
    let p = w.program("vh").await;
    assert_eq!(p["state"], "stopped");
    assert_eq!(p["env"]["SERVER_PASSWORD"], "********");
    assert_eq!(p["env"]["VALHEIM_NAME"], "Test Vikings");
    assert_eq!(p["game"]["profile"], "valheim");
    assert_eq!(p["tags"], json!(["valheim"]));
    assert!(
        p["args"][1]
            .as_str()
            .expect("shell line")
            .contains(&format!("-port {game}")),
        "{p}"
    );
    // The name is taken now.
    let (code, _) = w
        .post("/api/install", json!({"template": "valheim", "name": "vh"}))
        .await;
    assert_eq!(code, StatusCode::CONFLICT);

    // It starts and becomes ready on the game's own readiness line.
    let (code, v) = w.post("/api/programs/vh/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    w.wait_state("vh", "running", Duration::from_secs(30)).await;
    let console = w.console("vh").await;
    assert!(
        console.iter().any(|l| l.contains("Game server connected")),
        "{console:?}"
    );
    let (code, v) = w.post("/api/programs/vh/stop", json!({})).await;
    assert!(code.is_success(), "{v}");
    w.wait_state("vh", "stopped", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_failing_steamcmd_gives_a_typed_error_and_leaves_nothing() {
    for (mode, code) in [
        ("disk_full", "disk_full"),
        ("no_subscription", "no_subscription"),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = warden_with_fake(tmp.path(), &[("FAKE_STEAMCMD_FAIL", mode)]).await;
        let id = install(&w, json!({"template": "palworld", "name": "pal"})).await;
        let status = wait_install(&w, id).await;
        assert_eq!(status["state"], "failed", "{status}");
        assert_eq!(status["error"]["code"], code, "{status}");
        let (c, _) = w.get("/api/programs/pal").await;
        assert_eq!(
            c,
            StatusCode::NOT_FOUND,
            "{mode}: no program is left defined"
        );
        assert_eq!(
            servers(&w.data_dir),
            Vec::<String>::new(),
            "{mode}: no files left"
        );
        // The name is free again: a second attempt is accepted (and fails the same way).
        let again = install(&w, json!({"template": "palworld", "name": "pal"})).await;
        assert_eq!(wait_install(&w, again).await["error"]["code"], code);
    }
}

#[tokio::test]
async fn concurrent_installs_run_one_steamcmd_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("steamcmd.log");
    let log_s = log.display().to_string();
    let w = warden_with_fake(
        tmp.path(),
        &[("FAKE_STEAMCMD_LOG", &log_s), ("FAKE_STEAMCMD_STEP", "0.2")],
    )
    .await;
    let a = install(&w, json!({"template": "palworld", "name": "pal-a"})).await;
    let b = install(&w, json!({"template": "valheim", "name": "vh-b"})).await;
    for id in [a, b] {
        let s = wait_install(&w, id).await;
        assert_eq!(s["state"], "installed", "{s}");
    }
    // The start and end of each run (the log also holds each run's command line).
    let lines: Vec<String> = file_lines(&log)
        .into_iter()
        .filter(|l| l.starts_with("start ") || l.starts_with("end "))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let mut spans: Vec<(String, u128)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].parse().expect("ns"))
        })
        .collect();
    spans.sort_by_key(|(_, t)| *t);
    let order: Vec<&str> = spans.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        order,
        ["start", "end", "start", "end"],
        "two SteamCMD runs overlapped: {lines:?}"
    );
    let mut names = servers(&w.data_dir);
    names.sort();
    assert_eq!(names, ["pal-a", "vh-b"]);
}

/// A double of Mojang's launcher metadata: version `1.99.1` (latest release) with a
/// correct SHA-1 and `1.99.0` whose published SHA-1 does not match its jar; both need
/// Java 21 (`javaVersion.majorVersion`).
pub(crate) async fn mojang_double(jar: &'static [u8]) -> String {
    use axum::Router;
    use axum::routing::get;
    let good = {
        use sha1::Digest;
        let d = sha1::Sha1::digest(jar);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    http_double(|base| {
    let manifest = json!({
        "latest": {"release": "1.99.1", "snapshot": "99w01a"},
        "versions": [
            {"id": "1.99.1", "type": "release", "url": format!("{base}/v1/packages/1.99.1.json")},
            {"id": "1.99.0", "type": "release", "url": format!("{base}/v1/packages/1.99.0.json")},
        ]
    });
    let version = |sha1: String| {
        json!({"downloads": {"server": {"sha1": sha1, "size": jar.len(),
            "url": format!("{base}/v1/objects/server.jar")}},
            "javaVersion": {"component": "java-runtime-delta", "majorVersion": 21}})
    };
    let (v1, v0) = (version(good), version("0".repeat(40)));
    Router::new()
        .route(
            "/mc/game/version_manifest_v2.json",
            get(move || async move { axum::Json(manifest) }),
        )
        .route(
            "/v1/packages/1.99.1.json",
            get(move || async move { axum::Json(v1) }),
        )
        .route(
            "/v1/packages/1.99.0.json",
            get(move || async move { axum::Json(v0) }),
        )
        .route("/v1/objects/server.jar", get(move || async move { jar }))
    })
    .await
}

#[tokio::test]
async fn minecraft_jars_are_installed_only_with_their_published_checksum() {
    static JAR: &[u8] = b"PK\x03\x04 not really a jar, but bytes with a checksum";
    let base = mojang_double(JAR).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = format!("[install]\nmojang_url = {base:?}\n{}", java21(tmp.path()));
    let w = Warden::start_in(&tmp.path().join("data"), &config).await;

    // The EULA must be accepted explicitly.
    let (code, err) = w
        .post(
            "/api/install",
            json!({"template": "minecraft-vanilla", "name": "mc"}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["details"][0]["field"], "values.accept_eula");

    let id = install(
        &w,
        json!({"template": "minecraft-vanilla", "name": "mc",
            "values": {"accept_eula": "true", "motd": "Hello"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "installed", "{s}");
    assert_eq!(
        s["build"], "1.99.1",
        "latest resolves to the latest release"
    );
    let dir = w.data_dir.join("servers/mc");
    assert_eq!(std::fs::read(dir.join("server.jar")).expect("jar"), JAR);
    assert_eq!(
        std::fs::read_to_string(dir.join("eula.txt")).expect("eula"),
        "eula=true\n"
    );
    let props = std::fs::read_to_string(dir.join("server.properties")).expect("properties");
    assert!(props.contains("motd=Hello\n"), "{props}");
    assert!(props.contains("rcon.port=25575\n"), "{props}");
    let p = w.program("mc").await;
    assert_eq!(p["state"], "stopped");
    // `install.java` is the Java the template's `java` runs with.
    assert!(
        p["command"]
            .as_str()
            .is_some_and(|c| c.ends_with("jdk21/java")),
        "{p}"
    );
    assert_eq!(p["game"]["rcon"]["password"], "********");
    // The generated RCON password reached the server's config, not the API.
    let line = props
        .lines()
        .find(|l| l.starts_with("rcon.password="))
        .expect("rcon.password");
    assert_eq!(line.len(), "rcon.password=".len() + 20, "{line}");
    // The template's backup defaults were saved.
    let (code, b) = w.get("/api/programs/mc/backup-settings").await;
    assert_eq!(code, StatusCode::OK, "{b}");
    assert_eq!(b["include"][0], "world", "{b}");
    assert_eq!(b["pre"][1]["wait_for"], "Saved the game", "{b}");

    // A jar whose checksum does not match: failed, nothing installed, no program.
    let id = install(
        &w,
        json!({"template": "minecraft-vanilla", "name": "mc-bad",
            "values": {"accept_eula": "true", "version": "1.99.0"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "checksum_mismatch", "{s}");
    let (code, _) = w.get("/api/programs/mc-bad").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(servers(&w.data_dir), vec!["mc".to_string()]);

    // An unknown version says so.
    let id = install(
        &w,
        json!({"template": "minecraft-vanilla", "name": "mc-old",
            "values": {"accept_eula": "true", "version": "0.0.1"}}),
    )
    .await;
    assert_eq!(
        wait_install(&w, id).await["error"]["code"],
        "unknown_version"
    );
}

#[tokio::test]
async fn a_java_older_than_the_build_needs_stops_the_install_before_the_download() {
    static JAR: &[u8] = b"PK\x03\x04 a jar that needs Java 21";
    let base = mojang_double(JAR).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = fake_java(
        tmp.path(),
        "jdk17",
        "openjdk version \"17.0.15\" 2025-04-15",
    );
    let config = format!(
        "[install]\nmojang_url = {base:?}\njava = {:?}\n",
        old.display().to_string()
    );
    let w = Warden::start_in(&tmp.path().join("data"), &config).await;
    let id = install(
        &w,
        json!({"template": "minecraft-vanilla", "name": "mc",
            "values": {"accept_eula": "true", "version": "1.99.1"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "java_too_old", "{s}");
    let msg = s["error"]["message"].as_str().unwrap_or_default();
    for part in [
        "Minecraft 1.99.1 needs Java 21",
        "jdk17/java is Java 17",
        "openjdk-21-jre-headless",
        "[install]",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // Nothing installed: no program, no folder (not even a temporary one).
    let (code, _) = w.get("/api/programs/mc").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        servers(&w.data_dir).is_empty(),
        "{:?}",
        servers(&w.data_dir)
    );
    drop(w);

    // The same build with a Java 21 installs.
    let w = Warden::start_in(
        &tmp.path().join("data21"),
        &format!("[install]\nmojang_url = {base:?}\n{}", java21(tmp.path())),
    )
    .await;
    let id = install(
        &w,
        json!({"template": "minecraft-vanilla", "name": "mc",
            "values": {"accept_eula": "true", "version": "1.99.1"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "installed", "{s}");
    assert_eq!(
        std::fs::read(w.data_dir.join("servers/mc/server.jar")).expect("jar"),
        JAR
    );

    // A Java whose `-version` says nothing readable, and one that is not there.
    let w2_tmp = tempfile::tempdir().expect("tempdir");
    let odd = fake_java(w2_tmp.path(), "odd", "no version here");
    let w2 = Warden::start_in(
        &w2_tmp.path().join("data"),
        &format!(
            "[install]\nmojang_url = {base:?}\njava = {:?}\n",
            odd.display().to_string()
        ),
    )
    .await;
    let id = install(
        &w2,
        json!({"template": "minecraft-vanilla", "name": "odd",
            "values": {"accept_eula": "true"}}),
    )
    .await;
    let s = wait_install(&w2, id).await;
    assert_eq!(s["error"]["code"], "java_missing", "{s}");
    assert!(servers(&w2.data_dir).is_empty());
}

/// Runs `warden new ARGS` against `w` (off the test's runtime: it waits for the install).
async fn warden_new(w: &Warden, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut all: Vec<String> = vec!["new".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend([
        "--url".into(),
        w.url.clone(),
        "--token".into(),
        w.token.clone(),
    ]);
    let data = w.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        cli(&data, &refs, None)
    })
    .await
    .expect("cli")
}

#[tokio::test]
async fn the_cli_lists_templates_and_installs_from_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = warden_with_fake(tmp.path(), &[("FAKE_STEAMCMD_BUILD", "777")]).await;
    // A user template beside the shipped ones.
    std::fs::create_dir_all(w.data_dir.join("templates")).expect("templates dir");
    std::fs::write(
        w.data_dir.join("templates/my-game.toml"),
        "name = \"my-game\"\nversion = 2\ntitle = \"My game\"\n[source]\nkind = \"steamcmd\"\n\
         app = 4000\n[command.linux]\ncommand = \"./server.sh\"\n[game]\nprofile = \"generic\"\n\
         readiness_line = \"server ready\"\n",
    )
    .expect("write template");
    let data = w.data_dir.clone();
    let (status, out, err) = tokio::task::spawn_blocking(move || cli(&data, &["templates"], None))
        .await
        .expect("cli");
    assert!(status.success(), "{err}");
    for name in ["valheim", "palworld", "my-game"] {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} not listed:\n{out}"
        );
    }
    assert!(out.contains("steamcmd app 896660"), "{out}");

    let (status, out, err) = warden_new(&w, &["--template", "my-game", "mine"]).await;
    assert!(status.success(), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("'mine' installed") && out.contains("build 777"),
        "{out}"
    );
    assert!(err.contains("downloading 75.0 %"), "progress shown: {err}");
    let p = w.program("mine").await;
    assert_eq!(p["state"], "stopped");
    let (code, v) = w.post("/api/programs/mine/start", json!({})).await;
    assert!(code.is_success(), "{v}");
    w.wait_state("mine", "running", Duration::from_secs(30))
        .await;

    let (status, _, err) =
        warden_new(&w, &["--template", "valheim", "v2", "--set", "game=0"]).await;
    assert!(!status.success());
    assert!(err.contains("validation_failed"), "{err}");
}

/// A double of PaperMC's downloads API: versions `1.99.0` and `1.99.1`; the newest build
/// of `1.99.1` (8) publishes the jar's SHA-256, the build of `1.99.0` a wrong one.
async fn paper_double(jar: &'static [u8]) -> String {
    use axum::Router;
    use axum::routing::get;
    let good = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(jar);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let builds = |version: &str, sha: &str| {
        let app = |n: u32| {
            json!({"build": n, "channel": "default", "downloads": {"application":
                {"name": format!("paper-{version}-{n}.jar"), "sha256": sha}}})
        };
        json!({"project_id": "paper", "version": version, "builds": [app(7), app(8)]})
    };
    let (b1, b0) = (builds("1.99.1", &good), builds("1.99.0", &"f".repeat(64)));
    let app = Router::new()
        .route(
            "/v2/projects/paper",
            get(|| async { axum::Json(json!({"versions": ["1.99.0", "1.99.1"]})) }),
        )
        .route(
            "/v2/projects/paper/versions/1.99.1/builds",
            get(move || async move { axum::Json(b1) }),
        )
        .route(
            "/v2/projects/paper/versions/1.99.0/builds",
            get(move || async move { axum::Json(b0) }),
        )
        .route(
            "/v2/projects/paper/versions/1.99.1/builds/8/downloads/paper-1.99.1-8.jar",
            get(move || async move { jar }),
        )
        .route(
            "/v2/projects/paper/versions/1.99.0/builds/8/downloads/paper-1.99.0-8.jar",
            get(move || async move { jar }),
        );
    http_double(|_| app).await
}

#[tokio::test]
async fn paper_installs_its_newest_build_only_with_the_published_sha256() {
    static JAR: &[u8] = b"PK\x03\x04 a paper jar double";
    let base = paper_double(JAR).await;
    // PaperMC's v2 API says nothing of Java: the Java 1.99.1 needs comes from Mojang's
    // version JSON of the same version (21), checked against the server's Java.
    let mojang = mojang_double(JAR).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = fake_java(
        tmp.path(),
        "jdk17",
        "openjdk version \"17.0.15\" 2025-04-15",
    );
    let w = Warden::start_in(
        &tmp.path().join("data17"),
        &format!(
            "[install]\npaper_url = {base:?}\nmojang_url = {mojang:?}\njava = {:?}\n",
            old.display().to_string()
        ),
    )
    .await;
    let id = install(
        &w,
        json!({"template": "minecraft-paper", "name": "paper",
            "values": {"accept_eula": "true"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["error"]["code"], "java_too_old", "{s}");
    assert!(servers(&w.data_dir).is_empty());
    drop(w);

    let w = Warden::start_in(
        &tmp.path().join("data"),
        &format!(
            "[install]\npaper_url = {base:?}\nmojang_url = {mojang:?}\n{}",
            java21(tmp.path())
        ),
    )
    .await;
    let id = install(
        &w,
        json!({"template": "minecraft-paper", "name": "paper",
            "values": {"accept_eula": "true"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "installed", "{s}");
    assert_eq!(s["build"], "1.99.1-8", "newest version, newest build");
    let jar = std::fs::read(w.data_dir.join("servers/paper/server.jar")).expect("jar");
    assert_eq!(jar, JAR);

    let id = install(
        &w,
        json!({"template": "minecraft-paper", "name": "paper-old",
            "values": {"accept_eula": "true", "version": "1.99.0"}}),
    )
    .await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["error"]["code"], "checksum_mismatch", "{s}");
    assert_eq!(servers(&w.data_dir), vec!["paper".to_string()]);
    let (code, _) = w.get("/api/programs/paper-old").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn steamcmd_failures_that_may_pass_are_retried_a_bounded_number_of_times() {
    // Refused once, then served: the install succeeds on the second run.
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("steamcmd.log");
    let steamcmd = steamcmd_wrapper(
        tmp.path(),
        &[
            ("FAKE_STEAMCMD_FAIL", "rate_limit_once"),
            ("FAKE_STEAMCMD_LOG", &log.display().to_string()),
        ],
    );
    let config = format!(
        "[install]\nsteamcmd = {:?}\nsteamcmd_retry_seconds = 0\nsteamcmd_attempts = 2\n",
        steamcmd.display().to_string()
    );
    let w = Warden::start_in(&tmp.path().join("data"), &config).await;
    let id = install(&w, json!({"template": "valheim", "name": "vh"})).await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["state"], "installed", "{s}");
    let starts = |log: &Path| {
        file_lines(log)
            .iter()
            .filter(|l| l.starts_with("start "))
            .count()
    };
    assert_eq!(starts(&log), 2, "one refused run, one good run");

    // Always refused: given up after `steamcmd_attempts` runs, with the typed error.
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("steamcmd.log");
    let steamcmd = steamcmd_wrapper(
        tmp.path(),
        &[
            ("FAKE_STEAMCMD_FAIL", "rate_limit"),
            ("FAKE_STEAMCMD_LOG", &log.display().to_string()),
        ],
    );
    let config = format!(
        "[install]\nsteamcmd = {:?}\nsteamcmd_retry_seconds = 0\nsteamcmd_attempts = 3\n",
        steamcmd.display().to_string()
    );
    let w = Warden::start_in(&tmp.path().join("data"), &config).await;
    let id = install(&w, json!({"template": "valheim", "name": "vh"})).await;
    let s = wait_install(&w, id).await;
    assert_eq!(s["error"]["code"], "rate_limited", "{s}");
    assert_eq!(starts(&log), 3, "bounded by steamcmd_attempts");
    assert_eq!(servers(&w.data_dir), Vec::<String>::new());
}

/// A double of Valve's installer folder: `steamcmd_linux.tar.gz` holding the fake
/// SteamCMD as `steamcmd.sh` (and `linux32/`, as the real archive has); counts downloads.
async fn steamcmd_installer_double() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::Router;
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fake = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/fake-steamcmd"),
    )
    .expect("fake steamcmd");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(fake.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "steamcmd.sh", &fake[..])
        .expect("append");
    let mut d = tar::Header::new_gnu();
    d.set_entry_type(tar::EntryType::Directory);
    d.set_size(0);
    d.set_mode(0o755);
    d.set_cksum();
    b.append_data(&mut d, "linux32/", &[][..]).expect("dir");
    let archive = b.into_inner().expect("tar").finish().expect("gz");
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let app = Router::new().route(
        "/client/installer/steamcmd_linux.tar.gz",
        get(move || {
            let archive = archive.clone();
            let hits = h2.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                // Slow enough that a second install asks while the first bootstraps.
                tokio::time::sleep(Duration::from_millis(300)).await;
                archive
            }
        }),
    );
    let base = http_double(|_| app).await;
    (format!("{base}/client/installer/"), hits)
}

#[tokio::test]
async fn without_a_steamcmd_warden_bootstraps_one_once_and_installs_with_it() {
    if which::which("steamcmd").is_ok() || which::which("steamcmd.sh").is_ok() {
        // This host has a SteamCMD in PATH, which warden rightly prefers.
        return;
    }
    let (base, hits) = steamcmd_installer_double().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("templates")).expect("templates dir");
    std::fs::write(
        data.join("templates/boot-game.toml"),
        "name = \"boot-game\"\nversion = 1\ntitle = \"Bootstrap\"\n[source]\nkind = \"steamcmd\"\n\
         app = 4500\n[command.linux]\ncommand = \"./server.sh\"\n",
    )
    .expect("template");
    let w = Warden::start_in(&data, &format!("[install]\nsteamcmd_url = {base:?}\n")).await;
    // Two installs at once: one bootstrap, both use it.
    let a = install(&w, json!({"template": "boot-game", "name": "boot-a"})).await;
    let b = install(&w, json!({"template": "boot-game", "name": "boot-b"})).await;
    for id in [a, b] {
        let s = wait_install(&w, id).await;
        assert_eq!(s["state"], "installed", "{s}");
        assert_eq!(s["build"], "12345678", "{s}");
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one bootstrap download"
    );
    let steamcmd = data.join("steamcmd/steamcmd.sh");
    assert!(steamcmd.is_file(), "bootstrapped into the data dir");
    assert!(data.join("steamcmd/linux32").is_dir());
    assert!(
        !data.join(".steamcmd.bootstrap").exists(),
        "no temporary folder left"
    );
    assert!(
        data.join("servers/boot-a/steamapps/appmanifest_4500.acf")
            .is_file()
    );
}
