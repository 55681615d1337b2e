//! The HTTP API's contract: roles on every endpoint, one error shape for every failure,
//! browser sessions with CSRF, login rate limiting, OpenAPI, declarative apply.

use std::time::Duration;

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn assert_error_shape(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(!msg.is_empty());
    for leak in ["SELECT", "sqlite", "panicked", "src/", "rusqlite"] {
        assert!(!msg.contains(leak), "message leaks internals: {msg}");
    }
}

#[tokio::test]
async fn every_role_gets_exactly_its_rights() {
    let w = Warden::start().await;
    let viewer = make_token(&w.data_dir, "viewer");
    let operator = make_token(&w.data_dir, "operator");
    let mut spec = sh("p", "exec sleep 1000");
    spec["start_seconds"] = json!(0);
    w.create(spec).await;

    // (method, path, body, least role that may call it)
    let calls: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (Method::GET, "/api/programs", None, "viewer"),
        (Method::GET, "/api/programs/p", None, "viewer"),
        (Method::GET, "/api/programs/p/events", None, "viewer"),
        (Method::GET, "/api/programs/p/console", None, "operator"),
        (Method::GET, "/api/events", None, "viewer"),
        (Method::GET, "/api/auth/me", None, "viewer"),
        (Method::POST, "/api/programs/p/start", None, "operator"),
        (
            Method::POST,
            "/api/programs/p/console",
            Some(json!({"line": "hi"})),
            "operator",
        ),
        (Method::POST, "/api/programs/p/restart", None, "operator"),
        (Method::POST, "/api/programs/p/stop", None, "operator"),
        (Method::POST, "/api/programs/p/kill", None, "operator"),
        (
            Method::POST,
            "/api/programs",
            Some(sh("new", "true")),
            "admin",
        ),
        (
            Method::PUT,
            "/api/programs/new",
            Some(sh("new", "false")),
            "admin",
        ),
        (Method::DELETE, "/api/programs/new", None, "admin"),
        (
            Method::POST,
            "/api/apply",
            Some(json!({"programs": []})),
            "admin",
        ),
        (Method::GET, "/api/users", None, "admin"),
        (
            Method::POST,
            "/api/users",
            Some(json!({"name": "u1", "password": "longenough", "role": "viewer"})),
            "admin",
        ),
        (Method::GET, "/api/tokens", None, "admin"),
        (
            Method::POST,
            "/api/tokens",
            Some(json!({"name": "x", "role": "viewer"})),
            "admin",
        ),
    ];
    let rank = |r: &str| match r {
        "viewer" => 0,
        "operator" => 1,
        _ => 2,
    };
    for (role, token) in [("viewer", &viewer), ("operator", &operator)] {
        for (method, path, body, least) in &calls {
            let (st, v) = w
                .call_as(Some(token), method.clone(), path, body.clone())
                .await;
            if rank(role) >= rank(least) {
                assert!(
                    st.is_success() || st == StatusCode::CONFLICT,
                    "{role} {method} {path}: {st} {v}"
                );
            } else {
                assert_eq!(st, StatusCode::FORBIDDEN, "{role} {method} {path}: {v}");
                assert_error_shape(&v, "forbidden");
            }
        }
    }
    // Admin may do everything (in order, so create comes before update and delete).
    for (method, path, body, _) in &calls {
        let (st, v) = w
            .call_as(Some(&w.token), method.clone(), path, body.clone())
            .await;
        assert!(
            st.is_success() || st == StatusCode::CONFLICT,
            "admin {method} {path}: {st} {v}"
        );
    }
    // Without credentials: 401 everywhere except /health.
    for (method, path, body, _) in &calls {
        let (st, v) = w.call_as(None, method.clone(), path, body.clone()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_error_shape(&v, "unauthenticated");
    }
    let (st, _) = w.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(st, 200);
    // A bogus or revoked token is refused.
    let (st, v) = w
        .call_as(Some("wdn_nope_nope"), Method::GET, "/api/programs", None)
        .await;
    assert_eq!(st, 401);
    assert_error_shape(&v, "invalid_credentials");
    let (st, out, _) = cli(
        &w.data_dir,
        &["token", "revoke", viewer.split('_').nth(1).expect("id")],
        None,
    );
    assert!(st.success(), "{out}");
    wait_until(Duration::from_secs(20), "revocation visible", || async {
        let (st, _) = w
            .call_as(Some(&viewer), Method::GET, "/api/programs", None)
            .await;
        (st == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_precise_4xx_with_the_error_shape() {
    let w = Warden::start().await;
    let url = format!("{}/api/programs", w.url);
    let raw = |body: &'static str, ctype: &'static str| {
        w.http
            .post(&url)
            .bearer_auth(&w.token)
            .header("content-type", ctype)
            .body(body)
    };
    let check = |resp: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(resp.status().as_u16(), status);
        let v: Value = resp.json().await.expect("json error body");
        assert_error_shape(&v, code);
        v
    };
    check(
        raw("{\"name\": ", "application/json")
            .send()
            .await
            .expect("send"),
        400,
        "malformed_json",
    )
    .await;
    let v = check(
        raw(
            r#"{"name":"a","command":"x","comand":"y"}"#,
            "application/json",
        )
        .send()
        .await
        .expect("send"),
        422,
        "invalid_body",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("comand")),
        "{v}"
    );
    check(
        raw(r#"{"name":"a","command":"x"}"#, "text/plain")
            .send()
            .await
            .expect("send"),
        415,
        "unsupported_media_type",
    )
    .await;
    let big = format!(
        r#"{{"name":"a","command":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    // Its own client: the server answers 413 without reading the body and then closes
    // that connection, which a pooled client could otherwise try to reuse.
    let resp = http_client()
        .post(&url)
        .bearer_auth(&w.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    check(resp, 413, "payload_too_large").await;
    // Semantically invalid spec: every problem named with its field.
    let (st, v) = w
        .post(
            "/api/programs",
            json!({"name": "Bad Name", "command": "", "stop": {"signal": "SIGNOPE"}}),
        )
        .await;
    assert_eq!(st, 422);
    assert_error_shape(&v, "validation_failed");
    let fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"command") && fields.contains(&"stop.signal"),
        "{fields:?}"
    );
    // Each detail carries a stable code and the values its sentence needs.
    let by_field = |f: &str| {
        v["error"]["details"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["field"] == f))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_field("name")["code"], "invalid_name", "{v}");
    assert_eq!(by_field("name")["params"]["value"], "Bad Name", "{v}");
    assert_eq!(by_field("command")["code"], "required", "{v}");
    let signal = by_field("stop.signal");
    assert_eq!(signal["code"], "not_one_of", "{v}");
    assert_eq!(signal["params"]["value"], "SIGNOPE", "{v}");
    assert_eq!(signal["params"]["allowed"][0], "SIGTERM", "{v}");
    assert!(
        signal["message"]
            .as_str()
            .is_some_and(|m| m.contains("SIGNOPE")),
        "{v}"
    );
    // Unknown program, route, method, bad query.
    let (st, v) = w.get("/api/programs/ghost").await;
    assert_eq!(st, 404);
    assert_error_shape(&v, "not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ghost"))
    );
    let (st, v) = w.post("/api/programs/ghost/start", json!(null)).await;
    assert_eq!(st, 404);
    assert_error_shape(&v, "not_found");
    let (st, v) = w.get("/api/nothing-here").await;
    assert_eq!(st, 404);
    assert_error_shape(&v, "not_found");
    let (st, v) = w
        .call_as(Some(&w.token), Method::PATCH, "/api/programs", None)
        .await;
    assert_eq!(st, 405);
    assert_error_shape(&v, "method_not_allowed");
    w.create(sh("q", "true")).await;
    let (st, v) = w.get("/api/programs/q/console?lines=abc").await;
    assert_eq!(st, 400);
    assert_error_shape(&v, "invalid_query");
    let (st, v) = w.get("/api/programs/q/console?lines=10001").await;
    assert_eq!(st, 400);
    assert_error_shape(&v, "invalid_query");
    let (st, v) = w.post("/api/programs", sh("q", "true")).await;
    assert_eq!(st, 409);
    assert_error_shape(&v, "already_exists");
    assert_eq!(v["error"]["params"]["name"], "q", "{v}");
    let (st, v) = w
        .post("/api/programs/q/console", json!({"line": "x"}))
        .await;
    assert_eq!(st, 409, "input to a stopped program: {v}");
    assert_error_shape(&v, "program_not_running");
}

