//! Property tests for the auth layer: NTLM and SPNEGO decoders round-trip what they encode
//! and never panic on any bytes; the acceptors' `step` never panics on any token sequence.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use wdsmc::auth::ntlm::messages::{
    Authenticate, AvPairs, Challenge, Negotiate, NtlmV2Response, flags,
};
use wdsmc::auth::spnego::{der, tokens};
use wdsmc::auth::{Accounts, Credentials, NtlmClient, NtlmServer, ServerConfig, SpnegoServer};
use wdsmc::rpc::security::{AuthStep, ClientAuth, ServerAuth};

fn now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn server(spnego: bool) -> Box<dyn ServerAuth> {
    let store = Arc::new(Accounts::parse("WDS\\alice:Passw0rd!\n").unwrap());
    let mut config = ServerConfig::new("WDS01", "WDS");
    config.allow_anonymous = true;
    let ntlm = NtlmServer::new(store, config, &mut SmallRng::seed_from_u64(1), now());
    if spnego {
        Box::new(SpnegoServer::new(ntlm))
    } else {
        Box::new(ntlm)
    }
}

/// A real NEGOTIATE / CHALLENGE / AUTHENTICATE, as seeds for mutation.
fn real_messages() -> [Vec<u8>; 3] {
    let mut c = NtlmClient::new(
        Credentials::new("WDS", "alice", "Passw0rd!"),
        &mut SmallRng::seed_from_u64(2),
        now(),
    );
    let mut s = server(false);
    let AuthStep::Continue(neg) = c.step(None).unwrap() else {
        unreachable!()
    };
    let AuthStep::Continue(chal) = s.step(&neg).unwrap() else {
        unreachable!()
    };
    let AuthStep::Done(Some(auth)) = c.step(Some(&chal)).unwrap() else {
        unreachable!()
    };
    [neg, chal, auth]
}

fn decode_everything(b: &[u8]) {
    let _ = Negotiate::decode(b);
    let _ = Challenge::decode(b);
    let _ = Authenticate::decode(b);
    let _ = AvPairs::decode(b);
    let _ = NtlmV2Response::decode(b);
    let _ = tokens::decode(b);
    let _ = der::read(b);
}

/// Bytes that look like the start of an NTLM or SPNEGO message, so decoding goes deep.
fn plausible() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..300),
        (1u8..4, vec(any::<u8>(), 0..300)).prop_map(|(t, rest)| {
            let mut v = b"NTLMSSP\0".to_vec();
            v.extend_from_slice(&[t, 0, 0, 0]);
            v.extend(rest);
            v
        }),
        (
            prop_oneof![Just(0x60u8), Just(0xa0), Just(0xa1)],
            vec(any::<u8>(), 0..300)
        )
            .prop_map(|(t, rest)| {
                let mut v = vec![t, rest.len().min(0x7f) as u8];
                v.extend(rest);
                v
            }),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._/\\\\é€-]{0,20}"
}

proptest! {
    #[test]
    fn decoders_never_panic(b in plausible()) {
        decode_everything(&b);
    }

    #[test]
    fn mutated_real_messages_never_panic(
        which in 0usize..3,
        edits in vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut m = real_messages()[which].clone();
        for (at, v) in edits {
            let at = at % m.len();
            m[at] = v;
        }
        m.truncate(cut % (m.len() + 1));
        decode_everything(&m);
        // Straight into an acceptor, in either leg.
        let [neg, _, _] = real_messages();
        let mut s = server(false);
        let _ = s.step(&m);
        let mut s = server(false);
        let _ = s.step(&neg);
        let _ = s.step(&m);
        let _ = s.step(&m);
    }

    #[test]
    fn acceptors_never_panic_on_token_sequences(tokens in vec(plausible(), 1..4), spnego: bool) {
        let mut s = server(spnego);
        for t in &tokens {
            let _ = s.step(t);
        }
        let _ = s.user();
        let _ = s.into_protection();
    }

    #[test]
    fn authenticate_round_trips(
        lm in vec(any::<u8>(), 0..40),
        nt in vec(any::<u8>(), 0..120),
        domain in name(), user in name(), workstation in name(),
        key in vec(any::<u8>(), 0..17),
        flags: u32,
        version: [u8; 8],
        mic: Option<[u8; 16]>,
    ) {
        let a = Authenticate {
            lm_response: lm, nt_response: nt, domain, user, workstation,
            encrypted_session_key: key, flags, version: Some(version), mic,
        };
        prop_assert_eq!(Authenticate::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn challenge_round_trips(
        flags: u32,
        server_challenge: [u8; 8],
        target_name in vec(any::<u8>(), 0..40),
        target_info in vec(any::<u8>(), 0..80),
        version: [u8; 8],
    ) {
        let c = Challenge {
            flags: flags | flags::VERSION, server_challenge, target_name, target_info,
            version: Some(version),
        };
        prop_assert_eq!(Challenge::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn av_pairs_round_trip(pairs in vec((1u16..12, vec(any::<u8>(), 0..30)), 0..8)) {
        let p = AvPairs { pairs: pairs.iter().map(|(id, v)| (*id, v.as_slice())).collect() };
        let enc = p.encode();
        prop_assert_eq!(AvPairs::decode(&enc).unwrap(), p);
    }

    #[test]
    fn neg_token_resp_round_trips(
        state in proptest::option::of(0u8..4),
        mech: bool,
        token in proptest::option::of(vec(any::<u8>(), 0..300)),
        mic in proptest::option::of(vec(any::<u8>(), 0..20)),
    ) {
        let neg_state = state.map(|s| match s {
            0 => tokens::NegState::AcceptCompleted,
            1 => tokens::NegState::AcceptIncomplete,
            2 => tokens::NegState::Reject,
            _ => tokens::NegState::RequestMic,
        });
        let r = tokens::NegTokenResp {
            neg_state,
            supported_mech: mech.then_some(tokens::OID_NTLM),
            response_token: token.as_deref(),
            mech_list_mic: mic.as_deref(),
        };
        let enc = tokens::encode_resp(&r);
        prop_assert_eq!(tokens::decode(&enc).unwrap(), tokens::NegotiationToken::Resp(r));
    }
}
