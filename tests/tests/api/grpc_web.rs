//! gRPC-web on the wire: hand-framed binary and text requests over HTTP/1.1
//! and HTTP/2 (unary, server streaming, errors with details), tonic-web's
//! client layer, x-request-id, UNIMPLEMENTED for unknown methods beside the
//! static web app, /metrics, and gzip in both directions.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt as _;
use prost::Message as _;
use proto::v1::{self as pb, article_event::Event, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, codec::CompressionEncoding};

use testkit::{
    TIMEOUT,
    article::{ALICE, TestServer, create, create_as_alice},
    authed,
    grpc_web::{
        BASE64_ANY_PAD, TRAILER_FLAG, decode_web_text, frame, parse_trailers, web_request, web_text,
    },
    prometheus,
    raw::{self, RawReply},
    wait_for,
};

const SERVICE: &str = "/article.v1.ArticleService";

/// The two gRPC-web encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Binary,
    Text,
}

const MODES: [Mode; 2] = [Mode::Binary, Mode::Text];

impl Mode {
    fn content_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text",
        }
    }

    fn body(self, frames: Bytes) -> Bytes {
        match self {
            Mode::Binary => frames,
            Mode::Text => web_text(&frames),
        }
    }

    /// A gRPC-web request of `message` to `method` of ArticleService.
    fn request(
        self,
        method: &str,
        message: &impl prost::Message,
    ) -> http::Request<http_body_util::Full<Bytes>> {
        web_request(
            &format!("{SERVICE}/{method}"),
            self.content_type(),
            self.body(frame(message)),
        )
    }
}

fn with_header(
    mut request: http::Request<http_body_util::Full<Bytes>>,
    name: &'static str,
    value: &str,
) -> http::Request<http_body_util::Full<Bytes>> {
    request
        .headers_mut()
        .insert(name, value.parse().expect("valid header value"));
    request
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a successful gRPC-web answer in `mode` and decodes its single message.
fn ok_message<M: prost::Message + Default>(reply: &RawReply, mode: Mode) -> M {
    assert_eq!(reply.status, http::StatusCode::OK, "{mode:?}: {reply:?}");
    let content_type = reply.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with(mode.content_type()),
        "{mode:?}: response content type {content_type:?}"
    );
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{mode:?}: {reply:?}");
    let body = reply.web_body();
    assert_eq!(body.messages.len(), 1, "{mode:?}: one message: {body:?}");
    assert_eq!(
        body.trailer("grpc-status"),
        Some("0"),
        "{mode:?}: a trailers frame ends a successful body"
    );
    body.message(0)
}

/// Decodes `grpc-status-details-bin` (base64, padded or not) into
/// `google.rpc.Status` and returns its BadRequest detail.
fn bad_request_details(reply: &RawReply) -> tonic_types::pb::BadRequest {
    let raw = reply
        .grpc_meta("grpc-status-details-bin")
        .unwrap_or_else(|| panic!("grpc-status-details-bin present: {reply:?}"));
    let bytes = BASE64_ANY_PAD
        .decode(raw.trim())
        .expect("grpc-status-details-bin is base64");
    let status = tonic_types::Status::decode(bytes.as_slice()).expect("google.rpc.Status decodes");
    assert_eq!(status.code, Code::InvalidArgument as i32);
    let any = status
        .details
        .iter()
        .find(|d| d.type_url == "type.googleapis.com/google.rpc.BadRequest")
        .unwrap_or_else(|| panic!("a BadRequest detail among {:?}", status.details));
    tonic_types::pb::BadRequest::decode(any.value.as_slice()).expect("BadRequest decodes")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip writes");
    encoder.finish().expect("gzip finishes")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn compressed_frame(message: &impl prost::Message) -> Bytes {
    let payload = gzip(&message.encode_to_vec());
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(1);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(&payload);
    buf.freeze()
}

// ---------------------------------------------------------------- unary

#[tokio::test]
async fn list_articles_over_http1_binary_and_text() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create_as_alice(&mut client, "first", &["rust"]).await;
    create_as_alice(&mut client, "second", &["web"]).await;

    for mode in MODES {
        let reply = raw::http1(
            server.addr,
            mode.request("ListArticles", &pb::ListArticlesRequest::default()),
        )
        .await;
        let list: pb::ListArticlesResponse = ok_message(&reply, mode);
        assert_eq!(list.total_count, 2, "{mode:?}");
        let titles: Vec<&str> = list.articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["second", "first"], "{mode:?}: newest first");

        let reply = raw::http1(
            server.addr,
            mode.request(
                "ListArticles",
                &pb::ListArticlesRequest {
                    tag: "rust".into(),
                    ..Default::default()
                },
            ),
        )
        .await;
        let list: pb::ListArticlesResponse = ok_message(&reply, mode);
        assert_eq!(list.total_count, 1, "{mode:?}: filtered by tag");
        assert_eq!(list.articles[0].title, "first");
    }
}

