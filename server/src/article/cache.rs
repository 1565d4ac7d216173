//! Answers repeated `ListArticles` calls from memory until the next write.
//!
//! Most traffic is the same few list pages (the front page above all), and
//! a page from the database costs a trip to the store's worker thread and a
//! scan for the total. A page is kept encoded ([`EncodedMessage`]), so one
//! from memory costs a reference count: no clone of the message, no
//! protobuf encoding, no drop.
//!
//! Correctness rests on the store's [`generation`]: a number that changes
//! before any write is acknowledged. A page is read under the generation
//! seen *before* the query and kept under it, so a page that might predate
//! a write is never served after that write was acknowledged. Stores that
//! cannot vouch for every write (several servers on one database) return
//! no generation and are never cached.
//!
//! Written here rather than taken from a cache crate because the policy is
//! this small: every page is dropped on every write, so there is no
//! eviction order to keep, only a byte budget (when full, start over).
//!
//! [`generation`]: super::store::ArticleStore::generation

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use grpc_runtime::EncodedMessage;
use proto::v1::ListArticlesResponse;

use super::ListQuery;

/// Cached `ListArticles` responses of one store generation.
pub struct ListCache {
    budget: usize,
    inner: Mutex<Pages>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// `article_list_cache_total{result="hit"|"miss"}` in the runtime's registry.
    hit_counter: metrics::Counter,
    miss_counter: metrics::Counter,
}

#[derive(Default)]
struct Pages {
    generation: u64,
    bytes: usize,
    pages: HashMap<ListQuery, EncodedMessage<ListArticlesResponse>>,
}

/// Hit and miss counts since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl ListCache {
    /// A cache holding at most `budget` bytes of encoded responses;
    /// 0 turns it off. Hits and misses are counted in `metrics`.
    pub fn new(budget: usize, metrics: &grpc_runtime::Metrics) -> Self {
        const NAME: &str = "article_list_cache_total";
        Self {
            budget,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            hit_counter: metrics.counter(NAME, &[("result", "hit")]),
            miss_counter: metrics.counter(NAME, &[("result", "miss")]),
        }
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The page for `query` if it was read under `generation`.
    pub fn get(
        &self,
        generation: u64,
        query: &ListQuery,
    ) -> Option<EncodedMessage<ListArticlesResponse>> {
        let hit = {
            let pages = self.lock();
            (pages.generation == generation)
                .then(|| pages.pages.get(query).cloned())
                .flatten()
        };
        let (count, counter) = match hit {
            Some(_) => (&self.hits, &self.hit_counter),
            None => (&self.misses, &self.miss_counter),
        };
        count.fetch_add(1, Ordering::Relaxed);
        counter.increment(1);
        hit
    }

    /// Keeps `page`, read from the store under `generation`. A page read
    /// under an older generation than the newest seen is dropped.
    pub fn insert(
        &self,
        generation: u64,
        query: ListQuery,
        page: EncodedMessage<ListArticlesResponse>,
    ) {
        let size = page.len();
        if size > self.budget {
            return;
        }
        let mut pages = self.lock();
        if generation < pages.generation {
            return;
        }
        if generation > pages.generation || pages.bytes + size > self.budget {
            pages.pages.clear();
            pages.bytes = 0;
            pages.generation = generation;
        }
        if let Some(old) = pages.pages.insert(query, page) {
            pages.bytes -= old.len();
        }
        pages.bytes += size;
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pages> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters: at worst a page is missing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use proto::v1::Article;

    use super::*;

    fn query(page: u32) -> ListQuery {
        ListQuery {
            page,
            page_size: 20,
            ..ListQuery::default()
        }
    }

    fn page(title: &str) -> EncodedMessage<ListArticlesResponse> {
        EncodedMessage::encode(&ListArticlesResponse {
            articles: vec![Article {
                title: title.to_owned(),
                ..Article::default()
            }],
            total_count: 1,
        })
    }

    fn title(page: EncodedMessage<ListArticlesResponse>) -> String {
        let page = ListArticlesResponse::decode(page.message_bytes()).unwrap();
        page.articles[0].title.clone()
    }

    #[test]
    fn serves_a_page_only_under_the_generation_it_was_read_in() {
        let cache = ListCache::new(1 << 20, &grpc_runtime::Metrics::new());
        assert!(cache.get(1, &query(1)).is_none());
        cache.insert(1, query(1), page("a"));
        assert_eq!(title(cache.get(1, &query(1)).unwrap()), "a");
        assert!(cache.get(1, &query(2)).is_none());
        assert!(cache.get(2, &query(1)).is_none());
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 3 });
    }

    #[test]
    fn a_page_read_before_a_newer_generation_is_not_kept() {
        let cache = ListCache::new(1 << 20, &grpc_runtime::Metrics::new());
        cache.insert(3, query(1), page("new"));
        cache.insert(2, query(2), page("old"));
        assert!(cache.get(3, &query(2)).is_none());
        assert!(cache.get(2, &query(2)).is_none());
        assert!(cache.get(3, &query(1)).is_some());
    }

    #[test]
    fn a_newer_generation_drops_every_older_page() {
        let cache = ListCache::new(1 << 20, &grpc_runtime::Metrics::new());
        cache.insert(1, query(1), page("a"));
        cache.insert(2, query(2), page("b"));
        assert!(cache.get(2, &query(1)).is_none());
        assert!(cache.get(2, &query(2)).is_some());
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let size = page("a").len();
        let cache = ListCache::new(2 * size, &grpc_runtime::Metrics::new());
        cache.insert(1, query(1), page("a"));
        cache.insert(1, query(2), page("b"));
        assert!(cache.get(1, &query(1)).is_some());
        cache.insert(1, query(3), page("c"));
        assert!(cache.get(1, &query(3)).is_some());
        assert!(cache.get(1, &query(1)).is_none(), "full: started over");
        assert!(cache.lock().bytes <= 2 * size);
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = ListCache::new(0, &grpc_runtime::Metrics::new());
        assert!(!cache.enabled());
        cache.insert(1, query(1), page("a"));
        assert!(cache.get(1, &query(1)).is_none());
    }
}
