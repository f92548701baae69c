//! The initiator against the acceptor, in memory, with a ticket made here as a KDC would.

use rand::SeedableRng;
use rand::rngs::SmallRng as StdRng;

use super::*;
use crate::auth::kerberos::crypto::Etype;
use crate::auth::kerberos::keytab::KeytabEntry;
use crate::auth::kerberos::messages::{NT_PRINCIPAL, NT_SRV_INST, Ticket};

const NOW: i64 = 1_800_000_000;
const REALM: &str = "WDSMC.TEST";

fn rng(seed: u64) -> Box<dyn RngCore + Send> {
    Box::new(StdRng::seed_from_u64(seed))
}

fn service() -> PrincipalName {
    PrincipalName::new(NT_SRV_INST, &["host", "wds.wdsmc.test"])
}

struct Setup {
    cred: Credential,
    config: Arc<AcceptorConfig>,
}

/// A service ticket for alice, valid from `start` to `end`, under `service_key`; the
/// acceptor's keytab holds `keytab_key`.
fn setup(etype: Etype, start: i64, end: i64, keytab_key: &[u8]) -> Setup {
    let mut r = StdRng::seed_from_u64(1);
    let service_key = Key::new(etype, &vec![0x11; etype.key_len()]).unwrap();
    let session_key = Key::random(etype, &mut r);
    let part = EncTicketPart {
        flags: 0,
        key: session_key.clone(),
        crealm: REALM.into(),
        cname: PrincipalName::new(NT_PRINCIPAL, &["alice"]),
        authtime: start,
        starttime: Some(start),
        endtime: end,
        renew_till: None,
    };
    let enc = EncryptedData {
        etype: etype.number(),
        kvno: Some(2),
        cipher: crypto::encrypt_random(&service_key, usage::TICKET, &part.encode(), &mut r),
    };
    let ticket = Ticket::encode(REALM, &service(), &enc);
    let cred = Credential {
        client: part.cname.clone(),
        crealm: REALM.into(),
        server: service(),
        srealm: REALM.into(),
        key: session_key,
        ticket,
        flags: 0,
        authtime: start,
        starttime: start,
        endtime: end,
        renew_till: 0,
    };
    let keytab = Keytab {
        entries: vec![KeytabEntry {
            principal: service(),
            realm: REALM.into(),
            kvno: 2,
            key: Key::new(etype, keytab_key).unwrap(),
        }],
        skipped: 0,
    };
    Setup {
        cred,
        config: Arc::new(AcceptorConfig {
            keytab: Arc::new(keytab),
            spn: Some((service(), None)),
            replay: Arc::new(ReplayCache::new()),
        }),
    }
}

fn good(etype: Etype) -> Setup {
    setup(etype, NOW - 60, NOW + 3600, &vec![0x11; etype.key_len()])
}

type Established = (Box<dyn Protection>, Box<dyn Protection>, Option<String>);

/// Runs the three legs over the raw (0x10) providers; returns both protections.
fn establish(s: &Setup, client_now: i64, server_now: i64) -> Result<Established, AuthError> {
    let mut client = Box::new(KerberosClient::new(
        s.cred.clone(),
        client_now,
        123_456,
        rng(2),
    ));
    let mut server = Box::new(KerberosServer::new(KerberosAcceptor::new(
        Arc::clone(&s.config),
        server_now,
        rng(3),
    )));
    let AuthStep::Continue(ap_req) = client.step(None)? else {
        panic!("no AP-REQ")
    };
    assert_eq!(ap_req[0], 0x6e, "raw AP-REQ for auth type 0x10");
    let AuthStep::Continue(ap_rep) = server.step(&ap_req)? else {
        panic!("DCE style: the server waits for a third leg")
    };
    let AuthStep::Done(Some(third)) = client.step(Some(&ap_rep))? else {
        panic!("no third leg")
    };
    assert_eq!(server.step(&third)?, AuthStep::Done(None));
    let user = server.user();
    Ok((client.into_protection()?, server.into_protection()?, user))
}

