//! `cargo xtask run --replicas N [--listen ADDR] [-- SERVER_ARGS...]`: the
//! whole cluster on one machine. A fresh PostgreSQL cluster under
//! `target/replicas/`, N `article-server` replicas on it (port 0, demo
//! data, the web app, one shared write token from a tokens file), and
//! HAProxy with `deploy/haproxy.cfg` in front of them on `--listen`
//! (default 127.0.0.1:8080). Prints HAProxy's URL and the token, and on
//! Ctrl-C or SIGTERM stops the replicas (SIGTERM: they drain), HAProxy and
//! PostgreSQL, in that order.
//!
//! The replicas and PostgreSQL run in process groups of their own, so a
//! terminal's Ctrl-C reaches only this process, which stops them in order.
//! Their logs stay in `target/replicas/` (`rN.log`, `haproxy/haproxy.log`);
//! PostgreSQL's data and the tokens file are removed.

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use testkit::haproxy::Haproxy;
use testkit::listening;
use testkit::postgres::{Options, PgCluster};

use crate::error::{Error, Result, fail};
use crate::process::{step, target_dir, workspace_root};
use crate::run::build_app;
use crate::tools::ensure_cluster_tools;

/// Where HAProxy listens unless `--listen` says otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long a replica may take to migrate, load demo data and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a replica may drain after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The options of `run --replicas`.
#[derive(Debug)]
pub(crate) struct ReplicaOptions {
    replicas: usize,
    listen: SocketAddr,
    server_args: Vec<OsString>,
}

impl ReplicaOptions {
    /// `Some` when `args` (before any `--`) hold `--replicas`; `None` keeps
    /// `run` exactly as it is without it.
    pub(crate) fn parse(args: &[OsString]) -> Result<Option<Self>> {
        let ours = args.iter().position(|a| a == "--").unwrap_or(args.len());
        let wanted = args[..ours]
            .iter()
            .any(|a| a == "--replicas" || a.to_string_lossy().starts_with("--replicas="));
        if !wanted {
            return Ok(None);
        }
        let mut replicas = None;
        let mut listen = None;
        let mut iter = args[..ours]
            .iter()
            .map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| iter.next())
                    .ok_or_else(|| Error(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--replicas" => {
                    let n = value()?;
                    match n.parse::<usize>() {
                        Ok(n) if n >= 1 => replicas = Some(n),
                        _ => return fail(format!("--replicas {n}: give a number, 1 or more")),
                    }
                }
                "--listen" => {
                    let addr = value()?;
                    listen = Some(addr.parse().map_err(|_| {
                        Error(format!(
                            "--listen {addr}: give an address such as 127.0.0.1:8080"
                        ))
                    })?);
                }
                _ => {
                    return fail(format!(
                        "unexpected argument `{arg}` for run --replicas \
                         (arguments for the replicas go after `--`)"
                    ));
                }
            }
        }
        Ok(Some(Self {
            replicas: replicas.expect("--replicas was seen"),
            listen: listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address")),
            server_args: args.get(ours + 1..).unwrap_or_default().to_vec(),
        }))
    }
}

/// One `article-server` replica, killed if still running when dropped.
struct Replica {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn run_replicas(opts: &ReplicaOptions) -> Result<()> {
    let root = workspace_root();
    let (binary, static_dir) = build_app()?;
    ensure_cluster_tools()?;

    // From here on Ctrl-C and SIGTERM only raise this flag: everything
    // started below is stopped in order, also when they come during the
    // start.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error(format!("cannot catch signal {signal}: {e}")))?;
    }

    let work = target_dir(&root).join("replicas");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| Error(format!("{}: {e}", work.display())))?;

    step("PostgreSQL cluster");
    let mut cluster = start_cluster(&work.join("pg"), true)?;
    let database = cluster.url("postgres");
    println!("    {database}");

    let token = random_token()?;
    let tokens_file = work.join("tokens");
    write_secret(&tokens_file, &format!("admin={token}\n"))?;

    let mut replicas = Vec::new();
    for i in 1..=opts.replicas {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = format!("r{i}");
        step(&format!("replica {name}"));
        let mut command = Command::new(&binary);
        command
            .current_dir(&root)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database",
                &database,
                "--demo-data",
            ])
            .arg("--tokens-file")
            .arg(&tokens_file);
        if let Some(dir) = &static_dir {
            command.arg("--static-dir").arg(dir);
        }
        command.args(&opts.server_args);
        // One at a time: the first migrates the database and loads the demo
        // data, the others find both done.
        let replica = start_replica(name, command, &work)?;
        println!(
            "    {} on {} (log: {})",
            replica.name,
            replica.addr,
            replica.log.display()
        );
        replicas.push(replica);
    }

    let mut haproxy = None;
    if !stop.load(Ordering::Relaxed) {
        step("HAProxy (deploy/haproxy.cfg)");
        let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
        let started = Haproxy::start_on(
            &root.join("deploy").join("haproxy.cfg"),
            &work.join("haproxy"),
            opts.listen,
            &addrs,
        )
        .map_err(|e| Error(format!("HAProxy did not start: {e}")))?;
        for replica in &replicas {
            started
                .wait_for_server(&replica.name, "UP", START_TIMEOUT)
                .map_err(|e| Error(format!("HAProxy's health check: {e}")))?;
        }
        println!();
        println!(
            "    {} replicas behind HAProxy, one PostgreSQL. Open:",
            replicas.len()
        );
        println!();
        println!("        {}", started.url());
        println!();
        println!("    write token: {token}");
        println!(
            "    (authorization: Bearer <token>; all replicas read {})",
            tokens_file.display()
        );
        println!("    logs: {}", work.display());
        println!("    Ctrl-C stops everything.");
        haproxy = Some(started);
    }

    while !stop.load(Ordering::Relaxed) {
        for replica in &mut replicas {
            if replica.exited.is_none()
                && let Ok(Some(status)) = replica.child.try_wait()
            {
                replica.exited = Some(status);
                eprintln!(
                    "    replica {} exited ({status}); HAProxy takes it out of rotation. Log: {}",
                    replica.name,
                    replica.log.display()
                );
            }
        }
        thread::sleep(Duration::from_millis(100));
    }

    step("stopping: replicas (SIGTERM, drain), HAProxy, PostgreSQL");
    for replica in &replicas {
        if replica.exited.is_none() {
            let _ = testkit::signal::send(replica.child.id(), "TERM");
        }
    }
    for replica in &mut replicas {
        if replica.exited.is_none() {
            let status = wait_or_kill(&mut replica.child, STOP_TIMEOUT);
            println!("    {} stopped ({status})", replica.name);
            replica.exited = Some(status);
        }
    }
    if let Some(haproxy) = haproxy {
        let _ = haproxy.stop();
    }
    cluster
        .stop()
        .map_err(|e| Error(format!("PostgreSQL did not stop: {e}")))?;
    drop(cluster);
    let _ = fs::remove_file(&tokens_file);
    println!("    stopped; logs in {}", work.display());
    Ok(())
}

