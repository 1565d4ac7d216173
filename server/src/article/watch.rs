//! The change feed behind `WatchArticles`.
//!
//! One task tails the store's change log after every commit and broadcasts
//! each change, in sequence order, to all watchers. A watcher subscribes
//! before it replays, under the same lock the publisher holds while it
//! sends, so "replay up to S, then live from S+1" has no gap and no
//! duplicate. Each watcher's backlog is bounded by the broadcast capacity:
//! one that falls further behind is ended with `WatcherLagged` instead of
//! letting memory grow.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use futures::{Stream, StreamExt, stream};
use tokio::{
    sync::{broadcast, watch},
    time::{Instant, Interval, MissedTickBehavior},
};

use super::{
    ArticleError,
    store::{ArticleStore, Change},
};

/// Changes a watcher may have waiting before it is cut off.
pub const WATCHER_BACKLOG: usize = 4096;
const REPLAY_BATCH: u32 = 256;
/// Changes read from the log at a time after a commit. A change carries
/// its article (up to ~100 KB of content), so this bounds the feed's
/// memory after a large import to a few MiB.
const PUBLISH_BATCH: u32 = 64;

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Change(Arc<Change>),
    /// Periodic liveness signal carrying the newest published sequence.
    Heartbeat(i64),
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchItem, ArticleError>> + Send>>;

/// Fans committed changes out to watchers.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ArticleStore>,
    /// Newest sequence published; senders hold this lock while sending.
    published: Mutex<i64>,
    tx: broadcast::Sender<Arc<Change>>,
    watchers: AtomicI64,
    /// `article_watchers` in the runtime's registry.
    watchers_gauge: metrics::Gauge,
    heartbeat: Duration,
    /// How many of the newest changes a watcher may resume from.
    retain: i64,
    closing: watch::Sender<bool>,
}

