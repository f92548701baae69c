//! Hand-built PDUs: what Windows clients send, and hostile input to both machines.

use super::*;

fn raw_bind(contexts: Vec<ContextElem>) -> Vec<u8> {
    let bind = Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts,
    };
    pdu::encode(pfc::FIRST_FRAG | pfc::LAST_FRAG, 1, &Body::Bind(bind), None).unwrap()
}

fn anonymous_server() -> Server {
    Server::new(
        ServerConfig {
            allow_unauthenticated: true,
            max_request_size: 1000,
            max_fragments: 10,
            secondary_address: "5040".into(),
            ..ServerConfig::default()
        },
        None,
    )
}

#[test]
fn windows_style_bind_gets_one_answer_per_context() {
    let ctx = |id, abstract_syntax, ts: SyntaxId| ContextElem {
        context_id: id,
        abstract_syntax,
        transfer_syntaxes: vec![ts],
    };
    let other = SyntaxId {
        uuid: Uuid::from_fields(0x1234_5678, 1, 2, [3; 8]),
        version: 1,
        minor: 0,
    };
    let bytes = raw_bind(vec![
        ctx(0, WDS_INTERFACE, NDR),
        ctx(1, WDS_INTERFACE, NDR64),
        ctx(2, WDS_INTERFACE, bind_time_feature_syntax(3)),
        ctx(3, other, NDR),
    ]);
    let mut s = anonymous_server();
    s.handle_bytes(&bytes);
    let ack = s.poll_transmit().unwrap();
    let pdu = pdu::decode(&ack).unwrap();
    let Body::BindAck(ack) = pdu.body else {
        panic!("{pdu:?}")
    };
    assert_eq!(ack.secondary_address, b"5040");
    let got: Vec<_> = ack.results.iter().map(|r| (r.result, r.reason)).collect();
    assert_eq!(
        got,
        [
            (result::ACCEPTANCE, 0),
            (
                result::PROVIDER_REJECTION,
                provider_reason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED
            ),
            (result::NEGOTIATE_ACK, 0x02),
            (
                result::PROVIDER_REJECTION,
                provider_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED
            ),
        ]
    );
    assert_eq!(ack.results[0].transfer_syntax, NDR);
    assert_eq!(ack.results[2].transfer_syntax, SyntaxId::default());
}

fn raw_request(call_id: u32, flags: u8, alloc_hint: u32, stub: &[u8]) -> Vec<u8> {
    let req = Request {
        alloc_hint,
        context_id: 0,
        opnum: 0,
        object: None,
        stub,
    };
    pdu::encode(flags, call_id, &Body::Request(req), None).unwrap()
}

/// An anonymous server after a plain bind, with the bind_ack drained.
fn bound_anonymous() -> Server {
    let mut s = anonymous_server();
    s.handle_bytes(&raw_bind(vec![ContextElem {
        context_id: 0,
        abstract_syntax: WDS_INTERFACE,
        transfer_syntaxes: vec![NDR],
    }]));
    while s.poll_transmit().is_some() {}
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::Bound { user: None })
    ));
    s
}

fn drain(s: &mut Server) -> (Vec<Vec<u8>>, Vec<ServerEvent>) {
    (
        std::iter::from_fn(|| s.poll_transmit()).collect(),
        std::iter::from_fn(|| s.poll_event()).collect(),
    )
}

fn fault_status(pdu_bytes: &[u8]) -> u32 {
    match pdu::decode(pdu_bytes).unwrap().body {
        Body::Fault(f) => f.status,
        other => panic!("not a fault: {other:?}"),
    }
}

