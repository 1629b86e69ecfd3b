//! The hub's HTTP face: the tower service ([`HubService`]) that serves the
//! chat page, the Socket.IO client bundle and Socket.IO itself, and the
//! HTTP/1 connection serving used for the hub's own listener and for
//! connections a host hands over.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::assets::Assets;
use crate::error::ActionError;

pub(crate) mod tls;

/// The peer address of an HTTP connection, put in the request extensions
/// by the hub's HTTP layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// The boxed service inside [`HubService`].
type InnerService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// The hub's HTTP handling as a tower [`Service`]: `GET /` (the chat
/// page, when enabled), `GET /socket.io/socket.io.js` (and `.min.js`,
/// `.esm.min.js`, their maps), everything Socket.IO under `/socket.io/`,
/// `GET /health` (200 while the hub answers) and `GET /ready` (200, or 503
/// with the reason while the hub shuts down or has lost Redis for longer
/// than [`HubConfig::redis_unready_after`](crate::HubConfig::redis_unready_after));
/// anything else answers 404.
///
/// Mount it in an axum app with `Router::fallback_service` or
/// `route_service`. WebSocket upgrades need the connection to be served
/// with upgrades enabled (axum's `serve` does). Cheap to clone.
#[derive(Clone)]
pub struct HubService {
    inner: InnerService,
}

impl std::fmt::Debug for HubService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubService").finish_non_exhaustive()
    }
}

/// Who may reach the engine, and as whom; and whether the hub is ready.
#[derive(Clone, Default)]
pub(crate) struct Access {
    /// Proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Vec<std::net::IpAddr>,
    /// `Ok`: ready for new clients; `Err`: why not (`GET /ready`).
    pub(crate) ready: Option<Arc<dyn Fn() -> Result<(), String> + Send + Sync>>,
    /// The metrics route, when `metrics_path` is set.
    pub(crate) metrics: Option<crate::metrics::Route>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl HubService {
    /// The page and bundle, then Socket.IO, behind CORS when `cors_origins`
    /// is set.
    pub(crate) fn new(
        assets: Assets,
        engine: crate::engine::Engine<crate::socketio::Sio>,
        cors_origins: &[String],
        access: Access,
    ) -> HubService {
        let assets = Arc::new(assets);
        let access = Arc::new(access);
        let routes = tower::service_fn(move |req: Request<Body>| {
            let assets = assets.clone();
            let engine = engine.clone();
            let access = access.clone();
            async move { Ok::<_, Infallible>(route(&assets, &engine, &access, req).await) }
        });
        let inner = match cors_layer(cors_origins) {
            Some(cors) => {
                InnerService::new(tower::ServiceBuilder::new().layer(cors).service(routes))
            }
            None => InnerService::new(routes),
        };
        HubService { inner }
    }
}

async fn route(
    assets: &Assets,
    engine: &crate::engine::Engine<crate::socketio::Sio>,
    access: &Access,
    req: Request<Body>,
) -> Response<Body> {
    let path = req.uri().path();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    if get && path == "/health" {
        // Live: the hub's HTTP layer answers.
        return plain(StatusCode::OK, "ok");
    }
    if get && path == "/ready" {
        return match access.ready.as_ref().map_or(Ok(()), |ready| ready()) {
            Ok(()) => plain(StatusCode::OK, "ready"),
            Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
        };
    }
    if get
        && let Some(m) = &access.metrics
        && path == m.path
    {
        return crate::metrics::response((m.render)(), req.method() == Method::HEAD);
    }
    if get && let Some(resp) = assets.respond(path, req.headers()) {
        return resp;
    }
    if path == "/socket.io" || path.starts_with("/socket.io/") {
        let remote = req.extensions().get::<RemoteAddr>().map(|r| r.0);
        let client = client_addr(remote, req.headers(), &access.trusted_proxies);
        return engine.handle(req, client).await;
    }
    plain(StatusCode::NOT_FOUND, "not found")
}

/// The client's address: the peer, or, when the peer is a trusted proxy,
/// the last address in `X-Forwarded-For` that is not one of them.
pub(crate) fn client_addr(
    peer: Option<SocketAddr>,
    headers: &http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<SocketAddr> {
    let peer = peer?;
    if !trusted.contains(&peer.ip()) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    match forwarded.iter().rev().find(|ip| !trusted.contains(ip)) {
        Some(ip) => Some(SocketAddr::new(*ip, 0)),
        None => Some(peer),
    }
}

/// The CORS layer for `origins` (`*`: any origin, without credentials).
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .max_age(Duration::from_secs(600));
    Some(if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any).allow_headers(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    })
}

