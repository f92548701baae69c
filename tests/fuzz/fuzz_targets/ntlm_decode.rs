#![no_main]
//! NTLM and SPNEGO decoders and the acceptors' `step`: never panic on any bytes. The first
//! byte picks how the rest is used, so one corpus reaches every leg.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use wdsmc::auth::ntlm::messages::{Authenticate, AvPairs, Challenge, Negotiate, NtlmV2Response};
use wdsmc::auth::spnego::{der, tokens};
use wdsmc::auth::{Accounts, NtlmServer, ServerConfig, SpnegoServer};
use wdsmc::rpc::security::ServerAuth;

fn server(spnego: bool) -> Box<dyn ServerAuth> {
    let store = Arc::new(Accounts::parse("WDS\\alice:Passw0rd!\n").expect("accounts"));
    let mut config = ServerConfig::new("WDS01", "WDS");
    config.allow_anonymous = true;
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let ntlm = NtlmServer::new(store, config, &mut SmallRng::seed_from_u64(1), now);
    if spnego {
        Box::new(SpnegoServer::new(ntlm))
    } else {
        Box::new(ntlm)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = Negotiate::decode(rest);
    let _ = Challenge::decode(rest);
    let _ = Authenticate::decode(rest);
    let _ = AvPairs::decode(rest);
    let _ = NtlmV2Response::decode(rest);
    let _ = tokens::decode(rest);
    let _ = der::read(rest);
    // Split the rest into up to three tokens at 0xff bytes and feed an acceptor.
    let mut s = server(mode & 1 == 1);
    for token in rest.split(|&b| b == 0xff).take(3) {
        if s.step(token).is_err() {
            break;
        }
    }
    let _ = s.user();
    let _ = s.into_protection();
});
