//! First run in the browser: with no users, `warden serve` writes a one-time setup code to
//! a 0600 file in the data directory; the login page offers "create the first
//! administrator" with it, a wrong code is refused, the right one signs the new admin in
//! and is used up. `warden user add` warns when it would create a new data directory.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::*;
use crate::web::open_browser;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_administrator_is_created_in_the_browser() {
    let w = Warden::start().await;
    let file = w.data_dir.join("setup-code");
    let code = std::fs::read_to_string(&file).expect("the setup code file");
    let code = code.trim().to_string();
    assert_eq!(code.len(), 14, "{code:?}");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the setup code file is readable by others");
    let (st, v) = w.get("/api/setup").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"has_users": false}), "says nothing else");

    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    ui.wait(
        "!!document.querySelector('form[data-first-run] #setup-code')",
        Duration::from_secs(15),
        "the first-administrator form",
    )
    .await;
    ui.shot("setup-first-run").await;
    // A wrong code is refused, and says so.
    ui.set_value("#setup-code", "AAAA-BBBB-CCCC").await;
    ui.set_value("#setup-user", "alice").await;
    ui.set_value("#setup-password", "alice-password-1").await;
    ui.click("form[data-first-run] button[type=submit]").await;
    ui.wait(
        "((document.querySelector('#setup-error') || {}).textContent || '').includes('setup code is wrong')",
        Duration::from_secs(10),
        "the wrong-code message",
    )
    .await;
    // The right one creates the administrator and signs in.
    ui.set_value("#setup-code", &code).await;
    ui.click("form[data-first-run] button[type=submit]").await;
    ui.wait(
        "document.querySelector('.who') && document.querySelector('.who').textContent === 'alice' \
           && document.querySelector('[data-live]').dataset.live === 'open'",
        Duration::from_secs(15),
        "signed in as the new administrator",
    )
    .await;
    assert!(!file.exists(), "the used setup code file is still there");
    let (st, users) = w.get("/api/users").await;
    assert_eq!(st, StatusCode::OK, "{users}");
    assert!(users.to_string().contains("\"alice\""), "{users}");
    // The code works once.
    let (st, v) = w
        .post(
            "/api/setup/admin",
            json!({"code": code, "username": "mallory", "password": "mallory-pass-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(problems.errors.is_empty(), "{:#?}", problems.errors);
    let unexpected: Vec<_> = problems
        .network
        .iter()
        .filter(|(url, text)| !(url.ends_with("/api/setup/admin") && text.contains("403")))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

#[test]
fn user_add_warns_before_creating_a_new_data_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fresh = tmp.path().join("elsewhere");
    let (st, _, err) = cli(
        &fresh,
        &["user", "add", "bob", "--role", "admin", "--password-stdin"],
        Some("bob-password-1"),
    );
    assert!(st.success(), "{err}");
    assert!(
        err.contains("holds no warden data yet") && err.contains("--data-dir"),
        "{err}"
    );
    let (st, _, err) = cli(
        &fresh,
        &[
            "user",
            "add",
            "carol",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("carol-password-1"),
    );
    assert!(st.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
}
