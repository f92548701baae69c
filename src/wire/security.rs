//! MS-WDSMT packet security beyond the checksum: the HMAC of HASH mode (§2.2.2.1) and the RSA
//! signature of SIGN mode (§2.2.2.2), the key blobs MS-WDSMSI's authenticated reply carries
//! (`SymKey`, `SignKey`), and the `SecMode` word that says which mode each side uses.
//!
//! Both modes cover the same bytes as the checksum: everything after the security header.
//! What a side puts on the packets it sends is a [`Protect`]; what it expects on the packets
//! it receives is a [`Check`]. Two readings here are inferences that a capture from a real
//! server must confirm (README.md#pn-packet-security): HASH is HMAC keyed with the raw
//! `SymKey` bytes over the covered bytes ([`HMAC_INPUT`] switches to HMAC over their digest),
//! and SIGN is PKCS#1 v1.5 over the covered bytes' digest, emitted little-endian as CryptoAPI
//! does (a big-endian signature is accepted too).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::mt::{Security, SecurityType};

/// CryptoAPI `ALG_ID`s seen in `HashAlgId`, `HMACAlgId` and the key blobs.
pub mod alg {
    pub const CALG_SHA1: u32 = 0x8004;
    pub const CALG_SHA_256: u32 = 0x800C;
    pub const CALG_HMAC: u32 = 0x8009;
    pub const CALG_3DES: u32 = 0x6603;
    pub const CALG_AES_256: u32 = 0x6610;
    pub const CALG_RSA_SIGN: u32 = 0x2400;
    pub const CALG_RSA_KEYX: u32 = 0xA400;
}

const PLAINTEXTKEYBLOB: u8 = 0x08;
const PUBLICKEYBLOB: u8 = 0x06;
const CUR_BLOB_VERSION: u8 = 0x02;
/// "RSA1", the magic of both CryptoAPI's RSAPUBKEY and CNG's BCRYPT_RSAPUBLIC_BLOB.
const RSA1: [u8; 4] = *b"RSA1";
/// Largest RSA modulus accepted from a peer, in bits (verification cost grows with it).
pub const MAX_RSA_BITS: usize = 8192;
/// Smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 1024;

/// Which bytes HASH mode feeds to the HMAC. MS-WDSMT §2.2.2.1 can be read either way; the
/// switch stays until a capture from a real server decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacInput {
    /// HMAC(key, covered bytes).
    Covered,
    /// HMAC(key, hash(covered bytes)).
    DigestOfCovered,
}

/// The reading used.
pub const HMAC_INPUT: HmacInput = HmacInput::Covered;

/// What was wrong with a key blob or security parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{blob} is {len} bytes, too short for its header")]
    Truncated { blob: &'static str, len: usize },
    #[error(
        "{blob} has blob type 0x{found:02x} version {version}, expected type 0x{expected:02x} version 2"
    )]
    WrongType {
        blob: &'static str,
        found: u8,
        version: u8,
        expected: u8,
    },
    #[error("{blob} declares {declared} key bytes but carries {actual}")]
    Length {
        blob: &'static str,
        declared: usize,
        actual: usize,
    },
    #[error(
        "{blob} holds a {bits}-bit RSA key; {MIN_RSA_BITS} to {MAX_RSA_BITS} bits are supported"
    )]
    RsaSize { blob: &'static str, bits: usize },
    #[error("{blob} does not hold a usable RSA public key")]
    Rsa { blob: &'static str },
    #[error("hash algorithm 0x{0:08X} is not supported (SHA-1 0x8004 and SHA-256 0x800C are)")]
    HashAlg(u32),
    #[error("SecMode 0x{0:08X} names a security mode that does not exist")]
    Mode(u32),
    #[error("security mode {mode:?} needs a {key}, which the reply does not carry")]
    MissingKey {
        mode: SecurityType,
        key: &'static str,
    },
    #[error("the HASH key is empty")]
    EmptyKey,
}

/// `SecMode` (MS-WDSMSI 2.2.1): the client's mode in bits 0–15, the server's in bits 16–31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecModes {
    /// What the client puts on the packets it sends.
    pub client: SecurityType,
    /// What the server puts on the packets it sends.
    pub server: SecurityType,
}

impl SecModes {
    /// Both sides checksum: UDP-initiated and pre-OS sessions.
    pub const CHECKSUM: SecModes = SecModes {
        client: SecurityType::Checksum,
        server: SecurityType::Checksum,
    };

