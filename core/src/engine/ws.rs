//! WebSocket framing (RFC 6455), server side: the handshake's accept key,
//! reading client frames in place, and the few frames the server writes
//! besides Engine.IO packets (pong, close).
//!
//! Written here rather than taken from tungstenite so that frames can be
//! read out of a buffer shared by all connections of a thread (an idle
//! connection owns no read buffer) and written from [`Frame`]s encoded
//! once per broadcast (see `docs/ARCHITECTURE.md`).
//!
//! [`Frame`]: super::packet::Frame

use bytes::{Bytes, BytesMut};

/// Close codes the server sends.
pub(crate) mod code {
    /// Normal closure.
    pub(crate) const NORMAL: u16 = 1000;
    /// A frame broke the protocol.
    pub(crate) const PROTOCOL: u16 = 1002;
    /// A text message was not UTF-8.
    pub(crate) const INVALID_DATA: u16 = 1007;
    /// A message over the size limit.
    pub(crate) const TOO_BIG: u16 = 1009;
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// What a client's frames amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WsEvent {
    /// A whole text message (valid UTF-8).
    Text(Bytes),
    /// A whole binary message.
    Binary(Bytes),
    /// A ping, to answer with a pong carrying the same data.
    Ping(Bytes),
    /// A close frame, with its code if any.
    Close(Option<u16>),
}

/// A client broke the framing rules; the close code to send says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WsError(pub(crate) u16);

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One frame found in a buffer: where its payload is (unmasked in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawFrame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Finds the first complete frame at the start of `src`, unmasking its
/// payload in place. `Ok(None)`: more bytes are needed. A frame whose
/// payload is over `max` is refused before its bytes arrive.
pub(crate) fn parse_frame(src: &mut [u8], max: usize) -> Result<Option<RawFrame>, WsError> {
    if src.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (src[0], src[1]);
    if b0 & 0x70 != 0 {
        // No extension was negotiated: reserved bits must be clear.
        return Err(WsError(code::PROTOCOL));
    }
    if b1 & 0x80 == 0 {
        // Client frames must be masked.
        return Err(WsError(code::PROTOCOL));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let is_control = opcode & 0x8 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            if src.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([src[2], src[3]])), 4)
        }
        127 => {
            if src.len() < 10 {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            l.copy_from_slice(&src[2..10]);
            (u64::from_be_bytes(l), 10)
        }
        n => (u64::from(n), 2),
    };
    if is_control && (len > 125 || !fin) {
        return Err(WsError(code::PROTOCOL));
    }
    if !matches!(
        opcode,
        OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(WsError(code::PROTOCOL));
    }
    let len = usize::try_from(len).map_err(|_| WsError(code::TOO_BIG))?;
    if len > max && !is_control {
        return Err(WsError(code::TOO_BIG));
    }
    if src.len() < at + 4 {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&src[at..at + 4]);
    at += 4;
    if src.len() - at < len {
        return Ok(None);
    }
    unmask(&mut src[at..at + len], mask);
    Ok(Some(RawFrame {
        fin,
        opcode,
        start: at,
        end: at + len,
    }))
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Puts fragmented messages back together and sorts frames into
/// [`WsEvent`]s. Holds memory only while a fragmented message is open.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// The opcode and data of a message still missing fragments.
    open: Option<(u8, BytesMut)>,
}

impl Assembler {
    /// Takes one frame's payload. `Ok(None)`: nothing to hand on yet (a
    /// fragment, a pong).
    pub(crate) fn push(
        &mut self,
        frame: RawFrame,
        payload: &[u8],
        max: usize,
    ) -> Result<Option<WsEvent>, WsError> {
        match frame.opcode {
            OP_PING => Ok(Some(WsEvent::Ping(Bytes::copy_from_slice(payload)))),
            OP_PONG => Ok(None),
            OP_CLOSE => {
                let code = match payload.len() {
                    0 => None,
                    1 => return Err(WsError(code::PROTOCOL)),
                    _ => {
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            return Err(WsError(code::INVALID_DATA));
                        }
                        Some(u16::from_be_bytes([payload[0], payload[1]]))
                    }
                };
                Ok(Some(WsEvent::Close(code)))
            }
            OP_TEXT | OP_BINARY => {
                if self.open.is_some() {
                    // A new message inside an unfinished one.
                    return Err(WsError(code::PROTOCOL));
                }
                if frame.fin {
                    return whole(frame.opcode, Bytes::copy_from_slice(payload)).map(Some);
                }
                let mut buf = BytesMut::with_capacity(payload.len());
                buf.extend_from_slice(payload);
                self.open = Some((frame.opcode, buf));
                Ok(None)
            }
            _ => {
                // A continuation.
                let Some((opcode, buf)) = self.open.as_mut() else {
                    return Err(WsError(code::PROTOCOL));
                };
                if buf.len() + payload.len() > max {
                    return Err(WsError(code::TOO_BIG));
                }
                buf.extend_from_slice(payload);
                if !frame.fin {
                    return Ok(None);
                }
                let opcode = *opcode;
                let (_, buf) = self.open.take().expect("checked above");
                whole(opcode, buf.freeze()).map(Some)
            }
        }
    }
}

