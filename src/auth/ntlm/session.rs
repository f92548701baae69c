//! NTLM session security (MS-NLMP 3.4) for connection-oriented use: one RC4 state and one
//! sequence number per direction, for the life of the connection.

use super::keys::{DirectionKeys, direction_keys};
use crate::auth::crypto::{Key16, Rc4, ct_eq, hmac_md5};
use crate::rpc::security::{AuthError, Protection};

pub const SIGNATURE_LEN: usize = 16;

/// One direction's state.
struct Direction {
    sign_key: Key16,
    seal_key: Key16,
    rc4: Rc4,
    seq: u32,
}

impl Direction {
    fn new(keys: DirectionKeys) -> Direction {
        Direction {
            rc4: Rc4::new(&keys.seal[..]),
            sign_key: keys.sign,
            seal_key: keys.seal,
            seq: 0,
        }
    }

    /// HMAC_MD5(SignKey, seq ‖ parts)[0..8], the unencrypted checksum.
    fn checksum(&self, parts: &[&[u8]]) -> [u8; 8] {
        let seq = self.seq.to_le_bytes();
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&seq);
        all.extend_from_slice(parts);
        let mac = hmac_md5(&self.sign_key[..], &all);
        let mut c = [0u8; 8];
        c.copy_from_slice(&mac[..8]);
        c
    }

    /// Finishes a signature: RC4 the checksum (KEY_EXCH), append seq, advance seq.
    fn finish(&mut self, mut checksum: [u8; 8]) -> [u8; SIGNATURE_LEN] {
        self.rc4.apply(&mut checksum);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&self.seq.to_le_bytes());
        self.seq = self.seq.wrapping_add(1);
        sig
    }
}

/// An established NTLM context's message protection.
pub struct NtlmSession {
    send: Direction,
    recv: Direction,
    /// Set after a failed verification: the RC4 streams are then out of step for good.
    broken: bool,
}

impl NtlmSession {
    /// `client` says which end we are: it picks which direction keys send and receive.
    pub fn new(exported_session_key: &[u8; 16], client: bool) -> NtlmSession {
        let (c2s, s2c) = direction_keys(exported_session_key);
        let (send, recv) = if client { (c2s, s2c) } else { (s2c, c2s) };
        NtlmSession {
            send: Direction::new(send),
            recv: Direction::new(recv),
            broken: false,
        }
    }

    /// GSS_GetMIC over `parts` (used for SPNEGO's mechListMIC).
    pub fn sign(&mut self, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        let c = self.send.checksum(parts);
        self.send.finish(c)
    }

    /// GSS_VerifyMIC over `parts`.
    pub fn verify(&mut self, parts: &[&[u8]], signature: &[u8]) -> Result<(), AuthError> {
        let c = self.recv.checksum(parts);
        self.check(c, signature)
    }

    /// Re-keys the sending RC4 stream from its seal key, sequence number untouched. SPNEGO
    /// does this after the mechListMIC (MS-SPNG 3.2.5.1 / 3.3.5.1; pyspnego and Samba agree
    /// the sequence number keeps counting).
    pub fn reset_send_rc4(&mut self) {
        self.send.rc4 = Rc4::new(&self.send.seal_key[..]);
    }

    /// As [`Self::reset_send_rc4`], for the receiving stream.
    pub fn reset_recv_rc4(&mut self) {
        self.recv.rc4 = Rc4::new(&self.recv.seal_key[..]);
    }

    fn check(&mut self, checksum: [u8; 8], signature: &[u8]) -> Result<(), AuthError> {
        if self.broken {
            return Err(AuthError::BadSignature);
        }
        // The RC4 stream must advance whatever arrives, so compute before judging.
        let expected = self.recv.finish(checksum);
        if signature.len() != SIGNATURE_LEN || !ct_eq(&expected, signature) {
            self.broken = true;
            return Err(AuthError::BadSignature);
        }
        Ok(())
    }
}

impl Protection for NtlmSession {
    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
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
        // Checksum over the plaintext, then the body, then the checksum through the stream.
        let c = self.send.checksum(&[header, body, trailer]);
        self.send.rc4.apply(body);
        Ok(self.send.finish(c).to_vec())
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
        self.recv.rc4.apply(body);
        let c = self.recv.checksum(&[header, body, trailer]);
        self.check(c, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-NLMP 4.2.4.4: GSS_WrapEx of "Plaintext" with RandomSessionKey 0x55 * 16.
    #[test]
    fn gss_wrap_ex_known_answer() {
        let mut s = NtlmSession::new(&[0x55; 16], true);
        assert_eq!(
            *s.send.seal_key,
            [
                0x59, 0xf6, 0x00, 0x97, 0x3c, 0xc4, 0x96, 0x0a, 0x25, 0x48, 0x0a, 0x7c, 0x19, 0x6e,
                0x4c, 0x58
            ]
        );
        assert_eq!(
            *s.send.sign_key,
            [
                0x47, 0x88, 0xdc, 0x86, 0x1b, 0x47, 0x82, 0xf3, 0x5d, 0x43, 0xfd, 0x98, 0xfe, 0x1a,
                0x2d, 0x39
            ]
        );
        let plain = crate::auth::crypto::utf16le("Plaintext");
        assert_eq!(
            s.send.checksum(&[&plain]),
            [0x70, 0x35, 0x28, 0x51, 0xf2, 0x56, 0x43, 0x09]
        );
        let mut body = plain.clone();
        let sig = s.seal(&[], &mut body, &[]).unwrap();
        assert_eq!(
            body,
            [
                0x54, 0xe5, 0x01, 0x65, 0xbf, 0x19, 0x36, 0xdc, 0x99, 0x60, 0x20, 0xc1, 0x81, 0x1b,
                0x0f, 0x06, 0xfb, 0x5f
            ]
        );
        assert_eq!(
            sig,
            [
                0x01, 0x00, 0x00, 0x00, 0x7f, 0xb3, 0x8e, 0xc5, 0xc5, 0x5d, 0x49, 0x76, 0x00, 0x00,
                0x00, 0x00
            ]
        );

        // And the server end unseals it.
        let mut server = NtlmSession::new(&[0x55; 16], false);
        server.unseal(&[], &mut body, &[], &sig).unwrap();
        assert_eq!(body, plain);
    }

    #[test]
    fn tampering_breaks_the_session() {
        let mut c = NtlmSession::new(&[7; 16], true);
        let mut s = NtlmSession::new(&[7; 16], false);
        let mut body = b"stub".to_vec();
        let sig = c.seal(b"hdr", &mut body, b"trl").unwrap();
        body[0] ^= 1;
        assert_eq!(
            s.unseal(b"hdr", &mut body, b"trl", &sig),
            Err(AuthError::BadSignature)
        );
        // Out of step for good: even a good next message is refused.
        let mut body = b"stub".to_vec();
        let sig = c.seal(b"hdr", &mut body, b"trl").unwrap();
        assert_eq!(
            s.unseal(b"hdr", &mut body, b"trl", &sig),
            Err(AuthError::BadSignature)
        );
    }
}
