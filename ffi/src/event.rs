//! `chathub_event`: what a callback or hook is handed, read through
//! accessors; `chathub_ack`: the acknowledgement of a custom event, owned
//! by C once taken.
//!
//! An event is lent to C for the duration of one callback (or hook) call:
//! the event and every string an accessor returns stay valid until that
//! call returns, and must not be freed. Every accessor accepts NULL (and
//! then returns NULL, 0 or false). A string accessor returns NULL when the
//! event has no such field; the strings are NUL-terminated UTF-8, and
//! `out_len` (which may be NULL) receives the length in bytes without the
//! NUL, which matters only for a text that itself holds a NUL.

use std::ffi::c_char;
use std::sync::Mutex;

use bytes::Bytes;
use chathub::events::{HubEvent, Transport};
use chathub::{Ack, ConnectRequest, EventKinds, LoginRequest, Value};

use crate::cast::{self, CText, Opaque, chathub_bytes};
use crate::guard;
use crate::json;
use crate::result::{Failure, chathub_result};

/// The kind of an event (one bit each, so that kinds combine into the
/// `kinds` mask of `chathub_hub_subscribe`). The values are those of
/// `chathub::EventKinds` and are stable.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum chathub_kind {
    /// A socket connected to a namespace (passed the connect hook). Fields:
    /// ns, sid, auth_json (+ attachments), remote_addr, transport. Also the
    /// kind of a connect hook's request (then without transport).
    Connect = 1,
    /// A socket logged in or changed its name. Fields: ns, sid, name,
    /// previous_name (if it had one), room (NULL: the lobby). Also the
    /// kind of a login hook's request (name: the name asked for;
    /// previous_name: the current one).
    Login = 1 << 1,
    /// A socket changed room (by its `join`, or moved by the host). Fields:
    /// ns, sid, name, from_room and room (NULL: the lobby), by_host.
    Join = 1 << 2,
    /// A chat message was delivered. Fields: ns, sid, name, room, text.
    Message = 1 << 3,
    /// An event outside the chat protocol (the chapter's `my event`).
    /// Fields: ns, sid, name, event_name, args_json (+ attachments), and
    /// an acknowledgement to take when the client asked for one.
    Custom = 1 << 4,
    /// Chat input the hub refused (the sender got `Error: …`). Fields: ns,
    /// sid, event_name, error.
    Rejected = 1 << 5,
    /// A socket left its namespace. Fields: ns, sid, name, room, reason.
    Disconnect = 1 << 6,
    /// The link to the other hubs (Redis) went down or came back. Fields:
    /// node (this hub's id in the cluster), up, reason (what happened); ns
    /// and sid are empty.
    Cluster = 1 << 7,
    /// A socket went over a limit (flood, slow reader). Fields: ns, sid,
    /// name, limit (`"events per second"`, `"bytes per second"`, `"queued
    /// events"`, `"slow consumer"`), disconnected.
    Limit = 1 << 8,
    /// Who is where, on this hub and every other hub of the cluster: a
    /// socket of a chat namespace joined or left a room or the lobby, or
    /// took a name. Fields: ns, sid, name, room (NULL: the lobby), change
    /// (`"joined"`, `"left"`, `"renamed"`), node (the socket's hub; NULL
    /// without Redis). A hub that stops answering has its members leave
    /// within 3 s.
    Presence = 1 << 9,
}

/// Every event kind: the mask for `chathub_hub_subscribe` that asks for
/// all of them.
pub const CHATHUB_KIND_ALL: u32 = 1023;

// The C values are the core's bits.
const _: () = {
    assert!(chathub_kind::Connect as u32 == EventKinds::CONNECT.bits());
    assert!(chathub_kind::Login as u32 == EventKinds::LOGIN.bits());
    assert!(chathub_kind::Join as u32 == EventKinds::JOIN.bits());
    assert!(chathub_kind::Message as u32 == EventKinds::MESSAGE.bits());
    assert!(chathub_kind::Custom as u32 == EventKinds::CUSTOM.bits());
    assert!(chathub_kind::Rejected as u32 == EventKinds::REJECTED.bits());
    assert!(chathub_kind::Disconnect as u32 == EventKinds::DISCONNECT.bits());
    assert!(chathub_kind::Cluster as u32 == EventKinds::CLUSTER.bits());
    assert!(chathub_kind::Limit as u32 == EventKinds::LIMIT.bits());
    assert!(chathub_kind::Presence as u32 == EventKinds::PRESENCE.bits());
    assert!(CHATHUB_KIND_ALL == EventKinds::ALL.bits());
};

