//! [`Hub`]: a running chat hub on its own runtime, and the host's handle
//! on it.
//!
//! Owns: the runtime, start and shutdown, the host's actions (checked here,
//! done by [`actions`]) and what every namespace shares ([`shared`]). The
//! chat's rules are the chat module's; packets and transports are the
//! Socket.IO layer's and the engine's.

pub(crate) mod actions;
pub(crate) mod host_ns;
mod report;
pub(crate) mod shared;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::assets::Assets;
use crate::chat;
use crate::config::HubConfig;
use crate::engine::{CloseReason, Engine, EngineConfig};
use crate::error::{ActionError, ListenError, StartError};
use crate::events::{EventFilter, Subscription};
use crate::hooks::{ConnectHook, LoginHook};
use crate::net::tls::{Pem, Tls, TlsError};
use crate::net::{Access, Connections, HubService, RemoteAddr, until_stopped};
use crate::socketio::{Namespace, Sio};
use crate::value::Value;
use actions::{Core, NamespaceListing, Target};
use shared::Shared;

/// What the hub refused or lost so far (counters since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct HubStats {
    /// Sockets connected now (to this hub).
    pub sockets: usize,
    /// Packets not sent because a socket's queue was full (a slow reader).
    pub packets_dropped: u64,
    /// Client events dropped for the flood limits.
    pub events_dropped: u64,
    /// Sockets disconnected for flooding.
    pub flood_disconnects: u64,
    /// Sockets whose connection was cut for reading nothing.
    pub slow_consumer_disconnects: u64,
    /// Connections refused by the per-IP limit.
    pub connections_refused: u64,
    /// Messages for the other hubs lost while Redis was unavailable.
    pub cluster_messages_lost: u64,
    /// Tasks alive on the hub's runtime now (a leak shows here). With no
    /// connection open this is the hub's own serving tasks, and all of them
    /// exist by the time [`Hub::start`] returns.
    pub tasks: usize,
    /// Sockets that came back with connection state recovery.
    pub recovered: u64,
    /// Clients that asked to recover a session and started fresh (session
    /// unknown, expired or used, or what they missed no longer kept).
    pub recovery_misses: u64,
    /// Broadcasts kept for recovery now, over all namespaces.
    pub recovery_packets: usize,
    /// Bytes of those broadcasts.
    pub recovery_bytes: usize,
    /// Dropped sockets kept for recovery now.
    pub recovery_sessions: usize,
    /// Engine.IO connections open now on long-polling (not upgraded).
    pub connections_polling: u64,
    /// Engine.IO connections open now on a WebSocket.
    pub connections_websocket: u64,
    /// Socket.IO packets received from clients (connects, disconnects,
    /// events, acks).
    pub packets_received: u64,
    /// Of those, events (the chat's lines, logins, joins; host events).
    pub events_received: u64,
    /// Socket.IO packets queued for clients: one per socket a broadcast
    /// reached, plus those sent to one socket.
    pub packets_sent: u64,
    /// Broadcasts delivered on this hub (one per line, however many
    /// sockets got it).
    pub broadcasts: u64,
    /// Bytes read from clients (WebSocket frames, long-polling bodies).
    pub bytes_received: u64,
    /// Bytes written to clients (WebSocket frames, long-polling bodies).
    pub bytes_sent: u64,
    /// Connections cut for a packet or body over `max_payload`.
    pub payload_disconnects: u64,
    /// Requests refused for their `Origin` (see `cors_origins`).
    pub origin_refusals: u64,
    /// Commands sent to Redis (publishes, stream appends, sessions).
    pub cluster_published: u64,
    /// Pub/sub messages received from Redis (heartbeats included).
    pub cluster_received: u64,
    /// How long Redis has been away, in milliseconds (0 while it is up,
    /// or without Redis).
    pub cluster_down_ms: u64,
}

static NEXT_HUB_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the hub whose runtime owns this thread (0: none).
    static CURRENT_HUB: Cell<u64> = const { Cell::new(0) };
}

/// A running chat hub.
///
/// [`Hub::start`] starts it on its own multi-thread tokio runtime, on
/// threads of its own, so any host can run one: a plain `main`, a C
/// program, a Node addon, or a Rust program that is itself inside tokio.
/// The handle is cheap to clone and can be used from any thread.
///
/// Stop it with [`Hub::shutdown`] (or [`Hub::shutdown_async`]). Dropping
/// the last handle also stops the hub, in the background.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("id", &self.inner.id)
            .field("local_addr", &self.local_addr())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

