//! Receiving datagrams: the multicast socket the driver reads itself, and the unicast receive
//! thread. The batched receive calls (`recvmmsg` and UDP GRO on Linux) and the buffer sizes
//! are in `sys::recv`.
//!
//! The driver reads the multicast socket itself: the data path then costs no wake-up of
//! another thread per batch, and a block is still in this core's cache when it is checked and
//! delivered. The kernel's socket buffer absorbs bursts while the callback writes. On Linux a
//! receive takes a batch of buffers per `recvmmsg` call, and the multicast socket asks for UDP
//! GRO, so one buffer may hold a run of datagrams that is split before the protocol sees it.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::TransportError;
use super::error::{Internal, OsError};
use super::net::{self, RECV_POLL};
use crate::sys::recv::recv_batch;
pub(super) use crate::sys::recv::{Received, RecvShape};

/// Buffers kept for reuse between the unicast receive thread and the driver.
pub(super) const QUEUE_DEPTH: usize = 64;
/// A receive buffer handed from the unicast receive thread to the driver, and what it holds.
pub(super) struct Filled {
    pub buf: Vec<u8>,
    pub received: Received,
}

/// The multicast socket and the buffers the driver reads it into, reused for every batch.
pub(super) struct GroupReceiver {
    socket: UdpSocket,
    pub bufs: Vec<Vec<u8>>,
    pub received: Vec<Received>,
    /// The read timeout last set, so an unchanged one costs no system call.
    timeout: Option<Duration>,
}

impl GroupReceiver {
    pub(super) fn new(socket: UdpSocket, shape: RecvShape) -> Self {
        Self {
            socket,
            bufs: (0..shape.batch)
                .map(|_| vec![0; shape.buffer_len])
                .collect(),
            received: Vec::with_capacity(shape.batch),
            timeout: None,
        }
    }

    /// Waits up to `wait` (whole milliseconds, at least one) for datagrams and takes what is
    /// queued, up to one buffer each.
    pub(super) fn receive(&mut self, wait: Duration) -> std::io::Result<()> {
        let wait = Duration::from_millis((wait.as_millis() as u64).max(1));
        if self.timeout != Some(wait) {
            self.socket.set_read_timeout(Some(wait))?;
            self.timeout = Some(wait);
        }
        self.received.clear();
        recv_batch(&self.socket, &mut self.bufs, &mut self.received)
    }
}

/// A receive thread; dropping this stops it.
pub(super) struct ReceiveThread {
    stop: Arc<AtomicBool>,
}

impl Drop for ReceiveThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub(super) fn spawn_receiver(
    socket: Arc<UdpSocket>,
    queue: SyncSender<Vec<Filled>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    name: &str,
    shape: RecvShape,
) -> Result<ReceiveThread, TransportError> {
    let RecvShape { buffer_len, batch } = shape;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    net::set_read_timeout(&socket, RECV_POLL)?;
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(batch);
            let mut received = Vec::with_capacity(batch);
            while !thread_stop.load(Ordering::Relaxed) {
                if bufs.len() < batch {
                    let mut spare = pool.lock().unwrap_or_else(|e| e.into_inner());
                    while bufs.len() < batch {
                        // Buffers sized for an earlier session's blocks (after a DEMOTE) may be
                        // too small for this one's.
                        let buf = spare
                            .pop()
                            .filter(|b| b.len() >= buffer_len)
                            .unwrap_or_else(|| vec![0u8; buffer_len]);
                        bufs.push(buf);
                    }
                }
                received.clear();
                match recv_batch(&socket, &mut bufs, &mut received) {
                    Ok(()) => {
                        // `received[i]` describes `bufs[i]`; hand those buffers over in order.
                        let rest = bufs.split_off(received.len());
                        let batch: Vec<Filled> = std::mem::replace(&mut bufs, rest)
                            .into_iter()
                            .zip(received.iter())
                            .map(|(buf, &received)| Filled { buf, received })
                            .collect();
                        if queue.send(batch).is_err() {
                            return;
                        }
                    }
                    Err(e) if crate::sys::is_transient_recv_error(&e) => {}
                    Err(_) => thread::sleep(RECV_POLL),
                }
            }
        })
        .map_err(|e| TransportError::Internal(Internal::Thread(OsError::from(e))))?;
    Ok(ReceiveThread { stop })
}
