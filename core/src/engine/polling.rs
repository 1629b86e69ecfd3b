//! HTTP long-polling: `GET` waits for frames, `POST` carries packets, and
//! a small task per session keeps the heartbeat.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::packet::{self, Frame, Kind};
use super::{CloseReason, EngineError, EngineShared, Handler, Session, Step, Transport};

/// A `200` with a text body.
pub(super) fn text_response(body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp
}

/// Clears the session's "a GET is waiting" mark however the GET ends
/// (answered, or dropped when its client went away).
struct Polling<'a, H: Handler>(&'a Session<H>);

impl<H: Handler> Drop for Polling<'_, H> {
    fn drop(&mut self) {
        self.0.lock().polling = false;
    }
}

/// What a long-poll answers.
enum Answer {
    /// What waits; `true`: the session ended (the close packet follows).
    Frames(Vec<Frame>, bool),
    /// A noop; `true`: the session ended (its client closed it).
    Noop(bool),
    Close,
    /// 400: the session moved to its WebSocket.
    Refused,
}

/// How long a `GET` that came after the upgrade's probe was answered waits
/// before it answers a noop (nothing else came, and the upgrade did not end).
const PROBED_NOOP: Duration = Duration::from_millis(250);

/// A long-polling `GET`: the waiting frames, or wait for some.
pub(super) async fn get<H: Handler>(
    engine: &Arc<EngineShared<H>>,
    s: Arc<Session<H>>,
) -> Response<Body> {
    // A GET that comes once the upgrade's probe was answered: either its
    // client polled before it read `3probe` (it pauses polling and sends
    // `5` once this GET is answered), or it overtook that `5` (sent after
    // it on the WebSocket, read first here, on another thread).
    let overtaking;
    {
        let mut st = s.lock();
        if st.transport != Transport::Polling {
            return EngineError::BadRequest.response();
        }
        if st.closed.is_some_and(|r| !r.fetched_by_polling()) || st.close_sent {
            // Ended, and nothing left to fetch.
            return EngineError::SessionUnknown.response();
        }
        if st.polling {
            drop(st);
            // Two GETs at once: the client is broken (or two clients share
            // a session). End it; the waiting GET answers the close.
            s.close(CloseReason::MultiplePolling);
            return EngineError::BadRequest.response();
        }
        st.polling = true;
        overtaking = st.probed;
    }
    let _mark = Polling(&s);
    let answer = std::future::poll_fn(|cx| {
        let mut st = s.lock();
        if st.transport != Transport::Polling {
            // Upgraded while this GET waited: what waits goes over the
            // WebSocket. A client sends `5` only once its poll is answered
            // (engine.io-client pauses polling first), so this GET came
            // with or after the `5` (read first here, on another thread):
            // it is answered as one after the upgrade is.
            return std::task::Poll::Ready(Answer::Refused);
        }
        if let Some(frames) = s.out.take_or_register(cx) {
            st.noop = false;
            return std::task::Poll::Ready(Answer::Frames(frames, s.out.is_closed()));
        }
        if s.out.is_closed() {
            return std::task::Poll::Ready(match st.closed {
                Some(r) if r.by_client() => Answer::Noop(true),
                _ => Answer::Close,
            });
        }
        // (The noop the probe asked for is for a GET from before it.)
        if st.noop && !overtaking {
            st.noop = false;
            return std::task::Poll::Ready(Answer::Noop(false));
        }
        std::task::Poll::Pending
    });
    let answer = if overtaking {
        // Its client may be waiting for this answer to send `5`: as Node's
        // engine.io does, a noop frees it (within `PROBED_NOOP`).
        tokio::time::timeout(PROBED_NOOP, answer)
            .await
            .unwrap_or(Answer::Noop(false))
    } else {
        answer.await
    };
    let (body, closing) = match answer {
        Answer::Frames(mut frames, closed) => {
            if closed {
                frames.push(Frame::text(Kind::Close, b""));
            }
            (packet::encode_payload(&frames), closed)
        }
        Answer::Noop(ended) => (Bytes::from_static(b"6"), ended),
        Answer::Close => (Bytes::from_static(b"1"), true),
        Answer::Refused => return EngineError::BadRequest.response(),
    };
    engine.counters.bytes_out.add(body.len() as u64);
    if closing {
        // Everything is delivered, the close packet last: the session is
        // gone for good.
        s.lock().close_sent = true;
        engine.forget(&s);
        s.notify.notify_one();
    }
    text_response(body)
}

/// A long-polling `POST`: reads the body (bounded in size and time, and cut
/// when the session ends) and hands its packets on, in order.
pub(super) async fn post<H: Handler>(
    engine: &Arc<EngineShared<H>>,
    s: Arc<Session<H>>,
    body: Body,
) -> Response<Body> {
    {
        let mut st = s.lock();
        let usable = st.transport == Transport::Polling || st.upgrading;
        if !usable || st.closed.is_some() || st.posting {
            return EngineError::BadRequest.response();
        }
        st.posting = true;
    }
    let result = read_and_handle(engine, &s, body).await;
    s.lock().posting = false;
    result
}

