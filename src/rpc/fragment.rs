//! Request and response fragments: cutting a stub into protected fragments, opening
//! (verifying and unsealing) a received one, and bounded reassembly of a call.

use std::ops::Range;

use super::pdu::{
    self, Body, PduError, Request, Response, SEC_TRAILER_LEN, SecTrailer, Uuid, auth_level, pfc,
    ptype, stub_offset,
};
use super::security::{AuthError, Protection};

/// The security context calls on a connection use.
pub(crate) struct CallSecurity {
    pub auth_type: u8,
    pub level: u8,
    pub context_id: u32,
    pub protection: Box<dyn Protection>,
}

impl CallSecurity {
    /// Only PKT_PRIVACY carries verifiers; CONNECT sends none (MS-RPCE 3.3.1.5.4 allows that
    /// for a single connect-level context).
    pub fn seals(&self) -> bool {
        self.level == auth_level::PKT_PRIVACY
    }
}

/// Why a fragment could not be built, opened or added to its call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error(
        "a {max_frag}-byte fragment leaves no room for stub data after {overhead} bytes of \
         fixed fields and verifier"
    )]
    TooSmall { max_frag: usize, overhead: usize },
    #[error("stub of {len} bytes is too long for the 32-bit alloc_hint")]
    StubTooLong { len: usize },
    #[error("fragment carries no verifier, but the call is protected at level {level}")]
    MissingVerifier { level: u8 },
    #[error(
        "verifier for auth_type {got_type} level {got_level} context {got_context}, but the \
         connection uses {want_type}/{want_level}/{want_context}"
    )]
    VerifierMismatch {
        got_type: u8,
        got_level: u8,
        got_context: u32,
        want_type: u8,
        want_level: u8,
        want_context: u32,
    },
    #[error("fragment carries a verifier, but the connection has no security context")]
    UnexpectedVerifier,
    #[error("security provider returned a {got}-byte signature, {expected} announced")]
    SignatureLength { expected: usize, got: usize },
    #[error("alloc_hint {hint} exceeds the {limit}-byte limit")]
    AllocHint { hint: u32, limit: usize },
    #[error("call exceeds the {limit}-byte reassembly limit")]
    TooLarge { limit: usize },
    #[error("call exceeds the {limit}-fragment limit")]
    TooManyFragments { limit: usize },
    #[error("fragment protection failed: {0}")]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Pdu(#[from] PduError),
}

/// What a fragment stream carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Request {
        context_id: u16,
        opnum: u16,
        object: Option<Uuid>,
    },
    Response {
        context_id: u16,
    },
}

/// Cuts `stub` into fragments of at most `max_frag` bytes. With a sealing context each
/// fragment is sealed and signed separately, its stub padded to 16 (MS-RPCE 2.2.2.11), and
/// alloc_hint is the stub still to come (MS-RPCE 2.2.2.6).
pub(crate) fn build(
    kind: Kind,
    call_id: u32,
    stub: &[u8],
    max_frag: usize,
    security: Option<&mut CallSecurity>,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let mut security = security.filter(|s| s.seals());
    let (ptype_, object) = match kind {
        Kind::Request { object, .. } => (ptype::REQUEST, object),
        Kind::Response { .. } => (ptype::RESPONSE, None),
    };
    let object_flag = if object.is_some() {
        pfc::OBJECT_UUID
    } else {
        0
    };
    let fixed = stub_offset(ptype_, object_flag);
    let sig_len = security
        .as_ref()
        .map(|s| s.protection.signature_len())
        .unwrap_or(0);
    let (overhead, align) = match security {
        Some(_) => (fixed + SEC_TRAILER_LEN + sig_len, 16),
        None => (fixed, 1),
    };
    let room = max_frag
        .checked_sub(overhead)
        .map(|r| r / align * align)
        .filter(|&r| r > 0)
        .ok_or(FragmentError::TooSmall { max_frag, overhead })?;
    let total =
        u32::try_from(stub.len()).map_err(|_| FragmentError::StubTooLong { len: stub.len() })?;
    let chunks: Vec<&[u8]> = if stub.is_empty() {
        vec![stub]
    } else {
        stub.chunks(room).collect()
    };
    let last = chunks.len() - 1;
    let mut sent = 0u32;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut flags = 0;
        if i == 0 {
            flags |= pfc::FIRST_FRAG;
        }
        if i == last {
            flags |= pfc::LAST_FRAG;
        }
        let alloc_hint = total - sent;
        sent += chunk.len() as u32;
        let body = match kind {
            Kind::Request {
                context_id, opnum, ..
            } => Body::Request(Request {
                alloc_hint,
                context_id,
                opnum,
                object,
                stub: chunk,
            }),
            Kind::Response { context_id } => Body::Response(Response {
                alloc_hint,
                context_id,
                cancel_count: 0,
                stub: chunk,
            }),
        };
        let Some(sec) = security.as_deref_mut() else {
            out.push(pdu::encode(flags, call_id, &body, None)?);
            continue;
        };
        let placeholder = vec![0; sig_len];
        let trailer = SecTrailer::new(sec.auth_type, sec.level, sec.context_id);
        let mut bytes = pdu::encode(flags, call_id, &body, Some((trailer, &placeholder)))?;
        let trailer_at = bytes.len() - sig_len - SEC_TRAILER_LEN;
        let (head, rest) = bytes.split_at_mut(fixed);
        let (plain, rest) = rest.split_at_mut(trailer_at - fixed);
        let (trailer, slot) = rest.split_at_mut(SEC_TRAILER_LEN);
        let sig = sec.protection.seal(head, plain, trailer)?;
        if sig.len() != sig_len {
            return Err(FragmentError::SignatureLength {
                expected: sig_len,
                got: sig.len(),
            });
        }
        slot.copy_from_slice(&sig);
        out.push(bytes);
    }
    Ok(out)
}

