//! Session threads: initiation, sockets, the receive threads, the protocol driver and the
//! handle.
//!
//! Threads per session: one protocol driver (runs initiation, then owns the sans-IO client, the
//! unicast socket it sends from and the multicast socket it reads data from, and calls the
//! callback), and one receive thread for the unicast socket (JOINACK, a unicast KICK) that
//! hands datagrams to the driver through a bounded channel.
//!
//! The driver reads the multicast socket itself: the data path then costs no wake-up of
//! another thread per batch, and a block is still in this core's cache when it is checked and
//! delivered. The kernel's socket buffer absorbs bursts while the callback writes. On Linux a
//! receive takes a batch of buffers per `recvmmsg` call, and the multicast socket asks for UDP
//! GRO, so one buffer may hold a run of datagrams that is split before the protocol sees it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::net::{self, LocalInterface, RECV_POLL};
use super::trace::{describe_msi, describe_mt};
use super::{AuthLevel, Event, Phase, Request, SessionInfo, Stats, Status, TransportError};
use crate::proto::client::{Client, ClientConfig, ClientEvent, ClientOutcome, TimeoutPhase};
use crate::proto::{SessionParams, SmallRng};
use crate::wire::msi::{self, MsiPacket, MsiRequest};

/// How often the MSI request is re-sent while no reply arrives (MS-WDSMSI §3.1.6).
const MSI_RETRY: Duration = Duration::from_secs(1);
/// Longest the driver waits on the multicast socket before it has joined: the JOINACK comes
/// through the unicast receive thread and is picked up after that wait at the latest.
const JOIN_POLL: Duration = Duration::from_millis(5);
/// How often progress events are delivered.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Longest the driver sleeps, so cancel and cache releases are seen promptly.
const DRIVER_TICK: Duration = Duration::from_millis(50);
/// Receive buffers queued between the unicast receive thread and the driver, and buffers kept
/// for reuse.
const QUEUE_DEPTH: usize = 64;
/// Most buffers one receive call fills.
const RECV_BATCH: usize = 32;
/// Buffers per receive call when each may hold a 64 KiB GRO run (about 60 datagrams of 8 KiB
/// blocks per call).
const GRO_RECV_BATCH: usize = 8;
/// Batches the channel holds between the unicast receive thread and the driver.
const QUEUE_BATCHES: usize = 4;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

struct Shared {
    status: Mutex<Status>,
    completed: Condvar,
    cancel_requested: AtomicBool,
    /// Why the consumer aborted, when it did (`SessionHandle::abort`).
    abort_reason: Mutex<Option<String>>,
    closed: AtomicBool,
    released_bytes: AtomicU64,
}

/// A running (or finished) download. Dropping it is the same as [`Session::close`].
pub struct Session {
    handle: SessionHandle,
}

/// A cloneable, thread-safe handle for completing receives and cancelling from other threads
/// (for example a writer thread). Cancel stops working once the session's handle is closed.
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<Shared>,
}

/// Runs session initiation only (MS-WDSMSI over UDP) and returns what the server announced,
/// without joining. Used by `wdsmc info`.
pub fn initiate(request: &Request) -> Result<SessionInfo, TransportError> {
    validate(request)?;
    let never = AtomicBool::new(false);
    Initiated::run(request, &never, &mut |_| {}).map(|i| i.info)
}

fn validate(request: &Request) -> Result<(), TransportError> {
    if request.auth == AuthLevel::Authenticated {
        return Err(TransportError::AuthNotSupported);
    }
    let probe = MsiRequest {
        namespace: request.namespace.clone(),
        content: request.object.clone(),
        mac_address: vec![0; 6],
        ipv6_capable: None,
    };
    probe
        .validate()
        .map_err(|e| TransportError::Protocol(e.to_string()))
}

