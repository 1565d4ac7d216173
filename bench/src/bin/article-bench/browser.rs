//! The browser side, in headless Chromium (and Firefox when geckodriver is
//! there): the size of the release bundle Trunk wrote to `web/dist`, the time
//! from navigation to the first list rendered, and decoding one
//! ListArticlesResponse of all seeded articles with prost (WASM) against
//! protobuf-es in one page, on the same bytes; and what a first and a second
//! visit in one browser transfer, file by file (resource timing).
//!
//! Browsers are driven over WebDriver with fantoccini; every page load gets a
//! new browser session with a new profile, so nothing is cached between
//! loads. The pages come from article-server's `--static-dir` on
//! 127.0.0.1:0. Nothing here asserts a timing; the only checks are that the
//! pages worked and both decoders read the same articles.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use article_bench::process::{self, Server};
use fantoccini::{Client, ClientBuilder};
use flate2::{Compression, write::GzEncoder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{Ctx, step};

/// The performance mark the app sets once the first list is in the DOM
/// (`FIRST_LIST_MARK` in `web/src/pages/list.rs`).
pub const FIRST_LIST_MARK: &str = "article-list-rendered";

/// Bounds every wait for a browser (a page load and its script).
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// Where the browser part finds its inputs (built by `cargo xtask bench`).
pub struct BrowserConfig {
    /// The built app, `web/dist`.
    pub dist: PathBuf,
    /// `wasm-bindgen --target web` output of `bench/wasm-decode`.
    pub decode_pkg: PathBuf,
    /// protobuf-es' ES modules (`@bufbuild/protobuf/dist/esm`).
    pub protobuf_es: PathBuf,
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
    /// Firefox is measured too when this is given.
    pub geckodriver: Option<PathBuf>,
    /// Page loads for the time to first list.
    pub loads: usize,
    /// Timed batches per decoder.
    pub decode_samples: usize,
    pub decode_warmup_ms: u32,
}

/// One file of the bundle.
#[derive(Clone, Debug, Serialize)]
pub struct BundleFile {
    pub name: String,
    /// `wasm`, `js`, `css` or `html`.
    pub kind: String,
    pub raw: u64,
    pub gzip: u64,
    /// The size of the brotli variant beside it (`<name>.br`, written by
    /// `grpc_runtime::precompress` in `cargo xtask bench`'s build), if any.
    pub brotli: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Bundle {
    pub files: Vec<BundleFile>,
}

impl Bundle {
    /// (raw, gzip) over the files of these kinds.
    pub fn total(&self, kinds: &[&str]) -> (u64, u64) {
        self.files
            .iter()
            .filter(|f| kinds.contains(&f.kind.as_str()))
            .fold((0, 0), |(r, g), f| (r + f.raw, g + f.gzip))
    }
}

/// Navigation start → first list rendered, one browser.
#[derive(Clone, Debug, Serialize)]
pub struct FirstList {
    pub browser: String,
    /// Milliseconds from navigation start to the mark, per load.
    pub mark_ms: Vec<f64>,
    /// Milliseconds from navigation start until the wasm was received.
    pub wasm_received_ms: Vec<f64>,
    /// Whether every load fetched the wasm over the network (resource
    /// timing's `transferSize` > 0), i.e. nothing came from a cache.
    pub cold: bool,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// The decode page's answer (see `bench/browser/decode.js`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct DecodePage {
    pub bytes: u64,
    /// The first copy of the bytes into wasm memory (growing it).
    pub copy_ms: f64,
    /// Later copies, timed like the decoders.
    pub copy_median_ms: f64,
    pub check: Value,
    pub batch: Value,
    pub wasm_ms: Vec<f64>,
    pub js_ms: Vec<f64>,
    pub wasm_median_ms: f64,
    pub js_median_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Decode {
    pub browser: String,
    pub articles: usize,
    #[serde(flatten)]
    pub page: DecodePage,
    /// prost / protobuf-es, medians.
    pub ratio: f64,
}

/// One file of one visit, from the browser's resource timing (the
/// navigation entry for the page itself).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VisitFile {
    /// The URL's path.
    pub path: String,
    /// Bytes over the network, headers included; 0 when served from the
    /// browser's cache without asking.
    pub transfer: u64,
    /// The body as sent (compressed).
    pub encoded: u64,
    /// The body as used.
    pub decoded: u64,
}

/// A first visit (empty profile) and a second one in the same browser
/// session (its HTTP cache), each until the first list is rendered.
#[derive(Clone, Debug, Serialize)]
pub struct Visits {
    pub browser: String,
    pub cold: Vec<VisitFile>,
    pub warm: Vec<VisitFile>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BrowserResults {
    pub bundle: Bundle,
    /// The decode page's WASM module (prost and the generated types).
    pub decode_wasm: Option<BundleFile>,
    pub first_list: Vec<FirstList>,
    pub visits: Vec<Visits>,
    pub decode: Vec<Decode>,
    /// Browsers as the sessions reported them, e.g. `chrome 148.0…`.
    pub browsers: Vec<String>,
    pub skipped: Vec<String>,
}

pub async fn run(
    ctx: &Ctx,
    cfg: &BrowserConfig,
    articles: usize,
) -> anyhow::Result<BrowserResults> {
    let mut results = BrowserResults::default();

    step(&format!("browser: bundle size of {}", cfg.dist.display()));
    results.bundle = bundle(&cfg.dist)?;
    let (raw, gzip) = results.bundle.total(&["wasm", "js"]);
    println!("    wasm + JS: {raw} bytes, {gzip} bytes gzip -9");

    let page = decode_page(ctx, cfg)?;
    results.decode_wasm = Some(measure_file(
        &page.join("wasm").join("article_wasm_decode_bg.wasm"),
        "wasm",
    )?);

    let mut browsers = vec![Browser::Chromium];
    match &cfg.geckodriver {
        Some(_) if firefox_present().await => browsers.push(Browser::Firefox),
        Some(_) => results
            .skipped
            .push("Firefox: firefox-esr is missing".into()),
        None => results.skipped.push("Firefox: no geckodriver".into()),
    }

    let app = ctx
        .static_server("browser-app", &ctx.db_url(), &cfg.dist)
        .await?;
    let decode_server = ctx
        .static_server("browser-decode", "sqlite::memory:", &page)
        .await?;
    for browser in browsers {
        let measured = measure_browser(ctx, cfg, browser, &app, &decode_server, articles).await;
        match measured {
            Ok((version, first, visits, decode)) => {
                results.browsers.push(version);
                results.first_list.push(first);
                results.visits.push(visits);
                results.decode.push(decode);
            }
            // Firefox is optional: a failure there is reported, not fatal.
            Err(e) if browser == Browser::Firefox => {
                println!("    Firefox failed, skipped: {e:#}");
                results.skipped.push(format!("Firefox failed: {e:#}"));
            }
            Err(e) => return Err(e),
        }
    }
    decode_server.stop().await?;
    app.stop().await?;
    Ok(results)
}

/// Time to first list, bytes of two visits and decode in one browser:
/// (version, first list, visits, decode).
async fn measure_browser(
    ctx: &Ctx,
    cfg: &BrowserConfig,
    browser: Browser,
    app: &Server,
    decode_server: &Server,
    articles: usize,
) -> anyhow::Result<(String, FirstList, Visits, Decode)> {
    let driver = Driver::start(
        browser,
        cfg,
        &ctx.root,
        &ctx.log(&format!("{browser:?}-driver")),
    )
    .await?;

    step(&format!(
        "browser: {} loads of / in {browser:?}, new session each",
        cfg.loads
    ));
    let (first, version) = first_list(&driver, app, cfg.loads).await?;
    println!(
        "    {version}: first list median {:.0} ms (min {:.0}, max {:.0}), cold: {}",
        first.median_ms, first.min_ms, first.max_ms, first.cold
    );

    step(&format!(
        "browser: a first and a second visit of / in one {browser:?} session"
    ));
    let visits = visits(&driver, app, version.clone()).await?;
    let total = |files: &[VisitFile]| files.iter().map(|f| f.transfer).sum::<u64>();
    println!(
        "    transferred: {} bytes on the first visit, {} on the second",
        total(&visits.cold),
        total(&visits.warm)
    );

    step(&format!(
        "browser: decode {articles} articles, prost (WASM) vs protobuf-es, in {browser:?}"
    ));
    let decode = decode(&driver, decode_server, cfg, articles).await?;
    println!(
        "    prost {:.3} ms, protobuf-es {:.3} ms per decode: {:.2} ×; copy into wasm {:.3} ms first, {:.3} ms later",
        decode.page.wasm_median_ms,
        decode.page.js_median_ms,
        decode.ratio,
        decode.page.copy_ms,
        decode.page.copy_median_ms
    );
    driver.stop().await;
    Ok((version, first, visits, decode))
}

/// Raw and gzip -9 size of one file.
fn measure_file(path: &Path, kind: &str) -> anyhow::Result<BundleFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&bytes)?;
    Ok(BundleFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kind: kind.to_owned(),
        raw: bytes.len() as u64,
        gzip: gz.finish()?.len() as u64,
        brotli: std::fs::metadata(format!("{}.br", path.display()))
            .ok()
            .map(|m| m.len()),
    })
}

