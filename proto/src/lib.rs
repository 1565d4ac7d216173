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

/// The example service that shows how a user-defined service is mounted
/// beside ArticleService (see `server/examples/echo_beside_articles.rs`).
pub mod example {
    pub mod v1 {
        tonic::include_proto!("example.v1");
    }

    /// Encoded `FileDescriptorSet` of the example API.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/echo_descriptor.bin"));
}