impl ChangeFeed {
    /// Starts the feed at the store's newest sequence and spawns the task
    /// that publishes every later commit.
    pub async fn start(
        store: Arc<dyn ArticleStore>,
        heartbeat: Duration,
        retain: u64,
        watchers_gauge: metrics::Gauge,
    ) -> Result<Self, ArticleError> {
        let newest = store.sequence_bounds().await?.newest;
        let (tx, _) = broadcast::channel(WATCHER_BACKLOG);
        let feed = Self {
            inner: Arc::new(Inner {
                store,
                published: Mutex::new(newest),
                tx,
                watchers: AtomicI64::new(0),
                watchers_gauge,
                heartbeat,
                retain: i64::try_from(retain).unwrap_or(i64::MAX),
                closing: watch::channel(false).0,
            }),
        };
        let weak = Arc::downgrade(&feed.inner);
        let committed = feed.inner.store.committed();
        tokio::spawn(async move {
            // Logged once per outage (a database that is down fails every
            // try), then once when it is over.
            let mut failing = false;
            loop {
                committed.notified().await;
                let Some(inner) = weak.upgrade() else { break };
                match inner.publish_new().await {
                    Ok(()) if failing => {
                        tracing::info!("change feed reads the change log again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(err) => {
                        if !failing {
                            tracing::error!(error = %err, "change feed could not read the change log; retrying until it can");
                            failing = true;
                        }
                        // Try again on the next commit or shortly.
                        committed.notify_one();
                        drop(inner);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(feed)
    }

    /// Open watch streams.
    pub fn watchers(&self) -> i64 {
        self.inner.watchers.load(Ordering::Relaxed)
    }

    /// Newest sequence published to watchers.
    pub fn published(&self) -> i64 {
        *self
            .inner
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every open and future stream with `ShuttingDown`.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Subscribes now. With `after_sequence > 0`, first replays the retained
    /// changes after it (`OutOfRange` if they are no longer all retained, or
    /// if it lies in the future). `tag` filters changes (empty = all).
    /// Also returns the sequence live delivery starts after, so a client
    /// that sees no event before the stream drops can still resume from it.
    pub async fn subscribe(
        &self,
        tag: String,
        after_sequence: i64,
    ) -> Result<(WatchStream, i64), ArticleError> {
        if *self.inner.closing.borrow() {
            return Err(ArticleError::ShuttingDown);
        }
        let (rx, published) = {
            let published = self
                .inner
                .published
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (self.inner.tx.subscribe(), *published)
        };
        if after_sequence < 0 {
            return Err(ArticleError::validation(vec![super::FieldViolation::new(
                "after_sequence",
                "after_sequence must not be negative",
            )]));
        }
        // The publisher may not have sent all that is committed yet; the
        // receiver holds everything after `published`, so starting live
        // delivery after the committed newest sequence is gap-free and leaves
        // out changes that committed before the stream opened.
        let bounds = self.inner.store.sequence_bounds().await?;
        let live_from = bounds.newest.max(published);
        let replay_from = if after_sequence > 0 {
            if after_sequence > live_from {
                return Err(ArticleError::OutOfRange(format!(
                    "after_sequence {after_sequence} is ahead of the newest sequence {live_from}"
                )));
            }
            // Resumable: the newest `retain` changes, whether or not older
            // ones have been pruned yet, so the answer does not depend on
            // timing.
            let oldest = bounds
                .oldest
                .unwrap_or(live_from + 1)
                .max(live_from - self.inner.retain + 1);
            if after_sequence < oldest - 1 {
                return Err(ArticleError::OutOfRange(format!(
                    "changes after sequence {after_sequence} are no longer retained (oldest kept: {oldest}); reload and watch from now"
                )));
            }
            Some(after_sequence)
        } else {
            None
        };
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + self.inner.heartbeat, self.inner.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.inner.watchers.fetch_add(1, Ordering::Relaxed);
        self.inner.watchers_gauge.increment(1.0);
        let state = State {
            feed: self.clone(),
            tag,
            replay_next: replay_from,
            live_from,
            buffer: VecDeque::new(),
            rx,
            heartbeat,
            closing: self.inner.closing.subscribe(),
            done: false,
        };
        Ok((stream::unfold(state, State::next).boxed(), live_from))
    }
}

impl Inner {
    /// Once everything up to `published` is published: pruning is
    /// housekeeping that the next commit tries again (on a full disk it
    /// cannot run).
    async fn prune(&self, published: i64) {
        if let Err(err) = self.store.prune_changes(published).await {
            tracing::warn!(error = %err, "change log not pruned; tried again after the next commit");
        }
    }

    async fn publish_new(&self) -> Result<(), ArticleError> {
        // Nobody watching: `published` moves to the newest sequence without
        // reading the changes. Safe for a watcher that subscribes meanwhile:
        // it subscribes under the `published` lock, so with no receiver
        // under that lock it does so later, and then reads a newest
        // sequence at least `newest` (sequences only grow) and goes live
        // only after it; what it resumes from before that it replays from
        // the store.
        if self.tx.receiver_count() == 0 {
            let newest = self.store.sequence_bounds().await?.newest;
            let skipped = {
                let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
                let none = self.tx.receiver_count() == 0;
                if none {
                    *published = (*published).max(newest);
                }
                none.then_some(*published)
            };
            if let Some(published) = skipped {
                self.prune(published).await;
                return Ok(());
            }
        }
        loop {
            let from = *self.published.lock().unwrap_or_else(|e| e.into_inner());
            let changes = self.store.changes_after(from, PUBLISH_BATCH).await?;
            let n = changes.len();
            {
                let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
                for change in changes {
                    if change.sequence <= *published {
                        continue;
                    }
                    *published = change.sequence;
                    // No receivers is fine: nobody is watching.
                    let _ = self.tx.send(Arc::new(change));
                }
            }
            if n < PUBLISH_BATCH as usize {
                // Pruning only what watchers have been sent keeps a live
                // watcher gap-free however large one transaction is.
                let published = *self.published.lock().unwrap_or_else(|e| e.into_inner());
                self.prune(published).await;
                return Ok(());
            }
        }
    }
}

/// One watcher's progress.
struct State {
    feed: ChangeFeed,
    tag: String,
    /// Replay changes after this sequence (up to `live_from`) before going live.
    replay_next: Option<i64>,
    live_from: i64,
    buffer: VecDeque<Change>,
    rx: broadcast::Receiver<Arc<Change>>,
    heartbeat: Interval,
    closing: watch::Receiver<bool>,
    done: bool,
}

impl Drop for State {
    fn drop(&mut self) {
        self.feed.inner.watchers.fetch_sub(1, Ordering::Relaxed);
        self.feed.inner.watchers_gauge.decrement(1.0);
    }
}

impl State {
    fn wants(&self, change: &Change) -> bool {
        self.tag.is_empty() || change.concerns_tag(&self.tag)
    }

    async fn next(mut self) -> Option<(Result<WatchItem, ArticleError>, Self)> {
        if self.done {
            return None;
        }
        let item = self.step().await;
        if item.is_err() {
            self.done = true;
        }
        Some((item, self))
    }

    async fn step(&mut self) -> Result<WatchItem, ArticleError> {
        loop {
            if *self.closing.borrow() {
                return Err(ArticleError::ShuttingDown);
            }
            // Replay from the change log first.
            if let Some(change) = self.buffer.pop_front() {
                if self.wants(&change) {
                    return Ok(WatchItem::Change(Arc::new(change)));
                }
                continue;
            }
            if let Some(after) = self.replay_next {
                if after >= self.live_from {
                    self.replay_next = None;
                    continue;
                }
                let batch = self
                    .feed
                    .inner
                    .store
                    .changes_after(after, REPLAY_BATCH)
                    .await?;
                match batch.last() {
                    Some(last) => self.replay_next = Some(last.sequence),
                    None => self.replay_next = None,
                }
                self.buffer
                    .extend(batch.into_iter().filter(|c| c.sequence <= self.live_from));
                continue;
            }
            tokio::select! {
                biased;
                _ = self.closing.changed() => return Err(ArticleError::ShuttingDown),
                received = self.rx.recv() => match received {
                    Ok(change) => {
                        if change.sequence > self.live_from && self.wants(&change) {
                            return Ok(WatchItem::Change(change));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Err(ArticleError::WatcherLagged(WATCHER_BACKLOG as u64));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Err(ArticleError::ShuttingDown),
                },
                _ = self.heartbeat.tick() => return Ok(WatchItem::Heartbeat(self.feed.published())),
            }
        }
    }
}
