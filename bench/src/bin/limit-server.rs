//! `limit-server`: the physical limit. A minimal hyper server that answers
//! every gRPC-web request (HTTP/1.1) and every gRPC request (h2c) with the
//! response the real server gave to the benchmark request, replayed byte
//! for byte (headers, message frames, trailers) — no decoding, no storage,
//! no routing. `article-bench` captures those responses into `--responses`.
//!
//! Files read from `--responses DIR`: `web.headers`, `web.body` (message
//! and trailer frames), `grpc.headers`, `grpc.body`, `grpc.trailers`.
//! Header files hold one `name: value` per line.

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use clap::Parser;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use testkit::grpc_web::{frame_bytes, take_frames};

#[derive(Parser)]
#[command(about = "Replays the captured ListArticles responses: the physical limit.")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory of the captured responses.
    #[arg(long)]
    responses: PathBuf,
}

struct Canned {
    web_headers: HeaderMap,
    /// The gRPC-web body split at frame boundaries, as the real server
    /// writes it (one chunk per frame).
    web_chunks: Vec<Bytes>,
    grpc_headers: HeaderMap,
    grpc_body: Bytes,
    grpc_trailers: HeaderMap,
}

fn read_headers(path: PathBuf) -> anyhow::Result<HeaderMap> {
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut map = HeaderMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("{}: bad line {line:?}", path.display()))?;
        map.append(
            HeaderName::from_bytes(name.trim().as_bytes())?,
            HeaderValue::from_str(value.trim())?,
        );
    }
    Ok(map)
}

impl Canned {
    fn load(dir: PathBuf) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<Bytes> {
            let path = dir.join(name);
            Ok(std::fs::read(&path)
                .with_context(|| format!("{}", path.display()))?
                .into())
        };
        let web_body = read("web.body")?;
        let mut buf = BytesMut::from(&web_body[..]);
        let web_chunks = take_frames(&mut buf)
            .into_iter()
            .map(|(flag, payload)| frame_bytes(flag, &payload))
            .collect();
        Ok(Self {
            web_headers: read_headers(dir.join("web.headers"))?,
            web_chunks,
            grpc_headers: read_headers(dir.join("grpc.headers"))?,
            grpc_body: read("grpc.body")?,
            grpc_trailers: read_headers(dir.join("grpc.trailers"))?,
        })
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(canned: Arc<Canned>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Read the request to its end, as any server must; never decode it.
    let _ = req.into_body().collect().await;
    let (headers, frames): (&HeaderMap, Vec<Frame<Bytes>>) =
        if content_type.starts_with("application/grpc-web") {
            let frames = canned.web_chunks.iter().cloned().map(Frame::data).collect();
            (&canned.web_headers, frames)
        } else if content_type.starts_with("application/grpc") {
            let frames = vec![
                Frame::data(canned.grpc_body.clone()),
                Frame::trailers(canned.grpc_trailers.clone()),
            ];
            (&canned.grpc_headers, frames)
        } else {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")).boxed());
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        };
    let body = StreamBody::new(futures::stream::iter(
        frames.into_iter().map(Ok::<_, Infallible>),
    ));
    let mut response = Response::new(body.boxed());
    *response.headers_mut() = headers.clone();
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let canned = Arc::new(Canned::load(args.responses)?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let canned = canned.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(canned.clone(), req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
