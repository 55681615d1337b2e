//! warden's own HTTPS (`[api] tls_cert`/`tls_key`): served from the files, read again when
//! a renewal replaces them, plain HTTP sent to HTTPS, the cookie `Secure`, the CLI and a
//! fleet hub trusting a self-signed certificate by its fingerprint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

use crate::common::*;

/// A self-signed certificate for 127.0.0.1 written to `dir/NAME.crt` and `NAME.key`:
/// (certificate PEM, its SHA-256 in hex).
fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("generate a certificate");
    let pem = ck.cert.pem();
    std::fs::write(dir.join(format!("{name}.crt")), &pem).expect("write cert");
    std::fs::write(
        dir.join(format!("{name}.key")),
        ck.signing_key.serialize_pem(),
    )
    .expect("write key");
    let sha: String = sha2::Sha256::digest(ck.cert.der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (pem, sha)
}

/// A client that trusts only the certificate `pem`.
fn trusting(pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("certificate");
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn warden_serves_https_from_files_it_reloads_and_clients_pin_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let certs: PathBuf = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let (pem_a, sha_a) = self_signed(&certs, "a");
    let (pem_b, sha_b) = self_signed(&certs, "b");
    let (live_cert, live_key) = (certs.join("live.crt"), certs.join("live.key"));
    std::fs::copy(certs.join("a.crt"), &live_cert).expect("cert");
    std::fs::copy(certs.join("a.key"), &live_key).expect("key");

    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let (st, _, err) = cli(
        &data,
        &["user", "add", "ann", "--role", "viewer", "--password-stdin"],
        Some("a long password"),
    );
    assert!(st.success(), "{err}");
    let config = format!(
        "[api]\ntls_cert = {:?}\ntls_key = {:?}\n",
        live_cert.display().to_string(),
        live_key.display().to_string()
    );
    let w = Warden::start_in(&data, &config).await;
    assert!(w.url.starts_with("https://127.0.0.1:"), "{}", w.url);
    let addr = w.url.trim_start_matches("https://").to_string();

    // A client that trusts certificate A reaches warden; the session cookie is Secure.
    let a = trusting(&pem_a);
    let resp = a
        .get(format!("{}/health", w.url))
        .send()
        .await
        .expect("https health");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = a
        .post(format!("{}/api/auth/login", w.url))
        .json(&json!({"username": "ann", "password": "a long password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP on the HTTPS port is sent to HTTPS, path and query kept.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("plain client");
    let resp = plain
        .get(format!("http://{addr}/api/programs?x=1"))
        .send()
        .await
        .expect("plain http");
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("https://{addr}/api/programs?x=1").as_str())
    );

    // The CLI: a self-signed certificate is refused unless pinned, and the pin must match.
    let (ok, _, err) = ctl_at(&w.url, &w.token, &["list"]);
    assert!(!ok, "an unknown certificate was trusted");
    assert!(
        err.contains("cannot reach warden") || err.contains("certificate"),
        "{err}"
    );
    let (ok, out, err) = ctl_at(&w.url, &w.token, &["--fingerprint", &sha_a, "list"]);
    assert!(ok, "pinned list failed: {out}{err}");
    let (ok, _, err) = ctl_at(&w.url, &w.token, &["list", "--fingerprint", &sha_b]);
    assert!(!ok, "the wrong pin was accepted");
    assert!(err.contains("pinned"), "{err}");

    // A renewal replaces the files: new connections get certificate B, without a restart.
    std::fs::copy(certs.join("b.crt"), &live_cert).expect("renew cert");
    std::fs::copy(certs.join("b.key"), &live_key).expect("renew key");
    let b = trusting(&pem_b);
    wait_until(Duration::from_secs(10), "certificate B served", || async {
        match b.get(format!("{}/health", w.url)).send().await {
            Ok(r) if r.status() == StatusCode::OK => Some(()),
            _ => None,
        }
    })
    .await;
    // (A new client: the old one could resume its TLS session without a certificate.)
    assert!(
        trusting(&pem_a)
            .get(format!("{}/health", w.url))
            .send()
            .await
            .is_err(),
        "certificate A still served after the renewal"
    );

    // A hub reaches this node over HTTPS by the pinned certificate B.
    let hub_data = tmp.path().join("hub");
    std::fs::create_dir_all(&hub_data).expect("hub dir");
    let (st, out, err) = cli(
        &hub_data,
        &[
            "fleet",
            "add",
            "tls",
            &format!("{}/", w.url),
            "--fingerprint",
            &sha_b,
        ],
        Some(&w.token),
    );
    assert!(st.success(), "{out}{err}");
    let hub = Warden::start_in(&hub_data, "").await;
    let (st, v) = hub.get("/api/fleet/programs").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let node = v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == "tls"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(node["unreachable"], false, "{v}");
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start_naming_both_keys() {
    let tmp = tempfile::tempdir().expect("tmp");
    let certs = tmp.path();
    self_signed(certs, "a");
    let bad = certs.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[api]\ntls_cert = {:?}\n",
            certs.join("a.crt").display().to_string()
        ),
    )
    .expect("config");
    let (st, out, err) = cli(
        &certs.join("data"),
        &["config", "check", &bad.display().to_string()],
        None,
    );
    assert!(!st.success(), "{out}");
    assert!(
        err.contains("api.tls_cert is set but api.tls_key is not"),
        "{err}"
    );
}
