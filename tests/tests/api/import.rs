//! ImportArticles (client streaming) over native gRPC: ids in send order,
//! the token's author, the same validation and normalisation as Create,
//! all-or-nothing (one invalid message stores nothing and is named by its
//! 0-based index), UNAUTHENTICATED without a valid token, and empty streams.

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

use testkit::{
    TIMEOUT,
    article::{ALICE, BOB, TestServer, create, create_as_alice, total_count},
    authed,
};

async fn import(
    client: &mut ArticleServiceClient<Channel>,
    request: Request<Vec<pb::CreateArticleRequest>>,
) -> Result<pb::ImportArticlesResponse, Status> {
    let (metadata, extensions, messages) = request.into_parts();
    let request = Request::from_parts(metadata, extensions, tokio_stream::iter(messages));
    tokio::time::timeout(TIMEOUT, client.import_articles(request))
        .await
        .expect("ImportArticles answers in time")
        .map(tonic::Response::into_inner)
}

async fn get(client: &mut ArticleServiceClient<Channel>, id: i64) -> pb::Article {
    client
        .get_article(pb::GetArticleRequest { id })
        .await
        .unwrap_or_else(|s| panic!("article {id} should exist: {s:?}"))
        .into_inner()
        .article
        .expect("article in GetArticle response")
}

/// Whether `message` names message `index` ("message 2", not "message 20").
fn names_index(message: &str, index: usize) -> bool {
    let needle = format!("message {index}");
    message
        .match_indices(&needle)
        .any(|(at, _)| !message[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn numbered(n: usize) -> Vec<pb::CreateArticleRequest> {
    (0..n)
        .map(|i| {
            create(
                &format!("imported {i}"),
                &format!("body {i}"),
                &["imported"],
            )
        })
        .collect()
}

#[tokio::test]
async fn import_returns_ids_in_send_order_and_stores_every_article() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let messages = numbered(50);
    let response = import(&mut client, authed(BOB, messages.clone()))
        .await
        .expect("import succeeds");
    assert_eq!(response.created_count, 50);
    assert_eq!(response.ids.len(), 50, "one id per message");
    let mut distinct = response.ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 50, "ids are distinct");

    for (message, id) in messages.iter().zip(&response.ids) {
        let article = get(&mut client, *id).await;
        assert_eq!(
            article.title, message.title,
            "id {id} belongs to the message sent at that position"
        );
        assert_eq!(article.content, message.content);
        assert_eq!(article.tags, message.tags);
        assert_eq!(
            article.author, "bob",
            "author is the name bound to the import's token"
        );
        assert_eq!(article.version, 1);
    }
    assert_eq!(total_count(&mut client).await, 50);
}

#[tokio::test]
async fn import_adds_to_existing_articles_with_the_callers_author() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let existing = create_as_alice(&mut client, "already here", &[]).await;
    let response = import(&mut client, authed(ALICE, numbered(3)))
        .await
        .expect("import succeeds");
    assert_eq!(response.created_count, 3);
    assert!(
        response.ids.iter().all(|id| *id > existing.id),
        "new ids follow existing ones"
    );
    for id in &response.ids {
        assert_eq!(get(&mut client, *id).await.author, "alice");
    }
    assert_eq!(total_count(&mut client).await, 4);
}

#[tokio::test]
async fn import_normalises_like_create() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let messages = vec![create("  padded  ", "c", &["x", "y", "x"])];
    let response = import(&mut client, authed(ALICE, messages))
        .await
        .expect("import succeeds");
    let article = get(&mut client, response.ids[0]).await;
    assert_eq!(article.title, "padded", "title is trimmed");
    let mut tags = article.tags.clone();
    tags.sort();
    assert_eq!(tags, ["x", "y"], "duplicate tags are removed");
}

#[tokio::test]
async fn one_invalid_message_stores_nothing_and_names_its_index() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create_as_alice(&mut client, "before the import", &[]).await;

    let mut messages = numbered(20);
    messages[2] = create("   ", "fine", &["Bad Tag"]);
    let status = import(&mut client, authed(ALICE, messages))
        .await
        .expect_err("an import with an invalid message fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        names_index(status.message(), 2),
        "the error names the 0-based index of the invalid message: {:?}",
        status.message()
    );
    let details = status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT carries google.rpc.BadRequest details");
    let mut fields: Vec<&str> = details
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    fields.sort_unstable();
    fields.dedup();
    assert_eq!(
        fields,
        ["tags", "title"],
        "every violation of the message is reported"
    );

    assert_eq!(
        total_count(&mut client).await,
        1,
        "nothing from the import was stored"
    );
    let listed = client
        .list_articles(pb::ListArticlesRequest {
            tag: "imported".into(),
            ..Default::default()
        })
        .await
        .expect("list succeeds")
        .into_inner();
    assert_eq!(
        listed.total_count, 0,
        "not even the valid messages before the invalid one"
    );
}

#[tokio::test]
async fn an_invalid_last_message_stores_nothing_and_names_its_index() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut messages = numbered(100);
    messages[99] = create("ok", &"x".repeat(100_001), &[]);
    let status = import(&mut client, authed(ALICE, messages))
        .await
        .expect_err("an import with an invalid message fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(names_index(status.message(), 99), "{:?}", status.message());
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    assert!(
        details
            .field_violations
            .iter()
            .any(|v| v.field == "content"),
        "{:?}",
        details.field_violations
    );
    assert_eq!(total_count(&mut client).await, 0, "nothing was stored");
}

#[tokio::test]
async fn an_invalid_first_message_is_message_zero() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut messages = numbered(5);
    messages[0].tags = (0..11).map(|i| format!("t{i}")).collect();
    let status = import(&mut client, authed(ALICE, messages))
        .await
        .expect_err("an import with an invalid message fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(names_index(status.message(), 0), "{:?}", status.message());
    assert_eq!(total_count(&mut client).await, 0);
}

#[tokio::test]
async fn import_without_a_valid_token_is_unauthenticated_and_stores_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = import(&mut client, Request::new(numbered(5)))
        .await
        .expect_err("import without a token fails");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let status = import(&mut client, authed("mallory-token-0123456789", numbered(5)))
        .await
        .expect_err("import with an unknown token fails");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    assert_eq!(total_count(&mut client).await, 0, "nothing was stored");
}

#[tokio::test]
async fn an_empty_import_creates_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = import(&mut client, authed(ALICE, Vec::new()))
        .await
        .expect("empty import succeeds");
    assert_eq!(response.created_count, 0);
    assert!(response.ids.is_empty());
    assert_eq!(total_count(&mut client).await, 0);
}
