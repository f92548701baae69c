//! Authenticated initiation end to end, in process: the transport's RPC initiation (NTLM and
//! SPNEGO at packet privacy) against the reference server's RPC listener on loopback, then the
//! multicast session in each packet-security mode, byte-exact; refusals and wrong passwords.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, content};
use wdsmc::auth::{Account, Accounts};
use wdsmc::server::RpcConfig;
use wdsmc::transport::{
    Credentials, Event, Initiation, InterfaceSpec, Request, RpcAuth, RpcInitiation, Session, Stats,
    Status, TransportError, initiate,
};
use wdsmc::wire::mt::SecurityType;
use wdsmc::wire::security::SecModes;

/// The reference server on loopback with an RPC listener for alice and bob.
fn rpc_server(slot: u16, modes: SecModes, require_auth: bool) -> TestServer {
    TestServer::start(slot, |config| {
        let mut rpc = RpcConfig::new(Accounts::new(vec![
            Account::new("WDS", "alice", "correct horse"),
            Account::new("", "bob", "battery staple"),
        ]));
        rpc.port = 0;
        rpc.modes = modes;
        rpc.require_auth = require_auth;
        rpc.sign_key_bits = 1024;
        config.rpc = Some(rpc);
    })
}

/// A request for `object` from `server`, initiated over RPC as `auth`.
fn rpc_request(server: &TestServer, object: &str, auth: RpcAuth) -> Request {
    let mut request = Request::new(server.addr(), "ns", object);
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.inactivity = Duration::from_secs(10);
    let mut rpc = RpcInitiation::new(auth);
    rpc.port = server.server.rpc_addr().expect("RPC listener").port();
    request.initiation = Initiation::Rpc(rpc);
    request
}

fn alice() -> RpcAuth {
    RpcAuth::Negotiate(Arc::new(Credentials::new("WDS", "alice", "correct horse")))
}

fn modes(server: SecurityType, client: SecurityType) -> SecModes {
    SecModes { client, server }
}

/// Downloads into memory; returns the bytes, the start event's security and the outcome.
fn download(
    request: Request,
    size: usize,
) -> (Vec<u8>, Option<SecModes>, Result<Stats, TransportError>) {
    type Seen = (
        Vec<u8>,
        Option<SecModes>,
        Option<Result<Stats, TransportError>>,
    );
    let seen: Arc<Mutex<Seen>> = Arc::new(Mutex::new((vec![0; size], None, None)));
    let sink = Arc::clone(&seen);
    let session = Session::start(request, move |handle, event| {
        let mut seen = sink.lock().unwrap();
        match event {
            Event::SessionStart(info) => {
                assert!(info.authenticated);
                assert!(info.user_sid.is_some(), "a server always sends UserSid");
                seen.1 = Some(info.security.modes);
            }
            Event::ReceiveContents { offset, data } => {
                let at = offset as usize;
                seen.0[at..at + data.len()].copy_from_slice(data);
                handle.complete_receive(offset, data.len() as u64).unwrap();
            }
            Event::SessionComplete(result) => seen.2 = Some(result.clone()),
            _ => {}
        }
    })
    .unwrap();
    session
        .wait(Some(Duration::from_secs(60)))
        .expect("finishes");
    drop(session);
    let mut seen = seen.lock().unwrap();
    let result = seen.2.take().expect("SessionComplete");
    (std::mem::take(&mut seen.0), seen.1, result)
}

#[test]
fn downloads_byte_exact_in_checksum_hash_and_sign_modes() {
    let cases = [
        (40, modes(SecurityType::Checksum, SecurityType::Checksum)),
        (41, modes(SecurityType::Hash, SecurityType::Hash)),
        (42, modes(SecurityType::Sign, SecurityType::Hash)),
    ];
    for (slot, wanted) in cases {
        let server = rpc_server(slot, wanted, false);
        let bytes = content(700_000 + usize::from(slot), u64::from(slot));
        server.put("a.bin", &bytes);
        let (data, modes, result) = download(rpc_request(&server, "a.bin", alice()), bytes.len());
        let stats = result.unwrap_or_else(|e| panic!("{wanted:?}: {e}"));
        assert_eq!(modes, Some(wanted));
        assert!(data == bytes, "{wanted:?}: bytes differ");
        assert_eq!(stats.checksum_drops, 0, "{wanted:?}");
    }
}

