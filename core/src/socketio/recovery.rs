//! Connection state recovery, as socket.io-client 4.6+ speaks it.
//!
//! A socket of a namespace with recovery on gets a private session id
//! (`pid`) in its `CONNECT` answer, and every event it is sent without an
//! ack id carries an offset as its last argument (the client keeps the
//! last string argument of any event as its offset, so direct events carry
//! one too: the log's head when they were queued). When its transport
//! drops (not a clean disconnect), what the socket was (its id, rooms and
//! the handler's state) is kept under its `pid` for the window. A client
//! that comes back within it with its `pid` and last offset gets the same
//! socket, and the broadcasts it missed, in order, before any new packet.
//!
//! Every broadcast of the namespace is recorded in its log, with its
//! targets, under the log's lock, and delivered under that lock too: so a
//! socket's queue holds broadcasts in log order, and a direct event's
//! offset (the head) means "everything for you up to here is queued before
//! me". A recovering socket's replay and its joining the rooms happen under
//! the same lock: no broadcast falls between the two.
//!
//! With Redis, a namespace's broadcasts go through a Redis stream (see
//! `cluster`): every hub delivers them in the stream's order, and the
//! offset is the entry's stream id, the same on every hub. A client may then
//! come back to another hub, or to this one restarted: its session is kept
//! in Redis too, and what it missed is read back from the stream (the part
//! this hub has not delivered yet comes live, after its rooms are joined).
//!
//! Bounds: entries leave the log once older than the window plus one ping
//! interval and timeout (a socket that was connected then got them, or its
//! transport would have been found dead), or when the log is over its
//! packet or byte cap; a socket whose offset is older than an entry
//! dropped for the caps is not recovered (it starts fresh: nothing is
//! replayed wrongly). Saved sessions expire after the window and are capped
//! in number (the oldest go first).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{Frame, FrameBuilder, Kind, Sid};

