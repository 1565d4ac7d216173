//! The soak: one `article-server` (release, SQLite) under mixed traffic for
//! a long time — reads (ListArticles, GetArticle), writes (create, update,
//! delete, keeping the table small), watch streams opening and closing,
//! each over native gRPC and over gRPC-web (HTTP/1.1) — sampling the
//! server's RSS and open file descriptors, and counting every failed call.
//!
//! Verdicts, after the warm-up: RSS at the end within 5 % of RSS when the
//! warm-up ended, the open-file count back within a few of where it was,
//! and zero failed calls. The curve goes to a CSV file and, one row a
//! minute, into the Markdown report printed at the end.
//!
//! `cargo xtask soak` builds and runs it (30 minutes by default).

use std::{
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use article_bench::{process::Server, procfs};
use article_client::transport::{ArticleClient, ClientConfig, Protocol};
use clap::Parser;
use futures::FutureExt as _;
use proto::v1 as pb;
use rand::Rng as _;
use tonic::Code;

#[derive(Parser, Debug)]
#[command(
    about = "Mixed traffic against one article-server for a long time; RSS, open files, failures."
)]
struct Args {
    /// The server binary (a release build).
    #[arg(long)]
    server_bin: PathBuf,
    /// Length of the whole run, warm-up included.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Minutes at the start not judged (caches, pools and allocator
    /// arenas fill up).
    #[arg(long, default_value_t = 5)]
    warmup_minutes: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Calls per second of each reader (two gRPC, two gRPC-web).
    #[arg(long, default_value_t = 150)]
    read_rate: u32,
    /// Writes per second of each writer (one gRPC, one gRPC-web).
    #[arg(long, default_value_t = 10)]
    write_rate: u32,
    /// Watchers that keep opening a stream, reading it for 1–5 s and
    /// dropping it.
    #[arg(long, default_value_t = 8)]
    watchers: usize,
    /// Where the curve goes (CSV).
    #[arg(long)]
    out: PathBuf,
}

const TOKEN: &str = "soak-writer-token-0123456789";
/// Writers delete their oldest article beyond this many.
const KEEP_PER_WRITER: usize = 100;

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    watch_opens: AtomicU64,
    /// The first few failures, for the report.
    failures: Mutex<Vec<String>>,
}

impl Counters {
    fn record<T>(&self, what: &str, result: Result<T, tonic::Status>) -> Option<T> {
        match result {
            Ok(value) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            Err(status) => {
                self.fail(format!("{what}: {:?} {}", status.code(), status.message()));
                None
            }
        }
    }

    fn fail(&self, message: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < 20 {
            failures.push(message);
        }
    }
}

struct Sample {
    secs: u64,
    rss_kib: u64,
    fds: usize,
    ok: u64,
    failed: u64,
}

fn open_files(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count())
}

fn client(url: &str, protocol: Protocol) -> anyhow::Result<ArticleClient> {
    let mut config = ClientConfig::new(url);
    config.protocol = protocol;
    config.token = Some(TOKEN.into());
    // Longer than any watch is kept open, so no stream meets its deadline.
    config.timeout = Duration::from_secs(30);
    ArticleClient::new(&config)
}

async fn reader(client: ArticleClient, rate: u32, stop: Arc<AtomicBool>, counters: Arc<Counters>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut newest = 1;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (list, page, id) = {
            let mut rng = rand::rng();
            (
                rng.random_bool(0.5),
                rng.random_range(1..=3),
                rng.random_range(1..=newest),
            )
        };
        if list {
            let request = pb::ListArticlesRequest {
                page,
                page_size: 20,
                query: if page == 3 {
                    "soak".into()
                } else {
                    String::new()
                },
                tag: String::new(),
            };
            if let Some(response) =
                counters.record("ListArticles", client.any().list_articles(request).await)
                && let Some(first) = response.into_inner().articles.first()
            {
                newest = newest.max(first.id);
            }
        } else {
            match client.any().get_article(pb::GetArticleRequest { id }).await {
                // Deleted by a writer meanwhile: an answer, not a failure.
                Err(status) if status.code() == Code::NotFound => {
                    counters.ok.fetch_add(1, Ordering::Relaxed);
                }
                result => {
                    counters.record("GetArticle", result);
                }
            }
        }
    }
}

