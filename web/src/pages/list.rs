//! `/`: the articles, newest first. Page, page size, search text and tag
//! live in the URL query (see [`crate::routes::ListParams`]). The search box
//! updates the URL 300 ms after typing stops; the list follows the change
//! feed and quietly reloads the current page when something changes,
//! highlighting rows that were not there before.

use std::time::Duration;

use leptos::{ev, prelude::*};

use crate::{
    api::{self, ApiError, Article, ListQuery},
    components::{ErrorPanel, LiveIndicator, LocalTime, Pagination, TagList},
    live::{self, LiveStatus},
    router::{How, use_navigate, use_query},
    routes::{ListParams, NEW_HREF, PAGE_SIZES, article_href},
    set_title,
    task::{Latest, sleep},
};

const SEARCH_DEBOUNCE: Duration = Duration::from_millis(300);
/// Changes often come in bursts; one reload covers a burst.
const LIVE_RELOAD_DELAY: Duration = Duration::from_millis(250);
const EXCERPT_CHARS: usize = 180;

/// Name of the performance mark set once per page load, when the first list
/// of articles is in the DOM (`cargo xtask bench` reads it: time from
/// navigation to the first list rendered).
pub const FIRST_LIST_MARK: &str = "article-list-rendered";

/// Marks the first list rendered. Leptos applies signal changes to the DOM
/// before the next animation frame, so the mark is set in that frame: after
/// the rows are in the document, before they are painted.
fn mark_first_list() {
    request_animation_frame(|| {
        let Some(performance) = web_sys::window().and_then(|w| w.performance()) else {
            return;
        };
        if performance.get_entries_by_name(FIRST_LIST_MARK).length() == 0 {
            _ = performance.mark(FIRST_LIST_MARK);
        }
    });
}

