//! gRPC-web text (base64) bodies: the input is the request body of a
//! unary Health/Check call, sent as `application/grpc-web-text`, either
//! as given or (first byte odd) base64-encoded first so that the decoder
//! gets past base64 and into frame splitting and message decoding.
#![no_main]

use article_fuzz::{call, check};
use axum::body::Body;
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding. Written out here (a dozen lines) so the
/// fuzz crate needs no encoder dependency of its own.
fn base64(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let body = if mode & 1 == 1 {
        base64(rest)
    } else {
        rest.to_vec()
    };
    let request = http::Request::post("/grpc.health.v1.Health/Check")
        .header(http::header::CONTENT_TYPE, "application/grpc-web-text")
        .header("x-grpc-web", "1")
        .body(Body::from(body))
        .expect("a valid request");
    check(&call(request));
});
