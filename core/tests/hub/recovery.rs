//! Connection state recovery, as socket.io-client 4.6+ speaks it, over raw
//! WebSockets so that every packet is seen: the `pid` in the CONNECT
//! answer, the offset as every event's last argument, a transport dropped
//! (not a clean disconnect) and a CONNECT with `pid` and `offset` in its
//! auth. (`tests/e2e/recovery.test.js` does the same with socket.io-client
//! through every face.)

use std::time::Duration;

use chathub::{HubConfig, HubEvent, RecoveryConfig, Target, Value};
use serde_json::{Value as Json, json};

use crate::fixture::{Events, RawClient, TestHub, config, prefix};

fn with_recovery(window: Duration) -> HubConfig {
    HubConfig {
        host_namespaces: vec!["/app".into()],
        recovery: RecoveryConfig {
            max_disconnection: window,
            ..RecoveryConfig::on()
        },
        ..config()
    }
}

/// A raw client that keeps what recovery needs: its sid, pid and the last
/// offset it saw.
struct Peer {
    c: RawClient,
    sid: String,
    pid: String,
    offset: Option<String>,
}

impl Peer {
    /// Connects to `ns` with `auth`; returns the peer and whether a `login`
    /// prompt came (a fresh chat socket gets one; a recovered one none).
    async fn connect(url: &str, ns: &str, auth: Option<Json>) -> Peer {
        let mut c = RawClient::open(url).await;
        c.ns = ns.to_owned();
        let auth = auth.map(|a| a.to_string()).unwrap_or_default();
        c.send_text(&format!("40{}{auth}", prefix(ns))).await;
        let answer = c.text().await;
        let body = answer
            .strip_prefix(&format!("40{}", prefix(ns)))
            .unwrap_or_else(|| panic!("a CONNECT answer, got {answer}"));
        let v: Json = serde_json::from_str(body).unwrap();
        Peer {
            c,
            sid: v["sid"].as_str().unwrap().to_owned(),
            pid: v["pid"]
                .as_str()
                .expect("a pid with recovery on")
                .to_owned(),
            offset: None,
        }
    }

    /// Comes back with its session.
    async fn reconnect(&self, url: &str, ns: &str) -> Peer {
        let auth = json!({ "pid": self.pid, "offset": self.offset, "token": "t" });
        let mut p = Peer::connect(url, ns, Some(auth)).await;
        p.offset = self.offset.clone();
        p
    }

    /// The next event: its name and arguments, the offset (checked to be
    /// there) taken off.
    async fn event(&mut self) -> (String, Vec<Json>) {
        let t = self.c.text().await;
        let body = t
            .strip_prefix(&format!("42{}", prefix(&self.c.ns)))
            .unwrap_or_else(|| panic!("an event, got {t}"));
        let mut items: Vec<Json> = serde_json::from_str(body).unwrap();
        let offset = items.pop().and_then(|o| o.as_str().map(str::to_owned));
        let offset = offset.unwrap_or_else(|| panic!("an offset last in {t}"));
        assert!(!items.is_empty(), "{t}");
        self.offset = Some(offset);
        let name = items.remove(0).as_str().unwrap().to_owned();
        (name, items)
    }

    async fn line(&mut self) -> String {
        let (name, args) = self.event().await;
        assert_eq!(name, "serverMessage", "{args:?}");
        args[0].as_str().unwrap().to_owned()
    }

    async fn expect_line(&mut self, text: &str) {
        assert_eq!(self.line().await, text);
    }

    async fn emit(&mut self, event: &str, arg: &str) {
        self.c.emit(event, &[Json::from(arg)]).await;
    }

    async fn login(&mut self, name: &str) {
        assert_eq!(self.event().await.0, "login", "the prompt first");
        self.login_now(name).await;
    }

    /// Logs in, the prompt already read.
    async fn login_now(&mut self, name: &str) {
        self.emit("login", name).await;
        self.expect_line(&format!("Currently logged in as {name}"))
            .await;
    }

