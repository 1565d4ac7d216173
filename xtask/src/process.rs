//! Running child processes and the paths they run in: the workspace root,
//! cargo's target directory, running a command with inherited stdio (or
//! replacing this process with it), showing a command as one line, and the
//! `==> step` lines every task prints.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result, fail};

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory, honouring `$CARGO_TARGET_DIR`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Runs `cmd` with inherited stdio; a spawn failure or non-zero exit is an error.
pub(crate) fn run_command(mut cmd: Command) -> Result<()> {
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

pub(crate) fn quiet_success(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Replaces this process with `cmd` on Unix (so Ctrl-C and exit codes go
/// straight to the server); elsewhere runs it and mirrors its exit status.
#[cfg(unix)]
pub(crate) fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let shown = display_command(&cmd);
    let err = cmd.exec();
    fail(format!("could not start `{shown}`: {err}"))
}

#[cfg(not(unix))]
pub(crate) fn exec(cmd: Command) -> Result<()> {
    run_command(cmd)
}

pub(crate) fn display_command(cmd: &Command) -> String {
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

pub(crate) fn step(what: &str) {
    println!("==> {what}");
}

/// `existing` (e.g. the caller's RUSTFLAGS) with `extra` appended.
pub(crate) fn append_flags(existing: Option<OsString>, extra: &str) -> OsString {
    match existing {
        Some(mut flags) if !flags.is_empty() => {
            flags.push(" ");
            flags.push(extra);
            flags
        }
        _ => extra.into(),
    }
}
