//! GSS-API krb5 (RFC 4121) as DCE/RPC uses it: the AP exchange in MS-KILE 3.4.5.1's DCE
//! style (AP-REQ, the acceptor's AP-REP, the initiator's own AP-REP as a third leg), the
//! 0x8003 authenticator checksum, and per-message Wrap tokens with confidentiality laid out
//! as MS-KILE 3.4.5.4.1 describes for SSPI's in-place encryption (EC 16, RRC 28, the
//! rotation by RRC + EC, the RPC header and sec_trailer signed but not sealed when header
//! signing is on). MIC tokens serve SPNEGO's mechListMIC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::KrbError;
use super::crypto::{self, Key, UsageKeys};
use super::kdc::Credential;
use super::keytab::Keytab;
use super::messages::{
    AP_OPTION_MUTUAL_REQUIRED, ApReq, Authenticator, Checksum, EncApRepPart, EncTicketPart,
    EncryptedData, KrbErrorMessage, PrincipalName, TICKET_FLAG_INVALID, decode_ap_rep,
    encode_ap_rep, error_code, usage,
};
use crate::auth::crypto::ct_eq;
use crate::auth::spnego::der;
use crate::auth::spnego::tokens::{OID_KRB5, OID_MS_KRB5};
use crate::rpc::security::{AuthError, AuthStep, ClientAuth, Protection, ServerAuth};

/// DCE/RPC auth_type for Kerberos (RPC_C_AUTHN_GSS_KERBEROS).
pub const AUTH_TYPE_KERBEROS: u8 = 0x10;
/// The GSS authenticator checksum type (RFC 4121 4.1.1).
pub const GSS_CHECKSUM_TYPE: i32 = 0x8003;
/// Largest clock difference accepted between the two ends (RFC 4120's usual 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;

/// GSS context flags in the 0x8003 checksum (RFC 4121 4.1.1.1, RFC 4757 7.1).
pub mod flags {
    pub const DELEG: u32 = 0x01;
    pub const MUTUAL: u32 = 0x02;
    pub const REPLAY: u32 = 0x04;
    pub const SEQUENCE: u32 = 0x08;
    pub const CONF: u32 = 0x10;
    pub const INTEG: u32 = 0x20;
    pub const DCE_STYLE: u32 = 0x1000;
}
/// What we ask for: what Windows asks for on DCE/RPC at packet privacy.
const OUR_FLAGS: u32 =
    flags::MUTUAL | flags::REPLAY | flags::SEQUENCE | flags::CONF | flags::INTEG | flags::DCE_STYLE;

/// GSS token ids inside the framing (RFC 4121 4.1).
const TOK_AP_REQ: [u8; 2] = [0x01, 0x00];
const TOK_AP_REP: [u8; 2] = [0x02, 0x00];
const TOK_ERROR: [u8; 2] = [0x03, 0x00];
/// Per-message tokens (RFC 4121 4.2.6).
const TOK_MIC: [u8; 2] = [0x04, 0x04];
const TOK_WRAP: [u8; 2] = [0x05, 0x04];
/// Token flags (RFC 4121 4.2.2).
const SENT_BY_ACCEPTOR: u8 = 0x01;
const SEALED: u8 = 0x02;
const ACCEPTOR_SUBKEY: u8 = 0x04;
/// GSS key usages (RFC 4121 2).
const ACCEPTOR_SEAL: u32 = 22;
const ACCEPTOR_SIGN: u32 = 23;
const INITIATOR_SEAL: u32 = 24;
const INITIATOR_SIGN: u32 = 25;
/// Filler and rotation of our Wrap tokens (MS-KILE 3.4.5.4.1).
const EC: usize = 16;
const RRC: usize = 28;
const HEADER: usize = 16;
/// A Wrap token as we send it: header, then (RRC + EC) rotated bytes and the encrypted
/// confounder.
pub const WRAP_TOKEN_LEN: usize = HEADER + RRC + EC + crypto::CONFOUNDER_LEN;

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

/// A provider error that names the Kerberos failure (never secrets).
fn krb(operation: &'static str, e: KrbError) -> AuthError {
    match e {
        KrbError::Refused { code, .. } if code == error_code::KRB_AP_ERR_SKEW => AuthError::Other {
            operation,
            status: Some(code as u32),
            detail: "clock skew too great between this machine and the server (more than 5 \
                     minutes apart); correct the clock"
                .into(),
        },
        other => AuthError::Other {
            operation,
            status: other.code().map(|c| c as u32),
            detail: other.to_string(),
        },
    }
}

