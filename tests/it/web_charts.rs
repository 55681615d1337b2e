//! The dashboard's pictures, checked by what they draw: a known history is imported, every
//! chart range (15 min … 30 days) is opened and the plotted values at known timestamps are
//! read back from the chart itself; the host card shows the stored host figures; an
//! overview sparkline starts from stored history, not from an empty line.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, add_user, finish_clean, login_seeing, open_browser};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: f64 = 1024.0 * 1024.0;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// The seeded history: three periods with constant values, so any bucket inside one of
/// them has exactly that period's values whatever tier and bucket size answer.
/// (start offset before now, end offset before now, sample every, cpu %, memory MiB, players)
const PERIODS: [(i64, i64, i64, f64, f64, f64); 3] = [
    (30 * DAY - HOUR, 15 * DAY, 5 * MIN, 20.0, 100.0, 7.0),
    (15 * DAY, 3 * HOUR, 5 * MIN, 60.0, 300.0, 2.0),
    (3 * HOUR, MIN, 10_000, 40.0, 200.0, 5.0),
];

fn seeded_history(now: i64) -> String {
    let mut out = String::new();
    for (start, end, every, cpu, mem, players) in PERIODS {
        let mut ts = now - start;
        while ts < now - end {
            out.push_str(
                &json!({"ts": ts, "cpu_percent": cpu, "memory_bytes": mem * MIB, "players": players})
                    .to_string(),
            );
            out.push('\n');
            ts += every;
        }
    }
    out
}

