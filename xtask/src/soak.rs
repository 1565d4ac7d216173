//! The `soak` task: builds `article-server` and the `soak` client
//! (`bench/src/bin/soak.rs`) in release mode and runs 30 minutes (or
//! `--minutes N`) of mixed traffic against one server, printing the
//! verdicts (RSS growth after the warm-up, open files, failed calls) and a
//! minute-by-minute table; the whole curve goes to `target/bench/soak.csv`.
//! A measurement, like `bench`: not part of `cargo xtask test`.

use std::ffi::OsString;
use std::process::Command;

use crate::cargo::cargo;
use crate::error::{Error, Result, fail};
use crate::process::{run_command, step, target_dir, workspace_root};

pub(crate) fn soak(args: &[OsString]) -> Result<()> {
    let mut minutes = "30".to_owned();
    let mut iter = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--minutes" => match iter.next() {
                Some(n) if n.parse::<u64>().is_ok_and(|n| n >= 2) => minutes = n,
                other => {
                    return fail(format!("--minutes needs a whole number ≥ 2, got {other:?}"));
                }
            },
            other => return fail(format!("unexpected argument `{other}` (only --minutes N)")),
        }
    }
    let root = workspace_root();
    let target = target_dir(&root);
    step(
        "cargo build --release -p article-server -p article-bench --bin article-server --bin soak",
    );
    cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "article-server",
        "-p",
        "article-bench",
        "--bin",
        "article-server",
        "--bin",
        "soak",
    ])?;
    let out = target.join("bench");
    std::fs::create_dir_all(&out)
        .map_err(|e| Error(format!("cannot create {}: {e}", out.display())))?;
    let warmup = if minutes.parse::<u64>().unwrap_or(30) >= 10 {
        "5"
    } else {
        "1"
    };
    step(&format!(
        "soak: {minutes} minutes of mixed traffic ({warmup}-minute warm-up)"
    ));
    let mut run = Command::new(target.join("release").join("soak"));
    run.current_dir(&root)
        .arg("--server-bin")
        .arg(target.join("release").join("article-server"))
        .args(["--minutes", &minutes, "--warmup-minutes", warmup])
        .arg("--out")
        .arg(out.join("soak.csv"));
    run_command(run)
}
