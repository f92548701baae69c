//! Cuts a TCP byte stream into whole PDUs by their frag_length.
//!
//! The framer holds at most one partial PDU, never more than the configured maximum fragment,
//! and takes from the input only the bytes that PDU still needs. A header it refuses (wrong
//! version, big-endian, frag_length below 16 or above the maximum) poisons it: every later call
//! returns the same error, so garbage can neither allocate nor loop.

use super::pdu::{HEADER_LEN, Header, PduError};

#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// frag_length of the PDU being collected, once its header is in.
    want: Option<usize>,
    max_frag: usize,
    failed: Option<PduError>,
}

impl Framer {
    /// A framer accepting PDUs of up to `max_frag` bytes (our max_recv_frag).
    pub fn new(max_frag: u16) -> Self {
        Self {
            buf: Vec::with_capacity(HEADER_LEN),
            want: None,
            max_frag: usize::from(max_frag).max(HEADER_LEN),
            failed: None,
        }
    }

    /// Takes bytes from the front of `input` and returns the next whole PDU, if complete.
    /// Call again while `input` is non-empty.
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, PduError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.want.is_none() {
            let take = (HEADER_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let header = Header::decode(&self.buf).map_err(|e| self.fail(e))?;
            let len = usize::from(header.frag_len);
            if len < HEADER_LEN || len > self.max_frag {
                return Err(self.fail(PduError::FragLength {
                    frag_len: header.frag_len,
                    max: self.max_frag,
                }));
            }
            self.buf.reserve_exact(len - self.buf.len());
            self.want = Some(len);
        }
        let want = self.want.unwrap_or(HEADER_LEN);
        let take = (want - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if self.buf.len() < want {
            return Ok(None);
        }
        self.want = None;
        Ok(Some(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(HEADER_LEN),
        )))
    }

    /// Whether a PDU has been started but not finished (an EOF now truncates it).
    pub fn is_mid_pdu(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes currently held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fail(&mut self, e: PduError) -> PduError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(len: u16) -> Vec<u8> {
        let mut p = vec![5, 0, 17, 3, 0x10, 0, 0, 0];
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
        p.resize(usize::from(len), 0xAA);
        p
    }

    #[test]
    fn splits_at_every_point() {
        let stream: Vec<u8> = [pdu(16), pdu(40), pdu(100)].concat();
        for cut in 0..stream.len() {
            let mut f = Framer::new(4280);
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                let mut input = part;
                while !input.is_empty() {
                    if let Some(p) = f.feed(&mut input).unwrap() {
                        got.push(p);
                    }
                }
            }
            assert_eq!(got, vec![pdu(16), pdu(40), pdu(100)], "cut at {cut}");
            assert!(!f.is_mid_pdu());
        }
    }

    #[test]
    fn refuses_bad_lengths_and_stays_failed() {
        for (bytes, max) in [(pdu(40), 20u16), (pdu(200), 100)] {
            let mut f = Framer::new(max);
            let mut input = &bytes[..];
            assert!(f.feed(&mut input).is_err());
            let mut more: &[u8] = &[0; 10];
            assert!(f.feed(&mut more).is_err());
            assert_eq!(f.buffered(), 0);
        }
        let mut short = pdu(16);
        short[8] = 4;
        let mut f = Framer::new(4280);
        assert!(matches!(
            f.feed(&mut &short[..]),
            Err(PduError::FragLength { frag_len: 4, .. })
        ));
        // A huge frag_length with little data is refused at the header, before buffering.
        let mut huge = pdu(16);
        huge[8..10].copy_from_slice(&0xFFFFu16.to_le_bytes());
        let mut f = Framer::new(4280);
        assert!(f.feed(&mut &huge[..]).is_err());
        // Big-endian and version errors.
        let mut be = pdu(16);
        be[4] = 0x00;
        assert!(matches!(
            Framer::new(4280).feed(&mut &be[..]),
            Err(PduError::DataRepresentation { .. })
        ));
        let mut v4 = pdu(16);
        v4[0] = 4;
        assert!(matches!(
            Framer::new(4280).feed(&mut &v4[..]),
            Err(PduError::Version { major: 4, .. })
        ));
    }
}
