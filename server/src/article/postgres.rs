//! PostgreSQL storage (sqlx), for several stateless replicas on one
//! database. Same contract, semantics and errors as `sqlite`; all PostgreSQL
//! dialect lives here.
//!
//! # Sequence order is commit order
//! A watcher reads `changes_after(S)` and then never asks for anything at or
//! below the newest sequence it has seen, so a change must never become
//! visible with a sequence below one that is already visible. A `bigserial`
//! cannot promise that: its values are handed out when the row is inserted,
//! not when the transaction commits, so writer A may take 7, writer B take
//! 8 and commit first, a watcher read 8, and A's 7 appear later, behind it.
//!
//! Instead, one row (`article_seq`) holds the newest sequence handed out,
//! and every write transaction takes its numbers from it with
//! `UPDATE article_seq SET seq = seq + n RETURNING seq` as its **last
//! statement before COMMIT** (a single write does it in the statement that
//! inserts its change; an import inserts its changes with a NULL `seq` and
//! an ordinal, then numbers them all in one statement at commit). Why no
//! watcher can skip a change:
//!
//! 1. The UPDATE locks the counter row until the transaction ends. A
//!    transaction that wants the next numbers waits for that lock, and in
//!    READ COMMITTED re-reads the row once the holder has committed, so it
//!    gets the committed value and numbers strictly above it. If the holder
//!    rolls back, its numbers are never committed and the next transaction
//!    takes the same ones again: no gap, no reuse.
//! 2. PostgreSQL makes a transaction visible (removes it from the proc
//!    array) before it releases its locks. So when the transaction that
//!    will take S gets the lock, the one that took S-1 (and by induction
//!    every earlier one) is already visible to every new snapshot, and S
//!    itself becomes visible only later, at its own commit.
//! 3. Hence any snapshot that sees the change numbered S also sees every
//!    change below S: a reader that got S from `changes_after` and asks for
//!    `changes_after(S)` next can only miss changes that do not exist yet,
//!    and those will be numbered above S. Rows with a NULL `seq` belong to
//!    an uncommitted import; no other transaction can see them, and they
//!    are numbered in the same statement that takes the counter.
//!
//! `sequence_bounds().newest` reads the counter's committed value, which by
//! (2) is a sequence below which everything is visible.
//!
//! # Kept counts
//! The number of articles (`article_seq.articles`, migration 0003) and of
//! articles per tag (`tag_counts`, migration 0004) change in the commit
//! tail too, in the same statement that takes the counter, so a snapshot
//! that sees a write sees its deltas, and the unfiltered and tag-only
//! ListArticles totals are one row's read instead of a count of an index.
//! The tag rows are locked after the counter row (each row of the
//! statement's output needs the counter's row, and the rows are sorted
//! before any is written), so only the writer holding the counter ever
//! waits for or holds them: no deadlock, and no more waiting than the
//! counter already causes. Tags are upserted in sorted order anyway.
//!
//! Every write also calls `pg_notify('article_changes', '')`, which
//! PostgreSQL delivers only when (and if) the transaction commits. One task
//! per store listens on that channel and wakes the change feed; since a
//! notification is only a wake-up and is lost while the listener is
//! disconnected, it also wakes the feed after every (re)connect and once a
//! second.
//!
//! # Errors
//! An unreachable database (refused or lost connections, the server
//! shutting down or out of connection slots, no pool connection within the
//! acquire timeout) is `Unavailable` (UNAVAILABLE); a serialization failure
//! or deadlock is `Busy`; a full disk is `DiskFull`. The pool's acquire
//! timeout (5 s by default) also bounds connecting, so no call hangs on a
//! dead database. Connections are checked before use, so the store recovers
//! by itself when the database is back.
//!
//! # Durability
//! A write is acknowledged after COMMIT returns, with the server's
//! `synchronous_commit` (left at PostgreSQL's default, `on`: the commit
//! record is flushed to disk first).
//!
//! # Limits
//! * The commit tails of all writers are serialised on the counter row:
//!   from taking the counter to the end of COMMIT (one WAL flush) no other
//!   write can commit. Everything before the tail (the article rows, an
//!   import's thousands of inserts) runs concurrently, so throughput is
//!   bounded by about one commit per flush, across all replicas.
//! * An import's changes are written twice (inserted, then numbered).
//! * Search is a substring match of `search_text`, and the total count of a
//!   text query counts every match, as with SQLite: both read every
//!   (candidate) row, and no page cache spares the database. (Only the
//!   unfiltered and tag-only totals are kept counts.)
//! * Every replica's feed reads the change log once a second even when
//!   nothing happens (the periodic wake-up), and prunes it after each read.
//! * A connection lost during COMMIT leaves the outcome unknown; the call
//!   then fails with `Unavailable` although the write may have committed
//!   (a watcher will see it). Retrying a create may then create twice.
//! * `generation()` is `None`: a replica cannot know of other replicas'
//!   writes, so the ListArticles page cache is off.
//! * The migrations take sqlx's advisory lock (`pg_advisory_lock` on an id
//!   derived from the database name, held while they run), so replicas
//!   that start at once migrate one after another, and the later ones find
//!   nothing left to do.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Postgres, Row, Transaction,
    postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow},
};
use tokio::{sync::Notify, task::JoinHandle};

