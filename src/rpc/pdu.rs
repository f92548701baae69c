//! Connection-oriented DCE/RPC v5.0 PDUs (C706 12.6, MS-RPCE 2.2.2): the common header,
//! bind / alter_context and their answers, auth3, request, response, fault, and the
//! sec_trailer with its auth_value.
//!
//! We always send little-endian, ASCII, IEEE data representation. A received PDU with any
//! other integer or character representation is refused with [`PduError::DataRepresentation`]
//! rather than misread.

use crate::wire::DecodeError;
use crate::wire::codec::Reader;

pub use super::syntax::{
    EPM_INTERFACE, NDR, NDR64, SyntaxId, Uuid, WDS_INTERFACE, bind_time_feature_syntax,
    bind_time_features, btfn,
};

/// Common header length.
pub const HEADER_LEN: usize = 16;
/// sec_trailer length.
pub const SEC_TRAILER_LEN: usize = 8;
/// Smallest fragment every implementation must accept (C706 12.6.3.1, `MustRecvFragSize`).
pub const MUST_RECV_FRAG_SIZE: u16 = 1432;
/// Fragment size Windows offers; our default both ways.
pub const DEFAULT_MAX_FRAG: u16 = 4280;
/// `packed_drep` we send: little-endian integers, ASCII characters, IEEE floats.
pub const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];

/// PDU types (C706 12.6.4, MS-RPCE 2.2.2.10).
pub mod ptype {
    pub const REQUEST: u8 = 0;
    pub const RESPONSE: u8 = 2;
    pub const FAULT: u8 = 3;
    pub const BIND: u8 = 11;
    pub const BIND_ACK: u8 = 12;
    pub const BIND_NAK: u8 = 13;
    pub const ALTER_CONTEXT: u8 = 14;
    pub const ALTER_CONTEXT_RESP: u8 = 15;
    pub const AUTH3: u8 = 16;
    pub const SHUTDOWN: u8 = 17;
    pub const CO_CANCEL: u8 = 18;
    pub const ORPHANED: u8 = 19;
}

/// `pfc_flags` bits.
pub mod pfc {
    pub const FIRST_FRAG: u8 = 0x01;
    pub const LAST_FRAG: u8 = 0x02;
    /// On bind, bind_ack, alter_context, alter_context_resp and auth3 (MS-RPCE 2.2.2.3).
    pub const SUPPORT_HEADER_SIGN: u8 = 0x04;
    /// The same bit on every other PDU type.
    pub const PENDING_CANCEL: u8 = 0x04;
    pub const CONC_MPX: u8 = 0x10;
    pub const DID_NOT_EXECUTE: u8 = 0x20;
    pub const MAYBE: u8 = 0x40;
    pub const OBJECT_UUID: u8 = 0x80;
}

/// `auth_type` values (MS-RPCE 2.2.1.1.7).
pub mod auth_type {
    pub const NONE: u8 = 0x00;
    pub const GSS_NEGOTIATE: u8 = 0x09;
    pub const WINNT: u8 = 0x0A;
    pub const GSS_SCHANNEL: u8 = 0x0E;
    pub const GSS_KERBEROS: u8 = 0x10;
    pub const NETLOGON: u8 = 0x44;
    pub const DEFAULT: u8 = 0xFF;
}

/// `auth_level` values (MS-RPCE 2.2.1.1.8).
pub mod auth_level {
    pub const DEFAULT: u8 = 0;
    pub const NONE: u8 = 1;
    pub const CONNECT: u8 = 2;
    pub const CALL: u8 = 3;
    pub const PKT: u8 = 4;
    pub const PKT_INTEGRITY: u8 = 5;
    pub const PKT_PRIVACY: u8 = 6;
}

/// `p_cont_def_result_t` (C706 12.6.3.1, MS-RPCE 2.2.2.4).
pub mod result {
    pub const ACCEPTANCE: u16 = 0;
    pub const USER_REJECTION: u16 = 1;
    pub const PROVIDER_REJECTION: u16 = 2;
    pub const NEGOTIATE_ACK: u16 = 3;
}

