//! Steam A2S server queries over UDP: A2S_INFO and A2S_PLAYER with the challenge handshake.
//!
//! Requests and replies start with the single-packet header FF FF FF FF; all numbers are
//! little-endian and strings NUL-terminated (Valve's "Server queries" page). A request without
//! the right challenge gets only a 9-byte S2C_CHALLENGE, which is what keeps a spoofed source
//! address from turning the server into a traffic amplifier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use crate::console;
use crate::world::{VERSION_NAME, World, hash64};

const HEADER: [u8; 4] = [0xFF; 4];
const A2S_INFO: u8 = 0x54;
const A2S_PLAYER: u8 = 0x55;
const S2C_CHALLENGE: u8 = 0x41;
const S2A_INFO: u8 = 0x49;
const S2A_PLAYER: u8 = 0x44;
const INFO_PAYLOAD: &[u8] = b"Source Engine Query\0";
/// Steam's packet size; replies are kept within it so one datagram is always enough.
const MAX_PACKET: usize = 1400;

/// Answers queries forever.
pub async fn serve(socket: UdpSocket, world: Arc<World>) {
    // Challenges are derived from a per-process secret and the client address, so they need
    // no table and cannot be guessed by a client that never received one.
    let secret = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(32);
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut buf = [0u8; MAX_PACKET];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            // On Windows an ICMP "port unreachable" from an earlier reply surfaces here as
            // ConnectionReset; it concerns one client only, so keep serving.
            Err(e) => {
                if e.kind() != std::io::ErrorKind::ConnectionReset {
                    console::warn(&format!("Query receive failed: {e}"));
                }
                continue;
            }
        };
        let challenge = challenge_for(secret, peer);
        if let Some(reply) = respond(&buf[..len], challenge, &world, port) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

fn challenge_for(secret: u64, peer: SocketAddr) -> [u8; 4] {
    let mut c = hash64(secret, &peer.to_string()) as u32;
    // 0xFFFFFFFF means "please send me a challenge", so never hand it out.
    if c == u32::MAX {
        c = 0x1234_5678;
    }
    c.to_le_bytes()
}

/// The reply to one datagram, or `None` to ignore it (malformed or unsupported).
fn respond(req: &[u8], challenge: [u8; 4], world: &World, port: u16) -> Option<Vec<u8>> {
    let body = req.strip_prefix(&HEADER)?;
    let (&kind, rest) = body.split_first()?;
    let answered = |given: Option<&[u8]>| given == Some(&challenge[..]);
    match kind {
        A2S_INFO => {
            let rest = rest.strip_prefix(INFO_PAYLOAD)?;
            Some(if answered(rest.get(..4)) {
                info(world, port)
            } else {
                challenge_reply(challenge)
            })
        }
        A2S_PLAYER => {
            let given = rest.get(..4)?;
            Some(if answered(Some(given)) {
                players(world)
            } else {
                challenge_reply(challenge)
            })
        }
        _ => None,
    }
}

fn challenge_reply(challenge: [u8; 4]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    out.push(S2C_CHALLENGE);
    out.extend_from_slice(&challenge);
    out
}

fn info(world: &World, port: u16) -> Vec<u8> {
    let online = world.players().len();
    let mut out = HEADER.to_vec();
    out.push(S2A_INFO);
    out.push(17); // protocol version of Source servers
    put_str(&mut out, &world.name);
    put_str(&mut out, "world"); // map
    put_str(&mut out, "demo"); // game folder
    put_str(&mut out, "Warden Demo Game"); // game description
    out.extend_from_slice(&0u16.to_le_bytes()); // Steam app id: none
    out.push(u8::try_from(online).unwrap_or(u8::MAX));
    out.push(u8::try_from(world.max_players).unwrap_or(u8::MAX));
    out.push(0); // bots
    out.push(b'd'); // dedicated server
    out.push(if cfg!(windows) {
        b'w'
    } else if cfg!(target_os = "macos") {
        b'm'
    } else {
        b'l'
    });
    out.push(0); // visibility: no join password
    out.push(0); // VAC: off
    put_str(&mut out, VERSION_NAME);
    out.push(0x80); // extra data flag: just the game port
    out.extend_from_slice(&port.to_le_bytes());
    out
}

fn players(world: &World) -> Vec<u8> {
    let now = Instant::now();
    let mut out = HEADER.to_vec();
    out.push(S2A_PLAYER);
    let count_at = out.len();
    out.push(0);
    let mut count: u8 = 0;
    for p in world.players() {
        // index + name + NUL + score + duration
        let entry_len = 1 + p.name.len() + 1 + 4 + 4;
        if count == u8::MAX || out.len() + entry_len > MAX_PACKET {
            break; // the list is truncated rather than split across datagrams
        }
        out.push(count);
        put_str(&mut out, &p.name);
        out.extend_from_slice(&p.score.to_le_bytes());
        let secs = now.saturating_duration_since(p.joined).as_secs_f32();
        out.extend_from_slice(&secs.to_le_bytes());
        count += 1;
    }
    out[count_at] = count;
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // An embedded NUL would end the string early on the client; drop it.
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_flow_and_garbage() {
        let world = World::new("w".into(), 20, 20, std::env::temp_dir(), 2);
        let ch = [1, 2, 3, 4];
        let mut req = b"\xFF\xFF\xFF\xFFTSource Engine Query\0".to_vec();
        assert_eq!(respond(&req, ch, &world, 1).unwrap()[4], S2C_CHALLENGE);
        req.extend_from_slice(&ch);
        assert_eq!(respond(&req, ch, &world, 1).unwrap()[4], S2A_INFO);
        let req = b"\xFF\xFF\xFF\xFFU\xFF\xFF\xFF\xFF";
        assert_eq!(respond(req, ch, &world, 1).unwrap()[4], S2C_CHALLENGE);
        let reply = respond(b"\xFF\xFF\xFF\xFFU\x01\x02\x03\x04", ch, &world, 1).unwrap();
        assert_eq!((reply[4], reply[5]), (S2A_PLAYER, 2));
        for junk in [
            &b""[..],
            b"\xFF\xFF\xFF",
            b"\xFF\xFF\xFF\xFFT",
            b"\xFF\xFF\xFF\xFFU\x01",
            b"abcdefgh",
        ] {
            assert!(respond(junk, ch, &world, 1).is_none());
        }
    }
}
