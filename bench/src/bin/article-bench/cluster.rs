//! The cluster part (`--only cluster`, issue 10): replicas of the article
//! server on one PostgreSQL database behind HAProxy with the repository's
//! `deploy/haproxy.cfg`.
//!
//! 1. ListArticles (the server part's request, the same seeded data) with
//!    h2load over h2c: one replica direct, HAProxy with only that replica
//!    in rotation (the other two disabled on its admin socket), HAProxy
//!    with all three. CPU of HAProxy, the replicas and PostgreSQL, and of
//!    the whole machine, over each measured run.
//! 2. Acknowledged CreateArticle writes per second (`write-load`) at 1, 8
//!    and 64 concurrent writers, one server on a fresh PostgreSQL database
//!    and one on a fresh SQLite file, the same flags otherwise.
//! 3. Commit-to-every-watcher fan-out (`watch-fanout`), the commits sent
//!    to the first replica: watchers spread evenly over the three replicas,
//!    connected directly; then the same number through HAProxy (leastconn
//!    spreads them; its per-replica session counts say how).
//!
//! The PostgreSQL cluster (`testkit::postgres::PgCluster::temporary`) and
//! HAProxy (`testkit::haproxy::Haproxy`) are guards: whether the part ends
//! well or with an error, dropping them stops both (and removes the
//! cluster's folder). When servers and load are pinned to CPUs, PostgreSQL
//! and HAProxy are pinned with the servers.
//!
//! # Limitations
//! On a machine with two cores, three replicas, HAProxy and PostgreSQL
//! share the one server core: the ListArticles runs measure what the proxy
//! hop costs, not how reads scale out with replicas.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use article_bench::{
    grpc::{self, Wire},
    process::{self, Server},
    procfs,
};
use serde::{Deserialize, Serialize};
use testkit::{haproxy::Haproxy, postgres::PgCluster};

use crate::{
    Ctx, TOKEN,
    load::{self, Load, LoadConfig, LoadResult},
    seed, step,
};

pub const BEGIN: &str = "<!-- bench:cluster:begin (written by `cargo xtask bench`) -->";
pub const END: &str = "<!-- bench:cluster:end -->";

/// Replicas behind HAProxy.
const REPLICAS: usize = 3;
/// How long HAProxy may take to see a replica up (2 checks, 1 s apart).
const UP_TIMEOUT: Duration = Duration::from_secs(15);

/// How the part runs.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub quick: bool,
    pub articles: usize,
    /// Each measured ListArticles run.
    pub duration: Duration,
    /// Warm-up of each ListArticles path, before the first round.
    pub warmup: Duration,
    /// Rounds of ListArticles runs, the paths taking turns in each.
    pub list_rounds: usize,
    /// Each measured write run (after a warm-up of its own).
    pub write_duration: Duration,
    /// Rounds of write runs per writer count, the stores taking turns.
    pub write_rounds: usize,
    /// Concurrent writers, one write run each.
    pub writers: Vec<usize>,
    /// Watchers over all replicas.
    pub watchers: usize,
    /// Commits timed in the fan-out run.
    pub rounds: usize,
}

/// One ListArticles run.
#[derive(Clone, Debug, Serialize)]
pub struct ListRun {
    pub key: &'static str,
    pub path: &'static str,
    /// The answer equals the seeded reference byte for byte.
    pub identical: bool,
    /// Medians over the rounds (failed and requests: sums).
    pub result: LoadResult,
    /// req/s of each round.
    pub rounds_rps: Vec<f64>,
    /// CPU (1.0 = one core busy) over the measured runs.
    pub haproxy_cores: Option<f64>,
    pub replicas_cores: f64,
    pub postgres_cores: f64,
    pub machine_cores: f64,
}

/// What `write-load` prints.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WriteRun {
    #[serde(default)]
    pub store: String,
    pub writers: usize,
    pub seconds: f64,
    pub acked: usize,
    pub failed: usize,
    pub acked_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
    /// Acknowledged writes per second of each round (when combined).
    #[serde(default)]
    pub rounds: Vec<f64>,
}

