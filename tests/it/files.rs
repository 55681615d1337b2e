//! Files end to end against the real binary: editing with conflict detection, every
//! escape attempt (checked on disk), a symlink swapped under running requests, streaming
//! 200 MB each way in constant server memory, a 100,000-entry folder page by page,
//! roles, limits, archives and the read-only log view.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A warden plus a program `mc` whose cwd is `<tmp>/mc`, beside `<tmp>/outside`.
struct Fixture {
    w: Warden,
    tmp: tempfile::TempDir,
}

impl Fixture {
    async fn new(extra_config: &str) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let w = Warden::start_in(&data, extra_config).await;
        std::fs::create_dir_all(tmp.path().join("mc")).expect("root");
        std::fs::create_dir_all(tmp.path().join("outside")).expect("outside");
        std::fs::write(tmp.path().join("outside/secret.txt"), "secret\n").expect("secret");
        let mut spec = sh("mc", "sleep 1000");
        spec["cwd"] = json!(tmp.path().join("mc"));
        w.create(spec).await;
        Fixture { w, tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("mc")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/api/programs/mc/files{rest}", self.w.url)
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        rest: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.w
            .call_as(
                Some(token),
                method,
                &format!("/api/programs/mc/files{rest}"),
                body,
            )
            .await
    }

    async fn read(&self, path: &str) -> (StatusCode, Value) {
        self.call(
            &self.w.token,
            Method::GET,
            &format!("/text?path={}", enc(path)),
            None,
        )
        .await
    }

    async fn save(&self, path: &str, text: &str, base: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({ "path": path, "text": text });
        if let Some(b) = base {
            body["base_version"] = json!(b);
        }
        self.call(&self.w.token, Method::PUT, "/text", Some(body))
            .await
    }

    async fn upload(
        &self,
        token: &str,
        dir: &str,
        files: &[(&str, &[u8])],
        overwrite: bool,
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, data) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(data.to_vec()).file_name(name.to_string()),
            );
        }
        // A fresh client: a refused upload's connection is closed by the server before
        // its body is read, and must not be handed from the shared pool to a later request.
        let resp = http_client()
            .post(self.url(&format!("/upload?path={}&overwrite={overwrite}", enc(dir))))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn download(&self, token: &str, query: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .w
            .http
            .get(self.url(&format!("/download?{query}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("download");
        let status = resp.status();
        (status, resp.bytes().await.expect("body").to_vec())
    }
}

/// Percent-encodes a query value (every byte outside unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every file under `dir` with its content, sorted (symlinks listed by target text).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p.strip_prefix(dir).expect("prefix").display().to_string();
            let ft = e.file_type().expect("type");
            if ft.is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&p)
                        .expect("link")
                        .display()
                        .to_string()
                        .into_bytes(),
                ));
            } else if ft.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// Audit rows (actor, action, target, detail), read straight from the database.
fn audit_rows(data_dir: &Path) -> Vec<(String, String, String, Option<String>)> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("warden.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    let mut st = conn
        .prepare("SELECT actor, action, target, detail FROM audit ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[tokio::test]
async fn config_file_round_trip_edit_keeps_permissions_and_is_audited() {
    let f = Fixture::new("").await;
    let file = f.root().join("server.properties");
    std::fs::write(&file, "motd=A Minecraft Server\r\nmax-players=20\r\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    let (st, v) = f.read("server.properties").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_text"], true);
    assert_eq!(v["encoding"], "UTF-8");
    let text = v["text"].as_str().expect("text");
    assert_eq!(text, "motd=A Minecraft Server\r\nmax-players=20\r\n");
    let edited = text.replace("max-players=20", "max-players=64");
    let (st, saved) = f
        .save("server.properties", &edited, v["version"].as_str())
        .await;
    assert_eq!(st, StatusCode::OK, "{saved}");
    assert_eq!(saved["size"], edited.len());
    assert_eq!(saved["created"], false);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), edited);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "permissions kept");
    }
    // Reading again gives the version the save reported; no temporary file is left.
    let (_, again) = f.read("server.properties").await;
    assert_eq!(again["version"], saved["version"]);
    let names: Vec<String> = std::fs::read_dir(f.root())
        .expect("ls")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["server.properties".to_string()]);
    // Saving through a symlink inside the root writes its target and keeps the link.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("server.properties", f.root().join("link.properties"))
            .expect("link");
        let (_, v) = f.read("link.properties").await;
        let (st, v) = f
            .save("link.properties", "motd=via link\n", v["version"].as_str())
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["path"], "server.properties");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "motd=via link\n"
        );
        assert!(f.root().join("link.properties").is_symlink());
        std::fs::remove_file(f.root().join("link.properties")).expect("rm");
    }
    // A new file is created when no base_version is sent.
    let (st, v) = f.save("ops.json", "[]\n", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["created"], true);
    // Both changes are in the audit log with user, path and size.
    wait_until(Duration::from_secs(10), "audit rows", || async {
        let rows = audit_rows(&f.w.data_dir);
        rows.iter()
            .any(|r| {
                r.0 == "token:t-admin"
                    && r.1 == "files.save"
                    && r.2 == "mc:server.properties"
                    && r.3.as_deref() == Some(&format!("{} bytes", edited.len()))
            })
            .then_some(())
            .filter(|_| rows.iter().any(|r| r.2 == "mc:ops.json"))
    })
    .await;
}

