//! No hidden global side effects: the embedding program has installed its
//! own process-wide `metrics` recorder, and the runtime still counts its
//! calls exactly on its own `/metrics` (and records nothing into the
//! program's recorder).
//!
//! A binary of its own: a process can install a global recorder only once,
//! and no other test may race that.

use std::sync::OnceLock;

use grpc_runtime::{Metrics, RuntimeBuilder, configure_service};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use testkit::{
    SpawnedServer,
    echo::{Echo, EchoServiceClient, EchoServiceServer, pb::EchoRequest},
    prometheus,
    raw::{self, get},
};

/// The program's own global recorder, installed once for this process.
fn global() -> &'static PrometheusHandle {
    static GLOBAL: OnceLock<PrometheusHandle> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("nothing installed a recorder before");
        metrics::counter!("embedding_program_starts_total").increment(1);
        handle
    })
}

async fn serve(builder: RuntimeBuilder) -> SpawnedServer {
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    let runtime = builder
        .add_service(echo)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the runtime binds");
    SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| {
        runtime.run_until(stop)
    })
}

async fn three_echo_calls(server: &SpawnedServer) {
    let mut client = EchoServiceClient::new(server.channel().await);
    for i in 0..3 {
        client
            .echo(EchoRequest {
                message: format!("call {i}"),
                delay_ms: 0,
            })
            .await
            .expect("Echo answers");
    }
}

const ECHO_OK: &str = r#"grpc_server_handled_total{grpc_service="example.v1.EchoService",grpc_method="Echo",grpc_code="OK"} 3"#;

async fn metrics_page(server: &SpawnedServer) -> String {
    let reply = raw::http1(server.addr, get("/metrics")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    String::from_utf8(reply.body.to_vec()).expect("the page is text")
}

fn assert_global_recorder_untouched() {
    let page = global().render();
    assert!(
        page.contains("embedding_program_starts_total"),
        "the program's recorder works: {page}"
    );
    assert!(
        !page.contains("grpc_server"),
        "the runtime wrote nothing into the program's recorder: {page}"
    );
}

#[tokio::test]
async fn runtime_counts_its_calls_exactly_beside_the_programs_global_recorder() {
    global();
    let server = serve(RuntimeBuilder::new()).await;
    three_echo_calls(&server).await;
    let page = metrics_page(&server).await;
    assert!(
        page.lines().any(|line| line == ECHO_OK),
        "{ECHO_OK} on /metrics:\n{page}"
    );
    assert_eq!(
        prometheus::samples(&page, "grpc_server_handled_total").len(),
        1,
        "nothing else counted: {page}"
    );
    assert_global_recorder_untouched();
    server.shutdown().await;
}

#[tokio::test]
async fn a_registry_handed_to_the_runtime_counts_beside_the_programs_global_recorder() {
    global();
    let metrics = Metrics::new();
    let server = serve(RuntimeBuilder::new().metrics(metrics.clone())).await;
    three_echo_calls(&server).await;
    let page = metrics_page(&server).await;
    assert!(page.lines().any(|line| line == ECHO_OK), "{page}");
    assert!(
        metrics.render().lines().any(|line| line == ECHO_OK),
        "the handed registry is the one counted"
    );
    assert_global_recorder_untouched();
    server.shutdown().await;
}
