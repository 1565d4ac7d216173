//! The transport: gRPC-web over the browser's `fetch`, with deadlines
//! enforced in the browser and browser failures turned into the gRPC codes
//! they stand for.
//!
//! Written here against `fetch` directly rather than on
//! `tonic-web-wasm-client` for size: that crate (with `http-body-util`,
//! `wasm-streams`, `httparse`, a second `base64` and the text mode) was
//! ~25 KB of raw wasm in the app. What it did beyond this file is the
//! `grpc-web-text` mode (base64 bodies), which browsers that can stream a
//! binary `fetch` body do not need. Everything here is one non-generic
//! path: `tonic::body::Body` in, [`ResponseBody`] out, compiled once
//! whatever the messages.

use std::{
    future::{Future, poll_fn},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body::{Body as _, Frame};
use js_sys::{Promise, Uint8Array};
use send_wrapper::SendWrapper;
use tonic::Status;
use wasm_bindgen::{JsCast as _, JsValue, prelude::wasm_bindgen};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader, ReadableStreamReadResult};

use crate::time::{clear_timeout, set_timeout};

/// How much longer than its deadline the browser lets a call run, so that a
/// server that gives up first can say why.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);
/// The message of a deadline enforced in the browser.
const DEADLINE_MESSAGE: &str = "the server did not answer in time";
/// Binary gRPC-web, the only mode sent and accepted.
const GRPC_WEB: &str = "application/grpc-web+proto";

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, so that windows and workers both have it.
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(url: &str, init: &web_sys::RequestInit) -> Promise;
    /// JavaScript's `String(value)`: `"TypeError: Failed to fetch"`.
    #[wasm_bindgen(js_name = String)]
    fn js_string(value: &JsValue) -> String;
}

/// The transport for generated tonic clients in the browser:
/// `SomeServiceClient::new(Client::new(url))`.
///
/// It speaks binary gRPC-web (`application/grpc-web+proto`) over `fetch`
/// and
///
/// * enforces each call's deadline (`Request::set_timeout`, sent as
///   `grpc-timeout`) in the browser too, over the whole call including a
///   server stream's body, ending it with `DEADLINE_EXCEEDED`;
/// * reports a failed `fetch` (server down, connection refused, CORS) as
///   `UNAVAILABLE`.
///
/// Dropping a call's future, or the `Streaming` it returned, aborts its
/// `fetch`. Cloning is cheap (a URL).
#[derive(Clone, Debug)]
pub struct Client {
    base_url: String,
    /// See [`Client::answered`].
    answer: Option<Bytes>,
}

impl Client {
    /// A client for the server at `base_url` (scheme, host and port, e.g.
    /// `https://api.example.com`; a trailing `/` is ignored).
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Self {
            base_url,
            answer: None,
        }
    }

    /// A client that sends nothing: every call gets `body`, a whole binary
    /// gRPC-web response body fetched before (e.g. by an inline script in
    /// the page while the wasm downloads), as its answer with HTTP 200.
    /// Its message frames and trailers are read as from the network, so a
    /// status in the trailers is the call's error. Nothing waits for an
    /// event, so the call's future is ready when first polled
    /// (`FutureExt::now_or_never`).
    pub fn answered(body: impl Into<Bytes>) -> Self {
        Self {
            base_url: String::new(),
            answer: Some(body.into()),
        }
    }

    /// A client for the origin that served the page (`location.origin`);
    /// the usual choice when the server also serves the app.
    pub fn same_origin() -> Self {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        Self::new(origin)
    }

    /// The server's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

type Fetch = Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, Status>>>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Client {
    type Response = http::Response<ResponseBody>;
    type Error = Status;
    type Future = Fetch;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Fetch {
        if let Some(body) = self.answer.clone() {
            return Box::pin(async move {
                Ok(http::Response::new(ResponseBody(SendWrapper::new(
                    Reading {
                        reader: None,
                        read: None,
                        buffer: BytesMut::from(body),
                        finished: false,
                        _abort: Abort::new(None)?,
                    },
                ))))
            });
        }
        let mut url = self.base_url.clone();
        url.push_str(request.uri().path());
        Box::pin(call(url, request))
    }
}

/// A generated client's call future, boxed: what [`unary`] takes.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + 'a>>;

/// Awaits a unary call of a generated client, handed over boxed
/// (`unary(Box::pin(client.get_foo(request)))`), and returns its message
/// or an [`Error`](crate::Error).
///
/// For size: awaited directly in an `async fn`, a generated call's future
/// (tonic's generic encode, call and decode path) is inlined into that
/// function's state machine, once per call site; boxed, it is compiled once
/// per method and polled through one pointer. In the example app (five
/// unary methods, seven call sites) the page tasks lost 10 KB of raw wasm,
/// the methods' own futures took 14 KB, and the whole was 0.4 KB smaller
/// gzipped (0.8 KB brotli): the most that can be shared while each method
/// keeps its generated, typed call.
pub async fn unary<T>(call: Call<'_, T>) -> Result<T, crate::Error> {
    match call.await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(crate::Error::from(&status)),
    }
}

