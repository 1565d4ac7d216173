//! One port for your tonic services: gRPC (HTTP/2, h2c or TLS) and
//! gRPC-web (binary and text, over HTTP/1.1 and HTTP/2), so browsers call
//! the same services as native clients — no proxy, no JSON gateway.
//!
//! Around the services you mount, the runtime adds: dispatch by content
//! type, CORS (a gRPC-web preset and an origin allow-list), `x-request-id`
//! on every response, `grpc.health.v1.Health` (NOT_SERVING while
//! draining), server reflection v1 and v1alpha, a request message size
//! limit answered with RESOURCE_EXHAUSTED (over HTTP/1.1 after reading and
//! discarding the rest of the body, bounded, so the client sees it), gzip,
//! Prometheus metrics at `/metrics`, one log line per call, graceful drain,
//! TLS with ALPN `h2` and `http/1.1`, and a static web app with an
//! `index.html` fallback.
//!
//! ```no_run
//! use grpc_runtime::{RuntimeBuilder, configure_service, shutdown_signal};
//! // Any tonic-generated server; this one is the test kit's small Echo.
//! use testkit::echo::{Echo, EchoServiceServer, FILE_DESCRIPTOR_SET};
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let builder = RuntimeBuilder::new().allow_origins(vec!["https://app.example".into()]);
//!     // gzip both ways and the runtime's message limit on a generated server:
//!     let echo = configure_service!(EchoServiceServer::new(Echo), builder.service_settings());
//!     let runtime = builder
//!         .add_service(echo)
//!         .file_descriptor_set(FILE_DESCRIPTOR_SET)
//!         .bind("127.0.0.1:0".parse()?)
//!         .await?;
//!     println!("listening on {}", runtime.url());
//!     runtime.run_until(shutdown_signal()).await
//! }
//! ```
//!
//! `examples/echo.rs` is a whole program: its own service implementation,
//! with `RuntimeArgs` (feature `cli`) flattened into its own flags.
//!
//! # How a request is answered
//! `application/grpc*` goes to the gRPC services (an unknown service or
//! method answers UNIMPLEMENTED in the protocol it was asked in, as a
//! trailers-only response, never the web app's page); a POST to a
//! gRPC-shaped path (`/pkg.Service/Method`) with another content type is
//! 415 with an `Accept` header; everything else is plain HTTP: `/metrics`,
//! `/healthz` and the static app (or 404).
//!
//! # Health
//! `grpc.health.v1.Health` and `GET /healthz` tell the same thing: SERVING
//! and `200 ok`, or NOT_SERVING and `503 not serving` while draining or
//! while the application says it cannot serve ([`Health::set_serving`],
//! e.g. while its database is unreachable), so a load balancer checking
//! either routes away and back by itself.
//!
//! # No global state
//! Metrics go to the runtime's own registry ([`Metrics`], shared with
//! [`RuntimeBuilder::metrics`] to add your own), never to the `metrics`
//! crate's global recorder, which stays the program's. Logs are `tracing`
//! events (target `grpc`): installing a subscriber is the program's choice.
//! One exception, at [`bind`](RuntimeBuilder::bind): the process's soft
//! open-files limit is raised to its hard limit (and both are logged),
//! since a server held at a soft limit of 1024 stalls at about a thousand
//! connections.
//!
//! # Connections
//! A new connection that sends nothing within
//! [`header_read_timeout`](RuntimeBuilder::header_read_timeout) (10 s) is
//! closed; [`max_connections`](RuntimeBuilder::max_connections) refuses
//! connections beyond a limit; accept errors are logged (rate-limited) and
//! back off instead of spinning; idle HTTP/2 connections get keepalive
//! PINGs every 30 s and are closed when one goes unanswered for 20 s
//! ([`http2_keepalive`](RuntimeBuilder::http2_keepalive)). Connections
//! are served by hyper-util's `auto` builder with the HTTP/1.1 and HTTP/2
//! settings tonic's transport server uses; a gRPC call whose `grpc-timeout`
//! runs out before it answers is dropped and answered CANCELLED, as there.
//!
//! # Overload
//! At most [`max_concurrent_calls`](RuntimeBuilder::max_concurrent_calls)
//! gRPC calls are handled at once; one more is refused at once with
//! UNAVAILABLE (which clients retry) instead of waiting in a queue, so
//! admitted calls keep a bounded latency and memory stays bounded. A call
//! counts until its response headers (a watch stream only until it
//! starts); health checks are never refused.
//!
//! # Drain
//! [`Runtime::run_until`] serves until its signal, then: health turns
//! NOT_SERVING, the port closes, [`on_shutdown`](RuntimeBuilder::on_shutdown)
//! hooks run, and calls in flight get
//! [`drain_timeout`](RuntimeBuilder::drain_timeout) to finish. Connections
//! still open then are closed, which cancels their calls, and `run_until`
//! returns.
//!
//! # Testing
//! [`RuntimeBuilder::into_service`] gives the service the port serves, to
//! call in-process (e.g. with `tower::ServiceExt::oneshot`): the same
//! dispatch, CORS, limits and metrics, without a socket.
//!
//! # Features
//! * `cli`: `RuntimeArgs`, the settings as clap arguments with
//!   environment variables under a prefix of your choice.
//!
//! # Limitations
//! * Browsers can only make unary and server-streaming calls: gRPC-web has
//!   no client or bidi streaming.
//! * The size limit counts a message as sent on the wire (compressed, when
//!   the client compresses), and applies to requests only.
//! * One TLS certificate, read at `bind`; no client certificates and no
//!   reloading.
//! * gzip is the only compression; the static app is served as files on
//!   disk, without precompressed variants or cache headers.

