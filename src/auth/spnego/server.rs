//! SPNEGO acceptor completing Kerberos (with a keytab) or NTLM (with accounts).
//!
//! A NegTokenInit whose first mechanism is Kerberos (either OID) with an AP-REQ is answered
//! by the Kerberos acceptor: accept-incomplete, supportedMech the client's OID, the AP-REP;
//! then the DCE third leg; then accept-completed. Without a keytab, a Kerberos-first offer
//! that also lists NTLM is answered accept-incomplete + supportedMech NTLM with no token,
//! and the NTLM NEGOTIATE comes in the next leg, as Windows clients expect. NTLM first (with
//! the optimistic NEGOTIATE) goes straight to the CHALLENGE.

use super::AUTH_TYPE_SPNEGO;
use super::tokens::{self, Mech, NegState, NegTokenResp, NegotiationToken, OID_NTLM, encode_resp};
use crate::auth::kerberos::gss::{KerberosAcceptor, KrbSession};
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
    /// Kerberos, DCE style: the client's AP-REP is due.
    WaitThirdLeg,
    Done,
}

enum Session {
    Ntlm(Box<NtlmSession>),
    Krb(Box<KrbSession>),
}

/// SPNEGO server (auth_type 0x09) around NTLM and/or Kerberos.
pub struct SpnegoServer {
    ntlm: Option<NtlmServer>,
    krb: Option<KerberosAcceptor>,
    /// The client's MechTypeList as received.
    mech_types_der: Vec<u8>,
    /// Whether the chosen mechanism was the client's first choice; if not, RFC 4178
    /// section 5 makes the mechListMIC mandatory (it is what detects a downgrade).
    chosen_first: bool,
    /// Kerberos was chosen.
    kerberos: bool,
    session: Option<Session>,
    state: State,
}

impl SpnegoServer {
    /// NTLM only.
    pub fn new(ntlm: NtlmServer) -> SpnegoServer {
        SpnegoServer::with(Some(ntlm), None)
    }

    /// Either or both mechanisms.
    pub fn with(ntlm: Option<NtlmServer>, krb: Option<KerberosAcceptor>) -> SpnegoServer {
        SpnegoServer {
            ntlm,
            krb,
            mech_types_der: Vec::new(),
            chosen_first: false,
            kerberos: false,
            session: None,
            state: State::Start,
        }
    }

