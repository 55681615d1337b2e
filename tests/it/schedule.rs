//! Schedules and jobs end to end, against the real binary: timely firing, task chains with
//! offsets and abort, overlap policy `skip` (checked by the job itself), no second run
//! across a SIGKILL of warden, graph validation, retries with backoff, prediction and
//! overrun events, parallel steps and graceful cancel, and the `ctl` commands.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn make_job(w: &Warden, spec: Value) -> Value {
    let (st, v) = w.post("/api/jobs", spec).await;
    assert_eq!(st, StatusCode::CREATED, "create job: {v}");
    v
}

async fn make_schedule(w: &Warden, spec: Value) -> Value {
    let (st, v) = w.post("/api/schedules", spec).await;
    assert_eq!(st, StatusCode::CREATED, "create schedule: {v}");
    v
}

fn sh_step(name: &str, script: &str) -> Value {
    json!({"name": name, "command": "sh", "args": ["-c", script]})
}

/// Starts a job by hand and returns the run id.
async fn run_job(w: &Warden, job: &str) -> i64 {
    let (st, v) = w.post(&format!("/api/jobs/{job}/run"), json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "run {job}: {v}");
    assert_eq!(v["outcome"], "started", "{v}");
    v["run_id"].as_i64().expect("run id")
}

/// Waits for a job run to end; returns `{run, steps}`.
async fn run_end(w: &Warden, job: &str, id: i64, timeout: Duration) -> Value {
    wait_until(timeout, &format!("run {id} of {job} ends"), || async {
        let (st, v) = w.get(&format!("/api/jobs/{job}/runs/{id}")).await;
        (st == StatusCode::OK && v["run"]["state"] != "running").then_some(v)
    })
    .await
}

/// Waits for the newest chain run of a schedule to end; returns it.
async fn chain_end(w: &Warden, schedule: &str, timeout: Duration) -> Value {
    wait_until(timeout, &format!("a run of {schedule} ends"), || async {
        let (_, v) = w
            .get(&format!("/api/schedules/{schedule}/runs?limit=1"))
            .await;
        let r = v["runs"][0].clone();
        (!r.is_null() && r["state"] != "running").then_some(r)
    })
    .await
}

/// `start NS` / `end NS` lines written by a job into `path`, as (start, end) in ns.
fn intervals(path: &Path) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut open: Option<u128> = None;
    for l in file_lines(path) {
        let mut it = l.split_whitespace();
        let (Some(kind), Some(ts)) = (it.next(), it.next()) else {
            continue;
        };
        let ts: u128 = ts.parse().expect("timestamp");
        match kind {
            "start" => {
                assert!(open.is_none(), "two starts without an end: {l}");
                open = Some(ts);
            }
            "end" => out.push((open.take().expect("end without start"), ts)),
            _ => {}
        }
    }
    out
}

fn assert_no_overlap(iv: &[(u128, u128)]) {
    for w in iv.windows(2) {
        assert!(
            w[1].0 > w[0].1,
            "runs overlap: {:?} and {:?} (all: {iv:?})",
            w[0],
            w[1]
        );
    }
}

fn events_of(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_2s_schedule_fires_on_time_for_a_minute() {
    let w = Warden::start().await;
    let stamps = w.data_dir.join("stamps");
    make_job(
        &w,
        json!({"name": "stamp", "steps": [sh_step("s", &format!("date +%s.%N >> {}", stamps.display()))]}),
    )
    .await;
    let v = make_schedule(
        &w,
        json!({"name": "tick", "trigger": "*/2 * * * * *", "timezone": "UTC",
               "tasks": [{"action": {"kind": "job", "job": "stamp", "wait": false}}]}),
    )
    .await;
    let next: Vec<&str> = v["next_runs"]
        .as_array()
        .expect("next runs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(next.len(), 5, "{v}");
    let secs: Vec<i64> = next
        .iter()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("rfc3339")
                .timestamp()
        })
        .collect();
    assert!(secs.windows(2).all(|p| p[1] - p[0] == 2), "{next:?}");
    assert!(secs.iter().all(|s| s % 2 == 0), "{next:?}");

    let began = Instant::now();
    wait_until(Duration::from_secs(75), "30 fires", || async {
        (file_lines(&stamps).len() >= 30).then_some(())
    })
    .await;
    let took = began.elapsed();
    let times: Vec<f64> = file_lines(&stamps)
        .iter()
        .map(|l| l.trim().parse().expect("seconds"))
        .collect();
    // Each fire is due at an even second; the step records when it actually ran.
    for t in &times {
        let late = t - (t / 2.0).floor() * 2.0;
        assert!(late < 1.0, "fired {late:.3} s after its time: {times:?}");
    }
    let due: Vec<i64> = times.iter().map(|t| (t / 2.0).floor() as i64 * 2).collect();
    assert!(
        due.windows(2).all(|p| p[1] - p[0] == 2),
        "a fire was missed or doubled: {due:?}"
    );
    assert!(
        took <= Duration::from_secs(64),
        "30 fires took {took:?}, expected about a minute"
    );
    let (_, runs) = w.get("/api/schedules/tick/runs?limit=100").await;
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert!(runs.len() >= 30);
    assert!(
        runs.iter()
            .all(|r| r["state"] == "succeeded" || r["state"] == "running"),
        "{runs:?}"
    );
}

