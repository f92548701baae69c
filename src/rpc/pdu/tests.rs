use super::*;

use crate::test_util::hex;

/// 40 opaque bytes shaped like an NTLM NEGOTIATE message; the PDU layer never looks inside.
fn ntlm_negotiate() -> Vec<u8> {
    hex("4e544c4d53535000 01000000 b78208e2 0000000000000000 0000000000000000 0a0063450000000f")
}

fn wds_bind() -> Bind {
    Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts: vec![ContextElem {
            context_id: 0,
            abstract_syntax: WDS_INTERFACE,
            transfer_syntaxes: vec![NDR],
        }],
    }
}

#[test]
fn constants_render_as_their_textual_uuids() {
    assert_eq!(NDR.uuid.to_string(), "8a885d04-1ceb-11c9-9fe8-08002b104860");
    assert_eq!(
        NDR64.uuid.to_string(),
        "71710533-beba-4937-8319-b5dbef9ccc36"
    );
    assert_eq!(
        WDS_INTERFACE.uuid.to_string(),
        "1a927394-352e-4553-ae3f-7cf4aafca620"
    );
    assert_eq!(
        EPM_INTERFACE.uuid.to_string(),
        "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
    );
    assert_eq!(
        bind_time_feature_syntax(3).uuid.to_string(),
        "6cb71c2c-9812-4540-0300-000000000000"
    );
    assert_eq!(bind_time_features(&bind_time_feature_syntax(3)), Some(3));
    assert_eq!(bind_time_features(&NDR), None);
}

