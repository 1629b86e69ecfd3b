//! What the hub tells its host: [`HubEvent`]s, delivered through
//! [`Subscription`]s.
//!
//! The hub never waits for a host to read its events. Each subscription has
//! a bounded queue; when a host falls behind and the queue is full, further
//! events for that subscription are dropped and counted
//! ([`Subscription::dropped`]), and the chat goes on. An event kind (or a
//! custom event name) that no subscription asked for is not even built.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::value::Value;

/// A set of [`HubEvent`] kinds, combined with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventKinds(u32);

impl EventKinds {
    /// No kind at all.
    pub const NONE: EventKinds = EventKinds(0);
    /// [`HubEvent::Connect`].
    pub const CONNECT: EventKinds = EventKinds(1);
    /// [`HubEvent::Login`].
    pub const LOGIN: EventKinds = EventKinds(1 << 1);
    /// [`HubEvent::Join`].
    pub const JOIN: EventKinds = EventKinds(1 << 2);
    /// [`HubEvent::Message`].
    pub const MESSAGE: EventKinds = EventKinds(1 << 3);
    /// [`HubEvent::Custom`]: events outside the chat protocol.
    pub const CUSTOM: EventKinds = EventKinds(1 << 4);
    /// [`HubEvent::Rejected`]: chat input the hub refused.
    pub const REJECTED: EventKinds = EventKinds(1 << 5);
    /// [`HubEvent::Disconnect`].
    pub const DISCONNECT: EventKinds = EventKinds(1 << 6);
    /// [`HubEvent::Cluster`]: the link to the other hubs (Redis) went down
    /// or came back.
    pub const CLUSTER: EventKinds = EventKinds(1 << 7);
    /// [`HubEvent::Limit`]: a socket went over a limit (flood, slow reader).
    pub const LIMIT: EventKinds = EventKinds(1 << 8);
    /// [`HubEvent::Presence`]: who is where, on every hub of the cluster.
    pub const PRESENCE: EventKinds = EventKinds(1 << 9);
    /// Every kind.
    pub const ALL: EventKinds = EventKinds((1 << 10) - 1);

    /// Whether every kind in `other` is in `self`.
    pub const fn contains(self, other: EventKinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a kind.
    pub const fn intersects(self, other: EventKinds) -> bool {
        self.0 & other.0 != 0
    }

    /// The raw bits (stable: the C face exposes them).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Builds a set from raw bits; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: u32) -> EventKinds {
        EventKinds(bits & EventKinds::ALL.0)
    }
}

impl std::ops::BitOr for EventKinds {
    type Output = EventKinds;
    fn bitor(self, rhs: EventKinds) -> EventKinds {
        EventKinds(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for EventKinds {
    fn bitor_assign(&mut self, rhs: EventKinds) {
        self.0 |= rhs.0;
    }
}

/// Which events a [`Subscription`] receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The kinds wanted.
    pub kinds: EventKinds,
    /// For [`EventKinds::CUSTOM`]: only these event names (`None`: every name).
    pub custom_events: Option<Vec<String>>,
}

impl EventFilter {
    /// Every kind, every custom event.
    pub fn all() -> EventFilter {
        EventFilter {
            kinds: EventKinds::ALL,
            custom_events: None,
        }
    }

    /// These kinds, every custom event name (when `kinds` has `CUSTOM`).
    pub fn kinds(kinds: EventKinds) -> EventFilter {
        EventFilter {
            kinds,
            custom_events: None,
        }
    }

    /// Only custom events with these names.
    pub fn custom<I, S>(names: I) -> EventFilter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EventFilter {
            kinds: EventKinds::CUSTOM,
            custom_events: Some(names.into_iter().map(Into::into).collect()),
        }
    }

    fn wants(&self, kind: EventKinds, custom_name: Option<&str>) -> bool {
        if !self.kinds.contains(kind) {
            return false;
        }
        match (custom_name, &self.custom_events) {
            (Some(name), Some(names)) => names.iter().any(|n| n == name),
            _ => true,
        }
    }
}

/// How a socket is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

/// A socket connected to a namespace and passed the connect hook.
#[derive(Debug, Clone)]
pub struct ConnectEvent {
    /// The namespace, e.g. `/chat`.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The handshake `auth` payload (`{}` when the client sent none).
    pub auth: Value,
    /// The peer address, when the hub knows it.
    pub remote_addr: Option<SocketAddr>,
    /// The transport at connect time.
    pub transport: Transport,
    /// The socket came back with connection state recovery (see
    /// [`RecoveryConfig`](crate::RecoveryConfig)): same id, its rooms (in
    /// the chat, its name and room) as before, what it missed replayed.
    pub recovered: bool,
    /// The headers of the request that opened the connection (socket.io's
    /// `socket.handshake.headers`), cookies included.
    pub headers: http::HeaderMap,
}

/// A socket logged in (or changed its name).
#[derive(Debug, Clone)]
pub struct LoginEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The new name.
    pub name: String,
    /// The name before, if the socket had logged in already.
    pub previous: Option<String>,
    /// The room the socket is in (`None`: the lobby).
    pub room: Option<String>,
}

