//! The hub's inbound path, without the network: an Engine.IO packet is
//! decoded as the hub decodes it (engineioxide's packet parser, then
//! socketioxide's Socket.IO parser, binary attachments included), and every
//! event goes through the chat's own reading and rules (`chathub::chat`)
//! and its argument conversions (`chathub::Value`).
//!
//! Input: an Engine.IO text packet, then (after a 0x00 byte) binary
//! attachments separated by 0x01 bytes.

#![no_main]

use bytes::Bytes;
use chathub::Value;
use chathub::chat::{self, ChatLimits, ChatState, Inbound, Scope};
use engineioxide_core::{Packet as EioPacket, ProtocolVersion, Str as EioStr};
use libfuzzer_sys::fuzz_target;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::Value as SioValue;
use socketioxide_parser_common::CommonParser;

fn chat_path(text: &str, bins: &[Bytes], state: &mut ChatState) {
    let limits = ChatLimits::default();
    let items = match chat::read_event(text) {
        Ok(items) => items,
        Err(e) => {
            let _ = format!("Error: {e}");
            return;
        }
    };
    match chat::classify(&items, &limits) {
        Some(Inbound::Login(Ok(name))) => {
            state.login(name.clone());
            let _ = (chat::logged_in_reply(&name), chat::logged_in_notice(&name));
        }
        Some(Inbound::Join(Ok(room))) => {
            let mv = state.move_to(Scope::Room(room));
            assert_eq!(state.scope(), mv.to);
        }
        Some(Inbound::Message(Ok(text))) => {
            let _ = chat::said_notice(state.display_name("sid"), text);
            assert!(text.chars().count() <= limits.max_message_len);
        }
        Some(Inbound::Login(Err(r)) | Inbound::Join(Err(r)) | Inbound::Message(Err(r))) => {
            assert!(chat::error_line(&r).starts_with("Error: "));
        }
        Some(Inbound::Custom { args, .. }) => {
            for arg in args {
                if let Ok(v) = Value::from_json_with_placeholders(arg.clone(), bins) {
                    let mut out = Vec::new();
                    let json = v.to_json_with_placeholders(&mut out);
                    // A round trip keeps the value.
                    assert_eq!(Value::from_json_with_placeholders(json, &out).ok(), Some(v));
                }
            }
        }
        None => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let attachments: Vec<Bytes> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|b| *b == 1).map(Bytes::copy_from_slice).collect()
    };
    let Ok(EioPacket::Message(msg)) = EioPacket::parse(ProtocolVersion::V4, EioStr::from(text.to_owned())) else {
        return;
    };
    let msg = socketioxide_core::Str::from(msg.as_str().to_owned());
    let config = ParseConfig::default();
    let state = ParserState::default();
    let mut packet = CommonParser.decode_str(&config, &state, msg);
    for bin in &attachments {
        if !matches!(packet, Err(socketioxide_core::parser::ParseError::NeedsMoreBinaryData)) {
            break;
        }
        packet = CommonParser.decode_bin(&config, &state, bin.clone());
    }
    let Ok(packet) = packet else { return };
    let mut chat_state = ChatState::default();
    if let PacketData::Event(SioValue::Str(text, bins), _) | PacketData::BinaryEvent(SioValue::Str(text, bins), _) =
        packet.inner
    {
        let bins: Vec<Bytes> = bins.map(|b| b.into_iter().collect()).unwrap_or_default();
        chat_path(text.as_str(), &bins, &mut chat_state);
    }
});
