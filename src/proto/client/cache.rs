//! The MS-WDSMA application cache (§3.2.1): which blocks have arrived (the bitmap), how many
//! delivered bytes the consumer still holds (CurrentAppCacheSize against MaxAppCacheSize),
//! and what the progress reports say.

use crate::proto::SessionParams;
use crate::proto::blocks::{BitmapError, BlockBitmap};
use crate::wire::ma::{BlockRange, DataBlock};

#[derive(Debug)]
pub(super) struct AppCache {
    bitmap: BlockBitmap,
    block_size: u32,
    content_size: u64,
    /// MaxAppCacheSize.
    limit: u64,
    /// CurrentAppCacheSize.
    held: u64,
}

/// A block the cache took: where it goes and how long it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    pub offset: u64,
    pub len: u64,
    /// It was the last missing block.
    pub complete: bool,
}

/// Why a block was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Not a block of this content, or not its length.
    Invalid,
    Duplicate,
    /// New, but the consumer's cache has no room for it.
    Full,
}

impl AppCache {
    /// Checks the session's sizes against each other and sizes the bitmap.
    pub(super) fn new(params: &SessionParams, limit: u64) -> Result<Self, BitmapError> {
        let bitmap =
            BlockBitmap::for_content(params.content_size, params.block_size, params.total_blocks)?;
        Ok(Self {
            bitmap,
            block_size: params.block_size,
            content_size: params.content_size,
            limit,
            held: 0,
        })
    }

    /// MA DATA Trigger (§3.2.5.1) with MT's cache check (§3.2.5.13): a new block of the right
    /// length is stored when the consumer's cache has room.
    pub(super) fn store(&mut self, block: &DataBlock<'_>) -> Result<Stored, Refused> {
        if !self.bitmap.contains(block.block_number) {
            return Err(Refused::Invalid);
        }
        let block_size = u64::from(self.block_size);
        let offset = (block.block_number - 1) * block_size;
        let len = (self.content_size - offset).min(block_size);
        if block.data.len() as u64 != len {
            return Err(Refused::Invalid);
        }
        if self.bitmap.is_set(block.block_number) {
            return Err(Refused::Duplicate);
        }
        if self.limit.saturating_sub(self.held) < len {
            return Err(Refused::Full);
        }
        self.bitmap.set(block.block_number);
        self.held += len;
        Ok(Stored {
            offset,
            len,
            complete: self.bitmap.is_complete(),
        })
    }

    /// MA Cache Done (§3.2.5.17): the consumer is finished with `bytes` delivered bytes.
    pub(super) fn release(&mut self, bytes: u64) {
        self.held = self.held.saturating_sub(bytes);
    }

    pub(super) fn is_complete(&self) -> bool {
        self.bitmap.is_complete()
    }

    /// The share of blocks received, for PROGRESS and CNTCIR (README.md#pn-client-progress).
    pub(super) fn percent_received(&self) -> u8 {
        self.bitmap.percent_received()
    }

    /// The first `max` missing block ranges (inclusive, 1-based).
    pub(super) fn missing_ranges(&self, max: usize) -> Vec<BlockRange> {
        self.bitmap.missing_ranges(max)
    }
}
