//! Many hubs as one, over Redis pub/sub.
//!
//! Every hub on the same Redis and key prefix is a *node*. Whatever a node
//! delivers to a room, the lobby or a namespace, it delivers to its own
//! sockets first, then publishes; the other nodes deliver it to theirs.
//! Host actions on a socket of another node (move, disconnect) and listings
//! travel as requests that the nodes answer. Nodes know each other by a
//! heartbeat every second.
//!
//! # Why not socketioxide-redis
//!
//! socketioxide-redis (0.4) publishes a broadcast to Redis *before* it
//! delivers to local sockets, and returns the error without delivering
//! when the publish fails: with Redis down, a node would stop serving its
//! own rooms. Its remote `join`/`leave` also change adapter rooms behind
//! the chat's back (the chat keeps each socket's room and name), and its
//! fetched sockets carry no names for listings. This module delivers
//! locally first, always; publishes from one ordered queue that never makes
//! the chat wait; and routes chat-level requests to the node that owns the
//! socket.
//!
//! # Faults
//!
//! - Redis unreachable at start: [`Hub::start`](crate::Hub::start) fails
//!   with [`StartError::Redis`].
//! - Redis lost while running: each node keeps serving its own sockets,
//!   logs a warning, publishes [`HubEvent::Cluster`] (`up: false`), and
//!   reconnects by itself (backoff up to 2 s); then it publishes
//!   `up: true` and cross-node delivery resumes. What was published while
//!   Redis was away is lost (pub/sub keeps nothing); it is counted.
//! - A node that dies: the others stop waiting for it after 3 s without
//!   its heartbeat, and its members leave (presence); its clients
//!   reconnect to another node.
//!
//! # Presence
//!
//! Each node publishes who joined or left a room or the lobby of a chat
//! namespace, and who took a name; every node keeps a table of each other
//! node's members from those, hands them to its host as
//! [`HubEvent::Presence`], and sends its own table to a node it hears of
//! for the first time. A node that stops answering has its table emptied
//! (its members leave) when it expires. A node that comes back from a
//! Redis outage sends its table to everyone and asks for theirs, so that
//! what changed while messages were lost is told.
//!
//! # Recovery
//!
//! Namespaces with connection state recovery do not publish their
//! broadcasts: they go through a Redis stream per namespace that every node
//! reads, in one order, so that offsets mean the same on every node and
//! after a restart; sessions of dropped sockets are kept in Redis. See
//! `stream.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

mod link;
mod stream;

use link::{Conn, Redis};
pub(crate) use stream::{ClusterStream, StreamSpec};
use stream::{Out, Streams};

use crate::error::{ActionError, StartError};
use crate::events::{ClusterEvent, EventBus, EventKinds, HubEvent, PresenceChange, PresenceEvent};
use crate::hub::actions::{MemberInfo, NamespaceListing, RoomInfo};

/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long without a heartbeat before a node counts as gone.
const PEER_EXPIRY: Duration = Duration::from_secs(3);
/// How long a request waits for the other nodes' answers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How many messages may wait to be published.
const PUBLISH_QUEUE: usize = 100_000;
/// Most commands the writer sends to Redis in one pipeline (one write,
/// one read on Redis's side for all of them).
const BATCH: usize = 512;

/// Where a cross-node emit goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireTarget {
    Room(String),
    Lobby,
    Namespace,
    Socket(String),
    /// Any of these rooms (all: empty) but these socket ids and rooms.
    Rooms {
        rooms: Vec<String>,
        except: Vec<String>,
    },
}

/// A request one node makes of the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// Put `sid` in `room` (chat: move there; `None`: the lobby).
    Move {
        ns: String,
        sid: String,
        room: Option<String>,
    },
    /// Take `sid` out of `room` (chat: back to the lobby if it is there).
    Leave {
        ns: String,
        sid: String,
        room: String,
    },
    /// Disconnect `sid`.
    Disconnect { ns: String, sid: String },
    /// List the namespace's local sockets.
    List { ns: String },
}

/// A member of a chat namespace, for presence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) ns: String,
    pub(crate) sid: String,
    pub(crate) name: Option<String>,
    /// `None`: the lobby.
    pub(crate) room: Option<String>,
}

/// A node's answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Done,
    NotFound,
    Listing {
        lobby: Vec<MemberInfo>,
        rooms: Vec<RoomInfo>,
    },
    Failed(String),
}

