//! PostgreSQL stopped and started again under running replicas: they report
//! NOT_SERVING (gRPC health and `/healthz`), calls fail UNAVAILABLE with a
//! message a person understands, then everything recovers by itself and the
//! change feed continues with nothing lost.

use std::time::Duration;

use proto::v1 as pb;
use testkit::{raw, wait_until};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::{Cluster, Seen, Watcher, create};

/// How long a replica may take to notice the database left or came back.
const NOTICE: Duration = Duration::from_secs(20);

async fn health(cluster: &Cluster, i: usize) -> Result<(ServingStatus, u16), String> {
    let replica = &cluster.replicas[i];
    let status = HealthClient::new(replica.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| format!("health check failed: {e}"))?
        .into_inner()
        .status();
    let healthz = raw::http1(replica.addr(), raw::get("/healthz")).await;
    Ok((status, healthz.status.as_u16()))
}

async fn wait_health(cluster: &Cluster, want: (ServingStatus, u16)) {
    for i in 0..cluster.replicas.len() {
        wait_until(
            &format!("replica {i} to report {want:?}"),
            NOTICE,
            async || match health(cluster, i).await? {
                seen if seen == want => Ok(()),
                seen => Err(format!("{seen:?}")),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_postgres_restart_turns_replicas_not_serving_then_everything_recovers_with_nothing_lost()
{
    let mut cluster = Cluster::start(2).await;
    wait_health(&cluster, (ServingStatus::Serving, 200)).await;
    let before = create(
        &mut cluster.client(0).await,
        "acknowledged before the outage",
    )
    .await;
    let watcher = Watcher::open(cluster.replicas[1].url(), true).await;

    cluster.pg.stop().expect("PostgreSQL stops");
    wait_health(&cluster, (ServingStatus::NotServing, 503)).await;

    let mut writer = cluster.client(0).await;
    let refused = writer
        .create_article(testkit::authed(
            crate::harness::ALICE,
            crate::harness::draft("during the outage"),
        ))
        .await
        .expect_err("a write fails while the database is down");
    let mut reader = cluster.client(1).await;
    let unread = reader
        .get_article(pb::GetArticleRequest { id: before.id })
        .await
        .expect_err("a read fails while the database is down");
    for (what, status) in [("CreateArticle", &refused), ("GetArticle", &unread)] {
        assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
        assert!(
            status.message().contains("database"),
            "{what} says what is wrong: {:?}",
            status.message()
        );
    }

    cluster.pg.start().expect("PostgreSQL starts again");
    wait_health(&cluster, (ServingStatus::Serving, 200)).await;

    let kept = reader
        .get_article(pb::GetArticleRequest { id: before.id })
        .await
        .expect("the write acknowledged before the outage is still there")
        .into_inner()
        .article
        .expect("article");
    assert_eq!(kept.title, before.title);
    let after = create(&mut writer, "acknowledged after the outage").await;
    watcher.wait_for(1).await;
    assert_eq!(
        watcher.log(),
        [(watcher.start + 1, Seen::Created(after.id))],
        "the watcher opened before the outage receives the next change, and \
         the write refused during the outage left no change behind"
    );
}
