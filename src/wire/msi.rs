//! MS-WDSMSI over UDP (§2.2.2): session initiation request, reply and error reply.
//!
//! Layout: OpCode (u8), OptionsCount (u16), then OptionsCount × {OptionId u16, OptionLength u16,
//! OptionValue}. Integers are big-endian; strings are UTF-16LE with a NUL terminator.

use std::net::IpAddr;

use super::codec::{
    DecodeError, DecodeErrorKind, Put, Reader, ip_bytes, ip_from_bytes, utf16le_len_with_nul,
    utf16le_until_nul, utf16le_with_nul,
};

/// Server UDP port for unauthenticated session initiation (MS-WDSMSI §1.9).
pub const MSI_PORT: u16 = 5041;

/// `WDSMCSE_OP_REQUEST`
pub const OP_REQUEST: u8 = 0x01;
/// `WDSMCSE_OP_REPLY` (also used for error replies)
pub const OP_REPLY: u8 = 0x02;

/// `WDSMCSE_OPT_NAMESPACE`: UTF-16LE string.
pub const OPT_NAMESPACE: u16 = 0x0601;
/// `WDSMCSE_OPT_CONTENT`: UTF-16LE string.
pub const OPT_CONTENT: u16 = 0x0602;
/// `WDSMCSE_OPT_MAC_ADDRESS`: MAC address bytes.
pub const OPT_MAC_ADDRESS: u16 = 0x050C;
/// `WDSMCSE_OPT_IPV6_CAPABLE`: one byte, 1 = can receive IPv6 multicast.
pub const OPT_IPV6_CAPABLE: u16 = 0x010D;
/// `WDSMCSE_OPT_MULTICAST_ADDR`: 4 or 16 bytes.
pub const OPT_MULTICAST_ADDR: u16 = 0x0503;
/// `WDSMCSE_OPT_SERVER_ADDR`: 4 or 16 bytes.
pub const OPT_SERVER_ADDR: u16 = 0x0504;
/// `WDSMCSE_OPT_MULTICAST_PORT`: u16.
pub const OPT_MULTICAST_PORT: u16 = 0x0205;
/// `WDSMCSE_OPT_SERVER_PORT`: u16.
pub const OPT_SERVER_PORT: u16 = 0x0206;
/// `WDSMCSE_OPT_CONTENT_SIZE`: u64.
pub const OPT_CONTENT_SIZE: u16 = 0x0407;
/// `WDSMCSE_OPT_BLOCK_SIZE`: u32.
pub const OPT_BLOCK_SIZE: u16 = 0x0309;
/// `WDSMCSE_OPT_TOTAL_BLOCKS`: u64.
pub const OPT_TOTAL_BLOCKS: u16 = 0x0408;
/// `WDSMCSE_OPT_SESSION_ID`: u32.
pub const OPT_SESSION_ID: u16 = 0x030A;
/// `WDSMCSE_OPT_ERROR`: u32 error code.
pub const OPT_ERROR: u16 = 0x030B;

/// Longest MAC address accepted (InfiniBand hardware addresses are 20 bytes).
pub const MAX_MAC_LEN: usize = 32;

/// Server error codes (HRESULTs, FACILITY_WDSMCSERVER) that a reply may carry.
pub mod error_code {
    pub const SESSION_SHUTDOWN_IN_PROGRESS: u32 = 0xC121_0100;
    pub const REQCALLBACKS_NOT_REG: u32 = 0xC121_0101;
    pub const INCOMPATIBLE_VERSION: u32 = 0xC121_0102;
    pub const CONTENT_NOT_FOUND: u32 = 0xC121_0103;
    pub const CLIENT_NOT_FOUND: u32 = 0xC121_0104;
    pub const NAMESPACE_NOT_FOUND: u32 = 0xC121_0105;
    pub const CONTENT_PROVIDER_NOT_FOUND: u32 = 0xC121_0106;
    pub const NAMESPACE_ALREADY_EXISTS: u32 = 0xC121_0107;
    pub const NAMESPACE_SHUTDOWN_IN_PROGRESS: u32 = 0xC121_0108;
    pub const NAMESPACE_ALREADY_STARTED: u32 = 0xC121_0109;
    pub const NS_START_FAILED_NO_CLIENTS: u32 = 0xC121_010A;
    pub const START_TIME_IN_PAST: u32 = 0xC121_010B;
    pub const PACKET_NOT_HASHED: u32 = 0xC121_010C;
    pub const PACKET_NOT_SIGNED: u32 = 0xC121_010D;
    pub const PACKET_HAS_SECURITY: u32 = 0xC121_010E;
    pub const PACKET_NOT_CHECKSUMED: u32 = 0xC121_010F;
    pub const CLIENT_DOESNOT_SUPPORT_SECURITY_MODE: u32 = 0xC121_0110;

