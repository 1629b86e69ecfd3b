//! Socket.IO v5 on top of the engine: namespaces, sockets, rooms,
//! broadcasts, acknowledgements and binary attachments.
//!
//! Owns: the packet codec, the namespace table, each socket's rooms and
//! acknowledgements, and delivery (a broadcast is encoded once and its
//! frames shared by every recipient's queue). Hands connects, events and
//! leaves to each namespace's [`NsHandler`] (the chat, or the host's own
//! namespaces) and never decides what an event means.

pub(crate) mod packet;
pub(crate) mod recovery;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use crate::engine::{self, CloseReason, Frame, Handshake, Message, Pushed, Session, Sid, Step};
use crate::value::Value;
use packet::{Packet, PacketType};

/// Most binary attachments one packet may announce.
pub(crate) const MAX_ATTACHMENTS: usize = 1000;

/// How long lines put off (see `Namespace::broadcast_later`) wait for
/// others to join their batch.
const LATER_DELAY: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a recovering client waits for this hub's reader of the Redis
/// stream to reach its offset.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

/// A boxed future of the upper layers.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler's answer to a connect.
pub(crate) enum Verdict {
    /// Decided now.
    Now(Result<(), String>),
    /// Decided later (a hook); the client's next packets wait for it.
    Later(BoxFuture<Result<(), String>>),
}

/// A socket asking to join a namespace.
#[derive(Debug)]
pub(crate) struct ConnectRequest<'a> {
    /// The id the socket will have.
    pub(crate) id: Sid,
    /// The `auth` JSON (an object), if the client sent one.
    pub(crate) auth: Option<&'a str>,
    /// The attachments of `auth`, when it held binary.
    pub(crate) handshake: &'a Handshake,
}

/// An event a client sent.
#[derive(Debug)]
pub(crate) struct Event {
    /// The JSON array `["name", args...]`.
    pub(crate) data: Bytes,
    /// Binary attachments, in placeholder order.
    pub(crate) bins: Vec<Bytes>,
    /// The ack id, when the client wants an answer.
    pub(crate) ack: Option<u64>,
}

impl Event {
    /// Its size in bytes, attachments included.
    pub(crate) fn size(&self) -> usize {
        self.data.len() + self.bins.iter().map(Bytes::len).sum::<usize>()
    }
}

/// What a namespace does with its sockets: the chat, or the host's own.
pub(crate) trait NsHandler: Send + Sync + 'static {
    /// A client asks to join; refusing sends it `connect_error`.
    fn connect(&self, ns: &Arc<Namespace>, req: ConnectRequest<'_>) -> Verdict;
    /// The socket has joined (its `CONNECT` answer is queued); `resumed`
    /// when it came back with recovery (its rooms are joined again, what it
    /// missed is queued, and the state [`NsHandler::suspend`] kept is in it).
    fn connected(&self, socket: &Arc<Socket>, auth: Option<&str>, resumed: Option<Resumed>);
    /// The socket's transport dropped and it may come back with recovery:
    /// the state to give back to [`NsHandler::connected`] then.
    fn suspend(&self, _socket: &Arc<Socket>) -> Option<Box<dyn Any + Send + Sync>> {
        None
    }
    /// What [`NsHandler::suspend`] kept, as JSON, to keep it in Redis.
    fn state_json(&self, _state: &(dyn Any + Send + Sync)) -> Option<serde_json::Value> {
        None
    }
    /// The state [`NsHandler::state_json`] wrote, read back.
    fn state_from_json(&self, _json: &serde_json::Value) -> Option<Box<dyn Any + Send + Sync>> {
        None
    }
    /// An event from the socket, in the order the client sent them.
    fn event(&self, socket: &Arc<Socket>, event: Event) -> Step;
    /// The socket left; `reason` in Socket.IO's words.
    fn disconnect(&self, socket: &Arc<Socket>, reason: &'static str);
}

/// A socket that came back with recovery.
pub(crate) struct Resumed {
    /// What [`NsHandler::suspend`] kept.
    pub(crate) state: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Resumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumed").finish_non_exhaustive()
    }
}

/// The rooms a hub has members in, for a cluster that sends each room's
/// lines only to the hubs with members in it.
pub(crate) trait RoomChannels: Send + Sync + 'static {
    /// `room` of `ns` got its first member on this hub.
    fn opened(&self, ns: &str, room: &str);
    /// The last member of `room` of `ns` on this hub left it.
    fn closed(&self, ns: &str, room: &str);
}

/// Where the broadcasts of a namespace with recovery go when hubs share a
/// Redis (the cluster): a stream every hub reads and delivers from, in one
/// order, and the sessions of dropped sockets, so that a client can come
/// back to any hub.
pub(crate) trait Stream: Send + Sync + 'static {
    /// Queues a broadcast for the stream; `false` when it cannot (Redis
    /// away, queue full): the caller delivers it here only.
    /// `joins` is the namespace's join count now: this hub delivers the
    /// entry only to sockets that were in their room by then.
    fn append(
        &self,
        ns: &str,
        rooms: &[&str],
        except: &[&str],
        frames: &[Frame],
        joins: u64,
    ) -> bool;
    /// Keeps a dropped socket's session for `window`.
    fn save_session(&self, ns: &str, pid: Sid, session: RemoteSession, window: Duration);
    /// Takes (once) a session kept by any hub.
    fn take_session(&self, ns: &str, pid: Sid) -> BoxFuture<Option<RemoteSession>>;
    /// Reads the stream of `ns` now, without waiting out the batch window
    /// (a recovering client waits for this hub to catch up).
    fn read_now(&self, ns: &str);
    /// The stream's entries after `from` (at most `max`); `None` when it
    /// cannot tell (Redis away, `from` trimmed away, more than `max`).
    fn fetch(
        &self,
        ns: &str,
        from: recovery::Pos,
        max: usize,
    ) -> BoxFuture<Option<Vec<recovery::Fetched>>>;
}

