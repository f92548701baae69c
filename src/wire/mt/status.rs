//! Session status and the query rounds: SPM, QCC, QCR, POLL and POLLACK (MS-WDSMT §2.2.7–
//! §2.2.10, §2.2.14). Per packet: the fields, then `parse`, `emit` and `wire_len` together.

use super::super::codec::{DecodeError, Put, Reader};
use super::fields::write_options;
use super::fields::{app_data_len, options_len, read_app_data, read_options, write_app_data};
use super::{OPT_CPU_UTIL, OPT_MEM_UTIL, OPT_NET_UTIL};

/// SPM (§2.2.14): session status heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spm {
    pub spm_seq_no: u64,
    pub master_client_id: u32,
    pub min_nack_backoff: u16,
    pub max_nack_backoff: u16,
    pub trail_odata_seq_no: u64,
    pub lead_odata_seq_no: u64,
    pub rtt: u16,
}

impl Spm {
    pub const WIRE_LEN: usize = 34;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Spm {
            spm_seq_no: r.u64("SPMSeqNo")?,
            master_client_id: r.u32("MasterClientId")?,
            min_nack_backoff: r.u16("MinNACKBackOff")?,
            max_nack_backoff: r.u16("MaxNACKBackOff")?,
            trail_odata_seq_no: r.u64("TrailODATASeqNo")?,
            lead_odata_seq_no: r.u64("LeadODATASeqNo")?,
            rtt: r.u16("RTT")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.spm_seq_no);
        out.put_u32(self.master_client_id);
        out.put_u16(self.min_nack_backoff);
        out.put_u16(self.max_nack_backoff);
        out.put_u64(self.trail_odata_seq_no);
        out.put_u64(self.lead_odata_seq_no);
        out.put_u16(self.rtt);
    }
}

/// QCC (§2.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcc {
    pub qcc_seq_no: u64,
    pub qcr_backoff: u16,
}

impl Qcc {
    pub const WIRE_LEN: usize = 10;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Qcc {
            qcc_seq_no: r.u64("QCCSeqNo")?,
            qcr_backoff: r.u16("QCRBackOff")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.qcc_seq_no);
        out.put_u16(self.qcr_backoff);
    }
}

/// QCR (§2.2.8), all three flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcr<'a> {
    pub client_id: u32,
    pub qcc_seq_no: u64,
    pub backoff: u16,
    pub server_time: u64,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
    /// An MS-WDSMA PROGRESS packet, or empty.
    pub app_data: &'a [u8],
    pub cpu_util: Option<u8>,
    pub mem_util: Option<u8>,
    pub net_util: Option<u8>,
}

impl<'a> Qcr<'a> {
    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let client_id = r.u32("ClientId")?;
        let qcc_seq_no = r.u64("QCCSeqNo")?;
        let backoff = r.u16("BackOff")?;
        let server_time = r.u64("ServerTime")?;
        let hi_odata_seq_no = r.u64("HiODATASeqNo")?;
        let loss_rate = r.u64("LossRate")?;
        let app_data = read_app_data(r, "AppDataLen")?;
        let options = read_options(r)?;
        Ok(Qcr {
            client_id,
            qcc_seq_no,
            backoff,
            server_time,
            hi_odata_seq_no,
            loss_rate,
            app_data,
            cpu_util: options.cpu_util,
            mem_util: options.mem_util,
            net_util: options.net_util,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u64(self.qcc_seq_no);
        out.put_u16(self.backoff);
        out.put_u64(self.server_time);
        out.put_u64(self.hi_odata_seq_no);
        out.put_u64(self.loss_rate);
        write_app_data(out, self.app_data);
        let values: Vec<(u16, [u8; 1])> = self.utils().collect();
        let options: Vec<(u16, &[u8])> = values.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        write_options(out, &options);
    }

    pub fn wire_len(&self) -> usize {
        38 + app_data_len(self.app_data) + options_len(self.utils().map(|_| 1))
    }

    /// The utilization options that are present, each a one-byte value.
    fn utils(&self) -> impl Iterator<Item = (u16, [u8; 1])> {
        [
            (OPT_CPU_UTIL, self.cpu_util),
            (OPT_MEM_UTIL, self.mem_util),
            (OPT_NET_UTIL, self.net_util),
        ]
        .into_iter()
        .filter_map(|(id, v)| v.map(|v| (id, [v])))
    }
}

/// POLL (§2.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll<'a> {
    pub poll_seq_no: u64,
    pub backoff: u16,
    /// An MS-WDSMA SRVCIR packet.
    pub app_data: &'a [u8],
}

impl<'a> Poll<'a> {
    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Poll {
            poll_seq_no: r.u64("POLLSeqNo")?,
            backoff: r.u16("BackOff")?,
            app_data: read_app_data(r, "AppDataLen")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.poll_seq_no);
        out.put_u16(self.backoff);
        write_app_data(out, self.app_data);
    }

    pub fn wire_len(&self) -> usize {
        10 + app_data_len(self.app_data)
    }
}

/// POLLACK (§2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollAck<'a> {
    pub client_id: u32,
    pub poll_seq_no: u64,
    /// An MS-WDSMA CNTCIR packet.
    pub app_data: &'a [u8],
}

impl<'a> PollAck<'a> {
    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(PollAck {
            client_id: r.u32("ClientId")?,
            poll_seq_no: r.u64("POLLSeqNo")?,
            app_data: read_app_data(r, "AppDataLen")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u64(self.poll_seq_no);
        write_app_data(out, self.app_data);
    }

    pub fn wire_len(&self) -> usize {
        12 + app_data_len(self.app_data)
    }
}
