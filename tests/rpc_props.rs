//! Property tests for the authenticated-initiation codecs: the WDSC packet and its INITIATE
//! layer, DCE/RPC PDUs, the stream framer, the NDR stubs, and a server connection fed
//! arbitrary bytes. No decoder panics on any input; encode → decode gives back the value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use wdsmc::rpc::client::{Client, ClientConfig, ClientEvent};
use wdsmc::rpc::frame::Framer;
use wdsmc::rpc::pdu::{
    self, Bind, BindAck, BindNak, Body, ContextElem, ContextResult, Fault, NDR, Request, Response,
    SecTrailer, SyntaxId, Uuid, WDS_INTERFACE, auth_level, pfc,
};
use wdsmc::rpc::server::{Server, ServerConfig, ServerEvent};
use wdsmc::rpc::stub::{self, EptMapResponse, Tower};
use wdsmc::wire::wdsc::{
    EndpointSize, InitiateOutcome, InitiateReply, InitiateRequest, MULTICAST_ENDPOINT_GUID, Value,
    Variable, WdscPacket, same_name,
};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:/._\\-é€]{1,40}"
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::Byte),
        any::<u16>().prop_map(Value::UShort),
        any::<u32>().prop_map(Value::ULong),
        any::<u64>().prop_map(Value::ULong64),
        vec(1u8..=255, 0..40).prop_map(Value::String),
        "[^\0]{0,30}".prop_map(Value::WString),
        vec(any::<u8>(), 0..70).prop_map(Value::Blob),
        (1u32..5, 1u32..4).prop_flat_map(|(len, n)| {
            vec(any::<u8>(), (len * n) as usize).prop_map(move |bytes| Value::Raw {
                var_type: 0x1000_0000 | 0x40,
                value_length: len,
                array_size: n,
                bytes,
            })
        }),
    ]
}

fn packet() -> impl Strategy<Value = WdscPacket> {
    (
        any::<[u8; 16]>(),
        any::<u8>(),
        any::<u32>(),
        vec(("[A-Za-z][A-Za-z0-9.]{0,31}", value()), 0..8),
    )
        .prop_map(|(endpoint, packet_type, op, vars)| {
            let mut variables: Vec<Variable> = Vec::new();
            for (name, value) in vars {
                if !variables.iter().any(|v| same_name(&v.name, &name)) {
                    variables.push(Variable { name, value });
                }
            }
            WdscPacket {
                endpoint,
                packet_type,
                opcode_or_error: op,
                variables,
            }
        })
}

fn reply() -> impl Strategy<Value = InitiateReply> {
    (
        (
            ip(),
            ip(),
            1u16..,
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
        ),
        (
            proptest::option::of(vec(any::<u8>(), 0..40)),
            proptest::option::of(vec(any::<u8>(), 0..40)),
            proptest::option::of(vec(any::<u8>(), 0..40)),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(vec(any::<u8>(), 0..28)),
        ),
    )
        .prop_map(
            |((mc, uni, port, sid, size, bs, tb), (md, sym, sign, h, hm, sm, us))| InitiateReply {
                multicast_addr: mc,
                server_addr: uni,
                port,
                session_id: sid,
                content_size: size,
                block_size: bs,
                total_blocks: tb,
                content_metadata: md,
                sym_key: sym,
                sign_key: sign,
                hash_alg_id: h,
                hmac_alg_id: hm,
                sec_mode: sm,
                user_sid: us,
            },
        )
}

fn syntax() -> impl Strategy<Value = SyntaxId> {
    (any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(|(u, version, minor)| SyntaxId {
        uuid: Uuid(u),
        version,
        minor,
    })
}

fn bind() -> impl Strategy<Value = Bind> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        vec((any::<u16>(), syntax(), vec(syntax(), 0..3)), 0..4),
    )
        .prop_map(|(x, r, a, ctxs)| Bind {
            max_xmit_frag: x,
            max_recv_frag: r,
            assoc_group_id: a,
            contexts: ctxs
                .into_iter()
                .map(|(id, abs, ts)| ContextElem {
                    context_id: id,
                    abstract_syntax: abs,
                    transfer_syntaxes: ts,
                })
                .collect(),
        })
}

