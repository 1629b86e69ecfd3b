//! Entry points for the fuzz targets (`fuzz/`, cargo feature `fuzzing`):
//! the hub's inbound decoders without the network. Not a stable API.

use bytes::Bytes;

use crate::chat::{self, ChatLimits, ChatState, EventKind, Scope};
use crate::engine::packet::{self, Inbound, Message};
use crate::engine::ws;
use crate::socketio::packet as sio;

/// An Engine.IO text packet (then, after a 0x00 byte, binary attachments
/// separated by 0x01 bytes), decoded as the hub decodes it, and every event
/// taken through the chat's reading and rules and the argument
/// conversions. Panics on a broken invariant.
pub fn inbound(data: &[u8]) {
    let (text, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if std::str::from_utf8(text).is_err() {
        return;
    }
    let bins: Vec<Bytes> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|b| *b == 1)
            .map(Bytes::copy_from_slice)
            .collect()
    };
    let Ok(Inbound::Message(Message::Text(msg))) =
        packet::decode_text(Bytes::copy_from_slice(text))
    else {
        return;
    };
    let Ok(p) = sio::decode(msg, crate::socketio::MAX_ATTACHMENTS) else {
        return;
    };
    assert!(p.attachments <= crate::socketio::MAX_ATTACHMENTS);
    if p.attachments != bins.len() {
        return;
    }
    if let (sio::PacketType::Event | sio::PacketType::BinaryEvent, Some(data)) = (p.kind, p.data) {
        let text = std::str::from_utf8(&data).expect("a decoded packet is UTF-8");
        event(text, &bins);
    }
}

fn event(text: &str, bins: &[Bytes]) {
    let limits = ChatLimits::default();
    let items = crate::json::array(text).expect("a decoded event is an array");
    let first = items.first().expect("a decoded event has a name");
    let name = crate::json::string(first).unwrap_or_else(|| first.get().to_owned());
    let arg = items.get(1).copied();
    let decoded = arg.and_then(crate::json::string);
    let mut state = ChatState::default();
    match chat::classify(&name) {
        EventKind::Login => {
            if let Ok(n) = chat::check_name(decoded.as_deref(), &limits) {
                assert!(!n.is_empty() && n.chars().count() <= limits.max_name_len);
                state.login(n);
            }
        }
        EventKind::Join => {
            if let Ok(room) = chat::check_room(decoded.as_deref(), &limits) {
                let mv = state.move_to(Scope::Room(room));
                assert_eq!(state.scope(), mv.to);
            }
        }
        EventKind::Message => {
            if chat::check_message(decoded.as_deref(), &limits).is_ok() {
                let raw = arg.and_then(crate::json::string_body).unwrap_or("");
                let line = chat::said_notice("sid", raw);
                // The line as a packet is a valid packet again.
                let frame = sio::event_raw_str("/chat,", chat::SERVER_MESSAGE, &[&line]);
                let again =
                    sio::decode(frame.payload().slice(1..), 0).expect("our line is a packet");
                assert_eq!(again.kind, sio::PacketType::Event);
            }
        }
        EventKind::Custom => {
            if let Ok(args) = chat::handler::custom_args(text, bins) {
                // Encoded and read back, the values are the same.
                let frames = sio::event("/chat,", Some("x"), &args, None);
                let head = frames[0].payload().slice(1..);
                let again = sio::decode(head, usize::MAX).expect("our packet decodes");
                let again_bins: Vec<Bytes> = frames[1..].iter().map(|f| f.payload()).collect();
                let data = again.data.expect("an event has data");
                let back =
                    chat::handler::custom_args(std::str::from_utf8(&data).unwrap(), &again_bins)
                        .expect("our arguments read back");
                assert_eq!(back.len(), args.len());
            }
        }
    }
}

/// Bytes as a client's WebSocket frames, then as a long-polling body.
/// Panics on a broken invariant.
pub fn transport(data: &[u8]) {
    let max = 4096;
    let mut buf = data.to_vec();
    let mut asm = ws::Assembler::default();
    let mut at = 0;
    while let Ok(Some(f)) = ws::parse_frame(&mut buf[at..], max) {
        assert!(f.end <= buf.len() - at && f.start <= f.end);
        let payload = buf[at + f.start..at + f.end].to_vec();
        at += f.end;
        match asm.push(f, &payload, max) {
            Ok(Some(ws::WsEvent::Text(t))) => {
                assert!(std::str::from_utf8(&t).is_ok());
                let _ = packet::decode_text(t);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = packet::decode_payload(Bytes::copy_from_slice(data));
}
