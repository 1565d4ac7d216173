//! Raw HTTP exchanges, HTTP/1.1 and HTTP/2 over cleartext (h2c, prior
//! knowledge), each on a new connection and bounded by [`TIMEOUT`]: for
//! tests of gRPC-web, CORS, limits, bad input and plain HTTP routes.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

use crate::{
    TIMEOUT,
    grpc_web::{self, TRAILER_FLAG, WebBody},
};

/// A request as the raw exchanges send it.
pub type RawRequest = http::Request<Full<Bytes>>;

/// A completely read HTTP response.
#[derive(Debug)]
pub struct RawReply {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// HTTP trailers (native gRPC over HTTP/2; gRPC-web puts them in the body).
    pub trailers: http::HeaderMap,
}

impl RawReply {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as gRPC-web frames would be read: base64-decoded first for
    /// a `grpc-web-text` answer.
    fn binary_body(&self) -> Bytes {
        let content_type = self.header("content-type").unwrap_or("");
        if content_type.starts_with(grpc_web::TEXT) {
            grpc_web::decode_web_text(&self.body)
        } else {
            self.body.clone()
        }
    }

    /// The body's gRPC-web messages and trailers (uncompressed messages only).
    pub fn web_body(&self) -> WebBody {
        grpc_web::parse_web_body(self.binary_body())
    }

    /// The body's frames as (flag, payload), compressed ones included.
    pub fn web_frames(&self) -> Vec<(u8, Bytes)> {
        grpc_web::split_frames(self.binary_body())
    }

    /// A gRPC metadata value: from the headers (trailers-only response),
    /// the HTTP trailers, or else the gRPC-web trailers frame.
    pub fn grpc_meta(&self, name: &str) -> Option<String> {
        if let Some(value) = self.header(name) {
            return Some(value.to_owned());
        }
        if let Some(value) = self.trailers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(value.to_owned());
        }
        let (_, block) = self
            .web_frames()
            .into_iter()
            .find(|(flag, _)| flag & TRAILER_FLAG != 0)?;
        let name = name.to_ascii_lowercase();
        grpc_web::parse_trailers(&block)
            .into_iter()
            .find_map(|(field, value)| (field == name).then_some(value))
    }

    /// The call's `grpc-status`, wherever the server put it.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        let raw = self.grpc_meta("grpc-status")?;
        let code: i32 = raw.parse().expect("grpc-status is a number");
        Some(tonic::Code::from_i32(code))
    }
}

/// A GET of `path` with an empty body.
pub fn get(path: &str) -> RawRequest {
    http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

async fn read_reply<B>(response: http::Response<B>) -> RawReply
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .expect("response body reads to the end");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    RawReply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// Sends `request` on a new HTTP/1.1 connection to `addr` and reads the
/// whole response. The URI should be a path; a `host` header is added
/// unless there is one.
pub async fn http1(addr: SocketAddr, mut request: RawRequest) -> RawReply {
    let exchange = async move {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("TCP connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        if !request.headers().contains_key(http::header::HOST) {
            let host = http::HeaderValue::from_str(&addr.to_string()).expect("host header");
            request.headers_mut().insert(http::header::HOST, host);
        }
        let response = sender
            .send_request(request)
            .await
            .expect("HTTP/1.1 response");
        read_reply(response).await
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("HTTP/1.1 exchange finishes in time")
}

/// Sends `request` on a new HTTP/2 connection (h2c, prior knowledge) to
/// `addr` and reads the whole response. A path-only URI is made absolute.
pub async fn h2c(addr: SocketAddr, mut request: RawRequest) -> RawReply {
    let exchange = async move {
        if request.uri().scheme().is_none() {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *request.uri_mut() = format!("http://{addr}{path}")
                .parse()
                .expect("absolute URI");
        }
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("TCP connect");
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("HTTP/2 response");
        read_reply(response).await
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("HTTP/2 exchange finishes in time")
}