/// A socket changed room: joined one (by `join` or by the host) or went
/// back to the lobby (by the host).
#[derive(Debug, Clone)]
pub struct JoinEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The socket's name, if it logged in.
    pub name: Option<String>,
    /// The room left (`None`: it was in the lobby).
    pub from: Option<String>,
    /// The room entered (`None`: the lobby).
    pub to: Option<String>,
    /// Whether the host moved the socket (rather than the client's `join`).
    pub by_host: bool,
}

/// A chat message (`clientMessage`) that was delivered.
#[derive(Debug, Clone)]
pub struct MessageEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The sender's name, if it logged in.
    pub name: Option<String>,
    /// The room it was said in (`None`: the lobby).
    pub room: Option<String>,
    /// The text.
    pub text: String,
}

/// An event outside the chat protocol (the chapter's `my event`), with its
/// arguments and, when the client asked for one, an acknowledgement to
/// answer.
#[derive(Debug, Clone)]
pub struct CustomEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The sender's name, if it logged in.
    pub name: Option<String>,
    /// The event name.
    pub event: String,
    /// The arguments (without the ack callback).
    pub args: Vec<Value>,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<Ack>,
}

/// Chat input that the hub refused (the sender got an `Error: …` line).
#[derive(Debug, Clone)]
pub struct RejectedEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The event that was refused (`login`, `join`, `clientMessage`).
    pub event: String,
    /// What was wrong: the text after `Error: `.
    pub error: String,
}

/// A socket left its namespace.
#[derive(Debug, Clone)]
pub struct DisconnectEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The socket's name, if it logged in.
    pub name: Option<String>,
    /// The room it was in (`None`: the lobby).
    pub room: Option<String>,
    /// Why, as Socket.IO names it (`client namespace disconnect`,
    /// `transport close`, `server namespace disconnect`, …).
    pub reason: String,
}

/// The hub's link to the other hubs (through Redis) went down or came back.
/// While it is down the hub serves its own sockets; see
/// [`crate::HubConfig::redis_url`].
#[derive(Debug, Clone)]
pub struct ClusterEvent {
    /// This hub's node id in the cluster.
    pub node: String,
    /// Whether the link is up now.
    pub up: bool,
    /// What happened, for logs.
    pub detail: String,
}

/// A socket went over one of the hub's limits (see the README's
/// operations section): its events were dropped, or it was disconnected.
#[derive(Debug, Clone)]
pub struct LimitEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// Its name, if it logged in.
    pub name: Option<String>,
    /// Which limit: `events per second`, `bytes per second`, `queued
    /// events`, `slow consumer`.
    pub limit: String,
    /// Whether the socket was disconnected for it (else: events dropped).
    pub disconnected: bool,
}

/// What changed in a [`PresenceEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// The socket is now in `room` (or the lobby): it connected, came back
    /// with recovery, or moved there.
    Joined,
    /// The socket is no longer in `room` (or the lobby): it moved away or
    /// left, or its hub stopped answering.
    Left,
    /// The socket logged in (or again) under `name`, where it is.
    Renamed,
}

impl PresenceChange {
    /// `joined`, `left` or `renamed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceChange::Joined => "joined",
            PresenceChange::Left => "left",
            PresenceChange::Renamed => "renamed",
        }
    }
}

