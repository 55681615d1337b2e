//! End-to-end tests of the network listeners (RCON, Server List Ping, A2S, REST) with minimal
//! test-side protocol encoders, written independently of the server code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

use base64::Engine;
use common::{Server, TIMEOUT};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Source RCON

fn rcon_connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect RCON");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

fn rcon_send(stream: &mut TcpStream, id: i32, kind: i32, body: &str) {
    let mut packet = Vec::new();
    packet.extend_from_slice(&(body.len() as i32 + 10).to_le_bytes());
    packet.extend_from_slice(&id.to_le_bytes());
    packet.extend_from_slice(&kind.to_le_bytes());
    packet.extend_from_slice(body.as_bytes());
    packet.extend_from_slice(&[0, 0]);
    stream.write_all(&packet).expect("send RCON packet");
}

/// Reads one packet: (id, type, body).
fn rcon_read(stream: &mut TcpStream) -> (i32, i32, Vec<u8>) {
    let mut size = [0; 4];
    stream.read_exact(&mut size).expect("read size");
    let size = i32::from_le_bytes(size) as usize;
    assert!((10..=4106).contains(&size), "packet size {size}");
    let mut rest = vec![0; size];
    stream.read_exact(&mut rest).expect("read packet");
    assert_eq!(&rest[size - 2..], [0, 0], "two NUL terminators");
    let id = i32::from_le_bytes(rest[0..4].try_into().unwrap());
    let kind = i32::from_le_bytes(rest[4..8].try_into().unwrap());
    (id, kind, rest[8..size - 2].to_vec())
}

/// Authenticates; returns the id of the AUTH_RESPONSE.
fn rcon_auth(stream: &mut TcpStream, id: i32, password: &str) -> i32 {
    rcon_send(stream, id, 3, password);
    let (empty_id, kind, body) = rcon_read(stream);
    assert_eq!(
        (empty_id, kind, body.len()),
        (id, 0, 0),
        "empty RESPONSE_VALUE first"
    );
    let (auth_id, kind, _) = rcon_read(stream);
    assert_eq!(kind, 2, "then AUTH_RESPONSE");
    auth_id
}

fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 1];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn rcon_auth_commands_and_multi_packet_replies() {
    let mut s = Server::start_ready(&["--rcon-port", "0", "--rcon-password", "hunter2"]);
    let line = s.wait_line_seen("RCON running on 127.0.0.1:");
    let port = s.port("rcon");
    assert!(line.ends_with(&format!("127.0.0.1:{port}")), "{line}");

    // Wrong password: AUTH_RESPONSE id -1.
    let mut bad = rcon_connect(port);
    assert_eq!(rcon_auth(&mut bad, 7, "nope"), -1);

    // Commands before authentication close the connection.
    let mut early = rcon_connect(port);
    rcon_send(&mut early, 1, 2, "list");
    assert!(is_closed(&mut early));

    let mut c = rcon_connect(port);
    assert_eq!(rcon_auth(&mut c, 42, "hunter2"), 42);
    rcon_send(&mut c, 43, 2, "list");
    let (id, kind, body) = rcon_read(&mut c);
    assert_eq!((id, kind), (43, 0));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "There are 2 of a max of 20 players online: Steve, Alex"
    );

    // dump 10000 arrives split; the empty-packet mirror marks the end.
    rcon_send(&mut c, 44, 2, "dump 10000");
    rcon_send(&mut c, 45, 0, "");
    let mut body = Vec::new();
    let mut packets = 0;
    let terminator = loop {
        let (id, kind, chunk) = rcon_read(&mut c);
        assert_eq!(kind, 0);
        if id != 44 {
            break (id, chunk);
        }
        assert!(chunk.len() <= 4096);
        packets += 1;
        body.extend_from_slice(&chunk);
    };
    assert_eq!(body.len(), 10_000);
    assert!(body.is_ascii());
    assert!(packets >= 3, "{packets} packets");
    assert_eq!(terminator, (45, Vec::new()));
    assert_eq!(rcon_read(&mut c), (45, 0, vec![0, 1, 0, 0]));

    // The same handler as the console: output shows up there too.
    rcon_send(&mut c, 46, 2, "say via rcon");
    assert_eq!(rcon_read(&mut c).2, b"[Server] via rcon");
    s.wait_line("[Server] via rcon");

    // An oversized packet closes only that connection.
    let mut evil = rcon_connect(port);
    evil.write_all(&100_000i32.to_le_bytes()).unwrap();
    assert!(is_closed(&mut evil));

    // EOF on stdin does not stop the server; RCON `stop` does, after replying.
    s.close_stdin();
    rcon_send(&mut c, 47, 2, "list");
    assert_eq!(rcon_read(&mut c).0, 47);
    rcon_send(&mut c, 48, 2, "stop");
    assert_eq!(rcon_read(&mut c), (48, 0, b"Stopping the server".to_vec()));
    assert_eq!(s.wait_exit().code(), Some(0));
    assert!(s.path("saved").exists());
}

