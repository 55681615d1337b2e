//! Minecraft Java Server List Ping over TCP: handshake, status JSON, ping/pong.
//!
//! Packets are `VarInt length, VarInt id, data`; strings are a VarInt byte length then UTF-8;
//! the ping payload is a big-endian i64. Legacy (pre-1.7) `0xFE` pings are simply closed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::console;
use crate::world::{PROTOCOL_VERSION, VERSION_NAME, World};

/// A handshake is at most ~270 bytes (the address is capped at 255 chars); anything larger is
/// not a status client.
const MAX_PACKET: usize = 1024;
/// Status pings are one round trip; a client idling longer is dropped.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Real servers show at most 12 names in the hover list.
const MAX_SAMPLE: usize = 12;

/// Accepts status clients forever; each connection gets its own task.
pub async fn serve(listener: TcpListener, world: Arc<World>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let world = world.clone();
                tokio::spawn(async move {
                    // Errors only mean a broken or hostile client: drop the connection quietly.
                    let _ = tokio::time::timeout(SESSION_TIMEOUT, session(stream, &world)).await;
                });
            }
            Err(e) => {
                console::warn(&format!("Server List Ping accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(stream: TcpStream, world: &World) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    match stream.fill_buf().await?.first() {
        None | Some(0xFE) => return Ok(()),
        Some(_) => {}
    }
    let (id, handshake) = read_packet(&mut stream).await?;
    if id != 0 {
        return Err(invalid("expected a handshake"));
    }
    // `&[u8]` is an AsyncRead, so the fields are parsed with the same readers as the stream.
    let mut hs = &handshake[..];
    let _protocol = read_varint(&mut hs).await?;
    let _address = read_string(&mut hs, 255 * 4).await?;
    let _port = hs.read_u16().await?;
    if read_varint(&mut hs).await? != 1 {
        // Next state 2 is login, which this test double does not implement.
        return Ok(());
    }
    loop {
        let (id, payload) = read_packet(&mut stream).await?;
        match id {
            0 => {
                let mut data = Vec::new();
                write_string(&mut data, &status_json(world));
                write_packet(&mut stream, 0, &data).await?;
            }
            1 if payload.len() == 8 => {
                // Pong echoes the client's payload; the exchange is over after it.
                write_packet(&mut stream, 1, &payload).await?;
                return Ok(());
            }
            _ => return Err(invalid("unexpected status packet")),
        }
    }
}

fn status_json(world: &World) -> String {
    let players = world.players();
    let sample: Vec<_> = players
        .iter()
        .take(MAX_SAMPLE)
        .map(|p| json!({ "name": p.name, "id": p.uuid() }))
        .collect();
    json!({
        "version": { "name": format!("{VERSION_NAME} (demo)"), "protocol": PROTOCOL_VERSION },
        "players": { "max": world.max_players, "online": players.len(), "sample": sample },
        "description": { "text": world.name },
        "enforcesSecureChat": false,
    })
    .to_string()
}

/// Reads one framed packet, returning its id and the data after the id.
async fn read_packet<R: AsyncRead + Unpin>(rd: &mut R) -> io::Result<(i32, Vec<u8>)> {
    let len = read_varint(rd).await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (1..=MAX_PACKET).contains(l))
        .ok_or_else(|| invalid("bad packet length"))?;
    let mut buf = vec![0; len];
    rd.read_exact(&mut buf).await?;
    let mut rest = &buf[..];
    let id = read_varint(&mut rest).await?;
    Ok((id, rest.to_vec()))
}

async fn write_packet<W: AsyncWriteExt + Unpin>(
    wr: &mut W,
    id: i32,
    data: &[u8],
) -> io::Result<()> {
    let mut body = Vec::with_capacity(data.len() + 5);
    write_varint(&mut body, id);
    body.extend_from_slice(data);
    let len = i32::try_from(body.len()).map_err(|_| invalid("packet too long"))?;
    let mut framed = Vec::with_capacity(body.len() + 5);
    write_varint(&mut framed, len);
    framed.extend_from_slice(&body);
    wr.write_all(&framed).await?;
    wr.flush().await
}

async fn read_varint<R: AsyncRead + Unpin>(rd: &mut R) -> io::Result<i32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = rd.read_u8().await?;
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value as i32);
        }
    }
    Err(invalid("VarInt longer than 5 bytes"))
}

fn write_varint(out: &mut Vec<u8>, value: i32) {
    // VarInts encode the two's-complement bits, so negative numbers take all 5 bytes.
    let mut v = value as u32;
    loop {
        if v & !0x7f == 0 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Status JSON is far below i32::MAX bytes.
    write_varint(out, i32::try_from(s.len()).unwrap_or(i32::MAX));
    out.extend_from_slice(s.as_bytes());
}

async fn read_string<R: AsyncRead + Unpin>(rd: &mut R, max: usize) -> io::Result<String> {
    let len = usize::try_from(read_varint(rd).await?)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| invalid("bad string length"))?;
    let mut buf = vec![0; len];
    rd.read_exact(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn varint_round_trip() {
        for v in [
            0,
            1,
            127,
            128,
            255,
            25565,
            2_097_151,
            i32::MAX,
            -1,
            i32::MIN,
        ] {
            let mut buf = Vec::new();
            write_varint(&mut buf, v);
            assert_eq!(read_varint(&mut &buf[..]).await.unwrap(), v, "{v}");
        }
        assert!(read_varint(&mut &[0xff; 6][..]).await.is_err());
        assert!(read_varint(&mut &[0x80][..]).await.is_err());
    }
}