impl<B> Service<Request<B>> for HubService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(inner.oneshot(req.map(Body::new)))
    }
}

/// A small text response.
pub(crate) fn plain(status: StatusCode, text: impl Into<Body>) -> Response<Body> {
    let mut resp = Response::new(text.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Tracks the hub's connections (plain HTTP and upgraded WebSocket alike)
/// for a graceful shutdown:
///
/// - `live` counts open connections;
/// - `busy` counts what a client is still doing: requests in flight and
///   WebSockets; an idle keep-alive connection is not busy;
/// - `stop` asks HTTP connections to finish their request and close;
/// - `sever` cuts every connection that is still open (reads end, writes
///   fail), for clients that would not close by themselves.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    stop: watch::Receiver<bool>,
    sever: watch::Receiver<bool>,
    live: Arc<watch::Sender<usize>>,
    busy: Arc<watch::Sender<usize>>,
    limits: ConnLimits,
    per_ip: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// The connection-level limits, from the config.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimits {
    pub(crate) slow_consumer_timeout: Duration,
    pub(crate) max_per_ip: usize,
    pub(crate) refused: Arc<std::sync::atomic::AtomicU64>,
    /// Time for a request's head to arrive.
    pub(crate) header_timeout: Duration,
}

/// Counts one unit in a counter for as long as it lives.
struct CountGuard(Arc<watch::Sender<usize>>);

impl CountGuard {
    fn new(counter: &Arc<watch::Sender<usize>>) -> CountGuard {
        counter.send_modify(|n| *n += 1);
        CountGuard(counter.clone())
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// What a connection and its request handler share: once upgraded to a
/// WebSocket it counts as busy until it closes.
#[derive(Default)]
struct ConnState {
    upgraded: Mutex<Option<CountGuard>>,
}

type SeverFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A connection's stream, counted while it lives (after a WebSocket
/// upgrade too: the upgraded stream is this one), and cut when the hub
/// severs its connections.
struct Tracked<S> {
    inner: S,
    /// Bytes read before the connection was handed over (a request head a
    /// host parsed), read first.
    prefix: Bytes,
    guards: Guards,
    sever: SeverFuture,
    severed: bool,
    /// Runs while writes are blocked; fires after the slow-consumer timeout.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    stall_limit: Duration,
}

/// What keeps a connection counted while it lives: the live count, the
/// per-address count, and (once upgraded) the busy mark.
struct Guards {
    _live: CountGuard,
    _ip: Option<IpGuard>,
    _state: Arc<ConnState>,
}

/// After a WebSocket upgrade on a plain TCP connection: the stream itself,
/// out of hyper and out of [`Tracked`], for the engine's own WebSocket task
/// (see `engine::TakeTcp`). Any other connection is given back.
fn take_tcp(
    upgraded: hyper::upgrade::Upgraded,
) -> Result<crate::engine::RawTcp, hyper::upgrade::Upgraded> {
    let parts = upgraded.downcast::<TokioIo<Tracked<tokio::net::TcpStream>>>()?;
    let tracked = parts.io.into_inner();
    let mut leftover = parts.read_buf;
    if !tracked.prefix.is_empty() {
        let mut all = Vec::with_capacity(leftover.len() + tracked.prefix.len());
        all.extend_from_slice(&leftover);
        all.extend_from_slice(&tracked.prefix);
        leftover = Bytes::from(all);
    }
    Ok(crate::engine::RawTcp {
        stream: tracked.inner,
        leftover,
        guard: Box::new(tracked.guards),
    })
}

impl<S> Tracked<S> {
    fn is_severed(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.severed && self.sever.as_mut().poll(cx).is_ready() {
            self.severed = true;
        }
        self.severed
    }

    /// After a write attempt: a completed one clears the stall clock, a
    /// blocked one starts it; true when it ran out (the client reads
    /// nothing): the connection is then cut.
    fn stalled<T>(&mut self, cx: &mut Context<'_>, attempt: &Poll<T>) -> bool {
        if attempt.is_ready() {
            self.stall = None;
            return false;
        }
        let limit = self.stall_limit;
        let timer = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        tracing::info!("cutting a connection whose client reads nothing (slow consumer)");
        self.severed = true;
        true
    }
}

/// Counts one connection from an IP address while it lives.
struct IpGuard {
    ip: std::net::IpAddr,
    counts: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

fn severed_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the hub is shutting down")
}

/// The error of a write cut for a client that reads nothing; the engine
/// names the session's end `slow consumer` from its kind.
fn stalled_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client reads nothing (slow consumer)",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_severed(cx) {
            // End of stream: the reader stops.
            return Poll::Ready(Ok(()));
        }
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // An empty slice still holds the head's whole buffer.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_severed(cx) {
            return Poll::Ready(Err(severed_error()));
        }
        let attempt = Pin::new(&mut self.inner).poll_write(cx, buf);
        if self.stalled(cx, &attempt) {
            return Poll::Ready(Err(stalled_error()));
        }
        attempt
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_severed(cx) {
            return Poll::Ready(Err(severed_error()));
        }
        let attempt = Pin::new(&mut self.inner).poll_flush(cx);
        if self.stalled(cx, &attempt) {
            return Poll::Ready(Err(stalled_error()));
        }
        attempt
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        // Not vectored, on purpose: a TCP stream's single writes are sends
        // with MSG_NOSIGNAL, its vectored ones `writev`, which raises
        // SIGPIPE on a peer that reset (and a C host does not ignore it).
        false
    }
}