/// `p_provider_reason_t`: why a presentation context was rejected.
pub mod provider_reason {
    pub const NOT_SPECIFIED: u16 = 0;
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: u16 = 1;
    pub const PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED: u16 = 2;
    pub const LOCAL_LIMIT_EXCEEDED: u16 = 3;
}

/// bind_nak `provider_reject_reason` (C706 12.6.3.1, MS-RPCE 2.2.2.5).
pub mod reject_reason {
    pub const NOT_SPECIFIED: u16 = 0;
    pub const TEMPORARY_CONGESTION: u16 = 1;
    pub const LOCAL_LIMIT_EXCEEDED: u16 = 2;
    pub const CALLED_PADDR_UNKNOWN: u16 = 3;
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: u16 = 4;
    pub const DEFAULT_CONTEXT_NOT_SUPPORTED: u16 = 5;
    pub const USER_DATA_NOT_READABLE: u16 = 6;
    pub const NO_PSAP_AVAILABLE: u16 = 7;
    pub const AUTHENTICATION_TYPE_NOT_RECOGNIZED: u16 = 8;
    pub const INVALID_CHECKSUM: u16 = 9;
}

/// Fault `status` values we send or expect (C706 appendix N, MS-RPCE, MS-ERREF).
pub mod status {
    /// `ERROR_ACCESS_DENIED`: level too low, credentials refused, request too large.
    pub const ACCESS_DENIED: u32 = 0x0000_0005;
    /// `RPC_X_BAD_STUB_DATA` (nca_s_fault_ndr).
    pub const BAD_STUB_DATA: u32 = 0x0000_06F7;
    /// `nca_s_fault_sec_pkg_error` / `RPC_S_SEC_PKG_ERROR`: a verifier failed to check.
    pub const SEC_PKG_ERROR: u32 = 0x0000_0721;
    /// `nca_s_op_rng_error`: opnum out of range.
    pub const OP_RNG_ERROR: u32 = 0x1C01_0002;
    /// `nca_s_unknown_if`: no such presentation context / interface.
    pub const UNKNOWN_IF: u32 = 0x1C01_0003;
    /// `nca_s_proto_error` (MS-RPCE 3.3.3.5.7).
    pub const PROTO_ERROR: u32 = 0x1C01_000B;
}

/// Why bytes are not a PDU we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("not DCE/RPC connection-oriented v5.0 (version {major}.{minor})")]
    Version { major: u8, minor: u8 },
    #[error("data representation {drep:02x?} is not little-endian ASCII, the only one supported")]
    DataRepresentation { drep: [u8; 4] },
    #[error("fragment length {frag_len} is outside {HEADER_LEN}..={max}")]
    FragLength { frag_len: u16, max: usize },
    #[error("unknown or connectionless PDU type {0}")]
    UnknownType(u8),
    #[error("auth_length {auth_len} does not fit a {frag_len}-byte {ptype_name}")]
    AuthLength {
        auth_len: u16,
        frag_len: u16,
        ptype_name: &'static str,
    },
    #[error("auth_pad_length {pad} exceeds the {body}-byte body")]
    AuthPadding { pad: u8, body: usize },
    #[error("{len}-byte PDU exceeds the 16-bit frag_length")]
    TooLong { len: usize },
    #[error(transparent)]
    Malformed(#[from] DecodeError),
}

/// The 16-byte common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub flags: u8,
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

