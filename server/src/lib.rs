//! `article-server` as a library: the article application ([`startup`])
//! on the one-port runtime of the `grpc-runtime` crate.
//!
//! Tests and embedders call [`Application::build`] with [`Settings`] (port 0
//! allowed), read [`Application::local_addr`], then
//! [`Application::run_until`] a shutdown signal.

pub mod article;
pub mod auth;
pub mod config;
pub mod startup;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