use super::{
    Article, ArticleDraft, ArticleError, ListQuery, Page,
    rows::{self, micros, now_micros, search_text, split_tags},
    store::{ArticleStore, Change, ImportBatch, SequenceBounds, StoreResult},
};

/// Runs under sqlx's migration lock: `pg_advisory_lock` on a key derived
/// from the database name (sqlx-postgres 0.8 `migrate.rs`, `lock`), so
/// concurrent starts of several replicas are safe.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The main statement of a commit tail whose first CTE `s` takes the
/// counter: adds the deltas of the parallel arrays `$tags` (text[], sorted,
/// no tag twice) and `$deltas` (bigint[]) to `tag_counts`. Joining `s`
/// makes every row to write wait for the counter's row, and the sort
/// reads them all before the first is written: the tag rows are locked
/// only by the holder of the counter (see the module doc).
macro_rules! add_tag_counts {
    ($tags:literal, $deltas:literal) => {
        concat!(
            "INSERT INTO tag_counts (tag, articles)
             SELECT d.tag, d.delta FROM s, unnest(",
            $tags,
            "::text[], ",
            $deltas,
            "::bigint[]) AS d (tag, delta) ORDER BY d.tag
             ON CONFLICT (tag) DO UPDATE SET articles = tag_counts.articles + excluded.articles"
        )
    };
}

/// The channel every write notifies on commit.
const CHANNEL: &str = "article_changes";
/// How often the feed is woken even without a notification.
const WAKE_EVERY: Duration = Duration::from_secs(1);
/// Key of the transaction-scoped advisory lock `create_all_if_empty` takes.
const LOAD_IF_EMPTY_LOCK: i64 = 0x6172_7469_636c_6501;

const ARTICLE_COLUMNS: &str = "id, title, content, author, tags, create_time, update_time, version";

/// Pool settings of a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections to the database at most (the listener has one more).
    pub max_connections: u32,
    /// How long a call waits for a connection (including connecting)
    /// before it fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Articles in one PostgreSQL database, shared with other replicas.
pub struct PostgresStore {
    pool: PgPool,
    retain: i64,
    committed: Arc<Notify>,
    /// The listener and the periodic wake-up, ended with the store.
    wakers: [JoinHandle<()>; 2],
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for task in &self.wakers {
            task.abort();
        }
    }
}

