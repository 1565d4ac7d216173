//! Logging setup: tracing to stderr, text or JSON, filtered by `RUST_LOG`
//! (default `info`). stdout is kept for the lines a person or script reads
//! (the URL and a generated token).
//!
//! Lines go to stderr in batches, written by a logging thread: a call
//! appends its line to a shared buffer (a copy under a mutex: no
//! allocation, no system call, no wake-up of another thread), and the
//! thread, woken by the first line after a quiet spell, lets lines gather
//! for up to [`LINGER`] (10 ms) and writes them with one `write`. Nothing
//! is dropped: past [`FULL`] bytes queued, callers wait for the thread.
//! [`LogGuard::flush`] writes everything queued before it returns, and
//! dropping the guard (a normal exit) writes it all too. Lines still
//! queued when the process is killed (`kill -9`) are lost: at most the
//! last 10 ms.

use std::{
    io::Write,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    EnvFilter,
    field::RecordFields,
    fmt::{
        self, FmtContext, MakeWriter,
        format::{DefaultVisitor, FormatEvent, FormatFields, Writer},
        time::FormatTime,
    },
    prelude::*,
    registry::LookupSpan,
};

use crate::config::LogFormat;

/// Keeps the logging thread running; dropping it writes the queued lines
/// and ends the thread. Hold it until the process exits.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    batches: Option<Batches>,
}

impl LogGuard {
    /// Writes every line logged before this call to stderr before it
    /// returns (for instance before the process ends some other way than
    /// by dropping the guard).
    pub fn flush(&self) {
        if let Some(batches) = &self.batches {
            batches.queue.flush();
        }
    }
}

/// Installs the global subscriber; a second call installs nothing and
/// returns an empty guard.
pub fn init(format: LogFormat) -> LogGuard {
    use std::io::IsTerminal as _;
    // Colours only for a person at a terminal, never into log files.
    let ansi = std::io::stderr().is_terminal();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let batches = Batches::start(Box::new(std::io::stderr()));
    let writer = batches.writer();
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
        batches: installed.is_ok().then_some(batches),
    }
}

/// How long the logging thread lets lines gather after the first one of a
/// batch: under load it wakes about once per `LINGER` instead of once per
/// line or two (tracing-appender's non-blocking writer, which this
/// replaced, woke its thread through a channel for almost every line: a
/// context switch every 12-30 calls). A person tailing the log sees a
/// line at most this much later.
const LINGER: Duration = Duration::from_millis(10);
/// A batch this large is written at once, without waiting out [`LINGER`]:
/// about 10 ms of lines at 70,000 calls per second (64 KiB woke the thread
/// every 5 ms there).
const SOON: usize = 256 * 1024;
/// Queued bytes past which callers wait for the logging thread (the bound
/// on the memory the queue takes when stderr is slower than the logging).
const FULL: usize = 1024 * 1024;

/// The logging thread and its queue.
struct Batches {
    queue: Arc<Queue>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Lines waiting for the logging thread, and where they go.
struct Queue {
    pending: Mutex<Pending>,
    /// The logging thread waits here for a first line, or for a batch to
    /// reach [`SOON`], or for the end.
    wake: Condvar,
    /// Callers wait here while [`FULL`].
    room: Condvar,
    /// stderr. Locked while `pending` is held, before a batch is taken
    /// out of it, so batches are written in the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// The logging thread is waiting for a first line: the next caller
    /// wakes it (only then: a wake-up is a system call).
    idle: bool,
    /// The guard was dropped: the thread writes what is left and ends;
    /// later lines are written by their callers.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock is held leaves whole lines behind: go on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batches {
    /// Starts the logging thread, writing to `out`.
    fn start(out: Box<dyn Write + Send>) -> Self {
        let queue = Arc::new(Queue {
            pending: Mutex::default(),
            wake: Condvar::new(),
            room: Condvar::new(),
            out: Mutex::new(out),
        });
        let thread = std::thread::Builder::new()
            .name("article-log".into())
            .spawn({
                let queue = queue.clone();
                move || queue.run()
            })
            .map_err(|err| eprintln!("no logging thread ({err}): lines are written by callers"))
            .ok();
        if thread.is_none() {
            lock(&queue.pending).closed = true;
        }
        Self { queue, thread }
    }

