//! The session API programs use to download one object, shaped like the Win32 `wdstci.h`
//! client (WdsTransportClient*): build a [`Request`], [`Session::start`] it with a callback,
//! release delivered data with [`Session::complete_receive`], then [`Session::wait`],
//! [`Session::status`], [`Session::cancel`] and [`Session::close`].
//!
//! Close and cancel are separate: `cancel` stops the transfer (LEAVE with reason CANCELLED) and
//! the session still completes, with [`TransportError::Cancelled`]; `close` only releases the
//! handle. A transfer that is still running when its handle is closed goes on to its end, and
//! its callbacks keep arriving; `SessionComplete` is always the last callback, delivered exactly
//! once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::wire::mt::KickReason;

/// Default server port for unauthenticated session initiation.
pub const DEFAULT_MSI_PORT: u16 = crate::wire::msi::MSI_PORT;
/// Default number of delivered bytes the consumer may hold before completing them.
pub const DEFAULT_CACHE_SIZE: u64 = 32 * 1024 * 1024;

/// How the client proves who it is when initiating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthLevel {
    /// MS-WDSMSI over UDP: no identity (wdstci's `WDS_TRANSPORTCLIENT_NO_AUTH`).
    #[default]
    Unauthenticated,
    /// MS-WDSMSI over the WDS Control Protocol with a user identity; not supported yet.
    Authenticated,
}

/// Which local interface to use, by address or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    Address(IpAddr),
    Name(String),
}

/// Time limits for each phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Session initiation: the MSI request is re-sent every second until this runs out.
    pub initiation: Duration,
    /// From the first JOIN to the JOINACK.
    pub join: Duration,
    /// From the JOINACK to the first block of data.
    pub first_data: Duration,
    /// Silence from the server once data has flowed (MS-WDSMT InactivityTimeout).
    pub inactivity: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            initiation: Duration::from_secs(30),
            join: Duration::from_secs(30),
            first_data: Duration::from_secs(60),
            inactivity: Duration::from_secs(30),
        }
    }
}

/// A session phase, as named in timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Initiation,
    Join,
    FirstData,
    Inactivity,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Initiation => "session initiation",
            Phase::Join => "join",
            Phase::FirstData => "first data",
            Phase::Inactivity => "inactivity",
        }
    }
}

/// Everything needed to download one object.
#[derive(Debug, Clone)]
pub struct Request {
    /// Server host name or address, optionally with `:port` (default [`DEFAULT_MSI_PORT`]).
    pub server: String,
    pub namespace: String,
    /// The object (content) name within the namespace.
    pub object: String,
    /// Delivered bytes the consumer may hold before [`Session::complete_receive`]; when it is
    /// reached the client stops delivering (back-pressure).
    pub cache_size: u64,
    pub interface: Option<InterfaceSpec>,
    pub timeouts: Timeouts,
    pub auth: AuthLevel,
    /// Machine name sent in JOIN; the host name when `None`.
    pub client_name: Option<String>,
    /// Seed for the protocol's random back-offs; from the OS when `None`.
    pub seed: Option<u64>,
    /// Deliver an [`Event::Trace`] for every packet sent or received.
    pub trace: bool,
}

impl Request {
    pub fn new(
        server: impl Into<String>,
        namespace: impl Into<String>,
        object: impl Into<String>,
    ) -> Self {
        Self {
            server: server.into(),
            namespace: namespace.into(),
            object: object.into(),
            cache_size: DEFAULT_CACHE_SIZE,
            interface: None,
            timeouts: Timeouts::default(),
            auth: AuthLevel::Unauthenticated,
            client_name: None,
            seed: None,
            trace: false,
        }
    }
}

/// What the server announced for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub server: SocketAddr,
    pub group: SocketAddr,
    pub local_address: IpAddr,
    pub session_id: u32,
    pub content_size: u64,
    pub block_size: u32,
    pub total_blocks: u64,
}

/// Counters kept during a session.
pub use crate::proto::client::ClientStats as Stats;

/// Why a session ended without the whole object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cancelled")]
    Cancelled,
    #[error("timed out during {} after {}", .phase.name(), humantime::format_duration(*.after))]
    Timeout { phase: Phase, after: Duration },
    #[error("refused by the server: {message} (0x{code:08X}); check the namespace and object name")]
    Refused { code: u32, message: String },
    #[error("kicked by the server (reason {})", .reason.name())]
    Kicked { reason: KickReason },
    #[error("network setup failed: {0}")]
    Network(String),
    #[error("the server's session description is invalid: {0}")]
    Protocol(String),
    #[error(
        "authenticated initiation (WDS Control Protocol over RPC) is not supported yet; use an unauthenticated namespace"
    )]
    AuthNotSupported,
    #[error("the consumer aborted the session: {0}")]
    Consumer(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A session's status, as `WdsTransportClientQueryStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Success,
    Failure(TransportError),
}

/// Callback events, in order: `SessionStart` once, then `ReceiveMetadata` (if any),
/// `ReceiveContents` and `Progress` in any order, then `SessionComplete` exactly once, last.
#[derive(Debug)]
pub enum Event<'a> {
    SessionStart(&'a SessionInfo),
    ReceiveMetadata(&'a [u8]),
    /// A block's bytes at their offset in the object. The consumer must call
    /// [`Session::complete_receive`] with the same offset and length once done with them.
    ReceiveContents {
        offset: u64,
        data: &'a [u8],
    },
    Progress(&'a Stats),
    /// A line worth showing the user (e.g. "became master client"), not an error.
    Notice(&'a str),
    /// One decoded packet, sent (`outgoing`) or received, for `--trace`.
    Trace {
        outgoing: bool,
        peer: SocketAddr,
        summary: &'a str,
    },
    SessionComplete(&'a Result<Stats, TransportError>),
}

mod net;
mod session;
mod trace;
pub use session::{Session, SessionHandle, initiate};
