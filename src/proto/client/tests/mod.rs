//! Scripted server packets on a virtual clock.

use std::net::Ipv4Addr;

use super::*;
use crate::proto::SeedableRng;
use crate::wire::mt::Security;
use crate::wire::security::Protect;

mod ending;
mod robustness;

const SESSION_ID: u32 = 0x6D19_EE7E;
const BLOCK_SIZE: u32 = 100;
const CLIENT_ID: u32 = 7;

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4011)
}

fn params(content_size: u64) -> SessionParams {
    SessionParams {
        session_id: SESSION_ID,
        group: "239.255.1.1:5000".parse().unwrap(),
        server: server_addr(),
        content_size,
        block_size: BLOCK_SIZE,
        total_blocks: content_size.div_ceil(u64::from(BLOCK_SIZE)),
    }
}

fn config(content_size: u64) -> ClientConfig {
    ClientConfig {
        params: params(content_size),
        security: crate::wire::security::SessionSecurity::checksum(),
        client_name: "A-VERY-LONG-MACHINE-NAME".into(),
        local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mac_address: vec![0, 0x15, 0x5d, 1, 2, 3],
        user_sid: Some(vec![1, 2, 3, 4]),
        cache_size: 1 << 20,
        join_timeout: Duration::from_secs(5),
        first_data_timeout: Duration::from_secs(10),
        inactivity_timeout: Duration::from_secs(30),
    }
}

/// A scripted server on a virtual clock.
struct Harness {
    client: Client,
    start: Instant,
    now: Instant,
    server_time: u64,
    session_id: u32,
}

fn decode(bytes: &[u8]) -> Packet<'_> {
    Packet::decode(bytes).expect("the client sends valid packets")
}

fn block_payload(content_size: u64, block: u64) -> Vec<u8> {
    let offset = (block - 1) * u64::from(BLOCK_SIZE);
    let len = content_size
        .saturating_sub(offset)
        .min(u64::from(BLOCK_SIZE));
    let data: Vec<u8> = (0..len)
        .map(|i| (block as u8).wrapping_add(i as u8))
        .collect();
    MaPacket::Data(ma::DataBlock {
        block_number: block,
        data: &data,
    })
    .encode()
}

fn data_body(
    seq: u64,
    trail: u64,
    master: u32,
    payload: &[u8],
    fw_lead: Option<u64>,
) -> mt::DataPacket<'_> {
    mt::DataPacket {
        client_id: master,
        odata_seq_no: seq,
        trail_odata_seq_no: trail,
        data: payload,
        fw_lead_seq_no: fw_lead,
    }
}

fn spm(seq: u64, master: u32, min: u16, max: u16, trail: u64, lead: u64) -> Body<'static> {
    Body::Spm(mt::Spm {
        spm_seq_no: seq,
        master_client_id: master,
        min_nack_backoff: min,
        max_nack_backoff: max,
        trail_odata_seq_no: trail,
        lead_odata_seq_no: lead,
        rtt: 1,
    })
}

impl Harness {
    fn new(content_size: u64) -> Self {
        Self::with_config(config(content_size))
    }

    fn with_config(config: ClientConfig) -> Self {
        let start = Instant::now();
        Self {
            client: Client::new(config, start, SmallRng::seed_from_u64(42))
                .expect("a consistent session"),
            start,
            now: start,
            server_time: 1000,
            session_id: SESSION_ID,
        }
    }

    fn encode(&mut self, body: Body<'_>) -> Vec<u8> {
        self.server_time += 1;
        Packet {
            security: Security::Checksum,
            session_id: self.session_id,
            sender_time: self.server_time,
            body,
        }
        .encode()
    }

    /// Feeds one packet; returns (block, offset, data) when a block was delivered.
    fn feed(&mut self, body: Body<'_>) -> Option<(u64, u64, Vec<u8>)> {
        let bytes = self.encode(body);
        self.feed_raw(&bytes)
    }

