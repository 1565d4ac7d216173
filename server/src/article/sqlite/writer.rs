//! Group commit: the one writer of a SQLite store.
//!
//! Every create, update and delete is queued to one task. It takes every
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

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    super::{Article, ArticleDraft, ArticleError, store::StoreResult},
    Mode, SqliteResultExt as _, apply,
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
    },
    Update {
        id: i64,
        draft: ArticleDraft,
        expected_version: i64,
    },
    Delete {
        id: i64,
    },
}

impl Op {
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

/// The handle callers queue ops on; the writer task ends once the last
/// handle is dropped and the queue is drained.
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer on `pool` (whose connections must wait at most
    /// about [`LOCK_POLL`] for the write lock); `busy_timeout` is how long
    /// an op may wait for the lock from the moment it is queued.
    pub fn spawn(pool: SqlitePool, shared: Arc<Shared>, busy_timeout: Duration) -> Self {
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(run(pool, shared, rx, busy_timeout));
        Self { queue }
    }

    /// Queues `op` and waits for its own outcome.
    pub async fn write(&self, op: Op) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            op,
            queued: Instant::now(),
            reply,
        };
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> ArticleError {
    ArticleError::storage(anyhow::anyhow!("the SQLite writer task has stopped"))
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
}

async fn run(
    pool: SqlitePool,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Job>,
    busy_timeout: Duration,
) {
    let mut held = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = Batch {
            bytes: first.op.bytes(),
            jobs: vec![first],
        };
        if let Some(tx) = begin(&pool, &shared, &mut rx, &mut held, &mut batch, busy_timeout).await
        {
            write(tx, batch.jobs, &shared).await;
        }
        shared.in_batch.store(0, Ordering::Release);
    }
}

/// Takes the write lock for `batch`, adding newly queued ops while it
/// waits; `None` when no op is left to write (all expired or failed).
async fn begin(
    pool: &SqlitePool,
    shared: &Shared,
    rx: &mut mpsc::Receiver<Job>,
    held: &mut Option<Job>,
    batch: &mut Batch,
    busy_timeout: Duration,
) -> Option<Transaction<'static, Sqlite>> {
    loop {
        batch.fill(rx, held);
        batch.expire(busy_timeout);
        shared.in_batch.store(batch.jobs.len(), Ordering::Release);
        if batch.jobs.is_empty() {
            return None;
        }
        let attempt = Instant::now();
        match pool.begin_with("BEGIN IMMEDIATE").await.lite() {
            Ok(tx) => return Some(tx),
            Err(ArticleError::Busy(_)) => {
                // SQLite's busy handler normally waits out LOCK_POLL; if it
                // answered at once, don't spin.
                if attempt.elapsed() < LOCK_POLL / 10 {
                    tokio::time::sleep(LOCK_POLL / 10).await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, ops = batch.jobs.len(), "a write batch could not begin");
                for job in batch.jobs.drain(..) {
                    let _ = job.reply.send(Err(copy(&err)));
                }
                return None;
            }
        }
    }
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

/// Whether an op that failed with `err` wrote nothing (see `apply`).
pub(super) fn wrote_nothing(err: &ArticleError) -> bool {
    matches!(
        err,
        ArticleError::NotFound(_) | ArticleError::VersionConflict { .. }
    )
}

