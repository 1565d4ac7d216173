//! Entry point: mounts [`article_web::App`] on the page Trunk builds
//! from `web/index.html`.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(article_web::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "article-web is a browser app: build it with `trunk build --release` \
         (or `cargo xtask run`) and open it through article-server."
    );
}
