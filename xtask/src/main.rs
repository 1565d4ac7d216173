//! Project automation, invoked as `cargo xtask <task>` (see the alias in
//! `.cargo/config.toml`). Only the standard library is used so that this
//! crate compiles in a second or two.
//!
//! Tasks:
//!
//! * `cargo xtask test [--skip-lint] [-- CARGO_TEST_ARGS...]` — the one
//!   command that runs every check the project has:
//!   1. ensures the toolchain pieces exist (the `wasm32-unknown-unknown`
//!      target and the `rustfmt` / `clippy` components), installing any that
//!      are missing through `rustup`; tools already present are left alone,
//!      so this is idempotent and cheap on a warm machine;
//!   2. `cargo fmt --all -- --check`;
//!   3. `cargo clippy --workspace --all-targets -- -D warnings` (native);
//!   4. clippy for `article-proto`, `article-web` and `article-wasm-decode`
//!      (the benchmark's decode module) on `wasm32-unknown-unknown`;
//!   5. builds `article-proto` (no default features) and `article-web` for
//!      `wasm32-unknown-unknown`;
//!   6. `cargo test --workspace --exclude article-web`, passing through any
//!      arguments given after `--` (e.g. `cargo xtask test -- --nocapture`).
//!
//!   7. the browser tests (`web/tests/`) in headless Chromium and Firefox
//!      against real servers; see `browser_tests` (also the hidden task
//!      `cargo xtask browser-tests`).
//!   8. the end-to-end UI tests (`tests/tests/e2e/`) driving the release
//!      build of the app in headless Chromium over WebDriver; see
//!      `e2e_tests` (also the hidden task `cargo xtask e2e`).
//!
//!   `--skip-lint` skips steps 2–4 for quick local runs. Every cargo call
//!   uses `--locked`, so a stale `Cargo.lock` fails instead of being rewritten.
//!
//! * `cargo xtask ci` — the same as `test`; this is what `.ci/run` calls.
//!
//! * `cargo xtask run [--] [SERVER_ARGS...]` — builds the web app with
//!   Trunk (`trunk build --release` into `web/dist`, installing Trunk, the
//!   wasm-bindgen CLI matching Cargo.lock and npm's wasm-opt 132 when they
//!   are missing), builds `article-server` in release mode and runs it with
//!   `--demo-data --static-dir web/dist` and any extra arguments. The
//!   server prints its URL and a write token itself.
//!
//! * `cargo xtask ensure-tools` (hidden) — only step 1 of `test`.
//!
//! The cargo binary is taken from `$CARGO` (set by cargo when it runs the
//! alias), falling back to `cargo` on `$PATH`. Child processes inherit stdio
//! and run from the workspace root.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

const USAGE: &str = "\
Project automation for the article server workspace.

USAGE:
    cargo xtask <TASK> [OPTIONS] [-- ARGS...]

TASKS:
    test    Ensure tools, check formatting, run clippy (native and wasm32),
            build the wasm32 crates and run the whole test suite.
              --skip-lint   skip rustfmt and clippy (quick local runs)
              -- ARGS...    passed to `cargo test` (e.g. -- --nocapture)
    ci      Same as `test`; used by .ci/run.
    run     Build the web app (Trunk, release) and article-server (release),
            then start the server with demo data, serving the app.
              [--] ARGS...  extra arguments passed to article-server
    bench   Install oha, h2load and a Python grpcio venv if missing, build
            release binaries, the web app and the decode page, and run the
            benchmarks (servers and headless Chromium) into BENCHMARKS.md.
              --quick       short smoke run (writes target/bench/ instead)
              [--] ARGS...  passed to article-bench (see its --help),
                            e.g. -- --only browser
    help    Print this message (also -h, --help).

Missing toolchain pieces (the wasm32-unknown-unknown target, rustfmt,
clippy) are installed through rustup automatically, and `run` installs
trunk, wasm-bindgen-cli (cargo install) and wasm-opt (npm) when missing;
present ones are kept.
";

