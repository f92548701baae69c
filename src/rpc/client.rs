//! Sans-IO DCE/RPC client connection (quinn-proto style): feed the TCP stream to
//! [`Client::handle_bytes`], write what [`Client::poll_transmit`] returns, act on
//! [`Client::poll_event`]. No sockets, clocks or randomness: ids come from the caller.
//!
//! Construction queues the bind. Legs follow the [`ClientAuth`] steps (see
//! [`super::security`]): NTLM-like bind → bind_ack → auth3, or SPNEGO-like bind → bind_ack →
//! alter_context → alter_context_resp. Calls are sent one at a time (no concurrent
//! multiplexing is negotiated); later calls wait in a queue.

use std::collections::VecDeque;

use super::fragment::{self, CallSecurity, FragmentError, Kind, Layout, Limits, Reassembly};
use super::frame::Framer;
use super::pdu::{
    self, Bind, BindAck, Body, ContextElem, DEFAULT_MAX_FRAG, MUST_RECV_FRAG_SIZE, NDR, PduError,
    Response, SecTrailer, SyntaxId, Uuid, WDS_INTERFACE, auth_level, pfc, ptype_name, result,
};
use super::security::{AuthError, AuthStep, ClientAuth};

/// Presentation context id of our one context.
const CONTEXT_ID: u16 = 0;

/// Client settings. Ids are the caller's to choose (the machine draws no randomness).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Interface to bind (WdsRpcInterface by default; the endpoint mapper for `ept_map`).
    pub interface: SyntaxId,
    /// `auth_level`: PKT_PRIVACY with a security provider; NONE without one. CONNECT is
    /// accepted for tests of servers that refuse it.
    pub auth_level: u8,
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    /// Smallest fragment size accepted from the server (C706 minimum by default; tests lower
    /// it to exercise fragmentation).
    pub min_frag: u16,
    /// Bound on one reassembled response stub.
    pub max_response_size: usize,
    /// Bound on the fragments of one response.
    pub max_fragments: usize,
    /// call_id of the bind and its security legs; calls use the following ids.
    pub first_call_id: u32,
    /// 0 asks for a new association group.
    pub assoc_group_id: u32,
    /// `auth_context_id` of the security context.
    pub auth_context_id: u32,
    /// Object UUID to put in requests, if any.
    pub object: Option<Uuid>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            interface: WDS_INTERFACE,
            auth_level: auth_level::PKT_PRIVACY,
            max_xmit_frag: DEFAULT_MAX_FRAG,
            max_recv_frag: DEFAULT_MAX_FRAG,
            min_frag: MUST_RECV_FRAG_SIZE,
            max_response_size: 1 << 20,
            max_fragments: 4096,
            first_call_id: 1,
            assoc_group_id: 0,
            auth_context_id: 0,
            object: None,
        }
    }
}

/// What the connection reports.
#[derive(Debug)]
pub enum ClientEvent {
    /// The presentation (and security) context is established; calls go out now.
    Bound,
    /// The server sent bind_nak (`reason`: see [`pdu::reject_reason`]). The connection is over.
    BindRejected {
        reason: u16,
    },
    Response {
        call_id: u32,
        stub: Vec<u8>,
    },
    /// The server faulted a call (or a security leg: then an [`ClientEvent::Error`] follows).
    Fault {
        call_id: u32,
        status: u32,
    },
    /// The connection is unusable; queued and outstanding calls are lost.
    Error(ClientError),
}

