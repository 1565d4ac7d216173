//! End-to-end UI tests: the real web app (built by Trunk, served by an
//! in-process article-server) driven in headless Chromium over WebDriver.
//!
//! Every test starts its own server (own SQLite file, demo data, known
//! tokens) and its own chromedriver; elements are found by `data-testid`.
//! Needs `--features e2e`, `ARTICLE_WEB_DIST` (the built `web/dist`) and
//! chromium + chromedriver; `cargo xtask e2e` provides all three.
//! Screenshots land in `target/test-artifacts/`. `replicas` also needs
//! PostgreSQL and HAProxy (installed by `cargo xtask test`).

mod harness;

mod browse;
mod caching;
mod replicas;
mod write;
