//! CORS decisions: the gRPC-web preset for allowed origins (any origin
//! without an allow-list), no CORS headers at all for refused origins or
//! requests without `Origin`, and exposed headers added by the application.

use grpc_runtime::{CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, RuntimeBuilder};
use testkit::{echo::pb::EchoRequest, grpc_web::frame, raw::RawReply};

use crate::common::{ECHO, app, send, web};

const APP: &str = "https://app.example";

fn preflight(origin: Option<&str>) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut request = http::Request::builder()
        .method(http::Method::OPTIONS)
        .uri(ECHO)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent",
        );
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Default::default()).unwrap()
}

fn call(origin: Option<&str>) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut request = web(
        ECHO,
        "application/grpc-web+proto",
        frame(&EchoRequest {
            message: "from the page".into(),
            delay_ms: 0,
        }),
    );
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    request
}

fn cors_headers(reply: &RawReply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// The comma-separated names of a header, lower-cased.
fn names(reply: &RawReply, header: &str) -> Vec<String> {
    reply
        .header(header)
        .unwrap_or_else(|| panic!("{header} is set: {reply:?}"))
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn without_an_allow_list_any_origin_passes_preflight_with_the_grpc_web_preset() {
    let app = app(RuntimeBuilder::new()).await;
    let reply = send(&app, preflight(Some("https://anywhere.example"))).await;
    assert!(reply.status.is_success(), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    let allowed = names(&reply, "access-control-allow-headers");
    for header in CORS_ALLOW_HEADERS {
        assert!(
            allowed.contains(&header.to_owned()),
            "{header} in {allowed:?}"
        );
    }
    assert!(names(&reply, "access-control-allow-methods").contains(&"post".to_owned()));
    assert_eq!(reply.header("access-control-max-age"), Some("86400"));
}

#[tokio::test]
async fn a_listed_origin_passes_preflight_and_gets_its_origin_back() {
    // A trailing slash in the list still matches the browser's Origin.
    let app = app(RuntimeBuilder::new().allow_origins(vec![format!("{APP}/")])).await;
    let reply = send(&app, preflight(Some(APP))).await;
    assert!(reply.status.is_success(), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    let allowed = names(&reply, "access-control-allow-headers");
    assert!(allowed.contains(&"x-grpc-web".to_owned()), "{allowed:?}");

    let reply = send(&app, call(Some(APP))).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("grpc-status"), None, "a streamed answer");
    assert_eq!(reply.web_body().trailer("grpc-status"), Some("0"));
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_headers_on_preflight_or_call() {
    let app = app(RuntimeBuilder::new().allow_origins(vec![APP.into()])).await;
    for origin in ["https://evil.example", "https://app.example.evil", "null"] {
        let reply = send(&app, preflight(Some(origin))).await;
        assert_eq!(
            cors_headers(&reply),
            Vec::<String>::new(),
            "preflight from {origin}"
        );
        // The call itself is answered (the browser, not the server, keeps
        // the answer from the page), without CORS headers.
        let reply = send(&app, call(Some(origin))).await;
        assert_eq!(reply.status, http::StatusCode::OK, "call from {origin}");
        assert_eq!(
            cors_headers(&reply),
            Vec::<String>::new(),
            "call from {origin}"
        );
    }
}

#[tokio::test]
async fn requests_without_origin_get_no_cors_headers() {
    for builder in [
        RuntimeBuilder::new(),
        RuntimeBuilder::new().allow_origins(vec![APP.into()]),
    ] {
        let app = app(builder).await;
        let reply = send(&app, call(None)).await;
        assert_eq!(reply.status, http::StatusCode::OK);
        assert_eq!(reply.web_body().trailer("grpc-status"), Some("0"));
        assert_eq!(cors_headers(&reply), Vec::<String>::new(), "call");
        let reply = send(&app, preflight(None)).await;
        assert_eq!(cors_headers(&reply), Vec::<String>::new(), "OPTIONS");
        let reply = send(
            &app,
            http::Request::get("/healthz")
                .body(Default::default())
                .unwrap(),
        )
        .await;
        assert_eq!(cors_headers(&reply), Vec::<String>::new(), "GET /healthz");
    }
}

#[tokio::test]
async fn calls_expose_the_grpc_web_preset_and_the_applications_headers() {
    let app = app(RuntimeBuilder::new()
        .allow_origins(vec![APP.into()])
        .expose_headers([http::HeaderName::from_static("x-watch-sequence")]))
    .await;
    let reply = send(&app, call(Some(APP))).await;
    let exposed = names(&reply, "access-control-expose-headers");
    for header in CORS_EXPOSE_HEADERS.iter().chain(&["x-watch-sequence"]) {
        assert!(
            exposed.contains(&(*header).to_owned()),
            "{header} in {exposed:?}"
        );
    }

    // Without `expose_headers`, only the preset.
    let app = crate::common::app(RuntimeBuilder::new()).await;
    let reply = send(&app, call(Some(APP))).await;
    let mut exposed = names(&reply, "access-control-expose-headers");
    exposed.sort();
    let mut preset = CORS_EXPOSE_HEADERS.map(str::to_owned).to_vec();
    preset.sort();
    assert_eq!(exposed, preset);
}
