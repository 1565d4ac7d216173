//! `deploy/haproxy.cfg` with two runtimes (serving the Echo service) behind
//! it: native gRPC and HTTP/1.1 gRPC-web pass through the one port, a
//! stopped replica is retried around at once and taken out of rotation by
//! the health check, and so is one whose `/healthz` answers 503 (not
//! serving) while its port stays open, until it serves again.

use std::time::Duration;

use grpc_runtime::{Health, RuntimeBuilder, configure_service};
use testkit::{
    SpawnedServer, TIMEOUT,
    echo::{Echo, EchoServiceClient, EchoServiceServer, FILE_DESCRIPTOR_SET, pb::EchoRequest},
    grpc_web,
    haproxy::{Haproxy, deploy_config},
    raw,
};
use tonic::transport::Endpoint;

const ECHO: &str = "/example.v1.EchoService/Echo";

async fn replica() -> SpawnedServer {
    replica_with_health().await.0
}

/// A replica and the handle that sets what its `/healthz` answers.
async fn replica_with_health() -> (SpawnedServer, Health) {
    testkit::init_logging();
    let builder = RuntimeBuilder::new().drain_timeout(Duration::from_secs(1));
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    let runtime = builder
        .add_service(echo)
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the runtime binds");
    let health = runtime.health();
    let server = SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| {
        runtime.run_until(stop)
    });
    (server, health)
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        delay_ms: 0,
    }
}

/// A native gRPC call through a new connection to HAProxy.
async fn native_echo(haproxy: &Haproxy, message: &str) -> String {
    let channel = Endpoint::from_shared(haproxy.url())
        .expect("a valid endpoint")
        .timeout(TIMEOUT)
        .connect()
        .await
        .expect("HAProxy accepts h2c");
    EchoServiceClient::new(channel)
        .echo(request(message))
        .await
        .unwrap_or_else(|e| panic!("native Echo {message:?} through HAProxy: {e}"))
        .into_inner()
        .message
}

/// A gRPC-web call over HTTP/1.1 through a new connection to HAProxy.
async fn web_echo(haproxy: &Haproxy, message: &str) -> String {
    let reply = raw::http1(
        haproxy.addr(),
        grpc_web::web_request(ECHO, grpc_web::BINARY, grpc_web::frame(&request(message))),
    )
    .await;
    assert_eq!(reply.status, 200, "gRPC-web {message:?}: {reply:?}");
    let body = reply.web_body();
    assert_eq!(body.trailer("grpc-status"), Some("0"), "{reply:?}");
    body.message::<testkit::echo::pb::EchoResponse>(0).message
}

fn wait_for(haproxy: &Haproxy, server: &str, status: &str) {
    // The check polls the admin socket with std sleeps: off the runtime's
    // workers, so the replicas keep answering HAProxy's health checks.
    tokio::task::block_in_place(|| haproxy.wait_for_server(server, status, TIMEOUT))
        .unwrap_or_else(|e| panic!("{e}\n{}", haproxy.log()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_pass_through_haproxy_and_a_stopped_replica_leaves_rotation() {
    let (first, second) = (replica().await, replica().await);
    let work = tempfile::tempdir().expect("a temporary directory");
    let haproxy = Haproxy::start(&deploy_config(), work.path(), &[first.addr, second.addr])
        .unwrap_or_else(|e| panic!("HAProxy starts with deploy/haproxy.cfg: {e}"));
    wait_for(&haproxy, "r1", "UP");
    wait_for(&haproxy, "r2", "UP");

    for i in 0..4 {
        let message = format!("native {i}");
        assert_eq!(native_echo(&haproxy, &message).await, message);
        let message = format!("web {i}");
        assert_eq!(web_echo(&haproxy, &message).await, message);
    }

    second.shutdown().await;
    // Before the health check notices: a connection refused by the stopped
    // replica is retried on the other one, so no call fails.
    for i in 0..4 {
        let message = format!("retried {i}");
        assert_eq!(web_echo(&haproxy, &message).await, message);
    }
    wait_for(&haproxy, "r2", "DOWN");
    assert_eq!(
        haproxy.servers().expect("the admin socket answers"),
        [
            ("r1".to_owned(), "UP".to_owned()),
            ("r2".to_owned(), "DOWN".to_owned())
        ]
    );
    for i in 0..4 {
        let message = format!("after {i}");
        assert_eq!(native_echo(&haproxy, &message).await, message);
        assert_eq!(web_echo(&haproxy, &message).await, message);
    }
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answering_503_on_healthz_leaves_rotation_until_it_serves_again() {
    let (first, health) = replica_with_health().await;
    let (second, _) = replica_with_health().await;
    let work = tempfile::tempdir().expect("a temporary directory");
    let haproxy = Haproxy::start(&deploy_config(), work.path(), &[first.addr, second.addr])
        .unwrap_or_else(|e| panic!("HAProxy starts with deploy/haproxy.cfg: {e}"));
    wait_for(&haproxy, "r1", "UP");
    wait_for(&haproxy, "r2", "UP");

    health.set_serving(false).await;
    let healthz = raw::http1(first.addr, raw::get("/healthz")).await;
    assert_eq!(healthz.status, 503, "not serving: /healthz says so");
    wait_for(&haproxy, "r1", "DOWN");
    for i in 0..4 {
        let message = format!("while r1 is down {i}");
        assert_eq!(native_echo(&haproxy, &message).await, message);
        assert_eq!(web_echo(&haproxy, &message).await, message);
    }

    health.set_serving(true).await;
    wait_for(&haproxy, "r1", "UP");
    assert_eq!(web_echo(&haproxy, "back").await, "back");
    drop((first, second));
}
