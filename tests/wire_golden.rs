//! Golden byte vectors for every packet family, written from the specification field tables
//! (MS-WDSMSI §2.2.2, MS-WDSMT §2.2, MS-WDSMA §2.2) independently of the encoder, with
//! checksums summed by hand. Each vector must decode to the listed values and the values must
//! encode back to the same bytes.

use std::net::{IpAddr, Ipv4Addr};

use wdsmc::wire::ma::{BlockRange, CntCir, DataBlock, MaPacket, Progress};
use wdsmc::wire::msi::{MsiPacket, MsiReply, MsiRequest, error_code};
use wdsmc::wire::mt::{
    Ack, Body, DataPacket, Demote, Join, JoinAck, Kick, KickReason, Leave, LeaveReason, Nack, Ncf,
    Packet, Poll, PollAck, Qcc, Qcr, Security, SeqRange, Spm, checksum,
};
use wdsmc::wire::{DecodeError, DecodeErrorKind};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SESSION: u32 = 0x6D19_EE7E;

const MSI_REQUEST: &str = "010003060100345700440053003a00640065006600610075006c0074002f0069006e007300740061006c006c002e00770069006d002f00310000000602001869006e007300740061006c006c002e00770069006d000000050c000600155d010203";
const MSI_REQUEST_V6: &str = "010004060100345700440053003a00640065006600610075006c0074002f0069006e007300740061006c006c002e00770069006d002f00310000000602001869006e007300740061006c006c002e00770069006d000000050c000600155d010203010d000101";
const MSI_REPLY: &str = "02000805030004ef00006f05040004c0a800c802050002fa8402060002fa840407000800000000ef8b56ec030900040000225104080008000000000006fb00030a00046d19ee7e";
const MSI_ERROR: &str = "020001030b0004c1210105";
const JOIN: &str = "5744030004fffff8676d19ee7e02000000000000123454004500530054004d0041004300480049004e0045000000000000000000000004c0a800320600155d01020300010505000101";
const JOINACK: &str =
    "5744030004fffffd556d19ee7e030000000000000055000000070002000c00050000000000001234";
const QCR_PROGRESS: &str = "5744030004fffff7e96d19ee7e0500000000000012340000000700000000000000030078000000000000009900000000000003e80008e1bc9bf0400000080008040000002a25";
const SPM: &str = "5744030004fffffc606d19ee7e010000000000000077000000000000000900000007000a000e000000000000006400000000000000a40005";
const ODATA: &str = "5744030004fffffb916d19ee7e0600000000000000780000000700000000000000a40000000000000064001d001d03000000000000002a0010000102030405060708090a0b0c0d0e0f";
const ODATA_FWLEAD: &str = "5744030004fffffad46d19ee7e0600000000000000780000000700000000000000a40000000000000064001d001d03000000000000002a0010000102030405060708090a0b0c0d0e0f00010406000800000000000000aa";
const NACK: &str = "5744030004fffff8fc6d19ee7e0900000000000012340000000700000000000000aa00005af3107a400000020000000000000065000000000000006700000000000000960000000000000096";
const POLL: &str = "5744030004fffffcae6d19ee7e0c0000000000000080000000000000000400c80003000301";
const POLLACK: &str = "5744030004fffffcc86d19ee7e0d0000000000001234000000070000000000000004002a002a02320000002a00020000000000000001000000000000000a00000000000000140000000000000014";
const LEAVE: &str = "5744030004fffffdbb6d19ee7e0b00000000000012340000000100";
const KICK: &str = "5744030004fffffd5a6d19ee7e0e0000000000000090000200000007010000000902";
const NCF: &str =
    "5744030004fffffca56d19ee7e0a0000000000000091000100000000000000650000000000000067";
const QCC: &str = "5744030004fffffc7a6d19ee7e040000000000000092000000000000000300fa";
const ACK: &str = "5744030004fffffbf96d19ee7e0800000000000012340000000700000000000000a3000000000000007800000000000000a40000000000000000";
const DEMOTE: &str = "5744030004fffff87a6d19ee7e0f00000000000000930000111104efff4d02fa02047f000001fa0200020000000700000009";

