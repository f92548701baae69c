use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

use crate::test_util::hex;

const SYM_KEY_4_1: &str =
    "0802000003660000180000002F15F82AE0683EF79E6D62A70BDC519D2A3246E0FDB354E9";
const USER_SID_4_1: &str = "0105000000000005150000006BE79ECE8F2C9599DC2F39DCF4010000";

/// The MS-WDSMSI 4.1 reply variables, in the order the example prints them (`SymKey` twice).
fn reply_4_1_variables() -> Vec<Variable> {
    vec![
        Variable::new(name::MC_PORT, Value::ULong(0x0000_FA84)),
        Variable::new(name::MC_ADDRESS, Value::Blob(hex("EF00006F"))),
        Variable::new(name::UNI_PORT, Value::ULong(0x0000_FA84)),
        Variable::new(name::UNI_ADDRESS, Value::Blob(hex("C0A800C8"))),
        Variable::new(name::CONTENT_SIZE, Value::ULong64(0x0000_0000_EF8B_56EC)),
        Variable::new(name::TOTAL_BLOCKS, Value::ULong64(0x6FB00)),
        Variable::new(name::BLOCK_SIZE, Value::ULong(0x0000_2251)),
        Variable::new(name::SESSION_ID, Value::ULong(0x6D19_EE7E)),
        Variable::new(name::SYM_KEY, Value::Blob(hex(SYM_KEY_4_1))),
        Variable::new(name::SYM_KEY, Value::Blob(hex(SYM_KEY_4_1))),
        Variable::new(name::USER_SID, Value::Blob(hex(USER_SID_4_1))),
        Variable::new(name::HMAC_ALG_ID, Value::ULong(0x0000_8009)),
        Variable::new(name::HASH_ALG_ID, Value::ULong(0x0000_800C)),
        Variable::new(name::SEC_MODE, Value::ULong(0x0001_0001)),
    ]
}

fn reply_4_1_packet() -> WdscPacket {
    WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, reply_4_1_variables())
}

#[test]
fn guid_is_in_packet_byte_order() {
    assert_eq!(
        MULTICAST_ENDPOINT_GUID.to_vec(),
        hex("17a3136f8736544b81a5504daa9062fa")
    );
}

#[test]
fn example_4_1_request_encodes_to_the_expected_layout() {
    let req = InitiateRequest {
        namespace: "WDS:default/install.wim/1".into(),
        content: "install.wim".into(),
        client: "TestMachine".into(),
        cap: Some(cap::CHECKSUM | cap::IPV6),
    };
    let bytes = req.encode().unwrap();
    // Blocks by hand: Namespace 80+52 -> 144, Content 80+24 -> 112, Client 80+24 -> 112,
    // Cap 80+4 -> 96; variables 464, operation 480, whole 520.
    assert_eq!(bytes.len(), 520);
    let mut expected = hex("28000001e0010000");
    expected.extend_from_slice(&MULTICAST_ENDPOINT_GUID);
    expected.extend_from_slice(&[0; 16]);
    expected.extend_from_slice(&hex(
        "e00100000001010006000000", /* size, ver, type, op */
    ));
    expected.extend_from_slice(&hex("04000000"));
    assert_eq!(&bytes[..56], &expected[..]);
    // First block: "Namespace" in UTF-16LE, NUL-filled to 66 bytes, 2 padding bytes, WSTRING,
    // 52 value bytes (25 characters + NUL), Array-Size 0.
    let block = &bytes[56..56 + 144];
    let name: Vec<u8> = "Namespace"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(&block[..18], &name[..]);
    assert!(block[18..68].iter().all(|&b| b == 0));
    assert_eq!(&block[68..80], &hex("200000003400000000000000")[..]);
    assert_eq!(&block[80..82], b"W\0");
    assert_eq!(&block[130..132], &[0, 0], "terminating NUL");
    assert!(block[132..].iter().all(|&b| b == 0), "padding");
    // Cap is last: ULONG 3.
    let cap_block = &bytes[520 - 96..];
    assert_eq!(
        &cap_block[68..84],
        &hex("04000000040000000000000003000000")[..]
    );

    assert_eq!(InitiateRequest::decode(&bytes).unwrap(), req);
}

