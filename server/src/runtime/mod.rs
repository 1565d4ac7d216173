//! The runtime: one port that serves any tonic services over gRPC (HTTP/2,
//! h2c or TLS) and gRPC-web (binary and text, HTTP/1.1 and HTTP/2), with
//! CORS, request ids, health, reflection, a message size limit, gzip,
//! Prometheus metrics, graceful drain and an optional static web app.
//!
//! ```no_run
//! # async fn doc(svc: proto::v1::article_service_server::ArticleServiceServer<article_server::article::grpc::ArticleGrpc>) -> anyhow::Result<()> {
//! use article_server::runtime::RuntimeBuilder;
//! let runtime = RuntimeBuilder::new()
//!     .add_service(svc)
//!     .file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
//!     .allow_origins(vec!["https://app.example".into()])
//!     .bind("127.0.0.1:0".parse()?)
//!     .await?;
//! println!("listening on {}", runtime.url());
//! runtime.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Requests are dispatched by content type: `application/grpc*` goes to the
//! gRPC services (an unknown service or method answers UNIMPLEMENTED, in
//! gRPC-web framing when asked in gRPC-web), a POST to a gRPC-shaped path
//! with another content type is 415, and everything else goes to
//! `/metrics` and the static app. Browsers can only make unary and
//! server-streaming calls: gRPC-web has no client or bidi streaming.

pub mod limit;
pub mod observe;
pub mod tls;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use axum::{Router, response::IntoResponse, routing::get};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Service, ServiceBuilder};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::{ServeDir, ServeFile},
};

use self::{limit::MessageLimitLayer, observe::ObserveLayer};
use crate::config::DEFAULT_MAX_MESSAGE_BYTES;

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

/// Per-service settings of the runtime, applied to generated servers with
/// [`configure_service!`](crate::configure_service).
#[derive(Clone, Copy, Debug)]
pub struct ServiceSettings {
    pub max_message_bytes: usize,
}

/// Switches on gzip (accepted, and sent when the client accepts it) and
/// sets the decoding limit on a tonic-generated server, e.g.
/// `configure_service!(EchoServiceServer::new(Echo), runtime.service_settings())`.
/// A macro, not a trait, because generated servers share these methods by
/// name only, and a trait could not be implemented for servers generated
/// in another crate.
#[macro_export]
macro_rules! configure_service {
    ($server:expr, $settings:expr) => {{
        let settings: $crate::runtime::ServiceSettings = $settings;
        $server
            .accept_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(settings.max_message_bytes)
            .max_encoding_message_size(usize::MAX)
    }};
}

type ShutdownHook = Box<dyn FnOnce() + Send>;