/// One call: the request body collected (a browser sends a request body
/// whole), one `fetch`, the response head; the body is read as it comes.
async fn call(
    url: String,
    request: http::Request<tonic::body::Body>,
) -> Result<http::Response<ResponseBody>, Status> {
    let (parts, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            bytes.extend_from_slice(&data);
        }
    }

    let headers = web_sys::Headers::new().map_err(js_status)?;
    for (name, value) in &parts.headers {
        // tonic's `application/grpc` becomes gRPC-web's; `te` is not the
        // page's to set.
        if name != http::header::CONTENT_TYPE
            && name != http::header::TE
            && let Ok(value) = value.to_str()
        {
            headers.append(name.as_str(), value).map_err(js_status)?;
        }
    }
    for (name, value) in [
        ("content-type", GRPC_WEB),
        ("accept", GRPC_WEB),
        ("x-grpc-web", "1"),
    ] {
        headers.set(name, value).map_err(js_status)?;
    }

    // The `fetch` gets its own abort timer; an aborted `fetch` or body read
    // can only be this timer (the other abort is a drop, after which nobody
    // reads), so `AbortError` means the deadline passed.
    let abort = Abort::new(
        parts
            .headers
            .get("grpc-timeout")
            .and_then(|v| grpc_timeout(v.as_bytes())),
    )?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&Uint8Array::from(bytes.as_slice()));
    init.set_signal(Some(&abort.controller.signal()));
    let response: web_sys::Response = JsFuture::from(fetch_with_init(&url, &init))
        .await
        .map_err(js_status)?
        .unchecked_into();

    let mut head = http::Response::new(());
    *head.status_mut() = StatusCode::from_u16(response.status()).unwrap_or(StatusCode::OK);
    *head.headers_mut() = header_map(&response.headers())?;
    let content_type = head
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    // Binary gRPC-web is `application/grpc-web` with `+proto` or nothing
    // after it; `-text` (base64) is not asked for and not read.
    let binary = content_type
        .strip_prefix(b"application/grpc-web")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"));
    if !binary {
        // Quoted by hand, not with `{:?}`: the app's release build drops
        // `Debug` output (`-Zfmt-debug=none`, xtask/src/web.rs).
        return Err(Status::unknown(format!(
            "not a gRPC-web answer: HTTP {}, content-type \"{}\"",
            response.status(),
            String::from_utf8_lossy(content_type),
        )));
    }
    let reader = response
        .body()
        .map(|stream| stream.get_reader().unchecked_into());
    Ok(head.map(|()| {
        ResponseBody(SendWrapper::new(Reading {
            reader,
            read: None,
            buffer: BytesMut::new(),
            finished: false,
            _abort: abort,
        }))
    }))
}

/// The response's headers as a `HeaderMap`; names the `http` crate
/// refuses are left out.
fn header_map(headers: &web_sys::Headers) -> Result<HeaderMap, Status> {
    let mut map = HeaderMap::new();
    let Some(entries) = js_sys::try_iter(headers).map_err(js_status)? else {
        return Ok(map);
    };
    for entry in entries {
        let entry: js_sys::Array = entry.map_err(js_status)?.unchecked_into();
        if let (Some(name), Some(value)) = (entry.get(0).as_string(), entry.get(1).as_string()) {
            insert(&mut map, name.as_bytes(), value.as_bytes());
        }
    }
    Ok(map)
}

fn insert(map: &mut HeaderMap, name: &[u8], value: &[u8]) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        map.append(name, value);
    }
}

/// A call's `AbortController`: aborted when dropped (with the call's
/// future or its response body) and, with a deadline, by a timer.
struct Abort {
    controller: AbortController,
    timer: Option<JsValue>,
}

impl Abort {
    fn new(deadline: Option<Duration>) -> Result<Self, Status> {
        let controller = AbortController::new().map_err(js_status)?;
        // `controller.abort` bound to the controller is the timer's
        // handler: no Rust closure to keep alive.
        let timer = deadline.map(|deadline| {
            let abort: js_sys::Function = js_sys::Reflect::get(&controller, &"abort".into())
                .unwrap_or_default()
                .unchecked_into();
            let ms = deadline.saturating_add(DEADLINE_GRACE).as_millis();
            set_timeout(&abort.bind0(&controller), ms.try_into().unwrap_or(i32::MAX))
        });
        Ok(Self { controller, timer })
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        self.controller.abort();
        if let Some(timer) = &self.timer {
            clear_timeout(timer);
        }
    }
}