#[test]
fn hostile_input_to_the_server() {
    // frag_length 0xFFFF with little data: refused at the header.
    let mut s = bound_anonymous();
    let mut huge = raw_request(5, 3, 0, b"x");
    huge[8..10].copy_from_slice(&0xFFFFu16.to_le_bytes());
    s.handle_bytes(&huge[..20]);
    let (_, ev) = drain(&mut s);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Pdu(PduError::FragLength {
            frag_len: 0xFFFF,
            ..
        }))]
    ));

    // alloc_hint of 4 GiB: fault, then the error.
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_request(5, 3, u32::MAX, b"x"));
    let (tx, ev) = drain(&mut s);
    assert_eq!(fault_status(&tx[0]), status::ACCESS_DENIED);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Fragment(
            FragmentError::AllocHint { .. }
        ))]
    ));

    // Endless non-LAST fragments, growing and empty.
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_request(5, pfc::FIRST_FRAG, 0, &[0; 300]));
    for _ in 0..20 {
        s.handle_bytes(&raw_request(5, 0, 0, &[0; 300]));
    }
    let (tx, ev) = drain(&mut s);
    assert_eq!(fault_status(&tx[0]), status::ACCESS_DENIED);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Fragment(
            FragmentError::TooLarge { limit: 1000 }
        ))]
    ));
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_request(5, pfc::FIRST_FRAG, 0, &[]));
    for _ in 0..100 {
        s.handle_bytes(&raw_request(5, 0, 0, &[]));
    }
    let (_, ev) = drain(&mut s);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Fragment(
            FragmentError::TooManyFragments { limit: 10 }
        ))]
    ));

    // auth_length larger than the PDU.
    let mut s = bound_anonymous();
    let mut bad = raw_request(5, 3, 0, &[0; 8]);
    bad[10..12].copy_from_slice(&100u16.to_le_bytes());
    s.handle_bytes(&bad);
    let (_, ev) = drain(&mut s);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Pdu(
            PduError::AuthLength { .. }
        ))]
    ));

    // Garbage after the bind: an error, and nothing more is read.
    let mut s = bound_anonymous();
    s.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    s.handle_bytes(&raw_request(5, 3, 0, b"x"));
    let (tx, ev) = drain(&mut s);
    assert!(tx.is_empty());
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Pdu(
            PduError::Version { .. }
        ))]
    ));
}

#[test]
fn out_of_sequence_pdus_are_answered_then_refused() {
    // A request before any bind.
    let mut s = anonymous_server();
    s.handle_bytes(&raw_request(1, 3, 0, b"x"));
    let (tx, ev) = drain(&mut s);
    assert_eq!(fault_status(&tx[0]), status::PROTO_ERROR);
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Protocol(_))]
    ));
    // A second bind.
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_bind(vec![]));
    let (tx, ev) = drain(&mut s);
    assert!(matches!(
        pdu::decode(&tx[0]).unwrap().body,
        Body::BindNak(_)
    ));
    assert!(matches!(
        ev[..],
        [ServerEvent::Error(ServerError::Protocol(_))]
    ));
    // Unknown context and opnum: call-level faults, the connection stays.
    let mut s = bound_anonymous();
    let mut bad_ctx = raw_request(5, 3, 0, b"x");
    bad_ctx[20] = 9;
    s.handle_bytes(&bad_ctx);
    let mut bad_op = raw_request(6, 3, 0, b"x");
    bad_op[22] = 1;
    s.handle_bytes(&bad_op);
    s.handle_bytes(&raw_request(7, 3, 0, b"x"));
    let (tx, ev) = drain(&mut s);
    assert_eq!(fault_status(&tx[0]), status::UNKNOWN_IF);
    assert_eq!(fault_status(&tx[1]), status::OP_RNG_ERROR);
    assert!(matches!(ev[..], [ServerEvent::Request { call_id: 7, .. }]));
}

#[test]
fn orphaned_drops_the_call_in_progress() {
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_request(5, pfc::FIRST_FRAG, 0, b"half"));
    let orphan = pdu::encode(3, 5, &Body::Orphaned, None).unwrap();
    s.handle_bytes(&orphan);
    s.handle_bytes(&raw_request(6, 3, 0, b"whole"));
    let (_, ev) = drain(&mut s);
    assert!(matches!(&ev[..], [ServerEvent::Request { call_id: 6, stub, .. }] if stub == b"whole"));
}

#[test]
fn eof_is_closed_between_pdus_and_an_error_inside_one() {
    let mut s = bound_anonymous();
    s.handle_eof();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Closed)));
    let mut s = bound_anonymous();
    s.handle_bytes(&raw_request(5, 3, 0, b"x")[..10]);
    s.handle_eof();
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::Error(ServerError::Truncated))
    ));
    let mut c = Client::new(client_cfg(), toy(Legs::Three, SECRET)).unwrap();
    c.handle_eof();
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Eof { mid_pdu: false }))
    ));
}

