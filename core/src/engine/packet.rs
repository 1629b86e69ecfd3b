//! Engine.IO v4 packets: what one frame (WebSocket) or one record of a
//! long-polling payload carries, and the [`Frame`] every outgoing packet is
//! encoded into once, whatever the transport.

use bytes::{BufMut, Bytes, BytesMut};

/// The record separator between packets of a long-polling payload.
pub(crate) const SEPARATOR: u8 = 0x1e;

/// An Engine.IO packet type, as its ASCII digit on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Open = b'0' as isize,
    Close = b'1' as isize,
    Ping = b'2' as isize,
    Pong = b'3' as isize,
    Message = b'4' as isize,
    Upgrade = b'5' as isize,
    Noop = b'6' as isize,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'0' => Kind::Open,
            b'1' => Kind::Close,
            b'2' => Kind::Ping,
            b'3' => Kind::Pong,
            b'4' => Kind::Message,
            b'5' => Kind::Upgrade,
            b'6' => Kind::Noop,
            _ => return None,
        })
    }
}

/// A packet a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound {
    Close,
    /// A ping with its data (`probe` during an upgrade).
    Ping(Bytes),
    Pong(Bytes),
    Message(Message),
    Upgrade,
    Noop,
}

/// The data of a message packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Text, valid UTF-8.
    Text(Bytes),
    /// Binary data.
    Binary(Bytes),
}

/// Why a packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPacket;

/// Reads a text packet: a type digit, then its data. `text` must be valid
/// UTF-8 (the WebSocket layer checks text frames; polling bodies are checked
/// whole).
pub(crate) fn decode_text(text: Bytes) -> Result<Inbound, BadPacket> {
    let (&first, _) = text.split_first().ok_or(BadPacket)?;
    let kind = Kind::from_byte(first).ok_or(BadPacket)?;
    let data = text.slice(1..);
    Ok(match kind {
        Kind::Close => Inbound::Close,
        Kind::Ping => Inbound::Ping(data),
        Kind::Pong => Inbound::Pong(data),
        Kind::Message => Inbound::Message(Message::Text(data)),
        Kind::Upgrade => Inbound::Upgrade,
        Kind::Noop => Inbound::Noop,
        // A client never opens: the server does.
        Kind::Open => return Err(BadPacket),
    })
}

/// Splits a long-polling payload into its packets; a `b` record is base64
/// binary.
pub(crate) fn decode_payload(body: Bytes) -> Result<Vec<Inbound>, BadPacket> {
    if std::str::from_utf8(&body).is_err() {
        return Err(BadPacket);
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let end = memchr::memchr(SEPARATOR, &rest).unwrap_or(rest.len());
        let record = rest.slice(..end);
        if record.first() == Some(&b'b') {
            use base64::Engine as _;
            let bin = base64::engine::general_purpose::STANDARD
                .decode(&record[1..])
                .map_err(|_| BadPacket)?;
            out.push(Inbound::Message(Message::Binary(Bytes::from(bin))));
        } else {
            out.push(decode_text(record)?);
        }
        if end == rest.len() {
            return Ok(out);
        }
        rest = rest.slice(end + 1..);
    }
}

/// Room for the longest WebSocket frame header the server writes (no mask).
const HEADROOM: usize = 10;

/// One outgoing packet, encoded once: a complete server WebSocket frame
/// whose payload is the Engine.IO packet (type digit and data, or the raw
/// bytes of a binary message). Long-polling sends the payload without the
/// frame header. Clones share the bytes, so a broadcast costs one encoding
/// whatever the number of recipients and transports.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    buf: Bytes,
    head: u8,
    binary: bool,
    /// For a batch: its frames (`buf` is their WebSocket frames end to
    /// end, written at once; long-polling sends each as a record).
    parts: Option<std::sync::Arc<[Frame]>>,
}

impl Frame {
    /// The whole WebSocket frame (a batch: all its frames).
    pub(crate) fn ws(&self) -> &Bytes {
        &self.buf
    }

    /// The Engine.IO packet alone (not for a batch: see [`Frame::parts`]).
    pub(crate) fn payload(&self) -> Bytes {
        self.buf.slice(usize::from(self.head)..)
    }

