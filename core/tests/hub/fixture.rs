//! The shared fixture: a hub on a free port and real Socket.IO clients.
//!
//! `Client` is `rust_socketio` (a real Socket.IO client over TCP, any
//! transport). `RawClient` speaks Engine.IO/Socket.IO frames over a plain
//! WebSocket, for what a client library would not send (binary
//! attachments in the spec's exact shape, malformed packets).
//!
//! Nothing here sleeps to wait: every wait is for an event, bounded by
//! `WAIT` so that a broken hub fails the test instead of hanging it.

use std::time::Duration;

use chathub::{EventFilter, Hub, HubConfig, HubEvent, Subscription};
use futures_util::{FutureExt, SinkExt, StreamExt};
use rust_socketio::asynchronous::{Client as SioClient, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// A hub config for tests: a free port on loopback, two worker threads.
pub fn config() -> HubConfig {
    HubConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        worker_threads: Some(2),
        shutdown_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// A started hub and its base URL; shut down when dropped.
pub struct TestHub {
    pub hub: Hub,
    pub url: String,
}

impl TestHub {
    pub fn start() -> TestHub {
        TestHub::with(config())
    }

    pub fn with(config: HubConfig) -> TestHub {
        init_logs();
        let hub = Hub::start(config).expect("the hub starts");
        let url = format!("http://{}", hub.local_addr().unwrap());
        TestHub { hub, url }
    }

    pub fn events(&self) -> Events {
        Events(self.hub.subscribe(EventFilter::all()).unwrap())
    }

    /// A client on namespace `ns`, connected over websocket.
    pub async fn client(&self, ns: &str) -> Client {
        Client::connect(&self.url, ns, TransportType::Websocket).await
    }

    /// A client that has logged in as `name` (its own login lines read).
    pub async fn logged_in(&self, ns: &str, name: &str) -> Client {
        let mut c = self.client(ns).await;
        c.login(name).await;
        c
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.hub.shutdown();
    }
}

/// A subscription with waiting helpers.
pub struct Events(pub Subscription);

impl Events {
    pub async fn next(&mut self) -> HubEvent {
        tokio::time::timeout(WAIT, self.0.recv())
            .await
            .expect("a hub event in time")
            .expect("the subscription is open")
    }

    /// The next event for which `f` returns `Some`, skipping others.
    pub async fn find<T>(&mut self, mut f: impl FnMut(HubEvent) -> Option<T>) -> T {
        loop {
            if let Some(t) = f(self.next().await) {
                return t;
            }
        }
    }

    /// Like `find`, but waits up to `limit` in all (not per event): for
    /// conditions that take longer than `WAIT` to come about.
    pub async fn find_within<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(HubEvent) -> Option<T>,
    ) -> T {
        let search = async {
            loop {
                let event = self.0.recv().await.expect("the subscription is open");
                if let Some(t) = f(event) {
                    return t;
                }
            }
        };
        tokio::time::timeout(limit, search)
            .await
            .expect("the hub event in time")
    }

    /// The sid of the next socket to connect to `ns`.
    pub async fn connected(&mut self, ns: &str) -> String {
        self.find(|e| match e {
            HubEvent::Connect(c) if c.ns == ns => Some(c.sid),
            _ => None,
        })
        .await
    }
}

/// What a client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An event and its arguments.
    Event(String, Vec<Json>),
    /// Binary data (rust_socketio hands attachments over separately).
    Binary(Vec<u8>),
    /// The server disconnected the socket from the namespace.
    Close,
    /// An error (a `connect_error`, a transport failure).
    Error(String),
}

/// A real Socket.IO client (rust_socketio).
pub struct Client {
    pub sio: SioClient,
    rx: mpsc::UnboundedReceiver<Incoming>,
}

impl Client {
    /// Connects and waits for the hub's `login` prompt.
    pub async fn connect(url: &str, ns: &str, transport: TransportType) -> Client {
        let mut c = Client::connect_with(url, ns, transport, None)
            .await
            .expect("connects");
        c.expect_event("login").await;
        c
    }