/// Who is where in the chat's namespaces, on this hub and every other hub
/// of the cluster: a socket joined or left a room or the lobby, or took a
/// name. With Redis, a hub that stops answering (killed, cut off) has its
/// members leave within a heartbeat timeout (3 s), and a hub that joins
/// the cluster hears of everyone already there (as `Joined`). A host can
/// keep an online list from these alone; [`Hub::rooms`](crate::Hub::rooms)
/// answers the same question at once, with each member's hub.
///
/// Presence events are a stream of their own: one socket's come in order,
/// but their order against the other kinds' events (a `Join` and the
/// `Left`/`Joined` pair it makes) is not fixed.
#[derive(Debug, Clone)]
pub struct PresenceEvent {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// Its name, if it logged in.
    pub name: Option<String>,
    /// The room (`None`: the lobby).
    pub room: Option<String>,
    /// What changed.
    pub change: PresenceChange,
    /// The hub the socket is on (its node id in the cluster), `None` for
    /// a hub without Redis.
    pub hub: Option<String>,
}

/// Something that happened in the hub.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HubEvent {
    /// See [`ConnectEvent`].
    Connect(ConnectEvent),
    /// See [`LoginEvent`].
    Login(LoginEvent),
    /// See [`JoinEvent`].
    Join(JoinEvent),
    /// See [`MessageEvent`].
    Message(MessageEvent),
    /// See [`CustomEvent`].
    Custom(CustomEvent),
    /// See [`RejectedEvent`].
    Rejected(RejectedEvent),
    /// See [`DisconnectEvent`].
    Disconnect(DisconnectEvent),
    /// See [`ClusterEvent`].
    Cluster(ClusterEvent),
    /// See [`LimitEvent`].
    Limit(LimitEvent),
    /// See [`PresenceEvent`].
    Presence(PresenceEvent),
}

impl HubEvent {
    /// The kind of this event.
    pub fn kind(&self) -> EventKinds {
        match self {
            HubEvent::Connect(_) => EventKinds::CONNECT,
            HubEvent::Login(_) => EventKinds::LOGIN,
            HubEvent::Join(_) => EventKinds::JOIN,
            HubEvent::Message(_) => EventKinds::MESSAGE,
            HubEvent::Custom(_) => EventKinds::CUSTOM,
            HubEvent::Rejected(_) => EventKinds::REJECTED,
            HubEvent::Disconnect(_) => EventKinds::DISCONNECT,
            HubEvent::Cluster(_) => EventKinds::CLUSTER,
            HubEvent::Limit(_) => EventKinds::LIMIT,
            HubEvent::Presence(_) => EventKinds::PRESENCE,
        }
    }

    /// The namespace the event happened in (empty for cluster events).
    pub fn ns(&self) -> &str {
        match self {
            HubEvent::Connect(e) => &e.ns,
            HubEvent::Login(e) => &e.ns,
            HubEvent::Join(e) => &e.ns,
            HubEvent::Message(e) => &e.ns,
            HubEvent::Custom(e) => &e.ns,
            HubEvent::Rejected(e) => &e.ns,
            HubEvent::Disconnect(e) => &e.ns,
            HubEvent::Limit(e) => &e.ns,
            HubEvent::Presence(e) => &e.ns,
            HubEvent::Cluster(_) => "",
        }
    }

    /// The socket the event is about (empty for cluster events).
    pub fn sid(&self) -> &str {
        match self {
            HubEvent::Connect(e) => &e.sid,
            HubEvent::Login(e) => &e.sid,
            HubEvent::Join(e) => &e.sid,
            HubEvent::Message(e) => &e.sid,
            HubEvent::Custom(e) => &e.sid,
            HubEvent::Rejected(e) => &e.sid,
            HubEvent::Disconnect(e) => &e.sid,
            HubEvent::Limit(e) => &e.sid,
            HubEvent::Presence(e) => &e.sid,
            HubEvent::Cluster(_) => "",
        }
    }
}

