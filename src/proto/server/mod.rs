//! Sans-IO server for one object session: MS-WDSMT §3.1 (transport) and MS-WDSMA §3.1
//! (application) together.
//!
//! The transport runs PreStart -> QCC -> Data (MS-WDSMT §3.1.3): JOIN/JOINACK admission,
//! QCC rounds electing the master client (highest RTT), SPM heartbeats, ODATA limited by the
//! window the master's ACKs open, NACK -> NCF + RDATA, the Data Packet List cleanup, KICK,
//! client-dead and inactivity timers. The application layer runs query rounds (POLL with
//! SRVCIR, CNTCIR collection, the 30-second rule, merged missing ranges) and data rounds.
//!
//! Where the spec is silent or self-contradictory this server (each with its row in README.md's
//! Protocol notes):
//! * skips ClientId 0 (the "no master" value) and ids in use when NextClientId wraps
//!   (README.md#pn-server-client-ids);
//! * answers a repeated JOIN from the same address with the same ClientId (clients repeat
//!   JOIN every 500 ms until a JOINACK arrives) and sends at most 1 + 3 JOINACKs
//!   (README.md#pn-server-repeated-join);
//! * takes no RTT from voluntary QCRs (QCCSeqNo 0 carries no usable ServerTime,
//!   README.md#pn-server-voluntary-qcr);
//! * never lets the QCC wait drop below 50 ms, so thread scheduling cannot starve elections
//!   (README.md#pn-server-qcc-wait);
//! * announces Trail = MCLead when the Data Packet List is empty, so that a client's
//!   highest-continuous ACK stays inside [MCTrail, MCLead] (README.md#pn-server-empty-trail);
//! * treats a master ACK below MCTrail as proof of life that opens no window
//!   (README.md#pn-server-old-ack);
//! * drops a NACK naming anything beyond MCLead (never sent) and caps the work per NACK
//!   (README.md#pn-server-nack-bounds);
//! * hands blocks from the application to the transport lazily and raises Data Empty when a
//!   round's blocks are all sent and acknowledged by the master (or purged)
//!   (README.md#pn-server-lazy-blocks);
//! * polls about once a second when no client needs data, instead of every 200 ms
//!   (README.md#pn-server-query-rounds).
//!
//! Memory stays bounded whatever peers send: every list is capped, the Data Packet List holds
//! only (block, sequence number, times) per entry and blocks are re-read from the
//! [`BlockSource`] on every (re)send, and the application hands blocks to the transport lazily
//! (one at a time, when the window allows) instead of queueing a whole round at once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::timer::TimerTable;
use super::{SmallRng, Transmit, millis_since};
use crate::wire::block::BlockHeader;
use crate::wire::ma::{self, MaPacket};
use crate::wire::mt::{self, Body, Packet, Security};

pub use crate::wire::mt::{KickReason, LeaveReason};

mod config;
mod data_list;
mod master;
mod members;
mod rounds;
mod state;
#[cfg(test)]
mod tests;
mod window;

pub use config::{BlockSource, ServerEvent, ServerStats, SessionConfig};
use data_list::DataPacketList;
use master::{Election, MAX_NO_RESPONSE_SPM, RTT_CAP_MS};
use members::{JoinAckTo, Members, Sender, find};
use rounds::{QueryOutcome, Rounds};
use state::{MtState, Timer};
use window::Window;

#[cfg(test)]
use master::{MIN_MASTER_TENURE, QCC_MIN_WAIT_MS};
#[cfg(test)]
use rounds::merge_ranges;

/// Most clients any one list (pending, active, kick) holds (MS-WDSMT §3.1.1.2).
pub const MAX_CLIENTS: usize = 200;
/// Window sizes, in packets. The spec leaves them to the implementation. On a LAN the
/// round trip is well under a millisecond, so the window mostly bounds the burst a slow or
/// lossy receiver must absorb: 64 packets (512 KiB at 8 KiB blocks) is reached within a
/// handful of ACKs and already covers a gigabit link's bandwidth-delay product, and growth of
/// about a quarter per round trip up to 1024 packets (8 MiB) lets a fast LAN run without
/// stalling on ACK timing, while a queue building toward the master (x7/8 per round trip) or
/// congestion loss (x3/4) pulls it back; see `window.rs` (README.md#pn-server-windows).
pub const DEFAULT_EXP_MAX_WINDOW: u64 = 64;
/// See [`DEFAULT_EXP_MAX_WINDOW`].
pub const DEFAULT_MAX_WINDOW: u64 = 1024;

