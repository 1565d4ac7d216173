//! The request message size limit, checked on the frame's length prefix
//! before the message is buffered, answered RESOURCE_EXHAUSTED, for every
//! service (built-in ones too). The default, 4 MiB, at its boundary.

use grpc_runtime::{DEFAULT_MAX_MESSAGE_BYTES, RuntimeBuilder};
use prost::Message as _;
use testkit::{
    echo::pb::{EchoRequest, EchoResponse},
    grpc_web::frame,
};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;

use crate::common::{ECHO, app, grpc, send, web};

/// An Echo request whose encoding is exactly `size` bytes.
fn echo_of_size(size: usize) -> EchoRequest {
    // Field 1: one tag byte, a 4-byte length varint (2^21 <= len < 2^28),
    // then the text.
    let request = EchoRequest {
        message: "a".repeat(size - 5),
        delay_ms: 0,
    };
    assert_eq!(
        request.encoded_len(),
        size,
        "precondition: the message size"
    );
    request
}

#[test]
fn the_default_limit_is_4_mib() {
    assert_eq!(DEFAULT_MAX_MESSAGE_BYTES, 4 * 1024 * 1024);
}

#[tokio::test]
async fn a_message_of_exactly_4_mib_passes_the_default_limit() {
    let app = app(RuntimeBuilder::new()).await;
    let request = echo_of_size(DEFAULT_MAX_MESSAGE_BYTES);
    let body = frame(&request);

    let reply = send(&app, web(ECHO, "application/grpc-web+proto", body.clone())).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::Ok),
        "gRPC-web: {:?}",
        reply.headers
    );
    let answer: EchoResponse = reply.web_body().message(0);
    assert_eq!(answer.message.len(), request.message.len());

    let reply = send(&app, grpc(ECHO, body)).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::Ok),
        "gRPC: {:?}",
        reply.headers
    );
    let answer: EchoResponse = reply.web_body().message(0);
    assert_eq!(answer.message.len(), request.message.len());
}

#[tokio::test]
async fn a_message_of_4_mib_plus_1_is_resource_exhausted() {
    let app = app(RuntimeBuilder::new()).await;
    let body = frame(&echo_of_size(DEFAULT_MAX_MESSAGE_BYTES + 1));

    let reply = send(&app, web(ECHO, "application/grpc-web+proto", body.clone())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "gRPC-web: {reply:?}"
    );
    let message = reply.grpc_meta("grpc-message").unwrap_or_default();
    assert!(
        message.contains("4194305"),
        "the message names the size: {message:?}"
    );

    let reply = send(&app, grpc(ECHO, body)).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "gRPC: {reply:?}"
    );
}

#[tokio::test]
async fn a_message_announced_too_big_is_refused_on_its_length_prefix() {
    // Only the 5-byte frame header of a 1 GiB message: the answer cannot
    // wait for the message, so it is refused on the length prefix alone.
    let app = app(RuntimeBuilder::new()).await;
    let mut header = vec![0u8];
    header.extend_from_slice(&(1u32 << 30).to_be_bytes());
    let reply = send(&app, grpc(ECHO, header.into())).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_lower_limit_applies_to_built_in_services_too() {
    let app = app(RuntimeBuilder::new().max_message_bytes(64)).await;
    let small = HealthCheckRequest {
        service: "example.v1.EchoService".into(),
    };
    let big = HealthCheckRequest {
        service: "x".repeat(100),
    };
    let check = "/grpc.health.v1.Health/Check";
    let reply = send(&app, grpc(check, frame(&small))).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    let reply = send(&app, grpc(check, frame(&big))).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "{reply:?}"
    );

    let reply = send(
        &app,
        grpc(
            ECHO,
            frame(&EchoRequest {
                message: "y".repeat(100),
                delay_ms: 0,
            }),
        ),
    )
    .await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "{reply:?}"
    );
}
