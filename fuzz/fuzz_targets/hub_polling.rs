//! The whole inbound path of a running hub: each input is the body of a
//! long-polling POST on a fresh Engine.IO session that joined `/chat`, so
//! it goes through the engine's payload decoding, the Socket.IO packet
//! decoder, and the chat's handlers on the hub's runtime. Any panic, on any
//! thread, aborts (libFuzzer reports it); so does a hub that stops
//! answering.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use chathub::{FloodLimits, Hub, HubConfig};
use http::{Method, Request};
use libfuzzer_sys::fuzz_target;

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        Hub::start(HubConfig {
            bind: None,
            worker_threads: Some(1),
            flood: FloodLimits::off(),
            max_payload: 100_000,
            ..Default::default()
        })
        .expect("the hub starts")
    })
}

fn request(method: Method, uri: &str, body: Bytes) -> (u16, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .expect("a request");
    let resp = futures_executor::block_on(hub().handle_request(req, None)).expect("the hub answers");
    (resp.status().as_u16(), resp.into_body())
}

fuzz_target!(|data: &[u8]| {
    // A session that joined /chat.
    let (_, open) = request(Method::GET, "/socket.io/?EIO=4&transport=polling", Bytes::new());
    let Some(sid) = std::str::from_utf8(&open)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t.get(1..)?).ok())
        .and_then(|v| v["sid"].as_str().map(str::to_owned))
    else {
        panic!("no handshake: {open:?}");
    };
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    request(Method::POST, &uri, Bytes::from_static(b"40/chat,"));
    request(Method::GET, &uri, Bytes::new());
    // The input, as what the client sends.
    request(Method::POST, &uri, Bytes::copy_from_slice(data));
    // Whatever the hub answers, then close the session as a client would.
    request(Method::POST, &uri, Bytes::from_static(b"1"));
    // The hub still serves a new session.
    let (status, _) = request(Method::GET, "/socket.io/?EIO=4&transport=polling", Bytes::new());
    assert_eq!(status, 200);
});
