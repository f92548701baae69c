use super::*;

use crate::test_util::hex;

/// The SymKey of the MS-WDSMSI 4.1 example: a 3DES PLAINTEXTKEYBLOB.
const EXAMPLE_SYM_KEY: &str =
    "0802000003660000180000002F15F82AE0683EF79E6D62A70BDC519D2A3246E0FDB354E9";

#[test]
fn sec_mode_halves_are_client_low_and_server_high() {
    assert_eq!(SecModes::CHECKSUM.to_u32(), 0x0003_0003);
    let modes = SecModes::from_u32(0x0002_0001).unwrap();
    assert_eq!(modes.client, SecurityType::Hash);
    assert_eq!(modes.server, SecurityType::Sign);
    assert_eq!(modes.to_u32(), 0x0002_0001);
    assert_eq!(
        SecModes::from_u32(0x0004_0000),
        Err(KeyError::Mode(0x0004_0000))
    );
    assert_eq!(
        SecModes::from_u32(0x0000_0103),
        Err(KeyError::Mode(0x0000_0103))
    );
}

#[test]
fn the_example_sym_key_decodes_and_reencodes() {
    let blob = hex(EXAMPLE_SYM_KEY);
    let key = SymKey::decode(&blob).unwrap();
    assert_eq!(key.alg, alg::CALG_3DES);
    assert_eq!(
        key.key,
        hex("2F15F82AE0683EF79E6D62A70BDC519D2A3246E0FDB354E9")
    );
    assert_eq!(key.encode(), blob);
    assert!(
        !format!("{key:?}").contains("2F15"),
        "Debug must not show the key"
    );
    assert!(matches!(
        SymKey::decode(&blob[..20]),
        Err(KeyError::Length {
            declared: 24,
            actual: 8,
            ..
        })
    ));
    assert!(matches!(
        SymKey::decode(&blob[..5]),
        Err(KeyError::Truncated { .. })
    ));
    let mut wrong = blob.clone();
    wrong[0] = 0x06;
    assert!(matches!(
        SymKey::decode(&wrong),
        Err(KeyError::WrongType { .. })
    ));
}

/// Found by the security_decode fuzz target (tests/fuzz/regressions/crash-9fa7be89...): the
/// BLOBHEADER's reserved WORD is not checked, so a blob with it set decodes, and re-encodes with
/// it zero, as CryptoAPI writes it.
#[test]
fn a_sym_key_with_reserved_bits_set_decodes_and_reencodes_them_as_zero() {
    let mut blob = vec![
        0x08, 0x02, 0x00, 0x3a, 0x09, 0x80, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00,
    ];
    blob.extend(0..32u8);
    let key = SymKey::decode(&blob).unwrap();
    assert_eq!((key.alg, key.key.len()), (alg::CALG_HMAC, 32));
    let again = key.encode();
    assert_eq!(again[2..4], [0, 0]);
    assert_eq!((&again[..2], &again[4..]), (&blob[..2], &blob[4..]));
    assert_eq!(SymKey::decode(&again).unwrap(), key);
}

#[test]
fn hmac_sha256_matches_rfc_4231_and_both_readings_differ() {
    // RFC 4231 test case 2.
    let key = HmacKey::new(b"Jefe", HashAlg::Sha256).unwrap();
    let message = b"what do ya want for nothing?";
    let expected = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(key.mac(message, HmacInput::Covered), expected);
    assert!(key.verify_with(message, &expected, HmacInput::Covered));
    let over_digest = key.mac(message, HmacInput::DigestOfCovered);
    assert_ne!(over_digest, expected);
    assert!(key.verify_with(message, &over_digest, HmacInput::DigestOfCovered));
    let mut forged = expected.clone();
    forged[31] ^= 1;
    assert!(!key.verify_with(message, &forged, HmacInput::Covered));
    assert!(!key.verify_with(message, &expected[..31], HmacInput::Covered));
    assert_eq!(
        HmacKey::new(b"", HashAlg::Sha256).err(),
        Some(KeyError::EmptyKey)
    );
    // RFC 2202 test case 2 for SHA-1.
    let key = HmacKey::new(b"Jefe", HashAlg::Sha1).unwrap();
    assert_eq!(
        key.mac(message, HmacInput::Covered),
        hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    );
}

fn signing_key(bits: usize) -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng, bits, HashAlg::Sha256).unwrap()
}

