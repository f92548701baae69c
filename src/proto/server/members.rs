//! The session's clients (MS-WDSMT §3.1.1.2): the Pending, Active and Kick lists, ClientId
//! allocation, JOINACK retransmission and the Client Cleanup timer's dead-client rule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::master::Candidate;
use crate::wire::mt::KickReason;

const JOIN_ACK_TO_QCR_TIMEOUT: Duration = Duration::from_millis(500);
const AUTO_DISCONNECT_GRACE_SECS: u32 = 10;
/// A client must stay below `auto_disconnect_below` this long before it is kicked.
const AUTO_DISCONNECT_SUSTAIN: Duration = Duration::from_secs(5);
pub(super) const MAX_JOIN_ACK_SENDS: u32 = 3;

/// One client as the server knows it.
#[derive(Debug)]
pub(super) struct Member {
    pub client_id: u32,
    pub addr: SocketAddr,
    pub client_time: u64,
    pub last_update: Instant,
    pub rtt_ms: u64,
    pub loss_rate: f64,
    pub kick_reason: KickReason,
    pub join_ack_sends: u32,
    pub join_ack_due: Instant,
    pub qcr_received: bool,
    /// Since when the progress rate has been below `auto_disconnect_below`.
    pub slow_since: Option<Instant>,
    /// When a kicked client last got its KICK again by unicast.
    pub kick_echoed_at: Option<Instant>,
}

/// What a JOINACK to a pending client carries from its record.
#[derive(Debug, Clone, Copy)]
pub(super) struct JoinAckTo {
    pub client_id: u32,
    pub addr: SocketAddr,
    pub client_time: u64,
}

/// Who a client packet came from (see [`Members::sender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    Active(usize),
    Kicked(usize),
    Unknown,
}

impl Member {
    pub(super) fn candidate(&self) -> Candidate {
        Candidate {
            client_id: self.client_id,
            rtt_ms: self.rtt_ms,
            loss: self.loss_rate,
        }
    }

    pub(super) fn join_ack_to(&self) -> JoinAckTo {
        JoinAckTo {
            client_id: self.client_id,
            addr: self.addr,
            client_time: self.client_time,
        }
    }
}

/// The three lists, each capped at `max_clients`.
#[derive(Debug)]
pub(super) struct Members {
    pub pending: Vec<Member>,
    pub active: Vec<Member>,
    pub kicked: Vec<Member>,
    next_client_id: u32,
    max_clients: usize,
}

/// What the JOINACK timers did: JOINACKs to send, in order, and records given up.
#[derive(Debug, Default)]
pub(super) struct JoinAckRound {
    pub resend: Vec<JoinAckTo>,
    pub expired: u64,
}

impl Members {
    pub(super) fn new(next_client_id: u32, max_clients: usize) -> Self {
        Self {
            pending: Vec::new(),
            active: Vec::new(),
            kicked: Vec::new(),
            next_client_id,
            max_clients,
        }
    }

    pub(super) fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// The pending record of a JOIN repeated from `from`, refreshed.
    pub(super) fn repeated_join(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_time: u64,
    ) -> Option<JoinAckTo> {
        let client = self.pending.iter_mut().find(|c| c.addr == from)?;
        client.client_time = sender_time;
        client.last_update = now;
        Some(client.join_ack_to())
    }

    /// A full pending table gives up its oldest record whose JOINACKs are all spent (kept only
    /// in case its QCR was lost): otherwise a burst of JOINs that never QCR locks every real
    /// client out for ClientDeadTimeout (README.md#pn-server-full-pending-table). Returns
    /// whether a record was given up.
    pub(super) fn reclaim_spent_pending(&mut self) -> bool {
        if self.pending.len() < self.max_clients {
            return false;
        }
        let Some(index) = self
            .pending
            .iter()
            .position(|c| c.join_ack_sends >= MAX_JOIN_ACK_SENDS)
        else {
            return false;
        };
        self.pending.remove(index);
        true
    }

    /// No room for another JOIN.
    pub(super) fn is_full(&self) -> bool {
        self.pending.len() >= self.max_clients || self.active.len() >= self.max_clients
    }

