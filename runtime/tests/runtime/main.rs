//! The runtime's own tests: the test kit's Echo service on the runtime, no
//! database.
//!
//! In-process, through `RuntimeBuilder::into_service` (what the port
//! serves, called with `oneshot`): dispatch, CORS, the size limit, request
//! ids, plain HTTP, gzip and per-call logs. On a socket (127.0.0.1:0): both
//! protocols over HTTP/1.1 and HTTP/2, TLS with ALPN, drain and health,
//! metrics, and the example program.
//!
//! The test of metrics beside a global recorder is a binary of its own
//! (`tests/global_recorder.rs`): a process can install one only once.

mod common;

// In-process.
mod cors;
mod dispatch;
mod encoded;
mod gzip;
mod limit;
mod logs;
mod overload;
mod plain_http;
mod request_id;
mod static_files;

// On a socket.
mod connections;
mod drain;
#[cfg(feature = "cli")]
mod example;
mod health;
mod linger;
mod metrics;
mod protocols;
mod tls;
