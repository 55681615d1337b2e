//! Forms instead of JSON: a person builds a job (steps, dependencies, overlap) and a
//! schedule (trigger preset, time zone, task list, condition) by clicking, typing and
//! choosing; the API then holds exactly what was typed, both run, and the next runs the
//! form showed are the right ones. A server error is shown beside the field it names; a
//! second schedule is built in Korean; the open builders fit a phone.

use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use serde_json::{Value, json};

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, create_demo, login, open_browser};

const T: Duration = crate::web::UI_WAIT;

/// The datetimes of the next runs the builder shows, once it shows five.
async fn preview_runs(ui: &Ui) -> Vec<String> {
    ui.wait(
        "document.querySelectorAll('[data-preview-runs] time').length === 5 && \
         document.querySelector('[data-preview]').dataset.busy === 'false'",
        T,
        "the next runs of the trigger",
    )
    .await;
    ui.eval("[...document.querySelectorAll('[data-preview-runs] time')].map(e => e.getAttribute('datetime'))")
        .await
}

/// The first five times after now that are `at` in `zone` on one of `days`.
fn expected_runs(zone: FixedOffset, days: &[Weekday], at: NaiveTime) -> Vec<DateTime<FixedOffset>> {
    let now = Utc::now().with_timezone(&zone);
    let mut out = Vec::new();
    let mut day = now.date_naive();
    while out.len() < 5 {
        if days.contains(&day.weekday()) {
            let t = zone
                .from_local_datetime(&day.and_time(at))
                .single()
                .expect("a fixed offset has one local time");
            if t > now {
                out.push(t);
            }
        }
        day = day.succ_opt().expect("next day");
    }
    out
}

fn parse_all(runs: &[String]) -> Vec<DateTime<FixedOffset>> {
    runs.iter()
        .map(|r| DateTime::parse_from_rfc3339(r).unwrap_or_else(|e| panic!("{r}: {e}")))
        .collect()
}