fn seal_roundtrip(tx: &mut dyn Protection, rx: &mut dyn Protection, len: usize) {
    let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut body = plain.clone();
    let sig = tx
        .seal(b"HEADER-16-BYTES!", &mut body, b"TRAILER!")
        .unwrap();
    assert_eq!(sig.len(), WRAP_TOKEN_LEN);
    assert_eq!(body.len(), len);
    assert_ne!(body, plain);
    rx.unseal(b"HEADER-16-BYTES!", &mut body, b"TRAILER!", &sig)
        .unwrap();
    assert_eq!(body, plain);
}

#[test]
fn three_legs_then_sealed_messages_both_ways() {
    for etype in [Etype::Aes256, Etype::Aes128] {
        for header_signing in [true, false] {
            let s = good(etype);
            let (mut c, mut srv, user) = establish(&s, NOW, NOW + 30).unwrap();
            assert_eq!(user.as_deref(), Some("alice@WDSMC.TEST"));
            c.set_header_signing(header_signing);
            srv.set_header_signing(header_signing);
            for len in [16, 32, 48, 4096] {
                seal_roundtrip(&mut *c, &mut *srv, len);
                seal_roundtrip(&mut *srv, &mut *c, len);
            }
        }
    }
}

#[test]
fn tampering_reordering_and_header_changes_are_refused() {
    let s = good(Etype::Aes256);
    let (mut c, mut srv, _) = establish(&s, NOW, NOW).unwrap();
    c.set_header_signing(true);
    srv.set_header_signing(true);
    // A changed RPC header fails only because header signing is on.
    let mut body = vec![7u8; 32];
    let sig = c.seal(b"header", &mut body, b"trailer").unwrap();
    assert_eq!(
        srv.unseal(b"HEADER", &mut body, b"trailer", &sig),
        Err(AuthError::BadSignature)
    );
    // The session is then broken for good.
    let mut body = vec![7u8; 32];
    let sig = c.seal(b"header", &mut body, b"trailer").unwrap();
    assert!(srv.unseal(b"header", &mut body, b"trailer", &sig).is_err());

    let s = good(Etype::Aes128);
    let (mut c, mut srv, _) = establish(&s, NOW, NOW).unwrap();
    let mut first = vec![1u8; 32];
    let sig1 = c.seal(b"h", &mut first, b"t").unwrap();
    let mut second = vec![2u8; 32];
    let sig2 = c.seal(b"h", &mut second, b"t").unwrap();
    // Out of order: the second message first.
    assert!(srv.unseal(b"h", &mut second, b"t", &sig2).is_err());
    let _ = (first, sig1);

    // A flipped bit in the body, the token or the flags.
    for victim in 0..3 {
        let s = good(Etype::Aes256);
        let (mut c, mut srv, _) = establish(&s, NOW, NOW).unwrap();
        let mut body = vec![3u8; 48];
        let mut sig = c.seal(b"h", &mut body, b"t").unwrap();
        match victim {
            0 => body[5] ^= 1,
            1 => sig[40] ^= 1,
            _ => sig[2] ^= SENT_BY_ACCEPTOR,
        }
        assert!(srv.unseal(b"h", &mut body, b"t", &sig).is_err(), "{victim}");
    }

    // A token reflected back to its sender is refused (the acceptor flag differs).
    let s = good(Etype::Aes256);
    let (mut c, _srv, _) = establish(&s, NOW, NOW).unwrap();
    let mut body = vec![5u8; 32];
    let sig = c.seal(b"h", &mut body, b"t").unwrap();
    assert!(c.unseal(b"h", &mut body, b"t", &sig).is_err());
}

#[test]
fn the_wrap_token_layout_is_ms_kile_s() {
    let s = good(Etype::Aes256);
    let (mut c, _, _) = establish(&s, NOW, NOW).unwrap();
    let mut body = vec![0u8; 32];
    let sig = c.seal(b"h", &mut body, b"t").unwrap();
    // TOK_ID 05 04, flags Sealed|AcceptorSubkey from the initiator, filler FF, EC 16, RRC 28.
    assert_eq!(&sig[..8], &[0x05, 0x04, 0x06, 0xff, 0x00, 0x10, 0x00, 0x1c]);
    assert_eq!(sig.len(), 76);
}

