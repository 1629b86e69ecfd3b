//! `chathub-bench-rawws`: the floor of chathub's benchmarks.
//!
//! A raw WebSocket broadcast server on tokio-tungstenite, with no Socket.IO
//! library: it speaks just enough Engine.IO v4 / Socket.IO v5 text framing
//! for `chathub-loadgen` — the open packet, namespace connects (`/` and
//! `/chat`) answered with the `login` prompt, server pings, `login`, `join`,
//! `clientMessage` (`You said: …` to the sender, `NAME said: …` to the
//! others in its room or lobby) and the disconnect notice. No validation, no
//! acks, no long-polling, no binary: what is left is the cost of WebSocket
//! frames and a broadcast, which no Socket.IO server can go below.
//!
//! ```text
//! PORT=0 HOST=127.0.0.1 chathub-bench-rawws     (prints "listening on http://HOST:PORT/")
//! ```
//!
//! One task per connection, which owns its WebSocket and drains an unbounded
//! outbox; each room (and each namespace's lobby) is a list of outboxes, so
//! a broadcast clones one shared frame payload into every member's outbox.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The namespaces the chat runs on; an index into this array names one.
const NAMESPACES: [&str; 2] = ["/", "/chat"];
/// Engine.IO heartbeat: the server pings this often.
const PING_INTERVAL: Duration = Duration::from_secs(25);
/// At most this many queued packets are written before a flush.
const BATCH: usize = 128;
/// The lobby's key among a namespace's rooms (a joined room is never empty).
const LOBBY: &str = "";

/// Where a packet for one connection goes: its task's outbox.
type Outbox = mpsc::UnboundedSender<Utf8Bytes>;

/// Every namespace's rooms (and lobby): room → connection id → outbox.
type Rooms = Mutex<[HashMap<String, HashMap<u64, Outbox>>; NAMESPACES.len()]>;

/// One Socket.IO socket: a connection's presence on one namespace.
struct NsSocket {
    sid: String,
    name: Option<String>,
    /// The room joined, or [`LOBBY`].
    room: String,
}

/// One connection's chat state.
struct Conn {
    id: u64,
    outbox: Outbox,
    rooms: Arc<Rooms>,
    sockets: [Option<NsSocket>; NAMESPACES.len()],
}

/// The namespace part of a packet: empty for `/`, `NS,` otherwise.
fn prefix(ns: usize) -> &'static str {
    match NAMESPACES[ns] {
        "/" => "",
        _ => "/chat,",
    }
}

/// A `serverMessage` packet with `line` on namespace `ns`.
fn server_message(ns: usize, line: &str) -> Utf8Bytes {
    let json = serde_json::to_string(line).unwrap_or_else(|_| "\"\"".into());
    format!("42{}[\"serverMessage\",{json}]", prefix(ns)).into()
}

impl Conn {
    /// Queues a packet for this connection itself.
    fn reply(&self, packet: Utf8Bytes) {
        let _ = self.outbox.send(packet);
    }

    /// Queues `line` for every other member of `room` on `ns`.
    fn broadcast(&self, ns: usize, room: &str, line: &str) {
        let packet = server_message(ns, line);
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms[ns].get(room) {
            for (id, outbox) in members {
                if *id != self.id {
                    let _ = outbox.send(packet.clone());
                }
            }
        }
    }

    fn enter(&self, ns: usize, room: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms[ns]
            .entry(room.to_owned())
            .or_default()
            .insert(self.id, self.outbox.clone());
    }

    fn exit(&self, ns: usize, room: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms[ns].get_mut(room) {
            members.remove(&self.id);
            if members.is_empty() {
                rooms[ns].remove(room);
            }
        }
    }

    /// One Engine.IO text packet; `false` when the client closes.
    fn on_packet(&mut self, packet: &str) -> bool {
        match packet.as_bytes().first() {
            Some(b'1') => false,
            Some(b'4') => {
                self.on_socketio(&packet[1..]);
                true
            }
            _ => true, // `3` (pong) and anything else
        }
    }

    /// One Socket.IO packet (after the Engine.IO `4`).
    fn on_socketio(&mut self, packet: &str) {
        let Some(kind) = packet.as_bytes().first().copied() else {
            return;
        };
        let rest = &packet[1..];
        let (ns, rest) = match rest.strip_prefix('/') {
            Some(_) => rest.split_once(',').unwrap_or((rest, "")),
            None => ("/", rest),
        };
        let Some(nsi) = NAMESPACES.iter().position(|n| *n == ns) else {
            if kind == b'0' {
                self.reply(format!("44{ns},{{\"message\":\"Invalid namespace\"}}").into());
            }
            return;
        };
        match kind {
            b'0' => self.connect(nsi),
            b'1' => self.disconnect(nsi),
            b'2' => self.event(nsi, rest),
            _ => {}
        }
    }

