//! The crate's quick start as a program: a unary call with a deadline and
//! a followed change feed, against an `article-server` that serves the
//! page (see `app.rs`; the crate docs show that file). Build it with
//! `cargo build -p grpc-browser --example quick_start --target
//! wasm32-unknown-unknown`.

#[cfg(target_arch = "wasm32")]
mod app;

fn main() {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(app::run());
}
