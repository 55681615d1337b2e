//! Definitions as TOML in the dashboard: a program's Export is the file `warden apply`
//! reads (the CLI applies it unchanged), Import checks pasted TOML and names each problem
//! with its line in the user's language, then saves it as `warden apply` would; the
//! program round-trips under a new name with every field kept.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::web::{Ui, admin_seeing};
use crate::web_korean::english_words;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn paste_and_check(ui: &Ui, text: &str) {
    ui.set_value("#toml-text", text).await;
    ui.click("[data-toml-check]").await;
}

/// The exported text with the name changed, new arguments, and optionally a bad key.
fn edited(export: &str, bad_key: bool) -> String {
    let mut out = String::new();
    for line in export.lines() {
        if line.starts_with("name = ") {
            out.push_str("name = \"rt2\"\n");
            if bad_key {
                out.push_str("colour = \"red\"\n");
            }
        } else if line.starts_with("args = ") {
            out.push_str("args = [\"2000\"]\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_program_round_trips_through_toml() {
    let w = Warden::start().await;
    w.create(json!({
        "name": "rt", "display_name": "Round trip", "command": "sleep", "args": ["1000"],
        "env": {"MODE": "test"}, "tags": ["blue"], "start_seconds": 2,
        "restart": {"policy": "always", "max_failed_starts": 7},
        "stop": {"signal": "SIGINT", "timeout_seconds": 9},
    }))
    .await;
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "tidy", "steps": [{"name": "sweep", "command": "true"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // The export is a programs file the CLI applies as it is.
    let (st, v) = w.get("/api/definitions/program/rt/toml").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let export = v["toml"].as_str().expect("toml").to_string();
    assert!(export.starts_with("[[program]]"), "{export}");
    assert_eq!(v["file_name"], "rt.program.toml");
    let file = w.data_dir.join("rt.program.toml");
    std::fs::write(&file, &export).expect("write export");
    let out = Command::new(bin())
        .args(["apply", &file.to_string_lossy()])
        .env("WARDEN_URL", &w.url)
        .env("WARDEN_TOKEN", &w.token)
        .output()
        .expect("warden apply");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("unchanged") && said.contains("rt"),
        "warden apply of the export: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A job exports and imports back too.
    let (st, v) = w.get("/api/definitions/job/tidy/toml").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, r) = w
        .post("/api/definitions/job/import", json!({"toml": v["toml"]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["updated"], json!(["tidy"]), "{r}");
    // A schedule too.
    let (st, v) = w
        .post(
            "/api/schedules",
            json!({"name": "nightly", "trigger": "0 4 * * *", "timezone": "Asia/Seoul",
                   "tasks": [{"action": {"kind": "job", "job": "tidy"}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = w.get("/api/definitions/schedule/nightly/toml").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["toml"]
            .as_str()
            .is_some_and(|t| t.contains("trigger = \"0 4 * * *\"")),
        "{v}"
    );
    let (st, r) = w
        .post(
            "/api/definitions/schedule/import",
            json!({"toml": v["toml"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["updated"], json!(["nightly"]), "{r}");
    // A channel's export masks its URL: importing it back asks for the real one.
    let (st, v) = w
        .post(
            "/api/alerts/channels",
            json!({"name": "hooks", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/secret-path"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = w.get("/api/definitions/channel/hooks/toml").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let text = v["toml"].as_str().expect("toml").to_string();
    assert!(!text.contains("secret-path"), "{text}");
    let (st, r) = w
        .post("/api/definitions/channel/check", json!({"toml": text}))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["problems"][0]["code"], "masked_secret", "{r}");
    assert_eq!(r["problems"][0]["field"], "target.url", "{r}");
    let fixed = text.replace(
        r#"url = "http://127.0.0.1:9/***""#,
        r#"url = "http://127.0.0.1:9/secret-path""#,
    );
    let (st, r) = w
        .post("/api/definitions/channel/import", json!({"toml": fixed}))
        .await;
    assert_eq!(st, StatusCode::OK, "{text} {r}");
    let (st, _) = w.get("/api/definitions/program/nothing/toml").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, r) = w
        .post(
            "/api/definitions/program/import",
            json!({"toml": edited(&export, true)}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");

    let (browsing, ui) = admin_seeing(&w, "rt").await;

    // Export on the program's page shows the same text.
    ui.go("#/p/rt", "!!document.querySelector('[data-export-toml]')")
        .await;
    ui.click("[data-export-toml='program:rt']").await;
    ui.wait(
        "!!document.querySelector('[data-toml-export]')",
        Duration::from_secs(10),
        "the exported TOML",
    )
    .await;
    let shown: String = ui
        .eval("document.querySelector('[data-toml-export]').textContent")
        .await;
    assert_eq!(shown, export);
    ui.shot("toml-export").await;
    ui.click("[data-toml-close]").await;

    // Import: a bad key is named with its line, in English.
    ui.go(
        "#/",
        "!!document.querySelector('[data-import-toml=program]')",
    )
    .await;
    ui.click("[data-import-toml=program]").await;
    paste_and_check(&ui, &edited(&export, true)).await;
    ui.wait(
        "!!document.querySelector('[data-toml-problems] [data-problem-code=unknown_field]')",
        Duration::from_secs(10),
        "the unknown key",
    )
    .await;
    let bad_line = edited(&export, true)
        .lines()
        .position(|l| l.starts_with("colour"))
        .expect("the bad line")
        + 1;
    let (field, line, text): (String, String, String) = ui
        .eval("(() => { const p = document.querySelector('[data-problem-code=unknown_field]'); \
               return [p.dataset.problemField, p.dataset.problemLine, p.querySelector('[data-problem-text]').textContent]; })()")
        .await;
    assert_eq!(field, "colour");
    assert_eq!(line, bad_line.to_string());
    assert_eq!(
        text,
        format!("Line {bad_line}, column 1: unknown field colour.")
    );
    ui.shot("toml-import-problem").await;

    // Fixed, it checks clean and imports as a new program with every field kept.
    paste_and_check(&ui, &edited(&export, false)).await;
    ui.wait(
        "(document.querySelector('[data-toml-ok]') || {}).textContent === 'Ready to import: rt2'",
        Duration::from_secs(10),
        "the clean check",
    )
    .await;
    ui.click("[data-toml-save]").await;
    ui.wait(
        "!!document.querySelector('[data-program=rt2]') && !document.querySelector('[data-toml-import]')",
        Duration::from_secs(10),
        "the imported program",
    )
    .await;
    let a = w.program("rt").await;
    let b = w.program("rt2").await;
    assert_eq!(b["args"], json!(["2000"]), "{b}");
    for key in [
        "display_name",
        "command",
        "env",
        "tags",
        "start_seconds",
        "restart",
        "stop",
    ] {
        assert_eq!(a[key], b[key], "{key} of the imported program");
    }
    assert_ne!(a["restart"], Value::Null, "{a}");

    // In Korean the problem reads in Korean.
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "document.documentElement.lang === 'ko' && !!document.querySelector('[data-import-toml=program]')",
        Duration::from_secs(15),
        "the Korean overview",
    )
    .await;
    ui.click("[data-import-toml=program]").await;
    paste_and_check(&ui, &edited(&export, true)).await;
    ui.wait(
        "!!document.querySelector('[data-toml-problems] [data-problem-code=unknown_field]')",
        Duration::from_secs(10),
        "the unknown key in Korean",
    )
    .await;
    let text: String = ui
        .eval("document.querySelector('[data-problem-code=unknown_field] [data-problem-text]').textContent")
        .await;
    assert_eq!(
        text,
        format!("{bad_line}번째 줄 1번째 칸: 알 수 없는 항목 colour.")
    );
    let found = english_words(
        &ui,
        &["rt", "rt2", "admin", "t-admin", "Round", "trip", "blue"],
    )
    .await;
    assert!(found.is_empty(), "English in the Korean import: {found:?}");
    ui.shot("toml-import-ko").await;

    browsing.finish(&ui).await;
}
