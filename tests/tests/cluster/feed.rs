//! One change feed across replicas: a write through one replica is seen by
//! a watcher on another and by a list on a third; concurrent writers on
//! three replicas give every watcher on every replica the same gap-free
//! sequence, which is also what the change log replays.

use futures::future::join_all;
use proto::v1 as pb;
use testkit::authed;

use crate::harness::{ALICE, Cluster, Seen, Watcher, assert_gap_free, create};

#[tokio::test]
async fn a_write_through_one_replica_reaches_a_watcher_on_another_and_a_list_on_a_third() {
    let cluster = Cluster::start(3).await;
    let watcher = Watcher::open(cluster.replicas[1].url(), false).await;

    let article = create(&mut cluster.client(0).await, "written on A").await;

    // The call starts after the write was acknowledged, on another replica.
    let page = cluster
        .client(2)
        .await
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles on replica C answers")
        .into_inner();
    assert_eq!(
        page.articles.first().map(|a| (a.id, a.title.as_str())),
        Some((article.id, "written on A")),
        "replica C lists the write acknowledged by replica A, newest first"
    );
    watcher.wait_for(1).await;
    assert_eq!(
        watcher.log(),
        [(watcher.start + 1, Seen::Created(article.id))],
        "the watcher on replica B receives the change made through replica A"
    );
}

#[tokio::test]
async fn concurrent_writers_on_three_replicas_give_every_watcher_the_same_gap_free_sequence() {
    const WRITERS_PER_REPLICA: usize = 3;
    const ARTICLES_PER_WRITER: usize = 8;
    // Each article is created, updated and deleted: three changes.
    const CHANGES: usize = 3 * 3 * WRITERS_PER_REPLICA * ARTICLES_PER_WRITER;

    let cluster = Cluster::start(3).await;
    let mut watchers = Vec::new();
    for replica in &cluster.replicas {
        for _ in 0..2 {
            watchers.push(Watcher::open(replica.url(), false).await);
        }
    }
    let start = watchers[0].start;
    assert!(
        watchers.iter().all(|w| w.start == start),
        "no change commits while the watchers open"
    );

    let mut writers = Vec::new();
    for replica in 0..cluster.replicas.len() {
        for writer in 0..WRITERS_PER_REPLICA {
            let mut client = cluster.client(replica).await;
            writers.push(async move {
                for i in 0..ARTICLES_PER_WRITER {
                    let title = format!("r{replica} w{writer} #{i}");
                    let article = create(&mut client, &title).await;
                    let update = pb::UpdateArticleRequest {
                        id: article.id,
                        title: format!("{title} (edited)"),
                        content: "edited".into(),
                        tags: vec![],
                        expected_version: 1,
                    };
                    client
                        .update_article(authed(ALICE, update))
                        .await
                        .expect("UpdateArticle is acknowledged");
                    client
                        .delete_article(authed(ALICE, pb::DeleteArticleRequest { id: article.id }))
                        .await
                        .expect("DeleteArticle is acknowledged");
                }
            });
        }
    }
    join_all(writers).await;

    for watcher in &watchers {
        watcher.wait_for(CHANGES).await;
    }
    let first = watchers[0].log();
    assert_gap_free("watcher 0 on replica A", &first, start, CHANGES);
    for (i, watcher) in watchers.iter().enumerate() {
        assert_eq!(
            watcher.log(),
            first,
            "watcher {i} (on replica {}) sees the same changes in the same order",
            i / 2
        );
    }
    // Per article: created, then updated to version 2, then deleted.
    for (_, seen) in &first {
        if let Seen::Updated { version, .. } = seen {
            assert_eq!(*version, 2, "every update is the article's first");
        }
    }

    // The change log, replayed on another replica, is what was delivered live.
    let replay = Watcher::open_after(cluster.replicas[2].url(), start).await;
    replay.wait_for(CHANGES).await;
    assert_eq!(
        replay.log(),
        first,
        "resuming from the start replays exactly what every watcher received"
    );
}
