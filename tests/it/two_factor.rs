//! Two-factor login (TOTP), recovery codes, the require-two-factor switch, the lockout of
//! one account from one address, and sessions listed and revoked — against the real
//! binary, with codes computed here from the secret warden hands out.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use totp_rs::Totp;

use crate::common::*;

/// warden behind a "proxy" at 127.0.0.1, so each test client can claim its own address.
async fn start() -> Warden {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.keep();
    Warden::start_in(&data, "[api]\ntrusted_proxies = [\"127.0.0.1\"]").await
}

async fn add_user(w: &Warden, name: &str) {
    let (st, body) = w
        .post(
            "/api/users",
            json!({"name": name, "password": "a long password", "role": "viewer"}),
        )
        .await;
    assert!(st.is_success(), "{st} {body}");
}

async fn login_from(w: &Warden, ip: &str, name: &str, password: &str) -> Response {
    w.http
        .post(format!("{}/api/auth/login", w.url))
        .header("x-forwarded-for", ip)
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .expect("login")
}

/// A signed-in browser: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn session_of(resp: Response) -> Session {
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_string(),
    }
}

async fn call(
    w: &Warden,
    s: &Session,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = w
        .http
        .request(method, format!("{}{path}", w.url))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("call");
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

async fn post_anon(w: &Warden, ip: &str, path: &str, body: Value) -> Response {
    w.http
        .post(format!("{}{path}", w.url))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .expect("post")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The code of the next 30 s step: accepted (one step of skew) and newer than any code
/// of the current step, which warden may already have seen.
fn next_code(t: &Totp) -> String {
    t.generate(now() + 30).to_string()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn challenge(resp: Response, next: &str) -> String {
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["next"], next, "{body}");
    body["ticket"].as_str().expect("ticket").to_string()
}

#[tokio::test]
async fn enrolment_code_login_recovery_codes_and_sealed_secret() {
    let w = start().await;
    add_user(&w, "ann").await;
    let ip = "198.51.100.7";
    let first = session_of(login_from(&w, ip, "ann", "a long password").await).await;

    let (st, e) = call(
        &w,
        &first,
        reqwest::Method::POST,
        "/api/auth/2fa/enrol",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let uri = e["uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/") && e["qr_svg"].as_str().expect("svg").contains("<svg")
    );
    let totp = Totp::from_url(uri).expect("otpauth uri");
    assert_eq!(
        totp.secret().to_base32(),
        e["secret"].as_str().expect("secret")
    );

    // Not on before a code confirmed it.
    let (_, s) = call(&w, &first, reqwest::Method::GET, "/api/auth/2fa", None).await;
    assert_eq!(s["enabled"], false);
    let wrong = if next_code(&totp) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, err) = call(
        &w,
        &first,
        reqwest::Method::POST,
        "/api/auth/2fa/confirm",
        Some(json!({"code": wrong})),
    )
    .await;
    assert_eq!(
        (st, err["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("wrong_code")),
        "{err}"
    );
    let code = totp.generate(now()).to_string();
    let (st, r) = call(
        &w,
        &first,
        reqwest::Method::POST,
        "/api/auth/2fa/confirm",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let recovery: Vec<String> = r["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let (_, s) = call(&w, &first, reqwest::Method::GET, "/api/auth/2fa", None).await;
    assert_eq!(
        (s["enabled"].as_bool(), s["recovery_codes_left"].as_i64()),
        (Some(true), Some(10))
    );

    // The secret is nowhere in the database files, in any of its spellings.
    let secret = totp.secret().as_bytes().to_vec();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let b32 = totp.secret().to_base32();
    let mut files = 0;
    for entry in std::fs::read_dir(&w.data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.starts_with("warden.db") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).expect("read db");
        for needle in [
            &secret[..],
            hex.as_bytes(),
            hex.to_uppercase().as_bytes(),
            b32.as_bytes(),
        ] {
            assert!(
                !contains(&bytes, needle),
                "the TOTP secret is readable in {name}"
            );
        }
    }
    assert!(files >= 1, "no database file in {}", w.data_dir.display());

    // The password alone gives no session; a wrong code neither.
    let resp = login_from(&w, ip, "ann", "a long password").await;
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "a session before the code"
    );
    let ticket = challenge(resp, "code").await;
    let (st, _) = call(
        &w,
        &Session {
            cookie: "warden_session=none".into(),
            csrf: String::new(),
        },
        reqwest::Method::GET,
        "/api/auth/me",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": wrong}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let good = next_code(&totp);
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": good}),
    )
    .await;
    let second = session_of(resp).await;
    let (st, me) = call(&w, &second, reqwest::Method::GET, "/api/auth/me", None).await;
    assert_eq!((st, me["user"].as_str()), (StatusCode::OK, Some("ann")));

    // The same code does not work twice; a recovery code works once.
    let ticket = challenge(login_from(&w, ip, "ann", "a long password").await, "code").await;
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": good}),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a code was accepted twice"
    );
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": recovery[3].to_uppercase()}),
    )
    .await;
    let third = session_of(resp).await;
    let ticket = challenge(login_from(&w, ip, "ann", "a long password").await, "code").await;
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": recovery[3]}),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a recovery code worked twice"
    );

    // Sessions: listed with "this session"; revoking one ends it at once.
    let (st, list) = call(&w, &third, reqwest::Method::GET, "/api/auth/sessions", None).await;
    assert_eq!(st, StatusCode::OK);
    let list = list.as_array().expect("list").clone();
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .all(|s| s["user"] == "ann" && s["address"] == ip)
    );
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let (st, me) = call(&w, &first, reqwest::Method::GET, "/api/auth/me", None).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let (_, first_list) = call(&w, &first, reqwest::Method::GET, "/api/auth/sessions", None).await;
    let first_id = first_list
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_str())
        .expect("current id")
        .to_string();
    let (st, _) = call(
        &w,
        &third,
        reqwest::Method::DELETE,
        &format!("/api/auth/sessions/{first_id}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, err) = call(&w, &first, reqwest::Method::GET, "/api/auth/me", None).await;
    assert_eq!(
        (st, err["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_expired"))
    );
    let (st, _) = call(&w, &third, reqwest::Method::GET, "/api/auth/me", None).await;
    assert_eq!(st, StatusCode::OK, "the other sessions live on");

    // Turning it off needs a code; then the password alone signs in again.
    let (st, _) = call(
        &w,
        &third,
        reqwest::Method::POST,
        "/api/auth/2fa/disable",
        Some(json!({"code": wrong})),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(
        &w,
        &third,
        reqwest::Method::POST,
        "/api/auth/2fa/disable",
        Some(json!({"code": recovery[0]})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        login_from(&w, ip, "ann", "a long password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_require_switch_leads_a_user_to_enrol_after_the_password() {
    let w = start().await;
    add_user(&w, "bob").await;
    let ip = "198.51.100.8";
    let bob = session_of(login_from(&w, ip, "bob", "a long password").await).await;
    let (st, _) = call(
        &w,
        &bob,
        reqwest::Method::PUT,
        "/api/auth/policy",
        Some(json!({"require_2fa": true})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a viewer changed the policy");
    let (st, p) = w
        .put("/api/auth/policy", json!({"require_2fa": true}))
        .await;
    assert_eq!(
        (st, p["require_2fa"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    let ticket = challenge(login_from(&w, ip, "bob", "a long password").await, "enrol").await;
    let resp = post_anon(&w, ip, "/api/auth/login/enrol", json!({"ticket": ticket})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let e: Value = resp.json().await.expect("json");
    let totp = Totp::from_url(e["uri"].as_str().expect("uri")).expect("uri");
    let resp = post_anon(
        &w,
        ip,
        "/api/auth/login/code",
        json!({"ticket": ticket, "code": next_code(&totp)}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["user"], "bob");
    assert_eq!(
        body["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "{body}"
    );
    // From now on the password alone does not sign bob in; API tokens are unaffected.
    challenge(login_from(&w, ip, "bob", "a long password").await, "code").await;
    let (st, _) = w.get("/api/auth/me").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn a_locked_account_is_locked_from_one_address_only() {
    let w = start().await;
    add_user(&w, "cat").await;
    let attacker = "203.0.113.66";
    for _ in 0..4 {
        let resp = login_from(&w, attacker, "cat", "wrong password!").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth failure started a delay: even the right password waits.
    let resp = login_from(&w, attacker, "cat", "a long password").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("this account"),
        "{body}"
    );
    // The real user elsewhere signs in.
    let resp = login_from(&w, "198.51.100.9", "cat", "a long password").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// The dashboard's sign-in asks for the code after the password when two-factor login
/// is on, refuses a wrong one, and signs in with the right one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_asks_for_the_code_after_the_password() {
    use std::time::Duration;
    let w = start().await;
    add_user(&w, "dee").await;
    let s = session_of(login_from(&w, "198.51.100.10", "dee", "a long password").await).await;
    let (_, e) = call(&w, &s, reqwest::Method::POST, "/api/auth/2fa/enrol", None).await;
    let totp = Totp::from_url(e["uri"].as_str().expect("uri")).expect("uri");
    let code = totp.generate(now()).to_string();
    let (st, _) = call(
        &w,
        &s,
        reqwest::Method::POST,
        "/api/auth/2fa/confirm",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    let profile = tempfile::tempdir().expect("profile dir");
    let (mut browser, ui, _events) = crate::web::open_browser(profile.path()).await;
    ui.page.goto(w.url.as_str()).await.expect("open warden");
    ui.wait(
        "!!document.querySelector('#login-user')",
        Duration::from_secs(15),
        "the sign-in form",
    )
    .await;
    ui.set_value("#login-user", "dee").await;
    ui.set_value("#login-password", "a long password").await;
    ui.click("form button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('form[data-second-step] #login-code')",
        Duration::from_secs(10),
        "the code step",
    )
    .await;
    let wrong = if next_code(&totp) == "000000" {
        "111111"
    } else {
        "000000"
    };
    ui.set_value("#login-code", wrong).await;
    ui.click("form[data-second-step] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('#login-error')",
        Duration::from_secs(10),
        "the wrong-code message",
    )
    .await;
    ui.set_value("#login-code", &next_code(&totp)).await;
    ui.click("form[data-second-step] button[type=submit]").await;
    ui.wait(
        "document.querySelector('.who') && document.querySelector('.who').textContent === 'dee'",
        Duration::from_secs(15),
        "signed in with the code",
    )
    .await;
    // The Security part of the settings shows two-factor sign-in on and this session.
    ui.go("#/settings", "!!document.querySelector('[data-security]')")
        .await;
    ui.wait(
        "!!document.querySelector('[data-2fa-state=on]') \
           && document.querySelectorAll('[data-sessions] li').length >= 2",
        Duration::from_secs(15),
        "the Security part with two-factor on and the sessions",
    )
    .await;
    browser.close().await.expect("close Chromium");
    let _ = browser.wait().await;
}