    /// The symbolic name and a plain-words meaning of a known code.
    pub fn describe(code: u32) -> Option<(&'static str, &'static str)> {
        Some(match code {
            SESSION_SHUTDOWN_IN_PROGRESS => (
                "WDSMCS_E_SESSION_SHUTDOWN_IN_PROGRESS",
                "the session is shutting down",
            ),
            REQCALLBACKS_NOT_REG => (
                "WDSMCS_E_REQCALLBACKS_NOT_REG",
                "the content provider is incomplete",
            ),
            INCOMPATIBLE_VERSION => ("WDSMCS_E_INCOMPATIBLE_VERSION", "incompatible version"),
            CONTENT_NOT_FOUND => ("WDSMCS_E_CONTENT_NOT_FOUND", "object not found"),
            CLIENT_NOT_FOUND => ("WDSMCS_E_CLIENT_NOT_FOUND", "client not found"),
            NAMESPACE_NOT_FOUND => ("WDSMCS_E_NAMESPACE_NOT_FOUND", "namespace not found"),
            CONTENT_PROVIDER_NOT_FOUND => (
                "WDSMCS_E_CONTENT_PROVIDER_NOT_FOUND",
                "content provider not found",
            ),
            NAMESPACE_ALREADY_EXISTS => (
                "WDSMCS_E_NAMESPACE_ALREADY_EXISTS",
                "namespace already exists",
            ),
            NAMESPACE_SHUTDOWN_IN_PROGRESS => (
                "WDSMCS_E_NAMESPACE_SHUTDOWN_IN_PROGRESS",
                "the namespace is shutting down",
            ),
            NAMESPACE_ALREADY_STARTED => (
                "WDSMCS_E_NAMESPACE_ALREADY_STARTED",
                "the namespace has already started",
            ),
            NS_START_FAILED_NO_CLIENTS => (
                "WDSMCS_E_NS_START_FAILED_NO_CLIENTS",
                "the namespace did not start: no clients",
            ),
            START_TIME_IN_PAST => ("WDSMCS_E_START_TIME_IN_PAST", "start time is in the past"),
            PACKET_NOT_HASHED => ("WDSMCS_E_PACKET_NOT_HASHED", "packet not hashed"),
            PACKET_NOT_SIGNED => ("WDSMCS_E_PACKET_NOT_SIGNED", "packet not signed"),
            PACKET_HAS_SECURITY => ("WDSMCS_E_PACKET_HAS_SECURITY", "packet has security"),
            PACKET_NOT_CHECKSUMED => ("WDSMCS_E_PACKET_NOT_CHECKSUMED", "packet not checksummed"),
            CLIENT_DOESNOT_SUPPORT_SECURITY_MODE => (
                "WDSMCS_E_CLIENT_DOESNOT_SUPPORT_SECURITY_MODE",
                "the client does not support the security mode",
            ),
            _ => return None,
        })
    }
}

/// A client's request for a multicast session (§2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsiRequest {
    pub namespace: String,
    pub content: String,
    pub mac_address: Vec<u8>,
    /// `None` when the option is absent (which the server must read as "not capable").
    pub ipv6_capable: Option<bool>,
}

/// The server's description of the session (§2.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsiReply {
    pub multicast_addr: IpAddr,
    pub server_addr: IpAddr,
    pub multicast_port: u16,
    pub server_port: u16,
    pub content_size: u64,
    pub block_size: u32,
    pub total_blocks: u64,
    pub session_id: u32,
}

