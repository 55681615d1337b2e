//! Alert channels and rules made from pickers, without typing JSON or a condition: a
//! channel gets its events and programs by ticking them, a rule its program, event,
//! count and window (or metric, comparison, value, unit and hold) from lists; the saved
//! definitions are the ones the pickers showed, a saved rule opens in the same pickers,
//! and the crash-loop rule made this way fires. The open forms read in Korean.

use std::time::Duration;

use crate::alerts::{Receiver, wait_hits};
use crate::common::*;
use crate::web::admin_seeing;
use crate::web_korean::english_words;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_and_channels_are_made_from_pickers_and_fire() {
    let r = Receiver::start().await;
    let w = Warden::start().await;
    let mut spec = sh("looper", "exit 1");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"policy": "on-failure", "backoff_initial_ms": 0, "backoff_max_ms": 0,
                             "max_failed_starts": 5, "window_seconds": 60});
    w.create(spec).await;
    w.create(json!({"name": "quiet", "command": "sleep", "args": ["1000"]}))
        .await;

    let (browsing, ui) = admin_seeing(&w, "looper").await;
    ui.go("#/alerts", "!!document.querySelector('[data-add-channel]')")
        .await;

    // A webhook channel for rule notifications about one program, all by ticking.
    ui.click("[data-add-channel]").await;
    ui.set_value("#ch-name", "rules").await;
    ui.set_value("#ch-kind", "webhook").await;
    ui.set_value("#ch-url", &r.url("/rules")).await;
    ui.click("[data-event=rule_fired]").await;
    ui.click("[data-program-pick=looper]").await;
    ui.click("[data-channel-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-channel=rules]') && !document.querySelector('[data-channel-form]')",
        Duration::from_secs(10),
        "the new channel",
    )
    .await;
    let (st, v) = w.get("/api/alerts/channels/rules").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["events"], json!(["rule_fired"]), "{v}");
    assert_eq!(v["programs"], json!(["looper"]), "{v}");

    // A crash-loop rule: program, event, count and window picked.
    ui.click("[data-add-rule]").await;
    ui.set_value("#ru-name", "crash-loop").await;
    ui.set_value("#ru-program", "looper").await;
    ui.set_value("#rb-event", "crashed").await;
    ui.set_value("#rb-count", "3").await;
    ui.set_value("#rb-window", "10").await;
    ui.set_value("#rb-windowUnit", "m").await;
    ui.set_value("#ru-severity", "critical").await;
    let preview: String = ui
        .eval("document.querySelector('[data-condition-preview]').textContent")
        .await;
    assert_eq!(preview, "crashed >= 3 in 10m");
    ui.click("[data-rule-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-rule=crash-loop]') && !document.querySelector('[data-rule-form]')",
        Duration::from_secs(10),
        "the crash-loop rule",
    )
    .await;
    let (st, v) = w.get("/api/alerts/rules/crash-loop").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["condition"], "crashed >= 3 in 10m", "{v}");
    assert_eq!(v["program"], "looper", "{v}");
    assert_eq!(v["severity"], "critical", "{v}");

    // A threshold rule: metric, comparison, value, unit and hold picked.
    ui.click("[data-add-rule]").await;
    ui.set_value("#ru-name", "memory").await;
    ui.click("[data-mode=threshold]").await;
    ui.set_value("#rb-metric", "memory_bytes").await;
    ui.set_value("#rb-op", ">=").await;
    ui.set_value("#rb-value", "6").await;
    ui.set_value("#rb-unit", "GiB").await;
    ui.set_value("#rb-hold", "2").await;
    ui.set_value("#rb-holdUnit", "m").await;
    ui.click("[data-rule-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-rule=memory]') && !document.querySelector('[data-rule-form]')",
        Duration::from_secs(10),
        "the memory rule",
    )
    .await;
    let (st, v) = w.get("/api/alerts/rules/memory").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["condition"], "memory_bytes >= 6GiB for 2m", "{v}");
    assert!(v.get("program").is_none(), "every program: {v}");
    // Opened again, it is in the same pickers.
    ui.click("[data-rule=memory] .row.end button").await;
    ui.wait(
        "!!document.querySelector('#rb-metric')",
        Duration::from_secs(5),
        "the memory rule's form",
    )
    .await;
    let shown: Vec<String> = ui
        .eval("['#rb-metric', '#rb-op', '#rb-value', '#rb-unit', '#rb-hold', '#rb-holdUnit', '#ru-program'].map(s => document.querySelector(s).value)")
        .await;
    assert_eq!(shown, ["memory_bytes", ">=", "6", "GiB", "2", "m", ""]);

    // The open forms read in Korean.
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "document.documentElement.lang === 'ko' && !!document.querySelector('[data-add-rule]')",
        Duration::from_secs(15),
        "the Korean alerts page",
    )
    .await;
    ui.click("[data-add-channel]").await;
    ui.click("[data-add-rule]").await;
    ui.wait(
        "!!document.querySelector('[data-event-picker]') && !!document.querySelector('[data-condition-builder]')",
        Duration::from_secs(5),
        "both forms",
    )
    .await;
    let mut found = english_words(
        &ui,
        &[
            "rules",
            "crash-loop",
            "memory",
            "looper",
            "quiet",
            "admin",
            "t-admin",
        ],
    )
    .await;
    ui.click("[data-mode=threshold]").await;
    found.extend(
        english_words(
            &ui,
            &[
                "rules",
                "crash-loop",
                "memory",
                "looper",
                "quiet",
                "admin",
                "t-admin",
            ],
        )
        .await,
    );
    ui.shot("rules-ko").await;
    assert!(found.is_empty(), "English in the Korean forms: {found:?}");

    // The rule made from pickers fires when the program loops.
    let (st, v) = w.post("/api/programs/looper/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("looper", "fatal", Duration::from_secs(30))
        .await;
    let hits = wait_hits(&r, "/rules", 1, Duration::from_secs(15)).await;
    assert_eq!(hits[0].body["event"], "rule_fired", "{}", hits[0].body);
    assert_eq!(hits[0].body["rule"], "crash-loop", "{}", hits[0].body);

    browsing.finish(&ui).await;
}
