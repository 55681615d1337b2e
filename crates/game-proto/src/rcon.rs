//! Source RCON: packet codec, a single-connection client ([`RconClient`]) and a shared,
//! self-healing per-server handle ([`RconSession`]).
//!
//! # Wire format
//! Every packet is `size: i32 LE`, then `id: i32 LE`, `type: i32 LE`, the body and two NUL
//! bytes; `size` counts everything after itself, so it is at least 10.
//!
//! # Where a response ends
//! The protocol has no end-of-response marker and large replies are split over several
//! packets. The client therefore also sends an empty `SERVERDATA_RESPONSE_VALUE` packet with
//! a second, "marker" id. Servers process requests in order, so they answer the marker only
//! after the whole command reply:
//!
//! 1. The command goes out alone. The marker follows as soon as the first packet of the reply
//!    arrives (or after the idle gap if none has). Sending both at once would be simpler, but
//!    some servers mishandle two packets in one TCP read: vanilla Minecraft drops such a read
//!    entirely (so the command would not even run), and others handle only the first packet.
//! 2. Bodies of type-0 packets carrying the command's id are concatenated (as bytes, so a
//!    UTF-8 character split across packets survives) until any packet with the marker id
//!    arrives. Source servers mirror the empty packet and then send one more packet whose
//!    body is `00 01 00 00`; Minecraft answers "Unknown request 0". Both count as the end.
//! 3. Packets with any other id (such as that trailing `00 01 00 00` packet, or late pieces of
//!    an earlier reply that was cut short) are skipped, so they can never leak into the reply
//!    of a later command.
//! 4. Some servers never answer the marker. So when the last packet of the reply was shorter
//!    than 4096 bytes — i.e. it was not a full fragment with more to follow — and nothing else
//!    arrives for a short idle gap (300 ms by default), the reply is taken as complete. A full
//!    4096-byte fragment is never ended by the idle gap.
//! 5. Otherwise the per-command timeout ends the wait with [`ProtoError::Timeout`].
//!
//! The reply is bounded by [`MAX_RESPONSE_SIZE`] and every packet by [`MAX_PACKET_SIZE`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{DecodeError, ProtoError, Result};
use crate::net;

/// Packet type of a login request.
pub const SERVERDATA_AUTH: i32 = 3;
/// Packet type of the server's login answer (same number as EXECCOMMAND, other direction).
pub const SERVERDATA_AUTH_RESPONSE: i32 = 2;
/// Packet type of a command.
pub const SERVERDATA_EXECCOMMAND: i32 = 2;
/// Packet type of command output (and of our end marker).
pub const SERVERDATA_RESPONSE_VALUE: i32 = 0;

/// Smallest legal value of the size field: id, type and two NUL bytes.
pub const MIN_PACKET_SIZE: usize = 10;
/// Largest size field we accept from a server. Real servers stay near 4 KiB per packet; the
/// margin allows multi-byte text, and the bound stops a garbage length from allocating.
pub const MAX_PACKET_SIZE: usize = 64 * 1024;
/// Largest request body we send: the Source server rejects packets above 4096 bytes.
pub const MAX_REQUEST_BODY: usize = 4096 - MIN_PACKET_SIZE;
/// Largest reply (sum of all bodies) we accept for one command.
pub const MAX_RESPONSE_SIZE: usize = 4 * 1024 * 1024;
/// Body length of a full fragment (Minecraft splits replies into 4096-byte pieces).
pub const FULL_FRAGMENT_LEN: usize = 4096;
/// Default idle gap that ends a reply whose server does not answer the end marker.
pub const DEFAULT_IDLE_GAP: Duration = Duration::from_millis(300);
/// Default time [`RconSession`] refuses to log in again after a wrong password.
pub const DEFAULT_AUTH_COOL_DOWN: Duration = Duration::from_secs(30);

const PROTO: &str = "RCON";
const PASSWORD_HINT: &str = "rcon.password in the program's game settings";
/// Packets a server may send before its login answer (Source sends one empty packet first).
const MAX_PACKETS_BEFORE_AUTH_REPLY: usize = 8;

/// What a quiet spell while waiting for a reply means.
enum Silence {
    /// The reply has not started: send the end marker now.
    SendMarker,
    /// The reply had a short last fragment and the marker went unanswered: it is complete.
    Complete,
    /// The per-command timeout is up.
    TimedOut,
}

