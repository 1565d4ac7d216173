//! Following `WatchArticles` for one page: the live indicator's state and
//! each change or resync handed to the page, until the page goes away.
//!
//! The reconnecting (backoff 0.5 s doubling to 15 s with jitter, resuming
//! after the last change seen), the heartbeat watchdog and the resync
//! signal are `grpc_browser`'s [`Resumable`](grpc_browser::Resumable); see
//! [`api::watch_articles`]. Every fresh subscription, the first included
//! and any after OUT_OF_RANGE, gives [`LiveEvent::Resync`]: the page
//! reloads what it shows, because changes may have been missed.

use futures::StreamExt as _;
use grpc_browser::{Event, State};
use leptos::prelude::*;

use crate::api::{self, Change};
use crate::task::Latest;

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

impl From<State> for LiveStatus {
    fn from(state: State) -> Self {
        match state {
            State::Connecting => Self::Connecting,
            State::Live => Self::Live,
            State::Reconnecting => Self::Reconnecting,
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
        let mut events = api::watch_articles(tag);
        while let Some(event) = events.next().await {
            match event {
                Event::State(state) => status.set(state.into()),
                Event::Resync => on_event(LiveEvent::Resync),
                Event::Item(change) => on_event(LiveEvent::Change(change)),
            }
        }
    });
}
