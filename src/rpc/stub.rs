//! NDR 2.0 stubs: `WdsRpcMessage` (MS-WDSC 3.1.4.1, opnum 0) and the endpoint mapper's
//! `ept_map` (C706 appendix O, MS-RPCE 2.2.1.2.5, opnum 3) with its protocol towers
//! (C706 appendix L), enough to learn the TCP port of an interface.
//!
//! All counts are checked against the bytes present before anything is allocated.

use std::net::Ipv4Addr;

use super::pdu::{NDR, SyntaxId, Uuid};
use crate::wire::codec::Reader;
use crate::wire::{DecodeError, DecodeErrorKind};

/// Opnum of `WdsRpcMessage`.
pub const WDS_RPC_MESSAGE_OPNUM: u16 = 0;
/// Opnum of `ept_map`.
pub const EPT_MAP_OPNUM: u16 = 3;
/// Endpoint mapper port for ncacn_ip_tcp.
pub const EPM_TCP_PORT: u16 = 135;
/// WDS's default RPC port (`wdsutil /set-server /rpcport`).
pub const WDS_DEFAULT_TCP_PORT: u16 = 5040;
/// `ept_map` status: no element matched (`EPT_S_NOT_REGISTERED`).
pub const EPT_S_NOT_REGISTERED: u32 = 0x16C9_A0D6;
/// Longest tower accepted (MS-RPCE 2.2.1.2.2 `range(0,2000)`).
pub const MAX_TOWER_LEN: usize = 2000;
/// Most towers asked for or accepted (MS-RPCE `range(0,500)`).
pub const MAX_TOWERS: u32 = 500;

/// MS-RPCE 2.2.2.13.1 verification trailer signature.
pub const VERIFICATION_TRAILER_SIGNATURE: [u8; 8] =
    [0x8a, 0xe3, 0x13, 0x71, 0x02, 0xf4, 0x36, 0x71];

/// Referent id we give non-NULL pointers (any non-zero value is valid).
const REFERENT: u32 = 0x0002_0000;

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

fn align4(r: &mut Reader<'_>, field: &'static str) -> Result<(), DecodeError> {
    r.skip((4 - r.position() % 4) % 4, field)
}

/// A `size_is(size)` byte array: its conformance, which must repeat `size` (the parameter
/// read before it), then the bytes.
fn conformant_bytes<'a>(
    r: &mut Reader<'a>,
    size: u32,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let conformance = r.u32_le("conformance")?;
    if conformance != size {
        return Err(r.error(
            "conformance",
            DecodeErrorKind::LengthMismatch {
                declared: size as usize,
                actual: conformance as usize,
            },
        ));
    }
    r.bytes(size as usize, field)
}

/// Why a stub cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{len}-byte packet does not fit the 32-bit size field")]
pub struct StubTooLong {
    pub len: usize,
}

fn len32(len: usize) -> Result<u32, StubTooLong> {
    u32::try_from(len).map_err(|_| StubTooLong { len })
}

/// `[in] uRequestPacketSize, [in, size_is] bRequestPacket`.
pub fn encode_message_request(packet: &[u8]) -> Result<Vec<u8>, StubTooLong> {
    let n = len32(packet.len())?;
    let mut out = Vec::with_capacity(8 + packet.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(packet);
    Ok(out)
}

/// The request packet; a verification trailer after it (MS-RPCE 2.2.2.13) is tolerated.
pub fn decode_message_request(stub: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(stub, 0, "WdsRpcMessage request");
    let size = r.u32_le("uRequestPacketSize")?;
    let packet = conformant_bytes(&mut r, size, "bRequestPacket")?;
    skip_verification_trailer(&mut r)?;
    Ok(packet)
}

/// Accepts nothing, NDR alignment padding, or padding then a verification trailer whose
/// commands are skipped (bounded); refuses anything else and commands marked
/// `SEC_VT_MUST_PROCESS_COMMAND` that are not defined.
fn skip_verification_trailer(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let rest = r.peek_rest();
    let Some(at) = rest
        .windows(8)
        .position(|w| w == VERIFICATION_TRAILER_SIGNATURE)
    else {
        return if rest.len() < 4 && rest.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(r.error(
                "end of stub",
                DecodeErrorKind::TrailingBytes { count: rest.len() },
            ))
        };
    };
    if rest[..at].iter().any(|&b| b != 0) || (r.position() + at) % 4 != 0 {
        return Err(r.error(
            "verification trailer",
            DecodeErrorKind::TrailingBytes { count: rest.len() },
        ));
    }
    r.skip(at + 8, "rpc_sec_verification_trailer")?;
    while r.remaining() > 0 {
        let command = r.u16_le("SEC_VT command")?;
        let length = r.u16_le("SEC_VT length")?;
        let kind = command & 0x3FFF;
        if command & 0x8000 != 0 && !(1..=3).contains(&kind) {
            return Err(r.invalid("SEC_VT command", command.into()));
        }
        r.skip(usize::from(length), "SEC_VT body")?;
        if command & 0x4000 != 0 {
            break;
        }
    }
    Ok(())
}

