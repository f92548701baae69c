//! Client and server machines wired back to back, with the toy security provider.
//! Hand-built and hostile PDUs are in `raw`.

mod raw;

use super::FragmentError;
use super::client::{Client, ClientConfig, ClientError, ClientEvent};
use super::pdu::{
    self, Bind, Body, ContextElem, NDR, NDR64, PduError, Request, Response, SecTrailer, SyntaxId,
    Uuid, WDS_INTERFACE, auth_level, bind_time_feature_syntax, pfc, provider_reason, reject_reason,
    result, status,
};
use super::security::{AuthError, ClientAuth};
use super::server::{Server, ServerConfig, ServerError, ServerEvent};
use super::test_support::{Legs, ToyClient, server_factory};

const SECRET: &[u8] = b"correct horse";

fn toy(legs: Legs, secret: &[u8]) -> Option<Box<dyn ClientAuth>> {
    Some(Box::new(ToyClient::new(secret, "WDS\\alice", [7; 8], legs)))
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        first_call_id: 2,
        auth_context_id: 1,
        ..ClientConfig::default()
    }
}

fn server(config: ServerConfig) -> Server {
    Server::new(config, Some(server_factory(SECRET, [9; 8])))
}

#[derive(Default, Debug)]
struct Log {
    client: Vec<ClientEvent>,
    server: Vec<ServerEvent>,
    /// Every PDU each side wrote.
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
}

/// Moves bytes both ways until neither side has anything to send. Requests are answered by
/// `answer` (None leaves them for the test).
fn run(
    c: &mut Client,
    s: &mut Server,
    log: &mut Log,
    answer: &mut dyn FnMut(&mut Server, u32, &[u8]),
) {
    loop {
        let mut moved = false;
        while let Some(bytes) = c.poll_transmit() {
            s.handle_bytes(&bytes);
            log.to_server.push(bytes);
            moved = true;
        }
        while let Some(ev) = s.poll_event() {
            if let ServerEvent::Request { call_id, stub, .. } = &ev {
                answer(s, *call_id, stub);
            }
            log.server.push(ev);
        }
        while let Some(bytes) = s.poll_transmit() {
            c.handle_bytes(&bytes);
            log.to_client.push(bytes);
            moved = true;
        }
        while let Some(ev) = c.poll_event() {
            log.client.push(ev);
        }
        if !moved {
            return;
        }
    }
}

/// Answers every request with its stub reversed.
fn echo_reversed(s: &mut Server, call_id: u32, stub: &[u8]) {
    let mut out = stub.to_vec();
    out.reverse();
    s.respond(call_id, &out).unwrap();
}

fn responses(log: &Log) -> Vec<(u32, Vec<u8>)> {
    log.client
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Response { call_id, stub } => Some((*call_id, stub.clone())),
            _ => None,
        })
        .collect()
}

fn ptypes(pdus: &[Vec<u8>]) -> Vec<u8> {
    pdus.iter().map(|p| p[2]).collect()
}

#[test]
fn unauthenticated_call() {
    let cfg = ClientConfig {
        auth_level: auth_level::NONE,
        ..client_cfg()
    };
    let mut c = Client::new(cfg, None).unwrap();
    let mut s = Server::new(
        ServerConfig {
            allow_unauthenticated: true,
            ..ServerConfig::default()
        },
        None,
    );
    let id = c.call(0, b"hello").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert!(matches!(log.server[0], ServerEvent::Bound { user: None }));
    assert_eq!(responses(&log), vec![(id, b"olleh".to_vec())]);
    assert_eq!(id, 3, "calls follow the bind's call_id");
    assert!(!c.header_signing());
}

#[test]
fn three_leg_exchange_then_sealed_calls() {
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let a = c.call(0, &[1; 300]).unwrap();
    let b = c.call(0, b"second").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert_eq!(
        ptypes(&log.to_server),
        [pdu::ptype::BIND, pdu::ptype::AUTH3, 0, 0]
    );
    assert!(matches!(&log.server[0], ServerEvent::Bound { user: Some(u) } if u == "WDS\\alice"));
    assert!(matches!(log.client[0], ClientEvent::Bound));
    assert_eq!(
        responses(&log),
        vec![(a, vec![1; 300]), (b, b"dnoces".to_vec())]
    );
    assert!(c.header_signing());
    // Sealed: the plaintext is nowhere in what went over the wire.
    assert!(!log.to_server[3].windows(6).any(|w| w == b"second"));
    assert!(
        !log.to_client
            .iter()
            .any(|p| p.windows(6).any(|w| w == b"dnoces"))
    );
    // Every request/response carries a PKT_PRIVACY sec_trailer with our context id.
    for p in log.to_server[2..].iter().chain(&log.to_client[1..]) {
        let t = pdu::decode(p).unwrap().auth.unwrap().trailer;
        assert_eq!((t.auth_type, t.auth_level, t.context_id), (0x0A, 6, 1));
    }
}