fn whole(opcode: u8, data: Bytes) -> Result<WsEvent, WsError> {
    if opcode == OP_TEXT {
        if std::str::from_utf8(&data).is_err() {
            return Err(WsError(code::INVALID_DATA));
        }
        Ok(WsEvent::Text(data))
    } else {
        Ok(WsEvent::Binary(data))
    }
}

/// A pong answering a ping's data.
pub(crate) fn pong(data: &[u8]) -> Bytes {
    control(OP_PONG, data)
}

/// A close frame with `code`.
pub(crate) fn close(code: u16) -> Bytes {
    control(OP_CLOSE, &code.to_be_bytes())
}

fn control(opcode: u8, data: &[u8]) -> Bytes {
    let data = &data[..data.len().min(125)];
    let mut out = Vec::with_capacity(2 + data.len());
    out.push(0x80 | opcode);
    out.push(data.len() as u8);
    out.extend_from_slice(data);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    pub(crate) fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn read_all(mut bytes: Vec<u8>, max: usize) -> Result<Vec<WsEvent>, WsError> {
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(f) = parse_frame(&mut bytes[at..], max)? {
            let payload = bytes[at + f.start..at + f.end].to_vec();
            if let Some(ev) = asm.push(f, &payload, max)? {
                out.push(ev);
            }
            at += f.end;
        }
        assert_eq!(at, bytes.len(), "every byte read");
        Ok(out)
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn masked_frames_are_read_and_fragments_joined() {
        let mut bytes = client_frame(true, OP_TEXT, b"4hello");
        bytes.extend(client_frame(false, OP_BINARY, &[1, 2]));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_CONT, &[3]));
        bytes.extend(client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        assert_eq!(
            read_all(bytes, 100),
            Ok(vec![
                WsEvent::Text(Bytes::from_static(b"4hello")),
                WsEvent::Ping(Bytes::from_static(b"p")),
                WsEvent::Binary(Bytes::from_static(&[1, 2, 3])),
                WsEvent::Close(Some(1000)),
            ])
        );
    }

    #[test]
    fn long_frames_use_extended_lengths() {
        let big = vec![7u8; 70_000];
        let bytes = client_frame(true, OP_BINARY, &big);
        assert_eq!(
            read_all(bytes, 100_000),
            Ok(vec![WsEvent::Binary(Bytes::from(big))])
        );
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let mut bytes = client_frame(true, OP_TEXT, b"4hello");
        for cut in 0..bytes.len() {
            assert_eq!(parse_frame(&mut bytes[..cut].to_vec(), 100), Ok(None));
        }
        assert!(parse_frame(&mut bytes, 100).unwrap().is_some());
    }

    #[test]
    fn broken_frames_get_their_close_code() {
        let err = |bytes: Vec<u8>, max| read_all(bytes, max).unwrap_err().0;
        assert_eq!(
            err(client_frame(true, OP_TEXT, b"\xff\xfe"), 100),
            code::INVALID_DATA
        );
        assert_eq!(
            err(client_frame(true, OP_TEXT, &[b'x'; 101]), 100),
            code::TOO_BIG
        );
        let mut many = client_frame(false, OP_TEXT, &[b'x'; 60]);
        many.extend(client_frame(true, OP_CONT, &[b'x'; 60]));
        assert_eq!(err(many, 100), code::TOO_BIG);
        // Unmasked.
        assert_eq!(err(vec![0x81, 0x01, b'x'], 100), code::PROTOCOL);
        // Reserved bits.
        let mut rsv = client_frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        assert_eq!(err(rsv, 100), code::PROTOCOL);
        // A continuation with nothing open.
        assert_eq!(err(client_frame(true, OP_CONT, b"x"), 100), code::PROTOCOL);
        // A fragmented ping.
        assert_eq!(err(client_frame(false, OP_PING, b"x"), 100), code::PROTOCOL);
        // An unknown opcode.
        assert_eq!(err(client_frame(true, 0x3, b"x"), 100), code::PROTOCOL);
        // UTF-8 split across fragments is fine.
        let mut split = client_frame(false, OP_TEXT, &"é".as_bytes()[..1]);
        split.extend(client_frame(true, OP_CONT, &"é".as_bytes()[1..]));
        assert_eq!(
            read_all(split, 100),
            Ok(vec![WsEvent::Text(Bytes::from("é"))])
        );
    }

    #[test]
    fn server_control_frames() {
        assert_eq!(&close(1009)[..], &[0x88, 2, 0x03, 0xf1]);
        assert_eq!(&pong(b"ab")[..], &[0x8a, 2, b'a', b'b']);
    }
}