/// GSS framing (RFC 2743 3.1): `[APPLICATION 0] { OID, TOK_ID, inner }`.
pub fn frame(oid: &[u8], tok_id: [u8; 2], inner: &[u8]) -> Vec<u8> {
    let mut body = der::tlv(0x06, oid);
    body.extend_from_slice(&tok_id);
    body.extend_from_slice(inner);
    der::tlv(0x60, &body)
}

/// A GSS token's TOK_ID and inner token.
pub type Unframed<'a> = ([u8; 2], &'a [u8]);

/// The inner token of a GSS-framed krb5 token (either krb5 OID), with its TOK_ID; `None`
/// if `b` is not framed.
pub fn unframe(b: &[u8]) -> Result<Option<Unframed<'_>>, AuthError> {
    if b.first() != Some(&0x60) {
        return Ok(None);
    }
    let (outer, rest) = der::read(b)?;
    if !rest.is_empty() {
        return Err(bad("Kerberos: bytes after the GSS token"));
    }
    let (oid, inner) = der::read(outer.value)?;
    if oid.tag != 0x06 || (oid.value != OID_KRB5 && oid.value != OID_MS_KRB5) {
        return Err(bad("Kerberos: GSS token of another mechanism"));
    }
    if inner.len() < 2 {
        return Err(bad("Kerberos: GSS token without a token id"));
    }
    Ok(Some(([inner[0], inner[1]], &inner[2..])))
}

/// The 0x8003 checksum value: Lgth 16, zero channel bindings, flags (RFC 4121 4.1.1).
fn gss_checksum(flags: u32) -> Checksum {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&[0u8; 16]);
    v.extend_from_slice(&flags.to_le_bytes());
    Checksum {
        cksumtype: GSS_CHECKSUM_TYPE,
        checksum: v,
    }
}

/// The flags of a received 0x8003 checksum (none without one, MS-KILE 3.4.5).
fn checksum_flags(cksum: Option<&Checksum>) -> Result<u32, KrbError> {
    let Some(c) = cksum else {
        return Ok(0);
    };
    if c.cksumtype != GSS_CHECKSUM_TYPE {
        return Err(KrbError::Protocol(
            "authenticator checksum is not the GSS type 0x8003",
        ));
    }
    let v = &c.checksum;
    if v.len() < 24 || u32::from_le_bytes([v[0], v[1], v[2], v[3]]) != 16 {
        return Err(KrbError::Protocol("malformed GSS authenticator checksum"));
    }
    Ok(u32::from_le_bytes([v[20], v[21], v[22], v[23]]))
}

/// An AP-REQ, framed or not; KRB-ERRORs and AP-REPs likewise.
fn expect(token: &[u8], tok_id: [u8; 2]) -> Result<&[u8], AuthError> {
    match unframe(token)? {
        Some((id, inner)) if id == tok_id => Ok(inner),
        Some((id, inner)) if id == TOK_ERROR => Ok(inner),
        Some(_) => Err(bad("Kerberos: unexpected GSS token")),
        None => Ok(token),
    }
}

/// A KRB-ERROR where a token was expected, as an error.
fn refusal(token: &[u8]) -> Option<KrbError> {
    if !KrbErrorMessage::looks_like(token) {
        return None;
    }
    Some(match KrbErrorMessage::decode(token) {
        Ok(e) => KrbError::Refused {
            code: e.error_code,
            text: e.e_text,
        },
        Err(e) => e,
    })
}

/// 30 random bits, as MIT draws sequence numbers (some peers mishandle the top bits).
fn random_seq(rng: &mut dyn RngCore) -> u32 {
    rng.next_u32() & 0x3fff_ffff
}

// ---------------------------------------------------------------------------------------
// Per-message protection
// ---------------------------------------------------------------------------------------

/// Confounders from HMAC-SHA-256 in counter mode over a random key: unpredictable, and no
/// system calls per message.
struct Confounders {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl Confounders {
    fn new(rng: &mut dyn RngCore) -> Confounders {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        Confounders { key, counter: 0 }
    }

    fn next(&mut self) -> [u8; crypto::CONFOUNDER_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key[..]).expect("any key length");
        m.update(&self.counter.to_be_bytes());
        self.counter += 1;
        let out = m.finalize().into_bytes();
        let mut c = [0u8; crypto::CONFOUNDER_LEN];
        c.copy_from_slice(&out[..crypto::CONFOUNDER_LEN]);
        c
    }
}

