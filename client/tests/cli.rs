//! Black-box tests of the `article` command-line tool: the real binary runs
//! as a child process against in-process article servers (127.0.0.1, port 0,
//! each with its own SQLite file and known tokens). They cover every
//! subcommand over gRPC and gRPC-web, JSON output, one-line error exits,
//! metadata echo, gzip, TLS with a generated CA, an expiring deadline,
//! `watch` across server restarts, bulk and all-or-nothing `import`,
//! retries of idempotent calls (and none of writes), and failover between
//! two endpoints.
//!
//! Child processes are killed when their handle is dropped (`kill_on_drop`),
//! so a failing test leaves nothing running.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::code_name;
use serde_json::{Value, json};
use testkit::{
    TIMEOUT, TestPki,
    article::{ALICE, Settings, TestServer},
    wait_for,
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    task::JoinHandle,
};
use tonic::Code;

/// The binary under test.
const ARTICLE: &str = env!("CARGO_BIN_EXE_article");

// ---------------------------------------------------------------------------
// Harness: servers
// ---------------------------------------------------------------------------

/// The test settings (tokens for alice and bob) on the SQLite file `db`,
/// listening on `listen`.
fn settings(db: &Path, listen: SocketAddr) -> Settings {
    let mut settings = testkit::article::settings(db);
    settings.runtime.listen = listen;
    settings
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Waits (bounded) until `server` has exactly `n` open watch streams.
async fn wait_for_watchers(server: &TestServer, n: i64) {
    wait_for(
        &format!("{n} open watch stream(s) on {}", server.url),
        || server.watchers() == n,
    )
    .await;
}

/// One server with its own temporary directory and database.
struct Fixture {
    server: TestServer,
}

impl Fixture {
    async fn start() -> Self {
        Self {
            server: TestServer::start().await,
        }
    }

    /// Writes `text` to `name` in the server's directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.server.dir().join(name);
        std::fs::write(&path, text).expect("the test input file is written");
        path
    }

    /// The CLI pointed at this server, over gRPC or gRPC-web.
    fn cli(&self, web: bool) -> Cli {
        Cli::new(&[&self.server.url]).web(web)
    }
}

// ---------------------------------------------------------------------------
// Harness: the CLI
// ---------------------------------------------------------------------------

/// Global options for `article` invocations.
#[derive(Clone)]
struct Cli {
    global: Vec<String>,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(endpoints: &[&str]) -> Self {
        let mut global = Vec::new();
        for e in endpoints {
            global.push("--endpoint".to_string());
            global.push((*e).to_string());
        }
        Self {
            global,
            env: Vec::new(),
        }
    }

    fn with(mut self, args: &[&str]) -> Self {
        self.global.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn web(self, web: bool) -> Self {
        if web { self.with(&["--web"]) } else { self }
    }

    fn authed(self) -> Self {
        self.with(&["--token", ALICE])
    }

    fn json(self) -> Self {
        self.with(&["--output", "json"])
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ARTICLE);
        c.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(&self.global)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    fn describe(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.global.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        format!("article {}", all.join(" "))
    }

    /// Runs `article <global> <args>` to completion (bounded).
    async fn run(&self, args: &[&str]) -> Outcome {
        let command = self.describe(args);
        let output = tokio::time::timeout(TIMEOUT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("`{command}` did not finish within {TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("`{command}` could not be started: {e}"));
        Outcome {
            command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed with JSON output, and parses it.
    async fn json_ok(&self, args: &[&str]) -> Value {
        self.clone().json().run(args).await.json()
    }

    /// Starts `article <global> watch --output json <args>` in the background.
    fn watch(&self, args: &[&str]) -> Watcher {
        let mut all = vec!["--output", "json", "watch"];
        all.extend_from_slice(args);
        let command = self.describe(&all);
        let mut child = self
            .command(&all)
            .spawn()
            .unwrap_or_else(|e| panic!("`{command}` could not be started: {e}"));
        let stdout = child.stdout.take().expect("the watcher's stdout is piped");
        let stderr = child.stderr.take().expect("the watcher's stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        Watcher {
            command,
            child,
            lines: BufReader::new(stdout).lines(),
            stderr: log,
        }
    }
}

/// A finished `article` run.
struct Outcome {
    command: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn context(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts a zero exit and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {}", self.context());
        &self.stdout
    }

    /// Asserts a zero exit and parses stdout as one JSON document.
    fn json(&self) -> Value {
        let out = self.ok();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!(
                "expected --output json to print JSON ({e}): {}",
                self.context()
            )
        })
    }

    /// Asserts a failure reported as exactly one stderr line starting
    /// `error: `, without Rust debug output, and returns that line.
    fn failure_line(&self) -> String {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected a non-zero exit code: {}",
            self.context()
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one stderr line: {}",
            self.context()
        );
        let line = lines[0];
        assert!(
            line.starts_with("error: "),
            "expected the line to start with `error: `: {}",
            self.context()
        );
        for debug in [
            "Status {",
            "panicked",
            "backtrace",
            "MetadataMap",
            "Error {",
            "Some(",
        ] {
            assert!(
                !self.stderr.contains(debug),
                "expected no Rust debug output ({debug:?}): {}",
                self.context()
            );
        }
        line.to_owned()
    }

    /// Like [`failure_line`](Self::failure_line), and the line reads
    /// `error: <CODE>: …` with `CODE` the canonical name of one of `codes`.
    fn error_any(&self, codes: &[Code]) -> String {
        let line = self.failure_line();
        let names = codes.iter().map(|&c| code_name(c)).collect::<Vec<_>>();
        assert!(
            names
                .iter()
                .any(|name| line.starts_with(&format!("error: {name}: "))),
            "expected `error: <one of {names:?}>: …`: {}",
            self.context()
        );
        line
    }

    fn error(&self, code: Code) -> String {
        self.error_any(&[code])
    }
}

/// A running `article watch --output json`.
struct Watcher {
    command: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The next event line, parsed (bounded wait).
    async fn next(&mut self) -> Value {
        let line = match tokio::time::timeout(TIMEOUT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!(
                "`{}` ended its output early; stderr:\n{}",
                self.command,
                self.stderr()
            ),
            Ok(Err(e)) => panic!("reading `{}` failed: {e}", self.command),
            Err(_) => panic!(
                "`{}` printed no event within {TIMEOUT:?}; stderr:\n{}",
                self.command,
                self.stderr()
            ),
        };
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "watch --output json printed a line that is not JSON ({e}): {line:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// The next `n` events.
    async fn take(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.next().await);
        }
        events
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn id_of(article: &Value) -> i64 {
    article["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected a numeric id in {article}"))
}

fn ids(list: &Value) -> Vec<i64> {
    list["articles"]
        .as_array()
        .unwrap_or_else(|| panic!("expected an articles array in {list}"))
        .iter()
        .map(id_of)
        .collect()
}

fn titles(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["article"]["title"]
                .as_str()
                .unwrap_or_else(|| panic!("expected an article title in event {e}"))
                .to_owned()
        })
        .collect()
}