fn mt(session_id: u32, sender_time: u64, body: Body<'_>) -> Packet<'_> {
    Packet {
        security: Security::Checksum,
        session_id,
        sender_time,
        body,
    }
}

fn assert_mt(vector: &str, expected: Packet<'_>) {
    let bytes = hex(vector);
    let decoded = Packet::decode(&bytes).expect("golden vector decodes");
    assert_eq!(decoded, expected);
    assert_eq!(
        expected.encode(),
        bytes,
        "encoding differs from the golden vector"
    );
}

#[test]
fn checksum_by_hand() {
    // LEAVE covers 6d 19 ee 7e | 0b | 00..00 12 34 | 00 00 00 01 | 00:
    // 0x6d+0x19+0xee+0x7e+0x0b+0x12+0x34+0x01 = 109+25+238+126+11+18+52+1 = 580 = 0x244,
    // inverted: 0xFFFFFDBB.
    let bytes = hex(LEAVE);
    assert_eq!(&bytes[5..9], &[0xff, 0xff, 0xfd, 0xbb]);
    assert_eq!(checksum(&bytes[9..]), 0xFFFF_FDBB);
    // The self-derived JOIN vector above carries 0xFFFFF867.
    assert_eq!(&hex(JOIN)[5..9], &[0xff, 0xff, 0xf8, 0x67]);
    // Empty input: !0.
    assert_eq!(checksum(&[]), 0xFFFF_FFFF);
    // Sum wraps at 2^32 rather than saturating.
    assert_eq!(checksum(&[0xff; 4]), !(4 * 0xff));
}

#[test]
fn msi_request() {
    let req = MsiRequest {
        namespace: "WDS:default/install.wim/1".into(),
        content: "install.wim".into(),
        mac_address: vec![0x00, 0x15, 0x5d, 0x01, 0x02, 0x03],
        ipv6_capable: None,
    };
    let bytes = hex(MSI_REQUEST);
    assert_eq!(bytes.len(), 97);
    assert_eq!(
        MsiPacket::decode(&bytes).unwrap(),
        MsiPacket::Request(req.clone())
    );
    assert_eq!(MsiPacket::Request(req.clone()).encode(), bytes);

    let v6 = MsiRequest {
        ipv6_capable: Some(true),
        ..req
    };
    assert_eq!(
        MsiPacket::decode(&hex(MSI_REQUEST_V6)).unwrap(),
        MsiPacket::Request(v6.clone())
    );
    assert_eq!(MsiPacket::Request(v6).encode(), hex(MSI_REQUEST_V6));
}

/// MS-WDSMSI §4.1: the specification's only example, carried over UDP.
#[test]
fn msi_reply_from_spec_example() {
    let reply = MsiReply {
        multicast_addr: IpAddr::V4(Ipv4Addr::new(239, 0, 0, 111)),
        server_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 200)),
        multicast_port: 64132,
        server_port: 64132,
        content_size: 4_018_886_380,
        block_size: 8785,
        total_blocks: 457_472,
        session_id: 0x6D19_EE7E,
    };
    let bytes = hex(MSI_REPLY);
    let MsiPacket::Reply(decoded) = MsiPacket::decode(&bytes).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(decoded, reply);
    assert_eq!(
        decoded.total_blocks,
        decoded.content_size.div_ceil(decoded.block_size.into())
    );
    decoded.check_consistency().unwrap();
    assert_eq!(MsiPacket::Reply(reply).encode(), bytes);
}

#[test]
fn msi_error() {
    let bytes = hex(MSI_ERROR);
    assert_eq!(
        MsiPacket::decode(&bytes).unwrap(),
        MsiPacket::Error {
            code: error_code::NAMESPACE_NOT_FOUND
        }
    );
    assert_eq!(
        MsiPacket::Error {
            code: error_code::NAMESPACE_NOT_FOUND
        }
        .encode(),
        bytes
    );
    assert_eq!(
        error_code::describe(error_code::NAMESPACE_NOT_FOUND)
            .unwrap()
            .0,
        "WDSMCS_E_NAMESPACE_NOT_FOUND"
    );
}