struct HubInner {
    id: u64,
    namespaces: Vec<String>,
    host_namespaces: Vec<String>,
    limits: chat::ChatLimits,
    /// The first address the hub listens on (set at start or by `listen`).
    local_addr: Mutex<Option<SocketAddr>>,
    /// Where the metrics listener listens, when there is one.
    metrics_addr: Option<SocketAddr>,
    /// Where the client bundle is served from.
    client_bundle: Option<std::path::PathBuf>,
    handle: tokio::runtime::Handle,
    /// Tells accept loops (of `listen`) to stop.
    http_stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
    service: HubService,
    connections: Connections,
    core: Arc<Core>,
    /// TLS on the hub's listeners, when configured.
    tls: Option<Arc<Tls>>,
    /// Set by the first shutdown request; actions are refused after it.
    closing: AtomicBool,
    stop: watch::Sender<bool>,
    stopped: Arc<Stopped>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for HubInner {
    fn drop(&mut self) {
        // The last handle is gone: stop in the background (this may run in
        // async code, so it must not wait).
        self.closing.store(true, Ordering::Release);
        self.stop.send_replace(true);
    }
}

/// Set when the hub's thread has finished.
#[derive(Default)]
struct Stopped {
    done: Mutex<bool>,
    cv: Condvar,
    notify: RwLock<Option<watch::Sender<bool>>>,
}

impl Stopped {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
        if let Some(tx) = self
            .notify
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            tx.send_replace(true);
        }
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What the runtime thread hands back once the hub is up.
struct Ready {
    handle: tokio::runtime::Handle,
    http_stop: watch::Receiver<bool>,
    service: HubService,
    connections: Connections,
    core: Arc<Core>,
}

impl Hub {
    /// Starts a hub: checks the config, binds the listener (if any), starts
    /// the runtime and the chat on every namespace. Returns once the hub
    /// accepts connections.
    ///
    /// Blocks the calling thread for that short while; it is safe to call
    /// from async code (the runtime is a separate one, on its own threads).
    pub fn start(config: HubConfig) -> Result<Hub, StartError> {
        config.validate()?;
        let assets = Assets::load(&config)?;
        let client_bundle = assets.bundle_dir.clone();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                Tls::new(cert.clone(), key.clone()).map_err(StartError::Tls)?,
            )),
            _ => None,
        };
        let listener = match config.bind {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .map_err(|source| StartError::Bind { addr, source })?;
                l.set_nonblocking(true)
                    .map_err(|source| StartError::Bind { addr, source })?;
                Some(l)
            }
            None => None,
        };
        let local_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(StartError::Runtime)?),
            None => None,
        };
        let metrics_listener = match config.metrics_bind {
            Some(addr) => {
                let bind_err = |source| StartError::Bind { addr, source };
                let l = std::net::TcpListener::bind(addr).map_err(bind_err)?;
                l.set_nonblocking(true).map_err(bind_err)?;
                let bound = l.local_addr().map_err(bind_err)?;
                Some((l, bound))
            }
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(|(_, a)| *a);
        let id = NEXT_HUB_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::new(&config));

        let mut rt = tokio::runtime::Builder::new_multi_thread();
        rt.enable_all()
            .thread_name(format!("chathub-{id}"))
            .on_thread_start(move || CURRENT_HUB.with(|c| c.set(id)));
        if let Some(n) = config.worker_threads {
            rt.worker_threads(n);
        }
        let runtime = rt.build().map_err(StartError::Runtime)?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = Arc::new(Stopped::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Ready, StartError>>();
        let thread_stopped = stopped.clone();
        let thread_shared = shared.clone();
        let thread_tls = tls.clone();
        let shutdown_timeout = config.shutdown_timeout;
        let namespaces = config.namespaces.clone();
        let host_namespaces = config.host_namespaces.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chathub-{id}-main"))
            .spawn(move || {
                CURRENT_HUB.with(|c| c.set(id));
                let deadline = runtime.block_on(run(
                    config,
                    assets,
                    listener.map(|l| (l, thread_tls)),
                    metrics_listener.map(|(l, _)| l),
                    thread_shared,
                    stop_rx,
                    ready_tx,
                ));
                // Tasks still running past the deadline are dropped here.
                let left = deadline
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or(shutdown_timeout)
                    .max(Duration::from_millis(100));
                runtime.shutdown_timeout(left);
                thread_stopped.set();
            })
            .map_err(StartError::Runtime)?;

        let ready = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                // The runtime thread ended before the hub was up: it panicked.
                let _ = thread.join();
                return Err(StartError::Runtime(std::io::Error::other(
                    "the hub's runtime thread stopped during start",
                )));
            }
        };
        if let Some(addr) = local_addr {
            tracing::info!(%addr, "chathub listening");
        }
        if let Some(addr) = metrics_addr {
            tracing::info!(%addr, "chathub metrics listening");
        }
        Ok(Hub {
            inner: Arc::new(HubInner {
                id,
                namespaces,
                host_namespaces,
                limits: shared.limits,
                local_addr: Mutex::new(local_addr),
                metrics_addr,
                client_bundle,
                handle: ready.handle,
                http_stop: ready.http_stop,
                shared,
                service: ready.service,
                connections: ready.connections,
                core: ready.core,
                tls,
                closing: AtomicBool::new(false),
                stop: stop_tx,
                stopped,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// A number that tells this hub from the others in the process; its
    /// threads are named `chathub-ID…`.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The folder the Socket.IO client bundle (`/socket.io/socket.io.js`)
    /// is served from; `None` when none was found at start (then it answers
    /// 404: see [`HubConfig::client_dist`]).
    pub fn client_bundle(&self) -> Option<&std::path::Path> {
        self.inner.client_bundle.as_deref()
    }

    /// Where the hub listens (`None` without a listener of its own).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self
            .inner
            .local_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Starts listening on one more address (for a hub started with
    /// `bind: None`, say) and returns the address bound (port 0 picks a
    /// free port). Connections are served as on the hub's own listener;
    /// shutdown closes it.
    pub fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, ListenError> {
        if self.is_closed() {
            return Err(ListenError::Closed);
        }
        let bind_err = |source: std::io::Error| ListenError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        let listener = {
            let _guard = self.inner.handle.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_err)?
        };
        self.inner.handle.spawn(accept_loop(
            listener,
            self.inner.tls.clone(),
            self.inner.connections.clone(),
            self.inner.service.clone(),
            self.inner.http_stop.clone(),
        ));
        self.inner
            .local_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(bound);
        tracing::info!(addr = %bound, "chathub listening");
        Ok(bound)
    }

    /// Reads the TLS certificate and key again from their files (a renewed
    /// certificate, say; the examples call this on `SIGHUP`). New
    /// handshakes get the new pair; open connections keep theirs. On an
    /// error (unreadable file, a key that does not match) the hub keeps
    /// serving the pair it had.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.inner
            .tls
            .as_ref()
            .ok_or(TlsError::NotConfigured)?
            .reload(None)
    }

    /// Serves a new TLS certificate chain and key (files or PEM bytes) to
    /// new handshakes, from now on and on later [`reload_tls`](Self::reload_tls)
    /// calls. On an error the hub keeps serving the pair it had.
    pub fn set_tls(&self, cert: Pem, key: Pem) -> Result<(), TlsError> {
        self.inner
            .tls
            .as_ref()
            .ok_or(TlsError::NotConfigured)?
            .reload(Some((cert, key)))
    }

    /// Whether the hub's listeners speak TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    /// Runs `task` on the hub's runtime (for hosts that have no runtime of
    /// their own and need to await the hub's async actions). Accepted until
    /// shutdown stops serving HTTP; the task is dropped when the hub stops.
    pub fn spawn<F>(&self, task: F) -> Result<(), ActionError>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.check_serving()?;
        self.inner.handle.spawn(task);
        Ok(())
    }

    /// The namespaces the chat runs on.
    pub fn namespaces(&self) -> &[String] {
        &self.inner.namespaces
    }

    /// The namespaces the host owns (no chat rules there).
    pub fn host_namespaces(&self) -> &[String] {
        &self.inner.host_namespaces
    }

    /// This hub's node id in its Redis cluster (`None` without Redis).
    pub fn cluster_node(&self) -> Option<String> {
        self.inner.shared.cluster.get().map(|c| c.node().to_owned())
    }

    /// Whether shutdown was asked for.
    pub fn is_closed(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }

    /// The hub's counters: what it serves, refused or lost.
    pub fn stats(&self) -> HubStats {
        let tasks = self.inner.handle.metrics().num_alive_tasks();
        self.inner.core.stats(tasks)
    }

    /// The hub's figures as Prometheus text (exposition format 0.0.4),
    /// what `GET` [`HubConfig::metrics_path`] answers: for a host that
    /// serves them on a route of its own.
    pub fn metrics_text(&self) -> String {
        let tasks = self.inner.handle.metrics().num_alive_tasks();
        self.inner.core.metrics_text(tasks, &self.inner.namespaces)
    }

    /// Where the metrics listener ([`HubConfig::metrics_bind`]) listens.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.inner.metrics_addr
    }

    /// How many sockets are connected now, over all namespaces.
    pub fn socket_count(&self) -> usize {
        self.inner.core.socket_count()
    }

    fn check_open(&self) -> Result<(), ActionError> {
        if self.is_closed() {
            Err(ActionError::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether connections and requests handed over are still served:
    /// until shutdown stops HTTP (after its grace period), so that clients
    /// can fetch their disconnect.
    fn check_serving(&self) -> Result<(), ActionError> {
        if *self.inner.http_stop.borrow() {
            Err(ActionError::Closed)
        } else {
            Ok(())
        }
    }

    /// Checks that `ns` is one of the hub's; true if the chat runs there.
    fn check_ns(&self, ns: &str) -> Result<bool, ActionError> {
        self.check_open()?;
        if self.inner.namespaces.iter().any(|n| n == ns) {
            Ok(true)
        } else if self.inner.host_namespaces.iter().any(|n| n == ns) {
            Ok(false)
        } else {
            Err(ActionError::UnknownNamespace(ns.to_owned()))
        }
    }

    /// Checks a room name: the chat's rules in a chat namespace (trimmed,
    /// bounded), non-empty in a host namespace.
    fn check_room(&self, chat_ns: bool, room: &str) -> Result<String, ActionError> {
        if chat_ns {
            chat::check_room_str(room, &self.inner.limits)
                .map_err(|r| ActionError::InvalidRoom(r.to_string()))
        } else if room.is_empty() {
            Err(ActionError::InvalidRoom(
                "the room name must not be empty".into(),
            ))
        } else {
            Ok(room.to_owned())
        }
    }

    /// Runs an action on the hub's runtime (the cluster's requests need
    /// its timers) and waits for its result.
    async fn on_hub<T, F>(&self, fut: F) -> Result<T, ActionError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ActionError>> + Send + 'static,
    {
        let mut task = AbortOnDrop(self.inner.handle.spawn(fut));
        match (&mut task.0).await {
            Ok(res) => res,
            Err(_) => Err(ActionError::Closed),
        }
    }

    /// Receives the hub's events that `filter` selects. See
    /// [`crate::events`] for the delivery rules.
    pub fn subscribe(&self, filter: EventFilter) -> Result<Subscription, ActionError> {
        self.check_open()?;
        self.inner
            .shared
            .events
            .subscribe(filter)
            .ok_or(ActionError::Closed)
    }

    /// Subscribes a function to the hub's events: `callback(event)` is
    /// called on the hub's thread that publishes it, in the order events
    /// happen, for the events `filter` lets through; it must not block (a
    /// host hands the event on, say to another thread or event loop, and
    /// returns). Returning false drops the event (counted in
    /// [`CallbackSubscription::dropped`]). For hosts that batch events
    /// themselves: no queue, no thread of the subscriber's waiting on one.
    /// Dropping the subscription unsubscribes; shutdown drops the function
    /// after the last events (the disconnects).
    pub fn subscribe_callback<F>(
        &self,
        filter: EventFilter,
        callback: F,
    ) -> Result<crate::CallbackSubscription, ActionError>
    where
        F: Fn(crate::HubEvent) -> bool + Send + Sync + 'static,
    {
        self.check_open()?;
        self.inner
            .shared
            .events
            .subscribe_callback(filter, Box::new(callback))
            .ok_or(ActionError::Closed)
    }

    /// Sets (or, with `None`, removes) the hook that accepts or refuses
    /// connections. It applies to connections made from now on.
    pub fn set_connect_hook(&self, hook: Option<ConnectHook>) -> Result<(), ActionError> {
        self.check_open()?;
        *self
            .inner
            .shared
            .connect_hook
            .write()
            .unwrap_or_else(|e| e.into_inner()) = hook;
        Ok(())
    }

    /// Sets (or removes) the hook that accepts or refuses logins.
    pub fn set_login_hook(&self, hook: Option<LoginHook>) -> Result<(), ActionError> {
        self.check_open()?;
        *self
            .inner
            .shared
            .login_hook
            .write()
            .unwrap_or_else(|e| e.into_inner()) = hook;
        Ok(())
    }

    /// Emits `event` with `args` (each element one argument; binary
    /// allowed) to `target`.
    ///
    /// The target and names are checked, then the packet is queued for
    /// every recipient on this hub before this returns (and published for
    /// the other hubs). Emits are delivered in the order they are made. An
    /// emit to a socket that is gone is dropped silently, as in socket.io.
    /// With Redis and recovery on for the namespace, a broadcast is queued
    /// for the namespace's Redis stream instead, and every hub (this one
    /// too) delivers it from there (see [`crate::cluster`]).
    pub fn emit(&self, target: Target, event: &str, args: Vec<Value>) -> Result<(), ActionError> {
        let chat_ns = self.check_ns(target.ns())?;
        check_event_name(event)?;
        let target = match target {
            Target::Room { ns, room } => Target::Room {
                room: self.check_room(chat_ns, &room)?,
                ns,
            },
            Target::Rooms { ns, rooms, except } => {
                let mut rooms: Vec<String> = rooms
                    .iter()
                    .map(|r| self.check_room(chat_ns, r))
                    .collect::<Result<_, _>>()?;
                // The simple cases as such: the same delivery, in the form
                // every hub of a cluster knows (also one of an older
                // version).
                match (rooms.len(), except.is_empty()) {
                    (0, true) => Target::Namespace { ns },
                    (1, true) => Target::Room {
                        room: rooms.remove(0),
                        ns,
                    },
                    _ => Target::Rooms { ns, rooms, except },
                }
            }
            Target::Lobby { ns } if !chat_ns => {
                return Err(ActionError::InvalidTarget(format!(
                    "the host namespace {ns:?} has no lobby"
                )));
            }
            other => other,
        };
        self.inner.core.emit(target, event, &args)
    }

    /// Sends `event` to one socket of this hub and waits (up to `timeout`)
    /// for its client's acknowledgement, whose arguments it returns.
    pub async fn emit_with_ack(
        &self,
        ns: &str,
        sid: &str,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ActionError> {
        self.check_ns(ns)?;
        check_event_name(event)?;
        let rx = self.inner.core.emit_with_ack(ns, sid, event, &args)?;
        // The timer is the hub's: the caller may wait on any executor (a C
        // or Node thread has none).
        self.on_hub(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(args))) => Ok(args),
                Ok(_) => Err(ActionError::Delivery(
                    "the socket left (or answered unreadably) before acknowledging".into(),
                )),
                Err(_) => Err(ActionError::AckTimeout(timeout)),
            }
        })
        .await
    }

    /// Puts a socket in `room`. In a chat namespace this moves it there,
    /// leaving its current room (as its own `join` would, without the
    /// `joined room success!` line); in a host namespace the socket joins
    /// one more room. Resolves once done, on whichever hub the socket is.
    pub async fn join(&self, ns: &str, sid: &str, room: &str) -> Result<(), ActionError> {
        let chat_ns = self.check_ns(ns)?;
        let room = self.check_room(chat_ns, room)?;
        let core = self.inner.core.clone();
        let (ns, sid) = (ns.to_owned(), sid.to_owned());
        self.on_hub(async move {
            match core.join_here(&ns, &sid, Some(&room)) {
                Err(ActionError::SocketNotFound { .. }) if core.shared.cluster.get().is_some() => {
                    let cluster = core.shared.cluster.get().cloned().expect("checked");
                    cluster.remote_move(&ns, &sid, Some(room)).await
                }
                Ok(()) => {
                    // Resolves once the other hubs' lines to the room
                    // reach this one too.
                    if let Some(cluster) = core.shared.cluster.get() {
                        cluster.room_ready(&ns, &room).await;
                    }
                    Ok(())
                }
                other => other,
            }
        })
        .await
    }

    /// Takes a socket out of `room`: in a chat namespace back to the lobby
    /// (a socket that is not in `room` stays where it is: `Ok`); in a host
    /// namespace out of that one room. Checked and done in one step on the
    /// socket's hub, so a join made meanwhile is never undone.
    pub async fn leave(&self, ns: &str, sid: &str, room: &str) -> Result<(), ActionError> {
        let chat_ns = self.check_ns(ns)?;
        let room = self.check_room(chat_ns, room)?;
        let core = self.inner.core.clone();
        let (ns, sid) = (ns.to_owned(), sid.to_owned());
        self.on_hub(async move {
            match core.leave_here(&ns, &sid, &room) {
                Err(ActionError::SocketNotFound { .. }) if core.shared.cluster.get().is_some() => {
                    let cluster = core.shared.cluster.get().cloned().expect("checked");
                    cluster.remote_leave(&ns, &sid, &room).await
                }
                other => other,
            }
        })
        .await
    }

    /// Disconnects a socket from its namespace (the client sees
    /// `io server disconnect` and does not reconnect by itself; in a chat
    /// namespace the others get the disconnect notice).
    pub async fn disconnect(&self, ns: &str, sid: &str) -> Result<(), ActionError> {
        self.check_ns(ns)?;
        let core = self.inner.core.clone();
        let (ns, sid) = (ns.to_owned(), sid.to_owned());
        self.on_hub(async move {
            match core.disconnect_here(&ns, &sid) {
                Err(ActionError::SocketNotFound { .. }) if core.shared.cluster.get().is_some() => {
                    let cluster = core.shared.cluster.get().cloned().expect("checked");
                    cluster.remote_disconnect(&ns, &sid).await
                }
                other => other,
            }
        })
        .await
    }

    /// The rooms a socket of this hub is in now, its own id first (as
    /// socket.io's `socket.rooms`): in a chat namespace the one room it is
    /// in (none in the lobby), in a host namespace every room it joined.
    /// Answered at once, without waiting for the hub's threads; a socket of
    /// another hub (or gone) is `SocketNotFound`.
    pub fn socket_rooms(&self, ns: &str, sid: &str) -> Result<Vec<String>, ActionError> {
        self.check_ns(ns)?;
        self.inner.core.rooms_of_here(ns, sid)
    }

    /// Who is where in a namespace: the lobby and each room with its
    /// members (id and name), over every hub of the cluster.
    pub async fn rooms(&self, ns: &str) -> Result<NamespaceListing, ActionError> {
        self.check_ns(ns)?;
        let core = self.inner.core.clone();
        let ns = ns.to_owned();
        self.on_hub(async move {
            let listing = core.list_here(&ns)?;
            match core.shared.cluster.get() {
                Some(cluster) => Ok(cluster.merge_listing(listing).await),
                None => Ok(listing),
            }
        })
        .await
    }

    /// The hub's HTTP handling as a tower service, to mount in another
    /// server (axum, hyper). It runs on the caller's runtime; the chat
    /// itself stays on the hub's.
    pub fn service(&self) -> HubService {
        self.inner.service.clone()
    }

    /// Serves HTTP/1 on a connection the host accepted, as if the hub had
    /// accepted it: `preface` holds bytes already read from it (for a
    /// WebSocket upgrade a host parsed: the request head, see
    /// [`request_head`](crate::request_head), then whatever followed), and
    /// the hub reads the rest from `io`. The hub owns the connection from
    /// then on; [`Hub::shutdown`] closes it.
    pub fn serve_connection<I>(
        &self,
        io: I,
        preface: Bytes,
        remote: Option<SocketAddr>,
    ) -> Result<(), ActionError>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        self.check_serving()?;
        let connections = self.inner.connections.clone();
        let service = self.inner.service.clone();
        self.inner.handle.spawn(async move {
            connections.serve(io, preface, service, remote, None);
        });
        Ok(())
    }

    /// [`Hub::serve_connection`] for a plain TCP socket (for instance one
    /// made from a duplicated file descriptor): sets `TCP_NODELAY` and
    /// non-blocking mode and registers it with the hub's runtime.
    pub fn serve_tcp(
        &self,
        stream: std::net::TcpStream,
        preface: Bytes,
    ) -> Result<(), ActionError> {
        self.check_serving()?;
        let io_err = |e: std::io::Error| ActionError::BadRequest(format!("unusable socket: {e}"));
        stream.set_nonblocking(true).map_err(io_err)?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a handed-over socket: {e}");
        }
        let remote = stream.peer_addr().ok();
        let stream = {
            let _guard = self.inner.handle.enter();
            tokio::net::TcpStream::from_std(stream).map_err(io_err)?
        };
        self.serve_connection(stream, preface, remote)
    }

    /// [`Hub::serve_tcp`] for a socket an event loop handed over (a
    /// duplicate of a descriptor of Node's, say): non-blocking already
    /// (a duplicate shares the original's file status flags, and event
    /// loops keep their sockets non-blocking), its peer's address read by
    /// the caller. Sets `TCP_NODELAY` and registers it with the hub's
    /// runtime on one of the hub's threads, not the caller's.
    ///
    /// A blocking socket passed here would block a thread of the hub: use
    /// [`Hub::serve_tcp`] when unsure.
    pub fn serve_nonblocking_tcp(
        &self,
        stream: std::net::TcpStream,
        preface: Bytes,
        remote: Option<SocketAddr>,
    ) -> Result<(), ActionError> {
        self.check_serving()?;
        let connections = self.inner.connections.clone();
        let service = self.inner.service.clone();
        self.inner.handle.spawn(async move {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY on a handed-over socket: {e}");
            }
            match tokio::net::TcpStream::from_std(stream) {
                Ok(io) => connections.serve(io, preface, service, remote, None),
                Err(e) => tracing::debug!("cannot register a handed-over socket: {e}"),
            }
        });
        Ok(())
    }

    /// Answers one HTTP request (a long-polling `GET`/`POST` under
    /// `/socket.io/`, or the page and bundle) on the hub's runtime and
    /// returns the whole response. Dropping the future cancels the request
    /// on the hub's side. The request body must already be within
    /// [`HubConfig::max_payload`].
    pub async fn handle_request(
        &self,
        req: Request<Bytes>,
        remote: Option<SocketAddr>,
    ) -> Result<Response<Bytes>, ActionError> {
        self.check_serving()?;
        let service = self.inner.service.clone();
        // A long-poll in flight is a client still reading: shutdown's grace
        // period waits for it as for one on the hub's own connections.
        let in_flight = self.inner.connections.request_in_flight();
        let task = self.inner.handle.spawn(async move {
            let _in_flight = in_flight;
            let mut req = req.map(Body::from);
            if let Some(addr) = remote {
                req.extensions_mut().insert(RemoteAddr(addr));
            }
            let resp = match service.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|e| ActionError::BadRequest(format!("response body failed: {e}")))?;
            Ok(Response::from_parts(parts, body))
        });
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(res) => res,
            Err(_) => Err(ActionError::Closed),
        }
    }

    /// Stops the hub gracefully and waits until it has stopped: no new
    /// connections; every connection is closed (its client sees its
    /// transport close and reconnects by itself, to this hub restarted or
    /// another), and its sockets leave (`server shutting down`; the others
    /// get the disconnect notices, on every hub); subscriptions end; the
    /// runtime stops. Takes at most [`HubConfig::shutdown_timeout`] (tasks still
    /// running then are dropped). Safe to call twice or from several
    /// threads: later calls wait for the same stop.
    ///
    /// Called from the hub's own threads (inside a hook, say), it only asks
    /// for the stop and returns, since waiting there would wait on itself.
    pub fn shutdown(&self) {
        self.request_stop();
        if CURRENT_HUB.with(|c| c.get()) == self.inner.id {
            return;
        }
        self.inner.stopped.wait();
        if let Some(t) = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }

    /// [`Hub::shutdown`] for async code: the same stop, awaited without
    /// blocking a thread.
    pub async fn shutdown_async(&self) {
        self.request_stop();
        if CURRENT_HUB.with(|c| c.get()) == self.inner.id {
            return;
        }
        let mut rx = {
            let mut notify = self
                .inner
                .stopped
                .notify
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let tx = notify.get_or_insert_with(|| watch::channel(false).0);
            let rx = tx.subscribe();
            if *self
                .inner
                .stopped
                .done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
            {
                tx.send_replace(true);
            }
            rx
        };
        let _ = rx.wait_for(|s| *s).await;
    }

    fn request_stop(&self) {
        if !self.inner.closing.swap(true, Ordering::AcqRel) {
            tracing::info!(hub = self.inner.id, "chathub shutting down");
        }
        self.inner.stop.send_replace(true);
    }
}

