//! The typed MS-WDSMSI `WDSMC_OP_INITIATE` request and reply (MS-WDSMSI 2.2.1) over the
//! generic WDSC packet.

use std::net::IpAddr;

use super::super::codec::{DecodeError, DecodeErrorKind, ip_bytes, ip_from_bytes};
use super::super::msi::{MsiReply, error_code as msi_error};
use super::{
    ENDPOINT_HEADER_LEN, MULTICAST_ENDPOINT_GUID, RawPacket, Value, Variable, WdscEncodeError,
    WdscPacket, decode_raw, same_name,
};

/// OpCode of `WDSMC_OP_INITIATE`.
pub const OP_INITIATE: u32 = 6;

/// Bits of the request's `Cap` variable.
pub mod cap {
    /// `WDSMC_CLIENT_CAP_CHECKSUM`: the client can use checksum mode.
    pub const CHECKSUM: u32 = 0x0000_0001;
    /// `WDSMC_CLIENT_CAP_IPV6`: the client can receive IPv6 multicast.
    pub const IPV6: u32 = 0x0000_0002;
    /// `WDSMC_CLIENT_CAP_BOOT_DEVICE`: the client runs pre-OS.
    pub const BOOT_DEVICE: u32 = 0x0000_0004;
}

/// Error codes a server returns (as OpCode-ErrorCode or as the RPC return value).
pub mod error_code {
    pub use super::msi_error::{CONTENT_NOT_FOUND, NAMESPACE_NOT_FOUND};
    /// `WDSMCS_E_CLIENT_DOESNOT_SUPPORT_SECURITY_MODE`
    pub const SECURITY_MODE_NOT_SUPPORTED: u32 =
        super::msi_error::CLIENT_DOESNOT_SUPPORT_SECURITY_MODE;
    /// Win32 `ERROR_ACCESS_DENIED`.
    pub const ACCESS_DENIED: u32 = 5;
}

/// Variable names of `WDSMC_OP_INITIATE`.
pub mod name {
    pub const NAMESPACE: &str = "Namespace";
    pub const CONTENT: &str = "Content";
    pub const CLIENT: &str = "Client";
    pub const CAP: &str = "Cap";
    pub const MC_PORT: &str = "TpMcAddress.Port";
    pub const MC_ADDRESS: &str = "TpMcAddress.Address";
    pub const UNI_PORT: &str = "TpUniAddress.Port";
    pub const UNI_ADDRESS: &str = "TpUniAddress.Address";
    pub const SESSION_ID: &str = "SessionId";
    pub const CONTENT_SIZE: &str = "ContentSize";
    pub const BLOCK_SIZE: &str = "BlockSize";
    pub const TOTAL_BLOCKS: &str = "TotalBlocks";
    pub const CONTENT_METADATA: &str = "ContentMetadata";
    pub const SYM_KEY: &str = "SymKey";
    pub const SIGN_KEY: &str = "SignKey";
    pub const HASH_ALG_ID: &str = "HashAlgId";
    pub const HMAC_ALG_ID: &str = "HMACAlgId";
    pub const SEC_MODE: &str = "SecMode";
    pub const USER_SID: &str = "UserSid";
}

/// Longest `Client` value in UTF-16 units, without the NUL (16 with it).
pub const MAX_CLIENT_UNITS: usize = 15;

/// The client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub namespace: String,
    pub content: String,
    /// Client machine name, at most [`MAX_CLIENT_UNITS`] UTF-16 units.
    pub client: String,
    pub cap: Option<u32>,
}

