//! SQLite storage (sqlx), the embedded default. All SQLite dialect lives
//! here: WAL with `synchronous=FULL` so an acknowledged write survives a
//! crash, `BEGIN IMMEDIATE` for writes so concurrent writers queue instead
//! of failing, and `sqlite::memory:` on a single shared connection.
//! Creates, updates and deletes go through one writer thread that commits
//! many callers' ops with one fsync, each op keeping its own outcome
//! (group commit, see [`writer`]); an import is a transaction of its own.
//!
//! Limits: a write waits for at most the busy timeout (10 s) from being
//! queued, then gets `Busy` (UNAVAILABLE); an open import holds the lock
//! for its whole length. With `sqlite::memory:` an open import also holds
//! the one connection, so reads wait for it too.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use sqlx::{
    Connection as _, Row, Sqlite, SqlitePool, Transaction,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};
use tokio::sync::Notify;

use writer::{Columns, Done, Op, Shared, Writer};
pub use writer::{MAX_BATCH_BYTES, MAX_BATCH_OPS, WRITE_QUEUE, WriteStats};

use super::{
    Article, ArticleDraft, ArticleError, ListQuery, Page,
    rows::{self, now_micros},
    store::{ArticleStore, Change, ImportBatch, SequenceBounds, StoreResult},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write may wait for the write lock (held by an import) before
/// it is answered `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const ARTICLE_COLUMNS: &str = "id, title, content, author, tags, create_time, update_time, version";

/// A create is three statements: the article (its search index and count
/// by triggers), its tag rows (`$tags`: the tags as a JSON array), and its
/// change-log row. An import sends them as one text ([`CREATE`], where the
/// article's id is `last_insert_rowid()`), the writer one by one with the
/// id it got back (`writer::apply`).
macro_rules! create_article_sql {
    () => {
        "INSERT INTO articles (title, content, author, tags, search_text, create_time, update_time, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
         RETURNING id"
    };
}

macro_rules! create_tags_sql {
    ($id:literal, $time:literal, $tags:literal) => {
        concat!(
            "INSERT INTO article_tags (article_id, tag, create_time) SELECT ",
            $id,
            ", value, ",
            $time,
            " FROM json_each(",
            $tags,
            ")"
        )
    };
}

macro_rules! create_event_sql {
    ($id:literal) => {
        concat!(
            "INSERT INTO article_events
               (kind, article_id, title, content, author, tags, create_time, update_time, version)
             SELECT 'created', id, title, content, author, tags, create_time, update_time, version
             FROM articles WHERE id = ",
            $id
        )
    };
}

mod writer;

/// An import's create, in one statement trip. In the last two statements
/// `last_insert_rowid()` is the article's id: a trigger's inserts stop
/// counting once it is done, and inserts into `article_tags` (WITHOUT
/// ROWID) never count.
const CREATE: &str = concat!(
    create_article_sql!(),
    ";\n",
    create_tags_sql!("last_insert_rowid()", "?6", "?7"),
    ";\n",
    create_event_sql!("last_insert_rowid()")
);

/// Articles in one SQLite database.
pub struct SqliteStore {
    pool: SqlitePool,
    retain: i64,
    /// The generation (bumped by every commit in this process, see
    /// `generation`: the server is the only writer of its SQLite file, as
    /// the change feed already assumes), the commit signal and the
    /// writer's counts.
    shared: Arc<Shared>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://FILE`, `sqlite:FILE`, a plain path, or `sqlite::memory:`.
    /// `retain` is how many recent changes the change log keeps.
    pub async fn open(url: &str, retain: u64) -> anyhow::Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if memory {
            // In memory, a database that the pool's connection and the
            // writer's share: SQLite's `memdb` VFS with a name starting
            // with "/", unique in the process. It lives while one of them
            // is open; its rollback journal stays in memory too.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            SqliteConnectOptions::new()
                .filename(format!(
                    "/articles-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ))
                .vfs(writer::MEMORY_VFS)
                .journal_mode(SqliteJournalMode::Memory)
        } else if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
        } else {
            SqliteConnectOptions::new()
                .filename(url)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
        };
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // In memory, reads share one connection, kept forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        }
        .before_acquire(not_in_transaction)
        .connect_with(options.clone())
        .await?;
        MIGRATOR.run(&pool).await?;
        // The writer has a connection of its own, on a thread of its own
        // (see `writer`).
        let writer_db = writer::open_connection(options.get_filename(), memory)?;
        let shared = Arc::new(Shared::new());
        let writer = Writer::spawn(writer_db, shared.clone(), BUSY_TIMEOUT)?;
        Ok(Self {
            pool,
            retain: retain.max(1000) as i64,
            shared,
            writer,
        })
    }

    /// How many ops the writer committed in how many transactions.
    pub fn write_stats(&self) -> WriteStats {
        self.shared.stats()
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.lite()
    }

    /// Commits an import.
    async fn commit(&self, tx: Transaction<'static, Sqlite>) -> StoreResult<()> {
        let committed = tx.commit().await;
        // Bumped whatever the outcome: a failed commit may still have
        // changed something, and a needless bump only costs a cache miss.
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        committed.lite()?;
        self.shared.committed.notify_one();
        Ok(())
    }

    /// An import's new article, its tag rows and its change-log row, in
    /// one statement trip ([`CREATE`]); its id.
    async fn insert(
        tx: &mut Transaction<'static, Sqlite>,
        author: &str,
        draft: &ArticleDraft,
        now: i64,
    ) -> StoreResult<i64> {
        let columns = Columns::of(draft);
        let rows = sqlx::query(CREATE)
            .bind(draft.title())
            .bind(draft.content())
            .bind(author)
            .bind(columns.tags)
            .bind(columns.search_text)
            .bind(now)
            .bind(columns.tags_json)
            .fetch_all(&mut **tx)
            .await
            .lite()?;
        let row = rows
            .first()
            .ok_or_else(|| ArticleError::storage(anyhow::anyhow!("INSERT returned no row")))?;
        row.try_get("id").lite()
    }
}

/// After SQLITE_FULL or an I/O error SQLite may already have rolled the
/// transaction back; sqlx's ROLLBACK then fails and the connection would
/// stay "in a transaction" for sqlx, and refuse every later BEGIN. Such a
/// connection is closed (a fresh one replaces it), so writes work again
/// once the disk has room, without a restart.
fn not_in_transaction(
    conn: &mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move { Ok(!conn.is_in_transaction()) })
}

