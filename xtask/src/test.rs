//! The `test` task (also `ci`): every check the project has, in order —
//! tools, rustfmt, clippy (native and wasm32), the wasm32 builds, `cargo
//! test`, the API suite again against PostgreSQL and the cluster suite, the
//! browser tests, the end-to-end tests and brief fuzz runs — ending with one
//! line of test counts. Stops at the first failing step.

use std::ffi::OsString;

use crate::browser_tests::browser_tests;
use crate::cargo::{cargo, cargo_test_counted, print_test_counts};
use crate::e2e::e2e_tests;
use crate::error::{Result, fail};
use crate::fuzz::{FuzzOptions, fuzz};
use crate::process::{step, target_dir, workspace_root};
use crate::replicas::start_cluster;
use crate::tools::{WASM_TARGET, ensure_cluster_tools, ensure_tools};

#[derive(Debug, Default)]
pub(crate) struct TestOptions {
    pub(crate) skip_lint: bool,
    pub(crate) help: bool,
    pub(crate) test_args: Vec<OsString>,
}

impl TestOptions {
    pub(crate) fn parse(args: &[OsString]) -> Result<Self> {
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

pub(crate) fn test(opts: &TestOptions) -> Result<()> {
    ensure_tools()?;
    ensure_cluster_tools()?;

    if opts.skip_lint {
        step("skipping rustfmt and clippy (--skip-lint)");
    } else {
        step("cargo fmt --check");
        cargo(&["fmt", "--all", "--", "--check"])?;
        cargo(&["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"])?;

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

        step(
            "cargo clippy (wasm32: article-proto, article-web, grpc-browser, article-wasm-decode)",
        );
        cargo(&[
            "clippy",
            "-p",
            "article-proto",
            "-p",
            "article-web",
            "-p",
            "grpc-browser",
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

    // No separate wasm32 builds: clippy above has type-checked the wasm32
    // crates, the browser tests build them for the tests, and the
    // end-to-end step builds the app with Trunk (a cold CI run is the
    // budget these minutes count against).

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

    postgres_tests(opts)?;

    browser_tests()?;

    e2e_tests()?;

    fuzz(&FuzzOptions::default())?;

    print_test_counts();
    step("all checks passed");
    Ok(())
}

/// The tests of the PostgreSQL path: the black-box API suite once more,
/// every test server on a fresh database of one throw-away PostgreSQL
/// cluster (started under `target/`, removed afterwards; about a second),
/// then the cluster suite, whose tests each start their own PostgreSQL,
/// replica processes (the `article-server` the workspace step built) and
/// HAProxy.
pub(crate) fn postgres_tests(opts: &TestOptions) -> Result<()> {
    step("PostgreSQL cluster for the tests");
    // In the test run's process group: an interrupted run stops it too.
    let cluster = start_cluster(&target_dir(&workspace_root()).join("pg-test"), false)?;
    let url = cluster.url("postgres");
    println!("    {url}");
    let env = [(POSTGRES_VAR, std::ffi::OsStr::new(&url))];

    step("cargo test -p article-tests --test api (against PostgreSQL)");
    cargo_test_counted(
        &with_test_args(&["test", "-p", "article-tests", "--test", "api"], opts),
        &env,
    )?;
    drop(cluster);

    step("cargo test -p article-tests --features cluster --test cluster (replicas, HAProxy)");
    cargo_test_counted(
        &with_test_args(
            &[
                "test",
                "-p",
                "article-tests",
                "--features",
                "cluster",
                "--test",
                "cluster",
            ],
            opts,
        ),
        &[],
    )
}

/// `command` with `--locked`, then the caller's arguments for the test
/// binaries (after `--`).
fn with_test_args(command: &[&str], opts: &TestOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = command.iter().map(OsString::from).collect();
    args.push("--locked".into());
    if !opts.test_args.is_empty() {
        args.push("--".into());
        args.extend(opts.test_args.iter().cloned());
    }
    args
}

/// What `testkit::article` reads to run its servers on PostgreSQL.
const POSTGRES_VAR: &str = "ARTICLE_TEST_POSTGRES";
