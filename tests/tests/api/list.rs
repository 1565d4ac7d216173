//! ListArticles over native gRPC: newest-first order, 1-based paging with
//! defaults and clamping, negative paging rejected with BadRequest details,
//! case-insensitive text search over title or content, exact tag filter,
//! `total_count`, pages past the end, and that reads need no token.

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

use testkit::{
    TIMEOUT,
    article::{ALICE, TestServer, create, create_as_alice, list},
    authed,
};

fn list_request(page: i32, page_size: i32, query: &str, tag: &str) -> pb::ListArticlesRequest {
    pb::ListArticlesRequest {
        page,
        page_size,
        query: query.into(),
        tag: tag.into(),
    }
}

async fn list_error(
    client: &mut ArticleServiceClient<Channel>,
    request: pb::ListArticlesRequest,
) -> Status {
    tokio::time::timeout(TIMEOUT, client.list_articles(request))
        .await
        .expect("ListArticles answers in time")
        .expect_err("ListArticles should fail")
}

fn ids(response: &pb::ListArticlesResponse) -> Vec<i64> {
    response.articles.iter().map(|a| a.id).collect()
}

fn titles(response: &pb::ListArticlesResponse) -> Vec<&str> {
    response.articles.iter().map(|a| a.title.as_str()).collect()
}

/// Imports `n` articles titled `article 0`..`article n-1` as alice, in one
/// call, and returns their ids in send order.
async fn import_numbered(client: &mut ArticleServiceClient<Channel>, n: usize) -> Vec<i64> {
    let messages: Vec<_> = (0..n)
        .map(|i| create(&format!("article {i}"), &format!("body {i}"), &[]))
        .collect();
    let response = tokio::time::timeout(
        TIMEOUT,
        client.import_articles(authed(ALICE, tokio_stream::iter(messages))),
    )
    .await
    .expect("ImportArticles answers in time")
    .expect("ImportArticles succeeds")
    .into_inner();
    assert_eq!(response.ids.len(), n, "import returns one id per article");
    response.ids
}

fn violation_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT carries google.rpc.BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn lists_newest_first_by_create_time_then_id() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(create_as_alice(&mut client, &format!("one by one {i}"), &[]).await);
    }
    // Imported articles share one create_time, so their order is by id.
    let imported = import_numbered(&mut client, 3).await;

    let response = list(&mut client, list_request(0, 0, "", "")).await;
    let mut expected: Vec<i64> = created.iter().map(|a| a.id).collect();
    expected.extend(&imported);
    expected.reverse();
    assert_eq!(
        ids(&response),
        expected,
        "newest first, then by id descending"
    );
    assert_eq!(response.total_count, 8);

    let times: Vec<_> = response
        .articles
        .iter()
        .map(|a| {
            let t = a.create_time.expect("listed articles have a create_time");
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "create_time must not increase down the list: {times:?}"
    );
}

#[tokio::test]
async fn page_is_one_based_and_page_zero_means_the_first_page() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let ids_sent = import_numbered(&mut client, 7).await;
    let newest_first: Vec<i64> = ids_sent.iter().rev().copied().collect();

    let page0 = list(&mut client, list_request(0, 3, "", "")).await;
    let page1 = list(&mut client, list_request(1, 3, "", "")).await;
    let page2 = list(&mut client, list_request(2, 3, "", "")).await;
    let page3 = list(&mut client, list_request(3, 3, "", "")).await;

    assert_eq!(
        ids(&page1),
        newest_first[0..3],
        "page 1 holds the newest three"
    );
    assert_eq!(ids(&page0), ids(&page1), "page 0 means page 1");
    assert_eq!(ids(&page2), newest_first[3..6]);
    assert_eq!(ids(&page3), newest_first[6..7], "the last page is partial");
    for page in [&page0, &page1, &page2, &page3] {
        assert_eq!(
            page.total_count, 7,
            "total_count counts every match on every page"
        );
    }
}

