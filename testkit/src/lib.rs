//! The test kit: what every test binary of the workspace needs, in one
//! place instead of copies and `#[path]` includes.
//!
//! * [`SpawnedServer`]: a server running in this process on 127.0.0.1:0,
//!   stopped when dropped, with a bounded, timed shutdown. Works for any
//!   `run_until(signal)` server: `grpc_runtime::Runtime`, the article
//!   `Application`.
//! * [`ServerProcess`]: a server binary as a child process, ready once it
//!   prints its `listening on URL` line ([`listening`]), killed when dropped.
//! * [`grpc_web`] framing and raw HTTP/1.1 and h2c exchanges ([`raw`]), so
//!   tests check the wire format itself rather than trust a client library.
//! * [`prometheus`]: samples of `/metrics`, for exact counts.
//! * [`TestPki`]: a CA and a `localhost` server certificate, made per test.
//! * [`wait_for`], [`wait_until`] and [`TIMEOUT`]: every wait is bounded
//!   and polls a real condition; nothing sleeps and hopes.
//! * [`init_logging`]: tests are silent unless `TEST_LOG` is set
//!   (e.g. `TEST_LOG=debug`).
//! * [`echo`]: the small `example.v1.EchoService` the runtime's examples
//!   and tests mount.
//! * [`postgres`]: a throw-away PostgreSQL cluster ([`postgres::PgCluster`])
//!   and [`haproxy`]: HAProxy with `deploy/haproxy.cfg` in front of
//!   replicas, both plain std (for `xtask` too).
//! * `article` (feature `article`): `TestServer`, the article application
//!   with its own SQLite file and tokens for alice and bob.
//!
//! # Features
//! `kit` (default) is everything above but [`listening`], [`postgres`],
//! [`haproxy`] and [`signal`]. Without it the crate has no dependencies, for `xtask`. `article` adds the article
//! application, and with it `article-server` and sqlx; the runtime's own
//! tests leave it off.

#![warn(missing_docs)]

pub mod haproxy;
pub mod listening;
pub mod postgres;
pub mod signal;

#[cfg(feature = "kit")]
pub mod echo;
#[cfg(feature = "kit")]
pub mod grpc_web;
#[cfg(feature = "kit")]
mod process;
#[cfg(feature = "kit")]
pub mod prometheus;
#[cfg(feature = "kit")]
pub mod raw;
#[cfg(feature = "kit")]
mod spawned;
#[cfg(feature = "kit")]
mod tls;
#[cfg(feature = "kit")]
mod wait;

#[cfg(feature = "article")]
pub mod article;

#[cfg(feature = "kit")]
pub use self::{
    process::{ServerProcess, Stderr},
    spawned::{Shutdown, SpawnedServer, StopSignal},
    tls::{PkiFiles, TestPki},
    wait::{TIMEOUT, authed, init_logging, wait_for, wait_until},
};