/// A dropped socket's session, as kept in Redis.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RemoteSession {
    pub(crate) id: String,
    pub(crate) rooms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<serde_json::Value>,
    /// The stream id the socket joined at (for a client with no offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) joined: Option<String>,
}

/// Close reasons after which a socket may come back with recovery
/// (socket.io's list: the transport went, not the client or the server).
fn recoverable(reason: &str) -> bool {
    [
        CloseReason::TransportClose,
        CloseReason::TransportError,
        CloseReason::PingTimeout,
        CloseReason::Server,
    ]
    .iter()
    .any(|r| r.text() == reason)
}

/// Counters the Socket.IO layer keeps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Packets not queued because a socket's queue was full.
    pub(crate) dropped: AtomicU64,
    /// Sockets that came back with recovery.
    pub(crate) recovered: AtomicU64,
    /// Clients that asked to recover and started fresh.
    pub(crate) recovery_misses: AtomicU64,
    /// Connections cut for a binary packet over `max_payload` (the
    /// engine counts the other cuts for size).
    pub(crate) payload_cuts: AtomicU64,
    /// Packets in and out (see [`crate::metrics`]).
    pub(crate) traffic: crate::metrics::SioCounters,
}

/// A namespace's rooms: each room's members, by socket id.
type Rooms = HashMap<Box<str>, HashMap<Sid, Arc<Socket>>>;

/// One namespace: its sockets and rooms.
pub(crate) struct Namespace {
    pub(crate) path: String,
    /// `""` for `/`, `"/name,"` otherwise: what every packet starts with.
    pub(crate) prefix: String,
    sockets: RwLock<HashMap<Sid, Arc<Socket>>>,
    rooms: RwLock<Rooms>,
    handler: Arc<dyn NsHandler>,
    counters: Arc<Counters>,
    /// The number of sockets (shutdown waits for zero).
    count: watch::Sender<usize>,
    /// Broadcasts waiting to be delivered together (see
    /// [`Namespace::broadcast_later`]).
    later: Mutex<Later>,
    /// Whether `later` holds anything (read without the lock).
    has_later: AtomicBool,
    /// Counts joins to rooms: a socket remembers its last, so that a line
    /// put off is not delivered to one that joined after it was said.
    joins: AtomicU64,
    /// Connection state recovery, when on.
    pub(crate) recovery: Option<recovery::Recovery>,
    /// With recovery and Redis: where broadcasts go (see [`Stream`]).
    stream: Option<Arc<dyn Stream>>,
    /// With Redis (and no stream): told when a room gets its first member
    /// here and loses its last (see [`RoomChannels`]).
    channels: Option<Arc<dyn RoomChannels>>,
}

/// Broadcasts put off to be delivered in one pass.
#[derive(Debug, Default)]
struct Later {
    entries: Vec<LaterEntry>,
    /// A pass is scheduled.
    scheduled: bool,
}

#[derive(Debug)]
struct LaterEntry {
    room: Box<str>,
    except: Sid,
    frame: Frame,
    /// The join count when it was said.
    joins: u64,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How a delivery goes into the recovery log.
#[derive(Debug, Clone, Copy)]
enum Record {
    /// At the next place of this hub's own log.
    Next,
    /// At a Redis stream id.
    At(recovery::Pos),
    /// Not at all: it went out here only (Redis away), a hole in the log.
    Hole,
}

/// Whether recovery gives these frames an offset (an event without an ack).
fn stamp_takes(frames: &[Frame]) -> bool {
    recovery::stamp(frames, "").is_some()
}

/// Delivery counts of one broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) queued: usize,
    pub(crate) dropped: usize,
}

impl Namespace {
    /// A namespace at `path` run by `handler`.
    pub(crate) fn new(
        path: &str,
        handler: Arc<dyn NsHandler>,
        counters: Arc<Counters>,
        recovery: Option<recovery::Bounds>,
        stream: Option<(Arc<dyn Stream>, recovery::Pos)>,
        channels: Option<Arc<dyn RoomChannels>>,
    ) -> Arc<Namespace> {
        let (stream, head) = match (recovery.is_some(), stream) {
            (true, Some((s, head))) => (Some(s), Some(head)),
            _ => (None, None),
        };
        // A streamed namespace's broadcasts do not use the room channels.
        let channels = channels.filter(|_| stream.is_none());
        Arc::new(Namespace {
            path: path.to_owned(),
            prefix: packet::ns_prefix(path),
            sockets: RwLock::new(HashMap::new()),
            rooms: RwLock::new(HashMap::new()),
            handler,
            counters,
            count: watch::channel(0).0,
            later: Mutex::new(Later::default()),
            has_later: AtomicBool::new(false),
            joins: AtomicU64::new(0),
            recovery: recovery.map(|b| match head {
                Some(head) => recovery::Recovery::streamed(b, head),
                None => recovery::Recovery::new(b),
            }),
            stream,
            channels,
        })
    }