#![warn(missing_docs)]

mod accept;
#[cfg(feature = "cli")]
mod args;
mod cors;
mod deadline;
mod dispatch;
mod drain;
mod encoded;
mod grpc_web;
mod limit;
mod metrics;
mod observe;
mod overload;
mod request_id;
mod serve;
mod services;
mod static_app;
mod tls;

use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use axum::{Router, routing::get};
use futures::StreamExt as _;
use http::{HeaderName, StatusCode};
use tonic::{body::Body, server::NamedService};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Service, ServiceBuilder, util::BoxCloneSyncService};

#[cfg(feature = "cli")]
pub use self::args::RuntimeArgs;
#[cfg(feature = "precompress")]
pub use self::static_app::{Precompressed, precompress};
pub use self::{
    cors::{CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS},
    encoded::EncodedMessage,
    metrics::Metrics,
};
use self::{
    deadline::Deadline,
    dispatch::{CorsGate, Dispatch},
    drain::Connections,
    encoded::SendEncodedLayer,
    limit::MessageLimitLayer,
    observe::ObserveLayer,
    overload::Overload,
    request_id::RequestIds,
    services::GrpcServices,
    static_app::StaticApp,
};

/// Default largest request message: 4 MiB, gRPC's customary limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Default time a new connection may take to send its first byte: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-service settings of the runtime, applied to generated servers with
/// [`configure_service!`].
#[derive(Clone, Copy, Debug)]
pub struct ServiceSettings {
    /// Largest request message, in bytes.
    pub max_message_bytes: usize,
}

/// Switches on gzip (accepted, and sent when the client accepts it) and
/// sets the decoding limit on a tonic-generated server, e.g.
/// `configure_service!(EchoServiceServer::new(Echo), builder.service_settings())`.
/// A macro, not a trait, because generated servers share these methods by
/// name only, and a trait could not be implemented for servers generated
/// in another crate.
#[macro_export]
macro_rules! configure_service {
    ($server:expr, $settings:expr) => {{
        let settings: $crate::ServiceSettings = $settings;
        $server
            .accept_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(settings.max_message_bytes)
            .max_encoding_message_size(usize::MAX)
    }};
}

type ShutdownHook = Box<dyn FnOnce() + Send>;

/// Assembles a [`Runtime`]: services, then settings, then [`bind`](Self::bind).
pub struct RuntimeBuilder {
    services: GrpcServices,
    descriptor_sets: Vec<&'static [u8]>,
    allow_origins: Vec<String>,
    expose_headers: Vec<HeaderName>,
    static_dir: Option<PathBuf>,
    settings: ServiceSettings,
    tls: Option<(PathBuf, PathBuf)>,
    drain_timeout: Duration,
    on_shutdown: Vec<ShutdownHook>,
    metrics: Option<Metrics>,
    max_connections: usize,
    header_read_timeout: Option<Duration>,
    max_concurrent_calls: usize,
    http2_keepalive: (Duration, Duration),
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeBuilder {
    /// No services yet; any origin; 4 MiB limit; 10 s drain; plain TCP.
    pub fn new() -> Self {
        Self {
            services: GrpcServices::default(),
            descriptor_sets: Vec::new(),
            allow_origins: Vec::new(),
            expose_headers: Vec::new(),
            static_dir: None,
            settings: ServiceSettings {
                max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            },
            tls: None,
            drain_timeout: Duration::from_secs(10),
            on_shutdown: Vec::new(),
            metrics: None,
            max_connections: 0,
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            max_concurrent_calls: overload::default_max_concurrent_calls(),
            http2_keepalive: (Duration::from_secs(30), Duration::from_secs(20)),
        }
    }

    /// Applies command-line settings: origins, static app, size limit,
    /// TLS and drain time (the address goes to [`bind`](Self::bind)).
    /// Call before adding services, since the size limit is read by
    /// [`service_settings`](Self::service_settings).
    #[cfg(feature = "cli")]
    pub fn configure(mut self, args: &RuntimeArgs) -> Self {
        self = self
            .max_message_bytes(args.max_message_bytes)
            .allow_origins(args.allow_origins.clone())
            .static_dir(args.static_dir.clone())
            .drain_timeout(args.drain_timeout())
            .max_connections(args.max_connections)
            .header_read_timeout(args.header_read_timeout())
            .max_concurrent_calls(args.max_concurrent_calls);
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            self = self.tls(cert.clone(), key.clone());
        }
        self
    }