#[test]
fn join_with_capabilities() {
    let mac = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];
    assert_mt(
        JOIN,
        mt(
            SESSION,
            0x1234,
            Body::Join(Join {
                client_name: "TESTMACHINE".into(),
                ip_address: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 50)),
                mac_address: &mac,
                user_sid: None,
                capabilities: Some(&[0x01]),
            }),
        ),
    );
}

#[test]
fn joinack() {
    assert_mt(
        JOINACK,
        mt(
            SESSION,
            0x55,
            Body::JoinAck(JoinAck {
                client_id: 7,
                min_nack_backoff: 2,
                max_nack_backoff: 12,
                rtt: 5,
                client_time: 0x1234,
            }),
        ),
    );
}

#[test]
fn qcr_with_progress() {
    let progress = hex(QCR_PROGRESS)[62..].to_vec();
    assert_eq!(
        MaPacket::decode(&progress).unwrap(),
        MaPacket::Progress(Progress {
            time_in_session: 42,
            progress: 37
        })
    );
    assert_mt(
        QCR_PROGRESS,
        mt(
            SESSION,
            0x1234,
            Body::Qcr(Qcr {
                client_id: 7,
                qcc_seq_no: 3,
                backoff: 120,
                server_time: 0x99,
                hi_odata_seq_no: 1000,
                loss_rate: 2_500_000_000_000_000,
                app_data: &progress,
                cpu_util: None,
                mem_util: None,
                net_util: None,
            }),
        ),
    );
}

#[test]
fn spm() {
    assert_mt(
        SPM,
        mt(
            SESSION,
            0x77,
            Body::Spm(Spm {
                spm_seq_no: 9,
                master_client_id: 7,
                min_nack_backoff: 10,
                max_nack_backoff: 14,
                trail_odata_seq_no: 100,
                lead_odata_seq_no: 164,
                rtt: 5,
            }),
        ),
    );
}

#[test]
fn odata_carrying_data_block() {
    let block: Vec<u8> = (0..16).collect();
    let data = MaPacket::Data(DataBlock {
        block_number: 42,
        data: &block,
    })
    .encode();
    assert_eq!(data.len(), 29);
    let body = DataPacket {
        client_id: 7,
        odata_seq_no: 164,
        trail_odata_seq_no: 100,
        data: &data,
        fw_lead_seq_no: None,
    };
    assert_mt(ODATA, mt(SESSION, 0x78, Body::OData(body)));
    assert_mt(
        ODATA_FWLEAD,
        mt(
            SESSION,
            0x78,
            Body::OData(DataPacket {
                fw_lead_seq_no: Some(170),
                ..body
            }),
        ),
    );
    // The DATA packet inside decodes to the block.
    let bytes = hex(ODATA);
    let Body::OData(p) = Packet::decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(
        MaPacket::decode(p.data).unwrap(),
        MaPacket::Data(DataBlock {
            block_number: 42,
            data: &block
        })
    );
}

#[test]
fn nack_with_two_ranges() {
    assert_mt(
        NACK,
        mt(
            SESSION,
            0x1234,
            Body::Nack(Nack {
                client_id: 7,
                hi_odata_seq_no: 170,
                loss_rate: 100_000_000_000_000,
                ranges: vec![
                    SeqRange {
                        start: 101,
                        end: 103,
                    },
                    SeqRange {
                        start: 150,
                        end: 150,
                    },
                ],
            }),
        ),
    );
}

#[test]
fn poll_carrying_srvcir() {
    let srvcir = MaPacket::SrvCir.encode();
    assert_eq!(srvcir, [0x00, 0x03, 0x01]);
    assert_mt(
        POLL,
        mt(
            SESSION,
            0x80,
            Body::Poll(Poll {
                poll_seq_no: 4,
                backoff: 200,
                app_data: &srvcir,
            }),
        ),
    );
}

