//! Authenticated session initiation: MS-WDSMSI `WDSMC_OP_INITIATE` in a WDS Control Protocol
//! packet, carried by `WdsRpcMessage` over DCE/RPC on TCP at packet privacy (MS-WDSC 2.1,
//! MS-WDSMSI 2.2.1).
//!
//! The RPC and security layers are sans-IO; this file owns the TCP stream and the clock:
//! it connects (optionally after asking the endpoint mapper for the port), feeds the stream
//! to the connection machine, writes what it returns, and bounds every phase (connect,
//! bind, the security legs, the call) by the initiation timeout. Errors arrive three ways and
//! all three are handled: a fault PDU, a non-zero `WdsRpcMessage` return value, and a reply
//! whose OpCode-ErrorCode is non-zero.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use rand::TryRngCore;

use super::error::{AuthFailure, NetworkError, OsError, RequestError, RpcFailure};
use super::kerberos;
use super::net::LocalInterface;
use super::{Event, Phase, Request, RpcAuth, RpcInitiation, TransportError};
use crate::auth::kerberos::gss::{KerberosClient, KerberosInitiator};
use crate::auth::kerberos::kdc::Credential;
use crate::auth::{NtlmClient, SpnegoClient};
use crate::rpc::client::{Client, ClientConfig, ClientError, ClientEvent};
use crate::rpc::pdu::{self, EPM_INTERFACE, WDS_INTERFACE, auth_level};
use crate::rpc::security::{AuthError, ClientAuth};
use crate::rpc::stub;
use crate::wire::wdsc::{InitiateOutcome, InitiateReply, InitiateRequest, MAX_CLIENT_UNITS, cap};

/// Longest single wait on the socket, so a cancel is noticed promptly.
const POLL: Duration = Duration::from_millis(100);
/// `WdsRpcMessage`.
const OPNUM_WDS_RPC_MESSAGE: u16 = 0;
/// `ept_map`.
const OPNUM_EPT_MAP: u16 = 3;

/// What an authenticated reply said.
pub(super) struct RpcReply {
    pub reply: InitiateReply,
}

