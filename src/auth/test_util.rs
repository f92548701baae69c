//! Deterministic inputs for tests: an "RNG" that replays given bytes.

/// Replays `bytes` cyclically; enough to pin challenges and session keys to known values.
pub struct Replay {
    bytes: Vec<u8>,
    at: usize,
}

impl Replay {
    pub fn new(bytes: &[u8]) -> Replay {
        Replay {
            bytes: bytes.to_vec(),
            at: 0,
        }
    }
}

impl rand::RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for d in dst {
            *d = self.bytes[self.at % self.bytes.len()];
            self.at += 1;
        }
    }
}