    fn incomplete(supported: Option<&[u8]>, token: Option<&[u8]>) -> Vec<u8> {
        encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: supported,
            response_token: token,
            mech_list_mic: None,
        })
    }

    fn ntlm(&mut self) -> Result<&mut NtlmServer, AuthError> {
        self.ntlm.as_mut().ok_or(bad("SPNEGO: NTLM is not served"))
    }

    fn init(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        let NegotiationToken::Init(init) = tokens::decode(input)? else {
            return Err(bad("SPNEGO: expected negTokenInit"));
        };
        self.mech_types_der = init.mech_types_der.to_vec();
        let first = init.mech_types[0];
        let offers_ntlm = init.mech_types.iter().any(|m| Mech::of(m) == Mech::Ntlm);
        // Kerberos, when it is the client's choice and we have a keytab.
        if Mech::of(first) == Mech::Kerberos
            && let (Some(krb), Some(ap_req)) = (self.krb.as_mut(), init.mech_token)
        {
            let (rep, dce) = krb.accept(ap_req)?;
            self.kerberos = true;
            self.chosen_first = true;
            let rep = rep.unwrap_or_default();
            if dce {
                self.state = State::WaitThirdLeg;
                return Ok(AuthStep::Continue(Self::incomplete(
                    Some(first),
                    Some(&rep),
                )));
            }
            self.establish_krb()?;
            return Ok(AuthStep::Done(Some(encode_resp(&NegTokenResp {
                neg_state: Some(NegState::AcceptCompleted),
                supported_mech: Some(first),
                response_token: (!rep.is_empty()).then_some(&rep[..]),
                mech_list_mic: None,
            }))));
        }
        if !offers_ntlm || self.ntlm.is_none() {
            return Err(AuthError::Other {
                operation: "SPNEGO server",
                status: None,
                detail: if self.ntlm.is_none() {
                    "the client offers no Kerberos ticket, and NTLM is not served".into()
                } else {
                    "the client offers no NTLM, and Kerberos is not served".into()
                },
            });
        }
        self.chosen_first = Mech::of(first) == Mech::Ntlm;
        match init.mech_token {
            // The optimistic token is for the first mech; only NTLM's is ours to take.
            Some(negotiate) if self.chosen_first => {
                let challenge = self.ntlm()?.challenge(negotiate)?;
                self.state = State::WaitAuthenticate;
                Ok(AuthStep::Continue(Self::incomplete(
                    Some(OID_NTLM),
                    Some(&challenge),
                )))
            }
            _ => {
                self.state = State::WaitNegotiate;
                Ok(AuthStep::Continue(Self::incomplete(Some(OID_NTLM), None)))
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
        let challenge = self.ntlm()?.challenge(negotiate)?;
        self.state = State::WaitAuthenticate;
        Ok(Self::incomplete(None, Some(&challenge)))
    }

    /// AUTHENTICATE (+ mechListMIC) in; accept-completed (+ our mechListMIC) out. Any
    /// failure here, the MIC included, is the login's refusal.
    fn authenticate(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let r = Self::resp(input)?;
        let authenticate = r
            .response_token
            .ok_or(bad("SPNEGO: expected the NTLM AUTHENTICATE"))?;
        let chosen_first = self.chosen_first;
        let ntlm = self.ntlm()?;
        ntlm.accept(authenticate)?;
        let mut session = ntlm.take_session()?;
        let mic_required = !chosen_first || ntlm.mic_received();
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
        self.session = Some(Session::Ntlm(Box::new(session)));
        self.state = State::Done;
        Ok(encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            supported_mech: None,
            response_token: None,
            mech_list_mic: mic.as_ref().map(|m| &m[..]),
        }))
    }

    fn establish_krb(&mut self) -> Result<(), AuthError> {
        let krb = self
            .krb
            .as_mut()
            .ok_or(bad("SPNEGO: Kerberos is not served"))?;
        self.session = Some(Session::Krb(Box::new(krb.take_session()?)));
        self.state = State::Done;
        Ok(())
    }

    /// The client's AP-REP (+ an optional mechListMIC) in; accept-completed out.
    fn third_leg(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let r = Self::resp(input)?;
        let rep = r
            .response_token
            .ok_or(bad("SPNEGO: expected the Kerberos AP-REP"))?;
        self.krb
            .as_mut()
            .ok_or(bad("SPNEGO: Kerberos is not served"))?
            .third_leg(rep)?;
        self.establish_krb()?;
        let Some(Session::Krb(session)) = self.session.as_mut() else {
            return Err(bad("SPNEGO context is not established"));
        };
        // Kerberos was the client's first choice: a MIC is optional, answered in kind.
        let mic = match r.mech_list_mic {
            Some(mic) => {
                session
                    .verify_mic(&self.mech_types_der, mic)
                    .map_err(|_| AuthError::RejectedCredentials)?;
                Some(session.get_mic(&self.mech_types_der))
            }
            None => None,
        };
        Ok(encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            supported_mech: None,
            response_token: None,
            mech_list_mic: mic.as_deref(),
        }))
    }
}

impl ServerAuth for SpnegoServer {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_SPNEGO
    }

    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        match self.state {
            State::Start => self.init(input),
            State::WaitNegotiate => Ok(AuthStep::Continue(self.negotiate(input)?)),
            State::WaitAuthenticate => Ok(AuthStep::Done(Some(self.authenticate(input)?))),
            State::WaitThirdLeg => Ok(AuthStep::Done(Some(self.third_leg(input)?))),
            State::Done => Err(bad("SPNEGO: token after the exchange completed")),
        }
    }

    fn user(&self) -> Option<String> {
        if self.state != State::Done {
            return None;
        }
        if self.kerberos {
            self.krb.as_ref().and_then(KerberosAcceptor::user)
        } else {
            self.ntlm.as_ref().and_then(NtlmServer::authenticated_user)
        }
    }

    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        match (self.state, self.session) {
            (State::Done, Some(Session::Ntlm(s))) => Ok(s),
            (State::Done, Some(Session::Krb(s))) => Ok(s),
            _ => Err(bad("SPNEGO context is not established")),
        }
    }
}
