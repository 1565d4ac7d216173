//! `write-load`: N concurrent writers calling CreateArticle (a small
//! article) on a running article server for a fixed time, each waiting
//! for its acknowledgement before the next call, each on an HTTP/2
//! connection of its own (native gRPC, h2c). Prints one JSON object on
//! stdout: acknowledged writes per second and their latency.
//!
//! Only calls that start and end inside the measured window (after the
//! warm-up) count; a call still in flight when the window closes is
//! finished but not counted. A call answered with an error counts as
//! failed, never as acknowledged.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use serde::Serialize;
use tonic::transport::Endpoint;

#[derive(Parser)]
#[command(about = "N concurrent CreateArticle writers; acknowledged writes per second.")]
struct Args {
    /// The article server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// Concurrent writers (one call in flight each).
    #[arg(long)]
    writers: usize,
    /// Seconds measured.
    #[arg(long)]
    duration: f64,
    /// Seconds of the same load before the measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Bytes of content per article; 0 writes one short sentence. Larger
    /// articles cost the search index more (its trigrams), e.g. 1500 for a
    /// typical article.
    #[arg(long, default_value_t = 0)]
    content_bytes: usize,
    /// A write token of the server.
    #[arg(long, env = "ARTICLE_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Serialize)]
struct Report {
    writers: usize,
    seconds: f64,
    acked: usize,
    failed: usize,
    acked_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The first error seen, if any.
    first_error: Option<String>,
}

/// What one writer saw inside the window.
#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    failed: usize,
    first_error: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `bytes` of words picked by a small LCG seeded with `seed`, so each
/// article differs (as real ones do, for the search index) yet runs repeat.
fn content(bytes: usize, seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "article", "writer", "commit", "durable", "sqlite", "index", "search", "group", "fsync",
        "batch", "server", "client", "latency", "queue", "trigram", "answer",
    ];
    if bytes == 0 {
        return "A small article, written to time acknowledged writes.".into();
    }
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut text = String::with_capacity(bytes + 16);
    while text.len() < bytes {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(WORDS[(state >> 60) as usize]);
        text.push_str(if (state >> 20).is_multiple_of(7) {
            ". "
        } else {
            " "
        });
    }
    text.truncate(bytes);
    text
}

async fn writer(
    url: String,
    token: String,
    id: usize,
    content_bytes: usize,
    window: (Instant, Instant),
) -> anyhow::Result<Tally> {
    let channel = Endpoint::from_shared(url)?.connect().await?;
    let mut client = ArticleServiceClient::new(channel);
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let (start, end) = window;
    let mut tally = Tally::default();
    for n in 0.. {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let mut request = tonic::Request::new(pb::CreateArticleRequest {
            title: format!("Write {id}-{n}"),
            content: content(content_bytes, ((id as u64) << 32) | n),
            tags: vec!["bench".into()],
        });
        request.metadata_mut().insert("authorization", auth.clone());
        let answer = client.create_article(request).await;
        let t1 = Instant::now();
        if t0 < start || t1 > end {
            continue;
        }
        match answer {
            Ok(_) => tally
                .latencies_ms
                .push(t1.duration_since(t0).as_secs_f64() * 1e3),
            Err(status) => {
                tally.failed += 1;
                tally.first_error.get_or_insert_with(|| status.to_string());
            }
        }
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = start + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> = (0..args.writers)
        .map(|id| {
            tokio::spawn(writer(
                args.url.clone(),
                args.token.clone(),
                id,
                args.content_bytes,
                (start, end),
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        let tally = task.await.context("a writer panicked")??;
        latencies.extend(tally.latencies_ms);
        failed += tally.failed;
        first_error = first_error.or(tally.first_error);
    }
    latencies.sort_by(f64::total_cmp);
    let report = Report {
        writers: args.writers,
        seconds: args.duration,
        acked: latencies.len(),
        failed,
        acked_per_sec: latencies.len() as f64 / args.duration,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        first_error,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
