#![no_main]
//! Kerberos decoders, the keytab and credential-cache parsers, the AS exchange and the
//! acceptor's `step`: never panic on any bytes. The first byte picks how the rest is used.

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use wdsmc::auth::kerberos::ccache::Ccache;
use wdsmc::auth::kerberos::crypto::{Etype, Key};
use wdsmc::auth::kerberos::gss::{
    AcceptorConfig, KerberosAcceptor, KerberosServer, ReplayCache, unframe,
};
use wdsmc::auth::kerberos::kdc::AsExchange;
use wdsmc::auth::kerberos::keytab::{Keytab, KeytabEntry};
use wdsmc::auth::kerberos::messages::{
    ApReq, Authenticator, EncApRepPart, EncKdcRepPart, EncTicketPart, EtypeInfo2, KdcRep,
    KrbErrorMessage, NT_SRV_INST, PrincipalName, Ticket, decode_ap_rep, tag,
};
use wdsmc::rpc::security::ServerAuth;

const NOW: i64 = 1_800_000_000;

fn acceptor() -> KerberosServer {
    let config = Arc::new(AcceptorConfig {
        keytab: Arc::new(Keytab {
            entries: vec![KeytabEntry {
                principal: PrincipalName::new(NT_SRV_INST, &["host", "wds.example.test"]),
                realm: "EXAMPLE.TEST".into(),
                kvno: 1,
                key: Key::new(Etype::Aes256, &[0x42; 32]).expect("key"),
            }],
            skipped: 0,
        }),
        spn: None,
        replay: Arc::new(ReplayCache::new()),
    });
    KerberosServer::new(KerberosAcceptor::new(
        config,
        NOW,
        Box::new(SmallRng::seed_from_u64(1)),
    ))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = ApReq::decode(rest);
            let _ = Authenticator::decode(rest);
            let _ = EncApRepPart::decode(rest);
            let _ = EncKdcRepPart::decode(rest);
            let _ = EncTicketPart::decode(rest);
            let _ = KdcRep::decode(rest, tag::AS_REP);
            let _ = KdcRep::decode(rest, tag::TGS_REP);
            let _ = KrbErrorMessage::decode(rest);
            let _ = EtypeInfo2::decode_list(rest);
            let _ = decode_ap_rep(rest);
            let _ = Ticket::decode(rest);
            let _ = unframe(rest);
            let mut exchange = AsExchange::new(PrincipalName::new(1, &["a"]), "R", "pw", 1);
            let _ = exchange.handle(rest, NOW, 0, &mut SmallRng::seed_from_u64(1));
        }
        1 => {
            // The files as found on disk: a version header, then anything.
            let _ = Keytab::parse(rest, "k");
            let _ = Ccache::parse(rest, "c");
        }
        _ => {
            // Up to three tokens split at 0xff bytes, fed to the acceptor.
            let mut server = acceptor();
            for token in rest.split(|&b| b == 0xff).take(3) {
                if server.step(token).is_err() {
                    break;
                }
            }
            let _ = server.user();
        }
    }
});