/// A decoded MS-WDSMSI UDP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsiPacket {
    Request(MsiRequest),
    Reply(MsiReply),
    /// A reply carrying `WDSMCSE_OPT_ERROR` (§2.2.2.3), sent with the reply opcode
    /// (README.md#pn-server-udp-error-reply).
    Error {
        code: u32,
    },
}

const PACKET: &str = "MSI packet";

struct RawOption<'a> {
    id: u16,
    value: &'a [u8],
    /// Absolute offset of the option value, for error reports.
    offset: usize,
}

fn read_options<'a>(r: &mut Reader<'a>) -> Result<Vec<RawOption<'a>>, DecodeError> {
    let count = r.u16("OptionsCount")? as usize;
    // Each option needs at least its 4-byte header.
    r.check_items(count, 4, "Options")?;
    let mut options = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.u16("OptionId")?;
        let len = r.u16("OptionLength")? as usize;
        let offset = r.offset();
        let value = r.bytes(len, "OptionValue")?;
        options.push(RawOption { id, value, offset });
    }
    r.finish()?;
    Ok(options)
}

fn find<'o, 'a>(options: &'o [RawOption<'a>], id: u16) -> Option<&'o RawOption<'a>> {
    options.iter().find(|o| o.id == id)
}

fn option_error(option: &RawOption<'_>, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
    DecodeError {
        packet: PACKET,
        field,
        offset: option.offset,
        kind,
    }
}

fn required<'o, 'a>(
    options: &'o [RawOption<'a>],
    id: u16,
    field: &'static str,
    end: usize,
) -> Result<&'o RawOption<'a>, DecodeError> {
    find(options, id).ok_or(DecodeError {
        packet: PACKET,
        field,
        offset: end,
        kind: DecodeErrorKind::MissingOption { id },
    })
}

fn fixed<const N: usize>(
    option: &RawOption<'_>,
    field: &'static str,
) -> Result<[u8; N], DecodeError> {
    option.value.try_into().map_err(|_| {
        option_error(
            option,
            field,
            DecodeErrorKind::LengthMismatch {
                declared: option.value.len(),
                actual: N,
            },
        )
    })
}

fn string(option: &RawOption<'_>, field: &'static str) -> Result<String, DecodeError> {
    if option.value.len() % 2 != 0 {
        return Err(option_error(
            option,
            field,
            DecodeErrorKind::InvalidValue {
                value: option.value.len() as u64,
            },
        ));
    }
    utf16le_until_nul(option.value)
        .ok_or_else(|| option_error(option, field, DecodeErrorKind::InvalidUtf16))
}

fn address(option: &RawOption<'_>, field: &'static str) -> Result<IpAddr, DecodeError> {
    ip_from_bytes(option.value).ok_or_else(|| {
        option_error(
            option,
            field,
            DecodeErrorKind::InvalidValue {
                value: option.value.len() as u64,
            },
        )
    })
}

