//! The chat's namespace handler: the rules of [`super`] applied to live
//! sockets of the Socket.IO layer.
//!
//! Runs in the connection's own task, in the order the client sent its
//! events; only a login hook makes the connection wait (its next events
//! are read once the hook answered).

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use super::{ChatState, EventKind, Move, Rejection, Scope};
use crate::engine::{Frame, Step};
use crate::events::{
    Ack, ConnectEvent, CustomEvent, DisconnectEvent, EventKinds, HubEvent, JoinEvent, LoginEvent,
    MessageEvent, PresenceChange, PresenceEvent, RejectedEvent, Transport,
};
use crate::hooks::{ConnectRequest, LoginRequest};
use crate::hub::shared::{Guard, Shared, Stats, Verdict as Limit, payload_value, run_hook};
use crate::socketio::{
    self, ConnectRequest as SioConnect, Event, Namespace, NsHandler, Resumed, Socket, Verdict,
};
use crate::value::Value;

/// The room that holds every socket of a namespace that joined no chat
/// room. Room names from clients and hosts are trimmed, so none can start
/// with a space and collide with it.
pub(crate) const LOBBY: &str = " lobby";

/// The room key of a scope.
pub(crate) fn room_key(scope: &Scope) -> &str {
    match scope {
        Scope::Room(r) => r,
        Scope::Lobby => LOBBY,
    }
}

/// What the chat keeps per socket.
#[derive(Debug)]
pub(crate) struct ChatSocket {
    state: Mutex<ChatState>,
    pub(crate) guard: Guard,
}

impl ChatSocket {
    /// Its name and room, now.
    pub(crate) fn state(&self) -> ChatState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The chat on one namespace.
pub(crate) struct ChatNs {
    shared: Arc<Shared>,
    /// The `login` prompt, encoded once.
    prompt: Frame,
}

impl std::fmt::Debug for ChatNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatNs").finish_non_exhaustive()
    }
}

impl ChatNs {
    /// The chat for the namespace at `path`.
    pub(crate) fn new(path: &str, shared: Arc<Shared>) -> ChatNs {
        let prefix = socketio::packet::ns_prefix(path);
        let prompt =
            socketio::packet::event_frames(&prefix, Some(super::LOGIN_PROMPT), "", &[], None)
                .remove(0);
        ChatNs { shared, prompt }
    }
}

/// JSON-escapes `s` (without the quotes).
fn escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    quoted[1..quoted.len() - 1].to_owned()
}

/// A `serverMessage` line (JSON-escaped) as a frame.
fn line_frame(ns: &Namespace, line: &str) -> Frame {
    socketio::packet::event_raw_str(&ns.prefix, super::SERVER_MESSAGE, &[line])
}

impl NsHandler for ChatNs {
    fn connect(&self, ns: &Arc<Namespace>, req: SioConnect<'_>) -> Verdict {
        self.shared.connect_verdict(|| ConnectRequest {
            ns: ns.path.clone(),
            sid: req.id.to_string(),
            auth: payload_value(req.auth, &[]),
            remote_addr: req.handshake.remote,
            headers: req.handshake.headers(),
        })
    }

