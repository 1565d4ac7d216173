//! The results as Markdown: the machine, each target met or missed, the
//! unary table, bytes on the wire and the streaming table; and, between
//! markers of their own, the browser figures. Written between the markers
//! of `BENCHMARKS.md`, so the hand-written parts of that file (method,
//! profile notes) are kept.

use std::{fmt::Write as _, path::Path};

use tokio::process::Command;

use crate::{
    Args, Results, StreamRun, UnaryRun,
    browser::{BrowserResults, VisitFile, median},
    load::LoadResult,
};

pub const BEGIN: &str = "<!-- bench:results:begin (written by `cargo xtask bench`) -->";
pub const END: &str = "<!-- bench:results:end -->";
pub const BROWSER_BEGIN: &str = "<!-- bench:browser:begin (written by `cargo xtask bench`) -->";
pub const BROWSER_END: &str = "<!-- bench:browser:end -->";

/// The budget for the whole app, wasm + JS, gzip (1 KB = 1,000 B).
const BUNDLE_TARGET_GZIP: u64 = 150_000;

/// Where and when the figures were taken.
pub struct Machine {
    date: String,
    cpu: String,
    nproc: usize,
    memory: String,
    kernel: String,
    load_before: String,
    load_after: String,
    commit: String,
    tools: Vec<String>,
    nofile: u64,
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

async fn version(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().await.ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some(first_line(&text))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

impl Machine {
    pub async fn read(args: &Args, nofile: u64) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "?".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kib: f64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            })
            .unwrap_or_else(|| "?".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let commit = Command::new("git")
            .args(["-C"])
            .arg(&args.root)
            .args(["describe", "--always", "--dirty"])
            .output()
            .await
            .ok()
            .map(|o| first_line(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default();
        let mut tools = Vec::new();
        if let Some(v) = version(&args.oha, &["--version"]).await {
            tools.push(v);
        }
        if let Some(v) = version(&args.h2load, &["--version"]).await {
            tools.push(v);
        }
        if let Some(python) = &args.python {
            let v = version(
                python,
                &[
                    "-c",
                    "import sys, grpc, google.protobuf as p; print(f'Python {sys.version.split()[0]}, grpcio {grpc.__version__}, protobuf {p.__version__}')",
                ],
            )
            .await;
            tools.extend(v);
        }
        if let Some(v) = version(Path::new("rustc"), &["--version"]).await {
            tools.push(v);
        }
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            cpu,
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            kernel,
            load_before: loadavg(),
            load_after: String::new(),
            commit,
            tools,
            nofile,
        }
    }

    pub fn finish(mut self) -> Self {
        self.load_after = loadavg();
        self
    }

    /// `git describe --always --dirty` of the workspace.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    pub fn summary(&self) -> String {
        format!(
            "{} × {}, {}, load average {}",
            self.nproc, self.cpu, self.memory, self.load_before
        )
    }
}

fn unary<'a>(results: &'a Results, key: &str) -> Option<&'a UnaryRun> {
    results.unary.iter().find(|u| u.key == key)
}

fn rps(results: &Results, key: &str) -> Option<f64> {
    unary(results, key).map(|u| u.result.rps)
}

/// Requests per second per CPU core the server side used.
fn per_core(r: &LoadResult) -> f64 {
    if r.server.cpu_cores > 0.0 {
        r.rps / r.server.cpu_cores
    } else {
        f64::NAN
    }
}