impl Header {
    /// Validates version and data representation and reads the header from the first
    /// [`HEADER_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PduError> {
        let mut r = Reader::new(bytes, 0, "RPC header");
        let major = r.u8("rpc_vers")?;
        let minor = r.u8("rpc_vers_minor")?;
        if major != 5 || minor != 0 {
            return Err(PduError::Version { major, minor });
        }
        let ptype = r.u8("PTYPE")?;
        let flags = r.u8("pfc_flags")?;
        let drep = r.array::<4>("packed_drep")?;
        // Integer (high nibble) must be little-endian, characters (low nibble) ASCII; the
        // float format is irrelevant, no PDU we handle carries one.
        if drep[0] != DREP_LE[0] {
            return Err(PduError::DataRepresentation { drep });
        }
        Ok(Self {
            ptype,
            flags,
            frag_len: r.u16_le("frag_length")?,
            auth_len: r.u16_le("auth_length")?,
            call_id: r.u32_le("call_id")?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[5, 0, self.ptype, self.flags]);
        out.extend_from_slice(&DREP_LE);
        out.extend_from_slice(&self.frag_len.to_le_bytes());
        out.extend_from_slice(&self.auth_len.to_le_bytes());
        out.extend_from_slice(&self.call_id.to_le_bytes());
    }
}

/// `p_cont_elem_t`: one proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextElem {
    pub context_id: u16,
    pub abstract_syntax: SyntaxId,
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// bind and alter_context bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    pub contexts: Vec<ContextElem>,
}

/// `p_result_t`: the answer to one proposed context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    pub result: u16,
    /// For [`result::NEGOTIATE_ACK`], the feature bits the server grants.
    pub reason: u16,
    pub transfer_syntax: SyntaxId,
}

/// bind_ack and alter_context_resp bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAck {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    /// Secondary endpoint address (the port as text), without its NUL; clients ignore it.
    pub secondary_address: Vec<u8>,
    pub results: Vec<ContextResult>,
}

/// bind_nak body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindNak {
    pub reason: u16,
    /// Protocol versions the server supports, (major, minor).
    pub versions: Vec<(u8, u8)>,
}

/// request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub opnum: u16,
    pub object: Option<Uuid>,
    /// Stub data; on decode with an auth trailer, stub plus auth padding (still sealed).
    pub stub: &'a [u8],
}

/// response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub cancel_count: u8,
    /// As for [`Request::stub`].
    pub stub: &'a [u8],
}

/// fault body (stub data after it is ignored, MS-RPCE 2.2.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub cancel_count: u8,
    /// Bit 0: extended error information follows.
    pub flags: u8,
    pub status: u32,
}

/// The type-specific part of a PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Request(Request<'a>),
    Response(Response<'a>),
    Fault(Fault),
    Bind(Bind),
    BindAck(BindAck),
    BindNak(BindNak),
    AlterContext(Bind),
    AlterContextResp(BindAck),
    Auth3,
    Shutdown,
    CoCancel,
    Orphaned,
}

impl Body<'_> {
    pub fn ptype(&self) -> u8 {
        match self {
            Self::Request(_) => ptype::REQUEST,
            Self::Response(_) => ptype::RESPONSE,
            Self::Fault(_) => ptype::FAULT,
            Self::Bind(_) => ptype::BIND,
            Self::BindAck(_) => ptype::BIND_ACK,
            Self::BindNak(_) => ptype::BIND_NAK,
            Self::AlterContext(_) => ptype::ALTER_CONTEXT,
            Self::AlterContextResp(_) => ptype::ALTER_CONTEXT_RESP,
            Self::Auth3 => ptype::AUTH3,
            Self::Shutdown => ptype::SHUTDOWN,
            Self::CoCancel => ptype::CO_CANCEL,
            Self::Orphaned => ptype::ORPHANED,
        }
    }
}

/// Name of a PDU type, for errors and traces.
pub fn ptype_name(ptype: u8) -> &'static str {
    match ptype {
        ptype::REQUEST => "request",
        ptype::RESPONSE => "response",
        ptype::FAULT => "fault",
        ptype::BIND => "bind",
        ptype::BIND_ACK => "bind_ack",
        ptype::BIND_NAK => "bind_nak",
        ptype::ALTER_CONTEXT => "alter_context",
        ptype::ALTER_CONTEXT_RESP => "alter_context_resp",
        ptype::AUTH3 => "auth3",
        ptype::SHUTDOWN => "shutdown",
        ptype::CO_CANCEL => "co_cancel",
        ptype::ORPHANED => "orphaned",
        _ => "unknown PDU",
    }
}

