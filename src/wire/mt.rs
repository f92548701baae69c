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

use std::net::IpAddr;

use super::codec::{
    DecodeError, DecodeErrorKind, Put, Reader, ip_bytes, ip_len, utf16le_until_nul,
    utf16le_with_nul,
};
use super::security::Protect;

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

/// SPM (§2.2.14): session status heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spm {
    pub spm_seq_no: u64,
    pub master_client_id: u32,
    pub min_nack_backoff: u16,
    pub max_nack_backoff: u16,
    pub trail_odata_seq_no: u64,
    pub lead_odata_seq_no: u64,
    pub rtt: u16,
}

/// JOIN (§2.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join<'a> {
    /// Machine name; at most 15 UTF-16 code units fit beside the NUL.
    pub client_name: String,
    pub ip_address: IpAddr,
    pub mac_address: &'a [u8],
    pub user_sid: Option<&'a [u8]>,
    pub capabilities: Option<&'a [u8]>,
}

/// JOINACK (§2.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinAck {
    pub client_id: u32,
    pub min_nack_backoff: u16,
    pub max_nack_backoff: u16,
    pub rtt: u16,
    pub client_time: u64,
}

/// QCC (§2.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcc {
    pub qcc_seq_no: u64,
    pub qcr_backoff: u16,
}

/// QCR (§2.2.8), all three flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcr<'a> {
    pub client_id: u32,
    pub qcc_seq_no: u64,
    pub backoff: u16,
    pub server_time: u64,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
    /// An MS-WDSMA PROGRESS packet, or empty.
    pub app_data: &'a [u8],
    pub cpu_util: Option<u8>,
    pub mem_util: Option<u8>,
    pub net_util: Option<u8>,
}

/// ODATA (§2.2.16) and RDATA (§2.2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPacket<'a> {
    pub client_id: u32,
    pub odata_seq_no: u64,
    pub trail_odata_seq_no: u64,
    /// An MS-WDSMA DATA packet.
    pub data: &'a [u8],
    /// `WDSMCTP_OPT_ODATA_FW_LEAD_SEQ_NO` (ODATA only).
    pub fw_lead_seq_no: Option<u64>,
}

/// ACK (§2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub client_id: u32,
    pub odata_seq_no: u64,
    pub server_time: u64,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
}

/// NACK (§2.2.18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub client_id: u32,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
    pub ranges: Vec<SeqRange>,
}

/// NCF (§2.2.19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ncf {
    pub ranges: Vec<SeqRange>,
}

/// LEAVE (§2.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leave {
    pub client_id: u32,
    pub reason: LeaveReason,
}

/// POLL (§2.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll<'a> {
    pub poll_seq_no: u64,
    pub backoff: u16,
    /// An MS-WDSMA SRVCIR packet.
    pub app_data: &'a [u8],
}

/// POLLACK (§2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollAck<'a> {
    pub client_id: u32,
    pub poll_seq_no: u64,
    /// An MS-WDSMA CNTCIR packet.
    pub app_data: &'a [u8],
}

/// KICK (§2.2.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub clients: Vec<(u32, KickReason)>,
}

/// DEMOTE (§2.2.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demote {
    pub lower_session_id: u32,
    pub multicast_addr: IpAddr,
    pub multicast_port: u16,
    pub unicast_addr: IpAddr,
    pub unicast_port: u16,
    pub clients: Vec<u32>,
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

/// The extended options a packet may carry, as decoded. Unknown ids are skipped.
#[derive(Default)]
struct Options<'a> {
    cpu_util: Option<u8>,
    mem_util: Option<u8>,
    net_util: Option<u8>,
    fw_lead_seq_no: Option<u64>,
    user_sid: Option<&'a [u8]>,
    capabilities: Option<&'a [u8]>,
}

