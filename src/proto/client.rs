//! The MS-WDSMT client (§3.2) with the MS-WDSMA client (§3.2) on top, sans-IO.
//!
//! One [`Client`] follows one session from the first JOIN to its end. Section numbers in
//! comments are MS-WDSMT unless marked MA. Where the specification is silent or contradicts
//! itself the choice is noted at the spot and in README.md's Protocol notes (anchors `pn-...`):
//! * the Missing ODATA List never starts below FirstODATASeqNo, so a late joiner does not NACK
//!   (or, as master, ACK) sequence numbers it would ignore anyway (§3.2.5.13);
//! * the loss rate is an EWMA with weight α = 500/65536 on the newest sample (§3.2.5.10 reads
//!   with the weights swapped, README.md#pn-client-loss-rate), seeded when FirstODATASeqNo is
//!   first set;
//! * LEAVE after inactivity carries INACTIVE (§2.2.11) rather than CANCELLED (§3.2.5.4.2,
//!   README.md#pn-client-inactivity);
//! * a KICK ends the session without a LEAVE (§3.2.5.15 only says terminate,
//!   README.md#pn-client-kick);
//! * the application cache counts delivered block bytes only: duplicates neither count nor
//!   trigger a zero NACK (MA §3.2.5.1 sends no Cache Done for them, README.md#pn-client-cache);
//! * a NACK carries at most [`MAX_NACK_RANGES`] ranges (one 1400-byte datagram), lowest first,
//!   and the NACK timer re-arms no sooner than [`MIN_NACK_REARM`] (§3.2.5.12.1 allows 0);
//! * on DEMOTE the client switches at once and sends the old session's LEAVE when its delay
//!   runs out (§3.2.5.16 switches after sending it; the result on the wire is the same).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::Rng;

use super::Phase;
use super::blocks::BlockBitmap;
use super::missing::MissingOdataList;
use super::{SessionParams, SmallRng, millis_since, random_millis};
use crate::wire::DecodeErrorKind;
use crate::wire::ma::{self, MaPacket};
use crate::wire::mt::{self, Body, KickReason, LeaveReason, Packet, Security, SeqRange};
use crate::wire::security::{Check, Protect, SessionSecurity};

/// JoinInterval (§3.2.1.2): JOIN is re-sent this often until a JOINACK arrives.
pub const JOIN_INTERVAL: Duration = Duration::from_millis(500);
/// ForceQCCInterval (§3.2.1.2): a voluntary QCR goes out when no QCC came for this long.
pub const FORCE_QCC_INTERVAL: Duration = Duration::from_secs(20);
/// Voluntary QCR interval while no multicast packet of the session has been heard yet
/// (README.md#pn-client-voluntary-qcr).
pub const UNCONFIRMED_QCR_INTERVAL: Duration = Duration::from_secs(1);
/// MaxLeaveDelay (§3.2.1.2), used when MaxNACKBackOff is 0.
pub const MAX_LEAVE_DELAY_MS: u64 = 200;
/// Ranges per NACK: 44 header bytes + 84 × 16 = 1388 bytes, inside a 1400-byte datagram
/// (README.md#pn-client-nack-size).
pub const MAX_NACK_RANGES: usize = 84;
/// Shortest NACK re-arm interval. §3.2.5.12.1 re-arms with random Min..MaxNACKBackOff, which
/// is 0 when the server sends zero back-offs: a NACK storm (and a timer that never advances)
/// (README.md#pn-client-nack-timer).
pub const MIN_NACK_REARM: Duration = Duration::from_millis(10);
/// Default MaxAppCacheSize of MS-WDSMA (§3.2.1).
pub const DEFAULT_APP_CACHE_SIZE: u64 = 2 * 1024 * 1024;
/// Loss-rate EWMA weight α (§3.2.5.10).
pub const LOSS_RATE_ALPHA: f64 = 500.0 / 65536.0;
/// Datagrams waiting for `poll_transmit`; beyond this the oldest is dropped (the caller is
/// expected to drain after every call, so this only bounds a caller that does not).
const MAX_QUEUED_DATAGRAMS: usize = 256;
/// LEAVEs of demoted sessions still waiting for their delay.
const MAX_PENDING_LEAVES: usize = 8;
/// ClientName holds 15 UTF-16 units and a NUL (MSI §2.2.1, MT §2.2.5).
const MAX_CLIENT_NAME_UNITS: usize = 15;

/// Everything the client needs to know before it sends its first JOIN.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub params: SessionParams,
    /// The security modes and keys from the initiation reply (the checksum both ways for a
    /// UDP-initiated session).
    pub security: SessionSecurity,
    pub client_name: String,
    pub local_ip: IpAddr,
    pub mac_address: Vec<u8>,
    pub user_sid: Option<Vec<u8>>,
    /// MaxAppCacheSize (MA §3.2.1): delivered bytes the consumer may hold before `cache_done`.
    pub cache_size: u64,
    pub join_timeout: Duration,
    pub first_data_timeout: Duration,
    pub inactivity_timeout: Duration,
}

/// One block handed to the consumer; it must report the bytes with [`Client::cache_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub block_number: u64,
    /// (block_number − 1) × BlockSize.
    pub offset: u64,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Joined {
        client_id: u32,
    },
    MasterChanged {
        is_master: bool,
    },
    /// The transport must move to the new group and server; the client re-JOINs by itself.
    Demoted {
        params: SessionParams,
    },
    /// Emitted exactly once, last.
    Finished(ClientOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOutcome {
    Complete,
    Cancelled,
    TimedOut(Phase),
    Kicked(KickReason),
}

/// Counters kept during a session (re-exported as `transport::Stats`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// Distinct content bytes delivered so far.
    pub bytes_received: u64,
    pub blocks_received: u64,
    pub total_blocks: u64,
    pub content_size: u64,
    /// ODATA packets received.
    pub odata_packets: u64,
    /// RDATA (repair) packets received.
    pub rdata_packets: u64,
    /// Blocks received again after they were already stored.
    pub duplicate_blocks: u64,
    /// NACK packets sent (zero NACKs included).
    pub nacks_sent: u64,
    /// Packets dropped for a bad checksum.
    pub checksum_drops: u64,
    /// Packets dropped for any other reason (malformed, wrong session, impossible fields).
    pub other_drops: u64,
    /// Blocks not delivered because the consumer's cache was full.
    pub cache_full_drops: u64,
    /// Whether the server has made this client the master (the one that ACKs).
    pub is_master: bool,
    pub client_id: Option<u32>,
    /// Estimated loss rate, 0..=1.
    pub loss_rate: f64,
    /// Time spent as master client (updated when mastership changes and when the session
    /// ends).
    pub time_as_master: Duration,
}

/// SessionState (§3.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Join,
    Regular,
}

