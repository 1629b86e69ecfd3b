//! The native half of the `chathub` npm package: a thin napi-rs face over
//! the `chathub` crate's host API. The JavaScript half (`hub.js`) gives it
//! the shape Node users expect (`new Hub()`, `attach(server)`, `on()`,
//! `to().emit()`); nothing here holds a chat rule.
//!
//! Values cross the boundary as JSON text plus a list of `Buffer`s, with
//! Socket.IO's own binary placeholders (`{"_placeholder":true,"num":N}`):
//! `hub.js` encodes and decodes them. Events reach JavaScript through weak
//! thread-safe functions (they never keep the process alive), only for
//! the kinds a listener asked for, in batches gathered by the hub's threads
//! (`Forwarder`) with one batch in flight.

#![allow(missing_docs, unreachable_pub)] // napi-derive generates public glue.

use std::io::Write as _;
use std::net::SocketAddr;
#[cfg(unix)]
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chathub::events::{EventFilter, EventKinds, Transport};
use chathub::{Ack, ActionError, Hub, HubConfig, HubEvent, Target, Value, hooks};
use futures_util::future::AbortHandle;
use napi::bindgen_prelude::{Buffer, FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

// ---------------------------------------------------------------------------
// Errors: one converter.

fn error(msg: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, msg.to_string())
}

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::new(Status::InvalidArg, msg.to_string())
}

/// The core's error, its code first (`[ERR_INVALID_ROOM] …`): hub.js
/// turns it into `err.code` on a `HubError`.
fn action_error(e: ActionError) -> Error {
    let status = match e {
        ActionError::UnknownNamespace(_)
        | ActionError::InvalidRoom(_)
        | ActionError::InvalidEventName(_)
        | ActionError::BadRequest(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    Error::new(status, format!("[{}] {e}", e.code()))
}

// ---------------------------------------------------------------------------
// Values: JSON with placeholders + Buffers <-> chathub::Value.

fn decode_args(json: &str, attachments: Vec<Buffer>) -> Result<Vec<Value>> {
    let parsed: Json =
        serde_json::from_str(json).map_err(|e| invalid(format!("arguments are not JSON: {e}")))?;
    let Json::Array(items) = parsed else {
        return Err(invalid("arguments must be an array"));
    };
    let bins: Vec<Bytes> = attachments
        .into_iter()
        .map(|b| Bytes::copy_from_slice(&b))
        .collect();
    items
        .into_iter()
        .map(|item| Value::from_json_with_placeholders(item, &bins).map_err(invalid))
        .collect()
}

/// Headers as socket.io's `handshake.headers`: by lower-case name, several
/// values joined with `", "`.
fn header_object(headers: &http::HeaderMap) -> Json {
    Json::Object(
        headers
            .keys()
            .map(|k| {
                let values: Vec<&str> = headers
                    .get_all(k)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (k.as_str().to_owned(), Json::String(values.join(", ")))
            })
            .collect(),
    )
}

/// Headers as one text, `name\0value\0…` (lower-case names, a name once
/// per value): cheaper to write and to cross than an object; `hub.js`
/// makes socket.io's `handshake.headers` of it when first read.
fn header_text(headers: &http::HeaderMap) -> String {
    let mut out = String::new();
    for (k, v) in headers {
        if let Ok(v) = v.to_str() {
            out.push_str(k.as_str());
            out.push('\0');
            out.push_str(v);
            out.push('\0');
        }
    }
    out
}

/// A client's answer to `emitWithAck`: its arguments as JSON with
/// placeholders, and the attachments.
#[napi(object)]
pub struct AckAnswer {
    /// The arguments, a JSON array.
    pub json: String,
    /// The binary attachments the placeholders point at.
    pub buffers: Vec<Buffer>,
}

impl std::fmt::Debug for AckAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckAnswer")
            .field("json", &self.json)
            .field("buffers", &self.buffers.len())
            .finish()
    }
}

fn buffers(bins: Vec<Bytes>) -> Vec<Buffer> {
    bins.into_iter().map(|b| Buffer::from(b.to_vec())).collect()
}

fn args_json(args: &[Value], bins: &mut Vec<Bytes>) -> Json {
    Json::Array(
        args.iter()
            .map(|a| a.to_json_with_placeholders(bins))
            .collect(),
    )
}

/// A custom event (the busy kind: every event a JavaScript handler gets)
/// written straight into `out`, without building a JSON tree; its
/// arguments too when they hold no binary (the common case).
fn write_custom(out: &mut Vec<u8>, e: &chathub::events::CustomEvent, bins: &mut Vec<Bytes>) {
    // `[ns, sid, name, event, args]`: an array, cheaper to parse than an
    // object (hub.js makes the object only for `event` listeners).
    out.push(b'[');
    put(out, &e.ns);
    out.push(b',');
    put(out, &e.sid);
    out.push(b',');
    put(out, &e.name);
    out.push(b',');
    put(out, &e.event);
    out.push(b',');
    if e.args.iter().any(Value::has_binary) {
        put(out, &args_json(&e.args, bins));
    } else {
        put(out, &e.args);
    }
    out.push(b']');
}

/// Appends `value` as JSON.
fn put<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and these values always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// An event as JSON for `hub.js` (appended to `out`), its attachments, and
/// its ack (if any).
fn event_json(event: HubEvent, out: &mut Vec<u8>) -> (Vec<Bytes>, Option<Ack>) {
    let mut bins = Vec::new();
    let mut ack = None;
    let body = match event {
        HubEvent::Connect(e) => json!({
            "type": "connect", "ns": e.ns, "sid": e.sid,
            "auth": e.auth.to_json_with_placeholders(&mut bins),
            "address": e.remote_addr.map(|a| a.to_string()),
            "transport": match e.transport { Transport::Polling => "polling", Transport::Websocket => "websocket" },
            "recovered": e.recovered,
            "headers": header_text(&e.headers),
        }),
        HubEvent::Login(e) => json!({
            "type": "login", "ns": e.ns, "sid": e.sid, "name": e.name,
            "previous": e.previous, "room": e.room,
        }),
        HubEvent::Join(e) => json!({
            "type": "join", "ns": e.ns, "sid": e.sid, "name": e.name,
            "from": e.from, "to": e.to, "byHost": e.by_host,
        }),
        HubEvent::Message(e) => json!({
            "type": "message", "ns": e.ns, "sid": e.sid, "name": e.name,
            "room": e.room, "text": e.text,
        }),
        HubEvent::Custom(mut e) => {
            ack = e.ack.take();
            write_custom(out, &e, &mut bins);
            return (bins, ack);
        }
        HubEvent::Rejected(e) => json!({
            "type": "rejected", "ns": e.ns, "sid": e.sid, "event": e.event, "error": e.error,
        }),
        HubEvent::Disconnect(e) => json!({
            "type": "disconnect", "ns": e.ns, "sid": e.sid, "name": e.name,
            "room": e.room, "reason": e.reason,
        }),
        HubEvent::Cluster(e) => json!({
            "type": "cluster", "node": e.node, "up": e.up, "detail": e.detail,
        }),
        HubEvent::Limit(e) => json!({
            "type": "limit", "ns": e.ns, "sid": e.sid, "name": e.name,
            "limit": e.limit, "disconnected": e.disconnected,
        }),
        HubEvent::Presence(e) => json!({
            "type": "presence", "ns": e.ns, "sid": e.sid, "name": e.name,
            "room": e.room, "change": e.change.as_str(), "hub": e.hub,
        }),
        other => json!({ "type": "unknown", "ns": other.ns(), "sid": other.sid() }),
    };
    let _ = serde_json::to_writer(&mut *out, &body);
    (bins, ack)
}

