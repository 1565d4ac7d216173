//! Reading: the list with demo data, paging and search in the URL, and
//! detail pages reached by a click or by a deep link; the performance mark
//! of the first list rendered (read by `cargo xtask bench`).

use fantoccini::Locator;

use crate::harness::{App, Chromedriver, ids, testid, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_renders_demo_data_with_its_total_count() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let expected = app.list(1, 10, "").await;
    assert!(
        expected.total_count > 10,
        "demo data fills more than one page"
    );

    let browser = driver.browser().await;
    browser.goto(&app.url("/")).await;
    browser
        .wait_for_rows("the first page", &ids(&expected))
        .await;
    browser.wait_for_total(expected.total_count).await;
    let count_text = browser
        .wait_for_text("total-count", |t| !t.is_empty())
        .await;
    assert_eq!(count_text, format!("{} articles", expected.total_count));

    // Each row shows its article's title as a link to it.
    let first = &expected.articles[0];
    let link = browser
        .find_css(&format!(
            "{}[data-id=\"{}\"] {}",
            testid("article-row"),
            first.id,
            testid("article-link")
        ))
        .await;
    assert_eq!(link.text().await.expect("link text"), first.title);
    assert_eq!(
        link.attr("href").await.expect("href").as_deref(),
        Some(format!("/articles/{}", first.id).as_str())
    );
    browser.find("pagination").await;
    browser.wait_until_live().await;
    assert!(!browser.shows("error").await, "no error panel");

    browser.screenshot("list").await;
    browser.close().await;
}