/// Every file Trunk wrote to `dist`, by kind.
fn bundle(dist: &Path) -> anyhow::Result<Bundle> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dist)
        .with_context(|| format!("reading {} (build the app first)", dist.display()))?
    {
        let path = entry?.path();
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some(kind @ ("wasm" | "js" | "css" | "html")) => kind,
            _ => continue,
        };
        files.push(measure_file(&path, kind)?);
    }
    if !files.iter().any(|f| f.kind == "wasm") {
        bail!("no .wasm in {}: build the app first", dist.display());
    }
    let order = |kind: &str| {
        ["wasm", "js", "css", "html"]
            .iter()
            .position(|k| *k == kind)
    };
    files.sort_by(|a, b| (order(&a.kind), &a.name).cmp(&(order(&b.kind), &b.name)));
    Ok(Bundle { files })
}

/// Assembles the decode page in `target/bench/decode-page`: the page, the
/// prost module, protobuf-es, the API's descriptor set and the message (the
/// seeding step's export of every article as one ListArticlesResponse).
fn decode_page(ctx: &Ctx, cfg: &BrowserConfig) -> anyhow::Result<PathBuf> {
    let page = ctx.work.join("decode-page");
    let source = ctx.root.join("bench").join("browser");
    std::fs::create_dir_all(&page)?;
    // index.html: article-server refuses a static folder without one.
    for (file, name) in [("decode.html", "index.html"), ("decode.js", "decode.js")] {
        std::fs::copy(source.join(file), page.join(name))
            .with_context(|| format!("copying {file}"))?;
    }
    let wasm_js = cfg.decode_pkg.join("article_wasm_decode.js");
    if !wasm_js.is_file() {
        bail!(
            "{} is missing: `cargo xtask bench` builds bench/wasm-decode",
            wasm_js.display()
        );
    }
    copy_dir(&cfg.decode_pkg, &page.join("wasm"))?;
    if !cfg.protobuf_es.join("index.js").is_file() {
        bail!(
            "protobuf-es not found in {}: `cargo xtask bench` installs it",
            cfg.protobuf_es.display()
        );
    }
    copy_dir(&cfg.protobuf_es, &page.join("protobuf-es"))?;
    std::fs::write(page.join("article.fds"), proto::FILE_DESCRIPTOR_SET)?;
    std::fs::copy(ctx.work.join("articles.pb"), page.join("list.pb"))
        .context("copying the exported articles")?;
    Ok(page)
}