    pub fn from_u32(value: u32) -> Result<SecModes, KeyError> {
        let half = |v: u32| SecurityType::from_u8(v as u8).filter(|_| v <= 3);
        match (half(value & 0xFFFF), half(value >> 16)) {
            (Some(client), Some(server)) => Ok(SecModes { client, server }),
            _ => Err(KeyError::Mode(value)),
        }
    }

    pub fn to_u32(self) -> u32 {
        ((self.server as u32) << 16) | self.client as u32
    }
}

/// A CryptoAPI PLAINTEXTKEYBLOB: `08 02 00 00 | aiKeyAlg u32 LE | key length u32 LE | key`.
#[derive(Clone, PartialEq, Eq)]
pub struct SymKey {
    pub alg: u32,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for SymKey {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SymKey {{ alg: 0x{:04x}, {} bytes }}",
            self.alg,
            self.key.len()
        )
    }
}

impl SymKey {
    /// Decodes the blob; the BLOBHEADER's reserved WORD (bytes 2..4) is not checked, and
    /// [`SymKey::encode`] writes it as zero.
    pub fn decode(blob: &[u8]) -> Result<SymKey, KeyError> {
        const NAME: &str = "SymKey";
        if blob.len() < 12 {
            return Err(KeyError::Truncated {
                blob: NAME,
                len: blob.len(),
            });
        }
        if blob[0] != PLAINTEXTKEYBLOB || blob[1] != CUR_BLOB_VERSION {
            return Err(KeyError::WrongType {
                blob: NAME,
                found: blob[0],
                version: blob[1],
                expected: PLAINTEXTKEYBLOB,
            });
        }
        let alg = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]);
        let declared = u32::from_le_bytes([blob[8], blob[9], blob[10], blob[11]]) as usize;
        let key = &blob[12..];
        if declared != key.len() {
            return Err(KeyError::Length {
                blob: NAME,
                declared,
                actual: key.len(),
            });
        }
        if key.is_empty() {
            return Err(KeyError::EmptyKey);
        }
        Ok(SymKey {
            alg,
            key: key.to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PLAINTEXTKEYBLOB, CUR_BLOB_VERSION, 0, 0];
        out.extend_from_slice(&self.alg.to_le_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.key);
        out
    }
}

/// Decodes `SignKey`: a CryptoAPI PUBLICKEYBLOB (`06 02 00 00 | aiKeyAlg | "RSA1" | bitlen |
/// pubexp | modulus little-endian`) or a CNG BCRYPT_RSAPUBLIC_BLOB (`"RSA1" | BitLength |
/// cbPublicExp | cbModulus | cbPrime1 | cbPrime2 | exponent | modulus`, big-endian numbers).
pub fn decode_sign_key(blob: &[u8]) -> Result<RsaPublicKey, KeyError> {
    const NAME: &str = "SignKey";
    let u32_at = |at: usize| -> Option<u32> {
        blob.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let truncated = KeyError::Truncated {
        blob: NAME,
        len: blob.len(),
    };
    let (exponent, modulus) = if blob.get(..4) == Some(&RSA1[..]) {
        let header = (u32_at(4), u32_at(8), u32_at(12));
        let (Some(bits), Some(exp_len), Some(mod_len)) = header else {
            return Err(truncated);
        };
        let (exp_len, mod_len) = (exp_len as usize, mod_len as usize);
        check_rsa_bits(NAME, bits as usize)?;
        let body = &blob[24.min(blob.len())..];
        if blob.len() < 24 || exp_len > 8 || body.len() < exp_len + mod_len {
            return Err(KeyError::Length {
                blob: NAME,
                declared: exp_len + mod_len,
                actual: body.len(),
            });
        }
        (
            BigUint::from_bytes_be(&body[..exp_len]),
            BigUint::from_bytes_be(&body[exp_len..exp_len + mod_len]),
        )
    } else {
        if blob.len() < 20 {
            return Err(truncated);
        }
        if blob[0] != PUBLICKEYBLOB || blob[1] != CUR_BLOB_VERSION || blob[8..12] != RSA1 {
            return Err(KeyError::WrongType {
                blob: NAME,
                found: blob[0],
                version: blob[1],
                expected: PUBLICKEYBLOB,
            });
        }
        let bits = u32_at(12).unwrap_or(0) as usize;
        check_rsa_bits(NAME, bits)?;
        let mod_len = bits.div_ceil(8);
        let body = &blob[20..];
        if body.len() < mod_len {
            return Err(KeyError::Length {
                blob: NAME,
                declared: mod_len,
                actual: body.len(),
            });
        }
        (
            BigUint::from(u32_at(16).unwrap_or(0)),
            BigUint::from_bytes_le(&body[..mod_len]),
        )
    };
    RsaPublicKey::new_with_max_size(modulus, exponent, MAX_RSA_BITS)
        .map_err(|_| KeyError::Rsa { blob: NAME })
}

fn check_rsa_bits(blob: &'static str, bits: usize) -> Result<(), KeyError> {
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::RsaSize { blob, bits })
    }
}

