//! SPNEGO initiator. With a Kerberos ticket it offers Microsoft's Kerberos OID, the IETF one
//! and (when it has NTLM credentials) NTLM, in that order, with the AP-REQ as the
//! optimistic token, as Windows does; without one it offers NTLM alone.
//!
//! RPC legs, Kerberos: bind(NegTokenInit + AP-REQ) → bind_ack(AP-REP) → alter_context(our
//! AP-REP, the DCE third leg) → alter_context_resp(accept-completed). NTLM:
//! bind(NegTokenInit + NEGOTIATE) → bind_ack(CHALLENGE) → alter_context(AUTHENTICATE +
//! mechListMIC) → alter_context_resp(accept-completed + mechListMIC). When the server turns
//! the Kerberos offer down for NTLM, the NEGOTIATE goes in an extra alter_context first, and
//! the mechListMICs (mandatory then, RFC 4178 5) catch a downgrade.

use rand::RngCore;

use super::AUTH_TYPE_SPNEGO;
use super::tokens::{
    self, Mech, NegState, NegTokenResp, NegotiationToken, OID_KRB5, OID_MS_KRB5, OID_NTLM,
    encode_init, encode_resp, mech_type_list,
};
use crate::auth::kerberos::gss::{KerberosInitiator, KrbSession};
use crate::auth::ntlm::client::NtlmClient;
use crate::auth::ntlm::session::NtlmSession;
use crate::rpc::security::{AuthError, AuthStep, ClientAuth, Protection};

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

enum State {
    Start,
    /// Our NegTokenInit is out; its optimistic token was for `first`.
    SentInit,
    /// Kerberos: our third leg is out.
    SentThirdLeg,
    /// NTLM after the server declined Kerberos: our NEGOTIATE is out.
    SentNegotiate,
    SentAuthenticate {
        mic_sent: bool,
    },
    Done,
}

enum Session {
    Ntlm(Box<NtlmSession>),
    Krb(Box<KrbSession>),
}

/// SPNEGO client (auth_type 0x09) around Kerberos and/or NTLM.
pub struct SpnegoClient {
    ntlm: Option<NtlmClient>,
    krb: Option<(KerberosInitiator, Box<dyn RngCore + Send>)>,
    mech_types_der: Vec<u8>,
    session: Option<Session>,
    state: State,
}

impl SpnegoClient {
    /// NTLM only.
    pub fn new(ntlm: NtlmClient) -> SpnegoClient {
        SpnegoClient {
            ntlm: Some(ntlm),
            krb: None,
            mech_types_der: mech_type_list(&[OID_NTLM]),
            session: None,
            state: State::Start,
        }
    }

    /// Kerberos first (with `krb`, framed), NTLM as the alternative when `ntlm` is given.
    pub fn with_kerberos(
        krb: KerberosInitiator,
        rng: Box<dyn RngCore + Send>,
        ntlm: Option<NtlmClient>,
    ) -> SpnegoClient {
        let mechs: &[&[u8]] = if ntlm.is_some() {
            &[OID_MS_KRB5, OID_KRB5, OID_NTLM]
        } else {
            &[OID_MS_KRB5, OID_KRB5]
        };
        SpnegoClient {
            ntlm,
            krb: Some((krb, rng)),
            mech_types_der: mech_type_list(mechs),
            session: None,
            state: State::Start,
        }
    }

