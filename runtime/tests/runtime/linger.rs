//! A message over the limit sent over HTTP/1.1 by a client that writes
//! the whole body before reading (browsers, Python's `http.client`,
//! Connect for Node): the early RESOURCE_EXHAUSTED answer must reach it,
//! so the server reads and discards the rest of the body (bounded) before
//! closing, instead of resetting the connection under the client's writes.

use std::{net::SocketAddr, time::Duration};

use grpc_runtime::RuntimeBuilder;
use prost::Message as _;
use testkit::{SpawnedServer, TIMEOUT, echo::pb::EchoRequest, grpc_web::frame};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::common::{ECHO, serve};

/// A gRPC-web Echo frame carrying a message of about `size` bytes.
fn big_frame(size: usize) -> bytes::Bytes {
    let request = EchoRequest {
        message: "a".repeat(size),
        delay_ms: 0,
    };
    assert!(request.encoded_len() > size);
    frame(&request)
}

/// The head of an HTTP/1.1 gRPC-web POST of `ECHO` declaring `length` bytes.
fn head(addr: SocketAddr, length: u64) -> String {
    format!(
        "POST {ECHO} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/grpc-web+proto\r\n\
         x-grpc-web: 1\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Reads an HTTP/1.1 response head (through the blank line), bounded.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut byte))
            .await
            .expect("the answer arrives in time")
            .expect("the answer is readable");
        assert_eq!(n, 1, "the connection ended inside the head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn a_client_that_writes_5_mib_before_reading_gets_resource_exhausted() {
    let server = serve(RuntimeBuilder::new()).await;
    let body = big_frame(5 * 1024 * 1024);
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(head(server.addr, body.len() as u64).as_bytes())
        .await
        .unwrap();
    // The whole body first, as a browser's fetch does: this fails with
    // EPIPE/ECONNRESET if the server closes after its early answer.
    tokio::time::timeout(TIMEOUT, tcp.write_all(&body))
        .await
        .expect("the server reads the body in time")
        .expect("the whole body is written");
    let answer = read_head(&mut tcp).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("grpc-status: 8\r\n"), "{answer}");

    // The body was read to its end: the connection goes on.
    let small = frame(&EchoRequest {
        message: "still here".into(),
        delay_ms: 0,
    });
    let mut rest = Vec::new();
    let request = [
        head(server.addr, small.len() as u64).into_bytes(),
        small.to_vec(),
    ]
    .concat();
    tcp.write_all(&request).await.expect("a second request");
    let read = async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&rest).contains("grpc-status:0") {
            let n = tcp.read(&mut buf).await.expect("readable");
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&rest));
            rest.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("the second answer arrives in time");
    assert!(String::from_utf8_lossy(&rest).contains("still here"));
}

#[tokio::test]
async fn a_declared_1_gib_body_is_answered_and_closed_without_being_read() {
    let server = serve(RuntimeBuilder::new()).await;
    for length in [64u64 << 20, 1 << 30] {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let mut header = vec![0u8];
        header.extend_from_slice(&(u32::try_from(length - 5).unwrap()).to_be_bytes());
        tcp.write_all(head(server.addr, length).as_bytes())
            .await
            .unwrap();
        tcp.write_all(&header).await.unwrap();
        let answer = read_head(&mut tcp).await;
        assert!(answer.contains("grpc-status: 8\r\n"), "{length}: {answer}");
        // Closed at once: nothing more to read, well before the linger time.
        let mut buf = [0u8; 1024];
        let closed = async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(3), closed)
            .await
            .expect("the server closes the connection");
    }
}

#[tokio::test]
async fn a_body_past_the_linger_bound_is_cut() {
    // Limit 64 bytes: the bound is the 8 MiB floor; no content-length
    // (chunked), so the server cannot know in advance and reads up to it.
    let server = serve(RuntimeBuilder::new().max_message_bytes(64)).await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST {ECHO} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/grpc-web+proto\r\n\
         x-grpc-web: 1\r\ntransfer-encoding: chunked\r\n\r\n",
        server.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = [
        format!("{:x}\r\n", 1 << 20).into_bytes(),
        vec![0u8; 1 << 20],
        b"\r\n".to_vec(),
    ]
    .concat();
    let header_chunk = b"5\r\n\x00\x00\x01\x00\x00\r\n".to_vec();
    tcp.write_all(&header_chunk).await.unwrap();
    let writing = async {
        for _ in 0..64 {
            if tcp.write_all(&chunk).await.is_err() {
                return true;
            }
        }
        false
    };
    let cut = tokio::time::timeout(TIMEOUT, writing)
        .await
        .expect("the server reads or cuts in time");
    assert!(cut, "64 MiB past a 64-byte limit are not all read");
}

#[tokio::test]
async fn python_http_client_writing_the_whole_body_gets_resource_exhausted() {
    let server = serve(RuntimeBuilder::new()).await;
    let script = r#"
import http.client, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
message = b"a" * (5 * 1024 * 1024)
# EchoRequest field 1 (tag 0x0a), varint length, then the text.
n, varint = len(message), b""
while True:
    b = n & 0x7f
    n >>= 7
    if n:
        varint += bytes([b | 0x80])
    else:
        varint += bytes([b])
        break
payload = b"\x0a" + varint + message
body = b"\x00" + len(payload).to_bytes(4, "big") + payload
conn = http.client.HTTPConnection(host, port, timeout=20)
conn.request("POST", path, body=body, headers={
    "content-type": "application/grpc-web+proto", "x-grpc-web": "1"})
response = conn.getresponse()
print(response.status, response.getheader("grpc-status"), response.getheader("grpc-message"))
"#;
    assert_answers_resource_exhausted("python3", "-c", script, &server).await;
}

#[tokio::test]
async fn node_http_client_writing_the_whole_body_gets_resource_exhausted() {
    // Node's http module, as Connect for Node uses it over HTTP/1.1: the
    // whole body is written, then the answer read; before the lingering
    // close the write failed with EPIPE.
    let server = serve(RuntimeBuilder::new()).await;
    let script = r#"
const http = require("http");
const [host, port, path] = process.argv.slice(1);
const message = Buffer.alloc(5 * 1024 * 1024, 0x61);
const varint = [];
let n = message.length;
while (n > 0x7f) { varint.push((n & 0x7f) | 0x80); n >>>= 7; }
varint.push(n);
const payload = Buffer.concat([Buffer.from([0x0a, ...varint]), message]);
const header = Buffer.alloc(5);
header.writeUInt32BE(payload.length, 1);
const body = Buffer.concat([header, payload]);
const req = http.request({ host, port: Number(port), path, method: "POST", headers: {
  "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "content-length": body.length,
}}, (res) => {
  console.log(res.statusCode, res.headers["grpc-status"], res.headers["grpc-message"]);
  res.resume();
});
req.on("error", (e) => { console.log("error", e.code || e.message); process.exitCode = 1; });
req.end(body);
"#;
    assert_answers_resource_exhausted("node", "-e", script, &server).await;
}

/// Runs `script` as `program flag script HOST PORT PATH` (a client that
/// writes the whole oversized body, then prints `STATUS GRPC-STATUS
/// MESSAGE`) and asserts it got HTTP 200 with grpc-status 8.
async fn assert_answers_resource_exhausted(
    program: &str,
    flag: &str,
    script: &str,
    server: &SpawnedServer,
) {
    let output = tokio::process::Command::new(program)
        .arg(flag)
        .arg(script)
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .arg(ECHO)
        .output();
    let output = tokio::time::timeout(TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("{program} answers in time"))
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("200 8 "), "{program}: {stdout}");
}