/// Everything that crosses Redis (JSON; `v` is the format version).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Message {
    /// "I am alive" (and, when `reply`, "tell me who you are").
    Heartbeat {
        from: String,
        reply: bool,
        /// "Send me your members": `from` was cut off from Redis and may
        /// have missed presence messages.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resync: bool,
    },
    /// Deliver an event to local sockets.
    Emit {
        from: String,
        ns: String,
        to: WireTarget,
        event: String,
        /// The arguments as JSON text without the enclosing brackets,
        /// binary as Socket.IO placeholders (kept as text: a client's
        /// lone UTF-16 surrogates cross as they came).
        args: String,
        /// The binary attachments, base64.
        bins: Vec<String>,
    },
    Request {
        from: String,
        id: u64,
        op: Op,
    },
    Reply {
        from: String,
        id: u64,
        answer: Answer,
    },
    /// A member of `from` joined or left a room or the lobby, or took a
    /// name (`change`: `joined`, `left`, `renamed`).
    Presence {
        from: String,
        #[serde(flatten)]
        member: Member,
        change: String,
    },
    /// Every member of `from`, to a node that just heard of it.
    Snapshot {
        from: String,
        members: Vec<Member>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    v: u8,
    #[serde(flatten)]
    msg: Message,
}

/// What the cluster asks of this hub's sockets.
pub(crate) trait LocalOps: Send + Sync + 'static {
    /// Delivers to local sockets only (arguments as JSON text, see
    /// [`Message::Emit`]).
    fn local_emit(&self, ns: &str, to: &WireTarget, event: &str, json: &str, bins: &[Bytes]);
    /// Puts a local socket in a room (chat: moves it; `None`: the lobby).
    fn local_join(&self, ns: &str, sid: &str, room: Option<&str>) -> Result<(), ActionError>;
    /// Takes a local socket out of a room.
    fn local_leave(&self, ns: &str, sid: &str, room: &str) -> Result<(), ActionError>;
    /// Disconnects a local socket.
    fn local_disconnect(&self, ns: &str, sid: &str) -> Result<(), ActionError>;
    /// The local listing of a namespace.
    fn local_list(&self, ns: &str) -> Result<NamespaceListing, ActionError>;
    /// Every local member of the chat's namespaces.
    fn local_members(&self) -> Vec<Member>;
    /// Delivers a broadcast read from a namespace's stream at `pos`.
    fn local_streamed(
        &self,
        ns: &str,
        pos: crate::socketio::recovery::Pos,
        rooms: &[String],
        except: &[String],
        frames: &[crate::engine::Frame],
        joins: Option<u64>,
    );
    /// Delivers here only a broadcast the stream did not take.
    fn local_unstreamed(
        &self,
        ns: &str,
        rooms: &[String],
        except: &[String],
        frames: &[crate::engine::Frame],
    );
}

/// The other nodes' members, by node, then by (namespace, socket id).
type Members = HashMap<String, HashMap<(String, String), Member>>;

type Pending = HashMap<u64, mpsc::UnboundedSender<(String, Answer)>>;

/// The rooms of a hub's namespaces, for the cluster's room channels (the
/// chat's lobby is not one: its lines go to every node).
#[derive(Debug, Clone)]
pub(crate) struct ClusterRooms(pub(crate) Arc<Cluster>);

impl crate::socketio::RoomChannels for ClusterRooms {
    fn opened(&self, ns: &str, room: &str) {
        if room != crate::chat::handler::LOBBY {
            self.0.room_opened(ns, room);
        }
    }

    fn closed(&self, ns: &str, room: &str) {
        if room != crate::chat::handler::LOBBY {
            self.0.room_closed(ns, room);
        }
    }
}

/// A node's link to the others.
pub(crate) struct Cluster {
    node: String,
    all_channel: String,
    own_channel: String,
    publish: mpsc::Sender<Out>,
    up: AtomicBool,
    /// Since when Redis has been away (`None`: it is up).
    down_since: Mutex<Option<Instant>>,
    /// The namespaces whose broadcasts go through Redis streams.
    streams: Streams,
    redis: Redis,
    /// For queries (sessions, stream ranges), made on demand.
    query: tokio::sync::Mutex<Option<Conn>>,
    peers: Mutex<HashMap<String, Instant>>,
    /// The other nodes' members (presence).
    members: Mutex<Members>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    lost: AtomicU64,
    /// Commands sent to Redis (publishes, stream appends, sessions).
    published: AtomicU64,
    /// Messages received from Redis.
    received: AtomicU64,
    /// How many times the subscriber has reconnected: the writer's
    /// connection from before may be dead without its knowing.
    relinks: AtomicU64,
    local: Mutex<Option<Weak<dyn LocalOps>>>,
    events: Arc<EventBus>,
    stop: watch::Sender<bool>,
    /// Messages handed to the publisher and not yet sent (for shutdown).
    queued: watch::Sender<u64>,
    /// How long a busy hub gathers its writes to Redis, and its stream
    /// reads ([`HubConfig::redis_batch`](crate::HubConfig::redis_batch)).
    batch: Duration,
    /// Ends the stream reader's wait out of the batch window (a recovering
    /// client waits for what it saw elsewhere to be read here).
    read_now: tokio::sync::Notify,
    /// `PREFIX#room#`: a room's lines go to its own channel, which only
    /// the nodes with members in it subscribe to.
    room_prefix: String,
    /// The room channels this node wants (see [`Cluster::room_opened`]).
    subs: Mutex<Subs>,
    /// Subscriptions and unsubscriptions for the subscriber, in order.
    sub_ops: mpsc::UnboundedSender<SubOp>,
    /// The last of `sub_ops` the subscriber has carried out.
    subscribed: watch::Sender<u64>,
}

