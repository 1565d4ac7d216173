//! Entry point: mounts [`article_web::App`] on the page Trunk builds
//! from `web/index.html`.
//!
//! No panic hook: the release build (`cargo xtask run`, see
//! `xtask/src/web.rs`) compiles with `-Cpanic=immediate-abort`, so a panic
//! is a bare WebAssembly trap. The console shows `RuntimeError:
//! unreachable` (Chromium: `unreachable executed`) with a stack of wasm
//! function indices, no message and no source location, and the app stops
//! (its event handlers throw the same error from then on). To read a
//! panic's message, run a debug build (`trunk serve`), which keeps Rust's
//! normal panics and prints them through the browser's console.

/// How long the mount waits for the first list's answer that `index.html`
/// asked for; after that the list page shows its loading state until the
/// answer comes (and calls again only if it fails).
#[cfg(target_arch = "wasm32")]
const FIRST_LIST_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(target_arch = "wasm32")]
fn main() {
    use wasm_bindgen::{JsValue, closure::Closure};

    // The answer is often on the wire while the wasm starts; its promise
    // settles a task later. Mounting after it lets the list page render
    // the rows in its first mount instead of a loading state, a second call
    // and a second layout.
    match article_web::api::first_list_in_flight() {
        Some(answer) => {
            let on_answer = Closure::once(|_: JsValue| mount());
            let _ = answer.then(&on_answer);
            on_answer.forget();
            leptos::prelude::set_timeout(mount, FIRST_LIST_WAIT);
        }
        None => mount(),
    }
}

/// Mounts the app, once.
#[cfg(target_arch = "wasm32")]
fn mount() {
    static MOUNT: std::sync::Once = std::sync::Once::new();
    MOUNT.call_once(|| leptos::mount::mount_to_body(article_web::App));
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "article-web is a browser app: build it with `trunk build --release` \
         (or `cargo xtask run`) and open it through article-server."
    );
}
