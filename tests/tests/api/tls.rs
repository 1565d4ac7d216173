//! TLS on the one port (`--tls-cert`/`--tls-key`), with a CA and a server
//! certificate for `localhost`/127.0.0.1 generated in each test: native
//! gRPC over HTTP/2, gRPC-web over HTTP/1.1 and HTTP/2 chosen by ALPN, and
//! a plain-text client refused cleanly.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{self, pki_types::ServerName},
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use testkit::{
    TIMEOUT, TestPki,
    article::{ALICE, TestServer, create, create_as_alice},
    authed,
    grpc_web::{frame, parse_web_body},
};

/// A server with TLS, on a CA and certificate generated for this test.
pub async fn start_tls() -> (TestServer, TestPki) {
    let pki = TestPki::generate();
    // The files are read when the server binds; they need not outlive it.
    let dir = tempfile::tempdir().expect("temp dir is created");
    let files = pki.write_to(dir.path());
    let server = TestServer::start_with(|s| {
        s.runtime.tls_cert = Some(files.cert);
        s.runtime.tls_key = Some(files.key);
    })
    .await;
    (server, pki)
}

/// A native gRPC channel over TLS that trusts only the test CA.
pub async fn tls_channel(server: &TestServer, pki: &TestPki) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    Endpoint::from_shared(server.url.clone())
        .expect("server url is a valid endpoint")
        .tls_config(tls)
        .expect("client TLS config is accepted")
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .expect("TLS channel connects")
}

/// A raw TLS connection offering exactly `alpn`, verified against the test CA.
async fn tls_connect(server: &TestServer, pki: &TestPki, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(pki.ca_der.clone().into())
        .expect("the test CA is a valid root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions are supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(server.addr)
        .await
        .expect("TCP connects to the TLS port");
    let name = ServerName::try_from("localhost").expect("localhost is a server name");
    tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("TLS handshake finishes in time")
    .expect("TLS handshake succeeds with the test CA")
}

/// A binary gRPC-web ListArticles request (absolute-form is not needed:
/// hyper's connection-level clients send the path).
fn web_list_request(authority: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(format!(
            "https://{authority}/article.v1.ArticleService/ListArticles"
        ))
        .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(frame(&pb::ListArticlesRequest::default())))
        .expect("request builds")
}

/// Checks a gRPC-web ListArticles response: 200, grpc-status 0, one message
/// holding `expected_total` articles.
async fn assert_web_list_ok(response: http::Response<hyper::body::Incoming>, expected_total: i64) {
    assert_eq!(response.status(), http::StatusCode::OK);
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/grpc-web"),
        "gRPC-web content type expected, got {content_type:?}"
    );
    let collected = tokio::time::timeout(TIMEOUT, response.into_body().collect())
        .await
        .expect("gRPC-web body arrives in time")
        .expect("gRPC-web body is read");
    let body = parse_web_body(collected.to_bytes());
    assert_eq!(
        body.trailer("grpc-status"),
        Some("0"),
        "trailers: {:?}",
        body.trailers
    );
    assert_eq!(body.messages.len(), 1, "one response message expected");
    let list: pb::ListArticlesResponse = body.message(0);
    assert_eq!(list.total_count, expected_total);
}

#[tokio::test]
async fn native_grpc_over_tls_and_http2() {
    let (server, pki) = start_tls().await;
    assert!(
        server.url.starts_with("https://"),
        "a TLS server's url is https: {}",
        server.url
    );
    let mut client = ArticleServiceClient::new(tls_channel(&server, &pki).await);
    // Server streaming over TLS: a watch opened first sees the create.
    let mut watch = client
        .watch_articles(pb::WatchArticlesRequest::default())
        .await
        .expect("WatchArticles opens over TLS")
        .into_inner();
    let created = client
        .create_article(authed(ALICE, create("Over TLS", "encrypted", &["tls"])))
        .await
        .expect("CreateArticle succeeds over TLS")
        .into_inner()
        .article
        .expect("the created article is returned");
    assert_eq!(created.author, "alice");
    let got = client
        .get_article(pb::GetArticleRequest { id: created.id })
        .await
        .expect("GetArticle succeeds over TLS")
        .into_inner()
        .article
        .expect("the article is returned");
    assert_eq!(got.title, "Over TLS");
    let event = tokio::time::timeout(TIMEOUT, watch.message())
        .await
        .expect("a watch event arrives in time")
        .expect("the watch stream is healthy")
        .expect("the watch stream is open");
    match event.event {
        Some(pb::article_event::Event::Created(a)) => assert_eq!(a.id, created.id),
        other => panic!("a created event expected, got {other:?}"),
    }
    drop(watch);
    server.shutdown().await;
}

