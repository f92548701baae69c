//! The state a session's handles and its driver thread share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::{Status, TransportError};

pub(super) struct Shared {
    status: Mutex<Status>,
    completed: Condvar,
    cancel_requested: AtomicBool,
    /// Set with `cancel_requested` when the consumer aborts: the outcome is then
    /// [`TransportError::Aborted`].
    aborted: AtomicBool,
    /// The caller's handle is closed: cancel no longer works.
    closed: AtomicBool,
    /// Bytes delivered and not yet completed. The driver adds a delivery's bytes before the
    /// callback sees it, so a completion inside the callback finds them.
    outstanding: AtomicU64,
    /// Bytes completed since the driver last looked.
    released: AtomicU64,
    /// The object's size once initiation is done (0 before).
    content_size: AtomicU64,
}

impl Shared {
    pub(super) fn new() -> Shared {
        Shared {
            status: Mutex::new(Status::InProgress),
            completed: Condvar::new(),
            cancel_requested: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            outstanding: AtomicU64::new(0),
            released: AtomicU64::new(0),
            content_size: AtomicU64::new(0),
        }
    }

    pub(super) fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn completed(&self) -> &Condvar {
        &self.completed
    }

    /// Records the final status (first one wins) and wakes every waiter.
    pub(super) fn finish(&self, status: Status) {
        let mut slot = self.status();
        if *slot == Status::InProgress {
            *slot = status;
        }
        drop(slot);
        self.completed.notify_all();
    }

    pub(super) fn request_cancel(&self, abort: bool) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        if abort {
            self.aborted.store(true, Ordering::SeqCst);
        }
        self.cancel_requested.store(true, Ordering::SeqCst);
    }

    pub(super) fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::SeqCst)
    }

    /// What a cancelled session ends with.
    pub(super) fn cancel_outcome(&self) -> TransportError {
        if self.aborted.load(Ordering::SeqCst) {
            TransportError::Aborted
        } else {
            TransportError::Cancelled
        }
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(super) fn set_content_size(&self, size: u64) {
        self.content_size.store(size, Ordering::SeqCst);
    }

    pub(super) fn content_size(&self) -> u64 {
        self.content_size.load(Ordering::SeqCst)
    }

    /// Counts bytes handed to the consumer.
    pub(super) fn delivered(&self, len: u64) {
        self.outstanding.fetch_add(len, Ordering::SeqCst);
    }

    /// Moves `len` bytes from outstanding to released; `Err(outstanding)` if fewer are
    /// outstanding.
    pub(super) fn release(&self, len: u64) -> Result<(), u64> {
        self.outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_sub(len)
            })?;
        self.released.fetch_add(len, Ordering::SeqCst);
        Ok(())
    }

    /// Bytes completed since the last call.
    pub(super) fn take_released(&self) -> u64 {
        self.released.swap(0, Ordering::SeqCst)
    }
}