fn sequences(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            e["sequence"]
                .as_i64()
                .unwrap_or_else(|| panic!("expected a numeric sequence in event {e}"))
        })
        .collect()
}

fn assert_strictly_increasing(seqs: &[i64]) {
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "expected strictly increasing sequences, got {seqs:?}"
    );
}

/// Creates an article (must succeed) and returns it as JSON.
async fn create(cli: &Cli, title: &str, tags: &[&str]) -> Value {
    let content = format!("content of {title}");
    let mut args = vec!["create", "--title", title, "--content", &content];
    for t in tags {
        args.extend_from_slice(&["--tag", t]);
    }
    let cli = if cli.global.iter().any(|a| a == "--token") {
        cli.clone()
    } else {
        cli.clone().authed()
    };
    cli.json_ok(&args).await
}

async fn total_count(cli: &Cli) -> i64 {
    let list = cli.json_ok(&["list", "--page-size", "1"]).await;
    list["total_count"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected a numeric total_count in {list}"))
}

fn proto_name(web: bool) -> &'static str {
    if web { "gRPC-web" } else { "gRPC" }
}

// ---------------------------------------------------------------------------
// Help and environment
// ---------------------------------------------------------------------------

/// Block of `--help` text describing the option whose line starts with `flag`.
fn help_block<'a>(help: &'a str, flag: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(flag) || t.split(", ").any(|part| part.starts_with(flag))
        })
        .unwrap_or_else(|| panic!("expected `article --help` to document {flag}:\n{help}"));
    let mut block = vec![lines[start]];
    for l in &lines[start + 1..] {
        if l.trim_start().starts_with('-') || l.trim().is_empty() && block.len() > 1 {
            break;
        }
        block.push(l);
    }
    block
}

#[tokio::test]
async fn help_documents_every_global_option_with_its_env_var() {
    let help = Cli::new(&[]).run(&["--help"]).await;
    let help = help.ok();
    for (flag, env) in [
        ("--endpoint", "ARTICLE_ENDPOINTS"),
        ("--token", "ARTICLE_TOKEN"),
        ("--timeout", "ARTICLE_TIMEOUT"),
        ("--gzip", "ARTICLE_GZIP"),
        ("--web", "ARTICLE_WEB"),
        ("--ca-cert", "ARTICLE_CA_CERT"),
        ("--header", "ARTICLE_HEADER"),
        ("--output", "ARTICLE_OUTPUT"),
    ] {
        let block = help_block(help, flag).join("\n");
        assert!(
            block.contains(&format!("[env: {env}")),
            "expected --help to name the env var {env} for {flag}; got:\n{block}"
        );
    }
    // Every subcommand is listed.
    for sub in [
        "list", "get", "create", "update", "delete", "watch", "import",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "expected --help to list the {sub} subcommand:\n{help}"
        );
    }
}

