//! Bytes on the wire: one HTTP/1.1 exchange over a raw socket
//! (`Connection: close`, read to EOF), counted as sent and received,
//! headers and body (with any chunked framing) apart.

use std::net::SocketAddr;

use anyhow::Context as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WireBytes {
    pub request: usize,
    pub response_headers: usize,
    pub response_body: usize,
}

impl WireBytes {
    pub fn response(&self) -> usize {
        self.response_headers + self.response_body
    }
}

/// Sends `head` (request line and headers, without the blank line) plus
/// `body`, returns the byte counts and the status line.
pub async fn exchange(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
) -> anyhow::Result<(WireBytes, String)> {
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&request).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the response")?
        + 4;
    let status = String::from_utf8_lossy(&response[..split])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((
        WireBytes {
            request: request.len(),
            response_headers: split,
            response_body: response.len() - split,
        },
        status,
    ))
}
