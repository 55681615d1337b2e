//! Steam server queries over UDP: A2S_INFO ([`info`]) and A2S_PLAYER ([`players`]), with
//! the S2C_CHALLENGE handshake, plus pure parsers for the replies.
//!
//! Replies come in one datagram starting with `FF FF FF FF`, or split over several datagrams
//! starting with `FE FF FF FF`. Split replies in the Source layout (with or without the
//! "size" field) are reassembled by [`SplitAssembler`]; bzip2-compressed split replies and the
//! old GoldSource layout are rejected with a [`ProtoError::Protocol`] that says so.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::error::{DecodeError, ProtoError, Result};

const SIMPLE: [u8; 4] = [0xff; 4];
const SPLIT: [u8; 4] = [0xfe, 0xff, 0xff, 0xff];
const HEADER_CHALLENGE: u8 = 0x41;
const HEADER_INFO: u8 = 0x49;
const HEADER_INFO_GOLDSOURCE: u8 = 0x6d;
const HEADER_PLAYERS: u8 = 0x44;
/// Largest number of pieces a split reply may have; Source uses far fewer for A2S replies.
pub const MAX_SPLIT_PACKETS: u8 = 32;
/// How often we accept a fresh challenge before giving up (a server that keeps answering
/// with new challenges would otherwise keep us busy until the timeout).
const MAX_CHALLENGE_ROUNDS: usize = 3;
/// The Ship (app id 2400) inserts three extra bytes into A2S_INFO.
const APP_ID_THE_SHIP: u16 = 2400;
const PROTO: &str = "A2S";

/// Kind of server, from A2S_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerType {
    Dedicated,
    NonDedicated,
    SourceTv,
    Other(u8),
}

/// Operating system of the server, from A2S_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Linux,
    Windows,
    Mac,
    Other(u8),
}

/// Reply to A2S_INFO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct A2sInfo {
    pub protocol: u8,
    pub name: String,
    pub map: String,
    pub folder: String,
    pub game: String,
    pub app_id: u16,
    pub players: u8,
    pub max_players: u8,
    pub bots: u8,
    pub server_type: ServerType,
    pub environment: Environment,
    /// True when the server requires a password.
    pub visibility: bool,
    /// True when the server is VAC-secured.
    pub vac: bool,
    pub version: String,
    /// Optional fields announced by the extra data flag.
    pub game_port: Option<u16>,
    pub steam_id: Option<u64>,
    pub keywords: Option<String>,
    pub game_id: Option<u64>,
}

/// One entry of the A2S_PLAYER reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct A2sPlayer {
    pub index: u8,
    pub name: String,
    pub score: i32,
    pub duration_secs: f32,
}

/// A bounds-checked little-endian reader over a reply.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..N))
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| {
                DecodeError::new(format!(
                    "reply truncated at byte {} reading {what}",
                    self.pos
                ))
            })?;
        self.pos += N;
        Ok(bytes)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.take(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }

    fn f32(&mut self, what: &str) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.take(what)?))
    }

    /// A NUL-terminated string; invalid UTF-8 is replaced because names are for display.
    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            DecodeError::new(format!(
                "unterminated string at byte {} reading {what}",
                self.pos
            ))
        })?;
        let text = String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// What one datagram (or a reassembled reply) contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// S2C_CHALLENGE: repeat the request with these four bytes appended.
    Challenge([u8; 4]),
    /// A complete reply: header byte and the rest.
    Reply { header: u8, body: &'a [u8] },
    /// One piece of a split reply; feed the whole datagram to a [`SplitAssembler`].
    Split,
}

/// Classifies a datagram by its first bytes.
pub fn classify(datagram: &[u8]) -> Result<Datagram<'_>, DecodeError> {
    if datagram.starts_with(&SPLIT) {
        return Ok(Datagram::Split);
    }
    let rest = datagram
        .strip_prefix(&SIMPLE)
        .ok_or_else(|| DecodeError::new("datagram does not start with an A2S header"))?;
    let (&header, body) = rest
        .split_first()
        .ok_or_else(|| DecodeError::new("datagram has no payload"))?;
    if header == HEADER_CHALLENGE {
        let challenge = body
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or_else(|| DecodeError::new("challenge reply is shorter than 4 bytes"))?;
        return Ok(Datagram::Challenge(challenge));
    }
    Ok(Datagram::Reply { header, body })
}

