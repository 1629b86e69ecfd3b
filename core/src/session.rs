//! The chat on live sockets: socketioxide handlers that feed each socket's
//! events, in the order the socket sent them, through the rules of
//! [`crate::chat`].
//!
//! socketioxide calls a message handler from the socket's reader as each
//! packet is decoded, but its own handlers spawn a task per event, so two
//! events of one socket may run in either order. Ours do not: the handler
//! only appends the event to the socket's [`Session`] queue, and one task at
//! a time drains that queue. The task exists only while there is work;
//! an idle socket costs no task.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use socketioxide::adapter::Adapter;
use socketioxide::extract::AckSender;
use socketioxide::handler::{ConnectHandler, DisconnectHandler, FromMessageParts, MessageHandler};
use socketioxide::socket::{DisconnectReason, Sid, Socket};
use tokio::sync::{oneshot, watch};

use crate::chat::{self, ChatLimits, ChatState, Inbound, Move, Rejection, Scope};
use crate::error::ActionError;
use crate::events::{
    Ack, ConnectEvent, CustomEvent, DisconnectEvent, EventBus, EventKinds, HubEvent, JoinEvent,
    LoginEvent, MessageEvent, RejectedEvent, Transport,
};
use crate::hooks::{ConnectHook, ConnectRequest, LoginHook, LoginRequest};
use crate::value::{ArgList, Value};

/// The adapter room that holds every socket of a namespace that joined no
/// chat room. Room names from clients and hosts are trimmed, so none can
/// start with a space and collide with it.
pub(crate) const LOBBY: &str = " lobby";

/// The event every chat line travels in.
const SERVER_MESSAGE: &str = "serverMessage";

type SioValue = socketioxide::handler::Value;

/// Counters of what the hub refused or lost; see [`crate::HubStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) packets_dropped: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) flood_disconnects: AtomicU64,
    pub(crate) slow_disconnects: AtomicU64,
    pub(crate) connections_refused: Arc<AtomicU64>,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Hub-wide state shared by every namespace and socket.
pub(crate) struct Shared {
    pub(crate) limits: ChatLimits,
    pub(crate) flood: crate::config::FloodLimits,
    pub(crate) stats: Stats,
    /// Engine.IO session ids whose connection was cut for reading nothing
    /// (the sockets' leaves say `slow consumer`).
    pub(crate) slow_cut: Arc<crate::http::SlowCut>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) connect_hook: RwLock<Option<ConnectHook>>,
    pub(crate) login_hook: RwLock<Option<LoginHook>>,
    pub(crate) hook_timeout: Duration,
    /// Set when shutdown begins: new sockets are refused.
    pub(crate) closing: std::sync::atomic::AtomicBool,
    /// The link to the other hubs, when a Redis URL is configured.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The peer address of an HTTP connection, put in the request extensions
/// by the hub's HTTP layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// One chat namespace: its sessions, by socket id.
pub(crate) struct Namespace<A: Adapter> {
    pub(crate) path: String,
    pub(crate) shared: Arc<Shared>,
    sessions: Mutex<HashMap<Sid, Arc<Session<A>>>>,
    /// The number of sessions, watched by shutdown.
    count: watch::Sender<usize>,
}

