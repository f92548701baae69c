//! One-line descriptions of datagrams for `--trace`.

use std::fmt::Write;

use crate::wire::ma::MaPacket;
use crate::wire::msi::MsiPacket;
use crate::wire::mt::{Body, Packet};

/// Describes an MS-WDSMT datagram, or says why it does not decode.
pub(crate) fn describe_mt(bytes: &[u8]) -> String {
    let packet = match Packet::decode(bytes) {
        Ok(p) => p,
        Err(e) => return format!("undecodable {} bytes: {e}", bytes.len()),
    };
    let mut s = format!(
        "{} session=0x{:08x} time={} len={}",
        packet.body.opcode().name(),
        packet.session_id,
        packet.sender_time,
        bytes.len()
    );
    let _ = match &packet.body {
        Body::Spm(p) => write!(
            s,
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
            s,
            " name={:?} ip={} caps={:?}",
            p.client_name, p.ip_address, p.capabilities
        ),
        Body::JoinAck(p) => write!(
            s,
            " client={} nack_backoff={}..{} rtt={}",
            p.client_id, p.min_nack_backoff, p.max_nack_backoff, p.rtt
        ),
        Body::Qcc(p) => write!(s, " seq={} backoff={}", p.qcc_seq_no, p.qcr_backoff),
        Body::Qcr(p) => write!(
            s,
            " client={} qcc={} backoff={} hi={} {}",
            p.client_id,
            p.qcc_seq_no,
            p.backoff,
            p.hi_odata_seq_no,
            describe_ma(p.app_data)
        ),
        Body::OData(p) | Body::RData(p) => write!(
            s,
            " client={} seq={} trail={} {}",
            p.client_id,
            p.odata_seq_no,
            p.trail_odata_seq_no,
            describe_ma(p.data)
        ),
        Body::Ack(p) => write!(
            s,
            " client={} seq={} hi={}",
            p.client_id, p.odata_seq_no, p.hi_odata_seq_no
        ),
        Body::Nack(p) => write!(
            s,
            " client={} hi={} ranges={:?}",
            p.client_id,
            p.hi_odata_seq_no,
            ranges(&p.ranges)
        ),
        Body::Ncf(p) => write!(s, " ranges={:?}", ranges(&p.ranges)),
        Body::Leave(p) => write!(s, " client={} reason={}", p.client_id, p.reason.name()),
        Body::Poll(p) => write!(
            s,
            " seq={} backoff={} {}",
            p.poll_seq_no,
            p.backoff,
            describe_ma(p.app_data)
        ),
        Body::PollAck(p) => write!(
            s,
            " client={} seq={} {}",
            p.client_id,
            p.poll_seq_no,
            describe_ma(p.app_data)
        ),
        Body::Kick(p) => write!(
            s,
            " clients={:?}",
            p.clients
                .iter()
                .map(|(id, r)| (id, r.name()))
                .collect::<Vec<_>>()
        ),
        Body::Demote(p) => write!(
            s,
            " lower_session=0x{:08x} group={}:{} server={}:{} clients={:?}",
            p.lower_session_id,
            p.multicast_addr,
            p.multicast_port,
            p.unicast_addr,
            p.unicast_port,
            p.clients
        ),
    };
    s
}

fn ranges(list: &[crate::wire::mt::SeqRange]) -> Vec<(u64, u64)> {
    list.iter().map(|r| (r.start, r.end)).collect()
}

fn describe_ma(bytes: &[u8]) -> String {
    match MaPacket::decode(bytes) {
        Ok(MaPacket::SrvCir) => "SRVCIR".into(),
        Ok(MaPacket::CntCir(c)) => format!(
            "CNTCIR progress={} time={} missing={:?}",
            c.progress,
            c.time_in_session,
            c.ranges
                .iter()
                .map(|r| (r.start, r.end))
                .collect::<Vec<_>>()
        ),
        Ok(MaPacket::Data(d)) => format!("DATA block={} len={}", d.block_number, d.data.len()),
        Ok(MaPacket::Progress(p)) => format!(
            "PROGRESS progress={} time={}",
            p.progress, p.time_in_session
        ),
        Err(_) if bytes.is_empty() => "no appdata".into(),
        Err(e) => format!("bad appdata: {e}"),
    }
}

/// Describes an MS-WDSMSI datagram.
pub(crate) fn describe_msi(bytes: &[u8]) -> String {
    match MsiPacket::decode(bytes) {
        Ok(MsiPacket::Request(r)) => format!(
            "MSI REQUEST namespace={:?} content={:?} ipv6_capable={:?}",
            r.namespace, r.content, r.ipv6_capable
        ),
        Ok(MsiPacket::Reply(r)) => format!(
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
        Ok(MsiPacket::Error { code }) => format!("MSI ERROR 0x{code:08X}"),
        Err(e) => format!("undecodable {} bytes: {e}", bytes.len()),
    }
}
