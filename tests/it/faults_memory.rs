//! Memory comes back: after a backup of a few hundred MB, warden's private memory
//! (`RssAnon`) returns to within 10 MB of its idle figure within 60 s, and stays under
//! 64 MB while the backup runs. (`bench/memory.py` measures the 2 GB figure.)

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

fn rss_anon_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("RssAnon")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_memory_returns_to_idle_after_a_backup() {
    let mb: usize = std::env::var("WARDEN_MEMORY_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(384);
    let tmp = tempfile::tempdir().expect("tmp");
    let world = tmp.path().join("world");
    std::fs::create_dir_all(&world).expect("world");
    // 8 MiB blocks: half pseudo-random (incompressible), half text; each file differs.
    let mut block = Vec::with_capacity(8 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while block.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block.extend_from_slice(&x.to_le_bytes());
    }
    while block.len() < 8 << 20 {
        block.extend_from_slice(b"[12:00:00] [Server thread/INFO]: a player joined the game\n");
    }
    for i in 0..mb / 8 {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(world.join(format!("r.{i}.mca")), &block).expect("write");
    }
    let w = Warden::start_in(&tmp.path().join("data"), "").await;
    let pid = w.child.id();
    let mut spec = sh("mem", "exec sleep 600");
    spec["cwd"] = json!(world);
    w.create(spec).await;
    // Idle: let start-up settle, then take the lowest of a few readings.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut idle = u64::MAX;
    for _ in 0..5 {
        idle = idle.min(rss_anon_kb(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, v) = w.post("/api/programs/mem/backups", json!(null)).await;
    assert_eq!(st, reqwest::StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_i64().expect("id");
    let mut peak = 0;
    let started = Instant::now();
    loop {
        peak = peak.max(rss_anon_kb(pid));
        let (_, b) = w.get(&format!("/api/backups/{id}")).await;
        if b["status"] != "running" {
            assert_eq!(b["status"], "ok", "{b}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "backup too slow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = Instant::now();
    let after = wait_until(
        Duration::from_secs(60),
        "private memory back within 10 MB of idle",
        || async {
            let now = rss_anon_kb(pid);
            (now <= idle + 10 * 1024).then_some(now)
        },
    )
    .await;
    eprintln!(
        "RssAnon: idle {idle} kB, peak during a {mb} MB backup {peak} kB, after {after} kB ({:?} after the backup)",
        done.elapsed()
    );
    assert!(
        peak < 64 * 1024,
        "peak private memory {peak} kB during the backup"
    );
}
