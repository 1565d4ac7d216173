//! CORS for browser gRPC-web calls: preflight answers, exposed response
//! headers, the `--allow-origin` list, and refusal of other origins.

use bytes::Bytes;
use http_body_util::Full;
use proto::v1 as pb;

use testkit::{
    article::TestServer,
    grpc_web::{frame, web_request},
    raw::{self, RawReply},
};

const LIST_PATH: &str = "/article.v1.ArticleService/ListArticles";

/// Headers the gRPC-web browser clients send, as the spec lists them.
const REQUEST_HEADERS: [&str; 6] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "x-request-id",
];

/// Response headers a browser script must be able to read: the gRPC
/// status, the request id, and where a watch's live delivery starts (the
/// web app resumes from it).
const EXPOSED_HEADERS: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    proto::WATCH_SEQUENCE_HEADER,
];

async fn preflight(server: &TestServer, origin: &str) -> RawReply {
    let request = http::Request::builder()
        .method(http::Method::OPTIONS)
        .uri(LIST_PATH)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", REQUEST_HEADERS.join(","))
        .body(Full::new(Bytes::new()))
        .expect("valid preflight request");
    raw::http1(server.addr, request).await
}

async fn list_call(server: &TestServer, origin: &str) -> RawReply {
    let mut request = web_request(
        LIST_PATH,
        "application/grpc-web+proto",
        frame(&pb::ListArticlesRequest::default()),
    );
    request.headers_mut().insert(
        "origin",
        origin.parse().expect("origin is a valid header value"),
    );
    raw::http1(server.addr, request).await
}

/// The comma-separated values of `name`, lower-cased (all occurrences).
fn list_header(reply: &RawReply, name: &str) -> Vec<String> {
    reply
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

fn cors_headers(reply: &RawReply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn assert_preflight_allows_grpc_web(reply: &RawReply) {
    assert!(
        reply.status.is_success(),
        "preflight is answered with 2xx, got {} {:?}",
        reply.status,
        reply.headers
    );
    let methods = list_header(reply, "access-control-allow-methods");
    assert!(
        methods.iter().any(|m| m == "post") || methods.iter().any(|m| m == "*"),
        "POST allowed: {methods:?}"
    );
    let allowed = list_header(reply, "access-control-allow-headers");
    for header in REQUEST_HEADERS {
        assert!(
            allowed.iter().any(|h| h == header),
            "header {header} allowed by the preflight: {allowed:?}"
        );
    }
}

#[tokio::test]
async fn preflight_from_any_origin_allows_grpc_web_headers_without_credentials() {
    let server = TestServer::start().await;
    let reply = preflight(&server, "https://anywhere.example").await;
    assert_preflight_allows_grpc_web(&reply);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        None,
        "no credentials when any origin is allowed"
    );
}

#[tokio::test]
async fn grpc_web_response_to_any_origin_exposes_grpc_headers() {
    let server = TestServer::start().await;
    let reply = list_call(&server, "https://anywhere.example").await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.grpc_code(), Some(tonic::Code::Ok));
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    let exposed = list_header(&reply, "access-control-expose-headers");
    for header in EXPOSED_HEADERS {
        assert!(
            exposed.iter().any(|h| h == header),
            "{header} exposed: {exposed:?}"
        );
    }
}

#[tokio::test]
async fn configured_origin_is_echoed_on_preflight_and_call() {
    let server =
        TestServer::start_with(|s| s.runtime.allow_origins = vec!["https://good.example".into()])
            .await;

    let reply = preflight(&server, "https://good.example").await;
    assert_preflight_allows_grpc_web(&reply);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://good.example")
    );

    let reply = list_call(&server, "https://good.example").await;
    assert_eq!(reply.grpc_code(), Some(tonic::Code::Ok));
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://good.example")
    );
    let exposed = list_header(&reply, "access-control-expose-headers");
    for header in EXPOSED_HEADERS {
        assert!(
            exposed.iter().any(|h| h == header),
            "{header} exposed: {exposed:?}"
        );
    }
}

#[tokio::test]
async fn disallowed_origin_is_not_granted_access() {
    let server =
        TestServer::start_with(|s| s.runtime.allow_origins = vec!["https://good.example".into()])
            .await;

    let reply = preflight(&server, "https://evil.example").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "preflight from a disallowed origin: {:?}",
        reply.headers
    );
    assert_eq!(reply.header("access-control-allow-credentials"), None);

    let reply = list_call(&server, "https://evil.example").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "call from a disallowed origin: {:?}",
        reply.headers
    );
}

#[tokio::test]
async fn disallowed_origin_gets_no_cors_headers_at_all() {
    let server =
        TestServer::start_with(|s| s.runtime.allow_origins = vec!["https://good.example".into()])
            .await;

    let reply = preflight(&server, "https://evil.example").await;
    assert_eq!(
        cors_headers(&reply),
        Vec::<String>::new(),
        "preflight from a disallowed origin carries no CORS headers"
    );

    let reply = list_call(&server, "https://evil.example").await;
    assert_eq!(
        cors_headers(&reply),
        Vec::<String>::new(),
        "call from a disallowed origin carries no CORS headers"
    );
}
