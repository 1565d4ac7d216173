//! `/articles/:id/edit`: load the article, then edit it in the shared form.

use leptos::prelude::*;

use crate::{
    api::{self, ApiError, Article, ErrorKind},
    components::{ArticleForm, ErrorPanel},
    pages::NoSuchArticle,
    router::use_article_id,
    routes::article_href,
    set_title,
    task::Latest,
};

#[derive(Clone, Debug, PartialEq)]
enum State {
    Loading,
    Ready(Article),
    Failed(ApiError),
}

#[component]
pub fn EditPage() -> impl IntoView {
    let id = use_article_id();
    let state = RwSignal::new(State::Loading);
    let loader = Latest::new();
    let load = move || {
        let Some(id) = id.get_untracked() else { return };
        state.set(State::Loading);
        loader.run(async move {
            state.set(match api::get_article(id).await {
                Ok(article) => State::Ready(article),
                Err(err) => State::Failed(err),
            });
        });
    };
    Effect::new(move |_| {
        id.track();
        load();
    });
    set_title("Edit article");

    move || match (id.get(), state.get()) {
        (None, _) => view! { <NoSuchArticle id=None /> }.into_any(),
        (Some(_), State::Loading) => {
            view! { <p class="loading" role="status" data-testid="loading">"Loading…"</p> }
                .into_any()
        }
        (Some(id), State::Failed(err)) if err.kind == ErrorKind::NotFound => {
            view! { <NoSuchArticle id=Some(id) /> }.into_any()
        }
        (Some(_), State::Failed(err)) => {
            view! { <ErrorPanel error=err retry=Callback::new(move |()| load()) /> }.into_any()
        }
        (Some(id), State::Ready(article)) => view! {
            <section class="form-page" aria-labelledby="form-heading">
                <a class="back" href=article_href(id)>"← Back to the article"</a>
                <h1 id="form-heading">"Edit article"</h1>
                <ArticleForm existing=Some(article) />
            </section>
        }
        .into_any(),
    }
}