impl<A: Adapter> fmt::Debug for Namespace<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<A: Adapter> Namespace<A> {
    pub(crate) fn new(path: String, shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Namespace {
            path,
            shared,
            sessions: Mutex::new(HashMap::new()),
            count: watch::channel(0).0,
        })
    }

    /// The connect handler to give socketioxide for this namespace.
    pub(crate) fn connect_handler(self: &Arc<Self>) -> ChatConnect<A> {
        ChatConnect { ns: self.clone() }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Arc<Session<A>>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, session: Arc<Session<A>>) {
        let mut map = self.sessions();
        map.insert(session.sid, session);
        self.count.send_replace(map.len());
    }

    /// Forgets a session. Shutdown waits on the count: call
    /// [`Namespace::announce_count`] once everything about the session was
    /// told.
    fn remove(&self, session: &Arc<Session<A>>) {
        let mut map = self.sessions();
        if map
            .get(&session.sid)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            map.remove(&session.sid);
        }
    }

    fn announce_count(&self) {
        let n = self.sessions().len();
        self.count.send_replace(n);
    }

    pub(crate) fn session(&self, sid: Sid) -> Option<Arc<Session<A>>> {
        self.sessions().get(&sid).cloned()
    }

    /// Every session's id and chat state, now.
    pub(crate) fn snapshot(&self) -> Vec<(Sid, ChatState)> {
        self.sessions()
            .values()
            .map(|s| (s.sid, s.state()))
            .collect()
    }

    /// Waits until no session is left.
    pub(crate) async fn wait_empty(&self) {
        let mut rx = self.count.subscribe();
        // `wait_for` only fails when the sender is gone, and `self` holds it.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions().len()
    }
}

/// What is queued for a socket.
enum Job<A: Adapter> {
    /// An event the client sent.
    Event {
        socket: Arc<Socket<A>>,
        data: SioValue,
        ack: Option<i64>,
    },
    /// The host moves the socket to a room or to the lobby.
    Move {
        socket: Arc<Socket<A>>,
        to: Scope,
        done: oneshot::Sender<()>,
    },
    /// The socket left; `defer` lets socketioxide finish removing it.
    Disconnect {
        socket: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    },
}

/// A socket's jobs, run in order by one task at a time.
struct Queue<J> {
    jobs: VecDeque<J>,
    /// Whether a task is draining `jobs`.
    running: bool,
    /// Set once the disconnect job is queued: nothing is accepted after it.
    closed: bool,
}

impl<J> Queue<J> {
    /// The next job to run. With none left, the queue is marked idle (the
    /// next push starts a task again) and gives its slots back: most
    /// sockets sit still between bursts, and a queue would otherwise keep
    /// the largest size it ever had for the socket's whole life.
    fn next(&mut self) -> Option<J> {
        let job = self.jobs.pop_front();
        if job.is_none() {
            self.running = false;
            self.jobs = VecDeque::new();
        }
        job
    }
}

/// One connected socket as the chat sees it.
pub(crate) struct Session<A: Adapter> {
    pub(crate) sid: Sid,
    /// The socket, for host actions (weak: the socket owns the session).
    socket: std::sync::Weak<Socket<A>>,
    sid_str: String,
    ns: Arc<Namespace<A>>,
    state: Mutex<ChatState>,
    queue: Mutex<Queue<Job<A>>>,
    /// Set once socketioxide confirmed the connection (`ConnectHandler::call`).
    confirmed: std::sync::atomic::AtomicBool,
    /// Turns true once the socket's leave was handled (notices sent).
    left: watch::Sender<bool>,
    /// Flood limits of this socket.
    limiter: Mutex<crate::limits::Limiter>,
    /// Why the hub ended the socket, when it did (`flood`, `server
    /// namespace disconnect`).
    ended_by: Mutex<Option<&'static str>>,
}