const POLL_BACKOFF_MS: u16 = 200;
const KICK_INTERVAL: Duration = Duration::from_secs(15);
/// A kicked client that keeps talking gets its KICK by unicast at most this often
/// (README.md#pn-server-kick).
const KICK_ECHO_INTERVAL: Duration = Duration::from_secs(1);
const CLEANUP_DATA_LIST_INTERVAL: Duration = Duration::from_millis(200);
/// Pause between query rounds when no client needs data (or none answered).
const IDLE_QUERY_INTERVAL: Duration = Duration::from_secs(1);
const CLIENT_CLEANUP_INTERVAL: Duration = Duration::from_secs(1);
/// Work cap per NACK: ranges looked at.
const MAX_NACK_RANGES_PROCESSED: usize = 64;
const MAX_CONTROL_QUEUE: usize = 1024;
const MAX_EVENTS: usize = 4096;
const KICK_ENTRIES_PER_PACKET: usize = MAX_CLIENTS;

/// The server side of one object session. See the module documentation for the protocol;
/// the contract, as quinn-proto's `Connection` states its own:
/// * **getters** ([`config`](Self::config), [`stats`](Self::stats),
///   [`master_client_id`](Self::master_client_id), [`is_finished`](Self::is_finished)) only
///   read;
/// * **input**: [`handle_datagram`](Self::handle_datagram) for every datagram a client sent to
///   the session's unicast port, and [`handle_timeout`](Self::handle_timeout) when the instant
///   from `poll_timeout` has passed (calling it early does nothing);
/// * **commands** ([`kick`](Self::kick)) only change state: the KICK comes out of the polls;
/// * **output**, polled after every input or command in this order:
///   [`poll_transmit`](Self::poll_transmit) until `None` (each call appends one datagram to
///   the buffer and returns its [`Transmit`]: control packets first, then RDATA, then
///   window-limited ODATA read from the [`BlockSource`]), [`poll_event`](Self::poll_event)
///   until `None`, then [`poll_timeout`](Self::poll_timeout) for the one instant to wake up
///   at (pacing included).
///
/// The session is over when [`is_finished`](Self::is_finished) says so (the inactivity
/// timeout; [`ServerEvent::SessionEnded`] comes last).
///
/// The state lives in owner types along the specification's sections: the client lists
/// (`members.rs`), the master election (`master.rs`), the window and pacing (`window.rs`),
/// the Data Packet List and repair (`data_list.rs`) and the MS-WDSMA rounds (`rounds.rs`);
/// this type sequences them and owns the timers and the output queues.
pub struct ServerSession {
    config: SessionConfig,
    epoch: Instant,
    rng: SmallRng,
    state: MtState,
    finished: bool,
    members: Members,
    election: Election,
    window: Window,
    dpl: DataPacketList,
    rounds: Rounds,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    control: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
}

