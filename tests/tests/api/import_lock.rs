//! On SQLite, ImportArticles holds the database's write lock from its first
//! message to its end; these tests pin what that costs everyone else: a
//! write that arrives meanwhile waits a bounded time and fails with
//! UNAVAILABLE (the import still commits whole), and an import that stalls
//! is ended with DEADLINE_EXCEEDED and rolled back, so the lock is freed.
//! On PostgreSQL an open import blocks no other write (only its commit is
//! serialised with the others'): the write meanwhile is acknowledged at
//! once, and the import still commits whole.

use std::time::{Duration, Instant};

use futures::channel::mpsc;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, transport::Channel};

use testkit::{
    TIMEOUT,
    article::{ALICE, BOB, Store, TestServer, create, store, total_count},
    authed,
};

/// An import whose messages the test sends one by one; its answer comes
/// from the returned task.
fn open_import(
    client: &ArticleServiceClient<Channel>,
) -> (
    mpsc::UnboundedSender<pb::CreateArticleRequest>,
    tokio::task::JoinHandle<Result<pb::ImportArticlesResponse, tonic::Status>>,
) {
    let (tx, rx) = mpsc::unbounded();
    let mut client = client.clone();
    let call = tokio::spawn(async move {
        client
            .import_articles(authed(BOB, rx))
            .await
            .map(tonic::Response::into_inner)
    });
    (tx, call)
}

#[tokio::test]
async fn a_write_during_an_open_import_waits_or_not_by_store_and_the_import_still_commits() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (tx, import) = open_import(&client);
    tx.unbounded_send(create("imported 0", "body", &[]))
        .expect("the import stream is open");
    // Keep the import alive (a message every 2 s, within its idle limit)
    // for as long as the competing write waits.
    let keep_alive = {
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 1.. {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if tx
                    .unbounded_send(create(&format!("imported {i}"), "body", &[]))
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    // The lock is taken when the first message is stored, which no client
    // can observe; a write that came first would succeed and fail the test
    // (never pass it wrongly).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let write = tokio::time::timeout(
        TIMEOUT,
        client.create_article(authed(ALICE, create("meanwhile", "body", &[]))),
    )
    .await
    .expect("a write during an import is answered within the bounded wait");
    let waited = started.elapsed();
    let written = match store() {
        Store::Sqlite => {
            let status = write.expect_err("a write cannot commit while the import holds the lock");
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(
                status.message().contains("busy") && !status.message().contains("code:"),
                "the message says the database is busy, without driver text: {status:?}"
            );
            assert!(
                waited >= Duration::from_secs(5),
                "the write waited for the lock before giving up ({waited:?})"
            );
            0
        }
        Store::Postgres => {
            write.expect("on PostgreSQL a write during an import is acknowledged");
            assert!(
                waited < Duration::from_secs(5),
                "the write did not wait for the import ({waited:?})"
            );
            1
        }
    };

    keep_alive.abort();
    let _ = keep_alive.await;
    drop(tx);
    let response = tokio::time::timeout(TIMEOUT, import)
        .await
        .expect("the import answers once its stream ends")
        .expect("the import task does not panic")
        .expect("the import commits");
    assert!(response.created_count >= 1);
    assert_eq!(
        total_count(&mut client).await,
        i64::from(response.created_count) + written,
        "the import is stored whole, and the write meanwhile only if acknowledged"
    );
}

#[tokio::test]
async fn a_stalled_import_is_ended_rolled_back_and_frees_the_write_lock() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (tx, import) = open_import(&client);
    tx.unbounded_send(create("stalled 0", "body", &[]))
        .expect("the import stream is open");
    // Then nothing, with the stream left open.
    let status = tokio::time::timeout(TIMEOUT, import)
        .await
        .expect("a stalled import is ended by the server")
        .expect("the import task does not panic")
        .expect_err("a stalled import is refused");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("nothing was imported"),
        "{status:?}"
    );
    drop(tx);

    assert_eq!(total_count(&mut client).await, 0, "nothing was stored");
    let started = Instant::now();
    client
        .create_article(authed(ALICE, create("after the stall", "body", &[])))
        .await
        .expect("the write lock is free again");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the next write did not wait for a lock"
    );
}
