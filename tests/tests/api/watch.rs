//! WatchArticles (server streaming) over native gRPC: headers as soon as
//! the subscription is live, only changes committed after the stream
//! opened, commit order with strictly increasing sequences, events from
//! other clients, the tag filter (before or after the change), resume with
//! `after_sequence` without gap or duplicate, OUT_OF_RANGE resume points,
//! heartbeats, watcher clean-up on disconnect, and RESOURCE_EXHAUSTED for a
//! watcher too slow to keep up.

use std::time::{Duration, Instant};

use proto::v1::{self as pb, article_event::Event, article_service_client::ArticleServiceClient};
use tonic::{
    Code, Status, Streaming,
    transport::{Channel, Endpoint},
};

use testkit::{
    TIMEOUT,
    article::{ALICE, BOB, TestServer, create, create_as_alice},
    authed, wait_for,
};

type Events = Streaming<pb::ArticleEvent>;

/// What an event says, without timestamps: easy to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Created {
        id: i64,
        title: String,
    },
    Updated {
        id: i64,
        title: String,
        version: i64,
    },
    Deleted(i64),
    Heartbeat,
}

fn seen(event: &pb::ArticleEvent) -> Seen {
    match event
        .event
        .as_ref()
        .expect("an event carries one of the oneof cases")
    {
        Event::Created(a) => Seen::Created {
            id: a.id,
            title: a.title.clone(),
        },
        Event::Updated(a) => Seen::Updated {
            id: a.id,
            title: a.title.clone(),
            version: a.version,
        },
        Event::DeletedId(id) => Seen::Deleted(*id),
        Event::Heartbeat(_) => Seen::Heartbeat,
    }
}

fn created(a: &pb::Article) -> Seen {
    Seen::Created {
        id: a.id,
        title: a.title.clone(),
    }
}

fn updated(a: &pb::Article) -> Seen {
    Seen::Updated {
        id: a.id,
        title: a.title.clone(),
        version: a.version,
    }
}

fn watch_request(tag: &str, after_sequence: i64) -> pb::WatchArticlesRequest {
    pb::WatchArticlesRequest {
        tag: tag.into(),
        after_sequence,
    }
}

/// Opens a watch; returns once the response headers have arrived.
async fn open(
    client: &mut ArticleServiceClient<Channel>,
    tag: &str,
    after_sequence: i64,
) -> Events {
    tokio::time::timeout(
        TIMEOUT,
        client.watch_articles(watch_request(tag, after_sequence)),
    )
    .await
    .expect("WatchArticles sends its response headers in time")
    .expect("WatchArticles opens")
    .into_inner()
}

/// The status a watch fails with, whether it is sent instead of the
/// headers or as the first thing on the stream.
async fn watch_error(
    client: &mut ArticleServiceClient<Channel>,
    tag: &str,
    after_sequence: i64,
) -> Status {
    let opened = tokio::time::timeout(
        TIMEOUT,
        client.watch_articles(watch_request(tag, after_sequence)),
    )
    .await
    .expect("WatchArticles answers in time");
    match opened {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            match tokio::time::timeout(TIMEOUT, stream.message())
                .await
                .expect("the watch ends in time")
            {
                Err(status) => status,
                Ok(item) => panic!("the watch should have failed, got {item:?}"),
            }
        }
    }
}

/// The next event, heartbeats included.
async fn next_event(stream: &mut Events) -> pb::ArticleEvent {
    tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("an event arrives in time")
        .expect("the watch stream does not fail")
        .expect("the watch stream does not end")
}

/// The next change event, skipping heartbeats.
async fn next_change(stream: &mut Events) -> pb::ArticleEvent {
    loop {
        let event = next_event(stream).await;
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            return event;
        }
    }
}

/// Change events up to and including the one for which `last` holds.
async fn changes_until(stream: &mut Events, last: impl Fn(&Seen) -> bool) -> Vec<(i64, Seen)> {
    let mut out = Vec::new();
    loop {
        let event = next_change(stream).await;
        let s = seen(&event);
        let done = last(&s);
        out.push((event.sequence, s));
        if done {
            return out;
        }
    }
}