#[tokio::test]
async fn concurrent_edit_is_a_conflict() {
    let f = Fixture::new("").await;
    std::fs::write(f.root().join("whitelist.json"), "[]\n").expect("write");
    let (_, a) = f.read("whitelist.json").await;
    let (_, b) = f.read("whitelist.json").await;
    assert_eq!(a["version"], b["version"]);
    let (st, _) = f
        .save("whitelist.json", "[\"alice\"]\n", a["version"].as_str())
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = f
        .save("whitelist.json", "[\"bob\"]\n", b["version"].as_str())
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    assert_eq!(
        std::fs::read_to_string(f.root().join("whitelist.json")).expect("read"),
        "[\"alice\"]\n",
        "the second save must not overwrite the first"
    );
    // A change made outside warden (the game server itself) is caught the same way.
    let (_, c) = f.read("whitelist.json").await;
    std::fs::write(f.root().join("whitelist.json"), "[\"server\"]\n").expect("write");
    let (st, _) = f
        .save("whitelist.json", "[]\n", c["version"].as_str())
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Creating over an existing file, or saving a deleted one, is also a conflict.
    let (st, _) = f.save("whitelist.json", "[]\n", None).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = f.save("gone.json", "[]\n", c["version"].as_str()).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(!f.root().join("gone.json").exists());
}

