//! Engine.IO v4: sessions over HTTP long-polling and WebSocket, the
//! upgrade from one to the other, and the heartbeat.
//!
//! Owns: the `/socket.io/` HTTP requests (handshake, polling `GET`/`POST`,
//! the WebSocket handshake), session ids, each session's send queue
//! ([`Outbox`]) and its transport, the heartbeat and every error answer of
//! the Engine.IO spec. Hands each message to a [`Handler`] (the Socket.IO
//! layer) and never looks inside one: namespaces, events and the chat are
//! not its business.
//!
//! Cost per session, by design: a WebSocket session is one task that reads,
//! writes and keeps the heartbeat; it owns no read buffer while idle (reads
//! go through a buffer shared by the thread) and its send queue exists only
//! while frames wait. A long-polling session is one small heartbeat task;
//! its requests run on the HTTP connection's task.

pub(crate) mod outbox;
pub(crate) mod packet;
mod polling;
pub(crate) mod sid;
mod websocket;
pub(crate) mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

pub(crate) use outbox::{Outbox, Pushed};
pub(crate) use packet::{Frame, FrameBuilder, Kind, Message};
pub(crate) use sid::Sid;

/// The Engine.IO settings of a hub.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    /// Largest packet (and polling body) accepted, in bytes.
    pub(crate) max_payload: usize,
    /// Time after the handshake for the upper layer to call
    /// [`Session::set_ready`] (Socket.IO: a namespace connect).
    pub(crate) connect_timeout: Duration,
    /// Frames queued per session before further ones are dropped.
    pub(crate) outbox_limit: usize,
    /// Time for the polling → WebSocket upgrade to complete.
    pub(crate) upgrade_timeout: Duration,
    /// Time for a long-polling `POST` body to arrive whole.
    pub(crate) body_timeout: Duration,
    /// A WebSocket whose writes stay blocked this long is cut.
    pub(crate) slow_consumer_timeout: Duration,
}

/// Why a session ended, in Socket.IO's words where it has some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed the transport (or sent a close packet).
    TransportClose,
    /// The transport failed (a read or write error, a broken frame).
    TransportError,
    /// The client answered no ping in time.
    PingTimeout,
    /// The client sent something that is not a packet.
    ParseError,
    /// Two long-polling `GET`s at once.
    MultiplePolling,
    /// The client read nothing for too long.
    SlowConsumer,
    /// No namespace was joined in time after the handshake.
    ConnectTimeout,
    /// The server closed it (the upper layer, or shutdown).
    Server,
}

impl CloseReason {
    /// The text Socket.IO gives this reason.
    pub(crate) fn text(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::MultiplePolling => "multiple polling requests",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::ConnectTimeout => "connect timeout",
            CloseReason::Server => "server shutting down",
        }
    }

    /// Every reason, in the order of [`CloseReason::index`].
    pub(crate) const ALL: [CloseReason; 8] = [
        CloseReason::TransportClose,
        CloseReason::TransportError,
        CloseReason::PingTimeout,
        CloseReason::ParseError,
        CloseReason::MultiplePolling,
        CloseReason::SlowConsumer,
        CloseReason::ConnectTimeout,
        CloseReason::Server,
    ];

    /// Its place in [`CloseReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether the client asked for it (its long-poll ends with a noop).
    fn by_client(self) -> bool {
        matches!(self, CloseReason::TransportClose)
    }

    /// Whether a long-polling client still fetches the end of its session
    /// (a close packet when the server closed it, a noop when it did).
    fn fetched_by_polling(self) -> bool {
        matches!(self, CloseReason::Server | CloseReason::TransportClose)
    }
}

