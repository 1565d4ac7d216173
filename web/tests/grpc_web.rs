//! gRPC-web in real browsers: the app's client path (the generated
//! `ArticleServiceClient` over `tonic_web_wasm_client::Client`, i.e. `fetch`)
//! against a real `article-server`.
//!
//! A browser test cannot start a server, so `cargo xtask test` starts them
//! and hands their URLs in at compile time:
//!
//! * `ARTICLE_TEST_URL` — the server most tests use (in-memory database,
//!   `--watch-heartbeat-secs 1`), with write token `ARTICLE_TEST_TOKEN`;
//! * `ARTICLE_TEST_DRAIN_URL` — a second server used by one test only: the
//!   xtask stops it (SIGTERM) once that test has made a `GetArticle` call
//!   on it, so the test sees a server stream that the server ends.
//!
//! Without them every test fails with a message saying so. Each test makes
//! its own articles with a unique tag, so tests do not see each other's
//! data. wasm-bindgen-test runs the tests of this page one after another.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures::future::{Either, select};
use prost::Message as _;
use proto::v1::{self as pb, article_event::Event, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, Status, metadata::MetadataValue};
use tonic_types::StatusExt as _;
use tonic_web_wasm_client::{Client, options::FetchOptions};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// How long any single call or wait in these tests may take.
const TIMEOUT: Duration = Duration::from_secs(10);

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

/// A client like the app's, for `url`; every `fetch` is aborted after
/// [`TIMEOUT`] so a hung call fails the test instead of the whole run.
fn client_for(url: &str) -> ArticleServiceClient<Client> {
    let options = FetchOptions::new().timeout(TIMEOUT);
    ArticleServiceClient::new(Client::new_with_options(
        url.trim_end_matches('/').to_owned(),
        options,
    ))
}

fn client() -> ArticleServiceClient<Client> {
    client_for(server_url())
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A tag (and title stem) no other test uses.
fn unique(prefix: &str) -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{prefix}-{n:08x}")
}

async fn create(tag: &str, title: &str) -> pb::Article {
    client()
        .create_article(authorized(
            pb::CreateArticleRequest {
                title: title.to_owned(),
                content: format!("Content of {title}."),
                tags: vec![tag.to_owned()],
            },
            token(),
        ))
        .await
        .expect("CreateArticle")
        .into_inner()
        .article
        .expect("CreateArticle returned no article")
}

async fn sleep(duration: Duration) {
    let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        web_sys::window()
            .expect("window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), ms)
            .expect("setTimeout");
    });
    JsFuture::from(promise).await.expect("timer");
}

/// `future`, or a panic naming `what` once [`TIMEOUT`] has passed.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(TIMEOUT));
    match select(future, timer).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("{what}: no answer within {TIMEOUT:?}"),
    }
}

/// The next change event of `stream`, skipping heartbeats.
async fn next_change(stream: &mut tonic::Streaming<pb::ArticleEvent>) -> Event {
    loop {
        let event = within("WatchArticles event", stream.message())
            .await
            .expect("watch stream failed")
            .expect("watch stream ended");
        match event.event {
            Some(Event::Heartbeat(_)) | None => continue,
            Some(change) => return change,
        }
    }
}

/// `fetch(url)` with the browser's own API; returns the response.
async fn fetch(request: &web_sys::Request) -> web_sys::Response {
    let window = web_sys::window().expect("window");
    within("fetch", JsFuture::from(window.fetch_with_request(request)))
        .await
        .expect("fetch failed")
        .dyn_into()
        .expect("fetch did not return a Response")
}

async fn response_bytes(response: &web_sys::Response) -> Vec<u8> {
    let buffer = JsFuture::from(response.array_buffer().expect("arrayBuffer"))
        .await
        .expect("reading the body");
    js_sys::Uint8Array::new(&buffer).to_vec()
}