/// Aborts a task when dropped (a cancelled `handle_request`).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The hub's main task: sets the chat up, serves until told to stop, then
/// stops gracefully. Returns the shutdown deadline, if it got that far.
async fn run(
    config: HubConfig,
    assets: Assets,
    listener: Option<(std::net::TcpListener, Option<Arc<Tls>>)>,
    metrics_listener: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<Ready, StartError>>,
) -> Option<Instant> {
    let listener = match listener
        .map(|(l, tls)| tokio::net::TcpListener::from_std(l).map(|l| (l, tls)))
        .transpose()
    {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(StartError::Runtime(e)));
            return None;
        }
    };
    if let Some(url) = &config.redis_url {
        let r = &config.recovery;
        let keep = r.max_disconnection + config.ping_interval + config.ping_timeout;
        let streamed = config
            .namespaces
            .iter()
            .filter(|_| r.chat)
            .chain(config.host_namespaces.iter().filter(|_| r.host))
            .map(|ns| crate::cluster::StreamSpec {
                ns: ns.clone(),
                max_len: r.max_packets,
                keep,
            })
            .collect();
        let started = crate::cluster::Cluster::start(
            url,
            config.redis_tls_ca.as_deref(),
            config.redis_cluster,
            &config.redis_prefix,
            config.redis_batch,
            shared.events.clone(),
            streamed,
        );
        match started.await {
            Ok(cluster) => {
                let _ = shared.cluster.set(cluster);
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return None;
            }
        }
    }
    let core = build(&config, &shared);
    if let Some(cluster) = shared.cluster.get() {
        let local: Arc<dyn crate::cluster::LocalOps> = core.clone();
        cluster.set_local(Arc::downgrade(&local));
    }
    let metrics = metrics_route(&config, &core);
    let service = HubService::new(
        assets,
        core.engine.clone(),
        &config.cors_origins,
        Access {
            trusted_proxies: config.trusted_proxies.clone(),
            ready: Some(readiness(&shared, config.redis_unready_after)),
            metrics: config.metrics_path.is_some().then(|| metrics.clone()),
        },
    );
    let (http_stop, http_stop_rx) = watch::channel(false);
    let (sever, sever_rx) = watch::channel(false);
    let connections = Connections::new(
        http_stop_rx,
        sever_rx,
        crate::net::ConnLimits {
            slow_consumer_timeout: config.slow_consumer_timeout,
            max_per_ip: config.max_connections_per_ip,
            refused: shared.stats.connections_refused.clone(),
            header_timeout: config.request_timeout,
        },
    );
    // Every serving task exists before `start` returns, so that what a
    // caller sees first (`stats().tasks`, a connect) is the steady state.
    let accepting = listener.map(|(listener, tls)| {
        tokio::spawn(accept_loop(
            listener,
            tls,
            connections.clone(),
            service.clone(),
            http_stop.subscribe(),
        ))
    });
    if let Some(l) = metrics_listener {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => {
                tokio::spawn(crate::metrics::serve(l, metrics, http_stop.subscribe()));
            }
            Err(e) => {
                let _ = ready.send(Err(StartError::Runtime(e)));
                return None;
            }
        }
    }
    if ready
        .send(Ok(Ready {
            handle: tokio::runtime::Handle::current(),
            http_stop: http_stop.subscribe(),
            service: service.clone(),
            connections: connections.clone(),
            core: core.clone(),
        }))
        .is_err()
    {
        if let Some(task) = accepting {
            task.abort();
        }
        return None;
    }

    until_stopped(&mut stop).await;

    // Graceful stop, within `shutdown_timeout`:
    let deadline = Instant::now() + config.shutdown_timeout;
    let until = tokio::time::Instant::from_std(deadline);
    // 1. no new socket may join; every connection closes: its sockets
    //    leave (`server shutting down`), the others get the notices, here
    //    and on the other hubs. No DISCONNECT packet: the clients see their
    //    transport close and reconnect, to this hub restarted or another;
    shared.closing.store(true, Ordering::Release);
    core.sio().stop_accepting();
    core.engine.stop_accepting();
    for session in core.engine.sessions() {
        session.close(CloseReason::Server);
    }
    for ns in core.sio().namespaces() {
        if tokio::time::timeout_at(until, ns.wait_empty())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some sockets did not finish leaving in time");
        }
    }
    if let Some(cluster) = shared.cluster.get() {
        let _ = tokio::time::timeout_at(until, cluster.flush()).await;
    }
    // 2. a grace period, still serving HTTP, for the clients to read their
    //    last frames (a WebSocket's close frame, a long-poll's close
    //    packet); it ends once no request has been in flight and no
    //    WebSocket open for a quiet moment;
    let grace = (config.shutdown_timeout / 4).min(Duration::from_secs(1));
    let quiet = Duration::from_millis(100).min(grace);
    let _ = tokio::time::timeout(grace, connections.wait_quiet(quiet)).await;
    // 3. stop listening; idle keep-alive connections close; what is still
    //    open belongs to clients that did not leave: cut it.
    http_stop.send_replace(true);
    if let Some(task) = accepting {
        let _ = task.await;
    }
    sever.send_replace(true);
    if tokio::time::timeout_at(until, connections.wait_closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections were still open at the deadline");
    }
    if let Some(cluster) = shared.cluster.get() {
        cluster.close();
    }
    shared.events.close();
    Some(deadline)
}