    /// The socket with this id, if connected here.
    pub(crate) fn socket(&self, id: &str) -> Option<Arc<Socket>> {
        let id: Sid = id.parse().ok()?;
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every socket, now.
    pub(crate) fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// How many sockets are connected.
    pub(crate) fn len(&self) -> usize {
        self.sockets.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The rooms with a socket in them now, and whether `room` is one.
    pub(crate) fn room_count(&self, room: &str) -> (usize, bool) {
        let map = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        (map.len(), map.contains_key(room))
    }

    /// Waits until no socket is left.
    pub(crate) async fn wait_empty(&self) {
        let mut rx = self.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Puts a socket in a room (no effect if it is in it, or gone).
    pub(crate) fn join(&self, socket: &Arc<Socket>, room: &str) {
        self.enter(socket, room, true);
    }

    /// Puts a recovered socket back in a room it was in: lines said there
    /// and not delivered yet still reach it (what it missed was replayed
    /// up to them).
    fn rejoin(&self, socket: &Arc<Socket>, room: &str) {
        self.enter(socket, room, false);
    }

    fn enter(&self, socket: &Arc<Socket>, room: &str, anew: bool) {
        if !socket.is_connected() {
            return;
        }
        {
            let mut joined = socket.rooms.lock().unwrap_or_else(|e| e.into_inner());
            if joined.iter().any(|r| &**r == room) {
                return;
            }
            joined.push(room.into());
        }
        if anew {
            let joined = self.joins.fetch_add(1, Ordering::AcqRel) + 1;
            socket.entered.store(joined, Ordering::Release);
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        let members = match rooms.entry(room.into()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                // Under the rooms' lock: openings and closings of one room
                // reach the cluster in the order they happened.
                if let Some(c) = &self.channels {
                    c.opened(&self.path, room);
                }
                e.insert(Default::default())
            }
        };
        members.insert(socket.id, socket.clone());
    }

    /// Takes a socket out of a room; true if it was in it.
    pub(crate) fn leave(&self, socket: &Socket, room: &str) -> bool {
        {
            let mut joined = socket.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let Some(i) = joined.iter().position(|r| &**r == room) else {
                return false;
            };
            joined.swap_remove(i);
        }
        self.remove_member(socket.id, room);
        true
    }

    fn remove_member(&self, id: Sid, room: &str) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = rooms.get_mut(room) {
            m.remove(&id);
            if m.is_empty() {
                rooms.remove(room);
                if let Some(c) = &self.channels {
                    c.closed(&self.path, room);
                }
            }
        }
    }

    /// Queues `frame` for every socket in `room` but `except`, in a pass
    /// made a moment later with whatever else was put off meanwhile: each
    /// member gets one batch (one buffer, one write) whatever the number
    /// of lines in it. For lines that come in storms (the leave notices
    /// when thousands of clients go at once), so that each costs one
    /// append, and its members are visited once per batch instead of once
    /// per line. Later broadcasts to the same room wait for the pass, so
    /// lines keep their order.
    pub(crate) fn broadcast_later(self: &Arc<Self>, room: &str, except: Sid, frame: Frame) {
        if self.stream.is_some() {
            // Through the stream, in its order, with everything else.
            self.broadcast(&[room], &[except.as_str()], std::slice::from_ref(&frame));
            return;
        }
        let schedule = {
            let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
            later.entries.push(LaterEntry {
                room: room.into(),
                except,
                frame,
                joins: self.joins.load(Ordering::Acquire),
            });
            self.has_later.store(true, Ordering::Release);
            !std::mem::replace(&mut later.scheduled, true)
        };
        if schedule {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let ns = self.clone();
                    rt.spawn(async move {
                        // A moment for the rest of a storm to join the batch.
                        tokio::time::sleep(LATER_DELAY).await;
                        ns.deliver_later();
                    });
                }
                Err(_) => self.deliver_later(),
            }
        }
    }

