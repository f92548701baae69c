//! What a server session is given and what it reports: its parameters, the source of its
//! blocks, its events and its counters.

use std::net::SocketAddr;
use std::time::Duration;

use super::master::RTT_CAP_MS;
use super::{DEFAULT_EXP_MAX_WINDOW, DEFAULT_MAX_WINDOW, KickReason, LeaveReason, MAX_CLIENTS};
use crate::wire::ma;

/// Longest configurable timeout (about a year).
const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);
use crate::wire::security::{Check, Protect};

/// Parameters of one object session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub session_id: u32,
    /// Multicast group and port every multicast packet goes to.
    pub group: SocketAddr,
    pub content_size: u64,
    pub block_size: u32,
    pub total_blocks: u64,
    /// Cap on each of the pending, active and kick lists (at most [`MAX_CLIENTS`]).
    pub max_clients: usize,
    /// ExpMaxWindowSize, packets.
    pub exp_max_window: u64,
    /// MaxWindowSize, packets.
    pub max_window: u64,
    /// The session ends after this long without a valid client packet.
    pub inactivity_timeout: Duration,
    pub client_dead_timeout: Duration,
    /// QCCInterval: period of the QCCs sent in DataState.
    pub qcc_interval: Duration,
    /// Bytes per second on the data path (ODATA + RDATA); `None` = only the window limits.
    pub max_rate: Option<u64>,
    /// Kick (FALLBACK) clients whose progress rate stays below this many bytes per second.
    pub auto_disconnect_below: Option<u64>,
    /// The security header of every packet this server sends (its Server Security Mode).
    pub protect: Protect,
    /// What the clients' packets must carry (their Client Security Mode).
    pub check: Check,
}

impl SessionConfig {
    /// A configuration with the protocol defaults; `total_blocks` follows from the sizes.
    pub fn new(session_id: u32, group: SocketAddr, content_size: u64, block_size: u32) -> Self {
        let block_size = block_size.max(1);
        Self {
            session_id,
            group,
            content_size,
            block_size,
            total_blocks: content_size.div_ceil(u64::from(block_size)),
            max_clients: MAX_CLIENTS,
            exp_max_window: DEFAULT_EXP_MAX_WINDOW,
            max_window: DEFAULT_MAX_WINDOW,
            inactivity_timeout: Duration::from_secs(300),
            client_dead_timeout: Duration::from_secs(60),
            qcc_interval: Duration::from_secs(5),
            max_rate: None,
            auto_disconnect_below: None,
            protect: Protect::Checksum,
            check: Check::Checksum,
        }
    }
    /// The configuration with every value inside what the session can run with: the caps on
    /// the lists and the block size, `total_blocks` recomputed from the sizes, windows of at
    /// least one packet, no zero rate, and timeouts that keep every deadline computable
    /// (`Instant + Duration` must not overflow) and every millisecond value inside its u16
    /// wire field.
    pub(super) fn normalized(mut self) -> Self {
        let config = &mut self;
        config.max_clients = config.max_clients.clamp(1, MAX_CLIENTS);
        config.block_size = config.block_size.clamp(1, ma::MAX_BLOCK_LEN as u32);
        config.total_blocks = config.content_size.div_ceil(u64::from(config.block_size));
        config.exp_max_window = config.exp_max_window.max(1);
        config.max_window = config.max_window.max(config.exp_max_window);
        config.max_rate = config.max_rate.filter(|&r| r > 0);
        config.inactivity_timeout = config.inactivity_timeout.min(MAX_TIMEOUT);
        config.client_dead_timeout = config.client_dead_timeout.min(MAX_TIMEOUT);
        config.qcc_interval = config.qcc_interval.clamp(
            Duration::from_millis(1),
            Duration::from_millis(RTT_CAP_MS / 2),
        );
        self
    }

    /// The length of block `block_number` (the last one may be short).
    pub(super) fn block_len(&self, block_number: u64) -> usize {
        let block_size = u64::from(self.block_size);
        let offset = (block_number - 1).saturating_mul(block_size);
        self.content_size.saturating_sub(offset).min(block_size) as usize
    }
}

/// Where block contents come from.
pub trait BlockSource {
    /// Fills `buf` (exactly the block's length) with block `block_number` (1-based).
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

/// What happened in the session, for logging and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    ClientJoined {
        client_id: u32,
        addr: SocketAddr,
        name: String,
    },
    ClientActive {
        client_id: u32,
    },
    MasterChanged {
        client_id: Option<u32>,
    },
    Progress {
        client_id: u32,
        percent: u8,
        time_in_session: u32,
    },
    ClientLeft {
        client_id: u32,
        reason: LeaveReason,
    },
    ClientKicked {
        client_id: u32,
        reason: KickReason,
    },
    ClientDead {
        client_id: u32,
    },
    JoinRefused {
        addr: SocketAddr,
        reason: String,
    },
    RoundStarted {
        missing_blocks: u64,
    },
    SessionEnded,
}

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub packets_received: u64,
    pub odata_sent: u64,
    pub rdata_sent: u64,
    pub data_bytes_sent: u64,
    pub ncf_sent: u64,
    pub spm_sent: u64,
    pub qcc_sent: u64,
    pub poll_sent: u64,
    pub kick_sent: u64,
    pub joinack_sent: u64,
    pub acks_received: u64,
    pub nacks_received: u64,
    pub rounds_started: u64,
    pub joins_refused: u64,
    /// Pending clients dropped after MaxJoinAckSends JOINACKs without a QCR.
    pub pending_expired: u64,
    pub dropped_malformed: u64,
    pub dropped_bad_checksum: u64,
    pub dropped_bad_security: u64,
    pub dropped_wrong_session: u64,
    pub dropped_unknown_client: u64,
    /// Server-only opcodes, or a packet the client's state does not allow.
    pub dropped_unexpected: u64,
    /// QCR/POLLACK answering an old QCC/POLL, or an ACK from a client that is not the master.
    pub dropped_stale: u64,
    pub dropped_bad_ack: u64,
    pub dropped_bad_nack: u64,
    pub dropped_bad_app_data: u64,
    /// NACKs whose range list was longer than the work cap (only the first ranges were used).
    pub nack_work_capped: u64,
    /// Control packets or events dropped because their queue was full.
    pub queue_overflows: u64,
    pub pending_clients: usize,
    pub active_clients: usize,
    pub kicked_clients: usize,
    pub window: u64,
}
