//! The text form of [`HubConfig`]: every setting a host can change, by
//! name, with its value as text. One table, here, for the faces (C's
//! `chathub_config_set`, …) to read instead of restating the fields.
//!
//! Keys are the fields' names in snake_case; a field of a nested struct is
//! `struct.field` (`flood.events_per_sec`, `limits.max_name_len`,
//! `recovery.max_packets`); a duration is in milliseconds and its key ends
//! in `_ms` (`ping_interval_ms`). [`HubConfig::keys`] lists them all.
//!
//! Parsing checks only the form of the text (a number, a bool, an
//! address); whether the values make a usable hub is for
//! [`HubConfig::validate`], as always.

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::HubConfig;
use crate::error::ConfigError;

/// The form of a key's value, as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigKind {
    /// `true` or `false`; also `1`/`0`, `on`/`off`, `yes`/`no`, in any case.
    Bool,
    /// A whole number in decimal (`4096`), from 0 to the field's maximum.
    Integer,
    /// A duration: a whole number of milliseconds (`25000`).
    Milliseconds,
    /// Text, taken as it is. Where the field is optional, `""` means none.
    String,
    /// Items separated by commas (`/a,/b`), spaces around them ignored; the
    /// list replaces the one there was. `""` is the empty list.
    List,
    /// A socket address, `IP:PORT` (`127.0.0.1:3000`, `[::1]:0`); `""`
    /// means none.
    Address,
}

impl ConfigKind {
    /// Its name: `"bool"`, `"integer"`, `"milliseconds"`, `"string"`,
    /// `"list"` or `"address"`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigKind::Bool => "bool",
            ConfigKind::Integer => "integer",
            ConfigKind::Milliseconds => "milliseconds",
            ConfigKind::String => "string",
            ConfigKind::List => "list",
            ConfigKind::Address => "address",
        }
    }
}

impl Display for ConfigKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One settable key of [`HubConfig`]: its name, the form of its value and
/// what it sets. [`HubConfig::keys`] lists them.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    name: &'static str,
    kind: ConfigKind,
    doc: &'static str,
    set: fn(&mut HubConfig, &str) -> Result<(), Bad>,
    get: fn(&HubConfig) -> String,
}

impl ConfigKey {
    /// The key (`ping_interval_ms`, `flood.events_per_sec`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The form of its value.
    pub fn kind(&self) -> ConfigKind {
        self.kind
    }

    /// What it sets, in one line (the field's documentation says more).
    pub fn doc(&self) -> &'static str {
        self.doc
    }
}

/// Text that is not of a key's form: the text at fault (an item, for a
/// list) and what it should have been.
#[derive(Debug)]
struct Bad {
    text: String,
    expected: String,
}

fn bad(text: &str, expected: impl Into<String>) -> Bad {
    Bad {
        text: text.to_owned(),
        expected: expected.into(),
    }
}

/// The text form of a field's type: its kind, how to read it, how to
/// write it back (so that `parse(show(x)) == x`).
trait Text: Sized {
    const KIND: ConfigKind;
    fn parse(text: &str) -> Result<Self, Bad>;
    fn show(&self) -> String;
}

impl Text for bool {
    const KIND: ConfigKind = ConfigKind::Bool;

    fn parse(text: &str) -> Result<bool, Bad> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            _ => Err(bad(text, "true or false (or 1/0, on/off, yes/no)")),
        }
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

/// Decimal digits only (no sign, no exponent), spaces around ignored.
fn digits<T: FromStr>(text: &str) -> Option<T> {
    let digits = text.trim();
    let only_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    only_digits.then(|| digits.parse().ok()).flatten()
}