/// An ack's answer: values, or the JSON text of their array.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AckArgs<'a> {
    Values(&'a [Value]),
    /// A JSON array's text, checked to be one (no binary attachments).
    Json(&'a str),
}

type AckFn = Box<dyn FnOnce(AckArgs<'_>) -> Result<(), String> + Send>;

/// The acknowledgement a client asked for with a custom event.
///
/// Answer it once, from any thread, with [`Ack::send`]. Clones share it:
/// the first answer wins, later ones get [`AckError::AlreadySent`]. If
/// nobody answers, the client's ack callback is never called (as with
/// socket.io), and its own timeout, if any, fires.
#[derive(Clone)]
pub struct Ack {
    inner: Arc<Mutex<Option<AckFn>>>,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("sent", &self.is_sent())
            .finish()
    }
}

/// Why [`Ack::send`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// This acknowledgement was answered already; nothing was sent.
    #[error("this acknowledgement was already answered")]
    AlreadySent,
    /// The socket is gone or its queue is full; the answer was lost.
    #[error("the acknowledgement could not be sent: {0}")]
    Send(String),
}

impl Ack {
    pub(crate) fn new(f: impl FnOnce(AckArgs<'_>) -> Result<(), String> + Send + 'static) -> Ack {
        Ack {
            inner: Arc::new(Mutex::new(Some(Box::new(f)))),
        }
    }

    /// Sends the answer: each element of `args` is one argument of the
    /// client's callback.
    pub fn send(&self, args: &[Value]) -> Result<(), AckError> {
        self.answer(AckArgs::Values(args))
    }

    /// Sends the answer given as the JSON text of an array (`["ok",1]`),
    /// each element one argument of the client's callback: for hosts that
    /// hold their arguments as JSON already (the Node addon), so that they
    /// are not parsed into [`Value`]s and written out again. The text must
    /// be one JSON array; it is checked, not rewritten.
    pub fn send_json(&self, args: &str) -> Result<(), AckError> {
        let array = serde_json::from_str::<&serde_json::value::RawValue>(args)
            .ok()
            .map(|raw| raw.get().trim())
            .filter(|t| t.starts_with('['));
        let Some(array) = array else {
            return Err(AckError::Send(
                "the answer must be the JSON text of an array".into(),
            ));
        };
        self.answer(AckArgs::Json(array))
    }

    /// Sends the answer, once.
    fn answer(&self, args: AckArgs<'_>) -> Result<(), AckError> {
        let f = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(AckError::AlreadySent)?;
        f(args).map_err(AckError::Send)
    }

    /// Whether an answer was sent (or attempted) already.
    pub fn is_sent(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

/// A stream of [`HubEvent`]s for one host listener. Dropping it
/// unsubscribes. It ends (`None`) once the hub has shut down and the queued
/// events are read.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<HubEvent>,
    dropped: Arc<AtomicU64>,
    filter: Arc<RwLock<EventFilter>>,
    bus: std::sync::Weak<EventBus>,
}

impl Subscription {
    /// The next event, waiting for it; `None` once the hub is shut down.
    pub async fn recv(&mut self) -> Option<HubEvent> {
        self.rx.recv().await
    }

    /// The next event, blocking this thread; `None` once the hub is shut
    /// down. For threads outside any async runtime (it panics when called
    /// from async code, like tokio's `blocking_recv`).
    pub fn blocking_recv(&mut self) -> Option<HubEvent> {
        self.rx.blocking_recv()
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Result<HubEvent, TryRecvError> {
        self.rx.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Closed,
        })
    }

    /// How many events were dropped because this subscription's queue was
    /// full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Changes which events this subscription receives, from the next event
    /// on; what is queued stays. (One subscription whose filter changes
    /// keeps every event in order, where two subscriptions would not.)
    pub fn set_filter(&self, filter: EventFilter) {
        self.filter_handle().set(filter);
    }

    /// The filter in force.
    pub fn filter(&self) -> EventFilter {
        self.filter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A handle that changes this subscription's filter from elsewhere
    /// (another thread) while the subscription is being read.
    pub fn filter_handle(&self) -> FilterHandle {
        FilterHandle {
            filter: self.filter.clone(),
            bus: self.bus.clone(),
        }
    }
}

/// Changes a [`Subscription`]'s filter; see [`Subscription::filter_handle`].
#[derive(Debug, Clone)]
pub struct FilterHandle {
    filter: Arc<RwLock<EventFilter>>,
    bus: std::sync::Weak<EventBus>,
}

impl FilterHandle {
    /// Sets the filter, from the next event on.
    pub fn set(&self, filter: EventFilter) {
        *self.filter.write().unwrap_or_else(|e| e.into_inner()) = filter;
        if let Some(bus) = self.bus.upgrade() {
            let subs = bus.subs.read().unwrap_or_else(|e| e.into_inner());
            bus.recompute_mask(&subs);
        }
    }
}

/// Why [`Subscription::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// No event is queued now.
    #[error("no event is queued")]
    Empty,
    /// The hub has shut down and every queued event was read.
    #[error("the hub is shut down")]
    Closed,
}

/// The function a [`CallbackSubscription`] hands events to: false when it
/// could not take the event (counted as dropped).
type EventCallback = Box<dyn Fn(HubEvent) -> bool + Send + Sync>;

/// Where a subscriber's events go.
enum Sink {
    /// A bounded queue ([`Subscription`]).
    Queue(mpsc::Sender<HubEvent>),
    /// A function, called on the publishing thread; the flag is set once
    /// its [`CallbackSubscription`] is dropped.
    Callback(EventCallback, Arc<AtomicBool>),
}

struct Subscriber {
    filter: Arc<RwLock<EventFilter>>,
    sink: Sink,
    dropped: Arc<AtomicU64>,
}

impl Subscriber {
    fn filter(&self) -> std::sync::RwLockReadGuard<'_, EventFilter> {
        self.filter.read().unwrap_or_else(|e| e.into_inner())
    }