#[test]
fn four_leg_exchange_uses_alter_context() {
    let mut c = Client::new(client_cfg(), toy(Legs::Four, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let id = c.call(0, b"four").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert_eq!(
        ptypes(&log.to_server),
        [pdu::ptype::BIND, pdu::ptype::ALTER_CONTEXT, 0]
    );
    assert_eq!(
        ptypes(&log.to_client),
        [
            pdu::ptype::BIND_ACK,
            pdu::ptype::ALTER_CONTEXT_RESP,
            pdu::ptype::RESPONSE
        ]
    );
    assert_eq!(responses(&log), vec![(id, b"ruof".to_vec())]);
}

#[test]
fn byte_at_a_time_delivery() {
    let mut c = Client::new(client_cfg(), toy(Legs::Four, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let id = c.call(0, &[3; 5000]).unwrap();
    let mut got = None;
    for _ in 0..20 {
        while let Some(bytes) = c.poll_transmit() {
            bytes.iter().for_each(|b| s.handle_bytes(&[*b]));
        }
        while let Some(ev) = s.poll_event() {
            if let ServerEvent::Request { call_id, stub, .. } = ev {
                s.respond(call_id, &stub).unwrap();
            }
        }
        while let Some(bytes) = s.poll_transmit() {
            bytes.iter().for_each(|b| c.handle_bytes(&[*b]));
        }
        while let Some(ev) = c.poll_event() {
            if let ClientEvent::Response { call_id, stub } = ev {
                got = Some((call_id, stub));
            }
        }
    }
    assert_eq!(got, Some((id, vec![3; 5000])));
}

fn small_frags(frag: u16) -> (ClientConfig, ServerConfig) {
    let c = ClientConfig {
        max_xmit_frag: frag,
        max_recv_frag: frag,
        min_frag: 64,
        ..client_cfg()
    };
    let s = ServerConfig {
        max_xmit_frag: frag,
        max_recv_frag: frag,
        min_frag: 64,
        ..ServerConfig::default()
    };
    (c, s)
}

#[test]
fn fragmented_requests_and_responses() {
    for legs in [Legs::Three, Legs::Four] {
        // The toy's largest leg token (45 bytes in alter_context) needs 125 bytes.
        let (ccfg, scfg) = small_frags(128);
        let mut c = Client::new(ccfg, toy(legs, SECRET)).unwrap();
        let mut s = server(scfg);
        let request: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let id = c.call(0, &request).unwrap();
        let mut log = Log::default();
        let mut seen = None;
        run(&mut c, &mut s, &mut log, &mut |s, call_id, stub| {
            seen = Some(stub.to_vec());
            s.respond(call_id, &vec![0xEE; 3000]).unwrap();
        });
        assert_eq!(seen.as_deref(), Some(&request[..]));
        assert_eq!(responses(&log), vec![(id, vec![0xEE; 3000])]);
        let requests: Vec<_> = log.to_server.iter().filter(|p| p[2] == 0).collect();
        // 128 - 24 fixed - 8 trailer - 16 signature leaves 80 stub bytes per fragment.
        assert_eq!(requests.len(), 1000usize.div_ceil(80));
        let mut remaining = 1000;
        for (i, p) in requests.iter().enumerate() {
            assert!(p.len() <= 128);
            let pdu = pdu::decode(p).unwrap();
            let Body::Request(r) = pdu.body else { panic!() };
            assert_eq!(
                r.alloc_hint, remaining,
                "alloc_hint is the stub still to come"
            );
            remaining -= (r.stub.len() - usize::from(pdu.auth.unwrap().trailer.pad_len)) as u32;
            assert_eq!(pdu.header.flags & pfc::FIRST_FRAG != 0, i == 0);
            assert_eq!(
                pdu.header.flags & pfc::LAST_FRAG != 0,
                i == requests.len() - 1
            );
        }
        assert!(log.to_client.iter().all(|p| p.len() <= 128));
        assert!(log.to_client.len() > 3000 / 80);
        assert!(client_error(&log).is_none() && server_error(&log).is_none());
    }
}

#[test]
fn a_fault_fails_one_call_and_the_next_one_works() {
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let a = c.call(0, b"x").unwrap();
    let b = c.call(0, b"y").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut |s, call_id, stub| {
        if stub == b"x" {
            s.fault(call_id, 0x1234).unwrap();
        } else {
            s.respond(call_id, b"ok").unwrap();
        }
    });
    assert!(
        log.client
            .iter()
            .any(|e| matches!(e, ClientEvent::Fault { call_id, status: 0x1234 } if *call_id == a))
    );
    assert_eq!(responses(&log), vec![(b, b"ok".to_vec())]);
    // Answering a call that is not dispatched is refused.
    assert_eq!(s.respond(99, b""), Err(ServerError::NoSuchCall(99)));
}

fn client_error(log: &Log) -> Option<&ClientError> {
    log.client.iter().find_map(|e| match e {
        ClientEvent::Error(e) => Some(e),
        _ => None,
    })
}

fn server_error(log: &Log) -> Option<&ServerError> {
    log.server.iter().find_map(|e| match e {
        ServerEvent::Error(e) => Some(e),
        _ => None,
    })
}

#[test]
fn unknown_auth_type_gets_bind_nak() {
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    let mut s = Server::new(ServerConfig::default(), None);
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert!(matches!(
        log.client[..],
        [ClientEvent::BindRejected {
            reason: reject_reason::AUTHENTICATION_TYPE_NOT_RECOGNIZED
        }]
    ));
    assert_eq!(
        server_error(&log),
        Some(&ServerError::UnsupportedAuthType(0x0A))
    );
    assert!(c.is_closed() && s.is_closed());
    assert_eq!(c.call(0, b""), Err(ClientError::Closed));
}

#[test]
fn wrong_secret_three_legs_faults_the_first_call() {
    let mut c = Client::new(client_cfg(), toy(Legs::Three, b"wrong")).unwrap();
    let mut s = server(ServerConfig::default());
    let id = c.call(0, b"hi").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert!(log.client.iter().any(
        |e| matches!(e, ClientEvent::Fault { call_id, status: status::ACCESS_DENIED } if *call_id == id)
    ));
    assert_eq!(
        server_error(&log),
        Some(&ServerError::Auth(AuthError::RejectedCredentials))
    );
    assert!(
        !log.server
            .iter()
            .any(|e| matches!(e, ServerEvent::Bound { .. }))
    );
}

#[test]
fn wrong_secret_four_legs_faults_the_alter_context() {
    let mut c = Client::new(client_cfg(), toy(Legs::Four, b"wrong")).unwrap();
    let mut s = server(ServerConfig::default());
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert_eq!(
        ptypes(&log.to_client),
        [pdu::ptype::BIND_ACK, pdu::ptype::FAULT]
    );
    assert!(matches!(
        log.client[..],
        [
            ClientEvent::Fault {
                call_id: 2,
                status: status::ACCESS_DENIED
            },
            ClientEvent::Error(ClientError::AuthFault {
                status: status::ACCESS_DENIED
            })
        ]
    ));
    assert_eq!(
        server_error(&log),
        Some(&ServerError::Auth(AuthError::RejectedCredentials))
    );
}

#[test]
fn calls_below_privacy_are_refused_with_access_denied() {
    // An authenticated CONNECT-level client, and an anonymous one, against a server
    // requiring PKT_PRIVACY.
    let connect = ClientConfig {
        auth_level: auth_level::CONNECT,
        ..client_cfg()
    };
    let anonymous = ClientConfig {
        auth_level: auth_level::NONE,
        ..client_cfg()
    };
    for (cfg, auth, level) in [
        (connect, toy(Legs::Three, SECRET), auth_level::CONNECT),
        (anonymous, None, auth_level::NONE),
    ] {
        let mut c = Client::new(cfg, auth).unwrap();
        let mut s = server(ServerConfig::default());
        let id = c.call(0, b"hi").unwrap();
        let mut log = Log::default();
        run(&mut c, &mut s, &mut log, &mut echo_reversed);
        assert!(log.client.iter().any(
            |e| matches!(e, ClientEvent::Fault { call_id, status: status::ACCESS_DENIED } if *call_id == id)
        ));
        assert_eq!(
            server_error(&log),
            Some(&ServerError::LevelRefused { level })
        );
    }
    // CONNECT is accepted when the server is configured for it (the test-only path).
    let cfg = ClientConfig {
        auth_level: auth_level::CONNECT,
        ..client_cfg()
    };
    let mut c = Client::new(cfg, toy(Legs::Three, SECRET)).unwrap();
    let mut s = server(ServerConfig {
        required_level: auth_level::CONNECT,
        ..ServerConfig::default()
    });
    let id = c.call(0, b"hi").unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert_eq!(responses(&log), vec![(id, b"ih".to_vec())]);
}

/// Binds the toy (three legs) and returns the PDUs of one queued call without delivering them.
fn bound_pair_with_pending(stub: &[u8]) -> (Client, Server, Vec<Vec<u8>>) {
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    c.call(0, stub).unwrap();
    let pending: Vec<_> = std::iter::from_fn(|| c.poll_transmit()).collect();
    (c, s, pending)
}

#[test]
fn a_tampered_request_gets_sec_pkg_error() {
    let (mut c, mut s, mut pending) = bound_pair_with_pending(b"important");
    pending[0][26] ^= 1;
    for p in &pending {
        s.handle_bytes(p);
    }
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert!(log.client.iter().any(|e| matches!(
        e,
        ClientEvent::Fault {
            status: status::SEC_PKG_ERROR,
            ..
        }
    )));
    assert!(matches!(
        server_error(&log),
        Some(ServerError::Fragment(FragmentError::Auth(
            AuthError::BadSignature
        )))
    ));
}

#[test]
fn a_tampered_response_is_an_error() {
    let (mut c, mut s, pending) = bound_pair_with_pending(b"q");
    for p in &pending {
        s.handle_bytes(p);
    }
    while let Some(ServerEvent::Request { call_id, .. }) = s.poll_event() {
        s.respond(call_id, b"answer").unwrap();
    }
    let mut resp = s.poll_transmit().unwrap();
    resp[25] ^= 0x80;
    c.handle_bytes(&resp);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::Auth(AuthError::BadSignature)
        )))
    ));
}

