//! The loss estimate of §3.2.5.10: an exponentially weighted average with weight α on the
//! newest sample (the spec's weights read swapped, README.md#pn-client-loss-rate), seeded when
//! the first sequence number is learnt so that joining does not count the backlog as lost.

use crate::wire::mt;

/// Loss-rate EWMA weight α (§3.2.5.10).
pub const LOSS_RATE_ALPHA: f64 = 500.0 / 65536.0;

#[derive(Debug, Clone, Default)]
pub(super) struct LossEstimate {
    /// LossRate, 0..=1.
    rate: f64,
    /// HiLossODATASeqNo; `None` until FirstODATASeqNo is known (nothing is counted before).
    hi_loss_seq_no: Option<u64>,
}

impl LossEstimate {
    /// Starts counting after `seq_no` (FirstODATASeqNo was just learnt).
    pub(super) fn seed(&mut self, seq_no: u64) {
        self.hi_loss_seq_no = Some(seq_no);
    }

    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// The rate as the wire carries it (× 10^16).
    pub(super) fn wire(&self) -> u64 {
        mt::loss_rate_to_wire(self.rate)
    }

    /// §3.2.5.10.1: every sequence number up to the SPM's lead not yet seen counts as lost.
    pub(super) fn on_spm(&mut self, lead: u64) {
        let Some(hi) = self.hi_loss_seq_no else {
            return;
        };
        if lead <= hi {
            return;
        }
        self.count_losses(lead - hi);
        self.hi_loss_seq_no = Some(lead);
    }

    /// §3.2.5.10.2: the gap before `seq` counts as lost, `seq` itself as received. A packet at
    /// or below HiLossODATASeqNo (a repair or a late one) was already counted as lost.
    pub(super) fn on_data(&mut self, seq: u64) {
        let Some(hi) = self.hi_loss_seq_no else {
            return;
        };
        if seq <= hi {
            return;
        }
        self.count_losses(seq - hi - 1);
        // One ODATA received in order: one EWMA step towards 0.
        self.rate *= 1.0 - LOSS_RATE_ALPHA;
        self.hi_loss_seq_no = Some(seq);
    }

    /// `count` consecutive ODATA missed: LossRate ← (1−α)^count·LossRate + (1 − (1−α)^count),
    /// the closed form of `count` EWMA steps towards 1 (bounded work for any jump).
    fn count_losses(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        let keep = (1.0 - LOSS_RATE_ALPHA).powi(count.min(1 << 20) as i32);
        self.rate = 1.0 - (1.0 - self.rate) * keep;
    }
}
