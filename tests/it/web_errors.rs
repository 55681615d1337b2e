//! Every server message in the user's language: the dashboard phrases the API's errors
//! from their stable codes and params, never from the server's English `message`. Invalid
//! values in the program form, the schedule builder, the alert channel and rule forms, and a
//! 409 are each read beside their field, in Korean and then in English: the sentence holds
//! the values it needs (the limit, the name…), the Korean one no English word, the English
//! one exactly the dashboard's sentence (the server words it differently, so a fallback to
//! its message fails either way).

use std::time::Duration;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, create_demo, finish_clean, login, open_browser};
use crate::web_korean::english_words_in;

const T: Duration = crate::web::UI_WAIT;

/// Words of the user's own data in the messages below (names they typed).
const USER_DATA: &[&str] = &["demo", "Ops", "crashed", "nonsense"];

/// The text of `selector` once it shows `needs`.
async fn text_of(ui: &Ui, selector: &str, needs: &str) -> String {
    ui.wait(
        &format!(
            "((document.querySelector({selector:?}) || {{}}).textContent || '').includes({needs:?})"
        ),
        T,
        &format!("{selector} showing {needs:?}"),
    )
    .await;
    ui.eval(&format!(
        "document.querySelector({selector:?}).textContent.trim()"
    ))
    .await
}