#[test]
fn construction_checks_level_and_provider() {
    let none_with_auth = ClientConfig {
        auth_level: auth_level::NONE,
        ..client_cfg()
    };
    assert!(matches!(
        Client::new(none_with_auth, toy(Legs::Three, SECRET)),
        Err(ClientError::LevelWithoutAuth)
    ));
    assert!(matches!(
        Client::new(client_cfg(), None),
        Err(ClientError::LevelWithoutAuth)
    ));
    let integrity = ClientConfig {
        auth_level: auth_level::PKT_INTEGRITY,
        ..client_cfg()
    };
    assert!(matches!(
        Client::new(integrity, toy(Legs::Three, SECRET)),
        Err(ClientError::UnsupportedLevel(5))
    ));
    // The bind asks for header signing.
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    let bind = c.poll_transmit().unwrap();
    assert_ne!(bind[3] & pfc::SUPPORT_HEADER_SIGN, 0);
}

#[test]
fn refused_fragmented_calls_keep_the_seal_sequence_in_step() {
    let (ccfg, scfg) = small_frags(128);
    let mut c = Client::new(ccfg, toy(Legs::Three, SECRET)).unwrap();
    let mut s = server(scfg);
    // Opnum 5 does not exist: refused at its first fragment, the rest discarded.
    let bad = c.call(5, &[1; 500]).unwrap();
    let good = c.call(0, &[2; 500]).unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut echo_reversed);
    assert!(log.client.iter().any(
        |e| matches!(e, ClientEvent::Fault { call_id, status: status::OP_RNG_ERROR } if *call_id == bad)
    ));
    assert_eq!(responses(&log), vec![(good, vec![2; 500])]);
    assert!(client_error(&log).is_none() && server_error(&log).is_none());
}