/// Runs authenticated initiation against `server` (its address; the port comes from `rpc`).
pub(super) fn initiate(
    request: &Request,
    rpc: &RpcInitiation,
    server: SocketAddr,
    iface: &LocalInterface,
    cancelled: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<RpcReply, TransportError> {
    let deadline = Instant::now() + request.timeouts.initiation;
    let clock = Clock {
        deadline,
        limit: request.timeouts.initiation,
        cancelled,
    };
    let port = if rpc.endpoint_mapper {
        let mapper = SocketAddr::new(server.ip(), super::ENDPOINT_MAPPER_PORT);
        ask_endpoint_mapper(mapper, &clock, request.trace, emit)?
    } else {
        rpc.port
    };
    let listener = SocketAddr::new(server.ip(), port);
    let auth = provider(&request.server, rpc, &clock, emit)?;
    let mut connection = Connection::open(listener, &clock, request.trace, auth)?;
    let packet = InitiateRequest {
        namespace: request.namespace.clone(),
        content: request.object.clone(),
        client: client_name(request)?,
        cap: Some(
            cap::CHECKSUM
                | if iface.has_ipv6 { cap::IPV6 } else { 0 }
                | if rpc.pre_os { cap::BOOT_DEVICE } else { 0 },
        ),
    }
    .encode()
    .map_err(|e| RequestError::ClientName {
        name: String::new(),
        reason: e.to_string(),
    })?;
    let stub = stub::encode_message_request(&packet).map_err(|e| RequestError::ClientName {
        name: String::new(),
        reason: e.to_string(),
    })?;
    let answer = connection.call(OPNUM_WDS_RPC_MESSAGE, &stub, &clock, emit)?;
    let message = stub::decode_message_response(&answer).map_err(RpcFailure::BadReply)?;
    if message.status != 0 {
        return Err(refusal(message.status, request));
    }
    let Some(bytes) = message.packet else {
        return Err(RpcFailure::Fault { status: 0 }.into());
    };
    match InitiateOutcome::decode(bytes).map_err(RpcFailure::BadReply)? {
        InitiateOutcome::Failed { code } => Err(refusal(code, request)),
        InitiateOutcome::Session(reply) => Ok(RpcReply { reply }),
    }
}

/// One authenticated `WdsRpcMessage` call carrying any WDSC packet (the image enumeration,
/// say) to the listener at `server`'s address: the endpoint mapper if asked, the login, the
/// call. Returns the reply packet; a fault, a non-zero return value and a NULL reply are
/// errors. `limit` bounds everything (nothing cancels it early).
pub(super) fn call(
    rpc: &RpcInitiation,
    server_name: &str,
    server: SocketAddr,
    limit: Duration,
    trace: bool,
    packet: &[u8],
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<u8>, TransportError> {
    let clock = Clock {
        deadline: Instant::now() + limit,
        limit,
        cancelled: &|| false,
    };
    let port = if rpc.endpoint_mapper {
        let mapper = SocketAddr::new(server.ip(), super::ENDPOINT_MAPPER_PORT);
        ask_endpoint_mapper(mapper, &clock, trace, emit)?
    } else {
        rpc.port
    };
    let listener = SocketAddr::new(server.ip(), port);
    let auth = provider(server_name, rpc, &clock, emit)?;
    let mut connection = Connection::open(listener, &clock, trace, auth)?;
    let stub = stub::encode_message_request(packet).map_err(|e| RequestError::ClientName {
        name: String::new(),
        reason: e.to_string(),
    })?;
    let answer = connection.call(OPNUM_WDS_RPC_MESSAGE, &stub, &clock, emit)?;
    let message = stub::decode_message_response(&answer).map_err(RpcFailure::BadReply)?;
    if message.status == crate::wire::wdsc::error_code::ACCESS_DENIED {
        return Err(AuthFailure::AccessDenied.into());
    }
    if message.status != 0 {
        return Err(TransportError::Refused {
            code: message.status,
        });
    }
    message
        .packet
        .map(<[u8]>::to_vec)
        .ok_or_else(|| RpcFailure::Fault { status: 0 }.into())
}

/// A server's error code, as the error the user sees.
fn refusal(code: u32, request: &Request) -> TransportError {
    if code == crate::wire::wdsc::error_code::ACCESS_DENIED {
        AuthFailure::ObjectDenied {
            namespace: request.namespace.clone(),
            object: request.object.clone(),
        }
        .into()
    } else {
        // Namespace or content not found, security mode refused, and the rest of the
        // WDSMCS_E_* codes.
        TransportError::Refused { code }
    }
}

/// The `Client` variable: the request's client name or the host name, cut to 15 UTF-16
/// units at a character boundary.
fn client_name(request: &Request) -> Result<String, TransportError> {
    let name = request
        .client_name
        .clone()
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let mut cut = String::new();
    for c in name.chars() {
        if c == '\0' || cut.encode_utf16().count() + c.len_utf16() > MAX_CLIENT_UNITS {
            break;
        }
        cut.push(c);
    }
    if cut.is_empty() {
        return Err(RequestError::ClientName {
            name,
            reason: "it is empty".into(),
        }
        .into());
    }
    Ok(cut)
}

/// The system's random generator, as the providers take it.
fn boxed_rng() -> Box<dyn rand::RngCore + Send> {
    Box::new(rand::rngs::OsRng.unwrap_err())
}

fn unix_now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_micros())
}

/// A Kerberos initiator for a service ticket (framed inside SPNEGO).
fn initiator(ticket: Credential, framed: bool, rng: &mut dyn rand::RngCore) -> KerberosInitiator {
    let (t, us) = unix_now();
    KerberosInitiator::new(ticket, framed, t, us, rng)
}

/// The security provider for the chosen authentication, seeded from the OS. Kerberos
/// tickets are got here (from the KDC, within the initiation deadline); Negotiate falls back
/// to NTLM when none can be had, and says so.
fn provider(
    server: &str,
    rpc: &RpcInitiation,
    clock: &Clock<'_>,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<Box<dyn ClientAuth>, TransportError> {
    // Challenges and the session key must be unpredictable: the system's generator.
    let mut os_rng = rand::rngs::OsRng.unwrap_err();
    let rng = &mut os_rng;
    let now = SystemTime::now();
    let host = super::net::server_host_name(server);
    let settings = &rpc.kerberos;
    let mut login = |mechanism: &str, why: Option<&str>| {
        emit(Event::Login {
            mechanism,
            kerberos_unavailable: why,
        })
    };
    Ok(match &rpc.auth {
        RpcAuth::Negotiate(credentials) => {
            let ntlm = NtlmClient::new(clone_credentials(credentials), rng, now);
            match kerberos::ticket_with_password(
                credentials,
                settings,
                server,
                host.as_deref(),
                clock,
            ) {
                Ok(ticket) => {
                    login("Kerberos (SPNEGO)", None);
                    Box::new(SpnegoClient::with_kerberos(
                        initiator(ticket, true, rng),
                        boxed_rng(),
                        Some(ntlm),
                    ))
                }
                Err(e) if kerberos::kerberos_unavailable(&e) => {
                    login("NTLM (SPNEGO)", Some(&e.to_string()));
                    Box::new(SpnegoClient::new(ntlm))
                }
                Err(e) => return Err(e),
            }
        }
        RpcAuth::Kerberos(credentials) => {
            let ticket = kerberos::ticket_with_password(
                credentials,
                settings,
                server,
                host.as_deref(),
                clock,
            )?;
            login("Kerberos", None);
            let (t, us) = unix_now();
            Box::new(KerberosClient::new(ticket, t, us, boxed_rng()))
        }
        RpcAuth::KerberosCache { user, spnego } => {
            let ticket = kerberos::ticket_from_cache(
                user.as_deref(),
                settings,
                server,
                host.as_deref(),
                clock,
            )?;
            if *spnego {
                login("Kerberos (SPNEGO, credential cache)", None);
                Box::new(SpnegoClient::with_kerberos(
                    initiator(ticket, true, rng),
                    boxed_rng(),
                    None,
                ))
            } else {
                login("Kerberos (credential cache)", None);
                let (t, us) = unix_now();
                Box::new(KerberosClient::new(ticket, t, us, boxed_rng()))
            }
        }
        RpcAuth::Ntlm(credentials) => {
            login("NTLM", None);
            Box::new(NtlmClient::new(clone_credentials(credentials), rng, now))
        }
        RpcAuth::Anonymous => {
            login("anonymous NTLM", None);
            Box::new(NtlmClient::anonymous(rng, now))
        }
    })
}