/// One RCON packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: i32,
    pub kind: i32,
    pub body: Vec<u8>,
}

/// Encodes one packet. Fails only if the body is too large for [`MAX_PACKET_SIZE`].
pub fn encode_packet(id: i32, kind: i32, body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let size = body.len() + MIN_PACKET_SIZE;
    if size > MAX_PACKET_SIZE {
        return Err(DecodeError::new(format!(
            "packet body of {} bytes is too large",
            body.len()
        )));
    }
    // The bound above keeps `size` far below i32::MAX, so the conversion cannot fail.
    let size = i32::try_from(size).map_err(|_| DecodeError::new("packet too large"))?;
    let mut out = Vec::with_capacity(body.len() + 14);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0, 0]);
    Ok(out)
}

fn le_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_le_bytes(bytes))
}

/// Decodes the first packet in `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet, or the packet and the
/// number of bytes it used. The size field is checked before anything is allocated. The body
/// is the payload without its NUL terminator(s); one or two terminators are accepted because
/// some servers send only one.
pub fn decode_packet(buf: &[u8]) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(size) = le_i32(buf, 0) else {
        return Ok(None);
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|s| (MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(s))
        .ok_or_else(|| {
            DecodeError::new(format!(
                "packet size {size} is outside {MIN_PACKET_SIZE}..={MAX_PACKET_SIZE}"
            ))
        })?;
    let total = size + 4;
    let Some(packet) = buf.get(..total) else {
        return Ok(None);
    };
    let (Some(id), Some(kind)) = (le_i32(packet, 4), le_i32(packet, 8)) else {
        return Ok(None);
    };
    let payload = packet.get(12..).unwrap_or_default();
    let body = payload
        .strip_suffix(&[0, 0])
        .or_else(|| payload.strip_suffix(&[0]))
        .ok_or_else(|| DecodeError::new("packet body is not NUL-terminated"))?;
    Ok(Some((
        Packet {
            id,
            kind,
            body: body.to_vec(),
        },
        total,
    )))
}

/// One authenticated RCON connection. Commands run one at a time (`&mut self`).
///
/// After any error the connection is abandoned (its stream position is unknown) and further
/// commands fail with [`ProtoError::Io`]; connect again, or use [`RconSession`], which does
/// that for you.
pub struct RconClient {
    addr: String,
    stream: TcpStream,
    buf: Vec<u8>,
    next_id: i32,
    timeout: Duration,
    idle_gap: Duration,
    broken: bool,
}

