//! MS-WDSMA (§2.2): the application packets carried in MT AppData/Data fields.
//!
//! Every packet starts with Packet-Size (u16, whole packet) and OpCode (u8).

use super::codec::{DecodeError, DecodeErrorKind, Put, Reader};

/// `WDSMC_PKTYPE_SRV_CIR`
pub const OP_SRVCIR: u8 = 0x01;
/// `WDSMC_PKTYPE_CNT_CIR`
pub const OP_CNTCIR: u8 = 0x02;
/// `WDSMC_PKTYPE_SRV_DATA`
pub const OP_DATA: u8 = 0x03;
/// `WDSMC_PKTYPE_CNT_PROGRESS`
pub const OP_PROGRESS: u8 = 0x04;

/// Common header length: Packet-Size and OpCode.
pub const HEADER_LEN: usize = 3;
/// Bytes of a DATA packet before the block's content.
pub const DATA_HEADER_LEN: usize = 13;
/// A CNTCIR carries at most this many missing ranges (§2.2.3).
pub const MAX_CNTCIR_RANGES: usize = 64;
/// Size of one block range on the wire.
pub const BLOCK_RANGE_LEN: usize = 16;
/// Largest block a DATA packet can carry: Packet-Size is a u16 covering the 13-byte header too.
pub const MAX_BLOCK_LEN: usize = u16::MAX as usize - DATA_HEADER_LEN;
/// Largest TotalBlocks this crate accepts in a session description: a client's bitmap is then
/// 512 MiB. Anything larger is a session no client here can hold (and no real WDS content
/// needs); session initiation refuses it and the client's bitmap is sized by it.
pub const MAX_TOTAL_BLOCKS: u64 = 1 << 32;

/// An inclusive range of 1-based block numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRange {
    pub start: u64,
    pub end: u64,
}

/// CNTCIR (§2.2.3): the client's answer to a query round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CntCir {
    /// Percentage of blocks received, 0..=100.
    pub progress: u8,
    /// Seconds since the client joined.
    pub time_in_session: u32,
    /// Missing block ranges, at most [`MAX_CNTCIR_RANGES`].
    pub ranges: Vec<BlockRange>,
}

/// DATA (§2.2.4): one block of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataBlock<'a> {
    /// 1-based block number.
    pub block_number: u64,
    pub data: &'a [u8],
}

impl DataBlock<'_> {
    /// Writes the [`DATA_HEADER_LEN`] bytes before a block of `block_len` bytes (Packet-Size,
    /// OpCode, BlockNumber, DataLen); the caller writes the block next. `block_len` must not
    /// exceed [`MAX_BLOCK_LEN`].
    pub(crate) fn emit_header(out: &mut Vec<u8>, block_number: u64, block_len: usize) {
        out.put_u16((DATA_HEADER_LEN + block_len) as u16);
        out.put_u8(OP_DATA);
        out.put_u64(block_number);
        out.put_u16(block_len as u16);
    }

    /// Bytes of the whole DATA packet.
    pub fn wire_len(&self) -> usize {
        DATA_HEADER_LEN + self.data.len()
    }
}

/// PROGRESS (§2.2.5): carried in QCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub time_in_session: u32,
    pub progress: u8,
}

/// A decoded MS-WDSMA packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaPacket<'a> {
    SrvCir,
    CntCir(CntCir),
    Data(DataBlock<'a>),
    Progress(Progress),
}

impl<'a> MaPacket<'a> {
    /// Decodes one MA packet; `bytes` must be exactly the packet (the carrying MT field's length).
    /// `base` is the offset of `bytes` in the datagram, for error reports.
    pub fn decode_at(bytes: &'a [u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, base, "MA packet");
        let size = r.u16("Packet-Size")? as usize;
        if size != bytes.len() {
            return Err(DecodeError {
                packet: "MA packet",
                field: "Packet-Size",
                offset: base,
                kind: DecodeErrorKind::LengthMismatch {
                    declared: size,
                    actual: bytes.len(),
                },
            });
        }
        let opcode = r.u8("OpCode")?;
        let packet = match opcode {
            OP_SRVCIR => {
                r.set_packet("MA SRVCIR");
                MaPacket::SrvCir
            }
            OP_CNTCIR => {
                r.set_packet("MA CNTCIR");
                let progress = r.u8("Progress")?;
                let time_in_session = r.u32("TimeInSession")?;
                let count = r.u16("RangeCount")? as usize;
                if count > MAX_CNTCIR_RANGES {
                    return Err(r.invalid("RangeCount", count as u64));
                }
                r.check_items(count, BLOCK_RANGE_LEN, "RangeList")?;
                let mut ranges = Vec::with_capacity(count);
                for _ in 0..count {
                    let start = r.u64("StartBlockNo")?;
                    let end = r.u64("EndBlockNo")?;
                    ranges.push(BlockRange { start, end });
                }
                MaPacket::CntCir(CntCir {
                    progress,
                    time_in_session,
                    ranges,
                })
            }
            OP_DATA => {
                r.set_packet("MA DATA");
                let block_number = r.u64("BlockNumber")?;
                let len = r.u16("DataLen")? as usize;
                if len != r.remaining() {
                    return Err(r.error(
                        "DataLen",
                        DecodeErrorKind::LengthMismatch {
                            declared: len,
                            actual: r.remaining(),
                        },
                    ));
                }
                MaPacket::Data(DataBlock {
                    block_number,
                    data: r.bytes(len, "Data")?,
                })
            }
            OP_PROGRESS => {
                r.set_packet("MA PROGRESS");
                MaPacket::Progress(Progress {
                    time_in_session: r.u32("TimeInSession")?,
                    progress: r.u8("Progress")?,
                })
            }
            other => {
                return Err(DecodeError {
                    packet: "MA packet",
                    field: "OpCode",
                    offset: base + 2,
                    kind: DecodeErrorKind::InvalidValue {
                        value: other.into(),
                    },
                });
            }
        };
        r.finish()?;
        Ok(packet)
    }

    /// Decodes one MA packet that stands alone.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_at(bytes, 0)
    }

    /// Appends the encoded packet to `out`.
    ///
    /// A DATA block longer than [`MAX_BLOCK_LEN`] or a CNTCIR with more than
    /// [`MAX_CNTCIR_RANGES`] ranges is a caller error: the length fields would be wrong.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        match self {
            MaPacket::SrvCir => out.put_u8(OP_SRVCIR),
            MaPacket::CntCir(p) => {
                out.put_u8(OP_CNTCIR);
                out.put_u8(p.progress);
                out.put_u32(p.time_in_session);
                out.put_u16(p.ranges.len() as u16);
                for range in &p.ranges {
                    out.put_u64(range.start);
                    out.put_u64(range.end);
                }
            }
            MaPacket::Data(p) => {
                // Packet-Size is written below, as for every packet.
                out.truncate(start);
                DataBlock::emit_header(out, p.block_number, p.data.len());
                out.extend_from_slice(p.data);
            }
            MaPacket::Progress(p) => {
                out.put_u8(OP_PROGRESS);
                out.put_u32(p.time_in_session);
                out.put_u8(p.progress);
            }
        }
        let size = (out.len() - start) as u16;
        out[start..start + 2].copy_from_slice(&size.to_be_bytes());
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}