/// The unsigned integer types of the fields.
macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl Text for $t {
            const KIND: ConfigKind = ConfigKind::Integer;

            fn parse(text: &str) -> Result<$t, Bad> {
                digits(text)
                    .ok_or_else(|| bad(text, format!("a whole number from 0 to {}", <$t>::MAX)))
            }

            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

whole_number!(u32, u64, usize);

/// `worker_threads`: 0 is none (one per CPU).
impl Text for Option<usize> {
    const KIND: ConfigKind = ConfigKind::Integer;

    fn parse(text: &str) -> Result<Option<usize>, Bad> {
        usize::parse(text).map(|n| (n > 0).then_some(n))
    }

    fn show(&self) -> String {
        self.unwrap_or(0).to_string()
    }
}

impl Text for Duration {
    const KIND: ConfigKind = ConfigKind::Milliseconds;

    fn parse(text: &str) -> Result<Duration, Bad> {
        digits(text)
            .map(Duration::from_millis)
            .ok_or_else(|| bad(text, "a number of milliseconds"))
    }

    fn show(&self) -> String {
        self.as_millis().to_string()
    }
}

impl Text for String {
    const KIND: ConfigKind = ConfigKind::String;

    fn parse(text: &str) -> Result<String, Bad> {
        Ok(text.to_owned())
    }

    fn show(&self) -> String {
        self.clone()
    }
}

impl Text for Option<String> {
    const KIND: ConfigKind = ConfigKind::String;

    fn parse(text: &str) -> Result<Option<String>, Bad> {
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }

    fn show(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

impl Text for Option<PathBuf> {
    const KIND: ConfigKind = ConfigKind::String;

    fn parse(text: &str) -> Result<Option<PathBuf>, Bad> {
        Ok((!text.is_empty()).then(|| PathBuf::from(text)))
    }

    fn show(&self) -> String {
        self.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// `tls_cert`, `tls_key`: a PEM file; `""` is none. (PEM bytes are set
/// on the field itself; they read back as `(PEM in memory)`.)
impl Text for Option<crate::Pem> {
    const KIND: ConfigKind = ConfigKind::String;

    fn parse(text: &str) -> Result<Option<crate::Pem>, Bad> {
        Ok(crate::net::tls::file(std::path::Path::new(text)))
    }

    fn show(&self) -> String {
        crate::net::tls::describe(self)
    }
}

/// `bind`: `""` is none.
impl Text for Option<SocketAddr> {
    const KIND: ConfigKind = ConfigKind::Address;

    fn parse(text: &str) -> Result<Option<SocketAddr>, Bad> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| bad(text, "an address like 127.0.0.1:3000 (or \"\" for none)"))
    }

    fn show(&self) -> String {
        self.map(|a| a.to_string()).unwrap_or_default()
    }
}

/// The items of a comma-separated list, spaces around them trimmed.
fn items(text: &str) -> Result<Vec<&str>, Bad> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| match item.trim() {
            "" => Err(bad(text, "a comma-separated list without empty items")),
            item => Ok(item),
        })
        .collect()
}

impl Text for Vec<String> {
    const KIND: ConfigKind = ConfigKind::List;

    fn parse(text: &str) -> Result<Vec<String>, Bad> {
        Ok(items(text)?.into_iter().map(str::to_owned).collect())
    }

    fn show(&self) -> String {
        self.join(",")
    }
}

impl Text for Vec<IpAddr> {
    const KIND: ConfigKind = ConfigKind::List;

    fn parse(text: &str) -> Result<Vec<IpAddr>, Bad> {
        items(text)?
            .into_iter()
            .map(|item| item.parse().map_err(|_| bad(item, "an IP address")))
            .collect()
    }

    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(ToString::to_string).collect();
        items.join(",")
    }
}

/// The kind of the field that `field` reaches.
const fn kind_of<T: Text>(_field: fn(&HubConfig) -> &T) -> ConfigKind {
    T::KIND
}

/// One entry of [`KEYS`]: the key, the field it sets (a path in
/// [`HubConfig`]; the kind and the text form follow from the field's type)
/// and its doc line.
macro_rules! key {
    ($name:literal, $($field:ident).+, $doc:literal) => {
        ConfigKey {
            name: $name,
            kind: kind_of(|c| &c.$($field).+),
            doc: $doc,
            set: |c, text| {
                c.$($field).+ = Text::parse(text)?;
                Ok(())
            },
            get: |c| Text::show(&c.$($field).+),
        }
    };
}

