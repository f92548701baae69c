//! Why a session could not start or ended without the whole object.
//!
//! Every variant carries the values involved, not pre-formatted text, so a program can act on
//! them and a front end can add its own hints (the CLI names its options there). Messages
//! include the operating system's error text but never chain it as a separate cause, so a
//! printed error chain shows each cause once.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::Phase;
use crate::wire::msi::{self, ReplyError};
use crate::wire::mt::KickReason;

/// Why a session ended without the whole object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// [`super::Session::cancel`] was called.
    #[error("cancelled")]
    Cancelled,
    /// [`super::SessionHandle::abort`] was called: the consumer could not go on.
    #[error("the consumer aborted the session")]
    Aborted,
    #[error("timed out during {phase} after {}", humantime::format_duration(*.after))]
    Timeout { phase: Phase, after: Duration },
    #[error("refused by the server: {} (0x{code:08X}); check the namespace and object name", refusal(*.code))]
    Refused { code: u32 },
    #[error("kicked by the server (reason {})", .reason.name())]
    Kicked { reason: KickReason },
    /// The request cannot be sent as given.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    #[error("the server's session description is invalid: {0}")]
    InvalidReply(ReplyError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The server did not accept the credentials, or denied this user the object.
    #[error(transparent)]
    AuthFailed(#[from] AuthFailure),
    /// The RPC conversation failed for a reason other than authentication.
    #[error(transparent)]
    Rpc(#[from] RpcFailure),
    #[error("internal error: {0}")]
    Internal(Internal),
}

/// The meaning of a server's refusal code, as far as it is known.
fn refusal(code: u32) -> String {
    msi::error_code::describe(code)
        .map(|(name, meaning)| format!("{meaning} ({name})"))
        .unwrap_or_else(|| "unknown error".into())
}

/// A request that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no server given")]
    NoServer,
    #[error(
        "server {server:?} has an invalid port {port:?}; use HOST:PORT with a port from 1 to 65535"
    )]
    BadPort { server: String, port: String },
    #[error(transparent)]
    Field(#[from] msi::RequestError),
    #[error("client name {name:?} cannot be sent: {reason}")]
    ClientName { name: String, reason: String },
    /// The session's blocks are larger than the cache: not one could ever be delivered.
    #[error(
        "a cache of {cache} bytes cannot hold one block of this session ({block_size} bytes); it needs at least {block_size}"
    )]
    CacheTooSmall { cache: u64, block_size: u32 },
}

/// How authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("the server rejected the credentials at bind (bind_nak, reason {})", reject_reason(*.reason))]
    BindRejected { reason: u16 },
    #[error("the server rejected the credentials (fault 0x{status:08X} on the security exchange)")]
    SecurityExchange { status: u32 },
    #[error(
        "access denied by the server (fault 0x00000005): the credentials were rejected or lack the right to call it"
    )]
    AccessDenied,
    #[error("access denied to {namespace:?}/{object:?} for this user (0x00000005)")]
    ObjectDenied { namespace: String, object: String },
    #[error("authentication failed: {0}")]
    Provider(crate::rpc::security::AuthError),
    #[error(transparent)]
    Kerberos(KerberosFailure),
}

/// Why a Kerberos login could not happen (a KDC that cannot be reached is a
/// [`NetworkError::KdcUnreachable`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KerberosFailure {
    /// KRB_AP_ERR_SKEW from the KDC (or the server).
    #[error(
        "Kerberos clock skew: this machine's clock is more than 5 minutes away from the {peer}'s; correct the clock (or its time zone)"
    )]
    ClockSkew { peer: &'static str },
    /// The KDC answered with a KRB-ERROR.
    #[error("the KDC of realm {realm} refused {what}: {message} (Kerberos error {code})")]
    Refused {
        realm: String,
        what: String,
        code: i32,
        message: String,
    },
    /// No ticket can be had without asking the user (no cache, an expired one, another
    /// principal's).
    #[error("no usable Kerberos credentials: {0}")]
    NoCredentials(String),
    /// The server is an IP address and no `--spn` was given.
    #[error(
        "no Kerberos service principal for server {server}: it is an IP address; give the server's DNS name or the service principal name"
    )]
    NoSpn { server: String },
    /// The realm could not be worked out from the user and server names.
    #[error("no Kerberos realm for user {user:?}: give the user as NAME@REALM")]
    NoRealm { user: String },
    /// A reply that does not check (wrong password, altered message...).
    #[error("Kerberos: {0}")]
    Failed(String),
}

fn reject_reason(reason: u16) -> String {
    use crate::rpc::pdu::reject_reason as r;
    let name = match reason {
        r::AUTHENTICATION_TYPE_NOT_RECOGNIZED => "authentication type not recognized",
        r::INVALID_CHECKSUM => "invalid checksum",
        r::PROTOCOL_VERSION_NOT_SUPPORTED => "protocol version not supported",
        r::TEMPORARY_CONGESTION => "temporary congestion",
        r::LOCAL_LIMIT_EXCEEDED => "local limit exceeded",
        _ => "not specified",
    };
    format!("{reason}: {name}")
}

