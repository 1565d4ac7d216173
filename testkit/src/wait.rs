//! Bounded waits, quiet logging and the one request helper every gRPC test
//! needs.

use std::{sync::Once, time::Duration};

use tonic::{Request, metadata::MetadataValue};

/// Every call and wait in tests is bounded by this. Generous, because two
/// CPUs may be building and testing several crates at once.
pub const TIMEOUT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(10);

/// Installs a `tracing` subscriber writing to the test output, once, and
/// only when `TEST_LOG` is set (its value is the filter, e.g. `debug`).
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// Waits until `cond` holds, polling every 10 ms; panics naming `what`
/// after [`TIMEOUT`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `probe` until it returns `Ok`, for at most `within`. `Err` carries
/// what was seen instead, quoted in the panic message on timeout.
pub async fn wait_until<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    let poll = (within / 100).clamp(POLL, Duration::from_millis(50));
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// Wraps `message` in a request carrying `authorization: Bearer token`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .expect("a token is a valid header value");
    request.metadata_mut().insert("authorization", value);
    request
}
