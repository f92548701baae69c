//! One block of content on the wire: an MS-WDSMT ODATA or RDATA packet whose Data field is an
//! MS-WDSMA DATA packet. This is the one place that knows both layouts at once; the server's
//! data path writes every block through it.
//!
//! The view is writable, in the manner of a raw packet view: [`BlockHeader::append`] lays the
//! headers out in the caller's buffer and leaves room for the block, the caller fills
//! [`BlockPacketMut::payload_mut`] straight from its source (a positional file read, no
//! intermediate copy), and [`BlockPacketMut::seal`] computes the security data over the
//! finished bytes.
//!
//! ```text
//! Security header  "WD", type, SecurityDataLen, SecurityData (filled by `seal`)
//! Session header   SessionId, OpCode ODATA/RDATA, SenderTime
//! ODATA/RDATA      ClientId, ODATASeqNo, TrailODATASeqNo, DataLen = 13 + block length
//! MA DATA          Packet-Size, OpCode DATA, BlockNumber, DataLen, the block (`payload_mut`)
//! ```

use super::codec::Put;
use super::ma::{DATA_HEADER_LEN, DataBlock};
use super::mt::{DataPacket, IDENTIFIER, OpCode, SECURITY_HEADER_FIXED_LEN, SESSION_HEADER_LEN};
use super::security::Protect;

/// The header fields of a data packet carrying one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// RDATA (a repair) rather than ODATA.
    pub rdata: bool,
    pub session_id: u32,
    pub sender_time: u64,
    /// The master client, the one that must ACK.
    pub client_id: u32,
    pub odata_seq_no: u64,
    pub trail_odata_seq_no: u64,
    /// 1-based.
    pub block_number: u64,
}

impl BlockHeader {
    /// Bytes of the whole datagram for a block of `block_len` bytes under `protect`.
    pub fn packet_len(protect: &Protect, block_len: usize) -> usize {
        Self::payload_offset(protect) + block_len
    }

    fn payload_offset(protect: &Protect) -> usize {
        SECURITY_HEADER_FIXED_LEN
            + protect.data_len()
            + SESSION_HEADER_LEN
            + DataPacket::HEADER_LEN
            + DATA_HEADER_LEN
    }

    /// Appends the datagram to `out` with a zeroed block of `block_len` bytes and returns a
    /// view on it, so several datagrams can lie back to back in one buffer. `block_len` must
    /// not exceed [`super::ma::MAX_BLOCK_LEN`]; larger values are a caller error (lengths would
    /// wrap).
    pub fn append<'a>(
        &self,
        out: &'a mut Vec<u8>,
        protect: &Protect,
        block_len: usize,
    ) -> BlockPacketMut<'a> {
        let start = out.len();
        out.reserve(Self::packet_len(protect, block_len));
        out.extend_from_slice(&IDENTIFIER);
        out.put_u8(protect.kind() as u8);
        let data_len = protect.data_len();
        out.put_u16(data_len as u16);
        out.resize(out.len() + data_len, 0);
        let covered_at = out.len() - start;
        out.put_u32(self.session_id);
        let opcode = if self.rdata {
            OpCode::RData
        } else {
            OpCode::OData
        };
        out.put_u8(opcode as u8);
        out.put_u64(self.sender_time);
        let ma_len = DATA_HEADER_LEN + block_len;
        DataPacket::emit_header(
            out,
            self.client_id,
            self.odata_seq_no,
            self.trail_odata_seq_no,
            ma_len as u16,
        );
        DataBlock::emit_header(out, self.block_number, block_len);
        let payload_at = out.len() - start;
        out.resize(out.len() + block_len, 0);
        BlockPacketMut {
            bytes: &mut out[start..],
            covered_at,
            payload_at,
        }
    }
}

/// A data packet laid out in a buffer by [`BlockHeader::append`], waiting for its block and
/// its security data.
#[derive(Debug)]
pub struct BlockPacketMut<'a> {
    bytes: &'a mut [u8],
    covered_at: usize,
    payload_at: usize,
}

impl BlockPacketMut<'_> {
    /// The block's bytes, to be filled by the caller.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.payload_at..]
    }

    /// The whole datagram's length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the datagram is empty (never: the headers are always there).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Fills the security data (checksum, HMAC or signature) over the finished packet;
    /// `protect` must be the one the packet was laid out with.
    pub fn seal(self, protect: &Protect) {
        let (head, covered) = self.bytes.split_at_mut(self.covered_at);
        protect.fill(covered, &mut head[SECURITY_HEADER_FIXED_LEN..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ma::MaPacket;
    use crate::wire::mt::{Body, Packet, Security};

    /// Appends one block packet the way the server does: lay out, fill, seal; a failed fill
    /// cuts the buffer back.
    fn encode(
        out: &mut Vec<u8>,
        header: &BlockHeader,
        block_len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), &'static str>,
    ) -> Result<(), &'static str> {
        let start = out.len();
        let mut packet = header.append(out, &Protect::Checksum, block_len);
        match fill(packet.payload_mut()) {
            Ok(()) => {
                packet.seal(&Protect::Checksum);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    #[test]
    fn block_packet_view_matches_generic_encoder() {
        let content = [7u8, 8, 9, 10, 11];
        let mut ma = Vec::new();
        MaPacket::Data(DataBlock {
            block_number: 42,
            data: &content,
        })
        .encode_into(&mut ma);
        for rdata in [false, true] {
            let data = DataPacket {
                client_id: 5,
                odata_seq_no: 9,
                trail_odata_seq_no: 3,
                data: &ma,
                fw_lead_seq_no: None,
            };
            let packet = Packet {
                security: Security::Checksum,
                session_id: 0x1234_5678,
                sender_time: 99,
                body: if rdata {
                    Body::RData(data)
                } else {
                    Body::OData(data)
                },
            };
            let header = BlockHeader {
                rdata,
                session_id: 0x1234_5678,
                sender_time: 99,
                client_id: 5,
                odata_seq_no: 9,
                trail_odata_seq_no: 3,
                block_number: 42,
            };
            let fill = |b: &mut [u8]| {
                b.copy_from_slice(&content);
                Ok(())
            };
            let mut fast = Vec::new();
            encode(&mut fast, &header, 5, fill).unwrap();
            assert_eq!(fast, packet.encode());
            assert_eq!(fast.len(), BlockHeader::packet_len(&Protect::Checksum, 5));
            // Appends after what the buffer already holds, leaving that untouched.
            let mut appended = vec![0xAB; 3];
            encode(&mut appended, &header, 5, fill).unwrap();
            assert_eq!(appended[..3], [0xAB; 3]);
            assert_eq!(appended[3..], packet.encode());
        }
        let header = BlockHeader {
            rdata: false,
            session_id: 1,
            sender_time: 1,
            client_id: 1,
            odata_seq_no: 1,
            trail_odata_seq_no: 1,
            block_number: 1,
        };
        let mut out = vec![1, 2, 3];
        let failed = encode(&mut out, &header, 4, |_| Err("io"));
        assert_eq!(failed, Err("io"));
        assert_eq!(out, [1, 2, 3]);
    }
}