/// The room channels a node wants.
#[derive(Debug, Default)]
struct Subs {
    /// Numbers `sub_ops`.
    seq: u64,
    /// Each channel wanted, and the number of the op that subscribed it.
    asked: HashMap<String, u64>,
}

/// A change of the room channels, for the subscriber.
#[derive(Debug)]
struct SubOp {
    channel: String,
    subscribe: bool,
    seq: u64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn redis_error(url: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StartError {
    StartError::Redis {
        url: redact(url),
        source: e.into(),
    }
}

/// The Redis client for `url` (`sharded`: a node of a Redis Cluster); a
/// `rediss://` one trusts `tls_ca`'s certificates instead of the system's,
/// when given.
fn client(url: &str, tls_ca: Option<&std::path::Path>, sharded: bool) -> Result<Redis, StartError> {
    if url.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider; install ring's
        // unless the host installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let root_cert = match tls_ca {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|source| StartError::File {
            path: path.to_owned(),
            source,
        })?),
    };
    Redis::open(url, root_cert, sharded).map_err(|e| redis_error(url, e))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Cluster {
    /// Connects to Redis (both connections) and starts the node's tasks.
    /// Fails when Redis cannot be reached within a few seconds.
    pub(crate) async fn start(
        url: &str,
        tls_ca: Option<&std::path::Path>,
        sharded: bool,
        prefix: &str,
        batch: Duration,
        events: Arc<EventBus>,
        streamed: Vec<StreamSpec>,
    ) -> Result<Arc<Cluster>, StartError> {
        let redis = client(url, tls_ca, sharded)?;
        let node = crate::engine::Sid::new().to_string();
        let all_channel = format!("{prefix}#all");
        let own_channel = format!("{prefix}#node#{node}");
        let connect = async {
            let publisher = redis.connect().await?;
            let pubsub = redis
                .subscribe(&[all_channel.clone(), own_channel.clone()])
                .await?;
            Ok::<_, redis::RedisError>((publisher, pubsub))
        };
        let (mut publisher, pubsub) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|e| redis_error(url, e))?
            .map_err(|e| redis_error(url, e))?;
        let streams = tokio::time::timeout(
            CONNECT_TIMEOUT,
            Streams::open(&mut publisher, prefix, sharded, streamed),
        )
        .await
        .map_err(|e| redis_error(url, e))?
        .map_err(|e| redis_error(url, e))?;
        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (sub_ops, sub_rx) = mpsc::unbounded_channel();
        let room_prefix = format!("{prefix}#room#");
        let cluster = Arc::new(Cluster {
            node,
            all_channel,
            own_channel,
            publish,
            up: AtomicBool::new(true),
            down_since: Mutex::new(None),
            streams,
            redis: redis.clone(),
            query: tokio::sync::Mutex::new(None),
            peers: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            lost: AtomicU64::new(0),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            relinks: AtomicU64::new(0),
            local: Mutex::new(None),
            events,
            stop: watch::channel(false).0,
            queued: watch::channel(0).0,
            batch,
            read_now: tokio::sync::Notify::new(),
            room_prefix,
            subs: Mutex::default(),
            sub_ops,
            subscribed: watch::channel(0).0,
        });
        tokio::spawn(publisher_task(
            cluster.clone(),
            publisher,
            publish_rx,
            batch,
        ));
        if !cluster.streams.is_empty() {
            tokio::spawn(stream::reader_task(cluster.clone()));
        }
        tokio::spawn(subscriber_task(cluster.clone(), pubsub, sub_rx));
        tokio::spawn(heartbeat_task(cluster.clone()));
        cluster.send(
            &cluster.all_channel,
            Message::Heartbeat {
                from: cluster.node.clone(),
                reply: true,
                resync: false,
            },
        );
        tracing::info!(node = %cluster.node, url = %redact(url), sharded, "joined the Redis cluster");
        Ok(cluster)
    }

    /// Lets the cluster reach the local chat.
    pub(crate) fn set_local(&self, local: Weak<dyn LocalOps>) {
        *self.local.lock().unwrap_or_else(|e| e.into_inner()) = Some(local);
    }

    fn local(&self) -> Option<Arc<dyn LocalOps>> {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    /// Messages lost (not published) so far.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Commands sent to Redis so far (publishes, stream appends, sessions).
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Messages received from Redis so far (heartbeats included).
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// This node's id.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis is reachable now.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Queues a message for Redis; never waits. Dropped (and counted) when
    /// the queue is full.
    fn send(&self, channel: &str, msg: Message) {
        let text = match serde_json::to_string(&Envelope { v: 2, msg }) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot encode a cluster message: {e}");
                return;
            }
        };
        let out = Out::Publish {
            channel: channel.to_owned(),
            text,
        };
        if !self.queue(out) {
            self.count_lost();
        }
    }

    /// Queues a command for Redis, in order with the others; `false` when
    /// the queue is full.
    fn queue(&self, out: Out) -> bool {
        self.queued.send_modify(|n| *n += 1);
        if self.publish.try_send(out).is_err() {
            self.queued.send_modify(|n| *n -= 1);
            return false;
        }
        true
    }

    fn count_lost(&self) {
        let n = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                lost = n,
                "cluster messages lost (Redis unavailable or too slow)"
            );
        }
    }

    /// Publishes an emit for the other nodes (the caller delivered
    /// locally); `args` as JSON text without brackets.
    pub(crate) fn emit_raw(
        &self,
        ns: &str,
        to: WireTarget,
        event: &str,
        args: String,
        bins: Vec<Bytes>,
    ) {
        if !matches!(to, WireTarget::Socket(_)) && self.streams.has(ns) {
            return; // its broadcasts went through the stream
        }
        let engine = base64::engine::general_purpose::STANDARD;
        let bins = bins.iter().map(|b| engine.encode(b)).collect();
        // One room: its own channel, heard only by the nodes with members
        // in it. The rest (the lobby, a namespace, several rooms, a
        // socket): every node.
        let room = match &to {
            WireTarget::Room(r) => Some(r.as_str()),
            WireTarget::Rooms { rooms, .. } if rooms.len() == 1 => Some(rooms[0].as_str()),
            _ => None,
        };
        let channel = match room {
            Some(r) => self.room_channel(ns, r),
            None => self.all_channel.clone(),
        };
        self.send(
            &channel,
            Message::Emit {
                from: self.node.clone(),
                ns: ns.to_owned(),
                to,
                event: event.to_owned(),
                args,
                bins,
            },
        );
    }

    /// The channel of a room of `ns` (the namespace's length first, so
    /// that no namespace and room pair reads as another).
    fn room_channel(&self, ns: &str, room: &str) -> String {
        format!("{}{}#{ns}#{room}", self.room_prefix, ns.len())
    }

    /// A room of `ns` got its first member on this node: from now on the
    /// node hears the room's channel (the subscription is confirmed a
    /// moment later; see [`Cluster::room_ready`]).
    pub(crate) fn room_opened(&self, ns: &str, room: &str) {
        self.change_sub(self.room_channel(ns, room), true);
    }

    /// The last member of a room of `ns` on this node left it.
    pub(crate) fn room_closed(&self, ns: &str, room: &str) {
        self.change_sub(self.room_channel(ns, room), false);
    }

    fn change_sub(&self, channel: String, subscribe: bool) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        let seq = subs.seq + 1;
        let changed = if subscribe {
            match subs.asked.entry(channel.clone()) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(seq);
                    true
                }
            }
        } else {
            subs.asked.remove(&channel).is_some()
        };
        if !changed {
            return;
        }
        subs.seq = seq;
        // Sent under the lock: the subscriber gets the changes in order.
        let _ = self.sub_ops.send(SubOp {
            channel,
            subscribe,
            seq,
        });
    }

    /// Waits (a bounded time) until Redis has confirmed this node's
    /// subscription to the channel of a room of `ns`, so that a member who
    /// was told it joined gets every line said in the room after that, on
    /// any node. At once when it is confirmed already or Redis is away.
    pub(crate) async fn room_ready(&self, ns: &str, room: &str) {
        let asked = {
            let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
            subs.asked.get(&self.room_channel(ns, room)).copied()
        };
        let Some(seq) = asked else { return };
        if !self.is_up() {
            return;
        }
        let mut done = self.subscribed.subscribe();
        let confirmed = done.wait_for(|&n| n >= seq);
        if tokio::time::timeout(REQUEST_TIMEOUT, confirmed)
            .await
            .is_err()
        {
            tracing::debug!(ns, room, "a room's subscription was not confirmed in time");
        }
    }

    /// Whether this node's subscription to a room's channel is not
    /// confirmed yet (see [`Cluster::room_ready`]).
    pub(crate) fn room_pending(&self, ns: &str, room: &str) -> bool {
        let asked = {
            let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
            subs.asked.get(&self.room_channel(ns, room)).copied()
        };
        asked.is_some_and(|seq| *self.subscribed.borrow() < seq) && self.is_up()
    }

    /// The room channels this node wants now.
    fn wanted_rooms(&self) -> Vec<String> {
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.asked.keys().cloned().collect()
    }

    /// The nodes heard from lately (without this one).
    fn live_peers(&self) -> usize {
        self.expire_peers();
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Forgets the nodes not heard from for `PEER_EXPIRY`: their members
    /// leave.
    fn expire_peers(&self) {
        let gone: Vec<String> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let gone = peers
                .iter()
                .filter(|(_, seen)| now.duration_since(**seen) >= PEER_EXPIRY)
                .map(|(node, _)| node.clone())
                .collect::<Vec<_>>();
            for node in &gone {
                peers.remove(node);
            }
            gone
        };
        for node in gone {
            let members = self
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&node);
            if let Some(members) = members {
                if !members.is_empty() {
                    tracing::info!(node = %node, members = members.len(), "a node stopped answering: its members leave");
                }
                for m in members.into_values() {
                    self.tell(&node, m, PresenceChange::Left);
                }
            }
        }
    }

    /// Hands a presence change of another node to the host.
    fn tell(&self, node: &str, m: Member, change: PresenceChange) {
        if self.events.wants(EventKinds::PRESENCE) {
            self.events.publish(HubEvent::Presence(PresenceEvent {
                ns: m.ns,
                sid: m.sid,
                name: m.name,
                room: m.room,
                change,
                hub: Some(node.to_owned()),
            }));
        }
    }

    /// Publishes a presence change of a local socket.
    pub(crate) fn presence(
        &self,
        ns: &str,
        sid: &str,
        name: &Option<String>,
        room: &Option<String>,
        change: PresenceChange,
    ) {
        self.send(
            &self.all_channel,
            Message::Presence {
                from: self.node.clone(),
                member: Member {
                    ns: ns.to_owned(),
                    sid: sid.to_owned(),
                    name: name.clone(),
                    room: room.clone(),
                },
                change: change.as_str().to_owned(),
            },
        );
    }

    /// Applies another node's presence change to its table and tells the
    /// host.
    fn apply_presence(&self, from: &str, m: Member, change: &str) {
        let change = match change {
            "joined" => PresenceChange::Joined,
            "left" => PresenceChange::Left,
            "renamed" => PresenceChange::Renamed,
            _ => return,
        };
        {
            let mut all = self.members.lock().unwrap_or_else(|e| e.into_inner());
            let table = all.entry(from.to_owned()).or_default();
            let key = (m.ns.clone(), m.sid.clone());
            match change {
                PresenceChange::Left => {
                    // A move leaves one scope and joins another: forget the
                    // member only if it left from where the table has it.
                    if table.get(&key).is_some_and(|t| t.room == m.room) {
                        table.remove(&key);
                    }
                }
                PresenceChange::Joined | PresenceChange::Renamed => {
                    table.insert(key, m.clone());
                }
            }
        }
        self.tell(from, m, change);
    }

    /// Takes another node's whole table (it just met this node): who is
    /// new joins, who is gone leaves.
    fn apply_snapshot(&self, from: &str, members: Vec<Member>) {
        let new: HashMap<(String, String), Member> = members
            .into_iter()
            .map(|m| ((m.ns.clone(), m.sid.clone()), m))
            .collect();
        let old = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(from.to_owned(), new.clone())
            .unwrap_or_default();
        for (key, m) in &old {
            if new.get(key) != Some(m) {
                self.tell(from, m.clone(), PresenceChange::Left);
            }
        }
        for (key, m) in new {
            if old.get(&key) != Some(&m) {
                self.tell(from, m, PresenceChange::Joined);
            }
        }
    }

    /// Sends this node's members to a node that just heard of it.
    fn send_snapshot(&self, to: &str) {
        let Some(local) = self.local() else { return };
        let channel = format!("{}#node#{to}", self.all_channel.trim_end_matches("#all"));
        self.send(
            &channel,
            Message::Snapshot {
                from: self.node.clone(),
                members: local.local_members(),
            },
        );
    }

    /// Asks the other nodes; collects answers until `enough` says so, every
    /// live node answered, or the timeout.
    async fn ask(
        &self,
        op: Op,
        mut enough: impl FnMut(&Answer) -> bool,
    ) -> Result<Vec<(String, Answer)>, ActionError> {
        if !self.is_up() {
            return Err(ActionError::Delivery(
                "Redis is unavailable: only this node's sockets can be reached".into(),
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let expected = self.live_peers();
        self.send(
            &self.all_channel,
            Message::Request {
                from: self.node.clone(),
                id,
                op,
            },
        );
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        while answers.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((from, answer))) => {
                    let stop = enough(&answer);
                    answers.push((from, answer));
                    if stop {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        Ok(answers)
    }

    /// Puts a socket that is on another node in a room (chat: moves it;
    /// `None`: the lobby).
    pub(crate) async fn remote_move(
        &self,
        ns: &str,
        sid: &str,
        room: Option<String>,
    ) -> Result<(), ActionError> {
        let op = Op::Move {
            ns: ns.to_owned(),
            sid: sid.to_owned(),
            room,
        };
        self.decide(op, ns, sid).await
    }

    /// Takes a socket that is on another node out of a room.
    pub(crate) async fn remote_leave(
        &self,
        ns: &str,
        sid: &str,
        room: &str,
    ) -> Result<(), ActionError> {
        let op = Op::Leave {
            ns: ns.to_owned(),
            sid: sid.to_owned(),
            room: room.to_owned(),
        };
        self.decide(op, ns, sid).await
    }

    /// Disconnects a socket that is on another node.
    pub(crate) async fn remote_disconnect(&self, ns: &str, sid: &str) -> Result<(), ActionError> {
        let op = Op::Disconnect {
            ns: ns.to_owned(),
            sid: sid.to_owned(),
        };
        self.decide(op, ns, sid).await
    }

    async fn decide(&self, op: Op, ns: &str, sid: &str) -> Result<(), ActionError> {
        let answers = self
            .ask(op, |a| matches!(a, Answer::Done | Answer::Failed(_)))
            .await?;
        for (_, answer) in answers {
            match answer {
                Answer::Done => return Ok(()),
                Answer::Failed(e) => return Err(ActionError::Delivery(e)),
                _ => {}
            }
        }
        Err(ActionError::SocketNotFound {
            ns: ns.to_owned(),
            sid: sid.to_owned(),
        })
    }

    /// Adds the other nodes' sockets to a local listing.
    pub(crate) async fn merge_listing(&self, mut listing: NamespaceListing) -> NamespaceListing {
        let ns = listing.ns.clone();
        let answers = match self.ask(Op::List { ns }, |_| false).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("listing this node only: {e}");
                return listing;
            }
        };
        let mut rooms: BTreeMap<String, Vec<MemberInfo>> = listing
            .rooms
            .drain(..)
            .map(|r| (r.name, r.members))
            .collect();
        for (_, answer) in answers {
            if let Answer::Listing {
                lobby,
                rooms: theirs,
            } = answer
            {
                listing.lobby.extend(lobby);
                for r in theirs {
                    rooms.entry(r.name).or_default().extend(r.members);
                }
            }
        }
        crate::hub::actions::sorted(&listing.ns, listing.lobby, rooms)
    }

    /// Waits (bounded by the caller) until everything queued was published.
    pub(crate) async fn flush(&self) {
        let mut rx = self.queued.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Stops the node's tasks.
    pub(crate) fn close(&self) {
        self.stop.send_replace(true);
    }

    /// How long Redis has been away (`None`: it is up).
    pub(crate) fn down_for(&self) -> Option<Duration> {
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    fn set_up(&self, up: bool, detail: String) {
        if self.up.swap(up, Ordering::AcqRel) == up {
            return;
        }
        *self.down_since.lock().unwrap_or_else(|e| e.into_inner()) = (!up).then(Instant::now);
        if up {
            tracing::info!(node = %self.node, "Redis is back: cross-node delivery resumes");
        } else {
            tracing::warn!(node = %self.node, "Redis lost ({detail}): serving this node's sockets only, reconnecting");
        }
        if self.events.wants(EventKinds::CLUSTER) {
            self.events.publish(HubEvent::Cluster(ClusterEvent {
                node: self.node.clone(),
                up,
                detail,
            }));
        }
    }

    /// Handles one message from Redis.
    async fn receive(self: &Arc<Self>, payload: &[u8]) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("ignoring an unreadable cluster message: {e}");
                return;
            }
        };
        match envelope.msg {
            Message::Heartbeat {
                from,
                reply,
                resync,
            } => {
                if from == self.node {
                    return;
                }
                let known = self
                    .peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(from.clone(), Instant::now())
                    .is_some();
                if reply && !known {
                    self.send(
                        &self.all_channel,
                        Message::Heartbeat {
                            from: self.node.clone(),
                            reply: false,
                            resync: false,
                        },
                    );
                }
                if !known || resync {
                    self.send_snapshot(&from);
                }
            }
            Message::Emit {
                from,
                ns,
                to,
                event,
                args,
                bins,
            } => {
                if from == self.node {
                    return;
                }
                let engine = base64::engine::general_purpose::STANDARD;
                let bins: Vec<Bytes> = bins
                    .iter()
                    .filter_map(|b| engine.decode(b).ok().map(Bytes::from))
                    .collect();
                if let Some(local) = self.local() {
                    local.local_emit(&ns, &to, &event, &args, &bins);
                }
            }
            Message::Request { from, id, op } => {
                if from == self.node {
                    return;
                }
                self.answer(from, id, op);
            }
            Message::Presence {
                from,
                member,
                change,
            } => {
                if from != self.node {
                    self.apply_presence(&from, member, &change);
                }
            }
            Message::Snapshot { from, members } => {
                if from != self.node {
                    self.apply_snapshot(&from, members);
                }
            }
            Message::Reply { from, id, answer } => {
                let tx = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&id)
                    .cloned();
                if let Some(tx) = tx {
                    let _ = tx.send((from, answer));
                }
            }
        }
    }

    fn answer(self: &Arc<Self>, to: String, id: u64, op: Op) {
        let Some(local) = self.local() else { return };
        let reply_channel = format!("{}#node#{to}", self.all_channel.trim_end_matches("#all"));
        let reply = {
            let this = self.clone();
            move |answer: Answer| {
                this.send(
                    &reply_channel,
                    Message::Reply {
                        from: this.node.clone(),
                        id,
                        answer,
                    },
                );
            }
        };
        let not_found = |e: &ActionError| {
            matches!(
                e,
                ActionError::SocketNotFound { .. } | ActionError::UnknownNamespace(_)
            )
        };
        let done = |r: Result<(), ActionError>| match r {
            Ok(()) => Answer::Done,
            Err(e) if not_found(&e) => Answer::NotFound,
            Err(e) => Answer::Failed(e.to_string()),
        };
        reply(match op {
            Op::Move {
                ns,
                sid,
                room: Some(room),
            } => {
                let joined = local.local_join(&ns, &sid, Some(&room));
                if joined.is_err() {
                    return reply(done(joined));
                }
                // Done once this node hears the room's lines (not here:
                // this runs in the subscriber, which confirms that).
                let this = self.clone();
                tokio::spawn(async move {
                    this.room_ready(&ns, &room).await;
                    reply(Answer::Done);
                });
                return;
            }
            Op::Move { ns, sid, room } => done(local.local_join(&ns, &sid, room.as_deref())),
            Op::Leave { ns, sid, room } => done(local.local_leave(&ns, &sid, &room)),
            Op::Disconnect { ns, sid } => done(local.local_disconnect(&ns, &sid)),
            Op::List { ns } => match local.local_list(&ns) {
                Ok(l) => Answer::Listing {
                    lobby: l.lobby,
                    rooms: l.rooms,
                },
                Err(e) => Answer::Failed(e.to_string()),
            },
        });
    }
}