/// An event or a hook's request (opaque), lent to C for one call.
#[derive(Debug)]
pub struct chathub_event {
    _private: [u8; 0],
}

impl Opaque for chathub_event {
    type Inner = EventView;
}

/// The Rust side of a `chathub_event`: every field already in C form.
#[derive(Debug, Default)]
pub(crate) struct EventView {
    kind: u32,
    ns: Option<CText>,
    sid: Option<CText>,
    name: Option<CText>,
    previous_name: Option<CText>,
    room: Option<CText>,
    from_room: Option<CText>,
    text: Option<CText>,
    event_name: Option<CText>,
    error: Option<CText>,
    reason: Option<CText>,
    args_json: Option<CText>,
    auth_json: Option<CText>,
    attachments: Vec<Bytes>,
    remote_addr: Option<CText>,
    /// A connect hook's request: the handshake's headers, by lower-case
    /// name (several values joined with `, `).
    headers: Vec<(String, CText)>,
    transport: Option<CText>,
    node: Option<CText>,
    limit: Option<CText>,
    change: Option<CText>,
    by_host: bool,
    recovered: bool,
    /// Cluster: the link is up; limit: the socket was disconnected.
    flag: bool,
    ack: Mutex<Option<Ack>>,
}

/// Headers by lower-case name, several values joined with `", "`.
fn header_list(headers: &http::HeaderMap) -> Vec<(String, CText)> {
    headers
        .keys()
        .map(|k| {
            let values: Vec<String> = headers
                .get_all(k)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (k.as_str().to_owned(), CText::new(&values.join(", ")))
        })
        .collect()
}

fn text(s: &str) -> Option<CText> {
    Some(CText::new(s))
}

fn opt_text(s: Option<&str>) -> Option<CText> {
    s.map(CText::new)
}

impl EventView {
    /// Converts a hub event.
    pub(crate) fn from_event(event: HubEvent) -> EventView {
        let mut v = EventView {
            kind: event.kind().bits(),
            ns: text(event.ns()),
            sid: text(event.sid()),
            ..EventView::default()
        };
        match event {
            HubEvent::Connect(e) => {
                let (json, attachments) = json::value_to_json(&e.auth);
                v.auth_json = text(&json);
                v.attachments = attachments;
                v.remote_addr = e.remote_addr.map(|a| CText::new(&a.to_string()));
                v.transport = text(match e.transport {
                    Transport::Polling => "polling",
                    Transport::Websocket => "websocket",
                });
                v.recovered = e.recovered;
                v.headers = header_list(&e.headers);
            }
            HubEvent::Login(e) => {
                v.name = text(&e.name);
                v.previous_name = opt_text(e.previous.as_deref());
                v.room = opt_text(e.room.as_deref());
            }
            HubEvent::Join(e) => {
                v.name = opt_text(e.name.as_deref());
                v.from_room = opt_text(e.from.as_deref());
                v.room = opt_text(e.to.as_deref());
                v.by_host = e.by_host;
            }
            HubEvent::Message(e) => {
                v.name = opt_text(e.name.as_deref());
                v.room = opt_text(e.room.as_deref());
                v.text = text(&e.text);
            }
            HubEvent::Custom(e) => {
                let (json, attachments) = json::args_to_json(&e.args);
                v.name = opt_text(e.name.as_deref());
                v.event_name = text(&e.event);
                v.args_json = text(&json);
                v.attachments = attachments;
                v.ack = Mutex::new(e.ack);
            }
            HubEvent::Rejected(e) => {
                v.event_name = text(&e.event);
                v.error = text(&e.error);
            }
            HubEvent::Disconnect(e) => {
                v.name = opt_text(e.name.as_deref());
                v.room = opt_text(e.room.as_deref());
                v.reason = text(&e.reason);
            }
            HubEvent::Cluster(e) => {
                v.node = text(&e.node);
                v.reason = text(&e.detail);
                v.flag = e.up;
            }
            HubEvent::Limit(e) => {
                v.name = opt_text(e.name.as_deref());
                v.limit = text(&e.limit);
                v.flag = e.disconnected;
            }
            HubEvent::Presence(e) => {
                v.name = opt_text(e.name.as_deref());
                v.room = opt_text(e.room.as_deref());
                v.change = text(e.change.as_str());
                v.node = opt_text(e.hub.as_deref());
            }
            // A kind added to the core later: kind, ns and sid only.
            _ => {}
        }
        v
    }