/// Assembles a [`Runtime`].
pub struct RuntimeBuilder {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    allow_origins: Vec<String>,
    static_dir: Option<PathBuf>,
    settings: ServiceSettings,
    tls: Option<(PathBuf, PathBuf)>,
    drain_timeout: Duration,
    on_shutdown: Vec<ShutdownHook>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeBuilder {
    pub fn new() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_sets: Vec::new(),
            allow_origins: Vec::new(),
            static_dir: None,
            settings: ServiceSettings {
                max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            },
            tls: None,
            drain_timeout: Duration::from_secs(10),
            on_shutdown: Vec::new(),
        }
    }

    /// Largest request message (default 4 MiB). Set before adding services.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.settings.max_message_bytes = max;
        self
    }

    /// The settings for [`configure_service!`](crate::configure_service).
    pub fn service_settings(&self) -> ServiceSettings {
        self.settings
    }

    /// Mounts a service and reports it SERVING in health checks. The size
    /// limit applies to it whatever its own settings; for gzip, pass it
    /// through [`configure_service!`](crate::configure_service) first.
    pub fn add_service<S>(mut self, svc: S) -> Self
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
        self.routes.add_service(svc);
        self.names.push(S::NAME);
        self
    }

    /// An encoded `FileDescriptorSet` to serve through reflection.
    pub fn file_descriptor_set(mut self, fds: &'static [u8]) -> Self {
        self.descriptor_sets.push(fds);
        self
    }

    /// CORS origins; empty = any origin, without credentials.
    pub fn allow_origins(mut self, origins: Vec<String>) -> Self {
        self.allow_origins = origins;
        self
    }

    /// Serve this directory at `/`, with `index.html` for unknown paths.
    pub fn static_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.static_dir = dir;
        self
    }

    /// Serve HTTPS with this PEM certificate chain and key.
    pub fn tls(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls = Some((cert, key));
        self
    }

    /// How long in-flight calls may take after shutdown starts (default 10 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Runs `hook` when draining starts, e.g. to end long-lived streams.
    pub fn on_shutdown(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.on_shutdown.push(Box::new(hook));
        self
    }

    /// Binds the port (0 picks a free one) and assembles the service.
    pub async fn bind(self, addr: SocketAddr) -> anyhow::Result<Runtime> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local_addr = listener.local_addr()?;
        let tls = match &self.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        for name in &self.names {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let mut routes = self.routes;
        routes.add_service(crate::configure_service!(health_service, self.settings));
        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for fds in &self.descriptor_sets {
            reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(fds);
            reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(fds);
        }
        routes.add_service(reflection_v1.build_v1().context("reflection descriptors")?);
        routes.add_service(
            reflection_v1alpha
                .build_v1alpha()
                .context("reflection descriptors")?,
        );

        let grpc = ServiceBuilder::new()
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(ObserveLayer)
            .layer(MessageLimitLayer::new(self.settings.max_message_bytes))
            .service(routes.routes().prepare().into_axum_router());
        let grpc = Router::new().fallback_service(grpc);

        let metrics = metrics_handle();
        let mut http = Router::new()
            .route(
                "/metrics",
                get(move || std::future::ready(metrics.render())),
            )
            .route("/healthz", get(|| async { "ok\n" }));
        http = match &self.static_dir {
            Some(dir) => {
                anyhow::ensure!(
                    dir.join("index.html").is_file(),
                    "{} has no index.html",
                    dir.display()
                );
                http.fallback_service(
                    ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))),
                )
            }
            None => http.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") }),
        };
        let unsupported = Router::new().fallback(|| async {
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(header::ACCEPT, "application/grpc, application/grpc-web+proto, application/grpc-web-text")],
                "gRPC methods take application/grpc, application/grpc-web(+proto) or application/grpc-web-text\n",
            )
                .into_response()
        });

        let dispatch = Switch {
            targets: vec![grpc, unsupported, http],
            pick: Arc::new(|req| {
                let route = route_of(req);
                if route == 0 {
                    mark_protocol(req);
                }
                route
            }),
        };
        let allowed = allowed_origins(&self.allow_origins)?;
        let gate = Switch {
            targets: vec![
                Router::new()
                    .fallback_service(dispatch.clone())
                    .layer(cors(&self.allow_origins)?),
                Router::new().fallback_service(dispatch),
            ],
            pick: Arc::new(move |req| {
                usize::from(refused_origin(allowed.as_deref().map(Vec::as_slice), req))
            }),
        };
        // Request ids outermost, so even CORS preflight answers carry one.
        let service = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .service(gate);
        let app = Router::new().fallback_service(service);

        Ok(Runtime {
            listener,
            local_addr,
            tls,
            app,
            health,
            names: self.names,
            drain_timeout: self.drain_timeout,
            on_shutdown: self.on_shutdown,
        })
    }
}

/// Sends each request to one of several routers, chosen by `pick` (an
/// index into `targets`). `tower::steer::Steer` would do, but it is not
/// `Sync`, which axum needs.
#[derive(Clone)]
struct Switch {
    targets: Vec<Router>,
    pick: Arc<Pick>,
}

