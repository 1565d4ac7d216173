#[path = "api/common.rs"]
mod common;
#[path = "api/example.rs"]
mod example;
#[path = "api/shutdown.rs"]
mod shutdown;
#[path = "api/tls.rs"]
mod tls;
