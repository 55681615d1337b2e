//! The dashboard in a real headless Chromium, driven over the DevTools protocol: first-run
//! hint, login, live state changes without reload, the CPU chart, the live console, the
//! stop confirmation, inline validation errors, the Korean switch, the 360 px layout, a
//! viewer's read-only view (and the API refusing it anyway), no console errors on any
//! page, and a screenshot of each page under `target/web-screenshots/`.
//!
//! Chromium is required: without it the test fails and says how to install it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How long a page may take to show what a test awaits: generous, since a wait ends as
/// soon as the page shows it, and the suite shares two cores with Chromium.
pub(crate) const UI_WAIT: Duration = Duration::from_secs(30);

pub(crate) const ADMIN_PASSWORD: &str = "admin-password-1";
pub(crate) const VIEWER_PASSWORD: &str = "viewer-password-1";

fn chromium() -> PathBuf {
    let candidates = [
        std::env::var("WARDEN_CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
        Some("/usr/bin/google-chrome".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is needed for the dashboard tests and was not found. Install it with \
                 `apt-get install -y chromium` (CI installs it), or point WARDEN_CHROMIUM at a \
                 Chromium binary."
            )
        })
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Problems the page reported: console errors, uncaught exceptions, failed loads.
#[derive(Default)]
pub(crate) struct Problems {
    pub(crate) errors: Vec<String>,
    /// Failed requests as (url, text); some are expected and checked separately.
    pub(crate) network: Vec<(String, String)>,
}

pub(crate) struct Ui {
    pub(crate) page: Page,
    pub(crate) problems: Arc<Mutex<Problems>>,
    shots: PathBuf,
    /// The emulated viewport; a full-page screenshot clears it, so it is set again after.
    viewport: std::sync::Mutex<(i64, i64)>,
}

impl Ui {
    pub(crate) async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating `{js}` failed: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("`{js}` returned an unexpected value: {e}"))
    }

    /// Polls a JavaScript condition until it is true.
    pub(crate) async fn wait(&self, js: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.page.evaluate(js).await
                && r.into_value::<bool>().unwrap_or(false)
            {
                return;
            }
            if Instant::now() > deadline {
                let body: String = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                let errors = self.problems.lock().expect("lock").errors.clone();
                panic!(
                    "timed out after {timeout:?} waiting for {what} (`{js}`); page text:\n{body}\nerrors so far: {errors:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    pub(crate) async fn click(&self, selector: &str) {
        self.page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {selector}: {e}"));
    }

    pub(crate) async fn type_into(&self, selector: &str, text: &str) {
        let el = self
            .page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"));
        // Focus, not a click: a click lands on coordinates taken a moment earlier, and a
        // page still settling (a preview or a chart loading above) can move another
        // element there, such as a `<details>` summary that then closes.
        el.focus().await.expect("focus");
        el.type_str(text).await.expect("type");
    }

    /// Sets an input's, textarea's or select's value as typing or choosing would.
    pub(crate) async fn set_value(&self, selector: &str, value: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.value = {value:?}; \
               e.dispatchEvent(new Event('input', {{bubbles: true}})); \
               e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        );
        assert!(self.eval::<bool>(&js).await, "no element {selector}");
    }

    pub(crate) async fn go(&self, hash: &str, ready_js: &str) {
        let js = format!("location.hash = {hash:?}; true");
        let _: bool = self.eval(&js).await;
        self.wait(ready_js, Duration::from_secs(10), hash).await;
    }

    pub(crate) async fn shot(&self, name: &str) {
        // Let fonts and the last frame settle so the picture is what a person sees.
        let _: bool = self
            .eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
            .await;
        let path = self.shots.join(format!("{name}.png"));
        self.page
            .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let (width, height) = *self.viewport.lock().expect("lock");
        self.set_width(width, height).await;
    }

    /// Waits until nothing on the page is wider than `width`; names the offenders if not.
    pub(crate) async fn assert_fits(&self, width: u32, what: &str) {
        let js = format!(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width} + 1 \
               && getComputedStyle(e).position !== 'fixed' && !e.closest('.offscreen, .sr-only, .skip')) \
               .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let wide: Vec<String> = self.eval(&js).await;
            if wide.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: wider than {width} px: {wide:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn set_width(&self, width: i64, height: i64) {
        *self.viewport.lock().expect("lock") = (width, height);
        self.page
            // Not in mobile mode: a mobile viewport zooms out to fit anything too wide,
            // hiding exactly what `assert_fits` looks for.
            .execute(SetDeviceMetricsOverrideParams::new(
                width, height, 1.0, false,
            ))
            .await
            .expect("set viewport");
    }
}

/// Ends a browser test: no console error and no refused or failed request happened that
/// the test did not cause on purpose; then Chromium is closed.
pub(crate) async fn finish_clean(
    mut browser: Browser,
    ui: &Ui,
    events: tokio::task::JoinHandle<()>,
) {
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty() && problems.network.is_empty(),
        "console errors: {:#?}, refused or failed requests: {:#?}",
        problems.errors,
        problems.network
    );
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

pub(crate) async fn open_browser(profile: &Path) -> (Browser, Ui, tokio::task::JoinHandle<()>) {
    let config = BrowserConfig::builder()
        .chrome_executable(chromium())
        .no_sandbox()
        .user_data_dir(profile)
        .window_size(1280, 900)
        .viewport(Viewport {
            width: 1280,
            height: 900,
            ..Viewport::default()
        })
        .args([
            "disable-gpu",
            "disable-background-networking",
            "disable-component-update",
            "no-first-run",
            "disable-sync",
        ])
        .launch_timeout(Duration::from_secs(60))
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.expect("new page");
    page.enable_log().await.expect("enable log");
    let problems = Arc::new(Mutex::new(Problems::default()));
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .expect("console listener");
    let p = problems.clone();
    tokio::spawn(async move {
        while let Some(ev) = console.next().await {
            if matches!(
                ev.r#type,
                ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
            ) {
                let text = ev
                    .args
                    .iter()
                    .map(|a| a.value.as_ref().map(|v| v.to_string()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" ");
                p.lock()
                    .expect("lock")
                    .errors
                    .push(format!("console.error: {text}"));
            }
        }
    });
    let mut exceptions = page
        .event_listener::<EventExceptionThrown>()
        .await
        .expect("exception listener");
    let p = problems.clone();
    tokio::spawn(async move {
        while let Some(ev) = exceptions.next().await {
            let d = &ev.exception_details;
            let text = d
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_else(|| d.text.clone());
            p.lock()
                .expect("lock")
                .errors
                .push(format!("exception: {text}"));
        }
    });
    let mut log = page
        .event_listener::<EventEntryAdded>()
        .await
        .expect("log listener");
    let p = problems.clone();
    tokio::spawn(async move {
        while let Some(ev) = log.next().await {
            let e = &ev.entry;
            if e.level != LogEntryLevel::Error {
                continue;
            }
            let mut p = p.lock().expect("lock");
            match (
                &e.url,
                format!("{:?}", e.source).to_lowercase().contains("network"),
            ) {
                (Some(url), true) => p.network.push((url.clone(), e.text.clone())),
                _ => p.errors.push(format!("log: {} {:?}", e.text, e.url)),
            }
        }
    });
    let ui = Ui {
        page,
        problems,
        shots: screenshots_dir(),
        viewport: std::sync::Mutex::new((1280, 900)),
    };
    (browser, ui, events)
}

/// Chromium on warden's page, with the profile folder it lives in; end it with
/// [`Browsing::finish`].
pub(crate) struct Browsing {
    browser: Browser,
    events: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Browsing {
    /// Ends the test as [`finish_clean`] does.
    pub(crate) async fn finish(self, ui: &Ui) {
        finish_clean(self.browser, ui, self.events).await;
    }
}

/// Adds the user `admin` (password [`ADMIN_PASSWORD`]) and opens warden's page, signed
/// out, in Chromium with a fresh profile.
pub(crate) async fn open_warden(w: &Warden) -> (Browsing, Ui) {
    add_user(w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    let browsing = Browsing {
        browser,
        events,
        _profile: profile,
    };
    (browsing, ui)
}

/// [`open_warden`], then signed in as `admin` with the overview listing `program`.
pub(crate) async fn admin_seeing(w: &Warden, program: &str) -> (Browsing, Ui) {
    let (browsing, ui) = open_warden(w).await;
    login_seeing(&ui, "admin", ADMIN_PASSWORD, program).await;
    (browsing, ui)
}

pub(crate) fn add_user(w: &Warden, name: &str, role: &str, password: &str) {
    let (st, _, err) = cli(
        &w.data_dir,
        &["user", "add", name, "--role", role, "--password-stdin"],
        Some(password),
    );
    assert!(st.success(), "user add {name}: {err}");
}

/// The demo game server, defined as `warden serve --demo` defines it (src/demo.rs), but
/// with a one-second start period so "running" is reached quickly.
pub(crate) async fn create_demo(w: &Warden) {
    let world = w.data_dir.join("demo-world");
    std::fs::create_dir_all(&world).expect("world dir");
    let world = world.to_string_lossy().into_owned();
    w.create(json!({
        "name": "demo",
        "display_name": "Demo world",
        "command": bin(),
        "args": ["demo-game", "--save-dir", world],
        "cwd": world,
        "start_seconds": 1,
        "stop": {"stdin": "stop"}
    }))
    .await;
}

pub(crate) async fn login(ui: &Ui, user: &str, password: &str) {
    login_seeing(ui, user, password, "demo").await;
}

/// Logs in and waits for the overview to list `program` and the live connection.
pub(crate) async fn login_seeing(ui: &Ui, user: &str, password: &str, program: &str) {
    ui.wait(
        "!!document.querySelector('#login-user')",
        Duration::from_secs(15),
        "the login form",
    )
    .await;
    ui.type_into("#login-user", user).await;
    ui.type_into("#login-password", password).await;
    ui.click("form.login-card button[type=submit]").await;
    ui.wait(
        &format!("!!document.querySelector('[data-program={program}]')"),
        Duration::from_secs(10),
        "the overview with the program",
    )
    .await;
    ui.wait(
        "document.querySelector('[data-live]').dataset.live === 'open'",
        Duration::from_secs(10),
        "the live connection",
    )
    .await;
}

pub(crate) fn row_state(name: &str) -> String {
    format!("(document.querySelector('[data-program={name}] [data-state]') || {{}}).dataset?.state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_works_end_to_end() {
    let w = Warden::start().await;
    create_demo(&w).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;

    // First run: no user exists, the login page says how to create one.
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    ui.wait(
        "!!document.querySelector('[data-first-run]')",
        Duration::from_secs(15),
        "the first-run hint",
    )
    .await;
    // Page weight of a cold first load: every module the overview needs is already
    // loaded here (app.js imports all pages statically; only uPlot is loaded later).
    let (transferred, decoded): (f64, f64) = ui
        .eval(
            "(() => { let t = 0, d = 0; for (const e of [...performance.getEntriesByType('navigation'),                ...performance.getEntriesByType('resource')]) { t += e.transferSize; d += e.decodedBodySize; }                return [t, d]; })()",
        )
        .await;
    println!(
        "first load: {:.1} KB transferred (gzip), {:.1} KB decoded",
        transferred / 1024.0,
        decoded / 1024.0
    );
    assert!(
        transferred < 300.0 * 1024.0,
        "first load is {transferred} bytes"
    );
    ui.shot("01-login-first-run").await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    add_user(&w, "viewer", "viewer", VIEWER_PASSWORD);
    ui.page.reload().await.expect("reload");
    ui.wait(
        "!!document.querySelector('#login-user') && !document.querySelector('[data-first-run]')",
        Duration::from_secs(15),
        "the login form without the first-run hint",
    )
    .await;
    ui.shot("02-login").await;

    // Log in; the overview lists the demo program, stopped.
    login(&ui, "admin", ADMIN_PASSWORD).await;
    assert_eq!(ui.eval::<String>(&row_state("demo")).await, "stopped");
    // A marker that a reload would wipe: every later change must arrive live.
    let _: bool = ui.eval("window.__noReload = true; true").await;

    // Start: the row shows "running" within 2 s, pushed over the WebSocket.
    let started = Instant::now();
    ui.click("[data-program=demo] [data-action=start]").await;
    ui.wait(
        &format!("{} === 'running'", row_state("demo")),
        Duration::from_secs(2),
        "the demo program shown as running within 2 s",
    )
    .await;
    println!(
        "demo shown as running {:?} after clicking start",
        started.elapsed()
    );
    ui.wait(
        "document.querySelector('[data-counts]').textContent.includes('1 running')",
        Duration::from_secs(5),
        "the running count",
    )
    .await;
    ui.shot("03-overview").await;

    // The program page: console tail, charts, events.
    ui.click("[data-program=demo] .c-name a").await;
    ui.wait(
        "!!document.querySelector('[data-program-page=demo] .console .line')",
        Duration::from_secs(10),
        "console lines on the program page",
    )
    .await;
    let (metrics_status, _) = w
        .get(&format!(
            "/api/programs/demo/metrics?from={}&to={}&points=10&agg=avg",
            0,
            i64::MAX / 2
        ))
        .await;
    if metrics_status == StatusCode::NOT_FOUND {
        // Without the metrics service the charts stay empty and say why.
        ui.wait(
            "!!document.querySelector('[data-metrics-unavailable]') && !!document.querySelector('[data-chart=cpu] canvas')",
            Duration::from_secs(10),
            "the no-metrics note beside empty charts",
        )
        .await;
        // Live samples still draw: hand the page three as the hub delivers them (no
        // sampler publishes real ones on this build), and the canvas must change.
        let _: bool = ui
            .eval(
                "(async () => {
                   const { live } = await import(document.querySelector('script[type=module]').src.replace('app.js', 'lib/live.js'));
                   window.__cpuBefore = document.querySelector('[data-chart=cpu] canvas').toDataURL();
                   for (let i = 3; i > 0; i--) live.dispatch({type: 'sample', program: 'demo', ts: Date.now() - i * 1000,
                     cpu_percent: 20 * i, memory_bytes: 5e7, virtual_bytes: 0, threads: 1, open_files: 1,
                     disk_read_bps: 0, disk_write_bps: 0});
                   return true;
                 })()",
            )
            .await;
        ui.wait(
            "(() => { const f = document.querySelector('[data-chart=cpu]'); \
               return Number(f.dataset.points) === 3 && f.querySelector('canvas').toDataURL() !== window.__cpuBefore; })()",
            Duration::from_secs(10),
            "the CPU chart drawing live samples",
        )
        .await;
        println!(
            "NOTE: /api/programs/{{name}}/metrics answers 404 on this build: the CPU chart was checked \
             with live samples only, not with stored history. Re-run this test once metrics is merged."
        );
    } else {
        ui.wait(
            "(() => { const f = document.querySelector('[data-chart=cpu]'); \
               return !!f && Number(f.dataset.points) > 0 && !!f.querySelector('canvas'); })()",
            Duration::from_secs(15),
            "the CPU chart drawn with data",
        )
        .await;
    }

    // A console command's output appears live.
    ui.type_into("#console-input", "say hello-from-the-browser")
        .await;
    ui.page
        .find_element("#console-input")
        .await
        .expect("console input")
        .press_key("Enter")
        .await
        .expect("enter");
    ui.wait(
        "document.querySelector('.console').textContent.includes('[Server] hello-from-the-browser')",
        Duration::from_secs(5),
        "the command's output in the console",
    )
    .await;
    // History: arrow-up brings the command back.
    ui.wait(
        "document.querySelector('#console-input').value === ''",
        Duration::from_secs(5),
        "the command box cleared",
    )
    .await;
    ui.page
        .find_element("#console-input")
        .await
        .expect("console input")
        .press_key("ArrowUp")
        .await
        .expect("arrow up");
    ui.wait(
        "document.querySelector('#console-input').value === 'say hello-from-the-browser'",
        Duration::from_secs(5),
        "the command history",
    )
    .await;
    ui.wait(
        "document.querySelectorAll('.timeline li').length >= 2",
        Duration::from_secs(5),
        "start events in the timeline",
    )
    .await;
    ui.shot("04-program").await;

    // Stop asks for confirmation, then the state changes without a reload.
    ui.click(".program-head [data-action=stop]").await;
    ui.wait(
        "document.querySelector('dialog.confirm').open",
        Duration::from_secs(5),
        "the confirmation dialog",
    )
    .await;
    ui.shot("05-confirm-stop").await;
    ui.click("dialog.confirm [data-confirm=yes]").await;
    ui.wait(
        "document.querySelector('.program-head [data-state]').dataset.state === 'stopped'",
        Duration::from_secs(35),
        "the program page showing stopped",
    )
    .await;
    assert!(
        ui.eval::<bool>("window.__noReload === true").await,
        "the page reloaded"
    );

    // The edit form shows the API's validation errors beside the fields.
    ui.go(
        "#/p/demo/edit",
        "!!document.querySelector('#f-start_seconds')",
    )
    .await;
    let _: bool = ui
        .eval(
            "(() => { const i = document.querySelector('#f-start_seconds'); i.value = '99999'; \
               i.dispatchEvent(new Event('input', {bubbles: true})); return true; })()",
        )
        .await;
    ui.click(".program-form button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('#f-start_seconds-error') && document.querySelector('#f-start_seconds').getAttribute('aria-invalid') === 'true'",
        Duration::from_secs(5),
        "the inline error from the API's 422 details",
    )
    .await;
    ui.shot("06-edit-invalid").await;
    ui.go(
        "#/new",
        "!!document.querySelector('#f-name') && !document.querySelector('#f-name').disabled",
    )
    .await;
    ui.shot("07-new-program").await;
    ui.go(
        "#/users",
        "document.querySelectorAll('table tbody tr').length >= 3",
    )
    .await;
    ui.shot("08-users").await;
    ui.go("#/settings", "!!document.querySelector('#set-lang')")
        .await;
    ui.shot("09-settings").await;
    ui.go("#/about", "!!document.querySelector('[data-version]')")
        .await;
    ui.shot("10-about").await;

    // Korean: the switch changes the interface text (and back).
    let _: bool = ui
        .eval(
            "(() => { const s = document.querySelector('select.lang'); s.value = 'ko'; \
               s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
        )
        .await;
    ui.go(
        "#/",
        "document.querySelector('nav').textContent.includes('개요')",
    )
    .await;
    ui.wait(
        &format!("{} === 'stopped' && document.querySelector('[data-program=demo]').textContent.includes('중지됨')", row_state("demo")),
        Duration::from_secs(5),
        "Korean state names",
    )
    .await;
    assert_eq!(
        ui.eval::<String>("document.documentElement.lang").await,
        "ko"
    );
    let missing: Vec<String> = ui
        .eval("import(document.querySelector('script[type=module]').src.replace('app.js', 'lib/i18n.js')).then(m => m.missing())")
        .await;
    assert!(missing.is_empty(), "catalogue keys missing: {missing:?}");
    ui.shot("11-overview-ko").await;
    let _: bool = ui
        .eval(
            "(() => { const s = document.querySelector('select.lang'); s.value = 'en'; \
               s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
        )
        .await;
    ui.wait(
        "document.querySelector('nav').textContent.includes('Overview')",
        Duration::from_secs(5),
        "English again",
    )
    .await;

    // 360 px wide: cards, nothing wider than the screen. Dark theme for the record.
    ui.set_width(360, 780).await;
    let _: bool = ui
        .eval("document.documentElement.setAttribute('data-theme', 'dark'); true")
        .await;
    ui.assert_fits(360, "the overview at 360 px").await;
    ui.shot("12-overview-360-dark").await;
    ui.go(
        "#/p/demo",
        "!!document.querySelector('[data-program-page=demo] .console')",
    )
    .await;
    ui.assert_fits(360, "the program page at 360 px").await;
    ui.shot("13-program-360-dark").await;
    ui.set_width(1280, 900).await;
    let _: bool = ui
        .eval("document.documentElement.removeAttribute('data-theme'); true")
        .await;

    // A viewer sees no start/stop buttons and no command box...
    ui.go("#/", "!!document.querySelector('[data-program=demo]')")
        .await;
    ui.click(".top button.btn").await; // log out
    login(&ui, "viewer", VIEWER_PASSWORD).await;
    assert_eq!(
        ui.eval::<u32>("document.querySelectorAll('[data-action]').length")
            .await,
        0,
        "a viewer must not see action buttons on the overview"
    );
    ui.go(
        "#/p/demo",
        "!!document.querySelector('[data-program-page=demo] .facts')",
    )
    .await;
    // `viewer` holds `view` only: the console (reading it is the `console` permission)
    // is not offered either.
    assert_eq!(
        ui.eval::<u32>(
            "document.querySelectorAll('[data-action], .console, #console-input, a[href$=\"/edit\"]').length"
        )
        .await,
        0,
        "a viewer must not see actions, the console, the command box or the edit link"
    );
    ui.shot("14-program-viewer").await;
    // ...and the API refuses them anyway: from this session (with its CSRF token)...
    let refused: u16 = ui
        .eval(
            "fetch('/api/auth/me').then(r => r.json()).then(me => fetch('/api/programs/demo/start', \
               {method: 'POST', headers: {'X-CSRF-Token': me.csrf_token}})).then(r => r.status)",
        )
        .await;
    assert_eq!(refused, 403, "the viewer's session may not start programs");
    // ...and with a viewer token.
    let viewer_token = make_token(&w.data_dir, "viewer");
    let (st, v) = w
        .call_as(
            Some(&viewer_token),
            Method::POST,
            "/api/programs/demo/stop",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(w.program("demo").await["state"], "stopped");

    // No page reported an error. Failed requests are only the expected ones.
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    let expected = |(url, text): &(String, String)| {
        (url.ends_with("/api/auth/me") && text.contains("401"))
            || (url.ends_with("/api/programs/demo/start") && text.contains("403"))
            || (url.ends_with("/api/programs/demo") && text.contains("422"))
            || (metrics_status == StatusCode::NOT_FOUND
                && (url.contains("/api/programs/demo/metrics")
                    || url.contains("/api/system/stats"))
                && text.contains("404"))
    };
    let unexpected: Vec<_> = problems.network.iter().filter(|n| !expected(n)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected failed requests: {unexpected:#?}"
    );

    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

#[tokio::test]
async fn the_page_and_assets_are_cache_busted_and_compressed() {
    let w = Warden::start().await;
    // reqwest here does not decompress: ask for the plain page to read it.
    let resp = w
        .http
        .get(format!("{}/", w.url))
        .send()
        .await
        .expect("index");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    let page = resp.text().await.expect("page");
    let prefix = page
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split("/app.js").next())
        .expect("versioned app.js URL")
        .to_string();
    assert!(
        prefix.starts_with("/assets/") && prefix.len() > "/assets/".len(),
        "{prefix}"
    );

    let asset = w
        .http
        .get(format!("{}{prefix}/vendor/preact.mjs", w.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()["content-encoding"], "gzip");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );

    // Without gzip in Accept-Encoding the plain file is sent.
    let plain = w
        .http
        .get(format!("{}{prefix}/app.js", w.url))
        .send()
        .await
        .expect("plain");
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.expect("body").contains("render("));

    // Another version's URL is not served (it would be cached as immutable).
    let stale = w
        .http
        .get(format!("{}/assets/000000000000/app.js", w.url))
        .send()
        .await
        .expect("stale");
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_first_run_state_is_public_and_about_is_not() {
    let w = Warden::start().await;
    let (st, v) = w.call_as(None, Method::GET, "/api/setup", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"has_users": false}));
    add_user(&w, "someone", "viewer", VIEWER_PASSWORD);
    let (_, v) = w.call_as(None, Method::GET, "/api/setup", None).await;
    assert_eq!(v, json!({"has_users": true}));

    let (st, _) = w
        .call_as(None, Method::GET, "/api/system/about", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v): (StatusCode, Value) = w.get("/api/system/about").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let dir = std::fs::canonicalize(&w.data_dir).expect("canonical");
    assert_eq!(
        std::fs::canonicalize(v["data_dir"].as_str().expect("dir")).expect("canonical"),
        dir
    );
    assert!(v["uptime_seconds"].as_u64().is_some());
}

/// Fifty programs, one sample each: only the row a sample belongs to changes. The samples
/// are handed to the page's live connection as the hub would deliver them (the metrics
/// sampler that publishes real ones lands separately).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sample_repaints_only_its_own_row() {
    // The samples below are injected; real ones (every second by default) would land in
    // other rows at random moments, so the sampler is slowed right down.
    let tmp = tempfile::tempdir().expect("tmp");
    let w = Warden::start_in(tmp.path(), "[metrics]\nsample_interval_ms = 600000\n").await;
    create_demo(&w).await;
    for i in 1..50 {
        w.create(json!({"name": format!("idle-{i:02}"), "command": "sleep", "args": ["1000"], "start_seconds": 0}))
            .await;
    }
    for i in 1..50 {
        let (st, v) = w
            .post(&format!("/api/programs/idle-{i:02}/start"), json!(null))
            .await;
        assert!(st.is_success(), "{v}");
    }
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.wait(
        "document.querySelectorAll('.programs [data-program]').length === 50 && \
         document.querySelectorAll('.programs [data-state=running]').length === 49",
        Duration::from_secs(15),
        "fifty rows, 49 running",
    )
    .await;

    // One sample for idle-07: every DOM change lands inside that row.
    let foreign: u32 = ui
        .eval(
            "(async () => {
               const { live } = await import(document.querySelector('script[type=module]').src.replace('app.js', 'lib/live.js'));
               const changed = new Set();
               const mo = new MutationObserver(ms => ms.forEach(m => {
                 const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
                 // Uptimes tick every second on their own; they are not caused by samples.
                 if (el.closest('.c-uptime')) return;
                 const row = el.closest('[data-program]');
                 changed.add(row ? row.dataset.program : 'outside');
               }));
               mo.observe(document.querySelector('.programs'), {subtree: true, childList: true, characterData: true, attributes: true});
               for (let i = 0; i < 3; i++) {
                 live.dispatch({type: 'sample', program: 'idle-07', ts: Date.now() + i, cpu_percent: 10 + i,
                   memory_bytes: 1048576 * (5 + i), virtual_bytes: 0, threads: 1, open_files: 3, disk_read_bps: 0, disk_write_bps: 0});
                 await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
               }
               mo.disconnect();
               return [...changed].filter(p => p !== 'idle-07').length;
             })()",
        )
        .await;
    assert_eq!(foreign, 0, "a sample for one program changed other rows");
    ui.wait(
        "document.querySelector('[data-program=idle-07] .c-cpu .num').textContent.includes('12')",
        Duration::from_secs(5),
        "the sampled CPU value in its row",
    )
    .await;

    // A round of samples for every program: how long the page takes to apply it.
    let ms: f64 = ui
        .eval(
            "(async () => {
               const { live } = await import(document.querySelector('script[type=module]').src.replace('app.js', 'lib/live.js'));
               const names = [...document.querySelectorAll('.programs [data-program]')].map(r => r.dataset.program);
               let total = 0;
               for (let round = 0; round < 10; round++) {
                 const t0 = performance.now();
                 for (const n of names) live.dispatch({type: 'sample', program: n, ts: Date.now() + round, cpu_percent: Math.random() * 100,
                   memory_bytes: Math.random() * 1e9, virtual_bytes: 0, threads: 1, open_files: 1, disk_read_bps: 0, disk_write_bps: 0, players: 3});
                 // Preact renders in a microtask; the timer runs after it (script and DOM
                 // work, not the paint).
                 await new Promise(r => setTimeout(r, 0));
                 total += performance.now() - t0;
                 await new Promise(r => requestAnimationFrame(r));
               }
               return total / 10;
             })()",
        )
        .await;
    println!(
        "applying one sample for each of 50 programs took {ms:.1} ms per round (mean of 10, headless Chromium)"
    );
    assert!(ms < 250.0, "a round of 50 samples took {ms} ms");
    ui.shot("15-overview-50-programs").await;

    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

