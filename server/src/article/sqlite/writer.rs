//! Group commit: the one writer of a SQLite store.
//!
//! Every create, update and delete is queued to one thread. It takes every
//! op queued while the previous commit was syncing (at most
//! [`MAX_BATCH_OPS`] ops and about [`MAX_BATCH_BYTES`] bytes of article
//! text), runs them in one `BEGIN IMMEDIATE` transaction and commits them
//! with one `COMMIT` (see [`plain_pass`]; if an op fails half-way, the
//! batch is run again with each op inside its own `SAVEPOINT`,
//! [`savepoint_pass`]): one WAL fsync for
//! the lot instead of one per op (`synchronous=FULL`), and no race for the
//! write lock: with a connection per writer, the losers of each race slept
//! in SQLite's busy handler, so 64 writers were no faster than one.
//!
//! What each caller keeps, as if it had had a transaction of its own:
//! - its own all-or-nothing outcome and its own error: an op that fails is
//!   rolled back alone and answered with its error (NotFound,
//!   VersionConflict, a constraint), the others in the batch still commit;
//! - its own change sequence: ops are applied and numbered in queue order,
//!   and batches commit one after the other, so sequence order is commit
//!   order;
//! - acknowledged = durable: nobody is answered before the `COMMIT` has
//!   returned; the store's generation is bumped after the commit and before
//!   any answer, then the change feed is signalled.
//!
//! If something breaks the transaction itself (SQLite rolled it back after
//! a full disk or an I/O error, or the `COMMIT` fails), every op of the
//! batch that had not already failed on its own gets that error: nothing of
//! the batch was written.
//!
//! Limits:
//! - The queue holds [`WRITE_QUEUE`] ops; a caller finding it full waits
//!   for room (it is not refused): with one writer draining up to
//!   [`MAX_BATCH_OPS`] ops per commit the wait is short, and the time spent
//!   waiting counts towards the busy timeout below.
//! - An op that cannot get the write lock (an import holds it) within the
//!   store's busy timeout of being queued is answered `Busy` (UNAVAILABLE)
//!   and not written, as a writer of its own would have been. While the
//!   lock is held, newly queued ops join the waiting batch.
//! - Cancellation: a caller that drops its future while waiting for room in
//!   the queue has queued nothing. Once queued, the op is written (or
//!   fails) whether or not anyone still waits for the answer, exactly as a
//!   commit already under way when a client disconnects; it is never
//!   written twice.
//! - Imports do not go through the writer: an import is one long
//!   transaction of its own on another connection, committed or rolled
//!   back as a whole, never merged with the writer's batches.

//!
//! The writer runs on a thread of its own and drives its connection
//! through rusqlite, not sqlx: sqlx makes every statement a round trip
//! between the caller's task and the connection's worker thread (a channel
//! send and a wake-up each way), and the writer runs its ops one after the
//! other, so at 64 writers its SQLite thread sat idle more than half of the
//! time, waiting for the next statement. Here a whole batch runs on one
//! thread without a wake-up, on a connection of the writer's own
//! ([`open_connection`]).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    super::{
        Article, ArticleDraft, ArticleError,
        rows::{micros, now_micros, search_text, split_tags, time},
        store::StoreResult,
    },
    error_for_code, json_array,
};

/// Ops that may wait in the writer's queue; callers beyond it wait for room.
pub const WRITE_QUEUE: usize = 1024;
/// Most ops in one transaction.
pub const MAX_BATCH_OPS: usize = 256;
/// About the most bytes of article text (titles, contents, tags) in one
/// transaction; a single larger op still goes alone.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// How long one attempt to take the write lock waits (the busy timeout of
/// the writer's connection) before the writer looks at its queue again
/// (expired ops, newcomers to the batch).
pub(super) const LOCK_POLL: Duration = Duration::from_millis(100);

/// One write.
pub(super) enum Op {
    Create {
        author: String,
        draft: ArticleDraft,
        columns: Columns,
    },
    Update {
        id: i64,
        draft: ArticleDraft,
        expected_version: i64,
        columns: Columns,
    },
    Delete {
        id: i64,
    },
}

