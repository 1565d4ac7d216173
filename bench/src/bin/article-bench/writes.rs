//! The writes part, only on request (`--only writes`): acknowledged
//! CreateArticle per second at 1, 8 and 64 concurrent writers on SQLite as
//! shipped (`synchronous=FULL`), small and typical (1.5 KB) articles.
//!
//! Every run is a fresh release `article-server` (default flags, the bench
//! token) on a fresh SQLite file in the work folder, loaded by
//! `write-load` (one HTTP/2 connection per writer, one call in flight each,
//! 0.5 s of warm-up, then the measured window); the server's CPU (user +
//! system ticks of all its threads, `/proc/<pid>/stat`) is read at the
//! start and the end of the measured window. Then the server is stopped
//! and its database deleted.
//!
//! Rounds alternate: within a round every size × writer count runs in
//! turn, so a machine loaded by other work weighs on every figure alike.
//! With `--writes-baseline-bin` each run is taken twice, the baseline
//! binary first and then the current one, same size and writer count, and
//! the report sets them side by side (current / baseline: the median over
//! rounds of each round's ratio).
//!
//! The target: at 64 writers, at least 5 × the rate of one writer
//! in the same run; measured as the median over rounds of each round's own
//! 64 / 1 ratio.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use article_bench::{process, procfs};
use serde::Serialize;
use tokio::process::Command;

use crate::{
    Ctx, TOKEN,
    cluster::{WriteRun, ms},
    step,
};

pub const BEGIN: &str =
    "<!-- bench:writes:begin (written by `cargo xtask bench -- --only writes`) -->";
pub const END: &str = "<!-- bench:writes:end -->";

/// The bar: 64 writers ≥ 5 × one writer.
const TARGET: f64 = 5.0;
const TARGET_HIGH: usize = 64;
const TARGET_LOW: usize = 1;

pub struct WritesConfig {
    pub quick: bool,
    pub rounds: usize,
    /// Each measured window.
    pub duration: Duration,
    /// `write-load`'s warm-up before the window, same server.
    pub warmup: Duration,
    pub writers: Vec<usize>,
    /// `write-load --content-bytes` of each size.
    pub sizes: Vec<usize>,
    /// Another `article-server` to measure side by side.
    pub baseline: Option<PathBuf>,
    /// The command that reproduces the run.
    pub command: String,
}

/// Which binary a run measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    Current,
    Baseline,
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct WriteSample {
    pub build: Build,
    pub content_bytes: usize,
    pub writers: usize,
    pub round: usize,
    pub seconds: f64,
    pub acked: usize,
    pub failed: usize,
    pub acked_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
    /// The server's CPU time (user + system, all threads) over the
    /// measured window.
    pub server_cpu_ms: f64,
    /// The database file with its WAL at the end of the run.
    pub db_bytes: u64,
}

/// One build, size and writer count over all rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub build: Build,
    pub content_bytes: usize,
    pub writers: usize,
    /// Medians of the rounds.
    pub acked_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// All rounds' server CPU over all their acknowledged writes.
    pub cpu_ms_per_write: f64,
    pub failed: usize,
    /// Current / baseline writes/s: the median of each round's ratio
    /// (current rows with a baseline only).
    pub vs_baseline: Option<f64>,
}

/// 64 writers against one, per build and size.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub build: Build,
    pub content_bytes: usize,
    /// Each round's own 64 / 1 ratio.
    pub round_ratios: Vec<f64>,
    /// Their median.
    pub ratio: f64,
    pub met: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct WritesResults {
    pub quick: bool,
    pub date: String,
    pub uptime_before: String,
    pub uptime_after: String,
    pub command: String,
    /// The servers' CPUs and write-load's, if pinned.
    pub pinning: Option<(String, String)>,
    pub rounds: usize,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub writers: Vec<usize>,
    pub sizes: Vec<usize>,
    pub current_bin: String,
    pub baseline_bin: Option<String>,
    pub runs: Vec<WriteSample>,
    pub summary: Vec<Summary>,
    pub targets: Vec<Target>,
}