#[tokio::test]
async fn grpc_web_over_http1_on_tls_when_only_http1_is_offered() {
    let (server, pki) = start_tls().await;
    let tls = tls_connect(&server, &pki, &[b"http/1.1"]).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "the server agrees to http/1.1 when that is all the client offers"
    );
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake over TLS");
    let connection = tokio::spawn(connection);

    let response = tokio::time::timeout(
        TIMEOUT,
        sender.send_request(web_list_request(&server.addr.to_string())),
    )
    .await
    .expect("gRPC-web over HTTP/1.1 answers in time")
    .expect("gRPC-web over HTTP/1.1 gets a response");
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_web_list_ok(response, 0).await;

    // The same connection serves a second call (keep-alive).
    let mut client = ArticleServiceClient::new(tls_channel(&server, &pki).await);
    create_as_alice(&mut client, "Seen over HTTP/1.1", &[]).await;
    let response = tokio::time::timeout(
        TIMEOUT,
        sender.send_request(web_list_request(&server.addr.to_string())),
    )
    .await
    .expect("second gRPC-web call answers in time")
    .expect("second gRPC-web call gets a response");
    assert_web_list_ok(response, 1).await;

    drop(sender);
    connection.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn alpn_negotiates_h2_when_the_client_offers_h2_and_http1() {
    let (server, pki) = start_tls().await;
    let tls = tls_connect(&server, &pki, &[b"h2", b"http/1.1"]).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "the server prefers h2 when the client offers both"
    );
    // gRPC-web over HTTP/2 on that connection (what browsers do).
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake over TLS");
    let connection = tokio::spawn(connection);
    let response = tokio::time::timeout(
        TIMEOUT,
        sender.send_request(web_list_request(&server.addr.to_string())),
    )
    .await
    .expect("gRPC-web over HTTP/2 answers in time")
    .expect("gRPC-web over HTTP/2 gets a response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_web_list_ok(response, 0).await;

    drop(sender);
    connection.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn plain_text_h2c_to_the_tls_port_fails_cleanly() {
    let (server, pki) = start_tls().await;
    let plain_url = format!("http://{}", server.addr);
    let attempt = tokio::time::timeout(TIMEOUT, async {
        let channel = Endpoint::from_shared(plain_url)
            .expect("plain url is a valid endpoint")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        ArticleServiceClient::new(channel)
            .list_articles(pb::ListArticlesRequest::default())
            .await
            .map_err(|s| s.to_string())
    })
    .await
    .expect("a plain-text client gets an answer (an error) in time, it is not left hanging");
    assert!(
        attempt.is_err(),
        "a plain-text HTTP/2 call on the TLS port must fail, got {attempt:?}"
    );

    // A raw plain-text HTTP/1.1 request is closed too, without a response.
    let mut tcp = TcpStream::connect(server.addr)
        .await
        .expect("TCP connects to the TLS port");
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n",
    )
    .await
    .expect("plain request is written");
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut reply),
    )
    .await
    .expect("the server closes a plain-text connection in time");
    assert!(
        read.is_err() || !reply.starts_with(b"HTTP/1.1 200"),
        "a plain-text request must not be served on the TLS port"
    );

    // The server is unaffected: TLS clients still work.
    let mut client = ArticleServiceClient::new(tls_channel(&server, &pki).await);
    let listed = client
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles over TLS still succeeds")
        .into_inner();
    assert_eq!(listed.total_count, 0);
    server.shutdown().await;
}
