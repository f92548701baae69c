use super::*;
use crate::rpc::pdu::{EPM_INTERFACE, WDS_INTERFACE};

#[test]
fn message_request_layout_and_round_trip() {
    let stub = encode_message_request(&[0xAA; 3]).unwrap();
    assert_eq!(stub, [3, 0, 0, 0, 3, 0, 0, 0, 0xAA, 0xAA, 0xAA]);
    assert_eq!(decode_message_request(&stub).unwrap(), &[0xAA; 3]);
    // NDR alignment padding after the array is fine.
    let padded = [&stub[..], &[0]].concat();
    assert_eq!(decode_message_request(&padded).unwrap(), &[0xAA; 3]);
}

#[test]
fn message_request_tolerates_a_verification_trailer() {
    let mut stub = encode_message_request(&[1, 2, 3, 4, 5]).unwrap();
    stub.resize(16, 0); // 13 bytes, padded to 4
    stub.extend_from_slice(&VERIFICATION_TRAILER_SIGNATURE);
    // rpc_sec_vt_bitmask, marked as the last command.
    stub.extend_from_slice(&[0x01, 0x40, 0x04, 0x00, 0x01, 0, 0, 0]);
    assert_eq!(decode_message_request(&stub).unwrap(), &[1, 2, 3, 4, 5]);

    // A command the server must process but does not know is refused.
    let mut must = stub[..24].to_vec();
    must.extend_from_slice(&[0x07, 0xC0, 0x00, 0x00]);
    assert!(decode_message_request(&must).is_err());
    // Garbage that is not a trailer is refused.
    let mut junk = encode_message_request(&[1]).unwrap();
    junk.extend_from_slice(&[0, 0, 0, 9, 9, 9, 9, 9]);
    assert!(decode_message_request(&junk).is_err());
    // A command length running off the end is refused.
    let mut long = stub[..24].to_vec();
    long.extend_from_slice(&[0x01, 0x40, 0xFF, 0xFF]);
    assert!(decode_message_request(&long).is_err());
}

#[test]
fn message_request_refuses_inconsistent_sizes() {
    let mut stub = encode_message_request(&[1, 2]).unwrap();
    stub[4] = 3;
    assert!(decode_message_request(&stub).is_err());
    let huge = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1];
    assert!(decode_message_request(&huge).is_err());
    for n in 0..8 {
        assert!(decode_message_request(&stub[..n]).is_err());
    }
}

#[test]
fn message_response_layouts() {
    let stub = encode_message_response(Some(&[7; 5]), 0).unwrap();
    let mut expected = vec![5, 0, 0, 0, 0, 0, 2, 0, 5, 0, 0, 0, 7, 7, 7, 7, 7, 0, 0, 0];
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(stub, expected);
    assert_eq!(
        decode_message_response(&stub).unwrap(),
        MessageReply {
            packet: Some(&[7; 5]),
            status: 0
        }
    );
    let null = encode_message_response(None, 5).unwrap();
    assert_eq!(null, [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(
        decode_message_response(&null).unwrap(),
        MessageReply {
            packet: None,
            status: 5
        }
    );
    let mut bad = stub.clone();
    bad[8] = 6;
    assert!(decode_message_response(&bad).is_err());
    for n in 0..stub.len() {
        assert!(decode_message_response(&stub[..n]).is_err());
    }
}

#[test]
fn ept_map_request_carries_the_five_floor_tower() {
    let stub = encode_ept_map_request(&WDS_INTERFACE, 4);
    // obj pointer + UUID, tower pointer, conformance, length, 75-byte tower, 1 pad,
    // context handle, max_towers.
    assert_eq!(stub.len(), 4 + 16 + 4 + 4 + 4 + 75 + 1 + 20 + 4);
    assert_eq!(&stub[24..32], &[75, 0, 0, 0, 75, 0, 0, 0]);
    let tower = Tower::decode(&stub[32..32 + 75]).unwrap();
    assert_eq!(tower.floors.len(), 5);
    assert_eq!(tower.floors[0].lhs.len(), 19);
    assert_eq!(tower.interface(), Some(WDS_INTERFACE));
    assert_eq!(tower.tcp_port(), Some(0));
    assert_eq!(&stub[stub.len() - 4..], &[4, 0, 0, 0]);
    // Floor bytes by hand: port and address are big-endian inside their floors.
    let t = Tower::tcp(&EPM_INTERFACE, 0x1234, Ipv4Addr::new(10, 0, 0, 1)).encode();
    assert_eq!(
        &t[t.len() - 16..],
        &[1, 0, 7, 2, 0, 0x12, 0x34, 1, 0, 9, 4, 0, 10, 0, 0, 1]
    );
}

#[test]
fn ept_map_response_gives_the_port() {
    let resp = EptMapResponse {
        entry_handle: [0; 20],
        towers: vec![
            Tower::tcp(&EPM_INTERFACE, 135, Ipv4Addr::new(10, 0, 0, 1)),
            Tower::tcp(&WDS_INTERFACE, 5040, Ipv4Addr::new(10, 0, 0, 1)),
        ],
        status: 0,
    };
    let stub = resp.encode(4);
    let decoded = EptMapResponse::decode(&stub).unwrap();
    assert_eq!(decoded, resp);
    assert_eq!(decoded.tcp_port(&WDS_INTERFACE), Some(5040));
    assert_eq!(decoded.towers[1].ipv4(), Some(Ipv4Addr::new(10, 0, 0, 1)));
    let none = EptMapResponse {
        entry_handle: [0; 20],
        towers: vec![],
        status: EPT_S_NOT_REGISTERED,
    };
    let decoded = EptMapResponse::decode(&none.encode(4)).unwrap();
    assert_eq!(decoded.tcp_port(&WDS_INTERFACE), None);
    for n in 0..stub.len() {
        assert!(EptMapResponse::decode(&stub[..n]).is_err());
    }
}

#[test]
fn ept_map_response_bounds() {
    let resp = EptMapResponse {
        entry_handle: [0; 20],
        towers: vec![Tower::tcp(&WDS_INTERFACE, 5040, Ipv4Addr::LOCALHOST)],
        status: 0,
    };
    let good = resp.encode(1);
    // actual_count far beyond the bytes (and beyond max_count).
    let mut bad = good.clone();
    bad[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    bad[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    bad[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(EptMapResponse::decode(&bad).is_err());
    // tower_length over the MS-RPCE limit.
    let mut bad = good.clone();
    bad[40..44].copy_from_slice(&3000u32.to_le_bytes());
    bad[44..48].copy_from_slice(&3000u32.to_le_bytes());
    assert!(EptMapResponse::decode(&bad).is_err());
    // A tower announcing more floors than it holds.
    let mut t = Tower::tcp(&WDS_INTERFACE, 1, Ipv4Addr::LOCALHOST).encode();
    t[0] = 200;
    assert!(Tower::decode(&t).is_err());
}
