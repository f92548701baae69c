//! Known answers: RFC 3961 appendix A.1 (n-fold), RFC 6070 (PBKDF2-HMAC-SHA1), RFC 3962
//! appendix B (string-to-key, CTS), MS-KILE 4.4 (AES-128 key creation); and encryptions
//! with fixed confounders cross-checked against an independent implementation (impacket).

use super::*;

use crate::test_util::hex;

#[test]
fn n_fold_vectors() {
    let cases: [(&[u8], usize, &str); 11] = [
        (b"012345", 64, "be072631276b1955"),
        (b"password", 56, "78a07b6caf85fa"),
        (b"Rough Consensus, and Running Code", 64, "bb6ed30870b7f0e0"),
        (
            b"password",
            168,
            "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e",
        ),
        (
            b"MASSACHVSETTS INSTITVTE OF TECHNOLOGY",
            192,
            "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b",
        ),
        (b"Q", 168, "518a54a215a8452a518a54a215a8452a518a54a215"),
        (b"ba", 168, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"),
        (b"kerberos", 64, "6b65726265726f73"),
        (b"kerberos", 128, "6b65726265726f737b9b5b2b93132b93"),
        (
            b"kerberos",
            168,
            "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4",
        ),
        (
            b"kerberos",
            256,
            "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4",
        ),
    ];
    for (input, bits, want) in cases {
        assert_eq!(n_fold(input, bits / 8), hex(want), "{bits}-fold {input:?}");
    }
}

#[test]
fn pbkdf2_vectors() {
    for (iterations, want) in [
        (1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
        (2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
        (4096, "4b007901b765489abead49d926f721d065a429c1"),
    ] {
        let mut out = [0u8; 20];
        pbkdf2_hmac_sha1(b"password", b"salt", iterations, &mut out);
        assert_eq!(out.to_vec(), hex(want), "{iterations} iterations");
    }
    // Longer than one block: the second block's index shows.
    let mut out = [0u8; 25];
    pbkdf2_hmac_sha1(
        b"passwordPASSWORDpassword",
        b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
        4096,
        &mut out,
    );
    assert_eq!(
        out.to_vec(),
        hex("3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038")
    );
}

#[test]
fn string_to_key_vectors() {
    let salt = b"ATHENA.MIT.EDUraeburn";
    for (iterations, aes128, aes256) in [
        (
            1,
            "42263c6e89f4fc28b8df68ee09799f15",
            "fe697b52bc0d3ce14432ba036a92e65bbb52280990a2fa27883998d72af30161",
        ),
        (
            2,
            "c651bf29e2300ac27fa469d693bdda13",
            "a2e16d16b36069c135d5e9d2e25f896102685618b95914b467c67622225824ff",
        ),
        (
            1200,
            "4c01cd46d632d01e6dbe230a01ed642a",
            "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a",
        ),
    ] {
        let k = string_to_key(Etype::Aes128, b"password", salt, iterations);
        assert_eq!(k.bytes(), hex(aes128), "aes128, {iterations}");
        let k = string_to_key(Etype::Aes256, b"password", salt, iterations);
        assert_eq!(k.bytes(), hex(aes256), "aes256, {iterations}");
    }
    // MS-KILE 4.4: 120 U+FFFF characters as UTF-8, salt DOMAIN.COMhostclient.domain.com.
    let password = "\u{ffff}".repeat(120);
    let k = string_to_key(
        Etype::Aes128,
        password.as_bytes(),
        b"DOMAIN.COMhostclient.domain.com",
        1000,
    );
    assert_eq!(k.bytes(), hex("b82ee122531c2d94821ac755bccb5879"));
}

#[test]
fn cts_vectors() {
    let key = b"chicken teriyaki";
    let plain = b"I would like the General Gau's Chicken, please, and wonton soup.";
    for (len, want) in [
        (17, "c6353568f2bf8cb4d8a580362da7ff7f97"),
        (
            31,
            "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5",
        ),
        (
            32,
            "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584",
        ),
        (
            47,
            "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e\
             39312523a78662d5be7fcbcc98ebf5",
        ),
        (
            48,
            "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd8\
             39312523a78662d5be7fcbcc98ebf5a8",
        ),
        (
            64,
            "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a8\
             4807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8",
        ),
    ] {
        let c = cts_encrypt(key, &plain[..len]);
        assert_eq!(c, hex(want), "{len} bytes");
        assert_eq!(
            &cts_decrypt(key, &c).unwrap()[..],
            &plain[..len],
            "{len} bytes back"
        );
    }
    // One block is plain AES; every length from 16 to 80 round-trips.
    for len in 16..80 {
        let data: Vec<u8> = (0..len as u8).collect();
        let c = cts_encrypt(key, &data);
        assert_eq!(c.len(), len);
        assert_eq!(&cts_decrypt(key, &c).unwrap()[..], &data[..]);
    }
    assert!(cts_decrypt(key, &[0; 15]).is_err());
}

#[test]
fn encryption_known_answers() {
    let confounder: [u8; 16] = core::array::from_fn(|i| 100 + i as u8);
    let k256 = Key::new(Etype::Aes256, &(0..32).collect::<Vec<u8>>()).unwrap();
    let c = encrypt(&k256, 3, b"hello kerberos world!", &confounder);
    assert_eq!(
        c,
        hex(
            "91f563950f29a2eed9f2b82b9a337ba1220349a9903f312fe2f7c61192c60448\
             dadae048736ae96072377ae27e46761933"
        )
    );
    assert_eq!(
        &decrypt(&k256, 3, &c).unwrap()[..],
        b"hello kerberos world!"
    );
    // Another usage, a flipped bit, or a cut ciphertext fail the integrity check.
    assert_eq!(decrypt(&k256, 4, &c), Err(CryptoError::Integrity));
    let mut bad = c.clone();
    bad[20] ^= 1;
    assert_eq!(decrypt(&k256, 3, &bad), Err(CryptoError::Integrity));
    assert_eq!(decrypt(&k256, 3, &c[..27]), Err(CryptoError::TooShort));

    let confounder: [u8; 16] = core::array::from_fn(|i| 200 + i as u8);
    let k128 = Key::new(Etype::Aes128, &(0..16).collect::<Vec<u8>>()).unwrap();
    let c = encrypt(&k128, 24, &b"sixteen byte msg".repeat(2), &confounder);
    assert_eq!(
        c,
        hex(
            "25354b43902192f2431915b2fc1bd48e4ff8c0a4e71fd3385f42a83ba8fa74ba\
             a83e1ebdac285052e815dec2f5e98f94f1224ef268f40f9c8a6693dd"
        )
    );
    assert_eq!(
        checksum(&k256, 25, &[b"mic ", b"data"]).to_vec(),
        hex("4ec467de6e148e59de177fa2")
    );
    assert!(verify_checksum(
        &k256,
        25,
        &[b"mic data"],
        &hex("4ec467de6e148e59de177fa2")
    ));
    assert!(!verify_checksum(
        &k256,
        23,
        &[b"mic data"],
        &hex("4ec467de6e148e59de177fa2")
    ));
}

#[test]
fn keys_and_params() {
    assert_eq!(
        Key::from_parts(23, &[0; 16]).err(),
        Some(CryptoError::UnsupportedEtype(23))
    );
    assert_eq!(
        Key::from_parts(18, &[0; 16]).err(),
        Some(CryptoError::KeyLength)
    );
    let k = Key::from_parts(17, &[0x42; 16]).unwrap();
    assert!(!format!("{k:?}").contains("42"));
    assert_eq!(iterations_from_params(None), Ok(4096));
    assert_eq!(iterations_from_params(Some(&[0, 0, 0x10, 0])), Ok(4096));
    assert!(iterations_from_params(Some(&[0, 0, 0, 0])).is_err());
    assert!(iterations_from_params(Some(&[0xff, 0, 0, 0])).is_err());
    assert!(iterations_from_params(Some(&[1, 2])).is_err());
}
