//! Create, Get, Update and Delete over native gRPC: versions, authors bound
//! to tokens, normalisation (trimmed title, deduplicated tags), NOT_FOUND,
//! optimistic concurrency (ABORTED changes nothing), validation with every
//! violation in `google.rpc.BadRequest` on Create and Update, and that
//! writes without a valid bearer token are UNAUTHENTICATED and write nothing.

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tonic::{Code, Request, Status, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt as _;

use testkit::{
    TIMEOUT,
    article::{ALICE, BOB, TestServer, create, create_as_alice, total_count},
    authed,
};

fn update(
    id: i64,
    title: &str,
    content: &str,
    tags: &[&str],
    expected_version: i64,
) -> pb::UpdateArticleRequest {
    pb::UpdateArticleRequest {
        id,
        title: title.into(),
        content: content.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        expected_version,
    }
}

async fn get(client: &mut ArticleServiceClient<Channel>, id: i64) -> Result<pb::Article, Status> {
    tokio::time::timeout(TIMEOUT, client.get_article(pb::GetArticleRequest { id }))
        .await
        .expect("GetArticle answers in time")
        .map(|r| {
            r.into_inner()
                .article
                .expect("article in GetArticle response")
        })
}

async fn try_create(
    client: &mut ArticleServiceClient<Channel>,
    request: Request<pb::CreateArticleRequest>,
) -> Result<pb::Article, Status> {
    tokio::time::timeout(TIMEOUT, client.create_article(request))
        .await
        .expect("CreateArticle answers in time")
        .map(|r| {
            r.into_inner()
                .article
                .expect("article in CreateArticle response")
        })
}

async fn try_update(
    client: &mut ArticleServiceClient<Channel>,
    request: Request<pb::UpdateArticleRequest>,
) -> Result<pb::Article, Status> {
    tokio::time::timeout(TIMEOUT, client.update_article(request))
        .await
        .expect("UpdateArticle answers in time")
        .map(|r| {
            r.into_inner()
                .article
                .expect("article in UpdateArticle response")
        })
}

async fn try_delete(
    client: &mut ArticleServiceClient<Channel>,
    request: Request<pb::DeleteArticleRequest>,
) -> Result<(), Status> {
    tokio::time::timeout(TIMEOUT, client.delete_article(request))
        .await
        .expect("DeleteArticle answers in time")
        .map(|_| ())
}

/// The fields named by the status's BadRequest violations, in order.
fn violation_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT carries google.rpc.BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Asserts `result` is INVALID_ARGUMENT with at least one violation of
/// `field` and only violations of fields in `allowed`.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, case: &str) {
    let status = result.expect_err(&format!("{case}: should be rejected"));
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    let fields = violation_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "{case}: expected a violation of {field:?}, got {fields:?}"
    );
    assert!(
        fields.iter().all(|f| f == field),
        "{case}: only {field:?} is wrong, got {fields:?}"
    );
}

fn tags_of(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tag-{i}")).collect()
}

fn with_auth<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = value.parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

/// Write requests carrying no, an unknown, or a non-Bearer credential.
fn bad_credentials<T: Clone>(message: &T) -> Vec<(&'static str, Request<T>)> {
    vec![
        ("no authorization header", Request::new(message.clone())),
        (
            "an unknown token",
            authed("mallory-token-0123456789", message.clone()),
        ),
        (
            "an empty bearer token",
            with_auth(message.clone(), "Bearer "),
        ),
        (
            "the Basic scheme",
            with_auth(message.clone(), &format!("Basic {ALICE}")),
        ),
        ("a bare token", with_auth(message.clone(), ALICE)),
        (
            "the Token scheme",
            with_auth(message.clone(), &format!("Token {ALICE}")),
        ),
    ]
}

// ---- Create and Get ----

#[tokio::test]
async fn create_returns_version_one_and_get_returns_the_same_article() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = try_create(
        &mut client,
        authed(ALICE, create("First", "Hello, world", &["intro", "rust"])),
    )
    .await
    .expect("create succeeds");
    assert!(article.id > 0, "ids are positive");
    assert_eq!(article.version, 1, "a new article is at version 1");
    assert_eq!(article.title, "First");
    assert_eq!(article.content, "Hello, world");
    assert_eq!(article.tags, ["intro", "rust"]);
    let created = article.create_time.expect("create_time is set");
    assert_eq!(
        article.update_time,
        Some(created),
        "update_time starts at create_time"
    );
    assert!(
        created.seconds > 1_600_000_000,
        "create_time is a real time: {created:?}"
    );

    assert_eq!(
        get(&mut client, article.id).await.expect("get succeeds"),
        article
    );
}

