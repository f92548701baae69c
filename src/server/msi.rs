//! The MS-WDSMSI UDP responder and the session registry: one session per object (shared by
//! every client that asks for it), each on its own group and port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use super::ServerConfig;
use super::content::{ContentError, ContentProvider};
use super::driver::{FileBlockSource, SessionRun, bind_session_socket};
use super::log::Logger;
use crate::proto::SeedableRng;
use crate::proto::SmallRng;
use crate::proto::server::{ServerSession, SessionConfig};
use crate::wire::msi::{MsiPacket, MsiReply, MsiRequest, error_code};

/// Win32 ERROR_NO_SYSTEM_RESOURCES: sent when no port or group is free for a new session.
pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
/// How often the responder wakes to check the stop flag and reap ended sessions.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Most groups looked at when allocating one.
const MAX_GROUP_CANDIDATES: u128 = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionKey {
    namespace: String,
    path: PathBuf,
    ipv6: bool,
}

struct SessionEntry {
    key: SessionKey,
    reply: MsiReply,
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The responder's state; lives on the responder thread.
pub struct Responder {
    config: ServerConfig,
    content: ContentProvider,
    logger: Logger,
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    rng: SmallRng,
    sessions: Vec<SessionEntry>,
    /// Malformed-request logging is limited to one line per second, with a count of the
    /// lines left out, so a flood cannot fill the log.
    bad_logged_at: Option<Instant>,
    bad_suppressed: u64,
}

impl Responder {
    pub fn new(
        config: ServerConfig,
        content: ContentProvider,
        logger: Logger,
        socket: UdpSocket,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Self {
            config,
            content,
            logger,
            socket,
            stop,
            rng,
            sessions: Vec::new(),
            bad_logged_at: None,
            bad_suppressed: 0,
        }
    }