/// An established krb5 context's message protection (both ends).
pub struct KrbSession {
    acceptor: bool,
    acceptor_subkey: bool,
    send_seal: UsageKeys,
    recv_seal: UsageKeys,
    send_sign: Key,
    recv_sign: Key,
    send_usage_sign: u32,
    recv_usage_sign: u32,
    send_seq: u64,
    recv_seq: u64,
    header_signing: bool,
    confounders: Confounders,
    /// After a failed check: every later message is refused.
    broken: bool,
}

impl KrbSession {
    fn new(
        key: &Key,
        acceptor: bool,
        acceptor_subkey: bool,
        send_seq: u32,
        recv_seq: u32,
        confounders: Confounders,
    ) -> KrbSession {
        let (send_seal, recv_seal, send_usage_sign, recv_usage_sign) = if acceptor {
            (ACCEPTOR_SEAL, INITIATOR_SEAL, ACCEPTOR_SIGN, INITIATOR_SIGN)
        } else {
            (INITIATOR_SEAL, ACCEPTOR_SEAL, INITIATOR_SIGN, ACCEPTOR_SIGN)
        };
        KrbSession {
            acceptor,
            acceptor_subkey,
            send_seal: UsageKeys::new(key, send_seal),
            recv_seal: UsageKeys::new(key, recv_seal),
            send_sign: key.clone(),
            recv_sign: key.clone(),
            send_usage_sign,
            recv_usage_sign,
            send_seq: u64::from(send_seq),
            recv_seq: u64::from(recv_seq),
            header_signing: false,
            confounders,
            broken: false,
        }
    }

    fn our_flags(&self, sealed: bool) -> u8 {
        (if self.acceptor { SENT_BY_ACCEPTOR } else { 0 })
            | (if sealed { SEALED } else { 0 })
            | (if self.acceptor_subkey {
                ACCEPTOR_SUBKEY
            } else {
                0
            })
    }

    /// The flags a token from the peer must carry.
    fn peer_flags(&self, sealed: bool) -> u8 {
        (if self.acceptor { 0 } else { SENT_BY_ACCEPTOR })
            | (if sealed { SEALED } else { 0 })
            | (if self.acceptor_subkey {
                ACCEPTOR_SUBKEY
            } else {
                0
            })
    }

    fn wrap_header(&self, ec: u16, rrc: u16, seq: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..2].copy_from_slice(&TOK_WRAP);
        h[2] = self.our_flags(true);
        h[3] = 0xff;
        h[4..6].copy_from_slice(&ec.to_be_bytes());
        h[6..8].copy_from_slice(&rrc.to_be_bytes());
        h[8..].copy_from_slice(&seq.to_be_bytes());
        h
    }

    /// GetMIC (RFC 4121 4.2.6.1) over `data`, with the next sequence number.
    pub fn get_mic(&mut self, data: &[u8]) -> Vec<u8> {
        let mut h = [0xffu8; HEADER];
        h[..2].copy_from_slice(&TOK_MIC);
        h[2] = self.our_flags(false);
        h[8..].copy_from_slice(&self.send_seq.to_be_bytes());
        self.send_seq += 1;
        let mac = crypto::checksum(&self.send_sign, self.send_usage_sign, &[data, &h]);
        let mut t = h.to_vec();
        t.extend_from_slice(&mac);
        t
    }

    /// VerifyMIC; the peer's sequence number must be the next one.
    pub fn verify_mic(&mut self, data: &[u8], token: &[u8]) -> Result<(), AuthError> {
        if self.broken {
            return Err(AuthError::BadSignature);
        }
        let ok = token.len() == HEADER + crypto::MAC_LEN
            && token[..2] == TOK_MIC
            && token[2] == self.peer_flags(false)
            && token[3..8] == [0xff; 5]
            && token[8..16] == self.recv_seq.to_be_bytes()
            && crypto::verify_checksum(
                &self.recv_sign,
                self.recv_usage_sign,
                &[data, &token[..HEADER]],
                &token[HEADER..],
            );
        if !ok {
            self.broken = true;
            return Err(AuthError::BadSignature);
        }
        self.recv_seq += 1;
        Ok(())
    }
}

