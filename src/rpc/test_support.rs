//! A toy "shared secret" security provider so the connection machines can be tested end to
//! end without NTLM. **Not secure**: it exists for unit tests, property tests and the fuzz
//! targets (compiled outside `cfg(test)` only with the `test-support` cargo feature).
//!
//! Legs: the client sends a nonce; the server answers with its nonce; the client proves the
//! secret with an HMAC over both nonces and names its user. With [`Legs::Three`] that proof
//! travels in auth3 (like NTLM, auth_type 0x0A); with [`Legs::Four`] it travels in
//! alter_context and the server proves the secret back in alter_context_resp (like SPNEGO's
//! mechListMIC leg, auth_type 0x09). Messages are "sealed" by XOR with a SHA-256 keystream
//! and signed with a truncated HMAC-SHA-256 under a per-connection key and sequence numbers.

use sha2::{Digest, Sha256};

use super::pdu::auth_type;
use super::security::{AuthError, AuthStep, ClientAuth, Protection, ServerAuth};
use super::server::AuthFactory;

/// Which leg pattern the toy follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legs {
    Three,
    Four,
}

impl Legs {
    pub fn auth_type(self) -> u8 {
        match self {
            Self::Three => auth_type::WINNT,
            Self::Four => auth_type::GSS_NEGOTIATE,
        }
    }
}

const SIG_LEN: usize = 16;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn nonce_from(token: &[u8], tag: &[u8; 4]) -> Result<[u8; 8], AuthError> {
    match token {
        [a, b, c, d, rest @ ..] if [*a, *b, *c, *d] == *tag && rest.len() == 8 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(rest);
            Ok(n)
        }
        _ => Err(AuthError::BadToken {
            reason: "toy token has the wrong tag or length",
        }),
    }
}

fn session(secret: &[u8], cn: &[u8; 8], sn: &[u8; 8], client_sends: bool) -> ToyProtection {
    ToyProtection {
        key: hmac(secret, &[b"key", cn, sn]),
        send_dir: if client_sends { b'c' } else { b's' },
        send_seq: 0,
        recv_seq: 0,
        header_signing: true,
    }
}

/// Client side of the toy.
pub struct ToyClient {
    secret: Vec<u8>,
    user: String,
    nonce: [u8; 8],
    legs: Legs,
    server_nonce: Option<[u8; 8]>,
    done: bool,
}

impl ToyClient {
    /// `nonce` comes from the caller: the machines never draw randomness.
    pub fn new(secret: &[u8], user: &str, nonce: [u8; 8], legs: Legs) -> Self {
        Self {
            secret: secret.to_vec(),
            user: user.to_owned(),
            nonce,
            legs,
            server_nonce: None,
            done: false,
        }
    }
}

impl ClientAuth for ToyClient {
    fn auth_type(&self) -> u8 {
        self.legs.auth_type()
    }

    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError> {
        match (input, self.server_nonce) {
            (None, None) => Ok(AuthStep::Continue([&b"TOY1"[..], &self.nonce].concat())),
            (Some(t), None) => {
                let sn = nonce_from(t, b"TOY2")?;
                self.server_nonce = Some(sn);
                let proof = hmac(&self.secret, &[b"client", &self.nonce, &sn]);
                let token = [&b"TOY3"[..], &proof, self.user.as_bytes()].concat();
                Ok(match self.legs {
                    Legs::Three => {
                        self.done = true;
                        AuthStep::Done(Some(token))
                    }
                    Legs::Four => AuthStep::Continue(token),
                })
            }
            (Some(t), Some(sn)) if self.legs == Legs::Four && !self.done => {
                let want = hmac(&self.secret, &[b"server", &self.nonce, &sn]);
                if t.len() != 36 || t[..4] != *b"TOY4" || t[4..] != want {
                    return Err(AuthError::RejectedCredentials);
                }
                self.done = true;
                Ok(AuthStep::Done(None))
            }
            _ => Err(AuthError::BadToken {
                reason: "toy client stepped out of order",
            }),
        }
    }

    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        match (self.done, self.server_nonce) {
            (true, Some(sn)) => Ok(Box::new(session(&self.secret, &self.nonce, &sn, true))),
            _ => Err(AuthError::BadToken {
                reason: "toy client context is not complete",
            }),
        }
    }
}

