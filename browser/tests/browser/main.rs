//! `grpc-browser` in real browsers, against real `article-server`s (the
//! article API is only the test subject; the crate knows nothing of it).
//!
//! A browser test cannot start a server, so `cargo xtask test` starts them
//! and hands their URLs in at compile time:
//!
//! * `ARTICLE_TEST_URL` — the server most tests use (in-memory database,
//!   `--watch-heartbeat-secs 1`), with write token `ARTICLE_TEST_TOKEN`;
//! * `ARTICLE_TEST_DRAIN_URL` — a second server used by one test only
//!   (`resume::a_server_shutdown_...`): the xtask stops it (SIGTERM) once
//!   that test has made a `GetArticle` call on it.
//!
//! By hand: start `article-server --listen 127.0.0.1:0 --database
//! sqlite::memory: --token test=<32 hex> --watch-heartbeat-secs 1
//! --drain-secs 2` twice, then `ARTICLE_TEST_URL=… ARTICLE_TEST_DRAIN_URL=…
//! ARTICLE_TEST_TOKEN=… CHROMEDRIVER=/usr/bin/chromedriver cargo test -p
//! grpc-browser --target wasm32-unknown-unknown`.
//!
//! Each test makes its own articles with a unique tag, so tests do not see
//! each other's data. wasm-bindgen-test runs the tests one after another.
#![cfg(target_arch = "wasm32")]

mod calls;
mod errors;
mod resume;

use std::time::Duration;

use futures::future::{Either, select};
use grpc_browser::{Client, sleep};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Request, metadata::MetadataValue};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

/// How long any single call or wait in these tests may take.
const TIMEOUT: Duration = Duration::from_secs(10);

type Articles = ArticleServiceClient<Client>;

fn server_url() -> &'static str {
    option_env!("ARTICLE_TEST_URL")
        .filter(|u| !u.is_empty())
        .expect("ARTICLE_TEST_URL was not set when the tests were compiled; run them with `cargo xtask test`, which starts a server")
}

fn token() -> &'static str {
    option_env!("ARTICLE_TEST_TOKEN")
        .filter(|t| !t.is_empty())
        .expect("ARTICLE_TEST_TOKEN was not set when the tests were compiled; run them with `cargo xtask test`")
}

fn drain_url() -> &'static str {
    option_env!("ARTICLE_TEST_DRAIN_URL")
        .filter(|u| !u.is_empty())
        .expect("ARTICLE_TEST_DRAIN_URL was not set when the tests were compiled; run them with `cargo xtask test`, which starts a second server for the drain test")
}

/// The generated client over the crate's transport, for the main server.
fn articles() -> Articles {
    Articles::new(Client::new(server_url()))
}

fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {}", token()).parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A tag (and title stem) no other test uses.
fn unique(prefix: &str) -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{prefix}-{n:08x}")
}

/// Creates an article tagged `tag` on the server at `url`.
async fn create_at(url: &str, tag: &str) -> pb::Article {
    let title = format!("Article {}", unique(tag));
    within(
        "CreateArticle",
        Articles::new(Client::new(url)).create_article(authorized(pb::CreateArticleRequest {
            title: title.clone(),
            content: format!("Content of {title}."),
            tags: vec![tag.to_owned()],
        })),
    )
    .await
    .expect("CreateArticle")
    .into_inner()
    .article
    .expect("CreateArticle returned no article")
}

async fn create(tag: &str) -> pb::Article {
    create_at(server_url(), tag).await
}

/// `future`, or a panic naming `what` once [`TIMEOUT`] has passed.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let future = std::pin::pin!(future);
    match select(future, sleep(TIMEOUT)).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("{what}: no answer within {TIMEOUT:?}"),
    }
}

/// Milliseconds on the JavaScript clock.
fn now() -> f64 {
    js_sys::Date::now()
}

/// `fetch(request)` with the browser's own API.
async fn fetch(request: &web_sys::Request) -> web_sys::Response {
    let window = web_sys::window().expect("window");
    within("fetch", JsFuture::from(window.fetch_with_request(request)))
        .await
        .expect("fetch failed")
        .dyn_into()
        .expect("fetch did not return a Response")
}

/// The main server's `article_watchers` gauge (0 when never set).
async fn watcher_count() -> f64 {
    let request = web_sys::Request::new_with_str(&format!("{}/metrics", server_url()))
        .expect("metrics request");
    let response = fetch(&request).await;
    assert_eq!(response.status(), 200, "GET /metrics");
    let text = JsFuture::from(response.text().expect("text"))
        .await
        .expect("reading /metrics")
        .as_string()
        .expect("/metrics is text");
    text.lines()
        .find_map(|line| line.strip_prefix("article_watchers "))
        .map(|v| v.trim().parse().expect("article_watchers value"))
        .unwrap_or(0.0)
}

/// Polls `/metrics` until `article_watchers` is `want`; panics after [`TIMEOUT`].
async fn wait_for_watchers(want: f64, why: &str) {
    let started = now();
    loop {
        let last = watcher_count().await;
        if last == want {
            return;
        }
        if now() - started > TIMEOUT.as_millis() as f64 {
            panic!("{why}: article_watchers stayed {last}, expected {want} within {TIMEOUT:?}");
        }
        sleep(Duration::from_millis(50)).await;
    }
}