    fn feed_raw(&mut self, bytes: &[u8]) -> Option<(u64, u64, Vec<u8>)> {
        self.client
            .handle_datagram(self.now, server_addr(), bytes)
            .map(|d| (d.block_number, d.offset, d.data.to_vec()))
    }

    fn odata(
        &mut self,
        seq: u64,
        trail: u64,
        master: u32,
        block: u64,
    ) -> Option<(u64, u64, Vec<u8>)> {
        let payload = block_payload(self.client.config.params.content_size, block);
        self.feed(Body::OData(data_body(seq, trail, master, &payload, None)))
    }

    fn rdata(
        &mut self,
        seq: u64,
        trail: u64,
        master: u32,
        block: u64,
    ) -> Option<(u64, u64, Vec<u8>)> {
        let payload = block_payload(self.client.config.params.content_size, block);
        self.feed(Body::RData(data_body(seq, trail, master, &payload, None)))
    }

    /// Drains every queued datagram.
    fn sent(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(to) = self.client.poll_transmit(&mut buf) {
            assert!(buf.len() <= 1400, "datagram of {} bytes", buf.len());
            out.push(std::mem::take(&mut buf));
            let _ = to;
        }
        out
    }

    /// Runs every timer up to `now + by`.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.client.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.client.handle_timeout(self.now);
        }
        self.now = until;
    }

    /// Runs timers until a datagram is queued; returns it with the time it was sent at.
    fn next_sent_within(&mut self, limit: Duration) -> Option<(Duration, Vec<u8>)> {
        let until = self.now + limit;
        loop {
            if let Some(first) = self.sent().into_iter().next() {
                return Some((self.now - self.start, first));
            }
            let at = self.client.poll_timeout()?;
            if at > until {
                self.now = until;
                return None;
            }
            self.now = self.now.max(at);
            self.client.handle_timeout(self.now);
        }
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// JOINACK with the given back-offs; the QCR and events are drained.
    fn join(&mut self, min: u16, max: u16) {
        self.sent();
        self.feed(Body::JoinAck(mt::JoinAck {
            client_id: CLIENT_ID,
            min_nack_backoff: min,
            max_nack_backoff: max,
            rtt: 0,
            client_time: 0,
        }));
        self.sent();
        self.events();
    }
}

fn opcodes(sent: &[Vec<u8>]) -> Vec<mt::OpCode> {
    sent.iter().map(|b| decode(b).body.opcode()).collect()
}

fn leave_of(bytes: &[u8]) -> (u32, mt::Leave) {
    let packet = decode(bytes);
    match packet.body {
        Body::Leave(leave) => (packet.session_id, leave),
        other => panic!("expected LEAVE, got {other:?}"),
    }
}

#[test]
fn join_fields_and_retransmit_every_500ms() {
    let mut h = Harness::new(1000);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let packet = decode(&sent[0]);
    assert_eq!(packet.security, Security::Checksum);
    assert_eq!(packet.session_id, SESSION_ID);
    assert_eq!(packet.sender_time, 0);
    let Body::Join(join) = packet.body else {
        panic!("not a JOIN")
    };
    assert_eq!(join.client_name, "A-VERY-LONG-MAC");
    assert_eq!(join.ip_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(join.mac_address, &[0, 0x15, 0x5d, 1, 2, 3]);
    assert_eq!(join.user_sid, Some(&[1u8, 2, 3, 4][..]));
    assert_eq!(join.capabilities, Some(&[mt::CAP_MULTISTREAM][..]));

    h.advance(Duration::from_millis(499));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(1));
    let sent = h.sent();
    assert_eq!(opcodes(&sent), [mt::OpCode::Join]);
    assert_eq!(decode(&sent[0]).sender_time, 500);
    h.advance(Duration::from_millis(500));
    assert_eq!(opcodes(&h.sent()), [mt::OpCode::Join]);
}