#[test]
fn refusals_at_the_acceptor() {
    // Clock skew: the server's clock is 10 minutes ahead.
    let s = good(Etype::Aes256);
    let err = establish(&s, NOW, NOW + 600).err().unwrap();
    assert!(err.to_string().contains("clock skew"), "{err}");
    // An expired ticket.
    let s = setup(Etype::Aes256, NOW - 7200, NOW - 3600, &[0x11; 32]);
    let err = establish(&s, NOW, NOW).err().unwrap();
    assert!(err.to_string().contains("expired"), "{err}");
    // A ticket the keytab's key does not open (a "wrong" ticket).
    let s = setup(Etype::Aes256, NOW - 60, NOW + 3600, &[0x22; 32]);
    let err = establish(&s, NOW, NOW).err().unwrap();
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    // A ticket for another service.
    let mut s = good(Etype::Aes256);
    Arc::get_mut(&mut s.config).unwrap().spn = Some((
        PrincipalName::new(NT_SRV_INST, &["host", "other.wdsmc.test"]),
        None,
    ));
    let err = establish(&s, NOW, NOW).err().unwrap();
    assert!(err.to_string().contains("the ticket is for"), "{err}");
}

#[test]
fn replays_and_bad_third_legs_are_refused() {
    let s = good(Etype::Aes256);
    let mut client = KerberosClient::new(s.cred.clone(), NOW, 5, rng(9));
    let AuthStep::Continue(ap_req) = client.step(None).unwrap() else {
        panic!()
    };
    let mut a = KerberosServer::new(KerberosAcceptor::new(Arc::clone(&s.config), NOW, rng(1)));
    let AuthStep::Continue(ap_rep) = a.step(&ap_req).unwrap() else {
        panic!()
    };
    let mut b = KerberosServer::new(KerberosAcceptor::new(Arc::clone(&s.config), NOW, rng(1)));
    assert!(
        b.step(&ap_req)
            .unwrap_err()
            .to_string()
            .contains("replayed")
    );
    // A third leg that is the server's own AP-REP (wrong sequence echo) fails.
    let AuthStep::Done(Some(third)) = client.step(Some(&ap_rep)).unwrap() else {
        panic!()
    };
    let mut c = KerberosServer::new(KerberosAcceptor::new(Arc::clone(&s.config), NOW, rng(2)));
    let mut client2 = KerberosClient::new(s.cred.clone(), NOW, 6, rng(10));
    let AuthStep::Continue(req2) = client2.step(None).unwrap() else {
        panic!()
    };
    c.step(&req2).unwrap();
    assert_eq!(c.step(&third), Err(AuthError::RejectedCredentials));
    // The client refuses an AP-REP that does not echo its authenticator.
    let mut client3 = KerberosClient::new(s.cred.clone(), NOW, 7, rng(11));
    client3.step(None).unwrap();
    assert!(
        client3
            .step(Some(&ap_rep))
            .unwrap_err()
            .to_string()
            .contains("mutual")
    );
}

#[test]
fn mic_tokens_for_spnego() {
    let s = good(Etype::Aes256);
    let mut init = KerberosInitiator::new(s.cred.clone(), true, NOW, 1, &mut *rng(4));
    let ap_req = init.ap_req(&mut *rng(5)).unwrap();
    assert_eq!(ap_req[0], 0x60, "framed inside SPNEGO");
    let mut acc = KerberosAcceptor::new(Arc::clone(&s.config), NOW, rng(6));
    let (Some(rep), true) = acc.accept(&ap_req).unwrap() else {
        panic!()
    };
    let third = init.ap_rep(&rep, &mut *rng(7)).unwrap();
    acc.third_leg(&third).unwrap();
    let mut c = init.take_session().unwrap();
    let mut a = acc.take_session().unwrap();
    let mic = c.get_mic(b"mech list");
    a.verify_mic(b"mech list", &mic).unwrap();
    let mic = a.get_mic(b"mech list");
    assert!(c.verify_mic(b"mech lisT", &mic).is_err());
}
