//! A node's live feed, relayed by the hub: for one dashboard connection of the hub that
//! subscribed to topics of node N (`node:N:console:mc`, `node:N:programs`, …), one
//! WebSocket to N's `/api/ws` under the node's token, subscribed to the same topics on the
//! node. What the node sends comes back with `"node": "N"` added; the hub's handshake
//! messages are dropped. A lost node is reported (`{"type":"node","state":"unreachable"}`)
//! and reconnected with the house backoff until the dashboard leaves or unsubscribes.
//!
//! The connection is opened here, not by a library's connector, so the node's pinned
//! certificate (`pin.rs`) or the system's trust store applies exactly as for its HTTP
//! calls. The node stays the authority: it filters its feed by the hub's token; the hub
//! has already checked the dashboard user's own permissions when they subscribed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use super::pin::Pinned;
use super::{Fleet, Node};
use crate::seal::{self, Sealer};
use crate::store::Store;

/// The node-local topics one dashboard connection wants from one node.
pub type NodeTopics = Arc<BTreeSet<String>>;

/// Hands one message to the dashboard connection; false when its queue is full (the
/// dashboard is too slow and is being dropped).
pub type Deliver = Arc<dyn Fn(String) -> bool + Send + Sync>;

/// First wait before reconnecting to a lost node, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A node that sends nothing (not even its 20 s heartbeat ping) for this long is lost.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// Largest message taken from a node (console lines and samples are small).
const MAX_NODE_MESSAGE: usize = 1 << 20;

/// What the relay needs of the fleet, owned so the relay can outlive the request.
#[derive(Clone)]
pub struct Relay {
    store: Store,
    data_dir: PathBuf,
    timeout: Duration,
}

/// Why one connection to a node ended.
enum Ended {
    /// The dashboard left or unsubscribed.
    Stopped,
    /// The dashboard's queue is full.
    TooSlow,
    /// The node was lost; `connected` says whether it had been reached this time.
    Lost { error: String, connected: bool },
}

/// Any byte stream the WebSocket runs over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type NodeSocket = WebSocketStream<Box<dyn Io>>;

impl Fleet {
    /// The relay of node feeds for the hub's WebSocket.
    pub fn relay(&self) -> Relay {
        Relay {
            store: self.store.clone(),
            data_dir: self.data_dir.clone(),
            timeout: self.timeout,
        }
    }
}

/// A status message about the node itself, for the dashboard.
fn status(node: &str, state: &str, error: Option<&str>) -> String {
    let mut v = json!({"type": "node", "node": node, "state": state});
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v.to_string()
}

/// The node's message as the dashboard gets it: `node` added; the node's own handshake
/// (`hello`, `subscribed`, `pong`) is the hub's business and dropped.
fn relabel(node: &str, text: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object_mut()?;
    if matches!(
        obj.get("type").and_then(Value::as_str),
        Some("hello" | "subscribed" | "pong")
    ) {
        return None;
    }
    obj.insert("node".into(), Value::String(node.to_string()));
    Some(v.to_string())
}

fn op(op: &str, topics: &BTreeSet<String>) -> Message {
    Message::text(json!({"op": op, "topics": topics}).to_string())
}

