//! NTLM initiator (MS-NLMP 3.1.5.1): NTLMv2 only, extended session security, 128-bit,
//! KEY_EXCH, SIGN + SEAL, MIC when the server sends a timestamp.

use std::time::SystemTime;

use rand::RngCore;
use zeroize::Zeroizing;

use super::keys::{
    client_blob, lmv2_response, mic, nt_hash, nt_proof_str, response_key_nt, session_base_key,
};
use super::messages::{
    Authenticate, AvPairs, Challenge, MIC_OFFSET, Negotiate, OUR_VERSION, av, flags,
};
use super::session::NtlmSession;
use super::{AUTH_TYPE_NTLM, REQUIRED_FLAGS, filetime};
use crate::auth::crypto::rc4k;
use crate::rpc::security::{AuthError, AuthStep, ClientAuth, Protection};

/// A user's credentials. The password is wiped from memory when this is dropped.
pub struct Credentials {
    pub domain: String,
    pub user: String,
    pub password: Zeroizing<String>,
}

impl Credentials {
    pub fn new(domain: &str, user: &str, password: &str) -> Credentials {
        Credentials {
            domain: domain.to_owned(),
            user: user.to_owned(),
            password: Zeroizing::new(password.to_owned()),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What we ask for: [`REQUIRED_FLAGS`], which the server must grant, and more it may.
const OFFERED: u32 = REQUIRED_FLAGS
    | flags::REQUEST_TARGET
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::VERSION
    | flags::NEGOTIATE_56;

enum State {
    Start,
    SentNegotiate(Vec<u8>),
    Done(Box<NtlmSession>),
    Finished,
}

/// NTLM client context. Raw NTLM in DCE/RPC is auth_type 0x0A.
pub struct NtlmClient {
    /// None for anonymous.
    creds: Option<Credentials>,
    client_challenge: [u8; 8],
    random_session_key: Zeroizing<[u8; 16]>,
    now: u64,
    state: State,
    mic_sent: bool,
}

impl NtlmClient {
    /// A client for `creds`. The client challenge and random session key come from `rng`;
    /// `now` is used as the NTLMv2 timestamp when the server sends none.
    pub fn new(creds: Credentials, rng: &mut dyn RngCore, now: SystemTime) -> NtlmClient {
        NtlmClient::build(Some(creds), rng, now)
    }

    /// Anonymous NTLM (MS-NLMP 3.1.5.1.2 / 3.3.1: empty user and password, LM response Z(1),
    /// no NT response, session base key Z(16)). Only useful against servers that allow it.
    pub fn anonymous(rng: &mut dyn RngCore, now: SystemTime) -> NtlmClient {
        NtlmClient::build(None, rng, now)
    }

    fn build(creds: Option<Credentials>, rng: &mut dyn RngCore, now: SystemTime) -> NtlmClient {
        let mut client_challenge = [0u8; 8];
        rng.fill_bytes(&mut client_challenge);
        let mut random_session_key = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(&mut random_session_key[..]);
        NtlmClient {
            creds,
            client_challenge,
            random_session_key,
            now: filetime(now),
            state: State::Start,
            mic_sent: false,
        }
    }

    /// Whether the AUTHENTICATE carried a MIC (SPNEGO then owes a mechListMIC).
    pub(crate) fn mic_sent(&self) -> bool {
        self.mic_sent
    }

    /// The NEGOTIATE message.
    pub(crate) fn negotiate(&mut self) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::Start) {
            return Err(AuthError::BadToken {
                reason: "NTLM client stepped out of order",
            });
        }
        let m = Negotiate { flags: OFFERED }.encode();
        self.state = State::SentNegotiate(m.clone());
        Ok(m)
    }

    /// Answers the CHALLENGE with an AUTHENTICATE; the context is then established.
    pub(crate) fn authenticate(&mut self, challenge_bytes: &[u8]) -> Result<Vec<u8>, AuthError> {
        let State::SentNegotiate(negotiate) = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(AuthError::BadToken {
                reason: "NTLM client stepped out of order",
            });
        };
        let challenge = Challenge::decode(challenge_bytes)?;
        if challenge.flags & REQUIRED_FLAGS != REQUIRED_FLAGS {
            return Err(AuthError::Other {
                operation: "NTLM client",
                status: None,
                detail: "server does not offer NTLMv2 session security with 128-bit keys, \
                         key exchange, signing and sealing"
                    .into(),
            });
        }
        let mut neg_flags = challenge.flags & OFFERED;
        let sc = challenge.server_challenge;
        let cc = self.client_challenge;

        let (lm, nt, base_key, with_mic) = match &self.creds {
            None => {
                neg_flags |= flags::ANONYMOUS;
                (vec![0u8], Vec::new(), Zeroizing::new([0u8; 16]), false)
            }
            Some(c) => {
                let server_pairs = AvPairs::decode(&challenge.target_info)?;
                let ts = server_pairs.timestamp();
                // Our AV pairs: the server's, with the MIC bit added when we send a MIC.
                let mut pairs: Vec<(u16, &[u8])> = server_pairs
                    .pairs
                    .iter()
                    .copied()
                    .filter(|(id, _)| *id != av::FLAGS)
                    .collect();
                let av_flags = (server_pairs.flags() | av::FLAG_MIC_PRESENT).to_le_bytes();
                if ts.is_some() {
                    pairs.push((av::FLAGS, &av_flags));
                }
                let av_bytes = AvPairs { pairs }.encode();
                let blob = client_blob(ts.unwrap_or(self.now), &cc, &av_bytes);
                let rk = response_key_nt(&nt_hash(&c.password), &c.user, &c.domain);
                let proof = nt_proof_str(&rk, &sc, &blob);
                // With a server timestamp the LM response is Z(24) (3.1.5.1.2).
                let lm = if ts.is_some() {
                    vec![0; 24]
                } else {
                    lmv2_response(&rk, &sc, &cc)
                };
                let base = session_base_key(&rk, &proof[..]);
                let mut nt = proof.to_vec();
                nt.extend_from_slice(&blob);
                (lm, nt, base, ts.is_some())
            }
        };

        // NTLMv2: KeyExchangeKey = SessionBaseKey; KEY_EXCH sends our random key under it.
        let encrypted = rc4k(&base_key[..], &self.random_session_key);
        let (domain, user) = match &self.creds {
            Some(c) => (c.domain.clone(), c.user.clone()),
            None => (String::new(), String::new()),
        };
        let auth = Authenticate {
            lm_response: lm,
            nt_response: nt,
            domain,
            user,
            workstation: String::new(),
            encrypted_session_key: encrypted.to_vec(),
            flags: neg_flags,
            version: Some(OUR_VERSION),
            mic: with_mic.then_some([0; 16]),
        };
        let mut out = auth.encode();
        if with_mic {
            let m = mic(&self.random_session_key, &negotiate, challenge_bytes, &out);
            out[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&m[..]);
        }
        self.mic_sent = with_mic;
        self.state = State::Done(Box::new(NtlmSession::new(&self.random_session_key, true)));
        Ok(out)
    }

    /// The established session, once.
    pub(crate) fn take_session(&mut self) -> Result<NtlmSession, AuthError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Done(s) => Ok(*s),
            _ => Err(AuthError::BadToken {
                reason: "NTLM context is not established",
            }),
        }
    }
}

impl ClientAuth for NtlmClient {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_NTLM
    }

    /// bind(NEGOTIATE) → bind_ack(CHALLENGE) → auth3(AUTHENTICATE).
    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError> {
        match input {
            None => Ok(AuthStep::Continue(self.negotiate()?)),
            Some(challenge) => Ok(AuthStep::Done(Some(self.authenticate(challenge)?))),
        }
    }

    fn into_protection(mut self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        Ok(Box::new(self.take_session()?))
    }
}
