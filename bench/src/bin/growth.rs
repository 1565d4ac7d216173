//! `growth`: how ListArticles and GetArticle costs grow with the data
//! (issue 12). For each size (1,000, 100,000, 1,000,000 articles) it
//! seeds a database for a release `article-server` — a SQLite file, or
//! with `--store postgres` a database on a throw-away PostgreSQL cluster
//! (`testkit::postgres::PgCluster`) — starts that server on it (the
//! ListArticles cache off, so every call reaches the database) and reports
//! p50/p99 over gRPC of:
//!
//! - `rare`: a search for a substring found in about one article,
//! - `common`: a search for a word in about 5% of the articles, pages 1-20,
//! - `tag`: a tag filter (36 tags, each on about 4% of the articles), pages 1-3,
//! - `deep`: page 2,000 (and on) of 20, no filter,
//! - `get`: GetArticle of a random id,
//!
//! and the database's size on disk. Prints one JSON object per size on
//! stdout.
//!
//! Seeding through gRPC would take hours at a million: the server first
//! creates and migrates the database, then it is stopped and the rows go
//! in through the database's own shell, then the server starts again for
//! the measurement. SQLite: the `sqlite3` shell inserts them (the schema's
//! own triggers keep any index in step). PostgreSQL: `psql` drops the
//! secondary indexes the migrations made (read back from `pg_indexes`),
//! `COPY`s the rows, and builds the same indexes again, which is many times
//! faster than keeping a trigram GIN index up to date row by row. Either
//! way the seeding works on any schema version, so the same run measures
//! an older server (`--server` of a build of an earlier commit). Both
//! stores get the same articles: titles ~40 characters, contents 1-2 KB of
//! pseudo-words, 0-3 tags of 36.
//! Benchmarks are not tests: nothing here asserts a timing.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use article_bench::{
    growth::{Figures, Latency},
    process::{Server, command},
};
use clap::{Parser, ValueEnum};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use testkit::postgres::{self as pg, PgCluster};
use tonic::transport::{Channel, Endpoint};

const TAGS: usize = 36;
const COMMON: &[&str] = &["garden", "signal", "market", "window", "harbor"];
const TOKEN: &str = "growth-bench-token";

#[derive(Parser)]
#[command(about = "ListArticles/GetArticle latency and database size at growing sizes.")]
struct Args {
    /// The release article-server binary to measure.
    #[arg(long, default_value = "target/release/article-server")]
    server: PathBuf,
    /// Article counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    sizes: Vec<usize>,
    /// Calls measured per kind (after 10 unmeasured ones).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Folder for the databases (emptied per size, removed unless --keep).
    #[arg(long, default_value = "target/bench/growth")]
    work_dir: PathBuf,
    /// Keep each database after its measurement.
    #[arg(long)]
    keep: bool,
    /// Measure the databases a run with --keep left in --work-dir (SQLite
    /// files, or the PostgreSQL cluster's `growthN` databases) instead of
    /// seeding new ones (e.g. to measure again once the machine is quiet).
    #[arg(long)]
    reuse: bool,
    /// A label for the output (e.g. the commit measured).
    #[arg(long, default_value = "")]
    label: String,
    /// Which store the server runs on.
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    store: Store,
}

