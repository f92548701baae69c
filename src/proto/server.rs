//! Sans-IO server for one object session: MS-WDSMT §3.1 (transport) and MS-WDSMA §3.1
//! (application) together.
//!
//! The transport runs PreStart -> QCC -> Data (MS-WDSMT §3.1.3): JOIN/JOINACK admission,
//! QCC rounds electing the master client (highest RTT), SPM heartbeats, ODATA limited by the
//! window the master's ACKs open, NACK -> NCF + RDATA, the Data Packet List cleanup, KICK,
//! client-dead and inactivity timers. The application layer runs query rounds (POLL with
//! SRVCIR, CNTCIR collection, the 30-second rule, merged missing ranges) and data rounds.
//!
//! Where the spec is silent or self-contradictory this server (each with its row in README.md's
//! Protocol notes):
//! * skips ClientId 0 (the "no master" value) and ids in use when NextClientId wraps
//!   (README.md#pn-server-client-ids);
//! * answers a repeated JOIN from the same address with the same ClientId (clients repeat
//!   JOIN every 500 ms until a JOINACK arrives) and sends at most 1 + 3 JOINACKs
//!   (README.md#pn-server-repeated-join);
//! * takes no RTT from voluntary QCRs (QCCSeqNo 0 carries no usable ServerTime,
//!   README.md#pn-server-voluntary-qcr);
//! * never lets the QCC wait drop below 50 ms, so thread scheduling cannot starve elections
//!   (README.md#pn-server-qcc-wait);
//! * announces Trail = MCLead when the Data Packet List is empty, so that a client's
//!   highest-continuous ACK stays inside [MCTrail, MCLead] (README.md#pn-server-empty-trail);
//! * treats a master ACK below MCTrail as proof of life that opens no window
//!   (README.md#pn-server-old-ack);
//! * drops a NACK naming anything beyond MCLead (never sent) and caps the work per NACK
//!   (README.md#pn-server-nack-bounds);
//! * hands blocks from the application to the transport lazily and raises Data Empty when a
//!   round's blocks are all sent and acknowledged by the master (or purged)
//!   (README.md#pn-server-lazy-blocks);
//! * polls about once a second when no client needs data, instead of every 200 ms
//!   (README.md#pn-server-query-rounds).
//!
//! Memory stays bounded whatever peers send: every list is capped, the Data Packet List holds
//! only (block, sequence number, times) per entry and blocks are re-read from the
//! [`BlockSource`] on every (re)send, and the application hands blocks to the transport lazily
//! (one at a time, when the window allows) instead of queueing a whole round at once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{SmallRng, millis_since};
use crate::wire::block::BlockHeader;
use crate::wire::ma::{self, BlockRange, CntCir, MaPacket};
use crate::wire::mt::{self, Body, Packet, Security};
use crate::wire::security::{Check, Protect};

pub use crate::wire::mt::{KickReason, LeaveReason};

#[cfg(test)]
mod tests;

/// Most clients any one list (pending, active, kick) holds (MS-WDSMT §3.1.1.2).
pub const MAX_CLIENTS: usize = 200;
/// Window sizes, in packets. The spec leaves them to the implementation. On a LAN the
/// round trip is well under a millisecond, so the window mostly bounds the burst a slow or
/// lossy receiver must absorb: 64 packets (512 KiB at 8 KiB blocks) is reached within a
/// handful of ACKs and already covers a gigabit link's bandwidth-delay product, and growth of
/// about a quarter per round trip up to 1024 packets (8 MiB) lets a fast LAN run without
/// stalling on ACK timing, while a queue building toward the master (x7/8 per round trip) or
/// congestion loss (x3/4) pulls it back; see `adjust_window` and `on_nack`
/// (README.md#pn-server-windows).
pub const DEFAULT_EXP_MAX_WINDOW: u64 = 64;
/// See [`DEFAULT_EXP_MAX_WINDOW`].
pub const DEFAULT_MAX_WINDOW: u64 = 1024;

const JOIN_ACK_TO_QCR_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_JOIN_ACK_SENDS: u32 = 3;
const POLL_BACKOFF_MS: u16 = 200;
const KICK_INTERVAL: Duration = Duration::from_secs(15);
/// A kicked client that keeps talking gets its KICK by unicast at most this often
/// (README.md#pn-server-kick).
const KICK_ECHO_INTERVAL: Duration = Duration::from_secs(1);
const NO_CLIENT_QCC_INTERVAL_MS: u64 = 500;
const SPM_INTERVAL_MS: u64 = 220;
const CLEANUP_DATA_LIST_INTERVAL: Duration = Duration::from_millis(200);
/// Acknowledged packets stay retransmittable at least this long (§3.1.6.7).
const CLEANUP_MIN_AGE: Duration = Duration::from_millis(1000);
const MAX_NO_RESPONSE_SPM: u32 = 5;
/// CNTCIRs from clients that joined more than this after the oldest one are left for the next
/// round (MS-WDSMA §3.1.6.1).
const LATE_JOIN_SECS: u32 = 30;
/// Deviation: the spec's QCC wait is 1 ms per client plus the highest RTT; real hosts schedule
/// threads too coarsely for a 2 ms window, so the wait never drops below this.
const QCC_MIN_WAIT_MS: u64 = 50;
/// Shortest time a master keeps its role before a NACK can move it to another client.
const MIN_MASTER_TENURE: Duration = Duration::from_secs(5);
/// Pause between query rounds when no client needs data (or none answered).
const IDLE_QUERY_INTERVAL: Duration = Duration::from_secs(1);
/// Unanswered query rounds repeated at once before the server falls back to
/// [`IDLE_QUERY_INTERVAL`] (three lost POLLs in a row are rare even at 5 % loss;
/// README.md#pn-server-query-rounds).
const MAX_QUICK_REQUERIES: u32 = 3;
const CLIENT_CLEANUP_INTERVAL: Duration = Duration::from_secs(1);
/// Work caps per NACK: ranges looked at and retransmissions queued.
const MAX_NACK_RANGES_PROCESSED: usize = 64;
const MAX_RDATA_PER_NACK: u64 = 1024;
const MAX_RDATA_QUEUE: usize = 4096;
const MAX_CONTROL_QUEUE: usize = 1024;
const MAX_EVENTS: usize = 4096;
/// Hard cap on the Data Packet List; new ODATA waits while it is full. Entries must stay at
/// least [`CLEANUP_MIN_AGE`] (and cleanup runs every 200 ms), so the cap bounds the rate:
/// 2^18 entries of 8 KiB blocks allow about 1.7 GB/s, at 48 bytes an entry (12 MiB) when full
/// (README.md#pn-server-data-packet-list).
const MAX_DATA_PACKET_LIST: usize = 1 << 18;
const KICK_ENTRIES_PER_PACKET: usize = MAX_CLIENTS;
const AUTO_DISCONNECT_GRACE_SECS: u32 = 10;
/// A client must stay below `auto_disconnect_below` this long before it is kicked.
const AUTO_DISCONNECT_SUSTAIN: Duration = Duration::from_secs(5);
/// RTT fields are u16 milliseconds on the wire.
const RTT_CAP_MS: u64 = u16::MAX as u64;
/// Longest configurable timeout (about a year).
const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);
/// Burst the token bucket allows after an idle period.
const PACING_BURST: Duration = Duration::from_millis(20);
/// Queueing delay (master RTT above its recent minimum) above which the window shrinks
/// instead of growing: enough to keep a gigabit bottleneck busy (1.25 MB queued), far below
/// what a switch, a rate limiter or a receiver's 8 MiB socket buffer holds before dropping
/// (README.md#pn-server-queueing-delay).
const QUEUE_DELAY_TARGET_MS: u64 = 10;
/// The minimum RTT is the lowest of this period and the previous one, so a changed path is
/// learned within two periods.
const MIN_RTT_PERIOD: Duration = Duration::from_secs(10);
/// A NACK shrinks the window when the path is queueing or the master loses more than this
/// share of packets; below it, loss is taken as random (a noisy link), not congestion.
const LOSS_CUT_THRESHOLD: f64 = 0.10;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MtState {
    PreStart,
    Qcc,
    Data,
}

