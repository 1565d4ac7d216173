//! The one decision of the port: which of three services answers a
//! request, by its content type.
//!
//! * `application/grpc*` (gRPC, gRPC-web binary and text) → the gRPC
//!   services; an unknown service or method answers UNIMPLEMENTED (in
//!   gRPC-web framing when asked in gRPC-web), never the web app's
//!   `index.html`.
//! * A POST to a gRPC-shaped path (`/pkg.Service/Method`) with another
//!   content type → 415 with an `Accept` naming the gRPC content types.
//! * Everything else → plain HTTP: `/metrics`, `/healthz`, the static app.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{
    Router,
    response::{IntoResponse as _, Response},
};
use futures::future::Either;
use http::{Method, Request, StatusCode, header};
use tower::{
    Service, ServiceExt as _,
    util::{BoxCloneSyncService, Oneshot},
};

use crate::observe::Protocol;

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Grpc(Protocol),
    Unsupported,
    Http,
}

/// Picks the target of a request from its content type, method and path.
pub(crate) fn target_of<B>(req: &Request<B>) -> Target {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(rest) = content_type.strip_prefix("application/grpc") {
        let protocol = if rest.starts_with("-web-text") {
            Protocol::GrpcWebText
        } else if rest.starts_with("-web") {
            Protocol::GrpcWeb
        } else {
            Protocol::Grpc
        };
        return Target::Grpc(protocol);
    }
    let grpc_shaped = req
        .uri()
        .path()
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .is_some_and(|(service, method)| {
            service.contains('.') && !method.is_empty() && !method.contains('/')
        });
    if req.method() == Method::POST && grpc_shaped {
        Target::Unsupported
    } else {
        Target::Http
    }
}

/// The gRPC side of the port, boxed: a router around it would match the
/// path once more (and store it as a URL parameter) on every call.
pub(crate) type GrpcService = BoxCloneSyncService<Request<axum::body::Body>, Response, Infallible>;

/// The three services of the port, and the content-type check between them.
#[derive(Clone)]
pub(crate) struct Dispatch {
    pub(crate) grpc: GrpcService,
    pub(crate) unsupported: Router,
    pub(crate) http: Router,
}

impl Dispatch {
    pub(crate) fn new(grpc: GrpcService, http: Router) -> Self {
        Self {
            grpc,
            unsupported: Router::new().fallback(unsupported),
            http,
        }
    }
}

impl Service<Request<axum::body::Body>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Oneshot<GrpcService, Request<axum::body::Body>>,
        axum::routing::future::RouteFuture<Infallible>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each gRPC call makes its own clone ready; axum routers are always
        // ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<axum::body::Body>) -> Self::Future {
        match target_of(&req) {
            Target::Grpc(protocol) => {
                req.extensions_mut().insert(protocol);
                crate::limit::note_declared_length(&mut req);
                Either::Left(self.grpc.clone().oneshot(req))
            }
            Target::Unsupported => Either::Right(self.unsupported.call(req)),
            Target::Http => Either::Right(self.http.call(req)),
        }
    }
}

async fn unsupported() -> axum::response::Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(
            header::ACCEPT,
            "application/grpc, application/grpc-web+proto, application/grpc-web-text",
        )],
        "gRPC methods take application/grpc, application/grpc-web(+proto) or application/grpc-web-text\n",
    )
        .into_response()
}

/// Sends a request through the CORS layer or around it (see [`crate::cors`]).
#[derive(Clone)]
pub(crate) struct CorsGate {
    pub(crate) with_cors: Router,
    /// Straight to the dispatch: most calls (every native one) take
    /// this way, so it is not wrapped in a router of its own.
    pub(crate) without: Dispatch,
    pub(crate) allowed: crate::cors::Origins,
}

impl Service<Request<axum::body::Body>> for CorsGate {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <Dispatch as Service<Request<axum::body::Body>>>::Future,
        axum::routing::future::RouteFuture<Infallible>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<axum::body::Body>) -> Self::Future {
        if crate::cors::refused_origin(&self.allowed, &req) {
            Either::Left(self.without.call(req))
        } else {
            Either::Right(self.with_cors.call(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, content_type: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn content_type_picks_the_target() {
        let path = "/pkg.Svc/Method";
        assert_eq!(
            target_of(&req(Method::POST, path, Some("application/grpc"))),
            Target::Grpc(Protocol::Grpc)
        );
        assert_eq!(
            target_of(&req(Method::POST, path, Some("application/grpc+proto"))),
            Target::Grpc(Protocol::Grpc)
        );
        assert_eq!(
            target_of(&req(Method::POST, path, Some("application/grpc-web+proto"))),
            Target::Grpc(Protocol::GrpcWeb)
        );
        assert_eq!(
            target_of(&req(Method::POST, path, Some("application/grpc-web-text"))),
            Target::Grpc(Protocol::GrpcWebText)
        );
        assert_eq!(
            target_of(&req(Method::POST, path, Some("application/json"))),
            Target::Unsupported
        );
        assert_eq!(
            target_of(&req(Method::POST, path, None)),
            Target::Unsupported
        );
        assert_eq!(target_of(&req(Method::GET, path, None)), Target::Http);
        assert_eq!(target_of(&req(Method::POST, "/upload", None)), Target::Http);
        assert_eq!(
            target_of(&req(Method::POST, "/a.b/c/d", None)),
            Target::Http
        );
        assert_eq!(target_of(&req(Method::GET, "/", None)), Target::Http);
    }
}
