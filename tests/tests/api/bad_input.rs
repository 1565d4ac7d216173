//! Malformed requests (truncated frames, absurd length prefixes, invalid
//! base64, wrong content types, garbage protobuf, stalled uploads) get a
//! clean error in bounded time, and the server keeps serving others.

use bytes::{BufMut, Bytes, BytesMut};
use proto::v1 as pb;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

use testkit::{
    TIMEOUT,
    article::{TestServer, create_as_alice},
    grpc_web::{frame, web_request, web_text},
    raw::{self, RawReply},
};

const LIST_PATH: &str = "/article.v1.ArticleService/ListArticles";
const WEB: &str = "application/grpc-web+proto";
const WEB_TEXT: &str = "application/grpc-web-text";

/// A frame header announcing `len` bytes followed by `payload`.
fn raw_frame(flag: u8, len: u32, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(flag);
    buf.put_u32(len);
    buf.put_slice(payload);
    buf.freeze()
}

/// A clean refusal: a 4xx answer, or a well-formed gRPC(-web) response
/// whose status is not OK. Returns the gRPC code when there is one.
fn assert_clean_error(reply: &RawReply, what: &str) -> Option<Code> {
    if reply.status.is_client_error() {
        return None;
    }
    assert_eq!(
        reply.status,
        http::StatusCode::OK,
        "{what}: a gRPC error (HTTP 200) or a 4xx, got {reply:?}"
    );
    let code = reply
        .grpc_code()
        .unwrap_or_else(|| panic!("{what}: the response carries a grpc-status: {reply:?}"));
    assert_ne!(code, Code::Ok, "{what}: must not succeed: {reply:?}");
    Some(code)
}

/// The server still answers a normal ListArticles (native and gRPC-web),
/// seeing the `expected` articles.
async fn assert_still_serving(server: &TestServer, expected: i64) {
    let list = tokio::time::timeout(
        TIMEOUT,
        server
            .client()
            .await
            .list_articles(pb::ListArticlesRequest::default()),
    )
    .await
    .expect("native ListArticles answers in time")
    .expect("native ListArticles succeeds")
    .into_inner();
    assert_eq!(list.total_count, expected);

    let reply = raw::http1(
        server.addr,
        web_request(LIST_PATH, WEB, frame(&pb::ListArticlesRequest::default())),
    )
    .await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    let list: pb::ListArticlesResponse = reply.web_body().message(0);
    assert_eq!(list.total_count, expected);
}

async fn server_with_one_article() -> TestServer {
    let server = TestServer::start().await;
    create_as_alice(&mut server.client().await, "existing", &[]).await;
    server
}

