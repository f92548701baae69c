//! Sans-IO DCE/RPC server connection: [`Server::handle_bytes`] in, [`Server::poll_transmit`]
//! out, [`Server::poll_event`] for binds and complete requests, [`Server::respond`] and
//! [`Server::fault`] to answer.
//!
//! It accepts our interface over NDR 2.0, refuses NDR64 (provider rejection, proposed
//! transfer syntaxes not supported), answers bind-time feature negotiation with
//! negotiate_ack, and refuses unknown interfaces (abstract syntax not supported), as Windows
//! clients offer all three. Security failures are always answered before the connection is
//! given up: bind_nak for an unknown auth type (authentication type not recognised) or a
//! token the provider refuses at bind (invalid checksum); a fault for a refused
//! alter_context leg; a fault with status 5 on the first request after a refused auth3 or at
//! a level below the required one; a fault with `nca_s_fault_sec_pkg_error` when a verifier
//! does not check. An [`ServerEvent::Error`] then follows: the transport should send what
//! [`Server::poll_transmit`] still holds and close.

use std::collections::VecDeque;

use super::fragment::{self, CallSecurity, FragmentError, Kind, Layout, Limits, Reassembly};
use super::frame::Framer;
use super::pdu::{
    self, Bind, BindAck, BindNak, Body, ContextElem, ContextResult, DEFAULT_MAX_FRAG, Fault,
    MUST_RECV_FRAG_SIZE, NDR, PduError, Request, SecTrailer, SyntaxId, WDS_INTERFACE, auth_level,
    bind_time_features, btfn, pfc, provider_reason, reject_reason, result, status,
};
use super::security::{AuthError, AuthStep, ServerAuth};

/// Produces a fresh provider for an offered auth_type, or `None` if it is not supported.
pub type AuthFactory = Box<dyn FnMut(u8) -> Option<Box<dyn ServerAuth>> + Send>;

/// Most presentation contexts one connection may hold.
const MAX_CONTEXTS: usize = 16;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The one interface served.
    pub interface: SyntaxId,
    /// Opnums 0..opnum_count exist (1 for WdsRpcInterface).
    pub opnum_count: u16,
    /// Accept calls without a security context (level NONE).
    pub allow_unauthenticated: bool,
    /// Lowest level accepted for authenticated calls: PKT_PRIVACY, or CONNECT for tests.
    pub required_level: u8,
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    /// Smallest client fragment size accepted (C706 minimum by default).
    pub min_frag: u16,
    /// Bound on one reassembled request stub (MS-RPCE 3.3.3.5.4 suggests 4 MiB at most).
    pub max_request_size: usize,
    /// Bound on the fragments of one request.
    pub max_fragments: usize,
    /// assoc_group_id to hand out (the caller's choice).
    pub assoc_group_id: u32,
    /// Secondary address for bind_ack: our port as text (MS-RPCE 3.3.1.5.5).
    pub secondary_address: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            interface: WDS_INTERFACE,
            opnum_count: 1,
            allow_unauthenticated: false,
            required_level: auth_level::PKT_PRIVACY,
            max_xmit_frag: DEFAULT_MAX_FRAG,
            max_recv_frag: DEFAULT_MAX_FRAG,
            min_frag: MUST_RECV_FRAG_SIZE,
            max_request_size: 1 << 20,
            max_fragments: 4096,
            assoc_group_id: 0x0001_0001,
            secondary_address: String::new(),
        }
    }
}

/// What the connection reports.
#[derive(Debug)]
pub enum ServerEvent {
    /// A bind (with its security legs) completed; `user` is `None` without authentication.
    Bound { user: Option<String> },
    /// A complete request; answer with [`Server::respond`] or [`Server::fault`].
    Request {
        call_id: u32,
        opnum: u16,
        stub: Vec<u8>,
    },
    /// The client closed the stream between PDUs.
    Closed,
    /// The connection is over; anything still in the transmit queue should be sent first.
    Error(ServerError),
}