/// Sends queued commands (publishes, stream appends, sessions) in order,
/// what is queued as one pipeline; reconnects when Redis goes away.
///
/// Redis spends most of a `PUBLISH` in the system calls around it (reading
/// the command, writing its answer and the message to every subscriber),
/// which a pipeline pays once for all its commands. So after a send, what
/// comes within `window` waits for the window's end and goes as one
/// pipeline; what comes after a quiet spell goes at once (no delay when
/// the hub is not busy). The order is the queue's, on one connection.
async fn publisher_task(
    cluster: Arc<Cluster>,
    conn: Conn,
    mut rx: mpsc::Receiver<Out>,
    window: Duration,
) {
    let mut conn = Some(conn);
    let mut linked = cluster.relinks.load(Ordering::Acquire);
    let mut stop = cluster.stop.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_send: Option<tokio::time::Instant> = None;
    // The last pipeline was full: more is queued, send it without a wait.
    let mut backlog = false;
    loop {
        let out = tokio::select! {
            next = rx.recv() => match next {
                Some(m) => m,
                None => return,
            },
            () = crate::net::until_stopped(&mut stop) => return,
        };
        batch.push(out);
        if let Some(at) = last_send.map(|t| t + window)
            && at > tokio::time::Instant::now()
            && !window.is_zero()
            && !backlog
        {
            // A send a moment ago: gather until the window closes (a stop
            // still sends what is gathered, for the shutdown's flush).
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = crate::net::until_stopped(&mut stop) => {}
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(out) => batch.push(out),
                Err(_) => break,
            }
        }
        let relinks = cluster.relinks.load(Ordering::Acquire);
        if relinks != linked {
            // Redis went away and came back: a connection from before it
            // left would fail this batch (all of it) on first use.
            linked = relinks;
            conn = None;
        }
        if conn.is_none() && cluster.is_up() {
            // The subscriber says Redis is back: reconnect on demand.
            conn = tokio::time::timeout(CONNECT_TIMEOUT, cluster.redis.connect())
                .await
                .ok()
                .and_then(Result::ok);
        }
        let n = batch.len();
        backlog = n == BATCH;
        last_send = Some(tokio::time::Instant::now());
        let sent = match conn.as_mut() {
            Some(c) => {
                let run = stream::run_all(&batch, c, &cluster.redis);
                matches!(tokio::time::timeout(CONNECT_TIMEOUT, run).await, Ok(Ok(())))
            }
            None => false,
        };
        if sent {
            cluster.published.fetch_add(n as u64, Ordering::Relaxed);
            batch.clear();
        } else {
            conn = None;
            for out in batch.drain(..) {
                cluster.count_lost();
                if let Out::Append(a) = out
                    && let Some(local) = cluster.local()
                {
                    // Nobody got it: this hub's sockets at least do.
                    local.local_unstreamed(&a.ns, &a.rooms, &a.except, &a.frames);
                }
            }
        }
        cluster
            .queued
            .send_modify(|q| *q = q.saturating_sub(n as u64));
    }
}

