//! The indexed listing (trigram search, the tag index, id-first paging)
//! answers exactly what a plain scan answers, on both stores: a few hundred
//! random articles, created, imported (equal create times), updated and
//! deleted, then random queries — substrings of the articles, random
//! strings over an alphabet of `%`, `_`, `"`, `\`, `*`, "Ä", "ß", "é",
//! an emoji and ASCII, one and two characters long too, in random case,
//! and strings that span the end of a title and the start of its content
//! (which must not match). The scan is the contract written in Rust:
//! case-insensitive substring of title or content, with `tag`, newest first
//! by (create_time, id), paged by offset, with the total count.
//!
//! The PostgreSQL half needs PostgreSQL's server binaries
//! (`testkit::postgres`); one cluster for the binary
//! (`PgCluster::shared`, stopped by a watchdog once this process is gone).

use article_server::article::{
    Article, ArticleDraft, ListQuery,
    postgres::{PostgresOptions, PostgresStore},
    sqlite::SqliteStore,
    store::ArticleStore,
};
use testkit::postgres::PgCluster;

const ALPHABET: &[&str] = &[
    "a", "b", "c", "A", "B", "x", " ", "%", "_", "\"", "\\", "*", "Ä", "ä", "ß", "é", "É", "😀",
    "ab", "abc",
];
const TAGS: &[&str] = &["rust", "web", "db", "x-1", "z"];

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn text(&mut self, max_pieces: usize) -> String {
        let n = 1 + self.below(max_pieces);
        (0..n)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }

    fn draft(&mut self) -> ArticleDraft {
        let tags = (0..self.below(4))
            .map(|_| TAGS[self.below(TAGS.len())].to_owned())
            .collect();
        ArticleDraft::new(&format!("t{}", self.text(8)), self.text(30), tags).unwrap()
    }

    /// Randomly upper- or lower-cases each character.
    fn recase(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.below(2) == 0 {
                    c.to_uppercase().to_string()
                } else {
                    c.to_lowercase().to_string()
                }
            })
            .collect()
    }
}

fn chars_slice(s: &str, from: usize, len: usize) -> String {
    s.chars().skip(from).take(len).collect()
}

/// The contract, by scanning every article.
fn scan(articles: &[Article], query: &ListQuery) -> (Vec<i64>, i64) {
    let needle = query.text.to_lowercase();
    let mut hits: Vec<&Article> = articles
        .iter()
        .filter(|a| {
            a.title.to_lowercase().contains(&needle) || a.content.to_lowercase().contains(&needle)
        })
        .filter(|a| query.tag.is_empty() || a.tags.contains(&query.tag))
        .collect();
    hits.sort_by_key(|a| std::cmp::Reverse((a.create_time, a.id)));
    let ids = hits
        .iter()
        .skip(query.offset() as usize)
        .take(query.page_size as usize)
        .map(|a| a.id)
        .collect();
    (ids, hits.len() as i64)
}

/// Seeds `store` and checks every random query against `scan`.
async fn indexed_answers_as_a_scan_does(store: &dyn ArticleStore, seed: u64) {
    let mut rng = Rng(seed);
    for _ in 0..250 {
        store.create("a", rng.draft()).await.unwrap();
    }
    // One create time for all of them: ties are ordered by id.
    let drafts = (0..100).map(|_| rng.draft()).collect();
    let imported = store.import("a", drafts).await.unwrap();
    for id in imported.iter().step_by(7) {
        store.update(*id, rng.draft(), 0).await.unwrap();
    }
    for id in imported.iter().skip(3).step_by(11) {
        store.delete(*id).await.unwrap();
    }
    let everything = ListQuery::new(1, 100, String::new(), String::new()).unwrap();
    let total = store.list(&everything).await.unwrap().total_count;
    let mut articles = Vec::new();
    for page in 1..=(total as i32 + 99) / 100 {
        let q = ListQuery::new(page, 100, String::new(), String::new()).unwrap();
        articles.extend(store.list(&q).await.unwrap().articles);
    }
    assert_eq!(articles.len() as i64, total);

    let mut matched = 0;
    for i in 0..600 {
        let a = &articles[rng.below(articles.len())];
        let text = match i % 5 {
            // A piece of a title or a content.
            0 | 1 => {
                let field = if i % 5 == 0 { &a.title } else { &a.content };
                let len = field.chars().count();
                let from = rng.below(len);
                let piece = chars_slice(field, from, 1 + rng.below(6));
                rng.recase(&piece)
            }
            // Across the title/content boundary: never a match unless it
            // also occurs within one of them.
            2 => {
                let tail = a.title.chars().count();
                let take = 1 + rng.below(3.min(tail));
                format!(
                    "{}{}",
                    chars_slice(&a.title, tail - take, take),
                    chars_slice(&a.content, 0, 1 + rng.below(3)),
                )
            }
            // Random, mostly absent.
            3 => rng.text(4),
            // One or two characters.
            _ => chars_slice(&rng.text(2), 0, 1 + rng.below(2)),
        };
        let tag = if rng.below(3) == 0 {
            TAGS[rng.below(TAGS.len())]
        } else {
            ""
        };
        let page = 1 + rng.below(3) as i32;
        let size = [1, 5, 20][rng.below(3)];
        let query = ListQuery::new(page, size, text.clone(), tag.into()).unwrap();
        let got = store.list(&query).await.unwrap();
        let got_ids: Vec<i64> = got.articles.iter().map(|a| a.id).collect();
        let (want_ids, want_total) = scan(&articles, &query);
        assert_eq!(
            (&got_ids, got.total_count),
            (&want_ids, want_total),
            "text {text:?}, tag {tag:?}, page {page} of {size}"
        );
        if want_total > 0 {
            matched += 1;
        }
    }
    // The queries test something: many find articles, many do not.
    assert!((150..550).contains(&matched), "{matched} of 600 matched");

    // Tag filter and plain listing on deep pages, past the end included.
    for tag in TAGS.iter().copied().chain([""]) {
        for page in 1..=40 {
            let query = ListQuery::new(page, 10, String::new(), tag.into()).unwrap();
            let got = store.list(&query).await.unwrap();
            let got_ids: Vec<i64> = got.articles.iter().map(|a| a.id).collect();
            assert_eq!(
                (got_ids, got.total_count),
                scan(&articles, &query),
                "tag {tag:?}, page {page}"
            );
        }
    }
}

#[tokio::test]
async fn sqlite_index_answers_as_a_scan_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url, 1000).await.unwrap();
    indexed_answers_as_a_scan_does(&store, 0x9e37_79b9_7f4a_7c15).await;
}

#[tokio::test]
async fn postgres_index_answers_as_a_scan_does() {
    let url = PgCluster::shared()
        .create_database("search")
        .expect("createdb");
    let store = PostgresStore::open(&url, 1000, PostgresOptions::default())
        .await
        .unwrap();
    indexed_answers_as_a_scan_does(&store, 0x2545_f491_4f6c_dd1d).await;
}
