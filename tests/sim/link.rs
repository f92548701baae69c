//! A seeded link model: independent and burst (Gilbert-Elliott) loss, duplication, reordering,
//! delay with jitter, and byte corruption. Every decision comes from the link's own RNG, so a
//! run is fully determined by its seed.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::SmallRng;

/// What a link does to the datagrams that cross it.
#[derive(Debug, Clone, Copy)]
pub struct LinkModel {
    /// Loss probability in the good state (independent loss).
    pub loss: f64,
    /// Gilbert-Elliott burst loss: probability of entering the bad state per packet, of leaving
    /// it, and the loss probability while in it.
    pub burst: Option<(f64, f64, f64)>,
    pub duplicate: f64,
    /// Probability that a packet is held back by up to `reorder_by` extra delay.
    pub reorder: f64,
    pub reorder_by: Duration,
    pub delay: Duration,
    pub jitter: Duration,
    /// Probability that one byte of the datagram is flipped.
    pub corrupt: f64,
}

impl LinkModel {
    pub fn perfect(delay: Duration) -> Self {
        Self {
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_by: Duration::ZERO,
            delay,
            jitter: Duration::ZERO,
            corrupt: 0.0,
        }
    }
}

/// Counters a link keeps, to relate repairs to real losses.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Copies with a flipped byte.
    pub corrupted: u64,
    /// Datagrams that were not lost but of which every copy was corrupted: the receiver's
    /// checksum or HMAC check drops them, so to the protocol they are lost too.
    pub only_corrupted: u64,
}

pub struct Link {
    pub model: LinkModel,
    in_bad_state: bool,
    rng: SmallRng,
    pub stats: LinkStats,
    /// A link that is cut drops everything (a vanished host).
    pub cut: bool,
}

impl Link {
    pub fn new(model: LinkModel, rng: SmallRng) -> Self {
        Self {
            model,
            in_bad_state: false,
            rng,
            stats: LinkStats::default(),
            cut: false,
        }
    }

    /// The copies of `bytes` that arrive, with their arrival times.
    pub fn carry(&mut self, now: Instant, bytes: &[u8]) -> Vec<(Instant, Vec<u8>)> {
        self.stats.sent += 1;
        if self.cut {
            self.stats.lost += 1;
            return Vec::new();
        }
        let loss = match self.model.burst {
            Some((enter, leave, bad_loss)) => {
                let flip = if self.in_bad_state { leave } else { enter };
                if self.rng.random_bool(flip) {
                    self.in_bad_state = !self.in_bad_state;
                }
                if self.in_bad_state {
                    bad_loss
                } else {
                    self.model.loss
                }
            }
            None => self.model.loss,
        };
        if self.rng.random_bool(loss) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let copies = if self.rng.random_bool(self.model.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let copies: Vec<(Instant, Vec<u8>)> = (0..copies)
            .map(|_| {
                let mut at = now + self.model.delay;
                if !self.model.jitter.is_zero() {
                    at += self.model.jitter.mul_f64(self.rng.random::<f64>());
                }
                if self.rng.random_bool(self.model.reorder) {
                    at += self.model.reorder_by.mul_f64(self.rng.random::<f64>());
                }
                let mut copy = bytes.to_vec();
                if !copy.is_empty() && self.rng.random_bool(self.model.corrupt) {
                    self.stats.corrupted += 1;
                    let i = self.rng.random_range(0..copy.len());
                    copy[i] ^= self.rng.random_range(1..=255u8);
                }
                (at, copy)
            })
            .collect();
        if copies.iter().all(|(_, copy)| copy != bytes) {
            self.stats.only_corrupted += 1;
        }
        copies
    }
}
