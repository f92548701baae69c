//! The one room for platform code and `unsafe` (the CLI's signal and console handlers aside):
//! batched UDP receive (`recvmmsg`, UDP GRO) and send (`sendmmsg`, UDP GSO), socket setup
//! for the client's multicast socket and the server's session socket, positional file I/O,
//! the receive-error predicate every receive loop shares, and the interface MTU and flags
//! `wdsmc doctor` reports.
//!
//! Everything here is plain I/O with `std::io::Error`s: the layers above (`transport`,
//! `server`, `download`) decide what an error means. Linux gets the batched paths; every
//! other platform gets one system call per datagram with the same interface.

use std::io;

pub mod file;
pub mod iface;
pub mod recv;
pub mod send;
pub mod socket;

/// Whether a receive error is one a receive loop just retries: a read timeout (how loops
/// notice a stop request), an interrupted call, or an ICMP port-unreachable surfacing as a
/// reset or refusal on the next receive (Windows and Linux report it this way).
pub fn is_transient_recv_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