    fn writer(&self) -> LogWriter {
        LogWriter(self.queue.clone())
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        lock(&self.queue.pending).closed = true;
        self.queue.wake.notify_one();
        self.queue.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Queue {
    /// Queues one line (the fmt layer hands over a whole line at a time).
    fn push(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        while pending.lines.len() >= FULL && !pending.closed {
            pending = self
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if pending.closed {
            let mut out = lock(&self.out);
            drop(pending);
            let _ = out.write_all(line);
            return;
        }
        let before = pending.lines.len();
        pending.lines.extend_from_slice(line);
        if pending.idle {
            pending.idle = false;
            self.wake.notify_one();
        } else if before < SOON && pending.lines.len() >= SOON {
            self.wake.notify_one();
        }
    }

    /// Writes everything queued so far, and waits for a batch the thread
    /// is writing.
    fn flush(&self) {
        let mut pending = lock(&self.pending);
        let lines = std::mem::take(&mut pending.lines);
        let mut out = lock(&self.out);
        drop(pending);
        self.room.notify_all();
        let _ = out.write_all(&lines);
        let _ = out.flush();
    }

    /// The logging thread: once a line comes, a batch every [`LINGER`]
    /// (sooner at [`SOON`]) until a `LINGER` passes without a line. So under
    /// load it sleeps once per batch, on a timer, and callers never wake it.
    fn run(&self) {
        let mut batch = Vec::new();
        let mut pending = lock(&self.pending);
        loop {
            while pending.lines.is_empty() && !pending.closed {
                pending.idle = true;
                pending = self
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            pending.idle = false;
            loop {
                if !pending.closed && pending.lines.len() < SOON {
                    pending = self
                        .wake
                        .wait_timeout_while(pending, LINGER, |p| !p.closed && p.lines.len() < SOON)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                if pending.lines.is_empty() && !pending.closed {
                    // Quiet again: wait for a caller to wake the thread.
                    break;
                }
                let closed = pending.closed;
                let was_full = pending.lines.len() >= FULL;
                // The two buffers take turns, so neither is allocated again.
                std::mem::swap(&mut pending.lines, &mut batch);
                let mut out = lock(&self.out);
                drop(pending);
                if was_full {
                    self.room.notify_all();
                }
                // Nowhere to report a failed write to: the line is lost, as
                // with `eprintln!` to a closed stderr.
                let _ = out.write_all(&batch);
                let _ = out.flush();
                drop(out);
                batch.clear();
                if closed {
                    return;
                }
                pending = lock(&self.pending);
            }
        }
    }
}

/// The fmt layer's writer: each line into the queue.
#[derive(Clone)]
struct LogWriter(Arc<Queue>);

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine(&self.0)
    }
}

struct QueuedLine<'a>(&'a Queue);

impl Write for QueuedLine<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
        let mut visitor = PlainVisitor::new(writer);
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Where a [`PlainVisitor`] writes: the fmt layer's [`Writer`], or the
/// `String` a plain line is put together in (see [`PlainEvent`]).
trait Out: std::fmt::Write {
    fn ansi(&self) -> bool;
    /// A `Writer` into this, for tracing-subscriber's own visitor.
    fn writer(&mut self) -> Writer<'_>;
}

impl Out for Writer<'_> {
    fn ansi(&self) -> bool {
        self.has_ansi_escapes()
    }

    fn writer(&mut self) -> Writer<'_> {
        self.by_ref()
    }
}

impl Out for &mut String {
    fn ansi(&self) -> bool {
        false
    }

    fn writer(&mut self) -> Writer<'_> {
        Writer::new(&mut **self)
    }
}

struct PlainVisitor<W> {
    out: W,
    is_empty: bool,
    result: std::fmt::Result,
}

impl<W: Out> PlainVisitor<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            is_empty: true,
            result: Ok(()),
        }
    }

    fn plain(&self, field: &Field) -> bool {
        let name = field.name();
        !self.out.ansi()
            && name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
    }

    fn delegate(&mut self) -> DefaultVisitor<'_> {
        let visitor = DefaultVisitor::new(self.out.writer(), self.is_empty);
        self.is_empty = false;
        visitor
    }
}