#[tokio::test]
async fn get_article_over_http1_binary_and_text() {
    let server = TestServer::start().await;
    let created = create_as_alice(&mut server.client().await, "readable", &["a", "b"]).await;

    for mode in MODES {
        let reply = raw::http1(
            server.addr,
            mode.request("GetArticle", &pb::GetArticleRequest { id: created.id }),
        )
        .await;
        let got: pb::GetArticleResponse = ok_message(&reply, mode);
        assert_eq!(got.article.as_ref(), Some(&created), "{mode:?}");
    }
}

#[tokio::test]
async fn create_article_over_http1_with_authorization() {
    let server = TestServer::start().await;
    for mode in MODES {
        let title = format!("written over {mode:?}");
        let request = with_header(
            mode.request("CreateArticle", &create(&title, "from a browser", &["web"])),
            "authorization",
            &bearer(ALICE),
        );
        let reply = raw::http1(server.addr, request).await;
        let created: pb::CreateArticleResponse = ok_message(&reply, mode);
        let article = created.article.expect("article in response");
        assert_eq!(article.title, title);
        assert_eq!(article.author, "alice");
        assert_eq!(article.version, 1);

        let stored = server
            .client()
            .await
            .get_article(pb::GetArticleRequest { id: article.id })
            .await
            .expect("the created article is readable natively")
            .into_inner()
            .article;
        assert_eq!(stored, Some(article));
    }
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn unknown_id_is_not_found_over_grpc_web() {
    let server = TestServer::start().await;
    for mode in MODES {
        let reply = raw::http1(
            server.addr,
            mode.request("GetArticle", &pb::GetArticleRequest { id: 4242 }),
        )
        .await;
        assert_eq!(reply.status, http::StatusCode::OK, "{mode:?}: {reply:?}");
        assert_eq!(
            reply.grpc_code(),
            Some(Code::NotFound),
            "{mode:?}: {reply:?}"
        );
        assert!(
            reply
                .grpc_meta("grpc-message")
                .is_some_and(|m| !m.is_empty()),
            "{mode:?}: a grpc-message explains the error: {reply:?}"
        );
    }
}

#[tokio::test]
async fn invalid_argument_over_grpc_web_carries_bad_request_details() {
    let server = TestServer::start().await;
    for mode in MODES {
        let request = with_header(
            mode.request("CreateArticle", &create("   ", "body", &["Not Valid"])),
            "authorization",
            &bearer(ALICE),
        );
        let reply = raw::http1(server.addr, request).await;
        assert_eq!(
            reply.grpc_code(),
            Some(Code::InvalidArgument),
            "{mode:?}: {reply:?}"
        );
        let details = bad_request_details(&reply);
        let fields: Vec<&str> = details
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert!(fields.contains(&"title"), "{mode:?}: {fields:?}");
        assert!(fields.contains(&"tags"), "{mode:?}: {fields:?}");
        assert!(
            details
                .field_violations
                .iter()
                .all(|v| !v.description.is_empty()),
            "{mode:?}: every violation is described: {details:?}"
        );
    }
    let list = server
        .client()
        .await
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("list succeeds")
        .into_inner();
    assert_eq!(list.total_count, 0, "nothing was stored");
}

#[tokio::test]
async fn writes_without_a_valid_token_are_unauthenticated_over_grpc_web() {
    let server = TestServer::start().await;
    for mode in MODES {
        let missing = mode.request("CreateArticle", &create("anonymous", "x", &[]));
        let reply = raw::http1(server.addr, missing).await;
        assert_eq!(
            reply.grpc_code(),
            Some(Code::Unauthenticated),
            "{mode:?}, no token: {reply:?}"
        );

        let wrong = with_header(
            mode.request("CreateArticle", &create("forged", "x", &[])),
            "authorization",
            &bearer("not-a-real-token-at-all"),
        );
        let reply = raw::http1(server.addr, wrong).await;
        assert_eq!(
            reply.grpc_code(),
            Some(Code::Unauthenticated),
            "{mode:?}, unknown token: {reply:?}"
        );
    }
    let list = server
        .client()
        .await
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("list succeeds")
        .into_inner();
    assert_eq!(list.total_count, 0, "nothing was written");
}

// ---------------------------------------------------------------- HTTP/2

#[tokio::test]
async fn grpc_web_over_http2_prior_knowledge() {
    let server = TestServer::start().await;
    let created = create_as_alice(&mut server.client().await, "over h2", &[]).await;
    for mode in MODES {
        let reply = raw::h2c(
            server.addr,
            mode.request("ListArticles", &pb::ListArticlesRequest::default()),
        )
        .await;
        let list: pb::ListArticlesResponse = ok_message(&reply, mode);
        assert_eq!(list.articles, vec![created.clone()], "{mode:?}");

        let reply = raw::h2c(
            server.addr,
            mode.request("GetArticle", &pb::GetArticleRequest { id: 999 }),
        )
        .await;
        assert_eq!(
            reply.grpc_code(),
            Some(Code::NotFound),
            "{mode:?}: {reply:?}"
        );

        let request = with_header(
            mode.request("CreateArticle", &create("", "x", &[])),
            "authorization",
            &bearer(ALICE),
        );
        let reply = raw::h2c(server.addr, request).await;
        assert_eq!(
            reply.grpc_code(),
            Some(Code::InvalidArgument),
            "{mode:?}: {reply:?}"
        );
        let details = bad_request_details(&reply);
        assert_eq!(details.field_violations[0].field, "title");
    }
}

// ---------------------------------------------------------------- streaming

/// A gRPC-web response body read frame by frame as it arrives.
struct WebStream {
    // Kept so the connection stays open.
    _sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
    body: hyper::body::Incoming,
    mode: Mode,
    text: Vec<u8>,
    buf: BytesMut,
}

impl WebStream {
    /// Opens WatchArticles over a new HTTP/1.1 connection and waits for the
    /// response headers (the subscription is live once they arrive).
    async fn open(server: &TestServer, mode: Mode, request: &pb::WatchArticlesRequest) -> Self {
        let stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("TCP connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let request = with_header(
            mode.request("WatchArticles", request),
            "host",
            &server.addr.to_string(),
        );
        let response = tokio::time::timeout(TIMEOUT, sender.send_request(request))
            .await
            .expect("watch response headers arrive in time")
            .expect("watch response");
        assert_eq!(response.status(), http::StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with(mode.content_type()),
            "{mode:?}: {content_type}"
        );
        assert!(
            response.headers().get("grpc-status").is_none(),
            "a live stream is not a trailers-only error: {:?}",
            response.headers()
        );
        Self {
            _sender: sender,
            body: response.into_body(),
            mode,
            text: Vec::new(),
            buf: BytesMut::new(),
        }
    }

    /// The next complete frame (flag, payload), or None when the body ends.
    async fn next_frame(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() >= 5 + len {
                    let flag = self.buf[0];
                    self.buf.advance(5);
                    return Some((flag, self.buf.split_to(len).freeze()));
                }
            }
            let frame = tokio::time::timeout(TIMEOUT, self.body.frame())
                .await
                .expect("the stream delivers data in time");
            let Some(frame) = frame else {
                assert!(self.buf.is_empty(), "the body ended inside a frame");
                return None;
            };
            let frame = frame.expect("the stream body reads");
            let Ok(data) = frame.into_data() else {
                continue;
            };
            match self.mode {
                Mode::Binary => self.buf.extend_from_slice(&data),
                Mode::Text => {
                    // Decode whole 4-character groups; keep the rest.
                    self.text.extend_from_slice(&data);
                    let whole = self.text.len() / 4 * 4;
                    let decoded = decode_web_text(&self.text[..whole]);
                    self.text.drain(..whole);
                    self.buf.extend_from_slice(&decoded);
                }
            }
        }
    }

    /// The next event that is not a heartbeat.
    async fn next_change(&mut self) -> pb::ArticleEvent {
        loop {
            let (flag, payload) = self
                .next_frame()
                .await
                .expect("the stream stays open and sends an event");
            assert_eq!(flag, 0, "an event frame, not trailers: {payload:?}");
            let event = pb::ArticleEvent::decode(payload).expect("an ArticleEvent");
            if !matches!(event.event, Some(Event::Heartbeat(_))) {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn watch_articles_streams_events_over_http1() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for mode in MODES {
        let mut stream = WebStream::open(&server, mode, &pb::WatchArticlesRequest::default()).await;
        let title = format!("seen over {mode:?}");
        let created = create_as_alice(&mut client, &title, &["live"]).await;
        let event = stream.next_change().await;
        assert_eq!(
            event.event,
            Some(Event::Created(created.clone())),
            "{mode:?}"
        );
        assert!(event.sequence > 0, "{mode:?}: a commit sequence");

        let updated = client
            .update_article(authed(
                ALICE,
                pb::UpdateArticleRequest {
                    id: created.id,
                    title: format!("{title}, edited"),
                    content: "new".into(),
                    tags: vec!["live".into()],
                    expected_version: 1,
                },
            ))
            .await
            .expect("update succeeds")
            .into_inner()
            .article
            .expect("article in response");
        let next = stream.next_change().await;
        assert_eq!(next.event, Some(Event::Updated(updated)), "{mode:?}");
        assert!(
            next.sequence > event.sequence,
            "{mode:?}: sequences increase"
        );
    }
}

#[tokio::test]
async fn watch_over_http1_ends_with_a_trailers_frame_on_shutdown() {
    let mut server = TestServer::start().await;
    let mut stream =
        WebStream::open(&server, Mode::Binary, &pb::WatchArticlesRequest::default()).await;
    wait_for("one watcher", || server.watchers() == 1).await;
    let stopped = server.begin_shutdown();
    let trailers = loop {
        let (flag, payload) = stream
            .next_frame()
            .await
            .expect("a trailers frame before the body ends");
        if flag & TRAILER_FLAG != 0 {
            break parse_trailers(&payload);
        }
    };
    let status = trailers
        .iter()
        .find_map(|(name, value)| (name == "grpc-status").then_some(value.as_str()));
    assert_eq!(
        status,
        Some("14"),
        "the watch ends UNAVAILABLE (14): {trailers:?}"
    );
    stopped.finish().await;
}

// ---------------------------------------------------------------- tonic-web client

type WebTransport = tonic_web::GrpcWebClientService<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic_web::GrpcWebCall<tonic::body::Body>,
    >,
>;

/// An ArticleService client speaking gRPC-web over HTTP/1.1 through tonic-web.
fn tonic_web_client(server: &TestServer) -> ArticleServiceClient<WebTransport> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let service = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let origin = server.url.parse().expect("server URL is a URI");
    ArticleServiceClient::with_origin(service, origin)
}

#[tokio::test]
async fn tonic_web_client_layer_makes_unary_calls() {
    let server = TestServer::start().await;
    let mut web = tonic_web_client(&server);

    let created = tokio::time::timeout(
        TIMEOUT,
        web.create_article(authed(ALICE, create("via tonic-web", "hello", &["web"]))),
    )
    .await
    .expect("create answers in time")
    .expect("create over gRPC-web succeeds")
    .into_inner()
    .article
    .expect("article in response");
    assert_eq!(created.author, "alice");

    let got = web
        .get_article(pb::GetArticleRequest { id: created.id })
        .await
        .expect("get succeeds")
        .into_inner()
        .article;
    assert_eq!(got.as_ref(), Some(&created));

    let list = web
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("list succeeds")
        .into_inner();
    assert_eq!(list.articles, vec![created.clone()]);

    let status = web
        .get_article(pb::GetArticleRequest { id: created.id + 1 })
        .await
        .expect_err("unknown id");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let status = web
        .create_article(create("no token", "x", &[]))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let status = web
        .create_article(authed(ALICE, create("", "x", &["UPPER"])))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = tonic_types::StatusExt::get_details_bad_request(&status)
        .expect("BadRequest details decode through tonic-web");
    assert_eq!(details.field_violations.len(), 2, "{details:?}");
}

#[tokio::test]
async fn tonic_web_client_layer_streams_watch() {
    let server = TestServer::start().await;
    let mut web = tonic_web_client(&server);
    let mut stream = tokio::time::timeout(
        TIMEOUT,
        web.watch_articles(pb::WatchArticlesRequest::default()),
    )
    .await
    .expect("watch opens in time")
    .expect("watch opens")
    .into_inner();

    let created = create_as_alice(&mut server.client().await, "streamed to tonic-web", &[]).await;
    let event = loop {
        let event = tokio::time::timeout(TIMEOUT, stream.message())
            .await
            .expect("an event arrives in time")
            .expect("the stream is not an error")
            .expect("the stream stays open");
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            break event;
        }
    };
    assert_eq!(event.event, Some(Event::Created(created)));
}

