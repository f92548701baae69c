//! The caller's side of a session: [`Session`] (start, wait, status, cancel, close) and the
//! cloneable [`SessionHandle`] the callback receives.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::driver;
use super::error::{Internal, OsError};
use super::shared::Shared;
use super::{Event, Request, Status, TransportError};

/// A running (or finished) download. Dropping it is the same as [`Session::close`].
pub struct Session {
    handle: SessionHandle,
}

/// A cloneable, thread-safe handle for completing receives and cancelling, from the callback
/// (which gets one with every event) or from other threads. Cancel stops working once the
/// session's [`Session`] is closed.
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<Shared>,
}

/// A [`SessionHandle::complete_receive`] that does not match what was delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    #[error("complete_receive of 0 bytes at offset {offset}; give the delivered length")]
    Empty { offset: u64 },
    #[error(
        "complete_receive of {len} bytes at offset {offset} reaches beyond the object's {size} bytes"
    )]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error(
        "complete_receive of {len} bytes at offset {offset}, but only {outstanding} delivered bytes are not yet completed"
    )]
    NotDelivered {
        offset: u64,
        len: u64,
        outstanding: u64,
    },
}

impl Session {
    /// Starts the session on its own thread and returns at once. Every outcome, including a
    /// failed initiation, arrives through `callback` as [`Event::SessionComplete`]; only a
    /// request that cannot be valid (an unsupported auth level, an empty server or name) fails
    /// here.
    pub fn start<F>(request: Request, callback: F) -> Result<Session, TransportError>
    where
        F: FnMut(&SessionHandle, Event<'_>) + Send + 'static,
    {
        super::initiation::validate(&request)?;
        let handle = SessionHandle {
            shared: Arc::new(Shared::new()),
        };
        let thread_handle = handle.clone();
        thread::Builder::new()
            .name("wdsmc-session".into())
            .spawn(move || driver::run_session(request, thread_handle, callback))
            .map_err(|e| TransportError::Internal(Internal::Thread(OsError::from(e))))?;
        Ok(Session { handle })
    }

    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    /// Asks the session to stop: LEAVE with reason CANCELLED, then SessionComplete(Cancelled).
    pub fn cancel(&self) {
        self.handle.cancel()
    }

    /// Waits until the session completes or `timeout` passes (`None`: no limit). Returns the
    /// final status, or `None` if it is still in progress.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Status> {
        let shared = &self.handle.shared;
        let guard = shared.status();
        let in_progress = |s: &mut Status| *s == Status::InProgress;
        let guard = match timeout {
            None => shared
                .completed()
                .wait_while(guard, in_progress)
                .unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                shared
                    .completed()
                    .wait_timeout_while(guard, t, in_progress)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        (*guard != Status::InProgress).then(|| guard.clone())
    }

    pub fn status(&self) -> Status {
        self.handle.shared.status().clone()
    }

    /// Releases the handle. A transfer still running is not cancelled: it goes on to its end
    /// and its callbacks keep arriving. Cancel through any [`SessionHandle`] stops working.
    pub fn close(self) {
        drop(self)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.handle.shared.close();
    }
}

impl SessionHandle {
    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Releases `len` delivered bytes starting at `offset` from the cache: one call per
    /// [`Event::ReceiveContents`], or one for a run of contiguous deliveries. A call that
    /// releases more than was delivered, or reaches beyond the object, is refused and changes
    /// nothing.
    pub fn complete_receive(&self, offset: u64, len: u64) -> Result<(), CompleteError> {
        if len == 0 {
            return Err(CompleteError::Empty { offset });
        }
        let size = self.shared.content_size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(CompleteError::OutOfRange { offset, len, size });
        }
        self.shared
            .release(len)
            .map_err(|outstanding| CompleteError::NotDelivered {
                offset,
                len,
                outstanding,
            })
    }

    /// Cancels the transfer (no effect once the session's handle is closed).
    pub fn cancel(&self) {
        self.shared.request_cancel(false);
    }

    /// Cancels because the consumer cannot go on (for example a failed write); the session
    /// completes with [`TransportError::Aborted`].
    pub fn abort(&self) {
        self.shared.request_cancel(true);
    }
}