/// Rotates `data` right by `n` bytes (RFC 4121 4.2.5).
fn rotate_right(data: &mut [u8], n: usize) {
    if !data.is_empty() {
        let n = n % data.len();
        data.rotate_right(n);
    }
}

impl Protection for KrbSession {
    fn signature_len(&self) -> usize {
        WRAP_TOKEN_LEN
    }

    fn set_header_signing(&mut self, negotiated: bool) {
        self.header_signing = negotiated;
    }

    fn seal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        if self.broken {
            return Err(AuthError::BadSignature);
        }
        let seq = self.send_seq;
        self.send_seq += 1;
        let inner = self.wrap_header(EC as u16, 0, seq);
        let confounder = self.confounders.next();
        let filler = [0u8; EC];
        // Encrypted: confounder | body | filler | header copy (RRC 0).
        let mut plain = Zeroizing::new(Vec::with_capacity(body.len() + 48));
        plain.extend_from_slice(&confounder);
        plain.extend_from_slice(body);
        plain.extend_from_slice(&filler);
        plain.extend_from_slice(&inner);
        let mut blob = self.send_seal.encrypt_raw(&plain);
        // Signed: the same with the RPC header and sec_trailer in their places, if agreed.
        let (h, t): (&[u8], &[u8]) = if self.header_signing {
            (header, trailer)
        } else {
            (&[], &[])
        };
        let mac = self
            .send_seal
            .mac(&[&confounder, h, body, t, &filler, &inner]);
        blob.extend_from_slice(&mac);
        rotate_right(&mut blob, RRC + EC);
        let split = blob.len() - body.len();
        let mut token = self.wrap_header(EC as u16, RRC as u16, seq).to_vec();
        token.extend_from_slice(&blob[..split]);
        body.copy_from_slice(&blob[split..]);
        Ok(token)
    }

    fn unseal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        if self.broken {
            return Err(AuthError::BadSignature);
        }
        match self.open(header, body, trailer, signature) {
            Ok(plain) => {
                body.copy_from_slice(&plain);
                self.recv_seq += 1;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }
}

impl KrbSession {
    /// Checks a Wrap token against the fragment and returns the plaintext body.
    fn open(
        &self,
        header: &[u8],
        body: &[u8],
        trailer: &[u8],
        token: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AuthError> {
        if token.len() < HEADER
            || token[..2] != TOK_WRAP
            || token[2] != self.peer_flags(true)
            || token[3] != 0xff
        {
            return Err(AuthError::BadSignature);
        }
        let ec = usize::from(u16::from_be_bytes([token[4], token[5]]));
        let rrc = usize::from(u16::from_be_bytes([token[6], token[7]]));
        if token[8..16] != self.recv_seq.to_be_bytes() {
            return Err(AuthError::BadSignature);
        }
        // Everything after the header, then the body, is the rotated ciphertext and MAC.
        let mut blob = Zeroizing::new(Vec::with_capacity(token.len() - HEADER + body.len()));
        blob.extend_from_slice(&token[HEADER..]);
        blob.extend_from_slice(body);
        let need = crypto::CONFOUNDER_LEN + ec + HEADER + crypto::MAC_LEN;
        // In-place decryption: the plaintext must be exactly as long as the body.
        if blob.len() != body.len() + need {
            return Err(AuthError::BadSignature);
        }
        let n = blob.len();
        blob.rotate_left((rrc + ec) % n);
        let (cipher, mac) = blob.split_at(n - crypto::MAC_LEN);
        let plain = self
            .recv_seal
            .decrypt_raw(cipher)
            .map_err(|_| AuthError::BadSignature)?;
        let conf = &plain[..crypto::CONFOUNDER_LEN];
        let data_end = plain.len() - ec - HEADER;
        let data = &plain[crypto::CONFOUNDER_LEN..data_end];
        let filler = &plain[data_end..data_end + ec];
        let inner = &plain[data_end + ec..];
        let (h, t): (&[u8], &[u8]) = if self.header_signing {
            (header, trailer)
        } else {
            (&[], &[])
        };
        let expected = self.recv_seal.mac(&[conf, h, data, t, filler, inner]);
        // The protected header copy must say what the clear one says (RRC aside).
        if !ct_eq(&expected, mac) || inner[..6] != token[..6] || inner[8..] != token[8..16] {
            return Err(AuthError::BadSignature);
        }
        Ok(Zeroizing::new(data.to_vec()))
    }
}

// ---------------------------------------------------------------------------------------
// Initiator
// ---------------------------------------------------------------------------------------

enum InitState {
    Start,
    SentApReq,
    Done(Box<KrbSession>),
    Taken,
}

/// The initiator of a DCE-style krb5 context, from a service ticket.
pub struct KerberosInitiator {
    cred: Credential,
    /// GSS-frame the AP-REQ (inside SPNEGO); raw for auth type 0x10 (MS-KILE 3.4.5.1).
    framed: bool,
    ctime: i64,
    cusec: u32,
    subkey: Key,
    seq: u32,
    confounders: Option<Confounders>,
    state: InitState,
}

impl KerberosInitiator {
    pub fn new(
        cred: Credential,
        framed: bool,
        now: i64,
        usec: u32,
        rng: &mut dyn RngCore,
    ) -> KerberosInitiator {
        let subkey = Key::random(cred.key.etype(), rng);
        let seq = random_seq(rng);
        let confounders = Some(Confounders::new(rng));
        KerberosInitiator {
            cred,
            framed,
            ctime: now,
            cusec: usec % 1_000_000,
            subkey,
            seq,
            confounders,
            state: InitState::Start,
        }
    }

