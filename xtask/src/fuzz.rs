//! The `fuzz` task: builds the cargo-fuzz targets of `fuzz/` and runs each
//! for a while, starting from the seed corpus in `fuzz/seeds/<target>/`
//! (which holds every input that once crashed a target, so a brief run is
//! also the regression test). `cargo xtask test` runs each target briefly;
//! `cargo xtask fuzz --secs 3600 --release` is a long run.
//!
//! Builds use `--sanitizer none` on the machine's stable toolchain: the
//! code is safe Rust (`unsafe_code = "forbid"`), so what the fuzzer looks
//! for is a panic, a hang or a runaway allocation, which libFuzzer catches
//! without AddressSanitizer — and without it the targets run 4 to 10 times
//! faster and need no nightly compiler.

use std::ffi::OsString;
use std::fs;

use crate::cargo::cargo_command;
use crate::error::{Error, Result, fail};
use crate::process::{display_command, run_command, step, target_dir, workspace_root};
use crate::tools::{ensure_cargo_tool, tool_path};

/// Pinned like the other tools; `cargo install --locked` builds it in
/// about a minute.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every target in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: &[&str] = &["runtime_request", "grpc_web_text", "import_reader"];

#[derive(Debug)]
pub(crate) struct FuzzOptions {
    /// Seconds per target.
    pub(crate) secs: u64,
    /// Optimised build (for long runs); the default is a quick-to-build
    /// unoptimised one.
    pub(crate) release: bool,
    pub(crate) targets: Vec<String>,
    pub(crate) help: bool,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            secs: 10,
            release: false,
            targets: Vec::new(),
            help: false,
        }
    }
}

impl FuzzOptions {
    pub(crate) fn parse(args: &[OsString]) -> Result<Self> {
        let mut opts = Self::default();
        let mut iter = args.iter().map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "-h" | "--help" => opts.help = true,
                "--release" => opts.release = true,
                "--secs" => {
                    let value = iter.next().unwrap_or_default();
                    opts.secs = match value.parse() {
                        Ok(secs) if secs > 0 => secs,
                        _ => {
                            return fail(format!(
                                "--secs needs a number of seconds > 0, got `{value}`"
                            ));
                        }
                    };
                }
                target if TARGETS.contains(&target) => opts.targets.push(target.to_owned()),
                other => {
                    return fail(format!(
                        "unexpected argument `{other}` (targets: {})",
                        TARGETS.join(", ")
                    ));
                }
            }
        }
        Ok(opts)
    }
}

pub(crate) fn fuzz(opts: &FuzzOptions) -> Result<()> {
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let target = target_dir(&root).join("fuzz");
    let profile = if opts.release { "--release" } else { "--dev" };

    step("cargo-fuzz");
    let path = tool_path(&root.join("target").join("tools"))?;
    ensure_cargo_tool(
        &path,
        "cargo-fuzz",
        CARGO_FUZZ_VERSION,
        &[
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
        ],
    )?;

    step(&format!("cargo fuzz build {profile} --sanitizer none"));
    let mut build = cargo_command();
    build
        .current_dir(&fuzz_dir)
        .env("PATH", &path)
        .args([
            "fuzz",
            "build",
            profile,
            "--sanitizer",
            "none",
            "--target-dir",
        ])
        .arg(&target);
    run_command(build)?;

    let targets: Vec<&str> = if opts.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        opts.targets.iter().map(String::as_str).collect()
    };
    for name in targets {
        // New inputs go to a working corpus under target/; the seeds in the
        // repository are only read.
        let corpus = target.join("corpus").join(name);
        fs::create_dir_all(&corpus)
            .map_err(|e| Error(format!("cannot create {}: {e}", corpus.display())))?;
        let seeds = fuzz_dir.join("seeds").join(name);
        step(&format!("fuzz {name} for {} s", opts.secs));
        let mut run = cargo_command();
        run.current_dir(&fuzz_dir)
            .env("PATH", &path)
            .args([
                "fuzz",
                "run",
                profile,
                "--sanitizer",
                "none",
                "--target-dir",
            ])
            .arg(&target)
            .arg(name)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={}", opts.secs))
            // A hang or a runaway allocation is a finding too.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1");
        println!("    {}", display_command(&run));
        if let Err(e) = run_command(run) {
            return fail(format!(
                "fuzz target {name} failed: {e}\n\
                 the input that failed is in fuzz/artifacts/{name}/; add it to \
                 fuzz/seeds/{name}/ with a regression test, then fix the code"
            ));
        }
    }
    Ok(())
}