/// What `watch-fanout` prints (the fields shown here).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FanoutRun {
    /// Whether the watchers went through HAProxy.
    #[serde(default)]
    pub via_haproxy: bool,
    /// Through HAProxy: the streams it sent to r1, r2, r3.
    #[serde(default)]
    pub spread: Vec<u64>,
    pub streams: usize,
    pub connections: usize,
    pub open_secs: f64,
    pub rounds: usize,
    pub create_ms: Vec<f64>,
    pub fanout_p50_ms: f64,
    pub fanout_p99_ms: f64,
    pub fanout_max_ms: f64,
    pub delivered: usize,
    pub failed_streams: usize,
    pub targets: Vec<FanoutTarget>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FanoutTarget {
    pub url: String,
    pub streams: usize,
    pub fanout_p50_ms: f64,
    pub fanout_p99_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterResults {
    pub quick: bool,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
    pub versions: Vec<String>,
    /// Servers' and load generators' CPUs, if pinned.
    pub pinning: Option<(String, String)>,
    pub articles: usize,
    pub page_len: usize,
    pub connections: usize,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub list_rounds: usize,
    pub write_secs: f64,
    pub write_rounds: usize,
    pub list: Vec<ListRun>,
    pub writes: Vec<WriteRun>,
    pub fanout: Vec<FanoutRun>,
}

/// `f` on a blocking-allowed thread (the test kit's guards are plain std).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

pub async fn run(ctx: &Ctx, cfg: &ClusterConfig) -> anyhow::Result<ClusterResults> {
    let dir = ctx.work.join("cluster");
    std::fs::create_dir_all(&dir)?;
    let load_before = loadavg();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();

    step("cluster: PostgreSQL (throw-away cluster)");
    let pg = blocking(PgCluster::temporary).context("starting PostgreSQL")?;
    if let Some(cpus) = &ctx.server_cpus {
        pin_tree(postmaster(pg.dir())?, cpus)?;
    }
    let versions = versions().await;

    // (1) and (3): three replicas on one database, HAProxy in front.
    let database = blocking(|| pg.create_database("articles"))?;
    let mut replicas = Vec::new();
    for i in 1..=REPLICAS {
        // One at a time: the first migrates the database.
        replicas.push(
            ctx.article_server_on(&format!("r{i}"), &database, &[])
                .await?,
        );
    }
    step(&format!(
        "cluster: seeding {} articles through r1",
        cfg.articles
    ));
    let seeded_dir = dir.join("seed");
    std::fs::create_dir_all(&seeded_dir)?;
    let seeded = seed::seed(&replicas[0], TOKEN, cfg.articles, &seeded_dir).await?;
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();
    // Two HAProxy processes with the same file: one with r1 alone (the hop
    // and nothing else), one with all three. Both stay up, so the runs can
    // alternate.
    step(
        "cluster: HAProxy (deploy/haproxy.cfg): one in front of r1 alone, one in front of r1, r2, r3",
    );
    let config = ctx.root.join("deploy").join("haproxy.cfg");
    let proxy_one = blocking(|| Haproxy::start(&config, &dir.join("haproxy-1"), &addrs[..1]))?;
    let proxy_all = blocking(|| Haproxy::start(&config, &dir.join("haproxy-3"), &addrs))?;
    if let Some(cpus) = &ctx.server_cpus {
        pin(proxy_one.pid(), cpus)?;
        pin(proxy_all.pid(), cpus)?;
    }
    blocking(|| {
        proxy_one.wait_for_server("r1", "UP", UP_TIMEOUT)?;
        (1..=REPLICAS)
            .try_for_each(|i| proxy_all.wait_for_server(&format!("r{i}"), "UP", UP_TIMEOUT))
    })?;

    let targets = [
        ListTarget {
            key: "direct",
            path: "one replica, direct",
            addr: replicas[0].addr,
            haproxy: None,
        },
        ListTarget {
            key: "haproxy-1",
            path: "HAProxy → one replica",
            addr: proxy_one.addr(),
            haproxy: Some(proxy_one.pid()),
        },
        ListTarget {
            key: "haproxy-3",
            path: "HAProxy → three replicas",
            addr: proxy_all.addr(),
            haproxy: Some(proxy_all.pid()),
        },
    ];
    let postmaster = postmaster(pg.dir())?;
    let list = list_runs(ctx, cfg, &targets, &replicas, postmaster, &seeded.reference).await?;
    blocking(|| proxy_one.stop())?;

    let mut fanouts = Vec::new();
    for via_haproxy in [false, true] {
        step(&format!(
            "cluster: fan-out to {} watchers {}, writes through r1",
            cfg.watchers,
            if via_haproxy {
                "through HAProxy"
            } else {
                "connected directly, a third per replica"
            }
        ));
        let before = blocking(|| sessions(&proxy_all))?;
        let mut run = fanout(ctx, cfg, &replicas, via_haproxy.then(|| proxy_all.addr())).await?;
        if via_haproxy {
            let after = blocking(|| sessions(&proxy_all))?;
            run.spread = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        }
        println!(
            "    fan-out p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} delivered, {} failed streams{})",
            run.fanout_p50_ms,
            run.fanout_p99_ms,
            run.fanout_max_ms,
            run.delivered,
            run.failed_streams,
            if via_haproxy {
                format!("; HAProxy sent {:?} to r1, r2, r3", run.spread)
            } else {
                String::new()
            }
        );
        fanouts.push(run);
    }
    blocking(|| proxy_all.stop())?;
    for replica in replicas {
        replica.stop().await?;
    }

    // (2) Writes: one server per store on fresh data, the same flags, both
    // up for the whole step so the runs can alternate.
    let sqlite_url = format!("sqlite://{}", dir.join("writes.db").display());
    let pg_url = blocking(|| pg.create_database("writes"))?;
    let mut stores = Vec::new();
    for (store, url) in [("SQLite", sqlite_url), ("PostgreSQL", pg_url)] {
        let server = ctx
            .article_server_on(&format!("writes-{}", store.to_lowercase()), &url, &[])
            .await?;
        stores.push((store, server));
    }
    let mut writes = Vec::new();
    for &writers in &cfg.writers {
        let mut runs: Vec<Vec<WriteRun>> = vec![Vec::new(); stores.len()];
        for round in 1..=cfg.write_rounds {
            step(&format!(
                "cluster: acknowledged writes, {writers} writers, round {round} of {}",
                cfg.write_rounds
            ));
            for ((store, server), runs) in stores.iter().zip(&mut runs) {
                let run = write_run(ctx, cfg, store, server, writers, round).await?;
                println!(
                    "    {store}: {:.0} acknowledged writes/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
                    run.acked_per_sec, run.p50_ms, run.p99_ms, run.failed
                );
                runs.push(run);
            }
        }
        writes.extend(runs.iter().map(|runs| combine_writes(runs)));
    }
    for (_, server) in stores {
        server.stop().await?;
    }
    drop(pg);

    Ok(ClusterResults {
        quick: cfg.quick,
        date,
        load_before,
        load_after: loadavg(),
        versions,
        pinning: ctx.server_cpus.clone().zip(ctx.load.cpus.clone()),
        articles: cfg.articles,
        page_len: seeded.page_len,
        connections: ctx.load.connections,
        duration_secs: cfg.duration.as_secs_f64(),
        list_rounds: cfg.list_rounds,
        write_secs: cfg.write_duration.as_secs_f64(),
        write_rounds: cfg.write_rounds,
        warmup_secs: cfg.warmup.as_secs_f64(),
        list,
        writes,
        fanout: fanouts,
    })
}

/// Sessions (requests, streams) HAProxy has sent to r1, r2, r3 so far
/// (`stot` of `show stat`).
fn sessions(haproxy: &Haproxy) -> anyhow::Result<Vec<u64>> {
    let csv = haproxy.admin("show stat")?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .context("unexpected `show stat` answer")?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .with_context(|| format!("no {name} in `show stat`"))
    };
    let (proxy, server, total) = (column("pxname")?, column("svname")?, column("stot")?);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    (1..=REPLICAS)
        .map(|i| {
            let name = format!("r{i}");
            rows.iter()
                .find(|f| {
                    f.get(proxy) == Some(&testkit::haproxy::BACKEND)
                        && f.get(server) == Some(&name.as_str())
                })
                .and_then(|f| f.get(total)?.parse().ok())
                .with_context(|| format!("no stot for {name} in `show stat`"))
        })
        .collect()
}