#[tokio::test]
async fn a_task_chain_runs_in_order_with_offsets_and_aborts_on_failure() {
    let w = Warden::start().await;
    let mut con = sh(
        "con",
        "while read l; do echo \"got $l $(date +%s%N)\"; done",
    );
    con["start_seconds"] = json!(0);
    w.create(con).await;
    w.post("/api/programs/con/start", json!(null)).await;
    w.wait_state("con", "running", Duration::from_secs(10))
        .await;
    make_job(
        &w,
        json!({"name": "fail", "steps": [sh_step("x", "exit 3")]}),
    )
    .await;

    let chain = |name: &str, on_failure: &str, tag: &str| {
        json!({"name": name, "trigger": "0 0 1 1 *", "tasks": [
            {"action": {"kind": "console", "program": "con", "line": format!("{tag}-1")}},
            {"offset_seconds": 1, "action": {"kind": "console", "program": "con", "line": format!("{tag}-2")}},
            {"on_failure": on_failure, "action": {"kind": "job", "job": "fail"}},
            {"action": {"kind": "console", "program": "con", "line": format!("{tag}-3")}},
        ]})
    };
    make_schedule(&w, chain("abort", "abort", "a")).await;
    make_schedule(&w, chain("goon", "continue", "c")).await;

    let (st, v) = w.post("/api/schedules/abort/run", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = chain_end(&w, "abort", Duration::from_secs(20)).await;
    assert_eq!(run["state"], "failed", "{run}");
    let states: Vec<&str> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["succeeded", "succeeded", "failed", "skipped"]);
    let err = run["error"].as_str().expect("error");
    assert!(
        err.contains("task 3 (job)") && err.contains("aborted"),
        "{err}"
    );
    // In order, the second line at least the offset after the first, never the third.
    let lines = w.console("con").await;
    let ts = |tag: &str| -> Option<u128> {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("got {tag} ")))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|t| t.parse().ok())
    };
    let (t1, t2) = (ts("a-1").expect("a-1"), ts("a-2").expect("a-2"));
    assert!(t2 > t1 + 900_000_000, "offset not respected: {lines:?}");
    assert!(
        ts("a-3").is_none(),
        "the chain went on after the abort: {lines:?}"
    );

    let (st, _) = w.post("/api/schedules/goon/run", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let run = chain_end(&w, "goon", Duration::from_secs(20)).await;
    assert_eq!(run["state"], "failed", "{run}");
    let states: Vec<&str> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["succeeded", "succeeded", "failed", "succeeded"]);
    wait_until(Duration::from_secs(20), "c-3 arrives", || async {
        w.console("con")
            .await
            .iter()
            .any(|l| l.starts_with("got c-3 "))
            .then_some(())
    })
    .await;

    // Conditions: skip if the program is not running.
    make_schedule(
        &w,
        json!({"name": "guarded", "trigger": "0 0 1 1 *", "conditions": {"skip_if_not_running": "con"},
               "tasks": [{"action": {"kind": "restart", "program": "con"}}]}),
    )
    .await;
    w.post("/api/programs/con/stop", json!(null)).await;
    w.wait_state("con", "stopped", Duration::from_secs(10))
        .await;
    let (st, v) = w.post("/api/schedules/guarded/run", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'con' is stopped")),
        "{v}"
    );
    // Events are stored without waiting for the commit: wait for the last one.
    let events = wait_until(Duration::from_secs(20), "the skipped event", || async {
        let ev = w.all_events().await;
        (!events_of(&ev, "schedule_skipped").is_empty()).then_some(ev)
    })
    .await;
    assert_eq!(events_of(&events, "schedule_fired").len(), 2);
    assert_eq!(events_of(&events, "schedule_failed").len(), 2);
    assert_eq!(events_of(&events, "schedule_skipped").len(), 1);
}

