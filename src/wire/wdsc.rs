//! MS-WDSC control packets (§2.2.1), the payload `WdsRpcMessage` carries, and the typed
//! MS-WDSMSI `WDSMC_OP_INITIATE` request and reply built on them.
//!
//! Layout, all little-endian: a 40-byte endpoint header, a 16-byte operation header, then
//! Variable-Count variable description blocks (80 fixed bytes, the value, padding to 16).
//!
//! Where real servers differ from the text (README.md#pn-wdsc-packet-size, README.md#pn-wdsc-padding) the encoder writes
//! what tools known to work against Windows write, and the decoder accepts both readings:
//! * endpoint-header Packet-Size: sent as the operation-header value; either that or the
//!   whole-packet value is accepted;
//! * padding: each block is padded to the next multiple of 16 (a full 16 when already aligned),
//!   plus 16 when a STRING/WSTRING/BLOB would get fewer than 4 padding bytes; the decoder skips
//!   to the 16-byte boundary and then any 16-byte chunks that start with a NUL name unit;
//! * duplicate names (the MS-WDSMSI 4.1 example repeats `SymKey`): an exact repeat (same type
//!   and value) is dropped, a repeat with different contents is an error, since either choice
//!   would be a guess.

use super::codec::{DecodeError, DecodeErrorKind, Reader, utf16le_until_nul, utf16le_with_nul};

mod images;
mod initiate;

pub use images::{
    IMG_VERSION, ImageEntry, ImageEnumOutcome, ImageEnumReply, ImageEnumRequest, ListFormat,
    OP_IMG_ENUMERATE, OS_DEPLOYMENT_ENDPOINT_GUID, client_cap, encode_images_error_reply,
    escape_xml, image_type, options as image_options, server_cap, unescape_xml, xml_element,
};
pub use initiate::{
    InitiateError, InitiateOutcome, InitiateReply, InitiateRequest, MAX_CLIENT_UNITS, OP_INITIATE,
    cap, encode_error_reply, error_code, name,
};

/// Endpoint header size (Size-Of-Header).
pub const ENDPOINT_HEADER_LEN: usize = 40;
/// Operation header size.
pub const OPERATION_HEADER_LEN: usize = 16;
/// Version in both headers.
pub const WDSC_VERSION: u16 = 0x0100;
/// Bytes of the Variable-Name field.
pub const NAME_FIELD_LEN: usize = 66;
/// Longest variable name in UTF-16 units, leaving room for the NUL.
pub const MAX_NAME_UNITS: usize = NAME_FIELD_LEN / 2 - 1;
/// Name, padding, type, length and array size before the value.
const BLOCK_FIXED_LEN: usize = 80;
const ALIGN: usize = 16;

/// `WDSCPL_PACKET_REQUEST`
pub const PACKET_TYPE_REQUEST: u8 = 0x01;
/// `WDSCPL_PACKET_REPLY` (Windows does not always set it; never validated).
pub const PACKET_TYPE_REPLY: u8 = 0x02;

/// Variable-Type values (MS-WDSC 2.2.1.3.2): base type in the low 16 bits.
pub mod var_type {
    pub const BYTE: u16 = 0x0001;
    pub const USHORT: u16 = 0x0002;
    pub const ULONG: u16 = 0x0004;
    pub const ULONG64: u16 = 0x0008;
    pub const STRING: u16 = 0x0010;
    pub const WSTRING: u16 = 0x0020;
    pub const BLOB: u16 = 0x0040;
    /// `WDSCPL_VAR_ARRAY`, a type modifier: sent in the high 16 bits (the field table puts
    /// the modifier there); also recognised in the low 16 bits, as no base type uses 0x1000.
    pub const ARRAY: u16 = 0x1000;
}

/// Builds a GUID's packet (MS-DTYP 2.3.4.2) byte order from its textual fields.
pub const fn guid_bytes(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// Endpoint GUID of the multicast provider, `6f13a317-3687-4b54-81a5-504daa9062fa`
/// (MS-WDSMSI 1.9), in packet byte order.
pub const MULTICAST_ENDPOINT_GUID: [u8; 16] = guid_bytes(
    0x6f13_a317,
    0x3687,
    0x4b54,
    [0x81, 0xa5, 0x50, 0x4d, 0xaa, 0x90, 0x62, 0xfa],
);

/// A decoded variable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    UShort(u16),
    ULong(u32),
    ULong64(u64),
    /// `WDSCPL_VAR_STRING`: the CHAR bytes before the NUL (the code page is not specified).
    String(Vec<u8>),
    /// `WDSCPL_VAR_WSTRING`: the text before the NUL.
    WString(String),
    Blob(Vec<u8>),
    /// Arrays and unknown base types, kept as sent so they can be skipped or passed on.
    Raw {
        var_type: u32,
        value_length: u32,
        array_size: u32,
        bytes: Vec<u8>,
    },
}

