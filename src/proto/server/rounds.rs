//! MS-WDSMA server rounds (§3.1): query rounds (a POLL with SRVCIR, the CNTCIRs that answer
//! it, the 30-second rule, merged missing ranges) and data rounds, whose blocks go to the
//! transport one at a time as the window allows (README.md#pn-server-lazy-blocks).

use crate::wire::ma::{BlockRange, CntCir};

/// CNTCIRs from clients that joined more than this after the oldest one are left for the next
/// round (MS-WDSMA §3.1.6.1).
const LATE_JOIN_SECS: u32 = 30;
/// Unanswered query rounds repeated at once before the server falls back to the idle
/// interval (three lost POLLs in a row are rare even at 5 % loss;
/// README.md#pn-server-query-rounds).
const MAX_QUICK_REQUERIES: u32 = 3;

#[derive(Debug)]
enum MaState {
    /// Before the transport first reaches DataState.
    NotStarted,
    /// A POLL is out; CNTCIRs are collected until the Query Timer.
    Query,
    Data {
        ranges: Vec<BlockRange>,
        index: usize,
        next_block: u64,
    },
    /// Waiting before the next query round.
    Idle,
}

/// What the Query Timer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueryOutcome {
    /// Nobody answered, but clients are active: poll again at once.
    Requery,
    /// Nobody needs data (or nobody answered for a while): idle before the next round.
    Idle,
    /// A data round over this many blocks.
    Round { missing_blocks: u64 },
}

#[derive(Debug)]
pub(super) struct Rounds {
    state: MaState,
    next_poll_seq: u64,
    /// Query rounds in a row that nobody answered.
    unanswered: u32,
    cntcirs: Vec<(u32, CntCir)>,
    total_blocks: u64,
}

impl Rounds {
    pub(super) fn new(total_blocks: u64) -> Self {
        Self {
            state: MaState::NotStarted,
            next_poll_seq: 1,
            unanswered: 0,
            cntcirs: Vec::new(),
            total_blocks,
        }
    }

    pub(super) fn started(&self) -> bool {
        !matches!(self.state, MaState::NotStarted)
    }

    pub(super) fn is_querying(&self) -> bool {
        matches!(self.state, MaState::Query)
    }

    pub(super) fn is_idle(&self) -> bool {
        matches!(self.state, MaState::Idle)
    }

    /// A new query round: returns the POLL's sequence number.
    pub(super) fn start_query(&mut self) -> u64 {
        self.cntcirs.clear();
        self.state = MaState::Query;
        self.next_poll_seq += 1;
        self.next_poll_seq - 1
    }

    pub(super) fn go_idle(&mut self) {
        self.state = MaState::Idle;
    }

    /// Whether a POLLACK answers the last POLL sent.
    pub(super) fn answers_last_poll(&self, poll_seq_no: u64) -> bool {
        poll_seq_no.checked_add(1) == Some(self.next_poll_seq)
    }

    /// Keeps a client's CNTCIR for this query round (a later one replaces it).
    pub(super) fn record(&mut self, client_id: u32, cntcir: CntCir) {
        if self.is_querying() {
            self.forget(client_id);
            self.cntcirs.push((client_id, cntcir));
        }
    }

    /// Drops what a departed client answered.
    pub(super) fn forget(&mut self, client_id: u32) {
        self.cntcirs.retain(|(id, _)| *id != client_id);
    }

    /// Query Timer (§3.1.6.1): keep CNTCIRs of clients that joined within 30 s of the oldest
    /// one, merge their missing ranges and start a data round.
    pub(super) fn on_query_timer(&mut self, any_active: bool) -> QueryOutcome {
        let Some(oldest) = self.cntcirs.iter().map(|(_, c)| c.time_in_session).max() else {
            // Nobody answered. With active clients the POLL (multicast) or the answers were
            // probably lost: ask again at once, as §3.1.6.1 says (waiting the idle interval
            // cost a lossy link's first round over a second). After a few silent rounds in a
            // row, or in an empty session, idle instead of polling five times a second.
            self.unanswered += 1;
            if !any_active || self.unanswered > MAX_QUICK_REQUERIES {
                return QueryOutcome::Idle;
            }
            return QueryOutcome::Requery;
        };
        let total = self.total_blocks;
        let mut ranges: Vec<BlockRange> = self
            .cntcirs
            .iter()
            .filter(|(_, c)| c.time_in_session.saturating_add(LATE_JOIN_SECS) >= oldest)
            .flat_map(|(_, c)| c.ranges.iter().copied())
            .filter(|r| r.start >= 1 && r.start <= r.end && r.start <= total)
            .map(|r| BlockRange {
                start: r.start,
                end: r.end.min(total),
            })
            .collect();
        self.cntcirs.clear();
        self.unanswered = 0;
        let merged = merge_ranges(&mut ranges);
        let missing_blocks: u64 = merged.iter().map(|r| r.end - r.start + 1).sum();
        let Some(first) = merged.first() else {
            // Nobody needs data: stay idle but keep asking now and then.
            return QueryOutcome::Idle;
        };
        self.state = MaState::Data {
            next_block: first.start,
            ranges: merged,
            index: 0,
        };
        QueryOutcome::Round { missing_blocks }
    }

    /// The block the data round hands out next.
    pub(super) fn next_block(&self) -> Option<u64> {
        match &self.state {
            MaState::Data {
                ranges,
                index,
                next_block,
            } if *index < ranges.len() => Some(*next_block),
            _ => None,
        }
    }

    /// The block [`Self::next_block`] named went out.
    pub(super) fn advance(&mut self) {
        if let MaState::Data {
            ranges,
            index,
            next_block,
        } = &mut self.state
            && let Some(range) = ranges.get(*index)
        {
            if *next_block >= range.end {
                *index += 1;
                if let Some(next) = ranges.get(*index) {
                    *next_block = next.start;
                }
            } else {
                *next_block += 1;
            }
        }
    }

    /// Every block of the data round has been handed out.
    pub(super) fn handed_out(&self) -> bool {
        matches!(&self.state, MaState::Data { ranges, index, .. } if *index >= ranges.len())
    }
}

/// Sorts and merges inclusive ranges into a non-overlapping, non-adjacent list.
pub(crate) fn merge_ranges(ranges: &mut [BlockRange]) -> Vec<BlockRange> {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<BlockRange> = Vec::with_capacity(ranges.len());
    for range in ranges.iter() {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(*range),
        }
    }
    merged
}
