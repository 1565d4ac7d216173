//! gRPC-web ↔ gRPC translation in front of the gRPC services: what
//! `tonic_web::GrpcWebLayer` does, for this runtime, at a lower cost per call.
//!
//! A request whose `content-type` is exactly `application/grpc-web`,
//! `application/grpc-web+proto`, `application/grpc-web-text` or
//! `application/grpc-web-text+proto` and whose method is POST is handed on
//! as gRPC: its `content-type` becomes `application/grpc`, its
//! `content-length` goes, and a text-mode body is base64-decoded as it
//! streams in (in multiples of four characters, so a chunk boundary may
//! fall anywhere). The answer's `content-type` becomes
//! `application/grpc-web+proto`, or `application/grpc-web-text+proto` when
//! the request's `accept` asks for text; its trailers become a last body
//! frame flagged `0x80` holding `name:value\r\n` lines, and in text mode
//! every body frame is base64-encoded on its own. A trailers-only answer
//! (an error before any message) keeps its status in the headers. A
//! gRPC-web content type with another method is answered 405; any other
//! request over HTTP/2 passes through untouched, over HTTP/1.x it is
//! answered 400. On the wire that is tonic-web 0.14, which
//! `tests/runtime/grpc_web.rs` checks request by request against both.
//!
//! # Why not tonic-web
//! Cost per call, measured with `bench/profile/percall.sh` (callgrind,
//! cached `ListArticles` on the article server, see `BENCHMARKS.md`).
//! tonic-web spent 1.5k instructions of its own per gRPC-web call, 1.6k
//! more on its three request header inserts (`HeaderMap::insert` grows the
//! full map hyper built; `te` and `accept-encoding` are never read by
//! tonic), and boxed both bodies once more than needed; a native gRPC call
//! paid 215 instructions to pass through it. Here the request's content
//! type is replaced in the lookup that reads it and nothing is inserted,
//! the request body is a thin wrapper that hands chunks on untouched
//! unless it decodes text (no box: the layers inside are generic over it),
//! the answer is boxed once (as the `axum::body::Body` the port needs
//! anyway), and the trailers frame is written into one buffer of the right
//! size. The whole server then spends 3.8k fewer instructions per gRPC-web
//! call (3,352 + 447 of the old 45,752: −8.3 %) and 1.0k fewer per h2c
//! call (833 + 211 of 76,509: −1.4 %).
//!
//! # Deliberate differences from tonic-web
//! * `te: trailers` and `accept-encoding: identity,deflate,gzip` are not
//!   added to the request: tonic reads neither; a service looking at its
//!   request metadata sees the client's own values.
//! * Errors of a text-mode body say `grpc-web: …` where tonic-web says
//!   `tonic-web: …` (same code and wording otherwise).
//! * An error of the underlying request body (the client went away) is
//!   passed to tonic as it is, so tonic maps it as for native gRPC (e.g.
//!   an HTTP/2 reset is CANCELLED) instead of INTERNAL.
//!
//! # Limitations
//! As with any gRPC-web server: clients can make unary and
//! server-streaming calls only, and compressed (`grpc-encoding`) messages
//! pass through untouched, as in gRPC.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tower::{Layer, Service};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Padded output, and input with or without padding, as gRPC-web clients
/// send either.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The flag of the frame that carries the trailers in the body.
const TRAILERS_FLAG: u8 = 0x80;

/// Applies [`GrpcWeb`] to a service.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GrpcWebLayer;

impl<S> Layer<S> for GrpcWebLayer {
    type Service = GrpcWeb<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcWeb { inner }
    }
}

/// Translates gRPC-web calls to gRPC for `inner` and its answers back.
#[derive(Clone, Debug)]
pub(crate) struct GrpcWeb<S> {
    inner: S,
}

/// What a request is, by its content type, method and version.
enum Kind {
    /// gRPC-web: whether the request body is text, whether the answer is.
    Web { text_in: bool, text_out: bool },
    /// A gRPC-web content type with a method other than POST.
    NotPost,
    /// Anything else over HTTP/2.
    Pass,
    /// Anything else over HTTP/1.x.
    Refuse,
}

