//! NTLM message codecs (MS-NLMP 2.2): NEGOTIATE, CHALLENGE, AUTHENTICATE and AV pairs.
//! Pure functions over bytes; decoders never panic and never allocate more than the input.

use crate::rpc::security::AuthError;

/// Largest NTLM message we decode; real ones are a few hundred bytes.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NegotiateFlags bits (MS-NLMP 2.2.2.5).
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const LM_KEY: u32 = 0x0000_0080;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ANONYMOUS: u32 = 0x0000_0800;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const NEGOTIATE_128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const NEGOTIATE_56: u32 = 0x8000_0000;
}

/// AV_PAIR ids (MS-NLMP 2.2.2.1).
pub mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x2;
}

/// The VERSION structure (2.2.2.10); debug information only, never trusted.
pub const OUR_VERSION: [u8; 8] = [10, 0, 0, 0, 0, 0, 0, 0x0f];

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, AuthError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(bad("NTLM message truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, AuthError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(bad("NTLM message truncated"))
}

/// The payload a (len u16, maxlen u16, offset u32) field descriptor points at; empty when
/// the length is 0, whatever the offset says.
fn field(b: &[u8], at: usize) -> Result<&[u8], AuthError> {
    let len = u16_at(b, at)? as usize;
    let off = u32_at(b, at + 4)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    off.checked_add(len)
        .and_then(|end| b.get(off..end))
        .ok_or(bad("NTLM field points outside the message"))
}

/// Offset of a non-empty field, to find where the payload starts.
fn field_offset(b: &[u8], at: usize) -> Result<Option<usize>, AuthError> {
    Ok((u16_at(b, at)? != 0).then_some(u32_at(b, at + 4)? as usize))
}

fn header(b: &[u8], msg_type: u32, min_len: usize) -> Result<(), AuthError> {
    if b.len() > MAX_MESSAGE_LEN {
        return Err(bad("NTLM message too long"));
    }
    if b.len() < min_len || &b[..8] != SIGNATURE {
        return Err(bad("not an NTLMSSP message"));
    }
    if u32_at(b, 8)? != msg_type {
        return Err(bad("unexpected NTLM message type"));
    }
    Ok(())
}

fn utf16_string(b: &[u8]) -> Result<String, AuthError> {
    if b.len() % 2 != 0 {
        return Err(bad("odd-length UTF-16 string in NTLM message"));
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| bad("invalid UTF-16 in NTLM message"))
}

/// Lays out fixed header + payload: `descriptors[i]` is the offset of the i-th field
/// descriptor in `fixed`, filled in as the payloads are appended in order.
fn assemble(mut fixed: Vec<u8>, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut payload = Vec::new();
    for &(at, data) in fields {
        let off = fixed.len() + payload.len();
        let len = data.len() as u16;
        fixed[at..at + 2].copy_from_slice(&len.to_le_bytes());
        fixed[at + 2..at + 4].copy_from_slice(&len.to_le_bytes());
        fixed[at + 4..at + 8].copy_from_slice(&(off as u32).to_le_bytes());
        payload.extend_from_slice(data);
    }
    fixed.extend_from_slice(&payload);
    fixed
}

fn fixed(msg_type: u32, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..8].copy_from_slice(SIGNATURE);
    v[8..12].copy_from_slice(&msg_type.to_le_bytes());
    v
}

/// NEGOTIATE_MESSAGE (2.2.1.1). We never send domain or workstation in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiate {
    pub flags: u32,
}

impl Negotiate {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = fixed(1, 40);
        v[12..16].copy_from_slice(&self.flags.to_le_bytes());
        // Empty fields point at the end of the fixed part, as Windows does.
        v[20..24].copy_from_slice(&40u32.to_le_bytes());
        v[28..32].copy_from_slice(&40u32.to_le_bytes());
        v[32..40].copy_from_slice(&OUR_VERSION);
        v
    }

    pub fn decode(b: &[u8]) -> Result<Negotiate, AuthError> {
        // Pre-VERSION clients send only 16 bytes plus optional empty fields.
        header(b, 1, 16)?;
        Ok(Negotiate {
            flags: u32_at(b, 12)?,
        })
    }
}

/// CHALLENGE_MESSAGE (2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    /// TargetName, UTF-16LE as on the wire.
    pub target_name: Vec<u8>,
    /// TargetInfo: AV pairs as on the wire.
    pub target_info: Vec<u8>,
    pub version: Option<[u8; 8]>,
}

impl Challenge {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = fixed(2, 56);
        v[20..24].copy_from_slice(&self.flags.to_le_bytes());
        v[24..32].copy_from_slice(&self.server_challenge);
        v[48..56].copy_from_slice(&self.version.unwrap_or_default());
        assemble(v, &[(12, &self.target_name), (40, &self.target_info)])
    }

    pub fn decode(b: &[u8]) -> Result<Challenge, AuthError> {
        header(b, 2, 32)?;
        let flags = u32_at(b, 20)?;
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(&b[24..32]);
        let target_name = field(b, 12)?.to_vec();
        let target_info = if b.len() >= 48 {
            field(b, 40)?.to_vec()
        } else {
            Vec::new()
        };
        // VERSION sits at 48 only when the payload starts after it.
        let payload_start = [field_offset(b, 12)?, field_offset(b, 40).unwrap_or(None)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(b.len());
        let version = (flags & flags::VERSION != 0 && payload_start >= 56 && b.len() >= 56)
            .then(|| b[48..56].try_into().unwrap_or_default());
        Ok(Challenge {
            flags,
            server_challenge,
            target_name,
            target_info,
            version,
        })
    }
}

