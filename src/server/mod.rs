//! The reference server: namespaces served from folders, the MS-WDSMSI UDP responder, and one
//! driver per object session that owns its sockets and clock and runs [`crate::proto::server`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub mod content;
pub mod driver;
pub mod images;
pub mod log;
pub mod msi;
pub mod registry;
pub mod rpc;

use content::ContentProvider;
use log::Logger;
use msi::Responder;
use registry::{Registry, ServerKeys};
use rpc::{RpcListener, RpcSettings};

use crate::auth::Accounts;
use crate::wire::mt::SecurityType;
use crate::wire::security::SecModes;

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
    /// Where log lines go; stderr when `None`.
    pub log_sink: Option<log::LogSink>,
    /// Seed for session ids and back-offs; from the OS when `None`.
    pub seed: Option<u64>,
    /// Authenticated initiation over RPC; `None` serves UDP initiation only.
    pub rpc: Option<RpcConfig>,
}

/// The WDS RPC listener's settings.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// TCP port (default 5040); 0 picks a free one (see [`Server::rpc_addr`]).
    pub port: u16,
    /// Who may log in.
    pub accounts: Arc<Accounts>,
    /// Modes for authenticated clients that are not pre-OS (pre-OS clients always get the
    /// checksum both ways, MS-WDSMSI 3.1.5.1.1).
    pub modes: SecModes,
    /// Refuse UDP initiation (with an error reply) so that every client authenticates.
    pub require_auth: bool,
    pub allow_anonymous: bool,
    /// Size of the RSA key made at start when the server signs.
    pub sign_key_bits: usize,
    /// A connection that completes no PDU for this long is closed (default
    /// [`rpc::IDLE_TIMEOUT`], 30 s).
    pub idle_timeout: std::time::Duration,
    /// Kerberos logins (raw and inside SPNEGO) with these keys, beside NTLM.
    pub kerberos: Option<KerberosAcceptorConfig>,
}

/// Keys of the server's service principal, for Kerberos logins.
#[derive(Debug, Clone)]
pub struct KerberosAcceptorConfig {
    pub keytab: Arc<crate::auth::kerberos::keytab::Keytab>,
    /// The principal tickets must be for (`host/name[@REALM]`); `None` takes any key of the
    /// keytab.
    pub spn: Option<String>,
}

impl RpcConfig {
    pub fn new(accounts: Accounts) -> Self {
        Self {
            port: crate::transport::DEFAULT_RPC_PORT,
            accounts: Arc::new(accounts),
            modes: SecModes {
                client: SecurityType::Hash,
                server: SecurityType::Hash,
            },
            require_auth: false,
            allow_anonymous: false,
            sign_key_bits: 2048,
            idle_timeout: rpc::IDLE_TIMEOUT,
            kerberos: None,
        }
    }
}

/// The code a refused UDP request gets when the server requires authentication: Win32
/// ERROR_ACCESS_DENIED.
pub const UDP_REFUSED_AUTH_REQUIRED: u32 = 5;

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
            log_sink: None,
            seed: None,
            rpc: None,
        }
    }
}

/// A running server; [`Server::shutdown`] (or dropping it) stops it cleanly.
pub struct Server {
    msi_addr: SocketAddr,
    rpc_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    responder: Mutex<Option<JoinHandle<()>>>,
    stopped: Arc<(Mutex<bool>, Condvar)>,
}

/// Asks a running server to stop from another thread (e.g. a Ctrl-C handler) while the main
/// thread sits in [`Server::wait`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Signals every thread to stop; returns at once.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Largest block a session can carry in one UDP datagram: 65507 bytes of IPv4 UDP payload
/// minus the checksum security header (9), session header (13), ODATA fields (22) and the
/// MS-WDSMA DATA header (13).
pub const MAX_BLOCK_SIZE: u32 = 65_450;

