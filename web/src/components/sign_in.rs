//! The "sign in" box in the header: asks for the write token once and
//! keeps it (see [`crate::session`]). It opens by itself, with a reason,
//! when a write needs a token or the server rejected the one we had.

use leptos::{ev, html, prelude::*};

use crate::session::use_session;

#[component]
pub fn SignInBox() -> impl IntoView {
    let session = use_session();
    let toggled = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let input = NodeRef::<html::Input>::new();

    let is_open = move || toggled.get() || session.prompt.with(Option::is_some);
    let close = move || {
        toggled.set(false);
        session.prompt.set(None);
    };

    // Move the focus into the box when it opens.
    Effect::new(move |_| {
        if is_open()
            && let Some(el) = input.get()
        {
            let _ = el.focus();
        }
    });

    // Memos, as `<Show>` would keep: a view is built when its condition
    // changes, not again whenever a signal it reads is set (the form keeps
    // its focus while the prompt changes). See `pages/detail.rs` on
    // `<Show>`'s size.
    let signed_in = Memo::new(move |_| session.signed_in());
    let open = Memo::new(move |_| is_open());

    let submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        let token = draft.get_untracked();
        if token.trim().is_empty() {
            return;
        }
        session.sign_in(token);
        draft.set(String::new());
        toggled.set(false);
    };

    view! {
        <div class="sign-in">
            {move || {
                if !signed_in.get() {
                    return view! {
                        <button
                            type="button"
                            class="secondary"
                            data-testid="sign-in-open"
                            aria-expanded=move || is_open().to_string()
                            aria-controls="sign-in-form"
                            on:click=move |_| {
                                if is_open() { close() } else { toggled.set(true) }
                            }
                        >
                            "Sign in"
                        </button>
                    }
                    .into_any();
                }
                view! {
                    <span class="signed-in" data-testid="signed-in">
                        "Signed in"
                    </span>
                    <button
                        type="button"
                        class="link"
                        data-testid="sign-out"
                        on:click=move |_| session.sign_out()
                    >
                        "Sign out"
                    </button>
                }
                .into_any()
            }}
            {move || {
                open.get()
                    .then(|| {
                        view! {
                            <form
                                id="sign-in-form"
                                class="sign-in-form"
                                data-testid="sign-in-form"
                                on:submit=submit
                                on:keydown=move |ev: ev::KeyboardEvent| {
                                    if ev.key() == "Escape" {
                                        close();
                                    }
                                }
                            >
                                {move || {
                                    session
                                        .prompt
                                        .get()
                                        .map(|reason| {
                                            view! {
                                                <p class="sign-in-reason" role="alert" data-testid="sign-in-reason">
                                                    {reason}
                                                </p>
                                            }
                                        })
                                }}
                                <label for="sign-in-token">"Write token"</label>
                                <input
                                    id="sign-in-token"
                                    type="password"
                                    autocomplete="off"
                                    spellcheck="false"
                                    aria-describedby="sign-in-hint"
                                    data-testid="sign-in-token"
                                    node_ref=input
                                    prop:value=draft
                                    on:input=move |ev| draft.set(event_target_value(&ev))
                                />
                                <p id="sign-in-hint" class="hint">
                                    "The token article-server printed when it started. It stays in this browser."
                                </p>
                                <div class="button-row">
                                    <button type="submit" data-testid="sign-in-submit">
                                        "Sign in"
                                    </button>
                                    <button type="button" class="secondary" on:click=move |_| close()>
                                        "Cancel"
                                    </button>
                                </div>
                            </form>
                        }
                    })
            }}
        </div>
    }
}
