//! Generic health checks: can we open a TCP connection ([`tcp_check`]), and does an HTTP
//! endpoint answer as expected ([`http_check`])?

use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::error::{ProtoError, Result};
use crate::net;

/// How much of a body [`http_check`] searches for `body_contains`.
pub const MAX_CHECK_BODY: usize = 1024 * 1024;

/// A passed HTTP check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpCheckOutcome {
    pub status: u16,
    pub latency_ms: u64,
}

/// Connects to `addr` ("host:port") and returns how long that took.
pub async fn tcp_check(addr: &str, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    let stream = net::connect_tcp(addr, started + timeout, timeout).await?;
    let elapsed = started.elapsed();
    drop(stream);
    Ok(elapsed)
}

/// One client for all checks, so repeated checks reuse its connection pool.
fn check_client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client = crate::http_client_builder()
        .no_proxy()
        // A redirect is reported as its own status rather than followed, so a check of a
        // login-protected page does not silently pass on the login form.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProtoError::Http {
            url: String::new(),
            detail: net::error_chain(&e),
        })?;
    Ok(CLIENT.get_or_init(|| client))
}

/// GETs `url` and checks the answer: the status must equal `expect_status` (or be 2xx when
/// `None`), and the first [`MAX_CHECK_BODY`] bytes of the body must contain `body_contains`
/// when given. A reachable server that fails the expectation gives
/// [`ProtoError::CheckFailed`].
pub async fn http_check(
    url: &str,
    expect_status: Option<u16>,
    body_contains: Option<&str>,
    timeout: Duration,
) -> Result<HttpCheckOutcome> {
    let client = check_client()?;
    let started = Instant::now();
    let timed_out = || ProtoError::Timeout {
        addr: url.to_owned(),
        what: "waiting for the HTTP health check",
        after: timeout,
    };
    let exchange = async {
        let mut resp = client.get(url).timeout(timeout).send().await?;
        let status = resp.status().as_u16();
        let latency = started.elapsed();
        let body = match body_contains {
            Some(_) => net::read_body_limited(&mut resp, MAX_CHECK_BODY).await?.0,
            None => Vec::new(),
        };
        Ok::<_, reqwest::Error>((status, latency, body))
    };
    let (status, latency, body) = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
        Ok(Err(e)) => {
            return Err(ProtoError::Http {
                url: url.to_owned(),
                detail: net::error_chain(&e.without_url()),
            });
        }
        Err(_) => return Err(timed_out()),
    };
    let failed = |detail: String| ProtoError::CheckFailed {
        target: url.to_owned(),
        detail,
    };
    let status_ok = match expect_status {
        Some(expected) => status == expected,
        None => (200..300).contains(&status),
    };
    if !status_ok {
        let expected = expect_status.map_or_else(|| "2xx".to_owned(), |s| s.to_string());
        return Err(failed(format!("status {status}, expected {expected}")));
    }
    if let Some(needle) = body_contains
        && !contains(&body, needle.as_bytes())
    {
        return Err(failed(format!(
            "the body does not contain {needle:?} (searched the first {} bytes)",
            body.len()
        )));
    }
    Ok(HttpCheckOutcome {
        status,
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