/// What the upper layer asks of the transport after a message.
pub(crate) enum Step {
    /// Go on reading.
    Next,
    /// Read nothing more until this completes (an async hook): the
    /// session's messages are handled in order, one at a time.
    Wait(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Close the session.
    Close(CloseReason),
}

/// A plain TCP connection taken out of the HTTP layer after a WebSocket
/// upgrade, for the WebSocket task to own directly (and for broadcasts to
/// write to inline; see [`Outbox`]).
pub(crate) struct RawTcp {
    pub(crate) stream: tokio::net::TcpStream,
    /// Bytes the HTTP layer read past the upgrade request.
    pub(crate) leftover: Bytes,
    /// What keeps the connection counted while it lives.
    pub(crate) guard: Box<dyn Send>,
}

/// Writes `bufs` to a TCP stream now, without blocking, and never with a
/// SIGPIPE: a C host does not ignore that signal (Rust and Node programs
/// do), and a vectored write to a peer that reset would kill it.
pub(crate) fn send_now(
    stream: &tokio::net::TcpStream,
    bufs: &[std::io::IoSlice<'_>],
) -> std::io::Result<usize> {
    stream.try_io(tokio::io::Interest::WRITABLE, || {
        socket2::SockRef::from(stream).send_vectored_with_flags(bufs, NO_SIGPIPE)
    })
}

/// The send flag that keeps a write to a reset peer from raising SIGPIPE
/// (Apple systems have none: there the socket option is set instead, see
/// `websocket::TcpIo::new`).
#[cfg(not(target_vendor = "apple"))]
const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NO_SIGPIPE: libc::c_int = 0;

/// How the HTTP layer gives up a plain TCP connection after an upgrade
/// (in the request's extensions); any other connection comes back as is.
#[derive(Clone, Copy)]
pub(crate) struct TakeTcp(
    pub(crate) fn(hyper::upgrade::Upgraded) -> Result<RawTcp, hyper::upgrade::Upgraded>,
);

impl std::fmt::Debug for TakeTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TakeTcp")
    }
}

/// What a session knows of the request that opened it.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    /// The request's headers (cookies included), copied into one buffer
    /// as `name\0value\0…`: a session keeps them for its whole life (for
    /// the hooks of every namespace it joins), and hyper's own values would
    /// keep the connection's whole read buffer alive.
    headers: Box<[u8]>,
    /// The client's address, when known.
    pub(crate) remote: Option<SocketAddr>,
}

impl Handshake {
    /// Keeps `headers` (in one allocation) and the client's address.
    pub(crate) fn new(headers: &HeaderMap, remote: Option<SocketAddr>) -> Handshake {
        let size = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 2)
            .sum();
        let mut packed = Vec::with_capacity(size);
        for (k, v) in headers {
            // Header names and values never hold NUL (hyper refuses them).
            packed.extend_from_slice(k.as_str().as_bytes());
            packed.push(0);
            packed.extend_from_slice(v.as_bytes());
            packed.push(0);
        }
        Handshake {
            headers: packed.into_boxed_slice(),
            remote,
        }
    }

    /// The headers, as a map.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        let mut parts = self.headers.split(|b| *b == 0);
        while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
            if let (Ok(k), Ok(v)) = (
                http::header::HeaderName::from_bytes(k),
                HeaderValue::from_bytes(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }
}

/// The layer above Engine.IO (Socket.IO).
pub(crate) trait Handler: Send + Sync + Sized + 'static {
    /// What the upper layer keeps per session.
    type Data: Send + Sync + 'static;
    /// A session opens.
    fn open(&self, handshake: Handshake) -> Self::Data;
    /// A message arrived (in order).
    fn message(&self, session: &Arc<Session<Self>>, msg: Message) -> Step;
    /// The session ended (called once).
    fn close(&self, session: &Arc<Session<Self>>, reason: CloseReason);
}

/// The transport a session uses now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Polling,
    Websocket,
}

