//! Scripted fake clients built from wire packets, on a virtual clock.

use super::*;
use crate::proto::SeedableRng;
use crate::wire::ma::{BlockRange, CntCir, Progress};
use std::net::{IpAddr, Ipv4Addr};

mod robustness;

const SESSION: u32 = 0x1234_abcd;
const BLOCK: u32 = 100;

fn group() -> SocketAddr {
    "239.255.77.1:40000".parse().unwrap()
}

fn client_addr(n: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 50000 + n)
}

/// Block contents: every byte is the low byte of the block number.
struct PatternSource;

impl BlockSource for PatternSource {
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.fill(block_number as u8);
        Ok(())
    }
}

struct Harness {
    server: ServerSession,
    now: Instant,
    start: Instant,
    sent: Vec<(SocketAddr, Vec<u8>)>,
}

fn encode(body: Body<'_>, sender_time: u64) -> Vec<u8> {
    Packet {
        security: Security::Checksum,
        session_id: SESSION,
        sender_time,
        body,
    }
    .encode()
}

fn opcode(bytes: &[u8]) -> mt::OpCode {
    Packet::decode(bytes).unwrap().body.opcode()
}

impl Harness {
    fn new(blocks: u64) -> Self {
        Self::with(SessionConfig::new(
            SESSION,
            group(),
            blocks * u64::from(BLOCK),
            BLOCK,
        ))
    }