impl Value {
    pub(super) fn base_type(&self) -> u16 {
        match self {
            Self::Byte(_) => var_type::BYTE,
            Self::UShort(_) => var_type::USHORT,
            Self::ULong(_) => var_type::ULONG,
            Self::ULong64(_) => var_type::ULONG64,
            Self::String(_) => var_type::STRING,
            Self::WString(_) => var_type::WSTRING,
            Self::Blob(_) => var_type::BLOB,
            Self::Raw { var_type, .. } => *var_type as u16,
        }
    }
}

/// One variable description block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: Value,
}

impl Variable {
    pub fn new(name: &str, value: Value) -> Self {
        Self {
            name: name.to_owned(),
            value,
        }
    }
}

/// A whole WDSC packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WdscPacket {
    /// Endpoint GUID in packet byte order.
    pub endpoint: [u8; 16],
    pub packet_type: u8,
    /// Request: the OpCode. Reply: the operation's Win32 error (0 = success).
    pub opcode_or_error: u32,
    pub variables: Vec<Variable>,
}

/// Which value the endpoint header's Packet-Size carries when encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSize {
    /// Operation header + variables: what tools that work against Windows send (default).
    OperationOnly,
    /// Endpoint header + operation header + variables, as MS-WDSC 2.2.1.1 words it.
    Whole,
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WdscEncodeError {
    #[error(
        "variable name {name:?} is empty, longer than {MAX_NAME_UNITS} UTF-16 units or contains NUL"
    )]
    BadName { name: String },
    #[error("variable {name} holds a NUL character, which the string type cannot carry")]
    NulInString { name: String },
    #[error("variable {name}: {len} value bytes do not fit the 32-bit length fields")]
    TooLong { name: String, len: usize },
    #[error("variable {name}: raw value of {len} bytes does not match its length fields")]
    RawMismatch { name: String, len: usize },
    #[error("packet of {len} bytes is too long for Packet-Size")]
    PacketTooLong { len: usize },
}

/// Whether two names are equal in the case-insensitive sense MS-WDSC requires.
pub fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// Padding after a value of `value_len` bytes (README.md#pn-wdsc-padding).
fn padding_for(base: u16, value_len: usize) -> usize {
    let used = (BLOCK_FIXED_LEN + value_len) % ALIGN;
    let pad = ALIGN - used;
    let variable = matches!(base, var_type::STRING | var_type::WSTRING | var_type::BLOB);
    if variable && pad < 4 {
        pad + ALIGN
    } else {
        pad
    }
}

