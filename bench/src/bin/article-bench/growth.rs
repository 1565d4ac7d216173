//! The growth part (issue 12), only on request (`--only growth`): runs the
//! `growth` binary (`bench/src/bin/growth.rs`) once per store, SQLite and
//! PostgreSQL, at 1,000, 100,000 and 1,000,000 articles, and writes the
//! table between markers of its own in BENCHMARKS.md.
//!
//! It takes long (the million-article databases are seeded and indexed:
//! about half an hour per store on 2 cores), which is why the full run
//! leaves it out.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{Context as _, bail};
use article_bench::growth::{Figures, Latency};
use serde::Serialize;

use super::{Ctx, step};

pub const BEGIN: &str =
    "<!-- bench:growth:begin (written by `cargo xtask bench -- --only growth`) -->";
pub const END: &str = "<!-- bench:growth:end -->";

pub struct GrowthConfig {
    pub sizes: Vec<usize>,
    pub stores: Vec<String>,
    pub samples: usize,
}

#[derive(Debug, Serialize)]
pub struct GrowthResults {
    samples: usize,
    load_before: String,
    load_after: String,
    runs: Vec<Figures>,
}

pub async fn run(ctx: &Ctx, cfg: &GrowthConfig) -> anyhow::Result<GrowthResults> {
    let load_before = uptime();
    let growth = ctx
        .bins
        .join(format!("growth{}", std::env::consts::EXE_SUFFIX));
    if !growth.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release -p article-bench`)",
            growth.display()
        );
    }
    let sizes = cfg
        .sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut runs = Vec::new();
    for store in &cfg.stores {
        step(&format!("growth: {store}, {sizes} articles"));
        let started = std::time::Instant::now();
        let output = tokio::process::Command::new(&growth)
            .arg("--server")
            .arg(&ctx.server_bin)
            .args(["--store", store, "--sizes", &sizes])
            .args(["--samples", &cfg.samples.to_string()])
            .arg("--work-dir")
            .arg(ctx.work.join(format!("growth-{store}")))
            .stderr(std::process::Stdio::inherit())
            .output()
            .await
            .with_context(|| format!("running {}", growth.display()))?;
        if !output.status.success() {
            bail!("growth --store {store} failed: {}", output.status);
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let figures: Figures =
                serde_json::from_str(line).with_context(|| format!("growth printed {line:?}"))?;
            println!(
                "    {store} {}: rare {:.2}/{:.2} ms, tag {:.2}/{:.2} ms, deep {:.2}/{:.2} ms",
                figures.articles,
                figures.rare.p50_ms,
                figures.rare.p99_ms,
                figures.tag.p50_ms,
                figures.tag.p99_ms,
                figures.deep.p50_ms,
                figures.deep.p99_ms,
            );
            runs.push(figures);
        }
        println!(
            "    took {:?}",
            Duration::from_secs(started.elapsed().as_secs())
        );
    }
    Ok(GrowthResults {
        samples: cfg.samples,
        load_before,
        load_after: uptime(),
        runs,
    })
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(l: &Latency) -> String {
    let f = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    format!("{} / {}", f(l.p50_ms), f(l.p99_ms))
}

fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

pub fn render(commit: &str, date: &str, r: &GrowthResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Growth: cost as the data grows (issue 12)\n");
    let _ = writeln!(
        s,
        "_Run of {date} at commit `{commit}`, load average {} before and {} after. \
         `cargo xtask bench -- --only growth` (the `growth` binary, `bench/src/bin/growth.rs`)._\n",
        r.load_before, r.load_after
    );
    let _ = writeln!(
        s,
        "Each size is a fresh database seeded through the store's own shell (SQLite: `sqlite3`; \
         PostgreSQL: `COPY` with the secondary indexes rebuilt after, then `VACUUM ANALYZE`), \
         the same articles on both (~40-character titles, 1–2 KB contents, 0–3 of 36 tags); \
         then a release `article-server` with the ListArticles cache off answers over gRPC, \
         {} calls measured per kind after 10 unmeasured: p50 / p99 in ms. \
         Rare: a substring in one article. Common: a word in ~5 % of the articles, pages 1–20. \
         Tag: one of 36 tags, pages 1–3. Deep: page 2,000 and on, 20 a page, no filter. \
         Database: the file with its WAL (SQLite), `pg_database_size` (PostgreSQL).\n",
        r.samples
    );
    let _ = writeln!(
        s,
        "| store | articles | rare substring | common word | tag filter | page 2,000 | GetArticle | database | seeded in |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in &r.runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            f.store,
            f.articles,
            ms(&f.rare),
            ms(&f.common),
            ms(&f.tag),
            ms(&f.deep),
            ms(&f.get),
            size(f.db_bytes),
            f.seed_seconds
        );
    }
    let mut targets = String::new();
    for store in r
        .runs
        .iter()
        .map(|f| f.store.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let at = |n: usize| r.runs.iter().find(|f| f.store == store && f.articles == n);
        if let (Some(small), Some(large)) = (at(1000), at(100_000)) {
            for (what, a, b) in [
                ("rare substring", &small.rare, &large.rare),
                ("tag filter", &small.tag, &large.tag),
            ] {
                let ratio = b.p50_ms / a.p50_ms;
                let _ = writeln!(
                    targets,
                    "| {what} at 100k ≤ 5 × its cost at 1k (p50) | {store} | {ratio:.2} × | {} |",
                    if ratio <= 5.0 { "met" } else { "**missed**" }
                );
            }
        }
        if let Some(large) = at(1_000_000) {
            for (what, l) in [
                ("rare substring", &large.rare),
                ("tag filter", &large.tag),
                ("page 2,000", &large.deep),
            ] {
                let _ = writeln!(
                    targets,
                    "| {what} at 1M: p99 < 20 ms | {store} | {:.1} ms (p50 {:.2} ms) | {} |",
                    l.p99_ms,
                    l.p50_ms,
                    if l.p99_ms < 20.0 { "met" } else { "**missed**" }
                );
            }
        }
    }
    if targets.is_empty() {
        let _ = writeln!(
            s,
            "\nNo target applies: the targets are for 100k and 1M articles."
        );
    } else {
        let _ = writeln!(
            s,
            "\n| target | store | measured | |\n|---|---|---|---|\n{targets}"
        );
    }
    s
}

/// Keeps the figures beside the other parts' in the work folder.
pub fn save(work: &Path, r: &GrowthResults) -> anyhow::Result<()> {
    std::fs::write(work.join("growth.json"), serde_json::to_string_pretty(r)?)?;
    Ok(())
}
