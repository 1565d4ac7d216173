//! A throw-away PostgreSQL cluster for tests and for `cargo xtask`: its own
//! data directory, a free port on 127.0.0.1, user `app` with trust
//! authentication, stopped (immediately) and removed when dropped.
//!
//! Plain `std`, so `xtask` can share it without compiling anything else.
//! It runs the server binaries of the host's PostgreSQL
//! (`/usr/lib/postgresql/<highest version>/bin`, Debian's layout); `cargo
//! xtask test` installs them when they are missing.
//!
//! PostgreSQL refuses to run as root: when this process is root, every
//! server command runs as the `postgres` user (`runuser -u postgres --`)
//! and the cluster's directory is handed to that user.
//!
//! # Limitations
//! * Linux (Debian's paths, `runuser`, `/proc` for the root check).
//! * The port is found free and released before PostgreSQL binds it; another
//!   process could take it in between (the start then fails, it does not
//!   connect to a stranger).
//! * Trust authentication on 127.0.0.1: for tests and local runs only.

use std::{
    fs, io,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The database user every cluster is created with.
pub const USER: &str = "app";

/// Connections the server accepts: several replicas with a pool each, and
/// a test suite's servers running in parallel, fit.
const MAX_CONNECTIONS: u32 = 200;

/// Where Debian puts the server binaries, one folder per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// A PostgreSQL cluster (one server process) in a directory of its own.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
    options: Options,
}

/// How [`PgCluster::start_with`] treats the cluster's directory and process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Remove the directory when the cluster is dropped (a fresh cluster
    /// per run, e.g. under `target/`).
    pub remove_dir: bool,
    /// Start the server in a process group of its own, so a terminal's
    /// Ctrl-C reaches only the caller, which stops it in its own order
    /// (after the servers using it). Without it, Ctrl-C stops PostgreSQL
    /// too, which suits tests: an interrupted test run leaves no server.
    pub own_process_group: bool,
}

impl PgCluster {
    /// Initialises a cluster in `dir` (created if missing; kept if it holds
    /// one already) and starts it on a free port of 127.0.0.1. The
    /// directory stays when the cluster is dropped.
    pub fn start_in(dir: &Path) -> io::Result<Self> {
        Self::start_with(dir, Options::default())
    }

    /// A cluster in a fresh directory under the system's temporary folder,
    /// removed when the cluster is dropped.
    #[cfg(feature = "kit")]
    pub fn temporary() -> io::Result<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let options = Options {
            remove_dir: true,
            ..Options::default()
        };
        Self::start_with(&dir, options)
    }

    /// One cluster for the whole test process, started on first use. A
    /// `static` is never dropped, so a watchdog process stops the cluster
    /// (and removes its folder) once this process is gone, however it
    /// ends; tests take a database each with [`shared_database`].
    #[cfg(feature = "kit")]
    pub fn shared() -> &'static Self {
        static CLUSTER: std::sync::OnceLock<PgCluster> = std::sync::OnceLock::new();
        CLUSTER.get_or_init(|| {
            let cluster = Self::temporary().expect("a PostgreSQL cluster starts");
            let bin = binaries().expect("PostgreSQL's binaries");
            let as_postgres = if is_root() {
                "runuser -u postgres -- "
            } else {
                ""
            };
            let stop = format!(
                "{as_postgres}{pg_ctl} -D '{dir}/data' -m immediate stop; rm -rf '{dir}'",
                pg_ctl = bin.join("pg_ctl").display(),
                dir = cluster.dir().display(),
            );
            // Deliberately not waited for: it outlives this process.
            #[allow(clippy::zombie_processes)]
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}",
                    pid = std::process::id()
                ))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("the watchdog starts");
            cluster
        })
    }

    /// Like [`start_in`](Self::start_in), with [`Options`].
    pub fn start_with(dir: &Path, options: Options) -> io::Result<Self> {
        let bin = binaries()?;
        fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let as_postgres = is_root();
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
            options,
        };
        if as_postgres {
            // The server must own its data directory (and may write its log
            // and socket beside it), and reach it: every parent folder must
            // let it through (not so under /root, for one).
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&cluster.dir))?;
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&cluster.dir)
                .status()?;
            if !reachable.success() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "the postgres user cannot write to {} (a parent folder is closed to it): \
                         use a folder it can reach, such as one under {}",
                        cluster.dir.display(),
                        std::env::temp_dir().display()
                    ),
                ));
            }
        }
        if !cluster.data_dir().join("PG_VERSION").is_file() {
            let mut initdb = cluster.server_command("initdb");
            initdb
                .arg("-D")
                .arg(cluster.data_dir())
                .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"])
                // A throw-away cluster: initdb need not flush its files (the
                // server keeps its own durability settings).
                .args(["--no-instructions", "--no-sync"]);
            run(&mut initdb)?;
        }
        cluster.port = free_port()?;
        cluster.start()?;
        Ok(cluster)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, log, socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgres://app@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates the database `name` (letters, digits and `_` only) and
    /// returns its URL.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        create_database_on(&self.url("postgres"), name)
    }

    /// Starts the server again after [`stop`](Self::stop) or
    /// [`kill`](Self::kill): same port, same data. Waits until it accepts
    /// connections.
    pub fn start(&mut self) -> io::Result<()> {
        if self.running {
            return Ok(());
        }
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c max_connections={MAX_CONNECTIONS}",
            self.port
        );
        // A Unix socket in our own folder (never /var/run/postgresql), if its
        // path fits the kernel's limit (108 bytes); none otherwise.
        let socket = self.dir.join(format!(".s.PGSQL.{}", self.port));
        if socket.as_os_str().len() < 100 {
            options.push_str(&format!(" -k {}", shell_quote(&self.dir)));
        } else {
            options.push_str(" -c unix_socket_directories=''");
        }
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-l"])
            .arg(self.log_file())
            .arg("-o")
            .arg(options)
            .arg("start");
        if self.options.own_process_group {
            use std::os::unix::process::CommandExt as _;
            pg_ctl.process_group(0);
        }
        // The server must not keep our stdout open: whoever reads it (cargo,
        // a pipe) would wait for the server's end.
        pg_ctl.stdout(Stdio::null());
        run(&mut pg_ctl).map_err(|e| self.with_log(e))?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (`-m fast`: open sessions are rolled back, data is
    /// flushed). [`start`](Self::start) brings it back.
    pub fn stop(&mut self) -> io::Result<()> {
        self.pg_ctl_stop("fast")
    }

    /// Stops the server like a crash (`-m immediate`: no checkpoint; the
    /// next start recovers from the WAL).
    pub fn kill(&mut self) -> io::Result<()> {
        self.pg_ctl_stop("immediate")
    }

    fn pg_ctl_stop(&mut self, mode: &str) -> io::Result<()> {
        if !self.running {
            return Ok(());
        }
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-m", mode, "stop"]);
        run(&mut pg_ctl).map_err(|e| self.with_log(e))?;
        self.running = false;
        Ok(())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `bin/NAME`, as the `postgres` user when we are root.
    fn server_command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn with_log(&self, err: io::Error) -> io::Error {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        io::Error::new(
            err.kind(),
            format!("{err}\n--- {} ---\n{tail}", self.log_file().display()),
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.kill();
        if self.options.remove_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The folder of `initdb`, `pg_ctl` and `createdb`: Debian's
/// `/usr/lib/postgresql/<highest version>/bin`.
pub fn binaries() -> io::Result<PathBuf> {
    let highest = fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match highest {
        Some((_, bin)) => Ok(bin),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "PostgreSQL's server binaries are not installed (no {DEBIAN_ROOT}/<version>/bin/initdb): \
                 run `cargo xtask test` (which installs them) or `apt-get install postgresql`"
            ),
        )),
    }
}

/// Creates the database `name` (letters, digits and `_` only) on the
/// server of `url` (`postgres://USER@HOST:PORT/DATABASE`, a database that
/// exists, e.g. `postgres`) with the `createdb` binary, and returns the
/// new database's URL.
pub fn create_database_on(url: &str, name: &str) -> io::Result<String> {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let server = url
        .rsplit_once('/')
        .map(|(server, _)| server)
        .filter(|server| server.contains("://"));
    match server {
        Some(server) if plain => {
            let mut createdb = Command::new(binaries()?.join("createdb"));
            createdb.arg(format!("--maintenance-db={url}")).arg(name);
            run(&mut createdb)?;
            Ok(format!("{server}/{name}"))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "database {name:?} on {url:?}: use letters, digits and `_`, \
                 and a URL ending in /DATABASE"
            ),
        )),
    }
}