const RCON_PASSWORD: &str = "Rc0n-web-Zq9";

/// A Minecraft-profile demo game server with RCON, SLP and a liveness check, working in
/// `world` (which its backups and file browser cover). The RCON password is read from a
/// file, as in tests/games.rs, so it is not on the command line.
async fn create_game(w: &Warden, world: &Path) {
    std::fs::create_dir_all(world).expect("world dir");
    std::fs::write(world.join("rcon-password"), RCON_PASSWORD).expect("password file");
    let (rcon, slp) = (free_tcp_port(), free_tcp_port());
    let script = format!(
        r#"exec "$0" demo-game --startup-ms 200 --save-dir "$1" --rcon-port {rcon} --rcon-password "$(cat "$1/rcon-password")" --slp-port {slp} --query-port {} --rest-port {} --rest-password x"#,
        free_udp_port(),
        free_tcp_port()
    );
    let world = world.to_string_lossy().into_owned();
    w.create(json!({
        "name": "mc",
        "command": "sh",
        "args": ["-c", script, bin(), world],
        "cwd": world,
        "start_seconds": 60,
        "stop": {"signal": "SIGTERM", "timeout_seconds": 20},
        "game": {
            "profile": "minecraft",
            "rcon": {"port": rcon, "password": RCON_PASSWORD},
            "query": {"kind": "slp", "port": slp},
            "liveness": {"interval_seconds": 1}
        }
    }))
    .await;
}

