//! Shared test harness: an in-process server on 127.0.0.1:0 with its own
//! SQLite file in a temporary directory, known write tokens, and clients
//! for native gRPC and raw gRPC-web.
//!
//! Tests are silent unless `TEST_LOG` is set (e.g. `TEST_LOG=debug`).

#![allow(dead_code)]

use std::{net::SocketAddr, path::PathBuf, sync::Once, time::Duration};

use article_server::{Application, Settings, article::cache::CacheStats};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Parser as _;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    Request,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

/// Token of the author `alice`.
pub const ALICE: &str = "alice-token-0123456789";
/// Token of the author `bob`.
pub const BOB: &str = "bob-token-0123456789";

/// Every call and wait in tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// Settings for a test server: port 0, its own database file in `dir`,
/// tokens for alice and bob. Adjust fields before [`TestServer::start_with`].
pub fn settings(dir: &tempfile::TempDir) -> Settings {
    let db = dir.path().join("articles.db");
    Settings::parse_from([
        "article-server".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        format!("sqlite://{}", db.display()),
        "--token".into(),
        format!("alice={ALICE}"),
        "--token".into(),
        format!("bob={BOB}"),
    ])
}

/// A running in-process server. Stops (without waiting) when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub dir: tempfile::TempDir,
    watchers: Box<dyn Fn() -> i64 + Send + Sync>,
    list_cache: Box<dyn Fn() -> CacheStats + Send + Sync>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// A server with default test settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose settings `adjust` may change (the database stays in
    /// the server's own temporary directory unless `adjust` changes it).
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = settings(&dir);
        adjust(&mut s);
        Self::start_in(dir, s).await
    }

    /// A server on `settings`, owning `dir`.
    pub async fn start_in(dir: tempfile::TempDir, settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("application builds");
        Self::spawn(dir, app)
    }

    /// Serves an already built application.
    pub fn spawn(dir: tempfile::TempDir, app: Application) -> Self {
        init_logging();
        let addr = app.local_addr();
        let url = app.url();
        let watchers = Box::new(app.watcher_count());
        let list_cache = Box::new(app.list_cache_stats());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            url,
            dir,
            watchers,
            list_cache,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Open WatchArticles streams on the server.
    pub fn watchers(&self) -> i64 {
        (self.watchers)()
    }

    /// Hits and misses of the server's ListArticles cache.
    pub fn list_cache(&self) -> CacheStats {
        (self.list_cache)()
    }

    /// Waits (bounded) until `cond` holds, polling every 10 ms.
    pub async fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts draining, as SIGTERM would, and returns the serve task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("server task")
    }

    /// Drains and waits for the server to stop.
    pub async fn shutdown(mut self) {
        let task = self.begin_shutdown();
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("server stops in time")
            .expect("server task joins")
            .expect("server stops cleanly");
    }

    /// A native gRPC (HTTP/2 h2c) channel.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("url")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("connect")
    }

    /// A native gRPC client.
    pub async fn client(&self) -> ArticleServiceClient<Channel> {
        ArticleServiceClient::new(self.channel().await)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("articles.db")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Wraps `message` in a request carrying `authorization: Bearer token`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

pub fn create(title: &str, content: &str, tags: &[&str]) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        title: title.into(),
        content: content.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// ListArticles, which must succeed in time.
pub async fn list(
    client: &mut ArticleServiceClient<Channel>,
    request: pb::ListArticlesRequest,
) -> pb::ListArticlesResponse {
    tokio::time::timeout(TIMEOUT, client.list_articles(request))
        .await
        .expect("ListArticles answers in time")
        .expect("ListArticles succeeds")
        .into_inner()
}

/// Creates an article as alice and returns it.
pub async fn create_as_alice(
    client: &mut ArticleServiceClient<Channel>,
    title: &str,
    tags: &[&str],
) -> pb::Article {
    client
        .create_article(authed(
            ALICE,
            create(title, &format!("content of {title}"), tags),
        ))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response")
}

// ---- gRPC-web framing, written by hand on purpose: the tests check the
// wire format itself rather than trusting a client library. ----

/// One length-prefixed gRPC message frame (flag 0x00, uncompressed).
pub fn frame(message: &impl prost::Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut buf = BytesMut::with_capacity(5 + body.len());
    buf.put_u8(0);
    buf.put_u32(body.len() as u32);
    buf.put_slice(&body);
    buf.freeze()
}

/// A decoded gRPC-web response body: messages, then the trailers frame.
#[derive(Debug, Default)]
pub struct WebBody {
    pub messages: Vec<Bytes>,
    /// Trailer fields (lower-cased names) from the 0x80 frame.
    pub trailers: Vec<(String, String)>,
}

impl WebBody {
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes message `i` as `M`.
    pub fn message<M: prost::Message + Default>(&self, i: usize) -> M {
        M::decode(self.messages[i].clone()).expect("message decodes")
    }
}

/// Splits a (binary) gRPC-web response body into its frames. Panics on a
/// malformed body: the server must never send one.
pub fn parse_web_body(mut body: Bytes) -> WebBody {
    let mut out = WebBody::default();
    while body.has_remaining() {
        assert!(body.remaining() >= 5, "truncated frame header in response");
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        assert!(body.remaining() >= len, "truncated frame in response");
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            let text = std::str::from_utf8(&payload).expect("trailers are text");
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').expect("trailer line has a colon");
                out.trailers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        } else {
            assert_eq!(flag, 0, "uncompressed message frame expected");
            out.messages.push(payload);
        }
    }
    out
}