/// HASH both ways: the client's packets carry the HMAC, and a server packet is accepted
/// only with the right kind of header and a MAC that proves it.
#[test]
fn hash_mode_signs_outgoing_and_checks_incoming() {
    use crate::wire::mt::SecurityType;
    use crate::wire::security::{HashAlg, HmacKey, SecModes};
    let key = HmacKey::new(b"session key", HashAlg::Sha256).unwrap();
    let mut config = config(1000);
    config.security = SessionSecurity {
        modes: SecModes {
            client: SecurityType::Hash,
            server: SecurityType::Hash,
        },
        hmac: Some(key.clone()),
        sign: None,
    };
    let mut h = Harness::with_config(config);
    let sent = h.sent();
    let join = decode(&sent[0]);
    let Security::Hash(mac) = join.security else {
        panic!("JOIN is not hashed: {:?}", join.security)
    };
    assert!(key.verify(mt::covered(&sent[0]), mac));

    let joinack = |server_time| Packet {
        security: Security::None,
        session_id: SESSION_ID,
        sender_time: server_time,
        body: Body::JoinAck(mt::JoinAck {
            client_id: CLIENT_ID,
            min_nack_backoff: 10,
            max_nack_backoff: 20,
            rtt: 0,
            client_time: 0,
        }),
    };
    let mut bytes = Vec::new();
    // The wrong kind of header, then a MAC under another key: both dropped.
    joinack(1).encode_protected(&mut bytes, &Protect::Checksum);
    h.feed_raw(&bytes);
    let forger = HmacKey::new(b"guessed key", HashAlg::Sha256).unwrap();
    joinack(2).encode_protected(&mut bytes, &Protect::Hash(forger));
    h.feed_raw(&bytes);
    assert_eq!(h.client.stats().other_drops, 1);
    assert_eq!(h.client.stats().checksum_drops, 1);
    assert!(h.events().is_empty(), "a forged JOINACK was accepted");
    joinack(3).encode_protected(&mut bytes, &Protect::Hash(key.clone()));
    h.feed_raw(&bytes);
    assert_eq!(
        h.events(),
        [ClientEvent::Joined {
            client_id: CLIENT_ID
        }]
    );
    let sent = h.sent();
    assert!(matches!(decode(&sent[0]).body, Body::Qcr(_)));
    assert!(matches!(decode(&sent[0]).security, Security::Hash(_)));
}

#[test]
fn joinack_gets_a_qcr_and_stops_joining() {
    let mut h = Harness::new(1000);
    h.sent();
    h.feed(Body::JoinAck(mt::JoinAck {
        client_id: CLIENT_ID,
        min_nack_backoff: 10,
        max_nack_backoff: 20,
        rtt: 0,
        client_time: 0,
    }));
    let joinack_time = h.server_time;
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let Body::Qcr(qcr) = decode(&sent[0]).body else {
        panic!("not a QCR")
    };
    assert_eq!(
        (qcr.client_id, qcr.qcc_seq_no, qcr.backoff, qcr.server_time),
        (CLIENT_ID, 0, 0, joinack_time)
    );
    assert_eq!(
        (qcr.hi_odata_seq_no, qcr.loss_rate, qcr.app_data),
        (0, 0, &[][..])
    );
    assert_eq!(
        h.events(),
        [ClientEvent::Joined {
            client_id: CLIENT_ID
        }]
    );
    assert_eq!(h.client.stats().client_id, Some(CLIENT_ID));
    h.advance(Duration::from_secs(2));
    // No JOIN after the JOINACK; until the session's multicast is heard, the QCR repeats
    // every second in its voluntary form (deviation, see `next_voluntary_qcr`).
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for bytes in &sent {
        let Body::Qcr(qcr) = decode(bytes).body else {
            panic!("only QCRs expected")
        };
        assert_eq!((qcr.qcc_seq_no, qcr.server_time), (0, 0));
    }

    // A repeated JOINACK means our QCR was lost: the QCR is repeated.
    h.feed(Body::JoinAck(mt::JoinAck {
        client_id: CLIENT_ID,
        min_nack_backoff: 10,
        max_nack_backoff: 20,
        rtt: 0,
        client_time: 0,
    }));
    let sent = h.sent();
    let Body::Qcr(qcr) = decode(&sent[0]).body else {
        panic!("not a QCR")
    };
    assert_eq!(qcr.server_time, h.server_time);
    assert!(h.events().is_empty());
}

