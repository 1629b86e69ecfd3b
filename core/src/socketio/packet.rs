//! Socket.IO v5 packets: reading a client's text packet (binary
//! attachments follow as separate messages) and encoding the server's
//! into Engine.IO [`Frame`]s.
//!
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`

use bytes::Bytes;

use crate::engine::{Frame, FrameBuilder, Kind};
use crate::value::Value;

/// A Socket.IO packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

/// Event names a client may not send (socket.io reserves them).
pub(crate) const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A client's packet, its JSON kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) kind: PacketType,
    /// The namespace (`/` when absent).
    pub(crate) ns: String,
    /// Binary attachments that follow (binary types).
    pub(crate) attachments: usize,
    pub(crate) ack: Option<u64>,
    /// The JSON payload, checked to fit the type, if any.
    pub(crate) data: Option<Bytes>,
}

/// The packet breaks the protocol; the connection is closed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid(pub(crate) &'static str);

/// Reads a text packet. At most `max_attachments` may be announced.
pub(crate) fn decode(text: Bytes, max_attachments: usize) -> Result<Packet, Invalid> {
    let s = std::str::from_utf8(&text).map_err(|_| Invalid("not UTF-8"))?;
    let b = s.as_bytes();
    let kind = match b.first() {
        Some(b'0') => PacketType::Connect,
        Some(b'1') => PacketType::Disconnect,
        Some(b'2') => PacketType::Event,
        Some(b'3') => PacketType::Ack,
        Some(b'4') => PacketType::ConnectError,
        Some(b'5') => PacketType::BinaryEvent,
        Some(b'6') => PacketType::BinaryAck,
        _ => return Err(Invalid("unknown packet type")),
    };
    let mut i = 1;
    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'-') || i - start > 6 {
            return Err(Invalid("bad attachment count"));
        }
        attachments = s[start..i]
            .parse()
            .map_err(|_| Invalid("bad attachment count"))?;
        if attachments == 0 || attachments > max_attachments {
            return Err(Invalid("too many attachments"));
        }
        i += 1;
    }
    let mut ns = "/";
    if b.get(i) == Some(&b'/') {
        let start = i;
        while i < b.len() && b[i] != b',' {
            i += 1;
        }
        ns = &s[start..i];
        if i < b.len() {
            i += 1; // the comma
        }
    }
    let mut ack = None;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i > start {
        ack = Some(
            s[start..i]
                .parse::<u64>()
                .map_err(|_| Invalid("bad ack id"))?,
        );
    }
    let rest = &s[i..];
    let data = if rest.is_empty() {
        None
    } else {
        Some(text.slice(i..))
    };
    let payload_ok = match (kind, data.as_ref()) {
        (PacketType::Connect, None) => true,
        (PacketType::Connect, Some(_)) => crate::json::is_object(rest),
        (PacketType::Disconnect, d) => d.is_none(),
        (PacketType::Event | PacketType::BinaryEvent, Some(_)) => match crate::json::array(rest) {
            Some(items) => items.first().is_some_and(|first| {
                let v = first.get();
                v.starts_with('"')
                    && crate::json::string(first)
                        .is_some_and(|name| !RESERVED_EVENTS.contains(&name.as_str()))
                    || v.bytes().all(|c| c.is_ascii_digit())
            }),
            None => false,
        },
        (PacketType::Ack | PacketType::BinaryAck, Some(_)) => {
            ack.is_some() && crate::json::array(rest).is_some()
        }
        // A client never sends CONNECT_ERROR; events and acks need data.
        _ => false,
    };
    if !payload_ok {
        return Err(Invalid("payload does not fit the packet type"));
    }
    Ok(Packet {
        kind,
        ns: ns.to_owned(),
        attachments,
        ack,
        data,
    })
}

/// The prefix of a namespace in a packet: empty for `/`, `/name,` else.
pub(crate) fn ns_prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// Starts a packet: Engine.IO message, type, attachments, namespace, ack.
fn start(
    kind: PacketType,
    attachments: usize,
    prefix: &str,
    ack: Option<u64>,
    hint: usize,
) -> FrameBuilder {
    let mut f = FrameBuilder::text(Kind::Message, prefix.len() + hint + 24);
    f.put_u8(b'0' + kind as u8);
    if attachments > 0 {
        put_number(&mut f, attachments as u64);
        f.put_u8(b'-');
    }
    f.put_slice(prefix.as_bytes());
    if let Some(id) = ack {
        put_number(&mut f, id);
    }
    f
}

fn put_number(f: &mut FrameBuilder, n: u64) {
    let mut buf = itoa::Buffer::new();
    f.put_slice(buf.format(n).as_bytes());
}

/// A packet with no payload (`DISCONNECT`).
pub(crate) fn disconnect(prefix: &str) -> Frame {
    start(PacketType::Disconnect, 0, prefix, None, 0).finish()
}

/// The answer to a namespace connect: `0[ns,]{"sid":ID}`, and the private
/// session id with recovery: `{"sid":ID,"pid":PID}`.
pub(crate) fn connect_ok(prefix: &str, sid: &str, pid: Option<&str>) -> Frame {
    let mut f = start(PacketType::Connect, 0, prefix, None, 64);
    f.put_slice(b"{\"sid\":\"");
    f.put_slice(sid.as_bytes());
    if let Some(pid) = pid {
        f.put_slice(b"\",\"pid\":\"");
        f.put_slice(pid.as_bytes());
    }
    f.put_slice(b"\"}");
    f.finish()
}

/// A refused connect: `4[ns,]{"message":TEXT}`.
pub(crate) fn connect_error(prefix: &str, message: &str) -> Frame {
    let mut f = start(
        PacketType::ConnectError,
        0,
        prefix,
        None,
        message.len() + 16,
    );
    f.put_slice(b"{\"message\":");
    crate::json::write_string(&mut f, message);
    f.put_u8(b'}');
    f.finish()
}

/// An event with one string argument given as the inside of a JSON string
/// literal (escapes included): the chat's lines, built without decoding
/// and encoding the client's text again.
pub(crate) fn event_raw_str(prefix: &str, event: &str, parts: &[&str]) -> Frame {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut f = start(PacketType::Event, 0, prefix, None, event.len() + len + 8);
    f.put_u8(b'[');
    crate::json::write_string(&mut f, event);
    f.put_slice(b",\"");
    for p in parts {
        f.put_slice(p.as_bytes());
    }
    f.put_slice(b"\"]");
    f.finish()
}

/// The arguments as JSON text without the enclosing brackets
/// (`1,"a",{...}`), binary nodes as placeholders numbered from the
/// attachments already in `bins`.
pub(crate) fn args_json(args: &[Value], bins: &mut Vec<Bytes>) -> String {
    let mut body = Vec::with_capacity(32);
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_value(&mut body, a, bins);
    }
    // Only JSON text was written.
    String::from_utf8(body).unwrap_or_default()
}

/// An event (or, without a name, an ACK) whose arguments are JSON text
/// (see [`args_json`]): the packet's frame, then one per attachment.
pub(crate) fn event_frames(
    prefix: &str,
    event: Option<&str>,
    args: &str,
    bins: &[Bytes],
    ack: Option<u64>,
) -> Vec<Frame> {
    let kind = match (event.is_some(), bins.is_empty()) {
        (true, true) => PacketType::Event,
        (true, false) => PacketType::BinaryEvent,
        (false, true) => PacketType::Ack,
        (false, false) => PacketType::BinaryAck,
    };
    let name_len = event.map_or(0, |e| e.len() + 3);
    let mut f = start(kind, bins.len(), prefix, ack, name_len + args.len() + 2);
    f.put_u8(b'[');
    if let Some(name) = event {
        crate::json::write_string(&mut f, name);
        if !args.is_empty() {
            f.put_u8(b',');
        }
    }
    f.put_slice(args.as_bytes());
    f.put_u8(b']');
    let mut frames = Vec::with_capacity(1 + bins.len());
    frames.push(f.finish());
    frames.extend(bins.iter().map(|b| Frame::binary(b)));
    frames
}

/// An event (or, without a name, an ACK) with arguments that may hold
/// binary data.
pub(crate) fn event(
    prefix: &str,
    event: Option<&str>,
    args: &[Value],
    ack: Option<u64>,
) -> Vec<Frame> {
    let mut bins = Vec::new();
    let json = args_json(args, &mut bins);
    event_frames(prefix, event, &json, &bins, ack)
}

/// Writes a value as JSON, binary nodes as placeholders.
fn write_value(out: &mut Vec<u8>, v: &Value, bins: &mut Vec<Bytes>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => crate::json::write_string(out, s),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, x, bins);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            out.push(b'{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                crate::json::write_string(out, k);
                out.push(b':');
                write_value(out, x, bins);
            }
            out.push(b'}');
        }
        Value::Binary(b) => {
            out.extend_from_slice(b"{\"_placeholder\":true,\"num\":");
            out.extend_from_slice(bins.len().to_string().as_bytes());
            out.push(b'}');
            bins.push(b.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &'static str) -> Result<Packet, Invalid> {
        decode(Bytes::from_static(s.as_bytes()), 10)
    }

    #[test]
    fn connects_with_and_without_namespace_and_auth() {
        let p = d("0").unwrap();
        assert_eq!(
            (p.kind, p.ns.as_str(), p.data),
            (PacketType::Connect, "/", None)
        );
        let p = d("0/custom,").unwrap();
        assert_eq!(p.ns, "/custom");
        let p = d("0/custom").unwrap();
        assert_eq!(p.ns, "/custom", "no comma is fine");
        let p = d(r#"0/custom,{"token":"abc"}"#).unwrap();
        assert_eq!(p.data.as_deref(), Some(&br#"{"token":"abc"}"#[..]));
        assert!(d("0[1]").is_err(), "auth must be an object");
    }

    #[test]
    fn events_acks_and_attachments() {
        let p = d(r#"2456["message-with-ack",1]"#).unwrap();
        assert_eq!((p.kind, p.ack), (PacketType::Event, Some(456)));
        let p =
            d(r#"52-/chat,789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
                .unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.ns.as_str(), p.ack),
            (PacketType::BinaryEvent, 2, "/chat", Some(789))
        );
        let p = d("3/chat,12[]").unwrap();
        assert_eq!((p.kind, p.ack), (PacketType::Ack, Some(12)));
        let p = d("1/chat,").unwrap();
        assert_eq!(p.kind, PacketType::Disconnect);
    }

    #[test]
    fn what_the_protocol_suite_calls_invalid_is_refused() {
        for bad in [
            "abc",
            "2{}",
            r#"2abc["message-with-ack",1]"#,
            "2",
            "2[]",
            r#"2["connect"]"#,
            "3[1]",
            r#"4{"message":"x"}"#,
            "5-[\"a\"]",
            "511-[\"a\"]",
            "1[]",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lone_surrogates_and_nul_pass_the_codec() {
        assert!(d(r#"2["clientMessage","\ud800"]"#).is_ok());
        assert!(d(r#"2["a\u0000b"]"#).is_ok());
    }

    #[test]
    fn server_packets_are_encoded() {
        let text = |f: &Frame| String::from_utf8(f.payload().to_vec()).unwrap();
        assert_eq!(text(&connect_ok("", "abc", None)), r#"40{"sid":"abc"}"#);
        assert_eq!(
            text(&connect_ok("/chat,", "abc", Some("p"))),
            r#"40/chat,{"sid":"abc","pid":"p"}"#
        );
        assert_eq!(
            text(&connect_error("/random,", "Invalid namespace")),
            r#"44/random,{"message":"Invalid namespace"}"#
        );
        assert_eq!(text(&disconnect("/chat,")), "41/chat,");
        assert_eq!(
            text(&event_raw_str(
                "/chat,",
                "serverMessage",
                &["You said: ", r"a\ud800"]
            )),
            r#"42/chat,["serverMessage","You said: a\ud800"]"#
        );
        let frames = event("", Some("auth"), &[Value::Object(Default::default())], None);
        assert_eq!(text(&frames[0]), r#"42["auth",{}]"#);
        let frames = event(
            "",
            None,
            &[
                Value::Binary(Bytes::from_static(&[1, 2, 3])),
                Value::from("x"),
            ],
            Some(789),
        );
        assert_eq!(
            text(&frames[0]),
            r#"461-789[{"_placeholder":true,"num":0},"x"]"#
        );
        assert_eq!(&frames[1].payload()[..], &[1, 2, 3]);
        assert!(frames[1].is_binary());
        let frames = event("", None, &[], Some(1));
        assert_eq!(text(&frames[0]), "431[]");
    }
}
