//! Failures say why: a command that cannot be resolved is refused on save (422 naming the
//! field), one that disappears later fails its start at once with a `spawn_failed`
//! reason (no retries), `warden ctl start` exits non-zero printing that reason, and the
//! dashboard shows it in the list and on the program page, in English and Korean.

use std::time::Duration;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, add_user, finish_clean, login_seeing, open_browser};
use reqwest::StatusCode;
use serde_json::json;

fn ctl(w: &Warden, args: &[&str]) -> (bool, String, String) {
    ctl_at(&w.url, &w.token, args)
}

#[tokio::test]
async fn an_unresolvable_command_is_refused_on_save() {
    let w = Warden::start().await;
    let (st, v) = w
        .post(
            "/api/programs",
            json!({"name": "typo", "command": "/usr/bin/no-such-tool-x1"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "command", "{v}");
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("command not found: /usr/bin/no-such-tool-x1"),
        "{v}"
    );
    let (st, v) = w
        .post(
            "/api/programs",
            json!({"name": "typo", "command": "no-such-tool-x1"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["code"], "command_not_found", "{v}");
    assert_eq!(
        v["error"]["details"][0]["params"]["value"], "no-such-tool-x1",
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("PATH"),
        "{v}"
    );
    // A script without the execute bit is named as such.
    let script = w.data_dir.join("not-exec.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("script");
    let (st, v) = w
        .post(
            "/api/programs",
            json!({"name": "noexec", "command": script.to_string_lossy()}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("not executable"), "{v}");
    // Nothing was stored.
    let (st, _) = w.get("/api/programs/typo").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Updates are checked the same way.
    w.create(json!({"name": "ok", "command": "sleep", "args": ["1"]}))
        .await;
    let (st, v) = w
        .put(
            "/api/programs/ok",
            json!({"name": "ok", "command": "/nope/sleep"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vanished_command_fails_the_start_at_once_and_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let w = Warden::start().await;
    let tool = w.data_dir.join("tool.sh");
    std::fs::write(&tool, "#!/bin/sh\nexec sleep 1000\n").expect("tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tool_path = tool.to_string_lossy().into_owned();
    w.create(json!({"name": "gone", "command": tool_path, "start_seconds": 1}))
        .await;
    w.create(json!({"name": "fine", "command": "sleep", "args": ["1000"], "start_seconds": 1}))
        .await;

    // A program that reaches running: ctl start waits for it and succeeds.
    let (ok, out, err) = ctl(&w, &["start", "fine"]);
    assert!(ok, "{out}{err}");
    assert_eq!(w.program("fine").await["state"], "running");

    std::fs::remove_file(&tool).expect("remove tool");
    let (ok, out, err) = ctl(&w, &["start", "gone"]);
    assert!(!ok, "ctl start of a vanished command succeeded: {out}");
    assert!(
        err.contains("gone did not start: command not found:") && err.contains("tool.sh"),
        "{err}"
    );
    let v = w.program("gone").await;
    assert_eq!(v["state"], "fatal", "{v}");
    assert_eq!(v["restarts"], 0, "retried a spawn that cannot work: {v}");
    assert_eq!(v["reason"]["code"], "spawn_failed", "{v}");
    assert_eq!(v["reason"]["cause"], "command_not_found", "{v}");
    assert_eq!(v["reason"]["subject"], tool_path.as_str(), "{v}");
    // `--no-wait` returns once the start is accepted.
    let (ok, _, err) = ctl(&w, &["start", "--no-wait", "gone"]);
    assert!(ok, "{err}");

    // The dashboard says why, in the list and on the program page, in both languages.
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "gone").await;
    let row_reason = "(document.querySelector('[data-program=gone] [data-reason=spawn_failed]') || {}).textContent || ''";
    ui.wait(
        &format!(
            "({row_reason}).startsWith('Command not found: ') && ({row_reason}).includes('tool.sh')"
        ),
        Duration::from_secs(10),
        "the reason in the overview row",
    )
    .await;
    ui.go(
        "#/p/gone",
        "!!document.querySelector('.program-head [data-reason=spawn_failed]')",
    )
    .await;
    let page_text: String = ui
        .eval("document.querySelector('.program-head').innerText")
        .await;
    assert!(
        page_text.contains("Command not found: ") && page_text.contains("Never started"),
        "{page_text}"
    );
    ui.shot("failure-spawn-en").await;
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "((document.querySelector('.program-head [data-reason=spawn_failed]') || {}).textContent || '').startsWith('명령을 찾을 수 없음: ')",
        Duration::from_secs(15),
        "the reason in Korean",
    )
    .await;
    ui.shot("failure-spawn-ko").await;

    finish_clean(browser, &ui, events).await;
}
