//! A native client for `article.v1.ArticleService`, shared by the `article`
//! command-line tool and any Rust program.
//!
//! [`ArticleClient`] wraps the generated `ArticleServiceClient` (from the
//! `proto` crate; nothing generated is copied) over gRPC (tonic's HTTP/2
//! channel) or gRPC-web (tonic-web's client layer over HTTP/1.1), with TLS
//! and a custom CA, gzip, a per-call deadline, bearer token and extra
//! metadata through [`MetadataInterceptor`], and round-robin balancing over
//! several endpoints with failover.

pub mod input;
pub mod render;
pub mod retry;
pub mod transport;

pub use retry::Backoff;
pub use transport::{ArticleClient, ClientConfig, MetadataInterceptor, Protocol};