impl Session {
    /// Starts the session on its own thread and returns at once. Every outcome, including a
    /// failed initiation, arrives through `callback` as [`Event::SessionComplete`]; only a
    /// request that cannot be valid (an unsupported auth level, an empty or NUL-bearing name)
    /// fails here.
    pub fn start<F>(request: Request, callback: F) -> Result<Session, TransportError>
    where
        F: FnMut(Event<'_>) + Send + 'static,
    {
        validate(&request)?;
        let shared = Arc::new(Shared {
            status: Mutex::new(Status::InProgress),
            completed: Condvar::new(),
            cancel_requested: AtomicBool::new(false),
            abort_reason: Mutex::new(None),
            closed: AtomicBool::new(false),
            released_bytes: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("wdsmc-session".into())
            .spawn(move || run_session(request, thread_shared, callback))
            .map_err(|e| TransportError::Internal(format!("cannot start session thread: {e}")))?;
        Ok(Session {
            handle: SessionHandle { shared },
        })
    }

    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    /// Releases `len` delivered bytes at `offset` from the cache (one call per ReceiveContents).
    pub fn complete_receive(&self, offset: u64, len: u64) {
        self.handle.complete_receive(offset, len)
    }

    /// Asks the session to stop: LEAVE with reason CANCELLED, then SessionComplete(Cancelled).
    pub fn cancel(&self) {
        self.handle.cancel()
    }

    /// Waits until the session completes or `timeout` passes (`None`: no limit). Returns the
    /// final status, or `None` if it is still in progress.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Status> {
        let shared = &self.handle.shared;
        let guard = shared.status.lock().unwrap_or_else(|e| e.into_inner());
        let in_progress = |s: &mut Status| *s == Status::InProgress;
        let guard = match timeout {
            None => shared
                .completed
                .wait_while(guard, in_progress)
                .unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                shared
                    .completed
                    .wait_timeout_while(guard, t, in_progress)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        (*guard != Status::InProgress).then(|| guard.clone())
    }

    pub fn status(&self) -> Status {
        self.handle
            .shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Releases the handle. A transfer still running is not cancelled: it goes on to its end
    /// and its callbacks keep arriving. Cancel through any [`SessionHandle`] stops working.
    pub fn close(self) {
        drop(self)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.handle.shared.closed.store(true, Ordering::SeqCst);
    }
}

impl SessionHandle {
    /// Releases `len` delivered bytes from the cache. `offset` identifies the delivery, as in
    /// wdstci; the client only needs the byte count.
    pub fn complete_receive(&self, _offset: u64, len: u64) {
        self.shared.released_bytes.fetch_add(len, Ordering::SeqCst);
    }

    /// Cancels the transfer (no effect once the session's handle is closed).
    pub fn cancel(&self) {
        if !self.shared.closed.load(Ordering::SeqCst) {
            self.shared.cancel_requested.store(true, Ordering::SeqCst);
        }
    }

    /// Cancels because the consumer cannot go on (for example a failed write); the session
    /// completes with [`TransportError::Consumer`] carrying `reason`.
    pub fn abort(&self, reason: impl Into<String>) {
        if self.shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut slot = self
            .shared
            .abort_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| reason.into());
        self.shared.cancel_requested.store(true, Ordering::SeqCst);
    }
}

fn run_session<F>(request: Request, shared: Arc<Shared>, mut callback: F)
where
    F: FnMut(Event<'_>),
{
    let result = drive(&request, &shared, &mut callback);
    let result = match result {
        Err(TransportError::Cancelled) => {
            let reason = shared
                .abort_reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            Err(reason.map_or(TransportError::Cancelled, TransportError::Consumer))
        }
        other => other,
    };
    let status = match &result {
        Ok(_) => Status::Success,
        Err(e) => Status::Failure(e.clone()),
    };
    callback(Event::SessionComplete(&result));
    *shared.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    shared.completed.notify_all();
}

/// A session whose initiation succeeded.
struct Initiated {
    info: SessionInfo,
    params: SessionParams,
    socket: UdpSocket,
    iface: LocalInterface,
}

impl Initiated {
    /// MS-WDSMSI over UDP: send the request every second until a reply comes from the server
    /// or the initiation timeout runs out.
    fn run(
        request: &Request,
        cancel: &AtomicBool,
        trace: &mut dyn FnMut(Event<'_>),
    ) -> Result<Initiated, TransportError> {
        let server = net::resolve_server(&request.server, msi::MSI_PORT)?;
        let mut iface = net::choose_interface(request.interface.as_ref(), server)?;
        let socket = net::unicast_socket(iface.address)?;
        socket
            .set_read_timeout(Some(RECV_POLL))
            .map_err(|e| TransportError::Network(format!("cannot set a socket timeout: {e}")))?;
        let packet = MsiPacket::Request(MsiRequest {
            namespace: request.namespace.clone(),
            content: request.object.clone(),
            mac_address: iface.mac.clone(),
            ipv6_capable: iface.has_ipv6.then_some(true),
        })
        .encode();
        let started = Instant::now();
        let mut next_send = started;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Err(TransportError::Cancelled);
            }
            let now = Instant::now();
            if now.duration_since(started) >= request.timeouts.initiation {
                return Err(TransportError::Timeout {
                    phase: Phase::Initiation,
                    after: request.timeouts.initiation,
                });
            }
            if now >= next_send {
                if request.trace {
                    trace(Event::Trace {
                        outgoing: true,
                        peer: server,
                        summary: &describe_msi(&packet),
                    });
                }
                socket.send_to(&packet, server).map_err(|e| {
                    TransportError::Network(format!("cannot send to server {server}: {e}"))
                })?;
                next_send = now + MSI_RETRY;
            }
            let (len, from) = match socket.recv_from(&mut buf) {
                Ok(r) => r,
                // A refused port shows up as an error on some systems; keep retrying until the
                // timeout so that a server that is starting up is still reached.
                Err(_) => continue,
            };
            if from.ip() != server.ip() {
                continue;
            }
            let bytes = &buf[..len];
            if request.trace {
                trace(Event::Trace {
                    outgoing: false,
                    peer: from,
                    summary: &describe_msi(bytes),
                });
            }
            let reply = match MsiPacket::decode(bytes) {
                Ok(MsiPacket::Reply(reply)) => reply,
                Ok(MsiPacket::Error { code }) => {
                    let message = msi::error_code::describe(code)
                        .map(|(name, meaning)| format!("{meaning} ({name})"))
                        .unwrap_or_else(|| "unknown error".into());
                    return Err(TransportError::Refused { code, message });
                }
                // Stray or malformed datagrams: keep waiting for the real reply.
                Ok(MsiPacket::Request(_)) | Err(_) => continue,
            };
            reply
                .check_consistency()
                .map_err(|e| TransportError::Protocol(e.to_string()))?;
            let group = SocketAddr::new(reply.multicast_addr, reply.multicast_port);
            let server_session = SocketAddr::new(reply.server_addr, reply.server_port);
            // The session may be in the other IP family than the initiation (an IPv6 session
            // for an IPv6-capable client): send from an address of that family.
            let socket = if server_session.is_ipv4() == iface.address.is_ipv4() {
                socket
            } else {
                let address = net::address_in_family(&iface, server_session.is_ipv4()).ok_or_else(|| {
                    TransportError::Network(format!(
                        "the server put the session on {server_session}, but the interface has no address of that family"
                    ))
                })?;
                iface.address = address;
                net::unicast_socket(address)?
            };
            let info = SessionInfo {
                server: server_session,
                group,
                local_address: iface.address,
                session_id: reply.session_id,
                content_size: reply.content_size,
                block_size: reply.block_size,
                total_blocks: reply.total_blocks,
            };
            let params = SessionParams {
                session_id: reply.session_id,
                group,
                server: server_session,
                content_size: reply.content_size,
                block_size: reply.block_size,
                total_blocks: reply.total_blocks,
            };
            return Ok(Initiated {
                info,
                params,
                socket,
                iface,
            });
        }
    }
}

/// Receive buffer length for a session: a data packet (block plus 57 header bytes) with room to
/// spare for the largest control packet, instead of 64 KiB each. With a few hundred buffers
/// pooled, this is most of the client's memory beyond the cache.
fn datagram_buffer_len(block_size: u32) -> usize {
    (block_size as usize + 1024).clamp(16 * 1024, MAX_DATAGRAM)
}

/// How a receive thread reads: buffer size and buffers per receive call.
#[derive(Debug, Clone, Copy)]
struct RecvShape {
    buffer_len: usize,
    batch: usize,
}

impl RecvShape {
    /// With GRO a buffer may hold a whole 64 KiB run, so buffers are full-size and fewer
    /// per call; memory in flight stays about the same (a few MiB).
    fn new(block_size: u32, gro: bool) -> Self {
        // Without recvmmsg a receive fills one buffer, so more would only cost memory.
        let batched = cfg!(target_os = "linux");
        if gro {
            Self {
                buffer_len: MAX_DATAGRAM,
                batch: if batched { GRO_RECV_BATCH } else { 1 },
            }
        } else {
            Self {
                buffer_len: datagram_buffer_len(block_size),
                batch: if batched { RECV_BATCH } else { 1 },
            }
        }
    }
}

/// What one receive filled: `len` bytes from `from`, made of datagrams of `segment` bytes each
/// (the last may be shorter) when the kernel coalesced a GRO run, else one datagram.
#[derive(Debug, Clone, Copy)]
struct Received {
    len: usize,
    from: SocketAddr,
    segment: Option<usize>,
}

impl Received {
    /// The datagrams in `buf`, the buffer this describes.
    fn datagrams<'b>(&self, buf: &'b [u8]) -> impl Iterator<Item = &'b [u8]> {
        let bytes = &buf[..self.len.min(buf.len())];
        let segment = match self.segment {
            Some(segment) if segment > 0 => segment,
            _ => bytes.len().max(1),
        };
        // An empty datagram is still one datagram (the protocol counts and ignores it).
        let whole = bytes.is_empty().then_some(bytes);
        bytes.chunks(segment).chain(whole)
    }
}

/// A receive buffer handed from the unicast receive thread to the driver.
struct Datagram {
    buf: Vec<u8>,
    received: Received,
}

/// The multicast socket and the buffers the driver reads it into, reused for every batch.
struct GroupReceiver {
    socket: UdpSocket,
    bufs: Vec<Vec<u8>>,
    received: Vec<Received>,
    /// The read timeout last set, so an unchanged one costs no system call.
    timeout: Option<Duration>,
}

impl GroupReceiver {
    fn new(socket: UdpSocket, shape: RecvShape) -> Self {
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
    fn receive(&mut self, wait: Duration) -> std::io::Result<()> {
        let wait = Duration::from_millis((wait.as_millis() as u64).max(1));
        if self.timeout != Some(wait) {
            self.socket.set_read_timeout(Some(wait))?;
            self.timeout = Some(wait);
        }
        self.received.clear();
        recv_batch(&self.socket, &mut self.bufs, &mut self.received)
    }
}

/// A receive thread and the flag that stops it.
struct Receiver_ {
    stop: Arc<AtomicBool>,
}

impl Drop for Receiver_ {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn spawn_receiver(
    socket: Arc<UdpSocket>,
    queue: SyncSender<Vec<Datagram>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    name: &str,
    shape: RecvShape,
) -> Result<Receiver_, TransportError> {
    let RecvShape { buffer_len, batch } = shape;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    socket
        .set_read_timeout(Some(RECV_POLL))
        .map_err(|e| TransportError::Network(format!("cannot set a socket timeout: {e}")))?;
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
                        let batch: Vec<Datagram> = std::mem::replace(&mut bufs, rest)
                            .into_iter()
                            .zip(received.iter())
                            .map(|(buf, &received)| Datagram { buf, received })
                            .collect();
                        if queue.send(batch).is_err() {
                            return;
                        }
                    }
                    Err(e) if crate::net::is_transient_recv_error(&e) => {}
                    Err(_) => thread::sleep(RECV_POLL),
                }
            }
        })
        .map_err(|e| TransportError::Internal(format!("cannot start receive thread: {e}")))?;
    Ok(Receiver_ { stop })
}