    /// Answers requests until the stop flag is set, then stops every session and waits for
    /// their threads.
    pub fn run(mut self) {
        let _ = self.socket.set_read_timeout(Some(POLL_INTERVAL));
        let mut buf = vec![0u8; 65536];
        while !self.stop.load(Ordering::Relaxed) {
            self.reap();
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) => {
                    let request = buf[..len].to_vec();
                    self.handle(&request, from);
                }
                Err(e) if crate::net::is_transient_recv_error(&e) => {}
                Err(e) => {
                    self.logger.log(
                        "socket_error",
                        None,
                        &format!("MSI receive failed: {e}"),
                        json!({ "error": e.to_string() }),
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        for entry in &mut self.sessions {
            if let Some(thread) = entry.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Forgets sessions whose thread has ended, so a new request starts a new session.
    fn reap(&mut self) {
        self.sessions.retain_mut(|entry| {
            if entry.finished.load(Ordering::Acquire) {
                if let Some(thread) = entry.thread.take() {
                    let _ = thread.join();
                }
                false
            } else {
                true
            }
        });
    }

    fn handle(&mut self, bytes: &[u8], from: SocketAddr) {
        let request = match MsiPacket::decode(bytes) {
            Ok(MsiPacket::Request(request)) => request,
            Ok(_) => {
                self.log_bad_request(from, "not a request".to_string());
                return;
            }
            Err(e) => {
                self.log_bad_request(from, e.to_string());
                return;
            }
        };
        let reply = match self.session_for(&request, from) {
            Ok(reply) => MsiPacket::Reply(reply),
            Err(code) => MsiPacket::Error { code },
        };
        if let Err(e) = self.socket.send_to(&reply.encode(), from) {
            self.logger.log(
                "send_error",
                None,
                &format!("MSI reply to {from} failed: {e}"),
                json!({ "to": from.to_string(), "error": e.to_string() }),
            );
        }
    }

    fn log_bad_request(&mut self, from: SocketAddr, error: String) {
        let now = Instant::now();
        if self
            .bad_logged_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.bad_suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.bad_suppressed);
        self.bad_logged_at = Some(now);
        self.logger.log(
            "bad_request",
            None,
            &format!(
                "ignored a bad MSI packet from {from}: {error} ({suppressed} more since the last report)"
            ),
            json!({ "from": from.to_string(), "error": error, "suppressed": suppressed }),
        );
    }

    /// Finds or starts the session for a request; the error is the code to send back.
    fn session_for(&mut self, request: &MsiRequest, from: SocketAddr) -> Result<MsiReply, u32> {
        let refuse = |logger: &Logger, event: &str, message: String, code: u32| {
            logger.log(
                event,
                None,
                &format!("refused request from {from}: {message}"),
                json!({ "from": from.to_string(), "namespace": request.namespace,
                        "object": request.content, "reason": message, "code": code }),
            );
            code
        };
        let content = match self.content.resolve(&request.namespace, &request.content) {
            Ok(content) => content,
            Err(e @ ContentError::NamespaceNotFound(_)) => {
                return Err(refuse(
                    &self.logger,
                    "request_refused",
                    e.to_string(),
                    error_code::NAMESPACE_NOT_FOUND,
                ));
            }
            Err(e @ ContentError::Escape { .. }) => {
                return Err(refuse(
                    &self.logger,
                    "path_escape",
                    e.to_string(),
                    error_code::CONTENT_NOT_FOUND,
                ));
            }
            Err(e @ ContentError::ContentNotFound { .. }) => {
                return Err(refuse(
                    &self.logger,
                    "request_refused",
                    e.to_string(),
                    error_code::CONTENT_NOT_FOUND,
                ));
            }
        };
        let ipv6 = self.config.listen.is_ipv6();
        if ipv6 && request.ipv6_capable != Some(true) {
            return Err(refuse(
                &self.logger,
                "request_refused",
                "the client did not say it can receive IPv6 multicast (IPV6_CAPABLE) and this \
                 server serves IPv6 only"
                    .to_string(),
                error_code::INCOMPATIBLE_VERSION,
            ));
        }
        let key = SessionKey {
            namespace: content.namespace.clone(),
            path: content.path.clone(),
            ipv6,
        };
        if let Some(entry) = self
            .sessions
            .iter()
            .find(|e| e.key == key && !e.finished.load(Ordering::Acquire))
        {
            return Ok(entry.reply.clone());
        }
        let object = request.content.clone();
        self.start_session(key, content.size, object)
            .map_err(|message| {
                refuse(
                    &self.logger,
                    "request_refused",
                    message,
                    ERROR_NO_SYSTEM_RESOURCES,
                )
            })
    }

    fn start_session(
        &mut self,
        key: SessionKey,
        size: u64,
        object: String,
    ) -> Result<MsiReply, String> {
        let group = self
            .free_group(key.ipv6)
            .ok_or_else(|| "every multicast group of the configured range is in use".to_string())?;
        let (socket, port) = self.bind_free_port()?;
        let source = FileBlockSource::open(&key.path, self.config.block_size)
            .map_err(|e| format!("cannot open {}: {e}", key.path.display()))?;
        let session_id = loop {
            let id: u32 = self.rng.random();
            if id != 0 && !self.sessions.iter().any(|e| e.reply.session_id == id) {
                break id;
            }
        };
        let mut session_config = SessionConfig::new(
            session_id,
            SocketAddr::new(group, port),
            size,
            self.config.block_size,
        );
        session_config.inactivity_timeout = self.config.session_inactivity;
        session_config.max_rate = self.config.max_rate;
        session_config.auto_disconnect_below = self.config.auto_disconnect_below;
        let reply = MsiReply {
            multicast_addr: group,
            server_addr: self.config.listen,
            multicast_port: port,
            server_port: port,
            content_size: size,
            block_size: self.config.block_size,
            total_blocks: session_config.total_blocks,
            session_id,
        };
        let session_rng = SmallRng::seed_from_u64(self.rng.random());
        let session = ServerSession::new(session_config, Instant::now(), session_rng);
        let finished = Arc::new(AtomicBool::new(false));
        let run = SessionRun {
            socket,
            session,
            source,
            logger: self.logger,
            stop: Arc::clone(&self.stop),
            finished: Arc::clone(&finished),
            object: format!("{}:{}", key.namespace, object),
            refusals_logged: Default::default(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("wdsmc-session-{session_id:08x}"))
            .spawn(move || run.run())
            .map_err(|e| format!("cannot start a session thread: {e}"))?;
        self.logger.log(
            "session_started",
            Some(session_id),
            &format!(
                "session started for {}:{object} ({size} bytes, {} blocks of {}) on group {group} port {port}",
                key.namespace, reply.total_blocks, reply.block_size
            ),
            json!({ "namespace": key.namespace, "object": object, "path": key.path.display().to_string(),
                    "size": size, "block_size": reply.block_size, "total_blocks": reply.total_blocks,
                    "group": group.to_string(), "port": port }),
        );
        self.sessions.push(SessionEntry {
            key,
            reply: reply.clone(),
            finished,
            thread: Some(thread),
        });
        Ok(reply)
    }

    fn bind_free_port(&self) -> Result<(UdpSocket, u16), String> {
        let (low, high) = self.config.port_range;
        let mut last_error = None;
        for port in low..=high {
            if self.sessions.iter().any(|e| e.reply.server_port == port) {
                continue;
            }
            match bind_session_socket(self.config.listen, port, self.config.ttl) {
                Ok(socket) => return Ok((socket, port)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => format!("no free UDP port in {low}-{high} (last error: {e})"),
            None => format!("every port in {low}-{high} is used by a session"),
        })
    }

    fn free_group(&self, ipv6: bool) -> Option<IpAddr> {
        let in_use = |ip: IpAddr| self.sessions.iter().any(|e| e.reply.multicast_addr == ip);
        if ipv6 {
            let (base, prefix) = self.config.group_range_v6?;
            let base = u128::from(base);
            let size = 1u128
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(u128::MAX);
            let mask = size.wrapping_sub(1);
            (1..size.min(MAX_GROUP_CANDIDATES))
                .map(|offset| IpAddr::V6(Ipv6Addr::from((base & !mask) | offset)))
                .find(|ip| !in_use(*ip))
        } else {
            let (base, prefix) = self.config.group_range_v4;
            let base = u32::from(base);
            let size = 1u64 << (32 - u32::from(prefix.min(32)));
            let mask = (size - 1) as u32;
            // Skip the range's first address (often the network's own) unless it is all.
            let first = if size > 1 { 1 } else { 0 };
            (first..size.min(MAX_GROUP_CANDIDATES as u64))
                .map(|offset| IpAddr::V4(Ipv4Addr::from((base & !mask) | offset as u32)))
                .find(|ip| !in_use(*ip))
        }
    }
}
