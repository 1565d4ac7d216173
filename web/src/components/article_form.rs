//! The create / edit form.
//!
//! Hints under each field check as you type (length, tag format), but they
//! only advise: the server is the judge, and its `google.rpc.BadRequest`
//! field violations are shown next to the fields they name. An edit sends
//! the version it was based on; if someone saved in between (ABORTED) the
//! form says so and offers to load their version. A missing or rejected
//! token opens the sign-in box and keeps what was typed.

use leptos::{ev, prelude::*};

use crate::{
    api::{self, ApiError, Article, Draft, ErrorKind},
    router::{How, use_navigate},
    routes::article_href,
    session::use_session,
    task::Latest,
};

const MAX_TITLE_CHARS: usize = 200;
const MAX_CONTENT_BYTES: usize = 100_000;
const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 32;

/// The outcome of the last save, shown above the buttons.
#[derive(Clone, Debug, PartialEq)]
enum Problem {
    None,
    /// Field violations (shown at their fields) and any without a field.
    Invalid(Vec<api::Violation>),
    Conflict,
    Gone,
    Unauthenticated,
    Other(ApiError),
}

/// Splits the tags field on commas and whitespace.
fn parse_tags(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tag_hint(tags: &[String]) -> Option<String> {
    // In the order typed. Not `sort` + `dedup`: a stable sort costs 4 KB of
    // wasm, and a form has a handful of tags.
    let mut unique: Vec<&String> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    if unique.len() > MAX_TAGS {
        return Some(format!(
            "{} tags; at most {MAX_TAGS} are allowed.",
            unique.len()
        ));
    }
    let bad: Vec<&str> = unique
        .iter()
        .filter(|t| {
            t.chars().count() > MAX_TAG_CHARS
                || !t
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .map(|t| t.as_str())
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "Not a valid tag: {}. Use up to {MAX_TAG_CHARS} lowercase letters, digits or '-'.",
            bad.join(", ")
        )
    })
}

/// Whether a violation's field path (`tags`, `tags[2]`) is about `name`.
fn names_field(path: &str, name: &str) -> bool {
    path.strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('[') || rest.starts_with('.'))
}

/// Moves the keyboard focus to the first field the server complained
/// about, so a screen reader announces it and typing can continue there.
fn focus_first_invalid(violations: &[api::Violation]) {
    let Some(field) = ["title", "content", "tags"]
        .into_iter()
        .find(|f| violations.iter().any(|v| names_field(&v.field, f)))
    else {
        return;
    };
    let element = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(field))
        .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok());
    if let Some(element) = element {
        let _ = element.focus();
    }
}

