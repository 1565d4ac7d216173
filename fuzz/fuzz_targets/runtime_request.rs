//! Any request through the runtime's one-port service: method, path,
//! content type (known or arbitrary), `grpc-encoding`, and an arbitrary
//! body. Covers the content-type dispatch, CORS, the message-size limit
//! and gRPC/gRPC-web framing (binary and text).
//!
//! Input layout: [method, path, content type, encoding, split] selector
//! bytes, then the rest split into (raw path/content-type bytes, body).
#![no_main]

use article_fuzz::{call, check, content_type, path, pick};
use axum::body::Body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [method, path_sel, ct_sel, enc_sel, split, rest @ ..] = data else {
        return;
    };
    let at = usize::from(*split).min(rest.len());
    let (raw, body) = rest.split_at(at);
    let mut request = http::Request::builder()
        .method(pick(&["POST", "GET", "OPTIONS", "PUT"], *method))
        .uri(path(*path_sel, raw));
    if let Some(ct) = content_type(*ct_sel, raw) {
        request = request.header(http::header::CONTENT_TYPE, ct);
    }
    let encoding = pick(&["", "gzip", "identity", "br"], *enc_sel);
    if !encoding.is_empty() {
        request = request.header("grpc-encoding", encoding);
    }
    if *method & 0x40 != 0 {
        request = request
            .header(http::header::ORIGIN, "https://fuzz.example")
            .header("access-control-request-method", "POST");
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    check(&call(request));
});