    /// Connects with an `auth` payload; `Err` with the connect error if the
    /// hub refuses.
    pub async fn connect_with(
        url: &str,
        ns: &str,
        transport: TransportType,
        auth: Option<Json>,
    ) -> Result<Client, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (tx_any, tx_close, tx_err, tx_connect) =
            (tx.clone(), tx.clone(), tx.clone(), tx.clone());
        let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let connected_err = connected_tx.clone();
        let mut builder = ClientBuilder::new(url)
            .namespace(ns)
            .transport_type(transport)
            .reconnect(false)
            .on_any(move |event, payload, _| {
                let tx = tx_any.clone();
                async move {
                    let name = match event {
                        Event::Custom(n) => n,
                        other => other.as_str().to_owned(),
                    };
                    match payload {
                        // rust_socketio reads an event with no argument,
                        // `["login"]`, as a `message` whose argument is the
                        // event name; undo that.
                        Payload::Text(args)
                            if name == "message" && args.len() == 1 && args[0].is_string() =>
                        {
                            let _ = tx.send(Incoming::Event(
                                args[0].as_str().unwrap().to_owned(),
                                Vec::new(),
                            ));
                        }
                        Payload::Text(args) => {
                            let _ = tx.send(Incoming::Event(name, args));
                        }
                        Payload::Binary(b) => {
                            let _ = tx.send(Incoming::Event(name, Vec::new()));
                            let _ = tx.send(Incoming::Binary(b.to_vec()));
                        }
                        #[allow(deprecated)]
                        Payload::String(s) => {
                            let _ = tx.send(Incoming::Event(name, vec![Json::String(s)]));
                        }
                    }
                }
                .boxed()
            })
            .on(Event::Connect, move |_, _| {
                let tx = tx_connect.clone();
                let c = connected_tx.clone();
                async move {
                    let _ = c.send(Ok(()));
                    drop(tx);
                }
                .boxed()
            })
            .on(Event::Close, move |_, _| {
                let tx = tx_close.clone();
                async move {
                    let _ = tx.send(Incoming::Close);
                }
                .boxed()
            })
            .on(Event::Error, move |p, _| {
                let tx = tx_err.clone();
                let c = connected_err.clone();
                async move {
                    let text = match p {
                        Payload::Text(v) => v
                            .iter()
                            .map(|j| j.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        #[allow(deprecated)]
                        Payload::String(s) => s,
                        Payload::Binary(_) => "binary".into(),
                    };
                    let _ = c.send(Err(text.clone()));
                    let _ = tx.send(Incoming::Error(text));
                }
                .boxed()
            });
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        let sio = tokio::time::timeout(WAIT, builder.connect())
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(WAIT, connected_rx.recv()).await {
            Ok(Some(Ok(()))) => Ok(Client { sio, rx }),
            Ok(Some(Err(e))) => Err(e),
            _ => Err("no connect answer".into()),
        }
    }

    /// The next thing received, waiting up to `WAIT`.
    pub async fn next(&mut self) -> Incoming {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("the client received something in time")
            .expect("the client channel is open")
    }

    /// Waits for the next event; asserts it is `event`; returns its args.
    pub async fn expect_event(&mut self, event: &str) -> Vec<Json> {
        match self.next().await {
            Incoming::Event(name, args) if name == event => args,
            other => panic!("expected event {event:?}, got {other:?}"),
        }
    }

    /// Waits for the next event; asserts it is `serverMessage` with `text`.
    pub async fn expect_line(&mut self, text: &str) {
        let args = self.expect_event("serverMessage").await;
        assert_eq!(args, vec![Json::String(text.to_owned())], "serverMessage");
    }

    /// The text of the next `serverMessage`.
    pub async fn next_line(&mut self) -> String {
        let args = self.expect_event("serverMessage").await;
        args.first()
            .and_then(|a| a.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("serverMessage without text: {args:?}"))
    }

    pub async fn emit(&self, event: &str, arg: Json) {
        self.sio
            .emit(event, Payload::Text(vec![arg]))
            .await
            .expect("emit");
    }

    /// Emits with an ack and returns the ack's arguments.
    pub async fn emit_ack(&self, event: &str, args: Vec<Json>) -> Vec<Json> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.sio
            .emit_with_ack(event, Payload::Text(args), WAIT, move |p, _| {
                let tx = tx.clone();
                async move {
                    // rust_socketio hands the ack's arguments over as one
                    // array.
                    if let Payload::Text(mut v) = p {
                        if let [Json::Array(args)] = v.as_mut_slice() {
                            v = std::mem::take(args);
                        }
                        let _ = tx.send(v);
                    }
                }
                .boxed()
            })
            .await
            .expect("emit with ack");
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the ack in time")
            .expect("an ack")
    }

    /// Logs in and reads the sender's own line.
    pub async fn login(&mut self, name: &str) {
        self.emit("login", Json::String(name.into())).await;
        self.expect_line(&format!("Currently logged in as {name}"))
            .await;
    }

    /// Joins a room and reads the confirmation.
    pub async fn join(&mut self, room: &str) {
        self.emit("join", Json::String(room.into())).await;
        self.expect_line("joined room success!").await;
    }

    /// Says something and reads the echo.
    pub async fn say(&mut self, text: &str) {
        self.emit("clientMessage", Json::String(text.into())).await;
        self.expect_line(&format!("You said: {text}")).await;
    }

    pub async fn disconnect(self) {
        let _ = self.sio.disconnect().await;
    }
}

