//! SPNEGO acceptor completing NTLM. Takes a NegTokenInit whose first mech is NTLM (with the
//! optimistic NEGOTIATE), or one that lists Kerberos first, as Windows clients send: that
//! is answered accept-incomplete + supportedMech NTLM with no token, and the NTLM
//! NEGOTIATE comes in the next leg.

use super::AUTH_TYPE_SPNEGO;
use super::tokens::{self, Mech, NegState, NegTokenResp, NegotiationToken, OID_NTLM, encode_resp};
use crate::auth::ntlm::server::NtlmServer;
use crate::auth::ntlm::session::NtlmSession;
use crate::rpc::security::{AuthError, AuthStep, Protection, ServerAuth};

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    WaitNegotiate,
    WaitAuthenticate,
    Done,
}

/// SPNEGO server around an [`NtlmServer`] (auth_type 0x09).
pub struct SpnegoServer {
    ntlm: NtlmServer,
    /// The client's MechTypeList as received.
    mech_types_der: Vec<u8>,
    /// Whether NTLM was the client's first choice; if not, RFC 4178 section 5 makes the
    /// mechListMIC mandatory (it is what detects a downgrade).
    ntlm_first: bool,
    session: Option<NtlmSession>,
    state: State,
}

impl SpnegoServer {
    pub fn new(ntlm: NtlmServer) -> SpnegoServer {
        SpnegoServer {
            ntlm,
            mech_types_der: Vec::new(),
            ntlm_first: false,
            session: None,
            state: State::Start,
        }
    }

    fn incomplete(supported: bool, token: Option<&[u8]>) -> Vec<u8> {
        encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: supported.then_some(OID_NTLM),
            response_token: token,
            mech_list_mic: None,
        })
    }

    fn init(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let NegotiationToken::Init(init) = tokens::decode(input)? else {
            return Err(bad("SPNEGO: expected negTokenInit"));
        };
        if !init.mech_types.iter().any(|m| Mech::of(m) == Mech::Ntlm) {
            return Err(AuthError::Other {
                operation: "SPNEGO server",
                status: None,
                detail: "client offers no NTLM; only NTLM is supported".into(),
            });
        }
        self.mech_types_der = init.mech_types_der.to_vec();
        self.ntlm_first = Mech::of(init.mech_types[0]) == Mech::Ntlm;
        match init.mech_token {
            // The optimistic token is for the first mech; only NTLM's is ours to take.
            Some(negotiate) if self.ntlm_first => {
                let challenge = self.ntlm.challenge(negotiate)?;
                self.state = State::WaitAuthenticate;
                Ok(Self::incomplete(true, Some(&challenge)))
            }
            _ => {
                self.state = State::WaitNegotiate;
                Ok(Self::incomplete(true, None))
            }
        }
    }

    fn resp(input: &[u8]) -> Result<NegTokenResp<'_>, AuthError> {
        match tokens::decode(input)? {
            NegotiationToken::Resp(r) if r.neg_state != Some(NegState::Reject) => Ok(r),
            NegotiationToken::Resp(_) => Err(bad("SPNEGO: client gave up")),
            NegotiationToken::Init(_) => Err(bad("SPNEGO: unexpected negTokenInit")),
        }
    }

    fn negotiate(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let r = Self::resp(input)?;
        let negotiate = r
            .response_token
            .ok_or(bad("SPNEGO: expected the NTLM NEGOTIATE"))?;
        let challenge = self.ntlm.challenge(negotiate)?;
        self.state = State::WaitAuthenticate;
        Ok(Self::incomplete(false, Some(&challenge)))
    }

    /// AUTHENTICATE (+ mechListMIC) in; accept-completed (+ our mechListMIC) out. Any
    /// failure here, the MIC included, is the login's refusal.
    fn authenticate(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let r = Self::resp(input)?;
        let authenticate = r
            .response_token
            .ok_or(bad("SPNEGO: expected the NTLM AUTHENTICATE"))?;
        self.ntlm.accept(authenticate)?;
        let mut session = self.ntlm.take_session()?;
        let mic_required = !self.ntlm_first || self.ntlm.mic_received();
        let our_mic = match r.mech_list_mic {
            Some(mic) => {
                session
                    .verify(&[&self.mech_types_der], mic)
                    .map_err(|_| AuthError::RejectedCredentials)?;
                session.reset_recv_rc4();
                true
            }
            None if mic_required => return Err(AuthError::RejectedCredentials),
            None => false,
        };
        let mic = our_mic.then(|| {
            let m = session.sign(&[&self.mech_types_der]);
            session.reset_send_rc4();
            m
        });
        self.session = Some(session);
        self.state = State::Done;
        Ok(encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            supported_mech: None,
            response_token: None,
            mech_list_mic: mic.as_ref().map(|m| &m[..]),
        }))
    }
}

impl ServerAuth for SpnegoServer {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_SPNEGO
    }

    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        match self.state {
            State::Start => Ok(AuthStep::Continue(self.init(input)?)),
            State::WaitNegotiate => Ok(AuthStep::Continue(self.negotiate(input)?)),
            State::WaitAuthenticate => Ok(AuthStep::Done(Some(self.authenticate(input)?))),
            State::Done => Err(bad("SPNEGO: token after the exchange completed")),
        }
    }

    fn user(&self) -> Option<String> {
        (self.state == State::Done)
            .then(|| self.ntlm.authenticated_user())
            .flatten()
    }

    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        match (self.state, self.session) {
            (State::Done, Some(s)) => Ok(Box::new(s)),
            _ => Err(bad("SPNEGO context is not established")),
        }
    }
}
