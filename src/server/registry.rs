//! The session registry both initiation paths share (MS-WDSMSI over UDP, and over the WDS
//! Control Protocol): one session per object and security modes, shared by every client that
//! asks for the same, each on its own group and port; the server's HASH and SIGN keys
//! (MS-WDSMSI 3.1.1.3).
//!
//! A session's packets carry one security header, so clients that need different modes (a
//! UDP or pre-OS client: the checksum; an authenticated one: the configured modes) get
//! different sessions of the same object.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use rand::{Rng, RngCore};
use serde_json::json;

use super::ServerConfig;
use super::content::{ContentError, ContentProvider};
use super::driver::{FileBlockSource, SessionRun, bind_session_socket};
use super::log::Logger;
use crate::proto::server::{ServerSession, SessionConfig};
use crate::proto::{SeedableRng, SmallRng};
use crate::wire::msi::{MsiReply, error_code};
use crate::wire::mt::SecurityType;
use crate::wire::security::{
    Check, HashAlg, HmacKey, KeyError, Protect, SecModes, SigningKey, SymKey, alg, encode_sign_key,
};

/// Win32 ERROR_NO_SYSTEM_RESOURCES: sent when no port or group is free for a new session.
pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
/// Most groups looked at when allocating one.
const MAX_GROUP_CANDIDATES: u128 = 1 << 16;
/// Bytes of the HASH key: a 3DES key, as the MS-WDSMSI 4.1 example's SymKey is.
const HASH_KEY_LEN: usize = 24;

/// What a client asks for, once its request is decoded (and, over RPC, authenticated).
#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    pub namespace: &'a str,
    pub object: &'a str,
    /// The client can receive IPv6 multicast.
    pub ipv6_capable: bool,
    /// The security modes the session must use.
    pub modes: SecModes,
    pub from: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionKey {
    namespace: String,
    path: PathBuf,
    ipv6: bool,
    modes: SecModes,
}

struct SessionEntry {
    key: SessionKey,
    reply: MsiReply,
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The server's packet-security keys (MS-WDSMSI 3.1.1.3 HashKey and SignKey).
pub struct ServerKeys {
    hmac: HmacKey,
    /// `SymKey` as sent to clients.
    sym_key_blob: Vec<u8>,
    /// Made only when a configured mode signs (key generation takes a while).
    signing: Option<Arc<SigningKey>>,
    sign_key_blob: Option<Vec<u8>>,
}

impl ServerKeys {
    /// Fresh keys from the system's random source; an RSA pair of `sign_bits` bits when
    /// `sign` is set.
    pub fn generate(sign: bool, sign_bits: usize) -> Result<ServerKeys, KeyError> {
        let mut key = [0u8; HASH_KEY_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
        // DES keys carry odd parity in each byte's low bit, as CryptoAPI's 3DES keys do.
        for byte in &mut key {
            *byte = (*byte & 0xFE) | u8::from(byte.count_ones() % 2 == 0);
        }
        let sym = SymKey {
            alg: alg::CALG_3DES,
            key: key.to_vec(),
        };
        let signing = sign
            .then(|| SigningKey::generate(&mut rand_core::OsRng, sign_bits, HashAlg::Sha256))
            .transpose()?
            .map(Arc::new);
        Ok(ServerKeys {
            hmac: HmacKey::new(&key, HashAlg::Sha256)?,
            sym_key_blob: sym.encode(),
            sign_key_blob: signing.as_ref().map(|k| encode_sign_key(k.public())),
            signing,
        })
    }

    /// `SymKey`, for a reply whose modes hash or sign.
    pub fn sym_key_blob(&self) -> &[u8] {
        &self.sym_key_blob
    }

    /// `SignKey`, for a reply whose server mode signs.
    pub fn sign_key_blob(&self) -> Option<&[u8]> {
        self.sign_key_blob.as_deref()
    }

    fn protect(&self, mode: SecurityType) -> Protect {
        match (mode, &self.signing) {
            (SecurityType::None, _) => Protect::None,
            (SecurityType::Checksum, _) => Protect::Checksum,
            (SecurityType::Hash, _) => Protect::Hash(self.hmac.clone()),
            (SecurityType::Sign, Some(key)) => Protect::Sign(Arc::clone(key)),
            // Never configured without a key (see `Server::start`); checksum rather than panic.
            (SecurityType::Sign, None) => Protect::Checksum,
        }
    }

    fn check(&self, mode: SecurityType) -> Check {
        match mode {
            SecurityType::None => Check::None,
            SecurityType::Hash | SecurityType::Sign => Check::Hash(self.hmac.clone()),
            SecurityType::Checksum => Check::Checksum,
        }
    }
}

/// The registry, shared by the responder threads.
pub struct Registry {
    state: Mutex<State>,
    keys: ServerKeys,
}

struct State {
    config: ServerConfig,
    content: ContentProvider,
    logger: Logger,
    stop: Arc<AtomicBool>,
    rng: SmallRng,
    sessions: Vec<SessionEntry>,
}

impl Registry {
    pub fn new(
        config: ServerConfig,
        content: ContentProvider,
        logger: Logger,
        stop: Arc<AtomicBool>,
        keys: ServerKeys,
    ) -> Registry {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Registry {
            state: Mutex::new(State {
                config,
                content,
                logger,
                stop,
                rng,
                sessions: Vec::new(),
            }),
            keys,
        }
    }

