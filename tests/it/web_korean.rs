//! Everything in the user's language: every page is walked in Korean, signed in, and the
//! visible text may hold no English words except names, paths, units, brand and protocol
//! names and the user's own data (console output, code, inputs). Events read as
//! sentences (a backup's size humanised, a requested stop never "killed by SIGTERM").
//! Signed out, the page logs nothing either.

use std::time::Duration;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, create_demo, login, open_browser};
use reqwest::StatusCode;
use serde_json::json;

/// Words that are the same in both languages: units, protocols, brands, warden's own name.
const ALLOWED: &[&str] = &[
    "warden",
    "KiB",
    "MiB",
    "GiB",
    "TiB",
    "CPU",
    "PID",
    "I/O",
    "RCON",
    "TOML",
    "JSON",
    "API",
    "URL",
    "HTTP",
    "Discord",
    "Slack",
    "Telegram",
    "ntfy",
    "English",
    "SLP",
    "A2S",
    "REST",
    "UTC",
    "cron",
    "Minecraft",
    "Palworld",
    "Valheim",
    "ARK",
    "Source",
    "SteamCMD",
    "Steam",
    "Mojang",
    "PaperMC",
    "EULA",
    "Windows",
    "Linux",
    "TCP",
    "UDP",
    "Java",
    // PaperMC's server, a brand.
    "Paper",
    "zip",
    "zstd",
    "tar",
    "CLI",
    "PATH",
    "KEY",
    "Preact",
    "htm",
    "uPlot",
    "ms",
    "ID",
    // A literal console command in the form's example ("예: stop").
    "stop",
];

/// Technical words the shipped templates' Korean texts keep as they are: option names and
/// values, a signal, a URL's scheme, a game's world names.
const TEMPLATE_WORDS: &[&str] = &[
    "accept_eula",
    "true",
    "latest",
    "https",
    "Xms",
    "Xmx",
    "SIGINT",
    "sv_setsteamaccount",
    "hostname",
    "GameWorld",
    "Navezgane",
    "RWG",
];

/// Visible English words on the page, outside names, code, inputs and user data, as
/// `word (in "its text")`.
pub(crate) async fn english_words(ui: &Ui, names: &[&str]) -> Vec<String> {
    english_words_in(ui, "#app", names).await
}

