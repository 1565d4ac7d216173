//! `sqlx::migrate!` reads `migrations/` at compile time, but on a stable
//! compiler it cannot tell cargo so: without this, a new or edited migration
//! is not embedded until some source file of the crate changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