#[tokio::test]
async fn help_documents_an_env_var_for_verbose() {
    let help = Cli::new(&[]).run(&["--help"]).await;
    let block = help_block(help.ok(), "-v").join("\n");
    assert!(
        block.contains("[env: ARTICLE_"),
        "expected --help to name an env var for -v/--verbose; got:\n{block}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_stand_in_for_global_options() {
    let f = Fixture::start().await;
    let cli = Cli::new(&[])
        .env("ARTICLE_ENDPOINTS", &f.server.url)
        .env("ARTICLE_TOKEN", ALICE)
        .env("ARTICLE_OUTPUT", "json")
        .env("ARTICLE_WEB", "true")
        .env("ARTICLE_GZIP", "true")
        .env("ARTICLE_TIMEOUT", "15s");
    let created = cli
        .run(&["create", "--title", "From env", "--content", "x"])
        .await
        .json();
    assert_eq!(
        created["author"], "alice",
        "created as the ARTICLE_TOKEN's author"
    );
    let id = id_of(&created).to_string();
    let got = cli.run(&["get", &id]).await.json();
    assert_eq!(got["title"], "From env");
}

// ---------------------------------------------------------------------------
// Every subcommand, over gRPC and gRPC-web
// ---------------------------------------------------------------------------

async fn exercise_subcommands(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web);
    let writer = cli.clone().authed();

    // create --content
    let first = writer
        .json_ok(&[
            "create",
            "--title",
            "Rust ownership",
            "--content",
            "Borrowing explained, with a NEEDLE.",
            "--tag",
            "rust",
            "--tag",
            "lang",
        ])
        .await;
    assert_eq!(first["title"], "Rust ownership");
    assert_eq!(first["content"], "Borrowing explained, with a NEEDLE.");
    assert_eq!(first["tags"], json!(["rust", "lang"]));
    assert_eq!(first["author"], "alice");
    assert_eq!(first["version"], 1);
    let first_id = id_of(&first);

    // create --content-file
    let body = "Line one of a file.\n\nLine two — with ünïcode and a needle.\n";
    let path = f.file("content.txt", body);
    let second = writer
        .json_ok(&[
            "create",
            "--title",
            "From a file",
            "--content-file",
            path.to_str().expect("temp paths are UTF-8"),
            "--tag",
            "notes",
        ])
        .await;
    assert_eq!(second["content"], body, "content is the file, verbatim");
    assert_eq!(second["tags"], json!(["notes"]));

    let third = create(&writer, "Go channels", &["go", "lang"]).await;
    let fourth = create(&writer, "Tea", &[]).await;
    let fifth = create(&writer, "Rust async", &["rust"]).await;
    let all = [&first, &second, &third, &fourth, &fifth].map(id_of);

    // list: newest first, total_count
    let list = cli.json_ok(&["list"]).await;
    assert_eq!(list["total_count"], 5);
    assert_eq!(
        ids(&list),
        all.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );
    // --page / --page-size
    let page = cli
        .json_ok(&["list", "--page", "2", "--page-size", "2"])
        .await;
    assert_eq!(page["total_count"], 5);
    assert_eq!(ids(&page), vec![all[2], all[1]], "page 2 of size 2");
    // --query (case-insensitive, title or content)
    let found = cli.json_ok(&["list", "--query", "needle"]).await;
    assert_eq!(found["total_count"], 2);
    assert_eq!(ids(&found), vec![all[1], all[0]]);
    // --tag
    let tagged = cli.json_ok(&["list", "--tag", "rust"]).await;
    assert_eq!(tagged["total_count"], 2);
    assert_eq!(ids(&tagged), vec![all[4], all[0]]);
    // table output
    let table = cli.run(&["list"]).await;
    let table = table.ok();
    assert!(
        table.contains("TITLE") && table.contains("Rust ownership"),
        "the table lists titles:\n{table}"
    );
    assert!(
        table.trim_end().ends_with("5 of 5 articles"),
        "the table ends with a total line:\n{table}"
    );

    // get
    let id = first_id.to_string();
    let got = cli.json_ok(&["get", &id]).await;
    assert_eq!(got, first, "get returns the article as created");
    let shown = cli.run(&["get", &id]).await;
    assert!(
        shown.ok().contains("Rust ownership") && shown.ok().contains("rust, lang"),
        "the table form shows title and tags:\n{}",
        shown.ok()
    );

    // update with partial fields: only the title
    let updated = writer
        .json_ok(&["update", &id, "--title", "Rust ownership, revised"])
        .await;
    assert_eq!(updated["title"], "Rust ownership, revised");
    assert_eq!(updated["content"], first["content"], "content is kept");
    assert_eq!(updated["tags"], first["tags"], "tags are kept");
    assert_eq!(updated["version"], 2);
    // only the tags
    let retagged = writer.json_ok(&["update", &id, "--tag", "systems"]).await;
    assert_eq!(retagged["tags"], json!(["systems"]));
    assert_eq!(
        retagged["title"], "Rust ownership, revised",
        "title is kept"
    );
    assert_eq!(retagged["version"], 3);
    // only the content, with the right expected version
    let rewritten = writer
        .json_ok(&[
            "update",
            &id,
            "--content",
            "New body.",
            "--expected-version",
            "3",
        ])
        .await;
    assert_eq!(rewritten["content"], "New body.");
    assert_eq!(rewritten["tags"], json!(["systems"]), "tags are kept");
    assert_eq!(rewritten["version"], 4);

    // update with a stale expected version: ABORTED, nothing changes
    let stale = writer
        .run(&["update", &id, "--title", "Lost", "--expected-version", "1"])
        .await;
    stale.error(Code::Aborted);
    assert!(
        stale.stdout.is_empty(),
        "nothing on stdout: {}",
        stale.context()
    );
    let after = cli.json_ok(&["get", &id]).await;
    assert_eq!(after, rewritten, "a refused update changes nothing");

    // delete
    let deleted = writer.json_ok(&["delete", &id]).await;
    assert_eq!(deleted, json!({ "deleted": first_id }));
    cli.run(&["get", &id]).await.error(Code::NotFound);
    let other = all[3].to_string();
    let table = writer.run(&["delete", &other]).await;
    assert_eq!(table.ok().trim(), format!("deleted {other}"));
    assert_eq!(total_count(&cli).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_over_grpc() {
    exercise_subcommands(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_over_grpc_web() {
    exercise_subcommands(true).await;
}

// ---------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------

async fn exercise_watch(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web);
    let writer = cli.clone().authed();

    let mut rust_only = cli.watch(&["--tag", "rust"]);
    let mut everything = cli.watch(&[]);
    wait_for_watchers(&f.server, 2).await;

    let go = create(&writer, "Go one", &["go"]).await;
    let rust = create(&writer, "Rust one", &["rust"]).await;
    let id = id_of(&rust).to_string();
    writer
        .json_ok(&["update", &id, "--title", "Rust one, revised"])
        .await;
    writer.json_ok(&["delete", &id]).await;

    let all = everything.take(4).await;
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["created", "created", "updated", "deleted"],
        "every change over {}: {all:?}",
        proto_name(web)
    );
    assert_eq!(all[0]["article"]["id"], go["id"]);
    assert_eq!(all[1]["article"]["id"], rust["id"]);
    assert_eq!(all[2]["article"]["title"], "Rust one, revised");
    assert_eq!(all[3]["id"], rust["id"]);
    let seqs = sequences(&all);
    assert_strictly_increasing(&seqs);

    // --tag: only the rust article's changes.
    let filtered = rust_only.take(3).await;
    assert_eq!(
        filtered
            .iter()
            .map(|e| e["type"].clone())
            .collect::<Vec<_>>(),
        [json!("created"), json!("updated"), json!("deleted")]
    );
    assert_eq!(sequences(&filtered), seqs[1..].to_vec());

    // --after-sequence: replays what came after it, then goes live.
    let after = seqs[1].to_string();
    let mut resumed = cli.watch(&["--after-sequence", &after]);
    let replayed = resumed.take(2).await;
    assert_eq!(replayed, all[2..].to_vec(), "replay after sequence {after}");
    let live = create(&writer, "Live one", &["rust"]).await;
    let next = resumed.next().await;
    assert_eq!(next["type"], "created");
    assert_eq!(next["article"]["id"], live["id"]);
    assert!(next["sequence"].as_i64() > Some(seqs[3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_over_grpc() {
    exercise_watch(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_over_grpc_web() {
    exercise_watch(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_cleanly_on_ctrl_c() {
    let f = Fixture::start().await;
    let cli = f.cli(false);
    let mut watcher = cli.watch(&[]);
    wait_for_watchers(&f.server, 1).await;
    create(&cli, "Before Ctrl-C", &[]).await;
    assert_eq!(watcher.next().await["type"], "created");
    let pid = watcher.child.id().expect("the watcher is running");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "SIGINT was delivered");
    let exit = tokio::time::timeout(TIMEOUT, watcher.child.wait())
        .await
        .expect("the watcher exits within the timeout after SIGINT")
        .expect("the watcher's exit status is read");
    assert_eq!(
        exit.code(),
        Some(0),
        "Ctrl-C ends watch with exit code 0 (stderr: {})",
        watcher.stderr()
    );
}

/// Asserts `events` are exactly the created events for `expected` titles,
/// in order, with strictly increasing sequences.
fn assert_created(events: &[Value], expected: &[&str]) {
    assert!(
        events.iter().all(|e| e["type"] == "created"),
        "only created events expected: {events:?}"
    );
    assert_eq!(titles(events), expected, "created events in order");
    assert_strictly_increasing(&sequences(events));
}

async fn exercise_watch_restart(web: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory is created");
    let db = dir.path().join("articles.db");
    let first = TestServer::start_on(settings(&db, any_port())).await;
    let port = first.port();
    let cli = Cli::new(&[&first.url]).web(web);

    let mut watcher = cli.watch(&[]);
    wait_for_watchers(&first, 1).await;
    for t in ["r1", "r2", "r3"] {
        create(&cli, t, &[]).await;
    }
    let mut events = watcher.take(3).await;
    assert_created(&events, &["r1", "r2", "r3"]);

    first.shutdown().await;
    // While the server is down, a write fails cleanly with one error line
    // (its status code is checked in the unreachable-server tests).
    cli.clone()
        .authed()
        .run(&["create", "--title", "lost", "--content", "x"])
        .await
        .failure_line();

    let second =
        TestServer::start_on(settings(&db, SocketAddr::from(([127, 0, 0, 1], port)))).await;
    wait_for_watchers(&second, 1).await;
    for t in ["r4", "r5", "r6"] {
        create(&cli, t, &[]).await;
    }
    events.extend(watcher.take(3).await);
    // A sentinel proves nothing (no duplicate) came between.
    create(&cli, "sentinel", &[]).await;
    events.push(watcher.next().await);
    assert_created(&events, &["r1", "r2", "r3", "r4", "r5", "r6", "sentinel"]);
    let ids: Vec<_> = events.iter().map(|e| e["article"]["id"].clone()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no article is reported twice");
}

async fn exercise_watch_disconnected(web: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory is created");
    let db = dir.path().join("articles.db");
    let first = TestServer::start_on(settings(&db, any_port())).await;
    let port = first.port();
    let cli = Cli::new(&[&first.url]).web(web);

    let mut watcher = cli.watch(&[]);
    wait_for_watchers(&first, 1).await;
    for t in ["r1", "r2", "r3"] {
        create(&cli, t, &[]).await;
    }
    let mut events = watcher.take(3).await;
    assert_created(&events, &["r1", "r2", "r3"]);
    first.shutdown().await;

    // While nothing listens on the watcher's port, another server on the
    // same database takes three more writes.
    let elsewhere = TestServer::start_on(settings(&db, any_port())).await;
    let other = Cli::new(&[&elsewhere.url]).web(web);
    for t in ["r4", "r5", "r6"] {
        create(&other, t, &[]).await;
    }
    elsewhere.shutdown().await;

    // The watcher reconnects to the restarted port and must replay them.
    let second =
        TestServer::start_on(settings(&db, SocketAddr::from(([127, 0, 0, 1], port)))).await;
    events.extend(watcher.take(3).await);
    wait_for_watchers(&second, 1).await;
    create(&cli, "sentinel", &[]).await;
    events.push(watcher.next().await);
    assert_created(&events, &["r1", "r2", "r3", "r4", "r5", "r6", "sentinel"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_a_server_restart_over_grpc() {
    exercise_watch_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_a_server_restart_over_grpc_web() {
    exercise_watch_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_changes_made_while_disconnected_over_grpc() {
    exercise_watch_disconnected(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_changes_made_while_disconnected_over_grpc_web() {
    exercise_watch_disconnected(true).await;
}

// ---------------------------------------------------------------------------
// import
// ---------------------------------------------------------------------------

async fn exercise_import(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web);
    let jsonl = f.file(
        "two.jsonl",
        "{\"title\":\"J1\",\"content\":\"first\",\"tags\":[\"json\"]}\n\n{\"title\":\"J2\"}\n",
    );
    let front = f.file(
        "front.md",
        "---\ntitle: With front matter\ntags: [md, docs]\n---\n\nThe *body* of the post.\n",
    );
    let heading = f.file("heading.md", "# Heading title\n\nParagraph one.\n");
    let paths = [&jsonl, &front, &heading].map(|p| p.to_str().expect("temp paths are UTF-8"));

    let mut args = vec!["import"];
    args.extend_from_slice(&paths);
    let result = cli.clone().authed().json_ok(&args).await;
    assert_eq!(result["created_count"], 4, "{result}");
    let created: Vec<i64> = result["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("expected ids in {result}"))
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(created.len(), 4);

    let mut got = Vec::new();
    for id in &created {
        got.push(cli.json_ok(&["get", &id.to_string()]).await);
    }
    assert_eq!(got[0]["title"], "J1");
    assert_eq!(got[0]["tags"], json!(["json"]));
    assert_eq!(got[1]["title"], "J2");
    assert_eq!(got[2]["title"], "With front matter");
    assert_eq!(got[2]["tags"], json!(["md", "docs"]));
    assert_eq!(got[2]["content"], "The *body* of the post.");
    assert_eq!(got[3]["title"], "Heading title");
    assert_eq!(got[3]["content"], "Paragraph one.");
    assert!(got.iter().all(|a| a["author"] == "alice"));

    // Table output, piped: one summary line, no progress bar.
    let again = cli.clone().authed().run(&["import", paths[1]]).await;
    assert!(
        again.ok().starts_with("imported 1 articles"),
        "{}",
        again.context()
    );
    assert!(
        again.stderr.is_empty(),
        "no progress bar when piped: {}",
        again.context()
    );
    assert_eq!(total_count(&cli).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_jsonl_and_markdown_over_grpc() {
    exercise_import(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_jsonl_and_markdown_over_grpc_web() {
    exercise_import(true).await;
}

async fn import_10000(web: bool) {
    let f = Fixture::start().await;
    let mut text = String::with_capacity(10_000 * 80);
    for i in 0..10_000 {
        text.push_str(
            &json!({"title": format!("Bulk {i}"), "content": format!("body {i}"), "tags": ["bulk"]})
                .to_string(),
        );
        text.push('\n');
    }
    let path = f.file("bulk.jsonl", &text);
    let cli = f.cli(web).with(&["--timeout", "25s"]);
    let result = cli
        .clone()
        .authed()
        .json_ok(&["import", path.to_str().expect("temp paths are UTF-8")])
        .await;
    assert_eq!(result["created_count"], 10_000);
    assert_eq!(result["ids"].as_array().map(Vec::len), Some(10_000));
    assert_eq!(total_count(&cli).await, 10_000);
    let tagged = cli
        .json_ok(&["list", "--tag", "bulk", "--page-size", "1"])
        .await;
    assert_eq!(tagged["total_count"], 10_000);
    assert_eq!(tagged["articles"][0]["title"], "Bulk 9999", "newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_10000_articles_over_grpc() {
    import_10000(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_10000_articles_over_grpc_web() {
    import_10000(true).await;
}

async fn import_bad_record(web: bool) {
    let f = Fixture::start().await;
    let mut text = String::new();
    for i in 1..=10 {
        let tag = if i == 5 { "Uppercase" } else { "fine" };
        text.push_str(&json!({"title": format!("Line {i}"), "tags": [tag]}).to_string());
        text.push('\n');
    }
    let path = f.file("bad.jsonl", &text);
    let path = path.to_str().expect("temp paths are UTF-8");
    let cli = f.cli(web);
    let outcome = cli.clone().authed().run(&["import", path]).await;
    let line = outcome.failure_line();
    assert!(
        line.contains(&format!("{}: ", code_name(Code::InvalidArgument))),
        "the error names the status: {line}"
    );
    assert!(
        line.contains(&format!("{path}:5")),
        "the error names the file and line: {line}"
    );
    assert!(
        line.contains("tags") && line.contains("Uppercase"),
        "the error says which field is wrong and why: {line}"
    );
    assert!(outcome.stdout.is_empty(), "{}", outcome.context());
    assert_eq!(total_count(&cli).await, 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_one_bad_record_stores_nothing_over_grpc() {
    import_bad_record(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_one_bad_record_stores_nothing_over_grpc_web() {
    import_bad_record(true).await;
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

async fn exercise_errors(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web);

    let line = cli.run(&["get", "424242"]).await.error(Code::NotFound);
    assert!(line.contains("424242"), "the message names the id: {line}");

    let invalid = cli
        .clone()
        .authed()
        .run(&[
            "create",
            "--title",
            "  ",
            "--content",
            "x",
            "--tag",
            "Not-Lower",
        ])
        .await;
    let line = invalid.error(Code::InvalidArgument);
    assert!(
        line.contains("title: ") && line.contains("tags: "),
        "each field violation (title and tags) is listed: {line}"
    );

    let line = cli
        .run(&["list", "--page=-1", "--page-size=-5"])
        .await
        .error(Code::InvalidArgument);
    assert!(
        line.contains("page: ") && line.contains("page_size: "),
        "each field violation (page and page_size) is listed: {line}"
    );

    cli.run(&["create", "--title", "No token", "--content", "x"])
        .await
        .error(Code::Unauthenticated);
    cli.clone()
        .with(&["--token", "wrong-token-123456"])
        .run(&["delete", "1"])
        .await
        .error(Code::Unauthenticated);
    assert_eq!(
        total_count(&cli).await,
        0,
        "no failed write stored anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_with_the_status_name_over_grpc() {
    exercise_errors(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_with_the_status_name_over_grpc_web() {
    exercise_errors(true).await;
}

async fn exercise_unreachable(web: bool) {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port is found")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let cli = Cli::new(&[&url]).web(web);
    cli.run(&["get", "1"]).await.error(Code::Unavailable);
    cli.run(&["list"]).await.error(Code::Unavailable);
    cli.authed()
        .run(&["create", "--title", "t", "--content", "c"])
        .await
        .error(Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_one_unavailable_line_over_grpc() {
    exercise_unreachable(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_one_unavailable_line_over_grpc_web() {
    exercise_unreachable(true).await;
}

// ---------------------------------------------------------------------------
// Metadata, gzip
// ---------------------------------------------------------------------------

async fn exercise_metadata_echo(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web).with(&["-v", "--header", "x-request-id=abc123"]);
    let outcome = cli.run(&["list"]).await;
    outcome.ok();
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.trim_end().ends_with("x-request-id: abc123")),
        "-v prints the echoed x-request-id: {}",
        outcome.context()
    );
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.trim_end().ends_with("grpc-status: 0")),
        "-v prints the trailers too: {}",
        outcome.context()
    );
    // A write shows it too.
    let outcome = cli
        .authed()
        .run(&["create", "--title", "t", "--content", "c"])
        .await;
    outcome.ok();
    assert!(
        outcome.stderr.contains("x-request-id: abc123"),
        "{}",
        outcome.context()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_echoes_request_metadata_over_grpc() {
    exercise_metadata_echo(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_echoes_request_metadata_over_grpc_web() {
    exercise_metadata_echo(true).await;
}

async fn exercise_gzip(web: bool) {
    let f = Fixture::start().await;
    let cli = f.cli(web).with(&["--gzip", "-v"]);
    let long = "compressible text ".repeat(2_000);
    let created = cli
        .clone()
        .authed()
        .json()
        .run(&["create", "--title", "Zipped", "--content", &long])
        .await;
    let article = created.json();
    assert_eq!(article["content"], long.as_str());
    let listed = cli.clone().json().run(&["list"]).await;
    assert_eq!(ids(&listed.json()), vec![id_of(&article)]);
    assert!(
        listed.stderr.contains("grpc-encoding: gzip"),
        "the server answered with gzip: {}",
        listed.context()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_create_and_list_over_grpc() {
    exercise_gzip(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_create_and_list_over_grpc_web() {
    exercise_gzip(true).await;
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

async fn start_tls() -> (tempfile::TempDir, TestServer, testkit::PkiFiles) {
    let dir = tempfile::tempdir().expect("a temporary directory is created");
    let pki = TestPki::generate().write_to(dir.path());
    let mut s = settings(&dir.path().join("articles.db"), any_port());
    s.runtime.tls_cert = Some(pki.cert.clone());
    s.runtime.tls_key = Some(pki.key.clone());
    let server = TestServer::start_on(s).await;
    assert!(
        server.url.starts_with("https://"),
        "TLS is on: {}",
        server.url
    );
    (dir, server, pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_ca_over_grpc_and_grpc_web() {
    let (_dir, server, pki) = start_tls().await;
    let url = format!("https://localhost:{}", server.port());
    let ca = pki.ca.to_str().expect("temp paths are UTF-8");
    for web in [false, true] {
        let cli = Cli::new(&[&url]).web(web).with(&["--ca-cert", ca]);
        let title = format!("Over TLS ({})", proto_name(web));
        let created = create(&cli, &title, &["tls"]).await;
        let got = cli.json_ok(&["get", &id_of(&created).to_string()]).await;
        assert_eq!(got["title"], title.as_str());
        let list = cli.json_ok(&["list", "--tag", "tls"]).await;
        assert!(ids(&list).contains(&id_of(&created)));
    }
}

async fn exercise_tls_without_ca(web: bool) {
    let (_dir, server, pki) = start_tls().await;
    let url = format!("https://localhost:{}", server.port());
    let cli = Cli::new(&[&url]).web(web);
    let line = cli.run(&["list"]).await.error(Code::Unavailable);
    assert!(
        line.to_ascii_lowercase().contains("certificate"),
        "the error says the certificate was not trusted ({}): {line}",
        proto_name(web)
    );
    cli.authed()
        .run(&["create", "--title", "t", "--content", "c"])
        .await
        .error(Code::Unavailable);
    // Nothing was written.
    let trusted = Cli::new(&[&url])
        .web(web)
        .with(&["--ca-cert", pki.ca.to_str().expect("temp paths are UTF-8")]);
    assert_eq!(total_count(&trusted).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_the_ca_cert_fails_cleanly_over_grpc() {
    exercise_tls_without_ca(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_the_ca_cert_fails_cleanly_over_grpc_web() {
    exercise_tls_without_ca(true).await;
}

// ---------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------

/// A TCP listener that accepts connections and never answers.
async fn black_hole() -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(any_port())
        .await
        .expect("the black-hole listener binds");
    let addr = listener.local_addr().expect("the listener has an address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_deadline_is_one_line_error() {
    let (addr, task) = black_hole().await;
    let url = format!("http://{addr}");
    for web in [false, true] {
        for args in [
            &["get", "1"][..],
            &["list"][..],
            &["--token", ALICE, "create", "--title", "t", "--content", "c"][..],
        ] {
            let cli = Cli::new(&[&url]).web(web).with(&["--timeout", "300ms"]);
            let started = Instant::now();
            let outcome = cli.run(args).await;
            let elapsed = started.elapsed();
            outcome.error_any(&[Code::DeadlineExceeded, Code::Cancelled]);
            assert!(
                elapsed < Duration::from_secs(5),
                "the 300ms deadline ends the call well before the default (took {elapsed:?}): {}",
                outcome.context()
            );
        }
    }
    task.abort();
}

// ---------------------------------------------------------------------------
// Failover
// ---------------------------------------------------------------------------

async fn exercise_failover(web: bool) {
    // Two servers over one database, standing in for two replicas of one
    // service. Not a supported deployment of the SQLite store (each server
    // caches list pages until *its own* next write), so the cache is off.
    let dir = tempfile::tempdir().expect("a temporary directory is created");
    let db = dir.path().join("articles.db");
    let replica = || {
        let mut s = settings(&db, any_port());
        s.list_cache_mib = 0;
        s
    };
    let a = TestServer::start_on(replica()).await;
    let b = TestServer::start_on(replica()).await;
    let both = [Cli::new(&[&a.url, &b.url]), Cli::new(&[&b.url, &a.url])];
    let both = both.map(|c| c.web(web));

    let mut created = Vec::new();
    for (i, cli) in both.iter().enumerate() {
        let article = create(cli, &format!("before {i}"), &[]).await;
        created.push(id_of(&article));
    }
    assert_eq!(total_count(&both[0]).await, 2);

    // B goes away in the middle of the run.
    b.shutdown().await;

    for i in 0..12 {
        // Alternate the order, so the dead endpoint is tried first half the time.
        let cli = &both[i % 2];
        match i % 3 {
            0 => {
                let article = create(cli, &format!("after {i}"), &[]).await;
                created.push(id_of(&article));
            }
            1 => {
                let id = created[created.len() - 1];
                let got = cli.json_ok(&["get", &id.to_string()]).await;
                assert_eq!(id_of(&got), id);
            }
            _ => {
                let list = cli.json_ok(&["list", "--page-size", "100"]).await;
                assert_eq!(list["total_count"], json!(created.len()));
            }
        }
    }
    assert_eq!(created.len(), 6);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_keep_answering_when_one_is_killed_over_grpc() {
    exercise_failover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_keep_answering_when_one_is_killed_over_grpc_web() {
    exercise_failover(true).await;
}

// ---------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------

/// A TCP front for `target`: the first connection is closed at once (the
/// call on it fails), every later one is proxied to `target`.
async fn flaky_front(target: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(any_port())
        .await
        .expect("the flaky front binds");
    let addr = listener.local_addr().expect("the front has an address");
    let task = tokio::spawn(async move {
        let Ok((first, _)) = listener.accept().await else {
            return;
        };
        drop(first);
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, task)
}

async fn exercise_idempotent_retry(web: bool) {
    let f = Fixture::start().await;
    let seeded = create(&f.cli(web), "Seeded", &[]).await;
    let (front, task) = flaky_front(f.server.addr).await;
    let cli = Cli::new(&[&format!("http://{front}")]).web(web);
    // The first attempt's connection is dropped; the retry gets through.
    let list = cli.json_ok(&["list"]).await;
    assert_eq!(ids(&list), vec![id_of(&seeded)]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_retry_a_dropped_connection_over_grpc() {
    exercise_idempotent_retry(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_retry_a_dropped_connection_over_grpc_web() {
    exercise_idempotent_retry(true).await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `buf` holds a whole HTTP/2 request: the preface, then frames up
/// to a DATA frame that ends its stream.
fn h2_request_complete(buf: &[u8]) -> bool {
    let mut i = 24;
    while buf.len() >= i + 9 {
        let len =
            usize::from(buf[i]) << 16 | usize::from(buf[i + 1]) << 8 | usize::from(buf[i + 2]);
        if buf.len() < i + 9 + len {
            return false;
        }
        if buf[i + 3] == 0 && buf[i + 4] & 1 == 1 {
            return true;
        }
        i += 9 + len;
    }
    false
}

/// Whether `buf` holds a whole HTTP/1.1 request (sized or chunked body).
fn http1_request_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => buf.len() >= end + 4 + n,
        None => buf.ends_with(b"0\r\n\r\n"),
    }
}

/// A listener that reads one whole request from its first connection and
/// then closes it without answering. The task returns whether it did.
async fn swallow_one_request(web: bool) -> (SocketAddr, JoinHandle<bool>) {
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind(any_port())
        .await
        .expect("the swallowing listener binds");
    let addr = listener.local_addr().expect("the listener has an address");
    let task = tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return false;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let complete = if web {
                http1_request_complete(&buf)
            } else {
                h2_request_complete(&buf)
            };
            if complete {
                return true;
            }
        }
    });
    (addr, task)
}

async fn exercise_write_not_resent(web: bool) {
    let f = Fixture::start().await;
    let (swallower, task) = swallow_one_request(web).await;
    // The swallower is tried first; the healthy server second.
    let cli = Cli::new(&[&format!("http://{swallower}"), &f.server.url]).web(web);
    let outcome = cli
        .clone()
        .authed()
        .run(&["create", "--title", "Once", "--content", "x"])
        .await;
    outcome.failure_line();
    let received = tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("the swallowing listener finishes")
        .expect("the swallowing task joins");
    assert!(
        received,
        "the create request reached the first endpoint in full"
    );
    assert_eq!(
        total_count(&f.cli(web)).await,
        0,
        "a write that reached a server is not sent again elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_reached_a_server_is_not_resent_over_grpc() {
    exercise_write_not_resent(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_reached_a_server_is_not_resent_over_grpc_web() {
    exercise_write_not_resent(true).await;
}