fn assert_increasing(events: &[(i64, Seen)]) {
    assert!(
        events.windows(2).all(|w| w[0].0 < w[1].0),
        "sequences must strictly increase: {:?}",
        events.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    assert!(events.iter().all(|e| e.0 > 0), "sequences are positive");
}

fn kinds(events: &[(i64, Seen)]) -> Vec<Seen> {
    events.iter().map(|e| e.1.clone()).collect()
}

async fn update_as(
    client: &mut ArticleServiceClient<Channel>,
    token: &str,
    id: i64,
    title: &str,
    tags: &[&str],
) -> pb::Article {
    client
        .update_article(authed(
            token,
            pb::UpdateArticleRequest {
                id,
                title: title.into(),
                content: format!("content of {title}"),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                expected_version: 0,
            },
        ))
        .await
        .expect("update succeeds")
        .into_inner()
        .article
        .expect("article in response")
}

async fn delete_as(client: &mut ArticleServiceClient<Channel>, token: &str, id: i64) {
    client
        .delete_article(authed(token, pb::DeleteArticleRequest { id }))
        .await
        .expect("delete succeeds");
}

async fn import_as(
    client: &mut ArticleServiceClient<Channel>,
    token: &str,
    messages: Vec<pb::CreateArticleRequest>,
) -> Vec<i64> {
    tokio::time::timeout(
        Duration::from_secs(120),
        client.import_articles(authed(token, tokio_stream::iter(messages))),
    )
    .await
    .expect("ImportArticles answers in time")
    .expect("ImportArticles succeeds")
    .into_inner()
    .ids
}

fn numbered(prefix: &str, n: usize, content: &str) -> Vec<pb::CreateArticleRequest> {
    (0..n)
        .map(|i| create(&format!("{prefix} {i}"), content, &[]))
        .collect()
}

// ---- Live events ----

#[tokio::test]
async fn headers_arrive_before_any_change_and_the_next_change_is_delivered() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    // No change is made while we wait: the headers must come anyway.
    let mut stream = open(&mut watcher, "", 0).await;
    // A change made right after the headers arrived is delivered.
    let article = create_as_alice(&mut writer, "right after", &[]).await;
    let event = next_change(&mut stream).await;
    assert_eq!(seen(&event), created(&article));
    assert!(event.sequence > 0);
    match event.event {
        Some(Event::Created(a)) => assert_eq!(a, article, "the event carries the whole article"),
        other => panic!("expected a created event, got {other:?}"),
    }
}

/// The watch-sequence response header of an opened watch, as a number.
fn sequence_header(response: &tonic::Response<Events>) -> i64 {
    let value = response
        .metadata()
        .get(proto::WATCH_SEQUENCE_HEADER)
        .unwrap_or_else(|| {
            panic!(
                "WatchArticles answers with {}: {:?}",
                proto::WATCH_SEQUENCE_HEADER,
                response.metadata()
            )
        });
    value
        .to_str()
        .expect("the sequence header is text")
        .parse()
        .expect("the sequence header is a number")
}

#[tokio::test]
async fn the_sequence_header_names_the_newest_change_before_live_delivery() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let opened = |client: &mut ArticleServiceClient<Channel>, after_sequence| {
        let mut client = client.clone();
        async move {
            tokio::time::timeout(
                TIMEOUT,
                client.watch_articles(watch_request("", after_sequence)),
            )
            .await
            .expect("WatchArticles sends its response headers in time")
            .expect("WatchArticles opens")
        }
    };
    let empty = opened(&mut client, 0).await;
    assert_eq!(sequence_header(&empty), 0, "nothing committed yet");
    let mut first = empty.into_inner();

    create_as_alice(&mut client, "before", &[]).await;
    let before = next_change(&mut first).await.sequence;
    let later = opened(&mut client, 0).await;
    assert_eq!(
        sequence_header(&later),
        before,
        "live delivery starts after the newest committed change"
    );
    // A resumed watch replays from its resume point, then goes live after
    // the same newest change.
    let resumed = opened(&mut client, before).await;
    assert_eq!(sequence_header(&resumed), before);

    let mut later = later.into_inner();
    create_as_alice(&mut client, "after", &[]).await;
    let next = next_change(&mut later).await;
    assert!(
        next.sequence > before,
        "the first live event comes after the header's sequence"
    );
    assert_eq!(seen(&next_change(&mut first).await), seen(&next));
}

