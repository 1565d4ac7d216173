//! Capped exponential backoff with full jitter, and which failures may be
//! retried.

use std::{error::Error as StdError, time::Duration};

use tonic::{Code, Status};

/// Capped exponential backoff with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay: random in [d/2, d] where d = min(cap, base * 2^n).
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let d = exp.min(self.cap);
        let half = d / 2;
        half + d.mul_f64(rand::random::<f64>() * 0.5)
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// Whether the request provably never reached a server (the connection
/// could not be made), so even a write may be sent elsewhere.
pub fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = source {
        if let Some(e) = err.downcast_ref::<hyper_util::client::legacy::Error>()
            && e.is_connect()
        {
            return true;
        }
        if let Some(e) = err.downcast_ref::<std::io::Error>()
            && matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        let text = err.to_string();
        if text.contains("tcp connect error") || text.contains("client error (Connect)") {
            return true;
        }
        source = err.source();
    }
    false
}

/// A status tonic made from a transport failure (the connection was reset
/// or broke before an answer; tonic reports UNKNOWN or CANCELLED) becomes UNAVAILABLE,
/// as gRPC specifies, so idempotent calls retry it; an expired deadline
/// (tonic: CANCELLED "Timeout expired") becomes DEADLINE_EXCEEDED. A status the server
/// sent has no such cause and is kept as it is.
pub fn transport_is_unavailable(status: Status) -> Status {
    if !matches!(status.code(), Code::Unknown | Code::Cancelled) {
        return status;
    }
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return Status::deadline_exceeded(format!(
                "no answer within the deadline ({})",
                status.message()
            ));
        }
        source = err.source();
    }
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>()
            || err.is::<hyper::Error>()
            || err.is::<std::io::Error>()
        {
            let mut unavailable =
                Status::unavailable(format!("the connection failed: {}", chain(&status)));
            unavailable.set_source(std::sync::Arc::new(status));
            return unavailable;
        }
        source = err.source();
    }
    status
}

fn chain(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

/// Whether an idempotent call may be retried after `status`.
pub fn retryable(status: &Status) -> bool {
    status.code() == Code::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(1)));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