/// The stored forms of a draft's tags and text. For the writer's ops they
/// are made by the caller's task before the op is queued ([`Op::create`],
/// [`Op::update`]), so the one writer thread does not spend its time on
/// them; an import makes them as it adds each article.
pub(super) struct Columns {
    /// Comma-separated.
    pub tags: String,
    /// A JSON array, for `json_each`.
    pub tags_json: String,
    pub search_text: String,
}

impl Columns {
    pub fn of(draft: &ArticleDraft) -> Self {
        Self {
            tags: draft.tags().join(","),
            tags_json: json_array(draft.tags()),
            search_text: search_text(draft),
        }
    }
}

impl Op {
    pub fn create(author: String, draft: ArticleDraft) -> Self {
        let columns = Columns::of(&draft);
        Op::Create {
            author,
            draft,
            columns,
        }
    }

    pub fn update(id: i64, draft: ArticleDraft, expected_version: i64) -> Self {
        let columns = Columns::of(&draft);
        Op::Update {
            id,
            draft,
            expected_version,
            columns,
        }
    }

    fn bytes(&self) -> usize {
        let draft = |d: &ArticleDraft| {
            d.title().len() + d.content().len() + d.tags().iter().map(String::len).sum::<usize>()
        };
        match self {
            Op::Create { draft: d, .. } | Op::Update { draft: d, .. } => draft(d),
            Op::Delete { .. } => 0,
        }
    }
}

/// What a successful op answers.
pub(super) enum Done {
    Article(Article),
    Deleted,
}

struct Job {
    op: Op,
    queued: Instant,
    reply: oneshot::Sender<StoreResult<Done>>,
}

/// What the store and its writer share.
pub(super) struct Shared {
    /// See `ArticleStore::generation`.
    pub generation: AtomicU64,
    pub committed: Arc<Notify>,
    commits: AtomicU64,
    ops: AtomicU64,
    in_batch: AtomicUsize,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            committed: Arc::new(Notify::new()),
            commits: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            in_batch: AtomicUsize::new(0),
        }
    }

    pub fn stats(&self) -> WriteStats {
        WriteStats {
            commits: self.commits.load(Ordering::Acquire),
            ops: self.ops.load(Ordering::Acquire),
            in_batch: self.in_batch.load(Ordering::Acquire),
        }
    }
}

/// Counts of the writer since the store was opened (imports not included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Ops committed (failed ops not included).
    pub ops: u64,
    /// Ops in the batch the writer is working on now (waiting for the
    /// write lock or being written), 0 when idle.
    pub in_batch: usize,
}

/// SQLite's VFS for a database in memory that several connections of
/// the process share (the store's `sqlite::memory:`).
pub(super) const MEMORY_VFS: &str = "memdb";

/// The writer's connection to the database at `path` (already created and
/// migrated by the store's pool; in memory, the `memdb` database of that
/// name), set up as the pool's are: WAL with `synchronous=FULL` (an
/// acknowledged write survives a crash; in memory, a journal in memory),
/// foreign keys on, and a busy timeout of [`LOCK_POLL`] per attempt.
///
/// Its savepoint journal stays in memory (`temp_store=MEMORY`): a batch
/// runs inside a savepoint ([`plain_pass`]), so SQLite keeps the
/// first-touched image of every page the batch changes, and past 64 KiB it
/// wrote them to a temporary file, a `pwrite` per page: 3.5 × the WAL's own
/// writes with 1.5 KB articles, and 11 % of the writer's thread. The memory
/// is bounded by the batch ([`MAX_BATCH_OPS`], [`MAX_BATCH_BYTES`]): about
/// one page image per page the batch writes, freed when it commits.
pub(super) fn open_connection(path: &Path, memory: bool) -> anyhow::Result<Connection> {
    let conn = if memory {
        Connection::open_with_flags_and_vfs(path, OpenFlags::default(), MEMORY_VFS)?
    } else {
        Connection::open(path)?
    };
    conn.busy_timeout(LOCK_POLL)?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    let want = if memory { "memory" } else { "wal" };
    let mode: String = conn.query_row(&format!("PRAGMA journal_mode = {want}"), [], |row| {
        row.get(0)
    })?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case(want),
        "the writer's connection to {} is in journal mode {mode}, not {want}",
        path.display()
    );
    Ok(conn)
}