#[tokio::test]
async fn author_is_the_name_bound_to_the_token() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let by_alice = try_create(&mut client, authed(ALICE, create("a", "x", &[])))
        .await
        .expect("create as alice");
    let by_bob = try_create(&mut client, authed(BOB, create("b", "x", &[])))
        .await
        .expect("create as bob");
    assert_eq!(by_alice.author, "alice");
    assert_eq!(by_bob.author, "bob");
    assert_eq!(
        get(&mut client, by_bob.id)
            .await
            .expect("article exists")
            .author,
        "bob"
    );

    // The author stays the creator's when someone else updates the article.
    let updated = try_update(
        &mut client,
        authed(BOB, update(by_alice.id, "a2", "y", &[], 0)),
    )
    .await
    .expect("bob may update");
    assert_eq!(
        updated.author, "alice",
        "author is whoever created the article"
    );
}

#[tokio::test]
async fn create_trims_the_title_and_removes_duplicate_tags() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = try_create(
        &mut client,
        authed(
            ALICE,
            create(
                "  \t Spaced out \n ",
                "  content is kept as is  ",
                &["b", "a", "b", "a", "c"],
            ),
        ),
    )
    .await
    .expect("create succeeds");
    assert_eq!(article.title, "Spaced out", "title is trimmed");
    assert_eq!(
        article.content, "  content is kept as is  ",
        "content is not trimmed"
    );
    let mut tags = article.tags.clone();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c"], "duplicate tags are removed");
    assert_eq!(
        get(&mut client, article.id)
            .await
            .expect("article exists")
            .title,
        "Spaced out"
    );
}

#[tokio::test]
async fn get_of_an_unknown_id_is_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "exists", &[]).await;
    for id in [article.id + 1, 999_999, i64::MAX] {
        let status = get(&mut client, id)
            .await
            .expect_err("unknown id is an error");
        assert_eq!(status.code(), Code::NotFound, "id {id}: {status:?}");
    }
}

// ---- Update ----

#[tokio::test]
async fn update_replaces_fields_and_bumps_the_version_each_time() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let original = create_as_alice(&mut client, "v1", &["old", "keep"]).await;

    let second = try_update(
        &mut client,
        authed(
            ALICE,
            update(original.id, " v2 ", "new body", &["keep", "new", "new"], 0),
        ),
    )
    .await
    .expect("first update succeeds");
    assert_eq!(second.id, original.id);
    assert_eq!(second.version, 2);
    assert_eq!(second.title, "v2", "update trims the title too");
    assert_eq!(second.content, "new body");
    assert_eq!(
        second.tags,
        ["keep", "new"],
        "tags are replaced and deduplicated"
    );
    assert_eq!(
        second.create_time, original.create_time,
        "create_time does not change"
    );
    let (created, updated) = (
        original.create_time.expect("create_time"),
        second.update_time.expect("update_time"),
    );
    assert!(
        (updated.seconds, updated.nanos) >= (created.seconds, created.nanos),
        "update_time {updated:?} is not before create_time {created:?}"
    );
    assert_eq!(
        get(&mut client, original.id).await.expect("article exists"),
        second
    );

    let third = try_update(
        &mut client,
        authed(ALICE, update(original.id, "v3", "", &[], 2)),
    )
    .await
    .expect("second update succeeds");
    assert_eq!(third.version, 3);
    assert_eq!(third.content, "", "content may be emptied");
    assert!(third.tags.is_empty(), "tags may be cleared");
    assert_eq!(
        get(&mut client, original.id).await.expect("article exists"),
        third
    );
}

#[tokio::test]
async fn expected_version_zero_is_unconditional() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "v1", &[]).await;
    for (n, title) in ["a", "b", "c"].iter().enumerate() {
        let updated = try_update(
            &mut client,
            authed(BOB, update(article.id, title, "x", &[], 0)),
        )
        .await
        .expect("unconditional update succeeds");
        assert_eq!(updated.version, 2 + n as i64);
        assert_eq!(updated.title, *title);
    }
}

