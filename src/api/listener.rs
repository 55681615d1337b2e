//! The HTTP accept loop with bounded connections: a header-read timeout, an idle timeout
//! and a cap on open connections, so that no number of clients (idle, slow, or sending
//! half a request) can take the descriptors warden needs to restart a program.
//!
//! `axum::serve` has none of these knobs, so connections are served here with hyper's
//! HTTP/1 builder and the axum router as the service; `ConnectInfo<SocketAddr>` is added
//! to every request, as `into_make_service_with_connect_info` did.
//!
//! At the cap a new connection takes the slot of the connection that has been silent the
//! longest (nothing read or written for at least [`EVICT_AFTER`]) — typically a client
//! that sent half a header and waits — so a real request still gets in while idle
//! connections pile up; if every slot is busy, the new connection is closed at once.
//! WebSocket connections count toward the cap but are never evicted: they have their own
//! idle rules (ping every 20 s, closed after 60 s of silence; see `ws.rs`). Neither is a
//! connection with a request in progress, from its head until the last byte of its
//! response: a slow handler or a quiet stream (a console that prints nothing for
//! minutes) is working, not idle.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::authn::Https;
use tokio_rustls::TlsAcceptor;

/// A connection silent for at least this long may lose its slot to a new one at the cap.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);

/// After shutdown begins, connections get this long to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Bounds of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a complete request head within this time (from the moment
    /// the connection waits for one: new, or kept alive between requests).
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once (WebSockets included).
    pub max_connections: usize,
}

/// One open connection, as the registry sees it.
struct ConnState {
    /// Milliseconds since the registry's epoch of the last byte read or written.
    last_ms: AtomicU64,
    /// Closes the connection at once (evicted).
    kill: CancellationToken,
    /// Handed over to a WebSocket: never evicted, not watched for idleness here.
    upgraded: AtomicBool,
    /// Requests in progress (head read, response body not yet sent to its end).
    active: AtomicU32,
}

impl ConnState {
    /// Whether the connection may be closed for silence.
    fn at_rest(&self) -> bool {
        !self.upgraded.load(Ordering::Relaxed) && self.active.load(Ordering::Relaxed) == 0
    }
}

/// Counts one request as in progress for as long as it lives; it is carried by the
/// response body, so it ends when hyper has sent (or dropped) the whole response.
struct Busy(Arc<ConnState>);

