//! Black-box tests of the running system: one binary, one module per area.
//! Every test starts its own server on 127.0.0.1:0 with its own database.

mod common;

mod crud;
mod import;
mod list;
mod watch;