#[tokio::test]
async fn page_size_zero_means_twenty() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    import_numbered(&mut client, 25).await;

    let response = list(&mut client, list_request(1, 0, "", "")).await;
    assert_eq!(response.articles.len(), 20, "page_size 0 means 20");
    assert_eq!(response.total_count, 25);

    let second = list(&mut client, list_request(2, 0, "", "")).await;
    assert_eq!(second.articles.len(), 5, "page 2 of size 20 holds the rest");
}

#[tokio::test]
async fn page_size_over_one_hundred_is_clamped_to_one_hundred() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let sent = import_numbered(&mut client, 105).await;
    let newest_first: Vec<i64> = sent.iter().rev().copied().collect();

    let first = list(&mut client, list_request(1, 1000, "", "")).await;
    assert_eq!(
        first.articles.len(),
        100,
        "page_size 1000 is clamped to 100"
    );
    assert_eq!(ids(&first), newest_first[..100]);
    assert_eq!(first.total_count, 105);

    let exactly = list(&mut client, list_request(1, 101, "", "")).await;
    assert_eq!(
        exactly.articles.len(),
        100,
        "page_size 101 is clamped to 100"
    );

    let max = list(&mut client, list_request(1, i32::MAX, "", "")).await;
    assert_eq!(
        max.articles.len(),
        100,
        "page_size i32::MAX is clamped to 100"
    );

    // The clamped size also sets the offset of later pages.
    let second = list(&mut client, list_request(2, 1000, "", "")).await;
    assert_eq!(
        ids(&second),
        newest_first[100..],
        "page 2 starts at offset 100"
    );
    assert_eq!(second.total_count, 105);
}

#[tokio::test]
async fn negative_page_is_invalid_argument_with_bad_request() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = list_error(&mut client, list_request(-1, 10, "", "")).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violation_fields(&status), ["page"]);
}

#[tokio::test]
async fn negative_page_size_is_invalid_argument_with_bad_request() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = list_error(&mut client, list_request(1, -5, "", "")).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violation_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn negative_page_and_page_size_are_both_reported() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = list_error(&mut client, list_request(-1, -1, "", "")).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut fields = violation_fields(&status);
    fields.sort();
    assert_eq!(fields, ["page", "page_size"], "every violation is reported");
}

#[tokio::test]
async fn query_matches_title_or_content_case_insensitively() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let by_title = client
        .create_article(authed(ALICE, create("Rust Ownership", "plain words", &[])))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response");
    let by_content = client
        .create_article(authed(
            ALICE,
            create("Notes", "all about OWNERSHIP rules", &[]),
        ))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response");
    client
        .create_article(authed(ALICE, create("Unrelated", "nothing here", &[])))
        .await
        .expect("create succeeds");

    let response = list(&mut client, list_request(1, 0, "oWnErShIp", "")).await;
    assert_eq!(
        ids(&response),
        [by_content.id, by_title.id],
        "title or content match"
    );
    assert_eq!(response.total_count, 2);

    // A substring in the middle of a word matches too.
    let response = list(&mut client, list_request(1, 0, "NERSH", "")).await;
    assert_eq!(response.total_count, 2, "substring, not whole word");

    let response = list(&mut client, list_request(1, 0, "absent-word", "")).await;
    assert!(response.articles.is_empty());
    assert_eq!(response.total_count, 0);
}

#[tokio::test]
async fn query_folds_case_of_non_ascii_letters() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let in_content = client
        .create_article(authed(
            ALICE,
            create("Alltag", "So ein ärger mit dem Wetter", &[]),
        ))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response");
    let in_title = client
        .create_article(authed(ALICE, create("Ärger im Büro", "text", &[])))
        .await
        .expect("create succeeds")
        .into_inner()
        .article
        .expect("article in response");
    client
        .create_article(authed(ALICE, create("Arger", "ascii only, no umlaut", &[])))
        .await
        .expect("create succeeds");

    let response = list(&mut client, list_request(1, 0, "ÄRGER", "")).await;
    assert_eq!(
        ids(&response),
        [in_title.id, in_content.id],
        "ÄRGER finds ärger and Ärger"
    );
    assert_eq!(response.total_count, 2);

    let response = list(&mut client, list_request(1, 0, "BÜRO", "")).await;
    assert_eq!(ids(&response), [in_title.id]);
}