/// An HTTP endpoint that answers 200 to everything and counts the requests.
async fn webhook_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

/// Alerts, schedules and jobs, backups, files, game actions and the game profile in the
/// form, each driven through the dashboard, with a screenshot of every page, the 360 px
/// layout, a viewer's read-only view, and no console errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operations_pages_work() {
    let w = Warden::start().await;
    let world = w.data_dir.join("mc-world");
    create_game(&w, &world).await;
    std::fs::write(world.join("server.properties"), "motd=before\n").expect("file");
    // 3 MiB read at 1 MiB/s: the backup runs long enough to show its progress bar.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(world.join("region.dat"), blob).expect("blob");
    let (st, v) = w
        .call_as(
            Some(&w.token),
            Method::PUT,
            "/api/programs/mc/backup-settings",
            Some(json!({"max_mib_per_second": 1, "exclude": ["rcon-password"]})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "tidy", "steps": [{"name": "sweep", "command": "sh", "args": ["-c", "echo tidy-output"]}]}),
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
    // The profiles endpoint gives what the form pre-fills, from the server's own defaults.
    let (st, v) = w.get("/api/games/profiles").await;
    assert_eq!(st, StatusCode::OK);
    let mc = v["profiles"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["profile"] == "minecraft"))
        .cloned()
        .expect("minecraft profile");
    assert_eq!(mc["template"]["rcon"]["port"], 25575, "{mc}");
    assert_eq!(
        mc["stop_steps"],
        json!([{"rcon": "save-all"}, {"rcon": "stop"}])
    );
    assert_eq!(mc["save_rcon"], "save-all");
    let (url, hits) = webhook_receiver().await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    add_user(&w, "viewer", "viewer", VIEWER_PASSWORD);

    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "mc").await;

    // ---- alerts: a webhook channel, "send test" delivered, its log, a rule with an
    // inline error from the API.
    ui.go("#/alerts", "!!document.querySelector('[data-add-channel]')")
        .await;
    ui.click("[data-add-channel]").await;
    ui.set_value("#ch-name", "hooks").await;
    // Discord is the default kind; this channel is a plain webhook.
    let kind: String = ui.eval("document.querySelector('#ch-kind').value").await;
    assert_eq!(kind, "discord");
    ui.set_value("#ch-kind", "webhook").await;
    ui.set_value("#ch-url", &url).await;
    ui.click("[data-event=crashed]").await;
    ui.click("[data-event=fatal]").await;
    ui.click("[data-channel-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-channel=hooks] [data-breaker=closed]')",
        Duration::from_secs(5),
        "the new channel",
    )
    .await;
    ui.click("[data-channel=hooks] [data-test]").await;
    ui.wait(
        "!!document.querySelector('[data-channel=hooks] [data-test-result=delivered]')",
        Duration::from_secs(15),
        "the test delivered",
    )
    .await;
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    ui.click("[data-channel=hooks] .row.end button").await; // the delivery log
    ui.wait(
        "!!document.querySelector('[data-deliveries=hooks] [data-delivery] [data-status=delivered]')",
        Duration::from_secs(5),
        "the delivery log",
    )
    .await;
    ui.click("[data-add-rule]").await;
    ui.set_value("#ru-name", "loop").await;
    // A condition typed by hand, for the server's inline error.
    ui.click("[data-mode=text]").await;
    ui.set_value("#ru-condition", "crashed >= nonsense").await;
    ui.click("[data-rule-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('#ru-condition-error') && document.querySelector('#ru-condition').getAttribute('aria-invalid') === 'true'",
        Duration::from_secs(5),
        "the rule's inline error",
    )
    .await;
    ui.set_value("#ru-condition", "crashed >= 3 in 10m").await;
    ui.click("[data-rule-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-rule=loop]') && !document.querySelector('[data-rule-form]')",
        Duration::from_secs(5),
        "the new rule",
    )
    .await;
    ui.shot("16-alerts").await;

    // ---- schedules and jobs: next runs, run now → a run that succeeds (refreshed by the
    // live events), the job's run detail with its output.
    ui.go(
        "#/schedules",
        "document.querySelectorAll('[data-schedule=nightly] [data-next-runs] li').length === 5",
    )
    .await;
    assert!(
        ui.eval::<bool>(
            "document.querySelector('[data-schedule=nightly]').textContent.includes('Asia/Seoul')"
        )
        .await
    );
    // An administrator defines a job in its builder: the API's 422 detail is shown beside
    // the field it names, then the job is created.
    ui.click("[data-new=job]").await;
    ui.wait(
        "!!document.querySelector('#jb-name')",
        Duration::from_secs(5),
        "the job builder",
    )
    .await;
    ui.type_into("#jb-name", "Echo").await;
    ui.type_into("#jb-step-0-name", "a").await;
    ui.type_into("#jb-step-0-command", "true").await;
    ui.click("[data-builder=job] button[type=submit]").await;
    ui.wait(
        "(document.querySelector('#jb-name-error') || {textContent: ''}).textContent.includes('Echo')",
        Duration::from_secs(5),
        "the job's name error",
    )
    .await;
    ui.set_value("#jb-name", "echo").await;
    ui.click("[data-builder=job] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-job=echo]') && !document.querySelector('[data-builder=job]')",
        Duration::from_secs(5),
        "the new job",
    )
    .await;
    ui.click("[data-schedule=nightly] [data-run-now]").await;
    ui.wait(
        "!!document.querySelector('[data-schedule-runs=nightly] [data-run] [data-status=succeeded]') && \
         !!document.querySelector('[data-schedule-runs=nightly] [data-task-state=succeeded]')",
        Duration::from_secs(20),
        "the schedule run succeeded",
    )
    .await;
    ui.wait(
        "!!document.querySelector('[data-job=tidy] [data-status=succeeded]')",
        Duration::from_secs(10),
        "the job's last run shown as succeeded",
    )
    .await;
    ui.click("[data-job=tidy] .row.end button").await; // history
    ui.wait(
        "!!document.querySelector('[data-job-runs=tidy] [data-run] button')",
        Duration::from_secs(5),
        "the job's runs",
    )
    .await;
    ui.click("[data-job-runs=tidy] [data-run] button").await;
    ui.wait(
        "(document.querySelector('[data-run-detail] pre.tail') || {textContent: ''}).textContent.includes('tidy-output')",
        Duration::from_secs(5),
        "the step's output tail",
    )
    .await;
    ui.shot("17-schedules").await;

    // ---- the game server: health, players, broadcast and save on its page.
    ui.go(
        "#/p/mc",
        "!!document.querySelector('[data-game=minecraft]')",
    )
    .await;
    ui.click(".program-head [data-action=start]").await;
    ui.wait(
        "document.querySelector('.program-head [data-state]').dataset.state === 'running' && \
         !!document.querySelector('[data-health=healthy]')",
        Duration::from_secs(30),
        "the game running and healthy",
    )
    .await;
    let (st, v) = w
        .post("/api/programs/mc/rcon", json!({"command": "join Steve"}))
        .await;
    assert!(st.is_success(), "{v}");
    ui.click("[data-load-players]").await;
    ui.wait(
        "(document.querySelector('[data-player-names]') || {textContent: ''}).textContent.includes('Steve')",
        Duration::from_secs(10),
        "the players list",
    )
    .await;
    ui.set_value("#broadcast-input", "hello-players").await;
    ui.click("[data-broadcast] button[type=submit]").await;
    ui.wait(
        "document.querySelector('.console').textContent.includes('[Server] hello-players')",
        Duration::from_secs(10),
        "the broadcast in the console",
    )
    .await;
    ui.click("[data-game] [data-save]").await;
    ui.wait(
        "document.querySelector('.console').textContent.includes('Saved the game')",
        Duration::from_secs(10),
        "the save in the console",
    )
    .await;

    // A restart only when nobody is online is refused while Steve plays, beside the form.
    ui.set_value("#ws-warn", "").await;
    ui.click("[data-warned-stop] input[type=checkbox]").await;
    ui.click("[data-warned-stop] button[type=submit]").await;
    ui.wait(
        "document.querySelector('dialog.confirm').open",
        Duration::from_secs(5),
        "the restart confirmation",
    )
    .await;
    ui.click("dialog.confirm [data-confirm=yes]").await;
    ui.wait(
        "!!document.querySelector('#ws-warn-error')",
        Duration::from_secs(10),
        "the players-online refusal",
    )
    .await;
    assert_eq!(w.program("mc").await["restarts"], 0);

    // ---- backups: create with a live progress bar, finished, verified.
    ui.click("[data-create-backup]").await;
    ui.wait(
        "!!document.querySelector('[data-backup-status=running] [data-progress] progress')",
        Duration::from_secs(10),
        "the running backup's progress bar",
    )
    .await;
    ui.wait(
        "[...document.querySelectorAll('[data-backup-status=running] progress')].some(p => p.value > 0)",
        Duration::from_secs(10),
        "the progress bar moving",
    )
    .await;
    ui.shot("18-backup-running").await;
    ui.wait(
        "!!document.querySelector('[data-backup-status=ok]') && !document.querySelector('[data-backup-status=running]')",
        Duration::from_secs(30),
        "the finished backup",
    )
    .await;
    ui.click("[data-backup-status=ok] [data-verify]").await;
    ui.wait(
        "!!document.querySelector('[data-backup-status=ok] [data-verified=true]')",
        Duration::from_secs(30),
        "the backup verified OK",
    )
    .await;
    ui.shot("19-program-game-backups").await;

    // ---- files: open, edit, save; a change on disk in between is a conflict.
    ui.go(
        "#/p/mc/files",
        "!!document.querySelector('[data-entry=\"server.properties\"]')",
    )
    .await;
    ui.click("[data-entry=\"server.properties\"] button.link")
        .await;
    ui.wait(
        "(document.querySelector('#file-text') || {}).value === 'motd=before\\n'",
        Duration::from_secs(5),
        "the file in the editor",
    )
    .await;
    ui.set_value("#file-text", "motd=from-the-browser\n").await;
    ui.click("[data-save-file]").await;
    let props = world.join("server.properties");
    wait_until(Duration::from_secs(20), "the file saved", || async {
        (std::fs::read_to_string(&props).ok()? == "motd=from-the-browser\n").then_some(())
    })
    .await;
    std::fs::write(&props, "motd=changed-on-disk\n").expect("write");
    ui.set_value("#file-text", "motd=second-edit\n").await;
    ui.click("[data-save-file]").await;
    ui.wait(
        "!!document.querySelector('[data-conflict]')",
        Duration::from_secs(5),
        "the conflict note",
    )
    .await;
    ui.shot("20-files-conflict").await;
    ui.click("[data-conflict] .btn.danger").await; // overwrite
    wait_until(Duration::from_secs(20), "the file overwritten", || async {
        (std::fs::read_to_string(&props).ok()? == "motd=second-edit\n").then_some(())
    })
    .await;

    // ---- restore: the backup brings the old file back; the running program is stopped
    // for it (the dialog's option, on by default for a running program) and started again.
    ui.go(
        "#/p/mc",
        "!!document.querySelector('[data-backup-status=ok] [data-restore]')",
    )
    .await;
    ui.click("[data-backup-status=ok] [data-restore]").await;
    ui.wait(
        "document.querySelector('dialog.confirm').open && document.querySelector('[data-confirm-option]').checked",
        Duration::from_secs(5),
        "the restore dialog with its stop option",
    )
    .await;
    ui.shot("20b-restore-confirm").await;
    ui.click("dialog.confirm [data-confirm=yes]").await;
    ui.wait(
        "!!document.querySelector('[data-restore-row] [data-status=ok]')",
        Duration::from_secs(60),
        "the restore finished",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&props).expect("restored file"),
        "motd=before\n"
    );
    w.wait_state("mc", "running", Duration::from_secs(30)).await;
    ui.wait(
        "document.querySelector('.program-head [data-state]').dataset.state === 'running'",
        Duration::from_secs(10),
        "the program running again after the restore",
    )
    .await;

    // ---- the form: choosing a profile pre-fills its defaults.
    ui.go(
        "#/new",
        "!!document.querySelector('#f-game-profile option[value=minecraft]')",
    )
    .await;
    ui.set_value("#f-game-profile", "minecraft").await;
    ui.wait(
        "(document.querySelector('#f-game-rcon-port') || {}).value === '25575' && \
         document.querySelector('#f-game-query-port').value === '25565' && \
         document.querySelector('#f-game-profile-help').textContent.includes('save-all')",
        Duration::from_secs(5),
        "the Minecraft defaults",
    )
    .await;
    ui.shot("21-new-game-program").await;

    // Korean: every new string is in the catalogue.
    let missing: Vec<String> = ui
        .eval("import(document.querySelector('script[type=module]').src.replace('app.js', 'lib/i18n.js')).then(m => m.missing())")
        .await;
    assert!(missing.is_empty(), "catalogue keys missing: {missing:?}");

    // 360 px: nothing wider than the screen on the new pages.
    ui.set_width(360, 780).await;
    for (hash, ready, name) in [
        (
            "#/alerts",
            "!!document.querySelector('[data-channel=hooks]')",
            "alerts",
        ),
        (
            "#/schedules",
            "!!document.querySelector('[data-schedule=nightly]')",
            "schedules",
        ),
        (
            "#/p/mc",
            "!!document.querySelector('[data-backup-status=ok]')",
            "program",
        ),
        (
            "#/p/mc/files",
            "!!document.querySelector('[data-entry]')",
            "files",
        ),
    ] {
        ui.go(hash, ready).await;
        ui.assert_fits(360, &format!("the {name} page at 360 px"))
            .await;
        ui.shot(&format!("22-{name}-360")).await;
    }
    ui.set_width(1280, 900).await;

    // A viewer sees no buttons that change anything.
    ui.go("#/", "!!document.querySelector('[data-program=mc]')")
        .await;
    ui.click(".top button.btn").await; // log out
    login_seeing(&ui, "viewer", VIEWER_PASSWORD, "mc").await;
    ui.go(
        "#/alerts",
        "!!document.querySelector('[data-channel=hooks]')",
    )
    .await;
    assert_eq!(
        ui.eval::<u32>(
            "document.querySelectorAll('[data-add-channel], [data-add-rule], [data-test]').length"
        )
        .await,
        0,
        "a viewer must not see alert changes"
    );
    ui.go(
        "#/schedules",
        "!!document.querySelector('[data-schedule=nightly]')",
    )
    .await;
    assert_eq!(
        ui.eval::<u32>("document.querySelectorAll('[data-run-now], [data-cancel]').length")
            .await,
        0,
        "a viewer must not run schedules or jobs"
    );
    ui.go(
        "#/p/mc",
        "!!document.querySelector('[data-backup-status=ok]')",
    )
    .await;
    assert_eq!(
        ui.eval::<u32>(
            "document.querySelectorAll('[data-create-backup], [data-verify], [data-restore], #broadcast-input, [data-save], [data-warned-stop]').length"
        )
        .await,
        0,
        "a viewer must not see backup or game actions"
    );
    ui.shot("23-program-game-viewer").await;

    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    let expected = |(url, text): &(String, String)| {
        (url.ends_with("/api/auth/me") && text.contains("401"))
            || ((url.ends_with("/api/alerts/rules") || url.ends_with("/api/jobs"))
                && text.contains("422"))
            || (url.ends_with("/api/programs/mc/files/text") && text.contains("409"))
            || (url.contains("/api/programs/mc/restart?only_when_empty=true")
                && text.contains("409"))
            || ((url.contains("/metrics") || url.contains("/api/system/stats"))
                && text.contains("404"))
    };
    let unexpected: Vec<_> = problems.network.iter().filter(|n| !expected(n)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected failed requests: {unexpected:#?}"
    );
    let (st, _) = w.post("/api/programs/mc/stop", json!(null)).await;
    assert!(st.is_success());
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}
