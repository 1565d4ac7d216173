//! Logging setup: tracing to stderr, text or JSON, filtered by `RUST_LOG`
//! (default `info`). stdout is kept for the lines a person or script reads
//! (the URL and a generated token).
//!
//! Lines go through a non-blocking writer: a call hands its line to a
//! logging thread instead of making a `write` system call itself, and the
//! thread writes whatever has queued up in one go (under load, many lines
//! per call). Nothing is dropped: when the queue is full, callers wait.
//! Lines still queued when the process is killed (`kill -9`) are lost;
//! a normal exit writes them all (see [`LogGuard`]).

use std::io::BufWriter;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Keeps the logging thread running; dropping it writes the queued lines.
/// Hold it until the process exits.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Installs the global subscriber; a second call installs nothing and
/// returns an empty guard.
pub fn init(format: LogFormat) -> LogGuard {
    use std::io::IsTerminal as _;
    // Colours only for a person at a terminal, never into log files.
    let ansi = std::io::stderr().is_terminal();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The logging thread flushes the buffer each time the queue runs dry,
    // so lines appear as soon as the thread gets to them.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("article-log")
        .finish(BufWriter::new(std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(writer))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(writer))
            .try_init(),
    };
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}
