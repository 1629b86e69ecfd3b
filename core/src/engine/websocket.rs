//! The WebSocket transport: one task per connection reads the client's
//! frames, writes the session's queue and keeps the heartbeat, all in one
//! poll loop.
//!
//! Reads go into a buffer that belongs to the thread, not the connection;
//! only the tail of a frame that has not fully arrived is kept (and freed
//! once it has). While the upper layer waits on something (an async hook),
//! the task reads nothing more from that client, so its messages are
//! handled in order, but it keeps writing and keeping the heartbeat.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::packet::{self, Frame, Inbound, Kind, Message};
use super::ws::{self, Assembler, WsEvent, code};
use super::{CloseReason, EngineShared, Handler, Session, Step};

/// The size of each thread's read buffer.
const SCRATCH_SIZE: usize = 16 * 1024;
/// Rounds of reading and writing in one poll before letting others run.
const ROUNDS: usize = 32;
/// How long a closing connection may take to flush its last frames.
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

thread_local! {
    /// Every connection polled on this thread reads into this buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A WebSocket's connection: a plain TCP stream the task owns (and
/// broadcasts write to inline), or any other through hyper.
pub(super) enum Io {
    Tcp(super::RawTcp),
    Other(hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>),
}

/// Serves a new session over a WebSocket: the open packet first.
pub(super) async fn run<H: Handler>(engine: Arc<EngineShared<H>>, s: Arc<Session<H>>, io: Io) {
    let open = super::open_packet(&engine.config, s.sid, false);
    let open = Frame::text(Kind::Open, &open.as_bytes()[1..]);
    match io {
        Io::Tcp(raw) => {
            let (io, direct) = TcpIo::new(raw.stream);
            let mut conn = Conn::new(engine, s, io, Phase::Live, Some(direct), Some(raw.guard));
            conn.ctrl.extend_from_slice(open.ws());
            conn.leftover(raw.leftover);
            conn.drive().await;
        }
        Io::Other(io) => {
            let mut conn = Conn::new(engine, s, io, Phase::Live, None, None);
            conn.ctrl.extend_from_slice(open.ws());
            conn.drive().await;
        }
    }
}

/// Upgrades a polling session: the probe, then the session's transport.
pub(super) async fn upgrade<H: Handler>(engine: Arc<EngineShared<H>>, s: Arc<Session<H>>, io: Io) {
    let until = Instant::now() + engine.config.upgrade_timeout;
    let phase = Phase::Probe {
        probed: false,
        until,
    };
    match io {
        Io::Tcp(raw) => {
            let (io, direct) = TcpIo::new(raw.stream);
            let mut conn = Conn::new(engine, s, io, phase, Some(direct), Some(raw.guard));
            conn.leftover(raw.leftover);
            conn.drive().await;
        }
        Io::Other(io) => Conn::new(engine, s, io, phase, None, None).drive().await,
    }
}

/// A TCP stream shared by the WebSocket task (which reads and writes it)
/// and the session's queue (which writes to it inline when idle).
struct TcpIo(Arc<tokio::net::TcpStream>);

impl TcpIo {
    fn new(stream: tokio::net::TcpStream) -> (TcpIo, Arc<tokio::net::TcpStream>) {
        #[cfg(target_vendor = "apple")]
        if let Err(e) = socket2::SockRef::from(&stream).set_nosigpipe(true) {
            tracing::debug!("cannot set SO_NOSIGPIPE: {e}");
        }
        let shared = Arc::new(stream);
        (TcpIo(shared.clone()), shared)
    }
}

impl AsyncRead for TcpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TcpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match super::send_now(&self.0, bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Our side is done (FIN); the stream itself closes when the last
        // handle on it is dropped.
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

/// Closes a WebSocket that has no session to carry (its session moved to
/// another one already): a close frame, then the end.
pub(super) async fn refuse<S>(mut io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    use tokio::io::AsyncWriteExt;
    let close = async {
        io.write_all(&ws::close(code::NORMAL)).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, close).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Upgrading a polling session: `2probe` answered with `3probe`, then
    /// `5` makes this the session's transport.
    Probe { probed: bool, until: Instant },
    /// The session's transport.
    Live,
}

/// A connection that is ending: its last frames, a close frame, our side
/// shut, then what the client still sends is read and dropped until it
/// closes too (closing with unread bytes would reset the connection, and
/// the client could lose the close frame with its code).
#[derive(Debug, Clone, Copy)]
struct Closing {
    code: u16,
    until: Instant,
    sent: bool,
    shut: bool,
}

struct Conn<H: Handler, S> {
    engine: Arc<EngineShared<H>>,
    s: Arc<Session<H>>,
    io: S,
    /// The start of a frame whose end has not arrived.
    pending: BytesMut,
    /// Set when frames were left unread in `pending` (the upper layer
    /// asked to wait).
    unparsed: bool,
    asm: Assembler,
    /// Frames of this connection's own, written before the session's
    /// queue: the open packet, pings, pongs, the probe's answer, close.
    ctrl: BytesMut,
    busy: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
    /// The timer was polled since its deadline was last set.
    timer_armed: bool,
    next_ping: Instant,
    pong_by: Option<Instant>,
    connect_by: Instant,
    reading: bool,
    closing: Option<Closing>,
    /// The probe failed: end this WebSocket, the session goes on polling.
    abandon: bool,
    /// The client went away; its leave is handled at the next turn.
    gone: Option<CloseReason>,
    /// The connection is finished.
    done: bool,
    /// A plain TCP stream the session's queue may write to inline.
    direct: Option<Arc<tokio::net::TcpStream>>,
    /// Keeps the connection counted (live, per address) while it lives.
    _guard: Option<Box<dyn Send>>,
    /// Since when the session's frames wait for a socket that takes none.
    stalled_since: Option<Instant>,
}

impl<H, S> Conn<H, S>
where
    H: Handler,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn new(
        engine: Arc<EngineShared<H>>,
        s: Arc<Session<H>>,
        io: S,
        phase: Phase,
        direct: Option<Arc<tokio::net::TcpStream>>,
        guard: Option<Box<dyn Send>>,
    ) -> Self {
        let now = Instant::now();
        let c = &engine.config;
        let next_ping = now + c.ping_interval;
        let connect_by = now + c.connect_timeout;
        Conn {
            io,
            pending: BytesMut::new(),
            unparsed: false,
            asm: Assembler::default(),
            ctrl: BytesMut::new(),
            busy: None,
            phase,
            timer: Box::pin(tokio::time::sleep_until(next_ping)),
            timer_at: next_ping,
            timer_armed: false,
            next_ping,
            pong_by: None,
            connect_by,
            reading: true,
            closing: None,
            abandon: false,
            gone: None,
            done: false,
            direct,
            _guard: guard,
            stalled_since: None,
            engine,
            s,
        }
    }

    /// Bytes read before this task had the connection: parsed first.
    /// Taken by value and dropped here: even empty, a slice of the HTTP
    /// layer's read buffer would keep that whole buffer alive.
    fn leftover(&mut self, bytes: bytes::Bytes) {
        if !bytes.is_empty() {
            self.pending.extend_from_slice(&bytes);
            self.unparsed = true;
        }
    }

    /// The session's queue may write to the stream inline from now on.
    fn go_direct(&self) {
        if let Some(d) = &self.direct {
            self.s.out.set_direct(Some(d.clone()));
        }
    }

    async fn drive(mut self) {
        if self.phase == Phase::Live {
            self.go_direct();
        }
        std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        // The queue lets go of the stream: it closes with this task.
        self.s.out.set_direct(None);
        if self.phase == Phase::Live {
            self.engine.forget(&self.s);
        } else {
            self.s.end_upgrade(false);
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(reason) = self.gone.take() {
            self.s.close(reason);
            return Poll::Ready(());
        }
        for _ in 0..ROUNDS {
            if self.done {
                return Poll::Ready(());
            }
            if self.gone.is_some() {
                // Let the others see their own end first (see `lost`).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut again = false;
            if let Some(f) = self.busy.as_mut()
                && f.as_mut().poll(cx).is_ready()
            {
                self.busy = None;
                again = true;
            }
            if self.closing.is_none() && self.phase == Phase::Live && self.s.out.is_closed() {
                self.start_closing(code::NORMAL);
            }
            if self.busy.is_none() && self.unparsed {
                self.consume(&mut []);
                again = true;
            }
            if self.reading && self.busy.is_none() && self.closing.is_none() && !self.unparsed {
                again |= self.poll_read(cx).is_ready();
            }
            match self.poll_write(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(c) = self.closing.as_mut() {
                        if !c.sent {
                            c.sent = true;
                            self.ctrl.extend_from_slice(&ws::close(c.code));
                            again = true;
                        } else {
                            if !c.shut {
                                // A shutdown that is not done yet finishes
                                // with the connection anyway.
                                c.shut = true;
                                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                            }
                            if self.poll_drain(cx).is_ready() {
                                return Poll::Ready(());
                            }
                        }
                    } else if self.abandon {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Err(e)) => {
                    let reason = if e.kind() == io::ErrorKind::TimedOut {
                        CloseReason::SlowConsumer
                    } else {
                        CloseReason::TransportError
                    };
                    if self.phase == Phase::Live {
                        self.s.close(reason);
                    }
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
            again |= self.poll_timers(cx);
            if !again {
                return Poll::Pending;
            }
        }
        // Others' turn; come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reads what the socket has and handles it. `Ready`: something
    /// happened (data, end of stream); read again.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        SCRATCH.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(&mut buf[..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(sid = %self.s.sid, "WebSocket read failed: {e}");
                    self.lost(CloseReason::TransportError);
                    Poll::Ready(())
                }
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.lost(CloseReason::TransportClose);
                    } else {
                        self.engine.counters.bytes_in.add(n as u64);
                        self.consume(&mut buf[..n]);
                    }
                    Poll::Ready(())
                }
            }
        })
    }

    /// After our close: reads and drops what the client still sends, until
    /// it closes (or the close's time is up: see the timers).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        SCRATCH.with_borrow_mut(|buf| {
            for _ in 0..ROUNDS {
                let mut rb = ReadBuf::new(&mut buf[..]);
                match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => {}
                    Poll::Ready(_) => return Poll::Ready(()),
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    /// The client went away (end of stream, read error): nothing more can
    /// be written either. The session's queue refuses frames at once, but
    /// its leave is handled on the next turn: when many clients go at once
    /// (a process or a network dies), every one of them is marked gone
    /// before any leave notice is sent, and none is queued for them.
    fn lost(&mut self, reason: CloseReason) {
        self.reading = false;
        if self.phase == Phase::Live {
            self.s.out.close();
            self.gone = Some(reason);
        } else {
            self.done = true;
        }
    }

    /// Handles the complete frames of `data` (appended to what is
    /// pending), keeping an incomplete tail for later.
    fn consume(&mut self, data: &mut [u8]) {
        self.unparsed = false;
        if self.pending.is_empty() {
            let used = self.parse(data);
            if used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            self.pending.extend_from_slice(data);
            let mut p = std::mem::take(&mut self.pending);
            let used = self.parse(&mut p[..]);
            p.advance(used);
            if !p.is_empty() {
                self.pending = p;
            }
        }
    }

    /// Parses and handles frames from the start of `data`; returns the
    /// bytes used. Stops early when the upper layer asks to wait (the rest
    /// is parsed later) or the connection is ending.
    fn parse(&mut self, data: &mut [u8]) -> usize {
        // A text packet is its type digit and up to `max_payload` bytes.
        let max = self.engine.config.max_payload + 1;
        let mut at = 0;
        loop {
            if self.busy.is_some() {
                self.unparsed = at < data.len();
                break;
            }
            if !self.reading || self.closing.is_some() || self.abandon {
                break;
            }
            match ws::parse_frame(&mut data[at..], max) {
                Ok(None) => break,
                Ok(Some(f)) => {
                    let ev = self.asm.push(f, &data[at + f.start..at + f.end], max);
                    at += f.end;
                    match ev {
                        Ok(Some(ev)) => self.on_ws_event(ev),
                        Ok(None) => {}
                        Err(e) => self.ws_error(e.0),
                    }
                }
                Err(e) => {
                    self.ws_error(e.0);
                    break;
                }
            }
        }
        at
    }

    fn on_ws_event(&mut self, ev: WsEvent) {
        match ev {
            WsEvent::Ping(data) => self.ctrl.extend_from_slice(&ws::pong(&data)),
            WsEvent::Close(_) => {
                self.reading = false;
                match self.phase {
                    Phase::Live => {
                        self.s.close(CloseReason::TransportClose);
                        self.start_closing(code::NORMAL);
                    }
                    Phase::Probe { .. } => {
                        self.ctrl.extend_from_slice(&ws::close(code::NORMAL));
                        self.abandon = true;
                    }
                }
            }
            WsEvent::Text(text) => match packet::decode_text(text) {
                Ok(p) => self.on_packet(p),
                Err(_) => self.fail(CloseReason::ParseError, code::NORMAL),
            },
            WsEvent::Binary(data) => self.on_packet(Inbound::Message(Message::Binary(data))),
        }
    }

    /// A frame broke the WebSocket rules: close with `code`.
    fn ws_error(&mut self, code: u16) {
        if code == code::TOO_BIG {
            self.engine
                .counters
                .payload_cuts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!(sid = %self.s.sid, code, "closing a WebSocket that broke the framing rules");
        self.fail(CloseReason::TransportError, code);
    }

    fn fail(&mut self, reason: CloseReason, code: u16) {
        self.reading = false;
        match self.phase {
            Phase::Live => {
                self.s.close(reason);
                self.start_closing(code);
            }
            Phase::Probe { .. } => {
                self.ctrl.extend_from_slice(&ws::close(code));
                self.abandon = true;
            }
        }
    }

    fn on_packet(&mut self, p: Inbound) {
        match &mut self.phase {
            Phase::Probe { probed, .. } => match p {
                Inbound::Ping(data) if !*probed && &data[..] == b"probe" => {
                    *probed = true;
                    self.ctrl
                        .extend_from_slice(Frame::text(Kind::Pong, b"probe").ws());
                    self.s.probe_answered();
                }
                Inbound::Upgrade if *probed => {
                    self.phase = Phase::Live;
                    self.s.end_upgrade(true);
                    self.go_direct();
                    let now = Instant::now();
                    self.next_ping = now + self.engine.config.ping_interval;
                    self.connect_by = now + self.engine.config.connect_timeout;
                }
                Inbound::Noop => {}
                _ => {
                    tracing::debug!(sid = %self.s.sid, "unexpected packet during an upgrade; dropping the WebSocket");
                    self.ctrl.extend_from_slice(&ws::close(code::PROTOCOL));
                    self.abandon = true;
                }
            },
            Phase::Live => {
                if let Inbound::Pong(_) = p {
                    self.pong_by = None;
                    self.next_ping = Instant::now() + self.engine.config.ping_interval;
                    return;
                }
                match self.s.receive(&self.engine, p) {
                    Step::Next => {}
                    Step::Wait(f) => self.busy = Some(f),
                    Step::Close(reason) => {
                        self.reading = false;
                        self.s.close(reason);
                    }
                }
            }
        }
    }

    fn start_closing(&mut self, code: u16) {
        if self.closing.is_none() {
            self.reading = false;
            self.closing = Some(Closing {
                code,
                until: Instant::now() + CLOSE_FLUSH,
                sent: false,
                shut: false,
            });
        }
    }

    /// Writes this connection's own frames, then (once it is the session's
    /// transport) the session's queue. `Ready(Ok)`: all written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.phase == Phase::Live && !self.ctrl.is_empty() {
            // Through the session's queue: never into the middle of a
            // frame a broadcast wrote in part.
            let ctrl = self.ctrl.split().freeze();
            self.s.out.push_raw(Frame::raw_ws(ctrl));
        }
        while !self.ctrl.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.ctrl) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.engine.counters.bytes_out.add(n as u64);
                    self.ctrl.advance(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.ctrl.capacity() > 0 {
            self.ctrl = BytesMut::new();
        }
        if self.phase == Phase::Live {
            match self.s.out.poll_write(Pin::new(&mut self.io), cx) {
                Poll::Ready(Ok(())) => self.stalled_since = None,
                Poll::Pending => {
                    self.stalled_since.get_or_insert_with(Instant::now);
                    return Poll::Pending;
                }
                other => return other,
            }
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Fires due timers (ping, pong deadline, connect deadline, probe and
    /// close bounds); true when one fired.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let c = &self.engine.config;
        let mut fired = false;
        if let Some(cl) = self.closing {
            if now >= cl.until {
                self.done = true;
                return true;
            }
        } else {
            match self.phase {
                Phase::Probe { until, .. } => {
                    if now >= until {
                        self.abandon = true;
                        fired = true;
                    }
                }
                Phase::Live => {
                    if self
                        .stalled_since
                        .is_some_and(|t| now >= t + c.slow_consumer_timeout)
                    {
                        tracing::info!(sid = %self.s.sid, "cutting a WebSocket whose client reads nothing (slow consumer)");
                        self.s.close(CloseReason::SlowConsumer);
                        self.done = true;
                        return true;
                    }
                    if let Some(by) = self.pong_by {
                        if now >= by {
                            self.s.close(CloseReason::PingTimeout);
                            fired = true;
                        }
                    } else if now >= self.next_ping {
                        self.ctrl
                            .extend_from_slice(Frame::text(Kind::Ping, b"").ws());
                        // From when the ping was due, not when this ran.
                        self.pong_by = Some(self.next_ping + c.ping_timeout);
                        fired = true;
                    }
                    if !self.s.is_ready() && now >= self.connect_by && !self.s.is_closed() {
                        self.s.close(CloseReason::ConnectTimeout);
                        fired = true;
                    }
                }
            }
        }
        if fired {
            return true;
        }
        // The timer is polled (registered with this task) only when its
        // deadline moved: once registered it wakes the task by itself.
        let at = self.next_deadline();
        if at != self.timer_at || !self.timer_armed {
            self.timer.as_mut().reset(at);
            self.timer_at = at;
            self.timer_armed = true;
            return self.timer.as_mut().poll(cx).is_ready();
        }
        now >= at
    }

    fn next_deadline(&self) -> Instant {
        if let Some(cl) = self.closing {
            return cl.until;
        }
        match self.phase {
            Phase::Probe { until, .. } => until,
            Phase::Live => {
                let mut at = self.pong_by.unwrap_or(self.next_ping);
                if !self.s.is_ready() {
                    at = at.min(self.connect_by);
                }
                if let Some(t) = self.stalled_since {
                    at = at.min(t + self.engine.config.slow_consumer_timeout);
                }
                at
            }
        }
    }
}
