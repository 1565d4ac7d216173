//! Entry point: mounts [`article_web::App`] on the page Trunk builds
//! from `web/index.html`.

/// How long the mount waits for the first list's answer that `index.html`
/// asked for; after that the list page shows its loading state until the
/// answer comes (and calls again only if it fails).
#[cfg(target_arch = "wasm32")]
const FIRST_LIST_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(target_arch = "wasm32")]
fn main() {
    use wasm_bindgen::{JsValue, closure::Closure};

    console_error_panic_hook::set_once();
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
