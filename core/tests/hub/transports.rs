//! The chat over every transport: websocket only, polling only, and
//! polling upgraded to websocket, in any mix.

use rust_socketio::TransportType;

use crate::fixture::{Client, TestHub};

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
