//! Joins blocks that arrive back to back into one run, so the data path makes one write (or
//! one hand-off to the writer thread) per run instead of per block, without allocating per
//! block.

/// Largest run handed on at once: large enough that a fast stream costs one write per MiB
/// instead of per block, small against the cache, which the held bytes still count against
/// until they are written.
pub(super) fn coalesce_limit(cache_size: u64) -> usize {
    (cache_size / 8).clamp(64 * 1024, 1 << 20) as usize
}

pub(super) struct Coalescer {
    offset: u64,
    buf: Vec<u8>,
    /// A written run's buffer, waiting to hold the next run: a gap (every block of a repair
    /// round) hands the current buffer out before the written one comes back.
    spare: Vec<u8>,
    limit: usize,
}

impl Coalescer {
    pub(super) fn new(limit: usize) -> Coalescer {
        Coalescer {
            offset: 0,
            buf: Vec::new(),
            spare: Vec::new(),
            limit,
        }
    }

    /// Adds a delivered block; returns a finished run to write, if one is ready.
    pub(super) fn push(&mut self, offset: u64, data: &[u8]) -> Option<(u64, Vec<u8>)> {
        let contiguous = self.offset + self.buf.len() as u64 == offset;
        let ready =
            if !self.buf.is_empty() && (!contiguous || self.buf.len() + data.len() > self.limit) {
                self.take()
            } else {
                None
            };
        if self.buf.is_empty() {
            self.offset = offset;
            if self.buf.capacity() == 0 {
                self.buf = std::mem::take(&mut self.spare);
            }
            self.buf.reserve_exact(self.limit.max(data.len()));
        }
        self.buf.extend_from_slice(data);
        if ready.is_none() && self.buf.len() >= self.limit {
            return self.take();
        }
        ready
    }

    /// Takes back a written run's buffer, so steady streaming does not allocate.
    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() >= self.limit {
            buf.clear();
            if self.buf.capacity() == 0 {
                self.buf = buf;
            } else {
                self.spare = buf;
            }
        }
    }

    /// The run held so far, if any.
    pub(super) fn take(&mut self) -> Option<(u64, Vec<u8>)> {
        (!self.buf.is_empty()).then(|| (self.offset, std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescer_joins_contiguous_blocks_and_splits_at_gaps_and_limit() {
        let mut run = Coalescer::new(10);
        assert_eq!(run.push(0, &[1; 4]), None);
        assert_eq!(run.push(4, &[2; 4]), None);
        // A gap ends the run: the held 8 bytes come out, the new block starts the next run.
        assert_eq!(run.push(20, &[3; 4]), Some((0, [[1; 4], [2; 4]].concat())));
        assert_eq!(run.push(24, &[4; 4]), None);
        // Would exceed the limit: the run so far comes out first.
        assert_eq!(run.push(28, &[5; 4]), Some((20, [[3; 4], [4; 4]].concat())));
        // Reaching the limit exactly hands the run over at once.
        assert_eq!(
            run.push(32, &[6; 6]),
            Some((28, [&[5u8; 4][..], &[6; 6]].concat()))
        );
        assert_eq!(run.take(), None);
        assert_eq!(run.push(0, &[7; 3]), None);
        assert_eq!(run.take(), Some((0, vec![7; 3])));
    }

    #[test]
    fn coalescer_reuses_two_buffers_when_every_block_is_a_gap() {
        let mut run = Coalescer::new(16);
        // Repair-round shape: no block follows the previous one; each finished run is written
        // and recycled, as the direct file writes do. The written buffer must be kept (as the
        // spare) and become the next run's buffer, not be dropped while a new one is allocated.
        let mut previous: Option<usize> = None;
        for i in 0..20u64 {
            if let Some((offset, bytes)) = run.push(i * 100, &[i as u8; 8]) {
                assert_eq!(
                    (offset, bytes.as_slice()),
                    ((i - 1) * 100, &[(i - 1) as u8; 8][..])
                );
                let written = bytes.as_ptr() as usize;
                run.recycle(bytes);
                assert_eq!(run.spare.as_ptr() as usize, written, "written buffer kept");
                if let Some(spare) = previous {
                    assert_eq!(
                        run.buf.as_ptr() as usize,
                        spare,
                        "the spare holds the next run"
                    );
                }
                previous = Some(written);
            }
        }
    }
}