/// The per-session transport state of §3.2.1.1 and §3.2.1.3 with the timers of §3.2.2; all of
/// it goes back to its initial values on DEMOTE (§3.2.5.16).
#[derive(Debug)]
struct Transport {
    state: SessionState,
    client_id: Option<u32>,
    min_nack_backoff: u16,
    max_nack_backoff: u16,
    last_poll_seq_no: u64,
    last_qcc_seq_no: u64,
    qcc_sender_time: u64,
    qcc_recv_time: Option<Instant>,
    loss_rate: f64,
    first_odata_seq_no: u64,
    hi_odata_seq_no: u64,
    hi_loss_odata_seq_no: u64,
    last_spm_seq_no: u64,
    master_client_id: u32,
    missing: MissingOdataList,
    data_flowed: bool,
    /// Some multicast packet of the session (SPM, QCC, POLL, ODATA, RDATA) has arrived since
    /// the JOINACK.
    session_heard: bool,
    join_resend_at: Option<Instant>,
    join_deadline: Option<Instant>,
    first_data_deadline: Option<Instant>,
    inactivity_deadline: Option<Instant>,
    force_qcc_at: Option<Instant>,
    qcc_at: Option<Instant>,
    poll_at: Option<Instant>,
    nack_at: Option<Instant>,
}

impl Transport {
    fn new() -> Self {
        Self {
            state: SessionState::Join,
            client_id: None,
            min_nack_backoff: 0,
            max_nack_backoff: 0,
            last_poll_seq_no: 0,
            last_qcc_seq_no: 0,
            qcc_sender_time: 0,
            qcc_recv_time: None,
            loss_rate: 0.0,
            first_odata_seq_no: 0,
            hi_odata_seq_no: 0,
            hi_loss_odata_seq_no: 0,
            last_spm_seq_no: 0,
            master_client_id: 0,
            missing: MissingOdataList::new(),
            data_flowed: false,
            session_heard: false,
            join_resend_at: None,
            join_deadline: None,
            first_data_deadline: None,
            inactivity_deadline: None,
            force_qcc_at: None,
            qcc_at: None,
            poll_at: None,
            nack_at: None,
        }
    }

    fn timers(&self) -> [Option<Instant>; 8] {
        [
            self.join_resend_at,
            self.join_deadline,
            self.first_data_deadline,
            self.inactivity_deadline,
            self.force_qcc_at,
            self.qcc_at,
            self.poll_at,
            self.nack_at,
        ]
    }

    fn stop_timers(&mut self) {
        self.join_resend_at = None;
        self.join_deadline = None;
        self.first_data_deadline = None;
        self.inactivity_deadline = None;
        self.force_qcc_at = None;
        self.qcc_at = None;
        self.poll_at = None;
        self.nack_at = None;
    }

    /// When the next voluntary QCR is due. Deviation: until the session's multicast traffic is
    /// heard, a lost QCR-after-JOINACK would leave the server holding us as pending while we
    /// believe we are active, and a lone client would never be served; so the QCR repeats every
    /// second until then, not every 20 s (§3.2.5.8).
    fn next_voluntary_qcr(&self, now: Instant) -> Instant {
        now + if self.session_heard {
            FORCE_QCC_INTERVAL
        } else {
            UNCONFIRMED_QCR_INTERVAL
        }
    }

    fn is_master(&self) -> bool {
        self.master_client_id != 0 && self.client_id == Some(self.master_client_id)
    }

    /// `count` consecutive ODATA missed: LossRate ← (1−α)^count·LossRate + (1 − (1−α)^count),
    /// the closed form of `count` EWMA steps towards 1 (bounded work for any jump).
    fn count_losses(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        let keep = (1.0 - LOSS_RATE_ALPHA).powi(count.min(1 << 20) as i32);
        self.loss_rate = 1.0 - (1.0 - self.loss_rate) * keep;
    }

    /// One ODATA received in order: one EWMA step towards 0.
    fn count_received(&mut self) {
        self.loss_rate *= 1.0 - LOSS_RATE_ALPHA;
    }

    /// §3.2.5.10.1: every sequence number up to the SPM's lead not yet seen counts as lost.
    fn update_loss_rate_spm(&mut self, lead: u64) {
        if self.first_odata_seq_no == 0 || lead <= self.hi_loss_odata_seq_no {
            return;
        }
        self.count_losses(lead - self.hi_loss_odata_seq_no);
        self.hi_loss_odata_seq_no = lead;
    }

    /// §3.2.5.10.2: the gap before `seq` counts as lost, `seq` itself as received. A packet at
    /// or below HiLossODATASeqNo (a repair or a late one) was already counted as lost.
    fn update_loss_rate_data(&mut self, seq: u64) {
        if self.first_odata_seq_no == 0 || seq <= self.hi_loss_odata_seq_no {
            return;
        }
        self.count_losses(seq - self.hi_loss_odata_seq_no - 1);
        self.count_received();
        self.hi_loss_odata_seq_no = seq;
    }

    fn loss_rate_wire(&self) -> u64 {
        mt::loss_rate_to_wire(self.loss_rate)
    }

    fn nack_backoff(&self, rng: &mut SmallRng) -> Duration {
        let low = self.min_nack_backoff.min(self.max_nack_backoff);
        let high = self.min_nack_backoff.max(self.max_nack_backoff);
        Duration::from_millis(rng.random_range(u64::from(low)..=u64::from(high)))
    }
}

/// A LEAVE waiting for its §3.2.5.4.3 delay; it keeps the session it belongs to, so a demoted
/// client can leave the old session while joining the new one.
#[derive(Debug, Clone)]
struct PendingLeave {
    at: Instant,
    session_id: u32,
    client_id: u32,
    server: SocketAddr,
    reason: LeaveReason,
    /// The session ends when this LEAVE goes out.
    then_finish: Option<ClientOutcome>,
}

/// An ACK waiting in `Client::pending_ack`, with what its packet header needs. A newer ACK
/// replaces it before it is sent (README.md#pn-client-ack).
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    session_id: u32,
    sender_time: u64,
    ack: mt::Ack,
    to: SocketAddr,
}

impl PendingAck {
    fn encode_into(&self, buf: &mut Vec<u8>, protect: &Protect) {
        Packet {
            // Replaced by the header `protect` makes.
            security: Security::None,
            session_id: self.session_id,
            sender_time: self.sender_time,
            body: Body::Ack(self.ack),
        }
        .encode_protected(buf, protect);
    }
}