#[test]
fn join_timeout_finishes_without_leave() {
    let mut h = Harness::new(1000);
    h.advance(Duration::from_secs(5));
    let sent = h.sent();
    assert!(opcodes(&sent).iter().all(|&op| op == mt::OpCode::Join));
    assert_eq!(sent.len(), 10, "JOIN at 0, 0.5, ..., 4.5 s");
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::TimedOut(Phase::Join))]
    );
    assert!(h.client.is_finished());
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn qcc_answered_within_backoff_and_voluntary_qcr_every_20s() {
    let mut h = Harness::new(1000);
    h.join(10, 20);
    h.odata(1, 1, 0, 1);
    h.advance(Duration::from_secs(1));
    h.sent();
    h.feed(Body::Qcc(mt::Qcc {
        qcc_seq_no: 5,
        qcr_backoff: 300,
    }));
    let qcc_time = h.server_time;
    let qcc_at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(300))
        .expect("a QCR");
    let waited = h.now - qcc_at;
    let Body::Qcr(qcr) = decode(&bytes).body else {
        panic!("not a QCR")
    };
    assert_eq!(qcr.qcc_seq_no, 5);
    assert_eq!(qcr.server_time, qcc_time);
    assert_eq!(u128::from(qcr.backoff), waited.as_millis());
    assert_eq!(qcr.hi_odata_seq_no, 1);
    assert_eq!(
        MaPacket::decode(qcr.app_data).unwrap(),
        MaPacket::Progress(ma::Progress {
            time_in_session: 1,
            progress: 10
        })
    );
    // A stale QCC is dropped.
    h.feed(Body::Qcc(mt::Qcc {
        qcc_seq_no: 5,
        qcr_backoff: 0,
    }));
    h.advance(Duration::from_millis(10));
    assert!(h.sent().is_empty());
    // Nothing for 20 s after that QCR: a voluntary QCR.
    let (at, bytes) = h
        .next_sent_within(Duration::from_secs(21))
        .expect("voluntary QCR");
    assert_eq!(at, (qcc_at - h.start) + waited + FORCE_QCC_INTERVAL);
    let Body::Qcr(qcr) = decode(&bytes).body else {
        panic!("not a QCR")
    };
    assert_eq!((qcr.qcc_seq_no, qcr.backoff, qcr.server_time), (0, 0, 0));
    assert!(matches!(
        MaPacket::decode(qcr.app_data),
        Ok(MaPacket::Progress(_))
    ));
}

#[test]
fn pollack_reports_missing_block_ranges() {
    let mut h = Harness::new(1000);
    h.join(10, 20);
    for (seq, block) in [(1, 1), (2, 2), (3, 5)] {
        assert!(h.odata(seq, 1, 0, block).is_some());
    }
    h.sent();
    let srvcir = MaPacket::SrvCir.encode();
    h.feed(Body::Poll(mt::Poll {
        poll_seq_no: 3,
        backoff: 50,
        app_data: &srvcir,
    }));
    let poll_at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(50))
        .expect("a POLLACK");
    assert!(h.now - poll_at <= Duration::from_millis(50));
    let Body::PollAck(ack) = decode(&bytes).body else {
        panic!("not a POLLACK")
    };
    assert_eq!((ack.client_id, ack.poll_seq_no), (CLIENT_ID, 3));
    let MaPacket::CntCir(cir) = MaPacket::decode(ack.app_data).unwrap() else {
        panic!("not a CNTCIR")
    };
    assert_eq!(cir.progress, 30);
    let ranges: Vec<_> = cir.ranges.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(ranges, [(3, 4), (6, 10)]);
    assert_eq!(h.client.missing_block_ranges(64), ranges);
    // Stale POLL: no answer.
    h.feed(Body::Poll(mt::Poll {
        poll_seq_no: 2,
        backoff: 0,
        app_data: &srvcir,
    }));
    h.advance(Duration::from_millis(5));
    assert!(h.sent().is_empty());
}