async fn import(w: &Warden, name: &str, body: String) -> Value {
    let resp = w
        .http
        .post(format!("{}/api/programs/{name}/metrics/import", w.url))
        .bearer_auth(&w.token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("import request");
    let st = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(st, StatusCode::OK, "import: {v}");
    v
}

/// JavaScript answering the value a chart plots nearest to `at` (ms), within `window` ms,
/// as `[ts, value]`, or `[]` while nothing is plotted there.
fn plotted_at(chart: &str, at: i64, window: i64) -> String {
    format!(
        "(() => {{ const f = document.querySelector('[data-chart={chart}]'); const u = f && f.uplot; \
           if (!u || !u.data || !u.data[0]) return []; const [ts, v] = u.data; let best = -1; \
           for (let i = 0; i < ts.length; i++) if (v[i] != null && Math.abs(ts[i] - {at}) <= {window} \
             && (best < 0 || Math.abs(ts[i] - {at}) < Math.abs(ts[best] - {at}))) best = i; \
           return best < 0 ? [] : [ts[best], v[best]]; }})()"
    )
}

/// Waits until `chart` plots `want` near `at`; fails naming what it plots instead.
async fn wait_plotted(ui: &Ui, chart: &str, at: i64, window: i64, want: f64, what: &str) {
    let js = plotted_at(chart, at, window);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got: Vec<f64> = ui.eval(&js).await;
        if let [_, v] = got[..]
            && (v - want).abs() <= want.abs() * 1e-6 + 1e-6
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the {chart} chart plots {got:?} near {at}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn charts_draw_the_stored_history_in_every_range() {
    let w = Warden::start().await;
    w.create(json!({"name": "seeded", "command": "sleep", "args": ["1000"]}))
        .await;
    w.create(json!({"name": "spark", "command": "sleep", "args": ["1000"], "start_seconds": 0}))
        .await;
    let now = chrono::Utc::now().timestamp_millis();
    let v = import(&w, "seeded", seeded_history(now)).await;
    assert!(v["imported"].as_u64().unwrap_or(0) > 9000, "{v}");
    // A running program with 13 minutes of stored samples at 33 %.
    let (st, v) = w.post("/api/programs/spark/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("spark", "running", Duration::from_secs(10))
        .await;
    let spark: String = (1..=80)
        .map(|i| {
            format!(
                "{}\n",
                json!({"ts": now - 14 * MIN + i * 10_000, "cpu_percent": 33.0, "memory_bytes": 64.0 * MIB})
            )
        })
        .collect();
    import(&w, "spark", spark).await;
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);

    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "spark").await;

    // The overview's sparkline starts from history: far more points than live samples
    // could have brought in the few seconds since the page loaded.
    ui.wait(
        "Number((document.querySelector('[data-program=spark] .c-cpu canvas.spark') || {dataset: {}}).dataset.points) >= 60",
        Duration::from_secs(5),
        "the CPU sparkline seeded from stored history",
    )
    .await;

    // The host card shows the stored host figures (from the real host sampler).
    ui.wait(
        "['cpu', 'memory', 'disk'].every(g => { const e = document.querySelector(`[data-gauge=${g}]`); \
           return e && e.dataset.value !== '' && !e.querySelector('.gauge-value').textContent.includes('—'); })",
        Duration::from_secs(20),
        "the host card's numbers",
    )
    .await;
    let card_memory: f64 = ui
        .eval("Number(document.querySelector('[data-gauge=memory]').dataset.value)")
        .await;
    let card_text: String = ui
        .eval("document.querySelector('[data-gauge=memory] .gauge-value').textContent")
        .await;
    let (st, host) = w
        .get(&format!(
            "/api/system/stats?from={}&to={}&points=10000",
            now - 20 * MIN,
            chrono::Utc::now().timestamp_millis() + MIN
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{host}");
    let stored: Vec<f64> = host["series"]["memory_used_bytes"]
        .as_array()
        .expect("memory series")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    // The card plots 15-second means of the raw samples: its figure lies among them.
    let lo = stored.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = stored.iter().copied().fold(0.0, f64::max);
    assert!(
        !stored.is_empty() && card_memory >= lo - 1.0 && card_memory <= hi + 1.0,
        "the host card shows {card_memory} bytes of memory used, outside the stored samples {stored:?}"
    );
    assert!(
        card_text.contains(" / ") && card_text.contains("iB"),
        "the memory gauge reads {card_text:?}, not 'used / total'"
    );

    // Every range of the seeded program plots the seeded values at known times.
    ui.go(
        "#/p/seeded",
        "!!document.querySelector('[data-chart=cpu] canvas')",
    )
    .await;
    // (range, its span, [(how long ago, which period)])
    type Check<'a> = (&'a str, i64, &'a [(i64, usize)]);
    let checks: [Check; 5] = [
        ("15m", 15 * MIN, &[(7 * MIN, 2)]),
        ("1h", HOUR, &[(45 * MIN, 2)]),
        ("24h", DAY, &[(12 * HOUR, 1), (HOUR, 2)]),
        ("7d", 7 * DAY, &[(3 * DAY, 1)]),
        ("30d", 30 * DAY, &[(20 * DAY, 0), (5 * DAY, 1)]),
    ];
    for (range, span, points) in checks {
        let clicked = Instant::now();
        ui.click(&format!("[data-range='{range}']")).await;
        // A bucket is at most span / 300 wide; the nearest plotted point lies within one.
        let window = span / 300 + 2 * MIN;
        for &(ago, period) in points {
            let (_, _, _, cpu, mem, players) = PERIODS[period];
            let at = chrono::Utc::now().timestamp_millis() - ago;
            let what = format!("range {range}, {ago} ms ago");
            wait_plotted(&ui, "cpu", at, window, cpu, &what).await;
            wait_plotted(&ui, "memory", at, window, mem * MIB, &what).await;
            wait_plotted(&ui, "players", at, window, players, &what).await;
        }
        if range == "30d" {
            println!(
                "time to first chart with 30 days of history: {} ms (click to values drawn)",
                clicked.elapsed().as_millis()
            );
        }
        // The chart never plots more points than the query asked for (plus the gap and
        // range-start markers), and its time axis covers the range.
        let (n, first, last): (usize, f64, f64) = ui
            .eval("(() => { const d = document.querySelector('[data-chart=cpu]').uplot.data[0]; return [d.length, d[0], d[d.length - 1]]; })()")
            .await;
        assert!(n <= 310, "range {range}: {n} points plotted");
        assert!(
            last - first >= span as f64 * 0.95,
            "range {range}: the time axis covers {} ms of {span}",
            last - first
        );
        ui.shot(&format!("charts-{range}")).await;
    }

    finish_clean(browser, &ui, events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_program_page_shows_usage_beside_its_limits() {
    let w = Warden::start().await;
    w.create(json!({
        "name": "capped", "command": "sleep", "args": ["1000"],
        "limits": {"memory_max": "256MiB", "cpu_max": 50},
    }))
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let history: String = (1..=30)
        .map(|i| {
            format!(
                "{}\n",
                json!({"ts": now - 6 * MIN + i * 10_000, "cpu_percent": 12.0, "memory_bytes": 64.0 * MIB})
            )
        })
        .collect();
    import(&w, "capped", history).await;
    // The API carries the limits beside the status.
    let v = w.program("capped").await;
    assert_eq!(v["limits"]["memory_max"], 256 * 1024 * 1024, "{v}");
    add_user(&w, "admin", "admin", ADMIN_PASSWORD);

    let profile = tempfile::tempdir().expect("profile dir");
    let (browser, ui, events) = open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    login_seeing(&ui, "admin", ADMIN_PASSWORD, "capped").await;
    ui.go(
        "#/p/capped",
        "!!document.querySelector('[data-chart=memory] canvas')",
    )
    .await;
    ui.wait(
        "(document.querySelector('[data-usage-memory]') || {}).textContent === 'Memory 64.0 MiB of 256.0 MiB'",
        Duration::from_secs(15),
        "the memory usage beside its limit",
    )
    .await;
    let mem: String = ui
        .eval("document.querySelector('[data-usage-memory]').textContent")
        .await;
    assert_eq!(mem, "Memory 64.0 MiB of 256.0 MiB");
    let cpu: String = ui
        .eval("document.querySelector('[data-usage-cpu]').textContent")
        .await;
    assert_eq!(cpu, "CPU 12.0 % of 50.0 %");
    // The limit is drawn as its own line on the memory and CPU charts.
    for (chart, want) in [("memory", 256.0 * MIB), ("cpu", 50.0)] {
        let js = format!(
            "(() => {{ const u = document.querySelector('[data-chart={chart}]').uplot; \
               return u && u.data[2] ? u.data[2].filter((v) => v != null) : []; }})()"
        );
        let line: Vec<f64> = ui.eval(&js).await;
        assert!(!line.is_empty(), "no limit line on the {chart} chart");
        assert!(
            line.iter().all(|v| (v - want).abs() < 1e-6),
            "{chart} limit line at {line:?}, not {want}"
        );
    }
    finish_clean(browser, &ui, events).await;
}
