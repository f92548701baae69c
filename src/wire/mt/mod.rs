//! MS-WDSMT (§2.2): security header, session header, the 15 packet types and their extended
//! options.
//!
//! ```text
//! Security Header   "WD", SecurityHeaderType u8, SecurityDataLen u16, SecurityData
//! Session Header    SessionId u32, OpCode u8, SenderTime u64
//! packet fields     per OpCode
//! Extended Options  OptionsCount u16, {OptionId u16, OptionLen u16, OptionValue}*  (JOIN, QCR, ODATA)
//! ```
//! The checksum, HMAC and signature all cover everything after the security header.

use super::codec::{DecodeError, DecodeErrorKind, Put, Reader};
use super::security::Protect;

mod data;
mod fields;
mod session;
mod status;

pub use data::{Ack, DataPacket, Nack, Ncf};
pub use session::{Demote, Join, JoinAck, Kick, Leave};
pub use status::{Poll, PollAck, Qcc, Qcr, Spm};

/// The two identifier bytes that open every packet.
pub const IDENTIFIER: [u8; 2] = *b"WD";
/// Bytes in the security header before SecurityData.
pub const SECURITY_HEADER_FIXED_LEN: usize = 5;
/// Bytes in the session header.
pub const SESSION_HEADER_LEN: usize = 13;
/// Size of the ClientName field of JOIN.
pub const CLIENT_NAME_LEN: usize = 32;
/// Size of one NACK/NCF range on the wire.
pub const SEQ_RANGE_LEN: usize = 16;
/// DEMOTE carries at most this many clients per packet (§2.2.13).
pub const MAX_DEMOTE_CLIENTS: usize = 250;
/// LossRate fields carry the rate multiplied by this.
pub const LOSS_RATE_SCALE: f64 = 1e16;

/// `WDSMCTP_OPT_CPU_UTIL`
pub const OPT_CPU_UTIL: u16 = 0x0101;
/// `WDSMCTP_OPT_MEM_UTIL`
pub const OPT_MEM_UTIL: u16 = 0x0102;
/// `WDSMCTP_OPT_NET_UTIL`
pub const OPT_NET_UTIL: u16 = 0x0103;
/// `WDSMCTP_OPT_ODATA_FW_LEAD_SEQ_NO`
pub const OPT_ODATA_FW_LEAD_SEQ_NO: u16 = 0x0406;
/// `WDSMCTP_OPT_USER_SID`
pub const OPT_USER_SID: u16 = 0x0504;
/// `WDSMCTP_OPT_CAPABILITIES`
pub const OPT_CAPABILITIES: u16 = 0x0505;
/// `WDSMCTP_CAP_MULTISTREAM`: the client can be demoted to a slower session.
pub const CAP_MULTISTREAM: u8 = 0x01;

/// Security header types (`WDSMCTP_SECHDR_*`), also the security modes of §2.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityType {
    None = 0,
    Hash = 1,
    Sign = 2,
    Checksum = 3,
}

impl SecurityType {
    /// Lower-case name, for logs and output.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Hash => "hash",
            Self::Sign => "sign",
            Self::Checksum => "checksum",
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Hash,
            2 => Self::Sign,
            3 => Self::Checksum,
            _ => return None,
        })
    }
}

/// The security header's content. A checksum is not stored: the decoder verifies it and the
/// encoder computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security<'a> {
    None,
    /// HMAC bytes, kept for verification by a layer that has the key.
    Hash(&'a [u8]),
    /// Signature bytes, kept for verification by a layer that has the key.
    Sign(&'a [u8]),
    Checksum,
}

impl Security<'_> {
    pub fn kind(&self) -> SecurityType {
        match self {
            Self::None => SecurityType::None,
            Self::Hash(_) => SecurityType::Hash,
            Self::Sign(_) => SecurityType::Sign,
            Self::Checksum => SecurityType::Checksum,
        }
    }
}