    /// The served namespaces as (name, folder), for the image list.
    pub fn namespaces(&self) -> Vec<(String, std::path::PathBuf)> {
        self.state().content.namespaces().to_vec()
    }

    pub fn keys(&self) -> &ServerKeys {
        &self.keys
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds or starts the session for a request; the error is the code to send back (it has
    /// been logged).
    pub fn session_for(&self, request: &SessionRequest<'_>) -> Result<MsiReply, u32> {
        let mut state = self.state();
        state.reap();
        state.session_for(request, &self.keys)
    }

    /// Forgets sessions whose thread has ended, so a new request starts a new session.
    pub fn reap(&self) {
        self.state().reap();
    }

    /// Waits for every session thread (after the stop flag is set).
    pub fn join_all(&self) {
        let threads: Vec<JoinHandle<()>> = self
            .state()
            .sessions
            .iter_mut()
            .filter_map(|entry| entry.thread.take())
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl State {
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

    fn session_for(
        &mut self,
        request: &SessionRequest<'_>,
        keys: &ServerKeys,
    ) -> Result<MsiReply, u32> {
        let from = request.from;
        let refuse = |logger: &Logger, event: &str, message: String, code: u32| {
            logger.log(
                event,
                None,
                &format!("refused request from {from}: {message}"),
                json!({ "from": from.to_string(), "namespace": request.namespace,
                        "object": request.object, "reason": message, "code": code }),
            );
            code
        };
        let content = match self.content.resolve(request.namespace, request.object) {
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
        if ipv6 && !request.ipv6_capable {
            return Err(refuse(
                &self.logger,
                "request_refused",
                "the client did not say it can receive IPv6 multicast and this server serves \
                 IPv6 only"
                    .to_string(),
                error_code::INCOMPATIBLE_VERSION,
            ));
        }
        let key = SessionKey {
            namespace: content.namespace.clone(),
            path: content.path.clone(),
            ipv6,
            modes: request.modes,
        };
        if let Some(entry) = self
            .sessions
            .iter()
            .find(|e| e.key == key && !e.finished.load(Ordering::Acquire))
        {
            return Ok(entry.reply.clone());
        }
        self.start_session(key, content.size, request.object, keys)
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
        object: &str,
        keys: &ServerKeys,
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
        session_config.protect = keys.protect(key.modes.server);
        session_config.check = keys.check(key.modes.client);
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
        let session_rng = SmallRng::seed_from_u64(self.rng.next_u64());
        let session = ServerSession::new(session_config, Instant::now(), session_rng);
        let finished = Arc::new(AtomicBool::new(false));
        let run = SessionRun {
            socket,
            session,
            source,
            logger: self.logger.clone(),
            stop: Arc::clone(&self.stop),
            finished: Arc::clone(&finished),
            object: format!("{}:{object}", key.namespace),
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
                "session started for {}:{object} ({size} bytes, {} blocks of {}) on group {group} port {port}, security {}/{}",
                key.namespace,
                reply.total_blocks,
                reply.block_size,
                key.modes.server.name(),
                key.modes.client.name(),
            ),
            json!({ "namespace": key.namespace, "object": object, "path": key.path.display().to_string(),
                    "size": size, "block_size": reply.block_size, "total_blocks": reply.total_blocks,
                    "group": group.to_string(), "port": port,
                    "server_security": key.modes.server.name(),
                    "client_security": key.modes.client.name() }),
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
