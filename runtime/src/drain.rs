//! The end of a drain: cutting the connections still open when the drain
//! time is up.
//!
//! Each connection is served in a task of its own ([`crate::serve`]) and a
//! graceful shutdown waits for all of them. Giving up that wait after a
//! timeout would leave those tasks, and the calls on them, running (until
//! the process exits, which a test or an embedding program may not do). So
//! every accepted connection is wrapped in [`Severable`], and
//! [`Connections::cut`] makes their reads and writes fail: hyper then ends
//! each connection and drops the calls on it, which cancels their handlers.
//!
//! Cheap on the hot path: one atomic load per read or write, and a waker
//! registration only when the socket has nothing to read or no room to
//! write.
//!
//! The wrapper also closes a connection that sends (almost) nothing: until
//! its first [`OPENING_BYTES`] bytes have arrived, a read that has to wait
//! fails with `TimedOut` once the header-read timeout has passed, and hyper
//! closes the connection. (hyper's own HTTP/1 header timeout starts only
//! once hyper-util has seen enough bytes to tell HTTP/1.1 from HTTP/2, so a
//! silent socket, or one that sent a byte of the HTTP/2 preface, was kept
//! forever.)
//! Later silences are left to hyper: its HTTP/1 header-read timeout (30 s)
//! between requests, HTTP/2 keepalive PINGs on idle HTTP/2 connections.

use std::{
    collections::HashMap,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use futures::task::AtomicWaker;
use std::{future::Future as _, time::Duration};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The connections of one server, and the switch that cuts them all.
/// Dropping it cuts them too: no connection outlives the server.
pub(crate) struct Connections {
    shared: Arc<Shared>,
    /// How long a new connection may stay silent; `None` = forever.
    first_byte_within: Option<Duration>,
}

struct Shared {
    cut: AtomicBool,
    next_id: AtomicU64,
    /// The waker of every open connection's task, to wake on a cut.
    wakers: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
}

impl Connections {
    pub(crate) fn new(first_byte_within: Option<Duration>) -> Self {
        Self {
            shared: Arc::new(Shared {
                cut: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                wakers: Mutex::new(HashMap::new()),
            }),
            first_byte_within,
        }
    }

    /// How many wrapped connections are open.
    pub(crate) fn open(&self) -> usize {
        self.lock().len()
    }

    /// Wraps an accepted connection so that [`cut`](Self::cut) reaches it.
    pub(crate) fn wrap<IO>(&self, io: IO) -> Severable<IO> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        self.lock().insert(id, waker.clone());
        Severable {
            io,
            id,
            waker,
            shared: self.shared.clone(),
            first_byte: self
                .first_byte_within
                .map(|within| Box::pin(tokio::time::sleep(within))),
            opening_left: OPENING_BYTES,
        }
    }

    /// From now on every read and write of every connection fails.
    pub(crate) fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for waker in self.lock().values() {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicWaker>>> {
        self.shared.lock()
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        self.cut();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicWaker>>> {
        // A panic while holding the lock leaves the map intact.
        self.wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection that fails its reads and writes once its server cuts it.
pub(crate) struct Severable<IO> {
    io: IO,
    id: u64,
    waker: Arc<AtomicWaker>,
    shared: Arc<Shared>,
    /// Until the opening bytes are in: when the connection stops waiting
    /// for them.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Opening bytes still to come.
    opening_left: usize,
}

/// The bytes hyper-util reads to tell HTTP/2 (its 24-byte preface) from
/// HTTP/1.1; any HTTP/1.1 request but the shortest HTTP/1.0 one is longer.
pub(crate) const OPENING_BYTES: usize = 24;

impl<IO> Drop for Severable<IO> {
    fn drop(&mut self) {
        self.shared.lock().remove(&self.id);
    }
}

fn silent() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "nothing received within the header-read timeout: connection closed",
    )
}

fn severed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the drain time is up: connection closed",
    )
}

impl<IO: Unpin> Severable<IO> {
    /// Runs one I/O poll unless the connection is cut; when the poll has to
    /// wait, the cut must be able to wake it.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut IO>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.shared.cut.load(Ordering::Acquire) {
            return Poll::Ready(Err(severed()));
        }
        match poll(Pin::new(&mut self.io), cx) {
            Poll::Pending => {
                self.waker.register(cx.waker());
                // A cut between the first check and the registration woke
                // nobody: look again.
                if self.shared.cut.load(Ordering::SeqCst) {
                    Poll::Ready(Err(severed()))
                } else {
                    Poll::Pending
                }
            }
            ready => ready,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Severable<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match this.guard(cx, |io, cx| io.poll_read(cx, buf)) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.opening_left = this.opening_left.saturating_sub(read);
                if this.opening_left == 0 || read == 0 {
                    // The opening is in, or the peer closed its side.
                    this.first_byte = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .first_byte
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    tracing::debug!("closing a connection that sent nothing");
                    Poll::Ready(Err(silent()))
                } else {
                    Poll::Pending
                }
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Severable<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is what a cut wants: let it through.
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for Severable<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_cut_wakes_a_waiting_read_and_fails_later_writes() {
        let connections = Connections::new(None);
        let (near, mut far) = tokio::io::duplex(64);
        let mut conn = connections.wrap(near);
        far.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        // Nothing more to read: the reader's task sleeps until the cut
        // wakes it.
        let (polled, was_polled) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            let mut read = std::pin::pin!(conn.read(&mut buf));
            assert!(futures::poll!(read.as_mut()).is_pending());
            polled.send(()).unwrap();
            let outcome = read.await.map(|_| ());
            (conn, outcome)
        });
        was_polled.await.unwrap();
        connections.cut();
        let (mut conn, outcome) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("the cut wakes the waiting read")
            .unwrap();
        assert_eq!(
            outcome.unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
        assert_eq!(
            conn.write_all(b"late").await.unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
        drop(conn);
        assert!(
            connections.lock().is_empty(),
            "a closed connection leaves no waker behind"
        );
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_or_too_little_is_closed_after_the_timeout() {
        let connections = Connections::new(Some(std::time::Duration::from_millis(100)));
        let (near, far) = tokio::io::duplex(64);
        let mut conn = connections.wrap(near);
        let mut buf = [0u8; 1];
        let err = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("the timeout ends the read")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        // One byte (of an HTTP/2 preface, say) is not enough…
        let (near, mut second) = tokio::io::duplex(64);
        let mut conn = connections.wrap(near);
        second.write_all(b"P").await.unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        let err = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("the timeout ends the read")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        // …but once the opening bytes are in, silence is not this
        // wrapper's business.
        let (near, mut third) = tokio::io::duplex(64);
        let mut conn = connections.wrap(near);
        drop(far);
        third.write_all(&[b'x'; OPENING_BYTES]).await.unwrap();
        let mut opening = [0u8; OPENING_BYTES];
        conn.read_exact(&mut opening).await.unwrap();
        let later =
            tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut buf)).await;
        assert!(
            later.is_err(),
            "a connection that spoke is left waiting: {later:?}"
        );
    }
}
