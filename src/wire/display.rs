//! One-line descriptions of packets, for client traces and server logs.
//!
//! [`Datagram`] wraps the raw bytes of a datagram of one of the protocols and decodes them only
//! when it is formatted, so a caller that never prints a trace pays nothing.

use std::fmt;

use super::ma::MaPacket;
use super::msi::MsiPacket;
use super::mt::{Body, Packet, SeqRange};

/// A datagram as sent or received, named by its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// MS-WDSMSI session initiation over UDP.
    Msi(&'a [u8]),
    /// MS-WDSMT (with MS-WDSMA inside).
    Mt(&'a [u8]),
}

impl Datagram<'_> {
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Datagram::Msi(bytes) | Datagram::Mt(bytes) => bytes,
        }
    }
}

impl fmt::Display for Datagram<'_> {
    /// The decoded packet, or why it does not decode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decoded = match *self {
            Datagram::Msi(bytes) => MsiPacket::decode(bytes).map(|p| p.to_string()),
            Datagram::Mt(bytes) => Packet::decode(bytes).map(|p| p.to_string()),
        };
        match decoded {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(f, "undecodable {} bytes: {e}", self.bytes().len()),
        }
    }
}

impl fmt::Display for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} session=0x{:08x} time={}",
            self.body.opcode().name(),
            self.session_id,
            self.sender_time
        )?;
        match &self.body {
            Body::Spm(p) => write!(
                f,
                " seq={} master={} nack_backoff={}..{} trail={} lead={} rtt={}",
                p.spm_seq_no,
                p.master_client_id,
                p.min_nack_backoff,
                p.max_nack_backoff,
                p.trail_odata_seq_no,
                p.lead_odata_seq_no,
                p.rtt
            ),
            Body::Join(p) => write!(
                f,
                " name={:?} ip={} caps={:?}",
                p.client_name, p.ip_address, p.capabilities
            ),
            Body::JoinAck(p) => write!(
                f,
                " client={} nack_backoff={}..{} rtt={}",
                p.client_id, p.min_nack_backoff, p.max_nack_backoff, p.rtt
            ),
            Body::Qcc(p) => write!(f, " seq={} backoff={}", p.qcc_seq_no, p.qcr_backoff),
            Body::Qcr(p) => write!(
                f,
                " client={} qcc={} backoff={} hi={} {}",
                p.client_id,
                p.qcc_seq_no,
                p.backoff,
                p.hi_odata_seq_no,
                AppData(p.app_data)
            ),
            Body::OData(p) | Body::RData(p) => write!(
                f,
                " client={} seq={} trail={} {}",
                p.client_id,
                p.odata_seq_no,
                p.trail_odata_seq_no,
                AppData(p.data)
            ),
            Body::Ack(p) => write!(
                f,
                " client={} seq={} hi={}",
                p.client_id, p.odata_seq_no, p.hi_odata_seq_no
            ),
            Body::Nack(p) => write!(
                f,
                " client={} hi={} ranges={}",
                p.client_id,
                p.hi_odata_seq_no,
                Ranges(&p.ranges)
            ),
            Body::Ncf(p) => write!(f, " ranges={}", Ranges(&p.ranges)),
            Body::Leave(p) => write!(f, " client={} reason={}", p.client_id, p.reason.name()),
            Body::Poll(p) => write!(
                f,
                " seq={} backoff={} {}",
                p.poll_seq_no,
                p.backoff,
                AppData(p.app_data)
            ),
            Body::PollAck(p) => write!(
                f,
                " client={} seq={} {}",
                p.client_id,
                p.poll_seq_no,
                AppData(p.app_data)
            ),
            Body::Kick(p) => {
                f.write_str(" clients=")?;
                write_list(f, &p.clients, |f, (id, reason)| {
                    write!(f, "{id}:{}", reason.name())
                })
            }
            Body::Demote(p) => write!(
                f,
                " lower_session=0x{:08x} group={}:{} server={}:{} clients={:?}",
                p.lower_session_id,
                p.multicast_addr,
                p.multicast_port,
                p.unicast_addr,
                p.unicast_port,
                p.clients
            ),
        }
    }
}