impl MsiPacket {
    /// Decodes one UDP datagram.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0, PACKET);
        let opcode = r.u8("OpCode")?;
        if opcode != OP_REQUEST && opcode != OP_REPLY {
            return Err(DecodeError {
                packet: PACKET,
                field: "OpCode",
                offset: 0,
                kind: DecodeErrorKind::InvalidValue {
                    value: opcode.into(),
                },
            });
        }
        let options = read_options(&mut r)?;
        let end = bytes.len();
        if opcode == OP_REQUEST {
            let namespace = string(
                required(&options, OPT_NAMESPACE, "NAMESPACE", end)?,
                "NAMESPACE",
            )?;
            let content = string(required(&options, OPT_CONTENT, "CONTENT", end)?, "CONTENT")?;
            let mac = required(&options, OPT_MAC_ADDRESS, "MAC_ADDRESS", end)?;
            if mac.value.len() > MAX_MAC_LEN {
                return Err(option_error(
                    mac,
                    "MAC_ADDRESS",
                    DecodeErrorKind::InvalidValue {
                        value: mac.value.len() as u64,
                    },
                ));
            }
            let ipv6_capable = match find(&options, OPT_IPV6_CAPABLE) {
                None => None,
                Some(o) => Some(fixed::<1>(o, "IPV6_CAPABLE")?[0] != 0),
            };
            return Ok(Self::Request(MsiRequest {
                namespace,
                content,
                mac_address: mac.value.to_vec(),
                ipv6_capable,
            }));
        }
        if let Some(o) = find(&options, OPT_ERROR) {
            return Ok(Self::Error {
                code: u32::from_be_bytes(fixed(o, "ERROR")?),
            });
        }
        let get = |id, field| required(&options, id, field, end);
        Ok(Self::Reply(MsiReply {
            multicast_addr: address(get(OPT_MULTICAST_ADDR, "MULTICAST_ADDR")?, "MULTICAST_ADDR")?,
            server_addr: address(get(OPT_SERVER_ADDR, "SERVER_ADDR")?, "SERVER_ADDR")?,
            multicast_port: u16::from_be_bytes(fixed(
                get(OPT_MULTICAST_PORT, "MULTICAST_PORT")?,
                "MULTICAST_PORT",
            )?),
            server_port: u16::from_be_bytes(fixed(
                get(OPT_SERVER_PORT, "SERVER_PORT")?,
                "SERVER_PORT",
            )?),
            content_size: u64::from_be_bytes(fixed(
                get(OPT_CONTENT_SIZE, "CONTENT_SIZE")?,
                "CONTENT_SIZE",
            )?),
            block_size: u32::from_be_bytes(fixed(
                get(OPT_BLOCK_SIZE, "BLOCK_SIZE")?,
                "BLOCK_SIZE",
            )?),
            total_blocks: u64::from_be_bytes(fixed(
                get(OPT_TOTAL_BLOCKS, "TOTAL_BLOCKS")?,
                "TOTAL_BLOCKS",
            )?),
            session_id: u32::from_be_bytes(fixed(
                get(OPT_SESSION_ID, "SESSION_ID")?,
                "SESSION_ID",
            )?),
        }))
    }

    /// Encodes the packet, options in the order the specification lists them.
    ///
    /// Strings longer than an option can hold (32767 UTF-16 code units) are a caller error;
    /// [`MsiRequest::validate`] checks for it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        let mut count = 0u16;
        let mut option = |out: &mut Vec<u8>, id: u16, value: &dyn Fn(&mut Vec<u8>)| {
            out.put_u16(id);
            let len_at = out.len();
            out.put_u16(0);
            value(out);
            let len = (out.len() - len_at - 2) as u16;
            out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            count += 1;
        };
        let mut body = Vec::with_capacity(128);
        let opcode = match self {
            Self::Request(req) => {
                option(&mut body, OPT_NAMESPACE, &|o| {
                    utf16le_with_nul(&req.namespace, o)
                });
                option(&mut body, OPT_CONTENT, &|o| {
                    utf16le_with_nul(&req.content, o)
                });
                option(&mut body, OPT_MAC_ADDRESS, &|o| {
                    o.extend_from_slice(&req.mac_address)
                });
                if let Some(capable) = req.ipv6_capable {
                    option(&mut body, OPT_IPV6_CAPABLE, &|o| o.put_u8(capable.into()));
                }
                OP_REQUEST
            }
            Self::Reply(rep) => {
                option(&mut body, OPT_MULTICAST_ADDR, &|o| {
                    ip_bytes(&rep.multicast_addr, o)
                });
                option(&mut body, OPT_SERVER_ADDR, &|o| {
                    ip_bytes(&rep.server_addr, o)
                });
                option(&mut body, OPT_MULTICAST_PORT, &|o| {
                    o.put_u16(rep.multicast_port)
                });
                option(&mut body, OPT_SERVER_PORT, &|o| o.put_u16(rep.server_port));
                option(&mut body, OPT_CONTENT_SIZE, &|o| {
                    o.put_u64(rep.content_size)
                });
                option(&mut body, OPT_BLOCK_SIZE, &|o| o.put_u32(rep.block_size));
                option(&mut body, OPT_TOTAL_BLOCKS, &|o| {
                    o.put_u64(rep.total_blocks)
                });
                option(&mut body, OPT_SESSION_ID, &|o| o.put_u32(rep.session_id));
                OP_REPLY
            }
            Self::Error { code } => {
                option(&mut body, OPT_ERROR, &|o| o.put_u32(*code));
                OP_REPLY
            }
        };
        out.put_u8(opcode);
        out.put_u16(count);
        out.extend_from_slice(&body);
        out
    }
}

