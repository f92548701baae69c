//! Property tests for the codecs: every packet round-trips, re-encoding a decoded packet gives
//! the same bytes, and no byte string makes a decoder panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use wdsmc::wire::ma::{BlockRange, CntCir, DataBlock, MaPacket, Progress};
use wdsmc::wire::msi::{MsiPacket, MsiReply, MsiRequest};
use wdsmc::wire::mt::{
    Ack, Body, DataPacket, Demote, Join, JoinAck, Kick, KickReason, Leave, LeaveReason, Nack, Ncf,
    Packet, Poll, PollAck, Qcc, Qcr, Security, SeqRange, Spm,
};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn seq_ranges() -> impl Strategy<Value = Vec<SeqRange>> {
    vec(
        (any::<u64>(), any::<u64>()).prop_map(|(start, end)| SeqRange { start, end }),
        0..20,
    )
}

fn short_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..64)
}

/// A name without NULs that fits JOIN's 32-byte field with its terminator.
fn client_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9\\-é]{0,15}"
}

/// Owned inputs from which a borrowed [`Body`] is built.
#[derive(Debug, Clone)]
enum BodySpec {
    Spm(Spm),
    Join(String, IpAddr, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>),
    JoinAck(JoinAck),
    Qcc(Qcc),
    Qcr(u32, u64, u16, u64, u64, u64, Vec<u8>, [Option<u8>; 3]),
    OData(u32, u64, u64, Vec<u8>, Option<u64>),
    RData(u32, u64, u64, Vec<u8>),
    Ack(Ack),
    Nack(Nack),
    Ncf(Ncf),
    Leave(Leave),
    Poll(u64, u16, Vec<u8>),
    PollAck(u32, u64, Vec<u8>),
    Kick(Kick),
    Demote(Demote),
}

impl BodySpec {
    fn body(&self) -> Body<'_> {
        match self {
            BodySpec::Spm(p) => Body::Spm(*p),
            BodySpec::Join(name, ip, mac, sid, caps) => Body::Join(Join {
                client_name: name.clone(),
                ip_address: *ip,
                mac_address: mac,
                user_sid: sid.as_deref(),
                capabilities: caps.as_deref(),
            }),
            BodySpec::JoinAck(p) => Body::JoinAck(*p),
            BodySpec::Qcc(p) => Body::Qcc(*p),
            BodySpec::Qcr(id, seq, backoff, time, hi, loss, app, [cpu, mem, net]) => {
                Body::Qcr(Qcr {
                    client_id: *id,
                    qcc_seq_no: *seq,
                    backoff: *backoff,
                    server_time: *time,
                    hi_odata_seq_no: *hi,
                    loss_rate: *loss,
                    app_data: app,
                    cpu_util: *cpu,
                    mem_util: *mem,
                    net_util: *net,
                })
            }
            BodySpec::OData(id, seq, trail, data, lead) => Body::OData(DataPacket {
                client_id: *id,
                odata_seq_no: *seq,
                trail_odata_seq_no: *trail,
                data,
                fw_lead_seq_no: *lead,
            }),
            BodySpec::RData(id, seq, trail, data) => Body::RData(DataPacket {
                client_id: *id,
                odata_seq_no: *seq,
                trail_odata_seq_no: *trail,
                data,
                fw_lead_seq_no: None,
            }),
            BodySpec::Ack(p) => Body::Ack(*p),
            BodySpec::Nack(p) => Body::Nack(p.clone()),
            BodySpec::Ncf(p) => Body::Ncf(p.clone()),
            BodySpec::Leave(p) => Body::Leave(*p),
            BodySpec::Poll(seq, backoff, app) => Body::Poll(Poll {
                poll_seq_no: *seq,
                backoff: *backoff,
                app_data: app,
            }),
            BodySpec::PollAck(id, seq, app) => Body::PollAck(PollAck {
                client_id: *id,
                poll_seq_no: *seq,
                app_data: app,
            }),
            BodySpec::Kick(p) => Body::Kick(p.clone()),
            BodySpec::Demote(p) => Body::Demote(p.clone()),
        }
    }
}

