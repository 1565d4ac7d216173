//! Unary answers encoded once and sent many times: a handler that keeps a
//! response (a cache of pages) keeps it as an [`EncodedMessage`] and
//! answers with [`EncodedMessage::into_response`], so a repeated answer
//! costs no clone of the message, no protobuf encoding and no drop, only
//! a reference count (`cargo xtask bench`: that was two thirds of the
//! instructions of a cached 16 KB page).
//!
//! The handler stays an ordinary tonic method returning
//! `Result<Response<M>, Status>`. The response it returns carries the
//! encoded frame as an extension and `M::default()` as its message; a
//! layer of the runtime, right around the tonic services, replaces the
//! body tonic built for that placeholder (before anything polled it, so
//! the placeholder is never encoded) with the frame and the OK trailers
//! tonic would have sent: the same bytes on the wire. When the client
//! accepted gzip and tonic chose it, the frame is compressed as tonic
//! would (level 6).
//!
//! Written here because tonic has no way to hand its encoder bytes that
//! are already encoded: a codec encodes the message type the generated
//! trait returns, and only this layer, below the service, sees both the
//! response's extensions and its body.
//!
//! # Limitations
//! * Only services mounted on the runtime get the swap: the same service
//!   served by plain tonic would send the empty placeholder.
//! * Unary responses only (a stream's messages are encoded as they come).

use std::{
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body::{Frame, SizeHint};
use tower::{Layer, Service};

/// `grpc-encoding`, set by tonic when it compresses the response. The
/// names are `HeaderName`s made at compile time: looked up or inserted by
/// `&str`, a name is parsed again on every call (~300 instructions each).
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
/// `grpc-status`, `grpc-message`: the trailers this layer writes.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// A protobuf message of type `M` encoded once, framed as gRPC sends it (a
/// flag byte, the length as 4 bytes big-endian, the message). Cheap to
/// clone. The type parameter ties the bytes to the message type they were
/// encoded from, so a handler can only answer them where that type is the
/// method's response.
pub struct EncodedMessage<M> {
    frame: Bytes,
    message: PhantomData<fn() -> M>,
}

/// What [`EncodedMessage::into_response`] leaves in the response's
/// extensions for the layer: the frame, whatever its message type.
#[derive(Clone)]
struct EncodedFrame(Bytes);

impl<M> Clone for EncodedMessage<M> {
    fn clone(&self) -> Self {
        Self {
            frame: self.frame.clone(),
            message: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for EncodedMessage<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedMessage")
            .field("message", &std::any::type_name::<M>())
            .field("len", &self.len())
            .finish()
    }
}

impl<M> PartialEq for EncodedMessage<M> {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

impl<M> Eq for EncodedMessage<M> {}

impl<M: prost::Message> EncodedMessage<M> {
    /// Encodes `message` into one buffer of its exact framed size.
    pub fn encode(message: &M) -> Self {
        let len = message.encoded_len();
        let mut frame = BytesMut::with_capacity(5 + len);
        frame.put_u8(0);
        frame.put_u32(u32::try_from(len).expect("a protobuf message is under 4 GiB"));
        message
            .encode(&mut frame)
            .expect("the buffer was reserved to the message's size");
        Self {
            frame: frame.freeze(),
            message: PhantomData,
        }
    }
}

impl<M> EncodedMessage<M> {
    /// The encoded message's size in bytes (without the 5-byte frame
    /// header).
    pub fn len(&self) -> usize {
        self.frame.len() - 5
    }

    /// Whether the message encodes to no bytes (all fields default).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded message (without the frame header), e.g. to decode it.
    pub fn message_bytes(&self) -> Bytes {
        self.frame.slice(5..)
    }

    /// A response of a unary method that sends these bytes as its message
    /// (see the module docs): `M::default()` is only a placeholder, never
    /// encoded, when the service is mounted on the runtime.
    pub fn into_response(self) -> tonic::Response<M>
    where
        M: Default,
    {
        let mut response = tonic::Response::new(M::default());
        response.extensions_mut().insert(EncodedFrame(self.frame));
        response
    }
}

/// Puts an [`EncodedMessage`] in the place of the body tonic built.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendEncodedLayer;

impl<S> Layer<S> for SendEncodedLayer {
    type Service = SendEncoded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SendEncoded { inner }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SendEncoded<S> {
    inner: S,
}

impl<S, R> Service<R> for SendEncoded<S>
where
    S: Service<R, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = SendEncodedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        SendEncodedFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct SendEncodedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for SendEncodedFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(swap(response)))
    }
}

fn swap(mut response: Response<Body>) -> Response<Body> {
    let Some(EncodedFrame(encoded)) = response.extensions_mut().remove::<EncodedFrame>() else {
        return response;
    };
    let frame = match response.headers().get(GRPC_ENCODING) {
        None => Ok(encoded),
        Some(v) if v == "gzip" => gzip(&encoded[5..]),
        Some(other) => Err(format!("no encoder of {other:?} for an encoded message")),
    };
    let (parts, _placeholder) = response.into_parts();
    let body = match frame {
        Ok(frame) => EncodedBody {
            frame: Some(frame),
            trailers: Some(ok_trailers()),
        },
        Err(message) => {
            tracing::error!(target: "grpc", "{message}");
            let mut trailers = HeaderMap::new();
            trailers.insert(GRPC_STATUS, HeaderValue::from_static("13"));
            trailers.insert(GRPC_MESSAGE, HeaderValue::from_static("encoding%20failed"));
            EncodedBody {
                frame: None,
                trailers: Some(trailers),
            }
        }
    };
    Response::from_parts(parts, Body::new(body))
}

/// `grpc-status: 0`, as tonic ends a successful call.
fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
    trailers
}

/// The compressed frame of `message`, as tonic compresses (gzip, level 6).
fn gzip(message: &[u8]) -> Result<Bytes, String> {
    use std::io::Write as _;
    let mut frame = Vec::with_capacity(5 + message.len() / 2);
    frame.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut encoder = flate2::write::GzEncoder::new(frame, flate2::Compression::new(6));
    let compressed = encoder
        .write_all(message)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("gzip of an encoded message: {e}"))?;
    let mut frame = compressed;
    let len = u32::try_from(frame.len() - 5).map_err(|_| "over 4 GiB".to_owned())?;
    frame[1..5].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(frame))
}

/// One data frame, then the trailers. Its size stays unknown, as tonic's
/// body's is, so HTTP/1.1 answers keep chunked encoding (the same bytes).
struct EncodedBody {
    frame: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for EncodedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.frame.take() {
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.frame.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_the_flag_the_length_and_the_message() {
        let message = tonic_health::pb::HealthCheckRequest {
            service: "article.v1.ArticleService".into(),
        };
        let encoded = EncodedMessage::encode(&message);
        let bytes = prost::Message::encode_to_vec(&message);
        assert_eq!(encoded.len(), bytes.len());
        assert_eq!(&encoded.frame[..5], &[0, 0, 0, 0, bytes.len() as u8]);
        assert_eq!(&encoded.message_bytes()[..], &bytes[..]);
    }

    #[test]
    fn gzip_frames_carry_the_compressed_flag_and_length() {
        let message = vec![7u8; 1000];
        let frame = gzip(&message).unwrap();
        assert_eq!(frame[0], 1);
        let len = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 5);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&frame[5..]), &mut plain)
            .unwrap();
        assert_eq!(plain, message);
    }
}
