//! `/articles/:id`: one article. It follows the change feed: an edit by
//! someone else replaces what is shown (with a note), a deletion says so.
//! Delete asks for confirmation first.

use leptos::prelude::*;

use crate::{
    api::{self, ApiError, Article, Change, ErrorKind},
    components::{ErrorPanel, LiveIndicator, LocalTime, TagList},
    live::{self, LiveEvent, LiveStatus},
    pages::NoSuchArticle,
    router::{How, use_article_id, use_navigate},
    routes::edit_href,
    session::use_session,
    set_title,
    task::Latest,
};

#[derive(Clone, Debug, PartialEq)]
enum State {
    Loading,
    Ready(Article),
    Failed(ApiError),
}

/// What happened to the shown article since it was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Remote {
    Unchanged,
    Updated,
    Deleted,
}

#[component]
pub fn DetailPage() -> impl IntoView {
    let id = use_article_id();
    let state = RwSignal::new(State::Loading);
    let remote = RwSignal::new(Remote::Unchanged);

    let loader = Latest::new();
    let load = move |quiet: bool| {
        let Some(id) = id.get_untracked() else { return };
        // A refresh during the first load restarts that load instead:
        // replacing it with a quiet one would leave "Loading…" up forever.
        let quiet = quiet && state.with_untracked(|s| !matches!(s, State::Loading));
        if !quiet {
            state.set(State::Loading);
            remote.set(Remote::Unchanged);
        }
        loader.run(async move {
            match api::get_article(id).await {
                Ok(article) => state.set(State::Ready(article)),
                Err(err) if quiet && err.kind == ErrorKind::NotFound => remote.set(Remote::Deleted),
                // A failed background refresh keeps what is shown.
                Err(_) if quiet => {}
                Err(err) => state.set(State::Failed(err)),
            }
        });
    };
    Effect::new(move |_| {
        id.track();
        load(false);
    });
    Effect::new(move |_| {
        if let State::Ready(a) = &*state.read() {
            set_title(&a.title);
        }
    });

    let live_status = RwSignal::new(LiveStatus::Connecting);
    live::follow(Latest::new(), String::new(), live_status, move |event| {
        let shown = id.get_untracked();
        match event {
            LiveEvent::Change(Change::Updated(article)) if Some(article.id) == shown => {
                state.set(State::Ready(article));
                remote.set(Remote::Updated);
            }
            LiveEvent::Change(Change::Deleted(deleted)) if Some(deleted) == shown => {
                remote.set(Remote::Deleted);
            }
            LiveEvent::Resync => load(true),
            LiveEvent::Change(_) => {}
        }
    });

    // Re-render only when the article really changed (a background
    // refresh usually returns the same one).
    let shown = Memo::new(move |_| state.get());
    move || match (id.get(), shown.get()) {
        (None, _) => view! { <NoSuchArticle id=None /> }.into_any(),
        (Some(_), State::Loading) => view! {
            <p class="loading" role="status" data-testid="loading">
                "Loading article…"
            </p>
        }
        .into_any(),
        (Some(id), State::Failed(err)) if err.kind == ErrorKind::NotFound => {
            view! { <NoSuchArticle id=Some(id) /> }.into_any()
        }
        (Some(_), State::Failed(err)) => {
            view! { <ErrorPanel error=err retry=Callback::new(move |()| load(false)) /> }.into_any()
        }
        (Some(_), State::Ready(article)) => {
            view! { <ArticleView article=article remote=remote live_status=live_status /> }
                .into_any()
        }
    }
}

