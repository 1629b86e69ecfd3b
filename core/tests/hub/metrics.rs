//! The Prometheus endpoint: off by default; on a path of the hub's
//! listener and on a listener of its own; its figures move exactly as a
//! known chat does (connects, lines, a flood cut, a payload cut, a refused
//! origin, hooks, a client leaving).

use std::collections::HashMap;

use chathub::{FloodLimits, HubConfig, HubEvent, IpLimits, hooks};
use rust_socketio::TransportType;
use serde_json::Value as Json;
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::*;

/// One scrape: each sample (`name{labels}`) and its value.
#[derive(Debug, Clone)]
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (name, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample line: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("a number in {line:?}"));
            assert!(
                samples.insert(name.to_owned(), value).is_none(),
                "{name} twice"
            );
        }
        Scrape(samples)
    }

    fn get(&self, sample: &str) -> f64 {
        *self
            .0
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in {:?}", self.0.keys()))
    }

    /// How much `sample` moved since `before`.
    fn delta(&self, before: &Scrape, sample: &str) -> f64 {
        self.get(sample) - before.get(sample)
    }
}

async fn scrape(base: &str, path: &str) -> Scrape {
    let (status, body) = http(base, "GET", path, &[], b"").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

/// Reads `c`'s frames until the `serverMessage` `line`; returns the bytes
/// of every frame read on the way as the hub wrote them (a server frame
/// under 126 bytes has a 2-byte header).
async fn read_until(c: &mut RawClient, line: &str) -> usize {
    let mut bytes = 0;
    loop {
        let Frame::Text(t) = c.frame().await else {
            panic!("the connection ended before {line:?}");
        };
        assert!(t.len() < 126, "a short frame: {t}");
        bytes += 2 + t.len();
        let body = t.strip_prefix(&format!("42{}", prefix(&c.ns)));
        if let Some(v) = body.and_then(|b| serde_json::from_str::<Vec<Json>>(b).ok())
            && v[0] == "serverMessage"
            && v[1] == line
        {
            return bytes;
        }
    }
}

/// Sends an event; returns the bytes the hub reads for it (a client frame
/// under 126 bytes: 2 bytes of header and 4 of mask).
async fn send(c: &mut RawClient, event: &str, arg: &str) -> usize {
    let packet = format!("42{}{}", prefix(&c.ns), serde_json::json!([event, arg]));
    assert!(packet.len() < 126);
    c.send_text(&packet).await;
    6 + packet.len()
}

fn metrics_config() -> HubConfig {
    HubConfig {
        metrics_path: Some("/metrics".into()),
        metrics_bind: Some("127.0.0.1:0".parse().unwrap()),
        max_payload: 1000,
        // Ten events at once, then one a second; the third dropped in a
        // row cuts the socket.
        flood: FloodLimits {
            events_per_sec: 1,
            event_burst: 10,
            strikes: 3,
            ..FloodLimits::off()
        },
        ip_limits: IpLimits::off(),
        ..config()
    }
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let t = TestHub::start();
    let (status, _) = http(&t.url, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 404);
    assert_eq!(t.hub.metrics_addr(), None);
    // The host can still read the text and serve it itself.
    let text = t.hub.metrics_text();
    assert!(
        text.contains("# TYPE chathub_connections gauge\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_metrics_path_the_hub_needs_is_refused() {
    for path in ["/health", "/ready", "/", "/socket.io/x", "metrics", "/a b"] {
        let c = HubConfig {
            metrics_path: Some(path.into()),
            ..config()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("metrics_path"), "{path}: {e}");
    }
}

#[tokio::test]
async fn the_figures_follow_a_known_chat() {
    let t = TestHub::with(metrics_config());
    let mut events = t.events();
    let own = format!(
        "http://{}",
        t.hub.metrics_addr().expect("a metrics listener")
    );

    // The text: its content type, HELP and TYPE for every family; the
    // listener of its own answers the same families and 404 elsewhere.
    let (status, text) = http(&t.url, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    let (status, head) = http_head(&t.url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for family in [
        "chathub_connections gauge",
        "chathub_connections_opened_total counter",
        "chathub_connections_closed_total counter",
        "chathub_sockets gauge",
        "chathub_rooms gauge",
        "chathub_packets_received_total counter",
        "chathub_packets_sent_total counter",
        "chathub_broadcasts_total counter",
        "chathub_received_bytes_total counter",
        "chathub_sent_bytes_total counter",
        "chathub_dropped_total counter",
        "chathub_cuts_total counter",
        "chathub_refused_total counter",
        "chathub_hook_duration_seconds histogram",
        "chathub_cluster_up gauge",
        "chathub_cluster_published_total counter",
        "chathub_cluster_received_total counter",
        "chathub_recovery_total counter",
    ] {
        assert!(text.contains(&format!("# TYPE {family}\n")), "{family}");
        let name = family.split(' ').next().unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    let (status, other) = http(&own, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    let types = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("# TYPE"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(types(&other), types(&text));
    assert_eq!(http(&own, "GET", "/", &[], b"").await.0, 404);
    assert_eq!(http(&own, "GET", "/socket.io/", &[], b"").await.0, 404);

    t.hub
        .set_connect_hook(Some(hooks::connect_hook(|_req| async { Ok(()) })))
        .unwrap();
    t.hub
        .set_login_hook(Some(hooks::login_hook(|_req| async { Ok(()) })))
        .unwrap();

    // Connects: two WebSockets on `/`, one long-polling client (a real
    // Socket.IO client) on `/chat`.
    let s0 = scrape(&t.url, "/metrics").await;
    let mut a = RawClient::connect(&t.url, "/").await;
    let mut b = RawClient::connect(&t.url, "/").await;
    let mut p = Client::connect(&t.url, "/chat", TransportType::Polling).await;
    let s1 = scrape(&own, "/metrics").await;
    let ws = "chathub_connections{transport=\"websocket\"}";
    let polling = "chathub_connections{transport=\"polling\"}";
    assert_eq!(s1.delta(&s0, ws), 2.0);
    assert_eq!(s1.delta(&s0, polling), 1.0);
    assert_eq!(
        s1.delta(
            &s0,
            "chathub_connections_opened_total{transport=\"websocket\"}"
        ),
        2.0
    );
    assert_eq!(
        s1.delta(&s0, "chathub_packets_received_total{type=\"connect\"}"),
        3.0
    );
    assert_eq!(s1.get("chathub_sockets{namespace=\"/\"}"), 2.0);
    assert_eq!(s1.get("chathub_sockets{namespace=\"/chat\"}"), 1.0);
    assert_eq!(
        s1.delta(&s0, "chathub_hook_duration_seconds_count{hook=\"connect\"}"),
        3.0
    );
    assert_eq!(
        s1.delta(
            &s0,
            "chathub_hook_duration_seconds_bucket{hook=\"connect\",le=\"+Inf\"}"
        ),
        3.0
    );

    // Logins: every line each client gets is read, so that everything
    // pushed so far has been written.
    send(&mut a, "login", "alice").await;
    read_until(&mut a, "Currently logged in as alice").await;
    read_until(&mut b, "User alice Logged in").await;
    send(&mut b, "login", "bob").await;
    read_until(&mut b, "Currently logged in as bob").await;
    read_until(&mut a, "User bob Logged in").await;
    let s2 = scrape(&t.url, "/metrics").await;
    assert_eq!(
        s2.delta(&s1, "chathub_hook_duration_seconds_count{hook=\"login\"}"),
        2.0
    );
    assert_eq!(
        s2.delta(&s1, "chathub_packets_received_total{type=\"event\"}"),
        2.0
    );

    // Lines: alice says five; bob (in the lobby) gets each, alice her
    // echo. Bytes in and out exactly: alice's frames in; her echoes and
    // bob's copies out.
    let mut bytes_in = 0;
    let mut bytes_out = 0;
    for i in 0..5 {
        let line = format!("line {i}");
        bytes_in += send(&mut a, "clientMessage", &line).await;
        bytes_out += read_until(&mut a, &format!("You said: {line}")).await;
        bytes_out += read_until(&mut b, &format!("alice said: {line}")).await;
    }
    let s3 = scrape(&t.url, "/metrics").await;
    assert_eq!(
        s3.delta(&s2, "chathub_packets_received_total{type=\"event\"}"),
        5.0
    );
    assert_eq!(s3.delta(&s2, "chathub_broadcasts_total"), 5.0);
    assert_eq!(
        s3.delta(&s2, "chathub_packets_sent_total{kind=\"broadcast\"}"),
        5.0
    );
    assert_eq!(
        s3.delta(&s2, "chathub_packets_sent_total{kind=\"direct\"}"),
        5.0
    );
    assert_eq!(
        s3.delta(&s2, "chathub_received_bytes_total"),
        bytes_in as f64
    );
    assert_eq!(s3.delta(&s2, "chathub_sent_bytes_total"), bytes_out as f64);
    // Long-polling bodies count too.
    p.login("polly").await;
    let s4 = scrape(&t.url, "/metrics").await;
    assert!(s4.delta(&s3, "chathub_received_bytes_total") > 0.0);
    assert!(s4.delta(&s3, "chathub_sent_bytes_total") > 0.0);

    // A room: alice leaves the lobby for "r1".
    assert_eq!(s4.get("chathub_rooms{namespace=\"/\"}"), 0.0);
    send(&mut a, "join", "r1").await;
    read_until(&mut a, "joined room success!").await;
    let s5 = scrape(&t.url, "/metrics").await;
    assert_eq!(s5.get("chathub_rooms{namespace=\"/\"}"), 1.0);

    // A flood: a login and nine lines pass (the burst of ten), the next
    // two are dropped, the third dropped cuts the socket.
    let mut f = RawClient::connect(&t.url, "/").await;
    send(&mut f, "login", "flo").await;
    read_until(&mut f, "Currently logged in as flo").await;
    let s6 = scrape(&t.url, "/metrics").await;
    for i in 0..12 {
        send(&mut f, "clientMessage", &format!("flood {i}")).await;
    }
    events
        .find(|e| match e {
            HubEvent::Disconnect(d) if d.name.as_deref() == Some("flo") => {
                assert_eq!(d.reason, "flood");
                Some(())
            }
            _ => None,
        })
        .await;
    let s7 = scrape(&t.url, "/metrics").await;
    assert_eq!(
        s7.delta(&s6, "chathub_packets_received_total{type=\"event\"}"),
        12.0
    );
    assert_eq!(
        s7.delta(&s6, "chathub_dropped_total{reason=\"flood\"}"),
        3.0
    );
    assert_eq!(s7.delta(&s6, "chathub_cuts_total{reason=\"flood\"}"), 1.0);
    assert_eq!(
        s7.delta(&s6, "chathub_dropped_total{reason=\"slow consumer\"}"),
        0.0
    );

    // A packet over max_payload cuts its connection.
    let mut big = RawClient::open(&t.url).await;
    big.send_message(Message::text(format!("4{}", "x".repeat(2000))))
        .await;
    assert_eq!(big.frame().await, Frame::Closed);
    // The cut is counted before the close frame is written.
    let s8 = scrape(&t.url, "/metrics").await;
    assert_eq!(s8.delta(&s7, "chathub_cuts_total{reason=\"payload\"}"), 1.0);
    assert_eq!(
        s8.delta(
            &s7,
            "chathub_connections_closed_total{reason=\"transport error\"}"
        ),
        1.0
    );

    // A request from another origin is refused.
    let (status, _) = http(
        &t.url,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://elsewhere.example")],
        b"",
    )
    .await;
    assert_eq!(status, 403);
    let s9 = scrape(&t.url, "/metrics").await;
    assert_eq!(
        s9.delta(&s8, "chathub_refused_total{reason=\"origin\"}"),
        1.0
    );

    // Bob leaves: one WebSocket fewer, closed by its client.
    b.send_message(Message::Close(None)).await;
    events
        .find(|e| match e {
            HubEvent::Disconnect(d) if d.name.as_deref() == Some("bob") => Some(()),
            _ => None,
        })
        .await;
    let s10 = scrape(&t.url, "/metrics").await;
    assert_eq!(s10.delta(&s9, ws), -1.0);
    assert_eq!(
        s10.delta(
            &s9,
            "chathub_connections_closed_total{reason=\"transport close\"}"
        ),
        1.0
    );
    // alice on `/` (bob left, flo was cut), polly on `/chat`.
    assert_eq!(s10.get("chathub_sockets{namespace=\"/\"}"), 1.0);
    assert_eq!(s10.get("chathub_sockets{namespace=\"/chat\"}"), 1.0);
    assert_eq!(s10.get("chathub_cluster_enabled"), 0.0);

    // The host reads the same figures as a structure.
    let st = t.hub.stats();
    assert_eq!(st.flood_disconnects, 1);
    assert_eq!(st.payload_disconnects, 1);
    assert_eq!(st.origin_refusals, 1);
    assert_eq!(st.connections_polling, 1);
    assert_eq!(
        st.events_received as f64,
        s10.get("chathub_packets_received_total{type=\"event\"}")
    );
    assert!(st.bytes_received >= s10.get("chathub_received_bytes_total") as u64);
    p.disconnect().await;
    drop((a, f));
}

/// A `HEAD` request: the status and the head.
async fn http_head(base: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// Scrapes `base`'s `/metrics` until `done` holds (within the test's wait).
async fn scrape_until(base: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    tokio::time::timeout(WAIT, async {
        loop {
            let m = scrape(base, "/metrics").await;
            if done(&m) {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the figure in time")
}

#[tokio::test]
async fn cluster_figures_follow_redis() {
    if !crate::redis::available() {
        return;
    }
    let mut redis = crate::redis::RedisServer::start();
    let node = |url: String| {
        TestHub::with(HubConfig {
            redis_url: Some(url),
            metrics_path: Some("/metrics".into()),
            ..config()
        })
    };
    let a = node(redis.url());
    let b = node(redis.url());
    let mut a_events = a.events();
    let mut ann = Client::connect(&a.url, "/chat", TransportType::Websocket).await;
    let mut bob = Client::connect(&b.url, "/chat", TransportType::Websocket).await;
    ann.login("ann").await;
    bob.expect_line("User ann Logged in").await;
    let a0 = scrape(&a.url, "/metrics").await;
    let b0 = scrape(&b.url, "/metrics").await;
    assert_eq!(a0.get("chathub_cluster_enabled"), 1.0);
    assert_eq!(a0.get("chathub_cluster_up"), 1.0);
    assert_eq!(a0.get("chathub_cluster_down_seconds"), 0.0);
    ann.say("across").await;
    bob.expect_line("ann said: across").await;
    // The line at least (heartbeats come and go besides). The publisher
    // counts a command once Redis has answered it, which may be after the
    // other hub got the line: wait for the count.
    let a1 = scrape_until(&a.url, |m| {
        m.delta(&a0, "chathub_cluster_published_total") >= 1.0
    })
    .await;
    let b1 = scrape(&b.url, "/metrics").await;
    assert!(b1.delta(&b0, "chathub_cluster_received_total") >= 1.0);

    // Redis away: the hub says so, and what it could not publish is lost.
    redis.stop();
    a_events
        .find(|e| matches!(e, HubEvent::Cluster(c) if !c.up).then_some(()))
        .await;
    ann.say("into the void").await;
    let a2 = scrape(&a.url, "/metrics").await;
    assert_eq!(a2.get("chathub_cluster_up"), 0.0);
    assert!(a2.get("chathub_cluster_down_seconds") >= 0.0);
    // The publisher finds Redis gone on its own time (after the line was
    // echoed): each further line is one more chance, within bounds.
    let lost_before = a1.get("chathub_cluster_lost_total");
    let mut tries = 0;
    while scrape(&a.url, "/metrics")
        .await
        .get("chathub_cluster_lost_total")
        <= lost_before
    {
        tries += 1;
        assert!(tries < 100, "no message counted lost while Redis is away");
        ann.say(&format!("still away {tries}")).await;
    }
    assert!(a.hub.stats().cluster_messages_lost as f64 > lost_before);
    redis.restart();
    a_events
        .find(|e| matches!(e, HubEvent::Cluster(c) if c.up).then_some(()))
        .await;
    let a3 = scrape(&a.url, "/metrics").await;
    assert_eq!(a3.get("chathub_cluster_up"), 1.0);
    assert_eq!(a3.get("chathub_cluster_down_seconds"), 0.0);
}
