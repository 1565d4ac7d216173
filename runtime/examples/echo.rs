//! A program that mounts only its own service on the runtime: an
//! `EchoService` implemented here, as an application would implement its
//! generated trait, with the runtime's flags flattened into its own.
//!
//! ```text
//! cargo run -p grpc-runtime --features cli --example echo -- --listen 127.0.0.1:0 --prefix "you said: "
//! grpcurl -plaintext -d '{"message":"hi"}' 127.0.0.1:PORT example.v1.EchoService/Echo
//! ```
//!
//! Every runtime flag also reads an `ECHO_*` environment variable
//! (`ECHO_LISTEN`, `ECHO_ALLOW_ORIGINS`, ...). The generated code comes from
//! the test kit's `example.v1` protos, standing in for your own.

use std::{pin::Pin, time::Duration};

use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use futures::Stream;
use grpc_runtime::{Runtime, RuntimeArgs, RuntimeBuilder, configure_service, shutdown_signal};
use testkit::echo::{
    EchoService, EchoServiceServer, FILE_DESCRIPTOR_SET,
    pb::{CountRequest, CountResponse, EchoRequest, EchoResponse},
};
use tonic::{Request, Response, Status};

/// The program's flags: the runtime's, and one of its own.
#[derive(Debug, Parser)]
#[command(name = "echo", about = "An echo service on the grpc-runtime")]
pub struct Settings {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Put before every echoed message.
    #[arg(long, env = "ECHO_PREFIX", default_value = "")]
    pub prefix: String,
}

impl Settings {
    /// Parses `args` (program name first), the runtime's flags with `ECHO_*`
    /// environment variables.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = RuntimeArgs::with_env_prefix(Self::command(), "ECHO");
        Self::from_arg_matches(&command.try_get_matches_from(args)?)
    }
}

/// The service: echoes with a prefix, counts on request.
#[derive(Debug)]
pub struct Echoes {
    prefix: String,
}

#[tonic::async_trait]
impl EchoService for Echoes {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let EchoRequest { message, delay_ms } = request.into_inner();
        tokio::time::sleep(Duration::from_millis(delay_ms.into())).await;
        Ok(Response::new(EchoResponse {
            message: format!("{}{message}", self.prefix),
        }))
    }

    type CountStream = Pin<Box<dyn Stream<Item = Result<CountResponse, Status>> + Send>>;

    async fn count(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        let CountRequest {
            after,
            up_to,
            interval_ms,
        } = request.into_inner();
        if up_to != 0 && up_to <= after {
            return Err(Status::invalid_argument("up_to must be above after"));
        }
        let interval = Duration::from_millis(interval_ms.into());
        let numbers = futures::stream::unfold(after, move |last| async move {
            if up_to != 0 && last >= up_to {
                return None;
            }
            if last > after {
                tokio::time::sleep(interval).await;
            }
            Some((Ok(CountResponse { number: last + 1 }), last + 1))
        });
        Ok(Response::new(Box::pin(numbers)))
    }
}

/// The runtime with the service mounted, bound but not yet serving.
pub async fn build(settings: Settings) -> anyhow::Result<Runtime> {
    let builder = RuntimeBuilder::new().configure(&settings.runtime);
    // gzip both ways and the runtime's message limit.
    let echo = configure_service!(
        EchoServiceServer::new(Echoes {
            prefix: settings.prefix
        }),
        builder.service_settings()
    );
    builder
        .add_service(echo)
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .bind(settings.runtime.listen)
        .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; stdout carries the listening line.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let runtime = build(settings).await?;
    println!("listening on {}", runtime.url());
    runtime.run_until(shutdown_signal()).await
}
