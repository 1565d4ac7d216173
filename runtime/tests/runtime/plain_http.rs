//! The plain HTTP side of the port: `/healthz`, `/metrics` (exact counts
//! from the runtime's own registry) and the static web app with its
//! `index.html` fallback for client-side routes.

use grpc_runtime::{Metrics, RuntimeBuilder};
use testkit::{echo::pb::EchoRequest, grpc_web::frame, prometheus, raw::get};

use crate::common::{ECHO, app, grpc, send, text, web};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = app(RuntimeBuilder::new()).await;
    let reply = send(&app, get("/healthz")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(text(&reply), "ok\n");
}

#[tokio::test]
async fn metrics_count_each_call_by_service_method_and_code() {
    let metrics = Metrics::new();
    let app = app(RuntimeBuilder::new().metrics(metrics.clone())).await;
    let hello = frame(&EchoRequest {
        message: "count me".into(),
        delay_ms: 0,
    });
    for _ in 0..2 {
        send(&app, grpc(ECHO, hello.clone())).await;
    }
    send(&app, web(ECHO, "application/grpc-web-text", hello.clone())).await;
    send(
        &app,
        web(
            "/example.v1.EchoService/Nope",
            "application/grpc-web+proto",
            hello,
        ),
    )
    .await;

    let reply = send(&app, get("/metrics")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    let page = &text(&reply);
    let echo = [("grpc_service", "example.v1.EchoService")];
    let handled = |page: &str, method: &str, code: &str| {
        let labels = [echo[0], ("grpc_method", method), ("grpc_code", code)];
        prometheus::total(page, "grpc_server_handled_total", &labels)
    };
    assert_eq!(handled(page, "Echo", "OK"), 3.0, "{page}");
    // A path that does not exist is counted, under one label set for all
    // such paths (see `calls_to_paths_that_do_not_exist_add_no_series_per_path`).
    let unknown = [
        ("grpc_service", "unknown"),
        ("grpc_method", "unknown"),
        ("grpc_code", "UNIMPLEMENTED"),
    ];
    assert_eq!(
        prometheus::total(page, "grpc_server_handled_total", &unknown),
        1.0,
        "{page}"
    );
    assert_eq!(
        prometheus::samples(page, "grpc_server_handled_total").len(),
        2,
        "no other calls counted: {page}"
    );
    // The registry handed to the builder is the one `/metrics` renders.
    assert_eq!(handled(&metrics.render(), "Echo", "OK"), 3.0);
    let labels = [echo[0], ("grpc_method", "Echo")];
    assert_eq!(
        prometheus::total(page, "grpc_server_handling_seconds_count", &labels),
        3.0,
        "{page}"
    );
    assert!(
        page.contains("grpc_server_handling_seconds_bucket{grpc_service=\"example.v1.EchoService\",grpc_method=\"Echo\",le=\"0.0005\"}"),
        "durations in buckets from 0.5 ms: {page}"
    );
}

#[tokio::test]
async fn the_static_app_serves_its_files_and_index_html_for_unknown_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), "<p>index</p>").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;

    let reply = send(&app, get("/")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(text(&reply), "<p>index</p>");

    let reply = send(&app, get("/app.js")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(text(&reply), "console.log(1)");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.contains("javascript")),
        "{:?}",
        reply.header("content-type")
    );

    // Client-side routes get the app, which then routes itself.
    for path in ["/articles/42", "/no/such/route"] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{path}");
        assert_eq!(text(&reply), "<p>index</p>", "{path}");
    }
    // A missing file (its name has an extension) is not: index.html under
    // an asset's name would be kept by the browser as that asset.
    let reply = send(&app, get("/no/such/file.txt")).await;
    assert_eq!(reply.status, http::StatusCode::NOT_FOUND);

    // The runtime's own paths are not shadowed by the app.
    assert_eq!(text(&send(&app, get("/healthz")).await), "ok\n");
}

#[tokio::test]
async fn without_a_static_app_unknown_paths_are_404() {
    let app = app(RuntimeBuilder::new()).await;
    for path in ["/", "/index.html", "/articles/42"] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, http::StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_static_dir_without_index_html_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = crate::common::with_echo(RuntimeBuilder::new().static_dir(Some(dir.path().into())))
        .into_service()
        .await
        .expect_err("a static app needs its index.html");
    assert!(err.to_string().contains("index.html"), "{err:#}");
}

#[tokio::test]
async fn the_static_app_serves_nothing_whose_real_path_is_outside_its_folder() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("secret.txt"), "SECRET").unwrap();
    std::fs::create_dir(outside.path().join("dir")).unwrap();
    std::fs::write(outside.path().join("dir/index.html"), "SECRET INDEX").unwrap();
    std::fs::write(outside.path().join("dir/inner.txt"), "SECRET INNER").unwrap();

    let app_dir = tempfile::tempdir().expect("temp dir");
    let root = app_dir.path().join("app");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("index.html"), "<p>index</p>").unwrap();
    std::fs::write(root.join("assets/app.js"), "console.log(1)").unwrap();
    std::fs::write(app_dir.path().join("beside.txt"), "SECRET BESIDE").unwrap();
    let link = |target: &std::path::Path, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
    };
    link(&outside.path().join("secret.txt"), "passwd");
    link(&outside.path().join("dir"), "linked-dir");
    link(std::path::Path::new("../beside.txt"), "relative");
    link(std::path::Path::new("/etc/passwd"), "etc-passwd");
    link(std::path::Path::new("assets/app.js"), "inside.js");
    link(&root.join("assets"), "inside-dir");
    let app = app(RuntimeBuilder::new().static_dir(Some(root.clone()))).await;

    for path in [
        "/passwd",
        "/etc-passwd",
        "/relative",
        "/linked-dir/inner.txt",
        "/linked-dir/",
        "/linked-dir",
    ] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, http::StatusCode::NOT_FOUND, "{path}");
        assert_eq!(text(&reply), "not found\n", "no hint: {path}");
    }

    // Links that stay inside the folder are served.
    for path in ["/inside.js", "/inside-dir/app.js"] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{path}");
        assert_eq!(text(&reply), "console.log(1)", "{path}");
    }

    // Traversal, plain and percent-encoded, never leaves the folder.
    for path in [
        "/../beside.txt",
        "/assets/../../beside.txt",
        "/%2e%2e/beside.txt",
        "/..%2fbeside.txt",
        "/assets/%2e%2e%2f%2e%2e%2fbeside.txt",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
    ] {
        let reply = send(&app, get(path)).await;
        let body = text(&reply);
        assert!(
            !body.contains("SECRET") && !body.contains("root:"),
            "{path}: {} {body:?}",
            reply.status
        );
    }
}