impl PostgresStore {
    /// Connects to and migrates the database at `url`
    /// (`postgres://…` or `postgresql://…`), and starts the task that
    /// listens for other replicas' commits. `retain` is how many recent
    /// changes the change log keeps.
    pub async fn open(url: &str, retain: u64, options: PostgresOptions) -> anyhow::Result<Self> {
        let connect: PgConnectOptions = url.parse()?;
        let connect = connect.application_name("article-server");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // Its own pool of one, so the listener never takes a connection a
        // call is waiting for.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(connect);
        let committed = Arc::new(Notify::new());
        let wakers = [
            tokio::spawn(listen(listen_pool, committed.clone())),
            tokio::spawn(wake_periodically(committed.clone())),
        ];
        Ok(Self {
            pool,
            retain: retain.max(1000) as i64,
            committed,
            wakers,
        })
    }

    /// READ COMMITTED whatever the server's default: the counter's UPDATE
    /// must re-read the row its predecessor committed, not fail as a
    /// serialization conflict.
    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .pg()
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>) -> StoreResult<()> {
        tx.commit().await.pg()?;
        self.committed.notify_one();
        Ok(())
    }

    async fn insert(
        tx: &mut Transaction<'static, Postgres>,
        author: &str,
        draft: &ArticleDraft,
        now: i64,
    ) -> StoreResult<Article> {
        let row = sqlx::query(&format!(
            "INSERT INTO articles (title, content, author, tags, search_text, create_time, update_time, version)
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1) RETURNING {ARTICLE_COLUMNS}"
        ))
        .bind(draft.title())
        .bind(draft.content())
        .bind(author)
        .bind(draft.tags().join(","))
        .bind(search_text(draft))
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .pg()?;
        let article = article_from_row(&row)?;
        insert_tags(tx, article.id, now, draft.tags()).await?;
        Ok(article)
    }

    /// The commit tail of a single write: notify, then take the next
    /// sequence, add the write's change to the article count and the tag
    /// counts, and record the change, in one statement. Nothing may run in
    /// `tx` after this but COMMIT (see the module doc).
    async fn record(
        tx: &mut Transaction<'static, Postgres>,
        kind: &str,
        article: Option<&Article>,
        id: i64,
        old_tags: Option<&[String]>,
    ) -> StoreResult<()> {
        let mut tags = TagDeltas::default();
        tags.add(old_tags.unwrap_or_default(), -1);
        tags.add(article.map_or(&[][..], |a| &a.tags), 1);
        let (tag_names, tag_deltas) = tags.arrays();
        notify(tx).await?;
        let delta: i64 = match kind {
            "created" => 1,
            "deleted" => -1,
            _ => 0,
        };
        let event = bind_event(
            sqlx::query(concat!(
                "WITH s AS (UPDATE article_seq SET seq = seq + 1, articles = articles + $12 RETURNING seq),
                 logged AS (INSERT INTO article_events
                   (seq, ord, kind, article_id, title, content, author, tags, create_time, update_time, version, old_tags)
                 SELECT s.seq, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM s) ",
                add_tag_counts!("$13", "$14"),
            )),
            None,
            kind,
            article,
            id,
            old_tags,
        )
        .bind(delta)
        .bind(tag_names)
        .bind(tag_deltas);
        event.execute(&mut **tx).await.pg()?;
        Ok(())
    }

    fn begin_batch(&self, tx: Transaction<'static, Postgres>, author: &str) -> PostgresImport<'_> {
        PostgresImport {
            store: self,
            tx,
            author: author.to_owned(),
            now: now_micros(),
            added: 0,
            tags: TagDeltas::default(),
        }
    }
}

async fn notify(tx: &mut Transaction<'static, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut **tx)
        .await
        .pg()?;
    Ok(())
}

/// Binds `ord` and the change's columns, `$1` to `$11`.
fn bind_event<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ord: Option<i64>,
    kind: &'q str,
    article: Option<&'q Article>,
    id: i64,
    old_tags: Option<&[String]>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(ord)
        .bind(kind)
        .bind(id)
        .bind(article.map(|a| a.title.as_str()))
        .bind(article.map(|a| a.content.as_str()))
        .bind(article.map(|a| a.author.as_str()))
        .bind(article.map(|a| a.tags.join(",")))
        .bind(article.map(|a| micros(a.create_time)))
        .bind(article.map(|a| micros(a.update_time)))
        .bind(article.map(|a| a.version))
        .bind(old_tags.map(|t| t.join(",")))
}