/// The MS-WDSMT checksum: the byte sum as u32, inverted.
///
/// Every data packet is summed on both ends, so this adds eight bytes at a time (see
/// [`byte_sum_short`]); the result is the same as adding byte by byte.
pub fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .chunks(8 * SUM_WORDS_PER_RUN)
        .fold(0u32, |sum, run| sum.wrapping_add(byte_sum_short(run)))
}

/// Longest run of 8-byte words whose 16-bit lanes cannot overflow (at most 2 × 255 per word).
const SUM_WORDS_PER_RUN: usize = 128;

/// Byte sum of at most `8 * SUM_WORDS_PER_RUN` bytes: the even and odd bytes of each
/// little-endian word are added into four 16-bit lanes of one u64, then the lanes are folded.
fn byte_sum_short(run: &[u8]) -> u32 {
    const LOW_BYTES: u64 = 0x00FF_00FF_00FF_00FF;
    let words = run.chunks_exact(8);
    let tail = words
        .remainder()
        .iter()
        .fold(0u32, |acc, &b| acc + u32::from(b));
    let lanes = words.fold(0u64, |lanes, word| {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let w = u64::from_le_bytes(le);
        lanes + (w & LOW_BYTES) + ((w >> 8) & LOW_BYTES)
    });
    let folded =
        (lanes & 0xFFFF) + ((lanes >> 16) & 0xFFFF) + ((lanes >> 32) & 0xFFFF) + (lanes >> 48);
    folded as u32 + tail
}

/// Packet opcodes (§2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    Spm = 0x01,
    Join = 0x02,
    JoinAck = 0x03,
    Qcc = 0x04,
    Qcr = 0x05,
    OData = 0x06,
    RData = 0x07,
    Ack = 0x08,
    Nack = 0x09,
    Ncf = 0x0A,
    Leave = 0x0B,
    Poll = 0x0C,
    PollAck = 0x0D,
    Kick = 0x0E,
    Demote = 0x0F,
}

impl OpCode {
    pub fn from_u8(v: u8) -> Option<Self> {
        use OpCode::*;
        Some(match v {
            0x01 => Spm,
            0x02 => Join,
            0x03 => JoinAck,
            0x04 => Qcc,
            0x05 => Qcr,
            0x06 => OData,
            0x07 => RData,
            0x08 => Ack,
            0x09 => Nack,
            0x0A => Ncf,
            0x0B => Leave,
            0x0C => Poll,
            0x0D => PollAck,
            0x0E => Kick,
            0x0F => Demote,
            _ => return None,
        })
    }

    /// The specification's name for the packet type.
    pub fn name(self) -> &'static str {
        use OpCode::*;
        match self {
            Spm => "SPM",
            Join => "JOIN",
            JoinAck => "JOINACK",
            Qcc => "QCC",
            Qcr => "QCR",
            OData => "ODATA",
            RData => "RDATA",
            Ack => "ACK",
            Nack => "NACK",
            Ncf => "NCF",
            Leave => "LEAVE",
            Poll => "POLL",
            PollAck => "POLLACK",
            Kick => "KICK",
            Demote => "DEMOTE",
        }
    }

    fn packet_label(self) -> &'static str {
        use OpCode::*;
        match self {
            Spm => "MT SPM",
            Join => "MT JOIN",
            JoinAck => "MT JOINACK",
            Qcc => "MT QCC",
            Qcr => "MT QCR",
            OData => "MT ODATA",
            RData => "MT RDATA",
            Ack => "MT ACK",
            Nack => "MT NACK",
            Ncf => "MT NCF",
            Leave => "MT LEAVE",
            Poll => "MT POLL",
            PollAck => "MT POLLACK",
            Kick => "MT KICK",
            Demote => "MT DEMOTE",
        }
    }
}

/// LEAVE reasons (§2.2.11). Unknown values are kept so that a receiver can log them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    Complete,
    Cancelled,
    Inactive,
    Other(u8),
}

impl LeaveReason {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Complete,
            1 => Self::Cancelled,
            2 => Self::Inactive,
            other => Self::Other(other),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Complete => 0,
            Self::Cancelled => 1,
            Self::Inactive => 2,
            Self::Other(v) => v,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Complete => "COMPLETE",
            Self::Cancelled => "CANCELLED",
            Self::Inactive => "INACTIVE",
            Self::Other(_) => "UNKNOWN",
        }
    }
}