    /// The AP-REQ.
    pub fn ap_req(&mut self, rng: &mut dyn RngCore) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, InitState::Start) {
            return Err(bad("Kerberos client stepped out of order"));
        }
        let ticket = super::messages::Ticket::decode(&self.cred.ticket)
            .map_err(|e| krb("Kerberos client", e))?;
        let authenticator = Authenticator {
            crealm: self.cred.crealm.clone(),
            cname: self.cred.client.clone(),
            cksum: Some(gss_checksum(OUR_FLAGS)),
            cusec: self.cusec,
            ctime: self.ctime,
            subkey: Some(self.subkey.clone()),
            seq_number: Some(self.seq),
        };
        let mut plain = Zeroizing::new(authenticator.encode());
        let req = ApReq {
            options: AP_OPTION_MUTUAL_REQUIRED,
            ticket,
            authenticator: EncryptedData {
                etype: self.cred.key.etype().number(),
                kvno: None,
                cipher: crypto::encrypt_random(
                    &self.cred.key,
                    usage::AP_REQ_AUTHENTICATOR,
                    &plain,
                    rng,
                ),
            },
        }
        .encode();
        plain.zeroize();
        self.state = InitState::SentApReq;
        Ok(if self.framed {
            frame(OID_KRB5, TOK_AP_REQ, &req)
        } else {
            req
        })
    }

    /// The acceptor's AP-REP in, mutual authentication checked, our AP-REP (the DCE third
    /// leg) out.
    pub fn ap_rep(&mut self, token: &[u8], rng: &mut dyn RngCore) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, InitState::SentApReq) {
            return Err(bad("Kerberos client stepped out of order"));
        }
        let inner = expect(token, TOK_AP_REP)?;
        if let Some(e) = refusal(inner) {
            return Err(krb("Kerberos server", e));
        }
        let enc = decode_ap_rep(inner).map_err(|e| krb("Kerberos client", e))?;
        let plain =
            crypto::decrypt(&self.cred.key, usage::AP_REP_ENC_PART, &enc.cipher).map_err(|_| {
                AuthError::Other {
                    operation: "Kerberos client",
                    status: None,
                    detail: "mutual authentication failed: the server's AP-REP does not decrypt \
                         with the ticket's session key"
                        .into(),
                }
            })?;
        let part = EncApRepPart::decode(&plain).map_err(|e| krb("Kerberos client", e))?;
        if part.ctime != self.ctime || part.cusec != self.cusec {
            return Err(AuthError::Other {
                operation: "Kerberos client",
                status: None,
                detail: "mutual authentication failed: the server's AP-REP does not echo our \
                         authenticator's time"
                    .into(),
            });
        }
        let server_seq = part.seq_number.unwrap_or(0);
        let (key, acceptor_subkey) = match part.subkey {
            Some(k) => (k, true),
            None => (self.subkey.clone(), false),
        };
        // Our AP-REP: MS-KILE 3.4.5.1 "exactly as the server would", echoing the server's
        // sequence number, without a subkey (as MIT's DCE-style initiator builds it).
        let third = EncApRepPart {
            ctime: self.ctime,
            cusec: self.cusec,
            subkey: None,
            seq_number: Some(server_seq),
        };
        let rep = encode_ap_rep(&EncryptedData {
            etype: self.cred.key.etype().number(),
            kvno: None,
            cipher: crypto::encrypt_random(
                &self.cred.key,
                usage::AP_REP_ENC_PART,
                &third.encode(),
                rng,
            ),
        });
        let confounders = self
            .confounders
            .take()
            .ok_or(bad("Kerberos client stepped out of order"))?;
        let session = KrbSession::new(
            &key,
            false,
            acceptor_subkey,
            self.seq,
            server_seq,
            confounders,
        );
        self.state = InitState::Done(Box::new(session));
        Ok(rep)
    }

    /// The established context's protection, once.
    pub fn take_session(&mut self) -> Result<KrbSession, AuthError> {
        match std::mem::replace(&mut self.state, InitState::Taken) {
            InitState::Done(s) => Ok(*s),
            other => {
                self.state = other;
                Err(bad("Kerberos context is not established"))
            }
        }
    }
}