// ---------------------------------------------------------------------------
// Options.

/// Hub options, as `hub.js` passes them (times in milliseconds).
#[napi(object)]
#[derive(Debug, Default)]
pub struct NativeOptions {
    pub namespaces: Option<Vec<String>>,
    pub host_namespaces: Option<Vec<String>>,
    pub ip_events_per_sec: Option<u32>,
    pub ip_event_burst: Option<u32>,
    pub ip_bytes_per_sec: Option<u32>,
    pub ip_byte_burst: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub request_timeout: Option<u32>,
    pub ping_interval: Option<u32>,
    pub ping_timeout: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub max_payload: Option<u32>,
    pub socket_buffer: Option<u32>,
    pub slow_consumer_timeout: Option<u32>,
    pub events_per_sec: Option<u32>,
    pub event_burst: Option<u32>,
    pub bytes_per_sec: Option<u32>,
    pub byte_burst: Option<u32>,
    pub flood_strikes: Option<u32>,
    pub max_queued_events: Option<u32>,
    pub max_connections_per_ip: Option<u32>,
    pub max_name_length: Option<u32>,
    pub max_room_length: Option<u32>,
    pub max_message_length: Option<u32>,
    pub cors_origins: Option<Vec<String>>,
    pub serve_page: Option<bool>,
    pub page_path: Option<String>,
    pub client_dist: Option<String>,
    pub redis_url: Option<String>,
    pub redis_tls_ca: Option<String>,
    pub redis_cluster: Option<bool>,
    pub redis_prefix: Option<String>,
    pub redis_batch: Option<u32>,
    pub worker_threads: Option<u32>,
    pub event_queue_capacity: Option<u32>,
    pub hook_timeout: Option<u32>,
    pub shutdown_timeout: Option<u32>,
    pub recovery: Option<bool>,
    pub host_recovery: Option<bool>,
    pub max_disconnection_duration: Option<u32>,
    pub recovery_max_packets: Option<u32>,
    pub recovery_max_bytes: Option<u32>,
    pub recovery_max_sessions: Option<u32>,
    pub metrics_path: Option<String>,
    pub metrics_bind: Option<String>,
}

