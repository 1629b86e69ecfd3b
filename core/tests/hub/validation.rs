//! Bad input: an `Error:` line and an error ack to the sender, nothing
//! broadcast, the socket still usable.

use serde_json::{Value as Json, json};

use crate::fixture::{TestHub, config};

/// Sends `event` with `args` (and an ack), expects the error `error` both
/// as a line and in the ack.
async fn refused(c: &mut crate::fixture::Client, event: &str, args: Vec<Json>, error: &str) {
    let ack = c.emit_ack(event, args.clone()).await;
    assert_eq!(
        ack,
        vec![json!({"ok": false, "error": error})],
        "{event} {args:?}"
    );
    c.expect_line(&format!("Error: {error}")).await;
}

#[tokio::test]
async fn bad_logins_are_refused_and_the_socket_goes_on() {
    let t = TestHub::start();
    let mut watcher = t.logged_in("/chat", "watcher").await;
    let mut c = t.client("/chat").await;
    let not_string = "login needs a name (a string)";
    refused(&mut c, "login", vec![json!(null)], not_string).await;
    refused(&mut c, "login", vec![json!(42)], not_string).await;
    refused(&mut c, "login", vec![json!({"name": "x"})], not_string).await;
    refused(&mut c, "login", vec![json!(["x"])], not_string).await;
    refused(&mut c, "login", vec![], not_string).await;
    refused(
        &mut c,
        "login",
        vec![json!("")],
        "the name must not be empty",
    )
    .await;
    refused(
        &mut c,
        "login",
        vec![json!(" \t\n ")],
        "the name must not be empty",
    )
    .await;
    refused(
        &mut c,
        "login",
        vec![json!("n".repeat(65))],
        "the name must be at most 64 characters",
    )
    .await;
    // 64 characters of 2 bytes each is fine.
    c.login(&"é".repeat(64)).await;
    // Nothing of the above reached the watcher: its next line is this login.
    watcher
        .expect_line(&format!("User {} Logged in", "é".repeat(64)))
        .await;
}

#[tokio::test]
async fn bad_joins_are_refused() {
    let t = TestHub::start();
    let mut c = t.logged_in("/chat", "ann").await;
    refused(
        &mut c,
        "join",
        vec![json!(7)],
        "join needs a room name (a string)",
    )
    .await;
    refused(&mut c, "join", vec![], "join needs a room name (a string)").await;
    refused(
        &mut c,
        "join",
        vec![json!("   ")],
        "the room name must not be empty",
    )
    .await;
    refused(
        &mut c,
        "join",
        vec![json!("r".repeat(65))],
        "the room name must be at most 64 characters",
    )
    .await;
    // Still in the lobby, still usable.
    let listing = t.hub.rooms("/chat").await.unwrap();
    assert_eq!(listing.lobby.len(), 1);
    assert!(listing.rooms.is_empty());
    c.join("fine").await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_not_broadcast() {
    let mut cfg = config();
    cfg.limits.max_message_len = 10;
    let t = TestHub::with(cfg);
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    refused(
        &mut bob,
        "clientMessage",
        vec![json!(1)],
        "a message must be a string",
    )
    .await;
    refused(
        &mut bob,
        "clientMessage",
        vec![json!(null)],
        "a message must be a string",
    )
    .await;
    refused(
        &mut bob,
        "clientMessage",
        vec![],
        "a message must be a string",
    )
    .await;
    refused(
        &mut bob,
        "clientMessage",
        vec![json!("12345678901")],
        "a message must be at most 10 characters",
    )
    .await;
    bob.say("1234567890").await;
    // ann's next line is the good message: none of the bad ones was broadcast.
    ann.expect_line("bob said: 1234567890").await;
}

#[tokio::test]
async fn errors_without_ack_still_get_the_line() {
    let t = TestHub::start();
    let mut c = t.client("/chat").await;
    c.emit("login", json!(false)).await;
    c.expect_line("Error: login needs a name (a string)").await;
    c.emit("clientMessage", json!({"text": "hi"})).await;
    c.expect_line("Error: a message must be a string").await;
}

#[tokio::test]
async fn refused_input_is_reported_to_the_host() {
    let t = TestHub::start();
    let mut events = t.events();
    let mut c = t.client("/chat").await;
    let sid = events.connected("/chat").await;
    c.emit("join", json!("")).await;
    c.expect_line("Error: the room name must not be empty")
        .await;
    let (event, error, who) = events
        .find(|e| match e {
            chathub::HubEvent::Rejected(r) => Some((r.event, r.error, r.sid)),
            _ => None,
        })
        .await;
    assert_eq!(
        (event.as_str(), error.as_str(), who),
        ("join", "the room name must not be empty", sid)
    );
}
