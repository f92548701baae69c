//! Sans-IO state machines for both ends of an MS-WDSMT/MS-WDSMA session.
//!
//! Nothing here touches a socket, a clock, a thread or an entropy source. Callers feed
//! datagrams with [`Instant`]s they read themselves, drain datagrams to send with
//! `poll_transmit`, arm one timer from `poll_timeout`, and collect events with `poll_event`.
//! Randomness comes from a seeded [`SmallRng`] handed in at construction, so a test with a
//! virtual clock and a fixed seed replays exactly.
//!
//! Both machines, [`client::Client`] and [`server::ServerSession`], follow the same contract
//! (each one's documentation spells out its part) and describe what they want sent with the
//! same [`Transmit`], so a driver can batch datagrams without knowing which one it drives.
//! Inside, each keeps its state in owner types, one file each, and its timers in one
//! timer table (`timer.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use rand::SeedableRng;
pub use rand::rngs::SmallRng;

pub mod blocks;
pub mod client;
pub mod missing;
pub mod server;
pub(crate) mod timer;

/// A datagram (or a run of equal-sized datagrams) a machine wants sent. `poll_transmit`
/// appends its bytes to the caller's buffer and returns this: where they go, how many bytes
/// were appended, and how they are cut into datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    /// Bytes appended to the buffer.
    pub size: usize,
    /// `Some(n)`: the bytes are datagrams of `n` bytes each (the last may be shorter), to be
    /// sent with one segmentation-offload call; `None`: one datagram.
    pub segment_size: Option<usize>,
}

impl Transmit {
    /// One datagram of `size` bytes.
    pub fn datagram(destination: SocketAddr, size: usize) -> Self {
        Self {
            destination,
            size,
            segment_size: None,
        }
    }

    /// The datagrams' `(start, end)` byte ranges relative to where the bytes begin (an empty
    /// datagram is one empty range).
    pub fn datagrams(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let size = self.size;
        let step = self.segment_size.filter(|&s| s > 0).unwrap_or(size).max(1);
        (0..size.max(1))
            .step_by(step)
            .map(move |at| (at, (at + step).min(size)))
    }
}

/// What the session-initiation reply told the client about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    pub session_id: u32,
    /// Multicast group and port the server sends to.
    pub group: SocketAddr,
    /// Server unicast address and port every client packet goes to.
    pub server: SocketAddr,
    pub content_size: u64,
    pub block_size: u32,
    pub total_blocks: u64,
}

/// A phase of a session, as named when it times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Session initiation (MS-WDSMSI), before the transport starts.
    Initiation,
    /// From the first JOIN to the JOINACK.
    Join,
    /// From the JOINACK to the first block of data.
    FirstData,
    /// Silence from the server once data has flowed (MS-WDSMT InactivityTimeout).
    Inactivity,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Initiation => "session initiation",
            Phase::Join => "join",
            Phase::FirstData => "first data",
            Phase::Inactivity => "inactivity",
        })
    }
}

/// Milliseconds from `epoch` to `now`, the SenderTime unit; 0 when `now` is earlier.
pub fn millis_since(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_millis() as u64
}

/// A uniformly random duration in `[0, max_ms]` milliseconds.
pub fn random_millis(rng: &mut SmallRng, max_ms: u64) -> Duration {
    use rand::Rng;
    Duration::from_millis(rng.random_range(0..=max_ms))
}