fn encode_variable(var: &Variable, out: &mut Vec<u8>) -> Result<(), WdscEncodeError> {
    let units: Vec<u16> = var.name.encode_utf16().collect();
    if units.is_empty() || units.len() > MAX_NAME_UNITS || units.contains(&0) {
        return Err(WdscEncodeError::BadName {
            name: var.name.clone(),
        });
    }
    let start = out.len();
    for unit in &units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.resize(start + NAME_FIELD_LEN + 2, 0);
    let mut value = Vec::new();
    let nul_check = |has_nul: bool| {
        if has_nul {
            Err(WdscEncodeError::NulInString {
                name: var.name.clone(),
            })
        } else {
            Ok(())
        }
    };
    let (var_type, array_size) = match &var.value {
        Value::Byte(v) => {
            value.push(*v);
            (u32::from(var_type::BYTE), 0)
        }
        Value::UShort(v) => {
            value.extend_from_slice(&v.to_le_bytes());
            (u32::from(var_type::USHORT), 0)
        }
        Value::ULong(v) => {
            value.extend_from_slice(&v.to_le_bytes());
            (u32::from(var_type::ULONG), 0)
        }
        Value::ULong64(v) => {
            value.extend_from_slice(&v.to_le_bytes());
            (u32::from(var_type::ULONG64), 0)
        }
        Value::String(bytes) => {
            nul_check(bytes.contains(&0))?;
            value.extend_from_slice(bytes);
            value.push(0);
            (u32::from(var_type::STRING), 0)
        }
        Value::WString(s) => {
            nul_check(s.contains('\0'))?;
            utf16le_with_nul(s, &mut value);
            (u32::from(var_type::WSTRING), 0)
        }
        Value::Blob(bytes) => {
            value.extend_from_slice(bytes);
            (u32::from(var_type::BLOB), 0)
        }
        Value::Raw {
            var_type,
            value_length,
            array_size,
            bytes,
        } => {
            if raw_len(*var_type, *value_length, *array_size) != Some(bytes.len() as u64) {
                return Err(WdscEncodeError::RawMismatch {
                    name: var.name.clone(),
                    len: bytes.len(),
                });
            }
            value.extend_from_slice(bytes);
            (*var_type, *array_size)
        }
    };
    let value_length = match &var.value {
        Value::Raw { value_length, .. } => *value_length,
        _ => u32::try_from(value.len()).map_err(|_| WdscEncodeError::TooLong {
            name: var.name.clone(),
            len: value.len(),
        })?,
    };
    out.extend_from_slice(&var_type.to_le_bytes());
    out.extend_from_slice(&value_length.to_le_bytes());
    out.extend_from_slice(&array_size.to_le_bytes());
    out.extend_from_slice(&value);
    let pad = padding_for(var.value.base_type(), value.len());
    out.resize(out.len() + pad, 0);
    Ok(())
}

fn is_array(var_type: u32) -> bool {
    (var_type >> 16) as u16 & var_type::ARRAY != 0 || var_type as u16 & var_type::ARRAY != 0
}

/// Bytes a raw value occupies, or `None` if the fields overflow or an array has no elements.
fn raw_len(var_type: u32, value_length: u32, array_size: u32) -> Option<u64> {
    if is_array(var_type) {
        if array_size == 0 {
            return None;
        }
        u64::from(value_length).checked_mul(u64::from(array_size))
    } else {
        Some(u64::from(value_length))
    }
}

impl WdscPacket {
    /// A request for `opcode` at `endpoint`.
    pub fn request(endpoint: [u8; 16], opcode: u32, variables: Vec<Variable>) -> Self {
        Self {
            endpoint,
            packet_type: PACKET_TYPE_REQUEST,
            opcode_or_error: opcode,
            variables,
        }
    }

    /// A reply from `endpoint` with `error` (0 = success).
    pub fn reply(endpoint: [u8; 16], error: u32, variables: Vec<Variable>) -> Self {
        Self {
            endpoint,
            packet_type: PACKET_TYPE_REPLY,
            opcode_or_error: error,
            variables,
        }
    }

    /// The first variable called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.variables
            .iter()
            .find(|v| same_name(&v.name, name))
            .map(|v| &v.value)
    }

    /// Encodes with the endpoint Packet-Size real servers are known to accept.
    pub fn encode(&self) -> Result<Vec<u8>, WdscEncodeError> {
        self.encode_with(EndpointSize::OperationOnly)
    }

    pub fn encode_with(&self, size: EndpointSize) -> Result<Vec<u8>, WdscEncodeError> {
        let mut vars = Vec::new();
        for var in &self.variables {
            encode_variable(var, &mut vars)?;
        }
        let too_long = |len| WdscEncodeError::PacketTooLong { len };
        let total = ENDPOINT_HEADER_LEN + OPERATION_HEADER_LEN + vars.len();
        let op_size =
            u32::try_from(OPERATION_HEADER_LEN + vars.len()).map_err(|_| too_long(total))?;
        let count = u32::try_from(self.variables.len()).map_err(|_| too_long(total))?;
        let ep_size = match size {
            EndpointSize::OperationOnly => op_size,
            EndpointSize::Whole => u32::try_from(total).map_err(|_| too_long(total))?,
        };
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(ENDPOINT_HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&WDSC_VERSION.to_le_bytes());
        out.extend_from_slice(&ep_size.to_le_bytes());
        out.extend_from_slice(&self.endpoint);
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&op_size.to_le_bytes());
        out.extend_from_slice(&WDSC_VERSION.to_le_bytes());
        out.push(self.packet_type);
        out.push(0);
        out.extend_from_slice(&self.opcode_or_error.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&vars);
        Ok(out)
    }

    /// Decodes a packet; see the module documentation for what is tolerated.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw = decode_raw(bytes)?;
        Ok(Self {
            endpoint: raw.endpoint,
            packet_type: raw.packet_type,
            opcode_or_error: raw.opcode_or_error,
            variables: raw.variables.into_iter().map(|(_, v)| v).collect(),
        })
    }
}