/// One path of the ListArticles runs.
struct ListTarget {
    key: &'static str,
    path: &'static str,
    addr: std::net::SocketAddr,
    /// HAProxy's pid when the path goes through one.
    haproxy: Option<u32>,
}

impl ListTarget {
    fn load(&self) -> Load {
        Load::H2load {
            url: format!("http://{}{}", self.addr, grpc::LIST_PATH),
        }
    }
}

/// CPU ticks used over the measured runs of one path.
#[derive(Clone, Copy, Default)]
struct Cpu {
    haproxy: u64,
    replicas: u64,
    postgres: u64,
    /// The machine's busy and total jiffies (all CPUs).
    busy: u64,
    total: u64,
    wall_secs: f64,
}

impl Cpu {
    fn add(&mut self, before: &Snapshot, after: &Snapshot) {
        self.haproxy += after.haproxy.saturating_sub(before.haproxy);
        self.replicas += after.replicas.saturating_sub(before.replicas);
        self.postgres += after
            .postgres
            .iter()
            .map(|(pid, t)| t.saturating_sub(before.postgres.get(pid).copied().unwrap_or(0)))
            .sum::<u64>();
        self.busy += after.machine.0.saturating_sub(before.machine.0);
        self.total += after.machine.1.saturating_sub(before.machine.1);
        self.wall_secs += after.at.duration_since(before.at).as_secs_f64();
    }

