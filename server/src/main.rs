//! `article-server`: parses settings, starts the application, prints the
//! URL (and a generated token) on stdout, and serves until SIGTERM/SIGINT;
//! SIGHUP re-reads `--tokens-file`.

use std::io::Write as _;

use article_server::{Application, Settings, telemetry};

/// jemalloc instead of the system allocator: 8 % fewer instructions per
/// cached gRPC-web call and 6 % per h2c call than glibc malloc
/// (`bench/profile/percall.sh`, 2026-11-30), and no more memory per
/// stream (BENCHMARKS.md, second round: same RSS over HTTP/1.1, -10 % over
/// HTTP/2). The library leaves the allocator to the program.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::load();
    let logging = telemetry::init(settings.log_format);
    match run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "article-server failed");
            // Log lines go out in batches: this one before the plain message.
            logging.flush();
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    // Before the "listening" line: scripts take it to mean "ready", and a
    // SIGTERM sent then must already mean a graceful stop.
    let signal = grpc_runtime::shutdown_signal();
    app.reload_tokens_on_sighup()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", app.url())?;
    if let Some(token) = app.generated_token() {
        // Printed once, on stdout only: it is a secret, so never logged.
        writeln!(out, "write token for {}: {}", token.name, token.token)?;
    }
    out.flush()?;
    drop(out);
    app.run_until(signal).await
}
