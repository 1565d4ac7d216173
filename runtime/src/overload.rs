//! Load shedding: a bound on the gRPC calls being handled at once, and a
//! fast refusal beyond it instead of a queue.
//!
//! A call takes a permit of a semaphore, or, when none is free, is
//! answered at once UNAVAILABLE (a status clients retry: the call was not
//! started) with a
//! message naming `--max-concurrent-calls`, in the caller's framing
//! (the gRPC-web layer translates it for gRPC-web). Nothing waits in a queue, so
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

//!
//! Written here instead of tower's `ConcurrencyLimit` + `LoadShed` (which
//! it replaced) because those, with the error handler and the router that
//! kept health checks apart, cost an allocation and four layers per call
//! (tower's limit clones a boxed semaphore future for every call); this
//! is one `try_acquire`.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum::{body::Body, response::Response};
use http::Request;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

/// A default for the machine: 256 calls per core. Admitted calls then
/// wait at most 256 / (calls per second per core): 13-256 ms for calls of
/// 0.05-1 ms, and a burst of a couple of hundred stream starts (a
/// reconnect storm, the benchmark's watch fan-out) still passes.
pub(crate) fn default_max_concurrent_calls() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    256 * cores
}

/// The path prefix of health checks, which are never refused.
const HEALTH: &str = "/grpc.health.v1.Health/";

/// `inner` with at most `max` calls in progress (0 = no limit) besides
/// health checks.
#[derive(Clone)]
pub(crate) struct Overload<S> {
    inner: S,
    permits: Option<Arc<Semaphore>>,
    max: usize,
}

impl<S> Overload<S> {
    pub(crate) fn new(inner: S, max: usize) -> Self {
        Self {
            inner,
            permits: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            max,
        }
    }
}

impl<S, B> Service<Request<B>> for Overload<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = OverloadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let permit = match &self.permits {
            Some(permits) if !req.uri().path().starts_with(HEALTH) => {
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => return OverloadFuture::Refused { max: self.max },
                }
            }
            _ => None,
        };
        OverloadFuture::Admitted {
            future: self.inner.call(req),
            permit,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = OverloadProj]
    pub(crate) enum OverloadFuture<F> {
        Admitted {
            #[pin]
            future: F,
            // Released with the response headers, when this future ends.
            permit: Option<OwnedSemaphorePermit>,
        },
        Refused { max: usize },
    }
}

impl<F> Future for OverloadFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.as_mut().project() {
            OverloadProj::Admitted { future, permit } => {
                let response = ready!(future.poll(cx));
                permit.take();
                Poll::Ready(response)
            }
            OverloadProj::Refused { max } => Poll::Ready(Ok(refusal(*max))),
        }
    }
}

/// UNAVAILABLE naming the flag, as a trailers-only response.
fn refusal(max: usize) -> Response {
    tonic::Status::unavailable(format!(
        "the server is overloaded: {max} calls in progress, the \
         --max-concurrent-calls limit; retry later"
    ))
    .into_http::<Body>()
}
