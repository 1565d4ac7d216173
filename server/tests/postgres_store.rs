//! The PostgreSQL store through `ArticleStore`, on a real PostgreSQL (no
//! mocks): one cluster for the binary, one database per test; the outage
//! test has a cluster of its own, since it stops it.
//!
//! Needs PostgreSQL's server binaries (`testkit::postgres`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use article_server::article::{
    ArticleDraft, ArticleError, ListQuery, demo,
    postgres::{PostgresOptions, PostgresStore},
    sqlite::SqliteStore,
    store::{ArticleStore, ChangeKind},
    watch::{ChangeFeed, WatchItem},
};
use futures::StreamExt as _;
use testkit::postgres::PgCluster;

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, 1000, PostgresOptions::default())
        .await
        .unwrap()
}

fn draft(title: &str, tags: &[&str]) -> ArticleDraft {
    ArticleDraft::new(
        title,
        format!("about {title}"),
        tags.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap()
}

fn query(page: i32, size: i32, text: &str, tag: &str) -> ListQuery {
    ListQuery::new(page, size, text.into(), tag.into()).unwrap()
}

#[tokio::test]
async fn crud_round_trip_and_version_conflict() {
    let s = open(&testkit::postgres::shared_database()).await;
    let a = s.create("alice", draft("First", &["rust"])).await.unwrap();
    assert_eq!((a.version, a.author.as_str()), (1, "alice"));
    assert_eq!(s.get(a.id).await.unwrap(), a);
    let b = s.update(a.id, draft("First!", &["web"]), 1).await.unwrap();
    assert_eq!((b.version, b.tags.clone()), (2, vec!["web".to_string()]));
    assert_eq!(s.get(a.id).await.unwrap(), b);
    assert!(matches!(
        s.update(a.id, draft("x", &[]), 1).await,
        Err(ArticleError::VersionConflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    // Unconditional with 0.
    assert_eq!(
        s.update(a.id, draft("Third", &[]), 0)
            .await
            .unwrap()
            .version,
        3
    );
    s.delete(a.id).await.unwrap();
    assert!(matches!(s.get(a.id).await, Err(ArticleError::NotFound(_))));
    assert!(matches!(
        s.delete(a.id).await,
        Err(ArticleError::NotFound(_))
    ));
    assert!(matches!(
        s.update(a.id, draft("x", &[]), 0).await,
        Err(ArticleError::NotFound(_))
    ));
    assert_eq!(s.count().await.unwrap(), 0);
    assert_eq!(s.generation(), None, "no list cache with several replicas");
}

#[tokio::test]
async fn search_tags_and_paging_answer_as_sqlite_does() {
    let pg = open(&testkit::postgres::shared_database()).await;
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(
        &format!("sqlite://{}", dir.path().join("t.db").display()),
        1000,
    )
    .await
    .unwrap();
    let samples = [
        ("ÄRGER im Büro", &["de", "work"][..]),
        ("Rust and Postgres", &["rust"][..]),
        ("rusty nails", &["diy"][..]),
        ("100% pure", &["rust", "diy"][..]),
        ("under_score", &[][..]),
    ];
    for i in 0..3 {
        for (title, tags) in samples {
            let title = format!("{title} {i}");
            pg.create("a", draft(&title, tags)).await.unwrap();
            lite.create("a", draft(&title, tags)).await.unwrap();
        }
    }
    let queries = [
        query(1, 10, "", ""),
        query(2, 4, "", ""),
        query(9, 4, "", ""),
        query(1, 10, "ärger", ""),
        query(1, 10, "RUST", ""),
        query(1, 2, "rust", "diy"),
        query(1, 10, "", "rust"),
        query(1, 10, "%", ""),
        query(1, 10, "_", ""),
        query(1, 10, "nothing matches", ""),
        query(1, 10, "", "no-such-tag"),
    ];
    for q in &queries {
        let (a, b) = (pg.list(q).await.unwrap(), lite.list(q).await.unwrap());
        let titles = |p: &article_server::article::Page| {
            p.articles
                .iter()
                .map(|a| a.title.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(a.total_count, b.total_count, "{q:?}");
        assert_eq!(titles(&a), titles(&b), "{q:?}");
    }
    // Newest first; ties of create_time by id.
    let all = pg.list(&query(1, 100, "", "")).await.unwrap();
    assert_eq!(all.total_count, 15);
    let ids: Vec<_> = all.articles.iter().map(|a| a.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
}

#[tokio::test]
async fn an_import_is_all_or_nothing_and_numbered_at_commit() {
    let s = open(&testkit::postgres::shared_database()).await;
    s.create("a", draft("before", &[])).await.unwrap();
    // Dropped without commit: nothing stays, no sequence is used.
    {
        let mut batch = s.begin_import("bob").await.unwrap();
        for i in 0..50 {
            batch
                .add(draft(&format!("lost {i}"), &["x"]))
                .await
                .unwrap();
        }
        // A write beside the open import goes through (row locks only).
        s.create("a", draft("beside", &[])).await.unwrap();
    }
    assert_eq!(s.count().await.unwrap(), 2);
    assert_eq!(s.list(&query(1, 10, "", "x")).await.unwrap().total_count, 0);
    let bounds = s.sequence_bounds().await.unwrap();
    assert_eq!((bounds.oldest, bounds.newest), (Some(1), 2));

    let ids = s
        .import(
            "bob",
            (0..300)
                .map(|i| draft(&format!("kept {i}"), &["y"]))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 300);
    assert_eq!(s.count().await.unwrap(), 302);
    let changes = s.changes_after(2, 1000).await.unwrap();
    let seqs: Vec<i64> = changes.iter().map(|c| c.sequence).collect();
    assert_eq!(seqs, (3..=302).collect::<Vec<_>>());
    // In the order added.
    let created: Vec<i64> = changes
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Created(a) => a.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(created, ids);
}

/// The unfiltered total is a count kept with the sequence (migration 0003),
/// not a count of the rows: concurrent creates, deletes and imports on two
/// replicas, and an import that fails, must leave it equal to the rows.
#[tokio::test]
async fn the_kept_article_count_matches_the_rows_after_concurrent_writes() {
    let url = testkit::postgres::shared_database();
    let (a, b) = (Arc::new(open(&url).await), Arc::new(open(&url).await));
    let mut tasks = Vec::new();
    for (w, s) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let article = s
                    .create("w", draft(&format!("w{w} {i}"), &[]))
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    s.delete(article.id).await.unwrap();
                }
            }
            s.import(
                "w",
                (0..10).map(|i| draft(&format!("i{w} {i}"), &[])).collect(),
            )
            .await
            .unwrap();
            // Dropped without commit: counts nothing.
            let mut lost = s.begin_import("w").await.unwrap();
            lost.add(draft("lost", &[])).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
        .fetch_one(&pool)
        .await
        .unwrap();
    // 4 writers × (25 created − 9 deleted + 10 imported).
    assert_eq!(rows, 4 * (25 - 9 + 10));
    assert_eq!(a.count().await.unwrap(), rows);
    assert_eq!(
        b.list(&query(1, 5, "", "")).await.unwrap().total_count,
        rows
    );
    // A page past the end carries the count too.
    assert_eq!(
        b.list(&query(1000, 5, "", "")).await.unwrap().total_count,
        rows
    );
}

/// Each tag's kept count (`tag_counts`) against the tag rows themselves.
async fn kept_and_real_tag_counts(
    pool: &sqlx::PgPool,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let kept: Vec<(String, i64)> =
        sqlx::query_as("SELECT tag, articles FROM tag_counts WHERE articles <> 0")
            .fetch_all(pool)
            .await
            .unwrap();
    let real: Vec<(String, i64)> =
        sqlx::query_as("SELECT tag, COUNT(*) FROM article_tags GROUP BY tag")
            .fetch_all(pool)
            .await
            .unwrap();
    (kept.into_iter().collect(), real.into_iter().collect())
}

/// A tag-only ListArticles total is the tag's kept count (migration 0004):
/// four writers on two pools creating, retagging, deleting, importing and
/// abandoning an import, over overlapping tags named in either order (the
/// tag rows are locked while others wait for them), must leave every
/// count equal to its tag's rows, and the totals the API answers with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kept_tag_counts_match_the_rows_after_concurrent_writes() {
    const TAGS: [&str; 4] = ["ant", "bee", "cat", "dog"];
    let url = testkit::postgres::shared_database();
    let (a, b) = (Arc::new(open(&url).await), Arc::new(open(&url).await));
    let mut tasks = Vec::new();
    for (w, s) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            // Writer w's i-th tag set: two or three tags, forwards or
            // backwards.
            let tags = |i: usize| {
                let mut t: Vec<&str> = (0..2 + i % 2).map(|k| TAGS[(w + i + k) % 4]).collect();
                if (w + i) % 2 == 1 {
                    t.reverse();
                }
                t
            };
            for i in 0..24 {
                let article = s
                    .create("w", draft(&format!("w{w} {i}"), &tags(i)))
                    .await
                    .unwrap();
                match i % 3 {
                    0 => s.delete(article.id).await.unwrap(),
                    1 => drop(
                        s.update(article.id, draft("retagged", &tags(i + 1)), 0)
                            .await
                            .unwrap(),
                    ),
                    _ => {}
                }
            }
            s.import(
                "w",
                (0..10)
                    .map(|i| draft(&format!("i{w} {i}"), &tags(i)))
                    .collect(),
            )
            .await
            .unwrap();
            // Dropped without commit: counts nothing.
            let mut lost = s.begin_import("w").await.unwrap();
            lost.add(draft("lost", &TAGS)).await.unwrap();
            lost.add(draft("lost too", &["lost-only"])).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (kept, real) = kept_and_real_tag_counts(&pool).await;
    assert_eq!(kept, real);
    assert_eq!(
        real.keys().collect::<Vec<_>>(),
        TAGS.iter().collect::<Vec<_>>(),
        "every tag was used, the abandoned import's own tag was not"
    );
    for (tag, n) in &real {
        assert_eq!(b.list(&query(1, 5, "", tag)).await.unwrap().total_count, *n);
        // A page past the end carries the count too.
        assert_eq!(
            a.list(&query(1000, 5, "", tag)).await.unwrap().total_count,
            *n
        );
    }
    assert_eq!(
        a.list(&query(1, 5, "", "lost-only"))
            .await
            .unwrap()
            .total_count,
        0
    );
}

/// Migration 0004 fills `tag_counts` from the tag rows a database already
/// has (written here by hand at schema version 3).
#[tokio::test]
async fn migrating_a_database_with_articles_fills_the_tag_counts() {
    let url = testkit::postgres::shared_database();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/postgres"
    )))
    .await
    .unwrap();
    let before: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 4)
        .cloned()
        .collect();
    assert_eq!(before.len(), 3);
    migrator.migrations = before.into();
    migrator.run(&pool).await.unwrap();
    for (i, tags) in [&["x", "y"][..], &["y"][..], &[][..], &["y", "z"][..]]
        .into_iter()
        .enumerate()
    {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO articles (title, content, author, tags, search_text, create_time, update_time, version)
             VALUES ($1, '', 'a', $2, $1, $3, $3, 1) RETURNING id",
        )
        .bind(format!("t{i}"))
        .bind(tags.join(","))
        .bind(i as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO article_tags (article_id, tag, create_time) SELECT $1, unnest($2::text[]), $3",
        )
        .bind(id)
        .bind(tags)
        .bind(i as i64)
        .execute(&pool)
        .await
        .unwrap();
    }
    let s = open(&url).await;
    let (kept, real) = kept_and_real_tag_counts(&pool).await;
    assert_eq!(kept, real);
    let mut totals = Vec::new();
    for tag in ["x", "y", "z", "none"] {
        totals.push(s.list(&query(1, 1, "", tag)).await.unwrap().total_count);
    }
    assert_eq!(totals, [1, 3, 1, 0]);
}