    fn cores(&self, ticks: u64) -> f64 {
        ticks as f64 / procfs::clock_ticks() as f64 / self.wall_secs
    }

    fn machine_cores(&self) -> f64 {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if self.total == 0 {
            0.0
        } else {
            self.busy as f64 / self.total as f64 * cpus
        }
    }
}

/// Checks each path's answer and warms it up, then measures the paths in
/// turn, `cfg.list_rounds` times, so a change in the machine's other load
/// falls on all of them alike.
async fn list_runs(
    ctx: &Ctx,
    cfg: &ClusterConfig,
    targets: &[ListTarget],
    replicas: &[Server],
    postmaster: u32,
    reference: &[u8],
) -> anyhow::Result<Vec<ListRun>> {
    let measured = LoadConfig {
        duration: cfg.duration,
        warmup: Duration::ZERO,
        ..ctx.load.clone()
    };
    let warm = LoadConfig {
        duration: cfg.warmup,
        ..measured.clone()
    };
    let logs = ctx.work.join("logs");
    let replica_pids: Vec<u32> = replicas.iter().map(|r| r.pid).collect();
    step("cluster: ListArticles: checking and warming up each path");
    let mut identical = Vec::new();
    for t in targets {
        let (_, same) = grpc::check_list(t.addr, Wire::Grpc, reference).await?;
        identical.push(same);
        if !warm.duration.is_zero() {
            let name = format!("cluster-{}.warmup", t.key);
            load::run(&warm, &t.load(), &replica_pids, &logs, &name).await?;
        }
    }
    let mut results: Vec<Vec<LoadResult>> = vec![Vec::new(); targets.len()];
    let mut cpu = vec![Cpu::default(); targets.len()];
    for round in 1..=cfg.list_rounds {
        step(&format!(
            "cluster: ListArticles, round {round} of {}",
            cfg.list_rounds
        ));
        for (i, t) in targets.iter().enumerate() {
            let name = format!("cluster-{}-{round}", t.key);
            let before = Snapshot::take(postmaster, &replica_pids, t.haproxy)?;
            let result = load::run(&measured, &t.load(), &replica_pids, &logs, &name).await?;
            let after = Snapshot::take(postmaster, &replica_pids, t.haproxy)?;
            cpu[i].add(&before, &after);
            println!(
                "    {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
                t.path, result.rps, result.p50_ms, result.p99_ms, result.failed
            );
            results[i].push(result);
        }
    }
    let runs = targets
        .iter()
        .zip(results)
        .zip(cpu)
        .zip(identical)
        .map(|(((t, results), cpu), identical)| {
            let run = ListRun {
                key: t.key,
                path: t.path,
                identical,
                result: LoadResult {
                    rps: median(results.iter().map(|r| r.rps)),
                    p50_ms: median(results.iter().map(|r| r.p50_ms)),
                    p99_ms: median(results.iter().map(|r| r.p99_ms)),
                    requests: results.iter().map(|r| r.requests).sum(),
                    failed: results.iter().map(|r| r.failed).sum(),
                    server: procfs::Usage::default(),
                },
                rounds_rps: results.iter().map(|r| r.rps).collect(),
                haproxy_cores: t.haproxy.map(|_| cpu.cores(cpu.haproxy)),
                replicas_cores: cpu.cores(cpu.replicas),
                postgres_cores: cpu.cores(cpu.postgres),
                machine_cores: cpu.machine_cores(),
            };
            println!(
                "    {} (median of {}): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms; CPU: HAProxy {}, replicas {:.2}, PostgreSQL {:.2}, machine {:.2}",
                run.path,
                results.len(),
                run.result.rps,
                run.result.p50_ms,
                run.result.p99_ms,
                run.haproxy_cores
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}")),
                run.replicas_cores,
                run.postgres_cores,
                run.machine_cores
            );
            run
        })
        .collect();
    Ok(runs)
}

