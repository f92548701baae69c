//! Rolling writeback of a file output: every written run is handed to the device at once, and
//! once more than [`WRITEBACK_WINDOW`] bytes are on their way the oldest run is waited for.
//! Dirty pages stay bounded, so the final sync has only the last window left to write (the
//! time from the last block to a finished download stays short), and a disk slower than the
//! network holds the receive loop back instead of piling the object up in memory first.

use std::collections::VecDeque;
use std::fs::File;

use crate::sys::file::{start_writeback, wait_writeback};

/// Bytes handed to the device but not yet waited for: several MiB-sized runs, so the device
/// always has work queued while the oldest is awaited.
pub(super) const WRITEBACK_WINDOW: u64 = 32 << 20;

pub(super) struct Writeback {
    in_flight: VecDeque<(u64, u64)>,
    bytes: u64,
    window: u64,
    /// Off after the first refusal (a filesystem or platform without it): the final sync
    /// still makes the file durable, and reports any write error.
    enabled: bool,
}

impl Writeback {
    pub(super) fn new(window: u64) -> Writeback {
        Writeback {
            in_flight: VecDeque::new(),
            bytes: 0,
            window,
            enabled: true,
        }
    }

    /// Called after `len` bytes were written at `offset`.
    pub(super) fn written(&mut self, file: &File, offset: u64, len: u64) {
        if !self.enabled || len == 0 {
            return;
        }
        if start_writeback(file, offset, len).is_err() {
            self.enabled = false;
            return;
        }
        self.in_flight.push_back((offset, len));
        self.bytes += len;
        while self.bytes > self.window {
            let Some((offset, len)) = self.in_flight.pop_front() else {
                break;
            };
            self.bytes -= len;
            if wait_writeback(file, offset, len).is_err() {
                self.enabled = false;
                return;
            }
        }
    }

    #[cfg(test)]
    fn in_flight_bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::file::write_all_at;

    #[test]
    fn at_most_a_window_is_in_flight_and_the_bytes_land() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("out"))
            .unwrap();
        let mut writeback = Writeback::new(3 << 16);
        let run = vec![0xA5u8; 1 << 16];
        // Out of order, as repair rounds write.
        for index in [3u64, 0, 7, 1, 2, 6, 5, 4] {
            write_all_at(&file, &run, index << 16).unwrap();
            writeback.written(&file, index << 16, run.len() as u64);
            assert!(writeback.in_flight_bytes() <= 3 << 16);
        }
        assert_eq!(
            std::fs::read(dir.path().join("out")).unwrap(),
            vec![0xA5u8; 8 << 16]
        );
    }
}