    /// Largest request message (default 4 MiB); larger ones are answered
    /// RESOURCE_EXHAUSTED before they are buffered. Set before adding services.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.settings.max_message_bytes = max;
        self
    }

    /// The settings for [`configure_service!`].
    pub fn service_settings(&self) -> ServiceSettings {
        self.settings
    }

    /// Mounts a service and reports it SERVING in health checks. The size
    /// limit applies to it whatever its own settings; for gzip, pass it
    /// through [`configure_service!`] first.
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: Service<http::Request<Body>, Error = std::convert::Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services.add(svc);
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

    /// Response headers of your own that browser scripts on other origins
    /// may read, beside [`CORS_EXPOSE_HEADERS`].
    pub fn expose_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.expose_headers.extend(names);
        self
    }

    /// Serve this directory at `/`, with `index.html` for unknown paths.
    /// Only files whose real path (symlinks resolved) is inside the
    /// directory are served; anything else is a bare 404.
    pub fn static_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.static_dir = dir;
        self
    }

    /// Serve HTTPS with this PEM certificate chain and key.
    pub fn tls(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls = Some((cert, key));
        self
    }

    /// How long in-flight calls may take after shutdown starts (default
    /// 10 s); connections still open then are closed, cancelling their calls.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Most connections open at once (default 0: no limit but the
    /// open-files limit); one more is refused with a logged warning (and
    /// an HTTP/1.1 `503` over cleartext), then closed.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a new connection may stay silent before it is closed
    /// (default 10 s; `None`: forever). Later silences are hyper's:
    /// 30 s between HTTP/1.1 requests, keepalive PINGs on HTTP/2.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// HTTP/2 keepalive: a PING after `interval` without traffic (idle
    /// connections included), and the connection closed when the answer
    /// takes longer than `timeout` (default 30 s and 20 s). Live idle
    /// clients answer and stay; dead ones are closed.
    pub fn http2_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2_keepalive = (interval, timeout);
        self
    }

    /// Most gRPC calls handled at once (default: 256 per core; 0 = no
    /// limit). One more is refused at once with UNAVAILABLE
    /// naming `--max-concurrent-calls`, never queued. A call counts until
    /// its response headers: a server stream only until it starts. Health
    /// checks are never refused.
    pub fn max_concurrent_calls(mut self, max: usize) -> Self {
        self.max_concurrent_calls = max;
        self
    }

    /// Runs `hook` when draining starts, e.g. to end long-lived streams.
    pub fn on_shutdown(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.on_shutdown.push(Box::new(hook));
        self
    }

    /// The registry the runtime records its metrics in and `/metrics`
    /// renders; share it to add your own. Default: a new one.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Binds the port (0 picks a free one) and assembles the service.
    ///
    /// Raises the process's soft open-files limit to its hard limit (and
    /// logs both): the one process-wide change the runtime makes, since a
    /// server held at a soft limit of 1024 stalls at about a thousand
    /// connections.
    pub async fn bind(self, addr: SocketAddr) -> anyhow::Result<Runtime> {
        accept::raise_open_files_limit();
        let listener = accept::listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let local_addr = listener.local_addr()?;
        let tls = match &self.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let drain_timeout = self.drain_timeout;
        let (max_connections, header_read_timeout, http2_keepalive) = (
            self.max_connections,
            self.header_read_timeout,
            self.http2_keepalive,
        );
        let (assembled, on_shutdown) = self.assemble().await?;
        Ok(Runtime {
            listener,
            local_addr,
            tls,
            app: assembled.app,
            health: assembled.health,
            metrics: assembled.metrics,
            drain_timeout,
            on_shutdown,
            max_connections,
            header_read_timeout,
            http2_keepalive,
        })
    }

    /// The service [`bind`](Self::bind) serves on its port, without the
    /// port: call it in-process (e.g. with `tower::ServiceExt::oneshot`),
    /// or nest it in an axum application of your own.
    ///
    /// Everything about requests is the same as on the port (dispatch,
    /// CORS, request ids, limit, gzip, metrics, health and reflection, the
    /// static app). What belongs to connections is not included: TLS,
    /// HTTP/1.1 and HTTP/2 handling, keep-alive, the drain and its
    /// [`on_shutdown`](Self::on_shutdown) hooks (which are dropped).
    ///
    /// ```
    /// use tower::ServiceExt as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> anyhow::Result<()> {
    /// let app = grpc_runtime::RuntimeBuilder::new().into_service().await?;
    /// let request = http::Request::get("/healthz").body(axum::body::Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), http::StatusCode::OK);
    /// assert!(response.headers().contains_key("x-request-id"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn into_service(self) -> anyhow::Result<Router> {
        Ok(Router::new().fallback_service(self.assemble().await?.0.app))
    }

    /// Builds the service of the port; shared by [`bind`](Self::bind) and
    /// [`into_service`](Self::into_service), so in-process tests exercise
    /// what is served.
    async fn assemble(self) -> anyhow::Result<(Assembled, Vec<ShutdownHook>)> {
        let metrics = self.metrics.unwrap_or_default();

        let (reporter, health_service) = tonic_health::server::health_reporter();
        // The application's services (health and reflection come next).
        let health = Health::new(reporter, self.services.names());
        health.apply(true).await;
        let mut routes = self.services;
        routes.add(configure_service!(health_service, self.settings));
        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for fds in &self.descriptor_sets {
            reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(fds);
            reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(fds);
        }
        routes.add(reflection_v1.build_v1().context("reflection descriptors")?);
        routes.add(
            reflection_v1alpha
                .build_v1alpha()
                .context("reflection descriptors")?,
        );

        let services = ServiceBuilder::new()
            .layer(MessageLimitLayer::new(self.settings.max_message_bytes))
            .layer(SendEncodedLayer)
            .service(routes);
        // Refusals of the load shedding are logged and counted, and
        // translated to gRPC-web like any other answer.
        let limited = Overload::new(services, self.max_concurrent_calls);
        let grpc = ServiceBuilder::new()
            .layer(grpc_web::GrpcWebLayer)
            .layer(ObserveLayer::new(metrics.clone()))
            .service(Deadline::new(limited));
        let grpc: dispatch::GrpcService = BoxCloneSyncService::new(grpc);

        let registry = metrics.clone();
        let mut http = Router::new()
            .route(
                "/metrics",
                get(move || std::future::ready(registry.render())),
            )
            .route("/healthz", {
                let health = health.clone();
                get(move || {
                    let serving = health.is_serving();
                    async move {
                        if serving {
                            (StatusCode::OK, "ok\n")
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
                        }
                    }
                })
            });
        http = match &self.static_dir {
            Some(dir) => http.fallback_service(StaticApp::new(dir)?),
            None => http.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") }),
        };

        let dispatch = Dispatch::new(grpc, http);
        let allowed = cors::allowed_origins(&self.allow_origins)?;
        let gate = CorsGate {
            with_cors: Router::new()
                .fallback_service(dispatch.clone())
                .layer(cors::layer(&allowed, &self.expose_headers)),
            without: dispatch,
            allowed,
        };
        // Request ids outermost, so even CORS preflight answers carry one.
        let service = RequestIds::new(gate);

        let assembled = Assembled {
            app: service,
            health,
            metrics,
        };
        Ok((assembled, self.on_shutdown))
    }
}