/// Raw Kerberos (auth type 0x10): bind(AP-REQ) → bind_ack(AP-REP) → auth3(AP-REP), the
/// third leg in auth3 as MS-RPCE 3.3.1.5.2 advises for a provider with an odd number of legs.
pub struct KerberosClient {
    inner: KerberosInitiator,
    rng: Box<dyn RngCore + Send>,
}

impl KerberosClient {
    /// `rng` draws the subkey, sequence number and confounders.
    pub fn new(
        cred: Credential,
        now: i64,
        usec: u32,
        mut rng: Box<dyn RngCore + Send>,
    ) -> KerberosClient {
        let inner = KerberosInitiator::new(cred, false, now, usec, &mut *rng);
        KerberosClient { inner, rng }
    }
}

impl ClientAuth for KerberosClient {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_KERBEROS
    }

    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError> {
        match input {
            None => Ok(AuthStep::Continue(self.inner.ap_req(&mut *self.rng)?)),
            Some(token) => Ok(AuthStep::Done(Some(
                self.inner.ap_rep(token, &mut *self.rng)?,
            ))),
        }
    }

    fn into_protection(mut self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        Ok(Box::new(self.inner.take_session()?))
    }
}

// ---------------------------------------------------------------------------------------
// Acceptor
// ---------------------------------------------------------------------------------------

/// Authenticators seen in the last [`MAX_SKEW_SECS`] (each side of now), shared by every
/// connection of a server: a replayed AP-REQ is refused.
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<(String, i64, u32), i64>>,
}

impl ReplayCache {
    pub fn new() -> ReplayCache {
        ReplayCache::default()
    }

    /// Records an authenticator; false if it was seen before.
    fn insert(&self, client: String, ctime: i64, cusec: u32, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, expiry| *expiry > now);
        seen.insert((client, ctime, cusec), ctime + 2 * MAX_SKEW_SECS)
            .is_none()
    }
}

/// What a server accepts Kerberos logins with.
pub struct AcceptorConfig {
    pub keytab: Arc<Keytab>,
    /// The service principal tickets must be for (`host/name`, realm optional); `None`
    /// accepts any principal in the keytab.
    pub spn: Option<(PrincipalName, Option<String>)>,
    pub replay: Arc<ReplayCache>,
}

enum AcceptState {
    Start,
    /// DCE style: the initiator's AP-REP is due.
    WaitThirdLeg,
    Done,
    Failed,
}

/// The acceptor of a krb5 context.
pub struct KerberosAcceptor {
    config: Arc<AcceptorConfig>,
    now: i64,
    rng: Box<dyn RngCore + Send>,
    state: AcceptState,
    ticket_key: Option<Key>,
    our_seq: u32,
    session: Option<KrbSession>,
    user: Option<String>,
}

impl KerberosAcceptor {
    pub fn new(
        config: Arc<AcceptorConfig>,
        now: i64,
        mut rng: Box<dyn RngCore + Send>,
    ) -> KerberosAcceptor {
        let our_seq = random_seq(&mut *rng);
        KerberosAcceptor {
            config,
            now,
            rng,
            state: AcceptState::Start,
            ticket_key: None,
            our_seq,
            session: None,
            user: None,
        }
    }

    /// `user@REALM`, once authenticated.
    pub fn user(&self) -> Option<String> {
        matches!(self.state, AcceptState::Done)
            .then(|| self.user.clone())
            .flatten()
    }

