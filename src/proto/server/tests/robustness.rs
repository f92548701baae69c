//! Kicks, limits, hostile input, pacing, re-selection, cleanup and packet security.

use super::*;
use crate::wire::security::{Check, Protect};

#[test]
fn kick_is_resent_every_15_seconds_until_leave() {
    let (mut h, id) = Harness::single_master(10);
    h.take();
    h.events();
    h.server.kick(h.now, id, KickReason::Fail);
    h.drain();
    let kicks = h.take_op(mt::OpCode::Kick);
    assert_eq!(kicks.len(), 1);
    match Packet::decode(&kicks[0]).unwrap().body {
        Body::Kick(k) => assert_eq!(k.clients, vec![(id, KickReason::Fail)]),
        _ => unreachable!(),
    }
    let events = h.events();
    assert!(events.contains(&ServerEvent::ClientKicked {
        client_id: id,
        reason: KickReason::Fail
    }));
    assert!(events.contains(&ServerEvent::MasterChanged { client_id: None }));
    h.advance(Duration::from_millis(14_900));
    assert!(h.take_op(mt::OpCode::Kick).is_empty());
    // Keep the kicked client alive past the 60 s dead timeout? It answers QCRs: no.
    h.advance(Duration::from_millis(100));
    assert_eq!(h.take_op(mt::OpCode::Kick).len(), 1);
    let leave = encode(
        Body::Leave(mt::Leave {
            client_id: id,
            reason: LeaveReason::Cancelled,
        }),
        1,
    );
    h.recv(client_addr(1), &leave);
    assert_eq!(h.server.stats().kicked_clients, 0);
    h.advance(Duration::from_secs(16));
    assert!(h.take_op(mt::OpCode::Kick).is_empty());
}

#[test]
fn more_than_200_clients_are_refused() {
    let mut h = Harness::new(10);
    for n in 0..200 {
        let id = h.join(n);
        h.qcr(n, id, 0, 0, None);
    }
    assert_eq!(h.server.stats().active_clients, 200);
    h.events();
    let join = encode(
        Body::Join(mt::Join {
            client_name: "late".into(),
            ip_address: client_addr(300).ip(),
            mac_address: &[1; 6],
            user_sid: None,
            capabilities: None,
        }),
        9,
    );
    h.take();
    h.recv(client_addr(300), &join);
    assert!(h.take_op(mt::OpCode::JoinAck).is_empty());
    assert_eq!(h.server.stats().joins_refused, 1);
    assert!(matches!(
        h.events().as_slice(),
        [ServerEvent::JoinRefused { addr, .. }] if *addr == client_addr(300)
    ));
}

#[test]
fn hostile_packets_are_dropped_and_counted() {
    let (mut h, id) = Harness::single_master(10);
    let leave = |client_id| {
        encode(
            Body::Leave(mt::Leave {
                client_id,
                reason: LeaveReason::Complete,
            }),
            1,
        )
    };
    // Bad checksum.
    let mut bad = leave(id);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    h.recv(client_addr(1), &bad);
    // No security.
    let plain = Packet {
        security: Security::None,
        session_id: SESSION,
        sender_time: 1,
        body: Body::Leave(mt::Leave {
            client_id: id,
            reason: LeaveReason::Complete,
        }),
    }
    .encode();
    h.recv(client_addr(1), &plain);
    // Wrong session.
    let other = Packet {
        security: Security::Checksum,
        session_id: SESSION + 1,
        sender_time: 1,
        body: Body::Leave(mt::Leave {
            client_id: id,
            reason: LeaveReason::Complete,
        }),
    }
    .encode();
    h.recv(client_addr(1), &other);
    // Unknown client, and the right id from another host.
    h.recv(client_addr(1), &leave(id.wrapping_add(99)));
    h.recv("10.9.9.9:1".parse().unwrap(), &leave(id));
    // Garbage and a server-only opcode.
    h.recv(client_addr(1), b"WD\x03\x00");
    h.recv(
        client_addr(1),
        &encode(
            Body::Qcc(mt::Qcc {
                qcc_seq_no: 1,
                qcr_backoff: 1,
            }),
            1,
        ),
    );
    // NACK outside [trail, lead], and one with a huge range list.
    h.nack(
        1,
        id,
        vec![mt::SeqRange {
            start: 1,
            end: 5000,
        }],
    );
    h.nack(1, id, vec![mt::SeqRange { start: 5, end: 2 }]);
    let many: Vec<mt::SeqRange> = (0..3000)
        .map(|_| mt::SeqRange { start: 0, end: 0 })
        .collect();
    h.nack(1, id, many);
    let stats = h.server.stats().clone();
    assert_eq!(stats.dropped_bad_checksum, 1);
    assert_eq!(stats.dropped_bad_security, 1);
    assert_eq!(stats.dropped_wrong_session, 1);
    assert_eq!(stats.dropped_unknown_client, 2);
    assert_eq!(stats.dropped_malformed, 1);
    assert_eq!(stats.dropped_unexpected, 1);
    assert_eq!(stats.dropped_bad_nack, 3);
    assert_eq!(stats.nack_work_capped, 1);
    assert_eq!(stats.active_clients, 1);
    assert!(h.take_op(mt::OpCode::Ncf).is_empty());
}

