//! `json-gateway`: the architecture gRPC-web replaces. An axum endpoint,
//! `GET /v1/articles?page=&page_size=&query=&tag=`, that calls
//! ListArticles on the article server over native gRPC (one HTTP/2
//! connection, multiplexed) and answers JSON in the proto3 JSON mapping
//! (camelCase names, int64 as strings, RFC 3339 timestamps), as
//! grpc-gateway would. Gzip when the client accepts it, as a gateway
//! in front of browsers would (the load runs do not ask for it; the
//! bytes-on-the-wire comparison does, on both sides).

use std::{io::Write as _, net::SocketAddr};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, SecondsFormat};
use clap::Parser;
use flate2::{Compression, write::GzEncoder};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

#[derive(Parser)]
#[command(about = "A JSON gateway in front of the article server's gRPC API.")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The article server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    upstream: String,
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    page: i32,
    #[serde(default)]
    page_size: i32,
    #[serde(default)]
    query: String,
    #[serde(default)]
    tag: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArticleJson {
    id: String,
    title: String,
    content: String,
    create_time: Option<String>,
    update_time: Option<String>,
    author: String,
    tags: Vec<String>,
    version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListJson {
    articles: Vec<ArticleJson>,
    total_count: String,
}

fn rfc3339(t: Option<prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    let time = DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?;
    Some(time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl From<pb::Article> for ArticleJson {
    fn from(a: pb::Article) -> Self {
        Self {
            id: a.id.to_string(),
            title: a.title,
            content: a.content,
            create_time: rfc3339(a.create_time),
            update_time: rfc3339(a.update_time),
            author: a.author,
            tags: a.tags,
            version: a.version.to_string(),
        }
    }
}

/// A gRPC status as the HTTP status grpc-gateway would use.
struct GatewayError(tonic::Status);

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        use tonic::Code;
        let status = match self.0.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({
            "code": self.0.code() as i32,
            "message": self.0.message(),
        });
        (status, Json(body)).into_response()
    }
}

async fn list(
    State(client): State<ArticleServiceClient<Channel>>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Response, GatewayError> {
    let mut client = client;
    let page = client
        .list_articles(pb::ListArticlesRequest {
            page: p.page,
            page_size: p.page_size,
            query: p.query,
            tag: p.tag,
        })
        .await
        .map_err(GatewayError)?
        .into_inner();
    let json = serde_json::to_vec(&ListJson {
        articles: page.articles.into_iter().map(Into::into).collect(),
        total_count: page.total_count.to_string(),
    })
    .map_err(|e| GatewayError(tonic::Status::internal(e.to_string())))?;
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(&json)
            .and_then(|()| encoder.finish())
            .map(|body| (json_type, [(header::CONTENT_ENCODING, "gzip")], body).into_response())
            .map_err(|e| GatewayError(tonic::Status::internal(e.to_string())))
    } else {
        Ok((json_type, json).into_response())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = Channel::from_shared(args.upstream)?.connect().await?;
    let app = Router::new()
        .route("/v1/articles", get(list))
        .with_state(ArticleServiceClient::new(channel));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
