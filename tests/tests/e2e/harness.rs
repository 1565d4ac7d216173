//! The end-to-end harness: the app under test (an in-process server that
//! serves the built web app and demo data), a chromedriver process per
//! test, headless Chromium sessions, and bounded polling.
//!
//! Nothing here sleeps and hopes: every wait polls a real condition and
//! fails after [`WAIT`] with what it saw last.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use proto::v1::{self as pb};
use serde_json::{Value, json};

use testkit::article::TestServer;

/// Every wait for the browser is bounded by this. Generous: two CPUs may
/// run several Chromiums at once while other builds run.
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// From `../shared/TOOLCHAIN.md`: no sandbox (containers), nothing that
/// phones home or updates itself while a test runs.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1280,900",
];

/// The built web app (`web/dist`), from `ARTICLE_WEB_DIST`.
pub fn web_dist() -> PathBuf {
    let Some(dir) = std::env::var_os("ARTICLE_WEB_DIST").filter(|d| !d.is_empty()) else {
        panic!(
            "ARTICLE_WEB_DIST is not set: point it at the built web app (web/dist), \
             or run the end-to-end tests with `cargo xtask e2e`, which builds it"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("index.html").is_file(),
        "ARTICLE_WEB_DIST={} has no index.html; build the app with `cargo xtask e2e`",
        dir.display()
    );
    dir
}

/// Polls `probe` until it returns `Ok`, at most [`WAIT`]. `Err` carries
/// what was seen instead, quoted in the panic message on timeout.
pub async fn wait_for<T>(what: &str, probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    testkit::wait_until(what, WAIT, probe).await
}

/// `[data-testid="…"]`, the only way tests find elements.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/test-artifacts`, else the
/// workspace's `target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create test-artifacts dir");
    dir
}

// ---------------------------------------------------------------------------
// The app under test
// ---------------------------------------------------------------------------

/// An in-process server with demo data, serving the built web app.
pub struct App {
    pub server: TestServer,
}

impl App {
    pub async fn start() -> Self {
        let dist = web_dist();
        let server = TestServer::start_with(|s| {
            s.runtime.static_dir = Some(dist);
            s.demo_data = true;
        })
        .await;
        Self { server }
    }

    /// An absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url.trim_end_matches('/'))
    }

    /// One page of the list as the server has it (the reference for what
    /// the browser should show).
    pub async fn list(&self, page: i32, page_size: i32, query: &str) -> pb::ListArticlesResponse {
        self.server
            .client()
            .await
            .list_articles(pb::ListArticlesRequest {
                page,
                page_size,
                query: query.into(),
                tag: String::new(),
            })
            .await
            .expect("list articles")
            .into_inner()
    }

    pub async fn get(&self, id: i64) -> Result<pb::Article, tonic::Status> {
        self.server
            .client()
            .await
            .get_article(pb::GetArticleRequest { id })
            .await
            .map(|r| r.into_inner().article.expect("article in response"))
    }
}

pub fn ids(response: &pb::ListArticlesResponse) -> Vec<i64> {
    response.articles.iter().map(|a| a.id).collect()
}

// ---------------------------------------------------------------------------
// chromedriver and browser sessions
// ---------------------------------------------------------------------------

/// A chromedriver process on a free port. On drop it ends the sessions it
/// opened (so no Chromium outlives the test, even after a panic) and is
/// killed.
pub struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    sessions: Mutex<Vec<String>>,
    profiles: tempfile::TempDir,
}

