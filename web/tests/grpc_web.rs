//! The app's glue in a real browser: `article_web::api` (the generated
//! client over `grpc_browser`, errors as `ApiError`, the change feed as
//! `Change`s) against a real `article-server`. What the `grpc-browser`
//! crate does on its own (deadlines, cancellation, errors, resumable
//! streams) is tested in `browser/tests/`.
//!
//! A browser test cannot start a server, so `cargo xtask test` starts one
//! and hands its URL in at compile time: `ARTICLE_TEST_URL` (also the app's
//! `ARTICLE_API_URL`) with write token `ARTICLE_TEST_TOKEN`. Without them
//! the test fails with a message saying so.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use std::{cell::RefCell, rc::Rc};

use article_web::{
    api::{self, Change, Draft, ErrorKind, ListQuery},
    routes::ListParams,
};
use futures::{
    StreamExt as _,
    future::{Either, Ready, ready, select},
    stream::LocalBoxStream,
};
use grpc_browser::{Event, sleep};
use proto::v1::{ListArticlesRequest, article_service_client::ArticleServiceClient};
use tonic::{
    Status,
    codegen::{Body as _, Context, Pin, Poll, Service, http},
};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// How long any single call or wait in these tests may take.
const TIMEOUT: Duration = Duration::from_secs(10);

fn token() -> &'static str {
    option_env!("ARTICLE_TEST_TOKEN")
        .filter(|t| !t.is_empty())
        .expect("ARTICLE_TEST_TOKEN was not set when the tests were compiled; run them with `cargo xtask test`")
}

/// A tag no other test uses.
fn unique(prefix: &str) -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{prefix}-{n:08x}")
}

/// `future`, or a panic naming `what` once [`TIMEOUT`] has passed.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let future = std::pin::pin!(future);
    match select(future, sleep(TIMEOUT)).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("{what}: no answer within {TIMEOUT:?}"),
    }
}

/// The next change from the app's feed, skipping states and resyncs.
async fn next_change(feed: &mut LocalBoxStream<'static, Event<Change>>) -> Change {
    loop {
        match within("app watch event", feed.next()).await {
            Some(Event::Item(change)) => return change,
            Some(_) => continue,
            None => panic!("the app's feed ended"),
        }
    }
}

/// The app's own calls reach every method and decode every answer, and
/// its feed turns events into `Change`s. `cargo xtask test` points the
/// app's `ARTICLE_API_URL` at the test server.
#[wasm_bindgen_test]
async fn the_app_api_calls_every_method() {
    let tag = unique("app-api");
    let mut feed = api::watch_articles(tag.clone());
    // Subscribed once the first resync comes.
    loop {
        match within("the app's feed opening", feed.next()).await {
            Some(Event::Resync) => break,
            Some(Event::State(_)) => continue,
            other => panic!("expected states then a resync, got {other:?}"),
        }
    }

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
    assert_eq!(gone.summary(), "That article does not exist (any more).");
    assert!(gone.request_id.is_some(), "{gone:?}");

    assert_eq!(
        next_change(&mut feed).await,
        Change::Created(created.clone())
    );
    assert_eq!(next_change(&mut feed).await, Change::Updated(updated));
    assert_eq!(next_change(&mut feed).await, Change::Deleted(created.id));
}

/// The app's error view of a refused write: kind, code name, the field
/// violations next to which the form shows its messages.
#[wasm_bindgen_test]
async fn the_app_explains_an_invalid_draft() {
    let draft = Draft {
        title: "   ".into(),
        content: String::new(),
        tags: vec!["Not Valid".into()],
    };
    let error = within("app CreateArticle", api::create_article(token(), draft))
        .await
        .expect_err("an empty title must be refused");
    assert_eq!(error.kind, ErrorKind::Invalid, "{error:?}");
    assert_eq!(error.code, "INVALID_ARGUMENT");
    let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["title", "tags"]);
    assert_eq!(error.summary(), "Some fields need attention.");

    let error = within(
        "app CreateArticle",
        api::create_article("bad\ntoken", Draft::default()),
    )
    .await
    .expect_err("a token that cannot be sent");
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    assert_eq!(error.code, "UNAUTHENTICATED");
    assert_eq!(
        error.message,
        "the token contains characters that cannot be sent"
    );
}

/// A transport that keeps the path and body of the request it is given and
/// answers UNIMPLEMENTED: what a generated call would send.
#[derive(Clone, Default)]
struct Capture(Rc<RefCell<(String, Vec<u8>)>>);

