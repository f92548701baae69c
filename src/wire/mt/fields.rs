//! Field groups several MS-WDSMT packets share: extended options, sequence-number ranges,
//! AppData, IP addresses. Each reader sits beside its writer and its length.

use std::net::IpAddr;

use super::super::codec::{DecodeError, DecodeErrorKind, Put, Reader, ip_bytes, ip_len};
use super::{OPT_CAPABILITIES, OPT_CPU_UTIL, OPT_MEM_UTIL, OPT_NET_UTIL};
use super::{OPT_ODATA_FW_LEAD_SEQ_NO, OPT_USER_SID, SEQ_RANGE_LEN, SeqRange};

/// The extended options a packet may carry, as decoded. Unknown ids are skipped.
#[derive(Default)]
pub(super) struct Options<'a> {
    pub cpu_util: Option<u8>,
    pub mem_util: Option<u8>,
    pub net_util: Option<u8>,
    pub fw_lead_seq_no: Option<u64>,
    pub user_sid: Option<&'a [u8]>,
    pub capabilities: Option<&'a [u8]>,
}

pub(super) fn read_options<'a>(r: &mut Reader<'a>) -> Result<Options<'a>, DecodeError> {
    let mut options = Options::default();
    // An absent section and OptionsCount = 0 mean the same.
    if r.remaining() == 0 {
        return Ok(options);
    }
    let count = r.u16("OptionsCount")? as usize;
    r.check_items(count, 4, "Options")?;
    for _ in 0..count {
        let id = r.u16("OptionId")?;
        let len = r.u16("OptionLen")? as usize;
        let at = r.offset();
        let value = r.bytes(len, "OptionValue")?;
        let wrong_len = || DecodeError {
            packet: "MT extended option",
            field: "OptionLen",
            offset: at - 2,
            kind: DecodeErrorKind::LengthMismatch {
                declared: len,
                actual: if id == OPT_ODATA_FW_LEAD_SEQ_NO { 8 } else { 1 },
            },
        };
        match id {
            OPT_CPU_UTIL | OPT_MEM_UTIL | OPT_NET_UTIL => {
                let &[v] = value else { return Err(wrong_len()) };
                let slot = match id {
                    OPT_CPU_UTIL => &mut options.cpu_util,
                    OPT_MEM_UTIL => &mut options.mem_util,
                    _ => &mut options.net_util,
                };
                *slot = Some(v);
            }
            // The spec gives no size for this value; we send 8 bytes and read 1 to 8.
            OPT_ODATA_FW_LEAD_SEQ_NO => {
                if value.is_empty() || value.len() > 8 {
                    return Err(wrong_len());
                }
                let seq = value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                options.fw_lead_seq_no = Some(seq);
            }
            OPT_USER_SID => options.user_sid = Some(value),
            OPT_CAPABILITIES => options.capabilities = Some(value),
            _ => {}
        }
    }
    Ok(options)
}

/// Writes an extended options section; nothing at all when there are no options.
pub(super) fn write_options(out: &mut Vec<u8>, options: &[(u16, &[u8])]) {
    if options.is_empty() {
        return;
    }
    out.put_u16(options.len() as u16);
    for (id, value) in options {
        out.put_u16(*id);
        out.put_u16(value.len() as u16);
        out.extend_from_slice(value);
    }
}

/// Bytes [`write_options`] writes for options whose values have these lengths.
pub(super) fn options_len(value_lens: impl IntoIterator<Item = usize>) -> usize {
    let (count, bytes) = value_lens
        .into_iter()
        .fold((0, 0), |(n, bytes), len| (n + 1, bytes + 4 + len));
    if count == 0 { 0 } else { 2 + bytes }
}

pub(super) fn read_ranges(r: &mut Reader<'_>) -> Result<Vec<SeqRange>, DecodeError> {
    let count = r.u16("RangeCount")? as usize;
    r.check_items(count, SEQ_RANGE_LEN, "RangeList")?;
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        let start = r.u64("StartODATASeqNo")?;
        let end = r.u64("EndODATASeqNo")?;
        ranges.push(SeqRange { start, end });
    }
    Ok(ranges)
}

pub(super) fn write_ranges(out: &mut Vec<u8>, ranges: &[SeqRange]) {
    out.put_u16(ranges.len() as u16);
    for range in ranges {
        out.put_u64(range.start);
        out.put_u64(range.end);
    }
}

pub(super) fn ranges_len(ranges: &[SeqRange]) -> usize {
    2 + ranges.len() * SEQ_RANGE_LEN
}

pub(super) fn read_app_data<'a>(
    r: &mut Reader<'a>,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let len = r.u16(field)? as usize;
    r.bytes(len, "AppData")
}

pub(super) fn write_app_data(out: &mut Vec<u8>, data: &[u8]) {
    out.put_u16(data.len() as u16);
    out.extend_from_slice(data);
}

pub(super) fn app_data_len(data: &[u8]) -> usize {
    2 + data.len()
}

pub(super) fn read_address(
    r: &mut Reader<'_>,
    len_field: &'static str,
    field: &'static str,
) -> Result<IpAddr, DecodeError> {
    let len = r.u8(len_field)?;
    if len != 4 && len != 16 {
        return Err(r.invalid(len_field, len.into()));
    }
    r.ip(len.into(), field)
}

pub(super) fn write_address(out: &mut Vec<u8>, ip: &IpAddr) {
    out.put_u8(ip_len(ip));
    ip_bytes(ip, out);
}

pub(super) fn address_len(ip: &IpAddr) -> usize {
    1 + usize::from(ip_len(ip))
}
