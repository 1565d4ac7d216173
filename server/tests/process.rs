//! The `article-server` binary as real processes: flags and their
//! environment variables, the stdout contract (the URL line, a generated
//! token printed once and never logged), demo data, durability of
//! acknowledged writes across `kill -9`, exit 0 on SIGTERM/SIGINT, JSON
//! log lines, the tokens file (kept out of the process list, reloaded on
//! SIGHUP on open connections), and the memory a 256 MiB import takes.
//!
//! Every child is killed when its guard drops, so a failing test leaves no
//! server behind.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use article_server::Settings;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use testkit::{ServerProcess, TIMEOUT, article::total_count, authed, wait_for};
use tokio::process::Command;
use tonic::{Code, metadata::MetadataValue, transport::Channel};

const BIN: &str = env!("CARGO_BIN_EXE_article-server");

const ALICE_TOKEN: &str = "alice-process-token-0123";
const BOB_TOKEN: &str = "bob-process-token-0123";

/// Every flag of the server; `help_lists_every_flag` checks this list is
/// complete against the parser, and that `--help` documents each.
const FLAGS: [&str; 19] = [
    "--listen",
    "--allow-origin",
    "--static-dir",
    "--max-message-bytes",
    "--tls-cert",
    "--tls-key",
    "--drain-secs",
    "--max-connections",
    "--header-read-secs",
    "--max-concurrent-calls",
    "--database",
    "--database-max-connections",
    "--token",
    "--tokens-file",
    "--watch-heartbeat-secs",
    "--watch-retain",
    "--list-cache-mib",
    "--demo-data",
    "--log-format",
];

/// A command for the server binary in `dir`, with a clean environment:
/// no `ARTICLE_*` or `RUST_LOG` inherited from whoever runs the tests.
fn server_command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).stdin(Stdio::null());
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

async fn connect(server: &ServerProcess) -> ArticleServiceClient<Channel> {
    ArticleServiceClient::new(server.channel().await)
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

fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir is created");
    let db = dir.path().join("articles.db");
    (dir, db)
}

/// A temp dir in memory (`/dev/shm`) where the machine has one, else on disk.
/// For tests about the server's memory that write far more than they keep:
/// the 256 MiB import holds about 1.5 GB of database and WAL at its peak,
/// which a CI machine's nearly full disk may not have, while tmpfs pages are
/// not counted in the server's RSS, so the measurement stays honest.
fn temp_dir_in_memory() -> (tempfile::TempDir, PathBuf) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir is created");
    let db = dir.path().join("articles.db");
    (dir, db)
}

#[test]
fn help_lists_every_flag() {
    let command = Settings::command_with_env();
    let mut parsed: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "help" | "version"))
        .map(|long| format!("--{long}"))
        .collect();
    parsed.sort();
    let mut listed = FLAGS.map(String::from).to_vec();
    listed.sort();
    assert_eq!(parsed, listed, "FLAGS lists every flag the server parses");

    let output = std::process::Command::new(BIN)
        .arg("--help")
        .env_clear()
        .output()
        .expect("article-server --help runs");
    assert!(output.status.success(), "--help exits 0");
    let help = String::from_utf8_lossy(&output.stdout);
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) else {
            continue;
        };
        assert!(
            help.contains(&format!("--{long}")),
            "--help documents --{long}:\n{help}"
        );
        assert!(
            arg.get_help()
                .is_some_and(|h| !h.to_string().trim().is_empty()),
            "--{long} has a description"
        );
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{long} has an environment variable"))
            .to_string_lossy()
            .into_owned();
        assert!(
            env.starts_with("ARTICLE_") && help.contains(&format!("[env: {env}")),
            "--help names {env} for --{long}:\n{help}"
        );
    }
}

