//! The mounted gRPC services, found by the service name in the path.
//!
//! Takes the place of tonic's `Routes`, an axum router with one
//! `/{service}/{*rest}` route per service: for every call that matched the
//! path in a route tree, percent-decoded the wildcard and stored it in the
//! request's extensions as a URL parameter (a hash map), all to pick one of
//! a handful of services by a string comparison. Here the choice is that
//! comparison; an unknown service answers UNIMPLEMENTED as tonic's routes
//! do (a trailers-only response). Calls still go through the services'
//! generated `call`, unchanged; the request body is the size limit's
//! (already a tonic `Body`), not wrapped once more.
//!
//! Each service is kept as a closure that clones it (tonic's generated
//! services clone an `Arc`) and boxes the call's future: one allocation per
//! call. Tower's `BoxCloneSyncService`, kept before, cloned the service
//! into a box of its own for every call and then boxed its future too,
//! behind a `Oneshot`.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::response::{IntoResponse as _, Response};
use futures::future::{BoxFuture, Either, Ready, ready};
use http::Request;
use tonic::{body::Body, server::NamedService};
use tower::Service;

/// A call's answer.
type Answer = BoxFuture<'static, Result<Response, Infallible>>;
/// One service: a request in, its answer out.
type Boxed = Arc<dyn Fn(Request<Body>) -> Answer + Send + Sync>;

/// The services by name, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct GrpcServices {
    services: Arc<Vec<(&'static str, Boxed)>>,
}

impl GrpcServices {
    pub(crate) fn add<S>(&mut self, svc: S)
    where
        S: Service<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let boxed: Boxed = Arc::new(move |req| {
            let mut svc = svc.clone();
            Box::pin(async move {
                // tonic's services are always ready; asked all the same, as
                // `Service` requires.
                let Ok(()) = std::future::poll_fn(|cx| svc.poll_ready(cx)).await;
                let Ok(response) = svc.call(req).await;
                Ok(response.into_response())
            })
        });
        Arc::make_mut(&mut self.services).push((S::NAME, boxed));
    }

    /// The names of the services added so far, in order.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.services.iter().map(|(name, _)| *name).collect()
    }

    fn find(&self, path: &str) -> Option<&Boxed> {
        // `/{service}/{method}`: a method of any length but empty, as the
        // routes' `{*rest}` matched.
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if method.is_empty() {
            return None;
        }
        self.services
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, svc)| svc)
    }
}

impl Service<Request<Body>> for GrpcServices {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answer, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call gets its own clone of its service, made ready there.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match self.find(req.uri().path()) {
            Some(svc) => Either::Left(svc(req)),
            None => Either::Right(ready(Ok(unimplemented()))),
        }
    }
}

/// What tonic's routes answer for an unknown service.
fn unimplemented() -> Response {
    let (parts, ()) = tonic::Status::unimplemented("")
        .into_http::<()>()
        .into_parts();
    Response::from_parts(parts, axum::body::Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_found_by_the_first_path_segment_with_a_method_after_it() {
        let mut services = GrpcServices::default();
        let (_, health) = tonic_health::server::health_reporter();
        services.add(health);
        let name = "grpc.health.v1.Health";
        assert!(services.find(&format!("/{name}/Check")).is_some());
        assert!(services.find(&format!("/{name}/a/b")).is_some());
        assert!(services.find(&format!("/{name}/")).is_none());
        assert!(services.find(&format!("/{name}")).is_none());
        assert!(services.find(&format!("{name}/Check")).is_none());
        assert!(services.find("/grpc.health.v1.Healthy/Check").is_none());
    }
}
