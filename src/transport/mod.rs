//! The session API programs use to download one object, shaped like the Win32 `wdstci.h`
//! client (WdsTransportClient*): build a [`Request`], [`Session::start`] it with a callback,
//! release delivered data with [`SessionHandle::complete_receive`], then [`Session::wait`],
//! [`Session::status`], [`Session::cancel`] and [`Session::close`].
//!
//! The callback runs on the session's own thread and receives the session's handle with every
//! event, so a consumer can complete receives (or cancel) from inside it without keeping a
//! handle of its own.
//!
//! Close and cancel are separate: `cancel` stops the transfer (LEAVE with reason CANCELLED) and
//! the session still completes, with [`TransportError::Cancelled`]; `close` only releases the
//! handle. A transfer that is still running when its handle is closed goes on to its end, and
//! its callbacks keep arriving; `SessionComplete` is always the last callback, delivered exactly
//! once.
//!
//! Threads: one driver per session (initiation, then the sans-IO client, the unicast socket it
//! sends from and the multicast socket it reads data from, and the callback), and one receive
//! thread for the unicast socket (JOINACK, a unicast KICK).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

mod dns;
mod driver;
mod error;
mod handle;
mod images;
mod initiation;
mod kerberos;
mod net;
mod receive;
mod rpc_initiation;
mod shared;

pub use crate::auth::Credentials;
pub use crate::proto::{Phase, SessionParams};
pub use crate::wire::Datagram;
pub use crate::wire::security::{SecModes, SessionSecurity};
pub use error::{
    AuthFailure, Internal, KerberosFailure, NetworkError, OsError, RequestError, RpcFailure,
    SocketAction, TransportError,
};
pub use handle::{CompleteError, Session, SessionHandle};
pub use images::{ImageList, ImagesRequest, list_images};
pub use initiation::initiate;

/// Default server port for unauthenticated session initiation.
pub const DEFAULT_MSI_PORT: u16 = crate::wire::msi::MSI_PORT;
/// Default TCP port of the WDS RPC listener (`wdsutil /set-server /rpcport`).
pub const DEFAULT_RPC_PORT: u16 = 5040;
/// The endpoint mapper's TCP port.
pub const ENDPOINT_MAPPER_PORT: u16 = 135;
/// Default number of delivered bytes the consumer may hold before completing them.
pub const DEFAULT_CACHE_SIZE: u64 = 32 * 1024 * 1024;

/// How the session is initiated.
#[derive(Debug, Clone, Default)]
pub enum Initiation {
    /// MS-WDSMSI over UDP (the server port in [`Request::server`], 5041 by default), with no
    /// identity (wdstci's `WDS_TRANSPORTCLIENT_NO_AUTH`). Stock servers accept it only for
    /// providers that allow unauthenticated requests.
    #[default]
    Udp,
    /// MS-WDSMSI over the WDS Control Protocol: `WdsRpcMessage` over authenticated DCE/RPC on
    /// TCP, as real deployments start sessions (wdstci's `WDS_TRANSPORTCLIENT_AUTH`).
    Rpc(RpcInitiation),
}

/// How to reach and log in to the WDS RPC listener.
#[derive(Debug, Clone)]
pub struct RpcInitiation {
    pub auth: RpcAuth,
    /// TCP port of the listener; ignored with `endpoint_mapper`.
    pub port: u16,
    /// Ask the endpoint mapper (TCP 135) for the listener's port.
    pub endpoint_mapper: bool,
    /// The client runs pre-OS (WinPE): the request carries `Cap` BOOT_DEVICE, and the server
    /// then uses the checksum both ways.
    pub pre_os: bool,
    /// Where Kerberos finds its KDC and the server's principal.
    pub kerberos: KerberosSettings,
}

impl RpcInitiation {
    pub fn new(auth: RpcAuth) -> Self {
        Self {
            auth,
            port: DEFAULT_RPC_PORT,
            endpoint_mapper: false,
            pre_os: false,
            kerberos: KerberosSettings::default(),
        }
    }
}

/// Kerberos settings of an RPC login.
#[derive(Debug, Clone, Default)]
pub struct KerberosSettings {
    /// The KDC, `HOST[:PORT]` (port 88 by default). Without it: the DNS SRV records
    /// `_kerberos._tcp.REALM`, then the realm's name itself (an Active Directory domain's
    /// name resolves to its domain controllers).
    pub kdc: Option<String>,
    /// The server's service principal, `service/host[@REALM]`. Without it:
    /// `host/<server name as given>` in the user's realm; none for a server given by address.
    pub spn: Option<String>,
    /// The credential cache file for logins without a password. Without it: `KRB5CCNAME`,
    /// else the platform's default cache.
    pub ccache: Option<std::path::PathBuf>,
}

/// Which security provider authenticates the RPC connection (at packet privacy).
#[derive(Debug, Clone)]
pub enum RpcAuth {
    /// SPNEGO (auth type 9), what Windows clients use: Kerberos when a ticket for the server
    /// can be had (a TGT from the password, then a service ticket), NTLM otherwise.
    Negotiate(Arc<Credentials>),
    /// Raw NTLM (auth type 10).
    Ntlm(Arc<Credentials>),
    /// Raw Kerberos (auth type 0x10), with a TGT got from the password.
    Kerberos(Arc<Credentials>),
    /// Kerberos from a credential cache, without a password: inside SPNEGO (auth type 9)
    /// with `spnego`, raw (0x10) otherwise. `user`, when given, must be the cache's client.
    KerberosCache { user: Option<String>, spnego: bool },
    /// Anonymous NTLM: no user, no password.
    Anonymous,
}

