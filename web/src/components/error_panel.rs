//! A failed call, explained: one plain sentence, the gRPC code and
//! server message and request id under "Details", and a retry button.

use leptos::prelude::*;

use crate::api::ApiError;

#[component]
pub fn ErrorPanel(
    error: ApiError,
    /// Offered as "Try again" when given.
    #[prop(optional, into)]
    retry: Option<Callback<()>>,
) -> impl IntoView {
    let ApiError {
        code,
        message,
        request_id,
        ..
    } = error.clone();
    view! {
        <div class="notice error" role="alert" data-testid="error" data-code=code>
            <p class="notice-title">{error.summary()}</p>
            <details>
                <summary>"Details"</summary>
                <p>
                    <code>{code}</code>
                    {(!message.is_empty()).then(|| format!(": {message}"))}
                </p>
                {request_id.map(|id| view! { <p class="muted">"Request id: " <code>{id}</code></p> })}
            </details>
            {retry.map(|retry| {
                view! {
                    <button type="button" data-testid="retry" on:click=move |_| retry.run(())>
                        "Try again"
                    </button>
                }
            })}
        </div>
    }
}
