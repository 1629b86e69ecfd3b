//! Errors: one enum per kind of operation.

use std::net::SocketAddr;

/// Why [`Hub::start`](crate::Hub::start) failed. Nothing is left running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A config value is out of range; the message says which. Fix the config.
    #[error("invalid hub config: {0}")]
    InvalidConfig(String),
    /// The listener could not bind (port in use, no permission, bad
    /// address). Pick another address or free the port.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The hub's runtime or thread could not start (out of threads or
    /// memory).
    #[error("cannot start the hub's runtime: {0}")]
    Runtime(std::io::Error),
    /// The Redis of [`HubConfig::redis_url`](crate::HubConfig::redis_url)
    /// could not be reached (or refused us). Start Redis, or check the URL.
    #[error("cannot reach Redis at {url}: {source}")]
    Redis {
        /// The URL, without its password.
        url: String,
        /// What went wrong: the Redis client's error, or a timeout.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS certificate or key of the config could not be read or
    /// used (see [`TlsError`](crate::TlsError)).
    #[error("cannot use the TLS certificate and key: {0}")]
    Tls(crate::TlsError),
    /// A file the config names could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Why [`HubConfig::set`](crate::HubConfig::set) (or
/// [`get`](crate::HubConfig::get)) refused a key or a value. The config is
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No setting has this key. Use one of
    /// [`HubConfig::keys`](crate::HubConfig::keys); `closest` is the known
    /// key nearest to it (a typo, a nested key without its prefix), if one
    /// is near.
    #[error("unknown config key {key:?}{}", did_you_mean(.closest))]
    UnknownKey {
        /// The key asked for.
        key: String,
        /// The known key it is probably meant to be.
        closest: Option<&'static str>,
    },
    /// The text is not of the key's form (not a number, not a bool, not an
    /// address, …). Fix the value.
    #[error("config key {key:?}: {value:?} is not {expected}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The text at fault (for a list, the item at fault).
        value: String,
        /// What it should be (`a number of milliseconds`).
        expected: String,
    },
}

fn did_you_mean(closest: &Option<&'static str>) -> String {
    closest
        .map(|k| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

/// Why a host action (emit, join, leave, disconnect, listing, …) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The hub is shut down (or shutting down). Nothing was done.
    #[error("the hub is closed")]
    Closed,
    /// The namespace is not one of the hub's. Use a configured namespace.
    #[error("unknown namespace {0:?}")]
    UnknownNamespace(String),
    /// No socket with this id is connected to the namespace.
    #[error("no socket {sid:?} in namespace {ns:?}")]
    SocketNotFound {
        /// The namespace.
        ns: String,
        /// The socket id asked for.
        sid: String,
    },
    /// The room name breaks the chat's rules (empty, too long).
    #[error("invalid room name: {0}")]
    InvalidRoom(String),
    /// The event name is empty or reserved by Socket.IO (`connect`,
    /// `connect_error`, `disconnect`, `disconnecting`, `newListener`,
    /// `removeListener`). Use another name.
    #[error("invalid event name {0:?}: empty or reserved by Socket.IO")]
    InvalidEventName(String),
    /// The arguments could not be encoded.
    #[error("cannot encode the arguments: {0}")]
    Encode(String),
    /// The message could not be delivered (the adapter failed).
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The HTTP request handed to the hub is unusable; the message says why.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The target does not exist in that namespace (the lobby of a host
    /// namespace); the message says why.
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// The client did not acknowledge in time.
    #[error("no acknowledgement within {0:?}")]
    AckTimeout(std::time::Duration),
}

impl ActionError {
    /// A stable, machine-readable code for the error (the faces hand it
    /// on: Node's `err.code`): `ERR_HUB_CLOSED`, `ERR_UNKNOWN_NAMESPACE`,
    /// `ERR_SOCKET_NOT_FOUND`, `ERR_INVALID_ROOM`, `ERR_INVALID_EVENT_NAME`,
    /// `ERR_ENCODE`, `ERR_DELIVERY`, `ERR_BAD_REQUEST`, `ERR_INVALID_TARGET`,
    /// `ETIMEDOUT`.
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Closed => "ERR_HUB_CLOSED",
            ActionError::UnknownNamespace(_) => "ERR_UNKNOWN_NAMESPACE",
            ActionError::SocketNotFound { .. } => "ERR_SOCKET_NOT_FOUND",
            ActionError::InvalidRoom(_) => "ERR_INVALID_ROOM",
            ActionError::InvalidEventName(_) => "ERR_INVALID_EVENT_NAME",
            ActionError::Encode(_) => "ERR_ENCODE",
            ActionError::Delivery(_) => "ERR_DELIVERY",
            ActionError::BadRequest(_) => "ERR_BAD_REQUEST",
            ActionError::InvalidTarget(_) => "ERR_INVALID_TARGET",
            ActionError::AckTimeout(_) => "ETIMEDOUT",
        }
    }
}

/// Why [`Hub::listen`](crate::Hub::listen) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The hub is shut down.
    #[error("the hub is closed")]
    Closed,
    /// The address cannot be listened on (in use, no permission). Pick
    /// another address or free the port.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said (`AddrInUse`, `PermissionDenied`…).
        source: std::io::Error,
    },
}
