//! `article-bench`: the benchmark run behind `cargo xtask bench`.
//!
//! Seeds a SQLite database through the server's ImportArticles, then runs
//! the same load (same connections, same duration, the same pre-encoded
//! `ListArticles { page_size: 20 }` body) back to back against:
//! (1) the physical limit (`limit-server`, replaying the real answer),
//! (2) this server over gRPC-web / HTTP/1.1, (3) this server over native
//! gRPC / h2c, (4) the JSON gateway architecture (`json-gateway` in front
//! of this server), (5) the seeds' stack (Python `grpc.aio`). Then holds N
//! WatchArticles streams open (`watch-fanout`) over HTTP/2 and HTTP/1.1.
//! Writes the figures, as ratios against the targets, between the
//! result markers of `BENCHMARKS.md`.
//!
//! Servers are started on 127.0.0.1:0 and used once they print their
//! listening line and answer a checked call. With two or more CPUs the
//! servers and the load generators are pinned to separate halves of them.
//! The tools (oha, h2load, the Python venv) are installed by xtask.
//!
//! The browser part (`browser.rs`) measures the web app in headless
//! Chromium: bundle size, time to the first list, and prost (WASM) against
//! protobuf-es decoding the same bytes; its figures go between their own
//! markers, so `--only browser` leaves the server results as they are.
//!
//! The cluster part (`cluster.rs`, `--only cluster`) puts three replicas on
//! one PostgreSQL database behind HAProxy: ListArticles direct and through
//! the proxy, acknowledged writes on PostgreSQL and SQLite, fan-out to
//! watchers on every replica; also between markers of its own.
//!
//! The peers part (`peers.rs`, `--only peers`) measures this server
//! against connect-rust and Connect for Node answering the same page from
//! memory, in alternating rounds on one pinned core; between its own
//! markers too.
//!
//! The writes part (`writes.rs`, only on request: `--only writes`)
//! measures acknowledged CreateArticle per second at 1, 8 and 64 writers on
//! SQLite, a fresh server and database per run, in alternating rounds,
//! optionally against a baseline binary (`--writes-baseline-bin`); between
//! its own markers.

mod browser;
mod cluster;
mod growth;
mod load;
mod overload;
mod peers;
mod report;
mod seed;
mod wire;
mod writes;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use article_bench::{
    grpc::{self, Wire},
    process::{self, Server},
};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use self::load::{Load, LoadConfig, LoadResult};

/// The benchmark database's write token (a throwaway local database).
const TOKEN: &str = "bench-token-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// All unary runs.
    Unary,
    /// Only the unary runs of this server, (2) and (3): for before/after
    /// comparisons of a server change (with --server-bin).
    Server,
    Streaming,
    /// The web app in headless Chromium (and Firefox with --geckodriver):
    /// bundle size, time to first list, prost vs protobuf-es decode.
    Browser,
    /// Three replicas on one PostgreSQL behind HAProxy: ListArticles
    /// direct vs through the proxy, acknowledged writes on PostgreSQL vs
    /// SQLite at 1, 8, 64 writers, fan-out to watchers on every replica.
    Cluster,
    /// This server against connect-rust and Connect for Node (issue 12):
    /// gRPC-web and gRPC, h2load, every server pinned to one core,
    /// alternating rounds; between markers of its own in BENCHMARKS.md.
    Peers,
    /// Only on request (it seeds a million articles per store): ListArticles
    /// and GetArticle p50/p99 and the database size at 1,000, 100,000 and
    /// 1,000,000 articles, SQLite and PostgreSQL (the `growth` binary);
    /// between markers of its own in BENCHMARKS.md.
    Growth,
    /// Only on request: 1×, 2× and 5× the saturating rate of a search,
    /// open loop, with the server's call limit and without; p99 of the
    /// admitted calls, refusals, peak RSS (printed, and in
    /// target/bench/overload.json; BENCHMARKS.md is left as it is).
    Overload,
    /// Only on request: acknowledged CreateArticle per second at 1, 8 and
    /// 64 writers, small and 1.5 KB articles, SQLite as shipped, a fresh
    /// server and database file per run, alternating rounds; optionally
    /// side by side with --writes-baseline-bin; between markers of its own
    /// in BENCHMARKS.md.
    Writes,
}

