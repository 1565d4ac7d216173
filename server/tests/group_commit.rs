//! Group commit in the SQLite store, on real database files: concurrent
//! writers share commits yet each keeps its own result, error and change
//! sequence; a failing op is rolled back alone; imports stay transactions
//! of their own; a write whose caller is gone is committed once.
//!
//! To make batches certain rather than likely, several tests hold the
//! write lock with an open import while writes queue up, wait until the
//! writer holds all of them in its waiting batch (`in_batch`), then let
//! the lock go: those writes must then be one commit.

use std::{collections::BTreeMap, sync::Arc};

use article_server::article::{
    Article, ArticleDraft, ArticleError, ListQuery,
    sqlite::SqliteStore,
    store::{ArticleStore, ChangeKind},
};
use testkit::wait_for;
use tokio::task::JoinHandle;

fn draft(title: &str) -> ArticleDraft {
    ArticleDraft::new(title, format!("content of {title}"), vec!["gc".into()]).unwrap()
}

async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("articles.db").display());
    let store = SqliteStore::open(&url, 1000).await.unwrap();
    (dir, Arc::new(store))
}

/// Every change in the log, oldest first.
async fn all_changes(store: &SqliteStore) -> Vec<article_server::article::store::Change> {
    let mut changes = Vec::new();
    loop {
        let after = changes
            .last()
            .map_or(0, |c: &article_server::article::store::Change| c.sequence);
        let more = store.changes_after(after, 1000).await.unwrap();
        if more.is_empty() {
            return changes;
        }
        changes.extend(more);
    }
}

fn created_id(kind: &ChangeKind) -> i64 {
    match kind {
        ChangeKind::Created(article) => article.id,
        other => panic!("expected a create, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_each_get_their_own_article_and_a_gap_free_sequence() {
    let (_dir, store) = store().await;
    const WRITERS: usize = 64;
    const EACH: usize = 8;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in 0..EACH {
                    let title = format!("writer {w} write {n}");
                    let article = store.create("alice", draft(&title)).await.unwrap();
                    assert_eq!(article.title, title, "each caller gets its own article");
                    mine.push(article);
                }
                mine
            })
        })
        .collect();
    let mut acknowledged = BTreeMap::new();
    for task in tasks {
        for article in task.await.unwrap() {
            assert!(
                acknowledged.insert(article.id, article).is_none(),
                "ids are distinct"
            );
        }
    }
    assert_eq!(acknowledged.len(), WRITERS * EACH);

    let changes = all_changes(&store).await;
    let sequences: Vec<i64> = changes.iter().map(|c| c.sequence).collect();
    let expected: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(sequences, expected, "one sequence per write, no gap");
    // One writer numbers rows and changes in the same order: sequence
    // order is id order, and each change carries its caller's article.
    let ids: Vec<i64> = changes.iter().map(|c| created_id(&c.kind)).collect();
    let in_order: Vec<i64> = acknowledged.keys().copied().collect();
    assert_eq!(ids, in_order);
    for change in &changes {
        let ChangeKind::Created(article) = &change.kind else {
            unreachable!()
        };
        assert_eq!(Some(article), acknowledged.get(&article.id));
    }
    let stats = store.write_stats();
    assert_eq!(stats.ops, (WRITERS * EACH) as u64);
    assert!(
        stats.commits >= 1 && stats.commits <= stats.ops,
        "{stats:?}"
    );
}

/// Holds the write lock (an import with one article) until dropped or
/// committed.
async fn hold_the_lock(
    store: &SqliteStore,
) -> Box<dyn article_server::article::store::ImportBatch + '_> {
    let mut import = store.begin_import("importer").await.unwrap();
    import.add(draft("imported")).await.unwrap();
    import
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_while_the_lock_is_held_are_one_commit() {
    let (_dir, store) = store().await;
    store.create("alice", draft("first")).await.unwrap();
    let before = store.write_stats();
    assert_eq!((before.commits, before.ops), (1, 1));

    let import = hold_the_lock(&store).await;
    let tasks = spawn_creates(&store, 64, "queued");
    queued(&store, 64).await;
    import.commit().await.unwrap();
    for task in tasks {
        task.await
            .unwrap()
            .expect("each queued write is acknowledged");
    }
    let after = store.write_stats();
    assert_eq!(
        (after.commits - before.commits, after.ops - before.ops),
        (1, 64),
        "64 writes, one commit"
    );
    assert_eq!(store.count().await.unwrap(), 1 + 1 + 64);
}

type Answer = Result<Option<Article>, ArticleError>;

/// `n` creates by alice, titled "PREFIX i", each on a task of its own.
fn spawn_creates(
    store: &Arc<SqliteStore>,
    n: usize,
    prefix: &str,
) -> Vec<JoinHandle<Result<Article, ArticleError>>> {
    (0..n)
        .map(|i| {
            let store = store.clone();
            let title = format!("{prefix} {i}");
            tokio::spawn(async move { store.create("alice", draft(&title)).await })
        })
        .collect()
}

