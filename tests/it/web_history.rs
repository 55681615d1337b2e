//! The pictures people look at, checked by what a person sees: a known history of state
//! changes, job runs and backups is written into the store, and the program page's
//! availability strip (uptime and stretches, 24 h and 7 d), the job's durations with
//! p50/p90 and the backup sizes with the free space are read back from the page, in
//! English and in Korean.

use std::time::Duration;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, finish_clean, login_seeing, open_browser};
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const MIB: i64 = 1024 * 1024;

/// State changes of the seeded program, (hours ago, from, to). The 24-hour window starts
/// stopped, so the uptime does not depend on how long the test takes.
const CHANGES: [(i64, &str, &str); 10] = [
    (30, "stopped", "running"),
    (25, "running", "stopped"),
    (18, "stopped", "running"),
    (15, "running", "backoff"),
    (14, "backoff", "running"),
    (9, "running", "stopping"),
    (9, "stopping", "stopped"),
    (6, "stopped", "running"),
    (3, "running", "fatal"),
    (1, "fatal", "stopped"),
];

/// Writes the history straight into the store, as warden itself would have.
fn seed(w: &Warden, now: i64) {
    let db = rusqlite::Connection::open(w.data_dir.join("warden.db")).expect("open db");
    db.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    db.execute(
        "UPDATE programs SET created_at = ?1 WHERE name = 'strip'",
        [now - 30 * DAY],
    )
    .expect("created_at");
    for (ago, from, to) in CHANGES {
        let ts = now - ago * HOUR;
        let data =
            json!({"program": "strip", "ts": ts, "from": from, "to": to, "reason": "seeded"});
        db.execute(
            "INSERT INTO events(ts, program, kind, message, data) VALUES (?1, 'strip', 'state', ?2, ?3)",
            rusqlite::params![ts, format!("{from} -> {to}: seeded"), data.to_string()],
        )
        .expect("state event");
    }
    // Ten succeeded runs of 10 … 100 s and one failed run of 500 s (not in p50/p90).
    for i in 1..=11i64 {
        let started = now - (12 - i) * HOUR;
        let (state, secs) = if i == 11 {
            ("failed", 500)
        } else {
            ("succeeded", i * 10)
        };
        db.execute(
            "INSERT INTO job_runs(job, source, state, started_at, ended_at, duration_ms)
             VALUES ('build', 'manual:admin', ?1, ?2, ?3, ?4)",
            rusqlite::params![state, started, started + secs * 1000, secs * 1000],
        )
        .expect("job run");
    }
    // Four finished backups of 1 … 4 MiB and a failed one (not drawn).
    for i in 1..=5i64 {
        let started = now - (6 - i) * DAY;
        let (status, bytes) = if i == 5 {
            ("failed", None)
        } else {
            ("ok", Some(i * MIB))
        };
        db.execute(
            "INSERT INTO backups(program, status, reason, started_at, finished_at, archive_bytes, files, data_bytes)
             VALUES ('strip', ?1, 'manual by admin', ?2, ?3, ?4, 3, ?4)",
            rusqlite::params![status, started, started + 5000, bytes],
        )
        .expect("backup");
    }
}

/// Text of the first element matching `selector`, or "".
fn text_of(selector: &str) -> String {
    format!("(document.querySelector({selector:?}) || {{}}).textContent || ''")
}

async fn wait_text(ui: &Ui, selector: &str, want: &str) {
    let js = text_of(selector);
    ui.wait(
        &format!("({js}).replace(/\\s+/g, ' ').trim() === {want:?}"),
        Duration::from_secs(15),
        &format!("{selector} reading {want:?}"),
    )
    .await;
}

/// What a person reads, per language.
struct Seen {
    uptime_24h: &'static str,
    stretches_24h: &'static str,
    uptime_7d: &'static str,
    stretches_7d: &'static str,
    last_backup: &'static str,
    free_prefix: &'static str,
    p50: &'static str,
    p90: &'static str,
}

const ENGLISH: Seen = Seen {
    uptime_24h: "Up 45.8 % of the last 24 hours",
    stretches_24h: "· 8 stretches",
    uptime_7d: "Up 9.5 % of the last 7 days",
    stretches_7d: "· 10 stretches",
    last_backup: "Last backup 4.0 MiB",
    free_prefix: "Free at the destination: ",
    p50: "Median (p50) 50 s",
    p90: "90th percentile (p90) 1 min 30 s",
};

const KOREAN: Seen = Seen {
    uptime_24h: "최근 24시간 동안 45.8 % 가동",
    stretches_24h: "· 구간 8개",
    uptime_7d: "최근 7일 동안 9.5 % 가동",
    stretches_7d: "· 구간 10개",
    last_backup: "마지막 백업 4.0 MiB",
    free_prefix: "저장 위치 여유 공간: ",
    p50: "중앙값 50초",
    p90: "90번째 백분위수 1분 30초",
};