/// A failure that ends the task with a one-line message and exit code 1.
#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[OsString]) -> Result<()> {
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return fail("no task given (see `cargo xtask --help`)");
    };
    let task = task.to_string_lossy();
    match task.as_ref() {
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        "test" | "ci" => {
            let opts = TestOptions::parse(rest)?;
            if opts.help {
                print!("{USAGE}");
                return Ok(());
            }
            let result = test(&opts);
            if result.is_err() {
                // The count so far, so a failed run still says how far it got.
                print_test_counts();
            }
            result
        }
        "run" => {
            if matches!(rest.first().and_then(|a| a.to_str()), Some("-h" | "--help")) {
                print!("{USAGE}");
                return Ok(());
            }
            // A leading `--` is optional; everything else goes to the server.
            let server_args = match rest.split_first() {
                Some((first, tail)) if first == "--" => tail,
                _ => rest,
            };
            run(server_args)
        }
        "bench" => bench(rest),
        "ensure-tools" => ensure_tools(),
        "browser-tests" => browser_tests(),
        "e2e" => e2e_tests(),
        other => {
            eprint!("{USAGE}");
            fail(format!("unknown task `{other}` (see `cargo xtask --help`)"))
        }
    }
}

#[derive(Debug, Default)]
struct TestOptions {
    skip_lint: bool,
    help: bool,
    test_args: Vec<OsString>,
}

impl TestOptions {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut opts = Self::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.to_str() {
                Some("--skip-lint") => opts.skip_lint = true,
                Some("-h" | "--help") => opts.help = true,
                Some("--") => {
                    opts.test_args = iter.cloned().collect();
                    break;
                }
                _ => {
                    return fail(format!(
                        "unexpected argument `{}` (arguments for cargo test go after `--`)",
                        arg.to_string_lossy()
                    ));
                }
            }
        }
        Ok(opts)
    }
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