    fn with(config: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            server: ServerSession::new(config, now, SmallRng::seed_from_u64(7)),
            now,
            start: now,
            sent: Vec::new(),
        }
    }

    fn ms(&self) -> u64 {
        millis_since(self.start, self.now)
    }

    fn drain(&mut self) {
        let mut buf = Vec::new();
        while let Some(transmit) = self
            .server
            .poll_transmit(self.now, &mut buf, &mut PatternSource)
            .unwrap()
        {
            self.sent
                .push((transmit.destination, std::mem::take(&mut buf)));
        }
    }

    fn recv(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.server.handle_datagram(self.now, from, bytes);
        self.drain();
    }

    /// Runs timers up to `now + d`.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..100_000 {
            match self.server.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.server.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = target;
        self.server.handle_timeout(self.now);
        self.drain();
    }

    fn take(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.sent)
    }

    fn take_op(&mut self, op: mt::OpCode) -> Vec<Vec<u8>> {
        self.take()
            .into_iter()
            .filter(|(_, b)| opcode(b) == op)
            .map(|(_, b)| b)
            .collect()
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    fn join(&mut self, n: u16) -> u32 {
        let join = encode(
            Body::Join(mt::Join {
                client_name: format!("client{n}"),
                ip_address: client_addr(n).ip(),
                mac_address: &[0, 1, 2, 3, 4, 5],
                user_sid: None,
                capabilities: Some(&[mt::CAP_MULTISTREAM]),
            }),
            1000 + u64::from(n),
        );
        self.recv(client_addr(n), &join);
        let sent = self.take();
        let (acks, others): (Vec<_>, Vec<_>) = sent
            .into_iter()
            .partition(|(_, b)| opcode(b) == mt::OpCode::JoinAck);
        self.sent = others;
        let (dest, bytes) = acks.last().expect("JOINACK");
        assert_eq!(*dest, client_addr(n));
        match Packet::decode(bytes).unwrap().body {
            Body::JoinAck(ack) => {
                assert_eq!(ack.client_time, 1000 + u64::from(n));
                ack.client_id
            }
            _ => unreachable!(),
        }
    }

    /// JOIN then the QCR that completes it; `delay_ms` is the simulated round trip.
    fn join_active(&mut self, n: u16, delay_ms: u64) -> u32 {
        let server_time = self.ms();
        let id = self.join(n);
        self.now += Duration::from_millis(delay_ms);
        self.qcr(n, id, 0, server_time, None);
        id
    }

    fn qcr(
        &mut self,
        n: u16,
        id: u32,
        qcc_seq_no: u64,
        server_time: u64,
        progress: Option<(u8, u32)>,
    ) {
        let mut app = Vec::new();
        if let Some((progress, time_in_session)) = progress {
            MaPacket::Progress(Progress {
                time_in_session,
                progress,
            })
            .encode_into(&mut app);
        }
        let qcr = encode(
            Body::Qcr(mt::Qcr {
                client_id: id,
                qcc_seq_no,
                backoff: 0,
                server_time,
                hi_odata_seq_no: 0,
                loss_rate: 0,
                app_data: &app,
                cpu_util: None,
                mem_util: None,
                net_util: None,
            }),
            5,
        );
        self.recv(client_addr(n), &qcr);
    }

    fn ack(&mut self, n: u16, id: u32, seq: u64, server_time: u64) {
        self.ack_holding(n, id, seq, seq, server_time);
    }

    /// An ACK of everything up to `seq` from a master that also holds packets up to `held`.
    fn ack_holding(&mut self, n: u16, id: u32, seq: u64, held: u64, server_time: u64) {
        let ack = encode(
            Body::Ack(mt::Ack {
                client_id: id,
                odata_seq_no: seq,
                server_time,
                hi_odata_seq_no: held,
                loss_rate: 0,
            }),
            5,
        );
        self.recv(client_addr(n), &ack);
    }

    fn nack(&mut self, n: u16, id: u32, ranges: Vec<mt::SeqRange>) {
        self.nack_with_loss(n, id, ranges, 0.0);
    }

    fn nack_with_loss(&mut self, n: u16, id: u32, ranges: Vec<mt::SeqRange>, loss: f64) {
        let nack = encode(
            Body::Nack(mt::Nack {
                client_id: id,
                hi_odata_seq_no: 0,
                loss_rate: mt::loss_rate_to_wire(loss),
                ranges,
            }),
            5,
        );
        self.recv(client_addr(n), &nack);
    }

    fn pollack(&mut self, n: u16, id: u32, poll_seq_no: u64, cntcir: CntCir) {
        let mut app = Vec::new();
        MaPacket::CntCir(cntcir).encode_into(&mut app);
        let pollack = encode(
            Body::PollAck(mt::PollAck {
                client_id: id,
                poll_seq_no,
                app_data: &app,
            }),
            5,
        );
        self.recv(client_addr(n), &pollack);
    }

    /// Answers the latest QCC from every listed client and waits for the election.
    fn answer_qcc(&mut self, clients: &[(u16, u32, u64)]) {
        let qccs = self.take_op(mt::OpCode::Qcc);
        let qcc = Packet::decode(qccs.last().expect("a QCC")).unwrap();
        let Body::Qcc(q) = qcc.body else {
            unreachable!()
        };
        for &(n, id, delay) in clients {
            let at = qcc.sender_time;
            let now = self.now;
            self.now = now + Duration::from_millis(delay);
            self.qcr(n, id, q.qcc_seq_no, at, None);
            self.now = now;
        }
        self.advance(Duration::from_millis(u64::from(q.qcr_backoff) + 1));
    }

    /// One client, elected master, DataState entered.
    /// A single master that asked for every block, with packets 1..=13 sent and 1..=4
    /// acknowledged (window 9), and what was sent so far taken.
    fn sending_round(blocks: u64) -> (Self, u32) {
        let (mut h, id) = Self::single_master(blocks);
        let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
        h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, blocks)]));
        h.advance(Duration::from_millis(200));
        h.ack(1, id, 0, h.ms());
        h.ack(1, id, 1, h.ms());
        h.ack(1, id, 4, h.ms());
        h.take();
        (h, id)
    }

    fn single_master(blocks: u64) -> (Self, u32) {
        let mut h = Self::new(blocks);
        let id = h.join_active(1, 2);
        h.answer_qcc(&[(1, id, 2)]);
        assert_eq!(h.server.master_client_id(), Some(id));
        (h, id)
    }
}

fn last_poll_seq(polls: &[Vec<u8>]) -> u64 {
    match Packet::decode(polls.last().expect("a POLL")).unwrap().body {
        Body::Poll(p) => p.poll_seq_no,
        _ => unreachable!(),
    }
}

