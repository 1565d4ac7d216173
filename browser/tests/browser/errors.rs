//! [`grpc_browser::Error`] made from real answers: codes, messages,
//! request ids, field violations, retryability.

use grpc_browser::{Client, Error, Violation};
use proto::v1 as pb;
use tonic::{Code, Request};
use wasm_bindgen_test::wasm_bindgen_test;

use crate::{Articles, articles, authorized, unique, within};

#[wasm_bindgen_test]
async fn invalid_argument_carries_the_field_violations() {
    let status = within(
        "CreateArticle",
        articles().create_article(authorized(pb::CreateArticleRequest {
            title: "   ".into(),
            content: String::new(),
            tags: vec!["Not Valid".into()],
        })),
    )
    .await
    .expect_err("an empty title must be refused");
    let error = Error::from(status);
    assert_eq!(error.code, Code::InvalidArgument, "{error:?}");
    let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["title", "tags"], "{error:?}");
    assert_eq!(
        error.violations[0],
        Violation {
            field: "title".into(),
            description: "title must not be empty".into(),
        }
    );
    assert!(
        error.violations[1].description.contains("lowercase"),
        "{:?}",
        error.violations[1]
    );
    assert!(!error.is_retryable());
}

#[wasm_bindgen_test]
async fn a_write_without_a_valid_token_is_unauthenticated() {
    let draft = || pb::CreateArticleRequest {
        title: unique("unauthenticated"),
        content: String::new(),
        tags: Vec::new(),
    };
    let error = Error::from(
        within("CreateArticle", articles().create_article(draft()))
            .await
            .expect_err("a write without a token must fail"),
    );
    assert_eq!(error.code, Code::Unauthenticated, "{error:?}");
    assert!(error.violations.is_empty());

    let mut request = Request::new(draft());
    request
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    let error = Error::from(
        within("CreateArticle", articles().create_article(request))
            .await
            .expect_err("a write with a wrong token must fail"),
    );
    assert_eq!(error.code, Code::Unauthenticated, "{error:?}");
    assert!(!error.is_retryable());
}

#[wasm_bindgen_test]
async fn errors_carry_the_request_id() {
    // One the server makes up…
    let error = Error::from(
        within(
            "GetArticle",
            articles().get_article(pb::GetArticleRequest { id: i64::MAX - 3 }),
        )
        .await
        .expect_err("missing article"),
    );
    assert_eq!(error.code, Code::NotFound);
    let made = error
        .request_id
        .expect("no x-request-id in the error (is it exposed by CORS?)");
    assert!(!made.is_empty());

    // …and the caller's own, echoed.
    let ours = unique("request");
    let mut request = Request::new(pb::GetArticleRequest { id: i64::MAX - 3 });
    request
        .metadata_mut()
        .insert("x-request-id", ours.parse().unwrap());
    let error = Error::from(
        within("GetArticle", articles().get_article(request))
            .await
            .expect_err("missing article"),
    );
    assert_eq!(error.request_id.as_deref(), Some(ours.as_str()));
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_unavailable_and_retryable() {
    // Nothing listens on port 1 (and browsers refuse it): `fetch` fails
    // the way it does for a server that is down.
    let mut client = Articles::new(Client::new("http://127.0.0.1:1"));
    let error = Error::from(
        within(
            "GetArticle",
            client.get_article(pb::GetArticleRequest { id: 1 }),
        )
        .await
        .expect_err("nothing answers on port 1"),
    );
    assert_eq!(error.code, Code::Unavailable, "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.request_id, None);
}

#[wasm_bindgen_test]
async fn a_message_over_the_size_limit_is_resource_exhausted_not_a_network_error() {
    // 5 MiB against the server's 4 MiB default. The server answers as soon
    // as it reads the frame header, while the browser is still sending;
    // the status reaches the page only if the server reads the rest before
    // closing (fetch would otherwise reject: "Failed to fetch").
    let status = within(
        "CreateArticle",
        articles().create_article(authorized(pb::CreateArticleRequest {
            title: unique("too-big"),
            content: "x".repeat(5 * 1024 * 1024),
            tags: Vec::new(),
        })),
    )
    .await
    .expect_err("a 5 MiB message must be refused");
    let error = Error::from(status);
    assert_eq!(error.code, Code::ResourceExhausted, "{error:?}");
    assert!(error.message.contains("limit"), "{error:?}");
}
