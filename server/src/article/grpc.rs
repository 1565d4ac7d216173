//! The `article.v1.ArticleService` gRPC surface: converts between protobuf
//! and the domain in one place and maps every error through
//! `From<ArticleError> for Status`.
//!
//! ImportArticles writes each message into one open transaction as it
//! arrives (memory bounded by one message, not by the import) and commits
//! at the end; an invalid message, a broken stream or a stall longer than
//! [`IMPORT_IDLE_TIMEOUT`] rolls everything back.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, TryStreamExt};
use grpc_runtime::EncodedMessage;
use prost_types::Timestamp;
use proto::v1::{self as pb, article_event::Event, article_service_server::ArticleService};
use tonic::{Request, Response, Status, Streaming};

use super::{
    Article, ArticleDraft, ArticleError, FieldViolation, ListQuery,
    cache::ListCache,
    store::{ArticleStore, Change, ChangeKind, ImportBatch},
    watch::{ChangeFeed, WatchItem},
};
use crate::auth::Tokens;

/// Most articles one `ImportArticles` call may carry: an import holds the
/// database's write lock until it ends, so it must end.
pub const MAX_IMPORT_ARTICLES: usize = 100_000;

/// How long an open import may wait for its next message. Its transaction
/// holds the write lock meanwhile, so a stalled client must not keep it.
pub const IMPORT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The gRPC implementation, cheap to clone.
#[derive(Clone)]
pub struct ArticleGrpc {
    store: Arc<dyn ArticleStore>,
    feed: ChangeFeed,
    tokens: Arc<Tokens>,
    lists: Arc<ListCache>,
}

impl ArticleGrpc {
    pub fn new(
        store: Arc<dyn ArticleStore>,
        feed: ChangeFeed,
        tokens: Arc<Tokens>,
        lists: Arc<ListCache>,
    ) -> Self {
        Self {
            store,
            feed,
            tokens,
            lists,
        }
    }

    async fn list_page(&self, query: ListQuery) -> Result<pb::ListArticlesResponse, ArticleError> {
        let page = self.store.list(&query).await?;
        Ok(pb::ListArticlesResponse {
            articles: page.articles.into_iter().map(Into::into).collect(),
            total_count: page.total_count,
        })
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

impl From<Article> for pb::Article {
    fn from(a: Article) -> Self {
        Self {
            id: a.id,
            title: a.title,
            content: a.content,
            create_time: timestamp(a.create_time),
            update_time: timestamp(a.update_time),
            author: a.author,
            tags: a.tags,
            version: a.version,
        }
    }
}

impl TryFrom<pb::CreateArticleRequest> for ArticleDraft {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::CreateArticleRequest) -> Result<Self, Self::Error> {
        ArticleDraft::new(&r.title, r.content, r.tags)
    }
}

impl TryFrom<pb::ListArticlesRequest> for ListQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::ListArticlesRequest) -> Result<Self, Self::Error> {
        ListQuery::new(r.page, r.page_size, r.query, r.tag)
    }
}

impl From<&Change> for pb::ArticleEvent {
    fn from(c: &Change) -> Self {
        let event = match &c.kind {
            ChangeKind::Created(a) => Event::Created(a.clone().into()),
            ChangeKind::Updated { article, .. } => Event::Updated(article.clone().into()),
            ChangeKind::Deleted { id, .. } => Event::DeletedId(*id),
        };
        Self {
            event: Some(event),
            sequence: c.sequence,
        }
    }
}

#[tonic::async_trait]
impl ArticleService for ArticleGrpc {
    async fn list_articles(
        &self,
        request: Request<pb::ListArticlesRequest>,
    ) -> Result<Response<pb::ListArticlesResponse>, Status> {
        let query = ListQuery::try_from(request.into_inner()).map_err(ArticleError::validation)?;
        // Read before the query: see `cache` for why this order is safe.
        let generation = self.store.generation().filter(|_| self.lists.enabled());
        let Some(generation) = generation else {
            return Ok(Response::new(self.list_page(query).await?));
        };
        // Pages are kept encoded: the runtime sends their bytes as the
        // message (see `grpc_runtime::EncodedMessage`).
        if let Some(page) = self.lists.get(generation, &query) {
            return Ok(page.into_response());
        }
        let page = EncodedMessage::encode(&self.list_page(query.clone()).await?);
        self.lists.insert(generation, query, page.clone());
        Ok(page.into_response())
    }

    async fn get_article(
        &self,
        request: Request<pb::GetArticleRequest>,
    ) -> Result<Response<pb::GetArticleResponse>, Status> {
        let id = request.into_inner().id;
        let article = self.store.get(id).await?;
        Ok(Response::new(pb::GetArticleResponse {
            article: Some(article.into()),
        }))
    }