impl Chromedriver {
    pub async fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        let mut last_error = String::new();
        // The port is free when we look; if someone takes it before
        // chromedriver binds it, chromedriver exits and we try another.
        for _ in 0..3 {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port");
            let verbose = std::env::var_os("TEST_LOG").is_some();
            let output = || {
                if verbose {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                }
            };
            let child = Command::new(&binary)
                .arg(format!("--port={}", addr.port()))
                .stdout(output())
                .stderr(output())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {binary}: {e} (install chromium-driver, or run `cargo xtask e2e`)")
                });
            let mut driver = Self {
                child,
                addr,
                sessions: Mutex::new(Vec::new()),
                profiles: tempfile::tempdir().expect("temp dir for browser profiles"),
            };
            match driver.wait_ready().await {
                Ok(()) => return driver,
                Err(e) => last_error = e,
            }
        }
        panic!("chromedriver did not become ready: {last_error}");
    }

    /// Polls `GET /status` until it says `"ready": true`.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited with {status}"));
            }
            let addr = self.addr;
            let reply = tokio::task::spawn_blocking(move || http(addr, "GET", "/status"))
                .await
                .expect("status probe");
            match reply {
                Ok(body) if body.contains("\"ready\":true") => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("no ready /status within {WAIT:?}: {reply:?}"));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// A new headless Chromium session with a fresh profile (so its
    /// `localStorage`, and with it the sign-in, is its own).
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", self.addr))
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session ({CHROMIUM}): {e}"));
        if let Some(id) = client.session_id().await.expect("session id") {
            self.sessions.lock().expect("sessions").push(id);
        }
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in sessions {
            // Quits that session's Chromium; an already closed one answers
            // with an error, which is fine.
            let _ = http(self.addr, "DELETE", &format!("/session/{id}"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking HTTP/1.1 exchange with chromedriver; returns the
/// body. chromedriver keeps the connection open, so the body is read by
/// its `Content-Length`.
fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                return Ok(body.to_owned());
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// One browser session (its own window, profile and storage).
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The current URL's path and query, e.g. `/?page=2`.
    pub async fn location(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the URL's path and query equal `expected`.
    pub async fn wait_for_location(&self, expected: &str) {
        wait_for(&format!("the URL to become {expected}"), async || {
            let seen = self.location().await;
            if seen == expected { Ok(()) } else { Err(seen) }
        })
        .await;
    }

    /// Waits until an element with `data-testid=id` is displayed.
    pub async fn find(&self, id: &str) -> Element {
        self.find_css(&testid(id)).await
    }

    /// Waits until an element matching `css` is displayed.
    pub async fn find_css(&self, css: &str) -> Element {
        wait_for(&format!("{css} to be displayed"), async || {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .map_err(|e| format!("not found ({e})"))?;
            match element.is_displayed().await {
                Ok(true) => Ok(element),
                Ok(false) => Err("present but hidden".into()),
                Err(e) => Err(format!("gone again ({e})")),
            }
        })
        .await
    }

    /// Waits for a displayed `data-testid=id` whose text satisfies `check`;
    /// returns the text.
    pub async fn wait_for_text(&self, id: &str, check: impl Fn(&str) -> bool) -> String {
        wait_for(&format!("the text of {}", testid(id)), async || {
            let text = self.text(id).await.ok_or("not displayed")?;
            if check(&text) { Ok(text) } else { Err(text) }
        })
        .await
    }

    /// The text of the displayed `data-testid=id`, if there is one now.
    pub async fn text(&self, id: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(&testid(id))).await.ok()?;
        if !element.is_displayed().await.ok()? {
            return None;
        }
        element.text().await.ok()
    }

    /// Whether a displayed `data-testid=id` exists right now.
    pub async fn shows(&self, id: &str) -> bool {
        self.text(id).await.is_some()
    }

    /// Runs `script` (a function body) and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The `data-id`s of the list rows, in order, read in one go.
    pub async fn row_ids(&self) -> Vec<i64> {
        let ids = self
            .js(&format!(
                "return Array.from(document.querySelectorAll('{}'), r => Number(r.dataset.id));",
                testid("article-row")
            ))
            .await;
        serde_json::from_value(ids).expect("row ids are numbers")
    }

    /// Waits until the list shows exactly `expected` (ids, in order).
    pub async fn wait_for_rows(&self, what: &str, expected: &[i64]) {
        wait_for(&format!("rows of {what}: {expected:?}"), async || {
            let seen = self.row_ids().await;
            if seen == expected {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        })
        .await;
    }

    /// The `data-count` of `total-count`.
    pub async fn wait_for_total(&self, expected: i64) {
        wait_for(&format!("total-count {expected}"), async || {
            let element = self
                .client
                .find(Locator::Css(&testid("total-count")))
                .await
                .map_err(|e| e.to_string())?;
            let count = element
                .attr("data-count")
                .await
                .map_err(|e| e.to_string())?;
            match count.as_deref().map(str::parse::<i64>) {
                Some(Ok(n)) if n == expected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// Waits until the live indicator says the change feed is connected.
    pub async fn wait_until_live(&self) {
        wait_for("live-indicator data-status=live", async || {
            let element = self
                .client
                .find(Locator::Css(&testid("live-indicator")))
                .await
                .map_err(|e| e.to_string())?;
            match element
                .attr("data-status")
                .await
                .map_err(|e| e.to_string())?
            {
                Some(s) if s == "live" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// Marks the current document; [`Browser::assert_not_reloaded`] fails
    /// if the page has been reloaded since (live updates must not reload).
    pub async fn mark_document(&self) {
        self.js("window.__e2eMark = true; return null;").await;
    }

    pub async fn assert_not_reloaded(&self) {
        let mark = self.js("return window.__e2eMark === true;").await;
        assert_eq!(mark, Value::Bool(true), "the page was reloaded");
    }

    /// Saves a PNG of the window to `target/test-artifacts/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot is not a PNG ({} bytes)",
            png.len()
        );
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Ends the session (its Chromium quits).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
