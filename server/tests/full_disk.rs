//! The database on a filesystem that fills up: a size-limited tmpfs
//! mounted for the test (needs root; the test fails, naming why, if the
//! mount is refused). Writes fail with RESOURCE_EXHAUSTED "the database
//! disk is full" instead of INTERNAL (an import stores nothing), reads go on, nothing acknowledged is
//! lost, `PRAGMA integrity_check` is ok, and once space is freed writes
//! succeed again in the same server.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use proto::v1::{self as pb, article_service_client::ArticleServiceClient};
use sqlx::Connection as _;
use testkit::{
    article::{ALICE, TestServer, create},
    authed,
};
use tonic::{Code, transport::Channel};

/// A size-limited tmpfs, unmounted (lazily, so an open file cannot stop
/// it) when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("a mount point is created");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("the mount command runs");
        assert!(
            output.status.success(),
            "this test needs a size-limited tmpfs, and `mount -t tmpfs` needs root \
             (CAP_SYS_ADMIN); it was refused: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the filesystem refuses another byte.
fn fill(path: &Path) -> PathBuf {
    let mut file = std::fs::File::create(path).expect("the filler file is created");
    let chunk = vec![0xa5u8; 16 * 1024];
    loop {
        if let Err(err) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(
                err.raw_os_error(),
                Some(28),
                "the filler stops at ENOSPC: {err}"
            );
            break;
        }
    }
    // Whatever a partial chunk left over.
    for _ in 0..4096 {
        if file
            .write_all(&[0xa5])
            .and_then(|()| file.sync_all())
            .is_err()
        {
            break;
        }
    }
    path.to_owned()
}

fn big(title: &str) -> pb::CreateArticleRequest {
    create(title, &"x".repeat(60_000), &["disk"])
}

async fn get(client: &mut ArticleServiceClient<Channel>, id: i64) -> pb::Article {
    client
        .get_article(pb::GetArticleRequest { id })
        .await
        .unwrap_or_else(|s| panic!("acknowledged article {id} is readable: {s:?}"))
        .into_inner()
        .article
        .expect("article in the response")
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_without_a_restart() {
    let tmpfs = Tmpfs::mount("4m");
    let db = tmpfs.path().join("articles.db");
    let url = format!("sqlite://{}", db.display());
    let server = TestServer::start_with(|s| s.database_url = url.clone()).await;
    let mut client = server.client().await;

    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let article = client
            .create_article(authed(ALICE, create(&format!("small {i}"), "body", &[])))
            .await
            .expect("a write with space left is acknowledged")
            .into_inner()
            .article
            .expect("article in the response");
        acknowledged.push(article);
    }

    let filler = fill(&tmpfs.path().join("filler"));
    // Space SQLite already holds (its WAL) may take a few more writes.
    let mut refusal = None;
    for i in 0..200 {
        match client
            .create_article(authed(ALICE, big(&format!("big {i}"))))
            .await
        {
            Ok(response) => acknowledged.push(response.into_inner().article.expect("article")),
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("a write fails once the disk is full");
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert!(
        refusal.message().contains("the database disk is full"),
        "the message says what is wrong: {refusal:?}"
    );
    assert!(
        !refusal.message().contains("code:"),
        "no driver text reaches the client: {refusal:?}"
    );
    let again = client
        .create_article(authed(ALICE, big("still full")))
        .await
        .expect_err("the disk is still full");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
    let import = client
        .import_articles(authed(
            ALICE,
            futures::stream::iter((0..3).map(|i| big(&format!("imported {i}")))),
        ))
        .await
        .expect_err("an import on a full disk is refused");
    assert_eq!(import.code(), Code::ResourceExhausted, "{import:?}");

    // Reads keep working, and see exactly the acknowledged writes.
    for article in &acknowledged {
        assert_eq!(&get(&mut client, article.id).await, article);
    }
    let page = client
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .expect("ListArticles works on a full disk")
        .into_inner();
    assert_eq!(page.total_count, acknowledged.len() as i64);

    // Space freed: the same server writes again.
    std::fs::remove_file(&filler).expect("the filler is removed");
    for i in 0..10 {
        let article = client
            .create_article(authed(ALICE, create(&format!("after {i}"), "body", &[])))
            .await
            .unwrap_or_else(|s| panic!("write {i} after space is freed succeeds: {s:?}"))
            .into_inner()
            .article
            .expect("article in the response");
        acknowledged.push(article);
    }
    for article in &acknowledged {
        assert_eq!(&get(&mut client, article.id).await, article);
    }

    let mut check = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("a second connection opens the database");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut check)
        .await
        .expect("integrity_check runs");
    assert_eq!(integrity, "ok");
    drop(check);
    server.shutdown().await;
}
