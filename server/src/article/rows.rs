//! What the two SQL stores (`sqlite`, `postgres`) share about how an
//! article is stored: tags as one comma-separated column, times as
//! microseconds since the Unix epoch, the lower-cased search text, and how
//! an article row and a change-log row are read — generic over the
//! driver's row type, with each store's own mapping of its driver's errors.

use chrono::{DateTime, Utc};

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    Article, ArticleDraft, ArticleError,
    store::{Change, ChangeKind, StoreResult},
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

/// An article from a row with the columns `id, title, content, author,
/// tags, create_time, update_time, version`; `map` is the store's mapping
/// of its driver's errors.
pub(super) fn article_from_row<R>(
    row: &R,
    map: fn(sqlx::Error) -> ArticleError,
) -> StoreResult<Article>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let int = |column: &str| row.try_get::<i64, _>(column).map_err(map);
    let text = |column: &str| row.try_get::<String, _>(column).map_err(map);
    Ok(Article {
        id: int("id")?,
        title: text("title")?,
        content: text("content")?,
        author: text("author")?,
        tags: split_tags(text("tags")?),
        create_time: time(int("create_time")?)?,
        update_time: time(int("update_time")?)?,
        version: int("version")?,
    })
}

/// A change from a change-log row: `seq`, `kind`, `old_tags`, and the
/// article's columns as [`article_from_row`] reads them (`article_id AS id`).
pub(super) fn change_from_row<R>(
    row: &R,
    map: fn(sqlx::Error) -> ArticleError,
) -> StoreResult<Change>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let sequence = row.try_get::<i64, _>("seq").map_err(map)?;
    let kind = row.try_get::<String, _>("kind").map_err(map)?;
    let id = row.try_get::<i64, _>("id").map_err(map)?;
    let old_tags = || -> StoreResult<Vec<String>> {
        Ok(split_tags(
            row.try_get::<Option<String>, _>("old_tags")
                .map_err(map)?
                .unwrap_or_default(),
        ))
    };
    let kind = change_kind(&kind, id, || article_from_row(row, map), old_tags)?;
    Ok(Change { sequence, kind })
}

/// The change a change-log row of `kind` (`created`, `updated`,
/// `deleted`) records, reading the article and the old tags only when the
/// kind has them.
fn change_kind(
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
