//! Graceful shutdown (what SIGTERM/SIGINT trigger): in-flight calls finish,
//! new connections are refused, health turns NOT_SERVING, WatchArticles
//! streams end with UNAVAILABLE, and the drain is bounded by `drain_secs`.
//! The slow calls come from the documented example's EchoService (the
//! example is included once, by the `example` module).

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use testkit::echo::{
    EchoServiceClient,
    pb::{EchoRequest, EchoResponse},
};
use tokio::{net::TcpStream, sync::Notify, task::JoinHandle};
use tonic::{Code, Response, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use testkit::{
    TIMEOUT,
    article::{Settings, TestServer},
    grpc_web::{frame, parse_web_body},
    wait_for,
};

use crate::example::start_example_with;

/// A channel wrapper that signals once a request has been handed to the
/// channel (tonic's channel queues requests in order on one connection).
#[derive(Clone)]
struct SignalOnCall {
    inner: Channel,
    dispatched: Arc<Notify>,
}

impl tower::Service<http::Request<tonic::body::Body>> for SignalOnCall {
    type Response = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let future = self.inner.call(request);
        self.dispatched.notify_one();
        future
    }
}

/// Starts an Echo that answers after `delay_ms` and returns once the server
/// has certainly received it, without sleeping:
///
/// 1. `SignalOnCall` tells when the Echo request has entered the channel's
///    queue; the channel sends queued requests in order on one HTTP/2
///    connection, so the Echo's HEADERS go out on a lower stream id than
///    any request queued after it (HTTP/2 requires increasing stream ids).
/// 2. A health Check is then sent on the same channel. The server reads
///    frames of a connection in order, so once the Check is answered the
///    server has read the Echo's HEADERS: the call is in flight there, and
///    a graceful HTTP/2 shutdown (GOAWAY naming the last stream it took)
///    must let it finish.
async fn echo_in_flight(
    channel: Channel,
    message: &str,
    delay_ms: u32,
) -> JoinHandle<Result<Response<EchoResponse>, Status>> {
    let dispatched = Arc::new(Notify::new());
    let mut echo = EchoServiceClient::new(SignalOnCall {
        inner: channel.clone(),
        dispatched: dispatched.clone(),
    });
    let request = EchoRequest {
        message: message.into(),
        delay_ms,
    };
    let call = tokio::spawn(async move { echo.echo(request).await });
    tokio::time::timeout(TIMEOUT, dispatched.notified())
        .await
        .expect("the Echo request is dispatched in time");
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("a health check behind the Echo on the same connection is answered");
    call
}

/// Waits (bounded) until a new TCP connection to `addr` is refused.
async fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
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

#[tokio::test]
async fn in_flight_call_completes_and_new_connections_are_refused() {
    let mut server = start_example_with(|_| {}).await;
    let addr = server.addr;
    let call = echo_in_flight(server.channel().await, "still answered", 2000).await;
    assert!(
        !call.is_finished(),
        "precondition: the 2 s Echo is still running when shutdown begins"
    );

    let task = server.begin_shutdown();
    // Draining stops accepting at once, while the Echo is still running.
    wait_until_refused(addr).await;

    let reply = tokio::time::timeout(TIMEOUT, call)
        .await
        .expect("the in-flight Echo answers in time")
        .expect("the Echo task joins")
        .expect("the in-flight Echo completes OK during the drain")
        .into_inner();
    assert_eq!(reply.message, "still answered");

    task.finish().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection after shutdown is refused"
    );
}

#[tokio::test]
async fn health_watch_turns_not_serving_when_draining_starts() {
    let mut server = start_example_with(|_| {}).await;
    let mut health = HealthClient::new(server.channel().await);
    let services = ["", proto::SERVICE_NAME, testkit::echo::SERVICE_NAME];
    let mut streams = Vec::new();
    for service in services {
        let mut stream = health
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health Watch of {service:?} opens: {e}"))
            .into_inner();
        let first = tokio::time::timeout(TIMEOUT, stream.message())
            .await
            .expect("the first health status arrives in time")
            .expect("the health stream is healthy")
            .expect("the health stream sends a status");
        assert_eq!(
            first.status,
            ServingStatus::Serving as i32,
            "{service:?} is SERVING before shutdown"
        );
        streams.push((service, stream));
    }

    let task = server.begin_shutdown();
    for (service, stream) in &mut streams {
        let next = tokio::time::timeout(TIMEOUT, stream.message())
            .await
            .expect("a health status change arrives in time")
            .expect("the health stream is healthy while draining")
            .expect("the health stream sends the new status");
        assert_eq!(
            next.status,
            ServingStatus::NotServing as i32,
            "{service:?} turns NOT_SERVING when draining starts"
        );
    }
    drop(streams);
    drop(health);
    task.finish().await;
}