/// Wakes `committed` every [`WAKE_EVERY`], whatever the listener's state:
/// a notification is only a wake-up, lost while disconnected.
async fn wake_periodically(committed: Arc<Notify>) {
    let mut tick = tokio::time::interval(WAKE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        committed.notify_one();
    }
}

/// Wakes `committed` on every notification of a commit (another replica's
/// or this one's) and after every (re)connect; runs until the store aborts
/// it. `try_recv` is never cancelled half-way (the periodic wake-up is a
/// task of its own), and reconnects by itself within the pool's acquire
/// timeout; when that fails, the listener is made anew every second.
async fn listen(pool: PgPool, committed: Arc<Notify>) {
    let mut down_logged = false;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match connected.await {
            Ok(listener) => listener,
            Err(err) => {
                if !down_logged {
                    tracing::warn!(error = %err, "cannot listen for commits of other replicas; retrying every second");
                    down_logged = true;
                }
                tokio::time::sleep(WAKE_EVERY).await;
                continue;
            }
        };
        if down_logged {
            // (Set again below before the next failure is logged.)
            tracing::info!("listening for commits of other replicas again");
        }
        // Whatever was notified while disconnected is lost: look now.
        committed.notify_one();
        loop {
            match listener.try_recv().await {
                // `None`: the connection was lost and has been
                // re-established (and LISTEN repeated).
                Ok(_) => committed.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "lost the connection listening for commits of other replicas; reconnecting every second");
                    down_logged = true;
                    break;
                }
            }
        }
    }
}

/// An import's open transaction; rolled back on drop.
struct PostgresImport<'a> {
    store: &'a PostgresStore,
    tx: Transaction<'static, Postgres>,
    author: String,
    now: i64,
    /// Changes added so far: the ordinal of the next one.
    added: i64,
    /// What the added articles add to `tag_counts` at commit (one entry
    /// per distinct tag, however many articles).
    tags: TagDeltas,
}

impl PostgresImport<'_> {
    async fn add_at(&mut self, draft: ArticleDraft, now: i64) -> StoreResult<i64> {
        let article = PostgresStore::insert(&mut self.tx, &self.author, &draft, now).await?;
        self.added += 1;
        self.tags.add(&article.tags, 1);
        // Numbered at commit (`seq` NULL until then), so memory stays
        // bounded and the counter is not held for the whole import.
        bind_event(
            sqlx::query(
                "INSERT INTO article_events
                   (seq, ord, kind, article_id, title, content, author, tags, create_time, update_time, version, old_tags)
                 VALUES (NULL, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            ),
            Some(self.added),
            "created",
            Some(&article),
            article.id,
            None,
        )
        .execute(&mut *self.tx)
        .await
        .pg()?;
        Ok(article.id)
    }
}

#[async_trait]
impl ImportBatch for PostgresImport<'_> {
    async fn add(&mut self, draft: ArticleDraft) -> StoreResult<i64> {
        self.add_at(draft, self.now).await
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        if self.added > 0 {
            notify(&mut self.tx).await?;
            // The commit tail: take `added` numbers and give them to this
            // transaction's own pending rows, the only NULL ones it sees;
            // every change of an import creates an article.
            let (tag_names, tag_deltas) = self.tags.arrays();
            sqlx::query(concat!(
                "WITH s AS (UPDATE article_seq SET seq = seq + $1, articles = articles + $1 RETURNING seq - $1 AS base),
                 numbered AS (UPDATE article_events e SET seq = s.base + e.ord, ord = NULL
                   FROM s WHERE e.seq IS NULL) ",
                add_tag_counts!("$2", "$3"),
            ))
            .bind(self.added)
            .bind(tag_names)
            .bind(tag_deltas)
            .execute(&mut *self.tx)
            .await
            .pg()?;
        }
        self.store.commit(self.tx).await
    }
}

