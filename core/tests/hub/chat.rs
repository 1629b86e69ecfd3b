//! Every row of the protocol's event table, in the lobby and in rooms.

use serde_json::json;

use crate::fixture::TestHub;

#[tokio::test]
async fn login_answers_the_sender_and_tells_the_lobby() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.client("/chat").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;
    // Names are trimmed.
    let mut cat = t.client("/chat").await;
    cat.emit("login", json!("  cat  ")).await;
    cat.expect_line("Currently logged in as cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;
}

#[tokio::test]
async fn messages_echo_to_the_sender_and_reach_the_others() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    bob.say("hello").await;
    ann.expect_line("bob said: hello").await;
    ann.say("  spaced  ").await;
    bob.expect_line("ann said:   spaced  ").await;
}

#[tokio::test]
async fn a_socket_is_named_by_its_id_until_it_logs_in() {
    let t = TestHub::start();
    let mut events = t.events();
    let mut ann = t.logged_in("/chat", "ann").await;
    let _ann_sid = events.connected("/chat").await;
    let mut anon = t.client("/chat").await;
    let anon_sid = events.connected("/chat").await;
    anon.say("who am I").await;
    ann.expect_line(&format!("{anon_sid} said: who am I")).await;
    anon.disconnect().await;
    ann.expect_line(&format!("User {anon_sid} disconnected"))
        .await;
}

#[tokio::test]
async fn rooms_separate_the_chat_and_the_lobby_stays_apart() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    let mut cat = t.logged_in("/chat", "cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;

    ann.join("r1").await;
    cat.join("r1").await;
    // In a room: only the room hears.
    ann.say("room talk").await;
    cat.expect_line("ann said: room talk").await;
    // In the lobby: only the lobby hears.
    bob.say("lobby talk").await;
    // Sentinels: had bob or ann heard the other scope, that line would come first.
    cat.say("room again").await;
    ann.expect_line("cat said: room again").await;
    // bob is alone in the lobby now: a new lobby client hears bob next.
    let mut dan = t.logged_in("/chat", "dan").await;
    bob.expect_line("User dan Logged in").await;
    bob.say("hi dan").await;
    dan.expect_line("bob said: hi dan").await;
}

#[tokio::test]
async fn joining_again_leaves_the_previous_room() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    let mut cat = t.logged_in("/chat", "cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;
    ann.join("r1").await;
    bob.join("r1").await;
    cat.join("r2").await;
    ann.join("r2").await;
    ann.say("now in r2").await;
    cat.expect_line("ann said: now in r2").await;
    bob.say("anyone in r1?").await;
    // ann left r1: her next line is cat's, not bob's.
    cat.say("yes, r2").await;
    ann.expect_line("cat said: yes, r2").await;
    let listing = t.hub.rooms("/chat").await.unwrap();
    let names = |room: &str| -> Vec<Option<String>> {
        listing
            .rooms
            .iter()
            .find(|r| r.name == room)
            .map(|r| r.members.iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("r1"), vec![Some("bob".into())]);
    assert_eq!(names("r2"), vec![Some("ann".into()), Some("cat".into())]);
    assert!(listing.lobby.is_empty());
}

#[tokio::test]
async fn login_in_a_room_is_announced_to_the_room() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    ann.join("r1").await;
    let mut bob = t.client("/chat").await;
    bob.join("r1").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;
    // A second login renames.
    bob.login("robert").await;
    ann.expect_line("User robert Logged in").await;
    bob.say("renamed").await;
    ann.expect_line("robert said: renamed").await;
}

#[tokio::test]
async fn disconnect_is_announced_where_the_socket_was() {
    let t = TestHub::start();
    let mut ann = t.logged_in("/chat", "ann").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    let mut cat = t.logged_in("/chat", "cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;
    cat.join("r1").await;
    bob.join("r1").await;
    cat.disconnect().await;
    bob.expect_line("User cat disconnected").await;
    // ann (lobby) did not hear it: her next line is the lobby's.
    let dan = t.logged_in("/chat", "dan").await;
    ann.expect_line("User dan Logged in").await;
    dan.disconnect().await;
    ann.expect_line("User dan disconnected").await;
    bob.disconnect().await;
}

#[tokio::test]
async fn namespaces_are_isolated() {
    let t = TestHub::start();
    let mut root = t.logged_in("/", "rooty").await;
    let mut chat = t.logged_in("/chat", "chatty").await;
    let mut root2 = t.logged_in("/", "root2").await;
    root.expect_line("User root2 Logged in").await;
    chat.say("chat only").await;
    root2.say("root only").await;
    root.expect_line("root2 said: root only").await;
    // Same room name in both namespaces: still apart.
    root.join("same").await;
    chat.join("same").await;
    let mut chat2 = t.logged_in("/chat", "chat2").await;
    chat2.join("same").await;
    chat2.say("in /chat same").await;
    chat.expect_line("chat2 said: in /chat same").await;
    root2.join("same").await;
    root2.say("in / same").await;
    root.expect_line("root2 said: in / same").await;
}

#[tokio::test]
async fn unknown_namespaces_are_refused() {
    let t = TestHub::start();
    let err = crate::fixture::Client::connect_with(
        &t.url,
        "/nope",
        rust_socketio::TransportType::Websocket,
        None,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        err.contains("Invalid namespace") || err.contains("connect"),
        "{err}"
    );
}

#[tokio::test]
async fn acks_answer_ok_for_chat_events() {
    let t = TestHub::start();
    let mut ann = t.client("/chat").await;
    assert_eq!(
        ann.emit_ack("login", vec![json!("ann")]).await,
        vec![json!({"ok": true})]
    );
    ann.expect_line("Currently logged in as ann").await;
    assert_eq!(
        ann.emit_ack("join", vec![json!("r")]).await,
        vec![json!({"ok": true})]
    );
    ann.expect_line("joined room success!").await;
    assert_eq!(
        ann.emit_ack("clientMessage", vec![json!("hi")]).await,
        vec![json!({"ok": true})]
    );
    ann.expect_line("You said: hi").await;
}
