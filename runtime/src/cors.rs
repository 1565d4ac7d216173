//! CORS for browsers on other origins: a preset for gRPC-web (the request
//! headers its clients send, the response headers they must read) and an
//! allow-list of origins.
//!
//! A request from an origin outside the list, or without `Origin` at all,
//! skips the CORS layer and gets no CORS headers (tower-http's layer would
//! still add the non-origin ones, e.g. allow-methods); the browser then
//! keeps the answer from the page.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use http::{HeaderName, HeaderValue, Method, Request, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers a browser may send on gRPC-web calls.
pub const CORS_ALLOW_HEADERS: [&str; 7] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "x-request-id",
    "grpc-accept-encoding",
];

/// Response headers a browser script may read.
pub const CORS_EXPOSE_HEADERS: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    "grpc-encoding",
];

/// The configured origins; `None` = any origin.
pub(crate) type Origins = Option<Arc<Vec<HeaderValue>>>;

/// Parses the allow-list; empty = any origin.
pub(crate) fn allowed_origins(origins: &[String]) -> anyhow::Result<Origins> {
    if origins.is_empty() {
        return Ok(None);
    }
    let list = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .with_context(|| format!("bad CORS origin {o:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Arc::new(list)))
}

/// Whether a request skips CORS: it has no `Origin` (native clients, curl:
/// CORS headers would be wasted bytes), or one outside the list.
pub(crate) fn refused_origin<B>(allowed: &Origins, req: &Request<B>) -> bool {
    match (allowed, req.headers().get(header::ORIGIN)) {
        (Some(list), Some(origin)) => !list.contains(origin),
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

/// The CORS layer for allowed origins, exposing `expose` beside the
/// gRPC-web preset.
pub(crate) fn layer(allowed: &Origins, expose: &[HeaderName]) -> CorsLayer {
    let allow_origin = match allowed {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().cloned()),
    };
    let exposed: Vec<HeaderName> = CORS_EXPOSE_HEADERS
        .map(HeaderName::from_static)
        .into_iter()
        .chain(expose.iter().cloned())
        .collect();
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(exposed)
        .max_age(Duration::from_secs(24 * 60 * 60))
}
