//! A session's send queue: frames wait here until the transport writes
//! them (a WebSocket task, or the next long-polling `GET`).
//!
//! Pushing never waits: on a plain TCP WebSocket whose queue is empty it
//! writes the frame at once, from the pushing thread (no wake, no task
//! switch: what a broadcast to idle readers costs); otherwise it appends a
//! shared [`Frame`] and wakes the transport only when it was idle, so that
//! a busy connection writes everything queued in one system call. The
//! queue's memory exists only while frames wait.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;

use super::packet::Frame;

/// At most this many frames go into one vectored write.
const MAX_IOVECS: usize = 64;

/// A push writes inline only to a connection that has written nothing for
/// this long: a quiet reader gets its line at once, without a wake or a
/// task switch, while one that receives lines in a stream gets them queued
/// and written many at a time by its task (one system call for many,
/// instead of one each, and fewer, fuller segments for the client to
/// read). The bound sits well above the gap between lines that inline
/// writes themselves allow at saturation (about 4 ms for a room of 1,000
/// on one core): with a bound below it, a busy room would stay in the slow
/// mode for good (measured: 2 ms gave a quarter of the queued throughput,
/// 10 ms all of it, and the same CPU at 50 lines/s).
const INLINE_AFTER_MS: u64 = 10;

/// Whether a push was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Yes,
    /// Dropped: the queue is at its limit (the client reads too slowly).
    Full,
    /// Dropped: the session is closed.
    Closed,
}

/// A session's queue of frames to send.
#[derive(Debug)]
pub(crate) struct Outbox {
    st: Mutex<State>,
    /// Set once nothing more may be pushed (read without the lock).
    closed: AtomicBool,
    limit: usize,
    /// Where the bytes written are counted.
    counters: std::sync::Arc<crate::metrics::EngineCounters>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    /// Bytes of the front frame already written to a WebSocket.
    written: usize,
    /// The transport to wake when something is pushed to an empty queue.
    waker: Option<Waker>,
    /// A plain TCP WebSocket to write to at once while the queue is empty.
    direct: Option<std::sync::Arc<tokio::net::TcpStream>>,
    /// When a write last went out, in `now_ms` (see `INLINE_AFTER_MS`).
    last_write: Option<u64>,
}