#[test]
fn slow_client_is_kicked_with_fallback() {
    let mut config = SessionConfig::new(SESSION, group(), 1_000_000, BLOCK);
    config.auto_disconnect_below = Some(10_000);
    let mut h = Harness::with(config);
    let id = h.join_active(1, 1);
    let fast = h.join_active(2, 1);
    h.events();
    // 1 % of 1 MB in 12 s = 833 B/s: slow. Before the grace period nothing happens.
    h.qcr(1, id, 0, 0, Some((1, 5)));
    h.qcr(2, fast, 0, 0, Some((50, 5)));
    h.qcr(1, id, 0, 0, Some((1, 12)));
    h.qcr(2, fast, 0, 0, Some((90, 12)));
    h.now += Duration::from_secs(6);
    h.qcr(1, id, 0, 0, Some((2, 18)));
    h.qcr(2, fast, 0, 0, Some((100, 18)));
    let events = h.events();
    assert!(events.contains(&ServerEvent::ClientKicked {
        client_id: id,
        reason: KickReason::Fallback
    }));
    assert!(
        !events.iter().any(
            |e| matches!(e, ServerEvent::ClientKicked { client_id, .. } if *client_id == fast)
        )
    );
}

#[test]
fn dead_clients_are_dropped_and_inactivity_ends_the_session() {
    let mut config = SessionConfig::new(SESSION, group(), 1000, BLOCK);
    config.inactivity_timeout = Duration::from_secs(90);
    let mut h = Harness::with(config);
    let id = h.join_active(1, 1);
    h.events();
    h.advance(Duration::from_secs(62));
    assert!(
        h.events()
            .contains(&ServerEvent::ClientDead { client_id: id })
    );
    assert!(!h.server.is_finished());
    h.advance(Duration::from_secs(30));
    assert!(h.server.is_finished());
    assert!(h.events().contains(&ServerEvent::SessionEnded));
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn paced_sending_respects_max_rate() {
    let mut config = SessionConfig::new(SESSION, group(), 1000 * u64::from(BLOCK), BLOCK);
    // About 10 packets of ~150 bytes per second.
    config.max_rate = Some(1500);
    let mut h = Harness::with(config);
    let id = h.join_active(1, 1);
    h.answer_qcc(&[(1, id, 1)]);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, 1000)]));
    h.advance(Duration::from_millis(200));
    for _ in 0..8 {
        let lead = h.server.stats().odata_sent;
        h.ack(1, id, lead, h.ms());
    }
    let before = h.server.stats().odata_sent;
    h.advance(Duration::from_secs(2));
    let after = h.server.stats().odata_sent;
    assert!(after - before <= 25, "{} packets in 2 s", after - before);
}

#[test]
fn merge_ranges_sorts_and_joins_adjacent() {
    let mut ranges = vec![
        BlockRange { start: 10, end: 12 },
        BlockRange { start: 1, end: 3 },
        BlockRange { start: 4, end: 5 },
        BlockRange { start: 11, end: 20 },
    ];
    assert_eq!(
        merge_ranges(&mut ranges),
        vec![
            BlockRange { start: 1, end: 5 },
            BlockRange { start: 10, end: 20 }
        ]
    );
}

