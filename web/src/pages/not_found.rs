//! Friendly dead ends: an unknown URL, and an article id that does not
//! exist (NOT_FOUND from the server).

use leptos::prelude::*;

use crate::set_title;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    set_title("Page not found");
    view! {
        <section class="dead-end" data-testid="not-found">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <p><a href="/">"Go to all articles"</a></p>
        </section>
    }
}

#[component]
pub fn NoSuchArticle(id: Option<i64>) -> impl IntoView {
    set_title("No such article");
    let what = id.map_or_else(|| "This article".to_owned(), |id| format!("Article #{id}"));
    view! {
        <section class="dead-end" data-testid="not-found">
            <h1>"No such article"</h1>
            <p>{what}" does not exist. It may have been deleted, or the link may be mistyped."</p>
            <p><a href="/">"Browse all articles"</a></p>
        </section>
    }
}