    /// A client's answer to `chathub_hub_emit_with_ack`: a CUSTOM event
    /// with the namespace, the socket, the event it answered and its
    /// arguments (no ack of its own).
    pub(crate) fn from_answer(
        ns: &str,
        sid: &str,
        event: &str,
        args: &[chathub::Value],
    ) -> EventView {
        let (json, attachments) = json::args_to_json(args);
        EventView {
            kind: EventKinds::CUSTOM.bits(),
            ns: text(ns),
            sid: text(sid),
            event_name: text(event),
            args_json: text(&json),
            attachments,
            ..EventView::default()
        }
    }

    /// A connect hook's request.
    pub(crate) fn from_connect_request(req: &ConnectRequest) -> EventView {
        let (json, attachments) = json::value_to_json(&req.auth);
        EventView {
            kind: chathub_kind::Connect as u32,
            ns: text(&req.ns),
            sid: text(&req.sid),
            auth_json: text(&json),
            attachments,
            remote_addr: req.remote_addr.map(|a| CText::new(&a.to_string())),
            headers: header_list(&req.headers),
            ..EventView::default()
        }
    }

    /// A login hook's request.
    pub(crate) fn from_login_request(req: &LoginRequest) -> EventView {
        EventView {
            kind: chathub_kind::Login as u32,
            ns: text(&req.ns),
            sid: text(&req.sid),
            name: text(&req.name),
            previous_name: opt_text(req.current.as_deref()),
            ..EventView::default()
        }
    }
}

/// Reads one field of an event: NULL event or missing field give NULL.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
unsafe fn field(
    event: *const chathub_event,
    out_len: *mut usize,
    pick: impl FnOnce(&EventView) -> &Option<CText>,
) -> *const c_char {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        let Ok(view) = (unsafe { cast::borrow(event, "event") }) else {
            return std::ptr::null();
        };
        let Some(t) = pick(view) else {
            return std::ptr::null();
        };
        // SAFETY: the caller's contract above; NULL makes `out` fail, and
        // then nothing is written.
        if let Ok(out) = unsafe { cast::out(out_len, "out_len") } {
            out.write(t.len());
        }
        t.as_ptr()
    })
}

/// The kind of the event (a `CHATHUB_KIND_…` value); 0 for NULL.
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_kind(event: *const chathub_event) -> u32 {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }.map_or(0, |v| v.kind)
    })
}

/// The namespace (`"/chat"`). Every event has one.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_ns(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.ns) }
}

/// The socket id. Every event has one.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_sid(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.sid) }
}

/// The socket's name: for a login, the new name (for a login hook, the
/// name asked for); for the other kinds, the name the socket logged in
/// with, or NULL if it has not logged in. NULL for a connect.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_name(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.name) }
}

/// Login: the name the socket had before (NULL at its first login).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_previous_name(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.previous_name) }
}

/// The room the socket is in (NULL: the lobby): login, message,
/// disconnect; for a join, the room entered.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_room(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.room) }
}

/// Join: the room left (NULL: the socket was in the lobby).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_from_room(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.from_room) }
}

/// Message: the text said.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_text(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.text) }
}