impl Busy {
    fn start(state: Arc<ConnState>) -> Busy {
        state.active.fetch_add(1, Ordering::Relaxed);
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in progress.
struct Guarded {
    inner: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections; a slot is held for as long as the connection's socket lives.
struct Registry {
    epoch: Instant,
    cap: usize,
    next_id: AtomicU64,
    /// A plain mutex: held only to insert, remove or scan a few hundred entries, never
    /// across `.await`.
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Connections closed at once at the cap, and when that was last logged.
    refused: AtomicU64,
    evicted: AtomicU64,
    last_log_ms: AtomicU64,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A slot for a new connection: free, or taken from the longest-silent evictable
    /// connection. `None` when every slot is busy.
    fn admit(&self) -> Option<(u64, Arc<ConnState>)> {
        let now = self.now_ms();
        let mut conns = crate::sync::lock(&self.conns);
        if conns.len() >= self.cap {
            let evict_ms = u64::try_from(EVICT_AFTER.as_millis()).unwrap_or(1000);
            let victim = conns
                .iter()
                .filter(|(_, c)| c.at_rest())
                .map(|(id, c)| (*id, c.last_ms.load(Ordering::Relaxed)))
                .filter(|(_, last)| now.saturating_sub(*last) >= evict_ms)
                .min_by_key(|(_, last)| *last);
            let (id, _) = victim?;
            if let Some(c) = conns.remove(&id) {
                c.kill.cancel();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            last_ms: AtomicU64::new(now),
            kill: CancellationToken::new(),
            upgraded: AtomicBool::new(false),
            active: AtomicU32::new(0),
        });
        conns.insert(id, state.clone());
        Some((id, state))
    }

    fn release(&self, id: u64) {
        crate::sync::lock(&self.conns).remove(&id);
    }

    /// Logs refusals and evictions at most every 10 s, so a flood of clients cannot
    /// flood the log.
    fn report(&self) {
        let now = self.now_ms();
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 10_000
            || self
                .last_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let refused = self.refused.swap(0, Ordering::Relaxed);
        let evicted = self.evicted.swap(0, Ordering::Relaxed);
        if refused + evicted > 0 {
            tracing::warn!(
                max_connections = self.cap,
                refused,
                evicted,
                "HTTP connection limit reached: `evicted` silent connections were closed to admit new ones and `refused` new ones were closed because every connection was busy (raise api.max_connections if these are real clients)"
            );
        }
    }
}

/// A connection's socket: notes every byte read or written, and frees the slot when
/// dropped (after an upgrade, that is when the WebSocket ends).
struct Tracked {
    inner: TcpStream,
    id: u64,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Tracked {
    fn touch(&self) {
        self.state
            .last_ms
            .store(self.registry.now_ms(), Ordering::Relaxed);
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.registry.release(self.id);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The effective connection cap: the configured one, but never more than half of the
/// open-file limit, so the other half stays for programs, logs, the store and backups.
pub fn effective_cap(configured: usize, open_file_limit: Option<u64>) -> usize {
    let by_limit = open_file_limit
        .map(|l| usize::try_from(l / 2).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    configured.min(by_limit).max(1)
}

/// Serves `router` on `listener` within `limits` until `shutdown` is cancelled, then lets
/// open requests finish (bounded by [`SHUTDOWN_GRACE`]). With `tls`, every connection is
/// HTTPS (requests are marked [`Https`]); a plain-HTTP request on that port is redirected
/// to the same address over HTTPS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        cap: limits.max_connections.max(1),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        refused: AtomicU64::new(0),
        evicted: AtomicU64::new(0),
        last_log_ms: AtomicU64::new(0),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before it was
                // accepted: wait a little instead of spinning on the same error.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, state)) = registry.admit() else {
            registry.refused.fetch_add(1, Ordering::Relaxed);
            registry.report();
            drop(stream);
            continue;
        };
        registry.report();
        let io = Tracked {
            inner: stream,
            id,
            state: state.clone(),
            registry: registry.clone(),
        };
        let conn = Conn {
            router: router.clone(),
            builder: builder.clone(),
            state,
            addr,
            limits,
            epoch: registry.epoch,
            shutdown: shutdown.clone(),
        };
        match &tls {
            None => {
                tasks.spawn(conn.run(io, false));
            }
            Some(acceptor) => {
                tasks.spawn(conn.run_tls(io, acceptor.clone()));
            }
        }
    }
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "some HTTP connections were still open after the shutdown grace; closing them"
        );
    }
}

/// One admitted connection and what serving it needs.
struct Conn {
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    state: Arc<ConnState>,
    addr: SocketAddr,
    limits: Limits,
    epoch: Instant,
    shutdown: CancellationToken,
}

impl Conn {
    /// The TLS handshake (within the header-read timeout, so a silent client cannot hold
    /// the slot), then HTTP over it. A client speaking plain HTTP is sent to HTTPS.
    async fn run_tls(self, io: Tracked, acceptor: TlsAcceptor) {
        let mut first = [0u8; 1];
        let peeked =
            tokio::time::timeout(self.limits.header_read_timeout, io.inner.peek(&mut first)).await;
        if !matches!(peeked, Ok(Ok(1))) {
            return;
        }
        // Every TLS connection opens with a handshake record (content type 22).
        if first[0] != 0x16 {
            self.redirect_to_https(io).await;
            return;
        }
        match tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(io)).await {
            Ok(Ok(stream)) => self.run(stream, true).await,
            Ok(Err(e)) => tracing::debug!(addr = %self.addr, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(addr = %self.addr, "TLS handshake timed out"),
        }
    }

    /// Answers plain-HTTP requests on the HTTPS port with a permanent redirect to the
    /// same host and path over HTTPS (or a 400 that says so when the request names no
    /// host).
    async fn redirect_to_https(self, io: Tracked) {
        let svc = tower::service_fn(|req: axum::http::Request<Incoming>| async move {
            Ok::<_, std::convert::Infallible>(https_redirect(&req))
        });
        let conn = self
            .builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
        // Bounded: the redirect is one short answer, never a place to linger.
        let _ = tokio::time::timeout(self.limits.idle_timeout, conn).await;
    }

    /// Serves HTTP on `io` until the client leaves, the connection is evicted or idle, or
    /// shutdown ends it.
    async fn run<I>(self, io: I, https: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            router,
            builder,
            state,
            addr,
            limits,
            epoch,
            shutdown,
        } = self;
        let conn_state = state.clone();
        let svc = tower::service_fn(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            if https {
                req.extensions_mut().insert(Https);
            }
            let busy = Busy::start(conn_state.clone());
            let call = router.clone().oneshot(req);
            async move {
                let resp = call.await?;
                Ok::<_, std::convert::Infallible>(
                    resp.map(|inner| axum::body::Body::new(Guarded { inner, _busy: busy })),
                )
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
            .with_upgrades();
        tokio::pin!(conn);
        // Wakes only when the connection could first have been idle for the whole
        // timeout, not on a fixed tick: an idle keep-alive connection costs one wake-up.
        let idle_check = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(idle_check);
        let mut closing = false;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%addr, error = %e, "HTTP connection ended");
                    } else {
                        // Ended cleanly or handed over to a WebSocket, which now
                        // holds the socket (and the slot) under its own rules.
                        state.upgraded.store(true, Ordering::Relaxed);
                    }
                    return;
                }
                // Evicted: dropping the connection closes the socket now.
                _ = state.kill.cancelled() => return,
                _ = shutdown.cancelled(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = idle_check.as_mut() => {
                    let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let idle = Duration::from_millis(
                        now.saturating_sub(state.last_ms.load(Ordering::Relaxed)),
                    );
                    let busy = state.active.load(Ordering::Relaxed) > 0;
                    if !busy && idle >= limits.idle_timeout {
                        tracing::debug!(%addr, "closing an idle HTTP connection");
                        return;
                    }
                    // Busy, or used since: look again when the timeout could next have
                    // run out (a request in flight counts from the next look). At least
                    // a second apart, as the old fixed tick was.
                    let wait = if busy { limits.idle_timeout } else { limits.idle_timeout - idle };
                    idle_check
                        .as_mut()
                        .reset(tokio::time::Instant::now() + wait.max(Duration::from_secs(1)));
                }
            }
        }
    }
}

