//! A friend with grants on one server sees that server only, and exactly the controls
//! their permissions allow: the dashboard reads per-program permissions from
//! `/api/auth/me` instead of a global role, and no request it makes is refused.

use std::time::Duration;

use crate::common::*;
use crate::web::{finish_clean, login_seeing, open_browser};
use serde_json::json;

const FRIEND_PASSWORD: &str = "friend-password-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_friend_sees_only_the_granted_server_and_only_the_granted_controls() {
    let w = Warden::start().await;
    for name in ["valheim", "minecraft"] {
        w.create(sh(name, "while read l; do echo \"got $l\"; done"))
            .await;
        let (st, v) = w
            .post(&format!("/api/programs/{name}/start"), json!(null))
            .await;
        assert!(st.is_success(), "{v}");
        w.wait_state(name, "running", Duration::from_secs(15)).await;
    }
    let (st, out, err) = cli(
        &w.data_dir,
        &[
            "user",
            "add",
            "friend",
            "--role",
            "none",
            "--password-stdin",
        ],
        Some(FRIEND_PASSWORD),
    );
    assert!(st.success(), "{out}{err}");
    let (st, out, err) = cli(
        &w.data_dir,
        &[
            "grant",
            "set",
            "user",
            "friend",
            "program:valheim",
            "view,control,console",
        ],
        None,
    );
    assert!(st.success(), "{out}{err}");

    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "friend", FRIEND_PASSWORD, "valheim").await;
    // The overview: valheim with its start/stop buttons, no trace of minecraft.
    assert_eq!(
        ui.eval::<u32>("document.querySelectorAll('[data-program=minecraft]').length")
            .await,
        0,
        "a program without `view` is not listed"
    );
    assert!(
        ui.eval::<u32>("document.querySelectorAll('[data-program=valheim] [data-action]').length")
            .await
            > 0,
        "`control` on valheim shows its actions"
    );
    // Its page: actions, the console and the command box; no edit link (no `define`) and
    // no files (no `files.read`).
    ui.go(
        "#/p/valheim",
        "!!document.querySelector('[data-program-page=valheim] #console-input')",
    )
    .await;
    assert!(
        ui.eval::<u32>("document.querySelectorAll('[data-action]').length")
            .await
            > 0
    );
    assert_eq!(
        ui.eval::<u32>(
            "document.querySelectorAll('a[href$=\"/edit\"], a[href$=\"/files\"]').length"
        )
        .await,
        0,
        "no edit or files link without `define` / `files.read`"
    );
    // The console works: a line typed comes back.
    ui.type_into("#console-input", "hello-friend").await;
    ui.page
        .find_element("#console-input")
        .await
        .expect("console input")
        .press_key("Enter")
        .await
        .expect("enter");
    ui.wait(
        "document.querySelector('.console').textContent.includes('got hello-friend')",
        Duration::from_secs(10),
        "the echoed console line",
    )
    .await;

    finish_clean(browser, &ui, events).await;
}
