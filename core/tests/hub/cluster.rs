//! Several hubs on one Redis act as one; Redis outages are survived.

use std::time::Duration;

use chathub::events::{EventFilter, EventKinds};
use chathub::{ActionError, Hub, HubConfig, HubEvent, StartError, Target, Value};
use rust_socketio::TransportType;

use crate::fixture::{Client, Events, Incoming, TestHub, config};
use crate::redis::{RedisCluster, RedisServer, available};

fn node(redis: &RedisServer) -> TestHub {
    TestHub::with(HubConfig {
        redis_url: Some(redis.url()),
        ..config()
    })
}

/// Connects and logs in. A login notice of another node may still be on
/// its way when this one connects: it may arrive before our own reply.
async fn connect(hub: &TestHub, ns: &str, name: &str) -> Client {
    let mut c = Client::connect(&hub.url, ns, TransportType::Websocket).await;
    c.emit("login", serde_json::json!(name)).await;
    loop {
        let line = c.next_line().await;
        if line == format!("Currently logged in as {name}") {
            return c;
        }
        assert!(
            line.ends_with("Logged in"),
            "unexpected before our login: {line}"
        );
    }
}

#[tokio::test]
async fn chat_crosses_the_nodes() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    chat_crosses(node(&redis), node(&redis)).await;
}

/// The chapter's chat between a client of `a` and one of `b`: logins,
/// lines, rooms, namespaces and disconnect notices.
async fn chat_crosses(a: TestHub, b: TestHub) {
    // Both connect first: a login notice crossing the nodes must not race
    // with the other's own login.
    let mut ann = Client::connect(&a.url, "/chat", TransportType::Websocket).await;
    let mut bob = Client::connect(&b.url, "/chat", TransportType::Websocket).await;
    ann.login("ann").await;
    bob.expect_line("User ann Logged in").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;
    bob.say("from b").await;
    ann.expect_line("bob said: from b").await;
    ann.say("from a").await;
    bob.expect_line("ann said: from a").await;
    // Rooms span nodes; the lobby stays apart.
    let mut cat = connect(&b, "/chat", "cat").await;
    ann.expect_line("User cat Logged in").await;
    bob.expect_line("User cat Logged in").await;
    ann.join("r").await;
    cat.join("r").await;
    ann.say("in r").await;
    cat.expect_line("ann said: in r").await;
    bob.say("lobby only").await;
    cat.say("r again").await;
    ann.expect_line("cat said: r again").await;
    // Namespaces stay apart across nodes too. Both are in before either
    // logs in: a login notice still crossing Redis (a busy hub gathers what
    // it publishes for a moment) must not reach a client that came later.
    let mut root = Client::connect(&a.url, "/", TransportType::Websocket).await;
    let mut root_b = Client::connect(&b.url, "/", TransportType::Websocket).await;
    root.login("root").await;
    root_b.expect_line("User root Logged in").await;
    root_b.login("rootb").await;
    root.expect_line("User rootb Logged in").await;
    root_b.say("only /").await;
    root.expect_line("rootb said: only /").await;
    // Disconnect notices cross.
    cat.disconnect().await;
    ann.expect_line("User cat disconnected").await;
}

#[tokio::test]
async fn host_actions_and_listings_cross_the_nodes() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    host_actions_cross(node(&redis), node(&redis)).await;
}

