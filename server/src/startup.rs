//! Builds the article application on the runtime: storage, change feed,
//! tokens, ArticleService, and the runtime's one port.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use proto::v1::article_service_server::ArticleServiceServer;

use crate::{
    article::{
        cache::{CacheStats, ListCache},
        demo,
        grpc::ArticleGrpc,
        sqlite::SqliteStore,
        store::ArticleStore,
        watch::ChangeFeed,
    },
    auth::Tokens,
    config::{Settings, TokenSpec},
    runtime::{Runtime, RuntimeBuilder},
};

/// The running product: ArticleService (plus anything added) on one port.
pub struct Application {
    runtime: Runtime,
    generated_token: Option<TokenSpec>,
    feed: ChangeFeed,
    lists: Arc<ListCache>,
}

impl Application {
    /// Opens the database, loads demo data if asked, and binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, |runtime| runtime).await
    }

    /// Like [`build`](Self::build), letting `extend` mount more services
    /// (or change the runtime) before the port is bound.
    pub async fn build_with(
        settings: Settings,
        extend: impl FnOnce(RuntimeBuilder) -> RuntimeBuilder,
    ) -> anyhow::Result<Self> {
        let store: Arc<dyn ArticleStore> = Arc::new(
            SqliteStore::open(&settings.database_url, settings.watch_retain)
                .await
                .with_context(|| format!("opening database {}", settings.database_url))?,
        );
        if settings.demo_data {
            let n = demo::load_if_empty(store.as_ref()).await?;
            if n > 0 {
                tracing::info!(articles = n, "loaded demo data");
            }
        }
        let feed = ChangeFeed::start(
            store.clone(),
            Duration::from_secs(settings.watch_heartbeat_secs),
            settings.watch_retain,
        )
        .await?;

        let (tokens, generated_token) = if settings.tokens.is_empty() {
            let token = Tokens::generate("admin");
            (vec![token.clone()], Some(token))
        } else {
            (settings.tokens.clone(), None)
        };
        let lists = Arc::new(ListCache::new(
            settings.list_cache_mib.saturating_mul(1024 * 1024),
        ));
        let articles = ArticleGrpc::new(
            store.clone(),
            feed.clone(),
            Arc::new(Tokens::new(tokens)),
            lists.clone(),
        );

        let closing = feed.clone();
        let builder = RuntimeBuilder::new().max_message_bytes(settings.max_message_bytes);
        let articles = crate::configure_service!(
            ArticleServiceServer::new(articles),
            builder.service_settings()
        );
        let mut builder = builder
            .add_service(articles)
            .file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .allow_origins(settings.allow_origins.clone())
            .static_dir(settings.static_dir.clone())
            .drain_timeout(Duration::from_secs(settings.drain_secs))
            .on_shutdown(move || closing.close());
        if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
            builder = builder.tls(cert.clone(), key.clone());
        }
        let runtime = extend(builder).bind(settings.listen).await?;
        Ok(Self {
            runtime,
            generated_token,
            feed,
            lists,
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.runtime.local_addr()
    }

    /// `http://HOST:PORT` (or `https://`).
    pub fn url(&self) -> String {
        self.runtime.url()
    }

    /// The token generated because none was configured.
    pub fn generated_token(&self) -> Option<&TokenSpec> {
        self.generated_token.as_ref()
    }

    /// A handle that reports the ListArticles cache's hits and misses.
    pub fn list_cache_stats(&self) -> impl Fn() -> CacheStats + Send + Sync + 'static {
        let lists = self.lists.clone();
        move || lists.stats()
    }

    /// A handle that reports the number of open watch streams.
    pub fn watcher_count(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let feed = self.feed.clone();
        move || feed.watchers()
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes, then drains and returns.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.runtime.run_until(signal).await
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). The handlers are installed
/// when this is called, not when the future is first polled, so a signal
/// sent right after startup is already a graceful shutdown.
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
