//! Socket setup for both sides: the client's multicast receive socket (joined, with a large
//! receive buffer and UDP GRO where Linux has it) and the server's session socket (bound, set
//! up to send multicast on its interface), and the GSO probe the server's sender asks once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Send buffer asked for on a session socket: a full window of large blocks must fit without
/// blocking long.
const SEND_BUFFER: usize = 8 << 20;

/// Which interface a multicast socket joins its group on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOn {
    /// An IPv4 group, on the interface with this address (unspecified: the system's choice).
    V4(Ipv4Addr),
    /// An IPv6 group, on the interface with this index (0: the system's choice).
    V6(u32),
}

/// The step of [`multicast_socket`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MulticastStep {
    Create,
    Reuse,
    /// Binding this address.
    Bind(SocketAddr),
    Join,
}

/// A joined multicast socket.
pub struct MulticastSocket {
    pub socket: UdpSocket,
    /// The receive buffer granted, when smaller than asked for.
    pub limited_buffer: Option<usize>,
    /// The kernel may hand several datagrams over as one buffer (UDP GRO; see [`enable_gro`]).
    pub gro: bool,
}

/// The multicast receive socket, joined to `group` on `join`, with `recv_buffer` bytes of
/// receive buffer asked for.
///
/// Linux binds the group address itself so that only this group's datagrams arrive; Windows
/// refuses a bind to a multicast address, so it binds the unspecified address.
pub fn multicast_socket(
    group: SocketAddr,
    join: JoinOn,
    recv_buffer: usize,
) -> Result<MulticastSocket, (MulticastStep, io::Error)> {
    let domain = if group.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| (MulticastStep::Create, e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| (MulticastStep::Reuse, e))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(|e| (MulticastStep::Reuse, e))?;
    let limited_buffer = set_receive_buffer(&socket, recv_buffer);
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
        .map_err(|e| (MulticastStep::Bind(bind), e))?;
    let joined = match (group.ip(), join) {
        (IpAddr::V4(g), JoinOn::V4(local)) => socket.join_multicast_v4(&g, &local),
        (IpAddr::V6(g), JoinOn::V6(index)) => socket.join_multicast_v6(&g, index),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the group and the interface are of different IP families",
        )),
    };
    joined.map_err(|e| (MulticastStep::Join, e))?;
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

/// Binds a server session's unicast socket and prepares it for sending multicast on the
/// interface that owns `listen`, with loopback on (clients may run on this host).
pub fn session_socket(listen: IpAddr, port: u16, ttl: u32) -> io::Result<UdpSocket> {
    let addr = SocketAddr::new(listen, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if listen.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    // Set after the bind, so the bind still claims the port against other servers (a socket
    // without the option cannot share it): a Windows client on this host binds the wildcard
    // address and the session port, which Linux (and so Wine) allows only when both sockets
    // have SO_REUSEADDR. Unicast to `addr` still reaches this socket, the more specific bind.
    let _ = socket.set_reuse_address(true);
    // The OS may cap these; a smaller buffer only costs throughput.
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    let _ = socket.set_recv_buffer_size(1 << 20);
    match listen {
        IpAddr::V4(v4) => {
            socket.set_multicast_if_v4(&v4)?;
            socket.set_multicast_ttl_v4(ttl)?;
            socket.set_multicast_loop_v4(true)?;
        }
        IpAddr::V6(v6) => {
            socket.set_multicast_if_v6(interface_index_v6(v6))?;
            socket.set_multicast_hops_v6(ttl)?;
            socket.set_multicast_loop_v6(true)?;
        }
    }
    Ok(socket.into())
}

/// Index of the interface carrying `addr`; 0 (the system's choice) when none matches.
fn interface_index_v6(addr: Ipv6Addr) -> u32 {
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifaces| {
            ifaces
                .into_iter()
                .find(|iface| iface.ip() == IpAddr::V6(addr))
                .and_then(|iface| iface.index)
        })
        .unwrap_or(0)
}

/// Whether the kernel can segment UDP for this socket (Linux 4.18 and later). Asked once per
/// socket: a kernel that did not know the option might otherwise ignore it and send a whole
/// run as one oversized datagram.
#[cfg(target_os = "linux")]
pub fn gso_supported(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized for an int option.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub fn gso_supported(_socket: &UdpSocket) -> bool {
    false
}
