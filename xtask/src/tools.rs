//! Finding and installing the tools the tasks need, each skipped when the
//! right version is already there: the `ensure-tools` task (rustfmt,
//! clippy, rust-src and the wasm32 target through rustup; the compiler
//! itself is pinned by `rust-toolchain.toml`), tools from `cargo install`
//! (trunk, wasm-bindgen-cli, geckodriver), from npm into `target/tools`
//! (wasm-opt from `binaryen`, protobuf-es; never global) and from apt-get
//! (chromium and chromedriver; postgresql and haproxy; nodejs and npm).
//! Installing through apt-get needs root.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cargo::{cargo, cargo_command, cargo_lock_version};
use crate::error::{Error, Result, fail};
use crate::process::{quiet_success, run_command, step, workspace_root};

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Installs the wasm32 target and the rustfmt, clippy and rust-src
/// components when they are missing. Does nothing (and needs no network)
/// when all are present.
pub(crate) fn ensure_tools() -> Result<()> {
    step("ensure tools (wasm32 target, rustfmt, clippy, rust-src)");

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

    ensure_rust_src_with(have_rustup)?;
    ensure_wasm_target_with(have_rustup)
}

/// Installs the `rust-src` component (std's source) through rustup if
/// missing.
pub(crate) fn ensure_rust_src() -> Result<()> {
    let have_rustup = quiet_success(Command::new("rustup").arg("--version"));
    ensure_rust_src_with(have_rustup)
}

/// std's source folder of the compiler that cargo runs here (the one
/// `rust-toolchain.toml` pins): `<sysroot>/lib/rustlib/src/rust/library`.
fn std_source_dir() -> Result<PathBuf> {
    let output = Command::new("rustc")
        .current_dir(workspace_root())
        .args(["--print", "sysroot"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error(format!("could not run `rustc --print sysroot`: {e}")))?;
    if !output.status.success() {
        return fail(format!(
            "`rustc --print sysroot` failed ({})",
            output.status
        ));
    }
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(PathBuf::from(sysroot)
        .join("lib")
        .join("rustlib")
        .join("src")
        .join("rust")
        .join("library"))
}

/// Installs the `rust-src` component (std's source) through rustup if
/// missing: the app's release build compiles std for wasm32 itself
/// (`-Zbuild-std`, see `web::build_web`).
fn ensure_rust_src_with(have_rustup: bool) -> Result<()> {
    // std's lock file is what `-Zbuild-std` resolves std's dependencies from.
    if std_source_dir()?.join("Cargo.lock").is_file() {
        println!("    rust-src: present");
        return Ok(());
    }
    if !have_rustup {
        return fail(
            "std's source (rust-src) is missing and rustup is not available to install it; \
             the web app's release build compiles std itself",
        );
    }
    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace_root())
        .args(["component", "add", "rust-src"]);
    run_command(cmd)
}

/// Installs the `wasm32-unknown-unknown` target through rustup if missing.
pub(crate) fn ensure_wasm_target() -> Result<()> {
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

/// `PATH` for the web tools: npm's `.bin` in `tools_dir` first (wasm-opt),
/// then cargo's bin folder (where `cargo install` puts trunk and
/// wasm-bindgen, even when it is not on the caller's `PATH`), then `PATH`.
pub(crate) fn tool_path(tools_dir: &Path) -> Result<OsString> {
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
pub(crate) fn find_tool(path: &OsStr, name: &str) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
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
pub(crate) fn ensure_cargo_tool(
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

/// npm `binaryen` whose `wasm-opt` reports `version_132`. Not Debian's
/// binaryen (108): Trunk accepts it, but the page it produces breaks.
const BINARYEN_VERSION: &str = "132.0.0";
pub(crate) const WASM_OPT_VERSION: &str = "version_132";

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
pub(crate) fn ensure_bindgen_and_opt(
    root: &Path,
    path: &OsStr,
    tools_dir: &Path,
) -> Result<String> {
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
pub(crate) fn ensure_protobuf_es(tools_dir: &Path) -> Result<PathBuf> {
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

/// Installs Node.js and npm with apt-get when `node` or `npm` is missing
/// (the benchmark's Connect for Node peer). Debian 12's `nodejs` is 18;
/// a newer Node already on `PATH` is used as it is.
pub(crate) fn ensure_node() -> Result<()> {
    let have_node = quiet_success(Command::new("node").arg("--version"));
    let have_npm = quiet_success(Command::new("npm").arg("--version"));
    if have_node && have_npm {
        println!("    node and npm: present");
        return Ok(());
    }
    apt_install(&["--no-install-recommends", "nodejs", "npm"])
}

/// Where Debian's `chromium-driver` puts chromedriver.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs `chromium` and `chromium-driver` with apt-get when chromedriver
/// is missing.
pub(crate) fn ensure_chromedriver() -> Result<()> {
    if Path::new(CHROMEDRIVER).is_file() {
        println!("    chromium and chromedriver: present");
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"])
}

/// Installs PostgreSQL's server binaries and HAProxy with apt-get when
/// either is missing (Debian; needs root). The tests and `run --replicas`
/// start their own throw-away PostgreSQL cluster and HAProxy; Debian's
/// default cluster (`main`) is never used, so if the package started it,
/// it is stopped again.
pub(crate) fn ensure_cluster_tools() -> Result<()> {
    let have_postgres = testkit::postgres::binaries().is_ok();
    let have_haproxy = quiet_success(Command::new("haproxy").arg("-v"));
    if have_postgres && have_haproxy {
        println!("    postgresql and haproxy: present");
        return Ok(());
    }
    apt_install(&["--no-install-recommends", "postgresql", "haproxy"])?;
    stop_default_clusters();
    testkit::postgres::binaries()
        .map(drop)
        .map_err(|e| Error(e.to_string()))
}

/// Stops any cluster Debian's postgresql-common started (`pg_lsclusters`
/// lists it `online`); without an init system it usually is not.
fn stop_default_clusters() {
    let Ok(listing) = Command::new("pg_lsclusters").arg("--no-header").output() else {
        return;
    };
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [version, name, _port, status, ..] = fields[..]
            && status.starts_with("online")
        {
            println!("    stopping Debian's default cluster {version}/{name} (not used)");
            let mut stop = Command::new("pg_ctlcluster");
            stop.args([version, name, "stop"]);
            let _ = run_command(stop);
        }
    }
}

/// `apt-get update`, then `apt-get install -y ARGS` without questions
/// (needs root); `ARGS` are packages and install options.
pub(crate) fn apt_install(args: &[&str]) -> Result<()> {
    let mut update = Command::new("apt-get");
    update.arg("update");
    run_command(update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_command(install)
}
