//! The only module that speaks gRPC: it calls `article.v1.ArticleService`
//! with the generated prost messages through tonic's client over
//! `tonic_web_wasm_client::Client` (gRPC-web over `fetch`), and turns
//! statuses into [`ApiError`]s the pages can explain.
//!
//! * Messages are encoded and decoded here, around one bytes-in,
//!   bytes-out call (`RawCodec`), instead of through the generated
//!   `ArticleServiceClient`: the same wire calls, with the call machinery
//!   compiled once instead of once per method (bundle size). The method
//!   paths are spelled out below; the browser tests call every one.
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
use prost::{
    Message,
    bytes::{Buf as _, BufMut as _},
};
use proto::v1 as pb;
use tonic::{
    Code, Status,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Bytes, http::uri::PathAndQuery},
    metadata::MetadataValue,
};
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

fn client() -> Grpc<Client> {
    Grpc::new(Client::new(base_url()))
}

/// The `ArticleService` methods, as the generated client names them.
const LIST: &str = "/article.v1.ArticleService/ListArticles";
const GET: &str = "/article.v1.ArticleService/GetArticle";
const CREATE: &str = "/article.v1.ArticleService/CreateArticle";
const UPDATE: &str = "/article.v1.ArticleService/UpdateArticle";
const DELETE: &str = "/article.v1.ArticleService/DeleteArticle";
const WATCH: &str = "/article.v1.ArticleService/WatchArticles";

/// Passes already encoded messages through. tonic's call machinery is
/// generic over the message types: through the generated client (prost
/// codec) every method got its own copy of it in the wasm. Encoding and
/// decoding with prost around one bytes-in, bytes-out call keeps a single
/// copy: 28 KB less wasm, 10 KB less gzip (bundle size target: ≤ 150 KB
/// gzip for the whole app).
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One unary call of `method` (one of the paths above); every unary call
/// goes through here.
async fn unary_raw(
    method: &'static str,
    request: tonic::Request<Vec<u8>>,
) -> Result<Bytes, ApiError> {
    let call = async {
        let mut client = client();
        client
            .ready()
            .await
            .map_err(|e| Status::from_error(e.into()))?;
        client
            .unary(request, PathAndQuery::from_static(method), RawCodec)
            .await
    };
    within(CALL_DEADLINE, call).await
}

/// Calls `method` with `message` (and the token, for writes) and decodes
/// the answer as `R`.
async fn unary<R: Message + Default>(
    method: &'static str,
    message: impl Message,
    token: Option<&str>,
) -> Result<R, ApiError> {
    let req = request(message.encode_to_vec(), Some(CALL_DEADLINE), token)?;
    let bytes = unary_raw(method, req).await?;
    R::decode(bytes).map_err(|_| undecodable())
}

fn undecodable() -> ApiError {
    ApiError {
        kind: ErrorKind::Other,
        code: code_name(Code::Internal),
        message: "the server's answer could not be decoded".into(),
        violations: Vec::new(),
        request_id: None,
    }
}

/// A request with the server-side deadline and, for writes, the token.
fn request(
    message: Vec<u8>,
    deadline: Option<Duration>,
    token: Option<&str>,
) -> Result<tonic::Request<Vec<u8>>, ApiError> {
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
async fn within(
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<Bytes>, Status>>,
) -> Result<Bytes, ApiError> {
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
    let message = pb::ListArticlesRequest {
        page: q.page,
        page_size: q.page_size,
        query: q.query,
        tag: q.tag,
    };
    unary(LIST, message, None).await
}

pub async fn get_article(id: i64) -> Result<Article, ApiError> {
    unary::<pb::GetArticleResponse>(GET, pb::GetArticleRequest { id }, None)
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
    let message = pb::CreateArticleRequest {
        title: draft.title,
        content: draft.content,
        tags: draft.tags,
    };
    unary::<pb::CreateArticleResponse>(CREATE, message, Some(token))
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
    let message = pb::UpdateArticleRequest {
        id,
        title: draft.title,
        content: draft.content,
        tags: draft.tags,
        expected_version,
    };
    unary::<pb::UpdateArticleResponse>(UPDATE, message, Some(token))
        .await?
        .article
        .ok_or_else(missing_article)
}

pub async fn delete_article(token: &str, id: i64) -> Result<(), ApiError> {
    unary::<pb::DeleteArticleResponse>(DELETE, pb::DeleteArticleRequest { id }, Some(token))
        .await?;
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
    stream: tonic::Streaming<Bytes>,
}

impl Watch {
    /// The next change and its sequence; `None` when the server ended the
    /// stream cleanly (e.g. it is shutting down).
    pub async fn next(&mut self) -> Option<Result<(i64, Change), ApiError>> {
        use pb::article_event::Event;
        loop {
            let event = match self.stream.message().await {
                Ok(Some(bytes)) => match pb::ArticleEvent::decode(bytes) {
                    Ok(event) => event,
                    Err(_) => return Some(Err(undecodable())),
                },
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
    let message = pb::WatchArticlesRequest {
        tag,
        after_sequence,
    };
    let req = request(message.encode_to_vec(), None, None)?;
    let mut client = client();
    let call =
        std::pin::pin!(client.server_streaming(req, PathAndQuery::from_static(WATCH), RawCodec));
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