/// An import's open `BEGIN IMMEDIATE` transaction; rolled back on drop.
struct SqliteImport<'a> {
    store: &'a SqliteStore,
    tx: Transaction<'static, Sqlite>,
    author: String,
    now: i64,
}

#[async_trait]
impl ImportBatch for SqliteImport<'_> {
    async fn add(&mut self, draft: ArticleDraft) -> StoreResult<i64> {
        SqliteStore::insert(&mut self.tx, &self.author, &draft, self.now).await
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.store.commit(self.tx).await
    }
}

#[async_trait]
impl ArticleStore for SqliteStore {
    async fn list(&self, query: &ListQuery) -> StoreResult<Page> {
        // Each filter is driven from the index that narrows it most, so
        // neither the page nor the count reads every article:
        // - text of 3+ characters: the trigram index gives candidates,
        //   `instr` on them decides exactly;
        // - a tag: its range of `article_tags_newest`, already newest first;
        // - text of 1-2 characters (no trigram to look up): a scan;
        // - nothing: `articles_newest`, and the count from `article_count`.
        // The page's ids are picked by a subquery that needs no article
        // column but the ordering ones, so skipping to a deep page walks an
        // index only; page and count come from one statement (one snapshot,
        // one trip to the connection's worker thread).
        let needle = query.text.to_lowercase();
        let trigrams = trigram_match(&needle);
        let tag = query.tag.as_str();
        let mut values: Vec<&str> = Vec::new();
        let (from, id, order) = if let Some(terms) = &trigrams {
            values.extend([terms.as_str(), needle.as_str()]);
            let mut from = "FROM articles_fts CROSS JOIN articles a ON a.id = articles_fts.rowid
                 WHERE articles_fts MATCH ? AND instr(a.search_text, ?) > 0"
                .to_owned();
            if !tag.is_empty() {
                from.push_str(
                    " AND EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.tag = ?)",
                );
                values.push(tag);
            }
            (from, "a.id", "a.create_time DESC, a.id DESC")
        } else if !tag.is_empty() {
            values.push(tag);
            let from = if needle.is_empty() {
                "FROM article_tags t WHERE t.tag = ?".to_owned()
            } else {
                values.push(&needle);
                "FROM article_tags t CROSS JOIN articles a ON a.id = t.article_id
                 WHERE t.tag = ? AND instr(a.search_text, ?) > 0"
                    .to_owned()
            };
            (
                from,
                "t.article_id",
                "t.create_time DESC, t.article_id DESC",
            )
        } else if !needle.is_empty() {
            values.push(&needle);
            (
                "FROM articles a WHERE instr(a.search_text, ?) > 0".to_owned(),
                "a.id",
                "a.create_time DESC, a.id DESC",
            )
        } else {
            (
                "FROM articles a".to_owned(),
                "a.id",
                "a.create_time DESC, a.id DESC",
            )
        };
        let count_sql = if values.is_empty() {
            // Kept by triggers: counting a million index entries per page
            // would be most of a page's cost.
            "SELECT n FROM article_count".to_owned()
        } else {
            format!("SELECT COUNT(*) {from}")
        };
        let page_sql = format!(
            "SELECT {ARTICLE_COLUMNS}, ({count_sql}) AS total_count FROM articles
             WHERE id IN (SELECT {id} {from} ORDER BY {order} LIMIT ? OFFSET ?)
             ORDER BY create_time DESC, id DESC"
        );
        let mut page = sqlx::query(&page_sql);
        for v in values.iter().chain(values.iter()) {
            page = page.bind(*v);
        }
        let rows = page
            .bind(i64::from(query.page_size))
            .bind(i64::try_from(query.offset()).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .lite()?;
        let total_count = match rows.first() {
            Some(row) => row.try_get("total_count").lite()?,
            // A page past the end has no row to carry the count.
            None => {
                let mut count = sqlx::query_scalar(&count_sql);
                for v in &values {
                    count = count.bind(*v);
                }
                count.fetch_one(&self.pool).await.lite()?
            }
        };
        let articles = rows
            .iter()
            .map(article_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Page {
            articles,
            total_count,
        })
    }

    async fn get(&self, id: i64) -> StoreResult<Article> {
        let row = sqlx::query(&format!(
            "SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .lite()?
        .ok_or(ArticleError::NotFound(id))?;
        article_from_row(&row)
    }

    async fn create(&self, author: &str, draft: ArticleDraft) -> StoreResult<Article> {
        let author = author.to_owned();
        match self.writer.write(Op::create(author, draft)).await? {
            Done::Article(article) => Ok(article),
            Done::Deleted => unreachable!("a create answers with its article"),
        }
    }

    async fn update(
        &self,
        id: i64,
        draft: ArticleDraft,
        expected_version: i64,
    ) -> StoreResult<Article> {
        let op = Op::update(id, draft, expected_version);
        match self.writer.write(op).await? {
            Done::Article(article) => Ok(article),
            Done::Deleted => unreachable!("an update answers with its article"),
        }
    }

    async fn delete(&self, id: i64) -> StoreResult<()> {
        self.writer.write(Op::Delete { id }).await.map(drop)
    }

    async fn begin_import(&self, author: &str) -> StoreResult<Box<dyn ImportBatch + '_>> {
        Ok(Box::new(SqliteImport {
            store: self,
            tx: self.write_tx().await?,
            author: author.to_owned(),
            now: now_micros(),
        }))
    }

    async fn changes_after(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT seq, kind, article_id AS id, title, content, author, tags, create_time, update_time, version, old_tags
             FROM article_events WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await.lite()?;
        rows.iter().map(change_from_row).collect()
    }

    async fn sequence_bounds(&self) -> StoreResult<SequenceBounds> {
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM article_events")
            .fetch_one(&self.pool)
            .await
            .lite()?;
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'article_events'")
                .fetch_optional(&self.pool)
                .await
                .lite()?;
        Ok(SequenceBounds {
            oldest,
            newest: newest.unwrap_or(0),
        })
    }

    async fn prune_changes(&self, published: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM article_events WHERE seq <= ?")
            .bind(published - self.retain)
            .execute(&self.pool)
            .await
            .lite()?;
        Ok(())
    }

    async fn count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT n FROM article_count")
            .fetch_one(&self.pool)
            .await
            .lite()?)
    }