#[test]
fn mutated_packets_with_valid_checksums_never_panic() {
    use rand::Rng;
    let (mut h, id) = Harness::single_master(50);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, 50)]));
    h.advance(Duration::from_millis(200));
    h.ack(1, id, 0, h.ms());
    let mut app = Vec::new();
    MaPacket::CntCir(cntcir(5, 3, &[(1, 9), (12, 50)])).encode_into(&mut app);
    let mut progress = Vec::new();
    MaPacket::Progress(Progress {
        time_in_session: 3,
        progress: 5,
    })
    .encode_into(&mut progress);
    let seeds: Vec<Vec<u8>> = vec![
        encode(
            Body::Join(mt::Join {
                client_name: "x".into(),
                ip_address: client_addr(9).ip(),
                mac_address: &[1, 2, 3, 4, 5, 6],
                user_sid: Some(&[1, 2, 3]),
                capabilities: Some(&[1]),
            }),
            1,
        ),
        encode(
            Body::Qcr(mt::Qcr {
                client_id: id,
                qcc_seq_no: u64::MAX,
                backoff: 1,
                server_time: u64::MAX,
                hi_odata_seq_no: 1,
                loss_rate: u64::MAX,
                app_data: &progress,
                cpu_util: Some(1),
                mem_util: None,
                net_util: None,
            }),
            1,
        ),
        encode(
            Body::Ack(mt::Ack {
                client_id: id,
                odata_seq_no: 1,
                server_time: 0,
                hi_odata_seq_no: 1,
                loss_rate: 0,
            }),
            1,
        ),
        encode(
            Body::Nack(mt::Nack {
                client_id: id,
                hi_odata_seq_no: 1,
                loss_rate: 1,
                ranges: vec![mt::SeqRange { start: 1, end: 1 }; 3],
            }),
            1,
        ),
        encode(
            Body::PollAck(mt::PollAck {
                client_id: id,
                poll_seq_no: u64::MAX,
                app_data: &app,
            }),
            1,
        ),
        encode(
            Body::Leave(mt::Leave {
                client_id: id,
                reason: LeaveReason::Other(9),
            }),
            1,
        ),
    ];
    let mut rng = SmallRng::seed_from_u64(99);
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        let flips = rng.random_range(1..4);
        for _ in 0..flips {
            let at = rng.random_range(13..bytes.len());
            bytes[at] = rng.random();
        }
        if rng.random_bool(0.1) {
            let keep = rng.random_range(13..=bytes.len());
            bytes.truncate(keep);
        }
        // Keep the session id and a valid checksum so the packet reaches the state machine.
        bytes[9..13].copy_from_slice(&SESSION.to_be_bytes());
        let sum = mt::checksum(&bytes[9..]);
        bytes[5..9].copy_from_slice(&sum.to_be_bytes());
        h.recv(client_addr(1 + (round % 3) as u16), &bytes);
        if round % 50 == 0 {
            h.advance(Duration::from_millis(30));
            h.take();
        }
    }
    let stats = h.server.stats();
    assert!(stats.active_clients <= MAX_CLIENTS);
    assert!(stats.dropped_malformed > 0);
}

#[test]
fn lossy_non_master_nack_takes_over_as_master() {
    let mut h = Harness::new(100);
    let a = h.join_active(1, 1);
    let b = h.join_active(2, 1);
    h.answer_qcc(&[(1, a, 20), (2, b, 5)]);
    assert_eq!(h.server.master_client_id(), Some(a));
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, a, poll_seq, cntcir(0, 1, &[(1, 100)]));
    h.advance(Duration::from_millis(200));
    h.ack(1, a, 0, h.ms());
    h.ack(1, a, 1, h.ms());
    h.events();
    // b reports 20 % loss; the master reported none, so b's throughput estimate is lower.
    let nack = encode(
        Body::Nack(mt::Nack {
            client_id: b,
            hi_odata_seq_no: 4,
            loss_rate: mt::loss_rate_to_wire(0.2),
            ranges: vec![mt::SeqRange { start: 2, end: 2 }],
        }),
        5,
    );
    // A master keeps the role for its minimum tenure, so noisy estimates cannot hand it
    // back and forth on every NACK.
    h.recv(client_addr(2), &nack);
    assert_eq!(h.server.master_client_id(), Some(a));
    while h.now.duration_since(h.start) < MIN_MASTER_TENURE + Duration::from_millis(300) {
        h.advance(Duration::from_millis(250));
        h.ack(1, a, 1, h.ms());
    }
    h.events();
    h.recv(client_addr(2), &nack);
    assert_eq!(h.server.master_client_id(), Some(b));
    assert!(
        h.events()
            .contains(&ServerEvent::MasterChanged { client_id: Some(b) })
    );
    // ODATA from now on name b as the client that must ACK; a's ACKs no longer count.
    h.ack(1, a, 4, h.ms());
    assert_eq!(h.server.stats().dropped_stale, 1);
}