#[tokio::test]
async fn the_change_log_numbers_every_write_and_keeps_the_retained_ones() {
    let s = open(&testkit::postgres::shared_database()).await;
    assert_eq!(s.sequence_bounds().await.unwrap().newest, 0);
    let a = s.create("a", draft("one", &["rust"])).await.unwrap();
    s.update(a.id, draft("one!", &["web"]), 1).await.unwrap();
    s.delete(a.id).await.unwrap();
    // A failed write takes no sequence.
    assert!(s.update(a.id, draft("x", &[]), 0).await.is_err());
    let changes = s.changes_after(0, 10).await.unwrap();
    let seqs: Vec<_> = changes.iter().map(|c| c.sequence).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(matches!(changes[0].kind, ChangeKind::Created(_)));
    assert!(changes[1].concerns_tag("rust") && changes[1].concerns_tag("web"));
    assert!(
        matches!(&changes[2].kind, ChangeKind::Deleted { id, old_tags } if *id == a.id && old_tags == &["web"])
    );
    assert_eq!(s.changes_after(1, 1).await.unwrap().len(), 1);

    s.import(
        "a",
        (0..1005).map(|i| draft(&format!("a{i}"), &[])).collect(),
    )
    .await
    .unwrap();
    assert_eq!(s.sequence_bounds().await.unwrap().oldest, Some(1));
    s.prune_changes(1008).await.unwrap();
    let b = s.sequence_bounds().await.unwrap();
    assert_eq!((b.oldest, b.newest), (Some(9), 1008));
}

