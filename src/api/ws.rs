//! The live hub, `GET /api/ws`: one WebSocket per dashboard tab, carrying the bus events
//! the client subscribed to (program states, event-log entries, console lines, samples).
//!
//! Protocol (JSON text frames):
//! - client → server: `{"op":"subscribe","topics":[…]}`, `{"op":"unsubscribe","topics":[…]}`,
//!   `{"op":"ping"}`. Topics: `programs` (state changes), `events` (event-log entries as
//!   they happen), `samples` (every program's resource samples), `samples:NAME`,
//!   `console:NAME`; on a hub, `node:NODE:TOPIC` for any of those topics on fleet node
//!   NODE (relayed by `fleet::live`: the node's messages with `"node": NODE` added, and
//!   `{"type":"node","node":NODE,"state":"connected"|"unreachable"}` as the relay
//!   reaches or loses the node; it reconnects by itself).
//! - server → client: `hello` (who you are, the heartbeat interval), `subscribed` (the full
//!   topic set after a change), `pong`, `error`, `lagged` (events were missed: refetch over
//!   REST), and the bus events themselves as the bus serialises them (`state`, `console`,
//!   `sample`, …).
//!
//! The socket is not a source of truth: a client refetches state over REST whenever it
//! (re)connects or hears `lagged`, then applies live events on top.
//!
//! Each connection runs two tasks: a forwarder that filters the bus into a bounded queue
//! and never waits, and the session that owns the socket (writes the queue, reads client
//! messages, sends heartbeats). A client that cannot take events as fast as they come
//! fills its queue and is disconnected; it never grows warden's memory. Both tasks watch
//! the shutdown token, because axum's graceful shutdown does not cover upgraded
//! connections (axum issue #3003).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{SESSION_COOKIE, bearer_token, cookie_value, session_expired};
use super::error::{ApiError, ErrorBody, Query};
use crate::access::Perm;
use crate::auth::{AuthError, Principal, Role};
use crate::bus::{Event, HostSample, ProgramSample, SampleTick, TickJson};
use crate::fleet::live::{Deliver, NodeTopics, Relay};
use crate::program::valid_name;

/// Messages queued for one client. When full the client is too slow and is dropped.
const QUEUE: usize = 256;
/// How often the server pings and re-checks the caller's credentials, in ms.
const HEARTBEAT_MS: u64 = 20_000;
const HEARTBEAT: Duration = Duration::from_millis(HEARTBEAT_MS);
/// A client silent for this long (no message, no pong) is considered gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// One write may take this long before the client counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Topics one connection may hold (each `console:NAME` is one).
const MAX_TOPICS: usize = 64;
/// Largest client message accepted; subscriptions are small.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// Close code: the client could not keep up with its events.
const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: the session ended or the token was revoked.
const CLOSE_UNAUTHENTICATED: u16 = 4001;

/// A subscription topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Topic {
    /// State changes of every program.
    Programs,
    /// Event-log entries as they are recorded.
    Events,
    /// Samples of every program.
    Samples,
    /// Samples of one program.
    ProgramSamples(String),
    /// Console lines of one program.
    Console(String),
    /// A topic (as named on that node) of a fleet node, relayed from the node.
    Node(String, String),
}

impl Topic {
    fn parse(s: &str) -> Option<Topic> {
        if let Some((node, inner)) = s.strip_prefix("node:").and_then(|r| r.split_once(':')) {
            return match Topic::parse(inner)? {
                Topic::Node(..) => None,
                _ if valid_name(node) => Some(Topic::Node(node.into(), inner.into())),
                _ => None,
            };
        }
        let named = |name: &str, f: fn(String) -> Topic| valid_name(name).then(|| f(name.into()));
        match s.split_once(':') {
            None => match s {
                "programs" => Some(Topic::Programs),
                "events" => Some(Topic::Events),
                "samples" => Some(Topic::Samples),
                _ => None,
            },
            Some(("console", name)) => named(name, Topic::Console),
            Some(("samples", name)) => named(name, Topic::ProgramSamples),
            Some(_) => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Topic::Programs => "programs".into(),
            Topic::Events => "events".into(),
            Topic::Samples => "samples".into(),
            Topic::ProgramSamples(n) => format!("samples:{n}"),
            Topic::Console(n) => format!("console:{n}"),
            Topic::Node(node, inner) => format!("node:{node}:{inner}"),
        }
    }

