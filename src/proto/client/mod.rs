//! The MS-WDSMT client (§3.2) with the MS-WDSMA client (§3.2) on top, sans-IO.
//!
//! One [`Client`] follows one session from the first JOIN to its end. Section numbers in
//! comments are MS-WDSMT unless marked MA. Where the specification is silent or contradicts
//! itself the choice is noted at the spot and in README.md's Protocol notes (anchors `pn-...`):
//! * the Missing ODATA List never starts below FirstODATASeqNo, so a late joiner does not NACK
//!   (or, as master, ACK) sequence numbers it would ignore anyway (§3.2.5.13);
//! * an RDATA heard before any ODATA or SPM (another client's repair of a packet sent before
//!   we joined) delivers its block but neither sets FirstODATASeqNo nor starts the Missing ODATA
//!   List, so a late joiner does not NACK the backlog the next MS-WDSMA round brings, and it
//!   does not end the fast voluntary QCRs (README.md#pn-client-first-rdata);
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
//!
//! The state lives in owner types, one file each: the per-session transport state and its
//! timers (`state.rs`), the loss estimate (`loss.rs`), the application cache (`cache.rs`), the
//! transmit queue with its replaceable ACK (`transmit.rs`) and the LEAVEs waiting for their
//! delay (`leaves.rs`). [`Client`] only sequences them.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::blocks::BitmapError;
use super::{Phase, SessionParams, SmallRng, Transmit, millis_since, random_millis};
use crate::wire::DecodeErrorKind;
use crate::wire::ma::{self, MaPacket};
use crate::wire::mt::{self, Body, KickReason, LeaveReason, Packet, SeqRange};
use crate::wire::security::{Check, SessionSecurity};

mod cache;
mod leaves;
mod loss;
mod state;
#[cfg(test)]
mod tests;
mod transmit;

use cache::{AppCache, Refused};
use leaves::{LeaveQueue, PendingLeave};
use state::{MtState, SessionState, Timer};
use transmit::{PendingAck, TransmitQueue};

pub use loss::LOSS_RATE_ALPHA;
pub use state::{FORCE_QCC_INTERVAL, UNCONFIRMED_QCR_INTERVAL};

/// JoinInterval (§3.2.1.2): JOIN is re-sent this often until a JOINACK arrives.
pub const JOIN_INTERVAL: Duration = Duration::from_millis(500);
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
    /// Whether the server has made this client the master (the one that ACKs); false once the
    /// client has left the session.
    pub is_master: bool,
    pub client_id: Option<u32>,
    /// Estimated loss rate, 0..=1.
    pub loss_rate: f64,
    /// Time spent as master client (updated when mastership changes and when the session
    /// ends).
    pub time_as_master: Duration,
}

/// The client side of one MS-WDSMT/MS-WDSMA session, from the first JOIN to its end.
///
/// The contract, as quinn-proto's `Connection` states its own:
/// * **getters** ([`stats`](Self::stats), [`params`](Self::params),
///   [`missing_block_ranges`](Self::missing_block_ranges), [`is_finished`](Self::is_finished))
///   only read;
/// * **input**: [`handle_datagram`](Self::handle_datagram) for every datagram from the
///   session's group or the server, which returns the block it carried when that block is new
///   and the cache has room (release it later with [`cache_done`](Self::cache_done)), and
///   [`handle_timeout`](Self::handle_timeout) when the instant from `poll_timeout` has passed
///   (calling it early does nothing);
/// * **commands** ([`cancel`](Self::cancel), [`cache_done`](Self::cache_done)) only change
///   state: what they cause comes out of the polls;
/// * **output**, polled after every input or command in this order:
///   [`poll_transmit`](Self::poll_transmit) until `None` (each call appends one datagram to
///   the buffer and returns its [`Transmit`]), [`poll_event`](Self::poll_event) until
///   `None`, then [`poll_timeout`](Self::poll_timeout) for the one instant to wake up at.
///
/// [`ClientEvent::Finished`] comes exactly once, last; the machine is done when
/// [`is_finished`](Self::is_finished) says so (every datagram taken too).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    /// Client creation: SenderTime origin and MS-WDSMA JoinTime.
    epoch: Instant,
    rng: SmallRng,
    mt: MtState,
    /// What the server's packets must carry.
    check: Check,
    cache: AppCache,
    out: TransmitQueue,
    leaves: LeaveQueue,
    events: VecDeque<ClientEvent>,
    /// When this client last became master, while it is.
    master_since: Option<Instant>,
    /// The session is ending: nothing but pending LEAVEs happens any more.
    ending: bool,
    finished: bool,
    stats: ClientStats,
}

