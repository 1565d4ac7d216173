//! The one error type of every task: a message that ends `cargo xtask` with
//! `error: <message>` and exit code 1. No causes or backtraces; the message
//! is written to say what failed and, where useful, what to do.

use std::fmt;

/// A failure that ends the task with a one-line message and exit code 1.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}