    fn connected(&self, socket: &Arc<Socket>, auth: Option<&str>, resumed: Option<Resumed>) {
        let restored = resumed
            .as_ref()
            .and_then(|r| r.state.as_ref())
            .and_then(|s| s.downcast_ref::<ChatState>())
            .cloned();
        let back = restored.is_some();
        let chat = ChatSocket {
            state: Mutex::new(restored.unwrap_or_default()),
            guard: self.shared.guard(socket.handshake().remote),
        };
        let _ = socket.ext.set(Box::new(chat));
        if back {
            // Back with recovery: its name and room as they were (its rooms
            // are joined again), no prompt; the others hear of it.
            let st = socket
                .ext::<ChatSocket>()
                .map(ChatSocket::state)
                .unwrap_or_default();
            let id = socket.id.to_string();
            let name = escape(st.display_name(&id));
            broadcast(
                &self.shared,
                socket,
                &st.scope(),
                &super::back_notice(&name),
            );
            presence(
                &self.shared,
                socket,
                st.name,
                st.room,
                PresenceChange::Joined,
            );
        } else {
            // The chapter's prompt first; then into the lobby, so that no
            // lobby line reaches the client before it.
            socket.send(std::slice::from_ref(&self.prompt));
            socket.ns.join(socket, LOBBY);
            presence(&self.shared, socket, None, None, PresenceChange::Joined);
        }
        let events = &self.shared.events;
        if events.wants(EventKinds::CONNECT) {
            events.publish(HubEvent::Connect(ConnectEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                auth: payload_value(auth, &[]),
                remote_addr: socket.handshake().remote,
                transport: transport(socket),
                recovered: back,
                headers: socket.handshake().headers(),
            }));
        }
    }

    fn suspend(&self, socket: &Arc<Socket>) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        let chat = socket.ext::<ChatSocket>()?;
        Some(Box::new(chat.state()))
    }

    fn state_json(&self, state: &(dyn std::any::Any + Send + Sync)) -> Option<serde_json::Value> {
        let st = state.downcast_ref::<ChatState>()?;
        Some(serde_json::json!({ "name": st.name, "room": st.room }))
    }

    fn state_from_json(
        &self,
        json: &serde_json::Value,
    ) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Some(Box::new(ChatState {
            name: text("name"),
            room: text("room"),
        }))
    }

    fn event(&self, socket: &Arc<Socket>, ev: Event) -> Step {
        let Some(chat) = socket.ext::<ChatSocket>() else {
            return Step::Next;
        };
        if !self.admit(socket, chat, ev.size()) {
            return Step::Next;
        }
        let text = std::str::from_utf8(&ev.data).unwrap_or("");
        let Some(items) = crate::json::array(text) else {
            self.refuse_unreadable(socket, None, ev.ack);
            return Step::Next;
        };
        let name = match items.first() {
            Some(first) => crate::json::string(first).unwrap_or_else(|| first.get().to_owned()),
            None => return Step::Next,
        };
        if name.contains('\0') {
            tracing::debug!(sid = %socket.id, "an event name with a NUL character");
            self.reply(
                socket,
                &escape(&format!("Error: {}", super::NUL_IN_EVENT_NAME)),
            );
            self.answer(socket, ev.ack, Err(super::NUL_IN_EVENT_NAME));
            return Step::Next;
        }
        let arg = items.get(1).copied();
        let limits = &self.shared.limits;
        match super::classify(&name) {
            EventKind::Login => {
                let decoded = arg.and_then(crate::json::string);
                match super::check_name(decoded.as_deref(), limits) {
                    Ok(name) => self.login(socket, name, ev.ack),
                    Err(r) => {
                        self.reject(socket, "login", r, ev.ack);
                        Step::Next
                    }
                }
            }
            EventKind::Join => {
                let decoded = arg.and_then(crate::json::string);
                match super::check_room(decoded.as_deref(), limits) {
                    Ok(room) => {
                        move_to(&self.shared, socket, chat, Scope::Room(room.clone()), false);
                        let ns = &socket.ns.path;
                        let cluster = self.shared.cluster.get();
                        let pending = cluster.filter(|c| c.room_pending(ns, &room)).cloned();
                        if let Some(cluster) = pending {
                            // The first member of the room here: told it
                            // joined once this hub hears the room's lines
                            // from the others (its next events wait).
                            let (socket, ack) = (socket.clone(), ev.ack);
                            return Step::Wait(Box::pin(async move {
                                cluster.room_ready(&socket.ns.path, &room).await;
                                reply(&socket, super::JOINED_REPLY);
                                answer(&socket, ack, Ok(()));
                            }));
                        }
                        self.reply(socket, super::JOINED_REPLY);
                        self.answer(socket, ev.ack, Ok(()));
                    }
                    Err(r) => self.reject(socket, "join", r, ev.ack),
                }
                Step::Next
            }
            EventKind::Message => {
                let decoded = arg.and_then(crate::json::string);
                match super::check_message(decoded.as_deref(), limits) {
                    Ok(()) => {
                        let raw = arg.and_then(crate::json::string_body).unwrap_or("");
                        self.message(socket, chat, raw, decoded.unwrap_or_default(), ev.ack);
                    }
                    Err(r) => self.reject(socket, "clientMessage", r, ev.ack),
                }
                Step::Next
            }
            EventKind::Custom => {
                self.custom(socket, chat, &name, text, &ev.bins, ev.ack);
                Step::Next
            }
        }
    }

    fn disconnect(&self, socket: &Arc<Socket>, reason: &'static str) {
        let Some(chat) = socket.ext::<ChatSocket>() else {
            return;
        };
        let reason = match chat.guard.ended_by() {
            Some(by) => by,
            None if reason == crate::engine::CloseReason::SlowConsumer.text() => {
                Stats::add(&self.shared.stats.slow_disconnects, 1);
                self.shared
                    .limit_event(socket, chat.state().name, "slow consumer", true);
                reason
            }
            None => reason,
        };
        let st = chat.state();
        let id = socket.id.to_string();
        let name = escape(st.display_name(&id));
        let notice = super::disconnected_notice(&name);
        // Leaves come in storms (a client fleet stopping, a network
        // dropping): their notices go out in batches.
        socket.ns.broadcast_later(
            room_key(&st.scope()),
            socket.id,
            line_frame(&socket.ns, &notice),
        );
        publish_line(&self.shared, socket, &st.scope(), &notice);
        presence(
            &self.shared,
            socket,
            st.name.clone(),
            st.room.clone(),
            PresenceChange::Left,
        );
        let events = &self.shared.events;
        if events.wants(EventKinds::DISCONNECT) {
            events.publish(HubEvent::Disconnect(DisconnectEvent {
                ns: socket.ns.path.clone(),
                sid: id,
                name: st.name,
                room: st.room,
                reason: reason.to_owned(),
            }));
        }
    }
}

