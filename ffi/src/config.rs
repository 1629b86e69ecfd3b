//! `chathub_config`: what a hub starts from (a `chathub::HubConfig`).
//!
//! A config is a plain value owned by C: build it with
//! [`chathub_config_new`], change it with the setters, start any number of
//! hubs from it with `chathub_hub_start` (which copies it), free it with
//! [`chathub_config_free`]. Use a config from one thread at a time. The
//! setters check only what C could get wrong in the translation (NULL,
//! UTF-8, the syntax of an address); the values themselves are checked by
//! the core when the hub starts (`CHATHUB_RESULT_INVALID_CONFIG`).
//!
//! [`chathub_config_set`] covers every key of the core's config schema
//! (`chathub::HubConfig::set`, keys such as `ping_interval_ms` or
//! `flood.events_per_sec`, values as text); [`chathub_config_keys`] lists
//! them. The typed setters below predate it and stay (they are ABI); each
//! is one key, or a few, of the same schema.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chathub::HubConfig;

use crate::cast::{self, Opaque};
use crate::guard;
use crate::result::{Failure, chathub_result};

/// A hub's configuration (opaque). Defaults: those of `chathub::HubConfig`
/// (listen on `127.0.0.1:3000`, namespaces `/` and `/chat`, …; the README's
/// Configuration table lists them). `chathub_config_set(config, key,
/// value)` sets any key by name (`"ping_interval_ms"`, `"namespaces"`,
/// `"flood.events_per_sec"`, …), `chathub_config_keys` lists every key; the
/// typed setters cover the common ones.
#[derive(Debug)]
pub struct chathub_config {
    _private: [u8; 0],
}

impl Opaque for chathub_config {
    type Inner = HubConfig;
}

/// Runs `f` on the config behind `config` (checked for NULL).
///
/// # Safety
/// `config` is NULL or a live config used by this thread only.
unsafe fn with_config(
    config: *mut chathub_config,
    f: impl FnOnce(&mut HubConfig) -> Result<(), Failure>,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let config = unsafe { cast::borrow_mut(config, "config") }?;
        f(config)
    })
}

/// Runs `f` with the config and a string argument (checked for NULL and
/// UTF-8).
///
/// # Safety
/// As [`with_config`]; `value` is NULL or a NUL-terminated string valid
/// during the call.
unsafe fn with_config_str(
    config: *mut chathub_config,
    value: *const c_char,
    what: &str,
    f: impl FnOnce(&mut HubConfig, &str) -> Result<(), Failure>,
) -> chathub_result {
    let body = |c: &mut HubConfig| {
        // SAFETY: the caller's contract above.
        let value = unsafe { cast::string(value, what) }?;
        f(c, value)
    };
    // SAFETY: the caller's contract above.
    unsafe { with_config(config, body) }
}

/// Makes a config with the defaults and writes it to `*out_config`.
///
/// Ownership: the caller owns the config and frees it with
/// `chathub_config_free`.
///
/// # Safety
/// `out_config` is NULL (refused) or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_new(
    out_config: *mut *mut chathub_config,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { cast::out(out_config, "out_config") }?;
        out.write(cast::into_raw(HubConfig::default()));
        Ok(())
    })
}

/// Frees a config. NULL is fine. Hubs started from it are not affected.
///
/// # Safety
/// `config` is NULL or a config from `chathub_config_new` not yet freed and
/// not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_free(config: *mut chathub_config) {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        drop(unsafe { cast::take(config) });
    })
}