#[tokio::test]
async fn prints_exactly_one_listening_line_with_the_real_port() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    assert!(
        server.before_listening().is_empty(),
        "the listening line is the first stdout line; before it came {:?}",
        server.before_listening()
    );
    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "the URL of the address asked for: {}",
        server.url()
    );
    // The real port (ServerProcess refuses port 0), and it is the one serving.
    let mut client = connect(&server).await;
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

    let mut client = connect(&server).await;
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
    let mut client = connect(&server).await;
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
    let first = total_count(&mut connect(&server).await).await;
    assert!(
        (25..=40).contains(&first),
        "--demo-data loads about 30 articles into an empty database, got {first}"
    );
    server.terminate().await;
    drop(server);

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let second = total_count(&mut connect(&server).await).await;
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
    let article = create(&mut connect(&server).await, ALICE_TOKEN, "Durable").await;
    // Killed right after the acknowledgement, before any orderly shutdown.
    server.kill_9().await;
    drop(server);

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let got = connect(&server)
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
async fn a_clean_stop_leaves_every_write_in_the_database_file_itself() {
    // After SIGTERM the file alone, without its `-wal` and `-shm`, holds
    // every acknowledged article: what an operator who copies it gets.
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    // Enough concurrent writes that SQLite's own checkpoints have copied
    // some of the log into the file, and the last commits are only in it.
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut client = connect(&server).await;
        writers.push(tokio::spawn(async move {
            for i in 0..100 {
                create(
                    &mut client,
                    ALICE_TOKEN,
                    &format!("stopped cleanly {w}-{i}"),
                )
                .await;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("the writer's creates are acknowledged");
    }
    server.signal("TERM");
    let status = server.wait_exit().await;
    assert!(status.success(), "exit 0 after SIGTERM, got {status:?}");

    let copy = tempfile::tempdir().expect("temp dir is created");
    let alone = copy.path().join("articles.db");
    std::fs::copy(&db, &alone).expect("the database file is copied");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&database_url(&alone))
        .await
        .expect("the copied file opens");
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM articles WHERE title LIKE 'stopped cleanly %'")
            .fetch_one(&mut conn)
            .await
            .expect("the copied file is a complete database");
    assert_eq!(n, 800, "every acknowledged article is in the file itself");
}

#[tokio::test]
async fn twenty_acknowledged_creates_survive_kill_9() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let args = ["--token", token.as_str()];

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let mut client = connect(&server).await;
    let mut created = Vec::new();
    for i in 0..20 {
        created.push(create(&mut client, ALICE_TOKEN, &format!("durable {i}")).await);
    }
    server.kill_9().await;
    drop((client, server));

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let mut client = connect(&server).await;
    assert_eq!(
        total_count(&mut client).await,
        20,
        "all 20 articles are there"
    );
    assert_survived_kill_9(&mut client, &created).await;
    drop(client);
    server.terminate().await;
}

/// Each of `articles` is there, exactly as it was acknowledged.
async fn assert_survived_kill_9(
    client: &mut ArticleServiceClient<Channel>,
    articles: &[pb::Article],
) {
    for article in articles {
        let got = client
            .get_article(pb::GetArticleRequest { id: article.id })
            .await
            .unwrap_or_else(|e| panic!("acknowledged article {} survives kill -9: {e}", article.id))
            .into_inner()
            .article
            .expect("the article is returned");
        assert_eq!(&got, article);
    }
}

/// Writes committed together (group commit) are acknowledged only once
/// durable: 64 writers keep writing, the server is killed mid-stream, and
/// every write any of them saw acknowledged is there after the restart.
#[tokio::test]
async fn acknowledged_creates_of_64_concurrent_writers_survive_kill_9() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let args = ["--token", token.as_str()];

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let client = connect(&server).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let mut client = client.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let request = authed(ALICE_TOKEN, draft(&format!("writer {w} write {n}")));
                    match client.create_article(request).await {
                        Ok(response) => acked
                            .lock()
                            .unwrap()
                            .push(response.into_inner().article.expect("the article")),
                        // The server is gone.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    wait_for("256 acknowledged writes", || {
        acked.lock().unwrap().len() >= 256
    })
    .await;
    server.kill_9().await;
    for writer in writers {
        writer.await.expect("a writer ends when the server is gone");
    }
    drop((client, server));
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    let mut server = ServerProcess::start(command_with(dir.path(), &db, &args)).await;
    let mut client = connect(&server).await;
    assert!(total_count(&mut client).await >= acked.len() as i64);
    assert_survived_kill_9(&mut client, &acked).await;
    drop(client);
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_ends_watches_with_unavailable_and_exits_zero() {
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    let mut client = connect(&server).await;
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
    assert_eq!(total_count(&mut connect(&server).await).await, 0);
    server.signal("INT");
    let status = server.wait_exit().await;
    assert!(
        status.success(),
        "SIGINT makes the server exit 0, got {status:?}"
    );
}

