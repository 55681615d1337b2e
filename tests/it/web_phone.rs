//! A phone is a first-class screen (390×844): every page fits without sideways scrolling,
//! no action button lies beyond the screen's edge, tables become cards, and the program
//! page leads with its state, actions and console while the charts wait for a tap. Prints
//! the tallest page's height.

use std::time::Duration;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, create_demo, finish_clean, login, open_browser};
use serde_json::json;

const WIDTH: i64 = 390;
const HEIGHT: i64 = 844;

/// Buttons and button-like links whose box is not fully inside the screen's width, or
/// that are covered by something else at their centre (out of a finger's reach).
async fn unreachable_buttons(ui: &Ui) -> Vec<String> {
    ui.eval(&format!(
        "[...document.querySelectorAll('button, a.btn, [role=button]')].filter(b => b.checkVisibility()).filter(b => {{ \
           const r = b.getBoundingClientRect(); if (r.width === 0) return false; \
           if (r.left < 0 || r.right > {WIDTH} + 1) return true; \
           b.scrollIntoView({{block: 'center'}}); const q = b.getBoundingClientRect(); \
           const hit = document.elementFromPoint(q.left + q.width / 2, q.top + q.height / 2); \
           return !(hit && (hit === b || b.contains(hit) || hit.contains(b))); }}) \
           .map(b => (b.textContent || b.getAttribute('aria-label') || b.tagName).trim().slice(0, 40))"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_works_on_a_phone() {
    let w = Warden::start().await;
    create_demo(&w).await;
    let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "running", Duration::from_secs(15))
        .await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    add_user(
        &w,
        "viewer-with-a-rather-long-name",
        "viewer",
        "viewer-password-1",
    );

    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.set_width(WIDTH, HEIGHT).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    ui.assert_fits(WIDTH as u32, "the login page").await;
    login(&ui, "admin", ADMIN_PASSWORD).await;

    let pages = [
        ("#/", "!!document.querySelector('[data-program=demo]')"),
        (
            "#/p/demo",
            "!!document.querySelector('[data-program-page=demo] .console .line')",
        ),
        (
            "#/p/demo/edit",
            "!!document.querySelector('#f-start_seconds')",
        ),
        ("#/new", "!!document.querySelector('#f-name')"),
        ("#/p/demo/files", "!!document.querySelector('[data-entry]')"),
        (
            "#/users",
            "document.querySelectorAll('table tbody tr').length >= 2",
        ),
        ("#/alerts", "!!document.querySelector('[data-add-channel]')"),
        ("#/schedules", "!!document.querySelector('[data-new=job]')"),
        ("#/fleet", "!!document.querySelector('[data-fleet-node]')"),
        ("#/settings", "!!document.querySelector('#set-lang')"),
        ("#/about", "!!document.querySelector('[data-version]')"),
        ("#/audit", "!!document.querySelector('[data-audit-row]')"),
        (
            "#/install",
            "!!document.querySelector('[data-template=valheim]')",
        ),
        (
            "#/processes",
            "!!document.querySelector('[data-processes-page] [data-pid]')",
        ),
    ];
    let mut tallest = (0.0f64, "");
    for (hash, ready) in pages {
        ui.go(hash, ready).await;
        ui.assert_fits(WIDTH as u32, hash).await;
        let out_of_reach = unreachable_buttons(&ui).await;
        assert!(
            out_of_reach.is_empty(),
            "{hash}: buttons out of reach at {WIDTH} px: {out_of_reach:?}"
        );
        let height: f64 = ui.eval("document.scrollingElement.scrollHeight").await;
        if height > tallest.0 {
            tallest = (height, hash);
        }
        ui.shot(&format!(
            "phone-{}",
            hash.trim_start_matches("#/").replace('/', "-")
        ))
        .await;
    }
    println!(
        "tallest page at {WIDTH}×{HEIGHT}: {} px ({})",
        tallest.0, tallest.1
    );

    // Dialogs fit too: the TOML export of a program and the TOML import.
    for (hash, button, ready) in [
        (
            "#/p/demo",
            "[data-export-toml='program:demo']",
            "!!document.querySelector('[data-toml-export]')",
        ),
        (
            "#/",
            "[data-import-toml=program]",
            "!!document.querySelector('[data-toml-import]')",
        ),
    ] {
        ui.go(hash, &format!("!!document.querySelector({button:?})"))
            .await;
        ui.click(button).await;
        ui.wait(ready, Duration::from_secs(10), button).await;
        ui.assert_fits(WIDTH as u32, button).await;
        // The page behind a modal dialog is covered on purpose: the dialog's own buttons
        // must be inside the screen and on top.
        let out_of_reach: Vec<String> = ui
            .eval(&format!(
                "[...document.querySelectorAll('.overlay button')].filter(b => {{ \
                   b.scrollIntoView({{block: 'center'}}); const r = b.getBoundingClientRect(); \
                   if (r.left < 0 || r.right > {WIDTH} + 1) return true; \
                   const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
                   return !(hit && (hit === b || b.contains(hit))); }}).map(b => b.textContent.trim())"
            ))
            .await;
        assert!(
            out_of_reach.is_empty(),
            "{button}: dialog buttons out of reach at {WIDTH} px: {out_of_reach:?}"
        );
        ui.shot(&format!("phone-dialog-{}", hash.len())).await;
    }

    // The program page: state and actions, then the console within the first screen;
    // the charts are collapsed below it until asked for.
    ui.go(
        "#/p/demo",
        "!!document.querySelector('[data-program-page=demo] .console .line')",
    )
    .await;
    let _: bool = ui.eval("window.scrollTo(0, 0); true").await;
    let (console_top, input_bottom, charts_top): (f64, f64, f64) = ui
        .eval(
            "[document.querySelector('.console-card').getBoundingClientRect().top, \
              document.querySelector('#console-input').getBoundingClientRect().bottom, \
              document.querySelector('.charts-card').getBoundingClientRect().top]",
        )
        .await;
    assert!(
        console_top < HEIGHT as f64 * 0.6,
        "the console starts {console_top} px down"
    );
    assert!(
        input_bottom < HEIGHT as f64 * 1.5,
        "the command box ends {input_bottom} px down"
    );
    assert!(charts_top > console_top, "charts come before the console");
    assert!(
        ui.eval::<bool>(
            "!!document.querySelector('[data-charts-collapsed]') && !document.querySelector('[data-chart]')"
        )
        .await,
        "charts are not collapsed on a phone"
    );
    ui.click("[data-show-charts]").await;
    ui.wait(
        "!!document.querySelector('[data-chart=cpu] canvas')",
        Duration::from_secs(10),
        "the charts after a tap",
    )
    .await;
    ui.assert_fits(WIDTH as u32, "the program page with charts")
        .await;

    finish_clean(browser, &ui, events).await;
}
