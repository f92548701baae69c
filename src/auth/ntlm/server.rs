//! NTLM acceptor (MS-NLMP 3.2.5.1) over an [`AccountStore`]: issues the CHALLENGE, then
//! decides the login at the AUTHENTICATE leg, never later.

use std::sync::Arc;
use std::time::SystemTime;

use rand::RngCore;
use zeroize::Zeroizing;

use super::accounts::AccountStore;
use super::keys::{mic, nt_proof_str, response_key_nt, session_base_key};
use super::messages::{
    Authenticate, AvPairs, Challenge, MIC_OFFSET, Negotiate, NtlmV2Response, OUR_VERSION, av, flags,
};
use super::session::NtlmSession;
use super::{AUTH_TYPE_NTLM, REQUIRED_FLAGS, filetime};
use crate::auth::crypto::{Key16, ct_eq, rc4k, utf16le};
use crate::rpc::security::{AuthError, AuthStep, Protection, ServerAuth};

/// How the server names itself in the CHALLENGE, and its policy.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// NetBIOS computer name (also the CHALLENGE's TargetName), e.g. `WDS01`.
    pub nb_computer: String,
    /// NetBIOS domain (or workgroup) name, e.g. `WDS`.
    pub nb_domain: String,
    pub dns_computer: String,
    pub dns_domain: String,
    /// Accept anonymous NTLM (empty user, empty responses). Off unless asked for.
    pub allow_anonymous: bool,
}

impl ServerConfig {
    /// A config naming the server `computer` in workgroup/domain `domain`, anonymous refused.
    pub fn new(computer: &str, domain: &str) -> ServerConfig {
        ServerConfig {
            nb_computer: computer.to_uppercase(),
            nb_domain: domain.to_uppercase(),
            dns_computer: computer.to_lowercase(),
            dns_domain: domain.to_lowercase(),
            allow_anonymous: false,
        }
    }
}

/// What `user()` reports for an anonymous login (the ANONYMOUS LOGON well-known account).
pub const ANONYMOUS_USER: &str = "NT AUTHORITY\\ANONYMOUS LOGON";

enum State {
    Start,
    SentChallenge {
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
    },
    Done(Box<NtlmSession>),
    Finished,
}

/// NTLM server context, one per connection.
pub struct NtlmServer {
    store: Arc<dyn AccountStore>,
    config: ServerConfig,
    server_challenge: [u8; 8],
    now: u64,
    state: State,
    user: Option<String>,
    mic_received: bool,
}

impl NtlmServer {
    /// The server challenge comes from `rng`; `now` becomes the CHALLENGE's MsvAvTimestamp.
    pub fn new(
        store: Arc<dyn AccountStore>,
        config: ServerConfig,
        rng: &mut dyn RngCore,
        now: SystemTime,
    ) -> NtlmServer {
        let mut server_challenge = [0u8; 8];
        rng.fill_bytes(&mut server_challenge);
        NtlmServer {
            store,
            config,
            server_challenge,
            now: filetime(now),
            state: State::Start,
            user: None,
            mic_received: false,
        }
    }

    /// Whether the client's AUTHENTICATE carried a MIC (SPNEGO then wants a mechListMIC).
    pub(crate) fn mic_received(&self) -> bool {
        self.mic_received
    }