/// The out-parameters of `WdsRpcMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageReply<'a> {
    /// The reply packet; `None` when the server returned a NULL pointer (with an error).
    pub packet: Option<&'a [u8]>,
    /// Win32 return value; 0 = success.
    pub status: u32,
}

/// `[out] puReplyPacketSize, [out] pbReplyPacket (unique pointer to a conformant array),
/// return value`.
pub fn encode_message_response(packet: Option<&[u8]>, status: u32) -> Result<Vec<u8>, StubTooLong> {
    let mut out = Vec::with_capacity(16 + packet.map_or(0, <[u8]>::len));
    match packet {
        Some(p) => {
            let n = len32(p.len())?;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&REFERENT.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(p);
            pad4(&mut out);
        }
        None => {
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
    }
    out.extend_from_slice(&status.to_le_bytes());
    Ok(out)
}

pub fn decode_message_response(stub: &[u8]) -> Result<MessageReply<'_>, DecodeError> {
    let mut r = Reader::new(stub, 0, "WdsRpcMessage response");
    let size = r.u32_le("puReplyPacketSize")?;
    let referent = r.u32_le("pbReplyPacket referent")?;
    let packet = if referent == 0 {
        None
    } else {
        let p = conformant_bytes(&mut r, size, "pbReplyPacket")?;
        align4(&mut r, "pad")?;
        Some(p)
    };
    let status = r.u32_le("return value")?;
    r.finish()?;
    Ok(MessageReply { packet, status })
}

// ---------------------------------------------------------------------------------------------
// Endpoint mapper

/// Protocol identifiers used in ncacn_ip_tcp towers (C706 appendix I).
pub mod protocol_id {
    pub const UUID: u8 = 0x0D;
    pub const CONNECTION_ORIENTED: u8 = 0x0B;
    pub const TCP: u8 = 0x07;
    pub const IP: u8 = 0x09;
}

/// One floor: left-hand side (protocol id and data) and right-hand side (address data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    pub lhs: Vec<u8>,
    pub rhs: Vec<u8>,
}

/// A protocol tower (C706 appendix L). Floor counts and lengths are little-endian; the port
/// and IPv4 address inside their floors are big-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tower {
    pub floors: Vec<Floor>,
}

fn uuid_floor(s: &SyntaxId) -> Floor {
    let mut lhs = vec![protocol_id::UUID];
    lhs.extend_from_slice(&s.uuid.0);
    lhs.extend_from_slice(&s.version.to_le_bytes());
    Floor {
        lhs,
        rhs: s.minor.to_le_bytes().to_vec(),
    }
}

impl Tower {
    /// The five-floor ncacn_ip_tcp tower for `interface` over NDR at `ip:port`.
    pub fn tcp(interface: &SyntaxId, port: u16, ip: Ipv4Addr) -> Self {
        Self {
            floors: vec![
                uuid_floor(interface),
                uuid_floor(&NDR),
                Floor {
                    lhs: vec![protocol_id::CONNECTION_ORIENTED],
                    rhs: vec![0, 0],
                },
                Floor {
                    lhs: vec![protocol_id::TCP],
                    rhs: port.to_be_bytes().to_vec(),
                },
                Floor {
                    lhs: vec![protocol_id::IP],
                    rhs: ip.octets().to_vec(),
                },
            ],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.floors.len() as u16).to_le_bytes());
        for floor in &self.floors {
            out.extend_from_slice(&(floor.lhs.len() as u16).to_le_bytes());
            out.extend_from_slice(&floor.lhs);
            out.extend_from_slice(&(floor.rhs.len() as u16).to_le_bytes());
            out.extend_from_slice(&floor.rhs);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0, "protocol tower");
        let count = usize::from(r.u16_le("floor_count")?);
        // Each floor has at least its two length fields.
        r.check_items(count, 4, "floors")?;
        let mut floors = Vec::with_capacity(count);
        for _ in 0..count {
            let n = usize::from(r.u16_le("lhs_length")?);
            let lhs = r.bytes(n, "lhs")?.to_vec();
            let n = usize::from(r.u16_le("rhs_length")?);
            let rhs = r.bytes(n, "rhs")?.to_vec();
            floors.push(Floor { lhs, rhs });
        }
        Ok(Self { floors })
    }

    fn floor(&self, id: u8) -> Option<&Floor> {
        self.floors.iter().find(|f| f.lhs.first() == Some(&id))
    }

    /// The interface named by the first floor.
    pub fn interface(&self) -> Option<SyntaxId> {
        let f = self.floors.first()?;
        match (f.lhs.as_slice(), f.rhs.as_slice()) {
            ([protocol_id::UUID, uuid @ .., v0, v1], [m0, m1]) if uuid.len() == 16 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(uuid);
                Some(SyntaxId {
                    uuid: Uuid(u),
                    version: u16::from_le_bytes([*v0, *v1]),
                    minor: u16::from_le_bytes([*m0, *m1]),
                })
            }
            _ => None,
        }
    }

    /// The TCP port, if this is a connection-oriented TCP tower.
    pub fn tcp_port(&self) -> Option<u16> {
        self.floor(protocol_id::CONNECTION_ORIENTED)?;
        match self.floor(protocol_id::TCP)?.rhs.as_slice() {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match self.floor(protocol_id::IP)?.rhs.as_slice() {
            [a, b, c, d] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
            _ => None,
        }
    }
}