fn body_spec() -> impl Strategy<Value = BodySpec> {
    prop_oneof![
        (any::<(u64, u32, u16, u16, u64, u64, u16)>()).prop_map(|(a, b, c, d, e, f, g)| {
            BodySpec::Spm(Spm {
                spm_seq_no: a,
                master_client_id: b,
                min_nack_backoff: c,
                max_nack_backoff: d,
                trail_odata_seq_no: e,
                lead_odata_seq_no: f,
                rtt: g,
            })
        }),
        (
            client_name(),
            ip(),
            short_bytes(),
            proptest::option::of(short_bytes()),
            proptest::option::of(short_bytes())
        )
            .prop_map(|(n, ip, mac, sid, caps)| BodySpec::Join(n, ip, mac, sid, caps)),
        any::<(u32, u16, u16, u16, u64)>().prop_map(|(a, b, c, d, e)| BodySpec::JoinAck(JoinAck {
            client_id: a,
            min_nack_backoff: b,
            max_nack_backoff: c,
            rtt: d,
            client_time: e,
        })),
        any::<(u64, u16)>().prop_map(|(a, b)| BodySpec::Qcc(Qcc {
            qcc_seq_no: a,
            qcr_backoff: b
        })),
        (
            any::<(u32, u64, u16, u64, u64, u64)>(),
            short_bytes(),
            any::<[Option<u8>; 3]>()
        )
            .prop_map(|((a, b, c, d, e, f), app, utils)| BodySpec::Qcr(
                a, b, c, d, e, f, app, utils
            )),
        (
            any::<(u32, u64, u64)>(),
            vec(any::<u8>(), 0..2000),
            any::<Option<u64>>()
        )
            .prop_map(|((a, b, c), d, e)| BodySpec::OData(a, b, c, d, e)),
        (any::<(u32, u64, u64)>(), vec(any::<u8>(), 0..2000))
            .prop_map(|((a, b, c), d)| BodySpec::RData(a, b, c, d)),
        any::<(u32, u64, u64, u64, u64)>().prop_map(|(a, b, c, d, e)| BodySpec::Ack(Ack {
            client_id: a,
            odata_seq_no: b,
            server_time: c,
            hi_odata_seq_no: d,
            loss_rate: e,
        })),
        (any::<(u32, u64, u64)>(), seq_ranges()).prop_map(|((a, b, c), ranges)| BodySpec::Nack(
            Nack {
                client_id: a,
                hi_odata_seq_no: b,
                loss_rate: c,
                ranges,
            }
        )),
        seq_ranges().prop_map(|ranges| BodySpec::Ncf(Ncf { ranges })),
        any::<(u32, u8)>().prop_map(|(a, b)| BodySpec::Leave(Leave {
            client_id: a,
            reason: LeaveReason::from_u8(b),
        })),
        (any::<(u64, u16)>(), short_bytes()).prop_map(|((a, b), c)| BodySpec::Poll(a, b, c)),
        (any::<(u32, u64)>(), short_bytes()).prop_map(|((a, b), c)| BodySpec::PollAck(a, b, c)),
        vec(any::<(u32, u8)>(), 0..30).prop_map(|list| BodySpec::Kick(Kick {
            clients: list
                .into_iter()
                .map(|(id, r)| (id, KickReason::from_u8(r)))
                .collect(),
        })),
        (
            any::<u32>(),
            ip(),
            any::<u16>(),
            ip(),
            any::<u16>(),
            vec(any::<u32>(), 0..250)
        )
            .prop_map(|(a, b, c, d, e, clients)| BodySpec::Demote(Demote {
                lower_session_id: a,
                multicast_addr: b,
                multicast_port: c,
                unicast_addr: d,
                unicast_port: e,
                clients,
            })),
    ]
}

#[derive(Debug, Clone)]
enum SecuritySpec {
    None,
    Checksum,
    Hash(Vec<u8>),
    Sign(Vec<u8>),
}

fn security_spec() -> impl Strategy<Value = SecuritySpec> {
    prop_oneof![
        Just(SecuritySpec::None),
        Just(SecuritySpec::Checksum),
        vec(any::<u8>(), 0..64).prop_map(SecuritySpec::Hash),
        vec(any::<u8>(), 0..300).prop_map(SecuritySpec::Sign),
    ]
}

impl SecuritySpec {
    fn security(&self) -> Security<'_> {
        match self {
            SecuritySpec::None => Security::None,
            SecuritySpec::Checksum => Security::Checksum,
            SecuritySpec::Hash(d) => Security::Hash(d),
            SecuritySpec::Sign(d) => Security::Sign(d),
        }
    }
}