async fn queued(store: &SqliteStore, n: usize) {
    wait_for(&format!("{n} ops in the writer's batch"), || {
        store.write_stats().in_batch == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_op_gets_its_own_error_while_the_rest_of_its_batch_commits() {
    let (_dir, store) = store().await;
    let target = store.create("alice", draft("target")).await.unwrap();
    let doomed = store.create("alice", draft("doomed")).await.unwrap();
    let before = store.write_stats();
    let newest_before = store.sequence_bounds().await.unwrap().newest;

    let import = hold_the_lock(&store).await;
    // Queued one by one, so the batch's order is known.
    let mut tasks: Vec<JoinHandle<Answer>> = Vec::new();
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.create("alice", draft("a")).await.map(Some)
    }));
    queued(&store, 1).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.update(999_999, draft("nobody"), 0).await.map(Some)
    }));
    queued(&store, 2).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.update(target.id, draft("stale"), 7).await.map(Some)
    }));
    queued(&store, 3).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.create("alice", draft("b")).await.map(Some)
    }));
    queued(&store, 4).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.delete(999_998).await.map(|()| None)
    }));
    queued(&store, 5).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.update(target.id, draft("fresh"), 1).await.map(Some)
    }));
    queued(&store, 6).await;
    let s = store.clone();
    tasks.push(tokio::spawn(async move {
        s.delete(doomed.id).await.map(|()| None)
    }));
    queued(&store, 7).await;
    import.commit().await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    let a = results[0].as_ref().unwrap().clone().unwrap();
    assert_eq!(a.title, "a");
    assert!(matches!(results[1], Err(ArticleError::NotFound(999_999))));
    assert!(matches!(
        results[2],
        Err(ArticleError::VersionConflict {
            expected: 7,
            actual: 1,
            ..
        })
    ));
    let b = results[3].as_ref().unwrap().clone().unwrap();
    assert_eq!(b.title, "b");
    assert!(matches!(results[4], Err(ArticleError::NotFound(999_998))));
    let fresh = results[5].as_ref().unwrap().clone().unwrap();
    assert_eq!((fresh.title.as_str(), fresh.version), ("fresh", 2));
    assert!(matches!(results[6], Ok(None)));

    let after = store.write_stats();
    assert_eq!(
        (after.commits - before.commits, after.ops - before.ops),
        (1, 4),
        "the four good ops of the batch are one commit"
    );
    // The import's change, then exactly the good ops, in queue order.
    let changes = store.changes_after(newest_before, 100).await.unwrap();
    let seen: Vec<(i64, String)> = changes
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Created(a) => (c.sequence, format!("created {}", a.title)),
            ChangeKind::Updated { article, .. } => {
                (c.sequence, format!("updated {}", article.title))
            }
            ChangeKind::Deleted { id, .. } => (c.sequence, format!("deleted {id}")),
        })
        .collect();
    let n = newest_before;
    assert_eq!(
        seen,
        [
            (n + 1, "created imported".to_owned()),
            (n + 2, "created a".to_owned()),
            (n + 3, "created b".to_owned()),
            (n + 4, "updated fresh".to_owned()),
            (n + 5, format!("deleted {}", doomed.id)),
        ]
    );
    assert_eq!(store.get(target.id).await.unwrap(), fresh);
    assert!(matches!(
        store.get(doomed.id).await,
        Err(ArticleError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_rolled_back_while_writes_wait_stores_nothing_and_the_writes_commit() {
    let (_dir, store) = store().await;
    let mut import = store.begin_import("importer").await.unwrap();
    for i in 0..3 {
        import.add(draft(&format!("imported {i}"))).await.unwrap();
    }
    let tasks = spawn_creates(&store, 5, "w");
    queued(&store, 5).await;
    drop(import);
    for task in tasks {
        task.await
            .unwrap()
            .expect("a write waiting behind an import commits");
    }
    assert_eq!(
        store.count().await.unwrap(),
        5,
        "none of the import is stored"
    );
    let changes = all_changes(&store).await;
    assert!(
        changes.iter().all(|c| match &c.kind {
            ChangeKind::Created(a) => a.title.starts_with('w'),
            _ => false,
        }),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_write_whose_caller_left_is_committed_exactly_once() {
    let (_dir, store) = store().await;
    let import = hold_the_lock(&store).await;
    let abandoned = {
        let store = store.clone();
        tokio::spawn(async move { store.create("alice", draft("abandoned")).await })
    };
    queued(&store, 1).await;
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    import.commit().await.unwrap();
    // The queue is in order: once a later write is acknowledged, the
    // abandoned one has been written.
    store.create("alice", draft("later")).await.unwrap();
    let titles: Vec<String> = all_changes(&store)
        .await
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Created(a) => a.title.clone(),
            other => panic!("only creates: {other:?}"),
        })
        .collect();
    assert_eq!(titles, ["imported", "abandoned", "later"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_failing_half_way_is_rolled_back_to_its_savepoint_alone() {
    let (dir, store) = store().await;
    // A create of "poison" fails at its last statement (the change log
    // row), after its article and tag rows were written.
    let url = format!("sqlite://{}", dir.path().join("articles.db").display());
    let mut admin = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON article_events WHEN new.title LIKE 'poison%'
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    drop(admin);
    let before = store.write_stats();

    let import = hold_the_lock(&store).await;
    let titles = ["a", "poison 1", "poison 2", "b", "poison 3"];
    let mut tasks = Vec::new();
    for (i, title) in titles.into_iter().enumerate() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.create("alice", draft(title)).await
        }));
        queued(&store, i + 1).await;
    }
    import.commit().await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
    for i in [1, 2, 4] {
        assert!(
            matches!(results[i], Err(ArticleError::Storage(_))),
            "{:?}",
            results[i]
        );
    }
    let after = store.write_stats();
    assert_eq!(
        (after.commits - before.commits, after.ops - before.ops),
        (1, 2)
    );
    // Nothing of the failed creates is left: no article, no tag row, and
    // the search index (kept by triggers) finds none of them.
    assert_eq!(store.count().await.unwrap(), 1 + 2);
    let tagged = ListQuery::new(1, 100, String::new(), "gc".into()).unwrap();
    let page = store.list(&tagged).await.unwrap();
    let mut titles: Vec<&str> = page.articles.iter().map(|a| a.title.as_str()).collect();
    titles.sort();
    assert_eq!(titles, ["a", "b", "imported"]);
    assert_eq!(page.total_count, 3);
    let search = ListQuery::new(1, 100, "poison".into(), String::new()).unwrap();
    assert_eq!(store.list(&search).await.unwrap().total_count, 0);
}

/// Takes the store's busy timeout (10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_behind_an_import_past_the_busy_timeout_is_refused_and_not_written() {
    let (_dir, store) = store().await;
    let import = hold_the_lock(&store).await;
    let refused = store.create("alice", draft("too late")).await;
    assert!(matches!(refused, Err(ArticleError::Busy(_))), "{refused:?}");
    import.commit().await.unwrap();
    // The writer goes on: the next write commits, the refused one is not there.
    store.create("alice", draft("next")).await.unwrap();
    let titles: Vec<String> = all_changes(&store)
        .await
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Created(a) => a.title.clone(),
            other => panic!("only creates: {other:?}"),
        })
        .collect();
    assert_eq!(titles, ["imported", "next"]);
}