fn data_seqs(packets: &[(SocketAddr, Vec<u8>)], op: mt::OpCode) -> Vec<(u64, u64)> {
    packets
        .iter()
        .filter_map(|(_, b)| {
            let p = Packet::decode(b).ok()?;
            let (Body::OData(d) | Body::RData(d)) = &p.body else {
                return None;
            };
            if p.body.opcode() != op {
                return None;
            }
            match MaPacket::decode(d.data).ok()? {
                MaPacket::Data(block) => Some((d.odata_seq_no, block.block_number)),
                _ => None,
            }
        })
        .collect()
}

fn cntcir(progress: u8, time_in_session: u32, ranges: &[(u64, u64)]) -> CntCir {
    CntCir {
        progress,
        time_in_session,
        ranges: ranges
            .iter()
            .map(|&(start, end)| BlockRange { start, end })
            .collect(),
    }
}

#[test]
fn join_gets_joinack_resent_three_times_then_waits_for_a_late_qcr() {
    let mut h = Harness::new(10);
    let id = h.join(1);
    assert_ne!(id, 0);
    assert!(
        matches!(h.events()[0], ServerEvent::ClientJoined { client_id, .. } if client_id == id)
    );
    // Three resends at 500 ms, to the JOIN's source, then no more JOINACKs.
    for _ in 0..3 {
        h.advance(Duration::from_millis(500));
        let acks = h.take();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].0, client_addr(1));
        assert_eq!(opcode(&acks[0].1), mt::OpCode::JoinAck);
    }
    h.advance(Duration::from_millis(500));
    assert!(h.take().is_empty());
    // Deviation from §3.1.6.1: the record stays, so a client whose QCRs were lost is
    // activated by its next (voluntary) QCR instead of being stranded.
    assert_eq!(h.server.stats().pending_clients, 1);
    h.advance(Duration::from_secs(5));
    h.qcr(1, id, 0, 0, None);
    assert_eq!(h.server.stats().active_clients, 1);
    assert_eq!(h.server.stats().pending_clients, 0);
    assert_eq!(h.server.stats().dropped_unknown_client, 0);
}

#[test]
fn silent_pending_client_is_forgotten_after_the_dead_timeout() {
    let mut h = Harness::new(10);
    let id = h.join(1);
    h.advance(Duration::from_secs(61));
    h.advance(Duration::from_millis(500));
    assert_eq!(h.server.stats().pending_expired, 1);
    assert_eq!(h.server.stats().pending_clients, 0);
    // A QCR for the forgotten client is an unknown client now.
    h.qcr(1, id, 0, 0, None);
    assert_eq!(h.server.stats().dropped_unknown_client, 1);
}

#[test]
fn repeated_join_keeps_client_id_and_qcr_activates() {
    let mut h = Harness::new(10);
    let first = h.join(1);
    let second = h.join(1);
    assert_eq!(first, second);
    assert_eq!(h.server.stats().pending_clients, 1);
    h.qcr(1, first, 0, 0, None);
    assert_eq!(h.server.stats().active_clients, 1);
    // Activation of the first client starts the QCC state at once.
    assert_eq!(h.take_op(mt::OpCode::Qcc).len(), 1);
    h.advance(Duration::from_millis(600));
    assert!(h.take_op(mt::OpCode::JoinAck).is_empty());
}

#[test]
fn qcc_elects_the_client_with_the_highest_rtt() {
    let mut h = Harness::new(10);
    let a = h.join_active(1, 1);
    let b = h.join_active(2, 1);
    let c = h.join_active(3, 1);
    h.events();
    // Re-enter a fresh QCC round: all three answer with different delays; b is slowest.
    h.advance(Duration::from_millis(QCC_MIN_WAIT_MS + 5));
    let _ = h.take();
    h.advance(Duration::from_millis(QCC_MIN_WAIT_MS + 5));
    h.answer_qcc(&[(1, a, 3), (2, b, 30), (3, c, 10)]);
    assert_eq!(h.server.master_client_id(), Some(b));
    assert!(
        h.events()
            .contains(&ServerEvent::MasterChanged { client_id: Some(b) })
    );
    // DataState: SPM naming the master, and the first POLL.
    let sent = h.take();
    let spm = sent
        .iter()
        .find_map(|(_, b)| match Packet::decode(b).unwrap().body {
            Body::Spm(s) => Some(s),
            _ => None,
        })
        .expect("SPM");
    assert_eq!(spm.master_client_id, b);
    assert!(sent.iter().any(|(_, b)| opcode(b) == mt::OpCode::Poll));
}