    /// Delivers what was put off, in order: consecutive lines to one room
    /// as one batch per member.
    fn deliver_later(&self) {
        let mut entries = {
            let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
            later.scheduled = false;
            self.has_later.store(false, Ordering::Release);
            std::mem::take(&mut later.entries)
        };
        // With recovery, each line gets its offset now, and is delivered
        // under the log's lock (see `recovery`).
        let _log = self.recovery.as_ref().map(|r| {
            let mut log = r.log.lock().unwrap_or_else(|e| e.into_inner());
            for e in &mut entries {
                if let Some(mut f) = r.record(
                    &mut log,
                    None,
                    &[&e.room],
                    &[e.except],
                    std::slice::from_ref(&e.frame),
                ) {
                    e.frame = f.remove(0);
                }
            }
            log
        });
        let mut rest = &entries[..];
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|e| e.room == first.room).count();
            let (now, after) = rest.split_at(run);
            rest = after;
            let members: Vec<Arc<Socket>> = self
                .rooms
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&*first.room)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            let all = Frame::batch(now.iter().map(|e| e.frame.clone()).collect());
            let excepted: HashSet<Sid> = now.iter().map(|e| e.except).collect();
            let oldest = now.iter().map(|e| e.joins).min().unwrap_or(0);
            let mut dropped = 0;
            let mut sent = 0;
            for s in &members {
                if s.session.out.is_closed() {
                    continue;
                }
                let entered = s.entered.load(Ordering::Acquire);
                let pushed = if excepted.contains(&s.id) || entered > oldest {
                    // It said some of them, or joined after some were said.
                    let own: Vec<Frame> = now
                        .iter()
                        .filter(|e| e.except != s.id && entered <= e.joins)
                        .map(|e| e.frame.clone())
                        .collect();
                    if own.is_empty() {
                        continue;
                    }
                    (s.session.out.push_all(&own), own.len())
                } else {
                    (s.session.out.push(all.clone()), now.len())
                };
                match pushed {
                    (Pushed::Yes, lines) => sent += lines as u64,
                    (Pushed::Full, _) => dropped += 1,
                    (Pushed::Closed, _) => {}
                }
            }
            let traffic = &self.counters.traffic;
            traffic.broadcasts.add(now.len() as u64);
            traffic.sent_broadcast.add(sent);
            if dropped > 0 {
                self.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    /// Queues `frames` for every socket in `rooms` (every socket of the
    /// namespace when `rooms` is empty) except those in `except` (socket
    /// ids or rooms).
    pub(crate) fn broadcast(&self, rooms: &[&str], except: &[&str], frames: &[Frame]) -> Delivered {
        if let Some(stream) = &self.stream {
            let joins = self.joins.load(Ordering::Acquire);
            if stream.append(&self.path, rooms, except, frames, joins) {
                // Every hub, this one included, delivers it from the stream.
                return Delivered::default();
            }
            return self.deliver(rooms, except, frames, Record::Hole);
        }
        self.deliver(rooms, except, frames, Record::Next)
    }

    /// A broadcast read from the Redis stream at `pos`: delivered here, its
    /// offset the stream id. `joins`: when this hub sent it, the join count
    /// then (a socket that joined its room later does not get it, as if it
    /// had been delivered at once).
    pub(crate) fn deliver_streamed(
        &self,
        pos: recovery::Pos,
        rooms: &[&str],
        except: &[&str],
        frames: &[Frame],
        joins: Option<u64>,
    ) -> Delivered {
        self.deliver_to(rooms, except, frames, Record::At(pos), joins)
    }

    /// A broadcast the stream could not take after all (Redis went away):
    /// delivered here only, unrecorded.
    pub(crate) fn deliver_unstreamed(&self, rooms: &[&str], except: &[&str], frames: &[Frame]) {
        self.deliver(rooms, except, frames, Record::Hole);
    }

    fn deliver(
        &self,
        rooms: &[&str],
        except: &[&str],
        frames: &[Frame],
        record: Record,
    ) -> Delivered {
        self.deliver_to(rooms, except, frames, record, None)
    }

    fn deliver_to(
        &self,
        rooms: &[&str],
        except: &[&str],
        frames: &[Frame],
        record: Record,
        joins: Option<u64>,
    ) -> Delivered {
        if self.has_later.load(Ordering::Acquire) && self.put_off_for(rooms) {
            // Lines put off for these rooms go first.
            self.deliver_later();
        }
        // Usually one socket (the sender) or none: a list, not a hash set.
        let few: Vec<Sid> = if except.is_empty() {
            Vec::new()
        } else {
            let map = self.rooms.read().unwrap_or_else(|e| e.into_inner());
            except
                .iter()
                .flat_map(|x| {
                    let in_room = map.get(*x).map(|m| m.keys().copied().collect::<Vec<_>>());
                    in_room.unwrap_or_else(|| x.parse::<Sid>().into_iter().collect())
                })
                .collect()
        };
        let excluded: HashSet<Sid> = if few.len() > 8 {
            few.iter().copied().collect()
        } else {
            HashSet::new()
        };
        // With recovery: recorded, and delivered under the log's lock.
        let mut log = None;
        let stamped;
        let frames = match &self.recovery {
            Some(r) => {
                let mut guard = r.log.lock().unwrap_or_else(|e| e.into_inner());
                stamped = match record {
                    Record::Next => r.record(&mut guard, None, rooms, &few, frames),
                    Record::At(pos) => {
                        let s = r.record(&mut guard, Some(pos), rooms, &few, frames);
                        if s.is_none() && stamp_takes(frames) {
                            // Delivered already (read twice after a reconnect).
                            return Delivered::default();
                        }
                        s
                    }
                    Record::Hole => {
                        r.hole(&mut guard);
                        None
                    }
                };
                log = Some(guard);
                stamped.as_deref().unwrap_or(frames)
            }
            None => frames,
        };
        let mut d = Delivered::default();
        let mut deliver = |s: &Socket| {
            if joins.is_some_and(|j| s.entered.load(Ordering::Acquire) > j) {
                return; // joined after it was said
            }
            let out = if excluded.is_empty() {
                few.contains(&s.id)
            } else {
                excluded.contains(&s.id)
            };
            if out {
                return;
            }
            match s.session.out.push_all(frames) {
                Pushed::Yes => d.queued += 1,
                Pushed::Full => d.dropped += 1,
                Pushed::Closed => {}
            }
        };
        if rooms.is_empty() {
            for s in self
                .sockets
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
            {
                deliver(s);
            }
        } else if let [room] = rooms {
            if let Some(m) = self
                .rooms
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(*room)
            {
                for s in m.values() {
                    deliver(s);
                }
            }
        } else {
            let map = self.rooms.read().unwrap_or_else(|e| e.into_inner());
            let mut seen = HashSet::new();
            for room in rooms {
                if let Some(m) = map.get(*room) {
                    for (id, s) in m {
                        if seen.insert(*id) {
                            deliver(s);
                        }
                    }
                }
            }
        }
        drop(log);
        let traffic = &self.counters.traffic;
        traffic.broadcasts.add(1);
        traffic.sent_broadcast.add(d.queued as u64);
        if d.dropped > 0 {
            self.counters
                .dropped
                .fetch_add(d.dropped as u64, Ordering::Relaxed);
        }
        d
    }

    /// Whether lines are put off for any of `rooms` (all: any at all).
    fn put_off_for(&self, rooms: &[&str]) -> bool {
        let later = self.later.lock().unwrap_or_else(|e| e.into_inner());
        rooms.is_empty() || later.entries.iter().any(|e| rooms.contains(&&*e.room))
    }

    fn insert(&self, socket: Arc<Socket>) {
        let mut map = self.sockets.write().unwrap_or_else(|e| e.into_inner());
        map.insert(socket.id, socket);
        self.count.send_replace(map.len());
    }

    fn remove(&self, socket: &Socket) {
        let mut map = self.sockets.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&socket.id);
        self.count.send_replace(map.len());
    }
}

/// A server → client acknowledgement: the client's answer.
pub(crate) type AckAnswer = Result<Vec<Value>, AckLost>;

