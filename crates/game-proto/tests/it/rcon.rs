//! RCON client and session against a spec-based test server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use game_proto::ProtoError;
use game_proto::rcon::{MAX_RESPONSE_SIZE, RconClient, RconSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{fails_within, garbage, tcp_garbage_server};

const PASSWORD: &str = "s3cret-pass";
const T: Duration = Duration::from_secs(2);
const LONG: Duration = Duration::from_secs(10);

/// How the test server answers our empty end-marker packet.
#[derive(Clone, Copy, PartialEq)]
enum Marker {
    /// Source: mirror the empty packet, then send a packet whose body is 00 01 00 00.
    SourceMirror,
    /// Minecraft: answer with "Unknown request 0".
    UnknownRequest,
    /// Drop it silently.
    Ignore,
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Normal,
    /// Accept commands but never answer them.
    Silent,
    /// Send one full fragment and half of the next, then close.
    CloseMidReply,
    /// Never answer the login.
    SilentLogin,
    /// Like vanilla Minecraft: a TCP read that holds anything but exactly one packet is
    /// dropped whole, and the marker is answered with "Unknown request 0".
    MinecraftReads,
}

struct Server {
    addr: String,
    connections: Arc<AtomicUsize>,
}

fn packet(id: i32, kind: i32, body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 10) as i32).to_le_bytes().to_vec();
    out.extend(id.to_le_bytes());
    out.extend(kind.to_le_bytes());
    out.extend(body);
    out.extend([0, 0]);
    out
}

async fn read_packet(stream: &mut TcpStream) -> Option<(i32, i32, Vec<u8>)> {
    let size = stream.read_i32_le().await.ok()?;
    assert!(
        (10..=4096).contains(&size),
        "client sent packet size {size}"
    );
    let mut rest = vec![0; size as usize];
    stream.read_exact(&mut rest).await.ok()?;
    let id = i32::from_le_bytes(rest[0..4].try_into().unwrap());
    let kind = i32::from_le_bytes(rest[4..8].try_into().unwrap());
    assert_eq!(
        &rest[rest.len() - 2..],
        &[0, 0],
        "request not NUL-terminated"
    );
    Some((id, kind, rest[8..rest.len() - 2].to_vec()))
}

/// The text the server prints for "echo N": N bytes of a recognisable pattern.
fn echo_text(n: usize) -> String {
    (0..n)
        .map(|i| {
            if i % 64 == 63 {
                '\n'
            } else {
                (b'a' + (i % 26) as u8) as char
            }
        })
        .collect()
}

async fn start(marker: Marker, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            if behaviour == Behaviour::MinecraftReads {
                tokio::spawn(serve_minecraft_reads(stream));
            } else {
                tokio::spawn(serve(stream, marker, behaviour));
            }
        }
    });
    Server { addr, connections }
}

async fn serve(mut stream: TcpStream, marker: Marker, behaviour: Behaviour) {
    let mut authed = false;
    let mut closing = false;
    while let Some((id, kind, body)) = read_packet(&mut stream).await {
        let mut out = Vec::new();
        match kind {
            3 => {
                if behaviour == Behaviour::SilentLogin {
                    continue;
                }
                authed = body == PASSWORD.as_bytes();
                // Source sends an empty RESPONSE_VALUE before the AUTH_RESPONSE.
                out.extend(packet(id, 0, b""));
                out.extend(packet(if authed { id } else { -1 }, 2, b""));
            }
            2 if authed => {
                let cmd = String::from_utf8(body).unwrap();
                let reply = match cmd.strip_prefix("echo ") {
                    Some(n) => echo_text(n.parse().unwrap()),
                    None if cmd == "quit" => return,
                    // "bye" answers, then hangs up after the end marker.
                    None if cmd == "bye" => {
                        closing = true;
                        "bye".to_owned()
                    }
                    None => format!("Unknown command: {cmd}"),
                };
                match behaviour {
                    Behaviour::Silent => continue,
                    Behaviour::CloseMidReply => {
                        let first = packet(id, 0, &reply.as_bytes()[..4096]);
                        let second = packet(id, 0, &reply.as_bytes()[4096..]);
                        out.extend(first);
                        out.extend(&second[..second.len() / 2]);
                        let _ = stream.write_all(&out).await;
                        return;
                    }
                    _ => {}
                }
                // Split long output into 4096-byte fragments, like Minecraft does.
                let bytes = reply.as_bytes();
                if bytes.is_empty() {
                    out.extend(packet(id, 0, b""));
                }
                for chunk in bytes.chunks(4096) {
                    out.extend(packet(id, 0, chunk));
                }
            }
            2 => out.extend(packet(-1, 2, b"")),
            0 => match marker {
                Marker::SourceMirror => {
                    out.extend(packet(id, 0, b""));
                    out.extend(packet(id, 0, &[0, 1, 0, 0]));
                }
                Marker::UnknownRequest => out.extend(packet(id, 0, b"Unknown request 0")),
                Marker::Ignore => {}
            },
            _ => {}
        }
        if stream.write_all(&out).await.is_err() || (closing && kind == 0) {
            return;
        }
    }
}

