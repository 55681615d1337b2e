//! Bounded connections: 2,000 clients that send half a request head, against a warden
//! limited to 1,024 descriptors, cannot stop it answering `/health` nor restarting a
//! killed program; a half-sent head is cut at the header-read timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

/// Starts warden with `RLIMIT_NOFILE` soft = hard = `nofile`.
async fn warden_with_nofile(data: &std::path::Path, nofile: u64, config: &str) -> Warden {
    std::fs::create_dir_all(data).expect("data dir");
    let token = make_token(data, "admin");
    let config_path = data.join("test-config.toml");
    std::fs::write(
        &config_path,
        format!("log_level = \"warn\"\n{ROOT_OK}{config}"),
    )
    .expect("config");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                nofile,
                nofile,
            )
            .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().expect("spawn warden");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("address line");
    let url = first
        .strip_prefix("warden listening on ")
        .expect("address line")
        .trim()
        .to_string();
    attach_warden(child, url, data.to_path_buf(), token).await
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_under_1024_descriptors_starve_nothing() {
    // This test process holds the 2,000 client sockets itself.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).expect("limit");
    assert!(
        hard >= 4096,
        "the test needs a hard open-file limit of 4096 (ulimit -Hn)"
    );
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
        .expect("raise own limit");
    let tmp = tempfile::tempdir().expect("tmp");
    let w = warden_with_nofile(&tmp.path().join("data"), 1024, "").await;
    let mut spec = sh("victim", "exec sleep 1000");
    spec["start_seconds"] = json!(0);
    spec["restart"] = json!({"policy": "always", "backoff_initial_ms": 0});
    w.create(spec).await;
    w.post("/api/programs/victim/start", json!(null)).await;
    let first = w
        .wait_state("victim", "running", Duration::from_secs(10))
        .await["pid"]
        .as_u64()
        .expect("pid");

    let addr = w.url.trim_start_matches("http://").to_string();
    let addr2 = addr.clone();
    let clients = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for _ in 0..2000 {
            // Refused or reset connections are the server protecting itself: fine.
            if let Ok(mut s) = TcpStream::connect(&addr2) {
                let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
                held.push(s);
            }
        }
        held
    })
    .await
    .expect("clients");
    eprintln!("{} connections opened", clients.len());

    // /health still answers promptly, over a fresh connection each time.
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Starved, it would never answer; a loaded test machine may take a few seconds.
    wait_until(
        Duration::from_secs(20),
        "/health answers under the flood",
        || async {
            let r = client.get(format!("{}/health", w.url)).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    eprintln!("/health answered after {:?}", started.elapsed());
    // A killed program is restarted: spawning needs descriptors the clients cannot take.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill program");
    wait_until(Duration::from_secs(10), "the program restarted", || async {
        let r = client
            .get(format!("{}/api/programs/victim", w.url))
            .bearer_auth(&w.token)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (v["state"] == "running" && v["pid"].as_u64().is_some_and(|p| p != first)).then_some(())
    })
    .await;
    let fds = open_fds(w.child.id());
    eprintln!("warden holds {fds} descriptors");
    assert!(fds < 1000, "warden holds {fds} descriptors");
    let events = w.events("victim").await;
    assert!(
        !events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too many open files"))),
        "{events:?}"
    );
    drop(clients);
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_at_the_header_read_timeout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let w = Warden::start_in(
        tmp.path(),
        "[api]\nheader_read_timeout_seconds = 1\nidle_timeout_seconds = 2\n",
    )
    .await;
    let addr = w.url.trim_start_matches("http://").to_string();
    let t = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        let started = Instant::now();
        let mut buf = [0u8; 512];
        // Closed by the server (EOF, maybe after a 408), not by our read timeout.
        closed_after(&mut s, &mut buf, started)
    })
    .await
    .expect("join");
    let took = t.expect("the server closed the connection");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

/// The idle timeout closes connections at rest, never one whose response is still being
/// sent: a console stream of a program that says nothing for longer than the timeout
/// still delivers the line that comes after the silence.
#[tokio::test]
async fn a_quiet_stream_is_working_not_idle() {
    use futures_util::StreamExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let w = Warden::start_in(tmp.path(), "[api]\nidle_timeout_seconds = 1\n").await;
    w.create(sh(
        "quiet",
        "sleep 4; echo after-the-silence; exec sleep 1000",
    ))
    .await;
    w.post("/api/programs/quiet/start", serde_json::json!(null))
        .await;
    let resp = w
        .http
        .get(format!(
            "{}/api/programs/quiet/console/stream?lines=0",
            w.url
        ))
        .bearer_auth(&w.token)
        .send()
        .await
        .expect("stream");
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            if seen.contains("after-the-silence") {
                return true;
            }
        }
        false
    })
    .await
    .expect("the line within 30 s");
    assert!(got, "the stream was closed during the silence: {seen:?}");
}

/// A keep-alive connection at rest is closed once it has been idle for the whole timeout:
/// not before (its last use counts, not when it opened) and not long after.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let w = Warden::start_in(tmp.path(), "[api]\nidle_timeout_seconds = 2\n").await;
    let addr = w.url.trim_start_matches("http://").to_string();
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        // Used twice, 1.5 s apart: the second use restarts the idle count.
        for _ in 0..2 {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("write");
            let n = s.read(&mut buf).expect("the answer");
            assert!(
                String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
            std::thread::sleep(Duration::from_millis(1500));
        }
        let started = Instant::now() - Duration::from_millis(1500);
        closed_after(&mut s, &mut buf, started)
    })
    .await
    .expect("join")
    .expect("the server closed the connection");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "closed {took:?} after its last use (idle timeout 2 s)"
    );
}

/// Reads `s` until the server closes it (end of file or a reset); how long after
/// `started` that was. A read error (our own read timeout included) is returned.
fn closed_after(
    s: &mut std::net::TcpStream,
    buf: &mut [u8],
    started: Instant,
) -> std::io::Result<Duration> {
    loop {
        match s.read(buf) {
            Ok(0) => return Ok(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(started.elapsed());
            }
            Err(e) => return Err(e),
        }
    }
}
