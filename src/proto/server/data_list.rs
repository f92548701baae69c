//! The Data Packet List (MS-WDSMT §3.1.1.3, §3.1.6.7) and repair (§3.1.5.9.6): what was sent
//! and stays retransmittable, MCTrail and MCLead, the RDATA queue NACKs fill, and the cleanup
//! that drops what the master has acknowledged.
//!
//! An entry holds only (sequence number, block, times): the block is re-read from the source
//! on every (re)send, so the list costs 48 bytes an entry whatever the block size.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::wire::mt::SeqRange;

/// Acknowledged packets stay retransmittable at least this long (§3.1.6.7).
const CLEANUP_MIN_AGE: Duration = Duration::from_millis(1000);
/// Hard cap on the Data Packet List; new ODATA waits while it is full. Entries must stay at
/// least [`CLEANUP_MIN_AGE`] (and cleanup runs every 200 ms), so the cap bounds the rate:
/// 2^18 entries of 8 KiB blocks allow about 1.7 GB/s, at 48 bytes an entry (12 MiB) when full
/// (README.md#pn-server-data-packet-list).
const MAX_DATA_PACKET_LIST: usize = 1 << 18;
/// Work caps per NACK and on the RDATA queue.
const MAX_RDATA_PER_NACK: u64 = 1024;
const MAX_RDATA_QUEUE: usize = 4096;

/// One Data Packet List entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataEntry {
    pub seq: u64,
    pub block_number: u64,
    created: Instant,
    last_send: Instant,
}

#[derive(Debug)]
pub(super) struct DataPacketList {
    entries: VecDeque<DataEntry>,
    /// Sequence numbers NACKs asked for, oldest first.
    repairs: VecDeque<u64>,
    next_seq: u64,
    /// MCTrail: the master's cumulative ACK.
    pub mc_trail: u64,
    /// MCLead: the highest sequence number sent.
    pub mc_lead: u64,
}

impl DataPacketList {
    pub(super) fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            repairs: VecDeque::new(),
            next_seq: 1,
            mc_trail: 0,
            mc_lead: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= MAX_DATA_PACKET_LIST
    }

    /// Lowest retransmittable sequence number; MCLead when the list is empty, so that a
    /// client's highest-continuous ACK stays inside [MCTrail, MCLead]
    /// (README.md#pn-server-empty-trail).
    pub(super) fn trail(&self) -> u64 {
        self.entries.front().map_or(self.mc_lead, |e| e.seq)
    }

    /// The next ODATA's sequence number and its TrailODATASeqNo (the new entry becomes the
    /// list head when the list is empty).
    pub(super) fn next_odata(&self) -> (u64, u64) {
        let seq = self.next_seq;
        (seq, self.entries.front().map_or(seq, |e| e.seq))
    }

    /// ODATA `seq` (from [`Self::next_odata`]) carrying `block_number` went out at `now`.
    pub(super) fn push_odata(&mut self, now: Instant, seq: u64, block_number: u64) {
        self.next_seq += 1;
        self.mc_lead = seq;
        self.entries.push_back(DataEntry {
            seq,
            block_number,
            created: now,
            last_send: now,
        });
    }

    /// Queues RDATA for the listed ranges (already checked to lie in [1, MCLead]), skipping
    /// what was sent within `suppress`, at most [`MAX_RDATA_PER_NACK`] packets.
    pub(super) fn queue_repairs(&mut self, now: Instant, ranges: &[SeqRange], suppress: Duration) {
        let mut budget = MAX_RDATA_PER_NACK;
        for range in ranges {
            let Some(head) = self.entries.front().map(|e| e.seq) else {
                break;
            };
            let mut seq = range.start.max(head);
            while seq <= range.end && budget > 0 {
                let offset = (seq - head) as usize;
                let Some(entry) = self.entries.get_mut(offset) else {
                    break;
                };
                if now.saturating_duration_since(entry.last_send) >= suppress
                    && self.repairs.len() < MAX_RDATA_QUEUE
                {
                    entry.last_send = now;
                    self.repairs.push_back(seq);
                    budget -= 1;
                }
                seq += 1;
            }
        }
    }

    pub(super) fn has_repairs(&self) -> bool {
        !self.repairs.is_empty()
    }

    pub(super) fn clear_repairs(&mut self) {
        self.repairs.clear();
    }

    /// The entry the oldest queued repair names, still in the list; repairs of purged entries
    /// are dropped on the way. It stays queued until [`Self::repair_sent`].
    pub(super) fn next_repair(&mut self) -> Option<DataEntry> {
        while let Some(&seq) = self.repairs.front() {
            let Some(head) = self.entries.front().map(|e| e.seq) else {
                self.repairs.clear();
                return None;
            };
            let entry = seq
                .checked_sub(head)
                .and_then(|offset| self.entries.get(offset as usize))
                .copied();
            match entry {
                Some(entry) => return Some(entry),
                None => {
                    self.repairs.pop_front();
                }
            }
        }
        None
    }

    /// The repair [`Self::next_repair`] returned went out.
    pub(super) fn repair_sent(&mut self) {
        self.repairs.pop_front();
    }

    /// Cleanup Data List (§3.1.6.7): drops acknowledged packets older than a second; true
    /// when any went (the trail moved, which the next SPM announces).
    pub(super) fn cleanup(&mut self, now: Instant) -> bool {
        let mut removed = false;
        while let Some(entry) = self.entries.front() {
            if entry.seq < self.mc_trail
                && now.saturating_duration_since(entry.created) >= CLEANUP_MIN_AGE
            {
                self.entries.pop_front();
                removed = true;
            } else {
                break;
            }
        }
        removed
    }
}
