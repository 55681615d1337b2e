//! A2S_INFO / A2S_PLAYER against a UDP test responder that demands a challenge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use game_proto::ProtoError;
use game_proto::a2s::{Environment, ServerType, info, players};
use tokio::net::UdpSocket;

use crate::{fails_within, garbage};

const T: Duration = Duration::from_secs(2);
const CHALLENGE: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Demand a challenge, then answer; split the player list over two datagrams.
    Normal,
    /// Answer every request with a fresh challenge.
    EndlessChallenges,
    /// Answer with fixed bytes.
    Garbage(u64),
}

fn info_reply() -> Vec<u8> {
    let mut out = vec![0xff, 0xff, 0xff, 0xff, 0x49, 17];
    for s in ["Warden Test", "de_dust2", "cstrike", "Counter-Strike"] {
        out.extend(s.as_bytes());
        out.push(0);
    }
    out.extend(240u16.to_le_bytes());
    out.extend([5, 32, 1, b'd', b'l', 0, 1]);
    out.extend(b"1.0.0.71\0");
    out.push(0x80 | 0x20); // game port and keywords follow
    out.extend(27015u16.to_le_bytes());
    out.extend(b"secure,warden\0");
    out
}

fn players_reply(count: u8) -> Vec<u8> {
    let mut out = vec![0xff, 0xff, 0xff, 0xff, 0x44, count];
    for i in 0..count {
        out.push(i);
        out.extend(format!("player-{i:02}-with-a-rather-long-name").as_bytes());
        out.push(0);
        out.extend((i32::from(i) * 10).to_le_bytes());
        out.extend((f32::from(i) + 0.5).to_le_bytes());
    }
    out
}

/// Splits `reply` into Source-style pieces (with the 2-byte size field).
fn split(reply: &[u8], pieces: u8) -> Vec<Vec<u8>> {
    let chunk = reply.len().div_ceil(usize::from(pieces));
    reply
        .chunks(chunk)
        .enumerate()
        .map(|(n, payload)| {
            let mut dg = vec![0xfe, 0xff, 0xff, 0xff];
            dg.extend(77i32.to_le_bytes());
            dg.extend([pieces, n as u8]);
            dg.extend(1248u16.to_le_bytes());
            dg.extend(payload);
            dg
        })
        .collect()
}

async fn start(mode: Mode) -> (String, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let request = &buf[..n];
            assert_eq!(&request[..4], &[0xff; 4]);
            let mut challenge_reply = vec![0xff, 0xff, 0xff, 0xff, 0x41];
            challenge_reply.extend(CHALLENGE);
            let replies = match mode {
                Mode::Garbage(seed) => vec![garbage(seed, 40 + seed as usize)],
                Mode::EndlessChallenges => vec![challenge_reply],
                Mode::Normal => {
                    let (kind, rest) = (request[4], &request[5..]);
                    let with_challenge = rest.ends_with(&CHALLENGE);
                    match kind {
                        0x54 if rest.starts_with(b"Source Engine Query\0") => {
                            if with_challenge {
                                vec![info_reply()]
                            } else {
                                vec![challenge_reply]
                            }
                        }
                        0x55 if with_challenge => split(&players_reply(40), 3),
                        0x55 => vec![challenge_reply],
                        _ => panic!("unexpected request {request:?}"),
                    }
                }
            };
            for reply in replies.iter().rev() {
                // Send split pieces in reverse order to prove the order does not matter.
                let _ = socket.send_to(reply, peer).await;
            }
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn info_goes_through_the_challenge() {
    let (addr, requests) = start(Mode::Normal).await;
    let info = info(&addr, T).await.unwrap();
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "request, challenge, request"
    );
    assert_eq!(info.name, "Warden Test");
    assert_eq!(info.map, "de_dust2");
    assert_eq!(info.folder, "cstrike");
    assert_eq!(info.game, "Counter-Strike");
    assert_eq!(info.app_id, 240);
    assert_eq!((info.players, info.max_players, info.bots), (5, 32, 1));
    assert_eq!(info.server_type, ServerType::Dedicated);
    assert_eq!(info.environment, Environment::Linux);
    assert!(!info.visibility && info.vac);
    assert_eq!(info.version, "1.0.0.71");
    assert_eq!(info.game_port, Some(27015));
    assert_eq!(info.keywords.as_deref(), Some("secure,warden"));
}

#[tokio::test]
async fn players_go_through_the_challenge_and_split_reply() {
    let (addr, _) = start(Mode::Normal).await;
    let list = players(&addr, T).await.unwrap();
    assert_eq!(list.len(), 40);
    assert_eq!(list[39].name, "player-39-with-a-rather-long-name");
    assert_eq!(list[39].score, 390);
    assert_eq!(list[39].duration_secs, 39.5);
}

#[tokio::test]
async fn endless_challenges_and_garbage_are_errors() {
    let (addr, requests) = start(Mode::EndlessChallenges).await;
    let err = fails_within(Duration::from_secs(1), info(&addr, T)).await;
    assert!(matches!(err, ProtoError::Protocol { .. }), "{err:?}");
    assert!(
        requests.load(Ordering::SeqCst) <= 4,
        "bounded challenge rounds"
    );

    for seed in 1..=10 {
        let (addr, _) = start(Mode::Garbage(seed)).await;
        let err = fails_within(Duration::from_secs(1), players(&addr, T)).await;
        assert!(matches!(err, ProtoError::Protocol { .. }), "{err:?}");
        let err = fails_within(Duration::from_secs(1), info(&addr, T)).await;
        assert!(matches!(err, ProtoError::Protocol { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn silent_or_missing_server_is_bounded() {
    // A socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let err = fails_within(
        Duration::from_secs(1),
        info(&addr, Duration::from_millis(300)),
    )
    .await;
    assert!(matches!(err, ProtoError::Timeout { .. }), "{err:?}");
    drop(silent);
    // Nobody listening: either an ICMP "refused" or a timeout, but quickly either way.
    fails_within(
        Duration::from_secs(1),
        players(&addr, Duration::from_millis(300)),
    )
    .await;
}
