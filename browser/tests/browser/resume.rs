//! [`grpc_browser::Resumable`] following `WatchArticles`: states, resync,
//! resuming after the last item, heartbeats, the silence watchdog,
//! OUT_OF_RANGE, backoff, cancellation.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use futures::{
    StreamExt as _,
    future::{Either, select},
    stream::LocalBoxStream,
};
use grpc_browser::{Client, Event, Resumable, Resume, State, sleep};
use proto::v1::{self as pb, article_event::Event as Change};
use tonic::{Code, Response, Status, Streaming, metadata::MetadataMap};
use wasm_bindgen_test::wasm_bindgen_test;

use crate::{
    Articles, create, create_at, drain_url, now, server_url, unique, wait_for_watchers, within,
};

type Events = LocalBoxStream<'static, Event<pb::ArticleEvent>>;

/// One call of [`Resume::open`], as the test saw it.
#[derive(Clone, Debug)]
struct Open {
    after: Option<i64>,
    started: f64,
    ended: f64,
    ok: bool,
}

/// What the crate asked of the [`Feed`] (shared with the test).
#[derive(Clone, Default)]
struct Log {
    opens: Rc<RefCell<Vec<Open>>>,
    heartbeats: Rc<Cell<u32>>,
    last_heartbeat_sequence: Rc<Cell<i64>>,
    last_heartbeat_at: Rc<Cell<f64>>,
    opening_cursor: Rc<Cell<Option<i64>>>,
}

impl Log {
    fn opens(&self) -> Vec<Open> {
        self.opens.borrow().clone()
    }
}

/// `WatchArticles` for one tag, recording what the crate does with it.
struct Feed {
    client: Articles,
    tag: String,
    log: Log,
}

impl Resume for Feed {
    type Item = pb::ArticleEvent;

    async fn open(
        &mut self,
        after: Option<i64>,
    ) -> Result<Response<Streaming<pb::ArticleEvent>>, Status> {
        let started = now();
        let result = self
            .client
            .watch_articles(pb::WatchArticlesRequest {
                tag: self.tag.clone(),
                after_sequence: after.unwrap_or(0),
            })
            .await;
        self.log.opens.borrow_mut().push(Open {
            after,
            started,
            ended: now(),
            ok: result.is_ok(),
        });
        result
    }

    fn cursor(&self, event: &pb::ArticleEvent) -> Option<i64> {
        Some(event.sequence)
    }

    fn is_heartbeat(&self, event: &pb::ArticleEvent) -> bool {
        let heartbeat = matches!(event.event, Some(Change::Heartbeat(_)));
        if heartbeat {
            // It carries the newest sequence, ahead of what this tag's
            // stream delivered: the crate must not resume from it.
            self.log.heartbeats.set(self.log.heartbeats.get() + 1);
            self.log.last_heartbeat_sequence.set(event.sequence);
            self.log.last_heartbeat_at.set(now());
        }
        heartbeat
    }