/// Server side of the toy.
pub struct ToyServer {
    secret: Vec<u8>,
    nonce: [u8; 8],
    legs: Legs,
    client_nonce: Option<[u8; 8]>,
    user: Option<String>,
}

impl ToyServer {
    pub fn new(secret: &[u8], nonce: [u8; 8], legs: Legs) -> Self {
        Self {
            secret: secret.to_vec(),
            nonce,
            legs,
            client_nonce: None,
            user: None,
        }
    }
}

impl ServerAuth for ToyServer {
    fn auth_type(&self) -> u8 {
        self.legs.auth_type()
    }

    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        let Some(cn) = self.client_nonce else {
            self.client_nonce = Some(nonce_from(input, b"TOY1")?);
            return Ok(AuthStep::Continue([&b"TOY2"[..], &self.nonce].concat()));
        };
        if self.user.is_some() || input.len() < 36 || input[..4] != *b"TOY3" {
            return Err(AuthError::BadToken {
                reason: "toy server expected the proof leg",
            });
        }
        let want = hmac(&self.secret, &[b"client", &cn, &self.nonce]);
        if input[4..36] != want {
            return Err(AuthError::RejectedCredentials);
        }
        self.user = Some(String::from_utf8_lossy(&input[36..]).into_owned());
        Ok(match self.legs {
            Legs::Three => AuthStep::Done(None),
            Legs::Four => {
                let proof = hmac(&self.secret, &[b"server", &cn, &self.nonce]);
                AuthStep::Done(Some([&b"TOY4"[..], &proof].concat()))
            }
        })
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }

    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        match (&self.user, self.client_nonce) {
            (Some(_), Some(cn)) => Ok(Box::new(session(&self.secret, &cn, &self.nonce, false))),
            _ => Err(AuthError::BadToken {
                reason: "toy server context is not complete",
            }),
        }
    }
}

/// A factory serving both toy leg patterns with `secret`.
pub fn server_factory(secret: &[u8], nonce: [u8; 8]) -> AuthFactory {
    let secret = secret.to_vec();
    Box::new(move |auth_type| {
        [Legs::Three, Legs::Four]
            .into_iter()
            .find(|l| l.auth_type() == auth_type)
            .map(|legs| Box::new(ToyServer::new(&secret, nonce, legs)) as Box<dyn ServerAuth>)
    })
}

/// XOR "sealing" and truncated-HMAC signatures.
pub struct ToyProtection {
    key: [u8; 32],
    send_dir: u8,
    send_seq: u32,
    recv_seq: u32,
    header_signing: bool,
}

impl ToyProtection {
    fn xor(&self, dir: u8, seq: u32, body: &mut [u8]) {
        for (counter, chunk) in body.chunks_mut(32).enumerate() {
            let block = Sha256::new()
                .chain_update(self.key)
                .chain_update([dir])
                .chain_update(seq.to_le_bytes())
                .chain_update((counter as u64).to_le_bytes())
                .finalize();
            for (b, k) in chunk.iter_mut().zip(block) {
                *b ^= k;
            }
        }
    }

    fn mac(&self, dir: u8, seq: u32, header: &[u8], body: &[u8], trailer: &[u8]) -> [u8; 32] {
        let (header, trailer) = if self.header_signing {
            (header, trailer)
        } else {
            (&[][..], &[][..])
        };
        hmac(
            &self.key,
            &[&[dir], &seq.to_le_bytes(), header, body, trailer],
        )
    }

    fn recv_dir(&self) -> u8 {
        if self.send_dir == b'c' { b's' } else { b'c' }
    }
}

impl Protection for ToyProtection {
    fn signature_len(&self) -> usize {
        SIG_LEN
    }

    fn seal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(1);
        let mac = self.mac(self.send_dir, seq, header, body, trailer);
        self.xor(self.send_dir, seq, body);
        Ok(mac[..SIG_LEN].to_vec())
    }

    fn unseal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        let seq = self.recv_seq;
        self.recv_seq = self.recv_seq.wrapping_add(1);
        let dir = self.recv_dir();
        self.xor(dir, seq, body);
        let mac = self.mac(dir, seq, header, body, trailer);
        if signature != &mac[..SIG_LEN] {
            return Err(AuthError::BadSignature);
        }
        Ok(())
    }

    fn set_header_signing(&mut self, negotiated: bool) {
        self.header_signing = negotiated;
    }
}
