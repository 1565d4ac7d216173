//! gRPC and gRPC-web on the wire: the 5-byte message frames, and single
//! raw calls over hyper that return the exact response bytes (headers,
//! body, trailers), used to capture the reference answer and to check
//! each system before it is loaded.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

/// Path of the benchmarked method.
pub const LIST_PATH: &str = "/article.v1.ArticleService/ListArticles";
/// Path of the streaming method.
pub const WATCH_PATH: &str = "/article.v1.ArticleService/WatchArticles";

/// The framing is the test kit's, so the benchmark sends the bytes the
/// tests check.
pub use testkit::grpc_web::{TRAILER_FLAG, frame, take_frames};

/// The request every unary run sends: `ListArticles { page_size: 20 }`, framed.
pub fn list_request_body() -> Bytes {
    frame(&proto::v1::ListArticlesRequest {
        page_size: 20,
        ..Default::default()
    })
}

/// One response, byte for byte.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// The `grpc-status` from the trailers, the headers (trailers-only
    /// answer) or a gRPC-web trailer frame.
    pub fn grpc_status(&self) -> Option<i32> {
        let parse = |map: &HeaderMap| -> Option<i32> {
            map.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
        };
        if let Some(code) = self.trailers.as_ref().and_then(parse) {
            return Some(code);
        }
        if let Some(code) = parse(&self.headers) {
            return Some(code);
        }
        let mut buf = BytesMut::from(&self.body[..]);
        take_frames(&mut buf)
            .into_iter()
            .find(|(flag, _)| flag & TRAILER_FLAG != 0)
            .and_then(|(_, block)| {
                String::from_utf8_lossy(&block).lines().find_map(|line| {
                    let (k, v) = line.split_once(':')?;
                    (k.trim().eq_ignore_ascii_case("grpc-status"))
                        .then(|| v.trim().parse().ok())
                        .flatten()
                })
            })
    }

    /// The payloads of the message (non-trailer) frames of the body.
    pub fn messages(&self) -> Vec<Bytes> {
        let mut buf = BytesMut::from(&self.body[..]);
        take_frames(&mut buf)
            .into_iter()
            .filter(|(flag, _)| flag & TRAILER_FLAG == 0)
            .map(|(_, m)| m)
            .collect()
    }
}

/// Which wire protocol a raw call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// gRPC-web, binary, over HTTP/1.1.
    GrpcWeb,
    /// Native gRPC over h2c (prior knowledge).
    Grpc,
}

/// Makes one call over a fresh connection and returns the whole answer.
pub async fn call(
    addr: SocketAddr,
    wire: Wire,
    path: &str,
    body: Bytes,
) -> anyhow::Result<RawResponse> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    let response = match wire {
        Wire::GrpcWeb => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            // Origin form (`POST /path`), as a client talking to the server
            // itself sends it; hyper's HTTP/1.1 client writes the URI as
            // given, and not every server accepts the absolute form (Node's
            // connect adapter answers it 404).
            let req = Request::post(path)
                .header(header::HOST, addr.to_string())
                .header(header::CONTENT_TYPE, "application/grpc-web+proto")
                .header("x-grpc-web", "1")
                .body(Full::new(body))?;
            sender.send_request(req).await?
        }
        Wire::Grpc => {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            let req = Request::post(format!("http://{addr}{path}"))
                .header(header::CONTENT_TYPE, "application/grpc")
                .header(header::TE, "trailers")
                .body(Full::new(body))?;
            sender.send_request(req).await?
        }
    };
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.context("reading the response body")?;
    let trailers = collected.trailers().cloned();
    Ok(RawResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// Calls ListArticles the benchmark's way and checks the answer is OK and
/// carries the same message as `expected` (the encoded
/// ListArticlesResponse). Returns the answer and whether the message bytes
/// are identical, not only equal after decoding.
pub async fn check_list(
    addr: SocketAddr,
    wire: Wire,
    expected: &[u8],
) -> anyhow::Result<(RawResponse, bool)> {
    let response = call(addr, wire, LIST_PATH, list_request_body()).await?;
    if response.status != StatusCode::OK {
        bail!("{wire:?} ListArticles answered HTTP {}", response.status);
    }
    match response.grpc_status() {
        Some(0) => {}
        other => bail!("{wire:?} ListArticles answered grpc-status {other:?}"),
    }
    let messages = response.messages();
    let [message] = messages.as_slice() else {
        bail!("{wire:?} ListArticles answered {} messages", messages.len());
    };
    if message[..] == *expected {
        return Ok((response, true));
    }
    let got = proto::v1::ListArticlesResponse::decode(message.clone())?;
    let want = proto::v1::ListArticlesResponse::decode(expected)?;
    if got != want {
        bail!("{wire:?} ListArticles: not the reference response");
    }
    Ok((response, false))
}
