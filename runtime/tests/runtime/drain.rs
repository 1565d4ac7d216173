//! Graceful drain: health turns NOT_SERVING, new connections are refused,
//! shutdown hooks run and in-flight calls finish; a call longer than
//! `drain_timeout` is cut when the time is up, and `run_until` returns
//! then, not at the 10 s default.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use grpc_runtime::{Metrics, RuntimeBuilder, configure_service};
use http_body_util::BodyExt as _;
use testkit::{
    TIMEOUT,
    echo::{
        Echo, EchoServiceClient, EchoServiceServer, SERVICE_NAME,
        pb::{CountRequest, EchoRequest, EchoResponse},
    },
    grpc_web::{self, BINARY, TRAILER_FLAG, frame},
    prometheus, raw, wait_for, wait_until,
};
use tokio::sync::Semaphore;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::{Arrivals, COUNT, ECHO, arrived, open, serve, spawn, web};

/// `builder` with an Echo service that reports each request's arrival.
fn with_watched_echo(builder: RuntimeBuilder) -> (RuntimeBuilder, Arc<Semaphore>) {
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    let (echo, arrivals) = Arrivals::new(echo);
    (builder.add_service(echo), arrivals)
}

fn echo(message: &str, delay_ms: u32) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        delay_ms,
    }
}

/// Waits (bounded) until a new TCP connection to `addr` is refused.
async fn wait_until_refused(addr: std::net::SocketAddr) {
    wait_until("new connections to be refused", TIMEOUT, async || {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => Ok(()),
            Ok(_) => Err("a connection was accepted".to_owned()),
        }
    })
    .await;
}

#[tokio::test]
async fn in_flight_calls_finish_while_new_connections_are_refused_and_hooks_run() {
    let hooks_run = Arc::new(AtomicUsize::new(0));
    let hooks = hooks_run.clone();
    let (builder, arrivals) = with_watched_echo(RuntimeBuilder::new().on_shutdown(move || {
        hooks.fetch_add(1, Ordering::SeqCst);
    }));
    let mut server = spawn(builder).await;
    let addr = server.addr;

    // One call of each protocol, both in the handler when draining starts.
    let mut client = EchoServiceClient::new(server.channel().await);
    let native = tokio::spawn(async move { client.echo(echo("native", 1500)).await });
    let web_call = tokio::spawn(raw::http1(
        addr,
        web(ECHO, BINARY, frame(&echo("gRPC-web", 1500))),
    ));
    arrived(&arrivals, 2).await;

    let shutdown = server.begin_shutdown();
    assert!(
        !native.is_finished() && !web_call.is_finished(),
        "precondition: both calls are still running when the drain begins"
    );
    wait_until_refused(addr).await;
    assert_eq!(hooks_run.load(Ordering::SeqCst), 1, "the hook ran once");

    let native = tokio::time::timeout(TIMEOUT, native)
        .await
        .expect("the native call answers in time")
        .unwrap()
        .expect("the in-flight native call completes OK");
    assert_eq!(native.into_inner().message, "native");
    let web_reply = tokio::time::timeout(TIMEOUT, web_call)
        .await
        .expect("the gRPC-web call answers in time")
        .unwrap();
    let body = web_reply.web_body();
    assert_eq!(body.trailer("grpc-status"), Some("0"), "{body:?}");
    assert_eq!(body.message::<EchoResponse>(0).message, "gRPC-web");

    shutdown.finish().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed after the drain"
    );
}

#[tokio::test]
async fn health_turns_not_serving_for_every_service_when_draining_starts() {
    let mut server = serve(RuntimeBuilder::new()).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut watches = Vec::new();
    for service in ["", SERVICE_NAME] {
        let mut watch = health
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health Watch of {service:?} opens: {e}"))
            .into_inner();
        let first = tokio::time::timeout(TIMEOUT, watch.message())
            .await
            .expect("the first status arrives in time")
            .expect("the watch is healthy")
            .expect("a status");
        assert_eq!(first.status, ServingStatus::Serving as i32, "{service:?}");
        watches.push((service, watch));
    }

    let shutdown = server.begin_shutdown();
    for (service, watch) in &mut watches {
        let next = tokio::time::timeout(TIMEOUT, watch.message())
            .await
            .expect("the change arrives in time")
            .expect("the watch is healthy while draining")
            .expect("a status");
        assert_eq!(
            next.status,
            ServingStatus::NotServing as i32,
            "{service:?} turns NOT_SERVING"
        );
    }
    // The watches are calls in flight: end them so the drain can finish.
    drop((watches, health));
    shutdown.finish().await;
}