enum Op {
    Create(&'static str),
    Update(i64, &'static str),
    Delete(i64),
}

/// The writer adds a batch's new articles to the search index at the end
/// of the batch, and before any update or delete in it: an article created,
/// updated and deleted within one batch leaves the index exactly as its
/// rows (FTS5's own integrity check compares the two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_created_and_changed_in_one_batch_are_indexed_as_written() {
    let (dir, store) = store().await;
    let import = hold_the_lock(&store).await;
    // The import's article is id 1, so the creates below get 2, 3 and 4.
    let text = |t: &str| ArticleDraft::new(t, format!("{t} body"), vec!["gc".into()]).unwrap();
    let mut tasks: Vec<JoinHandle<Answer>> = Vec::new();
    let ops = [
        Op::Create("alphaword"),
        Op::Update(2, "betaword"),
        Op::Create("gammaword"),
        Op::Delete(3),
        Op::Create("deltaword"),
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            match op {
                Op::Create(t) => s.create("a", text(t)).await.map(Some),
                Op::Update(id, t) => s.update(id, text(t), 1).await.map(Some),
                Op::Delete(id) => s.delete(id).await.map(|()| None),
            }
        }));
        queued(&store, i + 1).await;
    }
    let before = store.write_stats();
    import.commit().await.unwrap();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(store.write_stats().commits - before.commits, 1, "one batch");

    let found = |needle: &str| {
        let store = store.clone();
        let query = ListQuery::new(1, 100, needle.into(), String::new()).unwrap();
        async move {
            let page = store.list(&query).await.unwrap();
            page.articles.iter().map(|a| a.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("alphaword").await, Vec::<i64>::new());
    assert_eq!(found("betaword").await, [2]);
    assert_eq!(found("gammaword").await, Vec::<i64>::new());
    assert_eq!(found("deltaword").await, [4]);
    assert_eq!(found("word body").await, [4, 2]);

    let url = format!("sqlite://{}", dir.path().join("articles.db").display());
    let mut admin = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)")
        .execute(&mut admin)
        .await
        .expect("the search index matches the articles");
}