/// The socket left (or its answer could not be read) before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckLost;

#[derive(Debug, Default)]
struct Acks {
    next: u64,
    waiting: HashMap<u64, oneshot::Sender<AckAnswer>>,
}

/// One socket: a client's presence in one namespace.
pub(crate) struct Socket {
    /// The public id (never the Engine.IO session id).
    pub(crate) id: Sid,
    /// Its private session id, when its namespace has recovery on.
    pid: Option<Sid>,
    pub(crate) ns: Arc<Namespace>,
    pub(crate) session: Arc<Session<Sio>>,
    rooms: Mutex<Vec<Box<str>>>,
    acks: Mutex<Option<Box<Acks>>>,
    connected: AtomicBool,
    /// The namespace's join count at its last join to a room.
    entered: AtomicU64,
    /// What the namespace's handler keeps for this socket.
    pub(crate) ext: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.ns.path)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Whether it is still connected.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The handler's state for this socket, if it is a `T`.
    pub(crate) fn ext<T: 'static>(&self) -> Option<&T> {
        self.ext.get()?.downcast_ref()
    }

    /// The rooms it is in.
    pub(crate) fn rooms(&self) -> Vec<String> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    /// The handshake of its connection.
    pub(crate) fn handshake(&self) -> &Handshake {
        &self.session.data.handshake
    }

    /// Queues frames for this socket's client (an event, with recovery on,
    /// with the log's head as its offset).
    pub(crate) fn send(&self, frames: &[Frame]) -> Pushed {
        let pushed = match &self.ns.recovery {
            Some(r) => {
                let log = r.log.lock().unwrap_or_else(|e| e.into_inner());
                match r.direct(&log, frames) {
                    Some(stamped) => self.session.out.push_all(&stamped),
                    None => self.session.out.push_all(frames),
                }
            }
            None => self.session.out.push_all(frames),
        };
        match pushed {
            Pushed::Yes => self.ns.counters.traffic.sent_direct.add(1),
            Pushed::Full => {
                self.ns.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Closed => {}
        }
        pushed
    }

    /// Answers the client's ack `id`.
    pub(crate) fn ack(&self, id: u64, args: crate::events::AckArgs<'_>) -> Pushed {
        match args {
            crate::events::AckArgs::Values(v) => {
                self.send(&packet::event(&self.ns.prefix, None, v, Some(id)))
            }
            crate::events::AckArgs::Json(array) => {
                // `[…]`, checked by `Ack::send_json`: its elements as they are.
                let inner = &array[1..array.len() - 1];
                self.send(&packet::event_frames(
                    &self.ns.prefix,
                    None,
                    inner,
                    &[],
                    Some(id),
                ))
            }
        }
    }

    /// Sends an event and waits for the client's answer.
    pub(crate) fn emit_with_ack(
        &self,
        event: &str,
        args: &[Value],
    ) -> oneshot::Receiver<AckAnswer> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            let acks = acks.get_or_insert_with(Default::default);
            acks.next += 1;
            acks.waiting.insert(acks.next, tx);
            acks.next
        };
        if self.send(&packet::event(&self.ns.prefix, Some(event), args, Some(id))) != Pushed::Yes {
            self.take_ack(id);
        }
        rx
    }

    fn take_ack(&self, id: u64) -> Option<oneshot::Sender<AckAnswer>> {
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let a = acks.as_mut()?;
        let tx = a.waiting.remove(&id);
        if a.waiting.is_empty() {
            *acks = None;
        }
        tx
    }

    fn answer_ack(&self, id: u64, data: &str, bins: &[Bytes]) {
        let Some(tx) = self.take_ack(id) else { return };
        let args = crate::json::value(data)
            .and_then(|v| match v {
                serde_json::Value::Array(items) => Some(items),
                _ => None,
            })
            .and_then(|items| {
                items
                    .into_iter()
                    .map(|i| Value::from_json_with_placeholders(i, bins).ok())
                    .collect::<Option<Vec<_>>>()
            });
        let _ = tx.send(args.ok_or(AckLost));
    }

    /// Disconnects the socket from the server's side: the client gets
    /// `DISCONNECT` (`io server disconnect`, no reconnection), then the
    /// socket leaves with `reason`.
    pub(crate) fn disconnect(self: &Arc<Self>, reason: &'static str) {
        if !self.is_connected() {
            return;
        }
        // Left first, then told: the packet may reach the client at once,
        // and its closing the connection must not decide the reason.
        self.leave_ns(reason);
        self.send(&[packet::disconnect(&self.ns.prefix)]);
    }

    /// Leaves the namespace (once): out of its rooms and the namespace
    /// first (a listing made once the host heard of the leave no longer
    /// shows it), then the handler hears of it.
    pub(crate) fn leave_ns(self: &Arc<Self>, reason: &'static str) {
        if !self.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let rooms = std::mem::take(&mut *self.rooms.lock().unwrap_or_else(|e| e.into_inner()));
        for room in rooms.iter() {
            self.ns.remove_member(self.id, room);
        }
        self.ns.remove(self);
        let joined = match (&self.ns.recovery, self.pid) {
            (Some(r), Some(pid)) => r.left(pid).unwrap_or_default(),
            _ => Default::default(),
        };
        if let (Some(r), Some(pid)) = (&self.ns.recovery, self.pid)
            && recoverable(reason)
        {
            let state = self.ns.handler.suspend(self);
            if let Some(stream) = &self.ns.stream {
                let remote = RemoteSession {
                    id: self.id.to_string(),
                    rooms: rooms.iter().map(|r| r.to_string()).collect(),
                    state: state.as_deref().and_then(|s| self.ns.handler.state_json(s)),
                    joined: Some(joined.stream_id()),
                };
                stream.save_session(&self.ns.path, pid, remote, r.window());
            }
            r.save(pid, self.id, rooms, state, joined);
        }
        self.ns.handler.disconnect(self, reason);
        self.session.data.remove(self);
        if let Some(acks) = self.acks.lock().unwrap_or_else(|e| e.into_inner()).take() {
            for (_, tx) in acks.waiting {
                let _ = tx.send(Err(AckLost));
            }
        }
    }
}