impl ChatNs {
    /// The flood limits; false: drop the event.
    fn admit(&self, socket: &Arc<Socket>, chat: &ChatSocket, size: usize) -> bool {
        let stats = &self.shared.stats;
        match chat.guard.admit(size) {
            Limit::Pass => true,
            Limit::Drop { warn, limit } => {
                Stats::add(&stats.events_dropped, 1);
                if warn {
                    self.reply(socket, &super::flood_line(limit, false));
                    self.shared
                        .limit_event(socket, chat.state().name, limit, false);
                }
                false
            }
            Limit::Cut { limit, first } => {
                Stats::add(&stats.events_dropped, 1);
                if first {
                    Stats::add(&stats.flood_disconnects, 1);
                    tracing::info!(sid = %socket.id, ns = %socket.ns.path, limit, "disconnecting a flooding socket");
                    self.reply(socket, &super::flood_line(limit, true));
                    self.shared
                        .limit_event(socket, chat.state().name, limit, true);
                    socket.disconnect("flood");
                }
                false
            }
        }
    }

    fn login(&self, socket: &Arc<Socket>, name: String, ack: Option<u64>) -> Step {
        let hook = self
            .shared
            .login_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(hook) = hook else {
            finish_login(&self.shared, socket, name, ack);
            return Step::Next;
        };
        let current = socket.ext::<ChatSocket>().and_then(|c| c.state().name);
        let req = LoginRequest {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            name: name.clone(),
            current,
        };
        let shared = self.shared.clone();
        let socket = socket.clone();
        Step::Wait(Box::pin(async move {
            match run_hook(
                hook(req),
                shared.hook_timeout,
                "login",
                shared.login_hook_time.clone(),
            )
            .await
            {
                Ok(()) => finish_login(&shared, &socket, name, ack),
                Err(reason) => reject(
                    &shared,
                    &socket,
                    "login",
                    Rejection::LoginRefused(reason),
                    ack,
                ),
            }
        }))
    }

    fn message(
        &self,
        socket: &Arc<Socket>,
        chat: &ChatSocket,
        raw: &str,
        text: String,
        ack: Option<u64>,
    ) {
        let st = chat.state();
        let id = socket.id.to_string();
        // The others first: once the sender sees its echo, the line has
        // gone to everyone (frames may be written at once, as they come).
        let name = escape(st.display_name(&id));
        broadcast(
            &self.shared,
            socket,
            &st.scope(),
            &super::said_notice(&name, raw),
        );
        self.reply(socket, &super::said_reply(raw));
        self.answer(socket, ack, Ok(()));
        let events = &self.shared.events;
        if events.wants(EventKinds::MESSAGE) {
            events.publish(HubEvent::Message(MessageEvent {
                ns: socket.ns.path.clone(),
                sid: id,
                name: st.name,
                room: st.room,
                text,
            }));
        }
    }

    fn custom(
        &self,
        socket: &Arc<Socket>,
        chat: &ChatSocket,
        name: &str,
        data: &str,
        bins: &[Bytes],
        ack: Option<u64>,
    ) {
        let events = &self.shared.events;
        if !events.wants_custom(name) {
            tracing::debug!(sid = %socket.id, event = name, "custom event with no host listener");
            return;
        }
        let args = match custom_args(data, bins) {
            Ok(args) => args,
            Err(error) => {
                self.answer(socket, ack, Err(error));
                return;
            }
        };
        events.publish(HubEvent::Custom(CustomEvent {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            name: chat.state().name,
            event: name.to_owned(),
            args,
            ack: ack.map(|id| host_ack(socket, id)),
        }));
    }