impl<W: Out> Visit for PlainVisitor<W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if field.name() == "message" && !self.out.ansi() && !escaped(value) {
            // A message given as a string (the call log's `call`): the
            // default writes it through `format_args!` and an escaping
            // writer char by char; without anything to escape that is the
            // text itself.
            let pad = if self.is_empty { "" } else { " " };
            self.is_empty = false;
            self.result = self
                .out
                .write_str(pad)
                .and_then(|()| self.out.write_str(value));
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

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_err() {
            return;
        }
        if let Some(millionths) = millionths(value).filter(|_| self.plain(field)) {
            // `{:?}` of an f64 goes through the shortest round-trip digit
            // search (~1,000 instructions of the call log's line, for
            // `duration_ms`); a whole number of millionths is written
            // from that integer instead, the same text.
            let mut buffer = [0; 24];
            let text = millionths_text(millionths, &mut buffer);
            self.write_plain(field, |writer| writer.write_str(text));
        } else {
            self.record_debug(field, &value);
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

/// `value` as a whole number of millionths, when it is one (the call log's
/// `duration_ms`: nanoseconds / 1e6) and `{value:?}` writes it in decimals.
///
/// Why the text is then `{value:?}`'s: `{:?}` writes the shortest decimal
/// that reads back as `value` (in decimals from 1e-4 up to 1e16, as
/// here). `value` is the double nearest to `n / 1e6`, a decimal of at
/// most 15 significant digits (`n` < 1e15); distinct decimals of at most
/// 15 digits read back as distinct doubles, so no other decimal as short
/// reads back as `value`, and none shorter does either (it would be one
/// of them). So the shortest is `n / 1e6` itself, trailing zeros dropped.
fn millionths(value: f64) -> Option<u64> {
    // Below 1e-4 `{:?}` switches to an exponent (`5e-5`).
    if !(1e-4..1e9).contains(&value) {
        return None;
    }
    // Exact for the `n` looked for: far below 2^53.
    let n = (value * 1e6).round() as u64;
    (n as f64 / 1e6 == value).then_some(n)
}

/// `n / 1e6` in decimals, at least one after the point (`1.0`, `0.0875`).
fn millionths_text(n: u64, buffer: &mut [u8; 24]) -> &str {
    let mut at = buffer.len();
    let mut whole = n / 1_000_000;
    let mut fraction = n % 1_000_000;
    let mut digits = 6;
    while digits > 1 && fraction.is_multiple_of(10) {
        fraction /= 10;
        digits -= 1;
    }
    for _ in 0..digits {
        at -= 1;
        buffer[at] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    at -= 1;
    buffer[at] = b'.';
    loop {
        at -= 1;
        buffer[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    // Only ASCII digits and a point were written.
    std::str::from_utf8(&buffer[at..]).unwrap_or("0.0")
}

/// Whether tracing-subscriber's message escaping would change `text`: it
/// writes ESC, BEL, BS, FF, DEL and the C1 controls (U+0080 to U+009F)
/// as escapes.
fn escaped(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(
            c,
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
        )
    })
}

impl<W: Out> PlainVisitor<W> {
    /// ` name=` (no space before the first field), then the value.
    fn write_plain(&mut self, field: &Field, value: impl FnOnce(&mut W) -> std::fmt::Result) {
        let pad = if self.is_empty { "" } else { " " };
        self.is_empty = false;
        self.result = self
            .out
            .write_str(pad)
            .and_then(|()| self.out.write_str(field.name()))
            .and_then(|()| self.out.write_char('='))
            .and_then(|()| value(&mut self.out));
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

impl<S, T> FormatEvent<S, PlainFields> for PlainEvent<T>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, PlainFields>,
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
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        // The line is put together in a `String` of this thread and handed
        // over with one `write_str`: every write through `Writer` is a call
        // through `dyn fmt::Write` (~30 instructions, ~30 of them a line).
        // An event logged while a line is being put together (from a
        // field's `Debug`) gets a `String` of its own.
        LINE.with(|kept| {
            let mut own = String::new();
            let mut borrowed = kept.try_borrow_mut().ok();
            let line = match &mut borrowed {
                Some(kept) => {
                    kept.clear();
                    &mut **kept
                }
                None => &mut own,
            };
            if self.timer.format_time(&mut Writer::new(line)).is_err() {
                line.push_str("<unknown time>");
            }
            line.push(' ');
            line.push_str(match *meta.level() {
                tracing::Level::TRACE => "TRACE",
                tracing::Level::DEBUG => "DEBUG",
                tracing::Level::INFO => " INFO",
                tracing::Level::WARN => " WARN",
                tracing::Level::ERROR => "ERROR",
            });
            line.push(' ');
            line.push_str(meta.target());
            line.push_str(": ");
            // What `ctx.format_fields` does with `PlainFields`, into `line`.
            let mut fields = PlainVisitor::new(&mut *line);
            event.record(&mut fields);
            fields.result?;
            line.push('\n');
            writer.write_str(line)
        })
    }
}

/// The fmt layer's default timestamp, `2026-11-30T22:53:41.123456Z` (UTC,
/// microseconds). The date and time of day change once a second: each
/// thread keeps the text of the last second it formatted (humantime's) and
/// writes only the microseconds itself, the whole stamp with one
/// `write_str`. The default timer (`fmt::time::SystemTime`) writes the same
/// text field by field through `write!` with padding (~2,400 instructions
/// per line); humantime formatting every stamp whole took ~500. Outside
/// what humantime formats (before 1970, after 9999) it hands over to the
/// default timer.
#[derive(Clone, Copy, Debug, Default)]
struct UtcMicros;

/// 9999-12-31T23:59:59Z, humantime's last second.
const LAST_SECOND: u64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`
const STAMP_LEN: usize = 27;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) if since.as_secs() <= LAST_SECOND => {
                let stamp = stamp(since);
                w.write_str(std::str::from_utf8(&stamp).map_err(|_| std::fmt::Error)?)
            }
            _ => fmt::time::SystemTime.format_time(w),
        }
    }
}

thread_local! {
    /// The last second this thread stamped, and its text up to the `.`.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> =
        const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// The stamp of `since` (after the epoch, at most [`LAST_SECOND`]).
fn stamp(since: Duration) -> [u8; STAMP_LEN] {
    let secs = since.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        let text =
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs))
                .to_string();
        prefix.copy_from_slice(&text.as_bytes()[..19]);
        SECOND.set((secs, prefix));
    }
    let mut stamp = [0; STAMP_LEN];
    stamp[..19].copy_from_slice(&prefix);
    stamp[19] = b'.';
    let mut micros = since.subsec_micros();
    for digit in stamp[20..26].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    stamp[26] = b'Z';
    stamp
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
            tracing::info!(target: "grpc", message = "call", method = %method, status = "OK", duration_ms = 0.087_123_f64, request_id = %"fixed", protocol = "grpc-web");
            tracing::info!(
                message = "bell \x07 and \u{9b} C1",
                zero = 0.0_f64,
                minus_zero = -0.0_f64,
                small = 1e-5_f64,
                edge = 1e-4_f64,
                big = 1e16_f64,
                below_big = 9_999_999_999_999_998.0_f64,
                whole = 123.0_f64,
                nan = f64::NAN,
                inf = f64::INFINITY,
                negative = -2.5_f64
            );
            tracing::info!(message = "", after = 1_u64);
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
            tracing::info!(target: "grpc", message = "call", method = %method, status = "OK", duration_ms = 1.5_f64, request_id = %"fixed", protocol = "grpc", );
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
            assert_eq!(default.lines().count(), 7, "{default}");
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
    fn whole_millionths_are_written_as_debug_writes_them() {
        let text = |n| millionths_text(n, &mut [0; 24]).to_owned();
        // Durations as the call log makes them (nanoseconds / 1e6), then
        // any bit pattern (a fixed-seed generator: the same values every
        // run): written from the integer, the text is `{:?}`'s.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(12);
        let mut fast = 0;
        for i in 0..600_000_u64 {
            let value = match i % 3 {
                0 => rand::Rng::random_range(&mut rng, 0..2_000_000_000_u64) as f64 / 1e6,
                1 => rand::Rng::random_range(&mut rng, 0..1_000_000_000_000_000_u64) as f64 / 1e6,
                _ => f64::from_bits(rand::Rng::random(&mut rng)),
            };
            if let Some(n) = millionths(value) {
                fast += 1;
                assert_eq!(text(n), format!("{value:?}"), "{:#x}", value.to_bits());
            }
        }
        assert!(fast > 390_000, "{fast}");
        for (value, expected) in [
            (1e-4, Some("0.0001")),
            (1.0, Some("1.0")),
            (0.0875, Some("0.0875")),
            (999_999_999.999_999, Some("999999999.999999")),
            (1e9, None),
            (9.9e-5, None),
            (0.0, None),
            (0.1 * 3.0, None),
            (f64::NAN, None),
            (-1.0, None),
        ] {
            assert_eq!(
                millionths(value).map(text).as_deref(),
                expected,
                "{value:?}"
            );
            if let Some(expected) = expected {
                assert_eq!(format!("{value:?}"), expected);
            }
        }
    }

    #[test]
    fn the_stamp_is_humantimes_with_microseconds_at_any_time() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let mut times: Vec<Duration> = (0..20_000)
            .map(|_| {
                Duration::new(
                    rand::Rng::random_range(&mut rng, 0..=LAST_SECOND),
                    rand::Rng::random_range(&mut rng, 0..1_000_000_000),
                )
            })
            .collect();
        // The same second again (the kept text), and the edges.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        times.extend([
            now,
            now + Duration::from_micros(1),
            now + Duration::from_secs(1),
            Duration::ZERO,
            Duration::new(LAST_SECOND, 999_999_999),
            Duration::new(951_782_400, 999), // 2000-02-29
        ]);
        for since in times {
            let expected =
                humantime::format_rfc3339_micros(std::time::UNIX_EPOCH + since).to_string();
            assert_eq!(
                std::str::from_utf8(&stamp(since)).unwrap(),
                expected,
                "{since:?}"
            );
        }
    }

    /// An output that can be held: writes wait while it is.
    #[derive(Clone, Default)]
    struct Gate {
        buf: Buf,
        held: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Gate {
        fn hold(&self, held: bool) {
            *self.held.0.lock().unwrap() = held;
            self.held.1.notify_all();
        }
    }

    impl std::io::Write for Gate {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.held;
            let _open = cv.wait_while(lock.lock().unwrap(), |held| *held).unwrap();
            self.buf.write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(buf: &Buf) -> String {
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn every_line_queued_before_the_guard_drops_is_written_in_order() {
        let out = Buf::default();
        let batches = Batches::start(Box::new(out.clone()));
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let writer = batches.writer();
                scope.spawn(move || {
                    for line in 0..5_000 {
                        writer
                            .make_writer()
                            .write_all(format!("{thread} {line}\n").as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(batches);
        let text = text(&out);
        let mut next = [0; 4];
        for line in text.lines() {
            let (thread, n) = line.split_once(' ').unwrap();
            let thread: usize = thread.parse().unwrap();
            assert_eq!(n.parse::<usize>().unwrap(), next[thread], "{line}");
            next[thread] += 1;
        }
        assert_eq!(next, [5_000; 4]);
    }

    #[test]
    fn flush_has_written_every_earlier_line_when_it_returns() {
        let out = Buf::default();
        let batches = Batches::start(Box::new(out.clone()));
        let writer = batches.writer();
        for round in 0..100 {
            writer
                .make_writer()
                .write_all(format!("line {round}\n").as_bytes())
                .unwrap();
            batches.queue.flush();
            assert!(
                text(&out).ends_with(&format!("line {round}\n")),
                "round {round}"
            );
        }
        let guard = LogGuard {
            batches: Some(batches),
        };
        writer.make_writer().write_all(b"last\n").unwrap();
        guard.flush();
        assert!(text(&out).ends_with("line 99\nlast\n"));
    }

    #[test]
    fn a_full_queue_holds_callers_back_and_loses_nothing() {
        let gate = Gate::default();
        let out = gate.buf.clone();
        gate.hold(true);
        let batches = Batches::start(Box::new(gate.clone()));
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let lines = 4 * FULL / line.len();
        std::thread::scope(|scope| {
            let writer = batches.writer();
            let writing = scope.spawn(move || {
                for _ in 0..lines {
                    writer.make_writer().write_all(&line).unwrap();
                }
            });
            // The writer cannot be done while stderr is held: four times
            // what the queue holds does not fit in it and the one batch
            // the logging thread is stuck writing.
            wait_until(|| lock(&batches.queue.pending).lines.len() >= FULL);
            assert!(!writing.is_finished());
            gate.hold(false);
            writing.join().unwrap();
        });
        drop(batches);
        assert_eq!(out.0.lock().unwrap().len(), lines * 1024);
    }

    #[test]
    fn lines_after_the_guard_dropped_are_written_by_their_callers() {
        let out = Buf::default();
        let batches = Batches::start(Box::new(out.clone()));
        let writer = batches.writer();
        writer.make_writer().write_all(b"before\n").unwrap();
        drop(batches);
        writer.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(text(&out), "before\nafter\n");
    }

    /// Waits for `condition`, which another thread makes true.
    fn wait_until(condition: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !condition() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "condition not met in 30 s"
            );
            std::thread::yield_now();
        }
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