    /// What a caller must hold to subscribe: `perm` on the named program (`Some`), or on
    /// every program (`None`). Local whole-warden topics need nothing: their events are
    /// filtered one by one (`permitted`). A node's are filtered by the node under the
    /// hub's token, not per caller, so its whole-node topics need `view` everywhere.
    fn needs(&self) -> Option<(Option<String>, Perm)> {
        match self {
            Topic::Console(p) => Some((Some(p.clone()), Perm::Console)),
            Topic::ProgramSamples(p) => Some((Some(p.clone()), Perm::View)),
            Topic::Programs | Topic::Events | Topic::Samples => None,
            Topic::Node(_, inner) => match Topic::parse(inner) {
                Some(Topic::Console(p)) => Some((Some(p), Perm::Console)),
                Some(Topic::ProgramSamples(p)) => Some((Some(p), Perm::View)),
                _ => Some((None, Perm::View)),
            },
        }
    }
}

type Topics = BTreeSet<Topic>;

/// True when a client subscribed to `topics` should get `ev`.
fn wanted(topics: &Topics, ev: &Event) -> bool {
    match ev {
        Event::State(_) => topics.contains(&Topic::Programs) || topics.contains(&Topic::Events),
        Event::Console(line) => topics
            .iter()
            .any(|t| matches!(t, Topic::Console(n) if *n == line.program)),
        // Player counts are a sample series; health is part of a program's status.
        Event::Players(p) => samples_of(topics, &p.program) || topics.contains(&Topic::Programs),
        Event::Health(_) => topics.contains(&Topic::Programs) || topics.contains(&Topic::Events),
        Event::Notice(_) => topics.contains(&Topic::Events),
        Event::Job(_) | Event::Schedule(_) => topics.contains(&Topic::Events),
        // Progress of one program's backups goes with that program's status.
        Event::Backup(_) => topics.contains(&Topic::Programs) || topics.contains(&Topic::Events),
        Event::Program(_) => topics.contains(&Topic::Programs),
        Event::Install(_) => topics.contains(&Topic::Programs) || topics.contains(&Topic::Events),
    }
}

/// What the caller of one connection may do: `perm` on a program, or (`None`) on every
/// program. Fixed when the connection opens.
pub(crate) type Sees = Arc<dyn Fn(Option<&str>, Perm) -> bool + Send + Sync>;

/// True when a caller who `sees` may get `ev`: program events need `view` on the program
/// (console lines `console`), warden's own events and jobs need `view` everywhere.
fn permitted(sees: &Sees, everywhere: bool, ev: &Event) -> bool {
    let view = |p: &str| sees(Some(p), Perm::View);
    match ev {
        Event::State(s) => view(&s.program),
        Event::Console(line) => sees(Some(&line.program), Perm::Console),
        Event::Players(p) => view(&p.program),
        Event::Health(h) => view(&h.program),
        Event::Notice(n) => n.program.as_deref().map_or(everywhere, view),
        Event::Job(_) | Event::Schedule(_) => everywhere,
        Event::Backup(b) => view(&b.program),
        Event::Program(p) => view(&p.program),
        // The program may not exist yet: installs are an administrator's business.
        Event::Install(_) => everywhere,
    }
}

