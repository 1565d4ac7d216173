//! The only module that speaks gRPC: the generated `article.v1` client over
//! [`grpc_browser::Client`] (gRPC-web over `fetch`), with the app's view of
//! errors ([`ApiError`]) and of the change feed ([`Change`]).
//!
//! * The server is the page's own origin unless `ARTICLE_API_URL` was set
//!   when the app was compiled (front-end development against another port).
//! * Every unary call carries a deadline ([`CALL_DEADLINE`]): `grpc-timeout`
//!   tells the server, and `grpc_browser` ends the call in the browser too.
//! * Dropping a returned future or the [`watch_articles`] stream aborts its
//!   `fetch`, so a page that goes away cancels its calls by dropping them.
//!
//! Limits: browsers can only make unary and server-streaming calls, so
//! `ImportArticles` is not offered here.

use std::time::Duration;

use futures::{
    FutureExt as _,
    stream::{LocalBoxStream, StreamExt as _},
};
use grpc_browser::{Client, Event, Resumable, Resume};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, Response, Status, Streaming, metadata::MetadataValue};
use wasm_bindgen::JsCast as _;

pub use grpc_browser::Violation;
pub use pb::Article;

/// How long a unary call may take, end to end.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// What went wrong, in the terms a page needs to decide what to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Invalid,
    Unauthenticated,
    /// The article changed since it was read (optimistic concurrency).
    Conflict,
    /// A watch cannot resume from the requested sequence any more.
    OutOfRange,
    Timeout,
    /// The server could not be reached or is shutting down.
    Unavailable,
    Other,
}

/// A failed call: the kind, the gRPC code for detail, the server's message,
/// field violations (for INVALID_ARGUMENT) and the request id to quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub violations: Vec<Violation>,
    pub request_id: Option<String>,
}

impl From<grpc_browser::Error> for ApiError {
    fn from(error: grpc_browser::Error) -> Self {
        let kind = match error.code {
            Code::NotFound => ErrorKind::NotFound,
            Code::InvalidArgument => ErrorKind::Invalid,
            Code::Unauthenticated | Code::PermissionDenied => ErrorKind::Unauthenticated,
            Code::Aborted | Code::FailedPrecondition => ErrorKind::Conflict,
            Code::OutOfRange => ErrorKind::OutOfRange,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        };
        Self {
            kind,
            code: proto::code_name(error.code),
            message: error.message,
            violations: error.violations,
            request_id: error.request_id,
        }
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        grpc_browser::Error::from(status).into()
    }
}

impl ApiError {
    fn local(code: Code, message: &str) -> Self {
        grpc_browser::Error::new(code, message).into()
    }

    /// One sentence for a person, without protocol words.
    pub fn summary(&self) -> &'static str {
        match self.kind {
            ErrorKind::NotFound => "That article does not exist (any more).",
            ErrorKind::Invalid => "Some fields need attention.",
            ErrorKind::Unauthenticated => "Your write token was not accepted.",
            ErrorKind::Conflict => "Someone else changed this article in the meantime.",
            ErrorKind::OutOfRange => "Missed too many changes; reloading.",
            ErrorKind::Timeout => "The server took too long to answer.",
            ErrorKind::Unavailable => "The server cannot be reached right now.",
            ErrorKind::Other => "Something went wrong on the server.",
        }
    }
}

/// Where the API lives: `ARTICLE_API_URL` at build time, else this page's origin.
fn transport() -> Client {
    match option_env!("ARTICLE_API_URL") {
        Some(url) if !url.is_empty() => Client::new(url),
        _ => Client::same_origin(),
    }
}

fn client() -> ArticleServiceClient<Client> {
    ArticleServiceClient::new(transport())
}

/// A unary request with [`CALL_DEADLINE`] and, for writes, the token.
fn request<T>(message: T, token: Option<&str>) -> Result<Request<T>, ApiError> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_DEADLINE);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {}", token.trim()).parse().map_err(|_| {
            ApiError::local(
                Code::Unauthenticated,
                "the token contains characters that cannot be sent",
            )
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// What the list page asks for; empty strings mean "no filter".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub page: i32,
    pub page_size: i32,
    pub query: String,
    pub tag: String,
}