    fn connect(&mut self, ns: usize) {
        if self.sockets[ns].is_some() {
            return;
        }
        let sid = format!("{:x}.{ns}", self.id);
        self.reply(format!("40{}{{\"sid\":\"{sid}\"}}", prefix(ns)).into());
        self.reply(format!("42{}[\"login\"]", prefix(ns)).into());
        self.enter(ns, LOBBY);
        self.sockets[ns] = Some(NsSocket {
            sid,
            name: None,
            room: LOBBY.to_owned(),
        });
    }

    fn disconnect(&mut self, ns: usize) {
        let Some(s) = self.sockets[ns].take() else {
            return;
        };
        self.exit(ns, &s.room);
        let who = s.name.as_deref().unwrap_or(&s.sid);
        self.broadcast(ns, &s.room, &format!("User {who} disconnected"));
    }

    /// An event packet: `[ACKID]["event", arg]`.
    fn event(&mut self, ns: usize, body: &str) {
        if self.sockets[ns].is_none() {
            return;
        }
        let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
        let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(body) else {
            return;
        };
        let (Some(event), Some(arg)) = (
            items.first().and_then(|v| v.as_str()),
            items.get(1).and_then(|v| v.as_str()),
        ) else {
            return;
        };
        match event {
            "login" => {
                let name = arg.trim().to_owned();
                self.reply(server_message(
                    ns,
                    &format!("Currently logged in as {name}"),
                ));
                let room = self.sockets[ns].as_ref().map(|s| s.room.clone());
                if let Some(room) = room {
                    self.broadcast(ns, &room, &format!("User {name} Logged in"));
                }
                if let Some(s) = self.sockets[ns].as_mut() {
                    s.name = Some(name);
                }
            }
            "join" => {
                let to = arg.trim().to_owned();
                let from = self.sockets[ns]
                    .as_mut()
                    .map(|s| std::mem::replace(&mut s.room, to.clone()));
                if let Some(from) = from {
                    self.exit(ns, &from);
                }
                self.enter(ns, &to);
                self.reply(server_message(ns, "joined room success!"));
            }
            "clientMessage" => {
                self.reply(server_message(ns, &format!("You said: {arg}")));
                if let Some(s) = self.sockets[ns].as_ref() {
                    let who = s.name.as_deref().unwrap_or(&s.sid);
                    self.broadcast(ns, &s.room, &format!("{who} said: {arg}"));
                }
            }
            _ => {}
        }
    }
}

impl Drop for Conn {
    /// The connection is gone: its sockets leave, with the notice.
    fn drop(&mut self) {
        for ns in 0..NAMESPACES.len() {
            self.disconnect(ns);
        }
    }
}

/// Serves one connection until it closes.
async fn serve(stream: TcpStream, id: u64, rooms: Arc<Rooms>) {
    let _ = stream.set_nodelay(true);
    // A small read buffer: clients send little, and many connections stay idle.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let open = format!(
        "0{{\"sid\":\"{id:x}\",\"upgrades\":[],\"pingInterval\":{},\"pingTimeout\":20000,\"maxPayload\":1000000}}",
        PING_INTERVAL.as_millis()
    );
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    let (outbox, mut queued) = mpsc::unbounded_channel();
    let mut conn = Conn {
        id,
        outbox,
        rooms,
        sockets: [None, None],
    };
    let start = tokio::time::Instant::now() + PING_INTERVAL;
    let mut ping = tokio::time::interval_at(start, PING_INTERVAL);
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    if !conn.on_packet(t.as_str()) {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            Some(first) = queued.recv() => {
                // Write what is queued (up to a batch), then one flush.
                let mut result = ws.feed(Message::Text(first)).await;
                for _ in 1..BATCH {
                    if result.is_err() {
                        break;
                    }
                    match queued.try_recv() {
                        Ok(next) => result = ws.feed(Message::Text(next)).await,
                        Err(_) => break,
                    }
                }
                if result.is_err() || ws.flush().await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if ws.send(Message::text("2")).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(conn);
    let _ = ws.close(None).await;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host: IpAddr = std::env::var("HOST")
        .unwrap_or_else(|_| "127.0.0.1".into())
        .parse()
        .map_err(|e| format!("HOST must be an IP address: {e}"))?;
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3000".into())
        .parse()
        .map_err(|e| format!("PORT must be a port number: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::new(host, port)).await?;
        println!(
            "chathub-bench-rawws listening on http://{}/",
            listener.local_addr()?
        );
        let rooms: Arc<Rooms> = Arc::default();
        let next_id = AtomicU64::new(1);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(serve(stream, id, rooms.clone()));
                    }
                    // Out of descriptors, say: go on with the others.
                    Err(e) => {
                        eprintln!("chathub-bench-rawws: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        println!("chathub-bench-rawws stopped");
        Ok::<_, std::io::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
