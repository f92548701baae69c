//! The client's Missing ODATA List (MS-WDSMT §3.2.1.3, operations §3.2.1.3.1.1–4): the ODATA
//! sequence numbers between the server's trail and the highest one heard of that this client
//! has not received, kept as sorted, disjoint, inclusive ranges.
//!
//! The operations follow the specification step by step, with two guards the specification
//! lacks (README.md#pn-client-missing-list): Update End with a value equal to End is a no-op
//! (the literal text would append an inverted range), and the range list is capped at
//! [`MAX_RANGES`] so a hostile sender cannot make it grow without bound.

use crate::wire::mt::SeqRange;

/// Most ranges the list keeps. Ranges are only split by received packets, so a real session
/// stays far below this; when a split would exceed it the lowest (oldest) range is dropped
/// and no longer NACKed.
pub const MAX_RANGES: usize = 65_536;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissingOdataList {
    start: u64,
    end: u64,
    /// Sorted, disjoint, inclusive; never adjacent because only splits create new ranges.
    ranges: Vec<SeqRange>,
}

impl MissingOdataList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// §3.2.1.3.1.1 Update Start: forget everything below `new` (the server no longer keeps it).
    pub fn update_start(&mut self, new: u64) {
        if new < self.start {
            return;
        }
        // Ranges wholly below `new` go; a range containing `new` is cut to begin at `new`.
        let below = self.ranges.partition_point(|r| r.end < new);
        self.ranges.drain(..below);
        if let Some(first) = self.ranges.first_mut()
            && first.start < new
        {
            first.start = new;
        }
        self.start = new;
        if self.end < self.start {
            self.end = self.start;
        }
    }

    /// §3.2.1.3.1.2 Update End: everything after the old End up to `new` is presumed missing.
    pub fn update_end(&mut self, new: u64) {
        // `<=` rather than the spec's `<`: an equal value would append (End+1, End).
        if new <= self.end {
            return;
        }
        match self.ranges.last_mut() {
            Some(last) if last.end == self.end => last.end = new,
            _ => self.push_range(SeqRange {
                start: self.end + 1,
                end: new,
            }),
        }
        self.end = new;
    }

    /// §3.2.1.3.1.3 Received: `seq` is no longer missing.
    pub fn received(&mut self, seq: u64) {
        // The first range that could contain `seq`; the spec's linear walk stops at the same one.
        let at = self.ranges.partition_point(|r| r.end < seq);
        let Some(range) = self.ranges.get_mut(at) else {
            return;
        };
        if seq < range.start {
            return;
        }
        if range.start == range.end {
            self.ranges.remove(at);
        } else if seq == range.start {
            range.start += 1;
        } else if seq == range.end {
            range.end -= 1;
        } else {
            let upper = SeqRange {
                start: seq + 1,
                end: range.end,
            };
            range.end = seq - 1;
            self.ranges.insert(at + 1, upper);
            self.enforce_cap();
        }
    }

    /// §3.2.1.3.1.4 Highest continuous received: the last seq before the first gap.
    pub fn highest_continuous_received(&self) -> u64 {
        match self.ranges.first() {
            None => self.end,
            Some(first) => first.start.saturating_sub(1),
        }
    }

    fn push_range(&mut self, range: SeqRange) {
        self.ranges.push(range);
        self.enforce_cap();
    }

    fn enforce_cap(&mut self) {
        if self.ranges.len() > MAX_RANGES {
            let excess = self.ranges.len() - MAX_RANGES;
            self.ranges.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> SeqRange {
        SeqRange { start, end }
    }

    fn list(start: u64, end: u64, ranges: &[(u64, u64)]) -> MissingOdataList {
        MissingOdataList {
            start,
            end,
            ranges: ranges.iter().map(|&(s, e)| r(s, e)).collect(),
        }
    }

    #[test]
    fn update_start_below_start_is_noop() {
        let mut l = list(10, 20, &[(12, 14)]);
        l.update_start(9);
        assert_eq!(l, list(10, 20, &[(12, 14)]));
    }

    #[test]
    fn update_start_drops_ranges_below_and_cuts_the_one_containing_new() {
        let mut l = list(1, 30, &[(2, 3), (5, 9), (20, 25)]);
        l.update_start(7);
        assert_eq!(l, list(7, 30, &[(7, 9), (20, 25)]));
        // Falling in a gap: lower ranges go, the next range is untouched.
        l.update_start(15);
        assert_eq!(l, list(15, 30, &[(20, 25)]));
        // Past End: End follows Start and the list empties.
        l.update_start(40);
        assert_eq!(l, list(40, 40, &[]));
    }

    #[test]
    fn update_end_extends_the_last_range_or_appends() {
        let mut l = MissingOdataList::new();
        l.update_end(5);
        assert_eq!(l, list(0, 5, &[(1, 5)]));
        // Last range ends at End: extend it.
        l.update_end(8);
        assert_eq!(l, list(0, 8, &[(1, 8)]));
        l.received(8);
        assert_eq!(l, list(0, 8, &[(1, 7)]));
        // Last range no longer ends at End: append (End+1, new).
        l.update_end(10);
        assert_eq!(l, list(0, 10, &[(1, 7), (9, 10)]));
        // Smaller or equal values change nothing.
        l.update_end(10);
        l.update_end(3);
        assert_eq!(l, list(0, 10, &[(1, 7), (9, 10)]));
    }

    #[test]
    fn received_deletes_shrinks_and_splits() {
        let mut l = list(0, 20, &[(2, 2), (4, 8), (10, 12)]);
        l.received(2); // single-element range deleted
        assert_eq!(l.ranges(), &[r(4, 8), r(10, 12)]);
        l.received(4); // start incremented
        assert_eq!(l.ranges(), &[r(5, 8), r(10, 12)]);
        l.received(8); // end decremented
        assert_eq!(l.ranges(), &[r(5, 7), r(10, 12)]);
        l.received(11); // split
        assert_eq!(l.ranges(), &[r(5, 7), r(10, 10), r(12, 12)]);
        l.received(9); // in a gap: nothing
        l.received(30); // beyond everything: nothing
        assert_eq!(l.ranges(), &[r(5, 7), r(10, 10), r(12, 12)]);
    }

    #[test]
    fn highest_continuous_received_is_end_or_before_first_gap() {
        assert_eq!(list(0, 9, &[]).highest_continuous_received(), 9);
        assert_eq!(list(0, 9, &[(4, 6)]).highest_continuous_received(), 3);
        assert_eq!(list(0, 9, &[(0, 6)]).highest_continuous_received(), 0);
    }

    #[test]
    fn a_huge_jump_is_still_one_range() {
        let mut l = MissingOdataList::new();
        l.update_start(1);
        l.update_end(1 << 60);
        assert_eq!(l.ranges(), &[r(2, 1 << 60)]);
        l.update_end(u64::MAX);
        assert_eq!(l.ranges(), &[r(2, u64::MAX)]);
    }

    #[test]
    fn splits_beyond_the_cap_drop_the_oldest_range() {
        let mut l = MissingOdataList::new();
        l.update_end(3 * MAX_RANGES as u64);
        for k in 1..=(MAX_RANGES as u64 + 5) {
            l.received(2 * k);
        }
        assert_eq!(l.ranges().len(), MAX_RANGES);
        assert!(l.ranges().windows(2).all(|w| w[0].end < w[1].start));
    }
}
