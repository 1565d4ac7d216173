//! Command-line and environment configuration of `article-server`.
//!
//! Every flag has an environment variable of the same meaning (clap `env`),
//! so `--listen` and `ARTICLE_LISTEN` are one setting. Tokens are secrets:
//! they are never printed by `Debug` and never logged; `--tokens-file`
//! keeps them out of the process list as well.

use std::{ffi::OsString, fmt, path::PathBuf, str::FromStr};

use clap::{CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};
use grpc_runtime::RuntimeArgs;

/// Prefix of every environment variable (`ARTICLE_LISTEN`, …).
pub const ENV_PREFIX: &str = "ARTICLE";

/// Settings of one server process.
#[derive(Clone, Parser)]
#[command(
    name = "article-server",
    version,
    about = "Serves the ArticleService over gRPC and gRPC-web (plus the web app) on one port.",
    long_about = "Serves the ArticleService over gRPC (HTTP/2, h2c or TLS) and gRPC-web \
(binary and text, HTTP/1.1 and HTTP/2) on one port, with CORS, health, reflection, \
Prometheus metrics at /metrics and, with --static-dir, the web app.\n\n\
Writes (create, update, delete, import) need `authorization: Bearer <token>`; \
reads and watch are public."
)]
pub struct Settings {
    /// Where and how the one port serves (the runtime's flags).
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Database URL: `sqlite://FILE`, a plain file path, or `sqlite::memory:`
    /// (one server process per SQLite file); or `postgres://USER@HOST/DB`
    /// (also `postgresql://`) for several servers on one PostgreSQL
    /// database, e.g. behind a load balancer: migrated at start, watch
    /// events in commit order across servers, the ListArticles cache off.
    #[arg(
        long = "database",
        env = "ARTICLE_DATABASE_URL",
        default_value = "sqlite://articles.db",
        // It may hold a password: not in --help, nor in `Debug`.
        hide_env_values = true
    )]
    pub database_url: String,

    /// Connections to PostgreSQL per server process at most (ignored for
    /// SQLite).
    #[arg(long, env = "ARTICLE_DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub database_max_connections: u32,

    /// Write token as NAME=TOKEN (repeatable; env: comma-separated). NAME becomes
    /// the author of articles written with it. With none, a random token for
    /// `admin` is generated and printed once.
    #[arg(
        long = "token",
        env = "ARTICLE_TOKENS",
        value_delimiter = ',',
        value_name = "NAME=TOKEN",
        hide_env_values = true
    )]
    pub tokens: Vec<TokenSpec>,

    /// File of write tokens, one `NAME=TOKEN` or `NAME=sha256:<64 hex digits>`
    /// per line (`#` comments, blank lines); re-read on SIGHUP without
    /// dropping connections. Unlike --token, keeps secrets out of the
    /// process list; with a digest, out of the file too.
    #[arg(long, env = "ARTICLE_TOKENS_FILE", value_name = "PATH")]
    pub tokens_file: Option<PathBuf>,

    /// Seconds between heartbeat events on WatchArticles streams.
    #[arg(long, env = "ARTICLE_WATCH_HEARTBEAT_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_heartbeat_secs: u64,

    /// How many recent change events are kept for resuming watches.
    #[arg(long, env = "ARTICLE_WATCH_RETAIN", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1000..))]
    pub watch_retain: u64,

    /// Memory for ListArticles pages answered without the database until
    /// the next write, in MiB; 0 turns the cache off.
    #[arg(long, env = "ARTICLE_LIST_CACHE_MIB", default_value_t = 16)]
    pub list_cache_mib: usize,

    /// Load about 30 sample articles when the database is empty.
    #[arg(long, env = "ARTICLE_DEMO_DATA")]
    pub demo_data: bool,

    /// Log line format.
    #[arg(long, env = "ARTICLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("runtime", &self.runtime)
            .field("database_url", &redacted_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("tokens", &self.tokens)
            .field("tokens_file", &self.tokens_file)
            .field("watch_heartbeat_secs", &self.watch_heartbeat_secs)
            .field("watch_retain", &self.watch_retain)
            .field("list_cache_mib", &self.list_cache_mib)
            .field("demo_data", &self.demo_data)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The command line: the flags, each with its `ARTICLE_*` variable.
    pub fn command_with_env() -> clap::Command {
        RuntimeArgs::with_env_prefix(Self::command(), ENV_PREFIX)
    }

    /// Settings from the process's arguments and environment; prints help
    /// or an error and exits like clap's `parse` does.
    pub fn load() -> Self {
        let matches = Self::command_with_env().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Settings from `args` (the program name first) and the environment.
    pub fn try_load_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Self::command_with_env().try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

/// `url` with its password (if any) replaced by `***`, for messages.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Output format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A `NAME=TOKEN` pair. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub name: String,
    pub token: String,
}

impl fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

impl FromStr for TokenSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, token) = s
            .split_once('=')
            .ok_or_else(|| "expected NAME=TOKEN".to_string())?;
        let (name, token) = (name.trim(), token.trim());
        if name.is_empty() {
            return Err("the NAME in NAME=TOKEN is empty".into());
        }
        if token.len() < 8 {
            return Err(format!("the token for {name} is shorter than 8 characters"));
        }
        Ok(Self {
            name: name.into(),
            token: token.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_spec_parses_and_hides_the_secret() {
        let t: TokenSpec = "alice=s3cr3t-token".parse().unwrap();
        assert_eq!(t.name, "alice");
        assert_eq!(t.token, "s3cr3t-token");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!("alice".parse::<TokenSpec>().is_err());
        assert!("=abcdefghij".parse::<TokenSpec>().is_err());
        assert!("bob=short".parse::<TokenSpec>().is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redacted_url("postgres://app:s3cret@db:5432/articles"),
            "postgres://app:***@db:5432/articles"
        );
        assert_eq!(
            redacted_url("postgres://app@db/articles"),
            "postgres://app@db/articles"
        );
        assert_eq!(redacted_url("sqlite://a@b.db"), "sqlite://a@b.db");
        let s =
            Settings::try_load_from(["article-server", "--database", "postgresql://u:hunter2@h/d"])
                .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn env_and_flag_are_the_same_setting() {
        let s = Settings::try_load_from([
            "article-server",
            "--token",
            "a=aaaaaaaaaa",
            "--token",
            "b=bbbbbbbbbb",
            "--allow-origin",
            "https://x.example",
        ])
        .unwrap();
        assert_eq!(s.tokens.len(), 2);
        assert_eq!(
            s.runtime.allow_origins,
            vec!["https://x.example".to_string()]
        );
        assert_eq!(s.runtime.listen.to_string(), "127.0.0.1:8080");
        assert!(!format!("{s:?}").contains("aaaaaaaaaa"));
    }
}
