#![no_main]
//! The key blobs and SecMode of an authenticated initiation reply: never panic, and a SymKey
//! that decodes re-encodes to the same bytes, except the BLOBHEADER's reserved WORD, which
//! the decoder ignores and the encoder writes as zero.

use libfuzzer_sys::fuzz_target;
use wdsmc::wire::security::{SecModes, SessionSecurity, SymKey, decode_sign_key};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = SymKey::decode(data) {
        let again = key.encode();
        assert_eq!(again[..2], data[..2]);
        assert_eq!(again[2..4], [0, 0]);
        assert_eq!(again[4..], data[4..]);
        assert_eq!(SymKey::decode(&again), Ok(key));
    }
    let _ = decode_sign_key(data);
    let (mode, rest) = data.split_at(data.len().min(4));
    let mut word = [0u8; 4];
    word[..mode.len()].copy_from_slice(mode);
    let sec_mode = u32::from_le_bytes(word);
    let _ = SecModes::from_u32(sec_mode);
    let half = rest.len() / 2;
    let _ = SessionSecurity::from_reply(
        Some(sec_mode),
        Some(&rest[..half]),
        Some(&rest[half..]),
        Some(sec_mode),
    );
});