/// Receives from Redis, and subscribes to the room channels this node
/// wants as its members come and go; on a lost connection reports it,
/// reconnects and subscribes again to everything it wants.
async fn subscriber_task(
    cluster: Arc<Cluster>,
    pubsub: (link::SubSink, link::SubStream),
    mut ops: mpsc::UnboundedReceiver<SubOp>,
) {
    let mut stop = cluster.stop.subscribe();
    let mut link = Some(pubsub);
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Some((sink, stream)) = link.as_mut() {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        cluster.receive(msg.as_bytes()).await;
                        continue;
                    }
                    None => {
                        link = None;
                        cluster.set_up(false, "the connection to Redis closed".into());
                    }
                },
                op = ops.recv() => {
                    let Some(op) = op else { return };
                    let change = async {
                        if op.subscribe {
                            sink.subscribe(std::slice::from_ref(&op.channel)).await
                        } else {
                            sink.unsubscribe(&op.channel).await
                        }
                    };
                    match tokio::time::timeout(CONNECT_TIMEOUT, change).await {
                        Ok(Ok(())) => {}
                        // The connection is going: the resubscription
                        // after it comes back covers this change.
                        Ok(Err(e)) => tracing::debug!("cannot change a room subscription: {e}"),
                        Err(_) => tracing::debug!("a room subscription change timed out"),
                    }
                    cluster.subscribed.send_replace(op.seq);
                    continue;
                }
                () = crate::net::until_stopped(&mut stop) => return,
            }
        }
        // Away from Redis: room changes meanwhile are told at once (what
        // is said in a room is lost anyway), and made on reconnecting.
        while let Ok(op) = ops.try_recv() {
            cluster.subscribed.send_replace(op.seq);
        }
        // Reconnect, with a growing pause between attempts.
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = crate::net::until_stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
        let attempt = async {
            let mut channels = vec![cluster.all_channel.clone(), cluster.own_channel.clone()];
            channels.extend(cluster.wanted_rooms());
            cluster.redis.subscribe(&channels).await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(pair)) => {
                link = Some(pair);
                backoff = Duration::from_millis(100);
                cluster.relinks.fetch_add(1, Ordering::AcqRel);
                cluster.set_up(true, "reconnected".into());
                cluster.send(
                    &cluster.all_channel,
                    Message::Heartbeat {
                        from: cluster.node.clone(),
                        reply: true,
                        resync: true,
                    },
                );
                // Presence messages may have been lost both ways while
                // Redis was away (even for less than a peer's expiry):
                // everyone gets this node's members again, and sends theirs.
                if let Some(local) = cluster.local() {
                    cluster.send(
                        &cluster.all_channel,
                        Message::Snapshot {
                            from: cluster.node.clone(),
                            members: local.local_members(),
                        },
                    );
                }
            }
            Ok(Err(e)) => tracing::debug!("Redis reconnect failed: {e}"),
            Err(_) => tracing::debug!("Redis reconnect timed out"),
        }
    }
}