/// One Engine.IO session.
pub(crate) struct Session<H: Handler> {
    sid: Sid,
    /// Frames waiting to be sent.
    pub(crate) out: Outbox,
    st: Mutex<SessionState>,
    /// Set once the upper layer is ready (see [`EngineConfig::connect_timeout`]).
    ready: AtomicBool,
    /// Wakes the heartbeat of a long-polling session (a pong came, the
    /// session closed or upgraded).
    notify: tokio::sync::Notify,
    engine: std::sync::Weak<EngineShared<H>>,
    /// The upper layer's state for this session.
    pub(crate) data: H::Data,
}

impl<H: Handler> std::fmt::Debug for Session<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct SessionState {
    transport: Transport,
    /// A WebSocket is probing this polling session.
    upgrading: bool,
    /// Why it ended, once it did.
    closed: Option<CloseReason>,
    /// A long-polling `GET` is waiting.
    polling: bool,
    /// A long-polling `POST` is being read.
    posting: bool,
    /// The next (or pending) `GET` answers a noop (an upgrade is under way).
    noop: bool,
    /// The upgrade's probe was answered: the client sends `5` on the
    /// WebSocket next, and polls no more.
    probed: bool,
    /// A pong is awaited (polling heartbeat).
    pong_due: bool,
    /// A long-poll answered the close packet.
    close_sent: bool,
}

impl<H: Handler> Session<H> {
    /// The Engine.IO session id (a secret of its client).
    pub(crate) fn sid(&self) -> Sid {
        self.sid
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport in use now.
    pub(crate) fn transport(&self) -> Transport {
        self.lock().transport
    }

    /// Tells the engine that the upper layer is set up (a namespace was
    /// joined): the connect timeout no longer applies.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether the session has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Queues one frame for the client.
    pub(crate) fn send(&self, frame: Frame) -> Pushed {
        self.out.push(frame)
    }

    /// Ends the session: the upper layer hears of it (once), what is
    /// queued is still sent, then the transport closes.
    pub(crate) fn close(self: &Arc<Self>, reason: CloseReason) {
        let polling = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason);
            let polling = st.transport == Transport::Polling;
            if let Some(engine) = self.engine.upgrade() {
                engine.counters.session_ended(polling, reason);
            }
            polling
        };
        // Nothing more is queued for a session that ended (what is queued
        // still goes out); so a storm of leaves costs no memory for those
        // already gone.
        self.out.close();
        if let Some(engine) = self.engine.upgrade() {
            // Unknown from now on, but for a long-polling session closed by
            // the server or its client: the client still fetches the close
            // (a close packet, or a noop), see `polling`.
            if !(polling && reason.fetched_by_polling()) {
                engine.forget(self);
            }
            engine.handler.close(self, reason);
        }
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Resolves once the session has ended.
    pub(crate) async fn ended(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Handles one packet from the client, on whichever transport.
    fn receive(self: &Arc<Self>, engine: &EngineShared<H>, packet: packet::Inbound) -> Step {
        use packet::Inbound;
        match packet {
            Inbound::Message(m) => {
                if self.is_closed() {
                    return Step::Next;
                }
                engine.handler.message(self, m)
            }
            Inbound::Pong(_) => {
                self.lock().pong_due = false;
                self.notify.notify_one();
                Step::Next
            }
            Inbound::Close => Step::Close(CloseReason::TransportClose),
            // v4 clients ping only to probe an upgrade, which the WebSocket
            // side handles; elsewhere a ping is answered, as Node does.
            Inbound::Ping(data) => {
                self.out.push(Frame::text(Kind::Pong, &data));
                Step::Next
            }
            Inbound::Upgrade | Inbound::Noop => Step::Next,
        }
    }
}

/// The engine's state shared by its requests and tasks.
pub(crate) struct EngineShared<H: Handler> {
    pub(crate) config: EngineConfig,
    pub(crate) handler: H,
    sessions: Mutex<HashMap<Sid, Arc<Session<H>>>>,
    /// Origins allowed besides the page's own (`*`: any).
    origins: Vec<String>,
    /// Set at shutdown: no new session.
    closing: AtomicBool,
    /// Sessions, bytes, cuts (see [`crate::metrics`]).
    pub(crate) counters: Arc<crate::metrics::EngineCounters>,
}

/// The Engine.IO server.
pub(crate) struct Engine<H: Handler> {
    shared: Arc<EngineShared<H>>,
}

impl<H: Handler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
        }
    }
}