/// The key property: several replicas (separate pools) write at once while
/// readers tail `changes_after`; every reader sees strictly increasing,
/// gap-free sequences, and in the end exactly the whole change log. With a
/// sequence allocated at insert (a bigserial) instead of at the commit
/// tail, readers skip changes that commit late and this fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_skip_a_change_of_concurrent_replicas() {
    const REPLICAS: usize = 3;
    const WRITERS_PER_REPLICA: usize = 4;
    const WRITES_PER_WRITER: usize = 40;
    let url = testkit::postgres::shared_database();
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(Arc::new(open(&url).await));
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (r, store) in replicas.iter().enumerate() {
        let store = store.clone();
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                let after = seen.last().copied().unwrap_or(0);
                let batch = store.changes_after(after, 64).await.unwrap();
                for c in &batch {
                    let expected = seen.last().copied().unwrap_or(0) + 1;
                    assert_eq!(c.sequence, expected, "reader {r} skipped a change");
                    seen.push(c.sequence);
                }
                if batch.is_empty() {
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let mut writers = Vec::new();
    for (r, store) in replicas.iter().enumerate() {
        for w in 0..WRITERS_PER_REPLICA {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    let title = format!("r{r} w{w} #{i}");
                    let a = store.create("w", draft(&title, &["t"])).await.unwrap();
                    // Vary the length of the transactions.
                    match i % 4 {
                        1 => {
                            store.update(a.id, draft(&title, &[]), 0).await.unwrap();
                        }
                        2 => store.delete(a.id).await.unwrap(),
                        3 => {
                            let drafts = (0..5)
                                .map(|k| draft(&format!("{title}.{k}"), &[]))
                                .collect();
                            store.import("w", drafts).await.unwrap();
                        }
                        _ => {}
                    }
                }
            }));
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let newest = replicas[0].sequence_bounds().await.unwrap().newest;
    let per_writer: i64 = (0..WRITES_PER_WRITER as i64)
        .map(|i| match i % 4 {
            1 | 2 => 2,
            3 => 6,
            _ => 1,
        })
        .sum();
    assert_eq!(newest, per_writer * (REPLICAS * WRITERS_PER_REPLICA) as i64);
    let log: Vec<i64> = replicas[0]
        .changes_after(0, u32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(log, (1..=newest).collect::<Vec<_>>(), "the log has no gaps");
    for reader in readers {
        let seen = reader.await.unwrap();
        assert_eq!(seen, log, "a reader saw the whole log, in order");
    }
}

