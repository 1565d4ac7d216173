//! What the runtime's tests share: the Echo service mounted on a builder,
//! the assembled service called in-process, a server spawned on
//! 127.0.0.1:0, raw HTTP/1.1 and h2c exchanges, and gRPC-web framing
//! written by hand (the tests check the wire format itself).
//!
//! Tests are silent unless `TEST_LOG` is set (e.g. `TEST_LOG=debug`).

#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Once},
    task::{Context, Poll},
    time::Duration,
};

use axum::Router;
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use grpc_runtime::{Runtime, RuntimeBuilder, configure_service};
use http_body_util::{BodyExt as _, Full};
use testkit::echo::{Echo, EchoServiceServer, FILE_DESCRIPTOR_SET};
use tokio::{
    sync::{Semaphore, oneshot},
    task::JoinHandle,
};
use tonic::{
    body::Body,
    server::NamedService,
    transport::{Channel, Endpoint},
};
use tower::ServiceExt as _;

/// Every call and wait in tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// `/example.v1.EchoService/Echo`
pub const ECHO: &str = "/example.v1.EchoService/Echo";
/// `/example.v1.EchoService/Count`
pub const COUNT: &str = "/example.v1.EchoService/Count";

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

/// Mounts the Echo service as an application would (gzip and the
/// builder's message limit through `configure_service!`, descriptors for
/// reflection). Set the size limit on `builder` before calling this.
pub fn with_echo(builder: RuntimeBuilder) -> RuntimeBuilder {
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    builder
        .add_service(echo)
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
}

/// The assembled service of `builder` with Echo mounted, for in-process calls.
pub async fn app(builder: RuntimeBuilder) -> Router {
    init_logging();
    with_echo(builder)
        .into_service()
        .await
        .expect("the service is assembled")
}

/// Calls the assembled service in-process and reads the whole response.
pub async fn send(app: &Router, request: http::Request<Full<Bytes>>) -> Reply {
    let response = tokio::time::timeout(TIMEOUT, app.clone().oneshot(request))
        .await
        .expect("the service answers in time")
        .expect("the service is infallible");
    read_reply(response).await
}

// ---- Requests ----

/// A gRPC-web POST with the headers a browser sends; for
/// `application/grpc-web-text`, the body is base64-encoded here and
/// `accept: application/grpc-web-text` asks for a base64 answer.
pub fn web_request(path: &str, content_type: &str, frames: Bytes) -> http::Request<Full<Bytes>> {
    let text = content_type.starts_with("application/grpc-web-text");
    let mut builder = http::Request::post(path)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1");
    if text {
        builder = builder.header("accept", "application/grpc-web-text");
    }
    let body = if text { web_text(&frames) } else { frames };
    builder.body(Full::new(body)).expect("valid request")
}

/// A native gRPC POST (`application/grpc`, HTTP/2), as tonic's client sends it.
pub fn grpc_request(path: &str, frames: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frames))
        .expect("valid request")
}

/// One length-prefixed gRPC message frame (flag 0x00, uncompressed).
pub fn frame(message: &impl prost::Message) -> Bytes {
    raw_frame(0, &message.encode_to_vec())
}

/// A frame with this flag byte and payload.
pub fn raw_frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(flag);
    buf.put_u32(u32::try_from(payload.len()).expect("payload fits a frame"));
    buf.put_slice(payload);
    buf.freeze()
}

/// Base64 (standard, padded), as a `grpc-web-text` body.
pub fn web_text(bytes: &[u8]) -> Bytes {
    use base64::Engine as _;
    Bytes::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes a `grpc-web-text` body. Servers base64-encode each chunk on its
/// own (with padding), so it is decoded one 4-character group at a time.
pub fn decode_web_text(text: &[u8]) -> Bytes {
    use base64::Engine as _;
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for group in clean.chunks(4) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(group)
            .expect("response body is valid base64");
        out.extend_from_slice(&decoded);
    }
    Bytes::from(out)
}

// ---- Responses ----

/// A completely read HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// HTTP trailers (native gRPC; gRPC-web puts them in the body).
    pub trailers: http::HeaderMap,
}

impl Reply {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is text")
    }

    /// The body as text, whatever it holds.
    pub fn text_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body's frames as (flag, payload); a `grpc-web-text` body is
    /// base64-decoded first. Panics on a malformed body.
    pub fn frames(&self) -> Vec<(u8, Bytes)> {
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

    /// The uncompressed message frames, decoded as `M`.
    pub fn messages<M: prost::Message + Default>(&self) -> Vec<M> {
        self.frames()
            .into_iter()
            .filter(|(flag, _)| flag & 0x80 == 0)
            .map(|(flag, payload)| {
                assert_eq!(flag, 0, "an uncompressed message frame");
                M::decode(payload).expect("the message decodes")
            })
            .collect()
    }

    /// Fields of the gRPC-web trailers frame (names lower-cased), if any.
    pub fn trailers_frame(&self) -> Option<Vec<(String, String)>> {
        let (_, payload) = self
            .frames()
            .into_iter()
            .find(|(flag, _)| flag & 0x80 != 0)?;
        let text = std::str::from_utf8(&payload).expect("trailers are text");
        Some(
            text.split("\r\n")
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let (name, value) = line.split_once(':').expect("a trailer has a colon");
                    (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                })
                .collect(),
        )
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
        if !self
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/grpc-web")
        {
            return None;
        }
        self.trailers_frame()?
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
    }

    /// The call's `grpc-status`, wherever the server put it.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        let raw = self.grpc_meta("grpc-status")?;
        Some(tonic::Code::from_i32(
            raw.parse().expect("grpc-status is a number"),
        ))
    }
}

