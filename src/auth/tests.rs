//! Client ↔ server in memory, NTLM and SPNEGO, driven leg by leg as the RPC machines do.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::ntlm::keys::{client_blob, nt_hash, nt_proof_str, response_key_nt};
use super::ntlm::messages::{Authenticate, AvPairs, Challenge, MIC_OFFSET, av, flags};
use super::ntlm::server::ANONYMOUS_USER;
use super::spnego::tokens::{
    self, NegTokenResp, NegotiationToken, OID_KRB5, OID_MS_KRB5, OID_NTLM, encode_init,
    encode_resp, mech_type_list,
};
use super::test_util::Replay;
use super::*;
use crate::rpc::security::{AuthError, AuthStep, ClientAuth, Protection, ServerAuth};

const ACCOUNTS: &str =
    "# test accounts\nWDS\\alice:Passw0rd!\nWDS\\bob:Hunter2\nOTHER\\carol:c4rol\n";

fn now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn ntlm_server(allow_anonymous: bool, seed: u8) -> NtlmServer {
    let store = Arc::new(Accounts::parse(ACCOUNTS).unwrap());
    let mut config = ServerConfig::new("WDS01", "WDS");
    config.allow_anonymous = allow_anonymous;
    NtlmServer::new(store, config, &mut Replay::new(&[seed, 3, 5, 7]), now())
}

fn ntlm_client(domain: &str, user: &str, password: &str) -> NtlmClient {
    NtlmClient::new(
        Credentials::new(domain, user, password),
        &mut Replay::new(&[9, 8, 7, 6, 5]),
        now(),
    )
}

/// Where an exchange failed: which side, at which of its steps (0-based), and why.
#[derive(Debug, PartialEq)]
struct Failure {
    server: bool,
    step: usize,
    error: AuthError,
}

type Pair = (Box<dyn Protection>, Box<dyn Protection>, Option<String>);

/// Runs the token exchange the way security.rs lays out the legs.
fn drive(mut c: Box<dyn ClientAuth>, mut s: Box<dyn ServerAuth>) -> Result<Pair, Failure> {
    let (mut cs, mut ss) = (0, 0);
    let cf = |step, error| Failure {
        server: false,
        step,
        error,
    };
    let sf = |step, error| Failure {
        server: true,
        step,
        error,
    };
    let mut out = c.step(None).map_err(|e| cf(0, e))?;
    loop {
        match out {
            AuthStep::Continue(t) => {
                ss += 1;
                match s.step(&t).map_err(|e| sf(ss - 1, e))? {
                    AuthStep::Continue(r) | AuthStep::Done(Some(r)) => {
                        cs += 1;
                        out = c.step(Some(&r)).map_err(|e| cf(cs, e))?;
                    }
                    AuthStep::Done(None) => panic!("server ended while the client waits"),
                }
            }
            AuthStep::Done(Some(t)) => {
                // auth3: no reply.
                ss += 1;
                let r = s.step(&t).map_err(|e| sf(ss - 1, e))?;
                assert_eq!(r, AuthStep::Done(None));
                break;
            }
            AuthStep::Done(None) => break,
        }
    }
    let user = s.user();
    let cp = c.into_protection().map_err(|e| cf(99, e))?;
    let sp = s.into_protection().map_err(|e| sf(99, e))?;
    Ok((cp, sp, user))
}

fn ntlm(domain: &str, user: &str, pw: &str) -> Result<Pair, Failure> {
    drive(
        Box::new(ntlm_client(domain, user, pw)),
        Box::new(ntlm_server(false, 1)),
    )
}

fn spnego(domain: &str, user: &str, pw: &str) -> Result<Pair, Failure> {
    drive(
        Box::new(SpnegoClient::new(ntlm_client(domain, user, pw))),
        Box::new(SpnegoServer::new(ntlm_server(false, 1))),
    )
}

/// An RPC-like header, a body and a sec_trailer, sealed one way and unsealed the other.
fn exchange(from: &mut dyn Protection, to: &mut dyn Protection, n: u32) -> [u8; 16] {
    let header = [
        5, 0, 0, 3, 0x10, 0, 0, 0, 0x50, 0, 0x10, 0, n as u8, 0, 0, 0, 1, 2, 3, 4,
    ];
    let trailer = [0x0a, 6, 0, 0, 0, 0, 0, 0];
    let plain: Vec<u8> = (0..(n % 97) + 3).map(|i| (i * 7 + n) as u8).collect();
    let mut body = plain.clone();
    let sig = from.seal(&header, &mut body, &trailer).unwrap();
    assert_eq!(sig.len(), from.signature_len());
    to.unseal(&header, &mut body, &trailer, &sig).unwrap();
    assert_eq!(body, plain);
    sig.try_into().unwrap()
}

