//! The application's say in health: `Health::set_serving(false)` turns
//! gRPC health (`""` and every service) NOT_SERVING and `/healthz` 503, and
//! `true` brings both back; once draining starts, health stays NOT_SERVING
//! whatever the application says.

use grpc_runtime::{RuntimeBuilder, configure_service};
use testkit::{
    SpawnedServer, TIMEOUT,
    echo::{Echo, EchoServiceServer, SERVICE_NAME},
    raw,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn statuses(server: &SpawnedServer) -> (Vec<i32>, http::StatusCode) {
    let mut health = HealthClient::new(server.channel().await);
    let mut grpc = Vec::new();
    for service in ["", SERVICE_NAME] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health Check of {service:?}: {e}"));
        grpc.push(reply.into_inner().status);
    }
    let healthz = tokio::time::timeout(TIMEOUT, raw::http1(server.addr, raw::get("/healthz")))
        .await
        .expect("/healthz answers in time");
    (grpc, healthz.status)
}

#[tokio::test]
async fn set_serving_drives_grpc_health_and_healthz_until_draining() {
    let builder = RuntimeBuilder::new();
    let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
    let runtime = builder
        .add_service(echo)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let health = runtime.health();
    let mut server = SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| {
        runtime.run_until(stop)
    });
    let serving = ServingStatus::Serving as i32;
    let not_serving = ServingStatus::NotServing as i32;

    assert!(health.is_serving());
    assert_eq!(
        statuses(&server).await,
        (vec![serving, serving], http::StatusCode::OK)
    );

    health.set_serving(false).await;
    assert!(!health.is_serving());
    assert_eq!(
        statuses(&server).await,
        (
            vec![not_serving, not_serving],
            http::StatusCode::SERVICE_UNAVAILABLE
        )
    );

    health.set_serving(true).await;
    assert_eq!(
        statuses(&server).await,
        (vec![serving, serving], http::StatusCode::OK)
    );

    let shutdown = server.begin_shutdown();
    testkit::wait_until("health to turn NOT_SERVING", TIMEOUT, async || {
        if health.is_serving() {
            Err("still serving".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    health.set_serving(true).await;
    assert!(!health.is_serving(), "a drain is not undone");
    shutdown.finish().await;
}
