//! The live WebSocket hub end to end: authentication (token, cookie with an Origin
//! check), topic subscriptions delivering state changes and console lines only to their
//! subscribers, the ping/pong heartbeat, refused messages, and closing on shutdown.

use std::time::Duration;

use crate::common::*;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{ConnectStream, connect_async};
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use serde_json::{Value, json};

pub(crate) type Socket = WebSocketStream<ConnectStream>;

fn ws_url(w: &Warden) -> String {
    format!("{}/api/ws", w.url.replacen("http://", "ws://", 1))
}

pub(crate) async fn connect(w: &Warden, headers: &[(&str, &str)]) -> Result<Socket, WsError> {
    connect_with(&ws_url(w), headers).await
}

async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Socket, WsError> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        let name: async_tungstenite::tungstenite::http::HeaderName =
            k.parse().expect("header name");
        req.headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    connect_async(req).await.map(|(s, _)| s)
}

fn refused_with(r: Result<Socket, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

pub(crate) async fn send(s: &mut Socket, v: Value) {
    s.send(Message::text(v.to_string())).await.expect("send");
}

/// Next JSON message satisfying `pred`, skipping others; panics after 30 s (the whole
/// suite runs in parallel on two cores, where a program start can take seconds).
pub(crate) async fn next_where(s: &mut Socket, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, s.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("socket ended while waiting for {what}"))
            .expect("websocket message");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON message");
            if pred(&v) {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn the_hub_needs_credentials() {
    let w = Warden::start().await;
    assert_eq!(refused_with(connect(&w, &[]).await), 401);
    assert_eq!(
        refused_with(connect_with(&format!("{}?token=wdn_nope_nope", ws_url(&w)), &[]).await),
        401
    );
    // A plain GET (no upgrade) gets the API's error shape.
    let (st, v) = w.get("/api/ws").await;
    assert_eq!(st.as_u16(), 400);
    assert_eq!(v["error"]["code"], "websocket_expected");
}

#[tokio::test]
async fn a_session_cookie_works_only_from_the_same_origin() {
    let w = Warden::start().await;
    let (st, _, err) = cli(
        &w.data_dir,
        &["user", "add", "ann", "--role", "viewer", "--password-stdin"],
        Some("ann-password-1"),
    );
    assert!(st.success(), "{err}");
    let resp = w
        .http
        .post(format!("{}/api/auth/login", w.url))
        .json(&json!({"username": "ann", "password": "ann-password-1"}))
        .send()
        .await
        .expect("login");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let host = w.url.trim_start_matches("http://").to_string();

    let foreign = connect(
        &w,
        &[("cookie", &cookie), ("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(refused_with(foreign), 403, "cross-site WebSocket hijacking");
    let other_port = connect(&w, &[("cookie", &cookie), ("origin", "http://127.0.0.1:1")]).await;
    assert_eq!(refused_with(other_port), 403);

    let own_origin = format!("http://{host}");
    let mut s = connect(&w, &[("cookie", &cookie), ("origin", &own_origin)])
        .await
        .expect("same-origin handshake");
    let hello = next_where(&mut s, "hello", |v| v["type"] == "hello").await;
    assert_eq!(hello["user"], "ann");
    assert_eq!(hello["role"], "viewer");
}

#[tokio::test]
async fn subscribers_get_their_topics_and_nothing_else() {
    let w = Warden::start().await;
    let mut watched = sh("watched", "echo watched-line; exec sleep 1000");
    watched["start_seconds"] = json!(0);
    w.create(watched).await;
    let mut other = sh("other", "echo other-line; exec sleep 1000");
    other["start_seconds"] = json!(0);
    w.create(other).await;

    let mut s = connect(&w, &[("authorization", &format!("Bearer {}", w.token))])
        .await
        .expect("connect");
    next_where(&mut s, "hello", |v| v["type"] == "hello").await;
    send(
        &mut s,
        json!({"op": "subscribe", "topics": ["programs", "console:watched"]}),
    )
    .await;
    let sub = next_where(&mut s, "subscribed", |v| v["type"] == "subscribed").await;
    assert_eq!(sub["topics"], json!(["programs", "console:watched"]));

    w.post("/api/programs/other/start", json!(null)).await;
    w.wait_state("other", "running", Duration::from_secs(10))
        .await;
    w.post("/api/programs/watched/start", json!(null)).await;
    // The console line and the state change travel on separate paths (the output reader
    // and the actor), so either may arrive first: collect both, in whatever order.
    let (mut line, mut state) = (None, None);
    while line.is_none() || state.is_none() {
        let v = next_where(
            &mut s,
            "the watched program's console line and running state",
            |v| v["type"] == "console" || v["type"] == "state",
        )
        .await;
        if v["type"] == "console" {
            assert_eq!(
                v["program"], "watched",
                "console of an unsubscribed program leaked: {v}"
            );
            line = Some(v);
        } else if v["program"] == "watched" && v["to"] == "running" {
            state = Some(v);
        }
    }
    let (line, state) = (line.unwrap_or_default(), state.unwrap_or_default());
    assert_eq!(line["text"], "watched-line");
    assert_eq!(state["from"], "starting");

    // The client's heartbeat.
    send(&mut s, json!({"op": "ping"})).await;
    next_where(&mut s, "pong", |v| v["type"] == "pong").await;

    // Refused messages get an error and leave the subscription as it was.
    send(
        &mut s,
        json!({"op": "subscribe", "topics": ["console:Not Valid"]}),
    )
    .await;
    let e = next_where(&mut s, "unknown topic error", |v| v["type"] == "error").await;
    assert_eq!(e["code"], "unknown_topic");
    s.send(Message::text("not json")).await.expect("send");
    let e = next_where(&mut s, "bad message error", |v| v["type"] == "error").await;
    assert_eq!(e["code"], "bad_message");

    // Unsubscribing stops the stream: the stop's state change is not delivered, and the
    // next message is the answer to a ping.
    send(
        &mut s,
        json!({"op": "unsubscribe", "topics": ["programs", "console:watched"]}),
    )
    .await;
    next_where(&mut s, "subscribed", |v| v["type"] == "subscribed").await;
    w.post("/api/programs/watched/stop", json!(null)).await;
    w.wait_state("watched", "stopped", Duration::from_secs(10))
        .await;
    send(&mut s, json!({"op": "ping"})).await;
    let next = next_where(&mut s, "any message", |_| true).await;
    assert_eq!(next["type"], "pong", "got {next} after unsubscribing");
}

#[cfg(unix)]
#[tokio::test]
async fn shutdown_closes_live_sockets() {
    let mut w = Warden::start().await;
    let mut s = connect_with(&format!("{}?token={}", ws_url(&w), w.token), &[])
        .await
        .expect("connect");
    next_where(&mut s, "hello", |v| v["type"] == "hello").await;
    let stopper = std::thread::spawn(move || {
        let status = w.terminate();
        assert!(status.success(), "warden exited with {status}");
    });
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = s.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket closes promptly on shutdown");
    assert_eq!(closed, Some(1001), "close code 'going away'");
    stopper.join().expect("warden stopped cleanly");
}

#[tokio::test]
async fn program_definition_changes_reach_program_subscribers() {
    let w = Warden::start().await;
    let mut s = connect(&w, &[("authorization", &format!("Bearer {}", w.token))])
        .await
        .expect("connect");
    next_where(&mut s, "hello", |v| v["type"] == "hello").await;
    send(&mut s, json!({"op": "subscribe", "topics": ["programs"]})).await;
    next_where(&mut s, "subscribed", |v| v["type"] == "subscribed").await;

    w.create(sh("fresh", "exec sleep 1000")).await;
    let v = next_where(&mut s, "created", |v| v["type"] == "program").await;
    assert_eq!(v["program"], "fresh", "{v}");
    assert_eq!(v["change"], "created", "{v}");
    let mut spec = sh("fresh", "exec sleep 2000");
    spec["display_name"] = json!("Fresh");
    let (st, body) = w.put("/api/programs/fresh", spec).await;
    assert!(st.is_success(), "{body}");
    let v = next_where(&mut s, "updated", |v| v["type"] == "program").await;
    assert_eq!(v["change"], "updated", "{v}");
    let (st, body) = w.delete("/api/programs/fresh").await;
    assert!(st.is_success(), "{body}");
    let v = next_where(&mut s, "deleted", |v| v["type"] == "program").await;
    assert_eq!(v["change"], "deleted", "{v}");
}