    fn ticket_part(&self, req: &ApReq) -> Result<EncTicketPart, KrbError> {
        let t = &req.ticket;
        if let Some((name, realm)) = &self.config.spn
            && (!t.sname.same_service(name)
                || realm
                    .as_ref()
                    .is_some_and(|r| !r.eq_ignore_ascii_case(&t.realm)))
        {
            return Err(KrbError::Refused {
                code: 35, // KRB_AP_ERR_NOT_US
                text: Some(format!("the ticket is for {}@{}", t.sname, t.realm)),
            });
        }
        let key = self
            .config
            .keytab
            .find(&t.sname, &t.realm, t.enc_part.etype, t.enc_part.kvno)
            .ok_or(KrbError::Refused {
                code: 45, // KRB_AP_ERR_NOKEY
                text: Some(format!(
                    "no key for {}@{} (etype {}, kvno {:?}) in the keytab",
                    t.sname, t.realm, t.enc_part.etype, t.enc_part.kvno
                )),
            })?;
        let plain = crypto::decrypt(key, usage::TICKET, &t.enc_part.cipher).map_err(|_| {
            KrbError::Refused {
                code: error_code::KRB_AP_ERR_BAD_INTEGRITY,
                text: Some("the ticket does not decrypt with the keytab's key".into()),
            }
        })?;
        EncTicketPart::decode(&plain)
    }