    fn refuse_unreadable(&self, socket: &Arc<Socket>, _name: Option<&str>, ack: Option<u64>) {
        self.reply(
            socket,
            &escape(&format!("Error: {}", super::UNREADABLE_ARGS)),
        );
        self.answer(socket, ack, Err(super::UNREADABLE_ARGS));
    }

    fn reply(&self, socket: &Socket, line: &str) {
        reply(socket, line);
    }

    fn answer(&self, socket: &Socket, ack: Option<u64>, result: Result<(), &str>) {
        answer(socket, ack, result);
    }

    fn reject(&self, socket: &Arc<Socket>, event: &str, r: Rejection, ack: Option<u64>) {
        reject(&self.shared, socket, event, r, ack);
    }
}

/// The arguments of a custom event (after its name) as values.
pub(crate) fn custom_args(data: &str, bins: &[Bytes]) -> Result<Vec<Value>, &'static str> {
    let Some(serde_json::Value::Array(items)) = crate::json::value(data) else {
        return Err(super::UNREADABLE_ARGS);
    };
    items
        .into_iter()
        .skip(1)
        .map(|a| Value::from_json_with_placeholders(a, bins))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::debug!("bad binary placeholder: {e}");
            super::MISSING_ATTACHMENTS
        })
}

/// The host's side of a client's ack: answering it sends the client's
/// callback its arguments (the socket is held weakly: an ack kept forever
/// by a host keeps no connection alive).
pub(crate) fn host_ack(socket: &Arc<Socket>, id: u64) -> Ack {
    let weak: Weak<Socket> = Arc::downgrade(socket);
    Ack::new(
        move |args: crate::events::AckArgs<'_>| match weak.upgrade() {
            Some(s) if s.is_connected() => match s.ack(id, args) {
                crate::engine::Pushed::Yes => Ok(()),
                crate::engine::Pushed::Full => Err("the socket's queue is full".into()),
                crate::engine::Pushed::Closed => Err("the socket is gone".into()),
            },
            _ => Err("the socket is gone".into()),
        },
    )
}

fn transport(socket: &Socket) -> Transport {
    match socket.session.transport() {
        crate::engine::Transport::Polling => Transport::Polling,
        crate::engine::Transport::Websocket => Transport::Websocket,
    }
}

/// A `serverMessage` line (JSON-escaped) to the socket itself.
fn reply(socket: &Socket, line: &str) {
    socket.send(&[line_frame(&socket.ns, line)]);
}