/// Sets one key of the config from its text form: `key` is one of
/// `chathub_config_keys` (`"bind"`, `"namespaces"`, `"ping_interval_ms"`,
/// `"flood.events_per_sec"`, `"limits.max_name_len"`,
/// `"recovery.max_packets"`, …: the fields of `chathub::HubConfig`, nested
/// ones as `struct.field`, durations in milliseconds with `_ms`), `value`
/// the value as text:
///
/// - bool: `"true"`/`"false"` (also `1`/`0`, `on`/`off`, `yes`/`no`);
/// - integer: decimal (`"4096"`); `worker_threads` `"0"` is one per CPU;
/// - milliseconds: decimal (`"25000"`);
/// - list (`namespaces`, `host_namespaces`, `cors_origins`,
///   `trusted_proxies`): comma-separated (`"/a,/b"`), replacing the list;
///   `""` empties it;
/// - address (`bind`): `"IP:PORT"`, or `""` for no listener of its own;
/// - string: as it is; for `redis_url`, `page_path`, `client_dist`,
///   `tls_cert`, `tls_key` and `redis_tls_ca`, `""` is none.
///
/// This covers every key, so every setting the typed setters make. Only the
/// form is checked here: an unknown key (the message names the closest
/// known key, if one is near) or a value not of the key's form gives
/// `CHATHUB_RESULT_INVALID_ARGUMENT` and changes nothing; the values
/// themselves are checked by `chathub_hub_start`. The strings are copied.
///
/// # Safety
/// `config` is NULL or a live config; `key` and `value` are NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set(
    config: *mut chathub_config,
    key: *const c_char,
    value: *const c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (config, key, value) = unsafe {
            (
                cast::borrow_mut(config, "config")?,
                cast::string(key, "key")?,
                cast::string(value, "value")?,
            )
        };
        config
            .set(key, value)
            .map_err(|e| Failure::invalid(e.to_string()))
    })
}

/// Makes the hub's listener speak TLS (HTTPS and WSS, ALPN `http/1.1`)
/// with a certificate chain and key given as PEM text in memory (from a
/// secret store, say): `cert_pem` holds the server's certificate, then its
/// intermediates; `key_pem` its private key (PKCS#8, PKCS#1 or SEC1). Both
/// are copied. For files, set the keys `tls_cert` and `tls_key` with
/// `chathub_config_set` instead (re-read by `chathub_hub_reload_tls`).
///
/// The PEM is checked when the hub starts: an unusable pair gives
/// `CHATHUB_RESULT_TLS`. Here only NULL with a length is refused
/// (`CHATHUB_RESULT_NULL_PARAMETER`).
///
/// # Safety
/// `config` is NULL or a live config; `cert_pem` and `key_pem` are NULL or
/// valid for reading `cert_len` and `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_tls_pem(
    config: *mut chathub_config,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (config, cert, key) = unsafe {
            (
                cast::borrow_mut(config, "config")?,
                cast::byte_vec(cert_pem, cert_len, "cert_pem")?,
                cast::byte_vec(key_pem, key_len, "key_pem")?,
            )
        };
        config.tls_cert = Some(chathub::Pem::Bytes(cert));
        config.tls_key = Some(chathub::Pem::Bytes(key));
        Ok(())
    })
}

/// Lists every key `chathub_config_set` takes, as a JSON array written to
/// `*out_json`, in the order of the fields: `[{"default":"127.0.0.1:3000",
/// "doc":"where the hub listens, …","kind":"address","name":"bind"}, …]`.
/// `kind` is one of `"bool"`,
/// `"integer"`, `"milliseconds"`, `"string"`, `"list"`, `"address"`;
/// `default` is the default value in the text form `chathub_config_set`
/// takes (`""`: none).
///
/// Ownership: the caller owns the string and frees it with
/// `chathub_string_free`.
///
/// # Safety
/// `out_json` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_keys(out_json: *mut *mut c_char) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { cast::out(out_json, "out_json") }?;
        let defaults = HubConfig::default();
        let keys = HubConfig::keys()
            .iter()
            .map(|k| {
                let default = defaults
                    .get(k.name())
                    .map_err(|e| Failure::new(chathub_result::Failed, e.to_string()))?;
                Ok(serde_json::json!({
                    "name": k.name(),
                    "kind": k.kind().name(),
                    "doc": k.doc(),
                    "default": default,
                }))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        out.write(cast::owned_string(
            serde_json::Value::Array(keys).to_string(),
        )?);
        Ok(())
    })
}