impl Server {
    /// Binds the MSI port and starts serving on background threads.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        validate(&config)?;
        let content = ContentProvider::new(&config.namespaces)?;
        let logger = Logger::new(config.log_format, config.log_sink.clone());
        let bind_addr = SocketAddr::new(config.listen, config.msi_port);
        let socket = std::net::UdpSocket::bind(bind_addr).map_err(|error| ServerError::Bind {
            addr: bind_addr,
            error,
        })?;
        let msi_addr = socket.local_addr()?;
        let rpc = config.rpc.clone();
        // The RPC port is bound before "listening" is logged and before the signing key is
        // made (which can take seconds): a client that connects meanwhile waits in the listen
        // backlog instead of being refused.
        let rpc_listener = match &rpc {
            Some(rpc) => {
                let bind = SocketAddr::new(msi_addr.ip(), rpc.port);
                let listener = std::net::TcpListener::bind(bind)
                    .map_err(|error| ServerError::Bind { addr: bind, error })?;
                Some(listener)
            }
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new((Mutex::new(false), Condvar::new()));
        let namespaces: Vec<String> = config.namespaces.iter().map(|n| n.name.clone()).collect();
        logger.log(
            "listening",
            None,
            &format!(
                "server listening on {msi_addr} for namespaces {}",
                namespaces.join(", ")
            ),
            serde_json::json!({ "addr": msi_addr.to_string(), "namespaces": namespaces,
                                "ports": [config.port_range.0, config.port_range.1] }),
        );
        let signs = rpc
            .as_ref()
            .is_some_and(|r| r.modes.server == SecurityType::Sign);
        let sign_bits = rpc.as_ref().map_or(0, |r| r.sign_key_bits);
        let keys = ServerKeys::generate(signs, sign_bits)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let registry = Arc::new(Registry::new(
            config,
            content,
            logger.clone(),
            Arc::clone(&stop),
            keys,
        ));
        let mut rpc_addr = None;
        let mut rpc_thread = None;
        if let (Some(rpc), Some(listener)) = (&rpc, rpc_listener) {
            let bound = listener.local_addr()?;
            rpc_addr = Some(bound);
            let settings = RpcSettings {
                accounts: Arc::clone(&rpc.accounts),
                modes: rpc.modes,
                allow_anonymous: rpc.allow_anonymous,
                idle_timeout: rpc.idle_timeout,
                kerberos: rpc.kerberos.as_ref().map(|k| {
                    Arc::new(crate::auth::kerberos::gss::AcceptorConfig {
                        keytab: Arc::clone(&k.keytab),
                        spn: k.spn.as_deref().map(|s| {
                            let (name, realm) = crate::auth::kerberos::parse_principal(
                                s,
                                crate::auth::kerberos::messages::NT_SRV_INST,
                            );
                            (name, realm)
                        }),
                        replay: Arc::new(crate::auth::kerberos::gss::ReplayCache::new()),
                    })
                }),
            };
            let listener = RpcListener::new(
                listener,
                Arc::clone(&registry),
                settings,
                logger.clone(),
                Arc::clone(&stop),
            )?;
            logger.log(
                "listening",
                None,
                &format!(
                    "RPC listener on {bound} (WdsRpcInterface, {} at packet privacy), security {}/{}{}",
                    match (&rpc.kerberos, rpc.accounts.is_empty() && !rpc.allow_anonymous) {
                        (Some(k), true) => format!("Kerberos as {} (raw and SPNEGO)", k.spn.as_deref().unwrap_or("any keytab principal")),
                        (Some(k), false) => format!("Kerberos as {} (raw and SPNEGO), NTLM and SPNEGO", k.spn.as_deref().unwrap_or("any keytab principal")),
                        (None, _) => "NTLM and SPNEGO".to_string(),
                    },
                    rpc.modes.server.name(),
                    rpc.modes.client.name(),
                    if rpc.require_auth { "; UDP initiation refused" } else { "" }
                ),
                serde_json::json!({ "rpc_addr": bound.to_string(), "require_auth": rpc.require_auth,
                                    "server_security": rpc.modes.server.name(),
                                    "client_security": rpc.modes.client.name() }),
            );
            rpc_thread = Some(
                std::thread::Builder::new()
                    .name("wdsmc-rpc".into())
                    .spawn(move || listener.run())?,
            );
        }
        let refuse_udp = rpc
            .as_ref()
            .is_some_and(|r| r.require_auth)
            .then_some(UDP_REFUSED_AUTH_REQUIRED);
        let responder = Responder::new(
            Arc::clone(&registry),
            logger,
            socket,
            Arc::clone(&stop),
            refuse_udp,
        );
        let done = Arc::clone(&stopped);
        let thread = std::thread::Builder::new()
            .name("wdsmc-msi".into())
            .spawn(move || {
                responder.run();
                if let (Some(thread), Some(addr)) = (rpc_thread, rpc_addr) {
                    rpc::wake(addr);
                    let _ = thread.join();
                }
                registry.join_all();
                let (lock, condvar) = &*done;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                condvar.notify_all();
            })?;
        Ok(Server {
            msi_addr,
            rpc_addr,
            stop,
            responder: Mutex::new(Some(thread)),
            stopped,
        })
    }

