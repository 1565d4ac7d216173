//! Server streams that survive a lost connection: reopen with capped
//! exponential backoff and jitter, resume after the last item delivered,
//! declare a silent stream dead, and say when the caller must resync.

use std::{collections::VecDeque, future::Future, pin::pin, time::Duration};

use futures::{
    future::{Either, select},
    stream::{self, LocalBoxStream, StreamExt as _},
};
use tonic::{Code, Response, Status, Streaming, metadata::MetadataMap};

use crate::time::{now_ms, sleep};

/// What a [`Resumable`] needs to know about one kind of server stream: how
/// to open it after a cursor, and how to read an item's cursor.
///
/// A cursor is an `i64` that grows along the stream (a sequence number, a
/// log offset). Resuming "after cursor c" must deliver every item after c
/// that the server still retains, and fail with `OUT_OF_RANGE` when it no
/// longer retains them all.
pub trait Resume {
    /// The stream's message.
    type Item;

    /// Calls the server-streaming method, asking for the items after
    /// `after`, or from now on when `None`.
    ///
    /// Set no deadline on the request: it would end a healthy stream.
    /// Opening has its own limit ([`Resumable::open_timeout`]).
    fn open(
        &mut self,
        after: Option<i64>,
    ) -> impl Future<Output = Result<Response<Streaming<Self::Item>>, Status>>;

    /// The cursor of `item`, if it has one. Not asked of heartbeats.
    fn cursor(&self, item: &Self::Item) -> Option<i64>;

    /// Whether `item` is a heartbeat: proof of life, not delivered, and its
    /// cursor is not used (a heartbeat may announce a position ahead of
    /// what this stream has delivered). Default: no item is.
    fn is_heartbeat(&self, item: &Self::Item) -> bool {
        let _ = item;
        false
    }

    /// For a stream opened from now on: the cursor it starts after, when
    /// the server says so in the response headers, so that a stream lost
    /// before its first item still resumes without a gap. Default: none
    /// (then a stream lost before its first item restarts from now on and
    /// reports [`Event::Resync`] again).
    fn opening_cursor(&self, metadata: &MetadataMap) -> Option<i64> {
        let _ = metadata;
        None
    }
}

/// What a resumable stream yields.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<T> {
    /// The connection state changed.
    State(State),
    /// The stream (re)started from now on, so items may have been missed:
    /// reload whatever the stream keeps up to date. Comes after each
    /// stream opened without a cursor, the first one included, and so
    /// after an `OUT_OF_RANGE` (the resume point was no longer retained).
    Resync,
    /// An item from the server (never a heartbeat).
    Item(T),
}

/// The connection state, for an indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Opening the first stream.
    Connecting,
    /// A stream is open and delivering.
    Live,
    /// The stream was lost; waiting to reopen it, or reopening.
    Reconnecting,
}

/// A server stream that is reopened whenever it is lost, until dropped.
///
/// ```text
/// Resumable::new(source)                      // a `Resume` implementation
///     .backoff(Duration::from_millis(500), Duration::from_secs(15))
///     .silence_limit(Duration::from_secs(45))
///     .stream()                               // Stream<Item = Event<_>>
/// ```
///
/// * A stream that ends, fails or stays silent longer than the silence
///   limit is lost: [`State::Reconnecting`], then reopened after a backoff
///   that starts at `first`, doubles per failed attempt up to `max`, and is
///   shortened by a random part of up to `jitter` (default 0.5: each wait is
///   50–100 % of the nominal one) so that many clients do not come back at
///   once. A successful open resets it.
/// * Reopening asks for the items after the last item delivered.
///   `OUT_OF_RANGE` (the server no longer has them all) drops the cursor:
///   the stream is reopened from now on (at once if it was the opening that
///   failed), and [`Event::Resync`] follows.
/// * Any item, heartbeats included, proves the stream alive. Once two
///   heartbeats have arrived, the silence limit becomes three heartbeat
///   intervals (between 3 s and 120 s), following the server's rhythm.
/// * Opening has its own limit, 45 s by default: Firefox resolves a
///   `fetch` only with the first bytes of the body, so there opening a
///   quiet stream lasts until the server's first heartbeat.
///
/// Dropping the stream aborts the open `fetch`.
pub struct Resumable<R> {
    source: R,
    first_backoff: Duration,
    max_backoff: Duration,
    jitter: f64,
    silence_limit: Duration,
    open_timeout: Duration,
    after: Option<i64>,
}

impl<R> Resumable<R>
where
    R: Resume + 'static,
    R::Item: 'static,
{
    /// Backoff 0.5 s doubling to 15 s with jitter 0.5, silence limit and
    /// open timeout 45 s, starting from now on.
    pub fn new(source: R) -> Self {
        Self {
            source,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(15),
            jitter: 0.5,
            silence_limit: Duration::from_secs(45),
            open_timeout: Duration::from_secs(45),
            after: None,
        }
    }

    /// The wait before the first reopening attempt, and the most any wait
    /// grows to.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// The largest part (0 to 1) of each wait left out at random.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// How long a stream may stay silent before it counts as lost (until
    /// heartbeats set the pace).
    pub fn silence_limit(mut self, limit: Duration) -> Self {
        self.silence_limit = limit;
        self
    }

    /// How long opening may take: until the response headers, or in
    /// Firefox until the first message. Keep it above the server's
    /// heartbeat interval.
    pub fn open_timeout(mut self, limit: Duration) -> Self {
        self.open_timeout = limit;
        self
    }

    /// Starts by resuming after `cursor` (one saved earlier) instead of
    /// from now on. No [`Event::Resync`] unless that fails.
    pub fn after(mut self, cursor: i64) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The events: [`State::Connecting`] first, then items, state changes
    /// and resyncs. It never ends; drop it to stop.
    pub fn stream(self) -> LocalBoxStream<'static, Event<R::Item>> {
        let machine = Machine {
            silence: self.silence_limit,
            config: self,
            failures: 0,
            wait: None,
            state: State::Connecting,
            queue: VecDeque::from([Event::State(State::Connecting)]),
            stream: None,
            last_heartbeat: None,
        };
        stream::unfold(machine, |mut machine| async move {
            let event = machine.next().await;
            Some((event, machine))
        })
        .boxed_local()
    }
}