impl<H: Handler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// The error answers of the Engine.IO spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineError {
    TransportUnknown = 0,
    SessionUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedVersion = 5,
}

impl EngineError {
    fn message(self) -> &'static str {
        match self {
            EngineError::TransportUnknown => "Transport unknown",
            EngineError::SessionUnknown => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedVersion => "Unsupported protocol version",
        }
    }

    /// The response: 400 (403 for `Forbidden`) with `{"code","message"}`.
    pub(crate) fn response(self) -> Response<Body> {
        let status = if self == EngineError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self as u8,
            self.message()
        );
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// The query parameters Engine.IO reads.
#[derive(Debug, Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

fn query(uri: &http::Uri) -> Query<'_> {
    let mut q = Query::default();
    for kv in uri.query().unwrap_or("").split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "EIO" => q.eio = Some(v),
            "transport" => q.transport = Some(v),
            "sid" => q.sid = Some(v),
            _ => {}
        }
    }
    q
}

/// Whether `origin` may open a session on a server reached as `host`:
/// the page's own origin, or one of `allowed` (`*`: any).
pub(crate) fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

impl<H: Handler> EngineShared<H> {
    /// Takes a session out of the table (its transport is done with it).
    fn forget(&self, s: &Arc<Session<H>>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.get(&s.sid).is_some_and(|x| Arc::ptr_eq(x, s)) {
            sessions.remove(&s.sid);
        }
    }
}