#[component]
pub fn ListPage() -> impl IntoView {
    let query = use_query();
    let params = Memo::new(move |_| ListParams::from_query(&query.read()));
    let navigate = use_navigate();

    // The first list of a page load may already be here (`index.html`
    // asked for it while the wasm downloaded): then the rows are part of
    // the first mount, with no loading state, no second call and no second
    // layout before they show.
    // If it is still on its way, the first load waits for it instead of
    // asking again.
    let (prefetched, on_its_way) = match (params.get_untracked() == ListParams::default())
        .then(api::first_list)
        .flatten()
    {
        Some(api::FirstList::Answered(response)) => (Some(response), None),
        Some(api::FirstList::OnItsWay(answer)) => (None, Some(answer)),
        None => (None, None),
    };
    let on_its_way = StoredValue::new_local(on_its_way);
    let skip_first_load = StoredValue::new(prefetched.is_some());
    // Then the feed opens once that list is painted: opening it (tonic's
    // streaming path, compiled on its first use) would otherwise run
    // between the mount and the first frame.
    let feed_may_open = RwSignal::new(prefetched.is_none());
    let loading = RwSignal::new(prefetched.is_none());
    let data = RwSignal::new(prefetched);
    let error = RwSignal::new(None::<ApiError>);
    // Ids of rows new since the last quiet reload. A page has at most 100
    // rows, so a `Vec` does; a `HashSet` added 2 KB of hashing to the wasm.
    let fresh = RwSignal::new(Vec::<i64>::new());

    // `quiet` reloads keep the rows on screen and mark newcomers.
    let loader = Latest::new();
    let foreground = StoredValue::new(false);
    let load = move |quiet: bool| {
        let p = params.get_untracked();
        // A refresh during a visible load restarts that load instead of
        // replacing it with a quiet one (which would skip its error state).
        let quiet = quiet && !foreground.get_value();
        foreground.set_value(!quiet);
        loading.set(true);
        if !quiet {
            error.set(None);
        }
        // Only the first load can find the first list's answer on its way.
        let on_its_way = on_its_way.try_update_value(Option::take).flatten();
        loader.run(async move {
            let q = ListQuery {
                page: p.page,
                page_size: p.size,
                query: p.q,
                tag: p.tag,
            };
            let result = match on_its_way {
                Some(answer) => api::list_articles_after(answer, q).await,
                None => api::list_articles(q).await,
            };
            loading.set(false);
            foreground.set_value(false);
            match result {
                Ok(response) => {
                    let newcomers = if quiet {
                        let before: Vec<i64> = data.with_untracked(|d| {
                            d.iter()
                                .flat_map(|d| d.articles.iter().map(|a| a.id))
                                .collect()
                        });
                        response
                            .articles
                            .iter()
                            .map(|a| a.id)
                            .filter(|id| !before.contains(id))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    fresh.set(newcomers);
                    error.set(None);
                    data.set(Some(response));
                    mark_first_list();
                }
                // A failed background refresh keeps the rows it has.
                Err(_) if quiet && data.with_untracked(Option::is_some) => {}
                Err(err) => error.set(Some(err)),
            }
        });
    };
    Effect::new(move |_| {
        params.track();
        if skip_first_load.get_value() {
            skip_first_load.set_value(false);
            mark_first_list();
            // A task queued in the frame's callbacks runs after its paint.
            request_animation_frame(move || {
                set_timeout(
                    move || {
                        feed_may_open.try_set(true);
                    },
                    Duration::ZERO,
                );
            });
        } else {
            load(false);
        }
    });
    Effect::new(move |_| {
        let p = params.read();
        set_title(&match (p.q.is_empty(), p.tag.is_empty()) {
            (true, true) => "Articles".to_owned(),
            (false, _) => format!("“{}” · Articles", p.q),
            (true, false) => format!("#{} · Articles", p.tag),
        });
    });

    // Live updates, filtered by the tag being shown.
    let live_status = RwSignal::new(LiveStatus::Connecting);
    let live_slot = Latest::new();
    let reload_soon = Latest::new();
    let tag = Memo::new(move |_| params.read().tag.clone());
    Effect::new(move |_| {
        let tag = tag.get();
        if !feed_may_open.get() {
            return;
        }
        live::follow(live_slot, tag, live_status, move |_event| {
            reload_soon.run(async move {
                sleep(LIVE_RELOAD_DELAY).await;
                load(true);
            });
        });
    });

    // Search: debounced while typing, immediate on Enter.
    let search_task = Latest::new();
    let go = move |p: ListParams| {
        navigate.go(
            &p.href(),
            How {
                replace: true,
                scroll: false,
            },
        );
    };
    let search_text = RwSignal::new(params.get_untracked().q);
    // Back / forward or a tag link: show the URL's search text.
    Effect::new(move |_| search_text.set(params.read().q.clone()));
    let search_now = move |text: String| {
        let current = params.get_untracked();
        if current.q != text {
            go(ListParams {
                q: text,
                page: 1,
                ..current
            });
        }
    };
    let on_search_input = move |ev: ev::Event| {
        let text = event_target_value(&ev);
        search_text.set(text.clone());
        search_task.run(async move {
            sleep(SEARCH_DEBOUNCE).await;
            search_now(text.trim().to_owned());
        });
    };
    let on_search_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        search_task.cancel();
        search_now(search_text.get_untracked().trim().to_owned());
    };
    let on_size_change = move |ev: ev::Event| {
        if let Ok(size) = event_target_value(&ev).parse::<i32>() {
            go(ListParams {
                size,
                page: 1,
                ..params.get_untracked()
            });
        }
    };

    let active_tag = move || {
        let p = params.get();
        (!p.tag.is_empty()).then(|| {
            let clear = ListParams {
                tag: String::new(),
                page: 1,
                ..p.clone()
            }
            .href();
            view! {
                <p class="active-filter" data-testid="active-tag">
                    "Tagged " <strong>{format!("#{}", p.tag)}</strong>
                    <a href=clear class="clear" data-testid="clear-tag" aria-label="Show all tags">
                        "✕ clear"
                    </a>
                </p>
            }
        })
    };

    let count = move || {
        data.with(|d| {
            d.as_ref().map(|d| {
                let n = d.total_count;
                let filtered = params.with(|p| !p.q.is_empty() || !p.tag.is_empty());
                let noun = if n == 1 { "article" } else { "articles" };
                let text = if filtered {
                    format!("{n} {noun} match")
                } else {
                    format!("{n} {noun}")
                };
                view! {
                    <p class="count" data-testid="total-count" data-count=n aria-live="polite">
                        {text}
                    </p>
                }
            })
        })
    };

    // What the main area shows; rows update in place inside `Rows`.
    let shape = Memo::new(move |_| {
        if let Some(err) = error.get() {
            return Shape::Failed(err);
        }
        data.with(|d| match d {
            None => Shape::Loading,
            Some(d) if d.articles.is_empty() => Shape::Empty(params.get(), d.total_count),
            Some(_) => Shape::Rows,
        })
    });
    let body = move || match shape.get() {
        Shape::Failed(err) => {
            view! { <ErrorPanel error=err retry=Callback::new(move |()| load(false)) /> }.into_any()
        }
        Shape::Loading => view! {
            <p class="loading" role="status" data-testid="loading">
                "Loading articles…"
            </p>
        }
        .into_any(),
        Shape::Empty(p, total) => empty_state(&p, total).into_any(),
        Shape::Rows => view! {
            <ol
                class="articles"
                class:stale=move || loading.get()
                aria-busy=move || loading.get().to_string()
                data-testid="article-list"
            >
                // The rows as a plain list, rebuilt in place row by row when
                // the page changes, not a keyed `<For>`: `For`'s keyed diff
                // and its `indexmap` were 4.7 KB of the gzipped bundle, and
                // a page holds at most 100 rows.
                {move || {
                    data.with(|d| {
                        d.iter()
                            .flat_map(|d| d.articles.clone())
                            .map(|article| view! { <ArticleRow article=article fresh=fresh /> })
                            .collect_view()
                    })
                }}
            </ol>
        }
        .into_any(),
    };

    let pagination = move || {
        let total = data.with(|d| d.as_ref().map(|d| d.total_count))?;
        Some(view! { <Pagination params=params.get() total=total /> })
    };

    view! {
        <section class="list-page" aria-labelledby="list-heading">
            <div class="page-head">
                <h1 id="list-heading">"Articles"</h1>
                <LiveIndicator status=live_status />
            </div>
            <form class="toolbar" role="search" on:submit=on_search_submit>
                <label class="search">
                    <span class="visually-hidden">"Search articles"</span>
                    <input
                        type="search"
                        placeholder="Search titles and content…"
                        data-testid="search-input"
                        prop:value=search_text
                        on:input=on_search_input
                    />
                </label>
                <label class="page-size">
                    "Per page "
                    <select
                        data-testid="page-size"
                        prop:value=move || params.read().size.to_string()
                        on:change=on_size_change
                    >
                        {PAGE_SIZES
                            .iter()
                            .map(|s| {
                                let s = *s;
                                view! {
                                    <option value=s.to_string() selected=move || params.read().size == s>
                                        {s}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                {move || {
                    loading
                        .get()
                        .then(|| {
                            view! { <span class="spinner" role="status" aria-label="Loading"></span> }
                        })
                }}
            </form>
            {active_tag}
            {count}
            {body}
            {pagination}
        </section>
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Shape {
    Loading,
    Failed(ApiError),
    Empty(ListParams, i64),
    Rows,
}

#[component]
fn ArticleRow(article: Article, fresh: RwSignal<Vec<i64>>) -> impl IntoView {
    let id = article.id;
    view! {
        <li
            class="article-row"
            class:fresh=move || fresh.read().contains(&id)
            data-testid="article-row"
            data-id=id
        >
            <h2>
                <a href=article_href(id) data-testid="article-link">
                    {article.title}
                </a>
            </h2>
            <p class="meta">
                <span>"by " {article.author}</span>
                " · "
                <LocalTime time=article.create_time />
            </p>
            <p class="excerpt">{excerpt(&article.content)}</p>
            <TagList tags=article.tags />
        </li>
    }
}

fn empty_state(p: &ListParams, total: i64) -> impl IntoView {
    let (title, hint): (String, AnyView) = if total > 0 {
        (
            format!("Page {} is past the end.", p.page),
            view! { <a href=p.with_page(1).href()>"Go to the first page"</a> }.into_any(),
        )
    } else if !p.q.is_empty() || !p.tag.is_empty() {
        (
            "No articles match.".to_owned(),
            view! { <a href="/">"Show all articles"</a> }.into_any(),
        )
    } else {
        (
            "No articles yet.".to_owned(),
            view! { <a href=NEW_HREF>"Write the first one"</a> }.into_any(),
        )
    };
    view! {
        <div class="empty" data-testid="empty">
            <p class="notice-title">{title}</p>
            <p>{hint}</p>
        </div>
    }
}

/// The start of the content on one line, cut at a word.
fn excerpt(content: &str) -> String {
    let flat: String = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}