struct Machine<R: Resume> {
    config: Resumable<R>,
    /// The current silence limit (adapted to heartbeats).
    silence: Duration,
    /// Failed attempts since the last successful open.
    failures: u32,
    /// The backoff to wait before the next attempt.
    wait: Option<Duration>,
    /// The state last reported.
    state: State,
    queue: VecDeque<Event<R::Item>>,
    stream: Option<Streaming<R::Item>>,
    last_heartbeat: Option<f64>,
}

impl<R: Resume> Machine<R> {
    async fn next(&mut self) -> Event<R::Item> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return event;
            }
            let Some(stream) = self.stream.as_mut() else {
                self.open().await;
                continue;
            };
            let received = {
                let message = pin!(stream.message());
                let timer = pin!(sleep(self.silence));
                match select(message, timer).await {
                    Either::Left((received, _)) => received,
                    Either::Right(_) => Ok(None), // silent too long: as good as ended
                }
            };
            match received {
                Ok(Some(item)) if self.config.source.is_heartbeat(&item) => self.heartbeat(),
                Ok(Some(item)) => {
                    if let Some(cursor) = self.config.source.cursor(&item) {
                        self.config.after =
                            Some(self.config.after.map_or(cursor, |a| a.max(cursor)));
                    }
                    return Event::Item(item);
                }
                Err(status) if status.code() == Code::OutOfRange => {
                    self.config.after = None;
                    self.lost();
                }
                Ok(None) | Err(_) => self.lost(),
            }
        }
    }

    async fn open(&mut self) {
        if let Some(wait) = self.wait.take() {
            sleep(wait).await;
        }
        let after = self.config.after;
        let opened = {
            let open = pin!(self.config.source.open(after));
            let timer = pin!(sleep(self.config.open_timeout));
            match select(open, timer).await {
                Either::Left((opened, _)) => Some(opened),
                Either::Right(_) => None,
            }
        };
        match opened {
            Some(Ok(response)) => {
                self.failures = 0;
                if after.is_none() {
                    self.config.after = self.config.source.opening_cursor(response.metadata());
                }
                self.stream = Some(response.into_inner());
                self.last_heartbeat = None;
                self.report(State::Live);
                if after.is_none() {
                    self.queue.push_back(Event::Resync);
                }
            }
            // The resume point is gone: start from now on, right away.
            Some(Err(status)) if status.code() == Code::OutOfRange && after.is_some() => {
                self.config.after = None;
            }
            _ => self.lost(),
        }
    }

    /// The stream, or the attempt to open one, failed.
    fn lost(&mut self) {
        self.stream = None;
        self.failures = self.failures.saturating_add(1);
        let config = &self.config;
        self.wait = Some(backoff(
            config.first_backoff,
            config.max_backoff,
            config.jitter,
            self.failures,
            js_sys::Math::random(),
        ));
        self.report(State::Reconnecting);
    }

    fn heartbeat(&mut self) {
        let now = now_ms();
        if let Some(previous) = self.last_heartbeat {
            let interval = Duration::from_millis((now - previous).max(0.0) as u64);
            self.silence = (interval * 3).clamp(Duration::from_secs(3), Duration::from_secs(120));
        }
        self.last_heartbeat = Some(now);
    }

    fn report(&mut self, state: State) {
        if self.state != state {
            self.state = state;
            self.queue.push_back(Event::State(state));
        }
    }
}

/// The wait after `failures` failed attempts (≥ 1): `first` doubled per
/// earlier failure, capped at `max`, less `jitter × random` of it
/// (`random` in [0, 1)).
fn backoff(first: Duration, max: Duration, jitter: f64, failures: u32, random: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let nominal = first.saturating_mul(1 << doublings).min(max);
    nominal.mul_f64(1.0 - jitter * random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const MS: Duration = Duration::from_millis(1);

    #[wasm_bindgen_test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<_> = (1..=7)
            .map(|n| backoff(500 * MS, 15_000 * MS, 0.0, n, 0.9))
            .collect();
        let expected = [500, 1000, 2000, 4000, 8000, 15_000, 15_000].map(|ms| ms * MS);
        assert_eq!(waits, expected);
        assert_eq!(
            backoff(500 * MS, 15_000 * MS, 0.0, u32::MAX, 0.0),
            15_000 * MS
        );
    }

    #[wasm_bindgen_test]
    fn jitter_shortens_by_up_to_its_fraction() {
        assert_eq!(backoff(1000 * MS, 1000 * MS, 0.5, 1, 0.0), 1000 * MS);
        assert_eq!(backoff(1000 * MS, 1000 * MS, 0.5, 1, 0.5), 750 * MS);
        assert!(backoff(1000 * MS, 1000 * MS, 0.5, 1, 0.999_999) > 500 * MS);
        assert_eq!(backoff(1000 * MS, 1000 * MS, 1.0, 1, 0.25), 750 * MS);
    }
}
