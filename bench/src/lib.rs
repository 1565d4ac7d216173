//! Shared pieces of the benchmarks run by `cargo xtask bench`: gRPC framing
//! and raw HTTP calls (so every system is called with the same bytes),
//! `/proc` sampling of a server's RSS and CPU, starting a server and waiting
//! for its `listening on http://…` line, and the seed articles.
//!
//! Benchmarks are not tests: nothing here asserts a timing. The binaries
//! are `article-bench` (the orchestrator that writes `BENCHMARKS.md`),
//! `limit-server` (the physical limit), `json-gateway` (the gateway
//! architecture), `watch-fanout` (the streaming client) and `write-load`
//! (concurrent CreateArticle writers).

pub mod data;
pub mod growth;
pub mod grpc;
pub mod process;
pub mod procfs;