#[tokio::test]
async fn every_escape_attempt_is_refused_and_nothing_outside_changes() {
    let f = Fixture::new("").await;
    let root = f.root();
    std::fs::write(root.join("server.properties"), "motd=x\n").expect("write");
    std::fs::create_dir(root.join("world")).expect("mkdir");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(f.outside(), root.join("link")).expect("dir link");
        std::os::unix::fs::symlink(f.outside().join("secret.txt"), root.join("filelink"))
            .expect("file link");
        std::os::unix::fs::symlink("../../outside", root.join("world/rel")).expect("rel link");
    }
    let outside_before = snapshot(&f.outside());
    let tmp_before = snapshot_top(f.tmp.path());
    let secret = f.outside().join("secret.txt").display().to_string();
    let t = f.w.token.clone();

    let bad_paths = [
        "../outside/secret.txt".to_string(),
        "world/../../outside/secret.txt".to_string(),
        secret.clone(),
        "/etc/passwd".to_string(),
        "C:\\Windows\\win.ini".to_string(),
        "C:/Windows/win.ini".to_string(),
        "\\\\server\\share\\x".to_string(),
        "..\\outside\\secret.txt".to_string(),
        "..%2Foutside%2Fsecret.txt".to_string(),
        "a\0b".to_string(),
        "link/secret.txt".to_string(),
        "filelink".to_string(),
        "world/rel/secret.txt".to_string(),
    ];
    for p in &bad_paths {
        let (st, v) = f.read(p).await;
        assert!(st.is_client_error(), "read {p:?}: {st} {v}");
        assert!(v["error"]["code"].is_string(), "error shape for {p:?}: {v}");
        assert!(!v.to_string().contains("secret\\n"), "leaked via {p:?}");
        let (st, body) = f.download(&t, &format!("path={}", enc(p))).await;
        assert!(st.is_client_error(), "download {p:?}: {st}");
        assert!(
            !body.windows(7).any(|w| w == b"secret\n"),
            "leaked via {p:?}"
        );
        let (st, v) = f.save(p, "pwned\n", None).await;
        assert!(st.is_client_error(), "save {p:?}: {st} {v}");
        let (st, _) = f
            .call(
                &t,
                Method::POST,
                "/mkdir",
                Some(json!({"path": format!("{p}/x"), "parents": true})),
            )
            .await;
        assert!(st.is_client_error(), "mkdir {p:?}: {st}");
        let (st, _) = f
            .call(
                &t,
                Method::POST,
                "/move",
                Some(json!({"from": "server.properties", "to": p})),
            )
            .await;
        assert!(st.is_client_error(), "move to {p:?}: {st}");
        let (st, _) = f
            .call(
                &t,
                Method::POST,
                "/move",
                Some(json!({"from": p, "to": "stolen"})),
            )
            .await;
        // Moving `filelink` moves the link itself (inside the root); everything else fails.
        if p != "filelink" {
            assert!(st.is_client_error(), "move from {p:?}: {st}");
        } else {
            assert_eq!(st, StatusCode::OK);
            let (st, _) = f
                .call(
                    &t,
                    Method::POST,
                    "/move",
                    Some(json!({"from": "stolen", "to": "filelink"})),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
        }
        if p != "filelink" {
            let (st, _) = f
                .call(
                    &t,
                    Method::DELETE,
                    &format!("?recursive=true&path={}", enc(p)),
                    None,
                )
                .await;
            assert!(st.is_client_error(), "delete {p:?}: {st}");
        }
        let (st, _) = f.upload(&t, p, &[("x.txt", b"pwned")], true).await;
        assert!(st.is_client_error(), "upload into {p:?}: {st}");
        let (st, _) = f
            .call(&t, Method::GET, &format!("?path={}", enc(p)), None)
            .await;
        assert!(st.is_client_error(), "list {p:?}: {st}");
    }
    // Double-encoded separators reach the server as literal "%2F" and are refused too.
    let (st, _) = f
        .call(
            &t,
            Method::GET,
            "/text?path=..%252Foutside%252Fsecret.txt",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // Upload file names are paths too.
    for name in [
        "../evil.txt",
        "/tmp/evil.txt",
        "..\\evil.txt",
        "link/evil.txt",
        "C:evil.txt",
    ] {
        let (st, v) = f.upload(&t, "", &[(name, b"pwned")], true).await;
        assert!(st.is_client_error(), "upload name {name:?}: {st} {v}");
    }
    // A folder listed or archived through the link never shows what is behind it.
    let (st, v) = f.call(&t, Method::GET, "?path=link", None).await;
    assert!(st.is_client_error(), "{v}");
    for format in ["zip", "tar.zst"] {
        let (st, body) = f.download(&t, &format!("format={format}")).await;
        assert_eq!(st, StatusCode::OK);
        let plain = if format == "zip" {
            body
        } else {
            zstd::decode_all(&body[..]).expect("zstd")
        };
        assert!(
            !plain.windows(7).any(|w| w == b"secret\n"),
            "{format} archive contains the outside secret"
        );
    }
    // Deleting the links removes the links only.
    for link in ["filelink", "link"] {
        let (st, v) = f
            .call(
                &t,
                Method::DELETE,
                &format!("?recursive=true&path={link}"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["type"], "symlink");
    }
    // files_root cannot widen the root.
    let mut spec = sh("wide", "true");
    spec["cwd"] = json!(root);
    spec["files_root"] = json!("../outside");
    let (st, _) = f.w.post("/api/programs", spec).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(snapshot(&f.outside()), outside_before, "outside changed");
    assert_eq!(
        snapshot_top(f.tmp.path()),
        tmp_before,
        "files appeared beside the root"
    );
}

/// Names directly in `dir`, ignoring the data directory (warden writes there).
fn snapshot_top(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "data")
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_root_containing_the_data_directory_is_never_served() {
    let f = Fixture::new("").await;
    let mut spec = sh("wide", "true");
    spec["cwd"] = json!(f.tmp.path());
    f.w.create(spec).await;
    let (st, v) = f.w.get("/api/programs/wide/files?path=data").await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "no_file_root");
    // A program without cwd has no file root either.
    f.w.create(sh("nocwd", "true")).await;
    let (st, v) = f.w.get("/api/programs/nocwd/files").await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_swapped_in_under_running_requests_never_escapes() {
    let f = Fixture::new("").await;
    let root = f.root();
    std::fs::create_dir(root.join("real")).expect("mkdir");
    std::fs::write(root.join("real/a.txt"), "inside\n").expect("write");
    std::fs::write(f.outside().join("a.txt"), "secret\n").expect("write");
    let outside_before = snapshot(&f.outside());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Flip `swap` between a real folder and a link to the outside as fast as possible.
    let swapper = {
        let (root, outside, stop) = (root.clone(), f.outside(), stop.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && flips < 5_000_000 {
                let _ = std::fs::remove_file(root.join("swap"));
                let _ = std::fs::rename(root.join("real"), root.join("swap"));
                let _ = std::fs::rename(root.join("swap"), root.join("real"));
                let _ = std::os::unix::fs::symlink(&outside, root.join("swap"));
                flips += 1;
            }
            flips
        })
    };
    let t = f.w.token.clone();
    let mut inside_reads = 0u32;
    for i in 0..300 {
        let (st, v) = f.read("swap/a.txt").await;
        if st == StatusCode::OK {
            assert_eq!(v["text"], "inside\n", "read escaped the root");
            inside_reads += 1;
        }
        let _ = f.save(&format!("swap/n{i}.txt"), "pwned\n", None).await;
        let _ = f
            .upload(&t, "swap", &[(&format!("u{i}.txt"), b"pwned")], false)
            .await;
        let (_, body) = f.download(&t, "path=swap/a.txt").await;
        assert!(
            !body.windows(7).any(|w| w == b"secret\n"),
            "download escaped"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = swapper.join().expect("swapper");
    assert!(flips > 100, "the swapper barely ran ({flips} flips)");
    assert_eq!(
        snapshot(&f.outside()),
        outside_before,
        "something was written outside"
    );
    println!("{flips} swaps; {inside_reads} of 300 reads went through the real folder");
}

/// Deterministic test data: chunk `i` of the stream (cheap to make, even unoptimised).
fn chunk(i: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut w = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            &((i << 32) | w)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_le_bytes(),
        );
        w += 1;
    }
    out.truncate(len);
    out
}

/// Peak resident memory of a process (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_200_mb_file_goes_up_and_down_in_constant_memory() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 200;
    let f = Fixture::new("").await;
    let pid = f.w.child.id();
    // Warm up the allocator and the connection pool with a small transfer first.
    let (st, _) = f
        .upload(&f.w.token, "", &[("small.bin", &chunk(0, 4096))], false)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = f.download(&f.w.token, "path=small.bin").await;
    assert_eq!(st, StatusCode::OK);
    let before = peak_rss_kib(pid);

    let stream =
        futures_util::stream::iter(0..CHUNKS).map(|i| Ok::<_, std::io::Error>(chunk(i, CHUNK)));
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(stream),
        CHUNKS * CHUNK as u64,
    )
    .file_name("big.bin");
    let resp =
        f.w.http
            .post(f.url("/upload?path="))
            .bearer_auth(&f.w.token)
            .multipart(reqwest::multipart::Form::new().part("files", part))
            .send()
            .await
            .expect("upload");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["files"][0]["size"], CHUNKS * CHUNK as u64);
    assert_eq!(
        std::fs::metadata(f.root().join("big.bin"))
            .expect("meta")
            .len(),
        CHUNKS * CHUNK as u64
    );

    let resp =
        f.w.http
            .get(f.url("/download?path=big.bin"))
            .bearer_auth(&f.w.token)
            .send()
            .await
            .expect("download");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.content_length(), Some(CHUNKS * CHUNK as u64));
    let mut body = resp.bytes_stream();
    let (mut i, mut pending) = (0u64, Vec::new());
    while let Some(bytes) = body.next().await {
        pending.extend_from_slice(&bytes.expect("chunk"));
        while pending.len() >= CHUNK {
            assert!(pending[..CHUNK] == chunk(i, CHUNK)[..], "chunk {i} differs");
            pending.drain(..CHUNK);
            i += 1;
        }
    }
    assert_eq!((i, pending.len()), (CHUNKS, 0), "download length");

    let grown_mib = peak_rss_kib(pid).saturating_sub(before) / 1024;
    println!("server peak RSS grew by {grown_mib} MiB for 200 MiB up + 200 MiB down");
    assert!(
        grown_mib < 40,
        "server peak memory grew by {grown_mib} MiB moving 200 MiB each way"
    );
}