    /// Logs in where other hubs' notices may still be on their way (a
    /// `… Logged in` line may come before our own reply).
    async fn login_amid(&mut self, name: &str) {
        assert_eq!(self.event().await.0, "login", "the prompt first");
        self.emit("login", name).await;
        loop {
            let line = self.line().await;
            if line == format!("Currently logged in as {name}") {
                return;
            }
            assert!(
                line.ends_with("Logged in"),
                "unexpected before our login: {line}"
            );
        }
    }

    async fn join(&mut self, room: &str) {
        self.emit("join", room).await;
        self.expect_line("joined room success!").await;
    }

    async fn say(&mut self, text: &str) {
        self.emit("clientMessage", text).await;
        self.expect_line(&format!("You said: {text}")).await;
    }
}

/// Waits for the hub to have seen `sid` leave.
async fn left(events: &mut Events, sid: &str) -> String {
    events
        .find(|e| match e {
            HubEvent::Disconnect(d) if d.sid == sid => Some(d.reason),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn a_dropped_chat_socket_comes_back_with_its_name_room_and_every_line_it_missed() {
    let hub = TestHub::with(with_recovery(Duration::from_secs(60)));
    let mut events = hub.events();
    let mut ann = Peer::connect(&hub.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&hub.url, "/chat", None).await;
    bob.login("bob").await;
    bob.join("r1").await;
    let mut lobby = Peer::connect(&hub.url, "/chat", None).await;
    lobby.login("lee").await;
    bob.say("before").await;
    ann.expect_line("bob said: before").await;

    // The transport drops (no close frame, no DISCONNECT).
    let gone = ann.sid.clone();
    let old = std::mem::replace(&mut ann.c, RawClient::open(&hub.url).await);
    drop(old);
    assert_eq!(left(&mut events, &gone).await, "transport close");
    bob.expect_line("User ann disconnected").await;
    bob.say("missed 1").await;
    bob.say("missed 2").await;
    lobby.say("not for ann").await;

    let mut back = ann.reconnect(&hub.url, "/chat").await;
    assert_eq!(back.sid, ann.sid, "the same socket id");
    assert_eq!(back.pid, ann.pid);
    // What it missed, in order, and no login prompt.
    back.expect_line("bob said: missed 1").await;
    back.expect_line("bob said: missed 2").await;
    let connect = events
        .find(|e| match e {
            HubEvent::Connect(c) if c.sid == gone => Some(c),
            _ => None,
        })
        .await;
    assert!(connect.recovered);
    assert_eq!(
        connect.auth,
        Value::Object(
            [("token".to_owned(), Value::from("t"))]
                .into_iter()
                .collect()
        ),
        "the host sees the auth without pid and offset"
    );
    bob.expect_line("User ann is back").await;
    // New lines come after, and the name and room are kept.
    bob.say("after").await;
    back.expect_line("bob said: after").await;
    back.say("hi").await;
    bob.expect_line("ann said: hi").await;
    lobby.say("lobby only").await;
    back.say("still in r1").await;
    bob.expect_line("ann said: still in r1").await;
    let st = hub.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (1, 0));
    assert!(st.recovery_packets > 0 && st.recovery_bytes > 0, "{st:?}");
}

#[tokio::test]
async fn sessions_are_single_use_and_end_with_the_window_or_a_clean_disconnect() {
    let window = Duration::from_millis(300);
    let hub = TestHub::with(with_recovery(window));
    let mut events = hub.events();

    // Past the window: a fresh socket (new id, the prompt, nothing replayed).
    let mut ann = Peer::connect(&hub.url, "/chat", None).await;
    ann.login("ann").await;
    let sid = ann.sid.clone();
    let old = std::mem::replace(&mut ann.c, RawClient::open(&hub.url).await);
    drop(old);
    left(&mut events, &sid).await;
    // Waiting out the window is the point of this test.
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    let mut late = ann.reconnect(&hub.url, "/chat").await;
    assert_ne!(late.sid, sid);
    assert_ne!(late.pid, ann.pid, "a new session");
    assert_eq!(late.event().await.0, "login");

    // A clean disconnect is not recoverable.
    late.login_now("ann").await;
    late.c.send_text("41/chat,").await;
    left(&mut events, &late.sid).await;
    let mut again = late.reconnect(&hub.url, "/chat").await;
    assert_ne!(again.sid, late.sid);
    assert_eq!(again.event().await.0, "login");

    // The same pid while its socket is connected: the client is back
    // before its old transport was seen to drop; it takes the socket over,
    // the old one leaves as if its transport closed.
    again.login_now("ann").await;
    let sid = again.sid.clone();
    let old = std::mem::replace(&mut again.c, RawClient::open(&hub.url).await);
    drop(old);
    left(&mut events, &sid).await;
    let first = again.reconnect(&hub.url, "/chat").await;
    assert_eq!(first.sid, sid);
    let mut second = again.reconnect(&hub.url, "/chat").await;
    assert_eq!(second.sid, sid);
    assert_eq!(left(&mut events, &sid).await, "transport close");
    second.say("hello").await;

    // Used once: once its socket is gone for good, the pid starts fresh.
    second.c.send_text("41/chat,").await;
    left(&mut events, &sid).await;
    let mut third = second.reconnect(&hub.url, "/chat").await;
    assert_ne!(third.sid, sid);
    assert_eq!(third.event().await.0, "login");
    third.login_now("ann").await;

    // A forged pid or an offset of another process: fresh.
    let forged = Peer {
        pid: "AAAAAAAAAAAAAAAAAAAA".into(),
        offset: Some("deadbeef-1".into()),
        ..third
    };
    let mut fresh = forged.reconnect(&hub.url, "/chat").await;
    assert_ne!(fresh.sid, sid);
    assert_eq!(fresh.event().await.0, "login");
    let st = hub.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (2, 4), "{st:?}");
}

/// A client whose missed lines were dropped from the log for its caps
/// starts fresh, and is told so: a new pid (socket.io-client's
/// `socket.recovered` is false when the pid changes) and a new id.
#[tokio::test]
async fn a_client_whose_missed_lines_left_the_log_starts_fresh_with_a_new_pid() {
    let hub = TestHub::with(HubConfig {
        recovery: RecoveryConfig {
            max_disconnection: Duration::from_secs(60),
            max_packets: 3,
            ..RecoveryConfig::on()
        },
        ..config()
    });
    let mut events = hub.events();
    let mut ann = Peer::connect(&hub.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&hub.url, "/chat", None).await;
    bob.login("bob").await;
    bob.join("r1").await;
    bob.say("before").await;
    ann.expect_line("bob said: before").await;
    drop_transport(&mut ann, &hub.url, &mut events).await;
    bob.expect_line("User ann disconnected").await;
    for i in 1..=5 {
        bob.say(&format!("missed {i}")).await;
    }

    let mut back = ann.reconnect(&hub.url, "/chat").await;
    assert_ne!(
        back.pid, ann.pid,
        "a new session: the client sees it was not recovered"
    );
    assert_ne!(back.sid, ann.sid);
    assert_eq!(back.event().await.0, "login", "a fresh socket's prompt");
    let st = hub.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (0, 1), "{st:?}");
}

