//! The runtime's settings as command-line flags (feature `cli`), for an
//! application to `#[command(flatten)]` into its own clap parser.
//!
//! The flags carry no environment variables of their own: the application
//! names them with its prefix through [`RuntimeArgs::with_env_prefix`], so
//! `--listen` and `MYAPP_LISTEN` are one setting.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::DEFAULT_MAX_MESSAGE_BYTES;

/// Where and how the runtime serves.
#[derive(Clone, Debug, clap::Args)]
pub struct RuntimeArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Allowed CORS origin (repeatable; env: comma-separated). None = any origin,
    /// without credentials.
    #[arg(long = "allow-origin", value_delimiter = ',', value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// Directory of the built web app, served at `/` with `index.html` as the
    /// fallback for client-side routes. Only files whose real path is inside it are
    /// served: symlinks leading outside are 404.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,

    /// Largest request message accepted, in bytes; larger ones are RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// PEM certificate chain; with --tls-key serves HTTPS (ALPN h2 and http/1.1).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Seconds in-flight calls may take to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,

    /// Most connections open at once; one more is refused (logged, and an HTTP/1.1
    /// 503 over cleartext). 0 = no limit but the open-files limit.
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,

    /// Seconds a new connection may stay silent before it is closed; 0 = forever.
    #[arg(long, default_value_t = 10)]
    pub header_read_secs: u64,

    /// Most gRPC calls handled at once (default: 256 per core); one more is refused at
    /// once with UNAVAILABLE, never queued. A call counts until its response headers
    /// (a watch stream only until it starts); health checks are never refused.
    /// 0 = no limit.
    #[arg(long, default_value_t = crate::overload::default_max_concurrent_calls())]
    pub max_concurrent_calls: usize,
}

/// Each flag's argument id and the suffix of its environment variable.
const ENV_NAMES: [(&str, &str); 10] = [
    ("listen", "LISTEN"),
    ("allow_origins", "ALLOW_ORIGINS"),
    ("static_dir", "STATIC_DIR"),
    ("max_message_bytes", "MAX_MESSAGE_BYTES"),
    ("tls_cert", "TLS_CERT"),
    ("tls_key", "TLS_KEY"),
    ("drain_secs", "DRAIN_SECS"),
    ("max_connections", "MAX_CONNECTIONS"),
    ("header_read_secs", "HEADER_READ_SECS"),
    ("max_concurrent_calls", "MAX_CONCURRENT_CALLS"),
];

impl RuntimeArgs {
    /// Gives every runtime flag in `command` (flattened from
    /// [`RuntimeArgs`]) the environment variable `{prefix}_{NAME}`:
    /// `LISTEN`, `ALLOW_ORIGINS` (comma-separated), `STATIC_DIR`,
    /// `MAX_MESSAGE_BYTES`, `TLS_CERT`, `TLS_KEY`, `DRAIN_SECS`,
    /// `MAX_CONNECTIONS`, `HEADER_READ_SECS`, `MAX_CONCURRENT_CALLS`.
    ///
    /// ```
    /// use clap::{CommandFactory as _, FromArgMatches as _, Parser};
    /// use grpc_runtime::RuntimeArgs;
    ///
    /// #[derive(Parser)]
    /// struct Settings {
    ///     #[command(flatten)]
    ///     runtime: RuntimeArgs,
    /// }
    ///
    /// let command = RuntimeArgs::with_env_prefix(Settings::command(), "MYAPP");
    /// let matches = command.try_get_matches_from(["myapp", "--listen", "127.0.0.1:0"]).unwrap();
    /// let settings = Settings::from_arg_matches(&matches).unwrap();
    /// assert_eq!(settings.runtime.listen.port(), 0);
    /// ```
    pub fn with_env_prefix(mut command: clap::Command, prefix: &str) -> clap::Command {
        for (id, suffix) in ENV_NAMES {
            command = command.mut_arg(id, |arg| arg.env(format!("{prefix}_{suffix}")));
        }
        command
    }

    /// `--drain-secs` as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// `--header-read-secs` as a timeout (`None` for 0).
    pub fn header_read_timeout(&self) -> Option<Duration> {
        (self.header_read_secs > 0).then(|| Duration::from_secs(self.header_read_secs))
    }
}