#[tokio::test]
async fn calls_longer_than_drain_timeout_are_cut_and_run_until_returns_when_it_is_up() {
    const DRAIN: Duration = Duration::from_secs(1);
    let metrics = Metrics::new();
    let (builder, arrivals) = with_watched_echo(
        RuntimeBuilder::new()
            .drain_timeout(DRAIN)
            .metrics(metrics.clone()),
    );
    let mut server = spawn(builder).await;

    // A unary call far longer than the test, in the handler ...
    let mut client = EchoServiceClient::new(server.channel().await);
    let delay = u32::try_from(TIMEOUT.as_millis() * 2).unwrap();
    let unary = tokio::spawn(async move { client.echo(echo("too slow", delay)).await });
    arrived(&arrivals, 1).await;
    // ... and an endless gRPC-web stream over HTTP/1.1, first message read.
    let count = frame(&CountRequest {
        after: 0,
        up_to: 0,
        interval_ms: 50,
    });
    let mut stream = open(server.addr, web(COUNT, BINARY, count), false).await;
    let first = tokio::time::timeout(TIMEOUT, stream.frame())
        .await
        .expect("the first message arrives in time");
    assert!(first.is_some(), "the stream is open");
    arrived(&arrivals, 1).await;

    let took = server.begin_shutdown().finish().await;
    assert!(
        took >= DRAIN,
        "the drain waited for the calls in flight, but stopped after {took:?}"
    );
    assert!(
        took < DRAIN * 2,
        "run_until returns when the {DRAIN:?} drain is up (not at the 10 s default), took {took:?}"
    );

    // The client side: once `run_until` has returned, both calls end at
    // once (well within another DRAIN; the client's own deadline is 30 s),
    // the unary call failed and the stream ended without trailers.
    let outcome = tokio::time::timeout(DRAIN, unary)
        .await
        .expect("the cut unary call ends at once")
        .unwrap();
    let status = outcome.expect_err("a call longer than the drain cannot complete OK");
    assert_ne!(status.code(), Code::Ok);
    let (rest, ended_with) = tokio::time::timeout(DRAIN, async {
        let mut rest = bytes::BytesMut::new();
        loop {
            match stream.frame().await {
                Some(Ok(chunk)) => {
                    if let Ok(data) = chunk.into_data() {
                        rest.extend_from_slice(&data);
                    }
                }
                Some(Err(err)) => break (rest, format!("error: {err}")),
                None => break (rest, "end".to_owned()),
            }
        }
    })
    .await
    .expect("the cut stream ends at once");
    let mut rest = rest;
    let frames = grpc_web::take_frames(&mut rest);
    assert!(
        frames.iter().all(|(flag, _)| flag & TRAILER_FLAG == 0),
        "the cut stream has no trailers (ended with {ended_with})"
    );

    // The server side: both handlers were dropped, not left running.
    wait_for("both cut calls to be counted as CANCELLED", || {
        let page = metrics.render();
        prometheus::total(
            &page,
            "grpc_server_handled_total",
            &[("grpc_code", "CANCELLED")],
        ) == 2.0
    })
    .await;
}

#[tokio::test]
async fn an_idle_server_stops_at_once_not_after_the_drain_timeout() {
    let mut server = serve(RuntimeBuilder::new()).await;
    // An idle keep-alive connection of each HTTP version.
    let mut client = EchoServiceClient::new(server.channel().await);
    client.echo(echo("once", 0)).await.expect("Echo answers");
    let idle_http1 = tokio::net::TcpStream::connect(server.addr).await.unwrap();

    let took = server.begin_shutdown().finish().await;
    assert!(
        took < Duration::from_secs(2),
        "idle connections do not hold the 10 s drain, took {took:?}"
    );
    drop((client, idle_http1));
}

#[tokio::test]
async fn dropping_the_serving_future_closes_its_connections() {
    let (builder, arrivals) = with_watched_echo(RuntimeBuilder::new());
    let runtime = builder.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = runtime.url();
    let serving = tokio::spawn(runtime.run_until(std::future::pending()));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .expect("a channel connects");
    let mut client = EchoServiceClient::new(channel);
    let unary = tokio::spawn(async move { client.echo(echo("never answered", 60_000)).await });
    arrived(&arrivals, 1).await;

    serving.abort();
    let _ = serving.await;
    let outcome = tokio::time::timeout(TIMEOUT, unary)
        .await
        .expect("the call ends in time")
        .unwrap();
    let status = outcome.expect_err("the call's connection was closed, not answered");
    assert_ne!(status.code(), Code::Ok);
}