#[tokio::test]
async fn call_lines_logged_right_before_and_during_the_drain_are_on_stderr_after_exit() {
    // Log lines go to stderr in batches: the last ones, logged just before
    // SIGTERM and while draining, must still be written before the exit.
    let (dir, db) = temp_dir();
    let token = format!("alice={ALICE_TOKEN}");
    let mut server =
        ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    let mut client = connect(&server).await;
    let mut watch_request = tonic::Request::new(pb::WatchArticlesRequest::default());
    watch_request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("drained-watch"));
    let mut watch = client
        .watch_articles(watch_request)
        .await
        .expect("WatchArticles opens")
        .into_inner();
    let ids: Vec<String> = (0..50).map(|i| format!("before-sigterm-{i}")).collect();
    for id in &ids {
        let mut request = tonic::Request::new(pb::ListArticlesRequest::default());
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("an ASCII id"));
        client
            .list_articles(request)
            .await
            .expect("ListArticles succeeds");
    }
    server.signal("TERM");
    // The watch ends while the server drains: its line is logged then.
    let end = tokio::time::timeout(TIMEOUT, watch.message())
        .await
        .expect("the watch ends in time after SIGTERM");
    assert!(end.is_err(), "the drain ends the watch: {end:?}");
    drop((watch, client));
    let status = server.wait_exit().await;
    assert!(status.success(), "exit 0 after SIGTERM, got {status:?}");

    let stderr = server.full_stderr().await;
    for id in &ids {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!(" request_id={id} ")))
            .unwrap_or_else(|| panic!("a call line for {id}:\n{stderr}"));
        let (_, fields) = line
            .split_once(" INFO grpc: call ")
            .unwrap_or_else(|| panic!("a call line: {line}"));
        assert!(
            fields.starts_with(
                "method=/article.v1.ArticleService/ListArticles status=\"OK\" duration_ms="
            ) && fields.ends_with(" protocol=\"grpc\""),
            "{line}"
        );
    }
    let watch_line = stderr
        .lines()
        .find(|l| l.contains(" request_id=drained-watch "))
        .unwrap_or_else(|| panic!("the drained watch's call line:\n{stderr}"));
    assert!(
        watch_line.contains(" WARN grpc: call method=/article.v1.ArticleService/WatchArticles status=\"UNAVAILABLE\""),
        "{watch_line}"
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
    let mut client = connect(&server).await;
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

/// A memory figure of process `pid` in bytes from `/proc/<pid>/status`:
/// `VmRSS` (resident now) or `VmHWM` (the peak so far).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/<pid>/status of the server is readable");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/<pid>/status has a {field} line in kB"));
    kib * 1024
}

#[tokio::test]
async fn a_256_mib_import_is_stored_whole_without_growing_memory_by_64_mib() {
    const MESSAGES: usize = 4096;
    const CONTENT: usize = 64 * 1024;
    let (dir, db) = temp_dir_in_memory();
    let token = format!("alice={ALICE_TOKEN}");
    let server = ServerProcess::start(command_with(dir.path(), &db, &["--token", &token])).await;
    // Without the usual channel's 30 s per-call timeout: the import takes
    // 10-30 s on a loaded 2-core machine, and is bounded below instead.
    let channel = tonic::transport::Endpoint::from_shared(server.url().to_owned())
        .expect("the printed url is a valid endpoint")
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .expect("a client connects to the printed url");
    let mut client = ArticleServiceClient::new(channel);
    // Warm up: the first write opens the pool's connections and caches.
    create(&mut client, ALICE_TOKEN, "before the import").await;
    let before = proc_status_bytes(server.pid(), "VmRSS");

    let messages = futures::stream::iter((0..MESSAGES).map(|i| pb::CreateArticleRequest {
        title: format!("big {i}"),
        // Distinct per message, so nothing can be shared or deduplicated.
        content: format!("{i:08}").repeat(CONTENT / 8),
        tags: vec!["big".into()],
    }));
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        client.import_articles(authed(ALICE_TOKEN, messages)),
    )
    .await
    .expect("the 256 MiB import answers within 120 s")
    .expect("the 256 MiB import is accepted")
    .into_inner();
    let (after, peak) = (
        proc_status_bytes(server.pid(), "VmRSS"),
        proc_status_bytes(server.pid(), "VmHWM"),
    );
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    eprintln!(
        "import of {MESSAGES} x {CONTENT} B: server RSS {:.1} MiB before, {:.1} MiB after, \
         peak {:.1} MiB",
        mib(before),
        mib(after),
        mib(peak)
    );

    assert_eq!(response.ids.len(), MESSAGES, "every message is stored");
    assert_eq!(total_count(&mut client).await, MESSAGES as i64 + 1);
    let last = client
        .get_article(pb::GetArticleRequest {
            id: response.ids[MESSAGES - 1],
        })
        .await
        .expect("the last imported article is readable")
        .into_inner()
        .article
        .expect("article in the response");
    assert_eq!(last.content.len(), CONTENT);
    // The peak, not just the end: memory freed after the commit counts too.
    assert!(
        peak.saturating_sub(before) < 64 * 1024 * 1024,
        "a 256 MiB import grows the server's RSS by less than 64 MiB: \
         {before} bytes before, peak {peak}, {after} after"
    );
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn tokens_file_keeps_tokens_out_of_the_process_list() {
    let (dir, db) = temp_dir();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("# writers\nalice={ALICE_TOKEN}\n")).expect("tokens file");
    let server = ServerProcess::start(command_with(
        dir.path(),
        &db,
        &["--tokens-file", &file.display().to_string()],
    ))
    .await;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid()))
        .expect("/proc/<pid>/cmdline is readable");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("--tokens-file"),
        "this is the server's command line: {cmdline}"
    );
    assert!(
        !cmdline.contains(ALICE_TOKEN),
        "no token in /proc/<pid>/cmdline: {cmdline}"
    );
    let article = create(&mut connect(&server).await, ALICE_TOKEN, "from the file").await;
    assert_eq!(
        article.author, "alice",
        "the file's token writes as its NAME"
    );
    assert!(
        !server.stderr().contains(ALICE_TOKEN),
        "no token in the log"
    );
}