#[tokio::test]
async fn a_client_back_before_its_old_transport_dropped_takes_its_socket_over() {
    let hub = TestHub::with(with_recovery(Duration::from_secs(60)));
    let mut events = hub.events();
    let mut ann = Peer::connect(&hub.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&hub.url, "/chat", None).await;
    bob.login("bob").await;
    bob.join("r1").await;
    bob.say("seen").await;
    ann.expect_line("bob said: seen").await;
    // Ann's network changes: her old connection stays open on the hub's
    // side (it reads nothing more), and lines still go to it.
    bob.say("lost 1").await;
    bob.say("lost 2").await;

    let mut back = ann.reconnect(&hub.url, "/chat").await;
    assert_eq!(back.sid, ann.sid, "the same socket");
    assert_eq!(left(&mut events, &ann.sid).await, "transport close");
    back.expect_line("bob said: lost 1").await;
    back.expect_line("bob said: lost 2").await;
    bob.expect_line("User ann disconnected").await;
    bob.expect_line("User ann is back").await;
    bob.say("after").await;
    back.expect_line("bob said: after").await;
    back.say("hi").await;
    bob.expect_line("ann said: hi").await;
    // The old connection got what was sent before the takeover, then
    // nothing: the socket is the new connection's.
    ann.expect_line("bob said: lost 1").await;
    ann.expect_line("bob said: lost 2").await;
    ann.c
        .emit("clientMessage", &[Json::from("from the old one")])
        .await;
    back.say("still here").await;
    bob.expect_line("ann said: still here").await;
    let st = hub.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (1, 0), "{st:?}");
}

