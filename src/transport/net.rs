//! Address parsing, interface choice and socket setup for the client.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::error::{NetworkError, OsError, RequestError, SocketAction};
use super::{InterfaceSpec, TransportError};

/// Receive buffer asked for on the multicast socket: room for a few hundred large datagrams
/// while the protocol thread is busy.
pub(crate) const RECV_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Checks the form of `HOST`, `HOST:PORT`, `IPv6` or `[IPv6]:PORT` without resolving it.
pub(crate) fn check_server_syntax(server: &str) -> Result<(), RequestError> {
    split_server(server, 0).map(|_| ())
}

/// The server as an address, or as a `host:port` string still to be resolved.
enum ServerName {
    Address(SocketAddr),
    Host(String),
}

fn split_server(server: &str, default_port: u16) -> Result<ServerName, RequestError> {
    let server = server.trim();
    if server.is_empty() {
        return Err(RequestError::NoServer);
    }
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return Ok(ServerName::Address(addr));
    }
    if let Ok(ip) = server
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(ServerName::Address(SocketAddr::new(ip, default_port)));
    }
    match server.rsplit_once(':') {
        Some(("", _)) => Err(RequestError::NoServer),
        Some((host, port)) if port.parse::<u16>().is_ok_and(|p| p > 0) && !host.is_empty() => {
            Ok(ServerName::Host(server.to_string()))
        }
        Some((_, port)) => Err(RequestError::BadPort {
            server: server.to_string(),
            port: port.to_string(),
        }),
        None => Ok(ServerName::Host(format!("{server}:{default_port}"))),
    }
}

/// The server's host name as given (without a port), or `None` for an IP address.
pub(crate) fn server_host_name(server: &str) -> Option<String> {
    match split_server(server, 1).ok()? {
        ServerName::Address(_) => None,
        ServerName::Host(with_port) => with_port.rsplit_once(':').map(|(h, _)| h.to_string()),
    }
}

/// Parses the server (see [`check_server_syntax`]) and resolves it.
pub(crate) fn resolve_server(
    server: &str,
    default_port: u16,
) -> Result<SocketAddr, TransportError> {
    let with_port = match split_server(server, default_port)? {
        ServerName::Address(addr) => return Ok(addr),
        ServerName::Host(with_port) => with_port,
    };
    let server = server.trim().to_string();
    let mut addrs = with_port
        .to_socket_addrs()
        .map_err(|e| NetworkError::Resolve {
            server: server.clone(),
            error: OsError::from(e),
        })?;
    addrs
        .next()
        .ok_or_else(|| NetworkError::NoAddress { server }.into())
}

/// The local interface a session uses.
#[derive(Debug, Clone)]
pub(crate) struct LocalInterface {
    pub name: Option<String>,
    /// Address in the server's family: JOIN's IPAddress and the unicast socket's address.
    pub address: IpAddr,
    /// Interface index, for IPv6 multicast membership (0 = let the system choose).
    pub index: u32,
    pub mac: Vec<u8>,
    /// Whether the interface also has an IPv6 address (for the MSI IPv6-capable option).
    pub has_ipv6: bool,
}

fn interfaces() -> Vec<if_addrs::Interface> {
    if_addrs::get_if_addrs().unwrap_or_default()
}

/// Chooses the interface: an explicit address or name, or else the one that routes to the
/// server (found by connecting a UDP socket, which sends nothing).
pub(crate) fn choose_interface(
    spec: Option<&InterfaceSpec>,
    server: SocketAddr,
) -> Result<LocalInterface, TransportError> {
    let all = interfaces();
    let address = match spec {
        Some(InterfaceSpec::Address(ip)) => {
            if !all.iter().any(|i| i.ip() == *ip) && !ip.is_unspecified() {
                return Err(NetworkError::NoInterfaceAddress { address: *ip }.into());
            }
            *ip
        }
        Some(InterfaceSpec::Name(name)) => {
            let mut candidates = all.iter().filter(|i| has_name(i, name)).peekable();
            if candidates.peek().is_none() {
                let mut known: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
                known.sort_unstable();
                known.dedup();
                return Err(NetworkError::NoSuchInterface {
                    name: name.clone(),
                    known,
                }
                .into());
            }
            candidates
                .find(|i| i.ip().is_ipv4() == server.is_ipv4())
                .map(|i| i.ip())
                .ok_or_else(|| NetworkError::NoFamilyAddress {
                    name: name.clone(),
                    server,
                })?
        }
        None => route_to(server)?,
    };
    let owner = all.iter().find(|i| i.ip() == address);
    let name = owner.map(|i| i.name.clone());
    // IPv6 multicast needs a real IPv6 interface: loopback cannot carry it (Linux turns
    // multicast routes via lo into reject routes), so ::1 alone does not count.
    let has_ipv6 = name.as_ref().is_some_and(|n| {
        all.iter()
            .any(|i| &i.name == n && i.ip().is_ipv6() && !i.is_loopback())
    });
    let index = owner.and_then(|i| i.index).unwrap_or(0);
    let mac = name
        .as_deref()
        .and_then(|n| mac_address::mac_address_by_name(n).ok().flatten())
        .map(|m| m.bytes().to_vec())
        .unwrap_or_else(|| vec![0; 6]);
    Ok(LocalInterface {
        name,
        address,
        index,
        mac,
        has_ipv6,
    })
}