/// Every settable key, in the order of [`HubConfig`]'s fields.
static KEYS: &[ConfigKey] = &[
    key!(
        "bind",
        bind,
        "where the hub listens, IP:PORT (port 0: any free port); \"\": no listener of its own"
    ),
    key!("namespaces", namespaces, "the namespaces the chat runs on"),
    key!(
        "host_namespaces",
        host_namespaces,
        "namespaces the host owns: plain Socket.IO, every event to the host"
    ),
    key!("ping_interval_ms", ping_interval, "Engine.IO ping interval"),
    key!(
        "ping_timeout_ms",
        ping_timeout,
        "how long to wait for a pong before closing"
    ),
    key!(
        "connect_timeout_ms",
        connect_timeout,
        "how long a client may take to join a namespace after the handshake"
    ),
    key!(
        "max_payload",
        max_payload,
        "largest accepted packet, in bytes; a larger one closes its connection"
    ),
    key!(
        "socket_buffer",
        socket_buffer,
        "packets that may wait to be written to one socket before more are dropped"
    ),
    key!(
        "slow_consumer_timeout_ms",
        slow_consumer_timeout,
        "how long a connection's writes may stay blocked before it is cut"
    ),
    key!(
        "flood.events_per_sec",
        flood.events_per_sec,
        "events per second one socket may send (0: no limit)"
    ),
    key!(
        "flood.event_burst",
        flood.event_burst,
        "events one socket may send at once above the rate"
    ),
    key!(
        "flood.bytes_per_sec",
        flood.bytes_per_sec,
        "bytes per second one socket may send (0: no limit)"
    ),
    key!(
        "flood.byte_burst",
        flood.byte_burst,
        "bytes one socket may send at once above the rate"
    ),
    key!(
        "flood.strikes",
        flood.strikes,
        "dropped events in a row before the socket is disconnected (0: never)"
    ),
    key!(
        "flood.max_queued_events",
        flood.max_queued_events,
        "no effect any more; kept so that existing configs still set it"
    ),
    key!(
        "ip_limits.events_per_sec",
        ip_limits.events_per_sec,
        "events per second from one client address, over all its sockets (0: no limit)"
    ),
    key!(
        "ip_limits.event_burst",
        ip_limits.event_burst,
        "events from one client address at once above the rate"
    ),
    key!(
        "ip_limits.bytes_per_sec",
        ip_limits.bytes_per_sec,
        "bytes per second from one client address, over all its sockets (0: no limit)"
    ),
    key!(
        "ip_limits.byte_burst",
        ip_limits.byte_burst,
        "bytes from one client address at once above the rate"
    ),
    key!(
        "trusted_proxies",
        trusted_proxies,
        "IP addresses of proxies whose X-Forwarded-For header names the client"
    ),
    key!(
        "request_timeout_ms",
        request_timeout,
        "time a client has to send a request's head, or a long-polling body"
    ),
    key!(
        "max_connections_per_ip",
        max_connections_per_ip,
        "most connections at once from one IP address (0: no limit)"
    ),
    key!(
        "limits.max_name_len",
        limits.max_name_len,
        "longest chat name, in characters"
    ),
    key!(
        "limits.max_room_len",
        limits.max_room_len,
        "longest room name, in characters"
    ),
    key!(
        "limits.max_message_len",
        limits.max_message_len,
        "longest chat message, in characters"
    ),
    key!(
        "cors_origins",
        cors_origins,
        "origins allowed besides the page's own (* for any)"
    ),
    key!(
        "serve_page",
        serve_page,
        "whether GET / serves the chat page"
    ),
    key!(
        "page_path",
        page_path,
        "a file to serve at GET / instead of the built-in page; \"\": the built-in one"
    ),
    key!(
        "client_dist",
        client_dist,
        "the dist folder of socket.io-client to serve the client bundle from; \"\": look for it"
    ),
    key!(
        "redis_url",
        redis_url,
        "a Redis URL joining every hub on it into one; \"\": no Redis, the hub runs alone"
    ),
    key!(
        "redis_cluster",
        redis_cluster,
        "whether redis_url is a node of a Redis Cluster (sharded pub/sub spreads the rooms over its shards)"
    ),
    key!(
        "redis_prefix",
        redis_prefix,
        "the prefix of the Redis channels, so that clusters can share one Redis"
    ),
    key!(
        "worker_threads",
        worker_threads,
        "worker threads of the hub's runtime (0: one per CPU)"
    ),
    key!(
        "event_queue_capacity",
        event_queue_capacity,
        "events each host subscription may fall behind before they are dropped"
    ),
    key!(
        "hook_timeout_ms",
        hook_timeout,
        "how long a connect or login hook may take before the hub refuses"
    ),
    key!(
        "shutdown_timeout_ms",
        shutdown_timeout,
        "upper bound of a graceful stop"
    ),
    key!(
        "redis_unready_after_ms",
        redis_unready_after,
        "how long Redis may be away before GET /ready answers 503"
    ),
    key!(
        "tls_cert",
        tls_cert,
        "a PEM file with the certificate chain that makes the listeners HTTPS/WSS (with tls_key); \"\": plain HTTP"
    ),
    key!(
        "tls_key",
        tls_key,
        "a PEM file with the private key of tls_cert"
    ),
    key!(
        "redis_tls_ca",
        redis_tls_ca,
        "a PEM file of CA certificates a rediss:// Redis must chain to, instead of the system's"
    ),
    key!(
        "redis_batch_ms",
        redis_batch,
        "how long a busy hub gathers lines into one Redis pipeline (0: none)"
    ),
    key!(
        "recovery.chat",
        recovery.chat,
        "connection state recovery on the chat's namespaces"
    ),
    key!(
        "recovery.host",
        recovery.host,
        "connection state recovery on the host's namespaces"
    ),
    key!(
        "recovery.max_disconnection_ms",
        recovery.max_disconnection,
        "how long a dropped socket may take to come back and recover"
    ),
    key!(
        "recovery.max_packets",
        recovery.max_packets,
        "most broadcasts kept for recovery, per namespace"
    ),
    key!(
        "recovery.max_bytes",
        recovery.max_bytes,
        "most bytes of broadcasts kept for recovery, per namespace"
    ),
    key!(
        "recovery.max_sessions",
        recovery.max_sessions,
        "most dropped sockets kept for recovery, per namespace"
    ),
    key!(
        "metrics_path",
        metrics_path,
        "a path on the hub's listener where GET answers Prometheus metrics (/metrics); \"\": none"
    ),
    key!(
        "metrics_bind",
        metrics_bind,
        "an address of its own serving GET /metrics, IP:PORT; \"\": none"
    ),
];