#[test]
fn raw_ntlm_and_a_bare_user_name_log_in_too() {
    let server = rpc_server(43, modes(SecurityType::Hash, SecurityType::Hash), false);
    let bytes = content(100_000, 43);
    server.put("b.bin", &bytes);
    let bob = RpcAuth::Ntlm(Arc::new(Credentials::new("", "bob", "battery staple")));
    let (data, _, result) = download(rpc_request(&server, "b.bin", bob), bytes.len());
    result.unwrap();
    assert!(data == bytes);
}

#[test]
fn pre_os_clients_get_the_checksum_both_ways() {
    let server = rpc_server(44, modes(SecurityType::Sign, SecurityType::Hash), false);
    server.put("c.bin", b"pre-OS");
    let mut request = rpc_request(&server, "c.bin", alice());
    if let Initiation::Rpc(rpc) = &mut request.initiation {
        rpc.pre_os = true;
    }
    let info = initiate(&request).unwrap();
    assert_eq!(info.security.modes, SecModes::CHECKSUM);
}

#[test]
fn wrong_credentials_and_unknown_objects_are_refused_with_their_own_errors() {
    let server = rpc_server(45, modes(SecurityType::Hash, SecurityType::Hash), true);
    server.put("d.bin", b"data");
    for auth in [
        RpcAuth::Negotiate(Arc::new(Credentials::new("WDS", "alice", "wrong"))),
        RpcAuth::Ntlm(Arc::new(Credentials::new("WDS", "alice", "wrong"))),
        RpcAuth::Ntlm(Arc::new(Credentials::new("WDS", "mallory", "x"))),
        RpcAuth::Anonymous,
    ] {
        let error = initiate(&rpc_request(&server, "d.bin", auth.clone())).unwrap_err();
        assert!(
            matches!(error, TransportError::AuthFailed(_)),
            "{auth:?}: {error}"
        );
    }
    let error = initiate(&rpc_request(&server, "missing.bin", alice())).unwrap_err();
    assert_eq!(
        error,
        TransportError::Refused {
            code: wdsmc::wire::msi::error_code::CONTENT_NOT_FOUND
        }
    );
    let mut request = rpc_request(&server, "d.bin", alice());
    request.namespace = "other".into();
    assert!(matches!(
        initiate(&request).unwrap_err(),
        TransportError::Refused {
            code: wdsmc::wire::msi::error_code::NAMESPACE_NOT_FOUND
        }
    ));
    // --require-auth: UDP initiation gets an error reply, not silence.
    let mut udp = rpc_request(&server, "d.bin", alice());
    udp.initiation = Initiation::Udp;
    assert_eq!(
        initiate(&udp).unwrap_err(),
        TransportError::Refused {
            code: wdsmc::server::UDP_REFUSED_AUTH_REQUIRED
        }
    );
    // Nothing listens on the RPC port: a network error, quickly.
    let mut closed = rpc_request(&server, "d.bin", alice());
    if let Initiation::Rpc(rpc) = &mut closed.initiation {
        rpc.port = 9;
    }
    assert!(matches!(
        initiate(&closed).unwrap_err(),
        TransportError::Network(_)
    ));
}

#[test]
fn a_status_reports_an_authentication_failure() {
    let server = rpc_server(46, modes(SecurityType::Hash, SecurityType::Hash), false);
    server.put("e.bin", b"e");
    let request = rpc_request(
        &server,
        "e.bin",
        RpcAuth::Negotiate(Arc::new(Credentials::new("WDS", "alice", "nope"))),
    );
    let session = Session::start(request, |_, _| {}).unwrap();
    match session.wait(Some(Duration::from_secs(20))) {
        Some(Status::Failure(TransportError::AuthFailed(_))) => {}
        other => panic!("expected an authentication failure, got {other:?}"),
    }
}