/// Resolves `HOST[:PORT]` (the port defaults to [`DEFAULT_MSI_PORT`]) the way a session does.
pub fn resolve(server: &str) -> Result<SocketAddr, TransportError> {
    net::check_server_syntax(server)?;
    net::resolve_server(server, DEFAULT_MSI_PORT)
}

/// The local interface a session towards `server` would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface's name, when the address belongs to a known interface.
    pub interface: Option<String>,
    /// The local address (JOIN announces it; multicast is joined on it).
    pub address: IpAddr,
    /// Interface index (0 when unknown).
    pub index: u32,
    pub mac: Vec<u8>,
}

/// Chooses the interface as a session does: `interface` when given, else the one the
/// system routes to `server` through (found without sending anything).
pub fn route(
    interface: Option<&InterfaceSpec>,
    server: SocketAddr,
) -> Result<Route, TransportError> {
    let chosen = net::choose_interface(interface, server)?;
    Ok(Route {
        interface: chosen.name,
        address: chosen.address,
        index: chosen.index,
        mac: chosen.mac,
    })
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

impl Timeouts {
    /// The limit of one phase.
    pub fn of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Initiation => self.initiation,
            Phase::Join => self.join,
            Phase::FirstData => self.first_data,
            Phase::Inactivity => self.inactivity,
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
    /// Delivered bytes the consumer may hold before [`SessionHandle::complete_receive`]; when
    /// it is reached the client stops delivering (back-pressure).
    pub cache_size: u64,
    pub interface: Option<InterfaceSpec>,
    pub timeouts: Timeouts,
    pub initiation: Initiation,
    /// Machine name sent in JOIN; the host name when `None`.
    pub client_name: Option<String>,
    /// Seed for the protocol's random back-offs; from the OS when `None`.
    pub seed: Option<u64>,
    /// Deliver an [`Event::Trace`] for every datagram sent or received.
    pub trace: bool,
}

impl Request {
    /// Checks what can be checked without the network: the server's form and the names.
    /// [`Session::start`] does the same.
    pub fn validate(&self) -> Result<(), TransportError> {
        initiation::validate(self)
    }

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
            initiation: Initiation::Udp,
            client_name: None,
            seed: None,
            trace: false,
        }
    }
}

/// What the server announced for the session, and the local address it runs on.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub params: SessionParams,
    /// The local address the session's unicast traffic comes from (and JOIN announces).
    pub local_address: IpAddr,
    /// The packet security modes and keys (the checksum both ways after UDP initiation).
    pub security: SessionSecurity,
    /// Whether the session was initiated over authenticated RPC.
    pub authenticated: bool,
    /// `UserSid` from an authenticated reply; JOIN echoes it.
    pub user_sid: Option<Vec<u8>>,
}

/// Counters kept during a session.
pub use crate::proto::client::ClientStats as Stats;

/// A session's status, as `WdsTransportClientQueryStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Success,
    Failure(TransportError),
}

/// Callback events, in order: `SessionStart` once, then the others in any order, then
/// `SessionComplete` exactly once, last.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    SessionStart(&'a SessionInfo),
    /// The content provider's `ContentMetadata`, when an authenticated reply carries any
    /// (right after `SessionStart`).
    ReceiveMetadata(&'a [u8]),
    /// A block's bytes at their offset in the object. The consumer must release them with
    /// [`SessionHandle::complete_receive`] once done with them (one call per delivery, or one
    /// per run of contiguous deliveries).
    ReceiveContents {
        offset: u64,
        data: &'a [u8],
    },
    /// About four times a second, and once more just before `SessionComplete`.
    Progress(&'a Stats),
    /// The server admitted this client (JOINACK) under this ClientId.
    Joined {
        client_id: u32,
    },
    /// The server made this client the master client (it acknowledges data), or stopped.
    MasterChanged {
        is_master: bool,
    },
    /// The server moved this client to a slower session; the client follows by itself.
    Demoted {
        to: &'a SessionParams,
    },
    /// The multicast socket got a smaller receive buffer than asked for, so bursts at high
    /// rates may be dropped (and repaired).
    ReceiveBufferLimited {
        granted: usize,
        requested: usize,
    },
    /// A datagram could not be sent; the protocol recovers from lost packets, so this is only
    /// worth showing.
    SendFailed {
        destination: SocketAddr,
        error: &'a io::Error,
    },
    /// A datagram sent (`outgoing`) or received, when [`Request::trace`] is set. Formatting
    /// the datagram decodes it.
    Trace {
        outgoing: bool,
        peer: SocketAddr,
        datagram: Datagram<'a>,
    },
    /// The security provider the RPC login starts with, e.g. "Kerberos (SPNEGO)" (a server
    /// may still answer a SPNEGO Kerberos offer with NTLM), and, when Negotiate could not get
    /// a Kerberos ticket, why (it then offers NTLM alone).
    Login {
        mechanism: &'a str,
        kerberos_unavailable: Option<&'a str>,
    },
    /// An RPC PDU of authenticated initiation, sent or received, when [`Request::trace`] is
    /// set. [`crate::rpc::pdu::Summary`] shows its type and lengths, never its tokens.
    RpcTrace {
        outgoing: bool,
        peer: SocketAddr,
        pdu: &'a [u8],
    },
    SessionComplete(&'a Result<Stats, TransportError>),
}