#[derive(Clone, Copy, ValueEnum)]
enum Store {
    /// A SQLite file (the embedded default).
    Sqlite,
    /// A database on a PostgreSQL cluster of its own, started for the run
    /// (needs Debian's `postgresql` package, as `cargo xtask test` does).
    Postgres,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Where one size's database lives.
enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::Sqlite(file) => format!("sqlite://{}", file.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One cluster for every size, removed at the end unless --keep.
    let cluster = match args.store {
        Store::Sqlite => None,
        Store::Postgres => {
            let dir = std::path::absolute(args.work_dir.join("postgres"))?;
            if !args.reuse {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let options = pg::Options {
                remove_dir: !args.keep,
                ..pg::Options::default()
            };
            Some(PgCluster::start_with(&dir, options).context("starting PostgreSQL")?)
        }
    };
    for &n in &args.sizes {
        let dir = args.work_dir.join(format!("n{n}"));
        if !args.reuse {
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(&dir)?;
        let db = match &cluster {
            None => Database::Sqlite(dir.join("articles.db")),
            Some(cluster) if args.reuse => Database::Postgres(cluster.url(&format!("growth{n}"))),
            Some(cluster) => Database::Postgres(cluster.create_database(&format!("growth{n}"))?),
        };
        let figures = measure(&args, &dir, &db, n).await;
        if !args.keep {
            std::fs::remove_dir_all(&dir)?;
        }
        println!("{}", serde_json::to_string(&figures?)?);
    }
    Ok(())
}

async fn measure(args: &Args, dir: &Path, db: &Database, n: usize) -> anyhow::Result<Figures> {
    let started = Instant::now();
    match db {
        Database::Sqlite(file) if args.reuse && file.is_file() => {}
        Database::Sqlite(file) if args.reuse => {
            bail!("--reuse: no database at {}", file.display())
        }
        // The server fails to start, naming the database, if it is not there.
        Database::Postgres(_) if args.reuse => {}
        _ => {
            // Created and migrated by the server itself.
            start(args, dir, db).await?.stop().await?;
            match db {
                Database::Sqlite(file) => seed_sqlite(file, n, args.samples)?,
                Database::Postgres(url) => seed_postgres(url, n, args.samples)?,
            }
        }
    }
    let seed_seconds = started.elapsed().as_secs_f64();
    let server = start(args, dir, db).await?;
    let channel = Endpoint::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await?;
    let mut client = ArticleServiceClient::new(channel);
    let samples = args.samples;
    let rare = list_latency(&mut client, samples, |i| {
        list(1, &rare_word(i % samples), "")
    })
    .await?;
    let common = list_latency(&mut client, samples, |i| {
        list((i % 20) as i32 + 1, COMMON[(i / 20) % COMMON.len()], "")
    })
    .await?;
    let tag = list_latency(&mut client, samples, |i| {
        list((i / TAGS % 3) as i32 + 1, "", &tag_name(i % TAGS))
    })
    .await?;
    let deep = list_latency(&mut client, samples, |i| list(2000 + i as i32, "", "")).await?;
    let mut rng = Rng(7);
    let mut get = Vec::new();
    for i in 0..samples + 10 {
        let id = 1 + rng.below(n) as i64;
        let started = Instant::now();
        client
            .get_article(pb::GetArticleRequest { id })
            .await
            .context("GetArticle")?;
        if i >= 10 {
            get.push(started.elapsed());
        }
    }
    server.stop().await?;
    let db_bytes = match db {
        Database::Sqlite(file) => ["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", file.display())).ok())
            .map(|m| m.len())
            .sum(),
        Database::Postgres(url) => psql_value(url, "SELECT pg_database_size(current_database())")?
            .parse()
            .context("pg_database_size")?,
    };
    Ok(Figures {
        label: args.label.clone(),
        store: args.store.name().to_owned(),
        articles: n,
        seed_seconds,
        db_bytes,
        rare,
        common,
        tag,
        deep,
        get: latency(get, 0),
    })
}

async fn start(args: &Args, dir: &Path, db: &Database) -> anyhow::Result<Server> {
    let mut cmd = command(&args.server, None);
    cmd.args(["--listen", "127.0.0.1:0", "--list-cache-mib", "0"])
        .arg("--database")
        .arg(db.url())
        .args(["--token", &format!("bench={TOKEN}")]);
    Server::start("article-server", cmd, &dir.join("server.log")).await
}

fn list(page: i32, query: &str, tag: &str) -> pb::ListArticlesRequest {
    pb::ListArticlesRequest {
        page,
        page_size: 20,
        query: query.to_owned(),
        tag: tag.to_owned(),
    }
}

/// Calls `request(i)` 10 times unmeasured, then `samples` times.
async fn list_latency(
    client: &mut ArticleServiceClient<Channel>,
    samples: usize,
    request: impl Fn(usize) -> pb::ListArticlesRequest,
) -> anyhow::Result<Latency> {
    let mut times = Vec::with_capacity(samples);
    let mut matched = None;
    for i in 0..samples + 10 {
        let req = request(i);
        let started = Instant::now();
        let page = client
            .list_articles(req)
            .await
            .context("ListArticles")?
            .into_inner();
        let took = started.elapsed();
        matched.get_or_insert(page.total_count);
        if i >= 10 {
            times.push(took);
        }
    }
    Ok(latency(times, matched.unwrap_or(0)))
}

fn latency(mut times: Vec<Duration>, matched: i64) -> Latency {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1e3
    };
    Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        matched,
    }
}

/// One seeded article.
struct Row {
    id: i64,
    title: String,
    content: String,
    tags: Vec<String>,
    /// Creation and update time, microseconds.
    time: i64,
    /// What the server would store as `search_text`: lower-cased
    /// "title \x1f content".
    search: String,
}