fn test(opts: &TestOptions) -> Result<()> {
    ensure_tools()?;

    if opts.skip_lint {
        step("skipping rustfmt and clippy (--skip-lint)");
    } else {
        step("cargo fmt --check");
        cargo(&["fmt", "--all", "--", "--check"])?;

        step("cargo clippy (native, whole workspace)");
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])?;

        step("cargo clippy (wasm32: article-proto, article-web, article-wasm-decode)");
        cargo(&[
            "clippy",
            "-p",
            "article-proto",
            "-p",
            "article-web",
            "-p",
            "article-wasm-decode",
            "--target",
            WASM_TARGET,
            "--no-default-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])?;
    }

    step("cargo build (wasm32: article-proto without default features)");
    cargo(&[
        "build",
        "-p",
        "article-proto",
        "--no-default-features",
        "--target",
        WASM_TARGET,
        "--locked",
    ])?;

    step("cargo build (wasm32: article-web)");
    cargo(&[
        "build",
        "-p",
        "article-web",
        "--target",
        WASM_TARGET,
        "--locked",
    ])?;

    step("cargo test (workspace, native)");
    let mut args: Vec<OsString> = [
        "test",
        "--workspace",
        "--exclude",
        "article-web",
        "--locked",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if !opts.test_args.is_empty() {
        args.push("--".into());
        args.extend(opts.test_args.iter().cloned());
    }
    cargo_test_counted(&args, &[])?;

    browser_tests()?;

    e2e_tests()?;

    print_test_counts();
    step("all checks passed");
    Ok(())
}

/// The browser tests (`web/tests/`): wasm-bindgen-test in headless Chromium
/// and, where it can be installed, Firefox, against real servers.
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
/// `web/tests/grpc_web.rs`). Their URLs and the token reach the tests at
/// compile time through cargo's `[env]` (`--config env.…`). Both servers
/// are killed when the run ends, also on failure.
fn browser_tests() -> Result<()> {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpStream;
    use std::process::{Child, ChildStdout};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

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
            if let Some(url) = line.trim().strip_prefix("listening on ") {
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

    fn apt_install(packages: &[&str]) -> Result<()> {
        let mut update = Command::new("apt-get");
        update.arg("update");
        run_command(update)?;
        let mut install = Command::new("apt-get");
        install.args(["install", "-y"]).args(packages);
        run_command(install)
    }

    let root = workspace_root();
    step("browser tests: tools (wasm-bindgen-test-runner, chromium, firefox)");
    let path = tool_path(&root.join("target").join("tools"))?;
    let bindgen_version = cargo_lock_version(&root, "wasm-bindgen")?;
    // The runner ships with wasm-bindgen-cli (not `--locked`: see `run`).
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
            "browser tests in {browser} (article-web, wasm-bindgen-test)"
        ));
        let result = cargo_test_counted(
            &[
                "test".to_owned(),
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

/// The end-to-end UI tests (`tests/tests/e2e/`, also the hidden task
/// `cargo xtask e2e`): builds the web app (see `build_web`), installs
/// `chromium` and `chromium-driver` with apt-get when chromedriver is
/// missing, then runs `cargo test -p article-tests --features e2e --test
/// e2e` with `ARTICLE_WEB_DIST` pointing at the build. The tests start
/// their own servers and chromedrivers.
fn e2e_tests() -> Result<()> {
    let root = workspace_root();
    let dist = match build_web()? {
        Some(dir) => dir,
        None => return fail("the web app was not built; the end-to-end tests need it"),
    };

    step("end-to-end tests: chromium and chromedriver");
    ensure_chromedriver()?;

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

/// Where Debian's `chromium-driver` puts chromedriver.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs `chromium` and `chromium-driver` with apt-get when chromedriver
/// is missing.
fn ensure_chromedriver() -> Result<()> {
    if Path::new(CHROMEDRIVER).is_file() {
        println!("    chromium and chromedriver: present");
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update.arg("update");
    run_command(update)?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "chromium", "chromium-driver"]);
    run_command(install)
}

fn run(server_args: &[OsString]) -> Result<()> {
    let root = workspace_root();

    let static_dir = match build_web()? {
        Some(dir) => Some(dir),
        None => {
            let dist = root.join("web").join("dist");
            dist.is_dir().then_some(dist)
        }
    };

    step("cargo build --release -p article-server");
    cargo(&["build", "--release", "-p", "article-server", "--locked"])?;

    let binary = target_dir(&root)
        .join("release")
        .join(format!("article-server{}", env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        return fail(format!("built server not found at {}", binary.display()));
    }

    let mut cmd = Command::new(&binary);
    cmd.current_dir(&root).arg("--demo-data");
    if let Some(dir) = &static_dir {
        cmd.arg("--static-dir").arg(dir);
    }
    cmd.args(server_args);

    step(&display_command(&cmd));
    exec(cmd)
}

/// Trunk 0.21.14 is the newest that builds with Rust 1.95 (0.22 needs newer).
const TRUNK_VERSION: &str = "0.21.14";
/// npm `binaryen` whose `wasm-opt` reports `version_132`. Not Debian's
/// binaryen (108): Trunk accepts it, but the page it produces breaks.
const BINARYEN_VERSION: &str = "132.0.0";
const WASM_OPT_VERSION: &str = "version_132";

/// Builds the browser app in release mode and returns the folder to serve.
///
/// Installs what is missing first (each step is skipped when the right
/// version is already there): the wasm32 target, Trunk, the wasm-bindgen
/// CLI at exactly the version of the `wasm-bindgen` crate in Cargo.lock,
/// and wasm-opt from npm into `target/tools`. Then `cargo fetch` (Trunk
/// builds `--offline`, see `Trunk.toml`) and `trunk build --release`,
/// which writes `web/dist`.
fn build_web() -> Result<Option<PathBuf>> {
    let root = workspace_root();
    step("build the web app (trunk build --release)");
    ensure_wasm_target()?;

    let tools_dir = root.join("target").join("tools");
    let path = tool_path(&tools_dir)?;
    ensure_cargo_tool(
        &path,
        "trunk",
        TRUNK_VERSION,
        &["install", "trunk", "--version", TRUNK_VERSION, "--locked"],
    )?;
    let bindgen_version = ensure_bindgen_and_opt(&root, &path, &tools_dir)?;

    step("cargo fetch (Trunk builds offline)");
    cargo(&["fetch", "--locked"])?;

    let mut cmd = Command::new("trunk");
    cmd.current_dir(&root)
        .args(["build", "--release"])
        .env("PATH", &path)
        // Trunk.toml names the version too; Cargo.lock is the authority.
        .env("TRUNK_TOOLS_WASM_BINDGEN", &bindgen_version)
        .env("TRUNK_TOOLS_WASM_OPT", WASM_OPT_VERSION)
        // Leptos: type-erase components and reactive closures, which makes
        // the wasm about 5 % smaller. Applies to the wasm32 crates only
        // (Trunk passes `--target`), in their own `wasm-release` profile.
        .env(
            "RUSTFLAGS",
            append_flags(env::var_os("RUSTFLAGS"), "--cfg erase_components"),
        );
    step(&display_command(&cmd));
    run_command(cmd)?;

    let dist = root.join("web").join("dist");
    if !dist.join("index.html").is_file() {
        return fail(format!(
            "trunk finished but {} has no index.html",
            dist.display()
        ));
    }
    Ok(Some(dist))
}

/// `PATH` for the web tools: npm's `.bin` in `tools_dir` first (wasm-opt),
/// then cargo's bin folder (where `cargo install` puts trunk and
/// wasm-bindgen, even when it is not on the caller's `PATH`), then `PATH`.
fn tool_path(tools_dir: &Path) -> Result<OsString> {
    let mut dirs = vec![tools_dir.join("node_modules").join(".bin")];
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        dirs.push(home.join("bin"));
    }
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).map_err(|e| Error(format!("cannot build PATH for the web tools: {e}")))
}

/// The first `name` in the directories of `path` (a `PATH`-like list).
fn find_tool(path: &OsStr, name: &str) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The version of `package` recorded in the workspace's Cargo.lock.
fn cargo_lock_version(root: &Path, package: &str) -> Result<String> {
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .map_err(|e| Error(format!("cannot read {}: {e}", lock_path.display())))?;
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"').to_owned());
            if let Some(version) = version {
                return Ok(version);
            }
        }
    }
    fail(format!("{package} is not in Cargo.lock"))
}

