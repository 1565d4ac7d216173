//! What the fuzz targets share: the runtime's assembled service (the one a
//! port serves, from `RuntimeBuilder::into_service`) built once per
//! process, and one call through it that reads the whole answer.
//!
//! The service mounts only what the runtime always mounts (health,
//! reflection, `/healthz`, `/metrics`), which is enough: every request,
//! whatever its path, first goes through CORS, request ids, the
//! content-type dispatch, the message-size limit and tonic-web's
//! binary/text decoding — the code under test. The size limit is small
//! (4 KiB) so that inputs reach it.

use std::{sync::OnceLock, time::Duration};

use axum::{Router, body::Body};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The largest request message the fuzzed runtime accepts.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// The gRPC paths an input may address (the rest of the path space is
/// reached through [`path`]).
const PATHS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/unknown.v1.Service/Method",
    "/healthz",
    "/metrics",
];

/// The content types an input may send; the last entry means "take the
/// content type from the input".
const CONTENT_TYPES: &[&str] = &[
    "application/grpc",
    "application/grpc+proto",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "application/json",
    "",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Router,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // A worker thread of its own, as in the server: tasks the runtime
        // spawns (the lingering discard of a refused body, bounded by 10 s)
        // run there, and its timers fire while the fuzzer's thread is
        // busy. With a current-thread runtime they never fired between
        // calls, and those tasks piled up until libFuzzer's memory limit.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let app = runtime
            .block_on(
                grpc_runtime::RuntimeBuilder::new()
                    .max_message_bytes(MAX_MESSAGE_BYTES)
                    .into_service(),
            )
            .expect("the runtime's service assembles");
        Harness { runtime, app }
    })
}

/// Picks from `choices` by `selector`.
pub fn pick<'a>(choices: &[&'a str], selector: u8) -> &'a str {
    choices[usize::from(selector) % choices.len()]
}

/// A request path: one of the known ones, or (selector's high bit) the
/// given bytes if they make a valid path.
pub fn path(selector: u8, raw: &[u8]) -> String {
    if selector & 0x80 != 0 {
        if let Ok(text) = std::str::from_utf8(raw) {
            if text.starts_with('/') && http::Uri::try_from(text).is_ok() {
                return text.to_owned();
            }
        }
    }
    pick(PATHS, selector).to_owned()
}

/// A content type: one of the known ones, or the given bytes if they make
/// a valid header value.
pub fn content_type(selector: u8, raw: &[u8]) -> Option<http::HeaderValue> {
    let chosen = pick(CONTENT_TYPES, selector);
    if chosen.is_empty() {
        http::HeaderValue::from_bytes(raw).ok()
    } else {
        Some(http::HeaderValue::from_static(chosen))
    }
}

/// What came back: the status and the whole body.
pub struct Answer {
    pub status: http::StatusCode,
    pub body: Bytes,
}

/// Sends `request` through the runtime's service and reads the answer to
/// its end (bounded: a streaming answer such as Health/Watch is cut after
/// 100 ms, which is not a failure).
pub fn call(request: http::Request<Body>) -> Answer {
    let harness = harness();
    harness.runtime.block_on(async {
        let response = harness
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the runtime's service is infallible");
        let status = response.status();
        let body =
            match tokio::time::timeout(Duration::from_millis(100), response.into_body().collect())
                .await
            {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(_)) | Err(_) => Bytes::new(),
            };
        Answer { status, body }
    })
}

/// Checks what every answer must be, whatever the input: never a server
/// error status — a bad request is the client's fault (gRPC errors travel
/// as 200 + grpc-status, plain HTTP ones as 4xx).
pub fn check(answer: &Answer) {
    assert!(
        !answer.status.is_server_error() || answer.status == http::StatusCode::SERVICE_UNAVAILABLE,
        "a request made of bad bytes got {}",
        answer.status
    );
}