#[derive(Debug)]
struct Client {
    client_id: u32,
    addr: SocketAddr,
    client_time: u64,
    last_update: Instant,
    rtt_ms: u64,
    loss_rate: f64,
    kick_reason: KickReason,
    join_ack_sends: u32,
    join_ack_due: Instant,
    qcr_received: bool,
    /// Since when the progress rate has been below `auto_disconnect_below`.
    slow_since: Option<Instant>,
    /// When a kicked client last got its KICK again by unicast (see `echo_kick`).
    kick_echoed_at: Option<Instant>,
}

/// Queueing delay on the path to the master: its RTT above the lowest seen recently.
#[derive(Debug, Clone, Copy)]
struct DelayMonitor {
    current_min_ms: u64,
    previous_min_ms: u64,
    period_start: Instant,
    /// Queueing delay of the last sample.
    queueing_ms: u64,
}

impl DelayMonitor {
    fn new(now: Instant) -> Self {
        Self {
            current_min_ms: u64::MAX,
            previous_min_ms: u64::MAX,
            period_start: now,
            queueing_ms: 0,
        }
    }

    fn sample(&mut self, now: Instant, rtt_ms: u64) {
        if now.saturating_duration_since(self.period_start) >= MIN_RTT_PERIOD {
            self.previous_min_ms = self.current_min_ms;
            self.current_min_ms = u64::MAX;
            self.period_start = now;
        }
        self.current_min_ms = self.current_min_ms.min(rtt_ms);
        let base = self.current_min_ms.min(self.previous_min_ms);
        self.queueing_ms = rtt_ms.saturating_sub(base);
    }
}

/// One Data Packet List entry: the block is re-read on every (re)send.
#[derive(Debug, Clone, Copy)]
struct DataEntry {
    seq: u64,
    block_number: u64,
    created: Instant,
    last_send: Instant,
}

#[derive(Debug)]
enum MaState {
    /// Before the transport first reaches DataState.
    NotStarted,
    Query {
        deadline: Instant,
    },
    Data {
        ranges: Vec<BlockRange>,
        index: usize,
        next_block: u64,
    },
    Idle {
        until: Instant,
    },
}

/// The server side of one object session. See the module documentation.
pub struct ServerSession {
    config: SessionConfig,
    epoch: Instant,
    rng: SmallRng,
    state: MtState,
    finished: bool,
    pending: Vec<Client>,
    active: Vec<Client>,
    kicked: Vec<Client>,
    next_client_id: u32,
    // Data state (§3.1.1.3).
    min_nack_backoff: u16,
    max_nack_backoff: u16,
    master_rtt_ms: u64,
    master_id: u32,
    /// When the current master was chosen (README.md#pn-server-master-tenure).
    master_since: Option<Instant>,
    next_spm_seq: u64,
    spm_count: u32,
    next_odata_seq: u64,
    mc_trail: u64,
    mc_lead: u64,
    master_loss: f64,
    window: u64,
    /// When the window was last shrunk (at most one cut per master round trip).
    last_window_cut: Option<Instant>,
    /// Highest sequence number the master reported holding (its HiODATASeqNo, validated): the
    /// window counts from here, not from MCTrail.
    window_base: u64,
    /// ODATA may be sent up to this sequence number (set by master ACKs).
    send_until: u64,
    delay: DelayMonitor,
    data_list: VecDeque<DataEntry>,
    rdata_queue: VecDeque<u64>,
    // QCC state (§3.1.1.5).
    next_qcc_seq: u64,
    qcc_wait_ms: u64,
    // Timers.
    inactivity_deadline: Instant,
    client_cleanup_at: Instant,
    qcc_in_at: Option<Instant>,
    qcc_out_at: Option<Instant>,
    spm_at: Option<Instant>,
    cleanup_at: Option<Instant>,
    kick_at: Option<Instant>,
    pace_next: Instant,
    // Application layer (MS-WDSMA §3.1).
    ma: MaState,
    next_poll_seq: u64,
    /// Query rounds in a row that nobody answered.
    unanswered_queries: u32,
    cntcirs: Vec<(u32, CntCir)>,
    control: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
}

