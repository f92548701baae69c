//! The session thread: initiation, then the loop that owns the sans-IO client, its sockets and
//! its clock, and turns the client's events into callback events.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::error::{Internal, RequestError};
use super::handle::SessionHandle;
use super::initiation::Initiated;
use super::net::{self, LocalInterface, RECV_BUFFER_BYTES};
use super::receive::{
    Filled, GroupReceiver, QUEUE_DEPTH, ReceiveThread, Received, RecvShape, spawn_receiver,
};
use super::shared::Shared;
use super::{Datagram, Event, Request, Stats, Status, TransportError};
use crate::proto::SmallRng;
use crate::proto::client::{Client, ClientConfig, ClientEvent, ClientOutcome};

/// Longest the driver waits on the multicast socket before it has joined: the JOINACK comes
/// through the unicast receive thread and is picked up after that wait at the latest.
const JOIN_POLL: Duration = Duration::from_millis(5);
/// How often progress events are delivered.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Longest the driver sleeps, so cancel and cache releases are seen promptly.
const DRIVER_TICK: Duration = Duration::from_millis(50);
/// Batches the channel holds between the unicast receive thread and the driver.
const QUEUE_BATCHES: usize = 4;

/// The session thread's body: runs the session and delivers `SessionComplete` last, then
/// publishes the final status.
pub(super) fn run_session<F>(request: Request, handle: SessionHandle, mut callback: F)
where
    F: FnMut(&SessionHandle, Event<'_>),
{
    let _finish_on_panic = FinishOnPanic(handle.shared());
    let mut emit = |event: Event<'_>| callback(&handle, event);
    let result = match drive(&request, handle.shared(), &mut emit) {
        Err(TransportError::Cancelled) => Err(handle.shared().cancel_outcome()),
        other => other,
    };
    let status = match &result {
        Ok(_) => Status::Success,
        Err(e) => Status::Failure(e.clone()),
    };
    emit(Event::SessionComplete(&result));
    handle.shared().finish(status);
}

/// If the callback (or the driver) panics, waiters still learn that the session ended.
struct FinishOnPanic<'a>(&'a Shared);

impl Drop for FinishOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.finish(Status::Failure(TransportError::Internal(
                Internal::Panicked,
            )));
        }
    }
}

fn drive(
    request: &Request,
    shared: &Shared,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<Stats, TransportError> {
    let initiated = Initiated::run(request, &|| shared.cancel_requested(), emit)?;
    let params = initiated.info.params.clone();
    if request.cache_size < u64::from(params.block_size) {
        return Err(RequestError::CacheTooSmall {
            cache: request.cache_size,
            block_size: params.block_size,
        }
        .into());
    }
    shared.set_content_size(params.content_size);
    emit(Event::SessionStart(&initiated.info));
    if let Some(metadata) = &initiated.metadata {
        emit(Event::ReceiveMetadata(metadata));
    }

    let client_name = request
        .client_name
        .clone()
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let rng = match request.seed {
        Some(seed) => SmallRng::seed_from_u64(seed),
        None => SmallRng::from_os_rng(),
    };
    let client = Client::new(
        ClientConfig {
            params: params.clone(),
            security: initiated.info.security.clone(),
            client_name,
            local_ip: initiated.iface.address,
            mac_address: initiated.iface.mac.clone(),
            user_sid: initiated.info.user_sid.clone(),
            cache_size: request.cache_size,
            join_timeout: request.timeouts.join,
            first_data_timeout: request.timeouts.first_data,
            inactivity_timeout: request.timeouts.inactivity,
        },
        Instant::now(),
        rng,
    )
    .map_err(|e| TransportError::Internal(Internal::Session(e)))?;
    let (queue_tx, queue_rx) = mpsc::sync_channel(QUEUE_BATCHES);
    let socket = Arc::new(initiated.socket);
    let pool = Arc::new(Mutex::new(Vec::new()));
    let group = join_group(params.group, &initiated.iface, params.block_size, emit)?;
    let unicast = spawn_receiver(
        Arc::clone(&socket),
        queue_tx,
        Arc::clone(&pool),
        "wdsmc-recv-unicast",
        RecvShape::new(params.block_size, false),
    )?;
    Driver {
        request,
        shared,
        emit,
        client,
        socket,
        iface: initiated.iface,
        group,
        queue_rx,
        pool,
        _unicast: unicast,
        joined: false,
        out: Vec::with_capacity(2048),
        cancelled: false,
    }
    .run()
}

/// Joins `group` with a new multicast socket sized for `block_size` blocks.
fn join_group(
    group: SocketAddr,
    iface: &LocalInterface,
    block_size: u32,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<GroupReceiver, TransportError> {
    let joined = net::multicast_socket(group, iface)?;
    if let Some(granted) = joined.limited_buffer {
        emit(Event::ReceiveBufferLimited {
            granted,
            requested: RECV_BUFFER_BYTES,
        });
    }
    let shape = RecvShape::new(block_size, joined.gro);
    Ok(GroupReceiver::new(joined.socket, shape))
}

/// Everything the driver loop owns after initiation.
struct Driver<'c> {
    request: &'c Request,
    shared: &'c Shared,
    emit: &'c mut dyn FnMut(Event<'_>),
    client: Client,
    socket: Arc<UdpSocket>,
    iface: LocalInterface,
    group: GroupReceiver,
    queue_rx: Receiver<Vec<Filled>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Stops the unicast receive thread when the driver ends.
    _unicast: ReceiveThread,
    /// Whether the client has its JOINACK for the current session (see [`JOIN_POLL`]).
    joined: bool,
    out: Vec<u8>,
    cancelled: bool,
}

