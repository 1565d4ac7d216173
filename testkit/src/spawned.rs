//! A server running inside the test process, on a task of the test's own
//! tokio runtime.

use std::{
    fmt::Debug,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

use crate::{TIMEOUT, init_logging};

/// The future a spawned server's `run_until` waits on: it completes when
/// the test begins the shutdown (or drops the server).
pub struct StopSignal(oneshot::Receiver<()>);

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Sent or dropped: either way it is time to stop.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

type Served = JoinHandle<Result<(), String>>;

/// A server serving on a task until the test stops it; dropping it begins
/// the shutdown without waiting for it.
///
/// With `grpc_runtime::Runtime` (or the article `Application`):
/// `SpawnedServer::spawn(runtime.local_addr(), runtime.url(), |stop| runtime.run_until(stop))`.
/// With a plain tonic server:
///
/// ```
/// use testkit::{SpawnedServer, echo::{Echo, EchoServiceClient, EchoServiceServer, pb}};
///
/// # #[tokio::main] async fn main() {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = SpawnedServer::spawn(addr, format!("http://{addr}"), |stop| {
///     tonic::transport::Server::builder()
///         .add_service(EchoServiceServer::new(Echo))
///         .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
/// });
/// let mut echo = EchoServiceClient::new(server.channel().await);
/// let request = pb::EchoRequest { message: "hi".into(), delay_ms: 0 };
/// assert_eq!(echo.echo(request).await.unwrap().into_inner().message, "hi");
/// let took = server.shutdown().await;
/// assert!(took < testkit::TIMEOUT);
/// # }
/// ```
#[derive(Debug)]
pub struct SpawnedServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://HOST:PORT` (or `https://`).
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<Served>,
}

impl SpawnedServer {
    /// Serves `run(stop)` on a new task, where `run` is typically
    /// `|stop| runtime.run_until(stop)` of a server already bound to `addr`.
    pub fn spawn<F, E>(addr: SocketAddr, url: String, run: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Debug,
    {
        init_logging();
        let (stop, stopped) = oneshot::channel();
        let serving = run(StopSignal(stopped));
        let task = tokio::spawn(async move { serving.await.map_err(|e| format!("{e:?}")) });
        Self {
            addr,
            url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts the shutdown, as SIGTERM would, and returns a handle to wait
    /// for its end.
    pub fn begin_shutdown(&mut self) -> Shutdown {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Shutdown {
            task: self.task.take().expect("the shutdown was begun only once"),
            started,
        }
    }

    /// Shuts down, waits until the server has stopped cleanly (bounded by
    /// [`TIMEOUT`]) and returns how long that took.
    pub async fn shutdown(mut self) -> Duration {
        self.begin_shutdown().finish().await
    }

    /// A native gRPC (HTTP/2 h2c) channel to the server, with [`TIMEOUT`].
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("the server url is an endpoint")
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("a channel connects to the server")
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A shutdown under way.
#[derive(Debug)]
pub struct Shutdown {
    task: Served,
    started: Instant,
}

impl Shutdown {
    /// Whether the server has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits (bounded by [`TIMEOUT`]) until the server has stopped, asserts
    /// that it stopped without error, and returns the time since the
    /// shutdown began.
    pub async fn finish(self) -> Duration {
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop within {TIMEOUT:?}"))
            .expect("the server task joins")
            .unwrap_or_else(|e| panic!("the server stops without error: {e}"));
        self.started.elapsed()
    }
}
