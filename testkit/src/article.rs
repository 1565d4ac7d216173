//! The article application under test (feature `article`): a
//! [`TestServer`] on 127.0.0.1:0 with its own database and write tokens for
//! alice and bob, the calls most tests make, and the application of the
//! `echo_beside_articles` example.
//!
//! The database is a SQLite file in the server's temporary directory, or,
//! when `ARTICLE_TEST_POSTGRES` names a PostgreSQL server
//! (`postgres://app@127.0.0.1:PORT/postgres`, as `cargo xtask test` sets it
//! for its second run of the API suite), a fresh database of its own there.
//! [`store`] tells a test which, for what only one store does (the
//! ListArticles page cache and the write lock are SQLite's).

use std::{
    future::Future,
    ops::{Deref, DerefMut},
    path::Path,
    time::Duration,
};

pub use article_server::{Application, Settings, article::cache::CacheStats};
use grpc_runtime::{RuntimeBuilder, configure_service};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::transport::Channel;

use crate::{
    SpawnedServer, TIMEOUT, authed,
    echo::{Echo, EchoServiceServer, FILE_DESCRIPTOR_SET},
};

/// Token of the author `alice`.
pub const ALICE: &str = "alice-token-0123456789";
/// Token of the author `bob`.
pub const BOB: &str = "bob-token-0123456789";

/// The variable naming the PostgreSQL server the tests run against (a URL
/// of a database that exists, e.g. `postgres://app@127.0.0.1:PORT/postgres`).
pub const POSTGRES_VAR: &str = "ARTICLE_TEST_POSTGRES";

/// Which store the test servers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file per server (the default).
    Sqlite,
    /// A database per server on the PostgreSQL server of
    /// [`ARTICLE_TEST_POSTGRES`](POSTGRES_VAR).
    Postgres,
}

/// The store of this test run: [`Store::Postgres`] when
/// `ARTICLE_TEST_POSTGRES` is set (and not empty).
pub fn store() -> Store {
    match postgres_server() {
        Some(_) => Store::Postgres,
        None => Store::Sqlite,
    }
}

fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A database URL of the run's [`store`] no server has used yet: the
/// SQLite file `dir/articles.db`, or a new database on the PostgreSQL
/// server. For tests that build their own settings (two servers on one
/// database, a restart on the same data).
pub async fn fresh_database(dir: &Path) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(server) = postgres_server() else {
        return format!("sqlite://{}", dir.join("articles.db").display());
    };
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // createdb is a child process: off the runtime's workers.
    tokio::task::spawn_blocking(move || crate::postgres::create_database_on(&server, &name))
        .await
        .expect("createdb does not panic")
        .unwrap_or_else(|e| panic!("a fresh database on {POSTGRES_VAR}: {e}"))
}

/// Settings for a test server: port 0, the SQLite file `db`, tokens for
/// alice and bob. Change fields before starting the server.
pub fn settings(db: &Path) -> Settings {
    Settings::try_load_from([
        "article-server".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        format!("sqlite://{}", db.display()),
        "--token".into(),
        format!("alice={ALICE}"),
        "--token".into(),
        format!("bob={BOB}"),
    ])
    .expect("the test settings parse")
}

/// A running in-process article server; derefs to its [`SpawnedServer`]
/// (`addr`, `url`, `channel()`, `begin_shutdown()`). Stops (without
/// waiting) when dropped.
pub struct TestServer {
    server: SpawnedServer,
    dir: Option<tempfile::TempDir>,
    watchers: Box<dyn Fn() -> i64 + Send + Sync>,
    list_cache: Box<dyn Fn() -> CacheStats + Send + Sync>,
}