/// Why a request cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitiateError {
    #[error("{field} is empty; give a non-empty value")]
    Empty { field: &'static str },
    #[error("{field} contains a NUL character, which the protocol cannot carry")]
    Nul { field: &'static str },
    #[error("client name is {units} UTF-16 units; at most {MAX_CLIENT_UNITS} are allowed")]
    ClientTooLong { units: usize },
    #[error(transparent)]
    Encode(#[from] WdscEncodeError),
}

impl InitiateRequest {
    /// Checks every field against what the variables can carry.
    pub fn validate(&self) -> Result<(), InitiateError> {
        for (field, value) in [
            ("namespace", &self.namespace),
            ("content", &self.content),
            ("client name", &self.client),
        ] {
            if value.is_empty() {
                return Err(InitiateError::Empty { field });
            }
            if value.contains('\0') {
                return Err(InitiateError::Nul { field });
            }
        }
        let units = self.client.encode_utf16().count();
        if units > MAX_CLIENT_UNITS {
            return Err(InitiateError::ClientTooLong { units });
        }
        Ok(())
    }

    pub fn to_packet(&self) -> WdscPacket {
        let mut vars = vec![
            Variable::new(name::NAMESPACE, Value::WString(self.namespace.clone())),
            Variable::new(name::CONTENT, Value::WString(self.content.clone())),
            Variable::new(name::CLIENT, Value::WString(self.client.clone())),
        ];
        if let Some(cap) = self.cap {
            vars.push(Variable::new(name::CAP, Value::ULong(cap)));
        }
        WdscPacket::request(MULTICAST_ENDPOINT_GUID, OP_INITIATE, vars)
    }

    pub fn encode(&self) -> Result<Vec<u8>, InitiateError> {
        self.validate()?;
        Ok(self.to_packet().encode()?)
    }

    /// Decodes a request as a server receives it: multicast endpoint, OpCode 6.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw = decode_raw(bytes)?;
        check_endpoint(&raw)?;
        if raw.opcode_or_error != OP_INITIATE {
            return Err(DecodeError {
                packet: "WDSC operation header",
                field: "OpCode-ErrorCode",
                offset: ENDPOINT_HEADER_LEN + 8,
                kind: DecodeErrorKind::InvalidValue {
                    value: raw.opcode_or_error.into(),
                },
            });
        }
        let v = Vars(&raw);
        let client = v.wstring(name::CLIENT)?;
        if client.encode_utf16().count() > MAX_CLIENT_UNITS {
            let (at, _) = v.find(name::CLIENT).unwrap_or((0, &Value::Byte(0)));
            return Err(DecodeError {
                packet: "WDSMSI INITIATE request",
                field: name::CLIENT,
                offset: at,
                kind: DecodeErrorKind::InvalidValue {
                    value: client.encode_utf16().count() as u64,
                },
            });
        }
        Ok(Self {
            namespace: v.wstring(name::NAMESPACE)?,
            content: v.wstring(name::CONTENT)?,
            client,
            cap: v.opt_ulong(name::CAP)?,
        })
    }
}

fn check_endpoint(raw: &RawPacket) -> Result<(), DecodeError> {
    if raw.endpoint == MULTICAST_ENDPOINT_GUID {
        return Ok(());
    }
    Err(DecodeError {
        packet: "WDSC endpoint header",
        field: "Endpoint-GUID",
        offset: 8,
        kind: DecodeErrorKind::InvalidValue {
            value: u64::from(u32::from_le_bytes([
                raw.endpoint[0],
                raw.endpoint[1],
                raw.endpoint[2],
                raw.endpoint[3],
            ])),
        },
    })
}

/// The server's description of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateReply {
    pub multicast_addr: IpAddr,
    pub server_addr: IpAddr,
    /// `TpMcAddress.Port`, which must equal `TpUniAddress.Port`.
    pub port: u16,
    pub session_id: u32,
    pub content_size: u64,
    pub block_size: u32,
    pub total_blocks: u64,
    /// `None` when absent (MS-WDSMSI 3.1.5.2 omits it when the provider has none).
    pub content_metadata: Option<Vec<u8>>,
    pub sym_key: Option<Vec<u8>>,
    pub sign_key: Option<Vec<u8>>,
    pub hash_alg_id: Option<u32>,
    pub hmac_alg_id: Option<u32>,
    /// `SecMode` as sent; [`crate::wire::security::SecModes`] reads its halves.
    pub sec_mode: Option<u32>,
    pub user_sid: Option<Vec<u8>>,
}

/// A decoded reply: the session, or the operation's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiateOutcome {
    Session(InitiateReply),
    /// OpCode-ErrorCode was non-zero (MS-WDSC 3.1.4.2); the variables are not interpreted.
    Failed {
        code: u32,
    },
}

impl InitiateOutcome {
    /// Decodes a reply as a client receives it.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw = decode_raw(bytes)?;
        check_endpoint(&raw)?;
        if raw.opcode_or_error != 0 {
            return Ok(Self::Failed {
                code: raw.opcode_or_error,
            });
        }
        InitiateReply::from_raw(&raw).map(Self::Session)
    }
}