impl<H: Handler> Engine<H> {
    /// An engine with `handler` on top. `origins`: the origins allowed
    /// besides same-origin requests (`*`: any).
    pub(crate) fn new(config: EngineConfig, handler: H, origins: Vec<String>) -> Engine<H> {
        Engine {
            shared: Arc::new(EngineShared {
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                origins,
                counters: Arc::default(),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// The upper layer.
    pub(crate) fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The engine's counters.
    pub(crate) fn counters(&self) -> &Arc<crate::metrics::EngineCounters> {
        &self.shared.counters
    }

    /// Every open session (for shutdown).
    pub(crate) fn sessions(&self) -> Vec<Arc<Session<H>>> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Refuses new sessions from now on.
    pub(crate) fn stop_accepting(&self) {
        self.shared.closing.store(true, Ordering::Release);
    }

    /// Answers one request under the engine's path. `remote` is the peer
    /// (or the client a trusted proxy named).
    pub(crate) async fn handle(
        &self,
        mut req: Request<Body>,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let q = query(req.uri());
        match q.eio {
            Some("4") => {}
            _ => return EngineError::UnsupportedVersion.response(),
        }
        let websocket = match q.transport {
            Some("polling") => false,
            Some("websocket") => true,
            _ => return EngineError::TransportUnknown.response(),
        };
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let ok = origin
                .to_str()
                .is_ok_and(|o| origin_allowed(o, host, &self.shared.origins));
            if !ok {
                tracing::debug!(origin = ?origin, "refusing a request from another origin");
                self.shared
                    .counters
                    .origin_refusals
                    .fetch_add(1, Ordering::Relaxed);
                return EngineError::Forbidden.response();
            }
        }
        let sid = match q.sid {
            None => None,
            Some(s) => match s.parse::<Sid>().ok().and_then(|sid| self.find(sid)) {
                Some(session) => Some(session),
                None => return EngineError::SessionUnknown.response(),
            },
        };
        let is_upgrade = req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        match (websocket, sid) {
            (true, session) => {
                if !is_upgrade || req.method() != Method::GET {
                    return EngineError::BadRequest.response();
                }
                let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
                    return EngineError::BadRequest.response();
                };
                if let Some(s) = &session
                    && !s.begin_upgrade()
                {
                    // Upgraded (or upgrading) already: as Node does, the
                    // WebSocket is accepted, then closed at once.
                    let on_upgrade = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(io) = on_upgrade.await {
                            websocket::refuse(hyper_util::rt::TokioIo::new(io)).await;
                        }
                    });
                    return switching_protocols(&key);
                }
                if session.is_none() && self.shared.closing.load(Ordering::Acquire) {
                    return EngineError::Forbidden.response();
                }
                let on_upgrade = hyper::upgrade::on(&mut req);
                let take_tcp = req.extensions().get::<TakeTcp>().copied();
                let handshake = Handshake::new(req.headers(), remote);
                let engine = self.clone();
                tokio::spawn(async move {
                    let upgraded = match on_upgrade.await {
                        Ok(io) => io,
                        Err(e) => {
                            tracing::debug!("the WebSocket upgrade failed: {e}");
                            if let Some(s) = session {
                                s.end_upgrade(false);
                            }
                            return;
                        }
                    };
                    // A plain TCP connection: owned directly (broadcasts
                    // write to it inline); anything else through hyper.
                    let io = match take_tcp {
                        Some(take) => match (take.0)(upgraded) {
                            Ok(raw) => websocket::Io::Tcp(raw),
                            Err(other) => websocket::Io::Other(hyper_util::rt::TokioIo::new(other)),
                        },
                        None => websocket::Io::Other(hyper_util::rt::TokioIo::new(upgraded)),
                    };
                    match session {
                        Some(s) => websocket::upgrade(engine.shared, s, io).await,
                        None => {
                            let s = engine.open(handshake, Transport::Websocket);
                            websocket::run(engine.shared, s, io).await
                        }
                    }
                });
                switching_protocols(&key)
            }
            (false, None) => {
                if req.method() != Method::GET {
                    return EngineError::BadHandshakeMethod.response();
                }
                if self.shared.closing.load(Ordering::Acquire) {
                    return EngineError::Forbidden.response();
                }
                let handshake = Handshake::new(req.headers(), remote);
                let session = self.open(handshake, Transport::Polling);
                let opened = tokio::time::Instant::now();
                tokio::spawn(polling::heartbeat(
                    self.shared.clone(),
                    session.clone(),
                    opened,
                ));
                polling::text_response(Bytes::from(self.open_packet(&session, true)))
            }
            (false, Some(session)) => match *req.method() {
                Method::GET => polling::get(&self.shared, session).await,
                Method::POST => polling::post(&self.shared, session, req.into_body()).await,
                _ => EngineError::BadRequest.response(),
            },
        }
    }

    fn find(&self, sid: Sid) -> Option<Arc<Session<H>>> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sid)
            .cloned()
    }

    /// Opens a session and registers it.
    fn open(&self, handshake: Handshake, transport: Transport) -> Arc<Session<H>> {
        let data = self.shared.handler.open(handshake);
        let session = Arc::new(Session {
            sid: Sid::new(),
            out: Outbox::new(
                self.shared.config.outbox_limit,
                self.shared.counters.clone(),
            ),
            st: Mutex::new(SessionState {
                transport,
                upgrading: false,
                closed: None,
                polling: false,
                posting: false,
                noop: false,
                probed: false,
                pong_due: false,
                close_sent: false,
            }),
            ready: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
            engine: Arc::downgrade(&self.shared),
            data,
        });
        let c = &self.shared.counters;
        let (open, opened) = match transport {
            Transport::Polling => (&c.open_polling, &c.opened[0]),
            Transport::Websocket => (&c.open_websocket, &c.opened[1]),
        };
        open.fetch_add(1, Ordering::Relaxed);
        opened.fetch_add(1, Ordering::Relaxed);
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.sid, session.clone());
        session
    }

    /// The open packet's JSON: `0{"sid",...}`.
    fn open_packet(&self, session: &Session<H>, polling: bool) -> String {
        open_packet(&self.shared.config, session.sid, polling)
    }
}

