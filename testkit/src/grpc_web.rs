//! gRPC and gRPC-web framing, written by hand on purpose: tests check the
//! wire format itself rather than trust a client library.
//!
//! A gRPC message travels as a 5-byte header (flag, big-endian length) and
//! its payload. gRPC-web adds a last frame with flag `0x80` holding the
//! trailers as HTTP/1-style lines, and `grpc-web-text` base64-encodes the
//! whole body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Flag bit of a compressed message frame.
pub const COMPRESSED_FLAG: u8 = 0x01;
/// Flag bit of a gRPC-web trailers frame.
pub const TRAILER_FLAG: u8 = 0x80;

/// `application/grpc-web+proto`, the binary gRPC-web content type.
pub const BINARY: &str = "application/grpc-web+proto";
/// `application/grpc-web-text`, base64 gRPC-web.
pub const TEXT: &str = "application/grpc-web-text";

/// One length-prefixed message frame (flag 0x00, uncompressed).
pub fn frame(message: &impl prost::Message) -> Bytes {
    frame_bytes(0, &message.encode_to_vec())
}

/// One frame with `flag` around `payload`, taken as it is (e.g. already
/// gzipped, with [`COMPRESSED_FLAG`]).
pub fn frame_bytes(flag: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(flag);
    buf.put_u32(u32::try_from(payload.len()).expect("a frame fits a u32 length"));
    buf.put_slice(payload);
    buf.freeze()
}

/// Takes every complete frame off the front of `buf` as (flag, payload) and
/// leaves a partial one there, for bodies read chunk by chunk.
pub fn take_frames(buf: &mut BytesMut) -> Vec<(u8, Bytes)> {
    let mut frames = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        let flag = buf[0];
        buf.advance(5);
        frames.push((flag, buf.split_to(len).freeze()));
    }
    frames
}

/// Splits a whole (binary) body into its frames. Panics on a truncated
/// frame: a server must never send one.
pub fn split_frames(body: Bytes) -> Vec<(u8, Bytes)> {
    let mut buf = BytesMut::from(body);
    let frames = take_frames(&mut buf);
    assert!(
        buf.is_empty(),
        "truncated frame at the end of the body: {} bytes left",
        buf.len()
    );
    frames
}

/// A decoded gRPC-web response body: messages, then the trailers frame.
#[derive(Debug, Default)]
pub struct WebBody {
    /// Payloads of the message frames, in order.
    pub messages: Vec<Bytes>,
    /// Trailer fields (lower-cased names) from the 0x80 frame.
    pub trailers: Vec<(String, String)>,
}

impl WebBody {
    /// A trailer field's value.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes message `i` as `M`.
    pub fn message<M: prost::Message + Default>(&self, i: usize) -> M {
        M::decode(self.messages[i].clone()).expect("message decodes")
    }
}

/// The fields of a trailers frame's payload, names lower-cased.
pub fn parse_trailers(block: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(block).expect("trailers are text");
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a trailer line has a colon");
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect()
}

/// Splits a (binary) gRPC-web response body into messages and trailers.
/// Panics on a malformed body or a compressed message: use
/// [`split_frames`] for those.
pub fn parse_web_body(body: Bytes) -> WebBody {
    let mut out = WebBody::default();
    for (flag, payload) in split_frames(body) {
        if flag & TRAILER_FLAG != 0 {
            out.trailers.extend(parse_trailers(&payload));
        } else {
            assert_eq!(flag, 0, "uncompressed message frame expected");
            out.messages.push(payload);
        }
    }
    out
}

/// base64 (standard alphabet) that accepts padded and unpadded input.
pub const BASE64_ANY_PAD: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes a `grpc-web-text` body. Servers base64-encode each chunk on its
/// own (with padding), so the body is decoded one 4-character group at a
/// time rather than as one string.
pub fn decode_web_text(text: &[u8]) -> Bytes {
    use base64::Engine as _;
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for group in clean.chunks(4) {
        let decoded = BASE64_ANY_PAD
            .decode(group)
            .expect("response body is valid base64");
        out.extend_from_slice(&decoded);
    }
    Bytes::from(out)
}

/// Base64 (standard, padded) of `bytes`, as a `grpc-web-text` request body.
pub fn web_text(bytes: &[u8]) -> Bytes {
    use base64::Engine as _;
    Bytes::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A gRPC-web POST of `body` to `path` (e.g. `/article.v1.ArticleService/ListArticles`)
/// with the headers a browser sends: for [`TEXT`], also
/// `accept: application/grpc-web-text`, which asks for a base64 response
/// (as the gRPC-web protocol specifies). Add headers with `headers_mut()`.
pub fn web_request(
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> http::Request<http_body_util::Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1");
    if content_type.starts_with(TEXT) {
        builder = builder.header("accept", TEXT);
    }
    builder
        .body(http_body_util::Full::new(body.into()))
        .expect("valid request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_binary_and_text_bodies() {
        let message = frame(&sample::Msg { value: 7 });
        let mut body = BytesMut::from(&message[..]);
        body.extend_from_slice(&frame_bytes(
            TRAILER_FLAG,
            b"grpc-status: 0\r\ngrpc-message: ok\r\n",
        ));
        let body = body.freeze();
        for bytes in [body.clone(), decode_web_text(&web_text(&body))] {
            let parsed = parse_web_body(bytes);
            assert_eq!(parsed.messages.len(), 1);
            assert_eq!(parsed.message::<sample::Msg>(0).value, 7);
            assert_eq!(parsed.trailer("grpc-status"), Some("0"));
            assert_eq!(parsed.trailer("grpc-message"), Some("ok"));
        }
    }

    #[test]
    fn take_frames_leaves_a_partial_frame_in_the_buffer() {
        let whole = frame_bytes(0, b"abc");
        let mut buf = BytesMut::from(&whole[..]);
        buf.extend_from_slice(&whole[..4]);
        let frames = take_frames(&mut buf);
        assert_eq!(frames, vec![(0, Bytes::from_static(b"abc"))]);
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn text_bodies_encoded_chunk_by_chunk_decode() {
        // Two separately padded chunks, as servers stream them.
        let mut text = web_text(b"ab").to_vec();
        text.extend_from_slice(&web_text(b"cde"));
        assert_eq!(decode_web_text(&text), Bytes::from_static(b"abcde"));
    }

    mod sample {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Msg {
            #[prost(int64, tag = "1")]
            pub value: i64,
        }
    }
}