impl ServerSession {
    pub fn new(config: SessionConfig, now: Instant, mut rng: SmallRng) -> Self {
        use rand::Rng;
        let config = config.normalized();
        let next_client_id = rng.random::<u32>();
        let window = Window::new(
            now,
            config.exp_max_window,
            config.max_window,
            config.max_rate,
        );
        let mut timers = TimerTable::default();
        timers.set(Timer::Inactivity, now + config.inactivity_timeout);
        timers.set(Timer::ClientCleanup, now + CLIENT_CLEANUP_INTERVAL);
        Self {
            members: Members::new(next_client_id, config.max_clients),
            rounds: Rounds::new(config.total_blocks),
            stats: ServerStats {
                window: window.size(),
                ..ServerStats::default()
            },
            config,
            epoch: now,
            rng,
            state: MtState::PreStart,
            finished: false,
            election: Election::new(now),
            window,
            dpl: DataPacketList::new(),
            timers,
            control: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True once the inactivity timeout has ended the session.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// The current master client, if any.
    pub fn master_client_id(&self) -> Option<u32> {
        let id = self.election.master_id;
        (id != 0).then_some(id)
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    // ----- input ------------------------------------------------------------------------

    /// Processes one datagram a client sent to the session's unicast port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.finished {
            return;
        }
        self.stats.packets_received += 1;
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                if matches!(e.kind, crate::wire::DecodeErrorKind::BadChecksum { .. }) {
                    self.stats.dropped_bad_checksum += 1;
                } else {
                    self.stats.dropped_malformed += 1;
                }
                return;
            }
        };
        // The header must be the clients' mode and prove the packet (MS-WDSMT §3.1.5.1.1).
        if !self
            .config
            .check
            .accepts(&packet.security, mt::covered(bytes))
        {
            self.stats.dropped_bad_security += 1;
            return;
        }
        if packet.session_id != self.config.session_id {
            self.stats.dropped_wrong_session += 1;
            return;
        }
        let accepted = match &packet.body {
            Body::Join(join) => self.on_join(now, from, packet.sender_time, &join.client_name),
            Body::Qcr(qcr) => self.on_qcr(now, from, qcr),
            Body::Ack(ack) => self.on_ack(now, from, ack),
            Body::Nack(nack) => self.on_nack(now, from, nack),
            Body::Leave(leave) => self.on_leave(now, from, leave),
            Body::PollAck(pollack) => self.on_pollack(now, from, pollack),
            _ => {
                self.stats.dropped_unexpected += 1;
                false
            }
        };
        if accepted {
            let at = now + self.config.inactivity_timeout;
            self.timers.set(Timer::Inactivity, at);
        }
        // The master's last ACK of a round ends it at once rather than at the next timer.
        if matches!(packet.body, Body::Ack(_)) && self.round_done() {
            self.start_query(now);
        }
        self.refresh_counts();
    }

    fn on_join(&mut self, now: Instant, from: SocketAddr, sender_time: u64, name: &str) -> bool {
        // A client repeats JOIN every 500 ms until a JOINACK arrives: answer the repeat with
        // the same ClientId instead of creating another pending record.
        if let Some(to) = self.members.repeated_join(now, from, sender_time) {
            self.send_join_ack(now, to);
            return true;
        }
        if self.members.reclaim_spent_pending() {
            self.stats.pending_expired += 1;
        }
        if self.members.is_full() {
            let reason = format!(
                "session already has {} pending and {} active clients (limit {})",
                self.members.pending.len(),
                self.members.active.len(),
                self.members.max_clients()
            );
            self.refuse(from, reason);
            return true;
        }
        let to = self.members.add_pending(now, from, sender_time);
        let name: String = name.chars().take(16).collect();
        self.push_event(ServerEvent::ClientJoined {
            client_id: to.client_id,
            addr: from,
            name,
        });
        self.send_join_ack(now, to);
        true
    }

    fn refuse(&mut self, addr: SocketAddr, reason: String) {
        self.stats.joins_refused += 1;
        self.push_event(ServerEvent::JoinRefused { addr, reason });
    }

    fn on_qcr(&mut self, now: Instant, from: SocketAddr, qcr: &mt::Qcr<'_>) -> bool {
        if let Some(index) = find(&self.members.pending, qcr.client_id, from) {
            // Deviation: any QCR proves the client has its JOINACK (the one after JOINACK may
            // have been lost), so every flavour activates it. A voluntary QCR carries no
            // ServerTime to measure an RTT from (README.md#pn-server-voluntary-qcr).
            let rtt = if qcr.server_time != 0 {
                self.rtt_from(now, qcr.server_time)
            } else {
                None
            };
            let Some(client_id) = self.activate_pending(now, index, rtt) else {
                return true;
            };
            self.status_trigger(now, client_id, qcr.app_data);
            return true;
        }
        let index = match self.joined_sender(now, qcr.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        if qcr.qcc_seq_no != 0 {
            if !self.election.answers_last_qcc(qcr.qcc_seq_no) {
                self.stats.dropped_stale += 1;
                return true;
            }
            // Voluntary QCRs (QCCSeqNo 0) carry no usable ServerTime: no RTT from them.
            if let Some(rtt) = self.rtt_from(now, qcr.server_time) {
                self.members.active[index].rtt_ms = rtt;
            }
            self.members.active[index].qcr_received = true;
        }
        let member = &mut self.members.active[index];
        member.loss_rate = mt::loss_rate_from_wire(qcr.loss_rate);
        let client_id = member.client_id;
        self.status_trigger(now, client_id, qcr.app_data);
        true
    }

    /// The active client a QCR, ACK, NACK or POLLACK comes from, its LastUpdate refreshed.
    /// Otherwise `Err(handled)`: a kicked client is counted as stale, kept from the dead
    /// timeout and sent its KICK again (`true`); anyone else is unknown (`false`).
    fn joined_sender(
        &mut self,
        now: Instant,
        client_id: u32,
        from: SocketAddr,
    ) -> Result<usize, bool> {
        match self.members.sender(now, client_id, from) {
            Sender::Active(index) => Ok(index),
            Sender::Kicked(index) => {
                self.stats.dropped_stale += 1;
                self.echo_kick(now, index);
                Err(true)
            }
            Sender::Unknown => {
                self.stats.dropped_unknown_client += 1;
                Err(false)
            }
        }
    }

    /// Moves a pending client to the Active list (MS-WDSMT §3.1.5.2.3); `None` when the list is
    /// full and the client was refused.
    fn activate_pending(&mut self, now: Instant, index: usize, rtt: Option<u64>) -> Option<u32> {
        let client_id = match self.members.activate(now, index, rtt) {
            Ok(client_id) => client_id,
            Err(addr) => {
                let reason = format!(
                    "active list is full ({} clients)",
                    self.members.active.len()
                );
                self.refuse(addr, reason);
                return None;
            }
        };
        self.push_event(ServerEvent::ClientActive { client_id });
        if self.state == MtState::PreStart {
            self.enter_qcc(now);
        } else if self.state == MtState::Data && self.rounds.is_idle() {
            // Deviation: an idle session would ask its clients again only after the idle
            // interval (about 1 s); a client that just became active needs data, so the query
            // round starts now (README.md#pn-server-idle-join).
            self.start_query(now);
        }
        Some(client_id)
    }

    /// MS-WDSMA Status Trigger: the QCR's AppData is a PROGRESS packet.
    fn status_trigger(&mut self, now: Instant, client_id: u32, app_data: &[u8]) {
        if app_data.is_empty() {
            return;
        }
        match MaPacket::decode(app_data) {
            Ok(MaPacket::Progress(p)) => {
                self.client_progress(now, client_id, p.progress, p.time_in_session)
            }
            _ => self.stats.dropped_bad_app_data += 1,
        }
    }

    fn client_progress(&mut self, now: Instant, client_id: u32, percent: u8, time_in_session: u32) {
        let percent = percent.min(100);
        self.push_event(ServerEvent::Progress {
            client_id,
            percent,
            time_in_session,
        });
        let Some(threshold) = self.config.auto_disconnect_below else {
            return;
        };
        let progress = (percent, time_in_session);
        let content_size = self.config.content_size;
        if self
            .members
            .too_slow(now, client_id, progress, threshold, content_size)
        {
            self.kick(now, client_id, KickReason::Fallback);
        }
    }

    fn on_ack(&mut self, now: Instant, from: SocketAddr, ack: &mt::Ack) -> bool {
        let index = match self.joined_sender(now, ack.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        if ack.client_id != self.election.master_id {
            // A former master still acknowledging: alive, but not a window signal.
            self.stats.dropped_stale += 1;
            return true;
        }
        if ack.odata_seq_no > self.dpl.mc_lead {
            self.stats.dropped_bad_ack += 1;
            return true;
        }
        self.stats.acks_received += 1;
        self.election.spm_count = 0;
        if let Some(rtt) = self.rtt_from(now, ack.server_time) {
            self.election.master_rtt(now, rtt);
            self.members.active[index].rtt_ms = rtt;
        }
        self.election.loss = mt::loss_rate_from_wire(ack.loss_rate);
        self.members.active[index].loss_rate = self.election.loss;
        // Deviation: an ACK below MCTrail (a newly chosen master that is still behind) proves
        // the master alive but opens no window; the spec would drop it and re-elect
        // (README.md#pn-server-old-ack).
        if ack.odata_seq_no >= self.dpl.mc_trail {
            self.dpl.mc_trail = ack.odata_seq_no;
            // Deviation (performance): the window counts from what the master holds
            // (HiODATASeqNo), not from MCTrail, which stays at the first gap until it is
            // repaired. Counting from MCTrail stalls sending for a repair round trip after
            // every loss, which at 5 % loss halves throughput; MCTrail still decides what
            // the cleanup may drop, so every gap stays repairable (README.md#pn-server-window-base).
            let held = ack
                .hi_odata_seq_no
                .clamp(ack.odata_seq_no, self.dpl.mc_lead);
            let queueing = self.election.delay.queueing_ms;
            self.window
                .on_held(now, held, queueing, self.election.rtt_ms);
        }
        self.window.open_from(self.dpl.mc_trail);
        true
    }

    fn on_nack(&mut self, now: Instant, from: SocketAddr, nack: &mt::Nack) -> bool {
        let index = match self.joined_sender(now, nack.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        let ranges = &nack.ranges[..nack.ranges.len().min(MAX_NACK_RANGES_PROCESSED)];
        if ranges.len() < nack.ranges.len() {
            self.stats.nack_work_capped += 1;
        }
        // Ranges must lie inside what was sent: [1, MCLead], start <= end
        // (README.md#pn-server-nack-bounds).
        let lead = self.dpl.mc_lead;
        if ranges
            .iter()
            .any(|r| r.start == 0 || r.start > r.end || r.end > lead)
        {
            self.stats.dropped_bad_nack += 1;
            return true;
        }
        self.stats.nacks_received += 1;
        let loss = mt::loss_rate_from_wire(nack.loss_rate);
        let member = &mut self.members.active[index];
        member.loss_rate = loss;
        if nack.client_id == self.election.master_id {
            self.election.loss = loss;
        } else {
            let candidate = member.candidate();
            if self.election.reconsider(now, candidate) {
                let client_id = Some(candidate.client_id);
                self.push_event(ServerEvent::MasterChanged { client_id });
            }
        }
        let queueing = self.election.delay.queueing_ms;
        let (loss, rtt) = (self.election.loss, self.election.rtt_ms);
        self.window
            .on_nack(now, nack.ranges.is_empty(), queueing, loss, rtt);
        let ncf = Body::Ncf(mt::Ncf {
            ranges: ranges.to_vec(),
        });
        let group = self.config.group;
        self.queue_control(now, group, ncf);
        self.stats.ncf_sent += 1;
        let suppress = Duration::from_millis(4 * self.election.rtt_ms);
        self.dpl.queue_repairs(now, ranges, suppress);
        true
    }

    fn on_leave(&mut self, now: Instant, from: SocketAddr, leave: &mt::Leave) -> bool {
        let client_id = leave.client_id;
        if let Some(index) = find(&self.members.active, client_id, from) {
            self.members.active.remove(index);
            self.rounds.forget(client_id);
            self.push_event(ServerEvent::ClientLeft {
                client_id,
                reason: leave.reason,
            });
            if client_id == self.election.master_id {
                self.master_lost(now);
            }
            return true;
        }
        if !self.members.remove_inactive(client_id, from) {
            self.stats.dropped_unknown_client += 1;
            return false;
        }
        self.push_event(ServerEvent::ClientLeft {
            client_id,
            reason: leave.reason,
        });
        true
    }

    fn on_pollack(&mut self, now: Instant, from: SocketAddr, pollack: &mt::PollAck<'_>) -> bool {
        // A POLLACK from a pending client also proves it has its JOINACK (see on_qcr).
        if let Some(index) = find(&self.members.pending, pollack.client_id, from) {
            if self.activate_pending(now, index, None).is_none() {
                return true;
            }
        }
        if let Err(handled) = self.joined_sender(now, pollack.client_id, from) {
            return handled;
        }
        let client_id = pollack.client_id;
        if !self.rounds.answers_last_poll(pollack.poll_seq_no) {
            self.stats.dropped_stale += 1;
            return true;
        }
        let cntcir = match MaPacket::decode(pollack.app_data) {
            Ok(MaPacket::CntCir(c)) => c,
            _ => {
                self.stats.dropped_bad_app_data += 1;
                return true;
            }
        };
        self.client_progress(now, client_id, cntcir.progress, cntcir.time_in_session);
        self.rounds.record(client_id, cntcir);
        true
    }

    /// Moves a client to the Kick list and tells it to leave (§3.1.5.6); KICK repeats every
    /// 15 s while the list is not empty.
    pub fn kick(&mut self, now: Instant, client_id: u32, reason: KickReason) {
        if !self.members.kick(now, client_id, reason) {
            return;
        }
        self.rounds.forget(client_id);
        self.push_event(ServerEvent::ClientKicked { client_id, reason });
        if client_id == self.election.master_id {
            self.master_lost(now);
        }
        if !self.timers.is_set(Timer::Kick) {
            self.send_kicks(now);
            self.timers.set(Timer::Kick, now + KICK_INTERVAL);
        }
        self.refresh_counts();
    }

    /// A kicked client is still talking, so it missed the multicast KICK (a slow client's
    /// congested link is where KICKs get lost): tell it again, directly, rate-limited.
    fn echo_kick(&mut self, now: Instant, index: usize) {
        if !self.members.may_echo_kick(now, index, KICK_ECHO_INTERVAL) {
            return;
        }
        let client = &self.members.kicked[index];
        let (addr, body) = (
            client.addr,
            Body::Kick(mt::Kick {
                clients: vec![(client.client_id, client.kick_reason)],
            }),
        );
        self.queue_control(now, addr, body);
        self.stats.kick_sent += 1;
    }

    fn send_kicks(&mut self, now: Instant) {
        let entries = self.members.kick_entries();
        for chunk in entries.chunks(KICK_ENTRIES_PER_PACKET) {
            let body = Body::Kick(mt::Kick {
                clients: chunk.to_vec(),
            });
            let group = self.config.group;
            self.queue_control(now, group, body);
            self.stats.kick_sent += 1;
        }
    }

    // ----- transport state changes --------------------------------------------------------

    fn master_lost(&mut self, now: Instant) {
        self.election.lose();
        self.push_event(ServerEvent::MasterChanged { client_id: None });
        if self.members.active.is_empty() {
            // Nobody left to elect: wait quietly for the next client (or the inactivity end).
            self.state = MtState::PreStart;
            self.timers.stop(Timer::QccIn);
            self.leave_data_state();
        } else {
            self.enter_qcc(now);
        }
    }

    fn enter_qcc(&mut self, now: Instant) {
        self.leave_data_state();
        self.state = MtState::Qcc;
        self.election.restart_rounds();
        self.send_qcc_in_state(now);
    }

    fn leave_data_state(&mut self) {
        self.timers.stop(Timer::Spm);
        self.timers.stop(Timer::Cleanup);
        self.timers.stop(Timer::QccOut);
    }

    /// QCC in QCCState (§3.1.5.7.3); its answers are collected until the InState QCC timer.
    fn send_qcc_in_state(&mut self, now: Instant) {
        self.members.start_qcc_round();
        let max_rtt = self.members.max_active_rtt();
        let wait = self.election.qcc_wait(self.members.active.len(), max_rtt);
        self.send_qcc(now, wait as u16);
        self.timers
            .set(Timer::QccIn, now + Duration::from_millis(wait));
    }

    fn send_qcc(&mut self, now: Instant, qcr_backoff: u16) {
        let body = Body::Qcc(mt::Qcc {
            qcc_seq_no: self.election.next_qcc_seq(),
            qcr_backoff,
        });
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.qcc_sent += 1;
    }

    /// InState QCC timer (§3.1.6.4): elect the answering client with the highest RTT.
    fn on_qcc_in_timer(&mut self, now: Instant) {
        let Some(best) = self.members.slowest_answer() else {
            self.send_qcc_in_state(now);
            return;
        };
        self.timers.stop(Timer::QccIn);
        if self.election.elect(now, best) {
            self.push_event(ServerEvent::MasterChanged {
                client_id: Some(best.client_id),
            });
        }
        self.enter_data(now);
    }

    /// Enter DataState (§3.1.5.9.1).
    fn enter_data(&mut self, now: Instant) {
        self.state = MtState::Data;
        self.election.spm_count = 0;
        self.timers
            .set(Timer::Cleanup, now + CLEANUP_DATA_LIST_INTERVAL);
        let qcc_out = now + self.out_state_qcc_interval();
        self.timers.set(Timer::QccOut, qcc_out);
        self.send_spm(now);
        if !self.rounds.started() {
            self.start_query(now);
        }
    }

    fn out_state_qcc_interval(&self) -> Duration {
        let active = self.members.active.len() as u64;
        let base = (self.config.qcc_interval.as_millis() as u64).max(active);
        Duration::from_millis((base + self.members.max_active_rtt()).min(RTT_CAP_MS))
    }

    /// SPM (§3.1.5.9.3) with the NACK back-off bounds derived from the master RTT.
    fn send_spm(&mut self, now: Instant) {
        let spm_seq_no = self.election.next_spm(self.members.active.len());
        let body = Body::Spm(mt::Spm {
            spm_seq_no,
            master_client_id: self.election.master_id,
            min_nack_backoff: self.election.min_nack_backoff,
            max_nack_backoff: self.election.max_nack_backoff,
            trail_odata_seq_no: self.dpl.trail(),
            lead_odata_seq_no: self.dpl.mc_lead,
            rtt: self.election.wire_rtt(),
        });
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.spm_sent += 1;
        let at = now + self.election.spm_interval();
        self.timers.set(Timer::Spm, at);
    }

    fn send_join_ack(&mut self, now: Instant, to: JoinAckTo) {
        let body = Body::JoinAck(mt::JoinAck {
            client_id: to.client_id,
            min_nack_backoff: self.election.min_nack_backoff,
            max_nack_backoff: self.election.max_nack_backoff,
            rtt: self.election.wire_rtt(),
            client_time: to.client_time,
        });
        self.queue_control(now, to.addr, body);
        self.stats.joinack_sent += 1;
    }

    // ----- application layer (MS-WDSMA §3.1) ---------------------------------------------

    fn start_query(&mut self, now: Instant) {
        let mut srvcir = Vec::with_capacity(ma::HEADER_LEN);
        MaPacket::SrvCir.encode_into(&mut srvcir);
        let body = Body::Poll(mt::Poll {
            poll_seq_no: self.rounds.start_query(),
            backoff: POLL_BACKOFF_MS,
            app_data: &srvcir,
        });
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.poll_sent += 1;
        let deadline = now + Duration::from_millis(POLL_BACKOFF_MS.into());
        self.timers.set(Timer::Round, deadline);
    }

    /// Query Timer (MS-WDSMA §3.1.6.1).
    fn on_query_timer(&mut self, now: Instant) {
        match self.rounds.on_query_timer(!self.members.active.is_empty()) {
            QueryOutcome::Requery => self.start_query(now),
            QueryOutcome::Idle => self.go_idle(now),
            QueryOutcome::Round { missing_blocks } => {
                self.timers.stop(Timer::Round);
                self.stats.rounds_started += 1;
                self.push_event(ServerEvent::RoundStarted { missing_blocks });
            }
        }
    }

    /// Waits before the next query round; the jitter keeps many idle sessions from polling
    /// in lockstep.
    fn go_idle(&mut self, now: Instant) {
        let jitter = super::random_millis(&mut self.rng, 200);
        self.rounds.go_idle();
        self.timers
            .set(Timer::Round, now + IDLE_QUERY_INTERVAL + jitter);
    }

    /// Data Empty: every block of the round was handed out and the master has acknowledged
    /// everything sent, so the next query round can begin.
    fn round_done(&self) -> bool {
        self.rounds.handed_out() && (self.dpl.mc_trail >= self.dpl.mc_lead || self.dpl.is_empty())
    }

    // ----- timers -----------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.timers.is_expired(Timer::Inactivity, now) {
            self.finished = true;
            self.control.clear();
            self.dpl.clear_repairs();
            self.push_event(ServerEvent::SessionEnded);
            return;
        }
        self.pending_timers(now);
        if self.timers.is_expired(Timer::ClientCleanup, now) {
            self.client_cleanup(now);
            self.timers
                .set(Timer::ClientCleanup, now + CLIENT_CLEANUP_INTERVAL);
        }
        if self.timers.is_expired(Timer::Kick, now) {
            if self.members.kicked.is_empty() {
                self.timers.stop(Timer::Kick);
            } else {
                self.send_kicks(now);
                self.timers.set(Timer::Kick, now + KICK_INTERVAL);
            }
        }
        if self.state == MtState::Qcc && self.timers.is_expired(Timer::QccIn, now) {
            self.on_qcc_in_timer(now);
        }
        if self.state == MtState::Data {
            if self.timers.is_expired(Timer::Spm, now) {
                if self.election.spm_count >= MAX_NO_RESPONSE_SPM {
                    // The master stopped answering: elect again.
                    self.enter_qcc(now);
                } else {
                    self.send_spm(now);
                }
            }
            if self.timers.is_expired(Timer::Cleanup, now) {
                if self.dpl.cleanup(now) {
                    self.send_spm(now);
                }
                self.timers
                    .set(Timer::Cleanup, now + CLEANUP_DATA_LIST_INTERVAL);
            }
            if self.timers.is_expired(Timer::QccOut, now) {
                let interval = self.out_state_qcc_interval();
                self.send_qcc(now, interval.as_millis() as u16);
                self.timers.set(Timer::QccOut, now + interval);
            }
        }
        if self.timers.is_expired(Timer::Round, now) {
            if self.rounds.is_querying() {
                self.on_query_timer(now);
            } else if self.rounds.is_idle() {
                self.start_query(now);
            }
        }
        if self.round_done() {
            self.start_query(now);
        }
        self.refresh_counts();
    }

    /// JOINACK retransmissions to pending clients (see `members.rs`).
    fn pending_timers(&mut self, now: Instant) {
        let round = self
            .members
            .join_ack_timers(now, self.config.client_dead_timeout);
        self.stats.pending_expired += round.expired;
        for to in round.resend {
            self.send_join_ack(now, to);
        }
    }

    /// Client Cleanup timer (§3.1.6.2): forget clients silent for ClientDeadTimeout.
    fn client_cleanup(&mut self, now: Instant) {
        let dead = self
            .members
            .remove_dead(now, self.config.client_dead_timeout);
        let mut lost_master = false;
        for client_id in dead {
            self.rounds.forget(client_id);
            lost_master |= client_id == self.election.master_id;
            self.push_event(ServerEvent::ClientDead { client_id });
        }
        if lost_master {
            self.master_lost(now);
        }
    }

    /// The earliest instant at which [`Self::handle_timeout`] has work, including pacing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pacing = self
            .window
            .pace_deadline()
            .filter(|_| self.has_data_to_send());
        let next = [
            self.timers.next_timeout(),
            self.members.next_join_ack_due(),
            pacing,
        ];
        next.into_iter().flatten().min().filter(|_| !self.finished)
    }

    fn has_data_to_send(&self) -> bool {
        self.dpl.has_repairs() || self.odata_allowed()
    }

    fn odata_allowed(&self) -> bool {
        self.window.allows_after(self.dpl.mc_lead)
            && !self.dpl.is_full()
            && self.rounds.next_block().is_some()
    }

    // ----- output -----------------------------------------------------------------------

    /// Appends the next datagram to `buf` and says where it goes, or `None` when nothing is
    /// due. Control packets come first, then RDATA, then window-limited ODATA. A failed
    /// block read is returned as the error; `buf` is then left as it was and the packet is
    /// not consumed.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        source: &mut dyn BlockSource,
    ) -> std::io::Result<Option<Transmit>> {
        let start = buf.len();
        if let Some((dest, bytes)) = self.control.pop_front() {
            buf.extend_from_slice(&bytes);
            return Ok(Some(Transmit::datagram(dest, bytes.len())));
        }
        if self.finished || self.window.paced(now) {
            return Ok(None);
        }
        if let Some(entry) = self.dpl.next_repair() {
            let trail = self.dpl.trail();
            self.encode_block(now, buf, source, true, entry.seq, entry.block_number, trail)?;
            self.dpl.repair_sent();
            self.stats.rdata_sent += 1;
            return Ok(Some(self.data_sent(now, buf.len() - start)));
        }
        if !self.odata_allowed() {
            return Ok(None);
        }
        let Some(block_number) = self.rounds.next_block() else {
            return Ok(None);
        };
        let (seq, trail) = self.dpl.next_odata();
        self.encode_block(now, buf, source, false, seq, block_number, trail)?;
        self.rounds.advance();
        self.dpl.push_odata(now, seq, block_number);
        self.stats.odata_sent += 1;
        Ok(Some(self.data_sent(now, buf.len() - start)))
    }

    /// Appends one block's ODATA or RDATA through the block-packet view: headers, the block
    /// read straight into place, then the security data.
    #[allow(clippy::too_many_arguments)]
    fn encode_block(
        &self,
        now: Instant,
        buf: &mut Vec<u8>,
        source: &mut dyn BlockSource,
        rdata: bool,
        seq: u64,
        block_number: u64,
        trail: u64,
    ) -> std::io::Result<()> {
        let len = self.config.block_len(block_number);
        let header = BlockHeader {
            rdata,
            session_id: self.config.session_id,
            sender_time: millis_since(self.epoch, now),
            client_id: self.election.master_id,
            odata_seq_no: seq,
            trail_odata_seq_no: trail,
            block_number,
        };
        let start = buf.len();
        let protect = &self.config.protect;
        let mut packet = header.append(buf, protect, len);
        let read = source.read_block(block_number, packet.payload_mut());
        match read {
            Ok(()) => packet.seal(protect),
            Err(_) => buf.truncate(start),
        }
        read
    }

    /// A data packet of `len` bytes went to the group.
    fn data_sent(&mut self, now: Instant, len: usize) -> Transmit {
        self.stats.data_bytes_sent += len as u64;
        self.window.sent(now, len);
        Transmit::datagram(self.config.group, len)
    }

    fn queue_control(&mut self, now: Instant, dest: SocketAddr, body: Body<'_>) {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            self.stats.queue_overflows += 1;
            return;
        }
        let packet = Packet {
            // Replaced by the header `protect` makes.
            security: Security::None,
            session_id: self.config.session_id,
            sender_time: millis_since(self.epoch, now),
            body,
        };
        let mut bytes = Vec::new();
        packet.encode_protected(&mut bytes, &self.config.protect);
        self.control.push_back((dest, bytes));
    }

    fn push_event(&mut self, event: ServerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.stats.queue_overflows += 1;
            return;
        }
        self.events.push_back(event);
    }

    fn refresh_counts(&mut self) {
        self.stats.pending_clients = self.members.pending.len();
        self.stats.active_clients = self.members.active.len();
        self.stats.kicked_clients = self.members.kicked.len();
        self.stats.window = self.window.size();
    }

    /// RTT in ms from an echoed SenderTime; `None` when the echo is from the future.
    fn rtt_from(&self, now: Instant, echoed: u64) -> Option<u64> {
        let now_ms = millis_since(self.epoch, now);
        (echoed <= now_ms).then(|| (now_ms - echoed).min(RTT_CAP_MS))
    }
}
