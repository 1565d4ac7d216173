//! The kit's own promises: the child-process guard reads the listening
//! line (and refuses a missing one or port 0), and a spawned server stops
//! when asked, in bounded time.

use std::time::Duration;

use testkit::{
    ServerProcess, SpawnedServer, Stderr, TIMEOUT,
    echo::{Echo, EchoServiceClient, EchoServiceServer, pb::EchoRequest},
    wait_until,
};
use tokio::process::Command;

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[tokio::test]
async fn the_listening_line_gives_the_address_and_earlier_lines_are_kept() {
    let mut server = ServerProcess::start(sh(
        "echo starting; echo 'listening on http://127.0.0.1:4321'; echo after; exec sleep 30",
    ))
    .await;
    assert_eq!(server.url(), "http://127.0.0.1:4321");
    assert_eq!(server.addr().port(), 4321);
    assert_eq!(server.before_listening(), ["starting"]);
    assert_eq!(server.next_stdout_line().await.as_deref(), Some("after"));
    server
        .stop(Duration::from_secs(5))
        .await
        .expect("a running child stops");
}

#[tokio::test]
async fn a_child_that_exits_without_the_line_is_an_error_quoting_its_stderr() {
    let err = ServerProcess::try_start(
        sh("echo 'no database' >&2; echo nothing; exit 3"),
        Stderr::Capture,
        TIMEOUT,
    )
    .await
    .expect_err("no listening line, no server");
    let message = format!("{err:#}");
    assert!(message.contains("without a listening line"), "{message}");
    assert!(
        message.contains("no database"),
        "stderr is quoted: {message}"
    );
}

#[tokio::test]
async fn port_zero_in_the_listening_line_is_an_error() {
    let err = ServerProcess::try_start(
        sh("echo 'listening on http://127.0.0.1:0'; exec sleep 30"),
        Stderr::Capture,
        TIMEOUT,
    )
    .await
    .expect_err("port 0 is not a real port");
    assert!(format!("{err:#}").contains("port 0"), "{err:#}");
}

#[tokio::test]
async fn stderr_can_go_to_a_file() {
    let dir = tempfile::tempdir().expect("a temporary directory is created");
    let log = dir.path().join("server.log");
    let server = ServerProcess::try_start(
        sh("echo 'to the log' >&2; echo 'listening on http://127.0.0.1:9'; exec sleep 30"),
        Stderr::File(log.clone()),
        TIMEOUT,
    )
    .await
    .expect("the child starts");
    wait_until("the log line", TIMEOUT, async || {
        let text = server.stderr();
        if text.contains("to the log") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    server.stop(Duration::from_secs(5)).await.expect("it stops");
}

#[tokio::test]
async fn a_spawned_server_serves_until_shut_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds port 0");
    let addr = listener.local_addr().expect("has an address");
    let server = SpawnedServer::spawn(addr, format!("http://{addr}"), |stop| {
        tonic::transport::Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop,
            )
    });
    let mut echo = EchoServiceClient::new(server.channel().await);
    let reply = echo
        .echo(EchoRequest {
            message: "hi".into(),
            delay_ms: 0,
        })
        .await
        .expect("Echo answers")
        .into_inner();
    assert_eq!(reply.message, "hi");
    drop(echo);
    // `shutdown` itself asserts that the server task ended cleanly in time.
    let took = server.shutdown().await;
    assert!(took < TIMEOUT, "{took:?}");
}

#[tokio::test]
async fn dropping_a_spawned_server_stops_it() {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
    let server = SpawnedServer::spawn(
        "127.0.0.1:9".parse().expect("an address"),
        "http://127.0.0.1:9".into(),
        |stop| async move {
            stop.await;
            let _ = stopped_tx.send(());
            Ok::<(), std::convert::Infallible>(())
        },
    );
    drop(server);
    tokio::time::timeout(TIMEOUT, stopped_rx)
        .await
        .expect("the stop signal arrives in time")
        .expect("the server saw its stop signal");
}