#[test]
fn qcc_repeats_until_someone_answers() {
    let mut h = Harness::new(10);
    let _id = h.join_active(1, 1);
    assert_eq!(h.take_op(mt::OpCode::Qcc).len(), 1);
    h.advance(Duration::from_millis(QCC_MIN_WAIT_MS * 3 + 10));
    assert_eq!(h.take_op(mt::OpCode::Qcc).len(), 3);
    assert_eq!(h.server.master_client_id(), None);
}

#[test]
fn spm_interval_backoffs_and_reelection_after_five_silent_spms() {
    let (mut h, id) = Harness::single_master(10);
    let spms: Vec<mt::Spm> = h
        .take_op(mt::OpCode::Spm)
        .iter()
        .map(|b| match Packet::decode(b).unwrap().body {
            Body::Spm(s) => s,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(spms.len(), 1);
    // Master RTT 2 ms: Min = max(2 x 2, 1) = 4, Max = Min + 1/5 = 4; interval 220 ms.
    assert_eq!(spms[0].rtt, 2);
    assert_eq!(spms[0].min_nack_backoff, 4);
    assert_eq!(spms[0].max_nack_backoff, 4);
    h.advance(Duration::from_millis(218));
    assert!(h.take_op(mt::OpCode::Spm).is_empty());
    h.advance(Duration::from_millis(2));
    assert_eq!(h.take_op(mt::OpCode::Spm).len(), 1);
    // 5 SPMs counted without an ACK (the first plus four): the next timer re-elects.
    h.advance(Duration::from_millis(220 * 3));
    assert_eq!(h.take_op(mt::OpCode::Spm).len(), 3);
    h.advance(Duration::from_millis(220));
    let sent = h.take();
    assert!(sent.iter().any(|(_, b)| opcode(b) == mt::OpCode::Qcc));
    assert!(!sent.iter().any(|(_, b)| opcode(b) == mt::OpCode::Spm));
    // Answering re-elects the same client and SPMs resume.
    let qcc_bytes = sent
        .iter()
        .rev()
        .find(|(_, b)| opcode(b) == mt::OpCode::Qcc)
        .unwrap();
    h.sent.push(qcc_bytes.clone());
    h.answer_qcc(&[(1, id, 1)]);
    assert_eq!(h.server.master_client_id(), Some(id));
    assert_eq!(h.take_op(mt::OpCode::Spm).len(), 1);
}

#[test]
fn window_grows_with_acks_and_bounds_odata() {
    let (mut h, id) = Harness::single_master(1000);
    let polls = h.take_op(mt::OpCode::Poll);
    let poll_seq = last_poll_seq(&polls);
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, 1000)]));
    h.advance(Duration::from_millis(200));
    assert!(h.events().contains(&ServerEvent::RoundStarted {
        missing_blocks: 1000
    }));
    // No ACK yet: nothing may be sent.
    assert!(data_seqs(&h.take(), mt::OpCode::OData).is_empty());
    // ACK of the SPM (seq 0) opens a window of 1.
    h.ack(1, id, 0, h.ms());
    let sent = data_seqs(&h.take(), mt::OpCode::OData);
    assert_eq!(sent, vec![(1, 1)]);
    // Each ACK of n packets grows the window by 2n while below ExpMaxWindowSize.
    h.ack(1, id, 1, h.ms());
    assert_eq!(data_seqs(&h.take(), mt::OpCode::OData).len(), 3); // window 3: 2..=4
    h.ack(1, id, 4, h.ms());
    assert_eq!(h.server.stats().window, 9);
    assert_eq!(data_seqs(&h.take(), mt::OpCode::OData).len(), 9); // 5..=13
    // Keep acknowledging everything: growth stops at MaxWindowSize.
    let mut lead = 13;
    for _ in 0..40 {
        h.ack(1, id, lead, h.ms());
        lead += data_seqs(&h.take(), mt::OpCode::OData).len() as u64;
    }
    assert!(h.server.stats().window <= DEFAULT_MAX_WINDOW);
    assert!(h.server.stats().window >= DEFAULT_EXP_MAX_WINDOW);
    // An ACK beyond what was sent is refused.
    h.ack(1, id, lead + 10, h.ms());
    assert_eq!(h.server.stats().dropped_bad_ack, 1);
    // ODATA carry the master's ClientId and consecutive blocks.
    assert_eq!(h.server.stats().odata_sent, lead);
}

