//! The `article-server` binary as real processes: flags and their
//! environment variables, the stdout contract (the URL line, a generated
//! token printed once and never logged), demo data, durability of
//! acknowledged writes across `kill -9`, exit 0 on SIGTERM/SIGINT, and
//! JSON log lines.
//!
//! Every child is killed when its guard drops, so a failing test leaves no
//! server behind.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    task::JoinHandle,
};
use tonic::{
    Code, Request,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

const BIN: &str = env!("CARGO_BIN_EXE_article-server");

/// Every wait on a process or a call is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(20);

const ALICE_TOKEN: &str = "alice-process-token-0123";
const BOB_TOKEN: &str = "bob-process-token-0123";

/// Every flag `--help` must document.
const FLAGS: [&str; 11] = [
    "--listen",
    "--database",
    "--token",
    "--allow-origin",
    "--static-dir",
    "--max-message-bytes",
    "--watch-heartbeat-secs",
    "--demo-data",
    "--tls-cert",
    "--tls-key",
    "--log-format",
];

/// A command for the server binary in `dir`, with a clean environment:
/// no `ARTICLE_*` or `RUST_LOG` inherited from whoever runs the tests.
fn server_command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ARTICLE_") {
            command.env_remove(name);
        }
    }
    command
}

fn database_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `--listen 127.0.0.1:0 --database <db> [extra...]`.
fn command_with(dir: &Path, db: &Path, extra: &[&str]) -> Command {
    let mut command = server_command(dir);
    command
        .args(["--listen", "127.0.0.1:0", "--database"])
        .arg(database_url(db))
        .args(extra);
    command
}

/// A running server process. Dropping it kills the process.
struct ServerProcess {
    child: Child,
    pid: u32,
    url: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl ServerProcess {
    /// Spawns `command` and reads its first stdout line, which must be
    /// `listening on http://127.0.0.1:PORT` with a real port (no sleeping:
    /// the line is the readiness signal).
    async fn start(mut command: Command) -> Self {
        let mut child = command.spawn().expect("the server binary starts");
        let pid = child.id().expect("a running child has a pid");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut server = Self {
            child,
            pid,
            url: String::new(),
            stdout,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let Some(first) = server.next_stdout_line().await else {
            let status = tokio::time::timeout(TIMEOUT, server.child.wait()).await;
            panic!(
                "the server printed no listening line (exit: {status:?}); stderr:\n{}",
                server.stderr_so_far()
            );
        };
        let port = first
            .strip_prefix("listening on http://127.0.0.1:")
            .unwrap_or_else(|| {
                panic!(
                    "the first stdout line is `listening on http://127.0.0.1:PORT`, got {first:?}"
                )
            });
        let port: u16 = port
            .parse()
            .unwrap_or_else(|_| panic!("the listening line ends with a port number: {first:?}"));
        assert_ne!(port, 0, "the real port is printed, not 0");
        server.url = format!("http://127.0.0.1:{port}");
        server
    }

    /// The next stdout line, or `None` at the end of stdout.
    async fn next_stdout_line(&mut self) -> Option<String> {
        tokio::time::timeout(TIMEOUT, self.stdout.next_line())
            .await
            .expect("the server writes its stdout line in time")
            .expect("stdout is readable")
    }

    /// Everything left on stdout after the process has exited.
    async fn rest_of_stdout(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.next_stdout_line().await {
            rest.push(line);
        }
        rest
    }

    fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// All of stderr, once the process has exited.
    async fn full_stderr(&mut self) -> String {
        if let Some(reader) = self.stderr_reader.take() {
            tokio::time::timeout(TIMEOUT, reader)
                .await
                .expect("stderr reaches its end in time")
                .expect("the stderr reader joins");
        }
        self.stderr_so_far()
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("the printed url is a valid endpoint")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("a client connects to the printed url")
    }

    async fn client(&self) -> ArticleServiceClient<Channel> {
        ArticleServiceClient::new(self.channel().await)
    }

    /// Sends `signal` (e.g. "TERM", "KILL") with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "kill -s \"$1\" \"$2\"",
                "sh",
                signal,
                &self.pid.to_string(),
            ])
            .status()
            .expect("the kill command runs");
        assert!(status.success(), "kill -s {signal} {} succeeds", self.pid);
    }

    /// Waits (bounded) for the process to exit.
    async fn wait_exit(&mut self) -> ExitStatus {
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server exits in time; stderr:\n{}",
                    self.stderr_so_far()
                )
            })
            .expect("waiting for the server works")
    }

    /// `kill -9` and wait until it is gone.
    async fn kill_9(&mut self) {
        self.signal("KILL");
        let status = self.wait_exit().await;
        assert!(!status.success(), "a killed server does not exit 0");
    }

    /// SIGTERM, and assert exit status 0 within the bounded wait.
    async fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit().await;
        assert!(
            status.success(),
            "SIGTERM makes the server exit 0, got {status:?}; stderr:\n{}",
            self.stderr_so_far()
        );
    }
}

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .expect("a token is a valid header value");
    request.metadata_mut().insert("authorization", value);
    request
}

