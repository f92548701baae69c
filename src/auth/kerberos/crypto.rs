//! RFC 3961 simplified profile with the RFC 3962 AES types: aes128-cts-hmac-sha1-96 (etype
//! 17) and aes256-cts-hmac-sha1-96 (etype 18). n-fold, DK, PBKDF2 string-to-key, AES-CBC
//! with ciphertext stealing, HMAC-SHA1-96. The block cipher is RustCrypto's `aes`; the rest
//! is here (a few dozen lines each, no further crates).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use zeroize::{Zeroize, Zeroizing};

use crate::auth::crypto::ct_eq;

/// Encryption types (RFC 3962 7).
pub const ETYPE_AES128_CTS_HMAC_SHA1_96: i32 = 17;
pub const ETYPE_AES256_CTS_HMAC_SHA1_96: i32 = 18;
/// Checksum types (RFC 3962 7).
pub const CKSUM_HMAC_SHA1_96_AES128: i32 = 15;
pub const CKSUM_HMAC_SHA1_96_AES256: i32 = 16;
/// Default PBKDF2 iteration count (RFC 3962 4).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// We refuse s2kparams asking for more: a hostile KDC reply must not cost minutes of CPU.
pub const MAX_ITERATIONS: u32 = 1 << 20;

const BLOCK: usize = 16;
/// HMAC-SHA1 truncated to 96 bits.
pub const MAC_LEN: usize = 12;
/// The confounder is one block.
pub const CONFOUNDER_LEN: usize = BLOCK;

/// Why a decryption or checksum failed. Carries no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption type {0} is not supported (only aes128/aes256-cts-hmac-sha1-96)")]
    UnsupportedEtype(i32),
    #[error("ciphertext is too short")]
    TooShort,
    #[error("integrity check failed (wrong key, or the message was altered)")]
    Integrity,
    #[error("key has the wrong length for its type")]
    KeyLength,
}

/// The two encryption types we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Etype {
    Aes128,
    Aes256,
}

impl Etype {
    pub fn from_number(n: i32) -> Result<Etype, CryptoError> {
        match n {
            ETYPE_AES128_CTS_HMAC_SHA1_96 => Ok(Etype::Aes128),
            ETYPE_AES256_CTS_HMAC_SHA1_96 => Ok(Etype::Aes256),
            other => Err(CryptoError::UnsupportedEtype(other)),
        }
    }

    pub fn number(self) -> i32 {
        match self {
            Etype::Aes128 => ETYPE_AES128_CTS_HMAC_SHA1_96,
            Etype::Aes256 => ETYPE_AES256_CTS_HMAC_SHA1_96,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Etype::Aes128 => 16,
            Etype::Aes256 => 32,
        }
    }

    /// The keyed checksum that goes with this encryption type.
    pub fn checksum_type(self) -> i32 {
        match self {
            Etype::Aes128 => CKSUM_HMAC_SHA1_96_AES128,
            Etype::Aes256 => CKSUM_HMAC_SHA1_96_AES256,
        }
    }
}

