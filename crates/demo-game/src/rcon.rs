//! Source RCON server over TCP: auth, commands with multi-packet replies, and the empty-packet mirror.
//!
//! Wire format (Valve's "Source RCON Protocol"): little-endian i32 size, i32 id, i32 type,
//! body, two NUL bytes; `size` counts everything after itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

use crate::commands::{self, Action};
use crate::world::World;
use crate::{Event, console};

const SERVERDATA_AUTH: i32 = 3;
const SERVERDATA_AUTH_RESPONSE: i32 = 2;
const SERVERDATA_EXECCOMMAND: i32 = 2;
const SERVERDATA_RESPONSE_VALUE: i32 = 0;
/// Largest body in either direction; longer replies are split like real servers do.
const MAX_BODY: usize = 4096;
/// id + type + two NULs.
const OVERHEAD: usize = 10;

struct Packet {
    id: i32,
    kind: i32,
    body: Vec<u8>,
}

/// Accepts RCON clients forever; each connection gets its own task.
pub async fn serve(
    listener: TcpListener,
    world: Arc<World>,
    password: String,
    events: UnboundedSender<Event>,
) {
    let password = Arc::new(password);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Replies are written in bursts that wait on the client's answer (the end
                // marker); Nagle's algorithm would hold each burst for the client's delayed
                // ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let (world, password, events) = (world.clone(), password.clone(), events.clone());
                tokio::spawn(async move {
                    if let Err(e) = session(stream, peer, &world, &password, &events).await {
                        console::warn(&format!("RCON client {peer} disconnected: {e}"));
                    }
                });
            }
            // Typically out of file descriptors: back off instead of spinning.
            Err(e) => {
                console::warn(&format!("RCON accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    world: &World,
    password: &str,
    events: &UnboundedSender<Event>,
) -> io::Result<()> {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let mut authed = false;
    while let Some(packet) = read_packet(&mut rd).await? {
        match packet.kind {
            SERVERDATA_AUTH => {
                authed = packet.body == password.as_bytes();
                // Source servers send an empty RESPONSE_VALUE before the AUTH_RESPONSE;
                // clients written against SRCDS expect both.
                write_packet(&mut wr, packet.id, SERVERDATA_RESPONSE_VALUE, b"").await?;
                let id = if authed { packet.id } else { -1 };
                write_packet(&mut wr, id, SERVERDATA_AUTH_RESPONSE, b"").await?;
                wr.flush().await?;
                if !authed {
                    console::warn(&format!("RCON authentication failed from {peer}"));
                }
            }
            _ if !authed => return Err(invalid("request before successful authentication")),
            SERVERDATA_EXECCOMMAND => {
                let line = String::from_utf8_lossy(&packet.body);
                let outcome = commands::run(world, &line);
                if outcome.action == Some(Action::Crash) {
                    // A crash does not get to answer, just like a real one.
                    let _ = events.send(Event::Crash("Manually triggered debug crash".into()));
                    return Ok(());
                }
                for chunk in chunks(&outcome.text) {
                    write_packet(&mut wr, packet.id, SERVERDATA_RESPONSE_VALUE, chunk).await?;
                }
                wr.flush().await?;
                if outcome.action == Some(Action::Stop) {
                    // After the reply is flushed, so the client sees it before the exit.
                    let _ = events.send(Event::Stop);
                }
            }
            SERVERDATA_RESPONSE_VALUE => {
                // The "mirror" that lets clients find the end of a multi-packet reply: echo the
                // empty packet, then send one whose body is 00 01 00 00, as SRCDS does.
                write_packet(&mut wr, packet.id, SERVERDATA_RESPONSE_VALUE, b"").await?;
                write_packet(&mut wr, packet.id, SERVERDATA_RESPONSE_VALUE, &[0, 1, 0, 0]).await?;
                wr.flush().await?;
            }
            other => return Err(invalid(&format!("unknown packet type {other}"))),
        }
    }
    Ok(())
}

/// Splits a reply into bodies of at most `MAX_BODY` bytes, on UTF-8 boundaries; an empty reply
/// is still one (empty) packet so the client gets an answer.
fn chunks(text: &str) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let mut end = rest.len().min(MAX_BODY);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head.as_bytes());
        rest = tail;
        if rest.is_empty() {
            return out;
        }
    }
}

/// Reads one packet; `None` on a clean end of stream. Sizes outside the protocol's range are
/// errors, which close the connection.
async fn read_packet<R: AsyncReadExt + Unpin>(rd: &mut R) -> io::Result<Option<Packet>> {
    let size = match rd.read_i32_le().await {
        Ok(size) => size,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|s| (OVERHEAD..=OVERHEAD + MAX_BODY).contains(s))
        .ok_or_else(|| invalid(&format!("bad packet size {size}")))?;
    let mut buf = vec![0; size];
    rd.read_exact(&mut buf).await?;
    let id = i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    // The body ends at its NUL terminator; anything after it (the second NUL) is padding.
    let body = &buf[8..];
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    Ok(Some(Packet {
        id,
        kind,
        body: body[..end].to_vec(),
    }))
}

async fn write_packet<W: AsyncWrite + Unpin>(
    wr: &mut W,
    id: i32,
    kind: i32,
    body: &[u8],
) -> io::Result<()> {
    // The body never exceeds MAX_BODY, so the size always fits.
    let size = i32::try_from(body.len() + OVERHEAD).map_err(|_| invalid("reply too long"))?;
    wr.write_all(&size.to_le_bytes()).await?;
    wr.write_all(&id.to_le_bytes()).await?;
    wr.write_all(&kind.to_le_bytes()).await?;
    wr.write_all(body).await?;
    wr.write_all(&[0, 0]).await
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_at_4096_and_keep_utf8_whole() {
        assert_eq!(chunks("").len(), 1);
        let text = "x".repeat(10_000);
        let parts = chunks(&text);
        assert_eq!(
            parts.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [4096, 4096, 1808]
        );
        let text = format!("{}é", "x".repeat(4095));
        let parts = chunks(&text);
        assert_eq!(parts[0].len(), 4095);
        assert_eq!(parts[1], "é".as_bytes());
    }
}