#[async_trait]
impl ArticleStore for PostgresStore {
    async fn list(&self, query: &ListQuery) -> StoreResult<Page> {
        // Each filter can be answered from an index, so neither the page nor
        // the count has to read every article:
        // - text of 3+ characters: `LIKE '%needle%'`, which the GIN trigram
        //   index `articles_search_trgm` serves (`strpos` cannot use it),
        //   rechecked exactly by PostgreSQL;
        // - a tag: its range of `article_tags_newest`, already newest first;
        // - text of 1-2 characters (no trigram to look up): a scan;
        // - nothing: `articles_newest`.
        // The page's ids are picked by a subquery that needs only the
        // ordering columns, so skipping to a deep page is an index-only walk.
        let needle = query.text.to_lowercase();
        let tag = query.tag.as_str();
        let mut values: Vec<String> = Vec::new();
        let mut param = |v: String| {
            values.push(v);
            format!("${}", values.len())
        };
        let text_condition = if needle.chars().count() >= 3 {
            format!(
                "a.search_text LIKE {} ESCAPE '\\'",
                param(format!("%{}%", like_escape(&needle)))
            )
        } else if !needle.is_empty() {
            format!("strpos(a.search_text, {}) > 0", param(needle.clone()))
        } else {
            String::new()
        };
        // A tag-only filter's total is its kept count (migration 0004).
        let mut kept_tag_count = None;
        let (from, id, order) = if !tag.is_empty() && text_condition.is_empty() {
            let tag = param(tag.to_owned());
            kept_tag_count = Some(format!(
                "SELECT COALESCE((SELECT articles FROM tag_counts WHERE tag = {tag}), 0)"
            ));
            (
                format!("FROM article_tags t WHERE t.tag = {tag}"),
                "t.article_id",
                "t.create_time DESC, t.article_id DESC",
            )
        } else {
            let mut conditions = Vec::new();
            if !text_condition.is_empty() {
                conditions.push(text_condition);
            }
            if !tag.is_empty() {
                conditions.push(format!(
                    "EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.tag = {})",
                    param(tag.to_owned())
                ));
            }
            let filter = if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            };
            (
                format!("FROM articles a{filter}"),
                "a.id",
                "a.create_time DESC, a.id DESC",
            )
        };
        // Unfiltered: the count kept with the sequence (migration 0003),
        // not a walk of the whole primary-key index.
        let count_sql = if values.is_empty() {
            "SELECT articles FROM article_seq".to_owned()
        } else if let Some(kept) = kept_tag_count {
            kept
        } else {
            format!("SELECT COUNT(*) {from}")
        };
        let n = values.len();
        let page_sql = format!(
            "SELECT {ARTICLE_COLUMNS}, ({count_sql}) AS total_count FROM articles
             WHERE id IN (SELECT {id} {from} ORDER BY {order} LIMIT ${} OFFSET ${})
             ORDER BY create_time DESC, id DESC",
            n + 1,
            n + 2
        );
        let mut page = sqlx::query(&page_sql);
        for v in &values {
            page = page.bind(v);
        }
        let rows = page
            .bind(i64::from(query.page_size))
            .bind(i64::try_from(query.offset()).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .pg()?;
        let total_count = match rows.first() {
            Some(row) => row.try_get("total_count").pg()?,
            // A page past the end has no row to carry the count.
            None => {
                let mut count = sqlx::query_scalar(&count_sql);
                for v in &values {
                    count = count.bind(v);
                }
                count.fetch_one(&self.pool).await.pg()?
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
            "SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .pg()?
        .ok_or(ArticleError::NotFound(id))?;
        article_from_row(&row)
    }

    async fn create(&self, author: &str, draft: ArticleDraft) -> StoreResult<Article> {
        let mut tx = self.begin().await?;
        let article = Self::insert(&mut tx, author, &draft, now_micros()).await?;
        Self::record(&mut tx, "created", Some(&article), article.id, None).await?;
        self.commit(tx).await?;
        Ok(article)
    }

    async fn update(
        &self,
        id: i64,
        draft: ArticleDraft,
        expected_version: i64,
    ) -> StoreResult<Article> {
        let mut tx = self.begin().await?;
        // FOR UPDATE: a concurrent update of the same article waits here,
        // then sees the committed version (no lost update).
        let row = sqlx::query("SELECT version, tags FROM articles WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .pg()?
            .ok_or(ArticleError::NotFound(id))?;
        let version: i64 = row.try_get("version").pg()?;
        let old_tags = split_tags(row.try_get("tags").pg()?);
        if expected_version != 0 && expected_version != version {
            return Err(ArticleError::VersionConflict {
                id,
                expected: expected_version,
                actual: version,
            });
        }
        let row = sqlx::query(&format!(
            "UPDATE articles SET title = $1, content = $2, tags = $3, search_text = $4, update_time = $5, version = version + 1
             WHERE id = $6 RETURNING {ARTICLE_COLUMNS}"
        ))
        .bind(draft.title())
        .bind(draft.content())
        .bind(draft.tags().join(","))
        .bind(search_text(&draft))
        .bind(now_micros())
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .pg()?;
        let article = article_from_row(&row)?;
        sqlx::query("DELETE FROM article_tags WHERE article_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .pg()?;
        insert_tags(&mut tx, id, micros(article.create_time), draft.tags()).await?;
        Self::record(&mut tx, "updated", Some(&article), id, Some(&old_tags)).await?;
        self.commit(tx).await?;
        Ok(article)
    }

    async fn delete(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let tags: String = sqlx::query_scalar("DELETE FROM articles WHERE id = $1 RETURNING tags")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .pg()?
            .ok_or(ArticleError::NotFound(id))?;
        Self::record(&mut tx, "deleted", None, id, Some(&split_tags(tags))).await?;
        self.commit(tx).await
    }

    /// Unlike SQLite, other writes go on while an import is open; only its
    /// commit waits for (and then holds up) theirs.
    async fn begin_import(&self, author: &str) -> StoreResult<Box<dyn ImportBatch + '_>> {
        let tx = self.begin().await?;
        Ok(Box::new(self.begin_batch(tx, author)))
    }

    async fn create_all_if_empty(
        &self,
        author: &str,
        drafts: Vec<ArticleDraft>,
    ) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        // Replicas starting at once on an empty database queue here; the
        // count below then sees what the first one committed.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOAD_IF_EMPTY_LOCK)
            .execute(&mut *tx)
            .await
            .pg()?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
            .fetch_one(&mut *tx)
            .await
            .pg()?;
        if count > 0 {
            return Ok(0);
        }
        let mut batch = self.begin_batch(tx, author);
        let n = drafts.len();
        let start = batch.now;
        // Each its own create_time, a microsecond apart, in the given order.
        for (i, draft) in drafts.into_iter().enumerate() {
            batch.add_at(draft, start + i as i64).await?;
        }
        Box::new(batch).commit().await?;
        Ok(n)
    }

    async fn changes_after(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT seq, kind, article_id AS id, title, content, author, tags, create_time, update_time, version, old_tags
             FROM article_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter().map(change_from_row).collect()
    }

    async fn sequence_bounds(&self) -> StoreResult<SequenceBounds> {
        // One statement, one snapshot.
        let row = sqlx::query(
            "SELECT (SELECT MIN(seq) FROM article_events) AS oldest,
                    (SELECT seq FROM article_seq) AS newest",
        )
        .fetch_one(&self.pool)
        .await
        .pg()?;
        Ok(SequenceBounds {
            oldest: row.try_get("oldest").pg()?,
            newest: row.try_get::<Option<i64>, _>("newest").pg()?.unwrap_or(0),
        })
    }

    async fn prune_changes(&self, published: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM article_events WHERE seq <= $1")
            .bind(published - self.retain)
            .execute(&self.pool)
            .await
            .pg()?;
        Ok(())
    }

    async fn count(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT articles FROM article_seq")
            .fetch_one(&self.pool)
            .await
            .pg()
    }

    /// `None`: other replicas write to the same database unseen.
    fn generation(&self) -> Option<u64> {
        None
    }

    fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.pg()?;
        Ok(())
    }
}

/// Per-tag changes of the article counts in one transaction. Sorted by tag
/// (a `BTreeMap`), so `tag_counts` rows are upserted in one global order,
/// and each tag once (an upsert may not touch a row twice).
#[derive(Default)]
struct TagDeltas(BTreeMap<String, i64>);

impl TagDeltas {
    fn add(&mut self, tags: &[String], delta: i64) {
        for tag in tags {
            *self.0.entry(tag.clone()).or_default() += delta;
        }
    }