#[component]
fn ArticleView(
    article: Article,
    remote: RwSignal<Remote>,
    live_status: RwSignal<LiveStatus>,
) -> impl IntoView {
    let id = article.id;
    let edited = article.update_time != article.create_time;
    let paragraphs = article
        .content
        .split("\n\n")
        .map(|p| p.trim_matches(|c| c == '\n' || c == '\r'))
        .filter(|p| !p.trim().is_empty())
        .map(|p| view! { <p>{p.to_owned()}</p> })
        .collect_view();

    let remote_notice = move || match remote.get() {
        Remote::Unchanged => None,
        Remote::Updated => Some(
            view! {
                <p class="notice info" role="status" data-testid="live-notice">
                    "This article was just updated; you are seeing the new version."
                </p>
            }
            .into_any(),
        ),
        Remote::Deleted => Some(
            view! {
                <div class="notice warn" role="alert" data-testid="deleted-notice">
                    <p class="notice-title">"This article has been deleted."</p>
                    <p><a href="/">"Back to all articles"</a></p>
                </div>
            }
            .into_any(),
        ),
    };

    view! {
        <article class="detail" data-testid="article-detail" data-id=id>
            <div class="page-head">
                <a class="back" href="/">"← All articles"</a>
                <LiveIndicator status=live_status />
            </div>
            {remote_notice}
            <header>
                <h1 data-testid="detail-title">{article.title}</h1>
                <p class="meta">
                    "by " <span data-testid="detail-author">{article.author}</span> " · published "
                    <LocalTime time=article.create_time testid="detail-created" />
                    {edited
                        .then(|| {
                            view! {
                                " · updated "
                                <LocalTime time=article.update_time testid="detail-updated" />
                            }
                        })}
                    <span class="muted" data-testid="detail-version">
                        {format!(" · version {}", article.version)}
                    </span>
                </p>
                <TagList tags=article.tags />
            </header>
            <div class="content" data-testid="detail-content">{paragraphs}</div>
            <Actions id=id remote=remote />
        </article>
    }
}

/// Edit and delete (with a confirmation step).
#[component]
fn Actions(id: i64, remote: RwSignal<Remote>) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let confirming = RwSignal::new(false);
    let deleting = RwSignal::new(false);
    let failure = RwSignal::new(None::<ApiError>);
    let task = Latest::new();

    let ask = move |_| {
        failure.set(None);
        if session.token_untracked().is_none() {
            session.ask("Sign in with your write token to delete articles.");
        } else {
            confirming.set(true);
        }
    };
    let delete = move |_| {
        let Some(token) = session.token_untracked() else {
            session.ask("Sign in with your write token to delete articles.");
            return;
        };
        deleting.set(true);
        task.run(async move {
            let result = api::delete_article(&token, id).await;
            deleting.set(false);
            confirming.set(false);
            match result {
                Ok(()) => navigate.go("/", How::PUSH),
                Err(err) if err.kind == ErrorKind::NotFound => remote.set(Remote::Deleted),
                Err(err) if err.kind == ErrorKind::Unauthenticated => {
                    session.rejected();
                    failure.set(Some(err));
                }
                Err(err) => failure.set(Some(err)),
            }
        });
    };

    // A memo, as `<Show>` would keep: the dialog is built when it opens,
    // not again on every `confirming.set(true)`. (`<Show>` itself, with its
    // children-function machinery, was 1.2 KB of the gzipped bundle for
    // the app's three uses.)
    let confirm_shown = Memo::new(move |_| confirming.get());

    view! {
        <footer class="actions" hidden=move || remote.get() == Remote::Deleted>
            <div class="button-row">
                <a class="button" href=edit_href(id) data-testid="edit-link">
                    "Edit"
                </a>
                <button type="button" class="danger" data-testid="delete-button" on:click=ask>
                    "Delete…"
                </button>
            </div>
            {move || {
                confirm_shown
                    .get()
                    .then(|| {
                        view! {
                            <div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
                                <p id="confirm-text">"Delete this article for everyone? This cannot be undone."</p>
                                <div class="button-row">
                                    <button
                                        type="button"
                                        class="danger"
                                        data-testid="confirm-delete"
                                        disabled=move || deleting.get()
                                        on:click=delete
                                    >
                                        {move || if deleting.get() { "Deleting…" } else { "Yes, delete" }}
                                    </button>
                                    <button
                                        type="button"
                                        class="secondary"
                                        data-testid="cancel-delete"
                                        on:click=move |_| confirming.set(false)
                                        autofocus
                                    >
                                        "Keep it"
                                    </button>
                                </div>
                            </div>
                        }
                    })
            }}
            {move || failure.get().map(|err| view! { <ErrorPanel error=err /> })}
        </footer>
    }
}