#[test]
fn example_4_1_reply_decodes() {
    let bytes = reply_4_1_packet().encode().unwrap();
    let reply = InitiateReply::decode(&bytes).unwrap();
    assert_eq!(reply.port, 64132);
    assert_eq!(
        reply.multicast_addr,
        IpAddr::V4(Ipv4Addr::new(239, 0, 0, 111))
    );
    assert_eq!(
        reply.server_addr,
        IpAddr::V4(Ipv4Addr::new(192, 168, 0, 200))
    );
    assert_eq!(reply.content_size, 4_018_886_380);
    assert_eq!(reply.total_blocks, 457_472);
    assert_eq!(reply.block_size, 8785);
    assert_eq!(reply.session_id, 1_830_415_998);
    assert_eq!(reply.sym_key, Some(hex(SYM_KEY_4_1)));
    assert_eq!(reply.user_sid, Some(hex(USER_SID_4_1)));
    assert_eq!(reply.hmac_alg_id, Some(0x8009));
    assert_eq!(reply.hash_alg_id, Some(0x800C));
    assert_eq!(reply.sec_mode, Some(0x0001_0001));
    assert_eq!(reply.content_metadata, None);
    assert_eq!(reply.sign_key, None);
    reply.session().check_consistency().unwrap();
    // The exact duplicate collapses to one variable.
    let packet = WdscPacket::decode(&bytes).unwrap();
    assert_eq!(packet.variables.len(), 13);
}

#[test]
fn reply_round_trips_with_ipv6_and_every_optional_variable() {
    let reply = InitiateReply {
        multicast_addr: IpAddr::V6(Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0, 0x77)),
        server_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        port: 9000,
        session_id: 7,
        content_size: 10,
        block_size: 4,
        total_blocks: 3,
        content_metadata: Some(Vec::new()),
        sym_key: Some(vec![1; 36]),
        sign_key: Some(vec![2; 148]),
        hash_alg_id: Some(0x800C),
        hmac_alg_id: Some(0x8009),
        sec_mode: Some(0x0002_0001),
        user_sid: Some(vec![1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]),
    };
    let bytes = reply.encode();
    assert_eq!(InitiateReply::decode(&bytes).unwrap(), reply);
    assert_eq!(
        InitiateOutcome::decode(&bytes).unwrap(),
        InitiateOutcome::Session(reply)
    );
}

#[test]
fn both_packet_size_forms_decode_the_same() {
    let packet = reply_4_1_packet();
    let short = packet.encode_with(EndpointSize::OperationOnly).unwrap();
    let whole = packet.encode_with(EndpointSize::Whole).unwrap();
    assert_eq!(
        u32::from_le_bytes(short[4..8].try_into().unwrap()) as usize,
        short.len() - 40
    );
    assert_eq!(
        u32::from_le_bytes(whole[4..8].try_into().unwrap()) as usize,
        whole.len()
    );
    assert_eq!(
        WdscPacket::decode(&short).unwrap(),
        WdscPacket::decode(&whole).unwrap()
    );
    let mut wrong = short.clone();
    wrong[4..8].copy_from_slice(&17u32.to_le_bytes());
    assert!(matches!(
        WdscPacket::decode(&wrong).unwrap_err().kind,
        DecodeErrorKind::LengthMismatch { .. }
    ));
}

/// Rebuilds a packet from separately encoded blocks with `gap` zero bytes after each.
fn with_gaps(vars: &[Variable], gap: usize) -> Vec<u8> {
    let mut section = Vec::new();
    for var in vars {
        super::encode_variable(var, &mut section).unwrap();
        section.resize(section.len() + gap, 0);
    }
    let mut out = WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, Vec::new())
        .encode()
        .unwrap();
    let op_size = (16 + section.len()) as u32;
    out[4..8].copy_from_slice(&op_size.to_le_bytes());
    out[40..44].copy_from_slice(&op_size.to_le_bytes());
    out[52..56].copy_from_slice(&(vars.len() as u32).to_le_bytes());
    out.extend_from_slice(&section);
    out
}

#[test]
fn extra_zero_padding_chunks_are_skipped() {
    let vars = reply_4_1_variables();
    let plain = InitiateReply::decode(&with_gaps(&vars, 0)).unwrap();
    assert_eq!(InitiateReply::decode(&with_gaps(&vars, 16)).unwrap(), plain);
    assert_eq!(InitiateReply::decode(&with_gaps(&vars, 48)).unwrap(), plain);
}