    /// The tags whose count changes and their deltas, as parallel arrays
    /// (an update that keeps a tag changes nothing for it).
    fn arrays(&self) -> (Vec<&str>, Vec<i64>) {
        self.0
            .iter()
            .filter(|(_, delta)| **delta != 0)
            .map(|(tag, delta)| (tag.as_str(), *delta))
            .unzip()
    }
}

/// `create_time` is the article's: the tag filter orders by it.
async fn insert_tags(
    tx: &mut Transaction<'static, Postgres>,
    id: i64,
    create_time: i64,
    tags: &[String],
) -> StoreResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO article_tags (article_id, tag, create_time) SELECT $1, unnest($2::text[]), $3",
    )
    .bind(id)
    .bind(tags)
    .bind(create_time)
    .execute(&mut **tx)
    .await
    .pg()?;
    Ok(())
}

/// PostgreSQL's answers that a caller can act on get their own errors.
/// There is no `From<sqlx::Error>` for `ArticleError`: every sqlx call here
/// maps its error with `.pg()` (and `sqlite` with its own `.lite()`).
trait PgResultExt<T> {
    fn pg(self) -> StoreResult<T>;
}

impl<T> PgResultExt<T> for Result<T, sqlx::Error> {
    fn pg(self) -> StoreResult<T> {
        self.map_err(pg_error)
    }
}