impl<A: Adapter> Session<A> {
    fn new(socket: &Arc<Socket<A>>, ns: Arc<Namespace<A>>) -> Arc<Self> {
        let sid = socket.id;
        let limiter = crate::limits::Limiter::new(&ns.shared.flood, std::time::Instant::now());
        Arc::new(Session {
            sid,
            socket: Arc::downgrade(socket),
            sid_str: sid.to_string(),
            state: Mutex::new(ChatState::default()),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: false,
                closed: false,
            }),
            confirmed: std::sync::atomic::AtomicBool::new(false),
            left: watch::channel(false).0,
            limiter: Mutex::new(limiter),
            ended_by: Mutex::new(None),
            ns,
        })
    }

    /// Resolves once the socket's leave was handled.
    pub(crate) fn left(&self) -> impl Future<Output = ()> + Send + use<A> {
        let mut rx = self.left.subscribe();
        async move {
            let _ = rx.wait_for(|l| *l).await;
        }
    }

    /// The socket, while it is alive.
    pub(crate) fn socket(&self) -> Option<Arc<Socket<A>>> {
        self.socket.upgrade()
    }

    pub(crate) fn state(&self) -> ChatState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue<Job<A>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job; starts the draining task if none is running. Returns
    /// the job back when the session is closed (or, for a client event,
    /// when its queue is full).
    fn push(self: &Arc<Self>, job: Job<A>) -> Result<(), Job<A>> {
        let mut q = self.lock_queue();
        if q.closed {
            return Err(job);
        }
        if matches!(job, Job::Event { .. })
            && q.jobs.len() >= self.ns.shared.flood.max_queued_events
        {
            return Err(job);
        }
        if matches!(job, Job::Disconnect { .. }) {
            q.closed = true;
        }
        q.jobs.push_back(job);
        if !q.running {
            q.running = true;
            drop(q);
            let this = self.clone();
            tokio::spawn(async move { this.drain().await });
        }
        Ok(())
    }

    /// Queues a host move behind the socket's own events; the receiver
    /// fires once it took effect.
    pub(crate) fn enqueue_move(
        self: &Arc<Self>,
        socket: Arc<Socket<A>>,
        to: Scope,
    ) -> Result<oneshot::Receiver<()>, ActionError> {
        let (done, wait) = oneshot::channel();
        self.push(Job::Move { socket, to, done })
            .map_err(|_| self.not_found())?;
        Ok(wait)
    }

    pub(crate) fn not_found(&self) -> ActionError {
        ActionError::SocketNotFound {
            ns: self.ns.path.clone(),
            sid: self.sid_str.clone(),
        }
    }

    async fn drain(self: Arc<Self>) {
        loop {
            let Some(job) = self.lock_queue().next() else {
                return;
            };
            // A panic in one job (a bug, or a host hook) must not stall the
            // socket's queue forever.
            if AssertUnwindSafe(self.run(job))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(sid = %self.sid, ns = %self.ns.path, "a chat job panicked; the socket goes on");
            }
        }
    }

    async fn run(&self, job: Job<A>) {
        match job {
            Job::Event { socket, data, ack } => self.on_event(&socket, data, ack).await,
            Job::Move { socket, to, done } => {
                self.move_to(&socket, to, true);
                let _ = done.send(());
            }
            Job::Disconnect {
                socket,
                reason,
                defer,
            } => self.on_disconnect(socket, reason, defer).await,
        }
    }

    fn events(&self) -> &EventBus {
        &self.ns.shared.events
    }

    async fn on_event(&self, socket: &Arc<Socket<A>>, data: SioValue, ack: Option<i64>) {
        let (text, bins) = match &data {
            SioValue::Str(text, bins) => (text.as_str(), bins),
            SioValue::Bytes(_) => return, // not produced by the JSON parser we use
        };
        let items = match chat::read_event(text) {
            Ok(items) => items,
            Err(e) => {
                // socketioxide read the event name already, so the rest is
                // what is broken (too deep, for one).
                tracing::debug!(sid = %self.sid, "unreadable event arguments");
                let error = e.to_string();
                self.reply(socket, &format!("Error: {error}"));
                self.answer(socket, ack, Err(&error));
                return;
            }
        };
        match chat::classify(&items, &self.ns.shared.limits) {
            Some(Inbound::Login(name)) => self.on_login(socket, name, ack).await,
            Some(Inbound::Join(room)) => self.on_join(socket, room, ack),
            Some(Inbound::Message(text)) => self.on_message(socket, text, ack).await,
            Some(Inbound::Custom { event, args }) => {
                self.on_custom(socket, event, args, bins.as_ref(), ack)
            }
            None => {}
        }
    }

    async fn on_login(
        &self,
        socket: &Arc<Socket<A>>,
        name: Result<String, Rejection>,
        ack: Option<i64>,
    ) {
        let name = match name {
            Ok(name) => name,
            Err(r) => return self.reject(socket, "login", r, ack),
        };
        let hook = self
            .ns
            .shared
            .login_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            let req = LoginRequest {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name: name.clone(),
                current: self.state().name,
            };
            if let Err(reason) = run_hook(hook(req), self.ns.shared.hook_timeout, "login").await {
                return self.reject(socket, "login", Rejection::LoginRefused(reason), ack);
            }
        }
        let (previous, scope) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let previous = st.name.replace(name.clone());
            (previous, st.scope())
        };
        self.reply(socket, &chat::logged_in_reply(&name));
        self.broadcast(socket, &scope, &chat::logged_in_notice(&name))
            .await;
        self.answer(socket, ack, Ok(()));
        if self.events().wants(EventKinds::LOGIN) {
            self.events().publish(HubEvent::Login(LoginEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name,
                previous,
                room: scope.room().map(str::to_owned),
            }));
        }
    }

    fn on_join(&self, socket: &Arc<Socket<A>>, room: Result<String, Rejection>, ack: Option<i64>) {
        let room = match room {
            Ok(room) => room,
            Err(r) => return self.reject(socket, "join", r, ack),
        };
        self.move_to(socket, Scope::Room(room), false);
        self.reply(socket, chat::JOINED_REPLY);
        self.answer(socket, ack, Ok(()));
    }

    /// Moves the socket between rooms and the lobby, in the adapter and in
    /// its chat state, and tells the host.
    fn move_to(&self, socket: &Arc<Socket<A>>, to: Scope, by_host: bool) {
        let (mv, name) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (st.move_to(to), st.name.clone())
        };
        let Move { from, to } = &mv;
        match from {
            Scope::Room(r) => socket.leave(r.clone()),
            Scope::Lobby => socket.leave(LOBBY),
        }
        match to {
            Scope::Room(r) => socket.join(r.clone()),
            Scope::Lobby => socket.join(LOBBY),
        }
        if self.events().wants(EventKinds::JOIN) {
            self.events().publish(HubEvent::Join(JoinEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name,
                from: from.room().map(str::to_owned),
                to: to.room().map(str::to_owned),
                by_host,
            }));
        }
    }

    async fn on_message(
        &self,
        socket: &Arc<Socket<A>>,
        text: Result<&str, Rejection>,
        ack: Option<i64>,
    ) {
        let text = match text {
            Ok(text) => text,
            Err(r) => return self.reject(socket, "clientMessage", r, ack),
        };
        let st = self.state();
        let scope = st.scope();
        self.reply(socket, &chat::said_reply(text));
        self.broadcast(
            socket,
            &scope,
            &chat::said_notice(st.display_name(&self.sid_str), text),
        )
        .await;
        self.answer(socket, ack, Ok(()));
        if self.events().wants(EventKinds::MESSAGE) {
            self.events().publish(HubEvent::Message(MessageEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name: st.name,
                room: st.room,
                text: text.to_owned(),
            }));
        }
    }

    fn on_custom(
        &self,
        socket: &Arc<Socket<A>>,
        event: &str,
        args: &[serde_json::Value],
        bins: Option<&VecDeque<Bytes>>,
        ack: Option<i64>,
    ) {
        if !self.events().wants_custom(event) {
            tracing::debug!(sid = %self.sid, event, "custom event with no host listener");
            return;
        }
        let bins: Vec<Bytes> = bins
            .map(|b| b.iter().cloned().collect())
            .unwrap_or_default();
        let args = match args
            .iter()
            .map(|a| Value::from_json_with_placeholders(a.clone(), &bins))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(args) => args,
            Err(e) => {
                tracing::debug!(sid = %self.sid, event, "bad binary placeholder: {e}");
                self.answer(
                    socket,
                    ack,
                    Err("the event's binary attachments do not match"),
                );
                return;
            }
        };
        let ack = ack.map(|id| {
            let sender = ack_sender(socket, id);
            Ack::new(move |args: &[Value]| sender.send(&ArgList(args)).map_err(|e| e.to_string()))
        });
        self.events().publish(HubEvent::Custom(CustomEvent {
            ns: self.ns.path.clone(),
            sid: self.sid_str.clone(),
            name: self.state().name,
            event: event.to_owned(),
            args,
            ack,
        }));
    }

    /// Disconnects the socket from the hub's side (a host's disconnect, the
    /// hub's shutdown). Its leave says so even when the client, told by the
    /// DISCONNECT packet, closes its transport before socketioxide has
    /// closed the socket (socketioxide sends the packet, then closes: on
    /// another thread the client's close can come in between, and the
    /// leave would say `transport close`).
    pub(crate) fn end(&self, socket: Arc<Socket<A>>) -> Result<(), socketioxide::SocketError> {
        let by = reason_text(DisconnectReason::ServerNSDisconnect);
        // A reason already there (`flood`) stays.
        let set = {
            let mut ended_by = self.ended_by.lock().unwrap_or_else(|e| e.into_inner());
            let unset = ended_by.is_none();
            if unset {
                *ended_by = Some(by);
            }
            unset
        };
        let result = socket.disconnect();
        if result.is_err() && set {
            // Not disconnected after all: whatever ends it later says why.
            *self.ended_by.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        result
    }

    async fn on_disconnect(
        &self,
        socket: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        let shared = &self.ns.shared;
        let slow = shared.slow_cut.contains(&self.sid_str);
        let reason_text = match *self.ended_by.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(by) => by,
            None if slow => {
                Stats::add(&shared.stats.slow_disconnects, 1);
                self.limit_event("slow consumer", true);
                "slow consumer"
            }
            None => reason_text(reason),
        };
        let st = self.state();
        let scope = st.scope();
        self.broadcast(
            &socket,
            &scope,
            &chat::disconnected_notice(st.display_name(&self.sid_str)),
        )
        .await;
        // Take the session out of the registry before socketioxide forgets
        // the socket, so that a listing never shows a socket it cannot reach.
        if let Some(me) = self.ns.session(self.sid) {
            self.ns.remove(&me);
        }
        defer(socket);
        if self.events().wants(EventKinds::DISCONNECT) {
            self.events().publish(HubEvent::Disconnect(DisconnectEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name: st.name,
                room: st.room,
                reason: reason_text.to_owned(),
            }));
        }
        self.left.send_replace(true);
        // Last: shutdown may close the event bus as soon as this is seen.
        self.ns.announce_count();
    }

    /// Refuses chat input: `Error: …` to the sender, the ack, the host.
    fn reject(&self, socket: &Arc<Socket<A>>, event: &str, r: Rejection, ack: Option<i64>) {
        let error = r.to_string();
        self.reply(socket, &chat::error_line(&r));
        self.answer(socket, ack, Err(&error));
        if self.events().wants(EventKinds::REJECTED) {
            self.events().publish(HubEvent::Rejected(RejectedEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                event: event.to_owned(),
                error,
            }));
        }
    }

    /// A `serverMessage` line to the socket itself.
    fn reply(&self, socket: &Arc<Socket<A>>, line: &str) {
        if let Err(e) = socket.emit(SERVER_MESSAGE, line) {
            if is_full(&e) {
                Stats::add(&self.ns.shared.stats.packets_dropped, 1);
            }
            tracing::debug!(sid = %self.sid, "cannot send to the socket: {e}");
        }
    }

    /// Tells the host that this socket went over a limit.
    fn limit_event(&self, limit: &str, disconnected: bool) {
        let events = &self.ns.shared.events;
        if events.wants(EventKinds::LIMIT) {
            events.publish(HubEvent::Limit(crate::events::LimitEvent {
                ns: self.ns.path.clone(),
                sid: self.sid_str.clone(),
                name: self.state().name,
                limit: limit.to_owned(),
                disconnected,
            }));
        }
    }

    /// Applies the flood limits to an incoming event; false: drop it.
    fn admit(&self, socket: &Arc<Socket<A>>, data: &SioValue) -> bool {
        let size = match data {
            SioValue::Str(text, bins) => {
                text.len() + bins.as_ref().map_or(0, |b| b.iter().map(Bytes::len).sum())
            }
            SioValue::Bytes(b) => b.len(),
        };
        let verdict = {
            let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            if limiter.is_off() {
                return true;
            }
            limiter.admit(std::time::Instant::now(), size)
        };
        self.apply(socket, verdict)
    }

    /// Counts an event dropped because the socket's queue is full.
    fn queue_full(&self, socket: &Arc<Socket<A>>) {
        let verdict = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .strike(std::time::Instant::now(), "queued events");
        self.apply(socket, verdict);
    }

    fn apply(&self, socket: &Arc<Socket<A>>, verdict: crate::limits::Admit) -> bool {
        use crate::limits::Admit;
        let stats = &self.ns.shared.stats;
        match verdict {
            Admit::Yes => true,
            Admit::Drop { warn, limit } => {
                Stats::add(&stats.events_dropped, 1);
                if warn {
                    self.reply(socket, &format!("Error: too many {limit}, slow down"));
                    self.limit_event(limit, false);
                }
                false
            }
            Admit::Disconnect { limit } => {
                Stats::add(&stats.events_dropped, 1);
                let first = self
                    .ended_by
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace("flood")
                    .is_none();
                if first {
                    Stats::add(&stats.flood_disconnects, 1);
                    tracing::info!(sid = %self.sid, ns = %self.ns.path, limit, "disconnecting a flooding socket");
                    self.reply(socket, &format!("Error: too many {limit}, disconnected"));
                    self.limit_event(limit, true);
                    if let Err(e) = socket.clone().disconnect() {
                        tracing::debug!(sid = %self.sid, "cannot disconnect a flooding socket: {e}");
                    }
                }
                false
            }
        }
    }

    /// A `serverMessage` line to the others where the socket is: on this
    /// node first, then (with Redis) on the others.
    async fn broadcast(&self, socket: &Arc<Socket<A>>, scope: &Scope, line: &str) {
        let room = match scope {
            Scope::Room(r) => r.clone(),
            Scope::Lobby => LOBBY.to_owned(),
        };
        match socket.broadcast().to(room).emit(SERVER_MESSAGE, line).await {
            Ok(()) => {}
            Err(socketioxide::BroadcastError::Socket(errors)) => {
                // Sockets whose queue is full (slow readers) miss the line;
                // closed ones are leaving anyway.
                let full = errors
                    .iter()
                    .filter(|e| matches!(e, socketioxide::SocketError::InternalChannelFull))
                    .count();
                Stats::add(&self.ns.shared.stats.packets_dropped, full as u64);
            }
            Err(e) => tracing::warn!(sid = %self.sid, ns = %self.ns.path, "broadcast failed: {e}"),
        }
        if let Some(cluster) = self.ns.shared.cluster.get() {
            let to = match scope {
                Scope::Room(r) => crate::cluster::WireTarget::Room(r.clone()),
                Scope::Lobby => crate::cluster::WireTarget::Lobby,
            };
            cluster.emit(&self.ns.path, to, SERVER_MESSAGE, &[Value::from(line)]);
        }
    }

    /// Answers the client's ack, if it asked for one, with `{ok}` or
    /// `{ok: false, error}`.
    fn answer(&self, socket: &Arc<Socket<A>>, ack: Option<i64>, result: Result<(), &str>) {
        let Some(id) = ack else { return };
        let body = match result {
            Ok(()) => serde_json::json!({ "ok": true }),
            Err(error) => serde_json::json!({ "ok": false, "error": error }),
        };
        if let Err(e) = ack_sender(socket, id).send(&body) {
            if is_full(&e) {
                Stats::add(&self.ns.shared.stats.packets_dropped, 1);
            }
            tracing::debug!(sid = %self.sid, "cannot send the ack: {e}");
        }
    }
}