// ---------------------------------------------------------------- x-request-id

#[tokio::test]
async fn client_supplied_request_id_is_echoed_native_and_web() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let mut request = Request::new(pb::ListArticlesRequest::default());
    request.metadata_mut().insert(
        "x-request-id",
        "native-id-1".parse().expect("metadata value"),
    );
    let response = client.list_articles(request).await.expect("list succeeds");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("native-id-1")
    );

    let mut request = Request::new(pb::GetArticleRequest { id: 77 });
    request.metadata_mut().insert(
        "x-request-id",
        "native-id-2".parse().expect("metadata value"),
    );
    let status = client.get_article(request).await.expect_err("unknown id");
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("native-id-2"),
        "echoed on errors too"
    );

    for mode in MODES {
        let request = with_header(
            mode.request("ListArticles", &pb::ListArticlesRequest::default()),
            "x-request-id",
            "web-id-3",
        );
        let reply = raw::http1(server.addr, request).await;
        assert_eq!(reply.header("x-request-id"), Some("web-id-3"), "{mode:?}");
    }
}

#[tokio::test]
async fn request_id_is_generated_and_unique_when_absent() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = client
            .list_articles(pb::ListArticlesRequest::default())
            .await
            .expect("list succeeds");
        let id = response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("a generated x-request-id (native)")
            .to_owned();
        ids.push(id);
    }
    for mode in MODES {
        for _ in 0..2 {
            let reply = raw::http1(
                server.addr,
                mode.request("ListArticles", &pb::ListArticlesRequest::default()),
            )
            .await;
            let id = reply
                .header("x-request-id")
                .unwrap_or_else(|| panic!("a generated x-request-id ({mode:?})"))
                .to_owned();
            ids.push(id);
        }
    }
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "every call gets its own id: {ids:?}"
    );
}