/// Why the server connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("client offered auth_type {0}, which is not supported")]
    UnsupportedAuthType(u8),
    #[error("call at authentication level {level} refused")]
    LevelRefused { level: u8 },
    #[error("client fragment sizes {xmit}/{recv} are below the {min}-byte minimum")]
    FragmentSizes { xmit: u16, recv: u16, min: u16 },
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("client closed the connection in the middle of a PDU")]
    Truncated,
    #[error("no dispatched call {0} to answer")]
    NoSuchCall(u32),
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Fragment(#[from] FragmentError),
    #[error(transparent)]
    Pdu(#[from] PduError),
}

enum State {
    AwaitBind,
    Negotiating {
        auth: Box<dyn ServerAuth>,
        trailer: SecTrailer,
    },
    /// auth3 was refused; the next request gets a fault with `status`.
    AuthFailed {
        status: u32,
        error: AuthError,
    },
    Bound,
    Closed,
}

/// A server connection.
pub struct Server {
    config: ServerConfig,
    factory: Option<AuthFactory>,
    state: State,
    framer: Framer,
    security: Option<CallSecurity>,
    header_signing: bool,
    xmit: usize,
    contexts: Vec<u16>,
    inbound: Option<Reassembly>,
    /// A call faulted at its first fragment whose other fragments are still arriving.
    discard: Option<u32>,
    /// The call handed to the application and not yet answered: (call_id, context_id).
    dispatched: Option<(u32, u16)>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
    /// Whole PDUs taken from the stream so far.
    pdus_received: u64,
}

impl Server {
    /// `factory` is `None` for a server that only accepts unauthenticated binds.
    pub fn new(config: ServerConfig, factory: Option<AuthFactory>) -> Self {
        Self {
            framer: Framer::new(config.max_recv_frag),
            xmit: usize::from(config.max_xmit_frag),
            config,
            factory,
            state: State::AwaitBind,
            security: None,
            header_signing: false,
            contexts: Vec::new(),
            inbound: None,
            discard: None,
            dispatched: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            pdus_received: 0,
        }
    }

    pub fn handle_bytes(&mut self, mut input: &[u8]) {
        while !input.is_empty() && !matches!(self.state, State::Closed) {
            match self.framer.feed(&mut input) {
                Ok(Some(pdu)) => {
                    self.pdus_received += 1;
                    self.on_pdu(pdu);
                }
                Ok(None) => {}
                Err(e) => self.fail(e.into()),
            }
        }
    }

    /// Whole PDUs received so far. A transport can time a connection out by this rather than
    /// by bytes, so a peer trickling a PDU byte by byte does not keep it open.
    pub fn pdus_received(&self) -> u64 {
        self.pdus_received
    }

    /// The client closed the stream.
    pub fn handle_eof(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if self.framer.is_mid_pdu() {
            self.fail(ServerError::Truncated);
        } else {
            self.state = State::Closed;
            self.events.push_back(ServerEvent::Closed);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Answers the dispatched call, fragmented to the client's max_recv_frag.
    pub fn respond(&mut self, call_id: u32, stub: &[u8]) -> Result<(), ServerError> {
        let context_id = self.take_dispatched(call_id)?;
        let kind = Kind::Response { context_id };
        match fragment::build(kind, call_id, stub, self.xmit, self.security.as_mut()) {
            Ok(frags) => {
                self.transmit.extend(frags);
                Ok(())
            }
            Err(e) => {
                // A half-sealed answer leaves the sequence numbers unusable: end here.
                self.fail(e.clone().into());
                Err(e.into())
            }
        }
    }

    /// Fails the dispatched call with `status` (a Win32 or nca_s_* code).
    pub fn fault(&mut self, call_id: u32, status: u32) -> Result<(), ServerError> {
        let context_id = self.take_dispatched(call_id)?;
        self.send_fault(call_id, context_id, status, 0);
        Ok(())
    }

    fn take_dispatched(&mut self, call_id: u32) -> Result<u16, ServerError> {
        match self.dispatched {
            Some((id, ctx)) if id == call_id && matches!(self.state, State::Bound) => {
                self.dispatched = None;
                Ok(ctx)
            }
            _ => Err(ServerError::NoSuchCall(call_id)),
        }
    }

    fn fail(&mut self, error: ServerError) {
        self.state = State::Closed;
        self.security = None;
        self.inbound = None;
        self.dispatched = None;
        self.events.push_back(ServerEvent::Error(error));
    }

    fn send(&mut self, flags: u8, call_id: u32, body: Body<'_>, auth: Option<(SecTrailer, &[u8])>) {
        match pdu::encode(flags, call_id, &body, auth) {
            Ok(bytes) => self.transmit.push_back(bytes),
            Err(e) => self.fail(e.into()),
        }
    }

    fn send_fault(&mut self, call_id: u32, context_id: u16, status: u32, extra_flags: u8) {
        let fault = Fault {
            alloc_hint: 0,
            context_id,
            cancel_count: 0,
            flags: 0,
            status,
        };
        let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | extra_flags;
        self.send(flags, call_id, Body::Fault(fault), None);
    }

    /// Sends a fault and ends the connection.
    fn fault_and_fail(&mut self, call_id: u32, status: u32, error: ServerError) {
        self.send_fault(call_id, 0, status, pfc::DID_NOT_EXECUTE);
        self.fail(error);
    }

    fn nak_and_fail(&mut self, call_id: u32, reason: u16, error: ServerError) {
        let nak = BindNak {
            reason,
            versions: vec![(5, 0)],
        };
        self.send(
            pfc::FIRST_FRAG | pfc::LAST_FRAG,
            call_id,
            Body::BindNak(nak),
            None,
        );
        self.fail(error);
    }

    fn on_pdu(&mut self, mut bytes: Vec<u8>) {
        let pdu = match pdu::decode(&bytes) {
            Ok(p) => p,
            Err(e) => return self.fail(e.into()),
        };
        let header = pdu.header;
        let layout = Layout::of(&pdu);
        let token = pdu.auth.as_ref().map(|a| (a.trailer, a.value.to_vec()));
        match pdu.body {
            Body::Bind(bind) => self.on_bind(header, bind, token),
            Body::AlterContext(alter) => self.on_alter(header, alter, token),
            Body::Auth3 => self.on_auth3(header, token),
            Body::Request(Request {
                alloc_hint,
                context_id,
                opnum,
                ..
            }) => self.on_request(&mut bytes, header, layout, alloc_hint, context_id, opnum),
            Body::Orphaned => {
                if self
                    .inbound
                    .as_ref()
                    .is_some_and(|r| r.call_id == header.call_id)
                {
                    self.inbound = None;
                }
            }
            // Cancels are not supported (one call at a time, answered when done); a client's
            // shutdown has no meaning.
            Body::CoCancel | Body::Shutdown => {}
            _ => self.fail(ServerError::Protocol(match header.ptype {
                pdu::ptype::RESPONSE => "the client sent a response",
                pdu::ptype::FAULT => "the client sent a fault",
                _ => "the client sent a server-only PDU",
            })),
        }
    }

    /// Answers each proposed context (MS-RPCE 3.3.1.5.3, 3.3.1.5.6).
    fn negotiate(&mut self, contexts: &[ContextElem]) -> Vec<ContextResult> {
        let reject = |reason| ContextResult {
            result: result::PROVIDER_REJECTION,
            reason,
            transfer_syntax: SyntaxId::default(),
        };
        let ours = self.config.interface;
        contexts
            .iter()
            .map(|ctx| {
                let features = ctx.transfer_syntaxes.iter().find_map(bind_time_features);
                if let Some(bits) = features {
                    // Orphaned PDUs only drop the call in progress, so the connection can
                    // stay; context multiplexing is not offered.
                    return ContextResult {
                        result: result::NEGOTIATE_ACK,
                        reason: u16::from(bits & btfn::KEEP_CONNECTION_ON_ORPHAN),
                        transfer_syntax: SyntaxId::default(),
                    };
                }
                let a = ctx.abstract_syntax;
                if a.uuid != ours.uuid || a.version != ours.version || a.minor > ours.minor {
                    return reject(provider_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED);
                }
                if !ctx.transfer_syntaxes.contains(&NDR) {
                    return reject(provider_reason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED);
                }
                if !self.contexts.contains(&ctx.context_id) {
                    if self.contexts.len() >= MAX_CONTEXTS {
                        return reject(provider_reason::LOCAL_LIMIT_EXCEEDED);
                    }
                    self.contexts.push(ctx.context_id);
                }
                ContextResult {
                    result: result::ACCEPTANCE,
                    reason: 0,
                    transfer_syntax: NDR,
                }
            })
            .collect()
    }

    fn ack_body(&self, bind: &Bind, results: Vec<ContextResult>, alter: bool) -> BindAck {
        BindAck {
            max_xmit_frag: self.xmit as u16,
            max_recv_frag: self.config.max_recv_frag.min(bind.max_xmit_frag),
            assoc_group_id: self.config.assoc_group_id,
            // Windows leaves the address empty in alter_context_resp.
            secondary_address: if alter {
                Vec::new()
            } else {
                self.config.secondary_address.as_bytes().to_vec()
            },
            results,
        }
    }

    fn on_bind(&mut self, header: pdu::Header, bind: Bind, token: Option<(SecTrailer, Vec<u8>)>) {
        let call_id = header.call_id;
        if !matches!(self.state, State::AwaitBind) {
            let error = ServerError::Protocol("second bind on the connection");
            return self.nak_and_fail(call_id, reject_reason::NOT_SPECIFIED, error);
        }
        let min = self.config.min_frag;
        if bind.max_recv_frag < min || bind.max_xmit_frag < min {
            let error = ServerError::FragmentSizes {
                xmit: bind.max_xmit_frag,
                recv: bind.max_recv_frag,
                min,
            };
            return self.nak_and_fail(call_id, reject_reason::LOCAL_LIMIT_EXCEEDED, error);
        }
        self.xmit = usize::from(self.config.max_xmit_frag.min(bind.max_recv_frag));
        let results = self.negotiate(&bind.contexts);
        let ack = self.ack_body(&bind, results, false);
        let mut flags = pfc::FIRST_FRAG | pfc::LAST_FRAG;
        let Some((trailer, value)) = token else {
            self.send(flags, call_id, Body::BindAck(ack), None);
            self.state = State::Bound;
            self.events.push_back(ServerEvent::Bound { user: None });
            return;
        };
        let Some(mut auth) = self.factory.as_mut().and_then(|f| f(trailer.auth_type)) else {
            let error = ServerError::UnsupportedAuthType(trailer.auth_type);
            let reason = reject_reason::AUTHENTICATION_TYPE_NOT_RECOGNIZED;
            return self.nak_and_fail(call_id, reason, error);
        };
        if header.flags & pfc::SUPPORT_HEADER_SIGN != 0 {
            flags |= pfc::SUPPORT_HEADER_SIGN;
            self.header_signing = true;
        }
        match auth.step(&value) {
            Err(e) => self.nak_and_fail(call_id, reject_reason::INVALID_CHECKSUM, e.into()),
            Ok(AuthStep::Continue(t)) => {
                self.send(flags, call_id, Body::BindAck(ack), Some((trailer, &t)));
                self.state = State::Negotiating { auth, trailer };
            }
            Ok(AuthStep::Done(out)) => match self.establish(auth, trailer) {
                Ok(user) => {
                    let out = out.filter(|t| !t.is_empty());
                    let auth = out.as_deref().map(|t| (trailer, t));
                    self.send(flags, call_id, Body::BindAck(ack), auth);
                    self.events.push_back(ServerEvent::Bound { user });
                }
                Err(e) => self.nak_and_fail(call_id, reject_reason::INVALID_CHECKSUM, e.into()),
            },
        }
    }

    fn establish(
        &mut self,
        auth: Box<dyn ServerAuth>,
        trailer: SecTrailer,
    ) -> Result<Option<String>, AuthError> {
        let user = auth.user();
        let mut protection = auth.into_protection()?;
        protection.set_header_signing(self.header_signing);
        self.security = Some(CallSecurity {
            auth_type: trailer.auth_type,
            level: trailer.auth_level,
            context_id: trailer.context_id,
            protection,
        });
        self.state = State::Bound;
        Ok(user)
    }

    fn on_alter(&mut self, header: pdu::Header, alter: Bind, token: Option<(SecTrailer, Vec<u8>)>) {
        let call_id = header.call_id;
        let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | (header.flags & pfc::SUPPORT_HEADER_SIGN);
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Negotiating { mut auth, trailer } => {
                let Some((t, value)) = token.filter(|(t, _)| {
                    (t.auth_type, t.context_id) == (trailer.auth_type, trailer.context_id)
                }) else {
                    let error = ServerError::Protocol("alter_context without the bind's token");
                    return self.fault_and_fail(call_id, status::PROTO_ERROR, error);
                };
                let results = self.negotiate(&alter.contexts);
                let resp = self.ack_body(&alter, results, true);
                match auth.step(&value) {
                    Err(e) => {
                        let code = match e {
                            AuthError::RejectedCredentials => status::ACCESS_DENIED,
                            _ => status::SEC_PKG_ERROR,
                        };
                        self.fault_and_fail(call_id, code, e.into());
                    }
                    Ok(AuthStep::Continue(out)) => {
                        self.send(
                            flags,
                            call_id,
                            Body::AlterContextResp(resp),
                            Some((t, &out)),
                        );
                        self.state = State::Negotiating { auth, trailer };
                    }
                    Ok(AuthStep::Done(out)) => match self.establish(auth, trailer) {
                        Ok(user) => {
                            let out = out.filter(|o| !o.is_empty());
                            let auth = out.as_deref().map(|o| (t, o));
                            self.send(flags, call_id, Body::AlterContextResp(resp), auth);
                            self.events.push_back(ServerEvent::Bound { user });
                        }
                        Err(e) => self.fault_and_fail(call_id, status::SEC_PKG_ERROR, e.into()),
                    },
                }
            }
            State::Bound if token.is_none() => {
                self.state = State::Bound;
                let results = self.negotiate(&alter.contexts);
                let resp = self.ack_body(&alter, results, true);
                self.send(flags, call_id, Body::AlterContextResp(resp), None);
            }
            State::Bound => {
                // A second security context would need multiplexing, which is not offered.
                let error = ServerError::Protocol("a second security context on the connection");
                self.fault_and_fail(call_id, status::PROTO_ERROR, error);
            }
            other => {
                self.state = other;
                let error = ServerError::Protocol("alter_context before bind");
                self.fault_and_fail(call_id, status::PROTO_ERROR, error);
            }
        }
    }

    fn on_auth3(&mut self, _header: pdu::Header, token: Option<(SecTrailer, Vec<u8>)>) {
        let State::Negotiating { mut auth, trailer } =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            // auth3 has no answer; nothing to tell the client here.
            return self.fail(ServerError::Protocol("auth3 out of sequence"));
        };
        let outcome = match token {
            Some((t, value))
                if (t.auth_type, t.context_id) == (trailer.auth_type, trailer.context_id) =>
            {
                match auth.step(&value) {
                    Ok(AuthStep::Done(None)) => self.establish(auth, trailer),
                    Ok(_) => Err(AuthError::BadToken {
                        reason: "provider wants another leg after auth3",
                    }),
                    Err(e) => Err(e),
                }
            }
            _ => Err(AuthError::BadToken {
                reason: "auth3 without the bind's security context",
            }),
        };
        match outcome {
            Ok(user) => self.events.push_back(ServerEvent::Bound { user }),
            // MS-RPCE 3.3.1.5.2.1: auth3 is never answered; the first request is.
            Err(error) => {
                self.state = State::AuthFailed {
                    status: status::ACCESS_DENIED,
                    error,
                }
            }
        }
    }

    /// Whether a call at this verifier/context combination may run.
    fn level_allowed(&self, layout: &Layout) -> Result<(), u8> {
        let level = match (layout.trailer, &self.security) {
            (Some((_, t)), _) => t.auth_level,
            // A sealed context whose call comes without a verifier is refused, never treated
            // as an anonymous call from an authenticated client.
            (None, Some(s)) if s.seals() => auth_level::NONE,
            (None, Some(s)) => s.level,
            (None, None) if self.config.allow_unauthenticated => return Ok(()),
            (None, None) => auth_level::NONE,
        };
        let ok = match level {
            auth_level::PKT_PRIVACY => true,
            auth_level::CONNECT => self.config.required_level <= auth_level::CONNECT,
            _ => false,
        };
        if ok { Ok(()) } else { Err(level) }
    }

    fn on_request(
        &mut self,
        bytes: &mut [u8],
        header: pdu::Header,
        layout: Layout,
        alloc_hint: u32,
        context_id: u16,
        opnum: u16,
    ) {
        let call_id = header.call_id;
        let first = header.flags & pfc::FIRST_FRAG != 0;
        let last = header.flags & pfc::LAST_FRAG != 0;
        match &mut self.state {
            State::Bound => {}
            State::AuthFailed {
                status: code,
                error,
            } => {
                let (code, error) = (*code, error.clone());
                return self.fault_and_fail(call_id, code, error.into());
            }
            State::Closed => return,
            State::AwaitBind | State::Negotiating { .. } => {
                let error = ServerError::Protocol("request before the context is established");
                return self.fault_and_fail(call_id, status::PROTO_ERROR, error);
            }
        }
        let discarding = self.discard == Some(call_id) && !first;
        if !discarding {
            if let Err((code, error)) = self.check_sequence(call_id, first, &layout) {
                return self.fault_and_fail(call_id, code, error);
            }
        }
        // Every fragment is opened, even one about to be refused or discarded: the provider's
        // sequence numbers (and NTLM's RC4 state) advance per message on both sides.
        let range = match fragment::open(bytes, layout, self.security.as_mut()) {
            Ok(r) => r,
            Err(e) => {
                let code = match e {
                    FragmentError::Auth(_) => status::SEC_PKG_ERROR,
                    FragmentError::MissingVerifier { .. } => status::ACCESS_DENIED,
                    _ => status::PROTO_ERROR,
                };
                return self.fault_and_fail(call_id, code, e.into());
            }
        };
        if discarding {
            if last {
                self.discard = None;
            }
            return;
        }
        let limits = Limits {
            max_size: self.config.max_request_size,
            max_fragments: self.config.max_fragments,
        };
        if first {
            // Call-level faults: the connection stays usable.
            let refusal = if !self.contexts.contains(&context_id) {
                Some(status::UNKNOWN_IF)
            } else if opnum >= self.config.opnum_count {
                Some(status::OP_RNG_ERROR)
            } else {
                None
            };
            if let Some(code) = refusal {
                self.send_fault(call_id, context_id, code, pfc::DID_NOT_EXECUTE);
                if !last {
                    self.discard = Some(call_id);
                }
                return;
            }
            match Reassembly::start(call_id, context_id, opnum, alloc_hint, limits) {
                Ok(r) => self.inbound = Some(r),
                Err(e) => return self.fault_and_fail(call_id, status::ACCESS_DENIED, e.into()),
            }
        }
        let Some(inbound) = self.inbound.as_mut() else {
            return;
        };
        if let Err(e) = inbound.push(&bytes[range], limits) {
            return self.fault_and_fail(call_id, status::ACCESS_DENIED, e.into());
        }
        if last && let Some(done) = self.inbound.take() {
            self.dispatched = Some((call_id, done.context_id));
            self.events.push_back(ServerEvent::Request {
                call_id,
                opnum: done.opnum,
                stub: done.stub,
            });
        }
    }

    /// Connection-level checks of a request fragment: one call at a time, FIRST..LAST in
    /// order, and (on FIRST) a level the server accepts. Failures end the connection.
    fn check_sequence(
        &self,
        call_id: u32,
        first: bool,
        layout: &Layout,
    ) -> Result<(), (u32, ServerError)> {
        let protocol = |what| Err((status::PROTO_ERROR, ServerError::Protocol(what)));
        if self.dispatched.is_some() {
            return protocol("a request while another call is being answered");
        }
        match (&self.inbound, first) {
            (Some(_), true) => protocol("FIRST fragment inside another request"),
            (Some(r), false) if r.call_id != call_id => protocol("fragment of another call"),
            (None, false) => protocol("request fragment without FIRST"),
            (Some(_), false) => Ok(()),
            (None, true) => self
                .level_allowed(layout)
                .map_err(|level| (status::ACCESS_DENIED, ServerError::LevelRefused { level })),
        }
    }

    /// Name of the state, for traces.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::AwaitBind => "awaiting bind",
            State::Negotiating { .. } => "negotiating security",
            State::AuthFailed { .. } => "authentication failed",
            State::Bound => "bound",
            State::Closed => "closed",
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state_name())
            .field("contexts", &self.contexts)
            .field("dispatched", &self.dispatched)
            .finish_non_exhaustive()
    }
}