#[test]
fn initiate_over_wds_rpc_message_end_to_end() {
    use crate::rpc::stub;
    use crate::wire::wdsc::{InitiateOutcome, InitiateReply, InitiateRequest, error_code};
    use std::net::{IpAddr, Ipv4Addr};

    let request = InitiateRequest {
        namespace: "WDS:default/install.wim/1".into(),
        content: "install.wim".into(),
        client: "TestMachine".into(),
        cap: Some(3),
    };
    let reply = InitiateReply {
        multicast_addr: IpAddr::V4(Ipv4Addr::new(239, 0, 0, 111)),
        server_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 200)),
        port: 64132,
        session_id: 0x6D19_EE7E,
        content_size: 4_018_886_380,
        block_size: 8785,
        total_blocks: 457_472,
        content_metadata: None,
        sym_key: None,
        sign_key: None,
        hash_alg_id: None,
        hmac_alg_id: None,
        sec_mode: None,
        user_sid: Some(vec![1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]),
    };
    let mut c = Client::new(client_cfg(), toy(Legs::Four, SECRET)).unwrap();
    let mut s = server(ServerConfig::default());
    let ok = c
        .call(
            stub::WDS_RPC_MESSAGE_OPNUM,
            &stub::encode_message_request(&request.encode().unwrap()).unwrap(),
        )
        .unwrap();
    let missing = InitiateRequest {
        namespace: "WDS:nope/x.wim/1".into(),
        ..request.clone()
    };
    let not_found = c
        .call(
            0,
            &stub::encode_message_request(&missing.encode().unwrap()).unwrap(),
        )
        .unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut |s, call_id, stub_bytes| {
        let packet = stub::decode_message_request(stub_bytes).unwrap();
        let req = InitiateRequest::decode(packet).unwrap();
        let answer = if req.namespace.starts_with("WDS:default") {
            reply.encode()
        } else {
            crate::wire::wdsc::encode_error_reply(error_code::NAMESPACE_NOT_FOUND)
        };
        let out = stub::encode_message_response(Some(&answer), 0).unwrap();
        s.respond(call_id, &out).unwrap();
    });
    let outcomes: Vec<_> = responses(&log)
        .into_iter()
        .map(|(id, stub_bytes)| {
            let m = stub::decode_message_response(&stub_bytes).unwrap();
            assert_eq!(m.status, 0);
            (id, InitiateOutcome::decode(m.packet.unwrap()).unwrap())
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (ok, InitiateOutcome::Session(reply)),
            (
                not_found,
                InitiateOutcome::Failed {
                    code: error_code::NAMESPACE_NOT_FOUND
                }
            )
        ]
    );
}

