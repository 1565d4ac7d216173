//! Command-line and environment configuration of `article-server`.
//!
//! Every flag has an environment variable of the same meaning (clap `env`),
//! so `--listen` and `ARTICLE_LISTEN` are one setting. Tokens are secrets:
//! they are never printed by `Debug` and never logged.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use clap::{Parser, ValueEnum};

/// Default `--max-message-bytes`: 4 MiB, gRPC's customary limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

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
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, env = "ARTICLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://FILE`, a plain file path, or `sqlite::memory:`.
    #[arg(
        long = "database",
        env = "ARTICLE_DATABASE_URL",
        default_value = "sqlite://articles.db"
    )]
    pub database_url: String,

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

    /// Allowed CORS origin (repeatable; env: comma-separated). None = any origin,
    /// without credentials.
    #[arg(
        long = "allow-origin",
        env = "ARTICLE_ALLOW_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allow_origins: Vec<String>,

    /// Directory of the built web app, served at `/` with `index.html` as the
    /// fallback for client-side routes.
    #[arg(long, env = "ARTICLE_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Largest request message accepted, in bytes; larger ones are RESOURCE_EXHAUSTED.
    #[arg(long, env = "ARTICLE_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

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

    /// PEM certificate chain; with --tls-key serves HTTPS (ALPN h2 and http/1.1).
    #[arg(long, env = "ARTICLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "ARTICLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log line format.
    #[arg(long, env = "ARTICLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds in-flight calls may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "ARTICLE_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("tokens", &self.tokens)
            .field("allow_origins", &self.allow_origins)
            .field("static_dir", &self.static_dir)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("watch_heartbeat_secs", &self.watch_heartbeat_secs)
            .field("watch_retain", &self.watch_retain)
            .field("list_cache_mib", &self.list_cache_mib)
            .field("demo_data", &self.demo_data)
            .field("tls_cert", &self.tls_cert)
            .field("log_format", &self.log_format)
            .field("drain_secs", &self.drain_secs)
            .finish_non_exhaustive()
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
    fn env_and_flag_are_the_same_setting() {
        let s = Settings::try_parse_from([
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
        assert_eq!(s.allow_origins, vec!["https://x.example".to_string()]);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(!format!("{s:?}").contains("aaaaaaaaaa"));
    }
}
