//! What the runtime's tests share beyond the test kit: the Echo service
//! mounted on a builder, the assembled service called in-process, a
//! runtime spawned on 127.0.0.1:0, and a probe for requests that reached
//! the service.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::Router;
use bytes::Bytes;
use grpc_runtime::{RuntimeBuilder, configure_service};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use testkit::{
    SpawnedServer, TIMEOUT,
    echo::{Echo, EchoServiceServer, FILE_DESCRIPTOR_SET},
    grpc_web,
    raw::{RawReply, RawRequest},
};
use tokio::sync::Semaphore;
use tonic::{body::Body, server::NamedService};
use tower::ServiceExt as _;

/// `/example.v1.EchoService/Echo`
pub const ECHO: &str = "/example.v1.EchoService/Echo";
/// `/example.v1.EchoService/Count`
pub const COUNT: &str = "/example.v1.EchoService/Count";

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
    testkit::init_logging();
    with_echo(builder)
        .into_service()
        .await
        .expect("the service is assembled")
}

/// Calls the assembled service in-process and reads the whole response.
pub async fn send(app: &Router, request: RawRequest) -> RawReply {
    let exchange = async {
        let response = app
            .clone()
            .oneshot(request)
            .await
            .expect("the service is infallible");
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("the body reads to its end");
        RawReply {
            status: parts.status,
            headers: parts.headers,
            trailers: collected.trailers().cloned().unwrap_or_default(),
            body: collected.to_bytes(),
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("the service answers in time")
}

/// A gRPC-web call of `path` with these message frames, as a browser
/// sends it; for `application/grpc-web-text` the body is base64-encoded.
pub fn web(path: &str, content_type: &str, frames: Bytes) -> RawRequest {
    let body = if content_type.starts_with(grpc_web::TEXT) {
        grpc_web::web_text(&frames)
    } else {
        frames
    };
    grpc_web::web_request(path, content_type, body)
}

/// A native gRPC call (`application/grpc` over HTTP/2), as tonic's client
/// sends it.
pub fn grpc(path: &str, frames: Bytes) -> RawRequest {
    http::Request::post(path)
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frames))
        .expect("valid request")
}

/// The body as text.
pub fn text(reply: &RawReply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// Binds `builder` (Echo mounted) on 127.0.0.1:0 and serves it on a task.
pub async fn serve(builder: RuntimeBuilder) -> SpawnedServer {
    spawn(with_echo(builder)).await
}

/// Binds `builder` as it is on 127.0.0.1:0 and serves it on a task.
pub async fn spawn(builder: RuntimeBuilder) -> SpawnedServer {
    let runtime = builder
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the runtime binds");
    SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| {
        runtime.run_until(stop)
    })
}

/// A service wrapper that tells when a request has reached the service:
/// the call is then certainly in flight at the server, with no sleep.
#[derive(Clone)]
pub struct Arrivals<S> {
    inner: S,
    arrived: Arc<Semaphore>,
}

impl<S> Arrivals<S> {
    /// `inner`, and the semaphore that gains a permit per request.
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

/// Sends `request` on a new connection and returns the body of its `200`
/// answer as it streams in.
pub async fn open(addr: SocketAddr, mut request: RawRequest, http2: bool) -> Incoming {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connect");
    let io = hyper_util::rt::TokioIo::new(tcp);
    let response = if http2 {
        *request.uri_mut() = format!("http://{addr}{}", request.uri().path())
            .parse()
            .expect("an absolute URI");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        tokio::time::timeout(TIMEOUT, sender.send_request(request)).await
    } else {
        let host = addr.to_string().parse().expect("a host header");
        request.headers_mut().insert(http::header::HOST, host);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        tokio::time::timeout(TIMEOUT, sender.send_request(request)).await
    };
    let response = response
        .expect("the answer's headers arrive in time")
        .expect("an answer");
    assert_eq!(response.status(), http::StatusCode::OK);
    response.into_body()
}

/// The services reflection v1 lists on `channel`, sorted.
pub async fn reflected_services(channel: tonic::transport::Channel) -> Vec<String> {
    use futures::StreamExt as _;
    use tonic_reflection::pb::v1;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let response = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1 answers")
        .into_inner()
        .next()
        .await
        .expect("a v1 response")
        .expect("an OK v1 response");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("v1 answers ListServices with a list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}