#[tokio::test]
async fn query_does_not_match_across_title_and_content() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .create_article(authed(
            ALICE,
            create("ends with foo", "bar starts the content", &[]),
        ))
        .await
        .expect("create succeeds");
    // "foobar" is a substring of neither the title nor the content.
    let response = list(&mut client, list_request(1, 0, "foobar", "")).await;
    assert_eq!(response.total_count, 0, "{:?}", titles(&response));
    assert!(response.articles.is_empty());
}

#[tokio::test]
async fn tag_filter_matches_the_exact_tag_only() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let rust = create_as_alice(&mut client, "rust", &["rust", "web"]).await;
    let _rusty = create_as_alice(&mut client, "rusty", &["rusty"]).await;
    let _trust = create_as_alice(&mut client, "trust", &["trust"]).await;
    let rust_too = create_as_alice(&mut client, "rust too", &["db", "rust"]).await;
    let _none = create_as_alice(&mut client, "untagged", &[]).await;

    let response = list(&mut client, list_request(1, 0, "", "rust")).await;
    assert_eq!(
        ids(&response),
        [rust_too.id, rust.id],
        "only articles tagged exactly rust"
    );
    assert_eq!(response.total_count, 2);

    for partial in ["rus", "ust", "Rust"] {
        let response = list(&mut client, list_request(1, 0, "", partial)).await;
        assert_eq!(
            response.total_count, 0,
            "tag {partial:?} is not a substring match"
        );
        assert!(response.articles.is_empty());
    }
}

#[tokio::test]
async fn query_and_tag_combine() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let wanted = create_as_alice(&mut client, "Async Rust", &["rust"]).await;
    create_as_alice(&mut client, "Async Python", &["python"]).await;
    create_as_alice(&mut client, "Sync Rust", &["rust"]).await;

    let response = list(&mut client, list_request(1, 0, "async", "rust")).await;
    assert_eq!(ids(&response), [wanted.id], "both filters must hold");
    assert_eq!(response.total_count, 1);
}

#[tokio::test]
async fn total_count_counts_all_matches_not_just_the_page() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for i in 0..6 {
        create_as_alice(&mut client, &format!("tagged {i}"), &["t"]).await;
    }
    for i in 0..4 {
        create_as_alice(&mut client, &format!("other {i}"), &[]).await;
    }
    let response = list(&mut client, list_request(1, 2, "", "t")).await;
    assert_eq!(response.articles.len(), 2);
    assert_eq!(
        response.total_count, 6,
        "all six tagged articles are counted"
    );

    let response = list(&mut client, list_request(1, 2, "", "")).await;
    assert_eq!(response.total_count, 10);
}

#[tokio::test]
async fn page_past_the_end_is_empty_with_the_same_total_count() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    import_numbered(&mut client, 5).await;

    let response = list(&mut client, list_request(3, 5, "", "")).await;
    assert!(
        response.articles.is_empty(),
        "page 3 of size 5 is past 5 articles"
    );
    assert_eq!(response.total_count, 5);

    let far = list(&mut client, list_request(i32::MAX, 100, "", "")).await;
    assert!(far.articles.is_empty(), "a huge page number is just empty");
    assert_eq!(far.total_count, 5);

    let filtered = list(&mut client, list_request(2, 100, "article", "")).await;
    assert!(filtered.articles.is_empty());
    assert_eq!(filtered.total_count, 5, "same total_count with a query");
}

#[tokio::test]
async fn empty_database_lists_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = list(&mut client, list_request(0, 0, "", "")).await;
    assert!(response.articles.is_empty());
    assert_eq!(response.total_count, 0);
}

#[tokio::test]
async fn reads_need_no_token() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "public", &["open"]).await;

    // Plain requests without any authorization metadata.
    let response = client
        .list_articles(Request::new(list_request(0, 0, "", "")))
        .await
        .expect("ListArticles without a token succeeds")
        .into_inner();
    assert_eq!(ids(&response), [article.id]);

    let got = client
        .get_article(Request::new(pb::GetArticleRequest { id: article.id }))
        .await
        .expect("GetArticle without a token succeeds")
        .into_inner()
        .article
        .expect("article in response");
    assert_eq!(got, article);
}
