//! Hostile and foreign packets, impossible sessions, a full cache, loss, and random input.

use super::*;
use proptest::prelude::*;

#[test]
fn hostile_and_foreign_packets_are_counted_never_delivered() {
    let mut h = Harness::new(250);
    h.join(10, 20);
    let good = h.encode(Body::OData(data_body(
        1,
        1,
        0,
        &block_payload(250, 1),
        None,
    )));

    let mut bad_checksum = good.clone();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0xFF;
    assert!(h.feed_raw(&bad_checksum).is_none());
    assert_eq!(h.client.stats().checksum_drops, 1);

    let mut drops = 0;
    let mut expect_drop = |h: &mut Harness, delivered: Option<(u64, u64, Vec<u8>)>| {
        drops += 1;
        assert!(delivered.is_none());
        assert_eq!(h.client.stats().other_drops, drops);
    };
    // Security type NONE.
    let none = Packet {
        security: Security::None,
        ..decode(&good).clone()
    }
    .encode();
    let delivered = h.feed_raw(&none);
    expect_drop(&mut h, delivered);
    // Wrong session id.
    h.session_id = SESSION_ID + 1;
    let delivered = h.odata(1, 1, 0, 1);
    expect_drop(&mut h, delivered);
    h.session_id = SESSION_ID;
    // Wrong source address.
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 4011);
    let delivered = h
        .client
        .handle_datagram(h.now, other, &good)
        .map(|d| (d.block_number, d.offset, d.data.to_vec()));
    expect_drop(&mut h, delivered);
    // Garbage and truncation.
    let delivered = h.feed_raw(b"WD\x03garbage");
    expect_drop(&mut h, delivered);
    // Block 0, block > TotalBlocks, wrong lengths.
    let zero = MaPacket::Data(ma::DataBlock {
        block_number: 0,
        data: &[0; 100],
    })
    .encode();
    let delivered = h.feed(Body::OData(data_body(1, 1, 0, &zero, None)));
    expect_drop(&mut h, delivered);
    let beyond = block_payload(1000, 4);
    let delivered = h.feed(Body::OData(data_body(2, 1, 0, &beyond, None)));
    expect_drop(&mut h, delivered);
    let short_middle = MaPacket::Data(ma::DataBlock {
        block_number: 1,
        data: &[0; 99],
    })
    .encode();
    let delivered = h.feed(Body::OData(data_body(3, 1, 0, &short_middle, None)));
    expect_drop(&mut h, delivered);
    let long_last = MaPacket::Data(ma::DataBlock {
        block_number: 3,
        data: &[0; 100],
    })
    .encode();
    let delivered = h.feed(Body::RData(data_body(4, 1, 0, &long_last, None)));
    expect_drop(&mut h, delivered);
    // Not an MA DATA packet at all.
    let srvcir = MaPacket::SrvCir.encode();
    let delivered = h.feed(Body::OData(data_body(5, 1, 0, &srvcir, None)));
    expect_drop(&mut h, delivered);
    // ODATA seq 0 and Trail > seq.
    let delivered = h.odata(0, 0, 0, 1);
    expect_drop(&mut h, delivered);
    let delivered = h.odata(6, 7, 0, 1);
    expect_drop(&mut h, delivered);
    // Client-only opcodes.
    let delivered = h.feed(Body::Leave(mt::Leave {
        client_id: 1,
        reason: LeaveReason::Complete,
    }));
    expect_drop(&mut h, delivered);

    assert_eq!(h.client.stats().blocks_received, 0);
    assert!(h.client.poll_event().is_none());
    // The valid packet still works afterwards.
    assert!(h.feed_raw(&good).is_some());
}

#[test]
fn packets_before_joinack_are_dropped() {
    let mut h = Harness::new(250);
    assert!(h.odata(1, 1, 0, 1).is_none());
    assert_eq!(h.client.stats().other_drops, 1);
    assert_eq!(h.client.stats().odata_packets, 0);
}

#[test]
fn invalid_session_sizes_accept_no_block() {
    // The sizes disagree (250 bytes in blocks of 100 need 3 blocks): no client is made, so no
    // block can be accepted, and the reason comes back instead of being swallowed.
    let mut config = config(250);
    config.params.total_blocks = 2;
    let refused = Client::new(config, Instant::now(), SmallRng::seed_from_u64(42));
    assert!(matches!(
        refused,
        Err(crate::proto::blocks::BitmapError::Inconsistent { .. })
    ));
}

