//! The accept loop, and what keeps it going under abuse.
//!
//! * The listening socket has an accept queue of 4096 (tokio's default is
//!   1024), capped by the kernel's `net.core.somaxconn`.
//! * At [`bind`](crate::RuntimeBuilder::bind) the soft open-files limit is
//!   raised to the hard limit (both logged): a typical systemd soft limit
//!   of 1024 would stall the server at about a thousand connections.
//! * An accept error is logged as a warning, at most once per
//!   [`WARN_EVERY`] with the number of errors in between, and when it is
//!   about resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) the loop waits
//!   [`BACK_OFF`] before accepting again instead of spinning: tonic's own
//!   loop only traces the error and retries at once.
//! * With a connection limit, a connection beyond it is refused with a
//!   logged warning (rate-limited too): over cleartext it gets a short
//!   HTTP/1.1 `503` naming `--max-connections`, then is closed; over TLS it
//!   is closed.
//!
//! Connections that send nothing are closed by their wrapper
//! ([`crate::drain::Severable`]) after the header-read timeout.

use std::{
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};

use crate::drain::Connections;

/// How long the loop waits after an accept error about resources.
const BACK_OFF: Duration = Duration::from_millis(100);

/// At most one warning per kind this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Connections the kernel may hold for the accept loop. tokio's default
/// of 1024 overflows when a few thousand clients connect at once (a
/// reconnect storm): the kernel then drops their handshakes and they retry
/// after seconds. The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Binds `addr` with a [`BACKLOG`]-long accept queue.
pub(crate) fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft open-files limit to the hard one and logs both.
pub(crate) fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let Ok((soft, hard)) = Resource::NOFILE.get() else {
            return;
        };
        match rlimit::increase_nofile_limit(hard) {
            Ok(raised) if raised > soft => {
                tracing::info!("open files limit: soft {soft} raised to {raised} (hard {hard})")
            }
            Ok(_) => tracing::info!("open files limit: soft {soft}, hard {hard}"),
            Err(err) => {
                tracing::warn!("open files limit: soft {soft}, hard {hard}; cannot raise it: {err}")
            }
        }
    }
}

/// A warning that is logged at most once per [`WARN_EVERY`], with a count
/// of the occurrences it stood for.
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a warning is due (n occurrences since the last one
    /// were not logged), `None` to stay quiet.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < WARN_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn is_about_resources(err: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux and the BSDs alike.
    #[cfg(unix)]
    {
        matches!(err.raw_os_error(), Some(24 | 23 | 105 | 12 | 55))
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        true
    }
}

/// What the loop needs to decide on a connection.
pub(crate) struct Admission {
    pub(crate) connections: Arc<Connections>,
    /// 0 = no limit.
    pub(crate) max_connections: usize,
    /// Whether a refused connection may be answered in cleartext HTTP/1.1.
    pub(crate) cleartext: bool,
}

/// The refusal beyond `--max-connections`, for HTTP/1.1 clients; others
/// see the connection close.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 58\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
the server is at its connection limit (--max-connections)\n";

/// Accepted TCP connections (nodelay set), admitted under the limit.
pub(crate) fn tcp_connections(
    listener: TcpListener,
    admission: Admission,
) -> impl Stream<Item = io::Result<TcpStream>> {
    let state = (listener, admission, RateLimited::new(), RateLimited::new());
    futures::stream::unfold(state, |mut state| async move {
        let (listener, admission, accept_warning, refusal_warning) = &mut state;
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    let resources = is_about_resources(&err);
                    if let Some(more) = accept_warning.due() {
                        tracing::warn!(
                            open_connections = admission.connections.open(),
                            "accept failed: {err} ({more} more failures not logged){}",
                            if resources { "; backing off" } else { "" }
                        );
                    }
                    if resources {
                        tokio::time::sleep(BACK_OFF).await;
                    }
                    continue;
                }
            };
            let max = admission.max_connections;
            if max > 0 && admission.connections.open() >= max {
                if let Some(more) = refusal_warning.due() {
                    tracing::warn!(
                        %peer,
                        "refusing a connection: {max} open, the --max-connections limit \
                         ({more} more refusals not logged)"
                    );
                }
                if admission.cleartext {
                    // Best effort, never waits: a fresh socket has room.
                    let _ = tcp.try_write(REFUSAL);
                }
                continue;
            }
            let _ = tcp.set_nodelay(true);
            return Some((Ok(tcp), state));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_declares_its_length() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn warnings_are_rate_limited_with_a_count() {
        let mut warning = RateLimited::new();
        assert_eq!(warning.due(), Some(0));
        assert_eq!(warning.due(), None);
        assert_eq!(warning.due(), None);
        warning.last = Some(Instant::now() - WARN_EVERY);
        assert_eq!(warning.due(), Some(2));
    }
}