/// KICK reasons (§2.2.12.1). Unknown values are kept so that a receiver can report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KickReason {
    PolicyNotMet,
    Fallback,
    Fail,
    Other(u8),
}

impl KickReason {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::PolicyNotMet,
            1 => Self::Fallback,
            2 => Self::Fail,
            other => Self::Other(other),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Self::PolicyNotMet => 0,
            Self::Fallback => 1,
            Self::Fail => 2,
            Self::Other(v) => v,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::PolicyNotMet => "POLICY_NOT_MET",
            Self::Fallback => "FALLBACK",
            Self::Fail => "FAIL",
            Self::Other(_) => "UNKNOWN",
        }
    }
}

/// An inclusive range of ODATA sequence numbers (NACK, NCF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: u64,
    pub end: u64,
}

/// The packet-specific section, one variant per opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Spm(Spm),
    Join(Join<'a>),
    JoinAck(JoinAck),
    Qcc(Qcc),
    Qcr(Qcr<'a>),
    OData(DataPacket<'a>),
    RData(DataPacket<'a>),
    Ack(Ack),
    Nack(Nack),
    Ncf(Ncf),
    Leave(Leave),
    Poll(Poll<'a>),
    PollAck(PollAck<'a>),
    Kick(Kick),
    Demote(Demote),
}

impl Body<'_> {
    /// Writes the packet-specific section (what follows the session header).
    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Body::Spm(p) => p.emit(out),
            Body::Join(p) => p.emit(out),
            Body::JoinAck(p) => p.emit(out),
            Body::Qcc(p) => p.emit(out),
            Body::Qcr(p) => p.emit(out),
            Body::OData(p) => p.emit(out, true),
            Body::RData(p) => p.emit(out, false),
            Body::Ack(p) => p.emit(out),
            Body::Nack(p) => p.emit(out),
            Body::Ncf(p) => p.emit(out),
            Body::Leave(p) => p.emit(out),
            Body::Poll(p) => p.emit(out),
            Body::PollAck(p) => p.emit(out),
            Body::Kick(p) => p.emit(out),
            Body::Demote(p) => p.emit(out),
        }
    }

    /// Bytes the packet-specific section takes on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Body::Spm(_) => Spm::WIRE_LEN,
            Body::Join(p) => p.wire_len(),
            Body::JoinAck(_) => JoinAck::WIRE_LEN,
            Body::Qcc(_) => Qcc::WIRE_LEN,
            Body::Qcr(p) => p.wire_len(),
            Body::OData(p) => p.wire_len(true),
            Body::RData(p) => p.wire_len(false),
            Body::Ack(_) => Ack::WIRE_LEN,
            Body::Nack(p) => p.wire_len(),
            Body::Ncf(p) => p.wire_len(),
            Body::Leave(_) => Leave::WIRE_LEN,
            Body::Poll(p) => p.wire_len(),
            Body::PollAck(p) => p.wire_len(),
            Body::Kick(p) => p.wire_len(),
            Body::Demote(p) => p.wire_len(),
        }
    }

    pub fn opcode(&self) -> OpCode {
        match self {
            Body::Spm(_) => OpCode::Spm,
            Body::Join(_) => OpCode::Join,
            Body::JoinAck(_) => OpCode::JoinAck,
            Body::Qcc(_) => OpCode::Qcc,
            Body::Qcr(_) => OpCode::Qcr,
            Body::OData(_) => OpCode::OData,
            Body::RData(_) => OpCode::RData,
            Body::Ack(_) => OpCode::Ack,
            Body::Nack(_) => OpCode::Nack,
            Body::Ncf(_) => OpCode::Ncf,
            Body::Leave(_) => OpCode::Leave,
            Body::Poll(_) => OpCode::Poll,
            Body::PollAck(_) => OpCode::PollAck,
            Body::Kick(_) => OpCode::Kick,
            Body::Demote(_) => OpCode::Demote,
        }
    }
}