async fn heartbeat_task(cluster: Arc<Cluster>) {
    let mut stop = cluster.stop.subscribe();
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = crate::net::until_stopped(&mut stop) => return,
        }
        if cluster.is_up() {
            cluster.send(
                &cluster.all_channel,
                Message::Heartbeat {
                    from: cluster.node.clone(),
                    reply: false,
                    resync: false,
                },
            );
        }
        cluster.expire_peers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let m = Envelope {
            v: 1,
            msg: Message::Emit {
                from: "n1".into(),
                ns: "/chat".into(),
                to: WireTarget::Room("r".into()),
                event: "serverMessage".into(),
                args: "\"hi\"".into(),
                bins: vec![],
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""t":"emit""#), "{text}");
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.msg, Message::Emit { to: WireTarget::Room(r), .. } if r == "r"));
    }

    #[test]
    fn presence_messages_round_trip_as_json() {
        let member = Member {
            ns: "/chat".into(),
            sid: "s1".into(),
            name: Some("ann".into()),
            room: None,
        };
        let m = Envelope {
            v: 2,
            msg: Message::Presence {
                from: "n1".into(),
                member: member.clone(),
                change: "joined".into(),
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert!(
            matches!(back.msg, Message::Presence { member: m, change, .. } if m == member && change == "joined")
        );
        let snap = Envelope {
            v: 2,
            msg: Message::Snapshot {
                from: "n1".into(),
                members: vec![member.clone()],
            },
        };
        let text = serde_json::to_string(&snap).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.msg, Message::Snapshot { members, .. } if members == [member]));
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