/// (target, measured, met?) for every target of the issue.
fn targets(results: &Results) -> Vec<(String, String, Option<bool>)> {
    /// Throughput ratio a / b, with the ratio of req/s per server CPU core
    /// beside it (telling when a load generator, not the server, was the
    /// bottleneck).
    fn ratio(
        label: &str,
        a: Option<&LoadResult>,
        b: Option<&LoadResult>,
        min: f64,
    ) -> (String, String, Option<bool>) {
        let (measured, met) = match (a, b) {
            (Some(a), Some(b)) if b.rps > 0.0 => (
                format!(
                    "{:.2} × (per server core: {:.2} ×)",
                    a.rps / b.rps,
                    per_core(a) / per_core(b)
                ),
                Some(a.rps / b.rps >= min),
            ),
            _ => ("not measured".to_owned(), None),
        };
        (label.to_owned(), measured, met)
    }
    let get = |key| unary(results, key).map(|u| &u.result);
    let web = get("server-web");
    let mut rows = vec![
        ratio(
            "(2) gRPC-web ≥ 0.70 × (1) physical limit, HTTP/1.1",
            web,
            get("limit-h1"),
            0.70,
        ),
        ratio(
            "(2) gRPC-web ≥ 0.95 × (3) native gRPC (h2load)",
            web,
            get("server-grpc"),
            0.95,
        ),
        ratio(
            "(2) gRPC-web ≥ 2 × (4) JSON gateway, throughput",
            web,
            get("gateway"),
            2.0,
        ),
    ];
    match &results.wire {
        Some(w) => {
            let r = w.grpc_web.response() as f64 / w.json.response() as f64;
            rows.push((
                "(2) gRPC-web ≤ 0.5 × (4) JSON gateway, response bytes".into(),
                format!(
                    "{r:.2} × ({} vs {} B)",
                    w.grpc_web.response(),
                    w.json.response()
                ),
                Some(r <= 0.5),
            ));
        }
        None => rows.push(("(2) ≤ 0.5 × (4) bytes".into(), "not measured".into(), None)),
    }
    rows.push(ratio(
        "(3) native gRPC ≥ 15 × (5) Python grpc.aio",
        get("server-grpc"),
        get("python"),
        15.0,
    ));
    for s in results.streams.iter().filter(|s| s.streams == 10_000) {
        rows.push((
            format!("10,000 streams ({}) < 150 MB server RSS", transport_name(s)),
            format!(
                "{:.1} MiB ({:.0} MB)",
                s.rss_open_mib,
                s.rss_open_mib * 1.048_576
            ),
            Some(s.rss_open_mib * 1.048_576 < 150.0),
        ));
    }
    if !results.streams.iter().any(|s| s.streams == 10_000) {
        rows.push((
            "10,000 streams < 150 MB server RSS".into(),
            "not measured".into(),
            None,
        ));
    }
    for s in &results.streams {
        rows.push((
            format!(
                "p99 fan-out < 500 ms, {} streams ({})",
                s.streams,
                transport_name(s)
            ),
            format!("{:.1} ms", s.fanout_p99_ms),
            Some(s.fanout_p99_ms < 500.0),
        ));
    }
    rows
}

fn transport_name(s: &StreamRun) -> &'static str {
    match s.transport.as_str() {
        "h2" if s.connections < s.streams => "gRPC, HTTP/2, 100 streams per connection",
        "h2" => "gRPC, HTTP/2, one stream per connection",
        _ => "gRPC-web, HTTP/1.1",
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "—",
    }
}

/// The browser targets: bundle size, and prost against protobuf-es.
fn browser_targets(b: &BrowserResults) -> Vec<(String, String, Option<bool>)> {
    let (raw, gzip) = b.bundle.total(&["wasm", "js"]);
    let mut rows = vec![(
        "release bundle (wasm + JS) ≤ 150 KB gzip".to_owned(),
        format!(
            "{:.1} KB gzip ({:.1} KB raw)",
            gzip as f64 / 1000.0,
            raw as f64 / 1000.0
        ),
        Some(gzip <= BUNDLE_TARGET_GZIP),
    )];
    for d in &b.decode {
        rows.push((
            format!(
                "decode {} articles: prost (WASM) ≤ 1.0 × protobuf-es ({})",
                d.articles, d.browser
            ),
            format!(
                "{:.2} × ({:.3} vs {:.3} ms)",
                d.ratio, d.page.wasm_median_ms, d.page.js_median_ms
            ),
            Some(d.ratio <= 1.0),
        ));
    }
    rows
}