// ---- Raw HTTP exchanges (HTTP/1.1 and h2c prior knowledge) for the
// gRPC-web, CORS, limit and bad-input tests. ----

/// A completely read HTTP response.
#[derive(Debug)]
pub struct RawReply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// HTTP trailers (native gRPC over HTTP/2; gRPC-web puts them in the body).
    pub trailers: http::HeaderMap,
}

impl RawReply {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's gRPC-web frames; a `grpc-web-text` body is base64-decoded first.
    pub fn web_body(&self) -> WebBody {
        let content_type = self.header("content-type").unwrap_or("");
        if content_type.starts_with("application/grpc-web-text") {
            parse_web_body(decode_web_text(&self.body))
        } else {
            parse_web_body(self.body.clone())
        }
    }

    /// The body's frames as (flag, payload), compressed ones included; a
    /// `grpc-web-text` body is base64-decoded first.
    pub fn web_frames(&self) -> Vec<(u8, Bytes)> {
        let content_type = self.header("content-type").unwrap_or("");
        let mut body = if content_type.starts_with("application/grpc-web-text") {
            decode_web_text(&self.body)
        } else {
            self.body.clone()
        };
        let mut frames = Vec::new();
        while body.has_remaining() {
            assert!(body.remaining() >= 5, "truncated frame header in response");
            let flag = body.get_u8();
            let len = body.get_u32() as usize;
            assert!(body.remaining() >= len, "truncated frame in response");
            frames.push((flag, body.split_to(len)));
        }
        frames
    }

    /// A gRPC metadata value: from the headers (trailers-only response),
    /// the HTTP trailers, or else the gRPC-web trailers frame.
    pub fn grpc_meta(&self, name: &str) -> Option<String> {
        if let Some(value) = self.header(name) {
            return Some(value.to_owned());
        }
        if let Some(value) = self.trailers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(value.to_owned());
        }
        let (_, trailers) = self
            .web_frames()
            .into_iter()
            .find(|(flag, _)| flag & 0x80 != 0)?;
        let text = std::str::from_utf8(&trailers).expect("trailers are text");
        text.split("\r\n").find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The call's `grpc-status`, wherever the server put it.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        let raw = self.grpc_meta("grpc-status")?;
        let code: i32 = raw.parse().expect("grpc-status is a number");
        Some(tonic::Code::from_i32(code))
    }
}

/// base64 (standard alphabet) that accepts padded and unpadded input.
pub const BASE64_ANY_PAD: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes a `grpc-web-text` body. Servers base64-encode each chunk on its
/// own (with padding), so the body is decoded one 4-character group at a
/// time rather than as one string.
pub fn decode_web_text(text: &[u8]) -> Bytes {
    use base64::Engine as _;
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for group in clean.chunks(4) {
        let decoded = BASE64_ANY_PAD
            .decode(group)
            .expect("response body is valid base64");
        out.extend_from_slice(&decoded);
    }
    Bytes::from(out)
}

/// A gRPC-web POST of `body` to `path` (e.g. `/article.v1.ArticleService/ListArticles`)
/// with the headers a browser sends: for `application/grpc-web-text`, also
/// `accept: application/grpc-web-text`, which asks for a base64 response
/// (as the gRPC-web protocol specifies). Add headers with `headers_mut()`.
pub fn raw_web_request(
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> http::Request<http_body_util::Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1");
    if content_type.starts_with("application/grpc-web-text") {
        builder = builder.header("accept", "application/grpc-web-text");
    }
    builder
        .body(http_body_util::Full::new(body.into()))
        .expect("valid request")
}

/// Base64 (standard, padded) of `bytes`, as a `grpc-web-text` request body.
pub fn web_text(bytes: &[u8]) -> Bytes {
    use base64::Engine as _;
    Bytes::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

async fn read_reply<B>(response: http::Response<B>) -> RawReply
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt as _;
    let (parts, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .expect("response body reads to the end");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    RawReply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// Sends `request` on a new HTTP/1.1 connection to `addr` and reads the
/// whole response, all within [`TIMEOUT`]. The URI should be a path.
pub async fn raw_http1(
    addr: SocketAddr,
    mut request: http::Request<http_body_util::Full<Bytes>>,
) -> RawReply {
    let exchange = async move {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("TCP connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        if !request.headers().contains_key(http::header::HOST) {
            let host = http::HeaderValue::from_str(&addr.to_string()).expect("host header");
            request.headers_mut().insert(http::header::HOST, host);
        }
        let response = sender
            .send_request(request)
            .await
            .expect("HTTP/1.1 response");
        read_reply(response).await
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("HTTP/1.1 exchange finishes in time")
}

/// Sends `request` on a new HTTP/2 connection (h2c, prior knowledge) to
/// `addr` and reads the whole response, all within [`TIMEOUT`]. A path-only
/// URI is made absolute.
pub async fn raw_h2c(
    addr: SocketAddr,
    mut request: http::Request<http_body_util::Full<Bytes>>,
) -> RawReply {
    let exchange = async move {
        if request.uri().scheme().is_none() {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *request.uri_mut() = format!("http://{addr}{path}")
                .parse()
                .expect("absolute URI");
        }
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("TCP connect");
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("HTTP/2 response");
        read_reply(response).await
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("HTTP/2 exchange finishes in time")
}
