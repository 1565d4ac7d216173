//! Mounts a user-defined tonic service (the test kit's `EchoService`)
//! beside ArticleService on the same port, with everything the runtime
//! adds (gRPC-web, CORS, request ids, health, reflection, limits, gzip,
//! metrics, graceful drain).
//!
//! Run: `cargo run -p article-server --example echo_beside_articles -- --listen 127.0.0.1:0`,
//! then `grpcurl -plaintext -d '{"message":"hi"}' 127.0.0.1:PORT example.v1.EchoService/Echo`.

use article_server::{Application, Settings};
use grpc_runtime::configure_service;
use testkit::echo::{Echo, EchoServiceServer, FILE_DESCRIPTOR_SET};

/// The article application plus the echo service, bound but not yet serving.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Application::build_with(settings, |runtime| {
        // gzip and the message limit, as for ArticleService.
        let echo = configure_service!(EchoServiceServer::new(Echo), runtime.service_settings());
        runtime
            .add_service(echo)
            .file_descriptor_set(FILE_DESCRIPTOR_SET)
    })
    .await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = build(Settings::load()).await?;
    println!("listening on {}", app.url());
    app.run_until_stopped().await
}