/// A copy for the provider, which consumes its credentials; both copies zeroize their
/// password when dropped.
fn clone_credentials(credentials: &crate::auth::Credentials) -> crate::auth::Credentials {
    crate::auth::Credentials::new(
        &credentials.domain,
        &credentials.user,
        &credentials.password,
    )
}

/// The initiation deadline and the cancel flag, shared by every phase.
pub(super) struct Clock<'a> {
    deadline: Instant,
    limit: Duration,
    cancelled: &'a dyn Fn() -> bool,
}

impl Clock<'_> {
    /// The time left, or the error that ends the phase.
    pub(super) fn remaining(&self) -> Result<Duration, TransportError> {
        if (self.cancelled)() {
            return Err(TransportError::Cancelled);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TransportError::Timeout {
                phase: Phase::Initiation,
                after: self.limit,
            });
        }
        Ok(left)
    }
}

/// One TCP connection driven through the sans-IO RPC client.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    client: Client,
    trace: bool,
    buf: Vec<u8>,
}

impl Connection {
    fn open(
        peer: SocketAddr,
        clock: &Clock<'_>,
        trace: bool,
        auth: Box<dyn ClientAuth>,
    ) -> Result<Connection, TransportError> {
        Self::open_with(peer, clock, trace, ClientConfig::default(), Some(auth))
    }

    fn open_with(
        peer: SocketAddr,
        clock: &Clock<'_>,
        trace: bool,
        config: ClientConfig,
        auth: Option<Box<dyn ClientAuth>>,
    ) -> Result<Connection, TransportError> {
        let stream = connect(peer, clock)?;
        let client = Client::new(config, auth).map_err(|error| connection_error(peer, error))?;
        Ok(Connection {
            stream,
            peer,
            client,
            trace,
            buf: vec![0; 16 * 1024],
        })
    }

    /// Binds (with the security legs), makes one call and returns its stub.
    fn call(
        &mut self,
        opnum: u16,
        stub: &[u8],
        clock: &Clock<'_>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<u8>, TransportError> {
        let call_id = self
            .client
            .call(opnum, stub)
            .map_err(|error| connection_error(self.peer, error))?;
        loop {
            self.flush(clock, emit)?;
            while let Some(event) = self.client.poll_event() {
                match event {
                    ClientEvent::Bound => {}
                    ClientEvent::Response { call_id: id, stub } if id == call_id => {
                        return Ok(stub);
                    }
                    ClientEvent::Response { .. } => {}
                    ClientEvent::BindRejected { reason } => {
                        return Err(AuthFailure::BindRejected { reason }.into());
                    }
                    ClientEvent::Fault { status, .. } => {
                        return Err(fault(status));
                    }
                    ClientEvent::Error(error) => return Err(connection_error(self.peer, error)),
                }
            }
            self.receive(clock, emit)?;
        }
    }

    fn flush(
        &mut self,
        clock: &Clock<'_>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), TransportError> {
        while let Some(pdu) = self.client.poll_transmit() {
            if self.trace {
                emit(Event::RpcTrace {
                    outgoing: true,
                    peer: self.peer,
                    pdu: &pdu,
                });
            }
            self.stream
                .set_write_timeout(Some(clock.remaining()?))
                .and_then(|()| self.stream.write_all(&pdu))
                .map_err(|e| self.io_error(e, clock))?;
        }
        Ok(())
    }