/// [`english_words`] within the element `selector` (e.g. one error message).
pub(crate) async fn english_words_in(ui: &Ui, selector: &str, names: &[&str]) -> Vec<String> {
    let allowed: Vec<&str> = ALLOWED.iter().chain(names.iter()).copied().collect();
    let allowed = serde_json::to_string(&allowed).expect("json");
    let js = format!(
        "(() => {{ const allowed = new Set({allowed}); const out = []; \
           const skip = 'code, pre, kbd, samp, .console, script, style, option, textarea, input, select, .c-name, [data-user-data], .uplot .u-legend .u-value, time'; \
           const root = document.querySelector({selector:?}); if (!root) return ['(no element {selector})']; \
           const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT); \
           let n; while ((n = walker.nextNode())) {{ \
             const el = n.parentElement; if (!el || el.closest(skip)) continue; \
             if (!el.checkVisibility()) continue; \
             const text = n.textContent; \
             for (const m of text.matchAll(/[A-Za-z][A-Za-z0-9/._-]*/g)) {{ \
               const w = m[0].replace(/[._-]+$/, ''); \
               if (w.includes('/') || w.includes('.') || w.length < 2 || allowed.has(w)) continue; \
               out.push(w + ' (in ' + JSON.stringify(text.trim().slice(0, 80)) + ')'); }} }} \
           return [...new Set(out)]; }})()"
    );
    ui.eval(&js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_reads_in_korean() {
    let w = Warden::start().await;
    create_demo(&w).await;
    std::fs::write(w.data_dir.join("demo-world/notes.txt"), "hello\n").expect("file");
    // Some history: started, a backup, stopped by a request.
    let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "running", Duration::from_secs(15))
        .await;
    let (st, v) = w.post("/api/programs/demo/backups", json!({})).await;
    assert!(st.is_success(), "{v}");
    wait_until(Duration::from_secs(30), "the backup finished", || async {
        w.events("demo")
            .await
            .iter()
            .any(|e| e["kind"] == "backup_finished")
            .then_some(())
    })
    .await;
    let (st, v) = w.post("/api/programs/demo/stop", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "stopped", Duration::from_secs(35))
        .await;
    // A job, a schedule and an alert channel, so their pages have rows to read.
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "tidy", "steps": [{"name": "sweep", "command": "true"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = w
        .post(
            "/api/schedules",
            json!({"name": "nightly", "trigger": "0 4 * * *", "timezone": "Asia/Seoul",
                   "tasks": [{"action": {"kind": "job", "job": "tidy"}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);

    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    // Signed out in Korean first: the login page.
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "!!document.querySelector('#login-user') && document.documentElement.lang === 'ko'",
        Duration::from_secs(15),
        "the Korean login page",
    )
    .await;
    // Program, user and token names (the fixture's admin token is "t-admin").
    let names = [
        "demo",
        "admin",
        "Demo",
        "world",
        "t-admin",
        "tidy",
        "nightly",
        "sweep",
        "Asia/Seoul",
    ];
    // On the install pages also the shipped templates' technical words.
    let template_names: Vec<&str> = names.iter().chain(TEMPLATE_WORDS).copied().collect();
    let allowed_on = |hash: &str| {
        if hash == "#/install" {
            template_names.clone()
        } else {
            names.to_vec()
        }
    };
    let mut found = Vec::new();
    for w in english_words(&ui, &names).await {
        found.push(format!("login: {w}"));
    }
    login(&ui, "admin", ADMIN_PASSWORD).await;

    let pages = [
        ("#/", "!!document.querySelector('[data-program=demo]')"),
        (
            "#/p/demo",
            "document.querySelectorAll('.timeline li').length >= 4 && !!document.querySelector('[data-chart=cpu] canvas')",
        ),
        (
            "#/p/demo/edit",
            "!!document.querySelector('#f-start_seconds')",
        ),
        ("#/new", "!!document.querySelector('#f-name')"),
        (
            "#/p/demo/files",
            "document.body.innerText.includes('notes.txt')",
        ),
        (
            "#/users",
            "document.querySelectorAll('table tbody tr').length >= 1",
        ),
        ("#/alerts", "!!document.querySelector('[data-add-channel]')"),
        ("#/schedules", "!!document.querySelector('[data-new=job]')"),
        ("#/fleet", "!!document.querySelector('[data-fleet-node]')"),
        ("#/settings", "!!document.querySelector('#set-lang')"),
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
    for (hash, ready) in pages {
        ui.go(hash, ready).await;
        // Let late answers (charts, lists) land before reading.
        let _: bool = ui
            .eval("new Promise(r => setTimeout(() => r(true), 400))")
            .await;
        for word in english_words(&ui, &allowed_on(hash)).await {
            found.push(format!("{hash}: {word}"));
        }
        ui.shot(&format!(
            "ko-{}",
            hash.trim_start_matches("#/").replace('/', "-")
        ))
        .await;
    }
    ui.go("#/about", "!!document.querySelector('[data-version]')")
        .await;
    for word in english_words(&ui, &names).await {
        found.push(format!("#/about: {word}"));
    }
    // Shipped templates speak Korean: the Valheim card's title and description, and in its
    // wizard (opened below) the variables' help.
    ui.go(
        "#/install",
        "!!document.querySelector('[data-template=valheim] [data-template-title]')",
    )
    .await;
    let (title, about): (String, String) = ui
        .eval(
            "['[data-template-title]', '[data-template-description]'] \
               .map(s => document.querySelector('[data-template=valheim] ' + s).textContent)",
        )
        .await;
    assert_eq!(title, "발헤임");
    assert_eq!(
        about,
        "발헤임 전용 서버입니다. 월드는 서버 폴더의 saves/ 아래에 저장되며, SIGINT를 받으면 깔끔하게 종료됩니다."
    );

    // Sections and dialogs that open on a click: a job's history with its durations, the
    // TOML export of a program and the TOML import, the alert rule's pickers, the install
    // wizard's form for a template.
    let opened = [
        (
            "#/schedules",
            "[data-job=tidy] button[aria-expanded=false]",
            "!!document.querySelector('[data-durations=tidy]')",
        ),
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
        (
            "#/alerts",
            "[data-add-rule]",
            "!!document.querySelector('[data-condition-builder]')",
        ),
        (
            "#/install",
            "[data-choose=valheim]",
            "!!document.querySelector('[data-install-form=valheim] #iw-v-password')",
        ),
    ];
    for (hash, button, ready) in opened {
        ui.go(hash, &format!("!!document.querySelector({button:?})"))
            .await;
        ui.click(button).await;
        ui.wait(ready, Duration::from_secs(10), button).await;
        for word in english_words(&ui, &allowed_on(hash)).await {
            found.push(format!("{hash} {button}: {word}"));
        }
    }
    // The wizard is still open: a variable's help is the template's Korean text.
    let help: String = ui
        .eval("document.querySelector('#iw-v-world-help [data-variable-description]').textContent")
        .await;
    assert_eq!(help, "월드 이름입니다(저장 파일 이름으로도 쓰입니다).");

    // Events are sentences: the backup's size is humanised, the requested stop reads
    // as a stop.
    let trigger: String = ui
        .eval("(async () => { location.hash = '#/schedules'; await new Promise(r => setTimeout(r, 600)); \
               return (document.querySelector('[data-trigger-text]') || {}).textContent || ''; })()")
        .await;
    assert!(trigger.starts_with("매일 04:00"), "{trigger}");
    ui.go(
        "#/p/demo",
        "document.querySelectorAll('.timeline li').length >= 4",
    )
    .await;
    let timeline: String = ui
        .eval("document.querySelector('.timeline').innerText")
        .await;
    assert!(
        timeline.contains("중지 요청됨") && timeline.contains("중지됨"),
        "{timeline}"
    );
    assert!(
        !timeline.contains("SIGTERM") && !timeline.contains("bytes"),
        "{timeline}"
    );
    // The archive's size varies by a few bytes with what the demo saved: any size in
    // bytes, humanised and in Korean.
    let done = timeline
        .split("백업 1 완료: ")
        .nth(1)
        .and_then(|rest| rest.split(" B").next())
        .unwrap_or("");
    assert!(
        !done.is_empty() && done.chars().all(|c| c.is_ascii_digit()),
        "{timeline}"
    );

    assert!(
        found.is_empty(),
        "English on Korean pages:\n{}",
        found.join("\n")
    );
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty() && problems.network.is_empty(),
        "console errors: {:#?}, failed requests: {:#?}",
        problems.errors,
        problems.network
    );
    let (st, _) = w.get("/api/programs/demo").await;
    assert_eq!(st, StatusCode::OK);
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}
