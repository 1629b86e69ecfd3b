//! Hard edges: floods, slow readers and hostile input. Each test shows the
//! others unaffected: a pair of clients keeps chatting meanwhile.

use std::time::{Duration, Instant};

use chathub::events::{EventFilter, EventKinds};
use chathub::{FloodLimits, HubConfig, HubEvent};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{Client, Events, Frame, RawClient, TestHub, config};

/// A pair that chats; each round trip must take well under a second.
async fn pair_still_chats(t: &TestHub, tag: &str) {
    let mut a = Client::connect(&t.url, "/chat", rust_socketio::TransportType::Websocket).await;
    a.join(&format!("quiet-{tag}")).await;
    let mut b = Client::connect(&t.url, "/chat", rust_socketio::TransportType::Websocket).await;
    b.join(&format!("quiet-{tag}")).await;
    for i in 0..5 {
        let started = Instant::now();
        a.say(&format!("ping {i}")).await;
        let line = b.next_line().await;
        assert!(line.ends_with(&format!("said: ping {i}")), "{line}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a round trip took {:?} while another client misbehaved",
            started.elapsed()
        );
    }
    a.disconnect().await;
    b.disconnect().await;
}

#[tokio::test]
async fn a_flooding_client_is_warned_then_disconnected_and_the_others_chat_on() {
    let t = TestHub::with(HubConfig {
        flood: FloodLimits {
            events_per_sec: 20,
            event_burst: 20,
            strikes: 30,
            ..FloodLimits::default()
        },
        ..config()
    });
    let mut limits = Events(
        t.hub
            .subscribe(EventFilter::kinds(
                EventKinds::LIMIT | EventKinds::DISCONNECT,
            ))
            .unwrap(),
    );
    let mut flood = RawClient::connect(&t.url, "/chat").await;
    for i in 0..200 {
        // Sends may fail once the hub has cut the flood.
        flood
            .send_message(Message::text(format!(
                "42/chat,[\"clientMessage\",\"spam {i}\"]"
            )))
            .await;
    }
    // The burst passes, then the warning, then the disconnect.
    let mut saw_warning = false;
    let mut saw_disconnect_line = false;
    loop {
        match flood.frame().await {
            Frame::Text(t) if t.contains("Error: too many events per second, slow down") => {
                saw_warning = true
            }
            Frame::Text(t) if t.contains("Error: too many events per second, disconnected") => {
                saw_disconnect_line = true
            }
            Frame::Text(t) if t.starts_with("41/chat,") => break, // DISCONNECT
            Frame::Closed => break,
            _ => {}
        }
    }
    assert!(saw_warning && saw_disconnect_line);
    let limit = limits
        .find(|e| match e {
            HubEvent::Limit(l) if l.disconnected => Some(l),
            _ => None,
        })
        .await;
    assert_eq!(limit.limit, "events per second");
    let reason = limits
        .find(|e| match e {
            HubEvent::Disconnect(d) => Some(d.reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, "flood");
    let stats = t.hub.stats();
    assert_eq!(stats.flood_disconnects, 1);
    assert!(stats.events_dropped >= 30, "{stats:?}");
    pair_still_chats(&t, "flood").await;
}

#[tokio::test]
async fn a_byte_flood_is_limited_too() {
    let t = TestHub::with(HubConfig {
        flood: FloodLimits {
            bytes_per_sec: 50_000,
            byte_burst: 100_000,
            strikes: 10,
            ..FloodLimits::default()
        },
        ..config()
    });
    let mut flood = RawClient::connect(&t.url, "/").await;
    let big = "x".repeat(9_000);
    for _ in 0..40 {
        flood
            .send_message(Message::text(format!("42[\"my event\",\"{big}\"]")))
            .await;
    }
    loop {
        match flood.frame().await {
            Frame::Text(t) if t.contains("Error: too many bytes per second") => break,
            Frame::Closed => panic!("closed before the warning"),
            _ => {}
        }
    }
    assert!(t.hub.stats().events_dropped > 0);
    pair_still_chats(&t, "bytes").await;
}

/// A client that connects, logs in, then never reads again, with a tiny
/// receive buffer so that its connection fills up quickly.
async fn silent_reader(url: &str) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let ws_url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url, stream)
        .await
        .unwrap();
    let _open = ws.next().await;
    ws.send(Message::text("40")).await.unwrap();
    let _connect = ws.next().await;
    let _login_prompt = ws.next().await;
    ws.send(Message::text(r#"42["login","sleepy"]"#))
        .await
        .unwrap();
    ws
}

#[tokio::test]
async fn a_client_that_reads_nothing_is_cut_without_slowing_the_others() {
    let mut cfg = HubConfig {
        socket_buffer: 2,
        slow_consumer_timeout: Duration::from_millis(500),
        flood: FloodLimits::off(),
        ..config()
    };
    cfg.limits.max_message_len = 100_000;
    let t = TestHub::with(cfg);
    let mut events = Events(
        t.hub
            .subscribe(EventFilter::kinds(
                EventKinds::LIMIT | EventKinds::DISCONNECT,
            ))
            .unwrap(),
    );
    let sleepy = silent_reader(&t.url).await;
    // A talker in the same lobby (namespace /) fills the sleepy one's
    // connection (the kernel's buffers first): each line is 64 kB. It talks
    // on its own task until the cut is seen.
    let mut talker = Client::connect(&t.url, "/", rust_socketio::TransportType::Websocket).await;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let talking = tokio::spawn(async move {
        let line = "y".repeat(64_000);
        loop {
            talker.emit("clientMessage", json!(line)).await;
            let _echo = talker.next_line().await;
            if stopped.try_recv().is_ok() {
                return talker;
            }
        }
    });
    // The silent reader is cut: how soon depends on how fast the talker
    // fills the kernel's buffers, so the wait is long (a loaded machine).
    let cut = events
        .find_within(Duration::from_secs(60), |e| match e {
            HubEvent::Disconnect(d) => Some(d),
            _ => None,
        })
        .await;
    let _ = stop.send(());
    let talker = talking.await.unwrap();
    talker.disconnect().await;
    assert_eq!(cut.reason, "slow consumer");
    let stats = t.hub.stats();
    assert_eq!(stats.slow_consumer_disconnects, 1, "{stats:?}");
    assert!(stats.packets_dropped > 0, "{stats:?}");
    drop(sleepy);
    pair_still_chats(&t, "slow").await;
}

/// A raw client in a room of its own (no notices from the others).
async fn alone(t: &TestHub, room: &str) -> RawClient {
    let mut c = RawClient::connect(&t.url, "/chat").await;
    c.emit("join", &[json!(room)]).await;
    assert_eq!(c.next_line().await, "joined room success!");
    c
}

/// Sends `frame` on a fresh raw connection; returns what happened next.
async fn hostile(t: &TestHub, frame: Message, room: &str) -> Frame {
    let mut c = alone(t, room).await;
    c.send_message(frame).await;
    c.frame().await
}

#[tokio::test]
async fn hostile_packets_close_at_most_their_connection() {
    let t = TestHub::with(HubConfig {
        max_payload: 64 * 1024,
        ..config()
    });
    let nested = format!(
        "42/chat,[\"clientMessage\",{}1{}]",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let huge_array = format!("42/chat,[\"clientMessage\",[{}1]]", "1,".repeat(20_000));
    let cases: Vec<(&str, Message)> = vec![
        (
            "unterminated JSON",
            Message::text("42/chat,[\"clientMessage\","),
        ),
        ("not an array", Message::text("42/chat,{\"a\":1}")),
        ("unknown packet type", Message::text("49/chat,[]")),
        ("unknown engine.io packet", Message::text("9")),
        ("garbage", Message::text("\u{0}\u{1}garbage")),
        ("empty text", Message::text("")),
        ("deeply nested JSON", Message::text(nested)),
        ("a huge array", Message::text(huge_array)),
        (
            "a binary frame with no packet",
            Message::binary(vec![0xff; 16]),
        ),
        (
            "over the payload limit",
            Message::text(format!("42/chat,[\"x\",\"{}\"]", "z".repeat(70_000))),
        ),
    ];
    for (i, (what, frame)) in cases.into_iter().enumerate() {
        eprintln!("hostile case {i}: {what}");
        let outcome = hostile(&t, frame, &format!("hostile-{i}")).await;
        match &outcome {
            Frame::Closed => {}
            // Engine.IO CLOSE: the hub ended that session.
            Frame::Text(text) if text == "1" => {}
            Frame::Text(text) if text.contains("Error: ") || text.starts_with("44") => {}
            other => panic!("{what}: neither closed nor an error: {other:?}"),
        }
        // The hub is fine.
        let mut probe = alone(&t, &format!("probe-{i}")).await;
        probe
            .emit("clientMessage", &[json!(format!("after {what}"))])
            .await;
        assert_eq!(
            probe.next_line().await,
            format!("You said: after {what}"),
            "{what}"
        );
    }
    // An unknown namespace: connect_error, the connection stays usable.
    let mut c = RawClient::open(&t.url).await;
    c.send_text("40/nope,").await;
    let answer = c.text().await;
    assert!(answer.starts_with("44/nope,"), "{answer}");
    pair_still_chats(&t, "hostile").await;
}

#[tokio::test]
async fn invalid_utf8_closes_only_that_connection() {
    let t = TestHub::start();
    // A WebSocket text frame whose payload is not UTF-8, written by hand.
    let addr = t.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        stream,
    )
    .await
    .unwrap();
    let mut stream = ws.into_inner();
    // FIN + text opcode, masked, 4 bytes of payload.
    let payload = [0x34u8, 0x32, 0xff, 0xfe];
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
    // The server closes it (a close frame or EOF), and only it.
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap_or(0);
        if n == 0 || buf[..n].contains(&0x88) {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    // Long-polling: a body that is not UTF-8 is refused, the hub goes on.
    let open = reqwest_like_get(&format!("{}/socket.io/?EIO=4&transport=polling", t.url)).await;
    let sid = serde_json::from_str::<serde_json::Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = raw_post(
        &addr,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        &[0x34, 0x32, 0xff],
    )
    .await;
    assert!(status >= 400, "status {status}");
    pair_still_chats(&t, "utf8").await;
}

async fn reqwest_like_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    use tokio::io::AsyncReadExt;
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

async fn raw_post(host: &str, path: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    use tokio::io::AsyncReadExt;
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