/// An unreachable database is `Unavailable`: the connection failed or was
/// lost (sqlx `Io`, `Tls`, SQLSTATE class 08), the server is shutting down
/// or starting (57P01, 57P02, 57P03), it has no connection slot left
/// (53300), or the pool had no connection within its acquire timeout.
/// Serialization failures and deadlocks (40001, 40P01) are `Busy`; a full
/// disk (53100) is `DiskFull`. The rest is `Storage` (INTERNAL).
pub(crate) fn pg_error(err: sqlx::Error) -> ArticleError {
    let code = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => return ArticleError::Unavailable(err.into()),
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some(c) if c.starts_with("08") => ArticleError::Unavailable(err.into()),
        Some("57P01" | "57P02" | "57P03" | "53300") => ArticleError::Unavailable(err.into()),
        Some("40001" | "40P01") => ArticleError::Busy(err.into()),
        Some("53100") => ArticleError::DiskFull(err.into()),
        _ => ArticleError::Storage(err.into()),
    }
}

/// `needle` as a literal inside a LIKE pattern with `ESCAPE '\\'`.
fn like_escape(needle: &str) -> String {
    let mut escaped = String::with_capacity(needle.len());
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn article_from_row(row: &PgRow) -> StoreResult<Article> {
    rows::article_from_row(row, pg_error)
}

fn change_from_row(row: &PgRow) -> StoreResult<Change> {
    rows::change_from_row(row, pg_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_database_errors_are_unavailable() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(pg_error(refused), ArticleError::Unavailable(_)));
        assert!(matches!(
            pg_error(sqlx::Error::PoolTimedOut),
            ArticleError::Unavailable(_)
        ));
        assert!(matches!(
            pg_error(sqlx::Error::RowNotFound),
            ArticleError::Storage(_)
        ));
    }
}
