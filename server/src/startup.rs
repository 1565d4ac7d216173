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
};
use grpc_runtime::{Metrics, Runtime, RuntimeBuilder, configure_service};

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
        // One registry for the runtime's call metrics and the app's own.
        let metrics = Metrics::new();
        let feed = ChangeFeed::start(
            store.clone(),
            Duration::from_secs(settings.watch_heartbeat_secs),
            settings.watch_retain,
            metrics.gauge("article_watchers"),
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
            &metrics,
        ));
        let articles = ArticleGrpc::new(
            store.clone(),
            feed.clone(),
            Arc::new(Tokens::new(tokens)),
            lists.clone(),
        );

        let closing = feed.clone();
        let builder = RuntimeBuilder::new()
            .configure(&settings.runtime)
            .metrics(metrics);
        let articles = configure_service!(
            ArticleServiceServer::new(articles),
            builder.service_settings()
        );
        let builder = builder
            .add_service(articles)
            .file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .expose_headers([http::HeaderName::from_static(proto::WATCH_SEQUENCE_HEADER)])
            .on_shutdown(move || closing.close());
        let runtime = extend(builder).bind(settings.runtime.listen).await?;
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
        self.run_until(grpc_runtime::shutdown_signal()).await
    }

    /// Serves until `signal` completes, then drains and returns.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.runtime.run_until(signal).await
    }
}