fn read_options<'a>(r: &mut Reader<'a>) -> Result<Options<'a>, DecodeError> {
    let mut options = Options::default();
    // An absent section and OptionsCount = 0 mean the same.
    if r.remaining() == 0 {
        return Ok(options);
    }
    let count = r.u16("OptionsCount")? as usize;
    r.check_items(count, 4, "Options")?;
    for _ in 0..count {
        let id = r.u16("OptionId")?;
        let len = r.u16("OptionLen")? as usize;
        let at = r.offset();
        let value = r.bytes(len, "OptionValue")?;
        let wrong_len = || DecodeError {
            packet: "MT extended option",
            field: "OptionLen",
            offset: at - 2,
            kind: DecodeErrorKind::LengthMismatch {
                declared: len,
                actual: if id == OPT_ODATA_FW_LEAD_SEQ_NO { 8 } else { 1 },
            },
        };
        match id {
            OPT_CPU_UTIL | OPT_MEM_UTIL | OPT_NET_UTIL => {
                let &[v] = value else { return Err(wrong_len()) };
                let slot = match id {
                    OPT_CPU_UTIL => &mut options.cpu_util,
                    OPT_MEM_UTIL => &mut options.mem_util,
                    _ => &mut options.net_util,
                };
                *slot = Some(v);
            }
            // The spec gives no size for this value; we send 8 bytes and read 1 to 8.
            OPT_ODATA_FW_LEAD_SEQ_NO => {
                if value.is_empty() || value.len() > 8 {
                    return Err(wrong_len());
                }
                let seq = value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                options.fw_lead_seq_no = Some(seq);
            }
            OPT_USER_SID => options.user_sid = Some(value),
            OPT_CAPABILITIES => options.capabilities = Some(value),
            _ => {}
        }
    }
    Ok(options)
}

/// Writes an extended options section; nothing at all when there are no options.
fn write_options(out: &mut Vec<u8>, options: &[(u16, &[u8])]) {
    if options.is_empty() {
        return;
    }
    out.put_u16(options.len() as u16);
    for (id, value) in options {
        out.put_u16(*id);
        out.put_u16(value.len() as u16);
        out.extend_from_slice(value);
    }
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

fn read_ranges(r: &mut Reader<'_>) -> Result<Vec<SeqRange>, DecodeError> {
    let count = r.u16("RangeCount")? as usize;
    r.check_items(count, SEQ_RANGE_LEN, "RangeList")?;
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        let start = r.u64("StartODATASeqNo")?;
        let end = r.u64("EndODATASeqNo")?;
        ranges.push(SeqRange { start, end });
    }
    Ok(ranges)
}

fn write_ranges(out: &mut Vec<u8>, ranges: &[SeqRange]) {
    out.put_u16(ranges.len() as u16);
    for range in ranges {
        out.put_u64(range.start);
        out.put_u64(range.end);
    }
}

fn read_app_data<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    let len = r.u16(field)? as usize;
    r.bytes(len, "AppData")
}

fn write_app_data(out: &mut Vec<u8>, data: &[u8]) {
    out.put_u16(data.len() as u16);
    out.extend_from_slice(data);
}

fn read_address(
    r: &mut Reader<'_>,
    len_field: &'static str,
    field: &'static str,
) -> Result<IpAddr, DecodeError> {
    let len = r.u8(len_field)?;
    if len != 4 && len != 16 {
        return Err(r.invalid(len_field, len.into()));
    }
    r.ip(len.into(), field)
}