/// Receives at least one datagram (waiting up to the socket's read timeout) and whatever else
/// is already queued, up to one per buffer, with a single `recvmmsg` call: at gigabit rates and
/// above, one system call per datagram is a large part of the receive cost.
#[cfg(target_os = "linux")]
fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    received: &mut Vec<Received>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    /// Room for the UDP_GRO control message (an int), 8-byte aligned.
    type ControlSlot = [u64; 8];
    let count = bufs.len().min(RECV_BATCH);
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut addrs: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut controls: [ControlSlot; RECV_BATCH] = [[0; 8]; RECV_BATCH];
    for i in 0..count {
        iovecs[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: bufs[i].len(),
        };
        headers[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        headers[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        headers[i].msg_hdr.msg_iov = &raw mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
        headers[i].msg_hdr.msg_controllen = std::mem::size_of::<ControlSlot>() as _;
    }
    // SAFETY: every header points at a live buffer, address slot and iovec of this frame, and
    // `count` does not exceed the arrays. MSG_WAITFORONE: block for the first datagram only.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count as _,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for i in 0..n as usize {
        // SAFETY: the kernel filled `msg_namelen` bytes of a sockaddr_storage.
        let addr = unsafe {
            socket2::SockAddr::new(addrs[i], headers[i].msg_hdr.msg_namelen as libc::socklen_t)
        };
        // SAFETY: the kernel wrote `msg_controllen` bytes of control messages into the slot
        // this header points at; the CMSG macros stay within that length.
        let segment = unsafe { gro_segment(&headers[i].msg_hdr) };
        // Without its control data a GRO run cannot be split safely; drop it (the protocol
        // repairs it) rather than treat a run as one datagram. The slot is sized so that the
        // kernel never truncates it.
        let control_lost = headers[i].msg_hdr.msg_flags & libc::MSG_CTRUNC != 0;
        // A non-IP source (never expected on a UDP socket) is passed on as an empty datagram,
        // which the protocol ignores, so entries stay paired with their buffers.
        received.push(match addr.as_socket() {
            Some(from) if !control_lost => Received {
                len: headers[i].msg_len as usize,
                from,
                segment,
            },
            _ => Received {
                len: 0,
                from: SocketAddr::from(([0, 0, 0, 0], 0)),
                segment: None,
            },
        });
    }
    Ok(())
}

