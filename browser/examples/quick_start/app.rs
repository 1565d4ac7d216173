use std::time::Duration;

use futures::StreamExt as _;
use grpc_browser::{Client, Error, Event, Resumable, Resume};
use proto::v1::{
    ArticleEvent, GetArticleRequest, WatchArticlesRequest, article_event,
    article_service_client::ArticleServiceClient,
};
use tonic::{Request, Response, Status, Streaming};

type Articles = ArticleServiceClient<Client>;

/// A unary call: the deadline goes to the server and is kept by the browser.
async fn title(id: i64) -> Result<String, Error> {
    let mut request = Request::new(GetArticleRequest { id });
    request.set_timeout(Duration::from_secs(10));
    let response = Articles::new(Client::same_origin())
        .get_article(request)
        .await?;
    Ok(response
        .into_inner()
        .article
        .map(|a| a.title)
        .unwrap_or_default())
}

/// How to open the change feed after a cursor, and read a cursor.
struct Changes(Articles);

impl Resume for Changes {
    type Item = ArticleEvent;

    async fn open(
        &mut self,
        after: Option<i64>,
    ) -> Result<Response<Streaming<ArticleEvent>>, Status> {
        let after_sequence = after.unwrap_or(0);
        self.0
            .watch_articles(WatchArticlesRequest {
                tag: String::new(),
                after_sequence,
            })
            .await
    }

    fn cursor(&self, event: &ArticleEvent) -> Option<i64> {
        Some(event.sequence)
    }

    fn is_heartbeat(&self, event: &ArticleEvent) -> bool {
        matches!(event.event, Some(article_event::Event::Heartbeat(_)))
    }
}

pub async fn run() {
    match title(1).await {
        Ok(title) => log(&format!("article 1: {title}")),
        Err(e) => log(&format!(
            "{e} (request id {:?}, retry: {})",
            e.request_id,
            e.is_retryable()
        )),
    }
    let mut events = Resumable::new(Changes(Articles::new(Client::same_origin()))).stream();
    while let Some(event) = events.next().await {
        match event {
            Event::State(state) => log(&format!("feed: {state:?}")),
            Event::Resync => log("reload what is shown: changes may have been missed"),
            Event::Item(change) => log(&format!("change {}", change.sequence)),
        }
    }
}

fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}
