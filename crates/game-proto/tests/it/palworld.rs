//! Palworld REST client against a tiny raw-TCP HTTP responder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use game_proto::ProtoError;
use game_proto::palworld::PalworldClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{fails_within, garbage, tcp_garbage_server};

const T: Duration = Duration::from_secs(2);
const PASSWORD: &str = "secret";
/// base64("admin:secret"), written out so the test does not share an encoder with the client.
const GOOD_AUTH: &str = "Basic YWRtaW46c2VjcmV0";

type Log = Arc<Mutex<Vec<(String, String, String)>>>;

/// Answers one request per connection; records (method, path, body).
async fn start(log: Log) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    data.extend(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8(data[..head_end].to_vec()).unwrap();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap().split(' ');
                let (method, path) = (
                    first.next().unwrap().to_owned(),
                    first.next().unwrap().to_owned(),
                );
                let mut auth = "";
                let mut length = 0;
                for line in lines {
                    if let Some((name, value)) = line.split_once(": ") {
                        match name.to_ascii_lowercase().as_str() {
                            "authorization" => auth = value,
                            "content-length" => length = value.parse().unwrap(),
                            _ => {}
                        }
                    }
                }
                while data.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap();
                    data.extend(&buf[..n]);
                }
                let body = String::from_utf8(data[head_end..head_end + length].to_vec()).unwrap();
                let (status, reply) = if auth != GOOD_AUTH {
                    ("401 Unauthorized", "Unauthorized".to_owned())
                } else {
                    match (method.as_str(), path.as_str()) {
                        ("GET", "/v1/api/info") => ("200 OK", r#"{"version":"v0.5.1.0","servername":"Warden Pals","description":"test","worldguid":"ABC"}"#.to_owned()),
                        ("GET", "/v1/api/players") => ("200 OK", r#"{"players":[{"name":"alice","accountName":"alice_s","playerId":"1A","userId":"steam_1","ip":"10.0.0.2","ping":12.5,"location_x":-100.25,"location_y":50,"level":12,"building_count":3}]}"#.to_owned()),
                        ("GET", "/v1/api/metrics") => ("200 OK", r#"{"serverfps":58,"currentplayernum":1,"serverframetime":17.2,"maxplayernum":32,"uptime":3600,"days":4}"#.to_owned()),
                        ("GET", "/v1/api/huge") => ("200 OK", "x".repeat(2 * 1024 * 1024)),
                        ("POST", "/v1/api/announce" | "/v1/api/save" | "/v1/api/shutdown") => ("200 OK", String::new()),
                        _ => ("404 Not Found", "no such endpoint".to_owned()),
                    }
                };
                log.lock().unwrap().push((method, path, body));
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn reads_info_players_and_metrics() {
    let base = start(Log::default()).await;
    let client = PalworldClient::new(&base, PASSWORD, T).unwrap();
    let info = client.info().await.unwrap();
    assert_eq!(
        (info.server_name.as_str(), info.version.as_str()),
        ("Warden Pals", "v0.5.1.0")
    );
    let players = client.players().await.unwrap();
    assert_eq!(players.len(), 1);
    assert_eq!(players[0].account_name, "alice_s");
    assert_eq!(players[0].level, 12);
    assert_eq!(players[0].location_x, -100.25);
    let metrics = client.metrics().await.unwrap();
    assert_eq!((metrics.current_players, metrics.max_players), (1, 32));
    assert_eq!(metrics.uptime_secs, 3600);
}

#[tokio::test]
async fn posts_announce_save_and_shutdown() {
    let log = Log::default();
    let base = start(log.clone()).await;
    let client = PalworldClient::new(&format!("{base}/"), PASSWORD, T).unwrap();
    client.announce("restart in \"5\" min").await.unwrap();
    client.save().await.unwrap();
    client.shutdown(60, "bye").await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].1, "/v1/api/announce");
    let announce: serde_json::Value = serde_json::from_str(&log[0].2).unwrap();
    assert_eq!(announce["message"], "restart in \"5\" min");
    assert_eq!(
        (log[1].0.as_str(), log[1].1.as_str()),
        ("POST", "/v1/api/save")
    );
    let shutdown: serde_json::Value = serde_json::from_str(&log[2].2).unwrap();
    assert_eq!(
        (shutdown["waittime"].as_u64(), shutdown["message"].as_str()),
        (Some(60), Some("bye"))
    );
}

#[tokio::test]
async fn wrong_password_is_auth_failed() {
    let base = start(Log::default()).await;
    let client = PalworldClient::new(&base, "nope-wrong", T).unwrap();
    let err = fails_within(T, client.info()).await;
    assert!(matches!(err, ProtoError::AuthFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("AdminPassword"), "{err}");
    assert!(!err.to_string().contains("nope-wrong"));
}

fn canned(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn errors_for_bad_status_bad_json_huge_body_garbage_and_silence() {
    type Expectation = fn(&ProtoError) -> bool;
    let cases: Vec<(Vec<u8>, Expectation)> = vec![
        (canned("500 Internal Server Error", "boom"), |e| {
            matches!(e, ProtoError::Http { .. }) && e.to_string().contains("500")
        }),
        (canned("200 OK", "<html>not json</html>"), |e| {
            matches!(e, ProtoError::Protocol { .. })
        }),
        (canned("200 OK", &"x".repeat(2 * 1024 * 1024)), |e| {
            matches!(e, ProtoError::TooLarge { .. })
        }),
        (garbage(1, 300), |e| matches!(e, ProtoError::Http { .. })),
        (garbage(2, 3000), |e| matches!(e, ProtoError::Http { .. })),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ver".to_vec(),
            |e| matches!(e, ProtoError::Http { .. }),
        ),
    ];
    for (reply, expected) in cases {
        let addr = tcp_garbage_server(reply, false).await;
        let client = PalworldClient::new(&format!("http://{addr}"), PASSWORD, T).unwrap();
        let err = fails_within(T, client.info()).await;
        assert!(expected(&err), "{err:?}");
    }

    let silent = tcp_garbage_server(Vec::new(), true).await;
    let client = PalworldClient::new(
        &format!("http://{silent}"),
        PASSWORD,
        Duration::from_millis(300),
    )
    .unwrap();
    let err = fails_within(Duration::from_secs(1), client.metrics()).await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
}
