//! TCP and HTTP health checks against loopback listeners.

use std::time::Duration;

use game_proto::{ProtoError, http_check, tcp_check};
use tokio::net::TcpListener;

use crate::{fails_within, tcp_garbage_server};

const T: Duration = Duration::from_secs(2);

fn canned(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn tcp_check_open_and_closed_ports() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    assert!(tcp_check(&addr, T).await.unwrap() < T);
    drop(listener);
    let err = fails_within(T, tcp_check(&addr, T)).await;
    assert!(matches!(err, ProtoError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr));
}

#[tokio::test]
async fn http_check_status_and_body() {
    let addr = tcp_garbage_server(canned("200 OK", "{\"status\":\"healthy\"}"), false).await;
    let url = format!("http://{addr}/health");
    let outcome = http_check(&url, None, Some("healthy"), T).await.unwrap();
    assert_eq!(outcome.status, 200);
    assert!(http_check(&url, Some(200), None, T).await.is_ok());

    let err = http_check(&url, Some(204), None, T).await.unwrap_err();
    assert!(matches!(err, ProtoError::CheckFailed { .. }), "{err:?}");
    let err = http_check(&url, None, Some("ready"), T).await.unwrap_err();
    assert!(matches!(err, ProtoError::CheckFailed { .. }), "{err:?}");

    let down = tcp_garbage_server(canned("503 Service Unavailable", "starting"), false).await;
    let err = http_check(&format!("http://{down}/"), None, None, T)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert!(
        http_check(&format!("http://{down}/"), Some(503), Some("start"), T)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn http_check_garbage_and_silence_are_bounded() {
    let garbage = tcp_garbage_server(crate::garbage(3, 500), false).await;
    let err = fails_within(T, http_check(&format!("http://{garbage}/"), None, None, T)).await;
    assert!(matches!(err, ProtoError::Http { .. }), "{err:?}");
    let silent = tcp_garbage_server(Vec::new(), true).await;
    let short = Duration::from_millis(300);
    let err = fails_within(
        Duration::from_secs(1),
        http_check(&format!("http://{silent}/"), None, None, short),
    )
    .await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
    let err = http_check("not a url", None, None, T).await.unwrap_err();
    assert!(matches!(err, ProtoError::Http { .. }), "{err:?}");
}