async fn uptime() -> String {
    match Command::new("uptime").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(_) => std::fs::read_to_string("/proc/loadavg")
            .map(|l| format!("load average {}", l.trim()))
            .unwrap_or_else(|_| "?".into()),
    }
}

fn size_name(bytes: usize) -> String {
    match bytes {
        0 => "small article".to_owned(),
        n if n % 100 == 0 && n >= 1000 => format!("{} KB article", n as f64 / 1000.0),
        n => format!("{n}-byte article"),
    }
}

fn build_name(build: Build) -> &'static str {
    match build {
        Build::Current => "current",
        Build::Baseline => "baseline",
    }
}

pub async fn run(ctx: &Ctx, cfg: &WritesConfig) -> anyhow::Result<WritesResults> {
    let load = ctx
        .bins
        .join(format!("write-load{}", std::env::consts::EXE_SUFFIX));
    if !load.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release -p article-bench`)",
            load.display()
        );
    }
    if let Some(baseline) = &cfg.baseline
        && !baseline.is_file()
    {
        bail!("--writes-baseline-bin {} not found", baseline.display());
    }
    let uptime_before = uptime().await;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let dir = ctx.work.join("writes");
    std::fs::create_dir_all(&dir)?;
    let builds: Vec<(Build, &Path)> = cfg
        .baseline
        .iter()
        .map(|b| (Build::Baseline, b.as_path()))
        .chain([(Build::Current, ctx.server_bin.as_path())])
        .collect();

    let mut runs = Vec::new();
    for round in 1..=cfg.rounds {
        step(&format!("writes: round {round} of {}", cfg.rounds));
        for &bytes in &cfg.sizes {
            for &writers in &cfg.writers {
                for &(build, bin) in &builds {
                    let sample = one_run(ctx, cfg, &dir, build, bin, bytes, writers, round).await?;
                    println!(
                        "    {}, {writers} writer{}, {}: {:.0} writes/s, p50 {:.2} ms, p99 {:.2} ms, {:.3} server CPU ms/write, {} failed",
                        size_name(bytes),
                        if writers == 1 { "" } else { "s" },
                        build_name(build),
                        sample.acked_per_sec,
                        sample.p50_ms,
                        sample.p99_ms,
                        per_write(sample.server_cpu_ms, sample.acked),
                        sample.failed
                    );
                    runs.push(sample);
                }
            }
        }
    }
    let summary = summarize(cfg, &builds, &runs);
    let targets = targets(cfg, &builds, &runs);
    Ok(WritesResults {
        quick: cfg.quick,
        date,
        uptime_before,
        uptime_after: uptime().await,
        command: cfg.command.clone(),
        pinning: ctx.server_cpus.clone().zip(ctx.load.cpus.clone()),
        rounds: cfg.rounds,
        duration_secs: cfg.duration.as_secs_f64(),
        warmup_secs: cfg.warmup.as_secs_f64(),
        writers: cfg.writers.clone(),
        sizes: cfg.sizes.clone(),
        current_bin: ctx.server_bin.display().to_string(),
        baseline_bin: cfg.baseline.as_ref().map(|b| b.display().to_string()),
        runs,
        summary,
        targets,
    })
}

fn per_write(cpu_ms: f64, acked: usize) -> f64 {
    if acked == 0 {
        f64::NAN
    } else {
        cpu_ms / acked as f64
    }
}

/// The database file and its WAL and shared-memory files.
fn db_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_owned(), with("-wal"), with("-shm")]
}

/// A fresh server of `bin` on a fresh database, one `write-load` run,
/// the server stopped and the database deleted.
#[allow(clippy::too_many_arguments)]
async fn one_run(
    ctx: &Ctx,
    cfg: &WritesConfig,
    dir: &Path,
    build: Build,
    bin: &Path,
    bytes: usize,
    writers: usize,
    round: usize,
) -> anyhow::Result<WriteSample> {
    let name = format!("writes-{}-{bytes}b-{writers}w-r{round}", build_name(build));
    let db = dir.join(format!("{name}.db"));
    for file in db_files(&db) {
        let _ = std::fs::remove_file(file);
    }
    let database = format!("sqlite://{}", db.display());
    let server = ctx
        .article_server_bin(bin, &name, &database, &[], ctx.server_cpus.as_deref())
        .await?;
    let measured = measure(ctx, cfg, server.pid, server.addr, bytes, writers, &name).await;
    let db_bytes = db_files(&db)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let stopped = server.stop().await;
    for file in db_files(&db) {
        let _ = std::fs::remove_file(file);
    }
    let (line, server_cpu_ms) = measured?;
    stopped?;
    Ok(WriteSample {
        build,
        content_bytes: bytes,
        writers: line.writers,
        round,
        seconds: line.seconds,
        acked: line.acked,
        failed: line.failed,
        acked_per_sec: line.acked_per_sec,
        p50_ms: line.p50_ms,
        p99_ms: line.p99_ms,
        max_ms: line.max_ms,
        first_error: line.first_error,
        server_cpu_ms,
        db_bytes,
    })
}

/// `write-load` against the server; the server's CPU ticks are read when
/// `write-load`'s measured window opens and when it closes (by the clock:
/// its window starts `warmup` after it starts).
async fn measure(
    ctx: &Ctx,
    cfg: &WritesConfig,
    pid: u32,
    addr: std::net::SocketAddr,
    bytes: usize,
    writers: usize,
    name: &str,
) -> anyhow::Result<(WriteRun, f64)> {
    let mut cmd = process::command(ctx.bins.join("write-load"), ctx.load.cpus.as_deref());
    cmd.arg("--url")
        .arg(format!("http://{addr}"))
        .args(["--writers", &writers.to_string()])
        .args(["--duration", &cfg.duration.as_secs_f64().to_string()])
        .args(["--warmup", &cfg.warmup.as_secs_f64().to_string()])
        .args(["--content-bytes", &bytes.to_string()])
        .env("ARTICLE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{:?}", cmd.as_std());
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("running {shown}"))?;
    let ticks = || procfs::read(pid).map(|r| r.cpu_ticks);
    tokio::time::sleep_until((started + cfg.warmup).into()).await;
    let before = ticks()?;
    tokio::time::sleep_until((started + cfg.warmup + cfg.duration).into()).await;
    let after = ticks()?;
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("running {shown}"))?;
    std::fs::write(
        ctx.log(&format!("{name}-load")),
        [&out.stdout[..], &out.stderr[..]].concat(),
    )?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.trim().lines().last().unwrap_or_default();
    let line: WriteRun =
        serde_json::from_str(last).with_context(|| format!("write-load printed {last:?}"))?;
    let cpu_ms = after.saturating_sub(before) as f64 * 1e3 / procfs::clock_ticks() as f64;
    Ok((line, cpu_ms))
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    crate::browser::median(&v)
}

fn samples(
    runs: &[WriteSample],
    build: Build,
    bytes: usize,
    writers: usize,
) -> impl Iterator<Item = &WriteSample> + Clone {
    runs.iter()
        .filter(move |r| r.build == build && r.content_bytes == bytes && r.writers == writers)
}

/// `a / b` per round where both ran.
fn round_ratios<'a>(
    a: impl Iterator<Item = &'a WriteSample>,
    b: impl Iterator<Item = &'a WriteSample> + Clone,
) -> Vec<f64> {
    a.filter_map(|x| {
        let y = b.clone().find(|y| y.round == x.round)?;
        (y.acked_per_sec > 0.0).then(|| x.acked_per_sec / y.acked_per_sec)
    })
    .collect()
}

fn summarize(cfg: &WritesConfig, builds: &[(Build, &Path)], runs: &[WriteSample]) -> Vec<Summary> {
    let baseline = builds.iter().any(|(b, _)| *b == Build::Baseline);
    let mut out = Vec::new();
    for &bytes in &cfg.sizes {
        for &writers in &cfg.writers {
            for &(build, _) in builds {
                let these = samples(runs, build, bytes, writers);
                let acked: usize = these.clone().map(|r| r.acked).sum();
                let cpu: f64 = these.clone().map(|r| r.server_cpu_ms).sum();
                out.push(Summary {
                    build,
                    content_bytes: bytes,
                    writers,
                    acked_per_sec: median(these.clone().map(|r| r.acked_per_sec)),
                    p50_ms: median(these.clone().map(|r| r.p50_ms)),
                    p99_ms: median(these.clone().map(|r| r.p99_ms)),
                    cpu_ms_per_write: per_write(cpu, acked),
                    failed: these.clone().map(|r| r.failed).sum(),
                    vs_baseline: (baseline && build == Build::Current).then(|| {
                        median(round_ratios(
                            these.clone(),
                            samples(runs, Build::Baseline, bytes, writers),
                        ))
                    }),
                });
            }
        }
    }
    out
}

fn targets(cfg: &WritesConfig, builds: &[(Build, &Path)], runs: &[WriteSample]) -> Vec<Target> {
    let mut out = Vec::new();
    if !cfg.writers.contains(&TARGET_LOW) || !cfg.writers.contains(&TARGET_HIGH) {
        return out;
    }
    for &bytes in &cfg.sizes {
        for &(build, _) in builds.iter().rev() {
            let round_ratios = round_ratios(
                samples(runs, build, bytes, TARGET_HIGH),
                samples(runs, build, bytes, TARGET_LOW),
            );
            let ratio = median(round_ratios.iter().copied());
            out.push(Target {
                build,
                content_bytes: bytes,
                round_ratios,
                ratio,
                met: ratio >= TARGET,
            });
        }
    }
    out
}

fn cpu(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

fn rate(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.0}")
    }
}

fn ratio(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.2} ×")
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

impl WritesResults {
    /// The targets as plain lines for the terminal.
    pub fn targets_text(&self) -> String {
        self.targets
            .iter()
            .map(|t| {
                format!(
                    "  64 writers ≥ 5 × one writer, {} ({}): {} (rounds: {}) {}",
                    size_name(t.content_bytes),
                    build_name(t.build),
                    ratio(t.ratio),
                    t.round_ratios
                        .iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if t.met { "met" } else { "missed" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn render(commit: &str, r: &WritesResults) -> String {
    let baseline = r.baseline_bin.is_some();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Writes: acknowledged CreateArticle per second (SQLite, group commit)\n\n\
         _{} run of {} at commit `{}`. `uptime` before the part: `{}`; after: `{}`._\n",
        if r.quick { "A quick (smoke)" } else { "Full" },
        r.date,
        commit,
        r.uptime_before,
        r.uptime_after,
    );
    if r.quick {
        let _ = writeln!(s, "> Quick run: durations too short for conclusions.\n");
    }
    let _ = writeln!(s, "Reproduce: `{}`\n", r.command);
    let _ = writeln!(
        s,
        "Method: every run is a fresh release `article-server` as shipped (default flags, SQLite \
         with `synchronous=FULL`) on a fresh database file on disk, stopped and its file deleted \
         after the run. `write-load` runs N writers, each on an HTTP/2 connection of its own \
         with one CreateArticle in flight, {} s of warm-up and then {} s measured; only writes \
         acknowledged inside the window count. {} {}, each running every size × writer count in \
         turn{}, so the machine's load weighs on all alike; writes/s and p50 / p99 are medians \
         of the rounds, server CPU (user + system, all threads, `/proc/<pid>/stat` over the \
         measured window) is summed over the rounds and divided by their acknowledged writes.{}\n",
        r.warmup_secs,
        r.duration_secs,
        match &r.pinning {
            Some((servers, load)) =>
                format!("The server is pinned to CPU {servers}, `write-load` to CPU {load}."),
            None => "Nothing pinned.".to_owned(),
        },
        if r.rounds == 1 {
            "1 round".to_owned()
        } else {
            format!("{} rounds", r.rounds)
        },
        if baseline {
            " (the baseline binary, then the current one)"
        } else {
            ""
        },
        match &r.baseline_bin {
            Some(b) => format!(
                " Baseline: `{b}`; current: `{}`; current / baseline is the median over rounds \
                 of each round's ratio.",
                r.current_bin
            ),
            None => String::new(),
        }
    );
    for &bytes in &r.sizes {
        let _ = writeln!(
            s,
            "#### {} (`--content-bytes {bytes}`)\n",
            capitalize(&size_name(bytes))
        );
        if baseline {
            let _ = writeln!(
                s,
                "| writers | writes/s | p50 / p99 ms | server CPU ms per write | failed | baseline writes/s | baseline p50 / p99 ms | baseline CPU ms per write | current / baseline |\n\
                 |---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
        } else {
            let _ = writeln!(
                s,
                "| writers | writes/s | p50 / p99 ms | server CPU ms per write | failed |\n\
                 |---:|---:|---:|---:|---:|"
            );
        }
        for &writers in &r.writers {
            let row = |build: Build| {
                r.summary
                    .iter()
                    .find(|x| x.build == build && x.content_bytes == bytes && x.writers == writers)
            };
            let Some(current) = row(Build::Current) else {
                continue;
            };
            let _ = write!(
                s,
                "| {writers} | {} | {} / {} | {} | {} |",
                rate(current.acked_per_sec),
                ms(current.p50_ms),
                ms(current.p99_ms),
                cpu(current.cpu_ms_per_write),
                current.failed
            );
            if let Some(base) = row(Build::Baseline) {
                let _ = write!(
                    s,
                    " {} | {} / {} | {} | {} |",
                    rate(base.acked_per_sec),
                    ms(base.p50_ms),
                    ms(base.p99_ms),
                    cpu(base.cpu_ms_per_write),
                    ratio(current.vs_baseline.unwrap_or(f64::NAN))
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    if let Some(error) = r.runs.iter().find_map(|w| w.first_error.as_ref()) {
        let _ = writeln!(s, "First failed write: `{error}`.\n");
    }

    if !r.targets.is_empty() {
        let _ = writeln!(
            s,
            "| target | build | measured (median of rounds) | each round's 64 / 1 | |\n\
             |---|---|---:|---|---|"
        );
        for t in &r.targets {
            let _ = writeln!(
                s,
                "| 64 writers ≥ 5 × one writer, {} | {} | {} | {} | {} |",
                size_name(t.content_bytes),
                build_name(t.build),
                ratio(t.ratio),
                t.round_ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                verdict(t.met)
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(
        s,
        "Every round's writes/s{}:\n",
        if baseline {
            " (baseline → current)"
        } else {
            ""
        }
    );
    let _ = write!(s, "| round | article |");
    for &w in &r.writers {
        let _ = write!(s, " {w} writer{} |", if w == 1 { "" } else { "s" });
    }
    let _ = writeln!(s);
    let _ = write!(s, "|---:|---|");
    for _ in &r.writers {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
    for round in 1..=r.rounds {
        for &bytes in &r.sizes {
            let _ = write!(s, "| {round} | {} |", size_name(bytes));
            for &writers in &r.writers {
                let get = |build: Build| {
                    r.runs
                        .iter()
                        .find(|x| {
                            x.build == build
                                && x.round == round
                                && x.content_bytes == bytes
                                && x.writers == writers
                        })
                        .map_or(f64::NAN, |x| x.acked_per_sec)
                };
                if baseline {
                    let _ = write!(
                        s,
                        " {} → {} |",
                        rate(get(Build::Baseline)),
                        rate(get(Build::Current))
                    );
                } else {
                    let _ = write!(s, " {} |", rate(get(Build::Current)));
                }
            }
            let _ = writeln!(s);
        }
    }
    s
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