fn ma_packet() -> impl Strategy<Value = (u8, u32, u64, Vec<u8>, Vec<(u64, u64)>)> {
    (
        1u8..=4,
        any::<u32>(),
        any::<u64>(),
        vec(any::<u8>(), 0..3000),
        vec(any::<(u64, u64)>(), 0..=64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mt_round_trip(security in security_spec(), session_id: u32, sender_time: u64, spec in body_spec()) {
        let packet = Packet { security: security.security(), session_id, sender_time, body: spec.body() };
        let bytes = packet.encode();
        let decoded = Packet::decode(&bytes).expect("encoded packet decodes");
        prop_assert_eq!(&decoded, &packet);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn ma_round_trip((op, time, block, data, ranges) in ma_packet()) {
        let packet = match op {
            1 => MaPacket::SrvCir,
            2 => MaPacket::CntCir(CntCir {
                progress: (time % 101) as u8,
                time_in_session: time,
                ranges: ranges.iter().map(|&(start, end)| BlockRange { start, end }).collect(),
            }),
            3 => MaPacket::Data(DataBlock { block_number: block, data: &data }),
            _ => MaPacket::Progress(Progress { time_in_session: time, progress: (block % 101) as u8 }),
        };
        let bytes = packet.encode();
        let decoded = MaPacket::decode(&bytes).expect("encoded packet decodes");
        prop_assert_eq!(&decoded, &packet);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn msi_round_trip(
        namespace in "[^\u{0}]{1,40}", content in "[^\u{0}]{1,40}", mac in short_bytes(),
        v6 in any::<Option<bool>>(), group in ip(), server in ip(),
        numbers in any::<(u16, u16, u64, u32, u64, u32, u32)>(), which in 0u8..3,
    ) {
        let mac: Vec<u8> = mac.into_iter().take(32).collect();
        let (mport, sport, size, block, total, session, code) = numbers;
        let packet = match which {
            0 => MsiPacket::Request(MsiRequest { namespace, content, mac_address: mac, ipv6_capable: v6 }),
            1 => MsiPacket::Reply(MsiReply {
                multicast_addr: group, server_addr: server, multicast_port: mport, server_port: sport,
                content_size: size, block_size: block, total_blocks: total, session_id: session,
            }),
            _ => MsiPacket::Error { code },
        };
        let bytes = packet.encode();
        let decoded = MsiPacket::decode(&bytes).expect("encoded packet decodes");
        prop_assert_eq!(&decoded, &packet);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..4096)) {
        let _ = MsiPacket::decode(&bytes);
        let _ = MaPacket::decode(&bytes);
        let _ = Packet::decode(&bytes);
        let _ = wdsmc::wire::mt::covered(&bytes);
    }

    /// Key blobs from an initiation reply: any bytes, and bytes behind each known header.
    #[test]
    fn key_blob_decoders_never_panic(
        header in prop::sample::select(vec![
            vec![], vec![0x08, 0x02, 0, 0], vec![0x06, 0x02, 0, 0, 0, 0x24, 0, 0, b'R', b'S', b'A', b'1'],
            b"RSA1".to_vec(),
        ]),
        rest in vec(any::<u8>(), 0..700),
        sec_mode: u32,
    ) {
        let blob = [header, rest].concat();
        let _ = wdsmc::wire::security::SymKey::decode(&blob);
        let _ = wdsmc::wire::security::decode_sign_key(&blob);
        let _ = wdsmc::wire::security::SecModes::from_u32(sec_mode);
        let _ = wdsmc::wire::security::SessionSecurity::from_reply(
            Some(sec_mode), Some(&blob), Some(&blob), Some(sec_mode));
    }

    /// HASH and SIGN headers of any length decode (their data is checked by the proto
    /// layer) and the covered bytes are what follows the header.
    #[test]
    fn hash_and_sign_headers_decode_with_any_data(kind in 1u8..=2, data in vec(any::<u8>(), 0..300)) {
        let mut bytes = vec![b'W', b'D', kind];
        bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&data);
        let covered = [0, 0, 0, 1, 0x0B, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 1];
        bytes.extend_from_slice(&covered);
        let packet = Packet::decode(&bytes).expect("a LEAVE behind any HASH/SIGN data");
        prop_assert_eq!(packet.security.kind() as u8, kind);
        prop_assert_eq!(wdsmc::wire::mt::covered(&bytes), &covered[..]);
    }

    /// Arbitrary bodies behind a valid header and checksum reach every body decoder.
    #[test]
    fn mt_body_decoders_never_panic(opcode in 0u8..=0x10, body in vec(any::<u8>(), 0..600)) {
        let mut covered = vec![0, 0, 0, 1, opcode, 0, 0, 0, 0, 0, 0, 0, 0];
        covered.extend_from_slice(&body);
        let mut bytes = vec![b'W', b'D', 3, 0, 4];
        bytes.extend_from_slice(&wdsmc::wire::mt::checksum(&covered).to_be_bytes());
        bytes.extend_from_slice(&covered);
        if let Ok(packet) = Packet::decode(&bytes) {
            // Whatever decodes re-encodes to a packet that decodes to the same value.
            let again = packet.encode();
            prop_assert_eq!(Packet::decode(&again).unwrap(), packet);
        }
    }

    /// Any single corrupted byte after the security header is caught by the checksum.
    #[test]
    fn checksum_catches_single_byte_corruption(spec in body_spec(), at: prop::sample::Index, flip in 1u8..=255) {
        let packet = Packet { security: Security::Checksum, session_id: 1, sender_time: 2, body: spec.body() };
        let mut bytes = packet.encode();
        let i = 9 + at.index(bytes.len() - 9);
        bytes[i] ^= flip;
        prop_assert!(Packet::decode(&bytes).is_err());
    }
}
