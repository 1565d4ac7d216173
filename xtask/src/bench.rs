//! The `bench` task: install the load generators and browser tools, build
//! the release binaries, the web app and the benchmark's wasm decode page,
//! and run `article-bench`, which measures and writes `BENCHMARKS.md`.
//! Benchmarks are not tests: this reports figures and checks nothing.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::USAGE;
use crate::cargo::{cargo, cargo_command};
use crate::error::{Error, Result};
use crate::process::{
    display_command, quiet_success, run_command, step, target_dir, workspace_root,
};
use crate::tools::{
    WASM_TARGET, apt_install, ensure_bindgen_and_opt, ensure_chromedriver, ensure_cluster_tools,
    ensure_node, ensure_protobuf_es, find_tool, tool_path,
};
use crate::web::{build_web, shipped_wasm_build};

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
///
/// For the cluster part (run unless `--only` names another part) it
/// installs PostgreSQL's server binaries and HAProxy (apt-get) when
/// missing; `article-bench` starts and stops its own throw-away cluster.
///
/// For the peers part (run unless `--only` names another part) it builds
/// the connect-rust and Connect for Node peers (`build_peers`).
///
/// The growth part runs only when named (`--only growth`: about an hour on
/// 2 cores); it installs PostgreSQL and the `sqlite3` shell when missing.
pub(crate) fn bench(args: &[OsString]) -> Result<()> {
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
        apt_install(&["nghttp2-client"])?;
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

    if only.as_deref().is_none_or(|part| part == "cluster") {
        step("ensure cluster benchmark tools (PostgreSQL, HAProxy)");
        ensure_cluster_tools()?;
    }
    // Only on request: it seeds through the stores' own shells.
    if only.as_deref() == Some("growth") {
        step("ensure growth benchmark tools (PostgreSQL, sqlite3)");
        ensure_cluster_tools()?;
        if quiet_success(Command::new("sqlite3").arg("--version")) {
            println!("    sqlite3: present");
        } else {
            apt_install(&["sqlite3"])?;
        }
    }

    let mut peer_args: Vec<OsString> = Vec::new();
    if only.as_deref().is_none_or(|part| part == "peers") {
        let (connect_rust, connect_node) = build_peers(&root)?;
        peer_args.extend(["--connect-rust-peer".into(), connect_rust.into_os_string()]);
        peer_args.extend(["--connect-node-peer".into(), connect_node.into_os_string()]);
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
        .args(&peer_args)
        .args(args);
    step(&display_command(&cmd));
    run_command(cmd)
}

/// Builds the peers of the `peers` part: `bench/peers/connect-rust` (its
/// own workspace and lock file, so `--manifest-path`, built in release
/// into `target/peers`) and `bench/peers/connect-node` (`npm ci`, after
/// installing Node.js and npm with apt-get when missing). Returns the
/// connect-rust binary and the Node peer's folder.
fn build_peers(root: &Path) -> Result<(PathBuf, PathBuf)> {
    step("build the peers (connect-rust in release, Connect for Node with npm ci)");
    let manifest = root
        .join("bench")
        .join("peers")
        .join("connect-rust")
        .join("Cargo.toml");
    let peers_target = target_dir(root).join("peers");
    let mut build = cargo_command();
    build
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&peers_target);
    run_command(build)?;
    let connect_rust = peers_target
        .join("release")
        .join(format!("connect-rust-peer{}", env::consts::EXE_SUFFIX));

    ensure_node()?;
    let connect_node = root.join("bench").join("peers").join("connect-node");
    let mut npm = Command::new("npm");
    npm.current_dir(&connect_node)
        .args(["ci", "--no-audit", "--no-fund"]);
    run_command(npm)?;
    Ok((connect_rust, connect_node))
}

/// Builds `bench/wasm-decode` (prost decoding in the browser) the way Trunk
/// builds the app: the `wasm-release` profile with the same std rebuild
/// and flags (`web::shipped_wasm_build`; so the shared wasm32 dependencies
/// are compiled once for both, after `build_web` fetched std's), then
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
        .args(["--profile", "wasm-release", "--locked"]);
    shipped_wasm_build(&mut build);
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
