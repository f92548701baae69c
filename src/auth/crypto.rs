//! The few primitives NTLM needs: MD4, MD5, HMAC-MD5 (RustCrypto), RC4 (ours: 30 lines
//! are cheaper than another crate and its cipher-trait dependencies), and a constant-time
//! comparison.

use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use zeroize::{Zeroize, Zeroizing};

/// A 16-byte key or hash that is wiped when dropped.
pub(crate) type Key16 = Zeroizing<[u8; 16]>;

pub(crate) fn md4(data: &[u8]) -> Key16 {
    Zeroizing::new(Md4::digest(data).into())
}

pub(crate) fn md5(parts: &[&[u8]]) -> Key16 {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    Zeroizing::new(h.finalize().into())
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> Key16 {
    // HMAC accepts keys of any length, so this never fails.
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    Zeroizing::new(m.finalize().into_bytes().into())
}

/// Equality that takes the same time wherever the first difference is, so a peer cannot
/// learn an expected NTProofStr, MIC or signature byte by byte from our timing.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the optimiser from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

/// RC4 key stream state. NTLM keeps one per direction for a whole connection.
#[derive(Clone)]
pub(crate) struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    pub(crate) fn new(key: &[u8]) -> Rc4 {
        let mut s = [0u8; 256];
        for (n, b) in s.iter_mut().enumerate() {
            *b = n as u8;
        }
        let mut j = 0u8;
        if !key.is_empty() {
            for n in 0..256 {
                j = j.wrapping_add(s[n]).wrapping_add(key[n % key.len()]);
                s.swap(n, j as usize);
            }
        }
        Rc4 { s, i: 0, j: 0 }
    }

    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        for b in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[self.i as usize]);
            self.s.swap(self.i as usize, self.j as usize);
            let k = self.s[self.s[self.i as usize].wrapping_add(self.s[self.j as usize]) as usize];
            *b ^= k;
        }
    }
}

impl Drop for Rc4 {
    fn drop(&mut self) {
        self.s.zeroize();
        self.i.zeroize();
        self.j.zeroize();
    }
}

/// RC4K(key, data): a one-off RC4 with a fresh state (key exchange).
pub(crate) fn rc4k(key: &[u8], data: &[u8; 16]) -> Key16 {
    let mut out = Zeroizing::new(*data);
    Rc4::new(key).apply(&mut out[..]);
    out
}

/// UTF-16LE without a byte order mark, as NTLM encodes every string.
pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc4_of(key: &[u8], text: &[u8]) -> Vec<u8> {
        let mut v = text.to_vec();
        Rc4::new(key).apply(&mut v);
        v
    }

    #[test]
    fn rc4_known_answers() {
        assert_eq!(
            rc4_of(b"Key", b"Plaintext"),
            [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]
        );
        assert_eq!(rc4_of(b"Wiki", b"pedia"), [0x10, 0x21, 0xbf, 0x04, 0x20]);
        assert_eq!(
            rc4_of(b"Secret", b"Attack at dawn"),
            [
                0x45, 0xa0, 0x1f, 0x64, 0x5f, 0xc3, 0x5b, 0x38, 0x35, 0x52, 0x54, 0x4b, 0x9b, 0xf5
            ]
        );
    }

    #[test]
    fn rc4_stream_continues_across_calls() {
        let whole = rc4_of(b"Secret", b"Attack at dawn");
        let mut r = Rc4::new(b"Secret");
        let mut a = *b"Attack";
        let mut b = *b" at dawn";
        r.apply(&mut a);
        r.apply(&mut b);
        assert_eq!([&a[..], &b[..]].concat(), whole);
    }

    #[test]
    fn hash_known_answers() {
        // RFC 1320 / RFC 1321 / RFC 2202 test vectors.
        assert_eq!(
            *md4(b"abc"),
            [
                0xa4, 0x48, 0x01, 0x7a, 0xaf, 0x21, 0xd8, 0x52, 0x5f, 0xc1, 0x0a, 0xe8, 0x7a, 0xa6,
                0x72, 0x9d
            ]
        );
        assert_eq!(
            *md5(&[b"a", b"bc"]),
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
        assert_eq!(
            *hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
