//! Following `WatchArticles` for one page: connect, report live /
//! reconnecting, hand each change to the page, and keep the feed going.
//!
//! * A dropped stream is reopened with exponential backoff (0.5 s doubling
//!   to 15 s, with jitter), resuming after the last change seen.
//! * OUT_OF_RANGE (the server no longer retains what we missed) and every
//!   fresh subscription produce [`LiveEvent::Resync`]: the page reloads
//!   what it shows, because changes may have been missed.
//! * The server sends heartbeats (every 15 s by default). A stream that
//!   stays silent for three heartbeat intervals (measured from the
//!   heartbeats seen, 45 s until then) is treated as dead and reopened.
//!
//! Heartbeats carry the newest committed sequence, but the stream resumes
//! only from changes actually received: with a tag filter or a backlog,
//! the heartbeat's sequence may be ahead of what this watcher delivered.

use std::time::Duration;

use futures::future::{Either, select};
use leptos::prelude::*;

use crate::api::{self, Change, ErrorKind};
use crate::task::{Latest, sleep};

/// What the live indicator shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveStatus {
    Connecting,
    Live,
    Reconnecting,
}

impl LiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
        }
    }
}

/// What the page should do.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveEvent {
    /// A created, updated or deleted article.
    Change(Change),
    /// Changes may have been missed: reload what is shown.
    Resync,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
const DEFAULT_SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// Follows the feed (filtered by `tag` when non-empty) until the owning
/// component is cleaned up or `slot` starts something else.
pub fn follow(
    slot: Latest,
    tag: String,
    status: RwSignal<LiveStatus>,
    on_event: impl Fn(LiveEvent) + 'static,
) {
    status.set(LiveStatus::Connecting);
    slot.run(async move {
        let mut after: i64 = 0;
        let mut failures: u32 = 0;
        let mut silence_limit = DEFAULT_SILENCE_LIMIT;
        loop {
            match api::watch_articles(tag.clone(), after).await {
                Ok(mut watch) => {
                    status.set(LiveStatus::Live);
                    failures = 0;
                    if after == 0 {
                        // A fresh subscription: whatever happened before it
                        // opened is not replayed.
                        after = watch.live_from.unwrap_or(0);
                        on_event(LiveEvent::Resync);
                    }
                    let mut last_heartbeat: Option<f64> = None;
                    loop {
                        let next = std::pin::pin!(watch.next());
                        let timer = std::pin::pin!(sleep(silence_limit));
                        match select(next, timer).await {
                            Either::Right(_) => break, // silent too long: dead
                            Either::Left((None, _)) => break,
                            Either::Left((Some(Err(err)), _)) => {
                                if err.kind == ErrorKind::OutOfRange {
                                    after = 0;
                                }
                                break;
                            }
                            Either::Left((Some(Ok((_, Change::Heartbeat))), _)) => {
                                let now = js_sys::Date::now();
                                if let Some(previous) = last_heartbeat {
                                    let interval = Duration::from_millis((now - previous) as u64);
                                    silence_limit = (interval * 3)
                                        .clamp(Duration::from_secs(3), Duration::from_secs(120));
                                }
                                last_heartbeat = Some(now);
                            }
                            Either::Left((Some(Ok((sequence, change))), _)) => {
                                after = after.max(sequence);
                                on_event(LiveEvent::Change(change));
                            }
                        }
                    }
                }
                Err(err) if err.kind == ErrorKind::OutOfRange => {
                    // Resume point expired: subscribe afresh right away.
                    after = 0;
                    continue;
                }
                Err(_) => {}
            }
            status.set(LiveStatus::Reconnecting);
            failures += 1;
            sleep(backoff(failures)).await;
        }
    });
}

/// 0.5 s, 1 s, 2 s, … up to 15 s, each between 50 % and 100 % of that.
fn backoff(failures: u32) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(6));
    let capped = exp.min(MAX_BACKOFF);
    capped.mul_f64(0.5 + js_sys::Math::random() * 0.5)
}