#[test]
fn full_cache_sends_zero_nack_until_cache_done() {
    let mut config = config(1000);
    config.cache_size = 200;
    let mut h = Harness::with_config(config);
    h.join(10, 20);
    assert!(h.odata(1, 1, 0, 1).is_some());
    assert!(h.odata(2, 1, 0, 2).is_some());
    assert!(h.sent().is_empty());
    assert!(h.odata(3, 1, 0, 3).is_none());
    let sent = h.sent();
    let Body::Nack(nack) = decode(&sent[0]).body else {
        panic!("not a NACK")
    };
    assert!(nack.ranges.is_empty());
    assert_eq!(nack.client_id, CLIENT_ID);
    assert_eq!(h.client.stats().cache_full_drops, 1);
    assert_eq!(h.client.missing_block_ranges(64), [(3, 10)]);
    // Duplicates neither use the cache nor trigger a zero NACK.
    assert!(h.odata(4, 1, 0, 1).is_none());
    assert!(h.sent().is_empty());
    assert_eq!(h.client.stats().duplicate_blocks, 1);
    h.client.cache_done(100);
    assert_eq!(h.odata(5, 1, 0, 3).map(|d| d.0), Some(3));
    h.client.cache_done(u64::MAX);
    assert!(h.odata(6, 1, 0, 4).is_some());
}

#[test]
fn loss_rate_rises_with_gaps_and_decays_with_receptions() {
    let mut h = Harness::new(100_000);
    h.join(10, 20);
    h.odata(1, 1, 0, 1);
    assert_eq!(h.client.stats().loss_rate, 0.0);
    h.odata(12, 1, 0, 2);
    let after_gap = h.client.stats().loss_rate;
    let expected = 1.0 - (1.0 - LOSS_RATE_ALPHA).powi(10);
    assert!((after_gap - expected * (1.0 - LOSS_RATE_ALPHA)).abs() < 1e-12);
    for seq in 13..100 {
        h.odata(seq, 1, 0, seq);
    }
    assert!(h.client.stats().loss_rate < after_gap);
    // A hostile jump does bounded work and stays within [0, 1].
    h.feed(spm(1, 0, 10, 20, 1, u64::MAX));
    let rate = h.client.stats().loss_rate;
    assert!((0.0..=1.0).contains(&rate) && rate > 0.99);
}

/// A whole download over a lossy link against a minimal server: one ODATA per queued
/// block, SPMs, RDATA for every NACKed sequence number, and an MS-WDSMA round (POLL, then
/// the CNTCIR's missing blocks again) whenever the queue runs dry. The client must end
/// complete with the exact content.
#[test]
fn lossy_download_completes_with_exact_content() {
    for seed in [7, 8, 9, 10] {
        lossy_download(seed);
    }
}

fn lossy_download(seed: u64) {
    use rand::Rng;
    let content_size = 5_050u64;
    let total = content_size.div_ceil(u64::from(BLOCK_SIZE));
    let mut h = Harness::new(content_size);
    let mut link = SmallRng::seed_from_u64(seed);
    let mut file = vec![0u8; content_size as usize];
    let mut expected = vec![0u8; content_size as usize];
    for block in 1..=total {
        let payload = block_payload(content_size, block);
        let offset = ((block - 1) * u64::from(BLOCK_SIZE)) as usize;
        expected[offset..offset + payload.len() - 13].copy_from_slice(&payload[13..]);
    }
    h.join(5, 30);
    let mut queue: VecDeque<u64> = (1..=total).collect();
    // Index seq − 1 holds the block that ODATA seq carried.
    let mut sent_blocks: Vec<u64> = Vec::new();
    let (mut spm_seq, mut poll_seq, mut rounds) = (0u64, 0u64, 0);
    let srvcir = MaPacket::SrvCir.encode();
    let mut outcome = None;
    for tick in 0..60_000u64 {
        let mut incoming: Vec<Vec<u8>> = Vec::new();
        if let Some(block) = queue.pop_front() {
            sent_blocks.push(block);
            let seq = sent_blocks.len() as u64;
            let payload = block_payload(content_size, block);
            incoming.push(h.encode(Body::OData(data_body(seq, 1, 0, &payload, None))));
        } else if tick % 500 == 0 {
            poll_seq += 1;
            incoming.push(h.encode(Body::Poll(mt::Poll {
                poll_seq_no: poll_seq,
                backoff: 20,
                app_data: &srvcir,
            })));
        }
        if tick % 20 == 0 {
            spm_seq += 1;
            let lead = sent_blocks.len() as u64;
            incoming.push(h.encode(spm(spm_seq, 0, 5, 30, 1, lead)));
        }
        for sent in h.sent() {
            match decode(&sent).body {
                Body::Nack(nack) => {
                    for range in nack.ranges {
                        let last = range.end.min(sent_blocks.len() as u64);
                        for seq in range.start.max(1)..=last {
                            let block = sent_blocks[(seq - 1) as usize];
                            let payload = block_payload(content_size, block);
                            let body = Body::RData(data_body(seq, 1, 0, &payload, None));
                            incoming.push(h.encode(body));
                        }
                    }
                }
                Body::PollAck(ack) => {
                    rounds += 1;
                    if let Ok(MaPacket::CntCir(cir)) = MaPacket::decode(ack.app_data) {
                        for range in cir.ranges {
                            queue.extend(range.start..=range.end);
                        }
                    }
                }
                _ => {}
            }
        }
        for datagram in incoming {
            if link.random_bool(0.2) {
                continue;
            }
            if let Some((_, offset, data)) = h.feed_raw(&datagram) {
                let offset = offset as usize;
                file[offset..offset + data.len()].copy_from_slice(&data);
                h.client.cache_done(data.len() as u64);
            }
        }
        h.advance(Duration::from_millis(1));
        if let Some(ClientEvent::Finished(end)) = h.events().into_iter().last() {
            outcome = Some(end);
            break;
        }
    }
    assert_eq!(
        outcome,
        Some(ClientOutcome::Complete),
        "missing {:?} after {rounds} rounds",
        h.client.missing_block_ranges(8)
    );
    assert!(file == expected, "reassembled content differs");
    let stats = h.client.stats();
    assert_eq!(
        (stats.blocks_received, stats.bytes_received),
        (total, content_size)
    );
    assert!(stats.rdata_packets > 0 && stats.nacks_sent > 0);
    assert!(stats.loss_rate > 0.0 && stats.loss_rate < 1.0);
}