impl Client {
    /// §3.2.3: set up the state and queue the first JOIN. A session description whose sizes
    /// disagree (or whose bitmap cannot be had) is refused with the reason.
    pub fn new(config: ClientConfig, now: Instant, rng: SmallRng) -> Result<Self, BitmapError> {
        let cache = AppCache::new(&config.params, config.cache_size)?;
        let stats = ClientStats {
            total_blocks: config.params.total_blocks,
            content_size: config.params.content_size,
            ..ClientStats::default()
        };
        let out = TransmitQueue::new(config.security.client_protect());
        let check = config.security.client_check();
        let mut client = Self {
            config,
            epoch: now,
            rng,
            mt: MtState::new(),
            check,
            cache,
            out,
            leaves: LeaveQueue::default(),
            events: VecDeque::new(),
            master_since: None,
            ending: false,
            finished: false,
            stats,
        };
        client.start_join(now);
        Ok(client)
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The Finished event has been emitted and every datagram has been taken.
    pub fn is_finished(&self) -> bool {
        self.finished && self.out.is_empty()
    }

    /// The session this client currently belongs to (changes on DEMOTE).
    pub fn params(&self) -> &SessionParams {
        &self.config.params
    }

    /// The first `max` missing block ranges (inclusive, 1-based).
    pub fn missing_block_ranges(&self, max: usize) -> Vec<(u64, u64)> {
        self.cache
            .missing_ranges(max)
            .into_iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    /// MA Cache Done (§3.2.5.17): the consumer is finished with `bytes` delivered bytes.
    pub fn cache_done(&mut self, bytes: u64) {
        self.cache.release(bytes);
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Appends the next datagram to `buf` and says where it goes.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.out.poll(buf)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = [self.mt.timers.next_timeout(), self.leaves.next_at()];
        next.into_iter().flatten().min().filter(|_| !self.finished)
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
        let timers = &self.mt.timers;
        if timers.is_expired(Timer::JoinDeadline, now) {
            self.terminate(now, ClientOutcome::TimedOut(Phase::Join), None);
            return;
        }
        if timers.is_expired(Timer::FirstData, now) {
            let outcome = ClientOutcome::TimedOut(Phase::FirstData);
            self.terminate(now, outcome, Some(LeaveReason::Inactive));
            return;
        }
        if timers.is_expired(Timer::Inactivity, now) {
            // §3.2.5.4.2 says CANCELLED, §2.2.11 defines INACTIVE for this case
            // (README.md#pn-client-inactivity).
            let outcome = ClientOutcome::TimedOut(Phase::Inactivity);
            self.terminate(now, outcome, Some(LeaveReason::Inactive));
            return;
        }
        if timers.is_expired(Timer::JoinResend, now) {
            // §3.2.5.3.1 Join Timer.
            self.send_join(now);
            self.mt.timers.set(Timer::JoinResend, now + JOIN_INTERVAL);
        }
        if self.mt.timers.take_expired(Timer::Qcc, now) {
            self.send_qcr_after_qcc(now);
        }
        if self.mt.timers.is_expired(Timer::ForceQcc, now) {
            self.send_voluntary_qcr(now);
        }
        if self.mt.timers.take_expired(Timer::Poll, now) {
            self.send_pollack(now);
        }
        if self.mt.timers.take_expired(Timer::Nack, now) {
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
        // An RDATA before FirstODATASeqNo is known is another client's repair (see `on_data`):
        // it does not show that the server serves us, so the fast voluntary QCRs go on.
        let session_traffic = match packet.body {
            Body::Spm(_) | Body::Qcc(_) | Body::Poll(_) | Body::OData(_) => true,
            Body::RData(_) => self.mt.first_odata_seq_no != 0,
            _ => false,
        };
        if session_traffic && !self.mt.session_heard {
            self.mt.session_heard = true;
            if self.mt.timers.is_set(Timer::ForceQcc) {
                self.mt
                    .timers
                    .set(Timer::ForceQcc, now + FORCE_QCC_INTERVAL);
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
            self.mt
                .timers
                .set(Timer::Inactivity, now + self.config.inactivity_timeout);
        }
    }

    fn start_join(&mut self, now: Instant) {
        self.mt.state = SessionState::Join;
        self.mt
            .timers
            .set(Timer::JoinDeadline, now + self.config.join_timeout);
        self.mt.timers.set(Timer::JoinResend, now + JOIN_INTERVAL);
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
        self.mt.timers.stop(Timer::JoinResend);
        self.mt.timers.stop(Timer::JoinDeadline);
        self.mt.state = SessionState::Regular;
        let at = self.mt.next_voluntary_qcr(now);
        self.mt.timers.set(Timer::ForceQcc, at);
        self.update_master(now, self.mt.master_client_id);
        if first {
            self.events.push_back(ClientEvent::Joined {
                client_id: ack.client_id,
            });
            if !self.mt.data_flowed {
                self.mt
                    .timers
                    .set(Timer::FirstData, now + self.config.first_data_timeout);
            }
            // Empty content (or content completed before a DEMOTE): nothing to wait for.
            if self.cache.is_complete() {
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
        let at = now + random_millis(&mut self.rng, qcc.qcr_backoff.into());
        self.mt.timers.set(Timer::Qcc, at);
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
        let at = now + random_millis(&mut self.rng, poll.backoff.into());
        self.mt.timers.set(Timer::Poll, at);
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
            // Seeded so that joining does not count the whole backlog as lost.
            mt.set_first_odata(spm.lead_odata_seq_no, spm.lead_odata_seq_no);
        }
        mt.loss.on_spm(spm.lead_odata_seq_no);
        mt.hi_odata_seq_no = mt.hi_odata_seq_no.max(spm.trail_odata_seq_no);
        let start = spm.trail_odata_seq_no.max(mt.first_odata_seq_no);
        mt.missing.update_start(start);
        mt.missing.update_end(spm.lead_odata_seq_no);
        self.stats.loss_rate = self.mt.loss.rate();
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
            self.mt.timers.stop(Timer::FirstData);
            self.packet_heard(now);
        }
        if repair && self.mt.first_odata_seq_no == 0 {
            // Deviation: an RDATA heard before any ODATA or SPM is another client's repair of
            // a packet sent before we joined. §3.2.1.3 sets FirstODATASeqNo from an ODATA or an
            // SPM only; starting the Missing ODATA List at the repair's old sequence number
            // would NACK the whole backlog sent before we joined, which the next MS-WDSMA round
            // delivers anyway. The block itself is kept.
            self.update_master(now, packet.client_id);
            return self.deliver_block(now, packet.data);
        }
        let mt = &mut self.mt;
        if mt.first_odata_seq_no == 0 {
            // §3.2.1.3: the first ODATA received sets FirstODATASeqNo.
            mt.set_first_odata(seq, seq - 1);
        }
        mt.hi_odata_seq_no = mt.hi_odata_seq_no.max(seq);
        mt.loss.on_data(seq);
        let start = packet.trail_odata_seq_no.max(mt.first_odata_seq_no);
        mt.missing.update_start(start);
        mt.missing.update_end(seq);
        mt.missing.received(seq);
        self.stats.loss_rate = self.mt.loss.rate();
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
        let stored = match self.cache.store(&block) {
            Ok(stored) => stored,
            Err(Refused::Invalid) => {
                self.stats.other_drops += 1;
                return None;
            }
            Err(Refused::Duplicate) => {
                self.stats.duplicate_blocks += 1;
                return None;
            }
            // §3.2.5.12.2: no room in the consumer's cache: a zero NACK slows the server down
            // and the block waits for a later MS-WDSMA round.
            Err(Refused::Full) => {
                self.stats.cache_full_drops += 1;
                self.send_nack(now, &[]);
                return None;
            }
        };
        self.stats.blocks_received += 1;
        self.stats.bytes_received += stored.len;
        if stored.complete {
            // MA §3.2.5.1 Terminate trigger with COMPLETE.
            self.terminate(now, ClientOutcome::Complete, Some(LeaveReason::Complete));
        }
        Some(Delivery {
            block_number: block.block_number,
            offset: stored.offset,
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
        self.mt = MtState::new();
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
        if self.mt.missing.is_empty() || self.mt.timers.is_set(Timer::Nack) {
            return;
        }
        let delay = if self.mt.is_master() {
            Duration::ZERO
        } else {
            self.mt.nack_backoff(&mut self.rng)
        };
        self.mt.timers.set(Timer::Nack, now + delay);
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
        self.mt.timers.set(Timer::Nack, now + backoff);
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
            loss_rate: self.mt.loss.wire(),
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
            loss_rate: self.mt.loss.wire(),
        };
        // Deviation (performance): ACKs are cumulative, so an ACK still waiting to be sent
        // when the next one is made says nothing the new one does not. Replacing it means a
        // burst of datagrams handled together costs the server one ACK, not one per packet.
        self.out.replace_ack(PendingAck {
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
        self.cache.percent_received()
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
        let at = self.mt.next_voluntary_qcr(now);
        self.mt.timers.set(Timer::ForceQcc, at);
        let Some(client_id) = self.mt.client_id else {
            return;
        };
        let body = Body::Qcr(mt::Qcr {
            client_id,
            qcc_seq_no,
            backoff,
            server_time,
            hi_odata_seq_no: self.mt.hi_odata_seq_no,
            loss_rate: self.mt.loss.wire(),
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
        let ranges = self.cache.missing_ranges(ma::MAX_CNTCIR_RANGES);
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
        let (session_id, server) = (self.config.params.session_id, self.config.params.server);
        self.out.send(
            session_id,
            millis_since(self.epoch, now),
            Body::Join(join),
            server,
        );
    }

    /// Queues a packet of the current session for the server.
    fn send(&mut self, now: Instant, body: Body<'_>) {
        let (session_id, server) = (self.config.params.session_id, self.config.params.server);
        self.out
            .send(session_id, millis_since(self.epoch, now), body, server);
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
        let leave = PendingLeave {
            at: now + random_millis(&mut self.rng, max_ms),
            session_id,
            client_id,
            server,
            reason,
            then_finish,
        };
        if let Some(oldest) = self.leaves.push(leave) {
            // Repeated DEMOTEs: leave the oldest session right away rather than forget it.
            self.send_leave(now, &oldest);
        }
    }

    fn fire_pending_leaves(&mut self, now: Instant) {
        while let Some(leave) = self.leaves.take_due(now) {
            self.send_leave(now, &leave);
            if let Some(outcome) = leave.then_finish {
                self.finish(now, outcome);
                return;
            }
        }
    }

    fn send_leave(&mut self, now: Instant, leave: &PendingLeave) {
        let body = Body::Leave(mt::Leave {
            client_id: leave.client_id,
            reason: leave.reason,
        });
        self.out.send(
            leave.session_id,
            millis_since(self.epoch, now),
            body,
            leave.server,
        );
    }

    /// Ends the session: with a LEAVE (after its delay) when we have a ClientId and a reason,
    /// otherwise at once.
    fn terminate(&mut self, now: Instant, outcome: ClientOutcome, leave: Option<LeaveReason>) {
        if self.ending || self.finished {
            return;
        }
        self.ending = true;
        self.mt.timers.stop_all();
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
        // A client that has left acknowledges nothing: it stops being the master (and its
        // time as master is closed) here, not when the next master is announced, which it no
        // longer hears.
        self.update_master(now, 0);
        for leave in self.leaves.take_all() {
            self.send_leave(now, &leave);
        }
        self.ending = true;
        self.finished = true;
        self.mt.timers.stop_all();
        self.events.push_back(ClientEvent::Finished(outcome));
    }
}