    fn generation(&self) -> Option<u64> {
        Some(self.shared.generation.load(Ordering::Acquire))
    }

    fn committed(&self) -> Arc<Notify> {
        self.shared.committed.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.lite()?;
        Ok(())
    }
}

/// Tags as a JSON array for `json_each`. Written out here rather than by a
/// JSON crate: tags are `[a-z0-9-]` (checked by `ArticleDraft`), so each is
/// a JSON string as it stands.
fn json_array(tags: &[String]) -> String {
    if tags.is_empty() {
        "[]".to_owned()
    } else {
        format!("[\"{}\"]", tags.join("\",\""))
    }
}

/// Every sqlx call here maps its error with `.lite()`: there is no
/// `From<sqlx::Error>`, so each store must say whose mapping applies
/// (`postgres` has its own, `.pg()`).
trait SqliteResultExt<T> {
    fn lite(self) -> StoreResult<T>;
}

impl<T> SqliteResultExt<T> for Result<T, sqlx::Error> {
    fn lite(self) -> StoreResult<T> {
        self.map_err(sqlite_error)
    }
}

/// SQLite's answers that a caller can act on get their own errors: a full
/// disk (writes fail, reads work, writes work again once space is freed), a
/// write lock held past the busy timeout, an I/O error. The rest is
/// `Storage` (INTERNAL).
fn sqlite_error(err: sqlx::Error) -> ArticleError {
    let primary = match &err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .map(|code| code & 0xff),
        sqlx::Error::PoolTimedOut => Some(SQLITE_BUSY),
        _ => None,
    };
    error_for_code(primary, err.into())
}

