//! `example.v1.EchoService`, a small user-defined service for the runtime's
//! examples and tests: `Echo` answers with its message (after an optional
//! delay, to have calls in flight during a drain) and `Count` streams
//! numbers (for streaming, cancellation and drain tests).

use std::{pin::Pin, time::Duration};

use futures::Stream;
use tonic::{Request, Response, Status};

/// The generated types, server and client.
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("example.v1");
}

pub use pb::{
    echo_service_client::EchoServiceClient,
    echo_service_server::{EchoService, EchoServiceServer},
};

/// Encoded `FileDescriptorSet` of `example.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/echo_descriptor.bin"));

/// Fully-qualified service name, as in paths and health checks.
pub const SERVICE_NAME: &str = "example.v1.EchoService";

/// The service: stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        let pb::EchoRequest { message, delay_ms } = request.into_inner();
        tokio::time::sleep(Duration::from_millis(u64::from(delay_ms))).await;
        Ok(Response::new(pb::EchoResponse { message }))
    }

    type CountStream = Pin<Box<dyn Stream<Item = Result<pb::CountResponse, Status>> + Send>>;

    async fn count(
        &self,
        request: Request<pb::CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        let pb::CountRequest {
            after,
            up_to,
            interval_ms,
        } = request.into_inner();
        let interval = Duration::from_millis(u64::from(interval_ms));
        let stream = futures::stream::unfold(after, move |last| async move {
            if up_to != 0 && last >= up_to {
                return None;
            }
            if last > after {
                tokio::time::sleep(interval).await;
            }
            let number = last + 1;
            Some((Ok(pb::CountResponse { number }), number))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