/// Sets the listen address, `"IP:PORT"` (`"127.0.0.1:3000"`,
/// `"[::1]:0"`, `"0.0.0.0:8080"`). Port 0 lets the system pick a free port
/// (`chathub_hub_port` tells which). `CHATHUB_RESULT_INVALID_ARGUMENT` when
/// it does not parse. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `addr` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_bind(
    config: *mut chathub_config,
    addr: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, addr, "addr", |c, addr| {
            let parsed: SocketAddr = addr.parse().map_err(|e| {
                Failure::invalid(format!(
                    "{addr:?} is not an address like 127.0.0.1:3000: {e}"
                ))
            })?;
            c.bind = Some(parsed);
            Ok(())
        })
    }
}

/// Removes every namespace (the defaults `/` and `/chat` included); add the
/// ones wanted with `chathub_config_add_namespace`. A hub needs at least
/// one.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_clear_namespaces(
    config: *mut chathub_config,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.namespaces.clear();
            Ok(())
        })
    }
}

/// Adds a namespace the chat runs on (`"/"`, `"/chat"`). Checked at start:
/// it must begin with `/`, not end with `/`, hold no space, control
/// character, `,` or `?`, and not be listed twice. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `ns` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_add_namespace(
    config: *mut chathub_config,
    ns: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, ns, "ns", |c, ns| {
            c.namespaces.push(ns.to_owned());
            Ok(())
        })
    }
}

/// Sets the chat's limits, in characters: the longest name, room name and
/// message (defaults 64, 64, 10,000). Each must be more than zero (checked
/// at start).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_limits(
    config: *mut chathub_config,
    max_name_len: usize,
    max_room_len: usize,
    max_message_len: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.limits.max_name_len = max_name_len;
            c.limits.max_room_len = max_room_len;
            c.limits.max_message_len = max_message_len;
            Ok(())
        })
    }
}

/// Sets the Engine.IO ping interval, in milliseconds (default 25,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_ping_interval_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.ping_interval = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets how long to wait for a pong, in milliseconds (default 20,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_ping_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.ping_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets how long a client may take to join a namespace after the
/// handshake, in milliseconds (default 45,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_connect_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.connect_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets the largest accepted packet, in bytes (default 1,000,000; at least
/// 64). A larger packet closes that connection.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_max_payload(
    config: *mut chathub_config,
    bytes: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.max_payload = bytes;
            Ok(())
        })
    }
}

/// Sets how many packets may wait to be written to one socket (default
/// 4,096).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_socket_buffer(
    config: *mut chathub_config,
    packets: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.socket_buffer = packets;
            Ok(())
        })
    }
}

/// Adds an origin allowed by CORS (`"https://example.org"`, or `"*"` for
/// any). By default there is none: only same-origin pages can use
/// long-polling. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `origin` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_add_cors_origin(
    config: *mut chathub_config,
    origin: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, origin, "origin", |c, origin| {
            c.cors_origins.push(origin.to_owned());
            Ok(())
        })
    }
}

/// Sets whether `GET /` serves the chat page (default true).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_serve_page(
    config: *mut chathub_config,
    serve: bool,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.serve_page = serve;
            Ok(())
        })
    }
}

/// Sets a file to serve at `GET /` instead of the built-in chat page. It
/// is read when the hub starts (`CHATHUB_RESULT_IO` if it cannot be). The
/// string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_page_path(
    config: *mut chathub_config,
    path: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, path, "path", |c, path| {
            c.page_path = Some(PathBuf::from(path));
            Ok(())
        })
    }
}

/// Sets the `dist` folder of the npm package `socket.io-client`, served at
/// `/socket.io/socket.io.js`. Without it the hub looks at
/// `CHATHUB_CLIENT_DIST`, then `node_modules/socket.io-client/dist` in the
/// working directory or above. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_client_dist(
    config: *mut chathub_config,
    path: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, path, "path", |c, path| {
            c.client_dist = Some(PathBuf::from(path));
            Ok(())
        })
    }
}

