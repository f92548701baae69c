//! Writing a download in order to a stream (stdout). A client may join a multicast cycle
//! anywhere, so blocks can arrive far ahead of the next one to write: early blocks wait in
//! memory up to a limit and beyond it in an unnamed temporary spill file; each block is
//! released to the transport as soon as it is stored, so the transport's cache never fills up
//! with blocks that wait for a gap it would then have no room to deliver.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;

use sha2::{Digest, Sha256};

use super::DownloadError;
use crate::sys::file::{read_exact_at, write_all_at};

pub(super) struct InOrder<W: Write> {
    out: W,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: u64,
    memory_limit: u64,
    /// Removed by the system when closed (or when the process dies).
    spill: Option<File>,
    /// Offset -> length of blocks stored in the spill file (at their own offset).
    spilled: BTreeMap<u64, u64>,
    next: u64,
    expected: Option<u64>,
    hasher: Sha256,
}

impl<W: Write> InOrder<W> {
    pub(super) fn new(out: W, memory_limit: u64) -> InOrder<W> {
        InOrder {
            out,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            memory_limit,
            spill: None,
            spilled: BTreeMap::new(),
            next: 0,
            expected: None,
            hasher: Sha256::new(),
        }
    }

    /// The object's size, once the session announced it.
    pub(super) fn expect(&mut self, size: u64) {
        self.expected = Some(size);
    }

    /// Stores or writes one run and releases it (`complete(offset, len)`) once it is stored.
    pub(super) fn accept(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        complete: &mut dyn FnMut(u64, u64),
    ) -> Result<(), DownloadError> {
        let len = bytes.len() as u64;
        if offset > self.next {
            let known = self.pending.contains_key(&offset) || self.spilled.contains_key(&offset);
            if !known {
                if self.pending_bytes + len <= self.memory_limit {
                    self.pending_bytes += len;
                    self.pending.insert(offset, bytes);
                } else {
                    self.spill_block(offset, &bytes)?;
                }
            }
            complete(offset, len);
            return Ok(());
        }
        self.emit(offset, &bytes)?;
        complete(offset, len);
        self.drain()
    }

    fn spill_block(&mut self, offset: u64, bytes: &[u8]) -> Result<(), DownloadError> {
        let spill_error = |error| DownloadError::Spill {
            folder: std::env::temp_dir(),
            error,
        };
        if self.spill.is_none() {
            self.spill = Some(tempfile::tempfile().map_err(spill_error)?);
        }
        if let Some(spill) = &self.spill {
            write_all_at(spill, bytes, offset).map_err(spill_error)?;
        }
        self.spilled.insert(offset, bytes.len() as u64);
        Ok(())
    }

    /// Writes every stored block that has become next in line.
    fn drain(&mut self) -> Result<(), DownloadError> {
        loop {
            if let Some(entry) = self.pending.first_entry() {
                if *entry.key() <= self.next {
                    let (start, block) = entry.remove_entry();
                    self.pending_bytes -= block.len() as u64;
                    self.emit(start, &block)?;
                    continue;
                }
            }
            let ready = self
                .spilled
                .first_key_value()
                .map(|(start, len)| (*start, *len));
            match (ready, &self.spill) {
                (Some((start, len)), Some(spill)) if start <= self.next => {
                    self.spilled.remove(&start);
                    let mut block = vec![0u8; len as usize];
                    read_exact_at(spill, &mut block, start).map_err(|error| {
                        DownloadError::Spill {
                            folder: std::env::temp_dir(),
                            error,
                        }
                    })?;
                    self.emit(start, &block)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Writes the part of a block at `start` that lies beyond what was already written.
    fn emit(&mut self, start: u64, block: &[u8]) -> Result<(), DownloadError> {
        let end = start + block.len() as u64;
        if end <= self.next {
            return Ok(());
        }
        let fresh = &block[(self.next - start) as usize..];
        self.out
            .write_all(fresh)
            .map_err(|error| DownloadError::StreamWrite { error })?;
        self.hasher.update(fresh);
        self.next = end;
        Ok(())
    }

    /// Flushes the stream and checks that it is whole; returns its SHA-256.
    pub(super) fn finish(&mut self) -> Result<[u8; 32], DownloadError> {
        self.out
            .flush()
            .map_err(|error| DownloadError::StreamWrite { error })?;
        match self.expected {
            Some(size) if size != self.next => Err(DownloadError::ShortStream {
                at: self.next,
                size,
                waiting: self.pending.len() + self.spilled.len(),
            }),
            _ => Ok(self.hasher.clone().finalize().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` to an in-order stream as `block`-byte pieces in the given order and returns
    /// what was written and every completion.
    fn stream(
        data: &[u8],
        block: usize,
        order: &[usize],
        limit: u64,
    ) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut in_order = InOrder::new(Vec::new(), limit);
        in_order.expect(data.len() as u64);
        let mut completed = Vec::new();
        for &index in order {
            let start = index * block;
            let end = (start + block).min(data.len());
            in_order
                .accept(start as u64, data[start..end].to_vec(), &mut |o, l| {
                    completed.push((o, l))
                })
                .unwrap();
        }
        let streamed_hash = in_order.finish().unwrap();
        let expected_hash: [u8; 32] = Sha256::digest(data).into();
        assert_eq!(streamed_hash, expected_hash);
        assert_eq!(in_order.pending_bytes, 0);
        (in_order.out, completed)
    }

    #[test]
    fn in_order_stream_reorders_and_completes_every_block() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let blocks = data.len().div_ceil(1000);
        let mut order: Vec<usize> = (0..blocks).rev().collect();
        order.swap(0, 4);
        let (written, mut completed) = stream(&data, 1000, &order, 1 << 20);
        assert_eq!(written, data);
        completed.sort();
        let expected: Vec<(u64, u64)> = (0..blocks as u64).map(|b| (b * 1000, 1000)).collect();
        assert_eq!(completed, expected);
    }

    #[test]
    fn in_order_stream_ignores_duplicates() {
        let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let (written, completed) = stream(&data, 1000, &[2, 2, 0, 0, 1, 3, 1], 1 << 20);
        assert_eq!(written, data);
        assert_eq!(
            completed.len(),
            7,
            "every delivery is released exactly once"
        );
    }

    #[test]
    fn in_order_stream_spills_beyond_the_memory_limit() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut in_order = InOrder::new(Vec::new(), 3000);
        in_order.expect(data.len() as u64);
        let mut released = 0u64;
        // Arrives back to front, as after joining at the end of a cycle.
        for index in (0..50).rev() {
            let start = index * 1000;
            in_order
                .accept(
                    start as u64,
                    data[start..start + 1000].to_vec(),
                    &mut |_, l| released += l,
                )
                .unwrap();
            assert!(in_order.pending_bytes <= 3000, "memory above the limit");
        }
        assert_eq!(
            released,
            data.len() as u64,
            "every block released once stored"
        );
        in_order.finish().unwrap();
        assert_eq!(in_order.out, data);
        assert!(in_order.spilled.is_empty());
    }

    #[test]
    fn in_order_stream_reports_a_short_stream() {
        let mut in_order = InOrder::new(Vec::new(), 1 << 20);
        in_order.expect(2000);
        in_order.accept(0, vec![1; 1000], &mut |_, _| {}).unwrap();
        assert!(matches!(
            in_order.finish(),
            Err(DownloadError::ShortStream {
                at: 1000,
                size: 2000,
                ..
            })
        ));
    }
}
