//! # chathub
//!
//! An embeddable Socket.IO chat hub: the chat of a classic Socket.IO
//! chapter (login, messages, rooms, disconnect notices, namespaces) on an
//! Engine.IO v4 / Socket.IO v5 server of its own, on its own tokio runtime,
//! ready to run inside a Rust program, a C program (the `ffi` crate) or a
//! Node.js server (the `node-binding` addon). Besides the chat, a host can
//! run namespaces of its own ([`HubConfig::host_namespaces`]): plain
//! Socket.IO, every event to the host.
//!
//! The chat protocol is in `PROTOCOL.md`; every rule of it lives in this
//! crate ([`chat`] for the rules, the hub for the sockets).
//!
//! ## Contents
//!
//! - [`Hub`]: start one from a [`HubConfig`], stop it with
//!   [`Hub::shutdown`].
//! - Observe: [`Hub::subscribe`] gives a [`Subscription`] of [`HubEvent`]s.
//! - Act: [`Hub::emit`] (to a [`Target`]), [`Hub::join`], [`Hub::leave`],
//!   [`Hub::disconnect`], [`Hub::rooms`].
//! - Decide: [`Hub::set_connect_hook`], [`Hub::set_login_hook`].
//! - Custom events: [`HubEvent::Custom`] with its [`Ack`].
//! - Mount: [`Hub::service`], [`Hub::serve_connection`],
//!   [`Hub::serve_tcp`], [`Hub::handle_request`].
//! - Logs, for hosts without a `tracing` subscriber: [`logs`].
//!
//! ## Example
//!
//! ```no_run
//! use chathub::{EventFilter, Hub, HubConfig, HubEvent};
//!
//! let hub = Hub::start(HubConfig {
//!     bind: Some("127.0.0.1:3000".parse().unwrap()),
//!     ..Default::default()
//! })?;
//! println!("chat at http://{}/", hub.local_addr().unwrap());
//!
//! // Log what happens, as the chapter's server does.
//! let mut events = hub.subscribe(EventFilter::all())?;
//! while let Some(event) = events.blocking_recv() {
//!     if let HubEvent::Custom(e) = event {
//!         println!("{}: {:?}", e.event, e.args);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!

mod assets;
pub mod chat;
pub mod cluster;
mod config;
mod engine;
mod error;
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
mod hub;
mod json;
mod limits;
pub mod logs;
mod metrics;
mod net;
mod socketio;
mod value;

pub use chat::ChatLimits;
pub use config::{ConfigKey, ConfigKind, FloodLimits, HubConfig, IpLimits, RecoveryConfig};
pub use error::{ActionError, ConfigError, ListenError, StartError};
pub use events::{
    Ack, AckError, CallbackSubscription, EventFilter, EventKinds, HubEvent, Subscription,
};
pub use hooks::{ConnectHook, ConnectRequest, HookResult, LoginHook, LoginRequest};
pub use hub::actions::{MemberInfo, NamespaceListing, RoomInfo, Target};
pub use hub::{Hub, HubStats};
pub use net::tls::{Pem, TlsError};
pub use net::{HubService, request_head};
pub use value::{MissingAttachment, Value};

/// The HTTP body type of [`HubService`] responses.
pub use axum::body::Body;
