//! Request message size limit with the status gRPC specifies.
//!
//! tonic refuses an oversized message with OUT_OF_RANGE, but the gRPC spec
//! says RESOURCE_EXHAUSTED, and tonic's limit is set per generated service.
//! This layer reads the 5-byte gRPC frame headers as the body streams in and
//! fails the body with `Status::resource_exhausted` as soon as a length
//! prefix exceeds the limit, for every service, before the message is
//! buffered. tonic turns a body error that carries a `Status` into that
//! status. Written by hand because no crate offers a frame-aware limit.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
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
        self.inner.call(req.map(|body| {
            Body::new(LimitedBody {
                inner: body,
                max,
                header: [0; 5],
                have: 0,
                skip: 0,
            })
        }))
    }
}

pin_project_lite::pin_project! {
    struct LimitedBody<B> {
        #[pin]
        inner: B,
        max: usize,
        // Bytes of the current frame header seen so far.
        header: [u8; 5],
        have: usize,
        // Payload bytes of the current message still to pass.
        skip: usize,
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            let mut rest = data.clone();
            while rest.has_remaining() {
                if *this.skip > 0 {
                    let n = (*this.skip).min(rest.remaining());
                    rest.advance(n);
                    *this.skip -= n;
                    continue;
                }
                let n = (5 - *this.have).min(rest.remaining());
                this.header[*this.have..*this.have + n].copy_from_slice(&rest[..n]);
                rest.advance(n);
                *this.have += n;
                if *this.have == 5 {
                    *this.have = 0;
                    let len = u32::from_be_bytes([
                        this.header[1],
                        this.header[2],
                        this.header[3],
                        this.header[4],
                    ]) as usize;
                    if len > *this.max {
                        let status = Status::resource_exhausted(format!(
                            "request message is {len} bytes; the limit is {} bytes",
                            this.max
                        ));
                        return Poll::Ready(Some(Err(Box::new(status))));
                    }
                    *this.skip = len;
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
            inner: StreamBody::new(stream),
            max,
            header: [0; 5],
            have: 0,
            skip: 0,
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