impl TestServer {
    /// A server with the test [`settings`] and its own database (a SQLite file,
    /// or a fresh PostgreSQL database: see [`store`]).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose settings `adjust` may change; the database is a
    /// SQLite file in the server's own temporary directory (or a fresh
    /// PostgreSQL database, see [`store`]) unless `adjust` moves it.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::start_app(adjust, Application::build).await
    }

    /// Like [`start_with`](Self::start_with), with the application made by
    /// `build` (e.g. [`echo_beside_articles`]).
    pub async fn start_app<F, Fut>(adjust: impl FnOnce(&mut Settings), build: F) -> Self
    where
        F: FnOnce(Settings) -> Fut,
        Fut: Future<Output = anyhow::Result<Application>>,
    {
        let dir = tempfile::tempdir().expect("a temporary directory is created");
        let mut settings = settings(&dir.path().join("articles.db"));
        settings.database_url = fresh_database(dir.path()).await;
        adjust(&mut settings);
        let app = build(settings)
            .await
            .expect("the application builds and binds its port");
        let mut server = Self::spawn(app);
        server.dir = Some(dir);
        server
    }

    /// A server on `settings` as they are: the caller owns the database
    /// (e.g. two servers on one file, or a restart on the same file).
    pub async fn start_on(settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("the application builds and binds its port");
        Self::spawn(app)
    }

    /// Serves an application already built.
    pub fn spawn(app: Application) -> Self {
        let watchers = Box::new(app.watcher_count());
        let list_cache = Box::new(app.list_cache_stats());
        let server = SpawnedServer::spawn(app.local_addr(), app.url(), |stop| app.run_until(stop));
        Self {
            server,
            dir: None,
            watchers,
            list_cache,
        }
    }

    /// The server's own temporary directory (where its database is).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the server was started with a directory of its own")
            .path()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }

    /// Open WatchArticles streams.
    pub fn watchers(&self) -> i64 {
        (self.watchers)()
    }

    /// Hits and misses of the ListArticles cache.
    pub fn list_cache(&self) -> CacheStats {
        (self.list_cache)()
    }

    /// A native gRPC client.
    pub async fn client(&self) -> ArticleServiceClient<Channel> {
        ArticleServiceClient::new(self.server.channel().await)
    }

    /// Drains, waits until the server has stopped cleanly (and released its
    /// port), and returns how long that took.
    pub async fn shutdown(self) -> Duration {
        let Self { server, dir, .. } = self;
        let took = server.shutdown().await;
        drop(dir);
        took
    }
}

impl Deref for TestServer {
    type Target = SpawnedServer;

    fn deref(&self) -> &SpawnedServer {
        &self.server
    }
}

impl DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut SpawnedServer {
        &mut self.server
    }
}

/// A CreateArticle request.
pub fn create(title: &str, content: &str, tags: &[&str]) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        title: title.into(),
        content: content.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// Creates an article as alice (content `content of TITLE`) and returns it.
pub async fn create_as_alice(
    client: &mut ArticleServiceClient<Channel>,
    title: &str,
    tags: &[&str],
) -> pb::Article {
    tokio::time::timeout(
        TIMEOUT,
        client.create_article(authed(
            ALICE,
            create(title, &format!("content of {title}"), tags),
        )),
    )
    .await
    .expect("CreateArticle answers in time")
    .unwrap_or_else(|e| panic!("CreateArticle {title:?} succeeds: {e}"))
    .into_inner()
    .article
    .expect("the created article is returned")
}

/// ListArticles, which must succeed in time.
pub async fn list(
    client: &mut ArticleServiceClient<Channel>,
    request: pb::ListArticlesRequest,
) -> pb::ListArticlesResponse {
    tokio::time::timeout(TIMEOUT, client.list_articles(request))
        .await
        .expect("ListArticles answers in time")
        .expect("ListArticles succeeds")
        .into_inner()
}

/// How many articles the server holds (ListArticles' `total_count`).
pub async fn total_count(client: &mut ArticleServiceClient<Channel>) -> i64 {
    list(client, pb::ListArticlesRequest::default())
        .await
        .total_count
}

/// The application of `server/examples/echo_beside_articles.rs`: the
/// article application plus the test kit's [`EchoService`](crate::echo),
/// mounted beside ArticleService with gzip and the message limit, and
/// served through reflection. Bound, not yet serving.
pub async fn echo_beside_articles(settings: Settings) -> anyhow::Result<Application> {
    Application::build_with(settings, |runtime: RuntimeBuilder| {
        // gzip and the message limit, as for ArticleService.
        let echo = configure_service!(EchoServiceServer::new(Echo), runtime.service_settings());
        runtime
            .add_service(echo)
            .file_descriptor_set(FILE_DESCRIPTOR_SET)
    })
    .await
}
