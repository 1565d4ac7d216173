//! `article`: a command-line client for ArticleService over gRPC or
//! gRPC-web. Every global option has an environment variable.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use article_client::{
    ArticleClient, Backoff, ClientConfig, Protocol, input,
    render::{self, Output},
};
use clap::{Parser, Subcommand};
use futures::StreamExt as _;
use proto::v1::{
    CreateArticleRequest, DeleteArticleRequest, GetArticleRequest, ListArticlesRequest,
    UpdateArticleRequest, WatchArticlesRequest, article_event::Event,
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

#[derive(Parser)]
#[command(
    name = "article",
    version,
    about = "Read and write articles on an article-server."
)]
struct Cli {
    /// Server URL (repeatable: calls are spread over them, with failover).
    #[arg(
        long = "endpoint",
        env = "ARTICLE_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    endpoints: Vec<String>,
    /// Write token (sent as `authorization: Bearer …`).
    #[arg(long, env = "ARTICLE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Deadline of each call, e.g. 500ms, 10s.
    #[arg(long, env = "ARTICLE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    timeout: Duration,
    /// Compress requests with gzip and accept gzip responses.
    #[arg(long, env = "ARTICLE_GZIP", global = true)]
    gzip: bool,
    /// Speak gRPC-web (HTTP/1.1) instead of gRPC.
    #[arg(long, env = "ARTICLE_WEB", global = true)]
    web: bool,
    /// PEM CA certificate to trust for https:// endpoints.
    #[arg(long, env = "ARTICLE_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// Extra request metadata K=V (repeatable; the env var holds one).
    #[arg(long = "header", env = "ARTICLE_HEADER", value_parser = parse_header, global = true)]
    headers: Vec<(String, String)>,
    /// Output format.
    #[arg(long, env = "ARTICLE_OUTPUT", value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    /// Print response headers and trailers (e.g. x-request-id) to stderr.
    #[arg(short, long, env = "ARTICLE_VERBOSE", global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List articles, newest first.
    List {
        #[arg(long, default_value_t = 1)]
        page: i32,
        #[arg(long, default_value_t = 20)]
        page_size: i32,
        /// Case-insensitive text in title or content.
        #[arg(long)]
        query: Option<String>,
        /// Only articles with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Show one article.
    Get { id: i64 },
    /// Create an article.
    Create {
        #[arg(long)]
        title: String,
        #[arg(long, conflicts_with = "content_file")]
        content: Option<String>,
        /// Read the content from a file (`-` for stdin).
        #[arg(long)]
        content_file: Option<PathBuf>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Change an article; unspecified fields keep their values. Fails with
    /// ABORTED if someone else changed it since it was read.
    Update {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long, conflicts_with = "content_file")]
        content: Option<String>,
        #[arg(long)]
        content_file: Option<PathBuf>,
        /// Replace the tags (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Remove all tags.
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
        /// Only update if the article is at this version (default: the version just read).
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Delete an article.
    Delete { id: i64 },
    /// Follow changes, one line per event; reconnects and resumes without gaps.
    Watch {
        #[arg(long)]
        tag: Option<String>,
        /// Resume after this sequence.
        #[arg(long, default_value_t = 0)]
        after_sequence: i64,
    },
    /// Import JSON Lines (.jsonl) or Markdown (.md) files in one transaction.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "expected K=V".to_owned())
}

/// An error already worded for the user, and the response metadata that
/// came with it (shown with `-v`).
struct Failure(String, String);

impl From<Status> for Failure {
    fn from(s: Status) -> Self {
        Self(render::error_line(&s), render::metadata("<", s.metadata()))
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self(format!("{e:#}"), String::new())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(line, metadata)) => {
            if verbose {
                eprint!("{metadata}");
            }
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Retry rounds for idempotent calls.
const RETRIES: u32 = 4;

async fn run(cli: Cli) -> Result<(), Failure> {
    let ca_cert = match &cli.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let config = ClientConfig {
        endpoints: cli.endpoints.clone(),
        protocol: if cli.web {
            Protocol::GrpcWeb
        } else {
            Protocol::Grpc
        },
        token: cli.token.clone(),
        headers: cli.headers.clone(),
        timeout: cli.timeout,
        gzip: cli.gzip,
        ca_cert,
        max_message_bytes: 64 * 1024 * 1024,
    };
    let client = ArticleClient::new(&config)?;
    let (out, verbose) = (cli.output, cli.verbose);
    let show = |md: &tonic::metadata::MetadataMap| {
        if verbose {
            eprint!("{}", render::metadata("<", md));
        }
    };
    match cli.command {
        Command::List {
            page,
            page_size,
            query,
            tag,
        } => {
            let request = ListArticlesRequest {
                page,
                page_size,
                query: query.unwrap_or_default(),
                tag: tag.unwrap_or_default(),
            };
            let response = client
                .idempotent(RETRIES, |mut c| {
                    let r = request.clone();
                    async move { c.list_articles(r).await }
                })
                .await?;
            show(response.metadata());
            let r = response.into_inner();
            println!("{}", render::list(&r.articles, r.total_count, out));
        }
        Command::Get { id } => {
            let response = client
                .idempotent(RETRIES, |mut c| async move {
                    c.get_article(GetArticleRequest { id }).await
                })
                .await?;
            show(response.metadata());
            let article = response.into_inner().article.unwrap_or_default();
            println!("{}", render::article(&article, out));
        }
        Command::Create {
            title,
            content,
            content_file,
            tags,
        } => {
            let content = read_content(content, content_file)?.unwrap_or_default();
            let request = CreateArticleRequest {
                title,
                content,
                tags,
            };
            let response = client
                .write(|mut c| {
                    let r = request.clone();
                    async move { c.create_article(r).await }
                })
                .await?;
            show(response.metadata());
            println!(
                "{}",
                render::article(&response.into_inner().article.unwrap_or_default(), out)
            );
        }
        Command::Update {
            id,
            title,
            content,
            content_file,
            tags,
            clear_tags,
            expected_version,
        } => {
            let current = client
                .idempotent(RETRIES, |mut c| async move {
                    c.get_article(GetArticleRequest { id }).await
                })
                .await?
                .into_inner()
                .article
                .unwrap_or_default();
            let content = read_content(content, content_file)?;
            let request = UpdateArticleRequest {
                id,
                title: title.unwrap_or(current.title),
                content: content.unwrap_or(current.content),
                tags: if clear_tags {
                    Vec::new()
                } else if tags.is_empty() {
                    current.tags
                } else {
                    tags
                },
                expected_version: expected_version.unwrap_or(current.version),
            };
            let response = client
                .write(|mut c| {
                    let r = request.clone();
                    async move { c.update_article(r).await }
                })
                .await?;
            show(response.metadata());
            println!(
                "{}",
                render::article(&response.into_inner().article.unwrap_or_default(), out)
            );
        }
        Command::Delete { id } => {
            let response = client
                .write(|mut c| async move { c.delete_article(DeleteArticleRequest { id }).await })
                .await?;
            show(response.metadata());
            if out == Output::Json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("deleted {id}");
            }
        }
        Command::Watch {
            tag,
            after_sequence,
        } => {
            watch(
                &client,
                tag.unwrap_or_default(),
                after_sequence,
                out,
                verbose,
            )
            .await?
        }
        Command::Import { files } => import(&client, &files, out, verbose).await?,
    }
    Ok(())
}

fn read_content(content: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Option<String>> {
    match (content, file) {
        (Some(c), _) => Ok(Some(c)),
        (None, Some(p)) if p.as_os_str() == "-" => {
            Ok(Some(std::io::read_to_string(std::io::stdin())?))
        }
        (None, Some(p)) => Ok(Some(
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?,
        )),
        (None, None) => Ok(None),
    }
}

/// Follows the stream until Ctrl-C. A dropped stream is reopened with
/// backoff and jitter, resuming after the last sequence seen (or the one
/// the server announced when the stream opened), so nothing is missed or
/// repeated. A resume point the server no longer retains is an error.
async fn watch(
    client: &ArticleClient,
    tag: String,
    mut last: i64,
    out: Output,
    verbose: bool,
) -> Result<(), Failure> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let mut c = client.any();
        let request = WatchArticlesRequest {
            tag: tag.clone(),
            after_sequence: last,
        };
        let opened = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            r = c.watch_articles(request) => r,
        };
        let failure = match opened {
            Ok(response) => {
                if verbose {
                    eprint!("{}", render::metadata("<", response.metadata()));
                }
                if last == 0 {
                    // The stream starts after this sequence: resume from it if
                    // the stream drops before any event arrives.
                    if let Some(s) = response
                        .metadata()
                        .get(proto::WATCH_SEQUENCE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                    {
                        last = s;
                    }
                }
                let mut stream = response.into_inner();
                loop {
                    let next = tokio::select! {
                        _ = &mut ctrl_c => return Ok(()),
                        n = stream.next() => n,
                    };
                    match next {
                        Some(Ok(event)) => {
                            backoff.reset();
                            let heartbeat = matches!(event.event, Some(Event::Heartbeat(_)));
                            if !heartbeat || verbose {
                                println!("{}", render::event(&event, out));
                            }
                            last = last.max(event.sequence);
                        }
                        Some(Err(status)) => break status,
                        None => break Status::unavailable("the server ended the stream"),
                    }
                }
            }
            Err(status) => status,
        };
        match failure.code() {
            Code::Unavailable
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted => {
                let delay = backoff.next_delay();
                eprintln!(
                    "watch: {}; reconnecting in {:.1}s from sequence {last}",
                    render::error_line(&failure),
                    delay.as_secs_f64()
                );
                tokio::select! {
                    _ = &mut ctrl_c => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            _ => return Err(failure.into()),
        }
    }
}

async fn import(
    client: &ArticleClient,
    files: &[PathBuf],
    out: Output,
    verbose: bool,
) -> Result<(), Failure> {
    let mut records = Vec::new();
    for f in files {
        records.extend(input::read_file(f)?);
    }
    let bar = indicatif::ProgressBar::new(records.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} articles sent")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let requests: Vec<CreateArticleRequest> = records.iter().map(|r| r.request.clone()).collect();
    let result = client
        .write(|mut c| {
            let bar = bar.clone();
            bar.set_position(0);
            let stream = futures::stream::iter(requests.clone()).inspect(move |_| bar.inc(1));
            async move { c.import_articles(stream).await }
        })
        .await;
    bar.finish_and_clear();
    let response = match result {
        Ok(r) => r,
        Err(status) => {
            // Name the input the server refused, by file and line.
            let mut failure = Failure::from(status.clone());
            if let Some(index) = status
                .message()
                .strip_prefix("message ")
                .and_then(|m| m.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok())
                && let Some(record) = records.get(index)
            {
                let prefix = format!("message {index}: ");
                let reasons: Vec<String> = status
                    .get_details_bad_request()
                    .map(|b| {
                        b.field_violations
                            .iter()
                            .map(|v| {
                                format!(
                                    "{}: {}",
                                    v.field,
                                    v.description.trim_start_matches(&prefix)
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                failure.0 = format!(
                    "{}: {} was refused, nothing was imported: {}",
                    render::code_name(&status),
                    record.source,
                    reasons.join("; ")
                );
            }
            return Err(failure);
        }
    };
    if verbose {
        eprint!("{}", render::metadata("<", response.metadata()));
    }
    let r = response.into_inner();
    match out {
        Output::Json => println!(
            "{}",
            serde_json::json!({ "created_count": r.created_count, "ids": r.ids })
        ),
        Output::Table => println!(
            "imported {} articles (ids {}..={})",
            r.created_count,
            r.ids.first().unwrap_or(&0),
            r.ids.last().unwrap_or(&0)
        ),
    }
    Ok(())
}