/// Answers the client's ack, if it asked for one, with `{ok}` or
/// `{ok: false, error}`.
fn answer(socket: &Socket, ack: Option<u64>, result: Result<(), &str>) {
    let Some(id) = ack else { return };
    let body = match result {
        Ok(()) => r#"{"ok":true}"#.to_owned(),
        Err(error) => format!(r#"{{"ok":false,"error":"{}"}}"#, escape(error)),
    };
    socket.send(&socketio::packet::event_frames(
        &socket.ns.prefix,
        None,
        &body,
        &[],
        Some(id),
    ));
}

/// Refuses chat input: `Error: …` to the sender, the ack, the host.
fn reject(shared: &Shared, socket: &Arc<Socket>, event: &str, r: Rejection, ack: Option<u64>) {
    let error = r.to_string();
    reply(socket, &escape(&super::error_line(&r)));
    answer(socket, ack, Err(&error));
    if shared.events.wants(EventKinds::REJECTED) {
        shared.events.publish(HubEvent::Rejected(RejectedEvent {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            event: event.to_owned(),
            error,
        }));
    }
}

fn finish_login(shared: &Shared, socket: &Arc<Socket>, name: String, ack: Option<u64>) {
    let Some(chat) = socket.ext::<ChatSocket>() else {
        return;
    };
    if !socket.is_connected() {
        return;
    }
    let (previous, scope) = {
        let mut st = chat.state.lock().unwrap_or_else(|e| e.into_inner());
        let previous = st.name.replace(name.clone());
        (previous, st.scope())
    };
    let escaped = escape(&name);
    // The others first, as for a message.
    broadcast(shared, socket, &scope, &super::logged_in_notice(&escaped));
    reply(socket, &super::logged_in_reply(&escaped));
    answer(socket, ack, Ok(()));
    presence(
        shared,
        socket,
        Some(name.clone()),
        scope.room().map(str::to_owned),
        PresenceChange::Renamed,
    );
    if shared.events.wants(EventKinds::LOGIN) {
        shared.events.publish(HubEvent::Login(LoginEvent {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            name,
            previous,
            room: scope.room().map(str::to_owned),
        }));
    }
}

/// Moves a socket between rooms and the lobby, in its state and its room
/// membership at once, and tells the host.
pub(crate) fn move_to(
    shared: &Shared,
    socket: &Arc<Socket>,
    chat: &ChatSocket,
    to: Scope,
    by_host: bool,
) {
    let (mv, name) = {
        let mut st = chat.state.lock().unwrap_or_else(|e| e.into_inner());
        let mv = st.move_to(to);
        socket.ns.leave(socket, room_key(&mv.from));
        socket.ns.join(socket, room_key(&mv.to));
        (mv, st.name.clone())
    };
    let Move { from, to } = mv;
    presence(
        shared,
        socket,
        name.clone(),
        from.room().map(str::to_owned),
        PresenceChange::Left,
    );
    presence(
        shared,
        socket,
        name.clone(),
        to.room().map(str::to_owned),
        PresenceChange::Joined,
    );
    if shared.events.wants(EventKinds::JOIN) {
        shared.events.publish(HubEvent::Join(JoinEvent {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            name,
            from: from.room().map(str::to_owned),
            to: to.room().map(str::to_owned),
            by_host,
        }));
    }
}

/// Takes a socket out of `room` to the lobby, if it is in it (checked and
/// moved in one step, so that a join made meanwhile is never undone).
pub(crate) fn leave_room(shared: &Shared, socket: &Arc<Socket>, chat: &ChatSocket, room: &str) {
    let in_room = chat
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .room
        .as_deref()
        == Some(room);
    if in_room {
        // A race with the socket's own join is decided by the state lock
        // inside `move_to`: check again there.
        let mut st = chat.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.room.as_deref() != Some(room) {
            return;
        }
        let mv = st.move_to(Scope::Lobby);
        socket.ns.leave(socket, room_key(&mv.from));
        socket.ns.join(socket, LOBBY);
        let name = st.name.clone();
        drop(st);
        presence(
            shared,
            socket,
            name.clone(),
            Some(room.to_owned()),
            PresenceChange::Left,
        );
        presence(shared, socket, name.clone(), None, PresenceChange::Joined);
        if shared.events.wants(EventKinds::JOIN) {
            shared.events.publish(HubEvent::Join(JoinEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                name,
                from: Some(room.to_owned()),
                to: None,
                by_host: true,
            }));
        }
    }
}

/// Tells the host, and with Redis every other hub, who is where (see
/// [`PresenceEvent`]).
fn presence(
    shared: &Shared,
    socket: &Socket,
    name: Option<String>,
    room: Option<String>,
    change: PresenceChange,
) {
    let cluster = shared.cluster.get();
    if let Some(c) = cluster {
        c.presence(&socket.ns.path, socket.id.as_str(), &name, &room, change);
    }
    if shared.events.wants(EventKinds::PRESENCE) {
        shared.events.publish(HubEvent::Presence(PresenceEvent {
            ns: socket.ns.path.clone(),
            sid: socket.id.to_string(),
            name,
            room,
            change,
            hub: cluster.map(|c| c.node().to_owned()),
        }));
    }
}

/// A `serverMessage` line (JSON-escaped) to the others where the socket
/// is: on this hub first, then (with Redis) on the others.
fn broadcast(shared: &Shared, socket: &Socket, scope: &Scope, line: &str) {
    let frame = line_frame(&socket.ns, line);
    socket.ns.broadcast(
        &[room_key(scope)],
        &[socket.id.as_str()],
        std::slice::from_ref(&frame),
    );
    publish_line(shared, socket, scope, line);
}

/// Publishes a line for the other hubs' sockets where the socket is.
fn publish_line(shared: &Shared, socket: &Socket, scope: &Scope, line: &str) {
    if let Some(cluster) = shared.cluster.get() {
        let to = match scope {
            Scope::Room(r) => crate::cluster::WireTarget::Room(r.clone()),
            Scope::Lobby => crate::cluster::WireTarget::Lobby,
        };
        cluster.emit_raw(
            &socket.ns.path,
            to,
            super::SERVER_MESSAGE,
            format!("\"{line}\""),
            Vec::new(),
        );
    }
}
