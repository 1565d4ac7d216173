//! The end-to-end UI tests (`tests/tests/e2e/`, the hidden task `e2e` and
//! the last step of `test`): the release build of the app driven in
//! headless Chromium over WebDriver. The tests start their own servers.

use crate::cargo::cargo_test_counted;
use crate::error::{Result, fail};
use crate::process::{step, workspace_root};
use crate::tools::{ensure_chromedriver, ensure_cluster_tools};
use crate::web::build_web;

/// The end-to-end UI tests (`tests/tests/e2e/`, also the hidden task
/// `cargo xtask e2e`): builds the web app (see `build_web`), installs
/// `chromium` and `chromium-driver` with apt-get when chromedriver is
/// missing, then runs `cargo test -p article-tests --features e2e --test
/// e2e` with `ARTICLE_WEB_DIST` pointing at the build. The tests start
/// their own servers and chromedrivers.
pub(crate) fn e2e_tests() -> Result<()> {
    let root = workspace_root();
    let dist = match build_web()? {
        Some(dir) => dir,
        None => return fail("the web app was not built; the end-to-end tests need it"),
    };

    step("end-to-end tests: chromium and chromedriver, PostgreSQL and HAProxy (replicas.rs)");
    ensure_chromedriver()?;
    ensure_cluster_tools()?;

    step("cargo test (end-to-end UI tests in headless Chromium)");
    let dist = root.join(&dist);
    cargo_test_counted(
        &[
            "test",
            "-p",
            "article-tests",
            "--features",
            "e2e",
            "--test",
            "e2e",
            "--locked",
        ],
        &[("ARTICLE_WEB_DIST", dist.as_os_str())],
    )
}
