//! Never two copies: warden is killed with SIGKILL at random moments 0–200 ms after start
//! and restart requests, many times. After every restart of warden each program runs
//! exactly once or not at all, its state says which (a zombie is not a running process),
//! a restart interrupted by warden's death is completed, and the database is intact.
//!
//! `WARDEN_KILL_TRIALS` sets the number of trials (default 50; `bench/kill9.sh` runs more).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

const PROGRAMS: [&str; 2] = ["k9-alpha", "k9-beta"];

/// Live (not zombie) process group leaders carrying warden's marker for `program`.
fn marked_copies(program: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let want = format!("WARDEN_PROGRAM={program}");
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if f.len() < 3 || matches!(f[0], "Z" | "X" | "x") || f[2] != pid.to_string() {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if vars.contains(&want.as_bytes()) && vars.iter().any(|v| v.starts_with(b"WARDEN_CHILD=")) {
            out.push(pid);
        }
    }
    out
}

fn integrity_ok(data: &Path) -> String {
    let db = rusqlite::Connection::open_with_flags(
        data.join("warden.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    db.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .expect("integrity_check")
}

/// Waits until no program is in a passing state (starting, stopping, backoff).
async fn settled(w: &Warden) -> Vec<Value> {
    wait_until(Duration::from_secs(30), "programs settled", || async {
        let mut views = Vec::new();
        for p in PROGRAMS {
            let v = w.program(p).await;
            if !matches!(v["state"].as_str(), Some("running" | "stopped")) {
                return None;
            }
            views.push(v);
        }
        Some(views)
    })
    .await
}

#[derive(Default, Debug)]
struct Tally {
    trials: usize,
    duplicates: usize,
    lost: usize,
    mismatches: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_moments_never_leaves_two_copies_nor_loses_one() {
    let trials: usize = std::env::var("WARDEN_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut w = Warden::start_in(&data, "").await;
    for p in PROGRAMS {
        // A program that takes a moment to stop, so kills land inside its stop as well.
        let mut spec = sh(p, "trap 'sleep 0.05; exit 0' TERM; sleep 1000 & wait");
        spec["start_seconds"] = json!(0);
        spec["stop"] = json!({"signal": "SIGTERM", "timeout_seconds": 5});
        w.create(spec).await;
    }
    let mut tally = Tally::default();
    let t0 = Instant::now();
    for trial in 0..trials {
        let restart = trial % 2 == 1;
        // Bring every program to the state the request starts from.
        for p in PROGRAMS {
            let (path, state) = if restart {
                (format!("/api/programs/{p}/start"), "running")
            } else {
                (format!("/api/programs/{p}/stop"), "stopped")
            };
            w.post(&path, json!(null)).await;
            w.wait_state(p, state, Duration::from_secs(20)).await;
        }
        let verb = if restart { "restart" } else { "start" };
        let delay = Duration::from_millis(rand::random::<u64>() % 201);
        for p in PROGRAMS {
            let http = w.http.clone();
            let url = format!("{}/api/programs/{p}/{verb}", w.url);
            let token = w.token.clone();
            tokio::spawn(async move {
                let _ = http.post(url).bearer_auth(token).send().await;
            });
        }
        tokio::time::sleep(delay).await;
        w.kill9();
        drop(w);
        w = Warden::start_in(&data, "").await;
        let views = settled(&w).await;
        tally.trials += 1;
        for (p, v) in PROGRAMS.iter().zip(&views) {
            let copies = marked_copies(p);
            if copies.len() > 1 {
                tally.duplicates += 1;
                eprintln!("trial {trial} ({verb} + {delay:?}): {p} runs {copies:?}: {v}");
            }
            let running = v["state"] == "running";
            if restart && (!running || copies.is_empty()) {
                // It ran before the restart request: it must run after it.
                tally.lost += 1;
                eprintln!("trial {trial} ({verb} + {delay:?}): {p} lost: {v} copies {copies:?}");
            }
            let pid = v["pid"].as_u64().map(|p| p as u32);
            let matches = if running {
                copies.len() == 1 && pid == Some(copies[0])
            } else {
                copies.is_empty()
            };
            if !matches {
                tally.mismatches += 1;
                eprintln!(
                    "trial {trial} ({verb} + {delay:?}): {p} state does not match: {v} copies {copies:?}"
                );
            }
        }
        let integrity = integrity_ok(&data);
        assert_eq!(integrity, "ok", "trial {trial}");
    }
    eprintln!("kill -9 trials: {tally:?} in {:?}", t0.elapsed());
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    assert_eq!(tally.lost, 0, "{tally:?}");
    assert_eq!(tally.mismatches, 0, "{tally:?}");
    for p in PROGRAMS {
        w.post(&format!("/api/programs/{p}/stop"), json!(null))
            .await;
        w.wait_state(p, "stopped", Duration::from_secs(20)).await;
        assert!(marked_copies(p).is_empty());
    }
}