/// A place in a namespace's log: a Redis stream id (`ms-seq`) when its
/// broadcasts go through Redis, else `(0, n)` for the n-th broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl Pos {
    /// A Redis stream id (`1700000000000-0`).
    pub(crate) fn parse_stream_id(id: &str) -> Option<Pos> {
        let (ms, seq) = id.split_once('-')?;
        Some(Pos {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// As a Redis stream id.
    pub(crate) fn stream_id(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// A broadcast read back from the Redis stream, for a replay.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) pos: Pos,
    /// The rooms it went to; empty: the whole namespace.
    pub(crate) rooms: Vec<String>,
    /// The socket ids and rooms it did not go to.
    pub(crate) except: Vec<String>,
    /// Its frames, without an offset.
    pub(crate) frames: Vec<Frame>,
}

/// How recovery is bounded, for one namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// How long a dropped socket may take to come back.
    pub(crate) window: Duration,
    /// How long entries are kept (the window, a ping interval and timeout).
    pub(crate) keep: Duration,
    /// Most entries in the log.
    pub(crate) max_packets: usize,
    /// Most bytes of frames in the log.
    pub(crate) max_bytes: usize,
    /// Most saved sessions.
    pub(crate) max_sessions: usize,
}

/// One namespace's recovery state: its log and its saved sessions.
#[derive(Debug)]
pub(crate) struct Recovery {
    bounds: Bounds,
    /// Offsets start with it: one from another process (or another hub,
    /// without a shared log) is never taken for one of ours.
    epoch: Box<str>,
    /// Offsets are Redis stream ids (the broadcasts go through Redis).
    streamed: bool,
    pub(crate) log: Mutex<Log>,
    sessions: Mutex<Sessions>,
    /// The connected sockets' ids by pid, and where the log was when each
    /// joined: a client back before its old transport was seen to drop
    /// finds its socket here.
    live: Mutex<std::collections::HashMap<Sid, (Sid, Pos)>>,
    /// Woken when the head moves while someone waits for it (see
    /// [`Recovery::reached`]).
    advanced: tokio::sync::Notify,
    /// How many wait for the head.
    waiting: AtomicUsize,
}

/// The broadcasts of a namespace, in order.
#[derive(Debug)]
pub(crate) struct Log {
    /// The last entry recorded (or, before any, where the log starts).
    head: Pos,
    entries: VecDeque<Entry>,
    bytes: usize,
    /// Nothing at or before it can be told from this log: entries dropped
    /// for the caps, or, streamed, what was before this hub started.
    capped: Pos,
    /// A line went out here without being recorded (Redis was away): no
    /// offset at or before it is recovered, from this log or the stream.
    hole: Pos,
}

#[derive(Debug)]
struct Entry {
    pos: Pos,
    at: Instant,
    /// The rooms it went to; empty: the whole namespace.
    rooms: Box<[Box<str>]>,
    /// The sockets it did not go to.
    except: Box<[Sid]>,
    /// Its frames, offset included.
    frames: Box<[Frame]>,
    size: usize,
}

/// What a socket was when its transport dropped.
pub(crate) struct Saved {
    /// Its id, which it keeps.
    pub(crate) id: Sid,
    /// Its rooms.
    pub(crate) rooms: Vec<Box<str>>,
    /// The namespace handler's state for it.
    pub(crate) state: Option<Box<dyn Any + Send + Sync>>,
    /// Where the log was when it joined: what a client that got no offset
    /// yet (no event since it joined) missed starts there.
    pub(crate) joined: Pos,
    at: Instant,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("id", &self.id)
            .field("rooms", &self.rooms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Sessions {
    by_pid: HashMap<Sid, Saved>,
    /// Saved sessions, oldest first (some may have been taken already).
    order: VecDeque<(Instant, Sid)>,
}

/// A session found for a reconnecting client, and where it was.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) pid: Sid,
    pub(crate) saved: Saved,
    /// Where the client's offset is.
    pub(crate) from: Pos,
    /// What the Redis stream holds after `from` (streamed namespaces, when
    /// this hub's log does not reach back there).
    pub(crate) fetched: Option<Vec<Fetched>>,
}

impl Recovery {
    /// Recovery within `bounds`, in this hub's memory.
    pub(crate) fn new(bounds: Bounds) -> Recovery {
        Recovery::with_log(bounds, false, Pos::default())
    }

    /// Recovery within `bounds` for a namespace whose broadcasts go
    /// through a Redis stream whose last entry, when this hub started, was
    /// `head`.
    pub(crate) fn streamed(bounds: Bounds, head: Pos) -> Recovery {
        Recovery::with_log(bounds, true, head)
    }

    fn with_log(bounds: Bounds, streamed: bool, head: Pos) -> Recovery {
        let mut raw = [0u8; 4];
        if getrandom::fill(&mut raw).is_err() {
            // Only uniqueness across processes matters here, not secrecy.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            raw = (t.subsec_nanos() ^ std::process::id()).to_le_bytes();
        }
        let epoch = raw.iter().map(|b| format!("{b:02x}")).collect::<String>();
        Recovery {
            bounds,
            epoch: epoch.into(),
            streamed,
            log: Mutex::new(Log {
                head,
                entries: VecDeque::new(),
                bytes: 0,
                capped: head,
                hole: Pos::default(),
            }),
            sessions: Mutex::new(Sessions::default()),
            live: Mutex::default(),
            advanced: tokio::sync::Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A socket with this `pid` joined when the log's head was `joined`.
    pub(crate) fn connected(&self, pid: Sid, id: Sid, joined: Pos) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, (id, joined));
    }

    /// The socket with this `pid` left; where the log was when it joined.
    pub(crate) fn left(&self, pid: Sid) -> Option<Pos> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
            .map(|(_, joined)| joined)
    }

    /// The id of the socket connected now with this `pid`, if any.
    pub(crate) fn live(&self, pid: Sid) -> Option<Sid> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .map(|&(id, _)| id)
    }

    /// Waits, at most `limit`, until this hub's log has reached `pos`;
    /// whether it has. A streamed namespace's log is where this hub's
    /// reader of the stream is, which can be behind a client that comes
    /// back from another hub (the reader reads in batches): what that
    /// client saw must be here before what it missed can be told.
    pub(crate) async fn reached(&self, pos: Pos, limit: Duration) -> bool {
        let head = || self.log.lock().unwrap_or_else(|e| e.into_inner()).head;
        if head() >= pos {
            return true;
        }
        /// Counts a waiter for as long as it waits (dropped futures too).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            if head() >= pos {
                return true;
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return head() >= pos;
            }
        }
    }

    /// How long a dropped socket may take to come back.
    pub(crate) fn window(&self) -> Duration {
        self.bounds.window
    }

    /// Most entries kept (the stream's length too).
    pub(crate) fn max_packets(&self) -> usize {
        self.bounds.max_packets
    }

    /// The offset string of a position.
    pub(crate) fn offset(&self, pos: Pos) -> String {
        if self.streamed {
            pos.stream_id()
        } else {
            format!("{}-{}", self.epoch, pos.seq)
        }
    }

    /// The position of one of our offsets.
    pub(crate) fn pos_of(&self, offset: &str) -> Option<Pos> {
        if self.streamed {
            return Pos::parse_stream_id(offset);
        }
        let (epoch, seq) = offset.split_once('-')?;
        if epoch != &*self.epoch {
            return None;
        }
        Some(Pos {
            ms: 0,
            seq: seq.parse().ok()?,
        })
    }

    /// Records a broadcast of `frames` to `rooms` (all: empty) but
    /// `except`, at `at` (a stream id; `None`: the next place in this
    /// hub's own log), and gives back the frames to deliver (the offset
    /// added). `None`: not an event that takes an offset, or one recorded
    /// already (nothing recorded).
    pub(crate) fn record(
        &self,
        log: &mut Log,
        at: Option<Pos>,
        rooms: &[&str],
        except: &[Sid],
        frames: &[Frame],
    ) -> Option<Vec<Frame>> {
        let pos = at.unwrap_or(Pos {
            ms: 0,
            seq: log.head.seq + 1,
        });
        if pos <= log.head {
            return None;
        }
        let stamped = stamp(frames, &self.offset(pos))?;
        log.head = pos;
        // Read under the log's lock, as `reached` checks the head: a waiter
        // either sees this head or is counted here.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.advanced.notify_waiters();
        }
        let size = stamped.iter().map(Frame::len).sum::<usize>()
            + rooms.iter().map(|r| r.len()).sum::<usize>()
            + std::mem::size_of_val(except);
        let now = Instant::now();
        log.entries.push_back(Entry {
            pos,
            at: now,
            rooms: rooms.iter().map(|r| Box::from(*r)).collect(),
            except: except.into(),
            frames: stamped.clone().into(),
            size,
        });
        log.bytes += size;
        while let Some(first) = log.entries.front() {
            let old = now.duration_since(first.at) > self.bounds.keep;
            let over =
                log.entries.len() > self.bounds.max_packets || log.bytes > self.bounds.max_bytes;
            if !old && !over {
                break;
            }
            if !old {
                log.capped = first.pos;
            }
            log.bytes -= first.size;
            log.entries.pop_front();
        }
        Some(stamped)
    }

    /// A line went out without being recorded (Redis was away for a
    /// streamed namespace): offsets up to the head are not recovered.
    pub(crate) fn hole(&self, log: &mut Log) {
        log.hole = log.head;
    }

    /// `frames` for one socket, with the log's head as their offset
    /// (`None`: not an event that takes one).
    pub(crate) fn direct(&self, log: &Log, frames: &[Frame]) -> Option<Vec<Frame>> {
        stamp(frames, &self.offset(log.head))
    }

    /// Keeps what a socket was, under its `pid`, for the window.
    pub(crate) fn save(
        &self,
        pid: Sid,
        id: Sid,
        rooms: Vec<Box<str>>,
        state: Option<Box<dyn Any + Send + Sync>>,
        joined: Pos,
    ) {
        let now = Instant::now();
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Sessions { by_pid, order } = &mut *s;
        while let Some(&(at, old)) = order.front() {
            let expired = now.duration_since(at) > self.bounds.window;
            if !expired && by_pid.len() < self.bounds.max_sessions {
                break;
            }
            order.pop_front();
            if by_pid.get(&old).is_some_and(|s| s.at == at) {
                by_pid.remove(&old);
            }
        }
        by_pid.insert(
            pid,
            Saved {
                id,
                rooms,
                state,
                joined,
                at: now,
            },
        );
        order.push_back((now, pid));
    }

    /// Takes (once) the session saved here under `pid`, if it is within
    /// the window; what it missed starts at `from`, the client's offset,
    /// or, when it has none, where the log was when the socket joined.
    pub(crate) fn take(&self, pid: Sid, from: Option<Pos>) -> Option<Found> {
        let saved = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_pid
            .remove(&pid)?;
        if saved.at.elapsed() > self.bounds.window {
            return None;
        }
        Some(Found {
            pid,
            from: from.unwrap_or(saved.joined),
            saved,
            fetched: None,
        })
    }

    /// How many sessions are saved now (expired ones not yet pruned
    /// included).
    pub(crate) fn saved_len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_pid
            .len()
    }
}

