//! The documented runtime example (`server/examples/echo_beside_articles.rs`,
//! whose application is `testkit::article::echo_beside_articles`): a
//! user-defined EchoService mounted beside ArticleService answers on the
//! same port over native gRPC and gRPC-web, and shows up in health and
//! reflection like the built-in service.

use futures::StreamExt as _;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use testkit::echo::{EchoServiceClient, pb::EchoRequest};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use testkit::{
    TIMEOUT,
    article::{ALICE, Settings, TestServer, create, create_as_alice, echo_beside_articles},
    authed,
    echo::SERVICE_NAME as ECHO_SERVICE,
};

/// A server built the example's way, with the test settings.
pub async fn start_example() -> TestServer {
    start_example_with(|_| {}).await
}

/// Like [`start_example`], with settings that `adjust` may change.
pub async fn start_example_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
    TestServer::start_app(adjust, echo_beside_articles).await
}

#[tokio::test]
async fn echo_and_articles_answer_on_one_port_over_native_grpc() {
    let server = start_example().await;
    let channel = server.channel().await;
    let mut echo = EchoServiceClient::new(channel.clone());
    let mut articles = ArticleServiceClient::new(channel);

    let reply = echo
        .echo(EchoRequest {
            message: "hello beside articles".into(),
            delay_ms: 0,
        })
        .await
        .expect("Echo answers over native gRPC")
        .into_inner();
    assert_eq!(reply.message, "hello beside articles");

    let created = create_as_alice(&mut articles, "Beside the echo", &["example"]).await;
    assert_eq!(created.author, "alice");
    let listed = articles
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles answers on the example's port")
        .into_inner();
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.articles[0].id, created.id);

    server.shutdown().await;
}

#[tokio::test]
async fn echo_and_articles_answer_over_grpc_web_with_tonic_web_client() {
    let server = start_example().await;
    // tonic-web's client layer over a plain HTTP/1.1 client: the browser's
    // protocol, spoken by a library rather than framed by hand.
    let http = Client::builder(TokioExecutor::new()).build_http();
    let web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let origin: http::Uri = server.url.parse().expect("server url is a URI");
    let mut echo = EchoServiceClient::with_origin(web.clone(), origin.clone());
    let mut articles = ArticleServiceClient::with_origin(web, origin);

    let reply = tokio::time::timeout(
        TIMEOUT,
        echo.echo(EchoRequest {
            message: "hello over grpc-web".into(),
            delay_ms: 0,
        }),
    )
    .await
    .expect("Echo over gRPC-web answers in time")
    .expect("Echo answers over gRPC-web")
    .into_inner();
    assert_eq!(reply.message, "hello over grpc-web");

    let created = tokio::time::timeout(
        TIMEOUT,
        articles.create_article(authed(
            ALICE,
            create("Written over gRPC-web", "body", &["web"]),
        )),
    )
    .await
    .expect("CreateArticle over gRPC-web answers in time")
    .expect("CreateArticle succeeds over gRPC-web")
    .into_inner()
    .article
    .expect("the created article is returned");
    assert_eq!(created.author, "alice");

    let got = tokio::time::timeout(
        TIMEOUT,
        articles.get_article(pb::GetArticleRequest { id: created.id }),
    )
    .await
    .expect("GetArticle over gRPC-web answers in time")
    .expect("GetArticle succeeds over gRPC-web")
    .into_inner()
    .article
    .expect("the article is returned");
    assert_eq!(got.title, "Written over gRPC-web");

    // An error travels through the trailers of the gRPC-web body too.
    let missing = tokio::time::timeout(
        TIMEOUT,
        articles.get_article(pb::GetArticleRequest {
            id: created.id + 1000,
        }),
    )
    .await
    .expect("GetArticle over gRPC-web answers in time")
    .expect_err("an unknown id is an error");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    server.shutdown().await;
}

#[tokio::test]
async fn health_reports_the_echo_service_serving() {
    let server = start_example().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [ECHO_SERVICE, proto::SERVICE_NAME, ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?} answers: {e}"))
            .into_inner()
            .status;
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "health of {service:?} should be SERVING"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_both_services() {
    let server = start_example().await;
    let channel = server.channel().await;

    // v1
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1 answers")
        .into_inner();
    let response = tokio::time::timeout(TIMEOUT, responses.next())
        .await
        .expect("reflection v1 responds in time")
        .expect("reflection v1 sends a response")
        .expect("reflection v1 response is OK");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("reflection v1 answers ListServices with a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == ECHO_SERVICE),
        "v1 lists {ECHO_SERVICE}: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == proto::SERVICE_NAME),
        "v1 lists {}: {names:?}",
        proto::SERVICE_NAME
    );

    // The echo service's descriptor is served, so grpcurl can call it.
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                ECHO_SERVICE.into(),
            ),
        ),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1 answers")
        .into_inner();
    let response = tokio::time::timeout(TIMEOUT, responses.next())
        .await
        .expect("reflection v1 responds in time")
        .expect("reflection v1 sends a response")
        .expect("reflection v1 response is OK");
    match response.message_response {
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) => {
            assert!(
                !files.file_descriptor_proto.is_empty(),
                "the file defining {ECHO_SERVICE} is returned"
            );
        }
        other => panic!("expected the file defining {ECHO_SERVICE}, got {other:?}"),
    }

    // v1alpha (older grpcurl and buf curl versions)
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1alpha answers")
        .into_inner();
    let response = tokio::time::timeout(TIMEOUT, responses.next())
        .await
        .expect("reflection v1alpha responds in time")
        .expect("reflection v1alpha sends a response")
        .expect("reflection v1alpha response is OK");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("reflection v1alpha answers ListServices with a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == ECHO_SERVICE),
        "v1alpha lists {ECHO_SERVICE}: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == proto::SERVICE_NAME),
        "v1alpha lists {}: {names:?}",
        proto::SERVICE_NAME
    );

    drop(client);
    server.shutdown().await;
}
