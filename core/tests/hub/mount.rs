//! The hub without its own listener: mounted in axum, handed accepted
//! connections, handed single requests; and the files it serves.

use std::io::Read;

use bytes::Bytes;
use chathub::{Hub, HubConfig};
use http::{Method, Request, StatusCode};
use rust_socketio::TransportType;

use crate::fixture::{Client, config};

fn no_listener() -> HubConfig {
    HubConfig {
        bind: None,
        ..config()
    }
}

#[tokio::test]
async fn mounted_in_an_axum_app_beside_its_own_routes() {
    let hub = Hub::start(no_listener()).unwrap();
    assert!(hub.local_addr().is_none());
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "app ok" }))
        .fallback_service(hub.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    for transport in [
        TransportType::Polling,
        TransportType::Websocket,
        TransportType::WebsocketUpgrade,
    ] {
        let mut a = Client::connect(&url, "/chat", transport.clone()).await;
        let mut b = Client::connect(&url, "/chat", transport.clone()).await;
        a.login("a").await;
        b.expect_line("User a Logged in").await;
        b.login("b").await;
        a.expect_line("User b Logged in").await;
        a.say("through axum").await;
        b.expect_line("a said: through axum").await;
        a.disconnect().await;
        b.expect_line("User a disconnected").await;
        b.disconnect().await;
    }
    let body = reqwest_get(&format!("{url}/health")).await;
    assert_eq!(body, "app ok");
    hub.shutdown_async().await;
    server.abort();
}

/// A tiny HTTP GET over a raw socket (no HTTP client crate needed).
async fn reqwest_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn connections_handed_over_after_their_head_was_read() {
    let hub = Hub::start(no_listener()).unwrap();
    // The host's own listener: it reads each request head, as Node's HTTP
    // parser does, then hands the socket and the bytes it read to the hub.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let h = hub.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if h.serve_tcp(stream, Bytes::from(head)).is_err() {
                break;
            }
        }
    });
    for transport in [
        TransportType::Websocket,
        TransportType::WebsocketUpgrade,
        TransportType::Polling,
    ] {
        let mut a = Client::connect(&url, "/", transport.clone()).await;
        let mut b = Client::connect(&url, "/", transport.clone()).await;
        a.login("a").await;
        b.expect_line("User a Logged in").await;
        b.login("b").await;
        a.expect_line("User b Logged in").await;
        b.say("handed over").await;
        a.expect_line("b said: handed over").await;
        a.disconnect().await;
        b.disconnect().await;
    }
    hub.shutdown_async().await;
}

#[tokio::test]
async fn single_requests_answered_on_the_hubs_runtime() {
    let hub = Hub::start(no_listener()).unwrap();
    let get = |uri: &str| {
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Bytes::new())
            .unwrap()
    };
    let open = hub
        .handle_request(get("/socket.io/?EIO=4&transport=polling"), None)
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let body = String::from_utf8(open.body().to_vec()).unwrap();
    let json = body.strip_prefix('0').expect("an engine.io open packet");
    let sid = serde_json::from_str::<serde_json::Value>(json).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = Request::builder()
        .method(Method::POST)
        .uri(format!("/socket.io/?EIO=4&transport=polling&sid={sid}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Bytes::from_static(b"40/chat,"))
        .unwrap();
    let ok = hub.handle_request(post, None).await.unwrap();
    assert_eq!(ok.body().as_ref(), b"ok");
    // The next poll carries CONNECT and the login prompt (maybe with a ping).
    let mut seen = String::new();
    while !seen.contains("42/chat,[\"login\"]") {
        let poll = hub
            .handle_request(
                get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
                None,
            )
            .await
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(poll.body()));
        seen.push('\u{1e}');
    }
    assert!(seen.contains("40/chat,{\"sid\":"), "{seen}");
    assert_eq!(hub.socket_count(), 1);
    // A cancelled request (its future dropped) does not harm the hub.
    let pending = hub.handle_request(
        get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
        None,
    );
    drop(pending);
    assert_eq!(hub.rooms("/chat").await.unwrap().lobby.len(), 1);
    hub.shutdown_async().await;
    assert!(hub.handle_request(get("/"), None).await.is_err());
}

