//! The example program (`examples/echo.rs`), which mounts only its own
//! service, run as the real binary: `cargo test` builds a package's
//! examples before it runs its tests, into `target/<profile>/examples/`,
//! beside the `deps/` folder this test runs from.

use std::path::PathBuf;

use testkit::{
    ServerProcess,
    echo::{
        EchoServiceClient, SERVICE_NAME,
        pb::{CountRequest, CountResponse, EchoRequest},
    },
    grpc_web::{TEXT, frame},
    raw,
};
use tonic::Code;

use crate::common::{COUNT, reflected_services, web};

/// `target/<profile>/examples/echo`, built by `cargo test` with this test.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("echo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test -p grpc-runtime --all-features`, which builds the examples first",
        binary.display()
    );
    binary
}

/// The example with `--listen 127.0.0.1:0` and `flags`, no `ECHO_*`
/// variables inherited, ready once it printed its listening line.
async fn start(flags: &[&str]) -> ServerProcess {
    let mut command = tokio::process::Command::new(example_binary());
    command.args(["--listen", "127.0.0.1:0"]).args(flags);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ECHO_") {
            command.env_remove(name);
        }
    }
    ServerProcess::start(command).await
}

#[tokio::test]
async fn the_example_serves_its_own_service_over_both_protocols() {
    let mut server = start(&["--prefix", "you said: "]).await;

    let mut client = EchoServiceClient::new(server.channel().await);
    let reply = client
        .echo(EchoRequest {
            message: "hi".into(),
            delay_ms: 0,
        })
        .await
        .expect("the example's Echo answers");
    assert_eq!(reply.into_inner().message, "you said: hi");
    let refused = client
        .count(CountRequest {
            after: 5,
            up_to: 5,
            interval_ms: 0,
        })
        .await
        .expect_err("the example's own validation");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let count = frame(&CountRequest {
        after: 0,
        up_to: 3,
        interval_ms: 0,
    });
    let reply = raw::http1(server.addr(), web(COUNT, TEXT, count)).await;
    let body = reply.web_body();
    assert_eq!(body.trailer("grpc-status"), Some("0"), "{body:?}");
    let numbers: Vec<u64> = (0..body.messages.len())
        .map(|i| body.message::<CountResponse>(i).number)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    server.terminate().await;
}

#[tokio::test]
async fn the_examples_flags_reach_the_runtime() {
    let mut server = start(&[
        "--allow-origin",
        "https://app.example",
        "--max-message-bytes",
        "1024",
    ])
    .await;

    let preflight = |origin: &str| {
        http::Request::options("/example.v1.EchoService/Echo")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Default::default())
            .unwrap()
    };
    let allowed = raw::http1(server.addr(), preflight("https://app.example")).await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let refused = raw::http1(server.addr(), preflight("https://evil.example")).await;
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let mut client = EchoServiceClient::new(server.channel().await);
    let too_big = client
        .echo(EchoRequest {
            message: "x".repeat(2000),
            delay_ms: 0,
        })
        .await
        .expect_err("over --max-message-bytes");
    assert_eq!(too_big.code(), Code::ResourceExhausted);
    server.terminate().await;
}

#[tokio::test]
async fn the_example_mounts_nothing_but_its_service_health_and_reflection() {
    let mut server = start(&[]).await;
    let names = reflected_services(server.channel().await).await;
    assert_eq!(
        names,
        [
            SERVICE_NAME,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
    server.terminate().await;
}