#[tokio::test]
async fn version_mismatch_is_aborted_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "v1", &["a"]).await;
    let current = try_update(
        &mut client,
        authed(ALICE, update(article.id, "v2", "body", &["b"], 1)),
    )
    .await
    .expect("update with the right expected_version succeeds");
    assert_eq!(current.version, 2);

    // A stale version (1) and a future one (7) both conflict.
    for expected in [1, 7] {
        let status = try_update(
            &mut client,
            authed(BOB, update(article.id, "lost", "lost", &["lost"], expected)),
        )
        .await
        .expect_err("mismatched expected_version is rejected");
        assert_eq!(
            status.code(),
            Code::Aborted,
            "expected_version {expected}: {status:?}"
        );
        assert_eq!(
            get(&mut client, article.id).await.expect("article exists"),
            current,
            "a conflicting update changes nothing"
        );
    }
}

#[tokio::test]
async fn update_of_an_unknown_id_is_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "exists", &[]).await;
    for expected_version in [0, 1] {
        let status = try_update(
            &mut client,
            authed(
                ALICE,
                update(article.id + 100, "t", "c", &[], expected_version),
            ),
        )
        .await
        .expect_err("unknown id is an error");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    assert_eq!(total_count(&mut client).await, 1, "nothing was created");
}

// ---- Delete ----

#[tokio::test]
async fn delete_removes_the_article() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let gone = create_as_alice(&mut client, "to delete", &["x"]).await;
    let kept = create_as_alice(&mut client, "to keep", &["x"]).await;

    try_delete(
        &mut client,
        authed(BOB, pb::DeleteArticleRequest { id: gone.id }),
    )
    .await
    .expect("delete succeeds");
    let status = get(&mut client, gone.id)
        .await
        .expect_err("deleted article is gone");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        get(&mut client, kept.id)
            .await
            .expect("other article stays"),
        kept
    );
    assert_eq!(total_count(&mut client).await, 1);

    let status = try_delete(
        &mut client,
        authed(ALICE, pb::DeleteArticleRequest { id: gone.id }),
    )
    .await
    .expect_err("deleting twice fails");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let status = try_update(
        &mut client,
        authed(ALICE, update(gone.id, "back", "c", &[], 0)),
    )
    .await
    .expect_err("updating a deleted article fails");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn delete_of_an_unknown_id_is_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "exists", &[]).await;
    let status = try_delete(
        &mut client,
        authed(ALICE, pb::DeleteArticleRequest { id: article.id + 1 }),
    )
    .await
    .expect_err("unknown id is an error");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        get(&mut client, article.id).await.expect("article exists"),
        article
    );
}

// ---- Validation, on Create and on Update ----

/// A request that breaks one rule, and the field it must be reported on.
struct Invalid {
    case: &'static str,
    field: &'static str,
    title: String,
    content: String,
    tags: Vec<String>,
}

fn invalid_cases() -> Vec<Invalid> {
    let case = |case, field, title: String, content: String, tags: Vec<String>| Invalid {
        case,
        field,
        title,
        content,
        tags,
    };
    let ok_title = || "valid title".to_string();
    let ok_content = || "valid content".to_string();
    vec![
        case("empty title", "title", String::new(), ok_content(), vec![]),
        case(
            "whitespace title",
            "title",
            " \t\n  ".into(),
            ok_content(),
            vec![],
        ),
        // 201 characters but 402 bytes: characters are counted.
        case(
            "title of 201 characters",
            "title",
            "é".repeat(201),
            ok_content(),
            vec![],
        ),
        case(
            "title of 201 4-byte characters",
            "title",
            "🦀".repeat(201),
            ok_content(),
            vec![],
        ),
        case(
            "content of 100,001 bytes",
            "content",
            ok_title(),
            "x".repeat(100_001),
            vec![],
        ),
        // 50,001 characters but 100,002 bytes: bytes are counted.
        case(
            "content of 100,002 bytes in 2-byte chars",
            "content",
            ok_title(),
            "é".repeat(50_001),
            vec![],
        ),
        case(
            "11 distinct tags",
            "tags",
            ok_title(),
            ok_content(),
            tags_of(11),
        ),
        case(
            "uppercase tag",
            "tags",
            ok_title(),
            ok_content(),
            vec!["Rust".into()],
        ),
        case(
            "tag with a space",
            "tags",
            ok_title(),
            ok_content(),
            vec!["a b".into()],
        ),
        case(
            "tag with a plus",
            "tags",
            ok_title(),
            ok_content(),
            vec!["c++".into()],
        ),
        case(
            "tag with an underscore",
            "tags",
            ok_title(),
            ok_content(),
            vec!["snake_case".into()],
        ),
        case(
            "tag with a non-ASCII letter",
            "tags",
            ok_title(),
            ok_content(),
            vec!["über".into()],
        ),
        case(
            "empty tag",
            "tags",
            ok_title(),
            ok_content(),
            vec!["ok".into(), String::new()],
        ),
        case(
            "tag of 33 characters",
            "tags",
            ok_title(),
            ok_content(),
            vec!["a".repeat(33)],
        ),
    ]
}