/// A PDU for traces: its type, call id, fragment flags and lengths from the common header,
/// never its stub or authentication token (those may carry credentials-derived bytes).
pub struct Summary<'a>(pub &'a [u8]);

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        if b.len() < HEADER_LEN {
            return write!(f, "RPC fragment of {} bytes", b.len());
        }
        let flags = b[3];
        write!(
            f,
            "RPC {} call={} len={} auth_len={}{}{}",
            ptype_name(b[2]),
            u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            u16::from_le_bytes([b[8], b[9]]),
            u16::from_le_bytes([b[10], b[11]]),
            if flags & pfc::FIRST_FRAG != 0 {
                " first"
            } else {
                ""
            },
            if flags & pfc::LAST_FRAG != 0 {
                " last"
            } else {
                ""
            },
        )
    }
}

/// `sec_trailer` (MS-RPCE 2.2.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecTrailer {
    pub auth_type: u8,
    pub auth_level: u8,
    pub pad_len: u8,
    pub context_id: u32,
}

impl SecTrailer {
    pub fn new(auth_type: u8, auth_level: u8, context_id: u32) -> Self {
        Self {
            auth_type,
            auth_level,
            pad_len: 0,
            context_id,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.auth_type, self.auth_level, self.pad_len, 0]);
        out.extend_from_slice(&self.context_id.to_le_bytes());
    }
}

/// The sec_trailer and the auth_value (token or signature) after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<'a> {
    pub trailer: SecTrailer,
    pub value: &'a [u8],
}

/// A decoded PDU borrowing from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub header: Header,
    pub body: Body<'a>,
    pub auth: Option<Auth<'a>>,
    /// Offset of request/response stub data (end of the fixed fields).
    pub stub_offset: usize,
    /// Offset of the sec_trailer, when there is one.
    pub trailer_offset: Option<usize>,
}

/// Bytes of the fixed fields between the header and the stub of a request or response.
pub fn stub_offset(ptype_: u8, flags: u8) -> usize {
    match ptype_ {
        ptype::REQUEST if flags & pfc::OBJECT_UUID != 0 => HEADER_LEN + 24,
        ptype::REQUEST | ptype::RESPONSE => HEADER_LEN + 8,
        ptype::FAULT => HEADER_LEN + 16,
        ptype::AUTH3 => HEADER_LEN + 4,
        _ => HEADER_LEN,
    }
}

fn syntax(r: &mut Reader<'_>) -> Result<SyntaxId, DecodeError> {
    Ok(SyntaxId {
        uuid: Uuid(r.array::<16>("if_uuid")?),
        version: r.u16_le("if_version")?,
        minor: r.u16_le("if_version_minor")?,
    })
}

fn put_syntax(s: &SyntaxId, out: &mut Vec<u8>) {
    out.extend_from_slice(&s.uuid.0);
    out.extend_from_slice(&s.version.to_le_bytes());
    out.extend_from_slice(&s.minor.to_le_bytes());
}

fn decode_bind(r: &mut Reader<'_>) -> Result<Bind, DecodeError> {
    let max_xmit_frag = r.u16_le("max_xmit_frag")?;
    let max_recv_frag = r.u16_le("max_recv_frag")?;
    let assoc_group_id = r.u32_le("assoc_group_id")?;
    let n = usize::from(r.u8("n_context_elem")?);
    r.skip(3, "reserved")?;
    // A context is at least id, count, reserved and an abstract syntax: 24 bytes.
    r.check_items(n, 24, "p_cont_elem")?;
    let mut contexts = Vec::with_capacity(n);
    for _ in 0..n {
        let context_id = r.u16_le("p_cont_id")?;
        let count = usize::from(r.u8("n_transfer_syn")?);
        r.skip(1, "reserved")?;
        let abstract_syntax = syntax(r)?;
        r.check_items(count, 20, "transfer_syntaxes")?;
        let transfer_syntaxes = (0..count)
            .map(|_| syntax(r))
            .collect::<Result<Vec<_>, _>>()?;
        contexts.push(ContextElem {
            context_id,
            abstract_syntax,
            transfer_syntaxes,
        });
    }
    Ok(Bind {
        max_xmit_frag,
        max_recv_frag,
        assoc_group_id,
        contexts,
    })
}