#[test]
fn padding_follows_the_observed_rule() {
    let block_len = |value: Value| {
        let mut out = Vec::new();
        super::encode_variable(&Variable::new("X", value), &mut out).unwrap();
        out.len()
    };
    assert_eq!(block_len(Value::ULong(1)), 96);
    assert_eq!(block_len(Value::ULong64(1)), 96);
    assert_eq!(block_len(Value::Byte(1)), 96);
    // Already aligned: a full 16 more.
    assert_eq!(block_len(Value::Blob(Vec::new())), 96);
    assert_eq!(block_len(Value::Blob(vec![0; 16])), 112);
    // A variable type left with fewer than 4 padding bytes gets 16 more.
    assert_eq!(block_len(Value::WString("abcdef".into())), 112); // 14 bytes, pad 2 + 16
    assert_eq!(block_len(Value::Blob(vec![0; 12])), 96); // pad 4: no extra
    assert_eq!(block_len(Value::Blob(vec![0; 13])), 112); // pad 3 + 16
    assert_eq!(block_len(Value::String(b"abc".to_vec())), 96);
}

#[test]
fn unknown_variables_are_skipped_and_names_are_case_insensitive() {
    let mut vars = reply_4_1_variables();
    vars.insert(3, Variable::new("FutureThing", Value::Blob(vec![9; 40])));
    vars.insert(
        0,
        Variable::new(
            "SomeArray",
            Value::Raw {
                var_type: u32::from(var_type::ARRAY) << 16 | u32::from(var_type::ULONG),
                value_length: 4,
                array_size: 3,
                bytes: vec![1; 12],
            },
        ),
    );
    for v in &mut vars {
        v.name = v.name.to_ascii_lowercase();
    }
    let bytes = WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, vars.clone())
        .encode()
        .unwrap();
    let reply = InitiateReply::decode(&bytes).unwrap();
    assert_eq!(reply.port, 64132);
    let packet = WdscPacket::decode(&bytes).unwrap();
    assert_eq!(packet.get("SOMEARRAY"), Some(&vars[0].value));
    assert_eq!(packet.get("futurething"), Some(&Value::Blob(vec![9; 40])));
}

#[test]
fn array_modifier_in_the_low_half_is_recognised() {
    let var = Variable::new(
        "LowArray",
        Value::Raw {
            var_type: u32::from(var_type::ARRAY | var_type::BYTE),
            value_length: 1,
            array_size: 5,
            bytes: vec![1, 2, 3, 4, 5],
        },
    );
    let bytes = WdscPacket::request([0; 16], 1, vec![var.clone()])
        .encode()
        .unwrap();
    assert_eq!(WdscPacket::decode(&bytes).unwrap().variables, vec![var]);
}

#[test]
fn a_duplicate_with_another_value_is_refused() {
    let mut vars = reply_4_1_variables();
    vars.push(Variable::new("sessionid", Value::ULong(1)));
    let bytes = WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, vars)
        .encode()
        .unwrap();
    let err = WdscPacket::decode(&bytes).unwrap_err();
    assert!(
        matches!(&err.kind, DecodeErrorKind::DuplicateVariable { name } if name == "sessionid"),
        "{err}"
    );
}

#[test]
fn error_replies_are_reported() {
    for code in [
        error_code::NAMESPACE_NOT_FOUND,
        error_code::CONTENT_NOT_FOUND,
        error_code::SECURITY_MODE_NOT_SUPPORTED,
    ] {
        let bytes = encode_error_reply(code);
        assert_eq!(
            InitiateOutcome::decode(&bytes).unwrap(),
            InitiateOutcome::Failed { code }
        );
        assert!(InitiateReply::decode(&bytes).is_err());
    }
    assert_eq!(error_code::NAMESPACE_NOT_FOUND, 0xC121_0105);
    assert_eq!(error_code::CONTENT_NOT_FOUND, 0xC121_0103);
    assert_eq!(error_code::SECURITY_MODE_NOT_SUPPORTED, 0xC121_0110);
}

