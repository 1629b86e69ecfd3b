//! The hub's inbound path, without the network: an Engine.IO packet is
//! decoded as the hub decodes it (the engine's packet reader, then the
//! Socket.IO packet decoder, binary attachments included), and every event
//! goes through the chat's own reading and rules and the argument
//! conversions, encoded again and read back.
//!
//! Input: an Engine.IO text packet, then (after a 0x00 byte) binary
//! attachments separated by 0x01 bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chathub::fuzzing::inbound(data);
});