/// Why the client connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("authentication level {0} is not supported; use NONE, CONNECT or PKT_PRIVACY")]
    UnsupportedLevel(u8),
    #[error("level NONE goes without a security provider, any other level needs one")]
    LevelWithoutAuth,
    #[error("server did not accept the presentation context (result {result}, reason {reason})")]
    ContextRejected { result: u16, reason: u16 },
    #[error("server fragment sizes {xmit}/{recv} are below the {min}-byte minimum")]
    FragmentSizes { xmit: u16, recv: u16, min: u16 },
    #[error("unexpected {got} while {state}")]
    Unexpected {
        got: &'static str,
        state: &'static str,
    },
    #[error("{got} for call {call_id}, but call {expected} is outstanding")]
    CallId {
        got: &'static str,
        call_id: u32,
        expected: u32,
    },
    #[error("server token is for auth_type {auth_type} context {context_id}, not ours")]
    TokenMismatch { auth_type: u8, context_id: u32 },
    #[error("server refused the security context: fault status 0x{status:08x}")]
    AuthFault { status: u32 },
    #[error("response fragments out of order: {0}")]
    Sequence(&'static str),
    #[error("stub of {len} bytes is too long for one call")]
    StubTooLong { len: usize },
    #[error("server sent shutdown")]
    Shutdown,
    #[error("server closed the connection{}", if *mid_pdu { " in the middle of a PDU" } else { "" })]
    Eof { mid_pdu: bool },
    #[error("the connection is closed")]
    Closed,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Fragment(#[from] FragmentError),
    #[error(transparent)]
    Pdu(#[from] PduError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitBindAck,
    AwaitAlterResp,
    Bound,
    Closed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitBindAck => "waiting for bind_ack",
            Self::AwaitAlterResp => "waiting for alter_context_resp",
            Self::Bound => "bound",
            Self::Closed => "closed",
        }
    }
}

struct Outstanding {
    call_id: u32,
    inbound: Option<Reassembly>,
}

