//! Calls through [`grpc_browser::Client`]: unary and server-streaming,
//! deadlines, cancellation.

use std::time::Duration;

use grpc_browser::Error;
use prost::Message as _;
use proto::v1::{self as pb, article_event::Event};
use tonic::{Code, Request};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::{
    articles, create, fetch, now, server_url, unique, wait_for_watchers, watcher_count, within,
};

#[wasm_bindgen_test]
async fn unary_calls_reach_the_server() {
    let tag = unique("unary");
    let created = create(&tag).await;
    assert!(created.id > 0);
    assert_eq!(created.tags, vec![tag.clone()]);
    assert_eq!(created.author, "test");

    let got = within(
        "GetArticle",
        articles().get_article(pb::GetArticleRequest { id: created.id }),
    )
    .await
    .expect("GetArticle")
    .into_inner()
    .article;
    assert_eq!(got.as_ref(), Some(&created));

    let mut request = Request::new(pb::ListArticlesRequest {
        page: 1,
        page_size: 10,
        query: String::new(),
        tag,
    });
    request.set_timeout(Duration::from_secs(10));
    let listed = within("ListArticles", articles().list_articles(request))
        .await
        .expect("ListArticles with a deadline that is met")
        .into_inner();
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.articles, vec![created]);
}

#[wasm_bindgen_test]
async fn a_missing_article_is_a_trailers_only_not_found() {
    let id = i64::MAX - 7;
    // The raw exchange first, to show it is trailers-only: the status is in
    // the HTTP headers and the body holds no frame at all.
    let mut frame = vec![0u8];
    let message = pb::GetArticleRequest { id }.encode_to_vec();
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let headers = web_sys::Headers::new().unwrap();
    headers
        .set("content-type", "application/grpc-web+proto")
        .unwrap();
    headers.set("x-grpc-web", "1").unwrap();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&js_sys::Uint8Array::from(frame.as_slice()));
    let url = format!("{}/article.v1.ArticleService/GetArticle", server_url());
    let request = web_sys::Request::new_with_str_and_init(&url, &init).unwrap();
    let response = fetch(&request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("grpc-status").unwrap().as_deref(),
        Some("5"),
        "grpc-status must be in the headers of a trailers-only response"
    );
    let body = JsFuture::from(response.array_buffer().expect("arrayBuffer"))
        .await
        .expect("reading the body");
    assert_eq!(
        js_sys::Uint8Array::new(&body).length(),
        0,
        "a trailers-only response has an empty body"
    );

    // The same call through the crate.
    let error = Error::from(
        within(
            "GetArticle",
            articles().get_article(pb::GetArticleRequest { id }),
        )
        .await
        .expect_err("GetArticle of a missing id must fail"),
    );
    assert_eq!(error.code, Code::NotFound, "{error:?}");
    assert_eq!(error.message, format!("article {id} does not exist"));
}

#[wasm_bindgen_test]
async fn a_server_stream_delivers_changes_made_by_another_client() {
    let tag = unique("stream");
    let mut watch = within(
        "opening WatchArticles",
        articles().watch_articles(pb::WatchArticlesRequest {
            tag: tag.clone(),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();

    // `create` uses another client instance: a separate `fetch`.
    let created = create(&tag).await;
    let change = loop {
        let event = within("WatchArticles event", watch.message())
            .await
            .expect("watch stream failed")
            .expect("watch stream ended");
        match event.event {
            Some(Event::Heartbeat(_)) | None => continue,
            Some(change) => break change,
        }
    };
    assert_eq!(change, Event::Created(created));
}

#[wasm_bindgen_test]
async fn a_deadline_ends_a_server_stream_with_deadline_exceeded() {
    // Heartbeats come every second on a tag nobody writes; a 1.5 s
    // deadline lets the first one through, then ends the stream. The
    // server does not end a stream at its deadline, so the browser must:
    // 0.5 s after it, with DEADLINE_EXCEEDED (Chromium alone would say
    // UNKNOWN "AbortError").
    let deadline = Duration::from_millis(1500);
    let mut request = Request::new(pb::WatchArticlesRequest {
        tag: unique("deadline"),
        after_sequence: 0,
    });
    request.set_timeout(deadline);
    let started = now();
    let mut client = articles();
    let (heartbeats, status) = within("a stream past its deadline", async move {
        let mut stream = match client.watch_articles(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (0, status),
        };
        let mut heartbeats = 0;
        loop {
            match stream.message().await {
                Ok(Some(event)) if matches!(event.event, Some(Event::Heartbeat(_))) => {
                    heartbeats += 1;
                }
                Ok(Some(event)) => panic!("a change on a tag nobody writes: {event:?}"),
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return (heartbeats, status),
            }
        }
    })
    .await;
    let elapsed = now() - started;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "the server did not answer in time");
    assert!(heartbeats >= 1, "the stream ended before its deadline");
    assert!(
        (1500.0..2700.0).contains(&elapsed),
        "ended after {elapsed} ms; the deadline was {deadline:?} (+ 0.5 s grace)"
    );
}

#[wasm_bindgen_test]
async fn dropping_a_stream_aborts_its_fetch() {
    // Streams of earlier tests may still be closing: start from zero (the
    // tests are the only clients of this server that watch).
    wait_for_watchers(0.0, "before opening").await;
    let watch = within(
        "opening WatchArticles",
        articles().watch_articles(pb::WatchArticlesRequest {
            tag: unique("drop"),
            after_sequence: 0,
        }),
    )
    .await
    .expect("WatchArticles")
    .into_inner();
    wait_for_watchers(1.0, "while the stream is open").await;

    drop(watch);
    wait_for_watchers(0.0, "after dropping the stream").await;
}

#[wasm_bindgen_test]
async fn dropping_a_call_before_its_answer_aborts_its_fetch() {
    // The call's future is dropped while the server holds the call open
    // (here: a stream's first message, which is a second away): the fetch
    // must end on the server too, not only be forgotten.
    wait_for_watchers(0.0, "before calling").await;
    let mut client = articles();
    let call = async move {
        let response = client
            .watch_articles(pb::WatchArticlesRequest {
                tag: unique("drop-call"),
                after_sequence: 0,
            })
            .await?;
        response.into_inner().message().await
    };
    let mut call = Box::pin(call);
    let open = std::pin::pin!(async {
        while watcher_count().await != 1.0 {
            grpc_browser::sleep(Duration::from_millis(20)).await;
        }
    });
    let waited = within(
        "the call reaching the server",
        futures::future::select(call.as_mut(), open),
    )
    .await;
    assert!(
        matches!(waited, futures::future::Either::Right(_)),
        "the call finished before it was dropped"
    );
    drop(call);
    wait_for_watchers(0.0, "after dropping the call").await;
}