/// A fresh cluster in `dir` (removed when dropped), in its own process
/// group if asked; in the system's temporary folder when PostgreSQL's user
/// cannot reach `dir` (a workspace under `/root`, say).
pub(crate) fn start_cluster(dir: &Path, own_process_group: bool) -> Result<PgCluster> {
    let options = Options {
        remove_dir: true,
        own_process_group,
    };
    let _ = fs::remove_dir_all(dir);
    match PgCluster::start_with(dir, options) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let _ = fs::remove_dir_all(dir);
            let dir = std::env::temp_dir().join(format!("article-pg-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            PgCluster::start_with(&dir, options)
        }
        started => started,
    }
    .map_err(|e| Error(format!("the PostgreSQL cluster did not start: {e}")))
}

/// Spawns `command` (own process group, stderr to `work/NAME.log`) and
/// waits for its `listening on URL` line.
fn start_replica(name: String, mut command: Command, work: &Path) -> Result<Replica> {
    let log = work.join(format!("{name}.log"));
    let log_file = fs::File::create(&log).map_err(|e| Error(format!("{}: {e}", log.display())))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .map_err(|e| Error(format!("could not start article-server: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (lines, listened) = mpsc::channel();
    // Reads stdout to its end, so the replica never blocks on a full pipe.
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(io::Result::ok) {
            if let Some(addr) = listening::url(&line).and_then(listening::socket_addr) {
                let _ = lines.send(addr);
            }
        }
    });
    let mut replica = Replica {
        name,
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        log,
        exited: None,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match listened.recv_timeout(Duration::from_millis(100)) {
            Ok(addr) => {
                replica.addr = addr;
                return Ok(replica);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = replica.child.try_wait() {
                    replica.exited = Some(status);
                    return fail(format!(
                        "replica {} exited ({status}) before listening:\n{}",
                        replica.name,
                        tail(&replica.log)
                    ));
                }
            }
            Err(_) => {
                return fail(format!(
                    "replica {} printed no listening line within {START_TIMEOUT:?}:\n{}",
                    replica.name,
                    tail(&replica.log)
                ));
            }
        }
    }
}

/// Waits up to `grace` for `child` to exit, then kills it.
fn wait_or_kill(child: &mut Child, grace: Duration) -> ExitStatus {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                return child.wait().unwrap_or_default();
            }
        }
    }
}

/// 32 hex digits from the kernel's random source.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error(format!("cannot read /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `text` to a file only its owner may read.
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error(format!("{}: {e}", path.display())))
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn without_replicas_run_is_left_alone() {
        assert!(
            ReplicaOptions::parse(&args(&["--listen", "0.0.0.0:9000"]))
                .unwrap()
                .is_none()
        );
        assert!(
            ReplicaOptions::parse(&args(&["--", "--replicas", "2"]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn replicas_listen_and_server_arguments_are_read() {
        let opts = ReplicaOptions::parse(&args(&[
            "--replicas",
            "3",
            "--listen=127.0.0.1:0",
            "--",
            "--log-format",
            "json",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(opts.replicas, 3);
        assert_eq!(opts.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(opts.server_args, args(&["--log-format", "json"]));

        let opts = ReplicaOptions::parse(&args(&["--replicas=1"]))
            .unwrap()
            .unwrap();
        assert_eq!(opts.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(opts.server_args.is_empty());
    }

    #[test]
    fn bad_replica_options_are_refused() {
        for bad in [
            &["--replicas", "0"][..],
            &["--replicas"],
            &["--replicas", "2", "--listen", "localhost"],
            &["--replicas", "2", "--demo-data"],
        ] {
            assert!(ReplicaOptions::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
