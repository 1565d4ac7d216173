//! Health checking (`grpc.health.v1.Health`) and server reflection (v1 and
//! v1alpha), which tools such as `grpcurl` and `buf curl` rely on.

use prost::Message as _;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use testkit::{TIMEOUT, article::TestServer};

async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let response = tokio::time::timeout(TIMEOUT, client.check(request))
        .await
        .expect("health check answers in time")?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_article_service() {
    let server = TestServer::start().await;
    let mut client = HealthClient::new(server.channel().await);
    assert_eq!(
        check(&mut client, "")
            .await
            .expect("overall health check succeeds"),
        ServingStatus::Serving
    );
    assert_eq!(
        check(&mut client, proto::SERVICE_NAME)
            .await
            .expect("ArticleService health check succeeds"),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn health_check_of_an_unknown_service_is_not_found() {
    let server = TestServer::start().await;
    let mut client = HealthClient::new(server.channel().await);
    let status = check(&mut client, "no.such.v1.Service")
        .await
        .expect_err("an unknown service name is an error");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

/// Sends `requests` on one bidi reflection stream and collects one response per request.
macro_rules! reflect {
    ($client:expr, $requests:expr) => {{
        let requests = $requests;
        let expected = requests.len();
        let response = tokio::time::timeout(
            TIMEOUT,
            $client.server_reflection_info(tokio_stream::iter(requests)),
        )
        .await
        .expect("reflection stream opens in time")
        .expect("reflection stream opens");
        let mut stream = response.into_inner();
        let mut responses = Vec::new();
        while responses.len() < expected {
            let next = tokio::time::timeout(TIMEOUT, stream.message())
                .await
                .expect("reflection answers in time")
                .expect("reflection response is not an error")
                .expect("one reflection response per request");
            responses.push(next);
        }
        responses
    }};
}

fn assert_describes_article_service(files: &[Vec<u8>]) {
    let descriptors: Vec<prost_types::FileDescriptorProto> = files
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .expect("file descriptor decodes")
        })
        .collect();
    let file = descriptors
        .iter()
        .find(|f| f.package() == "article.v1")
        .unwrap_or_else(|| panic!("a file of package article.v1 among {descriptors:?}"));
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "ArticleService")
        .expect("the file declares ArticleService");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    for method in [
        "ListArticles",
        "GetArticle",
        "CreateArticle",
        "UpdateArticle",
        "DeleteArticle",
        "WatchArticles",
        "ImportArticles",
    ] {
        assert!(
            methods.contains(&method),
            "{method} missing from {methods:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1_lists_the_service_and_returns_its_file() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let responses = reflect!(
        client,
        vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    proto::SERVICE_NAME.into(),
                )),
            },
        ]
    );

    let Some(MessageResponse::ListServicesResponse(list)) = &responses[0].message_response else {
        panic!("expected a list of services, got {:?}", responses[0]);
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&proto::SERVICE_NAME), "services: {names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health"),
        "services: {names:?}"
    );

    let Some(MessageResponse::FileDescriptorResponse(files)) = &responses[1].message_response
    else {
        panic!("expected file descriptors, got {:?}", responses[1]);
    };
    assert_describes_article_service(&files.file_descriptor_proto);
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_service_and_returns_its_file() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let responses = reflect!(
        client,
        vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    proto::SERVICE_NAME.into(),
                )),
            },
        ]
    );

    let Some(MessageResponse::ListServicesResponse(list)) = &responses[0].message_response else {
        panic!("expected a list of services, got {:?}", responses[0]);
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&proto::SERVICE_NAME), "services: {names:?}");

    let Some(MessageResponse::FileDescriptorResponse(files)) = &responses[1].message_response
    else {
        panic!("expected file descriptors, got {:?}", responses[1]);
    };
    assert_describes_article_service(&files.file_descriptor_proto);
}

/// The reflection protocol answers an unknown symbol with an ErrorResponse;
/// tonic-reflection ends the stream with the status instead. Either way the
/// code must be NOT_FOUND.
#[tokio::test]
async fn reflection_of_an_unknown_symbol_is_not_found() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "no.such.v1.Thing".into(),
        )),
    };
    let response = tokio::time::timeout(
        TIMEOUT,
        client.server_reflection_info(tokio_stream::iter(vec![request])),
    )
    .await
    .expect("reflection stream opens in time")
    .expect("reflection stream opens");
    let mut stream = response.into_inner();
    let next = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("reflection answers in time");
    match next {
        Ok(Some(response)) => {
            let Some(MessageResponse::ErrorResponse(error)) = &response.message_response else {
                panic!("expected an error response, got {response:?}");
            };
            assert_eq!(error.error_code, Code::NotFound as i32, "{error:?}");
        }
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        Ok(None) => panic!("the stream ended without answering"),
    }
}
