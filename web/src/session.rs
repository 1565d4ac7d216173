//! The write token: entered once in the sign-in box, kept in
//! `localStorage`, sent by the API calls that change articles. When the
//! server answers UNAUTHENTICATED the token is forgotten and the sign-in
//! box asks again, saying why.

use leptos::prelude::*;

const STORAGE_KEY: &str = "article.write-token";

/// Shared through context; cheap to copy.
#[derive(Clone, Copy)]
pub struct Session {
    token: RwSignal<Option<String>>,
    /// When set, the sign-in box is open and shows this reason.
    pub prompt: RwSignal<Option<String>>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

impl Session {
    /// Reads the token saved by an earlier visit.
    pub fn restore() -> Self {
        let saved = storage()
            .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
            .filter(|t| !t.trim().is_empty());
        Self {
            token: RwSignal::new(saved),
            prompt: RwSignal::new(None),
        }
    }

    pub fn token(&self) -> Option<String> {
        self.token.get()
    }

    pub fn token_untracked(&self) -> Option<String> {
        self.token.get_untracked()
    }

    pub fn signed_in(&self) -> bool {
        self.token.with(Option::is_some)
    }

    pub fn sign_in(&self, token: String) {
        let token = token.trim().to_owned();
        if token.is_empty() {
            return;
        }
        if let Some(s) = storage() {
            let _ = s.set_item(STORAGE_KEY, &token);
        }
        self.token.set(Some(token));
        self.prompt.set(None);
    }

    pub fn sign_out(&self) {
        if let Some(s) = storage() {
            let _ = s.remove_item(STORAGE_KEY);
        }
        self.token.set(None);
    }

    /// Opens the sign-in box with `reason`.
    pub fn ask(&self, reason: &str) {
        self.prompt.set(Some(reason.to_owned()));
    }

    /// The server rejected the token: forget it and ask for another.
    pub fn rejected(&self) {
        self.sign_out();
        self.ask("The server did not accept that token. Please enter it again.");
    }
}

/// The session provided by [`crate::App`].
pub fn use_session() -> Session {
    expect_context::<Session>()
}