fn config(o: NativeOptions) -> Result<HubConfig> {
    let ms = |v: Option<u32>, d: Duration| v.map(|v| Duration::from_millis(v.into())).unwrap_or(d);
    let n = |v: Option<u32>, d: usize| v.map(|v| v as usize).unwrap_or(d);
    let base = HubConfig::default();
    let mut c = HubConfig {
        bind: None,
        namespaces: o.namespaces.unwrap_or(base.namespaces.clone()),
        host_namespaces: o.host_namespaces.unwrap_or_default(),
        request_timeout: ms(o.request_timeout, base.request_timeout),
        ping_interval: ms(o.ping_interval, base.ping_interval),
        ping_timeout: ms(o.ping_timeout, base.ping_timeout),
        connect_timeout: ms(o.connect_timeout, base.connect_timeout),
        max_payload: o.max_payload.map(u64::from).unwrap_or(base.max_payload),
        socket_buffer: n(o.socket_buffer, base.socket_buffer),
        cors_origins: o.cors_origins.unwrap_or_default(),
        serve_page: o.serve_page.unwrap_or(false),
        page_path: o.page_path.map(Into::into),
        client_dist: o.client_dist.map(Into::into),
        redis_url: o.redis_url,
        redis_tls_ca: o.redis_tls_ca.map(Into::into),
        redis_cluster: o.redis_cluster.unwrap_or(base.redis_cluster),
        redis_prefix: o.redis_prefix.unwrap_or(base.redis_prefix.clone()),
        redis_batch: ms(o.redis_batch, base.redis_batch),
        worker_threads: o.worker_threads.map(|v| v as usize),
        event_queue_capacity: n(o.event_queue_capacity, base.event_queue_capacity),
        hook_timeout: ms(o.hook_timeout, base.hook_timeout),
        shutdown_timeout: ms(o.shutdown_timeout, base.shutdown_timeout),
        ..base
    };
    c.slow_consumer_timeout = ms(o.slow_consumer_timeout, c.slow_consumer_timeout);
    c.max_connections_per_ip = n(o.max_connections_per_ip, c.max_connections_per_ip);
    let f = &mut c.flood;
    f.events_per_sec = o.events_per_sec.unwrap_or(f.events_per_sec);
    f.event_burst = o.event_burst.unwrap_or(f.event_burst);
    f.bytes_per_sec = o.bytes_per_sec.map(u64::from).unwrap_or(f.bytes_per_sec);
    f.byte_burst = o.byte_burst.map(u64::from).unwrap_or(f.byte_burst);
    f.strikes = o.flood_strikes.unwrap_or(f.strikes);
    f.max_queued_events = n(o.max_queued_events, f.max_queued_events);
    c.limits.max_name_len = n(o.max_name_length, c.limits.max_name_len);
    c.limits.max_room_len = n(o.max_room_length, c.limits.max_room_len);
    c.limits.max_message_len = n(o.max_message_length, c.limits.max_message_len);
    let ip = &mut c.ip_limits;
    ip.events_per_sec = o.ip_events_per_sec.unwrap_or(ip.events_per_sec);
    ip.event_burst = o.ip_event_burst.unwrap_or(ip.event_burst);
    ip.bytes_per_sec = o
        .ip_bytes_per_sec
        .map(u64::from)
        .unwrap_or(ip.bytes_per_sec);
    ip.byte_burst = o.ip_byte_burst.map(u64::from).unwrap_or(ip.byte_burst);
    let r = &mut c.recovery;
    r.chat = o.recovery.unwrap_or(r.chat);
    r.host = o.host_recovery.unwrap_or(r.host);
    r.max_disconnection = ms(o.max_disconnection_duration, r.max_disconnection);
    r.max_packets = n(o.recovery_max_packets, r.max_packets);
    r.max_bytes = n(o.recovery_max_bytes, r.max_bytes);
    r.max_sessions = n(o.recovery_max_sessions, r.max_sessions);
    // Through the config schema: its parsing and its messages.
    for (key, value) in [
        ("metrics_path", o.metrics_path),
        ("metrics_bind", o.metrics_bind),
    ] {
        if let Some(v) = value {
            c.set(key, &v).map_err(invalid)?;
        }
    }
    for p in o.trusted_proxies.unwrap_or_default() {
        let ip = p
            .parse()
            .map_err(|_| invalid(format!("trustedProxies: {p:?} is not an IP address")))?;
        c.trusted_proxies.push(ip);
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// Thread-safe functions.

/// `(json, buffers)` for the event listener: a batch (see `EventBatch`).
type EventArgs = FnArgs<(String, Vec<Buffer>)>;
/// `(json, decisionId)` for a hook.
type HookArgs = FnArgs<(String, Option<u32>)>;
/// `(error, status, headers, body)` for a request's callback.
type ResponseArgs = FnArgs<(Option<String>, u32, Vec<String>, Buffer)>;

/// What an event subscription hands to JavaScript in one call: the events
/// that were waiting, as one JSON array of `[event, attachments, ackId]`,
/// and their attachments end to end. Counts and ack ids ride in the JSON:
/// arrays of their own would cost more to make than the text.
#[derive(Default)]
struct EventBatch {
    json: Vec<u8>,
    /// Where each ack's id goes in `json` (an `ACK_SLOT` to overwrite).
    slots: Vec<usize>,
    bins: Vec<Bytes>,
    /// Events in the batch.
    len: usize,
    /// The acks, in the order of `slots`.
    acks: Vec<Ack>,
}

/// Room for an ack id in the batch's JSON (ids are at most 10 digits),
/// written over when the batch crosses (the table is filled on Node's
/// thread): the id, padded with spaces, which JSON ignores.
const ACK_SLOT: &[u8] = b"          ";

impl EventBatch {
    /// Appends `[event, attachments, ackId]` (0: no ack; its table id is
    /// given when the batch crosses, see `ACK_SLOT`).
    fn push(&mut self, event: HubEvent) {
        self.json
            .extend_from_slice(if self.len == 0 { b"[[" } else { b",[" });
        let (bins, ack) = event_json(event, &mut self.json);
        let _ = write!(self.json, ",{}", bins.len());
        if ack.is_some() {
            self.json.extend_from_slice(b",");
            self.slots.push(self.json.len());
            self.json.extend_from_slice(ACK_SLOT);
        } else {
            self.json.extend_from_slice(b",0");
        }
        self.json.push(b']');
        self.len += 1;
        self.bins.extend(bins);
        self.acks.extend(ack);
    }
}

/// Event listener: `(json, buffers) => void`, a batch of events. Weak: it
/// never keeps the process alive. At most two batches wait in its queue
/// (see `Forwarder`).
type EventFn = ThreadsafeFunction<EventBatch, (), EventArgs, Status, false, true, 1024>;

/// Hands the hub's events to Node in batches, with one batch in flight:
/// the hub's threads add events to the batch being gathered, and the first
/// event of an idle forwarder sends it; while Node hands a batch out, the
/// next one gathers, and goes as soon as Node is done. A busy hub's events
/// so cross in few, large batches (one wake of Node's loop each), with no
/// thread of ours in between.
struct Forwarder {
    state: Mutex<Gathering>,
    tsfn: EventFn,
    capacity: usize,
}

#[derive(Default)]
struct Gathering {
    batch: EventBatch,
    /// A batch is with Node (queued or being handed out).
    in_flight: bool,
}

impl Forwarder {
    /// Called on the hub's threads: false (dropped) when `capacity` events
    /// wait already.
    fn push(self: &Arc<Self>, event: HubEvent) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.batch.len >= self.capacity {
            return false;
        }
        st.batch.push(event);
        if st.in_flight {
            return true;
        }
        st.in_flight = true;
        let batch = std::mem::take(&mut st.batch);
        drop(st);
        self.send(batch);
        true
    }

    fn send(self: &Arc<Self>, batch: EventBatch) {
        let me = self.clone();
        let status = self.tsfn.call_with_return_value(
            batch,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |_, _| {
                me.handed();
                Ok(())
            },
        );
        if status != Status::Ok {
            // Node is going away: nothing will take the next batch either.
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .in_flight = false;
        }
    }

    /// On Node's thread, once a batch was handed out: sends what gathered
    /// meanwhile.
    fn handed(self: &Arc<Self>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.batch.len == 0 {
            st.in_flight = false;
            return;
        }
        let batch = std::mem::take(&mut st.batch);
        drop(st);
        self.send(batch);
    }
}

/// A hook call: `(json, done) => void`.
struct HookCall {
    json: String,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

type HookFn = ThreadsafeFunction<HookCall, (), HookArgs, Status, false, true>;

/// What a request's callback gets.
struct RequestDone {
    result: std::result::Result<http::Response<Bytes>, String>,
}

type RequestFn = ThreadsafeFunction<RequestDone, (), ResponseArgs, Status, false, true>;

type PumpDataFn = ThreadsafeFunction<Option<Bytes>, (), Option<Buffer>, Status, false, true>;
type PumpDrainFn = ThreadsafeFunction<(), (), (), Status, false, true>;

// ---------------------------------------------------------------------------
// The hub.

/// The native hub: one `chathub::Hub` on its own runtime, without a
/// listener of its own (`listen` adds one; `adopt`, `openPump` and
/// `request` hand it connections and requests from a Node server).
#[napi]
#[derive(Debug)]
pub struct NativeHub {
    hub: Hub,
    /// The config's request timeout (for the bodies JavaScript reads).
    request_timeout_ms: u32,
    /// The config's largest packet (for the bodies JavaScript reads).
    max_payload: f64,
    /// Events handed to JavaScript so far (the filter's test reads it).
    crossed: Arc<std::sync::atomic::AtomicU64>,
    /// The event subscription (`listenEvents`).
    events: Mutex<Option<chathub::CallbackSubscription>>,
    /// Most events waiting for Node (`eventQueueCapacity`); more are
    /// dropped, and counted, as a full subscription queue drops them.
    event_queue_capacity: usize,
}

#[napi]
impl NativeHub {
    /// Starts a hub (its own runtime and threads; no listener yet).
    #[napi(constructor)]
    pub fn new(options: Option<NativeOptions>) -> Result<Self> {
        let config = config(options.unwrap_or_default())?;
        let request_timeout_ms =
            u32::try_from(config.request_timeout.as_millis()).unwrap_or(u32::MAX);
        // u64 → f64: exact up to 2^53, far beyond any payload limit.
        #[allow(clippy::cast_precision_loss)]
        let max_payload = config.max_payload as f64;
        let event_queue_capacity = config.event_queue_capacity.max(1);
        let hub = Hub::start(config).map_err(error)?;
        Ok(NativeHub {
            hub,
            request_timeout_ms,
            max_payload,
            crossed: Arc::default(),
            events: Mutex::new(None),
            event_queue_capacity,
        })
    }

    /// Listens on `host:port` (port 0: a free one); returns the port.
    #[napi]
    pub fn listen(&self, host: String, port: u32) -> Result<u32> {
        let port = u16::try_from(port).map_err(|_| invalid("port must be 0..65535"))?;
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| invalid(format!("host must be an IP address, not {host:?}")))?;
        let addr = self
            .hub
            .listen(SocketAddr::new(ip, port))
            .map_err(|e| match e {
                chathub::ListenError::Closed => action_error(ActionError::Closed),
                chathub::ListenError::Bind { ref source, .. } => {
                    // Node's code for it, first: `hub.js` sets `err.code`.
                    let code = match source.kind() {
                        std::io::ErrorKind::AddrInUse => "EADDRINUSE: ",
                        std::io::ErrorKind::PermissionDenied => "EACCES: ",
                        std::io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL: ",
                        _ => "",
                    };
                    error(format!("{code}{e}"))
                }
                other => invalid(other),
            })?;
        Ok(u32::from(addr.port()))
    }

    /// Throws `[ERR_UNKNOWN_NAMESPACE]` unless `ns` is one of the hub's.
    #[napi]
    pub fn check_namespace(&self, ns: String) -> Result<()> {
        let known = self.hub.namespaces().contains(&ns) || self.hub.host_namespaces().contains(&ns);
        if known {
            Ok(())
        } else {
            Err(action_error(ActionError::UnknownNamespace(ns)))
        }
    }

    /// The namespaces the chat runs on.
    #[napi(getter)]
    pub fn namespaces(&self) -> Vec<String> {
        self.hub.namespaces().to_vec()
    }

    /// How long a request's body may take to arrive, in milliseconds.
    #[napi(getter)]
    pub fn request_timeout_ms(&self) -> u32 {
        self.request_timeout_ms
    }

    /// How many events have crossed into JavaScript (only those a listener
    /// asked for should).
    #[napi(getter)]
    pub fn events_crossed(&self) -> f64 {
        // u64 → f64: exact up to 2^53 events.
        #[allow(clippy::cast_precision_loss)]
        let n = self.crossed.load(Ordering::Relaxed) as f64;
        n
    }

    /// The largest packet, in bytes: a long-polling body over it answers
    /// 413 (as socket.io's `maxHttpBufferSize`).
    #[napi(getter)]
    pub fn max_payload(&self) -> f64 {
        self.max_payload
    }

    /// The namespaces the host owns (no chat rules there).
    #[napi(getter)]
    pub fn host_namespaces(&self) -> Vec<String> {
        self.hub.host_namespaces().to_vec()
    }

    /// The folder the Socket.IO client bundle is served from, or null when
    /// none was found at start (it then answers 404).
    #[napi(getter)]
    pub fn client_bundle(&self) -> Option<String> {
        self.hub
            .client_bundle()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.hub.is_closed()
    }

    /// The hub's counters (what it refused or lost), as JSON.
    #[napi(getter)]
    pub fn stats_json(&self) -> String {
        serde_json::to_string(&self.hub.stats()).unwrap_or_default()
    }

    /// The hub's figures as Prometheus text (format 0.0.4).
    #[napi(getter)]
    pub fn metrics_text(&self) -> String {
        self.hub.metrics_text()
    }

    /// Where the metrics listener (`metricsBind`) listens, `IP:PORT`, or
    /// null without one.
    #[napi(getter)]
    pub fn metrics_address(&self) -> Option<String> {
        self.hub.metrics_addr().map(|a| a.to_string())
    }

    /// This hub's node id in its Redis cluster (null without Redis).
    #[napi(getter)]
    pub fn cluster_node(&self) -> Option<String> {
        self.hub.cluster_node()
    }

    /// Sockets connected now (on this hub).
    #[napi(getter)]
    pub fn socket_count(&self) -> u32 {
        u32::try_from(self.hub.socket_count()).unwrap_or(u32::MAX)
    }

    /// Starts delivering events to `listener(json, buffers)`, in the order
    /// they happen, once `setEventFilter` asks for some: batches of
    /// `[event, attachments, ackId]` (see `EventBatch`). One listener per
    /// hub; a second call replaces the first.
    #[napi(ts_args_type = "listener: (json: string, buffers: Buffer[]) => void")]
    pub fn listen_events(&self, listener: Function<'_, EventArgs, ()>) -> Result<()> {
        let crossed = self.crossed.clone();
        let tsfn: EventFn = listener
            .build_threadsafe_function::<EventBatch>()
            .weak::<true>()
            .callee_handled::<false>()
            .max_queue_size::<1024>()
            .build_callback(move |ctx| {
                let EventBatch {
                    mut json,
                    slots,
                    bins,
                    len,
                    acks,
                } = ctx.value;
                json.push(b']');
                crossed.fetch_add(len as u64, Ordering::Relaxed);
                // An ack waits in a table until `ack(id)` or `releaseAck(id)`
                // (ids start at 1; 0 in the JSON: none).
                for (slot, ack) in slots.into_iter().zip(acks) {
                    let id = ACKS.insert(ack).to_string();
                    json[slot..slot + id.len()].copy_from_slice(id.as_bytes());
                }
                // serde_json writes UTF-8 only, and the slots hold digits
                // and spaces.
                let json = String::from_utf8(json).map_err(error)?;
                Ok((json, buffers(bins)).into())
            })?;
        let forwarder = Arc::new(Forwarder {
            state: Mutex::new(Gathering::default()),
            tsfn,
            capacity: self.event_queue_capacity,
        });
        let sub = self
            .hub
            .subscribe_callback(EventFilter::kinds(EventKinds::NONE), move |event| {
                forwarder.push(event)
            })
            .map_err(action_error)?;
        // The previous subscription (if any) ends when dropped.
        *self.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(sub);
        Ok(())
    }

    /// Which events `listenEvents` delivers: `kinds` (bits of
    /// `eventKinds()`), and for custom events only `customEvents` (all when
    /// null).
    #[napi]
    pub fn set_event_filter(&self, kinds: u32, custom_events: Option<Vec<String>>) -> Result<()> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sub) = events.as_ref() else {
            return Err(error("listenEvents must be called first"));
        };
        sub.set_filter(EventFilter {
            kinds: EventKinds::from_bits_truncate(kinds),
            custom_events,
        });
        Ok(())
    }

    /// Answers the ack `id` (from an event) with JSON args and buffers.
    /// Returns false if it was answered already or is unknown.
    #[napi]
    pub fn ack(&self, id: u32, args_json: String, attachments: Vec<Buffer>) -> Result<bool> {
        if attachments.is_empty() {
            // The JSON goes out as it is (checked to be an array).
            let valid = serde_json::from_str::<&serde_json::value::RawValue>(&args_json)
                .is_ok_and(|raw| is_array_text(raw.get()));
            if !valid {
                return Err(invalid("args must be the JSON text of an array"));
            }
            return Ok(ACKS
                .take(id)
                .is_some_and(|ack| ack.send_json(&args_json).is_ok()));
        }
        let args = decode_args(&args_json, attachments)?;
        match ACKS.take(id) {
            Some(ack) => Ok(ack.send(&args).is_ok()),
            None => Ok(false),
        }
    }

    /// Answers several acks in one call: `json` is a JSON array of
    /// `[id, attachments, args]` (`args` an array, with placeholders), the
    /// attachments of every answer end to end in `attachments`. An ack
    /// answered already, or whose socket left, is skipped.
    #[napi]
    pub fn ack_many(&self, json: String, attachments: Vec<Buffer>) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Answer<'a>(u32, usize, #[serde(borrow)] &'a serde_json::value::RawValue);
        let answers: Vec<Answer<'_>> = serde_json::from_str(&json).map_err(|e| {
            invalid(format!(
                "answers must be [id, attachments, args] arrays: {e}"
            ))
        })?;
        if answers.iter().any(|a| !is_array_text(a.2.get())) {
            return Err(invalid(
                "answers must be [id, attachments, args] arrays: args must be an array",
            ));
        }
        let bins: Vec<Bytes> = attachments
            .iter()
            .map(|b| Bytes::copy_from_slice(b))
            .collect();
        let mut at = 0usize;
        for Answer(id, n, raw) in answers {
            let mine = bins
                .get(at..at.saturating_add(n))
                .ok_or_else(|| invalid("attachment counts go past the attachments"))?;
            at += n;
            if n == 0 {
                // No attachments: the JSON goes out as it is.
                if let Some(ack) = ACKS.take(id) {
                    let _ = ack.send_json(raw.get());
                }
                continue;
            }
            let items: Vec<Json> = serde_json::from_str(raw.get()).map_err(invalid)?;
            let args = items
                .into_iter()
                .map(|item| Value::from_json_with_placeholders(item, mine).map_err(invalid))
                .collect::<Result<Vec<Value>>>()?;
            if let Some(ack) = ACKS.take(id) {
                let _ = ack.send(&args);
            }
        }
        Ok(())
    }

    /// Forgets an unanswered ack (its JavaScript function was collected).
    #[napi]
    pub fn release_ack(&self, id: u32) {
        let _ = ACKS.take(id);
    }

    /// Sets the connect hook: `hook(json, done)`; `done(null)` accepts,
    /// `done(reason)` refuses. `null` removes it.
    #[napi(ts_args_type = "hook?: ((json: string, decisionId: number) => void) | null")]
    pub fn set_connect_hook(&self, hook: Option<Function<'_, HookArgs, ()>>) -> Result<()> {
        let Some(hook) = hook else {
            return self.hub.set_connect_hook(None).map_err(action_error);
        };
        let tsfn = Arc::new(hook_tsfn(hook)?);
        self.hub
            .set_connect_hook(Some(hooks::connect_hook(
                move |req: chathub::ConnectRequest| {
                    let mut bins = Vec::new();
                    let body = json!({
                        "ns": req.ns, "sid": req.sid,
                        "auth": req.auth.to_json_with_placeholders(&mut bins),
                        "address": req.remote_addr.map(|a| a.to_string()),
                        "headers": header_object(&req.headers),
                    });
                    call_hook(tsfn.clone(), body.to_string())
                },
            )))
            .map_err(action_error)
    }

    /// Sets the login hook: `hook(json, done)` as for connections.
    #[napi(ts_args_type = "hook?: ((json: string, decisionId: number) => void) | null")]
    pub fn set_login_hook(&self, hook: Option<Function<'_, HookArgs, ()>>) -> Result<()> {
        let Some(hook) = hook else {
            return self.hub.set_login_hook(None).map_err(action_error);
        };
        let tsfn = Arc::new(hook_tsfn(hook)?);
        self.hub
            .set_login_hook(Some(hooks::login_hook(move |req: chathub::LoginRequest| {
                let body = json!({ "ns": req.ns, "sid": req.sid, "name": req.name, "current": req.current });
                call_hook(tsfn.clone(), body.to_string())
            })))
            .map_err(action_error)
    }

    /// Emits `event` with args (JSON array with placeholders + buffers) to
    /// `target` (`socket`, `room`, `lobby`, `namespace`) in `ns`; `to` is the
    /// socket id or the room.
    #[napi]
    pub fn emit(
        &self,
        target: String,
        ns: String,
        to: Option<String>,
        event: String,
        args_json: String,
        attachments: Vec<Buffer>,
    ) -> Result<()> {
        let args = decode_args(&args_json, attachments)?;
        let need = |what: &str| {
            to.clone()
                .ok_or_else(|| invalid(format!("a {what} target needs a {what}")))
        };
        let target = match target.as_str() {
            "socket" => Target::socket(ns, need("socket")?),
            "room" => Target::room(ns, need("room")?),
            "lobby" => Target::lobby(ns),
            "namespace" => Target::namespace(ns),
            other => return Err(invalid(format!("unknown target kind {other:?}"))),
        };
        self.hub.emit(target, &event, args).map_err(action_error)
    }

    /// Emits to every socket in any of `rooms` (all of the namespace when
    /// empty) but the sockets and rooms in `except`.
    #[napi]
    pub fn emit_to(
        &self,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        event: String,
        args_json: String,
        attachments: Vec<Buffer>,
    ) -> Result<()> {
        let args = decode_args(&args_json, attachments)?;
        self.hub
            .emit(Target::rooms(ns, rooms, except), &event, args)
            .map_err(action_error)
    }

    /// Sends `event` to one socket and resolves with its client's answer
    /// (rejects after `timeoutMs`, or when the socket leaves first).
    #[napi(ts_return_type = "Promise<AckAnswer>")]
    #[allow(clippy::too_many_arguments)]
    pub fn emit_with_ack<'env>(
        &self,
        env: &'env Env,
        ns: String,
        sid: String,
        event: String,
        args_json: String,
        attachments: Vec<Buffer>,
        timeout_ms: f64,
    ) -> Result<napi::bindgen_prelude::Object<'env>> {
        let args = decode_args(&args_json, attachments)?;
        if !timeout_ms.is_finite() || timeout_ms <= 0.0 {
            return Err(invalid(
                "the timeout must be a positive number of milliseconds",
            ));
        }
        let timeout = Duration::from_secs_f64((timeout_ms / 1000.0).min(1e9));
        let (deferred, promise) = env.create_deferred::<AckAnswer, _>()?;
        let hub = self.hub.clone();
        let spawned = self.hub.spawn(async move {
            match hub.emit_with_ack(&ns, &sid, &event, args, timeout).await {
                Ok(answer) => {
                    let mut bins = Vec::new();
                    let json = crate::args_json(&answer, &mut bins).to_string();
                    deferred.resolve(move |_| {
                        Ok(AckAnswer {
                            json,
                            buffers: buffers(bins),
                        })
                    });
                }
                Err(e) => deferred.reject(action_error(e)),
            }
        });
        spawned.map_err(action_error)?;
        Ok(promise)
    }

    /// Moves a socket into a room. Resolves once done.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn join<'env>(
        &self,
        env: &'env Env,
        ns: String,
        sid: String,
        room: String,
    ) -> Result<napi::bindgen_prelude::Object<'env>> {
        let hub = self.hub.clone();
        self.promise(env, async move {
            hub.join(&ns, &sid, &room).await.map(|()| None)
        })
    }

    /// Takes a socket out of a room, back to the lobby. Resolves once done.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn leave<'env>(
        &self,
        env: &'env Env,
        ns: String,
        sid: String,
        room: String,
    ) -> Result<napi::bindgen_prelude::Object<'env>> {
        let hub = self.hub.clone();
        self.promise(env, async move {
            hub.leave(&ns, &sid, &room).await.map(|()| None)
        })
    }

    /// Disconnects a socket. Resolves once done.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        ns: String,
        sid: String,
    ) -> Result<napi::bindgen_prelude::Object<'env>> {
        let hub = self.hub.clone();
        self.promise(env, async move {
            hub.disconnect(&ns, &sid).await.map(|()| None)
        })
    }

    /// The rooms a socket of this hub is in now, its own id first (the
    /// core's `Hub::socket_rooms`).
    #[napi]
    pub fn socket_rooms(&self, ns: String, sid: String) -> Result<Vec<String>> {
        self.hub.socket_rooms(&ns, &sid).map_err(action_error)
    }

    /// Who is where: resolves with the listing as a JSON string.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn rooms<'env>(
        &self,
        env: &'env Env,
        ns: String,
    ) -> Result<napi::bindgen_prelude::Object<'env>> {
        let hub = self.hub.clone();
        self.promise(env, async move {
            hub.rooms(&ns)
                .await
                .map(|l| Some(serde_json::to_string(&l).unwrap_or_default()))
        })
    }

    /// Takes over an upgraded connection: duplicates `fd` (the caller then
    /// destroys its own handle), writes back nothing itself; the hub reads
    /// the request head rebuilt from `method`, `url`, `rawHeaders`, then
    /// `head` (bytes Node read past the head), then the socket.
    #[napi]
    pub fn adopt(
        &self,
        fd: i32,
        method: String,
        url: String,
        raw_headers: Vec<String>,
        head: Buffer,
    ) -> Result<()> {
        let preface = preface(&method, &url, &raw_headers, &head)?;
        if fd < 0 {
            return Err(invalid("fd must be a file descriptor"));
        }
        let stream = tcp_from_fd(fd)?;
        // Refuse what is not a connected TCP socket (a pipe, a file).
        let remote = match stream.peer_addr() {
            Ok(addr) => addr,
            Err(e) => {
                return Err(invalid(format!(
                    "fd {fd} is not a connected TCP socket: {e}"
                )));
            }
        };
        // libuv keeps its sockets non-blocking, and the duplicate shares
        // that flag: no system call to set it again on Node's thread.
        self.hub
            .serve_nonblocking_tcp(stream, preface, Some(remote))
            .map_err(action_error)
    }

    /// Serves a connection whose bytes Node holds (TLS): returns a pump;
    /// `onData(buffer | null)` receives the hub's bytes (`null`: end),
    /// `onDrain()` says the pump takes writes again.
    #[napi(
        ts_args_type = "method: string, url: string, rawHeaders: string[], head: Buffer, remote: string | null, onData: (chunk: Buffer | null) => void, onDrain: () => void"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn open_pump(
        &self,
        method: String,
        url: String,
        raw_headers: Vec<String>,
        head: Buffer,
        remote: Option<String>,
        on_data: Function<'_, Option<Buffer>, ()>,
        on_drain: Function<'_, (), ()>,
    ) -> Result<Pump> {
        let preface = preface(&method, &url, &raw_headers, &head)?;
        let remote = remote.and_then(|r| r.parse().ok());
        let data: PumpDataFn = on_data
            .build_threadsafe_function::<Option<Bytes>>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| Ok(ctx.value.map(|b| Buffer::from(b.to_vec()))))?;
        let drain: PumpDrainFn = on_drain
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|_| Ok(()))?;
        let (hub_side, pump_side) = tokio::io::duplex(64 * 1024);
        self.hub
            .serve_connection(hub_side, preface, remote)
            .map_err(action_error)?;
        let (mut reader, mut writer) = tokio::io::split(pump_side);
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<Bytes>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let blocked = Arc::new(AtomicBool::new(false));
        let (pause_tx, mut pause_rx) = watch::channel(false);
        let (read_task, read_abort) = futures_util::future::abortable(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let _ = pause_rx.wait_for(|paused| !paused).await;
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        data.call(None, ThreadsafeFunctionCallMode::NonBlocking);
                        break;
                    }
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        if data.call(Some(chunk), ThreadsafeFunctionCallMode::NonBlocking)
                            != Status::Ok
                        {
                            break;
                        }
                    }
                }
            }
        });
        let (q, b) = (queued.clone(), blocked.clone());
        let (write_task, write_abort) = futures_util::future::abortable(async move {
            while let Some(chunk) = rx.recv().await {
                let Some(chunk) = chunk else {
                    let _ = writer.shutdown().await;
                    break;
                };
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
                let left = q.fetch_sub(chunk.len(), Ordering::AcqRel) - chunk.len();
                if left < PUMP_LOW_WATER && b.swap(false, Ordering::AcqRel) {
                    drain.call((), ThreadsafeFunctionCallMode::NonBlocking);
                }
            }
        });
        self.hub
            .spawn(async move {
                let _ = read_task.await;
            })
            .map_err(action_error)?;
        self.hub
            .spawn(async move {
                let _ = write_task.await;
            })
            .map_err(action_error)?;
        Ok(Pump {
            tx,
            queued,
            blocked,
            pause: pause_tx,
            aborts: vec![read_abort, write_abort],
        })
    }

    /// Answers one HTTP request (long-polling) on the hub; `callback(error,
    /// status, headers, body)` gets the response. The returned handle
    /// cancels it.
    #[napi(
        ts_args_type = "method: string, url: string, rawHeaders: string[], body: Buffer, remote: string | null, callback: (error: string | null, status: number, headers: string[], body: Buffer) => void"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &self,
        method: String,
        url: String,
        raw_headers: Vec<String>,
        body: Buffer,
        remote: Option<String>,
        callback: Function<'_, ResponseArgs, ()>,
    ) -> Result<PendingRequest> {
        let mut builder = http::Request::builder()
            .method(method.as_str())
            .uri(url.as_str());
        for pair in raw_headers.chunks(2) {
            if let [name, value] = pair {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        let req = builder
            .body(Bytes::copy_from_slice(&body))
            .map_err(|e| invalid(format!("bad request: {e}")))?;
        let remote = remote.and_then(|r| r.parse().ok());
        let tsfn: RequestFn = callback
            .build_threadsafe_function::<RequestDone>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| {
                Ok(FnArgs::from(match ctx.value.result {
                    Ok(resp) => {
                        let mut headers = Vec::new();
                        for (name, value) in resp.headers() {
                            headers.push(name.as_str().to_owned());
                            headers.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
                        }
                        let status = u32::from(resp.status().as_u16());
                        (
                            None,
                            status,
                            headers,
                            Buffer::from(resp.into_body().to_vec()),
                        )
                    }
                    Err(e) => (Some(e), 0, Vec::new(), Buffer::from(Vec::new())),
                }))
            })?;
        let hub = self.hub.clone();
        let (task, abort) = futures_util::future::abortable(async move {
            let result = hub
                .handle_request(req, remote)
                .await
                .map_err(|e| e.to_string());
            tsfn.call(
                RequestDone { result },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        self.hub
            .spawn(async move {
                let _ = task.await;
            })
            .map_err(action_error)?;
        Ok(PendingRequest { abort })
    }

    /// Stops the hub gracefully; resolves once it has stopped. Safe twice.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<napi::bindgen_prelude::Object<'env>> {
        // The forwarder ends by itself once the hub closes its subscriptions
        // (after the last events, the disconnects, are delivered).
        let hub = self.hub.clone();
        let (deferred, promise) = env.create_deferred::<(), _>()?;
        // Waiting blocks: do it on a thread of its own, never on Node's.
        std::thread::Builder::new()
            .name("chathub-node-close".into())
            .spawn(move || {
                hub.shutdown();
                deferred.resolve(|_| Ok(()));
            })
            .map_err(error)?;
        Ok(promise)
    }
}

impl NativeHub {
    /// Runs `fut` on the hub's runtime and returns a promise of its result.
    fn promise<'e, F>(&self, env: &'e Env, fut: F) -> Result<napi::bindgen_prelude::Object<'e>>
    where
        F: std::future::Future<Output = std::result::Result<Option<String>, ActionError>>
            + Send
            + 'static,
    {
        let (deferred, promise) = env.create_deferred::<Option<String>, _>()?;
        let spawned = self.hub.spawn(async move {
            match fut.await {
                Ok(v) => deferred.resolve(move |_| Ok(v)),
                Err(e) => deferred.reject(action_error(e)),
            }
        });
        if let Err(e) = spawned {
            return Err(action_error(e));
        }
        Ok(promise)
    }
}

/// A TcpStream of its own over a duplicate of `fd` (the caller keeps `fd`).
#[cfg(unix)]
fn tcp_from_fd(fd: i32) -> Result<std::net::TcpStream> {
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` only reads `fd`; an invalid fd
    // makes it fail with EBADF, which we report.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(error(format!(
            "cannot duplicate fd {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `dup` is a fresh descriptor that nothing else owns; the
    // TcpStream takes ownership and closes it when dropped.
    Ok(unsafe { std::net::TcpStream::from_raw_fd(dup) })
}

/// Descriptors are not handed over where they are not Unix file descriptors.
#[cfg(not(unix))]
fn tcp_from_fd(fd: i32) -> Result<std::net::TcpStream> {
    Err(invalid(format!(
        "fd {fd}: handing a connection over by descriptor needs a Unix system"
    )))
}

/// Whether `text` is the JSON text of an array (a cheap look; the core
/// checks the whole text before it sends it).
fn is_array_text(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// The request head Node parsed, rebuilt, followed by the bytes it read.
fn preface(method: &str, url: &str, raw_headers: &[String], head: &[u8]) -> Result<Bytes> {
    if !raw_headers.len().is_multiple_of(2) {
        return Err(invalid("rawHeaders must hold name/value pairs"));
    }
    let pairs = raw_headers
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()));
    let req = chathub::request_head(method, url, pairs).map_err(action_error)?;
    let mut all = Vec::with_capacity(req.len() + head.len());
    all.extend_from_slice(&req);
    all.extend_from_slice(head);
    Ok(Bytes::from(all))
}

fn hook_tsfn(hook: Function<'_, HookArgs, ()>) -> Result<HookFn> {
    hook.build_threadsafe_function::<HookCall>()
        .weak::<true>()
        .callee_handled::<false>()
        .build_callback(|ctx| {
            let HookCall { json, done } = ctx.value;
            let id = DECISIONS.insert(done);
            Ok((json, Some(id)).into())
        })
}

/// Calls a JavaScript hook and waits for its `done`. The hub bounds the
/// wait (`hookTimeout`); an unanswered decision is forgotten then.
fn call_hook(tsfn: Arc<HookFn>, json: String) -> chathub::hooks::HookFuture {
    Box::pin(async move {
        let (done, answer) = oneshot::channel();
        let status = tsfn.call(
            HookCall { json, done },
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        if status != Status::Ok {
            return Err(hooks::FAILED.to_owned());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(hooks::FAILED.to_owned()))
    })
}

// ---------------------------------------------------------------------------
// Pending acks and hook decisions, answered from JavaScript by id.

/// A table of values waiting for JavaScript, by id.
struct Pending<T> {
    next: AtomicUsize,
    map: std::sync::LazyLock<Mutex<std::collections::HashMap<u32, T>>>,
}

impl<T> Pending<T> {
    const fn new() -> Self {
        Pending {
            next: AtomicUsize::new(1),
            map: std::sync::LazyLock::new(|| Mutex::new(std::collections::HashMap::new())),
        }
    }

    fn insert(&self, v: T) -> u32 {
        let id = (self.next.fetch_add(1, Ordering::Relaxed) % (u32::MAX as usize - 1) + 1) as u32;
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, v);
        id
    }

    fn take(&self, id: u32) -> Option<T> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }
}

static ACKS: Pending<Ack> = Pending::new();
static DECISIONS: Pending<oneshot::Sender<std::result::Result<(), String>>> = Pending::new();

/// Answers a hook call: `reason` null accepts, a string refuses.
#[napi]
pub fn hook_decision(id: u32, reason: Option<String>) -> bool {
    match DECISIONS.take(id) {
        Some(done) => done.send(reason.map_or(Ok(()), Err)).is_ok(),
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Pumps and pending requests.

/// Below this many queued bytes a blocked pump asks for more.
const PUMP_LOW_WATER: usize = 64 * 1024;
/// Above this many queued bytes `write` asks the caller to wait.
const PUMP_HIGH_WATER: usize = 256 * 1024;

/// A byte pump between a Node socket (TLS) and the hub.
#[napi]
#[derive(Debug)]
pub struct Pump {
    tx: mpsc::UnboundedSender<Option<Bytes>>,
    queued: Arc<AtomicUsize>,
    blocked: Arc<AtomicBool>,
    pause: watch::Sender<bool>,
    aborts: Vec<AbortHandle>,
}

#[napi]
impl Pump {
    /// Writes bytes read from the Node socket toward the hub. Returns
    /// false when the caller should pause until `onDrain`.
    #[napi]
    pub fn write(&self, chunk: Buffer) -> bool {
        let len = chunk.len();
        let total = self.queued.fetch_add(len, Ordering::AcqRel) + len;
        if self.tx.send(Some(Bytes::copy_from_slice(&chunk))).is_err() {
            return true;
        }
        if total >= PUMP_HIGH_WATER {
            self.blocked.store(true, Ordering::Release);
            false
        } else {
            true
        }
    }

    /// The Node socket ended: end the hub's side too.
    #[napi]
    pub fn end(&self) {
        let _ = self.tx.send(None);
    }

    /// Stops sending to Node (its socket is full) until `resume`.
    #[napi]
    pub fn pause(&self) {
        self.pause.send_replace(true);
    }

    /// Resumes sending to Node.
    #[napi]
    pub fn resume(&self) {
        self.pause.send_replace(false);
    }

    /// Tears the pump down at once.
    #[napi]
    pub fn destroy(&self) {
        for a in &self.aborts {
            a.abort();
        }
    }
}

/// A request in flight; `cancel()` drops it on the hub's side.
#[napi]
#[derive(Debug)]
pub struct PendingRequest {
    abort: AbortHandle,
}

#[napi]
impl PendingRequest {
    /// Cancels the request (Node's response closed early).
    #[napi]
    pub fn cancel(&self) {
        self.abort.abort();
    }
}

/// The `EventKinds` bits, by event name, for `hub.js`.
#[napi]
pub fn event_kinds() -> std::collections::HashMap<String, u32> {
    [
        ("connect", EventKinds::CONNECT),
        ("login", EventKinds::LOGIN),
        ("join", EventKinds::JOIN),
        ("message", EventKinds::MESSAGE),
        ("event", EventKinds::CUSTOM),
        ("rejected", EventKinds::REJECTED),
        ("disconnect", EventKinds::DISCONNECT),
        ("cluster", EventKinds::CLUSTER),
        ("limit", EventKinds::LIMIT),
        ("presence", EventKinds::PRESENCE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.bits()))
    .collect()
}

// ---------------------------------------------------------------------------
// Logs.

/// `(level, target, message)` for the log listener.
type LogArgs = FnArgs<(u32, String, String)>;

/// The log listener: weak (it never keeps the process alive), and a full
/// queue drops lines rather than make a hub thread wait for JavaScript.
type LogFn = ThreadsafeFunction<chathub::logs::LogRecord, (), LogArgs, Status, false, true, 1024>;

fn log_error(e: chathub::logs::LogError) -> Error {
    match e {
        chathub::logs::LogError::Filter { .. } => invalid(e),
        _ => error(e),
    }
}

/// Writes the hub's logs to standard error (`filter` as `RUST_LOG`;
/// none: `RUST_LOG`, else `info`). Once per process.
#[napi]
pub fn log_to_stderr(filter: Option<String>) -> Result<()> {
    let spec =
        filter.unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
    chathub::logs::to_stderr(&spec).map_err(log_error)
}

/// Writes the hub's logs to standard error as one JSON object per line
/// (`filter` as `logToStderr`). Once per process.
#[napi]
pub fn log_to_stderr_json(filter: Option<String>) -> Result<()> {
    let spec =
        filter.unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
    chathub::logs::to_stderr_as(&spec, chathub::logs::LogFormat::Json).map_err(log_error)
}

/// Hands the hub's logs to `listener(level, target, message)` on Node's
/// thread (`filter` as `logToStderr`). Once per process.
#[napi(
    ts_args_type = "filter: string | null, listener: (level: number, target: string, message: string) => void"
)]
pub fn log_to_callback(filter: Option<String>, listener: Function<'_, LogArgs, ()>) -> Result<()> {
    let spec =
        filter.unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
    let tsfn: LogFn = listener
        .build_threadsafe_function::<chathub::logs::LogRecord>()
        .weak::<true>()
        .callee_handled::<false>()
        .max_queue_size::<1024>()
        .build_callback(|ctx| {
            let r = ctx.value;
            Ok((r.level, r.target, r.message).into())
        })?;
    let sink = std::sync::Arc::new(move |r: chathub::logs::LogRecord| {
        let _ = tsfn.call(r, ThreadsafeFunctionCallMode::NonBlocking);
    });
    chathub::logs::to_callback(&spec, sink).map_err(log_error)
}