/// True when `topics` asks for samples of `program` (all programs' or this one's).
fn samples_of(topics: &Topics, program: &str) -> bool {
    topics.contains(&Topic::Samples)
        || topics
            .iter()
            .any(|t| matches!(t, Topic::ProgramSamples(n) if n == program))
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMsg {
    /// Adds topics.
    Subscribe { topics: Vec<String> },
    /// Removes topics.
    Unsubscribe { topics: Vec<String> },
    /// Asks for a `pong` (the client's half of the heartbeat). A struct variant, so that
    /// unknown fields are refused here too.
    Ping {},
}

/// What the server sends besides bus events.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMsg<'a> {
    /// First message: who the client is and how often the server pings.
    Hello {
        user: &'a str,
        role: Role,
        heartbeat_ms: u64,
    },
    /// The complete topic set after a change.
    Subscribed { topics: Vec<String> },
    /// Answer to `ping`.
    Pong,
    /// A client message was refused; the connection stays open.
    Error { code: &'static str, message: String },
    /// The client missed `missed` events and should refetch over REST.
    Lagged { missed: u64 },
}

fn text(msg: &ServerMsg<'_>) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_default(),
    ))
}

/// How the connection authenticated, kept to re-check it on every heartbeat (a logout,
/// password change or token revocation ends the live connection too).
enum Credential {
    Token(String),
    Session(String),
}

impl Credential {
    async fn check(&self, app: &AppState) -> Result<Principal, AuthError> {
        match self {
            Credential::Token(t) => app.auth.token(t).await,
            Credential::Session(c) => app.auth.session(c).await,
        }
    }
}

/// True unless a browser says the page comes from another origin. Browsers always send
/// `Origin` on WebSocket handshakes and cookies ride along even cross-site (for the
/// same site on another port, SameSite does not help), so a cookie-authenticated
/// handshake from a foreign page must be refused: cross-site WebSocket hijacking.
/// Clients without `Origin` are not browsers and cannot be tricked this way.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(authority) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, a)| a)
    else {
        return false;
    };
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .any(|host| host.eq_ignore_ascii_case(authority))
}

async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<(Principal, Credential), ApiError> {
    let bearer = bearer_token(headers)?.map(str::to_string);
    if let Some(token) = query_token.or(bearer) {
        let p = app.auth.token(&token).await?;
        return Ok((p, Credential::Token(token)));
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthenticated());
    };
    if !same_origin(headers) {
        return Err(ApiError::forbidden(
            "this WebSocket handshake comes from another site's page; open the dashboard from warden's own address",
        ));
    }
    let p = app
        .auth
        .session(cookie)
        .await
        .map_err(|_| session_expired())?;
    Ok((p, Credential::Session(cookie.to_string())))
}

/// Credentials in the URL, for clients that cannot set headers (browsers use the cookie).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct WsQuery {
    /// An API token, as an alternative to `Authorization: Bearer`.
    token: Option<String>,
}

/// Opens the live WebSocket (viewer). See the module documentation for the protocol.
#[utoipa::path(get, path = "/api/ws", tag = "live", params(WsQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn ws(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Every role may watch; viewer is the lowest.
    let (principal, credential) = authenticate(&app, &headers, q.token).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_expected",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(socket, app, principal, credential)))
}

/// Why the forwarder stopped.
#[derive(Debug, PartialEq, Eq)]
enum Forwarded {
    /// The connection ended (or warden is shutting down).
    Ended,
    /// The client's queue was full: it is too slow and the connection was cancelled.
    TooSlow,
}

/// True when `topics` asks for any program's or the host's samples.
fn wants_samples(topics: &Topics) -> bool {
    topics
        .iter()
        .any(|t| matches!(t, Topic::Samples | Topic::ProgramSamples(_)))
}