    /// NEGOTIATE in, CHALLENGE out.
    pub(crate) fn challenge(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::Start) {
            return Err(AuthError::BadToken {
                reason: "NTLM NEGOTIATE out of order",
            });
        }
        let n = Negotiate::decode(negotiate)?;
        if n.flags & REQUIRED_FLAGS != REQUIRED_FLAGS {
            return Err(AuthError::Other {
                operation: "NTLM server",
                status: None,
                detail: "client does not offer NTLMv2 session security with 128-bit keys, \
                         key exchange, signing and sealing (Unicode)"
                    .into(),
            });
        }
        let c = &self.config;
        let names = [
            (av::NB_COMPUTER_NAME, utf16le(&c.nb_computer)),
            (av::NB_DOMAIN_NAME, utf16le(&c.nb_domain)),
            (av::DNS_COMPUTER_NAME, utf16le(&c.dns_computer)),
            (av::DNS_DOMAIN_NAME, utf16le(&c.dns_domain)),
        ];
        let ts = self.now.to_le_bytes();
        let mut pairs: Vec<(u16, &[u8])> = names
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        pairs.push((av::TIMESTAMP, &ts));
        // Only what we support of what was asked, plus what 3.2.5.1.1 always sets.
        let granted = n.flags
            & (REQUIRED_FLAGS
                | flags::ALWAYS_SIGN
                | flags::VERSION
                | flags::NEGOTIATE_56
                | flags::REQUEST_TARGET);
        let challenge = Challenge {
            flags: granted
                | flags::REQUEST_TARGET
                | flags::NTLM
                | flags::ALWAYS_SIGN
                | flags::TARGET_INFO
                | flags::TARGET_TYPE_SERVER,
            server_challenge: self.server_challenge,
            target_name: utf16le(&c.nb_computer),
            target_info: AvPairs { pairs }.encode(),
            version: (n.flags & flags::VERSION != 0).then_some(OUR_VERSION),
        }
        .encode();
        self.state = State::SentChallenge {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
        };
        Ok(challenge)
    }

    /// Verifies the AUTHENTICATE. Every refusal of the login is `RejectedCredentials`.
    pub(crate) fn accept(&mut self, bytes: &[u8]) -> Result<(), AuthError> {
        let State::SentChallenge {
            negotiate,
            challenge,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(AuthError::BadToken {
                reason: "NTLM AUTHENTICATE out of order",
            });
        };
        let auth = Authenticate::decode(bytes)?;
        let (base_key, user) = self.verify_response(&auth)?;

        if auth.flags & REQUIRED_FLAGS != REQUIRED_FLAGS {
            return Err(AuthError::RejectedCredentials);
        }
        // KEY_EXCH is required, so the client must send its key (3.2.5.1.2).
        let esk: &[u8; 16] = auth
            .encrypted_session_key
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::RejectedCredentials)?;
        let exported = rc4k(&base_key[..], esk);

        // A MIC is present when the client's MsvAvFlags say so; the NTProofStr check above
        // already proved those AV pairs are the client's.
        let claims_mic = NtlmV2Response::decode(&auth.nt_response)
            .map(|r| r.av_pairs.flags() & av::FLAG_MIC_PRESENT != 0)
            .unwrap_or(false);
        if claims_mic {
            let Some(got) = auth.mic else {
                return Err(AuthError::RejectedCredentials);
            };
            let mut zeroed = bytes.to_vec();
            zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
            let want = mic(&exported, &negotiate, &challenge, &zeroed);
            if !ct_eq(&want[..], &got) {
                return Err(AuthError::RejectedCredentials);
            }
        }
        self.mic_received = claims_mic;
        self.user = Some(user);
        self.state = State::Done(Box::new(NtlmSession::new(&exported, false)));
        Ok(())
    }

    /// Checks the NT response; returns the session base key and the name to report.
    fn verify_response(&self, auth: &Authenticate) -> Result<(Key16, String), AuthError> {
        let anonymous = auth.user.is_empty()
            && auth.nt_response.is_empty()
            && (auth.lm_response.is_empty() || auth.lm_response == [0]);
        if anonymous {
            if !self.config.allow_anonymous {
                return Err(AuthError::RejectedCredentials);
            }
            return Ok((Zeroizing::new([0; 16]), ANONYMOUS_USER.to_owned()));
        }
        // LM and NTLMv1 (24-byte responses), or NTLMv2 without extended session security.
        if auth.nt_response.len() <= 24 || auth.flags & flags::EXTENDED_SESSIONSECURITY == 0 {
            return Err(AuthError::RejectedCredentials);
        }
        let resp = NtlmV2Response::decode(&auth.nt_response)
            .map_err(|_| AuthError::RejectedCredentials)?;
        let account = self
            .store
            .lookup(&auth.domain, &auth.user)
            .ok_or(AuthError::RejectedCredentials)?;
        // The client keyed its response with the names it sent; some clients use an empty
        // domain instead (3.2.5.1.2 asks servers to accept that too).
        for domain in [auth.domain.as_str(), ""] {
            let rk = response_key_nt(account.nt_hash(), &auth.user, domain);
            // Over the blob exactly as received: some clients omit the trailing Z(4).
            let proof = nt_proof_str(&rk, &self.server_challenge, resp.blob);
            if ct_eq(&proof[..], resp.nt_proof_str) {
                let domain = if account.domain.is_empty() {
                    auth.domain.as_str()
                } else {
                    account.domain.as_str()
                };
                let name = if domain.is_empty() {
                    account.user.clone()
                } else {
                    format!("{domain}\\{}", account.user)
                };
                return Ok((session_base_key(&rk, &proof[..]), name));
            }
        }
        Err(AuthError::RejectedCredentials)
    }

    pub(crate) fn take_session(&mut self) -> Result<NtlmSession, AuthError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Done(s) => Ok(*s),
            _ => Err(AuthError::BadToken {
                reason: "NTLM context is not established",
            }),
        }
    }

    pub(crate) fn authenticated_user(&self) -> Option<String> {
        self.user.clone()
    }
}

impl ServerAuth for NtlmServer {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_NTLM
    }

    /// bind(NEGOTIATE) → Continue(CHALLENGE); auth3(AUTHENTICATE) → Done(None).
    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        match self.state {
            State::Start => Ok(AuthStep::Continue(self.challenge(input)?)),
            _ => {
                self.accept(input)?;
                Ok(AuthStep::Done(None))
            }
        }
    }

    fn user(&self) -> Option<String> {
        self.authenticated_user()
    }

    fn into_protection(mut self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        Ok(Box::new(self.take_session()?))
    }
}