fn draft(title: &str) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        title: title.into(),
        content: format!("content of {title}"),
        tags: vec!["process".into()],
    }
}

async fn create(
    client: &mut ArticleServiceClient<Channel>,
    token: &str,
    title: &str,
) -> pb::Article {
    client
        .create_article(authed(token, draft(title)))
        .await
        .unwrap_or_else(|e| panic!("CreateArticle {title:?} is acknowledged: {e}"))
        .into_inner()
        .article
        .expect("the created article is returned")
}

async fn total_count(client: &mut ArticleServiceClient<Channel>) -> i64 {
    client
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles succeeds")
        .into_inner()
        .total_count
}

fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir is created");
    let db = dir.path().join("articles.db");
    (dir, db)
}

#[test]
fn help_lists_every_flag() {
    let output = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .expect("article-server --help runs");
    assert!(output.status.success(), "--help exits 0");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in FLAGS {
        assert!(help.contains(flag), "--help documents {flag}:\n{help}");
    }
}

#[tokio::test]
async fn prints_exactly_one_listening_line_with_the_real_port() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    // The printed port is the one serving.
    let mut client = server.client().await;
    assert_eq!(total_count(&mut client).await, 0);
    drop(client);
    server.terminate().await;
    let rest = server.rest_of_stdout().await;
    assert!(
        rest.is_empty(),
        "with a configured token, stdout is only the listening line; also got {rest:?}"
    );
}

#[tokio::test]
async fn generated_token_is_printed_once_works_and_is_never_logged() {
    let (dir, db) = temp_dir();
    let mut server = ServerProcess::start(command_with(dir.path(), &db, &[])).await;
    let line = server
        .next_stdout_line()
        .await
        .expect("without --token a second stdout line carries the generated token");
    let token = line
        .strip_prefix("write token for admin: ")
        .unwrap_or_else(|| panic!("the token line is `write token for admin: TOKEN`, got {line:?}"))
        .trim()
        .to_string();
    assert!(token.len() >= 16, "the generated token is long: {token:?}");

    let mut client = server.client().await;
    let article = create(&mut client, &token, "Written with the generated token").await;
    assert_eq!(article.author, "admin");
    let refused = client
        .create_article(authed("not-the-token-000000", draft("refused")))
        .await
        .expect_err("an unknown token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(total_count(&mut client).await, 1);
    drop(client);

    server.terminate().await;
    let rest = server.rest_of_stdout().await;
    assert!(
        rest.is_empty(),
        "the token is printed once; stdout also had {rest:?}"
    );
    let stderr = server.full_stderr().await;
    assert!(
        !stderr.contains(&token),
        "the generated token never appears in the logs:\n{stderr}"
    );
}

#[tokio::test]
async fn environment_variables_work_like_flags() {
    let (dir, db) = temp_dir();
    let mut command = server_command(dir.path());
    command
        .env("ARTICLE_LISTEN", "127.0.0.1:0")
        .env("ARTICLE_DATABASE_URL", database_url(&db))
        .env(
            "ARTICLE_TOKENS",
            format!("alice={ALICE_TOKEN},bob={BOB_TOKEN}"),
        );
    let mut server = ServerProcess::start(command).await;
    let mut client = server.client().await;
    assert_eq!(create(&mut client, BOB_TOKEN, "by bob").await.author, "bob");
    assert_eq!(
        create(&mut client, ALICE_TOKEN, "by alice").await.author,
        "alice"
    );
    drop(client);
    server.terminate().await;
    let rest = server.rest_of_stdout().await;
    assert!(
        rest.is_empty(),
        "tokens from ARTICLE_TOKENS count as configured: no token is generated; stdout also had {rest:?}"
    );
    assert!(db.is_file(), "ARTICLE_DATABASE_URL chose the database file");
    let stderr = server.full_stderr().await;
    assert!(
        !stderr.contains(ALICE_TOKEN) && !stderr.contains(BOB_TOKEN),
        "configured tokens never appear in the logs:\n{stderr}"
    );
}

#[tokio::test]
async fn demo_data_loads_about_thirty_articles_once() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let args = ["--demo-data", "--token", token.as_str()];

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let first = total_count(&mut server.client().await).await;
    assert!(
        (25..=40).contains(&first),
        "--demo-data loads about 30 articles into an empty database, got {first}"
    );
    server.terminate().await;
    drop(server);

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let second = total_count(&mut server.client().await).await;
    assert_eq!(
        second, first,
        "a restart with --demo-data on a non-empty database adds nothing"
    );
    server.terminate().await;
}