fn decode_bind_ack(r: &mut Reader<'_>) -> Result<BindAck, DecodeError> {
    let max_xmit_frag = r.u16_le("max_xmit_frag")?;
    let max_recv_frag = r.u16_le("max_recv_frag")?;
    let assoc_group_id = r.u32_le("assoc_group_id")?;
    let len = usize::from(r.u16_le("sec_addr.length")?);
    let addr = r.bytes(len, "sec_addr.port_spec")?;
    let secondary_address = addr.iter().copied().take_while(|&b| b != 0).collect();
    // The result list starts 4-aligned from the start of the PDU.
    r.skip((4 - r.offset() % 4) % 4, "pad")?;
    let n = usize::from(r.u8("n_results")?);
    r.skip(3, "reserved")?;
    r.check_items(n, 24, "p_results")?;
    let mut results = Vec::with_capacity(n);
    for _ in 0..n {
        results.push(ContextResult {
            result: r.u16_le("result")?,
            reason: r.u16_le("reason")?,
            transfer_syntax: syntax(r)?,
        });
    }
    Ok(BindAck {
        max_xmit_frag,
        max_recv_frag,
        assoc_group_id,
        secondary_address,
        results,
    })
}

fn decode_bind_nak(r: &mut Reader<'_>) -> Result<BindNak, DecodeError> {
    let reason = r.u16_le("provider_reject_reason")?;
    let mut versions = Vec::new();
    // Some servers end the PDU after the reason; the version list is then empty.
    if r.remaining() > 0 {
        let n = usize::from(r.u8("n_protocols")?);
        r.check_items(n, 2, "p_protocols")?;
        for _ in 0..n {
            versions.push((r.u8("major")?, r.u8("minor")?));
        }
    }
    // An optional signature and extended error information may follow; ignored.
    Ok(BindNak { reason, versions })
}