/// `items` as `[a, b, c]`, each written by `write_item`.
fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut write_item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_item(f, item)?;
    }
    f.write_str("]")
}

/// Sequence-number ranges as `[a-b, c-d]`.
struct Ranges<'a>(&'a [SeqRange]);

impl fmt::Display for Ranges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, self.0, |f, r| write!(f, "{}-{}", r.start, r.end))
    }
}

/// The MS-WDSMA payload of an MS-WDSMT packet.
struct AppData<'a>(&'a [u8]);

impl fmt::Display for AppData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match MaPacket::decode(self.0) {
            Ok(packet) => write!(f, "{packet}"),
            Err(_) if self.0.is_empty() => f.write_str("no appdata"),
            Err(e) => write!(f, "bad appdata: {e}"),
        }
    }
}

impl fmt::Display for MaPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaPacket::SrvCir => f.write_str("SRVCIR"),
            MaPacket::CntCir(c) => {
                write!(
                    f,
                    "CNTCIR progress={} time={} missing=",
                    c.progress, c.time_in_session
                )?;
                write_list(f, &c.ranges, |f, r| write!(f, "{}-{}", r.start, r.end))
            }
            MaPacket::Data(d) => write!(f, "DATA block={} len={}", d.block_number, d.data.len()),
            MaPacket::Progress(p) => write!(
                f,
                "PROGRESS progress={} time={}",
                p.progress, p.time_in_session
            ),
        }
    }
}

impl fmt::Display for MsiPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsiPacket::Request(r) => write!(
                f,
                "MSI REQUEST namespace={:?} content={:?} ipv6_capable={:?}",
                r.namespace, r.content, r.ipv6_capable
            ),
            MsiPacket::Reply(r) => write!(
                f,
                "MSI REPLY group={}:{} server={}:{} size={} block_size={} blocks={} session=0x{:08x}",
                r.multicast_addr,
                r.multicast_port,
                r.server_addr,
                r.server_port,
                r.content_size,
                r.block_size,
                r.total_blocks,
                r.session_id
            ),
            MsiPacket::Error { code } => write!(f, "MSI ERROR 0x{code:08X}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ma::{BlockRange, CntCir};
    use crate::wire::mt::{Kick, KickReason, Leave, LeaveReason, Security};

    #[test]
    fn datagrams_describe_themselves_or_say_why_not() {
        let leave = Packet {
            security: Security::Checksum,
            session_id: 0x1234,
            sender_time: 7,
            body: Body::Leave(Leave {
                client_id: 3,
                reason: LeaveReason::Cancelled,
            }),
        }
        .encode();
        let text = Datagram::Mt(&leave).to_string();
        assert!(
            text.starts_with("LEAVE session=0x00001234 time=7"),
            "{text}"
        );
        assert!(text.contains("client=3"), "{text}");
        let bad = Datagram::Mt(b"WD").to_string();
        assert!(bad.starts_with("undecodable 2 bytes: "), "{bad}");
        let error = MsiPacket::Error { code: 0xC121_0105 }.encode();
        assert_eq!(Datagram::Msi(&error).to_string(), "MSI ERROR 0xC1210105");
    }

    #[test]
    fn lists_are_bracketed_and_comma_separated() {
        let kick = Packet {
            security: Security::Checksum,
            session_id: 1,
            sender_time: 0,
            body: Body::Kick(Kick {
                clients: vec![(7, KickReason::Fail), (9, KickReason::Fallback)],
            }),
        }
        .encode();
        let text = Datagram::Mt(&kick).to_string();
        let expected = format!(
            " clients=[7:{}, 9:{}]",
            KickReason::Fail.name(),
            KickReason::Fallback.name()
        );
        assert!(text.ends_with(&expected), "{text}");
        let cntcir = |ranges| {
            MaPacket::CntCir(CntCir {
                progress: 50,
                time_in_session: 3,
                ranges,
            })
            .to_string()
        };
        assert_eq!(
            cntcir(vec![
                BlockRange { start: 1, end: 2 },
                BlockRange { start: 5, end: 9 }
            ]),
            "CNTCIR progress=50 time=3 missing=[1-2, 5-9]"
        );
        assert_eq!(cntcir(Vec::new()), "CNTCIR progress=50 time=3 missing=[]");
    }
}
