//! The fleet in the dashboard: a person on the hub sees a node's programs with their
//! states, stops and starts one there (the state comes back live through the hub's
//! WebSocket), types into its console and reads the answer, in Korean, and sees the node
//! marked unreachable the moment it dies.

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, add_user, finish_clean, login_seeing, open_browser};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nodes_programs_are_watched_and_driven_from_the_hubs_dashboard() {
    let node_dir = tempfile::tempdir().expect("tempdir");
    let mut node = Warden::start_in(node_dir.path(), "[fleet]\nname = \"box\"\n").await;
    let operator = make_token(&node.data_dir, "operator");
    node.create(sh("game", "while read l; do echo \"got $l\"; done"))
        .await;
    let (st, v) = node.post("/api/programs/game/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    node.wait_state("game", "running", T).await;

    let hub_dir = tempfile::tempdir().expect("tempdir");
    let (st, out, err) = cli(
        hub_dir.path(),
        &["fleet", "add", "box", &node.url],
        Some(&operator),
    );
    assert!(st.success(), "{out}{err}");
    let hub = Warden::start_in(hub_dir.path(), "[fleet]\nname = \"hub\"\n").await;
    hub.create(sh("local", "exec sleep 600")).await;
    add_user(&hub, "admin", "admin", ADMIN_PASSWORD);

    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(hub.url.as_str()).await.expect("open the hub");
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "local").await;

    // Both machines, each with its programs; the node's live.
    let row = "[data-fleet-node=box] [data-program=game]";
    ui.go(
        "#/fleet",
        &format!("document.querySelector('{row} [data-state]')?.dataset.state === 'running'"),
    )
    .await;
    ui.wait(
        "!!document.querySelector('[data-fleet-node=hub] [data-program=local]')",
        T,
        "the hub's own program",
    )
    .await;
    let status: String = ui
        .eval("document.querySelector('[data-fleet-node=box] [data-node-status]').innerText.trim()")
        .await;
    assert_eq!(status, "연결됨");

    // Stop on the node, through the hub; the new state arrives without a reload.
    ui.click(&format!("{row} [data-action=stop]")).await;
    ui.wait(
        "document.querySelector('dialog.confirm').open",
        T,
        "the confirmation",
    )
    .await;
    ui.click("dialog.confirm [data-confirm=yes]").await;
    node.wait_state("game", "stopped", T).await;
    ui.wait(
        &format!("document.querySelector('{row} [data-state]').dataset.state === 'stopped'"),
        T,
        "the row showing stopped",
    )
    .await;
    ui.click(&format!("{row} [data-action=start]")).await;
    node.wait_state("game", "running", T).await;
    ui.wait(
        &format!("document.querySelector('{row} [data-state]').dataset.state === 'running'"),
        T,
        "the row showing running again",
    )
    .await;

    // The node's console: typed at the hub, answered on the node, read at the hub.
    ui.click(&format!("{row} [data-open-console]")).await;
    ui.wait("!!document.querySelector('#fc-box-game')", T, "the console")
        .await;
    // The relay subscribes right after the panel opens: type until the answer shows.
    wait_until(T, "the node's answer in the hub's console", || {
        let ui = &ui;
        async move {
            ui.type_into("#fc-box-game", "hello").await;
            ui.click("[data-fleet-console='box/game'] button[type=submit]")
                .await;
            let seen: bool = ui
                .eval("new Promise(r => setTimeout(() => r(document.querySelector(\"[data-fleet-console='box/game'] .console\").innerText.includes('got hello')), 500))")
                .await;
            seen.then_some(())
        }
    })
    .await;

    // The node dies: its card says so at once, in Korean, and the hub's own still works.
    node.kill9();
    ui.wait(
        "document.querySelector('[data-fleet-node=box]').dataset.reachable === 'no'",
        T,
        "the node marked unreachable",
    )
    .await;
    let status: String = ui
        .eval("document.querySelector('[data-fleet-node=box] [data-node-status]').innerText.trim()")
        .await;
    assert_eq!(status, "연결할 수 없음");
    assert!(
        ui.eval::<bool>("!!document.querySelector('[data-fleet-node=hub] [data-program=local]')")
            .await
    );
    finish_clean(browser, &ui, events).await;
}