impl Saved {
    /// A session kept elsewhere (in Redis, by another hub or this one
    /// before a restart).
    pub(crate) fn remote(
        id: Sid,
        rooms: Vec<Box<str>>,
        state: Option<Box<dyn Any + Send + Sync>>,
        joined: Pos,
    ) -> Saved {
        Saved {
            id,
            rooms,
            state,
            joined,
            at: Instant::now(),
        }
    }
}

impl Log {
    /// The last entry recorded (or, before any, where the log starts).
    pub(crate) fn head(&self) -> Pos {
        self.head
    }

    /// Whether this log can tell what came after `from`.
    pub(crate) fn covers(&self, from: Pos) -> bool {
        from >= self.capped && from >= self.hole && from <= self.head
    }

    /// What a socket `id` in `rooms` missed after `from`, in order; `None`
    /// when that cannot be told (entries after `from` were dropped for the
    /// caps, or `from` is not one of this log's).
    pub(crate) fn missed(&self, from: Pos, id: Sid, rooms: &[Box<str>]) -> Option<Vec<Frame>> {
        if !self.covers(from) {
            return None;
        }
        let mut out = Vec::new();
        self.missed_after(from, id, rooms, &mut out);
        Some(out)
    }

    fn missed_after(&self, from: Pos, id: Sid, rooms: &[Box<str>], out: &mut Vec<Frame>) {
        for e in &self.entries {
            if e.pos <= from || e.except.contains(&id) {
                continue;
            }
            if e.rooms.is_empty() || e.rooms.iter().any(|r| rooms.contains(r)) {
                out.extend(e.frames.iter().cloned());
            }
        }
    }

