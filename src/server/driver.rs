//! One thread per object session: owns the session socket, the clock and the file, and runs
//! [`ServerSession`].

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::log::Logger;
use crate::proto::server::{BlockSource, ServerEvent, ServerSession};
use crate::sys::send::SendBatch;
use crate::sys::socket::gso_supported;

/// Longest the thread sleeps before looking at the stop flag again.
const MAX_SLEEP: Duration = Duration::from_millis(200);
/// Progress lines per client: at most one per this interval, unless the client finished.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Refusal lines per client address: at most one per this interval.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Reads blocks from the served file with positional reads (no shared cursor).
pub struct FileBlockSource {
    file: File,
    block_size: u64,
}

impl FileBlockSource {
    pub fn open(path: &Path, block_size: u32) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            block_size: u64::from(block_size.max(1)),
        })
    }
}

impl BlockSource for FileBlockSource {
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> io::Result<()> {
        let offset = block_number
            .checked_sub(1)
            .and_then(|b| b.checked_mul(self.block_size))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("block number {block_number} is out of range"),
                )
            })?;
        crate::sys::file::read_exact_at(&self.file, buf, offset)
    }
}

/// Binds the session's unicast socket and prepares it for sending multicast on the interface
/// that owns `listen`, with loopback on (clients may run on this host).
pub fn bind_session_socket(listen: IpAddr, port: u16, ttl: u32) -> io::Result<UdpSocket> {
    crate::sys::socket::session_socket(listen, port, ttl)
}

/// Everything a session thread needs besides the protocol state.
pub struct SessionRun {
    pub socket: UdpSocket,
    pub session: ServerSession,
    pub source: FileBlockSource,
    pub logger: Logger,
    pub stop: Arc<AtomicBool>,
    pub finished: Arc<AtomicBool>,
    pub object: String,
    /// When a refusal was last logged per address (interior mutability: logging borrows self).
    pub refusals_logged: std::cell::RefCell<HashMap<SocketAddr, Instant>>,
}

impl SessionRun {
    /// Runs until the session ends (inactivity), the server stops, or the file cannot be
    /// read any more.
    pub fn run(mut self) {
        let session_id = self.session.config().session_id;
        let mut recv_buf = vec![0u8; 65536];
        let mut batch = SendBatch::new(gso_supported(&self.socket));
        let mut progress_logged: HashMap<u32, (Instant, u8)> = HashMap::new();
        let mut send_errors: u64 = 0;
        let mut current_wait = None;
        // When the first and the last data packet went out, for the data rate in the log.
        let mut data_span: Option<(Instant, Instant)> = None;
        let mut data_bytes_seen = 0u64;
        let end_reason = loop {
            if self.stop.load(Ordering::Relaxed) {
                break "server shutting down";
            }
            let now = Instant::now();
            let wait = self
                .session
                .poll_timeout()
                .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), MAX_SLEEP);
            // Failing to set a timeout would only make the loop less responsive. Only whole
            // milliseconds matter, and skipping the unchanged ones saves a syscall per packet.
            let wait = Duration::from_millis(wait.as_millis().max(1) as u64);
            if current_wait != Some(wait) {
                let _ = self.socket.set_read_timeout(Some(wait));
                current_wait = Some(wait);
            }
            match self.socket.recv_from(&mut recv_buf) {
                Ok((len, from)) => {
                    self.session
                        .handle_datagram(Instant::now(), from, &recv_buf[..len]);
                }
                Err(e) if crate::sys::is_transient_recv_error(&e) => {}
                Err(e) => {
                    self.logger.log(
                        "socket_error",
                        Some(session_id),
                        &format!("receive failed: {e}"),
                        json!({ "error": e.to_string() }),
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let mut now = Instant::now();
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            let mut read_failed = None;
            let mut report_send_error = |dest: SocketAddr, e: &io::Error| {
                send_errors += 1;
                // Log the first failure and then every 1000th, not every packet.
                if send_errors % 1000 == 1 {
                    self.logger.log(
                        "send_error",
                        Some(session_id),
                        &format!("sending to {dest} failed ({send_errors} so far): {e}"),
                        json!({ "dest": dest.to_string(), "error": e.to_string(), "count": send_errors }),
                    );
                }
            };
            loop {
                if batch.is_full() {
                    batch.flush(&self.socket, &mut report_send_error);
                    // Packets carry their send time for the RTT that steers the window; a long
                    // burst (a window read from a slow disk) must not stamp them all early.
                    now = Instant::now();
                }
                let pushed =
                    batch.push(|buf| self.session.poll_transmit(now, buf, &mut self.source));
                match pushed {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        read_failed = Some(e);
                        break;
                    }
                }
            }
            if batch
                .flush(&self.socket, &mut report_send_error)
                .gso_turned_off
            {
                self.logger.log(
                    "gso_off",
                    Some(session_id),
                    "the kernel refused UDP segmentation offload for this path (datagrams larger than the MTU?); sending datagrams one by one",
                    json!({}),
                );
            }
            let data_bytes = self.session.stats().data_bytes_sent;
            if data_bytes != data_bytes_seen {
                data_bytes_seen = data_bytes;
                let sent = Instant::now();
                data_span = Some((data_span.map_or(sent, |(first, _)| first), sent));
            }
            while let Some(event) = self.session.poll_event() {
                self.log_event(session_id, event, &mut progress_logged);
            }
            if let Some(e) = read_failed {
                self.logger.log(
                    "read_error",
                    Some(session_id),
                    &format!("cannot read {}: {e}; ending the session", self.object),
                    json!({ "object": self.object, "error": e.to_string() }),
                );
                break "file read error";
            }
            if self.session.is_finished() {
                break "inactivity timeout";
            }
        };
        let stats = self.session.stats();
        // Data packets (ODATA and RDATA) per second between the first and the last one sent;
        // `wdsmc watch` measures the same span from the receiving side.
        let data_seconds = data_span.map_or(0.0, |(first, last)| (last - first).as_secs_f64());
        let data_packets = stats.odata_sent + stats.rdata_sent;
        let (data_rate, packet_rate) = if data_seconds > 0.0 {
            (
                stats.data_bytes_sent as f64 / data_seconds,
                data_packets as f64 / data_seconds,
            )
        } else {
            (0.0, 0.0)
        };
        self.logger.log(
            "session_ended",
            Some(session_id),
            &format!(
                "session ended ({end_reason}): {} ODATA, {} RDATA, {} NACKs, {} packets dropped; {} data bytes in {:.3} s ({:.0} B/s, {:.0} packets/s), {} NCF, {} SPM",
                stats.odata_sent,
                stats.rdata_sent,
                stats.nacks_received,
                dropped(stats),
                stats.data_bytes_sent,
                data_seconds,
                data_rate,
                packet_rate,
                stats.ncf_sent,
                stats.spm_sent,
            ),
            json!({
                "reason": end_reason,
                "object": self.object,
                "odata_sent": stats.odata_sent,
                "rdata_sent": stats.rdata_sent,
                "nacks_received": stats.nacks_received,
                "dropped": dropped(stats),
                "data_bytes_sent": stats.data_bytes_sent,
                "data_seconds": data_seconds,
                "data_rate": data_rate,
                "data_packet_rate": packet_rate,
                "ncf_sent": stats.ncf_sent,
                "spm_sent": stats.spm_sent,
                "kicks_sent": stats.kick_sent,
            }),
        );
        self.finished.store(true, Ordering::Release);
    }

