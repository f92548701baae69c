//! Property tests for Kerberos: the decoders, file parsers and acceptors never panic on any
//! bytes, and mutated real messages are refused, never accepted.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use wdsmc::auth::kerberos::ccache::Ccache;
use wdsmc::auth::kerberos::crypto::{self, Etype, Key};
use wdsmc::auth::kerberos::gss::{
    AcceptorConfig, KerberosAcceptor, KerberosClient, KerberosServer, ReplayCache, unframe,
};
use wdsmc::auth::kerberos::kdc::{AsExchange, Credential};
use wdsmc::auth::kerberos::keytab::{Keytab, KeytabEntry};
use wdsmc::auth::kerberos::messages::{
    ApReq, Authenticator, EncApRepPart, EncKdcRepPart, EncTicketPart, EncryptedData, EtypeInfo2,
    KdcRep, KrbErrorMessage, NT_PRINCIPAL, NT_SRV_INST, PrincipalName, Ticket, decode_ap_rep, tag,
    usage,
};
use wdsmc::rpc::security::{AuthStep, ClientAuth, ServerAuth};

const NOW: i64 = 1_800_000_000;

fn service() -> PrincipalName {
    PrincipalName::new(NT_SRV_INST, &["host", "wds.example.test"])
}

fn service_key() -> Key {
    Key::new(Etype::Aes256, &[0x42; 32]).unwrap()
}

fn config() -> Arc<AcceptorConfig> {
    Arc::new(AcceptorConfig {
        keytab: Arc::new(Keytab {
            entries: vec![KeytabEntry {
                principal: service(),
                realm: "EXAMPLE.TEST".into(),
                kvno: 1,
                key: service_key(),
            }],
            skipped: 0,
        }),
        spn: None,
        replay: Arc::new(ReplayCache::new()),
    })
}

fn acceptor(seed: u64) -> KerberosServer {
    KerberosServer::new(KerberosAcceptor::new(
        config(),
        NOW,
        Box::new(SmallRng::seed_from_u64(seed)),
    ))
}

/// A real AP-REQ for the acceptor above.
fn real_ap_req() -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(7);
    let session = Key::random(Etype::Aes256, &mut rng);
    let part = EncTicketPart {
        flags: 0,
        key: session.clone(),
        crealm: "EXAMPLE.TEST".into(),
        cname: PrincipalName::new(NT_PRINCIPAL, &["alice"]),
        authtime: NOW,
        starttime: None,
        endtime: NOW + 3600,
        renew_till: None,
    };
    let enc = EncryptedData {
        etype: 18,
        kvno: Some(1),
        cipher: crypto::encrypt_random(&service_key(), usage::TICKET, &part.encode(), &mut rng),
    };
    let cred = Credential {
        client: part.cname.clone(),
        crealm: "EXAMPLE.TEST".into(),
        server: service(),
        srealm: "EXAMPLE.TEST".into(),
        key: session,
        ticket: Ticket::encode("EXAMPLE.TEST", &service(), &enc),
        flags: 0,
        authtime: NOW,
        starttime: NOW,
        endtime: NOW + 3600,
        renew_till: 0,
    };
    let mut client = KerberosClient::new(cred, NOW, 1, Box::new(SmallRng::seed_from_u64(8)));
    match client.step(None).unwrap() {
        AuthStep::Continue(t) => t,
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = ApReq::decode(&bytes);
        let _ = Authenticator::decode(&bytes);
        let _ = EncApRepPart::decode(&bytes);
        let _ = EncKdcRepPart::decode(&bytes);
        let _ = EncTicketPart::decode(&bytes);
        let _ = KdcRep::decode(&bytes, tag::AS_REP);
        let _ = KrbErrorMessage::decode(&bytes);
        let _ = EtypeInfo2::decode_list(&bytes);
        let _ = decode_ap_rep(&bytes);
        let _ = Ticket::decode(&bytes);
        let _ = unframe(&bytes);
        let _ = Keytab::parse(&bytes, "k");
        let _ = Ccache::parse(&bytes, "c");
        let mut with_header = vec![5, 2];
        with_header.extend_from_slice(&bytes);
        let _ = Keytab::parse(&with_header, "k");
        with_header[1] = 4;
        let _ = Ccache::parse(&with_header, "c");
        let mut as_ex = AsExchange::new(PrincipalName::new(1, &["a"]), "R", "pw", 1);
        let _ = as_ex.handle(&bytes, NOW, 0, &mut SmallRng::seed_from_u64(1));
    }

    #[test]
    fn the_acceptor_never_panics(tokens in vec(vec(any::<u8>(), 0..400), 1..4)) {
        let mut server = acceptor(1);
        for t in &tokens {
            if server.step(t).is_err() {
                break;
            }
        }
    }

    #[test]
    fn a_mutated_ap_req_is_never_accepted(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut req = real_ap_req();
        let i = at.index(req.len());
        req[i] ^= 1 << bit;
        // Never a panic; a flip inside the ticket's or the authenticator's ciphertext is
        // always refused (a flip elsewhere may hit a field that is not checked, such as the
        // ap-options' unused bits).
        let outcome = acceptor(2).step(&req);
        let in_cipher = {
            let clean = real_ap_req();
            let a = ApReq::decode(&clean).unwrap();
            let find = |needle: &[u8]| clean.windows(needle.len()).position(|w| w == needle);
            let t = find(&a.ticket.enc_part.cipher).unwrap();
            let u = find(&a.authenticator.cipher).unwrap();
            (t..t + a.ticket.enc_part.cipher.len()).contains(&i)
                || (u..u + a.authenticator.cipher.len()).contains(&i)
        };
        if in_cipher {
            prop_assert!(outcome.is_err());
        }
    }
}
