//! The per-session transport state of MS-WDSMT §3.2.1.1 and §3.2.1.3 with the timers of
//! §3.2.2. All of it goes back to its initial values on DEMOTE (§3.2.5.16).

use std::time::{Duration, Instant};

use rand::Rng;

use super::loss::LossEstimate;
use crate::proto::SmallRng;
use crate::proto::missing::MissingOdataList;
use crate::proto::timer::{TimerName, TimerTable};

/// ForceQCCInterval (§3.2.1.2): a voluntary QCR goes out when no QCC came for this long.
pub const FORCE_QCC_INTERVAL: Duration = Duration::from_secs(20);
/// Voluntary QCR interval while no multicast packet of the session has been heard yet
/// (README.md#pn-client-voluntary-qcr).
pub const UNCONFIRMED_QCR_INTERVAL: Duration = Duration::from_secs(1);

/// SessionState (§3.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionState {
    Join,
    Regular,
}

/// The client's timers (§3.2.2), in the order `handle_timeout` looks at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// No JOINACK within the join timeout.
    JoinDeadline,
    /// No data within the first-data timeout after the JOINACK.
    FirstData,
    /// Silence from the server once data has flowed (InactivityTimeout).
    Inactivity,
    /// The Join Timer: JOIN again (§3.2.5.3.1).
    JoinResend,
    /// The QCC Timer: answer the last QCC (§3.2.5.7.1).
    Qcc,
    /// The Force QCC Timer: a voluntary QCR (§3.2.5.8).
    ForceQcc,
    /// The POLL Timer: answer the last POLL (§3.2.5.6.1).
    Poll,
    /// The NACK Timer (§3.2.5.12.1).
    Nack,
}

impl Timer {
    pub(super) const COUNT: usize = 8;
}

impl TimerName for Timer {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
pub(super) struct MtState {
    pub state: SessionState,
    pub client_id: Option<u32>,
    pub min_nack_backoff: u16,
    pub max_nack_backoff: u16,
    pub last_poll_seq_no: u64,
    pub last_qcc_seq_no: u64,
    pub qcc_sender_time: u64,
    pub qcc_recv_time: Option<Instant>,
    pub loss: LossEstimate,
    pub first_odata_seq_no: u64,
    pub hi_odata_seq_no: u64,
    pub last_spm_seq_no: u64,
    pub master_client_id: u32,
    pub missing: MissingOdataList,
    pub data_flowed: bool,
    /// Some multicast packet of the session (SPM, QCC, POLL, ODATA, RDATA) has arrived since
    /// the JOINACK.
    pub session_heard: bool,
    pub timers: TimerTable<Timer, { Timer::COUNT }>,
}

impl MtState {
    pub(super) fn new() -> Self {
        Self {
            state: SessionState::Join,
            client_id: None,
            min_nack_backoff: 0,
            max_nack_backoff: 0,
            last_poll_seq_no: 0,
            last_qcc_seq_no: 0,
            qcc_sender_time: 0,
            qcc_recv_time: None,
            loss: LossEstimate::default(),
            first_odata_seq_no: 0,
            hi_odata_seq_no: 0,
            last_spm_seq_no: 0,
            master_client_id: 0,
            missing: MissingOdataList::new(),
            data_flowed: false,
            session_heard: false,
            timers: TimerTable::default(),
        }
    }

    /// When the next voluntary QCR is due. Deviation: until the session's multicast traffic is
    /// heard, a lost QCR-after-JOINACK would leave the server holding us as pending while we
    /// believe we are active, and a lone client would never be served; so the QCR repeats every
    /// second until then, not every 20 s (§3.2.5.8).
    pub(super) fn next_voluntary_qcr(&self, now: Instant) -> Instant {
        now + if self.session_heard {
            FORCE_QCC_INTERVAL
        } else {
            UNCONFIRMED_QCR_INTERVAL
        }
    }

    pub(super) fn is_master(&self) -> bool {
        self.master_client_id != 0 && self.client_id == Some(self.master_client_id)
    }

    /// FirstODATASeqNo is set once (§3.2.1.3), and the loss estimate starts after `hi_loss`.
    pub(super) fn set_first_odata(&mut self, seq_no: u64, hi_loss: u64) {
        self.first_odata_seq_no = seq_no;
        self.loss.seed(hi_loss);
    }

    /// A random back-off between the session's NACK back-off bounds.
    pub(super) fn nack_backoff(&self, rng: &mut SmallRng) -> Duration {
        let low = self.min_nack_backoff.min(self.max_nack_backoff);
        let high = self.min_nack_backoff.max(self.max_nack_backoff);
        Duration::from_millis(rng.random_range(u64::from(low)..=u64::from(high)))
    }
}
