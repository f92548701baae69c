//! The send window and pacing (MS-WDSMT §3.1.5.9.5 and the rate cap): how far ODATA may run
//! ahead of what the master holds, how master ACKs grow it and congestion signals shrink it,
//! and the token bucket that spaces data packets under `max_rate`.

use std::time::{Duration, Instant};

/// Queueing delay (master RTT above its recent minimum) above which the window shrinks
/// instead of growing: enough to keep a gigabit bottleneck busy (1.25 MB queued), far below
/// what a switch, a rate limiter or a receiver's 8 MiB socket buffer holds before dropping
/// (README.md#pn-server-queueing-delay).
const QUEUE_DELAY_TARGET_MS: u64 = 10;
/// A NACK shrinks the window when the path is queueing or the master loses more than this
/// share of packets; below it, loss is taken as random (a noisy link), not congestion.
const LOSS_CUT_THRESHOLD: f64 = 0.10;
/// Burst the token bucket allows after an idle period.
const PACING_BURST: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(super) struct Window {
    /// The window, packets.
    size: u64,
    /// ExpMaxWindowSize and MaxWindowSize.
    exp_max: u64,
    max: u64,
    /// When the window was last shrunk (at most one cut per master round trip).
    last_cut: Option<Instant>,
    /// Highest sequence number the master reported holding (its HiODATASeqNo, validated): the
    /// window counts from here, not from MCTrail.
    base: u64,
    /// ODATA may be sent up to this sequence number (set by master ACKs).
    send_until: u64,
    /// Bytes per second on the data path; `None` = only the window limits.
    max_rate: Option<u64>,
    /// The token bucket: no data packet before this instant.
    pace_next: Instant,
}

impl Window {
    pub(super) fn new(now: Instant, exp_max: u64, max: u64, max_rate: Option<u64>) -> Self {
        Self {
            size: 1,
            exp_max,
            max,
            last_cut: None,
            base: 0,
            send_until: 0,
            max_rate,
            pace_next: now,
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// A master ACK says it holds everything up to `held`: the window base moves there and
    /// the window grows or (with a queue building) shrinks by what was newly acknowledged.
    pub(super) fn on_held(
        &mut self,
        now: Instant,
        held: u64,
        queueing_ms: u64,
        master_rtt_ms: u64,
    ) {
        if held > self.base {
            let acked = held - self.base;
            self.base = held;
            self.adjust(now, acked, queueing_ms, master_rtt_ms);
        }
    }

    /// ODATA may now run `size` packets beyond the base (or MCTrail, when that is higher).
    pub(super) fn open_from(&mut self, mc_trail: u64) {
        self.send_until = self.base.max(mc_trail) + self.size;
    }

    /// Whether ODATA `mc_lead + 1` is inside the window.
    pub(super) fn allows_after(&self, mc_lead: u64) -> bool {
        mc_lead < self.send_until
    }

    /// Window change for `acked` newly held packets. Deviation (the spec only grows the
    /// window on ACKs and shrinks it on NACKs): a queue building on the path to the master
    /// shrinks it by an eighth per round trip, so the window settles where the bottleneck
    /// stays busy without overflowing; otherwise it grows exponentially up to
    /// ExpMaxWindowSize, then by about a quarter per round trip up to MaxWindowSize.
    fn adjust(&mut self, now: Instant, acked: u64, queueing_ms: u64, master_rtt_ms: u64) {
        if queueing_ms > QUEUE_DELAY_TARGET_MS {
            self.cut(now, 7, 8, master_rtt_ms);
        } else if self.size < self.exp_max {
            self.size = (self.size + 2 * acked).min(self.exp_max);
        } else {
            // A quarter of the acknowledged packets: about +25 % per round trip, so that
            // reaching a bottleneck's queue overshoots it by a quarter, not by double.
            self.size = (self.size + acked.div_ceil(4)).min(self.max);
        }
    }

    /// A NACK arrived (`zero`: one without ranges), with the path's queueing delay and the
    /// master's loss rate as they stand after it. Deviation: the spec cuts the window by a
    /// quarter on every NACK. Here a NACK cuts it (once per round trip) only when the loss
    /// looks like congestion: a queue on the path or heavy loss. Random loss on an
    /// uncongested link (5 % at a gigabit is a NACK every millisecond or two) would otherwise
    /// keep the window at its floor. A NACK without ranges always cuts: it is how a client
    /// whose cache is full asks the server to slow down (MS-WDSMT §3.2.5.12.2), and it shows
    /// neither queueing nor loss (README.md#pn-server-nack).
    pub(super) fn on_nack(
        &mut self,
        now: Instant,
        zero: bool,
        queueing_ms: u64,
        master_loss: f64,
        master_rtt_ms: u64,
    ) {
        if zero || queueing_ms > QUEUE_DELAY_TARGET_MS / 2 || master_loss > LOSS_CUT_THRESHOLD {
            self.cut(now, 3, 4, master_rtt_ms);
        }
    }

    /// Shrinks the window to `num / den` of itself (at least 2), at most once per master round
    /// trip: every signal from one flight says the same thing, and cutting per signal would
    /// collapse the window to 2 under steady loss.
    fn cut(&mut self, now: Instant, num: u64, den: u64, master_rtt_ms: u64) {
        let gap = Duration::from_millis(master_rtt_ms.max(1));
        if self
            .last_cut
            .is_none_or(|at| now.saturating_duration_since(at) >= gap)
        {
            self.size = (self.size * num / den).max(2);
            self.last_cut = Some(now);
        }
    }

    /// The token bucket holds data back at `now`.
    pub(super) fn paced(&self, now: Instant) -> bool {
        now < self.pace_next
    }

    /// When the token bucket lets the next data packet go, if a rate is set.
    pub(super) fn pace_deadline(&self) -> Option<Instant> {
        self.max_rate.map(|_| self.pace_next)
    }

    /// A data packet of `len` bytes went out at `now`.
    pub(super) fn sent(&mut self, now: Instant, len: usize) {
        if let Some(rate) = self.max_rate {
            let cost = Duration::from_secs_f64(len as f64 / rate as f64);
            let floor = now.checked_sub(PACING_BURST).unwrap_or(now);
            self.pace_next = self.pace_next.max(floor) + cost;
        }
    }
}
