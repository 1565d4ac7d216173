//! Mounts a user-defined tonic service (the test kit's `EchoService`)
//! beside ArticleService on the same port, with everything the runtime
//! adds (gRPC-web, CORS, request ids, health, reflection, limits, gzip,
//! metrics, graceful drain).
//!
//! The application is `testkit::article::echo_beside_articles` (in
//! `testkit/src/article.rs`): `Application::build_with` and, on the
//! runtime builder, `configure_service!` (gzip and the message limit) around
//! the generated server, `add_service` and `file_descriptor_set` (for
//! reflection). Building it there lets the black-box tests
//! (`tests/tests/api/example.rs`) run exactly this program's server.
//!
//! Run: `cargo run -p article-server --example echo_beside_articles -- --listen 127.0.0.1:0`,
//! then `grpcurl -plaintext -d '{"message":"hi"}' 127.0.0.1:PORT example.v1.EchoService/Echo`.

use article_server::Settings;
use testkit::article::echo_beside_articles;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = echo_beside_articles(Settings::load()).await?;
    println!("listening on {}", app.url());
    app.run_until_stopped().await
}