async fn get_ok(w: &Warden, path: &str) -> Value {
    let (st, v) = w.get(path).await;
    assert!(st.is_success(), "GET {path}: {st} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_and_a_job_are_built_with_forms() {
    let w = Warden::start().await;
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.go("#/schedules", "!!document.querySelector('[data-new=job]')")
        .await;

    // ---- a job: three steps, the last two ordered by dependencies ----
    ui.click("[data-new=job]").await;
    ui.wait("!!document.querySelector('#jb-name')", T, "the job builder")
        .await;
    ui.type_into("#jb-name", "Tidy Up").await; // refused by the server: not a slug
    ui.type_into("#jb-description", "sweep and pack").await;
    ui.set_value("#jb-overlap", "queue").await;
    ui.type_into("#jb-concurrency", "2").await;
    ui.type_into("#jb-step-0-name", "fetch").await;
    ui.type_into("#jb-step-0-command", "true").await;
    ui.click("[data-add-step]").await;
    ui.wait("!!document.querySelector('#jb-step-1-name')", T, "step 2")
        .await;
    ui.type_into("#jb-step-1-name", "pack").await;
    ui.type_into("#jb-step-1-command", "sh").await;
    // Arguments one per line (Enter between them).
    ui.type_into("#jb-step-1-args", "-c").await;
    ui.page
        .find_element("#jb-step-1-args")
        .await
        .expect("args")
        .press_key("Enter")
        .await
        .expect("enter");
    ui.page
        .find_element("#jb-step-1-args")
        .await
        .expect("args")
        .type_str("echo packed")
        .await
        .expect("type");
    ui.type_into("#jb-step-1-timeout", "30").await;
    ui.click("[data-deps='1'] [data-dep=fetch]").await;
    ui.click("[data-add-step]").await;
    ui.wait("!!document.querySelector('#jb-step-2-name')", T, "step 3")
        .await;
    ui.type_into("#jb-step-2-name", "report").await;
    ui.type_into("#jb-step-2-command", "true").await;
    ui.click("[data-deps='2'] [data-dep=pack]").await;
    // The run order drawn from the dependencies: fetch, then pack, then report.
    ui.wait(
        "JSON.stringify([...document.querySelectorAll('[data-job-order] li')].map(l => l.textContent.trim())) === '[\"fetch\",\"pack\",\"report\"]'",
        T,
        "the run order fetch → pack → report",
    )
    .await;
    ui.click("[data-builder=job] button[type=submit]").await;
    ui.wait(
        "(document.querySelector('#jb-name-error') || {textContent: ''}).textContent.includes('not a valid name')",
        T,
        "the server's error beside the name",
    )
    .await;
    ui.set_value("#jb-name", "").await;
    ui.type_into("#jb-name", "tidy").await;
    ui.click("[data-builder=job] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-job=tidy]') && !document.querySelector('[data-builder=job]')",
        T,
        "the new job in the list",
    )
    .await;
    let job = get_ok(&w, "/api/jobs/tidy").await;
    assert_eq!(job["description"], "sweep and pack", "{job}");
    assert_eq!(job["overlap"], "queue", "{job}");
    assert_eq!(job["concurrency"], 2, "{job}");
    let steps = job["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{job}");
    assert_eq!(steps[0]["name"], "fetch");
    assert_eq!(steps[0]["command"], "true");
    assert_eq!(steps[1]["name"], "pack");
    assert_eq!(steps[1]["args"], json!(["-c", "echo packed"]));
    assert_eq!(steps[1]["timeout_seconds"], 30);
    assert_eq!(steps[1]["depends_on"], json!(["fetch"]));
    assert_eq!(steps[2]["depends_on"], json!(["pack"]));

    // ---- a schedule: Mondays and Wednesdays at 05:30 in Seoul ----
    ui.click("[data-new=schedule]").await;
    ui.wait(
        "!!document.querySelector('#sb-name')",
        T,
        "the schedule builder",
    )
    .await;
    ui.type_into("#sb-name", "twice-weekly").await;
    // A cron typo is explained beside the cron field while typing (no failed request).
    ui.set_value("#sb-preset", "cron").await;
    ui.wait("!!document.querySelector('#sb-cron')", T, "the cron field")
        .await;
    ui.set_value("#sb-cron", "").await;
    ui.type_into("#sb-cron", "61 4 * * *").await;
    ui.wait(
        "(document.querySelector('#sb-cron-error') || {textContent: ''}).textContent.includes('61')",
        T,
        "the cron error beside the cron field",
    )
    .await;
    ui.set_value("#sb-preset", "weekly").await;
    ui.wait(
        "!!document.querySelector('[data-day=\"3\"]')",
        T,
        "the days",
    )
    .await;
    ui.set_value("#sb-time", "05:30").await;
    // Monday is ticked for a new weekly schedule; add Wednesday.
    assert!(
        ui.eval::<bool>("document.querySelector('[data-day=\"1\"]').checked")
            .await
    );
    ui.click("[data-day=\"3\"]").await;
    ui.set_value("#sb-tz", "").await;
    ui.type_into("#sb-tz", "Asia/Seoul").await;
    ui.wait(
        "document.querySelector('[data-trigger-explained]').textContent.includes('Every Monday, Wednesday at 05:30') && \
         document.querySelector('[data-trigger-expr]').textContent === '30 5 * * 1,3' && \
         document.querySelector('[data-preview]').textContent.includes('Asia/Seoul')",
        T,
        "the trigger explained",
    )
    .await;
    let shown = preview_runs(&ui).await;
    let seoul = FixedOffset::east_opt(9 * 3600).expect("offset");
    let at = NaiveTime::from_hms_opt(5, 30, 0).expect("time");
    assert_eq!(
        parse_all(&shown),
        expected_runs(seoul, &[Weekday::Mon, Weekday::Wed], at),
        "the next runs shown: {shown:?}"
    );
    assert!(
        shown.iter().all(|s| s.ends_with("+09:00")),
        "shown in Seoul's time: {shown:?}"
    );
    assert!(
        ui.eval::<bool>(
            "document.querySelector('[data-preview-runs] time').textContent.includes('5:30')"
        )
        .await,
        "the first run reads 5:30"
    );
    ui.set_value("#sb-if-running", "demo").await;
    // Task 1: a console line to demo; task 2: the job, 3 seconds later, going on on failure.
    ui.wait(
        "[...(document.querySelector('#sb-task-0-program') || {options: []}).options].some(o => o.value === 'demo')",
        T,
        "the program picker",
    )
    .await;
    ui.set_value("#sb-task-0-kind", "console").await;
    ui.wait(
        "!!document.querySelector('#sb-task-0-text')",
        T,
        "the console line field",
    )
    .await;
    ui.set_value("#sb-task-0-program", "demo").await;
    ui.type_into("#sb-task-0-text", "say restarting").await;
    ui.click("[data-add-task]").await;
    ui.wait("!!document.querySelector('#sb-task-1-kind')", T, "task 2")
        .await;
    ui.set_value("#sb-task-1-kind", "job").await;
    ui.wait(
        "[...(document.querySelector('#sb-task-1-job') || {options: []}).options].some(o => o.value === 'tidy')",
        T,
        "the job picker",
    )
    .await;
    ui.set_value("#sb-task-1-job", "tidy").await;
    ui.set_value("#sb-task-1-offset", "").await;
    ui.type_into("#sb-task-1-offset", "3").await;
    ui.set_value("#sb-task-1-onfail", "continue").await;
    ui.click("[data-builder=schedule] button[type=submit]")
        .await;
    ui.wait(
        "!!document.querySelector('[data-schedule=twice-weekly]') && !document.querySelector('[data-builder=schedule]')",
        T,
        "the new schedule in the list",
    )
    .await;
    let s = get_ok(&w, "/api/schedules/twice-weekly").await;
    assert_eq!(s["trigger"], "30 5 * * 1,3", "{s}");
    assert_eq!(s["timezone"], "Asia/Seoul", "{s}");
    assert_eq!(s["enabled"], true, "{s}");
    assert_eq!(
        s["conditions"],
        json!({"skip_if_not_running": "demo"}),
        "{s}"
    );
    assert_eq!(
        s["tasks"],
        json!([
            {"offset_seconds": 0, "on_failure": "abort",
             "action": {"kind": "console", "program": "demo", "line": "say restarting"}},
            {"offset_seconds": 3, "on_failure": "continue",
             "action": {"kind": "job", "job": "tidy", "wait": true}},
        ]),
        "{s}"
    );
    // What the form showed before saving is what the server now says, and the list too.
    let server: Vec<String> = serde_json::from_value(s["next_runs"].clone()).expect("runs");
    assert_eq!(parse_all(&shown), parse_all(&server));
    let listed: Vec<String> = ui
        .eval("[...document.querySelectorAll('[data-schedule=twice-weekly] [data-next-runs] time')].map(e => e.getAttribute('datetime'))")
        .await;
    assert_eq!(parse_all(&listed), parse_all(&server));

    // Both work: with demo running, the schedule runs its chain and the job succeeds.
    let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "running", Duration::from_secs(15))
        .await;
    let (st, v) = w.post("/api/schedules/twice-weekly/run", json!(null)).await;
    assert!(st.is_success(), "{v}");
    wait_until(
        Duration::from_secs(30),
        "the schedule's run succeeded",
        || async {
            let v = get_ok(&w, "/api/schedules/twice-weekly/runs").await;
            (v["runs"][0]["state"] == "succeeded").then_some(())
        },
    )
    .await;
    let job = get_ok(&w, "/api/jobs/tidy").await;
    assert_eq!(job["last_run"]["state"], "succeeded", "{job}");
    let (st, v) = w.get("/api/jobs/tidy/runs").await;
    assert!(st.is_success(), "{v}");
    let run = v["runs"][0]["id"].as_i64().expect("run id");
    let d = get_ok(&w, &format!("/api/jobs/tidy/runs/{run}")).await;
    let pack = d["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == "pack")
        .cloned()
        .expect("the pack step ran");
    assert!(
        pack["output_tail"]
            .as_str()
            .unwrap_or("")
            .contains("packed"),
        "{pack}"
    );

    // ---- in Korean: every day at 04:00 UTC, restart demo two minutes in ----
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "document.documentElement.lang === 'ko' && !!document.querySelector('[data-new=schedule]')",
        Duration::from_secs(15),
        "the Korean schedules page",
    )
    .await;
    ui.click("[data-new=schedule]").await;
    ui.wait(
        "!!document.querySelector('#sb-name')",
        T,
        "the schedule builder",
    )
    .await;
    assert_eq!(
        ui.eval::<String>("document.querySelector('label[for=sb-preset]').textContent")
            .await,
        "반복"
    );
    ui.type_into("#sb-name", "daily-restart").await;
    ui.set_value("#sb-preset", "daily").await;
    ui.set_value("#sb-tz", "").await;
    ui.type_into("#sb-tz", "UTC").await;
    ui.wait(
        "document.querySelector('[data-trigger-explained]').textContent.includes('매일 04:00') && \
         document.querySelector('[data-preview]').textContent.includes('다음 실행 (UTC)')",
        T,
        "the Korean explanation",
    )
    .await;
    let shown = preview_runs(&ui).await;
    let utc = FixedOffset::east_opt(0).expect("offset");
    let every_day = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let four = NaiveTime::from_hms_opt(4, 0, 0).expect("time");
    assert_eq!(parse_all(&shown), expected_runs(utc, &every_day, four));
    assert!(
        parse_all(&shown)
            .iter()
            .all(|t| t.hour() == 4 && t.minute() == 0)
    );
    ui.wait(
        "[...(document.querySelector('#sb-task-0-program') || {options: []}).options].some(o => o.value === 'demo')",
        T,
        "the program picker",
    )
    .await;
    ui.set_value("#sb-task-0-program", "demo").await;
    ui.set_value("#sb-task-0-offset", "").await;
    ui.type_into("#sb-task-0-offset", "2").await;
    ui.set_value("#sb-task-0-unit", "m").await;
    // On a phone the open builder needs no sideways scrolling.
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the schedule builder on a phone").await;
    ui.set_width(1280, 900).await;
    ui.click("[data-builder=schedule] button[type=submit]")
        .await;
    ui.wait(
        "!!document.querySelector('[data-schedule=daily-restart]') && !document.querySelector('[data-builder=schedule]')",
        T,
        "the Korean schedule in the list",
    )
    .await;
    let s = get_ok(&w, "/api/schedules/daily-restart").await;
    assert_eq!(s["trigger"], "0 4 * * *", "{s}");
    assert_eq!(s["timezone"], "UTC", "{s}");
    assert_eq!(
        s["tasks"],
        json!([{"offset_seconds": 120, "on_failure": "abort",
                "action": {"kind": "restart", "program": "demo"}}]),
        "{s}"
    );
    let server: Vec<String> = serde_json::from_value(s["next_runs"].clone()).expect("runs");
    assert_eq!(parse_all(&shown), parse_all(&server));

    // Editing reads the definition back into the form: the job's steps and order.
    ui.click("[data-job=tidy] [data-edit]").await;
    ui.wait(
        "document.querySelector('#jb-step-1-args') && document.querySelector('#jb-step-1-args').value === '-c\\necho packed' && \
         document.querySelectorAll('[data-job-order] li').length === 3",
        T,
        "the job read back into the builder",
    )
    .await;
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the job builder on a phone").await;

    // Nothing failed but the one refusal this test caused.
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    let unexpected: Vec<_> = problems
        .network
        .iter()
        .filter(|(url, text)| !(url.ends_with("/api/jobs") && text.contains("422")))
        .collect();
    assert!(unexpected.is_empty(), "failed requests: {unexpected:#?}");
    let (st, _) = w.post("/api/programs/demo/stop", json!(null)).await;
    assert!(st.is_success());
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

/// A program that is a game server, built in the form with no JSON: connections, a query
/// readiness, a liveness check, its own graceful stop steps (added, typed and reordered)
/// and `files_root`. The API then holds exactly that, the running game's health leaves
/// "Unknown", and editing reads every part back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_game_program_is_built_with_the_form() {
    let w = Warden::start().await;
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let world = w.data_dir.join("mc2-world");
    std::fs::create_dir_all(world.join("saves")).expect("world dir");
    let world = world.to_string_lossy().into_owned();
    let (rcon, slp) = (free_tcp_port(), free_tcp_port());
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.go(
        "#/new",
        "!!document.querySelector('#f-game-profile option[value=minecraft]')",
    )
    .await;

    ui.type_into("#f-name", "mc2").await;
    ui.type_into("#f-command", bin()).await;
    let args = [
        "demo-game",
        "--save-dir",
        &world,
        "--rcon-port",
        &rcon.to_string(),
        "--rcon-password",
        "hunter2",
        "--slp-port",
        &slp.to_string(),
    ]
    .join("\n");
    ui.set_value("#f-args", &args).await;
    ui.type_into("#f-cwd", &world).await;
    ui.type_into("#f-files_root", "saves").await;
    ui.set_value("#f-game-profile", "minecraft").await;
    ui.wait(
        "(document.querySelector('#f-game-rcon-port') || {}).value === '25575'",
        T,
        "the Minecraft defaults",
    )
    .await;
    ui.set_value("#f-game-rcon-port", "").await;
    ui.type_into("#f-game-rcon-port", &rcon.to_string()).await;
    ui.type_into("#f-game-rcon-password", "hunter2").await;
    ui.set_value("#f-game-query-port", "").await;
    ui.type_into("#f-game-query-port", &slp.to_string()).await;
    ui.set_value("#f-game-readiness-mode", "query").await;
    ui.set_value("#f-game-liveness-check", "query").await;
    ui.wait(
        "!!document.querySelector('#f-game-liveness-interval_seconds')",
        T,
        "the liveness fields",
    )
    .await;
    ui.set_value("#f-game-liveness-interval_seconds", "").await;
    ui.type_into("#f-game-liveness-interval_seconds", "1").await;
    ui.set_value("#f-game-liveness-failures", "").await;
    ui.type_into("#f-game-liveness-failures", "2").await;
    ui.click("#f-game-liveness-restart").await;

    // Own stop steps: they start as the profile's; clear them, then build a list.
    ui.click("[data-stop-steps-mode=custom]").await;
    ui.wait(
        "document.querySelectorAll('[data-stop-step]').length > 0",
        T,
        "the profile's stop steps to start from",
    )
    .await;
    while ui
        .eval::<bool>("!!document.querySelector('[data-remove-step]')")
        .await
    {
        ui.click("[data-remove-step]").await;
    }
    ui.click("[data-add-stop-step]").await;
    ui.type_into("#f-step-0-text", "stop").await;
    ui.click("[data-add-stop-step]").await;
    ui.set_value("#f-step-1-kind", "rcon").await;
    ui.type_into("#f-step-1-text", "save-all").await;
    ui.click("[data-add-stop-step]").await;
    ui.set_value("#f-step-2-kind", "rest_shutdown").await;
    ui.wait(
        "!!document.querySelector('#f-step-2-wait')",
        T,
        "the REST shutdown fields",
    )
    .await;
    ui.set_value("#f-step-2-message", "").await;
    ui.type_into("#f-step-2-message", "Back soon").await;
    ui.set_value("#f-step-2-wait", "").await;
    ui.type_into("#f-step-2-wait", "5").await;
    ui.click("[data-step-up='1']").await; // save-all before stop
    ui.wait(
        "document.querySelector('#f-step-0-text').value === 'save-all'",
        T,
        "save-all moved up",
    )
    .await;
    ui.click("[data-remove-step='2']").await; // the REST step after all
    ui.wait(
        "document.querySelectorAll('[data-stop-step]').length === 2",
        T,
        "two steps left",
    )
    .await;
    ui.shot("forms-program-game").await;
    ui.click("form.program-form button[type=submit]").await;
    ui.wait(
        "location.hash === '#/p/mc2'",
        Duration::from_secs(15),
        "the new program's page",
    )
    .await;

    let p = get_ok(&w, "/api/programs/mc2").await;
    assert_eq!(p["files_root"], "saves", "{p}");
    assert_eq!(p["cwd"], world.as_str(), "{p}");
    let g = &p["game"];
    assert_eq!(g["profile"], "minecraft", "{p}");
    assert_eq!(g["rcon"]["port"], rcon, "{p}");
    assert_eq!(g["query"]["kind"], "slp", "{p}");
    assert_eq!(g["query"]["port"], slp, "{p}");
    assert_eq!(g["readiness"], "query", "{p}");
    assert_eq!(
        g["liveness"],
        json!({"check": "query", "interval_seconds": 1, "failures": 2, "restart": true}),
        "{p}"
    );
    assert_eq!(
        g["stop_steps"],
        json!([{"rcon": "save-all"}, {"stdin": "stop"}]),
        "{p}"
    );

    // Running, the liveness check decides the health the page shows.
    let (st, v) = w.post("/api/programs/mc2/start", json!(null)).await;
    assert!(st.is_success(), "start: {st} {v}");
    w.wait_state("mc2", "running", Duration::from_secs(30))
        .await;
    ui.wait(
        "(document.querySelector('[data-health]') || {dataset: {}}).dataset.health === 'healthy'",
        Duration::from_secs(20),
        "the game healthy by its liveness check",
    )
    .await;

    // Editing reads every part back.
    ui.go(
        "#/p/mc2/edit",
        "(document.querySelector('#f-files_root') || {}).value === 'saves'",
    )
    .await;
    let shown: Vec<String> = ui
        .eval(
            "['#f-game-readiness-mode', '#f-game-liveness-check', '#f-game-liveness-interval_seconds', \
              '#f-game-liveness-failures', '#f-step-0-kind', '#f-step-0-text', '#f-step-1-kind', '#f-step-1-text'] \
              .map(s => document.querySelector(s).value)",
        )
        .await;
    assert_eq!(
        shown,
        [
            "query", "query", "1", "2", "rcon", "save-all", "stdin", "stop"
        ],
        "the form read back"
    );
    assert!(
        ui.eval::<bool>("document.querySelector('#f-game-liveness-restart').checked")
            .await
    );
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the game program form on a phone")
        .await;

    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    assert!(
        problems.network.is_empty(),
        "failed requests: {:#?}",
        problems.network
    );
    let (st, _) = w.post("/api/programs/mc2/stop", json!(null)).await;
    assert!(st.is_success());
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

/// Editing a program in the form keeps what the form does not show (dependencies, limits,
/// tags), and sets who it runs as: saved as typed, and the started process really runs
/// under that account when warden can switch accounts (it runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_form_sets_who_a_program_runs_as_and_keeps_what_it_does_not_show() {
    let w = Warden::start().await;
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let spec = json!({
        "name": "svc",
        "command": "/bin/sleep",
        "args": ["100000"],
        "tags": ["friends"],
        "after": ["demo"],
        "deps_timeout_seconds": 45,
        "limits": {"pids_max": 64},
        "allow_root": true,
    });
    let (st, v) = w.post("/api/programs", spec).await;
    assert!(st.is_success(), "create: {st} {v}");
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.go(
        "#/p/svc/edit",
        "(document.querySelector('#f-tags') || {}).value === 'friends'",
    )
    .await;
    assert!(
        ui.eval::<bool>("document.querySelector('#f-allow_root').checked")
            .await,
        "allow_root read back"
    );
    ui.type_into("#f-user", "nobody").await;
    ui.type_into("#f-group", "nogroup").await;
    ui.click("#f-allow_root").await;
    ui.set_value("#f-tags", "").await;
    ui.type_into("#f-tags", "friends, survival").await;
    ui.click("form.program-form button[type=submit]").await;
    ui.wait(
        "location.hash === '#/p/svc'",
        Duration::from_secs(15),
        "the program's page after saving",
    )
    .await;

    let p = get_ok(&w, "/api/programs/svc").await;
    assert_eq!(p["user"], "nobody", "{p}");
    assert_eq!(p["group"], "nogroup", "{p}");
    assert!(p.get("allow_root").is_none_or(|v| v == false), "{p}");
    assert_eq!(p["tags"], json!(["friends", "survival"]), "{p}");
    assert_eq!(p["after"], json!(["demo"]), "kept: {p}");
    assert_eq!(p["deps_timeout_seconds"], 45, "kept: {p}");
    assert_eq!(p["limits"], json!({"pids_max": 64}), "kept: {p}");

    // As root, warden switches the child to the account the form named.
    if nix::unistd::geteuid().is_root() {
        let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
        assert!(st.is_success(), "start demo: {st} {v}");
        let (st, v) = w.post("/api/programs/svc/start", json!(null)).await;
        assert!(st.is_success(), "start: {st} {v}");
        w.wait_state("svc", "running", Duration::from_secs(20))
            .await;
        let pid = get_ok(&w, "/api/programs/svc").await["pid"]
            .as_u64()
            .expect("a running program has a pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .expect("Uid line");
        let nobody = nix::unistd::User::from_name("nobody")
            .expect("passwd")
            .expect("nobody exists");
        assert_eq!(uid, nobody.uid.to_string(), "runs as nobody: {status}");
        let (st, _) = w.post("/api/programs/svc/stop", json!(null)).await;
        assert!(st.is_success());
    }

    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    assert!(
        problems.network.is_empty(),
        "failed requests: {:#?}",
        problems.network
    );
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}

/// Presses Enter in a field (a new line in a textarea).
async fn enter(ui: &Ui, selector: &str) {
    ui.page
        .find_element(selector)
        .await
        .expect("field")
        .press_key("Enter")
        .await
        .expect("enter");
}

/// Backup settings without JSON: globs typed line by line with a live preview of what they
/// cover, retention, steps before and after; the API then holds exactly that. "Back up
/// nightly" creates a schedule with one backup task at 04:00 in the browser's zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_settings_are_set_with_a_form() {
    let w = Warden::start().await;
    create_demo(&w).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let world = w.data_dir.join("demo-world");
    for (path, text) in [
        ("server.properties", "motd=hi\n"),
        ("world/level.dat", "level"),
        ("world/region/r.0.0.mca", "region"),
        ("logs/latest.log", "log"),
        ("cache.tmp", "tmp"),
    ] {
        let p = world.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(p, text).expect("file");
    }
    // The preview refuses what the settings would refuse, naming the field.
    let (st, v) = w
        .post(
            "/api/programs/demo/backup-settings/preview",
            json!({"include": ["../elsewhere"]}),
        )
        .await;
    assert_eq!(st.as_u16(), 422, "{v}");
    assert!(v.to_string().contains("include[0]"), "{v}");

    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.go(
        "#/p/demo",
        "!!document.querySelector('[data-bs-open] summary')",
    )
    .await;
    ui.click("[data-bs-open] summary").await;
    ui.wait(
        "(document.querySelector('#bs-include') || {}).value === '**' && \
         !!document.querySelector('[data-bs-count=\"5\"]')",
        T,
        "the defaults and a preview of all five files",
    )
    .await;

    ui.set_value("#bs-include", "").await;
    ui.type_into("#bs-include", "world").await;
    enter(&ui, "#bs-include").await;
    ui.page
        .find_element("#bs-include")
        .await
        .expect("include")
        .type_str("server.properties")
        .await
        .expect("type");
    ui.type_into("#bs-exclude", "**/*.mca").await;
    ui.wait(
        "document.querySelector('[data-bs-preview]').dataset.busy === 'false' && \
         JSON.stringify([...document.querySelectorAll('[data-bs-files] li')].map(l => l.textContent)) === \
         '[\"server.properties\",\"world/level.dat\"]'",
        T,
        "the preview of the typed globs",
    )
    .await;
    assert!(
        ui.eval::<String>("document.querySelector('[data-bs-count]').textContent")
            .await
            .starts_with("2 files"),
        "the count in words"
    );

    ui.type_into("#bs-keep_last", "7").await;
    ui.type_into("#bs-keep_daily", "3").await;
    ui.click("[data-bs-add=pre]").await;
    ui.type_into("#bs-pre-0-stdin", "save-off").await;
    ui.click("[data-bs-add=pre]").await;
    ui.type_into("#bs-pre-1-stdin", "save-all").await;
    ui.type_into("#bs-pre-1-wait_for", "Saved the game").await;
    ui.set_value("#bs-pre-1-timeout", "").await;
    ui.type_into("#bs-pre-1-timeout", "60").await;
    ui.click("[data-bs-add=post]").await;
    ui.type_into("#bs-post-0-stdin", "save-on").await;
    ui.shot("forms-backup-settings").await;
    ui.click("[data-bs-save]").await;
    let s = wait_until(T, "the saved backup settings", || async {
        let s = get_ok(&w, "/api/programs/demo/backup-settings").await;
        (s["include"] != json!(["**"])).then_some(s)
    })
    .await;
    assert_eq!(s["include"], json!(["world", "server.properties"]), "{s}");
    assert_eq!(s["exclude"], json!(["**/*.mca"]), "{s}");
    assert_eq!(
        s["retention"],
        json!({"keep_last": 7, "keep_daily": 3}),
        "{s}"
    );
    assert_eq!(
        s["pre"],
        json!([{"stdin": "save-off", "timeout_seconds": 30},
               {"stdin": "save-all", "wait_for": "Saved the game", "timeout_seconds": 60}]),
        "{s}"
    );
    assert_eq!(
        s["post"],
        json!([{"stdin": "save-on", "timeout_seconds": 30}]),
        "{s}"
    );
    assert_eq!(s["stop_during_backup"], false, "{s}");
    assert_eq!(
        s["zstd_level"], 3,
        "the settings the form does not show are kept: {s}"
    );

    // The nightly shortcut: a schedule at 04:00 in the browser's zone with one backup task.
    let zone: String = ui
        .eval("Intl.DateTimeFormat().resolvedOptions().timeZone")
        .await;
    ui.click("[data-bs-nightly]").await;
    let sch = wait_until(T, "the nightly backup schedule", || async {
        let (st, v) = w.get("/api/schedules/demo-nightly-backup").await;
        st.is_success().then_some(v)
    })
    .await;
    assert_eq!(sch["trigger"], "0 4 * * *", "{sch}");
    assert_eq!(sch["timezone"], zone.as_str(), "{sch}");
    assert_eq!(sch["enabled"], true, "{sch}");
    assert_eq!(
        sch["tasks"],
        json!([{"offset_seconds": 0, "on_failure": "abort",
                "action": {"kind": "backup", "program": "demo"}}]),
        "{sch}"
    );

    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the backup settings on a phone").await;
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    assert!(
        problems.network.is_empty(),
        "failed requests: {:#?}",
        problems.network
    );
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
    events.abort();
}