#[tokio::test]
async fn a_host_namespace_socket_gets_its_rooms_back_and_what_went_to_them() {
    let hub = TestHub::with(with_recovery(Duration::from_secs(60)));
    let mut events = hub.events();
    let mut a = Peer::connect(&hub.url, "/app", None).await;
    hub.hub.join("/app", &a.sid, "x").await.unwrap();
    hub.hub.join("/app", &a.sid, "y").await.unwrap();
    hub.hub
        .emit(
            Target::Room {
                ns: "/app".into(),
                room: "x".into(),
            },
            "tick",
            vec![Value::from(0)],
        )
        .unwrap();
    assert_eq!(a.event().await, ("tick".to_owned(), vec![json!(0)]));

    let sid = a.sid.clone();
    let old = std::mem::replace(&mut a.c, RawClient::open(&hub.url).await);
    drop(old);
    left(&mut events, &sid).await;
    for (room, n) in [("x", 1), ("z", 2), ("y", 3)] {
        hub.hub
            .emit(
                Target::Room {
                    ns: "/app".into(),
                    room: room.into(),
                },
                "tick",
                vec![Value::from(n)],
            )
            .unwrap();
    }
    let mut back = a.reconnect(&hub.url, "/app").await;
    assert_eq!(back.sid, sid);
    assert_eq!(back.event().await, ("tick".to_owned(), vec![json!(1)]));
    assert_eq!(back.event().await, ("tick".to_owned(), vec![json!(3)]));
    let listing = hub.hub.rooms("/app").await.unwrap();
    let mut rooms: Vec<&str> = listing.rooms.iter().map(|r| r.name.as_str()).collect();
    rooms.sort();
    assert_eq!(rooms, ["x", "y"], "its rooms again");
    // Events with an ack id carry no offset.
    let client = async {
        let t = back.c.text().await;
        assert_eq!(t, "42/app,1[\"ask\"]", "no offset with an ack id");
        back.c.send_text("43/app,1[\"yes\"]").await;
    };
    let (answer, ()) = tokio::join!(
        hub.hub
            .emit_with_ack("/app", &sid, "ask", vec![], Duration::from_secs(10)),
        client
    );
    assert_eq!(answer.unwrap(), vec![Value::from("yes")]);
}

#[tokio::test]
async fn without_recovery_nothing_changes_on_the_wire() {
    let hub = TestHub::start();
    let mut c = RawClient::open(&hub.url).await;
    c.ns = "/chat".into();
    c.send_text("40/chat,").await;
    let answer = c.text().await;
    assert!(!answer.contains("pid"), "{answer}");
    assert_eq!(c.text().await, "42/chat,[\"login\"]");
}

/// A hub of a cluster on `redis` with recovery on.
fn clustered(redis: &crate::redis::RedisServer, window: Duration) -> TestHub {
    TestHub::with(HubConfig {
        redis_url: Some(redis.url()),
        ..with_recovery(window)
    })
}

