//! The load generators: `oha` for HTTP/1.1 (gRPC-web and the JSON
//! gateway) and for a cross-check over h2c, `h2load` for native gRPC over
//! h2c (and, in the peers part, for gRPC-web over HTTP/1.1 too). Each run is preceded by a short warm-up run of the same load, and
//! the server's RSS and CPU are sampled from `/proc` during the measured
//! run only.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use article_bench::{process, procfs};
use serde::Serialize;
use tokio::process::Command;

/// The same for every run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// CPUs for the load generator (`taskset -c`), if pinned.
    pub cpus: Option<String>,
    /// Threads the load generator may use (one per CPU it has).
    pub threads: usize,
    pub oha: PathBuf,
    pub h2load: PathBuf,
    /// The pre-encoded, framed ListArticles request.
    pub body_file: PathBuf,
}

/// One kind of load.
#[derive(Clone, Debug)]
pub enum Load {
    /// oha, HTTP/1.1, POST of the framed request as gRPC-web (binary).
    OhaGrpcWeb { url: String },
    /// oha, h2c (prior knowledge), POST of the framed request as gRPC.
    OhaGrpcH2 { url: String },
    /// oha, HTTP/1.1, GET (the JSON gateway).
    OhaGet { url: String },
    /// h2load, h2c, POST of the framed request as gRPC.
    H2load { url: String },
    /// h2load, HTTP/1.1 (`--h1`), POST of the framed request as gRPC-web
    /// (binary): the peers part measures both protocols with one tool.
    H2loadGrpcWeb { url: String },
}

impl Load {
    pub fn tool(&self) -> &'static str {
        match self {
            Load::OhaGrpcWeb { .. } | Load::OhaGet { .. } => "oha, HTTP/1.1",
            Load::OhaGrpcH2 { .. } => "oha, h2c",
            Load::H2load { .. } => "h2load, h2c",
            Load::H2loadGrpcWeb { .. } => "h2load, HTTP/1.1",
        }
    }
}

/// What one measured run gave.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Requests that failed or were not 2xx (deadline aborts excluded).
    pub failed: u64,
    pub server: procfs::Usage,
}

impl std::fmt::Display for LoadResult {
    /// The one-line progress summary the parts print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failed, server {:.2} cores, {:.1} MiB",
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.failed,
            self.server.cpu_cores,
            self.server.peak_rss_mib
        )
    }
}

/// Warm-up, then the measured run with the servers `pids` sampled.
pub async fn run(
    cfg: &LoadConfig,
    load: &Load,
    pids: &[u32],
    log_dir: &Path,
    name: &str,
) -> anyhow::Result<LoadResult> {
    if !cfg.warmup.is_zero() {
        once(
            cfg,
            load,
            cfg.warmup,
            &log_dir.join(format!("{name}.warmup")),
        )
        .await
        .with_context(|| format!("{name}: warm-up"))?;
    }
    let sampler = procfs::Sampler::start(pids.to_vec())?;
    let result = once(cfg, load, cfg.duration, &log_dir.join(name)).await;
    let usage = sampler.stop()?;
    let mut result = result.with_context(|| format!("{name}: measured run"))?;
    result.server = usage;
    Ok(result)
}

