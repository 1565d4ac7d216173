//! The ListArticles cache: repeated pages come from memory, every
//! acknowledged write (create, update, delete, import) is visible to the
//! next list, reads racing with writes never bring back an older page, and
//! `--list-cache-mib 0` turns it off. On PostgreSQL (several replicas
//! write, and none can know of another's write before acknowledging a
//! read) the cache is off: the same tests then check that every list goes
//! to the database and still sees every acknowledged write.

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::transport::Channel;

use testkit::{
    article::{ALICE, Store, TestServer, create, create_as_alice, list, store},
    authed,
};

const OFF_ON_POSTGRES: &str = "with PostgreSQL the page cache is off: no lookup is made";

fn front_page() -> pb::ListArticlesRequest {
    pb::ListArticlesRequest {
        page: 1,
        page_size: 20,
        ..Default::default()
    }
}

fn tag_page(tag: &str) -> pb::ListArticlesRequest {
    pb::ListArticlesRequest {
        tag: tag.into(),
        ..front_page()
    }
}

/// Lists `request` twice and checks the second answer came from the cache
/// (on SQLite; from the database on PostgreSQL) and equals the first.
async fn list_twice(
    server: &TestServer,
    client: &mut ArticleServiceClient<Channel>,
    request: pb::ListArticlesRequest,
) -> pb::ListArticlesResponse {
    let first = list(client, request.clone()).await;
    let before = server.list_cache();
    let second = list(client, request).await;
    match store() {
        Store::Sqlite => assert_eq!(
            server.list_cache().hits,
            before.hits + 1,
            "the repeated list is a cache hit"
        ),
        Store::Postgres => assert_eq!(server.list_cache(), before, "{OFF_ON_POSTGRES}"),
    }
    assert_eq!(first, second, "a cached page equals the stored one");
    second
}

fn titles(response: &pb::ListArticlesResponse) -> Vec<&str> {
    response.articles.iter().map(|a| a.title.as_str()).collect()
}

#[tokio::test]
async fn a_repeated_list_is_answered_from_the_cache() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create_as_alice(&mut client, "one", &["t"]).await;
    let before = server.list_cache();

    let page = list_twice(&server, &mut client, front_page()).await;
    assert_eq!(titles(&page), ["one"]);
    // Another query is another page: a miss, then a hit.
    list_twice(&server, &mut client, tag_page("t")).await;

    let after = server.list_cache();
    let expected = match store() {
        Store::Sqlite => (2, 2),
        Store::Postgres => (0, 0),
    };
    assert_eq!(
        (after.misses - before.misses, after.hits - before.hits),
        expected,
        "(misses, hits) of two pages listed twice each"
    );
}

#[tokio::test]
async fn every_acknowledged_write_is_visible_to_the_next_list() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let first = create_as_alice(&mut client, "first", &["news"]).await;
    list_twice(&server, &mut client, front_page()).await;
    list_twice(&server, &mut client, tag_page("news")).await;

    // Create.
    let second = create_as_alice(&mut client, "second", &["news"]).await;
    let page = list_twice(&server, &mut client, front_page()).await;
    assert_eq!(titles(&page), ["second", "first"]);
    assert_eq!(page.total_count, 2);
    let news = list_twice(&server, &mut client, tag_page("news")).await;
    assert_eq!(titles(&news), ["second", "first"]);

    // Update: new title, version and tags on every cached page.
    client
        .update_article(authed(
            ALICE,
            pb::UpdateArticleRequest {
                id: first.id,
                title: "first, edited".into(),
                content: "new content".into(),
                tags: vec!["other".into()],
                expected_version: first.version,
            },
        ))
        .await
        .expect("update succeeds");
    let page = list_twice(&server, &mut client, front_page()).await;
    assert_eq!(titles(&page), ["second", "first, edited"]);
    assert_eq!(page.articles[1].version, first.version + 1);
    let news = list_twice(&server, &mut client, tag_page("news")).await;
    assert_eq!(titles(&news), ["second"], "the old tag no longer lists it");

    // Delete.
    client
        .delete_article(authed(ALICE, pb::DeleteArticleRequest { id: second.id }))
        .await
        .expect("delete succeeds");
    let page = list_twice(&server, &mut client, front_page()).await;
    assert_eq!(titles(&page), ["first, edited"]);
    assert_eq!(page.total_count, 1);
    let news = list_twice(&server, &mut client, tag_page("news")).await;
    assert!(news.articles.is_empty());
    assert_eq!(news.total_count, 0);

    // Import.
    let batch = (0..3).map(|i| create(&format!("imported {i}"), "body", &["news"]));
    client
        .import_articles(authed(ALICE, tokio_stream::iter(batch)))
        .await
        .expect("import succeeds");
    let page = list_twice(&server, &mut client, front_page()).await;
    assert_eq!(page.total_count, 4);
    assert_eq!(
        titles(&page),
        ["imported 2", "imported 1", "imported 0", "first, edited"]
    );
    let news = list_twice(&server, &mut client, tag_page("news")).await;
    assert_eq!(news.total_count, 3);
}

#[tokio::test]
async fn lists_racing_with_writes_never_miss_an_acknowledged_write() {
    let server = TestServer::start().await;
    let mut writer = server.client().await;

    // Readers keep filling the cache with the front page while the writer
    // commits, so pages read just before a commit keep arriving.
    let stop = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut client = server.client().await;
        let mut stopped = stop.1.clone();
        readers.push(tokio::spawn(async move {
            let mut lists = 0u64;
            while !*stopped.borrow_and_update() {
                list(&mut client, front_page()).await;
                lists += 1;
            }
            lists
        }));
    }

    for i in 0..40 {
        let created = create_as_alice(&mut writer, &format!("race {i}"), &[]).await;
        let page = list(&mut writer, front_page()).await;
        assert_eq!(
            page.articles.first().map(|a| a.id),
            Some(created.id),
            "write {i} was acknowledged, so the next list shows it first"
        );
        assert_eq!(page.total_count, i + 1);
    }
    stop.0.send(true).expect("readers listening");
    let mut lists = 0;
    for reader in readers {
        lists += reader.await.expect("reader finished");
    }
    assert!(lists > 0, "the readers ran");
    match store() {
        Store::Sqlite => assert!(
            server.list_cache().hits > 0,
            "the cache answered some of the racing lists"
        ),
        Store::Postgres => assert_eq!(server.list_cache(), Default::default(), "{OFF_ON_POSTGRES}"),
    }
}

#[tokio::test]
async fn list_cache_mib_zero_turns_the_cache_off() {
    let server = TestServer::start_with(|s| s.list_cache_mib = 0).await;
    let mut client = server.client().await;
    create_as_alice(&mut client, "one", &[]).await;
    let first = list(&mut client, front_page()).await;
    let second = list(&mut client, front_page()).await;
    assert_eq!(first, second);
    assert_eq!(
        server.list_cache(),
        Default::default(),
        "no lookups without a cache"
    );
}
