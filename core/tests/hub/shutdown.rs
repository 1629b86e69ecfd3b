//! Stopping: graceful, bounded, idempotent, nothing left running.

use std::time::{Duration, Instant};

use chathub::{ActionError, EventFilter, Hub, Target};
use serde_json::json;

use rust_socketio::TransportType;

use crate::fixture::{Client, Frame, Polling, RawClient, TestHub, config};

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// The hub's thread name prefix (`chathub-ID`), read off its threads.
fn hub_threads(prefix: &str) -> usize {
    thread_names()
        .iter()
        .filter(|n| *n == prefix || n.starts_with(&format!("{prefix}-")))
        .count()
}

#[tokio::test]
async fn shutdown_closes_transports_without_a_disconnect_and_stops_every_thread() {
    let t = TestHub::start();
    let prefix = format!("chathub-{}", t.hub.id());
    assert!(
        hub_threads(&prefix) >= 2,
        "the hub has its own threads: {:?}",
        thread_names()
    );

    let mut ws = RawClient::connect(&t.url, "/chat").await;
    ws.emit("login", &[json!("ws")]).await;
    assert_eq!(ws.next_line().await, "Currently logged in as ws");
    let poll = Polling::open(&t.url).await;
    assert_eq!(poll.post(&["40/chat,"]).await.0, 200);
    let (_, connected) = poll.get().await;
    assert!(connected[0].starts_with("40/chat,"), "{connected:?}");
    let mut events = t.hub.subscribe(EventFilter::all()).unwrap();

    // A long-poll waits while the hub stops.
    let waiting = tokio::spawn({
        let poll = Polling {
            base: poll.base.clone(),
            sid: poll.sid.clone(),
        };
        async move { poll.get().await }
    });
    let started = Instant::now();
    let hub = t.hub.clone();
    tokio::task::spawn_blocking(move || hub.shutdown())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the bound"
    );
    assert!(t.hub.is_closed());

    // The WebSocket closes with no DISCONNECT packet (which would keep
    // socket.io-client from reconnecting): what comes before the close is
    // chat traffic only.
    loop {
        match ws.frame().await {
            Frame::Closed => break,
            Frame::Text(t) => assert!(!t.starts_with("41"), "no DISCONNECT: {t}"),
            Frame::Binary(_) => {}
        }
    }
    // The long-poll ends with the Engine.IO close packet, no DISCONNECT.
    let (status, packets) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(packets.iter().all(|p| !p.starts_with("41")), "{packets:?}");
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");

    // The subscription saw the leaves, then ended.
    let mut disconnects = 0;
    while let Some(e) = events.recv().await {
        if let chathub::HubEvent::Disconnect(d) = e {
            assert_eq!(d.reason, "server shutting down");
            disconnects += 1;
        }
    }
    assert_eq!(disconnects, 2);
    assert_eq!(
        hub_threads(&prefix),
        0,
        "threads left: {:?}",
        thread_names()
    );
}

#[tokio::test]
async fn shutdown_twice_and_actions_after_it() {
    let t = TestHub::start();
    t.hub.shutdown();
    t.hub.shutdown();
    t.hub.shutdown_async().await;
    assert_eq!(
        t.hub.emit(Target::namespace("/"), "x", vec![]),
        Err(ActionError::Closed)
    );
    assert_eq!(t.hub.rooms("/").await, Err(ActionError::Closed));
    assert_eq!(t.hub.join("/", "sid", "r").await, Err(ActionError::Closed));
    assert!(t.hub.subscribe(EventFilter::all()).is_err());
    // The port is free again.
    let addr = t.hub.local_addr().unwrap();
    let again = Hub::start(chathub::HubConfig {
        bind: Some(addr),
        ..config()
    })
    .expect("the port was released");
    again.shutdown();
}

#[test]
fn shutdown_from_many_threads_at_once() {
    let hub = Hub::start(config()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let h = hub.clone();
            std::thread::spawn(move || h.shutdown())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(hub.is_closed());
}

#[test]
fn start_and_stop_outside_any_runtime() {
    let hub = Hub::start(config()).unwrap();
    assert!(hub.local_addr().unwrap().port() != 0);
    hub.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn start_inside_a_current_thread_runtime() {
    let hub = Hub::start(config()).unwrap();
    let listing = hub.rooms("/").await.unwrap();
    assert_eq!(listing.socket_count(), 0);
    hub.shutdown_async().await;
    // Dropping the handle inside async code must not panic either.
    drop(hub);
}

#[test]
fn dropping_the_last_handle_stops_the_hub() {
    let hub = Hub::start(config()).unwrap();
    let addr = hub.local_addr().unwrap();
    drop(hub);
    // The port comes back once the hub has stopped: poll for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("the dropped hub still holds its port: {e}"),
        }
    }
}

#[test]
fn two_hubs_in_one_process() {
    let a = Hub::start(config()).unwrap();
    let b = Hub::start(config()).unwrap();
    assert_ne!(a.local_addr(), b.local_addr());
    a.shutdown();
    // b is unaffected.
    assert!(!b.is_closed());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("http://{}", b.local_addr().unwrap());
        let mut c = Client::connect(&url, "/chat", TransportType::Websocket).await;
        c.login("still here").await;
    });
    b.shutdown();
}

#[test]
fn bad_configs_and_busy_ports_are_clear_errors() {
    let err = Hub::start(chathub::HubConfig {
        namespaces: vec![],
        ..config()
    })
    .unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
    let a = Hub::start(config()).unwrap();
    let err = Hub::start(chathub::HubConfig {
        bind: a.local_addr(),
        ..config()
    })
    .unwrap_err();
    assert!(matches!(err, chathub::StartError::Bind { .. }), "{err}");
    a.shutdown();
}

#[tokio::test]
async fn ready_turns_false_once_a_shutdown_begins() {
    let hub = TestHub::start();
    let mut events = hub.events();
    let get = |path: &'static str| crate::fixture::http(&hub.url, "GET", path, &[], b"");
    assert_eq!(get("/health").await, (200, "ok".into()));
    assert_eq!(get("/ready").await, (200, "ready".into()));
    // A client keeps the hub serving HTTP a moment into its shutdown.
    let _c = hub.logged_in("/chat", "ann").await;
    let stopping = {
        let h = hub.hub.clone();
        tokio::spawn(async move { h.shutdown_async().await })
    };
    events
        .find(|e| matches!(e, chathub::HubEvent::Disconnect(_)).then_some(()))
        .await;
    let (status, body) = get("/ready").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: the hub is shutting down")
    );
    stopping.await.unwrap();
}
