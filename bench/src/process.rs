//! Systems under test as child processes, on the test kit's
//! [`ServerProcess`]: ready when they print `listening on http://HOST:PORT`
//! (every server in the benchmark prints that line, the real one
//! included), stderr to a log file, stopped with SIGTERM. Optionally pinned
//! to CPUs with `taskset`.

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::Context as _;
use testkit::{ServerProcess, Stderr};
use tokio::process::Command;

/// How long a server may take to print its listening line (a release
/// build seeding its database can be slow on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may drain after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

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

/// A running server. Dropping it kills the process.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub pid: u32,
    /// What it printed before its listening line (a server with a second
    /// port names it there).
    pub before_listening: Vec<String>,
    process: ServerProcess,
}

impl Server {
    /// Spawns `cmd` (stderr to `log`) and waits for its listening line.
    pub async fn start(name: &str, cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let mut process = ServerProcess::try_start(cmd, Stderr::File(log.into()), START_TIMEOUT)
            .await
            .with_context(|| format!("starting {name}"))?;
        // Nothing more is read from stdout; keep draining it so the child
        // never blocks on a full pipe.
        process.discard_stdout();
        Ok(Self {
            name: name.to_owned(),
            addr: process.addr(),
            pid: process.pid(),
            before_listening: process.before_listening().to_vec(),
            process,
        })
    }

    /// SIGTERM, then SIGKILL if it has not exited within 15 s.
    pub async fn stop(self) -> anyhow::Result<()> {
        let name = self.name;
        self.process
            .stop(STOP_GRACE)
            .await
            .with_context(|| format!("stopping {name}"))
    }
}
