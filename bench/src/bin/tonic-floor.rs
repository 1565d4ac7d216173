//! `tonic-floor`: what tonic itself costs. A bare tonic server (no layers
//! but tonic-web, HTTP/1.1 accepted) whose ListArticles answers a clone of
//! the captured reference response: the same framework work the real
//! server does for a cached page (decode the request, clone and encode the
//! message, frame it, trailers), without our runtime (request id, CORS,
//! dispatch, size limits, logging, metrics) and without the cache lookup.
//! Between the physical limit and article-server, it shows which part of
//! the gap is tonic's and which is ours.
//!
//! Reads `grpc.body` (one framed message) from `--responses DIR`, as
//! captured by `article-bench` for `limit-server`.

use std::{net::SocketAddr, path::PathBuf, pin::Pin, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use futures::Stream;
use prost::Message as _;
use proto::v1::{self as pb, article_service_server::ArticleService};
use tonic::{Request, Response, Status, Streaming, transport::Server};

#[derive(Parser)]
#[command(about = "Bare tonic + tonic-web answering the captured ListArticles response.")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory of the captured responses (`grpc.body` is used).
    #[arg(long)]
    responses: PathBuf,
}

struct Floor {
    page: Arc<pb::ListArticlesResponse>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ArticleEvent, Status>> + Send>>;

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "tonic-floor answers ListArticles only",
    ))
}

#[tonic::async_trait]
impl ArticleService for Floor {
    async fn list_articles(
        &self,
        request: Request<pb::ListArticlesRequest>,
    ) -> Result<Response<pb::ListArticlesResponse>, Status> {
        let _ = request.into_inner();
        Ok(Response::new(self.page.as_ref().clone()))
    }

    async fn get_article(
        &self,
        _: Request<pb::GetArticleRequest>,
    ) -> Result<Response<pb::GetArticleResponse>, Status> {
        unimplemented()
    }

    async fn create_article(
        &self,
        _: Request<pb::CreateArticleRequest>,
    ) -> Result<Response<pb::CreateArticleResponse>, Status> {
        unimplemented()
    }

    async fn update_article(
        &self,
        _: Request<pb::UpdateArticleRequest>,
    ) -> Result<Response<pb::UpdateArticleResponse>, Status> {
        unimplemented()
    }

    async fn delete_article(
        &self,
        _: Request<pb::DeleteArticleRequest>,
    ) -> Result<Response<pb::DeleteArticleResponse>, Status> {
        unimplemented()
    }

    type WatchArticlesStream = EventStream;

    async fn watch_articles(
        &self,
        _: Request<pb::WatchArticlesRequest>,
    ) -> Result<Response<Self::WatchArticlesStream>, Status> {
        unimplemented()
    }

    async fn import_articles(
        &self,
        _: Request<Streaming<pb::CreateArticleRequest>>,
    ) -> Result<Response<pb::ImportArticlesResponse>, Status> {
        unimplemented()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let path = args.responses.join("grpc.body");
    let framed = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    let message = framed
        .get(5..)
        .context("grpc.body is shorter than a frame header")?;
    let page = Arc::new(pb::ListArticlesResponse::decode(message).context("decoding grpc.body")?);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(pb::article_service_server::ArticleServiceServer::new(
            Floor { page },
        ))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