async fn writer(
    client: ArticleClient,
    name: &str,
    rate: u32,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mine = std::collections::VecDeque::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let content = format!("soak body {n} ").repeat(rand::rng().random_range(1..200));
        if n.is_multiple_of(5)
            && let Some(&id) = mine.back()
        {
            let request = pb::UpdateArticleRequest {
                id,
                title: format!("{name} soak {n} (edited)"),
                content,
                tags: vec!["soak".into(), "edited".into()],
                expected_version: 0,
            };
            counters.record("UpdateArticle", client.any().update_article(request).await);
            continue;
        }
        let request = pb::CreateArticleRequest {
            title: format!("{name} soak {n}"),
            content,
            tags: vec!["soak".into()],
        };
        if let Some(response) =
            counters.record("CreateArticle", client.any().create_article(request).await)
            && let Some(article) = response.into_inner().article
        {
            mine.push_back(article.id);
        }
        if mine.len() > KEEP_PER_WRITER
            && let Some(id) = mine.pop_front()
        {
            counters.record(
                "DeleteArticle",
                client
                    .any()
                    .delete_article(pb::DeleteArticleRequest { id })
                    .await,
            );
        }
    }
}

async fn watcher(client: ArticleClient, stop: Arc<AtomicBool>, counters: Arc<Counters>) {
    while !stop.load(Ordering::Relaxed) {
        let keep = Duration::from_millis(rand::rng().random_range(1000..5000));
        let request = pb::WatchArticlesRequest::default();
        let Some(response) = counters.record(
            "WatchArticles (open)",
            client.any().watch_articles(request).await,
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        counters.watch_opens.fetch_add(1, Ordering::Relaxed);
        let mut stream = response.into_inner();
        let until = tokio::time::Instant::now() + keep;
        loop {
            match tokio::time::timeout_at(until, stream.message()).await {
                // Kept long enough: drop the stream (the client cancels it).
                Err(_) => break,
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => {
                    counters.fail("WatchArticles ended by the server".into());
                    break;
                }
                Ok(Err(status)) => {
                    counters.fail(format!(
                        "WatchArticles: {:?} {}",
                        status.code(),
                        status.message()
                    ));
                    break;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("soak.db");
    let mut command = article_bench::process::command(&args.server_bin, None);
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--demo-data",
            "--watch-heartbeat-secs",
            "2",
        ])
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(["--token", &format!("soak={TOKEN}")]);
    let server = Server::start("article-server", command, &dir.path().join("server.log")).await?;
    let url = format!("http://{}", server.addr);
    println!(
        "soak: {} for {} min ({} min warm-up), pid {}",
        url, args.minutes, args.warmup_minutes, server.pid
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    // All clients run in this task (tonic's boxed transport futures are not
    // `Send` for `tokio::spawn`), which also keeps the load on one core and
    // leaves the other to the server.
    let mut load: Vec<Pin<Box<dyn Future<Output = ()>>>> = Vec::new();
    for protocol in [Protocol::Grpc, Protocol::GrpcWeb] {
        for _ in 0..2 {
            load.push(Box::pin(reader(
                client(&url, protocol)?,
                args.read_rate,
                stop.clone(),
                counters.clone(),
            )));
        }
    }
    for (name, protocol) in [("grpc", Protocol::Grpc), ("web", Protocol::GrpcWeb)] {
        load.push(Box::pin(writer(
            client(&url, protocol)?,
            name,
            args.write_rate,
            stop.clone(),
            counters.clone(),
        )));
    }
    for i in 0..args.watchers {
        let protocol = if i % 2 == 0 {
            Protocol::Grpc
        } else {
            Protocol::GrpcWeb
        };
        load.push(Box::pin(watcher(
            client(&url, protocol)?,
            stop.clone(),
            counters.clone(),
        )));
    }

    let started = Instant::now();
    let total = Duration::from_secs(args.minutes * 60);
    let sampling = async {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(args.sample_secs));
        loop {
            tick.tick().await;
            let reading = procfs::read(server.pid)?;
            samples.push(Sample {
                secs: started.elapsed().as_secs(),
                rss_kib: reading.rss_kib,
                fds: open_files(server.pid)?,
                ok: counters.ok.load(Ordering::Relaxed),
                failed: counters.failed.load(Ordering::Relaxed),
            });
            if started.elapsed() >= total {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        anyhow::Ok(samples)
    };
    let ((), samples) = tokio::join!(futures::future::join_all(load).map(|_| ()), sampling);
    let samples = samples?;
    server.stop().await?;

    let mut csv = String::from("seconds,rss_kib,open_files,calls_ok,calls_failed\n");
    for s in &samples {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            s.secs, s.rss_kib, s.fds, s.ok, s.failed
        ));
    }
    std::fs::write(&args.out, csv).with_context(|| format!("writing {}", args.out.display()))?;

    let warm = args.warmup_minutes * 60;
    let judged: Vec<&Sample> = samples.iter().filter(|s| s.secs >= warm).collect();
    let (Some(first), Some(last)) = (judged.first(), judged.last()) else {
        anyhow::bail!("the run ended before the warm-up did: no samples to judge");
    };
    let peak = judged.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let growth = |to: u64| (to as f64 - first.rss_kib as f64) / first.rss_kib as f64 * 100.0;
    let (fd_min, fd_max) = (
        judged.iter().map(|s| s.fds).min().unwrap_or(0),
        judged.iter().map(|s| s.fds).max().unwrap_or(0),
    );
    let failed = counters.failed.load(Ordering::Relaxed);
    let ok = counters.ok.load(Ordering::Relaxed);
    let mib = |kib: u64| kib as f64 / 1024.0;

    println!(
        "\n## Soak: {} minutes, {} judged after a {}-minute warm-up\n",
        args.minutes,
        args.minutes - args.warmup_minutes,
        args.warmup_minutes
    );
    println!("| minute | RSS MiB | open files | calls ok | calls failed |");
    println!("|---:|---:|---:|---:|---:|");
    let mut next_minute = 0;
    for s in &samples {
        if s.secs >= next_minute * 60 || std::ptr::eq(s, samples.last().expect("samples")) {
            println!(
                "| {} | {:.1} | {} | {} | {} |",
                s.secs / 60,
                mib(s.rss_kib),
                s.fds,
                s.ok,
                s.failed
            );
            next_minute = s.secs / 60 + 1;
        }
    }
    println!();
    println!(
        "- RSS after the warm-up {:.1} MiB, at the end {:.1} MiB ({:+.1} %), peak {:.1} MiB ({:+.1} %): {}",
        mib(first.rss_kib),
        mib(last.rss_kib),
        growth(last.rss_kib),
        mib(peak),
        growth(peak),
        if growth(last.rss_kib) < 5.0 {
            "< 5 %, met"
        } else {
            "NOT met (target < 5 %)"
        }
    );
    println!(
        "- open files after the warm-up: {} to {} (at the end {}): {}",
        fd_min,
        fd_max,
        last.fds,
        if fd_max - fd_min <= 2 * args.watchers + 8 {
            "stable (within the watchers' churn), met"
        } else {
            "NOT stable"
        }
    );
    println!(
        "- calls: {ok} answered, {failed} failed, {} watch streams opened and dropped: {}",
        counters.watch_opens.load(Ordering::Relaxed),
        if failed == 0 {
            "zero failures, met"
        } else {
            "failures, NOT met"
        }
    );
    for failure in counters
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        println!("  - {failure}");
    }
    println!("- curve: {}", args.out.display());
    Ok(())
}
