//! `EncodedMessage`: a handler that answers with an already-encoded
//! message sends the same response (headers, body, trailers) as one that
//! answers with the message, in every protocol, with gzip and without.

use grpc_runtime::{EncodedMessage, RuntimeBuilder, configure_service};
use prost::Message as _;
use testkit::{
    echo::{
        Echo, EchoService, EchoServiceServer,
        pb::{CountRequest, EchoRequest, EchoResponse},
    },
    grpc_web,
    raw::RawReply,
};
use tonic::{Code, Request, Response, Status};

use crate::common::{ECHO, grpc, send, web};

/// Echo, answering with its response encoded beforehand.
struct EncodedEcho;

#[tonic::async_trait]
impl EchoService for EncodedEcho {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let message = request.into_inner().message;
        Ok(EncodedMessage::encode(&EchoResponse { message }).into_response())
    }

    type CountStream = <Echo as EchoService>::CountStream;

    async fn count(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        Echo.count(request).await
    }
}

async fn app_with<S: EchoService>(service: S) -> axum::Router {
    testkit::init_logging();
    let builder = RuntimeBuilder::new();
    let echo = configure_service!(EchoServiceServer::new(service), builder.service_settings());
    builder
        .add_service(echo)
        .into_service()
        .await
        .expect("the service is assembled")
}

/// The reply without what differs between any two calls.
fn comparable(mut reply: RawReply) -> RawReply {
    reply.headers.remove("x-request-id");
    reply
}

#[tokio::test]
async fn an_encoded_answer_is_the_same_response_as_the_message_in_every_protocol() {
    let plain = app_with(Echo).await;
    let encoded = app_with(EncodedEcho).await;
    let request = EchoRequest {
        message: "compressible ".repeat(500),
        delay_ms: 0,
    };
    let body = grpc_web::frame_bytes(0, &request.encode_to_vec());
    for gzip in [false, true] {
        for (what, content_type) in [
            ("gRPC-web", Some("application/grpc-web+proto")),
            ("gRPC-web-text", Some("application/grpc-web-text")),
            ("gRPC", None),
        ] {
            let call = || {
                let mut r = match content_type {
                    Some(ct) => web(ECHO, ct, body.clone()),
                    None => grpc(ECHO, body.clone()),
                };
                if gzip {
                    r.headers_mut()
                        .insert("grpc-accept-encoding", "gzip".parse().unwrap());
                }
                r
            };
            let expected = comparable(send(&plain, call()).await);
            let got = comparable(send(&encoded, call()).await);
            assert_eq!(expected.grpc_code(), Some(Code::Ok), "{what}: {expected:?}");
            assert_eq!(
                expected.header("grpc-encoding").is_some(),
                gzip,
                "{what}: tonic compresses only when asked"
            );
            assert_eq!(got.status, expected.status, "{what}, gzip {gzip}");
            assert_eq!(got.headers, expected.headers, "{what}, gzip {gzip}");
            assert_eq!(got.body, expected.body, "{what}, gzip {gzip}");
            assert_eq!(got.trailers, expected.trailers, "{what}, gzip {gzip}");
        }
    }
}
