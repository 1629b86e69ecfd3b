//! How a hub is set up: [`HubConfig`], and its text form by key
//! ([`HubConfig::set`], [`HubConfig::keys`]: the `schema` module).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::chat::ChatLimits;
use crate::error::StartError;
use crate::net::tls::Pem;

mod schema;

pub use schema::{ConfigKey, ConfigKind};

/// How much one socket may send. Each event costs one event token and its
/// size in byte tokens; tokens come back at the per-second rate, up to the
/// burst. An event with no token left is dropped and its sender gets
/// `Error: too many events, slow down` (at most once a second); after
/// `strikes` dropped events in a row the socket is disconnected (reason
/// `flood`). A rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// Events per second, sustained. Default 100.
    pub events_per_sec: u32,
    /// Events at once above the rate. Default 200.
    pub event_burst: u32,
    /// Bytes per second, sustained. Default 1,000,000.
    pub bytes_per_sec: u64,
    /// Bytes at once above the rate. Default 2,000,000.
    pub byte_burst: u64,
    /// Dropped events in a row before a disconnect. Default 50.
    pub strikes: u32,
    /// No effect since the engine of our own (a socket's events now wait
    /// in its connection, which reads no further while a hook runs, instead
    /// of in a queue); kept so that existing configs still build.
    pub max_queued_events: usize,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            events_per_sec: 100,
            event_burst: 200,
            bytes_per_sec: 1_000_000,
            byte_burst: 2_000_000,
            strikes: 50,
            max_queued_events: 1024,
        }
    }
}

impl FloodLimits {
    /// No limit at all (tests, trusted clients).
    pub fn off() -> FloodLimits {
        FloodLimits {
            events_per_sec: 0,
            event_burst: 0,
            bytes_per_sec: 0,
            byte_burst: 0,
            strikes: 0,
            max_queued_events: usize::MAX,
        }
    }
}

/// Aggregate limits per client address, over all its sockets: events and
/// bytes per second, as token buckets like [`FloodLimits`]. An event past
/// its address's share is dropped and counts as a strike against the
/// socket that sent it (so an address flooding through many sockets gets
/// them cut, one by one, after `FloodLimits::strikes`). A rate of 0 turns
/// that limit off; behind a proxy, see [`HubConfig::trusted_proxies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpLimits {
    /// Events per second from one address. Default 500.
    pub events_per_sec: u32,
    /// Events at once above the rate. Default 1,000.
    pub event_burst: u32,
    /// Bytes per second from one address. Default 5,000,000.
    pub bytes_per_sec: u64,
    /// Bytes at once above the rate. Default 10,000,000.
    pub byte_burst: u64,
}

impl Default for IpLimits {
    fn default() -> Self {
        IpLimits {
            events_per_sec: 500,
            event_burst: 1000,
            bytes_per_sec: 5_000_000,
            byte_burst: 10_000_000,
        }
    }
}

impl IpLimits {
    /// No aggregate limit.
    pub fn off() -> IpLimits {
        IpLimits {
            events_per_sec: 0,
            event_burst: 0,
            bytes_per_sec: 0,
            byte_burst: 0,
        }
    }

    /// Whether both rates are off.
    pub fn is_off(&self) -> bool {
        self.events_per_sec == 0 && self.bytes_per_sec == 0
    }

    /// As flood limits (without strikes: the sockets take those).
    pub(crate) fn as_flood(&self) -> FloodLimits {
        FloodLimits {
            events_per_sec: self.events_per_sec,
            event_burst: self.event_burst,
            bytes_per_sec: self.bytes_per_sec,
            byte_burst: self.byte_burst,
            strikes: 0,
            max_queued_events: usize::MAX,
        }
    }
}