fn rejected_at_authenticate(r: Result<Pair, Failure>) {
    match r {
        Err(f) => assert_eq!(
            f,
            Failure {
                server: true,
                step: 1,
                error: AuthError::RejectedCredentials
            }
        ),
        Ok(_) => panic!("login was accepted"),
    }
}

#[test]
fn ntlm_right_password_and_1000_messages_each_way() {
    let (mut c, mut s, user) = ntlm("WDS", "alice", "Passw0rd!").unwrap();
    assert_eq!(user.as_deref(), Some("WDS\\alice"));
    for n in 0..1000 {
        let sig = exchange(&mut *c, &mut *s, n);
        assert_eq!(sig[12..], n.to_le_bytes(), "raw NTLM numbers from 0");
        exchange(&mut *s, &mut *c, n);
    }
}

#[test]
fn spnego_right_password_and_1000_messages_each_way() {
    let (mut c, mut s, user) = spnego("wds", "ALICE", "Passw0rd!").unwrap();
    // The account's spelling of the user, the domain as stored.
    assert_eq!(user.as_deref(), Some("WDS\\alice"));
    for n in 0..1000 {
        let sig = exchange(&mut *c, &mut *s, n);
        // The mechListMIC used sequence number 0.
        assert_eq!(sig[12..], (n + 1).to_le_bytes());
        exchange(&mut *s, &mut *c, n);
    }
}

#[test]
fn refused_logins_fail_at_the_authenticate_leg() {
    for run in [ntlm, spnego] {
        rejected_at_authenticate(run("WDS", "alice", "wrong"));
        rejected_at_authenticate(run("WDS", "mallory", "x"));
        // alice exists, but not in this domain.
        rejected_at_authenticate(run("OTHER", "alice", "Passw0rd!"));
        // bob with alice's password.
        rejected_at_authenticate(run("WDS", "bob", "Passw0rd!"));
        for (domain, user) in [("", "/GUEST"), ("", "GUEST"), ("WDS", "Guest"), ("", "")] {
            rejected_at_authenticate(run(domain, user, "anything"));
        }
        // Empty domain: no domain-less account for alice.
        rejected_at_authenticate(run("", "alice", "Passw0rd!"));
    }
}

#[test]
fn anonymous_only_when_allowed() {
    let anon = || NtlmClient::anonymous(&mut Replay::new(&[4, 2]), now());
    let (mut c, mut s, user) = drive(Box::new(anon()), Box::new(ntlm_server(true, 2))).unwrap();
    assert_eq!(user.as_deref(), Some(ANONYMOUS_USER));
    exchange(&mut *c, &mut *s, 1);
    exchange(&mut *s, &mut *c, 1);
    rejected_at_authenticate(drive(Box::new(anon()), Box::new(ntlm_server(false, 2))));
    let (_, _, user) = drive(
        Box::new(SpnegoClient::new(anon())),
        Box::new(SpnegoServer::new(ntlm_server(true, 2))),
    )
    .unwrap();
    assert_eq!(user.as_deref(), Some(ANONYMOUS_USER));
    rejected_at_authenticate(drive(
        Box::new(SpnegoClient::new(anon())),
        Box::new(SpnegoServer::new(ntlm_server(false, 2))),
    ));
}

/// Runs NEGOTIATE and CHALLENGE with real contexts, lets `edit` change the client's
/// AUTHENTICATE, and returns the server's verdict on it.
fn edited_authenticate(
    edit: impl FnOnce(Vec<u8>, &Challenge) -> Vec<u8>,
) -> Result<AuthStep, AuthError> {
    let mut c = ntlm_client("WDS", "alice", "Passw0rd!");
    let mut s = ntlm_server(false, 1);
    let AuthStep::Continue(neg) = c.step(None).unwrap() else {
        panic!()
    };
    let AuthStep::Continue(chal) = s.step(&neg).unwrap() else {
        panic!()
    };
    let AuthStep::Done(Some(auth)) = c.step(Some(&chal)).unwrap() else {
        panic!()
    };
    let edited = edit(auth, &Challenge::decode(&chal).unwrap());
    s.step(&edited)
}