/// A port of 127.0.0.1 nobody listens on right now.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A fresh database (`t0`, `t1`, …) on the process's [`PgCluster::shared`]
/// cluster: its URL.
#[cfg(feature = "kit")]
pub fn shared_database() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static DATABASES: AtomicUsize = AtomicUsize::new(0);
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    PgCluster::shared()
        .create_database(&format!("t{n}"))
        .expect("createdb on the shared cluster")
}

/// Whether this process runs as root (effective user id 0).
fn is_root() -> bool {
    // `/proc/self/status` has `Uid: real effective saved fs`.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

/// `'PATH'` for the shell pg_ctl hands `-o` to.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Runs `command` to its end; a failure carries its output.
fn run(command: &mut Command) -> io::Result<Output> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("could not run {shown}: {e}")))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(io::Error::other(format!(
        "{shown} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    )))
}

#[cfg(all(test, feature = "kit"))]
mod tests {
    use std::net::TcpStream;

    use super::*;

    /// Pids of the processes whose command line names `dir`.
    fn processes_in(dir: &Path) -> Vec<String> {
        let needle = dir.display().to_string();
        fs::read_dir("/proc")
            .expect("/proc is readable")
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .filter_map(|e| {
                let cmdline = fs::read(e.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline.contains(&needle).then_some(cmdline)
            })
            .collect()
    }

    #[test]
    fn a_cluster_creates_databases_restarts_on_its_port_and_leaves_nothing_when_dropped() {
        let mut cluster = PgCluster::temporary().expect("the cluster starts");
        let dir = cluster.dir().to_path_buf();
        let port = cluster.port();
        TcpStream::connect(("127.0.0.1", port)).expect("the server accepts connections");
        assert!(!processes_in(&dir).is_empty(), "the server runs in {dir:?}");

        let url = cluster
            .create_database("first_test")
            .expect("createdb works");
        assert_eq!(url, format!("postgres://app@127.0.0.1:{port}/first_test"));
        assert!(
            cluster.create_database("first_test").is_err(),
            "the database exists once"
        );
        assert!(cluster.create_database("no; drop").is_err());

        cluster.stop().expect("the server stops");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        cluster.start().expect("the server starts again");
        assert_eq!(cluster.port(), port, "same port after a restart");
        assert!(
            cluster.create_database("first_test").is_err(),
            "the data survived the restart"
        );
        cluster.kill().expect("an immediate stop works");
        cluster.start().expect("the server recovers after a crash");
        cluster.create_database("second").expect("createdb works");

        drop(cluster);
        assert!(
            processes_in(&dir).is_empty(),
            "no process left: {:?}",
            processes_in(&dir)
        );
        assert!(!dir.exists(), "the temporary folder is removed");
    }
}