/// Whether a send failed because the socket's queue is full.
fn is_full(e: &socketioxide::SendError) -> bool {
    matches!(
        e,
        socketioxide::SendError::Socket(socketioxide::SocketError::InternalChannelFull)
    )
}

fn ack_sender<A: Adapter>(socket: &Arc<Socket<A>>, id: i64) -> AckSender<A> {
    let mut unused = SioValue::Str(Default::default(), None);
    match AckSender::from_message_parts(socket, &mut unused, &Some(id)) {
        Ok(sender) => sender,
        Err(never) => match never {},
    }
}

/// Socket.IO's own words for why a socket left.
pub(crate) fn reason_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError => "multiple polling requests",
        DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

/// Runs a host hook with the timeout, turning a panic or a timeout into a
/// refusal.
async fn run_hook(
    fut: crate::hooks::HookFuture,
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => {
            tracing::error!("the {what} hook panicked; refusing");
            Err(format!("the {what} hook failed"))
        }
        Err(_) => {
            tracing::warn!("the {what} hook took longer than {timeout:?}; refusing");
            Err(format!("the {what} hook timed out"))
        }
    }
}

/// Parses a Socket.IO `auth` (or other) payload into a [`Value`];
/// `{}` when absent or unreadable.
fn parse_payload(v: Option<&SioValue>) -> Value {
    let Some(SioValue::Str(text, bins)) = v else {
        return Value::Object(Default::default());
    };
    let bins: Vec<Bytes> = bins
        .as_ref()
        .map(|b| b.iter().cloned().collect())
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(text.as_str())
        .ok()
        .and_then(|j| Value::from_json_with_placeholders(j, &bins).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

fn remote_addr<A: Adapter>(socket: &Socket<A>) -> Option<SocketAddr> {
    socket
        .req_parts()
        .extensions
        .get::<RemoteAddr>()
        .map(|r| r.0)
}

/// Marks our handler impls apart from socketioxide's closure impls.
#[derive(Debug)]
pub(crate) struct ChatMarker;

/// The namespace connect handler: runs the connect hook (as socketioxide
/// middleware), then sets the socket up for the chat.
pub(crate) struct ChatConnect<A: Adapter> {
    ns: Arc<Namespace<A>>,
}

impl<A: Adapter> Clone for ChatConnect<A> {
    fn clone(&self) -> Self {
        ChatConnect {
            ns: self.ns.clone(),
        }
    }
}

type MiddlewareFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), Box<dyn fmt::Display + Send>>> + Send + 'a>>;

impl<A: Adapter> ConnectHandler<A, ChatMarker> for ChatConnect<A> {
    fn call_middleware<'a>(
        &'a self,
        socket: Arc<Socket<A>>,
        auth: &'a Option<SioValue>,
    ) -> MiddlewareFuture<'a> {
        Box::pin(async move {
            if self
                .ns
                .shared
                .closing
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return Err(Box::new("the server is shutting down") as Box<dyn fmt::Display + Send>);
            }
            let hook = self
                .ns
                .shared
                .connect_hook
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(hook) = hook {
                let req = ConnectRequest {
                    ns: self.ns.path.clone(),
                    sid: socket.id.to_string(),
                    auth: parse_payload(auth.as_ref()),
                    remote_addr: remote_addr(&socket),
                };
                if let Err(reason) =
                    run_hook(hook(req), self.ns.shared.hook_timeout, "connect").await
                {
                    return Err(Box::new(reason) as Box<dyn fmt::Display + Send>);
                }
            }
            // The connection this socket came on knows its session id now
            // (for the slow-consumer cut).
            if let Some(conn) = socket
                .req_parts()
                .extensions
                .get::<crate::http::ConnHandle>()
            {
                conn.set_engine_sid(&socket.id.to_string());
            }
            // Set up before socketioxide sends CONNECT, so that no event the
            // client sends after it can find the socket without handlers.
            let session = Session::new(&socket, self.ns.clone());
            socket.on_fallback(ChatEvents {
                session: session.clone(),
            });
            socket.on_disconnect(ChatLeave {
                session: session.clone(),
            });
            self.ns.insert(session);
            Ok(())
        })
    }

    fn call(&self, socket: Arc<Socket<A>>, auth: Option<SioValue>) {
        let Some(session) = self.ns.session(socket.id) else {
            return;
        };
        session
            .confirmed
            .store(true, std::sync::atomic::Ordering::Release);
        // The chapter's prompt, "please tell me your name", first of all.
        if let Err(e) = socket.emit("login", &ArgList(&[])) {
            tracing::debug!(sid = %socket.id, "cannot send the login prompt: {e}");
        }
        // Into the lobby only now that CONNECT and the prompt are sent: no
        // lobby line may reach a client before them. (Its own events may
        // have moved it to a room already: then it stays there.)
        if session.state().room.is_none() {
            socket.join(LOBBY);
        }
        if self.ns.shared.events.wants(EventKinds::CONNECT) {
            let transport = match socket.transport_type() {
                socketioxide::TransportType::Polling => Transport::Polling,
                socketioxide::TransportType::Websocket => Transport::Websocket,
            };
            self.ns
                .shared
                .events
                .publish(HubEvent::Connect(ConnectEvent {
                    ns: self.ns.path.clone(),
                    sid: session.sid_str.clone(),
                    auth: parse_payload(auth.as_ref()),
                    remote_addr: remote_addr(&socket),
                    transport,
                }));
        }
    }
}