/// The targets as plain lines, for the console.
pub fn targets_text(results: &Results) -> String {
    let server_ran =
        !results.unary.is_empty() || !results.streams.is_empty() || results.wire.is_some();
    let server_targets = if server_ran {
        targets(results)
    } else {
        Vec::new()
    };
    server_targets
        .into_iter()
        .chain(results.browser.iter().flat_map(browser_targets))
        .map(|(t, m, met)| format!("  {:<80} {:<36} {}", t, m, verdict(met).trim_matches('*')))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render(machine: &Machine, results: &Results) -> String {
    let mut s = String::new();
    let cfg = &results.load;
    let _ = writeln!(
        s,
        "_{} run of {} at commit `{}`. {} articles seeded; every unary run sends the same pre-encoded \
         `ListArticles {{ page_size: 20 }}` ({} articles, {} bytes encoded) on {} connections, \
         one request in flight per connection, {} s measured after {} s of warm-up._\n",
        if results.quick {
            "A quick (smoke)"
        } else {
            "Full"
        },
        machine.date,
        machine.commit,
        results.articles,
        results.page_len,
        results.response_bytes,
        cfg.connections,
        cfg.duration.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
    );
    if results.quick {
        let _ = writeln!(s, "> Quick run: durations too short for conclusions.\n");
    }
    if results.server_variant.is_empty() {
        let _ = writeln!(
            s,
            "article-server runs as shipped (release build, default settings: SQLite file in WAL \
             mode, ListArticles pages cached in memory until the next write, so every call after \
             the first is answered from the cache, one `info` log line per call on stderr, \
             redirected to a file).\n"
        );
    } else {
        let _ = writeln!(
            s,
            "article-server variant: {}.\n",
            results.server_variant.join(", ")
        );
    }

    let _ = writeln!(s, "### Machine\n\n| | |\n|---|---|");
    let _ = writeln!(s, "| CPU | {} × {} |", machine.nproc, machine.cpu);
    let _ = writeln!(s, "| memory | {} |", machine.memory);
    let _ = writeln!(s, "| kernel | Linux {} |", machine.kernel);
    let _ = writeln!(
        s,
        "| load average (1/5/15 min) | {} before, {} after |",
        machine.load_before, machine.load_after
    );
    let pinning = match &results.pinning {
        Some((servers, load)) => {
            format!("servers on CPU {servers}, load generators on CPU {load} (`taskset`)")
        }
        None => "none (all processes share all CPUs)".into(),
    };
    let _ = writeln!(s, "| pinning | {pinning} |");
    let _ = writeln!(s, "| open files limit | {} |", machine.nofile);
    let _ = writeln!(s, "| tools | {} |\n", machine.tools.join("; "));

    let _ = writeln!(s, "### Targets\n\n| target | measured | |\n|---|---|---|");
    for (target, measured, met) in targets(results) {
        let _ = writeln!(s, "| {target} | {measured} | {} |", verdict(met));
    }
    if let (Some(web), Some(oha_h2)) = (rps(results, "server-web"), rps(results, "server-grpc-oha"))
    {
        let _ = writeln!(
            s,
            "\nCross-check with one load generator for both protocols (oha): gRPC-web / gRPC = {:.2} ×.",
            web / oha_h2
        );
    }
    let get = |key| unary(results, key).map(|u| &u.result);
    for (protocol, limit, floor, server) in [
        ("gRPC-web", "limit-h1", "floor-h1", "server-web"),
        ("gRPC", "limit-h2", "floor-h2", "server-grpc"),
    ] {
        if let (Some(limit), Some(floor), Some(server)) = (get(limit), get(floor), get(server)) {
            let _ = writeln!(
                s,
                "\nWhere the gap to the limit is ({protocol}, req/s per server core): tonic alone \
                 reaches {:.2} × the physical limit; this server reaches {:.2} × tonic alone \
                 ({:.0} / {:.0} / {:.0} µs of server CPU per call: limit / tonic / this server).",
                per_core(floor) / per_core(limit),
                per_core(server) / per_core(floor),
                1e6 / per_core(limit),
                1e6 / per_core(floor),
                1e6 / per_core(server),
            );
        }
    }

    let _ = writeln!(
        s,
        "\n### Unary: ListArticles\n\n\
         | system | load generator | req/s | p50 ms | p99 ms | failed | server CPU (cores) | req/s per server core | server peak RSS MiB | same bytes |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for u in &results.unary {
        let r = &u.result;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {:.0} | {:.1} | {} |",
            u.system,
            u.tool,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.failed,
            r.server.cpu_cores,
            per_core(r),
            r.server.peak_rss_mib,
            match u.identical {
                Some(true) => "yes",
                Some(false) => "equal message, other bytes",
                None => "JSON",
            }
        );
    }
    let _ = writeln!(
        s,
        "\n\"server\" CPU and RSS cover every server-side process of the system (for (4): \
         the gateway and the server). \"same bytes\": the answer's message is the reference \
         ListArticlesResponse byte for byte."
    );

    if let Some(w) = &results.wire {
        let _ = writeln!(
            s,
            "\n### Bytes on the wire per ListArticles (one HTTP/1.1 exchange, `Connection: close`)\n\n\
             | | request | response headers | response body | response total |\n|---|---:|---:|---:|---:|"
        );
        for (label, b) in [
            ("(2) gRPC-web, binary", w.grpc_web),
            ("(4) JSON gateway", w.json),
            (
                "(2) gRPC-web, `grpc-accept-encoding: gzip`",
                w.grpc_web_gzip,
            ),
            ("(4) JSON gateway, `accept-encoding: gzip`", w.json_gzip),
        ] {
            let _ = writeln!(
                s,
                "| {label} | {} | {} | {} | {} |",
                b.request,
                b.response_headers,
                b.response_body,
                b.response()
            );
        }
        let _ = writeln!(
            s,
            "\ngRPC-web / JSON response bytes: {:.2} × uncompressed, {:.2} × with gzip on both.",
            w.grpc_web.response() as f64 / w.json.response() as f64,
            w.grpc_web_gzip.response() as f64 / w.json_gzip.response() as f64,
        );
    }

    if !results.streams.is_empty() {
        let _ = writeln!(
            s,
            "\n### Streaming: WatchArticles held open, one commit fanned out\n\n\
             | transport | streams | connections | open in s | server RSS before → open (MiB) | RSS per stream (KiB) | fan-out p50 ms | p99 ms | max ms | CreateArticle ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for r in &results.streams {
            let creates = r
                .create_ms
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} → {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                transport_name(r),
                r.streams,
                r.connections,
                r.open_secs,
                r.rss_before_mib,
                r.rss_open_mib,
                r.rss_per_stream_kib,
                r.fanout_p50_ms,
                r.fanout_p99_ms,
                r.fanout_max_ms,
                creates
            );
        }
        let _ = writeln!(
            s,
            "\nFan-out: from just before CreateArticle is sent until the event is read on each \
             stream ({} commits, one after another; every stream got every commit unless noted). \
             The streams are read by one client process on the load-generator CPU.",
            results.streams.first().map_or(0, |r| r.rounds)
        );
        for r in results.streams.iter().filter(|r| r.failed_streams > 0) {
            let _ = writeln!(
                s,
                "- {} streams over {}: {} streams ended early.",
                r.streams,
                transport_name(r),
                r.failed_streams
            );
        }
    }
    for skipped in &results.skipped {
        let _ = writeln!(s, "\nSkipped: {skipped}.");
    }
    s
}