/// The handle callers queue ops on. Dropping it ends the writer thread
/// once the queue is drained, and waits for it: the writer's connection is
/// closed (its last commits checkpointed into the database file) before the
/// store is gone, so a process that stops cleanly leaves a complete file.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; `busy_timeout` is how long an
    /// op may wait for the write lock from the moment it is queued.
    pub fn spawn(
        conn: Connection,
        shared: Arc<Shared>,
        busy_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run(&conn, &shared, rx, busy_timeout);
                // Whether or not other connections are still open, the
                // database file then holds every commit.
                if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %err, "the SQLite writer could not checkpoint as it stopped");
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `op` and waits for its own outcome.
    pub async fn write(&self, op: Op) -> StoreResult<Done> {
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            op,
            queued: Instant::now(),
            reply,
        };
        queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Nothing can be queued any more: the thread drains the queue
        // (at most one batch is under way) and ends.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> ArticleError {
    ArticleError::storage(anyhow::anyhow!("the SQLite writer has stopped"))
}

/// The ops of one transaction, oldest first.
struct Batch {
    jobs: Vec<Job>,
    bytes: usize,
}

impl Batch {
    /// Adds queued ops (the one held back last time first) while the
    /// limits allow; an op that would pass the byte limit is held back for
    /// the next batch, unless the batch is empty.
    fn fill(&mut self, rx: &mut mpsc::Receiver<Job>, held: &mut Option<Job>) {
        while self.jobs.len() < MAX_BATCH_OPS {
            let Some(job) = held.take().or_else(|| rx.try_recv().ok()) else {
                return;
            };
            let bytes = job.op.bytes();
            if !self.jobs.is_empty() && self.bytes + bytes > MAX_BATCH_BYTES {
                *held = Some(job);
                return;
            }
            self.bytes += bytes;
            self.jobs.push(job);
        }
    }

    /// Answers `Busy` to the ops that have waited `busy_timeout` since
    /// they were queued.
    fn expire(&mut self, busy_timeout: Duration) {
        let now = Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) = self
            .jobs
            .drain(..)
            .partition(|job| now.duration_since(job.queued) >= busy_timeout);
        self.jobs = waiting;
        self.bytes = self.jobs.iter().map(|j| j.op.bytes()).sum();
        for job in expired {
            let _ = job.reply.send(Err(ArticleError::Busy(anyhow::anyhow!(
                "the write lock was not free within {busy_timeout:?}"
            ))));
        }
    }

    /// Answers `err` to every op of the batch.
    fn fail(&mut self, err: &ArticleError) {
        for job in self.jobs.drain(..) {
            let _ = job.reply.send(Err(copy(err)));
        }
    }
}

/// The writer thread: a batch at a time until every handle is gone.
fn run(conn: &Connection, shared: &Shared, mut rx: mpsc::Receiver<Job>, busy_timeout: Duration) {
    let mut held = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.blocking_recv() {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = Batch {
            bytes: first.op.bytes(),
            jobs: vec![first],
        };
        write_batch(conn, shared, &mut rx, &mut held, &mut batch, busy_timeout);
        shared.in_batch.store(0, Ordering::Release);
    }
}

