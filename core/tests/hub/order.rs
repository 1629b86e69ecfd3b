//! One socket's events are handled in the order it sent them.

use rust_socketio::TransportType;
use serde_json::json;

use crate::fixture::{Client, TestHub};

/// Sends join + clientMessage pairs back to back, never waiting, and
/// checks that every message lands in the room joined just before it.
async fn join_then_say(transport: TransportType) {
    const ROOMS: usize = 5;
    const PAIRS: usize = 100;
    // Back-to-back events are what this test is about: no flood limits.
    let t = TestHub::with(chathub::HubConfig {
        flood: chathub::FloodLimits::off(),
        ..crate::fixture::config()
    });
    let mut observers = Vec::new();
    for k in 0..ROOMS {
        let mut o = Client::connect(&t.url, "/chat", transport.clone()).await;
        o.join(&format!("room{k}")).await;
        observers.push(o);
    }
    let mut sender = Client::connect(&t.url, "/chat", transport.clone()).await;
    sender.login("fast").await;
    for i in 0..PAIRS {
        sender
            .emit("join", json!(format!("room{}", i % ROOMS)))
            .await;
        sender.emit("clientMessage", json!(format!("m{i}"))).await;
    }
    for i in 0..PAIRS {
        sender.expect_line("joined room success!").await;
        sender.expect_line(&format!("You said: m{i}")).await;
    }
    // Each observer hears exactly its room's messages, in order.
    for (k, o) in observers.iter_mut().enumerate() {
        for i in (k..PAIRS).step_by(ROOMS) {
            o.expect_line(&format!("fast said: m{i}")).await;
        }
    }
    // And nothing else: a final lobby-free check per room.
    for (k, o) in observers.iter_mut().enumerate() {
        sender.emit("join", json!(format!("room{k}"))).await;
        sender.emit("clientMessage", json!("end")).await;
        o.expect_line("fast said: end").await;
    }
}

#[tokio::test]
async fn join_then_message_in_order_over_websocket() {
    join_then_say(TransportType::Websocket).await;
}

#[tokio::test]
async fn join_then_message_in_order_over_polling() {
    join_then_say(TransportType::Polling).await;
}