/// Parses the body of an A2S_INFO reply (everything after the `I` header byte).
pub fn parse_info(body: &[u8]) -> Result<A2sInfo, DecodeError> {
    let mut r = Reader::new(body);
    let protocol = r.u8("protocol")?;
    let name = r.string("name")?;
    let map = r.string("map")?;
    let folder = r.string("folder")?;
    let game = r.string("game")?;
    let app_id = r.u16("app id")?;
    let players = r.u8("players")?;
    let max_players = r.u8("max players")?;
    let bots = r.u8("bots")?;
    let server_type = match r.u8("server type")? {
        b'd' => ServerType::Dedicated,
        b'l' => ServerType::NonDedicated,
        b'p' => ServerType::SourceTv,
        other => ServerType::Other(other),
    };
    let environment = match r.u8("environment")? {
        b'l' => Environment::Linux,
        b'w' => Environment::Windows,
        b'm' | b'o' => Environment::Mac,
        other => Environment::Other(other),
    };
    let visibility = r.u8("visibility")? != 0;
    let vac = r.u8("vac")? != 0;
    if app_id == APP_ID_THE_SHIP {
        r.take::<3>("The Ship fields")?;
    }
    let version = r.string("version")?;
    let mut info = A2sInfo {
        protocol,
        name,
        map,
        folder,
        game,
        app_id,
        players,
        max_players,
        bots,
        server_type,
        environment,
        visibility,
        vac,
        version,
        game_port: None,
        steam_id: None,
        keywords: None,
        game_id: None,
    };
    // The extra data flag is optional; older servers end the reply after the version.
    if r.is_empty() {
        return Ok(info);
    }
    let edf = r.u8("extra data flag")?;
    if edf & 0x80 != 0 {
        info.game_port = Some(r.u16("game port")?);
    }
    if edf & 0x10 != 0 {
        info.steam_id = Some(r.u64("steam id")?);
    }
    if edf & 0x40 != 0 {
        r.u16("SourceTV port")?;
        r.string("SourceTV name")?;
    }
    if edf & 0x20 != 0 {
        info.keywords = Some(r.string("keywords")?);
    }
    if edf & 0x01 != 0 {
        info.game_id = Some(r.u64("game id")?);
    }
    Ok(info)
}

/// Parses the body of an A2S_PLAYER reply (everything after the `D` header byte).
///
/// Some servers announce more players than they list; the list simply ends early then. A
/// reply cut off in the middle of an entry is an error.
pub fn parse_players(body: &[u8]) -> Result<Vec<A2sPlayer>, DecodeError> {
    let mut r = Reader::new(body);
    let count = r.u8("player count")?;
    let mut players = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if r.is_empty() {
            break;
        }
        players.push(A2sPlayer {
            index: r.u8("player index")?,
            name: r.string("player name")?,
            score: r.i32("player score")?,
            duration_secs: r.f32("player duration")?,
        });
    }
    Ok(players)
}

/// Collects the pieces of a split (`FE FF FF FF`) reply in the Source layout.
#[derive(Debug, Default)]
pub struct SplitAssembler {
    id: Option<i32>,
    parts: Vec<Option<Vec<u8>>>,
}