#[tokio::test]
async fn events_arrive_in_commit_order_with_strictly_increasing_sequences() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut stream = open(&mut watcher, "", 0).await;

    let a = create_as_alice(&mut writer, "a", &[]).await;
    let b = create_as_alice(&mut writer, "b", &[]).await;
    let a2 = update_as(&mut writer, ALICE, a.id, "a two", &[]).await;
    delete_as(&mut writer, ALICE, b.id).await;
    let a3 = update_as(&mut writer, ALICE, a.id, "a three", &["x"]).await;
    delete_as(&mut writer, ALICE, a.id).await;

    let events = changes_until(&mut stream, |s| *s == Seen::Deleted(a.id)).await;
    assert_eq!(
        kinds(&events),
        [
            created(&a),
            created(&b),
            updated(&a2),
            Seen::Deleted(b.id),
            updated(&a3),
            Seen::Deleted(a.id)
        ]
    );
    assert_increasing(&events);
}

#[tokio::test]
async fn imports_produce_one_created_event_per_article_in_order() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut stream = open(&mut watcher, "", 0).await;
    let ids = import_as(&mut writer, BOB, numbered("imported", 5, "c")).await;
    let last = *ids.last().expect("five ids");
    let events = changes_until(
        &mut stream,
        |s| matches!(s, Seen::Created { id, .. } if *id == last),
    )
    .await;
    let expected: Vec<Seen> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Seen::Created {
            id: *id,
            title: format!("imported {i}"),
        })
        .collect();
    assert_eq!(kinds(&events), expected);
    assert_increasing(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_changes_committed_after_the_stream_opened_are_sent() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    // Repeated, because a change committed just before the watch opens is
    // exactly the case that must not leak into the stream.
    for round in 0..20 {
        let before = create_as_alice(&mut writer, &format!("before {round}"), &[]).await;
        let mut stream = open(&mut watcher, "", 0).await;
        let after = create_as_alice(&mut writer, &format!("after {round}"), &[]).await;
        let first = next_change(&mut stream).await;
        assert_eq!(
            seen(&first),
            created(&after),
            "round {round}: article {} was committed before the watch opened and must not be sent",
            before.id
        );
    }
}

#[tokio::test]
async fn events_made_by_another_client_are_delivered() {
    let server = TestServer::start().await;
    // Separate connections: the watcher and bob's writer share nothing.
    let mut watcher = server.client().await;
    let mut bob = server.client().await;
    let mut stream = open(&mut watcher, "", 0).await;

    let article = bob
        .create_article(authed(BOB, create("from bob", "hi", &["b"])))
        .await
        .expect("bob creates")
        .into_inner()
        .article
        .expect("article in response");
    let event = next_change(&mut stream).await;
    match event.event {
        Some(Event::Created(a)) => {
            assert_eq!(a.id, article.id);
            assert_eq!(a.author, "bob");
        }
        other => panic!("expected bob's created event, got {other:?}"),
    }
    delete_as(&mut bob, BOB, article.id).await;
    assert_eq!(
        seen(&next_change(&mut stream).await),
        Seen::Deleted(article.id)
    );
}