#[derive(Parser)]
#[command(about = "Runs the benchmarks and writes BENCHMARKS.md (use `cargo xtask bench`).")]
struct Args {
    /// Short runs for a smoke test (3 s per run, 500 streams); writes
    /// target/bench/BENCHMARKS.quick.md unless --out is given.
    #[arg(long)]
    quick: bool,
    /// Workspace root.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Seconds per measured run (default 20; 3 with --quick).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up before each measured run (default 3; 1 with --quick).
    #[arg(long)]
    warmup: Option<f64>,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Articles in the seeded database.
    #[arg(long, default_value_t = 1000)]
    articles: usize,
    /// Watch stream counts (default 1000,10000; 500 with --quick).
    #[arg(long, value_delimiter = ',')]
    streams: Vec<usize>,
    /// Python of the venv with grpcio, grpcio-tools and protobuf; the
    /// Python system is skipped without it.
    #[arg(long)]
    python: Option<PathBuf>,
    #[arg(long, default_value = "oha")]
    oha: PathBuf,
    #[arg(long, default_value = "h2load")]
    h2load: PathBuf,
    /// The article-server binary (default: target/release/article-server),
    /// e.g. to measure a change before and after.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `RUST_LOG` for the article server (default: unset, its own default).
    #[arg(long)]
    server_log: Option<String>,
    /// Extra environment for the article server, as KEY=VALUE (repeatable),
    /// e.g. `MALLOC_ARENA_MAX=2` for an experiment.
    #[arg(long, value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// Article counts of the growth part (default 1000,100000,1000000;
    /// 1000,10000 with --quick).
    #[arg(long, value_delimiter = ',')]
    growth_sizes: Vec<usize>,
    /// Stores of the growth part.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    growth_stores: Vec<String>,
    /// Calls measured per kind and size in the growth part (default 200;
    /// 20 with --quick).
    #[arg(long)]
    growth_samples: Option<usize>,
    /// Where to write the results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch folder (databases, logs, results.json), emptied at the
    /// start (default: target/bench). Give each of two runs at the same
    /// time a folder of its own.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Do not pin servers and load generators to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Run only this part.
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// The built web app (default: web/dist; `cargo xtask bench` builds it).
    #[arg(long)]
    web_dist: Option<PathBuf>,
    /// `wasm-bindgen --target web` output of bench/wasm-decode (default:
    /// target/bench-wasm-decode; built by `cargo xtask bench`).
    #[arg(long)]
    decode_pkg: Option<PathBuf>,
    /// protobuf-es' ES modules (default: npm's @bufbuild/protobuf/dist/esm
    /// in target/tools; installed by `cargo xtask bench`).
    #[arg(long)]
    protobuf_es: Option<PathBuf>,
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    chromedriver: PathBuf,
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Also measure Firefox (firefox-esr) through this geckodriver.
    #[arg(long)]
    geckodriver: Option<PathBuf>,
    /// Seconds per measured ListArticles run of the cluster part (default
    /// 4; 2 with --quick), three rounds after 2 s of warm-up per path (1
    /// with --quick); write runs take three quarters of it, two rounds.
    #[arg(long)]
    cluster_duration: Option<f64>,
    /// Watchers of the cluster part's fan-out, spread over three replicas
    /// (default 3000; 600 with --quick).
    #[arg(long)]
    cluster_watchers: Option<usize>,
    /// The connect-rust peer's binary (default:
    /// target/peers/release/connect-rust-peer; built by `cargo xtask bench`).
    #[arg(long)]
    connect_rust_peer: Option<PathBuf>,
    /// The Connect for Node peer's folder, with `node_modules` (default:
    /// bench/peers/connect-node; `cargo xtask bench` runs `npm ci` there).
    #[arg(long)]
    connect_node_peer: Option<PathBuf>,
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Rounds of the peers part (default 5; 1 with --quick).
    #[arg(long)]
    peer_rounds: Option<usize>,
    /// Connections of the peers part.
    #[arg(long, default_value_t = 16)]
    peer_connections: usize,
    /// Seconds per measured run of the peers part (default 10; 2 with
    /// --quick), after 2 s of warm-up (0.5 with --quick).
    #[arg(long)]
    peer_duration: Option<f64>,
    /// Page loads for the time to first list (default 10; 3 with --quick).
    #[arg(long)]
    loads: Option<usize>,
    /// Timed batches per decoder on the decode page (default 50; 10 with --quick).
    #[arg(long)]
    decode_samples: Option<usize>,
    /// Rounds of the writes part (default 5; 1 with --quick).
    #[arg(long)]
    writes_rounds: Option<usize>,
    /// Seconds per measured run of the writes part (default 10; 2 with
    /// --quick), after 0.5 s of warm-up.
    #[arg(long)]
    writes_duration: Option<f64>,
    /// Another article-server binary for the writes part to measure side
    /// by side (each run: this one, then the current one), e.g. a build of
    /// the commit before a change.
    #[arg(long, value_name = "PATH")]
    writes_baseline_bin: Option<PathBuf>,
}