    /// What a socket missed after `from`, from entries read back from the
    /// Redis stream (up to this log's head: what comes after is still to
    /// be delivered here) and then this log's own; `None` when the two do
    /// not meet (or a line went out here unrecorded after `from`).
    pub(crate) fn missed_with(
        &self,
        recovery: &Recovery,
        fetched: &[Fetched],
        from: Pos,
        id: Sid,
        rooms: &[Box<str>],
    ) -> Option<Vec<Frame>> {
        if from < self.hole || from > self.head {
            return None;
        }
        let mut out = Vec::new();
        let mut last = from;
        let sid = id.to_string();
        for f in fetched {
            if f.pos > self.head {
                break;
            }
            if f.pos <= last {
                continue;
            }
            last = f.pos;
            let excepted = f
                .except
                .iter()
                .any(|x| *x == sid || rooms.iter().any(|r| **r == **x));
            let to_it =
                f.rooms.is_empty() || f.rooms.iter().any(|r| rooms.iter().any(|m| **m == **r));
            if to_it && !excepted {
                let frames = stamp(&f.frames, &recovery.offset(f.pos)).unwrap_or(f.frames.clone());
                out.extend(frames);
            }
        }
        if last < self.head {
            if last < self.capped {
                return None;
            }
            self.missed_after(last, id, rooms, &mut out);
        }
        Some(out)
    }

    /// How many entries and bytes it holds.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }
}