async fn check_pages(ui: &Ui, seen: &Seen) {
    ui.go(
        "#/p/strip",
        "!!document.querySelector('[data-availability=strip] [data-uptime]')",
    )
    .await;
    ui.click("[data-avail-range='24h']").await;
    ui.wait(
        "document.querySelector('[data-uptime]').dataset.uptime === '45.8' \
         && document.querySelectorAll('.strip [data-seg]').length === 8",
        Duration::from_secs(15),
        "the 24-hour strip",
    )
    .await;
    wait_text(ui, "[data-uptime] strong", seen.uptime_24h).await;
    wait_text(ui, "[data-segment-count]", seen.stretches_24h).await;
    let kinds: Vec<String> = ui
        .eval("[...document.querySelectorAll('.strip [data-seg]')].map(s => s.dataset.seg)")
        .await;
    assert_eq!(
        kinds,
        [
            "stopped", "running", "crashed", "running", "stopped", "running", "gave_up", "stopped"
        ],
        "the 24-hour strip's stretches"
    );
    // The stretches are as wide as their share of the day: the crash is one hour of 24.
    let crash_share: f64 = ui
        .eval("(() => { const s = document.querySelector('.strip [data-seg=crashed]'); \
               return s.getBoundingClientRect().width / s.parentElement.getBoundingClientRect().width; })()")
        .await;
    assert!(
        (crash_share - 1.0 / 24.0).abs() < 0.01,
        "the crash takes {crash_share} of the strip, not 1/24"
    );
    ui.click("[data-avail-range='7d']").await;
    ui.wait(
        "document.querySelector('[data-uptime]').dataset.uptime === '9.5' \
         && document.querySelectorAll('.strip [data-seg]').length === 10",
        Duration::from_secs(15),
        "the 7-day strip",
    )
    .await;
    wait_text(ui, "[data-uptime] strong", seen.uptime_7d).await;
    wait_text(ui, "[data-segment-count]", seen.stretches_7d).await;

    // Backup sizes: the four finished backups are drawn, the failed one is not.
    wait_text(ui, "[data-last-size]", seen.last_backup).await;
    ui.wait(
        &format!(
            "(() => {{ const f = document.querySelector('[data-chart=backup-sizes]'); \
               return !!(f && f.uplot) && JSON.stringify(f.uplot.data[1]) === '[{},{},{},{}]'; }})()",
            MIB,
            2 * MIB,
            3 * MIB,
            4 * MIB
        ),
        Duration::from_secs(15),
        "the backup sizes drawn",
    )
    .await;
    let free: String = ui.eval(&text_of("[data-free]")).await;
    let free_bytes: f64 = ui
        .eval("Number(document.querySelector('[data-free]').dataset.free)")
        .await;
    assert!(
        free.starts_with(seen.free_prefix) && free.contains("iB") && free_bytes > 0.0,
        "free space reads {free:?} ({free_bytes} bytes)"
    );
    ui.shot("history-program").await;

    // The job's durations: p50 and p90 of the succeeded runs, every finished run drawn.
    ui.go(
        "#/schedules",
        "!!document.querySelector('[data-job=build]')",
    )
    .await;
    ui.click("[data-job=build] button[aria-expanded=false]")
        .await;
    wait_text(ui, "[data-durations=build] [data-p50]", seen.p50).await;
    wait_text(ui, "[data-durations=build] [data-p90]", seen.p90).await;
    ui.wait(
        "(() => { const f = document.querySelector('[data-chart=durations-build]'); \
           return !!(f && f.uplot) && JSON.stringify(f.uplot.data[1]) === \
             '[10000,20000,30000,40000,50000,60000,70000,80000,90000,100000,500000]' \
           && f.uplot.data[2].every(v => v === 50000) && f.uplot.data[3].every(v => v === 90000); })()",
        Duration::from_secs(15),
        "the durations with their p50 and p90 lines",
    )
    .await;
    ui.shot("history-job").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pictures_show_the_stored_history() {
    let w = Warden::start().await;
    w.create(json!({"name": "strip", "command": "sleep", "args": ["1000"]}))
        .await;
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "build", "steps": [{"name": "make", "command": "true"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let now = chrono::Utc::now().timestamp_millis();
    seed(&w, now);

    // The API's figures first.
    let (st, v) = w.get("/api/programs/strip/availability").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["range"], "24h", "{v}");
    assert_eq!(v["segments"].as_array().map(Vec::len), Some(8), "{v}");
    assert_eq!(v["totals"]["running_ms"], 11 * HOUR, "{v}");
    assert_eq!(v["totals"]["crashed_ms"], HOUR, "{v}");
    assert_eq!(v["totals"]["gave_up_ms"], 2 * HOUR, "{v}");
    let up = v["uptime_percent"].as_f64().unwrap_or(-1.0);
    assert!((up - 1100.0 / 24.0).abs() < 1e-9, "{v}");
    let (st, v) = w.get("/api/programs/strip/availability?range=7d").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["segments"].as_array().map(Vec::len), Some(10), "{v}");
    assert_eq!(v["totals"]["running_ms"], 16 * HOUR, "{v}");
    let up = v["uptime_percent"].as_f64().unwrap_or(-1.0);
    assert!((up - 1600.0 / 168.0).abs() < 1e-9, "{v}");
    let (st, v) = w.get("/api/programs/strip/availability?range=1y").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = w.get("/api/programs/nothing/availability").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = w.get("/api/jobs/build/durations").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["p50_ms"].clone(), v["p90_ms"].clone()),
        (json!(50_000), json!(90_000)),
        "{v}"
    );
    assert_eq!(v["samples"], 10, "{v}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(11), "{v}");
    let (st, v) = w.get("/api/programs/strip/backup-sizes").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let sizes: Vec<Value> = v["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b["archive_bytes"].clone())
        .collect();
    assert_eq!(
        sizes,
        [json!(MIB), json!(2 * MIB), json!(3 * MIB), json!(4 * MIB)],
        "{v}"
    );
    assert!(v["free_bytes"].as_u64().unwrap_or(0) > 0, "{v}");

    add_user(&w, "admin", "admin", ADMIN_PASSWORD);
    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "strip").await;
    check_pages(&ui, &ENGLISH).await;

    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.hash = '#/'; location.reload(); true")
        .await;
    ui.wait(
        "document.documentElement.lang === 'ko' && !!document.querySelector('[data-program=strip]')",
        Duration::from_secs(15),
        "the Korean overview",
    )
    .await;
    check_pages(&ui, &KOREAN).await;

    finish_clean(browser, &ui, events).await;
}