#[test]
fn pollack_caps_ranges_at_64() {
    let mut h = Harness::new(300 * u64::from(BLOCK_SIZE));
    h.join(10, 20);
    for k in 0..150u64 {
        h.odata(k + 1, 1, 0, 2 * k + 1);
    }
    h.sent();
    let srvcir = MaPacket::SrvCir.encode();
    h.feed(Body::Poll(mt::Poll {
        poll_seq_no: 1,
        backoff: 0,
        app_data: &srvcir,
    }));
    let (_, bytes) = h.next_sent_within(Duration::ZERO).expect("a POLLACK");
    let Body::PollAck(ack) = decode(&bytes).body else {
        panic!("not a POLLACK")
    };
    let MaPacket::CntCir(cir) = MaPacket::decode(ack.app_data).unwrap() else {
        panic!("not a CNTCIR")
    };
    assert_eq!(cir.ranges.len(), ma::MAX_CNTCIR_RANGES);
    assert_eq!((cir.ranges[0].start, cir.ranges[63].end), (2, 128));
}

#[test]
fn non_master_nacks_after_backoff_and_rearms() {
    let mut h = Harness::new(10_000);
    h.join(100, 300);
    h.odata(1, 1, 0, 1);
    h.odata(4, 1, 0, 4);
    assert!(h.sent().is_empty(), "no immediate NACK for a non-master");
    let gap_at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(300))
        .expect("a NACK");
    let delay = h.now - gap_at;
    assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_millis(300));
    let Body::Nack(nack) = decode(&bytes).body else {
        panic!("not a NACK")
    };
    assert_eq!(nack.client_id, CLIENT_ID);
    assert_eq!(nack.hi_odata_seq_no, 4);
    assert_eq!(nack.ranges, [SeqRange { start: 2, end: 3 }]);
    assert!(nack.loss_rate > 0, "two losses were seen");
    // Re-armed: repeats while the gap stays.
    let sent_at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(300))
        .expect("a second NACK");
    assert!(h.now - sent_at >= Duration::from_millis(100));
    assert!(matches!(decode(&bytes).body, Body::Nack(_)));
    // Repaired: the timer fires once more and then stays quiet.
    assert!(h.rdata(2, 1, 0, 2).is_some());
    assert!(h.rdata(3, 1, 0, 3).is_some());
    h.advance(Duration::from_secs(2));
    assert!(h.sent().is_empty());
    assert_eq!(h.client.stats().nacks_sent, 2);
    assert_eq!(h.client.stats().rdata_packets, 2);
}

#[test]
fn unsent_acks_are_replaced_by_newer_ones_but_keep_their_place_before_other_packets() {
    let mut h = Harness::new(10_000);
    h.join(100, 300);
    h.feed(spm(1, CLIENT_ID, 100, 300, 0, 0));
    h.events();
    h.sent();
    // Three packets handled before anything is sent: one ACK, for the newest.
    for seq in 1..=3 {
        let payload = block_payload(10_000, seq);
        h.feed(Body::OData(data_body(seq, 1, CLIENT_ID, &payload, None)));
    }
    let sent = h.sent();
    assert_eq!(opcodes(&sent), [mt::OpCode::Ack]);
    let Body::Ack(ack) = decode(&sent[0]).body else {
        unreachable!()
    };
    assert_eq!((ack.odata_seq_no, ack.hi_odata_seq_no), (3, 3));
    // A gap: the ACK for 5 is queued, then the master's immediate NACK after it; the ACK
    // for 6 comes after the NACK instead of replacing the ACK before it.
    let payload = block_payload(10_000, 5);
    h.feed(Body::OData(data_body(5, 1, CLIENT_ID, &payload, None)));
    h.advance(Duration::ZERO);
    let payload = block_payload(10_000, 6);
    h.feed(Body::OData(data_body(6, 1, CLIENT_ID, &payload, None)));
    let sent = h.sent();
    assert_eq!(
        opcodes(&sent),
        [mt::OpCode::Ack, mt::OpCode::Nack, mt::OpCode::Ack]
    );
    let Body::Ack(last) = decode(&sent[2]).body else {
        unreachable!()
    };
    assert_eq!((last.odata_seq_no, last.hi_odata_seq_no), (3, 6));
}

