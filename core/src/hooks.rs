//! The host's say: hooks that accept or refuse connections and logins.
//!
//! A hook returns a future, so it may ask a database or another service;
//! it runs on the hub's runtime and is bounded by
//! [`HubConfig::hook_timeout`](crate::HubConfig::hook_timeout) (past it, the
//! hub refuses). A hook must not block its thread: wrap blocking work in
//! `tokio::task::spawn_blocking`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::value::Value;

/// A socket asking to connect to a namespace.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The namespace.
    pub ns: String,
    /// The id the socket will have.
    pub sid: String,
    /// The handshake `auth` payload (`{}` when the client sent none).
    pub auth: Value,
    /// The client's address, when known (the peer, or the client a
    /// trusted proxy named: [`HubConfig::trusted_proxies`](crate::HubConfig::trusted_proxies)).
    pub remote_addr: Option<SocketAddr>,
    /// The headers of the request that opened the connection (cookies,
    /// `Origin`, `User-Agent`, `Authorization`…), for checks such as
    /// socket.io's `allowRequest`.
    pub headers: http::HeaderMap,
}

/// A socket asking to log in with a (checked, trimmed) name.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The namespace.
    pub ns: String,
    /// The socket id.
    pub sid: String,
    /// The name asked for.
    pub name: String,
    /// The name it has now, if it logged in before.
    pub current: Option<String>,
}

/// A hook's answer: `Ok(())` accepts, `Err(reason)` refuses. For a
/// connection the reason reaches the client as its `connect_error`
/// message; for a login, as `Error: login refused: REASON`. An empty (or
/// blank) reason becomes [`REFUSED`].
pub type HookResult = Result<(), String>;

/// The reason a client gets when a hook refuses without giving one (every
/// face passes an empty reason and gets this text).
pub const REFUSED: &str = "refused";

/// The reason a client gets when a hook could not answer at all (it
/// failed, or its host is stopping): every face answers with this text.
pub const FAILED: &str = "the hook failed";

/// The future a hook returns.
pub type HookFuture = Pin<Box<dyn Future<Output = HookResult> + Send + 'static>>;

/// Decides whether a socket may connect.
pub type ConnectHook = Arc<dyn Fn(ConnectRequest) -> HookFuture + Send + Sync + 'static>;

/// Decides whether a socket may take a name.
pub type LoginHook = Arc<dyn Fn(LoginRequest) -> HookFuture + Send + Sync + 'static>;

/// Makes a [`ConnectHook`] from a closure returning a future.
pub fn connect_hook<F, Fut>(f: F) -> ConnectHook
where
    F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Makes a [`LoginHook`] from a closure returning a future.
pub fn login_hook<F, Fut>(f: F) -> LoginHook
where
    F: Fn(LoginRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}