// ---------------------------------------------------------------------------------------------
// Minecraft Server List Ping

fn varint(mut v: u32, out: &mut Vec<u8>) {
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn read_varint(rd: &mut impl Read) -> u32 {
    let mut v = 0;
    for i in 0..5 {
        let mut b = [0];
        rd.read_exact(&mut b).expect("read varint");
        v |= u32::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long")
}

fn mc_packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(data.len() as u32 + 1, &mut out);
    out.push(id);
    out.extend_from_slice(data);
    out
}

/// Reads one packet: (id, data). Ids here are single-byte.
fn mc_read(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let len = read_varint(stream) as usize;
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("read packet");
    (buf[0], buf[1..].to_vec())
}

#[test]
fn server_list_ping_status_and_pong() {
    let mut s = Server::start_ready(&["--slp-port", "0", "--players", "3", "--max-players", "10"]);
    s.wait_line_seen("Server List Ping listening on 127.0.0.1:");
    let port = s.port("slp");
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();

    let mut handshake = Vec::new();
    varint(767, &mut handshake);
    varint(9, &mut handshake);
    handshake.extend_from_slice(b"localhost");
    handshake.extend_from_slice(&port.to_be_bytes());
    varint(1, &mut handshake);
    c.write_all(&mc_packet(0, &handshake)).unwrap();
    c.write_all(&mc_packet(0, &[])).unwrap();
    let (id, data) = mc_read(&mut c);
    assert_eq!(id, 0);
    let mut data = &data[..];
    let len = read_varint(&mut data) as usize;
    assert_eq!(len, data.len(), "one JSON string fills the packet");
    let json = data;
    let status: Value = serde_json::from_slice(json).expect("status JSON");
    assert_eq!(status["players"]["online"], 3);
    assert_eq!(status["players"]["max"], 10);
    assert_eq!(status["players"]["sample"][2]["name"], "Player3");
    assert_eq!(status["version"]["protocol"], 767);
    assert_eq!(status["description"]["text"], "Demo world");

    let payload = 0x0123_4567_89ab_cdef_i64;
    c.write_all(&mc_packet(1, &payload.to_be_bytes())).unwrap();
    assert_eq!(mc_read(&mut c), (1, payload.to_be_bytes().to_vec()));

    // A legacy 0xFE ping is just closed.
    let mut legacy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    legacy.set_read_timeout(Some(TIMEOUT)).unwrap();
    legacy.write_all(&[0xFE, 0x01]).unwrap();
    assert!(is_closed(&mut legacy));
}

// ---------------------------------------------------------------------------------------------
// Steam A2S

fn a2s_query(socket: &UdpSocket, request: &[u8]) -> Vec<u8> {
    socket.send(request).expect("send");
    let mut buf = [0; 1400];
    let n = socket.recv(&mut buf).expect("A2S reply");
    assert_eq!(buf[..4], [0xFF; 4], "single-packet header");
    buf[4..n].to_vec()
}

/// Reads a NUL-terminated string at `*pos`.
fn cstr(data: &[u8], pos: &mut usize) -> String {
    let end = *pos + data[*pos..].iter().position(|&b| b == 0).expect("NUL");
    let s = String::from_utf8(data[*pos..end].to_vec()).unwrap();
    *pos = end + 1;
    s
}

#[test]
fn a2s_info_and_players_with_challenge() {
    let mut s = Server::start_ready(&["--query-port", "0", "--name", "Test Realm"]);
    s.wait_line_seen("Query (A2S) listening on 127.0.0.1:");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    socket.connect(("127.0.0.1", s.port("query"))).unwrap();

    let mut info_req = b"\xFF\xFF\xFF\xFFTSource Engine Query\0".to_vec();
    let reply = a2s_query(&socket, &info_req);
    assert_eq!((reply[0], reply.len()), (0x41, 5), "S2C_CHALLENGE");
    info_req.extend_from_slice(&reply[1..5]);
    let info = a2s_query(&socket, &info_req);
    assert_eq!(info[0], 0x49);
    let mut pos = 2; // header byte, protocol byte
    assert_eq!(cstr(&info, &mut pos), "Test Realm");
    let _map = cstr(&info, &mut pos);
    let _folder = cstr(&info, &mut pos);
    let _game = cstr(&info, &mut pos);
    pos += 2; // app id
    assert_eq!(
        &info[pos..pos + 4],
        [2, 20, 0, b'd'],
        "players, max, bots, type"
    );
    assert!([b'l', b'w', b'm'].contains(&info[pos + 4]));
    pos += 7;
    assert_eq!(cstr(&info, &mut pos), "1.21");

    let reply = a2s_query(&socket, b"\xFF\xFF\xFF\xFFU\xFF\xFF\xFF\xFF");
    assert_eq!(reply[0], 0x41);
    let mut player_req = b"\xFF\xFF\xFF\xFFU".to_vec();
    player_req.extend_from_slice(&reply[1..5]);
    let players = a2s_query(&socket, &player_req);
    assert_eq!((players[0], players[1]), (0x44, 2));
    let mut pos = 3; // header, count, first index
    assert_eq!(cstr(&players, &mut pos), "Steve");
    pos += 4;
    let duration = f32::from_le_bytes(players[pos..pos + 4].try_into().unwrap());
    assert!(duration >= 0.0);
    pos += 5;
    assert_eq!(cstr(&players, &mut pos), "Alex");

    // A wrong challenge gets a fresh challenge, not data.
    let reply = a2s_query(&socket, b"\xFF\xFF\xFF\xFFU\x00\x00\x00\x00");
    assert_eq!(reply[0], 0x41);
}

// ---------------------------------------------------------------------------------------------
// Palworld-style REST

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(port: u16, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(creds) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
        req.push_str(&format!("Authorization: Basic {encoded}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp)
        .expect("response (Connection: close)");
    let (head, body) = resp.split_once("\r\n\r\n").expect("head/body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}

#[test]
fn rest_api_with_basic_auth() {
    let mut s = Server::start_ready(&["--rest-port", "0", "--rest-password", "pw"]);
    s.wait_line_seen("REST API listening on 127.0.0.1:");
    let port = s.port("rest");
    let auth = Some("admin:pw");

    assert_eq!(http(port, "GET", "/v1/api/info", None, "").0, 401);
    assert_eq!(
        http(port, "GET", "/v1/api/info", Some("admin:bad"), "").0,
        401
    );
    assert_eq!(http(port, "GET", "/v1/api/nope", auth, "").0, 404);
    assert_eq!(http(port, "DELETE", "/v1/api/info", auth, "").0, 405);

    let (status, body) = http(port, "GET", "/v1/api/info", auth, "");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["servername"], "Demo world");
    assert!(info["version"].is_string() && info["worldguid"].is_string());

    let (status, body) = http(port, "GET", "/v1/api/players", auth, "");
    assert_eq!(status, 200);
    let players: Value = serde_json::from_str(&body).unwrap();
    let players = players["players"].as_array().expect("players array");
    assert_eq!(players.len(), 2);
    for key in [
        "name",
        "accountName",
        "playerId",
        "userId",
        "ip",
        "ping",
        "location_x",
    ] {
        assert!(!players[0][key].is_null(), "{key}");
    }

    let (_, body) = http(port, "GET", "/v1/api/metrics", auth, "");
    let metrics: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            metrics["currentplayernum"].as_u64(),
            metrics["maxplayernum"].as_u64()
        ),
        (Some(2), Some(20))
    );
    assert_eq!(metrics["serverfps"], 20);

    let announce = r#"{"message":"hello pals"}"#;
    assert_eq!(
        http(port, "POST", "/v1/api/announce", auth, announce).0,
        200
    );
    s.wait_line("[Server] hello pals");
    assert_eq!(
        http(port, "POST", "/v1/api/announce", auth, "not json").0,
        400
    );

    assert_eq!(http(port, "POST", "/v1/api/save", auth, "").0, 200);
    assert!(s.path("saved").exists());

    // Garbage instead of HTTP gets a 400 and the server keeps going.
    let mut junk = TcpStream::connect(("127.0.0.1", port)).unwrap();
    junk.set_read_timeout(Some(TIMEOUT)).unwrap();
    junk.write_all(b"\x00\x01\x02\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = junk.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");

    let shutdown = r#"{"waittime":0,"message":"bye"}"#;
    assert_eq!(
        http(port, "POST", "/v1/api/shutdown", auth, shutdown).0,
        200
    );
    s.wait_line("[Server] bye");
    assert_eq!(s.wait_exit().code(), Some(0));
}
