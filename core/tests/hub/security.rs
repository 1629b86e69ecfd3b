//! What an attacker tries (issue 12), refused: taking a session over with
//! an id others see, bodies that never end, the hooks blind to the
//! handshake.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chathub::{HubConfig, hooks};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{Polling, RawClient, TestHub, config, http};

#[tokio::test]
async fn the_id_others_see_cannot_take_the_session_over() {
    let t = TestHub::start();
    let victim = Polling::open(&t.url).await;
    assert_eq!(victim.post(&["40/chat,"]).await.0, 200);
    let (_, packets) = victim.get().await;
    let connect: Json = serde_json::from_str(packets[0].strip_prefix("40/chat,").unwrap()).unwrap();
    let socket_id = connect["sid"].as_str().unwrap().to_owned();
    assert_ne!(socket_id, victim.sid, "the socket id is drawn apart");
    // The socket id is what others see ("<id> said: …"); as a session id
    // it is unknown.
    let as_victim = Polling {
        base: t.url.clone(),
        sid: socket_id,
    };
    let (status, body) = as_victim.post(&["42/chat,[\"login\",\"attacker\"]"]).await;
    assert_eq!(status, 400);
    assert_eq!(body, r#"{"code":1,"message":"Session ID unknown"}"#);
    let (status, _) = as_victim.get().await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_body_still_arriving_when_its_session_ends_is_cut() {
    let t = TestHub::with(HubConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_secs(60),
        ..config()
    });
    let session = Polling::open(&t.url).await;
    let mut stuck = tokio::net::TcpStream::connect(t.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n40/\r\n",
        session.sid
    );
    stuck.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // Nobody answers the pings: the session ends by ping timeout, and the
    // POST with it, long before the request timeout.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stuck.read_to_end(&mut rest))
        .await
        .expect("the stuck POST is cut when its session ends")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn heads_that_never_end_are_cut_within_the_request_timeout() {
    let t = TestHub::with(HubConfig {
        request_timeout: Duration::from_millis(500),
        ..config()
    });
    let mut stuck = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(t.url.trim_start_matches("http://"))
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stuck.push(s);
    }
    for mut s in stuck {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
            .await
            .expect("cut within the timeout")
            .ok();
    }
    // New clients get in.
    let mut c = RawClient::connect(&t.url, "/chat").await;
    c.emit("clientMessage", &[serde_json::json!("in")]).await;
    assert_eq!(c.next_line().await, "You said: in");
}

#[tokio::test]
async fn the_connect_hook_sees_the_handshake_headers_and_cookies() {
    let t = TestHub::start();
    /// The cookie and user agent each hook call saw.
    type Seen = Vec<(Option<String>, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s2 = seen.clone();
    t.hub
        .set_connect_hook(Some(hooks::connect_hook(move |req| {
            let cookie = req
                .headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let agent = req
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            s2.lock().unwrap().push((cookie.clone(), agent));
            async move {
                match cookie.as_deref() {
                    Some("session=good") => Ok(()),
                    _ => Err("no session cookie".to_owned()),
                }
            }
        })))
        .unwrap();
    for (cookie, want) in [
        ("session=good", "40/chat,{\"sid\""),
        ("session=bad", "44/chat,"),
    ] {
        let (status, body) = http(
            &t.url,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            &[("Cookie", cookie), ("User-Agent", "test-agent")],
            b"",
        )
        .await;
        assert_eq!(status, 200);
        let sid = serde_json::from_str::<Json>(&body[1..]).unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let p = Polling {
            base: t.url.clone(),
            sid,
        };
        assert_eq!(p.post(&["40/chat,"]).await.0, 200);
        let (_, packets) = p.get().await;
        assert!(packets[0].starts_with(want), "{cookie}: {packets:?}");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            (Some("session=good".into()), Some("test-agent".into())),
            (Some("session=bad".into()), Some("test-agent".into()))
        ]
    );
}
