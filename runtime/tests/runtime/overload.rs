//! Load shedding, in-process: with `max_concurrent_calls(N)`, call N+1 is
//! refused at once with UNAVAILABLE naming the flag (in gRPC and gRPC-web
//! framing) while the N run on; server streams count only until they
//! start; health checks are never refused.

use std::time::{Duration, Instant};

use grpc_runtime::{RuntimeBuilder, configure_service};
use testkit::{
    echo::{
        Echo, EchoServiceServer,
        pb::{CountRequest, EchoRequest},
    },
    grpc_web::frame,
    raw::RawRequest,
};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tower::ServiceExt as _;

use crate::common::{Arrivals, COUNT, ECHO, arrived, grpc, send, web};

const LIMIT: usize = 2;

fn slow(delay_ms: u32) -> bytes::Bytes {
    frame(&EchoRequest {
        message: "slow".into(),
        delay_ms,
    })
}

#[tokio::test]
async fn a_call_beyond_the_limit_is_refused_at_once_with_unavailable() {
    testkit::init_logging();
    let builder = RuntimeBuilder::new().max_concurrent_calls(LIMIT);
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    let (echo, arrivals) = Arrivals::new(echo);
    let app = builder.add_service(echo).into_service().await.unwrap();

    // LIMIT slow calls in flight…
    let mut slow_calls = Vec::new();
    for _ in 0..LIMIT {
        let app = app.clone();
        slow_calls.push(tokio::spawn(async move {
            send(&app, grpc(ECHO, slow(1_500))).await
        }));
    }
    arrived(&arrivals, LIMIT as u32).await;

    // …so one more is refused at once, in either protocol.
    let refusals: [(&str, RawRequest); 2] = [
        ("gRPC", grpc(ECHO, slow(0))),
        ("gRPC-web", web(ECHO, "application/grpc-web+proto", slow(0))),
    ];
    for (protocol, request) in refusals {
        let started = Instant::now();
        let reply = send(&app, request).await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{protocol}: refused fast, not queued: {:?}",
            started.elapsed()
        );
        assert_eq!(
            reply.grpc_code(),
            Some(Code::Unavailable),
            "{protocol}: {reply:?}"
        );
        let message = reply.grpc_meta("grpc-message").unwrap_or_default();
        assert!(
            message.contains("--max-concurrent-calls"),
            "{protocol}: the message names the flag: {message:?}"
        );
    }

    // Health checks are answered all the same.
    let check = HealthCheckRequest {
        service: String::new(),
    };
    let reply = send(&app, grpc("/grpc.health.v1.Health/Check", frame(&check))).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");

    // The admitted calls were not disturbed, and their places free again.
    for call in slow_calls {
        let reply = call.await.unwrap();
        assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    }
    let reply = send(&app, grpc(ECHO, slow(0))).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
}

#[tokio::test]
async fn server_streams_count_only_until_they_start() {
    let app = crate::common::app(RuntimeBuilder::new().max_concurrent_calls(LIMIT)).await;
    let endless = frame(&CountRequest {
        after: 0,
        up_to: 0,
        interval_ms: 60_000,
    });
    // Twice the limit of streams open at once, each with its headers…
    let mut streams = Vec::new();
    for _ in 0..LIMIT * 2 {
        let response = tokio::time::timeout(
            testkit::TIMEOUT,
            app.clone().oneshot(grpc(COUNT, endless.clone())),
        )
        .await
        .expect("the stream starts in time")
        .unwrap();
        assert_eq!(
            response.headers().get("grpc-status"),
            None,
            "a stream, not a refusal: {:?}",
            response.headers()
        );
        streams.push(response);
    }
    // …and unary calls still get through beside them.
    let reply = send(&app, grpc(ECHO, slow(0))).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    drop(streams);
}
