//! What the `growth` binary prints, one JSON object per store and size, and
//! what `article-bench --only growth` reads back.

use serde::{Deserialize, Serialize};

/// One store at one size.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Figures {
    /// A label for the run (e.g. the commit measured).
    #[serde(default)]
    pub label: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    pub articles: usize,
    pub seed_seconds: f64,
    pub db_bytes: u64,
    /// A substring found in about one article.
    pub rare: Latency,
    /// A word in about 5 % of the articles, pages 1-20.
    pub common: Latency,
    /// A tag filter, pages 1-3.
    pub tag: Latency,
    /// Page 2,000 and on, no filter.
    pub deep: Latency,
    /// GetArticle of a random id.
    pub get: Latency,
}

/// One kind of call.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// total_count of the first call (what the query matched).
    pub matched: i64,
}