/// The segment size of a GRO run, from a received message's UDP_GRO control message.
///
/// # Safety
/// `header` must describe control data the kernel filled in.
#[cfg(target_os = "linux")]
unsafe fn gro_segment(header: &libc::msghdr) -> Option<usize> {
    // SAFETY: per the caller; CMSG_FIRSTHDR/NXTHDR bound every step by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// One datagram per call where `recvmmsg` is not available.
#[cfg(not(target_os = "linux"))]
fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    received: &mut Vec<Received>,
) -> std::io::Result<()> {
    let (len, from) = socket.recv_from(&mut bufs[0])?;
    received.push(Received {
        len,
        from,
        segment: None,
    });
    Ok(())
}

/// Everything the driver loop owns after initiation.
struct Driver<'c> {
    request: &'c Request,
    shared: &'c Shared,
    callback: &'c mut dyn FnMut(Event<'_>),
    client: Client,
    socket: Arc<UdpSocket>,
    iface: LocalInterface,
    group: GroupReceiver,
    queue_rx: Receiver<Vec<Datagram>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Stops the unicast receive thread when the driver ends.
    _unicast: Receiver_,
    /// Whether the client has its JOINACK for the current session (see [`JOIN_POLL`]).
    joined: bool,
    out: Vec<u8>,
    cancelled: bool,
}

