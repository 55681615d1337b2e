//! Minecraft Java Edition Server List Ping: VarInt codec, status decoding and [`ping`].
//!
//! The exchange is: handshake (next state 1), status request, JSON status response, then a
//! ping carrying an opaque 8-byte value that the server echoes in a pong. Every packet is
//! framed as `VarInt length` + `VarInt packet id` + payload. Lengths are checked against
//! [`MAX_STATUS_JSON`] before anything is allocated.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::{DecodeError, ProtoError, Result};
use crate::net;

/// A VarInt never takes more than five bytes.
pub const MAX_VARINT_LEN: usize = 5;
/// Largest status JSON we accept (the server's own limit is 32767 characters, which can be
/// up to ~128 KiB of UTF-8; the margin covers modded servers with large favicons).
pub const MAX_STATUS_JSON: usize = 1024 * 1024;
/// Largest frame we read: the JSON plus packet id and length prefix.
const MAX_FRAME: usize = MAX_STATUS_JSON + 16;
/// Protocol number sent in the handshake; -1 is the convention for "just asking".
const HANDSHAKE_PROTOCOL: i32 = -1;
/// Nesting limit when flattening chat components, so a hostile MOTD cannot recurse deeply.
const MAX_COMPONENT_DEPTH: usize = 32;
const PROTO: &str = "Server List Ping";

/// What a Minecraft server reports in the multiplayer server list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlpStatus {
    pub version_name: String,
    pub protocol: i64,
    pub players_online: u32,
    pub players_max: u32,
    /// Names from the player sample (servers show at most a dozen, often none).
    pub sample: Vec<String>,
    /// The message of the day as plain text, with formatting codes removed.
    pub motd: String,
    /// Round-trip time of the ping/pong exchange (or of the status request, if the server
    /// does not answer the ping).
    pub latency_ms: u64,
}

/// Appends the VarInt encoding of `value` (two's complement, so negatives take 5 bytes).
pub fn encode_varint(value: i32, out: &mut Vec<u8>) {
    let mut rest = value as u32;
    loop {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Decodes a VarInt at the start of `buf`: `Ok(None)` if more bytes are needed, otherwise the
/// value and the number of bytes used. More than five bytes is an error.
pub fn decode_varint(buf: &[u8]) -> Result<Option<(i32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value as i32, i + 1)));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        return Err(DecodeError::new("VarInt longer than 5 bytes"));
    }
    Ok(None)
}

/// Frames one packet: length, packet id, payload.
pub fn encode_frame(packet_id: i32, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + MAX_VARINT_LEN);
    encode_varint(packet_id, &mut body);
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(body.len() + MAX_VARINT_LEN);
    // Frames we build are tiny, so the length always fits.
    encode_varint(i32::try_from(body.len()).unwrap_or(i32::MAX), &mut out);
    out.extend(body);
    out
}

/// Appends a protocol string: its UTF-8 byte length as a VarInt, then the bytes.
pub fn encode_string(text: &str, out: &mut Vec<u8>) {
    encode_varint(i32::try_from(text.len()).unwrap_or(i32::MAX), out);
    out.extend_from_slice(text.as_bytes());
}

/// What a client says in its handshake (server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The client's protocol version.
    pub protocol: i32,
    /// The address the client connected to (virtual hosting).
    pub address: String,
    /// The port the client connected to.
    pub port: u16,
    /// 1 = status (server list ping), 2 = login, 3 = transfer.
    pub next_state: i32,
}

