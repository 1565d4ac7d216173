//! One log line and one set of Prometheus metrics per gRPC call: method,
//! status code, duration and request id.
//!
//! The status of a gRPC call is known only at its end (in the trailers, or
//! in the headers of a trailers-only response), which `tower_http::trace`
//! does not surface as a gRPC code, so this small layer watches the
//! response body for its trailers. It sits inside the gRPC-web layer and so
//! sees native trailers for both protocols.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock, RwLock},
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame};
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// `grpc-status` of UNIMPLEMENTED.
const UNIMPLEMENTED: i32 = 12;
/// The key of UNIMPLEMENTED calls' handles (no path starts with a space).
const UNKNOWN_PATH: &str = " unknown";

/// The status header, parsed once (looked up by `&str`, the name is
/// parsed on every lookup).
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

#[derive(Clone)]
pub(crate) struct ObserveLayer {
    shared: Arc<Shared>,
}

/// What all calls share: one reference to count per call.
struct Shared {
    metrics: Metrics,
    methods: Methods,
}

impl ObserveLayer {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                metrics,
                methods: Methods::default(),
            }),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What is known about a call until it ends.
struct Call {
    shared: Arc<Shared>,
    method: Method,
    request_id: Option<HeaderValue>,
    protocol: Protocol,
    start: Instant,
    done: bool,
}

/// The called path: a method seen before, with its metric handles, or
/// any other path.
enum Method {
    Known(Arc<MethodMetrics>),
    Other(String),
}

impl Method {
    fn path(&self) -> &str {
        match self {
            Self::Known(m) => &m.path,
            Self::Other(path) => path,
        }
    }
}

/// Most methods whose metric handles are kept: a bound, because paths
/// come from clients (the registry itself only grows by paths that
/// answered something else than UNIMPLEMENTED, see [`Call::finish`]).
const MAX_KNOWN_METHODS: usize = 1024;

/// The metric handles of the methods called so far, by path: recording a
/// call then costs no label strings and no registry lookup (each
/// `counter!`/`histogram!` built five label strings and hashed them).
///
/// Hashed with foldhash, not std's SipHash (~300 instructions for a
/// 40-byte path, per call): paths come from clients, but only those of
/// methods that answered are kept (at most [`MAX_KNOWN_METHODS`]), and
/// foldhash's seed is random per map.
#[derive(Default)]
struct Methods {
    by_path: RwLock<HashMap<Box<str>, Arc<MethodMetrics>, foldhash::fast::RandomState>>,
}

impl Methods {
    fn get(&self, path: &str) -> Option<Arc<MethodMetrics>> {
        self.by_path
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    /// The handles of `path`, registered under `service` and `method`;
    /// `None` once [`MAX_KNOWN_METHODS`] are kept.
    fn insert(
        &self,
        metrics: &Metrics,
        path: &str,
        service: &str,
        method: &str,
    ) -> Option<Arc<MethodMetrics>> {
        let mut by_path = self.by_path.write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = by_path.get(path) {
            return Some(known.clone());
        }
        if by_path.len() >= MAX_KNOWN_METHODS {
            return None;
        }
        let handling = metrics.record(|| {
            metrics::histogram!(
                "grpc_server_handling_seconds",
                &[
                    ("grpc_service", service.to_owned()),
                    ("grpc_method", method.to_owned())
                ]
            )
        });
        let known = Arc::new(MethodMetrics {
            path: path.into(),
            service: service.into(),
            method: method.into(),
            handling,
            handled: Default::default(),
        });
        by_path.insert(path.into(), known.clone());
        Some(known)
    }
}

/// One method's metric handles; a code's counter is made on its first use.
struct MethodMetrics {
    path: Box<str>,
    service: Box<str>,
    method: Box<str>,
    handling: metrics::Histogram,
    handled: [OnceLock<metrics::Counter>; 17],
}

impl MethodMetrics {
    fn record(&self, metrics: &Metrics, code: i32, code_name: &'static str, seconds: f64) {
        let index = usize::try_from(code).ok().filter(|&c| c < 17).unwrap_or(2);
        self.handled[index]
            .get_or_init(|| {
                metrics.record(|| {
                    let labels = [
                        ("grpc_service", self.service.to_string()),
                        ("grpc_method", self.method.to_string()),
                        ("grpc_code", code_name.to_owned()),
                    ];
                    metrics::counter!("grpc_server_handled_total", &labels)
                })
            })
            .increment(1);
        self.handling.record(seconds);
        // Histogram samples wait for an upkeep to be folded into buckets.
        metrics.count_recording();
    }
}

impl Call {
    fn finish(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.start.elapsed();
        let code_name = code_name(code);
        // UNIMPLEMENTED names a service or method that does not exist (or
        // one that says it is not implemented): its path is whatever the
        // client sent, so it is counted under one label set instead of one
        // per path — otherwise every random path would add series to the
        // registry forever (found by the fuzzer). The log line keeps the path.
        let Shared { metrics, methods } = &*self.shared;
        let known = match (&self.method, code) {
            (_, UNIMPLEMENTED) => methods
                .get(UNKNOWN_PATH)
                .or_else(|| methods.insert(metrics, UNKNOWN_PATH, "unknown", "unknown")),
            (Method::Known(m), _) => Some(m.clone()),
            (Method::Other(path), _) => {
                let (service, method) = path
                    .trim_start_matches('/')
                    .split_once('/')
                    .unwrap_or(("", path));
                methods.insert(metrics, path, service, method)
            }
        };
        match known {
            Some(m) => m.record(metrics, code, code_name, elapsed.as_secs_f64()),
            None => self.record_uncached(code_name, elapsed.as_secs_f64()),
        }
        let protocol = self.protocol.as_str();
        // Nanoseconds / 1e6: the nearest double to a decimal of at most 15
        // digits, written as that decimal (and cheaply by a formatter that
        // knows it; `as_secs_f64() * 1000.0` rounded twice, often to 17
        // digits such as 0.08712299999999999).
        let duration_ms = elapsed.as_nanos() as f64 / 1e6;
        let method = self.method.path();
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The message as a string field, not `format_args!`: a formatter
        // can then write it without the formatting machinery (the text is
        // the same).
        if matches!(code, 2 | 4 | 13 | 14 | 15) {
            tracing::warn!(target: "grpc", message = "call", method = %method, status = code_name, duration_ms, request_id = %request_id, protocol);
        } else {
            tracing::info!(target: "grpc", message = "call", method = %method, status = code_name, duration_ms, request_id = %request_id, protocol);
        }
    }