/// The same interface's address in another family, for a session the server put on IPv6
/// (or IPv4) although it was reached over the other family.
pub(crate) fn address_in_family(iface: &LocalInterface, ipv4: bool) -> Option<IpAddr> {
    let all = interfaces();
    let name = iface.name.as_ref()?;
    all.iter()
        .filter(|i| &i.name == name && i.ip().is_ipv4() == ipv4)
        .map(|i| i.ip())
        .next()
}

/// Whether `name` names this interface. Windows knows an adapter by its friendly name
/// ("Ethernet") and by its GUID ("{4D36E972-...}"); both are accepted there.
fn has_name(interface: &if_addrs::Interface, name: &str) -> bool {
    #[cfg(windows)]
    if interface.adapter_name.eq_ignore_ascii_case(name) {
        return true;
    }
    interface.name == name
}

fn route_to(server: SocketAddr) -> Result<IpAddr, TransportError> {
    let any: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = UdpSocket::bind(any)
        .and_then(|s| s.connect(server).map(|_| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| NetworkError::NoRoute {
            server,
            error: OsError::from(e),
        })?;
    Ok(probe.ip())
}

/// The unicast socket: initiation, then every client packet (JOINACK comes back to it).
pub(crate) fn unicast_socket(local: IpAddr) -> Result<UdpSocket, TransportError> {
    UdpSocket::bind(SocketAddr::new(local, 0)).map_err(|e| {
        NetworkError::Socket {
            action: SocketAction::BindUnicast(local),
            error: OsError::from(e),
        }
        .into()
    })
}

/// Sets a socket's read timeout (how receive loops notice a stop request).
pub(crate) fn set_read_timeout(
    socket: &UdpSocket,
    timeout: Duration,
) -> Result<(), TransportError> {
    socket.set_read_timeout(Some(timeout)).map_err(|e| {
        NetworkError::Socket {
            action: SocketAction::SetTimeout,
            error: OsError::from(e),
        }
        .into()
    })
}

/// A joined multicast socket.
pub(crate) struct MulticastSocket {
    pub socket: UdpSocket,
    /// The receive buffer granted, when smaller than asked for.
    pub limited_buffer: Option<usize>,
    /// The kernel may hand several datagrams over as one buffer (UDP GRO; see [`enable_gro`]).
    pub gro: bool,
}

/// The multicast receive socket, joined to `group` on the chosen interface.
///
/// Linux binds the group address itself so that only this group's datagrams arrive; Windows
/// refuses a bind to a multicast address, so it binds the unspecified address.
pub(crate) fn multicast_socket(
    group: SocketAddr,
    iface: &LocalInterface,
) -> Result<MulticastSocket, TransportError> {
    let fail = |action: SocketAction, e: io::Error| -> TransportError {
        NetworkError::Socket {
            action,
            error: OsError::from(e),
        }
        .into()
    };
    let domain = if group.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail(SocketAction::CreateMulticast { group }, e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail(SocketAction::SetReuse { group }, e))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(|e| fail(SocketAction::SetReuse { group }, e))?;
    let limited_buffer = set_receive_buffer(&socket, RECV_BUFFER_BYTES);
    let bind_ip = if cfg!(windows) {
        match group {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    } else {
        group.ip()
    };
    let bind = SocketAddr::new(bind_ip, group.port());
    socket
        .bind(&bind.into())
        .map_err(|e| fail(SocketAction::BindGroup { group, bind }, e))?;
    let join = |interface: String| SocketAction::JoinGroup { group, interface };
    match (group.ip(), iface.address) {
        (IpAddr::V4(g), IpAddr::V4(local)) => socket
            .join_multicast_v4(&g, &local)
            .map_err(|e| fail(join(local.to_string()), e))?,
        (IpAddr::V4(g), IpAddr::V6(_)) => {
            let local = address_in_family(iface, true)
                .and_then(|ip| match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            socket
                .join_multicast_v4(&g, &local)
                .map_err(|e| fail(join(local.to_string()), e))?
        }
        (IpAddr::V6(g), _) => socket
            .join_multicast_v6(&g, iface.index)
            .map_err(|e| fail(join(format!("index {}", iface.index)), e))?,
    }
    let gro = enable_gro(&socket);
    Ok(MulticastSocket {
        socket: socket.into(),
        limited_buffer,
        gro,
    })
}

/// Asks Linux (5.0 and later) to deliver runs of same-flow datagrams as one buffer of
/// equal-sized segments (UDP GRO): one receive call and one socket-buffer entry for up to
/// 64 KiB instead of one per datagram. A server that sends with UDP GSO on the same host has
/// its runs delivered whole. Returns whether the option took; callers then need 64 KiB
/// buffers and the segment size from each receive's control message.
#[cfg(target_os = "linux")]
fn enable_gro(socket: &Socket) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live int and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn enable_gro(_socket: &Socket) -> bool {
    false
}

/// Raises SO_RCVBUF; returns the usable size when the system grants less than asked.
fn set_receive_buffer(socket: &Socket, bytes: usize) -> Option<usize> {
    let _ = socket.set_recv_buffer_size(bytes);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice the usable size it granted.
    let usable = if cfg!(target_os = "linux") {
        granted / 2
    } else {
        granted
    };
    (usable < bytes).then_some(usable)
}

/// Read timeout used by receive threads so that they notice a stop request.
pub(crate) const RECV_POLL: Duration = Duration::from_millis(100);