/// Parses a handshake packet's data (everything after the packet id 0).
pub fn parse_handshake(data: &[u8]) -> Result<Handshake, DecodeError> {
    let mut rest = data;
    let varint = |what: &str, rest: &mut &[u8]| -> Result<i32, DecodeError> {
        match decode_varint(rest)? {
            Some((v, n)) => {
                *rest = rest.get(n..).unwrap_or_default();
                Ok(v)
            }
            None => Err(DecodeError::new(format!(
                "handshake ends inside its {what}"
            ))),
        }
    };
    let protocol = varint("protocol version", &mut rest)?;
    let len = usize::try_from(varint("address length", &mut rest)?)
        .ok()
        .filter(|l| *l <= 255 * 4)
        .ok_or_else(|| DecodeError::new("handshake address length out of range"))?;
    let address = rest
        .get(..len)
        .ok_or_else(|| DecodeError::new("handshake ends inside its address"))?;
    let address = String::from_utf8_lossy(address).into_owned();
    rest = rest.get(len..).unwrap_or_default();
    let port = rest
        .get(..2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .ok_or_else(|| DecodeError::new("handshake ends inside its port"))?;
    rest = rest.get(2..).unwrap_or_default();
    let next_state = varint("next state", &mut rest)?;
    Ok(Handshake {
        protocol,
        address,
        port,
        next_state,
    })
}

/// The status response frame (packet 0 of the status state) carrying `json`.
pub fn encode_status_response(json: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(json.len() + MAX_VARINT_LEN);
    encode_string(json, &mut data);
    encode_frame(0x00, &data)
}

/// The Login Disconnect frame (packet 0 of the login state) showing `text` to the player.
pub fn encode_login_disconnect(text: &str) -> Vec<u8> {
    let json = serde_json::json!({ "text": text }).to_string();
    let mut data = Vec::with_capacity(json.len() + MAX_VARINT_LEN);
    encode_string(&json, &mut data);
    encode_frame(0x00, &data)
}

/// Builds the handshake (next state 1 = status) followed by the status request.
pub fn encode_status_request(host: &str, port: u16) -> Vec<u8> {
    // The server only echoes the host for virtual hosting; cap it like the game does.
    let host = truncate_utf8(host, 255);
    let mut payload = Vec::new();
    encode_varint(HANDSHAKE_PROTOCOL, &mut payload);
    encode_varint(i32::try_from(host.len()).unwrap_or(0), &mut payload);
    payload.extend_from_slice(host.as_bytes());
    payload.extend_from_slice(&port.to_be_bytes());
    encode_varint(1, &mut payload);
    let mut out = encode_frame(0x00, &payload);
    out.extend(encode_frame(0x00, &[]));
    out
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Decodes the body of a status-response frame (packet id 0, then a VarInt-prefixed UTF-8
/// string) into the JSON text.
pub fn decode_status_frame(frame: &[u8]) -> Result<&str, DecodeError> {
    let (packet_id, used) =
        decode_varint(frame)?.ok_or_else(|| DecodeError::new("truncated packet id"))?;
    if packet_id != 0x00 {
        return Err(DecodeError::new(format!(
            "expected status response (packet id 0), got packet id {packet_id}"
        )));
    }
    let rest = frame.get(used..).unwrap_or_default();
    let (len, used) =
        decode_varint(rest)?.ok_or_else(|| DecodeError::new("truncated string length"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_STATUS_JSON)
        .ok_or_else(|| DecodeError::new(format!("status JSON length {len} is out of range")))?;
    let text = rest
        .get(used..)
        .and_then(|r| r.get(..len))
        .ok_or_else(|| DecodeError::new("status JSON is shorter than its length prefix"))?;
    std::str::from_utf8(text).map_err(|_| DecodeError::new("status JSON is not valid UTF-8"))
}

/// Parses the status JSON. Missing fields become empty/zero because servers and proxies
/// omit different parts; only a non-object document is an error. `latency_ms` is left 0.
pub fn parse_status_json(json: &str) -> Result<SlpStatus, DecodeError> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| DecodeError::new(format!("status is not valid JSON: {e}")))?;
    if !doc.is_object() {
        return Err(DecodeError::new("status JSON is not an object"));
    }
    let count = |v: &Value| {
        v.as_u64()
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let players = &doc["players"];
    let sample = players["sample"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|p| p["name"].as_str())
                .map(strip_formatting)
                .collect()
        })
        .unwrap_or_default();
    Ok(SlpStatus {
        version_name: strip_formatting(doc["version"]["name"].as_str().unwrap_or_default()),
        protocol: doc["version"]["protocol"].as_i64().unwrap_or(0),
        players_online: count(&players["online"]),
        players_max: count(&players["max"]),
        sample,
        motd: strip_formatting(&flatten_text_component(&doc["description"])),
        latency_ms: 0,
    })
}

/// Flattens a chat component (string, `{"text", "extra"}` object or array) to its text.
pub fn flatten_text_component(component: &Value) -> String {
    let mut out = String::new();
    flatten_into(component, 0, &mut out);
    out
}

fn flatten_into(component: &Value, depth: usize, out: &mut String) {
    if depth > MAX_COMPONENT_DEPTH {
        return;
    }
    match component {
        Value::String(text) => out.push_str(text),
        Value::Array(parts) => parts.iter().for_each(|p| flatten_into(p, depth + 1, out)),
        Value::Object(map) => {
            if let Some(text) = map.get("text").and_then(Value::as_str) {
                out.push_str(text);
            } else if let Some(key) = map.get("translate").and_then(Value::as_str) {
                // Translation keys cannot be resolved without the client's language files;
                // the key itself is the most useful thing to show.
                out.push_str(key);
            }
            if let Some(extra) = map.get("extra") {
                flatten_into(extra, depth + 1, out);
            }
        }
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Removes legacy `§x` formatting codes.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '§' {
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// Asks the Minecraft server at `addr` ("host:port") for its status. `timeout` bounds the
/// whole exchange, including connecting.
pub async fn ping(addr: &str, timeout: Duration) -> Result<SlpStatus> {
    let (host, port) = net::split_host_port(addr)?;
    let deadline = Instant::now() + timeout;
    let mut conn = Conn {
        addr,
        stream: net::connect_tcp(addr, deadline, timeout).await?,
        deadline,
        timeout,
    };

    let started = Instant::now();
    conn.write(&encode_status_request(&host, port)).await?;
    let frame = conn.read_frame().await?;
    let status_rtt = started.elapsed();
    let json = decode_status_frame(&frame).map_err(|e| e.at(PROTO, addr))?;
    let mut status = parse_status_json(json).map_err(|e| e.at(PROTO, addr))?;

    // Some proxies answer the status but never the ping; the status round trip is then the
    // best latency figure we have, and the status itself is still worth returning.
    let latency = conn.ping_pong().await.unwrap_or(status_rtt);
    status.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    Ok(status)
}

struct Conn<'a> {
    addr: &'a str,
    stream: TcpStream,
    deadline: Instant,
    timeout: Duration,
}

impl Conn<'_> {
    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match tokio::time::timeout_at(self.deadline, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(self.io(source)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Reads one frame (without its length prefix), bounded by [`MAX_FRAME`].
    async fn read_frame(&mut self) -> Result<Vec<u8>> {
        match tokio::time::timeout_at(self.deadline, self.read_frame_inner()).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn read_frame_inner(&mut self) -> Result<Vec<u8>> {
        let mut prefix = Vec::with_capacity(MAX_VARINT_LEN);
        let len = loop {
            let byte = self.stream.read_u8().await.map_err(|e| self.io(e))?;
            prefix.push(byte);
            if let Some((len, _)) = decode_varint(&prefix).map_err(|e| e.at(PROTO, self.addr))? {
                break len;
            }
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| (1..=MAX_FRAME).contains(&l))
            .ok_or_else(|| {
                DecodeError::new(format!("frame length {len} is out of range")).at(PROTO, self.addr)
            })?;
        let mut frame = vec![0; len];
        self.stream
            .read_exact(&mut frame)
            .await
            .map_err(|e| self.io(e))?;
        Ok(frame)
    }

    /// Sends a ping and waits for the matching pong; returns the round-trip time.
    async fn ping_pong(&mut self) -> Result<Duration> {
        let token = 0x5741_5244_454e_u64 as i64; // any value works; the server echoes it
        let started = Instant::now();
        self.write(&encode_frame(0x01, &token.to_be_bytes()))
            .await?;
        let frame = self.read_frame().await?;
        let mut expected = vec![0x01];
        expected.extend_from_slice(&token.to_be_bytes());
        if frame != expected {
            return Err(DecodeError::new("pong does not echo the ping").at(PROTO, self.addr));
        }
        Ok(started.elapsed())
    }

    fn io(&self, source: std::io::Error) -> ProtoError {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            ProtoError::Closed {
                addr: self.addr.to_owned(),
                during: "in the middle of a Server List Ping reply",
            }
        } else {
            ProtoError::Io {
                addr: self.addr.to_owned(),
                source,
            }
        }
    }

    fn timed_out(&self) -> ProtoError {
        ProtoError::Timeout {
            addr: self.addr.to_owned(),
            what: "waiting for the Server List Ping reply",
            after: self.timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_examples_from_the_spec() {
        for (value, bytes) in [
            (0, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (25565, vec![0xdd, 0xc7, 0x01]),
            (2_147_483_647, vec![0xff, 0xff, 0xff, 0xff, 0x07]),
            (-1, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            encode_varint(value, &mut out);
            assert_eq!(out, bytes);
            assert_eq!(decode_varint(&bytes).unwrap(), Some((value, bytes.len())));
        }
        assert_eq!(decode_varint(&[0x80, 0x80]).unwrap(), None);
        assert!(decode_varint(&[0x80; 6]).is_err());
    }

    #[test]
    fn flattens_components_and_codes() {
        let doc: Value = serde_json::from_str(
            r#"{"text":"§aHello ","extra":[{"text":"big","bold":true}," world",["!"]]}"#,
        )
        .unwrap();
        assert_eq!(
            strip_formatting(&flatten_text_component(&doc)),
            "Hello big world!"
        );
        assert_eq!(strip_formatting("§4red§r plain§"), "red plain");
    }

    #[test]
    fn parses_status_leniently() {
        let status = parse_status_json(
            r#"{"version":{"name":"1.21.4","protocol":769},
                "players":{"max":20,"online":2,"sample":[{"name":"alice","id":"x"},{"name":"bob"}]},
                "description":"A §lMinecraft§r Server"}"#,
        )
        .unwrap();
        assert_eq!(status.players_online, 2);
        assert_eq!(status.players_max, 20);
        assert_eq!(status.sample, ["alice", "bob"]);
        assert_eq!(status.motd, "A Minecraft Server");
        assert_eq!(status.protocol, 769);
        assert!(parse_status_json("{}").is_ok());
        assert!(parse_status_json("[]").is_err());
    }

    #[test]
    fn server_side_handshake_and_frames() {
        let req = encode_status_request("mc.example", 25565);
        let (len, n) = decode_varint(&req).unwrap().unwrap();
        let frame = &req[n..n + len as usize];
        let (id, m) = decode_varint(frame).unwrap().unwrap();
        assert_eq!(id, 0);
        let hs = parse_handshake(&frame[m..]).unwrap();
        assert_eq!(
            hs,
            Handshake {
                protocol: HANDSHAKE_PROTOCOL,
                address: "mc.example".into(),
                port: 25565,
                next_state: 1,
            }
        );
        assert!(parse_handshake(&frame[m..frame.len() - 2]).is_err());
        let unframe = |f: &[u8]| {
            let (_, n) = decode_varint(f).unwrap().unwrap();
            f[n..].to_vec()
        };
        let status = unframe(&encode_status_response(r#"{"description":"hi"}"#));
        assert_eq!(
            decode_status_frame(&status).unwrap(),
            r#"{"description":"hi"}"#
        );
        let bye = unframe(&encode_login_disconnect("come back"));
        assert_eq!(
            decode_status_frame(&bye).unwrap(),
            r#"{"text":"come back"}"#
        );
    }
}