#[test]
fn cleanup_moves_the_trail_after_acks_and_a_second() {
    let (mut h, id) = Harness::sending_round(100);
    let spm_trail = |h: &mut Harness| {
        h.take_op(mt::OpCode::Spm)
            .iter()
            .map(|b| match Packet::decode(b).unwrap().body {
                Body::Spm(s) => (s.trail_odata_seq_no, s.lead_odata_seq_no),
                _ => unreachable!(),
            })
            .next_back()
    };
    // Young packets stay retransmittable even when acknowledged.
    h.advance(Duration::from_millis(300));
    let (trail, lead) = spm_trail(&mut h).expect("an SPM");
    assert_eq!((trail, lead), (1, 13));
    // After a second, everything below the master's ACK (4) is dropped and an SPM says so.
    h.ack(1, id, 4, h.ms());
    h.advance(Duration::from_millis(900));
    let (trail, _) = spm_trail(&mut h).expect("an SPM");
    assert_eq!(trail, 4);
    // A NACK for a purged sequence is confirmed but cannot be repeated.
    h.now += Duration::from_millis(50);
    h.nack(1, id, vec![mt::SeqRange { start: 2, end: 5 }]);
    assert_eq!(
        data_seqs(&h.take(), mt::OpCode::RData),
        vec![(4, 4), (5, 5)]
    );
}

/// A server that signs (SIGN) and expects hashed client packets (HASH): a checksummed or
/// forged JOIN is dropped, a hashed one is answered with a signed JOINACK.
#[test]
fn sign_mode_signs_outgoing_and_checks_incoming() {
    use crate::wire::security::{HashAlg, HmacKey, SigningKey, VerifyingKey};
    let key = HmacKey::new(b"session key", HashAlg::Sha256).unwrap();
    let signing = std::sync::Arc::new(
        SigningKey::generate(&mut rand_core::OsRng, 1024, HashAlg::Sha256).unwrap(),
    );
    let verifying = VerifyingKey::new(signing.public().clone(), HashAlg::Sha256);
    let mut config = SessionConfig::new(SESSION, group(), 10 * u64::from(BLOCK), BLOCK);
    config.protect = Protect::Sign(std::sync::Arc::clone(&signing));
    config.check = Check::Hash(key.clone());
    let mut h = Harness::with(config);
    let join = |protect: &Protect| {
        let mut bytes = Vec::new();
        Packet {
            security: Security::None,
            session_id: SESSION,
            sender_time: 5,
            body: Body::Join(mt::Join {
                client_name: "c".into(),
                ip_address: client_addr(1).ip(),
                mac_address: &[0, 1, 2, 3, 4, 5],
                user_sid: None,
                capabilities: None,
            }),
        }
        .encode_protected(&mut bytes, protect);
        bytes
    };
    h.recv(client_addr(1), &join(&Protect::Checksum));
    let forger = HmacKey::new(b"guessed", HashAlg::Sha256).unwrap();
    h.recv(client_addr(1), &join(&Protect::Hash(forger)));
    assert!(h.take_op(mt::OpCode::JoinAck).is_empty());
    assert_eq!(h.server.stats().dropped_bad_security, 2);
    h.recv(client_addr(1), &join(&Protect::Hash(key)));
    let acks = h.take_op(mt::OpCode::JoinAck);
    assert_eq!(acks.len(), 1);
    let packet = Packet::decode(&acks[0]).unwrap();
    let Security::Sign(signature) = packet.security else {
        panic!("JOINACK not signed: {:?}", packet.security)
    };
    assert!(verifying.verify(mt::covered(&acks[0]), signature));
    assert!(Check::Sign(verifying).accepts(&packet.security, mt::covered(&acks[0])));
}
