//! Page links for the list: previous / numbers (with gaps) / next. Plain
//! links, so every page has a URL and works with the keyboard.

use leptos::prelude::*;

use crate::routes::ListParams;

#[component]
pub fn Pagination(params: ListParams, total: i64) -> impl IntoView {
    let size = i64::from(params.size.max(1));
    let pages = i32::try_from((total + size - 1) / size).unwrap_or(i32::MAX);
    (pages > 1).then(|| {
        let current = params.page;
        let link = |page: i32, text: String, testid: &'static str, label: String| {
            view! {
                <a
                    href=params.with_page(page).href()
                    data-testid=testid
                    data-page=page
                    aria-label=label
                    aria-current=(page == current && testid == "page-link").then_some("page")
                >
                    {text}
                </a>
            }
        };
        let previous = (current > 1).then(|| {
            link(current - 1, "← Previous".into(), "page-prev", "Previous page".into())
        });
        let next = (current < pages).then(|| {
            link(current + 1, "Next →".into(), "page-next", "Next page".into())
        });
        let numbers = page_window(current, pages)
            .into_iter()
            .map(|slot| match slot {
                Some(page) => {
                    view! { <li>{link(page, page.to_string(), "page-link", format!("Page {page}"))}</li> }
                        .into_any()
                }
                None => view! { <li class="gap" aria-hidden="true">"…"</li> }.into_any(),
            })
            .collect_view();
        view! {
            <nav class="pagination" aria-label="Pages" data-testid="pagination">
                {previous}
                <ol>{numbers}</ol>
                {next}
            </nav>
        }
    })
}

/// First, last, and two either side of the current page; `None` is a gap.
fn page_window(current: i32, pages: i32) -> Vec<Option<i32>> {
    let mut out = Vec::new();
    let mut last_shown = 0;
    for page in 1..=pages {
        if page == 1 || page == pages || (page - current).abs() <= 2 {
            if page - last_shown > 1 {
                out.push(None);
            }
            out.push(Some(page));
            last_shown = page;
        }
    }
    out
}
