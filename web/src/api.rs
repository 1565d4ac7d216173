//! The only module that speaks gRPC: it wraps the generated
//! `article.v1` client over `tonic_web_wasm_client::Client` (gRPC-web over
//! `fetch`) and turns statuses into [`ApiError`]s the pages can explain.
//!
//! * The server is the page's own origin unless `ARTICLE_API_URL` was set
//!   when the app was compiled (front-end development against another port).
//! * Every unary call carries a deadline: `grpc-timeout` tells the server,
//!   and the call is also abandoned on the client when it passes (the
//!   `fetch` is aborted). The watch stream has a deadline for opening only;
//!   once open, heartbeats tell the caller whether it still delivers.
//! * Dropping a returned future or a [`Watch`] aborts its `fetch`, so a page
//!   that goes away cancels its calls by dropping them.
//!
//! Limits: browsers can only make unary and server-streaming calls, so
//! `ImportArticles` is not offered here.

use std::{future::Future, time::Duration};

use futures::future::{Either, select};
use prost::Message as _;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, Status, metadata::MetadataValue};
use tonic_web_wasm_client::Client;

pub use pb::Article;

/// How long a unary call may take, end to end.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// How long opening the watch stream may take (until its headers arrive).
const WATCH_OPEN_DEADLINE: Duration = Duration::from_secs(10);
/// The client waits a little longer than the server's deadline, so a
/// server that gives up first can say why.
const CLIENT_GRACE: Duration = Duration::from_millis(500);

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

/// One invalid field from `google.rpc.BadRequest`, named as in the proto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
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

impl ApiError {
    fn from_status(status: &Status) -> Self {
        let code = status.code();
        let message = status.message().to_owned();
        // A failed `fetch` (server down, connection refused, CORS) surfaces as
        // UNKNOWN with the JS error text; it is really "unavailable".
        let network = code == Code::Unknown
            && (message.contains("JS API error")
                || message.contains("Failed to fetch")
                || message.contains("NetworkError"));
        let kind = match code {
            Code::NotFound => ErrorKind::NotFound,
            Code::InvalidArgument => ErrorKind::Invalid,
            Code::Unauthenticated | Code::PermissionDenied => ErrorKind::Unauthenticated,
            Code::Aborted | Code::FailedPrecondition => ErrorKind::Conflict,
            Code::OutOfRange => ErrorKind::OutOfRange,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Unavailable => ErrorKind::Unavailable,
            _ if network => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        };
        let violations = bad_request(status.details());
        let request_id = status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self {
            kind,
            code: code_name(if network { Code::Unavailable } else { code }),
            message,
            violations,
            request_id,
        }
    }

    fn timeout() -> Self {
        Self {
            kind: ErrorKind::Timeout,
            code: code_name(Code::DeadlineExceeded),
            message: "the server did not answer in time".into(),
            violations: Vec::new(),
            request_id: None,
        }
    }

    fn bad_token() -> Self {
        Self {
            kind: ErrorKind::Unauthenticated,
            code: code_name(Code::Unauthenticated),
            message: "the token contains characters that cannot be sent".into(),
            violations: Vec::new(),
            request_id: None,
        }
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

/// The field violations in a `grpc-status-details-bin` (`google.rpc.Status`
/// whose details hold a `google.rpc.BadRequest`); none when absent or
/// malformed.
fn bad_request(details: &[u8]) -> Vec<Violation> {
    let Ok(status) = rpc::Status::decode(details) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("/google.rpc.BadRequest"))
        .filter_map(|any| rpc::BadRequest::decode(any.value.as_slice()).ok())
        .flat_map(|br| br.field_violations)
        .map(|v| Violation {
            field: v.field,
            description: v.description,
        })
        .collect()
}

/// The few `google.rpc` messages the app reads, declared by hand with only
/// the fields it uses (prost skips the others). `tonic-types` would give
/// them all, with `prost-types`' `Any` and every other error-details
/// message: more wasm for nothing, against the bundle size target
/// (≤ 150 KB gzip for the whole app).
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Where the API lives: `ARTICLE_API_URL` at build time, else this page's origin.
pub fn base_url() -> String {
    let url = match option_env!("ARTICLE_API_URL") {
        Some(url) if !url.is_empty() => url.to_owned(),
        _ => web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default(),
    };
    url.trim_end_matches('/').to_owned()
}

fn client() -> ArticleServiceClient<Client> {
    ArticleServiceClient::new(Client::new(base_url()))
}

/// A request with the server-side deadline and, for writes, the token.
fn request<T>(
    message: T,
    deadline: Option<Duration>,
    token: Option<&str>,
) -> Result<tonic::Request<T>, ApiError> {
    let mut request = tonic::Request::new(message);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| ApiError::bad_token())?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// Runs `call` but gives up (dropping it, which aborts the fetch) once
/// `deadline` plus a little grace has passed.
async fn within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, ApiError> {
    let call = std::pin::pin!(call);
    let timer = std::pin::pin!(crate::task::sleep(deadline + CLIENT_GRACE));
    match select(call, timer).await {
        Either::Left((Ok(response), _)) => Ok(response.into_inner()),
        Either::Left((Err(status), _)) => Err(ApiError::from_status(&status)),
        Either::Right(_) => Err(ApiError::timeout()),
    }
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
        Some(CALL_DEADLINE),
        None,
    )?;
    let mut client = client();
    within(CALL_DEADLINE, client.list_articles(req)).await
}

