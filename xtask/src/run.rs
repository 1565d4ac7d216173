//! The `run` task: build the web app and `article-server` (release) and
//! replace this process with the server, serving the app with demo data.
//! With `--replicas N`, see `replicas.rs`.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::cargo::cargo;
use crate::error::{Result, fail};
use crate::process::{display_command, exec, step, target_dir, workspace_root};
use crate::web::build_web;

pub(crate) fn run(server_args: &[OsString]) -> Result<()> {
    let root = workspace_root();
    let (binary, static_dir) = build_app()?;

    let mut cmd = Command::new(&binary);
    cmd.current_dir(&root).arg("--demo-data");
    if let Some(dir) = &static_dir {
        cmd.arg("--static-dir").arg(dir);
    }
    cmd.args(server_args);

    step(&display_command(&cmd));
    exec(cmd)
}

/// Builds the web app (Trunk, release) and `article-server` (release);
/// returns the server binary and the app's folder (`web/dist`, if there is
/// one).
pub(crate) fn build_app() -> Result<(PathBuf, Option<PathBuf>)> {
    let root = workspace_root();

    let static_dir = match build_web()? {
        Some(dir) => Some(dir),
        None => {
            let dist = root.join("web").join("dist");
            dist.is_dir().then_some(dist)
        }
    };

    step("cargo build --release -p article-server");
    cargo(&["build", "--release", "-p", "article-server", "--locked"])?;

    let binary = target_dir(&root)
        .join("release")
        .join(format!("article-server{}", env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        return fail(format!("built server not found at {}", binary.display()));
    }
    Ok((binary, static_dir))
}