/// The known key nearest to `key` (a typo, another case, a nested key
/// without its prefix), if one is near enough to suggest.
fn closest(key: &str) -> Option<&'static str> {
    let wanted = key.to_ascii_lowercase().replace('-', "_");
    let by_distance = KEYS
        .iter()
        .map(|k| (edit_distance(&wanted, k.name), k.name))
        .filter(|&(d, name)| d <= (name.len() / 4).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name);
    by_distance.or_else(|| {
        KEYS.iter().map(|k| k.name).find(|name| {
            name.rsplit_once('.')
                .is_some_and(|(_, field)| field == wanted)
        })
    })
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

fn find(key: &str) -> Result<&'static ConfigKey, ConfigError> {
    KEYS.iter()
        .find(|k| k.name == key)
        .ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_owned(),
            closest: closest(key),
        })
}

impl HubConfig {
    /// Every key [`set`](Self::set) and [`get`](Self::get) take, in the
    /// order of the fields: its name, the [`ConfigKind`] of its value and
    /// a one-line doc. Faces list these instead of restating the fields.
    pub fn keys() -> &'static [ConfigKey] {
        KEYS
    }

    /// Sets one setting from its text form: `key` is one of
    /// [`keys`](Self::keys) (`"ping_interval_ms"`, `"flood.events_per_sec"`,
    /// `"namespaces"`), `value` the text of the value in the key's
    /// [`ConfigKind`]:
    ///
    /// - bool: `true`/`false`, `1`/`0`, `on`/`off`, `yes`/`no`;
    /// - integer: a whole number (`4096`); `worker_threads` `0` is one per CPU;
    /// - milliseconds: a whole number of milliseconds (`25000`);
    /// - list: comma-separated (`/a,/b`), replacing the list; `""` empties it;
    /// - address (`bind`): `IP:PORT`, or `""` for no listener of its own;
    /// - string: as it is; for `redis_url`, `page_path`, `client_dist`,
    ///   `tls_cert`, `tls_key` and `redis_tls_ca`, `""` is none.
    ///
    /// Only the form is checked; [`validate`](Self::validate) (and
    /// [`Hub::start`](crate::Hub::start)) check the values. On an error the
    /// config is unchanged.
    ///
    /// ```
    /// let mut config = chathub::HubConfig::default();
    /// config.set("bind", "127.0.0.1:0")?;
    /// config.set("namespaces", "/a,/b")?;
    /// config.set("ping_interval_ms", "10000")?;
    /// config.set("flood.events_per_sec", "0")?;
    /// assert_eq!(config.namespaces, ["/a", "/b"]);
    /// assert_eq!(
    ///     config.set("ping_interval_ms", "10s").unwrap_err().to_string(),
    ///     r#"config key "ping_interval_ms": "10s" is not a number of milliseconds"#
    /// );
    /// # Ok::<(), chathub::ConfigError>(())
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let entry = find(key)?;
        (entry.set)(self, value).map_err(|b| ConfigError::InvalidValue {
            key: entry.name,
            value: b.text,
            expected: b.expected,
        })
    }

    /// The text form of one setting, as [`set`](Self::set) takes it
    /// (`HubConfig::default().get("ping_interval_ms")` is `"25000"`; an
    /// absent optional value is `""`, `worker_threads` by CPU `"0"`).
    pub fn get(&self, key: &str) -> Result<String, ConfigError> {
        Ok((find(key)?.get)(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value other than the default for every key, in its canonical
    /// text form.
    fn sample(key: &ConfigKey) -> &'static str {
        match key.name {
            "bind" => "[::1]:4000",
            "namespaces" => "/a,/b",
            "host_namespaces" => "/h",
            "trusted_proxies" => "10.0.0.1,::1",
            "cors_origins" => "https://example.org,*",
            "page_path" => "/srv/page.html",
            "client_dist" => "/srv/dist",
            "redis_url" => "redis://127.0.0.1:6379/2",
            "redis_prefix" => "tests",
            "tls_cert" => "/srv/cert.pem",
            "tls_key" => "/srv/key.pem",
            "redis_tls_ca" => "/srv/ca.pem",
            "metrics_path" => "/metrics",
            "metrics_bind" => "127.0.0.1:9100",
            "serve_page" => "false",
            "recovery.chat" | "recovery.host" | "redis_cluster" => "true",
            _ => match key.kind {
                ConfigKind::Integer | ConfigKind::Milliseconds => "7",
                kind => panic!("no sample for {} ({kind})", key.name),
            },
        }
    }

    #[test]
    fn every_key_round_trips_and_sets_only_its_field() {
        let defaults = HubConfig::default();
        let mut names = std::collections::HashSet::new();
        for key in HubConfig::keys() {
            assert!(names.insert(key.name()), "{} is listed twice", key.name());
            assert!(!key.doc().is_empty(), "{} has no doc", key.name());
            assert_eq!(
                key.kind() == ConfigKind::Milliseconds,
                key.name().ends_with("_ms"),
                "{}: durations, and only they, end in _ms",
                key.name()
            );
            let value = sample(key);
            assert_ne!(defaults.get(key.name()).unwrap(), value, "{}", key.name());
            let mut c = HubConfig::default();
            c.set(key.name(), value).unwrap();
            assert_eq!(c.get(key.name()).unwrap(), value, "{}", key.name());
            for other in HubConfig::keys().iter().filter(|o| o.name() != key.name()) {
                assert_eq!(
                    c.get(other.name()).unwrap(),
                    defaults.get(other.name()).unwrap(),
                    "setting {} changed {}",
                    key.name(),
                    other.name()
                );
            }
        }
    }

    /// Reads every field back after setting every key. The expected
    /// config names every field (no `..Default::default()`): a new field
    /// does not compile here until it has a key, or a reason not to.
    #[test]
    fn every_key_sets_its_field() {
        let mut c = HubConfig::default();
        for key in HubConfig::keys() {
            c.set(key.name(), sample(key)).unwrap();
        }
        let expected = HubConfig {
            bind: Some("[::1]:4000".parse().unwrap()),
            namespaces: vec!["/a".into(), "/b".into()],
            host_namespaces: vec!["/h".into()],
            ping_interval: Duration::from_millis(7),
            ping_timeout: Duration::from_millis(7),
            connect_timeout: Duration::from_millis(7),
            max_payload: 7,
            socket_buffer: 7,
            slow_consumer_timeout: Duration::from_millis(7),
            flood: crate::FloodLimits {
                events_per_sec: 7,
                event_burst: 7,
                bytes_per_sec: 7,
                byte_burst: 7,
                strikes: 7,
                max_queued_events: 7,
            },
            ip_limits: crate::IpLimits {
                events_per_sec: 7,
                event_burst: 7,
                bytes_per_sec: 7,
                byte_burst: 7,
            },
            trusted_proxies: vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            request_timeout: Duration::from_millis(7),
            max_connections_per_ip: 7,
            limits: crate::ChatLimits {
                max_name_len: 7,
                max_room_len: 7,
                max_message_len: 7,
            },
            cors_origins: vec!["https://example.org".into(), "*".into()],
            serve_page: false,
            page_path: Some("/srv/page.html".into()),
            client_dist: Some("/srv/dist".into()),
            redis_url: Some("redis://127.0.0.1:6379/2".into()),
            redis_cluster: true,
            redis_prefix: "tests".into(),
            worker_threads: Some(7),
            event_queue_capacity: 7,
            hook_timeout: Duration::from_millis(7),
            shutdown_timeout: Duration::from_millis(7),
            redis_unready_after: Duration::from_millis(7),
            tls_cert: Some(crate::Pem::File("/srv/cert.pem".into())),
            tls_key: Some(crate::Pem::File("/srv/key.pem".into())),
            redis_tls_ca: Some("/srv/ca.pem".into()),
            metrics_path: Some("/metrics".into()),
            metrics_bind: Some("127.0.0.1:9100".parse().unwrap()),
            redis_batch: Duration::from_millis(7),
            recovery: crate::RecoveryConfig {
                chat: true,
                host: true,
                max_disconnection: Duration::from_millis(7),
                max_packets: 7,
                max_bytes: 7,
                max_sessions: 7,
            },
        };
        assert_eq!(format!("{c:#?}"), format!("{expected:#?}"));
    }

    #[test]
    fn unknown_keys_are_refused_with_the_closest_one() {
        let mut c = HubConfig::default();
        let e = c.set("pingg_interval_ms", "1000").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown config key "pingg_interval_ms" (did you mean "ping_interval_ms"?)"#
        );
        assert_eq!(
            e,
            ConfigError::UnknownKey {
                key: "pingg_interval_ms".into(),
                closest: Some("ping_interval_ms"),
            }
        );
        for (typed, meant) in [
            ("ping_interval", "ping_interval_ms"),
            ("PingIntervalMs", "ping_interval_ms"),
            ("max_name_len", "limits.max_name_len"),
            ("recovery.max-packets", "recovery.max_packets"),
        ] {
            assert_eq!(
                c.set(typed, "1").unwrap_err(),
                ConfigError::UnknownKey {
                    key: typed.into(),
                    closest: Some(meant),
                },
                "{typed}"
            );
        }
        assert_eq!(
            c.set("colour", "blue").unwrap_err().to_string(),
            r#"unknown config key "colour""#
        );
        assert!(c.get("nope").is_err());
        assert!(c.set("", "").is_err());
        assert_eq!(format!("{c:?}"), format!("{:?}", HubConfig::default()));
    }

    #[test]
    fn bad_values_are_refused_and_change_nothing() {
        let mut c = HubConfig::default();
        for (key, value, expected) in [
            ("ping_interval_ms", "abc", "a number of milliseconds"),
            ("ping_interval_ms", "-1", "a number of milliseconds"),
            ("ping_interval_ms", "1.5", "a number of milliseconds"),
            ("ping_interval_ms", "", "a number of milliseconds"),
            (
                "ping_interval_ms",
                "99999999999999999999",
                "a number of milliseconds",
            ),
            (
                "flood.strikes",
                "4294967296",
                "a whole number from 0 to 4294967295",
            ),
            (
                "max_payload",
                "1e6",
                "a whole number from 0 to 18446744073709551615",
            ),
            ("socket_buffer", "+5", "a whole number from 0"),
            ("serve_page", "maybe", "true or false"),
            ("bind", "localhost:3000", "an address like 127.0.0.1:3000"),
            ("bind", "127.0.0.1", "an address like 127.0.0.1:3000"),
            ("trusted_proxies", "10.0.0.1,proxy", "an IP address"),
            (
                "namespaces",
                "/a,,/b",
                "a comma-separated list without empty items",
            ),
        ] {
            let e = c.set(key, value).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("config key {key:?}: ")) && text.contains(expected),
                "{key} = {value:?}: {text}"
            );
        }
        assert_eq!(
            c.set("ping_interval_ms", "abc").unwrap_err().to_string(),
            r#"config key "ping_interval_ms": "abc" is not a number of milliseconds"#
        );
        assert_eq!(
            c.set("trusted_proxies", "10.0.0.1, proxy")
                .unwrap_err()
                .to_string(),
            r#"config key "trusted_proxies": "proxy" is not an IP address"#
        );
        assert_eq!(format!("{c:?}"), format!("{:?}", HubConfig::default()));
    }

    #[test]
    fn values_of_every_form() {
        let mut c = HubConfig::default();
        for (text, on) in [
            ("true", true),
            ("FALSE", false),
            ("1", true),
            ("0", false),
            ("on", true),
            ("Off", false),
            (" yes ", true),
            ("no", false),
        ] {
            c.set("recovery.chat", text).unwrap();
            assert_eq!(c.recovery.chat, on, "{text:?}");
        }
        c.set("ping_timeout_ms", " 1500 ").unwrap();
        assert_eq!(c.ping_timeout, Duration::from_millis(1500));
        c.set("worker_threads", "4").unwrap();
        assert_eq!(c.worker_threads, Some(4));
        c.set("worker_threads", "0").unwrap();
        assert_eq!(c.worker_threads, None);
        c.set("flood.bytes_per_sec", "18446744073709551615")
            .unwrap();
        assert_eq!(c.flood.bytes_per_sec, u64::MAX);
    }

    #[test]
    fn lists_replace_and_empty_text_is_none() {
        let mut c = HubConfig::default();
        c.set("namespaces", " /a , /b ").unwrap();
        assert_eq!(c.namespaces, ["/a", "/b"]);
        c.set("namespaces", "/c").unwrap();
        assert_eq!(c.namespaces, ["/c"]);
        c.set("namespaces", "").unwrap();
        assert!(c.namespaces.is_empty());
        assert!(c.validate().is_err(), "no namespace: refused at start");
        c.set("cors_origins", "https://a.example, https://b.example")
            .unwrap();
        assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);

        c.set("redis_url", "redis://x").unwrap();
        c.set("page_path", "/p").unwrap();
        c.set("client_dist", "/d").unwrap();
        c.set("redis_url", "").unwrap();
        c.set("page_path", "").unwrap();
        c.set("client_dist", "").unwrap();
        assert_eq!(c.redis_url, None);
        assert_eq!(c.page_path, None);
        assert_eq!(c.client_dist, None);
        c.set("bind", "").unwrap();
        assert_eq!(c.bind, None);
        assert_eq!(c.get("bind").unwrap(), "");
        c.set("bind", "0.0.0.0:8080").unwrap();
        assert_eq!(c.bind, Some("0.0.0.0:8080".parse().unwrap()));
        // A string is taken as it is: the prefix's rules are validate's.
        c.set("redis_prefix", "a b").unwrap();
        assert_eq!(c.redis_prefix, "a b");
        assert!(c.validate().is_err());
    }

    #[test]
    fn defaults_read_as_text() {
        let c = HubConfig::default();
        assert_eq!(c.get("bind").unwrap(), "127.0.0.1:3000");
        assert_eq!(c.get("namespaces").unwrap(), "/,/chat");
        assert_eq!(c.get("ping_interval_ms").unwrap(), "25000");
        assert_eq!(c.get("worker_threads").unwrap(), "0");
        assert_eq!(c.get("redis_url").unwrap(), "");
        assert_eq!(c.get("serve_page").unwrap(), "true");
        assert_eq!(c.get("recovery.max_disconnection_ms").unwrap(), "120000");
        let kinds: Vec<&str> = HubConfig::keys().iter().map(|k| k.kind().name()).collect();
        for kind in [
            "bool",
            "integer",
            "milliseconds",
            "string",
            "list",
            "address",
        ] {
            assert!(kinds.contains(&kind), "no key of kind {kind}");
        }
    }
}
