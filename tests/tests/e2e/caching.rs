//! What a visitor downloads: the app's wasm and JS arrive compressed (a
//! precompressed variant beside the file in `web/dist`), and a second
//! visit in the same browser transfers neither (content-hashed names are
//! `immutable`), while `index.html` is revalidated. Read from the
//! browser's own resource timing.

use serde_json::Value;

use crate::harness::{App, Browser, Chromedriver, ids, web_dist};

/// Size, as the browser saw it, of every loaded resource whose URL ends
/// with `suffix`: `[name, transferSize, encodedBodySize, decodedBodySize]`.
async fn resources(browser: &Browser, suffix: &str) -> Vec<(String, u64, u64, u64)> {
    let entries = browser
        .js(&format!(
            "return performance.getEntriesByType('resource')
                .filter(e => new URL(e.name).pathname.endsWith({suffix:?}))
                .map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize]);"
        ))
        .await;
    let Value::Array(entries) = entries else {
        panic!("resource entries: {entries}")
    };
    entries
        .iter()
        .map(|e| {
            let n = |i: usize| e[i].as_u64().unwrap_or_else(|| panic!("a size: {e}"));
            (e[0].as_str().expect("a name").to_owned(), n(1), n(2), n(3))
        })
        .collect()
}

/// The sizes of `X.br` and `X.gz` beside the file `url` names in `web/dist`.
fn variant_sizes(url: &str) -> Vec<u64> {
    let name = url.rsplit('/').next().expect("a file name");
    ["br", "gz"]
        .iter()
        .filter_map(|ext| std::fs::metadata(web_dist().join(format!("{name}.{ext}"))).ok())
        .map(|m| m.len())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasm_arrives_compressed_and_a_second_visit_transfers_none_of_it() {
    let driver = Chromedriver::start().await;
    let app = App::start().await;
    let expected = ids(&app.list(1, 10, "").await);
    let browser = driver.browser().await;

    browser.goto(&app.url("/")).await;
    browser.wait_for_rows("the first visit", &expected).await;
    let cold_wasm = resources(&browser, "_bg.wasm").await;
    let cold_js = resources(&browser, ".js").await;
    assert!(
        !cold_wasm.is_empty() && !cold_js.is_empty(),
        "{cold_wasm:?} {cold_js:?}"
    );
    for (name, transfer, encoded, decoded) in cold_wasm.iter().chain(&cold_js) {
        assert!(*transfer > 0, "the first visit downloads {name}");
        assert!(
            encoded < decoded,
            "{name} is sent compressed: {encoded} bytes for {decoded}"
        );
        assert!(
            variant_sizes(name).contains(encoded),
            "{name}: {encoded} bytes is one of its precompressed variants {:?}",
            variant_sizes(name)
        );
    }

    // A new document in the same browser (same HTTP cache).
    browser.goto("about:blank").await;
    browser.goto(&app.url("/")).await;
    browser.wait_for_rows("the second visit", &expected).await;
    let warm_wasm = resources(&browser, "_bg.wasm").await;
    let warm_js = resources(&browser, ".js").await;
    assert!(
        !warm_wasm.is_empty() && !warm_js.is_empty(),
        "{warm_wasm:?} {warm_js:?}"
    );
    for (name, transfer, _, decoded) in warm_wasm.iter().chain(&warm_js) {
        assert_eq!(*transfer, 0, "{name} comes from the cache, not the network");
        assert!(*decoded > 0, "{name} was used");
    }

    // index.html was revalidated: headers only, no body.
    let navigation = browser
        .js("const n = performance.getEntriesByType('navigation')[0];
             return [n.transferSize, n.encodedBodySize, n.responseStatus];")
        .await;
    let transfer = navigation[0].as_u64().expect("transferSize");
    let body = navigation[1].as_u64().expect("encodedBodySize");
    assert!(
        transfer > 0 && transfer < body,
        "index.html revalidated (304, {transfer} bytes of headers) rather than sent again \
         ({body} bytes): {navigation}"
    );
}