/// The browser figures (`--only browser` writes just these).
pub fn render_browser(machine: &Machine, quick: bool, b: &BrowserResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Browser\n\n_{} run of {} at commit `{}`, load average {} before, {} after. {}._\n",
        if quick { "A quick (smoke)" } else { "Full" },
        machine.date,
        machine.commit,
        machine.load_before,
        machine.load_after,
        b.browsers.join("; "),
    );
    if quick {
        let _ = writeln!(
            s,
            "> Quick run: too few loads and samples for conclusions.\n"
        );
    }
    let _ = writeln!(s, "| target | measured | |\n|---|---|---|");
    for (target, measured, met) in browser_targets(b) {
        let _ = writeln!(s, "| {target} | {measured} | {} |", verdict(met));
    }

    let _ = writeln!(
        s,
        "\n#### Release bundle (`trunk build --release`, `web/dist`)\n\n\
         | file | raw bytes | gzip -9 bytes | brotli (`.br` beside it) bytes |\n|---|---:|---:|---:|"
    );
    let brotli = |b: Option<u64>| b.map_or_else(|| "—".to_owned(), |b| b.to_string());
    for f in &b.bundle.files {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            f.name,
            f.raw,
            f.gzip,
            brotli(f.brotli)
        );
    }
    let (raw, gzip) = b.bundle.total(&["wasm", "js"]);
    let _ = writeln!(s, "| **wasm + JS** | **{raw}** | **{gzip}** |");
    let (raw, gzip) = b.bundle.total(&["wasm", "js", "css", "html"]);
    let _ = writeln!(s, "| all files | {raw} | {gzip} |");

    if !b.first_list.is_empty() {
        let _ = writeln!(
            s,
            "\n#### Time from navigation to the first list rendered\n\n\
             `performance.getEntriesByName('article-list-rendered')[0].startTime`, a new browser \
             with an empty profile for every load.\n\n\
             | browser | loads | median ms | min ms | max ms | wasm received, median ms | every load fetched the wasm |\n\
             |---|---:|---:|---:|---:|---:|---|"
        );
        for f in &b.first_list {
            let mut received = f.wasm_received_ms.clone();
            received.sort_by(f64::total_cmp);
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                f.browser,
                f.mark_ms.len(),
                f.median_ms,
                f.min_ms,
                f.max_ms,
                median(&received),
                if f.cold { "yes (cold)" } else { "no" }
            );
        }
    }

    if !b.visits.is_empty() {
        let _ = writeln!(
            s,
            "\n#### What a visit transfers\n\n\
             Resource timing of a first visit of `/` (empty profile) and of a second one in the \
             same browser session after `about:blank`, each until the first list is rendered: \
             bytes over the network with headers (`transferSize`; 0 = from the cache without \
             asking), the body as sent (`encodedBodySize`) and as used (`decodedBodySize`). Which \
             variant arrived shows in the body sent: compare the `.br` and gzip sizes above.\n\n\
             | browser | path | first visit: transferred | body sent / used | second visit: transferred |\n\
             |---|---|---:|---:|---:|"
        );
        for v in &b.visits {
            for f in &v.cold {
                let warm = v
                    .warm
                    .iter()
                    .find(|w| w.path == f.path)
                    .map_or_else(|| "—".to_owned(), |w| w.transfer.to_string());
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {} / {} | {} |",
                    v.browser, f.path, f.transfer, f.encoded, f.decoded, warm
                );
            }
            let total = |files: &[VisitFile]| files.iter().map(|f| f.transfer).sum::<u64>();
            let _ = writeln!(
                s,
                "| {} | **total** | **{}** | | **{}** |",
                v.browser,
                total(&v.cold),
                total(&v.warm)
            );
        }
    }

    if let Some(d) = b.decode.first() {
        let _ = writeln!(
            s,
            "\n#### Decode one ListArticlesResponse of {} articles ({} bytes), same page, same bytes\n\n\
             | browser | prost (WASM) median ms | protobuf-es median ms | prost / protobuf-es | samples × batch (prost, protobuf-es) | copy into wasm: first ms | later copies, median ms |\n\
             |---|---:|---:|---:|---|---:|---:|",
            d.articles, d.page.bytes
        );
        for d in &b.decode {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.2} × | {} × ({}, {}) | {:.3} | {:.3} |",
                d.browser,
                d.page.wasm_median_ms,
                d.page.js_median_ms,
                d.ratio,
                d.page.wasm_ms.len(),
                d.page.batch["wasm"],
                d.page.batch["js"],
                d.page.copy_ms,
                d.page.copy_median_ms
            );
        }
        if let Some(w) = &b.decode_wasm {
            let _ = writeln!(
                s,
                "\nThe decode page's prost module (`bench/wasm-decode`, `wasm-opt -Oz`): {} bytes, {} gzip.",
                w.raw, w.gzip
            );
        }
    }
    for skipped in &b.skipped {
        let _ = writeln!(s, "\nSkipped: {skipped}.");
    }
    s
}

/// Replaces the text between the markers `begin` and `end` of `out`, or
/// creates the file.
pub fn write(out: &Path, begin: &str, end: &str, section: &str) -> anyhow::Result<()> {
    let block = format!("{begin}\n{section}\n{end}");
    let text = match std::fs::read_to_string(out) {
        Ok(old) => match (old.find(begin), old.find(end)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{block}{}", &old[..b], &old[e + end.len()..])
            }
            _ => format!("{old}\n{block}\n"),
        },
        Err(_) => format!("# Benchmarks\n\n{block}\n"),
    };
    std::fs::write(out, text)?;
    Ok(())
}