    fn log_event(
        &self,
        session: u32,
        event: ServerEvent,
        progress_logged: &mut HashMap<u32, (Instant, u8)>,
    ) {
        let log = |name: &str, message: String, fields: serde_json::Value| {
            self.logger.log(name, Some(session), &message, fields)
        };
        match event {
            ServerEvent::ClientJoined {
                client_id,
                addr,
                name,
            } => log(
                "client_joined",
                format!("client {client_id} joined from {addr} ({name})"),
                json!({ "client": client_id, "addr": addr.to_string(), "name": name }),
            ),
            ServerEvent::ClientActive { client_id } => log(
                "client_active",
                format!("client {client_id} active"),
                json!({ "client": client_id }),
            ),
            ServerEvent::MasterChanged { client_id } => log(
                "master_changed",
                match client_id {
                    Some(id) => format!("master client is now {id}"),
                    None => "no master client".to_string(),
                },
                json!({ "client": client_id }),
            ),
            ServerEvent::Progress {
                client_id,
                percent,
                time_in_session,
            } => {
                let now = Instant::now();
                let due = match progress_logged.get(&client_id) {
                    None => true,
                    Some(&(at, last)) => {
                        (percent == 100 && last != 100)
                            || (percent != last && now.duration_since(at) >= PROGRESS_LOG_INTERVAL)
                    }
                };
                if due {
                    // Bounded by the session's client lists (200 each).
                    if progress_logged.len() > 1000 {
                        progress_logged.clear();
                    }
                    progress_logged.insert(client_id, (now, percent));
                    log(
                        "progress",
                        format!("client {client_id} at {percent}% after {time_in_session} s"),
                        json!({ "client": client_id, "percent": percent, "time_in_session": time_in_session }),
                    );
                }
            }
            ServerEvent::ClientLeft { client_id, reason } => {
                progress_logged.remove(&client_id);
                log(
                    "client_left",
                    format!("client {client_id} left (LEAVE {})", reason.name()),
                    json!({ "client": client_id, "reason": reason.name(), "code": reason.to_u8() }),
                )
            }
            ServerEvent::ClientKicked { client_id, reason } => log(
                "client_kicked",
                format!("client {client_id} kicked: {}", reason.name()),
                json!({ "client": client_id, "reason": reason.name() }),
            ),
            ServerEvent::ClientDead { client_id } => {
                progress_logged.remove(&client_id);
                log(
                    "client_dead",
                    format!("client {client_id} timed out (no packet within the dead timeout)"),
                    json!({ "client": client_id }),
                )
            }
            ServerEvent::JoinRefused { addr, reason } => {
                // Refused clients repeat JOIN every 500 ms: one line per address per interval.
                let now = Instant::now();
                let mut refused = self.refusals_logged.borrow_mut();
                let due = refused
                    .get(&addr)
                    .is_none_or(|&at| now.duration_since(at) >= REFUSAL_LOG_INTERVAL);
                if due {
                    if refused.len() > 1000 {
                        refused.clear();
                    }
                    refused.insert(addr, now);
                    log(
                        "join_refused",
                        format!("refused JOIN from {addr}: {reason}"),
                        json!({ "addr": addr.to_string(), "reason": reason }),
                    );
                }
            }
            ServerEvent::RoundStarted { missing_blocks } => log(
                "round_started",
                format!("data round started: {missing_blocks} blocks requested"),
                json!({ "missing_blocks": missing_blocks }),
            ),
            ServerEvent::SessionEnded => {}
        }
    }
}

fn dropped(stats: &crate::proto::server::ServerStats) -> u64 {
    stats.dropped_malformed
        + stats.dropped_bad_checksum
        + stats.dropped_bad_security
        + stats.dropped_wrong_session
        + stats.dropped_unknown_client
        + stats.dropped_unexpected
        + stats.dropped_bad_ack
        + stats.dropped_bad_nack
        + stats.dropped_bad_app_data
}
