//! Palworld-style REST API (`/v1/api/...`, HTTP basic auth as user "admin") on a tiny HTTP/1.1 handler.
//!
//! Hand-written on purpose: this is a test double that serves six fixed routes, one request per
//! connection (`Connection: close`), with no chunked bodies or keep-alive. An HTTP framework
//! would cost more build time and code surface than the whole fake server.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

use crate::world::{VERSION_NAME, World, hash64};
use crate::{Event, console};

const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 64 * 1024;
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted shutdown delay (one hour), so a typo cannot park the server for days.
const MAX_WAIT_SECS: u64 = 3600;

struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    body: Option<Value>,
}

impl Response {
    fn json(body: Value) -> Response {
        Response {
            status: 200,
            body: Some(body),
        }
    }
    fn ok() -> Response {
        Response {
            status: 200,
            body: None,
        }
    }
    fn error(status: u16, msg: &str) -> Response {
        Response {
            status,
            body: Some(json!({ "error": msg })),
        }
    }
}

/// Everything a request handler needs.
struct Ctx {
    world: Arc<World>,
    /// The only accepted `Authorization` credentials, "admin:PASSWORD".
    credentials: String,
    events: UnboundedSender<Event>,
}

/// Accepts HTTP clients forever; each connection gets its own task.
pub async fn serve(
    listener: TcpListener,
    world: Arc<World>,
    password: String,
    events: UnboundedSender<Event>,
) {
    let ctx = Arc::new(Ctx {
        world,
        credentials: format!("admin:{password}"),
        events,
    });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    // Errors only concern this client; its connection is simply dropped.
                    let _ = tokio::time::timeout(SESSION_TIMEOUT, session(stream, &ctx)).await;
                });
            }
            Err(e) => {
                console::warn(&format!("REST API accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(mut stream: TcpStream, ctx: &Ctx) -> io::Result<()> {
    let response = match read_request(&mut stream).await {
        Ok(req) => handle(&req, ctx),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Response::error(400, &e.to_string()),
        Err(e) => return Err(e),
    };
    write_response(&mut stream, &response).await
}

fn handle(req: &Request, ctx: &Ctx) -> Response {
    if !authorized(req.authorization.as_deref(), &ctx.credentials) {
        return Response::error(401, "Unauthorized");
    }
    let world = &ctx.world;
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/api/info") => Response::json(json!({
            "version": format!("v{VERSION_NAME}-demo"),
            "servername": world.name,
            "description": "A fake game server for warden",
            "worldguid": format!("{:016X}{:016X}", hash64(3, &world.name), hash64(4, &world.name)),
        })),
        ("GET", "/v1/api/players") => {
            let players: Vec<Value> = world
                .players()
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let h = hash64(5, &p.name);
                    json!({
                        "name": p.name,
                        "accountName": p.name,
                        "playerId": format!("{h:016X}{:016X}", hash64(6, &p.name)),
                        "userId": format!("steam_7656119{:010}", h % 10_000_000_000),
                        "ip": "127.0.0.1",
                        "ping": 20.0 + i as f64,
                        "location_x": 1000.0 * i as f64,
                        "location_y": 250.0 * i as f64,
                        "level": 1 + i,
                        "building_count": i * 4,
                    })
                })
                .collect();
            Response::json(json!({ "players": players }))
        }
        ("GET", "/v1/api/metrics") => {
            let uptime = world.started.elapsed().as_secs();
            Response::json(json!({
                "serverfps": world.tps,
                "currentplayernum": world.players().len(),
                "serverframetime": 1000.0 / f64::from(world.tps),
                "maxplayernum": world.max_players,
                "uptime": uptime,
                // A game day is 20 real minutes, as in Minecraft.
                "days": uptime / 1200 + 1,
            }))
        }
        ("POST", "/v1/api/announce") => match json_field(&req.body, "message") {
            Some(Value::String(msg)) => {
                console::info(&format!("[Server] {msg}"));
                Response::ok()
            }
            _ => Response::error(400, "body must be {\"message\": string}"),
        },
        ("POST", "/v1/api/save") => match world.save() {
            Ok(_) => {
                console::info("Saved the game");
                Response::ok()
            }
            Err(e) => Response::error(500, &format!("save failed: {e}")),
        },
        ("POST", "/v1/api/shutdown") => {
            let Some(wait) = json_field(&req.body, "waittime").and_then(|v| v.as_u64()) else {
                return Response::error(400, "body must be {\"waittime\": seconds, \"message\"?}");
            };
            let wait = wait.min(MAX_WAIT_SECS);
            let msg = match json_field(&req.body, "message") {
                Some(Value::String(m)) => m,
                _ => format!("Server will shut down in {wait} seconds"),
            };
            console::info(&format!("[Server] {msg}"));
            let events = ctx.events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                let _ = events.send(Event::Stop);
            });
            Response::ok()
        }
        (
            _,
            "/v1/api/info" | "/v1/api/players" | "/v1/api/metrics" | "/v1/api/announce"
            | "/v1/api/save" | "/v1/api/shutdown",
        ) => Response::error(405, "Method Not Allowed"),
        _ => Response::error(404, "Not Found"),
    }
}

fn authorized(header: Option<&str>, credentials: &str) -> bool {
    let Some((scheme, encoded)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .is_ok_and(|decoded| decoded == credentials.as_bytes())
}

fn json_field(body: &[u8], key: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    value.get_mut(key).map(Value::take)
}

/// Reads the head (up to the blank line) and a `Content-Length` body. Anything this handler
/// does not understand is `InvalidData`, answered with 400.
async fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("only HTTP/1.x is supported"));
    }
    let mut content_length = 0;
    let mut authorization = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_BODY)
                .ok_or_else(|| invalid("bad or too large Content-Length"))?;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("chunked bodies are not supported"));
        }
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() > content_length {
        return Err(invalid("body longer than Content-Length"));
    }
    let mut rest = vec![0; content_length - body.len()];
    stream.read_exact(&mut rest).await?;
    body.extend_from_slice(&rest);
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok(Request {
        method: method.to_string(),
        path,
        authorization,
        body,
    })
}

async fn write_response(stream: &mut TcpStream, resp: &Response) -> io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let body = resp.body.as_ref().map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        body.len()
    );
    if resp.body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if resp.status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"palworld\"\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let creds = "admin:pw";
        assert!(authorized(Some("Basic YWRtaW46cHc="), creds));
        assert!(authorized(Some("basic  YWRtaW46cHc= "), creds));
        assert!(!authorized(Some("Basic YWRtaW46eA=="), creds));
        assert!(!authorized(Some("Bearer YWRtaW46cHc="), creds));
        assert!(!authorized(Some("Basic !!!"), creds));
        assert!(!authorized(None, creds));
    }
}