    async fn create_article(
        &self,
        request: Request<pb::CreateArticleRequest>,
    ) -> Result<Response<pb::CreateArticleResponse>, Status> {
        let author = self.tokens.authenticate(request.metadata())?;
        let draft =
            ArticleDraft::try_from(request.into_inner()).map_err(ArticleError::validation)?;
        let article = self.store.create(&author, draft).await?;
        Ok(Response::new(pb::CreateArticleResponse {
            article: Some(article.into()),
        }))
    }

    async fn update_article(
        &self,
        request: Request<pb::UpdateArticleRequest>,
    ) -> Result<Response<pb::UpdateArticleResponse>, Status> {
        self.tokens.authenticate(request.metadata())?;
        let r = request.into_inner();
        let mut violations = match ArticleDraft::new(&r.title, r.content, r.tags) {
            Ok(draft) if r.expected_version >= 0 => {
                let article = self.store.update(r.id, draft, r.expected_version).await?;
                return Ok(Response::new(pb::UpdateArticleResponse {
                    article: Some(article.into()),
                }));
            }
            Ok(_) => Vec::new(),
            Err(violations) => violations,
        };
        if r.expected_version < 0 {
            violations.push(FieldViolation::new(
                "expected_version",
                "expected_version must not be negative",
            ));
        }
        Err(ArticleError::validation(violations).into())
    }

    async fn delete_article(
        &self,
        request: Request<pb::DeleteArticleRequest>,
    ) -> Result<Response<pb::DeleteArticleResponse>, Status> {
        self.tokens.authenticate(request.metadata())?;
        self.store.delete(request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteArticleResponse {}))
    }

    type WatchArticlesStream =
        futures::stream::BoxStream<'static, Result<pb::ArticleEvent, Status>>;

    async fn watch_articles(
        &self,
        request: Request<pb::WatchArticlesRequest>,
    ) -> Result<Response<Self::WatchArticlesStream>, Status> {
        let r = request.into_inner();
        // Subscribed before we return, so the response headers announce a
        // live subscription.
        let (stream, live_from) = self.feed.subscribe(r.tag, r.after_sequence).await?;
        let stream = stream
            .map(|item| match item {
                Ok(WatchItem::Change(change)) => Ok(pb::ArticleEvent::from(&*change)),
                Ok(WatchItem::Heartbeat(sequence)) => Ok(pb::ArticleEvent {
                    event: Some(Event::Heartbeat(pb::Heartbeat {})),
                    sequence,
                }),
                Err(err) => Err(Status::from(err)),
            })
            .boxed();
        let mut response = Response::new(stream);
        // Where live delivery starts: resuming after it loses nothing.
        response
            .metadata_mut()
            .insert(proto::WATCH_SEQUENCE_HEADER, live_from.into());
        Ok(response)
    }

    async fn import_articles(
        &self,
        request: Request<Streaming<pb::CreateArticleRequest>>,
    ) -> Result<Response<pb::ImportArticlesResponse>, Status> {
        let author = self.tokens.authenticate(request.metadata())?;
        let mut messages = request.into_inner();
        // Opened with the first valid message; rolled back if dropped.
        let mut batch: Option<Box<dyn ImportBatch + '_>> = None;
        let mut ids = Vec::new();
        loop {
            let next = if batch.is_some() {
                tokio::time::timeout(IMPORT_IDLE_TIMEOUT, messages.try_next())
                    .await
                    .map_err(|_| {
                        Status::deadline_exceeded(format!(
                            "no import message for {} s while the import held the database's \
                             write lock; nothing was imported",
                            IMPORT_IDLE_TIMEOUT.as_secs()
                        ))
                    })??
            } else {
                messages.try_next().await?
            };
            let Some(message) = next else { break };
            if ids.len() == MAX_IMPORT_ARTICLES {
                return Err(Status::resource_exhausted(format!(
                    "an import may carry at most {MAX_IMPORT_ARTICLES} articles; split it"
                )));
            }
            let draft = ArticleDraft::try_from(message)
                .map_err(|violations| invalid_import_message(ids.len(), violations))?;
            let open = match batch.take() {
                Some(open) => open,
                None => self.store.begin_import(&author).await?,
            };
            ids.push(batch.insert(open).add(draft).await?);
        }
        if let Some(batch) = batch {
            batch.commit().await?;
        }
        Ok(Response::new(pb::ImportArticlesResponse {
            created_count: ids.len() as i32,
            ids,
        }))
    }
}

/// INVALID_ARGUMENT for import message `index`, every violation named.
fn invalid_import_message(index: usize, violations: Vec<FieldViolation>) -> Status {
    let summary = violations
        .iter()
        .map(|v| v.description.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let violations = violations
        .into_iter()
        .map(|v| FieldViolation::new(v.field, format!("message {index}: {}", v.description)))
        .collect();
    ArticleError::Validation {
        message: format!("message {index} is invalid, nothing was imported: {summary}"),
        violations,
    }
    .into()
}
