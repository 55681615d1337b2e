//! Server List Ping against a spec-based test responder.

use std::time::Duration;

use game_proto::ProtoError;
use game_proto::slp::ping;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{fails_within, garbage, tcp_garbage_server};

const T: Duration = Duration::from_secs(2);

fn varint(mut value: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

async fn read_varint(stream: &mut TcpStream) -> Option<u32> {
    let mut value = 0u32;
    for shift in 0..5 {
        let byte = stream.read_u8().await.ok()?;
        value |= u32::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let len = read_varint(stream).await? as usize;
    assert!(len < 1024, "client frame of {len} bytes");
    let mut frame = vec![0; len];
    stream.read_exact(&mut frame).await.ok()?;
    Some(frame)
}

fn frame(packet_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(payload.len() as u32 + 1, &mut out);
    out.push(packet_id);
    out.extend(payload);
    out
}

fn status_frame(json: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    varint(json.len() as u32, &mut payload);
    payload.extend(json.as_bytes());
    frame(0, &payload)
}

/// Serves one status exchange per connection; `answer_ping` decides whether it pongs.
async fn start(json: &'static str, answer_ping: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Handshake: id 0, protocol VarInt, host string, port u16, next state 1.
                let handshake = read_frame(&mut stream).await.unwrap();
                assert_eq!(handshake[0], 0x00);
                assert_eq!(
                    &handshake[handshake.len() - 3..handshake.len() - 1],
                    &port.to_be_bytes()
                );
                assert_eq!(
                    handshake[handshake.len() - 1],
                    1,
                    "next state must be status"
                );
                assert_eq!(read_frame(&mut stream).await.unwrap(), [0x00]);
                stream.write_all(&status_frame(json)).await.unwrap();
                if !answer_ping {
                    return;
                }
                let Some(ping) = read_frame(&mut stream).await else {
                    return;
                };
                assert_eq!((ping[0], ping.len()), (0x01, 9));
                stream.write_all(&frame(0x01, &ping[1..])).await.unwrap();
            });
        }
    });
    addr
}

const STATUS: &str = r#"{
    "version": {"name": "1.21.4", "protocol": 769},
    "players": {"max": 20, "online": 3, "sample": [
        {"name": "§calice", "id": "4566e69f-c907-48ee-8d71-d7ba5aa00d20"},
        {"name": "bob", "id": "4566e69f-c907-48ee-8d71-d7ba5aa00d21"}]},
    "description": {"text": "", "extra": [
        {"text": "Warden ", "color": "gold"}, {"text": "§lTest", "bold": true}, " Server"]},
    "enforcesSecureChat": true
}"#;

#[tokio::test]
async fn reads_counts_sample_and_motd() {
    let addr = start(STATUS, true).await;
    let status = ping(&addr, T).await.unwrap();
    assert_eq!(status.version_name, "1.21.4");
    assert_eq!(status.protocol, 769);
    assert_eq!((status.players_online, status.players_max), (3, 20));
    assert_eq!(status.sample, ["alice", "bob"]);
    assert_eq!(status.motd, "Warden Test Server");
    assert!(status.latency_ms < 1000);
}

#[tokio::test]
async fn works_when_the_server_does_not_pong() {
    let addr = start(
        r#"{"description":"§aplain §rtext","players":{"max":5,"online":0}}"#,
        false,
    )
    .await;
    let status = ping(&addr, T).await.unwrap();
    assert_eq!(status.motd, "plain text");
    assert_eq!(status.players_max, 5);
    assert!(status.sample.is_empty());
}

#[tokio::test]
async fn garbage_oversized_and_silent_servers_are_errors() {
    let mut cases = Vec::new();
    // A length prefix of 100 MB must be refused before allocating.
    let mut huge = Vec::new();
    varint(100_000_000, &mut huge);
    cases.push(huge);
    // A VarInt that never ends.
    cases.push(vec![0xff; 16]);
    // A status frame that claims more JSON than it carries.
    let mut short = Vec::new();
    varint(10, &mut short);
    short.extend([0x00, 0x7f, b'{']);
    cases.push(short);
    // Valid framing around something that is not JSON, and JSON that is not an object.
    cases.push(status_frame("not json"));
    cases.push(status_frame("[1,2,3]"));
    // The legacy (pre-1.7) kick reply.
    cases.push(vec![0xff, 0x00, 0x03, 0x00, b'x', 0x00, b'y']);
    cases.extend((1..=8).map(|seed| garbage(seed * 7, 200)));
    for bytes in cases {
        for then_hang in [false, true] {
            let addr = tcp_garbage_server(bytes.clone(), then_hang).await;
            let err = fails_within(
                Duration::from_millis(1500),
                ping(&addr, Duration::from_millis(500)),
            )
            .await;
            assert!(!matches!(err, ProtoError::Connect { .. }), "{err:?}");
        }
    }
    let silent = tcp_garbage_server(Vec::new(), true).await;
    let err = fails_within(
        Duration::from_secs(1),
        ping(&silent, Duration::from_millis(300)),
    )
    .await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn address_without_port_is_rejected() {
    let err = ping("localhost", T).await.unwrap_err();
    assert!(matches!(err, ProtoError::InvalidAddress { .. }), "{err:?}");
}