impl ServerSession {
    pub fn new(mut config: SessionConfig, now: Instant, mut rng: SmallRng) -> Self {
        use rand::Rng;
        config.max_clients = config.max_clients.clamp(1, MAX_CLIENTS);
        config.block_size = config.block_size.clamp(1, ma::MAX_BLOCK_LEN as u32);
        config.total_blocks = config.content_size.div_ceil(u64::from(config.block_size));
        config.exp_max_window = config.exp_max_window.max(1);
        config.max_window = config.max_window.max(config.exp_max_window);
        config.max_rate = config.max_rate.filter(|&r| r > 0);
        // Keep every deadline computable (`Instant + Duration` must not overflow) and every
        // millisecond value inside its u16 wire field.
        config.inactivity_timeout = config.inactivity_timeout.min(MAX_TIMEOUT);
        config.client_dead_timeout = config.client_dead_timeout.min(MAX_TIMEOUT);
        config.qcc_interval = config.qcc_interval.clamp(
            Duration::from_millis(1),
            Duration::from_millis(RTT_CAP_MS / 2),
        );
        let next_client_id = rng.random::<u32>();
        let window = 1;
        Self {
            inactivity_deadline: now + config.inactivity_timeout,
            config,
            epoch: now,
            rng,
            state: MtState::PreStart,
            finished: false,
            pending: Vec::new(),
            active: Vec::new(),
            kicked: Vec::new(),
            next_client_id,
            min_nack_backoff: 1,
            max_nack_backoff: 1,
            master_rtt_ms: 1,
            master_id: 0,
            master_since: None,
            next_spm_seq: 1,
            spm_count: 0,
            next_odata_seq: 1,
            mc_trail: 0,
            mc_lead: 0,
            master_loss: 0.0,
            window,
            last_window_cut: None,
            window_base: 0,
            send_until: 0,
            delay: DelayMonitor::new(now),
            data_list: VecDeque::new(),
            rdata_queue: VecDeque::new(),
            next_qcc_seq: 1,
            qcc_wait_ms: 1,
            client_cleanup_at: now + CLIENT_CLEANUP_INTERVAL,
            qcc_in_at: None,
            qcc_out_at: None,
            spm_at: None,
            cleanup_at: None,
            kick_at: None,
            pace_next: now,
            ma: MaState::NotStarted,
            next_poll_seq: 1,
            unanswered_queries: 0,
            cntcirs: Vec::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats {
                window,
                ..ServerStats::default()
            },
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True once the inactivity timeout has ended the session.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// The current master client, if any.
    pub fn master_client_id(&self) -> Option<u32> {
        (self.master_id != 0).then_some(self.master_id)
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    // ----- input ------------------------------------------------------------------------

    /// Processes one datagram a client sent to the session's unicast port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.finished {
            return;
        }
        self.stats.packets_received += 1;
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                if matches!(e.kind, crate::wire::DecodeErrorKind::BadChecksum { .. }) {
                    self.stats.dropped_bad_checksum += 1;
                } else {
                    self.stats.dropped_malformed += 1;
                }
                return;
            }
        };
        // The header must be the clients' mode and prove the packet (MS-WDSMT §3.1.5.1.1).
        if !self
            .config
            .check
            .accepts(&packet.security, mt::covered(bytes))
        {
            self.stats.dropped_bad_security += 1;
            return;
        }
        if packet.session_id != self.config.session_id {
            self.stats.dropped_wrong_session += 1;
            return;
        }
        let accepted = match &packet.body {
            Body::Join(join) => self.on_join(now, from, packet.sender_time, &join.client_name),
            Body::Qcr(qcr) => self.on_qcr(now, from, qcr),
            Body::Ack(ack) => self.on_ack(now, from, ack),
            Body::Nack(nack) => self.on_nack(now, from, nack),
            Body::Leave(leave) => self.on_leave(now, from, leave),
            Body::PollAck(pollack) => self.on_pollack(now, from, pollack),
            _ => {
                self.stats.dropped_unexpected += 1;
                false
            }
        };
        if accepted {
            self.inactivity_deadline = now + self.config.inactivity_timeout;
        }
        // The master's last ACK of a round ends it at once rather than at the next timer.
        if matches!(packet.body, Body::Ack(_)) && self.round_done() {
            self.start_query(now);
        }
        self.refresh_counts();
    }

    fn on_join(&mut self, now: Instant, from: SocketAddr, sender_time: u64, name: &str) -> bool {
        // A client repeats JOIN every 500 ms until a JOINACK arrives: answer the repeat with
        // the same ClientId instead of creating another pending record.
        if let Some(index) = self.pending.iter().position(|c| c.addr == from) {
            self.pending[index].client_time = sender_time;
            self.pending[index].last_update = now;
            self.send_join_ack(now, index);
            return true;
        }
        // A full pending table gives up its oldest record whose JOINACKs are all spent (kept
        // only in case its QCR was lost): otherwise a burst of JOINs that never QCR locks
        // every real client out for ClientDeadTimeout (README.md#pn-server-full-pending-table).
        if self.pending.len() >= self.config.max_clients {
            if let Some(index) = self
                .pending
                .iter()
                .position(|c| c.join_ack_sends >= MAX_JOIN_ACK_SENDS)
            {
                self.pending.remove(index);
                self.stats.pending_expired += 1;
            }
        }
        if self.pending.len() >= self.config.max_clients
            || self.active.len() >= self.config.max_clients
        {
            self.refuse(
                from,
                format!(
                    "session already has {} pending and {} active clients (limit {})",
                    self.pending.len(),
                    self.active.len(),
                    self.config.max_clients
                ),
            );
            return true;
        }
        let client_id = self.allocate_client_id();
        self.pending.push(Client {
            client_id,
            addr: from,
            client_time: sender_time,
            last_update: now,
            rtt_ms: 1,
            loss_rate: 0.0,
            kick_reason: KickReason::PolicyNotMet,
            join_ack_sends: 0,
            join_ack_due: now + JOIN_ACK_TO_QCR_TIMEOUT,
            qcr_received: false,
            slow_since: None,
            kick_echoed_at: None,
        });
        let name: String = name.chars().take(16).collect();
        self.push_event(ServerEvent::ClientJoined {
            client_id,
            addr: from,
            name,
        });
        let index = self.pending.len() - 1;
        self.send_join_ack(now, index);
        true
    }

    fn refuse(&mut self, addr: SocketAddr, reason: String) {
        self.stats.joins_refused += 1;
        self.push_event(ServerEvent::JoinRefused { addr, reason });
    }

    /// NextClientId is random at start and counts up; 0 means "no master" and ids in use are
    /// skipped after wrap-around.
    fn allocate_client_id(&mut self) -> u32 {
        loop {
            let id = self.next_client_id;
            self.next_client_id = self.next_client_id.wrapping_add(1);
            if id != 0 && self.find_any(id).is_none() {
                return id;
            }
        }
    }

    fn find_any(&self, id: u32) -> Option<()> {
        self.pending
            .iter()
            .chain(&self.active)
            .chain(&self.kicked)
            .any(|c| c.client_id == id)
            .then_some(())
    }

    fn on_qcr(&mut self, now: Instant, from: SocketAddr, qcr: &mt::Qcr<'_>) -> bool {
        if let Some(index) = find(&self.pending, qcr.client_id, from) {
            // Deviation: any QCR proves the client has its JOINACK (the one after JOINACK may
            // have been lost), so every flavour activates it. A voluntary QCR carries no
            // ServerTime to measure an RTT from.
            let rtt = if qcr.server_time != 0 {
                self.rtt_from(now, qcr.server_time)
            } else {
                None
            };
            let Some(client_id) = self.activate_pending(now, index, rtt) else {
                return true;
            };
            self.status_trigger(now, client_id, qcr.app_data);
            return true;
        }
        let index = match self.joined_sender(now, qcr.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        if qcr.qcc_seq_no != 0 {
            if qcr.qcc_seq_no.checked_add(1) != Some(self.next_qcc_seq) {
                self.stats.dropped_stale += 1;
                return true;
            }
            // Voluntary QCRs (QCCSeqNo 0) carry no usable ServerTime: no RTT from them.
            if let Some(rtt) = self.rtt_from(now, qcr.server_time) {
                self.active[index].rtt_ms = rtt;
            }
            self.active[index].qcr_received = true;
        }
        self.active[index].loss_rate = mt::loss_rate_from_wire(qcr.loss_rate);
        let client_id = self.active[index].client_id;
        self.status_trigger(now, client_id, qcr.app_data);
        true
    }

    /// The active client a QCR, ACK, NACK or POLLACK comes from, its LastUpdate refreshed.
    /// Otherwise `Err(handled)`: a kicked client is counted as stale, kept from the dead
    /// timeout and sent its KICK again (`true`); anyone else is unknown (`false`).
    fn joined_sender(
        &mut self,
        now: Instant,
        client_id: u32,
        from: SocketAddr,
    ) -> Result<usize, bool> {
        if let Some(index) = find(&self.active, client_id, from) {
            self.active[index].last_update = now;
            return Ok(index);
        }
        if let Some(index) = find(&self.kicked, client_id, from) {
            self.kicked[index].last_update = now;
            self.stats.dropped_stale += 1;
            self.echo_kick(now, index);
            return Err(true);
        }
        self.stats.dropped_unknown_client += 1;
        Err(false)
    }

    /// Moves a pending client to the Active list (MS-WDSMT §3.1.5.2.3); `None` when the list is
    /// full and the client was refused.
    fn activate_pending(&mut self, now: Instant, index: usize, rtt: Option<u64>) -> Option<u32> {
        let mut client = self.pending.remove(index);
        if self.active.len() >= self.config.max_clients {
            self.refuse(
                client.addr,
                format!("active list is full ({} clients)", self.active.len()),
            );
            return None;
        }
        if let Some(rtt) = rtt {
            client.rtt_ms = rtt;
        }
        client.last_update = now;
        let client_id = client.client_id;
        self.active.push(client);
        self.push_event(ServerEvent::ClientActive { client_id });
        if self.state == MtState::PreStart {
            self.enter_qcc(now);
        }
        Some(client_id)
    }

    /// MS-WDSMA Status Trigger: the QCR's AppData is a PROGRESS packet.
    fn status_trigger(&mut self, now: Instant, client_id: u32, app_data: &[u8]) {
        if app_data.is_empty() {
            return;
        }
        match MaPacket::decode(app_data) {
            Ok(MaPacket::Progress(p)) => {
                self.client_progress(now, client_id, p.progress, p.time_in_session)
            }
            _ => self.stats.dropped_bad_app_data += 1,
        }
    }

    fn client_progress(&mut self, now: Instant, client_id: u32, percent: u8, time_in_session: u32) {
        let percent = percent.min(100);
        self.push_event(ServerEvent::Progress {
            client_id,
            percent,
            time_in_session,
        });
        let Some(threshold) = self.config.auto_disconnect_below else {
            return;
        };
        let Some(index) = self.active.iter().position(|c| c.client_id == client_id) else {
            return;
        };
        if time_in_session < AUTO_DISCONNECT_GRACE_SECS || percent >= 100 {
            self.active[index].slow_since = None;
            return;
        }
        let received = self.config.content_size as f64 * f64::from(percent) / 100.0;
        let rate = received / f64::from(time_in_session);
        if rate >= threshold as f64 {
            self.active[index].slow_since = None;
            return;
        }
        let since = *self.active[index].slow_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= AUTO_DISCONNECT_SUSTAIN {
            self.kick(now, client_id, KickReason::Fallback);
        }
    }

    fn on_ack(&mut self, now: Instant, from: SocketAddr, ack: &mt::Ack) -> bool {
        let index = match self.joined_sender(now, ack.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        if ack.client_id != self.master_id {
            // A former master still acknowledging: alive, but not a window signal.
            self.stats.dropped_stale += 1;
            return true;
        }
        if ack.odata_seq_no > self.mc_lead {
            self.stats.dropped_bad_ack += 1;
            return true;
        }
        self.stats.acks_received += 1;
        self.spm_count = 0;
        if let Some(rtt) = self.rtt_from(now, ack.server_time) {
            self.master_rtt_ms = rtt.max(1);
            self.active[index].rtt_ms = rtt;
            self.delay.sample(now, rtt);
        }
        self.master_loss = mt::loss_rate_from_wire(ack.loss_rate);
        self.active[index].loss_rate = self.master_loss;
        // Deviation: an ACK below MCTrail (a newly chosen master that is still behind) proves
        // the master alive but opens no window; the spec would drop it and re-elect.
        if ack.odata_seq_no >= self.mc_trail {
            self.mc_trail = ack.odata_seq_no;
            // Deviation (performance): the window counts from what the master holds
            // (HiODATASeqNo), not from MCTrail, which stays at the first gap until it is
            // repaired. Counting from MCTrail stalls sending for a repair round trip after
            // every loss, which at 5 % loss halves throughput; MCTrail still decides what
            // the cleanup may drop, so every gap stays repairable (README.md#pn-server-window-base).
            let held = ack.hi_odata_seq_no.clamp(ack.odata_seq_no, self.mc_lead);
            if held > self.window_base {
                let acked = held - self.window_base;
                self.window_base = held;
                self.adjust_window(now, acked);
            }
        }
        self.send_until = self.window_base.max(self.mc_trail) + self.window;
        true
    }

    /// Window change for `acked` newly held packets. Deviation (the spec only grows the
    /// window on ACKs and shrinks it on NACKs): a queue building on the path to the master
    /// shrinks it by an eighth per round trip, so the window settles where the bottleneck
    /// stays busy without overflowing; otherwise it grows exponentially up to
    /// ExpMaxWindowSize, then by about a quarter per round trip up to MaxWindowSize.
    fn adjust_window(&mut self, now: Instant, acked: u64) {
        if self.delay.queueing_ms > QUEUE_DELAY_TARGET_MS {
            self.cut_window(now, 7, 8);
        } else if self.window < self.config.exp_max_window {
            self.window = (self.window + 2 * acked).min(self.config.exp_max_window);
        } else {
            // A quarter of the acknowledged packets: about +25 % per round trip, so that
            // reaching a bottleneck's queue overshoots it by a quarter, not by double.
            self.window = (self.window + acked.div_ceil(4)).min(self.config.max_window);
        }
        self.stats.window = self.window;
    }

    /// Shrinks the window to `num / den` of itself (at least 2), at most once per master round
    /// trip: every signal from one flight says the same thing, and cutting per signal would
    /// collapse the window to 2 under steady loss.
    fn cut_window(&mut self, now: Instant, num: u64, den: u64) {
        let gap = Duration::from_millis(self.master_rtt_ms.max(1));
        if self
            .last_window_cut
            .is_none_or(|at| now.saturating_duration_since(at) >= gap)
        {
            self.window = (self.window * num / den).max(2);
            self.last_window_cut = Some(now);
        }
    }

    fn on_nack(&mut self, now: Instant, from: SocketAddr, nack: &mt::Nack) -> bool {
        let index = match self.joined_sender(now, nack.client_id, from) {
            Ok(index) => index,
            Err(handled) => return handled,
        };
        let ranges = &nack.ranges[..nack.ranges.len().min(MAX_NACK_RANGES_PROCESSED)];
        if ranges.len() < nack.ranges.len() {
            self.stats.nack_work_capped += 1;
        }
        // Ranges must lie inside what was sent: [1, MCLead], start <= end.
        if ranges
            .iter()
            .any(|r| r.start == 0 || r.start > r.end || r.end > self.mc_lead)
        {
            self.stats.dropped_bad_nack += 1;
            return true;
        }
        self.stats.nacks_received += 1;
        let loss = mt::loss_rate_from_wire(nack.loss_rate);
        self.active[index].loss_rate = loss;
        if nack.client_id == self.master_id {
            self.master_loss = loss;
        } else {
            self.consider_master(now, index);
        }
        // Deviation: the spec cuts the window by a quarter on every NACK. Here a NACK cuts it
        // (once per round trip) only when the loss looks like congestion: a queue on the path
        // or heavy loss. Random loss on an uncongested link (5 % at a gigabit is a NACK every
        // millisecond or two) would otherwise keep the window at its floor. A NACK without
        // ranges always cuts: it is how a client whose cache is full asks the server to slow
        // down (MS-WDSMT §3.2.5.12.2), and it shows neither queueing nor loss
        // (README.md#pn-server-nack).
        if nack.ranges.is_empty()
            || self.delay.queueing_ms > QUEUE_DELAY_TARGET_MS / 2
            || self.master_loss > LOSS_CUT_THRESHOLD
        {
            self.cut_window(now, 3, 4);
        }
        self.stats.window = self.window;
        let ncf = Body::Ncf(mt::Ncf {
            ranges: ranges.to_vec(),
        });
        let group = self.config.group;
        self.queue_control(now, group, ncf);
        self.stats.ncf_sent += 1;
        let suppress = Duration::from_millis(4 * self.master_rtt_ms);
        let mut budget = MAX_RDATA_PER_NACK;
        for range in ranges {
            let Some(head) = self.data_list.front().map(|e| e.seq) else {
                break;
            };
            let mut seq = range.start.max(head);
            while seq <= range.end && budget > 0 {
                let offset = (seq - head) as usize;
                let Some(entry) = self.data_list.get_mut(offset) else {
                    break;
                };
                if now.saturating_duration_since(entry.last_send) >= suppress
                    && self.rdata_queue.len() < MAX_RDATA_QUEUE
                {
                    entry.last_send = now;
                    self.rdata_queue.push_back(seq);
                    budget -= 1;
                }
                seq += 1;
            }
        }
        true
    }

    /// Master re-selection on a NACK from another client (§3.1.5.9.6.1): the client whose
    /// TCP-friendly throughput estimate is clearly lower becomes master.
    fn consider_master(&mut self, now: Instant, index: usize) {
        // Deviation: a master keeps the role at least MIN_MASTER_TENURE. On a LAN (or
        // loopback) the clients' loss estimates are small and noisy, so the spec's rule would
        // hand the role back and forth on every NACK, restarting the delay monitor each time
        // (README.md#pn-server-master-tenure).
        if self
            .master_since
            .is_some_and(|since| now.duration_since(since) < MIN_MASTER_TENURE)
        {
            return;
        }
        fn cost(rtt_ms: u64, loss: f64) -> f64 {
            let l = loss.clamp(0.0, 1.0);
            (rtt_ms as f64 / 1000.0) * l.sqrt() * (1.0 + 9.0 * l * (1.0 + 32.0 * l * l))
        }
        let candidate = &self.active[index];
        let candidate_cost = cost(candidate.rtt_ms, candidate.loss_rate);
        let master_cost = cost(self.master_rtt_ms, self.master_loss);
        // throughput = 1 / cost; candidate < 0.75 x master  <=>  master_cost < 0.75 x candidate_cost
        if candidate_cost > 0.0 && master_cost < 0.75 * candidate_cost {
            self.master_id = candidate.client_id;
            self.master_since = Some(now);
            self.master_rtt_ms = candidate.rtt_ms.max(1);
            self.delay = DelayMonitor::new(now);
            self.master_loss = candidate.loss_rate;
            let client_id = Some(self.master_id);
            self.push_event(ServerEvent::MasterChanged { client_id });
        }
    }

    fn on_leave(&mut self, now: Instant, from: SocketAddr, leave: &mt::Leave) -> bool {
        let client_id = leave.client_id;
        if let Some(index) = find(&self.active, client_id, from) {
            self.active.remove(index);
            self.cntcirs.retain(|(id, _)| *id != client_id);
            self.push_event(ServerEvent::ClientLeft {
                client_id,
                reason: leave.reason,
            });
            if client_id == self.master_id {
                self.master_lost(now);
            }
            return true;
        }
        let mut found = false;
        for list in [&mut self.kicked, &mut self.pending] {
            if let Some(index) = find(list, client_id, from) {
                list.remove(index);
                found = true;
                break;
            }
        }
        if !found {
            self.stats.dropped_unknown_client += 1;
            return false;
        }
        self.push_event(ServerEvent::ClientLeft {
            client_id,
            reason: leave.reason,
        });
        true
    }

    fn on_pollack(&mut self, now: Instant, from: SocketAddr, pollack: &mt::PollAck<'_>) -> bool {
        // A POLLACK from a pending client also proves it has its JOINACK (see on_qcr).
        if let Some(index) = find(&self.pending, pollack.client_id, from) {
            if self.activate_pending(now, index, None).is_none() {
                return true;
            }
        }
        if let Err(handled) = self.joined_sender(now, pollack.client_id, from) {
            return handled;
        }
        let client_id = pollack.client_id;
        if pollack.poll_seq_no.checked_add(1) != Some(self.next_poll_seq) {
            self.stats.dropped_stale += 1;
            return true;
        }
        let cntcir = match MaPacket::decode(pollack.app_data) {
            Ok(MaPacket::CntCir(c)) => c,
            _ => {
                self.stats.dropped_bad_app_data += 1;
                return true;
            }
        };
        self.client_progress(now, client_id, cntcir.progress, cntcir.time_in_session);
        if matches!(self.ma, MaState::Query { .. }) {
            self.cntcirs.retain(|(id, _)| *id != client_id);
            self.cntcirs.push((client_id, cntcir));
        }
        true
    }

    /// Moves a client to the Kick list and tells it to leave (§3.1.5.6); KICK repeats every
    /// 15 s while the list is not empty.
    pub fn kick(&mut self, now: Instant, client_id: u32, reason: KickReason) {
        let client = if let Some(i) = self.active.iter().position(|c| c.client_id == client_id) {
            Some(self.active.remove(i))
        } else if let Some(i) = self.pending.iter().position(|c| c.client_id == client_id) {
            Some(self.pending.remove(i))
        } else {
            None
        };
        let Some(mut client) = client else {
            return;
        };
        client.kick_reason = reason;
        client.last_update = now;
        if self.kicked.len() >= self.config.max_clients {
            // The oldest entry has had its KICKs; make room for the new one.
            self.kicked.remove(0);
        }
        self.kicked.push(client);
        self.cntcirs.retain(|(id, _)| *id != client_id);
        self.push_event(ServerEvent::ClientKicked { client_id, reason });
        if client_id == self.master_id {
            self.master_lost(now);
        }
        if self.kick_at.is_none() {
            self.send_kicks(now);
            self.kick_at = Some(now + KICK_INTERVAL);
        }
        self.refresh_counts();
    }

    /// A kicked client is still talking, so it missed the multicast KICK (a slow client's
    /// congested link is where KICKs get lost): tell it again, directly, rate-limited.
    fn echo_kick(&mut self, now: Instant, index: usize) {
        let client = &mut self.kicked[index];
        if client
            .kick_echoed_at
            .is_some_and(|at| now.saturating_duration_since(at) < KICK_ECHO_INTERVAL)
        {
            return;
        }
        client.kick_echoed_at = Some(now);
        let (addr, body) = (
            client.addr,
            Body::Kick(mt::Kick {
                clients: vec![(client.client_id, client.kick_reason)],
            }),
        );
        self.queue_control(now, addr, body);
        self.stats.kick_sent += 1;
    }

    fn send_kicks(&mut self, now: Instant) {
        let entries: Vec<(u32, KickReason)> = self
            .kicked
            .iter()
            .map(|c| (c.client_id, c.kick_reason))
            .collect();
        for chunk in entries.chunks(KICK_ENTRIES_PER_PACKET) {
            let body = Body::Kick(mt::Kick {
                clients: chunk.to_vec(),
            });
            let group = self.config.group;
            self.queue_control(now, group, body);
            self.stats.kick_sent += 1;
        }
    }

    // ----- transport state changes --------------------------------------------------------

    fn master_lost(&mut self, now: Instant) {
        self.master_id = 0;
        self.push_event(ServerEvent::MasterChanged { client_id: None });
        if self.active.is_empty() {
            // Nobody left to elect: wait quietly for the next client (or the inactivity end).
            self.state = MtState::PreStart;
            self.qcc_in_at = None;
            self.leave_data_state();
        } else {
            self.enter_qcc(now);
        }
    }

    fn enter_qcc(&mut self, now: Instant) {
        self.leave_data_state();
        self.state = MtState::Qcc;
        self.qcc_wait_ms = 1;
        self.send_qcc_in_state(now);
    }

    fn leave_data_state(&mut self) {
        self.spm_at = None;
        self.cleanup_at = None;
        self.qcc_out_at = None;
    }

    fn max_active_rtt(&self) -> u64 {
        self.active.iter().map(|c| c.rtt_ms).max().unwrap_or(0)
    }

    /// QCC in QCCState (§3.1.5.7.3): WaitTime = 1 ms per active client (or doubling up to
    /// NoClientQCCInterval without clients) plus the highest RTT.
    fn send_qcc_in_state(&mut self, now: Instant) {
        for client in &mut self.active {
            client.qcr_received = false;
        }
        self.qcc_wait_ms = if self.active.is_empty() {
            (self.qcc_wait_ms * 2).min(NO_CLIENT_QCC_INTERVAL_MS)
        } else {
            self.active.len() as u64
        };
        let wait = (self.qcc_wait_ms + self.max_active_rtt()).clamp(QCC_MIN_WAIT_MS, RTT_CAP_MS);
        self.send_qcc(now, wait as u16);
        self.qcc_in_at = Some(now + Duration::from_millis(wait));
    }

    fn send_qcc(&mut self, now: Instant, qcr_backoff: u16) {
        let body = Body::Qcc(mt::Qcc {
            qcc_seq_no: self.next_qcc_seq,
            qcr_backoff,
        });
        self.next_qcc_seq += 1;
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.qcc_sent += 1;
    }

    /// InState QCC timer (§3.1.6.4): elect the answering client with the highest RTT.
    fn on_qcc_in_timer(&mut self, now: Instant) {
        let best = self
            .active
            .iter()
            .filter(|c| c.qcr_received)
            .max_by_key(|c| (c.rtt_ms, std::cmp::Reverse(c.client_id)))
            .map(|c| (c.client_id, c.rtt_ms, c.loss_rate));
        let Some((client_id, rtt, loss)) = best else {
            self.send_qcc_in_state(now);
            return;
        };
        self.qcc_in_at = None;
        if client_id != self.master_id {
            self.master_id = client_id;
            self.master_since = Some(now);
            self.delay = DelayMonitor::new(now);
            self.push_event(ServerEvent::MasterChanged {
                client_id: Some(client_id),
            });
        }
        self.master_rtt_ms = rtt.max(1);
        self.master_loss = loss;
        self.enter_data(now);
    }

    /// Enter DataState (§3.1.5.9.1).
    fn enter_data(&mut self, now: Instant) {
        self.state = MtState::Data;
        self.spm_count = 0;
        self.cleanup_at = Some(now + CLEANUP_DATA_LIST_INTERVAL);
        self.qcc_out_at = Some(now + self.out_state_qcc_interval());
        self.send_spm(now);
        if matches!(self.ma, MaState::NotStarted) {
            self.start_query(now);
        }
    }

    fn out_state_qcc_interval(&self) -> Duration {
        let base = (self.config.qcc_interval.as_millis() as u64).max(self.active.len() as u64);
        Duration::from_millis((base + self.max_active_rtt()).min(RTT_CAP_MS))
    }

    fn spm_interval(&self) -> Duration {
        Duration::from_millis(SPM_INTERVAL_MS.max(4 * self.master_rtt_ms))
    }

    /// SPM (§3.1.5.9.3) with the NACK back-off bounds derived from the master RTT.
    fn send_spm(&mut self, now: Instant) {
        let min = (2 * self.master_rtt_ms).clamp(1, RTT_CAP_MS);
        let max = (min + self.active.len() as u64 / 5).clamp(1, RTT_CAP_MS);
        self.min_nack_backoff = min as u16;
        self.max_nack_backoff = max as u16;
        let body = Body::Spm(mt::Spm {
            spm_seq_no: self.next_spm_seq,
            master_client_id: self.master_id,
            min_nack_backoff: self.min_nack_backoff,
            max_nack_backoff: self.max_nack_backoff,
            trail_odata_seq_no: self.trail(),
            lead_odata_seq_no: self.mc_lead,
            rtt: self.master_rtt_ms.min(RTT_CAP_MS) as u16,
        });
        self.next_spm_seq += 1;
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.spm_sent += 1;
        self.spm_count += 1;
        self.spm_at = Some(now + self.spm_interval());
    }

    /// Lowest retransmittable sequence number; MCLead when the list is empty, so that a
    /// client's highest-continuous ACK stays inside [MCTrail, MCLead].
    fn trail(&self) -> u64 {
        self.data_list.front().map_or(self.mc_lead, |e| e.seq)
    }

    fn send_join_ack(&mut self, now: Instant, pending_index: usize) {
        let client = &self.pending[pending_index];
        let body = Body::JoinAck(mt::JoinAck {
            client_id: client.client_id,
            min_nack_backoff: self.min_nack_backoff,
            max_nack_backoff: self.max_nack_backoff,
            rtt: self.master_rtt_ms.min(RTT_CAP_MS) as u16,
            client_time: client.client_time,
        });
        let addr = client.addr;
        self.queue_control(now, addr, body);
        self.stats.joinack_sent += 1;
    }

    // ----- application layer (MS-WDSMA §3.1) ---------------------------------------------

    fn start_query(&mut self, now: Instant) {
        self.cntcirs.clear();
        let mut srvcir = Vec::with_capacity(ma::HEADER_LEN);
        MaPacket::SrvCir.encode_into(&mut srvcir);
        let body = Body::Poll(mt::Poll {
            poll_seq_no: self.next_poll_seq,
            backoff: POLL_BACKOFF_MS,
            app_data: &srvcir,
        });
        self.next_poll_seq += 1;
        let group = self.config.group;
        self.queue_control(now, group, body);
        self.stats.poll_sent += 1;
        self.ma = MaState::Query {
            deadline: now + Duration::from_millis(POLL_BACKOFF_MS.into()),
        };
    }

    /// Query Timer (MS-WDSMA §3.1.6.1): keep CNTCIRs of clients that joined within 30 s of
    /// the oldest one, merge their missing ranges and start a data round.
    fn on_query_timer(&mut self, now: Instant) {
        let Some(oldest) = self.cntcirs.iter().map(|(_, c)| c.time_in_session).max() else {
            // Nobody answered. With active clients the POLL (multicast) or the answers were
            // probably lost: ask again at once, as §3.1.6.1 says (waiting the idle interval
            // cost a lossy link's first round over a second). After a few silent rounds in a
            // row, or in an empty session, idle instead of polling five times a second.
            self.unanswered_queries += 1;
            if self.active.is_empty() || self.unanswered_queries > MAX_QUICK_REQUERIES {
                self.go_idle(now);
            } else {
                self.start_query(now);
            }
            return;
        };
        let total = self.config.total_blocks;
        let mut ranges: Vec<BlockRange> = self
            .cntcirs
            .iter()
            .filter(|(_, c)| c.time_in_session.saturating_add(LATE_JOIN_SECS) >= oldest)
            .flat_map(|(_, c)| c.ranges.iter().copied())
            .filter(|r| r.start >= 1 && r.start <= r.end && r.start <= total)
            .map(|r| BlockRange {
                start: r.start,
                end: r.end.min(total),
            })
            .collect();
        self.cntcirs.clear();
        self.unanswered_queries = 0;
        let merged = merge_ranges(&mut ranges);
        let missing: u64 = merged.iter().map(|r| r.end - r.start + 1).sum();
        if merged.is_empty() {
            // Nobody needs data: stay idle but keep asking now and then.
            self.go_idle(now);
            return;
        }
        self.stats.rounds_started += 1;
        self.push_event(ServerEvent::RoundStarted {
            missing_blocks: missing,
        });
        let next_block = merged[0].start;
        self.ma = MaState::Data {
            ranges: merged,
            index: 0,
            next_block,
        };
    }

    /// Waits before the next query round; the jitter keeps many idle sessions from polling
    /// in lockstep.
    fn go_idle(&mut self, now: Instant) {
        let jitter = super::random_millis(&mut self.rng, 200);
        self.ma = MaState::Idle {
            until: now + IDLE_QUERY_INTERVAL + jitter,
        };
    }

    fn ma_next_block(&self) -> Option<u64> {
        match &self.ma {
            MaState::Data {
                ranges,
                index,
                next_block,
            } if *index < ranges.len() => Some(*next_block),
            _ => None,
        }
    }

    fn ma_advance(&mut self) {
        if let MaState::Data {
            ranges,
            index,
            next_block,
        } = &mut self.ma
            && let Some(range) = ranges.get(*index)
        {
            if *next_block >= range.end {
                *index += 1;
                if let Some(next) = ranges.get(*index) {
                    *next_block = next.start;
                }
            } else {
                *next_block += 1;
            }
        }
    }

    /// Data Empty: every block of the round was handed out and the master has acknowledged
    /// everything sent, so the next query round can begin.
    fn round_done(&self) -> bool {
        matches!(&self.ma, MaState::Data { ranges, index, .. } if *index >= ranges.len())
            && (self.mc_trail >= self.mc_lead || self.data_list.is_empty())
    }

    // ----- timers -----------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if now >= self.inactivity_deadline {
            self.finished = true;
            self.control.clear();
            self.rdata_queue.clear();
            self.push_event(ServerEvent::SessionEnded);
            return;
        }
        self.pending_timers(now);
        if now >= self.client_cleanup_at {
            self.client_cleanup(now);
            self.client_cleanup_at = now + CLIENT_CLEANUP_INTERVAL;
        }
        if self.kick_at.is_some_and(|t| now >= t) {
            if self.kicked.is_empty() {
                self.kick_at = None;
            } else {
                self.send_kicks(now);
                self.kick_at = Some(now + KICK_INTERVAL);
            }
        }
        if self.state == MtState::Qcc && self.qcc_in_at.is_some_and(|t| now >= t) {
            self.on_qcc_in_timer(now);
        }
        if self.state == MtState::Data {
            if self.spm_at.is_some_and(|t| now >= t) {
                if self.spm_count >= MAX_NO_RESPONSE_SPM {
                    // The master stopped answering: elect again.
                    self.enter_qcc(now);
                } else {
                    self.send_spm(now);
                }
            }
            if self.cleanup_at.is_some_and(|t| now >= t) {
                self.cleanup_data_list(now);
                self.cleanup_at = Some(now + CLEANUP_DATA_LIST_INTERVAL);
            }
            if self.qcc_out_at.is_some_and(|t| now >= t) {
                let interval = self.out_state_qcc_interval();
                self.send_qcc(now, interval.as_millis() as u16);
                self.qcc_out_at = Some(now + interval);
            }
        }
        match self.ma {
            MaState::Query { deadline } if now >= deadline => self.on_query_timer(now),
            MaState::Idle { until } if now >= until => self.start_query(now),
            _ => {}
        }
        if self.round_done() {
            self.start_query(now);
        }
        self.refresh_counts();
    }

    fn pending_timers(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.pending.len() {
            if now < self.pending[index].join_ack_due {
                index += 1;
                continue;
            }
            if self.pending[index].join_ack_sends >= MAX_JOIN_ACK_SENDS {
                // Deviation: the spec forgets the client here, but it may have its JOINACK and
                // only its QCR was lost; it then believes it is active and would never be
                // served. Keep the record, without more JOINACKs, until ClientDeadTimeout, so
                // that its next QCR or POLLACK activates it.
                let silent_until =
                    self.pending[index].last_update + self.config.client_dead_timeout;
                if now >= silent_until {
                    self.pending.remove(index);
                    self.stats.pending_expired += 1;
                    continue;
                }
                self.pending[index].join_ack_due = silent_until;
                index += 1;
                continue;
            }
            self.pending[index].join_ack_sends += 1;
            self.pending[index].join_ack_due = now + JOIN_ACK_TO_QCR_TIMEOUT;
            self.send_join_ack(now, index);
            index += 1;
        }
    }

    /// Client Cleanup timer (§3.1.6.2): forget clients silent for ClientDeadTimeout.
    fn client_cleanup(&mut self, now: Instant) {
        let dead_after = self.config.client_dead_timeout;
        let mut dead = Vec::new();
        for list in [&mut self.active, &mut self.kicked] {
            list.retain(|c| {
                let alive = now.saturating_duration_since(c.last_update) <= dead_after;
                if !alive {
                    dead.push(c.client_id);
                }
                alive
            });
        }
        let mut lost_master = false;
        for client_id in dead {
            self.cntcirs.retain(|(id, _)| *id != client_id);
            lost_master |= client_id == self.master_id;
            self.push_event(ServerEvent::ClientDead { client_id });
        }
        if lost_master {
            self.master_lost(now);
        }
    }

    /// Cleanup Data List (§3.1.6.7): drop acknowledged packets older than a second.
    fn cleanup_data_list(&mut self, now: Instant) {
        let mut removed = false;
        while let Some(entry) = self.data_list.front() {
            if entry.seq < self.mc_trail
                && now.saturating_duration_since(entry.created) >= CLEANUP_MIN_AGE
            {
                self.data_list.pop_front();
                removed = true;
            } else {
                break;
            }
        }
        if removed {
            self.send_spm(now);
        }
    }

    /// The earliest instant at which [`Self::handle_timeout`] has work, including pacing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let mut earliest = self.inactivity_deadline.min(self.client_cleanup_at);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = earliest.min(t);
            }
        };
        for client in &self.pending {
            consider(Some(client.join_ack_due));
        }
        consider(self.kick_at);
        if self.state == MtState::Qcc {
            consider(self.qcc_in_at);
        }
        if self.state == MtState::Data {
            consider(self.spm_at);
            consider(self.cleanup_at);
            consider(self.qcc_out_at);
        }
        match self.ma {
            MaState::Query { deadline } => consider(Some(deadline)),
            MaState::Idle { until } => consider(Some(until)),
            _ => {}
        }
        if self.config.max_rate.is_some() && self.has_data_to_send() {
            consider(Some(self.pace_next));
        }
        Some(earliest)
    }

    fn has_data_to_send(&self) -> bool {
        !self.rdata_queue.is_empty() || self.odata_allowed()
    }

    fn odata_allowed(&self) -> bool {
        self.mc_lead < self.send_until
            && self.data_list.len() < MAX_DATA_PACKET_LIST
            && self.ma_next_block().is_some()
    }

    // ----- output -----------------------------------------------------------------------

    /// Writes the next datagram into `buf` (cleared first) and returns where to send it, or
    /// `None` when nothing is due. Control packets come first, then RDATA, then
    /// window-limited ODATA. A failed block read is returned as the error; the packet is then
    /// not consumed.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        source: &mut dyn BlockSource,
    ) -> std::io::Result<Option<SocketAddr>> {
        buf.clear();
        self.poll_transmit_append(now, buf, source)
    }

    /// [`Self::poll_transmit`], but the datagram is appended to `buf` (which is left as it was
    /// when nothing is due or the read fails), so a sender can batch datagrams in one buffer.
    pub fn poll_transmit_append(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        source: &mut dyn BlockSource,
    ) -> std::io::Result<Option<SocketAddr>> {
        let start = buf.len();
        if let Some((dest, bytes)) = self.control.pop_front() {
            buf.extend_from_slice(&bytes);
            return Ok(Some(dest));
        }
        if self.finished || now < self.pace_next {
            return Ok(None);
        }
        while let Some(&seq) = self.rdata_queue.front() {
            let Some(head) = self.data_list.front().map(|e| e.seq) else {
                self.rdata_queue.clear();
                break;
            };
            let Some(entry) = seq
                .checked_sub(head)
                .and_then(|offset| self.data_list.get(offset as usize))
                .copied()
            else {
                self.rdata_queue.pop_front();
                continue;
            };
            let trail = self.trail();
            self.encode_block(now, buf, source, true, entry.seq, entry.block_number, trail)?;
            self.rdata_queue.pop_front();
            self.stats.rdata_sent += 1;
            self.after_data_send(now, buf.len() - start);
            return Ok(Some(self.config.group));
        }
        if !self.odata_allowed() {
            return Ok(None);
        }
        let Some(block_number) = self.ma_next_block() else {
            return Ok(None);
        };
        let seq = self.next_odata_seq;
        // The new entry becomes the list head when the list is empty.
        let trail_field = self.data_list.front().map_or(seq, |e| e.seq);
        self.encode_block(now, buf, source, false, seq, block_number, trail_field)?;
        self.ma_advance();
        self.next_odata_seq += 1;
        self.mc_lead = seq;
        self.data_list.push_back(DataEntry {
            seq,
            block_number,
            created: now,
            last_send: now,
        });
        self.stats.odata_sent += 1;
        self.after_data_send(now, buf.len() - start);
        Ok(Some(self.config.group))
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_block(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        source: &mut dyn BlockSource,
        rdata: bool,
        seq: u64,
        block_number: u64,
        trail: u64,
    ) -> std::io::Result<()> {
        let block_size = u64::from(self.config.block_size);
        let offset = (block_number - 1).saturating_mul(block_size);
        let len = self
            .config
            .content_size
            .saturating_sub(offset)
            .min(block_size) as usize;
        let header = BlockHeader {
            rdata,
            session_id: self.config.session_id,
            sender_time: millis_since(self.epoch, now),
            client_id: self.master_id,
            odata_seq_no: seq,
            trail_odata_seq_no: trail,
            block_number,
        };
        let start = buf.len();
        let protect = &self.config.protect;
        let mut packet = header.append(buf, protect, len);
        let read = source.read_block(block_number, packet.payload_mut());
        match read {
            Ok(()) => packet.seal(protect),
            Err(_) => buf.truncate(start),
        }
        read
    }

    fn after_data_send(&mut self, now: Instant, len: usize) {
        self.stats.data_bytes_sent += len as u64;
        if let Some(rate) = self.config.max_rate {
            let cost = Duration::from_secs_f64(len as f64 / rate as f64);
            let floor = now.checked_sub(PACING_BURST).unwrap_or(now);
            self.pace_next = self.pace_next.max(floor) + cost;
        }
    }

    fn queue_control(&mut self, now: Instant, dest: SocketAddr, body: Body<'_>) {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            self.stats.queue_overflows += 1;
            return;
        }
        let packet = Packet {
            // Replaced by the header `protect` makes.
            security: Security::None,
            session_id: self.config.session_id,
            sender_time: millis_since(self.epoch, now),
            body,
        };
        let mut bytes = Vec::new();
        packet.encode_protected(&mut bytes, &self.config.protect);
        self.control.push_back((dest, bytes));
    }

    fn push_event(&mut self, event: ServerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.stats.queue_overflows += 1;
            return;
        }
        self.events.push_back(event);
    }

    fn refresh_counts(&mut self) {
        self.stats.pending_clients = self.pending.len();
        self.stats.active_clients = self.active.len();
        self.stats.kicked_clients = self.kicked.len();
        self.stats.window = self.window;
    }

    /// RTT in ms from an echoed SenderTime; `None` when the echo is from the future.
    fn rtt_from(&self, now: Instant, echoed: u64) -> Option<u64> {
        let now_ms = millis_since(self.epoch, now);
        (echoed <= now_ms).then(|| (now_ms - echoed).min(RTT_CAP_MS))
    }
}

/// A client in `list` with this id whose packets come from the address it joined from (the
/// IP must match; the port may differ behind a NAT that rebinds).
fn find(list: &[Client], client_id: u32, from: SocketAddr) -> Option<usize> {
    list.iter()
        .position(|c| c.client_id == client_id && c.addr.ip() == from.ip())
}

/// Sorts and merges inclusive ranges into a non-overlapping, non-adjacent list.
pub(crate) fn merge_ranges(ranges: &mut [BlockRange]) -> Vec<BlockRange> {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<BlockRange> = Vec::with_capacity(ranges.len());
    for range in ranges.iter() {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(*range),
        }
    }
    merged
}