/// Encodes an RSA public key as a CryptoAPI PUBLICKEYBLOB (what a Windows server sends).
pub fn encode_sign_key(key: &RsaPublicKey) -> Vec<u8> {
    let bits = key.n().bits();
    let mut out = vec![PUBLICKEYBLOB, CUR_BLOB_VERSION, 0, 0];
    out.extend_from_slice(&alg::CALG_RSA_SIGN.to_le_bytes());
    out.extend_from_slice(&RSA1);
    out.extend_from_slice(&(bits as u32).to_le_bytes());
    // PUBLICKEYBLOB holds a 32-bit exponent; keys made here use 65537.
    let exponent = key.e().to_bytes_le();
    let exponent = exponent
        .iter()
        .take(4)
        .rev()
        .fold(0u32, |e, &b| (e << 8) | u32::from(b));
    out.extend_from_slice(&exponent.to_le_bytes());
    let mut modulus = key.n().to_bytes_le();
    modulus.resize(bits.div_ceil(8), 0);
    out.extend_from_slice(&modulus);
    out
}

/// The hash of `HashAlgId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha256,
}

impl HashAlg {
    pub fn from_alg_id(id: u32) -> Result<HashAlg, KeyError> {
        match id {
            alg::CALG_SHA1 => Ok(HashAlg::Sha1),
            alg::CALG_SHA_256 => Ok(HashAlg::Sha256),
            other => Err(KeyError::HashAlg(other)),
        }
    }

    pub fn alg_id(self) -> u32 {
        match self {
            HashAlg::Sha1 => alg::CALG_SHA1,
            HashAlg::Sha256 => alg::CALG_SHA_256,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => Sha1::digest(bytes).to_vec(),
            HashAlg::Sha256 => Sha256::digest(bytes).to_vec(),
        }
    }

    fn pkcs1(self) -> Pkcs1v15Sign {
        match self {
            HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        }
    }
}

/// The HASH-mode key shared by server and client.
#[derive(Clone)]
pub struct HmacKey {
    key: Vec<u8>,
    alg: HashAlg,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacKey {{ {:?}, {} bytes }}", self.alg, self.key.len())
    }
}

impl HmacKey {
    pub fn new(key: &[u8], alg: HashAlg) -> Result<HmacKey, KeyError> {
        if key.is_empty() {
            return Err(KeyError::EmptyKey);
        }
        Ok(HmacKey {
            key: key.to_vec(),
            alg,
        })
    }