#[test]
fn nack_sends_ncf_and_rdata_with_suppression_and_shrinks_the_window_only_under_congestion() {
    let (mut h, id) = Harness::sending_round(100);
    let window = h.server.stats().window;
    h.now += Duration::from_millis(10);
    h.nack(1, id, vec![mt::SeqRange { start: 2, end: 3 }]);
    let sent = h.take();
    assert_eq!(sent[0].0, group());
    match Packet::decode(&sent[0].1).unwrap().body {
        Body::Ncf(ncf) => assert_eq!(ncf.ranges, vec![mt::SeqRange { start: 2, end: 3 }]),
        other => panic!("expected NCF, got {other:?}"),
    }
    assert_eq!(data_seqs(&sent, mt::OpCode::RData), vec![(2, 2), (3, 3)]);
    // Random loss on an idle path (no queueing, low loss rate) leaves the window alone.
    assert_eq!(h.server.stats().window, window);
    // The same NACK within 4 x RTT is confirmed but not repeated.
    h.nack(1, id, vec![mt::SeqRange { start: 2, end: 3 }]);
    let sent = h.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(opcode(&sent[0].1), mt::OpCode::Ncf);
    h.now += Duration::from_millis(4 * 2 + 1);
    h.nack(1, id, vec![mt::SeqRange { start: 3, end: 3 }]);
    assert_eq!(data_seqs(&h.take(), mt::OpCode::RData), vec![(3, 3)]);
    assert_eq!(h.server.stats().rdata_sent, 3);
    assert_eq!(h.server.stats().nacks_received, 3);
    // Heavy loss reported by the master cuts it by a quarter, once per round trip.
    h.nack_with_loss(1, id, vec![mt::SeqRange { start: 3, end: 3 }], 0.2);
    assert_eq!(h.server.stats().window, (window * 3 / 4).max(2));
    h.nack_with_loss(1, id, vec![mt::SeqRange { start: 3, end: 3 }], 0.2);
    assert_eq!(h.server.stats().window, (window * 3 / 4).max(2));
    h.now += Duration::from_millis(3);
    h.nack_with_loss(1, id, vec![mt::SeqRange { start: 3, end: 3 }], 0.2);
    assert_eq!(h.server.stats().window, (window * 3 / 4 * 3 / 4).max(2));
}

#[test]
fn a_nack_without_ranges_from_a_full_cache_always_slows_the_server() {
    let (mut h, id) = Harness::sending_round(1000);
    let window = h.server.stats().window;
    // No queueing and no loss reported: only the empty range list says "slow down".
    h.nack(1, id, vec![]);
    assert_eq!(h.server.stats().window, (window * 3 / 4).max(2));
    assert!(data_seqs(&h.take(), mt::OpCode::RData).is_empty());
}

#[test]
fn the_window_counts_from_what_the_master_holds_past_a_gap() {
    let (mut h, id) = Harness::sending_round(1000);
    assert_eq!(h.server.stats().window, 9);
    assert_eq!(h.server.stats().odata_sent, 13);
    // Packet 5 is lost: the master's cumulative ACK stays at 4, but it holds up to 13. The
    // window (9 + 2 x 9 = 27) now counts from 13, so 14..=40 go out at once; counting from
    // MCTrail (4) would allow only 14..=31.
    h.ack_holding(1, id, 4, 13, h.ms());
    assert_eq!(h.server.stats().window, 27);
    let sent = data_seqs(&h.take(), mt::OpCode::OData);
    assert_eq!(sent.first().map(|s| s.0), Some(14));
    assert_eq!(sent.last().map(|s| s.0), Some(40));
    // A claim beyond what was sent counts as MCLead (40): window min(27 + 2 x 27, 64) = 64,
    // so 41..=104 go out. A claim below the cumulative ACK opens nothing.
    h.ack_holding(1, id, 4, 10_000, h.ms());
    assert_eq!(h.server.stats().window, 64);
    h.ack_holding(1, id, 4, 2, h.ms());
    assert_eq!(h.server.stats().odata_sent, 104);
}