/// Takes the write lock for `batch`, adding newly queued ops while it
/// waits, and writes the batch.
fn write_batch(
    conn: &Connection,
    shared: &Shared,
    rx: &mut mpsc::Receiver<Job>,
    held: &mut Option<Job>,
    batch: &mut Batch,
    busy_timeout: Duration,
) {
    // A transaction left open by a failure SQLite did not roll back.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    loop {
        batch.fill(rx, held);
        batch.expire(busy_timeout);
        shared.in_batch.store(batch.jobs.len(), Ordering::Release);
        if batch.jobs.is_empty() {
            return;
        }
        let attempt = Instant::now();
        match conn.execute_batch("BEGIN IMMEDIATE").map_err(lite) {
            Ok(()) => break,
            Err(ArticleError::Busy(_)) => {
                // SQLite's busy handler normally waits out LOCK_POLL; if it
                // answered at once, don't spin.
                if attempt.elapsed() < LOCK_POLL / 10 {
                    std::thread::sleep(LOCK_POLL / 10);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, ops = batch.jobs.len(), "a write batch could not begin");
                batch.fail(&err);
                return;
            }
        }
    }
    write(conn, std::mem::take(&mut batch.jobs), shared);
}

/// How a pass over the batch ended.
enum Pass {
    /// Every op has its result (written, or failed having written
    /// nothing), unless `broken`: the transaction is unusable and the ops
    /// without a result of their own get that error.
    Done {
        results: Vec<StoreResult<Done>>,
        broken: Option<ArticleError>,
    },
    /// An op failed half-way; `ROLLBACK TO batch` undid the whole pass.
    Redo,
}

/// Whether an op that failed with `err` wrote nothing (see [`apply`]).
fn wrote_nothing(err: &ArticleError) -> bool {
    matches!(
        err,
        ArticleError::NotFound(_) | ArticleError::VersionConflict { .. }
    )
}