#[tokio::test]
async fn a_bad_tokens_file_stops_startup_naming_file_and_line_but_not_the_secret() {
    let (dir, db) = temp_dir();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "alice=fine-long-token\nbob=tiny\n").expect("tokens file");
    let output = command_with(
        dir.path(),
        &db,
        &["--tokens-file", &file.display().to_string()],
    )
    .output()
    .await
    .expect("the server runs");
    assert!(!output.status.success(), "a bad tokens file is fatal");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("line 2"),
        "the error names the file and the line: {stderr}"
    );
    assert!(
        !stderr.contains("tiny") && !stderr.contains("fine-long-token"),
        "the error echoes no token: {stderr}"
    );
    // The failure's log line (batched) is written before the plain message.
    let logged = stderr
        .find("article-server failed")
        .unwrap_or_else(|| panic!("the failure is logged: {stderr}"));
    let plain = stderr
        .find("\nerror: ")
        .unwrap_or_else(|| panic!("the plain message on its own line: {stderr}"));
    assert!(logged < plain, "log line first: {stderr}");
}

#[tokio::test]
async fn sighup_reloads_the_tokens_file_on_open_connections() {
    const NEW_TOKEN: &str = "alice-rotated-token-4567";
    let (dir, db) = temp_dir();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("alice={ALICE_TOKEN}\n")).expect("tokens file");
    let server = ServerProcess::start(command_with(
        dir.path(),
        &db,
        &["--tokens-file", &file.display().to_string()],
    ))
    .await;
    // One channel for the whole test, and a watch stream on it: were the
    // connection dropped, the stream would end.
    let mut client = connect(&server).await;
    let mut watch = client
        .watch_articles(pb::WatchArticlesRequest::default())
        .await
        .expect("WatchArticles opens")
        .into_inner();
    create(&mut client, ALICE_TOKEN, "with the old token").await;

    // Only the digest: the file need not hold the new secret.
    std::fs::write(&file, format!("alice=sha256:{}\n", sha256_hex(NEW_TOKEN)))
        .expect("tokens file rewritten");
    server.signal("HUP");
    wait_for("the SIGHUP reload to be logged", || {
        server.stderr().contains("tokens file reloaded")
    })
    .await;

    let article = create(&mut client, NEW_TOKEN, "with the new token").await;
    assert_eq!(article.author, "alice");
    let old = client
        .create_article(authed(ALICE_TOKEN, draft("old token again")))
        .await
        .expect_err("the replaced token is refused");
    assert_eq!(old.code(), Code::Unauthenticated, "{old:?}");

    // The stream opened before the reload sees both writes, on the same connection.
    let mut titles = Vec::new();
    while titles.len() < 2 {
        let event = tokio::time::timeout(TIMEOUT, watch.message())
            .await
            .expect("the watch stream delivers in time")
            .expect("the watch stream is still up after SIGHUP")
            .expect("the watch stream has not ended");
        if let Some(pb::article_event::Event::Created(a)) = event.event {
            titles.push(a.title);
        }
    }
    assert_eq!(titles, ["with the old token", "with the new token"]);

    // A bad file on reload keeps the tokens in force and logs no secret.
    std::fs::write(&file, "alice=s3cr\n").expect("tokens file rewritten");
    server.signal("HUP");
    wait_for("the failed reload to be logged", || {
        server.stderr().contains("not reloaded")
    })
    .await;
    create(&mut client, NEW_TOKEN, "still the new token").await;
    let log = server.stderr();
    assert!(log.contains("line 1"), "the error names the line: {log}");
    for secret in ["s3cr", NEW_TOKEN, ALICE_TOKEN] {
        assert!(
            !log.contains(secret),
            "the log holds no token ({secret}): {log}"
        );
    }
}
