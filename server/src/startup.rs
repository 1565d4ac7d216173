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
        postgres::{PostgresOptions, PostgresStore},
        sqlite::SqliteStore,
        store::ArticleStore,
        watch::ChangeFeed,
    },
    auth::Tokens,
    config::{Settings, TokenSpec, redacted_url},
};
use grpc_runtime::{Health, Metrics, Runtime, RuntimeBuilder, configure_service};

/// How often the store is pinged for health checks, and how long a ping
/// may take before the server reports NOT_SERVING.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The running product: ArticleService (plus anything added) on one port.
pub struct Application {
    runtime: Runtime,
    generated_token: Option<TokenSpec>,
    feed: ChangeFeed,
    lists: Arc<ListCache>,
    tokens: Arc<Tokens>,
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
        let store = open_store(&settings).await.with_context(|| {
            format!("opening database {}", redacted_url(&settings.database_url))
        })?;
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

        let (tokens, generated_token) = match &settings.tokens_file {
            Some(file) => {
                let tokens = Tokens::with_file(settings.tokens.clone(), file.clone()).await?;
                if tokens.is_empty() {
                    tracing::warn!(
                        file = %file.display(),
                        "the tokens file holds no token: writes are refused until it does (SIGHUP reloads it)"
                    );
                }
                (tokens, None)
            }
            None if settings.tokens.is_empty() => {
                let token = Tokens::generate("admin");
                (Tokens::new(vec![token.clone()]), Some(token))
            }
            None => (Tokens::new(settings.tokens.clone()), None),
        };
        let tokens = Arc::new(tokens);
        let lists = Arc::new(ListCache::new(
            settings.list_cache_mib.saturating_mul(1024 * 1024),
            &metrics,
        ));
        let articles = ArticleGrpc::new(store.clone(), feed.clone(), tokens.clone(), lists.clone());

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
        tokio::spawn(monitor_health(Arc::downgrade(&store), runtime.health()));
        Ok(Self {
            runtime,
            generated_token,
            feed,
            lists,
            tokens,
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

    /// Re-reads `--tokens-file` (see [`Tokens::reload`]): the number of
    /// tokens it now holds; on an error the previous tokens stay.
    pub async fn reload_tokens(&self) -> anyhow::Result<usize> {
        self.tokens.reload().await
    }

    /// With `--tokens-file`, re-reads it on every SIGHUP for as long as the
    /// process runs (a bad file is logged and the previous tokens stay);
    /// without, does nothing and SIGHUP keeps its default action. Installs
    /// a process-wide signal handler, so the binary calls it, not tests.
    pub fn reload_tokens_on_sighup(&self) -> anyhow::Result<()> {
        if self.tokens.file().is_none() {
            return Ok(());
        }
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let tokens = Arc::downgrade(&self.tokens);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(tokens) = tokens.upgrade() else {
                    break;
                };
                match tokens.reload().await {
                    Ok(n) => tracing::info!(tokens = n, "SIGHUP: tokens file reloaded"),
                    // The error names file and line, never a token.
                    Err(err) => tracing::error!(
                        error = format!("{err:#}"),
                        "SIGHUP: tokens file not reloaded; the previous tokens stay"
                    ),
                }
            }
        });
        Ok(())
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

/// The store the URL's scheme names: PostgreSQL for `postgres://` and
/// `postgresql://`, SQLite for anything else.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn ArticleStore>> {
    let url = settings.database_url.as_str();
    Ok(
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PostgresOptions {
                max_connections: settings.database_max_connections,
                ..PostgresOptions::default()
            };
            Arc::new(PostgresStore::open(url, settings.watch_retain, options).await?)
        } else {
            Arc::new(SqliteStore::open(url, settings.watch_retain).await?)
        },
    )
}

/// Pings the store every second and reports NOT_SERVING (gRPC health and
/// `/healthz` 503) while it does not answer within [`PING_TIMEOUT`], so a
/// load balancer routes away from a server whose database is unreachable,
/// and back once it answers. Ends when the store is gone.
async fn monitor_health(store: std::sync::Weak<dyn ArticleStore>, health: Health) {
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut serving = true;
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { break };
        let answer = tokio::time::timeout(PING_TIMEOUT, store.ping()).await;
        drop(store);
        let ok = matches!(answer, Ok(Ok(())));
        if ok != serving {
            match &answer {
                Ok(Ok(())) => tracing::info!("the database answers again: serving"),
                Ok(Err(err)) => tracing::warn!(
                    error = chain(err),
                    "the database does not answer: not serving until it does"
                ),
                Err(_) => tracing::warn!(
                    "the database did not answer within {PING_TIMEOUT:?}: not serving until it does"
                ),
            }
            health.set_serving(ok).await;
            serving = ok;
        }
    }
}

/// An error and its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