/// Hand-derived from the C706 12.6.4.3 / MS-RPCE 2.2.2.11 field tables: header (ptype 11,
/// flags FIRST|LAST|SUPPORT_HEADER_SIGN, drep 10 00 00 00, frag_length 120, auth_length 40,
/// call_id 1), max_xmit/max_recv 4280, assoc_group 0, one context (id 0, one transfer
/// syntax, WdsRpcInterface v1.0, NDR v2), sec_trailer (WINNT, PKT_PRIVACY, no padding,
/// context 0), then the 40-byte token.
#[test]
fn golden_bind_with_ntlm_token() {
    let token = ntlm_negotiate();
    assert_eq!(token.len(), 40);
    let mut expected = hex("05000b07 10000000 7800 2800 01000000
         b810 b810 00000000
         01 00 0000
         0000 01 00
         9473921a 2e35 5345 ae3f 7cf4aafca620 0100 0000
         045d888a eb1c c911 9fe8 08002b104860 0200 0000
         0a 06 00 00 00000000");
    expected.extend_from_slice(&token);
    let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | pfc::SUPPORT_HEADER_SIGN;
    let trailer = SecTrailer::new(auth_type::WINNT, auth_level::PKT_PRIVACY, 0);
    let bytes = encode(flags, 1, &Body::Bind(wds_bind()), Some((trailer, &token))).unwrap();
    assert_eq!(bytes, expected);
    let pdu = decode(&bytes).unwrap();
    assert_eq!(pdu.body, Body::Bind(wds_bind()));
    assert_eq!(pdu.auth.unwrap().value, &token[..]);
    assert_eq!(pdu.trailer_offset, Some(72));
}

/// Hand-derived from C706 12.6.4.9 and MS-RPCE 2.2.2.11: header (ptype 0, FIRST|LAST,
/// frag_length 64, auth_length 16, call_id 2), alloc_hint 5, context 0, opnum 0, a 5-byte
/// stub padded with 11 zeros to 16, sec_trailer (WINNT, PKT_PRIVACY, pad 11, context 0), and
/// a 16-byte verifier.
#[test]
fn golden_request_with_sec_trailer() {
    let sig = hex("01000000 1122334455667788 00000000");
    let expected = hex("05000003 10000000 4000 1000 02000000
         05000000 0000 0000
         0102030405 0000000000000000000000
         0a 06 0b 00 00000000
         01000000 1122334455667788 00000000");
    let req = Request {
        alloc_hint: 5,
        context_id: 0,
        opnum: 0,
        object: None,
        stub: &[1, 2, 3, 4, 5],
    };
    let trailer = SecTrailer::new(auth_type::WINNT, auth_level::PKT_PRIVACY, 0);
    let bytes = encode(
        pfc::FIRST_FRAG | pfc::LAST_FRAG,
        2,
        &Body::Request(req),
        Some((trailer, &sig)),
    )
    .unwrap();
    assert_eq!(bytes, expected);
    let pdu = decode(&bytes).unwrap();
    assert_eq!(pdu.auth.as_ref().unwrap().trailer.pad_len, 11);
    assert_eq!(pdu.stub_offset, 24);
    assert_eq!(pdu.trailer_offset, Some(40));
    let Body::Request(r) = pdu.body else { panic!() };
    assert_eq!(r.stub.len(), 16, "stub plus padding, as sealed");
}

fn round_trip(flags: u8, body: Body<'_>, auth: Option<(SecTrailer, &[u8])>) {
    let bytes = encode(flags, 77, &body, auth).unwrap();
    let pdu = decode(&bytes).unwrap();
    assert_eq!(pdu.header.call_id, 77);
    assert_eq!(pdu.header.frag_len as usize, bytes.len());
    match (&pdu.body, &body) {
        // With an auth trailer, the decoded stub includes the padding.
        (Body::Request(a), Body::Request(b)) => {
            assert_eq!(&a.stub[..b.stub.len()], b.stub);
            assert_eq!(
                (a.alloc_hint, a.context_id, a.opnum, a.object),
                (b.alloc_hint, b.context_id, b.opnum, b.object)
            );
        }
        (Body::Response(a), Body::Response(b)) => {
            assert_eq!(&a.stub[..b.stub.len()], b.stub);
            assert_eq!((a.alloc_hint, a.context_id), (b.alloc_hint, b.context_id));
        }
        (a, b) => assert_eq!(a, b),
    }
    match (pdu.auth, auth) {
        (None, None) => {}
        (Some(a), Some((t, v))) => {
            assert_eq!(a.value, v);
            assert_eq!(
                (
                    a.trailer.auth_type,
                    a.trailer.auth_level,
                    a.trailer.context_id
                ),
                (t.auth_type, t.auth_level, t.context_id)
            );
            if let Some(at) = pdu.trailer_offset
                && !matches!(body, Body::Request(_) | Body::Response(_))
            {
                assert_eq!(at % 4, 0);
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_pdu_round_trips() {
    let fl = pfc::FIRST_FRAG | pfc::LAST_FRAG;
    let t = SecTrailer::new(auth_type::GSS_NEGOTIATE, auth_level::PKT_PRIVACY, 7);
    let token = [9u8; 23];
    let stub = [0x5a; 37];
    let obj = Uuid::from_fields(1, 2, 3, [4; 8]);
    for auth in [None, Some((t, &token[..]))] {
        for object in [None, Some(obj)] {
            round_trip(
                fl,
                Body::Request(Request {
                    alloc_hint: 37,
                    context_id: 3,
                    opnum: 9,
                    object,
                    stub: &stub,
                }),
                auth,
            );
        }
        round_trip(
            pfc::FIRST_FRAG,
            Body::Response(Response {
                alloc_hint: 1000,
                context_id: 1,
                cancel_count: 0,
                stub: &stub,
            }),
            auth,
        );
        let mut bind = wds_bind();
        bind.contexts.push(ContextElem {
            context_id: 1,
            abstract_syntax: WDS_INTERFACE,
            transfer_syntaxes: vec![NDR64],
        });
        bind.contexts.push(ContextElem {
            context_id: 2,
            abstract_syntax: WDS_INTERFACE,
            transfer_syntaxes: vec![bind_time_feature_syntax(3)],
        });
        round_trip(
            fl | pfc::SUPPORT_HEADER_SIGN,
            Body::Bind(bind.clone()),
            auth,
        );
        round_trip(fl, Body::AlterContext(bind), auth);
        for addr in [&b""[..], b"5040", b"49667"] {
            let ack = BindAck {
                max_xmit_frag: 4280,
                max_recv_frag: 5840,
                assoc_group_id: 0x1234_5678,
                secondary_address: addr.to_vec(),
                results: vec![
                    ContextResult {
                        result: result::ACCEPTANCE,
                        reason: 0,
                        transfer_syntax: NDR,
                    },
                    ContextResult {
                        result: result::PROVIDER_REJECTION,
                        reason: provider_reason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
                        transfer_syntax: SyntaxId::default(),
                    },
                    ContextResult {
                        result: result::NEGOTIATE_ACK,
                        reason: 2,
                        transfer_syntax: SyntaxId::default(),
                    },
                ],
            };
            round_trip(fl, Body::BindAck(ack.clone()), auth);
            round_trip(fl, Body::AlterContextResp(ack), auth);
        }
        round_trip(fl, Body::Auth3, auth);
    }
    round_trip(
        fl | pfc::DID_NOT_EXECUTE,
        Body::Fault(Fault {
            alloc_hint: 0,
            context_id: 0,
            cancel_count: 0,
            flags: 0,
            status: status::ACCESS_DENIED,
        }),
        None,
    );
    round_trip(
        fl,
        Body::BindNak(BindNak {
            reason: reject_reason::AUTHENTICATION_TYPE_NOT_RECOGNIZED,
            versions: vec![(5, 0)],
        }),
        None,
    );
    for body in [Body::Shutdown, Body::CoCancel, Body::Orphaned] {
        round_trip(fl, body, None);
    }
}

#[test]
fn fault_is_32_bytes_and_bind_nak_may_stop_after_the_reason() {
    let f = Fault {
        alloc_hint: 0,
        context_id: 0,
        cancel_count: 0,
        flags: 0,
        status: status::SEC_PKG_ERROR,
    };
    assert_eq!(encode(3, 1, &Body::Fault(f), None).unwrap().len(), 32);
    let short = hex("05000d03 10000000 1200 0000 01000000 0800");
    assert_eq!(
        decode(&short).unwrap().body,
        Body::BindNak(BindNak {
            reason: 8,
            versions: vec![]
        })
    );
}

#[test]
fn refuses_what_it_cannot_read() {
    let good = encode(3, 1, &Body::Bind(wds_bind()), None).unwrap();
    let mut be = good.clone();
    be[4] = 0x00;
    assert!(matches!(decode(&be), Err(PduError::DataRepresentation { drep }) if drep[0] == 0));
    let mut ebcdic = good.clone();
    ebcdic[4] = 0x11;
    assert!(matches!(
        decode(&ebcdic),
        Err(PduError::DataRepresentation { .. })
    ));
    let mut minor = good.clone();
    minor[1] = 1;
    assert_eq!(
        decode(&minor),
        Err(PduError::Version { major: 5, minor: 1 })
    );
    let mut ping = good.clone();
    ping[2] = 1;
    assert_eq!(decode(&ping), Err(PduError::UnknownType(1)));
    // auth_length larger than the PDU.
    let mut auth = good.clone();
    auth[10..12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    assert!(matches!(decode(&auth), Err(PduError::AuthLength { .. })));
    // frag_length disagreeing with the bytes.
    assert!(matches!(
        decode(&good[..good.len() - 1]),
        Err(PduError::FragLength { .. })
    ));
    // 255 contexts announced, one present.
    let mut many = good.clone();
    many[24] = 255;
    assert!(matches!(decode(&many), Err(PduError::Malformed(_))));
    // auth_pad_length beyond the stub.
    let t = SecTrailer::new(auth_type::WINNT, auth_level::PKT_PRIVACY, 0);
    let req = Request {
        alloc_hint: 0,
        context_id: 0,
        opnum: 0,
        object: None,
        stub: &[1],
    };
    let mut pad = encode(3, 1, &Body::Request(req), Some((t, &[0; 16]))).unwrap();
    pad[40 + 2] = 200;
    assert!(matches!(
        decode(&pad),
        Err(PduError::AuthPadding { pad: 200, .. })
    ));
    // Every prefix of a valid PDU fails cleanly.
    for n in 0..good.len() {
        assert!(decode(&good[..n]).is_err());
    }
}