/// The bytes the security data covers: everything after the security header (all of `bytes`
/// when the header itself is cut short, which no decoder accepts anyway).
pub fn covered(bytes: &[u8]) -> &[u8] {
    let data_len = bytes
        .get(3..5)
        .map_or(0, |len| u16::from_be_bytes([len[0], len[1]]) as usize);
    bytes
        .get(SECURITY_HEADER_FIXED_LEN + data_len..)
        .unwrap_or_default()
}

/// A whole MS-WDSMT datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub security: Security<'a>,
    pub session_id: u32,
    /// Sender's clock in milliseconds; only ever echoed back.
    pub sender_time: u64,
    pub body: Body<'a>,
}

/// The longest prefix of `name` that fits JOIN's ClientName beside its NUL (15 UTF-16 code
/// units), cut at a character boundary so that no surrogate pair is split. A NUL inside the
/// name ends it, as it would for the receiver (README.md#pn-client-join-name).
pub fn client_name_prefix(name: &str) -> &str {
    let mut units = 0;
    for (at, c) in name.char_indices() {
        units += c.len_utf16();
        if c == '\0' || units > CLIENT_NAME_LEN / 2 - 1 {
            return &name[..at];
        }
    }
    name
}

impl<'a> Packet<'a> {
    /// Decodes one datagram, verifying the checksum when the security header carries one.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0, "MT security header");
        let identifier = r.bytes(2, "Identifier")?;
        if identifier != IDENTIFIER {
            return Err(DecodeError {
                packet: "MT security header",
                field: "Identifier",
                offset: 0,
                kind: DecodeErrorKind::InvalidValue {
                    value: u16::from_be_bytes([identifier[0], identifier[1]]).into(),
                },
            });
        }
        let type_byte = r.u8("SecurityHeaderType")?;
        let kind = SecurityType::from_u8(type_byte)
            .ok_or_else(|| r.invalid("SecurityHeaderType", type_byte.into()))?;
        let data_len = r.u16("SecurityDataLen")? as usize;
        let expected_len = match kind {
            SecurityType::None => Some(0),
            SecurityType::Checksum => Some(4),
            SecurityType::Hash | SecurityType::Sign => None,
        };
        if expected_len.is_some_and(|n| n != data_len) {
            return Err(r.error(
                "SecurityDataLen",
                DecodeErrorKind::LengthMismatch {
                    declared: data_len,
                    actual: expected_len.unwrap_or(0),
                },
            ));
        }
        let data = r.bytes(data_len, "SecurityData")?;
        let covered_at = r.offset();
        let covered = &bytes[covered_at..];
        let security = match kind {
            SecurityType::None => Security::None,
            SecurityType::Hash => Security::Hash(data),
            SecurityType::Sign => Security::Sign(data),
            SecurityType::Checksum => {
                let carried = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let computed = checksum(covered);
                if carried != computed {
                    return Err(DecodeError {
                        packet: "MT security header",
                        field: "SecurityData",
                        offset: SECURITY_HEADER_FIXED_LEN,
                        kind: DecodeErrorKind::BadChecksum { carried, computed },
                    });
                }
                Security::Checksum
            }
        };

