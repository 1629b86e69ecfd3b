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
use std::time::{Duration, Instant};

use crate::engine::{Frame, FrameBuilder, Kind, Sid};

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
    pub(crate) log: Mutex<Log>,
    sessions: Mutex<Sessions>,
}

/// The broadcasts of a namespace, in order.
#[derive(Debug)]
pub(crate) struct Log {
    /// The sequence number of the next entry (the first is 1; 0 is
    /// "before anything").
    next: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    /// The highest sequence number dropped for the caps (not for age).
    capped: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
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
    /// The offset's sequence number.
    pub(crate) seq: u64,
}

impl Recovery {
    /// Recovery within `bounds`.
    pub(crate) fn new(bounds: Bounds) -> Recovery {
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
            log: Mutex::new(Log {
                next: 1,
                entries: VecDeque::new(),
                bytes: 0,
                capped: 0,
            }),
            sessions: Mutex::new(Sessions::default()),
        }
    }

    /// The offset string of a sequence number.
    fn offset(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The sequence number of one of our offsets.
    fn seq_of(&self, offset: &str) -> Option<u64> {
        let (epoch, seq) = offset.split_once('-')?;
        if epoch != &*self.epoch {
            return None;
        }
        seq.parse().ok()
    }

    /// Records a broadcast of `frames` to `rooms` (all: empty) but
    /// `except`, and gives back the frames to deliver (the offset added).
    /// `None`: not an event that takes an offset (nothing recorded).
    pub(crate) fn record(
        &self,
        log: &mut Log,
        rooms: &[&str],
        except: &[Sid],
        frames: &[Frame],
    ) -> Option<Vec<Frame>> {
        let seq = log.next;
        let stamped = stamp(frames, &self.offset(seq))?;
        log.next += 1;
        let size = stamped.iter().map(Frame::len).sum::<usize>()
            + rooms.iter().map(|r| r.len()).sum::<usize>()
            + std::mem::size_of_val(except);
        let now = Instant::now();
        log.entries.push_back(Entry {
            seq,
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
                log.capped = first.seq;
            }
            log.bytes -= first.size;
            log.entries.pop_front();
        }
        Some(stamped)
    }

    /// `frames` for one socket, with the log's head as their offset
    /// (`None`: not an event that takes one).
    pub(crate) fn direct(&self, log: &Log, frames: &[Frame]) -> Option<Vec<Frame>> {
        stamp(frames, &self.offset(log.next - 1))
    }

    /// Keeps what a socket was, under its `pid`, for the window.
    pub(crate) fn save(
        &self,
        pid: Sid,
        id: Sid,
        rooms: Vec<Box<str>>,
        state: Option<Box<dyn Any + Send + Sync>>,
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
                at: now,
            },
        );
        order.push_back((now, pid));
    }

    /// Takes (once) the session saved under `pid`, if it is within the
    /// window and `offset` is one of ours.
    pub(crate) fn take(&self, pid: &str, offset: &str) -> Option<Found> {
        let pid: Sid = pid.parse().ok()?;
        let seq = self.seq_of(offset)?;
        let saved = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_pid
            .remove(&pid)?;
        if saved.at.elapsed() > self.bounds.window {
            return None;
        }
        Some(Found { pid, saved, seq })
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

impl Log {
    /// What a socket `id` in `rooms` missed after `seq`, in order; `None`
    /// when that cannot be told (entries after `seq` were dropped for the
    /// caps, or `seq` is not one of this log's).
    pub(crate) fn missed(&self, seq: u64, id: Sid, rooms: &[Box<str>]) -> Option<Vec<Frame>> {
        if seq < self.capped || seq >= self.next {
            return None;
        }
        let mut out = Vec::new();
        for e in &self.entries {
            if e.seq <= seq || e.except.contains(&id) {
                continue;
            }
            if e.rooms.is_empty() || e.rooms.iter().any(|r| rooms.contains(r)) {
                out.extend(e.frames.iter().cloned());
            }
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
        let first = r.record(&mut log, &["a"], &[], &[line("1")]).unwrap();
        let t = text(&first[0]);
        let seq = r.seq_of(t.rsplit('"').nth(1).unwrap()).unwrap();
        r.record(&mut log, &["a"], &[], &[line("2")]);
        r.record(&mut log, &["b"], &[], &[line("3")]);
        r.record(&mut log, &["a"], &[me], &[line("4")]);
        r.record(&mut log, &[], &[other], &[line("5")]);
        let missed = log.missed(seq, me, &["a".into()]).unwrap();
        let got: Vec<String> = missed.iter().map(text).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with(r#"42["m","2","#));
        assert!(got[1].starts_with(r#"42["m","5","#));
        assert!(
            log.missed(log.next, me, &[]).is_none(),
            "an offset from the future"
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
                &[],
                &[],
                &[packet::event_raw_str("", "m", &[&i.to_string()])],
            );
        }
        assert_eq!(log.size().0, 3);
        assert!(log.missed(1, me, &[]).is_none(), "entry 2 was dropped");
        assert_eq!(log.missed(2, me, &[]).unwrap().len(), 3);
    }

    #[test]
    fn sessions_are_taken_once_and_capped() {
        let r = Recovery::new(bounds());
        let (p1, p2, p3) = (Sid::new(), Sid::new(), Sid::new());
        let head = r.offset(0);
        r.save(p1, Sid::new(), vec![], None);
        r.save(p2, Sid::new(), vec!["a".into()], None);
        r.save(p3, Sid::new(), vec![], None);
        assert_eq!(r.saved_len(), 2, "the oldest went");
        assert!(r.take(p1.as_str(), &head).is_none());
        let found = r.take(p2.as_str(), &head).unwrap();
        assert_eq!(found.saved.rooms, vec![Box::<str>::from("a")]);
        assert!(r.take(p2.as_str(), &head).is_none(), "once");
        assert!(r.take(p3.as_str(), "other-1").is_none(), "another epoch");
    }
}
