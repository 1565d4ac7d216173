//! `watch-fanout`: opens N `WatchArticles` streams against a running
//! article server, or spread round-robin over several (`--url A,B,C`, the
//! replicas of one database; the commits go to `--write-url`, by default
//! the first) — native gRPC over HTTP/2 (`--streams-per-connection`
//! per connection: many to model one multiplexing client, 1 to model many
//! separate clients), or gRPC-web with one HTTP/1.1 connection per
//! stream — holds them open,
//! reads the server's RSS before and after, then commits one article per
//! round and timestamps its arrival on every stream. Prints one JSON
//! object on stdout.
//!
//! The clock starts just before the CreateArticle call, so the figures
//! include the commit (SQLite, `synchronous=FULL`); the create latency is
//! reported beside them. The streams are read in this process, which
//! shares the machine with the server.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use article_bench::{
    grpc::{TRAILER_FLAG, WATCH_PATH, frame, take_frames},
    procfs,
};
use bytes::BytesMut;
use clap::{Parser, ValueEnum};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use proto::v1::{
    self as pb, ArticleEvent, article_event::Event, article_service_client::ArticleServiceClient,
};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Transport {
    /// Native gRPC, streams multiplexed over HTTP/2 (h2c) connections.
    H2,
    /// gRPC-web over HTTP/1.1, one connection per stream.
    H1,
}

#[derive(Parser)]
#[command(about = "Holds N WatchArticles streams open and times one commit's fan-out.")]
struct Args {
    /// The article server, e.g. http://127.0.0.1:8080; several
    /// (comma-separated) share the streams round-robin.
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    /// Where the commits go (default: the first --url).
    #[arg(long)]
    write_url: Option<String>,
    /// The servers' process ids, for RSS readings (summed).
    #[arg(long, value_delimiter = ',', required = true)]
    server_pid: Vec<u32>,
    #[arg(long)]
    streams: usize,
    #[arg(long, value_enum)]
    transport: Transport,
    /// HTTP/2 only: streams per connection (the server allows 200).
    #[arg(long, default_value_t = 100)]
    streams_per_connection: usize,
    /// A write token of the server (for the commits).
    #[arg(long, env = "ARTICLE_TOKEN", hide_env_values = true)]
    token: String,
    /// Commits to time, one after another.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Streams being opened at the same time.
    #[arg(long, default_value_t = 200)]
    open_concurrency: usize,
}

enum Note {
    Opened,
    /// A Created event read on a stream to the `usize`-th --url.
    Arrived(Instant, usize),
    Failed(String),
}

#[derive(Serialize)]
struct Report {
    transport: Transport,
    streams: usize,
    connections: usize,
    nofile_limit: u64,
    open_secs: f64,
    rss_before_mib: f64,
    rss_open_mib: f64,
    rss_per_stream_kib: f64,
    rounds: usize,
    create_ms: Vec<f64>,
    fanout_p50_ms: f64,
    fanout_p99_ms: f64,
    fanout_max_ms: f64,
    delivered: usize,
    failed_streams: usize,
    /// Per --url: its streams' fan-out (one entry per server).
    targets: Vec<Target>,
}

#[derive(Serialize)]
struct Target {
    url: String,
    streams: usize,
    fanout_p50_ms: f64,
    fanout_p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn h2_stream(
    channel: Channel,
    target: usize,
    open: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Note>,
) {
    let mut client = ArticleServiceClient::new(channel);
    let permit = open.acquire_owned().await;
    let response = client
        .watch_articles(pb::WatchArticlesRequest::default())
        .await;
    drop(permit);
    let mut stream = match response {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let _ = tx.send(Note::Failed(status.to_string()));
            return;
        }
    };
    let _ = tx.send(Note::Opened);
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                if matches!(event.event, Some(Event::Created(_))) {
                    let _ = tx.send(Note::Arrived(Instant::now(), target));
                }
            }
            Ok(None) => {
                let _ = tx.send(Note::Failed("stream ended".into()));
                return;
            }
            Err(status) => {
                let _ = tx.send(Note::Failed(status.to_string()));
                return;
            }
        }
    }
}

async fn h1_stream(
    addr: SocketAddr,
    target: usize,
    open: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Note>,
) {
    if let Err(err) = h1_stream_inner(addr, target, open, &tx).await {
        let _ = tx.send(Note::Failed(format!("{err:#}")));
    }
}