    /// The frames of a batch, `None` for a single frame.
    pub(crate) fn parts(&self) -> Option<&[Frame]> {
        self.parts.as_deref()
    }

    /// How many packets it carries.
    pub(crate) fn count(&self) -> usize {
        self.parts.as_ref().map_or(1, |p| p.len())
    }

    /// A frame of the WebSocket itself (ping, pong, close), never sent on
    /// long-polling.
    pub(crate) fn raw_ws(bytes: Bytes) -> Frame {
        Frame {
            head: u8::try_from(bytes.len()).unwrap_or(u8::MAX),
            buf: bytes,
            binary: false,
            parts: None,
        }
    }

    /// One frame carrying `frames` in order: on a WebSocket one buffer,
    /// written at once, that every recipient shares.
    pub(crate) fn batch(frames: Vec<Frame>) -> Frame {
        let mut flat: Vec<Frame> = Vec::with_capacity(frames.len());
        for f in frames {
            match f.parts {
                Some(parts) => flat.extend(parts.iter().cloned()),
                None => flat.push(f),
            }
        }
        let size = flat.iter().map(|f| f.buf.len()).sum();
        let mut buf = BytesMut::with_capacity(size);
        for f in &flat {
            buf.extend_from_slice(&f.buf);
        }
        Frame {
            buf: buf.freeze(),
            head: 0,
            binary: false,
            parts: Some(flat.into()),
        }
    }

    /// Whether this is binary data (else a text packet).
    pub(crate) fn is_binary(&self) -> bool {
        self.binary
    }

    /// Its size on a WebSocket.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// A frame of one packet of `kind` with `data`.
    pub(crate) fn text(kind: Kind, data: &[u8]) -> Frame {
        let mut b = FrameBuilder::text(kind, data.len());
        b.put_slice(data);
        b.finish()
    }

    /// A binary message frame.
    pub(crate) fn binary(data: &[u8]) -> Frame {
        let mut b = FrameBuilder::binary(data.len());
        b.put_slice(data);
        b.finish()
    }
}

/// Writes one outgoing packet in place, leaving room for the WebSocket
/// header in front, so that the frame is one allocation.
#[derive(Debug)]
pub(crate) struct FrameBuilder {
    buf: BytesMut,
    binary: bool,
}

impl FrameBuilder {
    /// Starts a text packet of `kind`; `hint` is the expected data size.
    pub(crate) fn text(kind: Kind, hint: usize) -> FrameBuilder {
        let mut buf = BytesMut::with_capacity(HEADROOM + 1 + hint);
        buf.put_bytes(0, HEADROOM);
        buf.put_u8(kind as u8);
        FrameBuilder { buf, binary: false }
    }

    /// Starts a binary message.
    pub(crate) fn binary(hint: usize) -> FrameBuilder {
        let mut buf = BytesMut::with_capacity(HEADROOM + hint);
        buf.put_bytes(0, HEADROOM);
        FrameBuilder { buf, binary: true }
    }