/// The second word of `<program> --version` (e.g. `trunk 0.21.14`), if it runs.
fn tool_version(path: &OsStr, program: &str) -> Option<String> {
    let output = Command::new(program)
        .arg("--version")
        .env("PATH", path)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

/// Runs `cargo <install_args>` unless `<program> --version` already reports
/// `version`.
fn ensure_cargo_tool(
    path: &OsStr,
    program: &str,
    version: &str,
    install_args: &[&str],
) -> Result<()> {
    match tool_version(path, program) {
        Some(found) if found == version => {
            println!("    {program} {version}: present");
            return Ok(());
        }
        Some(found) => println!("    {program} {found} found, {version} needed: installing"),
        None => println!("    {program} not found: installing {version} (takes minutes)"),
    }
    let started = std::time::Instant::now();
    cargo(install_args)?;
    println!(
        "    installed {program} {version} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Installs npm `binaryen` into `tools_dir` unless its wasm-opt is there
/// with the right version.
fn ensure_wasm_opt(path: &OsStr, tools_dir: &Path) -> Result<()> {
    let wasm_opt = tools_dir.join("node_modules").join(".bin").join("wasm-opt");
    // `wasm-opt --version` prints `wasm-opt version 132 (version_132)`.
    let present = Command::new(&wasm_opt)
        .arg("--version")
        .env("PATH", path)
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(WASM_OPT_VERSION)
        });
    if present {
        println!("    wasm-opt {WASM_OPT_VERSION}: present");
        return Ok(());
    }
    npm_install(
        tools_dir,
        "wasm-opt",
        &format!("binaryen@{BINARYEN_VERSION}"),
    )
}

/// Installs what turns a wasm32 build into a page when missing: the
/// wasm-bindgen CLI at the version of the `wasm-bindgen` crate in
/// Cargo.lock (returned), and wasm-opt into `tools_dir`.
fn ensure_bindgen_and_opt(root: &Path, path: &OsStr, tools_dir: &Path) -> Result<String> {
    let bindgen_version = cargo_lock_version(root, "wasm-bindgen")?;
    // Not `--locked`: a dependency version in wasm-bindgen-cli's own lock
    // file is missing from the registry.
    ensure_cargo_tool(
        path,
        "wasm-bindgen",
        &bindgen_version,
        &["install", "wasm-bindgen-cli", "--version", &bindgen_version],
    )?;
    ensure_wasm_opt(path, tools_dir)?;
    Ok(bindgen_version)
}

/// `npm install --save-exact <spec>` into `tools_dir` (its own
/// `node_modules`, never global), for the tool `what`.
fn npm_install(tools_dir: &Path, what: &str, spec: &str) -> Result<()> {
    println!(
        "    installing {what} (npm {spec}) into {}",
        tools_dir.display()
    );
    std::fs::create_dir_all(tools_dir)
        .map_err(|e| Error(format!("cannot create {}: {e}", tools_dir.display())))?;
    let mut cmd = Command::new("npm");
    cmd.arg("install")
        .arg("--prefix")
        .arg(tools_dir)
        .args(["--no-audit", "--no-fund", "--save-exact"])
        .arg(spec);
    run_command(cmd).map_err(|e| {
        Error(format!(
            "{e}\n({what} comes from npm; install Node.js and npm, e.g. `apt-get install npm`)"
        ))
    })
}

/// npm `@bufbuild/protobuf` (protobuf-es v2), the JavaScript decoder the
/// benchmark's decode page compares prost with.
const PROTOBUF_ES_VERSION: &str = "2.17.0";

/// Installs npm `@bufbuild/protobuf` into `tools_dir` unless that version
/// is there; returns its ES modules folder.
fn ensure_protobuf_es(tools_dir: &Path) -> Result<PathBuf> {
    let package = tools_dir
        .join("node_modules")
        .join("@bufbuild")
        .join("protobuf");
    let wanted = format!("\"version\": \"{PROTOBUF_ES_VERSION}\"");
    let present = std::fs::read_to_string(package.join("package.json"))
        .is_ok_and(|manifest| manifest.contains(&wanted));
    if present {
        println!("    protobuf-es {PROTOBUF_ES_VERSION}: present");
    } else {
        npm_install(
            tools_dir,
            "protobuf-es",
            &format!("@bufbuild/protobuf@{PROTOBUF_ES_VERSION}"),
        )?;
    }
    Ok(package.join("dist").join("esm"))
}

/// Builds `bench/wasm-decode` (prost decoding in the browser) the way Trunk
/// builds the app: the `wasm-release` profile with the same RUSTFLAGS (so
/// the shared wasm32 dependencies are compiled once for both), then
/// `wasm-bindgen --target web` and `wasm-opt -Oz` (npm's, in
/// `target/tools`). Returns the folder with the `.js` and `_bg.wasm`.
fn build_wasm_decode() -> Result<PathBuf> {
    let root = workspace_root();
    step("build bench/wasm-decode (wasm-release, wasm-bindgen --target web, wasm-opt -Oz)");
    let tools_dir = root.join("target").join("tools");
    let path = tool_path(&tools_dir)?;
    ensure_bindgen_and_opt(&root, &path, &tools_dir)?;

    let mut build = cargo_command();
    build
        .args([
            "build",
            "-p",
            "article-wasm-decode",
            "--target",
            WASM_TARGET,
        ])
        .args(["--profile", "wasm-release", "--locked"])
        .env(
            "RUSTFLAGS",
            append_flags(env::var_os("RUSTFLAGS"), "--cfg erase_components"),
        );
    run_command(build)?;
    let wasm = target_dir(&root)
        .join(WASM_TARGET)
        .join("wasm-release")
        .join("article_wasm_decode.wasm");

    let out = target_dir(&root).join("bench-wasm-decode");
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen
        .env("PATH", &path)
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(&out)
        .arg(&wasm);
    run_command(bindgen)?;

    let bg = out.join("article_wasm_decode_bg.wasm");
    let optimized = out.join("article_wasm_decode_bg.opt.wasm");
    let mut opt = Command::new(tools_dir.join("node_modules").join(".bin").join("wasm-opt"));
    opt.env("PATH", &path)
        .arg(format!("--output={}", optimized.display()))
        .arg("-Oz")
        .arg(&bg);
    run_command(opt)?;
    std::fs::rename(&optimized, &bg)
        .map_err(|e| Error(format!("cannot replace {}: {e}", bg.display())))?;
    Ok(out)
}

/// `existing` (e.g. the caller's RUSTFLAGS) with `extra` appended.
fn append_flags(existing: Option<OsString>, extra: &str) -> OsString {
    match existing {
        Some(mut flags) if !flags.is_empty() => {
            flags.push(" ");
            flags.push(extra);
            flags
        }
        _ => extra.into(),
    }
}

/// Installs the wasm32 target and the rustfmt/clippy components when they
/// are missing. Does nothing (and needs no network) when all are present.
fn ensure_tools() -> Result<()> {
    step("ensure tools (wasm32 target, rustfmt, clippy)");

    let have_rustup = Command::new("rustup")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());

    // Components first: `cargo fmt` / `cargo clippy` are the real test.
    let mut missing_components = Vec::new();
    for (component, subcommand) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if !quiet_success(cargo_command().args([subcommand, "--version"])) {
            missing_components.push(component);
        }
    }
    if !missing_components.is_empty() {
        if !have_rustup {
            return fail(format!(
                "missing {} and rustup is not available to install them",
                missing_components.join(", ")
            ));
        }
        let mut cmd = Command::new("rustup");
        cmd.args(["component", "add"]).args(&missing_components);
        run_command(cmd)?;
    } else {
        println!("    rustfmt and clippy: present");
    }

    ensure_wasm_target_with(have_rustup)
}

