//! Through HAProxy with the repository's configuration: watchers whose
//! replica is killed (`kill -9`) resume on another replica with no gap and
//! no duplicate, and a replica that drains (SIGTERM) leaves the rotation
//! without failing a call.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use proto::v1 as pb;

use crate::harness::{Cluster, Watcher, assert_gap_free, create};

#[tokio::test]
async fn watchers_resume_through_haproxy_without_gap_or_duplicate_after_kill_9_of_their_replica() {
    const WATCHERS: usize = 6;
    const BEFORE: usize = 5;
    const AFTER: usize = 5;
    let mut cluster = Cluster::start_balanced(3).await;
    let url = cluster.lb_url();
    // Round robin over three replicas: two watchers on each.
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        watchers.push(Watcher::open(&url, true).await);
    }
    let start = watchers[0].start;

    let mut writer = cluster.lb_client().await;
    for i in 0..BEFORE {
        create(&mut writer, &format!("before the kill #{i}")).await;
    }
    for watcher in &watchers {
        watcher.wait_for(BEFORE).await;
    }

    cluster.replicas[0].kill_9().await;

    // Every write is acknowledged: HAProxy retries a connection refused by
    // the dead replica on another one.
    let mut writer = cluster.lb_client().await;
    for i in 0..AFTER {
        create(&mut writer, &format!("after the kill #{i}")).await;
    }
    for watcher in &watchers {
        watcher.wait_for(BEFORE + AFTER).await;
    }
    for (i, watcher) in watchers.iter().enumerate() {
        assert_gap_free(
            &format!("watcher {i}"),
            &watcher.log(),
            start,
            BEFORE + AFTER,
        );
    }
    let resumed = watchers.iter().filter(|w| !w.resumes().is_empty()).count();
    assert!(
        resumed >= 1,
        "at least one watcher was on the killed replica and had to resume"
    );
    assert!(
        resumed < WATCHERS,
        "only the watchers of the killed replica resumed, not all {WATCHERS}"
    );
}

#[tokio::test]
async fn a_draining_replica_leaves_the_rotation_without_failing_a_call() {
    let mut cluster = Cluster::start_balanced(2).await;
    let article = create(&mut cluster.lb_client().await, "read during the drain").await;

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut client = cluster.lb_client().await;
        let (stop, calls) = (stop.clone(), calls.clone());
        readers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client
                    .get_article(pb::GetArticleRequest { id: article.id })
                    .await
                {
                    Ok(_) => {}
                    Err(status) => {
                        failures.push(format!("{:?}: {}", status.code(), status.message()))
                    }
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    let before = calls.load(Ordering::Relaxed);
    cluster.replicas[0].terminate().await;
    // Keep calling after the replica is gone, until HAProxy has answered a
    // good number of calls without it.
    let gone = calls.load(Ordering::Relaxed);
    testkit::wait_for("200 calls after the replica exited", || {
        calls.load(Ordering::Relaxed) >= gone + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for reader in readers {
        failures.extend(reader.await.expect("reader task"));
    }
    assert!(
        failures.is_empty(),
        "no call fails while a replica drains and exits ({} calls from {before} on): {failures:?}",
        calls.load(Ordering::Relaxed)
    );
}
