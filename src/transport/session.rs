//! Session threads: initiation, sockets, the receive loop and the handle.

use std::time::Duration;

use super::{Event, Request, SessionInfo, Status, TransportError};

/// A running (or finished) download. Dropping it is the same as [`Session::close`].
pub struct Session {
    _private: (),
}

/// A cloneable, thread-safe handle for completing receives and cancelling from other threads
/// (for example a writer thread). It stops working once the session's handle is closed.
#[derive(Clone)]
pub struct SessionHandle {
    _private: (),
}

/// Runs session initiation only (MS-WDSMSI over UDP) and returns what the server announced,
/// without joining. Used by `wdsmc info`.
pub fn initiate(request: &Request) -> Result<SessionInfo, TransportError> {
    let _ = request;
    todo!("transport::initiate")
}

impl Session {
    /// Starts the session on its own thread and returns at once. Every outcome, including a
    /// failed initiation, arrives through `callback` as [`Event::SessionComplete`]; only a
    /// request that cannot be valid (for example an unsupported auth level or an empty name)
    /// fails here.
    pub fn start<F>(request: Request, callback: F) -> Result<Session, TransportError>
    where
        F: FnMut(Event<'_>) + Send + 'static,
    {
        let _ = (request, callback);
        todo!("Session::start")
    }

    pub fn handle(&self) -> SessionHandle {
        todo!()
    }

    /// Releases `len` delivered bytes at `offset` from the cache (one call per ReceiveContents).
    pub fn complete_receive(&self, offset: u64, len: u64) {
        self.handle().complete_receive(offset, len)
    }

    /// Asks the session to stop: LEAVE with reason CANCELLED, then SessionComplete(Cancelled).
    pub fn cancel(&self) {
        self.handle().cancel()
    }

    /// Waits until the session completes or `timeout` passes (`None`: no limit). Returns the
    /// final status, or `None` if it is still in progress.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Status> {
        let _ = timeout;
        todo!()
    }

    pub fn status(&self) -> Status {
        todo!()
    }

    /// Releases the handle. A transfer still running is not cancelled.
    pub fn close(self) {}
}

impl SessionHandle {
    pub fn complete_receive(&self, offset: u64, len: u64) {
        let _ = (offset, len);
        todo!()
    }

    pub fn cancel(&self) {
        todo!()
    }
}
