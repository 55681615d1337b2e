//! The port guard of a sleeping game server: warden listens on the game's ports itself,
//! answers Minecraft status pings and A2S_INFO with "asleep, 0 players", and ends (waking
//! the program) on a Minecraft login attempt or any A2S packet.
//!
//! Bounded: at most [`MAX_SESSIONS`] TCP clients at once, each for at most
//! [`SESSION_TIMEOUT`]; packets are capped at [`MAX_PACKET`] bytes. Dropping the future
//! closes every socket and session (the actor does that before the game is spawned).

use std::net::SocketAddr;
use std::time::Duration;

use game_proto::slp::{
    decode_varint, encode_frame, encode_login_disconnect, encode_status_response, parse_handshake,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::program::power::{WakePort, WakeProtocol};

/// TCP clients served at once; more wait in the accept queue.
const MAX_SESSIONS: usize = 32;
/// A status client is one round trip; one idling longer is dropped.
const SESSION_TIMEOUT: Duration = Duration::from_secs(5);
/// A handshake or login start is at most a few hundred bytes.
const MAX_PACKET: usize = 1024;
/// How long a port may stay taken (the game's process just ended) before guarding fails.
const BIND_PATIENCE: Duration = Duration::from_secs(10);
/// The status message while asleep when `idle.motd` is not set.
pub const DEFAULT_MOTD: &str = "Sleeping — join to wake it";

/// What the guard shows while the server sleeps.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The ports to guard.
    pub ports: Vec<WakePort>,
    /// Minecraft's server list message.
    pub motd: String,
    /// The server's name as last queried (A2S), else the program's name.
    pub server_name: String,
    /// The player limit as last queried.
    pub max_players: u32,
    /// About how long the server takes to start, in seconds (told to a joining player).
    pub wake_seconds: u64,
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Guards the ports until someone should wake the server: `Ok(who)` or `Err(why)` when a
/// port cannot be bound.
/// While `held` is above zero (a backup of the server's files runs), a wake is deferred:
/// the player is answered as usual and the ports stay guarded until the holds end.
pub async fn guard(plan: Plan, mut held: watch::Receiver<u32>) -> Result<String, String> {
    let mut sockets = Vec::with_capacity(plan.ports.len());
    for p in &plan.ports {
        sockets.extend(bind(p).await?);
    }
    let mut sessions: JoinSet<Option<SocketAddr>> = JoinSet::new();
    // One buffer per socket (IPv4 and IPv6 sockets of a UDP port are read at once).
    let mut bufs: Vec<Vec<u8>> = sockets
        .iter()
        .map(|s| match s {
            Socket::Udp(_) => vec![0u8; 1400],
            Socket::Tcp(_) => Vec::new(),
        })
        .collect();
    // A wake that came while held: who, to wake when the holds end.
    let mut pending: Option<String> = None;
    loop {
        if let Some(who) = &pending
            && *held.borrow() == 0
        {
            return Ok(who.clone());
        }
        let next = next_event(&sockets, &mut bufs, sessions.len() < MAX_SESSIONS);
        let mut woken: Option<SocketAddr> = None;
        tokio::select! {
            r = held.changed(), if pending.is_some() => {
                if r.is_err() {
                    // The program is gone; nothing to wake.
                    return std::future::pending().await;
                }
            }
            ev = next => match ev {
                Event::Tcp(stream, peer) => {
                    let plan = plan.clone();
                    sessions.spawn(async move {
                        match tokio::time::timeout(SESSION_TIMEOUT, session(stream, &plan)).await {
                            Ok(Ok(true)) => Some(peer),
                            _ => None,
                        }
                    });
                }
                Event::Udp(i, n, peer) => {
                    let data = bufs.get(i).and_then(|b| b.get(..n));
                    if let (Some(Socket::Udp(sock)), Some(data)) = (sockets.get(i), data)
                        && is_info_query(data)
                    {
                        // Best effort: the client asks again if this reply is lost.
                        let _ = sock.send_to(&info_reply(&plan), peer).await;
                    }
                    woken = Some(peer);
                }
                Event::Failed(e) => {
                    tracing::debug!(error = %e, "wake guard accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Ok(Some(peer)) = done {
                    woken = Some(peer);
                }
            }
        }
        if let Some(peer) = woken {
            let who = format!("a connection from {peer}");
            if *held.borrow() == 0 {
                return Ok(who);
            }
            if pending.is_none() {
                tracing::info!(%peer, "a player connected while the server's files are being backed up; it wakes when the backup ends");
                pending = Some(who);
            }
        }
    }
}

enum Event {
    Tcp(TcpStream, SocketAddr),
    Udp(usize, usize, SocketAddr),
    Failed(std::io::Error),
}

/// The next connection or datagram on any socket (TCP accepts wait while `accept` is false).
async fn next_event<'a>(sockets: &'a [Socket], bufs: &'a mut [Vec<u8>], accept: bool) -> Event {
    let mut futs: Vec<futures_util::future::BoxFuture<'a, Event>> = Vec::new();
    for (i, (s, b)) in sockets.iter().zip(bufs.iter_mut()).enumerate() {
        match s {
            Socket::Tcp(l) if accept => futs.push(Box::pin(async move {
                match l.accept().await {
                    Ok((stream, peer)) => Event::Tcp(stream, peer),
                    Err(e) => Event::Failed(e),
                }
            })),
            Socket::Tcp(_) => {}
            Socket::Udp(u) => futs.push(Box::pin(async move {
                match u.recv_from(b).await {
                    Ok((n, peer)) => Event::Udp(i, n, peer),
                    Err(e) => Event::Failed(e),
                }
            })),
        }
    }
    if futs.is_empty() {
        return std::future::pending().await;
    }
    futures_util::future::select_all(futs).await.0
}

/// Binds the port where a game server listens by default: every IPv4 address and, where
/// the host has IPv6, every IPv6 address (a separate IPv6-only socket, so dual-stack
/// players reach the guard whichever address family they use).
async fn bind(p: &WakePort) -> Result<Vec<Socket>, String> {
    let mut out = vec![bind_one(p, SocketAddr::from(([0, 0, 0, 0], p.port))).await?];
    let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, p.port));
    match bind_one(p, v6).await {
        Ok(s) => out.push(s),
        // A host without IPv6 (or with it disabled) is guarded over IPv4 alone.
        Err(e) => tracing::debug!(port = p.port, error = %e, "wake guard: no IPv6 socket"),
    }
    Ok(out)
}