#[tokio::test]
async fn rejected_writes_produce_no_events() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut stream = open(&mut watcher, "", 0).await;
    let existing = create_as_alice(&mut writer, "existing", &[]).await;
    assert_eq!(seen(&next_change(&mut stream).await), created(&existing));

    let invalid = writer
        .create_article(authed(ALICE, create("", "c", &[])))
        .await;
    assert_eq!(invalid.expect_err("invalid").code(), Code::InvalidArgument);
    let anonymous = writer.create_article(create("anon", "c", &[])).await;
    assert_eq!(
        anonymous.expect_err("no token").code(),
        Code::Unauthenticated
    );
    let conflict = writer
        .update_article(authed(
            ALICE,
            pb::UpdateArticleRequest {
                id: existing.id,
                title: "conflict".into(),
                expected_version: 9,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(conflict.expect_err("conflict").code(), Code::Aborted);
    let missing = writer
        .delete_article(authed(
            ALICE,
            pb::DeleteArticleRequest {
                id: existing.id + 50,
            },
        ))
        .await;
    assert_eq!(missing.expect_err("missing").code(), Code::NotFound);
    let mut bad_import = numbered("bad import", 3, "c");
    bad_import[1].title.clear();
    let failed = writer
        .import_articles(authed(ALICE, tokio_stream::iter(bad_import)))
        .await;
    assert_eq!(
        failed.expect_err("invalid import").code(),
        Code::InvalidArgument
    );

    let sentinel = create_as_alice(&mut writer, "sentinel", &[]).await;
    assert_eq!(
        seen(&next_change(&mut stream).await),
        created(&sentinel),
        "no event for any rejected write comes before the sentinel"
    );
}

// ---- Tag filter ----

#[tokio::test]
async fn tag_filter_passes_changes_whose_article_had_the_tag_before_or_after() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut rust = open(&mut watcher, "rust", 0).await;
    let mut all = open(&mut watcher, "", 0).await;

    let a = create_as_alice(&mut writer, "a", &["rust"]).await; // passes: has it
    let b = create_as_alice(&mut writer, "b", &["go"]).await; // filtered
    let b2 = update_as(&mut writer, ALICE, b.id, "b2", &["go", "rust"]).await; // passes: after
    let a2 = update_as(&mut writer, ALICE, a.id, "a2", &["python"]).await; // passes: before
    let a3 = update_as(&mut writer, ALICE, a.id, "a3", &["python"]).await; // filtered: neither
    delete_as(&mut writer, ALICE, a.id).await; // filtered: had python only
    delete_as(&mut writer, ALICE, b.id).await; // passes: had rust
    let c = create_as_alice(&mut writer, "c", &["rusty", "trust"]).await; // filtered: not exact
    let sentinel = create_as_alice(&mut writer, "sentinel", &["x", "rust"]).await;

    let filtered = changes_until(&mut rust, |s| *s == created(&sentinel)).await;
    assert_eq!(
        kinds(&filtered),
        [
            created(&a),
            updated(&b2),
            updated(&a2),
            Seen::Deleted(b.id),
            created(&sentinel)
        ],
        "exactly the changes that concern the tag, in commit order"
    );
    assert_increasing(&filtered);

    let everything = changes_until(&mut all, |s| *s == created(&sentinel)).await;
    assert_eq!(
        kinds(&everything),
        [
            created(&a),
            created(&b),
            updated(&b2),
            updated(&a2),
            updated(&a3),
            Seen::Deleted(a.id),
            Seen::Deleted(b.id),
            created(&c),
            created(&sentinel)
        ],
        "an unfiltered watch sees every change"
    );
    // Both streams number a change the same way.
    for event in &filtered {
        assert!(
            everything.contains(event),
            "{event:?} has the same sequence on both streams"
        );
    }
}

// ---- Resume ----

#[tokio::test]
async fn resume_replays_exactly_the_missed_changes_then_goes_live() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;

    let mut first = open(&mut watcher, "", 0).await;
    let a = create_as_alice(&mut writer, "a", &[]).await;
    let b = create_as_alice(&mut writer, "b", &[]).await;
    let a2 = update_as(&mut writer, ALICE, a.id, "a2", &[]).await;
    let seen_before = changes_until(&mut first, |s| *s == updated(&a2)).await;
    assert_eq!(
        kinds(&seen_before),
        [created(&a), created(&b), updated(&a2)]
    );
    let last_seen = seen_before.last().expect("three events").0;
    drop(first);
    wait_for("the first watch to close", || server.watchers() == 0).await;

    // Changes nobody is watching.
    delete_as(&mut writer, ALICE, b.id).await;
    let c = create_as_alice(&mut writer, "c", &[]).await;
    let c2 = update_as(&mut writer, BOB, c.id, "c2", &[]).await;

    let mut resumed = open(&mut watcher, "", last_seen).await;
    let replayed = changes_until(&mut resumed, |s| *s == updated(&c2)).await;
    assert_eq!(
        kinds(&replayed),
        [Seen::Deleted(b.id), created(&c), updated(&c2)],
        "exactly the missed changes, in order"
    );
    assert!(
        replayed[0].0 > last_seen,
        "the replay starts after the resume point"
    );
    assert_increasing(&replayed);

    // Then live, with nothing repeated in between.
    let d = create_as_alice(&mut writer, "d", &[]).await;
    let live = next_change(&mut resumed).await;
    assert_eq!(
        seen(&live),
        created(&d),
        "the first live event follows the replay directly"
    );
    assert!(live.sequence > replayed.last().expect("replayed").0);
}