/// Chooses a [`Switch`] target (and may mark the request on the way).
type Pick = dyn Fn(&mut Request<axum::body::Body>) -> usize + Send + Sync;

impl Service<Request<axum::body::Body>> for Switch {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        // axum routers are always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<axum::body::Body>) -> Self::Future {
        let i = (self.pick)(&mut req);
        self.targets[i].call(req)
    }
}

/// Marks a gRPC request's wire protocol for the log line.
fn mark_protocol<B>(req: &mut Request<B>) {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let protocol = if content_type.starts_with("application/grpc-web-text") {
        "grpc-web-text"
    } else if content_type.starts_with("application/grpc-web") {
        "grpc-web"
    } else {
        "grpc"
    };
    req.extensions_mut().insert(observe::Protocol(protocol));
}

/// 0 = gRPC services, 1 = 415, 2 = plain HTTP.
fn route_of<B>(req: &Request<B>) -> usize {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/grpc") {
        return 0;
    }
    let path = req.uri().path();
    let grpc_shaped = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .is_some_and(|(service, method)| {
            service.contains('.') && !method.is_empty() && !method.contains('/')
        });
    if req.method() == Method::POST && grpc_shaped {
        1
    } else {
        2
    }
}

/// `None` = any origin.
fn allowed_origins(origins: &[String]) -> anyhow::Result<Option<Arc<Vec<HeaderValue>>>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let list = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .with_context(|| format!("bad origin {o:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Arc::new(list)))
}

/// Whether a request skips CORS: it has no `Origin`, or one outside the
/// configured list.
/// Such requests skip the CORS layer and so get no CORS headers at all
/// (tower-http's layer would still add the non-origin ones, e.g.
/// allow-methods); the browser then keeps the answer from the page.
fn refused_origin<B>(allowed: Option<&[HeaderValue]>, req: &Request<B>) -> bool {
    match (allowed, req.headers().get(header::ORIGIN)) {
        (Some(list), Some(origin)) => !list.contains(origin),
        // No Origin: not a cross-origin browser request (native clients,
        // curl), so CORS headers would be wasted bytes.
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow_origin = match allowed_origins(origins)? {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSE_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 60 * 60)))
}

/// The process-wide Prometheus recorder (metrics macros use one global
/// recorder, so every runtime in a process shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .expect("static bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding
            // program; then ours only renders what it records itself.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A bound, ready-to-run server.
pub struct Runtime {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    health: HealthReporter,
    names: Vec<&'static str>,
    drain_timeout: Duration,
    on_shutdown: Vec<ShutdownHook>,
}

impl Runtime {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT`, or `https://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn health_reporter(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves until `signal` completes, then drains: health turns
    /// NOT_SERVING, new connections are refused, shutdown hooks run (watch
    /// streams end), and in-flight calls get `drain_timeout` to finish.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Runtime {
            listener,
            tls,
            app,
            health,
            names,
            drain_timeout,
            on_shutdown,
            ..
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let _ = stop_rx.await;
        };
        let mut server = Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        let routes = Routes::from(app);
        let serve: std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match tls {
            Some(acceptor) => Box::pin(
                server
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(tls::incoming(listener, acceptor), stop),
            ),
            None => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                Box::pin(
                    server
                        .add_routes(routes)
                        .serve_with_incoming_shutdown(incoming, stop),
                )
            }
        };
        let mut serve = serve;
        tokio::select! {
            result = &mut serve => return result.context("server failed"),
            () = signal => {}
        }
        tracing::info!("shutting down: draining for up to {drain_timeout:?}");
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in names {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        for hook in on_shutdown {
            hook();
        }
        let _ = stop_tx.send(());
        match tokio::time::timeout(drain_timeout, serve).await {
            Ok(result) => result.context("server failed while draining")?,
            Err(_) => tracing::warn!("drain timed out; remaining connections were closed"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}