        let mut r = Reader::new(covered, covered_at, "MT session header");
        let session_id = r.u32("SessionId")?;
        let opcode_byte = r.u8("OpCode")?;
        let opcode =
            OpCode::from_u8(opcode_byte).ok_or_else(|| r.invalid("OpCode", opcode_byte.into()))?;
        let sender_time = r.u64("SenderTime")?;
        r.set_packet(opcode.packet_label());
        let body = Self::decode_body(opcode, &mut r)?;
        r.finish()?;
        Ok(Packet {
            security,
            session_id,
            sender_time,
            body,
        })
    }

    fn decode_body(opcode: OpCode, r: &mut Reader<'a>) -> Result<Body<'a>, DecodeError> {
        let body = match opcode {
            OpCode::Spm => Body::Spm(Spm::parse(r)?),
            OpCode::Join => Body::Join(Join::parse(r)?),
            OpCode::JoinAck => Body::JoinAck(JoinAck::parse(r)?),
            OpCode::Qcc => Body::Qcc(Qcc::parse(r)?),
            OpCode::Qcr => Body::Qcr(Qcr::parse(r)?),
            OpCode::OData => Body::OData(DataPacket::parse(r, true)?),
            OpCode::RData => Body::RData(DataPacket::parse(r, false)?),
            OpCode::Ack => Body::Ack(Ack::parse(r)?),
            OpCode::Nack => Body::Nack(Nack::parse(r)?),
            OpCode::Ncf => Body::Ncf(Ncf::parse(r)?),
            OpCode::Leave => Body::Leave(Leave::parse(r)?),
            OpCode::Poll => Body::Poll(Poll::parse(r)?),
            OpCode::PollAck => Body::PollAck(PollAck::parse(r)?),
            OpCode::Kick => Body::Kick(Kick::parse(r)?),
            OpCode::Demote => Body::Demote(Demote::parse(r)?),
        };
        // Packets without extended options in the specification still tolerate an empty or
        // unknown options section after their fields.
        if !matches!(
            opcode,
            OpCode::Join | OpCode::Qcr | OpCode::OData | OpCode::RData
        ) {
            fields::read_options(r)?;
        }
        Ok(body)
    }

    /// Encodes the packet into `out` (cleared first), computing the checksum when the security
    /// is [`Security::Checksum`].
    ///
    /// Variable-length fields are written with u16 lengths; a caller that puts more than
    /// 65535 bytes (or ranges, or clients) in one packet gets a truncated length, so senders
    /// size their packets first (every sender in this crate stays far below the limits).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&IDENTIFIER);
        out.put_u8(self.security.kind() as u8);
        match self.security {
            Security::None => out.put_u16(0),
            Security::Checksum => {
                out.put_u16(4);
                out.put_u32(0);
            }
            Security::Hash(data) | Security::Sign(data) => {
                out.put_u16(data.len() as u16);
                out.extend_from_slice(data);
            }
        }
        let covered_at = out.len();
        out.put_u32(self.session_id);
        out.put_u8(self.body.opcode() as u8);
        out.put_u64(self.sender_time);
        self.encode_body(out);
        if self.security == Security::Checksum {
            let sum = checksum(&out[covered_at..]);
            out[covered_at - 4..covered_at].copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// Encodes the packet into `out` (cleared first) with the security header `protect`
    /// makes (its data computed over the finished packet); `self.security` is ignored.
    pub fn encode_protected(&self, out: &mut Vec<u8>, protect: &Protect) {
        out.clear();
        self.append_protected(out, protect);
    }

    /// [`Self::encode_protected`], appending to what `out` already holds.
    pub fn append_protected(&self, out: &mut Vec<u8>, protect: &Protect) {
        let start = out.len();
        out.reserve(self.wire_len(protect.data_len()));
        out.extend_from_slice(&IDENTIFIER);
        out.put_u8(protect.kind() as u8);
        let data_len = protect.data_len();
        out.put_u16(data_len as u16);
        out.resize(out.len() + data_len, 0);
        let covered_at = out.len();
        out.put_u32(self.session_id);
        out.put_u8(self.body.opcode() as u8);
        out.put_u64(self.sender_time);
        self.encode_body(out);
        let (head, covered) = out.split_at_mut(covered_at);
        protect.fill(covered, &mut head[start + SECURITY_HEADER_FIXED_LEN..]);
    }

    /// Encodes the packet into a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.body.emit(out);
    }

    /// Bytes of the encoded packet with a security header carrying `security_data_len` bytes.
    pub fn wire_len(&self, security_data_len: usize) -> usize {
        SECURITY_HEADER_FIXED_LEN + security_data_len + SESSION_HEADER_LEN + self.body.wire_len()
    }
}

/// Converts a loss rate in [0, 1] to its wire form (× 10^16).
pub fn loss_rate_to_wire(rate: f64) -> u64 {
    (rate.clamp(0.0, 1.0) * LOSS_RATE_SCALE) as u64
}