// ---------------------------------------------------------------- unknown methods, static app, metrics

const INDEX_HTML: &str = "<!doctype html><title>article web app</title><div id=app></div>\n";

/// A server with `static_dir` set to a temp dir holding an index.html.
async fn server_with_static_app() -> (TestServer, tempfile::TempDir) {
    let web = tempfile::tempdir().expect("temp dir");
    std::fs::write(web.path().join("index.html"), INDEX_HTML).expect("index.html written");
    let path = web.path().to_path_buf();
    let server = TestServer::start_with(|s| s.runtime.static_dir = Some(path)).await;
    (server, web)
}

#[tokio::test]
async fn unknown_service_or_method_is_unimplemented_over_grpc_web() {
    let (server, _web) = server_with_static_app().await;
    for path in [
        "/article.v1.NoSuchService/ListArticles",
        "/article.v1.ArticleService/NoSuchMethod",
    ] {
        for mode in MODES {
            let request = || {
                web_request(
                    path,
                    mode.content_type(),
                    mode.body(frame(&pb::ListArticlesRequest::default())),
                )
            };
            for (protocol, reply) in [
                ("HTTP/1.1", raw::http1(server.addr, request()).await),
                ("HTTP/2", raw::h2c(server.addr, request()).await),
            ] {
                assert!(
                    !String::from_utf8_lossy(&reply.body).contains("article web app"),
                    "{path} {mode:?} {protocol}: not the web app's index page"
                );
                assert_eq!(
                    reply.status,
                    http::StatusCode::OK,
                    "{path} {mode:?} {protocol}"
                );
                assert!(
                    reply
                        .header("content-type")
                        .is_some_and(|c| c.starts_with("application/grpc-web")),
                    "{path} {mode:?} {protocol}: a gRPC-web answer: {reply:?}"
                );
                assert_eq!(
                    reply.grpc_code(),
                    Some(Code::Unimplemented),
                    "{path} {mode:?} {protocol}: {reply:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn unknown_service_or_method_is_unimplemented_over_native_grpc() {
    let (server, _web) = server_with_static_app().await;
    for path in [
        "/article.v1.NoSuchService/ListArticles",
        "/article.v1.ArticleService/NoSuchMethod",
    ] {
        let mut grpc = tonic::client::Grpc::new(server.channel().await);
        grpc.ready().await.expect("channel ready");
        let result: Result<tonic::Response<pb::ListArticlesResponse>, tonic::Status> = grpc
            .unary(
                Request::new(pb::ListArticlesRequest::default()),
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await;
        let status = result.expect_err("an unknown method fails");
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
}

#[tokio::test]
async fn static_app_serves_index_for_root_and_client_routes() {
    let (server, _web) = server_with_static_app().await;
    for path in ["/", "/some/client/route"] {
        let reply = raw::http1(server.addr, raw::get(path)).await;
        assert_eq!(reply.status, http::StatusCode::OK, "GET {path}");
        assert_eq!(
            String::from_utf8_lossy(&reply.body),
            INDEX_HTML,
            "GET {path} returns index.html"
        );
        assert!(
            reply
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "GET {path}: {:?}",
            reply.headers
        );
    }
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    // The server's registry is its own: only the calls below are counted.
    let (server, _web) = server_with_static_app().await;
    let mut client = server.client().await;
    for _ in 0..2 {
        let status = client
            .get_article(pb::GetArticleRequest { id: 31337 })
            .await
            .expect_err("unknown id");
        assert_eq!(status.code(), Code::NotFound);
    }
    for _ in 0..3 {
        let reply = raw::http1(
            server.addr,
            Mode::Binary.request("ListArticles", &pb::ListArticlesRequest::default()),
        )
        .await;
        assert_eq!(reply.grpc_code(), Some(Code::Ok));
    }

    let reply = raw::http1(server.addr, raw::get("/metrics")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    let text = String::from_utf8_lossy(&reply.body);
    let service = proto::SERVICE_NAME;
    let mut handled: Vec<(String, String, String, f64)> =
        prometheus::samples(&text, "grpc_server_handled_total")
            .into_iter()
            .map(|s| {
                let label = |name| s.label(name).unwrap_or_default().to_owned();
                (
                    label("grpc_service"),
                    label("grpc_method"),
                    label("grpc_code"),
                    s.value,
                )
            })
            .collect();
    handled.sort_by(|a, b| a.1.cmp(&b.1));
    let expected = [
        ("GetArticle", Code::NotFound, 2.0),
        ("ListArticles", Code::Ok, 3.0),
    ]
    .map(|(method, code, n)| {
        (
            service.to_owned(),
            method.to_owned(),
            proto::code_name(code).to_owned(),
            n,
        )
    });
    assert_eq!(
        handled, expected,
        "exactly the calls made, by method and code, in:\n{text}"
    );
    for (method, n) in [("GetArticle", 2.0), ("ListArticles", 3.0)] {
        let timed = prometheus::total(
            &text,
            "grpc_server_handling_seconds_count",
            &[("grpc_service", service), ("grpc_method", method)],
        );
        assert_eq!(
            timed, n,
            "{method}: one latency sample per call, in:\n{text}"
        );
    }
}

// ---------------------------------------------------------------- compression

#[tokio::test]
async fn gzip_request_is_accepted_native() {
    let server = TestServer::start().await;
    let content = "compressible ".repeat(500);
    // Framed by hand, so the request message certainly is compressed.
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{SERVICE}/CreateArticle"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", "gzip")
        .header("authorization", bearer(ALICE))
        .body(http_body_util::Full::new(compressed_frame(&create(
            "gzipped by hand",
            &content,
            &[],
        ))))
        .expect("valid request");
    let reply = raw::h2c(server.addr, request).await;
    assert_eq!(reply.grpc_code(), Some(Code::Ok), "{reply:?}");
    let frames = reply.web_frames();
    let [(0, payload)] = frames.as_slice() else {
        panic!("one uncompressed response message: {frames:?}");
    };
    let created = pb::CreateArticleResponse::decode(payload.clone())
        .expect("the response decodes")
        .article
        .expect("article in response");
    assert_eq!(created.content, content);

    // tonic's client compressing its requests is accepted too.
    let mut client = server
        .client()
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let created = client
        .create_article(authed(ALICE, create("gzipped", &content, &[])))
        .await
        .expect("a gzip-compressed request is accepted")
        .into_inner()
        .article
        .expect("article in response");
    assert_eq!(created.content, content);
}

#[tokio::test]
async fn gzip_request_is_accepted_over_grpc_web() {
    let server = TestServer::start().await;
    for mode in MODES {
        let title = format!("gzipped {mode:?}");
        let content = "compressible ".repeat(500);
        let body = mode.body(compressed_frame(&create(&title, &content, &[])));
        let mut request = web_request(
            &format!("{SERVICE}/CreateArticle"),
            mode.content_type(),
            body,
        );
        request = with_header(request, "authorization", &bearer(ALICE));
        request = with_header(request, "grpc-encoding", "gzip");
        let reply = raw::http1(server.addr, request).await;
        assert_eq!(reply.grpc_code(), Some(Code::Ok), "{mode:?}: {reply:?}");
        let frames = reply.web_frames();
        let (flag, payload) = frames.first().expect("a message frame").clone();
        let payload = if flag & 1 == 1 {
            Bytes::from(gunzip(&payload))
        } else {
            payload
        };
        let created = pb::CreateArticleResponse::decode(payload)
            .expect("response decodes")
            .article
            .expect("article in response");
        assert_eq!(created.title, title);
        assert_eq!(created.content, content);
    }
}

/// Creates one article whose content compresses well and returns its id.
async fn large_article(server: &TestServer) -> (i64, String) {
    let content = "all work and no play makes a large response. ".repeat(1500);
    let article = server
        .client()
        .await
        .create_article(authed(ALICE, create("large", &content, &[])))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response");
    (article.id, content)
}

#[tokio::test]
async fn response_is_gzipped_when_the_grpc_web_client_accepts_gzip() {
    let server = TestServer::start().await;
    let (id, content) = large_article(&server).await;
    for mode in MODES {
        let request = with_header(
            mode.request("GetArticle", &pb::GetArticleRequest { id }),
            "grpc-accept-encoding",
            "gzip",
        );
        let reply = raw::http1(server.addr, request).await;
        assert_eq!(reply.grpc_code(), Some(Code::Ok), "{mode:?}: {reply:?}");
        assert_eq!(
            reply.header("grpc-encoding"),
            Some("gzip"),
            "{mode:?}: {:?}",
            reply.headers
        );
        let frames = reply.web_frames();
        let (flag, payload) = &frames[0];
        assert_eq!(*flag, 1, "{mode:?}: the message frame is marked compressed");
        assert!(
            payload.len() < content.len() / 4,
            "{mode:?}: {} compressed bytes for {} bytes of content",
            payload.len(),
            content.len()
        );
        let got = pb::GetArticleResponse::decode(gunzip(payload).as_slice())
            .expect("the gunzipped message decodes");
        assert_eq!(got.article.expect("article").content, content);
        let (trailer_flag, _) = frames.last().expect("a trailers frame");
        assert_eq!(trailer_flag & 0x80, 0x80, "{mode:?}: ends with trailers");
    }
}

#[tokio::test]
async fn response_is_not_compressed_when_the_grpc_web_client_does_not_accept_gzip() {
    let server = TestServer::start().await;
    let (id, content) = large_article(&server).await;
    for mode in MODES {
        for accept in [None, Some("identity")] {
            let mut request = mode.request("GetArticle", &pb::GetArticleRequest { id });
            if let Some(accept) = accept {
                request = with_header(request, "grpc-accept-encoding", accept);
            }
            let reply = raw::http1(server.addr, request).await;
            assert!(
                matches!(reply.header("grpc-encoding"), None | Some("identity")),
                "{mode:?} accept {accept:?}: {:?}",
                reply.headers
            );
            // `ok_message` insists on flag 0 (uncompressed) message frames.
            let got: pb::GetArticleResponse = ok_message(&reply, mode);
            assert_eq!(got.article.expect("article").content, content);
        }
    }
}

#[tokio::test]
async fn native_client_accepting_gzip_gets_a_compressed_response_it_decodes() {
    let server = TestServer::start().await;
    let (id, content) = large_article(&server).await;

    let mut gzip_client = server
        .client()
        .await
        .accept_compressed(CompressionEncoding::Gzip);
    let response = gzip_client
        .get_article(pb::GetArticleRequest { id })
        .await
        .expect("get succeeds");
    assert_eq!(
        response
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert_eq!(
        response.into_inner().article.expect("article").content,
        content
    );

    let response = server
        .client()
        .await
        .get_article(pb::GetArticleRequest { id })
        .await
        .expect("get succeeds");
    assert!(
        matches!(
            response
                .metadata()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok()),
            None | Some("identity")
        ),
        "not compressed for a client that does not accept gzip: {:?}",
        response.metadata()
    );
    assert_eq!(
        response.into_inner().article.expect("article").content,
        content
    );
}