/// Installs the `wasm32-unknown-unknown` target through rustup if missing.
fn ensure_wasm_target() -> Result<()> {
    let have_rustup = quiet_success(Command::new("rustup").arg("--version"));
    ensure_wasm_target_with(have_rustup)
}

fn ensure_wasm_target_with(have_rustup: bool) -> Result<()> {
    if have_rustup {
        let output = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| Error(format!("could not run `rustup target list`: {e}")))?;
        if !output.status.success() {
            return fail(format!(
                "`rustup target list --installed` failed ({})",
                output.status
            ));
        }
        let installed = String::from_utf8_lossy(&output.stdout);
        if installed.lines().any(|l| l.trim() == WASM_TARGET) {
            println!("    {WASM_TARGET}: present");
        } else {
            let mut cmd = Command::new("rustup");
            cmd.args(["target", "add", WASM_TARGET]);
            run_command(cmd)?;
        }
    } else {
        // Without rustup (e.g. a distro toolchain) we cannot install the
        // target; the wasm32 build step will report it if it is missing.
        println!("    rustup not found; assuming {WASM_TARGET} is available");
    }
    Ok(())
}

/// Runs the benchmarks (`bench/`). Installs what is missing, each step
/// skipped when the tool already works: `oha` (`cargo install oha
/// --locked`), `h2load` (`apt-get install -y nghttp2-client`) and a Python
/// venv in `target/bench-venv` with `bench/python/requirements.txt`. Then
/// builds `article-server` and `article-bench` in release mode and runs
/// `article-bench`, which writes `BENCHMARKS.md` (with `--quick`, a smoke
/// run into `target/bench/`).
///
/// For the browser part (run unless `--only` names another part) it first
/// builds the web app (`build_web`) and `bench/wasm-decode`
/// (`build_wasm_decode`), installs chromium/chromedriver (apt-get) and npm
/// `@bufbuild/protobuf` into `target/tools` when missing, and hands their
/// paths, and geckodriver's if it is installed, to `article-bench`.
fn bench(args: &[OsString]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    // Every option goes to article-bench, with or without a `--` before
    // it (`bench --quick -- --only browser` is `bench --quick --only browser`).
    let args: Vec<&OsString> = args.iter().filter(|a| *a != "--").collect();
    let root = workspace_root();
    step("ensure benchmark tools (oha, h2load, Python venv with grpcio)");

    // oha: on PATH, or where `cargo install` puts it.
    let cargo_bin = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| {
            home.join("bin")
                .join(format!("oha{}", env::consts::EXE_SUFFIX))
        });
    let oha = if quiet_success(Command::new("oha").arg("--version")) {
        PathBuf::from("oha")
    } else {
        match cargo_bin {
            Some(p) if quiet_success(Command::new(&p).arg("--version")) => p,
            installed => {
                cargo(&["install", "oha", "--locked"])?;
                installed.unwrap_or_else(|| PathBuf::from("oha"))
            }
        }
    };
    println!("    oha: {}", oha.display());

    if quiet_success(Command::new("h2load").arg("--version")) {
        println!("    h2load: present");
    } else {
        let install = || {
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "nghttp2-client"]);
            run_command(cmd)
        };
        if install().is_err() {
            // Fresh machines may have no package lists yet.
            let mut update = Command::new("apt-get");
            update.arg("update");
            run_command(update)?;
            install()?;
        }
    }

    let venv = target_dir(&root).join("bench-venv");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run_command(cmd)?;
    }
    if quiet_success(Command::new(&python).args(["-c", "import grpc, grpc_tools, google.protobuf"]))
    {
        println!("    Python venv with grpcio: present");
    } else {
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
            .arg(root.join("bench").join("python").join("requirements.txt"));
        run_command(cmd)?;
    }

    // The browser part (unless `--only` names another part) measures the
    // app as it is now: build it, the decode page's prost module and
    // protobuf-es, and find the browsers.
    let only = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        match a.strip_prefix("--only") {
            Some("") => args.get(i + 1)?.to_str().map(str::to_owned),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        }
    });
    let mut browser_args: Vec<OsString> = Vec::new();
    if only.as_deref().is_none_or(|part| part == "browser") {
        let dist = build_web()?.ok_or_else(|| Error("the web app was not built".into()))?;
        let decode_pkg = build_wasm_decode()?;
        step("ensure browser benchmark tools (chromium, protobuf-es, geckodriver)");
        ensure_chromedriver()?;
        let tools_dir = root.join("target").join("tools");
        let protobuf_es = ensure_protobuf_es(&tools_dir)?;
        browser_args.extend(["--web-dist".into(), dist.into_os_string()]);
        browser_args.extend(["--decode-pkg".into(), decode_pkg.into_os_string()]);
        browser_args.extend(["--protobuf-es".into(), protobuf_es.into_os_string()]);
        // Firefox is optional here: measured when geckodriver is already
        // installed (`cargo xtask test` installs it for the browser tests).
        match find_tool(&tool_path(&tools_dir)?, "geckodriver") {
            Some(gecko) => {
                println!("    geckodriver: {}", gecko.display());
                browser_args.extend(["--geckodriver".into(), gecko.into_os_string()]);
            }
            None => println!("    geckodriver not found: Firefox is skipped"),
        }
    }

    step("cargo build --release -p article-server -p article-bench");
    cargo(&[
        "build",
        "--release",
        "-p",
        "article-server",
        "-p",
        "article-bench",
        "--locked",
    ])?;
    let binary = target_dir(&root)
        .join("release")
        .join(format!("article-bench{}", env::consts::EXE_SUFFIX));
    let mut cmd = Command::new(binary);
    cmd.current_dir(&root)
        .arg("--root")
        .arg(&root)
        .arg("--oha")
        .arg(&oha)
        .arg("--python")
        .arg(&python)
        .args(&browser_args)
        .args(args);
    step(&display_command(&cmd));
    run_command(cmd)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory, honouring `$CARGO_TARGET_DIR`.
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn cargo_command() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

