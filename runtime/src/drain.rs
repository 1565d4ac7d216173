//! The end of a drain: cutting the connections still open when the drain
//! time is up.
//!
//! tonic serves each connection in a task of its own and, on graceful
//! shutdown, waits for all of them. Dropping its server future after a
//! timeout would leave those tasks, and the calls on them, running (until
//! the process exits, which a test or an embedding program may not do). So
//! every accepted connection is wrapped in [`Severable`], and
//! [`Connections::cut`] makes their reads and writes fail: hyper then ends
//! each connection and drops the calls on it, which cancels their handlers.
//!
//! Cheap on the hot path: one atomic load per read or write, and a waker
//! registration only when the socket has nothing to read or no room to
//! write.

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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The connections of one server, and the switch that cuts them all.
/// Dropping it cuts them too: no connection outlives the server.
pub(crate) struct Connections {
    shared: Arc<Shared>,
}

struct Shared {
    cut: AtomicBool,
    next_id: AtomicU64,
    /// The waker of every open connection's task, to wake on a cut.
    wakers: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
}

impl Connections {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                cut: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                wakers: Mutex::new(HashMap::new()),
            }),
        }
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
}

impl<IO> Drop for Severable<IO> {
    fn drop(&mut self) {
        self.shared.lock().remove(&self.id);
    }
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
        self.get_mut().guard(cx, |io, cx| io.poll_read(cx, buf))
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
        let connections = Connections::new();
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
}
