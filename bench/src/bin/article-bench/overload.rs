//! The overload part (`--only overload`): what the server does with more
//! calls than it can handle.
//!
//! The call is a search (`ListArticles { query }` that matches nothing:
//! a scan of every article, the list cache off), expensive enough that one
//! core of the load generator can offer several times what one core of
//! the server handles. First a closed loop (64 calls in flight) finds the
//! saturating rate; then an open loop offers 1×, 2× and 5× that rate over
//! native gRPC (h2c, 16 connections): each call is sent at its scheduled
//! time whatever the earlier ones do, and timed from then, so queueing
//! anywhere shows in the latency. Reported per run: p50/p99 of the
//! admitted (OK) calls, how many were refused (UNAVAILABLE or
//! RESOURCE_EXHAUSTED) and how fast, other failures, and the server's
//! peak RSS. The same runs without the limit (`--max-concurrent-calls 0`)
//! show what the limit prevents.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use article_bench::{grpc, procfs};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;

use crate::{Ctx, step};

const CONNECTIONS: usize = 16;
const CLOSED_LOOP_IN_FLIGHT: usize = 64;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One open-loop run.
#[derive(Clone, Debug, Serialize)]
pub struct OverloadRun {
    pub limit: &'static str,
    pub multiple: f64,
    pub offered_rps: f64,
    pub admitted: u64,
    pub admitted_rps: f64,
    pub admitted_p50_ms: f64,
    pub admitted_p99_ms: f64,
    pub refused: u64,
    pub refused_p99_ms: f64,
    pub failed: u64,
    pub peak_rss_mib: f64,
}

/// The whole part.
#[derive(Clone, Debug, Serialize)]
pub struct OverloadResults {
    pub saturating_rps: f64,
    pub runs: Vec<OverloadRun>,
}

#[derive(Default)]
struct Tally {
    ok_ms: Vec<f64>,
    refused_ms: Vec<f64>,
    failed: u64,
}

fn search_body() -> Bytes {
    grpc::frame(&proto::v1::ListArticlesRequest {
        page_size: 20,
        query: "no article says this".into(),
        ..Default::default()
    })
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Vec<SendRequest<Full<Bytes>>>> {
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    Ok(senders)
}

/// One call; its gRPC status (None: a transport failure or timeout).
async fn call(mut sender: SendRequest<Full<Bytes>>, addr: SocketAddr, body: Bytes) -> Option<i32> {
    let request = Request::post(format!("http://{addr}{}", grpc::LIST_PATH))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(Full::new(body))
        .ok()?;
    let exchange = async {
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.ok()?;
        let parse = |map: &http::HeaderMap| -> Option<i32> {
            map.get("grpc-status")?.to_str().ok()?.parse().ok()
        };
        collected
            .trailers()
            .and_then(parse)
            .or_else(|| parse(&parts.headers))
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange).await.ok()?
}

fn record(tally: &Mutex<Tally>, status: Option<i32>, ms: f64) {
    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    match status {
        Some(0) => tally.ok_ms.push(ms),
        // UNAVAILABLE, RESOURCE_EXHAUSTED: refused, for the client to retry.
        Some(14 | 8) => tally.refused_ms.push(ms),
        _ => tally.failed += 1,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Calls per second with `CLOSED_LOOP_IN_FLIGHT` calls always in flight.
async fn saturating_rate(addr: SocketAddr, duration: Duration) -> anyhow::Result<f64> {
    let senders = connect(addr).await?;
    let body = search_body();
    let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let end = Instant::now() + duration;
    let mut workers = Vec::new();
    for i in 0..CLOSED_LOOP_IN_FLIGHT {
        let (sender, body, ok) = (senders[i % CONNECTIONS].clone(), body.clone(), ok.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                if call(sender.clone(), addr, body.clone()).await == Some(0) {
                    ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    for worker in workers {
        worker.await?;
    }
    Ok(ok.load(std::sync::atomic::Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Offers `rps` calls per second for `duration`, open loop.
async fn open_loop(
    addr: SocketAddr,
    pid: u32,
    rps: f64,
    duration: Duration,
) -> anyhow::Result<(Tally, procfs::Usage)> {
    let senders = connect(addr).await?;
    let body = search_body();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sampler = procfs::Sampler::start(vec![pid])?;
    let started = tokio::time::Instant::now();
    let total = (rps * duration.as_secs_f64()) as u64;
    let mut calls = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rps);
        tokio::time::sleep_until(due).await;
        let (sender, body, tally) = (
            senders[n as usize % CONNECTIONS].clone(),
            body.clone(),
            tally.clone(),
        );
        calls.push(tokio::spawn(async move {
            let status = call(sender, addr, body).await;
            record(&tally, status, due.elapsed().as_secs_f64() * 1000.0);
        }));
    }
    for call in calls {
        call.await?;
    }
    let usage = sampler.stop()?;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((tally, usage))
}

pub async fn run(ctx: &Ctx, duration: Duration) -> anyhow::Result<OverloadResults> {
    step("overload: the saturating rate of a search (closed loop, 64 in flight)");
    let server = ctx
        .article_server_with("overload-probe", &["--list-cache-mib", "0"])
        .await?;
    let saturating = saturating_rate(server.addr, duration.min(Duration::from_secs(5)))
        .await
        .context("finding the saturating rate")?;
    server.stop().await?;
    println!("    saturating rate: {saturating:.0} calls/s");

    let mut runs = Vec::new();
    for (limit, flags) in [
        ("default (256 per core)", &["--list-cache-mib", "0"][..]),
        (
            "off (0)",
            &["--list-cache-mib", "0", "--max-concurrent-calls", "0"][..],
        ),
    ] {
        for multiple in [1.0, 2.0, 5.0] {
            let rps = saturating * multiple;
            step(&format!(
                "overload: {multiple}× = {rps:.0} calls/s, limit {limit}"
            ));
            let server = ctx.article_server_with("overload", flags).await?;
            let (tally, usage) = open_loop(server.addr, server.pid, rps, duration).await?;
            server.stop().await?;
            let mut ok = tally.ok_ms;
            ok.sort_by(f64::total_cmp);
            let mut refused = tally.refused_ms;
            refused.sort_by(f64::total_cmp);
            let run = OverloadRun {
                limit,
                multiple,
                offered_rps: rps,
                admitted: ok.len() as u64,
                admitted_rps: ok.len() as f64 / duration.as_secs_f64(),
                admitted_p50_ms: percentile(&ok, 0.50),
                admitted_p99_ms: percentile(&ok, 0.99),
                refused: refused.len() as u64,
                refused_p99_ms: percentile(&refused, 0.99),
                failed: tally.failed,
                peak_rss_mib: usage.peak_rss_mib,
            };
            println!(
                "    admitted {} ({:.0}/s) p50 {:.1} ms p99 {:.1} ms; refused {} (p99 {:.1} ms); \
                 failed/timed out {}; peak RSS {:.1} MiB",
                run.admitted,
                run.admitted_rps,
                run.admitted_p50_ms,
                run.admitted_p99_ms,
                run.refused,
                run.refused_p99_ms,
                run.failed,
                run.peak_rss_mib
            );
            runs.push(run);
        }
    }
    Ok(OverloadResults {
        saturating_rps: saturating,
        runs,
    })
}