async fn once(
    cfg: &LoadConfig,
    load: &Load,
    duration: Duration,
    log: &Path,
) -> anyhow::Result<LoadResult> {
    let secs = duration.as_secs_f64();
    let connections = cfg.connections.to_string();
    match load {
        Load::OhaGrpcWeb { url } | Load::OhaGrpcH2 { url } | Load::OhaGet { url } => {
            let mut cmd = process::command(&cfg.oha, cfg.cpus.as_deref());
            cmd.args(["--no-tui", "--output-format", "json"])
                .args(["-z", &format!("{secs}s"), "-c", &connections])
                .args(["--worker-threads", &cfg.threads.to_string()]);
            match load {
                Load::OhaGrpcWeb { .. } => {
                    cmd.args(["-m", "POST", "-D"])
                        .arg(&cfg.body_file)
                        .args(["-H", "content-type: application/grpc-web+proto"])
                        .args(["-H", "x-grpc-web: 1"]);
                }
                Load::OhaGrpcH2 { .. } => {
                    cmd.args(["--http2", "-m", "POST", "-D"])
                        .arg(&cfg.body_file)
                        .args(["-H", "content-type: application/grpc"])
                        .args(["-H", "te: trailers"]);
                }
                _ => {}
            }
            cmd.arg(url);
            let out = output(cmd, log).await?;
            parse_oha(&out)
        }
        Load::H2load { url } | Load::H2loadGrpcWeb { url } => {
            let requests_log = log.with_extension("requests.tsv");
            let mut cmd = process::command(&cfg.h2load, cfg.cpus.as_deref());
            cmd.args(["-D", &format!("{}", secs.ceil() as u64)])
                .args(["-c", &connections, "-m", "1"])
                .args(["-t", &cfg.threads.min(cfg.connections).to_string()])
                .arg("-d")
                .arg(&cfg.body_file);
            if let Load::H2loadGrpcWeb { .. } = load {
                cmd.arg("--h1")
                    .args(["-H", "content-type: application/grpc-web+proto"])
                    .args(["-H", "x-grpc-web: 1"]);
            } else {
                cmd.args(["-H", "content-type: application/grpc"])
                    .args(["-H", "te: trailers"]);
            }
            cmd.arg(format!("--log-file={}", requests_log.display()))
                .arg(url);
            let out = output(cmd, log).await?;
            parse_h2load(&out, &std::fs::read_to_string(&requests_log)?)
        }
    }
}

/// Runs a load generator, keeps its output in `log`, returns stdout.
async fn output(mut cmd: Command, log: &Path) -> anyhow::Result<String> {
    let shown = format!("{:?}", cmd.as_std());
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {shown}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(
        log.with_extension("out"),
        format!("{shown}\n\n{stdout}\n{stderr}"),
    )?;
    if !out.status.success() {
        bail!("{shown} failed ({}):\n{stderr}", out.status);
    }
    Ok(stdout)
}

fn parse_oha(json: &str) -> anyhow::Result<LoadResult> {
    let v: serde_json::Value = serde_json::from_str(json).context("oha printed no JSON")?;
    let num = |ptr: &str| -> anyhow::Result<f64> {
        v.pointer(ptr)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("oha JSON has no {ptr}"))
    };
    let mut ok = 0u64;
    let mut not_ok = 0u64;
    if let Some(codes) = v
        .pointer("/statusCodeDistribution")
        .and_then(|c| c.as_object())
    {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                not_ok += n;
            }
        }
    }
    let errors: u64 = v
        .pointer("/errorDistribution")
        .and_then(|e| e.as_object())
        .map(|e| {
            e.iter()
                .filter(|(why, _)| !why.contains("deadline"))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0);
    let total_secs = num("/summary/total")?;
    Ok(LoadResult {
        // Completed 2xx answers per second of the run.
        rps: ok as f64 / total_secs,
        p50_ms: num("/metrics/latency_ms/p50")?,
        p99_ms: num("/metrics/latency_ms/p99")?,
        requests: ok,
        failed: not_ok + errors,
        server: procfs::Usage::default(),
    })
}

fn parse_h2load(stdout: &str, requests_log: &str) -> anyhow::Result<LoadResult> {
    // "finished in 10.00s, 12345.60 req/s, 1.23MB/s"
    // "requests: N total, N started, N done, N succeeded, F failed, E errored, T timeout"
    let finished = stdout
        .lines()
        .find(|l| l.starts_with("finished in"))
        .context("h2load printed no `finished in` line")?;
    let rps: f64 = finished
        .split(',')
        .nth(1)
        .and_then(|s| s.trim().strip_suffix(" req/s"))
        .and_then(|s| s.trim().parse().ok())
        .context("cannot read req/s from h2load")?;
    let requests = stdout
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("h2load printed no `requests:` line")?;
    let count = |what: &str| -> u64 {
        requests
            .trim_start_matches("requests:")
            .split(',')
            .find_map(|part| part.trim().strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let succeeded = count("succeeded");
    let failed = count("failed") + count("errored") + count("timeout");
    // Per request: start (µs since epoch), HTTP status, duration (µs).
    let mut latencies: Vec<f64> = requests_log
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let status: u16 = cols.nth(1)?.trim().parse().ok()?;
            let micros: f64 = cols.next()?.trim().parse().ok()?;
            (200..300).contains(&status).then_some(micros / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * latencies.len() as f64) as usize;
        latencies[i.min(latencies.len() - 1)]
    };
    Ok(LoadResult {
        rps,
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        requests: succeeded,
        failed,
        server: procfs::Usage::default(),
    })
}
