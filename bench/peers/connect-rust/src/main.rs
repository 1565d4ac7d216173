//! `connect-rust-peer`: the closest Rust peer of `cargo xtask bench`. The
//! crate `connectrpc` (with its own code generation from the repository's
//! `article.proto`) serving `article.v1.ArticleService/ListArticles` from
//! memory, with gRPC (h2c), gRPC-web (HTTP/1.1) and Connect on one port.
//!
//! The page is the one the benchmark captured from article-server
//! (`grpc.body` in `--responses DIR`, one framed message, the same file
//! `limit-server` and `tonic-floor` read). It is decoded into connect-rust's
//! own (buffa) message type and encoded once at start: every call answers
//! those bytes by reference count, as article-server answers a cached page
//! (kept encoded), so the two are compared doing the same work per call.
//! `article-bench` checks that the answered message is byte-identical to
//! the reference, which also checks that buffa's encoding of the decoded
//! page equals prost's.
//!
//! Every other method answers UNIMPLEMENTED. Prints `listening on
//! http://HOST:PORT` once bound, as every server in the benchmark does.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use buffa::Message as _;
use clap::Parser;
use connectrpc::{
    ConnectError, InboundStream, PreEncoded, RequestContext, Response, Router, Server,
    ServiceRequest, ServiceResult, ServiceStream,
};

connectrpc::include_generated!();

use article::v1::{
    ArticleEvent, ArticleService, CreateArticleRequest, CreateArticleResponse,
    DeleteArticleRequest, DeleteArticleResponse, GetArticleRequest, GetArticleResponse,
    ImportArticlesResponse, ListArticlesRequest, ListArticlesResponse, UpdateArticleRequest,
    UpdateArticleResponse, WatchArticlesRequest,
};

#[derive(Parser)]
#[command(about = "connect-rust answering the captured ListArticles page from memory.")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory of the captured responses (`grpc.body` is used).
    #[arg(long)]
    responses: PathBuf,
}

struct Peer {
    page: PreEncoded<ListArticlesResponse>,
}

fn unimplemented<T>() -> ServiceResult<T> {
    Err(ConnectError::unimplemented(
        "connect-rust-peer answers ListArticles only",
    ))
}

// Concrete return types where the trait says `impl Encodable<..>`: clearer
// here, and nothing calls these through the trait's signature but the router.
#[allow(refining_impl_trait)]
impl ArticleService for Peer {
    async fn list_articles(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, ListArticlesRequest>,
    ) -> ServiceResult<PreEncoded<ListArticlesResponse>> {
        Response::ok(self.page.clone())
    }

    async fn get_article(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, GetArticleRequest>,
    ) -> ServiceResult<GetArticleResponse> {
        unimplemented()
    }

    async fn create_article(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, CreateArticleRequest>,
    ) -> ServiceResult<CreateArticleResponse> {
        unimplemented()
    }

    async fn update_article(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, UpdateArticleRequest>,
    ) -> ServiceResult<UpdateArticleResponse> {
        unimplemented()
    }

    async fn delete_article(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, DeleteArticleRequest>,
    ) -> ServiceResult<DeleteArticleResponse> {
        unimplemented()
    }

    async fn watch_articles(
        &self,
        _ctx: RequestContext,
        _request: ServiceRequest<'_, WatchArticlesRequest>,
    ) -> ServiceResult<ServiceStream<ArticleEvent>> {
        unimplemented()
    }

    async fn import_articles(
        &self,
        _ctx: RequestContext,
        _requests: InboundStream<CreateArticleRequest>,
    ) -> ServiceResult<ImportArticlesResponse> {
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
    let page = ListArticlesResponse::decode_from_slice(message)
        .map_err(|e| anyhow::anyhow!("decoding grpc.body: {e}"))?;
    let peer = Peer {
        page: PreEncoded::from_message(&page),
    };

    let router = Router::new().add_service(Arc::new(peer));
    let bound = Server::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", args.listen))?;
    println!("listening on http://{}", bound.local_addr()?);
    bound
        .serve(router)
        .await
        .map_err(|e| anyhow::anyhow!("serving: {e}"))?;
    Ok(())
}