impl fmt::Debug for RconClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RconClient")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl RconClient {
    /// Connects to `addr` ("host:port") and logs in. `timeout` bounds the connect plus the
    /// login, and later each [`exec`](Self::exec) separately.
    pub async fn connect(addr: &str, password: &str, timeout: Duration) -> Result<RconClient> {
        // The password must fit one packet and cannot contain NUL; the error never repeats it.
        if password.len() > MAX_REQUEST_BODY || password.contains('\0') {
            return Err(ProtoError::InvalidInput {
                addr: addr.to_owned(),
                detail: format!(
                    "the RCON password must be at most {MAX_REQUEST_BODY} bytes without NUL characters"
                ),
            });
        }
        let deadline = Instant::now() + timeout;
        let stream = net::connect_tcp(addr, deadline, timeout).await?;
        let mut client = RconClient {
            addr: addr.to_owned(),
            stream,
            buf: Vec::new(),
            next_id: 1,
            timeout,
            idle_gap: DEFAULT_IDLE_GAP,
            broken: false,
        };
        client.authenticate(password, deadline).await?;
        Ok(client)
    }

    /// Changes the idle gap that ends a reply from servers that do not answer the end marker.
    pub fn set_idle_gap(&mut self, gap: Duration) {
        self.idle_gap = gap;
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once an error (or a cancelled command) has made this connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Runs one command and returns its whole (possibly multi-packet) reply as text; invalid
    /// UTF-8 is replaced rather than rejected because console output is for humans.
    pub async fn exec(&mut self, cmd: &str) -> Result<String> {
        if self.broken {
            return Err(ProtoError::Io {
                addr: self.addr.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "connection abandoned after an earlier error or cancelled command; reconnect",
                ),
            });
        }
        if cmd.len() > MAX_REQUEST_BODY || cmd.contains('\0') {
            return Err(ProtoError::InvalidInput {
                addr: self.addr.clone(),
                detail: format!(
                    "an RCON command must be at most {MAX_REQUEST_BODY} bytes without NUL characters (got {} bytes)",
                    cmd.len()
                ),
            });
        }
        // Mark the connection broken until the reply is complete: if this future is dropped
        // half-way, the stream is in an unknown state and must not be reused.
        self.broken = true;
        let reply = self.exec_inner(cmd).await?;
        self.broken = false;
        Ok(reply)
    }

    async fn exec_inner(&mut self, cmd: &str) -> Result<String> {
        let deadline = Instant::now() + self.timeout;
        let id = self.take_id();
        let marker = self.take_id();
        let request = self.encode(id, SERVERDATA_EXECCOMMAND, cmd.as_bytes())?;
        let marker_packet = self.encode(marker, SERVERDATA_RESPONSE_VALUE, b"")?;
        self.send(&request, deadline).await?;
        let sent_at = Instant::now();

        let mut reply: Vec<u8> = Vec::new();
        // When the end marker went out; it follows the first fragment (see the module docs).
        let mut marker_sent_at: Option<Instant> = None;
        // Arrival time and body length of the last fragment of our reply.
        let mut last_fragment: Option<(Instant, usize)> = None;
        loop {
            // How long to wait for the next packet, and what silence until then means.
            let (wake, on_silence) = match (marker_sent_at, last_fragment) {
                (None, _) => (sent_at + self.idle_gap, Silence::SendMarker),
                (Some(marker_at), Some((at, len))) if len < FULL_FRAGMENT_LEN => {
                    (at.max(marker_at) + self.idle_gap, Silence::Complete)
                }
                _ => (deadline, Silence::TimedOut),
            };
            let (until, on_silence) = if wake < deadline {
                (wake, on_silence)
            } else {
                (deadline, Silence::TimedOut)
            };
            let Some(packet) = self
                .next_packet(until, "in the middle of an RCON reply")
                .await?
            else {
                match on_silence {
                    // No reply yet: the command may print nothing, so ask for the marker now.
                    Silence::SendMarker => {
                        self.send(&marker_packet, deadline).await?;
                        marker_sent_at = Some(Instant::now());
                        continue;
                    }
                    // Nothing more after a short fragment: the server ignored our marker.
                    Silence::Complete => break,
                    Silence::TimedOut => {
                        return Err(self.timeout_error(if reply.is_empty() {
                            "waiting for the RCON reply"
                        } else {
                            "waiting for the rest of a multi-packet RCON reply"
                        }));
                    }
                }
            };
            if packet.id == marker {
                break;
            }
            if packet.id == -1 && packet.kind == SERVERDATA_AUTH_RESPONSE {
                // The server revoked our login (for example because the password changed).
                return Err(self.auth_failed());
            }
            if packet.id != id || packet.kind != SERVERDATA_RESPONSE_VALUE {
                continue;
            }
            if reply.len() + packet.body.len() > MAX_RESPONSE_SIZE {
                return Err(ProtoError::TooLarge {
                    addr: self.addr.clone(),
                    what: "RCON reply",
                    limit: MAX_RESPONSE_SIZE,
                });
            }
            reply.extend_from_slice(&packet.body);
            last_fragment = Some((Instant::now(), packet.body.len()));
            if marker_sent_at.is_none() {
                self.send(&marker_packet, deadline).await?;
                marker_sent_at = Some(Instant::now());
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    async fn authenticate(&mut self, password: &str, deadline: Instant) -> Result<()> {
        let id = self.take_id();
        let request = self.encode(id, SERVERDATA_AUTH, password.as_bytes())?;
        self.send(&request, deadline).await?;
        for _ in 0..=MAX_PACKETS_BEFORE_AUTH_REPLY {
            let packet = self
                .next_packet(
                    deadline,
                    "during RCON login (some servers do this after a wrong password)",
                )
                .await?
                .ok_or_else(|| self.timeout_error("waiting for the RCON login reply"))?;
            if packet.kind != SERVERDATA_AUTH_RESPONSE {
                // Source sends an empty SERVERDATA_RESPONSE_VALUE before the real answer.
                continue;
            }
            return match packet.id {
                -1 => Err(self.auth_failed()),
                got if got == id => Ok(()),
                got => Err(self.protocol(format!("login reply has id {got}, expected {id} or -1"))),
            };
        }
        Err(self.protocol(format!(
            "no login reply among the first {MAX_PACKETS_BEFORE_AUTH_REPLY} packets"
        )))
    }

    /// Returns the next whole packet, or `None` once `until` has passed.
    async fn next_packet(
        &mut self,
        until: Instant,
        during: &'static str,
    ) -> Result<Option<Packet>> {
        let mut chunk = [0u8; 8192];
        loop {
            match decode_packet(&self.buf) {
                Ok(Some((packet, used))) => {
                    self.buf.drain(..used);
                    return Ok(Some(packet));
                }
                Ok(None) => {}
                Err(e) => return Err(e.at(PROTO, &self.addr)),
            }
            // The buffer never exceeds one maximal packet plus one chunk, because a larger
            // size field is rejected above before we read any further.
            match tokio::time::timeout_at(until, self.stream.read(&mut chunk)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => {
                    return Err(ProtoError::Closed {
                        addr: self.addr.clone(),
                        during,
                    });
                }
                Ok(Ok(n)) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Ok(Err(source)) => {
                    return Err(ProtoError::Io {
                        addr: self.addr.clone(),
                        source,
                    });
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<()> {
        match tokio::time::timeout_at(deadline, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ProtoError::Io {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(self.timeout_error("sending an RCON request")),
        }
    }

    fn encode(&self, id: i32, kind: i32, body: &[u8]) -> Result<Vec<u8>> {
        encode_packet(id, kind, body).map_err(|e| ProtoError::InvalidInput {
            addr: self.addr.clone(),
            detail: e.0,
        })
    }

    /// Hands out positive request ids; -1 means "login failed" and 0 is avoided because
    /// some servers use it for unsolicited messages.
    fn take_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = if id >= i32::MAX - 1 { 1 } else { id + 1 };
        id
    }

    fn timeout_error(&self, what: &'static str) -> ProtoError {
        ProtoError::Timeout {
            addr: self.addr.clone(),
            what,
            after: self.timeout,
        }
    }

    fn auth_failed(&self) -> ProtoError {
        ProtoError::AuthFailed {
            proto: PROTO,
            addr: self.addr.clone(),
            hint: PASSWORD_HINT,
        }
    }

    fn protocol(&self, detail: String) -> ProtoError {
        ProtoError::Protocol {
            proto: PROTO,
            addr: self.addr.clone(),
            detail,
        }
    }
}

/// A cheaply cloneable handle to one server's RCON console.
///
/// - One connection is shared and reused; commands from all clones run one after another.
/// - The connection is opened lazily by the first command.
/// - If a reused connection fails with an I/O error (for example because the game server
///   restarted), the session reconnects once and runs the command again. A command that was
///   already received before the failure may therefore run twice; RCON offers no way to tell.
/// - A wrong password is never retried: after [`ProtoError::AuthFailed`] every call fails at
///   once with [`ProtoError::AuthCoolDown`] for the cool-down (30 s by default) without
///   touching the network, so a bad password cannot turn into a login storm.
#[derive(Clone)]
pub struct RconSession {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    addr: String,
    password: String,
    timeout: Duration,
    auth_cool_down: Duration,
    state: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    client: Option<RconClient>,
    auth_failed_at: Option<Instant>,
}

impl fmt::Debug for RconSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RconSession")
            .field("addr", &self.inner.addr)
            .field("password", &"***")
            .field("timeout", &self.inner.timeout)
            .field("auth_cool_down", &self.inner.auth_cool_down)
            .finish()
    }
}

impl RconSession {
    /// Creates a session; nothing is connected until the first command.
    pub fn new(addr: impl Into<String>, password: impl Into<String>, timeout: Duration) -> Self {
        Self::with_auth_cool_down(addr, password, timeout, DEFAULT_AUTH_COOL_DOWN)
    }

    /// Like [`new`](Self::new) with a custom cool-down after a failed login.
    pub fn with_auth_cool_down(
        addr: impl Into<String>,
        password: impl Into<String>,
        timeout: Duration,
        auth_cool_down: Duration,
    ) -> Self {
        RconSession {
            inner: Arc::new(SessionInner {
                addr: addr.into(),
                password: password.into(),
                timeout,
                auth_cool_down,
                state: Mutex::new(SessionState::default()),
            }),
        }
    }

    /// The server address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Runs one command, connecting (or reconnecting once) as needed.
    pub async fn exec(&self, cmd: &str) -> Result<String> {
        let inner = &*self.inner;
        let mut state = inner.state.lock().await;
        if let Some(failed_at) = state.auth_failed_at {
            let elapsed = failed_at.elapsed();
            if elapsed < inner.auth_cool_down {
                let left = inner.auth_cool_down - elapsed;
                return Err(ProtoError::AuthCoolDown {
                    proto: PROTO,
                    addr: inner.addr.clone(),
                    hint: PASSWORD_HINT,
                    retry_in_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                });
            }
            state.auth_failed_at = None;
        }

        // First try the connection we already have, if it is still healthy.
        if let Some(client) = state.client.as_mut().filter(|c| !c.is_broken()) {
            match client.exec(cmd).await {
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_connection_error() => {}
                Err(e) => {
                    state.client = None;
                    if matches!(e, ProtoError::AuthFailed { .. }) {
                        state.auth_failed_at = Some(Instant::now());
                    }
                    return Err(e);
                }
            }
        }

        // No (usable) connection: open a fresh one exactly once.
        state.client = None;
        let mut client =
            match RconClient::connect(&inner.addr, &inner.password, inner.timeout).await {
                Ok(client) => client,
                Err(e) => {
                    if matches!(e, ProtoError::AuthFailed { .. }) {
                        state.auth_failed_at = Some(Instant::now());
                    }
                    return Err(e);
                }
            };
        let result = client.exec(cmd).await;
        match &result {
            Ok(_) => state.client = Some(client),
            Err(ProtoError::AuthFailed { .. }) => state.auth_failed_at = Some(Instant::now()),
            Err(_) => {}
        }
        result
    }

    /// Closes the shared connection (the next command reconnects) and forgets any cool-down.
    pub async fn reset(&self) {
        let mut state = self.inner.state.lock().await;
        state.client = None;
        state.auth_failed_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_spec_example() {
        // An auth packet with id 0 and password "passwrd" is 17 bytes long (size field 17).
        let bytes = encode_packet(0, SERVERDATA_AUTH, b"passwrd").unwrap();
        assert_eq!(bytes.len(), 21);
        assert_eq!(&bytes[..4], &17i32.to_le_bytes());
        let (packet, used) = decode_packet(&bytes).unwrap().unwrap();
        assert_eq!(used, 21);
        assert_eq!(packet.body, b"passwrd");
    }

    #[test]
    fn rejects_bad_sizes_and_waits_for_more() {
        assert_eq!(decode_packet(&[1, 0]).unwrap(), None);
        assert!(decode_packet(&9i32.to_le_bytes()).is_err());
        assert!(decode_packet(&(-5i32).to_le_bytes()).is_err());
        assert!(decode_packet(b"HTTP/1.1 400").is_err());
        let full = encode_packet(7, 0, b"hello").unwrap();
        assert_eq!(decode_packet(&full[..full.len() - 1]).unwrap(), None);
    }

    #[test]
    fn accepts_a_single_terminator_and_the_source_trailer() {
        let mut one_nul = 10i32.to_le_bytes().to_vec();
        one_nul.extend(5i32.to_le_bytes());
        one_nul.extend(0i32.to_le_bytes());
        one_nul.extend([b'x', 0]);
        let (packet, used) = decode_packet(&one_nul).unwrap().unwrap();
        assert_eq!((packet.body.as_slice(), used), (&b"x"[..], 14));
        let trailer = encode_packet(9, 0, &[0, 1, 0, 0]).unwrap();
        let (packet, _) = decode_packet(&trailer).unwrap().unwrap();
        assert_eq!(packet.id, 9);
    }

    #[test]
    fn session_debug_hides_the_password() {
        let session = RconSession::new("127.0.0.1:1", "hunter2", Duration::from_secs(1));
        let text = format!("{session:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