/// The metrics route: `metrics_path` (`/metrics` when only a listener of
/// its own is configured), rendering what `core` counts.
fn metrics_route(config: &HubConfig, core: &Arc<Core>) -> crate::metrics::Route {
    let core = Arc::downgrade(core);
    let chat = config.namespaces.clone();
    crate::metrics::Route {
        path: config
            .metrics_path
            .clone()
            .unwrap_or_else(|| "/metrics".into()),
        render: Arc::new(move || match core.upgrade() {
            Some(core) => {
                let tasks = tokio::runtime::Handle::try_current()
                    .map_or(0, |h| h.metrics().num_alive_tasks());
                core.metrics_text(tasks, &chat)
            }
            None => String::new(),
        }),
    }
}

/// `GET /ready`'s answer: not while the hub shuts down, nor once Redis has
/// been away for longer than `redis_grace`.
fn readiness(
    shared: &Arc<Shared>,
    redis_grace: Duration,
) -> Arc<dyn Fn() -> Result<(), String> + Send + Sync> {
    let shared = Arc::downgrade(shared);
    Arc::new(move || {
        let Some(shared) = shared.upgrade() else {
            return Err("the hub is stopped".into());
        };
        if shared.is_closing() {
            return Err("the hub is shutting down".into());
        }
        match shared.cluster.get().and_then(|c| c.down_for()) {
            Some(down) if down > redis_grace => Err(format!(
                "Redis has been unreachable for {} s",
                down.as_secs()
            )),
            _ => Ok(()),
        }
    })
}