#[test]
fn pollack_carrying_cntcir() {
    let cntcir = MaPacket::CntCir(CntCir {
        progress: 50,
        time_in_session: 42,
        ranges: vec![
            BlockRange { start: 1, end: 10 },
            BlockRange { start: 20, end: 20 },
        ],
    })
    .encode();
    assert_eq!(cntcir.len(), 42);
    assert_mt(
        POLLACK,
        mt(
            SESSION,
            0x1234,
            Body::PollAck(PollAck {
                client_id: 7,
                poll_seq_no: 4,
                app_data: &cntcir,
            }),
        ),
    );
}

#[test]
fn leave() {
    assert_mt(
        LEAVE,
        mt(
            SESSION,
            0x1234,
            Body::Leave(Leave {
                client_id: 1,
                reason: LeaveReason::Complete,
            }),
        ),
    );
}

#[test]
fn kick() {
    assert_mt(
        KICK,
        mt(
            SESSION,
            0x90,
            Body::Kick(Kick {
                clients: vec![(7, KickReason::Fallback), (9, KickReason::Fail)],
            }),
        ),
    );
}

#[test]
fn ncf_qcc_ack_demote() {
    assert_mt(
        NCF,
        mt(
            SESSION,
            0x91,
            Body::Ncf(Ncf {
                ranges: vec![SeqRange {
                    start: 101,
                    end: 103,
                }],
            }),
        ),
    );
    assert_mt(
        QCC,
        mt(
            SESSION,
            0x92,
            Body::Qcc(Qcc {
                qcc_seq_no: 3,
                qcr_backoff: 250,
            }),
        ),
    );
    assert_mt(
        ACK,
        mt(
            SESSION,
            0x1234,
            Body::Ack(Ack {
                client_id: 7,
                odata_seq_no: 163,
                server_time: 0x78,
                hi_odata_seq_no: 164,
                loss_rate: 0,
            }),
        ),
    );
    assert_mt(
        DEMOTE,
        mt(
            SESSION,
            0x93,
            Body::Demote(Demote {
                lower_session_id: 0x1111,
                multicast_addr: IpAddr::V4(Ipv4Addr::new(239, 255, 77, 2)),
                multicast_port: 64002,
                unicast_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                unicast_port: 64002,
                clients: vec![7, 9],
            }),
        ),
    );
}

#[test]
fn options_section_absent_or_empty_both_accepted() {
    // QCC followed by OptionsCount = 0 and by an unknown option: both decode to the same QCC.
    let base = hex(QCC);
    for extra in [&[0u8, 0][..], &[0, 1, 0x7f, 0x7f, 0, 2, 0xaa, 0xbb][..]] {
        let mut bytes = base.clone();
        bytes.extend_from_slice(extra);
        let sum = checksum(&bytes[9..]);
        bytes[5..9].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            Packet::decode(&bytes).unwrap(),
            Packet::decode(&base).unwrap()
        );
    }
}

