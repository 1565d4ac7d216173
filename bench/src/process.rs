//! Systems under test as child processes: started with stdout piped,
//! ready when they print `listening on http://HOST:PORT` (every server in
//! the benchmark prints that line, the real one included), stopped with
//! SIGTERM. Optionally pinned to CPUs with `taskset`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The line every server prints once it accepts connections.
pub const LISTENING: &str = "listening on http://";

/// A command, run under `taskset -c CPUS` when `cpus` is given.
pub fn command(program: impl AsRef<std::ffi::OsStr>, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpus).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// A running server.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Spawns `cmd` (stderr to `log`) and waits for its listening line.
    pub async fn start(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("child has no pid")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.trim().strip_prefix(LISTENING) {
                    let addr: SocketAddr = rest
                        .trim_end_matches('/')
                        .parse()
                        .with_context(|| format!("{name} printed {line:?}"))?;
                    return Ok(addr);
                }
            }
            bail!("{name} exited before listening")
        };
        let addr = match tokio::time::timeout(Duration::from_secs(120), wait).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(err)) => return Err(err.context(tail(log))),
            Err(_) => bail!(
                "{name} did not print its listening line in 120 s{}",
                tail(log)
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            name: name.to_owned(),
            addr,
            pid,
            child,
            log: log.to_owned(),
        })
    }

    /// SIGTERM, then SIGKILL if it has not exited within 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!("{} had already exited{}", self.name, tail(&self.log));
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// The last lines of a log file, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(10);
    if lines.is_empty() {
        String::new()
    } else {
        format!("\n--- {} ---\n{}", log.display(), lines[start..].join("\n"))
    }
}