#[tokio::test]
async fn a_replicas_feed_publishes_another_replicas_commits() {
    let url = testkit::postgres::shared_database();
    let (writer, reader) = (open(&url).await, Arc::new(open(&url).await));
    let feed = ChangeFeed::start(
        reader,
        Duration::from_secs(60),
        1000,
        metrics::Gauge::noop(),
    )
    .await
    .unwrap();
    let (mut stream, live_from) = feed.subscribe(String::new(), 0).await.unwrap();
    assert_eq!(live_from, 0);
    let a = writer.create("w", draft("over there", &[])).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the other replica's commit arrives")
        .unwrap()
        .unwrap();
    match item {
        WatchItem::Change(c) => {
            assert_eq!(c.sequence, 1);
            assert!(matches!(&c.kind, ChangeKind::Created(x) if x.id == a.id));
        }
        other => panic!("{other:?}"),
    }
}

/// Replicas starting at once on an empty database: the migrations run
/// once (sqlx's advisory lock), and the demo data is loaded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_load_demo_data_once() {
    let url = testkit::postgres::shared_database();
    let stores = futures::future::join_all((0..4).map(|_| open(&url))).await;
    let loaded = futures::future::join_all(stores.iter().map(|s| demo::load_if_empty(s))).await;
    let loaded: Vec<usize> = loaded.into_iter().map(Result::unwrap).collect();
    let total: usize = loaded.iter().sum();
    assert_eq!(loaded.iter().filter(|n| **n > 0).count(), 1, "{loaded:?}");
    assert_eq!(stores[0].count().await.unwrap(), total as i64);
    // The first sample is the newest.
    let first = stores[0].list(&query(1, 1, "", "")).await.unwrap();
    assert_eq!(first.articles[0].title, "Why gRPC-web without a gateway");
    let titles: BTreeSet<_> = stores[0]
        .list(&query(1, 100, "", ""))
        .await
        .unwrap()
        .articles
        .into_iter()
        .map(|a| a.title)
        .collect();
    assert_eq!(titles.len(), total, "no sample twice");
}

