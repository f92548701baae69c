//! The MS-WDSMA client's MissingBlocksBitmap (§3.2.1): one bit per 1-based block, set once
//! the block has been delivered.

use crate::wire::ma::BlockRange;

/// Largest TotalBlocks the client accepts (the bitmap is then 512 MiB); session initiation
/// refuses larger sessions with the same limit.
pub use crate::wire::ma::MAX_TOTAL_BLOCKS;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockBitmap {
    total: u64,
    received: u64,
    words: Vec<u64>,
}

/// Why a bitmap could not be built for a session description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitmapError {
    #[error(
        "TotalBlocks {total_blocks} does not match ContentSize {content_size} with BlockSize {block_size}; the server's session description is inconsistent"
    )]
    Inconsistent {
        content_size: u64,
        block_size: u32,
        total_blocks: u64,
    },
    #[error(
        "TotalBlocks {0} exceeds the supported maximum of {MAX_TOTAL_BLOCKS}; use a larger block size"
    )]
    TooLarge(u64),
    #[error("could not allocate a bitmap for {0} blocks")]
    OutOfMemory(u64),
}

impl BlockBitmap {
    /// A bitmap with every block missing, after checking that the sizes agree
    /// (TotalBlocks = ceil(ContentSize / BlockSize)).
    pub fn for_content(
        content_size: u64,
        block_size: u32,
        total_blocks: u64,
    ) -> Result<Self, BitmapError> {
        let inconsistent = BitmapError::Inconsistent {
            content_size,
            block_size,
            total_blocks,
        };
        let expected = if block_size == 0 {
            if content_size != 0 {
                return Err(inconsistent);
            }
            0
        } else {
            content_size.div_ceil(u64::from(block_size))
        };
        if expected != total_blocks {
            return Err(inconsistent);
        }
        if total_blocks > MAX_TOTAL_BLOCKS {
            return Err(BitmapError::TooLarge(total_blocks));
        }
        let word_count = total_blocks.div_ceil(64) as usize;
        // Probe that the address space exists, then take it zeroed from the allocator
        // (calloc/mmap): pages stay untouched until blocks arrive, so a server that announces
        // a huge session cannot make the client commit the whole bitmap up front.
        let mut probe: Vec<u64> = Vec::new();
        probe
            .try_reserve_exact(word_count)
            .map_err(|_| BitmapError::OutOfMemory(total_blocks))?;
        drop(probe);
        let words = vec![0u64; word_count];
        Ok(Self {
            total: total_blocks,
            received: 0,
            words,
        })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn received_count(&self) -> u64 {
        self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.total
    }

    /// Whether `block` (1-based) is a block of this content.
    pub fn contains(&self, block: u64) -> bool {
        block >= 1 && block <= self.total
    }

    pub fn is_set(&self, block: u64) -> bool {
        if !self.contains(block) {
            return false;
        }
        let index = block - 1;
        self.words[(index / 64) as usize] & (1 << (index % 64)) != 0
    }

    /// Marks `block` received; false when it already was or is out of range.
    pub fn set(&mut self, block: u64) -> bool {
        if !self.contains(block) || self.is_set(block) {
            return false;
        }
        let index = block - 1;
        self.words[(index / 64) as usize] |= 1 << (index % 64);
        self.received += 1;
        true
    }

    /// Percentage of blocks received, 0..=100 (100 for empty content). MS-WDSMA §3.2.5.3 says
    /// "bits set to zero", but a progress figure means received (README.md#pn-client-progress).
    pub fn percent_received(&self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        (u128::from(self.received) * 100 / u128::from(self.total)) as u8
    }

    /// The first `max` ranges of missing blocks, lowest first.
    pub fn missing_ranges(&self, max: usize) -> Vec<BlockRange> {
        let mut ranges = Vec::new();
        let mut block = 1u64;
        while ranges.len() < max && block <= self.total {
            let Some(start) = self.next_with(block, false) else {
                break;
            };
            let end = self.next_with(start, true).map_or(self.total, |b| b - 1);
            ranges.push(BlockRange { start, end });
            block = end.saturating_add(1);
            if end == self.total {
                break;
            }
        }
        ranges
    }

    /// The first block at or after `from` whose bit equals `set`, skipping whole words.
    fn next_with(&self, from: u64, set: bool) -> Option<u64> {
        let mut index = from.checked_sub(1)?;
        while index < self.total {
            let word_at = (index / 64) as usize;
            let word = if set {
                self.words[word_at]
            } else {
                !self.words[word_at]
            };
            let masked = word & (u64::MAX << (index % 64));
            if masked != 0 {
                let found = (word_at as u64) * 64 + u64::from(masked.trailing_zeros());
                return (found < self.total).then_some(found + 1);
            }
            index = (word_at as u64 + 1) * 64;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br(start: u64, end: u64) -> BlockRange {
        BlockRange { start, end }
    }

    #[test]
    fn sizes_must_agree() {
        assert!(BlockBitmap::for_content(10, 4, 3).is_ok());
        assert!(BlockBitmap::for_content(12, 4, 3).is_ok());
        assert!(BlockBitmap::for_content(0, 4, 0).is_ok());
        assert!(BlockBitmap::for_content(0, 0, 0).is_ok());
        assert!(matches!(
            BlockBitmap::for_content(13, 4, 3),
            Err(BitmapError::Inconsistent { .. })
        ));
        assert!(matches!(
            BlockBitmap::for_content(5, 0, 1),
            Err(BitmapError::Inconsistent { .. })
        ));
        assert_eq!(
            BlockBitmap::for_content(u64::MAX, 1, u64::MAX),
            Err(BitmapError::TooLarge(u64::MAX))
        );
    }

    #[test]
    fn set_counts_once_and_rejects_out_of_range() {
        let mut b = BlockBitmap::for_content(1000, 10, 100).unwrap();
        assert!(!b.set(0));
        assert!(!b.set(101));
        assert!(b.set(1));
        assert!(!b.set(1));
        assert!(b.set(100));
        assert_eq!(b.received_count(), 2);
        assert_eq!(b.percent_received(), 2);
        assert!(b.is_set(100) && !b.is_set(99));
    }

    #[test]
    fn missing_ranges_walk_the_gaps() {
        let mut b = BlockBitmap::for_content(200, 1, 200).unwrap();
        assert_eq!(b.missing_ranges(64), vec![br(1, 200)]);
        for block in (1..=64).chain(66..=130).chain([199]) {
            b.set(block);
        }
        assert_eq!(
            b.missing_ranges(64),
            vec![br(65, 65), br(131, 198), br(200, 200)]
        );
        assert_eq!(b.missing_ranges(2), vec![br(65, 65), br(131, 198)]);
        for block in 1..=200 {
            b.set(block);
        }
        assert!(b.is_complete());
        assert_eq!(b.percent_received(), 100);
        assert!(b.missing_ranges(64).is_empty());
    }
}