fn write_address(out: &mut Vec<u8>, ip: &IpAddr) {
    out.put_u8(ip_len(ip));
    ip_bytes(ip, out);
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
            OpCode::Spm => Body::Spm(Spm {
                spm_seq_no: r.u64("SPMSeqNo")?,
                master_client_id: r.u32("MasterClientId")?,
                min_nack_backoff: r.u16("MinNACKBackOff")?,
                max_nack_backoff: r.u16("MaxNACKBackOff")?,
                trail_odata_seq_no: r.u64("TrailODATASeqNo")?,
                lead_odata_seq_no: r.u64("LeadODATASeqNo")?,
                rtt: r.u16("RTT")?,
            }),
            OpCode::Join => {
                let name_bytes = r.bytes(CLIENT_NAME_LEN, "ClientName")?;
                // The last code unit is the terminating NUL; it is not part of the name even
                // when a sender forgot it.
                let client_name = utf16le_until_nul(&name_bytes[..CLIENT_NAME_LEN - 2])
                    .ok_or_else(|| r.error("ClientName", DecodeErrorKind::InvalidUtf16))?;
                let ip_address = read_address(r, "IPAddrLen", "IPAddress")?;
                let mac_len = r.u8("MacAddrLen")? as usize;
                let mac_address = r.bytes(mac_len, "MacAddress")?;
                let options = read_options(r)?;
                Body::Join(Join {
                    client_name,
                    ip_address,
                    mac_address,
                    user_sid: options.user_sid,
                    capabilities: options.capabilities,
                })
            }
            OpCode::JoinAck => Body::JoinAck(JoinAck {
                client_id: r.u32("ClientId")?,
                min_nack_backoff: r.u16("MinNACKBackOff")?,
                max_nack_backoff: r.u16("MaxNACKBackOff")?,
                rtt: r.u16("RTT")?,
                client_time: r.u64("ClientTime")?,
            }),
            OpCode::Qcc => Body::Qcc(Qcc {
                qcc_seq_no: r.u64("QCCSeqNo")?,
                qcr_backoff: r.u16("QCRBackOff")?,
            }),
            OpCode::Qcr => {
                let client_id = r.u32("ClientId")?;
                let qcc_seq_no = r.u64("QCCSeqNo")?;
                let backoff = r.u16("BackOff")?;
                let server_time = r.u64("ServerTime")?;
                let hi_odata_seq_no = r.u64("HiODATASeqNo")?;
                let loss_rate = r.u64("LossRate")?;
                let app_data = read_app_data(r, "AppDataLen")?;
                let options = read_options(r)?;
                Body::Qcr(Qcr {
                    client_id,
                    qcc_seq_no,
                    backoff,
                    server_time,
                    hi_odata_seq_no,
                    loss_rate,
                    app_data,
                    cpu_util: options.cpu_util,
                    mem_util: options.mem_util,
                    net_util: options.net_util,
                })
            }
            OpCode::OData | OpCode::RData => {
                let client_id = r.u32("ClientId")?;
                let odata_seq_no = r.u64("ODATASeqNo")?;
                let trail_odata_seq_no = r.u64("TrailODATASeqNo")?;
                let data = read_app_data(r, "DataLen")?;
                let options = read_options(r)?;
                let packet = DataPacket {
                    client_id,
                    odata_seq_no,
                    trail_odata_seq_no,
                    data,
                    fw_lead_seq_no: None,
                };
                if opcode == OpCode::OData {
                    Body::OData(DataPacket {
                        fw_lead_seq_no: options.fw_lead_seq_no,
                        ..packet
                    })
                } else {
                    Body::RData(packet)
                }
            }
            OpCode::Ack => Body::Ack(Ack {
                client_id: r.u32("ClientId")?,
                odata_seq_no: r.u64("ODATASeqNo")?,
                server_time: r.u64("ServerTime")?,
                hi_odata_seq_no: r.u64("HiODATASeqNo")?,
                loss_rate: r.u64("LossRate")?,
            }),
            OpCode::Nack => Body::Nack(Nack {
                client_id: r.u32("ClientId")?,
                hi_odata_seq_no: r.u64("HiODATASeqNo")?,
                loss_rate: r.u64("LossRate")?,
                ranges: read_ranges(r)?,
            }),
            OpCode::Ncf => Body::Ncf(Ncf {
                ranges: read_ranges(r)?,
            }),
            OpCode::Leave => Body::Leave(Leave {
                client_id: r.u32("ClientId")?,
                reason: LeaveReason::from_u8(r.u8("LeaveReason")?),
            }),
            OpCode::Poll => Body::Poll(Poll {
                poll_seq_no: r.u64("POLLSeqNo")?,
                backoff: r.u16("BackOff")?,
                app_data: read_app_data(r, "AppDataLen")?,
            }),
            OpCode::PollAck => Body::PollAck(PollAck {
                client_id: r.u32("ClientId")?,
                poll_seq_no: r.u64("POLLSeqNo")?,
                app_data: read_app_data(r, "AppDataLen")?,
            }),
            OpCode::Kick => {
                let count = r.u16("ClientCount")? as usize;
                r.check_items(count, 5, "ClientList")?;
                let mut clients = Vec::with_capacity(count);
                for _ in 0..count {
                    let id = r.u32("ClientId")?;
                    clients.push((id, KickReason::from_u8(r.u8("Reason")?)));
                }
                Body::Kick(Kick { clients })
            }
            OpCode::Demote => {
                let lower_session_id = r.u32("LowerSessionId")?;
                let multicast_addr = read_address(r, "MAddrLen", "MAddress")?;
                let multicast_port = r.u16("MPort")?;
                let unicast_addr = read_address(r, "UAddrLen", "UAddress")?;
                let unicast_port = r.u16("UPort")?;
                let count = r.u16("ClientCount")? as usize;
                if count > MAX_DEMOTE_CLIENTS {
                    return Err(r.invalid("ClientCount", count as u64));
                }
                r.check_items(count, 4, "ClientList")?;
                let mut clients = Vec::with_capacity(count);
                for _ in 0..count {
                    clients.push(r.u32("ClientId")?);
                }
                Body::Demote(Demote {
                    lower_session_id,
                    multicast_addr,
                    multicast_port,
                    unicast_addr,
                    unicast_port,
                    clients,
                })
            }
        };
        // Packets without extended options in the specification still tolerate an empty or
        // unknown options section after their fields.
        if !matches!(
            opcode,
            OpCode::Join | OpCode::Qcr | OpCode::OData | OpCode::RData
        ) {
            read_options(r)?;
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
        protect.fill(covered, &mut head[SECURITY_HEADER_FIXED_LEN..]);
    }

    /// Encodes the packet into a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match &self.body {
            Body::Spm(p) => {
                out.put_u64(p.spm_seq_no);
                out.put_u32(p.master_client_id);
                out.put_u16(p.min_nack_backoff);
                out.put_u16(p.max_nack_backoff);
                out.put_u64(p.trail_odata_seq_no);
                out.put_u64(p.lead_odata_seq_no);
                out.put_u16(p.rtt);
            }
            Body::Join(p) => {
                let mut name = Vec::with_capacity(CLIENT_NAME_LEN);
                utf16le_with_nul(client_name_prefix(&p.client_name), &mut name);
                name.resize(CLIENT_NAME_LEN, 0);
                out.extend_from_slice(&name);
                write_address(out, &p.ip_address);
                out.put_u8(p.mac_address.len() as u8);
                out.extend_from_slice(p.mac_address);
                let mut options: Vec<(u16, &[u8])> = Vec::new();
                if let Some(sid) = p.user_sid {
                    options.push((OPT_USER_SID, sid));
                }
                if let Some(caps) = p.capabilities {
                    options.push((OPT_CAPABILITIES, caps));
                }
                write_options(out, &options);
            }
            Body::JoinAck(p) => {
                out.put_u32(p.client_id);
                out.put_u16(p.min_nack_backoff);
                out.put_u16(p.max_nack_backoff);
                out.put_u16(p.rtt);
                out.put_u64(p.client_time);
            }
            Body::Qcc(p) => {
                out.put_u64(p.qcc_seq_no);
                out.put_u16(p.qcr_backoff);
            }
            Body::Qcr(p) => {
                out.put_u32(p.client_id);
                out.put_u64(p.qcc_seq_no);
                out.put_u16(p.backoff);
                out.put_u64(p.server_time);
                out.put_u64(p.hi_odata_seq_no);
                out.put_u64(p.loss_rate);
                write_app_data(out, p.app_data);
                let utils = [
                    (OPT_CPU_UTIL, p.cpu_util),
                    (OPT_MEM_UTIL, p.mem_util),
                    (OPT_NET_UTIL, p.net_util),
                ];
                let values: Vec<(u16, [u8; 1])> = utils
                    .iter()
                    .filter_map(|&(id, v)| v.map(|v| (id, [v])))
                    .collect();
                let options: Vec<(u16, &[u8])> =
                    values.iter().map(|(id, v)| (*id, v.as_slice())).collect();
                write_options(out, &options);
            }
            Body::OData(p) | Body::RData(p) => {
                out.put_u32(p.client_id);
                out.put_u64(p.odata_seq_no);
                out.put_u64(p.trail_odata_seq_no);
                write_app_data(out, p.data);
                if let (Body::OData(_), Some(lead)) = (&self.body, p.fw_lead_seq_no) {
                    write_options(out, &[(OPT_ODATA_FW_LEAD_SEQ_NO, &lead.to_be_bytes())]);
                }
            }
            Body::Ack(p) => {
                out.put_u32(p.client_id);
                out.put_u64(p.odata_seq_no);
                out.put_u64(p.server_time);
                out.put_u64(p.hi_odata_seq_no);
                out.put_u64(p.loss_rate);
            }
            Body::Nack(p) => {
                out.put_u32(p.client_id);
                out.put_u64(p.hi_odata_seq_no);
                out.put_u64(p.loss_rate);
                write_ranges(out, &p.ranges);
            }
            Body::Ncf(p) => write_ranges(out, &p.ranges),
            Body::Leave(p) => {
                out.put_u32(p.client_id);
                out.put_u8(p.reason.to_u8());
            }
            Body::Poll(p) => {
                out.put_u64(p.poll_seq_no);
                out.put_u16(p.backoff);
                write_app_data(out, p.app_data);
            }
            Body::PollAck(p) => {
                out.put_u32(p.client_id);
                out.put_u64(p.poll_seq_no);
                write_app_data(out, p.app_data);
            }
            Body::Kick(p) => {
                out.put_u16(p.clients.len() as u16);
                for (id, reason) in &p.clients {
                    out.put_u32(*id);
                    out.put_u8(reason.to_u8());
                }
            }
            Body::Demote(p) => {
                out.put_u32(p.lower_session_id);
                write_address(out, &p.multicast_addr);
                out.put_u16(p.multicast_port);
                write_address(out, &p.unicast_addr);
                out.put_u16(p.unicast_port);
                out.put_u16(p.clients.len() as u16);
                for id in &p.clients {
                    out.put_u32(*id);
                }
            }
        }
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