/// One listening socket; IPv6 ones are IPv6-only.
fn open(p: &WakePort, addr: SocketAddr) -> std::io::Result<Socket> {
    use socket2::{Domain, Protocol, Type};
    let domain = Domain::for_address(addr);
    let (ty, proto) = match p.protocol {
        WakeProtocol::Minecraft => (Type::STREAM, Protocol::TCP),
        WakeProtocol::A2s => (Type::DGRAM, Protocol::UDP),
    };
    let sock = socket2::Socket::new(domain, ty, Some(proto))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // As std and tokio do for listeners: a port whose game just exited (TIME_WAIT) can
    // be taken again at once. Not on Windows, where it would allow stealing a live port.
    if !cfg!(windows) && p.protocol == WakeProtocol::Minecraft {
        sock.set_reuse_address(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    match p.protocol {
        WakeProtocol::Minecraft => {
            sock.listen(128)?;
            TcpListener::from_std(std::net::TcpListener::from(sock)).map(Socket::Tcp)
        }
        WakeProtocol::A2s => UdpSocket::from_std(std::net::UdpSocket::from(sock)).map(Socket::Udp),
    }
}

async fn bind_one(p: &WakePort, addr: SocketAddr) -> Result<Socket, String> {
    let deadline = tokio::time::Instant::now() + BIND_PATIENCE;
    loop {
        match open(p, addr) {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                let proto = match p.protocol {
                    WakeProtocol::Minecraft => "TCP",
                    WakeProtocol::A2s => "UDP",
                };
                return Err(format!(
                    "cannot listen on {proto} port {} ({}): {e}; free the port or change idle.listen",
                    p.port,
                    if addr.is_ipv6() { "IPv6" } else { "IPv4" }
                ));
            }
        }
    }
}

/// Serves one Minecraft client: `Ok(true)` when it tried to log in.
async fn session(mut stream: TcpStream, plan: &Plan) -> std::io::Result<bool> {
    let (id, hs) = read_packet(&mut stream).await?;
    if id != 0 {
        return Ok(false);
    }
    let hs = parse_handshake(&hs).map_err(|e| invalid(&e.0))?;
    match hs.next_state {
        1 => loop {
            let (id, payload) = read_packet(&mut stream).await?;
            match id {
                0 => {
                    let json = serde_json::json!({
                        "version": { "name": "asleep", "protocol": hs.protocol },
                        "players": { "max": plan.max_players, "online": 0, "sample": [] },
                        "description": { "text": plan.motd },
                    })
                    .to_string();
                    stream.write_all(&encode_status_response(&json)).await?;
                }
                1 => {
                    stream.write_all(&encode_frame(1, &payload)).await?;
                    return Ok(false);
                }
                _ => return Ok(false),
            }
        },
        2 => {
            let text = format!(
                "The server is starting, join again in about {} s",
                plan.wake_seconds.max(1)
            );
            stream.write_all(&encode_login_disconnect(&text)).await?;
            let _ = stream.shutdown().await;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn take_varint(buf: &mut &[u8]) -> std::io::Result<i32> {
    match decode_varint(buf) {
        Ok(Some((v, n))) => {
            *buf = buf.get(n..).unwrap_or_default();
            Ok(v)
        }
        _ => Err(invalid("bad VarInt")),
    }
}

async fn read_packet(stream: &mut TcpStream) -> std::io::Result<(i32, Vec<u8>)> {
    let mut head = Vec::with_capacity(5);
    let len = loop {
        head.push(stream.read_u8().await?);
        match decode_varint(&head) {
            Ok(Some((v, _))) => break v,
            Ok(None) if head.len() < 5 => {}
            _ => return Err(invalid("bad packet length")),
        }
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (1..=MAX_PACKET).contains(l))
        .ok_or_else(|| invalid("bad packet length"))?;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    let mut rest = &body[..];
    let id = take_varint(&mut rest)?;
    Ok((id, rest.to_vec()))
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// `FF FF FF FF 'T'`: an A2S_INFO request.
fn is_info_query(data: &[u8]) -> bool {
    data.len() >= 5 && data[..4] == [0xff; 4] && data[4] == 0x54
}

/// An A2S_INFO reply: the last known name, 0 players.
fn info_reply(plan: &Plan) -> Vec<u8> {
    let mut out = vec![0xff, 0xff, 0xff, 0xff, 0x49, 17];
    let cstr = |out: &mut Vec<u8>, s: &str| {
        out.extend(s.bytes().filter(|&b| b != 0).take(250));
        out.push(0);
    };
    cstr(&mut out, &plan.server_name);
    cstr(&mut out, "asleep");
    cstr(&mut out, "warden");
    cstr(&mut out, &plan.motd);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.push(0); // players
    out.push(u8::try_from(plan.max_players).unwrap_or(u8::MAX));
    out.push(0); // bots
    out.push(b'd');
    out.push(if std::env::consts::OS == "windows" {
        b'w'
    } else {
        b'l'
    });
    out.push(0); // visibility
    out.push(0); // vac
    cstr(&mut out, "asleep");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_reply_parses_with_the_name_and_no_players() {
        let plan = Plan {
            ports: Vec::new(),
            motd: DEFAULT_MOTD.into(),
            server_name: "Demo".into(),
            max_players: 20,
            wake_seconds: 5,
        };
        let reply = info_reply(&plan);
        let info = game_proto::a2s::parse_info(&reply[5..]).expect("parses");
        assert_eq!(info.name, "Demo");
        assert_eq!(info.players, 0);
        assert_eq!(info.max_players, 20);
        assert!(is_info_query(b"\xff\xff\xff\xffTSource Engine Query\0"));
        assert!(!is_info_query(b"\xff\xff\xff\xffU"));
    }
}
