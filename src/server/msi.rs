//! The MS-WDSMSI UDP responder (server port 5041): decodes requests and answers each with the
//! session the registry finds or starts for it, always with the checksum both ways
//! (MS-WDSMSI 3.1.5.3).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::log::Logger;
use super::registry::{Registry, SessionRequest};
use crate::wire::msi::MsiPacket;
use crate::wire::security::SecModes;

/// How often the responder wakes to check the stop flag and reap ended sessions.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The responder's state; lives on the responder thread.
pub struct Responder {
    registry: Arc<Registry>,
    logger: Logger,
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    /// Refuse every request with this code instead of starting a session (authenticated
    /// initiation required).
    refuse_with: Option<u32>,
    /// Malformed-request logging is limited to one line per second, with a count of the
    /// lines left out, so a flood cannot fill the log.
    bad_logged_at: Option<Instant>,
    bad_suppressed: u64,
}

impl Responder {
    pub fn new(
        registry: Arc<Registry>,
        logger: Logger,
        socket: UdpSocket,
        stop: Arc<AtomicBool>,
        refuse_with: Option<u32>,
    ) -> Self {
        Self {
            registry,
            logger,
            socket,
            stop,
            refuse_with,
            bad_logged_at: None,
            bad_suppressed: 0,
        }
    }

    /// Answers requests until the stop flag is set.
    pub fn run(mut self) {
        let _ = self.socket.set_read_timeout(Some(POLL_INTERVAL));
        let mut buf = vec![0u8; 65536];
        while !self.stop.load(Ordering::Relaxed) {
            self.registry.reap();
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) => {
                    let request = buf[..len].to_vec();
                    self.handle(&request, from);
                }
                Err(e) if crate::sys::is_transient_recv_error(&e) => {}
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
        let session = match self.refuse_with {
            Some(code) => {
                self.logger.log(
                    "request_refused",
                    None,
                    &format!(
                        "refused UDP request from {from} for {:?}/{:?}: this server requires authenticated initiation",
                        request.namespace, request.content
                    ),
                    json!({ "from": from.to_string(), "namespace": request.namespace,
                            "object": request.content, "code": code,
                            "reason": "authentication required" }),
                );
                Err(code)
            }
            None => self.registry.session_for(&SessionRequest {
                namespace: &request.namespace,
                object: &request.content,
                ipv6_capable: request.ipv6_capable == Some(true),
                modes: SecModes::CHECKSUM,
                from,
            }),
        };
        let reply = match session {
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
}