#[tokio::test]
async fn browser_sessions_need_csrf_and_logins_are_rate_limited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let w = Warden::start_in(tmp.path(), "[api]\nlogin_attempts_per_minute = 3\n").await;
    let (st, _, err) = cli(
        &w.data_dir,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("alice-password\n"),
    );
    assert!(st.success(), "{err}");
    w.create(sh("p", "exec sleep 1000")).await;
    let client = http_client();
    let login = |user: &str, pw: &str| {
        client
            .post(format!("{}/api/auth/login", w.url))
            .json(&json!({"username": user, "password": pw}))
            .send()
    };
    let resp = login("alice", "wrong-password").await.expect("send");
    assert_eq!(resp.status(), 401);
    let resp = login("alice", "alice-password").await.expect("send");
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("pair").to_string();
    let me: Value = resp.json().await.expect("json");
    assert_eq!(me["role"], "operator");
    let csrf = me["csrf_token"].as_str().expect("csrf").to_string();

    let get = client
        .get(format!("{}/api/programs", w.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("send");
    assert_eq!(get.status(), 200);
    let start = format!("{}/api/programs/p/start", w.url);
    let no_csrf = client
        .post(&start)
        .header("cookie", &session)
        .send()
        .await
        .expect("send");
    assert_eq!(no_csrf.status(), 403);
    let bad_csrf = client
        .post(&start)
        .header("cookie", &session)
        .header("x-csrf-token", "nope")
        .send()
        .await
        .expect("send");
    assert_eq!(bad_csrf.status(), 403);
    let ok = client
        .post(&start)
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    // Logout ends the session.
    let out = client
        .post(format!("{}/api/auth/logout", w.url))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("send");
    assert_eq!(out.status(), 204);
    let after = client
        .get(format!("{}/api/programs", w.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("send");
    assert_eq!(after.status(), 401);

    // 3 attempts per minute were allowed (2 used above); the next fails fast with 429.
    let third = login("alice", "wrong-again").await.expect("send");
    assert_eq!(third.status(), 401);
    let limited = login("alice", "alice-password").await.expect("send");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    let v: Value = limited.json().await.expect("json");
    assert_error_shape(&v, "rate_limited");
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let w = Warden::start().await;
    let (st, v) = w
        .call_as(None, Method::GET, "/api/openapi.json", None)
        .await;
    assert_eq!(st, 200);
    assert!(
        v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")),
        "{}",
        v["openapi"]
    );
    let paths = v["paths"].as_object().expect("paths");
    for p in [
        "/health",
        "/api/auth/login",
        "/api/programs",
        "/api/programs/{name}",
        "/api/programs/{name}/start",
        "/api/programs/{name}/stop",
        "/api/programs/{name}/restart",
        "/api/programs/{name}/kill",
        "/api/programs/{name}/events",
        "/api/programs/{name}/console",
        "/api/programs/{name}/console/stream",
        "/api/apply",
        "/api/users",
        "/api/tokens",
        "/api/tokens/{id}",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(v["components"]["schemas"]["ProgramSpec"].is_object());
    assert!(v["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn apply_a_programs_file_and_check_files_offline() {
    let w = Warden::start().await;
    let file = w.data_dir.join("programs.toml");
    std::fs::write(
        &file,
        "[[program]]\nname = \"a\"\ncommand = \"sleep\"\nargs = [\"100\"]\n\n[[program]]\nname = \"b\"\ncommand = \"true\"\n[program.restart]\npolicy = \"never\"\n",
    )
    .expect("write");
    let apply = |f: &std::path::Path| {
        std::process::Command::new(bin())
            .args(["apply"])
            .arg(f)
            .args(["--url", &w.url, "--token", &w.token])
            .output()
            .expect("apply")
    };
    let out = apply(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("created   a") && text.contains("created   b"),
        "{text}"
    );
    let text = String::from_utf8_lossy(&apply(&file).stdout).into_owned();
    assert!(
        text.contains("unchanged a") && text.contains("unchanged b"),
        "{text}"
    );
    let v = w.program("b").await;
    assert_eq!(v["restart"]["policy"], "never");

    // A mistyped key is reported with its line, before anything is sent.
    let bad = w.data_dir.join("bad.toml");
    std::fs::write(&bad, "[[program]]\nname = \"c\"\ncomand = \"x\"\n").expect("write");
    let out = apply(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("comand"), "{err}");

    // `config check` validates daemon config files without starting anything.
    let cfg = w.data_dir.join("w.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1\"\n[supervisor]\non_shutdown = \"sometimes\"\n",
    )
    .expect("write");
    let (st, _, err) = cli(
        &w.data_dir,
        &["config", "check", cfg.to_str().expect("utf8")],
        None,
    );
    assert!(!st.success());
    assert!(
        err.contains("w.toml") && err.contains("line 3") && err.contains("on_shutdown"),
        "{err}"
    );
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\n").expect("write");
    let (st, out, _) = cli(
        &w.data_dir,
        &["config", "check", cfg.to_str().expect("utf8")],
        None,
    );
    assert!(st.success() && out.contains("OK"), "{out}");
}

#[tokio::test]
async fn secret_named_env_values_are_masked_and_kept_on_edit() {
    let w = Warden::start().await;
    let mut spec = sh(
        "envy",
        "echo \"pw=$RCON_PASSWORD level=$LEVEL\"; exec sleep 1000",
    );
    spec["env"] = json!({"RCON_PASSWORD": "hunter2-secret", "LEVEL": "world"});
    spec["start_seconds"] = json!(0);
    w.create(spec).await;
    let shown = w.program("envy").await;
    assert_eq!(shown["env"]["RCON_PASSWORD"], "********", "{shown}");
    assert_eq!(shown["env"]["LEVEL"], "world", "{shown}");
    // Sending the shown definition back (as an edit form does) keeps the stored value.
    let mut edited = shown.clone();
    for k in [
        "state",
        "pid",
        "uptime_seconds",
        "restarts",
        "since_ms",
        "last_exit",
        "adopted",
    ] {
        edited.as_object_mut().expect("object").remove(k);
    }
    edited["display_name"] = json!("Envy");
    let (st, v) = w.put("/api/programs/envy", edited).await;
    assert!(st.is_success(), "{v}");
    w.post("/api/programs/envy/start", json!(null)).await;
    w.wait_state("envy", "running", Duration::from_secs(10))
        .await;
    let line = wait_until(Duration::from_secs(20), "the echo", || async {
        w.console("envy")
            .await
            .into_iter()
            .find(|l| l.starts_with("pw="))
    })
    .await;
    assert_eq!(line, "pw=hunter2-secret level=world");
}
