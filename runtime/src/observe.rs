//! One log line and one set of Prometheus metrics per gRPC call: method,
//! status code, duration and request id.
//!
//! The status of a gRPC call is known only at its end (in the trailers, or
//! in the headers of a trailers-only response), which `tower_http::trace`
//! does not surface as a gRPC code, so this small layer watches the
//! response body for its trailers. It sits inside the gRPC-web layer and so
//! sees native trailers for both protocols.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame};
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// `grpc-status` of UNIMPLEMENTED.
const UNIMPLEMENTED: i32 = 12;

#[derive(Clone, Debug)]
pub(crate) struct ObserveLayer {
    metrics: Metrics,
}

impl ObserveLayer {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Observe<S> {
    inner: S,
    metrics: Metrics,
}

/// What is known about a call until it ends.
struct Call {
    metrics: Metrics,
    method: String,
    request_id: String,
    protocol: Protocol,
    start: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.start.elapsed();
        // UNIMPLEMENTED names a service or method that does not exist (or
        // one that says it is not implemented): its path is whatever the
        // client sent, so it is counted under one label set instead of one
        // per path — otherwise every random path would add series to the
        // registry forever (found by the fuzzer). The log line keeps the path.
        let (service, method) = if code == UNIMPLEMENTED {
            ("unknown", "unknown")
        } else {
            self.method
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", &self.method))
        };
        let code_name = code_name(code);
        self.metrics.record(|| {
            let labels = [
                ("grpc_service", service.to_owned()),
                ("grpc_method", method.to_owned()),
                ("grpc_code", code_name.to_owned()),
            ];
            metrics::counter!("grpc_server_handled_total", &labels).increment(1);
            metrics::histogram!(
                "grpc_server_handling_seconds",
                &[
                    ("grpc_service", service.to_owned()),
                    ("grpc_method", method.to_owned())
                ]
            )
            .record(elapsed.as_secs_f64());
        });
        let protocol = self.protocol.as_str();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        if matches!(code, 2 | 4 | 13 | 14 | 15) {
            tracing::warn!(target: "grpc", method = %self.method, status = code_name, duration_ms, request_id = %self.request_id, protocol, "call");
        } else {
            tracing::info!(target: "grpc", method = %self.method, status = code_name, duration_ms, request_id = %self.request_id, protocol, "call");
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body was dropped before it ended: the client went away.
        self.finish(1);
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Canonical names, as the gRPC spec spells them (metric labels and log
/// lines).
pub(crate) fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .copied()
        .unwrap_or("UNKNOWN")
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut call = Call {
            metrics: self.metrics.clone(),
            method: req.uri().path().to_owned(),
            request_id: req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned(),
            protocol: req
                .extensions()
                .get::<Protocol>()
                .copied()
                .unwrap_or(Protocol::Grpc),
            start: Instant::now(),
            done: false,
        };
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            if let Some(code) = grpc_status(response.headers()) {
                call.finish(code);
            }
            Ok(response.map(|inner| ObservedBody { inner, call }))
        })
    }
}

/// A gRPC request's wire protocol, for the log line (set by the dispatcher).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Grpc,
    GrpcWeb,
    GrpcWebText,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::GrpcWebText => "grpc-web-text",
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct ObservedBody<B> {
        #[pin]
        inner: B,
        call: Call,
    }
}

impl<B> HttpBody for ObservedBody<B>
where
    B: HttpBody<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(code) = f.trailers_ref().and_then(grpc_status) {
                    this.call.finish(code);
                }
            }
            Some(Err(_)) => this.call.finish(13),
            // Ended without any status: the handler never set one.
            None => this.call.finish(2),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