    pub fn mac_len(&self) -> usize {
        match self.alg {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }

    fn mac(&self, covered: &[u8], input: HmacInput) -> Vec<u8> {
        let digest;
        let message = match input {
            HmacInput::Covered => covered,
            HmacInput::DigestOfCovered => {
                digest = self.alg.digest(covered);
                &digest
            }
        };
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match self.alg {
            HashAlg::Sha1 => Hmac::<Sha1>::new_from_slice(&self.key)
                .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
            HashAlg::Sha256 => Hmac::<Sha256>::new_from_slice(&self.key)
                .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
        }
        .unwrap_or_default()
    }

    /// The HMAC of `covered`, as [`HMAC_INPUT`] reads HASH mode.
    pub fn compute(&self, covered: &[u8]) -> Vec<u8> {
        self.mac(covered, HMAC_INPUT)
    }

    fn verify_with(&self, covered: &[u8], mac: &[u8], input: HmacInput) -> bool {
        let expected = self.mac(covered, input);
        // Constant time: a forger must not learn how many leading bytes were right.
        expected.len() == mac.len()
            && expected
                .iter()
                .zip(mac)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    pub fn verify(&self, covered: &[u8], mac: &[u8]) -> bool {
        self.verify_with(covered, mac, HMAC_INPUT)
    }
}

/// The server's SIGN-mode key pair.
pub struct SigningKey {
    key: RsaPrivateKey,
    alg: HashAlg,
    public: RsaPublicKey,
}

impl SigningKey {
    pub fn new(key: RsaPrivateKey, alg: HashAlg) -> SigningKey {
        let public = key.to_public_key();
        SigningKey { key, alg, public }
    }

    /// A fresh key pair of `bits` bits from `rng` (slow: about a second for 2048 bits).
    pub fn generate(
        rng: &mut dyn rand_core::CryptoRngCore,
        bits: usize,
        alg: HashAlg,
    ) -> Result<SigningKey, KeyError> {
        check_rsa_bits("signing key", bits)?;
        let key = RsaPrivateKey::new(rng, bits).map_err(|_| KeyError::Rsa {
            blob: "signing key",
        })?;
        Ok(SigningKey::new(key, alg))
    }

    pub fn public(&self) -> &RsaPublicKey {
        &self.public
    }

    pub fn signature_len(&self) -> usize {
        self.public.size()
    }

    /// The little-endian PKCS#1 v1.5 signature of `covered`'s digest. The signature itself is
    /// deterministic; the random numbers only blind the private-key operation against timing.
    pub fn sign(&self, covered: &[u8]) -> Vec<u8> {
        let digest = self.alg.digest(covered);
        let mut signature = self
            .key
            .sign_with_rng(&mut rand_core::OsRng, self.alg.pkcs1(), &digest)
            .unwrap_or_else(|_| vec![0; self.signature_len()]);
        signature.reverse();
        signature
    }
}

/// The client's copy of the server's SIGN-mode public key.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key: RsaPublicKey,
    alg: HashAlg,
}

impl VerifyingKey {
    pub fn new(key: RsaPublicKey, alg: HashAlg) -> VerifyingKey {
        VerifyingKey { key, alg }
    }

    /// Whether `signature` (little-endian as CryptoAPI emits it, or big-endian) signs
    /// `covered`.
    pub fn verify(&self, covered: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.key.size() {
            return false;
        }
        let digest = self.alg.digest(covered);
        let mut reversed = signature.to_vec();
        reversed.reverse();
        self.key
            .verify(self.alg.pkcs1(), &digest, &reversed)
            .is_ok()
            || self
                .key
                .verify(self.alg.pkcs1(), &digest, signature)
                .is_ok()
    }
}

/// What a side puts on the packets it sends.
#[derive(Clone)]
pub enum Protect {
    None,
    Checksum,
    Hash(HmacKey),
    Sign(Arc<SigningKey>),
}

impl std::fmt::Debug for Protect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protect::{:?}", self.kind())
    }
}

impl Protect {
    pub fn kind(&self) -> SecurityType {
        match self {
            Protect::None => SecurityType::None,
            Protect::Checksum => SecurityType::Checksum,
            Protect::Hash(_) => SecurityType::Hash,
            Protect::Sign(_) => SecurityType::Sign,
        }
    }

    /// SecurityDataLen.
    pub fn data_len(&self) -> usize {
        match self {
            Protect::None => 0,
            Protect::Checksum => 4,
            Protect::Hash(key) => key.mac_len(),
            Protect::Sign(key) => key.signature_len(),
        }
    }

    /// Writes the security data for `covered` into `data` (`data_len` bytes).
    pub fn fill(&self, covered: &[u8], data: &mut [u8]) {
        match self {
            Protect::None => {}
            Protect::Checksum => data.copy_from_slice(&super::mt::checksum(covered).to_be_bytes()),
            Protect::Hash(key) => data.copy_from_slice(&key.compute(covered)),
            Protect::Sign(key) => data.copy_from_slice(&key.sign(covered)),
        }
    }
}

/// What a side expects on the packets it receives.
#[derive(Debug, Clone)]
pub enum Check {
    None,
    Checksum,
    Hash(HmacKey),
    Sign(VerifyingKey),
}

impl Check {
    pub fn kind(&self) -> SecurityType {
        match self {
            Check::None => SecurityType::None,
            Check::Checksum => SecurityType::Checksum,
            Check::Hash(_) => SecurityType::Hash,
            Check::Sign(_) => SecurityType::Sign,
        }
    }

