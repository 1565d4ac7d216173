//! The browser app lives here (Leptos CSR, built by Trunk). Until it lands,
//! this crate only proves that the generated client builds for wasm32.

pub use proto::v1::article_service_client::ArticleServiceClient;