#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    /// Client creation: SenderTime origin and MS-WDSMA JoinTime.
    epoch: Instant,
    rng: SmallRng,
    mt: Transport,
    /// The security header this client puts on its packets, and what the server's must carry.
    protect: Protect,
    check: Check,
    /// None when the session description is inconsistent: no block can then be accepted.
    blocks: Option<BlockBitmap>,
    /// CurrentAppCacheSize (§3.2.1.3).
    current_cache: u64,
    transmit: VecDeque<(Vec<u8>, SocketAddr)>,
    /// The newest ACK, queued after everything in `transmit` and not yet encoded: a newer
    /// ACK replaces it, so a batch of packets costs one encoded ACK, not one per packet.
    pending_ack: Option<PendingAck>,
    events: VecDeque<ClientEvent>,
    pending_leaves: Vec<PendingLeave>,
    /// When this client last became master, while it is.
    master_since: Option<Instant>,
    /// The session is ending: nothing but pending LEAVEs happens any more.
    ending: bool,
    finished: bool,
    stats: ClientStats,
}

impl Client {
    /// §3.2.3: set up the state and queue the first JOIN.
    pub fn new(config: ClientConfig, now: Instant, rng: SmallRng) -> Self {
        let params = &config.params;
        let blocks =
            BlockBitmap::for_content(params.content_size, params.block_size, params.total_blocks)
                .ok();
        let stats = ClientStats {
            total_blocks: params.total_blocks,
            content_size: params.content_size,
            ..ClientStats::default()
        };
        let protect = config.security.client_protect();
        let check = config.security.client_check();
        let mut client = Self {
            config,
            epoch: now,
            rng,
            mt: Transport::new(),
            protect,
            check,
            blocks,
            current_cache: 0,
            transmit: VecDeque::new(),
            pending_ack: None,
            events: VecDeque::new(),
            pending_leaves: Vec::new(),
            master_since: None,
            ending: false,
            finished: false,
            stats,
        };
        client.start_join(now);
        client
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The Finished event has been emitted and every datagram has been taken.
    pub fn is_finished(&self) -> bool {
        self.finished && self.transmit.is_empty() && self.pending_ack.is_none()
    }

    /// The session this client currently belongs to (changes on DEMOTE).
    pub fn params(&self) -> &SessionParams {
        &self.config.params
    }

    /// The first `max` missing block ranges (inclusive, 1-based).
    pub fn missing_block_ranges(&self, max: usize) -> Vec<(u64, u64)> {
        self.blocks
            .as_ref()
            .map(|b| {
                b.missing_ranges(max)
                    .into_iter()
                    .map(|r| (r.start, r.end))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// MA Cache Done (§3.2.5.17): the consumer is finished with `bytes` delivered bytes.
    pub fn cache_done(&mut self, bytes: u64) {
        self.current_cache = self.current_cache.saturating_sub(bytes);
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        if let Some((mut bytes, to)) = self.transmit.pop_front() {
            std::mem::swap(buf, &mut bytes);
            return Some(to);
        }
        let ack = self.pending_ack.take()?;
        ack.encode_into(buf, &self.protect);
        Some(ack.to)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let leaves = self.pending_leaves.iter().map(|l| Some(l.at));
        self.mt.timers().into_iter().chain(leaves).flatten().min()
    }

    /// User abort: LEAVE CANCELLED after the §3.2.5.4.3 delay, then Finished(Cancelled).
    pub fn cancel(&mut self, now: Instant) {
        self.terminate(now, ClientOutcome::Cancelled, Some(LeaveReason::Cancelled));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.fire_pending_leaves(now);
        if self.ending {
            return;
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.mt.join_deadline) {
            self.terminate(now, ClientOutcome::TimedOut(Phase::Join), None);
            return;
        }
        if due(self.mt.first_data_deadline) {
            let outcome = ClientOutcome::TimedOut(Phase::FirstData);
            self.terminate(now, outcome, Some(LeaveReason::Inactive));
            return;
        }
        if due(self.mt.inactivity_deadline) {
            // §3.2.5.4.2 says CANCELLED, §2.2.11 defines INACTIVE for this case
            // (README.md#pn-client-inactivity).
            let outcome = ClientOutcome::TimedOut(Phase::Inactivity);
            self.terminate(now, outcome, Some(LeaveReason::Inactive));
            return;
        }
        if due(self.mt.join_resend_at) {
            // §3.2.5.3.1 Join Timer.
            self.send_join(now);
            self.mt.join_resend_at = Some(now + JOIN_INTERVAL);
        }
        if due(self.mt.qcc_at) {
            self.mt.qcc_at = None;
            self.send_qcr_after_qcc(now);
        }
        if due(self.mt.force_qcc_at) {
            self.send_voluntary_qcr(now);
        }
        if due(self.mt.poll_at) {
            self.mt.poll_at = None;
            self.send_pollack(now);
        }
        if due(self.mt.nack_at) {
            self.mt.nack_at = None;
            self.nack_timer_expired(now);
        }
    }

    /// Processes one datagram from `from`; returns the block it carried when that block is new
    /// and the consumer's cache has room.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<Delivery<'a>> {
        if self.ending || self.finished {
            return None;
        }
        // Multicast and JOINACK both come from the server host; its source port is not fixed.
        if from.ip().to_canonical() != self.config.params.server.ip().to_canonical() {
            self.stats.other_drops += 1;
            return None;
        }
        let packet = match Packet::decode(bytes) {
            Ok(packet) => packet,
            Err(error) => {
                if matches!(error.kind, DecodeErrorKind::BadChecksum { .. }) {
                    self.stats.checksum_drops += 1;
                } else {
                    self.stats.other_drops += 1;
                }
                return None;
            }
        };
        // §3.2.5.2: the header must be the server's mode and prove the packet.
        if packet.security.kind() != self.check.kind()
            || packet.session_id != self.config.params.session_id
        {
            self.stats.other_drops += 1;
            return None;
        }
        if !self.check.accepts(&packet.security, mt::covered(bytes)) {
            self.stats.checksum_drops += 1;
            return None;
        }
        let sender_time = packet.sender_time;
        if self.mt.state == SessionState::Join {
            // §3.2.5.2: JoinState accepts JOINACK only.
            if let Body::JoinAck(ack) = packet.body {
                self.on_joinack(now, sender_time, ack);
            } else {
                self.stats.other_drops += 1;
            }
            return None;
        }
        self.packet_heard(now);
        let session_traffic = matches!(
            packet.body,
            Body::Spm(_) | Body::Qcc(_) | Body::Poll(_) | Body::OData(_) | Body::RData(_)
        );
        if session_traffic && !self.mt.session_heard {
            self.mt.session_heard = true;
            if self.mt.force_qcc_at.is_some() {
                self.mt.force_qcc_at = Some(now + FORCE_QCC_INTERVAL);
            }
        }
        match packet.body {
            Body::JoinAck(ack) => self.on_joinack(now, sender_time, ack),
            Body::Qcc(qcc) => self.on_qcc(now, sender_time, qcc),
            Body::Poll(poll) => self.on_poll(now, poll),
            Body::Spm(spm) => self.on_spm(now, sender_time, spm),
            Body::OData(data) => return self.on_data(now, sender_time, data, false),
            Body::RData(data) => return self.on_data(now, sender_time, data, true),
            // §3.2.5.19: NCF is ignored by clients.
            Body::Ncf(_) => {}
            Body::Kick(kick) => self.on_kick(now, &kick),
            Body::Demote(demote) => self.on_demote(now, &demote),
            Body::Join(_)
            | Body::Qcr(_)
            | Body::Ack(_)
            | Body::Nack(_)
            | Body::Leave(_)
            | Body::PollAck(_) => {
                self.stats.other_drops += 1;
            }
        }
        None
    }

    /// A valid packet of the session arrived: the inactivity timer restarts (§3.2.2).
    fn packet_heard(&mut self, now: Instant) {
        if self.mt.data_flowed {
            self.mt.inactivity_deadline = Some(now + self.config.inactivity_timeout);
        }
    }

    fn start_join(&mut self, now: Instant) {
        self.mt.state = SessionState::Join;
        self.mt.join_deadline = Some(now + self.config.join_timeout);
        self.mt.join_resend_at = Some(now + JOIN_INTERVAL);
        self.send_join(now);
    }

    /// §3.2.5.3.2 and §3.2.5.5: a JOINACK (again, in RegularState, when our QCR was lost).
    fn on_joinack(&mut self, now: Instant, sender_time: u64, ack: mt::JoinAck) {
        let first = self.mt.state == SessionState::Join;
        self.mt.client_id = Some(ack.client_id);
        self.mt.min_nack_backoff = ack.min_nack_backoff;
        self.mt.max_nack_backoff = ack.max_nack_backoff;
        self.stats.client_id = Some(ack.client_id);
        self.send(
            now,
            Body::Qcr(mt::Qcr {
                client_id: ack.client_id,
                qcc_seq_no: 0,
                backoff: 0,
                server_time: sender_time,
                hi_odata_seq_no: 0,
                loss_rate: 0,
                app_data: &[],
                cpu_util: None,
                mem_util: None,
                net_util: None,
            }),
        );
        self.mt.join_resend_at = None;
        self.mt.join_deadline = None;
        self.mt.state = SessionState::Regular;
        self.mt.force_qcc_at = Some(self.mt.next_voluntary_qcr(now));
        self.update_master(now, self.mt.master_client_id);
        if first {
            self.events.push_back(ClientEvent::Joined {
                client_id: ack.client_id,
            });
            if !self.mt.data_flowed {
                self.mt.first_data_deadline = Some(now + self.config.first_data_timeout);
            }
            // Empty content (or content completed before a DEMOTE): nothing to wait for.
            if self.blocks.as_ref().is_some_and(BlockBitmap::is_complete) {
                self.terminate(now, ClientOutcome::Complete, Some(LeaveReason::Complete));
            }
        }
    }

    /// §3.2.5.7: a QCC starts the QCC timer; stale sequence numbers are dropped.
    fn on_qcc(&mut self, now: Instant, sender_time: u64, qcc: mt::Qcc) {
        if qcc.qcc_seq_no <= self.mt.last_qcc_seq_no {
            return;
        }
        self.mt.last_qcc_seq_no = qcc.qcc_seq_no;
        self.mt.qcc_sender_time = sender_time;
        self.mt.qcc_recv_time = Some(now);
        self.mt.qcc_at = Some(now + random_millis(&mut self.rng, qcc.qcr_backoff.into()));
    }

    /// §3.2.5.6: a POLL starts the POLL timer; stale sequence numbers are dropped.
    fn on_poll(&mut self, now: Instant, poll: mt::Poll<'_>) {
        if poll.poll_seq_no <= self.mt.last_poll_seq_no {
            return;
        }
        // MA §3.2.5.4: the POLL carries a SRVCIR; anything else is not a POLL we can answer.
        if !matches!(MaPacket::decode(poll.app_data), Ok(MaPacket::SrvCir)) {
            self.stats.other_drops += 1;
            return;
        }
        self.mt.last_poll_seq_no = poll.poll_seq_no;
        self.mt.poll_at = Some(now + random_millis(&mut self.rng, poll.backoff.into()));
    }

    /// §3.2.5.9.
    fn on_spm(&mut self, now: Instant, sender_time: u64, spm: mt::Spm) {
        if spm.spm_seq_no <= self.mt.last_spm_seq_no {
            return;
        }
        if spm.trail_odata_seq_no > spm.lead_odata_seq_no {
            self.stats.other_drops += 1;
            return;
        }
        let mt = &mut self.mt;
        mt.last_spm_seq_no = spm.spm_seq_no;
        mt.min_nack_backoff = spm.min_nack_backoff;
        mt.max_nack_backoff = spm.max_nack_backoff;
        if mt.first_odata_seq_no == 0 && spm.lead_odata_seq_no != 0 {
            mt.first_odata_seq_no = spm.lead_odata_seq_no;
            // Seeded so that joining does not count the whole backlog as lost.
            mt.hi_loss_odata_seq_no = spm.lead_odata_seq_no;
        }
        mt.update_loss_rate_spm(spm.lead_odata_seq_no);
        mt.hi_odata_seq_no = mt.hi_odata_seq_no.max(spm.trail_odata_seq_no);
        let start = spm.trail_odata_seq_no.max(mt.first_odata_seq_no);
        mt.missing.update_start(start);
        mt.missing.update_end(spm.lead_odata_seq_no);
        self.stats.loss_rate = self.mt.loss_rate;
        self.update_master(now, spm.master_client_id);
        self.manage_nack(now);
        self.send_ack_if_master(now, sender_time);
    }

    /// §3.2.5.13 (ODATA) and §3.2.5.14 (RDATA), then MA §3.2.5.1 for the block.
    fn on_data<'a>(
        &mut self,
        now: Instant,
        sender_time: u64,
        packet: mt::DataPacket<'a>,
        repair: bool,
    ) -> Option<Delivery<'a>> {
        let seq = packet.odata_seq_no;
        if seq == 0 || packet.trail_odata_seq_no > seq {
            self.stats.other_drops += 1;
            return None;
        }
        if self.mt.first_odata_seq_no != 0 && seq < self.mt.first_odata_seq_no {
            return None;
        }
        if repair {
            self.stats.rdata_packets += 1;
        } else {
            self.stats.odata_packets += 1;
        }
        if !self.mt.data_flowed {
            self.mt.data_flowed = true;
            self.mt.first_data_deadline = None;
            self.packet_heard(now);
        }
        let mt = &mut self.mt;
        if mt.first_odata_seq_no == 0 {
            // §3.2.1.3: the first ODATA received sets FirstODATASeqNo.
            mt.first_odata_seq_no = seq;
            mt.hi_loss_odata_seq_no = seq - 1;
        }
        mt.hi_odata_seq_no = mt.hi_odata_seq_no.max(seq);
        mt.update_loss_rate_data(seq);
        let start = packet.trail_odata_seq_no.max(mt.first_odata_seq_no);
        mt.missing.update_start(start);
        mt.missing.update_end(seq);
        mt.missing.received(seq);
        self.stats.loss_rate = self.mt.loss_rate;
        self.update_master(now, packet.client_id);
        self.manage_nack(now);
        // §3.2.5.13: with FW_LEAD present the master ACKs only when it is not behind `seq`.
        if packet.fw_lead_seq_no.is_none_or(|lead| lead >= seq) {
            self.send_ack_if_master(now, sender_time);
        }
        self.deliver_block(now, packet.data)
    }

    /// The application half of a data packet: MT's cache check (§3.2.5.13) and MA's DATA
    /// Trigger (MA §3.2.5.1).
    fn deliver_block<'a>(&mut self, now: Instant, payload: &'a [u8]) -> Option<Delivery<'a>> {
        let Ok(MaPacket::Data(block)) = MaPacket::decode(payload) else {
            self.stats.other_drops += 1;
            return None;
        };
        let params = &self.config.params;
        let Some(bitmap) = self.blocks.as_mut() else {
            self.stats.other_drops += 1;
            return None;
        };
        if !bitmap.contains(block.block_number) {
            self.stats.other_drops += 1;
            return None;
        }
        let offset = (block.block_number - 1) * u64::from(params.block_size);
        let expected_len = (params.content_size - offset).min(u64::from(params.block_size));
        if block.data.len() as u64 != expected_len {
            self.stats.other_drops += 1;
            return None;
        }
        if bitmap.is_set(block.block_number) {
            self.stats.duplicate_blocks += 1;
            return None;
        }
        // §3.2.5.12.2: no room in the consumer's cache: a zero NACK slows the server down and
        // the block waits for a later MS-WDSMA round.
        if self.config.cache_size.saturating_sub(self.current_cache) < expected_len {
            self.stats.cache_full_drops += 1;
            self.send_nack(now, &[]);
            return None;
        }
        bitmap.set(block.block_number);
        let complete = bitmap.is_complete();
        self.current_cache += expected_len;
        self.stats.blocks_received += 1;
        self.stats.bytes_received += expected_len;
        if complete {
            // MA §3.2.5.1 Terminate trigger with COMPLETE.
            self.terminate(now, ClientOutcome::Complete, Some(LeaveReason::Complete));
        }
        Some(Delivery {
            block_number: block.block_number,
            offset,
            data: block.data,
        })
    }

    /// §3.2.5.15: a KICK naming us ends the session.
    fn on_kick(&mut self, now: Instant, kick: &mt::Kick) {
        let Some(me) = self.mt.client_id else { return };
        if let Some(&(_, reason)) = kick.clients.iter().find(|(id, _)| *id == me) {
            self.terminate(now, ClientOutcome::Kicked(reason), None);
        }
    }

    /// §3.2.5.16: a DEMOTE naming us moves us to the lower session.
    fn on_demote(&mut self, now: Instant, demote: &mt::Demote) {
        let Some(me) = self.mt.client_id else { return };
        if !demote.clients.contains(&me) {
            return;
        }
        // Deviation: the lower session must be on the same server host and its group must be a
        // multicast address of the same family. One checksummed packet must not be able to
        // redirect this client's traffic to another host (found by fuzzing client_session;
        // README.md#pn-client-demote).
        let same_host =
            demote.unicast_addr.to_canonical() == self.config.params.server.ip().to_canonical();
        let same_family = demote.multicast_addr.is_ipv4() == self.config.params.group.is_ipv4();
        if demote.unicast_port == 0
            || demote.multicast_port == 0
            || !same_host
            || !same_family
            || !demote.multicast_addr.is_multicast()
        {
            self.stats.other_drops += 1;
            return;
        }
        // The LEAVE belongs to the old session: its SessionId, ClientId and server.
        let old_server = self.config.params.server;
        let old_session = self.config.params.session_id;
        self.schedule_leave(
            now,
            old_session,
            me,
            old_server,
            LeaveReason::Cancelled,
            None,
        );
        let params = SessionParams {
            session_id: demote.lower_session_id,
            group: SocketAddr::new(demote.multicast_addr, demote.multicast_port),
            server: SocketAddr::new(demote.unicast_addr, demote.unicast_port),
            ..self.config.params.clone()
        };
        self.config.params = params.clone();
        self.mt = Transport::new();
        self.stats.client_id = None;
        self.update_master(now, 0);
        self.events.push_back(ClientEvent::Demoted { params });
        self.start_join(now);
    }

    /// Tracks MasterClientId and reports when it starts or stops naming us.
    fn update_master(&mut self, now: Instant, master_client_id: u32) {
        self.mt.master_client_id = master_client_id;
        let is_master = self.mt.is_master();
        if is_master != self.stats.is_master {
            self.stats.is_master = is_master;
            match self.master_since.take() {
                Some(since) => self.stats.time_as_master += now.saturating_duration_since(since),
                None => self.master_since = Some(now),
            }
            self.events
                .push_back(ClientEvent::MasterChanged { is_master });
        }
    }

    /// §3.2.5.12 NACK management: arm the NACK timer when something is missing.
    fn manage_nack(&mut self, now: Instant) {
        if self.mt.missing.is_empty() || self.mt.nack_at.is_some() {
            return;
        }
        let delay = if self.mt.is_master() {
            Duration::ZERO
        } else {
            self.mt.nack_backoff(&mut self.rng)
        };
        self.mt.nack_at = Some(now + delay);
    }

    /// §3.2.5.12.1: NACK the lowest missing ranges (one datagram's worth) and re-arm.
    fn nack_timer_expired(&mut self, now: Instant) {
        if self.mt.missing.is_empty() {
            return;
        }
        let ranges = self.mt.missing.ranges();
        let ranges = ranges[..ranges.len().min(MAX_NACK_RANGES)].to_vec();
        self.send_nack(now, &ranges);
        let backoff = self.mt.nack_backoff(&mut self.rng).max(MIN_NACK_REARM);
        self.mt.nack_at = Some(now + backoff);
    }

    fn send_nack(&mut self, now: Instant, ranges: &[SeqRange]) {
        let Some(client_id) = self.mt.client_id else {
            return;
        };
        self.stats.nacks_sent += 1;
        let body = Body::Nack(mt::Nack {
            client_id,
            hi_odata_seq_no: self.mt.hi_odata_seq_no,
            // §3.2.5.12.2 writes the zero NACK's LossRate unscaled; every other field is ×10^16.
            loss_rate: self.mt.loss_rate_wire(),
            ranges: ranges.to_vec(),
        });
        self.send(now, body);
    }

    /// §3.2.5.11: the master ACKs every SPM, ODATA and RDATA.
    fn send_ack_if_master(&mut self, now: Instant, server_time: u64) {
        if !self.mt.is_master() {
            return;
        }
        let Some(client_id) = self.mt.client_id else {
            return;
        };
        let ack = mt::Ack {
            client_id,
            odata_seq_no: self.mt.missing.highest_continuous_received(),
            server_time,
            hi_odata_seq_no: self.mt.hi_odata_seq_no,
            loss_rate: self.mt.loss_rate_wire(),
        };
        // Deviation (performance): ACKs are cumulative, so an ACK still waiting to be sent
        // when the next one is made says nothing the new one does not. Replacing it means a
        // burst of datagrams handled together costs the server one ACK, not one per packet.
        self.pending_ack = Some(PendingAck {
            session_id: self.config.params.session_id,
            sender_time: millis_since(self.epoch, now),
            ack,
            to: self.config.params.server,
        });
    }

    /// MA §3.2.5.3 QCC Trigger: the PROGRESS packet.
    fn progress_packet(&self, now: Instant) -> Vec<u8> {
        MaPacket::Progress(ma::Progress {
            time_in_session: self.time_in_session(now),
            progress: self.percent_received(),
        })
        .encode()
    }

    fn time_in_session(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    }

    fn percent_received(&self) -> u8 {
        self.blocks
            .as_ref()
            .map_or(0, BlockBitmap::percent_received)
    }

    /// §3.2.5.7.1: the QCR answering the last QCC; it also restarts the Force QCC timer.
    fn send_qcr_after_qcc(&mut self, now: Instant) {
        let waited = self.mt.qcc_recv_time.map_or(0, |at| {
            millis_since(at, now).min(u64::from(u16::MAX)) as u16
        });
        let app_data = self.progress_packet(now);
        self.send_status_qcr(
            now,
            self.mt.last_qcc_seq_no,
            waited,
            self.mt.qcc_sender_time,
            &app_data,
        );
    }

    /// §3.2.5.8: no QCC for ForceQCCInterval: a voluntary QCR.
    fn send_voluntary_qcr(&mut self, now: Instant) {
        let app_data = self.progress_packet(now);
        self.send_status_qcr(now, 0, 0, 0, &app_data);
    }

    fn send_status_qcr(
        &mut self,
        now: Instant,
        qcc_seq_no: u64,
        backoff: u16,
        server_time: u64,
        app_data: &[u8],
    ) {
        self.mt.force_qcc_at = Some(self.mt.next_voluntary_qcr(now));
        let Some(client_id) = self.mt.client_id else {
            return;
        };
        let body = Body::Qcr(mt::Qcr {
            client_id,
            qcc_seq_no,
            backoff,
            server_time,
            hi_odata_seq_no: self.mt.hi_odata_seq_no,
            loss_rate: self.mt.loss_rate_wire(),
            app_data,
            cpu_util: None,
            mem_util: None,
            net_util: None,
        });
        self.send(now, body);
    }

    /// §3.2.5.6.1 and MA §3.2.5.4: POLLACK with a CNTCIR of the first missing ranges.
    fn send_pollack(&mut self, now: Instant) {
        let Some(client_id) = self.mt.client_id else {
            return;
        };
        let ranges = self
            .blocks
            .as_ref()
            .map(|b| b.missing_ranges(ma::MAX_CNTCIR_RANGES))
            .unwrap_or_default();
        let app_data = MaPacket::CntCir(ma::CntCir {
            progress: self.percent_received(),
            time_in_session: self.time_in_session(now),
            ranges,
        })
        .encode();
        let body = Body::PollAck(mt::PollAck {
            client_id,
            poll_seq_no: self.mt.last_poll_seq_no,
            app_data: &app_data,
        });
        self.send(now, body);
    }

    /// §3.2.5.3.1: JOIN with CAPABILITIES {MULTISTREAM} and the USER_SID when known.
    fn send_join(&mut self, now: Instant) {
        let mut client_name = String::new();
        let mut units = 0;
        for c in self.config.client_name.chars() {
            units += c.len_utf16();
            if units > MAX_CLIENT_NAME_UNITS {
                break;
            }
            client_name.push(c);
        }
        let mac =
            &self.config.mac_address[..self.config.mac_address.len().min(usize::from(u8::MAX))];
        let join = mt::Join {
            client_name,
            ip_address: self.config.local_ip,
            mac_address: mac,
            user_sid: self.config.user_sid.as_deref(),
            capabilities: Some(&[mt::CAP_MULTISTREAM]),
        };
        let bytes = self.encode(self.config.params.session_id, now, Body::Join(join));
        self.queue(bytes, self.config.params.server);
    }

    /// A packet with this client's security header.
    fn encode(&self, session_id: u32, now: Instant, body: Body<'_>) -> Vec<u8> {
        let packet = Packet {
            // Replaced by the header `protect` makes.
            security: Security::None,
            session_id,
            sender_time: millis_since(self.epoch, now),
            body,
        };
        let mut bytes = Vec::new();
        packet.encode_protected(&mut bytes, &self.protect);
        bytes
    }

    /// Encodes a packet of the current session for the server.
    fn send(&mut self, now: Instant, body: Body<'_>) {
        let bytes = self.encode(self.config.params.session_id, now, body);
        self.queue(bytes, self.config.params.server);
    }

    fn queue(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        // A pending ACK keeps its place before anything queued after it.
        if let Some(ack) = self.pending_ack.take() {
            let mut ack_bytes = Vec::new();
            ack.encode_into(&mut ack_bytes, &self.protect);
            self.push_transmit(ack_bytes, ack.to);
        }
        self.push_transmit(bytes, to);
    }

    fn push_transmit(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        if self.transmit.len() >= MAX_QUEUED_DATAGRAMS {
            self.transmit.pop_front();
        }
        self.transmit.push_back((bytes, to));
    }

    /// §3.2.5.4.3: a LEAVE waits random 0..MaxNACKBackOff ms, or 0..MaxLeaveDelay when that is 0.
    fn schedule_leave(
        &mut self,
        now: Instant,
        session_id: u32,
        client_id: u32,
        server: SocketAddr,
        reason: LeaveReason,
        then_finish: Option<ClientOutcome>,
    ) {
        let max_ms = match self.mt.max_nack_backoff {
            0 => MAX_LEAVE_DELAY_MS,
            backoff => u64::from(backoff),
        };
        if self.pending_leaves.len() >= MAX_PENDING_LEAVES {
            // Repeated DEMOTEs: leave the oldest session right away rather than forget it.
            let oldest = self.pending_leaves.remove(0);
            self.send_leave(now, &oldest);
        }
        self.pending_leaves.push(PendingLeave {
            at: now + random_millis(&mut self.rng, max_ms),
            session_id,
            client_id,
            server,
            reason,
            then_finish,
        });
    }

    fn fire_pending_leaves(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.pending_leaves.len() {
            if self.pending_leaves[index].at <= now {
                let leave = self.pending_leaves.remove(index);
                self.send_leave(now, &leave);
                if let Some(outcome) = leave.then_finish {
                    self.finish(now, outcome);
                    return;
                }
            } else {
                index += 1;
            }
        }
    }

    fn send_leave(&mut self, now: Instant, leave: &PendingLeave) {
        let body = Body::Leave(mt::Leave {
            client_id: leave.client_id,
            reason: leave.reason,
        });
        let bytes = self.encode(leave.session_id, now, body);
        self.queue(bytes, leave.server);
    }

    /// Ends the session: with a LEAVE (after its delay) when we have a ClientId and a reason,
    /// otherwise at once.
    fn terminate(&mut self, now: Instant, outcome: ClientOutcome, leave: Option<LeaveReason>) {
        if self.ending || self.finished {
            return;
        }
        self.ending = true;
        self.mt.stop_timers();
        match (leave, self.mt.client_id) {
            (Some(reason), Some(client_id)) => {
                let session_id = self.config.params.session_id;
                let server = self.config.params.server;
                self.schedule_leave(now, session_id, client_id, server, reason, Some(outcome));
            }
            _ => self.finish(now, outcome),
        }
    }

    /// Emits Finished; LEAVEs of demoted sessions still waiting go out first.
    fn finish(&mut self, now: Instant, outcome: ClientOutcome) {
        if let Some(since) = self.master_since.take() {
            self.stats.time_as_master += now.saturating_duration_since(since);
        }
        for leave in std::mem::take(&mut self.pending_leaves) {
            self.send_leave(now, &leave);
        }
        self.ending = true;
        self.finished = true;
        self.mt.stop_timers();
        self.events.push_back(ClientEvent::Finished(outcome));
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use crate::proto::SeedableRng;

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
                client: Client::new(config, start, SmallRng::seed_from_u64(42)),
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

    #[test]
    fn completion_sends_leave_complete_after_bounded_delay() {
        let mut h = Harness::new(250);
        h.join(10, 80);
        assert_eq!(
            h.odata(1, 1, 0, 3),
            Some((3, 200, block_payload(250, 3)[13..].to_vec()))
        );
        assert_eq!(
            h.odata(2, 1, 0, 1).map(|d| (d.0, d.1, d.2.len())),
            Some((1, 0, 100))
        );
        let last = h.odata(3, 1, 0, 2);
        assert_eq!(last.map(|d| (d.0, d.1)), Some((2, 100)));
        assert_eq!(h.client.stats().bytes_received, 250);
        assert!(h.events().is_empty(), "Finished waits for the LEAVE");
        let done_at = h.now;
        let (_, bytes) = h
            .next_sent_within(Duration::from_millis(80))
            .expect("a LEAVE");
        assert!(h.now - done_at <= Duration::from_millis(80));
        let (session, leave) = leave_of(&bytes);
        assert_eq!(session, SESSION_ID);
        assert_eq!(leave.client_id, CLIENT_ID);
        assert_eq!(leave.reason, LeaveReason::Complete);
        assert_eq!(h.events(), [ClientEvent::Finished(ClientOutcome::Complete)]);
        assert!(h.client.is_finished());
        // Nothing more happens.
        assert!(h.odata(4, 1, 0, 1).is_none());
        h.advance(Duration::from_secs(60));
        assert!(h.sent().is_empty() && h.events().is_empty());
    }

    #[test]
    fn empty_content_completes_right_after_joinack() {
        let mut h = Harness::new(0);
        h.sent();
        h.feed(Body::JoinAck(mt::JoinAck {
            client_id: CLIENT_ID,
            min_nack_backoff: 0,
            max_nack_backoff: 0,
            rtt: 0,
            client_time: 0,
        }));
        assert_eq!(opcodes(&h.sent()), [mt::OpCode::Qcr]);
        let at = h.now;
        let (_, bytes) = h
            .next_sent_within(Duration::from_millis(200))
            .expect("a LEAVE");
        assert!(h.now - at <= Duration::from_millis(MAX_LEAVE_DELAY_MS));
        assert_eq!(leave_of(&bytes).1.reason, LeaveReason::Complete);
        assert_eq!(
            h.events(),
            [
                ClientEvent::Joined {
                    client_id: CLIENT_ID
                },
                ClientEvent::Finished(ClientOutcome::Complete)
            ]
        );
    }

    #[test]
    fn cancel_sends_leave_cancelled() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.client.cancel(h.now);
        let (_, bytes) = h
            .next_sent_within(Duration::from_millis(200))
            .expect("a LEAVE");
        assert_eq!(leave_of(&bytes).1.reason, LeaveReason::Cancelled);
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::Cancelled)]
        );
        assert!(h.client.is_finished());
        h.client.cancel(h.now);
        assert!(h.events().is_empty(), "Finished only once");
    }

    #[test]
    fn cancel_before_joinack_sends_no_leave() {
        let mut h = Harness::new(1000);
        h.sent();
        h.client.cancel(h.now);
        assert!(h.sent().is_empty());
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::Cancelled)]
        );
        assert!(h.client.is_finished());
    }

    #[test]
    fn inactivity_sends_leave_inactive() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.odata(1, 1, 0, 1);
        h.advance(Duration::from_secs(20));
        h.feed(spm(1, 0, 0, 0, 1, 1));
        h.advance(Duration::from_millis(29_999));
        assert!(h.events().is_empty(), "the SPM restarted the timer");
        h.advance(Duration::from_millis(1));
        let leave = h
            .sent()
            .into_iter()
            .find(|b| matches!(decode(b).body, Body::Leave(_)));
        let leave = match leave {
            Some(bytes) => bytes,
            None => {
                h.next_sent_within(Duration::from_millis(200))
                    .expect("a LEAVE")
                    .1
            }
        };
        assert_eq!(leave_of(&leave).1.reason, LeaveReason::Inactive);
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::TimedOut(
                Phase::Inactivity
            ))]
        );
    }

    #[test]
    fn no_first_data_times_out() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.advance(Duration::from_millis(9_999));
        assert!(h.events().is_empty());
        h.advance(Duration::from_millis(201));
        let sent = h.sent();
        assert_eq!(
            leave_of(sent.last().unwrap()).1.reason,
            LeaveReason::Inactive
        );
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::TimedOut(
                Phase::FirstData
            ))]
        );
    }

    #[test]
    fn kick_naming_us_ends_the_session_with_its_reason() {
        for (byte, reason) in [
            (0, KickReason::PolicyNotMet),
            (1, KickReason::Fallback),
            (2, KickReason::Fail),
            (9, KickReason::Other(9)),
        ] {
            let mut h = Harness::new(1000);
            h.join(0, 0);
            h.feed(Body::Kick(mt::Kick {
                clients: vec![(CLIENT_ID + 1, KickReason::Fail)],
            }));
            assert!(h.events().is_empty(), "someone else's KICK");
            h.feed(Body::Kick(mt::Kick {
                clients: vec![
                    (3, KickReason::Fail),
                    (CLIENT_ID, KickReason::from_u8(byte)),
                ],
            }));
            assert_eq!(
                h.events(),
                [ClientEvent::Finished(ClientOutcome::Kicked(reason))]
            );
            assert!(h.sent().is_empty());
            assert!(h.client.is_finished());
        }
    }

    #[test]
    fn demote_leaves_the_old_session_and_joins_the_lower_one() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.feed(spm(1, CLIENT_ID, 0, 0, 0, 0));
        h.odata(1, 1, CLIENT_ID, 1);
        h.odata(2, 1, CLIENT_ID, 2);
        h.sent();
        h.events();
        let lower_server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4012);
        h.feed(Body::Demote(mt::Demote {
            lower_session_id: 0x1234,
            multicast_addr: "239.255.1.2".parse().unwrap(),
            multicast_port: 5001,
            unicast_addr: lower_server.ip(),
            unicast_port: lower_server.port(),
            clients: vec![3, CLIENT_ID],
        }));
        let expected = SessionParams {
            session_id: 0x1234,
            group: "239.255.1.2:5001".parse().unwrap(),
            server: lower_server,
            ..params(1000)
        };
        assert_eq!(
            h.events(),
            [
                ClientEvent::MasterChanged { is_master: false },
                ClientEvent::Demoted {
                    params: expected.clone()
                }
            ]
        );
        assert_eq!(h.client.params(), &expected);
        let mut buf = Vec::new();
        assert_eq!(h.client.poll_transmit(&mut buf), Some(lower_server));
        let join = decode(&buf);
        assert_eq!(
            (join.session_id, join.body.opcode()),
            (0x1234, mt::OpCode::Join)
        );
        // The LEAVE for the old session follows within its delay, to the old server.
        h.advance(Duration::from_millis(MAX_LEAVE_DELAY_MS));
        let mut leaves = Vec::new();
        while let Some(to) = h.client.poll_transmit(&mut buf) {
            if let Body::Leave(leave) = decode(&buf).body {
                leaves.push((to, decode(&buf).session_id, leave));
            }
        }
        assert_eq!(
            leaves,
            [(
                server_addr(),
                SESSION_ID,
                mt::Leave {
                    client_id: CLIENT_ID,
                    reason: LeaveReason::Cancelled
                }
            )]
        );
        assert_eq!(h.client.stats().client_id, None);
        // Old-session packets no longer count; the lower session's JOINACK does.
        let drops = h.client.stats().other_drops;
        h.odata(3, 1, 0, 3);
        assert_eq!(h.client.stats().other_drops, drops + 1);
        h.session_id = 0x1234;
        h.feed(Body::JoinAck(mt::JoinAck {
            client_id: 55,
            min_nack_backoff: 0,
            max_nack_backoff: 0,
            rtt: 0,
            client_time: 0,
        }));
        assert_eq!(h.events(), [ClientEvent::Joined { client_id: 55 }]);
        // Blocks received before the DEMOTE stay received.
        assert_eq!(h.client.missing_block_ranges(64), [(3, 10)]);
        assert!(h.odata(1, 1, 0, 1).is_none());
        assert_eq!(h.client.stats().duplicate_blocks, 1);
        assert!(h.odata(2, 1, 0, 3).is_some());
    }

    #[test]
    fn demote_to_another_host_or_a_unicast_group_is_ignored() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.sent();
        h.events();
        for (group, server) in [
            ("239.255.1.2", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
            ("10.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("ff15::1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ] {
            let drops = h.client.stats().other_drops;
            h.feed(Body::Demote(mt::Demote {
                lower_session_id: 0x1234,
                multicast_addr: group.parse().unwrap(),
                multicast_port: 5001,
                unicast_addr: server,
                unicast_port: 4012,
                clients: vec![CLIENT_ID],
            }));
            assert_eq!(h.client.stats().other_drops, drops + 1, "{group} {server}");
            assert!(h.events().is_empty());
            assert!(h.sent().is_empty(), "no LEAVE, no JOIN elsewhere");
        }
        assert_eq!(h.client.params().session_id, params(1000).session_id);
    }

    #[test]
    fn cancel_right_after_demote_still_leaves_both_sessions() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.feed(Body::Demote(mt::Demote {
            lower_session_id: 0x1234,
            multicast_addr: "239.255.1.2".parse().unwrap(),
            multicast_port: 5001,
            unicast_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            unicast_port: 4011,
            clients: vec![CLIENT_ID],
        }));
        h.session_id = 0x1234;
        h.join(0, 0);
        h.client.cancel(h.now);
        h.advance(Duration::from_millis(MAX_LEAVE_DELAY_MS));
        let mut leaves: Vec<_> = h
            .sent()
            .iter()
            .filter(|b| matches!(decode(b).body, Body::Leave(_)))
            .map(|b| leave_of(b))
            .collect();
        leaves.sort_by_key(|(session, _)| *session);
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0].0, 0x1234);
        assert_eq!(leaves[1].0, SESSION_ID);
        assert!(
            leaves
                .iter()
                .all(|(_, l)| l.reason == LeaveReason::Cancelled)
        );
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::Cancelled)]
        );
        assert!(h.client.is_finished());
    }

    #[test]
    fn odata_client_id_names_the_master() {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.odata(1, 1, CLIENT_ID, 1);
        assert_eq!(h.events(), [ClientEvent::MasterChanged { is_master: true }]);
        assert_eq!(opcodes(&h.sent()), [mt::OpCode::Ack]);
        h.odata(2, 1, 0, 2);
        assert_eq!(
            h.events(),
            [ClientEvent::MasterChanged { is_master: false }]
        );
        assert!(h.sent().is_empty());
    }

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
        let mut config = config(250);
        config.params.total_blocks = 2;
        let mut h = Harness::with_config(config);
        h.join(0, 0);
        assert!(h.odata(1, 1, 0, 1).is_none());
        assert_eq!(h.client.stats().other_drops, 1);
        assert!(h.client.missing_block_ranges(64).is_empty());
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
            h.client = Client::new(config(content), h.start, SmallRng::seed_from_u64(seed));
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
}