/// Whether a request asks to become a WebSocket.
fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

impl Connections {
    pub(crate) fn new(
        stop: watch::Receiver<bool>,
        sever: watch::Receiver<bool>,
        limits: ConnLimits,
    ) -> Connections {
        Connections {
            stop,
            sever,
            live: Arc::new(watch::channel(0).0),
            busy: Arc::new(watch::channel(0).0),
            limits,
            per_ip: Default::default(),
        }
    }

    /// Counts a connection from `remote` against the per-IP limit; `None`
    /// when it is over (the caller drops the connection).
    fn admit_ip(&self, remote: Option<SocketAddr>) -> Result<Option<IpGuard>, ()> {
        let (Some(addr), max) = (remote, self.limits.max_per_ip) else {
            return Ok(None);
        };
        if max == 0 {
            return Ok(None);
        }
        let ip = addr.ip();
        let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return Err(());
        }
        *n += 1;
        Ok(Some(IpGuard {
            ip,
            counts: self.per_ip.clone(),
        }))
    }

    /// Waits until every connection is closed.
    pub(crate) async fn wait_closed(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Counts a request the host handed over (`Hub::handle_request`) as in
    /// flight while the guard lives.
    pub(crate) fn request_in_flight(&self) -> impl Send + 'static {
        CountGuard::new(&self.busy)
    }

    /// Waits until no request has been in flight and no WebSocket open for
    /// `quiet` in a row. (A polling client between two requests is idle for
    /// a moment: the quiet window lets it come back for what is queued.)
    pub(crate) async fn wait_quiet(&self, quiet: Duration) {
        let mut rx = self.busy.subscribe();
        loop {
            let _ = rx.wait_for(|n| *n == 0).await;
            let busy_again = tokio::time::timeout(quiet, rx.wait_for(|n| *n > 0)).await;
            if busy_again.is_err() {
                return;
            }
        }
    }

    /// Serves HTTP/1 (with upgrades) on `io` until it closes or the hub
    /// stops; over TLS first when `tls` is given. Call from inside the
    /// hub's runtime.
    pub(crate) fn serve<I>(
        &self,
        io: I,
        prefix: Bytes,
        service: HubService,
        remote: Option<SocketAddr>,
        tls: Option<Arc<tls::Tls>>,
    ) where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Ok(ip_guard) = self.admit_ip(remote) else {
            self.limits
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(?remote, "refusing a connection: too many from this address");
            return;
        };
        let state = Arc::new(ConnState::default());
        let mut sever = self.sever.clone();
        let io = Tracked {
            inner: io,
            prefix,
            guards: Guards {
                _live: CountGuard::new(&self.live),
                _ip: ip_guard,
                _state: state.clone(),
            },
            sever: Box::pin(async move { until_stopped(&mut sever).await }),
            severed: false,
            stall: None,
            stall_limit: self.limits.slow_consumer_timeout,
        };
        let busy = self.busy.clone();
        let stop = self.stop.clone();
        let header_timeout = self.limits.header_timeout;
        let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            if let Some(addr) = remote {
                req.extensions_mut().insert(RemoteAddr(addr));
            }
            req.extensions_mut()
                .insert(crate::engine::TakeTcp(take_tcp));
            let upgrade = is_upgrade(&req);
            let in_flight = CountGuard::new(&busy);
            let state = state.clone();
            let busy = busy.clone();
            let mut svc = service.clone();
            async move {
                let resp = svc.call(req).await;
                if upgrade
                    && matches!(&resp, Ok(r) if r.status() == StatusCode::SWITCHING_PROTOCOLS)
                {
                    *state.upgraded.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(CountGuard::new(&busy));
                }
                drop(in_flight);
                resp
            }
        });
        match tls {
            None => {
                tokio::spawn(http1(io, svc, header_timeout, stop));
            }
            Some(tls) => {
                tokio::spawn(async move {
                    // The handshake has the time a request's head has.
                    let handshake = tls.acceptor().accept(io);
                    match tokio::time::timeout(header_timeout, handshake).await {
                        Ok(Ok(io)) => http1(io, svc, header_timeout, stop).await,
                        Ok(Err(e)) => tracing::debug!(?remote, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(?remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Serves HTTP/1 (with upgrades) on `io` until it closes, or finishes the
/// request in flight and closes once `stop` turns true.
async fn http1<I, S>(io: I, svc: S, header_timeout: Duration, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: hyper::service::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Body>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("http connection ended: {e}");
            }
        }
        () = until_stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Encodes an HTTP/1.1 request head (request line, headers, blank line),
/// for handing a connection whose head a host already parsed to
/// [`Hub::serve_connection`](crate::Hub::serve_connection).
///
/// Refuses a method, target or header that could not have come from a
/// valid request (control characters, CR or LF, an empty name).
pub fn request_head<'a, I>(method: &str, target: &str, headers: I) -> Result<Bytes, ActionError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let bad = |what: &str| Err(ActionError::BadRequest(what.to_owned()));
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return bad("the method must be letters only");
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return bad("the request target must be non-empty, without spaces or control characters");
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return bad("a header name is not a valid token");
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return bad("a header value holds CR, LF or NUL");
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_is_encoded_and_checked() {
        let head = request_head(
            "GET",
            "/socket.io/?EIO=4",
            [("Host", "a"), ("Upgrade", "websocket")],
        )
        .unwrap();
        assert_eq!(
            &head[..],
            b"GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
        );
        assert!(request_head("GET", "/a b", []).is_err());
        assert!(request_head("G T", "/", []).is_err());
        assert!(request_head("GET", "/", [("X", "a\r\nInjected: 1")]).is_err());
        assert!(request_head("GET", "/", [("Bad Name", "a")]).is_err());
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.0.0.2"),
        );
        let trusted = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(
            client_addr(Some(proxy), &h, &trusted).map(|a| a.ip().to_string()),
            Some("203.0.113.7".into())
        );
        // An untrusted peer's header is ignored: it could be anyone's.
        assert_eq!(client_addr(Some(proxy), &h, &[]), Some(proxy));
    }
}
