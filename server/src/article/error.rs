//! Errors of the article feature and their one mapping to gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field, named as in the proto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Everything that can go wrong in the article feature.
#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("article {0} does not exist")]
    NotFound(i64),
    #[error("{message}")]
    Validation {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error(
        "article {id} is at version {actual}, not the expected version {expected}; reload it and try again"
    )]
    VersionConflict { id: i64, expected: i64, actual: i64 },
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    OutOfRange(String),
    #[error(
        "watch stream fell behind: more than {0} events were waiting; resume with after_sequence"
    )]
    WatcherLagged(u64),
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("the database disk is full; nothing was written (reads still work)")]
    DiskFull(#[source] anyhow::Error),
    #[error(
        "the database is busy with another write (such as a long import); nothing was written, try again"
    )]
    Busy(#[source] anyhow::Error),
    #[error("the database could not be read or written (I/O error); try again later")]
    Io(#[source] anyhow::Error),
    /// The database server cannot be reached (down, restarting, out of
    /// connections). Nothing was written; the same call may succeed later.
    #[error("the database is unreachable; nothing was written, try again shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("storage failed")]
    Storage(#[source] anyhow::Error),
}

impl ArticleError {
    pub fn validation(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [one] => format!("invalid {}: {}", one.field, one.description),
            many => format!("{} invalid fields", many.len()),
        };
        Self::Validation {
            message,
            violations,
        }
    }

    pub fn storage(err: impl Into<anyhow::Error>) -> Self {
        Self::Storage(err.into())
    }
}

impl From<ArticleError> for Status {
    fn from(err: ArticleError) -> Self {
        match err {
            ArticleError::NotFound(_) => Status::not_found(err.to_string()),
            ArticleError::Validation {
                message,
                violations,
            } => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ArticleError::VersionConflict { .. } => Status::aborted(err.to_string()),
            ArticleError::Unauthenticated(msg) => Status::unauthenticated(msg),
            ArticleError::OutOfRange(msg) => Status::out_of_range(msg),
            ArticleError::WatcherLagged(_) => Status::resource_exhausted(err.to_string()),
            ArticleError::ShuttingDown => Status::unavailable(err.to_string()),
            ArticleError::DiskFull(ref source) => {
                tracing::warn!(error = format!("{source:#}"), "database disk full");
                Status::resource_exhausted(err.to_string())
            }
            ArticleError::Busy(ref source) => {
                tracing::warn!(error = format!("{source:#}"), "database busy");
                Status::unavailable(err.to_string())
            }
            ArticleError::Io(ref source) => {
                tracing::error!(error = format!("{source:#}"), "database I/O error");
                Status::unavailable(err.to_string())
            }
            ArticleError::Unavailable(ref source) => {
                tracing::warn!(error = format!("{source:#}"), "database unreachable");
                Status::unavailable(err.to_string())
            }
            ArticleError::Storage(source) => {
                // The cause chain goes to the log, never to the client.
                tracing::error!(error = format!("{source:#}"), "storage error");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_becomes_invalid_argument_with_every_violation() {
        let status: Status = ArticleError::validation(vec![
            FieldViolation::new("title", "title must not be empty"),
            FieldViolation::new("tags", "tag \"X\" is bad"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let br = status
            .get_details_bad_request()
            .expect("BadRequest details");
        assert_eq!(br.field_violations.len(), 2);
        assert_eq!(br.field_violations[0].field, "title");
    }

    #[test]
    fn a_full_disk_is_resource_exhausted_without_driver_text() {
        let status: Status =
            ArticleError::DiskFull(anyhow::anyhow!("(code: 13) database or disk is full")).into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("the database disk is full"));
        assert!(!status.message().contains("code: 13"));
        let busy: Status = ArticleError::Busy(anyhow::anyhow!("(code: 5) locked")).into();
        assert_eq!(busy.code(), Code::Unavailable);
        assert!(!busy.message().contains("code: 5"));
        let down: Status =
            ArticleError::Unavailable(anyhow::anyhow!("Connection refused (os error 111)")).into();
        assert_eq!(down.code(), Code::Unavailable);
        assert!(down.message().contains("the database is unreachable"));
        assert!(!down.message().contains("os error"));
    }

    #[test]
    fn storage_errors_do_not_leak() {
        let status: Status =
            ArticleError::storage(anyhow::anyhow!("no such table: secret_table")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }
}