    /// A new pending client; the caller sends its first JOINACK.
    pub(super) fn add_pending(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_time: u64,
    ) -> JoinAckTo {
        let client_id = self.allocate_client_id();
        let member = Member {
            client_id,
            addr: from,
            client_time: sender_time,
            last_update: now,
            rtt_ms: 1,
            loss_rate: 0.0,
            kick_reason: KickReason::PolicyNotMet,
            join_ack_sends: 0,
            join_ack_due: now + JOIN_ACK_TO_QCR_TIMEOUT,
            qcr_received: false,
            slow_since: None,
            kick_echoed_at: None,
        };
        let to = member.join_ack_to();
        self.pending.push(member);
        to
    }

    /// NextClientId is random at start and counts up; 0 means "no master" and ids in use are
    /// skipped after wrap-around (README.md#pn-server-client-ids).
    fn allocate_client_id(&mut self) -> u32 {
        loop {
            let id = self.next_client_id;
            self.next_client_id = self.next_client_id.wrapping_add(1);
            if id != 0 && !self.in_use(id) {
                return id;
            }
        }
    }

    fn in_use(&self, id: u32) -> bool {
        self.pending
            .iter()
            .chain(&self.active)
            .chain(&self.kicked)
            .any(|c| c.client_id == id)
    }

    /// Moves a pending client to the Active list (MS-WDSMT §3.1.5.2.3). A full Active list
    /// refuses it: the record is dropped and its address returned for the refusal.
    pub(super) fn activate(
        &mut self,
        now: Instant,
        index: usize,
        rtt: Option<u64>,
    ) -> Result<u32, SocketAddr> {
        let mut client = self.pending.remove(index);
        if self.active.len() >= self.max_clients {
            return Err(client.addr);
        }
        if let Some(rtt) = rtt {
            client.rtt_ms = rtt;
        }
        client.last_update = now;
        let client_id = client.client_id;
        self.active.push(client);
        Ok(client_id)
    }

    /// Who sent a QCR, ACK, NACK or POLLACK: an active client (its LastUpdate refreshed), a
    /// kicked one (kept from the dead timeout, so its KICK can be echoed), or a stranger.
    pub(super) fn sender(&mut self, now: Instant, client_id: u32, from: SocketAddr) -> Sender {
        if let Some(index) = find(&self.active, client_id, from) {
            self.active[index].last_update = now;
            return Sender::Active(index);
        }
        if let Some(index) = find(&self.kicked, client_id, from) {
            self.kicked[index].last_update = now;
            return Sender::Kicked(index);
        }
        Sender::Unknown
    }

    /// A QCC round starts: no active client has answered it yet.
    pub(super) fn start_qcc_round(&mut self) {
        for client in &mut self.active {
            client.qcr_received = false;
        }
    }

    /// The client that answered the QCC round with the highest RTT (the lowest ClientId among
    /// equals), the InState QCC timer's choice of master (§3.1.6.4).
    pub(super) fn slowest_answer(&self) -> Option<Candidate> {
        self.active
            .iter()
            .filter(|c| c.qcr_received)
            .max_by_key(|c| (c.rtt_ms, std::cmp::Reverse(c.client_id)))
            .map(Member::candidate)
    }

    /// The auto-disconnect rule: a client whose progress rate (from `percent` of
    /// `content_size` after `time_in_session` seconds) stays below `threshold` bytes per
    /// second for [`AUTO_DISCONNECT_SUSTAIN`], after a grace period, is to be kicked. Returns
    /// whether it is.
    pub(super) fn too_slow(
        &mut self,
        now: Instant,
        client_id: u32,
        (percent, time_in_session): (u8, u32),
        threshold: u64,
        content_size: u64,
    ) -> bool {
        let Some(index) = self.active_index(client_id) else {
            return false;
        };
        let member = &mut self.active[index];
        if time_in_session < AUTO_DISCONNECT_GRACE_SECS || percent >= 100 {
            member.slow_since = None;
            return false;
        }
        let received = content_size as f64 * f64::from(percent) / 100.0;
        let rate = received / f64::from(time_in_session);
        if rate >= threshold as f64 {
            member.slow_since = None;
            return false;
        }
        let since = *member.slow_since.get_or_insert(now);
        now.saturating_duration_since(since) >= AUTO_DISCONNECT_SUSTAIN
    }

    pub(super) fn active_index(&self, client_id: u32) -> Option<usize> {
        self.active.iter().position(|c| c.client_id == client_id)
    }