/// Sets the number of worker threads of the hub's runtime; 0 means one per
/// CPU (the default).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_worker_threads(
    config: *mut chathub_config,
    threads: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.worker_threads = (threads > 0).then_some(threads);
            Ok(())
        })
    }
}

/// Sets the capacity of each event subscription's queue (default 10,000).
/// Past it, events for a slow callback are dropped, never the chat.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_event_queue_capacity(
    config: *mut chathub_config,
    events: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.event_queue_capacity = events;
            Ok(())
        })
    }
}

/// Sets how long a connect or login hook may take before the hub refuses,
/// in milliseconds (default 10,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_hook_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.hook_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets the upper bound of a graceful stop, in milliseconds (default
/// 5,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_shutdown_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.shutdown_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets a Redis URL (`redis://host:port`, `redis://:password@host:port/db`):
/// every hub on the same Redis and prefix acts as one (see the README's
/// scale-out section). `chathub_hub_start` then fails with
/// `CHATHUB_RESULT_REDIS_UNAVAILABLE` when Redis cannot be reached. The
/// string is copied; NULL is refused (the default is no Redis).
///
/// # Safety
/// `config` is NULL or a live config; `url` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_redis_url(
    config: *mut chathub_config,
    url: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, url, "url", |c, url| {
            c.redis_url = Some(url.to_owned());
            Ok(())
        })
    }
}

/// Sets the prefix of the Redis channels (default `chathub`), so that
/// several clusters can share one Redis. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `prefix` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_redis_prefix(
    config: *mut chathub_config,
    prefix: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, prefix, "prefix", |c, prefix| {
            c.redis_prefix = prefix.to_owned();
            Ok(())
        })
    }
}

/// Sets the per-socket flood limits (see the README's operations section):
/// events and bytes per second with their bursts (a rate of 0 turns that
/// limit off) and the dropped events in a row before a disconnect (0:
/// never). `max_queued_events` no longer has an effect (a socket's events
/// wait in its connection now).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_flood_limits(
    config: *mut chathub_config,
    events_per_sec: u32,
    event_burst: u32,
    bytes_per_sec: u64,
    byte_burst: u64,
    strikes: u32,
    max_queued_events: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.flood = chathub::FloodLimits {
                events_per_sec,
                event_burst,
                bytes_per_sec,
                byte_burst,
                strikes,
                max_queued_events,
            };
            Ok(())
        })
    }
}

/// Sets how long a connection's writes may stay blocked (its client reads
/// nothing) before it is cut, in milliseconds (default 10,000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_slow_consumer_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.slow_consumer_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Sets the most connections at once from one IP address, on the hub's own
/// listener and on connections handed over (0: no limit; default 256).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_max_connections_per_ip(
    config: *mut chathub_config,
    max: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.max_connections_per_ip = max;
            Ok(())
        })
    }
}

/// Adds a namespace the host owns: plain Socket.IO with no chat rule
/// (no prompt, no lobby, no notices); every event reaches the callbacks
/// as `CHATHUB_KIND_CUSTOM` (with its ack and binary), and sockets may be
/// put in any number of rooms (`chathub_hub_join`/`_leave`). The string
/// is copied; none by default.
///
/// # Safety
/// `config` is NULL or a live config; `ns` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_add_host_namespace(
    config: *mut chathub_config,
    ns: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, ns, "ns", |c, ns| {
            c.host_namespaces.push(ns.to_owned());
            Ok(())
        })
    }
}

/// Sets the aggregate limits per client address, over all its sockets
/// (see the README's operations section): events and bytes per second
/// with their bursts; a rate of 0 turns that limit off (defaults 500 and
/// 1,000 events, 5,000,000 and 10,000,000 bytes).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_ip_limits(
    config: *mut chathub_config,
    events_per_sec: u32,
    event_burst: u32,
    bytes_per_sec: u64,
    byte_burst: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.ip_limits = chathub::IpLimits {
                events_per_sec,
                event_burst,
                bytes_per_sec,
                byte_burst,
            };
            Ok(())
        })
    }
}

