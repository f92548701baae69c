//! NTLMv2 key derivation (MS-NLMP 3.3.2, 3.4.5). Every intermediate is a [`Key16`], wiped
//! when dropped.

use crate::auth::crypto::{Key16, hmac_md5, md4, md5, utf16le};

/// NT hash, MD4(UTF-16LE(password)): what an account store keeps.
pub fn nt_hash(password: &str) -> Key16 {
    let pw = zeroize::Zeroizing::new(utf16le(password));
    md4(&pw)
}

/// NTOWFv2 = ResponseKeyNT = HMAC_MD5(NT hash, UTF-16LE(UPPER(user) ‖ domain)).
pub fn response_key_nt(nt_hash: &[u8; 16], user: &str, domain: &str) -> Key16 {
    let id = utf16le(&(user.to_uppercase() + domain));
    hmac_md5(nt_hash, &[&id])
}

/// NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ blob).
pub fn nt_proof_str(response_key: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> Key16 {
    hmac_md5(response_key, &[server_challenge, blob])
}

/// SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr); for NTLMv2 it is also the
/// KeyExchangeKey (3.4.5.1).
pub fn session_base_key(response_key: &[u8; 16], nt_proof_str: &[u8]) -> Key16 {
    hmac_md5(response_key, &[nt_proof_str])
}

/// LMv2 response = HMAC_MD5(ResponseKeyLM, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge.
pub fn lmv2_response(response_key: &[u8; 16], server_challenge: &[u8; 8], cc: &[u8; 8]) -> Vec<u8> {
    let mut v = hmac_md5(response_key, &[server_challenge, cc]).to_vec();
    v.extend_from_slice(cc);
    v
}

/// The NTLMv2_CLIENT_CHALLENGE ("temp"), with the 4 trailing zero bytes of the spec's
/// pseudo-code that Windows sends.
pub fn client_blob(timestamp: u64, client_challenge: &[u8; 8], av_pairs: &[u8]) -> Vec<u8> {
    let mut v = vec![1, 1, 0, 0, 0, 0, 0, 0];
    v.extend_from_slice(&timestamp.to_le_bytes());
    v.extend_from_slice(client_challenge);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(av_pairs);
    v.extend_from_slice(&[0; 4]);
    v
}

/// MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE-with-MIC-zeroed).
pub fn mic(exported: &[u8; 16], negotiate: &[u8], challenge: &[u8], authenticate: &[u8]) -> Key16 {
    hmac_md5(exported, &[negotiate, challenge, authenticate])
}

const CLIENT_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// Sign and seal keys of one direction (128-bit, extended session security).
pub struct DirectionKeys {
    pub sign: Key16,
    pub seal: Key16,
}

/// Keys for client-to-server and server-to-client traffic.
pub fn direction_keys(exported: &[u8; 16]) -> (DirectionKeys, DirectionKeys) {
    (
        DirectionKeys {
            sign: md5(&[exported, CLIENT_SIGN]),
            seal: md5(&[exported, CLIENT_SEAL]),
        },
        DirectionKeys {
            sign: md5(&[exported, SERVER_SIGN]),
            seal: md5(&[exported, SERVER_SEAL]),
        },
    )
}