/// Filters the bus and the samples channel into the client's queue without ever waiting
/// on the client. Samples are followed only while the client asks for some, so a
/// connection that watches events costs nothing per sampling tick.
async fn forward(
    mut bus: broadcast::Receiver<Arc<Event>>,
    mut samples: watch::Receiver<Arc<SampleTick>>,
    mut topics: watch::Receiver<Arc<Topics>>,
    out: mpsc::Sender<Message>,
    conn: CancellationToken,
    sees: Sees,
) -> Forwarded {
    let everywhere = sees(None, Perm::View);
    let mut following = wants_samples(&topics.borrow());
    loop {
        let received = tokio::select! {
            _ = conn.cancelled() => return Forwarded::Ended,
            changed = topics.changed() => {
                if changed.is_err() {
                    return Forwarded::Ended;
                }
                let now = wants_samples(&topics.borrow_and_update());
                if now && !following {
                    // From the next tick on, not the one already published.
                    samples.mark_unchanged();
                }
                following = now;
                continue;
            }
            changed = samples.changed(), if following => {
                if changed.is_err() {
                    return Forwarded::Ended;
                }
                let tick = samples.borrow_and_update().clone();
                for m in tick_messages(&topics.borrow(), &sees, &tick) {
                    if out.try_send(m).is_err() {
                        conn.cancel();
                        return Forwarded::TooSlow;
                    }
                }
                continue;
            }
            r = bus.recv() => r,
        };
        let msg = match received {
            Ok(ev) => {
                if !wanted(&topics.borrow(), &ev) || !permitted(&sees, everywhere, &ev) {
                    continue;
                }
                match serde_json::to_string(&*ev) {
                    Ok(s) => Message::Text(Utf8Bytes::from(s)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serialise a bus event");
                        continue;
                    }
                }
            }
            // Only this task is behind (the queue still had room): the client must
            // refetch what it missed.
            Err(broadcast::error::RecvError::Lagged(missed)) => text(&ServerMsg::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => return Forwarded::Ended,
        };
        if out.try_send(msg).is_err() {
            conn.cancel();
            return Forwarded::TooSlow;
        }
    }
}

/// A sample as the feed sends it: `{"type":"sample",…}` or `{"type":"host_sample",…}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SampleMsg<'a> {
    Sample(&'a ProgramSample),
    HostSample(&'a HostSample),
}

/// One sample message as JSON bytes.
fn sample_json(m: &SampleMsg<'_>) -> Option<bytes::Bytes> {
    match serde_json::to_vec(m) {
        Ok(v) => Some(v.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a sample");
            None
        }
    }
}

/// The feed's JSON of a whole tick: made once per tick, by the first client to send it.
fn tick_json(tick: &SampleTick) -> TickJson {
    TickJson {
        programs: tick
            .programs
            .iter()
            .map(|s| sample_json(&SampleMsg::Sample(s)))
            .collect(),
        host: tick
            .host
            .as_ref()
            .and_then(|h| sample_json(&SampleMsg::HostSample(h))),
    }
}

/// The messages of one sampling tick for a client subscribed to `topics` that `sees`:
/// each program's sample it asked for and may view, then the host's. The JSON is the
/// tick's shared copy; a message only counts a reference to it.
fn tick_messages<'a>(
    topics: &'a Topics,
    sees: &'a Sees,
    tick: &'a SampleTick,
) -> impl Iterator<Item = Message> + 'a {
    let json = tick.json(tick_json);
    let programs = tick
        .programs
        .iter()
        .zip(&json.programs)
        .filter(|(s, _)| samples_of(topics, &s.program) && sees(Some(&s.program), Perm::View))
        .filter_map(|(_, j)| j.clone());
    let host = json
        .host
        .iter()
        .filter(|_| topics.contains(&Topic::Samples))
        .cloned();
    programs
        .chain(host)
        .filter_map(|b| Utf8Bytes::try_from(b).ok().map(Message::Text))
}