/// The `n` articles of a run, the same for every store and every run.
fn rows(n: usize, rare: usize) -> impl Iterator<Item = Row> {
    let vocabulary = vocabulary();
    let mut rng = Rng(42);
    // Rare words land in articles spread over the whole id range.
    let rare_every = (n / rare).max(1);
    let base = 1_700_000_000_000_000_i64;
    (0..n).map(move |i| {
        let id = i as i64 + 1;
        let title = sentence(&mut rng, &vocabulary, 38);
        let mut content = String::new();
        let length = 1000 + rng.below(1000);
        while content.len() < length {
            content.push_str(&sentence(&mut rng, &vocabulary, 80));
            content.push_str(". ");
            if rng.below(60) == 0 {
                content.push_str(COMMON[rng.below(COMMON.len())]);
                content.push(' ');
            }
        }
        if i % rare_every == 0 && i / rare_every < rare {
            content.push_str(&rare_word(i / rare_every));
        }
        let mut tags: Vec<String> = (0..rng.below(4))
            .map(|_| tag_name(rng.below(TAGS)))
            .collect();
        tags.sort();
        tags.dedup();
        let search = format!("{title}\u{1f}{content}").to_lowercase();
        Row {
            id,
            title,
            content,
            tags,
            time: base + id * 1_000_000,
            search,
        }
    })
}

/// Inserts `n` articles with the `sqlite3` shell, in transactions of 10,000
/// rows. `article_tags.create_time` is filled when the schema has it.
fn seed_sqlite(db: &Path, n: usize, rare: usize) -> anyhow::Result<()> {
    let has_column = std::process::Command::new("sqlite3")
        .arg(db)
        .arg("SELECT count(*) FROM pragma_table_info('article_tags') WHERE name = 'create_time'")
        .output()
        .context("running sqlite3 (apt-get install sqlite3)")?;
    let tag_time = String::from_utf8_lossy(&has_column.stdout).trim() == "1";
    let has_fts = std::process::Command::new("sqlite3")
        .arg(db)
        .arg("SELECT count(*) FROM sqlite_master WHERE name = 'articles_fts'")
        .output()?;
    let fts = String::from_utf8_lossy(&has_fts.stdout).trim() == "1";
    let mut child = std::process::Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let mut sql = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    writeln!(
        sql,
        ".bail on\nPRAGMA journal_mode = DELETE;\nPRAGMA synchronous = OFF;\nPRAGMA cache_size = -262144;"
    )?;
    if fts {
        // FTS5's in-memory batch (1 MiB by default; `hashsize`, a setting
        // kept in the index's config): larger while seeding, so the index is
        // written in fewer, larger segments (about twice as fast); put back
        // afterwards, so the server runs with the default.
        writeln!(
            sql,
            "INSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', 268435456);"
        )?;
    }
    for (i, row) in rows(n, rare).enumerate() {
        if i % 10_000 == 0 {
            if i > 0 {
                writeln!(sql, "COMMIT;")?;
            }
            writeln!(sql, "BEGIN;")?;
        }
        let Row {
            id,
            title,
            content,
            tags,
            time,
            search,
        } = row;
        writeln!(
            sql,
            "INSERT INTO articles (id, title, content, author, tags, search_text, create_time, update_time, version) \
             VALUES ({id}, '{title}', '{content}', 'bench', '{}', '{}', {time}, {time}, 1);",
            tags.join(","),
            search.replace('\u{1f}', "' || char(31) || '"),
        )?;
        for tag in &tags {
            if tag_time {
                writeln!(
                    sql,
                    "INSERT INTO article_tags (article_id, tag, create_time) VALUES ({id}, '{tag}', {time});"
                )?;
            } else {
                writeln!(
                    sql,
                    "INSERT INTO article_tags (article_id, tag) VALUES ({id}, '{tag}');"
                )?;
            }
        }
    }
    writeln!(sql, "COMMIT;")?;
    if fts {
        writeln!(
            sql,
            "INSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', 1048576);"
        )?;
    }
    writeln!(sql, "PRAGMA optimize;")?;
    sql.flush()?;
    drop(sql);
    let status = child.wait()?;
    if !status.success() {
        bail!("sqlite3 seeding failed: {status}");
    }
    Ok(())
}