/// Custom: the event name (`"my event"`); rejected: the chat event that
/// was refused (`"login"`, `"join"`, `"clientMessage"`).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_event_name(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.event_name) }
}

/// Rejected: what was wrong (the text after `Error: `).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_error(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.error) }
}

/// Disconnect: why, as Socket.IO names it (`"client namespace
/// disconnect"`, `"transport close"`, `"server namespace disconnect"`,
/// …).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_reason(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.reason) }
}

/// Presence: what changed, `"joined"`, `"left"` or `"renamed"`.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_change(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller's contract above.
    unsafe { field(event, out_len, |v| &v.change) }
}

/// Cluster: this hub's node id in its Redis cluster. Presence: the hub the
/// socket is on (NULL without Redis).
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_node(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller's contract above.
    unsafe { field(event, out_len, |v| &v.node) }
}

/// Limit: which limit the socket went over.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_limit(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller's contract above.
    unsafe { field(event, out_len, |v| &v.limit) }
}

/// Cluster: whether the link to the other hubs is up now. Limit: whether
/// the socket was disconnected for it (else its events were dropped).
/// False for other kinds and for NULL.
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_flag(event: *const chathub_event) -> bool {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }.is_ok_and(|v| v.flag)
    })
}

/// Custom: the arguments as a JSON array, one element per argument
/// (without the client's ack callback). Binary data appears as
/// Socket.IO placeholders `{"_placeholder":true,"num":N}`, N indexing
/// `chathub_event_attachment`.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_args_json(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.args_json) }
}

/// Connect (and a connect hook's request): the handshake `auth` payload
/// as JSON (`{}` when the client sent none), binary data as
/// placeholders like `chathub_event_args_json`.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_auth_json(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.auth_json) }
}

/// Connect: the peer address (`"127.0.0.1:51234"`), NULL when unknown.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_remote_addr(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.remote_addr) }
}

/// A connect hook's event: the value of the handshake's header `name`
/// (any case; `"cookie"`, `"authorization"`, `"origin"`…; several values
/// joined with `", "`), NULL when the request had none, `name` is NULL or
/// not UTF-8, or the event is not a connect event or a connect hook's.
///
/// Valid until the hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `name` is NULL or
/// NUL-terminated; `out_len` is NULL or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_header(
    event: *const chathub_event,
    name: *const c_char,
    out_len: *mut usize,
) -> *const c_char {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        let Ok(view) = (unsafe { cast::borrow(event, "event") }) else {
            return std::ptr::null();
        };
        // SAFETY: the caller's contract above.
        let Ok(name) = (unsafe { cast::string(name, "name") }) else {
            return std::ptr::null();
        };
        let Some((_, t)) = view
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        else {
            return std::ptr::null();
        };
        // SAFETY: the caller's contract above; NULL makes `out` fail, and
        // then nothing is written.
        if let Ok(out) = unsafe { cast::out(out_len, "out_len") } {
            out.write(t.len());
        }
        t.as_ptr()
    })
}

/// Connect: the transport at connect time, `"polling"` or
/// `"websocket"`.
///
/// Valid until the callback or hook returns; never free it.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_len` is NULL
/// or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_transport(
    event: *const chathub_event,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller\'s contract above.
    unsafe { field(event, out_len, |v| &v.transport) }
}

/// Join: whether the host moved the socket (`chathub_hub_join` /
/// `chathub_hub_leave`) rather than the client's own `join`. False for
/// NULL and other kinds.
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_by_host(event: *const chathub_event) -> bool {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }.is_ok_and(|v| v.by_host)
    })
}

/// Connect: whether the socket came back with connection state recovery
/// (`chathub_config_set_recovery`): the same id, its name, room and rooms
/// as before, and what it missed already sent. False for NULL and other
/// kinds.
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_recovered(event: *const chathub_event) -> bool {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }.is_ok_and(|v| v.recovered)
    })
}

/// How many binary attachments the event's JSON refers to (0 for NULL).
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_attachment_count(event: *const chathub_event) -> usize {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }.map_or(0, |v| v.attachments.len())
    })
}

