//! One port, three answers, chosen by content type: gRPC in its own
//! framing, 415 for a gRPC path with another content type, plain HTTP for
//! the rest. An unknown method is UNIMPLEMENTED, never the web app.

use grpc_runtime::RuntimeBuilder;
use testkit::{
    echo::pb::{EchoRequest, EchoResponse},
    grpc_web::frame,
};
use tonic::Code;

use crate::common::{ECHO, app, grpc, send, text, web};

fn hello() -> bytes::Bytes {
    frame(&EchoRequest {
        message: "hello".into(),
        delay_ms: 0,
    })
}

/// A static app directory whose index page is recognisable.
fn static_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), "<p>the web app</p>").expect("index.html");
    dir
}

#[tokio::test]
async fn every_grpc_content_type_reaches_the_service_in_its_own_framing() {
    let app = app(RuntimeBuilder::new()).await;

    for content_type in ["application/grpc", "application/grpc+proto"] {
        let mut request = grpc(ECHO, hello());
        request
            .headers_mut()
            .insert("content-type", http::HeaderValue::from_static(content_type));
        let reply = send(&app, request).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{content_type}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/grpc")
                    && !ct.starts_with("application/grpc-web")),
            "{content_type}: native gRPC answer, got {:?}",
            reply.header("content-type")
        );
        assert_eq!(
            reply.trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..]),
            "{content_type}: status in HTTP trailers"
        );
        let body = reply.web_body();
        assert!(
            body.trailers.is_empty(),
            "{content_type}: no trailers frame"
        );
        assert_eq!(body.messages.len(), 1, "{content_type}");
        assert_eq!(body.message::<EchoResponse>(0).message, "hello");
    }

    for (content_type, answer) in [
        ("application/grpc-web", "application/grpc-web+proto"),
        ("application/grpc-web+proto", "application/grpc-web+proto"),
        (
            "application/grpc-web-text",
            "application/grpc-web-text+proto",
        ),
        (
            "application/grpc-web-text+proto",
            "application/grpc-web-text+proto",
        ),
    ] {
        let reply = send(&app, web(ECHO, content_type, hello())).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{content_type}");
        assert_eq!(reply.header("content-type"), Some(answer), "{content_type}");
        assert!(
            reply.trailers.is_empty(),
            "{content_type}: no HTTP trailers"
        );
        let body = reply.web_body();
        assert_eq!(
            body.trailer("grpc-status"),
            Some("0"),
            "{content_type}: the status in the trailers frame: {body:?}"
        );
        assert_eq!(body.messages.len(), 1, "{content_type}");
        assert_eq!(body.message::<EchoResponse>(0).message, "hello");
    }
}

#[tokio::test]
async fn unknown_service_or_method_is_a_grpc_web_unimplemented_not_the_web_app() {
    let site = static_app();
    let app = app(RuntimeBuilder::new().static_dir(Some(site.path().into()))).await;
    for path in [
        "/example.v1.EchoService/NoSuchMethod",
        "/example.v1.NoSuchService/Echo",
    ] {
        for content_type in ["application/grpc-web+proto", "application/grpc-web-text"] {
            let reply = send(&app, web(path, content_type, hello())).await;
            let what = format!("{path} {content_type}");
            assert!(
                !text(&reply).contains("the web app"),
                "{what}: not index.html"
            );
            assert_eq!(reply.status, http::StatusCode::OK, "{what}");
            assert!(
                reply
                    .header("content-type")
                    .is_some_and(|ct| ct.starts_with(content_type)),
                "{what}: {:?}",
                reply.header("content-type")
            );
            // A trailers-only answer, as the gRPC-web protocol allows: the
            // status in the headers, no frames.
            assert_eq!(reply.header("grpc-status"), Some("12"), "{what}: {reply:?}");
            assert!(reply.body.is_empty(), "{what}: {reply:?}");
            assert_eq!(reply.grpc_code(), Some(Code::Unimplemented));
        }
    }
}

#[tokio::test]
async fn unknown_method_over_native_grpc_is_unimplemented() {
    let site = static_app();
    let app = app(RuntimeBuilder::new().static_dir(Some(site.path().into()))).await;
    let reply = send(&app, grpc("/example.v1.EchoService/NoSuchMethod", hello())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.grpc_code(), Some(Code::Unimplemented), "{reply:?}");
    assert!(!text(&reply).contains("the web app"));
}

#[tokio::test]
async fn a_grpc_path_with_another_content_type_is_415_naming_the_grpc_types() {
    let app = app(RuntimeBuilder::new()).await;
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let mut request = http::Request::post(ECHO);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let reply = send(&app, request.body(hello().into()).unwrap()).await;
        assert_eq!(
            reply.status,
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let accept = reply.header("accept").expect("415 names what is accepted");
        for wanted in [
            "application/grpc",
            "application/grpc-web+proto",
            "application/grpc-web-text",
        ] {
            assert!(accept.contains(wanted), "accept {accept:?} lacks {wanted}");
        }
    }
}

#[tokio::test]
async fn other_requests_are_plain_http_the_web_app_or_404() {
    let site = static_app();
    let with_app = app(RuntimeBuilder::new().static_dir(Some(site.path().into()))).await;
    let without = app(RuntimeBuilder::new()).await;
    for (method, path) in [
        (http::Method::GET, ECHO),
        (http::Method::GET, "/articles/42"),
        (http::Method::POST, "/upload"),
    ] {
        let request = || {
            http::Request::builder()
                .method(method.clone())
                .uri(path)
                .body(Default::default())
                .unwrap()
        };
        let reply = send(&without, request()).await;
        assert_eq!(reply.status, http::StatusCode::NOT_FOUND, "{method} {path}");
        let reply = send(&with_app, request()).await;
        if method == http::Method::GET {
            assert_eq!(reply.status, http::StatusCode::OK, "{method} {path}");
            assert_eq!(text(&reply), "<p>the web app</p>", "{method} {path}");
        } else {
            assert!(
                !reply.status.is_success()
                    && reply.status != http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path}: not served as a page nor as gRPC: {}",
                reply.status
            );
        }
    }
}
