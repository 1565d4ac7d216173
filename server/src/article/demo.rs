//! Sample articles for `--demo-data`, so a fresh install has something to
//! show. Loaded only into an empty database.

use super::{ArticleDraft, ArticleError, store::ArticleStore};

const TOPICS: &[(&str, &[&str], &str)] = &[
    (
        "Why gRPC-web without a gateway",
        &["grpc-web", "architecture"],
        "Browsers cannot speak raw HTTP/2 gRPC: they cannot read trailers. gRPC-web moves the trailers into the body, and tonic-web translates it on the server, so the browser calls the same service as every native client.\n\nNo JSON gateway, no Envoy, one port.",
    ),
    (
        "Protobuf in the browser, decoded by WASM",
        &["wasm", "protobuf"],
        "The Leptos app uses the very prost types the server uses. Messages are decoded in WebAssembly; there is no second schema in TypeScript to keep in step.",
    ),
    (
        "Server streaming for live updates",
        &["streaming", "grpc-web"],
        "WatchArticles is a server stream: every committed change has a sequence number, and a client that reconnects resumes after the last one it saw.\n\nHeartbeats let a client notice a dead connection.",
    ),
    (
        "Client streaming is for native clients",
        &["streaming", "cli"],
        "Browsers cannot send a request body as a stream over fetch yet, so ImportArticles is for native clients such as the CLI. It imports all articles in one transaction or none.",
    ),
    (
        "Optimistic concurrency with versions",
        &["api-design"],
        "Every article carries a version that grows by one on each update. Send expected_version and the server refuses (ABORTED) if someone else got there first.",
    ),
    (
        "Errors a person can read",
        &["api-design", "errors"],
        "Validation errors carry google.rpc.BadRequest details, one field violation per problem, so a form can show each message next to its field.",
    ),
    (
        "SQLite in WAL mode",
        &["sqlite", "storage"],
        "The embedded default stores everything in one file. WAL lets readers continue while a writer commits, and synchronous=FULL makes an acknowledged write survive a crash.",
    ),
    (
        "When to move to PostgreSQL",
        &["postgres", "operations"],
        "One machine on SQLite goes a long way. When it does not, several stateless replicas behind a load balancer share one PostgreSQL database.",
    ),
    (
        "CORS for gRPC-web",
        &["grpc-web", "security"],
        "A browser sends a preflight before a gRPC-web call from another origin. The server answers it from its configured origins and exposes grpc-status, grpc-message and the details header.",
    ),
    (
        "Bearer tokens for writes",
        &["security"],
        "Reading is public; creating, updating, deleting and importing need a bearer token. The token's name becomes the article's author.",
    ),
    (
        "Health checks that mean something",
        &["operations"],
        "grpc.health.v1 reports SERVING while the server takes calls and NOT_SERVING while it drains, so a load balancer stops sending new work before the process exits.",
    ),
    (
        "Graceful shutdown",
        &["operations"],
        "On SIGTERM the server stops accepting, lets in-flight calls finish for a bounded time, ends watch streams with UNAVAILABLE so clients reconnect elsewhere, and exits cleanly.",
    ),
    (
        "Request ids end to end",
        &["observability"],
        "Every response carries x-request-id: the caller's own, or one the server made. The same id is in the log line of the call.",
    ),
    (
        "Metrics in Prometheus format",
        &["observability"],
        "GET /metrics lists calls per method and status code and a latency histogram per method.",
    ),
    (
        "Compression on the wire",
        &["performance"],
        "Clients may send gzip-compressed messages, and receive them when they say they accept gzip. Small messages are often better left alone.",
    ),
    (
        "Message size limits",
        &["api-design", "security"],
        "Requests over the configured limit are refused with RESOURCE_EXHAUSTED before they are read into memory.",
    ),
    (
        "Reflection for ad-hoc calls",
        &["tooling"],
        "Server reflection lets grpcurl and buf curl discover the API without the .proto files.",
    ),
    (
        "Text mode for old proxies",
        &["grpc-web"],
        "application/grpc-web-text sends base64 so the body survives proxies that mangle binary. Binary mode is smaller and the default.",
    ),
    (
        "Pagination that can be bookmarked",
        &["web", "api-design"],
        "Page and page size live in the URL, so a page of results can be shared as a link.",
    ),
    (
        "Deadlines everywhere",
        &["api-design", "performance"],
        "Every call from the app has a deadline. The server sees grpc-timeout and stops work the client no longer waits for.",
    ),
    (
        "A heartbeat is not a keep-alive",
        &["streaming"],
        "HTTP/2 pings keep a connection open; an application heartbeat proves the stream still delivers. The app uses the second to decide when to reconnect.",
    ),
    (
        "Tags are simple on purpose",
        &["api-design"],
        "A tag is 1 to 32 characters of lowercase letters, digits and dashes. Duplicates are removed; at most ten per article.",
    ),
    (
        "Search without a search engine",
        &["storage", "web"],
        "The query matches a case-insensitive substring of the title or the content. For a few thousand articles this is plenty.",
    ),
    (
        "One binary, one port",
        &["architecture", "operations"],
        "The server binary serves the API in both protocols and the web app's files, so one firewall rule and one TLS certificate cover everything.",
    ),
    (
        "Leptos signals in practice",
        &["web", "wasm"],
        "Fine-grained reactivity means the list re-renders only the rows that changed when a watch event arrives.",
    ),
    (
        "Testing in a real browser",
        &["testing", "wasm"],
        "wasm-bindgen-test runs the client in headless Chromium against a real server, so CORS, trailers and streaming are tested as users meet them.",
    ),
    (
        "Benchmarks as ratios",
        &["performance", "testing"],
        "Absolute numbers on shared machines drift. Ratios against a baseline measured in the same run do not.",
    ),
    (
        "Durability you can test",
        &["sqlite", "testing"],
        "A test kills the server with SIGKILL right after a write is acknowledged, restarts it, and finds the article.",
    ),
    (
        "Unicode titles — naïve café",
        &["unicode"],
        "Titles are counted in characters, not bytes: 200 characters of any script. Search folds case across scripts: ÄRGER finds ärger.",
    ),
    (
        "Welcome!",
        &[],
        "This is demo data. Sign in with the token the server printed to create your own articles.",
    ),
];

/// Loads the sample articles if the store is empty; returns how many.
/// Several servers starting at once on one empty database load them once
/// (see [`ArticleStore::create_all_if_empty`]).
pub async fn load_if_empty(store: &dyn ArticleStore) -> Result<usize, ArticleError> {
    if store.count().await? > 0 {
        return Ok(0);
    }
    // Oldest first, so the first topic is newest in the list.
    let drafts = TOPICS
        .iter()
        .rev()
        .map(|(title, tags, content)| {
            ArticleDraft::new(
                title,
                (*content).to_owned(),
                tags.iter().map(|t| (*t).to_owned()).collect(),
            )
            .map_err(ArticleError::validation)
        })
        .collect::<Result<Vec<_>, _>>()?;
    store.create_all_if_empty("demo", drafts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_valid() {
        assert!(TOPICS.len() >= 30);
        for (title, tags, content) in TOPICS {
            ArticleDraft::new(
                title,
                (*content).to_owned(),
                tags.iter().map(|t| (*t).to_owned()).collect(),
            )
            .unwrap_or_else(|v| panic!("{title}: {v:?}"));
        }
    }
}