/// A decoded packet whose variables remember their offsets, for typed error reports.
pub(super) struct RawPacket {
    pub(super) endpoint: [u8; 16],
    pub(super) packet_type: u8,
    pub(super) opcode_or_error: u32,
    pub(super) variables: Vec<(usize, Variable)>,
    pub(super) end: usize,
}

pub(super) fn decode_raw(bytes: &[u8]) -> Result<RawPacket, DecodeError> {
    let mut r = Reader::new(bytes, 0, "WDSC endpoint header");
    let header_len = r.u16_le("Size-Of-Header")?;
    if usize::from(header_len) != ENDPOINT_HEADER_LEN {
        return Err(r.invalid("Size-Of-Header", header_len.into()));
    }
    let version = r.u16_le("Version")?;
    if version != WDSC_VERSION {
        return Err(r.invalid("Version", version.into()));
    }
    let ep_size = r.u32_le("Packet-Size")?;
    let endpoint = r.array::<16>("Endpoint-GUID")?;
    // Reserved: zero when sent, not worth refusing a packet over.
    r.skip(16, "Reserved")?;
    r.set_packet("WDSC operation header");
    let op_at = r.offset();
    let op_size = r.u32_le("Packet-Size")? as usize;
    let available = bytes.len() - ENDPOINT_HEADER_LEN;
    if op_size < OPERATION_HEADER_LEN || op_size > available {
        return Err(DecodeError {
            packet: "WDSC operation header",
            field: "Packet-Size",
            offset: op_at,
            kind: DecodeErrorKind::LengthMismatch {
                declared: op_size,
                actual: available,
            },
        });
    }
    let ep_size = ep_size as usize;
    if ep_size != op_size && ep_size != op_size + ENDPOINT_HEADER_LEN {
        return Err(DecodeError {
            packet: "WDSC endpoint header",
            field: "Packet-Size",
            offset: 4,
            kind: DecodeErrorKind::LengthMismatch {
                declared: ep_size,
                actual: op_size,
            },
        });
    }
    let version = r.u16_le("Version")?;
    if version != WDSC_VERSION {
        return Err(r.invalid("Version", version.into()));
    }
    let packet_type = r.u8("Packet-Type")?;
    r.skip(1, "Padding1")?;
    let opcode_or_error = r.u32_le("OpCode-ErrorCode")?;
    let count = r.u32_le("Variable-Count")? as usize;
    let end = ENDPOINT_HEADER_LEN + op_size;
    let section = &bytes[ENDPOINT_HEADER_LEN + OPERATION_HEADER_LEN..end];
    let mut r = Reader::new(
        section,
        ENDPOINT_HEADER_LEN + OPERATION_HEADER_LEN,
        "WDSC variable",
    );
    r.check_items(count, BLOCK_FIXED_LEN, "Variable-Count")?;
    let mut variables: Vec<(usize, Variable)> = Vec::with_capacity(count);
    for index in 0..count {
        if index > 0 {
            skip_padding_chunks(&mut r);
        }
        let at = r.offset();
        let var = decode_variable(&mut r)?;
        match variables
            .iter()
            .find(|(_, v)| same_name(&v.name, &var.name))
        {
            Some((_, seen)) if seen.value == var.value => {}
            Some(_) => {
                return Err(DecodeError {
                    packet: "WDSC variable",
                    field: "Variable-Name",
                    offset: at,
                    kind: DecodeErrorKind::DuplicateVariable { name: var.name },
                });
            }
            None => variables.push((at, var)),
        }
    }
    // Whatever follows the last block is padding by construction; it is not inspected.
    Ok(RawPacket {
        endpoint,
        packet_type,
        opcode_or_error,
        variables,
        end,
    })
}