#[test]
fn master_acks_every_packet_and_nacks_at_once() {
    let mut h = Harness::new(10_000);
    h.join(100, 300);
    h.feed(spm(1, CLIENT_ID, 100, 300, 0, 0));
    assert_eq!(h.events(), [ClientEvent::MasterChanged { is_master: true }]);
    assert!(h.client.stats().is_master);
    let sent = h.sent();
    let Body::Ack(ack) = decode(&sent[0]).body else {
        panic!("not an ACK")
    };
    assert_eq!(
        (ack.client_id, ack.odata_seq_no, ack.server_time),
        (CLIENT_ID, 0, h.server_time)
    );

    h.odata(1, 1, CLIENT_ID, 1);
    let sent = h.sent();
    let Body::Ack(ack) = decode(&sent[0]).body else {
        panic!("not an ACK")
    };
    assert_eq!(
        (ack.odata_seq_no, ack.hi_odata_seq_no, ack.server_time),
        (1, 1, h.server_time)
    );

    h.odata(3, 1, CLIENT_ID, 3);
    let sent = h.sent();
    let Body::Ack(ack) = decode(&sent[0]).body else {
        panic!("not an ACK")
    };
    assert_eq!((ack.odata_seq_no, ack.hi_odata_seq_no), (1, 3));
    assert_eq!(h.client.poll_timeout(), Some(h.now), "master NACKs at once");
    h.advance(Duration::ZERO);
    let sent = h.sent();
    let Body::Nack(nack) = decode(&sent[0]).body else {
        panic!("not a NACK")
    };
    assert_eq!(nack.ranges, [SeqRange { start: 2, end: 2 }]);

    // FW_LEAD below the packet's seq: no ACK; at or above: ACK.
    let payload = block_payload(10_000, 4);
    h.feed(Body::OData(data_body(4, 1, CLIENT_ID, &payload, Some(3))));
    assert!(h.sent().is_empty());
    let payload = block_payload(10_000, 5);
    h.feed(Body::OData(data_body(5, 1, CLIENT_ID, &payload, Some(5))));
    assert_eq!(opcodes(&h.sent()), [mt::OpCode::Ack]);
    // RDATA is ACKed too, and the repair moves the continuous point.
    h.rdata(2, 1, CLIENT_ID, 2);
    let sent = h.sent();
    let Body::Ack(ack) = decode(&sent[0]).body else {
        panic!("not an ACK")
    };
    assert_eq!(ack.odata_seq_no, 5);

    // Another master named: we stop ACKing.
    h.feed(spm(2, 99, 100, 300, 1, 5));
    assert_eq!(
        h.events(),
        [ClientEvent::MasterChanged { is_master: false }]
    );
    h.odata(6, 1, 99, 6);
    assert!(h.sent().is_empty());
}

#[test]
fn nack_carries_at_most_84_ranges() {
    let mut h = Harness::new(1_000_000);
    h.join(0, 0);
    for k in 0..=100u64 {
        h.odata(2 * k + 1, 1, 0, k + 1);
    }
    h.advance(Duration::ZERO);
    let sent = h.sent();
    let Body::Nack(nack) = decode(&sent[0]).body else {
        panic!("not a NACK")
    };
    assert_eq!(nack.ranges.len(), MAX_NACK_RANGES);
    assert_eq!(nack.ranges[0], SeqRange { start: 2, end: 2 });
    // Repair the first 84 gaps: the next NACK carries the other 16.
    for k in 1..=84u64 {
        h.rdata(2 * k, 1, 0, 200 + k);
    }
    h.advance(MIN_NACK_REARM);
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "one NACK per re-arm interval");
    let Body::Nack(nack) = decode(&sent[0]).body else {
        panic!("not a NACK")
    };
    assert_eq!(nack.ranges.len(), 16);
    assert_eq!(
        nack.ranges[0],
        SeqRange {
            start: 170,
            end: 170
        }
    );
}