/// The service of the port: request ids around the CORS gate.
type Port = RequestIds<CorsGate>;

/// The service of the port and the handles into it.
struct Assembled {
    app: Port,
    health: Health,
    metrics: Metrics,
}

/// The runtime's overall health: what `grpc.health.v1.Health` reports for
/// `""` and every mounted service, and what `/healthz` answers. SERVING
/// when the application says it can serve (the default) and the runtime is
/// not draining; once draining starts it stays NOT_SERVING.
#[derive(Clone)]
pub struct Health {
    inner: Arc<HealthInner>,
}

struct HealthInner {
    reporter: HealthReporter,
    names: Vec<&'static str>,
    /// Whether `/healthz` answers 200; follows `state`.
    serving: AtomicBool,
    /// (the application says it can serve, draining); one lock so a
    /// `set_serving(true)` racing the drain cannot end SERVING.
    state: tokio::sync::Mutex<(bool, bool)>,
}

impl Health {
    fn new(reporter: HealthReporter, names: Vec<&'static str>) -> Self {
        Self {
            inner: Arc::new(HealthInner {
                reporter,
                names,
                serving: AtomicBool::new(false),
                state: tokio::sync::Mutex::new((true, false)),
            }),
        }
    }

    /// Reports SERVING (unless draining) or NOT_SERVING, for `""`, every
    /// service and `/healthz` (200 or 503).
    pub async fn set_serving(&self, serving: bool) {
        let mut state = self.inner.state.lock().await;
        state.0 = serving;
        self.publish(state.0 && !state.1).await;
    }

