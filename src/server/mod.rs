//! The reference server: namespaces served from folders, the MS-WDSMSI UDP responder, and one
//! driver per object session that owns its sockets and clock and runs [`crate::proto::server`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// One namespace: a name clients ask for and the folder its objects come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    pub name: String,
    pub root: PathBuf,
}

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Everything `wdsmc serve` can set.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub namespaces: Vec<NamespaceConfig>,
    /// Address the MSI responder and the session sockets bind to; also announced to clients as
    /// the server address, and the interface multicast is sent on.
    pub listen: IpAddr,
    pub msi_port: u16,
    /// IPv4 groups sessions are given, as a CIDR block (e.g. 239.255.77.0/24).
    pub group_range_v4: (std::net::Ipv4Addr, u8),
    /// IPv6 groups, when the server listens on IPv6 (e.g. ff15::77:0/112).
    pub group_range_v6: Option<(std::net::Ipv6Addr, u8)>,
    /// Inclusive UDP port range for sessions.
    pub port_range: (u16, u16),
    pub block_size: u32,
    /// Cap on the data rate of each session, bytes per second; `None` = no cap.
    pub max_rate: Option<u64>,
    /// Kick (reason FALLBACK) clients whose progress stays below this many bytes per second.
    pub auto_disconnect_below: Option<u64>,
    pub ttl: u32,
    /// Session ends after this long without any client packet (MS-WDSMT default 300 s).
    pub session_inactivity: Duration,
    pub log_format: LogFormat,
    /// Seed for session ids and back-offs; from the OS when `None`.
    pub seed: Option<u64>,
}

/// Default server block size: a LAN-safe size well below the 64 KiB DataLen limit.
pub const DEFAULT_BLOCK_SIZE: u32 = 8192;

impl ServerConfig {
    pub fn new(namespaces: Vec<NamespaceConfig>) -> Self {
        Self {
            namespaces,
            listen: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            msi_port: crate::wire::msi::MSI_PORT,
            group_range_v4: (std::net::Ipv4Addr::new(239, 255, 77, 0), 24),
            group_range_v6: None,
            port_range: (64001, 65000),
            block_size: DEFAULT_BLOCK_SIZE,
            max_rate: None,
            auto_disconnect_below: None,
            ttl: 1,
            session_inactivity: Duration::from_secs(300),
            log_format: LogFormat::Human,
            seed: None,
        }
    }
}

/// A running server; [`Server::shutdown`] (or dropping it) stops it cleanly.
pub struct Server {
    _private: (),
}

impl Server {
    /// Binds the MSI port and starts serving on background threads.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let _ = config;
        todo!("server::Server::start")
    }

    /// The MSI responder's bound address (useful with port 0 in tests).
    pub fn msi_addr(&self) -> SocketAddr {
        todo!()
    }

    /// Stops every session and the responder, and waits for their threads.
    pub fn shutdown(self) {}

    /// Blocks until the server stops (after [`Server::shutdown`] from another thread, or a
    /// fatal error).
    pub fn wait(&self) {
        todo!()
    }
}

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot bind {addr}: {source}; is another server running, or is the address not local?"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("namespace {name}: folder {root} is not readable: {source}")]
    Namespace {
        name: String,
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