#[tokio::test]
async fn a_5s_job_on_a_2s_schedule_with_skip_never_overlaps() {
    let w = Warden::start().await;
    let f = w.data_dir.join("intervals");
    let script = format!(
        "echo \"start $(date +%s%N)\" >> {0}; sleep 5; echo \"end $(date +%s%N)\" >> {0}",
        f.display()
    );
    make_job(
        &w,
        json!({"name": "slow", "steps": [sh_step("s", &script)]}),
    )
    .await;
    make_schedule(
        &w,
        json!({"name": "often", "trigger": "every 2s",
               "tasks": [{"action": {"kind": "job", "job": "slow", "wait": false}}]}),
    )
    .await;
    wait_until(Duration::from_secs(40), "3 complete runs", || async {
        (intervals(&f).len() >= 3).then_some(())
    })
    .await;
    let iv = intervals(&f);
    assert_no_overlap(&iv);
    let events = w.all_events().await;
    let skipped = events_of(&events, "job_skipped");
    assert!(
        skipped.len() >= 3,
        "triggers during a run must be skipped: {skipped:?}"
    );
    assert!(
        skipped[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("overlap policy 'skip'"))
    );
    let (_, runs) = w.get("/api/jobs/slow/runs?limit=500").await;
    let states: Vec<&str> = runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert!(states.contains(&"skipped") && states.contains(&"succeeded"));
}

