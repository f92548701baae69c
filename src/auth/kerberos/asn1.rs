//! The DER Kerberos messages use (RFC 4120 5): a writer for the few universal types, and
//! readers over [`crate::auth::spnego::der`] that check tags, field order and ranges.

use crate::auth::spnego::der::{self, Tlv};

use super::KrbError;

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;
pub const IA5_STRING: u8 = 0x16;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const GENERAL_STRING: u8 = 0x1b;
pub const SEQUENCE: u8 = 0x30;

/// `[n]` EXPLICIT, constructed.
pub const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// `[APPLICATION n]`, constructed (n < 31).
pub const fn app(n: u8) -> u8 {
    0x60 | n
}

fn bad(what: &'static str) -> KrbError {
    KrbError::Malformed(what)
}

impl From<crate::rpc::security::AuthError> for KrbError {
    fn from(e: crate::rpc::security::AuthError) -> Self {
        match e {
            crate::rpc::security::AuthError::BadToken { reason } => KrbError::Malformed(reason),
            _ => KrbError::Malformed("DER"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// A SEQUENCE builder: `[n]`-tagged fields appended in order.
#[derive(Default)]
pub struct Seq(Vec<u8>);

impl Seq {
    pub fn new() -> Seq {
        Seq(Vec::new())
    }

    /// Appends `[n] value`, where `value` is one complete TLV.
    pub fn field(mut self, n: u8, value: &[u8]) -> Seq {
        der::write(&mut self.0, ctx(n), value);
        self
    }

    pub fn opt(self, n: u8, value: Option<&[u8]>) -> Seq {
        match value {
            Some(v) => self.field(n, v),
            None => self,
        }
    }

    /// The SEQUENCE.
    pub fn finish(self) -> Vec<u8> {
        der::tlv(SEQUENCE, &self.0)
    }

    /// `[APPLICATION n]` around the SEQUENCE.
    pub fn finish_app(self, n: u8) -> Vec<u8> {
        der::tlv(app(n), &self.finish())
    }
}

pub fn int(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    // Minimal two's complement: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    der::tlv(INTEGER, &bytes[start..])
}

pub fn octets(v: &[u8]) -> Vec<u8> {
    der::tlv(OCTET_STRING, v)
}

pub fn string(s: &str) -> Vec<u8> {
    der::tlv(GENERAL_STRING, s.as_bytes())
}

/// A 32-bit flags BIT STRING (KDCOptions, APOptions, TicketFlags), bit 0 the MSB.
pub fn flags(v: u32) -> Vec<u8> {
    let mut b = vec![0u8];
    b.extend_from_slice(&v.to_be_bytes());
    der::tlv(BIT_STRING, &b)
}

/// SEQUENCE OF already-encoded elements.
pub fn seq_of(items: &[Vec<u8>]) -> Vec<u8> {
    der::tlv(SEQUENCE, &items.concat())
}

/// KerberosTime: GeneralizedTime "YYYYMMDDHHMMSSZ" from seconds since 1970.
pub fn time(unix: i64) -> Vec<u8> {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let text = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    der::tlv(GENERALIZED_TIME, text.as_bytes())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Reads one TLV that must fill `b` exactly.
pub fn only<'a>(b: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, KrbError> {
    let (t, rest) = der::read(b)?;
    if t.tag != tag || !rest.is_empty() {
        return Err(bad(what));
    }
    Ok(t)
}

/// `[APPLICATION n] SEQUENCE`: the SEQUENCE inside, which must fill `b`.
pub fn app_seq<'a>(b: &'a [u8], n: u8, what: &'static str) -> Result<Fields<'a>, KrbError> {
    let outer = only(b, app(n), what)?;
    let seq = only(outer.value, SEQUENCE, what)?;
    Fields::of(seq)
}

/// The `[n]` fields of a SEQUENCE, each holding exactly one TLV, in increasing order.
pub struct Fields<'a> {
    slots: [Option<Tlv<'a>>; 16],
}

impl<'a> Fields<'a> {
    pub fn of(seq: Tlv<'a>) -> Result<Fields<'a>, KrbError> {
        if seq.tag != SEQUENCE {
            return Err(bad("expected a SEQUENCE"));
        }
        let mut slots: [Option<Tlv<'a>>; 16] = [None; 16];
        let mut last: Option<u8> = None;
        let mut rest = seq.value;
        while !rest.is_empty() {
            let (f, r) = der::read(rest)?;
            rest = r;
            if f.tag & 0xe0 != 0xa0 {
                return Err(bad("expected a context-tagged field"));
            }
            let n = f.tag & 0x1f;
            if usize::from(n) >= slots.len() || last.is_some_and(|l| l >= n) {
                return Err(bad("fields out of order"));
            }
            last = Some(n);
            let (inner, extra) = der::read(f.value)?;
            if !extra.is_empty() {
                return Err(bad("a field holds more than one value"));
            }
            slots[usize::from(n)] = Some(inner);
        }
        Ok(Fields { slots })
    }

    pub fn get(&self, n: usize) -> Option<Tlv<'a>> {
        self.slots[n]
    }

    pub fn req(&self, n: usize, what: &'static str) -> Result<Tlv<'a>, KrbError> {
        self.slots[n].ok_or(bad(what))
    }
}

/// The elements of a SEQUENCE OF.
pub fn elements<'a>(t: Tlv<'a>, max: usize) -> Result<Vec<Tlv<'a>>, KrbError> {
    if t.tag != SEQUENCE {
        return Err(bad("expected a SEQUENCE OF"));
    }
    let mut out = Vec::new();
    let mut rest = t.value;
    while !rest.is_empty() {
        if out.len() == max {
            return Err(bad("too many elements"));
        }
        let (e, r) = der::read(rest)?;
        out.push(e);
        rest = r;
    }
    Ok(out)
}

pub fn read_int(t: Tlv<'_>) -> Result<i64, KrbError> {
    if t.tag != INTEGER || t.value.is_empty() || t.value.len() > 8 {
        return Err(bad("bad INTEGER"));
    }
    let mut v: i64 = if t.value[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in t.value {
        v = (v << 8) | i64::from(b);
    }
    Ok(v)
}

pub fn read_i32(t: Tlv<'_>) -> Result<i32, KrbError> {
    i32::try_from(read_int(t)?).map_err(|_| bad("INTEGER out of range"))
}

/// UInt32 (nonces, sequence numbers). Some encoders send them as negative 32-bit values;
/// those are taken modulo 2^32, as MIT does.
pub fn read_u32(t: Tlv<'_>) -> Result<u32, KrbError> {
    let v = read_int(t)?;
    if (-(1i64 << 31)..(1i64 << 32)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(bad("UInt32 out of range"))
    }
}

pub fn read_octets<'a>(t: Tlv<'a>) -> Result<&'a [u8], KrbError> {
    if t.tag != OCTET_STRING {
        return Err(bad("expected an OCTET STRING"));
    }
    Ok(t.value)
}

/// KerberosString: GeneralString (IA5 in practice), also UTF8String, as UTF-8.
pub fn read_string(t: Tlv<'_>) -> Result<String, KrbError> {
    if !matches!(t.tag, GENERAL_STRING | UTF8_STRING | IA5_STRING) {
        return Err(bad("expected a KerberosString"));
    }
    String::from_utf8(t.value.to_vec()).map_err(|_| bad("KerberosString is not UTF-8"))
}

/// A 32-bit flags BIT STRING; shorter strings are zero-extended, longer ones cut.
pub fn read_flags(t: Tlv<'_>) -> Result<u32, KrbError> {
    if t.tag != BIT_STRING || t.value.is_empty() {
        return Err(bad("expected a BIT STRING"));
    }
    let mut b = [0u8; 4];
    for (i, &x) in t.value[1..].iter().take(4).enumerate() {
        b[i] = x;
    }
    Ok(u32::from_be_bytes(b))
}

/// KerberosTime to seconds since 1970; fractions of a second (not allowed, but seen) are
/// dropped.
pub fn read_time(t: Tlv<'_>) -> Result<i64, KrbError> {
    if t.tag != GENERALIZED_TIME {
        return Err(bad("expected a GeneralizedTime"));
    }
    let s = std::str::from_utf8(t.value).map_err(|_| bad("bad KerberosTime"))?;
    let s = s.strip_suffix('Z').ok_or(bad("KerberosTime is not UTC"))?;
    let s = s.split('.').next().unwrap_or("");
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bad KerberosTime"));
    }
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap_or(0);
    let (y, m, d, hh, mm, ss) = (n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14));
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad("bad KerberosTime"));
    }
    Ok(days_from_civil(y, m as u32, d as u32) * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal() {
        for (v, want) in [
            (0i64, &[0x02, 0x01, 0x00][..]),
            (5, &[0x02, 0x01, 0x05]),
            (127, &[0x02, 0x01, 0x7f]),
            (128, &[0x02, 0x02, 0x00, 0x80]),
            (-1, &[0x02, 0x01, 0xff]),
            (-129, &[0x02, 0x02, 0xff, 0x7f]),
            (0xffff_ffff, &[0x02, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]),
        ] {
            let enc = int(v);
            assert_eq!(enc, want, "{v}");
            let (t, _) = der::read(&enc).unwrap();
            assert_eq!(read_int(t).unwrap(), v);
        }
        let neg = int(-5);
        let (t, _) = der::read(&neg).unwrap();
        assert_eq!(read_u32(t).unwrap(), 0xffff_fffb);
    }

    #[test]
    fn times_round_trip() {
        // 2024-02-29 12:34:56 UTC.
        let t = 1_709_210_096;
        let enc = time(t);
        assert_eq!(&enc[2..], b"20240229123456Z");
        let (tlv, _) = der::read(&enc).unwrap();
        assert_eq!(read_time(tlv).unwrap(), t);
        for t in [0i64, 951_782_400, 4_102_444_799, 86_399] {
            let enc = time(t);
            let (tlv, _) = der::read(&enc).unwrap();
            assert_eq!(read_time(tlv).unwrap(), t);
        }
        let frac = der::tlv(GENERALIZED_TIME, b"19700101000001.5Z");
        assert_eq!(read_time(der::read(&frac).unwrap().0).unwrap(), 1);
        let local = der::tlv(GENERALIZED_TIME, b"19700101000001");
        assert!(read_time(der::read(&local).unwrap().0).is_err());
    }

    #[test]
    fn fields_are_checked() {
        let s = Seq::new().field(0, &int(1)).field(2, &int(3)).finish();
        let f = Fields::of(der::read(&s).unwrap().0).unwrap();
        assert_eq!(read_int(f.get(0).unwrap()).unwrap(), 1);
        assert!(f.get(1).is_none());
        let swapped = Seq::new().field(2, &int(1)).field(0, &int(3)).finish();
        assert!(Fields::of(der::read(&swapped).unwrap().0).is_err());
        let flags_enc = flags(0x4081_0010);
        assert_eq!(
            read_flags(der::read(&flags_enc).unwrap().0).unwrap(),
            0x4081_0010
        );
    }
}