#[test]
fn signatures_verify_through_both_key_blobs_and_both_byte_orders() {
    let key = signing_key(1024);
    let covered = b"session header and packet fields";
    let signature = key.sign(covered);
    assert_eq!(signature.len(), 128);

    let blob = encode_sign_key(key.public());
    assert_eq!(&blob[..4], &[0x06, 0x02, 0x00, 0x00]);
    assert_eq!(&blob[8..12], b"RSA1");
    let public = decode_sign_key(&blob).unwrap();
    assert_eq!(&public, key.public());
    let verifier = VerifyingKey::new(public.clone(), HashAlg::Sha256);
    assert!(verifier.verify(covered, &signature));
    let mut big_endian = signature.clone();
    big_endian.reverse();
    assert!(verifier.verify(covered, &big_endian));
    assert!(!verifier.verify(b"other bytes", &signature));
    let mut forged = signature.clone();
    forged[0] ^= 1;
    assert!(!verifier.verify(covered, &forged));
    assert!(!verifier.verify(covered, &signature[1..]));

    // The same key as a CNG BCRYPT_RSAPUBLIC_BLOB (big-endian numbers).
    let exponent = public.e().to_bytes_be();
    let modulus = public.n().to_bytes_be();
    let mut cng = b"RSA1".to_vec();
    for n in [1024u32, exponent.len() as u32, modulus.len() as u32, 0, 0] {
        cng.extend_from_slice(&n.to_le_bytes());
    }
    cng.extend_from_slice(&exponent);
    cng.extend_from_slice(&modulus);
    assert_eq!(decode_sign_key(&cng).unwrap(), public);
}

#[test]
fn bad_sign_keys_are_refused_without_panicking() {
    let blob = encode_sign_key(signing_key(1024).public());
    for len in 0..blob.len() {
        assert!(decode_sign_key(&blob[..len]).is_err(), "length {len}");
    }
    let mut small = blob.clone();
    small[12..16].copy_from_slice(&512u32.to_le_bytes());
    assert!(matches!(
        decode_sign_key(&small),
        Err(KeyError::RsaSize { bits: 512, .. })
    ));
    let mut huge = b"RSA1".to_vec();
    for n in [1_000_000u32, 4, 0xFFFF_FFF0, 0, 0] {
        huge.extend_from_slice(&n.to_le_bytes());
    }
    assert!(decode_sign_key(&huge).is_err());
}

#[test]
fn the_example_reply_selects_hash_both_ways() {
    let sym = hex(EXAMPLE_SYM_KEY);
    let security =
        SessionSecurity::from_reply(Some(0x0001_0001), Some(&sym), None, Some(0x800C)).unwrap();
    assert_eq!(security.modes.client, SecurityType::Hash);
    assert_eq!(security.modes.server, SecurityType::Hash);
    assert!(matches!(security.client_protect(), Protect::Hash(_)));
    assert!(matches!(security.client_check(), Check::Hash(_)));
}

#[test]
fn without_sec_mode_the_keys_decide() {
    let sym = hex(EXAMPLE_SYM_KEY);
    let sign = encode_sign_key(signing_key(1024).public());
    let only_sym = SessionSecurity::from_reply(None, Some(&sym), None, None).unwrap();
    assert_eq!(
        only_sym.modes,
        SecModes {
            client: SecurityType::Hash,
            server: SecurityType::Hash
        }
    );
    let both = SessionSecurity::from_reply(None, Some(&sym), Some(&sign), None).unwrap();
    assert_eq!(both.modes.server, SecurityType::Sign);
    assert!(matches!(both.client_check(), Check::Sign(_)));
    let neither = SessionSecurity::from_reply(None, None, None, None).unwrap();
    assert!(matches!(neither.client_protect(), Protect::None));
    assert!(matches!(neither.client_check(), Check::None));
    // A mode whose key is missing, a client told to sign, and an unknown hash are refused.
    assert!(matches!(
        SessionSecurity::from_reply(Some(0x0002_0001), Some(&sym), None, None),
        Err(KeyError::MissingKey { key: "SignKey", .. })
    ));
    assert!(SessionSecurity::from_reply(Some(0x0003_0002), Some(&sym), None, None).is_err());
    assert_eq!(
        SessionSecurity::from_reply(Some(0x0001_0001), Some(&sym), None, Some(0x8003)).err(),
        Some(KeyError::HashAlg(0x8003))
    );
}

#[test]
fn checks_accept_only_their_own_kind() {
    let key = HmacKey::new(b"k", HashAlg::Sha256).unwrap();
    let covered = b"bytes";
    let mac = key.compute(covered);
    let check = Check::Hash(key.clone());
    assert!(check.accepts(&Security::Hash(&mac), covered));
    assert!(!check.accepts(&Security::Hash(&mac), b"other"));
    assert!(!check.accepts(&Security::Checksum, covered));
    assert!(!check.accepts(&Security::None, covered));
    assert!(!Check::Checksum.accepts(&Security::Hash(&mac), covered));
    let protect = Protect::Hash(key);
    let mut data = vec![0; protect.data_len()];
    protect.fill(covered, &mut data);
    assert_eq!(data, mac);
}
