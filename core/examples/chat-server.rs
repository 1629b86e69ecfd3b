//! The chapter's chat as a standalone server.
//!
//! ```text
//! cargo run -p chathub --example chat-server
//! HOST=0.0.0.0 PORT=8080 RUST_LOG=chathub=debug cargo run -p chathub --example chat-server
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p chathub --example chat-server
//! FLOOD_LIMITS=off cargo run -p chathub --example chat-server   (for load generators: no flood or per-address limits)
//! REQUEST_TIMEOUT_MS=5000 cargo run -p chathub --example chat-server   (time for a request's head and body; default 30 s)
//! REDIS_URL=redis://node:7000 REDIS_CLUSTER=1 cargo run -p chathub --example chat-server   (a Redis Cluster: sharded pub/sub)
//! REDIS_URL=… REDIS_BATCH_MS=0 cargo run -p chathub --example chat-server   (how long a busy hub gathers its Redis writes; default 50 ms)
//! QUIET=1 cargo run -p chathub --example chat-server   (logs only `my event`, not every connection)
//! RECOVERY=on cargo run -p chathub --example chat-server   (connection state recovery: a dropped client comes back with its name, room and missed lines)
//! LOG_FORMAT=json cargo run -p chathub --example chat-server   (logs as one JSON object per line)
//! TLS_CERT=cert.pem TLS_KEY=key.pem cargo run -p chathub --example chat-server   (HTTPS and WSS; SIGHUP re-reads both files)
//! REDIS_URL=rediss://user:pass@host:6380 REDIS_TLS_CA=ca.pem cargo run -p chathub --example chat-server   (Redis over TLS with a private CA)
//! METRICS_PATH=/metrics cargo run -p chathub --example chat-server   (Prometheus metrics at http://HOST:PORT/metrics)
//! METRICS_BIND=127.0.0.1:9100 cargo run -p chathub --example chat-server   (Prometheus metrics on a port of their own)
//! ```
//!
//! Serves the chat page at `http://HOST:PORT/` (`https://` with TLS) and
//! logs every event, as the chapter's server logs `my event`. Stops cleanly
//! on Ctrl-C or SIGTERM; SIGHUP reloads the TLS certificate and key.

use std::net::{IpAddr, SocketAddr};