/// Sets connection state recovery (socket.io-client 4.6+; see the README's
/// "Reconnecting without losing lines"): `chat` and `host` turn it on for
/// the chat's and the host's namespaces (both off by default); a client
/// whose transport dropped and that comes back within
/// `max_disconnection_ms` (default 120,000) keeps its id, name and rooms
/// and gets what it missed. At most `max_packets` broadcasts (default
/// 10,000) and `max_bytes` of them (default 16 MiB) are kept per
/// namespace, and `max_sessions` dropped sockets (default 100,000). With
/// it on, every event sent without an ack carries an offset as its last
/// argument. A bound of 0 with recovery on is refused by
/// `chathub_hub_start` (`CHATHUB_RESULT_INVALID_CONFIG`).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_recovery(
    config: *mut chathub_config,
    chat: bool,
    host: bool,
    max_disconnection_ms: u64,
    max_packets: usize,
    max_bytes: usize,
    max_sessions: usize,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.recovery = chathub::RecoveryConfig {
                chat,
                host,
                max_disconnection: std::time::Duration::from_millis(max_disconnection_ms),
                max_packets,
                max_bytes,
                max_sessions,
            };
            Ok(())
        })
    }
}

/// Sets the time a client has to send a request's head, and a long-polling
/// body whole, in milliseconds (default 30,000); past it the connection is
/// cut.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_set_request_timeout_ms(
    config: *mut chathub_config,
    ms: u64,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config(config, |c| {
            c.request_timeout = Duration::from_millis(ms);
            Ok(())
        })
    }
}