const SQLITE_BUSY: i32 = 5;

/// The error for SQLite's primary result code `primary` (the same for
/// sqlx's errors and the writer's, see `writer::lite`).
fn error_for_code(primary: Option<i32>, err: anyhow::Error) -> ArticleError {
    const SQLITE_LOCKED: i32 = 6;
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_FULL: i32 = 13;
    match primary {
        Some(SQLITE_FULL) => ArticleError::DiskFull(err),
        Some(SQLITE_BUSY | SQLITE_LOCKED) => ArticleError::Busy(err),
        Some(SQLITE_IOERR) => ArticleError::Io(err),
        _ => ArticleError::Storage(err),
    }
}

/// The FTS5 query that finds every article whose search text may contain
/// `needle`: all of its trigrams (every third one and the last suffice: any
/// text containing the needle has them all), each a quoted string with its
/// double quotes doubled, so no character of the needle is FTS5 syntax.
/// `None` below 3 characters, which the trigram index cannot look up.
/// Candidates are a superset; `instr` decides.
fn trigram_match(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < 3 {
        return None;
    }
    let last = chars.len() - 3;
    let mut starts: Vec<usize> = (0..=last).step_by(3).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    let terms: Vec<String> = starts
        .into_iter()
        .map(|i| {
            let trigram: String = chars[i..i + 3].iter().collect();
            format!("\"{}\"", trigram.replace('"', "\"\""))
        })
        .collect();
    Some(terms.join(" AND "))
}

fn article_from_row(row: &SqliteRow) -> StoreResult<Article> {
    rows::article_from_row(row, sqlite_error)
}

fn change_from_row(row: &SqliteRow) -> StoreResult<Change> {
    rows::change_from_row(row, sqlite_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(title: &str, tags: &[&str]) -> ArticleDraft {
        ArticleDraft::new(
            title,
            format!("about {title}"),
            tags.iter().map(|s| s.to_string()).collect(),
        )
        .unwrap()
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url, 1000).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn crud_round_trip_on_a_real_file() {
        let (_dir, s) = store().await;
        let a = s.create("alice", draft("First", &["rust"])).await.unwrap();
        assert_eq!((a.version, a.author.as_str()), (1, "alice"));
        assert_eq!(s.get(a.id).await.unwrap(), a);
        let b = s.update(a.id, draft("First!", &["web"]), 1).await.unwrap();
        assert_eq!(b.version, 2);
        assert!(matches!(
            s.update(a.id, draft("x", &[]), 1).await,
            Err(ArticleError::VersionConflict { actual: 2, .. })
        ));
        s.delete(a.id).await.unwrap();
        assert!(matches!(s.get(a.id).await, Err(ArticleError::NotFound(_))));
        assert!(matches!(
            s.delete(a.id).await,
            Err(ArticleError::NotFound(_))
        ));
        let changes = s.changes_after(0, 10).await.unwrap();
        let seqs: Vec<_> = changes.iter().map(|c| c.sequence).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(changes[1].concerns_tag("rust") && changes[1].concerns_tag("web"));
        assert!(changes[2].concerns_tag("web") && !changes[2].concerns_tag("rust"));
    }

    #[tokio::test]
    async fn search_is_unicode_case_insensitive() {
        let (_dir, s) = store().await;
        s.create("a", draft("ÄRGER im Büro", &[])).await.unwrap();
        let q = ListQuery::new(1, 10, "ärger".into(), String::new()).unwrap();
        assert_eq!(s.list(&q).await.unwrap().total_count, 1);
    }

    #[tokio::test]
    async fn change_log_keeps_the_newest_retained_changes() {
        let (_dir, s) = store().await;
        let drafts: Vec<_> = (0..1005).map(|i| draft(&format!("a{i}"), &[])).collect();
        s.import("a", drafts).await.unwrap();
        // Nothing is pruned before it is published.
        assert_eq!(s.sequence_bounds().await.unwrap().oldest, Some(1));
        s.prune_changes(1005).await.unwrap();
        let b = s.sequence_bounds().await.unwrap();
        assert_eq!(
            b,
            SequenceBounds {
                oldest: Some(6),
                newest: 1005
            }
        );
    }
}