/// Keeps one relay (`fleet::live`) per fleet node the client has topics of, each told
/// that node's topics; a node without topics left has its relay stopped. A relay that
/// finds the client's queue full drops the client, as the forwarder does.
async fn relays(
    relay: Relay,
    mut topics: watch::Receiver<Arc<Topics>>,
    out: mpsc::Sender<Message>,
    conn: CancellationToken,
) {
    let deliver: Deliver = {
        let conn = conn.clone();
        Arc::new(move |m: String| {
            let queued = out.try_send(Message::Text(Utf8Bytes::from(m))).is_ok();
            if !queued {
                conn.cancel();
            }
            queued
        })
    };
    let mut running: HashMap<String, (watch::Sender<NodeTopics>, CancellationToken)> =
        HashMap::new();
    loop {
        let mut per_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for t in topics.borrow_and_update().iter() {
            if let Topic::Node(node, inner) = t {
                per_node
                    .entry(node.clone())
                    .or_default()
                    .insert(inner.clone());
            }
        }
        running.retain(|node, (_, stop)| {
            let keep = per_node.contains_key(node);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (node, set) in per_node {
            let set: NodeTopics = Arc::new(set);
            if let Some((tx, _)) = running.get(&node) {
                tx.send_if_modified(|cur| {
                    let changed = **cur != *set;
                    if changed {
                        *cur = set.clone();
                    }
                    changed
                });
            } else {
                let (tx, rx) = watch::channel(set);
                let stop = conn.child_token();
                tokio::spawn(
                    relay
                        .clone()
                        .run(node.clone(), rx, deliver.clone(), stop.clone()),
                );
                running.insert(node, (tx, stop));
            }
        }
        tokio::select! {
            _ = conn.cancelled() => return,
            changed = topics.changed() => if changed.is_err() { return },
        }
    }
}

async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // Best effort: a stuck client does not get to delay the close.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

/// Applies a subscribe/unsubscribe; returns the reply. `sees` answers for this warden's
/// programs, `sees_remote` for a node's (grants on names or on all; tags are a node's own).
fn change_topics(
    current: &Topics,
    add: bool,
    names: &[String],
    (sees, sees_remote): (&Sees, &Sees),
) -> Result<Topics, ServerMsg<'static>> {
    let mut next = current.clone();
    for name in names {
        let Some(topic) = Topic::parse(name) else {
            return Err(ServerMsg::Error {
                code: "unknown_topic",
                message: format!(
                    "{name:?} is not a topic; use programs, events, samples, samples:NAME, console:NAME or node:NODE:TOPIC"
                ),
            });
        };
        let check = if matches!(topic, Topic::Node(..)) {
            sees_remote
        } else {
            sees
        };
        if add
            && let Some((p, perm)) = topic.needs()
            && !check(p.as_deref(), perm)
        {
            let on = p.map_or("every program".to_string(), |p| format!("program '{p}'"));
            return Err(ServerMsg::Error {
                code: "forbidden",
                message: format!("{name:?} needs the '{}' permission on {on}", perm.as_str()),
            });
        }
        if add {
            next.insert(topic);
        } else {
            next.remove(&topic);
        }
    }
    if next.len() > MAX_TOPICS {
        return Err(ServerMsg::Error {
            code: "too_many_topics",
            message: format!("a connection may hold at most {MAX_TOPICS} topics"),
        });
    }
    Ok(next)
}

/// Answers one client message.
fn handle(raw: &str, topics: &watch::Sender<Arc<Topics>>, sees: (&Sees, &Sees)) -> Message {
    let msg = match serde_json::from_str::<ClientMsg>(raw) {
        Ok(m) => m,
        Err(e) => {
            return text(&ServerMsg::Error {
                code: "bad_message",
                message: format!(
                    "cannot read this message ({e}); send {{\"op\":\"subscribe\",\"topics\":[…]}}, unsubscribe or ping"
                ),
            });
        }
    };
    let (add, names) = match msg {
        ClientMsg::Ping {} => return text(&ServerMsg::Pong),
        ClientMsg::Subscribe { topics } => (true, topics),
        ClientMsg::Unsubscribe { topics } => (false, topics),
    };
    // Computed before `send_replace`: holding the borrow while replacing would deadlock.
    let changed = change_topics(&topics.borrow(), add, &names, sees);
    match changed {
        Ok(next) => {
            let names = next.iter().map(Topic::name).collect();
            topics.send_replace(Arc::new(next));
            text(&ServerMsg::Subscribed { topics: names })
        }
        Err(reply) => text(&reply),
    }
}

/// One connection: owns the socket until the client leaves, stalls, loses its
/// credentials, or warden shuts down.
async fn session(
    mut socket: WebSocket,
    app: AppState,
    principal: Principal,
    credential: Credential,
) {
    // A child of the shutdown token: cancelled by shutdown, by a full queue, or when this
    // function returns (the guard), which also ends the forwarder.
    let conn = app.shutdown.child_token();
    let _guard = conn.clone().drop_guard();
    let (out_tx, mut out_rx) = mpsc::channel(QUEUE);
    let (topics_tx, topics_rx) = watch::channel(Arc::new(Topics::new()));
    let sees: Sees = {
        let (app, access) = (app.clone(), principal.access());
        Arc::new(move |program: Option<&str>, perm: Perm| match program {
            Some(p) => access.perms_on(p, &app.tags_of(p)).has(perm),
            None => access.perms_everywhere().has(perm),
        })
    };
    let sees_remote: Sees = {
        let access = principal.access();
        Arc::new(move |program: Option<&str>, perm: Perm| match program {
            Some(p) => access.perms_on(p, &[]).has(perm),
            None => access.perms_everywhere().has(perm),
        })
    };
    tokio::spawn(relays(
        app.fleet.relay(),
        topics_rx.clone(),
        out_tx.clone(),
        conn.clone(),
    ));
    tokio::spawn(forward(
        app.bus.subscribe(),
        app.bus.samples(),
        topics_rx,
        out_tx,
        conn.clone(),
        sees.clone(),
    ));
    let hello = ServerMsg::Hello {
        user: &principal.name,
        role: principal.role,
        heartbeat_ms: HEARTBEAT_MS,
    };
    if !send(&mut socket, text(&hello)).await {
        return;
    }
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            // Checked first: a cancelled connection also ends the forwarder and the relays,
            // which closes the queue, and a closed queue must not win the race and leave
            // without the close frame that tells the client why.
            biased;
            _ = conn.cancelled() => {
                if app.shutdown.is_cancelled() {
                    close(&mut socket, close_code::AWAY, "warden is shutting down").await;
                } else {
                    tracing::info!(user = %principal.name, "dropping a WebSocket client that cannot keep up");
                    close(&mut socket, CLOSE_TOO_SLOW, "too slow: refetch and reconnect").await;
                }
                return;
            }
            queued = out_rx.recv() => {
                let Some(msg) = queued else { return };
                if !send(&mut socket, msg).await {
                    return;
                }
            }
            incoming = socket.recv() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(t))) => handle(t.as_str(), &topics_tx, (&sees, &sees_remote)),
                    Some(Ok(Message::Binary(_))) => text(&ServerMsg::Error {
                        code: "bad_message",
                        message: "send JSON text frames".into(),
                    }),
                    // Pings are answered by the WebSocket layer itself; both count as life.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                last_heard = Instant::now();
                if !send(&mut socket, reply).await {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    close(&mut socket, close_code::AWAY, "no heartbeat from the client").await;
                    return;
                }
                if credential.check(&app).await.is_err() {
                    close(&mut socket, CLOSE_UNAUTHENTICATED, "session ended: log in again").await;
                    return;
                }
                if !send(&mut socket, Message::Ping(Default::default())).await {
                    return;
                }
            }
        }
    }
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ws))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, ConsoleLine, Stream};

    fn all() -> Sees {
        Arc::new(|_: Option<&str>, _: Perm| true)
    }

    fn line(program: &str) -> Event {
        Event::Console(ConsoleLine {
            program: program.into(),
            ts: 1,
            stream: Stream::Stdout,
            text: "hi".into(),
            split: false,
        })
    }

    fn topics(names: &[&str]) -> Topics {
        names
            .iter()
            .map(|n| Topic::parse(n).expect("topic"))
            .collect()
    }

    #[test]
    fn topics_parse_and_round_trip() {
        for n in [
            "programs",
            "events",
            "samples",
            "samples:mc-1",
            "console:a_b",
            "node:box:programs",
            "node:box:console:mc",
        ] {
            assert_eq!(Topic::parse(n).map(|t| t.name()).as_deref(), Some(n));
        }
        for bad in [
            "",
            "console",
            "console:",
            "console:Bad",
            "samples:a/b",
            "other:x",
            "program",
            "node:box",
            "node:Box:programs",
            "node:box:node:a:programs",
            "node:box:console:Bad",
        ] {
            assert_eq!(Topic::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_nodes_topics_need_the_callers_own_permissions_without_local_tags() {
        let (tx, _rx) = watch::channel(Arc::new(Topics::new()));
        // Locally (with tags) everything is allowed; on nodes only console on `mc`.
        let remote: Sees = Arc::new(|p: Option<&str>, perm: Perm| {
            p == Some("mc") && matches!(perm, Perm::Console | Perm::View)
        });
        let sub = |topic: &str| {
            let m = format!(r#"{{"op":"subscribe","topics":["{topic}"]}}"#);
            handle(&m, &tx, (&all(), &remote))
                .to_text()
                .expect("text")
                .to_string()
        };
        assert!(sub("node:box:console:mc").contains("subscribed"));
        let other = sub("node:box:console:other");
        assert!(
            other.contains("forbidden") && other.contains("program 'other'"),
            "{other}"
        );
        let whole = sub("node:box:programs");
        assert!(
            whole.contains("forbidden") && whole.contains("every program"),
            "{whole}"
        );
        // The same names on this warden answer to `sees`, which allows them.
        assert!(sub("console:other").contains("subscribed"));
        // Node topics never match local bus events.
        assert!(!wanted(&topics(&["node:box:console:a"]), &line("a")));
    }

    #[test]
    fn console_lines_go_only_to_their_programs_subscribers() {
        assert!(wanted(&topics(&["console:a"]), &line("a")));
        assert!(!wanted(
            &topics(&["console:b", "programs", "samples:a"]),
            &line("a")
        ));
    }

    #[test]
    fn client_messages_change_the_topic_set_atomically() {
        let (tx, _rx) = watch::channel(Arc::new(Topics::new()));
        let reply = handle(
            r#"{"op":"subscribe","topics":["programs","console:x"]}"#,
            &tx,
            (&all(), &all()),
        );
        assert_eq!(
            reply.to_text().expect("text"),
            r#"{"type":"subscribed","topics":["programs","console:x"]}"#
        );
        let reply = handle(
            r#"{"op":"subscribe","topics":["samples","nope"]}"#,
            &tx,
            (&all(), &all()),
        );
        assert!(reply.to_text().expect("text").contains("unknown_topic"));
        assert_eq!(tx.borrow().len(), 2, "a refused change changes nothing");
        let reply = handle(
            r#"{"op":"unsubscribe","topics":["programs"]}"#,
            &tx,
            (&all(), &all()),
        );
        assert!(reply.to_text().expect("text").contains(r#"["console:x"]"#));
        let reply = handle(r#"{"op":"ping"}"#, &tx, (&all(), &all()));
        assert_eq!(reply.to_text().expect("text"), r#"{"type":"pong"}"#);
        let reply = handle(r#"{"op":"ping","extra":1}"#, &tx, (&all(), &all()));
        assert!(reply.to_text().expect("text").contains("bad_message"));
        let many: Vec<String> = (0..=MAX_TOPICS)
            .map(|i| format!("\"console:p{i}\""))
            .collect();
        let reply = handle(
            &format!(r#"{{"op":"subscribe","topics":[{}]}}"#, many.join(",")),
            &tx,
            (&all(), &all()),
        );
        assert!(reply.to_text().expect("text").contains("too_many_topics"));
    }

    #[test]
    fn only_pages_from_the_same_origin_may_use_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:9180".parse().expect("header"));
        assert!(same_origin(&h), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            "http://127.0.0.1:9180".parse().expect("header"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://evil.example".parse().expect("header"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://127.0.0.1:8080".parse().expect("header"),
        );
        assert!(!same_origin(&h), "another port is another origin");
        h.insert(header::ORIGIN, "null".parse().expect("header"));
        assert!(!same_origin(&h));
    }

    #[tokio::test]
    async fn a_client_whose_queue_fills_is_dropped() {
        let bus = Bus::new();
        let rx = bus.subscribe();
        let (_topics_tx, topics_rx) = watch::channel(Arc::new(topics(&["console:a"])));
        let (out_tx, mut out_rx) = mpsc::channel(2);
        let conn = CancellationToken::new();
        // Unwanted events never take queue space.
        for _ in 0..10 {
            bus.publish(line("b"));
        }
        for _ in 0..3 {
            bus.publish(line("a"));
        }
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            forward(rx, bus.samples(), topics_rx, out_tx, conn.clone(), all()),
        )
        .await
        .expect("forwarder returns");
        assert_eq!(ended, Forwarded::TooSlow);
        assert!(conn.is_cancelled());
        assert!(out_rx.recv().await.is_some());
    }

    fn tick(programs: &[&str]) -> Arc<SampleTick> {
        let sample = |p: &&str| ProgramSample {
            program: (*p).into(),
            ts: 1,
            cpu_percent: 1.5,
            memory_bytes: 2,
            virtual_bytes: 3,
            threads: 1,
            open_files: 4,
            disk_read_bps: 0.0,
            disk_write_bps: 0.0,
            players: None,
        };
        Arc::new(SampleTick::new(programs.iter().map(sample).collect(), None))
    }

    /// Samples reach only the clients that follow them, each the programs it asked for,
    /// and every client sends the same bytes: a tick is serialised once, not per client.
    #[tokio::test]
    async fn a_tick_is_serialised_once_for_every_client_that_follows_samples() {
        let bus = Bus::new();
        let conn = CancellationToken::new();
        let mut outs = Vec::new();
        let mut keep = Vec::new();
        for wanted in [&["samples"][..], &["samples:b"], &["events"]] {
            let (topics_tx, topics_rx) = watch::channel(Arc::new(topics(wanted)));
            let (out_tx, out_rx) = mpsc::channel(16);
            tokio::spawn(forward(
                bus.subscribe(),
                bus.samples(),
                topics_rx,
                out_tx,
                conn.clone(),
                all(),
            ));
            keep.push(topics_tx);
            outs.push(out_rx);
        }
        // Each follower's receiver was made before the tick: it sees it whenever it runs.
        bus.publish_samples(tick(&["a", "b"]));
        let next = |rx: &mut mpsc::Receiver<Message>| match rx.try_recv() {
            Ok(Message::Text(t)) => Some(t),
            _ => None,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while outs[0].len() < 2 || outs[1].is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "samples never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all_a = next(&mut outs[0]).expect("a");
        let all_b = next(&mut outs[0]).expect("b");
        let only_b = next(&mut outs[1]).expect("b alone");
        assert!(all_a.as_str().contains(r#""program":"a""#), "{all_a}");
        assert!(all_a.as_str().starts_with(r#"{"type":"sample""#), "{all_a}");
        assert!(only_b.as_str().contains(r#""program":"b""#), "{only_b}");
        assert_eq!(
            all_b.as_str().as_ptr(),
            only_b.as_str().as_ptr(),
            "both clients send the tick's one copy"
        );
        assert!(outs[1].is_empty(), "nothing of a for the client of b");
        assert!(outs[2].is_empty(), "no samples for a client of events");
        conn.cancel();
    }

    #[tokio::test]
    async fn the_forwarder_stops_on_cancellation() {
        let bus = Bus::new();
        let (_topics_tx, topics_rx) = watch::channel(Arc::new(Topics::new()));
        let (out_tx, _out_rx) = mpsc::channel(2);
        let conn = CancellationToken::new();
        let task = tokio::spawn(forward(
            bus.subscribe(),
            bus.samples(),
            topics_rx,
            out_tx,
            conn.clone(),
            all(),
        ));
        conn.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends")
            .expect("no panic");
        assert_eq!(ended, Forwarded::Ended);
    }
}