/// AUTHENTICATE_MESSAGE (2.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    /// Domain, user and workstation names, decoded from UTF-16LE.
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub encrypted_session_key: Vec<u8>,
    pub flags: u32,
    pub version: Option<[u8; 8]>,
    /// The MIC field, present when the payload starts at or after offset 88.
    pub mic: Option<[u8; 16]>,
}

/// Where the MIC lives in an AUTHENTICATE message that has one.
pub const MIC_OFFSET: usize = 72;

impl Authenticate {
    pub fn encode(&self) -> Vec<u8> {
        let len = if self.mic.is_some() { 88 } else { 72 };
        let mut v = fixed(3, len);
        v[60..64].copy_from_slice(&self.flags.to_le_bytes());
        v[64..72].copy_from_slice(&self.version.unwrap_or_default());
        if let Some(mic) = &self.mic {
            v[72..88].copy_from_slice(mic);
        }
        let (domain, user, ws) = (
            super::super::crypto::utf16le(&self.domain),
            super::super::crypto::utf16le(&self.user),
            super::super::crypto::utf16le(&self.workstation),
        );
        // Payload order as in MS-NLMP 4.2.4.3.
        assemble(
            v,
            &[
                (28, &domain),
                (36, &user),
                (44, &ws),
                (12, &self.lm_response),
                (20, &self.nt_response),
                (52, &self.encrypted_session_key),
            ],
        )
    }

    pub fn decode(b: &[u8]) -> Result<Authenticate, AuthError> {
        header(b, 3, 64)?;
        let descriptors = [12, 20, 28, 36, 44, 52];
        let mut payload_start = b.len();
        for at in descriptors {
            if let Some(off) = field_offset(b, at)? {
                payload_start = payload_start.min(off);
            }
        }
        let version = (payload_start >= 72 && b.len() >= 72)
            .then(|| b[64..72].try_into().unwrap_or_default());
        let mic = (payload_start >= 88 && b.len() >= 88)
            .then(|| b[72..88].try_into().unwrap_or_default());
        Ok(Authenticate {
            lm_response: field(b, 12)?.to_vec(),
            nt_response: field(b, 20)?.to_vec(),
            domain: utf16_string(field(b, 28)?)?,
            user: utf16_string(field(b, 36)?)?,
            workstation: utf16_string(field(b, 44)?)?,
            encrypted_session_key: field(b, 52)?.to_vec(),
            flags: u32_at(b, 60)?,
            version,
            mic,
        })
    }
}

/// A parsed AV pair list; values borrowed from the wire bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AvPairs<'a> {
    pub pairs: Vec<(u16, &'a [u8])>,
}

impl<'a> AvPairs<'a> {
    /// Parses up to and excluding MsvAvEOL. Bytes after EOL are ignored (Windows may pad).
    pub fn decode(mut b: &'a [u8]) -> Result<AvPairs<'a>, AuthError> {
        let mut pairs = Vec::new();
        loop {
            let id = u16_at(b, 0).map_err(|_| bad("AV pair list has no MsvAvEOL"))?;
            let len = u16_at(b, 2).map_err(|_| bad("AV pair list has no MsvAvEOL"))? as usize;
            let value = b.get(4..4 + len).ok_or(bad("AV pair runs past its list"))?;
            if id == av::EOL {
                return Ok(AvPairs { pairs });
            }
            // Each pair takes at least 4 input bytes, so this stays bounded by the input.
            pairs.push((id, value));
            b = &b[4 + len..];
        }
    }

    pub fn get(&self, id: u16) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    pub fn flags(&self) -> u32 {
        self.get(av::FLAGS)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0)
    }

    pub fn timestamp(&self) -> Option<u64> {
        self.get(av::TIMESTAMP)
            .and_then(|v| v.try_into().ok())
            .map(u64::from_le_bytes)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (id, value) in &self.pairs {
            v.extend_from_slice(&id.to_le_bytes());
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
            v.extend_from_slice(value);
        }
        v.extend_from_slice(&[0; 4]);
        v
    }
}

/// The parts of an NTLMv2 response (2.2.2.8) an acceptor needs.
pub struct NtlmV2Response<'a> {
    pub nt_proof_str: &'a [u8],
    /// The NTLMv2_CLIENT_CHALLENGE exactly as received: NTProofStr covers these bytes.
    pub blob: &'a [u8],
    pub av_pairs: AvPairs<'a>,
}

impl<'a> NtlmV2Response<'a> {
    pub fn decode(nt: &'a [u8]) -> Result<NtlmV2Response<'a>, AuthError> {
        // NTProofStr(16) + RespType, HiRespType, Z(6), Time(8), ChallengeFromClient(8), Z(4).
        if nt.len() < 16 + 28 {
            return Err(bad("NTLMv2 response too short"));
        }
        let blob = &nt[16..];
        if blob[0] != 1 {
            return Err(bad("unknown NTLMv2 response version"));
        }
        Ok(NtlmV2Response {
            nt_proof_str: &nt[..16],
            blob,
            av_pairs: AvPairs::decode(&blob[28..])?,
        })
    }
}
