//! Black-box tests of the running system: one binary, one module per area.
//! Every test starts its own server on 127.0.0.1:0 with its own database.

mod bad_input;
mod cache;
mod cors;
mod crud;
mod example;
mod grpc_web;
mod health;
mod import;
mod import_lock;
mod limits;
mod list;
mod shutdown;
mod tls;
mod watch;