/// The server's `article_watchers` gauge (0 when never set).
async fn watcher_count() -> f64 {
    let request =
        web_sys::Request::new_with_str(&format!("{}/metrics", server_url().trim_end_matches('/')))
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
    let started = js_sys::Date::now();
    let mut last;
    loop {
        last = watcher_count().await;
        if last == want {
            return;
        }
        if js_sys::Date::now() - started > TIMEOUT.as_millis() as f64 {
            panic!("{why}: article_watchers stayed {last}, expected {want} within {TIMEOUT:?}");
        }
        sleep(Duration::from_millis(50)).await;
    }
}

fn violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT without google.rpc.BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

#[wasm_bindgen_test]
async fn unary_create_get_and_list() {
    let tag = unique("unary");
    let title = format!("Unary {tag}");
    let created = create(&tag, &title).await;
    assert!(created.id > 0);
    assert_eq!(created.title, title);
    assert_eq!(created.tags, vec![tag.clone()]);
    assert_eq!(created.author, "test");

    let got = client()
        .get_article(pb::GetArticleRequest { id: created.id })
        .await
        .expect("GetArticle")
        .into_inner()
        .article
        .expect("GetArticle returned no article");
    assert_eq!(got, created);

    let listed = client()
        .list_articles(pb::ListArticlesRequest {
            page: 1,
            page_size: 10,
            query: String::new(),
            tag: tag.clone(),
        })
        .await
        .expect("ListArticles")
        .into_inner();
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.articles, vec![created]);
}

#[wasm_bindgen_test]
async fn missing_article_is_a_trailers_only_not_found() {
    let id = i64::MAX - 7;
    // The raw exchange first, to show it is trailers-only: the status is in
    // the HTTP headers and the body holds no frame at all.
    let mut frame = vec![0u8];
    let message = pb::GetArticleRequest { id }.encode_to_vec();
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let headers = web_sys::Headers::new().unwrap();
    headers
        .set("content-type", "application/grpc-web+proto")
        .unwrap();
    headers.set("x-grpc-web", "1").unwrap();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&js_sys::Uint8Array::from(frame.as_slice()));
    let url = format!(
        "{}/article.v1.ArticleService/GetArticle",
        server_url().trim_end_matches('/')
    );
    let request = web_sys::Request::new_with_str_and_init(&url, &init).unwrap();
    let response = fetch(&request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("grpc-status").unwrap().as_deref(),
        Some("5"),
        "grpc-status must be in the headers of a trailers-only response"
    );
    assert!(
        response_bytes(&response).await.is_empty(),
        "a trailers-only response has an empty body"
    );

    // The same call through the app's client.
    let status = client()
        .get_article(pb::GetArticleRequest { id })
        .await
        .expect_err("GetArticle of a missing id must fail");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), format!("article {id} does not exist"));
}

#[wasm_bindgen_test]
async fn invalid_article_carries_bad_request_details() {
    let status = client()
        .create_article(authorized(
            pb::CreateArticleRequest {
                title: "   ".into(),
                content: String::new(),
                tags: vec!["Not Valid".into()],
            },
            token(),
        ))
        .await
        .expect_err("an empty title must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = violations(&status);
    let fields: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["title", "tags"], "{violations:?}");
    assert_eq!(violations[0].1, "title must not be empty");
    assert!(violations[1].1.contains("lowercase"), "{:?}", violations[1]);
}

#[wasm_bindgen_test]
async fn writes_without_a_valid_token_are_unauthenticated() {
    let draft = || pb::CreateArticleRequest {
        title: unique("unauthenticated"),
        content: String::new(),
        tags: Vec::new(),
    };
    let status = client()
        .create_article(draft())
        .await
        .expect_err("a write without a token must fail");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let status = client()
        .create_article(authorized(draft(), "not-the-token"))
        .await
        .expect_err("a write with a wrong token must fail");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[wasm_bindgen_test]
async fn responses_carry_x_request_id() {
    // One the server makes up…
    let response = client()
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles");
    let made = response
        .metadata()
        .get("x-request-id")
        .expect("no x-request-id in the response (is it exposed by CORS?)")
        .to_str()
        .unwrap();
    assert!(!made.is_empty());

    // …and the caller's own, echoed, also on an error.
    let ours = unique("request");
    let mut request = Request::new(pb::GetArticleRequest { id: i64::MAX - 3 });
    request
        .metadata_mut()
        .insert("x-request-id", ours.parse().unwrap());
    let status = client()
        .get_article(request)
        .await
        .expect_err("missing article");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(ours.as_str())
    );
}