/// Encodes an ODATA (or, with `rdata`, RDATA) packet with CHECKSUM security whose Data field is
/// one MS-WDSMA DATA packet for `block_number`, appended to `out`: a sender can lay several
/// datagrams back to back in one buffer and hand them to the kernel in one call.
///
/// `fill` writes the block's `block_len` content bytes into the slice it is given, so a sender
/// can read a block from disk into its reused buffer without building an intermediate packet.
/// When `fill` fails, `out` is cut back to its old length and the error is returned. `block_len` must not
/// exceed [`super::ma::MAX_BLOCK_LEN`]; larger values are a caller error (lengths would wrap).
#[allow(clippy::too_many_arguments)]
pub fn encode_block_packet_into<E>(
    out: &mut Vec<u8>,
    protect: &Protect,
    rdata: bool,
    session_id: u32,
    sender_time: u64,
    client_id: u32,
    odata_seq_no: u64,
    trail_odata_seq_no: u64,
    block_number: u64,
    block_len: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.extend_from_slice(&IDENTIFIER);
    out.put_u8(protect.kind() as u8);
    let data_len = protect.data_len();
    out.put_u16(data_len as u16);
    out.resize(out.len() + data_len, 0);
    let covered_at = out.len();
    out.put_u32(session_id);
    out.put_u8(if rdata { OpCode::RData } else { OpCode::OData } as u8);
    out.put_u64(sender_time);
    out.put_u32(client_id);
    out.put_u64(odata_seq_no);
    out.put_u64(trail_odata_seq_no);
    let ma_len = super::ma::DATA_HEADER_LEN + block_len;
    out.put_u16(ma_len as u16);
    // MS-WDSMA DATA: Packet-Size, OpCode, BlockNumber, DataLen, Data.
    out.put_u16(ma_len as u16);
    out.put_u8(super::ma::OP_DATA);
    out.put_u64(block_number);
    out.put_u16(block_len as u16);
    let data_at = out.len();
    out.resize(data_at + block_len, 0);
    if let Err(e) = fill(&mut out[data_at..]) {
        out.truncate(start);
        return Err(e);
    }
    let (head, covered) = out.split_at_mut(covered_at);
    protect.fill(covered, &mut head[covered_at - data_len..]);
    Ok(())
}

