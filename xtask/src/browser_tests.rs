//! The browser tests (`browser/tests/` and `web/tests/`, the hidden task
//! `browser-tests` and a step of `test`): wasm-bindgen-test in headless
//! Chromium and, where it can be installed, Firefox, against real
//! `article-server`s this module starts and stops. Unix only in practice: the drain server is stopped with
//! `kill -TERM`.

use std::env;
use std::ffi::OsStr;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cargo::{cargo, cargo_lock_version, cargo_test_counted};
use crate::error::{Error, Result, fail};
use crate::process::{quiet_success, step, target_dir, workspace_root};
use crate::tools::{WASM_TARGET, apt_install, ensure_cargo_tool, find_tool, tool_path};

/// The browser tests (`grpc-browser`'s `browser/tests/` and `article-web`'s
/// `web/tests/`): wasm-bindgen-test in headless Chromium and, where it can
/// be installed, Firefox, against real servers.
///
/// Installs what is missing (each step skipped when present): the
/// wasm-bindgen-test-runner matching Cargo.lock, `chromium` and
/// `chromium-driver` (apt-get), `firefox-esr` (apt-get) and `geckodriver`
/// (cargo install). Firefox is skipped with a note when it cannot be
/// installed (e.g. no apt-get or no root); Chromium is required.
///
/// Per browser it builds and starts two `article-server`s (in-memory
/// database, a random token, 1 s heartbeats): the main one and a "drain"
/// one, which gets SIGTERM once `grpc_server_handled_total` shows a
/// `GetArticle` call on it (the drain test's signal; see
/// `browser/tests/browser/resume.rs`). Their URLs and the token reach the
/// tests at compile time through cargo's `[env]` (`--config env.…`). Both
/// servers are killed when the run ends, also on failure.
pub(crate) fn browser_tests() -> Result<()> {
    let root = workspace_root();
    step("browser tests: tools (wasm-bindgen-test-runner, chromium, firefox)");
    let path = tool_path(&root.join("target").join("tools"))?;
    let bindgen_version = cargo_lock_version(&root, "wasm-bindgen")?;
    // The runner ships with wasm-bindgen-cli (not `--locked`: see `tools::ensure_bindgen_and_opt`).
    ensure_cargo_tool(
        &path,
        "wasm-bindgen-test-runner",
        &bindgen_version,
        &["install", "wasm-bindgen-cli", "--version", &bindgen_version],
    )?;
    let runner = find_tool(&path, "wasm-bindgen-test-runner")
        .ok_or_else(|| Error("wasm-bindgen-test-runner not found after installing".into()))?;

    let chromedriver = PathBuf::from("/usr/bin/chromedriver");
    if chromedriver.is_file() && quiet_success(Command::new("chromium").arg("--version")) {
        println!("    chromium and chromedriver: present");
    } else {
        apt_install(&["chromium", "chromium-driver"])?;
    }

    // Firefox is optional: installed when missing, skipped with the reason
    // when that is impossible here.
    let firefox_works = || quiet_success(Command::new("firefox-esr").arg("--version"));
    let mut firefox_skip = None;
    if firefox_works() {
        println!("    firefox-esr: present");
    } else if let Err(e) = apt_install(&["firefox-esr"]) {
        firefox_skip = Some(format!("firefox-esr could not be installed ({e})"));
    }
    let geckodriver = match find_tool(&path, "geckodriver") {
        Some(p) => {
            println!("    geckodriver: present");
            Some(p)
        }
        None if firefox_skip.is_none() => match cargo(&["install", "geckodriver", "--locked"]) {
            Ok(()) => find_tool(&path, "geckodriver"),
            Err(e) => {
                firefox_skip = Some(format!("geckodriver could not be installed ({e})"));
                None
            }
        },
        None => None,
    };

    step("cargo build -p article-server (debug, for the browser tests)");
    cargo(&["build", "-p", "article-server", "--locked"])?;
    let binary = target_dir(&root)
        .join("debug")
        .join(format!("article-server{}", env::consts::EXE_SUFFIX));

    let mut browsers = vec![("Chromium", "CHROMEDRIVER", chromedriver)];
    match (geckodriver, &firefox_skip) {
        (Some(driver), None) if firefox_works() => {
            browsers.push(("Firefox", "GECKODRIVER", driver));
        }
        _ => println!(
            "    note: skipping Firefox: {}",
            firefox_skip
                .as_deref()
                .unwrap_or("firefox-esr or geckodriver is missing")
        ),
    }

    for (browser, driver_var, driver) in browsers {
        let token = {
            let mut hex = String::new();
            for _ in 0..2 {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(Instant::now().elapsed().as_nanos());
                hex.push_str(&format!("{:016x}", h.finish()));
            }
            hex
        };
        let server = start(&binary, &token)?;
        let drain = start(&binary, &token)?;
        println!("    servers: {} and (drain) {}", server.url, drain.url);

        // Stops the drain server (SIGTERM, a graceful stop) once the drain
        // test has called GetArticle on it.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (done, url, pid) = (Arc::clone(&done), drain.url.clone(), drain.child.id());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    match metrics(&url) {
                        Some(m) if m.contains("grpc_method=\"GetArticle\"") => {
                            let _ = Command::new("kill")
                                .args(["-TERM", &pid.to_string()])
                                .status();
                            return;
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(50)),
                        None => return,
                    }
                }
            })
        };

        step(&format!(
            "browser tests in {browser} (grpc-browser and article-web, wasm-bindgen-test)"
        ));
        let result = cargo_test_counted(
            &[
                "test".to_owned(),
                "-p".to_owned(),
                "grpc-browser".to_owned(),
                "-p".to_owned(),
                "article-web".to_owned(),
                "--target".to_owned(),
                WASM_TARGET.to_owned(),
                "--locked".to_owned(),
                "--config".to_owned(),
                format!("target.{WASM_TARGET}.runner={:?}", runner.to_string_lossy()),
            ],
            &[
                ("ARTICLE_TEST_URL", OsStr::new(&server.url)),
                ("ARTICLE_TEST_TOKEN", OsStr::new(&token)),
                ("ARTICLE_TEST_DRAIN_URL", OsStr::new(&drain.url)),
                // The app's own `api` module, tested in the same run.
                ("ARTICLE_API_URL", OsStr::new(&server.url)),
                (driver_var, driver.as_os_str()),
                ("WASM_BINDGEN_TEST_TIMEOUT", OsStr::new("120")),
            ],
        );
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        drop((server, drain));
        result.map_err(|e| Error(format!("browser tests in {browser}: {e}")))?;
    }
    Ok(())
}

/// A running server, killed when dropped.
struct Server {
    child: Child,
    url: String,
}
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` and waits for its `listening on URL` line.
fn start(binary: &Path, token: &str) -> Result<Server> {
    let mut cmd = Command::new(binary);
    cmd.current_dir(workspace_root())
        .args(["--listen", "127.0.0.1:0", "--database", "sqlite::memory:"])
        .arg("--token")
        .arg(format!("test={token}"))
        .args(["--watch-heartbeat-secs", "1", "--drain-secs", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if env::var_os("TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error(format!("could not start {}: {e}", binary.display())))?;
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let mut server = Server {
        child,
        url: String::new(),
    };
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return fail("article-server exited before printing its URL"),
            Ok(_) => {}
        }
        if let Some(url) = testkit::listening::url(&line) {
            server.url = url.trim_end_matches('/').to_owned();
            break;
        }
    }
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    Ok(server)
}

/// `GET {url}/metrics` over plain HTTP/1.0; `None` when unreachable.
fn metrics(url: &str) -> Option<String> {
    let host = url.strip_prefix("http://")?.split('/').next()?;
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}