/// A client connection.
pub struct Client {
    config: ClientConfig,
    state: State,
    /// The provider while legs are exchanged.
    auth: Option<Box<dyn ClientAuth>>,
    /// The provider has produced its last token; answers carry nothing more for it.
    auth_done: bool,
    auth_type: u8,
    security: Option<CallSecurity>,
    framer: Framer,
    next_call_id: u32,
    xmit: usize,
    header_signing: bool,
    assoc_group_id: u32,
    queued: VecDeque<(u32, u16, Vec<u8>)>,
    outstanding: Option<Outstanding>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl Client {
    /// Creates the connection and queues its bind. `auth` is `None` for an unauthenticated
    /// connection (level NONE).
    pub fn new(
        config: ClientConfig,
        auth: Option<Box<dyn ClientAuth>>,
    ) -> Result<Self, ClientError> {
        match config.auth_level {
            auth_level::NONE | auth_level::CONNECT | auth_level::PKT_PRIVACY => {}
            other => return Err(ClientError::UnsupportedLevel(other)),
        }
        if auth.is_some() != (config.auth_level != auth_level::NONE) {
            return Err(ClientError::LevelWithoutAuth);
        }
        let mut client = Self {
            auth_type: auth.as_ref().map(|a| a.auth_type()).unwrap_or(0),
            framer: Framer::new(config.max_recv_frag),
            next_call_id: config.first_call_id.wrapping_add(1),
            xmit: usize::from(config.max_xmit_frag),
            assoc_group_id: config.assoc_group_id,
            state: State::AwaitBindAck,
            auth,
            auth_done: false,
            security: None,
            header_signing: false,
            queued: VecDeque::new(),
            outstanding: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        let token = match client.auth.as_mut() {
            None => None,
            Some(auth) => match auth.step(None)? {
                AuthStep::Continue(t) => Some(t),
                AuthStep::Done(Some(t)) => {
                    client.auth_done = true;
                    Some(t)
                }
                AuthStep::Done(None) => {
                    return Err(AuthError::BadToken {
                        reason: "provider produced no token for the bind",
                    }
                    .into());
                }
            },
        };
        let bind = client.bind_body();
        let pdu = client.leg_pdu(Body::Bind(bind), token.as_deref())?;
        client.transmit.push_back(pdu);
        Ok(client)
    }

    /// Feeds bytes read from the TCP stream.
    pub fn handle_bytes(&mut self, mut input: &[u8]) {
        while !input.is_empty() && self.state != State::Closed {
            match self.framer.feed(&mut input) {
                Ok(Some(pdu)) => self.on_pdu(pdu),
                Ok(None) => {}
                Err(e) => self.fail(e.into()),
            }
        }
    }

    /// The server closed the stream.
    pub fn handle_eof(&mut self) {
        if self.state != State::Closed {
            let mid_pdu = self.framer.is_mid_pdu();
            self.fail(ClientError::Eof { mid_pdu });
        }
    }

    /// Bytes to write to the stream, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Queues a call; it is sent once the connection is bound and earlier calls are answered.
    pub fn call(&mut self, opnum: u16, stub: &[u8]) -> Result<u32, ClientError> {
        if self.state == State::Closed {
            return Err(ClientError::Closed);
        }
        if u32::try_from(stub.len()).is_err() {
            return Err(ClientError::StubTooLong { len: stub.len() });
        }
        let call_id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1);
        self.queued.push_back((call_id, opnum, stub.to_vec()));
        self.pump();
        Ok(call_id)
    }

    pub fn is_bound(&self) -> bool {
        self.state == State::Bound
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Fragment size used for requests (after bind_ack: the smaller of ours and the server's).
    pub fn max_xmit_frag(&self) -> usize {
        self.xmit
    }

    /// Association group the server assigned (after bind_ack).
    pub fn assoc_group_id(&self) -> u32 {
        self.assoc_group_id
    }

    /// Whether both sides agreed on header signing.
    pub fn header_signing(&self) -> bool {
        self.header_signing
    }

    fn bind_body(&self) -> Bind {
        Bind {
            max_xmit_frag: self.config.max_xmit_frag,
            max_recv_frag: self.config.max_recv_frag,
            assoc_group_id: self.config.assoc_group_id,
            contexts: vec![ContextElem {
                context_id: CONTEXT_ID,
                abstract_syntax: self.config.interface,
                transfer_syntaxes: vec![NDR],
            }],
        }
    }

    /// A bind / alter_context / auth3 carrying `token` (if any) in the first call_id.
    fn leg_pdu(&self, body: Body<'_>, token: Option<&[u8]>) -> Result<Vec<u8>, ClientError> {
        let mut flags = pfc::FIRST_FRAG | pfc::LAST_FRAG;
        if self.auth_type != 0 {
            flags |= pfc::SUPPORT_HEADER_SIGN;
        }
        let trailer = SecTrailer::new(
            self.auth_type,
            self.config.auth_level,
            self.config.auth_context_id,
        );
        let auth = token.map(|t| (trailer, t));
        Ok(pdu::encode(flags, self.config.first_call_id, &body, auth)?)
    }

    fn fail(&mut self, error: ClientError) {
        self.state = State::Closed;
        self.auth = None;
        self.security = None;
        self.queued.clear();
        self.outstanding = None;
        self.events.push_back(ClientEvent::Error(error));
    }

    fn on_pdu(&mut self, mut bytes: Vec<u8>) {
        let pdu = match pdu::decode(&bytes) {
            Ok(p) => p,
            Err(e) => return self.fail(e.into()),
        };
        let header = pdu.header;
        let layout = Layout::of(&pdu);
        let token = pdu.auth.as_ref().map(|a| (a.trailer, a.value.to_vec()));
        match (self.state, pdu.body) {
            (State::AwaitBindAck, Body::BindAck(ack)) => self.on_ack(header, ack, token, false),
            (State::AwaitBindAck, Body::BindNak(nak)) => {
                self.state = State::Closed;
                self.queued.clear();
                self.events
                    .push_back(ClientEvent::BindRejected { reason: nak.reason });
            }
            (State::AwaitAlterResp, Body::AlterContextResp(ack)) => {
                self.on_ack(header, ack, token, true)
            }
            (State::AwaitAlterResp, Body::Fault(f)) => {
                self.events.push_back(ClientEvent::Fault {
                    call_id: header.call_id,
                    status: f.status,
                });
                self.fail(ClientError::AuthFault { status: f.status });
            }
            (
                State::Bound,
                Body::Response(Response {
                    alloc_hint,
                    context_id,
                    ..
                }),
            ) => self.on_response(&mut bytes, header, layout, alloc_hint, context_id),
            (State::Bound, Body::Fault(f)) => {
                // Faults normally carry no verifier; if one does, open it so the provider's
                // sequence stays in step with the server's.
                if layout.trailer.is_some()
                    && let Err(e) = fragment::open(&mut bytes, layout, self.security.as_mut())
                {
                    return self.fail(e.into());
                }
                self.on_fault(header, f.status);
            }
            (_, Body::Shutdown) => self.fail(ClientError::Shutdown),
            (state, _) => self.fail(ClientError::Unexpected {
                got: ptype_name(header.ptype),
                state: state.name(),
            }),
        }
    }

    fn on_fault(&mut self, header: pdu::Header, status: u32) {
        match &self.outstanding {
            Some(out) if out.call_id == header.call_id => {
                self.outstanding = None;
                self.events.push_back(ClientEvent::Fault {
                    call_id: header.call_id,
                    status,
                });
                self.pump();
            }
            _ => {
                self.events.push_back(ClientEvent::Fault {
                    call_id: header.call_id,
                    status,
                });
                let expected = self.outstanding.as_ref().map(|o| o.call_id).unwrap_or(0);
                self.fail(ClientError::CallId {
                    got: "fault",
                    call_id: header.call_id,
                    expected,
                });
            }
        }
    }

    fn on_ack(
        &mut self,
        header: pdu::Header,
        ack: BindAck,
        token: Option<(SecTrailer, Vec<u8>)>,
        alter: bool,
    ) {
        if header.call_id != self.config.first_call_id {
            return self.fail(ClientError::CallId {
                got: ptype_name(header.ptype),
                call_id: header.call_id,
                expected: self.config.first_call_id,
            });
        }
        match ack.results.first() {
            Some(r) if r.result == result::ACCEPTANCE && r.transfer_syntax == NDR => {}
            Some(r) => {
                return self.fail(ClientError::ContextRejected {
                    result: r.result,
                    reason: r.reason,
                });
            }
            None => {
                return self.fail(ClientError::ContextRejected {
                    result: result::PROVIDER_REJECTION,
                    reason: 0,
                });
            }
        }
        if !alter {
            let min = self.config.min_frag;
            if ack.max_recv_frag < min || ack.max_xmit_frag < min {
                return self.fail(ClientError::FragmentSizes {
                    xmit: ack.max_xmit_frag,
                    recv: ack.max_recv_frag,
                    min,
                });
            }
            self.xmit = usize::from(self.config.max_xmit_frag.min(ack.max_recv_frag));
            self.assoc_group_id = ack.assoc_group_id;
            self.header_signing =
                self.auth_type != 0 && header.flags & pfc::SUPPORT_HEADER_SIGN != 0;
        }
        if self.auth.is_none() {
            return self.bound();
        }
        let input = match token {
            Some((t, _))
                if t.auth_type != self.auth_type || t.context_id != self.config.auth_context_id =>
            {
                return self.fail(ClientError::TokenMismatch {
                    auth_type: t.auth_type,
                    context_id: t.context_id,
                });
            }
            Some((_, value)) => value,
            None => Vec::new(),
        };
        if self.auth_done {
            return self.complete();
        }
        let step = match self.auth.as_mut().map(|a| a.step(Some(&input))) {
            Some(Ok(step)) => step,
            Some(Err(e)) => return self.fail(e.into()),
            None => return self.bound(),
        };
        let next = match step {
            AuthStep::Continue(t) => {
                self.state = State::AwaitAlterResp;
                self.leg_pdu(Body::AlterContext(self.bind_body()), Some(&t))
            }
            AuthStep::Done(Some(t)) => {
                self.auth_done = true;
                self.leg_pdu(Body::Auth3, Some(&t))
            }
            AuthStep::Done(None) => {
                self.auth_done = true;
                return self.complete();
            }
        };
        match next {
            Ok(pdu) => self.transmit.push_back(pdu),
            Err(e) => return self.fail(e),
        }
        if self.auth_done {
            self.complete();
        }
    }

    fn complete(&mut self) {
        let Some(auth) = self.auth.take() else {
            return self.bound();
        };
        match auth.into_protection() {
            Ok(mut protection) => {
                protection.set_header_signing(self.header_signing);
                self.security = Some(CallSecurity {
                    auth_type: self.auth_type,
                    level: self.config.auth_level,
                    context_id: self.config.auth_context_id,
                    protection,
                });
                self.bound();
            }
            Err(e) => self.fail(e.into()),
        }
    }

    fn bound(&mut self) {
        self.state = State::Bound;
        self.events.push_back(ClientEvent::Bound);
        self.pump();
    }

    /// Sends the next queued call when the connection is free.
    fn pump(&mut self) {
        if self.state != State::Bound || self.outstanding.is_some() {
            return;
        }
        let Some((call_id, opnum, stub)) = self.queued.pop_front() else {
            return;
        };
        let kind = Kind::Request {
            context_id: CONTEXT_ID,
            opnum,
            object: self.config.object,
        };
        match fragment::build(kind, call_id, &stub, self.xmit, self.security.as_mut()) {
            Ok(frags) => {
                self.transmit.extend(frags);
                self.outstanding = Some(Outstanding {
                    call_id,
                    inbound: None,
                });
            }
            Err(e) => self.fail(e.into()),
        }
    }

    fn on_response(
        &mut self,
        bytes: &mut [u8],
        header: pdu::Header,
        layout: Layout,
        alloc_hint: u32,
        context_id: u16,
    ) {
        let limits = Limits {
            max_size: self.config.max_response_size,
            max_fragments: self.config.max_fragments,
        };
        let Some(out) = self.outstanding.as_mut() else {
            return self.fail(ClientError::Unexpected {
                got: "response",
                state: "no call is outstanding",
            });
        };
        if header.call_id != out.call_id {
            let expected = out.call_id;
            return self.fail(ClientError::CallId {
                got: "response",
                call_id: header.call_id,
                expected,
            });
        }
        if context_id != CONTEXT_ID {
            return self.fail(ClientError::Sequence(
                "response for another presentation context",
            ));
        }
        let first = header.flags & pfc::FIRST_FRAG != 0;
        match (&out.inbound, first) {
            (Some(_), true) => return self.fail(ClientError::Sequence("FIRST fragment again")),
            (None, false) => return self.fail(ClientError::Sequence("no FIRST fragment")),
            (None, true) => {
                match Reassembly::start(header.call_id, context_id, 0, alloc_hint, limits) {
                    Ok(r) => out.inbound = Some(r),
                    Err(e) => return self.fail(e.into()),
                }
            }
            (Some(_), false) => {}
        }
        let range = match fragment::open(bytes, layout, self.security.as_mut()) {
            Ok(r) => r,
            Err(e) => return self.fail(e.into()),
        };
        let Some(inbound) = self.outstanding.as_mut().and_then(|o| o.inbound.as_mut()) else {
            return;
        };
        if let Err(e) = inbound.push(&bytes[range], limits) {
            return self.fail(e.into());
        }
        if header.flags & pfc::LAST_FRAG != 0 {
            let stub = self
                .outstanding
                .take()
                .and_then(|o| o.inbound)
                .map(|r| r.stub)
                .unwrap_or_default();
            self.events.push_back(ClientEvent::Response {
                call_id: header.call_id,
                stub,
            });
            self.pump();
        }
    }
}