async fn write(mut tx: Transaction<'static, Sqlite>, jobs: Vec<Job>, shared: &Shared) {
    let pass = match plain_pass(&mut tx, &jobs).await {
        Pass::Redo => savepoint_pass(&mut tx, &jobs).await,
        done => done,
    };
    let Pass::Done { results, broken } = pass else {
        unreachable!("the savepoint pass never asks for a redo")
    };
    let outcome = match broken {
        Some(err) => {
            // Often SQLite has already rolled back; a failing ROLLBACK
            // leaves the connection "in a transaction" for sqlx, and the
            // pool then replaces it (see `SqliteStore::open`).
            let _ = tx.rollback().await;
            Err(err)
        }
        None => tx.commit().await.lite(),
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
/// them (migration `0003_fts_deferred`), and answers the newest article
/// already in it. Only inside a write transaction that ends with
/// [`UNDEFER_INDEX`] before it commits.
macro_rules! defer_index {
    () => {
        "UPDATE article_fts_deferred SET deferred = 1 WHERE one = 1;
         SELECT coalesce(max(id), 0) FROM articles"
    };
}

const UNDEFER_INDEX: &str = "UPDATE article_fts_deferred SET deferred = 0 WHERE one = 1";

/// The first try at a batch, and the only one unless an op fails
/// half-way: the ops straight into the transaction, one statement trip
/// each, after a savepoint `batch` to go back to. If the batch has two
/// creates or more, the new articles are added to the search index in one
/// statement at the end (migration `0003_fts_deferred`) and before any
/// update or delete, which must find the article in the index: FTS5
/// writes its pending terms out as an index segment at every savepoint,
/// statement ones included, so adding them one insert at a time wrote a
/// segment per article.
async fn plain_pass(tx: &mut Transaction<'static, Sqlite>, jobs: &[Job]) -> Pass {
    let mut results = Vec::with_capacity(jobs.len());
    // With fewer than two creates there is nothing to gather: the trigger
    // indexes the one create, and a lone write saves a trip and a row.
    let defer = jobs
        .iter()
        .filter(|job| matches!(job.op, Op::Create { .. }))
        .nth(1)
        .is_some();
    let begin = if defer {
        sqlx::query_scalar(concat!("SAVEPOINT batch; ", defer_index!()))
            .fetch_one(&mut **tx)
            .await
            .lite()
    } else {
        sqlx::query("SAVEPOINT batch")
            .execute(&mut **tx)
            .await
            .lite()
            .map(|_| 0)
    };
    // The newest article already in the search index (when deferring).
    let mut indexed: i64 = match begin {
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
            match index_new(tx, indexed, "SELECT coalesce(max(id), 0) FROM articles").await {
                Ok(Some(id)) => indexed = id,
                Ok(None) => {}
                Err(err) => return undo(tx, results, err).await,
            }
            unindexed = false;
        }
        match apply(tx, &job.op, Mode::Plain).await {
            Ok(done) => {
                unindexed |= create && defer;
                results.push(Ok(done));
            }
            Err(err) if wrote_nothing(&err) => results.push(Err(err)),
            Err(err) => return undo(tx, results, err).await,
        }
    }
    if defer && let Err(err) = index_new(tx, indexed, UNDEFER_INDEX).await {
        return undo(tx, results, err).await;
    }
    Pass::Done {
        results,
        broken: None,
    }
}

/// Adds the articles newer than `indexed` to the search index, then runs
/// `then` (whose one value, if any, it answers) in the same trip.
async fn index_new(
    tx: &mut Transaction<'static, Sqlite>,
    indexed: i64,
    then: &str,
) -> StoreResult<Option<i64>> {
    let sql = format!(
        "INSERT INTO articles_fts (rowid, search_text)
         SELECT id, search_text FROM articles WHERE id > ?1;
         {then}"
    );
    sqlx::query_scalar(&sql)
        .bind(indexed)
        .fetch_optional(&mut **tx)
        .await
        .lite()
}

/// After an op failed half-way in the plain pass: back to the savepoint
/// `batch`, for the savepoint pass; if that fails the transaction is gone.
async fn undo(
    tx: &mut Transaction<'static, Sqlite>,
    results: Vec<StoreResult<Done>>,
    err: ArticleError,
) -> Pass {
    match sqlx::query("ROLLBACK TO batch").execute(&mut **tx).await {
        Ok(_) => Pass::Redo,
        Err(_) => Pass::Done {
            results,
            broken: Some(err),
        },
    }
}

/// The second try, after an op failed half-way: each op in a savepoint of
/// its own, so a failing one is rolled back alone (the search index is
/// kept by its triggers here). The savepoint `op` marks the state before
/// the op: set once here, then moved past each written op by the op's own
/// last statement trip (`RELEASE op; SAVEPOINT op` appended to its SQL).
/// So whether the op failed in its own statements or in that move,
/// `ROLLBACK TO op` undoes it alone and leaves the savepoint where the next
/// op starts; if that fails, the transaction is gone.
async fn savepoint_pass(tx: &mut Transaction<'static, Sqlite>, jobs: &[Job]) -> Pass {
    let mut results = Vec::with_capacity(jobs.len());
    if let Err(err) = sqlx::query("SAVEPOINT op").execute(&mut **tx).await.lite() {
        return Pass::Done {
            results,
            broken: Some(err),
        };
    }
    for job in jobs {
        match apply(tx, &job.op, Mode::Savepoint).await {
            Ok(done) => results.push(Ok(done)),
            // If SQLite rolled the whole transaction back (a full disk, an
            // I/O error), the savepoint is gone and this fails.
            Err(err) => match sqlx::query("ROLLBACK TO op").execute(&mut **tx).await {
                Ok(_) => results.push(Err(err)),
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