/// `FIRST_LIST_MARK` in `web/src/pages/list.rs` (the web crate only
/// builds for wasm32, so the name is repeated here).
const FIRST_LIST_MARK: &str = "article-list-rendered";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_list_rendered_sets_one_performance_mark_per_page_load() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/")).await;
    let page1 = app.list(1, 10, "").await;
    browser.wait_for_rows("page 1", &ids(&page1)).await;

    // The mark is set in the animation frame after the rows are in the DOM.
    let count_marks = format!("return performance.getEntriesByName('{FIRST_LIST_MARK}').length;");
    wait_for(
        &format!("the performance mark {FIRST_LIST_MARK}"),
        async || match browser.js(&count_marks).await.as_u64() {
            Some(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?} marks")),
        },
    )
    .await;
    let start = browser
        .js(&format!(
            "return performance.getEntriesByName('{FIRST_LIST_MARK}')[0].startTime;"
        ))
        .await;
    assert!(
        start.as_f64().is_some_and(|ms| ms > 0.0),
        "the mark has a time after navigation start: {start}"
    );

    // Rendering another list in the same page load adds no second mark.
    browser
        .find("page-next")
        .await
        .click()
        .await
        .expect("click next");
    browser.wait_for_location("/?page=2").await;
    let page2 = app.list(2, 10, "").await;
    browser.wait_for_rows("page 2", &ids(&page2)).await;
    // Counted two animation frames later: a (wrong) second mark would be
    // set in the frame after the rows change.
    let marks_after_two_frames = format!(
        "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => \
         done(performance.getEntriesByName('{FIRST_LIST_MARK}').length)));"
    );
    let marks = browser
        .client
        .execute_async(&marks_after_two_frames, Vec::new())
        .await
        .expect("count the marks");
    assert_eq!(marks, 1, "one mark per page load");

    // A new page load marks its own first list.
    browser.goto(&app.url("/")).await;
    browser.wait_for_rows("page 1 again", &ids(&page1)).await;
    wait_for("the mark of the new page load", async || {
        match browser.js(&count_marks).await.as_u64() {
            Some(1) => Ok(()),
            other => Err(format!("{other:?} marks")),
        }
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_search_change_the_url_and_the_rows() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/")).await;
    let page1 = app.list(1, 10, "").await;
    browser.wait_for_rows("page 1", &ids(&page1)).await;

    // Next page: a link, so the URL says where we are.
    browser
        .find("page-next")
        .await
        .click()
        .await
        .expect("click next");
    browser.wait_for_location("/?page=2").await;
    let page2 = app.list(2, 10, "").await;
    assert_ne!(ids(&page1), ids(&page2));
    browser.wait_for_rows("page 2", &ids(&page2)).await;
    let current = browser
        .find_css(&format!("{}[aria-current=\"page\"]", testid("page-link")))
        .await;
    assert_eq!(
        current.attr("data-page").await.unwrap().as_deref(),
        Some("2")
    );

    // A new page size starts again at page 1.
    browser
        .find("page-size")
        .await
        .select_by_value("20")
        .await
        .expect("choose 20 per page");
    browser.wait_for_location("/?size=20").await;
    let size20 = app.list(1, 20, "").await;
    assert_eq!(size20.articles.len(), 20);
    browser.wait_for_rows("20 per page", &ids(&size20)).await;

    // Typing searches once typing stops (debounced); the query goes into
    // the URL and the page goes back to 1.
    browser
        .find("page-next")
        .await
        .click()
        .await
        .expect("click next");
    browser.wait_for_location("/?size=20&page=2").await;
    let search = browser.find("search-input").await;
    search.send_keys("stream").await.expect("type a search");
    browser.wait_for_location("/?q=stream&size=20").await;
    let matches = app.list(1, 20, "stream").await;
    assert!(
        (1..size20.total_count).contains(&matches.total_count),
        "the search narrows the list but finds something: {}",
        matches.total_count
    );
    browser
        .wait_for_rows("the search for \"stream\"", &ids(&matches))
        .await;
    browser.wait_for_total(matches.total_count).await;
    let text = browser
        .wait_for_text("total-count", |t| t.ends_with("match"))
        .await;
    assert!(text.starts_with(&matches.total_count.to_string()), "{text}");

    // A search that finds nothing says so.
    search.clear().await.expect("clear search");
    search
        .send_keys("no-such-words-anywhere")
        .await
        .expect("type a search");
    browser
        .wait_for_location("/?q=no-such-words-anywhere&size=20")
        .await;
    browser.find("empty").await;
    assert!(browser.row_ids().await.is_empty());

    // Searches and page-size changes replace the history entry (no entry
    // per keystroke), page links add one: Back leaves the searches and
    // returns to the list before the last page link was followed.
    browser.client.back().await.expect("back");
    browser.wait_for_location("/?size=20").await;
    browser
        .wait_for_rows("20 per page again", &ids(&size20))
        .await;
    let search = browser.find("search-input").await;
    assert_eq!(search.prop("value").await.unwrap().as_deref(), Some(""));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_a_row_opens_its_detail_page() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/")).await;
    let page1 = app.list(1, 10, "").await;
    browser.wait_for_rows("page 1", &ids(&page1)).await;

    // The demo article with paragraphs (blank lines in its content).
    let article = page1
        .articles
        .iter()
        .find(|a| a.content.contains("\n\n") && !a.tags.is_empty())
        .expect("a demo article with paragraphs and tags on page 1");
    let link = browser
        .find_css(&format!(
            "{}[data-id=\"{}\"] {}",
            testid("article-row"),
            article.id,
            testid("article-link")
        ))
        .await;
    link.click().await.expect("click the title");

    browser
        .wait_for_location(&format!("/articles/{}", article.id))
        .await;
    let detail = browser.find("article-detail").await;
    assert_eq!(
        detail.attr("data-id").await.unwrap(),
        Some(article.id.to_string())
    );
    assert_eq!(
        browser
            .wait_for_text("detail-title", |t| !t.is_empty())
            .await,
        article.title
    );
    assert_eq!(browser.text("detail-author").await.as_deref(), Some("demo"));
    // Paragraphs are kept: one <p> per blank-line-separated block.
    let paragraphs = detail
        .find_all(Locator::Css(&format!("{} p", testid("detail-content"))))
        .await
        .expect("paragraphs");
    assert_eq!(paragraphs.len(), article.content.split("\n\n").count());
    let tags: Vec<String> = {
        let mut out = Vec::new();
        for tag in detail
            .find_all(Locator::Css(&testid("tag")))
            .await
            .expect("tags")
        {
            out.push(tag.text().await.expect("tag text"));
        }
        out
    };
    for tag in &article.tags {
        assert!(
            tags.iter().any(|t| t.trim_start_matches('#') == tag),
            "tag {tag} shown among {tags:?}"
        );
    }
    browser.find("detail-created").await;
    browser.wait_until_live().await;

    browser.screenshot("detail").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_link_to_an_article_loads_directly() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    // An article that is not on the first page, so nothing was preloaded.
    let page3 = app.list(3, 10, "").await;
    let article = page3.articles.first().expect("a third page");

    let browser = driver.browser().await;
    browser
        .goto(&app.url(&format!("/articles/{}", article.id)))
        .await;
    assert_eq!(
        browser
            .wait_for_text("detail-title", |t| !t.is_empty())
            .await,
        article.title
    );
    assert_eq!(
        wait_for("the document title", async || {
            let title = browser.client.title().await.map_err(|e| e.to_string())?;
            if title.starts_with(&article.title) {
                Ok(title)
            } else {
                Err(title)
            }
        })
        .await,
        format!("{} · Articles", article.title)
    );

    // An id that does not exist gets a friendly page, not an error.
    browser.goto(&app.url("/articles/999999")).await;
    browser.find("not-found").await;
    assert!(!browser.shows("error").await);
    browser.close().await;
}
