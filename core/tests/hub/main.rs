#![allow(unreachable_pub, missing_docs, missing_debug_implementations)]

//! End-to-end tests of the hub: real sockets, real Socket.IO clients.
//!
//! One test binary (one link) with a module per behaviour.

mod fixture;

mod chat;
mod cluster;
mod edges;
mod host_api;
mod metrics;
mod mount;
mod order;
mod recovery;
mod redis;
mod security;
mod shutdown;
mod tls;
mod transports;
mod validation;
