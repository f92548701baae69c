//! Membership packets: JOIN, JOINACK, LEAVE, KICK and DEMOTE (MS-WDSMT §2.2.5, §2.2.6,
//! §2.2.11–§2.2.13). Per packet: the fields, then `parse`, `emit` and `wire_len` together.

use std::net::IpAddr;

use super::super::codec::{
    DecodeError, DecodeErrorKind, Put, Reader, utf16le_until_nul, utf16le_with_nul,
};
use super::fields::write_options;
use super::fields::{address_len, options_len, read_address, read_options, write_address};
use super::{CLIENT_NAME_LEN, KickReason, LeaveReason, MAX_DEMOTE_CLIENTS};
use super::{OPT_CAPABILITIES, OPT_USER_SID, client_name_prefix};

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

impl<'a> Join<'a> {
    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let name_bytes = r.bytes(CLIENT_NAME_LEN, "ClientName")?;
        // The last code unit is the terminating NUL; it is not part of the name even when a
        // sender forgot it.
        let client_name = utf16le_until_nul(&name_bytes[..CLIENT_NAME_LEN - 2])
            .ok_or_else(|| r.error("ClientName", DecodeErrorKind::InvalidUtf16))?;
        let ip_address = read_address(r, "IPAddrLen", "IPAddress")?;
        let mac_len = r.u8("MacAddrLen")? as usize;
        let mac_address = r.bytes(mac_len, "MacAddress")?;
        let options = read_options(r)?;
        Ok(Join {
            client_name,
            ip_address,
            mac_address,
            user_sid: options.user_sid,
            capabilities: options.capabilities,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        utf16le_with_nul(client_name_prefix(&self.client_name), out);
        out.resize(start + CLIENT_NAME_LEN, 0);
        write_address(out, &self.ip_address);
        out.put_u8(self.mac_address.len() as u8);
        out.extend_from_slice(self.mac_address);
        write_options(out, &self.options());
    }

    pub fn wire_len(&self) -> usize {
        let options = self.options();
        CLIENT_NAME_LEN
            + address_len(&self.ip_address)
            + 1
            + self.mac_address.len()
            + options_len(options.iter().map(|(_, v)| v.len()))
    }

    fn options(&self) -> Vec<(u16, &'a [u8])> {
        let mut options = Vec::new();
        if let Some(sid) = self.user_sid {
            options.push((OPT_USER_SID, sid));
        }
        if let Some(caps) = self.capabilities {
            options.push((OPT_CAPABILITIES, caps));
        }
        options
    }
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

impl JoinAck {
    pub const WIRE_LEN: usize = 18;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(JoinAck {
            client_id: r.u32("ClientId")?,
            min_nack_backoff: r.u16("MinNACKBackOff")?,
            max_nack_backoff: r.u16("MaxNACKBackOff")?,
            rtt: r.u16("RTT")?,
            client_time: r.u64("ClientTime")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u16(self.min_nack_backoff);
        out.put_u16(self.max_nack_backoff);
        out.put_u16(self.rtt);
        out.put_u64(self.client_time);
    }
}

/// LEAVE (§2.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leave {
    pub client_id: u32,
    pub reason: LeaveReason,
}

impl Leave {
    pub const WIRE_LEN: usize = 5;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Leave {
            client_id: r.u32("ClientId")?,
            reason: LeaveReason::from_u8(r.u8("LeaveReason")?),
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u8(self.reason.to_u8());
    }
}

/// KICK (§2.2.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub clients: Vec<(u32, KickReason)>,
}

impl Kick {
    /// Bytes per ClientList entry: ClientId and Reason.
    const ENTRY_LEN: usize = 5;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.u16("ClientCount")? as usize;
        r.check_items(count, Self::ENTRY_LEN, "ClientList")?;
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u32("ClientId")?;
            clients.push((id, KickReason::from_u8(r.u8("Reason")?)));
        }
        Ok(Kick { clients })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.clients.len() as u16);
        for (id, reason) in &self.clients {
            out.put_u32(*id);
            out.put_u8(reason.to_u8());
        }
    }

    pub fn wire_len(&self) -> usize {
        2 + self.clients.len() * Self::ENTRY_LEN
    }
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

impl Demote {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
        Ok(Demote {
            lower_session_id,
            multicast_addr,
            multicast_port,
            unicast_addr,
            unicast_port,
            clients,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.lower_session_id);
        write_address(out, &self.multicast_addr);
        out.put_u16(self.multicast_port);
        write_address(out, &self.unicast_addr);
        out.put_u16(self.unicast_port);
        out.put_u16(self.clients.len() as u16);
        for id in &self.clients {
            out.put_u32(*id);
        }
    }

    pub fn wire_len(&self) -> usize {
        4 + address_len(&self.multicast_addr)
            + 2
            + address_len(&self.unicast_addr)
            + 2
            + 2
            + 4 * self.clients.len()
    }
}