    /// The MSI responder's bound address (useful with port 0 in tests).
    pub fn msi_addr(&self) -> SocketAddr {
        self.msi_addr
    }

    /// The RPC listener's bound address, when it runs.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// A handle that can stop the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: Arc::clone(&self.stop),
        }
    }

    /// Stops every session and the responder, and waits for their threads.
    pub fn shutdown(self) {
        self.stop_and_join();
    }

    /// Blocks until the server stops (after [`Server::shutdown`] from another thread, or a
    /// fatal error).
    pub fn wait(&self) {
        let (lock, condvar) = &*self.stopped;
        let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = condvar.wait(stopped).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stop_and_join(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self
            .responder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn validate(config: &ServerConfig) -> Result<(), ServerError> {
    let fail = |message: String| Err(ServerError::Config(message));
    if config.namespaces.is_empty() {
        return fail("no namespace configured; give at least one name=folder".into());
    }
    if config.listen.is_unspecified() {
        return fail(format!(
            "listen address {} is unspecified; give the address of the interface to serve on \
             (it is announced to clients)",
            config.listen
        ));
    }
    if config.block_size == 0 || config.block_size > MAX_BLOCK_SIZE {
        return fail(format!(
            "block size {} is out of range; use 1..={MAX_BLOCK_SIZE}",
            config.block_size
        ));
    }
    let (low, high) = config.port_range;
    if low == 0 || low > high {
        return fail(format!(
            "port range {low}-{high} is empty or starts at 0; use e.g. 64001-65000"
        ));
    }
    let (v4, prefix) = config.group_range_v4;
    if !v4.is_multicast() || !(4..=32).contains(&prefix) {
        return fail(format!(
            "IPv4 group range {v4}/{prefix} is not inside 224.0.0.0/4; use e.g. 239.255.77.0/24"
        ));
    }
    match (config.listen, config.group_range_v6) {
        (IpAddr::V6(_), None) => {
            return fail(
                "listening on IPv6 needs an IPv6 group range (e.g. ff15::77:0/112)".into(),
            );
        }
        (_, Some((v6, prefix))) if !v6.is_multicast() || !(8..=128).contains(&prefix) => {
            return fail(format!(
                "IPv6 group range {v6}/{prefix} is not inside ff00::/8; use e.g. ff15::77:0/112"
            ));
        }
        _ => {}
    }
    if config.ttl == 0 || config.ttl > 255 {
        return fail(format!("TTL {} is out of range; use 1..=255", config.ttl));
    }
    Ok(())
}

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {addr}: {error}; is another server running, or is the address not local?")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("namespace {name}: folder {} is not readable: {error}", .root.display())]
    Namespace {
        name: String,
        root: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