pub async fn read_reply<B>(response: http::Response<B>) -> Reply
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let collected = tokio::time::timeout(TIMEOUT, body.collect())
        .await
        .expect("the response body ends in time")
        .expect("the response body reads to its end");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

// ---- A server on a socket ----

/// A runtime serving on 127.0.0.1:0 in a task. Stops (without waiting)
/// when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Binds `builder` (Echo mounted) on 127.0.0.1:0 and serves it.
    pub async fn start(builder: RuntimeBuilder) -> Self {
        let runtime = with_echo(builder)
            .bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("the runtime binds");
        Self::spawn(runtime)
    }

    /// Serves an already bound runtime until [`begin_shutdown`](Self::begin_shutdown).
    pub fn spawn(runtime: Runtime) -> Self {
        init_logging();
        let addr = runtime.local_addr();
        let url = runtime.url();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts draining, as SIGTERM would, and returns the serve task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("the server task")
    }

    /// Drains and waits for the server to stop cleanly.
    pub async fn shutdown(mut self) {
        let task = self.begin_shutdown();
        stops_cleanly(task).await;
    }

    /// A native gRPC (h2c) channel.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("url")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("connect")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits (bounded) for a serve task to return `Ok`.
pub async fn stops_cleanly(task: JoinHandle<anyhow::Result<()>>) {
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("the server task returns in time")
        .expect("the server task joins")
        .expect("the server stops without error");
}

/// A service wrapper that tells when a request has reached the service:
/// a call is then certainly in flight at the server, with no sleep.
#[derive(Clone)]
pub struct Arrivals<S> {
    inner: S,
    arrived: Arc<Semaphore>,
}

impl<S> Arrivals<S> {
    pub fn new(inner: S) -> (Self, Arc<Semaphore>) {
        let arrived = Arc::new(Semaphore::new(0));
        let wrapped = Self {
            inner,
            arrived: arrived.clone(),
        };
        (wrapped, arrived)
    }
}

impl<S: NamedService> NamedService for Arrivals<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for Arrivals<S>
where
    S: tower::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.arrived.add_permits(1);
        self.inner.call(request)
    }
}

/// Waits (bounded) until `n` more requests have arrived.
pub async fn arrived(arrivals: &Semaphore, n: u32) {
    tokio::time::timeout(TIMEOUT, arrivals.acquire_many(n))
        .await
        .expect("the requests arrive in time")
        .expect("the semaphore is open")
        .forget();
}

/// Waits (bounded) until a new TCP connection to `addr` is refused.
pub async fn wait_until_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => return,
            Ok(stream) => drop(stream),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "new connections to {addr} are still accepted while draining"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- Raw exchanges on a socket ----

/// Bounds an exchange by [`TIMEOUT`].
async fn bounded<T>(what: &str, exchange: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{what} finishes in time"))
}

/// Sends `request` (URI: a path) on a new HTTP/1.1 connection to `addr`
/// and reads the whole response.
pub async fn raw_http1(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connect");
    http1_on(tcp, &addr.to_string(), request).await
}

/// Sends `request` (URI: a path) on a new HTTP/2 connection (h2c, prior
/// knowledge) to `addr` and reads the whole response.
pub async fn raw_h2c(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connect");
    h2_on(tcp, &format!("http://{addr}"), request).await
}

/// One HTTP/1.1 exchange on an open connection (`host` for the Host header).
pub async fn http1_on<IO>(io: IO, host: &str, mut request: http::Request<Full<Bytes>>) -> Reply
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let host = http::HeaderValue::from_str(host).expect("host header");
    bounded("the HTTP/1.1 exchange", async move {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        request
            .headers_mut()
            .entry(http::header::HOST)
            .or_insert(host);
        let response = sender
            .send_request(request)
            .await
            .expect("HTTP/1.1 response");
        read_reply(response).await
    })
    .await
}

/// One HTTP/2 exchange on an open connection (`origin` makes the URI absolute).
pub async fn h2_on<IO>(io: IO, origin: &str, mut request: http::Request<Full<Bytes>>) -> Reply
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = format!("{origin}{path}").parse().expect("absolute URI");
    bounded("the HTTP/2 exchange", async move {
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(io),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("HTTP/2 response");
        read_reply(response).await
    })
    .await
}

/// The value of the sample `name{labels}` in a Prometheus text page,
/// matched exactly (labels in the order the page writes them).
pub fn sample(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(name_and_labels)?.strip_prefix(' ')?;
        Some(value.trim().parse().expect("a sample value is a number"))
    })
}
