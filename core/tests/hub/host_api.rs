//! The host API: observe, act, decide, custom events with acks, binary.

use std::time::Duration;

use bytes::Bytes;
use chathub::events::{EventFilter, EventKinds};
use chathub::{ActionError, HubEvent, Target, Value, hooks};
use rust_socketio::TransportType;
use serde_json::json;

use crate::fixture::{Client, Frame, Incoming, RawClient, TestHub, config};

#[tokio::test]
async fn every_chat_event_is_observed() {
    let t = TestHub::start();
    // Presence events are a stream of their own (tested in `cluster`).
    let all_but_presence =
        EventKinds::from_bits_truncate(EventKinds::ALL.bits() & !EventKinds::PRESENCE.bits());
    let mut events = crate::fixture::Events(
        t.hub
            .subscribe(EventFilter::kinds(all_but_presence))
            .unwrap(),
    );
    let mut c = Client::connect_with(
        &t.url,
        "/chat",
        TransportType::Websocket,
        Some(json!({"token": "abc"})),
    )
    .await
    .unwrap();
    c.expect_event("login").await;
    let HubEvent::Connect(conn) = events.next().await else {
        panic!("connect first")
    };
    assert_eq!(conn.ns, "/chat");
    assert_eq!(conn.auth, Value::from(json!({"token": "abc"})));
    assert_eq!(conn.remote_addr.unwrap().ip().to_string(), "127.0.0.1");
    let sid = conn.sid;

    c.login("ann").await;
    let HubEvent::Login(login) = events.next().await else {
        panic!("login")
    };
    assert_eq!(
        (
            login.sid.as_str(),
            login.name.as_str(),
            login.previous,
            login.room
        ),
        (sid.as_str(), "ann", None, None)
    );

    c.join("r1").await;
    let HubEvent::Join(join) = events.next().await else {
        panic!("join")
    };
    assert_eq!(
        (join.from, join.to, join.by_host, join.name),
        (None, Some("r1".into()), false, Some("ann".into()))
    );

    c.say("hi").await;
    let HubEvent::Message(msg) = events.next().await else {
        panic!("message")
    };
    assert_eq!(
        (msg.room.as_deref(), msg.text.as_str(), msg.name.as_deref()),
        (Some("r1"), "hi", Some("ann"))
    );

    // The chapter's first example: `my event` with 'Hello world.'.
    c.emit("my event", json!("Hello world.")).await;
    let HubEvent::Custom(custom) = events.next().await else {
        panic!("custom")
    };
    assert_eq!(custom.event, "my event");
    assert_eq!(custom.args, vec![Value::from("Hello world.")]);
    assert!(custom.ack.is_none());

    c.disconnect().await;
    let HubEvent::Disconnect(d) = events.next().await else {
        panic!("disconnect")
    };
    assert_eq!(
        (
            d.sid,
            d.name.as_deref(),
            d.room.as_deref(),
            d.reason.as_str()
        ),
        (sid, Some("ann"), Some("r1"), "client namespace disconnect")
    );
}

#[tokio::test]
async fn subscriptions_get_only_what_they_asked_for() {
    let t = TestHub::start();
    let mut logins = crate::fixture::Events(
        t.hub
            .subscribe(EventFilter::kinds(EventKinds::LOGIN))
            .unwrap(),
    );
    let mut pings = crate::fixture::Events(t.hub.subscribe(EventFilter::custom(["ping"])).unwrap());
    let mut c = t.client("/").await;
    c.emit("pong", json!(1)).await;
    c.emit("ping", json!(2)).await;
    c.login("ann").await;
    let HubEvent::Custom(p) = pings.next().await else {
        panic!()
    };
    assert_eq!(
        (p.event.as_str(), p.args.clone()),
        ("ping", vec![Value::from(2)])
    );
    let HubEvent::Login(l) = logins.next().await else {
        panic!("only logins")
    };
    assert_eq!(l.name, "ann");
    c.emit("ping", json!(3)).await;
    let HubEvent::Custom(p) = pings.next().await else {
        panic!()
    };
    assert_eq!(p.args, vec![Value::from(3)], "pong was never delivered");
}

