//! Building the browser app (`web/`) with Trunk in release mode into
//! `web/dist`, for `run`, `e2e` and `bench`, then writing its brotli and
//! gzip variants (`X.br`, `X.gz`) beside the files for the runtime's
//! static app to send. Installs the pinned Trunk, wasm-bindgen CLI and
//! wasm-opt first (see `tools`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use crate::cargo::cargo;
use crate::error::{Result, fail};
use crate::process::{append_flags, display_command, run_command, step, workspace_root};
use crate::tools::{
    WASM_OPT_VERSION, ensure_bindgen_and_opt, ensure_cargo_tool, ensure_wasm_target, tool_path,
};

/// Trunk 0.21.14 is the newest that builds with Rust 1.95 (0.22 needs newer).
const TRUNK_VERSION: &str = "0.21.14";

/// Builds the browser app in release mode and returns the folder to serve.
///
/// Installs what is missing first (each step is skipped when the right
/// version is already there): the wasm32 target, Trunk, the wasm-bindgen
/// CLI at exactly the version of the `wasm-bindgen` crate in Cargo.lock,
/// and wasm-opt from npm into `target/tools`. Then `cargo fetch` (Trunk
/// builds `--offline`, see `Trunk.toml`) and `trunk build --release`,
/// which writes `web/dist`. Last, the runtime's precompress example
/// (`grpc_runtime::precompress`, release: brotli at quality 11 is slow
/// unoptimised) writes `X.br` and `X.gz` beside each file; xtask runs it
/// through cargo instead of linking a compressor itself.
pub(crate) fn build_web() -> Result<Option<PathBuf>> {
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

    step("precompress web/dist (brotli 11 and gzip 9 beside each file)");
    let mut args = vec![
        "run",
        "--release",
        "--locked",
        "--quiet",
        "-p",
        "grpc-runtime",
        "--features",
        "precompress",
        "--example",
        "precompress",
        "--",
    ]
    .into_iter()
    .map(std::ffi::OsString::from)
    .collect::<Vec<_>>();
    args.push(dist.clone().into_os_string());
    cargo(&args)?;
    Ok(Some(dist))
}