    fn is_closed(&self) -> bool {
        match &self.sink {
            Sink::Queue(tx) => tx.is_closed(),
            Sink::Callback(_, closed) => closed.load(Ordering::Acquire),
        }
    }
}

/// A subscription whose events are handed to a function as they happen
/// (see [`Hub::subscribe_callback`](crate::Hub::subscribe_callback)).
/// Dropping it unsubscribes; the hub's shutdown drops the function.
#[derive(Debug)]
pub struct CallbackSubscription {
    dropped: Arc<AtomicU64>,
    filter: Arc<RwLock<EventFilter>>,
    bus: std::sync::Weak<EventBus>,
    closed: Arc<AtomicBool>,
}

impl CallbackSubscription {
    /// How many events the function did not take (it returned false).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Changes which events the function gets, from the next event on.
    pub fn set_filter(&self, filter: EventFilter) {
        self.filter_handle().set(filter);
    }

    /// A handle that changes this subscription's filter from elsewhere.
    pub fn filter_handle(&self) -> FilterHandle {
        FilterHandle {
            filter: self.filter.clone(),
            bus: self.bus.clone(),
        }
    }
}

impl Drop for CallbackSubscription {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(bus) = self.bus.upgrade() {
            let mut subs = bus.subs.write().unwrap_or_else(|e| e.into_inner());
            subs.retain(|s| !s.is_closed());
            bus.recompute_mask(&subs);
        }
    }
}