fn drive(
    request: &Request,
    shared: &Shared,
    callback: &mut dyn FnMut(Event<'_>),
) -> Result<Stats, TransportError> {
    let initiated = Initiated::run(request, &shared.cancel_requested, callback)?;
    callback(Event::SessionStart(&initiated.info));

    let client_name = request
        .client_name
        .clone()
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let rng = match request.seed {
        Some(seed) => SmallRng::seed_from_u64(seed),
        None => SmallRng::from_os_rng(),
    };
    let now = Instant::now();
    let client = Client::new(
        ClientConfig {
            params: initiated.params.clone(),
            client_name,
            local_ip: initiated.iface.address,
            mac_address: initiated.iface.mac.clone(),
            user_sid: None,
            cache_size: request.cache_size,
            join_timeout: request.timeouts.join,
            first_data_timeout: request.timeouts.first_data,
            inactivity_timeout: request.timeouts.inactivity,
        },
        now,
        rng,
    );
    let (queue_tx, queue_rx) = mpsc::sync_channel(QUEUE_BATCHES);
    let socket = Arc::new(initiated.socket);
    let pool = Arc::new(Mutex::new(Vec::new()));
    let group = join_group(
        initiated.params.group,
        &initiated.iface,
        initiated.params.block_size,
        callback,
    )?;
    let unicast = spawn_receiver(
        Arc::clone(&socket),
        queue_tx,
        Arc::clone(&pool),
        "wdsmc-recv-unicast",
        RecvShape::new(initiated.params.block_size, false),
    )?;
    let mut driver = Driver {
        request,
        shared,
        callback,
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
    };
    driver.run()
}

/// Joins `group` with a new multicast socket sized for `block_size` blocks.
fn join_group(
    group: SocketAddr,
    iface: &LocalInterface,
    block_size: u32,
    callback: &mut dyn FnMut(Event<'_>),
) -> Result<GroupReceiver, TransportError> {
    let joined = net::multicast_socket(group, iface)?;
    if let Some(warning) = &joined.warning {
        callback(Event::Notice(warning));
    }
    let shape = RecvShape::new(block_size, joined.gro);
    Ok(GroupReceiver::new(joined.socket, shape))
}

impl Driver<'_> {
    /// Moves to another group after a DEMOTE; the old socket closes (leaving its group).
    fn listen_to_group(&mut self, group: SocketAddr) -> Result<(), TransportError> {
        let block_size = self.client.params().block_size;
        self.group = join_group(group, &self.iface, block_size, self.callback)?;
        self.joined = false;
        Ok(())
    }

    fn run(&mut self) -> Result<Stats, TransportError> {
        let mut outcome = None;
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            self.take_commands(now);
            self.flush_transmits()?;
            while let Some(event) = self.client.poll_event() {
                match event {
                    ClientEvent::Joined { client_id } => {
                        self.joined = true;
                        let line = format!("joined as client {client_id}");
                        (self.callback)(Event::Notice(&line));
                    }
                    ClientEvent::MasterChanged { is_master } => {
                        let line = if is_master {
                            "this client is now the master client (it acknowledges data)"
                        } else {
                            "this client is no longer the master client"
                        };
                        (self.callback)(Event::Notice(line));
                    }
                    ClientEvent::Demoted { params } => {
                        let line = format!(
                            "demoted by the server to session 0x{:08x} on {}",
                            params.session_id, params.group
                        );
                        (self.callback)(Event::Notice(&line));
                        self.listen_to_group(params.group)?;
                    }
                    ClientEvent::Finished(result) => outcome = Some(result),
                }
            }
            if let Some(result) = &outcome {
                if self.client.is_finished() {
                    self.flush_transmits()?;
                    let stats = self.client.stats().clone();
                    (self.callback)(Event::Progress(&stats));
                    return self.outcome_to_result(*result, stats);
                }
            }
            if now.duration_since(last_progress) >= PROGRESS_INTERVAL {
                last_progress = now;
                let stats = self.client.stats().clone();
                (self.callback)(Event::Progress(&stats));
            }
            let wait = self
                .client
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(DRIVER_TICK)
                .min(if self.joined { DRIVER_TICK } else { JOIN_POLL });
            match self.group.receive(wait) {
                Ok(()) => self.handle_group_batch(),
                Err(e) if crate::net::is_transient_recv_error(&e) => {}
                // A socket that keeps failing ends in a timeout that names the phase; do not
                // spin on it meanwhile.
                Err(_) => thread::sleep(wait),
            }
            loop {
                match self.queue_rx.try_recv() {
                    Ok(batch) => self.handle_batch(batch),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        return Err(TransportError::Internal("receive thread stopped".into()));
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
        let released = self.shared.released_bytes.swap(0, Ordering::SeqCst);
        if released > 0 {
            self.client.cache_done(released);
        }
        if !self.cancelled && self.shared.cancel_requested.load(Ordering::SeqCst) {
            self.cancelled = true;
            self.client.cancel(now);
        }
    }

    /// Handles what the unicast receive thread queued and gives its buffers back for reuse.
    fn handle_batch(&mut self, batch: Vec<Datagram>) {
        let mut spent = Vec::with_capacity(batch.len());
        for datagram in batch {
            self.handle(&datagram.buf, datagram.received);
            spent.push(datagram.buf);
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
                let summary = describe_mt(bytes);
                (self.callback)(Event::Trace {
                    outgoing: false,
                    peer: from,
                    summary: &summary,
                });
            }
            if let Some(delivery) = self.client.handle_datagram(now, from, bytes) {
                (self.callback)(Event::ReceiveContents {
                    offset: delivery.offset,
                    data: delivery.data,
                });
            }
        }
    }

    fn flush_transmits(&mut self) -> Result<(), TransportError> {
        while let Some(destination) = self.client.poll_transmit(&mut self.out) {
            if self.request.trace {
                let summary = describe_mt(&self.out);
                (self.callback)(Event::Trace {
                    outgoing: true,
                    peer: destination,
                    summary: &summary,
                });
            }
            if let Err(e) = self.socket.send_to(&self.out, destination) {
                // A lost datagram is something the protocol already recovers from; a socket
                // that cannot send at all will end in a timeout that names the phase.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) {
                    let line = format!("cannot send to {destination}: {e}");
                    (self.callback)(Event::Notice(&line));
                }
            }
        }
        Ok(())
    }

    fn outcome_to_result(
        &self,
        outcome: ClientOutcome,
        stats: Stats,
    ) -> Result<Stats, TransportError> {
        let timeouts = &self.request.timeouts;
        match outcome {
            ClientOutcome::Complete => Ok(stats),
            ClientOutcome::Cancelled => Err(TransportError::Cancelled),
            ClientOutcome::Kicked(reason) => Err(TransportError::Kicked { reason }),
            ClientOutcome::TimedOut(phase) => Err(match phase {
                TimeoutPhase::Join => TransportError::Timeout {
                    phase: Phase::Join,
                    after: timeouts.join,
                },
                TimeoutPhase::FirstData => TransportError::Timeout {
                    phase: Phase::FirstData,
                    after: timeouts.first_data,
                },
                TimeoutPhase::Inactivity => TransportError::Timeout {
                    phase: Phase::Inactivity,
                    after: timeouts.inactivity,
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(len: usize, segment: Option<usize>) -> Received {
        Received {
            len,
            from: SocketAddr::from(([127, 0, 0, 1], 9)),
            segment,
        }
    }

    #[test]
    fn a_gro_run_splits_into_its_segments_and_a_plain_buffer_is_one_datagram() {
        let buf: Vec<u8> = (0..100).collect();
        let lens = |r: Received| r.datagrams(&buf).map(<[u8]>::len).collect::<Vec<_>>();
        assert_eq!(lens(received(70, Some(30))), [30, 30, 10]);
        assert_eq!(lens(received(60, Some(30))), [30, 30]);
        assert_eq!(lens(received(70, None)), [70]);
        assert_eq!(lens(received(20, Some(30))), [20]);
        // An empty datagram is still delivered (and ignored by the protocol) exactly once.
        assert_eq!(lens(received(0, None)), [0]);
        assert_eq!(lens(received(0, Some(30))), [0]);
        // A length beyond the buffer (never from the kernel) is cut to the buffer.
        assert_eq!(lens(received(500, Some(64))), [64, 36]);
        let first = received(70, Some(30))
            .datagrams(&buf)
            .nth(1)
            .unwrap()
            .to_vec();
        assert_eq!(first, (30..60).collect::<Vec<u8>>());
    }
}