/// The median (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One `write-load` run against `server`.
async fn write_run(
    ctx: &Ctx,
    cfg: &ClusterConfig,
    store: &str,
    server: &Server,
    writers: usize,
    round: usize,
) -> anyhow::Result<WriteRun> {
    let mut cmd = process::command(ctx.bins.join("write-load"), ctx.load.cpus.as_deref());
    cmd.arg("--url")
        .arg(format!("http://{}", server.addr))
        .args(["--writers", &writers.to_string()])
        .args(["--duration", &cfg.write_duration.as_secs_f64().to_string()])
        .args(["--warmup", "0.5"])
        .env("ARTICLE_TOKEN", TOKEN);
    let name = format!("writes-{}-{writers}-{round}", store.to_lowercase());
    let line = output(cmd, &ctx.log(&name)).await?;
    let mut run: WriteRun = serde_json::from_str(&line).context("write-load printed no result")?;
    run.store = store.to_owned();
    Ok(run)
}

/// The rounds of one store and writer count: medians, sums of the counts.
fn combine_writes(runs: &[WriteRun]) -> WriteRun {
    let first = &runs[0];
    WriteRun {
        store: first.store.clone(),
        writers: first.writers,
        seconds: runs.iter().map(|r| r.seconds).sum(),
        acked: runs.iter().map(|r| r.acked).sum(),
        failed: runs.iter().map(|r| r.failed).sum(),
        acked_per_sec: median(runs.iter().map(|r| r.acked_per_sec)),
        p50_ms: median(runs.iter().map(|r| r.p50_ms)),
        p99_ms: median(runs.iter().map(|r| r.p99_ms)),
        max_ms: runs.iter().map(|r| r.max_ms).fold(f64::NAN, f64::max),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
        rounds: runs.iter().map(|r| r.acked_per_sec).collect(),
    }
}

/// CPU ticks of the processes of one run, and of the machine.
struct Snapshot {
    at: Instant,
    replicas: u64,
    haproxy: u64,
    /// Per process of the PostgreSQL tree (backends come and go).
    postgres: HashMap<u32, u64>,
    /// `/proc/stat`: (busy, total) jiffies of all CPUs.
    machine: (u64, u64),
}

impl Snapshot {
    fn take(postmaster: u32, replicas: &[u32], haproxy: Option<u32>) -> anyhow::Result<Self> {
        let ticks = |pid: u32| procfs::read(pid).map(|r| r.cpu_ticks).unwrap_or(0);
        Ok(Self {
            at: Instant::now(),
            replicas: replicas.iter().map(|&p| ticks(p)).sum(),
            haproxy: haproxy.map_or(0, ticks),
            postgres: descendants(postmaster)?
                .into_iter()
                .map(|p| (p, ticks(p)))
                .collect(),
            machine: machine_jiffies()?,
        })
    }
}

/// Busy and total jiffies of all CPUs (`/proc/stat`'s `cpu` line; idle and
/// iowait are not busy).
fn machine_jiffies() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// The postmaster's pid: the first line of `data/postmaster.pid`.
fn postmaster(cluster_dir: &Path) -> anyhow::Result<u32> {
    let file = cluster_dir.join("data").join("postmaster.pid");
    std::fs::read_to_string(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no pid in {}", file.display()))
}

/// `root` and every process below it.
fn descendants(root: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the parenthesised name: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| c));
        i += 1;
    }
    Ok(tree)
}