/// Attachment `index` (the `num` of a placeholder): writes its bytes'
/// address and length to `*out_data` and `*out_len`. The bytes stay valid
/// until the callback returns. `CHATHUB_RESULT_INVALID_ARGUMENT` when
/// there is no such attachment.
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_data` and
/// `out_len` are NULL or valid for writing one value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_attachment(
    event: *const chathub_event,
    index: usize,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (view, out_data, out_len) = unsafe {
            (
                cast::borrow(event, "event")?,
                cast::out(out_data, "out_data")?,
                cast::out(out_len, "out_len")?,
            )
        };
        let bytes = view.attachments.get(index).ok_or_else(|| {
            Failure::invalid(format!(
                "no attachment {index} ({} attached)",
                view.attachments.len()
            ))
        })?;
        out_data.write(bytes.as_ptr());
        out_len.write(bytes.len());
        Ok(())
    })
}

/// Whether the event still carries an acknowledgement to take (custom
/// events whose client passed an ack callback).
///
/// # Safety
/// `event` is NULL or the event of the call running now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_has_ack(event: *const chathub_event) -> bool {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::borrow(event, "event") }
            .is_ok_and(|v| v.ack.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    })
}

/// Takes the event's acknowledgement: `*out_ack` then owns it, beyond the
/// callback, to answer once from any thread with `chathub_ack_send`, and
/// to free with `chathub_ack_free` (answered or not). `CHATHUB_RESULT_NO_ACK`
/// when the client asked for none, or it was taken already. An ack nobody
/// takes is dropped after the callback: the client's callback is never
/// called (as with socket.io when the server does not answer).
///
/// # Safety
/// `event` is NULL or the event of the call running now; `out_ack` is NULL
/// or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_event_take_ack(
    event: *const chathub_event,
    out_ack: *mut *mut chathub_ack,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (view, out) = unsafe {
            (
                cast::borrow(event, "event")?,
                cast::out(out_ack, "out_ack")?,
            )
        };
        let ack = view
            .ack
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| {
                Failure::new(
                    chathub_result::NoAck,
                    "the event has no acknowledgement to take",
                )
            })?;
        out.write(cast::into_raw(ack));
        Ok(())
    })
}

/// The acknowledgement a client asked for with a custom event (opaque),
/// owned by C after `chathub_event_take_ack`. Thread-safe.
#[derive(Debug)]
pub struct chathub_ack {
    _private: [u8; 0],
}

impl Opaque for chathub_ack {
    type Inner = Ack;
}

/// Answers the acknowledgement: `args_json` is a JSON array, each element
/// one argument of the client's callback (`"[{\"ok\":true}]"`), with
/// Socket.IO placeholders `{"_placeholder":true,"num":N}` for the
/// `attachment_count` binary `attachments` (NULL with a count of 0 when
/// there are none; the bytes are copied). Any thread, once:
/// `CHATHUB_RESULT_ALREADY_SENT` the second time,
/// `CHATHUB_RESULT_DELIVERY_FAILED` when the socket is gone. The ack stays
/// owned by the caller (free it with `chathub_ack_free`).
///
/// # Safety
/// `ack` is NULL or a live ack; `args_json` is NULL or NUL-terminated;
/// `attachments` is NULL or valid for `attachment_count` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_ack_send(
    ack: *const chathub_ack,
    args_json: *const c_char,
    attachments: *const chathub_bytes,
    attachment_count: usize,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (ack, args, bins) = unsafe {
            (
                cast::borrow(ack, "ack")?,
                cast::string(args_json, "args_json")?,
                cast::bytes_list(attachments, attachment_count, "attachments")?,
            )
        };
        let args: Vec<Value> = json::parse_args(args, &bins)?;
        ack.send(&args)?;
        Ok(())
    })
}

/// Frees an acknowledgement, answered or not. NULL is fine.
///
/// # Safety
/// `ack` is NULL or a live ack not in use by another thread; it must not
/// be used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_ack_free(ack: *mut chathub_ack) {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        drop(unsafe { cast::take(ack) });
    })
}