/// The socket's message handler: queues every event in arrival order.
struct ChatEvents<A: Adapter> {
    session: Arc<Session<A>>,
}

impl<A: Adapter> MessageHandler<A, ChatMarker> for ChatEvents<A> {
    fn call(&self, socket: Arc<Socket<A>>, data: SioValue, ack: Option<i64>) {
        // Limits first, here in the socket's reader: a flood never reaches
        // the queue.
        if !self.session.admit(&socket, &data) {
            return;
        }
        if let Err(Job::Event { socket, .. }) = self.session.push(Job::Event { socket, data, ack })
        {
            if self.session.lock_queue().closed {
                tracing::debug!(sid = %self.session.sid, "event after disconnect, dropped");
            } else {
                self.session.queue_full(&socket);
            }
        }
    }
}

impl<A: Adapter> Drop for ChatEvents<A> {
    fn drop(&mut self) {
        // socketioxide refused the socket after our middleware ran (its
        // CONNECT could not be sent): no disconnect will come, so forget it.
        if !self
            .session
            .confirmed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.session.ns.remove(&self.session);
            self.session.ns.announce_count();
        }
    }
}

/// The socket's disconnect handler: queues the leave behind its events.
struct ChatLeave<A: Adapter> {
    session: Arc<Session<A>>,
}

impl<A: Adapter> DisconnectHandler<A, ChatMarker> for ChatLeave<A> {
    fn call_with_defer(
        &self,
        socket: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        if let Err(Job::Disconnect { socket, defer, .. }) = self.session.push(Job::Disconnect {
            socket,
            reason,
            defer,
        }) {
            defer(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_queue_goes_idle_and_gives_its_slots_back() {
        let mut q = Queue {
            jobs: VecDeque::new(),
            running: true,
            closed: false,
        };
        q.jobs.extend(1..=20);
        assert!(q.jobs.capacity() >= 20);
        for want in 1..=20 {
            assert_eq!(q.next(), Some(want));
            assert!(q.running, "still jobs to run");
        }
        assert_eq!(q.next(), None);
        assert!(!q.running, "the next push starts a task");
        assert_eq!(q.jobs.capacity(), 0, "no slots kept while idle");
    }
}
