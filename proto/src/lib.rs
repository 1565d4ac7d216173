//! The `article.v1` API as Rust types and tonic code, shared by the server,
//! native clients and the browser app.
//!
//! Features: `server` adds the `ArticleService` server trait (native only);
//! `transport` adds `ArticleServiceClient::connect` over tonic's native
//! channel. With neither (the wasm32 build) the client is generic over any
//! `GrpcService`, e.g. `tonic_web_wasm_client::Client`.

#![allow(clippy::doc_markdown)]

/// Generated from `proto/article/v1/article.proto`.
pub mod article {
    pub mod v1 {
        tonic::include_proto!("article.v1");
    }
}

pub use article::v1;

pub mod codec;

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/article_descriptor.bin"));

/// Fully-qualified service name, as used in paths and health checks.
pub const SERVICE_NAME: &str = "article.v1.ArticleService";

/// Response header of `WatchArticles`: the sequence live delivery starts
/// after, so a client that sees no event before its stream drops can still
/// resume without a gap.
pub const WATCH_SEQUENCE_HEADER: &str = "x-watch-sequence";

/// The canonical name of a gRPC status code, as the gRPC spec spells it
/// (`NOT_FOUND`, `INVALID_ARGUMENT`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
