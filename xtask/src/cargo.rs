//! Calling cargo and reading what it records: the cargo binary (`$CARGO`,
//! else `cargo` on `$PATH`) run from the workspace root, versions from
//! Cargo.lock, and `cargo test` runs whose `test result:` lines are counted
//! across the whole task (cargo's own summary covers only its last binary).

use std::env;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use crate::error::{Error, Result, fail};
use crate::process::{display_command, run_command, workspace_root};

pub(crate) fn cargo_command() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn cargo<S: AsRef<OsStr>>(args: &[S]) -> Result<()> {
    let mut cmd = cargo_command();
    cmd.args(args);
    run_command(cmd)
}

/// The version of `package` recorded in the workspace's Cargo.lock.
pub(crate) fn cargo_lock_version(root: &Path, package: &str) -> Result<String> {
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

/// Passed, failed and skipped tests over every `cargo test` run of this
/// task; `test` ends with one line of them, because cargo's own last line
/// only speaks of its last test binary (often doc tests).
static TEST_COUNTS: [std::sync::atomic::AtomicU64; 3] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Prints `tests: N passed, N failed, N skipped` over all runs so far.
pub(crate) fn print_test_counts() {
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
pub(crate) fn cargo_test_counted<S: AsRef<OsStr>>(
    args: &[S],
    envs: &[(&str, &OsStr)],
) -> Result<()> {
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