async fn serve_minecraft_reads(mut stream: TcpStream) {
    let mut buf = [0u8; 1460];
    let mut authed = false;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let size = i32::from_le_bytes(buf[..4].try_into().unwrap());
        if n < 14 || size as usize != n - 4 {
            continue;
        }
        let id = i32::from_le_bytes(buf[4..8].try_into().unwrap());
        let kind = i32::from_le_bytes(buf[8..12].try_into().unwrap());
        let body = &buf[12..n - 2];
        let mut out = Vec::new();
        match kind {
            3 => {
                authed = body == PASSWORD.as_bytes();
                out.extend(packet(if authed { id } else { -1 }, 2, b""));
            }
            2 if authed => {
                let n: usize = std::str::from_utf8(&body[5..]).unwrap().parse().unwrap();
                // Like the real server, empty output is still one (empty) packet.
                out.extend(packet(id, 0, b"").into_iter().filter(|_| n == 0));
                for chunk in echo_text(n).as_bytes().chunks(4096) {
                    out.extend(packet(id, 0, chunk));
                }
            }
            _ => out.extend(packet(
                id,
                0,
                format!("Unknown request {kind:x}").as_bytes(),
            )),
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn works_with_a_server_that_drops_coalesced_packets() {
    let server = start(Marker::UnknownRequest, Behaviour::MinecraftReads).await;
    let mut client = RconClient::connect(&server.addr, PASSWORD, LONG)
        .await
        .unwrap();
    // A long idle gap makes any reliance on it show up as a slow command.
    client.set_idle_gap(LONG);
    for n in [10_000, 8192, 4096, 7, 0] {
        let started = Instant::now();
        assert_eq!(
            client.exec(&format!("echo {n}")).await.unwrap(),
            echo_text(n)
        );
        // The marker is answered, so no command waits for the idle gap.
        assert!(started.elapsed() < LONG / 2, "echo {n}");
    }
}

#[tokio::test]
async fn auth_ok_and_short_command() {
    let server = start(Marker::SourceMirror, Behaviour::Normal).await;
    let mut client = RconClient::connect(&server.addr, PASSWORD, T)
        .await
        .unwrap();
    assert_eq!(client.exec("echo 5").await.unwrap(), "abcde");
    assert_eq!(client.exec("list").await.unwrap(), "Unknown command: list");
    assert_eq!(client.exec("echo 0").await.unwrap(), "");
}

#[tokio::test]
async fn multi_packet_reply_is_reassembled_for_each_marker_style() {
    for marker in [Marker::SourceMirror, Marker::UnknownRequest, Marker::Ignore] {
        let server = start(marker, Behaviour::Normal).await;
        let mut client = RconClient::connect(&server.addr, PASSWORD, LONG)
            .await
            .unwrap();
        // Where the marker is answered, a long idle gap proves the marker ended the reply;
        // where it is not, the default gap must end it well before the timeout.
        if marker != Marker::Ignore {
            client.set_idle_gap(LONG);
        }
        for n in [10_000, 4095, 1] {
            let started = Instant::now();
            let reply = client.exec(&format!("echo {n}")).await.unwrap();
            assert_eq!(reply, echo_text(n), "marker style changed the reply");
            assert!(started.elapsed() < LONG / 2);
        }
        // The trailing 00 01 00 00 packet of the Source style must not leak into the next
        // command's reply.
        assert_eq!(client.exec("echo 3").await.unwrap(), "abc");
    }
}

#[tokio::test]
async fn wrong_password_fails_fast_with_a_clear_message() {
    let server = start(Marker::SourceMirror, Behaviour::Normal).await;
    let err = fails_within(
        Duration::from_secs(1),
        RconClient::connect(&server.addr, "wrong-pass", T),
    )
    .await;
    assert!(matches!(err, ProtoError::AuthFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&server.addr) && text.contains("rcon.password"),
        "{text}"
    );
    assert!(!text.contains("wrong-pass") && !format!("{err:?}").contains("wrong-pass"));
}

#[tokio::test]
async fn session_does_not_retry_a_wrong_password() {
    let server = start(Marker::SourceMirror, Behaviour::Normal).await;
    let session =
        RconSession::with_auth_cool_down(&server.addr, "wrong-pass", T, Duration::from_secs(1));
    let first = session.exec("echo 1").await.unwrap_err();
    assert!(matches!(first, ProtoError::AuthFailed { .. }), "{first:?}");
    let started = Instant::now();
    for _ in 0..20 {
        let err = session.clone().exec("echo 1").await.unwrap_err();
        assert!(matches!(err, ProtoError::AuthCoolDown { .. }), "{err:?}");
        assert!(err.is_auth_failure());
    }
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "cool-down must not wait"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "no reconnect loop"
    );

    // After the cool-down exactly one new attempt is made.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = session.exec("echo 1").await.unwrap_err();
    assert!(matches!(err, ProtoError::AuthFailed { .. }), "{err:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn session_reuses_one_connection_and_reconnects_once_after_a_drop() {
    let server = start(Marker::SourceMirror, Behaviour::Normal).await;
    let session = RconSession::new(&server.addr, PASSWORD, T);
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        0,
        "connects lazily"
    );
    let tasks: Vec<_> = (1..=5)
        .map(|n| {
            let session = session.clone();
            tokio::spawn(async move { session.exec(&format!("echo {n}")).await })
        })
        .collect();
    for (n, task) in (1..=5).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), echo_text(n));
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    // The server hangs up after "bye"; the next command notices the dead connection and
    // transparently reconnects once.
    assert_eq!(session.exec("bye").await.unwrap(), "bye");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(session.exec("echo 2").await.unwrap(), "ab");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);

    // A server that hangs up on a command fails that command after one reconnect, rather
    // than looping.
    let err = session.exec("quit").await.unwrap_err();
    assert!(err.is_connection_error(), "{err:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
    assert!(!format!("{session:?}").contains(PASSWORD));
}

