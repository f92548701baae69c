//! SPNEGO initiator offering NTLM only. RPC legs: bind(NegTokenInit + NEGOTIATE) →
//! bind_ack(CHALLENGE) → alter_context(AUTHENTICATE + mechListMIC) → alter_context_resp
//! (accept-completed + mechListMIC).

use super::AUTH_TYPE_SPNEGO;
use super::tokens::{
    self, Mech, NegState, NegTokenResp, NegotiationToken, OID_NTLM, encode_init, encode_resp,
    mech_type_list,
};
use crate::auth::ntlm::client::NtlmClient;
use crate::auth::ntlm::session::NtlmSession;
use crate::rpc::security::{AuthError, AuthStep, ClientAuth, Protection};

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

enum State {
    Start,
    SentInit,
    SentAuthenticate { mic_sent: bool },
    Done,
}

/// SPNEGO client around an [`NtlmClient`] (auth_type 0x09).
pub struct SpnegoClient {
    ntlm: NtlmClient,
    mech_types_der: Vec<u8>,
    session: Option<NtlmSession>,
    state: State,
}

impl SpnegoClient {
    pub fn new(ntlm: NtlmClient) -> SpnegoClient {
        SpnegoClient {
            ntlm,
            mech_types_der: mech_type_list(&[OID_NTLM]),
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

    /// CHALLENGE in, AUTHENTICATE (and our mechListMIC) out.
    fn answer_challenge(&mut self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        let r = Self::resp(input)?;
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
        let authenticate = self.ntlm.authenticate(challenge)?;
        let mut session = self.ntlm.take_session()?;
        // NTLM's own MIC makes the mechListMIC mandatory (MS-SPNG 3.3.5.1); a request-mic
        // asks for it explicitly.
        let mic_sent = self.ntlm.mic_sent() || r.neg_state == Some(NegState::RequestMic);
        let mic = mic_sent.then(|| {
            let m = session.sign(&[&self.mech_types_der]);
            session.reset_send_rc4();
            m
        });
        self.session = Some(session);
        self.state = State::SentAuthenticate { mic_sent };
        Ok(encode_resp(&NegTokenResp {
            neg_state: None,
            supported_mech: None,
            response_token: Some(&authenticate),
            mech_list_mic: mic.as_ref().map(|m| &m[..]),
        }))
    }

    /// The server's final word: accept-completed, and its mechListMIC when we sent ours.
    fn finish(&mut self, input: &[u8], mic_sent: bool) -> Result<(), AuthError> {
        let r = Self::resp(input)?;
        match r.neg_state {
            Some(NegState::AcceptCompleted) => {}
            Some(NegState::Reject) => return Err(AuthError::RejectedCredentials),
            _ => return Err(bad("SPNEGO: server did not complete the exchange")),
        }
        if r.response_token.is_some() {
            return Err(bad("SPNEGO: unexpected token after NTLM AUTHENTICATE"));
        }
        let session = self
            .session
            .as_mut()
            .ok_or(bad("SPNEGO client stepped out of order"))?;
        match r.mech_list_mic {
            Some(mic) => {
                session.verify(&[&self.mech_types_der], mic)?;
                session.reset_recv_rc4();
            }
            None if mic_sent => return Err(bad("SPNEGO: server sent no mechListMIC")),
            None => {}
        }
        Ok(())
    }
}

impl ClientAuth for SpnegoClient {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_SPNEGO
    }

    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError> {
        match (&self.state, input) {
            (State::Start, None) => {
                let negotiate = self.ntlm.negotiate()?;
                self.state = State::SentInit;
                Ok(AuthStep::Continue(encode_init(
                    &self.mech_types_der,
                    Some(&negotiate),
                )))
            }
            (State::SentInit, Some(input)) => Ok(AuthStep::Continue(self.answer_challenge(input)?)),
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
            (State::Done, Some(s)) => Ok(Box::new(s)),
            _ => Err(bad("SPNEGO context is not established")),
        }
    }
}
