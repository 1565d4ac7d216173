//! The runtime's own gRPC-web translation against tonic-web's, on the wire.
//!
//! The same tonic service runs twice: on the runtime's port, and on a
//! plain tonic server (`accept_http1(true)`) behind `tonic_web::GrpcWebLayer`,
//! the reference. Every request below goes to both over real connections,
//! HTTP/1.1 and HTTP/2, and the answers must be equal: status, every header
//! in order (except `date`, and `x-request-id` which only the runtime
//! adds), body bytes and HTTP trailers. The service echoes what it saw of
//! the request (`content-type`, `content-length`) in its answer, so the
//! translated request is compared too.
//!
//! The deliberate differences (see `runtime/src/grpc_web.rs`) are asserted
//! as such: the service's view of `te` and `accept-encoding`, and the
//! prefix of the errors of a malformed text-mode body.
//!
//! A binary of its own, apart from `tests/runtime`: it is the only user of
//! the `tonic-web` dev-dependency.

use std::{net::SocketAddr, pin::Pin};

use bytes::Bytes;
use futures::Stream;
use grpc_runtime::RuntimeBuilder;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use testkit::{
    SpawnedServer, TIMEOUT,
    echo::{EchoService, EchoServiceServer, pb},
    grpc_web::{self, frame},
};
use tonic::{Code, Status, metadata::MetadataValue};

/// Echo that tells what it saw and can fail.
#[derive(Clone, Copy, Debug, Default)]
struct Probe;

/// The request headers the service reports back, as `x-seen-NAME`.
const SEEN: [&str; 4] = ["content-type", "content-length", "te", "accept-encoding"];

fn seen(request: &tonic::metadata::MetadataMap, into: &mut tonic::metadata::MetadataMap) {
    for name in SEEN {
        let value = request
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)");
        let key = format!("x-seen-{name}")
            .parse::<tonic::metadata::MetadataKey<_>>()
            .unwrap();
        into.insert(key, MetadataValue::try_from(value).unwrap());
    }
}

#[tonic::async_trait]
impl EchoService for Probe {
    async fn echo(
        &self,
        request: tonic::Request<pb::EchoRequest>,
    ) -> Result<tonic::Response<pb::EchoResponse>, Status> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        seen(request.metadata(), &mut metadata);
        let message = request.into_inner().message;
        if message == "fail" {
            metadata.insert("x-reason", MetadataValue::from_static("asked to"));
            metadata.insert_bin("x-detail-bin", MetadataValue::from_bytes(b"\x00\xff"));
            return Err(Status::with_metadata(
                Code::InvalidArgument,
                "bad input: «fail» ✗",
                metadata,
            ));
        }
        let mut response = tonic::Response::new(pb::EchoResponse { message });
        *response.metadata_mut() = metadata;
        Ok(response)
    }

    type CountStream = Pin<Box<dyn Stream<Item = Result<pb::CountResponse, Status>> + Send>>;

    /// Numbers after `after` up to `up_to`; when `after` is 1000 or more
    /// the stream ends in an error with metadata, in the trailers.
    async fn count(
        &self,
        request: tonic::Request<pb::CountRequest>,
    ) -> Result<tonic::Response<Self::CountStream>, Status> {
        let pb::CountRequest { after, up_to, .. } = request.into_inner();
        let mut items: Vec<Result<pb::CountResponse, Status>> = (after + 1..=up_to)
            .map(|number| Ok(pb::CountResponse { number }))
            .collect();
        if after >= 1000 {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("x-stopped-at", MetadataValue::from(up_to));
            items.push(Err(Status::with_metadata(
                Code::Aborted,
                "stopped on purpose",
                metadata,
            )));
        }
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(items))))
    }
}

async fn runtime_server() -> SpawnedServer {
    let runtime = RuntimeBuilder::new()
        .add_service(EchoServiceServer::new(Probe))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the runtime binds");
    SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| {
        runtime.run_until(stop)
    })
}

async fn tonic_web_server() -> SpawnedServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    SpawnedServer::spawn(addr, format!("http://{addr}"), |stop| {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(tonic_web::GrpcWebLayer::new())
            .add_service(EchoServiceServer::new(Probe))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop,
            )
    })
}

/// One request, to be sent to both servers.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    method: Method,
    path: &'static str,
    http2: bool,
    headers: Vec<(&'static str, &'static str)>,
    /// The body in these chunks (each sent as a frame of its own).
    chunks: Vec<Bytes>,
}