/// Skips whole 16-byte chunks whose first name unit is NUL: a name is never empty, so such a
/// chunk can only be extra padding.
fn skip_padding_chunks(r: &mut Reader<'_>) {
    while r.peek_rest().starts_with(&[0, 0]) {
        let n = r.remaining().min(ALIGN);
        let _ = r.skip(n, "Padding_end");
    }
}

fn decode_variable(r: &mut Reader<'_>) -> Result<Variable, DecodeError> {
    let start = r.position();
    let name_at = r.offset();
    let name_bytes = r.bytes(NAME_FIELD_LEN, "Variable-Name")?;
    let units = name_bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let name_error = |kind| DecodeError {
        packet: "WDSC variable",
        field: "Variable-Name",
        offset: name_at,
        kind,
    };
    let len = units.clone().position(|u| u == 0).ok_or_else(|| {
        name_error(DecodeErrorKind::InvalidValue {
            value: NAME_FIELD_LEN as u64,
        })
    })?;
    if len == 0 {
        return Err(name_error(DecodeErrorKind::InvalidValue { value: 0 }));
    }
    let name = char::decode_utf16(units.take(len))
        .collect::<Result<String, _>>()
        .map_err(|_| name_error(DecodeErrorKind::InvalidUtf16))?;
    r.skip(2, "Padding1")?;
    let type_at = r.offset();
    let var_type = r.u32_le("Variable-Type")?;
    let value_length = r.u32_le("Value-Length")?;
    let array_size = r.u32_le("Array-Size")?;
    let len = raw_len(var_type, value_length, array_size)
        .ok_or_else(|| r.invalid("Array-Size", array_size.into()))?;
    if len > r.remaining() as u64 {
        return Err(r.error(
            "Variable-Value",
            DecodeErrorKind::Truncated {
                needed: usize::try_from(len).unwrap_or(usize::MAX),
                available: r.remaining(),
            },
        ));
    }
    let value_at = r.offset();
    let bytes = r.bytes(len as usize, "Variable-Value")?;
    let type_error = || DecodeError {
        packet: "WDSC variable",
        field: "Variable-Type",
        offset: type_at,
        kind: DecodeErrorKind::LengthMismatch {
            declared: value_length as usize,
            actual: bytes.len(),
        },
    };
    let fixed = |n: usize| -> Result<[u8; 8], DecodeError> {
        if bytes.len() != n {
            return Err(type_error());
        }
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(bytes);
        Ok(out)
    };
    let value = if is_array(var_type) {
        raw(var_type, value_length, array_size, bytes)
    } else {
        match var_type as u16 {
            _ if var_type >> 16 != 0 => raw(var_type, value_length, array_size, bytes),
            // Fixed types are read zero-extended from a little-endian 8-byte buffer.
            var_type::BYTE => Value::Byte(fixed(1)?[0]),
            var_type::USHORT => Value::UShort(u64::from_le_bytes(fixed(2)?) as u16),
            var_type::ULONG => Value::ULong(u64::from_le_bytes(fixed(4)?) as u32),
            var_type::ULONG64 => Value::ULong64(u64::from_le_bytes(fixed(8)?)),
            var_type::STRING => {
                Value::String(bytes.iter().copied().take_while(|&b| b != 0).collect())
            }
            var_type::WSTRING => {
                if bytes.len() % 2 != 0 {
                    return Err(DecodeError {
                        packet: "WDSC variable",
                        field: "Value-Length",
                        offset: value_at,
                        kind: DecodeErrorKind::InvalidValue {
                            value: bytes.len() as u64,
                        },
                    });
                }
                Value::WString(utf16le_until_nul(bytes).ok_or(DecodeError {
                    packet: "WDSC variable",
                    field: "Variable-Value",
                    offset: value_at,
                    kind: DecodeErrorKind::InvalidUtf16,
                })?)
            }
            var_type::BLOB => Value::Blob(bytes.to_vec()),
            _ => raw(var_type, value_length, array_size, bytes),
        }
    };
    // To the block's 16-byte boundary; a block cut short at the end of the packet is accepted.
    let used = r.position() - start;
    let pad = (ALIGN - used % ALIGN) % ALIGN;
    let _ = r.skip(pad.min(r.remaining()), "Padding_end");
    Ok(Variable { name, value })
}

fn raw(var_type: u32, value_length: u32, array_size: u32, bytes: &[u8]) -> Value {
    Value::Raw {
        var_type,
        value_length,
        array_size,
        bytes: bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests;
