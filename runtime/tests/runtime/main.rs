//! The runtime's own tests: the Echo test service on the runtime, no
//! database. In-process (the assembled service from
//! `RuntimeBuilder::into_service`, called with `oneshot`): dispatch, CORS,
//! size limit, request ids, plain HTTP, gzip. On a socket (127.0.0.1:0):
//! both protocols over HTTP/1.1 and HTTP/2, TLS with ALPN, drain and
//! health, metrics, and the example program.
//!
//! The test of metrics beside a global recorder is a binary of its own
//! (`tests/global_recorder.rs`): a process can install one only once.

mod common;

// In-process.
mod cors;
mod dispatch;
mod gzip;
mod limit;
mod logs;
mod plain_http;
mod request_id;