#[tokio::test]
async fn resume_at_the_newest_sequence_replays_nothing_and_goes_live() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut first = open(&mut watcher, "", 0).await;
    let a = create_as_alice(&mut writer, "a", &[]).await;
    let newest = next_change(&mut first).await.sequence;
    drop(first);

    let mut resumed = open(&mut watcher, "", newest).await;
    let b = create_as_alice(&mut writer, "b", &[]).await;
    let event = next_change(&mut resumed).await;
    assert_eq!(
        seen(&event),
        created(&b),
        "nothing before b, in particular not {a:?}"
    );
    assert!(event.sequence > newest);
}

#[tokio::test]
async fn resume_applies_the_tag_filter_to_the_replay() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut first = open(&mut watcher, "", 0).await;
    let start = create_as_alice(&mut writer, "start", &[]).await;
    let resume_from = next_change(&mut first).await.sequence;
    drop(first);

    let x = create_as_alice(&mut writer, "x", &["a"]).await;
    let y = create_as_alice(&mut writer, "y", &["b"]).await;
    let y2 = update_as(&mut writer, ALICE, y.id, "y2", &["a"]).await;
    delete_as(&mut writer, ALICE, start.id).await;

    let mut resumed = open(&mut watcher, "a", resume_from).await;
    let replayed = changes_until(&mut resumed, |s| *s == updated(&y2)).await;
    assert_eq!(kinds(&replayed), [created(&x), updated(&y2)]);
    let z = create_as_alice(&mut writer, "z", &["a"]).await;
    assert_eq!(seen(&next_change(&mut resumed).await), created(&z));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_during_concurrent_writes_has_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut reference = open(&mut watcher, "", 0).await;
    let mut first = open(&mut watcher, "", 0).await;

    let mut writer = server.client().await;
    let writes = tokio::spawn(async move {
        let mut last = None;
        for i in 0..150 {
            let a = create_as_alice(&mut writer, &format!("w{i}"), &[]).await;
            if i % 3 == 0 {
                update_as(&mut writer, ALICE, a.id, &format!("w{i} updated"), &[]).await;
            }
            last = Some(a);
        }
        last.expect("150 articles")
    });

    // Read a little, drop, and resume while the writer keeps going.
    let mut combined = Vec::new();
    for _ in 0..10 {
        let e = next_change(&mut first).await;
        combined.push((e.sequence, seen(&e)));
    }
    drop(first);
    let mut resumed = open(&mut watcher, "", combined.last().expect("ten events").0).await;

    let last = tokio::time::timeout(Duration::from_secs(120), writes)
        .await
        .expect("writer finishes")
        .expect("writer task succeeds");
    let is_last = |s: &Seen| *s == created(&last);
    combined.extend(changes_until(&mut resumed, is_last).await);
    let all = changes_until(&mut reference, is_last).await;

    assert_increasing(&combined);
    assert_eq!(
        combined, all,
        "first stream + resumed stream = every change exactly once"
    );
}

/// With nobody watching, the feed skips reading the change log; the first
/// watcher, opened while writes commit, still gets every change after the
/// sequence its header names, in order, none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_watcher_opened_during_concurrent_writes_gets_every_later_change() {
    let server = TestServer::start().await;
    let mut writer = server.client().await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = done.clone();
    let writes = tokio::spawn(async move {
        let mut last = None;
        for i in 0..200 {
            last = Some(create_as_alice(&mut writer, &format!("f{i}"), &[]).await);
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        last.expect("200 articles")
    });
    // Open it once some creates have committed, while the rest go on.
    let mut reader = server.client().await;
    wait_for("the first creates", || {
        done.load(std::sync::atomic::Ordering::Relaxed) >= 20
    })
    .await;
    let response = tokio::time::timeout(TIMEOUT, reader.watch_articles(watch_request("", 0)))
        .await
        .expect("WatchArticles answers in time")
        .expect("WatchArticles opens");
    let live_from = sequence_header(&response);
    let mut stream = response.into_inner();
    let last = tokio::time::timeout(Duration::from_secs(120), writes)
        .await
        .expect("the writer finishes")
        .expect("the writer succeeds");
    let got = changes_until(&mut stream, |s| *s == created(&last)).await;
    let sequences: Vec<i64> = got.iter().map(|(sequence, _)| *sequence).collect();
    let expected: Vec<i64> = (live_from + 1..=live_from + sequences.len() as i64).collect();
    assert_eq!(
        sequences, expected,
        "every change after {live_from}, in order"
    );
    assert!(
        live_from > 0 && !sequences.is_empty(),
        "opened while writes went on: live from {live_from}, {} changes",
        sequences.len()
    );
}

