//! Connections under abuse, on a socket: connections that never send a
//! byte are closed after the header-read timeout, and a connection beyond
//! `max_connections` is refused with a 503 while the others are served.

use std::time::{Duration, Instant};

use grpc_runtime::RuntimeBuilder;
use testkit::{TIMEOUT, echo::pb::EchoRequest, grpc_web::frame};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::common::{ECHO, open, serve, web};

/// Reads until the peer closes (EOF or reset); what was read.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return read,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(500);
    let server = serve(RuntimeBuilder::new().header_read_timeout(Some(timeout))).await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    // A client that speaks is served meanwhile, and its stream outlives
    // the timeout: only silence before the first byte counts.
    let request = EchoRequest {
        message: "hi".into(),
        delay_ms: 0,
    };
    let mut stream = open(
        server.addr,
        web(ECHO, "application/grpc-web+proto", frame(&request)),
        false,
    )
    .await;
    for tcp in &mut silent {
        let read = tokio::time::timeout(TIMEOUT, until_closed(tcp))
            .await
            .expect("the server closes a silent connection");
        assert!(read.is_empty(), "nothing is sent to it: {read:?}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "not before the timeout: {elapsed:?}");
    assert!(elapsed < timeout * 6, "soon after it: {elapsed:?}");
    let body = http_body_util::BodyExt::collect(&mut stream)
        .await
        .expect("the answer reads to its end");
    assert!(!body.to_bytes().is_empty());
}

#[tokio::test]
async fn a_connection_beyond_max_connections_is_refused_with_503() {
    let server = serve(RuntimeBuilder::new().max_connections(2)).await;
    let first = TcpStream::connect(server.addr).await.expect("connect");
    let second = TcpStream::connect(server.addr).await.expect("connect");
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    let refusal = tokio::time::timeout(TIMEOUT, until_closed(&mut third))
        .await
        .expect("the refusal comes at once");
    let refusal = String::from_utf8_lossy(&refusal);
    assert!(
        refusal.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{refusal}"
    );
    assert!(refusal.contains("--max-connections"), "{refusal}");

    // Once one closes, a new connection is served again.
    drop(first);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let get = format!(
            "GET /healthz HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            server.addr
        );
        // A refused connection may be closed before the request is written.
        let _ = tcp.write_all(get.as_bytes()).await;
        let answer = tokio::time::timeout(TIMEOUT, until_closed(&mut tcp))
            .await
            .expect("an answer");
        let answer = String::from_utf8_lossy(&answer);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{answer}"
        );
        assert!(
            Instant::now() < deadline,
            "the closed connection frees its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}

#[tokio::test]
async fn an_http2_connection_that_does_not_answer_pings_is_closed_and_a_live_one_stays() {
    let keepalive = Duration::from_millis(300);
    let server = serve(RuntimeBuilder::new().http2_keepalive(keepalive, keepalive)).await;

    // A dead peer: the preface and an empty SETTINGS frame, then nothing,
    // not even the answer to the server's PING.
    let mut dead = TcpStream::connect(server.addr).await.expect("connect");
    dead.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let started = Instant::now();
    tokio::time::timeout(TIMEOUT, until_closed(&mut dead))
        .await
        .expect("the server closes a connection whose PINGs go unanswered");
    let took = started.elapsed();
    assert!(took >= keepalive, "not before a PING is due: {took:?}");

    // A live idle client (hyper answers PINGs) keeps its connection.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    tokio::time::sleep(keepalive * 6).await;
    assert!(
        !connection.is_finished(),
        "a live idle connection stays open"
    );
    let mut request = crate::common::grpc(
        ECHO,
        frame(&EchoRequest {
            message: "still here".into(),
            delay_ms: 0,
        }),
    );
    *request.uri_mut() = format!("http://{}{ECHO}", server.addr).parse().unwrap();
    let response = sender.send_request(request).await.expect("a call on it");
    assert_eq!(response.status(), http::StatusCode::OK);
}