fn cargo<S: AsRef<OsStr>>(args: &[S]) -> Result<()> {
    let mut cmd = cargo_command();
    cmd.args(args);
    run_command(cmd)
}

/// Passed, failed and skipped tests over every `cargo test` run of this
/// task; `test` ends with one line of them, because cargo's own last line
/// only speaks of its last test binary (often doc tests).
static TEST_COUNTS: [std::sync::atomic::AtomicU64; 3] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Prints `tests: N passed, N failed, N skipped` over all runs so far.
fn print_test_counts() {
    let [p, f, s] = &TEST_COUNTS;
    println!(
        "tests: {} passed, {} failed, {} skipped",
        p.load(Ordering::Relaxed),
        f.load(Ordering::Relaxed),
        s.load(Ordering::Relaxed)
    );
}

/// Runs `cargo test …` with `envs` set, echoing its output and counting
/// its results into [`TEST_COUNTS`].
fn cargo_test_counted<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, &OsStr)]) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut cmd = cargo_command();
    cmd.args(args).stdout(Stdio::piped());
    // Plain environment variables (not `--config env.…`, which changes
    // every crate's fingerprint): cargo tracks the ones `option_env!`
    // reads, so only the crates that read them rebuild.
    for (name, value) in envs {
        cmd.env(name, value);
    }
    let shown = display_command(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error(format!("could not start `{shown}`: {e}")))?;
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = writeln!(stdout, "{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                for part in rest.split(['.', ';']) {
                    let mut words = part.split_whitespace();
                    if let (Some(n), Some(what)) = (words.next(), words.next()) {
                        let n: u64 = n.parse().unwrap_or(0);
                        match what {
                            "passed" => passed += n,
                            "failed" => failed += n,
                            "ignored" => skipped += n,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error(format!("`{shown}` did not finish: {e}")))?;
    TEST_COUNTS[0].fetch_add(passed, Ordering::Relaxed);
    TEST_COUNTS[1].fetch_add(failed, Ordering::Relaxed);
    TEST_COUNTS[2].fetch_add(skipped, Ordering::Relaxed);
    if status.success() {
        Ok(())
    } else {
        fail(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `cmd` with inherited stdio; a spawn failure or non-zero exit is an error.
fn run_command(mut cmd: Command) -> Result<()> {
    let shown = display_command(&cmd);
    let status = cmd
        .status()
        .map_err(|e| Error(format!("could not start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        fail(format!("`{shown}` failed ({status})"))
    }
}

fn quiet_success(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Replaces this process with `cmd` on Unix (so Ctrl-C and exit codes go
/// straight to the server); elsewhere runs it and mirrors its exit status.
#[cfg(unix)]
fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let shown = display_command(&cmd);
    let err = cmd.exec();
    fail(format!("could not start `{shown}`: {err}"))
}

#[cfg(not(unix))]
fn exec(cmd: Command) -> Result<()> {
    run_command(cmd)
}

fn display_command(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    std::iter::once(program)
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn step(what: &str) {
    println!("==> {what}");
}