    /// Whether health checks report SERVING now.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    async fn drain(&self) {
        let mut state = self.inner.state.lock().await;
        state.1 = true;
        self.publish(false).await;
    }

    async fn apply(&self, serving: bool) {
        let _state = self.inner.state.lock().await;
        self.publish(serving).await;
    }

    async fn publish(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.inner.serving.store(serving, Ordering::Release);
        self.inner.reporter.set_service_status("", status).await;
        for name in &self.inner.names {
            self.inner.reporter.set_service_status(*name, status).await;
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C), for [`Runtime::run_until`].
/// The handlers are installed when this is called, not when the future is
/// first polled, so a signal sent right after startup is already a
/// graceful shutdown.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    tracing::info!("SIGINT received");
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}

/// A bound, ready-to-run server.
pub struct Runtime {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Port,
    health: Health,
    metrics: Metrics,
    drain_timeout: Duration,
    on_shutdown: Vec<ShutdownHook>,
    max_connections: usize,
    header_read_timeout: Option<Duration>,
    http2_keepalive: (Duration, Duration),
}

impl Runtime {
    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT`, or `https://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Sets services' health status one by one (the runtime sets SERVING
    /// at start and NOT_SERVING when draining starts). `/healthz` follows
    /// [`health`](Self::health), not this.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.inner.reporter.clone()
    }

    /// The overall health, to report NOT_SERVING (gRPC health and
    /// `/healthz` 503) while the application cannot serve, e.g. while its
    /// database is unreachable, and SERVING again when it can.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Shorthand for `self.health().set_serving(serving)`.
    pub async fn set_serving(&self, serving: bool) {
        self.health.set_serving(serving).await;
    }

    /// The registry `/metrics` renders.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serves until `signal` completes, then drains: health turns
    /// NOT_SERVING, new connections are refused, shutdown hooks run (watch
    /// streams end), and in-flight calls get `drain_timeout` to finish.
    /// Connections still open then are closed, which cancels their calls.
    /// Dropping the returned future closes all connections at once.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Runtime {
            listener,
            tls,
            app,
            health,
            drain_timeout,
            on_shutdown,
            max_connections,
            header_read_timeout,
            http2_keepalive,
            ..
        } = self;
        let builder = serve::builder(http2_keepalive);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(Connections::new(header_read_timeout));
        let admission = accept::Admission {
            connections: connections.clone(),
            max_connections,
            cleartext: tls.is_none(),
        };
        let tcp = accept::tcp_connections(listener, admission);
        // Accepts until dropped; dropping it closes the port.
        let mut accept: std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> = match tls {
            Some(acceptor) => Box::pin(tls::incoming(tcp, acceptor).for_each(|conn| {
                if let Ok(io) = conn {
                    serve::connection(&builder, &graceful, connections.wrap(io), app.clone());
                }
                std::future::ready(())
            })),
            None => Box::pin(tcp.for_each(|conn| {
                if let Ok(io) = conn {
                    serve::connection(&builder, &graceful, connections.wrap(io), app.clone());
                }
                std::future::ready(())
            })),
        };
        tokio::select! {
            () = &mut accept => anyhow::bail!("the accept loop ended"),
            () = signal => {}
        }
        tracing::info!("shutting down: draining for up to {drain_timeout:?}");
        health.drain().await;
        drop(accept);
        for hook in on_shutdown {
            hook();
        }
        // Connections finish their calls in flight and close; HTTP/2
        // clients get a GOAWAY.
        let mut drained = std::pin::pin!(graceful.shutdown());
        if tokio::time::timeout(drain_timeout, &mut drained)
            .await
            .is_err()
        {
            tracing::warn!("drain time is up: closing the remaining connections");
            connections.cut();
            // Cut connections end at their next poll; this only bounds a
            // connection task that never polls its socket again.
            if tokio::time::timeout(CUT_GRACE, drained).await.is_err() {
                tracing::warn!("connections still open {CUT_GRACE:?} after the cut; leaving them");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long [`Runtime::run_until`] waits for cut connections to end.
const CUT_GRACE: Duration = Duration::from_millis(500);