async fn read_and_handle<H: Handler>(
    engine: &Arc<EngineShared<H>>,
    s: &Arc<Session<H>>,
    body: Body,
) -> Response<Body> {
    let config = &engine.config;
    let limited = http_body_util::Limited::new(body, config.max_payload);
    let read = tokio::time::timeout(config.body_timeout, limited.collect());
    let ended = s.ended();
    let bytes = tokio::select! {
        r = read => match r {
            Ok(Ok(collected)) => {
                let bytes = collected.to_bytes();
                engine.counters.bytes_in.add(bytes.len() as u64);
                bytes
            }
            Ok(Err(e)) => {
                let too_big = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
                if too_big {
                    engine
                        .counters
                        .payload_cuts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                s.close(CloseReason::TransportError);
                return if too_big {
                    status(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
                } else {
                    EngineError::BadRequest.response()
                };
            }
            Err(_) => {
                tracing::debug!(sid = %s.sid, "a long-polling body did not arrive in time; cutting it");
                s.close(CloseReason::TransportError);
                return status(StatusCode::REQUEST_TIMEOUT, "request body timeout");
            }
        },
        () = ended => return status(StatusCode::BAD_REQUEST, "session closed"),
    };
    let packets = match packet::decode_payload(bytes) {
        Ok(p) => p,
        Err(_) => {
            s.close(CloseReason::ParseError);
            return EngineError::BadRequest.response();
        }
    };
    for p in packets {
        match s.receive(engine, p) {
            Step::Next => {}
            Step::Wait(fut) => fut.await,
            Step::Close(reason) => {
                s.close(reason);
                break;
            }
        }
    }
    let mut resp = Response::new(Body::from("ok"));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

/// An error answer that also closes the HTTP connection (its body may be
/// unread).
fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The heartbeat of a long-polling session: a ping every `ping_interval`,
/// closed when the pong is late, when no namespace is joined within
/// `connect_timeout`; hands over to the WebSocket task after an upgrade.
/// After a close by the server, keeps the session reachable for a while so
/// that its client can fetch what was queued (a DISCONNECT).
pub(super) async fn heartbeat<H: Handler>(
    engine: Arc<EngineShared<H>>,
    s: Arc<Session<H>>,
    opened: tokio::time::Instant,
) {
    let c = &engine.config;
    let connect_deadline = opened + c.connect_timeout;
    // Deadlines run from when they were set (the handshake, the pong), not
    // from when this task got to run: a busy runtime must not stretch them.
    let mut from = opened;
    loop {
        let ping_at = from + c.ping_interval;
        // Wait for the next ping, or a change.
        loop {
            let deadline = if s.is_ready() {
                ping_at
            } else {
                ping_at.min(connect_deadline)
            };
            if gone_or_upgraded(&s).is_some() {
                return finish(&engine, &s).await;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline, s.notify.notified()).await;
        }
        if !s.is_ready() && tokio::time::Instant::now() >= connect_deadline {
            s.close(CloseReason::ConnectTimeout);
            continue;
        }
        if tokio::time::Instant::now() < ping_at {
            continue;
        }
        s.lock().pong_due = true;
        s.out.push(Frame::text(Kind::Ping, b""));
        let pong_by = ping_at + c.ping_timeout;
        loop {
            if gone_or_upgraded(&s).is_some() {
                return finish(&engine, &s).await;
            }
            if !s.lock().pong_due {
                from = tokio::time::Instant::now();
                break;
            }
            if tokio::time::Instant::now() >= pong_by {
                s.close(CloseReason::PingTimeout);
                break;
            }
            let _ = tokio::time::timeout_at(pong_by, s.notify.notified()).await;
        }
    }
}

/// `Some(true)`: the session closed; `Some(false)`: it moved to a
/// WebSocket; `None`: still polling.
fn gone_or_upgraded<H: Handler>(s: &Session<H>) -> Option<bool> {
    let st = s.lock();
    if st.closed.is_some() {
        Some(true)
    } else if st.transport != Transport::Polling {
        Some(false)
    } else {
        None
    }
}

/// After a close: a session the server closed stays reachable until its
/// client fetched what waits and the close packet (bounded by
/// `ping_timeout`), so that it learns why; any other is forgotten at once.
async fn finish<H: Handler>(engine: &Arc<EngineShared<H>>, s: &Arc<Session<H>>) {
    let (closed, transport) = {
        let st = s.lock();
        (st.closed, st.transport)
    };
    if transport != Transport::Polling {
        return; // the WebSocket task owns it now
    }
    if closed.is_some_and(CloseReason::fetched_by_polling) {
        // Until a long-poll took the last frames and the close (or noop).
        let drained = async {
            while !s.lock().close_sent {
                s.notify.notified().await;
            }
        };
        let wait = engine.config.ping_timeout.max(Duration::from_millis(100));
        let _ = tokio::time::timeout(wait, drained).await;
    }
    engine.forget(s);
}