#[tokio::test]
async fn the_page_and_the_client_bundle() {
    let dist = std::env::temp_dir().join(format!("chathub-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("socket.io.js"), "/* bundle */").unwrap();
    std::fs::write(dist.join("socket.io.min.js"), "/* min */").unwrap();
    let page = dist.join("custom.html");
    std::fs::write(&page, "<p>custom</p>").unwrap();
    let hub = Hub::start(HubConfig {
        client_dist: Some(dist.clone()),
        ..no_listener()
    })
    .unwrap();
    let get = |uri: &str| Request::builder().uri(uri).body(Bytes::new()).unwrap();
    let index = hub.handle_request(get("/"), None).await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(index.body().to_vec()).unwrap();
    assert!(
        html.contains("socket.emit('clientMessage'"),
        "the chapter's page"
    );
    let js = hub
        .handle_request(get("/socket.io/socket.io.js"), None)
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(js.body().as_ref(), b"/* bundle */");
    let etag = js.headers()["etag"].clone();
    let cached = hub
        .handle_request(
            Request::builder()
                .uri("/socket.io/socket.io.js")
                .header("if-none-match", etag)
                .body(Bytes::new())
                .unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let min = hub
        .handle_request(get("/socket.io/socket.io.min.js"), None)
        .await
        .unwrap();
    assert_eq!(min.body().as_ref(), b"/* min */");
    let missing = hub.handle_request(get("/elsewhere"), None).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    hub.shutdown_async().await;

    let custom = Hub::start(HubConfig {
        page_path: Some(page),
        client_dist: Some(dist.clone()),
        ..no_listener()
    })
    .unwrap();
    let index = custom.handle_request(get("/"), None).await.unwrap();
    assert_eq!(index.body().as_ref(), b"<p>custom</p>");
    custom.shutdown_async().await;
    let _ = std::fs::remove_dir_all(dist);

    let missing_page = Hub::start(HubConfig {
        page_path: Some("/nonexistent/page.html".into()),
        ..no_listener()
    });
    assert!(matches!(
        missing_page,
        Err(chathub::StartError::File { .. })
    ));
}

#[tokio::test]
async fn cors_origins_are_answered_when_configured() {
    let hub = Hub::start(HubConfig {
        cors_origins: vec!["http://app.example".into()],
        ..no_listener()
    })
    .unwrap();
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/socket.io/?EIO=4&transport=polling")
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .body(Bytes::new())
        .unwrap();
    let resp = hub.handle_request(preflight, None).await.unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(resp.headers()["access-control-allow-credentials"], "true");
    let open = Request::builder()
        .uri("/socket.io/?EIO=4&transport=polling")
        .header("origin", "http://app.example")
        .body(Bytes::new())
        .unwrap();
    let resp = hub.handle_request(open, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let other = Request::builder()
        .uri("/socket.io/?EIO=4&transport=polling")
        .header("origin", "http://evil.example")
        .body(Bytes::new())
        .unwrap();
    let resp = hub.handle_request(other, None).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    hub.shutdown_async().await;

    // Without the setting: no CORS headers at all (same origin only).
    let plain = Hub::start(no_listener()).unwrap();
    let open = Request::builder()
        .uri("/socket.io/?EIO=4&transport=polling")
        .header("origin", "http://app.example")
        .body(Bytes::new())
        .unwrap();
    let resp = plain.handle_request(open, None).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    plain.shutdown_async().await;
}

#[tokio::test]
async fn a_listener_added_after_start() {
    let hub = Hub::start(no_listener()).unwrap();
    let addr = hub.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    assert_eq!(hub.local_addr(), Some(addr));
    let url = format!("http://{addr}");
    let mut a = Client::connect(&url, "/chat", TransportType::Websocket).await;
    a.login("late").await;
    // spawn runs on the hub's runtime and can await its actions.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let h = hub.clone();
    hub.spawn(async move {
        let _ = tx.send(h.rooms("/chat").await.map(|l| l.socket_count()));
    })
    .unwrap();
    assert_eq!(rx.await.unwrap(), Ok(1));
    assert!(hub.listen(addr).is_err(), "the port is taken");
    hub.shutdown_async().await;
    assert!(hub.listen("127.0.0.1:0".parse().unwrap()).is_err());
    // The added listener is closed with the hub.
    std::net::TcpListener::bind(addr).expect("the port was released");
}

#[test]
fn start_returns_with_every_serving_task_running() {
    // `stats().tasks` is documented as settled once `start` returns; the
    // accept loop used to be spawned just after, and a task count read at
    // once was now and then one short. Both hubs are read at once, many
    // times, to catch that race.
    for _ in 0..20 {
        let listening = Hub::start(config()).unwrap();
        let listening_tasks = listening.stats().tasks;
        let mounted = Hub::start(no_listener()).unwrap();
        let mounted_tasks = mounted.stats().tasks;
        // The one difference: the listener's accept loop.
        assert_eq!(listening_tasks, mounted_tasks + 1);
        listening.shutdown();
        mounted.shutdown();
    }
}

#[tokio::test]
async fn the_client_bundle_is_served_from_where_it_was_found_or_said_missing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = root.join("node_modules/socket.io-client/dist");
    if !dist.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "socket.io-client is not installed (scripts/setup.sh installs it)"
        );
        return;
    }
    let found = crate::fixture::TestHub::with(HubConfig {
        client_dist: Some(dist.clone()),
        ..config()
    });
    assert_eq!(found.hub.client_bundle(), Some(dist.as_path()));
    let (status, text) =
        crate::fixture::http(&found.url, "GET", "/socket.io/socket.io.js", &[], b"").await;
    assert_eq!(status, 200);
    assert!(text.contains("Socket.IO v4"));
    // A folder without the bundle: the hub starts, says so, and answers 404.
    let missing = crate::fixture::TestHub::with(HubConfig {
        client_dist: Some(root.join("docs")),
        ..config()
    });
    assert_eq!(missing.hub.client_bundle(), None);
    let (status, _) =
        crate::fixture::http(&missing.url, "GET", "/socket.io/socket.io.js", &[], b"").await;
    assert_eq!(status, 404);
}