#[tokio::test]
async fn resume_point_no_longer_retained_is_out_of_range() {
    let server = TestServer::start_with(|s| s.watch_retain = 1000).await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    // Well over 1000 changes at once: the oldest are no longer retained.
    import_as(&mut writer, ALICE, numbered("bulk", 1100, "c")).await;
    let status = watch_error(&mut watcher, "", 1).await;
    assert_eq!(
        status.code(),
        Code::OutOfRange,
        "after_sequence 1: {status:?}"
    );
}

#[tokio::test]
async fn the_newest_thousand_changes_stay_resumable() {
    let server = TestServer::start_with(|s| s.watch_retain = 1000).await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut reference = open(&mut watcher, "", 0).await;

    // 1100 changes, in batches small enough for a live watcher to see all.
    let mut all = Vec::new();
    for batch in 0..11 {
        let ids = import_as(
            &mut writer,
            ALICE,
            numbered(&format!("batch {batch}"), 100, "c"),
        )
        .await;
        let last = *ids.last().expect("100 ids");
        all.extend(
            changes_until(
                &mut reference,
                |s| matches!(s, Seen::Created { id, .. } if *id == last),
            )
            .await,
        );
    }
    assert_eq!(all.len(), 1100);
    assert_increasing(&all);
    let last = all[1099].1.clone();

    // Resuming after the first change needs 1099 retained changes: gone.
    let status = watch_error(&mut watcher, "", all[0].0).await;
    assert_eq!(
        status.code(),
        Code::OutOfRange,
        "after_sequence {}: {status:?}",
        all[0].0
    );

    // The newest 1000 are kept: resuming just before them replays them all.
    let mut resumed = open(&mut watcher, "", all[99].0).await;
    let replayed = changes_until(&mut resumed, |s| *s == last).await;
    assert_eq!(
        replayed,
        all[100..],
        "the newest 1000 changes are replayed, in order"
    );
}

