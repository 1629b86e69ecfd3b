//! The transports' readers, without the network: bytes read as a client's
//! WebSocket frames (masking, lengths, fragments, control frames, UTF-8),
//! then as a long-polling body (records, base64 binary).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chathub::fuzzing::transport(data);
});