/// A client that speaks the wire protocol itself over a WebSocket.
pub struct RawClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub ns: String,
}

/// A frame as the raw client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Closed,
}

impl RawClient {
    /// Opens the WebSocket and completes the Engine.IO handshake (no
    /// namespace yet).
    pub async fn open(base: &str) -> RawClient {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http://", "ws://", 1)
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("ws connect in time")
            .expect("ws connect");
        let mut c = RawClient { ws, ns: "/".into() };
        let open = c.text().await;
        assert!(open.starts_with("0{"), "engine.io open packet: {open}");
        c
    }

    /// Opens and connects to `ns`; reads CONNECT and the login prompt.
    pub async fn connect(base: &str, ns: &str) -> RawClient {
        let mut c = RawClient::open(base).await;
        c.ns = ns.to_owned();
        c.send_text(&format!("40{}", prefix(ns))).await;
        let connect = c.text().await;
        assert!(
            connect.starts_with(&format!("40{}", prefix(ns))),
            "connect: {connect}"
        );
        let login = c.text().await;
        assert_eq!(login, format!("42{}[\"login\"]", prefix(ns)));
        c
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).await.expect("ws send");
    }

    pub async fn send_message(&mut self, m: Message) {
        // A send may fail when the hub already closed the connection.
        let _ = self.ws.send(m).await;
    }

    pub async fn send_binary(&mut self, b: &[u8]) {
        self.ws
            .send(Message::binary(b.to_vec()))
            .await
            .expect("ws send");
    }

    /// The next frame, answering Engine.IO pings on the way.
    pub async fn frame(&mut self) -> Frame {
        loop {
            let msg = match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(_))) | Ok(None) => return Frame::Closed,
                Err(_) => panic!("no frame in time"),
            };
            match msg {
                Message::Text(t) if t.as_str() == "2" => {
                    // The pong may find the connection closed already.
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Message::Text(t) => return Frame::Text(t.to_string()),
                Message::Binary(b) => return Frame::Binary(b.to_vec()),
                Message::Close(_) => return Frame::Closed,
                _ => {}
            }
        }
    }

    pub async fn text(&mut self) -> String {
        match self.frame().await {
            Frame::Text(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a Socket.IO EVENT with JSON args on the client's namespace.
    pub async fn emit(&mut self, event: &str, args: &[Json]) {
        let mut items = vec![Json::String(event.into())];
        items.extend_from_slice(args);
        let packet = format!("42{}{}", prefix(&self.ns), Json::Array(items));
        self.send_text(&packet).await;
    }

    /// The text of the next `serverMessage`.
    pub async fn next_line(&mut self) -> String {
        let t = self.text().await;
        let body = t
            .strip_prefix(&format!("42{}", prefix(&self.ns)))
            .unwrap_or_else(|| panic!("expected an event packet, got {t}"));
        let v: Vec<Json> = serde_json::from_str(body).unwrap();
        assert_eq!(v[0], "serverMessage", "{t}");
        v[1].as_str().unwrap().to_owned()
    }
}

/// The namespace part of a packet: empty for `/`, `NS,` otherwise.
pub fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`):
/// the status and the body.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("an HTTP answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A long-polling client that speaks the wire protocol itself.
pub struct Polling {
    pub base: String,
    pub sid: String,
}

impl Polling {
    /// Opens an Engine.IO session over long-polling.
    pub async fn open(base: &str) -> Polling {
        let (status, body) =
            http(base, "GET", "/socket.io/?EIO=4&transport=polling", &[], b"").await;
        assert_eq!(status, 200, "{body}");
        let open: Json =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
        Polling {
            base: base.to_owned(),
            sid: open["sid"].as_str().unwrap().to_owned(),
        }
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// A long-poll: the packets, as the payload's records.
    pub async fn get(&self) -> (u16, Vec<String>) {
        let (status, body) = http(&self.base, "GET", &self.path(), &[], b"").await;
        (status, body.split('\u{1e}').map(str::to_owned).collect())
    }

    /// Sends packets (joined into one payload).
    pub async fn post(&self, packets: &[&str]) -> (u16, String) {
        let body = packets.join("\u{1e}");
        http(
            &self.base,
            "POST",
            &self.path(),
            &[("Content-Type", "text/plain;charset=UTF-8")],
            body.as_bytes(),
        )
        .await
    }
}