/// Loads `n` articles into the PostgreSQL database of `url` with `psql`:
/// the secondary indexes of `articles` and `article_tags` (whatever the
/// migrations made) are dropped, the rows `COPY`d in one transaction, the
/// indexes built again from their own definitions, the id sequence moved
/// past the rows (and the kept article and per-tag counts set, where the
/// schema has them), and the tables vacuumed and analysed (as autovacuum
/// would soon do: index-only scans need the visibility map).
fn seed_postgres(url: &str, n: usize, rare: usize) -> anyhow::Result<()> {
    let tag_time = psql_value(
        url,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'article_tags' AND column_name = 'create_time'",
    )? == "1";
    // Since migration 0003 the store keeps the article count beside the
    // sequence; COPY bypasses the store, so the seeding sets it.
    let kept_count = psql_value(
        url,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'article_seq' AND column_name = 'articles'",
    )? == "1";
    // Since migration 0004 it keeps the article count per tag as well.
    let tag_counts = psql_value(
        url,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tag_counts'",
    )? == "1";
    // Indexes not backing a constraint (the primary keys stay).
    let indexes = psql_value(
        url,
        "SELECT string_agg(indexname || E'\\t' || indexdef, E'\\n') FROM pg_indexes \
         WHERE schemaname = 'public' AND tablename IN ('articles', 'article_tags') \
         AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    )?;
    let indexes: Vec<(&str, &str)> = indexes
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    let mut child = std::process::Command::new(pg::binaries()?.join("psql"))
        .args(["-q", "-v", "ON_ERROR_STOP=1", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running psql")?;
    let mut sql = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    writeln!(
        sql,
        "SET synchronous_commit = off;\nSET maintenance_work_mem = '1GB';\nBEGIN;"
    )?;
    for (name, _) in &indexes {
        writeln!(sql, "DROP INDEX {name};")?;
    }
    // COPY's text format: tab between columns, `\\`, tab and newline
    // escaped. The generated text has none of them but the backslash rule
    // is kept anyway; U+001F is an ordinary character here.
    let field = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
    };
    writeln!(
        sql,
        "COPY articles (id, title, content, author, tags, search_text, create_time, update_time, version) FROM STDIN;"
    )?;
    // The tag rows wait until the articles are in (two COPYs in turn).
    let mut tag_rows = String::new();
    for row in rows(n, rare) {
        writeln!(
            sql,
            "{}\t{}\t{}\tbench\t{}\t{}\t{}\t{}\t1",
            row.id,
            field(&row.title),
            field(&row.content),
            row.tags.join(","),
            field(&row.search),
            row.time,
            row.time,
        )?;
        for tag in &row.tags {
            use std::fmt::Write as _;
            if tag_time {
                writeln!(tag_rows, "{}\t{tag}\t{}", row.id, row.time)?;
            } else {
                writeln!(tag_rows, "{}\t{tag}", row.id)?;
            }
        }
    }
    writeln!(sql, "\\.")?;
    if tag_time {
        writeln!(
            sql,
            "COPY article_tags (article_id, tag, create_time) FROM STDIN;"
        )?;
    } else {
        writeln!(sql, "COPY article_tags (article_id, tag) FROM STDIN;")?;
    }
    sql.write_all(tag_rows.as_bytes())?;
    writeln!(sql, "\\.")?;
    for (_, definition) in &indexes {
        writeln!(sql, "{definition};")?;
    }
    if kept_count {
        writeln!(sql, "UPDATE article_seq SET articles = {n};")?;
    }
    if tag_counts {
        // The statement migration 0004 fills the table with.
        writeln!(
            sql,
            "TRUNCATE tag_counts;\nINSERT INTO tag_counts (tag, articles) SELECT tag, COUNT(*) FROM article_tags GROUP BY tag;"
        )?;
    }
    writeln!(
        sql,
        "SELECT setval(pg_get_serial_sequence('articles', 'id'), {});\nCOMMIT;\nVACUUM ANALYZE;",
        n.max(1)
    )?;
    sql.flush()?;
    drop(sql);
    let status = child.wait()?;
    if !status.success() {
        bail!("psql seeding failed: {status}");
    }
    Ok(())
}

/// The one value `query` returns, through `psql`.
fn psql_value(url: &str, query: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new(pg::binaries()?.join("psql"))
        .args(["-XAt", "-v", "ON_ERROR_STOP=1", "-c", query, url])
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!(
            "psql {query:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Words of 2-9 letters that never contain a common or rare word.
fn vocabulary() -> Vec<String> {
    let mut rng = Rng(1);
    (0..5000)
        .map(|_| {
            let len = 2 + rng.below(8);
            (0..len)
                .map(|_| char::from(b"abcdefghiklmnoprstuy"[rng.below(20)]))
                .collect()
        })
        .collect()
}

/// Skewed towards the first words, as text is.
fn sentence(rng: &mut Rng, vocabulary: &[String], chars: usize) -> String {
    let mut s = String::new();
    while s.len() < chars {
        let u = rng.below(1 << 20) as f64 / f64::from(1 << 20);
        let word = &vocabulary[(u * u * vocabulary.len() as f64) as usize];
        if s.is_empty() {
            let mut first = word.chars();
            s.extend(first.next().map(|c| c.to_ascii_uppercase()));
            s.extend(first);
        } else {
            s.push(' ');
            s.push_str(word);
        }
    }
    s
}

/// Letters the vocabulary lacks (j, q, v, w, x, z) begin and end it.
fn rare_word(i: usize) -> String {
    let mut rng = Rng(1000 + i as u64);
    let middle: String = (0..5)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz"[rng.below(26)]))
        .collect();
    format!("qz{middle}xj")
}

fn tag_name(i: usize) -> String {
    format!("topic-{i:02}")
}

/// xorshift64*: the same articles on every run, without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % n
    }
}