/// Its own cluster: it stops it.
#[tokio::test]
async fn calls_are_unavailable_while_postgres_is_down_and_work_again_after() {
    let mut cluster = PgCluster::temporary().expect("a PostgreSQL cluster starts");
    let url = cluster.create_database("outage").unwrap();
    let options = PostgresOptions {
        acquire_timeout: Duration::from_secs(1),
        ..PostgresOptions::default()
    };
    let s = PostgresStore::open(&url, 1000, options).await.unwrap();
    let a = s.create("a", draft("before", &[])).await.unwrap();
    cluster.stop().unwrap();
    let started = std::time::Instant::now();
    for result in [
        s.get(a.id).await.map(drop),
        s.create("a", draft("during", &[])).await.map(drop),
        s.ping().await,
    ] {
        let err = result.expect_err("PostgreSQL is down");
        assert!(matches!(err, ArticleError::Unavailable(_)), "{err:?}");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("the database is unreachable"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the acquire timeout"
    );
    cluster.start().unwrap();
    // The same store, not reopened; pooled connections were cut.
    assert_eq!(s.get(a.id).await.unwrap().title, "before");
    let b = s.create("a", draft("after", &[])).await.unwrap();
    assert_eq!(s.count().await.unwrap(), 2);
    let seqs: Vec<_> = s
        .changes_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(seqs, [1, 2], "the failed create left no sequence");
    assert_eq!(s.get(b.id).await.unwrap().title, "after");
}

/// The server on PostgreSQL: while the database is down, health reports
/// NOT_SERVING (gRPC health and `/healthz` 503, so a load balancer routes
/// away) and calls fail with UNAVAILABLE; both recover by themselves.
#[tokio::test]
async fn the_server_is_not_serving_while_postgres_is_down_and_serves_again_after() {
    use proto::v1::GetArticleRequest;
    use testkit::{TIMEOUT, article::TestServer, raw, wait_until};
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let mut cluster = PgCluster::temporary().expect("a PostgreSQL cluster starts");
    let url = cluster.create_database("health").unwrap();
    let server = TestServer::start_with(|s| s.database_url = url).await;
    let mut client = server.client().await;
    let a = testkit::article::create_as_alice(&mut client, "before", &[]).await;
    let addr = server.addr;
    let channel = server.channel().await;
    let status = async |want: ServingStatus| {
        let want_http = if want == ServingStatus::Serving {
            http::StatusCode::OK
        } else {
            http::StatusCode::SERVICE_UNAVAILABLE
        };
        wait_until(&format!("health {want:?}"), TIMEOUT, async || {
            let healthz = raw::http1(addr, raw::get("/healthz")).await.status;
            let mut grpc = Vec::new();
            for service in ["", "article.v1.ArticleService"] {
                let reply = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                grpc.push(reply.into_inner().status);
            }
            if healthz == want_http && grpc == [want as i32; 2] {
                Ok(())
            } else {
                Err(format!("/healthz {healthz}, gRPC health {grpc:?}"))
            }
        })
        .await
    };
    status(ServingStatus::Serving).await;

    cluster.stop().unwrap();
    // The call waits up to the pool's acquire timeout (5 s) meanwhile.
    let call = {
        let mut client = client.clone();
        tokio::spawn(async move { client.get_article(GetArticleRequest { id: a.id }).await })
    };
    status(ServingStatus::NotServing).await;
    let err = call.await.unwrap().expect_err("the database is down");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("the database is unreachable"),
        "{err:?}"
    );

    cluster.start().unwrap();
    status(ServingStatus::Serving).await;
    let got = client
        .get_article(GetArticleRequest { id: a.id })
        .await
        .expect("the same server reads again")
        .into_inner();
    assert_eq!(got.article.unwrap().title, "before");
}