/// Connection state recovery, as socket.io-client 4.6+ speaks it: a client
/// whose transport dropped (a network change, a phone asleep; not a clean
/// disconnect) and that comes back within [`max_disconnection`](Self::max_disconnection)
/// keeps its socket id, its rooms (in the chat: its name and room; no
/// `login` prompt, and `User NAME is back` to the others) and gets every
/// broadcast it missed, in order, before any new packet.
///
/// Off by default, as in socket.io: with it on, every event the hub sends
/// without an ack id carries one more argument, the offset, last (the
/// client keeps it to ask for what it missed). socket.io-client's
/// listeners do not see a difference for the chat's events (they read
/// their first arguments); a client with fixed-arity handlers
/// (python-socketio) or one that reads the raw packets does.
///
/// Memory: per namespace, the log of its broadcasts (at most
/// `max_packets` entries and `max_bytes` of frames, entries older than the
/// window plus one ping interval and timeout dropped) and the sessions of
/// dropped sockets (at most `max_sessions`, each the socket's id, rooms and
/// chat name, about 200 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Recovery on the chat's namespaces. Default `false`.
    pub chat: bool,
    /// Recovery on the host's namespaces (rooms are restored; the host
    /// sees `recovered` in its connect event). Default `false`.
    pub host: bool,
    /// How long a dropped socket may take to come back. Default 2 minutes
    /// (socket.io's default).
    pub max_disconnection: Duration,
    /// Most broadcasts kept per namespace. Default 10,000.
    pub max_packets: usize,
    /// Most bytes of broadcasts kept per namespace. Default 16 MiB.
    pub max_bytes: usize,
    /// Most dropped sockets kept per namespace (the oldest go first).
    /// Default 100,000.
    pub max_sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            chat: false,
            host: false,
            max_disconnection: Duration::from_secs(120),
            max_packets: 10_000,
            max_bytes: 16 << 20,
            max_sessions: 100_000,
        }
    }
}

impl RecoveryConfig {
    /// Recovery on for the chat's and the host's namespaces, with the
    /// default bounds.
    pub fn on() -> RecoveryConfig {
        RecoveryConfig {
            chat: true,
            host: true,
            ..Default::default()
        }
    }
}

