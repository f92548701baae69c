//! Address parsing, interface choice and the client's sockets (the platform part of their
//! setup is in `sys::socket`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::error::{NetworkError, OsError, RequestError, SocketAction};
use super::{InterfaceSpec, TransportError};
use crate::sys::socket::{self as multicast, JoinOn, MulticastStep};

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

pub(crate) use crate::sys::socket::MulticastSocket;

/// The multicast receive socket, joined to `group` on the chosen interface (see
/// [`crate::sys::socket::multicast_socket`]); an IPv4 group on an interface chosen by its IPv6
/// address joins on the same interface's IPv4 address.
pub(crate) fn multicast_socket(
    group: SocketAddr,
    iface: &LocalInterface,
) -> Result<MulticastSocket, TransportError> {
    let join = match (group.ip(), iface.address) {
        (IpAddr::V4(_), IpAddr::V4(local)) => JoinOn::V4(local),
        (IpAddr::V4(_), IpAddr::V6(_)) => JoinOn::V4(
            address_in_family(iface, true)
                .and_then(|ip| match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        ),
        (IpAddr::V6(_), _) => JoinOn::V6(iface.index),
    };
    multicast::multicast_socket(group, join, RECV_BUFFER_BYTES).map_err(|(step, e)| {
        let action = match step {
            MulticastStep::Create => SocketAction::CreateMulticast { group },
            MulticastStep::Reuse => SocketAction::SetReuse { group },
            MulticastStep::Bind(bind) => SocketAction::BindGroup { group, bind },
            MulticastStep::Join => SocketAction::JoinGroup {
                group,
                interface: match join {
                    JoinOn::V4(local) => local.to_string(),
                    JoinOn::V6(index) => format!("index {index}"),
                },
            },
        };
        NetworkError::Socket {
            action,
            error: OsError::from(e),
        }
        .into()
    })
}

/// Read timeout used by receive threads so that they notice a stop request.
pub(crate) const RECV_POLL: Duration = Duration::from_millis(100);