    fn resp(input: &[u8]) -> Result<NegTokenResp<'_>, AuthError> {
        match tokens::decode(input)? {
            NegotiationToken::Resp(r) => Ok(r),
            NegotiationToken::Init(_) => Err(bad("SPNEGO: server sent a negTokenInit")),
        }
    }

    fn ntlm(&mut self) -> Result<&mut NtlmClient, AuthError> {
        self.ntlm
            .as_mut()
            .ok_or(bad("SPNEGO: server chose NTLM, which we did not offer"))
    }

    /// The server's answer to our NegTokenInit.
    fn after_init(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        let r = Self::resp(input)?;
        match r.neg_state {
            Some(NegState::AcceptIncomplete | NegState::RequestMic | NegState::AcceptCompleted) => {
            }
            Some(NegState::Reject) => return Err(AuthError::RejectedCredentials),
            None => return Err(bad("SPNEGO: server did not continue the exchange")),
        }
        let chosen = match r.supported_mech {
            Some(m) => Mech::of(m),
            None if self.krb.is_some() => Mech::Kerberos,
            None => Mech::Ntlm,
        };
        match chosen {
            Mech::Kerberos => {
                let (krb, rng) = self
                    .krb
                    .as_mut()
                    .ok_or(bad("SPNEGO: server chose Kerberos, which we did not offer"))?;
                let rep = r
                    .response_token
                    .ok_or(bad("SPNEGO: server sent no Kerberos AP-REP"))?;
                let third = krb.ap_rep(rep, &mut **rng)?;
                self.session = Some(Session::Krb(Box::new(krb.take_session()?)));
                if r.neg_state == Some(NegState::AcceptCompleted) {
                    // A server that is done without the third leg (not DCE style).
                    self.finish_mic(r.mech_list_mic, false)?;
                    self.state = State::Done;
                    return Ok(AuthStep::Done(None));
                }
                self.state = State::SentThirdLeg;
                Ok(AuthStep::Continue(encode_resp(&NegTokenResp {
                    neg_state: None,
                    supported_mech: None,
                    response_token: Some(&third),
                    mech_list_mic: None,
                })))
            }
            Mech::Ntlm if self.krb.is_some() => {
                // Kerberos declined: start NTLM now (the server sent no token).
                let negotiate = self.ntlm()?.negotiate()?;
                self.state = State::SentNegotiate;
                Ok(AuthStep::Continue(encode_resp(&NegTokenResp {
                    neg_state: None,
                    supported_mech: None,
                    response_token: Some(&negotiate),
                    mech_list_mic: None,
                })))
            }
            Mech::Ntlm => Ok(AuthStep::Continue(self.answer_challenge(r, false)?)),
            Mech::Other => Err(bad("SPNEGO: server chose a mechanism we did not offer")),
        }
    }

    /// CHALLENGE in, AUTHENTICATE (and our mechListMIC) out. `downgraded`: NTLM was not our
    /// first choice, so the MIC is due whatever NTLM says.
    fn answer_challenge(
        &mut self,
        r: NegTokenResp<'_>,
        downgraded: bool,
    ) -> Result<Vec<u8>, AuthError> {
        match r.neg_state {
            Some(NegState::AcceptIncomplete | NegState::RequestMic) => {}
            Some(NegState::Reject) => return Err(AuthError::RejectedCredentials),
            _ => return Err(bad("SPNEGO: server did not continue the exchange")),
        }
        if r.supported_mech.is_some_and(|m| Mech::of(m) != Mech::Ntlm) {
            return Err(bad("SPNEGO: server chose a mechanism we did not offer"));
        }
        let challenge = r
            .response_token
            .ok_or(bad("SPNEGO: server sent no NTLM CHALLENGE"))?;
        let ntlm = self.ntlm()?;
        let authenticate = ntlm.authenticate(challenge)?;
        let mut session = ntlm.take_session()?;
        // NTLM's own MIC makes the mechListMIC mandatory (MS-SPNG 3.3.5.1); a request-mic
        // asks for it explicitly.
        let mic_sent = downgraded || ntlm.mic_sent() || r.neg_state == Some(NegState::RequestMic);
        let mic = mic_sent.then(|| {
            let m = session.sign(&[&self.mech_types_der]);
            session.reset_send_rc4();
            m
        });
        self.session = Some(Session::Ntlm(Box::new(session)));
        self.state = State::SentAuthenticate { mic_sent };
        Ok(encode_resp(&NegTokenResp {
            neg_state: None,
            supported_mech: None,
            response_token: Some(&authenticate),
            mech_list_mic: mic.as_ref().map(|m| &m[..]),
        }))
    }

    /// Checks the server's mechListMIC, if it sent one; `required` when we sent ours.
    fn finish_mic(&mut self, mic: Option<&[u8]>, required: bool) -> Result<(), AuthError> {
        let session = self
            .session
            .as_mut()
            .ok_or(bad("SPNEGO client stepped out of order"))?;
        match (mic, session) {
            (Some(mic), Session::Ntlm(s)) => {
                s.verify(&[&self.mech_types_der], mic)?;
                s.reset_recv_rc4();
            }
            (Some(mic), Session::Krb(s)) => s.verify_mic(&self.mech_types_der, mic)?,
            (None, _) if required => return Err(bad("SPNEGO: server sent no mechListMIC")),
            (None, _) => {}
        }
        Ok(())
    }

    /// The server's final word: accept-completed, with its mechListMIC when due.
    fn finish(&mut self, input: &[u8], mic_required: bool) -> Result<(), AuthError> {
        let r = Self::resp(input)?;
        match r.neg_state {
            Some(NegState::AcceptCompleted) => {}
            Some(NegState::Reject) => return Err(AuthError::RejectedCredentials),
            _ => return Err(bad("SPNEGO: server did not complete the exchange")),
        }
        if r.response_token.is_some() {
            return Err(bad("SPNEGO: unexpected token after the last leg"));
        }
        self.finish_mic(r.mech_list_mic, mic_required)
    }
}

impl ClientAuth for SpnegoClient {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_SPNEGO
    }

    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError> {
        match (&self.state, input) {
            (State::Start, None) => {
                let token = match (&mut self.krb, &mut self.ntlm) {
                    (Some((krb, rng)), _) => krb.ap_req(&mut **rng)?,
                    (None, Some(ntlm)) => ntlm.negotiate()?,
                    (None, None) => return Err(bad("SPNEGO client without a mechanism")),
                };
                self.state = State::SentInit;
                Ok(AuthStep::Continue(encode_init(
                    &self.mech_types_der,
                    Some(&token),
                )))
            }
            (State::SentInit, Some(input)) => self.after_init(input),
            (State::SentNegotiate, Some(input)) => {
                let r = Self::resp(input)?;
                Ok(AuthStep::Continue(self.answer_challenge(r, true)?))
            }
            (State::SentThirdLeg, Some(input)) => {
                self.finish(input, false)?;
                self.state = State::Done;
                Ok(AuthStep::Done(None))
            }
            (&State::SentAuthenticate { mic_sent }, Some(input)) => {
                self.finish(input, mic_sent)?;
                self.state = State::Done;
                Ok(AuthStep::Done(None))
            }
            _ => Err(bad("SPNEGO client stepped out of order")),
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
