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

use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter,
    field::RecordFields,
    fmt::{
        self, FmtContext,
        format::{DefaultVisitor, FormatEvent, FormatFields, Writer},
        time::FormatTime,
    },
    prelude::*,
    registry::LookupSpan,
};

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
            .with(
                fmt::layer()
                    .with_ansi(ansi)
                    .fmt_fields(PlainFields)
                    .event_format(PlainEvent::new(UtcMicros))
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_timer(UtcMicros)
                    .with_writer(writer),
            )
            .try_init(),
    };
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}

/// The text format's fields as the default `DefaultFields` writes them
/// without colours (` name=value`, the value's `Debug`), written with
/// `write_str` for the name and `=`: the default paints both through
/// empty `nu_ansi_term` styles even with ANSI off (~1,300 instructions of
/// a call's log line). The message, `r#`/`log.` names, errors and every
/// field when ANSI is on go to tracing-subscriber's own `DefaultVisitor`,
/// so their text is its text by construction.
#[derive(Clone, Copy, Debug, Default)]
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    is_empty: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    fn plain(&self, field: &Field) -> bool {
        let name = field.name();
        !self.writer.has_ansi_escapes()
            && name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
    }

    fn delegate(&mut self) -> DefaultVisitor<'_> {
        let visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        self.is_empty = false;
        visitor
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if self.plain(field) {
            if value
                .bytes()
                .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
            {
                // `{value:?}` of printable ASCII without `"` and `\` is the
                // text in quotes: written as such, without the formatting
                // machinery and the per-character escaping (the call log's
                // `status` and `protocol`).
                self.write_plain(field, |writer| {
                    writer.write_char('"')?;
                    writer.write_str(value)?;
                    writer.write_char('"')
                });
            } else {
                self.record_debug(field, &value);
            }
        } else {
            let mut visitor = self.delegate();
            visitor.record_str(field, value);
            self.result = tracing_subscriber::field::VisitOutput::finish(visitor);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = self.delegate();
        visitor.record_error(field, value);
        self.result = tracing_subscriber::field::VisitOutput::finish(visitor);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        if !self.plain(field) {
            let mut visitor = self.delegate();
            visitor.record_debug(field, value);
            self.result = tracing_subscriber::field::VisitOutput::finish(visitor);
            return;
        }
        self.write_plain(field, |writer| write!(writer, "{value:?}"));
    }
}

impl PlainVisitor<'_> {
    /// ` name=` (no space before the first field), then the value.
    fn write_plain(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result,
    ) {
        let pad = if self.is_empty { "" } else { " " };
        self.is_empty = false;
        self.result = self
            .writer
            .write_str(pad)
            .and_then(|()| self.writer.write_str(field.name()))
            .and_then(|()| self.writer.write_char('='))
            .and_then(|()| value(&mut self.writer));
    }
}

/// The text format's line as the default `Full` format writes it without
/// colours, `TIME LEVEL target: fields`, written with `write_str` for an
/// event outside any span: the default writes the level through
/// `Formatter::pad` and the target and its colon through empty
/// `nu_ansi_term` styles, each inside a `write!` (~1,000 instructions of a
/// call's log line). With ANSI on, inside a span, or for an event from the
/// `log` crate, the line is the default format's, so its text is its text
/// by construction.
struct PlainEvent<T> {
    timer: T,
    full: fmt::format::Format<fmt::format::Full, T>,
}