#[test]
fn spm_announces_missing_odata() {
    let mut h = Harness::new(10_000);
    h.join(50, 50);
    h.odata(1, 1, 0, 1);
    // The server says it has sent up to 5: 2..=5 are missing.
    h.feed(spm(1, 0, 50, 50, 1, 5));
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(50))
        .expect("a NACK");
    let Body::Nack(nack) = decode(&bytes).body else {
        panic!("not a NACK")
    };
    assert_eq!(nack.ranges, [SeqRange { start: 2, end: 5 }]);
    // Trail > Lead is impossible.
    let drops = h.client.stats().other_drops;
    h.feed(spm(2, 0, 50, 50, 9, 5));
    assert_eq!(h.client.stats().other_drops, drops + 1);
    // Stale SPM: ignored.
    h.feed(spm(1, CLIENT_ID, 50, 50, 1, 5));
    assert!(!h.client.stats().is_master);
}

#[test]
fn late_joiner_ignores_odata_before_the_first_spm_lead() {
    let mut h = Harness::new(10_000);
    h.join(50, 50);
    h.feed(spm(1, 0, 50, 50, 10, 20));
    assert!(h.odata(15, 10, 0, 1).is_none());
    assert!(h.odata(21, 10, 0, 2).is_some());
    h.advance(Duration::from_secs(1));
    assert!(
        h.sent()
            .iter()
            .all(|b| !matches!(decode(b).body, Body::Nack(_)))
    );
    assert_eq!(h.client.stats().loss_rate, 0.0);
}

fn nacks_in(sent: &[Vec<u8>]) -> Vec<Vec<SeqRange>> {
    sent.iter()
        .filter_map(|b| match decode(b).body {
            Body::Nack(nack) => Some(nack.ranges),
            _ => None,
        })
        .collect()
}

#[test]
fn late_joiner_keeps_a_repair_heard_first_but_does_not_nack_the_backlog() {
    let mut h = Harness::new(10_000);
    h.join(50, 50);
    // Another client's repair of a packet sent before we joined: the block is kept.
    assert!(h.rdata(5, 1, 0, 5).is_some());
    // FirstODATASeqNo comes from the SPM, not from the repair: 6..=40 went out before we
    // joined, the next MS-WDSMA round brings their blocks, and they are not NACKed.
    h.feed(spm(1, 0, 50, 50, 1, 40));
    assert!(h.odata(41, 1, 0, 41).is_some());
    h.advance(Duration::from_secs(1));
    assert_eq!(nacks_in(&h.sent()), Vec::<Vec<SeqRange>>::new());
    assert_eq!(h.client.stats().loss_rate, 0.0);
    // A gap after FirstODATASeqNo is NACKed as usual, and repairs after it count.
    assert!(h.odata(43, 1, 0, 43).is_some());
    h.advance(Duration::from_millis(60));
    assert_eq!(nacks_in(&h.sent()), [[SeqRange { start: 42, end: 42 }]]);
    assert!(h.rdata(42, 1, 0, 42).is_some());
    h.advance(Duration::from_secs(1));
    assert_eq!(nacks_in(&h.sent()), Vec::<Vec<SeqRange>>::new());
}

#[test]
fn repair_heard_first_does_not_end_the_fast_voluntary_qcrs() {
    let mut h = Harness::new(10_000);
    h.join(50, 50);
    // A repair for another client proves nothing about our QCR reaching the server.
    assert!(h.rdata(5, 1, 0, 5).is_some());
    h.advance(Duration::from_millis(1500));
    let sent = h.sent();
    assert_eq!(opcodes(&sent), [mt::OpCode::Qcr], "{sent:?}");
    // An SPM does show the session's multicast: the next voluntary QCR is 20 s away.
    h.feed(spm(1, 0, 50, 50, 1, 40));
    h.advance(Duration::from_secs(5));
    assert!(h.sent().is_empty());
}
