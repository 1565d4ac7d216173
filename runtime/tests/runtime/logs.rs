//! One log line per call (a `tracing` event, target `grpc`): method,
//! status, duration, request id and protocol. The runtime installs no
//! subscriber; the test sets its own for its thread.

use std::sync::{Arc, Mutex};

use grpc_runtime::RuntimeBuilder;
use testkit::{echo::pb::EchoRequest, grpc_web::frame};

use crate::common::{ECHO, app, grpc, send, web};

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_call_logs_one_line_with_method_status_request_id_and_protocol() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    // The current-thread runtime polls every call on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = app(RuntimeBuilder::new()).await;
    let hello = frame(&EchoRequest {
        message: "log me".into(),
        delay_ms: 0,
    });
    let mut request = web(ECHO, "application/grpc-web-text", hello.clone());
    request
        .headers_mut()
        .insert("x-request-id", "req-web-text".parse().unwrap());
    send(&app, request).await;
    let mut request = grpc("/example.v1.EchoService/Nope", hello);
    request
        .headers_mut()
        .insert("x-request-id", "req-native".parse().unwrap());
    send(&app, request).await;
    send(
        &app,
        http::Request::get("/healthz")
            .body(Default::default())
            .unwrap(),
    )
    .await;

    let calls: Vec<String> = captured
        .lines()
        .into_iter()
        .filter(|line| line.contains(r#""target":"grpc""#))
        .collect();
    assert_eq!(
        calls.len(),
        2,
        "one line per gRPC call, none for /healthz: {calls:#?}"
    );
    for (line, wanted) in calls.iter().zip([
        [
            r#""method":"/example.v1.EchoService/Echo""#,
            r#""status":"OK""#,
            r#""request_id":"req-web-text""#,
            r#""protocol":"grpc-web-text""#,
        ],
        [
            r#""method":"/example.v1.EchoService/Nope""#,
            r#""status":"UNIMPLEMENTED""#,
            r#""request_id":"req-native""#,
            r#""protocol":"grpc""#,
        ],
    ]) {
        for field in wanted {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(line.contains(r#""duration_ms":"#), "{line}");
    }
}