#[wasm_bindgen_test]
async fn watch_receives_changes_made_by_another_client() {
    let tag = unique("watch");
    let mut watch = within(
        "opening WatchArticles",
        client().watch_articles(pb::WatchArticlesRequest {
            tag: tag.clone(),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();

    // The writes go through other client instances (`create` makes its
    // own): separate `fetch` requests, unrelated to the watch — another
    // client at the protocol level.
    let created = create(&tag, &format!("Watched {tag}")).await;
    match next_change(&mut watch).await {
        Event::Created(article) => assert_eq!(article, created),
        other => panic!("expected Created, got {other:?}"),
    }

    client()
        .delete_article(authorized(
            pb::DeleteArticleRequest { id: created.id },
            token(),
        ))
        .await
        .expect("DeleteArticle");
    match next_change(&mut watch).await {
        Event::DeletedId(id) => assert_eq!(id, created.id),
        other => panic!("expected DeletedId, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn dropping_a_watch_ends_it_on_the_server() {
    // Streams of earlier tests may still be closing: start from zero (the
    // tests of this page are the only clients of this server that watch).
    wait_for_watchers(0.0, "before opening").await;
    let watch = within(
        "opening WatchArticles",
        client().watch_articles(pb::WatchArticlesRequest {
            tag: unique("drop"),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();
    wait_for_watchers(1.0, "while the watch is open").await;

    // Dropping the stream aborts its `fetch`; the server must notice.
    drop(watch);
    wait_for_watchers(0.0, "after dropping the watch").await;
}

#[wasm_bindgen_test]
async fn a_deadline_ends_a_quiet_watch() {
    // A watch on a tag nobody writes sends nothing before the first
    // heartbeat (1 s), so a 300 ms deadline must end it. The deadline goes
    // to the server as `grpc-timeout` and is enforced by the client, which
    // aborts the `fetch` and reports DEADLINE_EXCEEDED.
    let deadline = Duration::from_millis(300);
    let mut client = ArticleServiceClient::new(Client::new_with_options(
        server_url().trim_end_matches('/').to_owned(),
        FetchOptions::new().timeout(deadline),
    ));
    let mut request = Request::new(pb::WatchArticlesRequest {
        tag: unique("deadline"),
        after_sequence: 0,
    });
    request.set_timeout(deadline);
    let started = js_sys::Date::now();
    let status = within("a call past its deadline", async move {
        let mut stream = match client.watch_articles(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return status,
        };
        match stream.message().await {
            Ok(Some(event)) => panic!("the watch outlived its deadline: {event:?}"),
            Ok(None) => panic!("the watch ended without a status"),
            Err(status) => status,
        }
    })
    .await;
    let elapsed = js_sys::Date::now() - started;
    // tonic-web-wasm-client reports its own timeout as DEADLINE_EXCEEDED
    // when the abort reason reaches it; Chromium rejects a body
    // read aborted mid-stream with a plain "AbortError: BodyStreamBuffer was
    // aborted" instead, which the client passes on as UNKNOWN. (The app's
    // `api` module runs its own timer for this reason.) Either way the
    // stream must have ended at the deadline, before the first heartbeat.
    let timed_out = status.code() == Code::DeadlineExceeded
        || (status.code() == Code::Unknown && status.message().contains("AbortError"));
    assert!(timed_out, "not a deadline: {status:?}");
    assert!(
        (250.0..1000.0).contains(&elapsed),
        "ended after {elapsed} ms; the deadline was {deadline:?}"
    );
}

#[wasm_bindgen_test]
async fn a_trailer_after_the_data_ends_a_server_stream() {
    // The drain server's change feed ends every stream with UNAVAILABLE
    // when the server shuts down. The xtask sends it SIGTERM only after it
    // has seen our GetArticle call below, which we make only after a data
    // frame (the first heartbeat) has reached us. So the trailer cannot be
    // in the chunk that carried data: it was not written until later.
    let mut client = client_for(drain_url());
    let mut watch = within(
        "opening WatchArticles on the drain server",
        client.watch_articles(pb::WatchArticlesRequest {
            tag: unique("drain"),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();
    let first = within("the first heartbeat", watch.message())
        .await
        .expect("watch stream failed")
        .expect("watch stream ended before any data");
    assert!(
        matches!(first.event, Some(Event::Heartbeat(_))),
        "{first:?}"
    );

    // The signal for the xtask to stop this server.
    let status = client_for(drain_url())
        .get_article(pb::GetArticleRequest { id: i64::MAX })
        .await
        .expect_err("the drain server has no articles");
    assert_eq!(status.code(), Code::NotFound);

    let status = within("the end of the stream", async {
        loop {
            match watch.message().await {
                Ok(Some(_heartbeat)) => continue,
                Ok(None) => panic!("the stream ended without an error status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("shutting down"),
        "{:?}",
        status.message()
    );
}

/// The next change from the app's own watch, skipping heartbeats.
async fn next_app_change(watch: &mut article_web::api::Watch) -> article_web::api::Change {
    use article_web::api::Change;
    loop {
        match within("app watch event", watch.next()).await {
            Some(Ok((_, Change::Heartbeat))) => continue,
            Some(Ok((_, change))) => return change,
            Some(Err(err)) => panic!("app watch failed: {err:?}"),
            None => panic!("app watch ended"),
        }
    }
}

/// The app's own calls (`article_web::api`, which spells out the method
/// paths and encodes and decodes around one bytes-in, bytes-out call)
/// reach every method and decode every answer. `cargo xtask test` points
/// the app's `ARTICLE_API_URL` at the test server.
#[wasm_bindgen_test]
async fn the_app_api_calls_every_method() {
    use article_web::api::{self, Change, Draft, ErrorKind, ListQuery};

    let tag = unique("app-api");
    let mut watch = within("app WatchArticles", api::watch_articles(tag.clone(), 0))
        .await
        .expect("app WatchArticles");

    let draft = Draft {
        title: format!("App {tag}"),
        content: "Written through the app's API module.".to_owned(),
        tags: vec![tag.clone()],
    };
    let created = within(
        "app CreateArticle",
        api::create_article(token(), draft.clone()),
    )
    .await
    .expect("app CreateArticle");
    assert_eq!(created.title, draft.title);
    assert_eq!(created.tags, draft.tags);

    let got = within("app GetArticle", api::get_article(created.id))
        .await
        .expect("app GetArticle");
    assert_eq!(got, created);

    let query = ListQuery {
        page: 1,
        page_size: 10,
        query: String::new(),
        tag: tag.clone(),
    };
    let listed = within("app ListArticles", api::list_articles(query))
        .await
        .expect("app ListArticles");
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.articles, vec![created.clone()]);

    let edited = Draft {
        title: format!("App {tag} edited"),
        ..draft
    };
    let updated = within(
        "app UpdateArticle",
        api::update_article(token(), created.id, edited.clone(), created.version),
    )
    .await
    .expect("app UpdateArticle");
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.title, edited.title);
    assert!(updated.version > created.version);

    within(
        "app DeleteArticle",
        api::delete_article(token(), created.id),
    )
    .await
    .expect("app DeleteArticle");
    let gone = within("app GetArticle after delete", api::get_article(created.id))
        .await
        .expect_err("the article was deleted");
    assert_eq!(gone.kind, ErrorKind::NotFound);
    assert_eq!(gone.code, "NOT_FOUND");

    assert_eq!(
        next_app_change(&mut watch).await,
        Change::Created(created.clone())
    );
    assert_eq!(next_app_change(&mut watch).await, Change::Updated(updated));
    assert_eq!(
        next_app_change(&mut watch).await,
        Change::Deleted(created.id)
    );
}
