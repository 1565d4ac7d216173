//! gzip both ways, on services mounted through `configure_service!`: a
//! compressed request is accepted, and the answer is compressed when the
//! client accepts gzip (and only then).

use std::io::{Read as _, Write as _};

use grpc_runtime::RuntimeBuilder;
use prost::Message as _;
use testkit::{
    echo::pb::{EchoRequest, EchoResponse},
    grpc_web,
    raw::RawReply,
};
use tonic::Code;

use crate::common::{ECHO, app, grpc, send, web};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn long_echo() -> EchoRequest {
    EchoRequest {
        message: "compressible ".repeat(1000),
        delay_ms: 0,
    }
}

/// The one message of `reply`, decompressed if its frame says so.
fn only_message(reply: &RawReply) -> (bool, EchoResponse) {
    let frames: Vec<_> = reply
        .web_frames()
        .into_iter()
        .filter(|(flag, _)| flag & 0x80 == 0)
        .collect();
    assert_eq!(frames.len(), 1, "{reply:?}");
    let (flag, payload) = &frames[0];
    let compressed = flag & 1 == 1;
    let bytes = if compressed {
        gunzip(payload)
    } else {
        payload.to_vec()
    };
    (
        compressed,
        EchoResponse::decode(bytes.as_slice()).expect("the message decodes"),
    )
}

#[tokio::test]
async fn a_gzip_request_is_accepted_and_the_answer_is_gzip_when_accepted() {
    let app = app(RuntimeBuilder::new()).await;
    let request = long_echo();
    let body = grpc_web::frame_bytes(1, &gzip(&request.encode_to_vec()));
    for (what, mut http_request) in [
        (
            "gRPC-web",
            web(ECHO, "application/grpc-web+proto", body.clone()),
        ),
        (
            "gRPC-web-text",
            web(ECHO, "application/grpc-web-text", body.clone()),
        ),
        ("gRPC", grpc(ECHO, body)),
    ] {
        let headers = http_request.headers_mut();
        headers.insert("grpc-encoding", "gzip".parse().unwrap());
        headers.insert("grpc-accept-encoding", "gzip".parse().unwrap());
        let reply = send(&app, http_request).await;
        assert_eq!(reply.grpc_code(), Some(Code::Ok), "{what}: {reply:?}");
        assert_eq!(reply.header("grpc-encoding"), Some("gzip"), "{what}");
        let (compressed, answer) = only_message(&reply);
        assert!(compressed, "{what}: the answer's frame is compressed");
        assert_eq!(answer.message, request.message, "{what}");
    }
}

#[tokio::test]
async fn the_answer_is_not_compressed_when_the_client_does_not_accept_gzip() {
    let app = app(RuntimeBuilder::new()).await;
    let request = long_echo();
    let mut http_request = web(
        ECHO,
        "application/grpc-web+proto",
        grpc_web::frame_bytes(1, &gzip(&request.encode_to_vec())),
    );
    http_request
        .headers_mut()
        .insert("grpc-encoding", "gzip".parse().unwrap());
    let reply = send(&app, http_request).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    assert_eq!(reply.header("grpc-encoding"), None);
    let (compressed, answer) = only_message(&reply);
    assert!(!compressed);
    assert_eq!(answer.message, request.message);
}