#[tokio::test]
async fn warden_killed_mid_job_and_restarted_never_runs_it_twice_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let f = dir.join("intervals");
    let script = format!(
        "echo \"start $(date +%s%N)\" >> {0}; sleep 6; echo \"end $(date +%s%N)\" >> {0}",
        f.display()
    );
    let mut a = Warden::start_in(&dir, "").await;
    make_job(
        &a,
        json!({"name": "long", "steps": [sh_step("s", &script)]}),
    )
    .await;
    make_schedule(
        &a,
        json!({"name": "every-second", "trigger": "every 1s",
               "tasks": [{"action": {"kind": "job", "job": "long", "wait": false}}]}),
    )
    .await;
    wait_until(Duration::from_secs(10), "the first run starts", || async {
        file_lines(&f)
            .iter()
            .any(|l| l.starts_with("start"))
            .then_some(())
    })
    .await;
    let (_, first) = a.get("/api/jobs/long").await;
    let first_run = first["running"]["run_id"].as_i64().expect("running");
    a.kill9();

    let b = Warden::start_in(&dir, "").await;
    let (_, v) = b.get("/api/jobs/long").await;
    assert_eq!(v["running"]["run_id"], first_run, "{v}");
    assert_eq!(v["running"]["orphaned"], true, "{v}");
    assert!(!v["running"]["pids"].as_array().expect("pids").is_empty());
    let (st, v) = b.post("/api/jobs/long/run", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    // The leftover run ends, then the schedule starts the job again (once at a time).
    wait_until(Duration::from_secs(40), "two complete runs", || async {
        (intervals(&f).len() >= 2).then_some(())
    })
    .await;
    assert_no_overlap(&intervals(&f));
    let (_, detail) = b.get(&format!("/api/jobs/long/runs/{first_run}")).await;
    assert_eq!(detail["run"]["state"], "interrupted", "{detail}");
    assert!(
        detail["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("processes have ended")),
        "{detail}"
    );
    assert_eq!(detail["steps"][0]["state"], "lost", "{detail}");
}

#[tokio::test]
async fn invalid_definitions_are_rejected_naming_what_is_wrong() {
    let w = Warden::start().await;
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "cyc", "steps": [
                {"name": "a", "command": "true", "depends_on": ["c"]},
                {"name": "b", "command": "true", "depends_on": ["a"]},
                {"name": "c", "command": "true", "depends_on": ["b"]}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    assert_eq!(v["error"]["details"][0]["field"], "steps");
    assert_eq!(v["error"]["details"][0]["code"], "cycle", "{v}");
    assert_eq!(
        v["error"]["details"][0]["params"]["path"],
        "a -> c -> b -> a"
    );
    let (st, v) = w
        .post(
            "/api/jobs",
            json!({"name": "dangling", "steps": [
                {"name": "a", "command": "true", "depends_on": ["ghost"]},
                {"name": "a", "command": "true"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let has = |field: &str, code: &str, value: &str| {
        v["error"]["details"].as_array().is_some_and(|d| {
            d.iter()
                .any(|d| d["field"] == field && d["code"] == code && d["params"]["value"] == value)
        })
    };
    assert!(has("steps[0].depends_on", "not_found", "ghost"), "{v}");
    assert!(has("steps[1].name", "duplicate", "a"), "{v}");

    let bad = |trigger: &str, tz: Option<&str>| {
        json!({"name": "bad", "trigger": trigger, "timezone": tz,
               "tasks": [{"action": {"kind": "http", "url": "http://127.0.0.1:9/x"}}]})
    };
    for (trigger, tz, field, needle) in [
        ("61 * * * *", None, "trigger", "not a valid cron expression"),
        ("* * *", None, "trigger", "has 3 field(s)"),
        ("0 0 0 1 1 * 2030", None, "trigger", "has 7 field(s)"),
        ("every 0s", None, "trigger", "zero"),
        (
            "0 4 * * *",
            Some("Mars/Base"),
            "timezone",
            "not a known IANA time zone",
        ),
    ] {
        let (st, v) = w.post("/api/schedules", bad(trigger, tz)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{trigger}: {v}");
        let d = &v["error"]["details"][0];
        assert_eq!(d["field"], field, "{v}");
        assert!(
            d["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{v}"
        );
    }
    // Tasks and conditions naming programs that do not exist are refused at save time,
    // naming the task.
    let (st, v) = w
        .post(
            "/api/schedules",
            json!({"name": "game", "trigger": "0 4 * * *", "conditions": {"only_when_empty": "x"},
                   "tasks": [{"action": {"kind": "rcon", "program": "x", "command": "save-all"}},
                             {"action": {"kind": "broadcast", "program": "y", "message": "hi"}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let unknown = |field: &str, name: &str| {
        v["error"]["details"].as_array().is_some_and(|d| {
            d.iter().any(|d| {
                d["field"] == field && d["code"] == "unknown_program" && d["params"]["name"] == name
            })
        })
    };
    assert!(unknown("tasks[0].action.program", "x"), "{v}");
    assert!(unknown("tasks[1].action.program", "y"), "{v}");
    assert!(unknown("conditions.only_when_empty", "x"), "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("no program named \"y\""), "{msg}");
    let (st, v) = w
        .post(
            "/api/schedules",
            json!({"name": "typo", "trigger": "every 1h", "taks": []}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_body");

    // Valid forms, and roles: viewer reads, operator runs, admin defines.
    make_job(&w, json!({"name": "ok", "steps": [sh_step("s", "true")]})).await;
    for (name, trigger) in [
        ("five", "30 4 * * 1-5"),
        ("six", "*/10 * * * * *"),
        ("iv", "every 6h"),
    ] {
        let v = make_schedule(
            &w,
            json!({"name": name, "trigger": trigger, "timezone": "Europe/Berlin", "enabled": name != "six",
                   "tasks": [{"action": {"kind": "job", "job": "ok"}}]}),
        )
        .await;
        let n = v["next_runs"].as_array().expect("next").len();
        assert_eq!(n, if name == "six" { 0 } else { 5 }, "{v}");
    }
    let viewer = make_token(&w.data_dir, "viewer");
    let operator = make_token(&w.data_dir, "operator");
    let (st, _) = w
        .call_as(Some(&viewer), Method::GET, "/api/jobs/ok", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = w
        .call_as(Some(&viewer), Method::POST, "/api/jobs/ok/run", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = w
        .call_as(Some(&operator), Method::POST, "/api/jobs/ok/run", None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = w
        .call_as(
            Some(&operator),
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "sneaky", "steps": [sh_step("s", "true")]})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A job used by a schedule cannot be deleted.
    let (st, v) = w.delete("/api/jobs/ok").await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn retries_back_off_per_failure_class() {
    let w = Warden::start().await;
    let counter = w.data_dir.join("count");
    let script = format!(
        "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; echo attempt $n; [ $n -ge 3 ]",
        counter.display()
    );
    make_job(
        &w,
        json!({"name": "flaky", "steps": [sh_step("s", &script)],
               "retry": {"max_retries": 3, "on": ["exit"], "backoff": "exponential", "delay_ms": 400, "max_delay_ms": 5000}}),
    )
    .await;
    let id = run_job(&w, "flaky").await;
    let d = run_end(&w, "flaky", id, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "succeeded", "{d}");
    assert_eq!(d["run"]["retries"], 2, "{d}");
    let steps = d["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{d}");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["attempt"], i as i64);
    }
    assert_eq!(steps[0]["failure"], "exit");
    assert_eq!(steps[0]["exit_code"], 1);
    assert_eq!(steps[2]["state"], "succeeded");
    assert_eq!(steps[2]["output_tail"], "attempt 3\n");
    let gap = |a: &Value, b: &Value| {
        b["started_at"].as_i64().unwrap_or(0) - a["ended_at"].as_i64().unwrap_or(0)
    };
    let (g1, g2) = (gap(&steps[0], &steps[1]), gap(&steps[1], &steps[2]));
    assert!((400..2000).contains(&g1), "first backoff {g1} ms");
    assert!(
        (800..3000).contains(&g2),
        "second backoff {g2} ms (exponential)"
    );

    // A timeout is not retried when only exits are; a spawn error is retried when listed.
    make_job(
        &w,
        json!({"name": "slowpoke", "steps": [{"name": "s", "command": "sleep", "args": ["30"], "timeout_seconds": 1}],
               "retry": {"max_retries": 2, "on": ["exit"], "delay_ms": 100}}),
    )
    .await;
    let id = run_job(&w, "slowpoke").await;
    let d = run_end(&w, "slowpoke", id, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "failed", "{d}");
    assert_eq!(d["steps"].as_array().expect("steps").len(), 1, "{d}");
    assert_eq!(d["steps"][0]["failure"], "timeout");
    assert!(
        d["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out after 1 s")),
        "{d}"
    );
    make_job(
        &w,
        json!({"name": "missing", "steps": [{"name": "s", "command": "/nonexistent/tool"}],
               "retry": {"max_retries": 2, "on": ["spawn"], "backoff": "linear", "delay_ms": 100}}),
    )
    .await;
    let id = run_job(&w, "missing").await;
    let d = run_end(&w, "missing", id, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "failed");
    let steps = d["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{d}");
    assert!(steps.iter().all(|s| s["failure"] == "spawn"), "{d}");
    assert!(
        steps[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not found")),
        "{d}"
    );
}

#[tokio::test]
async fn prediction_and_overrun_events_after_a_few_runs() {
    let w = Warden::start().await;
    let secs = w.data_dir.join("secs");
    std::fs::write(&secs, "0.3").expect("write");
    make_job(
        &w,
        json!({"name": "pred", "steps": [sh_step("s", &format!("sleep $(cat {})", secs.display()))]}),
    )
    .await;
    let (_, v) = w.get("/api/jobs/pred").await;
    assert!(v["prediction"].is_null(), "{v}");
    for _ in 0..3 {
        let id = run_job(&w, "pred").await;
        run_end(&w, "pred", id, Duration::from_secs(20)).await;
    }
    let (_, v) = w.get("/api/jobs/pred").await;
    let p90 = v["prediction"]["p90_ms"].as_i64().expect("prediction");
    assert_eq!(v["prediction"]["samples"], 3);
    assert!((300..1500).contains(&p90), "{v}");

    // Slower this time: the warning comes at 80 % and the overrun at 100 % of the p90.
    std::fs::write(&secs, "3").expect("write");
    let (st, r) = w.post("/api/jobs/pred/run", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(r["prediction"]["p90_ms"], p90, "shown before the run: {r}");
    let id = r["run_id"].as_i64().expect("run id");
    run_end(&w, "pred", id, Duration::from_secs(20)).await;
    let events = wait_until(Duration::from_secs(20), "the finished event", || async {
        let ev = w.all_events().await;
        ev.iter()
            .any(|e| e["kind"] == "job_finished" && e["data"]["run_id"] == id)
            .then_some(ev)
    })
    .await;
    let of_run = |kind: &str| {
        events_of(&events, kind)
            .into_iter()
            .find(|e| e["data"]["run_id"] == id)
    };
    let started = of_run("job_started").expect("started event");
    let warn = of_run("job_overrun_warning").expect("overrun warning");
    let over = of_run("job_overrun").expect("overrun");
    assert!(of_run("job_finished").is_some());
    assert_eq!(over["data"]["predicted_p90_ms"], p90);
    let after = |e: &Value| e["ts"].as_i64().unwrap_or(0) - started["ts"].as_i64().unwrap_or(0);
    assert!(
        after(&warn) >= p90 * 8 / 10 - 50,
        "warning too early: {warn}"
    );
    assert!(after(&over) >= p90 - 50, "overrun too early: {over}");
    assert!(after(&warn) <= after(&over));

    // A schedule running it more often than it takes gets a warning at save time.
    let v = make_schedule(
        &w,
        json!({"name": "too-often", "trigger": "every 1s", "enabled": false,
               "tasks": [{"action": {"kind": "job", "job": "pred"}}]}),
    )
    .await;
    let warning = v["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.contains("job 'pred' takes ~") && warning.contains("runs it every 1s"),
        "{warning}"
    );
    let (_, v) = w.get("/api/jobs/pred").await;
    assert!(
        !v["warnings"].as_array().expect("warnings").is_empty(),
        "{v}"
    );
}

#[tokio::test]
async fn independent_steps_run_in_parallel_and_cancel_is_graceful() {
    let w = Warden::start().await;
    let f = w.data_dir.join("dag");
    let step = |name: &str, deps: &[&str]| {
        let mut s = sh_step(
            name,
            &format!(
                "echo \"{name}-start $(date +%s%N)\" >> {0}; sleep 1; echo \"{name}-end $(date +%s%N)\" >> {0}",
                f.display()
            ),
        );
        s["depends_on"] = json!(deps);
        s
    };
    let times = || -> std::collections::HashMap<String, u128> {
        file_lines(&f)
            .iter()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect()
    };
    make_job(
        &w,
        json!({"name": "dag", "concurrency": 2, "steps": [step("c", &["a", "b"]), step("a", &[]), step("b", &[])]}),
    )
    .await;
    let id = run_job(&w, "dag").await;
    let d = run_end(&w, "dag", id, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "succeeded", "{d}");
    let t = times();
    assert!(
        t["a-start"] < t["b-end"] && t["b-start"] < t["a-end"],
        "a and b ran apart: {t:?}"
    );
    assert!(
        t["c-start"] > t["a-end"] && t["c-start"] > t["b-end"],
        "c ran early: {t:?}"
    );

    std::fs::remove_file(&f).expect("reset");
    make_job(
        &w,
        json!({"name": "serial", "concurrency": 1, "steps": [step("a", &[]), step("b", &[])]}),
    )
    .await;
    let id = run_job(&w, "serial").await;
    run_end(&w, "serial", id, Duration::from_secs(20)).await;
    let t = times();
    assert!(
        t["b-start"] > t["a-end"],
        "concurrency 1 ran steps at once: {t:?}"
    );

    // Cancel: the step gets the stop signal and may clean up…
    let trap = w.data_dir.join("trap");
    make_job(
        &w,
        json!({"name": "polite", "steps": [sh_step("s", &format!(
            "trap 'echo got-term >> {0}; exit 0' TERM; echo ready >> {0}; while true; do sleep 0.1; done",
            trap.display()))]}),
    )
    .await;
    let id = run_job(&w, "polite").await;
    wait_until(Duration::from_secs(10), "step ready", || async {
        file_lines(&trap)
            .contains(&"ready".to_string())
            .then_some(())
    })
    .await;
    let (st, v) = w.post("/api/jobs/polite/cancel", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["run_id"], id);
    let d = run_end(&w, "polite", id, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "cancelled", "{d}");
    assert_eq!(d["steps"][0]["state"], "cancelled");
    assert!(file_lines(&trap).contains(&"got-term".to_string()));
    // …and one that ignores it is killed after stop_timeout_seconds.
    make_job(
        &w,
        json!({"name": "stubborn", "stop_timeout_seconds": 1,
               "steps": [sh_step("s", "trap '' TERM; while true; do sleep 0.1; done")]}),
    )
    .await;
    let id = run_job(&w, "stubborn").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    w.post("/api/jobs/stubborn/cancel", json!(null)).await;
    let d = run_end(&w, "stubborn", id, Duration::from_secs(20)).await;
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "killed before the stop timeout"
    );
    assert_eq!(d["steps"][0]["signal"], "SIGKILL", "{d}");
    let (st, v) = w.post("/api/jobs/stubborn/cancel", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn ctl_applies_runs_and_shows_jobs_and_schedules() {
    let w = Warden::start().await;
    let dir = &w.data_dir;
    std::fs::write(
        dir.join("job.toml"),
        "name = \"hello\"\n[[steps]]\nname = \"greet\"\ncommand = \"echo\"\nargs = [\"hello from a job\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sched.toml"),
        "name = \"nightly\"\ntrigger = \"0 4 * * *\"\ntimezone = \"UTC\"\n[[tasks]]\naction = { kind = \"job\", job = \"hello\" }\n",
    )
    .expect("write");
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("ctl")
            .args(args)
            .env("WARDEN_URL", &w.url)
            .env("WARDEN_TOKEN", &w.token)
            .output()
            .expect("run ctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let job_file = dir.join("job.toml");
    let (ok, out, err) = ctl(&["job", "apply", job_file.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("created job hello"), "{out}");
    let (ok, out, err) = ctl(&["job", "run", "hello", "--wait"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("succeeded") && out.contains("| hello from a job"),
        "{out}"
    );
    let sched_file = dir.join("sched.toml");
    let (ok, out, err) = ctl(&["schedule", "apply", sched_file.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(
        out.contains("created schedule nightly") && out.contains("T04:00:00+00:00"),
        "{out}"
    );
    let (ok, out, _) = ctl(&["schedule", "apply", sched_file.to_str().expect("path")]);
    assert!(ok && out.contains("updated schedule nightly"), "{out}");
    let (ok, out, _) = ctl(&["job", "list"]);
    assert!(
        ok && out.contains("hello") && out.contains("succeeded"),
        "{out}"
    );
    let (ok, out, _) = ctl(&["job", "runs", "hello"]);
    assert!(ok && out.contains("manual:"), "{out}");
    let (ok, _, err) = ctl(&["job", "cancel", "hello"]);
    assert!(!ok && err.contains("no run in progress"), "{err}");
    let (ok, out, _) = ctl(&["schedule", "list"]);
    assert!(ok && out.contains("nightly"), "{out}");
}

#[tokio::test]
async fn queue_keeps_one_waiting_and_replace_cancels_the_current_run() {
    let w = Warden::start().await;
    let f = w.data_dir.join("queue");
    let script = format!(
        "echo \"start $(date +%s%N)\" >> {0}; sleep 1; echo \"end $(date +%s%N)\" >> {0}",
        f.display()
    );
    make_job(
        &w,
        json!({"name": "q", "overlap": "queue", "steps": [sh_step("s", &script)]}),
    )
    .await;
    let first = run_job(&w, "q").await;
    let (st, v) = w.post("/api/jobs/q/run", json!(null)).await;
    assert_eq!(
        (st, v["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("queued")),
        "{v}"
    );
    let (st, v) = w.post("/api/jobs/q/run", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT, "only one may wait: {v}");
    run_end(&w, "q", first, Duration::from_secs(10)).await;
    wait_until(Duration::from_secs(10), "the queued run ran", || async {
        (intervals(&f).len() >= 2).then_some(())
    })
    .await;
    assert_no_overlap(&intervals(&f));

    make_job(
        &w,
        json!({"name": "r", "overlap": "replace", "steps": [sh_step("s", "sleep 30")]}),
    )
    .await;
    let old = run_job(&w, "r").await;
    let (st, v) = w.post("/api/jobs/r/run", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["outcome"], "replacing");
    assert_eq!(v["replaces"], old);
    let d = run_end(&w, "r", old, Duration::from_secs(20)).await;
    assert_eq!(d["run"]["state"], "cancelled", "{d}");
    let v = wait_until(Duration::from_secs(10), "the replacement runs", || async {
        let (_, v) = w.get("/api/jobs/r").await;
        v["running"]["run_id"]
            .as_i64()
            .is_some_and(|id| id > old)
            .then_some(v)
    })
    .await;
    let new = v["running"]["run_id"].as_i64().expect("run");
    w.post("/api/jobs/r/cancel", json!(null)).await;
    run_end(&w, "r", new, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn missed_runs_are_skipped_or_run_once_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut a = Warden::start_in(&dir, "").await;
    make_job(&a, json!({"name": "noop", "steps": [sh_step("s", "true")]})).await;
    for (name, missed) in [("catch-up", "run_once"), ("let-go", "skip")] {
        make_schedule(
            &a,
            json!({"name": name, "trigger": "every 2s", "missed": missed,
                   "tasks": [{"action": {"kind": "job", "job": "noop", "wait": false}}]}),
        )
        .await;
    }
    chain_end(&a, "catch-up", Duration::from_secs(10)).await;
    a.terminate();
    // Downtime spanning a few fire times.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = Warden::start_in(&dir, "").await;
    let sources = |runs: &Value| -> Vec<String> {
        runs["runs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["source"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(Duration::from_secs(10), "the catch-up run", || async {
        let (_, v) = b.get("/api/schedules/catch-up/runs?limit=100").await;
        sources(&v).iter().any(|s| s == "missed").then_some(())
    })
    .await;
    let events = wait_until(Duration::from_secs(10), "two missed events", || async {
        let ev = b.all_events().await;
        (events_of(&ev, "schedule_missed").len() >= 2).then_some(ev)
    })
    .await;
    let missed = events_of(&events, "schedule_missed");
    assert!(
        missed.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("'let-go' missed") && m.contains("skipped"))),
        "{missed:?}"
    );
    let (_, v) = b.get("/api/schedules/let-go/runs?limit=100").await;
    assert!(!sources(&v).iter().any(|s| s == "missed"), "{v}");
    let (_, v) = b.get("/api/schedules/catch-up/runs?limit=100").await;
    assert_eq!(
        sources(&v).iter().filter(|s| *s == "missed").count(),
        1,
        "run once, however many were missed: {v}"
    );
}

/// The nightly restart of a game server as one chain against the demo game: warnings in
/// game, an RCON save, a verified backup, then the restart; `only_when_empty` refuses it
/// while players are online.
#[tokio::test]
async fn a_game_restart_chain_warns_saves_backs_up_and_restarts() {
    let w = Warden::start().await;
    let world = w.data_dir.join("world");
    std::fs::create_dir_all(&world).expect("world dir");
    let password = "Sch3d-rcon-pw";
    std::fs::write(world.join("rcon-password"), password).expect("password file");
    let (rcon_port, slp_port) = (free_tcp_port(), free_tcp_port());
    let script = format!(
        r#"exec "$0" demo-game --startup-ms 100 --save-dir "$1" --rcon-port {rcon_port} --rcon-password "$(cat "$1/rcon-password")" --slp-port {slp_port}"#
    );
    w.create(json!({
        "name": "mc",
        "command": "sh",
        "args": ["-c", script, bin(), world],
        "cwd": world,
        "start_seconds": 60,
        "game": {"profile": "minecraft",
                 "rcon": {"port": rcon_port, "password": password},
                 "query": {"kind": "slp", "port": slp_port}},
    }))
    .await;
    w.post("/api/programs/mc/start", json!(null)).await;
    let first = w.wait_state("mc", "running", Duration::from_secs(30)).await["pid"].clone();
    make_schedule(
        &w,
        json!({"name": "nightly", "trigger": "0 4 * * *", "conditions": {"only_when_empty": "mc"},
               "tasks": [
            {"action": {"kind": "broadcast", "program": "mc", "message": "Restart in 2 seconds"}},
            {"offset_seconds": 1, "action": {"kind": "broadcast", "program": "mc", "message": "Restart in 1 second"}},
            {"offset_seconds": 1, "action": {"kind": "rcon", "program": "mc", "command": "save-all"}},
            {"action": {"kind": "backup", "program": "mc"}},
            {"action": {"kind": "restart", "program": "mc"}},
        ]}),
    )
    .await;

    // The demo server starts with two players online: the run is skipped, and says why.
    let (st, v) = w.post("/api/schedules/nightly/run", json!(null)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 player(s) online on 'mc'")),
        "{v}"
    );
    for who in ["Steve", "Alex"] {
        w.post(
            "/api/programs/mc/console",
            json!({"line": format!("leave {who}")}),
        )
        .await;
    }
    wait_until(Duration::from_secs(10), "server empty", || async {
        let (_, v) = w.get("/api/programs/mc/players").await;
        (v["online"] == 0).then_some(())
    })
    .await;

    let (st, v) = w.post("/api/schedules/nightly/run", json!(null)).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let run = chain_end(&w, "nightly", Duration::from_secs(60)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let tasks = run["tasks"].as_array().expect("tasks");
    let started: Vec<i64> = tasks
        .iter()
        .map(|t| t["started_at"].as_i64().expect("started_at"))
        .collect();
    assert!(started.windows(2).all(|p| p[0] <= p[1]), "{run}");
    assert!(started[2] - started[0] >= 1900, "offsets: {run}");
    assert!(
        tasks[2]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Saved the game")),
        "{run}"
    );

    // The warnings reached the game before the save and the restart.
    let console = w.console("mc").await;
    for text in ["Restart in 2 seconds", "Restart in 1 second"] {
        assert!(
            console.iter().any(|l| l.contains(text)),
            "{text}: {console:?}"
        );
    }
    // A finished, verified backup made by the schedule, then a new server process.
    let (_, v) = w.get("/api/programs/mc/backups").await;
    let b = &v["backups"][0];
    assert_eq!(b["status"], "ok", "{v}");
    assert_eq!(b["reason"], "schedule nightly", "{v}");
    w.wait_program("mc", Duration::from_secs(30), "restarted", |v| {
        v["state"] == "running" && v["pid"] != first && v["pid"].is_u64()
    })
    .await;
}

/// The trigger preview the schedule builder asks while the user types: the next fire times
/// in the zone (the same as the saved schedule's), or the problems per field with 200.
#[tokio::test]
async fn a_trigger_preview_lists_the_next_runs_or_its_problems() {
    let w = Warden::start().await;
    let (st, v) = w
        .post(
            "/api/triggers/preview",
            json!({"trigger": "0 4 * * *", "timezone": "Asia/Seoul", "count": 3}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["effective_timezone"], "Asia/Seoul", "{v}");
    let runs = v["next_runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{v}");
    for r in runs {
        assert!(
            r.as_str().expect("text").ends_with("T04:00:00+09:00"),
            "{v}"
        );
    }
    make_schedule(
        &w,
        json!({"name": "n", "trigger": "0 4 * * *", "timezone": "Asia/Seoul",
               "tasks": [{"action": {"kind": "http", "url": "http://127.0.0.1:9/"}}]}),
    )
    .await;
    let (_, saved) = w.get("/api/schedules/n").await;
    assert_eq!(
        &saved["next_runs"].as_array().expect("runs")[..3],
        &runs[..]
    );

    let (st, v) = w
        .post(
            "/api/triggers/preview",
            json!({"trigger": "61 4 * * *", "timezone": "Mars/Base"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["next_runs"], json!([]), "{v}");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["timezone", "trigger"], "{v}");

    let (st, v) = w
        .post(
            "/api/triggers/preview",
            json!({"trigger": "every 1h", "count": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "count", "{v}");
}
