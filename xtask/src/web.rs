//! Building the browser app (`web/`) with Trunk in release mode into
//! `web/dist`, for `run`, `e2e` and `bench`, then writing its brotli and
//! gzip variants (`X.br`, `X.gz`) beside the files for the runtime's
//! static app to send. Installs the pinned Trunk, wasm-bindgen CLI and
//! wasm-opt first (see `tools`).
//!
//! This is the one place the shipped app is built (`run`, the end-to-end
//! tests and `bench` all call [`build_web`]), and the only build in the
//! workspace that uses unstable compiler flags: see [`SIZE_FLAGS`].

use std::env;
use std::path::PathBuf;
use std::process::Command;

use crate::cargo::{cargo, cargo_command};
use crate::error::{Result, fail};
use crate::process::{append_flags, display_command, run_command, step, workspace_root};
use crate::tools::{
    WASM_OPT_VERSION, WASM_TARGET, ensure_bindgen_and_opt, ensure_cargo_tool, ensure_rust_src,
    ensure_wasm_target, tool_path,
};

/// Trunk 0.21.14 is the newest that builds with Rust 1.95 (0.22 needs newer).
const TRUNK_VERSION: &str = "0.21.14";

/// std rebuilt for the app (`-Zbuild-std`): with `panic_abort`, for
/// `-Cpanic=immediate-abort` below.
const BUILD_STD: &str = "std,panic_abort";
/// std's own size features for that rebuild.
const BUILD_STD_FEATURES: &str = "optimize_for_size";

/// The compiler flags of the app's release build, all on the wasm32 crates
/// only (Trunk passes `--target`, so build scripts and proc macros do not
/// get them), in their own `wasm-release` profile:
///
/// - `--cfg erase_components`: Leptos type-erases components and reactive
///   closures, about 5 % less wasm;
/// - `-Cpanic=immediate-abort` (with std rebuilt by `-Zbuild-std`, which
///   needs the `rust-src` component): a panic is a bare `unreachable` trap,
///   so no panic message formatting, no panic hook, and none of std's
///   panic machinery is in the wasm (and no panic locations: source paths
///   were ~10 KB of the data section);
/// - `-Zfmt-debug=none`: `{:?}` writes nothing, so no `Debug` code is
///   kept (3.9 KB gzip). Nothing the app shows comes from `Debug`: what
///   reached a page (`grpc_browser::Error`'s text, its transport's
///   messages) is written out by hand. Tests build without these flags.
///
/// With std's `optimize_for_size` they take wasm + JS from 205.8 to about
/// 179 KB gzip (BENCHMARKS.md, "The bundle, fourth round"; measured and
/// not kept there: `-Zlocation-detail=none` and `-Zfmt-debug=shallow`,
/// under 0.1 KB each once panics abort). They are unstable flags, accepted by the
/// stable compiler only with `RUSTC_BOOTSTRAP=1`, which is why
/// `rust-toolchain.toml` pins the exact compiler they were tried with, and
/// why the variable is set on the Trunk command and std's fetch here and
/// nowhere else: the workspace's own build, tests and clippy stay plain
/// stable Rust.
const SIZE_FLAGS: &str =
    "--cfg erase_components -Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none";

/// Sets what the app's release build needs beyond stable cargo on `cmd`
/// (a `cargo fetch` or the Trunk build): std rebuilt with its size
/// features, and the permission to use unstable flags for that one build.
fn build_std_env(cmd: &mut Command) -> &mut Command {
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_UNSTABLE_BUILD_STD", BUILD_STD)
        .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", BUILD_STD_FEATURES)
}

/// Sets the shipped app's wasm32 build on `cmd` (Trunk, or a `cargo build
/// --target wasm32-unknown-unknown --profile wasm-release` of another wasm
/// crate measured beside it): [`build_std_env`] and [`SIZE_FLAGS`]. Needs
/// std's dependencies fetched, as [`build_web`] does first.
pub(crate) fn shipped_wasm_build(cmd: &mut Command) -> &mut Command {
    build_std_env(cmd).env(
        "RUSTFLAGS",
        append_flags(env::var_os("RUSTFLAGS"), SIZE_FLAGS),
    )
}

/// Builds the browser app in release mode and returns the folder to serve.
///
/// Installs what is missing first (each step is skipped when the right
/// version is already there): the wasm32 target, std's source (`rust-src`),
/// Trunk, the wasm-bindgen CLI at exactly the version of the `wasm-bindgen`
/// crate in Cargo.lock, and wasm-opt from npm into `target/tools`. Then
/// `cargo fetch` of the workspace's and of std's dependencies (Trunk builds
/// `--offline`, see `Trunk.toml`) and `trunk build --release` with
/// [`SIZE_FLAGS`], which writes `web/dist`. Last, the runtime's precompress
/// example (`grpc_runtime::precompress`, release: brotli at quality 11 is
/// slow unoptimised) writes `X.br` and `X.gz` beside each file; xtask runs it
/// through cargo instead of linking a compressor itself.
pub(crate) fn build_web() -> Result<Option<PathBuf>> {
    let root = workspace_root();
    step("build the web app (trunk build --release)");
    ensure_wasm_target()?;
    ensure_rust_src()?;

    let tools_dir = root.join("target").join("tools");
    let path = tool_path(&tools_dir)?;
    ensure_cargo_tool(
        &path,
        "trunk",
        TRUNK_VERSION,
        &["install", "trunk", "--version", TRUNK_VERSION, "--locked"],
    )?;
    let bindgen_version = ensure_bindgen_and_opt(&root, &path, &tools_dir)?;

    step("cargo fetch (Trunk builds offline), then std's own dependencies");
    cargo(&["fetch", "--locked"])?;
    // With `-Zbuild-std`, cargo resolves std's dependencies (dlmalloc,
    // hashbrown, ...) from rust-src's own lock file and fetches those.
    let mut fetch_std = cargo_command();
    build_std_env(&mut fetch_std).args(["fetch", "--locked", "--target", WASM_TARGET]);
    run_command(fetch_std)?;

    let mut cmd = Command::new("trunk");
    shipped_wasm_build(
        cmd.current_dir(&root)
            .args(["build", "--release"])
            .env("PATH", &path)
            // Trunk.toml names the version too; Cargo.lock is the authority.
            .env("TRUNK_TOOLS_WASM_BINDGEN", &bindgen_version)
            .env("TRUNK_TOOLS_WASM_OPT", WASM_OPT_VERSION),
    );
    step(&format!(
        "RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD={BUILD_STD} \
         CARGO_UNSTABLE_BUILD_STD_FEATURES={BUILD_STD_FEATURES} RUSTFLAGS=\"{SIZE_FLAGS}\" {}",
        display_command(&cmd)
    ));
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