#[cfg(test)]
mod block_packet_tests {
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

    #[test]
    fn block_packet_helper_matches_generic_encoder() {
        let content = [7u8, 8, 9, 10, 11];
        let mut ma = Vec::new();
        super::super::ma::MaPacket::Data(super::super::ma::DataBlock {
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
            let encode = |out: &mut Vec<u8>| {
                encode_block_packet_into::<()>(
                    out,
                    &Protect::Checksum,
                    rdata,
                    0x1234_5678,
                    99,
                    5,
                    9,
                    3,
                    42,
                    5,
                    |b| {
                        b.copy_from_slice(&content);
                        Ok(())
                    },
                )
                .unwrap();
            };
            let mut fast = Vec::new();
            encode(&mut fast);
            assert_eq!(fast, packet.encode());
            // Appends after what the buffer already holds, leaving that untouched.
            let mut appended = vec![0xAB; 3];
            encode(&mut appended);
            assert_eq!(appended[..3], [0xAB; 3]);
            assert_eq!(appended[3..], packet.encode());
        }
        let mut out = vec![1, 2, 3];
        let failed = encode_block_packet_into(
            &mut out,
            &Protect::Checksum,
            false,
            1,
            1,
            1,
            1,
            1,
            1,
            4,
            |_| Err("io"),
        );
        assert_eq!(failed, Err("io"));
        assert_eq!(out, [1, 2, 3]);
    }
}
