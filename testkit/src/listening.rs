//! The readiness contract of every server binary in the workspace (the
//! article server, the runtime's examples, the benchmark's reference
//! servers): once it accepts connections it prints one stdout line
//! `listening on URL`, with the real port when it was asked for port 0.
//!
//! Plain `std`, so `xtask` can share it without compiling anything else.

use std::net::SocketAddr;

/// What the line starts with.
pub const PREFIX: &str = "listening on ";

/// The URL of a listening line (`http://127.0.0.1:PORT`), or `None` for
/// any other line.
pub fn url(line: &str) -> Option<&str> {
    let url = line.trim().strip_prefix(PREFIX)?.trim();
    (!url.is_empty()).then_some(url)
}

/// The socket address of a URL such as `http://127.0.0.1:8080/`, if its
/// host is an IP address.
pub fn socket_addr(url: &str) -> Option<SocketAddr> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    authority.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_line_gives_its_url_and_address() {
        let line = "listening on http://127.0.0.1:41234\n";
        assert_eq!(url(line), Some("http://127.0.0.1:41234"));
        assert_eq!(
            socket_addr("http://127.0.0.1:41234/"),
            Some(SocketAddr::from(([127, 0, 0, 1], 41234)))
        );
        assert_eq!(
            url("listening on https://[::1]:8443").and_then(socket_addr),
            Some("[::1]:8443".parse().unwrap())
        );
    }

    #[test]
    fn other_lines_are_not_listening_lines() {
        assert_eq!(url("write token for admin: abc"), None);
        assert_eq!(url("listening on "), None);
        assert_eq!(url("not listening on http://x"), None);
        assert_eq!(socket_addr("http://localhost:8080"), None);
        assert_eq!(socket_addr("127.0.0.1:8080"), None);
    }
}
