//! `/articles/new`: write an article.

use leptos::prelude::*;

use crate::{components::ArticleForm, set_title};

#[component]
pub fn NewPage() -> impl IntoView {
    set_title("New article");
    view! {
        <section class="form-page" aria-labelledby="form-heading">
            <a class="back" href="/">"← All articles"</a>
            <h1 id="form-heading">"New article"</h1>
            <ArticleForm existing=None />
        </section>
    }
}