/// The open packet for a session.
fn open_packet(c: &EngineConfig, sid: Sid, polling: bool) -> String {
    format!(
        "0{{\"sid\":\"{sid}\",\"upgrades\":{},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
        if polling { "[\"websocket\"]" } else { "[]" },
        c.ping_interval.as_millis(),
        c.ping_timeout.as_millis(),
        c.max_payload
    )
}

impl<H: Handler> Session<H> {
    /// Starts a WebSocket upgrade of this polling session; false when it
    /// cannot (not polling, closed, an upgrade under way).
    fn begin_upgrade(&self) -> bool {
        let mut st = self.lock();
        if st.transport != Transport::Polling || st.upgrading || st.closed.is_some() {
            return false;
        }
        st.upgrading = true;
        true
    }

    /// Ends an upgrade: on success the WebSocket is the transport from now
    /// on; a waiting `GET` ends with a noop.
    fn end_upgrade(&self, done: bool) {
        {
            let mut st = self.lock();
            st.upgrading = false;
            st.probed = false;
            if done && st.transport == Transport::Polling {
                st.transport = Transport::Websocket;
                if st.closed.is_none()
                    && let Some(engine) = self.engine.upgrade()
                {
                    let c = &engine.counters;
                    c.open_polling.fetch_sub(1, Ordering::Relaxed);
                    c.open_websocket.fetch_add(1, Ordering::Relaxed);
                    c.upgrades.fetch_add(1, Ordering::Relaxed);
                }
            }
            st.noop = false;
        }
        // The GET (or the heartbeat) sees the change.
        self.out.wake();
        self.notify.notify_one();
    }

    /// The upgrade's probe was answered: a waiting (or the next) `GET`
    /// ends with a noop, and the client polls no more.
    fn probe_answered(&self) {
        {
            let mut st = self.lock();
            st.noop = true;
            st.probed = true;
        }
        self.out.wake();
    }
}

/// The `101 Switching Protocols` answer to a WebSocket handshake.
fn switching_protocols(key: &HeaderValue) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&ws::accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read() {
        let uri: http::Uri = "/socket.io/?EIO=4&transport=polling&t=x&sid=abc"
            .parse()
            .unwrap();
        let q = query(&uri);
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
    }

    #[test]
    fn a_handshake_keeps_every_header_in_one_buffer() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        h.append("x-custom", HeaderValue::from_static(""));
        let hs = Handshake::new(&h, None);
        assert_eq!(hs.headers(), h);
    }

    #[test]
    fn origins_same_or_listed() {
        assert!(origin_allowed(
            "http://127.0.0.1:3000",
            Some("127.0.0.1:3000"),
            &[]
        ));
        assert!(!origin_allowed(
            "http://evil.example",
            Some("127.0.0.1:3000"),
            &[]
        ));
        assert!(origin_allowed(
            "http://app.example",
            Some("api.example"),
            &["http://app.example".into()]
        ));
        assert!(origin_allowed("http://x", Some("y"), &["*".into()]));
        assert!(!origin_allowed("http://x", None, &[]));
    }

    #[test]
    fn close_reasons_are_listed_in_index_order() {
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
    }

    #[test]
    fn the_open_packet_has_every_field() {
        let c = EngineConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(1),
            outbox_limit: 10,
            upgrade_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            slow_consumer_timeout: Duration::from_secs(10),
        };
        let sid = Sid::new();
        let p = open_packet(&c, sid, true);
        let v: serde_json::Value = serde_json::from_str(&p[1..]).unwrap();
        assert_eq!(v["sid"], sid.as_str());
        assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
        assert_eq!(v["pingInterval"], 300);
        assert_eq!(v["pingTimeout"], 200);
        assert_eq!(v["maxPayload"], 1_000_000);
    }
}