/// Encodes an error reply: OpCode-ErrorCode = `code`, no variables.
pub fn encode_error_reply(code: u32) -> Vec<u8> {
    WdscPacket::reply(MULTICAST_ENDPOINT_GUID, code, Vec::new())
        .encode()
        .unwrap_or_default()
}

impl InitiateReply {
    pub fn to_packet(&self) -> WdscPacket {
        let addr = |ip: &IpAddr| {
            let mut out = Vec::with_capacity(16);
            ip_bytes(ip, &mut out);
            Value::Blob(out)
        };
        let mut vars = vec![
            Variable::new(name::MC_PORT, Value::ULong(self.port.into())),
            Variable::new(name::MC_ADDRESS, addr(&self.multicast_addr)),
            Variable::new(name::UNI_PORT, Value::ULong(self.port.into())),
            Variable::new(name::UNI_ADDRESS, addr(&self.server_addr)),
            Variable::new(name::CONTENT_SIZE, Value::ULong64(self.content_size)),
            Variable::new(name::TOTAL_BLOCKS, Value::ULong64(self.total_blocks)),
            Variable::new(name::BLOCK_SIZE, Value::ULong(self.block_size)),
            Variable::new(name::SESSION_ID, Value::ULong(self.session_id)),
        ];
        let blobs = [
            (name::CONTENT_METADATA, &self.content_metadata),
            (name::SYM_KEY, &self.sym_key),
            (name::SIGN_KEY, &self.sign_key),
            (name::USER_SID, &self.user_sid),
        ];
        for (n, blob) in blobs {
            if let Some(b) = blob {
                vars.push(Variable::new(n, Value::Blob(b.clone())));
            }
        }
        let ulongs = [
            (name::HMAC_ALG_ID, self.hmac_alg_id),
            (name::HASH_ALG_ID, self.hash_alg_id),
            (name::SEC_MODE, self.sec_mode),
        ];
        for (n, v) in ulongs {
            if let Some(v) = v {
                vars.push(Variable::new(n, Value::ULong(v)));
            }
        }
        WdscPacket::reply(MULTICAST_ENDPOINT_GUID, 0, vars)
    }

    /// Encodes a success reply. Every field fits by construction, so this cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        self.to_packet().encode().unwrap_or_default()
    }

    /// Decodes a success reply; a non-zero OpCode-ErrorCode is an error here (use
    /// [`InitiateOutcome::decode`] to tell the two apart).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match InitiateOutcome::decode(bytes)? {
            InitiateOutcome::Session(reply) => Ok(reply),
            InitiateOutcome::Failed { code } => Err(DecodeError {
                packet: "WDSC operation header",
                field: "OpCode-ErrorCode",
                offset: ENDPOINT_HEADER_LEN + 8,
                kind: DecodeErrorKind::InvalidValue { value: code.into() },
            }),
        }
    }

    fn from_raw(raw: &RawPacket) -> Result<Self, DecodeError> {
        let v = Vars(raw);
        let mc_port = v.port(name::MC_PORT)?;
        let uni_port = v.port(name::UNI_PORT)?;
        if mc_port != uni_port {
            let (at, _) = v.find(name::UNI_PORT).unwrap_or((raw.end, &Value::Byte(0)));
            return Err(DecodeError {
                packet: "WDSMSI INITIATE reply",
                field: name::UNI_PORT,
                offset: at,
                kind: DecodeErrorKind::InvalidValue {
                    value: uni_port.into(),
                },
            });
        }
        Ok(Self {
            multicast_addr: v.address(name::MC_ADDRESS)?,
            server_addr: v.address(name::UNI_ADDRESS)?,
            port: mc_port,
            session_id: v.ulong(name::SESSION_ID)?,
            content_size: v.ulong64(name::CONTENT_SIZE)?,
            block_size: v.ulong(name::BLOCK_SIZE)?,
            total_blocks: v.ulong64(name::TOTAL_BLOCKS)?,
            content_metadata: v.opt_blob(name::CONTENT_METADATA)?,
            sym_key: v.opt_blob(name::SYM_KEY)?,
            sign_key: v.opt_blob(name::SIGN_KEY)?,
            hash_alg_id: v.opt_ulong(name::HASH_ALG_ID)?,
            hmac_alg_id: v.opt_ulong(name::HMAC_ALG_ID)?,
            sec_mode: v.opt_ulong(name::SEC_MODE)?,
            user_sid: v.opt_blob(name::USER_SID)?,
        })
    }

    /// The session parameters in the form the UDP path produces, so that
    /// [`MsiReply::check_consistency`] applies to both.
    pub fn session(&self) -> MsiReply {
        MsiReply {
            multicast_addr: self.multicast_addr,
            server_addr: self.server_addr,
            multicast_port: self.port,
            server_port: self.port,
            content_size: self.content_size,
            block_size: self.block_size,
            total_blocks: self.total_blocks,
            session_id: self.session_id,
        }
    }
}

