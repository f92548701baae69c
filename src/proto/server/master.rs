//! The master client (MS-WDSMT §3.1.5.7 and §3.1.5.9.6.1): QCC rounds that elect it, the
//! re-selection a NACK can trigger, its round trip and loss, the queueing delay on the path to
//! it, and the SPM heartbeat whose answers (the master's ACKs) prove it alive.

use std::time::{Duration, Instant};

/// The spec's QCC wait is 1 ms per client plus the highest RTT; real hosts schedule threads
/// too coarsely for a 2 ms window, so the wait never drops below this
/// (README.md#pn-server-qcc-wait).
pub(super) const QCC_MIN_WAIT_MS: u64 = 50;
const NO_CLIENT_QCC_INTERVAL_MS: u64 = 500;
const SPM_INTERVAL_MS: u64 = 220;
/// SPMs in a row without a master ACK before the master is taken as gone.
pub(super) const MAX_NO_RESPONSE_SPM: u32 = 5;
/// Shortest time a master keeps its role before a NACK can move it to another client.
pub(super) const MIN_MASTER_TENURE: Duration = Duration::from_secs(5);
/// The minimum RTT is the lowest of this period and the previous one, so a changed path is
/// learned within two periods.
const MIN_RTT_PERIOD: Duration = Duration::from_secs(10);
/// RTT fields are u16 milliseconds on the wire.
pub(super) const RTT_CAP_MS: u64 = u16::MAX as u64;

/// Queueing delay on the path to the master: its RTT above the lowest seen recently.
#[derive(Debug, Clone, Copy)]
pub(super) struct DelayMonitor {
    current_min_ms: u64,
    previous_min_ms: u64,
    period_start: Instant,
    /// Queueing delay of the last sample.
    pub queueing_ms: u64,
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

/// A candidate for master: its id, round trip and loss rate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub client_id: u32,
    pub rtt_ms: u64,
    pub loss: f64,
}

#[derive(Debug)]
pub(super) struct Election {
    /// MasterClientId; 0 when there is none.
    pub master_id: u32,
    /// When the current master was chosen (README.md#pn-server-master-tenure).
    master_since: Option<Instant>,
    pub rtt_ms: u64,
    pub loss: f64,
    pub delay: DelayMonitor,
    next_qcc_seq: u64,
    qcc_wait_ms: u64,
    next_spm_seq: u64,
    /// SPMs sent since the master's last ACK.
    pub spm_count: u32,
    pub min_nack_backoff: u16,
    pub max_nack_backoff: u16,
}

impl Election {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            master_id: 0,
            master_since: None,
            rtt_ms: 1,
            loss: 0.0,
            delay: DelayMonitor::new(now),
            next_qcc_seq: 1,
            qcc_wait_ms: 1,
            next_spm_seq: 1,
            spm_count: 0,
            min_nack_backoff: 1,
            max_nack_backoff: 1,
        }
    }

    /// Makes `candidate` the master (its RTT and loss become the master's); true when the
    /// master changed (its tenure and the delay monitor then restart).
    pub(super) fn elect(&mut self, now: Instant, candidate: Candidate) -> bool {
        let changed = candidate.client_id != self.master_id;
        if changed {
            self.master_id = candidate.client_id;
            self.master_since = Some(now);
            self.delay = DelayMonitor::new(now);
        }
        self.rtt_ms = candidate.rtt_ms.max(1);
        self.loss = candidate.loss;
        changed
    }

    /// The master left, died or was kicked.
    pub(super) fn lose(&mut self) {
        self.master_id = 0;
    }

    /// The master's ACK echoed a SenderTime `rtt` ms ago.
    pub(super) fn master_rtt(&mut self, now: Instant, rtt: u64) {
        self.rtt_ms = rtt.max(1);
        self.delay.sample(now, rtt);
    }

    /// Master re-selection on a NACK from another client (§3.1.5.9.6.1): the client whose
    /// TCP-friendly throughput estimate is clearly lower becomes master; true when it did.
    pub(super) fn reconsider(&mut self, now: Instant, candidate: Candidate) -> bool {
        // Deviation: a master keeps the role at least MIN_MASTER_TENURE. On a LAN (or
        // loopback) the clients' loss estimates are small and noisy, so the spec's rule would
        // hand the role back and forth on every NACK, restarting the delay monitor each time
        // (README.md#pn-server-master-tenure).
        if self
            .master_since
            .is_some_and(|since| now.duration_since(since) < MIN_MASTER_TENURE)
        {
            return false;
        }
        fn cost(rtt_ms: u64, loss: f64) -> f64 {
            let l = loss.clamp(0.0, 1.0);
            (rtt_ms as f64 / 1000.0) * l.sqrt() * (1.0 + 9.0 * l * (1.0 + 32.0 * l * l))
        }
        let candidate_cost = cost(candidate.rtt_ms, candidate.loss);
        let master_cost = cost(self.rtt_ms, self.loss);
        // throughput = 1 / cost; candidate < 0.75 x master  <=>  master_cost < 0.75 x candidate_cost
        if candidate_cost > 0.0 && master_cost < 0.75 * candidate_cost {
            self.master_id = candidate.client_id;
            self.master_since = Some(now);
            self.rtt_ms = candidate.rtt_ms.max(1);
            self.delay = DelayMonitor::new(now);
            self.loss = candidate.loss;
            return true;
        }
        false
    }

    /// Starts a QCC round in QCCState.
    pub(super) fn restart_rounds(&mut self) {
        self.qcc_wait_ms = 1;
    }

    /// WaitTime of a QCC in QCCState (§3.1.5.7.3): 1 ms per active client (or doubling up to
    /// NoClientQCCInterval without clients) plus the highest RTT, in ms.
    pub(super) fn qcc_wait(&mut self, active: usize, max_active_rtt: u64) -> u64 {
        self.qcc_wait_ms = if active == 0 {
            (self.qcc_wait_ms * 2).min(NO_CLIENT_QCC_INTERVAL_MS)
        } else {
            active as u64
        };
        (self.qcc_wait_ms + max_active_rtt).clamp(QCC_MIN_WAIT_MS, RTT_CAP_MS)
    }

    /// QCCSeqNo for the next QCC.
    pub(super) fn next_qcc_seq(&mut self) -> u64 {
        self.next_qcc_seq += 1;
        self.next_qcc_seq - 1
    }

    /// Whether a QCR answers the last QCC sent.
    pub(super) fn answers_last_qcc(&self, qcc_seq_no: u64) -> bool {
        qcc_seq_no.checked_add(1) == Some(self.next_qcc_seq)
    }

    /// The SPM interval: at least 4 master round trips.
    pub(super) fn spm_interval(&self) -> Duration {
        Duration::from_millis(SPM_INTERVAL_MS.max(4 * self.rtt_ms))
    }

    /// Sets the NACK back-off bounds an SPM announces (from the master RTT and the number of
    /// active clients) and returns the SPM's sequence number.
    pub(super) fn next_spm(&mut self, active: usize) -> u64 {
        let min = (2 * self.rtt_ms).clamp(1, RTT_CAP_MS);
        let max = (min + active as u64 / 5).clamp(1, RTT_CAP_MS);
        self.min_nack_backoff = min as u16;
        self.max_nack_backoff = max as u16;
        self.spm_count += 1;
        self.next_spm_seq += 1;
        self.next_spm_seq - 1
    }

    /// The RTT as the u16 wire fields carry it.
    pub(super) fn wire_rtt(&self) -> u16 {
        self.rtt_ms.min(RTT_CAP_MS) as u16
    }
}