#[test]
fn tampered_or_downgraded_authenticate_is_rejected() {
    assert_eq!(edited_authenticate(|a, _| a), Ok(AuthStep::Done(None)));
    // Tampered MIC.
    let r = edited_authenticate(|mut a, _| {
        a[MIC_OFFSET + 3] ^= 0x40;
        a
    });
    assert_eq!(r, Err(AuthError::RejectedCredentials));
    // NTLMv1-shaped: a 24-byte NT response.
    let r = edited_authenticate(|a, _| {
        let mut m = Authenticate::decode(&a).unwrap();
        m.nt_response.truncate(24);
        m.mic = None;
        m.encode()
    });
    assert_eq!(r, Err(AuthError::RejectedCredentials));
    // LM only.
    let r = edited_authenticate(|a, _| {
        let mut m = Authenticate::decode(&a).unwrap();
        m.nt_response.clear();
        m.encode()
    });
    assert_eq!(r, Err(AuthError::RejectedCredentials));
    // No extended session security.
    let r = edited_authenticate(|a, _| {
        let mut m = Authenticate::decode(&a).unwrap();
        m.flags &= !flags::EXTENDED_SESSIONSECURITY;
        m.encode()
    });
    assert_eq!(r, Err(AuthError::RejectedCredentials));
    // MIC stripped although MsvAvFlags announce one.
    let r = edited_authenticate(|a, _| {
        let mut m = Authenticate::decode(&a).unwrap();
        m.mic = None;
        m.encode()
    });
    assert_eq!(r, Err(AuthError::RejectedCredentials));
    // Garbage is a bad token, not a panic.
    assert!(matches!(
        edited_authenticate(|a, _| a[..50].to_vec()),
        Err(AuthError::BadToken { .. })
    ));
}

/// An AUTHENTICATE built by hand the way other clients do it: no MIC, blob as `blob_of`
/// makes it, keyed with `key_domain`.
fn handmade(key_domain: &'static str, trailing_zeros: bool) -> Result<AuthStep, AuthError> {
    edited_authenticate(move |a, chal| {
        let m = Authenticate::decode(&a).unwrap();
        let pairs = AvPairs::decode(&chal.target_info).unwrap();
        let ts = pairs.timestamp().unwrap();
        let mut blob = client_blob(ts, &[1; 8], &pairs.encode());
        if !trailing_zeros {
            blob.truncate(blob.len() - 4);
        }
        let rk = response_key_nt(&nt_hash("Passw0rd!"), "alice", key_domain);
        let mut nt = nt_proof_str(&rk, &chal.server_challenge, &blob).to_vec();
        nt.extend_from_slice(&blob);
        Authenticate {
            nt_response: nt,
            mic: None,
            ..m
        }
        .encode()
    })
}

#[test]
fn acceptor_takes_blob_as_received_and_nil_domain_keys() {
    // Trap 1: without the 4 trailing zero bytes (impacket), and with them.
    assert_eq!(handmade("WDS", false), Ok(AuthStep::Done(None)));
    assert_eq!(handmade("WDS", true), Ok(AuthStep::Done(None)));
    // A client that keyed its response with an empty domain (3.2.5.1.2).
    assert_eq!(handmade("", false), Ok(AuthStep::Done(None)));
    assert_eq!(
        handmade("ELSEWHERE", false),
        Err(AuthError::RejectedCredentials)
    );
}

#[test]
fn tampered_sealed_message_is_bad_signature() {
    for run in [ntlm, spnego] {
        let (mut c, mut s, _) = run("WDS", "alice", "Passw0rd!").unwrap();
        exchange(&mut *c, &mut *s, 0);
        let (h, t) = ([5u8; 20], [9u8; 8]);
        for part in 0..4 {
            let (mut c, mut s, _) = run("WDS", "alice", "Passw0rd!").unwrap();
            let mut body = b"stub data".to_vec();
            let mut sig = c.seal(&h, &mut body, &t).unwrap();
            let (mut h2, mut t2) = (h, t);
            match part {
                0 => body[2] ^= 1,
                1 => h2[0] ^= 1, // header signing: the header is covered
                2 => t2[7] ^= 1, // and so is the sec_trailer
                _ => sig[13] ^= 1,
            }
            assert_eq!(
                s.unseal(&h2, &mut body, &t2, &sig),
                Err(AuthError::BadSignature)
            );
        }
    }
}