/// The frames of an event with `offset` as its last argument: its first
/// frame (`4` + an EVENT or BINARY_EVENT without an ack id, ending in `]`)
/// written again with `,"offset"` before the `]`. `None` for anything else.
pub(crate) fn stamp(frames: &[Frame], offset: &str) -> Option<Vec<Frame>> {
    let first = frames.first()?;
    if first.parts().is_some() || first.is_binary() {
        return None;
    }
    let p = first.payload();
    if !takes_offset(&p) {
        return None;
    }
    let mut f = FrameBuilder::text(Kind::Message, p.len() + offset.len() + 3);
    f.put_slice(&p[1..p.len() - 1]);
    f.put_slice(b",\"");
    f.put_slice(offset.as_bytes());
    f.put_slice(b"\"]");
    let mut out = Vec::with_capacity(frames.len());
    out.push(f.finish());
    out.extend(frames[1..].iter().cloned());
    Some(out)
}

/// Whether an Engine.IO payload is a Socket.IO EVENT or BINARY_EVENT with
/// no ack id.
fn takes_offset(p: &[u8]) -> bool {
    if p.first() != Some(&(Kind::Message as u8)) || p.last() != Some(&b']') {
        return false;
    }
    let mut i = 2;
    match p.get(1) {
        Some(b'2') => {}
        Some(b'5') => {
            while p.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if p.get(i) != Some(&b'-') {
                return false;
            }
            i += 1;
        }
        _ => return false,
    }
    if p.get(i) == Some(&b'/') {
        while p.get(i).is_some_and(|&c| c != b',') {
            i += 1;
        }
        i += 1;
    }
    p.get(i) == Some(&b'[')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet;
    use crate::value::Value;

    fn text(f: &Frame) -> String {
        String::from_utf8(f.payload().to_vec()).unwrap()
    }

    fn bounds() -> Bounds {
        Bounds {
            window: Duration::from_secs(60),
            keep: Duration::from_secs(60),
            max_packets: 3,
            max_bytes: 1 << 20,
            max_sessions: 2,
        }
    }

    #[test]
    fn events_without_an_ack_get_the_offset_last() {
        let f = packet::event_raw_str("/chat,", "serverMessage", &["hi"]);
        let s = stamp(&[f], "ab-7").unwrap();
        assert_eq!(text(&s[0]), r#"42/chat,["serverMessage","hi","ab-7"]"#);
        let f = packet::event("", Some("login"), &[], None);
        assert_eq!(
            text(&stamp(&f, "ab-1").unwrap()[0]),
            r#"42["login","ab-1"]"#
        );
        let bin = packet::event(
            "/x,",
            Some("b"),
            &[Value::Binary(bytes::Bytes::from_static(b"\x01"))],
            None,
        );
        let s = stamp(&bin, "o-2").unwrap();
        assert_eq!(
            text(&s[0]),
            r#"451-/x,["b",{"_placeholder":true,"num":0},"o-2"]"#
        );
        assert_eq!(s.len(), 2, "the attachment follows");
        // Not for events with an ack id, acks, connects.
        let with_ack = packet::event("", Some("q"), &[], Some(3));
        assert!(stamp(&with_ack, "o-1").is_none());
        let ack = packet::event("/chat,", None, &[], Some(3));
        assert!(stamp(&ack, "o-1").is_none());
        assert!(stamp(&[packet::connect_ok("", "abc", None)], "o-1").is_none());
        assert!(stamp(&[packet::disconnect("/chat,")], "o-1").is_none());
    }

    #[test]
    fn a_missed_broadcast_is_found_by_room_and_not_for_who_was_excepted() {
        let r = Recovery::new(Bounds {
            max_packets: 100,
            ..bounds()
        });
        let me = Sid::new();
        let other = Sid::new();
        let mut log = r.log.lock().unwrap();
        let line = |t: &str| packet::event_raw_str("", "m", &[t]);
        let first = r.record(&mut log, None, &["a"], &[], &[line("1")]).unwrap();
        let t = text(&first[0]);
        let from = r.pos_of(t.rsplit('"').nth(1).unwrap()).unwrap();
        r.record(&mut log, None, &["a"], &[], &[line("2")]);
        r.record(&mut log, None, &["b"], &[], &[line("3")]);
        r.record(&mut log, None, &["a"], &[me], &[line("4")]);
        r.record(&mut log, None, &[], &[other], &[line("5")]);
        let missed = log.missed(from, me, &["a".into()]).unwrap();
        let got: Vec<String> = missed.iter().map(text).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with(r#"42["m","2","#));
        assert!(got[1].starts_with(r#"42["m","5","#));
        let future = Pos {
            ms: 0,
            seq: log.head.seq + 1,
        };
        assert!(
            log.missed(future, me, &[]).is_none(),
            "an offset from the future"
        );
        r.hole(&mut log);
        assert!(
            log.missed(from, me, &[]).is_none(),
            "a line went out unrecorded"
        );
    }

    #[test]
    fn entries_dropped_for_the_cap_make_older_offsets_unrecoverable() {
        let r = Recovery::new(bounds());
        let me = Sid::new();
        let mut log = r.log.lock().unwrap();
        for i in 0..5 {
            r.record(
                &mut log,
                None,
                &[],
                &[],
                &[packet::event_raw_str("", "m", &[&i.to_string()])],
            );
        }
        let at = |seq| Pos { ms: 0, seq };
        assert_eq!(log.size().0, 3);
        assert!(log.missed(at(1), me, &[]).is_none(), "entry 2 was dropped");
        assert_eq!(log.missed(at(2), me, &[]).unwrap().len(), 3);
    }

    #[test]
    fn streamed_offsets_are_stream_ids_and_the_stream_fills_what_the_log_lacks() {
        let start = Pos { ms: 100, seq: 0 };
        let r = Recovery::streamed(
            Bounds {
                max_packets: 100,
                ..bounds()
            },
            start,
        );
        let me = Sid::new();
        let line = |t: &str| packet::event_raw_str("", "m", &[t]);
        let at = |ms| Pos { ms, seq: 0 };
        let mut log = r.log.lock().unwrap();
        let s = r
            .record(&mut log, Some(at(101)), &["a"], &[], &[line("3")])
            .unwrap();
        assert_eq!(text(&s[0]), r#"42["m","3","101-0"]"#);
        assert!(
            r.record(&mut log, Some(at(101)), &["a"], &[], &[line("3")])
                .is_none(),
            "recorded once"
        );
        r.record(&mut log, Some(at(102)), &["a"], &[], &[line("4")]);
        assert_eq!(r.pos_of("99-0"), Some(at(99)));
        // From before this hub started: only the stream can tell.
        assert!(log.missed(at(99), me, &["a".into()]).is_none());
        let fetched = |pos: Pos, room: &str, except: Option<Sid>, t: &str| Fetched {
            pos,
            rooms: vec![room.to_owned()],
            except: except.iter().map(Sid::to_string).collect(),
            frames: vec![line(t)],
        };
        let p = |ms, seq| Pos { ms, seq };
        let stream = [
            fetched(p(100, 0), "a", None, "1"),
            fetched(p(100, 1), "b", None, "not to a"),
            fetched(p(100, 2), "a", Some(me), "its own"),
            fetched(at(101), "a", None, "3"),
            fetched(at(103), "a", None, "not delivered here yet"),
        ];
        let got: Vec<String> = log
            .missed_with(&r, &stream, at(99), me, &["a".into()])
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert_eq!(
            got,
            [
                r#"42["m","1","100-0"]"#,
                r#"42["m","3","101-0"]"#,
                r#"42["m","4","102-0"]"#
            ]
        );
    }

    #[test]
    fn sessions_are_taken_once_and_capped() {
        let r = Recovery::new(bounds());
        let (p1, p2, p3) = (Sid::new(), Sid::new(), Sid::new());
        let head = Pos::default();
        r.save(p1, Sid::new(), vec![], None, head);
        r.save(p2, Sid::new(), vec!["a".into()], None, head);
        r.save(p3, Sid::new(), vec![], None, head);
        assert_eq!(r.saved_len(), 2, "the oldest went");
        assert!(r.take(p1, Some(head)).is_none());
        let found = r.take(p2, Some(head)).unwrap();
        assert_eq!(found.saved.rooms, vec![Box::<str>::from("a")]);
        assert!(r.take(p2, Some(head)).is_none(), "once");
        assert!(r.pos_of("other-1").is_none(), "another epoch");
    }
}
