//! Several replicas: the app in headless Chromium, served through HAProxy
//! (the repository's `deploy/haproxy.cfg`) by two replicas on one
//! PostgreSQL, shows live a change written through either replica — so at
//! least one of them is not the replica its change feed is connected to.

use std::path::Path;

use testkit::{
    article::{TestServer, create_as_alice, settings},
    haproxy::Haproxy,
    postgres::PgCluster,
};

use crate::harness::{Chromedriver, wait_for, web_dist};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_haproxy_the_app_shows_live_a_change_written_on_another_replica() {
    let pg = PgCluster::temporary().expect("a PostgreSQL cluster starts");
    let database = pg.create_database("e2e").expect("a database is created");
    let dist = web_dist();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut replica = settings(Path::new("unused.db"));
        replica.database_url = database.clone();
        replica.runtime.static_dir = Some(dist.clone());
        replica.demo_data = true;
        replicas.push(TestServer::start_on(replica).await);
    }
    let config = testkit::haproxy::deploy_config();
    let work = tempfile::tempdir().expect("temp dir");
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();
    let lb = Haproxy::start(&config, work.path(), &addrs).expect("HAProxy starts");

    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&format!("{}/", lb.url().trim_end_matches('/')))
        .await;
    browser.wait_until_live().await;
    browser.mark_document().await;

    for (i, replica) in replicas.iter().enumerate() {
        let mut client = replica.client().await;
        let article = create_as_alice(&mut client, &format!("written on replica {i}"), &[]).await;
        wait_for(
            &format!("the row of the article written on replica {i}"),
            async || {
                let rows = browser.row_ids().await;
                if rows.first() == Some(&article.id) {
                    Ok(())
                } else {
                    Err(format!("{rows:?}"))
                }
            },
        )
        .await;
    }
    browser.assert_not_reloaded().await;
}