    fn opening_cursor(&self, metadata: &MetadataMap) -> Option<i64> {
        let cursor = metadata
            .get(proto::WATCH_SEQUENCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .filter(|&sequence: &i64| sequence > 0);
        self.log.opening_cursor.set(cursor);
        cursor
    }
}

fn feed(url: &str, tag: &str) -> (Feed, Log) {
    let log = Log::default();
    let feed = Feed {
        client: Articles::new(Client::new(url)),
        tag: tag.to_owned(),
        log: log.clone(),
    };
    (feed, log)
}

async fn next(events: &mut Events) -> Event<pb::ArticleEvent> {
    within("the next event", events.next())
        .await
        .expect("a resumable stream never ends")
}

/// Asserts the next events are exactly `expected`.
async fn expect_events(events: &mut Events, expected: &[Event<pb::ArticleEvent>]) {
    for want in expected {
        assert_eq!(&next(events).await, want);
    }
}

/// The next item, skipping state changes; panics on a resync.
async fn next_item(events: &mut Events) -> pb::ArticleEvent {
    loop {
        match next(events).await {
            Event::Item(item) => return item,
            Event::State(_) => continue,
            Event::Resync => panic!("unexpected resync"),
        }
    }
}

/// Asserts that no event comes for `duration`.
async fn expect_quiet(events: &mut Events, duration: Duration) {
    if let Either::Left((event, _)) = select(events.next(), sleep(duration)).await {
        panic!("expected no event for {duration:?}, got {event:?}");
    }
}

const CONNECTING: Event<pb::ArticleEvent> = Event::State(State::Connecting);
const LIVE: Event<pb::ArticleEvent> = Event::State(State::Live);
const RECONNECTING: Event<pb::ArticleEvent> = Event::State(State::Reconnecting);

#[wasm_bindgen_test]
async fn a_resumable_stream_connects_resyncs_and_delivers_items() {
    let tag = unique("resumable");
    let (feed, log) = feed(server_url(), &tag);
    let mut events = Resumable::new(feed).stream();
    expect_events(&mut events, &[CONNECTING, LIVE, Event::Resync]).await;

    let created = create(&tag).await;
    let item = next_item(&mut events).await;
    assert_eq!(item.event, Some(Change::Created(created)));
    let opens = log.opens();
    assert_eq!(opens.len(), 1, "{opens:?}");
    assert_eq!(opens[0].after, None);
}

#[wasm_bindgen_test]
async fn heartbeats_keep_a_stream_live_and_are_not_delivered() {
    // Silence limit 1.5 s, heartbeats every second: never silent too long.
    let (feed, log) = feed(server_url(), &unique("heartbeats"));
    let mut events = Resumable::new(feed)
        .silence_limit(Duration::from_millis(1500))
        .stream();
    expect_events(&mut events, &[CONNECTING, LIVE, Event::Resync]).await;
    expect_quiet(&mut events, Duration::from_millis(3500)).await;
    assert!(
        log.heartbeats.get() >= 3,
        "{} heartbeats",
        log.heartbeats.get()
    );
    assert_eq!(log.opens().len(), 1, "the stream was reopened");
}

#[wasm_bindgen_test]
async fn a_silent_stream_is_lost_after_the_silence_limit() {
    // Silence limit 0.4 s, heartbeats every second: the watchdog fires
    // before the next heartbeat. (Firefox resolves `fetch` only with the
    // first body bytes, so there the first heartbeat comes with Live.)
    let (feed, log) = feed(server_url(), &unique("silent"));
    let mut events = Resumable::new(feed)
        .silence_limit(Duration::from_millis(400))
        .backoff(Duration::from_secs(5), Duration::from_secs(5))
        .stream();
    expect_events(&mut events, &[CONNECTING, LIVE]).await;
    let live = now();
    expect_events(&mut events, &[Event::Resync, RECONNECTING]).await;
    let silent = now() - live.max(log.last_heartbeat_at.get());
    assert!(
        (400.0..950.0).contains(&silent),
        "declared lost after {silent} ms of silence; the limit is 400 ms"
    );
    assert!(
        log.heartbeats.get() <= 1,
        "{} heartbeats",
        log.heartbeats.get()
    );
    assert_eq!(log.opens().len(), 1);
}

#[wasm_bindgen_test]
async fn a_lost_stream_resumes_after_the_last_item_delivered() {
    // The watchdog (0.4 s, shorter than the heartbeat interval) makes every
    // stream lost soon after it opens; an item written while none is open
    // can only arrive by resuming.
    let tag = unique("resume");
    let (feed, log) = feed(server_url(), &tag);
    let mut events = Resumable::new(feed)
        .silence_limit(Duration::from_millis(400))
        .backoff(Duration::from_millis(300), Duration::from_millis(300))
        .jitter(0.0)
        .stream();
    expect_events(&mut events, &[CONNECTING, LIVE, Event::Resync]).await;

    let first = create(&tag).await;
    let item = next_item(&mut events).await;
    assert_eq!(item.event, Some(Change::Created(first)));
    let cursor = item.sequence;

    // The stream is dropped before Reconnecting is reported.
    assert_eq!(next(&mut events).await, RECONNECTING);
    let second = create(&tag).await;
    expect_events(&mut events, &[LIVE]).await;
    let item = next_item(&mut events).await;
    assert_eq!(item.event, Some(Change::Created(second)), "not resumed");
    let opens = log.opens();
    assert_eq!(
        opens.last().map(|o| o.after),
        Some(Some(cursor)),
        "{opens:?}"
    );
}

#[wasm_bindgen_test]
async fn a_stream_lost_before_its_first_item_resumes_from_the_opening_cursor() {
    create(&unique("seed")).await; // so that the server's sequence is > 0
    let (feed, log) = feed(server_url(), &unique("opening"));
    let mut events = Resumable::new(feed)
        .silence_limit(Duration::from_millis(400))
        .backoff(Duration::from_millis(300), Duration::from_millis(300))
        .jitter(0.0)
        .stream();
    // Lost without an item, reopened: resumed, so no second resync.
    expect_events(
        &mut events,
        &[
            CONNECTING,
            LIVE,
            Event::Resync,
            RECONNECTING,
            LIVE,
            RECONNECTING,
        ],
    )
    .await;
    let opening = log.opening_cursor.get();
    assert!(opening.is_some(), "no x-watch-sequence header");
    let afters: Vec<_> = log.opens().iter().map(|o| o.after).collect();
    assert_eq!(afters, [None, opening]);
}

#[wasm_bindgen_test]
async fn out_of_range_resyncs_and_starts_afresh() {
    // A saved cursor the server never reached: OUT_OF_RANGE on opening,
    // then at once a fresh stream, and a resync.
    let tag = unique("out-of-range");
    let (feed, log) = feed(server_url(), &tag);
    let ahead = i64::MAX / 2;
    let mut events = Resumable::new(feed).after(ahead).stream();
    expect_events(&mut events, &[CONNECTING, LIVE, Event::Resync]).await;
    let opens = log.opens();
    let afters: Vec<_> = opens.iter().map(|o| (o.after, o.ok)).collect();
    assert_eq!(afters, [(Some(ahead), false), (None, true)]);

    let created = create(&tag).await;
    let item = next_item(&mut events).await;
    assert_eq!(item.event, Some(Change::Created(created)));
}

#[wasm_bindgen_test]
async fn dropping_a_resumable_stream_ends_it_on_the_server() {
    wait_for_watchers(0.0, "before opening").await;
    let (feed, _log) = feed(server_url(), &unique("drop-resumable"));
    let mut events = Resumable::new(feed).stream();
    expect_events(&mut events, &[CONNECTING, LIVE]).await;
    wait_for_watchers(1.0, "while the stream is open").await;
    drop(events);
    wait_for_watchers(0.0, "after dropping the stream").await;
}

#[wasm_bindgen_test]
async fn a_server_shutdown_ends_streams_and_the_resumable_one_retries_with_backoff_from_its_last_item()
 {
    // The drain server: the xtask stops it (SIGTERM) once it has seen a
    // GetArticle call; its change feed then ends every stream with
    // UNAVAILABLE, and the server goes away.
    let mut raw = within(
        "opening WatchArticles on the drain server",
        Articles::new(Client::new(drain_url())).watch_articles(pb::WatchArticlesRequest {
            tag: String::new(),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();

    let tag = unique("drain");
    let (feed, log) = feed(drain_url(), &tag);
    let mut events = Resumable::new(feed)
        .backoff(Duration::from_millis(200), Duration::from_millis(800))
        .jitter(0.0)
        .open_timeout(Duration::from_secs(3))
        .stream();
    expect_events(&mut events, &[CONNECTING, LIVE, Event::Resync]).await;

    let ours = create_at(drain_url(), &tag).await;
    let item = next_item(&mut events).await;
    assert_eq!(item.event, Some(Change::Created(ours)));
    let cursor = item.sequence;

    // A change on another tag moves the server's newest sequence past the
    // cursor; wait until a heartbeat announcing it reached the resumable
    // stream (which does not deliver it).
    let other = create_at(drain_url(), &unique("drain-other")).await;
    let newest = loop {
        let event = within("the raw stream's next event", raw.message())
            .await
            .expect("raw stream failed")
            .expect("raw stream ended");
        if event.event == Some(Change::Created(other.clone())) {
            break event.sequence;
        }
    };
    assert!(newest > cursor);
    let announced = async {
        while log.last_heartbeat_sequence.get() < newest {
            sleep(Duration::from_millis(20)).await;
        }
    };
    match within(
        "a heartbeat with the newest sequence",
        select(events.next(), std::pin::pin!(announced)),
    )
    .await
    {
        Either::Left((event, _)) => panic!("unexpected event {event:?}"),
        Either::Right(_) => {}
    }

    // The signal for the xtask to stop this server.
    let status = within(
        "GetArticle on the drain server",
        Articles::new(Client::new(drain_url())).get_article(pb::GetArticleRequest { id: i64::MAX }),
    )
    .await
    .expect_err("the drain server has no such article");
    assert_eq!(status.code(), Code::NotFound);

    // A trailer after the data ends the raw stream.
    let status = within("the end of the raw stream", async {
        loop {
            match raw.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without an error status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("shutting down"),
        "{:?}",
        status.message()
    );

    // The resumable stream is lost and retried, resuming after its item,
    // every 0.2, 0.4, 0.8, 0.8 … s while the server is gone.
    assert_eq!(next(&mut events).await, RECONNECTING);
    let lost = now();
    expect_quiet(&mut events, Duration::from_millis(3500)).await;
    let retries: Vec<Open> = log.opens().into_iter().skip(1).collect();
    assert!(retries.len() >= 4, "{retries:?}");
    for retry in &retries {
        assert_eq!(retry.after, Some(cursor), "{retries:?}");
        assert!(!retry.ok, "{retries:?}");
    }
    let mut waits = vec![retries[0].started - lost];
    waits.extend(retries.windows(2).map(|w| w[1].started - w[0].ended));
    for (wait, nominal) in waits.iter().zip([200.0, 400.0, 800.0, 800.0]) {
        assert!(
            (nominal - 20.0..nominal + 300.0).contains(wait),
            "waited {waits:?} ms; expected 200, 400, 800, 800"
        );
    }
}