/// The answer to a plain-HTTP request on the HTTPS port.
fn https_redirect<B>(req: &axum::http::Request<B>) -> axum::http::Response<axum::body::Body> {
    use axum::http::{StatusCode, header};
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut resp = axum::http::Response::new(axum::body::Body::empty());
    match host {
        Some(host) => {
            let to = format!("https://{host}{path}");
            *resp.body_mut() = axum::body::Body::from(format!("This warden speaks HTTPS: {to}\n"));
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            if let Ok(v) = axum::http::HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
        }
        None => {
            *resp.body_mut() =
                axum::body::Body::from("This warden speaks HTTPS: use https:// in the address.\n");
            *resp.status_mut() = StatusCode::BAD_REQUEST;
        }
    }
    resp.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_descriptors_free() {
        assert_eq!(effective_cap(256, Some(1024)), 256);
        assert_eq!(effective_cap(1000, Some(1024)), 512);
        assert_eq!(effective_cap(256, None), 256);
        assert_eq!(effective_cap(0, Some(1024)), 1);
    }

    #[test]
    fn at_the_cap_the_longest_silent_connection_gives_way() {
        let r = Registry {
            epoch: Instant::now() - Duration::from_secs(100),
            cap: 2,
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            last_log_ms: AtomicU64::new(0),
        };
        let (_, a) = r.admit().expect("slot a");
        let (_, b) = r.admit().expect("slot b");
        // Both just spoke: nobody can be evicted yet.
        assert!(r.admit().is_none());
        // `a` has been silent long enough; `b` is a WebSocket.
        a.last_ms.store(0, Ordering::Relaxed);
        b.last_ms.store(0, Ordering::Relaxed);
        b.upgraded.store(true, Ordering::Relaxed);
        let (_, c) = r.admit().expect("slot taken from a");
        assert!(a.kill.is_cancelled());
        assert!(!b.kill.is_cancelled());
        assert!(!c.kill.is_cancelled());
        assert!(r.admit().is_none(), "c just spoke, b is a WebSocket");
        // A connection whose request is in progress is working, however silent.
        c.last_ms.store(0, Ordering::Relaxed);
        let busy = Busy::start(c.clone());
        assert!(r.admit().is_none(), "c has a request in progress");
        drop(busy);
        assert!(r.admit().is_some(), "c is at rest again");
        assert!(c.kill.is_cancelled());
    }
}
