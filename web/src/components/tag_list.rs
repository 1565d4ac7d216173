//! An article's tags as links that filter the list by that tag.

use leptos::prelude::*;

use crate::routes::tag_href;

#[component]
pub fn TagList(tags: Vec<String>) -> impl IntoView {
    (!tags.is_empty()).then(|| {
        view! {
            <ul class="tags" aria-label="Tags">
                {tags
                    .into_iter()
                    .map(|tag| {
                        let label = format!("Show articles tagged {tag}");
                        view! {
                            <li>
                                <a
                                    class="tag"
                                    href=tag_href(&tag)
                                    data-testid="tag"
                                    aria-label=label
                                >
                                    {format!("#{tag}")}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    })
}
