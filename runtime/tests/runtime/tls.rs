//! TLS on the one port, with a CA and a `localhost` certificate made per
//! test: native gRPC negotiates `h2`, gRPC-web gets HTTP/1.1 or HTTP/2 as
//! the client's ALPN offer says; a plain-text client gets no answer and
//! does not disturb the server; unusable files fail `bind`.

use std::sync::Arc;

use bytes::Bytes;
use grpc_runtime::RuntimeBuilder;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use testkit::{
    PkiFiles, SpawnedServer, TIMEOUT, TestPki,
    echo::{
        EchoServiceClient,
        pb::{CountRequest, EchoRequest, EchoResponse},
    },
    grpc_web::{TEXT, frame},
    raw::RawReply,
};
use tokio::{io::AsyncReadExt as _, io::AsyncWriteExt as _, net::TcpStream};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{self, pki_types::ServerName},
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::common::{ECHO, serve, web, with_echo};

/// A TLS server with a fresh CA; the files live as long as the directory.
async fn tls_server() -> (SpawnedServer, TestPki, tempfile::TempDir) {
    let pki = TestPki::generate();
    let dir = tempfile::tempdir().expect("temp dir");
    let PkiFiles { cert, key, .. } = pki.write_to(dir.path());
    let server = serve(RuntimeBuilder::new().tls(cert, key)).await;
    (server, pki, dir)
}

/// A TLS connection to `server` offering these ALPN protocols.
async fn connect(server: &SpawnedServer, pki: &TestPki, alpn: &[&str]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(pki.ca_der.clone().into())
        .expect("the CA is a valid root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let tcp = TcpStream::connect(server.addr).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("a server name");
    tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("the handshake finishes in time")
    .expect("the TLS handshake succeeds")
}

/// One request on an open TLS connection, in the HTTP version ALPN chose.
async fn exchange(tls: TlsStream<TcpStream>, mut request: http::Request<Full<Bytes>>) -> RawReply {
    let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let response = if http2 {
        *request.uri_mut() = format!("https://localhost{}", request.uri().path())
            .parse()
            .expect("an absolute URI");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        request
            .headers_mut()
            .insert(http::header::HOST, "localhost".parse().unwrap());
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await
    };
    let (parts, body) = response.expect("an answer").into_parts();
    let collected = tokio::time::timeout(TIMEOUT, body.collect())
        .await
        .expect("the body ends in time")
        .expect("the body reads");
    RawReply {
        status: parts.status,
        headers: parts.headers,
        trailers: collected.trailers().cloned().unwrap_or_default(),
        body: collected.to_bytes(),
    }
}

#[tokio::test]
async fn native_grpc_over_tls_answers_unary_and_streaming_calls() {
    let (server, pki, _files) = tls_server().await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(server.url.clone())
        .unwrap()
        .tls_config(tls)
        .expect("the client TLS settings are valid")
        .timeout(TIMEOUT)
        .connect()
        .await
        .expect("a TLS channel connects");
    let mut echo = EchoServiceClient::new(channel);
    let reply = echo
        .echo(EchoRequest {
            message: "over TLS".into(),
            delay_ms: 0,
        })
        .await
        .expect("Echo answers over TLS");
    assert_eq!(reply.into_inner().message, "over TLS");
    let mut count = echo
        .count(CountRequest {
            after: 0,
            up_to: 2,
            interval_ms: 0,
        })
        .await
        .expect("Count opens over TLS")
        .into_inner();
    let mut numbers = Vec::new();
    while let Some(item) = count.message().await.expect("a healthy stream") {
        numbers.push(item.number);
    }
    assert_eq!(numbers, [1, 2]);
    server.shutdown().await;
}

#[tokio::test]
async fn alpn_gives_grpc_web_http1_or_http2_as_the_client_offers() {
    let (server, pki, _files) = tls_server().await;
    for (offer, negotiated) in [
        (&["http/1.1"][..], "http/1.1"),
        (&["h2"][..], "h2"),
        // Both offered: the server prefers HTTP/2.
        (&["http/1.1", "h2"][..], "h2"),
    ] {
        let tls = connect(&server, &pki, offer).await;
        let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(
            chosen.as_deref(),
            Some(negotiated.as_bytes()),
            "offer {offer:?}"
        );
        let message = format!("gRPC-web over {negotiated}");
        let request = web(
            ECHO,
            TEXT,
            frame(&EchoRequest {
                message: message.clone(),
                delay_ms: 0,
            }),
        );
        let reply = exchange(tls, request).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{message}");
        let body = reply.web_body();
        assert_eq!(
            body.trailer("grpc-status"),
            Some("0"),
            "{message}: {body:?}"
        );
        assert_eq!(body.message::<EchoResponse>(0).message, message);
    }

    // Plain HTTP too, for an HTTP/1.1-only client.
    let tls = connect(&server, &pki, &["http/1.1"]).await;
    let reply = exchange(tls, testkit::raw::get("/healthz")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(&reply.body[..], b"ok\n");
    server.shutdown().await;
}

#[tokio::test]
async fn a_plain_text_client_gets_no_answer_and_the_server_keeps_serving() {
    let (server, pki, _files) = tls_server().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection in time");
    assert!(
        !String::from_utf8_lossy(&answer).contains("ok"),
        "no plain-text answer: {read:?} {answer:?}"
    );

    let tls = connect(&server, &pki, &["h2"]).await;
    let reply = exchange(tls, testkit::raw::get("/healthz")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn unusable_tls_files_fail_bind() {
    let dir = tempfile::tempdir().unwrap();
    let one = TestPki::generate().write_to(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestPki::generate().write_to(other_dir.path());
    for (what, cert, key) in [
        (
            "a missing certificate",
            dir.path().join("nope.pem"),
            one.key.clone(),
        ),
        (
            "a key that is not the certificate's",
            one.cert.clone(),
            other.key.clone(),
        ),
        (
            "a certificate file without certificates",
            one.key.clone(),
            one.key.clone(),
        ),
    ] {
        let outcome = with_echo(RuntimeBuilder::new().tls(cert, key))
            .bind("127.0.0.1:0".parse().unwrap())
            .await;
        assert!(outcome.is_err(), "{what} fails bind");
    }
}