impl Outbox {
    /// A queue holding at most `limit` frames; the bytes it writes count
    /// in `counters`.
    pub(crate) fn new(
        limit: usize,
        counters: std::sync::Arc<crate::metrics::EngineCounters>,
    ) -> Outbox {
        Outbox {
            st: Mutex::new(State::default()),
            closed: AtomicBool::new(false),
            limit: limit.max(1),
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one frame.
    pub(crate) fn push(&self, frame: Frame) -> Pushed {
        self.push_all(std::slice::from_ref(&frame))
    }

    /// Queues frames that belong together (a packet and its binary
    /// attachments): all of them, or none.
    pub(crate) fn push_all(&self, frames: &[Frame]) -> Pushed {
        if self.closed.load(Ordering::Acquire) {
            return Pushed::Closed;
        }
        self.enqueue(frames, false)
    }

    /// Queues a frame of the WebSocket itself (ping, pong, close), also
    /// once closed and whatever the limit.
    pub(crate) fn push_raw(&self, frame: Frame) {
        self.enqueue(std::slice::from_ref(&frame), true);
    }

    fn enqueue(&self, frames: &[Frame], raw: bool) -> Pushed {
        let waker = {
            let mut st = self.lock();
            if !raw {
                if self.closed.load(Ordering::Relaxed) {
                    return Pushed::Closed;
                }
                let count: usize = frames.iter().map(Frame::count).sum();
                if st.queue.len() + count > self.limit && !st.queue.is_empty() {
                    return Pushed::Full;
                }
            }
            if st.queue.is_empty()
                && st.direct.is_some()
                && frames.len() <= MAX_IOVECS
                && quiet(&mut st)
            {
                match write_now(&mut st, frames, &self.counters) {
                    Some(0) => return Pushed::Yes,
                    Some(written) => {
                        st.queue.extend(frames.iter().cloned());
                        advance(&mut st, written);
                    }
                    None => st.queue.extend(frames.iter().cloned()),
                }
            } else {
                st.queue.extend(frames.iter().cloned());
            }
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Yes
    }

    /// Lets pushes write to `stream` at once while nothing is queued
    /// (`None`: no more).
    pub(crate) fn set_direct(&self, stream: Option<std::sync::Arc<tokio::net::TcpStream>>) {
        self.lock().direct = stream;
    }

    /// Refuses further pushes; what is queued can still be written. Wakes
    /// the transport.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    /// Whether pushes are refused.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes the transport (to see a change of state).
    pub(crate) fn wake(&self) {
        let waker = self.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether nothing waits.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Takes every waiting frame (for a long-polling response); `None`
    /// when none waits, after registering `cx` for the next push.
    pub(crate) fn take_or_register(&self, cx: &Context<'_>) -> Option<Vec<Frame>> {
        let mut st = self.lock();
        if st.queue.is_empty() {
            register(&mut st.waker, cx);
            return None;
        }
        let frames = std::mem::take(&mut st.queue).into();
        st.written = 0;
        Some(frames)
    }

    /// Takes every waiting frame.
    #[cfg(test)]
    fn take(&self) -> Vec<Frame> {
        let mut st = self.lock();
        st.written = 0;
        std::mem::take(&mut st.queue).into()
    }

    /// Writes waiting frames to a WebSocket until the queue is empty
    /// (`Ready(Ok(()))`, with `cx` registered for the next push) or the
    /// socket takes no more (`Pending`, woken by the socket).
    pub(crate) fn poll_write<S: AsyncWrite + ?Sized>(
        &self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = self.lock();
        loop {
            if st.queue.is_empty() {
                // Give the slots back: an idle connection keeps no queue.
                st.queue = VecDeque::new();
                register(&mut st.waker, cx);
                return Poll::Ready(Ok(()));
            }
            let written = st.written;
            let mut iov = [io::IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, f) in st.queue.iter().take(MAX_IOVECS).enumerate() {
                iov[i] = io::IoSlice::new(if i == 0 { &f.ws()[written..] } else { f.ws() });
                n = i + 1;
            }
            let done = match io.as_mut().poll_write_vectored(cx, &iov[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(done)) => {
                    self.counters.bytes_out.add(done as u64);
                    if st.direct.is_some() {
                        st.last_write = Some(now_ms());
                    }
                    done
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            advance(&mut st, done);
        }
    }
}

/// Writes `frames` to the queue's TCP stream now. `Some(0)`: all written;
/// `Some(n)`: only `n` bytes (the rest is queued by the caller, skipping
/// those); `None`: nothing (the socket is full, or broken: the transport
/// finds out on its own write).
fn write_now(
    st: &mut State,
    frames: &[Frame],
    counters: &crate::metrics::EngineCounters,
) -> Option<usize> {
    let stream = st.direct.as_ref()?;
    let mut iov = [io::IoSlice::new(&[]); MAX_IOVECS];
    for (i, f) in frames.iter().enumerate() {
        iov[i] = io::IoSlice::new(f.ws());
    }
    let total: usize = frames.iter().map(|f| f.ws().len()).sum();
    let sent = super::send_now(stream, &iov[..frames.len()]);
    if let Ok(n) = sent {
        counters.bytes_out.add(n as u64);
    }
    match sent {
        Ok(n) if n == total => Some(0),
        Ok(n) => Some(n),
        Err(e) => {
            if e.kind() != io::ErrorKind::WouldBlock {
                st.direct = None;
            }
            None
        }
    }
}

/// Whether the connection has written nothing lately (see `INLINE_AFTER_MS`);
/// if so, counts this write as its last.
fn quiet(st: &mut State) -> bool {
    let now = now_ms();
    match st.last_write {
        Some(t) if now.saturating_sub(t) < INLINE_AFTER_MS => false,
        _ => {
            st.last_write = Some(now);
            true
        }
    }
}

/// Milliseconds on a monotonic clock, cheaply: the coarse clock where
/// there is one (read from memory the kernel shares, no timer read; its
/// few milliseconds of resolution are plenty for `INLINE_AFTER_MS`).
fn now_ms() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the call to write, and the
        // clock is one every Linux since 2.6.32 knows.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
            return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
        }
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Drops the first `n` written bytes from the queue.
fn advance(st: &mut State, mut n: usize) {
    while n > 0 {
        let Some(front) = st.queue.front() else {
            return;
        };
        let left = front.ws().len() - st.written;
        if n >= left {
            n -= left;
            st.queue.pop_front();
            st.written = 0;
        } else {
            st.written += n;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::Kind;
    use super::*;

    fn frame(s: &str) -> Frame {
        Frame::text(Kind::Message, s.as_bytes())
    }

    /// A writer that takes at most `cap` bytes per call.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.cap);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn frames_are_written_whole_and_in_order_through_short_writes() {
        let out = Outbox::new(10, Default::default());
        for s in ["a", "bb", "ccc"] {
            assert_eq!(out.push(frame(s)), Pushed::Yes);
        }
        let mut io = Trickle {
            out: Vec::new(),
            cap: 3,
        };
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            out.poll_write(Pin::new(&mut io), &mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(io.out, b"\x81\x024a\x81\x034bb\x81\x044ccc");
        assert!(out.is_empty());
    }

    #[test]
    fn a_full_queue_drops_and_a_closed_one_refuses() {
        let out = Outbox::new(2, Default::default());
        assert_eq!(out.push(frame("1")), Pushed::Yes);
        assert_eq!(out.push(frame("2")), Pushed::Yes);
        assert_eq!(out.push(frame("3")), Pushed::Full);
        out.close();
        assert_eq!(out.push(frame("4")), Pushed::Closed);
        assert_eq!(out.take().len(), 2, "what was queued stays readable");
    }

    #[test]
    fn a_group_larger_than_the_limit_still_goes_into_an_empty_queue() {
        let out = Outbox::new(2, Default::default());
        let group = [frame("p"), frame("a1"), frame("a2")];
        assert_eq!(out.push_all(&group), Pushed::Yes);
        assert_eq!(out.push(frame("x")), Pushed::Full);
    }

    #[test]
    fn a_push_wakes_the_idle_transport_once() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl futures_util::task::ArcWake for Count {
            fn wake_by_ref(arc_self: &Arc<Self>) {
                arc_self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(count.clone());
        let cx = Context::from_waker(&waker);
        let out = Outbox::new(10, Default::default());
        assert!(out.take_or_register(&cx).is_none());
        out.push(frame("a"));
        out.push(frame("b"));
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            1,
            "one wake for two pushes"
        );
        assert_eq!(out.take_or_register(&cx).map(|f| f.len()), Some(2));
    }
}
