//! One error type for failed calls, with what a UI needs to explain them.

use std::fmt;

use prost::Message as _;
use tonic::{Code, Status};

/// A failed call: the gRPC code, the server's message, the request id to
/// quote, and the field violations of a `google.rpc.BadRequest`.
///
/// Made from the [`Status`] a generated client returns (`Error::from`). The
/// crate's [`Client`](crate::Client) has already turned browser failures
/// into their codes: a `fetch` that failed is `UNAVAILABLE`, a deadline
/// that passed is `DEADLINE_EXCEEDED`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Error {
    /// The gRPC status code.
    pub code: Code,
    /// The server's (or the transport's) message; may be empty.
    pub message: String,
    /// The `x-request-id` the response carried, if any (a server that sets
    /// one must expose it to the page with CORS).
    pub request_id: Option<String>,
    /// Invalid fields, from a `google.rpc.BadRequest` in the status
    /// details (`grpc-status-details-bin`); empty when there is none.
    pub violations: Vec<Violation>,
}

/// One invalid field of a request, as the server named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field's path in the request message, e.g. `title`.
    pub field: String,
    /// Why it is invalid, in words for a person.
    pub description: String,
}

impl Error {
    /// An error made on the client, without a server's answer.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
            violations: Vec::new(),
        }
    }

    /// Whether trying the same call again later may succeed without
    /// changing anything: only `UNAVAILABLE` (the server could not be
    /// reached, or is shutting down), which gRPC says is safe to retry.
    ///
    /// Deliberately not retryable: `DEADLINE_EXCEEDED`, because a write
    /// may have been applied although the answer came too late (retry
    /// idempotent reads yourself if you wish); `RESOURCE_EXHAUSTED`,
    /// because it may be a limit the same request will hit again (a
    /// message too large); `ABORTED`, which needs a fresh read first.
    pub fn is_retryable(&self) -> bool {
        self.code == Code::Unavailable
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::from(&status)
    }
}

impl From<&Status> for Error {
    fn from(status: &Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            request_id: status
                .metadata()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            violations: bad_request(status.details()),
        }
    }
}

/// `NotFound: no article 12`: the code's name, then the message if any.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(code_name(self.code))?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The name of `code` as tonic's `Debug` writes it. Written out because the
/// article app's release build drops `Debug` output (`-Zfmt-debug=none`,
/// see `xtask/src/web.rs`), and an error's text must not depend on that.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

impl std::error::Error for Error {}

/// The field violations in a `google.rpc.Status` whose details hold a
/// `google.rpc.BadRequest`; none when absent or malformed.
fn bad_request(details: &[u8]) -> Vec<Violation> {
    let Ok(status) = rpc::Status::decode(details) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("/google.rpc.BadRequest"))
        .filter_map(|any| rpc::BadRequest::decode(any.value.as_slice()).ok())
        .flat_map(|br| br.field_violations)
        .map(|v| Violation {
            field: v.field,
            description: v.description,
        })
        .collect()
}

/// The few `google.rpc` messages read here, declared by hand with only the
/// fields used (prost skips the others). `tonic-types` would bring every
/// error-details message and `prost-types`: more wasm for every app.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn display_names_the_code_then_the_message() {
        assert_eq!(
            Error::new(Code::NotFound, "no article 12").to_string(),
            "NotFound: no article 12"
        );
        assert_eq!(Error::new(Code::Unavailable, "").to_string(), "Unavailable");
    }

    #[wasm_bindgen_test]
    fn code_names_are_tonics_debug_names() {
        // Test builds keep `Debug` output, so this compares with tonic's.
        for value in 0..=16 {
            let code = Code::from_i32(value);
            assert_eq!(code_name(code), format!("{code:?}"), "code {value}");
        }
    }
}