fn bind_ack() -> impl Strategy<Value = BindAck> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        "[0-9]{0,6}",
        vec((any::<u16>(), any::<u16>(), syntax()), 0..4),
    )
        .prop_map(|(x, r, a, addr, results)| BindAck {
            max_xmit_frag: x,
            max_recv_frag: r,
            assoc_group_id: a,
            secondary_address: addr.into_bytes(),
            results: results
                .into_iter()
                .map(|(result, reason, transfer_syntax)| ContextResult {
                    result,
                    reason,
                    transfer_syntax,
                })
                .collect(),
        })
}

/// Owned inputs for a borrowed [`Body`].
#[derive(Debug, Clone)]
enum Spec {
    Request(u32, u16, u16, Option<[u8; 16]>, Vec<u8>),
    Response(u32, u16, Vec<u8>),
    Fault(u32, u16, u32),
    Bind(Bind),
    Alter(Bind),
    Ack(BindAck),
    AlterResp(BindAck),
    Nak(u16, Vec<(u8, u8)>),
    Auth3,
}

impl Spec {
    fn body(&self) -> Body<'_> {
        match self {
            Self::Request(a, c, o, obj, s) => Body::Request(Request {
                alloc_hint: *a,
                context_id: *c,
                opnum: *o,
                object: obj.map(Uuid),
                stub: s,
            }),
            Self::Response(a, c, s) => Body::Response(Response {
                alloc_hint: *a,
                context_id: *c,
                cancel_count: 0,
                stub: s,
            }),
            Self::Fault(a, c, status) => Body::Fault(Fault {
                alloc_hint: *a,
                context_id: *c,
                cancel_count: 0,
                flags: 0,
                status: *status,
            }),
            Self::Bind(b) => Body::Bind(b.clone()),
            Self::Alter(b) => Body::AlterContext(b.clone()),
            Self::Ack(a) => Body::BindAck(a.clone()),
            Self::AlterResp(a) => Body::AlterContextResp(a.clone()),
            Self::Nak(r, v) => Body::BindNak(BindNak {
                reason: *r,
                versions: v.clone(),
            }),
            Self::Auth3 => Body::Auth3,
        }
    }

    fn has_stub(&self) -> bool {
        matches!(self, Self::Request(..) | Self::Response(..))
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    let stub = || vec(any::<u8>(), 0..200);
    prop_oneof![
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            proptest::option::of(any::<[u8; 16]>()),
            stub()
        )
            .prop_map(|(a, c, o, obj, s)| Spec::Request(a, c, o, obj, s)),
        (any::<u32>(), any::<u16>(), stub()).prop_map(|(a, c, s)| Spec::Response(a, c, s)),
        (any::<u32>(), any::<u16>(), any::<u32>()).prop_map(|(a, c, s)| Spec::Fault(a, c, s)),
        bind().prop_map(Spec::Bind),
        bind().prop_map(Spec::Alter),
        bind_ack().prop_map(Spec::Ack),
        bind_ack().prop_map(Spec::AlterResp),
        (any::<u16>(), vec(any::<(u8, u8)>(), 0..4)).prop_map(|(r, v)| Spec::Nak(r, v)),
        Just(Spec::Auth3),
    ]
}

