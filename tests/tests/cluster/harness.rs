//! A cluster under test: one PostgreSQL cluster of its own, `article-server`
//! replica processes on it, optionally HAProxy in front with the
//! repository's `deploy/haproxy.cfg`, and watchers that record every event
//! (resuming after errors, as a client behind a load balancer would).

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use proto::v1::{self as pb, article_event::Event, article_service_client::ArticleServiceClient};
use testkit::{ServerProcess, TIMEOUT, authed, haproxy::Haproxy, postgres::PgCluster, wait_until};
use tokio::process::Command;
use tonic::{
    Code,
    transport::{Channel, Endpoint},
};

/// Write token of the author `alice`, the same on every replica.
pub const ALICE: &str = "alice-cluster-token-0123";

/// The server binary: `ARTICLE_SERVER_BIN`, or `article-server` in the
/// target directory this test binary was built into (`cargo test
/// --workspace` builds it; `cargo xtask test` does too).
fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ARTICLE_SERVER_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/debug/deps/cluster-<hash> → target/debug/article-server
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in target/<profile>/deps")
        .join(format!("article-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p article-server`) or set ARTICLE_SERVER_BIN",
        bin.display()
    );
    bin
}

/// Replicas on one database of their own PostgreSQL cluster.
pub struct Cluster {
    pub replicas: Vec<ServerProcess>,
    pub lb: Option<Haproxy>,
    database: String,
    pub pg: PgCluster,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` replicas on a fresh PostgreSQL cluster, no load balancer.
    pub async fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = PgCluster::temporary().expect("a PostgreSQL cluster starts");
        let database = pg
            .create_database("articles")
            .expect("a database is created");
        let mut cluster = Self {
            replicas: Vec::new(),
            lb: None,
            database,
            pg,
            dir,
        };
        for _ in 0..n {
            cluster.add_replica().await;
        }
        // One change before any watcher opens, so that every watcher starts
        // after a sequence >= 1: `after_sequence` 0 means "from now", so a
        // stream opened at sequence 0 could not be resumed without a gap.
        create(&mut cluster.client(0).await, "seed").await;
        cluster
    }

    /// `n` replicas behind HAProxy, which sees them all UP.
    pub async fn start_balanced(n: usize) -> Self {
        let mut cluster = Self::start(n).await;
        let addrs: Vec<_> = cluster.replicas.iter().map(|r| r.addr()).collect();
        let lb = Haproxy::start(
            &testkit::haproxy::deploy_config(),
            cluster.dir.path(),
            &addrs,
        )
        .expect("HAProxy starts with deploy/haproxy.cfg");
        for i in 1..=n {
            lb.wait_for_server(&format!("r{i}"), "UP", TIMEOUT)
                .expect("HAProxy sees every replica up");
        }
        cluster.lb = Some(lb);
        cluster
    }

    /// Starts one more replica; its index.
    pub async fn add_replica(&mut self) -> usize {
        let mut command = Command::new(server_bin());
        command
            .stdin(Stdio::null())
            .env_remove("RUST_LOG")
            .args(["--listen", "127.0.0.1:0", "--database", &self.database])
            .args(["--token", &format!("alice={ALICE}")])
            .args(["--watch-heartbeat-secs", "1", "--drain-secs", "10"]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ARTICLE_") {
                command.env_remove(name);
            }
        }
        self.replicas.push(ServerProcess::start(command).await);
        self.replicas.len() - 1
    }

    /// A client of replica `i`, on a connection of its own.
    pub async fn client(&self, i: usize) -> ArticleServiceClient<Channel> {
        ArticleServiceClient::new(self.replicas[i].channel().await)
    }

    /// The load balancer's URL.
    pub fn lb_url(&self) -> String {
        self.lb
            .as_ref()
            .expect("started with a load balancer")
            .url()
    }

    /// A client of the load balancer, on a connection of its own.
    pub async fn lb_client(&self) -> ArticleServiceClient<Channel> {
        ArticleServiceClient::new(connect(&self.lb_url()).await)
    }
}

pub async fn connect(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("a valid URL")
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("a client connects to {url}: {e}"))
}

pub fn draft(title: &str) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        title: title.into(),
        content: format!("content of {title}"),
        tags: vec!["cluster".into()],
    }
}

pub async fn create(client: &mut ArticleServiceClient<Channel>, title: &str) -> pb::Article {
    client
        .create_article(authed(ALICE, draft(title)))
        .await
        .unwrap_or_else(|e| panic!("CreateArticle {title:?} is acknowledged: {e}"))
        .into_inner()
        .article
        .expect("the created article is returned")
}

/// What an event says, without timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Created(i64),
    Updated { id: i64, version: i64 },
    Deleted(i64),
}

/// Every change a watcher received, with its sequence, in arrival order.
pub type Log = Vec<(i64, Seen)>;

/// A WatchArticles stream read by a task of its own. With `resume`, an
/// error (say, its replica died) is followed by a new call to `url` with
/// `after_sequence` = the last sequence it received, as a client behind a
/// load balancer does.
pub struct Watcher {
    log: Arc<Mutex<Log>>,
    resumes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
    /// The sequence live delivery started after (`x-watch-sequence`).
    pub start: i64,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open(
    url: &str,
    after_sequence: i64,
) -> Result<(tonic::Streaming<pb::ArticleEvent>, i64), tonic::Status> {
    let channel = Endpoint::from_shared(url.to_owned())
        .expect("a valid URL")
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    let response = ArticleServiceClient::new(channel)
        .watch_articles(pb::WatchArticlesRequest {
            tag: String::new(),
            after_sequence,
        })
        .await?;
    let start = response
        .metadata()
        .get(proto::WATCH_SEQUENCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("WatchArticles answers with the x-watch-sequence header");
    Ok((response.into_inner(), start))
}

impl Watcher {
    /// Opens the stream (live when this returns) and starts reading it.
    pub async fn open(url: &str, resume: bool) -> Self {
        Self::start(url, 0, resume).await
    }

    /// Replays the change log after `after_sequence`, then goes live.
    pub async fn open_after(url: &str, after_sequence: i64) -> Self {
        Self::start(url, after_sequence, false).await
    }

    async fn start(url: &str, after_sequence: i64, resume: bool) -> Self {
        let (stream, start) = open(url, after_sequence)
            .await
            .expect("WatchArticles opens");
        let start = if after_sequence > 0 {
            after_sequence
        } else {
            start
        };
        let log = Arc::new(Mutex::new(Log::new()));
        let resumes = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(read(
            url.to_owned(),
            stream,
            start,
            resume,
            log.clone(),
            resumes.clone(),
        ));
        Self {
            log,
            resumes,
            task,
            start,
        }
    }

    pub fn log(&self) -> Log {
        self.log.lock().expect("log lock").clone()
    }

    pub fn len(&self) -> usize {
        self.log.lock().expect("log lock").len()
    }

    /// The errors after which the watcher resumed.
    pub fn resumes(&self) -> Vec<String> {
        self.resumes.lock().expect("resumes lock").clone()
    }

    /// Waits until the watcher has received `n` changes.
    pub async fn wait_for(&self, n: usize) {
        wait_until(
            &format!("a watcher to receive {n} changes"),
            TIMEOUT,
            async || {
                let len = self.len();
                if len >= n {
                    Ok(())
                } else {
                    Err(format!(
                        "{len} received; resumed after {:?}",
                        self.resumes()
                    ))
                }
            },
        )
        .await;
    }
}

async fn read(
    url: String,
    mut stream: tonic::Streaming<pb::ArticleEvent>,
    start: i64,
    resume: bool,
    log: Arc<Mutex<Log>>,
    resumes: Arc<Mutex<Vec<String>>>,
) {
    let mut last = start;
    loop {
        let error = loop {
            match stream.message().await {
                Ok(Some(event)) => {
                    let seen = match event.event {
                        Some(Event::Created(a)) => Seen::Created(a.id),
                        Some(Event::Updated(a)) => Seen::Updated {
                            id: a.id,
                            version: a.version,
                        },
                        Some(Event::DeletedId(id)) => Seen::Deleted(id),
                        Some(Event::Heartbeat(_)) | None => continue,
                    };
                    last = event.sequence;
                    log.lock().expect("log lock").push((event.sequence, seen));
                }
                Ok(None) => break "the stream ended".to_owned(),
                Err(status) => break format!("{:?}: {}", status.code(), status.message()),
            }
        };
        if !resume {
            return;
        }
        resumes.lock().expect("resumes lock").push(error);
        // Reopen after the last change received; a replica that is gone is
        // routed around by the load balancer within its health checks.
        stream = loop {
            match open(&url, last).await {
                Ok((stream, _)) => break stream,
                Err(status) if status.code() == Code::OutOfRange => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
    }
}

/// Asserts that `log` is exactly the changes `start+1 ..= start+n`, each
/// once, in order.
pub fn assert_gap_free(what: &str, log: &Log, start: i64, n: usize) {
    let sequences: Vec<i64> = log.iter().map(|(s, _)| *s).collect();
    let expected: Vec<i64> = (start + 1..=start + n as i64).collect();
    assert_eq!(
        sequences, expected,
        "{what}: every sequence after {start} exactly once, in order"
    );
}