/// What came back, minus `date` and `x-request-id`.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
    trailers: Vec<(String, Vec<u8>)>,
}

fn listed(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| *name != http::header::DATE && name.as_str() != "x-request-id")
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

async fn send(addr: SocketAddr, case: &Case) -> (Answer, HeaderMap) {
    let chunks = case.chunks.clone();
    let body = StreamBody::new(futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(http_body::Frame::data(c))),
    ));
    let body: BoxBody<Bytes, std::convert::Infallible> = if case.chunks.len() == 1 {
        // One chunk: sent with a content-length, as browsers do.
        BoxBody::new(Full::new(case.chunks[0].clone()))
    } else {
        BoxBody::new(body)
    };
    let mut request = Request::builder()
        .method(case.method.clone())
        .uri(format!("http://{addr}{}", case.path));
    for (name, value) in &case.headers {
        request = request.header(*name, *value);
    }
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(tcp);
    let exchange = async {
        let response = if case.http2 {
            let request = request.version(Version::HTTP_2).body(body).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        } else {
            let request = request
                .header(http::header::HOST, addr.to_string())
                .body(body)
                .unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        };
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("the body reads to its end");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let answer = Answer {
            status: parts.status,
            headers: listed(&parts.headers),
            body: collected.to_bytes(),
            trailers: listed(&trailers),
        };
        (answer, parts.headers)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("the answer comes in time")
}

const ECHO: &str = "/example.v1.EchoService/Echo";
const COUNT: &str = "/example.v1.EchoService/Count";
const UNKNOWN_SERVICE: &str = "/nope.v1.Nope/Nope";

fn echo(message: &str) -> Bytes {
    frame(&pb::EchoRequest {
        message: message.into(),
        delay_ms: 0,
    })
}

fn count(after: u64, up_to: u64) -> Bytes {
    frame(&pb::CountRequest {
        after,
        up_to,
        interval_ms: 0,
    })
}

/// `body` cut at odd places: 1, 2, 3, 5, 7, 11, ... bytes, then the rest.
fn odd_chunks(body: &Bytes) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut at = 0;
    for size in [1, 2, 3, 5, 7, 11, 13] {
        if at + size >= body.len() {
            break;
        }
        chunks.push(body.slice(at..at + size));
        at += size;
    }
    chunks.push(body.slice(at..));
    chunks
}

/// Every request of the comparison, each over HTTP/1.1 and HTTP/2.
fn cases() -> Vec<Case> {
    let large = "x".repeat(1 << 20);
    // (name, method, path, headers, body chunks)
    type Base = (
        String,
        Method,
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<Bytes>,
    );
    let mut base: Vec<Base> = Vec::new();
    let text = |frames: &Bytes| grpc_web::web_text(frames);
    for (ct, accept) in [
        ("application/grpc-web", None),
        ("application/grpc-web+proto", None),
        (
            "application/grpc-web-text",
            Some("application/grpc-web-text"),
        ),
        (
            "application/grpc-web-text+proto",
            Some("application/grpc-web-text+proto"),
        ),
        // Text in, binary out (no accept), and binary in, text out.
        ("application/grpc-web-text", None),
        (
            "application/grpc-web+proto",
            Some("application/grpc-web-text"),
        ),
    ] {
        let is_text = ct.starts_with("application/grpc-web-text");
        let encode = |b: Bytes| if is_text { text(&b) } else { b };
        let mut headers = vec![("content-type", ct), ("x-grpc-web", "1")];
        if let Some(accept) = accept {
            headers.push(("accept", accept));
        }
        let tag = format!("{ct} accept={accept:?}");
        for (what, path, body) in [
            ("unary ok", ECHO, echo("hello")),
            ("unary error (trailers-only)", ECHO, echo("fail")),
            ("server streaming", COUNT, count(0, 5)),
            ("stream ending in an error", COUNT, count(1000, 1003)),
            ("empty stream", COUNT, count(7, 7)),
            ("large message", ECHO, echo(&large)),
            ("unknown method", "/example.v1.EchoService/Nope", echo("x")),
            ("unknown service", UNKNOWN_SERVICE, echo("x")),
        ] {
            base.push((
                format!("{what}, {tag}"),
                Method::POST,
                path,
                headers.clone(),
                vec![encode(body)],
            ));
        }
        base.push((
            format!("odd chunks, {tag}"),
            Method::POST,
            ECHO,
            headers.clone(),
            odd_chunks(&encode(echo("split across odd chunk boundaries"))),
        ));
        base.push((
            format!("GET, {tag}"),
            Method::GET,
            ECHO,
            headers.clone(),
            vec![Bytes::new()],
        ));
    }
    let text_headers = vec![
        ("content-type", "application/grpc-web-text"),
        ("accept", "application/grpc-web-text"),
    ];
    for (what, body) in [
        ("malformed base64 (bad symbol)", "AAAA!AAA"),
        ("malformed base64 (length)", "AAAAAAA"),
        ("malformed base64 (not a frame)", "AAAA"),
    ] {
        base.push((
            what.into(),
            Method::POST,
            ECHO,
            text_headers.clone(),
            vec![Bytes::from_static(body.as_bytes())],
        ));
    }
    base.push((
        "native gRPC".into(),
        Method::POST,
        ECHO,
        vec![("content-type", "application/grpc"), ("te", "trailers")],
        vec![echo("native")],
    ));
    let mut cases = Vec::new();
    for (name, method, path, headers, chunks) in base {
        for http2 in [false, true] {
            cases.push(Case {
                name: format!("{name}, {}", if http2 { "HTTP/2" } else { "HTTP/1.1" }),
                method: method.clone(),
                path,
                http2,
                headers: headers.clone(),
                chunks: chunks.clone(),
            });
        }
    }
    cases
}

