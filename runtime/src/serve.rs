//! Serving the admitted connections: hyper-util's `auto` builder (HTTP/1.1
//! and HTTP/2 on one port, told apart by the HTTP/2 preface), one task per
//! connection, and hyper-util's `GracefulShutdown` for the drain.
//!
//! This replaced tonic's transport `Server`, which the runtime used for
//! nothing else: around every request it added a boxed service per
//! connection (cloned per request), a tracing span, an error-recovery layer
//! for a service that cannot fail, a re-boxed response body and, above
//! it, an axum router only to adapt the types. The two things of it that
//! requests can see are kept: the `grpc-timeout` deadline
//! ([`crate::deadline`]) and the connection's addresses in each request's
//! extensions (tonic's `Request::remote_addr` and `local_addr` read them).
//!
//! The HTTP settings are the ones tonic 0.14's `Server` gave hyper, so
//! clients see the same server: HTTP/2 with no limit on concurrent streams
//! (hyper's own default is 200; the runtime's call limit bounds calls),
//! hyper's 1 MiB windows without adaptive flow control, 16 KiB frames and
//! header lists, keepalive PINGs; HTTP/1.1 with hyper's 30 s header-read
//! timeout between requests (hyper enforces it only when given a timer).
//! One setting is deliberately not tonic's: tonic turns off hyper's limit on
//! streams the server itself resets (1,024 before a GOAWAY), which hyper
//! advises against (RUSTSEC-2024-0003); the runtime keeps it. Resets by the
//! client are bounded by h2's own default (20 pending).

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{body::Body, response::Response};
use http::Request;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::server::Connected;
use tower::Service;

/// The connection builder of the port.
pub(crate) type Builder = Arc<auto::Builder<TokioExecutor>>;

/// HTTP/1.1 and HTTP/2 as tonic's `Server` had them (see the module docs),
/// with HTTP/2 keepalive PINGs every `keepalive.0`, answered within
/// `keepalive.1`.
pub(crate) fn builder(keepalive: (Duration, Duration)) -> Builder {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(keepalive.0)
        .keep_alive_timeout(keepalive.1)
        .adaptive_window(false)
        .max_concurrent_streams(None)
        .max_pending_accept_reset_streams(None);
    Arc::new(builder)
}

/// Serves `io` with `service` in a task of its own, watched by `graceful`.
pub(crate) fn connection<IO, S>(builder: &Builder, graceful: &GracefulShutdown, io: IO, service: S)
where
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let service = PerConnection {
        service,
        info: io.connect_info(),
    };
    let (builder, watcher) = (builder.clone(), graceful.watcher());
    tokio::spawn(async move {
        let conn = builder.serve_connection(TokioIo::new(io), service);
        if let Err(err) = watcher.watch(conn).await {
            tracing::debug!("connection ended with an error: {err}");
        }
    });
}

/// The port's service for the requests of one connection.
#[derive(Clone)]
struct PerConnection<S, I> {
    service: S,
    /// What tonic's `Request::remote_addr` reads.
    info: I,
}

impl<S, I> hyper::service::Service<Request<Incoming>> for PerConnection<S, I>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
    I: Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(self.info.clone());
        // Without `poll_ready`: every layer of the port's service is always
        // ready (each gRPC call readies a clone of the gRPC side itself, see
        // `Dispatch`), which `the_port_service_is_always_ready` checks.
        self.service.clone().call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use tower::Service as _;

    #[tokio::test]
    async fn the_port_service_is_always_ready() {
        // `PerConnection::call` skips `poll_ready`: this is what allows it.
        let (assembled, _) = crate::RuntimeBuilder::new().assemble().await.unwrap();
        let mut port = assembled.app;
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(port.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    }
}