impl SplitAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one datagram. Returns the reassembled reply (starting with `FF FF FF FF`) once
    /// all pieces are in. Pieces of a different reply id are ignored (they belong to an
    /// earlier request round).
    pub fn push(&mut self, datagram: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let mut r = Reader::new(datagram);
        if r.take::<4>("split header")? != SPLIT {
            return Err(DecodeError::new("not a split datagram"));
        }
        let id = r.i32("split reply id")?;
        if id < 0 {
            return Err(DecodeError::new(
                "the server sent a bzip2-compressed split reply, which is not supported",
            ));
        }
        let total = r.u8("split packet count")?;
        let number = r.u8("split packet number")?;
        if total == 0 || total > MAX_SPLIT_PACKETS || number >= total {
            return Err(DecodeError::new(format!(
                "split packet {number} of {total} is invalid (GoldSource-style split replies are not supported)"
            )));
        }
        match self.id {
            Some(current) if current != id => return Ok(None),
            Some(_) if self.parts.len() != usize::from(total) => {
                return Err(DecodeError::new("split packets disagree on their count"));
            }
            Some(_) => {}
            None => {
                self.id = Some(id);
                self.parts = vec![None; usize::from(total)];
            }
        }
        let rest = datagram.get(r.pos..).unwrap_or_default();
        if let Some(slot) = self.parts.get_mut(usize::from(number)) {
            *slot = Some(rest.to_vec());
        }
        if self.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        self.assemble().map(Some)
    }

    fn assemble(&self) -> Result<Vec<u8>, DecodeError> {
        // Newer engines put a 2-byte "size" field before each piece's payload, older ones do
        // not; the first piece's payload must start with FF FF FF FF, which tells us which.
        let first = self.parts.first().and_then(Option::as_ref);
        let skip = match first {
            Some(p) if p.starts_with(&SIMPLE) => 0,
            Some(p) if p.get(2..).is_some_and(|r| r.starts_with(&SIMPLE)) => 2,
            _ => {
                return Err(DecodeError::new(
                    "first piece of a split reply does not start with FF FF FF FF",
                ));
            }
        };
        let mut out = Vec::new();
        for part in self.parts.iter().flatten() {
            let payload = part
                .get(skip..)
                .ok_or_else(|| DecodeError::new("split packet is shorter than its header"))?;
            out.extend_from_slice(payload);
        }
        Ok(out)
    }
}

/// Queries A2S_INFO from the server at `addr` ("host:port", the query port). `timeout` bounds
/// the whole exchange including challenge rounds.
pub async fn info(addr: &str, timeout: Duration) -> Result<A2sInfo> {
    let mut request = SIMPLE.to_vec();
    request.push(0x54);
    request.extend_from_slice(b"Source Engine Query\0");
    let body = query(addr, &request, None, HEADER_INFO, timeout).await?;
    parse_info(&body).map_err(|e| e.at(PROTO, addr))
}

/// Queries A2S_PLAYER from the server at `addr` ("host:port", the query port).
pub async fn players(addr: &str, timeout: Duration) -> Result<Vec<A2sPlayer>> {
    let mut request = SIMPLE.to_vec();
    request.push(0x55);
    let body = query(addr, &request, Some([0xff; 4]), HEADER_PLAYERS, timeout).await?;
    parse_players(&body).map_err(|e| e.at(PROTO, addr))
}