    /// Records through the registry's lookup, past [`MAX_KNOWN_METHODS`].
    fn record_uncached(&self, code_name: &'static str, seconds: f64) {
        let path = self.method.path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", path));
        self.shared.metrics.record(|| {
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
            .record(seconds);
        });
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body was dropped before it ended: the client went away.
        self.finish(1);
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()
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
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        let method = match self.shared.methods.get(path) {
            Some(known) => Method::Known(known),
            None => Method::Other(path.to_owned()),
        };
        let call = Call {
            shared: self.shared.clone(),
            method,
            request_id: req.headers().get(&crate::request_id::X_REQUEST_ID).cloned(),
            protocol: req
                .extensions()
                .get::<Protocol>()
                .copied()
                .unwrap_or(Protocol::Grpc),
            start: Instant::now(),
            done: false,
        };
        ObserveFuture {
            inner: self.inner.call(req),
            call: Some(call),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future: a named type instead of a boxed `async`
    /// block (an allocation per call). Dropped before the response, the
    /// call is logged CANCELLED (the client went away).
    pub(crate) struct ObserveFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, B, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ObservedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx));
        let Some(mut call) = this.call.take() else {
            panic!("ObserveFuture polled after it completed");
        };
        // An error: `call` is dropped here, and logged as CANCELLED.
        let response = response?;
        if let Some(code) = grpc_status(response.headers()) {
            call.finish(code);
        }
        Poll::Ready(Ok(response.map(|inner| ObservedBody { inner, call })))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_kept_for_a_bounded_number_of_paths() {
        let metrics = Metrics::new();
        let methods = Methods::default();
        for i in 0..MAX_KNOWN_METHODS {
            let path = format!("/pkg.S{i}/M");
            let known = methods.insert(&metrics, &path, &format!("pkg.S{i}"), "M");
            assert!(known.is_some(), "{path}");
        }
        assert!(
            methods
                .insert(&metrics, "/pkg.Full/M", "pkg.Full", "M")
                .is_none()
        );
        // A path kept before is still found.
        assert_eq!(&*methods.get("/pkg.S0/M").unwrap().service, "pkg.S0");
    }

    #[test]
    fn kept_handles_record_under_the_method_and_code_labels() {
        let metrics = Metrics::new();
        let methods = Methods::default();
        let known = methods
            .insert(&metrics, "/pkg.Svc/Get", "pkg.Svc", "Get")
            .unwrap();
        known.record(&metrics, 0, code_name(0), 0.001);
        known.record(&metrics, 0, code_name(0), 0.001);
        known.record(&metrics, 5, code_name(5), 0.001);
        let page = metrics.render();
        assert!(
            page.contains(
                r#"grpc_server_handled_total{grpc_service="pkg.Svc",grpc_method="Get",grpc_code="OK"} 2"#
            ),
            "{page}"
        );
        assert!(
            page.contains(
                r#"grpc_server_handled_total{grpc_service="pkg.Svc",grpc_method="Get",grpc_code="NOT_FOUND"} 1"#
            ),
            "{page}"
        );
        assert!(
            page.contains(
                r#"grpc_server_handling_seconds_count{grpc_service="pkg.Svc",grpc_method="Get"} 3"#
            ),
            "{page}"
        );
    }
}
