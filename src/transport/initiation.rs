//! Session initiation: MS-WDSMSI over UDP (server port 5041), and the checks a request must
//! pass before anything is sent.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::error::{NetworkError, OsError, RequestError, RpcFailure};
use super::net::{self, LocalInterface, RECV_POLL};
use super::rpc_initiation;
use super::{Datagram, Event, Initiation, Phase, Request, SessionInfo, TransportError};
use crate::proto::SessionParams;
use crate::wire::msi::{self, MsiPacket, MsiReply, MsiRequest};
use crate::wire::security::SessionSecurity;

/// How often the MSI request is re-sent while no reply arrives (MS-WDSMSI §3.1.6).
const MSI_RETRY: Duration = Duration::from_secs(1);
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// Runs session initiation only and returns what the server announced, without joining. Used
/// by `wdsmc info`.
pub fn initiate(request: &Request) -> Result<SessionInfo, TransportError> {
    validate(request)?;
    Initiated::run(request, &|| false, &mut |_| {}).map(|i| i.info)
}

/// Refuses a request that cannot work before any thread or socket exists.
pub(super) fn validate(request: &Request) -> Result<(), TransportError> {
    net::check_server_syntax(&request.server)?;
    let probe = MsiRequest {
        namespace: request.namespace.clone(),
        content: request.object.clone(),
        mac_address: vec![0; 6],
        ipv6_capable: None,
    };
    probe.validate().map_err(RequestError::from)?;
    Ok(())
}

/// A session whose initiation succeeded.
pub(super) struct Initiated {
    pub info: SessionInfo,
    pub socket: UdpSocket,
    pub iface: LocalInterface,
    /// `ContentMetadata` of an authenticated reply, when not empty.
    pub metadata: Option<Vec<u8>>,
}

impl Initiated {
    /// Initiates the way the request asks for.
    pub(super) fn run(
        request: &Request,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<Initiated, TransportError> {
        match &request.initiation {
            Initiation::Udp => Self::udp(request, cancelled, emit),
            Initiation::Rpc(rpc) => {
                // The port in `server` is the UDP initiation port; RPC has its own.
                let server = net::resolve_server(&request.server, msi::MSI_PORT)?;
                let iface = net::choose_interface(request.interface.as_ref(), server)?;
                let answer =
                    rpc_initiation::initiate(request, rpc, server, &iface, cancelled, emit)?;
                let reply = answer.reply;
                let session = reply.session();
                session
                    .check_consistency()
                    .map_err(TransportError::InvalidReply)?;
                let security = SessionSecurity::from_reply(
                    reply.sec_mode,
                    reply.sym_key.as_deref(),
                    reply.sign_key.as_deref(),
                    reply.hash_alg_id,
                )
                .map_err(RpcFailure::BadSecurity)?;
                let socket = net::unicast_socket(iface.address)?;
                let mut initiated = Self::from_reply(&session, socket, iface, security)?;
                initiated.info.authenticated = true;
                initiated.info.user_sid = reply.user_sid;
                initiated.metadata = reply.content_metadata.filter(|m| !m.is_empty());
                Ok(initiated)
            }
        }
    }

    /// MS-WDSMSI over UDP: send the request every second until a reply comes from the server
    /// or the initiation timeout runs out.
    fn udp(
        request: &Request,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<Initiated, TransportError> {
        let server = net::resolve_server(&request.server, msi::MSI_PORT)?;
        let iface = net::choose_interface(request.interface.as_ref(), server)?;
        let socket = net::unicast_socket(iface.address)?;
        net::set_read_timeout(&socket, RECV_POLL)?;
        let packet = MsiPacket::Request(MsiRequest {
            namespace: request.namespace.clone(),
            content: request.object.clone(),
            mac_address: iface.mac.clone(),
            ipv6_capable: iface.has_ipv6.then_some(true),
        })
        .encode();
        let started = Instant::now();
        let mut next_send = started;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            if cancelled() {
                return Err(TransportError::Cancelled);
            }
            let now = Instant::now();
            if now.duration_since(started) >= request.timeouts.initiation {
                return Err(TransportError::Timeout {
                    phase: Phase::Initiation,
                    after: request.timeouts.initiation,
                });
            }
            if now >= next_send {
                if request.trace {
                    emit(Event::Trace {
                        outgoing: true,
                        peer: server,
                        datagram: Datagram::Msi(&packet),
                    });
                }
                socket
                    .send_to(&packet, server)
                    .map_err(|e| NetworkError::Send {
                        server,
                        error: OsError::from(e),
                    })?;
                next_send = now + MSI_RETRY;
            }
            let (len, from) = match socket.recv_from(&mut buf) {
                Ok(r) => r,
                // A refused port shows up as an error on some systems; keep retrying until the
                // timeout so that a server that is starting up is still reached.
                Err(_) => continue,
            };
            if from.ip() != server.ip() {
                continue;
            }
            let bytes = &buf[..len];
            if request.trace {
                emit(Event::Trace {
                    outgoing: false,
                    peer: from,
                    datagram: Datagram::Msi(bytes),
                });
            }
            let reply = match MsiPacket::decode(bytes) {
                Ok(MsiPacket::Reply(reply)) => reply,
                Ok(MsiPacket::Error { code }) => return Err(TransportError::Refused { code }),
                // Stray or malformed datagrams: keep waiting for the real reply.
                Ok(MsiPacket::Request(_)) | Err(_) => continue,
            };
            reply
                .check_consistency()
                .map_err(TransportError::InvalidReply)?;
            // UDP-initiated sessions use the checksum both ways (MS-WDSMSI 3.1.5.3).
            return Self::from_reply(&reply, socket, iface, SessionSecurity::checksum());
        }
    }

    /// The session a (consistent) reply describes, sent to from `socket` unless the session
    /// is in the other IP family (an IPv6 session for an IPv6-capable client).
    fn from_reply(
        reply: &MsiReply,
        socket: UdpSocket,
        mut iface: LocalInterface,
        security: SessionSecurity,
    ) -> Result<Initiated, TransportError> {
        let group = SocketAddr::new(reply.multicast_addr, reply.multicast_port);
        let server_session = SocketAddr::new(reply.server_addr, reply.server_port);
        let socket = if server_session.is_ipv4() == iface.address.is_ipv4() {
            socket
        } else {
            let address = net::address_in_family(&iface, server_session.is_ipv4()).ok_or(
                NetworkError::SessionFamily {
                    session: server_session,
                },
            )?;
            iface.address = address;
            net::unicast_socket(address)?
        };
        let params = SessionParams {
            session_id: reply.session_id,
            group,
            server: server_session,
            content_size: reply.content_size,
            block_size: reply.block_size,
            total_blocks: reply.total_blocks,
        };
        Ok(Initiated {
            info: SessionInfo {
                params,
                local_address: iface.address,
                security,
                authenticated: false,
                user_sid: None,
            },
            socket,
            iface,
            metadata: None,
        })
    }
}