/// A binary packet waiting for its attachments.
#[derive(Debug)]
struct Partial {
    packet: Packet,
    bins: Vec<Bytes>,
    size: usize,
}

/// What the Socket.IO layer keeps per Engine.IO session.
#[derive(Debug)]
pub(crate) struct Client {
    handshake: Handshake,
    sockets: Mutex<Vec<Arc<Socket>>>,
    partial: Mutex<Option<Partial>>,
}

impl Client {
    fn socket(&self, ns: &str) -> Option<Arc<Socket>> {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.ns.path == ns)
            .cloned()
    }

    fn remove(&self, socket: &Socket) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.retain(|s| s.id != socket.id);
        if sockets.is_empty() {
            *sockets = Vec::new();
        }
    }
}

/// The Socket.IO layer: the engine's [`engine::Handler`].
pub(crate) struct Sio {
    namespaces: HashMap<String, Arc<Namespace>>,
    max_payload: usize,
    /// Set at shutdown: new sockets are refused.
    closing: AtomicBool,
    /// The hub's Socket.IO counters (the namespaces share them).
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Sio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sio").finish_non_exhaustive()
    }
}

impl Sio {
    /// The layer serving `namespaces`.
    pub(crate) fn new(
        namespaces: Vec<Arc<Namespace>>,
        max_payload: usize,
        counters: Arc<Counters>,
    ) -> Sio {
        Sio {
            counters,
            namespaces: namespaces
                .into_iter()
                .map(|n| (n.path.clone(), n))
                .collect(),
            max_payload,
            closing: AtomicBool::new(false),
        }
    }

    /// A namespace by path.
    pub(crate) fn namespace(&self, path: &str) -> Option<&Arc<Namespace>> {
        self.namespaces.get(path)
    }

    /// Every namespace.
    pub(crate) fn namespaces(&self) -> impl Iterator<Item = &Arc<Namespace>> {
        self.namespaces.values()
    }

    /// Refuses new sockets from now on.
    pub(crate) fn stop_accepting(&self) {
        self.closing.store(true, Ordering::Release);
    }

    fn dispatch(&self, s: &Arc<Session<Sio>>, p: Packet, bins: Vec<Bytes>) -> Step {
        let kind = match p.kind {
            PacketType::Connect | PacketType::ConnectError => 0,
            PacketType::Disconnect => 1,
            PacketType::Event | PacketType::BinaryEvent => 2,
            PacketType::Ack | PacketType::BinaryAck => 3,
        };
        self.counters.traffic.received[kind].add(1);
        match p.kind {
            PacketType::Connect => self.connect(s, p),
            PacketType::Disconnect => {
                if let Some(socket) = s.data.socket(&p.ns) {
                    socket.leave_ns("client namespace disconnect");
                }
                Step::Next
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(socket) = s.data.socket(&p.ns) else {
                    // Not joined (or gone): dropped, as socket.io does.
                    return Step::Next;
                };
                let Some(data) = p.data else {
                    return Step::Close(CloseReason::ParseError);
                };
                let ev = Event {
                    data,
                    bins,
                    ack: p.ack,
                };
                socket.ns.handler.event(&socket, ev)
            }
            PacketType::Ack | PacketType::BinaryAck => {
                if let (Some(socket), Some(id), Some(data)) = (s.data.socket(&p.ns), p.ack, p.data)
                {
                    let text = std::str::from_utf8(&data).unwrap_or("[]");
                    socket.answer_ack(id, text, &bins);
                }
                Step::Next
            }
            PacketType::ConnectError => Step::Close(CloseReason::ParseError),
        }
    }

