//! Client-side routing: which page the address bar names, navigation with
//! the History API, and same-origin link clicks handled without a reload.
//!
//! Hand-written instead of `leptos_router` for the bundle size target
//! (≤ 150 KB gzip for the whole app): the app has four fixed routes and one
//! query string, and `leptos_router` (matching, nested outlets, async route
//! transitions, forms, …) cost about 60 KB of wasm (measured with twiggy).
//!
//! What it does, as `leptos_router` did for this app:
//! * The page is chosen by the path alone (see [`Page::of`]); a change of
//!   only the query or of the article id keeps the page mounted and updates
//!   what [`use_query`] and [`use_article_id`] return, so the list keeps
//!   the search box (and its focus) while the URL follows the typing.
//! * [`Navigator::go`] pushes (or replaces) a history entry and scrolls to the
//!   top unless told not to; back and forward (`popstate`) show that entry.
//! * A click on a same-origin `<a href>` navigates in the app, unless it
//!   would open elsewhere (modifier keys, middle button, `target`,
//!   `download`, `rel="external"`) or only moves to a `#fragment` of this
//!   page (the browser does that, e.g. the skip link).
//!
//! Limits: no base path (the app is served at `/`), no route guards.

use leptos::{ev, prelude::*};
use wasm_bindgen::{JsCast as _, JsValue};

/// The pages, by path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/` (the query chooses page, size, search text and tag).
    List,
    /// `/articles/new`
    New,
    /// `/articles/:id`
    Detail,
    /// `/articles/:id/edit`
    Edit,
    NotFound,
}

impl Page {
    /// The page for `path` (one trailing slash is ignored).
    pub fn of(path: &str) -> Self {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let mut segments = path.split('/').skip(1);
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some(""), None, None, None) => Self::List,
            (Some("articles"), Some("new"), None, None) => Self::New,
            (Some("articles"), Some(id), None, None) if !id.is_empty() => Self::Detail,
            (Some("articles"), Some(id), Some("edit"), None) if !id.is_empty() => Self::Edit,
            _ => Self::NotFound,
        }
    }
}

/// The part of the address the app routes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Location {
    path: String,
    /// Including the leading `?`, or empty.
    search: String,
}

impl Location {
    fn current() -> Self {
        let location = window().location();
        Self {
            path: location.pathname().unwrap_or_default(),
            search: location.search().unwrap_or_default(),
        }
    }
}

/// Shared through context by [`provide_router`].
#[derive(Clone, Copy)]
struct Router {
    location: RwSignal<Location>,
}

fn router() -> Router {
    expect_context::<Router>()
}

/// Starts routing: reads the address, follows back/forward and handles link
/// clicks. Call once, in the root component.
pub fn provide_router() {
    let location = RwSignal::new(Location::current());
    provide_context(Router { location });
    // The app lives as long as the page: the listeners are never removed.
    let popstate = window_event_listener(ev::popstate, move |_| {
        location.set(Location::current());
    });
    let navigator = Navigator { location };
    let click = window_event_listener(ev::click, move |ev| on_click(navigator, ev));
    std::mem::forget((popstate, click));
}

/// The page the address bar names.
pub fn use_page() -> Memo<Page> {
    let location = router().location;
    Memo::new(move |_| location.with(|l| Page::of(&l.path)))
}

/// The query string (with its `?`, or empty); read it with [`query_value`].
pub fn use_query() -> Memo<String> {
    let location = router().location;
    Memo::new(move |_| location.with(|l| l.search.clone()))
}

/// One value of a query string, decoded as the browser does (`+` is a
/// space); the first one when the key repeats.
pub fn query_value(search: &str, key: &str) -> Option<String> {
    web_sys::UrlSearchParams::new_with_str(search)
        .ok()?
        .get(key)
}

/// The `:id` of `/articles/:id` and `/articles/:id/edit`, when it is a number.
pub fn use_article_id() -> Memo<Option<i64>> {
    let location = router().location;
    Memo::new(move |_| {
        location.with(|l| {
            l.path
                .strip_prefix("/articles/")?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
    })
}

/// How [`Navigator::go`] changes the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct How {
    /// Replace the current entry instead of adding one.
    pub replace: bool,
    /// Scroll to the top of the page afterwards.
    pub scroll: bool,
}

impl How {
    /// A new history entry, scrolled to the top (what a link click does).
    pub const PUSH: Self = Self {
        replace: false,
        scroll: true,
    };
}

/// Changes the address; cheap to copy into tasks and handlers.
#[derive(Clone, Copy)]
pub struct Navigator {
    location: RwSignal<Location>,
}

/// The [`Navigator`]; call it where the component is set up.
pub fn use_navigate() -> Navigator {
    Navigator {
        location: router().location,
    }
}

impl Navigator {
    /// Shows `href` (a path with optional query, on this origin), adding or
    /// replacing a history entry as `how` says.
    pub fn go(self, href: &str, how: How) {
        navigate(self.location, href, how);
    }
}

fn navigate(location_signal: RwSignal<Location>, href: &str, how: How) {
    let Ok(history) = window().history() else {
        return;
    };
    let same = {
        let location = window().location();
        let current = location.pathname().unwrap_or_default()
            + &location.search().unwrap_or_default()
            + &location.hash().unwrap_or_default();
        current == href
    };
    // Like the browser: a link to the page being shown adds no entry.
    let result = if how.replace || same {
        history.replace_state_with_url(&JsValue::NULL, "", Some(href))
    } else {
        history.push_state_with_url(&JsValue::NULL, "", Some(href))
    };
    if result.is_err() {
        // Not same-origin after all: let the browser go there.
        let _ = window().location().set_href(href);
        return;
    }
    location_signal.set(Location::current());
    if how.scroll {
        window().scroll_to_with_x_and_y(0.0, 0.0);
    }
}

/// A click on a link the app can show itself: navigate without a reload.
fn on_click(navigator: Navigator, ev: web_sys::MouseEvent) {
    if ev.default_prevented()
        || ev.button() != 0
        || ev.meta_key()
        || ev.alt_key()
        || ev.ctrl_key()
        || ev.shift_key()
    {
        return;
    }
    let Some(anchor) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|e| e.closest("a[href]").ok().flatten())
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        return;
    };
    let opens_elsewhere = !matches!(anchor.target().as_str(), "" | "_self")
        || anchor.has_attribute("download")
        || anchor
            .get_attribute("rel")
            .is_some_and(|rel| rel.split_whitespace().any(|r| r == "external"));
    let location = window().location();
    if opens_elsewhere || Some(anchor.origin()) != location.origin().ok() {
        return;
    }
    let (path, search, hash) = (anchor.pathname(), anchor.search(), anchor.hash());
    let same_page = location.pathname().ok().as_ref() == Some(&path)
        && location.search().ok().as_ref() == Some(&search);
    if same_page && !hash.is_empty() {
        // A fragment of this page: the browser scrolls and focuses.
        return;
    }
    ev.prevent_default();
    navigator.go(&format!("{path}{search}{hash}"), How::PUSH);
}
