//! Project automation, invoked as `cargo xtask <task>` (see the alias in
//! `.cargo/config.toml`). Only the standard library is used so that this
//! crate compiles in a second or two.
//!
//! Tasks:
//!
//! * `cargo xtask test [--skip-lint] [-- CARGO_TEST_ARGS...]` — the one
//!   command that runs every check the project has:
//!   1. ensures the toolchain pieces exist (the `wasm32-unknown-unknown`
//!      target and the `rustfmt` / `clippy` / `rust-src` components of the
//!      compiler `rust-toolchain.toml` pins), installing any that are
//!      missing through `rustup`; tools already present are left alone,
//!      so this is idempotent and cheap on a warm machine;
//!   2. `cargo fmt --all -- --check`;
//!   3. `cargo clippy --workspace --all-targets -- -D warnings` (native);
//!   4. clippy for `article-proto`, `article-web`, `grpc-browser` and
//!      `article-wasm-decode` (the benchmark's decode module) on
//!      `wasm32-unknown-unknown`;
//!   5. (the wasm32 crates are built by steps 8 and 9, not separately);
//!   6. `cargo test --workspace --exclude article-web`, passing through any
//!      arguments given after `--` (e.g. `cargo xtask test -- --nocapture`).
//!   7. the black-box API suite again (`-p article-tests --test api`), every
//!      test server on its own database of a throw-away PostgreSQL cluster
//!      started under `target/pg-test` (`ARTICLE_TEST_POSTGRES`), then the
//!      cluster suite (`--features cluster --test cluster`); step 1
//!      installs PostgreSQL and HAProxy with apt-get when missing (also the
//!      hidden task `cargo xtask postgres-tests [-- ARGS...]`);
//!   8. the browser tests (`browser/tests/`, `web/tests/`) in headless
//!      Chromium and Firefox against real servers; see `browser_tests.rs`
//!      (also the hidden task `cargo xtask browser-tests`).
//!   9. the end-to-end UI tests (`tests/tests/e2e/`) driving the release
//!      build of the app in headless Chromium over WebDriver; see
//!      `e2e.rs` (also the hidden task `cargo xtask e2e`).
//!  10. each cargo-fuzz target of `fuzz/` for 10 seconds from its seed
//!      corpus (`cargo xtask fuzz`, see `fuzz.rs`).
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
//! * `cargo xtask run --replicas N [--listen ADDR] [-- SERVER_ARGS...]` —
//!   the same build, then N replicas on one fresh PostgreSQL behind HAProxy
//!   (`deploy/haproxy.cfg`) on ADDR; see `replicas.rs`. Without
//!   `--replicas`, `run` is as above.
//!
//! * `cargo xtask ensure-tools` (hidden) — only step 1 of `test`.
//!
//! The cargo binary is taken from `$CARGO` (set by cargo when it runs the
//! alias), falling back to `cargo` on `$PATH`. Child processes inherit stdio
//! and run from the workspace root.
//!
//! This file holds only the argument dispatch and the usage text; each task
//! lives in its own module (`test`, `browser_tests`, `e2e`, `run`,
//! `replicas`, `bench`,
//! and `ensure-tools` in `tools`), and what several tasks share in `error`
//! (the one error type), `process` (running and showing commands, paths),
//! `cargo` (cargo invocations, Cargo.lock, counting test results), `tools`
//! (finding and installing tools) and `web` (building the web app).

mod bench;
mod browser_tests;
mod cargo;
mod e2e;
mod error;
mod fuzz;
mod process;
mod replicas;
mod run;
mod soak;
mod test;
mod tools;
mod web;

use std::env;
use std::ffi::OsString;
use std::process::ExitCode;

use crate::cargo::print_test_counts;
use crate::error::{Result, fail};
use crate::test::TestOptions;

pub(crate) const USAGE: &str = "\
Project automation for the article server workspace.

USAGE:
    cargo xtask <TASK> [OPTIONS] [-- ARGS...]

TASKS:
    test    Ensure tools, check formatting, run clippy (native and wasm32),
            build the wasm32 crates and run the whole test suite (the API
            suite twice: on SQLite, then on a throw-away PostgreSQL; the
            cluster suite; browser and end-to-end tests; each fuzz target
            for 10 s).
              --skip-lint   skip rustfmt and clippy (quick local runs)
              -- ARGS...    passed to `cargo test` (e.g. -- --nocapture)
    ci      Same as `test`; used by .ci/run.
    run     Build the web app (Trunk, release) and article-server (release),
            then start the server with demo data, serving the app.
              [--] ARGS...  extra arguments passed to article-server
    run --replicas N [--listen ADDR] [-- ARGS...]
            The same app as N replicas on one fresh PostgreSQL (under
            target/replicas/) behind HAProxy (deploy/haproxy.cfg) on ADDR
            (default 127.0.0.1:8080; port 0 picks one). Installs postgresql
            and haproxy with apt-get if missing. Prints HAProxy's URL and
            one write token shared by all replicas; Ctrl-C (or SIGTERM)
            drains the replicas, then stops HAProxy and PostgreSQL.
              -- ARGS...    extra arguments passed to every replica
    bench   Install oha, h2load and a Python grpcio venv if missing, build
            release binaries, the web app and the decode page, and run the
            benchmarks (servers and headless Chromium) into BENCHMARKS.md.
              --quick       short smoke run (writes target/bench/ instead)
              [--] ARGS...  passed to article-bench (see its --help),
                            e.g. -- --only browser (parts: unary, server,
                            streaming, browser, cluster, peers; only
                            when named: overload, growth, writes)
    soak [--minutes N]
            Build release binaries and run N minutes (default 30) of mixed
            traffic (reads, writes, watches opening and closing; gRPC and
            gRPC-web) against one server: RSS growth after the warm-up, open
            files, failed calls, and the curve in target/bench/soak.csv.
    fuzz [--secs N] [--release] [TARGET...]
            Build the cargo-fuzz targets of fuzz/ (installing cargo-fuzz if
            missing) and run each for N seconds (default 10) from the seed
            corpus fuzz/seeds/TARGET; a crash fails with the input saved in
            fuzz/artifacts/TARGET/. --release for long runs. Targets:
            runtime_request, grpc_web_text, import_reader (default: all).
    help    Print this message (also -h, --help).

Missing toolchain pieces (the wasm32-unknown-unknown target, rustfmt,
clippy, rust-src) are installed through rustup automatically, and `run` installs
trunk, wasm-bindgen-cli (cargo install) and wasm-opt (npm) when missing;
`test` and `run --replicas` install postgresql and haproxy (apt-get);
present ones are kept.
";

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
            let result = test::test(&opts);
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
            match replicas::ReplicaOptions::parse(rest)? {
                Some(opts) => replicas::run_replicas(&opts),
                None => run::run(server_args),
            }
        }
        "bench" => bench::bench(rest),
        "soak" => soak::soak(rest),
        "fuzz" => {
            let opts = fuzz::FuzzOptions::parse(rest)?;
            if opts.help {
                print!("{USAGE}");
                return Ok(());
            }
            fuzz::fuzz(&opts)
        }
        "ensure-tools" => tools::ensure_tools(),
        "browser-tests" => browser_tests::browser_tests(),
        "e2e" => e2e::e2e_tests(),
        "postgres-tests" => {
            tools::ensure_cluster_tools()?;
            test::postgres_tests(&TestOptions::parse(rest)?)?;
            print_test_counts();
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            fail(format!("unknown task `{other}` (see `cargo xtask --help`)"))
        }
    }
}
