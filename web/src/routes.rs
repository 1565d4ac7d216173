//! The app's URLs. The list's state lives in its query string
//! (`?page=2&size=20&q=grpc&tag=rust`), so any list view can be bookmarked,
//! shared and reloaded.

use crate::router::query_value;

pub const DEFAULT_PAGE_SIZE: i32 = 10;
pub const PAGE_SIZES: [i32; 3] = [10, 20, 50];
/// The server clamps larger page sizes to this.
const MAX_PAGE_SIZE: i32 = 100;

/// What the list page shows, as read from and written to its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListParams {
    pub page: i32,
    pub size: i32,
    pub q: String,
    pub tag: String,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            page: 1,
            size: DEFAULT_PAGE_SIZE,
            q: String::new(),
            tag: String::new(),
        }
    }
}

impl ListParams {
    /// Reads the query string; anything missing or malformed falls back
    /// to the default, so a hand-edited URL still shows a list.
    /// `search` is the query string, with or without its `?`.
    pub fn from_query(search: &str) -> Self {
        let number =
            |key: &str| query_value(search, key).and_then(|v| v.trim().parse::<i32>().ok());
        Self {
            page: number("page").filter(|p| *p >= 1).unwrap_or(1),
            size: number("size")
                .filter(|s| *s >= 1)
                .map_or(DEFAULT_PAGE_SIZE, |s| s.min(MAX_PAGE_SIZE)),
            q: query_value(search, "q").unwrap_or_default(),
            tag: query_value(search, "tag").unwrap_or_default(),
        }
    }

    /// The list URL for these parameters; defaults are left out.
    pub fn href(&self) -> String {
        let mut parts = Vec::new();
        if !self.q.is_empty() {
            parts.push(format!("q={}", encode(&self.q)));
        }
        if !self.tag.is_empty() {
            parts.push(format!("tag={}", encode(&self.tag)));
        }
        if self.size != DEFAULT_PAGE_SIZE {
            parts.push(format!("size={}", self.size));
        }
        if self.page > 1 {
            parts.push(format!("page={}", self.page));
        }
        if parts.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }

    pub fn with_page(&self, page: i32) -> Self {
        Self {
            page,
            ..self.clone()
        }
    }
}

/// The list filtered by one tag.
pub fn tag_href(tag: &str) -> String {
    ListParams {
        tag: tag.to_owned(),
        ..ListParams::default()
    }
    .href()
}

pub fn article_href(id: i64) -> String {
    format!("/articles/{id}")
}

pub fn edit_href(id: i64) -> String {
    format!("/articles/{id}/edit")
}

pub const NEW_HREF: &str = "/articles/new";

fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}
