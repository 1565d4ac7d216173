//! What the two SQL stores (`sqlite`, `postgres`) share about how an
//! article is stored: tags as one comma-separated column, times as
//! microseconds since the Unix epoch, the lower-cased search text, and how
//! a change-log row's kind becomes a [`ChangeKind`]. Reading a column stays
//! in each store (its row type and its driver's errors differ).

use chrono::{DateTime, Utc};

use super::{
    Article, ArticleDraft, ArticleError,
    store::{ChangeKind, StoreResult},
};

/// Title and content, lower-cased (Unicode-aware, in Rust, the same for
/// both stores), separated by U+001F so that no search can match across
/// the boundary.
pub(super) fn search_text(draft: &ArticleDraft) -> String {
    format!("{}\u{1f}{}", draft.title(), draft.content()).to_lowercase()
}

/// The stored tags column back as a list (tags never contain a comma).
pub(super) fn split_tags(joined: String) -> Vec<String> {
    if joined.is_empty() {
        Vec::new()
    } else {
        joined.split(',').map(str::to_owned).collect()
    }
}

pub(super) fn now_micros() -> i64 {
    micros(Utc::now())
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn time(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| ArticleError::storage(anyhow::anyhow!("timestamp {us} out of range")))
}

/// The change a change-log row of `kind` (`created`, `updated`,
/// `deleted`) records, reading the article and the old tags only when the
/// kind has them.
pub(super) fn change_kind(
    kind: &str,
    id: i64,
    article: impl FnOnce() -> StoreResult<Article>,
    old_tags: impl FnOnce() -> StoreResult<Vec<String>>,
) -> StoreResult<ChangeKind> {
    Ok(match kind {
        "created" => ChangeKind::Created(article()?),
        "updated" => ChangeKind::Updated {
            article: article()?,
            old_tags: old_tags()?,
        },
        "deleted" => ChangeKind::Deleted {
            id,
            old_tags: old_tags()?,
        },
        other => {
            return Err(ArticleError::storage(anyhow::anyhow!(
                "unknown change kind {other:?}"
            )));
        }
    })
}