/// Sends `request` (plus `initial_challenge`, if any) and returns the body of the first reply
/// with header `expected`, answering S2C_CHALLENGE replies along the way.
async fn query(
    addr: &str,
    request: &[u8],
    initial_challenge: Option<[u8; 4]>,
    expected: u8,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let timed_out = || ProtoError::Timeout {
        addr: addr.to_owned(),
        what: "waiting for the A2S reply (is the query port open?)",
        after: timeout,
    };
    let io = |source| ProtoError::Io {
        addr: addr.to_owned(),
        source,
    };
    let protocol = |e: DecodeError| e.at(PROTO, addr);

    let target = resolve(addr, deadline, timeout).await?;
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // A connected socket only receives datagrams from the server we asked.
    socket.connect(target).await.map_err(io)?;

    let with_challenge = |challenge: Option<[u8; 4]>| {
        let mut out = request.to_vec();
        if let Some(c) = challenge {
            out.extend_from_slice(&c);
        }
        out
    };
    let mut outgoing = with_challenge(initial_challenge);
    let mut buf = vec![0u8; 65_536];
    for _ in 0..=MAX_CHALLENGE_ROUNDS {
        match tokio::time::timeout_at(deadline, socket.send(&outgoing)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(timed_out()),
        }
        let mut assembler = SplitAssembler::new();
        let challenge = loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                // "Connection refused" on UDP means an ICMP port-unreachable came back.
                Ok(Err(source)) if source.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(ProtoError::Connect {
                        addr: addr.to_owned(),
                        source,
                    });
                }
                Ok(Err(e)) => return Err(io(e)),
                Err(_) => return Err(timed_out()),
            };
            let datagram = buf.get(..n).unwrap_or_default();
            let assembled;
            let reply = match classify(datagram).map_err(protocol)? {
                Datagram::Split => match assembler.push(datagram).map_err(protocol)? {
                    Some(whole) => {
                        assembled = whole;
                        classify(&assembled).map_err(protocol)?
                    }
                    None => continue,
                },
                other => other,
            };
            match reply {
                Datagram::Challenge(c) => break c,
                Datagram::Reply { header, body } if header == expected => return Ok(body.to_vec()),
                Datagram::Reply { header, .. } if header == HEADER_INFO_GOLDSOURCE => {
                    return Err(protocol(DecodeError::new(
                        "the server sent the obsolete GoldSource info reply, which is not supported",
                    )));
                }
                Datagram::Reply { header, .. } => {
                    return Err(protocol(DecodeError::new(format!(
                        "expected reply header 0x{expected:02x}, got 0x{header:02x}"
                    ))));
                }
                Datagram::Split => {
                    return Err(protocol(DecodeError::new(
                        "split reply inside a split reply",
                    )));
                }
            }
        };
        outgoing = with_challenge(Some(challenge));
    }
    Err(protocol(DecodeError::new(format!(
        "the server answered {} times with a new challenge instead of a reply",
        MAX_CHALLENGE_ROUNDS + 1
    ))))
}

async fn resolve(addr: &str, deadline: Instant, timeout: Duration) -> Result<SocketAddr> {
    let found = tokio::time::timeout_at(deadline, tokio::net::lookup_host(addr))
        .await
        .map_err(|_| ProtoError::Timeout {
            addr: addr.to_owned(),
            what: "resolving the address",
            after: timeout,
        })?
        .map_err(|e| ProtoError::InvalidAddress {
            addr: addr.to_owned(),
            detail: e.to_string(),
        })?
        .next();
    found.ok_or_else(|| ProtoError::InvalidAddress {
        addr: addr.to_owned(),
        detail: "the name resolved to no address".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_challenge_and_reply() {
        let mut dg = SIMPLE.to_vec();
        dg.extend([0x41, 1, 2, 3, 4]);
        assert_eq!(classify(&dg).unwrap(), Datagram::Challenge([1, 2, 3, 4]));
        assert!(classify(&dg[..7]).is_err());
        assert!(classify(b"garbage").is_err());
        assert_eq!(classify(&SPLIT).unwrap(), Datagram::Split);
    }

    #[test]
    fn parses_players_and_tolerates_short_lists() {
        let mut body = vec![3u8];
        body.extend([0, b'a', b'l', 0]);
        body.extend(7i32.to_le_bytes());
        body.extend(1.5f32.to_le_bytes());
        let players = parse_players(&body).unwrap();
        assert_eq!(players.len(), 1);
        assert_eq!(players[0].name, "al");
        assert!(parse_players(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn reassembles_split_replies_with_and_without_size() {
        for with_size in [false, true] {
            let whole = [&SIMPLE[..], &[0x44, 0], &[7u8; 20]].concat();
            let (a, b) = whole.split_at(10);
            let piece = |n: u8, payload: &[u8]| {
                let mut dg = SPLIT.to_vec();
                dg.extend(5i32.to_le_bytes());
                dg.extend([2, n]);
                if with_size {
                    dg.extend(1248u16.to_le_bytes());
                }
                dg.extend(payload);
                dg
            };
            let mut asm = SplitAssembler::new();
            assert_eq!(asm.push(&piece(1, b)).unwrap(), None);
            assert_eq!(asm.push(&piece(0, a)).unwrap(), Some(whole.clone()));
        }
    }
}