#[tokio::test]
async fn create_rejects_each_invalid_field_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for c in invalid_cases() {
        let request = pb::CreateArticleRequest {
            title: c.title,
            content: c.content,
            tags: c.tags,
        };
        assert_invalid(
            try_create(&mut client, authed(ALICE, request)).await,
            c.field,
            c.case,
        );
    }
    assert_eq!(
        total_count(&mut client).await,
        0,
        "no invalid create was stored"
    );
}

#[tokio::test]
async fn update_rejects_each_invalid_field_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "original", &["orig"]).await;
    for c in invalid_cases() {
        let request = pb::UpdateArticleRequest {
            id: article.id,
            title: c.title,
            content: c.content,
            tags: c.tags,
            expected_version: 0,
        };
        assert_invalid(
            try_update(&mut client, authed(ALICE, request)).await,
            c.field,
            c.case,
        );
    }
    assert_eq!(
        get(&mut client, article.id).await.expect("article exists"),
        article,
        "article unchanged"
    );
}

#[tokio::test]
async fn limits_themselves_are_accepted() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let title_200 = "é".repeat(200);
    let padded_title = format!("   {}   ", "🦀".repeat(200));
    let content_100k = "x".repeat(100_000);
    let content_100k_multibyte = "é".repeat(50_000);
    let ten: Vec<String> = tags_of(10);
    let mut ten_with_duplicates = tags_of(10);
    ten_with_duplicates.extend(tags_of(5));
    let edge_tags = vec!["a".repeat(32), "0-9".into(), "a".into(), "-".into()];

    let cases: Vec<(&str, pb::CreateArticleRequest)> = vec![
        (
            "title of 200 2-byte characters",
            pb::CreateArticleRequest {
                title: title_200.clone(),
                content: "c".into(),
                tags: vec![],
            },
        ),
        (
            "padded title of 200 characters",
            pb::CreateArticleRequest {
                title: padded_title,
                content: "c".into(),
                tags: vec![],
            },
        ),
        (
            "content of 100,000 bytes",
            pb::CreateArticleRequest {
                title: "t".into(),
                content: content_100k.clone(),
                tags: vec![],
            },
        ),
        (
            "content of 100,000 bytes in 2-byte chars",
            pb::CreateArticleRequest {
                title: "t".into(),
                content: content_100k_multibyte,
                tags: vec![],
            },
        ),
        (
            "10 tags",
            pb::CreateArticleRequest {
                title: "t".into(),
                content: "c".into(),
                tags: ten.clone(),
            },
        ),
        (
            "15 tags that are 10 without duplicates",
            pb::CreateArticleRequest {
                title: "t".into(),
                content: "c".into(),
                tags: ten_with_duplicates.clone(),
            },
        ),
        (
            "tags at the edges of the rules",
            pb::CreateArticleRequest {
                title: "t".into(),
                content: "c".into(),
                tags: edge_tags.clone(),
            },
        ),
    ];
    for (case, request) in cases {
        let article = try_create(&mut client, authed(ALICE, request.clone()))
            .await
            .unwrap_or_else(|s| panic!("create with {case} should succeed: {s:?}"));
        assert_eq!(article.title, request.title.trim(), "{case}");
        assert_eq!(article.content, request.content, "{case}");
        let mut distinct = request.tags.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            article.tags.len(),
            distinct.len(),
            "{case}: duplicates are removed before counting"
        );
        // The same limits hold on update.
        let updated = try_update(
            &mut client,
            authed(
                ALICE,
                pb::UpdateArticleRequest {
                    id: article.id,
                    title: request.title.clone(),
                    content: request.content.clone(),
                    tags: request.tags.clone(),
                    expected_version: 1,
                },
            ),
        )
        .await
        .unwrap_or_else(|s| panic!("update with {case} should succeed: {s:?}"));
        assert_eq!(updated.version, 2, "{case}");
    }
}