/// The status a rejected `fetch` or body read stands for.
fn js_status(error: JsValue) -> Status {
    let text = js_string(&error);
    // `fetch` and body reads reject with a `DOMException` named
    // `AbortError` when the deadline's timer aborted them, and with a
    // `TypeError` when the network failed: refused, reset, offline,
    // blocked by CORS.
    if text.starts_with("AbortError") {
        Status::deadline_exceeded(DEADLINE_MESSAGE)
    } else {
        Status::unavailable(text)
    }
}

/// A gRPC-web response body as tonic reads it: the message frames as data
/// and the trailer frame (flag `0x80`) as trailers. Dropping it aborts the
/// `fetch`.
///
/// tonic wants `Send` bodies while this one holds JavaScript objects, which
/// stay on the thread that made them: `SendWrapper` (which Leptos uses
/// too) makes it `Send` and would panic if it were used on another thread.
pub struct ResponseBody(SendWrapper<Reading>);

struct Reading {
    reader: Option<ReadableStreamDefaultReader>,
    read: Option<JsFuture>,
    buffer: BytesMut,
    finished: bool,
    _abort: Abort,
}

impl Reading {
    /// The next whole frame in the buffer, if there is one.
    fn frame(&mut self) -> Option<Frame<Bytes>> {
        let header = self.buffer.get(..5)?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if self.buffer.len() < 5 + len {
            return None;
        }
        if header[0] & 0x80 == 0 {
            // A message frame: tonic reads the gRPC framing itself.
            return Some(Frame::data(self.buffer.split_to(5 + len).freeze()));
        }
        let mut trailers = self.buffer.split_to(5 + len);
        trailers.advance(5);
        self.finished = true;
        Some(Frame::trailers(parse_trailers(&trailers)))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self.0;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(frame) = this.frame() {
                return Poll::Ready(Some(Ok(frame)));
            }
            let Some(reader) = &this.reader else {
                this.finished = true;
                continue;
            };
            let read = this
                .read
                .get_or_insert_with(|| JsFuture::from(reader.read()));
            let result = match Pin::new(read).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            };
            this.read = None;
            let result: ReadableStreamReadResult = match result {
                Ok(value) => value.unchecked_into(),
                Err(error) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(js_status(error))));
                }
            };
            if result.get_done().unwrap_or(true) {
                this.reader = None;
                if !this.buffer.is_empty() {
                    this.finished = true;
                    return Poll::Ready(Some(Err(Status::internal(
                        "the response ended inside a gRPC-web frame",
                    ))));
                }
                continue;
            }
            let chunk: Uint8Array = result.get_value().unchecked_into();
            let start = this.buffer.len();
            this.buffer.resize(start + chunk.length() as usize, 0);
            chunk.copy_to(&mut this.buffer[start..]);
        }
    }
}

/// The trailer frame's payload: HTTP/1-style `name: value` lines.
fn parse_trailers(payload: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in payload.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = line[..colon].trim_ascii().to_ascii_lowercase();
            insert(&mut map, &name, line[colon + 1..].trim_ascii());
        }
    }
    map
}

/// A `grpc-timeout` header value: up to 8 digits and a unit.
fn grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn grpc_timeout_units() {
        assert_eq!(grpc_timeout(b"10S"), Some(Duration::from_secs(10)));
        assert_eq!(grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout(b"300m"), Some(Duration::from_millis(300)));
        assert_eq!(grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            grpc_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [&b""[..], b"S", b"123456789S", b"10s", b"1.5S", b"-1S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[wasm_bindgen_test]
    fn a_trailing_slash_is_ignored() {
        assert_eq!(Client::new("http://x:1//").base_url(), "http://x:1");
    }

    #[wasm_bindgen_test]
    fn trailer_frames_become_trailers_and_message_frames_pass_whole() {
        let mut body = Reading {
            reader: None,
            read: None,
            buffer: BytesMut::new(),
            finished: false,
            _abort: Abort::new(None).unwrap(),
        };
        let trailer = b"grpc-status:0\r\nGrpc-Message: fine \r\nx-n: 1\r\n";
        body.buffer.extend_from_slice(&[0, 0, 0, 0, 2, 7]);
        assert!(body.frame().is_none(), "half a message frame is no frame");
        body.buffer.extend_from_slice(&[8, 0x80, 0, 0, 0]);
        body.buffer.extend_from_slice(&[trailer.len() as u8]);
        body.buffer.extend_from_slice(trailer);

        let data = body.frame().unwrap().into_data().unwrap();
        assert_eq!(&data[..], &[0, 0, 0, 0, 2, 7, 8]);
        let trailers = body.frame().unwrap().into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "fine");
        assert_eq!(trailers["x-n"], "1");
        assert!(body.finished);
    }
}