fn write(conn: &Connection, jobs: Vec<Job>, shared: &Shared) {
    let pass = match plain_pass(conn, &jobs) {
        Pass::Redo => savepoint_pass(conn, &jobs),
        done => done,
    };
    let Pass::Done { results, broken } = pass else {
        unreachable!("the savepoint pass never asks for a redo")
    };
    let outcome = match broken {
        Some(err) => {
            // Often SQLite has already rolled back, and this fails.
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
        None => conn.execute_batch("COMMIT").map_err(lite),
    };
    // Before any answer (see `ArticleStore::generation`); bumped whatever
    // the outcome: a needless bump only costs a cache miss.
    shared.generation.fetch_add(1, Ordering::AcqRel);
    match outcome {
        Ok(()) => {
            let written = results.iter().filter(|r| r.is_ok()).count() as u64;
            shared.ops.fetch_add(written, Ordering::AcqRel);
            shared.commits.fetch_add(1, Ordering::AcqRel);
            shared.committed.notify_one();
            for (job, result) in jobs.into_iter().zip(results) {
                // The caller may be gone; its op is committed all the same.
                let _ = job.reply.send(result);
            }
        }
        Err(err) => {
            // A failed COMMIT may leave the transaction open.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            tracing::warn!(error = %err, ops = jobs.len(), "a write batch failed; none of it was written");
            let mut results = results.into_iter();
            for job in jobs {
                let result = match results.next() {
                    Some(Err(own)) => Err(own),
                    Some(Ok(_)) | None => Err(copy(&err)),
                };
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Leaves new articles out of the search index until [`index_new`] adds
/// them (migration `0003_fts_deferred`). Only inside a write transaction
/// that ends with [`UNDEFER_INDEX`] before it commits.
const DEFER_INDEX: &str = "UPDATE article_fts_deferred SET deferred = 1 WHERE one = 1";
const UNDEFER_INDEX: &str = "UPDATE article_fts_deferred SET deferred = 0 WHERE one = 1";
/// The newest article, indexed or not.
const NEWEST: &str = "SELECT coalesce(max(id), 0) FROM articles";

/// The first try at a batch, and the only one unless an op fails
/// half-way: the ops straight into the transaction, after a savepoint
/// `batch` to go back to. If the batch has two creates or more, the new
/// articles are added to the search index in one statement at the end
/// (migration `0003_fts_deferred`) and before any update or delete, which
/// must find the article in the index: FTS5 writes its pending terms out
/// as an index segment at every savepoint, statement ones included, so
/// adding them one insert at a time wrote a segment per article.
fn plain_pass(conn: &Connection, jobs: &[Job]) -> Pass {
    let mut results = Vec::with_capacity(jobs.len());
    // With fewer than two creates there is nothing to gather: the trigger
    // indexes the one create.
    let defer = jobs
        .iter()
        .filter(|job| matches!(job.op, Op::Create { .. }))
        .nth(1)
        .is_some();
    let begin = conn.execute_batch("SAVEPOINT batch").and_then(|()| {
        if defer {
            conn.execute_batch(DEFER_INDEX)
        } else {
            Ok(())
        }
    });
    // The newest article already in the search index (when deferring).
    let begun = begin
        .map_err(lite)
        .and_then(|()| if defer { newest(conn) } else { Ok(0) });
    let mut indexed: i64 = match begun {
        Ok(id) => id,
        Err(err) => {
            return Pass::Done {
                results,
                broken: Some(err),
            };
        }
    };
    let mut unindexed = false;
    for job in jobs {
        let create = matches!(job.op, Op::Create { .. });
        if unindexed && !create {
            match index_new(conn, indexed).and_then(|()| newest(conn)) {
                Ok(id) => indexed = id,
                Err(err) => return undo(conn, results, err),
            }
            unindexed = false;
        }
        match apply(conn, &job.op) {
            Ok(done) => {
                unindexed |= create && defer;
                results.push(Ok(done));
            }
            Err(err) if wrote_nothing(&err) => results.push(Err(err)),
            Err(err) => return undo(conn, results, err),
        }
    }
    if defer
        && let Err(err) =
            index_new(conn, indexed).and_then(|()| conn.execute_batch(UNDEFER_INDEX).map_err(lite))
    {
        return undo(conn, results, err);
    }
    Pass::Done {
        results,
        broken: None,
    }
}

fn newest(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached(NEWEST)
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(lite)
}

/// Adds the articles newer than `indexed` to the search index.
fn index_new(conn: &Connection, indexed: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO articles_fts (rowid, search_text)
         SELECT id, search_text FROM articles WHERE id > ?1",
    )
    .and_then(|mut stmt| stmt.execute([indexed]))
    .map(drop)
    .map_err(lite)
}

/// After an op failed half-way in the plain pass: back to the savepoint
/// `batch`, for the savepoint pass; if that fails the transaction is gone.
fn undo(conn: &Connection, results: Vec<StoreResult<Done>>, err: ArticleError) -> Pass {
    match conn.execute_batch("ROLLBACK TO batch") {
        Ok(()) => Pass::Redo,
        Err(_) => Pass::Done {
            results,
            broken: Some(err),
        },
    }
}

/// The second try, after an op failed half-way: each op in a savepoint of
/// its own, so a failing one is rolled back alone (the search index is
/// kept by its triggers here: `ROLLBACK TO batch` put the deferral flag
/// back to 0). The savepoint `op` marks the state before the op: set once
/// here, then moved past each written op (`RELEASE op; SAVEPOINT op`).
/// So whether the op failed in its own statements or in that move,
/// `ROLLBACK TO op` undoes it alone and leaves the savepoint where the next
/// op starts; if that fails, the transaction is gone.
fn savepoint_pass(conn: &Connection, jobs: &[Job]) -> Pass {
    let mut results = Vec::with_capacity(jobs.len());
    if let Err(err) = conn.execute_batch("SAVEPOINT op").map_err(lite) {
        return Pass::Done {
            results,
            broken: Some(err),
        };
    }
    for job in jobs {
        let written = apply(conn, &job.op).and_then(|done| {
            conn.execute_batch("RELEASE op; SAVEPOINT op")
                .map_err(lite)
                .map(|()| done)
        });
        match written {
            Ok(done) => results.push(Ok(done)),
            // If SQLite rolled the whole transaction back (a full disk, an
            // I/O error), the savepoint is gone and this fails.
            Err(err) => match conn.execute_batch("ROLLBACK TO op") {
                Ok(()) => results.push(Err(err)),
                Err(_) => {
                    return Pass::Done {
                        results,
                        broken: Some(err),
                    };
                }
            },
        }
    }
    Pass::Done {
        results,
        broken: None,
    }
}

/// Runs one op of the batch inside the open transaction. `NotFound` and
/// `VersionConflict` are only answered before the op has written anything
/// (the passes rely on it, see [`wrote_nothing`]).
fn apply(conn: &Connection, op: &Op) -> StoreResult<Done> {
    match op {
        Op::Create {
            author,
            draft,
            columns,
        } => {
            let now = now_micros();
            let id: i64 = conn
                .prepare_cached(create_article_sql!())
                .and_then(|mut stmt| {
                    stmt.query_row(
                        params![
                            draft.title(),
                            draft.content(),
                            author,
                            columns.tags,
                            columns.search_text,
                            now,
                        ],
                        |row| row.get(0),
                    )
                })
                .map_err(lite)?;
            insert_tags(conn, id, now, columns)?;
            conn.prepare_cached(create_event_sql!("?1"))
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(lite)?;
            // The article as stored: the draft's own values, its id, now
            // for both times, version 1 (see `create_article_sql`); built
            // here rather than read back.
            let time = time(now)?;
            Ok(Done::Article(Article {
                id,
                title: draft.title().to_owned(),
                content: draft.content().to_owned(),
                author: author.clone(),
                tags: draft.tags().to_vec(),
                create_time: time,
                update_time: time,
                version: 1,
            }))
        }
        Op::Update {
            id,
            draft,
            expected_version,
            columns,
        } => {
            let (id, expected_version) = (*id, *expected_version);
            let (version, old_tags): (i64, String) = conn
                .prepare_cached("SELECT version, tags FROM articles WHERE id = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()
                })
                .map_err(lite)?
                .ok_or(ArticleError::NotFound(id))?;
            if expected_version != 0 && expected_version != version {
                return Err(ArticleError::VersionConflict {
                    id,
                    expected: expected_version,
                    actual: version,
                });
            }
            let article = conn
                .prepare_cached(UPDATE)
                .and_then(|mut stmt| {
                    stmt.query_row(
                        params![
                            draft.title(),
                            draft.content(),
                            columns.tags,
                            columns.search_text,
                            now_micros(),
                            id,
                        ],
                        article_row,
                    )
                })
                .map_err(lite)?
                .into_article()?;
            conn.prepare_cached("DELETE FROM article_tags WHERE article_id = ?1")
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(lite)?;
            insert_tags(conn, id, micros(article.create_time), columns)?;
            conn.prepare_cached(
                "INSERT INTO article_events
                   (kind, article_id, title, content, author, tags, create_time, update_time, version, old_tags)
                 VALUES ('updated', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    article.title,
                    article.content,
                    article.author,
                    article.tags.join(","),
                    micros(article.create_time),
                    micros(article.update_time),
                    article.version,
                    old_tags,
                ])
            })
            .map_err(lite)?;
            Ok(Done::Article(article))
        }
        Op::Delete { id } => {
            // Its change-log row (with the tags it had) first; none means no
            // such article, and then nothing was written.
            let recorded = conn
                .prepare_cached(
                    "INSERT INTO article_events (kind, article_id, old_tags)
                     SELECT 'deleted', id, tags FROM articles WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(lite)?;
            if recorded == 0 {
                return Err(ArticleError::NotFound(*id));
            }
            // The article; its tag rows by cascade, its index entry and the
            // count by triggers.
            conn.prepare_cached("DELETE FROM articles WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(lite)?;
            Ok(Done::Deleted)
        }
    }
}

const UPDATE: &str = "UPDATE articles
     SET title = ?1, content = ?2, tags = ?3, search_text = ?4, update_time = ?5, version = version + 1
     WHERE id = ?6
     RETURNING id, title, content, author, tags, create_time, update_time, version";

/// `create_time` is the article's: the tag filter orders by it.
fn insert_tags(conn: &Connection, id: i64, create_time: i64, columns: &Columns) -> StoreResult<()> {
    if columns.tags.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(create_tags_sql!("?1", "?2", "?3"))
        .and_then(|mut stmt| stmt.execute(params![id, create_time, columns.tags_json]))
        .map(drop)
        .map_err(lite)
}

/// An article row as read (`ARTICLE_COLUMNS`, in order), before its
/// times and tags are checked.
struct ArticleRow {
    id: i64,
    title: String,
    content: String,
    author: String,
    tags: String,
    create_time: i64,
    update_time: i64,
    version: i64,
}

fn article_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ArticleRow> {
    Ok(ArticleRow {
        id: row.get(0)?,
        title: row.get(1)?,
        content: row.get(2)?,
        author: row.get(3)?,
        tags: row.get(4)?,
        create_time: row.get(5)?,
        update_time: row.get(6)?,
        version: row.get(7)?,
    })
}

impl ArticleRow {
    fn into_article(self) -> StoreResult<Article> {
        Ok(Article {
            id: self.id,
            title: self.title,
            content: self.content,
            author: self.author,
            tags: split_tags(self.tags),
            create_time: time(self.create_time)?,
            update_time: time(self.update_time)?,
            version: self.version,
        })
    }
}

/// rusqlite's errors as the store's (the same mapping as sqlx's, see
/// `sqlite_error`).
fn lite(err: rusqlite::Error) -> ArticleError {
    let primary = match &err {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code & 0xff),
        _ => None,
    };
    error_for_code(primary, err.into())
}

/// The same kind of error for another op of a failed batch (the error
/// types carry their causes by value and are not `Clone`).
fn copy(err: &ArticleError) -> ArticleError {
    let cause = |source: &anyhow::Error| anyhow::anyhow!("{source:#}");
    match err {
        ArticleError::DiskFull(source) => ArticleError::DiskFull(cause(source)),
        ArticleError::Busy(source) => ArticleError::Busy(cause(source)),
        ArticleError::Io(source) => ArticleError::Io(cause(source)),
        ArticleError::Unavailable(source) => ArticleError::Unavailable(cause(source)),
        ArticleError::Storage(source) => ArticleError::Storage(cause(source)),
        other => ArticleError::storage(anyhow::anyhow!("another op of the batch: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| {
            row.get::<_, rusqlite::types::Value>(0)
        })
        .map(|value| match value {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(text) => text,
            other => format!("{other:?}"),
        })
        .unwrap()
    }

    /// What an acknowledged write relies on (WAL, `synchronous=FULL`, 2),
    /// the foreign keys the schema's cascades need, and the savepoint
    /// journal in memory (`temp_store=MEMORY`, 2).
    #[test]
    fn the_writer_connection_syncs_every_commit_and_keeps_its_savepoint_journal_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("articles.db"), false).unwrap();
        assert_eq!(pragma(&conn, "journal_mode"), "wal");
        assert_eq!(pragma(&conn, "synchronous"), "2");
        assert_eq!(pragma(&conn, "foreign_keys"), "1");
        assert_eq!(pragma(&conn, "temp_store"), "2");
        assert_eq!(
            pragma(&conn, "busy_timeout"),
            LOCK_POLL.as_millis().to_string()
        );
    }

    /// In memory the writer and the store's pool share one database.
    #[test]
    fn in_memory_the_writer_opens_the_shared_database_with_its_journal_in_memory() {
        let name = Path::new("/writer-test-shared");
        let a = open_connection(name, true).unwrap();
        a.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42)")
            .unwrap();
        let b = open_connection(name, true).unwrap();
        let x: i64 = b
            .query_row("SELECT x FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(x, 42);
        assert_eq!(pragma(&b, "journal_mode"), "memory");
        assert_eq!(pragma(&b, "temp_store"), "2");
    }
}
