//! Both protocols on one socket: native gRPC over h2c (tonic's client),
//! gRPC-web binary and text over HTTP/1.1 and over HTTP/2, unary and the
//! server stream; health and reflection beside the mounted service.

use std::net::SocketAddr;

use futures::StreamExt as _;
use grpc_runtime::RuntimeBuilder;
use http_body_util::BodyExt as _;
use prost::Message as _;
use testkit::{
    TIMEOUT,
    echo::{
        EchoServiceClient, SERVICE_NAME,
        pb::{CountRequest, CountResponse, EchoRequest, EchoResponse},
    },
    grpc_web::{self, BINARY, TEXT, frame},
    raw::{self, RawReply, RawRequest},
};
use tonic::{Code, codec::CompressionEncoding};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1alpha;

use crate::common::{COUNT, ECHO, open, reflected_services, serve, web};

#[tokio::test]
async fn native_grpc_over_h2c_answers_unary_and_streaming_calls() {
    let server = serve(RuntimeBuilder::new()).await;
    let mut echo = EchoServiceClient::new(server.channel().await);
    let reply = echo
        .echo(EchoRequest {
            message: "native".into(),
            delay_ms: 0,
        })
        .await
        .expect("Echo answers")
        .into_inner();
    assert_eq!(reply.message, "native");

    let numbers: Vec<u64> = echo
        .count(CountRequest {
            after: 0,
            up_to: 3,
            interval_ms: 0,
        })
        .await
        .expect("Count opens")
        .into_inner()
        .map(|item| item.expect("a number").number)
        .collect()
        .await;
    assert_eq!(numbers, [1, 2, 3]);

    // gzip both ways with tonic's client.
    let mut gzip = echo
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let reply = gzip
        .echo(EchoRequest {
            message: "zipped ".repeat(100),
            delay_ms: 0,
        })
        .await
        .expect("a gzip Echo answers");
    assert_eq!(
        reply.metadata().get("grpc-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert_eq!(reply.into_inner().message, "zipped ".repeat(100));
    server.shutdown().await;
}

type Exchange = fn(SocketAddr, RawRequest) -> futures::future::BoxFuture<'static, RawReply>;

/// The two HTTP versions gRPC-web travels on, each on a new connection.
fn exchanges() -> [(&'static str, Exchange); 2] {
    [
        ("HTTP/1.1", |addr, request| {
            Box::pin(raw::http1(addr, request))
        }),
        ("HTTP/2", |addr, request| Box::pin(raw::h2c(addr, request))),
    ]
}

#[tokio::test]
async fn grpc_web_binary_and_text_answer_over_http1_and_http2() {
    let server = serve(RuntimeBuilder::new()).await;
    for (version, exchange) in exchanges() {
        for content_type in [BINARY, TEXT] {
            let what = format!("{content_type} over {version}");
            let echo = frame(&EchoRequest {
                message: what.clone(),
                delay_ms: 0,
            });
            let reply = exchange(server.addr, web(ECHO, content_type, echo)).await;
            assert_eq!(reply.status, http::StatusCode::OK, "{what}");
            assert!(
                reply
                    .header("content-type")
                    .is_some_and(|ct| ct.starts_with(content_type)),
                "{what}: {:?}",
                reply.header("content-type")
            );
            let body = reply.web_body();
            assert_eq!(body.trailer("grpc-status"), Some("0"), "{what}: {body:?}");
            assert_eq!(body.messages.len(), 1, "{what}");
            assert_eq!(body.message::<EchoResponse>(0).message, what);

            let count = frame(&CountRequest {
                after: 10,
                up_to: 14,
                interval_ms: 1,
            });
            let reply = exchange(server.addr, web(COUNT, content_type, count)).await;
            let body = reply.web_body();
            assert_eq!(body.trailer("grpc-status"), Some("0"), "{what}: {body:?}");
            let numbers: Vec<u64> = (0..body.messages.len())
                .map(|i| body.message::<CountResponse>(i).number)
                .collect();
            assert_eq!(numbers, [11, 12, 13, 14], "Count, {what}");
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn grpc_web_stream_messages_arrive_while_the_call_is_open() {
    // An endless Count: its first messages must reach the client while the
    // call is still open (no buffering of the whole answer).
    let server = serve(RuntimeBuilder::new()).await;
    for http2 in [false, true] {
        let request = web(
            COUNT,
            BINARY,
            frame(&CountRequest {
                after: 0,
                up_to: 0,
                interval_ms: 20,
            }),
        );
        let mut body = open(server.addr, request, http2).await;
        let mut buf = bytes::BytesMut::new();
        let mut numbers = Vec::new();
        while numbers.len() < 3 {
            let chunk = tokio::time::timeout(TIMEOUT, body.frame())
                .await
                .expect("a chunk arrives in time")
                .expect("the stream is still open")
                .expect("the chunk reads");
            if let Ok(data) = chunk.into_data() {
                buf.extend_from_slice(&data);
            }
            for (flag, payload) in grpc_web::take_frames(&mut buf) {
                assert_eq!(flag, 0, "a message, not the end (HTTP/2: {http2})");
                numbers.push(CountResponse::decode(payload).expect("a number").number);
            }
        }
        assert_eq!(numbers, [1, 2, 3], "HTTP/2: {http2}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_mounted_service() {
    let server = serve(RuntimeBuilder::new()).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", SERVICE_NAME] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health Check of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "example.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_mounted_service_and_health() {
    let server = serve(RuntimeBuilder::new()).await;
    let channel = server.channel().await;

    let names = reflected_services(channel.clone()).await;
    assert_eq!(
        names,
        [
            SERVICE_NAME,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                SERVICE_NAME.into(),
            ),
        ),
    };
    let response = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1alpha answers")
        .into_inner()
        .next()
        .await
        .expect("a v1alpha response")
        .expect("an OK v1alpha response");
    match response.message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) => assert!(!files.file_descriptor_proto.is_empty()),
        other => panic!("v1alpha returns the file defining {SERVICE_NAME}, got {other:?}"),
    }
    server.shutdown().await;
}
