//! The sliver of DER that SPNEGO needs: single-byte tags, definite lengths up to 4 bytes.
//! Reading borrows from the input and never allocates.

use crate::rpc::security::AuthError;

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

/// One tag-length-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    /// The whole encoding, tag and length included (SPNEGO's mechListMIC covers one).
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `b`; returns it and the rest.
pub fn read(b: &[u8]) -> Result<(Tlv<'_>, &[u8]), AuthError> {
    let (&tag, rest) = b.split_first().ok_or(bad("DER: truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("DER: multi-byte tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(bad("DER: truncated"))?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(bad("DER: indefinite or oversized length"));
        }
        let bytes = rest.get(..n).ok_or(bad("DER: truncated"))?;
        rest = &rest[n..];
        bytes.iter().fold(0usize, |acc, &x| (acc << 8) | x as usize)
    };
    let value = rest.get(..len).ok_or(bad("DER: length past end"))?;
    let header_len = b.len() - rest.len();
    Ok((
        Tlv {
            tag,
            value,
            raw: &b[..header_len + len],
        },
        &rest[len..],
    ))
}

/// Reads exactly one TLV with tag `tag` filling all of `b`.
pub fn read_only<'a>(b: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, AuthError> {
    let (t, rest) = read(b)?;
    if t.tag != tag || !rest.is_empty() {
        return Err(bad(what));
    }
    Ok(t)
}

/// Appends tag, DER length and `value` to `out`.
pub fn write(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// `tag` around `value`, as a new vector.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 6);
    write(&mut v, tag, value);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70000] {
            let value = vec![0xab; len];
            let enc = tlv(0x04, &value);
            let (t, rest) = read(&enc).unwrap();
            assert_eq!(
                (t.tag, t.value.len(), t.raw.len(), rest.len()),
                (4, len, enc.len(), 0)
            );
        }
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    }

    #[test]
    fn refuses_bad_encodings() {
        for b in [
            &[][..],
            &[0x04],
            &[0x04, 0x80, 0, 0],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
            &[0x04, 0x02, 1],
            &[0x1f, 0x01, 0],
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(read(b).is_err(), "{b:?}");
        }
    }
}