/// A client that has sent its unauthenticated bind, and the bytes of a bind_ack to edit.
fn client_and_ack(edit: impl FnOnce(&mut pdu::BindAck)) -> (Client, Vec<u8>) {
    let cfg = ClientConfig {
        auth_level: auth_level::NONE,
        max_response_size: 1000,
        ..client_cfg()
    };
    let mut c = Client::new(cfg, None).unwrap();
    let mut s = anonymous_server();
    s.handle_bytes(&c.poll_transmit().unwrap());
    let bytes = s.poll_transmit().unwrap();
    let Body::BindAck(mut ack) = pdu::decode(&bytes).unwrap().body else {
        panic!()
    };
    edit(&mut ack);
    let bytes = pdu::encode(3, 2, &Body::BindAck(ack), None).unwrap();
    (c, bytes)
}

fn raw_response(call_id: u32, flags: u8, alloc_hint: u32, stub: &[u8]) -> Vec<u8> {
    let resp = Response {
        alloc_hint,
        context_id: 0,
        cancel_count: 0,
        stub,
    };
    pdu::encode(flags, call_id, &Body::Response(resp), None).unwrap()
}

#[test]
fn hostile_input_to_the_client() {
    let (mut c, ack) = client_and_ack(|a| a.max_recv_frag = 100);
    c.handle_bytes(&ack);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::FragmentSizes {
            recv: 100,
            ..
        }))
    ));
    let (mut c, ack) = client_and_ack(|a| a.results[0].result = result::PROVIDER_REJECTION);
    c.handle_bytes(&ack);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::ContextRejected { .. }))
    ));

    let bound = || {
        let (mut c, ack) = client_and_ack(|_| {});
        c.handle_bytes(&ack);
        assert!(matches!(c.poll_event(), Some(ClientEvent::Bound)));
        let id = c.call(0, b"q").unwrap();
        while c.poll_transmit().is_some() {}
        (c, id)
    };
    let (mut c, id) = bound();
    c.handle_bytes(&raw_response(id, 3, u32::MAX, b"x"));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::AllocHint { .. }
        )))
    ));
    let (mut c, id) = bound();
    c.handle_bytes(&raw_response(id, pfc::FIRST_FRAG, 0, &[0; 600]));
    c.handle_bytes(&raw_response(id, 0, 0, &[0; 600]));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::TooLarge { limit: 1000 }
        )))
    ));
    let (mut c, id) = bound();
    c.handle_bytes(&raw_response(id + 1, 3, 0, b"x"));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::CallId { .. }))
    ));
    let (mut c, id) = bound();
    c.handle_bytes(&raw_response(id, pfc::LAST_FRAG, 0, b"x"));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Sequence(_)))
    ));
    // A verifier on a connection that has no security context.
    let (mut c, id) = bound();
    let t = SecTrailer::new(0x0A, 6, 0);
    let resp = Response {
        alloc_hint: 0,
        context_id: 0,
        cancel_count: 0,
        stub: b"x",
    };
    c.handle_bytes(&pdu::encode(3, id, &Body::Response(resp), Some((t, &[0; 16]))).unwrap());
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::UnexpectedVerifier
        )))
    ));
}

#[test]
fn a_fault_with_a_bogus_verifier_is_an_error_not_a_panic() {
    let (mut c, _s, _) = bound_pair_with_pending(b"q");
    let f = pdu::Fault {
        alloc_hint: 0,
        context_id: 0,
        cancel_count: 0,
        flags: 0,
        status: 5,
    };
    let t = SecTrailer::new(0x0A, auth_level::PKT_PRIVACY, 1);
    let mut bytes = pdu::encode(3, 3, &Body::Fault(f), Some((t, &[0; 16]))).unwrap();
    bytes[32 + 2] = 255; // auth_pad_length beyond the fault body
    c.handle_bytes(&bytes);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::Pdu(PduError::AuthPadding { pad: 255, .. })
        )))
    ));
    // A well-formed but unverifiable verifier is refused too.
    let (mut c, _s, _) = bound_pair_with_pending(b"q");
    let bytes = pdu::encode(3, 3, &Body::Fault(f), Some((t, &[0; 16]))).unwrap();
    c.handle_bytes(&bytes);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Error(ClientError::Fragment(
            FragmentError::Auth(_)
        )))
    ));
}