impl Relay {
    /// Relays node `node`'s feed for the topics in `topics` into `deliver`, reconnecting
    /// with backoff, until `stop` is cancelled or `topics` is dropped. A dashboard too
    /// slow for the feed cancels `stop`.
    pub async fn run(
        self,
        node: String,
        mut topics: watch::Receiver<NodeTopics>,
        deliver: Deliver,
        stop: CancellationToken,
    ) {
        let mut failures = 0u32;
        loop {
            let ended = tokio::select! {
                _ = stop.cancelled() => return,
                e = self.session(&node, &mut topics, &deliver) => e,
            };
            match ended {
                Ended::Stopped => return,
                Ended::TooSlow => {
                    stop.cancel();
                    return;
                }
                Ended::Lost { error, connected } => {
                    failures = if connected { 1 } else { failures + 1 };
                    tracing::info!(node = %node, error = %error, "lost a node's live feed");
                    if !deliver(status(&node, "unreachable", Some(&error))) {
                        stop.cancel();
                        return;
                    }
                    let wait = crate::backoff::exponential(RETRY_FIRST, RETRY_MAX, failures);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// One connection to the node, from the handshake until it ends.
    async fn session(
        &self,
        node: &str,
        topics: &mut watch::Receiver<NodeTopics>,
        deliver: &Deliver,
    ) -> Ended {
        let lost = |error: String| Ended::Lost {
            error,
            connected: false,
        };
        let n = match self.store.fleet_node(node).await {
            Ok(Some(n)) => n,
            Ok(None) => {
                return lost(format!(
                    "no fleet node named '{node}'; `warden fleet list` shows the nodes"
                ));
            }
            Err(e) => return lost(format!("cannot read the fleet: {e}")),
        };
        let token = match Sealer::load(&self.data_dir, seal::FLEET).and_then(|s| s.unseal(&n.token))
        {
            Ok(t) => t,
            Err(e) => return lost(e),
        };
        let mut socket = match tokio::time::timeout(self.timeout, connect(&n, &token)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return lost(e),
            Err(_) => {
                return lost(format!(
                    "the node did not open its live feed within {} ms",
                    self.timeout.as_millis()
                ));
            }
        };
        if !deliver(status(node, "connected", None)) {
            return Ended::TooSlow;
        }
        let broke = |e: &dyn std::fmt::Display| Ended::Lost {
            error: format!("the node's live feed broke off: {e}"),
            connected: true,
        };
        let mut sent: BTreeSet<String> = BTreeSet::new();
        let mut silence = tokio::time::interval(SILENCE_LIMIT / 4);
        let mut last_heard = Instant::now();
        // The first pass subscribes to what is wanted now.
        let mut want: Option<NodeTopics> = Some(topics.borrow_and_update().clone());
        loop {
            if let Some(w) = want.take() {
                let removed: BTreeSet<String> = sent.difference(&w).cloned().collect();
                let added: BTreeSet<String> = w.difference(&sent).cloned().collect();
                for (name, set) in [("unsubscribe", &removed), ("subscribe", &added)] {
                    if !set.is_empty()
                        && let Err(e) = socket.send(op(name, set)).await
                    {
                        return broke(&e);
                    }
                }
                sent = (*w).clone();
            }
            tokio::select! {
                changed = topics.changed() => {
                    if changed.is_err() {
                        return Ended::Stopped;
                    }
                    want = Some(topics.borrow_and_update().clone());
                }
                msg = socket.next() => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(t))) => {
                            if let Some(m) = relabel(node, t.as_str())
                                && !deliver(m)
                            {
                                return Ended::TooSlow;
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                            return broke(&format!("the node closed it ({why})"));
                        }
                        // Pings are answered by the WebSocket layer; binary is not used.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return broke(&e),
                        None => return broke(&"the connection ended"),
                    }
                }
                _ = silence.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return broke(&format!(
                            "nothing came for {} s",
                            SILENCE_LIMIT.as_secs()
                        ));
                    }
                }
            }
        }
    }
}

/// Opens `GET /api/ws` on the node with its token: TCP, TLS when the node's URL is
/// `https` (its pinned certificate, or the system's trust store), then the handshake.
async fn connect(node: &Node, token: &str) -> Result<NodeSocket, String> {
    let url = Url::parse(&node.url)
        .map_err(|e| format!("the node's URL {} is not a URL: {e}", node.url))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("the node's URL {} names no host", node.url))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("the node's URL {} names no port", node.url))?;
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(format!(
                "the node's URL has scheme {other}, not http or https"
            ));
        }
    };
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let stream: Box<dyn Io> = if tls {
        let config = match &node.fingerprint {
            Some(pin) => Pinned::new(pin).client_config(),
            None => system_roots(),
        }
        .map_err(|e| format!("cannot set up TLS to the node: {e}"))?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
        let s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to the node failed: {e}"))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let scheme = if tls { "wss" } else { "ws" };
    let mut ws_url = url.clone();
    ws_url
        .set_scheme(scheme)
        .map_err(|()| format!("cannot make a WebSocket URL of {}", node.url))?;
    let ws_url = ws_url
        .join("api/ws")
        .map_err(|e| format!("cannot make a WebSocket URL of {}: {e}", node.url))?;
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("cannot make the WebSocket request: {e}"))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the node's token is not a header value".to_string())?;
    req.headers_mut().insert("authorization", bearer);
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_NODE_MESSAGE))
        .max_frame_size(Some(MAX_NODE_MESSAGE));
    let (socket, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => format!(
                "the node refused the hub's live connection (HTTP {}); check the hub's token on the node",
                resp.status().as_u16()
            ),
            e => format!("the WebSocket handshake with the node failed: {e}"),
        })?;
    Ok(socket)
}

/// TLS trusting the operating system's certificate store, with ring.
fn system_roots() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_carry_the_node_and_the_handshake_stays_behind() {
        let line = r#"{"type":"console","program":"mc","line":"hi"}"#;
        let v: Value = serde_json::from_str(&relabel("box", line).expect("kept")).expect("json");
        assert_eq!(v["node"], "box");
        assert_eq!(v["line"], "hi");
        for t in ["hello", "subscribed", "pong"] {
            assert_eq!(relabel("box", &format!(r#"{{"type":"{t}"}}"#)), None);
        }
        assert_eq!(relabel("box", "not json"), None);
        let s: Value =
            serde_json::from_str(&status("box", "unreachable", Some("gone"))).expect("json");
        assert_eq!(
            s,
            json!({"type":"node","node":"box","state":"unreachable","error":"gone"})
        );
    }
}
