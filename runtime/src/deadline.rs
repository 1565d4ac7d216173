//! The client's deadline: a gRPC call whose request carries `grpc-timeout`
//! and has not answered when it runs out is dropped (which cancels its
//! handler) and answered CANCELLED, "Timeout expired" — what tonic's
//! transport server did before the runtime served connections itself. As
//! there, the deadline ends at the response headers: a stream that has
//! started runs on.
//!
//! The answer is a trailers-only response inside the gRPC-web layer and
//! the call log, so gRPC-web clients get it in their framing and the log
//! line and metrics count it (code 1).

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{body::Body, response::Response};
use http::{HeaderMap, HeaderName, Request};
use tower::Service;

/// `inner` with the client's deadline.
#[derive(Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
}

impl<S> Deadline<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let sleep = grpc_timeout(req.headers()).map(|after| Box::pin(tokio::time::sleep(after)));
        DeadlineFuture {
            future: self.inner.call(req),
            sleep,
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct DeadlineFuture<F> {
        #[pin]
        future: F,
        // Boxed: most calls carry no deadline, and a `Sleep` is large.
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let ready @ Poll::Ready(_) = this.future.poll(cx) {
            return ready;
        }
        match this.sleep {
            Some(sleep) => {
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Ok(
                    tonic::Status::cancelled("Timeout expired").into_http::<Body>()
                ))
            }
            None => Poll::Pending,
        }
    }
}

/// The header's name, parsed once.
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The `grpc-timeout` of a request (gRPC over HTTP/2: at most 8 digits and
/// a unit); `None` without one or when it cannot be read, as tonic did.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match &value[digits.len()..] {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn timeout_of(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_reads_every_unit_and_refuses_the_rest() {
        assert_eq!(timeout_of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout_of("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("4S"), Some(Duration::from_secs(4)));
        assert_eq!(timeout_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            timeout_of("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(timeout_of("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "100", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(timeout_of(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_is_dropped_and_answered_cancelled() {
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        let dropped_tx = std::sync::Mutex::new(Some(dropped_tx));
        let never = tower::service_fn(move |_: Request<()>| {
            // Dropped with the handler's future: tells the test it was.
            let guard = dropped_tx.lock().unwrap().take();
            async move {
                let _guard = guard;
                std::future::pending::<Result<Response, Infallible>>().await
            }
        });
        let req = Request::builder()
            .header("grpc-timeout", "50m")
            .body(())
            .unwrap();
        let response = Deadline::new(never).oneshot(req).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "1");
        assert_eq!(response.headers()["grpc-message"], "Timeout%20expired");
        assert!(
            dropped.await.is_err(),
            "the handler's future is dropped, not left running"
        );
    }

    #[tokio::test]
    async fn a_call_answering_within_its_deadline_gets_its_own_answer() {
        let quick = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Body::from("own")))
        });
        let req = Request::builder()
            .header("grpc-timeout", "10S")
            .body(())
            .unwrap();
        let response = Deadline::new(quick).oneshot(req).await.unwrap();
        assert!(response.headers().get("grpc-status").is_none());
    }
}
