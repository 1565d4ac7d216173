//! The article feature: domain types and validation (here), storage
//! (`store`, `sqlite`), the change feed (`watch`), errors (`error`) and the
//! gRPC surface (`grpc`). Only `grpc` knows about tonic and protobuf.

pub mod cache;
pub mod demo;
pub mod error;
pub mod grpc;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod store;
pub mod watch;

use chrono::{DateTime, Utc};

pub use error::{ArticleError, FieldViolation};

/// Longest title, in characters, after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 100_000;
/// Most tags on one article, after removing duplicates.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;

/// A stored article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Article {
    pub id: i64,
    pub title: String,
    pub content: String,
    pub author: String,
    pub tags: Vec<String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// The writable fields of an article, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArticleDraft {
    title: String,
    content: String,
    tags: Vec<String>,
}

impl ArticleDraft {
    /// Validates and normalises raw input: the title is trimmed, duplicate
    /// tags removed (first occurrence kept). Reports every violation at once.
    pub fn new(
        title: &str,
        content: String,
        tags: Vec<String>,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let title = title.trim();
        if title.is_empty() {
            violations.push(FieldViolation::new("title", "title must not be empty"));
        } else if title.chars().count() > MAX_TITLE_CHARS {
            violations.push(FieldViolation::new(
                "title",
                format!(
                    "title is {} characters long; at most {MAX_TITLE_CHARS} are allowed",
                    title.chars().count()
                ),
            ));
        }
        if content.len() > MAX_CONTENT_BYTES {
            violations.push(FieldViolation::new(
                "content",
                format!(
                    "content is {} bytes long; at most {MAX_CONTENT_BYTES} are allowed",
                    content.len()
                ),
            ));
        }
        let mut unique: Vec<String> = Vec::with_capacity(tags.len());
        for tag in tags {
            if !unique.contains(&tag) {
                unique.push(tag);
            }
        }
        for tag in &unique {
            if let Some(problem) = tag_problem(tag) {
                violations.push(FieldViolation::new(
                    "tags",
                    format!("tag {tag:?} {problem}"),
                ));
            }
        }
        if unique.len() > MAX_TAGS {
            violations.push(FieldViolation::new(
                "tags",
                format!(
                    "{} tags given; at most {MAX_TAGS} are allowed",
                    unique.len()
                ),
            ));
        }
        if violations.is_empty() {
            Ok(Self {
                title: title.to_owned(),
                content,
                tags: unique,
            })
        } else {
            Err(violations)
        }
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn content(&self) -> &str {
        &self.content
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }
}

fn tag_problem(tag: &str) -> Option<&'static str> {
    if tag.is_empty() {
        Some("is empty; a tag has 1 to 32 characters")
    } else if tag.chars().count() > MAX_TAG_CHARS {
        Some("is longer than 32 characters")
    } else if !tag
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("may only contain lowercase letters a-z, digits 0-9 and '-'")
    } else {
        None
    }
}

/// What to list: one page of matches, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ListQuery {
    /// 1-based.
    pub page: u32,
    /// 1..=100.
    pub page_size: u32,
    /// Case-insensitive substring of title or content; empty = all.
    pub text: String,
    /// Exact tag; empty = any.
    pub tag: String,
}

/// Default and largest page sizes.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

impl ListQuery {
    /// Applies the paging rules: page 0 means 1, page_size 0 means 20 and
    /// anything over 100 is clamped; negatives are invalid.
    pub fn new(
        page: i32,
        page_size: i32,
        text: String,
        tag: String,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if page < 0 {
            violations.push(FieldViolation::new("page", "page must not be negative"));
        }
        if page_size < 0 {
            violations.push(FieldViolation::new(
                "page_size",
                "page_size must not be negative",
            ));
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        let page = page.max(1) as u32;
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        Ok(Self {
            page,
            page_size,
            text,
            tag,
        })
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.page_size)
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub articles: Vec<Article>,
    pub total_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn draft_trims_title_and_dedups_tags() {
        let d = ArticleDraft::new("  Hello  ", "body".into(), tags(&["a", "b", "a"])).unwrap();
        assert_eq!(d.title(), "Hello");
        assert_eq!(d.tags(), ["a", "b"]);
    }

    #[test]
    fn draft_reports_every_violation() {
        let long_tag = "x".repeat(33);
        let err = ArticleDraft::new(
            "   ",
            "x".repeat(MAX_CONTENT_BYTES + 1),
            tags(&["Bad", "", &long_tag]),
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["title", "content", "tags", "tags", "tags"]);
    }

    #[test]
    fn draft_limits_are_inclusive() {
        let title = "é".repeat(MAX_TITLE_CHARS);
        let many: Vec<String> = (0..MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(ArticleDraft::new(&title, "x".repeat(MAX_CONTENT_BYTES), many.clone()).is_ok());
        let title = "é".repeat(MAX_TITLE_CHARS + 1);
        assert!(ArticleDraft::new(&title, String::new(), vec![]).is_err());
        let mut too_many = many;
        too_many.push("eleven".into());
        assert!(ArticleDraft::new("t", String::new(), too_many).is_err());
        // Duplicates are removed before counting.
        let dup: Vec<String> = (0..20).map(|i| format!("t{}", i % 10)).collect();
        assert_eq!(
            ArticleDraft::new("t", String::new(), dup)
                .unwrap()
                .tags()
                .len(),
            10
        );
    }

    #[test]
    fn list_query_paging_rules() {
        let q = ListQuery::new(0, 0, String::new(), String::new()).unwrap();
        assert_eq!((q.page, q.page_size, q.offset()), (1, 20, 0));
        let q = ListQuery::new(3, 500, String::new(), String::new()).unwrap();
        assert_eq!((q.page, q.page_size, q.offset()), (3, 100, 200));
        let err = ListQuery::new(-1, -1, String::new(), String::new()).unwrap_err();
        assert_eq!(err.len(), 2);
    }
}
