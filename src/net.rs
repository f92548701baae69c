//! Socket helpers both the client transport and the reference server need.

use std::io;

/// Whether a receive error is one a receive loop just retries: a read timeout (how loops
/// notice a stop request), an interrupted call, or an ICMP port-unreachable surfacing as a
/// reset or refusal on the next receive (Windows and Linux report it this way).
pub(crate) fn is_transient_recv_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