/// Drops a peer's transport (no close frame, no DISCONNECT) and waits for
/// its hub to see it leave.
async fn drop_transport(p: &mut Peer, url: &str, events: &mut Events) {
    let gone = p.sid.clone();
    let old = std::mem::replace(&mut p.c, RawClient::open(url).await);
    drop(old);
    assert_eq!(left(events, &gone).await, "transport close");
}

/// bob says a line ann hears; ann's transport drops (on the hub at
/// `url`); bob says two lines more, which ann misses.
async fn two_lines_missed(ann: &mut Peer, bob: &mut Peer, url: &str, events: &mut Events) {
    bob.say("before").await;
    ann.expect_line("bob said: before").await;
    drop_transport(ann, url, events).await;
    bob.expect_line("User ann disconnected").await;
    bob.say("missed 1").await;
    bob.say("missed 2").await;
}

#[tokio::test]
async fn with_redis_a_client_comes_back_to_another_hub_and_gets_every_line_it_missed() {
    if !crate::redis::available() {
        return;
    }
    let redis = crate::redis::RedisServer::start();
    let a = clustered(&redis, Duration::from_secs(60));
    let b = clustered(&redis, Duration::from_secs(60));
    comes_back_to_another_hub(a, b).await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_client_comes_back_to_another_hub_and_gets_every_line_it_missed() {
    if !crate::redis::available() {
        return;
    }
    let cluster = crate::redis::RedisCluster::start(3);
    let hub = || {
        TestHub::with(HubConfig {
            redis_url: Some(cluster.url()),
            redis_cluster: true,
            ..with_recovery(Duration::from_secs(60))
        })
    };
    comes_back_to_another_hub(hub(), hub()).await;
    // The namespace's stream lives on the shard of the prefix's hash tag.
    let owner = cluster.owner("{chathub}#log#/chat");
    let reply = cluster.nodes[owner].command(&["EXISTS", "{chathub}#log#/chat"]);
    assert_eq!(reply.trim(), ":1", "the stream is on its shard");
}

/// ann (on `a`, in a room with bob of `b`) drops and misses two lines; she
/// comes back on `b` and recovers.
async fn comes_back_to_another_hub(a: TestHub, b: TestHub) {
    let mut a_events = a.events();
    let mut ann = Peer::connect(&a.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&b.url, "/chat", None).await;
    // ann's login notice may still be on its way to the other hub.
    bob.login_amid("bob").await;
    bob.emit("join", "r1").await;
    loop {
        match bob.line().await.as_str() {
            "joined room success!" => break,
            "User ann Logged in" => {}
            other => panic!("unexpected before the join: {other}"),
        }
    }
    two_lines_missed(&mut ann, &mut bob, &a.url, &mut a_events).await;

    // Back on the other hub: the same socket, its name and room, and what
    // it missed, in order, before anything new.
    let mut back = ann.reconnect(&b.url, "/chat").await;
    assert_eq!(back.sid, ann.sid, "the same socket id");
    back.expect_line("bob said: missed 1").await;
    back.expect_line("bob said: missed 2").await;
    bob.expect_line("User ann is back").await;
    bob.say("after").await;
    back.expect_line("bob said: after").await;
    back.say("hi from b").await;
    bob.expect_line("ann said: hi from b").await;
    let st = b.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (1, 0), "{st:?}");

    // Used once, cluster-wide: the same pid again on the first hub is fresh.
    let mut again = ann.reconnect(&a.url, "/chat").await;
    assert_ne!(again.sid, ann.sid);
    assert_eq!(again.event().await.0, "login");
}

