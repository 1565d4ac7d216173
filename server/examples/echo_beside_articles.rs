//! Mounts a user-defined tonic service beside ArticleService on the same
//! port, with everything the runtime adds (gRPC-web, CORS, request ids,
//! health, reflection, limits, gzip, metrics, graceful drain).
//!
//! Run: `cargo run -p article-server --example echo_beside_articles`, then
//! `grpcurl -plaintext -d '{"message":"hi"}' 127.0.0.1:PORT example.v1.EchoService/Echo`.

use std::time::Duration;

use article_server::{Application, Settings, configure_service};
use clap::Parser as _;
use proto::example::v1::{
    EchoRequest, EchoResponse,
    echo_service_server::{EchoService, EchoServiceServer},
};
use tonic::{Request, Response, Status};

/// The user-defined service: answers with the message it got.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let EchoRequest { message, delay_ms } = request.into_inner();
        tokio::time::sleep(Duration::from_millis(u64::from(delay_ms))).await;
        Ok(Response::new(EchoResponse { message }))
    }
}

/// The article application plus the echo service, bound but not yet serving.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Application::build_with(settings, |runtime| {
        // gzip and the message limit, as for ArticleService.
        let echo = configure_service!(EchoServiceServer::new(Echo), runtime.service_settings());
        runtime
            .add_service(echo)
            .file_descriptor_set(proto::example::FILE_DESCRIPTOR_SET)
    })
    .await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = build(Settings::parse()).await?;
    println!("listening on {}", app.url());
    app.run_until_stopped().await
}