#[test]
fn reply_checks() {
    let decode_with = |edit: &dyn Fn(&mut Vec<Variable>)| {
        let mut vars = reply_4_1_variables();
        edit(&mut vars);
        let bytes = WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, vars)
            .encode()
            .unwrap();
        InitiateReply::decode(&bytes)
    };
    let err = decode_with(&|v| v[2].value = Value::ULong(1)).unwrap_err();
    assert_eq!(err.field, name::UNI_PORT);
    let err = decode_with(&|v| v[1].value = Value::Blob(vec![1, 2, 3, 4, 5])).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidValue { value: 5 });
    let err = decode_with(&|v| v[0].value = Value::ULong(70000)).unwrap_err();
    assert_eq!(err.field, name::MC_PORT);
    let err = decode_with(&|v| {
        v.remove(7);
    })
    .unwrap_err();
    assert_eq!(
        err.kind,
        DecodeErrorKind::MissingVariable {
            name: name::SESSION_ID
        }
    );
    let err = decode_with(&|v| v[7].value = Value::ULong64(1)).unwrap_err();
    assert_eq!(err.field, name::SESSION_ID);
    // A reply from another endpoint is not ours.
    let mut packet = reply_4_1_packet();
    packet.endpoint[0] ^= 1;
    assert_eq!(
        InitiateReply::decode(&packet.encode().unwrap())
            .unwrap_err()
            .field,
        "Endpoint-GUID"
    );
}

#[test]
fn request_validation() {
    let ok = InitiateRequest {
        namespace: "WDS:g/i.wim/1".into(),
        content: "i.wim".into(),
        client: "A23456789012345".into(),
        cap: None,
    };
    ok.validate().unwrap();
    let mut long = ok.clone();
    long.client.push('6');
    assert_eq!(
        long.encode().unwrap_err(),
        InitiateError::ClientTooLong { units: 16 }
    );
    let mut nul = ok.clone();
    nul.content = "a\0b".into();
    assert_eq!(
        nul.encode().unwrap_err(),
        InitiateError::Nul { field: "content" }
    );
    let mut empty = ok;
    empty.namespace.clear();
    assert!(matches!(
        empty.encode().unwrap_err(),
        InitiateError::Empty { .. }
    ));
    // The generic encoder refuses names that do not fit the 66-byte field.
    let long_name = WdscPacket::request(
        [0; 16],
        1,
        vec![Variable::new(&"n".repeat(33), Value::Byte(0))],
    );
    assert!(matches!(
        long_name.encode().unwrap_err(),
        WdscEncodeError::BadName { .. }
    ));
    let fits = WdscPacket::request(
        [0; 16],
        1,
        vec![Variable::new(&"n".repeat(32), Value::Byte(0))],
    );
    assert_eq!(WdscPacket::decode(&fits.encode().unwrap()).unwrap(), fits);
}

#[test]
fn hostile_lengths_are_refused_without_allocation() {
    let good = reply_4_1_packet().encode().unwrap();
    // Every prefix fails cleanly (or decodes, for prefixes that still hold a whole packet).
    for n in 0..good.len() {
        let _ = WdscPacket::decode(&good[..n]);
        let _ = InitiateReply::decode(&good[..n]);
    }
    // Variable-Count far beyond the bytes present.
    let mut bad = good.clone();
    bad[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        WdscPacket::decode(&bad).unwrap_err().kind,
        DecodeErrorKind::Truncated { .. }
    ));
    // Value-Length of 4 GiB in the first block.
    let mut bad = good.clone();
    bad[56 + 72..56 + 76].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(WdscPacket::decode(&bad).is_err());
    // Array-Size × Value-Length overflowing, and an empty array.
    let mut bad = good.clone();
    bad[56 + 68..56 + 72].copy_from_slice(&0x1000_0004u32.to_le_bytes());
    bad[56 + 72..56 + 80].copy_from_slice(&[0xff; 8]);
    assert!(WdscPacket::decode(&bad).is_err());
    bad[56 + 76..56 + 80].copy_from_slice(&0u32.to_le_bytes());
    assert!(WdscPacket::decode(&bad).is_err());
    // A name without its NUL.
    let mut bad = good.clone();
    bad[56..56 + 66].fill(b'A');
    assert!(WdscPacket::decode(&bad).is_err());
    // Operation Packet-Size larger than the packet.
    let mut bad = good;
    bad[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(WdscPacket::decode(&bad).is_err());
}