/// One page of articles, newest first, and the number of all matches.
pub async fn list_articles(q: ListQuery) -> Result<pb::ListArticlesResponse, ApiError> {
    let req = request(
        pb::ListArticlesRequest {
            page: q.page,
            page_size: q.page_size,
            query: q.query,
            tag: q.tag,
        },
        None,
    )?;
    Ok(grpc_browser::unary(Box::pin(client().list_articles(req))).await?)
}

/// What the list page finds of the request `index.html`'s inline script
/// made for the first list (for `/` without a query: the list page's
/// default parameters) while the wasm downloaded.
pub enum FirstList {
    /// The answer has come and is a success: the rows are part of the
    /// first mount.
    Answered(pb::ListArticlesResponse),
    /// The answer is still on its way (the mount waited for it, but not
    /// longer than `main` allows): [`list_articles_after`] awaits it
    /// instead of sending the same request again.
    OnItsWay(js_sys::Promise),
}

/// The first list's request of `index.html`, the first time it is asked
/// for; `None` if it failed or gave an error, and on every call after the
/// first, so a later list never shows this old page: the list page then
/// calls [`list_articles`] as usual (loading state, errors).
///
/// Not with `ARTICLE_API_URL`: the script asks the page's origin.
pub fn first_list() -> Option<FirstList> {
    thread_local! {
        static TAKEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if TAKEN.replace(true) {
        return None;
    }
    let answer = first_list_request()?;
    match answer.dyn_into::<js_sys::Promise>() {
        Ok(on_its_way) => Some(FirstList::OnItsWay(on_its_way)),
        Err(answer) => {
            let answer = answer.dyn_into::<js_sys::ArrayBuffer>().ok()?;
            let body = js_sys::Uint8Array::new(&answer).to_vec();
            list_answer(body).ok().map(FirstList::Answered)
        }
    }
}

/// The answer to the first list's request once it has come, or, if it
/// fails or is an error, `q` asked for as usual.
pub async fn list_articles_after(
    on_its_way: js_sys::Promise,
    q: ListQuery,
) -> Result<pb::ListArticlesResponse, ApiError> {
    let answer = wasm_bindgen_futures::JsFuture::from(on_its_way).await;
    if let Ok(answer) = answer.and_then(|a| a.dyn_into::<js_sys::ArrayBuffer>())
        && let Ok(response) = list_answer(js_sys::Uint8Array::new(&answer).to_vec())
    {
        return Ok(response);
    }
    list_articles(q).await
}

/// While the answer to `index.html`'s first-list request is on its way:
/// the `Promise` that settles when it has come (or failed).
pub fn first_list_in_flight() -> Option<js_sys::Promise> {
    first_list_request()?.dyn_into().ok()
}

/// What `index.html`'s script left in `window.articleFirstList`: the
/// answer's `ArrayBuffer`, a `Promise` while it is on its way, `null` if
/// it failed; `undefined` on other addresses. `None` with
/// `ARTICLE_API_URL`: the script asks the page's origin, not that server.
fn first_list_request() -> Option<wasm_bindgen::JsValue> {
    if option_env!("ARTICLE_API_URL").is_some_and(|u| !u.is_empty()) {
        return None;
    }
    js_sys::Reflect::get(&web_sys::window()?.into(), &"articleFirstList".into()).ok()
}

/// A `ListArticles` answer fetched before (`body`, a whole binary gRPC-web
/// response body), read by the generated client as if the server had just
/// sent it: its message, or the status in its trailers as the error.
pub fn list_answer(body: Vec<u8>) -> Result<pb::ListArticlesResponse, ApiError> {
    let mut client = ArticleServiceClient::new(Client::answered(body));
    // The request is not sent. A `Request`, as in `list_articles`, so both
    // share one compiled call; an answer in hand needs no event, so the
    // call is ready when first polled.
    let call = client.list_articles(Request::new(pb::ListArticlesRequest::default()));
    grpc_browser::unary(Box::pin(call))
        .now_or_never()
        .unwrap_or_else(|| Err(grpc_browser::Error::new(Code::Internal, "not answered")))
        .map_err(ApiError::from)
}

pub async fn get_article(id: i64) -> Result<Article, ApiError> {
    let req = request(pb::GetArticleRequest { id }, None)?;
    article(
        grpc_browser::unary(Box::pin(client().get_article(req)))
            .await?
            .article,
    )
}

/// Title, content and tags as typed; the server validates and normalises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
}