/// Everything a hub can be told before it starts. Build one with
/// `HubConfig::default()` and change the fields you need:
///
/// ```
/// let config = chathub::HubConfig {
///     bind: Some("127.0.0.1:0".parse().unwrap()),
///     namespaces: vec!["/chat".into()],
///     ..Default::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where the hub listens. `None`: no listener of its own; connections
    /// come from the host ([`Hub::serve_connection`](crate::Hub::serve_connection),
    /// [`Hub::handle_request`](crate::Hub::handle_request)). Port 0 picks a
    /// free port ([`Hub::local_addr`](crate::Hub::local_addr) tells which).
    /// Default `127.0.0.1:3000`.
    pub bind: Option<SocketAddr>,
    /// The namespaces the chat runs on. Default `/` and `/chat`.
    pub namespaces: Vec<String>,
    /// Namespaces the host owns: plain Socket.IO without any chat rule
    /// (no prompt, no lobby, no notices); every event goes to the host,
    /// and a socket may be in any number of rooms. Default none.
    pub host_namespaces: Vec<String>,
    /// Engine.IO ping interval. Default 25 s (as socket.io).
    pub ping_interval: Duration,
    /// How long to wait for a pong before closing. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a client may take to connect to a namespace after the
    /// Engine.IO handshake. Default 45 s (as socket.io).
    pub connect_timeout: Duration,
    /// Largest accepted packet, in bytes (socket.io's `maxHttpBufferSize`).
    /// A larger one closes that connection. Default 1,000,000.
    pub max_payload: u64,
    /// How many packets may wait to be written to one socket. Past it,
    /// packets for that socket are dropped (see the README's operations
    /// section). Default 4,096 (128, socketioxide's default, dropped
    /// replies under an ordinary burst).
    pub socket_buffer: usize,
    /// A connection whose writes have been blocked this long (its client
    /// reads nothing) is cut; its sockets leave with reason `slow
    /// consumer`. Default 10 s.
    pub slow_consumer_timeout: Duration,
    /// Per-socket flood limits (see [`FloodLimits`]).
    pub flood: FloodLimits,
    /// Per-address aggregate limits (see [`IpLimits`]).
    pub ip_limits: IpLimits,
    /// Proxies (their addresses) whose `X-Forwarded-For` header names the
    /// client: hooks and per-address limits then see the client's address.
    /// Default none: the peer address is the client's.
    pub trusted_proxies: Vec<IpAddr>,
    /// Time a client has to send a request's head, and a long-polling
    /// `POST` its whole body; past it, the connection is cut. Default 30 s.
    pub request_timeout: Duration,
    /// Most connections at once from one IP address, on the hub's own
    /// listener and on connections a host hands over (0: no limit).
    /// Default 256: enough for a school or an office behind one NAT, far
    /// below what would exhaust the process's descriptors.
    pub max_connections_per_ip: usize,
    /// Limits on names, rooms and messages.
    pub limits: ChatLimits,
    /// Origins allowed besides the page's own (`*` for any), for
    /// long-polling (CORS) and WebSocket alike. Empty (the default): only
    /// same-origin pages may connect; requests without an `Origin` header
    /// (non-browser clients) are always allowed.
    pub cors_origins: Vec<String>,
    /// Whether `GET /` serves the chat page. Default `true`.
    pub serve_page: bool,
    /// A file to serve at `GET /` instead of the built-in chat page.
    pub page_path: Option<PathBuf>,
    /// The `dist` folder of the npm package `socket.io-client`, whose
    /// bundle is served at `/socket.io/socket.io.js` (and `.min.js`,
    /// `.esm.min.js`, maps). `None`: the environment variable
    /// `CHATHUB_CLIENT_DIST`, then where `make install` puts it
    /// (`share/chathub/socket.io-client` under the prefix of the library or
    /// program that holds the hub: `PREFIX/lib/libchathub.so` or
    /// `PREFIX/bin/…` look in `PREFIX/share/…`), then
    /// `node_modules/socket.io-client/dist` in the working directory or
    /// above it (never a path of the machine the library was built on). When none is found the bundle answers 404,
    /// a warning is logged at start, and
    /// [`Hub::client_bundle`](crate::Hub::client_bundle) says `None`.
    pub client_dist: Option<PathBuf>,
    /// A Redis URL (`redis://host:port/db`, `redis://:password@host:port`)
    /// that joins this hub to every other hub on the same Redis and
    /// [`redis_prefix`](Self::redis_prefix): they act as one. `None` (the
    /// default): the hub runs alone, in memory. See [`crate::cluster`].
    pub redis_url: Option<String>,
    /// Whether [`redis_url`](Self::redis_url) is a node of a Redis Cluster
    /// (Redis 7 or later). The hubs then publish with sharded pub/sub
    /// (`SPUBLISH`/`SSUBSCRIBE`): each room's channel lives on the shard
    /// that owns its hash slot, so the cluster spreads the rooms' lines
    /// over its shards; the client learns the other nodes from this one.
    /// Default `false`: one Redis server (or a proxy in front of many).
    /// See docs/SCALING.md.
    pub redis_cluster: bool,
    /// The prefix of the Redis channels, so that several clusters can share
    /// one Redis. Default `chathub`.
    pub redis_prefix: String,
    /// Worker threads of the hub's runtime. `None`: one per CPU.
    pub worker_threads: Option<usize>,
    /// Capacity of each host event subscription's queue. Default 10,000.
    pub event_queue_capacity: usize,
    /// How long a connect or login hook may take before the hub refuses
    /// the connection or login. Default 10 s.
    pub hook_timeout: Duration,
    /// How long [`Hub::shutdown`](crate::Hub::shutdown) may take. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Connection state recovery (see [`RecoveryConfig`]). Default off.
    pub recovery: RecoveryConfig,
    /// How long Redis may be away before `GET /ready` says the hub is not
    /// ready (load balancers then send new clients elsewhere; the hub keeps
    /// serving its own sockets). Default 10 s.
    pub redis_unready_after: Duration,
    /// The certificate chain (PEM: the server's certificate first, then
    /// the intermediates) that turns the hub's own listeners into HTTPS
    /// and WSS, with [`tls_key`](Self::tls_key); ALPN `http/1.1`.
    /// Re-read by [`Hub::reload_tls`](crate::Hub::reload_tls). Default
    /// none: plain HTTP. (Connections a host hands over are served as
    /// they come: the host did their TLS, if any.)
    pub tls_cert: Option<Pem>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of
    /// [`tls_cert`](Self::tls_cert). Both or neither.
    pub tls_key: Option<Pem>,
    /// CA certificates (a PEM file) that a `rediss://` Redis's certificate
    /// must chain to, instead of the system's roots (for a Redis with a
    /// private CA). Default none: the system's roots.
    pub redis_tls_ca: Option<PathBuf>,
    /// A path on the hub's listener (and on connections a host hands over)
    /// where `GET` answers the hub's figures as Prometheus text
    /// (`/metrics`). `None` (the default): not served there. See
    /// [`Hub::metrics_text`](crate::Hub::metrics_text) and the README's
    /// operations section.
    pub metrics_path: Option<String>,
    /// An address of its own where `GET /metrics` (or
    /// [`metrics_path`](Self::metrics_path) when set) answers the same
    /// text, out of the clients' reach (`127.0.0.1:9100`; port 0 picks a
    /// free port: [`Hub::metrics_addr`](crate::Hub::metrics_addr)). `None`
    /// (the default): no such listener.
    pub metrics_bind: Option<SocketAddr>,
    /// How long the hub gathers what it publishes to Redis after a send
    /// before the next one, so that a busy hub sends many lines in one
    /// pipeline (Redis then pays its system calls once for all of them).
    /// The first line after a quiet spell goes at once; lines then wait at
    /// most this long. `0`: each send as soon as the previous one is
    /// answered. Default 50 ms. See docs/SCALING.md.
    pub redis_batch: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
            namespaces: vec!["/".into(), "/chat".into()],
            host_namespaces: Vec::new(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(45),
            max_payload: 1_000_000,
            socket_buffer: 4096,
            slow_consumer_timeout: Duration::from_secs(10),
            flood: FloodLimits::default(),
            ip_limits: IpLimits::default(),
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_connections_per_ip: 256,
            limits: ChatLimits::default(),
            cors_origins: Vec::new(),
            serve_page: true,
            page_path: None,
            client_dist: None,
            redis_url: None,
            redis_cluster: false,
            redis_prefix: "chathub".into(),
            worker_threads: None,
            event_queue_capacity: 10_000,
            hook_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            recovery: RecoveryConfig::default(),
            redis_unready_after: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
            redis_tls_ca: None,
            metrics_path: None,
            metrics_bind: None,
            redis_batch: Duration::from_millis(50),
        }
    }
}

