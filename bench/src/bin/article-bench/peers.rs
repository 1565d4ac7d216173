//! The peers part (`--only peers`, issue 12): this server against the two
//! Connect peers answering the same ListArticles page from memory, side by
//! side in the same run.
//!
//! - **connect-rust** (`bench/peers/connect-rust`, crate `connectrpc` with
//!   its own code generation): one process, gRPC (h2c), gRPC-web
//!   (HTTP/1.1) and Connect on one port; it answers the page encoded once
//!   at start, as this server answers its cached page (kept encoded).
//! - **Connect for Node** (`bench/peers/connect-node`,
//!   `@connectrpc/connect-node`): the page decoded once at start and
//!   serialized on each call (its handlers return messages); gRPC-web on a
//!   port of its own (Node's cleartext HTTP/2 server takes no HTTP/1.1).
//!
//! Method: h2load for both protocols (`--h1` for gRPC-web), 16
//! connections with one request in flight each, every server pinned to
//! the same single core and the load generator to the others; rounds
//! alternate (this server, connect-rust, Node, the tonic floor, the bare
//! hyper replay; gRPC-web then gRPC each), so a machine loaded by other
//! work weighs on every system alike. Each row is the median round by req/s; each ratio is the
//! median over rounds of that round's ratio, in requests per server core.
//! All servers stay up for the whole part; only the measured one is
//! loaded. The tonic floor (`tonic-floor`, bare tonic + tonic-web) is a
//! reference row without a target: it tells the framework's share of a
//! gap from this server's own.
//!
//! The bare hyper replay (`limit-server`) is the second reference row
//! without a target: a minimal hyper server answering every call with the
//! captured bytes of this server's answer (no routing, no decoding, no
//! gRPC), what any hyper-based server pays at least. The report's
//! "Ceiling" paragraph sets 1.2 × connect-rust against it, per protocol,
//! from the same run.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use article_bench::{
    grpc::{self, Wire},
    process::{self, Server},
};
use serde::Serialize;
use tokio::process::Command;

use crate::{
    Ctx,
    load::{self, Load, LoadConfig, LoadResult},
    seed::Seeded,
};

pub const BEGIN: &str = "<!-- bench:peers:begin (written by `cargo xtask bench`) -->";
pub const END: &str = "<!-- bench:peers:end -->";

/// The bar: this server ≥ 1.2 × each peer, per protocol, in
/// requests per server core.
const TARGET: f64 = 1.2;

pub struct PeersConfig {
    pub quick: bool,
    pub rounds: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// The built `connect-rust-peer` binary.
    pub connect_rust: PathBuf,
    /// `bench/peers/connect-node` with its `node_modules` installed.
    pub connect_node: PathBuf,
    pub node: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum System {
    Ours,
    ConnectRust,
    ConnectNode,
    /// Reference, no target: bare tonic + tonic-web answering the page
    /// (`tonic-floor`), to split a gap into the framework's part and ours.
    TonicFloor,
    /// Reference, no target: a bare hyper server replaying the captured
    /// bytes of this server's answer (`limit-server`), the least any
    /// hyper-based server pays per call.
    HyperReplay,
}

impl System {
    const ALL: [System; 5] = [
        System::Ours,
        System::ConnectRust,
        System::ConnectNode,
        System::TonicFloor,
        System::HyperReplay,
    ];