/// Decodes exactly one PDU (`bytes.len()` must equal its frag_length).
pub fn decode(bytes: &[u8]) -> Result<Pdu<'_>, PduError> {
    let header = Header::decode(bytes)?;
    let frag_len = usize::from(header.frag_len);
    if frag_len != bytes.len() || frag_len < HEADER_LEN {
        return Err(PduError::FragLength {
            frag_len: header.frag_len,
            max: bytes.len(),
        });
    }
    let auth_len = usize::from(header.auth_len);
    let fixed_end = stub_offset(header.ptype, header.flags);
    let (end, auth) = if auth_len == 0 {
        (frag_len, None)
    } else {
        let at = frag_len
            .checked_sub(auth_len + SEC_TRAILER_LEN)
            .filter(|&at| at >= fixed_end.min(frag_len).max(HEADER_LEN))
            .ok_or(PduError::AuthLength {
                auth_len: header.auth_len,
                frag_len: header.frag_len,
                ptype_name: ptype_name(header.ptype),
            })?;
        let t = &bytes[at..at + SEC_TRAILER_LEN];
        let trailer = SecTrailer {
            auth_type: t[0],
            auth_level: t[1],
            pad_len: t[2],
            context_id: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
        };
        let value = &bytes[at + SEC_TRAILER_LEN..];
        (at, Some(Auth { trailer, value }))
    };
    let region = &bytes[HEADER_LEN..end];
    let mut r = Reader::new(region, HEADER_LEN, ptype_name(header.ptype));
    let body = match header.ptype {
        ptype::REQUEST => {
            let alloc_hint = r.u32_le("alloc_hint")?;
            let context_id = r.u16_le("p_cont_id")?;
            let opnum = r.u16_le("opnum")?;
            let object = if header.flags & pfc::OBJECT_UUID != 0 {
                Some(Uuid(r.array::<16>("object")?))
            } else {
                None
            };
            Body::Request(Request {
                alloc_hint,
                context_id,
                opnum,
                object,
                stub: r.peek_rest(),
            })
        }
        ptype::RESPONSE => {
            let alloc_hint = r.u32_le("alloc_hint")?;
            let context_id = r.u16_le("p_cont_id")?;
            let cancel_count = r.u8("cancel_count")?;
            r.skip(1, "reserved")?;
            Body::Response(Response {
                alloc_hint,
                context_id,
                cancel_count,
                stub: r.peek_rest(),
            })
        }
        ptype::FAULT => {
            let alloc_hint = r.u32_le("alloc_hint")?;
            let context_id = r.u16_le("p_cont_id")?;
            let cancel_count = r.u8("cancel_count")?;
            let flags = r.u8("reserved")?;
            let status = r.u32_le("status")?;
            Body::Fault(Fault {
                alloc_hint,
                context_id,
                cancel_count,
                flags,
                status,
            })
        }
        ptype::BIND => Body::Bind(decode_bind(&mut r)?),
        ptype::ALTER_CONTEXT => Body::AlterContext(decode_bind(&mut r)?),
        ptype::BIND_ACK => Body::BindAck(decode_bind_ack(&mut r)?),
        ptype::ALTER_CONTEXT_RESP => Body::AlterContextResp(decode_bind_ack(&mut r)?),
        ptype::BIND_NAK => Body::BindNak(decode_bind_nak(&mut r)?),
        ptype::AUTH3 => Body::Auth3,
        ptype::SHUTDOWN => Body::Shutdown,
        ptype::CO_CANCEL => Body::CoCancel,
        ptype::ORPHANED => Body::Orphaned,
        other => return Err(PduError::UnknownType(other)),
    };
    if let (Body::Request(Request { stub, .. }) | Body::Response(Response { stub, .. }), Some(a)) =
        (&body, &auth)
        && usize::from(a.trailer.pad_len) > stub.len()
    {
        return Err(PduError::AuthPadding {
            pad: a.trailer.pad_len,
            body: stub.len(),
        });
    }
    Ok(Pdu {
        header,
        body,
        stub_offset: fixed_end.min(end),
        trailer_offset: auth.as_ref().map(|_| end),
        auth,
    })
}

