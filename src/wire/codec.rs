//! Byte reader/writer helpers shared by the codecs, and the decode error type.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A decode failure: which packet, which field, at which byte offset of the input, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {packet}: field {field} at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Packet (or packet part) being decoded, e.g. `"MT NACK"`.
    pub packet: &'static str,
    /// Field whose bytes were bad or missing, e.g. `"RangeCount"`.
    pub field: &'static str,
    /// Byte offset of that field from the start of the decoded buffer.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The reason a field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The buffer ends before the field does.
    Truncated { needed: usize, available: usize },
    /// The field holds a value the protocol does not allow.
    InvalidValue { value: u64 },
    /// A declared length disagrees with the bytes actually present.
    LengthMismatch { declared: usize, actual: usize },
    /// Bytes remain after the last field.
    TrailingBytes { count: usize },
    /// A required option is missing.
    MissingOption { id: u16 },
    /// The checksum in the security header does not match the packet.
    BadChecksum { carried: u32, computed: u32 },
    /// A UTF-16LE string is not valid UTF-16.
    InvalidUtf16,
    /// A required named variable (MS-WDSC) is missing.
    MissingVariable { name: &'static str },
    /// A named variable (MS-WDSC) appears twice with different contents.
    DuplicateVariable { name: String },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "needs {needed} bytes, only {available} left")
            }
            Self::InvalidValue { value } => write!(f, "value {value} (0x{value:x}) is not allowed"),
            Self::LengthMismatch { declared, actual } => {
                write!(f, "declared length {declared} but {actual} bytes present")
            }
            Self::TrailingBytes { count } => write!(f, "{count} unexpected trailing bytes"),
            Self::MissingOption { id } => write!(f, "required option 0x{id:04x} is missing"),
            Self::BadChecksum { carried, computed } => {
                write!(
                    f,
                    "checksum 0x{carried:08x} does not match computed 0x{computed:08x}"
                )
            }
            Self::InvalidUtf16 => write!(f, "not valid UTF-16LE"),
            Self::MissingVariable { name } => write!(f, "required variable {name} is missing"),
            Self::DuplicateVariable { name } => {
                write!(f, "variable {name} appears twice with different values")
            }
        }
    }
}

/// A bounds-checked big-endian cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` within the whole datagram, so errors name absolute offsets.
    base: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize, packet: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            packet,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn set_packet(&mut self, packet: &'static str) {
        self.packet = packet;
    }

    pub(crate) fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            packet: self.packet,
            field,
            offset: self.offset(),
            kind,
        }
    }

    pub(crate) fn invalid(&self, field: &'static str, value: u64) -> DecodeError {
        self.error(field, DecodeErrorKind::InvalidValue { value })
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(
                field,
                DecodeErrorKind::Truncated {
                    needed: n,
                    available: self.remaining(),
                },
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    // Little-endian readers, for the formats carried over DCE/RPC (MS-WDSC, NDR).
    pub(crate) fn u16_le(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    pub(crate) fn u32_le(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// Skips `n` bytes (bounds-checked).
    pub(crate) fn skip(&mut self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, field).map(|_| ())
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Position relative to the start of this reader's buffer.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Checks that `count` items of `item_size` bytes are present before anything is allocated
    /// for them.
    pub(crate) fn check_items(
        &self,
        count: usize,
        item_size: usize,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        let needed = count.saturating_mul(item_size);
        if needed > self.remaining() {
            return Err(self.error(
                field,
                DecodeErrorKind::Truncated {
                    needed,
                    available: self.remaining(),
                },
            ));
        }
        Ok(())
    }

    /// An IPv4 or IPv6 address given as raw bytes of length `len`.
    pub(crate) fn ip(&mut self, len: usize, field: &'static str) -> Result<IpAddr, DecodeError> {
        ip_from_bytes(self.bytes(len, field)?).ok_or_else(|| self.invalid(field, len as u64))
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.error("end of packet", DecodeErrorKind::TrailingBytes { count })),
        }
    }
}

pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

pub(crate) fn ip_bytes(ip: &IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

pub(crate) fn ip_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 16 }
}

/// Big-endian writers on a byte vector.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// Decodes a UTF-16LE string that ends at its first NUL code unit (or at the end of `bytes`).
/// Bytes after the NUL are ignored, as the specifications require of receivers.
pub(crate) fn utf16le_until_nul(bytes: &[u8]) -> Option<String> {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0);
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Encodes `s` as UTF-16LE followed by a NUL code unit.
pub(crate) fn utf16le_with_nul(s: &str, out: &mut Vec<u8>) {
    for unit in s.encode_utf16().chain(std::iter::once(0)) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Length in bytes of `s` as UTF-16LE with its NUL terminator.
pub(crate) fn utf16le_len_with_nul(s: &str) -> usize {
    (s.encode_utf16().count() + 1) * 2
}
