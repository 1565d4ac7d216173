//! Metrics on a socket: `/metrics` renders the runtime's own registry,
//! with exact counts; metrics the application registers on a shared
//! registry appear on the same page; two runtimes in one process do not
//! share counts.

use grpc_runtime::{Metrics, RuntimeBuilder};
use testkit::{
    echo::{EchoServiceClient, pb::EchoRequest},
    prometheus,
    raw::{self, get},
};

use crate::common::serve;

async fn echo_calls(server: &testkit::SpawnedServer, n: usize) {
    let mut client = EchoServiceClient::new(server.channel().await);
    for i in 0..n {
        client
            .echo(EchoRequest {
                message: format!("call {i}"),
                delay_ms: 0,
            })
            .await
            .expect("Echo answers");
    }
}

async fn page(server: &testkit::SpawnedServer) -> String {
    let reply = raw::http1(server.addr, get("/metrics")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    String::from_utf8(reply.body.to_vec()).expect("the page is text")
}

fn echo_ok(page: &str) -> f64 {
    prometheus::total(
        page,
        "grpc_server_handled_total",
        &[
            ("grpc_service", "example.v1.EchoService"),
            ("grpc_method", "Echo"),
            ("grpc_code", "OK"),
        ],
    )
}

#[tokio::test]
async fn metrics_the_application_registers_appear_beside_the_runtimes() {
    let metrics = Metrics::new();
    let jobs = metrics.counter("app_jobs_total", &[("kind", "import")]);
    let queue = metrics.gauge("app_queue_depth");
    let server = serve(RuntimeBuilder::new().metrics(metrics.clone())).await;

    jobs.increment(2);
    queue.set(5.0);
    metrics.record(|| metrics::counter!("app_macro_calls_total").increment(1));
    echo_calls(&server, 1).await;

    let page = page(&server).await;
    assert_eq!(
        prometheus::total(&page, "app_jobs_total", &[("kind", "import")]),
        2.0,
        "{page}"
    );
    assert_eq!(
        prometheus::total(&page, "app_queue_depth", &[]),
        5.0,
        "{page}"
    );
    assert_eq!(
        prometheus::total(&page, "app_macro_calls_total", &[]),
        1.0,
        "{page}"
    );
    assert_eq!(echo_ok(&page), 1.0, "{page}");
    server.shutdown().await;
}

#[tokio::test]
async fn two_runtimes_in_one_process_count_only_their_own_calls() {
    let first = serve(RuntimeBuilder::new()).await;
    let second = serve(RuntimeBuilder::new()).await;
    echo_calls(&first, 2).await;
    echo_calls(&second, 1).await;
    assert_eq!(echo_ok(&page(&first).await), 2.0);
    assert_eq!(echo_ok(&page(&second).await), 1.0);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn calls_to_paths_that_do_not_exist_add_no_series_per_path() {
    let server = serve(RuntimeBuilder::new()).await;
    let mut calls = 0;
    for i in 0..50 {
        let request = http::Request::post(format!("/made.up.Service{i}/Method{i}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0,
            ])))
            .expect("valid request");
        let reply = raw::h2c(server.addr, request).await;
        assert_eq!(reply.grpc_code(), Some(tonic::Code::Unimplemented));
        calls += 1;
    }
    let page = page(&server).await;
    assert!(
        !page.contains("made.up.Service"),
        "no series is named after a path that does not exist:\n{page}"
    );
    assert_eq!(
        prometheus::total(
            &page,
            "grpc_server_handled_total",
            &[
                ("grpc_service", "unknown"),
                ("grpc_method", "unknown"),
                ("grpc_code", "UNIMPLEMENTED"),
            ],
        ),
        f64::from(calls),
        "every such call is counted once, under one label set"
    );
}