/// Typed lookups over a decoded packet's variables.
struct Vars<'a>(&'a RawPacket);

impl<'a> Vars<'a> {
    fn find(&self, n: &str) -> Option<(usize, &'a Value)> {
        self.0
            .variables
            .iter()
            .find(|(_, v)| same_name(&v.name, n))
            .map(|(at, v)| (*at, &v.value))
    }

    fn required(&self, n: &'static str) -> Result<(usize, &'a Value), DecodeError> {
        self.find(n).ok_or(DecodeError {
            packet: "WDSMSI INITIATE",
            field: n,
            offset: self.0.end,
            kind: DecodeErrorKind::MissingVariable { name: n },
        })
    }

    fn wrong_type(at: usize, n: &'static str, value: &Value) -> DecodeError {
        DecodeError {
            packet: "WDSMSI INITIATE",
            field: n,
            offset: at,
            kind: DecodeErrorKind::InvalidValue {
                value: value.base_type().into(),
            },
        }
    }

    fn typed<T>(
        &self,
        n: &'static str,
        pick: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, DecodeError> {
        match self.find(n) {
            None => Ok(None),
            Some((at, value)) => pick(value)
                .map(Some)
                .ok_or_else(|| Self::wrong_type(at, n, value)),
        }
    }

    fn opt_ulong(&self, n: &'static str) -> Result<Option<u32>, DecodeError> {
        self.typed(n, |v| match v {
            Value::ULong(x) => Some(*x),
            _ => None,
        })
    }

    fn opt_ulong64(&self, n: &'static str) -> Result<Option<u64>, DecodeError> {
        self.typed(n, |v| match v {
            Value::ULong64(x) => Some(*x),
            _ => None,
        })
    }

    fn opt_blob(&self, n: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
        self.typed(n, |v| match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        })
    }

    fn ulong(&self, n: &'static str) -> Result<u32, DecodeError> {
        self.required(n)?;
        self.opt_ulong(n).map(Option::unwrap_or_default)
    }

    fn ulong64(&self, n: &'static str) -> Result<u64, DecodeError> {
        self.required(n)?;
        self.opt_ulong64(n).map(Option::unwrap_or_default)
    }

    fn wstring(&self, n: &'static str) -> Result<String, DecodeError> {
        let (at, value) = self.required(n)?;
        match value {
            Value::WString(s) => Ok(s.clone()),
            other => Err(Self::wrong_type(at, n, other)),
        }
    }

    fn port(&self, n: &'static str) -> Result<u16, DecodeError> {
        let (at, _) = self.required(n)?;
        let port = self.ulong(n)?;
        u16::try_from(port)
            .ok()
            .filter(|&p| p != 0)
            .ok_or(DecodeError {
                packet: "WDSMSI INITIATE reply",
                field: n,
                offset: at,
                kind: DecodeErrorKind::InvalidValue { value: port.into() },
            })
    }

    fn address(&self, n: &'static str) -> Result<IpAddr, DecodeError> {
        let (at, value) = self.required(n)?;
        let Value::Blob(bytes) = value else {
            return Err(Self::wrong_type(at, n, value));
        };
        ip_from_bytes(bytes).ok_or(DecodeError {
            packet: "WDSMSI INITIATE reply",
            field: n,
            offset: at,
            kind: DecodeErrorKind::InvalidValue {
                value: bytes.len() as u64,
            },
        })
    }
}
