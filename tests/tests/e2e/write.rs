//! Writing: sign in, a server validation error shown at its field, then a
//! successful create that other browsers see live, then a confirmed
//! delete that they see too.

use testkit::article::ALICE;

use crate::harness::{App, Chromedriver, testid, wait_for};

const TITLE: &str = "Written in a real browser";
const CONTENT: &str = "First paragraph, typed by WebDriver.\n\nSecond paragraph.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_validation_error_then_others_see_it_live_until_it_is_deleted() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let total_before = app.list(1, 10, "").await.total_count;

    // A second session watches the list: no sign-in, no reloads.
    let watcher = driver.browser().await;
    watcher.goto(&app.url("/")).await;
    watcher.wait_for_total(total_before).await;
    watcher.wait_until_live().await;
    watcher.mark_document().await;

    // The writer signs in from the header.
    let writer = driver.browser().await;
    writer.goto(&app.url("/")).await;
    writer
        .find("new-article")
        .await
        .click()
        .await
        .expect("click new");
    writer.wait_for_location("/articles/new").await;
    writer.find("article-form").await;
    writer
        .find("sign-in-open")
        .await
        .click()
        .await
        .expect("open sign-in");
    writer
        .find("sign-in-token")
        .await
        .send_keys(ALICE)
        .await
        .expect("type the token");
    writer
        .find("sign-in-submit")
        .await
        .click()
        .await
        .expect("sign in");
    writer.find("signed-in").await;

    // A bad tag: the server's BadRequest names the field, and the app shows
    // the complaint next to it.
    writer
        .find("title-input")
        .await
        .send_keys(TITLE)
        .await
        .expect("type the title");
    writer
        .find("content-input")
        .await
        .send_keys(CONTENT)
        .await
        .expect("type the content");
    let tags = writer.find("tags-input").await;
    tags.send_keys("e2e, Not_A_Tag").await.expect("type tags");
    writer
        .find("save-button")
        .await
        .click()
        .await
        .expect("save");
    let complaint = writer.wait_for_text("tags-error", |t| !t.is_empty()).await;
    assert!(
        complaint.contains("Not_A_Tag"),
        "the error names the bad tag: {complaint}"
    );
    writer.find("form-error").await;
    assert!(!writer.shows("title-error").await, "the title was fine");
    assert!(!writer.shows("content-error").await, "the content was fine");
    assert_eq!(
        writer.location().await,
        "/articles/new",
        "still on the form"
    );
    assert_eq!(
        app.list(1, 10, "").await.total_count,
        total_before,
        "nothing was created"
    );
    writer.screenshot("create-validation-error").await;

    // Fixed, it saves and the app shows the new article.
    tags.clear().await.expect("clear tags");
    tags.send_keys("e2e, browser").await.expect("type tags");
    writer
        .find("save-button")
        .await
        .click()
        .await
        .expect("save");
    let path = wait_for("the new article's page", async || {
        let path = writer.location().await;
        match path.strip_prefix("/articles/").map(str::parse::<i64>) {
            Some(Ok(_)) => Ok(path),
            _ => Err(path),
        }
    })
    .await;
    let id: i64 = path["/articles/".len()..].parse().expect("id in the URL");
    assert_eq!(
        writer
            .wait_for_text("detail-title", |t| !t.is_empty())
            .await,
        TITLE
    );
    assert_eq!(writer.text("detail-author").await.as_deref(), Some("alice"));
    let stored = app.get(id).await.expect("the article is stored");
    assert_eq!(stored.title, TITLE);
    assert_eq!(stored.content, CONTENT);
    assert_eq!(stored.tags, ["e2e", "browser"]);

    // The watcher sees it arrive at the top of its list without a reload.
    wait_for(
        "the new article at the top of the watcher's list",
        async || {
            let rows = watcher.row_ids().await;
            if rows.first() == Some(&id) {
                Ok(())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    )
    .await;
    watcher.wait_for_total(total_before + 1).await;
    watcher.assert_not_reloaded().await;
    // Only the newcomer is highlighted (`class:fresh` on its row).
    let fresh_rows = format!(
        "return Array.from(document.querySelectorAll('{}.fresh'), r => Number(r.dataset.id));",
        testid("article-row")
    );
    wait_for("only the new row highlighted", async || {
        let fresh = watcher.js(&fresh_rows).await;
        if fresh == serde_json::json!([id]) {
            Ok(())
        } else {
            Err(format!("fresh rows {fresh}"))
        }
    })
    .await;

    // A third session has the article open when it is deleted.
    let reader = driver.browser().await;
    reader.goto(&app.url(&path)).await;
    reader.wait_for_text("detail-title", |t| t == TITLE).await;
    reader.wait_until_live().await;
    reader.mark_document().await;

    // Delete asks first; cancelling keeps the article.
    writer
        .find("delete-button")
        .await
        .click()
        .await
        .expect("delete");
    writer
        .find("cancel-delete")
        .await
        .click()
        .await
        .expect("cancel");
    wait_for("the confirmation to close", async || {
        if writer.shows("confirm-delete").await {
            Err("still asking".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(app.get(id).await.is_ok(), "cancel keeps the article");
    writer
        .find("delete-button")
        .await
        .click()
        .await
        .expect("delete");
    writer
        .find("confirm-delete")
        .await
        .click()
        .await
        .expect("confirm");
    writer.wait_for_location("/").await;
    let gone = wait_for("the article to be deleted", async || {
        match app.get(id).await {
            Err(status) => Ok(status),
            Ok(_) => Err("still there".to_owned()),
        }
    })
    .await;
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Both other sessions notice, still without reloading.
    wait_for("the article to leave the watcher's list", async || {
        let rows = watcher.row_ids().await;
        if rows.contains(&id) {
            Err(format!("{rows:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    watcher.wait_for_total(total_before).await;
    watcher.assert_not_reloaded().await;
    reader.find("deleted-notice").await;
    reader.assert_not_reloaded().await;
    assert!(
        reader
            .client
            .find(fantoccini::Locator::Css(&testid("detail-title")))
            .await
            .is_ok(),
        "the reader keeps what it was reading, under the notice"
    );

    reader.close().await;
    watcher.close().await;
    writer.close().await;
}
