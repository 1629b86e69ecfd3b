//! The chat over every transport: websocket only, polling only, and
//! polling upgraded to websocket, in any mix.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rust_socketio::TransportType;
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{Client, Polling, TestHub};

#[tokio::test]
async fn clients_on_different_transports_chat_together() {
    let t = TestHub::start();
    let mut ws = Client::connect(&t.url, "/chat", TransportType::Websocket).await;
    let mut poll = Client::connect(&t.url, "/chat", TransportType::Polling).await;
    let mut up = Client::connect(&t.url, "/chat", TransportType::WebsocketUpgrade).await;
    ws.login("ws").await;
    poll.expect_line("User ws Logged in").await;
    up.expect_line("User ws Logged in").await;
    poll.login("poll").await;
    ws.expect_line("User poll Logged in").await;
    up.expect_line("User poll Logged in").await;
    up.login("up").await;
    ws.expect_line("User up Logged in").await;
    poll.expect_line("User up Logged in").await;

    for (round, _) in (0..3).enumerate() {
        let text = format!("round {round}");
        poll.say(&text).await;
        ws.expect_line(&format!("poll said: {text}")).await;
        up.expect_line(&format!("poll said: {text}")).await;
        up.say(&text).await;
        ws.expect_line(&format!("up said: {text}")).await;
        poll.expect_line(&format!("up said: {text}")).await;
        ws.say(&text).await;
        poll.expect_line(&format!("ws said: {text}")).await;
        up.expect_line(&format!("ws said: {text}")).await;
    }
    poll.join("r").await;
    up.join("r").await;
    up.say("in r").await;
    poll.expect_line("up said: in r").await;
    up.disconnect().await;
    poll.expect_line("User up disconnected").await;
}

#[tokio::test]
async fn the_transport_is_reported_at_connect() {
    let t = TestHub::start();
    let mut events = t.events();
    let _poll = Client::connect(&t.url, "/", TransportType::Polling).await;
    let transport = events
        .find(|e| match e {
            chathub::HubEvent::Connect(c) => Some(c.transport),
            _ => None,
        })
        .await;
    assert_eq!(transport, chathub::events::Transport::Polling);
    let _ws = Client::connect(&t.url, "/", TransportType::Websocket).await;
    let transport = events
        .find(|e| match e {
            chathub::HubEvent::Connect(c) => Some(c.transport),
            _ => None,
        })
        .await;
    assert_eq!(transport, chathub::events::Transport::Websocket);
}

/// A WebSocket to the polling session `p`, probed (`2probe` → `3probe`).
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn probed_websocket(p: &Polling) -> Ws {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket&sid={}",
        p.base.replacen("http://", "ws://", 1),
        p.sid
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("2probe")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("3probe in time");
    assert_eq!(answer.unwrap().unwrap(), Message::text("3probe"));
    ws
}

/// The upgraded WebSocket carries the session: a namespace CONNECT is
/// answered on it.
async fn websocket_carries_the_session(ws: &mut Ws) {
    ws.send(Message::text("40/chat,")).await.unwrap();
    let connect = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("CONNECT answer in time")
        .unwrap()
        .unwrap();
    assert!(
        connect.to_text().unwrap().starts_with("40/chat,"),
        "{connect}"
    );
}

/// After `3probe` a client sends `5` on the WebSocket and polls no more. A
/// poll that overtook that `5` (sent after it, read first on another
/// thread: the official suite's "should ignore HTTP requests with same sid
/// after upgrade" does this) is answered as if it came after: 400. (It is
/// not answered at once with the noop meant for a poll from before the
/// probe.)
#[tokio::test]
async fn a_poll_that_overtakes_the_upgrade_is_answered_as_one_after_it() {
    let t = TestHub::start();
    let p = Polling::open(&t.url).await;
    let mut ws = probed_websocket(&p).await;
    let overtaking = Polling {
        base: p.base.clone(),
        sid: p.sid.clone(),
    };
    let mut get = tokio::spawn(async move { overtaking.get().await });
    let early = tokio::time::timeout(Duration::from_millis(50), &mut get).await;
    assert!(early.is_err(), "answered at once: {early:?}");
    ws.send(Message::text("5")).await.unwrap();
    let (status, _) = get.await.unwrap();
    assert_eq!(status, 400);
    websocket_carries_the_session(&mut ws).await;
}

/// A poll after `3probe` from a client that polled before it read
/// `3probe`: it waits for `5` only until the hub answers it (a noop frees
/// it within a moment, as Node's engine.io does), so the upgrade goes on.
#[tokio::test]
async fn a_poll_sent_before_the_client_read_3probe_is_freed_and_the_upgrade_goes_on() {
    let t = TestHub::start();
    let p = Polling::open(&t.url).await;
    let mut ws = probed_websocket(&p).await;
    let (status, packets) = p.get().await;
    assert_eq!((status, packets), (200, vec!["6".to_owned()]));
    ws.send(Message::text("5")).await.unwrap();
    websocket_carries_the_session(&mut ws).await;
}

/// The same poll when the upgrade is abandoned instead (the WebSocket
/// closes): it goes on as an ordinary poll.
#[tokio::test]
async fn a_poll_during_an_abandoned_upgrade_goes_on_as_a_poll() {
    let t = TestHub::start();
    let p = Polling::open(&t.url).await;
    let ws = probed_websocket(&p).await;
    let waiting = Polling {
        base: p.base.clone(),
        sid: p.sid.clone(),
    };
    let get = tokio::spawn(async move { waiting.get().await });
    drop(ws);
    let (status, _) = p.post(&["40/chat,"]).await;
    assert_eq!(status, 200);
    let (status, packets) = get.await.unwrap();
    assert_eq!(status, 200);
    assert!(packets[0].starts_with("40/chat,"), "{packets:?}");
}