/// Copies the `.js` and `.wasm` files of `from`, recursively (written here:
/// a dozen lines against another dependency; the type declarations and
/// source maps next to them are not needed).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("js" | "wasm")
        ) {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

async fn firefox_present() -> bool {
    Command::new("firefox-esr")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Browser {
    Chromium,
    Firefox,
}

/// A WebDriver server (chromedriver or geckodriver) on a port of its
/// choosing, killed when stopped or dropped.
struct Driver {
    browser: Browser,
    child: Child,
    url: String,
    chromium: PathBuf,
    /// Browser options from `web/webdriver.json` (the flags the browser
    /// tests use: headless, no sandbox, nothing that phones home).
    options: Value,
    profiles: tempfile::TempDir,
}

impl Driver {
    async fn start(
        browser: Browser,
        cfg: &BrowserConfig,
        root: &Path,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let (binary, port_arg) = match browser {
            Browser::Chromium => (&cfg.chromedriver, "--port=0"),
            Browser::Firefox => (
                cfg.geckodriver.as_ref().context("no geckodriver")?,
                "--port=0",
            ),
        };
        let log_file = std::fs::File::create(log)?;
        let mut child = Command::new(binary)
            .arg(port_arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // Both print the port they bound: chromedriver "… started
        // successfully on port N.", geckodriver "… Listening on HOST:N".
        let stdout = child.stdout.take().context("driver stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                let port = if let Some((_, rest)) = line.split_once("successfully on port ") {
                    rest.trim_end_matches('.').trim().parse::<u16>().ok()
                } else if let Some((_, rest)) = line.split_once("Listening on ") {
                    rest.rsplit(':').next().and_then(|p| p.trim().parse().ok())
                } else {
                    None
                };
                if let Some(port) = port {
                    return Ok(port);
                }
            }
            bail!("{} exited before listening", binary.display())
        };
        let port = tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .context("the WebDriver server did not start in 60 s")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let options: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("web").join("webdriver.json"))
                .context("reading web/webdriver.json")?,
        )?;
        Ok(Self {
            browser,
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium: cfg.chromium.clone(),
            options,
            profiles: tempfile::tempdir()?,
        })
    }

    /// A new browser with a new, empty profile (so an empty cache).
    async fn session(&self) -> anyhow::Result<(Client, tempfile::TempDir)> {
        let profile = tempfile::tempdir_in(self.profiles.path())?;
        let timeouts = json!({ "script": BROWSER_WAIT.as_millis() as u64, "pageLoad": BROWSER_WAIT.as_millis() as u64 });
        let capabilities = match self.browser {
            Browser::Chromium => {
                let mut args: Vec<Value> = self.options["goog:chromeOptions"]["args"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                args.push(format!("--user-data-dir={}", profile.path().display()).into());
                args.push("--window-size=1280,900".into());
                json!({
                    "browserName": "chrome",
                    "timeouts": timeouts,
                    "goog:chromeOptions": { "binary": self.chromium, "args": args },
                })
            }
            // geckodriver makes a new temporary profile for every session.
            Browser::Firefox => json!({
                "browserName": "firefox",
                "timeouts": timeouts,
                "moz:firefoxOptions": self.options["moz:firefoxOptions"],
            }),
        };
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .with_context(|| format!("opening a {:?} session", self.browser))?;
        Ok((client, profile))
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// "chrome 148.0.7778.167", from the session's capabilities.
async fn version(client: &Client) -> String {
    let caps = client.capabilities();
    let name = caps
        .and_then(|c| c.get("browserName"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let version = caps
        .and_then(|c| c.get("browserVersion"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{name} {version}")
}

/// Waits (in the page, with a PerformanceObserver, no polling) for the
/// first-list mark; answers its time and the wasm's resource timing.
const FIRST_LIST_SCRIPT: &str = r#"
const [name, done] = arguments;
const report = () => {
  const wasm = performance.getEntriesByType("resource").filter((e) => e.name.endsWith(".wasm"));
  done({
    mark: performance.getEntriesByName(name)[0].startTime,
    wasmReceived: wasm.length ? wasm[0].responseEnd : null,
    wasmTransfer: wasm.length ? wasm[0].transferSize : null,
  });
};
if (performance.getEntriesByName(name).length) {
  report();
} else {
  new PerformanceObserver((list, observer) => {
    if (list.getEntriesByName(name).length) {
      observer.disconnect();
      report();
    }
  }).observe({ type: "mark", buffered: true });
}
"#;

async fn first_list(
    driver: &Driver,
    app: &Server,
    loads: usize,
) -> anyhow::Result<(FirstList, String)> {
    let url = format!("http://{}/", app.addr);
    let mut mark_ms = Vec::new();
    let mut wasm_received_ms = Vec::new();
    let mut cold = true;
    let mut browser = String::new();
    for _ in 0..loads {
        let (client, _profile) = driver.session().await?;
        browser = version(&client).await;
        let result = async {
            client.goto(&url).await?;
            let seen = client
                .execute_async(FIRST_LIST_SCRIPT, vec![FIRST_LIST_MARK.into()])
                .await?;
            anyhow::Ok(seen)
        }
        .await;
        let _ = client.close().await;
        let seen = result.with_context(|| format!("loading {url} in {browser}"))?;
        mark_ms.push(seen["mark"].as_f64().context("no mark time")?);
        wasm_received_ms.push(seen["wasmReceived"].as_f64().unwrap_or(f64::NAN));
        cold &= seen["wasmTransfer"].as_f64().is_some_and(|t| t > 0.0);
    }
    let mut sorted = mark_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let first = FirstList {
        browser: browser.clone(),
        median_ms: median(&sorted),
        min_ms: sorted.first().copied().unwrap_or(f64::NAN),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        mark_ms,
        wasm_received_ms,
        cold,
    };
    Ok((first, browser))
}

/// Waits for the first-list mark like [`FIRST_LIST_SCRIPT`], then answers
/// every same-origin resource of the page and the page itself, with sizes.
const VISIT_SCRIPT: &str = r#"
const [name, done] = arguments;
const report = () => {
  const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
  done(entries
    .filter((e) => new URL(e.name).origin === location.origin)
    .map((e) => ({
      path: new URL(e.name).pathname,
      transfer: e.transferSize,
      encoded: e.encodedBodySize,
      decoded: e.decodedBodySize,
    })));
};
if (performance.getEntriesByName(name).length) {
  report();
} else {
  new PerformanceObserver((list, observer) => {
    if (list.getEntriesByName(name).length) {
      observer.disconnect();
      report();
    }
  }).observe({ type: "mark", buffered: true });
}
"#;

/// A first visit of `/` with an empty profile, then `about:blank`, then a
/// second visit in the same session: what each transferred.
async fn visits(driver: &Driver, app: &Server, browser: String) -> anyhow::Result<Visits> {
    let url = format!("http://{}/", app.addr);
    let (client, _profile) = driver.session().await?;
    let result = async {
        let mut seen = Vec::new();
        for page in [&url, "about:blank", &url] {
            client.goto(page).await?;
            if page != "about:blank" {
                let files = client
                    .execute_async(VISIT_SCRIPT, vec![FIRST_LIST_MARK.into()])
                    .await?;
                seen.push(serde_json::from_value::<Vec<VisitFile>>(files)?);
            }
        }
        anyhow::Ok(seen)
    }
    .await;
    let _ = client.close().await;
    let mut seen = result.with_context(|| format!("visiting {url} twice in {browser}"))?;
    let warm = seen.pop().context("a second visit")?;
    let cold = seen.pop().context("a first visit")?;
    Ok(Visits {
        browser,
        cold,
        warm,
    })
}

/// The median of sorted values.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

const DECODE_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
if (!window.decodeBench) {
  done({ error: "the decode page did not start (see the browser console)" });
} else {
  window.decodeBench.then(done, (e) => done({ error: String(e) }));
}
"#;

async fn decode(
    driver: &Driver,
    server: &Server,
    cfg: &BrowserConfig,
    articles: usize,
) -> anyhow::Result<Decode> {
    let url = format!(
        "http://{}/?samples={}&warmupMs={}",
        server.addr, cfg.decode_samples, cfg.decode_warmup_ms
    );
    let (client, _profile) = driver.session().await?;
    let browser = version(&client).await;
    let result = async {
        client.goto(&url).await?;
        anyhow::Ok(client.execute_async(DECODE_SCRIPT, Vec::new()).await?)
    }
    .await;
    let _ = client.close().await;
    let answer = result.with_context(|| format!("running {url} in {browser}"))?;
    if let Some(error) = answer.get("error") {
        bail!("the decode page failed in {browser}: {error}");
    }
    let page: DecodePage = serde_json::from_value(answer).context("the decode page's answer")?;
    // Sanity, not timing: both decoders read every article, the same ones.
    let check = &page.check;
    for side in ["wasm", "js"] {
        let n = check[side]["articles"].as_u64().unwrap_or(0) as usize;
        if n != articles {
            bail!("{side} decoded {n} articles, expected {articles}");
        }
    }
    if check["wasm"]["idSum"] != check["js"]["idSum"] {
        bail!("prost and protobuf-es read different ids: {check}");
    }
    Ok(Decode {
        browser,
        articles,
        ratio: page.wasm_median_ms / page.js_median_ms,
        page,
    })
}

impl Ctx {
    /// article-server serving `dir` as its static files, on `database`.
    async fn static_server(
        &self,
        name: &str,
        database: &str,
        dir: &Path,
    ) -> anyhow::Result<Server> {
        let mut cmd = process::command(&self.server_bin, self.server_cpus.as_deref());
        cmd.args(["--listen", "127.0.0.1:0", "--database", database])
            .arg("--static-dir")
            .arg(dir)
            .env_remove("RUST_LOG");
        Server::start(name, cmd, &self.log(name)).await
    }
}