/// A protocol key: its type and bytes, wiped on drop. Debug never shows the bytes.
#[derive(Clone)]
pub struct Key {
    etype: Etype,
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("etype", &self.etype)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub fn new(etype: Etype, bytes: &[u8]) -> Result<Key, CryptoError> {
        if bytes.len() != etype.key_len() {
            return Err(CryptoError::KeyLength);
        }
        Ok(Key {
            etype,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// A key given as (etype number, bytes), as messages and files carry them.
    pub fn from_parts(etype: i32, bytes: &[u8]) -> Result<Key, CryptoError> {
        Key::new(Etype::from_number(etype)?, bytes)
    }

    /// A fresh random key (random-to-key is the identity for AES).
    pub fn random(etype: Etype, rng: &mut dyn RngCore) -> Key {
        let mut bytes = Zeroizing::new(vec![0u8; etype.key_len()]);
        rng.fill_bytes(&mut bytes);
        Key { etype, bytes }
    }

    pub fn etype(&self) -> Etype {
        self.etype
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// AES with either key size.
enum Aes {
    A128(Box<aes::Aes128>),
    A256(Box<aes::Aes256>),
}

impl Aes {
    fn new(key: &[u8]) -> Aes {
        match key.len() {
            16 => Aes::A128(Box::new(aes::Aes128::new(GenericArray::from_slice(key)))),
            32 => Aes::A256(Box::new(aes::Aes256::new(GenericArray::from_slice(key)))),
            n => unreachable!("AES key of {n} bytes"),
        }
    }

    fn encrypt(&self, block: &mut [u8; BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.encrypt_block(b),
            Aes::A256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.decrypt_block(b),
            Aes::A256(c) => c.decrypt_block(b),
        }
    }
}

/// n-fold (RFC 3961 5.1): `input` stretched or shrunk to `out_len` bytes. Copies of the
/// input, each rotated 13 bits right of the one before, fill lcm(len, out_len) bytes, which
/// are added as big-endian numbers of `out_len` bytes with end-around carry.
pub fn n_fold(input: &[u8], out_len: usize) -> Vec<u8> {
    assert!(!input.is_empty() && out_len > 0);
    let in_len = input.len();
    let lcm = in_len / gcd(in_len, out_len) * out_len;
    let in_bits = in_len * 8;
    // Byte `i` of the stretched string: copy `i / in_len` is the input rotated right by
    // 13 * copy bits.
    let byte_at = |i: usize| -> u8 {
        let copy = i / in_len;
        let pos = i % in_len;
        let rot = (13 * copy) % in_bits;
        // Bit b of the rotated copy is bit (b - rot) of the input.
        let start = (pos * 8 + in_bits - rot) % in_bits;
        let mut v = 0u8;
        for k in 0..8 {
            let bit = (start + k) % in_bits;
            let set = (input[bit / 8] >> (7 - bit % 8)) & 1;
            v = (v << 1) | set;
        }
        v
    };
    let mut sum = vec![0u32; out_len];
    for chunk in 0..lcm / out_len {
        for (j, s) in sum.iter_mut().enumerate() {
            *s += u32::from(byte_at(chunk * out_len + j));
        }
    }
    // Propagate carries from the last byte to the first, wrapping around until none remain.
    loop {
        let mut carry = 0u32;
        for s in sum.iter_mut().rev() {
            let v = *s + carry;
            *s = v & 0xff;
            carry = v >> 8;
        }
        if carry == 0 {
            break;
        }
        let last = out_len - 1;
        sum[last] += carry;
    }
    sum.into_iter().map(|v| v as u8).collect()
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// DR(key, constant) then random-to-key (the identity for AES): DK of RFC 3961 5.1.
pub fn dk(key: &Key, constant: &[u8]) -> Key {
    let cipher = Aes::new(key.bytes());
    let mut block = [0u8; BLOCK];
    block.copy_from_slice(&n_fold(constant, BLOCK));
    let mut out = Zeroizing::new(Vec::with_capacity(key.etype.key_len()));
    while out.len() < key.etype.key_len() {
        cipher.encrypt(&mut block);
        out.extend_from_slice(&block);
    }
    out.truncate(key.etype.key_len());
    block.zeroize();
    Key {
        etype: key.etype,
        bytes: out,
    }
}

/// The derivation constant for `usage` and a purpose byte (0x99 checksum, 0xAA
/// encryption, 0x55 integrity).
fn usage_constant(usage: u32, purpose: u8) -> [u8; 5] {
    let u = usage.to_be_bytes();
    [u[0], u[1], u[2], u[3], purpose]
}

/// PBKDF2-HMAC-SHA1 (RFC 8018 5.2) into `out`.
fn pbkdf2_hmac_sha1(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let prf = <Hmac<Sha1> as Mac>::new_from_slice(password).expect("HMAC takes any key length");
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let mut m = prf.clone();
        m.update(salt);
        m.update(&(i as u32 + 1).to_be_bytes());
        let mut u: [u8; 20] = m.finalize().into_bytes().into();
        let mut t = u;
        for _ in 1..iterations {
            let mut m = prf.clone();
            m.update(&u);
            u = m.finalize().into_bytes().into();
            for (a, b) in t.iter_mut().zip(&u) {
                *a ^= b;
            }
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
        u.zeroize();
        t.zeroize();
    }
}

/// string-to-key (RFC 3962 4): DK(random-to-key(PBKDF2(password, salt, iterations)),
/// "kerberos").
pub fn string_to_key(etype: Etype, password: &[u8], salt: &[u8], iterations: u32) -> Key {
    let mut tkey = Zeroizing::new(vec![0u8; etype.key_len()]);
    pbkdf2_hmac_sha1(password, salt, iterations, &mut tkey);
    let base = Key { etype, bytes: tkey };
    dk(&base, b"kerberos")
}

/// The iteration count s2kparams encode (4 bytes, big-endian), bounded.
pub fn iterations_from_params(params: Option<&[u8]>) -> Result<u32, CryptoError> {
    match params {
        None => Ok(DEFAULT_ITERATIONS),
        Some(p) if p.len() == 4 => {
            let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            // 0 means 2^32 (RFC 3962 4): far beyond the bound, like anything else above it.
            if n == 0 || n > MAX_ITERATIONS {
                Err(CryptoError::KeyLength)
            } else {
                Ok(n)
            }
        }
        Some(_) => Err(CryptoError::KeyLength),
    }
}

/// AES-CBC with ciphertext stealing and a zero IV, as RFC 3962 5 uses it: the last two
/// blocks are always swapped, and one block is plain AES. `data` is at least one block.
pub fn cts_encrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
    assert!(data.len() >= BLOCK, "CTS needs at least one block");
    let cipher = Aes::new(key);
    let n = data.len();
    let blocks = n.div_ceil(BLOCK);
    let mut out = Vec::with_capacity(n);
    let mut prev = [0u8; BLOCK];
    let mut cts: Vec<[u8; BLOCK]> = Vec::with_capacity(blocks);
    for b in 0..blocks {
        let chunk = &data[b * BLOCK..n.min((b + 1) * BLOCK)];
        let mut block = [0u8; BLOCK];
        block[..chunk.len()].copy_from_slice(chunk);
        for (x, p) in block.iter_mut().zip(&prev) {
            *x ^= p;
        }
        cipher.encrypt(&mut block);
        prev = block;
        cts.push(block);
    }
    if blocks == 1 {
        out.extend_from_slice(&cts[0]);
        return out;
    }
    let last_len = n - (blocks - 1) * BLOCK;
    for c in &cts[..blocks - 2] {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&cts[blocks - 1]);
    out.extend_from_slice(&cts[blocks - 2][..last_len]);
    out
}

/// The inverse of [`cts_encrypt`].
pub fn cts_decrypt(key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if data.len() < BLOCK {
        return Err(CryptoError::TooShort);
    }
    let cipher = Aes::new(key);
    let n = data.len();
    let blocks = n.div_ceil(BLOCK);
    let mut out = Zeroizing::new(vec![0u8; n]);
    let block_at = |b: usize| -> [u8; BLOCK] {
        let mut x = [0u8; BLOCK];
        x.copy_from_slice(&data[b * BLOCK..(b + 1) * BLOCK]);
        x
    };
    if blocks == 1 {
        let mut x = block_at(0);
        cipher.decrypt(&mut x);
        out.copy_from_slice(&x);
        x.zeroize();
        return Ok(out);
    }
    let last_len = n - (blocks - 1) * BLOCK;
    let mut prev = [0u8; BLOCK];
    for b in 0..blocks - 2 {
        let c = block_at(b);
        let mut x = c;
        cipher.decrypt(&mut x);
        for (o, (x, p)) in out[b * BLOCK..(b + 1) * BLOCK]
            .iter_mut()
            .zip(x.iter().zip(&prev))
        {
            *o = x ^ p;
        }
        prev = c;
    }
    // The full block in position blocks-2 is the real last block's ciphertext; the partial
    // one after it is the head of the block before.
    let mut d = block_at(blocks - 2);
    cipher.decrypt(&mut d);
    let tail = &data[(blocks - 1) * BLOCK..];
    let mut c_prev = [0u8; BLOCK];
    c_prev[..last_len].copy_from_slice(tail);
    c_prev[last_len..].copy_from_slice(&d[last_len..]);
    let last_start = (blocks - 1) * BLOCK;
    for i in 0..last_len {
        out[last_start + i] = d[i] ^ c_prev[i];
    }
    let mut x = c_prev;
    cipher.decrypt(&mut x);
    for (i, o) in out[last_start - BLOCK..last_start].iter_mut().enumerate() {
        *o = x[i] ^ prev[i];
    }
    d.zeroize();
    x.zeroize();
    Ok(out)
}

/// HMAC-SHA1 of the concatenated `parts`, truncated to 96 bits.
pub fn hmac_sha1_96(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    let full = m.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The encryption and integrity keys for one key usage (RFC 3961 5.3), derived once.
#[derive(Clone)]
pub struct UsageKeys {
    ke: Key,
    ki: Key,
}

impl UsageKeys {
    pub fn new(key: &Key, usage: u32) -> UsageKeys {
        UsageKeys {
            ke: dk(key, &usage_constant(usage, 0xaa)),
            ki: dk(key, &usage_constant(usage, 0x55)),
        }
    }

    /// CTS encryption of `plain` (which starts with the confounder) under Ke.
    pub fn encrypt_raw(&self, plain: &[u8]) -> Vec<u8> {
        cts_encrypt(self.ke.bytes(), plain)
    }

    pub fn decrypt_raw(&self, cipher: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        cts_decrypt(self.ke.bytes(), cipher)
    }

    /// HMAC-SHA1-96 under Ki.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        hmac_sha1_96(self.ki.bytes(), parts)
    }
}

/// encrypt(key, usage, plaintext) of the simplified profile: E(Ke, conf | plain) |
/// H(Ki, conf | plain)[..12].
pub fn encrypt(
    key: &Key,
    usage: u32,
    plaintext: &[u8],
    confounder: &[u8; CONFOUNDER_LEN],
) -> Vec<u8> {
    let keys = UsageKeys::new(key, usage);
    let mut plain = Zeroizing::new(Vec::with_capacity(CONFOUNDER_LEN + plaintext.len()));
    plain.extend_from_slice(confounder);
    plain.extend_from_slice(plaintext);
    let mut out = keys.encrypt_raw(&plain);
    out.extend_from_slice(&keys.mac(&[&plain]));
    out
}

/// [`encrypt`] with a confounder drawn from `rng`.
pub fn encrypt_random(key: &Key, usage: u32, plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    let mut confounder = [0u8; CONFOUNDER_LEN];
    rng.fill_bytes(&mut confounder);
    encrypt(key, usage, plaintext, &confounder)
}

/// decrypt: checks the HMAC, returns the plaintext without the confounder.
pub fn decrypt(
    key: &Key,
    usage: u32,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if ciphertext.len() < CONFOUNDER_LEN + MAC_LEN {
        return Err(CryptoError::TooShort);
    }
    let keys = UsageKeys::new(key, usage);
    let (c, h) = ciphertext.split_at(ciphertext.len() - MAC_LEN);
    let plain = keys.decrypt_raw(c)?;
    if !ct_eq(&keys.mac(&[&plain]), h) {
        return Err(CryptoError::Integrity);
    }
    Ok(Zeroizing::new(plain[CONFOUNDER_LEN..].to_vec()))
}

/// get_mic (RFC 3961 5.4): HMAC-SHA1-96 under Kc = DK(key, usage | 0x99).
pub fn checksum(key: &Key, usage: u32, parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let kc = dk(key, &usage_constant(usage, 0x99));
    hmac_sha1_96(kc.bytes(), parts)
}

/// verify_mic, in constant time.
pub fn verify_checksum(key: &Key, usage: u32, parts: &[&[u8]], mac: &[u8]) -> bool {
    ct_eq(&checksum(key, usage, parts), mac)
}

#[cfg(test)]
mod tests;
