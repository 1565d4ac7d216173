//! `x-request-id` on every request and its answer: the client's own, or a
//! new random (v4) UUID. Handlers see it as a request header, the call's
//! log line names it, and the answer carries it unless the answer sets one
//! of its own. Over HTTP/2 the answer's id is sent as a literal never
//! indexed by HPACK (see `RequestIdFuture::poll`).
//!
//! It is not also put into the request's extensions (as tower-http's
//! `RequestId`, which this layer did before and nothing read): every call
//! already puts three other entries there, and a fourth made that map grow
//! a second time (~450 instructions per call).
//!
//! One layer written here instead of tower-http's `SetRequestId` and
//! `PropagateRequestId`, which it replaced with the same headers: those
//! look the request header up twice and also put the id into the
//! response's extensions, a hash map allocated per answer that nothing
//! reads.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderName, HeaderValue, Request, Response};
use tower::Service;

/// The header's name, parsed once.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `inner` with request ids.
#[derive(Clone)]
pub(crate) struct RequestIds<S> {
    inner: S,
}

impl<S> RequestIds<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B, ResBody> Service<Request<B>> for RequestIds<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = new_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        RequestIdFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

/// A v4 UUID written into a stack buffer (the same ids as tower-http's
/// `MakeRequestUuid`, without its `to_string` and the parse back), kept in
/// one allocation that its clones share: `HeaderValue::from_str` copies
/// into a vector that the first clone moves into a second allocation, and
/// the id is cloned for the request's header, the call's log line and the
/// answer.
fn new_id() -> HeaderValue {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .expect("a UUID is a valid header value")
}

pin_project_lite::pin_project! {
    pub(crate) struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(mut id) = this.id.take()
            && let http::header::Entry::Vacant(entry) = response.headers_mut().entry(&X_REQUEST_ID)
        {
            // An id never repeats, so HPACK-indexing it (HTTP/2) only
            // fills the connection's header table, and h2 compares each
            // new id with every one still there: ~2.7k instructions per
            // h2c answer (`bench/profile/fdiff.py`). "Sensitive" sends it
            // as a literal never indexed (10 bytes more per answer: the
            // name in full); HTTP/1.1 ignores the flag.
            id.set_sensitive(true);
            entry.insert(id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// Answers with the request id it saw (its header), and
    /// `own` as its own `x-request-id` when given.
    fn echo_ids(
        own: Option<&'static str>,
    ) -> impl Service<Request<()>, Response = Response<String>, Error = std::convert::Infallible>
    {
        tower::service_fn(move |req: Request<()>| async move {
            let header = req.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned();
            let mut response = Response::new(header);
            if let Some(own) = own {
                response
                    .headers_mut()
                    .insert(&X_REQUEST_ID, HeaderValue::from_static(own));
            }
            Ok(response)
        })
    }

    #[tokio::test]
    async fn the_clients_id_is_kept_and_answered() {
        let req = Request::builder()
            .header("x-request-id", "client-7")
            .body(())
            .unwrap();
        let response = RequestIds::new(echo_ids(None)).oneshot(req).await.unwrap();
        assert_eq!(response.body(), "client-7");
        assert_eq!(response.headers()["x-request-id"], "client-7");
        assert!(response.headers()["x-request-id"].is_sensitive());
    }

    #[tokio::test]
    async fn a_request_without_one_gets_a_new_uuid_in_both_directions() {
        let response = RequestIds::new(echo_ids(None))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert!(
            response.headers()["x-request-id"].is_sensitive(),
            "a new id is never HPACK-indexed"
        );
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id, response.body());
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(id, uuid.hyphenated().to_string());
    }

    #[tokio::test]
    async fn an_answers_own_id_is_left_alone() {
        let req = Request::builder()
            .header("x-request-id", "client-7")
            .body(())
            .unwrap();
        let response = RequestIds::new(echo_ids(Some("own")))
            .oneshot(req)
            .await
            .unwrap();
        let ids: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
        assert_eq!(ids, ["own"]);
        assert!(
            !ids[0].is_sensitive(),
            "the answer's own value is untouched"
        );
    }
}