/// Emits, moves, listings, leaves and disconnects by `a`'s host, of a
/// socket on `b`.
async fn host_actions_cross(a: TestHub, b: TestHub) {
    let mut b_events = b.events();
    // Both in before either logs in (see chat_crosses_the_nodes).
    let mut ann = Client::connect(&a.url, "/chat", TransportType::Websocket).await;
    let mut bob = Client::connect(&b.url, "/chat", TransportType::Websocket).await;
    let bob_sid = b_events.connected("/chat").await;
    ann.login("ann").await;
    bob.expect_line("User ann Logged in").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;

    // Emits from a's host reach b's sockets.
    a.hub
        .emit(
            Target::socket("/chat", &bob_sid),
            "news",
            vec![Value::from("direct")],
        )
        .unwrap();
    assert_eq!(
        bob.next().await,
        Incoming::Event("news".into(), vec![serde_json::json!("direct")])
    );
    a.hub
        .emit(
            Target::lobby("/chat"),
            "serverMessage",
            vec![Value::from("lobby everywhere")],
        )
        .unwrap();
    ann.expect_line("lobby everywhere").await;
    bob.expect_line("lobby everywhere").await;

    // a's host moves bob (on b) into a room, and it takes effect on b.
    a.hub.join("/chat", &bob_sid, "vip").await.unwrap();
    ann.join("vip").await;
    bob.say("bob in vip").await;
    ann.expect_line("bob said: bob in vip").await;
    a.hub
        .emit(
            Target::room("/chat", "vip"),
            "serverMessage",
            vec![Value::from("vip news")],
        )
        .unwrap();
    ann.expect_line("vip news").await;
    bob.expect_line("vip news").await;

    // Listings show both nodes' sockets, with names.
    let listing = a.hub.rooms("/chat").await.unwrap();
    assert_eq!(listing.rooms.len(), 1, "{listing:?}");
    let names: Vec<_> = listing.rooms[0]
        .members
        .iter()
        .map(|m| m.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert_eq!(b.hub.rooms("/chat").await.unwrap(), listing);

    // Leave and disconnect, across nodes.
    a.hub.leave("/chat", &bob_sid, "vip").await.unwrap();
    let listing = a.hub.rooms("/chat").await.unwrap();
    assert_eq!(listing.lobby.len(), 1);
    a.hub.disconnect("/chat", &bob_sid).await.unwrap();
    loop {
        match bob.next().await {
            Incoming::Close => break,
            Incoming::Event(..) => {}
            other => panic!("{other:?}"),
        }
    }
    // (ann is in vip and bob left it: the notice went to the lobby.)
    let listing = a.hub.rooms("/chat").await.unwrap();
    assert!(listing.lobby.is_empty(), "{listing:?}");
    // A socket nowhere: not found, once every node has answered.
    let started = std::time::Instant::now();
    let err = a
        .hub
        .join("/chat", "AAAAAAAAAAAAAAAA", "r")
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::SocketNotFound { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting out the timeout"
    );
}

#[tokio::test]
async fn a_redis_outage_keeps_local_chat_and_heals() {
    if !available() {
        return;
    }
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    outage_heals(a, b, &mut redis, |r| r.stop(), |r| r.restart()).await;
}

#[tokio::test]
async fn on_a_redis_cluster_an_outage_keeps_local_chat_and_heals() {
    if !available() {
        return;
    }
    let mut cluster = RedisCluster::start(3);
    let (a, b) = (sharded_node(&cluster), sharded_node(&cluster));
    let stop = |c: &mut RedisCluster| c.nodes.iter_mut().for_each(RedisServer::stop);
    let restart = |c: &mut RedisCluster| {
        c.nodes.iter_mut().for_each(RedisServer::restart);
        c.await_ok();
    };
    outage_heals(a, b, &mut cluster, stop, restart).await;
}

/// Redis goes away (`stop`) while `a` and `b` serve a chat, and comes back
/// (`restart`): each hub serves its own sockets meanwhile, then they are
/// one again.
async fn outage_heals<R>(
    a: TestHub,
    b: TestHub,
    redis: &mut R,
    stop: impl FnOnce(&mut R),
    restart: impl FnOnce(&mut R),
) {
    let mut a_cluster = Events(
        a.hub
            .subscribe(EventFilter::kinds(EventKinds::CLUSTER))
            .unwrap(),
    );
    let mut b_cluster = Events(
        b.hub
            .subscribe(EventFilter::kinds(EventKinds::CLUSTER))
            .unwrap(),
    );
    // All in before the logins (see chat_crosses_the_nodes).
    let mut ann = Client::connect(&a.url, "/", TransportType::Websocket).await;
    let mut amy = Client::connect(&a.url, "/", TransportType::Websocket).await;
    let mut bob = Client::connect(&b.url, "/", TransportType::Websocket).await;
    ann.login("ann").await;
    amy.expect_line("User ann Logged in").await;
    bob.expect_line("User ann Logged in").await;
    amy.login("amy").await;
    ann.expect_line("User amy Logged in").await;
    bob.expect_line("User amy Logged in").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;
    amy.expect_line("User bob Logged in").await;

    stop(redis);
    for events in [&mut a_cluster, &mut b_cluster] {
        let HubEvent::Cluster(e) = events.next().await else {
            panic!()
        };
        assert!(!e.up, "{e:?}");
    }
    // Each node still serves its own sockets.
    ann.say("during the outage").await;
    amy.expect_line("ann said: during the outage").await;
    bob.say("alone on b").await;
    // Host actions that need the other nodes say why they cannot.
    let err = a.hub.join("/", "AAAAAAAAAAAAAAAA", "r").await.unwrap_err();
    assert!(matches!(err, ActionError::Delivery(_)), "{err}");

    restart(redis);
    for events in [&mut a_cluster, &mut b_cluster] {
        let HubEvent::Cluster(e) = events.next().await else {
            panic!()
        };
        assert!(e.up, "{e:?}");
    }
    // Cross-node delivery is back, without restarting any hub.
    bob.say("after the outage").await;
    ann.expect_line("bob said: after the outage").await;
    amy.expect_line("bob said: after the outage").await;
    ann.say("back").await;
    bob.expect_line("ann said: back").await;
}

#[test]
fn start_fails_clearly_when_redis_is_unreachable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Hub::start(HubConfig {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        ..config()
    })
    .unwrap_err();
    assert!(matches!(err, StartError::Redis { .. }), "{err}");
    assert!(err.to_string().contains("cannot reach Redis"), "{err}");
    let err = Hub::start(HubConfig {
        redis_url: Some("http://nope".into()),
        ..config()
    })
    .unwrap_err();
    assert!(matches!(err, StartError::InvalidConfig(_)), "{err}");
}