    /// Writes the header in front of the payload and seals the frame.
    pub(crate) fn finish(mut self) -> Frame {
        let len = self.buf.len() - HEADROOM;
        let opcode = if self.binary { 0x2 } else { 0x1 };
        let mut head = [0u8; HEADROOM];
        head[0] = 0x80 | opcode;
        let n = if len < 126 {
            head[1] = len as u8;
            2
        } else if let Ok(l) = u16::try_from(len) {
            head[1] = 126;
            head[2..4].copy_from_slice(&l.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        let start = HEADROOM - n;
        self.buf[start..HEADROOM].copy_from_slice(&head[..n]);
        let mut buf = self.buf.freeze();
        let _ = buf.split_to(start);
        Frame {
            buf,
            head: n as u8,
            binary: self.binary,
            parts: None,
        }
    }
}

impl FrameBuilder {
    /// Appends bytes to the payload.
    pub(crate) fn put_slice(&mut self, src: &[u8]) {
        self.buf.put_slice(src);
    }

    /// Appends one byte to the payload.
    pub(crate) fn put_u8(&mut self, b: u8) {
        self.buf.put_u8(b);
    }
}

impl std::io::Write for FrameBuilder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.put_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for FrameBuilder {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Encodes frames as one long-polling payload.
pub(crate) fn encode_payload(frames: &[Frame]) -> Bytes {
    use base64::Engine as _;
    let size: usize = frames.iter().map(|f| f.len() * 4 / 3 + 4).sum();
    let mut out = BytesMut::with_capacity(size);
    let singles = frames
        .iter()
        .flat_map(|f| f.parts().map_or(std::slice::from_ref(f), |p| p));
    for (i, f) in singles.enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        let payload = f.payload();
        if f.is_binary() {
            out.put_u8(b'b');
            out.put_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&payload)
                    .as_bytes(),
            );
        } else {
            out.put_slice(&payload);
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packets_are_read() {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(
            decode_text(b("4hello")),
            Ok(Inbound::Message(Message::Text(b("hello"))))
        );
        assert_eq!(decode_text(b("2probe")), Ok(Inbound::Ping(b("probe"))));
        assert_eq!(decode_text(b("3")), Ok(Inbound::Pong(b(""))));
        assert_eq!(decode_text(b("1")), Ok(Inbound::Close));
        assert_eq!(decode_text(b("5")), Ok(Inbound::Upgrade));
        assert_eq!(decode_text(b("6")), Ok(Inbound::Noop));
        assert_eq!(decode_text(b("0{}")), Err(BadPacket));
        assert_eq!(decode_text(b("abc")), Err(BadPacket));
        assert_eq!(decode_text(b("")), Err(BadPacket));
    }

    #[test]
    fn payloads_split_on_the_separator_and_decode_binary() {
        let body = Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e3");
        assert_eq!(
            decode_payload(body),
            Ok(vec![
                Inbound::Message(Message::Text(Bytes::from_static(b"hello"))),
                Inbound::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
                Inbound::Pong(Bytes::new()),
            ])
        );
        assert_eq!(decode_payload(Bytes::from_static(b"abc")), Err(BadPacket));
        assert_eq!(
            decode_payload(Bytes::from_static(b"b!!!")),
            Err(BadPacket),
            "bad base64"
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"4\xff")),
            Err(BadPacket),
            "not UTF-8"
        );
    }

    #[test]
    fn frames_carry_a_websocket_header_and_the_packet() {
        let f = Frame::text(Kind::Message, b"hello");
        assert_eq!(&f.ws()[..], b"\x81\x064hello");
        assert_eq!(&f.payload()[..], b"4hello");
        let long = vec![b'x'; 300];
        let f = Frame::text(Kind::Message, &long);
        assert_eq!(&f.ws()[..4], &[0x81, 126, 0x01, 0x2d]);
        assert_eq!(f.payload().len(), 301);
        let big = vec![0u8; 70_000];
        let f = Frame::binary(&big);
        assert_eq!(f.ws()[0], 0x82);
        assert_eq!(f.ws()[1], 127);
        assert_eq!(&f.ws()[2..10], &70_000u64.to_be_bytes());
        assert_eq!(f.payload().len(), 70_000);
    }

    #[test]
    fn a_batch_is_its_frames_end_to_end_or_records() {
        let b = Frame::batch(vec![
            Frame::text(Kind::Message, b"a"),
            Frame::batch(vec![Frame::text(Kind::Message, b"b"), Frame::binary(&[1])]),
        ]);
        assert_eq!(b.count(), 3);
        assert_eq!(&b.ws()[..], b"\x81\x024a\x81\x024b\x82\x01\x01");
        assert_eq!(
            &encode_payload(&[b, Frame::text(Kind::Ping, b"")])[..],
            b"4a\x1e4b\x1ebAQ==\x1e2"
        );
    }

    #[test]
    fn payloads_are_encoded_with_base64_binary() {
        let frames = [
            Frame::text(Kind::Message, b"hello"),
            Frame::binary(&[1, 2, 3, 4]),
            Frame::text(Kind::Ping, b""),
        ];
        assert_eq!(&encode_payload(&frames)[..], b"4hello\x1ebAQIDBA==\x1e2");
    }
}