    fn name(self) -> &'static str {
        match self {
            System::Ours => "this server",
            System::ConnectRust => "connect-rust",
            System::ConnectNode => "Connect for Node",
            System::TonicFloor => "tonic floor (reference)",
            System::HyperReplay => "bare hyper replay (reference)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            System::Ours => "ours",
            System::ConnectRust => "connect-rust",
            System::ConnectNode => "connect-node",
            System::TonicFloor => "tonic-floor",
            System::HyperReplay => "hyper-replay",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Protocol {
    GrpcWeb,
    Grpc,
}

impl Protocol {
    const ALL: [Protocol; 2] = [Protocol::GrpcWeb, Protocol::Grpc];

    fn name(self) -> &'static str {
        match self {
            Protocol::GrpcWeb => "gRPC-web (HTTP/1.1)",
            Protocol::Grpc => "gRPC (h2c)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Protocol::GrpcWeb => "web",
            Protocol::Grpc => "grpc",
        }
    }
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRun {
    pub system: System,
    pub protocol: Protocol,
    pub round: usize,
    pub result: LoadResult,
}

/// Whether a system's answer over a protocol is the reference, byte for byte.
#[derive(Clone, Debug, Serialize)]
pub struct SameBytes {
    pub system: System,
    pub protocol: Protocol,
    pub identical: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeersResults {
    pub quick: bool,
    pub date: String,
    pub uptime_before: String,
    pub uptime_after: String,
    /// The one CPU every server is pinned to, and the load generator's.
    pub pinning: Option<(String, String)>,
    pub connections: usize,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub rounds: usize,
    pub versions: Vec<String>,
    pub same_bytes: Vec<SameBytes>,
    pub runs: Vec<PeerRun>,
}

async fn uptime() -> String {
    match Command::new("uptime").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(_) => std::fs::read_to_string("/proc/loadavg")
            .map(|l| format!("load average {}", l.trim()))
            .unwrap_or_else(|_| "?".into()),
    }
}

/// The first CPU of a `taskset -c` list such as `1`, `2-3` or `4,6`.
fn first_cpu(list: &str) -> String {
    list.split([',', '-'])
        .next()
        .unwrap_or(list)
        .trim()
        .to_owned()
}

/// `version = "X"` of `package` in a Cargo.lock.
fn lock_version(lock: &Path, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(lock).ok()?;
    let wanted = format!("name = \"{package}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            return lines
                .next()?
                .trim()
                .strip_prefix("version = ")
                .map(|v| v.trim_matches('"').to_owned());
        }
    }
    None
}

/// `"version"` of an installed npm package.
fn npm_version(node_modules: &Path, package: &str) -> Option<String> {
    let manifest = std::fs::read_to_string(node_modules.join(package).join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    v.get("version")?.as_str().map(str::to_owned)
}

async fn versions(root: &Path, cfg: &PeersConfig) -> Vec<String> {
    let mut v = Vec::new();
    let lock = root.join("bench/peers/connect-rust/Cargo.lock");
    if let Some(cr) = lock_version(&lock, "connectrpc") {
        v.push(format!("connectrpc {cr}"));
    }
    if let Ok(out) = Command::new(&cfg.node).arg("--version").output().await {
        v.push(format!(
            "Node {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    let modules = cfg.connect_node.join("node_modules");
    for package in ["@connectrpc/connect-node", "@bufbuild/protobuf"] {
        if let Some(version) = npm_version(&modules, package) {
            v.push(format!("{package} {version}"));
        }
    }
    v
}

/// The five servers, each pinned to `cpu`.
struct Servers {
    ours: Server,
    connect_rust: Server,
    connect_node: Server,
    tonic_floor: Server,
    hyper_replay: Server,
    /// Node's gRPC-web port (its `listening on` line is the h2c port).
    node_web: std::net::SocketAddr,
}

impl Servers {
    fn get(&self, system: System) -> &Server {
        match system {
            System::Ours => &self.ours,
            System::ConnectRust => &self.connect_rust,
            System::ConnectNode => &self.connect_node,
            System::TonicFloor => &self.tonic_floor,
            System::HyperReplay => &self.hyper_replay,
        }
    }

    fn addr(&self, system: System, protocol: Protocol) -> std::net::SocketAddr {
        match (system, protocol) {
            (System::ConnectNode, Protocol::GrpcWeb) => self.node_web,
            _ => self.get(system).addr,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let a = self.ours.stop().await;
        let b = self.connect_rust.stop().await;
        let c = self.connect_node.stop().await;
        let d = self.tonic_floor.stop().await;
        let e = self.hyper_replay.stop().await;
        a.and(b).and(c).and(d).and(e)
    }
}

async fn start(ctx: &Ctx, cfg: &PeersConfig, cpu: Option<&str>) -> anyhow::Result<Servers> {
    if !cfg.connect_rust.is_file() {
        bail!(
            "{} not found: `cargo xtask bench` builds it (bench/peers/connect-rust)",
            cfg.connect_rust.display()
        );
    }
    if !cfg.connect_node.join("node_modules").is_dir() {
        bail!(
            "{} has no node_modules: `cargo xtask bench` runs `npm ci` there",
            cfg.connect_node.display()
        );
    }
    let responses = ctx.work.join("limit");
    let descriptors = ctx.work.join("article.binpb");
    std::fs::write(&descriptors, proto::FILE_DESCRIPTOR_SET)?;

    let ours = ctx.article_server_pinned("peers-ours", cpu).await?;

    let mut cmd = process::command(&cfg.connect_rust, cpu);
    cmd.arg("--responses").arg(&responses);
    let connect_rust = Server::start("connect-rust", cmd, &ctx.log("peers-connect-rust")).await?;

    let mut cmd = process::command(&cfg.node, cpu);
    cmd.arg(cfg.connect_node.join("server.mjs"))
        .arg("--descriptors")
        .arg(&descriptors)
        .arg("--responses")
        .arg(&responses);
    let connect_node = Server::start("connect-node", cmd, &ctx.log("peers-connect-node")).await?;
    let node_web = connect_node
        .before_listening
        .iter()
        .find_map(|l| l.strip_prefix("grpc-web on http://"))
        .context("the Node peer printed no `grpc-web on http://…` line")?
        .parse()
        .context("the Node peer's gRPC-web address")?;
    let mut cmd = process::command(ctx.bins.join("tonic-floor"), cpu);
    cmd.arg("--responses").arg(&responses);
    let tonic_floor = Server::start("tonic-floor", cmd, &ctx.log("peers-tonic-floor")).await?;
    // The bare hyper replay: the captured bytes of this server's answer,
    // headers, frames and trailers, for every call.
    let mut cmd = process::command(ctx.bins.join("limit-server"), cpu);
    cmd.arg("--responses").arg(&responses);
    let hyper_replay = Server::start("limit-server", cmd, &ctx.log("peers-hyper-replay")).await?;
    Ok(Servers {
        ours,
        connect_rust,
        connect_node,
        tonic_floor,
        hyper_replay,
        node_web,
    })
}

pub async fn run(ctx: &Ctx, seeded: &Seeded, cfg: &PeersConfig) -> anyhow::Result<PeersResults> {
    let uptime_before = uptime().await;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    // One core for the servers, as the issue measures it.
    let cpu = ctx.server_cpus.as_deref().map(first_cpu);
    let load_cfg = LoadConfig {
        connections: cfg.connections,
        duration: cfg.duration,
        warmup: cfg.warmup,
        ..ctx.load.clone()
    };
    let servers = start(ctx, cfg, cpu.as_deref()).await?;
    let result = measure_all(ctx, seeded, cfg, &load_cfg, &servers).await;
    let stopped = servers.stop().await;
    let (same_bytes, runs) = result?;
    stopped?;
    Ok(PeersResults {
        quick: cfg.quick,
        date,
        uptime_before,
        uptime_after: uptime().await,
        pinning: cpu.zip(load_cfg.cpus.clone()),
        connections: cfg.connections,
        duration_secs: cfg.duration.as_secs_f64(),
        warmup_secs: cfg.warmup.as_secs_f64(),
        rounds: cfg.rounds,
        versions: versions(&ctx.root, cfg).await,
        same_bytes,
        runs,
    })
}

async fn measure_all(
    ctx: &Ctx,
    seeded: &Seeded,
    cfg: &PeersConfig,
    load_cfg: &LoadConfig,
    servers: &Servers,
) -> anyhow::Result<(Vec<SameBytes>, Vec<PeerRun>)> {
    let mut same_bytes = Vec::new();
    for system in System::ALL {
        for protocol in Protocol::ALL {
            let wire = match protocol {
                Protocol::GrpcWeb => Wire::GrpcWeb,
                Protocol::Grpc => Wire::Grpc,
            };
            let (_, identical) =
                grpc::check_list(servers.addr(system, protocol), wire, &seeded.reference)
                    .await
                    .with_context(|| format!("{} over {}", system.name(), protocol.name()))?;
            same_bytes.push(SameBytes {
                system,
                protocol,
                identical,
            });
        }
    }

    let mut runs = Vec::new();
    for round in 1..=cfg.rounds {
        crate::step(&format!("peers: round {round} of {}", cfg.rounds));
        for system in System::ALL {
            for protocol in Protocol::ALL {
                let url = format!(
                    "http://{}{}",
                    servers.addr(system, protocol),
                    grpc::LIST_PATH
                );
                let load = match protocol {
                    Protocol::GrpcWeb => Load::H2loadGrpcWeb { url },
                    Protocol::Grpc => Load::H2load { url },
                };
                let name = format!("peers-{}-{}-r{round}", system.key(), protocol.key());
                let pid = servers.get(system).pid;
                let result =
                    load::run(load_cfg, &load, &[pid], &ctx.work.join("logs"), &name).await?;
                println!("    {} {}: {result}", system.name(), protocol.name());
                runs.push(PeerRun {
                    system,
                    protocol,
                    round,
                    result,
                });
            }
        }
    }
    Ok((same_bytes, runs))
}

fn per_core(r: &LoadResult) -> f64 {
    if r.server.cpu_cores > 0.0 {
        r.rps / r.server.cpu_cores
    } else {
        f64::NAN
    }
}

/// The middle value (the upper of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

impl PeersResults {
    fn runs(&self, system: System, protocol: Protocol) -> impl Iterator<Item = &PeerRun> {
        self.runs
            .iter()
            .filter(move |r| r.system == system && r.protocol == protocol)
    }

    /// The median round by req/s.
    fn median_run(&self, system: System, protocol: Protocol) -> Option<&PeerRun> {
        let mut runs: Vec<&PeerRun> = self.runs(system, protocol).collect();
        runs.sort_by(|a, b| a.result.rps.total_cmp(&b.result.rps));
        runs.get(runs.len() / 2).copied()
    }

    /// Median over rounds of (this server ÷ `peer`) in that round, by
    /// `value` of each run.
    fn ratio(
        &self,
        peer: System,
        protocol: Protocol,
        value: fn(&LoadResult) -> f64,
    ) -> Option<f64> {
        let ratios = self
            .runs(System::Ours, protocol)
            .filter_map(|ours| {
                let theirs = self.runs(peer, protocol).find(|r| r.round == ours.round)?;
                Some(value(&ours.result) / value(&theirs.result))
            })
            .collect();
        median(ratios)
    }

    /// (1.2 × connect-rust, the bare hyper replay) over `protocol`, in
    /// req/s per server core of each one's median run (the table's rows).
    fn ceiling(&self, protocol: Protocol) -> Option<(f64, f64)> {
        let target = TARGET * per_core(&self.median_run(System::ConnectRust, protocol)?.result);
        let replay = per_core(&self.median_run(System::HyperReplay, protocol)?.result);
        (target.is_finite() && replay.is_finite() && replay > 0.0).then_some((target, replay))
    }

    fn identical(&self, system: System, protocol: Protocol) -> Option<bool> {
        self.same_bytes
            .iter()
            .find(|s| s.system == system && s.protocol == protocol)
            .map(|s| s.identical)
    }

    /// (target, measured, met?) for each peer and protocol.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        let mut rows = Vec::new();
        for peer in [System::ConnectRust, System::ConnectNode] {
            for protocol in Protocol::ALL {
                let per_core_ratio = self.ratio(peer, protocol, per_core);
                let rps_ratio = self.ratio(peer, protocol, |r| r.rps);
                rows.push((
                    format!(
                        "{} ≥ {TARGET} × {} over {}, per server core",
                        System::Ours.name(),
                        peer.name(),
                        protocol.name()
                    ),
                    match (per_core_ratio, rps_ratio) {
                        (Some(c), Some(r)) => format!("{c:.2} × per core ({r:.2} × req/s)"),
                        _ => "not measured".into(),
                    },
                    per_core_ratio.map(|c| c >= TARGET),
                ));
            }
        }
        rows
    }

    pub fn targets_text(&self) -> String {
        self.targets()
            .into_iter()
            .map(|(t, m, met)| format!("  {t:<80} {m:<36} {}", verdict(met)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "equal after decoding",
        None => "?",
    }
}

pub fn render(commit: &str, r: &PeersResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Peers: connect-rust and Connect for Node (issue 12)\n\n\
         _{} run of {} at commit `{}`. `uptime` before the part: `{}`; after: `{}`. {}_\n",
        if r.quick { "A quick (smoke)" } else { "Full" },
        r.date,
        commit,
        r.uptime_before,
        r.uptime_after,
        r.versions.join("; "),
    );
    if r.quick {
        let _ = writeln!(s, "> Quick run: durations too short for conclusions.\n");
    }
    let _ = writeln!(
        s,
        "Method: the same pre-encoded `ListArticles {{ page_size: 20 }}` to every system, h2load \
         for both protocols (`--h1` for gRPC-web), {} connections with one request in flight \
         each, {} s measured after {} s of warm-up per run. {} {} in turn (this server, \
         connect-rust, Node, tonic floor, bare hyper replay; gRPC-web then gRPC in each); all \
         servers stay up, only the measured one is loaded. Each row is the median round by req/s; each ratio is the median \
         over rounds of that round's ratio, so the machine's load weighs on both sides alike.\n",
        r.connections,
        r.duration_secs,
        r.warmup_secs,
        match &r.pinning {
            Some((server, load)) =>
                format!("Every server pinned to CPU {server} (one core), h2load to CPU {load}."),
            None => "Nothing pinned.".to_owned(),
        },
        if r.rounds == 1 {
            "1 round".to_owned()
        } else {
            format!("{} rounds", r.rounds)
        },
    );
    let _ = writeln!(
        s,
        "- **this server**: article-server as shipped, the page answered from its cache (kept \
         encoded), gRPC-web and gRPC on one port.\n\
         - **connect-rust** (`bench/peers/connect-rust`, crate `connectrpc` and its codegen): the \
         page decoded into its own message type and encoded once at start, every call answers \
         those bytes (the same work per call as this server's cache); one port.\n\
         - **Connect for Node** (`bench/peers/connect-node`, `@connectrpc/connect-node`, types \
         from the API's descriptors at run time): the page decoded once at start, serialized on \
         every call (its handlers return messages); **two ports**, gRPC-web on its own (Node's \
         cleartext HTTP/2 server takes no HTTP/1.1).\n\
         - **tonic floor** (reference, no target): bare tonic + tonic-web (`tonic-floor`), a \
         clone of the decoded page encoded on every call; none of this server's layers.\n\
         - **bare hyper replay** (reference, no target): a minimal hyper server (`limit-server`) \
         answering every call with the captured bytes of this server's answer (headers, frames, \
         trailers): no routing, no decoding, no gRPC; what any hyper-based server pays at least. \
         Its bytes are this server's captured answer, so its \"same bytes\" is yes by \
         construction (the check still runs).\n"
    );
    let _ = writeln!(
        s,
        "| system | protocol | req/s | p50 ms | p99 ms | server CPU (cores) | req/s per server core | RSS MiB | failed | same bytes |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for protocol in Protocol::ALL {
        for system in System::ALL {
            let Some(run) = r.median_run(system, protocol) else {
                continue;
            };
            let x = &run.result;
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {} | {} |",
                system.name(),
                protocol.name(),
                x.rps,
                x.p50_ms,
                x.p99_ms,
                x.server.cpu_cores,
                per_core(x),
                x.server.peak_rss_mib,
                x.failed,
                yes_no(r.identical(system, protocol)),
            );
        }
    }
    let _ = writeln!(s, "\n| target | measured | |\n|---|---|---|");
    for (target, measured, met) in r.targets() {
        let _ = writeln!(
            s,
            "| {target} | {measured} | {} |",
            match met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            }
        );
    }
    let ceiling: Vec<String> = Protocol::ALL
        .into_iter()
        .filter_map(|protocol| {
            let (target, replay) = r.ceiling(protocol)?;
            Some(format!(
                "Over {}, {TARGET} × {} = {target:.0} req/s per server core; the bare hyper \
                 replay reached {replay:.0} ({TARGET} × {} is {:.2} × the replay).",
                protocol.name(),
                System::ConnectRust.name(),
                System::ConnectRust.name(),
                target / replay,
            ))
        })
        .collect();
    if !ceiling.is_empty() {
        let _ = writeln!(
            s,
            "\nCeiling: the bare hyper replay is what any hyper-based server pays at least; \
             the figures are the median rows of the first table. {}",
            ceiling.join(" ")
        );
    }
    let _ = writeln!(s, "\nEvery round, req/s (server CPU in cores):\n");
    let mut head = String::from("| round |");
    let mut rule = String::from("|---:|");
    for protocol in Protocol::ALL {
        for system in System::ALL {
            let _ = write!(
                head,
                " {}, {} |",
                system.name(),
                match protocol {
                    Protocol::GrpcWeb => "gRPC-web",
                    Protocol::Grpc => "gRPC",
                }
            );
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for round in 1..=r.rounds {
        let mut line = format!("| {round} |");
        for protocol in Protocol::ALL {
            for system in System::ALL {
                match r.runs(system, protocol).find(|run| run.round == round) {
                    Some(run) => {
                        let _ = write!(
                            line,
                            " {:.0} ({:.2}) |",
                            run.result.rps, run.result.server.cpu_cores
                        );
                    }
                    None => line.push_str(" – |"),
                }
            }
        }
        let _ = writeln!(s, "{line}");
    }
    s
}