#[tokio::test]
async fn a_node_that_stops_leaves_the_others_serving() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let a = node(&redis);
    let mut ann = Client::connect(&a.url, "/", TransportType::Websocket).await;
    {
        // Both in before either logs in (see chat_crosses_the_nodes).
        let b = node(&redis);
        let mut bob = Client::connect(&b.url, "/", TransportType::Websocket).await;
        ann.login("ann").await;
        bob.expect_line("User ann Logged in").await;
        bob.login("bob").await;
        ann.expect_line("User bob Logged in").await;
        bob.say("bye").await;
        ann.expect_line("bob said: bye").await;
        b.hub.shutdown();
        // b's sockets left: a's clients are told.
        ann.expect_line("User bob disconnected").await;
    }
    let mut amy = connect(&a, "/", "amy").await;
    ann.expect_line("User amy Logged in").await;
    amy.say("still here").await;
    ann.expect_line("amy said: still here").await;
    assert_eq!(a.hub.rooms("/").await.unwrap().lobby.len(), 2);
}

/// The next presence event of `events` about `sid`: (change, room, name, hub).
async fn presence_of(
    events: &mut Events,
    sid: &str,
) -> (
    chathub::events::PresenceChange,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    events
        .find(|e| match e {
            HubEvent::Presence(p) if p.sid == sid => Some((p.change, p.room, p.name, p.hub)),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn presence_crosses_the_nodes_and_a_new_node_hears_of_everyone() {
    use chathub::events::PresenceChange::{Joined, Left, Renamed};
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut a_events = a.events();
    let mut b_events = b.events();
    let b_node = b.hub.cluster_node().unwrap();
    // Both nodes know each other before bob connects.
    let _ann = connect(&a, "/chat", "ann").await;
    b_events
        .find(|e| {
            matches!(e, HubEvent::Presence(p) if p.name.as_deref() == Some("ann")).then_some(())
        })
        .await;

    let mut bob = Client::connect(&b.url, "/chat", TransportType::Websocket).await;
    let sid = b_events.connected("/chat").await;
    let on_b = Some(b_node.clone());
    assert_eq!(
        presence_of(&mut a_events, &sid).await,
        (Joined, None, None, on_b.clone())
    );
    bob.login("bob").await;
    assert_eq!(
        presence_of(&mut a_events, &sid).await,
        (Renamed, None, Some("bob".into()), on_b.clone())
    );
    bob.join("r1").await;
    assert_eq!(
        presence_of(&mut a_events, &sid).await,
        (Left, None, Some("bob".into()), on_b.clone())
    );
    assert_eq!(
        presence_of(&mut a_events, &sid).await,
        (Joined, Some("r1".into()), Some("bob".into()), on_b.clone())
    );
    // The local side of it, on b itself.
    assert_eq!(presence_of(&mut b_events, &sid).await.3, on_b);

    // Listings say which hub each member is on.
    let listing = a.hub.rooms("/chat").await.unwrap();
    let in_r1 = &listing.rooms[0].members[0];
    assert_eq!(
        (in_r1.sid.as_str(), in_r1.hub.clone()),
        (sid.as_str(), on_b.clone())
    );
    assert_eq!(listing.lobby[0].hub, a.hub.cluster_node());

    // A node that joins later hears of everyone already there.
    let c = node(&redis);
    let mut c_events = c.events();
    let seen = c_events
        .find(|e| match e {
            HubEvent::Presence(p) if p.sid == sid => Some((p.change, p.room, p.hub)),
            _ => None,
        })
        .await;
    assert_eq!(seen, (Joined, Some("r1".into()), on_b.clone()));

    // A socket that leaves, leaves everywhere.
    bob.disconnect().await;
    assert_eq!(
        presence_of(&mut a_events, &sid).await,
        (Left, Some("r1".into()), Some("bob".into()), on_b.clone())
    );
    assert_eq!(presence_of(&mut c_events, &sid).await.0, Left);
}

#[tokio::test]
async fn the_members_of_a_node_that_stops_answering_leave() {
    use chathub::events::PresenceChange::{Joined, Left};
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let a = node(&redis);
    let mut events = a.events();
    // A node that says it is alive, has a member, then goes silent (as a
    // killed process would: no leave, no goodbye).
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let publish = |text: String| {
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg("chathub#all").arg(text);
        cmd
    };
    let heartbeat = r#"{"v":2,"t":"heartbeat","from":"ghost","reply":false}"#;
    let _: i64 = publish(heartbeat.into())
        .query_async(&mut conn)
        .await
        .unwrap();
    let joined = r#"{"v":2,"t":"presence","from":"ghost","ns":"/chat","sid":"g1","name":"casper","room":"r","change":"joined"}"#;
    let _: i64 = publish(joined.into()).query_async(&mut conn).await.unwrap();
    let seen = presence_of(&mut events, "g1").await;
    assert_eq!(
        seen,
        (
            Joined,
            Some("r".into()),
            Some("casper".into()),
            Some("ghost".into())
        )
    );
    let silent = std::time::Instant::now();
    let left = events
        .find_within(Duration::from_secs(10), |e| match e {
            HubEvent::Presence(p) if p.sid == "g1" => Some((p.change, p.room, p.hub)),
            _ => None,
        })
        .await;
    assert_eq!(left, (Left, Some("r".into()), Some("ghost".into())));
    let after = silent.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(6),
        "left {after:?} after its last heartbeat"
    );
}

#[tokio::test]
async fn presence_heals_after_a_redis_outage_shorter_than_the_expiry() {
    use chathub::events::PresenceChange::{Joined, Left, Renamed};
    if !available() {
        return;
    }
    let mut redis = RedisServer::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut a_events = a.events();
    let mut b_events = b.events();
    let _ann = connect(&a, "/chat", "ann").await;
    let ann_sid = a_events.connected("/chat").await;
    assert_eq!(presence_of(&mut b_events, &ann_sid).await.0, Joined);
    let leaver = Client::connect(&a.url, "/chat", TransportType::Websocket).await;
    let leaver_sid = a_events.connected("/chat").await;
    assert_eq!(presence_of(&mut b_events, &leaver_sid).await.0, Joined);

    // While Redis is away, one member leaves and another comes, on a: the
    // presence messages are lost.
    redis.stop();
    a_events
        .find(|e| matches!(e, HubEvent::Cluster(c) if !c.up).then_some(()))
        .await;
    leaver.disconnect().await;
    let mut cid = Client::connect(&a.url, "/chat", TransportType::Websocket).await;
    let cid_sid = a_events.connected("/chat").await;
    cid.login("cid").await;
    redis.restart();

    // Once Redis is back, b learns both, whether or not a expired meanwhile.
    let mut joined = false;
    let mut left = false;
    while !(joined && left) {
        let e = b_events
            .find(|e| match e {
                HubEvent::Presence(p) if p.sid == cid_sid || p.sid == leaver_sid => Some(p),
                _ => None,
            })
            .await;
        if e.sid == leaver_sid && e.change == Left {
            left = true;
        }
        if e.sid == cid_sid
            && matches!(e.change, Joined | Renamed)
            && e.name.as_deref() == Some("cid")
        {
            joined = true;
        }
    }
    let listing = b.hub.rooms("/chat").await.unwrap();
    let names: Vec<Option<&str>> = listing.lobby.iter().map(|m| m.name.as_deref()).collect();
    assert!(names.contains(&Some("cid")), "{names:?}");
}

/// A raw client of host namespace `/app` on `url`, and its socket id.
async fn app_client(url: &str) -> (crate::fixture::RawClient, String) {
    let mut c = crate::fixture::RawClient::open(url).await;
    c.ns = "/app".into();
    c.send_text("40/app,").await;
    let answer = c.text().await;
    let body = answer.strip_prefix("40/app,").expect("a CONNECT answer");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let sid = v["sid"].as_str().unwrap().to_owned();
    (c, sid)
}

/// The next event's first argument, for a raw client of `/app`.
async fn app_event(c: &mut crate::fixture::RawClient) -> String {
    let t = c.text().await;
    let v: Vec<serde_json::Value> =
        serde_json::from_str(t.strip_prefix("42/app,").expect("an event")).unwrap();
    v[1].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn emits_to_many_rooms_but_some_reach_each_socket_once_on_every_node() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let hub = |redis: &RedisServer| {
        TestHub::with(HubConfig {
            redis_url: Some(redis.url()),
            host_namespaces: vec!["/app".into()],
            ..config()
        })
    };
    let a = hub(&redis);
    let b = hub(&redis);
    let (mut x, xs) = app_client(&a.url).await;
    let (mut y, ys) = app_client(&b.url).await;
    let (mut z, zs) = app_client(&b.url).await;
    for (sid, rooms) in [
        (&xs, ["r1", "r2"]),
        (&ys, ["r2", "r3"]),
        (&zs, ["r3", "r3"]),
    ] {
        for room in rooms {
            a.hub.join("/app", sid, room).await.unwrap();
        }
    }
    let send = |rooms: &[&str], except: &[&str], text: &str| {
        a.hub
            .emit(
                Target::rooms("/app", rooms.to_vec(), except.to_vec()),
                "e",
                vec![Value::from(text)],
            )
            .unwrap();
    };
    // x and y are in both r1/r2 or r2/r3: each gets it once.
    send(&["r1", "r2", "r3"], &[], "all three");
    // Except a room (its members on every node) and a socket by id.
    send(&["r2", "r3"], &["r1"], "not r1");
    send(&[], &[zs.as_str()], "all but z");
    assert_eq!(app_event(&mut x).await, "all three");
    assert_eq!(app_event(&mut x).await, "all but z");
    assert_eq!(app_event(&mut y).await, "all three");
    assert_eq!(app_event(&mut y).await, "not r1");
    assert_eq!(app_event(&mut y).await, "all but z");
    assert_eq!(app_event(&mut z).await, "all three");
    assert_eq!(app_event(&mut z).await, "not r1");
    // A room name the namespace refuses is an error, before anything is sent.
    let err = a
        .hub
        .emit(Target::rooms("/app", [""], [] as [&str; 0]), "e", vec![])
        .unwrap_err();
    assert!(matches!(err, ActionError::InvalidRoom(_)), "{err}");
}

#[tokio::test]
async fn ready_turns_false_while_redis_is_away_and_health_stays_true() {
    if !available() {
        return;
    }
    let mut redis = RedisServer::start();
    let a = TestHub::with(HubConfig {
        redis_url: Some(redis.url()),
        // Not ready as soon as Redis is found away.
        redis_unready_after: Duration::ZERO,
        ..config()
    });
    let mut cluster = Events(
        a.hub
            .subscribe(EventFilter::kinds(EventKinds::CLUSTER))
            .unwrap(),
    );
    let get = |path: &'static str| crate::fixture::http(&a.url, "GET", path, &[], b"");
    assert_eq!(get("/ready").await, (200, "ready".into()));
    redis.stop();
    let HubEvent::Cluster(e) = cluster.next().await else {
        panic!()
    };
    assert!(!e.up);
    let (status, body) = get("/ready").await;
    assert_eq!(status, 503);
    assert!(body.contains("Redis has been unreachable"), "{body}");
    assert_eq!(
        get("/health").await,
        (200, "ok".into()),
        "alive all the same"
    );
    redis.restart();
    let HubEvent::Cluster(e) = cluster.next().await else {
        panic!()
    };
    assert!(e.up);
    assert_eq!(get("/ready").await, (200, "ready".into()));
}

/// Lines a busy hub publishes within its `redis_batch` window cross Redis
/// as one pipeline (one read for Redis instead of one per line), in order
/// and none lost.
#[tokio::test]
async fn a_busy_hub_sends_its_lines_to_redis_in_pipelines_in_order() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let a = TestHub::with(HubConfig {
        redis_url: Some(redis.url()),
        redis_batch: Duration::from_millis(200),
        ..config()
    });
    let b = node(&redis);
    let mut bob = connect(&b, "/chat", "bob").await;
    bob.join("r").await;
    a.hub
        .emit(
            Target::room("/chat", "r"),
            "serverMessage",
            vec![Value::from("first")],
        )
        .unwrap();
    bob.expect_line("first").await;

    const LINES: u64 = 60;
    let reads = redis.info_counter("stats", "total_reads_processed");
    let publishes = redis.info_counter("commandstats", "cmdstat_publish");
    // A line every 2 ms: one PUBLISH each, one pipeline per window.
    for i in 0..LINES {
        a.hub
            .emit(
                Target::room("/chat", "r"),
                "serverMessage",
                vec![Value::from(format!("line {i}"))],
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 0..LINES {
        bob.expect_line(&format!("line {i}")).await;
    }
    let reads = redis.info_counter("stats", "total_reads_processed") - reads;
    let publishes = redis.info_counter("commandstats", "cmdstat_publish") - publishes;
    assert!(publishes >= LINES, "{publishes} PUBLISH for {LINES} lines");
    // One read per pipeline, and a few for heartbeats and this test's own
    // INFO: far fewer than one per line.
    assert!(
        reads < LINES / 3,
        "Redis read {reads} times for {LINES} lines sent 2 ms apart"
    );
}

/// How many connections Redis counts as subscribed to the channel of
/// `room` of `ns` (`PUBSUB NUMSUB`): one per hub with members in it.
async fn subscribers(redis: &RedisServer, ns: &str, room: &str) -> i64 {
    room_subscribers(redis, "NUMSUB", ns, room).await
}

/// `PUBSUB <count>` (`NUMSUB`, `SHARDNUMSUB`) of the channel of `room` of
/// `ns`, asked of `redis`.
async fn room_subscribers(redis: &RedisServer, count: &str, ns: &str, room: &str) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("chathub#room#{}#{ns}#{room}", ns.len());
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg(count)
        .arg(&channel)
        .query_async(&mut c)
        .await
        .unwrap();
    n
}

/// Waits (a bounded number of asks) for the room's channel to have `n`
/// subscribers: a hub unsubscribes a moment after its last member left.
async fn await_subscribers(redis: &RedisServer, ns: &str, room: &str, n: i64) {
    for _ in 0..200 {
        if subscribers(redis, ns, room).await == n {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        subscribers(redis, ns, room).await,
        n,
        "subscribers of {room}"
    );
}

#[tokio::test]
async fn a_room_s_lines_go_to_the_hubs_with_members_in_it_only() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let hub = || {
        TestHub::with(HubConfig {
            redis_url: Some(redis.url()),
            host_namespaces: vec!["/app".into()],
            ..config()
        })
    };
    let (a, b, c) = (hub(), hub(), hub());
    let (mut x, xs) = app_client(&a.url).await;
    let (mut y, ys) = app_client(&b.url).await;
    let (mut z, zs) = app_client(&c.url).await;
    assert_eq!(subscribers(&redis, "/app", "r").await, 0);
    // A join resolves once its hub hears the room: the count is exact then.
    a.hub.join("/app", &xs, "r").await.unwrap();
    assert_eq!(subscribers(&redis, "/app", "r").await, 1);
    // Through another hub (the request crosses Redis): the same.
    a.hub.join("/app", &ys, "r").await.unwrap();
    assert_eq!(subscribers(&redis, "/app", "r").await, 2);
    c.hub.join("/app", &zs, "other").await.unwrap();
    assert_eq!(
        subscribers(&redis, "/app", "r").await,
        2,
        "c has no member in r"
    );

    // c sends to r without hearing it; its own socket is not in r.
    let tick = |hub: &TestHub, text: &str| {
        hub.hub
            .emit(Target::room("/app", "r"), "e", vec![Value::from(text)])
            .unwrap();
    };
    tick(&c, "from c");
    assert_eq!(app_event(&mut x).await, "from c");
    assert_eq!(app_event(&mut y).await, "from c");
    // One room with exceptions takes the room's channel too.
    c.hub
        .emit(
            Target::rooms("/app", ["r"], [xs.as_str()]),
            "e",
            vec![Value::from("not x")],
        )
        .unwrap();
    assert_eq!(app_event(&mut y).await, "not x");

    // b's last member leaves r: b stops hearing it.
    b.hub.leave("/app", &ys, "r").await.unwrap();
    await_subscribers(&redis, "/app", "r", 1).await;
    // x's transport goes: a stops hearing it too.
    drop(x);
    await_subscribers(&redis, "/app", "r", 0).await;
    // And hears it again with a new member.
    b.hub.join("/app", &ys, "r").await.unwrap();
    assert_eq!(subscribers(&redis, "/app", "r").await, 1);
    tick(&a, "again");
    assert_eq!(app_event(&mut y).await, "again");
    c.hub
        .emit(Target::room("/app", "other"), "e", vec![Value::from("z")])
        .unwrap();
    assert_eq!(app_event(&mut z).await, "z");
}

#[tokio::test]
async fn a_chat_join_is_answered_once_the_hub_hears_the_room() {
    if !available() {
        return;
    }
    let redis = RedisServer::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut events = b.events();
    let mut bob = b.logged_in("/chat", "bob").await;

    // Redis holds every command for a second and a half: b's
    // subscription to the room cannot be confirmed before.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    bob.emit("join", serde_json::json!("fresh")).await;
    events
        .find(|e| match e {
            HubEvent::Join(j) if j.to.as_deref() == Some("fresh") => Some(()),
            _ => None,
        })
        .await;
    // Moved, but not told so: a line of another hub said now would be lost.
    let early = tokio::time::timeout(Duration::from_millis(300), bob.next()).await;
    assert!(
        early.is_err(),
        "answered before the room was heard: {early:?}"
    );
    // Once the pause ends.
    bob.expect_line("joined room success!").await;
    // A line of the other hub, said right after the answer, arrives.
    a.hub
        .emit(
            Target::room("/chat", "fresh"),
            "serverMessage",
            vec![Value::from("from a")],
        )
        .unwrap();
    bob.expect_line("from a").await;
}

/// A hub on the Redis Cluster `cluster` (sharded pub/sub), with the host
/// namespace `/app`.
fn sharded_node(cluster: &RedisCluster) -> TestHub {
    TestHub::with(HubConfig {
        redis_url: Some(cluster.url()),
        redis_cluster: true,
        host_namespaces: vec!["/app".into()],
        ..config()
    })
}

#[tokio::test]
async fn on_a_redis_cluster_the_chat_and_host_actions_cross_the_hubs() {
    if !available() {
        return;
    }
    let cluster = RedisCluster::start(3);
    chat_crosses(sharded_node(&cluster), sharded_node(&cluster)).await;
    host_actions_cross(sharded_node(&cluster), sharded_node(&cluster)).await;
    // Everything went over sharded pub/sub: no node saw a plain PUBLISH.
    let (mut spublish, mut publish) = (0, 0);
    for node in &cluster.nodes {
        spublish += node.info_counter("commandstats", "cmdstat_spublish");
        publish += node.info_counter("commandstats", "cmdstat_publish");
    }
    assert!(spublish > 0);
    assert_eq!(publish, 0);
}

/// How many connections the shard `node` counts as subscribed to the
/// channel of `room` of `ns` (`PUBSUB SHARDNUMSUB`).
async fn shard_subscribers(node: &RedisServer, ns: &str, room: &str) -> i64 {
    room_subscribers(node, "SHARDNUMSUB", ns, room).await
}

#[tokio::test]
async fn on_a_redis_cluster_each_room_lives_on_the_shard_of_its_slot() {
    if !available() {
        return;
    }
    let cluster = RedisCluster::start(3);
    let (a, b, c) = (
        sharded_node(&cluster),
        sharded_node(&cluster),
        sharded_node(&cluster),
    );
    // A room on each shard (Redis says which owns which).
    let mut rooms: Vec<(String, usize)> = Vec::new();
    for i in 0.. {
        let room = format!("r{i}");
        let owner = cluster.owner(&format!("chathub#room#4#/app#{room}"));
        if !rooms.iter().any(|(_, o)| *o == owner) {
            rooms.push((room, owner));
        }
        if rooms.len() == cluster.nodes.len() {
            break;
        }
    }
    let (mut x, xs) = app_client(&a.url).await;
    let (mut y, ys) = app_client(&b.url).await;
    let (_z, _) = app_client(&c.url).await;
    for (room, _) in &rooms {
        a.hub.join("/app", &xs, room).await.unwrap();
        a.hub.join("/app", &ys, room).await.unwrap();
    }
    // Each room's channel: two subscribers (a and b) on its own shard,
    // none on the others.
    for (room, owner) in &rooms {
        for (i, node) in cluster.nodes.iter().enumerate() {
            let want = if i == *owner { 2 } else { 0 };
            assert_eq!(
                shard_subscribers(node, "/app", room).await,
                want,
                "{room} on node {i} (owner {owner})"
            );
        }
    }
    // c has no member in any of them and still reaches them all; each
    // line crosses its room's shard only.
    let before: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.info_counter("commandstats", "cmdstat_spublish"))
        .collect();
    for (room, _) in &rooms {
        c.hub
            .emit(
                Target::room("/app", room),
                "e",
                vec![Value::from(room.as_str())],
            )
            .unwrap();
        assert_eq!(app_event(&mut x).await, *room);
        assert_eq!(app_event(&mut y).await, *room);
    }
    for (i, node) in cluster.nodes.iter().enumerate() {
        let n = node.info_counter("commandstats", "cmdstat_spublish") - before[i];
        // One line per shard; a heartbeat (every second, on the shard of
        // the prefix's channel) may come in between.
        assert!(n >= 1, "node {i} carried {n} lines");
    }
    // The last member leaves: the shard forgets the hub.
    b.hub.leave("/app", &ys, &rooms[0].0).await.unwrap();
    let owner = &cluster.nodes[rooms[0].1];
    for _ in 0..200 {
        if shard_subscribers(owner, "/app", &rooms[0].0).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shard_subscribers(owner, "/app", &rooms[0].0).await, 1);
}