/// Trusts a proxy (its IP address, e.g. `"10.0.0.1"`): its
/// `X-Forwarded-For` header then names the client, for the hooks and the
/// per-address limits. The string is copied.
///
/// # Safety
/// `config` is NULL or a live config; `ip` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_config_add_trusted_proxy(
    config: *mut chathub_config,
    ip: *const c_char,
) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_config_str(config, ip, "ip", |c, ip| {
            let ip = ip
                .parse()
                .map_err(|_| Failure::invalid(format!("not an IP address: {ip:?}")))?;
            c.trusted_proxies.push(ip);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn setters_check_null_and_utf8_and_change_the_config() {
        let mut config = ptr::null_mut();
        // SAFETY: every pointer below is NULL, a live config, or a literal.
        unsafe {
            assert_eq!(
                chathub_config_new(ptr::null_mut()),
                chathub_result::NullParameter
            );
            assert_eq!(chathub_config_new(&mut config), chathub_result::Ok);
            assert_eq!(
                chathub_config_set_bind(ptr::null_mut(), c"127.0.0.1:0".as_ptr()),
                chathub_result::NullParameter
            );
            assert_eq!(
                chathub_config_set_bind(config, ptr::null()),
                chathub_result::NullParameter
            );
            assert_eq!(
                chathub_config_set_bind(config, c"nowhere".as_ptr()),
                chathub_result::InvalidArgument
            );
            let bad = [0xffu8, 0];
            assert_eq!(
                chathub_config_add_namespace(config, bad.as_ptr().cast()),
                chathub_result::InvalidUtf8
            );
            assert_eq!(
                chathub_config_set_bind(config, c"127.0.0.1:0".as_ptr()),
                chathub_result::Ok
            );
            assert_eq!(chathub_config_clear_namespaces(config), chathub_result::Ok);
            assert_eq!(
                chathub_config_add_namespace(config, c"/x".as_ptr()),
                chathub_result::Ok
            );
            assert_eq!(
                chathub_config_set_worker_threads(config, 0),
                chathub_result::Ok
            );
            let inner = cast::borrow(config.cast_const(), "config").unwrap();
            assert_eq!(inner.bind, Some("127.0.0.1:0".parse().unwrap()));
            assert_eq!(inner.namespaces, ["/x"]);
            assert_eq!(inner.worker_threads, None);
            chathub_config_free(config);
            chathub_config_free(ptr::null_mut());
        }
    }

    fn last_error() -> String {
        // SAFETY: the message is valid until the next failure on this thread.
        unsafe { std::ffi::CStr::from_ptr(crate::result::chathub_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn the_keyed_setter_takes_every_key_and_refuses_bad_ones() {
        let mut config = ptr::null_mut();
        // SAFETY: every pointer below is NULL, a live config, or a literal.
        unsafe {
            assert_eq!(chathub_config_new(&mut config), chathub_result::Ok);
            assert_eq!(
                chathub_config_set(ptr::null_mut(), c"bind".as_ptr(), c"".as_ptr()),
                chathub_result::NullParameter
            );
            assert_eq!(
                chathub_config_set(config, ptr::null(), c"".as_ptr()),
                chathub_result::NullParameter
            );
            assert_eq!(
                chathub_config_set(config, c"bind".as_ptr(), ptr::null()),
                chathub_result::NullParameter
            );
            let bad = [0xffu8, 0];
            assert_eq!(
                chathub_config_set(config, c"bind".as_ptr(), bad.as_ptr().cast()),
                chathub_result::InvalidUtf8
            );
            assert_eq!(
                chathub_config_set(config, c"pingg_interval_ms".as_ptr(), c"1".as_ptr()),
                chathub_result::InvalidArgument
            );
            assert_eq!(
                last_error(),
                r#"unknown config key "pingg_interval_ms" (did you mean "ping_interval_ms"?)"#
            );
            assert_eq!(
                chathub_config_set(config, c"ping_interval_ms".as_ptr(), c"abc".as_ptr()),
                chathub_result::InvalidArgument
            );
            assert_eq!(
                last_error(),
                r#"config key "ping_interval_ms": "abc" is not a number of milliseconds"#
            );
            for (key, value) in [
                (c"bind", c""),
                (c"namespaces", c"/a,/b"),
                (c"ping_interval_ms", c"1500"),
                (c"flood.events_per_sec", c"0"),
                (c"recovery.chat", c"on"),
            ] {
                assert_eq!(
                    chathub_config_set(config, key.as_ptr(), value.as_ptr()),
                    chathub_result::Ok,
                    "{key:?}"
                );
            }
            let inner = cast::borrow(config.cast_const(), "config").unwrap();
            assert_eq!(inner.bind, None);
            assert_eq!(inner.namespaces, ["/a", "/b"]);
            assert_eq!(inner.ping_interval, Duration::from_millis(1500));
            assert_eq!(inner.flood.events_per_sec, 0);
            assert!(inner.recovery.chat);
            chathub_config_free(config);
        }
    }

    #[test]
    fn the_key_listing_is_json_with_every_key() {
        let mut json = ptr::null_mut();
        // SAFETY: `json` is written by chathub_config_keys and freed once.
        let text = unsafe {
            assert_eq!(
                chathub_config_keys(ptr::null_mut()),
                chathub_result::NullParameter
            );
            assert_eq!(chathub_config_keys(&mut json), chathub_result::Ok);
            let text = std::ffi::CStr::from_ptr(json).to_str().unwrap().to_owned();
            cast::free_string(json);
            text
        };
        let keys: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(keys.len(), HubConfig::keys().len());
        let ping = keys
            .iter()
            .find(|k| k["name"] == "ping_interval_ms")
            .unwrap();
        assert_eq!(ping["kind"], "milliseconds");
        assert_eq!(ping["default"], "25000");
        assert!(ping["doc"].as_str().is_some_and(|d| !d.is_empty()));
        for k in &keys {
            let name = k["name"].as_str().unwrap();
            assert!(HubConfig::keys().iter().any(|known| known.name() == name));
        }
    }
}