/// Why a request cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{field} is empty; give a non-empty name")]
    Empty { field: &'static str },
    #[error(
        "{field} is {len} bytes as UTF-16, more than the {max} an option can carry; shorten it"
    )]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains a NUL character, which the protocol cannot carry")]
    Nul { field: &'static str },
    #[error("MAC address is {len} bytes; at most {MAX_MAC_LEN} are allowed")]
    MacTooLong { len: usize },
}

impl MsiRequest {
    /// Checks that every field fits its option.
    pub fn validate(&self) -> Result<(), RequestError> {
        for (field, value) in [
            ("namespace", &self.namespace),
            ("object name", &self.content),
        ] {
            if value.is_empty() {
                return Err(RequestError::Empty { field });
            }
            if value.contains('\0') {
                return Err(RequestError::Nul { field });
            }
            let len = utf16le_len_with_nul(value);
            if len > u16::MAX as usize {
                return Err(RequestError::TooLong {
                    field,
                    len,
                    max: u16::MAX as usize,
                });
            }
        }
        if self.mac_address.len() > MAX_MAC_LEN {
            return Err(RequestError::MacTooLong {
                len: self.mac_address.len(),
            });
        }
        Ok(())
    }
}

impl MsiReply {
    /// Checks the numbers a server sent against each other, so that a client never sizes a
    /// bitmap or a file from an impossible description.
    pub fn check_consistency(&self) -> Result<(), ReplyError> {
        if self.block_size == 0 {
            return Err(ReplyError::ZeroBlockSize);
        }
        if self.multicast_port != self.server_port {
            return Err(ReplyError::PortMismatch {
                multicast: self.multicast_port,
                server: self.server_port,
            });
        }
        if self.multicast_port == 0 {
            return Err(ReplyError::ZeroPort);
        }
        if !self.multicast_addr.is_multicast() {
            return Err(ReplyError::NotMulticast(self.multicast_addr));
        }
        if self.multicast_addr.is_ipv4() != self.server_addr.is_ipv4() {
            return Err(ReplyError::FamilyMismatch);
        }
        let expected = self.content_size.div_ceil(self.block_size as u64);
        if self.total_blocks != expected {
            return Err(ReplyError::BlockCountMismatch {
                content_size: self.content_size,
                block_size: self.block_size,
                total_blocks: self.total_blocks,
                expected,
            });
        }
        if self.total_blocks > super::ma::MAX_TOTAL_BLOCKS {
            return Err(ReplyError::TooManyBlocks(self.total_blocks));
        }
        Ok(())
    }
}

/// A reply whose values contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("server announced a block size of 0")]
    ZeroBlockSize,
    #[error(
        "server announced multicast port {multicast} but unicast port {server}; they must be equal"
    )]
    PortMismatch { multicast: u16, server: u16 },
    #[error("server announced port 0")]
    ZeroPort,
    #[error("server announced group {0}, which is not a multicast address")]
    NotMulticast(IpAddr),
    #[error("server announced a group and a server address of different IP families")]
    FamilyMismatch,
    #[error(
        "server announced {total_blocks} blocks for {content_size} bytes in blocks of {block_size}; \
         that needs exactly {expected}"
    )]
    BlockCountMismatch {
        content_size: u64,
        block_size: u32,
        total_blocks: u64,
        expected: u64,
    },
    #[error(
        "server announced {0} blocks; this client supports at most {max}",
        max = super::ma::MAX_TOTAL_BLOCKS
    )]
    TooManyBlocks(u64),
}