pub async fn get_article(id: i64) -> Result<Article, ApiError> {
    let req = request(pb::GetArticleRequest { id }, Some(CALL_DEADLINE), None)?;
    let mut client = client();
    within(CALL_DEADLINE, client.get_article(req))
        .await?
        .article
        .ok_or_else(missing_article)
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
        Some(CALL_DEADLINE),
        Some(token),
    )?;
    let mut client = client();
    within(CALL_DEADLINE, client.create_article(req))
        .await?
        .article
        .ok_or_else(missing_article)
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
        Some(CALL_DEADLINE),
        Some(token),
    )?;
    let mut client = client();
    within(CALL_DEADLINE, client.update_article(req))
        .await?
        .article
        .ok_or_else(missing_article)
}

pub async fn delete_article(token: &str, id: i64) -> Result<(), ApiError> {
    let req = request(
        pb::DeleteArticleRequest { id },
        Some(CALL_DEADLINE),
        Some(token),
    )?;
    let mut client = client();
    within(CALL_DEADLINE, client.delete_article(req)).await?;
    Ok(())
}

fn missing_article() -> ApiError {
    ApiError {
        kind: ErrorKind::Other,
        code: code_name(Code::Internal),
        message: "the response carried no article".into(),
        violations: Vec::new(),
        request_id: None,
    }
}

/// One message of the change feed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Created(Article),
    Updated(Article),
    Deleted(i64),
    /// Proof of life; carries no change.
    Heartbeat,
}

/// An open `WatchArticles` stream. Dropping it aborts the request.
pub struct Watch {
    /// The sequence live delivery starts after (`x-watch-sequence`), when
    /// the server sent it and CORS lets us read it.
    pub live_from: Option<i64>,
    stream: tonic::Streaming<pb::ArticleEvent>,
}

impl Watch {
    /// The next change and its sequence; `None` when the server ended the
    /// stream cleanly (e.g. it is shutting down).
    pub async fn next(&mut self) -> Option<Result<(i64, Change), ApiError>> {
        use pb::article_event::Event;
        loop {
            let event = match self.stream.message().await {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(status) => return Some(Err(ApiError::from_status(&status))),
            };
            let change = match event.event {
                Some(Event::Created(a)) => Change::Created(a),
                Some(Event::Updated(a)) => Change::Updated(a),
                Some(Event::DeletedId(id)) => Change::Deleted(id),
                Some(Event::Heartbeat(_)) => Change::Heartbeat,
                // An event kind newer than this app: skip it.
                None => continue,
            };
            return Some(Ok((event.sequence, change)));
        }
    }
}

/// Opens the change feed, optionally filtered by `tag`, resuming after
/// `after_sequence` when it is > 0.
pub async fn watch_articles(tag: String, after_sequence: i64) -> Result<Watch, ApiError> {
    let req = request(
        pb::WatchArticlesRequest {
            tag,
            after_sequence,
        },
        None,
        None,
    )?;
    let mut client = client();
    let call = std::pin::pin!(client.watch_articles(req));
    let timer = std::pin::pin!(crate::task::sleep(WATCH_OPEN_DEADLINE));
    match select(call, timer).await {
        Either::Left((Ok(response), _)) => {
            let live_from = response
                .metadata()
                .get("x-watch-sequence")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            Ok(Watch {
                live_from,
                stream: response.into_inner(),
            })
        }
        Either::Left((Err(status), _)) => Err(ApiError::from_status(&status)),
        Either::Right(_) => Err(ApiError::timeout()),
    }
}
