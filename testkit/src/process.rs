//! A server binary as a child process: started with stdout piped, ready
//! once it prints its [`listening`](crate::listening) line, killed when its
//! guard drops (so a failing test or an aborted benchmark leaves no server
//! behind).

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    task::JoinHandle,
};
use tonic::transport::{Channel, Endpoint};

use crate::{TIMEOUT, listening};

/// Where a child's stderr goes.
#[derive(Clone, Debug)]
pub enum Stderr {
    /// Kept in memory, for [`ServerProcess::stderr`].
    Capture,
    /// Written to this file (long runs with many log lines).
    File(PathBuf),
}

/// A running server process. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pid: u32,
    url: String,
    addr: SocketAddr,
    before_listening: Vec<String>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    log: Option<PathBuf>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl ServerProcess {
    /// Spawns `command` with stderr captured and waits (bounded by
    /// [`TIMEOUT`]) for its listening line; panics with the child's stderr
    /// if none comes. The line is the readiness signal: no sleeping.
    pub async fn start(command: Command) -> Self {
        match Self::try_start(command, Stderr::Capture, TIMEOUT).await {
            Ok(server) => server,
            Err(err) => panic!("the server did not start: {err:#}"),
        }
    }

    /// Spawns `command` (stdin null, stdout piped, stderr to `stderr`) and
    /// waits up to `within` for a `listening on URL` line. Lines printed
    /// before it are kept ([`before_listening`](Self::before_listening)).
    pub async fn try_start(
        mut command: Command,
        stderr: Stderr,
        within: Duration,
    ) -> anyhow::Result<Self> {
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let log = match &stderr {
            Stderr::Capture => {
                command.stderr(Stdio::piped());
                None
            }
            Stderr::File(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                command.stderr(file);
                Some(path.clone())
            }
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let pid = child.id().context("a running child has a pid")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        let captured = Arc::new(Mutex::new(String::new()));
        let stderr_reader = child.stderr.take().map(|pipe| {
            let sink = captured.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            })
        });
        let mut server = Self {
            child,
            pid,
            url: String::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            before_listening: Vec::new(),
            stdout: Some(stdout),
            stderr: captured,
            stderr_reader,
            log,
        };
        match tokio::time::timeout(within, server.read_listening_line()).await {
            Ok(Ok(())) => Ok(server),
            Ok(Err(err)) => Err(err.context(format!("{program}{}", server.stderr_tail()))),
            Err(_) => bail!(
                "{program} printed no listening line within {within:?}{}",
                server.stderr_tail()
            ),
        }
    }

    async fn read_listening_line(&mut self) -> anyhow::Result<()> {
        let stdout = self.stdout.as_mut().context("stdout is read")?;
        while let Some(line) = stdout.next_line().await? {
            let Some(url) = listening::url(&line) else {
                self.before_listening.push(line);
                continue;
            };
            let addr = listening::socket_addr(url)
                .with_context(|| format!("the listening line names no address: {line:?}"))?;
            if addr.port() == 0 {
                bail!("the listening line names port 0, not the real port: {line:?}");
            }
            self.url = url.trim_end_matches('/').to_owned();
            self.addr = addr;
            return Ok(());
        }
        // The child is (nearly) gone: let its last words reach the message.
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        match status {
            Ok(status) => bail!("stdout ended without a listening line (exit: {})", status?),
            Err(_) => bail!("stdout ended without a listening line"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The URL of the listening line, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address of the listening line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The stdout lines printed before the listening line.
    pub fn before_listening(&self) -> &[String] {
        &self.before_listening
    }

    /// The next stdout line (bounded by [`TIMEOUT`]), or `None` at the end
    /// of stdout.
    pub async fn next_stdout_line(&mut self) -> Option<String> {
        let stdout = self
            .stdout
            .as_mut()
            .expect("stdout is still read by the test");
        tokio::time::timeout(TIMEOUT, stdout.next_line())
            .await
            .expect("the server writes its stdout line in time")
            .expect("stdout is readable")
    }

    /// Everything left on stdout, once the process has exited.
    pub async fn rest_of_stdout(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.next_stdout_line().await {
            rest.push(line);
        }
        rest
    }

    /// Reads and discards stdout from now on, so a chatty child never
    /// blocks on a full pipe.
    pub fn discard_stdout(&mut self) {
        if let Some(mut lines) = self.stdout.take() {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }

    /// Stderr so far (the captured text, or the log file's contents).
    pub fn stderr(&self) -> String {
        match &self.log {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => self
                .stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// All of stderr, once the process has exited.
    pub async fn full_stderr(&mut self) -> String {
        if let Some(reader) = self.stderr_reader.take() {
            tokio::time::timeout(TIMEOUT, reader)
                .await
                .expect("stderr reaches its end in time")
                .expect("the stderr reader joins");
        }
        self.stderr()
    }

    /// The last lines of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let start = lines.len().saturating_sub(20);
        let source = match &self.log {
            Some(path) => path.display().to_string(),
            None => "stderr".to_owned(),
        };
        format!("\n--- {source} ---\n{}", lines[start..].join("\n"))
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`, …) with the shell's `kill`.
    pub fn signal(&self, signal: &str) {
        let status = crate::signal::send(self.pid, signal).expect("the kill command runs");
        assert!(status.success(), "kill -s {signal} {} succeeds", self.pid);
    }

    /// Waits (bounded by [`TIMEOUT`]) for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        match tokio::time::timeout(TIMEOUT, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the server works"),
            Err(_) => panic!(
                "the server did not exit within {TIMEOUT:?}{}",
                self.stderr_tail()
            ),
        }
    }

    /// SIGTERM, and asserts exit status 0 within the bounded wait.
    pub async fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit().await;
        assert!(
            status.success(),
            "SIGTERM makes the server exit 0, got {status:?}{}",
            self.stderr_tail()
        );
    }

    /// `kill -9`, and waits until it is gone.
    pub async fn kill_9(&mut self) {
        self.signal("KILL");
        let status = self.wait_exit().await;
        assert!(!status.success(), "a killed server does not exit 0");
    }

    /// For long runs: SIGTERM, then SIGKILL if the process has not exited
    /// within `grace`. An error if it had already exited.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("it had already exited ({status}){}", self.stderr_tail());
        }
        let _ = crate::signal::send(self.pid, "TERM");
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }

    /// A native gRPC channel to the printed URL, with [`TIMEOUT`].
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("the printed url is a valid endpoint")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("a client connects to the printed url")
    }
}