/// One error read beside its field: in Korean it has no English word and holds `needs`;
/// in English it is exactly `english`.
async fn check(ui: &Ui, lang: &str, selector: &str, needs: &str, english: &str) {
    let text = text_of(ui, selector, needs).await;
    assert!(
        text.contains(needs),
        "{lang} {selector}: {text:?} lacks {needs:?}"
    );
    if lang == "ko" {
        let words = english_words_in(ui, selector, USER_DATA).await;
        assert!(
            words.is_empty(),
            "{selector} in Korean: {text:?} has {words:?}"
        );
        assert!(
            text.chars().any(|c| ('가'..='힣').contains(&c)),
            "{selector}: {text:?} is not Korean"
        );
    } else {
        assert_eq!(text, english, "{selector} in English");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_read_in_the_users_language() {
    let w = Warden::start().await;
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;

    for lang in ["ko", "en"] {
        let _: bool = ui
            .eval(&format!(
                "localStorage.setItem('warden.lang', '{lang}'); location.hash = '#/'; location.reload(); true"
            ))
            .await;
        ui.wait(
            &format!(
                "document.documentElement.lang === '{lang}' && !!document.querySelector('[data-program=demo]')"
            ),
            Duration::from_secs(15),
            "the overview in the language",
        )
        .await;

        // The program form: a number above its limit, beside the field.
        ui.go(
            "#/p/demo/edit",
            "!!document.querySelector('#f-start_seconds')",
        )
        .await;
        ui.set_value("#f-start_seconds", "99999").await;
        ui.click(".program-form button[type=submit]").await;
        check(
            &ui,
            lang,
            "#f-start_seconds-error",
            "3600",
            "Must be at most 3600.",
        )
        .await;

        // A 409: a new program with a name that is taken, in the form's summary.
        ui.go(
            "#/new",
            "!!document.querySelector('#f-name') && !document.querySelector('#f-name').disabled",
        )
        .await;
        ui.set_value("#f-name", "demo").await;
        ui.set_value("#f-command", "true").await;
        ui.click(".program-form button[type=submit]").await;
        check(
            &ui,
            lang,
            "[data-form-summary]",
            "demo",
            "“demo” already exists. Choose another name.",
        )
        .await;

        // The schedule builder: a cron expression that cannot be, beside the cron field.
        ui.go(
            "#/schedules",
            "!!document.querySelector('[data-new=schedule]')",
        )
        .await;
        ui.click("[data-new=schedule]").await;
        ui.wait(
            "!!document.querySelector('#sb-name')",
            T,
            "the schedule builder",
        )
        .await;
        ui.set_value("#sb-preset", "cron").await;
        ui.wait("!!document.querySelector('#sb-cron')", T, "the cron field")
            .await;
        ui.set_value("#sb-cron", "61 4 * * *").await;
        check(
            &ui,
            lang,
            "#sb-cron-error",
            "61 4 * * *",
            "“61 4 * * *” is neither a cron expression (minute hour day month weekday) nor an interval such as “every 6h”.",
        )
        .await;

        // An alert channel: a name that is not one and a URL that is not one.
        ui.go("#/alerts", "!!document.querySelector('[data-add-channel]')")
            .await;
        ui.click("[data-add-channel]").await;
        ui.wait(
            "!!document.querySelector('#ch-name')",
            T,
            "the channel form",
        )
        .await;
        ui.set_value("#ch-name", "Ops!").await;
        ui.set_value("#ch-url", "nope").await;
        ui.click("[data-channel-form] button[type=submit]").await;
        check(
            &ui,
            lang,
            "#ch-name-error",
            "Ops!",
            "“Ops!” is not a valid name: use lowercase letters, digits, - and _, starting with a letter or digit.",
        )
        .await;
        check(
            &ui,
            lang,
            "#ch-url-error",
            "URL",
            "Give an absolute http:// or https:// URL.",
        )
        .await;

        // An alert rule: a condition typed by hand that cannot be read.
        ui.click("[data-add-rule]").await;
        ui.wait("!!document.querySelector('#ru-name')", T, "the rule form")
            .await;
        ui.set_value("#ru-name", "loop").await;
        ui.click("[data-mode=text]").await;
        ui.set_value("#ru-condition", "crashed >= nonsense").await;
        ui.click("[data-rule-form] button[type=submit]").await;
        check(
            &ui,
            lang,
            "#ru-condition-error",
            "crashed >= nonsense",
            "“crashed >= nonsense” is not valid here.",
        )
        .await;
    }
    // The refusals above were caused on purpose; nothing else may have failed.
    {
        let mut problems = ui.problems.lock().expect("lock");
        problems
            .network
            .retain(|(url, _)| !(url.contains("/api/programs") || url.contains("/api/alerts/")));
    }
    finish_clean(browser, &ui, events).await;
}

/// An install that Steam answers with `steam_guard` asks for the code in the wizard, and
/// the same install sent again with it logs in and installs (the fake SteamCMD wants the
/// account's password and code G7K2P).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_install_wizard_asks_for_a_steam_guard_code() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let steamcmd = crate::install::steamcmd_wrapper(
        tmp.path(),
        &[
            ("FAKE_STEAMCMD_ACCOUNT", "alice:correct horse:G7K2P"),
            ("FAKE_STEAMCMD_BUILD", "4242"),
        ],
    );
    let config = format!(
        "[install]\nsteamcmd = {:?}\nsteam_user = \"alice\"\n",
        steamcmd.display().to_string()
    );
    let w = Warden::start_in(&tmp.path().join("data"), &config).await;
    let (st, v) = w
        .put(
            "/api/install/steam-account",
            serde_json::json!({"password": "correct horse"}),
        )
        .await;
    assert!(st.is_success(), "{v}");
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;

    ui.go(
        "#/install",
        "!!document.querySelector('[data-template=palworld] [data-choose]')",
    )
    .await;
    ui.click("[data-template=palworld] [data-choose]").await;
    ui.wait(
        "!!document.querySelector('[data-install-form=palworld]')",
        T,
        "the install form",
    )
    .await;
    ui.set_value("#iw-name", "pal").await;
    ui.click("[data-install-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-install-failed=steam_guard] #iw-guard')",
        Duration::from_secs(60),
        "the Steam Guard code field",
    )
    .await;
    ui.shot("install-steam-guard").await;
    ui.type_into("#iw-guard", "G7K2P").await;
    ui.click("[data-guard-submit]").await;
    ui.wait(
        "!!document.querySelector('[data-install-state=installed] [data-open-program=pal]')",
        Duration::from_secs(90),
        "the install done with the code",
    )
    .await;
    let (st, v) = w.get("/api/programs/pal").await;
    assert!(st.is_success(), "{v}");
    finish_clean(browser, &ui, events).await;
}