#[tokio::test]
async fn an_acknowledged_create_survives_kill_9() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let args = ["--token", token.as_str()];

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let article = create(&mut server.client().await, ALICE_TOKEN, "Durable").await;
    // Killed right after the acknowledgement, before any orderly shutdown.
    server.kill_9().await;
    drop(server);

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let got = server
        .client()
        .await
        .get_article(pb::GetArticleRequest { id: article.id })
        .await
        .expect("the acknowledged article is there after kill -9")
        .into_inner()
        .article
        .expect("the article is returned");
    assert_eq!(got, article, "the article is unchanged after kill -9");
    server.terminate().await;
}

#[tokio::test]
async fn twenty_acknowledged_creates_survive_kill_9() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let args = ["--token", token.as_str()];

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let mut client = server.client().await;
    let mut created = Vec::new();
    for i in 0..20 {
        created.push(create(&mut client, ALICE_TOKEN, &format!("durable {i}")).await);
    }
    server.kill_9().await;
    drop((client, server));

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let mut client = server.client().await;
    assert_eq!(
        total_count(&mut client).await,
        20,
        "all 20 articles are there"
    );
    for article in &created {
        let got = client
            .get_article(pb::GetArticleRequest { id: article.id })
            .await
            .unwrap_or_else(|e| panic!("article {} survives kill -9: {e}", article.id))
            .into_inner()
            .article
            .expect("the article is returned");
        assert_eq!(&got, article);
    }
    drop(client);
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_ends_watches_with_unavailable_and_exits_zero() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    let mut client = server.client().await;
    // A successful call first: the process is serving (and so handling
    // signals) before SIGTERM is sent.
    assert_eq!(total_count(&mut client).await, 0);
    let mut watch = client
        .watch_articles(pb::WatchArticlesRequest::default())
        .await
        .expect("WatchArticles opens")
        .into_inner();

    server.signal("TERM");
    let end = tokio::time::timeout(TIMEOUT, watch.message())
        .await
        .expect("the watch ends in time after SIGTERM");
    match end {
        Err(status) => assert_eq!(
            status.code(),
            Code::Unavailable,
            "SIGTERM ends watches with UNAVAILABLE: {status:?}"
        ),
        Ok(other) => panic!("the watch should end with UNAVAILABLE, got {other:?}"),
    }
    drop((watch, client));
    let status = server.wait_exit().await;
    assert!(
        status.success(),
        "SIGTERM makes the server exit 0, got {status:?}"
    );
}

#[tokio::test]
async fn sigterm_right_after_the_listening_line_exits_zero() {
    // The listening line is the readiness signal scripts wait for, so a
    // SIGTERM sent as soon as it is read must already be handled. Several
    // rounds, because the window is short.
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    for round in 0..10 {
        let mut server =
            ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
        server.signal("TERM");
        let status = server.wait_exit().await;
        assert!(
            status.success(),
            "round {round}: SIGTERM right after the listening line exits 0, got {status:?}"
        );
    }
}

#[tokio::test]
async fn sigint_exits_zero() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    assert_eq!(total_count(&mut server.client().await).await, 0);
    server.signal("INT");
    let status = server.wait_exit().await;
    assert!(
        status.success(),
        "SIGINT makes the server exit 0, got {status:?}"
    );
}

#[tokio::test]
async fn json_log_lines_are_objects_and_a_call_line_has_its_fields() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server = ServerProcess::start(command_with(
        dir.path(),
        &db,
        &["--token", &token, "--log-format", "json"],
    ))
    .await;
    let mut client = server.client().await;
    let request_id = "process-json-request-42";
    let mut request = authed(ALICE_TOKEN, draft("Logged"));
    request.metadata_mut().insert(
        "x-request-id",
        MetadataValue::from_static("process-json-request-42"),
    );
    client
        .create_article(request)
        .await
        .expect("CreateArticle succeeds");
    drop(client);
    server.terminate().await;

    let stderr = server.full_stderr().await;
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logs something");
    for line in &lines {
        let line = line.trim();
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "every log line is a JSON object: {line}"
        );
    }
    let call = lines
        .iter()
        .find(|l| l.contains("\"method\"") && l.contains(request_id))
        .unwrap_or_else(|| panic!("a call line names the method and the request id:\n{stderr}"));
    assert!(
        call.contains("/article.v1.ArticleService/CreateArticle"),
        "the call line names the method: {call}"
    );
    assert!(
        call.contains("\"status\"") && call.contains("\"OK\""),
        "the call line carries the status: {call}"
    );
    assert!(
        call.contains("\"duration"),
        "the call line carries the duration: {call}"
    );
    assert!(
        call.contains("\"request_id\""),
        "the call line carries the request id field: {call}"
    );
    assert!(
        !stderr.contains(ALICE_TOKEN),
        "the bearer token never appears in the logs:\n{stderr}"
    );
}