/// Where the parts of a received request or response fragment are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub stub_offset: usize,
    /// sec_trailer offset and contents, when present.
    pub trailer: Option<(usize, SecTrailer)>,
}

impl Layout {
    pub fn of(pdu: &pdu::Pdu<'_>) -> Self {
        Self {
            stub_offset: pdu.stub_offset,
            trailer: pdu.trailer_offset.zip(pdu.auth.as_ref().map(|a| a.trailer)),
        }
    }
}

/// Verifies and unseals a fragment in place; returns where its plain stub is in `bytes`.
pub(crate) fn open(
    bytes: &mut [u8],
    layout: Layout,
    security: Option<&mut CallSecurity>,
) -> Result<Range<usize>, FragmentError> {
    let start = layout.stub_offset;
    let Some((at, trailer)) = layout.trailer else {
        return match security {
            Some(sec) if sec.seals() => Err(FragmentError::MissingVerifier { level: sec.level }),
            _ => Ok(start..bytes.len()),
        };
    };
    let Some(sec) = security else {
        return Err(FragmentError::UnexpectedVerifier);
    };
    if (trailer.auth_type, trailer.auth_level, trailer.context_id)
        != (sec.auth_type, sec.level, sec.context_id)
    {
        return Err(FragmentError::VerifierMismatch {
            got_type: trailer.auth_type,
            got_level: trailer.auth_level,
            got_context: trailer.context_id,
            want_type: sec.auth_type,
            want_level: sec.level,
            want_context: sec.context_id,
        });
    }
    // pdu::decode checks pad_len for requests and responses; faults reach here unchecked.
    let end = at
        .checked_sub(usize::from(trailer.pad_len))
        .filter(|&end| end >= start)
        .ok_or(PduError::AuthPadding {
            pad: trailer.pad_len,
            body: at.saturating_sub(start),
        })?;
    if !sec.seals() {
        return Ok(start..end);
    }
    let (head, rest) = bytes.split_at_mut(start);
    let (body, rest) = rest.split_at_mut(at - start);
    let (trailer_bytes, signature) = rest.split_at(SEC_TRAILER_LEN);
    sec.protection
        .unseal(head, body, trailer_bytes, signature)?;
    Ok(start..end)
}

/// Bounds on one reassembled call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_size: usize,
    pub max_fragments: usize,
}

/// The stub of a call being received, FIRST to LAST.
#[derive(Debug)]
pub(crate) struct Reassembly {
    pub call_id: u32,
    pub context_id: u16,
    pub opnum: u16,
    pub stub: Vec<u8>,
    fragments: usize,
}

impl Reassembly {
    /// Starts a call; never reserves what alloc_hint claims, only checks it.
    pub fn start(
        call_id: u32,
        context_id: u16,
        opnum: u16,
        alloc_hint: u32,
        limits: Limits,
    ) -> Result<Self, FragmentError> {
        if alloc_hint as usize > limits.max_size {
            return Err(FragmentError::AllocHint {
                hint: alloc_hint,
                limit: limits.max_size,
            });
        }
        Ok(Self {
            call_id,
            context_id,
            opnum,
            stub: Vec::new(),
            fragments: 0,
        })
    }

    pub fn push(&mut self, chunk: &[u8], limits: Limits) -> Result<(), FragmentError> {
        self.fragments += 1;
        if self.fragments > limits.max_fragments {
            return Err(FragmentError::TooManyFragments {
                limit: limits.max_fragments,
            });
        }
        if self.stub.len() + chunk.len() > limits.max_size {
            return Err(FragmentError::TooLarge {
                limit: limits.max_size,
            });
        }
        self.stub.extend_from_slice(chunk);
        Ok(())
    }
}
