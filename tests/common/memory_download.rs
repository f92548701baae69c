//! A download by the library's client into a buffer in memory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wdsmc::transport::{Event, Request, Session, Status};

/// A running session and the buffer of `size` bytes it fills.
pub struct MemoryDownload {
    session: Session,
    data: Arc<Mutex<Vec<u8>>>,
}

impl MemoryDownload {
    pub fn start(request: Request, size: usize) -> MemoryDownload {
        let data = Arc::new(Mutex::new(vec![0u8; size]));
        let sink = Arc::clone(&data);
        let session = Session::start(request, move |handle, event| {
            if let Event::ReceiveContents { offset, data } = event {
                let at = offset as usize;
                sink.lock().unwrap()[at..at + data.len()].copy_from_slice(data);
                handle.complete_receive(offset, data.len() as u64).unwrap();
            }
        })
        .unwrap();
        MemoryDownload { session, data }
    }

    /// Waits up to `limit` for the session to end (`None`: it had not) and closes it; returns
    /// a copy of the bytes, because the session thread may still hold the buffer.
    pub fn finish(self, limit: Duration) -> (Option<Status>, Vec<u8>) {
        let status = self.session.wait(Some(limit));
        self.session.close();
        let data = self.data.lock().unwrap().clone();
        (status, data)
    }
}