#[tokio::test]
async fn a_live_watcher_gets_every_change_of_an_import_larger_than_the_retained_window() {
    let server = TestServer::start_with(|s| s.watch_retain = 1000).await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut live = open(&mut watcher, "", 0).await;

    let ids = import_as(&mut writer, ALICE, numbered("bulk", 1100, "c")).await;
    let last = *ids.last().expect("1100 ids");
    let events = changes_until(
        &mut live,
        |s| matches!(s, Seen::Created { id, .. } if *id == last),
    )
    .await;
    let got: Vec<i64> = events
        .iter()
        .map(|(_, s)| match s {
            Seen::Created { id, .. } => *id,
            other => panic!("only created events expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        got.len(),
        ids.len(),
        "every change committed after the watch opened is sent"
    );
    assert_eq!(got, ids);
}

#[tokio::test]
async fn resume_point_ahead_of_the_newest_sequence_is_out_of_range() {
    let server = TestServer::start().await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;

    let status = watch_error(&mut watcher, "", 1).await;
    assert_eq!(
        status.code(),
        Code::OutOfRange,
        "nothing committed yet: {status:?}"
    );

    let mut stream = open(&mut watcher, "", 0).await;
    create_as_alice(&mut writer, "a", &[]).await;
    let newest = next_change(&mut stream).await.sequence;
    for ahead in [newest + 1, newest + 1000, i64::MAX] {
        let status = watch_error(&mut watcher, "", ahead).await;
        assert_eq!(
            status.code(),
            Code::OutOfRange,
            "after_sequence {ahead}: {status:?}"
        );
    }
}

// ---- Heartbeats, clean-up, slow watchers ----

#[tokio::test]
async fn heartbeats_arrive_every_interval_carrying_the_current_sequence() {
    let server = TestServer::start_with(|s| s.watch_heartbeat_secs = 1).await;
    let mut watcher = server.client().await;
    let mut writer = server.client().await;
    let mut stream = open(&mut watcher, "", 0).await;
    let opened = Instant::now();

    // With nothing written yet, the current sequence is 0.
    let first = next_event(&mut stream).await;
    assert_eq!(
        seen(&first),
        Seen::Heartbeat,
        "the first event is a heartbeat"
    );
    assert_eq!(first.sequence, 0, "no change committed yet");
    assert!(
        opened.elapsed() < Duration::from_secs(5),
        "a 1 s heartbeat took {:?}",
        opened.elapsed()
    );

    let article = create_as_alice(&mut writer, "a", &[]).await;
    let change = next_change(&mut stream).await;
    assert_eq!(seen(&change), created(&article));

    // The next heartbeats carry the sequence of that change.
    let mut beats = Vec::new();
    while beats.len() < 2 {
        let event = next_event(&mut stream).await;
        assert_eq!(seen(&event), Seen::Heartbeat, "no other change was made");
        assert_eq!(
            event.sequence, change.sequence,
            "a heartbeat carries the current sequence"
        );
        beats.push(Instant::now());
    }
    let gap = beats[1] - beats[0];
    assert!(
        gap >= Duration::from_millis(500) && gap < Duration::from_secs(5),
        "heartbeats every second, not {gap:?}"
    );
}

#[tokio::test]
async fn dropping_the_client_stream_releases_the_server_watcher() {
    let server = TestServer::start().await;
    let mut one = server.client().await;
    let mut other = server.client().await;
    let a = open(&mut one, "", 0).await;
    let b = open(&mut other, "tag", 0).await;
    wait_for("two watchers", || server.watchers() == 2).await;

    drop(a);
    wait_for("one watcher after dropping a stream", || {
        server.watchers() == 1
    })
    .await;

    // Dropping the whole connection works too.
    drop(b);
    drop(other);
    wait_for("no watcher after dropping everything", || {
        server.watchers() == 0
    })
    .await;
}

#[tokio::test]
async fn a_watcher_too_slow_to_keep_up_is_ended_with_resource_exhausted() {
    let server = TestServer::start().await;
    // The slow watcher has a small HTTP/2 window, so the server cannot push
    // more than a few hundred KB before it has to wait for the reader.
    let slow_channel = Endpoint::from_shared(server.url.clone())
        .expect("url")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .expect("connect");
    let mut slow_client = ArticleServiceClient::new(slow_channel);
    let mut slow = open(&mut slow_client, "", 0).await;

    // A watcher that sees only the sentinel tells us when the server has
    // published every change (it filters the rest without sending them).
    let mut sentinel_client = server.client().await;
    let mut sentinel_stream = open(&mut sentinel_client, "sentinel", 0).await;

    // Far more changes than a watcher's backlog (4096) while nobody reads.
    const N: usize = 6000;
    let content = "x".repeat(2048);
    let mut writer = server.client().await;
    let ids = import_as(&mut writer, ALICE, numbered("flood", N, &content)).await;
    assert_eq!(ids.len(), N);
    let sentinel = create_as_alice(&mut writer, "sentinel", &["sentinel"]).await;
    assert_eq!(
        seen(&next_change(&mut sentinel_stream).await),
        created(&sentinel)
    );

    // Now read: some buffered events, then the end.
    let mut received = Vec::new();
    let status = loop {
        match tokio::time::timeout(TIMEOUT, slow.message())
            .await
            .expect("the slow stream moves")
        {
            Ok(Some(event)) => received.push(event.sequence),
            Ok(None) => panic!(
                "the slow stream ended without an error after {} events",
                received.len()
            ),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        !received.is_empty(),
        "the events that were already sent arrive first"
    );
    assert!(
        received.len() < N,
        "the slow watcher was cut off before it got everything"
    );
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "the delivered events are in order"
    );
    wait_for("the slow watcher to be released", || server.watchers() == 1).await;
}