#[tokio::test]
async fn truncated_frame_gets_a_clean_error() {
    let server = server_with_one_article().await;
    // The header announces 100 bytes; only 10 follow, then the body ends.
    let body = raw_frame(0, 100, &[0x0a; 10]);
    let reply = raw::http1(server.addr, web_request(LIST_PATH, WEB, body.clone())).await;
    assert_clean_error(&reply, "gRPC-web, truncated frame");
    let reply = raw::http1(
        server.addr,
        web_request(LIST_PATH, WEB_TEXT, web_text(&body)),
    )
    .await;
    assert_clean_error(&reply, "gRPC-web-text, truncated frame");
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn truncated_frame_header_gets_a_clean_error() {
    let server = server_with_one_article().await;
    let reply = raw::http1(
        server.addr,
        web_request(LIST_PATH, WEB, Bytes::from_static(&[0, 0, 0])),
    )
    .await;
    assert_clean_error(&reply, "three bytes of a frame header");
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn truncated_frame_over_native_grpc_gets_a_clean_error() {
    let server = server_with_one_article().await;
    let mut request = web_request(LIST_PATH, "application/grpc", raw_frame(0, 100, &[0; 10]));
    request.headers_mut().remove("x-grpc-web");
    request
        .headers_mut()
        .insert("te", http::HeaderValue::from_static("trailers"));
    let reply = raw::h2c(server.addr, request).await;
    assert_eq!(reply.status, http::StatusCode::OK, "{reply:?}");
    let code = reply.grpc_code();
    assert!(
        matches!(code, Some(c) if c != Code::Ok),
        "a non-OK grpc-status: {reply:?}"
    );
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn length_prefix_of_0xffffffff_is_resource_exhausted() {
    let server = server_with_one_article().await;
    let body = raw_frame(0, u32::MAX, &[]);
    let reply = raw::http1(server.addr, web_request(LIST_PATH, WEB, body.clone())).await;
    assert_eq!(
        assert_clean_error(&reply, "gRPC-web, 0xFFFFFFFF prefix"),
        Some(Code::ResourceExhausted)
    );
    let reply = raw::http1(
        server.addr,
        web_request(LIST_PATH, WEB_TEXT, web_text(&body)),
    )
    .await;
    assert_eq!(
        assert_clean_error(&reply, "gRPC-web-text, 0xFFFFFFFF prefix"),
        Some(Code::ResourceExhausted)
    );
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn length_prefix_of_0xffffffff_is_answered_before_the_body_ends() {
    let server = server_with_one_article().await;
    let mut socket = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("TCP connect");
    // Claims a 4 GiB body and sends only the frame header, keeping the socket open.
    let head = format!(
        "POST {LIST_PATH} HTTP/1.1\r\nhost: {}\r\ncontent-type: {WEB}\r\nx-grpc-web: 1\r\n\
         content-length: 4294967300\r\n\r\n",
        server.addr
    );
    socket
        .write_all(head.as_bytes())
        .await
        .expect("headers are sent");
    socket
        .write_all(&raw_frame(0, u32::MAX, &[]))
        .await
        .expect("frame header is sent");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = socket.read(&mut buf).await.expect("socket reads");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 || text.contains("grpc-status") {
                break;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("the server answers without waiting for 4 GiB");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 200"),
        "a gRPC-web answer: {text}"
    );
    assert!(
        text.contains("grpc-status: 8") || text.contains("grpc-status:8"),
        "RESOURCE_EXHAUSTED (8): {text}"
    );
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn invalid_base64_in_grpc_web_text_gets_a_clean_error() {
    let server = server_with_one_article().await;
    for body in [
        &b"!!!! this is not base64 ####"[..],
        &b"AAAA*AAA"[..],
        &b"AAAAB"[..],
    ] {
        let reply = raw::http1(
            server.addr,
            web_request(LIST_PATH, WEB_TEXT, Bytes::copy_from_slice(body)),
        )
        .await;
        assert_clean_error(&reply, &format!("invalid base64 {body:?}"));
    }
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = server_with_one_article().await;
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(LIST_PATH)
        .header("content-type", "text/plain")
        .body(http_body_util::Full::new(Bytes::from_static(b"hello")))
        .expect("valid request");
    let reply = raw::http1(server.addr, request).await;
    assert_eq!(
        reply.status,
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{reply:?}"
    );
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn garbage_protobuf_gets_a_clean_error() {
    let server = server_with_one_article().await;
    // 0xff... is not a valid protobuf tag/varint sequence.
    let garbage = [0xff_u8; 16];
    let body = raw_frame(0, garbage.len() as u32, &garbage);
    let reply = raw::http1(server.addr, web_request(LIST_PATH, WEB, body.clone())).await;
    assert_clean_error(&reply, "gRPC-web, garbage protobuf");
    let reply = raw::http1(
        server.addr,
        web_request(LIST_PATH, WEB_TEXT, web_text(&body)),
    )
    .await;
    assert_clean_error(&reply, "gRPC-web-text, garbage protobuf");
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn compressed_flag_without_grpc_encoding_gets_a_clean_error() {
    let server = server_with_one_article().await;
    let message = frame(&pb::ListArticlesRequest::default());
    let body = raw_frame(1, (message.len() - 5) as u32, &message[5..]);
    let reply = raw::http1(server.addr, web_request(LIST_PATH, WEB, body)).await;
    assert_clean_error(&reply, "compression flag without grpc-encoding");
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn empty_body_for_a_unary_call_gets_a_clean_error() {
    let server = server_with_one_article().await;
    let reply = raw::http1(server.addr, web_request(LIST_PATH, WEB, Bytes::new())).await;
    assert_clean_error(&reply, "no request message");
    assert_still_serving(&server, 1).await;
}

#[tokio::test]
async fn stalled_half_sent_request_does_not_block_others() {
    let server = server_with_one_article().await;
    // Several sockets each send headers promising 1000 bytes and only 10,
    // then stay open.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut socket = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("TCP connect");
        let head = format!(
            "POST {LIST_PATH} HTTP/1.1\r\nhost: {}\r\ncontent-type: {WEB}\r\nx-grpc-web: 1\r\n\
             content-length: 1000\r\n\r\n",
            server.addr
        );
        socket
            .write_all(head.as_bytes())
            .await
            .expect("headers are sent");
        socket
            .write_all(&raw_frame(0, 995, &[0x1a; 5]))
            .await
            .expect("10 body bytes are sent");
        socket.flush().await.expect("flushed");
        stalled.push(socket);
    }

    // Other calls, native and gRPC-web, complete meanwhile.
    let native = async {
        let list = server
            .client()
            .await
            .list_articles(pb::ListArticlesRequest::default())
            .await
            .expect("native ListArticles succeeds")
            .into_inner();
        assert_eq!(list.total_count, 1);
    };
    tokio::time::timeout(TIMEOUT, native)
        .await
        .expect("a native call completes while requests are stalled");
    assert_still_serving(&server, 1).await;
    let created = tokio::time::timeout(
        TIMEOUT,
        create_as_alice(&mut server.client().await, "written meanwhile", &[]),
    )
    .await
    .expect("a write completes while requests are stalled");
    assert_eq!(created.title, "written meanwhile");

    // The stalled requests are still open and unanswered.
    for socket in &stalled {
        let mut buf = [0u8; 64];
        match socket.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the stalled request is still pending, got {other:?}"),
        }
    }
    drop(stalled);
    assert_still_serving(&server, 2).await;
}