use chathub::{EventFilter, Hub, HubConfig, HubEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs to standard error, filtered by RUST_LOG (default info): plain
    // text (colored only on a terminal), or one JSON object per line with
    // LOG_FORMAT=json.
    let format = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => chathub::logs::LogFormat::Json,
        Ok("plain") | Ok("") | Err(_) => chathub::logs::LogFormat::Plain,
        Ok(other) => return Err(format!("LOG_FORMAT must be plain or json, not {other:?}").into()),
    };
    chathub::logs::to_stderr_as(&std::env::var("RUST_LOG").unwrap_or_default(), format)?;

    let host: IpAddr = std::env::var("HOST")
        .unwrap_or_else(|_| "127.0.0.1".into())
        .parse()
        .map_err(|e| format!("HOST must be an IP address: {e}"))?;
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3000".into())
        .parse()
        .map_err(|e| format!("PORT must be a port number: {e}"))?;

    // REDIS_URL joins this hub to the others on the same Redis.
    let redis_url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    let mut config = HubConfig {
        bind: Some(SocketAddr::new(host, port)),
        redis_url,
        ..Default::default()
    };
    // TLS_CERT and TLS_KEY (PEM files) make the listener HTTPS/WSS;
    // REDIS_TLS_CA (a PEM file) is the CA a rediss:// Redis chains to;
    // REDIS_CLUSTER=1: REDIS_URL is a node of a Redis Cluster (sharded
    // pub/sub spreads the rooms over its shards).
    for (var, key) in [
        ("TLS_CERT", "tls_cert"),
        ("TLS_KEY", "tls_key"),
        ("REDIS_TLS_CA", "redis_tls_ca"),
        ("REDIS_CLUSTER", "redis_cluster"),
    ] {
        if let Ok(value) = std::env::var(var) {
            config.set(key, &value)?;
        }
    }
    // FLOOD_LIMITS=off lifts the flood limits, per socket and per address,
    // and the per-address connection limit (load generators send far more
    // than people do, all from one address).
    if std::env::var("FLOOD_LIMITS").as_deref() == Ok("off") {
        config.flood = chathub::FloodLimits::off();
        config.ip_limits = chathub::IpLimits::off();
        config.max_connections_per_ip = 0;
    }
    // RECOVERY=on: a client whose connection dropped comes back within two
    // minutes with its name and room, and gets every line it missed.
    if std::env::var("RECOVERY").as_deref() == Ok("on") {
        config.recovery = chathub::RecoveryConfig::on();
    }
    // REDIS_BATCH_MS: how long a busy hub gathers lines into one Redis
    // pipeline (the config key `redis_batch_ms`; 0: none).
    if let Ok(ms) = std::env::var("REDIS_BATCH_MS") {
        config
            .set("redis_batch_ms", &ms)
            .map_err(|e| format!("REDIS_BATCH_MS: {e}"))?;
    }
    if let Ok(ms) = std::env::var("REQUEST_TIMEOUT_MS") {
        let ms: u64 = ms
            .parse()
            .map_err(|e| format!("REQUEST_TIMEOUT_MS must be a number of milliseconds: {e}"))?;
        config.request_timeout = std::time::Duration::from_millis(ms);
    }
    // METRICS_PATH=/metrics serves Prometheus metrics on the chat's port;
    // METRICS_BIND=IP:PORT on a listener of their own (off by default).
    for (var, key) in [
        ("METRICS_PATH", "metrics_path"),
        ("METRICS_BIND", "metrics_bind"),
    ] {
        if let Ok(v) = std::env::var(var) {
            config.set(key, &v).map_err(|e| format!("{var}: {e}"))?;
        }
    }
    let hub = Hub::start(config)?;
    let addr = hub.local_addr().expect("the hub has a listener");
    let scheme = if hub.is_tls() { "https" } else { "http" };
    println!("chathub chat server listening on {scheme}://{addr}/");
    if let Some(path) = std::env::var("METRICS_PATH").ok().filter(|p| !p.is_empty()) {
        println!("metrics at {scheme}://{addr}{path}");
    }
    if let Some(m) = hub.metrics_addr() {
        let path = std::env::var("METRICS_PATH").ok().filter(|p| !p.is_empty());
        println!(
            "metrics at http://{m}{}",
            path.as_deref().unwrap_or("/metrics")
        );
    }

    // Ctrl-C / SIGTERM: stop the hub; the event loop below then ends.
    // SIGHUP: read the TLS certificate and key again.
    signals(hub.clone())?;

    // QUIET=1: only what the chapter's server logs (`my event`), so that
    // printing does not weigh on benchmarks.
    let filter = if std::env::var_os("QUIET").is_some_and(|v| !v.is_empty()) {
        EventFilter::kinds(chathub::EventKinds::CUSTOM | chathub::EventKinds::CLUSTER)
    } else {
        EventFilter::all()
    };
    let mut events = hub.subscribe(filter)?;
    // Names, rooms and texts come from clients: `clean` escapes control
    // characters, so that no client can forge log lines or send escapes
    // to the terminal.
    while let Some(event) = events.blocking_recv() {
        match event {
            HubEvent::Connect(e) if e.recovered => println!("[{}] {} is back", e.ns, e.sid),
            HubEvent::Connect(e) => println!("[{}] {} connected", e.ns, e.sid),
            HubEvent::Login(e) => println!("[{}] {} logged in as {}", e.ns, e.sid, clean(&e.name)),
            HubEvent::Join(e) => println!(
                "[{}] {} joined {}",
                e.ns,
                clean(e.name.as_deref().unwrap_or(&e.sid)),
                e.to.as_deref().map_or("the lobby".into(), clean)
            ),
            HubEvent::Message(e) => println!(
                "[{}] {}: {}",
                e.ns,
                clean(e.name.as_deref().unwrap_or(&e.sid)),
                clean(&e.text)
            ),
            // The chapter's server: console.log(content) for `my event`.
            HubEvent::Custom(e) => {
                for arg in &e.args {
                    match arg.as_str() {
                        Some(s) => println!("{}", clean(s)),
                        None => println!("{}", clean(&format!("{arg:?}"))),
                    }
                }
            }
            HubEvent::Rejected(e) => {
                println!("[{}] {} {}: {}", e.ns, e.sid, e.event, clean(&e.error))
            }
            HubEvent::Disconnect(e) => println!(
                "[{}] {} disconnected ({})",
                e.ns,
                clean(e.name.as_deref().unwrap_or(&e.sid)),
                e.reason
            ),
            HubEvent::Cluster(e) => println!(
                "redis link {}: {}",
                if e.up { "up" } else { "down" },
                e.detail
            ),
            _ => {}
        }
    }
    hub.shutdown();
    println!("chathub stopped");
    Ok(())
}

/// On a thread of its own: shuts the hub down on the first SIGINT or
/// SIGTERM; reloads its TLS certificate and key on each SIGHUP.
fn signals(hub: Hub) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut hangup) = {
        let _guard = rt.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        )
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => break,
                        _ = term.recv() => break,
                        _ = hangup.recv() => match hub.reload_tls() {
                            Ok(()) => println!("TLS certificate reloaded"),
                            Err(e) => eprintln!("TLS certificate not reloaded: {e}"),
                        },
                    }
                }
            });
            hub.shutdown();
        })?;
    Ok(())
}

/// Text from a client, fit for a log line: control characters (newlines,
/// terminal escapes) are written as `\u000a`-style escapes.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}
