//! The small "Live" / "Reconnecting…" badge of a page that follows the
//! change feed. `data-status` carries the state for tests.

use leptos::prelude::*;

use crate::live::LiveStatus;

#[component]
pub fn LiveIndicator(status: RwSignal<LiveStatus>) -> impl IntoView {
    let label = move || match status.get() {
        LiveStatus::Connecting => "Connecting…",
        LiveStatus::Live => "Live",
        LiveStatus::Reconnecting => "Reconnecting…",
    };
    let title = move || match status.get() {
        LiveStatus::Live => "Changes by others appear here as they happen.",
        _ => "Not receiving live changes right now; retrying.",
    };
    view! {
        <span
            class="live"
            data-testid="live-indicator"
            data-status=move || status.get().as_str()
            role="status"
            title=title
        >
            <span class="live-dot" aria-hidden="true"></span>
            {label}
        </span>
    }
}