/// A hub reads the stream in batches (`redis_batch`), so it can be behind
/// a client that saw newer lines on another hub. The client comes back
/// there at once: it gets what it missed, nothing twice, and the lines it
/// saw elsewhere are not taken for missed ones.
#[tokio::test]
async fn with_redis_a_client_comes_back_to_a_hub_whose_stream_reader_is_behind() {
    if !crate::redis::available() {
        return;
    }
    let redis = crate::redis::RedisServer::start();
    let a = clustered(&redis, Duration::from_secs(60));
    // After a read that brought entries, b reads again a second later.
    let b = TestHub::with(HubConfig {
        redis_url: Some(redis.url()),
        redis_batch: Duration::from_secs(1),
        ..with_recovery(Duration::from_secs(60))
    });
    let mut a_events = a.events();
    let mut ann = Peer::connect(&a.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&a.url, "/chat", None).await;
    bob.login("bob").await;
    bob.join("r1").await;
    // Up to here b may have read the stream: its next read is up to a
    // second away, and everything below happens well within it.
    two_lines_missed(&mut ann, &mut bob, &a.url, &mut a_events).await;

    let mut back = ann.reconnect(&b.url, "/chat").await;
    assert_eq!(back.pid, ann.pid, "recovered");
    assert_eq!(back.sid, ann.sid);
    back.expect_line("bob said: missed 1").await;
    back.expect_line("bob said: missed 2").await;
    bob.expect_line("User ann is back").await;
    bob.say("after").await;
    // Not "bob said: before" again, live, once b's reader got to it.
    back.expect_line("bob said: after").await;
    let st = b.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (1, 0), "{st:?}");
}

