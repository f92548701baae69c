//! LEAVEs waiting for their §3.2.5.4.3 delay. Each keeps the session it belongs to, so a
//! demoted client can leave the old session while it joins the new one.

use std::net::SocketAddr;
use std::time::Instant;

use super::ClientOutcome;
use crate::wire::mt::LeaveReason;

/// LEAVEs of demoted sessions still waiting for their delay.
const MAX_PENDING_LEAVES: usize = 8;

#[derive(Debug, Clone)]
pub(super) struct PendingLeave {
    pub at: Instant,
    pub session_id: u32,
    pub client_id: u32,
    pub server: SocketAddr,
    pub reason: LeaveReason,
    /// The session ends when this LEAVE goes out.
    pub then_finish: Option<ClientOutcome>,
}

#[derive(Debug, Default)]
pub(super) struct LeaveQueue {
    pending: Vec<PendingLeave>,
}

impl LeaveQueue {
    /// Queues `leave`. When the queue is full (repeated DEMOTEs) the oldest is returned, to be
    /// sent at once rather than forgotten.
    pub(super) fn push(&mut self, leave: PendingLeave) -> Option<PendingLeave> {
        let evicted = (self.pending.len() >= MAX_PENDING_LEAVES).then(|| self.pending.remove(0));
        self.pending.push(leave);
        evicted
    }

    /// Takes the oldest LEAVE whose delay has run out at `now`.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<PendingLeave> {
        let index = self.pending.iter().position(|l| l.at <= now)?;
        Some(self.pending.remove(index))
    }

    /// Takes every LEAVE, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<PendingLeave> {
        std::mem::take(&mut self.pending)
    }

    /// When the next LEAVE is due.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.pending.iter().map(|l| l.at).min()
    }
}