impl Driver<'_> {
    /// Moves to another group after a DEMOTE; the old socket closes (leaving its group).
    fn listen_to_group(&mut self, group: SocketAddr) -> Result<(), TransportError> {
        let block_size = self.client.params().block_size;
        self.group = join_group(group, &self.iface, block_size, self.emit)?;
        self.joined = false;
        Ok(())
    }

    fn run(&mut self) -> Result<Stats, TransportError> {
        let mut outcome = None;
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            self.take_commands(now);
            self.flush_transmits();
            while let Some(event) = self.client.poll_event() {
                match event {
                    ClientEvent::Joined { client_id } => {
                        self.joined = true;
                        (self.emit)(Event::Joined { client_id });
                    }
                    ClientEvent::MasterChanged { is_master } => {
                        (self.emit)(Event::MasterChanged { is_master });
                    }
                    ClientEvent::Demoted { params } => {
                        self.shared.set_content_size(params.content_size);
                        (self.emit)(Event::Demoted { to: &params });
                        self.listen_to_group(params.group)?;
                    }
                    ClientEvent::Finished(result) => outcome = Some(result),
                }
            }
            if let Some(result) = outcome {
                if self.client.is_finished() {
                    self.flush_transmits();
                    let stats = self.client.stats().clone();
                    (self.emit)(Event::Progress(&stats));
                    return self.outcome_to_result(result, stats);
                }
            }
            if now.duration_since(last_progress) >= PROGRESS_INTERVAL {
                last_progress = now;
                let stats = self.client.stats().clone();
                (self.emit)(Event::Progress(&stats));
            }
            let wait = self
                .client
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(DRIVER_TICK)
                .min(if self.joined { DRIVER_TICK } else { JOIN_POLL });
            match self.group.receive(wait) {
                Ok(()) => self.handle_group_batch(),
                Err(e) if crate::sys::is_transient_recv_error(&e) => {}
                // A socket that keeps failing ends in a timeout that names the phase; do not
                // spin on it meanwhile.
                Err(_) => thread::sleep(wait),
            }
            loop {
                match self.queue_rx.try_recv() {
                    Ok(batch) => self.handle_batch(batch),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        return Err(TransportError::Internal(Internal::ReceiveThreadStopped));
                    }
                }
            }
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
        }
    }

    fn take_commands(&mut self, now: Instant) {
        let released = self.shared.take_released();
        if released > 0 {
            self.client.cache_done(released);
        }
        if !self.cancelled && self.shared.cancel_requested() {
            self.cancelled = true;
            self.client.cancel(now);
        }
    }

    /// Handles what the unicast receive thread queued and gives its buffers back for reuse.
    fn handle_batch(&mut self, batch: Vec<Filled>) {
        let mut spent = Vec::with_capacity(batch.len());
        for filled in batch {
            self.handle(&filled.buf, filled.received);
            spent.push(filled.buf);
        }
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let room = QUEUE_DEPTH.saturating_sub(pool.len());
        pool.extend(spent.into_iter().take(room));
    }

    /// Handles what the last multicast receive filled, in place.
    fn handle_group_batch(&mut self) {
        let bufs = std::mem::take(&mut self.group.bufs);
        let received = std::mem::take(&mut self.group.received);
        for (buf, &what) in bufs.iter().zip(&received) {
            self.handle(buf, what);
        }
        self.group.bufs = bufs;
        self.group.received = received;
    }

    /// Handles the datagrams of one receive buffer.
    fn handle(&mut self, buf: &[u8], received: Received) {
        let from = received.from;
        let now = Instant::now();
        for bytes in received.datagrams(buf) {
            if self.request.trace {
                (self.emit)(Event::Trace {
                    outgoing: false,
                    peer: from,
                    datagram: Datagram::Mt(bytes),
                });
            }
            if let Some(delivery) = self.client.handle_datagram(now, from, bytes) {
                self.shared.delivered(delivery.data.len() as u64);
                (self.emit)(Event::ReceiveContents {
                    offset: delivery.offset,
                    data: delivery.data,
                });
            }
        }
    }

    fn flush_transmits(&mut self) {
        loop {
            self.out.clear();
            let Some(transmit) = self.client.poll_transmit(&mut self.out) else {
                break;
            };
            let destination = transmit.destination;
            if self.request.trace {
                (self.emit)(Event::Trace {
                    outgoing: true,
                    peer: destination,
                    datagram: Datagram::Mt(&self.out),
                });
            }
            if let Err(error) = self.socket.send_to(&self.out, destination) {
                // A lost datagram is something the protocol already recovers from; a socket
                // that cannot send at all will end in a timeout that names the phase.
                if !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) {
                    (self.emit)(Event::SendFailed {
                        destination,
                        error: &error,
                    });
                }
            }
        }
    }

    fn outcome_to_result(
        &self,
        outcome: ClientOutcome,
        stats: Stats,
    ) -> Result<Stats, TransportError> {
        match outcome {
            ClientOutcome::Complete => Ok(stats),
            ClientOutcome::Cancelled => Err(TransportError::Cancelled),
            ClientOutcome::Kicked(reason) => Err(TransportError::Kicked { reason }),
            ClientOutcome::TimedOut(phase) => Err(TransportError::Timeout {
                phase,
                after: self.request.timeouts.of(phase),
            }),
        }
    }
}
