//! The transport: gRPC-web over `fetch` (`tonic_web_wasm_client`), with
//! deadlines enforced in the browser and browser failures turned into the
//! gRPC codes they stand for.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use tonic::{Code, Status};
use tonic_web_wasm_client::options::FetchOptions;

/// How much longer than its deadline the browser lets a call run, so that a
/// server that gives up first can say why.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);
/// The message of a deadline enforced in the browser.
const DEADLINE_MESSAGE: &str = "the server did not answer in time";

/// The transport for generated tonic clients in the browser:
/// `SomeServiceClient::new(Client::new(url))`.
///
/// Compared with a bare `tonic_web_wasm_client::Client` it
///
/// * enforces each call's deadline (`Request::set_timeout`, sent as
///   `grpc-timeout`) in the browser too, over the whole call including a
///   server stream's body, ending it with `DEADLINE_EXCEEDED` — also where
///   Chromium reports the aborted body read as a plain `AbortError`;
/// * reports a failed `fetch` (server down, connection refused, CORS) as
///   `UNAVAILABLE` instead of `UNKNOWN` with the JavaScript error text.
///
/// Dropping a call's future, or the `Streaming` it returned, aborts its
/// `fetch`. Cloning is cheap (a URL).
#[derive(Clone, Debug)]
pub struct Client {
    base_url: String,
}

impl Client {
    /// A client for the server at `base_url` (scheme, host and port, e.g.
    /// `https://api.example.com`; a trailing `/` is ignored).
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Self { base_url }
    }

    /// A client for the origin that served the page (`location.origin`);
    /// the usual choice when the server also serves the app.
    pub fn same_origin() -> Self {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        Self::new(origin)
    }

    /// The server's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

type Call = Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, Status>>>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Client {
    type Response = http::Response<ResponseBody>;
    type Error = Status;
    type Future = Call;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Call {
        // The `fetch` gets its own abort timer; an aborted `fetch` or body
        // read can only be this timer (the other abort is a drop, after
        // which nobody reads), so `AbortError` means the deadline passed.
        let mut options = FetchOptions::new();
        if let Some(timeout) = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| grpc_timeout(v.as_bytes()))
        {
            options = options.timeout(timeout.saturating_add(DEADLINE_GRACE));
        }
        let mut inner =
            tonic_web_wasm_client::Client::new_with_options(self.base_url.clone(), options);
        Box::pin(async move {
            let response = tower_service::Service::call(&mut inner, request)
                .await
                .map_err(status)?;
            Ok(response.map(ResponseBody))
        })
    }
}

/// A response body whose errors are [`Status`]es with the right code.
pub struct ResponseBody(tonic_web_wasm_client::ResponseBody);

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(status)))
    }
}

/// The status a transport error stands for.
fn status(error: tonic_web_wasm_client::Error) -> Status {
    use tonic_web_wasm_client::Error;
    match error {
        // The `fetch` rejected with the abort timer's reason.
        Error::TonicStatusError(status) if status.code() == Code::DeadlineExceeded => {
            Status::deadline_exceeded(DEADLINE_MESSAGE)
        }
        Error::TonicStatusError(status) => status,
        // A body read that the abort timer cut (Chromium does not pass
        // the reason on).
        Error::JsError(ref message) if message.contains("AbortError") => {
            Status::deadline_exceeded(DEADLINE_MESSAGE)
        }
        // `fetch` and body reads fail with a `TypeError` when the network
        // does: refused, reset, offline, blocked by CORS.
        Error::JsError(_) => Status::unavailable(error.to_string()),
        other => Status::unknown(other.to_string()),
    }
}

/// A `grpc-timeout` header value: up to 8 digits and a unit.
fn grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn grpc_timeout_units() {
        assert_eq!(grpc_timeout(b"10S"), Some(Duration::from_secs(10)));
        assert_eq!(grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout(b"300m"), Some(Duration::from_millis(300)));
        assert_eq!(grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            grpc_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [&b""[..], b"S", b"123456789S", b"10s", b"1.5S", b"-1S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[wasm_bindgen_test]
    fn a_trailing_slash_is_ignored() {
        assert_eq!(Client::new("http://x:1//").base_url(), "http://x:1");
    }
}