#[test]
fn decode_errors_name_packet_field_and_offset() {
    // A corrupted byte fails the checksum.
    let mut bytes = hex(SPM);
    bytes[20] ^= 0x01;
    let err = Packet::decode(&bytes).unwrap_err();
    assert!(
        matches!(err.kind, DecodeErrorKind::BadChecksum { .. }),
        "{err}"
    );

    // NACK claiming more ranges than are present.
    let mut bytes = hex(NACK);
    bytes.truncate(bytes.len() - 16);
    let sum = checksum(&bytes[9..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
    let err = Packet::decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError {
            packet: "MT NACK",
            field: "RangeList",
            offset: 44,
            kind: DecodeErrorKind::Truncated {
                needed: 32,
                available: 16
            },
        }
    );
    assert_eq!(
        err.to_string(),
        "malformed MT NACK: field RangeList at byte 44: needs 32 bytes, only 16 left"
    );

    // Unknown opcode.
    let mut bytes = hex(LEAVE);
    bytes[13] = 0x10;
    let sum = checksum(&bytes[9..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
    let err = Packet::decode(&bytes).unwrap_err();
    assert_eq!((err.field, err.offset), ("OpCode", 14));

    // Wrong identifier.
    let err = Packet::decode(b"XD\x00\x00\x00").unwrap_err();
    assert_eq!((err.field, err.offset), ("Identifier", 0));

    // MSI request without the MAC option.
    let err = MsiPacket::decode(&hex("010001060100020000")).unwrap_err();
    assert!(
        matches!(err.kind, DecodeErrorKind::MissingOption { id: 0x0602 }),
        "{err}"
    );

    // MA DATA whose DataLen disagrees with Packet-Size.
    let err = MaPacket::decode(&hex("000e03000000000000000100020a")).unwrap_err();
    assert_eq!((err.packet, err.field), ("MA DATA", "DataLen"));

    // CNTCIR with 65 ranges is refused before anything is allocated.
    let mut cntcir = hex("00000200000000000041");
    cntcir.resize(10 + 65 * 16, 0);
    let len = cntcir.len() as u16;
    cntcir[0..2].copy_from_slice(&len.to_be_bytes());
    let err = MaPacket::decode(&cntcir).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidValue { value: 65 });
}

#[test]
fn reply_consistency_checks() {
    let MsiPacket::Reply(good) = MsiPacket::decode(&hex(MSI_REPLY)).unwrap() else {
        panic!()
    };
    let bad = MsiReply {
        total_blocks: 1 << 60,
        ..good.clone()
    };
    assert!(
        bad.check_consistency()
            .unwrap_err()
            .to_string()
            .contains("457472")
    );
    let bad = MsiReply {
        block_size: 0,
        ..good.clone()
    };
    assert!(bad.check_consistency().is_err());
    let bad = MsiReply {
        server_port: 1,
        ..good.clone()
    };
    assert!(bad.check_consistency().is_err());
    let bad = MsiReply {
        multicast_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        ..good
    };
    assert!(bad.check_consistency().is_err());
}

/// Regression (found by fuzzing mt_decode): a JOIN whose 32-byte ClientName has no NUL
/// decoded to 16 code units, which the encoder cannot carry; and a long name must not be cut
/// inside a surrogate pair.
#[test]
fn join_client_name_is_at_most_15_code_units() {
    let mut bytes = hex(JOIN);
    // Fill ClientName (offset 22, 32 bytes) with 'A' and no terminator.
    for unit in bytes[22..54].chunks_exact_mut(2) {
        unit.copy_from_slice(&[b'A', 0]);
    }
    let sum = checksum(&bytes[9..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
    let packet = Packet::decode(&bytes).unwrap();
    let Body::Join(join) = &packet.body else {
        panic!()
    };
    assert_eq!(join.client_name, "A".repeat(15));
    assert_eq!(Packet::decode(&packet.encode()).unwrap(), packet);

    // 14 ASCII units then a character needing a surrogate pair: the pair does not fit.
    let name = format!("{}\u{1F600}", "B".repeat(14));
    assert_eq!(wdsmc::wire::mt::client_name_prefix(&name), "B".repeat(14));
    let long = format!("{}\u{1F600}", "C".repeat(13));
    assert_eq!(wdsmc::wire::mt::client_name_prefix(&long), long);
}

#[test]
fn fw_lead_option_read_by_its_length() {
    // ODATA with FW_LEAD given in 4 bytes instead of 8.
    let mut bytes = hex(ODATA);
    bytes.extend_from_slice(&[0, 1, 0x04, 0x06, 0, 4, 0, 0, 0, 0xaa]);
    let sum = checksum(&bytes[9..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
    let Body::OData(p) = Packet::decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(p.fw_lead_seq_no, Some(170));
}