/// Encodes a PDU. `flags` are sent as given (plus [`pfc::OBJECT_UUID`] when a request carries
/// an object). With `auth`, the body is padded before the sec_trailer — request and response
/// stubs to a multiple of 16 (MS-RPCE 2.2.2.11), other PDUs to 4 — and `pad_len` is set.
pub fn encode(
    flags: u8,
    call_id: u32,
    body: &Body<'_>,
    auth: Option<(SecTrailer, &[u8])>,
) -> Result<Vec<u8>, PduError> {
    let mut out = Vec::with_capacity(64);
    let mut flags = flags;
    Header {
        ptype: body.ptype(),
        flags,
        frag_len: 0,
        auth_len: 0,
        call_id,
    }
    .encode(&mut out);
    let mut stub_start = None;
    match body {
        Body::Request(req) => {
            out.extend_from_slice(&req.alloc_hint.to_le_bytes());
            out.extend_from_slice(&req.context_id.to_le_bytes());
            out.extend_from_slice(&req.opnum.to_le_bytes());
            if let Some(object) = &req.object {
                flags |= pfc::OBJECT_UUID;
                out.extend_from_slice(&object.0);
            }
            stub_start = Some(out.len());
            out.extend_from_slice(req.stub);
        }
        Body::Response(resp) => {
            out.extend_from_slice(&resp.alloc_hint.to_le_bytes());
            out.extend_from_slice(&resp.context_id.to_le_bytes());
            out.extend_from_slice(&[resp.cancel_count, 0]);
            stub_start = Some(out.len());
            out.extend_from_slice(resp.stub);
        }
        Body::Fault(fault) => {
            out.extend_from_slice(&fault.alloc_hint.to_le_bytes());
            out.extend_from_slice(&fault.context_id.to_le_bytes());
            out.extend_from_slice(&[fault.cancel_count, fault.flags]);
            out.extend_from_slice(&fault.status.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        Body::Bind(bind) | Body::AlterContext(bind) => {
            out.extend_from_slice(&bind.max_xmit_frag.to_le_bytes());
            out.extend_from_slice(&bind.max_recv_frag.to_le_bytes());
            out.extend_from_slice(&bind.assoc_group_id.to_le_bytes());
            let n = u8::try_from(bind.contexts.len()).map_err(|_| PduError::TooLong {
                len: bind.contexts.len(),
            })?;
            out.extend_from_slice(&[n, 0, 0, 0]);
            for ctx in &bind.contexts {
                out.extend_from_slice(&ctx.context_id.to_le_bytes());
                let n =
                    u8::try_from(ctx.transfer_syntaxes.len()).map_err(|_| PduError::TooLong {
                        len: ctx.transfer_syntaxes.len(),
                    })?;
                out.extend_from_slice(&[n, 0]);
                put_syntax(&ctx.abstract_syntax, &mut out);
                for ts in &ctx.transfer_syntaxes {
                    put_syntax(ts, &mut out);
                }
            }
        }
        Body::BindAck(ack) | Body::AlterContextResp(ack) => {
            out.extend_from_slice(&ack.max_xmit_frag.to_le_bytes());
            out.extend_from_slice(&ack.max_recv_frag.to_le_bytes());
            out.extend_from_slice(&ack.assoc_group_id.to_le_bytes());
            // The length counts the NUL; an empty address is sent as length 0.
            if ack.secondary_address.is_empty() {
                out.extend_from_slice(&0u16.to_le_bytes());
            } else {
                let len = u16::try_from(ack.secondary_address.len() + 1).map_err(|_| {
                    PduError::TooLong {
                        len: ack.secondary_address.len(),
                    }
                })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&ack.secondary_address);
                out.push(0);
            }
            out.resize(out.len().next_multiple_of(4), 0);
            let n = u8::try_from(ack.results.len()).map_err(|_| PduError::TooLong {
                len: ack.results.len(),
            })?;
            out.extend_from_slice(&[n, 0, 0, 0]);
            for res in &ack.results {
                out.extend_from_slice(&res.result.to_le_bytes());
                out.extend_from_slice(&res.reason.to_le_bytes());
                put_syntax(&res.transfer_syntax, &mut out);
            }
        }
        Body::BindNak(nak) => {
            out.extend_from_slice(&nak.reason.to_le_bytes());
            let n = u8::try_from(nak.versions.len()).map_err(|_| PduError::TooLong {
                len: nak.versions.len(),
            })?;
            out.push(n);
            for (major, minor) in &nak.versions {
                out.extend_from_slice(&[*major, *minor]);
            }
        }
        Body::Auth3 => out.extend_from_slice(&[0; 4]),
        Body::Shutdown | Body::CoCancel | Body::Orphaned => {}
    }
    let mut auth_len = 0;
    if let Some((mut trailer, value)) = auth {
        let pad = match stub_start {
            Some(start) => (16 - (out.len() - start) % 16) % 16,
            None => (4 - out.len() % 4) % 4,
        };
        out.resize(out.len() + pad, 0);
        trailer.pad_len = pad as u8;
        trailer.encode(&mut out);
        out.extend_from_slice(value);
        auth_len =
            u16::try_from(value.len()).map_err(|_| PduError::TooLong { len: value.len() })?;
    }
    let frag_len = u16::try_from(out.len()).map_err(|_| PduError::TooLong { len: out.len() })?;
    out[3] = flags;
    out[8..10].copy_from_slice(&frag_len.to_le_bytes());
    out[10..12].copy_from_slice(&auth_len.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests;
