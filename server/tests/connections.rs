//! The `article-server` binary under a low soft open-files limit
//! (`prlimit --nofile=1024:<hard>`, as systemd gives services): it raises
//! the soft limit to the hard one at start (and says so), holds 2,000
//! browser-style watch streams (gRPC-web over HTTP/1.1, one connection
//! each) beside 1,000 silent sockets, and closes the silent ones by itself
//! after `--header-read-secs`; out of descriptors (soft = hard = 64) it
//! warns (rate-limited), backs off, and serves again once connections close.
//!
//! Needs `prlimit` (util-linux) and a hard limit of at least 4,096; the
//! test's own soft limit is raised with `prlimit --pid` too.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use testkit::ServerProcess;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    process::Command,
    task::JoinSet,
};

const BIN: &str = env!("CARGO_BIN_EXE_article-server");
const WATCHES: usize = 2_000;
const SILENT: usize = 1_000;
const HEADER_READ_SECS: u64 = 2;

/// The hard open-files limit of this process.
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("an open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    fields[fields.len() - 2].parse().unwrap_or(u64::MAX)
}

/// Raises this process's soft open-files limit to `hard`.
fn raise_own_limit(hard: u64) {
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit raises the test's own limit");
}

/// Opens a WatchArticles stream as a browser does (gRPC-web, HTTP/1.1, its
/// own connection) and returns the connection once the answer's head is
/// in, with how many times it was refused first. Like the browser client,
/// it retries UNAVAILABLE after a short back-off: 2,000 streams starting at
/// once are more than `--max-concurrent-calls` lets start at a time.
async fn watch(addr: std::net::SocketAddr) -> (TcpStream, u32) {
    let mut refused = 0;
    loop {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        // An empty WatchArticlesRequest: a 5-byte frame with length 0.
        let request = format!(
            "POST /article.v1.ArticleService/WatchArticles HTTP/1.1\r\nhost: {addr}\r\n\
             content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
             content-length: 5\r\n\r\n\0\0\0\0\0"
        );
        tcp.write_all(request.as_bytes()).await.expect("request");
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.expect("answer");
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&head));
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head.contains("grpc-status: 14\r\n") {
            refused += 1;
            let back_off = 20 + u64::from(refused.min(10)) * 20 + u64::from(std::process::id() % 7);
            tokio::time::sleep(Duration::from_millis(back_off)).await;
            continue;
        }
        assert!(
            !head.contains("grpc-status"),
            "a stream, not an error: {head}"
        );
        return (tcp, refused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_soft_limit_of_1024_2000_watch_streams_open_and_silent_sockets_are_closed() {
    let hard = hard_nofile();
    assert!(
        hard >= 4_096,
        "this test needs a hard open-files limit of at least 4096, not {hard}"
    );
    raise_own_limit(hard);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile=1024:{hard}"))
        .arg("--")
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--database", "sqlite::memory:"])
        .args(["--header-read-secs", &HEADER_READ_SECS.to_string()])
        // This test is about connections. With the default call limit
        // (256 per core) a part of 2,000 simultaneous starts is refused
        // UNAVAILABLE and retried, as `watch` does, which makes the
        // test's time depend on the machine's load; the limit has its own
        // tests in grpc-runtime (`overload`).
        .args(["--max-concurrent-calls", "0"])
        .args(["--token", "alice=connections-test-token-0123"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped());
    let server = ServerProcess::start(command).await;
    let addr = server.addr();

    // Silent sockets first: they must be gone after the timeout while the
    // watch streams below keep theirs.
    let started = Instant::now();
    let mut connects = JoinSet::new();
    for _ in 0..SILENT {
        connects.spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            (tcp, Instant::now())
        });
    }
    let mut silent = JoinSet::new();
    while let Some(connected) = connects.join_next().await {
        let (mut tcp, connected_at) = connected.expect("a silent socket connects");
        silent.spawn(async move {
            let mut buf = [0u8; 64];
            // EOF or reset: closed by the server.
            let _ = tcp.read(&mut buf).await;
            Instant::now() - connected_at
        });
    }
    eprintln!(
        "{SILENT} silent sockets connected in {:?}",
        started.elapsed()
    );

    let mut watches = JoinSet::new();
    for _ in 0..WATCHES {
        watches.spawn(watch(addr));
    }
    let mut open = Vec::with_capacity(WATCHES);
    let mut refusals = 0;
    let all_open = async {
        while let Some(opened) = watches.join_next().await {
            let (tcp, refused) = opened.expect("a watch stream opens");
            open.push(tcp);
            refusals += refused;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), all_open)
        .await
        .expect("2,000 watch streams open within 15 s");
    assert_eq!(open.len(), WATCHES);
    eprintln!("{WATCHES} watch streams open; {refusals} starts refused UNAVAILABLE and retried");

    let mut shortest = Duration::MAX;
    let mut closed = 0;
    let all_closed = async {
        while let Some(lived) = silent.join_next().await {
            shortest = shortest.min(lived.expect("a silent socket"));
            closed += 1;
        }
    };
    let bound = Duration::from_secs(HEADER_READ_SECS * 4);
    let in_time = tokio::time::timeout(bound, all_closed).await.is_ok();
    assert!(
        in_time,
        "the server closes every silent socket: {closed} of {SILENT} closed in {:?}",
        started.elapsed()
    );
    assert!(
        shortest >= Duration::from_secs(HEADER_READ_SECS) - Duration::from_millis(100),
        "silent sockets are given the timeout: {shortest:?}"
    );

    // The watch streams outlived the silent sockets' timeout.
    for tcp in &open {
        let mut byte = [0u8; 1];
        let read = tcp.try_read(&mut byte);
        assert!(!matches!(read, Ok(0)), "a watch stream was closed");
    }
    let log = server.stderr();
    assert!(
        log.contains("open files limit: soft 1024 raised to"),
        "the raise is logged: {log}"
    );
}

#[tokio::test]
async fn out_of_file_descriptors_the_server_warns_once_backs_off_and_recovers() {
    // Soft = hard = 64: raising is no help, and 100 connections run the
    // server out of descriptors.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=64:64")
        .arg("--")
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--database", "sqlite::memory:"])
        .args(["--token", "alice=connections-test-token-0123"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped());
    let server = ServerProcess::start(command).await;
    let addr = server.addr();

    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    testkit::wait_for("an accept warning", || {
        server.stderr().contains("accept failed")
    })
    .await;
    // Rate-limited: not a line per failed accept (the loop would otherwise
    // log thousands a second while it retries).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warnings = server.stderr().matches("accept failed").count();
    assert!(warnings <= 2, "{warnings} warnings:\n{}", server.stderr());
    assert!(
        server.stderr().contains("Too many open files"),
        "the warning names the cause:\n{}",
        server.stderr()
    );

    // Once connections close, the server accepts and answers again.
    drop(held);
    let mut client =
        proto::v1::article_service_client::ArticleServiceClient::new(server.channel().await);
    let listed = tokio::time::timeout(
        testkit::TIMEOUT,
        client.list_articles(proto::v1::ListArticlesRequest::default()),
    )
    .await
    .expect("an answer in time");
    assert!(listed.is_ok(), "{listed:?}");
}