impl<T: FormatTime + Clone> PlainEvent<T> {
    fn new(timer: T) -> Self {
        Self {
            full: fmt::format::Format::default().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainEvent<T>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let plain = !writer.has_ansi_escapes()
            && ctx.event_scope().is_none()
            && meta.fields().field("log.target").is_none();
        if !plain {
            return self.full.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(match *meta.level() {
            tracing::Level::TRACE => "TRACE",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::INFO => " INFO",
            tracing::Level::WARN => " WARN",
            tracing::Level::ERROR => "ERROR",
        })?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The fmt layer's default timestamp, `2026-11-30T22:53:41.123456Z` (UTC,
/// microseconds), formatted by `humantime` into one buffer and written in
/// one go. The default timer (`fmt::time::SystemTime`) writes the same text
/// field by field through `write!` with padding (~2,400 instructions per
/// line, a call's log line being ~11,000). Outside what humantime formats
/// (before 1970, after 9999) it hands over to the default timer.
#[derive(Clone, Copy, Debug, Default)]
struct UtcMicros;

/// 9999-12-31T23:59:59Z, humantime's last second.
const LAST_SECOND: u64 = 253_402_300_799;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) if since.as_secs() <= LAST_SECOND => {
                write!(w, "{}", humantime::format_rfc3339_micros(now))
            }
            _ => fmt::time::SystemTime.format_time(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a test subscriber writes, shared with its writer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Formats one event's fields with `format` (no ANSI).
    fn fields_text<F: for<'w> FormatFields<'w> + Send + Sync + 'static>(format: F) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .with_ansi(false)
                .without_time()
                .fmt_fields(format)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", r#type = "unary", id = 7_u64);
            let _entered = span.enter();
            let error = std::io::Error::other("disk \"full\"");
            let method = "/article.v1.ArticleService/ListArticles";
            tracing::info!(target: "grpc", method = %method, status = "OK", duration_ms = 0.25_f64, request_id = %"fixed", protocol = "grpc-web", "call");
            tracing::warn!(
                flag = true,
                count = -3_i64,
                text = "tab\tquote\"",
                plain = "it's 100% ~ok~",
                backslash = "a\\b",
                accented = "café",
                empty = "",
                r#type = "x",
                error = &error as &(dyn std::error::Error + 'static),
                "a \x1b[31m message {}",
                5
            );
            tracing::info!(only = 1_u64);
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// A clock that always reads the same, so that lines compare.
    #[derive(Clone, Copy)]
    struct FixedTime;

    impl FormatTime for FixedTime {
        fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
            w.write_str("2026-12-01T00:00:00.000000Z")
        }
    }

    /// The lines of a few events at every level, in and outside spans,
    /// written with the event format `format`.
    fn lines_text<E>(format: E, ansi: bool) -> String
    where
        E: FormatEvent<tracing_subscriber::Registry, PlainFields> + Send + Sync + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .with_ansi(ansi)
                .fmt_fields(PlainFields)
                .event_format(format)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let method = "/article.v1.ArticleService/ListArticles";
            tracing::info!(target: "grpc", method = %method, status = "OK", duration_ms = 0.25_f64, request_id = %"fixed", protocol = "grpc-web", "call");
            tracing::warn!(target: "grpc", method = %method, status = "INTERNAL", "call");
            tracing::error!(error = "disk full", "store failed");
            tracing::debug!(n = 1_u64, "debug");
            tracing::trace!("trace");
            let span = tracing::info_span!("request", id = 7_u64);
            let _entered = span.enter();
            tracing::info!(inner = true, "inside a span");
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn plain_event_lines_are_the_default_formats_lines() {
        for ansi in [false, true] {
            let default = lines_text(fmt::format::Format::default().with_timer(FixedTime), ansi);
            let plain = lines_text(PlainEvent::new(FixedTime), ansi);
            assert!(
                ansi || default.starts_with(
                    "2026-12-01T00:00:00.000000Z  INFO grpc: call method=/article.v1.ArticleService/ListArticles status=\"OK\""
                ),
                "{default}"
            );
            assert_eq!(default.lines().count(), 6, "{default}");
            assert_eq!(plain, default);
        }
    }

    #[test]
    fn plain_fields_write_what_the_default_fields_write() {
        let default = fields_text(fmt::format::DefaultFields::new());
        let plain = fields_text(PlainFields);
        assert!(
            default.contains("method=/article.v1.ArticleService/ListArticles status=\"OK\""),
            "{default}"
        );
        assert_eq!(plain, default);
    }

    #[test]
    fn the_timer_writes_what_the_default_timer_writes_but_for_the_fraction() {
        // The default timer reads the clock itself: retry when a second
        // boundary falls between the two readings.
        for _ in 0..3 {
            let mut default = String::new();
            fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut default))
                .unwrap();
            let mut ours = String::new();
            UtcMicros.format_time(&mut Writer::new(&mut ours)).unwrap();
            assert_eq!(ours.len(), default.len(), "{ours} vs {default}");
            if ours[..20] == default[..20] {
                assert!(ours.ends_with('Z'), "{ours}");
                return;
            }
        }
        panic!("the timestamps' seconds differed three times in a row");
    }
}