#[tokio::test]
async fn a_host_that_never_reads_does_not_slow_the_chat() {
    let mut cfg = config();
    cfg.event_queue_capacity = 4;
    let t = TestHub::with(cfg);
    let stalled = t.hub.subscribe(EventFilter::all()).unwrap();
    let mut a = t.logged_in("/", "a").await;
    let mut b = t.logged_in("/", "b").await;
    a.expect_line("User b Logged in").await;
    for i in 0..50 {
        a.say(&format!("m{i}")).await;
        b.expect_line(&format!("a said: m{i}")).await;
    }
    assert!(stalled.dropped() > 40, "dropped {}", stalled.dropped());
}

#[tokio::test]
async fn emits_reach_a_socket_a_room_the_lobby_or_the_namespace() {
    let t = TestHub::start();
    let mut events = t.events();
    let mut ann = t.logged_in("/chat", "ann").await;
    let ann_sid = events.connected("/chat").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    ann.expect_line("User bob Logged in").await;
    let mut cat = t.logged_in("/chat", "cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;
    cat.join("r").await;
    let mut other_ns = t.logged_in("/", "root").await;

    t.hub
        .emit(
            Target::socket("/chat", &ann_sid),
            "news",
            vec![Value::from("to ann"), Value::from(1)],
        )
        .unwrap();
    assert_eq!(
        ann.next().await,
        Incoming::Event("news".into(), vec![json!("to ann"), json!(1)])
    );

    t.hub
        .emit(
            Target::room("/chat", "r"),
            "serverMessage",
            vec![Value::from("to room")],
        )
        .unwrap();
    cat.expect_line("to room").await;

    t.hub
        .emit(
            Target::lobby("/chat"),
            "serverMessage",
            vec![Value::from("to lobby")],
        )
        .unwrap();
    ann.expect_line("to lobby").await;
    bob.expect_line("to lobby").await;

    t.hub
        .emit(
            Target::namespace("/chat"),
            "serverMessage",
            vec![Value::from("to all")],
        )
        .unwrap();
    // cat did not get the lobby line: its next one is this.
    for c in [&mut ann, &mut bob, &mut cat] {
        c.expect_line("to all").await;
    }
    // An event with no argument at all.
    t.hub
        .emit(Target::socket("/chat", &ann_sid), "login", vec![])
        .unwrap();
    assert_eq!(ann.next().await, Incoming::Event("login".into(), vec![]));
    // The other namespace heard none of it.
    t.hub
        .emit(
            Target::namespace("/"),
            "serverMessage",
            vec![Value::from("root only")],
        )
        .unwrap();
    other_ns.expect_line("root only").await;
}

#[tokio::test]
async fn emit_refuses_what_it_cannot_do() {
    let t = TestHub::start();
    let hub = &t.hub;
    assert_eq!(
        hub.emit(Target::namespace("/nope"), "x", vec![]),
        Err(ActionError::UnknownNamespace("/nope".into()))
    );
    for reserved in ["connect", "disconnect", "connect_error", ""] {
        assert!(matches!(
            hub.emit(Target::namespace("/"), reserved, vec![]),
            Err(ActionError::InvalidEventName(_))
        ));
    }
    assert!(matches!(
        hub.emit(Target::room("/", "  "), "x", vec![]),
        Err(ActionError::InvalidRoom(_))
    ));
    // An emit to a socket that does not exist is dropped, not an error (as socket.io).
    assert_eq!(hub.emit(Target::socket("/", "nobody"), "x", vec![]), Ok(()));
}

#[tokio::test]
async fn binary_arguments_both_ways() {
    let t = TestHub::start();
    let mut events = t.events();
    let mut raw = RawClient::connect(&t.url, "/chat").await;
    let sid = events.connected("/chat").await;

    // Host → client: a string and a blob.
    t.hub
        .emit(
            Target::socket("/chat", &sid),
            "file",
            vec![
                Value::from("a.bin"),
                Value::Binary(Bytes::from_static(&[0, 1, 2, 255])),
            ],
        )
        .unwrap();
    assert_eq!(
        raw.frame().await,
        Frame::Text(r#"451-/chat,["file","a.bin",{"_placeholder":true,"num":0}]"#.into())
    );
    assert_eq!(raw.frame().await, Frame::Binary(vec![0, 1, 2, 255]));

    // Client → host: a blob inside an object, with an ack that the host
    // answers with a blob.
    raw.send_text(r#"451-/chat,7["upload",{"name":"x","data":{"_placeholder":true,"num":0}}]"#)
        .await;
    raw.send_binary(&[9, 8, 7]).await;
    let custom = events
        .find(|e| match e {
            HubEvent::Custom(c) => Some(c),
            _ => None,
        })
        .await;
    assert_eq!(custom.event, "upload");
    let Value::Object(obj) = &custom.args[0] else {
        panic!("an object: {:?}", custom.args)
    };
    assert_eq!(obj["data"], Value::Binary(Bytes::from_static(&[9, 8, 7])));
    assert_eq!(obj["name"], Value::from("x"));
    let ack = custom.ack.expect("the client asked for an ack");
    ack.send(&[
        Value::from("got it"),
        Value::Binary(Bytes::from_static(b"OK")),
    ])
    .unwrap();
    assert_eq!(ack.send(&[]), Err(chathub::AckError::AlreadySent));
    assert_eq!(
        raw.frame().await,
        Frame::Text(r#"461-/chat,7["got it",{"_placeholder":true,"num":0}]"#.into())
    );
    assert_eq!(raw.frame().await, Frame::Binary(b"OK".to_vec()));

    // Binary where the chat expects text: refused, the socket stays.
    raw.send_text(r#"451-/chat,["clientMessage",{"_placeholder":true,"num":0}]"#)
        .await;
    raw.send_binary(b"text?").await;
    assert_eq!(raw.next_line().await, "Error: a message must be a string");
    raw.emit("clientMessage", &[json!("plain")]).await;
    assert_eq!(raw.next_line().await, format!("You said: plain"));
}

#[tokio::test]
async fn custom_events_with_json_acks_answered_by_the_host() {
    let t = TestHub::start();
    let mut events = crate::fixture::Events(t.hub.subscribe(EventFilter::custom(["sum"])).unwrap());
    let c = t.client("/").await;
    let host = tokio::spawn(async move {
        let HubEvent::Custom(e) = events.next().await else {
            panic!()
        };
        let total: i64 = e
            .args
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_i64().unwrap(),
                _ => 0,
            })
            .sum();
        e.ack.unwrap().send(&[Value::from(total)]).unwrap();
    });
    let answer = c.emit_ack("sum", vec![json!(1), json!(2), json!(39)]).await;
    assert_eq!(answer, vec![json!(42)]);
    host.await.unwrap();
}

#[tokio::test]
async fn the_host_moves_and_disconnects_sockets() {
    let t = TestHub::start();
    let mut events = t.events();
    let mut ann = t.logged_in("/chat", "ann").await;
    let ann_sid = events.connected("/chat").await;
    let mut bob = t.logged_in("/chat", "bob").await;
    let bob_sid = events.connected("/chat").await;
    ann.expect_line("User bob Logged in").await;

    // socket_rooms: the socket's own id, then its room (none in the lobby).
    assert_eq!(
        t.hub.socket_rooms("/chat", &ann_sid).unwrap(),
        [ann_sid.as_str()]
    );
    t.hub.join("/chat", &ann_sid, "vip").await.unwrap();
    assert_eq!(
        t.hub.socket_rooms("/chat", &ann_sid).unwrap(),
        [ann_sid.clone(), "vip".into()]
    );
    let moved = events
        .find(|e| match e {
            HubEvent::Join(j) => Some(j),
            _ => None,
        })
        .await;
    assert_eq!((moved.to.as_deref(), moved.by_host), (Some("vip"), true));
    t.hub.join("/chat", &bob_sid, "vip").await.unwrap();
    ann.say("in vip").await;
    bob.expect_line("ann said: in vip").await;
    let listing = t.hub.rooms("/chat").await.unwrap();
    assert_eq!(listing.rooms.len(), 1);
    assert_eq!(listing.rooms[0].name, "vip");
    assert_eq!(
        listing.rooms[0]
            .members
            .iter()
            .map(|m| m.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["ann", "bob"]
    );
    // Leaving a room the socket is not in changes nothing.
    t.hub.leave("/chat", &ann_sid, "elsewhere").await.unwrap();
    assert_eq!(
        t.hub.rooms("/chat").await.unwrap().rooms[0].members.len(),
        2
    );
    t.hub.leave("/chat", &ann_sid, "vip").await.unwrap();
    assert_eq!(
        t.hub.socket_rooms("/chat", &ann_sid).unwrap(),
        [ann_sid.as_str()]
    );
    // The chat's own join (`/j`) moves it too.
    ann.join("cafe").await;
    assert_eq!(
        t.hub.socket_rooms("/chat", &ann_sid).unwrap(),
        [ann_sid.clone(), "cafe".into()]
    );
    t.hub.leave("/chat", &ann_sid, "cafe").await.unwrap();
    let listing = t.hub.rooms("/chat").await.unwrap();
    assert_eq!(listing.lobby.len(), 1);
    assert_eq!(listing.lobby[0].sid, ann_sid);

    t.hub.disconnect("/chat", &bob_sid).await.unwrap();
    loop {
        match bob.next().await {
            Incoming::Close => break,
            Incoming::Event(..) => {}
            other => panic!("{other:?}"),
        }
    }
    let listing = t.hub.rooms("/chat").await.unwrap();
    assert!(
        listing.rooms.is_empty(),
        "an empty room is gone: {listing:?}"
    );

    let nobody = "AAAAAAAAAAAAAAAA";
    assert!(matches!(
        t.hub.join("/chat", nobody, "r").await,
        Err(ActionError::SocketNotFound { .. })
    ));
    assert!(matches!(
        t.hub.join("/chat", "not a sid", "r").await,
        Err(ActionError::SocketNotFound { .. })
    ));
    assert!(matches!(
        t.hub.disconnect("/chat", nobody).await,
        Err(ActionError::SocketNotFound { .. })
    ));
    assert!(matches!(
        t.hub.leave("/chat", nobody, "r").await,
        Err(ActionError::SocketNotFound { .. })
    ));
    assert!(matches!(
        t.hub.join("/chat", &ann_sid, "").await,
        Err(ActionError::InvalidRoom(_))
    ));
    assert!(matches!(
        t.hub.socket_rooms("/chat", nobody),
        Err(ActionError::SocketNotFound { .. })
    ));
    assert!(matches!(
        t.hub.socket_rooms("/x", &ann_sid),
        Err(ActionError::UnknownNamespace(_))
    ));
    assert!(matches!(
        t.hub.rooms("/x").await,
        Err(ActionError::UnknownNamespace(_))
    ));
}

#[tokio::test]
async fn the_connect_hook_decides_from_the_auth_payload() {
    let t = TestHub::start();
    t.hub
        .set_connect_hook(Some(hooks::connect_hook(
            |req: chathub::ConnectRequest| async move {
                // An async decision, as a database lookup would be.
                tokio::time::sleep(Duration::from_millis(1)).await;
                match &req.auth {
                    Value::Object(o) if o.get("token") == Some(&Value::from("good")) => Ok(()),
                    _ => Err("bad token".to_owned()),
                }
            },
        )))
        .unwrap();
    let err = Client::connect_with(
        &t.url,
        "/chat",
        TransportType::Websocket,
        Some(json!({"token": "bad"})),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.contains("bad token"), "{err}");
    let err = Client::connect_with(&t.url, "/chat", TransportType::Polling, None)
        .await
        .err()
        .expect("refused");
    assert!(err.contains("bad token"), "{err}");
    let mut ok = Client::connect_with(
        &t.url,
        "/chat",
        TransportType::Websocket,
        Some(json!({"token": "good"})),
    )
    .await
    .expect("accepted");
    ok.expect_event("login").await;
    assert_eq!(t.hub.rooms("/chat").await.unwrap().socket_count(), 1);
    t.hub.set_connect_hook(None).unwrap();
    let _open = t.client("/chat").await;
}

#[tokio::test]
async fn the_login_hook_decides_names_and_is_bounded() {
    let mut cfg = config();
    cfg.hook_timeout = Duration::from_millis(300);
    let t = TestHub::with(cfg);
    t.hub
        .set_login_hook(Some(hooks::login_hook(
            |req: chathub::LoginRequest| async move {
                match req.name.as_str() {
                    "root" => Err("that name is reserved".to_owned()),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(())
                    }
                    "boom" => panic!("a buggy hook"),
                    _ => Ok(()),
                }
            },
        )))
        .unwrap();
    let mut watcher = t.logged_in("/", "watcher").await;
    let mut c = t.client("/").await;
    assert_eq!(
        c.emit_ack("login", vec![json!("root")]).await,
        vec![json!({"ok": false, "error": "login refused: that name is reserved"})]
    );
    c.expect_line("Error: login refused: that name is reserved")
        .await;
    c.emit("login", json!("slow")).await;
    c.expect_line("Error: login refused: the login hook timed out")
        .await;
    c.emit("login", json!("boom")).await;
    c.expect_line("Error: login refused: the login hook failed")
        .await;
    // Events behind a slow login wait for it, in order.
    c.emit("login", json!("slow")).await;
    c.emit("clientMessage", json!("after")).await;
    c.expect_line("Error: login refused: the login hook timed out")
        .await;
    c.expect_line("You said: after").await;
    c.login("fine").await;
    // None of the refused names was announced.
    let sid_line = watcher.next_line().await;
    assert!(sid_line.ends_with("said: after"), "{sid_line}");
    watcher.expect_line("User fine Logged in").await;
}

#[tokio::test]
async fn a_hub_disconnect_is_named_so_though_the_client_closes_at_once() {
    // socket.io-client closes its transport as soon as the DISCONNECT of its
    // last namespace arrives, and that close may reach the hub (on another
    // thread) before the hub is done with the socket; the packet may even
    // be written inline, at once. The leave must still say the hub ended
    // it. A race: many rounds, each client dropping its connection at the
    // packet.
    let t = TestHub::start();
    let mut events = t.events();
    for round in 0..40 {
        let mut c = RawClient::connect(&t.url, "/chat").await;
        let sid = events.connected("/chat").await;
        c.emit("login", &[json!(format!("u{round}"))]).await;
        assert_eq!(
            c.next_line().await,
            format!("Currently logged in as u{round}")
        );
        let closer = tokio::spawn(async move {
            loop {
                match c.frame().await {
                    Frame::Text(t) if t.starts_with("41/chat,") => break,
                    Frame::Closed => panic!("closed before the DISCONNECT packet"),
                    Frame::Text(_) | Frame::Binary(_) => {}
                }
            }
            drop(c);
        });
        t.hub.disconnect("/chat", &sid).await.unwrap();
        let reason = events
            .find(|e| match e {
                HubEvent::Disconnect(d) if d.sid == sid => Some(d.reason),
                _ => None,
            })
            .await;
        assert_eq!(reason, "server namespace disconnect", "round {round}");
        closer.await.unwrap();
    }
}