#[test]
fn a_queue_building_toward_the_master_shrinks_the_window() {
    let (mut h, id) = Harness::single_master(100_000);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, 100_000)]));
    h.advance(Duration::from_millis(200));
    // Acknowledge promptly (RTT 0) until the window is past ExpMaxWindowSize.
    h.ack(1, id, 0, h.ms());
    let mut lead = 0;
    for _ in 0..12 {
        lead += data_seqs(&h.take(), mt::OpCode::OData).len() as u64;
        h.ack(1, id, lead, h.ms());
    }
    let open = h.server.stats().window;
    assert!(open > DEFAULT_EXP_MAX_WINDOW, "window {open}");
    // Now every ACK echoes a send time 30 ms old: 30 ms of queueing. The window shrinks by an
    // eighth per round trip instead of growing.
    let mut last = open;
    for _ in 0..5 {
        lead += data_seqs(&h.take(), mt::OpCode::OData).len() as u64;
        let sent_at = h.ms();
        h.now += Duration::from_millis(30);
        h.ack(1, id, lead, sent_at);
        let window = h.server.stats().window;
        assert_eq!(window, (last * 7 / 8).max(2));
        last = window;
    }
    // The queue drains (RTT back to the minimum): growth resumes.
    lead += data_seqs(&h.take(), mt::OpCode::OData).len() as u64;
    h.ack(1, id, lead, h.ms());
    assert!(h.server.stats().window > last);
}

#[test]
fn poll_round_merges_ranges_and_applies_the_30_second_rule() {
    let mut h = Harness::new(1000);
    let a = h.join_active(1, 1);
    let b = h.join_active(2, 1);
    let c = h.join_active(3, 1);
    h.answer_qcc(&[(1, a, 5), (2, b, 1), (3, c, 1)]);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, a, poll_seq, cntcir(10, 100, &[(1, 5), (20, 30)]));
    h.pollack(2, b, poll_seq, cntcir(10, 80, &[(4, 10), (31, 31)]));
    // Joined 31 s after the oldest: waits for the next round.
    h.pollack(3, c, poll_seq, cntcir(0, 69, &[(500, 600)]));
    // A stale POLLACK is not counted.
    h.pollack(3, c, poll_seq + 7, cntcir(0, 69, &[(900, 950)]));
    assert_eq!(h.server.stats().dropped_stale, 1);
    h.advance(Duration::from_millis(200));
    assert!(h.events().contains(&ServerEvent::RoundStarted {
        missing_blocks: 10 + 12
    }));
    // Merged: 1..=10 and 20..=31 are sent in order once the window opens.
    let mut blocks = Vec::new();
    h.ack(1, a, 0, h.ms());
    for _ in 0..20 {
        let sent = data_seqs(&h.take(), mt::OpCode::OData);
        blocks.extend(sent.iter().map(|(_, b)| *b));
        let lead = h.server.stats().odata_sent;
        h.ack(1, a, lead, h.ms());
    }
    let expected: Vec<u64> = (1..=10).chain(20..=31).collect();
    assert_eq!(blocks, expected);
}