/// Accepts connections until `stop` turns true, then drops the listener.
/// When accepting fails (out of descriptors, most likely) it waits, longer
/// each time up to a second, and logs once per episode.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<Tls>>,
    connections: Connections,
    service: HubService,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    if !backoff.is_zero() {
                        tracing::info!("accepting connections again");
                        backoff = Duration::ZERO;
                    }
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("cannot set TCP_NODELAY: {e}");
                    }
                    connections.serve(stream, Bytes::new(), service.clone(), Some(addr), tls.clone());
                }
                Err(e) => {
                    if backoff.is_zero() {
                        tracing::warn!("accept failed: {e}; retrying with a backoff until it works again");
                        backoff = Duration::from_millis(10);
                    } else {
                        tracing::debug!("accept failed again: {e}");
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = until_stopped(&mut stop) => break,
                    }
                }
            },
            () = until_stopped(&mut stop) => break,
        }
    }
}

/// The engine, the Socket.IO layer and every namespace: the chat's and the
/// host's.
fn build(config: &HubConfig, shared: &Arc<Shared>) -> Arc<Core> {
    let r = &config.recovery;
    let bounds = crate::socketio::recovery::Bounds {
        window: r.max_disconnection,
        keep: r.max_disconnection + config.ping_interval + config.ping_timeout,
        max_packets: r.max_packets,
        max_bytes: r.max_bytes,
        max_sessions: r.max_sessions,
    };
    // With Redis, a namespace with recovery sends its broadcasts through a
    // stream (see `cluster`).
    let cluster = shared
        .cluster
        .get()
        .map(|c| crate::cluster::ClusterStream(c.clone()));
    let stream = |path: &str| {
        let c = cluster.as_ref()?;
        let head = c.head(path)?;
        let s: Arc<dyn crate::socketio::Stream> = Arc::new(c.clone());
        Some((s, head))
    };
    let channels = || {
        let c = shared.cluster.get()?;
        let rooms: Arc<dyn crate::socketio::RoomChannels> =
            Arc::new(crate::cluster::ClusterRooms(c.clone()));
        Some(rooms)
    };
    let mut namespaces = Vec::new();
    for path in &config.namespaces {
        let handler = Arc::new(chat::handler::ChatNs::new(path, shared.clone()));
        let recovery = r.chat.then_some(bounds);
        namespaces.push(Namespace::new(
            path,
            handler,
            shared.counters.clone(),
            recovery,
            stream(path),
            channels(),
        ));
    }
    for path in &config.host_namespaces {
        let handler = Arc::new(host_ns::HostNs::new(shared.clone()));
        let recovery = r.host.then_some(bounds);
        namespaces.push(Namespace::new(
            path,
            handler,
            shared.counters.clone(),
            recovery,
            stream(path),
            channels(),
        ));
    }
    let max_payload = usize::try_from(config.max_payload).unwrap_or(usize::MAX);
    let sio = Sio::new(namespaces, max_payload, shared.counters.clone());
    let engine = Engine::new(
        EngineConfig {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            max_payload,
            connect_timeout: config.connect_timeout,
            outbox_limit: config.socket_buffer,
            upgrade_timeout: Duration::from_secs(10),
            body_timeout: config.request_timeout,
            slow_consumer_timeout: config.slow_consumer_timeout,
        },
        sio,
        config.cors_origins.clone(),
    );
    Arc::new(Core {
        engine,
        shared: shared.clone(),
    })
}

/// Checks an event name the host emits: not empty, not reserved by
/// Socket.IO, no NUL.
fn check_event_name(event: &str) -> Result<(), ActionError> {
    if event.is_empty()
        || event.contains('\0')
        || crate::socketio::packet::RESERVED_EVENTS.contains(&event)
    {
        return Err(ActionError::InvalidEventName(event.to_owned()));
    }
    Ok(())
}