    /// The AP-REQ in; the AP-REP out (`None` when the client wants no mutual
    /// authentication) and whether the DCE third leg is due.
    pub fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), AuthError> {
        if !matches!(self.state, AcceptState::Start) {
            return Err(bad("Kerberos server stepped out of order"));
        }
        self.state = AcceptState::Failed;
        let inner = expect(token, TOK_AP_REQ)?;
        let framed = inner.len() != token.len();
        let req = ApReq::decode(inner).map_err(|e| krb("Kerberos server", e))?;
        let ticket = self
            .ticket_part(&req)
            .map_err(|e| krb("Kerberos server", e))?;
        let plain = crypto::decrypt(
            &ticket.key,
            usage::AP_REQ_AUTHENTICATOR,
            &req.authenticator.cipher,
        )
        .map_err(|_| AuthError::RejectedCredentials)?;
        let auth = Authenticator::decode(&plain).map_err(|e| krb("Kerberos server", e))?;
        let now = self.now;
        let refuse = |code: i32, text: &str| {
            krb(
                "Kerberos server",
                KrbError::Refused {
                    code,
                    text: Some(text.to_string()),
                },
            )
        };
        if !auth.cname.same_name(&ticket.cname) || auth.crealm != ticket.crealm {
            return Err(refuse(36, "the authenticator is not the ticket's client")); // BADMATCH
        }
        if (auth.ctime - now).abs() > MAX_SKEW_SECS {
            return Err(refuse(error_code::KRB_AP_ERR_SKEW, "clock skew too great"));
        }
        if ticket.starttime.unwrap_or(ticket.authtime) - MAX_SKEW_SECS > now {
            return Err(refuse(
                error_code::KRB_AP_ERR_TKT_NYV,
                "the ticket is not yet valid",
            ));
        }
        if ticket.endtime + MAX_SKEW_SECS < now {
            return Err(refuse(
                error_code::KRB_AP_ERR_TKT_EXPIRED,
                "the ticket has expired",
            ));
        }
        if ticket.flags & TICKET_FLAG_INVALID != 0 {
            return Err(refuse(
                error_code::KRB_AP_ERR_TKT_NYV,
                "the ticket is marked invalid",
            ));
        }
        let client = format!("{}@{}", auth.cname, auth.crealm);
        if !self
            .config
            .replay
            .insert(client.clone(), auth.ctime, auth.cusec, now)
        {
            return Err(refuse(
                error_code::KRB_AP_ERR_REPEAT,
                "replayed authenticator",
            ));
        }
        let gss_flags =
            checksum_flags(auth.cksum.as_ref()).map_err(|e| krb("Kerberos server", e))?;
        let dce = gss_flags & flags::DCE_STYLE != 0;
        let mutual =
            dce || gss_flags & flags::MUTUAL != 0 || req.options & AP_OPTION_MUTUAL_REQUIRED != 0;
        let subkey_etype = auth
            .subkey
            .as_ref()
            .map(Key::etype)
            .unwrap_or(ticket.key.etype());
        let acceptor_subkey = Key::random(subkey_etype, &mut *self.rng);
        let peer_seq = auth.seq_number.unwrap_or(0);
        let rep = mutual.then(|| {
            let part = EncApRepPart {
                ctime: auth.ctime,
                cusec: auth.cusec,
                subkey: Some(acceptor_subkey.clone()),
                seq_number: Some(self.our_seq),
            };
            let plain = Zeroizing::new(part.encode());
            let rep = encode_ap_rep(&EncryptedData {
                etype: ticket.key.etype().number(),
                kvno: None,
                cipher: crypto::encrypt_random(
                    &ticket.key,
                    usage::AP_REP_ENC_PART,
                    &plain,
                    &mut *self.rng,
                ),
            });
            // DCE style sends the AP-REP raw; otherwise it is framed like the AP-REQ.
            if framed && !dce {
                frame(OID_KRB5, TOK_AP_REP, &rep)
            } else {
                rep
            }
        });
        // Without mutual authentication there is no AP-REP and so no acceptor subkey.
        let (key, with_subkey) = match (&rep, &auth.subkey) {
            (Some(_), _) => (acceptor_subkey, true),
            (None, Some(k)) => (k.clone(), false),
            (None, None) => (ticket.key.clone(), false),
        };
        self.session = Some(KrbSession::new(
            &key,
            true,
            with_subkey,
            self.our_seq,
            peer_seq,
            Confounders::new(&mut *self.rng),
        ));
        self.user = Some(client);
        self.ticket_key = Some(ticket.key);
        self.state = if dce {
            AcceptState::WaitThirdLeg
        } else {
            AcceptState::Done
        };
        Ok((rep, dce))
    }

    /// The initiator's AP-REP (DCE third leg): it must decrypt with the session key and
    /// echo our sequence number.
    pub fn third_leg(&mut self, token: &[u8]) -> Result<(), AuthError> {
        if !matches!(self.state, AcceptState::WaitThirdLeg) {
            return Err(bad("Kerberos server stepped out of order"));
        }
        self.state = AcceptState::Failed;
        let inner = expect(token, TOK_AP_REP)?;
        let enc = decode_ap_rep(inner).map_err(|_| AuthError::RejectedCredentials)?;
        let key = self
            .ticket_key
            .as_ref()
            .ok_or(bad("Kerberos server stepped out of order"))?;
        let plain = crypto::decrypt(key, usage::AP_REP_ENC_PART, &enc.cipher)
            .map_err(|_| AuthError::RejectedCredentials)?;
        let part = EncApRepPart::decode(&plain).map_err(|_| AuthError::RejectedCredentials)?;
        if part.seq_number != Some(self.our_seq) || (part.ctime - self.now).abs() > MAX_SKEW_SECS {
            return Err(AuthError::RejectedCredentials);
        }
        self.state = AcceptState::Done;
        Ok(())
    }

    pub fn take_session(&mut self) -> Result<KrbSession, AuthError> {
        match (&self.state, self.session.take()) {
            (AcceptState::Done, Some(s)) => Ok(s),
            _ => Err(bad("Kerberos context is not established")),
        }
    }
}

/// Raw Kerberos acceptor (auth type 0x10): bind(AP-REQ) → bind_ack(AP-REP) → auth3 or
/// alter_context(AP-REP).
pub struct KerberosServer {
    inner: KerberosAcceptor,
}

impl KerberosServer {
    pub fn new(acceptor: KerberosAcceptor) -> KerberosServer {
        KerberosServer { inner: acceptor }
    }
}

impl ServerAuth for KerberosServer {
    fn auth_type(&self) -> u8 {
        AUTH_TYPE_KERBEROS
    }

    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError> {
        match self.inner.state {
            AcceptState::Start => match self.inner.accept(input)? {
                (Some(rep), true) => Ok(AuthStep::Continue(rep)),
                (rep, _) => Ok(AuthStep::Done(rep)),
            },
            AcceptState::WaitThirdLeg => {
                self.inner.third_leg(input)?;
                Ok(AuthStep::Done(None))
            }
            _ => Err(bad("Kerberos: token after the exchange completed")),
        }
    }

    fn user(&self) -> Option<String> {
        self.inner.user()
    }

    fn into_protection(mut self: Box<Self>) -> Result<Box<dyn Protection>, AuthError> {
        Ok(Box::new(self.inner.take_session()?))
    }
}

#[cfg(test)]
mod tests;