#[test]
fn ept_map_through_the_machines() {
    use crate::rpc::pdu::EPM_INTERFACE;
    use crate::rpc::stub::{self, EptMapResponse, Tower};
    use std::net::Ipv4Addr;

    let cfg = ClientConfig {
        interface: EPM_INTERFACE,
        auth_level: auth_level::NONE,
        ..client_cfg()
    };
    let mut c = Client::new(cfg, None).unwrap();
    let mut s = Server::new(
        ServerConfig {
            interface: EPM_INTERFACE,
            opnum_count: 7,
            allow_unauthenticated: true,
            secondary_address: "135".into(),
            ..ServerConfig::default()
        },
        None,
    );
    c.call(
        stub::EPT_MAP_OPNUM,
        &stub::encode_ept_map_request(&WDS_INTERFACE, 4),
    )
    .unwrap();
    let mut log = Log::default();
    run(&mut c, &mut s, &mut log, &mut |s, call_id, req| {
        // The request carries our interface's tower.
        let tower = Tower::decode(&req[32..32 + 75]).unwrap();
        assert_eq!(tower.interface(), Some(WDS_INTERFACE));
        let resp = EptMapResponse {
            entry_handle: [0; 20],
            towers: vec![Tower::tcp(&WDS_INTERFACE, 5040, Ipv4Addr::new(10, 0, 0, 5))],
            status: 0,
        };
        s.respond(call_id, &resp.encode(4)).unwrap();
    });
    let (_, stub_bytes) = responses(&log).pop().unwrap();
    let resp = EptMapResponse::decode(&stub_bytes).unwrap();
    assert_eq!(resp.tcp_port(&WDS_INTERFACE), Some(5040));
}
