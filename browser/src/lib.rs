//! gRPC-web from any Rust/WebAssembly app, for the generated tonic clients:
//! deadlines, cancellation, one error type a UI can explain, and server
//! streams that survive lost connections. Framework-agnostic (no UI
//! library) and API-agnostic (no generated code of its own).
//!
//! * [`Client`] is the transport for a generated client
//!   (`FooServiceClient::new(Client::same_origin())`): binary gRPC-web
//!   over `fetch` (written here for size, see `client.rs`), enforcing each
//!   call's deadline (`Request::set_timeout`) in the browser as
//!   `DEADLINE_EXCEEDED`, and
//!   reporting a failed `fetch` as `UNAVAILABLE`. Dropping a call's future
//!   or stream aborts its `fetch`. [`Client::answered`] answers calls with
//!   a body fetched before, without a request.
//! * [`unary`] awaits a generated client's unary call handed over boxed,
//!   so that an app's code does not inline tonic's generic call path once
//!   per call site.
//! * [`Error`] is a failed call for a UI: code, message, request id,
//!   `google.rpc.BadRequest` field violations, [`Error::is_retryable`].
//! * [`Resumable`] follows a server stream described by a [`Resume`]
//!   implementation: reconnects with capped exponential backoff and jitter,
//!   resumes after the last item, watches heartbeats, yields
//!   [`Event::Resync`] when items may have been missed and [`State`]s for a
//!   connection indicator.
//! * [`sleep`] is the timer all of this uses, for the app's own waits.
//!
//! # Example
//!
//! A unary call with a deadline, and a followed change feed (this is
//! `examples/quick_start/app.rs`, built for `wasm32-unknown-unknown`):
//!
//! ```rust,ignore
#![doc = include_str!("../examples/quick_start/app.rs")]
//! ```
//!
//! # Limitations
//!
//! * Browsers can make only unary and server-streaming calls over
//!   gRPC-web: no client or bidirectional streams.
//! * Binary gRPC-web only, no `grpc-web-text` (base64): browsers that
//!   stream `fetch` bodies (all current ones) do not need it.
//! * Response headers and trailers (e.g. `x-request-id`) are visible only
//!   if a cross-origin server exposes them with CORS
//!   (`Access-Control-Expose-Headers`).
//! * The deadline is enforced in the browser 0.5 s after it passes, so
//!   that a server that gives up first can say why.
//! * An HTTP error without a gRPC status (e.g. a proxy's 502 page) is
//!   `UNKNOWN`, not mapped from the HTTP status.
//! * A [`Resumable`] retries every failure, also those that will not heal
//!   (`UNAUTHENTICATED`, `INVALID_ARGUMENT`); it only shows
//!   [`State::Reconnecting`]. It needs an increasing `i64` cursor.
//! * Firefox resolves a streaming `fetch` only with the first bytes of the
//!   body: there a quiet stream opens with the server's first message (see
//!   [`Resumable::open_timeout`]).
//! * Only `wasm32` targets: on others the crate is empty.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

mod client;
mod error;
mod resume;
mod time;

pub use client::{Call, Client, ResponseBody, unary};
pub use error::{Error, Violation};
pub use resume::{Event, Resumable, Resume, State};
pub use time::{Sleep, sleep};
