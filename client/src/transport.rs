//! Building clients: transports, TLS, metadata, balancing and failover.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use http::Uri;
use proto::v1::article_service_client::ArticleServiceClient;
use tonic::{
    Request, Status,
    body::Body,
    codec::CompressionEncoding,
    metadata::{AsciiMetadataKey, AsciiMetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, ClientTlsConfig, Endpoint},
};
use tower::{ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

use crate::retry::{self, Backoff};

/// The wire protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2 (h2c, or TLS with ALPN h2).
    Grpc,
    /// gRPC-web over HTTP/1.1 (as a browser would).
    GrpcWeb,
}

/// How to reach and talk to the service.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `http://` or `https://` URLs; calls are spread over them.
    pub endpoints: Vec<String>,
    pub protocol: Protocol,
    /// Sent as `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Extra request metadata.
    pub headers: Vec<(String, String)>,
    /// Deadline of each call (sent as `grpc-timeout`, enforced here too).
    pub timeout: Duration,
    /// Compress requests and accept compressed responses.
    pub gzip: bool,
    /// PEM CA certificate trusted for `https://` endpoints, in addition to none
    /// (without it, the system roots are used).
    pub ca_cert: Option<Vec<u8>>,
    /// Largest response message accepted.
    pub max_message_bytes: usize,
}

impl ClientConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoints: vec![endpoint.into()],
            protocol: Protocol::Grpc,
            token: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            gzip: false,
            ca_cert: None,
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Adds the bearer token, extra metadata and the deadline to every call.
#[derive(Clone, Debug)]
pub struct MetadataInterceptor {
    authorization: Option<AsciiMetadataValue>,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Option<Duration>,
}

impl MetadataInterceptor {
    pub fn new(
        token: Option<&str>,
        headers: &[(String, String)],
        timeout: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let authorization = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .context("the token is not a valid header value")
            })
            .transpose()?;
        let headers = headers
            .iter()
            .map(|(k, v)| {
                let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                    .with_context(|| format!("{k:?} is not a valid header name"))?;
                let value = v
                    .parse()
                    .with_context(|| format!("the value of {k} is not a valid header value"))?;
                Ok((key, value))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            authorization,
            headers,
            timeout,
        })
    }
}

impl Interceptor for MetadataInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let md = request.metadata_mut();
        for (k, v) in &self.headers {
            md.insert(k.clone(), v.clone());
        }
        if let Some(auth) = &self.authorization {
            md.insert("authorization", auth.clone());
        }
        if let Some(t) = self.timeout
            && md.get("grpc-timeout").is_none()
        {
            request.set_timeout(t);
        }
        Ok(request)
    }
}

/// Any transport, boxed so gRPC and gRPC-web clients share one type.
pub type Transport =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, tonic::codegen::StdError>;

/// The generated client over a [`Transport`] with the interceptor.
pub type Generated = ArticleServiceClient<InterceptedService<Transport, MetadataInterceptor>>;

/// A client over one or more endpoints.
#[derive(Clone)]
pub struct ArticleClient {
    endpoints: Arc<Vec<(String, Generated)>>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
}

impl ArticleClient {
    /// Prepares connections (made lazily, on first use).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        if config.endpoints.is_empty() {
            bail!("no endpoint given");
        }
        let interceptor = MetadataInterceptor::new(
            config.token.as_deref(),
            &config.headers,
            Some(config.timeout),
        )?;
        let mut endpoints = Vec::new();
        for url in &config.endpoints {
            let transport = match config.protocol {
                Protocol::Grpc => grpc_transport(url, config)?,
                Protocol::GrpcWeb => web_transport(config)?,
            };
            let origin: Uri = url
                .parse()
                .with_context(|| format!("{url:?} is not a URL"))?;
            let mut client = ArticleServiceClient::with_origin(
                InterceptedService::new(transport, interceptor.clone()),
                origin,
            )
            .max_decoding_message_size(config.max_message_bytes);
            if config.gzip {
                client = client
                    .send_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Gzip);
            }
            endpoints.push((url.clone(), client));
        }
        Ok(Self {
            endpoints: Arc::new(endpoints),
            next: Arc::new(AtomicUsize::new(0)),
            timeout: config.timeout,
        })
    }

    /// Endpoints in the order to try for the next call (round robin).
    fn rotation(&self) -> impl Iterator<Item = &(String, Generated)> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(move |i| &self.endpoints[(start + i) % n])
    }

    /// Runs a call that is safe to repeat: on UNAVAILABLE it moves to the
    /// next endpoint, and after a full round waits with backoff, up to
    /// `retries` rounds.
    pub async fn idempotent<T, F, Fut>(&self, retries: u32, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Generated) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = Backoff::default();
        loop {
            let mut last = None;
            for (_, client) in self.rotation() {
                match self.bounded(call(client.clone())).await {
                    Ok(v) => return Ok(v),
                    Err(s) if retry::retryable(&s) => last = Some(s),
                    Err(s) => return Err(s),
                }
            }
            let status = last.unwrap_or_else(|| Status::unavailable("no endpoint answered"));
            if backoff.attempts() >= retries {
                return Err(status);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Runs a write: sent once; another endpoint is tried only when the
    /// request provably never left (the connection could not be made).
    pub async fn write<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Generated) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = None;
        for (_, client) in self.rotation() {
            match self.bounded(call(client.clone())).await {
                Ok(v) => return Ok(v),
                Err(s) if retry::never_sent(&s) => last = Some(s),
                Err(s) => return Err(s),
            }
        }
        Err(last.unwrap_or_else(|| Status::unavailable("no endpoint answered")))
    }

    /// The next endpoint's client, for streams the caller manages itself.
    pub fn any(&self) -> Generated {
        self.rotation()
            .next()
            .map(|(_, c)| c.clone())
            .expect("at least one endpoint")
    }

    /// Every endpoint's client, starting with the next in rotation.
    pub fn all(&self) -> Vec<Generated> {
        self.rotation().map(|(_, c)| c.clone()).collect()
    }

    /// Enforces the deadline locally too, so a stalled transport cannot
    /// outlive it.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), call).await {
            Ok(result) => result.map_err(retry::transport_is_unavailable),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

fn root_store(config: &ClientConfig) -> anyhow::Result<rustls::RootCertStore> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_cert {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.context("parsing the CA certificate")?)?;
            }
        }
        None => {
            // Unreadable system certificates are skipped, as browsers do.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(roots)
}

fn grpc_transport(url: &str, config: &ClientConfig) -> anyhow::Result<Transport> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &config.ca_cert {
            Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    let channel = endpoint.connect_lazy();
    Ok(BoxCloneSyncService::new(
        channel.map_err(tonic::codegen::StdError::from),
    ))
}

fn web_transport(config: &ClientConfig) -> anyhow::Result<Transport> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(root_store(config)?)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, tonic_web::GrpcWebCall<Body>>(connector);
    let service = ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(client)
        .map_response(|r: http::Response<_>| r.map(Body::new))
        .map_err(tonic::codegen::StdError::from);
    Ok(BoxCloneSyncService::new(service))
}