/// Takes the deliberate differences out of the runtime's answer, asserting
/// each is what it should be.
fn settle_differences(case: &Case, ours: &mut Answer) {
    let client = |name: &str| {
        case.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(b"(none)".to_vec(), |(_, v)| v.as_bytes().to_vec())
    };
    let web_post = case.method == Method::POST
        && case
            .headers
            .iter()
            .any(|(n, v)| *n == "content-type" && v.starts_with("application/grpc-web"));
    for (name, tonic_web_value) in [
        ("x-seen-te", b"trailers".to_vec()),
        ("x-seen-accept-encoding", b"identity,deflate,gzip".to_vec()),
    ] {
        for headers in [&mut ours.headers, &mut ours.trailers] {
            if let Some(entry) = headers.iter_mut().find(|(n, _)| n == name)
                && web_post
            {
                assert_eq!(
                    entry.1,
                    client(&name["x-seen-".len()..]),
                    "{}: the service sees the client's own {name}",
                    case.name
                );
                entry.1 = tonic_web_value.clone();
            }
        }
    }
    // Error messages of a malformed text body: `grpc-web:` for `tonic-web:`.
    for headers in [&mut ours.headers, &mut ours.trailers] {
        if let Some(entry) = headers.iter_mut().find(|(n, _)| n == "grpc-message")
            && let Some(rest) = entry.1.strip_prefix(b"grpc-web:")
        {
            entry.1 = [b"tonic-web:".as_slice(), rest].concat();
        }
    }
}

/// Not the translation's doing: the runtime answers an unknown service
/// itself, with a body that is at its end from the start, and hyper then
/// sends HTTP/2 HEADERS with END_STREAM and no `content-length: 0`, where
/// tonic's router body makes it add one (the same with tonic-web in the
/// runtime, which passes both on unchanged).
fn unknown_service_difference(case: &Case, ours: &Answer, reference: &mut Answer) {
    if case.path == UNKNOWN_SERVICE && case.http2 && ours.status == StatusCode::OK {
        let zero = ("content-length".to_string(), b"0".to_vec());
        assert!(!ours.headers.contains(&zero), "{}", case.name);
        reference.headers.retain(|h| *h != zero);
    }
}

#[tokio::test]
async fn every_answer_equals_tonic_webs() {
    let ours = runtime_server().await;
    let reference = tonic_web_server().await;
    let cases = cases();
    let mut differences = Vec::new();
    for case in &cases {
        let (mut mine, my_headers) = send(ours.addr, case).await;
        let (mut theirs, _) = send(reference.addr, case).await;
        unknown_service_difference(case, &mine, &mut theirs);
        assert!(
            my_headers.contains_key("x-request-id"),
            "{}: the runtime adds a request id",
            case.name
        );
        settle_differences(case, &mut mine);
        if mine != theirs {
            differences.push(format!(
                "{}:\n  ours:      {mine:?}\n  tonic-web: {theirs:?}",
                case.name
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
    ours.shutdown().await;
    reference.shutdown().await;
}