#[test]
fn data_round_ends_with_data_empty_then_next_poll() {
    let (mut h, id) = Harness::single_master(10);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(3, 4)]));
    h.advance(Duration::from_millis(200));
    h.ack(1, id, 0, h.ms());
    h.ack(1, id, 1, h.ms());
    assert_eq!(
        data_seqs(&h.take(), mt::OpCode::OData),
        vec![(1, 3), (2, 4)]
    );
    // Nothing more to send, but not yet acknowledged: no new POLL.
    h.advance(Duration::from_millis(400));
    assert!(h.take_op(mt::OpCode::Poll).is_empty());
    h.ack(1, id, 2, h.ms());
    h.advance(Duration::from_millis(200));
    let polls = h.take_op(mt::OpCode::Poll);
    assert!(!polls.is_empty());
    let first = match Packet::decode(&polls[0]).unwrap().body {
        Body::Poll(p) => p.poll_seq_no,
        _ => unreachable!(),
    };
    assert_eq!(first, poll_seq + 1);
    // Unanswered (the master has not replied yet): the next POLL follows at once.
    h.advance(Duration::from_millis(200));
    let polls = h.take_op(mt::OpCode::Poll);
    assert_eq!(
        polls.len(),
        1,
        "an unanswered query is repeated after its backoff"
    );
    // Everyone complete: the round is empty and the server idles, polling about once a second.
    h.pollack(1, id, last_poll_seq(&polls), cntcir(100, 3, &[]));
    h.advance(Duration::from_millis(200));
    assert_eq!(h.server.stats().rounds_started, 1);
    h.advance(Duration::from_millis(900));
    assert!(h.take_op(mt::OpCode::Poll).len() <= 1);
    // A client that stays active but silent gets the query repeated three times at once,
    // then about once a second: at most 4 + 3 POLLs in the next 2.2 s, not one per 200 ms.
    h.advance(Duration::from_millis(2200));
    let polls = h.take_op(mt::OpCode::Poll);
    assert!((4..=7).contains(&polls.len()), "{} polls", polls.len());
}

#[test]
fn rolling_join_gets_its_ranges_in_the_next_round() {
    let (mut h, id) = Harness::single_master(20);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(0, 1, &[(1, 20)]));
    h.advance(Duration::from_millis(200));
    h.ack(1, id, 0, h.ms());
    let late = h.join_active(2, 1);
    let mut lead = 0;
    for _ in 0..10 {
        lead = h.server.stats().odata_sent;
        h.ack(1, id, lead, h.ms());
    }
    assert_eq!(lead, 20);
    // The master's ACK of the last packet ended the round: the next POLL is already out.
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    // The late client missed blocks 1..=12.
    h.pollack(1, id, poll_seq, cntcir(100, 5, &[]));
    h.pollack(2, late, poll_seq, cntcir(40, 2, &[(1, 12)]));
    h.advance(Duration::from_millis(200));
    h.ack(1, id, lead, h.ms());
    for _ in 0..10 {
        let sent = h.server.stats().odata_sent;
        h.ack(1, id, sent, h.ms());
    }
    let blocks: Vec<u64> = data_seqs(&h.take(), mt::OpCode::OData)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(blocks, (1..=12).collect::<Vec<_>>());
}

#[test]
fn a_client_joining_an_idle_session_is_polled_at_once() {
    let (mut h, id) = Harness::single_master(10);
    let poll_seq = last_poll_seq(&h.take_op(mt::OpCode::Poll));
    h.pollack(1, id, poll_seq, cntcir(100, 3, &[]));
    h.advance(Duration::from_millis(250));
    // Everyone complete: the session idles, next POLL about a second away.
    h.take();
    h.advance(Duration::from_millis(100));
    assert!(h.take_op(mt::OpCode::Poll).is_empty());
    let polls_before = h.server.stats().poll_sent;
    let rounds_before = h.server.stats().rounds_started;
    let joined_at = h.ms();
    let late = h.join_active(2, 1);
    let polls = h.take_op(mt::OpCode::Poll);
    assert_eq!(
        polls.len(),
        1,
        "the new client is asked what it needs at once"
    );
    assert_eq!(h.server.stats().poll_sent, polls_before + 1);
    // It answers and its blocks go out in the round that follows, well before the idle
    // interval would have ended.
    h.pollack(2, late, last_poll_seq(&polls), cntcir(0, 1, &[(1, 10)]));
    h.advance(Duration::from_millis(200));
    assert_eq!(h.server.stats().rounds_started, rounds_before + 1);
    let acked = h.server.stats().odata_sent;
    h.ack(1, id, acked, h.ms());
    assert!(!data_seqs(&h.take(), mt::OpCode::OData).is_empty());
    let waited = h.ms() - joined_at;
    assert!(waited <= 250, "first data {waited} ms after the join");
}
