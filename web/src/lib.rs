//! The browser app: a Leptos client-side-rendered SPA that calls
//! article-server over gRPC-web with the generated `article.v1` client.
//!
//! * [`api`] is the only module that speaks gRPC.
//! * [`pages`] has one module per route, [`components`] the shared pieces.
//! * [`live`] follows the change feed, [`session`] keeps the write token,
//!   [`router`] picks the page for the address and navigates,
//!   [`routes`] builds and reads the URLs, [`task`] ties async work to the
//!   component that started it (so navigating away cancels it).
//!
//! `data-testid`s for browser tests (stable names; prefer them to text):
//! list `article-row` (`data-id`), `article-link`, `total-count`
//! (`data-count`), `search-input`, `page-size`, `pagination`, `page-link` /
//! `page-prev` / `page-next` (`data-page`), `tag`, `active-tag`, `clear-tag`,
//! `loading`, `empty`, `error` (`data-code` = gRPC code name), `retry`,
//! `live-indicator` (`data-status` = connecting | live | reconnecting);
//! detail `article-detail`, `detail-title`, `detail-author`,
//! `detail-created`, `detail-updated`, `detail-version`, `detail-content`,
//! `edit-link`, `delete-button`, `confirm-delete`, `cancel-delete`,
//! `live-notice`, `deleted-notice`, `not-found`; form `article-form`,
//! `title-input`, `content-input`, `tags-input`, `{title,content,tags}-error`,
//! `{title,content,tags}-hint`, `save-button`, `cancel-link`, `form-error`,
//! `conflict`, `reload-button`; header `new-article`, `sign-in-open`,
//! `sign-in-form`, `sign-in-token`, `sign-in-submit`, `sign-in-reason`,
//! `signed-in`, `sign-out`.
//!
//! The app only exists on `wasm32`; on other targets this crate is empty so
//! that native workspace builds stay quick.
#![cfg(target_arch = "wasm32")]

pub mod api;
pub mod components;
pub mod live;
pub mod pages;
pub mod router;
pub mod routes;
pub mod session;
pub mod task;

use leptos::prelude::*;

use crate::{
    components::SignInBox,
    pages::{DetailPage, EditPage, ListPage, NewPage, NotFoundPage},
    router::{Page, provide_router, use_page},
    routes::NEW_HREF,
    session::Session,
};

#[component]
pub fn App() -> impl IntoView {
    provide_context(Session::restore());
    provide_router();
    let page = use_page();
    // Only a change of page replaces the view; the pages follow changes of
    // query and id themselves.
    let routed = move || match page.get() {
        Page::List => view! { <ListPage /> }.into_any(),
        Page::New => view! { <NewPage /> }.into_any(),
        Page::Detail => view! { <DetailPage /> }.into_any(),
        Page::Edit => view! { <EditPage /> }.into_any(),
        Page::NotFound => view! { <NotFoundPage /> }.into_any(),
    };
    view! {
        <a class="skip-link" href="#main">
            "Skip to content"
        </a>
        <header class="site-header">
            <div class="wrap header-row">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    "Articles"
                </a>
                <nav aria-label="Main" class="main-nav">
                    <a class="button" href=NEW_HREF data-testid="new-article">
                        "New article"
                    </a>
                </nav>
                <SignInBox />
            </div>
        </header>
        <main id="main" class="wrap" tabindex="-1">
            {routed}
        </main>
        <footer class="site-footer">
            <div class="wrap">
                "Served over gRPC-web by article-server, rendered with Leptos in WebAssembly."
            </div>
        </footer>
    }
}

/// Sets the document title ("… · Articles" is added unless already there).
pub fn set_title(title: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        if title == "Articles" || title.ends_with("· Articles") {
            document.set_title(title);
        } else {
            document.set_title(&format!("{title} · Articles"));
        }
    }
}