impl Service<http::Request<tonic::body::Body>> for Capture {
    type Response = http::Response<tonic::body::Body>;
    type Error = Status;
    type Future = Ready<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let mut seen = self.0.borrow_mut();
        seen.0 = request.uri().path().to_owned();
        let mut body = request.into_body();
        // A unary request's body is encoded when polled, without waiting.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            if let Ok(data) = frame.expect("request frame").into_data() {
                seen.1.extend_from_slice(&data);
            }
        }
        ready(Err(Status::unimplemented("captured")))
    }
}

/// `index.html`'s inline script asks for the first list page while the
/// wasm downloads; its hand-written path and bytes must be the generated
/// call of the list page's default parameters, or the page would show
/// another list than the one its address names.
#[wasm_bindgen_test]
async fn the_inline_first_list_request_is_the_list_pages_default_call() {
    let html = include_str!("../index.html");
    let between = |start: &str, end: &str| {
        let (_, rest) = html.split_once(start).expect(start);
        rest.split_once(end).expect(end).0
    };
    let path = between("fetch(\"", "\"");
    let bytes: Vec<u8> = between("new Uint8Array([", "])")
        .split(',')
        .map(|b| b.trim().parse().expect("a byte"))
        .collect();

    let capture = Capture::default();
    let p = ListParams::default();
    let request = ListArticlesRequest {
        page: p.page,
        page_size: p.size,
        query: p.q,
        tag: p.tag,
    };
    let answer = ArticleServiceClient::new(capture.clone())
        .list_articles(request)
        .await;
    assert_eq!(
        answer.expect_err("captured").code(),
        tonic::Code::Unimplemented
    );
    let seen = capture.0.borrow();
    assert_eq!(path, seen.0);
    assert_eq!(bytes, seen.1);
}

/// A gRPC-web body: one message frame, then the trailer frame.
fn answer_body(message: &[u8], trailers: &str) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    body.push(0x80);
    body.extend_from_slice(&(trailers.len() as u32).to_be_bytes());
    body.extend_from_slice(trailers.as_bytes());
    body
}

/// The prefetched first list is read by the generated client like an
/// answer from the network: the message on success, the trailers' status
/// as the error (then the list page calls again and shows that call's
/// outcome), a cut body as an error.
#[wasm_bindgen_test]
fn a_prefetched_list_answer_reads_like_a_call() {
    // ListArticlesResponse { total_count: 7 }: field 2, varint.
    let listed = api::list_answer(answer_body(&[0x10, 7], "grpc-status:0\r\n"))
        .expect("a successful answer");
    assert_eq!(listed.total_count, 7);
    assert!(listed.articles.is_empty());

    let error = api::list_answer(answer_body(
        &[],
        "grpc-status:14\r\ngrpc-message:shutting down\r\n",
    ))
    .expect_err("an error in the trailers");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(error.message, "shutting down");

    let mut cut = answer_body(&[0x10, 7], "grpc-status:0\r\n");
    cut.truncate(6);
    assert!(api::list_answer(cut).is_err(), "a cut body is no answer");
}

/// When the first list's answer is still on its way at the mount, the
/// list page's first load waits for it instead of sending the same request
/// again; only if it failed or is an error does it ask the server.
#[wasm_bindgen_test]
async fn a_first_list_still_on_its_way_is_awaited_and_asked_again_only_if_it_failed() {
    // A tag nothing has: the server's answer for it has no articles, so a
    // total of 7 can only come from the awaited answer.
    let q = || ListQuery {
        page: 1,
        page_size: 10,
        query: String::new(),
        tag: unique("nothing"),
    };
    let body = js_sys::Uint8Array::from(&answer_body(&[0x10, 7], "grpc-status:0\r\n")[..]);
    let on_its_way = js_sys::Promise::resolve(&wasm_bindgen::JsValue::from(body.buffer()));
    let listed = within(
        "the awaited answer",
        api::list_articles_after(on_its_way, q()),
    )
    .await
    .expect("the awaited answer");
    assert_eq!(listed.total_count, 7);

    let failed = js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL);
    let asked = within(
        "a call after a failed request",
        api::list_articles_after(failed, q()),
    )
    .await
    .expect("the server's answer");
    assert_eq!(asked.total_count, 0);

    let error = js_sys::Uint8Array::from(
        &answer_body(&[], "grpc-status:14\r\ngrpc-message:shutting down\r\n")[..],
    );
    let error = js_sys::Promise::resolve(&wasm_bindgen::JsValue::from(error.buffer()));
    let asked = within(
        "a call after an error",
        api::list_articles_after(error, q()),
    )
    .await
    .expect("the server's answer");
    assert_eq!(asked.total_count, 0);
}