fn arbitrary_body() -> impl Strategy<Value = (u8, u64, u64, u64, u32, u16)> {
    (0u8..10, 0u64..40, 0u64..40, 0u64..15, 0u32..10, 0u16..50)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random packet sequences, random bytes and random time steps: no panic, every
    /// delivery is a real block at its offset, and Finished comes at most once, last.
    #[test]
    fn arbitrary_datagram_sequences_never_panic(
        steps in proptest::collection::vec(
            (arbitrary_body(), proptest::collection::vec(any::<u8>(), 0..64), 0u64..3000),
            1..120,
        ),
        seed in any::<u64>(),
    ) {
        let content = 1234u64;
        let mut h = Harness::new(content);
        h.client = Client::new(config(content), h.start, SmallRng::seed_from_u64(seed)).unwrap();
        let mut finished = 0;
        for ((kind, a, b, block, id, backoff), noise, wait) in steps {
            let srvcir = MaPacket::SrvCir.encode();
            let payload = block_payload(content, block.max(1));
            let body = match kind {
                0 => Body::JoinAck(mt::JoinAck { client_id: id, min_nack_backoff: backoff, max_nack_backoff: backoff / 2, rtt: 0, client_time: 0 }),
                1 => Body::Qcc(mt::Qcc { qcc_seq_no: a, qcr_backoff: backoff }),
                2 => Body::Poll(mt::Poll { poll_seq_no: a, backoff, app_data: &srvcir }),
                3 => spm(a, id, backoff, backoff, b, a),
                4 => Body::OData(data_body(a, b, id, &payload, (a % 3 == 0).then_some(b))),
                5 => Body::RData(data_body(a, b, id, &payload, None)),
                6 => Body::Kick(mt::Kick { clients: vec![(id, KickReason::from_u8(backoff as u8))] }),
                7 => Body::Demote(mt::Demote {
                    lower_session_id: SESSION_ID,
                    multicast_addr: "239.255.1.2".parse().unwrap(),
                    multicast_port: 5001,
                    unicast_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    unicast_port: 4011,
                    clients: vec![id],
                }),
                8 => Body::Ncf(mt::Ncf { ranges: vec![SeqRange { start: a, end: b }] }),
                _ => Body::OData(data_body(a, b, id, &noise, None)),
            };
            let bytes = h.encode(body);
            for datagram in [&bytes[..], &noise[..]] {
                if let Some((number, offset, data)) = h.feed_raw(datagram) {
                    prop_assert!((1..=13).contains(&number));
                    prop_assert_eq!(offset, (number - 1) * 100);
                    prop_assert_eq!(data.len() as u64, content.min(offset + 100) - offset);
                }
            }
            if wait == 0 {
                h.client.cancel(h.now);
            }
            h.advance(Duration::from_millis(wait));
            h.sent();
            for event in h.events() {
                prop_assert_eq!(finished, 0, "an event after Finished");
                if matches!(event, ClientEvent::Finished(_)) {
                    finished += 1;
                }
            }
            h.client.cache_done(100);
        }
    }
}