#[tokio::test]
async fn command_timeout_is_bounded() {
    let server = start(Marker::Ignore, Behaviour::Silent).await;
    let mut client = RconClient::connect(&server.addr, PASSWORD, Duration::from_millis(400))
        .await
        .unwrap();
    let err = fails_within(Duration::from_millis(1000), client.exec("echo 1")).await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
    // The connection is abandoned after an error instead of being reused half-way.
    assert!(client.is_broken());
    assert!(client.exec("echo 1").await.is_err());
}

#[tokio::test]
async fn login_timeout_is_bounded() {
    let server = start(Marker::Ignore, Behaviour::SilentLogin).await;
    let err = fails_within(
        Duration::from_millis(1000),
        RconClient::connect(&server.addr, PASSWORD, Duration::from_millis(400)),
    )
    .await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn server_closing_mid_reply_is_an_error() {
    let server = start(Marker::SourceMirror, Behaviour::CloseMidReply).await;
    let mut client = RconClient::connect(&server.addr, PASSWORD, T)
        .await
        .unwrap();
    let err = fails_within(T, client.exec("echo 10000")).await;
    // Depending on timing the hang-up shows as an orderly close or as a reset.
    assert!(err.is_connection_error(), "{err:?}");
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = fails_within(T, RconClient::connect(&addr, PASSWORD, T)).await;
    assert!(matches!(err, ProtoError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn oversized_and_garbage_replies_are_errors() {
    // A size field of 100 MB must be rejected before allocating.
    let mut huge = 100_000_000i32.to_le_bytes().to_vec();
    huge.extend([0; 8]);
    // An HTTP server on the RCON port.
    let http = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec();
    let mut cases = vec![huge, http];
    cases.extend((1..=8).map(|seed| garbage(seed, 64 + seed as usize * 37)));
    for bytes in cases {
        for then_hang in [false, true] {
            let addr = tcp_garbage_server(bytes.clone(), then_hang).await;
            let err = fails_within(
                Duration::from_millis(1500),
                RconClient::connect(&addr, PASSWORD, Duration::from_millis(500)),
            )
            .await;
            assert!(!err.to_string().contains(PASSWORD));
        }
    }
}

#[tokio::test]
async fn total_reply_size_is_capped() {
    // After login, the server streams endless 60 KB fragments for any command.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (id, _, _) = read_packet(&mut stream).await.unwrap();
        stream.write_all(&packet(id, 2, b"")).await.unwrap();
        let (id, _, _) = read_packet(&mut stream).await.unwrap();
        let fragment = packet(id, 0, &vec![b'x'; 60_000]);
        for _ in 0..(MAX_RESPONSE_SIZE / 60_000 + 10) {
            if stream.write_all(&fragment).await.is_err() {
                return;
            }
        }
        // Stay connected until the client gives up, so no reset destroys unread data.
        while read_packet(&mut stream).await.is_some() {}
    });
    let mut client = RconClient::connect(&addr, PASSWORD, Duration::from_secs(10))
        .await
        .unwrap();
    let err = fails_within(Duration::from_secs(10), client.exec("big")).await;
    assert!(matches!(err, ProtoError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn invalid_commands_are_rejected_locally() {
    let server = start(Marker::SourceMirror, Behaviour::Normal).await;
    let mut client = RconClient::connect(&server.addr, PASSWORD, T)
        .await
        .unwrap();
    let err = client.exec(&"x".repeat(5000)).await.unwrap_err();
    assert!(matches!(err, ProtoError::InvalidInput { .. }), "{err:?}");
    assert!(client.exec("a\0b").await.is_err());
    // Local validation does not break the connection.
    assert_eq!(client.exec("echo 2").await.unwrap(), "ab");
}