/// An RPC conversation that failed for a reason other than authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcFailure {
    #[error("the RPC call failed with fault 0x{status:08X}")]
    Fault { status: u32 },
    #[error("the RPC connection to {server} failed: {error}")]
    Connection {
        server: SocketAddr,
        error: crate::rpc::client::ClientError,
    },
    #[error(
        "the endpoint mapper on {server} does not know the WDS interface (status 0x{status:08X})"
    )]
    NotRegistered { server: SocketAddr, status: u32 },
    #[error("the server's WdsRpcMessage reply is malformed: {0}")]
    BadReply(crate::wire::DecodeError),
    #[error("the server's security parameters are unusable: {0}")]
    BadSecurity(crate::wire::security::KeyError),
}

/// Name resolution, interface choice and socket setup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot resolve server {server:?}: {error}")]
    Resolve { server: String, error: OsError },
    #[error("server {server:?} resolves to no address")]
    NoAddress { server: String },
    #[error("no local interface has address {address}")]
    NoInterfaceAddress { address: IpAddr },
    #[error("no such interface {name:?}; known interfaces: {}", .known.join(", "))]
    NoSuchInterface { name: String, known: Vec<String> },
    #[error("interface {name:?} has no {} address to reach server {server}", family(.server.ip()))]
    NoFamilyAddress { name: String, server: SocketAddr },
    #[error("no route to server {server}: {error}")]
    NoRoute { server: SocketAddr, error: OsError },
    #[error(
        "the server put the session on {session}, but the interface has no {} address",
        family(.session.ip())
    )]
    SessionFamily { session: SocketAddr },
    #[error("cannot {action}: {error}")]
    Socket {
        action: SocketAction,
        error: OsError,
    },
    #[error("cannot send to server {server}: {error}")]
    Send { server: SocketAddr, error: OsError },
    #[error("cannot connect to the WDS RPC listener {server}: {error}")]
    RpcConnect { server: SocketAddr, error: OsError },
    #[error("the RPC connection to {server} failed: {error}")]
    RpcStream { server: SocketAddr, error: OsError },
    /// No KDC of the realm answered (none found, refused, timed out).
    #[error("cannot reach a Kerberos KDC for realm {realm} ({tried}): {error}")]
    KdcUnreachable {
        realm: String,
        tried: String,
        error: String,
    },
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The socket operation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAction {
    BindUnicast(IpAddr),
    SetTimeout,
    CreateMulticast {
        group: SocketAddr,
    },
    SetReuse {
        group: SocketAddr,
    },
    BindGroup {
        group: SocketAddr,
        bind: SocketAddr,
    },
    JoinGroup {
        group: SocketAddr,
        interface: String,
    },
}

impl fmt::Display for SocketAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BindUnicast(ip) => write!(f, "bind a UDP socket on {ip}"),
            Self::SetTimeout => f.write_str("set a socket timeout"),
            Self::CreateMulticast { group } => write!(f, "create a socket for group {group}"),
            Self::SetReuse { group } => write!(f, "set address reuse for group {group}"),
            Self::BindGroup { group, bind } => write!(f, "bind {bind} for group {group}"),
            Self::JoinGroup { group, interface } => {
                write!(f, "join group {group} on interface {interface}")
            }
        }
    }
}

/// Failures of the session machinery itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Internal {
    #[error("cannot start a thread: {0}")]
    Thread(OsError),
    #[error("the receive thread stopped")]
    ReceiveThreadStopped,
    #[error("the session thread panicked")]
    Panicked,
    /// The client could not set up its block bitmap (initiation already refuses sizes that
    /// disagree, so in practice: no memory for it).
    #[error("cannot set up the session: {0}")]
    Session(crate::proto::blocks::BitmapError),
}

/// An operating-system error, shareable so that [`TransportError`] stays `Clone` (a session's
/// status is read by every waiter). Two are equal when their kinds and OS codes are.
#[derive(Debug, Clone)]
pub struct OsError(Arc<io::Error>);

impl OsError {
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    pub fn io(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for OsError {
    fn from(error: io::Error) -> Self {
        Self(Arc::new(error))
    }
}

impl PartialEq for OsError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.0.raw_os_error() == other.0.raw_os_error()
    }
}

impl Eq for OsError {}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values_and_each_cause_once() {
        let refused = TransportError::Refused {
            code: msi::error_code::NAMESPACE_NOT_FOUND,
        };
        let text = refused.to_string();
        assert!(text.contains("namespace not found"), "{text}");
        assert!(text.contains("0xC1210105"), "{text}");
        let timeout = TransportError::Timeout {
            phase: Phase::Join,
            after: Duration::from_secs(3),
        };
        assert_eq!(timeout.to_string(), "timed out during join after 3s");
        let bind = TransportError::from(NetworkError::Socket {
            action: SocketAction::BindUnicast("127.0.0.1".parse().unwrap()),
            error: io::Error::from(io::ErrorKind::AddrInUse).into(),
        });
        let text = bind.to_string();
        assert!(
            text.starts_with("cannot bind a UDP socket on 127.0.0.1: "),
            "{text}"
        );
        // The OS error is part of the message, not a separate cause that a chain would repeat.
        assert!(std::error::Error::source(&bind).is_none());
    }
}
