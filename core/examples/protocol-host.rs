//! A hub that runs only namespaces of its own (no chat): the server the
//! official Socket.IO protocol test suite expects (its Readme's setup), and
//! an example of host namespaces.
//!
//! ```text
//! PORT=3000 cargo run -p chathub --example protocol-host
//! ```
//!
//! `/` and `/custom` emit `auth` (the handshake's payload) to each socket
//! that connects; on `/`, `message` is sent back as `message-back` and
//! `message-with-ack` is acknowledged with its own arguments. Ping interval
//! 300 ms, ping timeout 200 ms, `maxPayload` 1,000,000, connect timeout 1 s,
//! any origin. Stops on Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chathub::{EventFilter, Hub, HubConfig, HubEvent, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host: IpAddr = std::env::var("HOST")
        .unwrap_or_else(|_| "127.0.0.1".into())
        .parse()
        .map_err(|e| format!("HOST must be an IP address: {e}"))?;
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3000".into())
        .parse()
        .map_err(|e| format!("PORT must be a port number: {e}"))?;
    let hub = Hub::start(HubConfig {
        bind: Some(SocketAddr::new(host, port)),
        namespaces: Vec::new(),
        host_namespaces: vec!["/".into(), "/custom".into()],
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        connect_timeout: Duration::from_secs(1),
        cors_origins: vec!["*".into()],
        serve_page: false,
        ..Default::default()
    })?;
    let addr = hub.local_addr().expect("the hub has a listener");
    println!("chathub protocol host listening on http://{addr}/");

    let stopper = hub.clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a signal runtime");
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        stopper.shutdown();
        let _ = stop_tx.send(());
    });

    let mut events = hub.subscribe(EventFilter::all())?;
    while let Some(event) = events.blocking_recv() {
        match event {
            HubEvent::Connect(e) => {
                let _ = hub.emit(Target::socket(&e.ns, &e.sid), "auth", vec![e.auth]);
            }
            HubEvent::Custom(e) if e.ns == "/" && e.event == "message" => {
                let _ = hub.emit(Target::socket(&e.ns, &e.sid), "message-back", e.args);
            }
            HubEvent::Custom(e) if e.ns == "/" && e.event == "message-with-ack" => {
                if let Some(ack) = e.ack {
                    let _ = ack.send(&e.args);
                }
            }
            _ => {}
        }
    }
    let _ = stop_rx.recv_timeout(Duration::from_secs(10));
    println!("chathub stopped");
    Ok(())
}