#[tokio::test]
async fn with_redis_a_client_comes_back_to_its_hub_restarted() {
    if !crate::redis::available() {
        return;
    }
    let redis = crate::redis::RedisServer::start();
    let a = clustered(&redis, Duration::from_secs(60));
    let mut ann = Peer::connect(&a.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut x = Peer::connect(&a.url, "/app", None).await;
    a.hub.join("/app", &x.sid, "x").await.unwrap();
    a.hub
        .emit(Target::room("/app", "x"), "tick", vec![Value::from(0)])
        .unwrap();
    assert_eq!(x.event().await, ("tick".to_owned(), vec![json!(0)]));

    // The hub stops (its sockets' sessions go to Redis) and starts again.
    a.hub.shutdown_async().await;
    drop(a);
    let a2 = clustered(&redis, Duration::from_secs(60));
    a2.hub
        .emit(
            Target::room("/chat", "r1"),
            "serverMessage",
            vec![Value::from("while you were away")],
        )
        .unwrap();
    a2.hub
        .emit(Target::room("/app", "x"), "tick", vec![Value::from(1)])
        .unwrap();

    let mut back = ann.reconnect(&a2.url, "/chat").await;
    assert_eq!(back.sid, ann.sid);
    back.expect_line("while you were away").await;
    back.say("still here").await;
    let mut xb = x.reconnect(&a2.url, "/app").await;
    assert_eq!(xb.sid, x.sid);
    assert_eq!(xb.event().await, ("tick".to_owned(), vec![json!(1)]));
    let listing = a2.hub.rooms("/app").await.unwrap();
    assert_eq!(listing.rooms.len(), 1, "its room again: {listing:?}");
    assert_eq!(a2.hub.stats().recovered, 2);
}

#[tokio::test]
async fn with_redis_down_a_client_starts_fresh_and_the_chat_goes_on() {
    if !crate::redis::available() {
        return;
    }
    let mut redis = crate::redis::RedisServer::start();
    let a = clustered(&redis, Duration::from_secs(60));
    let mut events = a.events();
    let mut ann = Peer::connect(&a.url, "/chat", None).await;
    ann.login("ann").await;
    ann.join("r1").await;
    let mut bob = Peer::connect(&a.url, "/chat", None).await;
    bob.login("bob").await;
    bob.join("r1").await;
    bob.say("with redis").await;
    ann.expect_line("bob said: with redis").await;

    redis.stop();
    events
        .find(|e| match e {
            HubEvent::Cluster(c) if !c.up => Some(()),
            _ => None,
        })
        .await;
    drop_transport(&mut ann, &a.url, &mut events).await;
    // Broadcasts go out here only, without an offset, while Redis is away.
    assert_eq!(bob.c.next_line().await, "User ann disconnected");
    bob.say("without redis").await;

    // This hub's lines went out without Redis: what ann missed cannot be
    // told, so it starts fresh rather than miss lines silently.
    let mut back = ann.reconnect(&a.url, "/chat").await;
    assert_ne!(back.sid, ann.sid);
    assert_eq!(back.event().await.0, "login");
    back.login_now("ann").await;
    back.join("r1").await;
    bob.say("the chat goes on").await;
    assert_eq!(back.c.next_line().await, "bob said: the chat goes on");
    assert_eq!(a.hub.stats().recovery_misses, 1);
}

#[tokio::test]
async fn with_redis_past_the_window_a_client_that_comes_back_to_another_hub_starts_fresh() {
    if !crate::redis::available() {
        return;
    }
    let redis = crate::redis::RedisServer::start();
    let window = Duration::from_millis(300);
    let a = clustered(&redis, window);
    let b = clustered(&redis, window);
    let mut events = a.events();
    let mut ann = Peer::connect(&a.url, "/chat", None).await;
    ann.login("ann").await;
    drop_transport(&mut ann, &a.url, &mut events).await;
    // Waiting out the window is the point of this test: Redis forgets the
    // session by itself.
    tokio::time::sleep(window + Duration::from_millis(300)).await;
    let mut late = ann.reconnect(&b.url, "/chat").await;
    assert_ne!(late.sid, ann.sid);
    assert_eq!(late.event().await.0, "login");
    assert_eq!(b.hub.stats().recovery_misses, 1);
}

/// A client that got no event since it joined has no offset to send back
/// (socket.io fails it, #5538): what it missed starts where it joined.
/// It joins on `first` and comes back on `second` (the same hub, or
/// another one of the cluster).
async fn comes_back_without_an_offset(first: &TestHub, second: &TestHub) {
    let tick = |hub: &TestHub, n: i64| {
        hub.hub
            .emit(
                Target::Namespace { ns: "/app".into() },
                "tick",
                vec![Value::from(n)],
            )
            .unwrap();
    };
    let mut events = first.events();
    let mut watcher = Peer::connect(&first.url, "/app", None).await;
    tick(first, 0);
    // Delivered on the first hub before the client joins: not for it.
    assert_eq!(watcher.event().await, ("tick".to_owned(), vec![json!(0)]));
    let mut a = Peer::connect(&first.url, "/app", None).await;
    first.hub.join("/app", &a.sid, "x").await.unwrap();
    drop_transport(&mut a, &first.url, &mut events).await;
    assert_eq!(a.offset, None, "it got no event");
    tick(second, 1);
    assert_eq!(watcher.event().await, ("tick".to_owned(), vec![json!(1)]));

    let mut back = a.reconnect(&second.url, "/app").await;
    assert_eq!(back.sid, a.sid, "the same socket");
    assert_eq!(back.event().await, ("tick".to_owned(), vec![json!(1)]));
    tick(second, 2);
    assert_eq!(back.event().await, ("tick".to_owned(), vec![json!(2)]));
    let listing = second.hub.rooms("/app").await.unwrap();
    assert!(
        listing
            .rooms
            .iter()
            .any(|r| r.name == "x" && r.members.iter().any(|m| m.sid == back.sid)),
        "its room again: {listing:?}"
    );
    let st = second.hub.stats();
    assert_eq!((st.recovered, st.recovery_misses), (1, 0), "{st:?}");
}

#[tokio::test]
async fn a_client_with_no_offset_yet_gets_what_it_missed_since_it_joined() {
    let hub = TestHub::with(with_recovery(Duration::from_secs(60)));
    comes_back_without_an_offset(&hub, &hub).await;
}

#[tokio::test]
async fn with_redis_a_client_with_no_offset_yet_recovers_on_another_hub() {
    if !crate::redis::available() {
        return;
    }
    let redis = crate::redis::RedisServer::start();
    let a = clustered(&redis, Duration::from_secs(60));
    let b = clustered(&redis, Duration::from_secs(60));
    comes_back_without_an_offset(&a, &b).await;
}