    /// Whether a decoded packet's security header is the expected kind and its data proves
    /// `covered` (the bytes after the security header). The decoder already verified a
    /// checksum.
    pub fn accepts(&self, security: &Security<'_>, covered: &[u8]) -> bool {
        match (self, security) {
            (Check::None, Security::None) | (Check::Checksum, Security::Checksum) => true,
            (Check::Hash(key), Security::Hash(mac)) => key.verify(covered, mac),
            (Check::Sign(key), Security::Sign(signature)) => key.verify(covered, signature),
            _ => false,
        }
    }
}

/// The protection both sides of a session use, as the initiation reply describes it.
#[derive(Debug, Clone)]
pub struct SessionSecurity {
    pub modes: SecModes,
    /// HASH key (either side in HASH mode, or the server in SIGN mode).
    pub hmac: Option<HmacKey>,
    /// The server's public key (server SIGN mode).
    pub sign: Option<VerifyingKey>,
}

impl SessionSecurity {
    /// UDP-initiated and pre-OS sessions: the checksum both ways.
    pub fn checksum() -> SessionSecurity {
        SessionSecurity {
            modes: SecModes::CHECKSUM,
            hmac: None,
            sign: None,
        }
    }

    /// The client's view of an authenticated reply, following the MS-WDSMSI 2.2.1.1 and
    /// 2.2.1.2 flowcharts: with `SecMode` its halves decide (and the keys they need must be
    /// there); without it, `SignKey` means the server signs, `SymKey` that it hashes (and the
    /// client hashes), neither that nobody protects packets.
    pub fn from_reply(
        sec_mode: Option<u32>,
        sym_key: Option<&[u8]>,
        sign_key: Option<&[u8]>,
        hash_alg: Option<u32>,
    ) -> Result<SessionSecurity, KeyError> {
        let alg = HashAlg::from_alg_id(hash_alg.unwrap_or(alg::CALG_SHA_256))?;
        let hmac = sym_key
            .map(|blob| SymKey::decode(blob).and_then(|k| HmacKey::new(&k.key, alg)))
            .transpose()?;
        let sign = sign_key
            .map(|blob| decode_sign_key(blob).map(|k| VerifyingKey::new(k, alg)))
            .transpose()?;
        let modes = match sec_mode {
            Some(value) => SecModes::from_u32(value)?,
            None => SecModes {
                client: if hmac.is_some() {
                    SecurityType::Hash
                } else {
                    SecurityType::None
                },
                server: match (&sign, &hmac) {
                    (Some(_), _) => SecurityType::Sign,
                    (None, Some(_)) => SecurityType::Hash,
                    (None, None) => SecurityType::None,
                },
            },
        };
        let needs = |mode: SecurityType, key: &'static str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(KeyError::MissingKey { mode, key })
            }
        };
        if modes.client == SecurityType::Sign {
            // Clients have no key to sign with (the flowchart has no SIGN branch for them).
            return Err(KeyError::Mode(modes.to_u32()));
        }
        if modes.client == SecurityType::Hash {
            needs(modes.client, "SymKey", hmac.is_some())?;
        }
        match modes.server {
            SecurityType::Hash => needs(modes.server, "SymKey", hmac.is_some())?,
            SecurityType::Sign => needs(modes.server, "SignKey", sign.is_some())?,
            _ => {}
        }
        Ok(SessionSecurity { modes, hmac, sign })
    }

    /// What the client puts on its packets.
    pub fn client_protect(&self) -> Protect {
        match (self.modes.client, &self.hmac) {
            (SecurityType::Checksum, _) => Protect::Checksum,
            (SecurityType::Hash, Some(key)) => Protect::Hash(key.clone()),
            _ => Protect::None,
        }
    }

    /// What the client expects on the server's packets.
    pub fn client_check(&self) -> Check {
        match (self.modes.server, &self.hmac, &self.sign) {
            (SecurityType::Checksum, _, _) => Check::Checksum,
            (SecurityType::Hash, Some(key), _) => Check::Hash(key.clone()),
            (SecurityType::Sign, _, Some(key)) => Check::Sign(key.clone()),
            _ => Check::None,
        }
    }
}

#[cfg(test)]
mod tests;