#[tokio::test]
async fn a_100k_entry_folder_is_listed_page_by_page() {
    const N: usize = 100_000;
    const PAGE: usize = 5000;
    let f = Fixture::new(&format!("[files]\nmax_page_entries = {PAGE}\n")).await;
    let big = f.root().join("big");
    std::fs::create_dir(&big).expect("mkdir");
    for i in 0..N {
        std::fs::File::create(big.join(format!("e{i:06}"))).expect("create");
    }
    std::fs::create_dir(big.join("zz-folder")).expect("mkdir");
    let (st, v) =
        f.w.get("/api/programs/mc/files?path=big&limit=100000")
            .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "over the page limit: {v}"
    );
    let mut seen = 0usize;
    let mut pages = 0;
    let mut after: Option<String> = None;
    let mut last: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("?path=big&limit={PAGE}&after={}", enc(a)),
            None => format!("?path=big&limit={PAGE}"),
        };
        let (st, v) = f.call(&f.w.token, Method::GET, &q, None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["total"], N + 1);
        let entries = v["entries"].as_array().expect("entries");
        assert!(entries.len() <= PAGE);
        if pages == 0 {
            assert_eq!(entries[0]["name"], "zz-folder", "folders come first");
            assert_eq!(entries[0]["type"], "dir");
        }
        for e in entries.iter().filter(|e| e["type"] == "file") {
            let name = e["name"].as_str().expect("name").to_string();
            assert_eq!(name, format!("e{seen:06}"), "order or completeness");
            assert!(last.as_ref().is_none_or(|l| *l < name));
            last = Some(name);
            seen += 1;
        }
        pages += 1;
        match v["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, N);
    assert_eq!(pages, N / PAGE + 1);
}