/// What `req` is; a gRPC-web call is made a gRPC request on the way (its
/// content type replaced in the same lookup that read it, its
/// `content-length` removed).
fn translate<B>(req: &mut Request<B>) -> Kind {
    let post = req.method() == Method::POST;
    let other = if req.version() == Version::HTTP_2 {
        Kind::Pass
    } else {
        Kind::Refuse
    };
    let headers = req.headers_mut();
    let Some(content_type) = headers.get_mut(header::CONTENT_TYPE) else {
        return other;
    };
    let text_in = match web_content_type(content_type) {
        Some(text) if post => text,
        Some(_) => return Kind::NotPost,
        None => return other,
    };
    // In place, not `insert`: see `set_content_type`.
    *content_type = HeaderValue::from_static("application/grpc");
    headers.remove(header::CONTENT_LENGTH);
    let text_out = headers.get(header::ACCEPT).and_then(web_content_type) == Some(true);
    Kind::Web { text_in, text_out }
}

/// `Some(is_text)` for the four gRPC-web content types (exact match, as
/// tonic-web), `None` for anything else. Compares bytes: no UTF-8 check.
fn web_content_type(value: &HeaderValue) -> Option<bool> {
    match value.as_bytes() {
        b"application/grpc-web" | b"application/grpc-web+proto" => Some(false),
        b"application/grpc-web-text" | b"application/grpc-web-text+proto" => Some(true),
        _ => None,
    }
}

impl<S, B, ResBody> Service<Request<B>> for GrpcWeb<S>
where
    S: Service<Request<RequestBody<B>>, Response = Response<ResBody>>,
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match translate(&mut req) {
            Kind::Web { text_in, text_out } => {
                let req = req.map(|inner| RequestBody {
                    inner,
                    text: text_in.then(BytesMut::new),
                });
                ResponseFuture::Call {
                    future: self.inner.call(req),
                    web: Some(text_out),
                }
            }
            Kind::Pass => ResponseFuture::Call {
                future: self
                    .inner
                    .call(req.map(|inner| RequestBody { inner, text: None })),
                web: None,
            },
            Kind::NotPost => ResponseFuture::Now {
                status: StatusCode::METHOD_NOT_ALLOWED,
            },
            Kind::Refuse => ResponseFuture::Now {
                status: StatusCode::BAD_REQUEST,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`GrpcWeb`].
    #[project = Proj]
    pub(crate) enum ResponseFuture<F> {
        Call {
            #[pin]
            future: F,
            // `Some(text)` for gRPC-web, `None` to pass the answer through.
            web: Option<bool>,
        },
        Now { status: StatusCode },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<axum::response::Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Call { future, web } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(match *web {
                    None => response.map(axum::body::Body::new),
                    Some(text) => web_response(response, text),
                }))
            }
            Proj::Now { status } => {
                let mut response = axum::response::Response::default();
                *response.status_mut() = *status;
                Poll::Ready(Ok(response))
            }
        }
    }
}

fn web_response<B>(response: Response<B>, text: bool) -> axum::response::Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, inner) = response.into_parts();
    let content_type = if text {
        "application/grpc-web-text+proto"
    } else {
        "application/grpc-web+proto"
    };
    set_content_type(&mut parts.headers, content_type);
    let body = axum::body::Body::new(ResponseBody { inner, text });
    Response::from_parts(parts, body)
}

/// Replaces the value in place: `HeaderMap::insert` reserves room for one
/// more entry before it looks for the name, and a full map (hyper sizes a
/// request's map to its headers) then grows, reallocating and rehashing:
/// about 900 instructions per call for a header that is there.
fn set_content_type(headers: &mut HeaderMap, value: &'static str) {
    let value = HeaderValue::from_static(value);
    match headers.get_mut(header::CONTENT_TYPE) {
        Some(old) => *old = value,
        None => {
            headers.insert(header::CONTENT_TYPE, value);
        }
    }
}

pin_project_lite::pin_project! {
    /// A gRPC request body: passed through, or base64-decoded in text mode.
    pub(crate) struct RequestBody<B> {
        #[pin]
        inner: B,
        // Text mode: the received characters not decoded yet (fewer than
        // four between chunks).
        text: Option<BytesMut>,
    }
}

fn malformed(message: impl std::fmt::Display) -> BoxError {
    Box::new(Status::internal(format!("grpc-web: {message}")))
}

