//! The request message size limit (`--max-message-bytes`, default 4 MiB):
//! over the limit is RESOURCE_EXHAUSTED over native gRPC and gRPC-web,
//! nothing is stored, at the limit works, and the server stays healthy.

use std::io::Write as _;

use bytes::{BufMut, BytesMut};
use prost::Message as _;
use proto::v1 as pb;
use tonic::{Code, codec::CompressionEncoding};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use testkit::{
    TIMEOUT,
    article::{ALICE, TestServer, create},
    authed,
    grpc_web::{self, frame, web_request, web_text},
    raw::{self, RawReply},
};

const LIMIT: usize = 1024;
const CREATE_PATH: &str = "/article.v1.ArticleService/CreateArticle";

/// A CreateArticleRequest whose encoding is exactly `size` bytes.
fn request_of_size(size: usize) -> pb::CreateArticleRequest {
    let mut request = create("sized", "", &[]);
    let overhead = request.encoded_len() + 3; // tag + up to a 3-byte length varint
    request.content = "x".repeat(size.saturating_sub(overhead));
    while request.encoded_len() < size {
        request.content.push('x');
    }
    while request.encoded_len() > size {
        request.content.pop();
    }
    assert_eq!(
        request.encoded_len(),
        size,
        "could not build a request of {size} bytes"
    );
    request
}

async fn total_count(server: &TestServer) -> i64 {
    server
        .client()
        .await
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles succeeds")
        .into_inner()
        .total_count
}

async fn assert_healthy(server: &TestServer) {
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check succeeds")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    total_count(server).await;
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted_over_native_grpc() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    let mut client = server.client().await;
    let status = client
        .create_article(authed(ALICE, create("too big", &"x".repeat(2000), &[])))
        .await
        .expect_err("a message over the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(total_count(&server).await, 0, "nothing is stored");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted_over_grpc_web() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    let message = frame(&create("too big", &"x".repeat(2000), &[]));
    for (content_type, body) in [
        ("application/grpc-web+proto", message.clone()),
        ("application/grpc-web-text", web_text(&message)),
    ] {
        let mut request = web_request(CREATE_PATH, content_type, body);
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {ALICE}").parse().expect("header value"),
        );
        let reply = raw::http1(server.addr, request).await;
        assert_eq!(
            reply.status,
            http::StatusCode::OK,
            "{content_type}: {reply:?}"
        );
        assert_eq!(
            reply.grpc_code(),
            Some(Code::ResourceExhausted),
            "{content_type}: {reply:?}"
        );
    }
    assert_eq!(total_count(&server).await, 0, "nothing is stored");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn message_at_the_limit_is_accepted_and_one_byte_more_is_not() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    let mut client = server.client().await;

    let created = client
        .create_article(authed(ALICE, request_of_size(LIMIT)))
        .await
        .expect("a message of exactly the limit is accepted")
        .into_inner()
        .article
        .expect("article in response");
    assert_eq!(created.title, "sized");

    client
        .create_article(authed(ALICE, request_of_size(LIMIT - 100)))
        .await
        .expect("a message below the limit is accepted");

    let status = client
        .create_article(authed(ALICE, request_of_size(LIMIT + 1)))
        .await
        .expect_err("one byte over the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        total_count(&server).await,
        2,
        "only the two accepted articles are stored"
    );
}

#[tokio::test]
async fn message_at_the_limit_is_accepted_over_grpc_web() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    let mut request = web_request(
        CREATE_PATH,
        "application/grpc-web+proto",
        frame(&request_of_size(LIMIT)),
    );
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ALICE}").parse().expect("header value"),
    );
    let reply = raw::http1(server.addr, request).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    assert_eq!(total_count(&server).await, 1);
}

#[tokio::test]
async fn gzip_message_over_the_limit_once_decompressed_is_resource_exhausted() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    // 2000 identical bytes compress far below the limit.
    let message = create("too big", &"x".repeat(2000), &[]).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&message).expect("gzip writes");
    let compressed = gz.finish().expect("gzip finishes");
    assert!(
        compressed.len() < LIMIT,
        "the compressed frame itself is under the limit"
    );
    let mut body = BytesMut::new();
    body.put_u8(1);
    body.put_u32(compressed.len() as u32);
    body.put_slice(&compressed);

    let mut request = web_request(CREATE_PATH, "application/grpc-web+proto", body.freeze());
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ALICE}").parse().expect("header value"),
    );
    request
        .headers_mut()
        .insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
    let reply = raw::http1(server.addr, request).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "{reply:?}"
    );

    let status = server
        .client()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .create_article(authed(ALICE, create("too big", &"x".repeat(2000), &[])))
        .await
        .expect_err("a compressed message over the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(total_count(&server).await, 0, "nothing is stored");
    assert_healthy(&server).await;
}

/// The documented default of `--max-message-bytes`.
const DEFAULT_LIMIT: usize = 4 * 1024 * 1024;

/// CreateArticle of exactly `size` bytes over gRPC-web (binary), as alice.
async fn web_create_of_size(server: &TestServer, size: usize) -> RawReply {
    let mut request = web_request(CREATE_PATH, grpc_web::BINARY, frame(&request_of_size(size)));
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ALICE}").parse().expect("header value"),
    );
    raw::http1(server.addr, request).await
}

#[tokio::test]
async fn default_limit_is_4_mib_exactly() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    // Exactly 4 MiB passes the size check: the message is decoded and
    // reaches validation, which refuses its content (at most 100,000 bytes).
    let at_limit = tokio::time::timeout(
        TIMEOUT,
        client.create_article(authed(ALICE, request_of_size(DEFAULT_LIMIT))),
    )
    .await
    .expect("the call ends in time")
    .expect_err("4 MiB of content is invalid");
    assert_eq!(at_limit.code(), Code::InvalidArgument, "{at_limit:?}");
    assert!(
        at_limit.message().contains("content"),
        "validation, not the size check, refused it: {at_limit:?}"
    );
    let reply = web_create_of_size(&server, DEFAULT_LIMIT).await;
    assert_eq!(reply.grpc_code(), Some(Code::InvalidArgument), "{reply:?}");

    // One byte more does not pass it.
    let over = tokio::time::timeout(
        TIMEOUT,
        client.create_article(authed(ALICE, request_of_size(DEFAULT_LIMIT + 1))),
    )
    .await
    .expect("the call ends in time")
    .expect_err("4 MiB + 1 is over the limit");
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    let reply = web_create_of_size(&server, DEFAULT_LIMIT + 1).await;
    assert_eq!(
        reply.grpc_code(),
        Some(Code::ResourceExhausted),
        "{reply:?}"
    );

    assert_eq!(total_count(&server).await, 0, "nothing is stored");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn server_serves_other_calls_after_refusing_oversized_messages() {
    let server = TestServer::start_with(|s| s.runtime.max_message_bytes = LIMIT).await;
    let mut client = server.client().await;
    for _ in 0..3 {
        let status = client
            .create_article(authed(ALICE, create("too big", &"x".repeat(4000), &[])))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
    // The same connection keeps working.
    client
        .create_article(authed(ALICE, create("fits", "small", &[])))
        .await
        .expect("a small message on the same connection succeeds");
    let reply = raw::http1(
        server.addr,
        web_request(
            "/article.v1.ArticleService/ListArticles",
            "application/grpc-web+proto",
            frame(&pb::ListArticlesRequest::default()),
        ),
    )
    .await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok));
    let list: pb::ListArticlesResponse = reply.web_body().message(0);
    assert_eq!(list.total_count, 1);
    assert_healthy(&server).await;
}