#[component]
pub fn ArticleForm(
    /// The article being edited; `None` to write a new one.
    existing: Option<Article>,
) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let editing_id = existing.as_ref().map(|a| a.id);

    let title = RwSignal::new(String::new());
    let content = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let version = RwSignal::new(0_i64);
    let fill = move |article: &Article| {
        title.set(article.title.clone());
        content.set(article.content.clone());
        tags.set(article.tags.join(", "));
        version.set(article.version);
    };
    if let Some(article) = &existing {
        fill(article);
    }

    let saving = RwSignal::new(false);
    let problem = RwSignal::new(Problem::None);
    let save_task = Latest::new();

    let violation_for = move |field: &'static str| {
        move || match &*problem.read() {
            Problem::Invalid(list) => {
                let text: Vec<String> = list
                    .iter()
                    .filter(|v| names_field(&v.field, field))
                    .map(|v| v.description.clone())
                    .collect();
                (!text.is_empty()).then(|| text.join(" "))
            }
            _ => None,
        }
    };
    let title_error = violation_for("title");
    let content_error = violation_for("content");
    let tags_error = violation_for("tags");

    let submit = {
        move |ev: ev::SubmitEvent| {
            ev.prevent_default();
            if saving.get_untracked() {
                return;
            }
            let Some(token) = session.token_untracked() else {
                session.ask("Sign in with your write token to save this article.");
                problem.set(Problem::Unauthenticated);
                return;
            };
            let draft = Draft {
                title: title.get_untracked(),
                content: content.get_untracked(),
                tags: parse_tags(&tags.get_untracked()),
            };
            let expected = version.get_untracked();
            saving.set(true);
            problem.set(Problem::None);
            save_task.run(async move {
                let result = match editing_id {
                    Some(id) => api::update_article(&token, id, draft, expected).await,
                    None => api::create_article(&token, draft).await,
                };
                saving.set(false);
                match result {
                    Ok(article) => navigate.go(&article_href(article.id), How::PUSH),
                    Err(err) => problem.set(match err.kind {
                        ErrorKind::Invalid => {
                            focus_first_invalid(&err.violations);
                            Problem::Invalid(err.violations)
                        }
                        ErrorKind::Conflict => Problem::Conflict,
                        ErrorKind::NotFound => Problem::Gone,
                        ErrorKind::Unauthenticated => {
                            session.rejected();
                            Problem::Unauthenticated
                        }
                        _ => Problem::Other(err),
                    }),
                }
            });
        }
    };

    // After a conflict: load the current version and start over from it.
    let reload_task = Latest::new();
    let reload = move |_| {
        let Some(id) = editing_id else { return };
        reload_task.run(async move {
            match api::get_article(id).await {
                Ok(article) => {
                    fill(&article);
                    problem.set(Problem::None);
                }
                Err(err) if err.kind == ErrorKind::NotFound => problem.set(Problem::Gone),
                Err(err) => problem.set(Problem::Other(err)),
            }
        });
    };

    let title_hint = move || {
        let n = title.read().trim().chars().count();
        let over = n > MAX_TITLE_CHARS;
        let text = if n == 0 {
            "Required.".to_owned()
        } else {
            format!("{n} / {MAX_TITLE_CHARS} characters")
        };
        (text, over)
    };
    let content_hint = move || {
        let bytes = content.read().len();
        let text = if bytes > MAX_CONTENT_BYTES {
            format!("{bytes} bytes; at most {MAX_CONTENT_BYTES} are allowed.")
        } else {
            "Blank lines separate paragraphs.".to_owned()
        };
        (text, bytes > MAX_CONTENT_BYTES)
    };
    let tags_hint = move || match tag_hint(&parse_tags(&tags.read())) {
        Some(text) => (text, true),
        None => (
            format!(
                "Up to {MAX_TAGS}, separated by commas or spaces; lowercase letters, digits and '-'."
            ),
            false,
        ),
    };

    let other_violations = move || match &*problem.read() {
        Problem::Invalid(list) => list
            .iter()
            .filter(|v| {
                !["title", "content", "tags"]
                    .iter()
                    .any(|f| names_field(&v.field, f))
            })
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };

    let problem_view = move || {
        match problem.get() {
        Problem::None => None,
        Problem::Invalid(_) => Some(
            view! {
                <div class="notice error" role="alert" data-testid="form-error">
                    <p class="notice-title">"Please fix the highlighted fields."</p>
                    <ul>{other_violations().into_iter().map(|v| view! { <li>{v}</li> }).collect_view()}</ul>
                </div>
            }
            .into_any(),
        ),
        Problem::Conflict => Some(
            view! {
                <div class="notice warn" role="alert" data-testid="conflict">
                    <p class="notice-title">"Someone else saved this article while you were editing."</p>
                    <p>
                        "Your changes were not saved. Load their version to continue from it "
                        "(copy anything of yours you want to keep first)."
                    </p>
                    <button type="button" data-testid="reload-button" on:click=reload>
                        "Load their version"
                    </button>
                </div>
            }
            .into_any(),
        ),
        Problem::Gone => Some(
            view! {
                <div class="notice error" role="alert" data-testid="form-error">
                    <p class="notice-title">"This article has been deleted in the meantime."</p>
                    <p><a href="/">"Back to all articles"</a></p>
                </div>
            }
            .into_any(),
        ),
        Problem::Unauthenticated => Some(
            view! {
                <div class="notice warn" role="alert" data-testid="form-error">
                    <p class="notice-title">"Saving needs a valid write token."</p>
                    <p>"Sign in (top right), then save again. What you typed is kept."</p>
                </div>
            }
            .into_any(),
        ),
        Problem::Other(err) => Some(
            view! {
                <div data-testid="form-error">
                    <crate::components::ErrorPanel error=err />
                </div>
            }
            .into_any(),
        ),
    }
    };

    let cancel_href = editing_id.map_or_else(|| "/".to_owned(), article_href);

    view! {
        <form class="article-form" novalidate on:submit=submit data-testid="article-form">
            <Field
                id="title"
                label="Title"
                hint=Signal::derive(title_hint)
                error=Signal::derive(title_error)
            >
                <input
                    id="title"
                    type="text"
                    data-testid="title-input"
                    aria-describedby="title-hint title-error"
                    aria-invalid=move || title_error().is_some().to_string()
                    prop:value=title
                    on:input=move |ev| title.set(event_target_value(&ev))
                />
            </Field>
            <Field
                id="content"
                label="Content"
                hint=Signal::derive(content_hint)
                error=Signal::derive(content_error)
            >
                <textarea
                    id="content"
                    rows="14"
                    data-testid="content-input"
                    aria-describedby="content-hint content-error"
                    aria-invalid=move || content_error().is_some().to_string()
                    prop:value=content
                    on:input=move |ev| content.set(event_target_value(&ev))
                ></textarea>
            </Field>
            <Field
                id="tags"
                label="Tags"
                hint=Signal::derive(tags_hint)
                error=Signal::derive(tags_error)
            >
                <input
                    id="tags"
                    type="text"
                    autocapitalize="none"
                    spellcheck="false"
                    data-testid="tags-input"
                    aria-describedby="tags-hint tags-error"
                    aria-invalid=move || tags_error().is_some().to_string()
                    prop:value=tags
                    on:input=move |ev| tags.set(event_target_value(&ev))
                />
            </Field>
            {problem_view}
            <div class="button-row">
                <button
                    type="submit"
                    data-testid="save-button"
                    disabled=move || saving.get()
                    aria-busy=move || saving.get().to_string()
                >
                    {move || match (saving.get(), editing_id.is_some()) {
                        (true, _) => "Saving…",
                        (false, true) => "Save changes",
                        (false, false) => "Publish",
                    }}
                </button>
                <a class="button secondary" href=cancel_href data-testid="cancel-link">
                    "Cancel"
                </a>
            </div>
        </form>
    }
}

/// A labelled field with its hint and, after a failed save, the server's
/// complaint about it (`data-testid="{id}-error"`).
#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    hint: Signal<(String, bool)>,
    error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:invalid=move || error.read().is_some()>
            <label for=id>{label}</label>
            {children()}
            <p
                id=format!("{id}-hint")
                class="hint"
                class:warn=move || hint.read().1
                data-testid=format!("{id}-hint")
                // The server's complaint replaces the hint while it stands.
                hidden=move || error.read().is_some()
            >
                {move || hint.read().0.clone()}
            </p>
            <p
                id=format!("{id}-error")
                class="field-error"
                data-testid=format!("{id}-error")
                hidden=move || error.read().is_none()
            >
                {move || error.get()}
            </p>
        </div>
    }
}
