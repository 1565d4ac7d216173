//! The storage contract of the article feature. Implementations keep their
//! SQL dialect to themselves (`sqlite`, `postgres`) and know nothing of
//! gRPC.
//!
//! Every write records a [`Change`] in the same transaction, numbered by a
//! database-wide, strictly increasing sequence; the change log keeps at
//! least the newest `retain` published changes so that watchers can resume.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Article, ArticleDraft, ArticleError, ListQuery, Page};

/// A committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub sequence: i64,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created(Article),
    /// The article after the update, and its tags before it.
    Updated {
        article: Article,
        old_tags: Vec<String>,
    },
    /// The id and the tags the article had.
    Deleted {
        id: i64,
        old_tags: Vec<String>,
    },
}

impl Change {
    /// Whether a watcher filtering on `tag` sees this change: the article
    /// carried the tag before or after the change.
    pub fn concerns_tag(&self, tag: &str) -> bool {
        let has = |tags: &[String]| tags.iter().any(|t| t == tag);
        match &self.kind {
            ChangeKind::Created(a) => has(&a.tags),
            ChangeKind::Updated { article, old_tags } => has(&article.tags) || has(old_tags),
            ChangeKind::Deleted { old_tags, .. } => has(old_tags),
        }
    }
}

/// Oldest and newest sequence in the change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceBounds {
    /// Oldest retained change, if any is retained.
    pub oldest: Option<i64>,
    /// Newest sequence ever committed (0 for a new database).
    pub newest: i64,
}

pub type StoreResult<T> = Result<T, ArticleError>;

/// An import in progress (see [`ArticleStore::begin_import`]).
#[async_trait]
pub trait ImportBatch: Send {
    /// Writes one article into the open transaction; its id.
    async fn add(&mut self, draft: ArticleDraft) -> StoreResult<i64>;
    /// Commits every added article at once; durable when it returns `Ok`.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Article storage. Writes are durable when they return `Ok`.
#[async_trait]
pub trait ArticleStore: Send + Sync + 'static {
    /// One page of matches, newest first, and the number of all matches.
    async fn list(&self, query: &ListQuery) -> StoreResult<Page>;
    /// `NotFound` for an unknown id.
    async fn get(&self, id: i64) -> StoreResult<Article>;
    async fn create(&self, author: &str, draft: ArticleDraft) -> StoreResult<Article>;
    /// Replaces title, content and tags. `expected_version` 0 is
    /// unconditional; a mismatch is `VersionConflict` and changes nothing.
    async fn update(
        &self,
        id: i64,
        draft: ArticleDraft,
        expected_version: i64,
    ) -> StoreResult<Article>;
    async fn delete(&self, id: i64) -> StoreResult<()>;
    /// Opens the one write transaction of an import by `author`: articles
    /// are written as they are added (memory stays bounded by one
    /// article), invisible to readers and watchers until
    /// [`ImportBatch::commit`]; dropping the batch rolls all of them back.
    /// Other writes wait while the batch is open (see the implementation
    /// for how long).
    async fn begin_import(&self, author: &str) -> StoreResult<Box<dyn ImportBatch + '_>>;
    /// Creates all articles in one transaction, or none; their ids in order.
    async fn import(&self, author: &str, drafts: Vec<ArticleDraft>) -> StoreResult<Vec<i64>> {
        let mut batch = self.begin_import(author).await?;
        let mut ids = Vec::with_capacity(drafts.len());
        for draft in drafts {
            ids.push(batch.add(draft).await?);
        }
        batch.commit().await?;
        Ok(ids)
    }
    /// Creates `drafts` by `author`, in order, if the store holds no
    /// article; how many it created. Each gets its own create time, so the
    /// last is the newest. The default checks, then creates one by one: right
    /// for a store with one server process; a shared database does check and
    /// insert under one lock, so replicas starting at once load them once.
    async fn create_all_if_empty(
        &self,
        author: &str,
        drafts: Vec<ArticleDraft>,
    ) -> StoreResult<usize> {
        if self.count().await? > 0 {
            return Ok(0);
        }
        let n = drafts.len();
        for draft in drafts {
            self.create(author, draft).await?;
        }
        Ok(n)
    }
    /// Up to `limit` changes with a sequence above `after`, oldest first.
    async fn changes_after(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>>;
    async fn sequence_bounds(&self) -> StoreResult<SequenceBounds>;
    /// Drops old changes, keeping at least the configured number before
    /// `published` (the newest change delivered to watchers), and every
    /// change after it.
    async fn prune_changes(&self, published: i64) -> StoreResult<()>;
    async fn count(&self) -> StoreResult<i64>;
    /// A number that changes whenever a write commits, before the write is
    /// acknowledged, so reads may be answered from memory while it stays
    /// the same (see `cache`). `None` (the default) when the store cannot
    /// know of every write without asking the database, e.g. several
    /// servers on one database: reads then always go to the database.
    fn generation(&self) -> Option<u64> {
        None
    }
    /// Signalled (`notify_one`) after every committed write.
    fn committed(&self) -> Arc<Notify>;
    /// Whether the store answers; used by health checks.
    async fn ping(&self) -> StoreResult<()>;
}