    /// Reads what the server sent (waiting at most [`POLL`]) into the machine.
    fn receive(
        &mut self,
        clock: &Clock<'_>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), TransportError> {
        let wait = clock.remaining()?.min(POLL);
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(|e| self.io_error(e, clock))?;
        match self.stream.read(&mut self.buf) {
            Ok(0) => self.client.handle_eof(),
            Ok(n) => {
                if self.trace {
                    emit(Event::RpcTrace {
                        outgoing: false,
                        peer: self.peer,
                        pdu: &self.buf[..n],
                    });
                }
                self.client.handle_bytes(&self.buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(self.io_error(e, clock)),
        }
        Ok(())
    }

    /// A socket error, or the end of the phase when that is why the socket gave up.
    fn io_error(&self, error: io::Error, clock: &Clock<'_>) -> TransportError {
        if let Err(ended) = clock.remaining() {
            return ended;
        }
        NetworkError::RpcStream {
            server: self.peer,
            error: OsError::from(error),
        }
        .into()
    }
}

/// Connects within the deadline, checking for cancel between attempts.
fn connect(peer: SocketAddr, clock: &Clock<'_>) -> Result<TcpStream, TransportError> {
    let stream = TcpStream::connect_timeout(&peer, clock.remaining()?).map_err(|error| {
        if let Err(ended) = clock.remaining() {
            return ended;
        }
        NetworkError::RpcConnect {
            server: peer,
            error: OsError::from(error),
        }
        .into()
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A fault: access denied is an authentication failure (exit 9), anything else a refusal of
/// the call.
fn fault(status: u32) -> TransportError {
    match status {
        pdu::status::ACCESS_DENIED => AuthFailure::AccessDenied.into(),
        status => RpcFailure::Fault { status }.into(),
    }
}

fn connection_error(server: SocketAddr, error: ClientError) -> TransportError {
    match error {
        ClientError::AuthFault { status } => AuthFailure::SecurityExchange { status }.into(),
        ClientError::Auth(AuthError::RejectedCredentials) => {
            AuthFailure::Provider(AuthError::RejectedCredentials).into()
        }
        ClientError::Auth(error @ AuthError::BadSignature) => AuthFailure::Provider(error).into(),
        error => RpcFailure::Connection { server, error }.into(),
    }
}

/// Asks the endpoint mapper (unauthenticated, as Windows clients do) where the WDS interface
/// listens.
fn ask_endpoint_mapper(
    mapper: SocketAddr,
    clock: &Clock<'_>,
    trace: bool,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<u16, TransportError> {
    let config = ClientConfig {
        interface: EPM_INTERFACE,
        auth_level: auth_level::NONE,
        ..ClientConfig::default()
    };
    let mut connection = Connection::open_with(mapper, clock, trace, config, None)?;
    let request = stub::encode_ept_map_request(&WDS_INTERFACE, 4);
    let answer = connection.call(OPNUM_EPT_MAP, &request, clock, emit)?;
    let response = stub::EptMapResponse::decode(&answer).map_err(RpcFailure::BadReply)?;
    response.tcp_port(&WDS_INTERFACE).ok_or_else(|| {
        RpcFailure::NotRegistered {
            server: mapper,
            status: response.status,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_name_is_cut_to_fifteen_units() {
        let mut request = Request::new("s", "n", "o");
        request.client_name = Some("A-VERY-LONG-MACHINE-NAME".into());
        assert_eq!(client_name(&request).unwrap(), "A-VERY-LONG-MAC");
        request.client_name = Some("ωωωωωωωωωωωωωωωωω\u{1F600}".into());
        assert_eq!(client_name(&request).unwrap().encode_utf16().count(), 15);
        request.client_name =
            Some("\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}".into());
        // Surrogate pairs are never split: seven emoji are 14 units.
        assert_eq!(client_name(&request).unwrap().chars().count(), 7);
        request.client_name = Some(String::new());
        assert!(client_name(&request).is_err());
    }

    #[test]
    fn access_denied_is_an_authentication_failure() {
        assert!(matches!(
            fault(5),
            TransportError::AuthFailed(AuthFailure::AccessDenied)
        ));
        assert!(matches!(
            fault(0x1C01_0002),
            TransportError::Rpc(RpcFailure::Fault {
                status: 0x1C01_0002
            })
        ));
        let request = Request::new("s", "ns", "obj");
        assert!(matches!(
            refusal(5, &request),
            TransportError::AuthFailed(AuthFailure::ObjectDenied { .. })
        ));
        let not_found = crate::wire::msi::error_code::NAMESPACE_NOT_FOUND;
        assert_eq!(
            refusal(not_found, &request),
            TransportError::Refused { code: not_found }
        );
    }
}