async fn h1_stream_inner(
    addr: SocketAddr,
    target: usize,
    open: Arc<Semaphore>,
    tx: &mpsc::UnboundedSender<Note>,
) -> anyhow::Result<()> {
    let permit = open.acquire_owned().await?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = Request::post(format!("http://{addr}{WATCH_PATH}"))
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(frame(&pb::WatchArticlesRequest::default())))?;
    let response = sender.send_request(req).await?;
    drop(permit);
    if response.status() != StatusCode::OK || response.headers().contains_key("grpc-status") {
        bail!(
            "WatchArticles answered HTTP {} grpc-status {:?}",
            response.status(),
            response.headers().get("grpc-status")
        );
    }
    let _ = tx.send(Note::Opened);
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        for (flag, payload) in take_frames(&mut buf) {
            if flag & TRAILER_FLAG != 0 {
                bail!("stream ended: {}", String::from_utf8_lossy(&payload).trim());
            }
            let event = ArticleEvent::decode(payload)?;
            if matches!(event.event, Some(Event::Created(_))) {
                let _ = tx.send(Note::Arrived(Instant::now(), target));
            }
        }
    }
    drop(sender);
    bail!("stream ended without trailers")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Each HTTP/1.1 stream is a socket here and one in the server (which
    // inherits the limit when started by article-bench).
    let nofile_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if args.transport == Transport::H1 && (nofile_limit as usize) < args.streams + 64 {
        bail!(
            "{} HTTP/1.1 streams need more open files than the limit of {nofile_limit}; raise `ulimit -n`",
            args.streams
        );
    }
    let addrs = args
        .url
        .iter()
        .map(|url| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .parse::<SocketAddr>()
                .with_context(|| format!("--url {url}: give http://IP:PORT"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let targets = addrs.len();
    let rss = |pids: &[u32]| -> anyhow::Result<u64> {
        pids.iter()
            .map(|&pid| procfs::read(pid).map(|r| r.rss_kib))
            .sum()
    };

    let before = rss(&args.server_pid)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let open = Arc::new(Semaphore::new(args.open_concurrency));
    let started = Instant::now();
    let connections = match args.transport {
        Transport::H2 => {
            // Per server: its share of the streams, on connections of its own.
            let per_connection = args.streams_per_connection.max(1);
            let mut channels = Vec::with_capacity(targets);
            for (t, url) in args.url.iter().enumerate() {
                let share = args.streams / targets + usize::from(t < args.streams % targets);
                let mut of_target = Vec::new();
                for _ in 0..share.div_ceil(per_connection).max(1) {
                    of_target.push(Endpoint::from_shared(url.clone())?.connect().await?);
                }
                channels.push(of_target);
            }
            for i in 0..args.streams {
                let (t, k) = (i % targets, i / targets);
                let of_target = &channels[t];
                let channel = of_target[k % of_target.len()].clone();
                tokio::spawn(h2_stream(channel, t, open.clone(), tx.clone()));
            }
            channels.iter().map(Vec::len).sum()
        }
        Transport::H1 => {
            for i in 0..args.streams {
                let t = i % targets;
                tokio::spawn(h1_stream(addrs[t], t, open.clone(), tx.clone()));
            }
            args.streams
        }
    };
    drop(tx);

    let mut opened = 0;
    let mut failed = Vec::new();
    while opened + failed.len() < args.streams {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
            Ok(Some(Note::Opened)) => opened += 1,
            Ok(Some(Note::Failed(why))) => failed.push(why),
            Ok(Some(Note::Arrived(..))) => {}
            Ok(None) => break,
            Err(_) => bail!("only {opened} of {} streams opened in 120 s", args.streams),
        }
    }
    if let Some(why) = failed.first() {
        bail!(
            "{} of {} streams failed to open, e.g.: {why}",
            failed.len(),
            args.streams
        );
    }
    let open_secs = started.elapsed().as_secs_f64();
    let after = rss(&args.server_pid)?;

    let write_url = args
        .write_url
        .clone()
        .unwrap_or_else(|| args.url[0].clone());
    let mut writer = ArticleServiceClient::connect(write_url).await?;
    let mut latencies = Vec::with_capacity(args.streams * args.rounds);
    let mut by_target = vec![Vec::new(); targets];
    let mut create_ms = Vec::new();
    let mut failed_streams = 0;
    for round in 0..args.rounds {
        let mut request = tonic::Request::new(pb::CreateArticleRequest {
            title: format!("Fan-out round {round}"),
            content: "One commit, every watcher.".into(),
            tags: vec!["performance".into()],
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", args.token).parse()?);
        let t0 = Instant::now();
        writer.create_article(request).await?;
        create_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let mut arrived = 0;
        while arrived + failed_streams < args.streams {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(Note::Arrived(at, target))) => {
                    arrived += 1;
                    let ms = at.duration_since(t0).as_secs_f64() * 1e3;
                    latencies.push(ms);
                    by_target[target].push(ms);
                }
                Ok(Some(Note::Failed(_))) => failed_streams += 1,
                Ok(Some(Note::Opened)) => {}
                Ok(None) => break,
                Err(_) => bail!(
                    "round {round}: only {arrived} of {} watchers got the change in 60 s",
                    args.streams
                ),
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let targets = args
        .url
        .iter()
        .zip(&mut by_target)
        .enumerate()
        .map(|(t, (url, ms))| {
            ms.sort_by(f64::total_cmp);
            Target {
                url: url.clone(),
                streams: args.streams / targets + usize::from(t < args.streams % targets),
                fanout_p50_ms: percentile(ms, 50.0),
                fanout_p99_ms: percentile(ms, 99.0),
            }
        })
        .collect();
    let report = Report {
        transport: args.transport,
        streams: args.streams,
        connections,
        nofile_limit,
        open_secs,
        rss_before_mib: before as f64 / 1024.0,
        rss_open_mib: after as f64 / 1024.0,
        rss_per_stream_kib: (after as f64 - before as f64) / args.streams as f64,
        rounds: args.rounds,
        create_ms,
        fanout_p50_ms: percentile(&latencies, 50.0),
        fanout_p99_ms: percentile(&latencies, 99.0),
        fanout_max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        delivered: latencies.len(),
        failed_streams,
        targets,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
