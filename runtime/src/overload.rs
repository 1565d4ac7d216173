//! Load shedding: a bound on the gRPC calls being handled at once, and a
//! fast refusal beyond it instead of a queue.
//!
//! tower's `ConcurrencyLimit` holds a permit per call and `LoadShed`
//! turns "no permit free" into an immediate error, which is answered
//! UNAVAILABLE (a status clients retry: the call was not started) with a
//! message naming `--max-concurrent-calls`, in the caller's framing
//! (tonic-web translates it for gRPC-web). Nothing waits in a queue, so
//! admitted calls keep their latency and memory stays bounded when the
//! offered load is several times what the server can do.
//!
//! A permit is held until the call's response headers, not its whole
//! body: a unary call counts while its handler runs, a server stream
//! (a watch) only until it starts, so long-lived streams neither starve
//! nor count against other calls forever. A client stream (an import)
//! counts until its handler answers, i.e. while it is being received.
//! Health checks (`grpc.health.v1.Health`) are never refused: an
//! overloaded server is busy, not dead.

use std::convert::Infallible;

use axum::{
    Router,
    body::Body,
    error_handling::HandleErrorLayer,
    response::{IntoResponse as _, Response},
};
use http::Request;
use tower::{BoxError, Service, ServiceBuilder};

/// A default for the machine: 256 calls per core. Admitted calls then
/// wait at most 256 / (calls per second per core): 13-256 ms for calls of
/// 0.05-1 ms, and a burst of a couple of hundred stream starts (a
/// reconnect storm, the benchmark's watch fan-out) still passes.
pub(crate) fn default_max_concurrent_calls() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    256 * cores
}

/// `grpc` with at most `max` calls in progress (0 = no limit) besides
/// health checks.
pub(crate) fn limit<S>(grpc: S, max: usize) -> Router
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    if max == 0 {
        return Router::new().fallback_service(grpc);
    }
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: BoxError| async move {
            let status = tonic::Status::unavailable(format!(
                "the server is overloaded: {max} calls in progress, the \
                 --max-concurrent-calls limit; retry later"
            ));
            status.into_http::<axum::body::Body>().into_response()
        }))
        .load_shed()
        .concurrency_limit(max)
        .service(grpc.clone());
    Router::new()
        .route_service("/grpc.health.v1.Health/{method}", grpc)
        .fallback_service(limited)
}