/// Everything a run needs to start things.
struct Ctx {
    root: PathBuf,
    work: PathBuf,
    bins: PathBuf,
    server_bin: PathBuf,
    server_log: Option<String>,
    server_env: Vec<(String, String)>,
    server_cpus: Option<String>,
    load: LoadConfig,
    python: Option<PathBuf>,
}

impl Ctx {
    fn db(&self) -> PathBuf {
        self.work.join("articles.db")
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.db().display())
    }

    /// The article server on `database` (a URL), with extra flags.
    async fn article_server_on(
        &self,
        name: &str,
        database: &str,
        extra: &[&str],
    ) -> anyhow::Result<Server> {
        self.article_server_on_cpus(name, database, extra, self.server_cpus.as_deref())
            .await
    }

    /// The article server on the seeded database, pinned to `cpus`.
    async fn article_server_pinned(
        &self,
        name: &str,
        cpus: Option<&str>,
    ) -> anyhow::Result<Server> {
        self.article_server_on_cpus(name, &self.db_url(), &[], cpus)
            .await
    }

    async fn article_server_on_cpus(
        &self,
        name: &str,
        database: &str,
        extra: &[&str],
        cpus: Option<&str>,
    ) -> anyhow::Result<Server> {
        self.article_server_bin(&self.server_bin, name, database, extra, cpus)
            .await
    }

    /// The article server of binary `bin` (another build, e.g. a
    /// baseline), started as the others are.
    async fn article_server_bin(
        &self,
        bin: &Path,
        name: &str,
        database: &str,
        extra: &[&str],
        cpus: Option<&str>,
    ) -> anyhow::Result<Server> {
        let mut cmd = process::command(bin, cpus);
        cmd.args(["--listen", "127.0.0.1:0", "--database", database])
            .args(["--token", &format!("bench={TOKEN}")])
            .args(extra)
            .env_remove("RUST_LOG");
        if let Some(filter) = &self.server_log {
            cmd.env("RUST_LOG", filter);
        }
        cmd.envs(self.server_env.iter().map(|(k, v)| (k, v)));
        Server::start(name, cmd, &self.log(name)).await
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.join("logs").join(format!("{name}.log"))
    }

    async fn article_server(&self, name: &str) -> anyhow::Result<Server> {
        self.article_server_with(name, &[]).await
    }

    /// The article server with extra flags.
    async fn article_server_with(&self, name: &str, extra: &[&str]) -> anyhow::Result<Server> {
        self.article_server_on(name, &self.db_url(), extra).await
    }

    async fn bench_bin(&self, bin: &str, name: &str, args: &[String]) -> anyhow::Result<Server> {
        let mut cmd = process::command(self.bins.join(bin), self.server_cpus.as_deref());
        cmd.args(args);
        Server::start(name, cmd, &self.log(name)).await
    }
}

/// One unary run, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct UnaryRun {
    pub key: &'static str,
    pub system: &'static str,
    pub tool: &'static str,
    /// Whether the answer's message bytes equal the reference byte for byte.
    pub identical: Option<bool>,
    pub result: LoadResult,
}

/// One streaming run (as `watch-fanout` prints it).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StreamRun {
    pub transport: String,
    pub streams: usize,
    pub connections: usize,
    pub nofile_limit: u64,
    pub open_secs: f64,
    pub rss_before_mib: f64,
    pub rss_open_mib: f64,
    pub rss_per_stream_kib: f64,
    pub rounds: usize,
    pub create_ms: Vec<f64>,
    pub fanout_p50_ms: f64,
    pub fanout_p99_ms: f64,
    pub fanout_max_ms: f64,
    pub delivered: usize,
    pub failed_streams: usize,
}

/// Bytes of one ListArticles exchange, gRPC-web and JSON, plain and gzip.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WireComparison {
    pub grpc_web: wire::WireBytes,
    pub grpc_web_gzip: wire::WireBytes,
    pub json: wire::WireBytes,
    pub json_gzip: wire::WireBytes,
}

