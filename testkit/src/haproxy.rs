//! HAProxy in front of replicas, with the project's one load-balancer
//! configuration (`deploy/haproxy.cfg`): the file plus one `server` line
//! per replica is written to a work folder, checked with `haproxy -c`, and
//! run in the foreground (`-db`) as a child process, killed when the guard
//! drops. The admin socket tells which replicas HAProxy sees up.
//!
//! Plain `std`, so `xtask` can share it without compiling anything else.
//!
//! # Limitations
//! * Unix only (the admin socket). The work folder's path must be short
//!   enough for a Unix socket (about 100 bytes).
//! * The port is found free and released before HAProxy binds it.
//! * Cleartext only, as the configuration file is.

use std::{
    fs,
    io::{self, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The variable the configuration's `bind` line reads.
pub const LISTEN_VAR: &str = "ARTICLE_LB_LISTEN";
/// The variable the configuration's `stats socket` line reads.
pub const STATS_VAR: &str = "ARTICLE_LB_STATS";
/// The backend whose servers are the replicas.
pub const BACKEND: &str = "replicas";

/// How long HAProxy may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A running HAProxy. Dropping it kills the process.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    stats: PathBuf,
}

impl Haproxy {
    /// HAProxy on a free port of 127.0.0.1 with the configuration `config`
    /// (`deploy/haproxy.cfg`) and the servers `r1`, `r2`, … at `replicas`;
    /// its generated file, log and admin socket go to `work_dir`. Returns
    /// once the port accepts connections.
    pub fn start(config: &Path, work_dir: &Path, replicas: &[SocketAddr]) -> io::Result<Self> {
        Self::start_on(
            config,
            work_dir,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            replicas,
        )
    }

    /// Like [`start`](Self::start), listening on `listen` (port 0: a free
    /// port).
    pub fn start_on(
        config: &Path,
        work_dir: &Path,
        mut listen: SocketAddr,
        replicas: &[SocketAddr],
    ) -> io::Result<Self> {
        let template = fs::read_to_string(config)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", config.display())))?;
        fs::create_dir_all(work_dir)?;
        let generated = work_dir.join("haproxy.cfg");
        fs::write(&generated, with_servers(&template, replicas))?;
        if listen.port() == 0 {
            listen.set_port(crate::postgres::free_port()?);
        } else {
            // Someone else listening there would look like a ready HAProxy.
            std::net::TcpListener::bind(listen)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
        }
        let stats = work_dir.join("haproxy.sock");
        // A socket left by an earlier run would look like a ready one.
        let _ = fs::remove_file(&stats);
        let log = work_dir.join("haproxy.log");
        let command = |args: &[&str]| {
            let mut command = Command::new("haproxy");
            command
                .args(args)
                .arg("-f")
                .arg(&generated)
                .env(LISTEN_VAR, listen.to_string())
                .env(STATS_VAR, &stats)
                .stdin(Stdio::null());
            command
        };

        let checked = command(&["-c"]).output().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "could not run haproxy ({e}): run `cargo xtask test` (which installs it) \
                     or `apt-get install haproxy`"
                ),
            )
        })?;
        if !checked.status.success() {
            return Err(io::Error::other(format!(
                "haproxy -c -f {} refused the configuration:\n{}{}",
                generated.display(),
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            )));
        }

        let out = fs::File::create(&log)?;
        let child = command(&["-db"])
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut haproxy = Self {
            child,
            addr: listen,
            config: generated,
            log,
            stats,
        };
        haproxy.wait_accepting()?;
        Ok(haproxy)
    }

    fn wait_accepting(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "haproxy exited ({status}) before accepting connections:\n{}",
                    self.log()
                )));
            }
            let connect_addr = match self.addr {
                // `:8080` binds every address; reach it on loopback.
                a if a.ip().is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
                a => a,
            };
            if TcpStream::connect(connect_addr).is_ok() && self.stats.exists() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "haproxy did not accept connections on {} within {START_TIMEOUT:?}:\n{}",
                        self.addr,
                        self.log()
                    ),
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The generated configuration file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// HAProxy's stdout and stderr so far (warnings, alerts).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One command on the admin socket (e.g. `show stat`), and its answer.
    pub fn admin(&self, command: &str) -> io::Result<String> {
        let mut socket = UnixStream::connect(&self.stats)?;
        socket.set_read_timeout(Some(START_TIMEOUT))?;
        socket.write_all(command.trim_end().as_bytes())?;
        socket.write_all(b"\n")?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// The state of each replica, `(name, status)` in the order of the
    /// file: status as HAProxy's statistics say it (`UP`, `DOWN`,
    /// `UP 1/2` while going down, `DOWN 1/2` while coming up, `MAINT`).
    pub fn servers(&self) -> io::Result<Vec<(String, String)>> {
        let csv = self.admin("show stat")?;
        let mut lines = csv.lines();
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .ok_or_else(|| io::Error::other(format!("unexpected `show stat` answer: {csv}")))?;
        let column = |name: &str| header.split(',').position(|c| c == name);
        let (Some(proxy), Some(server), Some(status)) =
            (column("pxname"), column("svname"), column("status"))
        else {
            return Err(io::Error::other(format!(
                "unexpected `show stat` header: {header}"
            )));
        };
        Ok(lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| {
                fields.get(proxy) == Some(&BACKEND)
                    && !matches!(fields.get(server), Some(&"BACKEND" | &"FRONTEND") | None)
            })
            .map(|fields| {
                (
                    fields[server].to_owned(),
                    fields.get(status).copied().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// Waits (bounded by `within`, polling the admin socket) until the
    /// replica `name` (`r1`, `r2`, …) has the status `status` (`UP` or
    /// `DOWN`); the error says what was seen last.
    pub fn wait_for_server(&self, name: &str, status: &str, within: Duration) -> io::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let servers = self.servers()?;
            let seen = servers.iter().find(|(n, _)| n == name).map(|(_, s)| s);
            if seen.is_some_and(|s| s == status) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "server {name} was not {status} within {within:?}; servers: {servers:?}"
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills HAProxy and waits for it.
    pub fn stop(mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `template` with one `server rN ADDR` line per replica appended (the
/// file ends with the backend section; the options are in its
/// `default-server` line).
pub fn with_servers(template: &str, replicas: &[SocketAddr]) -> String {
    let mut config = template.to_owned();
    if !config.ends_with('\n') {
        config.push('\n');
    }
    for (i, addr) in replicas.iter().enumerate() {
        config.push_str(&format!("    server r{} {addr}\n", i + 1));
    }
    config
}

/// `deploy/haproxy.cfg` of this workspace.
pub fn deploy_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join("haproxy.cfg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_appended_one_line_each() {
        let replicas = [
            SocketAddr::from(([127, 0, 0, 1], 4001)),
            SocketAddr::from(([127, 0, 0, 1], 4002)),
        ];
        assert_eq!(
            with_servers("backend replicas", &replicas),
            "backend replicas\n    server r1 127.0.0.1:4001\n    server r2 127.0.0.1:4002\n"
        );
    }
}