#[tokio::test]
async fn reading_needs_files_read_and_writing_files_write() {
    let f = Fixture::new("").await;
    std::fs::write(f.root().join("server.properties"), "motd=x\n").expect("write");
    std::fs::create_dir(f.root().join("world")).expect("mkdir");
    let before = snapshot(&f.root());
    // A viewer (no files.read) cannot open files: they may hold the game's secrets.
    let viewer = make_token(&f.w.data_dir, "viewer");
    let (st, _) = f.call(&viewer, Method::GET, "", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = f
        .call(&viewer, Method::GET, "/text?path=server.properties", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = f.download(&viewer, "path=server.properties").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // An operator reads (files.read) but cannot write: files.write can run code.
    let reader = make_token(&f.w.data_dir, "operator");
    let (st, _) = f.call(&reader, Method::GET, "", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = f
        .call(&reader, Method::GET, "/text?path=server.properties", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = f.download(&reader, "path=server.properties").await;
    assert_eq!(st, StatusCode::OK);
    let writes = [
        (
            Method::PUT,
            "/text",
            Some(
                json!({"path": "server.properties", "text": "motd=y\n", "base_version": v["version"]}),
            ),
        ),
        (
            Method::PUT,
            "/text",
            Some(json!({"path": "new.txt", "text": "x"})),
        ),
        (Method::POST, "/mkdir", Some(json!({"path": "newdir"}))),
        (
            Method::POST,
            "/move",
            Some(json!({"from": "world", "to": "world2"})),
        ),
        (Method::DELETE, "?path=server.properties", None),
        (Method::DELETE, "?path=world&recursive=true", None),
    ];
    for token in [&viewer, &reader] {
        for (method, rest, body) in writes.clone() {
            let (st, v) = f.call(token, method.clone(), rest, body).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{method} {rest}: {v}");
            assert_eq!(v["error"]["code"], "forbidden");
        }
        let (st, _) = f.upload(token, "", &[("x.txt", b"x")], true).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    assert_eq!(snapshot(&f.root()), before, "a reader changed files");
    // A token granted files.write on this program may.
    let (st, v) =
        f.w.post("/api/tokens", json!({"name": "writer", "role": "none"}))
            .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let writer = v["token"].as_str().expect("token").to_string();
    let (st, g) =
        f.w.put(
            "/api/grants",
            json!({"subject_kind": "token", "subject": v["public_id"],
                   "scope": {"kind": "program", "value": "mc"}, "perms": ["files.write"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["grants"][0]["runs_code"], true, "{g}");
    let (st, _) = f
        .call(
            &writer,
            Method::POST,
            "/mkdir",
            Some(json!({"path": "newdir"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn operations_work_end_to_end_and_are_audited() {
    let f = Fixture::new("").await;
    let t = f.w.token.clone();
    // Multi-file upload, with folders in names.
    let (st, v) = f
        .upload(
            &t,
            "",
            &[
                ("world/level.dat", b"\x00\x01level"),
                ("mods/a.jar", b"PK\x03\x04jar"),
            ],
            false,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["files"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        std::fs::read(f.root().join("world/level.dat")).expect("read"),
        b"\x00\x01level"
    );
    // Existing files are a conflict unless overwrite=true.
    let (st, _) = f.upload(&t, "mods", &[("a.jar", b"new")], false).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = f.upload(&t, "mods", &[("a.jar", b"new")], true).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["files"][0]["replaced"], true);
    // Binary files are offered as download, not as text.
    let (st, v) = f.read("world/level.dat").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["is_text"], false);
    assert!(v["text"].is_null());
    // Folder operations.
    let (st, _) = f
        .call(
            &t,
            Method::POST,
            "/mkdir",
            Some(json!({"path": "backups/old", "parents": true})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = f
        .call(&t, Method::POST, "/mkdir", Some(json!({"path": "backups"})))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = f
        .call(
            &t,
            Method::POST,
            "/move",
            Some(json!({"from": "mods/a.jar", "to": "backups/old/a.jar"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(f.root().join("backups/old/a.jar").exists());
    let (st, _) = f
        .call(
            &t,
            Method::POST,
            "/move",
            Some(json!({"from": "world", "to": "world/inner"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = f
        .call(
            &t,
            Method::POST,
            "/move",
            Some(json!({"from": "world", "to": "backups"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "never replaces");
    let (st, v) = f.call(&t, Method::GET, "?path=backups/old", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["entries"][0]["name"], "a.jar");
    assert_eq!(v["entries"][0]["size"], 3);
    // A folder downloads as tar.zst with its content.
    let (st, body) = f.download(&t, "path=world&format=tar.zst").await;
    assert_eq!(st, StatusCode::OK);
    let tar = zstd::decode_all(&body[..]).expect("zstd");
    let mut archive = tar::Archive::new(&tar[..]);
    let names: Vec<String> = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("e").path().expect("p").display().to_string())
        .collect();
    assert!(names.contains(&"world/level.dat".to_string()), "{names:?}");
    // ... and as zip.
    let (st, body) = f.download(&t, "path=world").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&body[..4], b"PK\x03\x04");
    // Deleting a non-empty folder needs recursive=true.
    let (st, _) = f.call(&t, Method::DELETE, "?path=backups", None).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = f
        .call(&t, Method::DELETE, "?path=backups&recursive=true", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["size"], 3);
    assert!(!f.root().join("backups").exists());
    let (st, _) = f.call(&t, Method::DELETE, "?path=", None).await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the root is not deletable"
    );
    let seen = std::sync::Mutex::new(Vec::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let actions: Vec<String> = audit_rows(&f.w.data_dir)
            .into_iter()
            .filter(|r| r.1.starts_with("files."))
            .map(|r| {
                format!("{} {} {}", r.1, r.2, r.3.unwrap_or_default())
                    .trim()
                    .to_string()
            })
            .collect();
        let want = [
            "files.upload mc:world/level.dat 7 bytes",
            "files.upload mc:mods/a.jar 3 bytes, replaced",
            "files.mkdir mc:backups/old",
            "files.move mc:mods/a.jar to backups/old/a.jar",
            "files.delete mc:backups dir, 3 bytes",
        ];
        if want.iter().all(|w| actions.iter().any(|a| a == w)) {
            break;
        }
        *seen.lock().expect("lock") = actions;
        assert!(
            std::time::Instant::now() < deadline,
            "audit of every change: want {want:?}, got {:?}",
            seen.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads `huge.bin` sending `send` bytes, then waits; returns the status answered.
async fn stalled_upload(
    f: &Fixture,
    token: &str,
    declared: Option<u64>,
    send: usize,
) -> StatusCode {
    let head = futures_util::stream::iter(
        (0..send / 10_000).map(|i| Ok::<_, std::io::Error>(chunk(i as u64, 10_000))),
    );
    let stall = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, std::io::Error>(Vec::new())
    });
    let body = reqwest::Body::wrap_stream(head.chain(stall));
    let part = match declared {
        Some(len) => reqwest::multipart::Part::stream_with_length(body, len),
        None => reqwest::multipart::Part::stream(body),
    }
    .file_name("huge.bin");
    let resp = http_client()
        .post(f.url("/upload"))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("upload answered before the client finished sending");
    resp.status()
}

#[tokio::test]
async fn limits_answer_413_422_and_429() {
    let f = Fixture::new(
        "[files]\nmax_text_bytes = 1000\nmax_upload_bytes = 100000\nmax_concurrent_transfers = 1\nmax_page_entries = 10\n",
    )
    .await;
    let t = f.w.token.clone();
    std::fs::write(f.root().join("big.txt"), "x".repeat(1001)).expect("write");
    let (st, v) = f.read("big.txt").await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    let (st, v) = f.save("new.txt", &"y".repeat(1001), None).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(!f.root().join("new.txt").exists());
    // Over the limit by declared length: refused before any of the body is read. (The
    // client then stalls, so the server has no unread data when it closes the
    // connection — a real client racing on would get a reset instead of the answer.)
    let st = stalled_upload(&f, &t, Some(200_000), 0).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a declared length the limit cuts the stream midway; the partial file goes.
    let st = stalled_upload(&f, &t, None, 110_000).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    wait_until(
        Duration::from_secs(10),
        "no partial or temporary file left",
        || async { (snapshot_top(&f.root()) == vec!["big.txt".to_string()]).then_some(()) },
    )
    .await;
    let (st, v) = f.call(&t, Method::GET, "?limit=11", None).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "limit");
    // One transfer slot: hold a download open, and the next one is refused.
    std::fs::write(f.root().join("blob.bin"), vec![0u8; 8 << 20]).expect("write");
    let held =
        f.w.http
            .get(f.url("/download?path=blob.bin"))
            .bearer_auth(&t)
            .send()
            .await
            .expect("download");
    assert_eq!(held.status(), StatusCode::OK);
    let (st, _) = f.download(&t, "path=big.txt").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    drop(held);
    wait_until(Duration::from_secs(10), "slot freed", || async {
        (f.download(&t, "path=big.txt").await.0 == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn console_logs_are_readable_through_the_logs_area() {
    let f = Fixture::new("").await;
    let mut spec = sh("chatty", "echo hello-from-chatty; sleep 1000");
    spec["cwd"] = json!(f.root());
    f.w.create(spec).await;
    f.w.post("/api/programs/chatty/start", json!(null)).await;
    let page = wait_until(Duration::from_secs(15), "console.log listed", || async {
        let (st, v) = f.w.get("/api/programs/chatty/files?area=logs").await;
        (st == StatusCode::OK
            && v["entries"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["name"] == "console.log")))
        .then_some(v)
    })
    .await;
    assert!(page["total"].as_u64() >= Some(1));
    wait_until(Duration::from_secs(15), "log line readable", || async {
        let (st, v) =
            f.w.get("/api/programs/chatty/files/text?area=logs&path=console.log")
                .await;
        (st == StatusCode::OK
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("hello-from-chatty")))
        .then_some(())
    })
    .await;
    // The logs area cannot be written: save requests take no `area`.
    let (st, _) =
        f.w.call_as(
            Some(&f.w.token),
            Method::PUT,
            "/api/programs/chatty/files/text?area=logs",
            Some(json!({"path": "console.log", "text": "", "area": "logs"})),
        )
        .await;
    assert!(st.is_client_error());
    // Escapes from the log folder are refused like any other.
    let (st, _) =
        f.w.get("/api/programs/chatty/files/text?area=logs&path=..%2F..%2Fwarden.db")
            .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn ctl_files_put_ls_get_round_trip() {
    let f = Fixture::new("").await;
    let work = f.tmp.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    std::fs::write(work.join("ops.json"), "[\"alice\"]\n").expect("write");
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("ctl")
            .args(args)
            .env("WARDEN_URL", &f.w.url)
            .env("WARDEN_TOKEN", &f.w.token)
            .current_dir(&work)
            .output()
            .expect("run ctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = ctl(&["files", "put", "mc", "ops.json"]);
    assert!(ok, "{err}");
    assert!(out.contains("uploaded ops.json"), "{out}");
    let (ok, _, err) = ctl(&["files", "put", "mc", "ops.json"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, err) = ctl(&["files", "ls", "mc"]);
    assert!(ok, "{err}");
    assert!(out.contains("ops.json"), "{out}");
    std::fs::remove_file(work.join("ops.json")).expect("rm");
    let (ok, _, err) = ctl(&["files", "get", "mc", "ops.json"]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("ops.json")).expect("read"),
        "[\"alice\"]\n"
    );
    let (ok, _, err) = ctl(&["files", "get", "mc", "", "--format", "tar.zst"]);
    assert!(ok, "{err}");
    assert!(work.join("mc.tar.zst").exists(), "{err}");
    let (ok, _, err) = ctl(&["files", "get", "mc", "../outside/secret.txt"]);
    assert!(!ok, "escape through the CLI: {err}");
}

#[tokio::test]
async fn game_secrets_in_config_files_are_masked_for_callers_without_define() {
    let f = Fixture::new("").await;
    let props = "motd=hi\nrcon.password=s3cret-rcon\nrcon.port=25575\n";
    std::fs::write(f.root().join("server.properties"), props).expect("props");
    std::fs::create_dir_all(f.root().join("Pal")).expect("pal dir");
    std::fs::write(
        f.root().join("Pal/PalWorldSettings.ini"),
        "OptionSettings=(ServerName=\"x\",AdminPassword=\"s3cret-pal\",ServerPassword=\"\")\n",
    )
    .expect("pal");
    // A token with both file permissions on mc, but not define.
    let (st, v) =
        f.w.post("/api/tokens", json!({"name": "files-only", "role": "none"}))
            .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let tok = v["token"].as_str().expect("token").to_string();
    let (st, v) =
        f.w.put(
            "/api/grants",
            json!({"subject_kind": "token", "subject": v["public_id"],
                   "scope": {"kind": "program", "value": "mc"},
                   "perms": ["view", "files.read", "files.write"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, v) = f
        .call(&tok, Method::GET, "/text?path=server.properties", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let shown = v["text"].as_str().expect("text").to_string();
    assert_eq!(shown, "motd=hi\nrcon.password=********\nrcon.port=25575\n");
    let (_, v) = f
        .call(
            &tok,
            Method::GET,
            "/text?path=Pal/PalWorldSettings.ini",
            None,
        )
        .await;
    assert_eq!(
        v["text"],
        "OptionSettings=(ServerName=\"x\",AdminPassword=\"********\",ServerPassword=\"\")\n"
    );
    // An admin (define) sees the real values.
    let (_, admin_view) = f
        .call(
            &f.w.token,
            Method::GET,
            "/text?path=server.properties",
            None,
        )
        .await;
    assert_eq!(admin_view["text"], props);

    // Downloads: the file alone and inside a folder archive.
    let get_bytes = |url: String| {
        let http = f.w.http.clone();
        let tok = tok.clone();
        async move {
            let r = http.get(url).bearer_auth(tok).send().await.expect("get");
            assert_eq!(r.status(), StatusCode::OK);
            r.bytes().await.expect("bytes").to_vec()
        }
    };
    let one = get_bytes(f.url("/download?path=server.properties")).await;
    assert_eq!(String::from_utf8_lossy(&one), shown);
    let zip = get_bytes(f.url("/download?path=&format=zip")).await;
    let has = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        has(&zip, "rcon.password=********"),
        "the file is in the archive, masked"
    );
    assert!(!has(&zip, "s3cret-rcon") && !has(&zip, "s3cret-pal"));

    // Saving the masked text back keeps the real password; other edits land.
    let edited = shown.replace("motd=hi", "motd=edited");
    let (st, v) = f
        .call(
            &tok,
            Method::PUT,
            "/text",
            Some(json!({"path": "server.properties", "text": edited, "base_version": admin_view["version"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        std::fs::read_to_string(f.root().join("server.properties")).expect("read"),
        "motd=edited\nrcon.password=s3cret-rcon\nrcon.port=25575\n"
    );
    // A mask with no stored value behind it is refused, naming the line.
    let (st, v) = f
        .call(
            &tok,
            Method::PUT,
            "/text",
            Some(json!({"path": "new/server.properties", "text": "motd=x\nrcon.password=********\n"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v.to_string();
    assert!(
        msg.contains("line 2") && msg.contains("rcon.password"),
        "{msg}"
    );
}

/// A tar.gz whose entries are written raw (an attacker's tool does not refuse `..`).
fn raw_tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b.into_inner().expect("tar")).expect("gz");
    gz.finish().expect("gz")
}

#[tokio::test]
async fn an_archive_is_extracted_into_a_new_folder_and_never_outside() {
    use std::io::Write;
    let f = Fixture::new("").await;
    // A zip with a file, a nested file and a symlink pointing out of the root.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("a.txt", opts).expect("start");
    zip.write_all(b"alpha\n").expect("write");
    zip.start_file("d/b.txt", opts).expect("start");
    zip.write_all(b"beta\n").expect("write");
    zip.add_symlink("link", "/etc/passwd", opts)
        .expect("symlink");
    let bytes = zip.finish().expect("zip").into_inner();
    std::fs::write(f.root().join("good.zip"), bytes).expect("write zip");

    let (st, v) =
        f.w.post(
            "/api/programs/mc/files/extract",
            json!({"path": "good.zip", "to": "unpacked/good"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["to"], &v["files"], &v["skipped"], &v["bytes"]),
        (&json!("unpacked/good"), &json!(2), &json!(1), &json!(11)),
        "{v}"
    );
    let out = f.root().join("unpacked/good");
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).expect("a"),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("d/b.txt")).expect("b"),
        "beta\n"
    );
    assert!(
        std::fs::symlink_metadata(out.join("link")).is_err(),
        "the link was created"
    );

    // Never into an existing folder.
    let (st, v) =
        f.w.post(
            "/api/programs/mc/files/extract",
            json!({"path": "good.zip", "to": "unpacked/good"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "conflict", "{v}");

    // An entry leading out refuses the whole archive and leaves nothing anywhere.
    std::fs::write(
        f.root().join("evil.tar.gz"),
        raw_tar_gz(&[("fine.txt", b"ok"), ("../../outside/escaped.txt", b"x")]),
    )
    .expect("write tar");
    let (st, v) =
        f.w.post(
            "/api/programs/mc/files/extract",
            json!({"path": "evil.tar.gz", "to": "evil"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("'..'"),
        "{v}"
    );
    assert!(!f.outside().join("escaped.txt").exists());
    let left: Vec<String> = std::fs::read_dir(f.root())
        .expect("root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("evil") && n != "evil.tar.gz")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Not an archive; a path that leaves the root.
    std::fs::write(f.root().join("notes.txt"), "n").expect("notes");
    let (st, v) =
        f.w.post(
            "/api/programs/mc/files/extract",
            json!({"path": "notes.txt", "to": "n"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "path", "{v}");
    let (st, v) =
        f.w.post(
            "/api/programs/mc/files/extract",
            json!({"path": "good.zip", "to": "../outside/x"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "to", "{v}");
    assert!(!f.outside().join("x").exists());

    // The extraction is in the audit log with what it wrote.
    let rec = wait_until(Duration::from_secs(10), "the audit record", || async {
        let (_, page) = f.w.get("/api/audit?action=files.extract").await;
        page["entries"]
            .as_array()
            .and_then(|e| e.iter().find(|r| r["result"] == "ok").cloned())
    })
    .await;
    assert_eq!(rec["target"], "mc:good.zip", "{rec}");
    assert!(
        rec["detail"].as_str().unwrap_or("").contains("2 files"),
        "{rec}"
    );
}