/// Arbitrary bytes behind a plausible header whose frag_length matches, so body parsers run.
fn with_header(ptype: u8, flags: u8, auth_len: u16, rest: &[u8]) -> Vec<u8> {
    let len = (16 + rest.len()) as u16;
    let mut out = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&auth_len.to_le_bytes());
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(rest);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wdsc_decoders_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = WdscPacket::decode(&bytes);
        let _ = InitiateRequest::decode(&bytes);
        let _ = InitiateOutcome::decode(&bytes);
    }

    #[test]
    fn wdsc_decoders_never_panic_behind_valid_headers(
        count in any::<u32>(),
        tail in vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, vec![]).encode().unwrap();
        let op = (16 + tail.len()) as u32;
        bytes[4..8].copy_from_slice(&op.to_le_bytes());
        bytes[40..44].copy_from_slice(&op.to_le_bytes());
        bytes[52..56].copy_from_slice(&(count % 8).to_le_bytes());
        bytes.extend_from_slice(&tail);
        let _ = WdscPacket::decode(&bytes);
        let _ = InitiateOutcome::decode(&bytes);
    }

    #[test]
    fn wdsc_packets_round_trip(p in packet(), whole in any::<bool>()) {
        let size = if whole { EndpointSize::Whole } else { EndpointSize::OperationOnly };
        let bytes = p.encode_with(size).unwrap();
        prop_assert_eq!(bytes.len() % 16, 8, "headers are 56 bytes, blocks multiples of 16");
        prop_assert_eq!(WdscPacket::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn initiate_request_round_trips(
        namespace in text(),
        content in text(),
        client in "[A-Za-z0-9\\-]{1,15}",
        cap in proptest::option::of(any::<u32>()),
    ) {
        let req = InitiateRequest { namespace, content, client, cap };
        let bytes = req.encode().unwrap();
        prop_assert_eq!(InitiateRequest::decode(&bytes).unwrap(), req);
    }

    #[test]
    fn initiate_reply_round_trips(r in reply()) {
        let bytes = r.encode();
        prop_assert_eq!(InitiateReply::decode(&bytes).unwrap(), r.clone());
        prop_assert_eq!(InitiateOutcome::decode(&bytes).unwrap(), InitiateOutcome::Session(r));
    }

    #[test]
    fn pdu_decode_never_panics(bytes in vec(any::<u8>(), 0..300)) {
        let _ = pdu::decode(&bytes);
    }

    #[test]
    fn pdu_decode_never_panics_behind_a_valid_header(
        ptype in 0u8..20,
        flags in any::<u8>(),
        auth_len in prop_oneof![Just(0u16), 0u16..64, any::<u16>()],
        rest in vec(any::<u8>(), 0..300),
    ) {
        let bytes = with_header(ptype, flags, auth_len, &rest);
        let _ = pdu::decode(&bytes);
    }

    #[test]
    fn pdus_round_trip(
        s in spec(),
        call_id in any::<u32>(),
        flags in any::<u8>(),
        auth in proptest::option::of((any::<u8>(), any::<u8>(), any::<u32>(), vec(any::<u8>(), 1..40))),
    ) {
        let body = s.body();
        // OBJECT_UUID follows the request's object, so leave it to the encoder.
        let flags = flags & !pfc::OBJECT_UUID;
        let trailer = auth.as_ref().map(|(t, l, c, v)| (SecTrailer::new(*t, *l, *c), &v[..]));
        let bytes = pdu::encode(flags, call_id, &body, trailer).unwrap();
        let decoded = pdu::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.header.call_id, call_id);
        prop_assert_eq!(usize::from(decoded.header.frag_len), bytes.len());
        match (&decoded.body, &body) {
            (Body::Request(a), Body::Request(b)) => {
                prop_assert_eq!(&a.stub[..b.stub.len()], b.stub);
                prop_assert_eq!((a.alloc_hint, a.context_id, a.opnum, a.object), (b.alloc_hint, b.context_id, b.opnum, b.object));
            }
            (Body::Response(a), Body::Response(b)) => {
                prop_assert_eq!(&a.stub[..b.stub.len()], b.stub);
                prop_assert_eq!((a.alloc_hint, a.context_id), (b.alloc_hint, b.context_id));
            }
            (a, b) => prop_assert_eq!(a, b),
        }
        match (decoded.auth, auth) {
            (None, None) => {}
            (Some(a), Some((t, l, c, v))) => {
                prop_assert_eq!(a.value, &v[..]);
                prop_assert_eq!((a.trailer.auth_type, a.trailer.auth_level, a.trailer.context_id), (t, l, c));
                if s.has_stub() {
                    let stub_len = decoded.trailer_offset.unwrap() - decoded.stub_offset;
                    prop_assert_eq!(stub_len % 16, 0, "stub padded to 16");
                }
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn framer_never_panics_and_stays_bounded(
        bytes in vec(any::<u8>(), 0..2000),
        cuts in vec(any::<usize>(), 0..8),
        max in 16u16..300,
    ) {
        let mut f = Framer::new(max);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            let mut input = &bytes[start..end];
            start = end;
            while !input.is_empty() {
                match f.feed(&mut input) {
                    Ok(Some(p)) => prop_assert!(p.len() <= usize::from(max) && p.len() >= 16),
                    Ok(None) => {}
                    Err(_) => break,
                }
                prop_assert!(f.buffered() <= usize::from(max).max(16));
            }
        }
    }

    #[test]
    fn framer_reassembles_pdus_split_anywhere(
        specs in vec(spec(), 1..6),
        cuts in vec(any::<usize>(), 0..10),
    ) {
        let pdus: Vec<Vec<u8>> = specs
            .iter()
            .map(|s| pdu::encode(3, 1, &s.body(), None).unwrap())
            .collect();
        let stream = pdus.concat();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut f = Framer::new(u16::MAX);
        let mut got = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain([stream.len()]) {
            let mut input = &stream[start..end];
            start = end;
            while !input.is_empty() {
                if let Some(p) = f.feed(&mut input).unwrap() {
                    got.push(p);
                }
            }
        }
        prop_assert_eq!(got, pdus);
    }

    #[test]
    fn stub_decoders_never_panic(bytes in vec(any::<u8>(), 0..400)) {
        let _ = stub::decode_message_request(&bytes);
        let _ = stub::decode_message_response(&bytes);
        let _ = EptMapResponse::decode(&bytes);
        let _ = Tower::decode(&bytes);
    }

    #[test]
    fn stubs_round_trip(
        packet in vec(any::<u8>(), 0..300),
        present in any::<bool>(),
        status in any::<u32>(),
        ports in vec((any::<u16>(), any::<[u8; 4]>()), 0..4),
    ) {
        let req = stub::encode_message_request(&packet).unwrap();
        prop_assert_eq!(stub::decode_message_request(&req).unwrap(), &packet[..]);
        let reply = present.then_some(&packet[..]);
        let resp = stub::encode_message_response(reply, status).unwrap();
        let decoded = stub::decode_message_response(&resp).unwrap();
        prop_assert_eq!(decoded.packet, reply);
        prop_assert_eq!(decoded.status, status);
        let epm = EptMapResponse {
            entry_handle: [0; 20],
            towers: ports
                .iter()
                .map(|(p, ip)| Tower::tcp(&WDS_INTERFACE, *p, Ipv4Addr::from(*ip)))
                .collect(),
            status: 0,
        };
        let decoded = EptMapResponse::decode(&epm.encode(4)).unwrap();
        prop_assert_eq!(decoded.tcp_port(&WDS_INTERFACE), ports.first().map(|p| p.0));
        prop_assert_eq!(decoded, epm);
    }

    #[test]
    fn server_connection_survives_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..1500),
        cuts in vec(any::<usize>(), 0..6),
        bind_first in any::<bool>(),
    ) {
        let mut s = Server::new(
            ServerConfig {
                allow_unauthenticated: true,
                max_request_size: 4096,
                max_fragments: 16,
                ..ServerConfig::default()
            },
            None,
        );
        if bind_first {
            let bind = Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                contexts: vec![ContextElem {
                    context_id: 0,
                    abstract_syntax: WDS_INTERFACE,
                    transfer_syntaxes: vec![NDR],
                }],
            };
            s.handle_bytes(&pdu::encode(3, 1, &Body::Bind(bind), None).unwrap());
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            s.handle_bytes(&bytes[start..end]);
            start = end;
            while let Some(ev) = s.poll_event() {
                if let ServerEvent::Request { call_id, stub, .. } = ev {
                    prop_assert!(stub.len() <= 4096);
                    let _ = s.respond(call_id, &stub);
                }
            }
            while let Some(out) = s.poll_transmit() {
                prop_assert!(pdu::decode(&out).is_ok(), "the server only sends valid PDUs");
            }
        }
        s.handle_eof();
    }

    #[test]
    fn client_connection_survives_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..1500),
        cuts in vec(any::<usize>(), 0..6),
        bound in any::<bool>(),
    ) {
        let config = ClientConfig {
            auth_level: auth_level::NONE,
            max_response_size: 4096,
            max_fragments: 16,
            ..ClientConfig::default()
        };
        let mut c = Client::new(config, None).unwrap();
        let mut s = Server::new(
            ServerConfig { allow_unauthenticated: true, ..ServerConfig::default() },
            None,
        );
        if bound {
            while let Some(b) = c.poll_transmit() {
                s.handle_bytes(&b);
            }
            while let Some(b) = s.poll_transmit() {
                c.handle_bytes(&b);
            }
        }
        let _ = c.call(0, b"call");
        while c.poll_transmit().is_some() {}
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            c.handle_bytes(&bytes[start..end]);
            start = end;
            while let Some(ev) = c.poll_event() {
                if let ClientEvent::Response { stub, .. } = ev {
                    prop_assert!(stub.len() <= 4096);
                }
            }
            while let Some(out) = c.poll_transmit() {
                prop_assert!(pdu::decode(&out).is_ok(), "the client only sends valid PDUs");
            }
        }
        c.handle_eof();
    }
}