impl<B> HttpBody for RequestBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(pending) = this.text.as_mut() else {
            return this.inner.poll_frame(cx).map_err(Into::into);
        };
        loop {
            if pending.len() >= 4 {
                // Whole groups of four only: the rest waits for the next chunk.
                let chunk = pending.split_to(pending.len() / 4 * 4);
                return Poll::Ready(Some(
                    BASE64
                        .decode(&chunk)
                        .map(|decoded| Frame::data(Bytes::from(decoded)))
                        .map_err(malformed),
                ));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => pending.extend_from_slice(&data),
                    Err(frame) if frame.is_trailers() => {
                        return Poll::Ready(Some(Err(malformed(
                            "malformed base64 request has unencoded trailers",
                        ))));
                    }
                    Err(_) => return Poll::Ready(Some(Err(malformed("unexpected frame type")))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(malformed(e.into())))),
                None if pending.is_empty() => return Poll::Ready(None),
                None => return Poll::Ready(Some(Err(malformed("malformed base64 request")))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.text.as_ref().is_none_or(|pending| pending.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self.text {
            None => self.inner.size_hint(),
            // Decoded, the body is shorter than it was sent.
            Some(_) => SizeHint::default(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A gRPC answer body as gRPC-web: its trailers as a last data frame,
    /// every frame base64-encoded in text mode.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: B,
        text: bool,
    }
}

impl<B> HttpBody for ResponseBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let bytes = match ready!(this.inner.poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => trailers_frame(&trailers),
                    Err(_) => {
                        return Poll::Ready(Some(Err(Box::new(Status::internal(
                            "grpc-web: unexpected frame type",
                        )))));
                    }
                },
            },
        };
        let bytes = if *this.text {
            Bytes::from(BASE64.encode(&bytes))
        } else {
            bytes
        };
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // An empty answer (trailers-only) stays empty, which lets hyper
        // send `content-length: 0` as it does for tonic-web. Otherwise
        // unknown: trailers are added, and text is longer.
        if self.inner.is_end_stream() || self.inner.size_hint().exact() == Some(0) {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// The trailers frame: flag, big-endian length, `name:value\r\n` lines,
/// written into one buffer of the right size.
fn trailers_frame(trailers: &HeaderMap) -> Bytes {
    let len: usize = trailers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 3)
        .sum();
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(TRAILERS_FLAG);
    frame.put_u32(u32::try_from(len).expect("trailers under 4 GiB"));
    for (name, value) in trailers {
        frame.put_slice(name.as_str().as_bytes());
        frame.put_u8(b':');
        frame.put_slice(value.as_bytes());
        frame.put_slice(b"\r\n");
    }
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_exactly() {
        let kind = |s: &'static str| web_content_type(&HeaderValue::from_static(s));
        assert_eq!(kind("application/grpc-web"), Some(false));
        assert_eq!(kind("application/grpc-web+proto"), Some(false));
        assert_eq!(kind("application/grpc-web-text"), Some(true));
        assert_eq!(kind("application/grpc-web-text+proto"), Some(true));
        assert_eq!(kind("application/grpc"), None);
        assert_eq!(kind("application/grpc-web+json"), None);
        assert_eq!(kind("application/grpc-web; charset=utf-8"), None);
    }

    async fn decoded(chunks: Vec<&'static [u8]>) -> Result<Bytes, BoxError> {
        use http_body_util::BodyExt as _;
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c))));
        let body = RequestBody {
            inner: http_body_util::StreamBody::new(futures::stream::iter(frames)),
            text: Some(BytesMut::new()),
        };
        Ok(body.collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn text_is_decoded_whatever_the_chunk_boundaries() {
        let body: &[u8] = b"\x00\x00\x00\x00\x05hello, split at every place";
        let text = BASE64.encode(body);
        let text: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
        for cut in 0..text.len() {
            for second in cut..text.len() {
                let chunks = vec![&text[..cut], &text[cut..second], &text[second..]];
                assert_eq!(
                    decoded(chunks).await.unwrap(),
                    body,
                    "cut at {cut}, {second}"
                );
            }
        }
    }

    #[tokio::test]
    async fn text_with_a_partial_group_at_the_end_is_an_error() {
        let error = decoded(vec![b"AAAA", b"AA"]).await.unwrap_err();
        let status = error.downcast::<Status>().unwrap();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "grpc-web: malformed base64 request");
    }

    #[test]
    fn trailers_frame_has_flag_length_and_lines() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.append("x-a", HeaderValue::from_static("1"));
        trailers.append("x-a", HeaderValue::from_static("2"));
        let frame = trailers_frame(&trailers);
        let lines = b"grpc-status:0\r\nx-a:1\r\nx-a:2\r\n";
        assert_eq!(frame[0], 0x80);
        assert_eq!(&frame[1..5], &(lines.len() as u32).to_be_bytes());
        assert_eq!(&frame[5..], lines);
    }
}