/// Converts a wire loss rate to [0, 1] (values above 10^16 are clamped).
pub fn loss_rate_from_wire(value: u64) -> f64 {
    (value as f64 / LOSS_RATE_SCALE).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_equals_the_plain_byte_sum() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let plain = |b: &[u8]| !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        for len in [0, 1, 7, 8, 9, 1023, 1024, 1025, 8249, 20_000] {
            assert_eq!(
                checksum(&bytes[..len]),
                plain(&bytes[..len]),
                "length {len}"
            );
        }
        let ones = vec![0xFFu8; 70_000];
        assert_eq!(checksum(&ones), plain(&ones));
    }

    /// Every packet's `wire_len` is what `encode` writes.
    #[test]
    fn wire_len_is_the_encoded_length() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let ranges = vec![SeqRange { start: 1, end: 2 }, SeqRange { start: 5, end: 9 }];
        let data = DataPacket {
            client_id: 1,
            odata_seq_no: 2,
            trail_odata_seq_no: 1,
            data: &[1, 2, 3],
            fw_lead_seq_no: Some(7),
        };
        let bodies = [
            Body::Spm(Spm {
                spm_seq_no: 1,
                master_client_id: 2,
                min_nack_backoff: 3,
                max_nack_backoff: 4,
                trail_odata_seq_no: 5,
                lead_odata_seq_no: 6,
                rtt: 7,
            }),
            Body::Join(Join {
                client_name: "NAME".into(),
                ip_address: IpAddr::V6(Ipv6Addr::LOCALHOST),
                mac_address: &[1, 2, 3, 4, 5, 6],
                user_sid: Some(&[1, 2, 3]),
                capabilities: Some(&[CAP_MULTISTREAM]),
            }),
            Body::Join(Join {
                client_name: String::new(),
                ip_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                mac_address: &[],
                user_sid: None,
                capabilities: None,
            }),
            Body::JoinAck(JoinAck {
                client_id: 1,
                min_nack_backoff: 2,
                max_nack_backoff: 3,
                rtt: 4,
                client_time: 5,
            }),
            Body::Qcc(Qcc {
                qcc_seq_no: 1,
                qcr_backoff: 2,
            }),
            Body::Qcr(Qcr {
                client_id: 1,
                qcc_seq_no: 2,
                backoff: 3,
                server_time: 4,
                hi_odata_seq_no: 5,
                loss_rate: 6,
                app_data: &[1, 2],
                cpu_util: Some(1),
                mem_util: None,
                net_util: Some(3),
            }),
            Body::OData(data),
            Body::RData(data),
            Body::Ack(Ack {
                client_id: 1,
                odata_seq_no: 2,
                server_time: 3,
                hi_odata_seq_no: 4,
                loss_rate: 5,
            }),
            Body::Nack(Nack {
                client_id: 1,
                hi_odata_seq_no: 2,
                loss_rate: 3,
                ranges: ranges.clone(),
            }),
            Body::Ncf(Ncf { ranges }),
            Body::Leave(Leave {
                client_id: 1,
                reason: LeaveReason::Complete,
            }),
            Body::Poll(Poll {
                poll_seq_no: 1,
                backoff: 2,
                app_data: &[3],
            }),
            Body::PollAck(PollAck {
                client_id: 1,
                poll_seq_no: 2,
                app_data: &[],
            }),
            Body::Kick(Kick {
                clients: vec![(1, KickReason::Fail), (2, KickReason::Fallback)],
            }),
            Body::Demote(Demote {
                lower_session_id: 1,
                multicast_addr: IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
                multicast_port: 2,
                unicast_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                unicast_port: 3,
                clients: vec![4, 5],
            }),
        ];
        for body in bodies {
            let packet = Packet {
                security: Security::Checksum,
                session_id: 1,
                sender_time: 2,
                body,
            };
            let bytes = packet.encode();
            assert_eq!(
                bytes.len(),
                packet.wire_len(4),
                "{:?}",
                packet.body.opcode()
            );
            assert_eq!(Packet::decode(&bytes).unwrap().encode(), bytes);
        }
    }
}