impl HubConfig {
    /// Checks the config; [`Hub::start`](crate::Hub::start) does this too.
    pub fn validate(&self) -> Result<(), StartError> {
        let bad = |msg: String| Err(StartError::InvalidConfig(msg));
        if self.namespaces.is_empty() && self.host_namespaces.is_empty() {
            return bad("at least one namespace is needed".into());
        }
        let all: Vec<&String> = self
            .namespaces
            .iter()
            .chain(&self.host_namespaces)
            .collect();
        for (i, ns) in all.iter().enumerate() {
            if !ns.starts_with('/') {
                return bad(format!("namespace {ns:?} must start with '/'"));
            }
            if ns.len() > 1 && ns.ends_with('/') {
                return bad(format!("namespace {ns:?} must not end with '/'"));
            }
            if ns
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '?')
            {
                return bad(format!(
                    "namespace {ns:?} must not contain spaces, control characters, ',' or '?'"
                ));
            }
            if all[..i].contains(ns) {
                return bad(format!("namespace {ns:?} is listed twice"));
            }
        }
        for (name, d) in [
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("connect_timeout", self.connect_timeout),
            ("hook_timeout", self.hook_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
            ("slow_consumer_timeout", self.slow_consumer_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be more than zero"));
            }
        }
        if self.max_payload < 64 {
            return bad("max_payload must be at least 64 bytes".into());
        }
        let l = &self.limits;
        if l.max_name_len == 0 || l.max_room_len == 0 || l.max_message_len == 0 {
            return bad("the name, room and message limits must be more than zero".into());
        }
        let f = &self.flood;
        let ip = &self.ip_limits;
        if (f.events_per_sec > 0 && f.event_burst == 0)
            || (f.bytes_per_sec > 0 && f.byte_burst == 0)
            || (ip.events_per_sec > 0 && ip.event_burst == 0)
            || (ip.bytes_per_sec > 0 && ip.byte_burst == 0)
        {
            return bad("a flood limit with a rate needs a burst of at least 1".into());
        }
        if f.max_queued_events == 0 {
            return bad("flood.max_queued_events must be more than zero".into());
        }
        if self.socket_buffer == 0 {
            return bad("socket_buffer must be more than zero".into());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return bad("redis_prefix must be a non-empty word".into());
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://")
                || url.starts_with("unix://"))
        {
            return bad("redis_url must start with redis://, rediss:// or unix://".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together: give both or neither".into());
        }
        if self.redis_cluster && self.redis_url.is_none() {
            return bad("redis_cluster needs a redis_url (a node of the cluster)".into());
        }
        if self.redis_cluster
            && self
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("redis+unix://") || u.starts_with("unix://"))
        {
            return bad("redis_cluster needs a TCP redis_url (redis:// or rediss://)".into());
        }
        if self.redis_tls_ca.is_some()
            && !self
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"))
        {
            return bad("redis_tls_ca is for a rediss:// redis_url".into());
        }
        if self.redis_batch > Duration::from_secs(1) {
            return bad("redis_batch must be at most 1 s (1000 ms)".into());
        }
        if self.worker_threads == Some(0) {
            return bad("worker_threads must be more than zero".into());
        }
        let r = &self.recovery;
        if (r.chat || r.host)
            && (r.max_disconnection.is_zero()
                || r.max_packets == 0
                || r.max_bytes == 0
                || r.max_sessions == 0)
        {
            return bad(
                "recovery's max_disconnection, max_packets, max_bytes and max_sessions must be more than zero"
                    .into(),
            );
        }
        if self.event_queue_capacity == 0 {
            return bad("event_queue_capacity must be more than zero".into());
        }
        if let Some(p) = &self.metrics_path {
            let reserved = ["/", "/health", "/ready", "/socket.io"];
            if !p.starts_with('/')
                || p.bytes().any(|b| {
                    b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#'
                })
            {
                return bad(format!(
                    "metrics_path {p:?} must start with '/' and hold no spaces, '?' or '#'"
                ));
            }
            if reserved.contains(&p.as_str()) || p.starts_with("/socket.io/") {
                return bad(format!(
                    "metrics_path {p:?} is taken by the hub (/, /health, /ready, /socket.io/)"
                ));
            }
        }
        for o in &self.cors_origins {
            if o != "*" && http::HeaderValue::from_str(o).is_err() {
                return bad(format!("CORS origin {o:?} is not a valid header value"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_socket_io() {
        let c = HubConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_payload, 1_000_000);
        assert_eq!(c.namespaces, ["/", "/chat"]);
        assert_eq!(c.limits.max_name_len, 64);
    }

    #[test]
    fn bad_namespaces_are_refused() {
        for ns in ["chat", "/chat/", "/a b", "/a,b"] {
            let c = HubConfig {
                namespaces: vec![ns.into()],
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{ns}");
        }
        let c = HubConfig {
            namespaces: vec!["/a".into(), "/a".into()],
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut c = HubConfig::default();
        c.limits.max_message_len = 0;
        assert!(c.validate().is_err());
        let c = HubConfig {
            ping_interval: Duration::ZERO,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_redis_batch_window_over_a_second_is_refused() {
        let mut c = HubConfig::default();
        c.set("redis_batch_ms", "0").unwrap();
        assert!(c.validate().is_ok());
        c.set("redis_batch_ms", "1000").unwrap();
        assert!(c.validate().is_ok());
        c.set("redis_batch_ms", "1001").unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid hub config: redis_batch must be at most 1 s (1000 ms)"
        );
    }
}
