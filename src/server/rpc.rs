//! The WDS RPC listener: MS-WDSMSI `WDSMC_OP_INITIATE` over the WDS Control Protocol
//! (`WdsRpcMessage`, opnum 0 of WdsRpcInterface) on TCP, authenticated at packet privacy with
//! NTLM against an accounts file and/or Kerberos against a keytab, raw or inside SPNEGO.
//!
//! One thread per connection, at most [`MAX_CONNECTIONS`] at once; each connection has an
//! idle timeout (no complete PDU for [`IDLE_TIMEOUT`] by default, so a peer trickling bytes
//! is closed too) and the RPC machine bounds its fragments and reassembly, so a bad connection
//! costs one thread for a while and never disturbs another connection or a running session.
//! Authentication failures are answered (bind_nak or fault) before the connection closes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::TryRngCore;
use serde_json::json;

use super::log::Logger;
use super::registry::{Registry, SessionRequest};
use crate::auth::kerberos::gss::{
    AUTH_TYPE_KERBEROS, AcceptorConfig, KerberosAcceptor, KerberosServer,
};
use crate::auth::{
    AUTH_TYPE_NTLM, AUTH_TYPE_SPNEGO, AccountStore, Accounts, NtlmServer,
    ServerConfig as NtlmConfig, SpnegoServer,
};
use crate::rpc::pdu::status;
use crate::rpc::security::ServerAuth;
use crate::rpc::server::{AuthFactory, Server as RpcServer, ServerConfig, ServerEvent};
use crate::rpc::stub;
use crate::wire::msi::error_code;
use crate::wire::mt::SecurityType;
use crate::wire::security::{SecModes, alg};
use crate::wire::wdsc::{
    ImageEnumReply, ImageEnumRequest, InitiateReply, InitiateRequest, OS_DEPLOYMENT_ENDPOINT_GUID,
    WdscPacket, cap, encode_error_reply, encode_images_error_reply,
};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection that completes no PDU for this long is closed (the default of
/// `RpcConfig::idle_timeout`). Bytes alone do not count: a client sending one byte a second
/// would otherwise hold a connection for over an hour per 4280-byte fragment.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection lives, however busy: initiation takes a handful of PDUs, so a peer
/// that keeps one open with a small PDU every few seconds cannot hold a slot for ever.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// NetBIOS names the NTLM CHALLENGE announces.
const COMPUTER: &str = "WDSMC";
const DOMAIN: &str = "WDSMC";

/// What authenticated initiation needs from the server's configuration.
#[derive(Clone)]
pub struct RpcSettings {
    pub accounts: Arc<Accounts>,
    /// Server and client modes for authenticated clients that are not pre-OS.
    pub modes: SecModes,
    pub allow_anonymous: bool,
    /// See [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Kerberos (raw, auth type 0x10, and inside SPNEGO) with a keytab.
    pub kerberos: Option<Arc<AcceptorConfig>>,
}

pub struct RpcListener {
    listener: TcpListener,
    registry: Arc<Registry>,
    settings: RpcSettings,
    logger: Logger,
    stop: Arc<AtomicBool>,
}

impl RpcListener {
    /// `listener` blocks in accept; whoever sets `stop` must wake it with [`wake`].
    pub fn new(
        listener: TcpListener,
        registry: Arc<Registry>,
        settings: RpcSettings,
        logger: Logger,
        stop: Arc<AtomicBool>,
    ) -> io::Result<RpcListener> {
        Ok(RpcListener {
            listener,
            registry,
            settings,
            logger,
            stop,
        })
    }

    /// Accepts connections until the stop flag is set, then waits for their threads.
    pub fn run(self) {
        let open = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                // The wake-up connection after a stop (see `wake`).
                Ok(_) if self.stop.load(Ordering::Relaxed) => break,
                Ok((stream, from)) => {
                    if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        self.logger.log(
                            "rpc_refused",
                            None,
                            &format!("closed RPC connection from {from}: {MAX_CONNECTIONS} connections are open"),
                            json!({ "from": from.to_string(), "reason": "too many connections" }),
                        );
                        continue;
                    }
                    open.fetch_add(1, Ordering::SeqCst);
                    let connection = ConnectionRun {
                        stream,
                        from,
                        registry: Arc::clone(&self.registry),
                        settings: self.settings.clone(),
                        logger: self.logger.clone(),
                        stop: Arc::clone(&self.stop),
                    };
                    let count = Arc::clone(&open);
                    let spawned = std::thread::Builder::new()
                        .name("wdsmc-rpc-conn".into())
                        .spawn(move || {
                            connection.run();
                            count.fetch_sub(1, Ordering::SeqCst);
                        });
                    match spawned {
                        Ok(thread) => threads.push(thread),
                        Err(_) => {
                            open.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    threads.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
                }
                Err(e) if crate::sys::is_transient_recv_error(&e) => {}
                Err(e) => {
                    self.logger.log(
                        "socket_error",
                        None,
                        &format!("RPC accept failed: {e}"),
                        json!({ "error": e.to_string() }),
                    );
                    std::thread::sleep(POLL);
                }
            }
        }
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Wakes a listener blocked in accept (after its stop flag is set) by connecting to it.
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// One client connection.
struct ConnectionRun {
    stream: TcpStream,
    from: SocketAddr,
    registry: Arc<Registry>,
    settings: RpcSettings,
    logger: Logger,
    stop: Arc<AtomicBool>,
}

impl ConnectionRun {
    fn run(mut self) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_nodelay(true);
        let _ = self.stream.set_read_timeout(Some(POLL));
        let port = self.stream.local_addr().map(|a| a.port()).unwrap_or(0);
        let config = ServerConfig {
            secondary_address: port.to_string(),
            ..ServerConfig::default()
        };
        let mut machine = RpcServer::new(config, Some(self.factory()));
        let mut buf = vec![0u8; 16 * 1024];
        let idle_timeout = self.settings.idle_timeout;
        let opened = Instant::now();
        let mut last_pdu = opened;
        let mut user: Option<String> = None;
        loop {
            while let Some(bytes) = machine.poll_transmit() {
                if self.stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            let mut answered_any = false;
            while let Some(event) = machine.poll_event() {
                answered_any = true;
                match event {
                    ServerEvent::Bound { user: who } => user = who,
                    ServerEvent::Request {
                        call_id,
                        opnum,
                        stub,
                    } => {
                        let who = user.clone().unwrap_or_default();
                        let answered = match opnum {
                            0 => match self.answer(&stub, &who) {
                                Ok(reply) => machine.respond(call_id, &reply),
                                Err(fault) => machine.fault(call_id, fault),
                            },
                            _ => machine.fault(call_id, status::OP_RNG_ERROR),
                        };
                        if answered.is_err() {
                            return;
                        }
                    }
                    ServerEvent::Closed => return,
                    ServerEvent::Error(error) => {
                        self.logger.log(
                            "rpc_error",
                            None,
                            &format!("RPC connection from {}: {error}", self.from),
                            json!({ "from": self.from.to_string(), "error": error.to_string(),
                                    "user": user }),
                        );
                        // What the machine still holds (a bind_nak or fault) goes out first.
                        while let Some(bytes) = machine.poll_transmit() {
                            if self.stream.write_all(&bytes).is_err() {
                                break;
                            }
                        }
                        let _ = self.stream.flush();
                        return;
                    }
                }
            }
            if machine.is_closed() || self.stop.load(Ordering::Relaxed) {
                return;
            }
            if answered_any {
                // Answers queued while handling events go out before the next read waits.
                continue;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => machine.handle_eof(),
                Ok(n) => {
                    let before = machine.pdus_received();
                    machine.handle_bytes(&buf[..n]);
                    if machine.pdus_received() != before {
                        last_pdu = Instant::now();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
            if opened.elapsed() >= MAX_CONNECTION_AGE {
                self.logger.log(
                    "rpc_idle",
                    None,
                    &format!(
                        "closed RPC connection from {}: open for {}",
                        self.from,
                        humantime::format_duration(MAX_CONNECTION_AGE)
                    ),
                    json!({ "from": self.from.to_string(), "user": user,
                            "max_age_ms": MAX_CONNECTION_AGE.as_millis() as u64 }),
                );
                return;
            }
            // Checked after every read, not only when one times out: a trickle of bytes never
            // lets a read time out.
            if last_pdu.elapsed() >= idle_timeout {
                self.logger.log(
                    "rpc_idle",
                    None,
                    &format!(
                        "closed RPC connection from {}: no complete PDU for {}",
                        self.from,
                        humantime::format_duration(idle_timeout)
                    ),
                    json!({ "from": self.from.to_string(), "user": user,
                            "idle_timeout_ms": idle_timeout.as_millis() as u64,
                            "state": machine.state_name() }),
                );
                return;
            }
        }
    }

    /// A fresh acceptor per offered auth type: raw NTLM, SPNEGO (Kerberos with a keytab,
    /// NTLM with accounts) and raw Kerberos with a keytab.
    fn factory(&self) -> AuthFactory {
        let accounts: Arc<dyn AccountStore> = self.settings.accounts.clone();
        let serve_ntlm = !self.settings.accounts.is_empty() || self.settings.allow_anonymous;
        let allow_anonymous = self.settings.allow_anonymous;
        let kerberos = self.settings.kerberos.clone();
        Box::new(move |auth_type| {
            let mut config = NtlmConfig::new(COMPUTER, DOMAIN);
            config.allow_anonymous = allow_anonymous;
            // Server challenges, keys and sequence numbers must be unpredictable: the
            // system's generator.
            let mut rng = rand::rngs::OsRng.unwrap_err();
            let now = SystemTime::now();
            let ntlm =
                serve_ntlm.then(|| NtlmServer::new(Arc::clone(&accounts), config, &mut rng, now));
            let unix = now
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let krb = kerberos.as_ref().map(|k| {
                KerberosAcceptor::new(
                    Arc::clone(k),
                    unix,
                    Box::new(rand::rngs::OsRng.unwrap_err()),
                )
            });
            let auth: Box<dyn ServerAuth> = match (auth_type, ntlm, krb) {
                (AUTH_TYPE_NTLM, Some(ntlm), _) => Box::new(ntlm),
                (AUTH_TYPE_SPNEGO, ntlm, krb) if ntlm.is_some() || krb.is_some() => {
                    Box::new(SpnegoServer::with(ntlm, krb))
                }
                (AUTH_TYPE_KERBEROS, _, Some(krb)) => Box::new(KerberosServer::new(krb)),
                _ => return None,
            };
            Some(auth)
        })
    }

    /// The `WdsRpcMessage` reply stub for one request stub, or the fault to send.
    fn answer(&self, request_stub: &[u8], user: &str) -> Result<Vec<u8>, u32> {
        let packet =
            stub::decode_message_request(request_stub).map_err(|_| status::BAD_STUB_DATA)?;
        if WdscPacket::decode(packet).is_ok_and(|p| p.endpoint == OS_DEPLOYMENT_ENDPOINT_GUID) {
            let reply = self.images(packet, user);
            return stub::encode_message_response(Some(&reply), 0)
                .map_err(|_| status::BAD_STUB_DATA);
        }
        let reply = match InitiateRequest::decode(packet) {
            Ok(request) => self.initiate(&request, user),
            Err(error) => {
                self.logger.log(
                    "bad_request",
                    None,
                    &format!("bad WDSC request from {} ({user}): {error}", self.from),
                    json!({ "from": self.from.to_string(), "user": user, "error": error.to_string() }),
                );
                encode_error_reply(error_code::INCOMPATIBLE_VERSION)
            }
        };
        stub::encode_message_response(Some(&reply), 0).map_err(|_| status::BAD_STUB_DATA)
    }

    /// MS-WDSOSD 3.1.5.6: the images of every namespace, in the version 1 list (the server
    /// does not announce SERVER_CAP_SUPPORT_V2, so it sends no `SC`), no filter options.
    fn images(&self, packet: &[u8], user: &str) -> Vec<u8> {
        let request = match ImageEnumRequest::decode(packet) {
            Ok(request) => request,
            Err(error) => {
                self.logger.log(
                    "bad_request",
                    None,
                    &format!("bad image enumeration from {} ({user}): {error}", self.from),
                    json!({ "from": self.from.to_string(), "user": user, "error": error.to_string() }),
                );
                // ERROR_INVALID_PARAMETER
                return encode_images_error_reply(87);
            }
        };
        let images: Vec<_> = self
            .registry
            .namespaces()
            .iter()
            .flat_map(|(name, root)| super::images::namespace_images(name, root))
            .collect();
        self.logger.log(
            "rpc_images",
            None,
            &format!(
                "{user} from {} enumerated images: {} offered",
                self.from,
                images.len()
            ),
            json!({ "from": self.from.to_string(), "user": user, "images": images.len(),
                    "client_caps": request.client_caps }),
        );
        ImageEnumReply {
            options: Some(0),
            server_caps: None,
            images,
        }
        .encode()
        .unwrap_or_else(|_| encode_images_error_reply(87))
    }

    /// MS-WDSMSI 3.1.5.2: the modes (pre-OS clients get the checksum both ways), the Cap
    /// check, the session, and a reply carrying the keys the modes need, SecMode and UserSid.
    fn initiate(&self, request: &InitiateRequest, user: &str) -> Vec<u8> {
        let caps = request.cap.unwrap_or(0);
        let pre_os = caps & cap::BOOT_DEVICE != 0;
        let modes = if pre_os {
            SecModes::CHECKSUM
        } else {
            self.settings.modes
        };
        let uses_checksum =
            modes.client == SecurityType::Checksum || modes.server == SecurityType::Checksum;
        if uses_checksum && caps & cap::CHECKSUM == 0 {
            self.logger.log(
                "request_refused",
                None,
                &format!(
                    "refused RPC request from {} ({user}): checksum mode without Cap CHECKSUM",
                    self.from
                ),
                json!({ "from": self.from.to_string(), "user": user, "cap": caps,
                        "code": error_code::CLIENT_DOESNOT_SUPPORT_SECURITY_MODE }),
            );
            return encode_error_reply(error_code::CLIENT_DOESNOT_SUPPORT_SECURITY_MODE);
        }
        let session = self.registry.session_for(&SessionRequest {
            namespace: &request.namespace,
            object: &request.content,
            ipv6_capable: caps & cap::IPV6 != 0,
            modes,
            from: self.from,
        });
        let session = match session {
            Ok(session) => session,
            Err(code) => return encode_error_reply(code),
        };
        let keys = self.registry.keys();
        let hashes = [modes.client, modes.server]
            .iter()
            .any(|m| matches!(m, SecurityType::Hash | SecurityType::Sign));
        let signs = modes.server == SecurityType::Sign;
        self.logger.log(
            "rpc_initiate",
            Some(session.session_id),
            &format!(
                "{user} from {} initiated {}:{} over RPC, security {}/{}",
                self.from,
                request.namespace,
                request.content,
                modes.server.name(),
                modes.client.name()
            ),
            json!({ "from": self.from.to_string(), "user": user, "namespace": request.namespace,
                    "object": request.content, "pre_os": pre_os,
                    "server_security": modes.server.name(),
                    "client_security": modes.client.name() }),
        );
        InitiateReply {
            multicast_addr: session.multicast_addr,
            server_addr: session.server_addr,
            port: session.server_port,
            session_id: session.session_id,
            content_size: session.content_size,
            block_size: session.block_size,
            total_blocks: session.total_blocks,
            content_metadata: None,
            sym_key: hashes.then(|| keys.sym_key_blob().to_vec()),
            sign_key: signs
                .then(|| keys.sign_key_blob().map(<[u8]>::to_vec))
                .flatten(),
            hash_alg_id: hashes.then_some(alg::CALG_SHA_256),
            hmac_alg_id: hashes.then_some(alg::CALG_HMAC),
            sec_mode: Some(modes.to_u32()),
            user_sid: Some(user_sid(user)),
        }
        .encode()
    }
}

/// A stable SID for an account (MS-DTYP 2.4.2 binary form): S-1-5-21-a-b-c-RID, with the
/// sub-authorities drawn from the name, or S-1-5-7 (ANONYMOUS LOGON) for anonymous.
fn user_sid(user: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut sid = vec![1u8];
    if user.is_empty() || user == crate::auth::ntlm::server::ANONYMOUS_USER {
        sid.push(1);
        sid.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
        sid.extend_from_slice(&7u32.to_le_bytes());
        return sid;
    }
    let digest = Sha256::digest(user.to_uppercase().as_bytes());
    sid.push(5);
    sid.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
    sid.extend_from_slice(&21u32.to_le_bytes());
    for chunk in digest.chunks(4).take(3) {
        sid.extend_from_slice(chunk);
    }
    let rid =
        1000 + (u32::from_le_bytes([digest[12], digest[13], digest[14], digest[15]]) % 10_000);
    sid.extend_from_slice(&rid.to_le_bytes());
    sid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_well_formed_and_stable() {
        let sid = user_sid("WDS\\alice");
        assert_eq!(sid.len(), 8 + 5 * 4);
        assert_eq!(&sid[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(sid, user_sid("wds\\ALICE"));
        assert_ne!(sid, user_sid("WDS\\bob"));
        assert_eq!(user_sid(""), vec![1, 1, 0, 0, 0, 0, 0, 5, 7, 0, 0, 0]);
    }
}
