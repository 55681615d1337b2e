//! Per-program permissions end to end: a table of every endpoint with the permission it
//! needs, called by tokens holding no grant, each single permission, and each bundle
//! (as a grant on named programs and as a global role), on a program they were and were
//! not granted. Any call allowed that should be refused (or the reverse) fails. Then
//! list filtering, `/metrics`, and the WebSocket topics and feed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_tungstenite::tokio::connect_async;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const PERMS: [&str; 10] = [
    "view",
    "console",
    "control",
    "players",
    "files.read",
    "files.write",
    "backups",
    "backups.restore",
    "schedules",
    "define",
];

/// The bundles as the issue defines them, written out here (not taken from warden) so a
/// wrong bundle in warden fails the test.
fn bundle(name: &str) -> BTreeSet<&'static str> {
    match name {
        "none" => BTreeSet::new(),
        "viewer" => ["view"].into(),
        "operator" => [
            "view",
            "console",
            "control",
            "players",
            "files.read",
            "backups",
            "schedules",
        ]
        .into(),
        "admin" => PERMS.into(),
        other => panic!("no bundle {other}"),
    }
}

/// A caller under test: a token with a global `role` and `granted` permissions on the
/// programs `alpha` and `ghost-a` (and no others).
struct Who {
    label: String,
    role: &'static str,
    granted: BTreeSet<&'static str>,
    token: String,
}

impl Who {
    fn perms_on(&self, program: &str) -> BTreeSet<&'static str> {
        let mut p = bundle(self.role);
        if program == "alpha" || program == "ghost-a" {
            p.extend(self.granted.iter().copied());
        }
        p
    }
    fn everywhere(&self) -> BTreeSet<&'static str> {
        bundle(self.role)
    }
}