#[tokio::test]
async fn every_violation_is_reported_on_create() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let request = pb::CreateArticleRequest {
        title: "   ".into(),
        content: "x".repeat(100_001),
        tags: vec!["Bad".into(), "ok".into()],
    };
    let status = try_create(&mut client, authed(ALICE, request))
        .await
        .expect_err("invalid create");
    assert_every_violation(&status);
    assert_eq!(total_count(&mut client).await, 0);
}

#[tokio::test]
async fn every_violation_is_reported_on_update() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "original", &[]).await;
    let request = update(
        article.id,
        &"t".repeat(201),
        &"x".repeat(100_001),
        &["a b"],
        0,
    );
    let status = try_update(&mut client, authed(ALICE, request))
        .await
        .expect_err("invalid update");
    assert_every_violation(&status);
    assert_eq!(
        get(&mut client, article.id).await.expect("article exists"),
        article
    );
}

#[tokio::test]
async fn every_bad_tag_and_the_tag_count_are_reported() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut tags = tags_of(10);
    tags.push("UPPER".into());
    tags.push(String::new());
    let request = pb::CreateArticleRequest {
        title: "t".into(),
        content: "c".into(),
        tags,
    };
    let status = try_create(&mut client, authed(ALICE, request))
        .await
        .expect_err("invalid create");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    let on_tags = details
        .field_violations
        .iter()
        .filter(|v| v.field == "tags")
        .count();
    assert!(
        on_tags >= 3,
        "two bad tags and too many tags are three problems: {:?}",
        details.field_violations
    );
    assert!(
        details
            .field_violations
            .iter()
            .all(|v| !v.description.is_empty()),
        "each violation is described"
    );
}

fn assert_every_violation(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    let fields: Vec<&str> = details
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert!(
        fields.len() >= 3,
        "every violation is reported, not just the first: {fields:?}"
    );
    for field in ["title", "content", "tags"] {
        assert!(
            fields.contains(&field),
            "a violation names {field:?}: {fields:?}"
        );
    }
    assert!(
        fields
            .iter()
            .all(|f| ["title", "content", "tags"].contains(f)),
        "fields are named as in the proto: {fields:?}"
    );
}

// ---- Authentication of writes ----

#[tokio::test]
async fn create_without_a_valid_bearer_token_is_unauthenticated_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let message = create("sneaky", "content", &["x"]);
    for (case, request) in bad_credentials(&message) {
        let status = try_create(&mut client, request).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    }
    assert_eq!(
        total_count(&mut client).await,
        0,
        "no unauthenticated create was stored"
    );
}

#[tokio::test]
async fn update_without_a_valid_bearer_token_is_unauthenticated_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "original", &["keep"]).await;
    let message = update(article.id, "hijacked", "hijacked", &["evil"], 0);
    for (case, request) in bad_credentials(&message) {
        let status = try_update(&mut client, request).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    }
    assert_eq!(
        get(&mut client, article.id).await.expect("article exists"),
        article,
        "article unchanged"
    );
}

#[tokio::test]
async fn delete_without_a_valid_bearer_token_is_unauthenticated_and_deletes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let article = create_as_alice(&mut client, "stays", &[]).await;
    let message = pb::DeleteArticleRequest { id: article.id };
    for (case, request) in bad_credentials(&message) {
        let status = try_delete(&mut client, request).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    }
    assert_eq!(
        get(&mut client, article.id)
            .await
            .expect("article still exists"),
        article
    );
    assert_eq!(total_count(&mut client).await, 1);
}
