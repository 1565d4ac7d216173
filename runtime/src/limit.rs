//! Request message size limit with the status gRPC specifies.
//!
//! tonic refuses an oversized message with OUT_OF_RANGE, but the gRPC spec
//! says RESOURCE_EXHAUSTED, and tonic's limit is set per generated service.
//! This layer reads the 5-byte gRPC frame headers as the body streams in and
//! fails the body with `Status::resource_exhausted` as soon as a length
//! prefix exceeds the limit, for every service, before the message is
//! buffered. tonic turns a body error that carries a `Status` into that
//! status. Written by hand because no crate offers a frame-aware limit.
//!
//! # Lingering close (HTTP/1.1)
//! The answer goes out as soon as the frame header is read, while the
//! client is still sending the message. tonic then drops the request body,
//! and hyper 1 stops reading a connection whose body receiver is gone
//! (`close_read`) and closes it; the client's next write fails (EPIPE,
//! ECONNRESET) and the unread bytes make the kernel reset the connection,
//! often before the client has read the answer: browsers report "Failed
//! to fetch" instead of RESOURCE_EXHAUSTED. So on HTTP/1.x the body is not
//! dropped when it fails: a task takes it over and keeps reading and
//! discarding it (never buffering) up to [`linger_bytes`] and
//! [`LINGER_TIME`], as nginx's lingering close does. A body that ends
//! within the bound leaves the connection usable; past the bound, or when
//! `content-length` already declares more, the body is dropped and hyper
//! closes the connection as before. HTTP/2 needs none of this: the stream
//! is reset on its own and the connection goes on.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use http::Request;
use http_body::{Body as HttpBody, Frame};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// Applies [`MessageLimit`] to requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageLimitLayer {
    max: usize,
}

impl MessageLimitLayer {
    pub(crate) fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit {
            inner,
            max: self.max,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct MessageLimit<S> {
    inner: S,
    max: usize,
}

impl<S, B> Service<Request<B>> for MessageLimit<S>
where
    S: Service<Request<Body>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let max = self.max;
        let linger = if req.version() <= http::Version::HTTP_11 {
            let declared = req.extensions().get::<DeclaredLength>().map(|d| d.0);
            let bound = linger_bytes(max);
            // Draining helps only when the whole rest fits in the bound.
            declared.is_none_or(|len| len <= bound).then_some(bound)
        } else {
            None
        };
        self.inner.call(req.map(|body| {
            Body::new(LimitedBody {
                inner: Some(Box::pin(body)),
                max,
                header: [0; 5],
                have: 0,
                skip: 0,
                linger,
            })
        }))
    }
}

/// The request's `content-length`, noted by [`note_declared_length`]
/// before the gRPC-web translation removes the header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeclaredLength(u64);

/// Keeps the request's `content-length` for the limit's lingering close:
/// the gRPC-web translation (`crate::grpc_web`) removes the header. Only
/// HTTP/1.x lingers, so an HTTP/2 call skips the header lookup.
pub(crate) fn note_declared_length<B>(req: &mut Request<B>) {
    if req.version() > http::Version::HTTP_11 {
        return;
    }
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared {
        req.extensions_mut().insert(DeclaredLength(len));
    }
}

/// How many bytes of a refused HTTP/1.1 request body are read and
/// discarded before the connection is closed: twice the limit, at least
/// 8 MiB, so that a message somewhat over the limit is read to its end.
pub(crate) fn linger_bytes(max: usize) -> u64 {
    (max as u64).saturating_mul(2).max(8 * 1024 * 1024)
}

/// How long a refused HTTP/1.1 request body is read and discarded at most.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(10);

struct LimitedBody<B> {
    // `None` once refused: the rest is being discarded elsewhere.
    inner: Option<Pin<Box<B>>>,
    max: usize,
    // Bytes of the current frame header seen so far.
    header: [u8; 5],
    have: usize,
    // Payload bytes of the current message still to pass.
    skip: usize,
    // Bytes to discard after a refusal (HTTP/1.x), or `None` to drop the
    // body at once.
    linger: Option<u64>,
}

/// Reads and discards the rest of a refused body, bounded in bytes and
/// time, then drops it (see the module docs).
fn discard<B>(mut body: Pin<Box<B>>, bound: u64)
where
    B: HttpBody<Data = Bytes> + Send + 'static,
{
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let rest = async {
            let mut read = 0u64;
            while let Some(Ok(frame)) =
                std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if read > bound {
                        tracing::debug!("refused request body exceeds {bound} bytes: closing");
                        return;
                    }
                }
            }
        };
        if tokio::time::timeout(LINGER_TIME, rest).await.is_err() {
            tracing::debug!("refused request body still arriving after {LINGER_TIME:?}: closing");
        }
    });
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match ready!(inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            let mut rest = data.clone();
            while rest.has_remaining() {
                if this.skip > 0 {
                    let n = (this.skip).min(rest.remaining());
                    rest.advance(n);
                    this.skip -= n;
                    continue;
                }
                let n = (5 - this.have).min(rest.remaining());
                this.header[this.have..this.have + n].copy_from_slice(&rest[..n]);
                rest.advance(n);
                this.have += n;
                if this.have == 5 {
                    this.have = 0;
                    let len = u32::from_be_bytes([
                        this.header[1],
                        this.header[2],
                        this.header[3],
                        this.header[4],
                    ]) as usize;
                    if len > this.max {
                        let status = Status::resource_exhausted(format!(
                            "request message is {len} bytes; the limit is {} bytes",
                            this.max
                        ));
                        if let (Some(body), Some(bound)) = (this.inner.take(), this.linger) {
                            discard(body, bound);
                        }
                        this.inner = None;
                        return Poll::Ready(Some(Err(Box::new(status))));
                    }
                    this.skip = len;
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            |inner| inner.size_hint(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    async fn pass(chunks: Vec<Vec<u8>>, max: usize) -> Result<usize, String> {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c)))),
        );
        let body = LimitedBody {
            inner: Some(Box::pin(StreamBody::new(stream))),
            max,
            header: [0; 5],
            have: 0,
            skip: 0,
            linger: None,
        };
        match body.collect().await {
            Ok(c) => Ok(c.to_bytes().len()),
            Err(e) => Err(e
                .downcast::<Status>()
                .map(|s| format!("{:?}", s.code()))
                .unwrap_or_default()),
        }
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(&(len as u32).to_be_bytes());
        v.extend(std::iter::repeat_n(7u8, len));
        v
    }

    #[tokio::test]
    async fn frames_at_the_limit_pass_even_when_split_anywhere() {
        let mut all = frame(10);
        all.extend(frame(3));
        for split in 0..all.len() {
            let (a, b) = all.split_at(split);
            assert_eq!(pass(vec![a.to_vec(), b.to_vec()], 10).await, Ok(all.len()));
        }
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_resource_exhausted() {
        let mut all = frame(3);
        all.extend(&frame(11)[..7]);
        assert_eq!(pass(vec![all], 10).await, Err("ResourceExhausted".into()));
        let huge = [0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            pass(vec![huge[..2].to_vec(), huge[2..].to_vec()], 10).await,
            Err("ResourceExhausted".into())
        );
    }
}