/// `taskset -a -p -c CPUS PID`: every thread of `pid` (later children
/// inherit it).
fn pin(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("running taskset")?;
    if !out.status.success() {
        bail!(
            "taskset -p {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Pins PostgreSQL: the postmaster (whose later backends inherit it) and
/// the processes it already has.
fn pin_tree(root: u32, cpus: &str) -> anyhow::Result<()> {
    for pid in descendants(root)? {
        pin(pid, cpus)?;
    }
    Ok(())
}

/// `watch-fanout` with the watchers on every replica, or on `haproxy`;
/// the commits go to r1.
async fn fanout(
    ctx: &Ctx,
    cfg: &ClusterConfig,
    replicas: &[Server],
    haproxy: Option<std::net::SocketAddr>,
) -> anyhow::Result<FanoutRun> {
    let urls: Vec<String> = match haproxy {
        Some(addr) => vec![format!("http://{addr}")],
        None => replicas
            .iter()
            .map(|r| format!("http://{}", r.addr))
            .collect(),
    };
    let pids: Vec<String> = replicas.iter().map(|r| r.pid.to_string()).collect();
    let mut cmd = process::command(ctx.bins.join("watch-fanout"), ctx.load.cpus.as_deref());
    cmd.arg("--url")
        .arg(urls.join(","))
        .arg("--write-url")
        .arg(format!("http://{}", replicas[0].addr))
        .args(["--server-pid", &pids.join(",")])
        .args(["--streams", &cfg.watchers.to_string(), "--transport", "h2"])
        .args(["--streams-per-connection", "100"])
        .args(["--rounds", &cfg.rounds.to_string()])
        .env("ARTICLE_TOKEN", TOKEN);
    let name = if haproxy.is_some() {
        "cluster-fanout-haproxy"
    } else {
        "cluster-fanout-direct"
    };
    let line = output(cmd, &ctx.log(name)).await?;
    let mut run: FanoutRun =
        serde_json::from_str(&line).context("watch-fanout printed no result")?;
    run.via_haproxy = haproxy.is_some();
    Ok(run)
}

/// Runs a client to its end, keeps its output in `log`, returns the last
/// line of its stdout.
async fn output(mut cmd: tokio::process::Command, log: &PathBuf) -> anyhow::Result<String> {
    let shown = format!("{:?}", cmd.as_std());
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {shown}"))?;
    std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat())?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn versions() -> Vec<String> {
    let mut versions = Vec::new();
    if let Ok(bin) = testkit::postgres::binaries()
        && let Ok(out) = tokio::process::Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .await
    {
        versions.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    if let Ok(out) = tokio::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .await
    {
        let text = String::from_utf8_lossy(&out.stdout);
        versions.extend(text.lines().next().map(|l| l.trim().to_owned()));
    }
    versions
}

pub(crate) fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

pub fn render(commit: &str, r: &ClusterResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Cluster: replicas on PostgreSQL behind HAProxy (issue 10)\n\n\
         _{} run of {} at commit `{}`, load average {} before the part, {} after. {}. {}_\n",
        if r.quick { "A quick (smoke)" } else { "Full" },
        r.date,
        commit,
        r.load_before,
        r.load_after,
        r.versions.join("; "),
        match &r.pinning {
            Some((servers, load)) => format!(
                "Replicas, HAProxy and PostgreSQL pinned to CPU {servers}, load generators to CPU {load}."
            ),
            None => "Nothing pinned.".to_owned(),
        }
    );
    let _ = writeln!(
        s,
        "**Read the ListArticles rows as the cost of the proxy hop, not as scale-out.** On this \
         machine's {} cores, three replicas, HAProxy and PostgreSQL share one server core and \
         the load generator has the other; more replicas cannot add capacity here.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let _ = writeln!(
        s,
        "#### ListArticles `{{ page_size: 20 }}` ({} of {} seeded articles, PostgreSQL store), h2load over h2c, {} connections\n\n\
         {} rounds of {} s per path, the three paths in turn in each round, after {} s of warm-up \
         per path; req/s, p50 and p99 are medians of the rounds, CPU is over all measured runs \
         (1.00 = one core busy; \"machine\" counts every process, this benchmark's and others').\n",
        r.page_len, r.articles, r.connections, r.list_rounds, r.duration_secs, r.warmup_secs
    );
    let _ = writeln!(
        s,
        "| path | req/s | req/s per round | p50 ms | p99 ms | failed | same bytes | CPU HAProxy | CPU replicas | CPU PostgreSQL | CPU machine |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|");
    for run in &r.list {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            run.path,
            run.result.rps,
            run.rounds_rps
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            ms(run.result.p50_ms),
            ms(run.result.p99_ms),
            run.result.failed,
            if run.identical { "yes" } else { "no" },
            run.haproxy_cores
                .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
            run.replicas_cores,
            run.postgres_cores,
            run.machine_cores
        );
    }
    if let (Some(direct), Some(hop)) = (
        r.list.iter().find(|l| l.key == "direct"),
        r.list.iter().find(|l| l.key == "haproxy-1"),
    ) && direct.result.rps > 0.0
    {
        let _ = writeln!(
            s,
            "\nThe hop: HAProxy in front of the same single replica gives {:.2} × the direct \
             req/s, p50 {} → {} ms, p99 {} → {} ms.",
            hop.result.rps / direct.result.rps,
            ms(direct.result.p50_ms),
            ms(hop.result.p50_ms),
            ms(direct.result.p99_ms),
            ms(hop.result.p99_ms)
        );
    }

    let _ = writeln!(
        s,
        "\n#### Acknowledged writes: CreateArticle (small article), one server per store\n\n\
         Each writer on an HTTP/2 connection of its own, one call in flight; {} rounds of {} s per \
         writer count, the two stores in turn, each run after 0.5 s of warm-up; writes/s, p50 \
         and p99 are medians of the rounds (each round's writes/s in parentheses).\n",
        r.write_rounds, r.write_secs
    );
    let _ = writeln!(
        s,
        "| writers | SQLite writes/s | p50 ms | p99 ms | failed | PostgreSQL writes/s | p50 ms | p99 ms | failed |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut counts: Vec<usize> = r.writes.iter().map(|w| w.writers).collect();
    counts.sort_unstable();
    counts.dedup();
    for n in counts {
        let cell = |store: &str| {
            r.writes
                .iter()
                .find(|w| w.writers == n && w.store == store)
                .map_or_else(
                    || "– | – | – | –".to_owned(),
                    |w| {
                        format!(
                            "{:.0} ({}) | {} | {} | {}",
                            w.acked_per_sec,
                            w.rounds
                                .iter()
                                .map(|r| format!("{r:.0}"))
                                .collect::<Vec<_>>()
                                .join(" / "),
                            ms(w.p50_ms),
                            ms(w.p99_ms),
                            w.failed
                        )
                    },
                )
        };
        let _ = writeln!(s, "| {n} | {} | {} |", cell("SQLite"), cell("PostgreSQL"));
    }
    if let Some(error) = r.writes.iter().find_map(|w| w.first_error.as_ref()) {
        let _ = writeln!(s, "\nFirst failed write: `{error}`.");
    }

    for f in &r.fanout {
        render_fanout(&mut s, f);
    }
    s
}

fn render_fanout(s: &mut String, f: &FanoutRun) {
    if f.via_haproxy {
        let _ = writeln!(
            s,
            "\n#### Fan-out: {} watchers through HAProxy (leastconn), commits through r1 directly\n",
            f.streams
        );
        let _ = writeln!(
            s,
            "HAProxy sent {} of the streams to r1, r2, r3 (`stot` of `show stat`, before and after).",
            f.spread
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        let _ = writeln!(
            s,
            "\n#### Fan-out: {} watchers, {} per replica, connected directly to the replicas, commits through r1\n",
            f.streams,
            f.targets.first().map_or(0, |t| t.streams)
        );
    }
    let _ = writeln!(
        s,
        "{} HTTP/2 connections from the client, 100 streams each; all open in {:.1} s; {} commits, \
         CreateArticle answered in {} ms; {} events delivered, {} streams failed.\n",
        f.connections,
        f.open_secs,
        f.rounds,
        f.create_ms
            .iter()
            .map(|m| ms(*m))
            .collect::<Vec<_>>()
            .join(", "),
        f.delivered,
        f.failed_streams
    );
    let _ = writeln!(s, "| watchers on | streams | fan-out p50 ms | p99 ms |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    if !f.via_haproxy {
        for (i, t) in f.targets.iter().enumerate() {
            let _ = writeln!(
                s,
                "| r{}{} | {} | {} | {} |",
                i + 1,
                if i == 0 {
                    " (the writer's replica)"
                } else {
                    ""
                },
                t.streams,
                ms(t.fanout_p50_ms),
                ms(t.fanout_p99_ms)
            );
        }
    }
    let _ = writeln!(
        s,
        "| **{}** | {} | **{}** | **{}** (max {}) |",
        if f.via_haproxy { "HAProxy" } else { "all" },
        f.streams,
        ms(f.fanout_p50_ms),
        ms(f.fanout_p99_ms),
        ms(f.fanout_max_ms)
    );
}