pub async fn create_article(token: &str, draft: Draft) -> Result<Article, ApiError> {
    let req = request(
        pb::CreateArticleRequest {
            title: draft.title,
            content: draft.content,
            tags: draft.tags,
        },
        Some(token),
    )?;
    article(
        grpc_browser::unary(Box::pin(client().create_article(req)))
            .await?
            .article,
    )
}

/// Replaces the article unless its version is no longer `expected_version`
/// (then [`ErrorKind::Conflict`]).
pub async fn update_article(
    token: &str,
    id: i64,
    draft: Draft,
    expected_version: i64,
) -> Result<Article, ApiError> {
    let req = request(
        pb::UpdateArticleRequest {
            id,
            title: draft.title,
            content: draft.content,
            tags: draft.tags,
            expected_version,
        },
        Some(token),
    )?;
    article(
        grpc_browser::unary(Box::pin(client().update_article(req)))
            .await?
            .article,
    )
}

pub async fn delete_article(token: &str, id: i64) -> Result<(), ApiError> {
    let req = request(pb::DeleteArticleRequest { id }, Some(token))?;
    grpc_browser::unary(Box::pin(client().delete_article(req))).await?;
    Ok(())
}

fn article(article: Option<Article>) -> Result<Article, ApiError> {
    article.ok_or_else(|| ApiError::local(Code::Internal, "the response carried no article"))
}

/// One change of the feed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Created(Article),
    Updated(Article),
    Deleted(i64),
}

/// The change feed, optionally filtered by `tag`, as `grpc_browser`
/// follows it: connection states, resyncs and changes. It reconnects
/// (with backoff, resuming after the last change) until dropped; the
/// crate's defaults are the app's (0.5 s doubling to 15 s, a stream silent
/// for 45 s is lost, three heartbeat intervals once heartbeats come).
pub fn watch_articles(tag: String) -> LocalBoxStream<'static, Event<Change>> {
    use pb::article_event::Event as Kind;
    let feed = Feed {
        client: client(),
        tag,
    };
    Resumable::new(feed)
        .stream()
        .filter_map(|event| {
            let event = match event {
                Event::Item(pb::ArticleEvent { event, .. }) => match event {
                    Some(Kind::Created(a)) => Some(Event::Item(Change::Created(a))),
                    Some(Kind::Updated(a)) => Some(Event::Item(Change::Updated(a))),
                    Some(Kind::DeletedId(id)) => Some(Event::Item(Change::Deleted(id))),
                    // A kind newer than this app (heartbeats never come here).
                    Some(Kind::Heartbeat(_)) | None => None,
                },
                Event::State(state) => Some(Event::State(state)),
                Event::Resync => Some(Event::Resync),
            };
            futures::future::ready(event)
        })
        .boxed_local()
}

/// `WatchArticles` for one tag: resumes after a change's sequence; a fresh
/// stream starts after `x-watch-sequence`.
struct Feed {
    client: ArticleServiceClient<Client>,
    tag: String,
}

impl Resume for Feed {
    type Item = pb::ArticleEvent;

    async fn open(
        &mut self,
        after: Option<i64>,
    ) -> Result<Response<Streaming<pb::ArticleEvent>>, Status> {
        let request = pb::WatchArticlesRequest {
            tag: self.tag.clone(),
            after_sequence: after.unwrap_or(0),
        };
        self.client.watch_articles(request).await
    }

    fn cursor(&self, event: &pb::ArticleEvent) -> Option<i64> {
        Some(event.sequence)
    }

    fn is_heartbeat(&self, event: &pb::ArticleEvent) -> bool {
        matches!(event.event, Some(pb::article_event::Event::Heartbeat(_)))
    }

    fn opening_cursor(&self, metadata: &tonic::metadata::MetadataMap) -> Option<i64> {
        // 0 means "nothing yet", which the server reads as "from now on".
        metadata
            .get(proto::WATCH_SEQUENCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .filter(|&sequence: &i64| sequence > 0)
    }
}