/// What an endpoint needs.
#[derive(Clone, Copy, Debug)]
enum Needs {
    /// A permission on the program in the path (or of the backup, restore, schedule).
    On(&'static str),
    /// A permission on every program.
    Everywhere(&'static str),
    /// The admin role.
    Admin,
    /// Any authenticated caller.
    Auth,
}

/// Which programs a row is called on: real ones (`alpha` granted, `beta` not) or missing
/// ones (`ghost-a` granted, `ghost-b` not) for calls that would destroy the fixture.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Real,
    Ghost,
    Global,
}

struct Row {
    method: Method,
    /// `{p}` program, `{b}` backup id, `{r}` restore id, `{s}` schedule.
    path: &'static str,
    body: Body,
    needs: Needs,
    target: Target,
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Multipart,
    Raw(&'static str),
}

fn row(method: Method, path: &'static str, body: Body, needs: Needs, target: Target) -> Row {
    Row {
        method,
        path,
        body,
        needs,
        target,
    }
}

fn table() -> Vec<Row> {
    use Body::{Json as J, None as N};
    use Method as M;
    use Needs::*;
    use Target::*;
    let j = |v: Value| J(v);
    vec![
        // Programs.
        row(M::GET, "/api/programs", N, Auth, Global),
        row(
            M::POST,
            "/api/programs",
            j(json!({"name": "{p}", "command": ""})),
            On("define"),
            Ghost,
        ),
        row(M::GET, "/api/programs/{p}", N, On("view"), Real),
        row(
            M::PUT,
            "/api/programs/{p}",
            j(json!({"name": "renamed", "command": "true"})),
            On("define"),
            Real,
        ),
        row(M::DELETE, "/api/programs/{p}", N, On("define"), Ghost),
        row(M::POST, "/api/programs/{p}/start", N, On("control"), Real),
        row(M::POST, "/api/programs/{p}/stop", N, On("control"), Real),
        row(M::POST, "/api/programs/{p}/restart", N, On("control"), Real),
        row(M::POST, "/api/programs/{p}/kill", N, On("control"), Ghost),
        row(M::GET, "/api/programs/{p}/events", N, On("view"), Real),
        row(M::GET, "/api/events?program={p}", N, On("view"), Real),
        row(M::GET, "/api/events", N, Auth, Global),
        row(M::GET, "/api/programs/{p}/console", N, On("console"), Real),
        row(
            M::POST,
            "/api/programs/{p}/console",
            j(json!({"line": "hi"})),
            On("console"),
            Real,
        ),
        row(
            M::GET,
            "/api/programs/{p}/console/stream",
            N,
            On("console"),
            Real,
        ),
        row(
            M::POST,
            "/api/apply",
            j(json!({"programs": []})),
            Admin,
            Global,
        ),
        // History for the dashboard's pictures, and definitions as TOML.
        row(
            M::GET,
            "/api/programs/{p}/availability",
            N,
            On("view"),
            Real,
        ),
        row(
            M::GET,
            "/api/programs/{p}/availability?range=7d",
            N,
            On("view"),
            Real,
        ),
        row(
            M::GET,
            "/api/programs/{p}/backup-sizes",
            N,
            On("view"),
            Real,
        ),
        row(
            M::GET,
            "/api/jobs/nojob/durations",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::GET,
            "/api/definitions/program/{p}/toml",
            N,
            On("view"),
            Real,
        ),
        row(
            M::GET,
            "/api/definitions/job/nojob/toml",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::POST,
            "/api/definitions/program/check",
            j(json!({"toml": "[[program]]\nname = \"x\"\n"})),
            Admin,
            Global,
        ),
        row(
            M::POST,
            "/api/definitions/program/import",
            j(json!({"toml": ""})),
            Admin,
            Global,
        ),
        row(
            M::GET,
            "/api/programs/{p}/wait?state=starting&timeout=1",
            N,
            On("view"),
            Ghost,
        ),
        // Games.
        row(
            M::POST,
            "/api/programs/{p}/rcon",
            j(json!({"command": "list"})),
            On("players"),
            Real,
        ),
        row(M::GET, "/api/programs/{p}/players", N, On("view"), Real),
        row(
            M::POST,
            "/api/programs/{p}/broadcast",
            j(json!({"message": "hi"})),
            On("players"),
            Real,
        ),
        row(M::GET, "/api/games/profiles", N, Auth, Global),
        // Metrics.
        row(M::GET, "/api/programs/{p}/metrics", N, On("view"), Real),
        row(
            M::GET,
            "/api/programs/{p}/metrics/export",
            N,
            On("view"),
            Real,
        ),
        row(
            M::POST,
            "/api/programs/{p}/metrics/import",
            Body::Raw("nonsense"),
            On("define"),
            Ghost,
        ),
        row(M::GET, "/api/system/stats", N, Auth, Global),
        row(M::GET, "/api/system/info", N, Auth, Global),
        row(M::GET, "/api/system/processes", N, Admin, Global),
        row(M::GET, "/api/system/about", N, Auth, Global),
        row(M::GET, "/metrics", N, Auth, Global),
        // Fleet.
        row(
            M::GET,
            "/api/fleet/prometheus-sd",
            N,
            Everywhere("view"),
            Global,
        ),
        row(M::GET, "/api/fleet/programs", N, Everywhere("view"), Global),
        // Checked at the hub before any node is asked (an unknown node: 404 when allowed).
        row(
            M::POST,
            "/api/fleet/nodes/nonode/programs/{p}/restart",
            N,
            On("control"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/fleet/nodes/nonode/programs/{p}/console",
            j(json!({"line": "x"})),
            On("console"),
            Ghost,
        ),
        row(
            M::GET,
            "/api/fleet/nodes/nonode/programs/{p}/backups",
            N,
            On("view"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/fleet/nodes/nonode/programs/{p}/backups",
            N,
            On("backups"),
            Ghost,
        ),
        row(
            M::GET,
            "/api/fleet/nodes/nonode/programs/{p}/files?path=",
            N,
            On("files.read"),
            Ghost,
        ),
        row(
            M::GET,
            "/api/fleet/nodes/nonode/programs/{p}/files/text?path=a.txt",
            N,
            On("files.read"),
            Ghost,
        ),
        // Moves: administrators only, on either side.
        row(
            M::POST,
            "/api/fleet/move",
            j(json!({"program": "nothing", "to": "nonode"})),
            Admin,
            Global,
        ),
        row(
            M::POST,
            "/api/fleet/incoming",
            Body::Raw("nonsense"),
            Admin,
            Global,
        ),
        // Files.
        row(M::GET, "/api/programs/{p}/files", N, On("files.read"), Real),
        row(
            M::GET,
            "/api/programs/{p}/files/text?path=a.txt",
            N,
            On("files.read"),
            Real,
        ),
        row(
            M::PUT,
            "/api/programs/{p}/files/text",
            j(json!({"path": "a.txt", "text": "x"})),
            On("files.write"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/programs/{p}/files/mkdir",
            j(json!({"path": "d"})),
            On("files.write"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/programs/{p}/files/move",
            j(json!({"from": "a.txt", "to": "b.txt"})),
            On("files.write"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/programs/{p}/files/extract",
            j(json!({"path": "a.zip", "to": "a"})),
            On("files.write"),
            Ghost,
        ),
        row(
            M::DELETE,
            "/api/programs/{p}/files?path=a.txt",
            N,
            On("files.write"),
            Ghost,
        ),
        row(
            M::GET,
            "/api/programs/{p}/files/download?path=a.txt",
            N,
            On("files.read"),
            Real,
        ),
        row(
            M::POST,
            "/api/programs/{p}/files/upload?path=",
            Body::Multipart,
            On("files.write"),
            Ghost,
        ),
        // Backups.
        row(
            M::GET,
            "/api/programs/{p}/backup-settings",
            N,
            On("view"),
            Real,
        ),
        row(
            M::PUT,
            "/api/programs/{p}/backup-settings",
            j(json!({})),
            On("define"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/programs/{p}/backup-settings/preview",
            j(json!({"include": ["**"]})),
            On("files.read"),
            Real,
        ),
        row(M::GET, "/api/programs/{p}/backups", N, On("view"), Real),
        row(
            M::POST,
            "/api/programs/{p}/backups",
            N,
            On("backups"),
            Ghost,
        ),
        row(M::GET, "/api/programs/{p}/restores", N, On("view"), Real),
        row(M::GET, "/api/backups/{b}", N, On("view"), Real),
        row(M::POST, "/api/backups/{b}/cancel", N, On("backups"), Real),
        row(M::POST, "/api/backups/{b}/verify", N, On("backups"), Real),
        row(M::GET, "/api/backups/{b}/manifest", N, On("view"), Real),
        row(
            M::GET,
            "/api/backups/{b}/download",
            N,
            On("files.read"),
            Real,
        ),
        row(
            M::POST,
            "/api/backups/{b}/restore",
            N,
            On("backups.restore"),
            Real,
        ),
        row(M::GET, "/api/restores/{r}", N, On("view"), Real),
        row(
            M::POST,
            "/api/restores/{r}/discard",
            N,
            On("backups.restore"),
            Real,
        ),
        // Schedules and jobs.
        row(M::GET, "/api/schedules", N, Auth, Global),
        row(
            M::POST,
            "/api/schedules",
            j(json!({"name": "n", "trigger": "every 1h", "tasks": []})),
            Admin,
            Global,
        ),
        row(M::GET, "/api/schedules/{s}", N, On("view"), Real),
        row(
            M::PUT,
            "/api/schedules/{s}",
            j(json!({"name": "other", "trigger": "every 1h", "tasks": []})),
            Admin,
            Real,
        ),
        row(M::DELETE, "/api/schedules/nothing", N, Admin, Global),
        row(M::POST, "/api/schedules/{s}/run", N, On("schedules"), Real),
        row(
            M::POST,
            "/api/schedules/{s}/cancel",
            N,
            On("schedules"),
            Real,
        ),
        row(M::GET, "/api/schedules/{s}/runs", N, On("view"), Real),
        row(
            M::POST,
            "/api/triggers/preview",
            j(json!({"trigger": "every 1h"})),
            Auth,
            Global,
        ),
        row(M::GET, "/api/jobs", N, Everywhere("view"), Global),
        row(
            M::POST,
            "/api/jobs",
            j(json!({"name": "Bad Name", "steps": []})),
            Admin,
            Global,
        ),
        row(M::GET, "/api/jobs/nojob", N, Everywhere("view"), Global),
        row(
            M::PUT,
            "/api/jobs/nojob",
            j(json!({"name": "other", "steps": []})),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/jobs/nojob", N, Admin, Global),
        row(
            M::POST,
            "/api/jobs/nojob/run",
            N,
            Everywhere("schedules"),
            Global,
        ),
        row(
            M::POST,
            "/api/jobs/nojob/cancel",
            N,
            Everywhere("schedules"),
            Global,
        ),
        row(
            M::GET,
            "/api/jobs/nojob/runs",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::GET,
            "/api/jobs/nojob/runs/1",
            N,
            Everywhere("view"),
            Global,
        ),
        // Alerts (admin's; viewable by those who see every program).
        row(
            M::GET,
            "/api/alerts/channels",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::POST,
            "/api/alerts/channels",
            j(json!({"name": "Bad Name", "target": {"kind": "webhook", "url": "x"}})),
            Admin,
            Global,
        ),
        row(
            M::GET,
            "/api/alerts/channels/nochan",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::PUT,
            "/api/alerts/channels/nochan",
            j(json!({"name": "other", "target": {"kind": "webhook", "url": "x"}})),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/alerts/channels/nochan", N, Admin, Global),
        row(
            M::POST,
            "/api/alerts/channels/nochan/test",
            N,
            Admin,
            Global,
        ),
        row(
            M::GET,
            "/api/alerts/channels/nochan/deliveries",
            N,
            Everywhere("view"),
            Global,
        ),
        row(M::GET, "/api/alerts/rules", N, Everywhere("view"), Global),
        row(
            M::POST,
            "/api/alerts/rules",
            j(json!({"name": "Bad Name", "condition": "crashed >= 1 in 1m"})),
            Admin,
            Global,
        ),
        row(
            M::GET,
            "/api/alerts/rules/norule",
            N,
            Everywhere("view"),
            Global,
        ),
        row(
            M::PUT,
            "/api/alerts/rules/norule",
            j(json!({"name": "other", "condition": "crashed >= 1 in 1m"})),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/alerts/rules/norule", N, Admin, Global),
        row(M::GET, "/api/alerts/status", N, Everywhere("view"), Global),
        // Installing servers from templates (admin: an install defines a program).
        row(M::GET, "/api/templates", N, Auth, Global),
        row(
            M::POST,
            "/api/install",
            j(json!({"template": "no-such-template", "name": "x", "values": {}})),
            Admin,
            Global,
        ),
        row(M::GET, "/api/install/999999", N, Admin, Global),
        row(
            M::PUT,
            "/api/install/steam-account",
            j(json!({"password": "x"})),
            Admin,
            Global,
        ),
        // Updates of installed servers (define: an update runs new code).
        row(M::GET, "/api/programs/{p}/update", N, On("view"), Real),
        row(
            M::POST,
            "/api/programs/{p}/update/check",
            j(json!({})),
            On("define"),
            Ghost,
        ),
        row(
            M::POST,
            "/api/programs/{p}/update/apply",
            j(json!({})),
            On("define"),
            Ghost,
        ),
        // Users, tokens, grants, audit.
        row(M::GET, "/api/users", N, Admin, Global),
        row(
            M::POST,
            "/api/users",
            j(json!({"name": "bad name", "password": "x", "role": "viewer"})),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/users/nobody", N, Admin, Global),
        row(
            M::PUT,
            "/api/users/nobody/password",
            j(json!({"password": "long enough pw"})),
            Admin,
            Global,
        ),
        row(M::GET, "/api/tokens", N, Admin, Global),
        row(
            M::POST,
            "/api/tokens",
            j(json!({"name": "", "role": "viewer"})),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/tokens/nosuchtoken", N, Admin, Global),
        row(M::GET, "/api/grants", N, Admin, Global),
        row(
            M::PUT,
            "/api/grants",
            j(
                json!({"subject_kind": "user", "subject": "nobody", "scope": {"kind": "all"}, "perms": []}),
            ),
            Admin,
            Global,
        ),
        row(M::DELETE, "/api/grants/999999", N, Admin, Global),
        row(M::GET, "/api/audit", N, Admin, Global),
        row(M::GET, "/api/auth/me", N, Auth, Global),
        row(M::GET, "/api/auth/2fa", N, Auth, Global),
        row(M::POST, "/api/auth/2fa/enrol", N, Auth, Global),
        row(
            M::POST,
            "/api/auth/2fa/confirm",
            j(json!({"code": "000000"})),
            Auth,
            Global,
        ),
        row(
            M::POST,
            "/api/auth/2fa/disable",
            j(json!({"user": "nobody"})),
            Admin,
            Global,
        ),
        row(M::GET, "/api/auth/sessions", N, Auth, Global),
        row(M::DELETE, "/api/auth/sessions/nosession", N, Auth, Global),
        row(M::GET, "/api/auth/policy", N, Admin, Global),
        row(
            M::PUT,
            "/api/auth/policy",
            j(json!({"require_2fa": false})),
            Admin,
            Global,
        ),
        // Last: these destroy what the rows above use.
        row(
            M::DELETE,
            "/api/backups/{b}",
            N,
            On("backups.restore"),
            Real,
        ),
    ]
}

/// Paths not in the table: no authorisation to test (the session state answers everyone;
/// the first administrator is created with the one-time setup code, tested in web_setup).
const UNGUARDED: [&str; 10] = [
    "/health",
    "/api/setup",
    "/api/setup/admin",
    "/api/auth/login",
    "/api/auth/login/code",
    "/api/auth/login/enrol",
    "/api/auth/logout",
    "/api/auth/session",
    "/api/ws",
    "/api/openapi.json",
];

/// The row's path template as the OpenAPI document writes it.
fn template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = Vec::new();
    for seg in path.split('/') {
        out.push(match seg {
            "{p}" => "{name}",
            "{s}" => "{name}",
            "{b}" | "{r}" => "{id}",
            "nothing" | "nojob" | "nochan" | "norule" | "nobody" => "{name}",
            "nonode" => "{node}",
            "nosuchtoken" | "nosession" | "999999" | "1" => "{id}",
            s => s,
        });
    }
    // Definitions as TOML: one route per action for every kind.
    if out.starts_with(&["", "api", "definitions"]) && out.len() >= 5 {
        out[3] = "{kind}";
    }
    // A fleet node's program actions: one route for start, stop and restart.
    if out.starts_with(&["", "api", "fleet", "nodes"])
        && out.len() == 8
        && matches!(out[7], "start" | "stop" | "restart")
    {
        out[7] = "{action}";
    }
    out.join("/")
}

async fn status(w: &Warden, token: &str, method: Method, path: &str, body: &Body) -> StatusCode {
    // A fresh connection per call: responses are dropped unread (a console stream never
    // ends), and a pooled connection closed by that could fail the next request.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut req = http
        .request(method, format!("{}{path}", w.url))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20));
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Raw(s) => req.body(*s),
        Body::Multipart => req.multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("u.txt"),
        )),
    };
    // Only the head: a console stream never ends.
    let resp = req.send().await.expect("request");
    resp.status()
}

async fn token(w: &Warden, name: &str, role: &str) -> (String, String) {
    let (st, v) = w
        .post("/api/tokens", json!({"name": name, "role": role}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "token {name}: {v}");
    (
        v["token"].as_str().expect("token").to_string(),
        v["public_id"].as_str().expect("public id").to_string(),
    )
}

async fn grant(w: &Warden, public_id: &str, program: &str, perms: &[&str]) {
    let (st, v) = w
        .put(
            "/api/grants",
            json!({"subject_kind": "token", "subject": public_id,
                   "scope": {"kind": "program", "value": program}, "perms": perms}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "grant: {v}");
}

/// Everyone under test: no grant, each permission, each bundle as a grant, each role.
async fn callers(w: &Warden) -> Vec<Who> {
    let mut specs: Vec<(String, &'static str, Vec<&'static str>)> =
        vec![("no grant".into(), "none", vec![])];
    for p in PERMS {
        specs.push((format!("grant {p}"), "none", vec![p]));
    }
    for b in ["viewer", "operator", "admin"] {
        specs.push((format!("grant bundle {b}"), "none", vec![b]));
        specs.push((format!("role {b}"), b, vec![]));
    }
    let mut out = Vec::new();
    for (i, (label, role, perms)) in specs.into_iter().enumerate() {
        let (tok, public_id) = token(w, &format!("m{i}"), role).await;
        let mut granted = BTreeSet::new();
        if !perms.is_empty() {
            for program in ["alpha", "ghost-a"] {
                grant(w, &public_id, program, &perms).await;
            }
            for p in &perms {
                match *p {
                    "viewer" | "operator" | "admin" => granted.extend(bundle(p)),
                    p => {
                        granted.insert(PERMS.into_iter().find(|x| *x == p).expect("perm"));
                    }
                }
            }
        }
        out.push(Who {
            label,
            role,
            granted,
            token: tok,
        });
    }
    out
}

struct Fixture {
    w: Warden,
    backups: BTreeMap<&'static str, i64>,
    restores: BTreeMap<&'static str, i64>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Programs `alpha` and `beta` (each with a file, a finished backup, a restore and a
/// schedule), stopped.
async fn fixture() -> Fixture {
    let w = Warden::start().await;
    let mut backups = BTreeMap::new();
    let mut restores = BTreeMap::new();
    let mut dirs = Vec::new();
    for name in ["alpha", "beta"] {
        let cwd = tempfile::tempdir().expect("cwd");
        std::fs::write(cwd.path().join("a.txt"), "hello").expect("write");
        let dest = tempfile::tempdir().expect("dest");
        let mut spec = sh(name, "sleep 600");
        spec["cwd"] = json!(cwd.path());
        w.create(spec).await;
        let (st, v) = w
            .put(
                &format!("/api/programs/{name}/backup-settings"),
                json!({"destination": dest.path()}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "settings: {v}");
        let (st, v) = w
            .post(&format!("/api/programs/{name}/backups"), json!(null))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "backup: {v}");
        let id = v["id"].as_i64().expect("id");
        wait_until(Duration::from_secs(30), "backup finished", || async {
            let (_, v) = w.get(&format!("/api/backups/{id}")).await;
            (v["status"] != "running").then_some(())
        })
        .await;
        let (st, v) = w
            .post(&format!("/api/backups/{id}/restore"), json!(null))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "restore: {v}");
        let rid = v["id"].as_i64().expect("restore id");
        wait_until(Duration::from_secs(30), "restore finished", || async {
            let (_, v) = w.get(&format!("/api/restores/{rid}")).await;
            (v["status"] != "running").then_some(())
        })
        .await;
        backups.insert(name, id);
        restores.insert(name, rid);
        let (st, v) = w
            .post(
                "/api/schedules",
                json!({"name": format!("s-{name}"), "trigger": "0 0 1 1 *", "enabled": false,
                       "tasks": [{"action": {"kind": "start", "program": name}}]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "schedule: {v}");
        dirs.push(cwd);
        dirs.push(dest);
    }
    Fixture {
        w,
        backups,
        restores,
        _dirs: dirs,
    }
}

fn allowed(who: &Who, needs: Needs, program: &str) -> bool {
    match needs {
        Needs::On(p) => who.perms_on(program).contains(p),
        Needs::Everywhere(p) => who.everywhere().contains(p),
        Needs::Admin => who.role == "admin",
        Needs::Auth => true,
    }
}

#[tokio::test]
async fn every_endpoint_checks_the_permission_on_its_program() {
    let f = fixture().await;
    let w = &f.w;
    let who = callers(w).await;
    let rows = table();

    // Every guarded route of the API is in the table.
    let (_, doc) = w.get("/api/openapi.json").await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if !UNGUARDED.contains(&path.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), template(r.path)))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "endpoints missing from the matrix: {missing:?}"
    );

    let mut wrong = Vec::new();
    let mut calls = 0;
    for r in &rows {
        let targets: &[&str] = match r.target {
            Target::Real => &["alpha", "beta"],
            Target::Ghost => &["ghost-a", "ghost-b"],
            Target::Global => &["-"],
        };
        for program in targets {
            let (b, rs) = match *program {
                "beta" => (f.backups["beta"], f.restores["beta"]),
                _ => (f.backups["alpha"], f.restores["alpha"]),
            };
            let path = r
                .path
                .replace("{p}", program)
                .replace("{s}", &format!("s-{program}"))
                .replace("{b}", &b.to_string())
                .replace("{r}", &rs.to_string());
            // Refused callers first: an allowed destructive call must not change what
            // the refused ones see.
            let mut order: Vec<&Who> = who.iter().collect();
            order.sort_by_key(|x| allowed(x, r.needs, program));
            for x in order {
                let expect = allowed(x, r.needs, program);
                let body = match &r.body {
                    Body::Json(v) => Body::Json(
                        serde_json::from_str(&v.to_string().replace("{p}", program)).expect("json"),
                    ),
                    b => b.clone(),
                };
                let st = status(w, &x.token, r.method.clone(), &path, &body).await;
                calls += 1;
                assert_ne!(
                    st,
                    StatusCode::UNAUTHORIZED,
                    "{} {path} as {}",
                    r.method,
                    x.label
                );
                let got = st != StatusCode::FORBIDDEN;
                if got != expect {
                    wrong.push(format!(
                        "{} {path} as {}: expected {}, got {st}",
                        r.method,
                        x.label,
                        if expect { "allowed" } else { "refused" }
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn names(v: &Value, list: &str, key: &str) -> BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} in {v}"))
        .iter()
        .filter_map(|x| x[key].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn lists_metrics_and_the_live_feed_show_only_granted_programs() {
    let w = Warden::start().await;
    for name in ["alpha", "beta"] {
        w.create(sh(name, "while true; do echo tick-$0; sleep 0.2; done"))
            .await;
    }
    let (viewer, vid) = token(&w, "v", "none").await;
    grant(&w, &vid, "alpha", &["view"]).await;
    let (consoler, cid) = token(&w, "c", "none").await;
    grant(&w, &cid, "alpha", &["view", "console"]).await;
    let (nobody, _) = token(&w, "n", "none").await;
    for name in ["alpha", "beta"] {
        let (st, v) = w
            .post(&format!("/api/programs/{name}/start"), json!(null))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        w.wait_state(name, "running", Duration::from_secs(20)).await;
    }
    let alpha: BTreeSet<String> = ["alpha".to_string()].into();

    // Lists.
    for (tok, want) in [(&viewer, alpha.clone()), (&nobody, BTreeSet::new())] {
        let (_, v) = w
            .call_as(Some(tok), Method::GET, "/api/programs", None)
            .await;
        assert_eq!(names(&v, "programs", "name"), want);
        let (_, v) = w
            .call_as(Some(tok), Method::GET, "/api/events?limit=500", None)
            .await;
        let seen: BTreeSet<String> = names(&v, "events", "program");
        assert!(
            seen.is_subset(&want),
            "events of {seen:?}, may see {want:?}"
        );
    }
    let (_, v) = w
        .call_as(Some(&viewer), Method::GET, "/api/events?limit=500", None)
        .await;
    assert!(names(&v, "events", "program").contains("alpha"));

    // /metrics: the admin sees both programs; the viewer alpha only.
    let scrape = |tok: String| {
        let w = &w;
        async move {
            let (_, v) = w.call_as(Some(&tok), Method::GET, "/metrics", None).await;
            v.as_str().unwrap_or_default().to_string()
        }
    };
    wait_until(
        Duration::from_secs(30),
        "samples of both programs",
        || async {
            let text = scrape(w.token.clone()).await;
            (text.contains("program=\"alpha\"") && text.contains("program=\"beta\"")).then_some(())
        },
    )
    .await;
    let text = scrape(viewer.clone()).await;
    assert!(text.contains("program=\"alpha\""), "{text}");
    assert!(!text.contains("program=\"beta\""), "{text}");
    assert!(!scrape(nobody.clone()).await.contains("program=\""));

    // WebSocket topics: console needs `console`, samples of one program `view`.
    let url = w.url.replacen("http://", "ws://", 1);
    let open = |tok: &str| {
        let url = format!("{url}/api/ws?token={tok}");
        async move { connect_async(url).await.expect("connect").0 }
    };
    let subscribe = |topics: Value| json!({"op": "subscribe", "topics": topics}).to_string();
    async fn reply<S>(s: &mut S) -> Value
    where
        S: StreamExt<Item = Result<Message, async_tungstenite::tungstenite::Error>> + Unpin,
    {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .expect("a reply in time")
                .expect("open")
                .expect("message");
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if matches!(v["type"].as_str(), Some("subscribed" | "error")) {
                    return v;
                }
            }
        }
    }
    for (tok, topic, ok) in [
        (&viewer, "console:alpha", false),
        (&consoler, "console:alpha", true),
        (&consoler, "console:beta", false),
        (&viewer, "samples:alpha", true),
        (&viewer, "samples:beta", false),
        (&nobody, "programs", true),
    ] {
        let mut s = open(tok).await;
        s.send(Message::text(subscribe(json!([topic]))))
            .await
            .expect("send");
        let v = reply(&mut s).await;
        assert_eq!(v["type"] == "subscribed", ok, "{topic}: {v}");
    }

    // The feed: a caller subscribed to `samples` and `programs` gets alpha's events and
    // never beta's, although both print and are sampled.
    let mut s = open(&viewer).await;
    s.send(Message::text(subscribe(json!([
        "samples", "programs", "events"
    ]))))
    .await
    .expect("send");
    let mut seen_alpha = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen_alpha < 3 {
        let m = tokio::time::timeout_at(deadline, s.next())
            .await
            .expect("alpha's samples in time")
            .expect("open")
            .expect("message");
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).expect("json");
        let program = v["program"].as_str().unwrap_or_default();
        assert_ne!(
            program, "beta",
            "beta's event reached a caller without view: {v}"
        );
        if program == "alpha" {
            seen_alpha += 1;
        }
    }
}

#[tokio::test]
async fn names_are_clean_and_failed_logins_never_log_the_name() {
    let (w, log) = start_logged("warn").await;
    for bad in [
        "a\u{0}b",
        "two\nlines",
        "\u{1b}[31mred",
        "evil\u{202e}txt.exe",
    ] {
        let mut spec = sh("p", "true");
        spec["display_name"] = json!(bad);
        let (st, v) = w.post("/api/programs", spec).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {v}");
        assert!(v.to_string().contains("display_name"), "{v}");
    }
    let mut spec = sh("p", "true");
    spec["display_name"] = json!("Valheim — Friends 🎮");
    w.create(spec).await;

    let typed = "hunter2-typed-into-the-name";
    let (st, _) = w
        .call_as(
            None,
            Method::POST,
            "/api/auth/login",
            Some(json!({"username": typed, "password": "whatever-pw"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let line = wait_until(Duration::from_secs(10), "the failed-login line", || async {
        file_lines(&log)
            .into_iter()
            .find(|l| l.contains("failed login"))
    })
    .await;
    assert!(line.contains("user_hash"), "{line}");
    let all = file_lines(&log).join("\n");
    assert!(!all.contains(typed), "the typed name reached the log");

    // Logins are in the audit log, a failed one without the typed name.
    let (st, _, err) = cli(
        &w.data_dir,
        &["user", "add", "ann", "--role", "viewer", "--password-stdin"],
        Some("ann-password-1"),
    );
    assert!(st.success(), "{err}");
    let (st, _) = w
        .call_as(
            None,
            Method::POST,
            "/api/auth/login",
            Some(json!({"username": "ann", "password": "ann-password-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Audit records are written behind the answer: wait for both.
    let audit = wait_until(Duration::from_secs(20), "both login records", || async {
        let (_, audit) = w.get("/api/audit?action=auth.login").await;
        (audit["entries"].as_array().map_or(0, Vec::len) >= 2).then_some(audit)
    })
    .await;
    let rows = audit["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        !audit.to_string().contains(typed),
        "the typed name reached the audit log"
    );
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "ann" && r["result"] == "ok"),
        "{audit}"
    );
    assert!(
        rows.iter().any(
            |r| r["target"].as_str().is_some_and(|t| t.starts_with("user#"))
                && r["result"].as_str().is_some_and(|x| x.starts_with("401"))
        ),
        "{audit}"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_proxy_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let (st, _, err) = cli(
        &data,
        &["user", "add", "ann", "--role", "viewer", "--password-stdin"],
        Some("a long password"),
    );
    assert!(st.success(), "{err}");
    let login = |w: &Warden| {
        let req = w
            .http
            .post(format!("{}/api/auth/login", w.url))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"username": "ann", "password": "a long password"}));
        async move {
            let resp = req.send().await.expect("login");
            assert_eq!(resp.status(), StatusCode::OK);
            resp.headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        }
    };
    let mut w = Warden::start_in(&data, "").await;
    let cookie = login(&w).await;
    assert!(
        !cookie.contains("Secure"),
        "untrusted proxy believed: {cookie}"
    );
    w.terminate();
    let w = Warden::start_in(&data, "[api]\ntrusted_proxies = [\"127.0.0.1\"]").await;
    let cookie = login(&w).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
}