pub struct Results {
    pub quick: bool,
    pub articles: usize,
    pub page_len: usize,
    pub response_bytes: usize,
    pub pinning: Option<(String, String)>,
    pub load: LoadConfig,
    pub unary: Vec<UnaryRun>,
    pub wire: Option<WireComparison>,
    pub streams: Vec<StreamRun>,
    pub skipped: Vec<String>,
    /// How the article server was run, if not as shipped.
    pub server_variant: Vec<String>,
    pub browser: Option<browser::BrowserResults>,
    pub cluster: Option<cluster::ClusterResults>,
    pub peers: Option<peers::PeersResults>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = std::fs::canonicalize(&args.root)?;
    let work = match &args.work_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => root.join("target").join("bench"),
    };
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(work.join("logs"))?;

    // HTTP/1.1 streams need a socket each, here and in the servers, which
    // inherit this limit.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let machine = report::Machine::read(&args, nofile).await;
    println!("machine: {}", machine.summary());

    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinning = (!args.no_pin && nproc >= 2).then(|| {
        let half = nproc / 2;
        let load = if half == 1 {
            "0".to_owned()
        } else {
            format!("0-{}", half - 1)
        };
        let servers = if half == nproc - 1 {
            half.to_string()
        } else {
            format!("{half}-{}", nproc - 1)
        };
        (servers, load)
    });
    let load_threads = match &pinning {
        Some(_) => nproc / 2,
        None => nproc,
    };
    let bins = std::env::current_exe()?
        .parent()
        .context("no directory of article-bench")?
        .to_owned();
    let ctx = Ctx {
        server_bin: args
            .server_bin
            .clone()
            .unwrap_or_else(|| bins.join("article-server")),
        bins,
        server_log: args.server_log.clone(),
        server_env: args
            .server_env
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .with_context(|| format!("--server-env {kv:?} is not KEY=VALUE"))
            })
            .collect::<anyhow::Result<_>>()?,
        server_cpus: pinning.as_ref().map(|p| p.0.clone()),
        load: LoadConfig {
            connections: args.connections,
            duration: Duration::from_secs_f64(args.duration.unwrap_or(if args.quick {
                3.0
            } else {
                20.0
            })),
            warmup: Duration::from_secs_f64(args.warmup.unwrap_or(if args.quick {
                1.0
            } else {
                3.0
            })),
            cpus: pinning.as_ref().map(|p| p.1.clone()),
            threads: load_threads.max(1),
            oha: args.oha.clone(),
            h2load: args.h2load.clone(),
            body_file: work.join("list_request.bin"),
        },
        python: args.python.clone(),
        root: root.clone(),
        work: work.clone(),
    };
    if !ctx.server_bin.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release -p article-server`)",
            ctx.server_bin.display()
        );
    }

    if args.only == Some(Part::Growth) {
        let cfg = growth::GrowthConfig {
            sizes: if !args.growth_sizes.is_empty() {
                args.growth_sizes.clone()
            } else if args.quick {
                vec![1000, 10_000]
            } else {
                vec![1000, 100_000, 1_000_000]
            },
            stores: args.growth_stores.clone(),
            samples: args
                .growth_samples
                .unwrap_or(if args.quick { 20 } else { 200 }),
        };
        let figures = growth::run(&ctx, &cfg).await?;
        growth::save(&work, &figures)?;
        let out = args.out.clone().unwrap_or_else(|| {
            if args.quick {
                work.join("BENCHMARKS.quick.md")
            } else {
                root.join("BENCHMARKS.md")
            }
        });
        let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        let section = growth::render(machine.commit(), &date, &figures);
        report::write(&out, growth::BEGIN, growth::END, &section)?;
        step(&format!("wrote {}", out.display()));
        return Ok(());
    }

    if args.only == Some(Part::Writes) {
        let quick = args.quick;
        let rounds = args.writes_rounds.unwrap_or(if quick { 1 } else { 5 });
        let duration = args
            .writes_duration
            .unwrap_or(if quick { 2.0 } else { 10.0 });
        let mut command = format!(
            "cargo xtask bench{} -- --only writes",
            if quick { " --quick" } else { "" }
        );
        if let Some(r) = args.writes_rounds {
            command += &format!(" --writes-rounds {r}");
        }
        if let Some(d) = args.writes_duration {
            command += &format!(" --writes-duration {d}");
        }
        if let Some(b) = &args.server_bin {
            command += &format!(" --server-bin {}", b.display());
        }
        if let Some(b) = &args.writes_baseline_bin {
            command += &format!(" --writes-baseline-bin {}", b.display());
        }
        let cfg = writes::WritesConfig {
            quick,
            rounds,
            duration: Duration::from_secs_f64(duration),
            warmup: Duration::from_millis(500),
            writers: vec![1, 8, 64],
            sizes: vec![0, 1500],
            baseline: args.writes_baseline_bin.clone(),
            command,
        };
        let figures = writes::run(&ctx, &cfg).await?;
        std::fs::write(
            work.join("results.json"),
            serde_json::to_string_pretty(&serde_json::json!({ "writes": figures }))?,
        )?;
        let out = args.out.clone().unwrap_or_else(|| {
            if quick {
                work.join("BENCHMARKS.quick.md")
            } else {
                root.join("BENCHMARKS.md")
            }
        });
        let section = writes::render(machine.commit(), &figures);
        report::write(&out, writes::BEGIN, writes::END, &section)?;
        step(&format!("wrote {}", out.display()));
        println!("{}", figures.targets_text());
        return Ok(());
    }

    step(&format!("seeding {} articles", args.articles));
    let seeding = ctx.article_server("seed").await?;
    let seeded = seed::seed(&seeding, TOKEN, args.articles, &work).await?;
    seeding.stop().await?;
    println!(
        "    ListArticles page_size 20: {} articles, {} bytes encoded",
        seeded.page_len,
        seeded.reference.len()
    );

    let mut results = Results {
        quick: args.quick,
        articles: args.articles,
        page_len: seeded.page_len,
        response_bytes: seeded.reference.len(),
        pinning,
        load: ctx.load.clone(),
        unary: Vec::new(),
        wire: None,
        streams: Vec::new(),
        skipped: Vec::new(),
        server_variant: args
            .server_bin
            .iter()
            .map(|b| format!("binary {}", b.display()))
            .chain(args.server_log.iter().map(|l| format!("RUST_LOG={l}")))
            .chain(args.server_env.iter().cloned())
            .collect(),
        browser: None,
        cluster: None,
        peers: None,
    };
    if matches!(args.only, None | Some(Part::Unary | Part::Server)) {
        unary(&ctx, &seeded, args.only == Some(Part::Server), &mut results).await?;
    }
    if matches!(args.only, None | Some(Part::Peers)) {
        step("peers: this server, connect-rust, Connect for Node");
        let cfg = peers::PeersConfig {
            quick: args.quick,
            rounds: args.peer_rounds.unwrap_or(if args.quick { 1 } else { 5 }),
            connections: args.peer_connections,
            duration: Duration::from_secs_f64(args.peer_duration.unwrap_or(if args.quick {
                2.0
            } else {
                10.0
            })),
            warmup: Duration::from_secs_f64(if args.quick { 0.5 } else { 2.0 }),
            connect_rust: args
                .connect_rust_peer
                .clone()
                .unwrap_or_else(|| root.join("target/peers/release/connect-rust-peer")),
            connect_node: args
                .connect_node_peer
                .clone()
                .unwrap_or_else(|| root.join("bench/peers/connect-node")),
            node: args.node.clone(),
        };
        results.peers = Some(peers::run(&ctx, &seeded, &cfg).await?);
    }
    if matches!(args.only, None | Some(Part::Streaming)) {
        let counts = if !args.streams.is_empty() {
            args.streams.clone()
        } else if args.quick {
            vec![500]
        } else {
            vec![1000, 10_000]
        };
        streaming(&ctx, &counts, &mut results).await?;
    }
    if matches!(args.only, None | Some(Part::Cluster)) {
        let secs = args
            .cluster_duration
            .unwrap_or(if args.quick { 2.0 } else { 4.0 });
        let cfg = cluster::ClusterConfig {
            quick: args.quick,
            articles: args.articles,
            duration: Duration::from_secs_f64(secs),
            warmup: Duration::from_secs_f64(if args.quick { 1.0 } else { 2.0 }),
            list_rounds: 3,
            write_duration: Duration::from_secs_f64(secs * 0.75),
            write_rounds: 2,
            writers: vec![1, 8, 64],
            watchers: args
                .cluster_watchers
                .unwrap_or(if args.quick { 600 } else { 3000 }),
            rounds: 5,
        };
        results.cluster = Some(cluster::run(&ctx, &cfg).await?);
    }
    if matches!(args.only, None | Some(Part::Browser)) {
        let tools = root.join("target").join("tools");
        let cfg = browser::BrowserConfig {
            dist: args
                .web_dist
                .clone()
                .unwrap_or_else(|| root.join("web").join("dist")),
            decode_pkg: args
                .decode_pkg
                .clone()
                .unwrap_or_else(|| root.join("target").join("bench-wasm-decode")),
            protobuf_es: args
                .protobuf_es
                .clone()
                .unwrap_or_else(|| tools.join("node_modules/@bufbuild/protobuf/dist/esm")),
            chromedriver: args.chromedriver.clone(),
            chromium: args.chromium.clone(),
            geckodriver: args.geckodriver.clone(),
            loads: args.loads.unwrap_or(if args.quick { 3 } else { 10 }),
            decode_samples: args
                .decode_samples
                .unwrap_or(if args.quick { 10 } else { 50 }),
            decode_warmup_ms: if args.quick { 300 } else { 1000 },
        };
        results.browser = Some(browser::run(&ctx, &cfg, args.articles).await?);
    }

    if args.only == Some(Part::Overload) {
        let duration = ctx.load.duration;
        let overload = overload::run(&ctx, duration).await?;
        let path = work.join("overload.json");
        std::fs::write(&path, serde_json::to_string_pretty(&overload)?)?;
        step(&format!("wrote {}", path.display()));
        return Ok(());
    }

    let machine = machine.finish();
    let out = args.out.clone().unwrap_or_else(|| {
        if args.quick {
            work.join("BENCHMARKS.quick.md")
        } else {
            root.join("BENCHMARKS.md")
        }
    });
    // Each part's figures between its own markers: `--only browser` keeps
    // the server results, and the other parts keep the browser's.
    if !matches!(args.only, Some(Part::Browser | Part::Cluster | Part::Peers)) {
        let section = report::render(&machine, &results);
        report::write(&out, report::BEGIN, report::END, &section)?;
    }
    if let Some(browser) = &results.browser {
        let section = report::render_browser(&machine, results.quick, browser);
        report::write(&out, report::BROWSER_BEGIN, report::BROWSER_END, &section)?;
    }
    if let Some(cluster) = &results.cluster {
        let section = cluster::render(machine.commit(), cluster);
        report::write(&out, cluster::BEGIN, cluster::END, &section)?;
    }
    if let Some(peers) = &results.peers {
        let section = peers::render(machine.commit(), peers);
        report::write(&out, peers::BEGIN, peers::END, &section)?;
    }
    std::fs::write(
        work.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "unary": results.unary,
            "wire": results.wire,
            "streams": results.streams,
            "browser": results.browser,
            "cluster": results.cluster,
            "peers": results.peers,
        }))?,
    )?;
    step(&format!("wrote {}", out.display()));
    println!("{}", report::targets_text(&results));
    if let Some(peers) = &results.peers {
        println!("{}", peers.targets_text());
    }
    Ok(())
}

fn step(what: &str) {
    println!("==> {what}");
}

fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

async fn unary(
    ctx: &Ctx,
    seeded: &seed::Seeded,
    server_only: bool,
    results: &mut Results,
) -> anyhow::Result<()> {
    if !server_only {
        physical_limit(ctx, seeded, results).await?;
    }
    let list = grpc::LIST_PATH;
    let reference = &seeded.reference[..];

    // (2) and (3): this server, both protocols.
    step("(2)/(3) article-server: gRPC-web over HTTP/1.1, gRPC over h2c");
    let server = ctx.article_server("server").await?;
    let (_, web_same) = grpc::check_list(server.addr, Wire::GrpcWeb, reference).await?;
    let (_, h2_same) = grpc::check_list(server.addr, Wire::Grpc, reference).await?;
    measure(
        ctx,
        results,
        "server-web",
        "(2) this server, gRPC-web (HTTP/1.1)",
        Some(web_same),
        Load::OhaGrpcWeb {
            url: url(&server, list),
        },
        &[server.pid],
    )
    .await?;
    measure(
        ctx,
        results,
        "server-grpc",
        "(3) this server, gRPC (h2c)",
        Some(h2_same),
        Load::H2load {
            url: url(&server, list),
        },
        &[server.pid],
    )
    .await?;
    measure(
        ctx,
        results,
        "server-grpc-oha",
        "(3) this server, gRPC (h2c), cross-check",
        Some(h2_same),
        Load::OhaGrpcH2 {
            url: url(&server, list),
        },
        &[server.pid],
    )
    .await?;

    if server_only {
        return server.stop().await;
    }

    // (4) the gateway in front of a server of its own.
    step("(4) JSON gateway (axum) calling the server over gRPC");
    let gateway = ctx
        .bench_bin(
            "json-gateway",
            "gateway",
            &["--upstream".into(), format!("http://{}", server.addr)],
        )
        .await?;
    let json_path = "/v1/articles?page_size=20";
    let (_, status) =
        wire::exchange(gateway.addr, &format!("GET {json_path} HTTP/1.1"), &[]).await?;
    if !status.contains(" 200") {
        bail!("the gateway answered {status}");
    }
    results.wire = Some(wire_bytes(&server, &gateway, json_path).await?);
    measure(
        ctx,
        results,
        "gateway",
        "(4) JSON gateway → this server",
        None,
        Load::OhaGet {
            url: url(&gateway, json_path),
        },
        &[gateway.pid, server.pid],
    )
    .await?;
    gateway.stop().await?;
    server.stop().await?;

    // (5) the seeds' stack.
    match &ctx.python {
        Some(python) => {
            step("(5) Python grpc.aio");
            let python_server = start_python(ctx, python).await?;
            let (_, same) = grpc::check_list(python_server.addr, Wire::Grpc, reference).await?;
            measure(
                ctx,
                results,
                "python",
                "(5) Python grpc.aio (h2c)",
                Some(same),
                Load::H2load {
                    url: url(&python_server, list),
                },
                &[python_server.pid],
            )
            .await?;
            python_server.stop().await?;
        }
        None => results.skipped.push("(5) Python: no --python given".into()),
    }
    Ok(())
}

/// (1) The physical limit: the same answer, replayed.
async fn physical_limit(
    ctx: &Ctx,
    seeded: &seed::Seeded,
    results: &mut Results,
) -> anyhow::Result<()> {
    step("(1) physical limit: hyper replaying the answer");
    replaying_system(
        ctx,
        seeded,
        results,
        "limit-server",
        ["limit-h1", "limit-h2"],
        [
            "(1) physical limit, HTTP/1.1 gRPC-web",
            "(1) physical limit, h2c gRPC",
        ],
    )
    .await?;

    // (1b) tonic alone: the same answer through tonic + tonic-web, none of
    // this server's layers and no storage. Splits the gap between (1) and
    // (2)/(3) into the framework's part and ours.
    step("(1b) tonic floor: bare tonic + tonic-web answering the same page");
    replaying_system(
        ctx,
        seeded,
        results,
        "tonic-floor",
        ["floor-h1", "floor-h2"],
        [
            "(1b) tonic floor, HTTP/1.1 gRPC-web",
            "(1b) tonic floor, h2c gRPC",
        ],
    )
    .await
}

/// Starts `bin` on the captured responses, checks its answer over both
/// protocols and measures gRPC-web (HTTP/1.1) and gRPC (h2c), recorded
/// under `keys` and `systems` in that order.
async fn replaying_system(
    ctx: &Ctx,
    seeded: &seed::Seeded,
    results: &mut Results,
    bin: &str,
    keys: [&'static str; 2],
    systems: [&'static str; 2],
) -> anyhow::Result<()> {
    let list = grpc::LIST_PATH;
    let reference = &seeded.reference[..];
    let responses = ctx.work.join("limit").display().to_string();
    let server = ctx
        .bench_bin(bin, bin, &["--responses".into(), responses])
        .await?;
    let (_, web_same) = grpc::check_list(server.addr, Wire::GrpcWeb, reference).await?;
    let (_, h2_same) = grpc::check_list(server.addr, Wire::Grpc, reference).await?;
    measure(
        ctx,
        results,
        keys[0],
        systems[0],
        Some(web_same),
        Load::OhaGrpcWeb {
            url: url(&server, list),
        },
        &[server.pid],
    )
    .await?;
    measure(
        ctx,
        results,
        keys[1],
        systems[1],
        Some(h2_same),
        Load::H2load {
            url: url(&server, list),
        },
        &[server.pid],
    )
    .await?;
    server.stop().await
}

/// One measured run of `load` against the processes `pids`, recorded
/// under `key`.
async fn measure(
    ctx: &Ctx,
    results: &mut Results,
    key: &'static str,
    system: &'static str,
    identical: Option<bool>,
    load: Load,
    pids: &[u32],
) -> anyhow::Result<()> {
    let result = load::run(&ctx.load, &load, pids, &ctx.work.join("logs"), key).await?;
    println!("    {system}: {result}");
    results.unary.push(UnaryRun {
        key,
        system,
        tool: load.tool(),
        identical,
        result,
    });
    Ok(())
}

async fn wire_bytes(
    server: &Server,
    gateway: &Server,
    json_path: &str,
) -> anyhow::Result<WireComparison> {
    let body = grpc::list_request_body();
    let web_head = format!(
        "POST {} HTTP/1.1\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1",
        grpc::LIST_PATH
    );
    let (grpc_web, _) = wire::exchange(server.addr, &web_head, &body).await?;
    let (grpc_web_gzip, _) = wire::exchange(
        server.addr,
        &format!("{web_head}\r\nGrpc-Accept-Encoding: gzip"),
        &body,
    )
    .await?;
    let json_head = format!("GET {json_path} HTTP/1.1\r\nAccept: application/json");
    let (json, _) = wire::exchange(gateway.addr, &json_head, &[]).await?;
    let (json_gzip, _) = wire::exchange(
        gateway.addr,
        &format!("{json_head}\r\nAccept-Encoding: gzip"),
        &[],
    )
    .await?;
    Ok(WireComparison {
        grpc_web,
        grpc_web_gzip,
        json,
        json_gzip,
    })
}

async fn start_python(ctx: &Ctx, python: &Path) -> anyhow::Result<Server> {
    let stubs = ctx.work.join("py");
    std::fs::create_dir_all(&stubs)?;
    let status = Command::new(python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(ctx.root.join("proto"))
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg("article/v1/article.proto")
        .status()
        .await
        .context("running grpc_tools.protoc")?;
    if !status.success() {
        bail!("grpc_tools.protoc failed ({status})");
    }
    let mut cmd = process::command(python, ctx.server_cpus.as_deref());
    cmd.arg(ctx.root.join("bench").join("python").join("server.py"))
        .arg("--data")
        .arg(ctx.work.join("articles.pb"))
        .arg("--stubs")
        .arg(&stubs)
        .env("PYTHONUNBUFFERED", "1");
    Server::start("python", cmd, &ctx.log("python")).await
}

async fn streaming(ctx: &Ctx, counts: &[usize], results: &mut Results) -> anyhow::Result<()> {
    // HTTP/2 multiplexed (one client with many streams), HTTP/2 with one
    // stream per connection (many browsers), HTTP/1.1 (one per connection).
    for (transport, per_connection) in [("h2", 100), ("h2", 1), ("h1", 1)] {
        for &n in counts {
            step(&format!(
                "WatchArticles: {n} streams over {transport}, {per_connection} per connection"
            ));
            let name = format!("watch-{transport}x{per_connection}-{n}");
            let server = ctx.article_server(&name).await?;
            // Warm the server the same way before every count.
            let _ = grpc::call(
                server.addr,
                Wire::Grpc,
                grpc::LIST_PATH,
                grpc::list_request_body(),
            )
            .await?;
            let mut cmd = process::command(ctx.bins.join("watch-fanout"), ctx.load.cpus.as_deref());
            cmd.arg("--url")
                .arg(format!("http://{}", server.addr))
                .args(["--server-pid", &server.pid.to_string()])
                .args(["--streams", &n.to_string(), "--transport", transport])
                .args(["--streams-per-connection", &per_connection.to_string()])
                .env("ARTICLE_TOKEN", TOKEN);
            let out = cmd.output().await.context("running watch-fanout")?;
            std::fs::write(
                ctx.log(&format!("{name}-client")),
                [&out.stdout[..], &out.stderr[..]].concat(),
            )?;
            let stopped = server.stop().await;
            if !out.status.success() {
                bail!(
                    "watch-fanout failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            stopped?;
            let line = String::from_utf8_lossy(&out.stdout);
            let r: StreamRun = serde_json::from_str(line.trim().lines().last().unwrap_or_default())
                .context("watch-fanout printed no result")?;
            println!(
                "    RSS {:.1} → {:.1} MiB ({:.1} KiB/stream), fan-out p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                r.rss_before_mib,
                r.rss_open_mib,
                r.rss_per_stream_kib,
                r.fanout_p50_ms,
                r.fanout_p99_ms,
                r.fanout_max_ms
            );
            results.streams.push(r);
        }
    }
    Ok(())
}