/// What a Windows client sends: Kerberos first (with an optimistic Kerberos token we cannot
/// use), NTLM later. Driven by hand around a plain NTLM client.
#[test]
fn spnego_server_takes_kerberos_first_offer() {
    let list = mech_type_list(&[OID_MS_KRB5, OID_KRB5, OID_NTLM]);
    for (mic_ok, expect_ok) in [(true, true), (false, false)] {
        let mut s = SpnegoServer::new(ntlm_server(false, 4));
        let mut c = ntlm_client("WDS", "bob", "Hunter2");
        let init = encode_init(
            &list,
            Some(b"\x60\x02\x05\x00 not really a kerberos AP-REQ"),
        );
        let AuthStep::Continue(r1) = s.step(&init).unwrap() else {
            panic!()
        };
        let NegotiationToken::Resp(r1) = tokens::decode(&r1).unwrap() else {
            panic!()
        };
        assert_eq!(r1.supported_mech, Some(OID_NTLM));
        assert_eq!(r1.response_token, None);
        let neg = c.negotiate().unwrap();
        let t2 = encode_resp(&NegTokenResp {
            response_token: Some(&neg),
            ..Default::default()
        });
        let AuthStep::Continue(r2) = s.step(&t2).unwrap() else {
            panic!()
        };
        let NegotiationToken::Resp(r2) = tokens::decode(&r2).unwrap() else {
            panic!()
        };
        let auth = c.authenticate(r2.response_token.unwrap()).unwrap();
        let mut session = c.take_session().unwrap();
        let mut mic = session.sign(&[&list]);
        session.reset_send_rc4();
        if !mic_ok {
            mic[5] ^= 1;
        }
        let t3 = encode_resp(&NegTokenResp {
            response_token: Some(&auth),
            mech_list_mic: Some(&mic),
            ..Default::default()
        });
        let r3 = s.step(&t3);
        if !expect_ok {
            assert_eq!(r3, Err(AuthError::RejectedCredentials));
            continue;
        }
        let AuthStep::Done(Some(r3)) = r3.unwrap() else {
            panic!()
        };
        let NegotiationToken::Resp(r3) = tokens::decode(&r3).unwrap() else {
            panic!()
        };
        session.verify(&[&list], r3.mech_list_mic.unwrap()).unwrap();
        session.reset_recv_rc4();
        assert_eq!(s.user().as_deref(), Some("WDS\\bob"));
        let mut sp = Box::new(s).into_protection().unwrap();
        exchange(&mut session, &mut *sp, 0);
        exchange(&mut *sp, &mut session, 0);
    }
}

#[test]
fn spnego_missing_mech_list_mic_is_rejected() {
    let mut s = SpnegoServer::new(ntlm_server(false, 5));
    let mut c = ntlm_client("WDS", "alice", "Passw0rd!");
    let list = mech_type_list(&[OID_NTLM]);
    let neg = c.negotiate().unwrap();
    let AuthStep::Continue(r1) = s.step(&encode_init(&list, Some(&neg))).unwrap() else {
        panic!()
    };
    let NegotiationToken::Resp(r1) = tokens::decode(&r1).unwrap() else {
        panic!()
    };
    let auth = c.authenticate(r1.response_token.unwrap()).unwrap();
    // The NTLM MIC was sent (the server gave a timestamp), so a mechListMIC is owed.
    let pairs = Challenge::decode(r1.response_token.unwrap()).unwrap();
    assert!(
        AvPairs::decode(&pairs.target_info)
            .unwrap()
            .get(av::TIMESTAMP)
            .is_some()
    );
    let t = encode_resp(&NegTokenResp {
        response_token: Some(&auth),
        ..Default::default()
    });
    assert_eq!(s.step(&t), Err(AuthError::RejectedCredentials));
}

#[test]
fn client_refuses_tampered_server_mech_list_mic() {
    let mut c = SpnegoClient::new(ntlm_client("WDS", "alice", "Passw0rd!"));
    let mut s = SpnegoServer::new(ntlm_server(false, 6));
    let AuthStep::Continue(t1) = c.step(None).unwrap() else {
        panic!()
    };
    let AuthStep::Continue(r1) = s.step(&t1).unwrap() else {
        panic!()
    };
    let AuthStep::Continue(t2) = c.step(Some(&r1)).unwrap() else {
        panic!()
    };
    let AuthStep::Done(Some(mut r2)) = s.step(&t2).unwrap() else {
        panic!()
    };
    let last = r2.len() - 1;
    r2[last] ^= 1;
    assert_eq!(c.step(Some(&r2)), Err(AuthError::BadSignature));
}

#[test]
fn out_of_order_steps_are_errors_not_panics() {
    let mut c = ntlm_client("WDS", "alice", "Passw0rd!");
    assert!(c.step(Some(b"junk")).is_err());
    let mut s = ntlm_server(false, 1);
    assert!(s.step(b"junk").is_err());
    assert!(Box::new(ntlm_server(false, 1)).into_protection().is_err());
    let mut sp = SpnegoServer::new(ntlm_server(false, 1));
    assert!(sp.step(&[0xa1, 0x03, 0x30, 0x01, 0x00]).is_err());
    assert!(sp.user().is_none());
}