    /// Moves an active or pending client to the Kick list (§3.1.5.6), the oldest kicked
    /// record making room when the list is full. False when no such client is there.
    pub(super) fn kick(&mut self, now: Instant, client_id: u32, reason: KickReason) -> bool {
        let client = if let Some(i) = self.active_index(client_id) {
            self.active.remove(i)
        } else if let Some(i) = self.pending.iter().position(|c| c.client_id == client_id) {
            self.pending.remove(i)
        } else {
            return false;
        };
        let mut client = client;
        client.kick_reason = reason;
        client.last_update = now;
        if self.kicked.len() >= self.max_clients {
            // The oldest entry has had its KICKs; make room for the new one.
            self.kicked.remove(0);
        }
        self.kicked.push(client);
        true
    }

    /// Every kicked client with its reason, for the KICK packets.
    pub(super) fn kick_entries(&self) -> Vec<(u32, KickReason)> {
        self.kicked
            .iter()
            .map(|c| (c.client_id, c.kick_reason))
            .collect()
    }

    /// Whether a kicked client's KICK may be echoed by unicast now; marks it echoed.
    pub(super) fn may_echo_kick(&mut self, now: Instant, index: usize, interval: Duration) -> bool {
        let client = &mut self.kicked[index];
        if client
            .kick_echoed_at
            .is_some_and(|at| now.saturating_duration_since(at) < interval)
        {
            return false;
        }
        client.kick_echoed_at = Some(now);
        true
    }

    /// Removes the kicked or pending client a LEAVE names; false when there is none.
    pub(super) fn remove_inactive(&mut self, client_id: u32, from: SocketAddr) -> bool {
        for list in [&mut self.kicked, &mut self.pending] {
            if let Some(index) = find(list, client_id, from) {
                list.remove(index);
                return true;
            }
        }
        false
    }

    /// The JOINACK timers of the pending clients: up to [`MAX_JOIN_ACK_SENDS`] more JOINACKs
    /// each, 500 ms apart. Deviation: the spec forgets the client after them, but it may have
    /// its JOINACK and only its QCR was lost; it then believes it is active and would never
    /// be served. The record stays, without more JOINACKs, until ClientDeadTimeout, so that
    /// its next QCR or POLLACK activates it (README.md#pn-server-pending-clients).
    pub(super) fn join_ack_timers(&mut self, now: Instant, dead_timeout: Duration) -> JoinAckRound {
        let mut round = JoinAckRound::default();
        let mut index = 0;
        while index < self.pending.len() {
            let client = &mut self.pending[index];
            if now < client.join_ack_due {
                index += 1;
                continue;
            }
            if client.join_ack_sends >= MAX_JOIN_ACK_SENDS {
                let silent_until = client.last_update + dead_timeout;
                if now >= silent_until {
                    self.pending.remove(index);
                    round.expired += 1;
                    continue;
                }
                client.join_ack_due = silent_until;
                index += 1;
                continue;
            }
            client.join_ack_sends += 1;
            client.join_ack_due = now + JOIN_ACK_TO_QCR_TIMEOUT;
            round.resend.push(client.join_ack_to());
            index += 1;
        }
        round
    }

    pub(super) fn next_join_ack_due(&self) -> Option<Instant> {
        self.pending.iter().map(|c| c.join_ack_due).min()
    }

    /// Client Cleanup timer (§3.1.6.2): forgets active and kicked clients silent for longer
    /// than `dead_after`; returns their ids.
    pub(super) fn remove_dead(&mut self, now: Instant, dead_after: Duration) -> Vec<u32> {
        let mut dead = Vec::new();
        for list in [&mut self.active, &mut self.kicked] {
            list.retain(|c| {
                let alive = now.saturating_duration_since(c.last_update) <= dead_after;
                if !alive {
                    dead.push(c.client_id);
                }
                alive
            });
        }
        dead
    }

    pub(super) fn max_active_rtt(&self) -> u64 {
        self.active.iter().map(|c| c.rtt_ms).max().unwrap_or(0)
    }
}

/// A client in `list` with this id whose packets come from the address it joined from (the
/// IP must match; the port may differ behind a NAT that rebinds).
pub(super) fn find(list: &[Member], client_id: u32, from: SocketAddr) -> Option<usize> {
    list.iter()
        .position(|c| c.client_id == client_id && c.addr.ip() == from.ip())
}
