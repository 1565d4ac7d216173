//! `x-request-id` on every answer: generated when the request has none,
//! echoed when it has one, on gRPC, plain HTTP, 415 and CORS preflights.

use std::collections::HashSet;

use grpc_runtime::RuntimeBuilder;
use http_body_util::Full;
use testkit::{echo::pb::EchoRequest, grpc_web::frame};

use crate::common::{ECHO, app, grpc, send, web};

/// One request of each kind the port answers.
fn requests() -> Vec<(&'static str, http::Request<Full<bytes::Bytes>>)> {
    let hello = frame(&EchoRequest {
        message: "hi".into(),
        delay_ms: 0,
    });
    vec![
        ("gRPC", grpc(ECHO, hello.clone())),
        (
            "gRPC-web",
            web(ECHO, "application/grpc-web+proto", hello.clone()),
        ),
        (
            "gRPC-web unknown method",
            web(
                "/example.v1.EchoService/Nope",
                "application/grpc-web+proto",
                hello.clone(),
            ),
        ),
        (
            "415",
            http::Request::post(ECHO)
                .header("content-type", "application/json")
                .body(Full::new(hello))
                .unwrap(),
        ),
        (
            "GET /healthz",
            http::Request::get("/healthz")
                .body(Full::default())
                .unwrap(),
        ),
        (
            "404",
            http::Request::get("/nothing")
                .body(Full::default())
                .unwrap(),
        ),
        (
            "preflight",
            http::Request::options(ECHO)
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .body(Full::default())
                .unwrap(),
        ),
        (
            "refused preflight",
            http::Request::options(ECHO)
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "POST")
                .body(Full::default())
                .unwrap(),
        ),
    ]
}

#[tokio::test]
async fn every_answer_gets_a_fresh_request_id_when_none_is_sent() {
    let app = app(RuntimeBuilder::new().allow_origins(vec!["https://app.example".into()])).await;
    let mut seen = HashSet::new();
    for (what, request) in requests() {
        let reply = send(&app, request).await;
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{what}: an x-request-id: {reply:?}"));
        // A UUID, as tower-http's MakeRequestUuid makes them.
        assert_eq!(id.len(), 36, "{what}: {id}");
        assert_eq!(id.matches('-').count(), 4, "{what}: {id}");
        assert!(seen.insert(id.to_owned()), "{what}: {id} was used before");
    }
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_comes_back() {
    let app = app(RuntimeBuilder::new().allow_origins(vec!["https://app.example".into()])).await;
    for (i, (what, mut request)) in requests().into_iter().enumerate() {
        let id = format!("client-chosen-{i}");
        request
            .headers_mut()
            .insert("x-request-id", id.parse().unwrap());
        let reply = send(&app, request).await;
        assert_eq!(reply.header("x-request-id"), Some(id.as_str()), "{what}");
    }
}
