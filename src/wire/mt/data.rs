//! The data path: ODATA and RDATA, ACK, NACK and NCF (MS-WDSMT §2.2.15–§2.2.19). Per packet:
//! the fields, then `parse`, `emit` and `wire_len` together.

use super::super::codec::{DecodeError, Put, Reader};
use super::fields::{app_data_len, options_len, read_app_data, read_options};
use super::fields::{ranges_len, read_ranges, write_options, write_ranges};
use super::{OPT_ODATA_FW_LEAD_SEQ_NO, SeqRange};

/// ODATA (§2.2.16) and RDATA (§2.2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPacket<'a> {
    pub client_id: u32,
    pub odata_seq_no: u64,
    pub trail_odata_seq_no: u64,
    /// An MS-WDSMA DATA packet.
    pub data: &'a [u8],
    /// `WDSMCTP_OPT_ODATA_FW_LEAD_SEQ_NO` (ODATA only).
    pub fw_lead_seq_no: Option<u64>,
}

impl<'a> DataPacket<'a> {
    /// Bytes before the Data field: ClientId, ODATASeqNo, TrailODATASeqNo, DataLen.
    pub const HEADER_LEN: usize = 22;

    /// Parses ODATA (which may carry FW_LEAD) or RDATA (which ignores it).
    pub(super) fn parse(r: &mut Reader<'a>, odata: bool) -> Result<Self, DecodeError> {
        let client_id = r.u32("ClientId")?;
        let odata_seq_no = r.u64("ODATASeqNo")?;
        let trail_odata_seq_no = r.u64("TrailODATASeqNo")?;
        let data = read_app_data(r, "DataLen")?;
        let options = read_options(r)?;
        Ok(DataPacket {
            client_id,
            odata_seq_no,
            trail_odata_seq_no,
            data,
            fw_lead_seq_no: options.fw_lead_seq_no.filter(|_| odata),
        })
    }

    /// Writes the fields before Data, for a Data field of `data_len` bytes that the caller
    /// writes next (the block fast path writes its MS-WDSMA DATA packet in place).
    pub(crate) fn emit_header(
        out: &mut Vec<u8>,
        client_id: u32,
        odata_seq_no: u64,
        trail_odata_seq_no: u64,
        data_len: u16,
    ) {
        out.put_u32(client_id);
        out.put_u64(odata_seq_no);
        out.put_u64(trail_odata_seq_no);
        out.put_u16(data_len);
    }

    /// Emits ODATA (with FW_LEAD when set) or RDATA (never with it).
    pub(super) fn emit(&self, out: &mut Vec<u8>, odata: bool) {
        let data_len = self.data.len() as u16;
        Self::emit_header(
            out,
            self.client_id,
            self.odata_seq_no,
            self.trail_odata_seq_no,
            data_len,
        );
        out.extend_from_slice(self.data);
        if let (true, Some(lead)) = (odata, self.fw_lead_seq_no) {
            write_options(out, &[(OPT_ODATA_FW_LEAD_SEQ_NO, &lead.to_be_bytes())]);
        }
    }

    pub fn wire_len(&self, odata: bool) -> usize {
        let lead = self.fw_lead_seq_no.filter(|_| odata).map(|_| 8);
        Self::HEADER_LEN - 2 + app_data_len(self.data) + options_len(lead)
    }
}

/// ACK (§2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub client_id: u32,
    pub odata_seq_no: u64,
    pub server_time: u64,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
}

impl Ack {
    pub const WIRE_LEN: usize = 36;

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ack {
            client_id: r.u32("ClientId")?,
            odata_seq_no: r.u64("ODATASeqNo")?,
            server_time: r.u64("ServerTime")?,
            hi_odata_seq_no: r.u64("HiODATASeqNo")?,
            loss_rate: r.u64("LossRate")?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u64(self.odata_seq_no);
        out.put_u64(self.server_time);
        out.put_u64(self.hi_odata_seq_no);
        out.put_u64(self.loss_rate);
    }
}

/// NACK (§2.2.18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub client_id: u32,
    pub hi_odata_seq_no: u64,
    pub loss_rate: u64,
    pub ranges: Vec<SeqRange>,
}

impl Nack {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Nack {
            client_id: r.u32("ClientId")?,
            hi_odata_seq_no: r.u64("HiODATASeqNo")?,
            loss_rate: r.u64("LossRate")?,
            ranges: read_ranges(r)?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.client_id);
        out.put_u64(self.hi_odata_seq_no);
        out.put_u64(self.loss_rate);
        write_ranges(out, &self.ranges);
    }

    pub fn wire_len(&self) -> usize {
        20 + ranges_len(&self.ranges)
    }
}

/// NCF (§2.2.19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ncf {
    pub ranges: Vec<SeqRange>,
}

impl Ncf {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ncf {
            ranges: read_ranges(r)?,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        write_ranges(out, &self.ranges);
    }

    pub fn wire_len(&self) -> usize {
        ranges_len(&self.ranges)
    }
}