/// `ept_map(obj = nil UUID, map_tower = ncacn_ip_tcp tower for interface, entry_handle = NULL,
/// max_towers)`.
pub fn encode_ept_map_request(interface: &SyntaxId, max_towers: u32) -> Vec<u8> {
    let tower = Tower::tcp(interface, 0, Ipv4Addr::UNSPECIFIED).encode();
    let mut out = Vec::with_capacity(64 + tower.len());
    // obj: a full pointer to a nil UUID (what Windows clients send).
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&Uuid::NIL.0);
    // map_tower: pointer, conformance, tower_length, octets.
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(tower.len() as u32).to_le_bytes());
    out.extend_from_slice(&(tower.len() as u32).to_le_bytes());
    out.extend_from_slice(&tower);
    pad4(&mut out);
    // entry_handle: a NULL context handle (attributes + UUID).
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&max_towers.min(MAX_TOWERS).to_le_bytes());
    out
}

/// The out-parameters of `ept_map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EptMapResponse {
    pub entry_handle: [u8; 20],
    pub towers: Vec<Tower>,
    /// 0 on success, [`EPT_S_NOT_REGISTERED`] when nothing matched.
    pub status: u32,
}

impl EptMapResponse {
    /// The first TCP port offered for `interface`.
    pub fn tcp_port(&self, interface: &SyntaxId) -> Option<u16> {
        if self.status != 0 {
            return None;
        }
        self.towers
            .iter()
            .filter(|t| t.interface().is_some_and(|i| i.uuid == interface.uuid))
            .find_map(Tower::tcp_port)
    }

    /// Encodes the stub (for tests and a reference endpoint mapper).
    pub fn encode(&self, max_towers: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.entry_handle);
        let n = self.towers.len() as u32;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&max_towers.max(n).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        for i in 0..n {
            out.extend_from_slice(&(3 + i).to_le_bytes());
        }
        for tower in &self.towers {
            let t = tower.encode();
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(&t);
            pad4(&mut out);
        }
        out.extend_from_slice(&self.status.to_le_bytes());
        out
    }

    pub fn decode(stub: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(stub, 0, "ept_map response");
        let entry_handle = r.array::<20>("entry_handle")?;
        let num_towers = r.u32_le("num_towers")?;
        let max_count = r.u32_le("ITowers max_count")?;
        let offset = r.u32_le("ITowers offset")?;
        let actual = r.u32_le("ITowers actual_count")?;
        if offset != 0 || actual != num_towers || actual > max_count || actual > MAX_TOWERS {
            return Err(r.invalid("ITowers actual_count", actual.into()));
        }
        let actual = actual as usize;
        r.check_items(actual, 4, "ITowers")?;
        let referents: Vec<u32> = (0..actual)
            .map(|_| r.u32_le("tower referent"))
            .collect::<Result<_, _>>()?;
        let mut towers = Vec::with_capacity(actual);
        for referent in referents {
            if referent == 0 {
                continue;
            }
            let conformance = r.u32_le("tower conformance")? as usize;
            let len = r.u32_le("tower_length")? as usize;
            if len != conformance || len > MAX_TOWER_LEN {
                return Err(r.invalid("tower_length", len as u64));
            }
            towers.push(Tower::decode(r.bytes(len, "tower_octet_string")?)?);
            align4(&mut r, "pad")?;
        }
        let status = r.u32_le("status")?;
        r.finish()?;
        Ok(Self {
            entry_handle,
            towers,
            status,
        })
    }
}

#[cfg(test)]
mod tests;