    fn connect(&self, s: &Arc<Session<Sio>>, p: Packet) -> Step {
        let Some(ns) = self.namespaces.get(&p.ns).cloned() else {
            let prefix = packet::ns_prefix(&p.ns);
            s.send(packet::connect_error(&prefix, "Invalid namespace"));
            return Step::Next;
        };
        if s.data.socket(&p.ns).is_some() {
            return Step::Next; // joined already
        }
        if self.closing.load(Ordering::Acquire) {
            s.send(packet::connect_error(
                &ns.prefix,
                "the server is shutting down",
            ));
            return Step::Next;
        }
        let mut auth = p.data.clone();
        let mut found = None;
        if let Some(r) = &ns.recovery
            && let Some(data) = &auth
            && let Some((pid, offset, rest)) = session_in_auth(data)
        {
            // The host's hooks see the auth without what recovery added.
            auth = rest;
            // No offset: the client got no event since it joined (what it
            // missed starts where it joined). An offset that is not one of
            // ours: it starts fresh.
            let from = match offset {
                None => Some(None),
                Some(o) => r.pos_of(&o).map(Some),
            };
            let asked = pid.and_then(|pid| pid.parse::<Sid>().ok()).zip(from);
            if let Some((pid, from)) = asked {
                found = r.take(pid, from);
                if found.is_none()
                    && let Some(old) = r.live(pid).and_then(|id| ns.socket(id.as_str()))
                    && !Arc::ptr_eq(&old.session, s)
                {
                    // Back before its old transport was seen to drop (a
                    // network switch: the old connection looks alive until
                    // its ping times out). The pid is the client's secret:
                    // its old socket leaves as if the transport closed, and
                    // the client takes the session over.
                    old.leave_ns(CloseReason::TransportClose.text());
                    found = r.take(pid, from);
                }
                if let Some(stream) = &ns.stream {
                    // The session in Redis is the one that counts (any hub
                    // may have taken it); what it missed comes from the
                    // stream when this hub's log does not reach back.
                    let (s, stream) = (s.clone(), stream.clone());
                    return Step::Wait(Box::pin(async move {
                        let found = clustered_found(&ns, &*stream, found, pid, from)
                            .await
                            .filter(|f| can_tell(&ns, f));
                        if found.is_none() {
                            ns.counters.recovery_misses.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(fut) = decide(&s, &ns, auth, found) {
                            fut.await;
                        }
                    }));
                }
            }
            found = found.filter(|f| can_tell(&ns, f));
            if found.is_none() {
                ns.counters.recovery_misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        match decide(s, &ns, auth, found) {
            None => Step::Next,
            Some(fut) => Step::Wait(fut),
        }
    }
}

/// Asks the namespace's handler whether the socket may join, and lets it
/// in (or not); `Some`: the decision comes later, from this future.
fn decide(
    s: &Arc<Session<Sio>>,
    ns: &Arc<Namespace>,
    auth: Option<Bytes>,
    found: Option<recovery::Found>,
) -> Option<BoxFuture<()>> {
    let id = found.as_ref().map_or_else(Sid::new, |f| f.saved.id);
    let auth_text = auth
        .as_deref()
        .map(|b| std::str::from_utf8(b).unwrap_or("{}"));
    let req = ConnectRequest {
        id,
        auth: auth_text,
        handshake: &s.data.handshake,
    };
    match ns.handler.connect(ns, req) {
        Verdict::Now(result) => {
            admit(s, ns, id, auth, result, found);
            None
        }
        Verdict::Later(fut) => {
            let (s, ns) = (s.clone(), ns.clone());
            Some(Box::pin(async move {
                let result = fut.await;
                admit(&s, &ns, id, auth, result, found);
            }))
        }
    }
}

/// The session of a client that asked to recover, in a cluster: taken
/// (once, cluster-wide) from Redis, with the state this hub kept if it is
/// the one the client was on; and, unless this hub's log covers its
/// offset, what the stream holds after it. `None`: taken already, expired,
/// or Redis could not tell.
async fn clustered_found(
    ns: &Namespace,
    stream: &dyn Stream,
    local: Option<recovery::Found>,
    pid: Sid,
    from: Option<recovery::Pos>,
) -> Option<recovery::Found> {
    let r = ns.recovery.as_ref()?;
    let remote = stream.take_session(&ns.path, pid).await?;
    let mut found = match local {
        Some(f) => f,
        None => {
            let id: Sid = remote.id.parse().ok()?;
            let state = remote
                .state
                .as_ref()
                .and_then(|j| ns.handler.state_from_json(j));
            let rooms = remote.rooms.into_iter().map(Box::from).collect();
            let joined = remote
                .joined
                .as_deref()
                .and_then(recovery::Pos::parse_stream_id);
            recovery::Found {
                pid,
                from: from.or(joined)?,
                saved: recovery::Saved::remote(id, rooms, state, joined.unwrap_or_default()),
                fetched: None,
            }
        }
    };
    // The client may have seen entries this hub has not read yet (it was
    // on another hub, whose reader was ahead): they must be here first, or
    // they would come to it again, live, after what it missed.
    let behind = r.log.lock().unwrap_or_else(|e| e.into_inner()).head() < found.from;
    if behind {
        stream.read_now(&ns.path);
        if !r.reached(found.from, CATCH_UP).await {
            tracing::debug!(ns = %ns.path, "this hub's reader of the stream stayed behind a recovering client");
            return None;
        }
    }
    let covered = r
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .covers(found.from);
    if !covered {
        found.fetched = Some(stream.fetch(&ns.path, found.from, r.max_packets()).await?);
    }
    Some(found)
}

/// Whether what a recovering socket missed can still be told here: if
/// not, it starts fresh (a new id and pid, the client sees it was not
/// recovered). Told again when it is let in, under the log's lock.
fn can_tell(ns: &Namespace, f: &recovery::Found) -> bool {
    let Some(r) = &ns.recovery else {
        return false;
    };
    let log = r.log.lock().unwrap_or_else(|e| e.into_inner());
    missed(r, &log, f, f.saved.id).is_some()
}

/// What the recovering socket `id` missed, from `log` (and what the stream
/// held, when that was fetched); `None` when that cannot be told.
fn missed(
    r: &recovery::Recovery,
    log: &recovery::Log,
    f: &recovery::Found,
    id: Sid,
) -> Option<Vec<Frame>> {
    match &f.fetched {
        Some(fetched) => log.missed_with(r, fetched, f.from, id, &f.saved.rooms),
        None => log.missed(f.from, id, &f.saved.rooms),
    }
}

/// The `pid` and `offset` recovery put in a `CONNECT`'s auth, and the auth
/// without them (`None` when it held nothing else); `None` when it holds
/// neither.
#[allow(clippy::type_complexity)]
fn session_in_auth(data: &[u8]) -> Option<(Option<String>, Option<String>, Option<Bytes>)> {
    let text = std::str::from_utf8(data).ok()?;
    if !text.contains("\"pid\"") && !text.contains("\"offset\"") {
        return None;
    }
    let serde_json::Value::Object(mut map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let mut take = |k: &str| match map.remove(k) {
        Some(serde_json::Value::String(v)) => Some(v),
        _ => None,
    };
    let (pid, offset) = (take("pid"), take("offset"));
    let rest = if map.is_empty() {
        None
    } else {
        serde_json::to_vec(&serde_json::Value::Object(map))
            .ok()
            .map(Bytes::from)
    };
    Some((pid, offset, rest))
}

/// Lets a socket in (or tells the client why not); `found`: the session
/// it comes back to, with recovery.
fn admit(
    s: &Arc<Session<Sio>>,
    ns: &Arc<Namespace>,
    id: Sid,
    auth: Option<Bytes>,
    verdict: Result<(), String>,
    found: Option<recovery::Found>,
) {
    if let Err(message) = verdict {
        s.send(packet::connect_error(&ns.prefix, &message));
        return;
    }
    if s.is_closed() {
        return;
    }
    // With recovery: the answer, what it missed and its rooms under the
    // log's lock, so that no broadcast falls between them.
    let log = ns
        .recovery
        .as_ref()
        .map(|r| (r, r.log.lock().unwrap_or_else(|e| e.into_inner())));
    // What a recovering socket missed; `None` when that cannot be told any
    // more: it starts fresh, with a new pid, so that the client knows
    // (`socket.recovered` is false).
    let back = match (&log, found) {
        (Some((r, log)), Some(f)) => {
            let missed = missed(r, log, &f, id);
            if missed.is_none() {
                ns.counters.recovery_misses.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sid = %id, "a session came back too late to recover what it missed");
            }
            missed.map(|m| (f.pid, f.saved, m))
        }
        _ => None,
    };
    let pid = match (&log, &back) {
        (None, _) => None,
        (Some(_), Some((pid, ..))) => Some(*pid),
        (Some(_), None) => Some(Sid::new()),
    };
    let socket = Arc::new(Socket {
        id,
        pid,
        ns: ns.clone(),
        session: s.clone(),
        rooms: Mutex::new(Vec::new()),
        acks: Mutex::new(None),
        connected: AtomicBool::new(true),
        entered: AtomicU64::new(0),
        ext: OnceLock::new(),
    });
    s.data
        .sockets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(socket.clone());
    let mut resumed = None;
    match log {
        None => {
            ns.insert(socket.clone());
            s.set_ready();
            socket.send(&[packet::connect_ok(&ns.prefix, id.as_str(), None)]);
        }
        Some((r, log)) => {
            ns.insert(socket.clone());
            if let Some(pid) = pid {
                r.connected(pid, id, log.head());
            }
            s.set_ready();
            let mut first = vec![packet::connect_ok(
                &ns.prefix,
                id.as_str(),
                pid.as_ref().map(Sid::as_str),
            )];
            if let Some((_, saved, missed)) = back {
                first.extend(missed);
                for room in &saved.rooms {
                    ns.rejoin(&socket, room);
                }
                resumed = Some(Resumed { state: saved.state });
                ns.counters.recovered.fetch_add(1, Ordering::Relaxed);
            }
            // Whatever the queue's limit: what it missed is bounded by the log.
            if !s.out.is_closed() {
                s.out.push_raw(Frame::batch(first));
            }
            drop(log);
        }
    }
    let auth_text = auth
        .as_deref()
        .map(|b| std::str::from_utf8(b).unwrap_or("{}"));
    ns.handler.connected(&socket, auth_text, resumed);
    if s.is_closed() {
        // Closed while joining: its leave would have missed this socket.
        socket.leave_ns(CloseReason::TransportClose.text());
    }
}

impl engine::Handler for Sio {
    type Data = Client;

    fn open(&self, handshake: Handshake) -> Client {
        Client {
            handshake,
            sockets: Mutex::new(Vec::new()),
            partial: Mutex::new(None),
        }
    }

    fn message(&self, s: &Arc<Session<Sio>>, msg: Message) -> Step {
        match msg {
            Message::Text(text) => {
                if s.data
                    .partial
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
                {
                    tracing::debug!(sid = %s.sid(), "text packet while attachments were due");
                    return Step::Close(CloseReason::ParseError);
                }
                let size = text.len();
                let p = match packet::decode(text, MAX_ATTACHMENTS) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(sid = %s.sid(), "invalid Socket.IO packet: {}", e.0);
                        return Step::Close(CloseReason::ParseError);
                    }
                };
                if p.attachments > 0 {
                    *s.data.partial.lock().unwrap_or_else(|e| e.into_inner()) = Some(Partial {
                        packet: p,
                        bins: Vec::new(),
                        size,
                    });
                    return Step::Next;
                }
                self.dispatch(s, p, Vec::new())
            }
            Message::Binary(data) => {
                let done = {
                    let mut partial = s.data.partial.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(part) = partial.as_mut() else {
                        tracing::debug!(sid = %s.sid(), "binary data with no packet announcing it");
                        return Step::Close(CloseReason::ParseError);
                    };
                    part.size += data.len();
                    if part.size > self.max_payload {
                        // The packet with its attachments is over the limit.
                        tracing::debug!(sid = %s.sid(), "a binary packet over max_payload; closing");
                        *partial = None;
                        self.counters.payload_cuts.fetch_add(1, Ordering::Relaxed);
                        return Step::Close(CloseReason::TransportError);
                    }
                    part.bins.push(data);
                    if part.bins.len() == part.packet.attachments {
                        partial.take()
                    } else {
                        None
                    }
                };
                match done {
                    Some(part) => self.dispatch(s, part.packet, part.bins),
                    None => Step::Next,
                }
            }
        }
    }

    fn close(&self, s: &Arc<Session<Sio>>, reason: CloseReason) {
        *s.data.partial.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let sockets =
            std::mem::take(&mut *s.data.sockets.lock().unwrap_or_else(|e| e.into_inner()));
        for socket in sockets {
            socket.leave_ns(reason.text());
        }
    }
}