/// The hub's side of the subscriptions.
pub(crate) struct EventBus {
    subs: RwLock<Vec<Subscriber>>,
    /// Union of the kinds every subscriber wants: one atomic load decides
    /// whether an event is built at all.
    mask: AtomicU32,
    capacity: usize,
    closed: std::sync::atomic::AtomicBool,
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> EventBus {
        EventBus {
            subs: RwLock::new(Vec::new()),
            mask: AtomicU32::new(0),
            capacity: capacity.max(1),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn subscribe(self: &Arc<Self>, filter: EventFilter) -> Option<Subscription> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let filter = Arc::new(RwLock::new(filter));
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        subs.push(Subscriber {
            filter: filter.clone(),
            sink: Sink::Queue(tx),
            dropped: dropped.clone(),
        });
        self.recompute_mask(&subs);
        Some(Subscription {
            rx,
            dropped,
            filter,
            bus: Arc::downgrade(self),
        })
    }

    pub(crate) fn subscribe_callback(
        self: &Arc<Self>,
        filter: EventFilter,
        callback: EventCallback,
    ) -> Option<CallbackSubscription> {
        let dropped = Arc::new(AtomicU64::new(0));
        let filter = Arc::new(RwLock::new(filter));
        let closed = Arc::new(AtomicBool::new(false));
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        subs.push(Subscriber {
            filter: filter.clone(),
            sink: Sink::Callback(callback, closed.clone()),
            dropped: dropped.clone(),
        });
        self.recompute_mask(&subs);
        Some(CallbackSubscription {
            dropped,
            filter,
            bus: Arc::downgrade(self),
            closed,
        })
    }

    fn recompute_mask(&self, subs: &[Subscriber]) {
        let mask = subs.iter().fold(0, |m, s| m | s.filter().kinds.bits());
        self.mask.store(mask, Ordering::Release);
    }

    /// Whether any subscriber wants this kind (cheap; call before building
    /// an event).
    pub(crate) fn wants(&self, kind: EventKinds) -> bool {
        self.mask.load(Ordering::Acquire) & kind.bits() != 0
    }

    /// Whether any subscriber wants custom events named `name`.
    pub(crate) fn wants_custom(&self, name: &str) -> bool {
        if !self.wants(EventKinds::CUSTOM) {
            return false;
        }
        let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
        subs.iter()
            .any(|s| s.filter().wants(EventKinds::CUSTOM, Some(name)) && !s.is_closed())
    }

    /// Hands `event` to every subscriber that wants it, never waiting.
    pub(crate) fn publish(&self, event: HubEvent) {
        let kind = event.kind();
        if !self.wants(kind) {
            return;
        }
        let custom_name = match &event {
            HubEvent::Custom(c) => Some(c.event.clone()),
            _ => None,
        };
        let mut any_closed = false;
        {
            let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
            let wanted: Vec<&Subscriber> = subs
                .iter()
                .filter(|s| s.filter().wants(kind, custom_name.as_deref()))
                .collect();
            let n = wanted.len();
            let mut event = Some(event);
            for (i, s) in wanted.into_iter().enumerate() {
                let ev = if i + 1 == n {
                    event.take().expect("the last subscriber takes the event")
                } else {
                    event
                        .clone()
                        .expect("the event is there until the last subscriber")
                };
                let taken = match &s.sink {
                    Sink::Queue(tx) => match tx.try_send(ev) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => false,
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            any_closed = true;
                            true
                        }
                    },
                    Sink::Callback(f, closed) => {
                        if closed.load(Ordering::Acquire) {
                            any_closed = true;
                            true
                        } else {
                            f(ev)
                        }
                    }
                };
                if !taken {
                    let n = s.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::warn!(
                            dropped = n,
                            "a host event subscriber is too slow; events dropped"
                        );
                    }
                }
            }
        }
        if any_closed {
            let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
            subs.retain(|s| !s.is_closed());
            self.recompute_mask(&subs);
        }
    }

    /// Ends every subscription (after its queued events) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        subs.clear();
        self.mask.store(0, Ordering::Release);
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("mask", &self.mask.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> HubEvent {
        HubEvent::Message(MessageEvent {
            ns: "/".into(),
            sid: "s".into(),
            name: None,
            room: None,
            text: text.into(),
        })
    }

    #[test]
    fn only_wanted_kinds_arrive() {
        let bus = Arc::new(EventBus::new(8));
        assert!(!bus.wants(EventKinds::MESSAGE));
        let mut sub = bus
            .subscribe(EventFilter::kinds(EventKinds::LOGIN))
            .unwrap();
        assert!(!bus.wants(EventKinds::MESSAGE));
        bus.publish(msg("x"));
        assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
        let mut all = bus.subscribe(EventFilter::all()).unwrap();
        bus.publish(msg("y"));
        assert!(matches!(all.try_recv(), Ok(HubEvent::Message(m)) if m.text == "y"));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let bus = Arc::new(EventBus::new(2));
        let mut sub = bus.subscribe(EventFilter::all()).unwrap();
        for i in 0..5 {
            bus.publish(msg(&i.to_string()));
        }
        assert_eq!(sub.dropped(), 3);
        assert!(matches!(sub.try_recv(), Ok(HubEvent::Message(m)) if m.text == "0"));
    }

    #[test]
    fn custom_names_filter() {
        let bus = Arc::new(EventBus::new(8));
        let _sub = bus.subscribe(EventFilter::custom(["ping"])).unwrap();
        assert!(bus.wants_custom("ping"));
        assert!(!bus.wants_custom("pong"));
    }

    #[test]
    fn a_filter_can_change_in_place() {
        let bus = Arc::new(EventBus::new(8));
        let mut sub = bus
            .subscribe(EventFilter::kinds(EventKinds::LOGIN))
            .unwrap();
        assert!(!bus.wants(EventKinds::MESSAGE));
        sub.set_filter(EventFilter::kinds(EventKinds::MESSAGE));
        assert!(bus.wants(EventKinds::MESSAGE));
        assert!(!bus.wants(EventKinds::LOGIN));
        bus.publish(msg("now"));
        assert!(matches!(sub.try_recv(), Ok(HubEvent::Message(m)) if m.text == "now"));
        assert_eq!(sub.filter().kinds, EventKinds::MESSAGE);
    }

    #[test]
    fn close_ends_subscriptions_after_queued_events() {
        let bus = Arc::new(EventBus::new(8));
        let mut sub = bus.subscribe(EventFilter::all()).unwrap();
        bus.publish(msg("last"));
        bus.close();
        assert!(sub.try_recv().is_ok());
        assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
        assert!(bus.subscribe(EventFilter::all()).is_none());
    }

    #[test]
    fn a_callback_gets_wanted_events_in_order_until_dropped() {
        let bus = Arc::new(EventBus::new(8));
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let sub = bus
            .subscribe_callback(
                EventFilter::kinds(EventKinds::MESSAGE),
                Box::new(move |e| match e {
                    HubEvent::Message(m) if m.text == "full" => false,
                    HubEvent::Message(m) => {
                        g.lock().unwrap().push(m.text);
                        true
                    }
                    _ => true,
                }),
            )
            .unwrap();
        assert!(bus.wants(EventKinds::MESSAGE));
        assert!(!bus.wants(EventKinds::LOGIN));
        for t in ["a", "b", "full", "c"] {
            bus.publish(msg(t));
        }
        assert_eq!(*got.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(sub.dropped(), 1, "a refused event counts as dropped");
        sub.set_filter(EventFilter::kinds(EventKinds::LOGIN));
        bus.publish(msg("filtered out"));
        sub.set_filter(EventFilter::all());
        drop(sub);
        assert!(!bus.wants(EventKinds::MESSAGE), "dropping unsubscribes");
        bus.publish(msg("after"));
        assert_eq!(got.lock().unwrap().len(), 3);
    }

    #[test]
    fn close_drops_callbacks_and_refuses_new_ones() {
        let bus = Arc::new(EventBus::new(8));
        let alive = Arc::new(());
        let held = alive.clone();
        let _sub = bus
            .subscribe_callback(
                EventFilter::all(),
                Box::new(move |_| {
                    let _ = &held;
                    true
                }),
            )
            .unwrap();
        assert_eq!(Arc::strong_count(&alive), 2);
        bus.close();
        assert_eq!(Arc::strong_count(&alive), 1, "the function is dropped");
        assert!(
            bus.subscribe_callback(EventFilter::all(), Box::new(|_| true))
                .is_none()
        );
    }

    #[test]
    fn ack_answers_once() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s2 = sent.clone();
        let ack = Ack::new(move |args| {
            match args {
                AckArgs::Values(v) => s2.lock().unwrap().extend_from_slice(v),
                AckArgs::Json(j) => s2.lock().unwrap().push(Value::from(j)),
            }
            Ok(())
        });
        let clone = ack.clone();
        ack.send(&[Value::from("ok")]).unwrap();
        assert_eq!(clone.send(&[]), Err(AckError::AlreadySent));
        assert_eq!(clone.send_json("[]"), Err(AckError::AlreadySent));
        assert_eq!(sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_ack_answered_as_json_takes_an_array_only() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s2 = sent.clone();
        let ack = Ack::new(move |args| {
            if let AckArgs::Json(j) = args {
                s2.lock().unwrap().push(j.to_owned());
            }
            Ok(())
        });
        for bad in ["", "{}", "\"a\"", "[1,", "[1] x", "null"] {
            assert!(
                matches!(ack.send_json(bad), Err(AckError::Send(_))),
                "{bad:?} refused"
            );
            assert!(!ack.is_sent(), "a refused answer leaves the ack to answer");
        }
        ack.send_json(" [\"ok\",{\"n\":1}] ").unwrap();
        assert_eq!(*sent.lock().unwrap(), vec!["[\"ok\",{\"n\":1}]".to_owned()]);
    }
}