#[tokio::test]
async fn watch_streams_end_with_unavailable_when_draining_starts() {
    let mut server = TestServer::start().await;
    let mut client: ArticleServiceClient<Channel> = server.client().await;
    let mut all = client
        .watch_articles(pb::WatchArticlesRequest::default())
        .await
        .expect("WatchArticles opens")
        .into_inner();
    let mut tagged = client
        .watch_articles(pb::WatchArticlesRequest {
            tag: "news".into(),
            after_sequence: 0,
        })
        .await
        .expect("a tag-filtered WatchArticles opens")
        .into_inner();

    // A gRPC-web watch over HTTP/1.1, framed by hand.
    let tcp = TcpStream::connect(server.addr).await.expect("TCP connects");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("HTTP/1.1 handshake");
    let connection = tokio::spawn(connection);
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri("/article.v1.ArticleService/WatchArticles")
        .header(http::header::HOST, server.addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::<Bytes>::new(frame(
            &pb::WatchArticlesRequest::default(),
        )))
        .expect("request builds");
    // Response headers go out once the subscription is live.
    let web_response = tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .expect("gRPC-web watch headers arrive in time")
        .expect("gRPC-web watch gets a response");
    assert_eq!(web_response.status(), http::StatusCode::OK);
    wait_for("three open watch streams", || server.watchers() == 3).await;

    let task = server.begin_shutdown();
    for (name, stream) in [("unfiltered", &mut all), ("tag-filtered", &mut tagged)] {
        let end = tokio::time::timeout(TIMEOUT, stream.message())
            .await
            .unwrap_or_else(|_| panic!("the {name} watch ends in time"));
        match end {
            Err(status) => assert_eq!(
                status.code(),
                Code::Unavailable,
                "the {name} watch ends with UNAVAILABLE: {status:?}"
            ),
            Ok(other) => panic!("the {name} watch should end with UNAVAILABLE, got {other:?}"),
        }
    }
    let body = tokio::time::timeout(TIMEOUT, web_response.into_body().collect())
        .await
        .expect("the gRPC-web watch ends in time")
        .expect("the gRPC-web watch body is read to its end");
    let body = parse_web_body(body.to_bytes());
    assert!(body.messages.is_empty(), "no events were expected");
    assert_eq!(
        body.trailer("grpc-status"),
        Some("14"),
        "the gRPC-web watch ends with UNAVAILABLE (14): {:?}",
        body.trailers
    );

    drop((all, tagged, client, sender));
    connection.abort();
    task.finish().await;
}

/// The drain bound the drain test sets: far below the default, so that a
/// server ignoring the setting fails the test.
const DRAIN_SECS: u64 = 1;
/// How much longer than the drain bound the server may take to stop.
const STOP_SLACK: Duration = Duration::from_secs(3);

#[tokio::test]
async fn drain_is_bounded_by_drain_secs() {
    let drain = Duration::from_secs(DRAIN_SECS);
    let default = Settings::try_load_from(["article-server"])
        .expect("default settings parse")
        .runtime
        .drain_timeout();
    assert!(
        drain + STOP_SLACK < default,
        "precondition: the bound ({drain:?} + {STOP_SLACK:?}) tells {DRAIN_SECS} s from the default {default:?}"
    );
    let mut server = start_example_with(|s| s.runtime.drain_secs = DRAIN_SECS).await;
    // An Echo that would outlast the whole test's time budget.
    let delay = u32::try_from(TIMEOUT.as_millis() * 3).expect("delay fits u32");
    let call = echo_in_flight(server.channel().await, "too slow", delay).await;

    let took = server.begin_shutdown().finish().await;
    // The drain waited for the call, and no longer than the setting allows.
    assert!(
        took >= drain - Duration::from_millis(50),
        "the drain waits up to {drain:?} for the in-flight call, but the server stopped after {took:?}"
    );
    assert!(
        took < drain + STOP_SLACK,
        "the server stops within drain_secs ({drain:?}) plus {STOP_SLACK:?}, not after {took:?} (the default is {default:?})"
    );
    // The call did not outlive the server: its connection was cut, so it
    // ends now with an error (not at the client's own 30 s timeout).
    let outcome = tokio::time::timeout(STOP_SLACK, call)
        .await
        .expect("the Echo still running at the end of the drain is cut off at once")
        .expect("the Echo task joins");
    assert!(
        outcome.is_err(),
        "an Echo longer than the drain cannot complete OK: {outcome:?}"
    );
}
